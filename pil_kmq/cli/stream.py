"""kmq encode of a .npy file or a (Big)TIFF too large for Pillow, and kmq
decode to a .npy or such a TIFF, streamed by bands (pil_kmq.stream): for
images larger than memory. The rows are read by offset and written
sequentially, never mapped whole, so the process fits an address-space
limit (prlimit --as) smaller than the image.

TIFFs go this way only where Pillow would refuse them (BigTIFF, or more
pixels than Image.MAX_IMAGE_PIXELS): below that Pillow's path keeps what it
adds (EXIF orientation, ICC conversion). TIFF needs tifffile, which the
[dask] extra (large images and Dask) installs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from ..atomic import write_atomic
from ..stream import NpyRows, StreamReader, TiffRows, save_rows
from .progress import RedrawnLine

STREAM_SUFFIXES = (".npy",)
TIFF_SUFFIXES = (".tif", ".tiff")


def is_stream_file(path: Path) -> bool:
    return path.suffix.lower() in STREAM_SUFFIXES


def too_large_for_pillow(width: int, height: int) -> bool:
    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and width * height > limit


def streams_input(path: Path) -> bool:
    """A .npy, or a TIFF Pillow would refuse (see the module's docstring)."""
    if is_stream_file(path):
        return True
    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file():
        return False
    try:
        import tifffile
    except ImportError:
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return tif.is_bigtiff or too_large_for_pillow(page.imagewidth, page.imagelength)
    except Exception:
        return False  # Pillow's path reports what is wrong with it


def encode_streamed(source: Path, target: Path, params: dict[str, Any], force: bool) -> None:
    """source (an (h, w) or (h, w, 1|3|4) uint8 .npy or TIFF) -> target .kmq, atomically."""
    with (NpyRows if is_stream_file(source) else TiffRows)(source) as rows:
        write_atomic(target, lambda file: save_rows(rows, file, **params), overwrite=force)


def streams_output(source: Path, format: str) -> bool:
    """A .npy, or a TIFF of a .kmq image Pillow would refuse to open."""
    if format == "NPY":
        return True
    if format != "TIFF":
        return False
    try:
        with StreamReader(source, check_size=False) as reader:
            height, width, _ = reader.shape
    except Exception:
        return False  # Pillow's path reports what is wrong with it
    return too_large_for_pillow(width, height)


def decode_streamed(source: Path, target: Path, format: str, *, force: bool, view: str = "",
                    progress=None) -> None:
    """source .kmq -> target .npy or TIFF of its colours ((h, w) for L,
    else (h, w, C)) or, with view "labels-raw", of its labels, band by band.

    Image.MAX_IMAGE_PIXELS is honoured as Image.open honours it (a warning
    past it, DecompressionBombError past twice it): this path's memory is a
    few bands whatever the size, but a file of a few bytes can claim an
    output of terabytes on disk (kmq decode --max-pixels sets the limit)."""
    with StreamReader(source) as reader:
        height, width, channels = reader.shape
        labels_only = view == "labels-raw"
        shape = (height, width) if labels_only or channels == 1 else (height, width, channels)
        if view == "labels":
            raise ValueError("--labels draws false colours; use --labels-raw for the label values")

        def bands():
            total = len(reader.spans)
            for done, (_, labels) in enumerate(reader.label_bands(), 1):
                yield labels if labels_only else reader.codebook[labels].reshape(len(labels), *shape[1:])
                if progress is not None:
                    progress("bands", done, total)

        def write_tiff(file: IO[bytes]) -> None:
            import tifffile

            rows = (row for band in bands() for row in band)
            colour = len(shape) == 3
            # named: tifffile reads a stream's name, an int for an os.fdopen file
            handle = tifffile.FileHandle(file, mode="wb", name=target.name)
            with tifffile.TiffWriter(handle, bigtiff=True) as tif:
                # uncompressed strips: any reader can map or read them by offset
                tif.write(rows, shape=shape, dtype=np.uint8, photometric="rgb" if colour else "minisblack",
                          extrasamples=("unassalpha",) if colour and shape[2] == 4 else None,
                          rowsperstrip=max(1, (1 << 20) // (width * (shape[2] if colour else 1))))

        def write(file: IO[bytes]) -> None:
            header = {"descr": "|u1", "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(file, header)
            for band in bands():
                file.write(band.tobytes())

        write_atomic(target, write if format == "NPY" else write_tiff, overwrite=force)


class BandLine:
    """progress(stage, done, total) as a line redrawn on stderr."""

    def __init__(self, verb: str, name: str):
        self.prefix = f"{verb} {name}"
        self.line = RedrawnLine(sys.stderr)

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.line.draw(f"{self.prefix}: {stage}" + (f" {done}/{total}" if total > 1 else ""))

    def clear(self) -> None:
        self.line.clear()
