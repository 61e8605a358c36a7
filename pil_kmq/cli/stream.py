"""kmq encode of a .npy file and kmq decode to one, streamed by bands
(pil_kmq.stream): for images larger than memory. The rows are read by
offset and written sequentially, never mapped whole, so the process fits
an address-space limit (prlimit --as) smaller than the image."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..atomic import write_atomic
from ..stream import NpyRows, StreamReader, save_rows
from .progress import RedrawnLine

STREAM_SUFFIXES = (".npy",)


def is_stream_file(path: Path) -> bool:
    return path.suffix.lower() in STREAM_SUFFIXES


def encode_npy(source: Path, target: Path, params: dict[str, Any], force: bool) -> None:
    """source (an (h, w) or (h, w, 1|3|4) uint8 .npy) -> target .kmq, atomically."""
    with NpyRows(source) as rows:
        write_atomic(target, lambda file: save_rows(rows, file, **params), overwrite=force)


def decode_npy(source: Path, target: Path, force: bool, view: str = "", progress=None) -> None:
    """source .kmq -> target .npy of its colours ((h, w) for L, else (h, w,
    C)) or, with view "labels-raw", of its labels, band by band.

    No MAX_IMAGE_PIXELS limit: it guards memory, and this path's memory is
    a few bands whatever the image's size."""
    with StreamReader(source, check_size=False) as reader:
        height, width, channels = reader.shape
        labels_only = view == "labels-raw"
        shape = (height, width) if labels_only or channels == 1 else (height, width, channels)
        if view == "labels":
            raise ValueError("--labels writes an image; use --labels-raw for a .npy of the labels")

        def write(file: IO[bytes]) -> None:
            header = {"descr": "|u1", "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(file, header)
            total = len(reader.spans)
            for done, (_, labels) in enumerate(reader.label_bands(), 1):
                file.write((labels if labels_only else reader.codebook[labels]).tobytes())
                if progress is not None:
                    progress("bands", done, total)

        write_atomic(target, write, overwrite=force)


class BandLine:
    """progress(stage, done, total) as a line redrawn on stderr."""

    def __init__(self, verb: str, name: str):
        self.prefix = f"{verb} {name}"
        self.line = RedrawnLine(sys.stderr)

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.line.draw(f"{self.prefix}: {stage}" + (f" {done}/{total}" if total > 1 else ""))

    def clear(self) -> None:
        self.line.clear()
