"""Sources of row blocks: anything with `shape` (height, width, channels)
and `rows(top, count)` -> (count, width, channels) uint8, safe to call from
several threads. The encoder reads every row more than once (a histogram
pass, then a coding pass), so a source must be re-readable: an array, a
memory map, a file read by offset."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

CHANNELS = (1, 3, 4)


class RowSource(Protocol):
    shape: tuple[int, int, int]

    def rows(self, top: int, count: int) -> np.ndarray: ...


def check_shape(shape: tuple[int, ...], dtype: np.dtype, what: str) -> tuple[int, int, int]:
    """(height, width, channels) of an (h, w) or (h, w, 1|3|4) uint8 image."""
    if np.dtype(dtype) != np.uint8:
        raise ValueError(f"{what}: expected uint8 pixels, got {np.dtype(dtype)}")
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or shape[2] not in CHANNELS or 0 in shape:
        raise ValueError(f"{what}: expected an (h, w) or (h, w, 1|3|4) image, got shape {tuple(shape)}")
    return tuple(int(n) for n in shape)


class ArrayRows:
    """Rows of an (h, w[, C]) uint8 array: numpy, a np.memmap, an h5py or
    zarr array (anything sliceable by rows)."""

    def __init__(self, array):
        self.array = array
        self.shape = check_shape(array.shape, array.dtype, "array")

    def rows(self, top: int, count: int) -> np.ndarray:
        block = np.ascontiguousarray(self.array[top : top + count], dtype=np.uint8)
        return block.reshape(block.shape[0], self.shape[1], self.shape[2])


class _OpenFile:
    """A source holding a file descriptor (fd) for os.pread."""

    fd = -1

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NpyRows(_OpenFile):
    """Rows of a .npy file read by offset (os.pread, thread-safe), never
    mapped whole: a map of a file larger than the address space allowed
    (ulimit -v, prlimit --as) fails, and a read touches only its rows."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        with open(self.path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(file)
            self.offset = file.tell()
        if fortran and len(shape) > 1:
            raise ValueError(f"{self.path}: a Fortran-ordered .npy cannot be read by rows; save it C-ordered")
        self.shape = check_shape(shape, dtype, self.path)
        self.row_bytes = self.shape[1] * self.shape[2]
        size = os.path.getsize(self.path)
        if size < self.offset + self.shape[0] * self.row_bytes:
            raise ValueError(f"{self.path}: truncated .npy ({size} bytes for shape {shape})")
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def rows(self, top: int, count: int) -> np.ndarray:
        count = max(0, min(count, self.shape[0] - top))
        want = count * self.row_bytes
        buffer = bytearray(want)
        view, done = memoryview(buffer), 0
        while done < want:
            got = os.preadv(self.fd, [view[done:]], self.offset + top * self.row_bytes + done)
            if got == 0:
                raise OSError(f"{self.path}: file ended while reading rows {top}..{top + count}")
            done += got
        return np.frombuffer(buffer, np.uint8).reshape(count, self.shape[1], self.shape[2])


class TiffRows(_OpenFile):
    """Rows of the first page of a (Big)TIFF, strip by strip or tile row by
    tile row, decoded by tifffile (any compression it reads); only the
    segments covering the rows asked for are read (os.pread, thread-safe).
    tifffile's own memory map would need an uncompressed file and map it
    whole, which an address-space limit smaller than the image forbids."""

    def __init__(self, path: str | os.PathLike[str]):
        import tifffile

        self.path = os.fspath(path)
        with tifffile.TiffFile(self.path) as tif:
            page = tif.pages.first
            page.keyframe  # noqa: B018  (loads the tags decode needs)
            if page.samplesperpixel > 1 and page.planarconfig != 1:
                raise ValueError(f"{self.path}: planar (separate) TIFF samples are not supported; "
                                 "write it with planarconfig contig")
            self.shape = check_shape(page.shape, page.dtype, self.path)
            self.decode = page.decode
            self.tables = {"jpegtables": page.jpegtables} if page.jpegtables is not None else {}
            self.offsets, self.counts = tuple(page.dataoffsets), tuple(page.databytecounts)
            height, width = self.shape[:2]
            if page.is_tiled:
                self.segment_rows, self.segment_columns = page.tilelength, page.tilewidth
            else:
                self.segment_rows, self.segment_columns = min(page.rowsperstrip or height, height), width
        self.across = -(-width // self.segment_columns)
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def rows(self, top: int, count: int) -> np.ndarray:
        height, width, channels = self.shape
        count = max(0, min(count, height - top))
        out = np.empty((count, width, channels), np.uint8)
        for row in range(top // self.segment_rows, (top + count - 1) // self.segment_rows + 1):
            for column in range(self.across):
                index = row * self.across + column
                data = os.pread(self.fd, self.counts[index], self.offsets[index])
                segment, (*_, y, x, _), _ = self.decode(data, index, **self.tables)
                segment = segment.reshape(segment.shape[-3], segment.shape[-2], -1)
                y0, y1 = max(top, y), min(top + count, y + segment.shape[0])
                x1 = min(width, x + segment.shape[1])
                out[y0 - top : y1 - top, x:x1] = segment[y0 - y : y1 - y, : x1 - x]
        return out
