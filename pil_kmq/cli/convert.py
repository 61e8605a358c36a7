"""kmq encode and kmq decode: images to .kmq files and back, through the
same Image.save and Image.open calls a program would make."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from ..atomic import format_for_path, save_atomic
from .batch import check_single_output, expand_inputs, plan_jobs, run_job, run_jobs
from .batch_types import Job, Outcome
from .status import UsageError

DEFAULT_DECODE_FORMAT = "png"
LABELS_SUFFIX = ".labels"


def encode_file(job: Job, params: dict[str, Any], force: bool) -> Outcome:
    """Encode one image to .kmq; never raises, so a batch can go on."""
    return run_job(job, force, partial(_encode, params=params, force=force))


def decode_file(job: Job, format: str, labels: bool, force: bool) -> Outcome:
    """Decode one .kmq file (or its label map) to an image file."""
    return run_job(job, force, partial(_decode, format=format, labels=labels, force=force))


def _encode(job: Job, params: dict[str, Any], force: bool) -> None:
    with Image.open(job.source) as im:
        im.load()
        save_atomic(im, job.target, "KMQ", overwrite=force, **params)


def _decode(job: Job, format: str, labels: bool, force: bool) -> None:
    with Image.open(job.source) as im:
        if im.format != "KMQ":
            raise ValueError(f"not a KMQ file (it is {im.format})")
        if labels:
            im.draft("P", None)
        im.load()
        metadata = {key: im.info[key] for key in ("icc_profile", "exif") if im.info.get(key)}
        save_atomic(im, job.target, format, overwrite=force, **metadata)


def readable_image(path: Path) -> bool:
    """A file Pillow can probably open by its extension, other than .kmq
    (the outputs of an earlier run in the same folder)."""
    return path.suffix.lower() in _readable_extensions()


def _readable_extensions() -> set[str]:
    return {
        extension for extension, format in Image.registered_extensions().items()
        if format in Image.OPEN and format != "KMQ"
    }


def codec_params(
    colors: int | None = None, quality: float | None = None, dither: bool = False, optimize: bool = False
) -> dict[str, Any]:
    """Image.save keywords for the options given (only those given, so the
    library's defaults stay the command's defaults)."""
    params: dict[str, Any] = {}
    if colors is not None:
        params["colors"] = colors
    if quality is not None:
        params["quality"] = quality
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
    params = codec_params(args.colors, args.quality, args.dither, args.optimize)
    task = partial(encode_file, params=params, force=args.force)
    return run_jobs(args, "encode", task, jobs, problems + clashes)


# --- decode --------------------------------------------------------------


def resolve_format(name: str) -> tuple[str, str]:
    """(Pillow format, file extension) for a --format value such as png,
    JPEG or jpg; UsageError if Pillow cannot write it."""
    wanted = name.lower().lstrip(".")
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
    elif args.output is not None:
        try:
            format, extension = format_for_path(args.output), Path(args.output).suffix
        except ValueError as exc:
            raise UsageError(f"{exc} in {args.output}; give --format") from None
        if format not in Image.SAVE:
            raise UsageError(f"Pillow cannot write {format} files ({args.output}); give --format")
    else:
        format, extension = resolve_format(DEFAULT_DECODE_FORMAT)
    suffix = (LABELS_SUFFIX if args.labels else "") + extension
    sources, problems = expand_inputs(args.inputs, lambda path: path.suffix.lower() == ".kmq", ".kmq files")

    def target_for(source: Path) -> Path:
        if args.output is not None:
            return Path(args.output)
        if args.out_dir is not None:
            return Path(args.out_dir) / (source.stem + suffix)
        return source.with_name(source.stem + suffix)

    jobs, clashes = plan_jobs(sources, target_for)
    task = partial(decode_file, format=format, labels=args.labels, force=args.force)
    return run_jobs(args, "decode", task, jobs, problems + clashes)
