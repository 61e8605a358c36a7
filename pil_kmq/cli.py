"""The `kmq` command: encode, decode, inspect and compare .kmq images.

Built on the same library calls a program would make (Image.save with the
KMQ options, Image.open, the container parser), so the command and the
library cannot drift apart. Every output goes through save_atomic.

Exit codes: 0 all succeeded, 1 some file failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import __version__
from .format import coding
from .reader import parse as parse_file
from .api import DEFAULT_COLORS, mean_squared_error, psnr_from_mse, size_report
from .atomic import format_for_path, save_atomic
from .pixels import to_array

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_SHEET_COLORS = (2, 3, 6, 16)
DEFAULT_DECODE_FORMAT = "png"
LABELS_SUFFIX = ".labels"


class UsageError(Exception):
    """A command line that makes no sense (exit 2), found after parsing."""


# --- one file at a time (these run in worker processes with -j) ---------


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass(frozen=True)
class Outcome:
    """What became of one input: an error message, or the bytes in and out."""

    source: Path
    error: str | None = None
    input_bytes: int = 0
    output_bytes: int = 0


def encode_file(job: Job, params: dict[str, Any], force: bool) -> Outcome:
    """Encode one image to .kmq; never raises, so a batch can go on."""
    return _run_job(job, force, partial(_encode, params=params, force=force))


def decode_file(job: Job, format: str, labels: bool, force: bool) -> Outcome:
    """Decode one .kmq file (or its label map) to an image file."""
    return _run_job(job, force, partial(_decode, format=format, labels=labels, force=force))


def _run_job(job: Job, force: bool, write: Callable[[Job], None]) -> Outcome:
    try:
        if job.target.is_dir():
            return Outcome(job.source, f"output {job.target} is a folder")
        if not force and job.target.exists():
            return Outcome(job.source, _exists_message(job.target))
        write(job)
        return Outcome(job.source, None, job.source.stat().st_size, job.target.stat().st_size)
    except FileExistsError:
        return Outcome(job.source, _exists_message(job.target))
    except Exception as exc:  # reported as one line; the batch goes on
        return Outcome(job.source, describe_error(exc, job.source))


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


def _exists_message(target: Path) -> str:
    return f"{target} exists (use --force to overwrite)"


def describe_error(exc: BaseException, source: Path | None = None) -> str:
    """One line for a failure: the reason, without a traceback."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename and (source is None or Path(exc.filename) != source):
            text += f": {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        text = "out of memory"
    return " ".join(text.split())


# --- batches -------------------------------------------------------------


