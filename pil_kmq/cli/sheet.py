"""kmq sheet: the original beside its reconstruction at several K, each
captioned with K, PSNR and file size (the tutorial's figure)."""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..atomic import save_atomic
from ..options import PARSERS, OptionValueError
from ..pixels import to_array
from ..quantize.metrics import mean_squared_error, psnr_from_mse
from .batch import refuse_outputs_that_are_inputs
from .batch_types import Job
from .convert import check_output_folder, codec_params, upright
from .progress import human_bytes
from .status import EXIT_FAILED, EXIT_OK, describe_error, exists_message

DEFAULT_SHEET_COLORS = (2, 3, 6, 16)
DEFAULT_SHEET_WIDTH = 1600  # fits a laptop screen
MAX_COLUMNS = 3


@dataclass
class Panel:
    image: Image.Image
    caption: list[str]


def sheet_panels(im: Image.Image, colors: Sequence[int], params: dict[str, Any]) -> list[Panel]:
    """The original and its round trip through .kmq at each K, captioned
    with what the trade-off costs: PSNR and the actual file size."""
    original = to_array(im)
    height, width, channels = original.shape
    raw_bytes = original.size
    panels = [Panel(Image.fromarray(original.squeeze(2) if channels == 1 else original),
                    ["original", f"{width} x {height}", f"{human_bytes(raw_bytes)} raw"])]
    for k in colors:
        buffer = io.BytesIO()
        im.save(buffer, "KMQ", **{**params, "colors": k})
        file_bytes = buffer.tell()
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            decoded.load()
            used = decoded.info.get("colors", k)
            reconstruction = decoded.copy()
        psnr = psnr_from_mse(mean_squared_error(to_array(reconstruction), original))
        title = f"K = {k}" if used == k else f"K = {k} ({used} used)"
        quality = "lossless" if math.isinf(psnr) else f"{psnr:.1f} dB"
        size = f"{human_bytes(file_bytes)} ({file_bytes / raw_bytes:.0%})"
        panels.append(Panel(reconstruction, [title, quality, size]))
    return panels


def render_sheet(
    panels: Sequence[Panel], columns: int | None = None, width: int = 0, title: str = ""
) -> Image.Image:
    """Panels in a grid (one row if it fits, else up to MAX_COLUMNS), each
    captioned underneath, under a title; images shrunk so the sheet is at
    most `width` pixels wide (0: full size), captions kept readable."""
    image_width = max(panel.image.width for panel in panels)
    font_size = 16 if width else max(11, min(22, image_width // 12))
    gap = max(6, font_size // 2)
    if not columns:  # one row if it fits at full size, else up to MAX_COLUMNS a row
        fits = not width or len(panels) * (image_width + gap) + gap <= width
        columns = len(panels) if fits else MAX_COLUMNS
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    scale = 1.0
    if width and columns * image_width + (columns + 1) * gap > width:
        scale = (width - (columns + 1) * gap) / (columns * image_width)
    images = [_fit(panel.image, scale) for panel in panels]
    title_font, body_font = _font(font_size + 2), _font(font_size)
    # Captions wider than a small image widen its cell rather than overlap.
    cell_width = max(
        max(image.width for image in images),
        *(math.ceil((title_font if number == 0 else body_font).getlength(line))
          for panel in panels for number, line in enumerate(panel.caption)),
    )
    cell_height = max(image.height for image in images)
    line_height = round(font_size * 1.35)
    caption_height = line_height * max(len(panel.caption) for panel in panels) + font_size // 2 + 4
    title_height = round((font_size + 4) * 1.6) if title else 0
    sheet = Image.new(
        "RGB",
        (columns * cell_width + (columns + 1) * gap,
         title_height + rows * (cell_height + caption_height) + (rows + 1) * gap - font_size // 3),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((gap, gap), title, fill=(0, 0, 0), font=_font(font_size + 4))
    for index, (panel, image) in enumerate(zip(panels, images)):
        row, column = divmod(index, columns)
        left = gap + column * (cell_width + gap)
        top = title_height + gap + row * (cell_height + caption_height + gap)
        sheet.paste(_flatten(image), (left, top))
        text_top = top + cell_height + font_size // 2
        for number, line in enumerate(panel.caption):
            font = title_font if number == 0 else body_font
            colour = (20, 20, 20) if number == 0 else (80, 80, 80)
            draw.text((left, text_top + number * line_height), line, fill=colour, font=font)
    return sheet


def _fit(im: Image.Image, scale: float) -> Image.Image:
    """A display copy, shrunk (the numbers in the captions are full size)."""
    if scale >= 1:
        return im
    size = (max(1, int(im.width * scale)), max(1, int(im.height * scale)))
    return im.convert("RGBA" if "A" in im.getbands() else "RGB").resize(size, Image.Resampling.LANCZOS)


def sheet_title(source: Path, im: Image.Image, params: dict[str, Any]) -> str:
    options = ", ".join(name for name in ("dither", "optimize") if params.get(name))
    return f"{source.name}: {im.width} x {im.height} {im.mode}" + (f" ({options})" if options else "")


def _flatten(im: Image.Image) -> Image.Image:
    """RGB for pasting: transparency shown over a light checkerboard."""
    if "A" not in im.getbands():
        return im.convert("RGB")
    rows, cols = np.indices((im.height, im.width))
    squares = ((rows // 8 + cols // 8) % 2 * 40 + 200).astype(np.uint8)
    board = Image.fromarray(np.repeat(squares[:, :, None], 3, axis=2)).convert("RGBA")
    return Image.alpha_composite(board, im.convert("RGBA")).convert("RGB")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size)  # a scalable font when FreeType is there
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def parse_colors_list(text: str) -> list[int]:
    """argparse type for -k 2,3,6,16: each checked as the colors option."""
    parse, _ = PARSERS["colors"]
    try:
        values = [parse(int(part), "colors") for part in text.split(",") if part.strip()]
    except ValueError as exc:
        if not isinstance(exc, OptionValueError):
            exc = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def run_sheet(args: argparse.Namespace) -> int:
    source = Path(args.image)
    # The current folder by default: beside the input, the next folder
    # encode would take the sheet for one more image.
    target = Path(args.output) if args.output else Path(source.stem + ".sheet.png")
    refuse_outputs_that_are_inputs([source], [Job(source, target)])
    if not args.force and target.exists():
        print(f"kmq: {source}: {exists_message(target)}", file=sys.stderr)
        return EXIT_FAILED
    params = codec_params(dither=args.dither, optimize=args.optimize)
    try:
        check_output_folder(target)
        with Image.open(source) as im:
            im.load()
            im = upright(im)
            panels = sheet_panels(im, args.colors, params)
            title = sheet_title(source, im, params)
        save_atomic(render_sheet(panels, args.columns, args.width, title), target, overwrite=args.force)
    except FileExistsError:
        print(f"kmq: {source}: {exists_message(target)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        print(f"kmq: {source}: {describe_error(exc, source)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
