"""kmq info: a .kmq file's header and the tutorial's size accounting."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..api import size_report
from ..format import coding
from ..reader import parse as parse_file
from ..pixels import to_array
from ..quantize.metrics import mean_squared_error, psnr_from_mse
from .batch import expand_inputs
from .batch_types import STDIO, Outcome
from .convert import upright
from .progress import plural
from .status import EXIT_FAILED, EXIT_OK, UsageError, describe_error


def coding_name(number: int) -> str:
    return coding.NAMES.get(number, f"coding {number}")


def file_report(path: Path, original: Path | None = None) -> dict[str, Any]:
    """Everything `kmq info` shows, as plain data (the --json output); the
    path - is standard input, as for encode and decode."""
    data = sys.stdin.buffer.read() if path == STDIO else path.read_bytes()
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
            "bits_per_label": header.bits,
            "coding": header.coding,
            "coding_name": coding_name(header.coding),
            "flags": header.flags,
            "metadata_length": header.metadata_length,
        },
        "metadata": {key: len(value) for key, value in parsed.info.items() if isinstance(value, bytes)},
        "dpi": parsed.info.get("dpi"),
        "smooth": parsed.info.get("smooth", 0.0),
        "sizes": {
            "original_bits": sizes.original_bits,
            "label_bits": sizes.label_bits,
            "codebook_bits": sizes.codebook_bits,
            "total_bits": sizes.total_bits,
            "ratio": sizes.ratio,
            "payload_bits": len(parsed.payload) * 8,
            "file_bits": len(data) * 8,
            "file_ratio": len(data) * 8 / sizes.original_bits,
        },
    }
    if original is not None:
        with Image.open(io.BytesIO(data)) as im:
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
    """An image file as an array in `mode`, checked to match `shape`; turned
    upright by its EXIF orientation first, as `kmq encode` turns it."""
    with Image.open(path) as opened:
        im = upright(opened)
        if (im.height, im.width) != shape[:2]:
            raise ValueError(
                f"{path} is {im.width}x{im.height}, the .kmq file is {shape[1]}x{shape[0]}"
            )
        return to_array(im if im.mode == mode else im.convert(mode)).reshape(shape)


def format_report(report: dict[str, Any]) -> str:
    header = report["header"]
    sizes = report["sizes"]
    metadata = ", ".join(
        [f"{key} ({length:,} bytes)" for key, length in report["metadata"].items()]
        + ([f"dpi {report['dpi'][0]:g} x {report['dpi'][1]:g}"] if report["dpi"] else [])
    )
    lines = [
        f"{'file':<15}{report['file']}",
        f"{'version':<15}{header['version']}",
        f"{'size':<15}{header['width']} x {header['height']}",
        f"{'mode':<15}{header['mode']} ({header['channels']} {plural(header['channels'], 'channel')})",
        f"{'K':<15}{header['k']} {plural(header['k'], 'colour')}, "
        f"{header['bits_per_label']} {plural(header['bits_per_label'], 'bit')} per label",
        f"{'coding':<15}{header['coding_name']} ({header['coding']})",
        f"{'labels':<15}" + (f"smoothed, smooth={report['smooth']:g}" if report["smooth"] else "nearest colour"),
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


def format_table(reports: list[dict[str, Any]]) -> str:
    """One row per file: what tells files apart at a glance."""
    rows = [("file", "size", "mode", "K", "coding", "bytes", "ratio")]
    for report in reports:
        header = report["header"]
        rows.append((
            report["file"], f"{header['width']} x {header['height']}", header["mode"],
            str(header["k"]), header["coding_name"], f"{report['file_bytes']:,}",
            f"{report['sizes']['file_ratio']:.2%}",
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) if column < 3 else cell.rjust(width)
                 for column, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    paths, problems = expand_inputs(args.inputs, lambda path: path.suffix.lower() == ".kmq", ".kmq files")
    single = len(args.inputs) == 1 and len(paths) == 1 and not Path(args.inputs[0]).is_dir()
    if args.original and not single:
        raise UsageError("--original compares a single FILE.kmq with its image")
    for problem in problems:
        print(f"kmq: {problem.source}: {problem.error}", file=sys.stderr)
    reports = []
    for path in paths:
        try:
            reports.append(file_report(path, Path(args.original) if args.original else None))
        except Exception as exc:
            problems.append(Outcome(path, describe_error(exc, path)))
            print(f"kmq: {path}: {describe_error(exc, path)}", file=sys.stderr)
    if args.json:
        print(json.dumps(reports, indent=2))
    elif single and reports:
        print(format_report(reports[0]))
    elif reports:
        print(format_table(reports))
    return EXIT_FAILED if problems else EXIT_OK
