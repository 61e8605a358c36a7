"""kmq encode and kmq decode: images to .kmq files and back, through the
same Image.save and Image.open calls a program would make."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

import errno
import sys
from dataclasses import replace

from PIL import Image, ImageOps

from ..atomic import format_for_path, save_atomic
from ..quantize.quality import QualityNotReached
from .batch import check_single_output, expand_inputs, plan_jobs, run_job, run_jobs
from .batch_types import Job, Outcome
from .progress import RedrawnLine
from .stream import (
    STREAM_SUFFIXES, BandLine, decode_streamed, encode_streamed, is_stream_file, streams_input, streams_output,
)
from .views import flatten, label_image
from .status import UsageError

DEFAULT_DECODE_FORMAT = "png"
STREAMED_FORMAT = "NPY"  # decoded band by band (cli/stream.py), not through Pillow
LABELS_SUFFIX = ".labels"
LABELS_RAW_SUFFIX = ".labels-raw"
EXIT_QUALITY = 99  # pngquant's status for an image below --quality's minimum
ORIENTATION = 0x0112


def encode_file(job: Job, params: dict[str, Any], force: bool) -> Outcome:
    """Encode one image to .kmq; never raises, so a batch can go on."""
    missed: list[QualityNotReached] = []

    def write(job: Job) -> None:
        try:
            _encode(job, params, force)
        except QualityNotReached as exc:
            missed.append(exc)
            raise

    outcome = run_job(job, force, write)
    return replace(outcome, exit_code=EXIT_QUALITY) if missed else outcome


def decode_file(job: Job, format: str, view: str, force: bool, background: tuple | None = None) -> Outcome:
    """Decode one .kmq file (its colours, or its label map: view "labels"
    or "labels-raw") to an image file."""
    return run_job(job, force, partial(_decode, format=format, view=view, force=force, background=background))


def _encode(job: Job, params: dict[str, Any], force: bool) -> None:
    check_output_folder(job.target)
    try:
        if streams_input(job.source):
            encode_streamed(job.source, job.target, params, force)
            return
        with Image.open(job.source) as im:
            im.load()
            save_atomic(upright(im), job.target, "KMQ", overwrite=force, **params)
    finally:
        if isinstance(params.get("progress"), StageLine):
            params["progress"].clear()  # before a failure line or the summary


def upright(im: Image.Image) -> Image.Image:
    """The image as it is meant to be seen: turned by its EXIF orientation,
    which is then reset (Image.save itself keeps pixels and EXIF as given)."""
    if im.getexif().get(ORIENTATION, 1) in (0, 1):
        return im  # also keeps a multi-frame image's frames, for the encoder to refuse
    return ImageOps.exif_transpose(im)


def check_output_folder(target: Path) -> None:
    """Name the user's missing folder, not the temporary file inside it."""
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "output folder does not exist", str(folder))


def _decode(job: Job, format: str, view: str, force: bool, background: tuple | None) -> None:
    check_output_folder(job.target)
    if streams_output(job.source, format):
        line = BandLine("decode", job.source.name) if sys.stderr.isatty() else None
        try:
            return decode_streamed(job.source, job.target, format, force, view, line)
        finally:
            if line is not None:
                line.clear()
    with Image.open(job.source) as im:
        if im.format != "KMQ":
            raise ValueError(f"not a KMQ file (it is {im.format})")
        if view:
            im.draft("P", None)
        im.load()
        metadata = {key: im.info[key] for key in ("icc_profile", "exif") if im.info.get(key)}
        out = label_image(im, raw=view == "labels-raw") if view else im
        if background is not None and "A" in out.getbands():
            out = flatten(out, background)
        try:
            save_atomic(out, job.target, format, overwrite=force, **metadata)
        except OSError as exc:
            if "A" not in out.getbands() or "cannot write mode" not in str(exc):
                raise
            raise ValueError(
                f"{format} cannot store the alpha channel of this {out.mode} image: "
                "give --background COLOR (e.g. --background white) to flatten it"
            ) from exc


def readable_image(path: Path) -> bool:
    """A file Pillow can probably open by its extension, other than .kmq
    (the outputs of an earlier run in the same folder)."""
    return path.suffix.lower() in _readable_extensions() or is_stream_file(path)


