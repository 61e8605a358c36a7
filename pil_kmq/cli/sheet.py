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
from .convert import codec_params
from .progress import human_bytes
from .status import EXIT_FAILED, EXIT_OK, describe_error, exists_message

DEFAULT_SHEET_COLORS = (2, 3, 6, 16)


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


def render_sheet(panels: Sequence[Panel], columns: int | None = None) -> Image.Image:
    """Panels in a grid (one row by default), each captioned underneath."""
    columns = max(1, min(columns or len(panels), len(panels)))
    rows = -(-len(panels) // columns)
    image_width = max(panel.image.width for panel in panels)
    cell_height = max(panel.image.height for panel in panels)
    font_size = max(11, min(22, image_width // 12))
    title_font, body_font = _font(font_size + 2), _font(font_size)
    # Captions wider than a small image widen its cell rather than overlap.
    cell_width = max(
        image_width,
        *(math.ceil((title_font if number == 0 else body_font).getlength(line))
          for panel in panels for number, line in enumerate(panel.caption)),
    )
    line_height = round(font_size * 1.35)
    caption_lines = max(len(panel.caption) for panel in panels)
    caption_height = line_height * caption_lines + font_size // 2 + 4
    gap = max(6, font_size // 2)
    sheet = Image.new(
        "RGB",
        (columns * cell_width + (columns + 1) * gap,
         rows * (cell_height + caption_height) + (rows + 1) * gap - font_size // 3),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        left = gap + column * (cell_width + gap)
        top = gap + row * (cell_height + caption_height + gap)
        sheet.paste(_flatten(panel.image), (left, top))
        text_top = top + cell_height + font_size // 2
        for number, line in enumerate(panel.caption):
            font = title_font if number == 0 else body_font
            colour = (20, 20, 20) if number == 0 else (80, 80, 80)
            draw.text((left, text_top + number * line_height), line, fill=colour, font=font)
    return sheet


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
    target = Path(args.output) if args.output else source.with_name(source.stem + ".sheet.png")
    refuse_outputs_that_are_inputs([source], [Job(source, target)])
    if not args.force and target.exists():
        print(f"kmq: {source}: {exists_message(target)}", file=sys.stderr)
        return EXIT_FAILED
    params = codec_params(dither=args.dither, optimize=args.optimize)
    try:
        with Image.open(source) as im:
            im.load()
            panels = sheet_panels(im, args.colors, params)
        save_atomic(render_sheet(panels, args.columns), target, overwrite=args.force)
    except FileExistsError:
        print(f"kmq: {source}: {exists_message(target)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        print(f"kmq: {source}: {describe_error(exc, source)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