class Reporter:
    """Failure lines always; progress and a summary only on a terminal.

    Progress goes to stderr and is redrawn in place at most ten times a
    second, so stdout stays clean for pipes.
    """

    REDRAW_INTERVAL = 0.1

    def __init__(self, verb: str, total: int, stream: TextIO, show_progress: bool):
        self.verb = verb
        self.total = total
        self.stream = stream
        self.show_progress = show_progress
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.line_shown = False
        self.done = 0
        self.failed = 0
        self.input_bytes = 0
        self.output_bytes = 0

    def report(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.error is not None:
            self.failed += 1
            self.failure(outcome.source, outcome.error)
        else:
            self.input_bytes += outcome.input_bytes
            self.output_bytes += outcome.output_bytes
        now = time.monotonic()
        if self.show_progress and (now - self.last_drawn >= self.REDRAW_INTERVAL or self.done == self.total):
            self.last_drawn = now
            self._draw(self._progress_line(now))

    def failure(self, source: Path, reason: str) -> None:
        self._clear()
        print(f"kmq: {source}: {reason}", file=self.stream, flush=True)

    def finish(self) -> None:
        self._clear()
        if self.show_progress:
            print(self.summary(), file=self.stream, flush=True)

    def summary(self) -> str:
        succeeded = self.done - self.failed
        elapsed = time.monotonic() - self.started
        line = (
            f"kmq {self.verb}: {succeeded} {_plural(succeeded, 'file')}, "
            f"{human_bytes(self.input_bytes)} -> {human_bytes(self.output_bytes)}"
        )
        if self.input_bytes:
            line += f" ({self.output_bytes / self.input_bytes:.1%})"
        line += f" in {elapsed:.1f} s"
        if self.failed:
            line += f", {self.failed} failed"
        return line

    def _progress_line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        remaining = (self.total - self.done) / rate if rate else math.inf
        return (
            f"{self.verb} {self.done}/{self.total} files, "
            f"{rate:.1f} files/s, {_duration(remaining)} left"
        )

    def _draw(self, line: str) -> None:
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self.line_shown = True

    def _clear(self) -> None:
        if self.line_shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.line_shown = False


def run_batch(
    task: Callable[[Job], Outcome], jobs: Sequence[Job], workers: int, reporter: Reporter
) -> None:
    """Run every job, in `workers` processes when more than one.

    On Ctrl-C the workers abandon the file in hand (save_atomic removes its
    temporary file) and skip the rest, so the command stops promptly and
    leaves only complete outputs.
    """
    workers = min(workers, len(jobs))
    if workers <= 1:
        for job in jobs:
            reporter.report(task(job))
        return
    stop = multiprocessing.Event()
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(stop,)) as pool:
        futures = {pool.submit(_run_in_worker, task, job): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker process died (BrokenProcessPool)
                    outcome = Outcome(futures[future].source, f"worker failed: {describe_error(exc)}")
                reporter.report(outcome)
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


# Worker-process state: a Ctrl-C interrupts a job but not an idle worker
# (which would die with a traceback), and after one no further job starts.
_stop_event: Any = None
_in_job = False


def _start_worker(stop: Any) -> None:
    global _stop_event
    _stop_event = stop
    signal.signal(signal.SIGINT, _interrupt_job)


def _interrupt_job(signum: int, frame: Any) -> None:
    if _in_job:
        raise KeyboardInterrupt


def _run_in_worker(task: Callable[[Job], Outcome], job: Job) -> Outcome:
    global _in_job
    if _stop_event is not None and _stop_event.is_set():
        return Outcome(job.source, "interrupted")
    _in_job = True
    try:
        return task(job)
    except KeyboardInterrupt:
        _stop_event.set()
        return Outcome(job.source, "interrupted")
    finally:
        _in_job = False


def expand_inputs(
    arguments: Iterable[str], accept: Callable[[Path], bool], what: str
) -> tuple[list[Path], list[Outcome]]:
    """Files named on the command line, a folder meaning the accepted files
    in it (not recursive, hidden files skipped, sorted by name)."""
    files: list[Path] = []
    problems: list[Outcome] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(
                entry for entry in path.iterdir()
                if entry.is_file() and not entry.name.startswith(".") and accept(entry)
            )
            if not found:
                problems.append(Outcome(path, f"folder holds no {what}"))
            files.extend(found)
        else:
            files.append(path)  # a missing file is reported by its job
    return files, problems


def plan_jobs(
    sources: Sequence[Path], target_for: Callable[[Path], Path]
) -> tuple[list[Job], list[Outcome]]:
    """One job per source; two sources aiming at one output is a failure
    for the second rather than a silent overwrite."""
    jobs: list[Job] = []
    problems: list[Outcome] = []
    claimed: dict[str, Path] = {}
    for source in sources:
        target = target_for(source)
        key = os.path.normcase(os.path.abspath(target))
        if key in claimed:
            problems.append(Outcome(source, f"output {target} is also the output for {claimed[key]}"))
            continue
        claimed[key] = source
        jobs.append(Job(source, target))
    return jobs, problems


def _batch(args: argparse.Namespace, verb: str, task: Callable[[Job], Outcome],
           jobs: list[Job], problems: list[Outcome]) -> int:
    show_progress = not args.quiet and sys.stderr.isatty()
    reporter = Reporter(verb, len(jobs) + len(problems), sys.stderr, show_progress)
    for problem in problems:
        reporter.report(problem)
    if args.out_dir is not None and jobs:
        try:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reporter.failure(Path(args.out_dir), describe_error(exc))
            return EXIT_FAILED
    workers = args.jobs or os.cpu_count() or 1
    try:
        run_batch(task, jobs, workers, reporter)
    finally:
        reporter.finish()
    return EXIT_FAILED if reporter.failed else EXIT_OK


def _check_single_output(args: argparse.Namespace) -> None:
    if args.output is not None and (len(args.inputs) != 1 or Path(args.inputs[0]).is_dir()):
        raise UsageError("-o/--output takes a single input file; use --out-dir for several")


# --- encode --------------------------------------------------------------


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
    _check_single_output(args)
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
    return _batch(args, "encode", task, jobs, problems + clashes)


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
    _check_single_output(args)
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
    return _batch(args, "decode", task, jobs, problems + clashes)


# --- info ----------------------------------------------------------------


def coding_name(number: int) -> str:
    return coding.NAMES.get(number, f"coding {number}")


def file_report(path: Path, original: Path | None = None) -> dict[str, Any]:
    """Everything `kmq info` shows, as plain data (the --json output)."""
    data = path.read_bytes()
    parsed = parse_file(data)
    header = parsed.header
    sizes = size_report((header.height, header.width, header.channels), header.k)
    report: dict[str, Any] = {
        "file": str(path),
        "file_bytes": len(data),
        "header": {
            "version": header.version,
            "width": header.width,
            "height": header.height,
            "channels": header.channels,
            "mode": header.mode,
            "k": header.k,
            "bits_per_index": header.bits,
            "coding": header.coding,
            "coding_name": coding_name(header.coding),
            "flags": header.flags,
            "metadata_length": header.metadata_length,
        },
        "metadata": {key: len(value) for key, value in parsed.info.items()},
        "sizes": {
            "original_bits": sizes.original_bits,
            "index_bits": sizes.index_bits,
            "codebook_bits": sizes.codebook_bits,
            "total_bits": sizes.total_bits,
            "ratio": sizes.ratio,
            "payload_bits": len(parsed.payload) * 8,
            "file_bits": len(data) * 8,
            "file_ratio": len(data) * 8 / sizes.original_bits,
        },
    }
    if original is not None:
        with Image.open(path) as im:
            decoded = to_array(im)
            mode = im.mode
        mse = mean_squared_error(load_as(original, mode, decoded.shape), decoded)
        report["comparison"] = {
            "original": str(original),
            "mse": mse,
            "psnr_db": None if mse == 0 else psnr_from_mse(mse),
        }
    return report


def load_as(path: Path, mode: str, shape: tuple[int, ...]) -> np.ndarray:
    """An image file as an array in `mode`, checked to match `shape`."""
    with Image.open(path) as im:
        if (im.height, im.width) != shape[:2]:
            raise ValueError(
                f"{path} is {im.width}x{im.height}, the .kmq file is {shape[1]}x{shape[0]}"
            )
        return to_array(im if im.mode == mode else im.convert(mode)).reshape(shape)


def format_report(report: dict[str, Any]) -> str:
    header = report["header"]
    sizes = report["sizes"]
    metadata = ", ".join(f"{key} ({length:,} bytes)" for key, length in report["metadata"].items())
    lines = [
        f"{'file':<15}{report['file']}",
        f"{'version':<15}{header['version']}",
        f"{'size':<15}{header['width']} x {header['height']}",
        f"{'mode':<15}{header['mode']} ({header['channels']} {_plural(header['channels'], 'channel')})",
        f"{'K':<15}{header['k']} {_plural(header['k'], 'colour')}, "
        f"{header['bits_per_index']} {_plural(header['bits_per_index'], 'bit')} per index",
        f"{'coding':<15}{header['coding_name']} ({header['coding']})",
        f"{'flags':<15}0x{header['flags']:02x}",
        f"{'metadata':<15}{metadata or 'none'}",
        "",
        size_report(
            (header["height"], header["width"], header["channels"]), header["k"]
        ).table(),
        f"{'payload bits':<15}{sizes['payload_bits']:>14,}",
        f"{'file size':<15}{report['file_bytes']:>14,} bytes = {sizes['file_bits']:,} bits "
        f"({sizes['file_ratio']:.2%} of original)",
    ]
    comparison = report.get("comparison")
    if comparison is not None:
        psnr = comparison["psnr_db"]
        lines += [
            "",
            f"{'compared with':<15}{comparison['original']}",
            f"{'MSE':<15}{comparison['mse']:>14.3f}",
            f"{'PSNR':<15}{'identical' if psnr is None else f'{psnr:.2f} dB':>14}",
        ]
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        report = file_report(path, Path(args.original) if args.original else None)
    except Exception as exc:
        print(f"kmq: {path}: {describe_error(exc, path)}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return EXIT_OK


# --- sheet ---------------------------------------------------------------


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
    """argparse type for -k 2,3,6,16."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(not 1 <= value <= 256 for value in values):
        raise argparse.ArgumentTypeError(f"each K must be 1..256, got {text!r}")
    return values


def run_sheet(args: argparse.Namespace) -> int:
    source = Path(args.image)
    target = Path(args.output) if args.output else source.with_name(source.stem + ".sheet.png")
    if not args.force and target.exists():
        print(f"kmq: {source}: {_exists_message(target)}", file=sys.stderr)
        return EXIT_FAILED
    params = codec_params(dither=args.dither, optimize=args.optimize)
    try:
        with Image.open(source) as im:
            im.load()
            panels = sheet_panels(im, args.colors, params)
        save_atomic(render_sheet(panels, args.columns), target, overwrite=args.force)
    except FileExistsError:
        print(f"kmq: {source}: {_exists_message(target)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        print(f"kmq: {source}: {describe_error(exc, source)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# --- the parser ----------------------------------------------------------


def _number(parse: Callable[[str], float], kind: str, low: float, high: float, bounds: str):
    """An argparse type: `parse` the text and check low <= value <= high."""

    def check(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {bounds}, got {text}")
        return value

    return check


_colors_count = _number(int, "an integer", 1, 256, "K in 1..256")
_positive_float = _number(float, "a number", math.ulp(0.0), sys.float_info.max, "a positive number")
_workers = _number(int, "an integer", 0, math.inf, "0 or more")


def _add_batch_options(parser: argparse.ArgumentParser, what: str) -> None:
    outputs = parser.add_mutually_exclusive_group()
    outputs.add_argument("-o", "--output", metavar="OUT",
                         help=f"output file, for a single input (default: {what})")
    outputs.add_argument("--out-dir", metavar="DIR",
                         help="write the outputs into DIR, created if missing "
                              "(default: beside each input)")
    parser.add_argument("-j", "--jobs", type=_workers, default=1, metavar="N",
                        help="process N files at once in separate processes; "
                             "0 means one per CPU (default: 1)")
    parser.add_argument("-f", "--force", action="store_true",
                        help="overwrite existing outputs (default: off, existing files "
                             "are left alone and reported as failures)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress or summary even on a terminal "
                             "(default: off; failures are always reported)")


def _add_codec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dither", action="store_true",
                        help="dither the colours (default: off)")
    parser.add_argument("--optimize", action="store_true",
                        help="entropy-code the index stream for a smaller file "
                             "(default: off, raw indices as in the tutorial)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmq",
        description="Encode, decode and inspect .kmq (K-means colour-quantized) images.",
        epilog="Exit status: 0 if every file succeeded, 1 if any failed, 2 for usage errors. "
               "Run 'kmq COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    encode = commands.add_parser(
        "encode", help="compress images to .kmq",
        description="Compress images (any format Pillow reads) to .kmq. "
                    "A folder argument means the images in it.")
    encode.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders")
    encode.add_argument("-k", "--colors", type=_colors_count, metavar="K",
                        help=f"colours in the codebook, 1..256 (default: {DEFAULT_COLORS}, "
                             "or the fewest reaching --quality)")
    encode.add_argument("--quality", type=_positive_float, metavar="Q",
                        help="target PSNR in dB: choose K to reach it "
                             "(default: off, K comes from -k)")
    _add_codec_options(encode)
    _add_batch_options(encode, "IN with its suffix changed to .kmq")
    encode.set_defaults(run=run_encode, parser=encode)

    decode = commands.add_parser(
        "decode", help="decode .kmq files to PNG or any format Pillow writes",
        description="Decode .kmq files to images. A folder argument means the .kmq files in it.")
    decode.add_argument("inputs", nargs="+", metavar="IN.kmq", help=".kmq files or folders")
    decode.add_argument("--format", metavar="FMT",
                        help="output format, a Pillow format name or extension such as png, "
                             f"webp or jpg (default: from -o's extension, else {DEFAULT_DECODE_FORMAT})")
    decode.add_argument("--labels", action="store_true",
                        help="write the label map (the segmentation) as a P image with the "
                             f"codebook as palette, named IN{LABELS_SUFFIX}.png (default: off, "
                             "write the colours)")
    _add_batch_options(decode, "IN with its suffix changed to the format's")
    decode.set_defaults(run=run_decode, parser=decode)

    info = commands.add_parser(
        "info", help="show a .kmq file's header and size accounting",
        description="Show a .kmq file's header fields and the size table: original bits "
                    "(8 per channel per pixel), index bits, codebook bits, total, ratio, "
                    "and the actual file size.")
    info.add_argument("file", metavar="FILE.kmq", help="the .kmq file")
    info.add_argument("--original", metavar="IMG",
                      help="also report MSE and PSNR against this image (default: none)")
    info.add_argument("--json", action="store_true",
                      help="print machine-readable JSON instead of text; an identical "
                           "image has psnr_db null (default: off)")
    info.set_defaults(run=run_info, parser=info)

    sheet = commands.add_parser(
        "sheet", help="compare an image with its reconstructions at several K",
        description="Draw the original and its .kmq reconstruction at each K side by side, "
                    "each labelled with K, PSNR and file size.")
    sheet.add_argument("image", metavar="IMG", help="the image to compress")
    sheet.add_argument("-k", "--colors", type=parse_colors_list,
                       default=list(DEFAULT_SHEET_COLORS), metavar="K,K,...",
                       help="the K values to show (default: "
                            f"{','.join(map(str, DEFAULT_SHEET_COLORS))})")
    sheet.add_argument("-o", "--output", metavar="OUT",
                       help="the sheet image; its extension picks the format "
                            "(default: IMG's name with .sheet.png)")
    sheet.add_argument("--columns", type=_workers, metavar="N",
                       help="panels per row (default: all in one row)")
    _add_codec_options(sheet)
    sheet.add_argument("-f", "--force", action="store_true",
                       help="overwrite an existing sheet (default: off)")
    sheet.set_defaults(run=run_sheet, parser=sheet)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.run(args)
    except SystemExit as exit:  # argparse: --help, --version, usage errors
        return exit.code if isinstance(exit.code, int) else EXIT_OK if exit.code is None else EXIT_USAGE
    except UsageError as exc:
        args.parser.print_usage(sys.stderr)
        print(f"kmq {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kmq: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