def _readable_extensions() -> set[str]:
    return {
        extension for extension, format in Image.registered_extensions().items()
        if format in Image.OPEN and format != "KMQ"
    }


def codec_params(
    colors: int | None = None, quality: Any = None, dither: bool = False, optimize: bool = False,
    psnr: float | None = None,
) -> dict[str, Any]:
    """Image.save keywords for the options given (only those given, so the
    library's defaults stay the command's defaults)."""
    params: dict[str, Any] = {}
    if colors is not None:
        params["colors"] = colors
    if quality is not None:
        params["quality"] = quality
    if psnr is not None:
        params["psnr"] = psnr
    if dither:
        params["dither"] = True
    if optimize:
        params["optimize"] = True
    return params


def run_encode(args: argparse.Namespace) -> int:
    check_single_output(args)
    sources, problems = expand_inputs(args.inputs, readable_image, "images")

    def target_for(source: Path) -> Path:
        if args.output is not None:
            return Path(args.output)
        if args.out_dir is not None:
            return Path(args.out_dir) / (source.stem + ".kmq")
        return source.with_suffix(".kmq")

    jobs, clashes = plan_jobs(sources, target_for)
    params = codec_params(args.colors, args.quality, args.dither, args.optimize, args.psnr)
    if len(jobs) == 1 and args.jobs <= 1 and not args.quiet and sys.stderr.isatty():
        params["progress"] = StageLine(jobs[0].source.name)
    task = partial(encode_file, params=params, force=args.force)
    return run_jobs(args, "encode", task, jobs, problems + clashes)


# --- decode --------------------------------------------------------------


def resolve_format(name: str) -> tuple[str, str]:
    """(Pillow format, file extension) for a --format value such as png,
    JPEG or jpg; UsageError if Pillow cannot write it."""
    wanted = name.lower().lstrip(".")
    if "." + wanted in STREAM_SUFFIXES:
        return STREAMED_FORMAT, "." + wanted
    extensions = Image.registered_extensions()
    format = extensions.get("." + wanted, wanted.upper())
    if format not in Image.SAVE:
        raise UsageError(f"Pillow cannot write the format {name!r}")
    own = [extension for extension, owner in extensions.items() if owner == format]
    extension = "." + wanted if "." + wanted in own else own[0] if own else "." + wanted
    return format, extension


def run_decode(args: argparse.Namespace) -> int:
    check_single_output(args)
    if args.format is not None:
        format, extension = resolve_format(args.format)
    elif args.output is not None and is_stream_file(Path(args.output)):
        format, extension = resolve_format(Path(args.output).suffix)
    elif args.output is not None:
        try:
            format, extension = format_for_path(args.output), Path(args.output).suffix
        except ValueError as exc:
            raise UsageError(f"{exc} in {args.output}; give --format") from None
        if format not in Image.SAVE:
            raise UsageError(f"Pillow cannot write {format} files ({args.output}); give --format")
    else:
        format, extension = resolve_format(DEFAULT_DECODE_FORMAT)
    view = "labels" if args.labels else "labels-raw" if args.labels_raw else ""
    suffix = {"labels": LABELS_SUFFIX, "labels-raw": LABELS_RAW_SUFFIX}.get(view, "") + extension
    sources, problems = expand_inputs(args.inputs, lambda path: path.suffix.lower() == ".kmq", ".kmq files")

    def target_for(source: Path) -> Path:
        if args.output is not None:
            return Path(args.output)
        if args.out_dir is not None:
            return Path(args.out_dir) / (source.stem + suffix)
        return source.with_name(source.stem + suffix)

    jobs, clashes = plan_jobs(sources, target_for)
    task = partial(decode_file, format=format, view=view, force=args.force, background=args.background)
    return run_jobs(args, "decode", task, jobs, problems + clashes)


class StageLine:
    """The encoder's progress(stage, done, total) as one line redrawn on
    stderr, for a single file on a terminal (a large one takes a while)."""

    def __init__(self, name: str):
        self.name = name
        self.line = RedrawnLine(sys.stderr)

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.line.draw(f"encode {self.name}: {stage}" + (f" {done}/{total}" if total > 1 else ""))

    def clear(self) -> None:
        self.line.clear()
