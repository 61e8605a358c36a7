"""kmq encode and kmq decode: images to .kmq files and back, through the
same Image.save and Image.open calls a program would make."""

from __future__ import annotations

import argparse
import contextlib
from functools import partial
from pathlib import Path
from typing import Any

import errno
import io
import math
import sys
import time
from dataclasses import replace

from PIL import Image, ImageOps

from ..atomic import format_for_path, save_atomic, write_atomic
from ..format.container import MAGIC
from ..options import METADATA_KEYS
from ..quantize.quality import QualityNotReached
from .batch import check_single_output, expand_inputs, plan_jobs, run_job, run_jobs
from .batch_types import STDIO, Job, Outcome
from .progress import RedrawnLine, human_bytes, plural
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
EXIT_LARGER = 98  # pngquant's status for a file --skip-if-larger left unwritten
ORIENTATION = 0x0112


def encode_file(job: Job, params: dict[str, Any], force: bool, frame: int = 0,
                skip_if_larger: bool = False) -> Outcome:
    """Encode one image to .kmq; never raises, so a batch can go on."""
    missed: list[QualityNotReached] = []

    def write(job: Job) -> Outcome:
        try:
            return _encode(job, params, force, frame, skip_if_larger)
        except QualityNotReached as exc:
            missed.append(exc)
            raise

    outcome = run_job(job, force, write)
    return replace(outcome, exit_code=EXIT_QUALITY) if missed else outcome


def decode_file(job: Job, format: str, view: str, force: bool, *, background: tuple | None = None,
                max_pixels: int | None = None) -> Outcome:
    """Decode one .kmq file (its colours, or its label map: view "labels"
    or "labels-raw") to an image file; max_pixels: --max-pixels, which
    does not change the path taken (a TIFF too large for Pillow's own limit
    is streamed whatever the limit allowed)."""
    streamed = job.source != STDIO and job.target != STDIO and streams_output(job.source, format)
    with pixel_limit(max_pixels):
        return run_job(job, force, partial(_decode_within_limit, format=format, view=view, force=force,
                                           background=background, streamed=streamed))


def _decode_within_limit(*args, **options):
    """_decode, its size refusal naming the option that moves the limit
    (Pillow's message names only the limit)."""
    try:
        return _decode(*args, **options)
    except Image.DecompressionBombError as error:
        raise Image.DecompressionBombError(f"{error} (--max-pixels N sets the limit, 0 for none)") from None


@contextlib.contextmanager
def pixel_limit(max_pixels: int | None):
    """Image.MAX_IMAGE_PIXELS set to --max-pixels (0: None, no limit) for
    one job, in the process running it (a -j worker, a cluster's worker)."""
    if max_pixels is None:
        yield
        return
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels or None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _encode(job: Job, params: dict[str, Any], force: bool, frame: int, skip_if_larger: bool) -> Outcome:
    """Encode in memory, then write (or, with skip_if_larger, not write) by
    the sizes: the file is never larger than the input without a warning."""
    if job.target != STDIO:
        check_output_folder(job.target)
    source = read_input(job.source) if job.source == STDIO else job.source
    try:
        if job.source != STDIO and streams_input(job.source):
            encode_streamed(job.source, job.target, params, force)
            return None
        with Image.open(source) as im:
            pick_frame(im, frame)
            im.load()
            encoded = io.BytesIO()
            upright(im).save(encoded, "KMQ", **params)
    finally:
        if isinstance(params.get("progress"), StageLine):
            params["progress"].clear()  # before a failure line or the summary
    data, input_bytes = encoded.getvalue(), input_size(source)
    larger = None
    if len(data) > input_bytes:
        larger = (f"the .kmq file ({human_bytes(len(data))}) is larger than the input "
                  f"({human_bytes(input_bytes)})")
        if skip_if_larger:
            return Outcome(job.source, input_bytes=input_bytes, exit_code=EXIT_LARGER,
                           skipped=larger + " (--skip-if-larger)")
        larger += "; --optimize writes smaller files, --skip-if-larger writes none"
    write_output(job.target, data, force)
    return Outcome(job.source, None, input_bytes, len(data), warning=larger)


