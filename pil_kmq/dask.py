"""Dask arrays to and from .kmq files: pip install "pil-kmq[dask]".

from_kmq(path) is a lazy dask.array whose chunks are the file's bands:
computing a slice of rows decodes only the bands it touches (each task
opens the file and reads its band, so any scheduler, threads, processes
or a distributed cluster, can run it). to_kmq(array, path) runs the
streaming core (pil_kmq.stream) over the array's rows, each block of rows
computed by dask when the encoder reaches it: the same passes, the same
bytes as Image.save of the same pixels.
"""

from __future__ import annotations

import os
from typing import IO, Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from .stream import StreamReader, save_rows
from .stream.rows import check_shape

__all__ = ["from_kmq", "to_kmq"]


def read_band(path: str, index: int, labels: bool = False) -> np.ndarray:
    """Band `index` of the file: its labels (rows, W), or its colours
    (rows, W) for L, else (rows, W, C). A task of from_kmq's graph."""
    with StreamReader(path, check_size=False) as reader:
        band = reader.read_band(index)
        if labels:
            return band
        pixels = reader.codebook[band]
        return pixels[..., 0] if reader.shape[2] == 1 else pixels


def from_kmq(path: str | os.PathLike[str], labels: bool = False) -> da.Array:
    """A .kmq file as a lazy (H, W) or (H, W, C) uint8 dask array of its
    colours (labels=True: its (H, W) label map), one chunk per band.

    The head is read now (and checked, with Image.MAX_IMAGE_PIXELS as
    Image.open honours it); bands are read when computed, each CRC-checked.
    """
    path = os.path.abspath(os.fspath(path))
    with StreamReader(path) as reader:
        height, width, channels = reader.shape
        rows = tuple(count for _, count in reader.spans)
    name = "from-kmq-" + tokenize(path, os.stat(path).st_mtime_ns, os.stat(path).st_size, labels)
    flat = labels or channels == 1
    chunks = (rows, (width,)) if flat else (rows, (width,), (channels,))
    tail = (0,) if flat else (0, 0)
    graph = {(name, index, *tail): (read_band, path, index, labels) for index in range(len(rows))}
    return da.Array(graph, name, chunks, dtype=np.uint8)


class DaskRows:
    """A dask array as a stream.RowSource: rows computed on demand."""

    def __init__(self, array: da.Array):
        self.array = array
        self.shape = check_shape(array.shape, array.dtype, "dask array")

    def rows(self, top: int, count: int) -> np.ndarray:
        block = np.asarray(self.array[top : top + count].compute(), dtype=np.uint8)
        return block.reshape(block.shape[0], self.shape[1], self.shape[2])


def to_kmq(array: Any, fp: str | os.PathLike[str] | IO[bytes], **save_options: Any) -> None:
    """Write an (H, W) or (H, W, 1|3|4) uint8 array (dask or anything
    da.asarray takes) as a .kmq file, with Image.save's options; the same
    bytes as Image.save and stream.save_rows of the same pixels."""
    save_rows(DaskRows(da.asarray(array)), fp, **save_options)