def read_input(source: Path) -> io.BytesIO:
    """Standard input's bytes, read whole: so that its size is known and
    stdin, which cannot seek, opens like a file."""
    return io.BytesIO(sys.stdin.buffer.read())


def input_size(source: Path | io.BytesIO) -> int:
    return len(source.getbuffer()) if isinstance(source, io.BytesIO) else source.stat().st_size


def write_output(target: Path, data: bytes, force: bool) -> None:
    """Bytes to standard output (-) or, atomically, to the file."""
    if target == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomic(target, lambda file: file.write(data), overwrite=force)


def pick_frame(im: Image.Image, frame: int) -> None:
    """Go to frame `frame` of a multi-frame image (an animation, a
    multi-page TIFF); the encoder writes the current frame, as Pillow's
    writers do without save_all."""
    frames = getattr(im, "n_frames", 1)
    if frame >= frames:
        raise ValueError(f"--frame {frame}: the image has {frames} {plural(frames, 'frame')} "
                         f"(--frame 0 to {frames - 1})")
    if frame:
        im.seek(frame)


def upright(im: Image.Image) -> Image.Image:
    """The image as it is meant to be seen: turned by its EXIF orientation,
    which is then reset (Image.save itself keeps pixels and EXIF as given)."""
    if im.getexif().get(ORIENTATION, 1) in (0, 1):
        return im
    return ImageOps.exif_transpose(im)


def check_output_folder(target: Path) -> None:
    """Name the user's missing folder, not the temporary file inside it."""
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "output folder does not exist", str(folder))


def _decode(job: Job, *, format: str, view: str, force: bool, background: tuple | None,
            streamed: bool) -> Outcome | None:
    if job.target != STDIO:
        check_output_folder(job.target)
    if streamed:
        line = BandLine("decode", job.source.name) if sys.stderr.isatty() else None
        try:
            return decode_streamed(job.source, job.target, format, force=force, view=view, progress=line)
        finally:
            if line is not None:
                line.clear()
    source = read_input(job.source) if job.source == STDIO else job.source
    if job.source == STDIO and not_kmq(source):
        raise ValueError(not_kmq(source))
    with Image.open(source) as im:
        if im.format != "KMQ":
            raise ValueError(f"not a KMQ file (it is {im.format})")
        if view:
            im.draft("P", None)
        im.load()
        metadata = {key: im.info[key] for key in METADATA_KEYS if im.info.get(key)}
        out = label_image(im, raw=view == "labels-raw") if view else im
        if background is not None and "A" in out.getbands():
            out = flatten(out, background)
        try:
            if job.source == STDIO or job.target == STDIO:
                decoded = io.BytesIO()
                out.save(decoded, format, **metadata)
                write_output(job.target, decoded.getvalue(), force)
                return Outcome(job.source, None, input_size(source), len(decoded.getvalue()))
            save_atomic(out, job.target, format, overwrite=force, **metadata)
            return None
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
    psnr: float | None = None, *, coding: int | None = None, speed: int | None = None,
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
    if speed is not None:
        params["speed"] = speed
    if dither:
        params["dither"] = True
    if optimize:
        params["optimize"] = True
    if coding is not None:
        params["coding"] = coding
    return params


def run_encode(args: argparse.Namespace) -> int:
    check_single_output(args)
    sources, problems = expand_inputs(args.inputs, readable_image, "images")

    def target_for(source: Path) -> Path:
        if args.output is not None:
            return Path(args.output)
        if source == STDIO:
            return STDIO  # as pngquant: from stdin, to stdout
        if args.out_dir is not None:
            return Path(args.out_dir) / (source.stem + ".kmq")
        return source.with_suffix(".kmq")

    jobs, clashes = plan_jobs(sources, target_for)
    params = codec_params(args.colors, args.quality, args.dither, args.optimize, args.psnr,
                          coding=args.coding, speed=args.speed)
    if len(jobs) == 1 and args.jobs <= 1 and not args.quiet and sys.stderr.isatty():
        params["progress"] = StageLine(jobs[0].source.name)
    task = partial(encode_file, params=params, force=args.force, frame=args.frame,
                   skip_if_larger=args.skip_if_larger)
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
    elif args.output is not None and args.output != str(STDIO) and is_stream_file(Path(args.output)):
        format, extension = resolve_format(Path(args.output).suffix)
    elif args.output is not None and args.output != str(STDIO):
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
    reasons = [(source, not_kmq(source)) for source in sources]
    problems += [Outcome(source, reason) for source, reason in reasons if reason]

    def target_for(source: Path) -> Path:
        if args.output is not None:
            return Path(args.output)
        if source == STDIO:
            return STDIO
        if args.out_dir is not None:
            return Path(args.out_dir) / (source.stem + suffix)
        return source.with_name(source.stem + suffix)

    jobs, clashes = plan_jobs([source for source, reason in reasons if not reason], target_for)
    task = partial(decode_file, format=format, view=view, force=args.force, background=args.background,
                   max_pixels=args.max_pixels)
    return run_jobs(args, "decode", task, jobs, problems + clashes)


def not_kmq(source: Path | io.BytesIO) -> str | None:
    """Why an input (a named file, or stdin's bytes) is not a .kmq file
    ("not a KMQ file (it is PNG)"), or None: a .kmq file, stdin not read
    yet, or a file that cannot be read (its job says why). Named files are
    checked before outputs are planned, so `kmq decode photo.png` is not
    taken for an attempt to write over the photo."""
    if source == STDIO:
        return None
    try:
        if isinstance(source, io.BytesIO):
            head = bytes(source.getbuffer()[: len(MAGIC)])
        else:
            with open(source, "rb") as file:
                head = file.read(len(MAGIC))
        if head == MAGIC:
            return None
        with Image.open(source) as im:
            kind = im.format
    except (OSError, ValueError):
        kind = None
        if isinstance(source, Path) and not source.is_file():
            return None
    finally:
        if isinstance(source, io.BytesIO):
            source.seek(0)
    return f"not a KMQ file (it is {kind})" if kind else "not a KMQ file"


class StageLine:
    """The encoder's progress(stage, done, total) as one line redrawn on
    stderr, for a single file on a terminal (a large one takes a while):
    the stage, a bar and its percentage, e.g.
    `encode big.png: code     [#########-----------]  45%`.

    Hand-written rather than a progress library's: one line needs no more
    than RedrawnLine, and the design card keeps run-time dependencies to
    Pillow and numpy. Redrawn at most ten times a second (and at every new
    stage and every stage's end), since the encoder may call it thousands
    of times."""

    BAR_WIDTH = 20
    REDRAW_INTERVAL = 0.1

    def __init__(self, name: str):
        self.name = name
        self.line = RedrawnLine(sys.stderr)
        self.stage = ""
        self.drawn_at = -math.inf
        self.searching = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "search":
            self.searching = True  # the K tried says more than the passes of each
        elif stage == "quantize" and self.searching:
            return
        now = time.monotonic()
        if stage == self.stage and 0 < done < total and now - self.drawn_at < self.REDRAW_INTERVAL:
            return
        self.stage, self.drawn_at = stage, now
        self.line.draw(f"encode {self.name}: {stage:<8} {progress_bar(done, total, self.BAR_WIDTH)}")

    def clear(self) -> None:
        self.line.clear()


def progress_bar(done: int, total: int, width: int) -> str:
    """`[#####---------------]  25%` for done of total."""
    share = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
    filled = int(share * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {int(share * 100):3d}%"
