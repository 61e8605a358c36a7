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
from functools import partial, reduce
from pathlib import Path
from typing import IO, Any

import dask
import dask.array as da
import numpy as np
from dask import delayed
from dask.base import tokenize

from .atomic import write_atomic
from .format import parallel
from .options import Options
from .stream import StreamReader
from .stream.encode import Quantization, pixel_counts, quantization, write_plan
from .stream.histogram import codes_histogram, merge_counts
from .stream.pipeline import ordered_window
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


def to_kmq(array: Any, fp: str | os.PathLike[str] | IO[bytes], **save_options: Any) -> None:
    """Write an (H, W) or (H, W, 1|3|4) uint8 array (dask or anything
    da.asarray takes) as a .kmq file, with Image.save's options; the same
    bytes as Image.save and stream.save_rows of the same pixels.

    Runs on the current dask scheduler (a distributed Client's cluster if
    one is the default): the exact colour histogram is a tree reduction of
    each chunk's counts, k-means runs once here, and each band's labels
    and coding are a task returning the band's bytes (optimize's adjacency
    counts, for the codebook order, are a tree reduction too). The bytes
    are written here in band order, a few windows of bands in flight, so
    this process holds the histogram and a few bands' bytes, never the
    image. A path is written atomically (atomic.write_atomic)."""
    lazy = da.asarray(array)
    shape = check_shape(lazy.shape, lazy.dtype, "dask array")
    lazy = lazy[..., None] if lazy.ndim == 2 else lazy

    def write(file: IO[bytes]) -> None:
        write_plan(file, shape, lambda options, progress: DaskQuantized.run(lazy, options, progress), save_options)

    if isinstance(fp, (str, os.PathLike)):
        write_atomic(Path(fp), write, overwrite=True)
    else:
        write(fp)


class DaskQuantized:
    """stream.encode's LabelledRows for a dask array: labels made in tasks."""

    FAN_IN = 8  # answers merged per task of a reduction tree

    def __init__(self, array: da.Array, found: Quantization):
        self.array, self.codebook = array, found.codebook
        self.client = current_client()
        # on a cluster the lookup (up to 16 MiB) goes to each worker once
        self.found = self.client.scatter(found, broadcast=True, hash=False) if self.client else found

    @classmethod
    def run(cls, array: da.Array, options: Options, progress) -> DaskQuantized:
        """Pass 1 on the cluster (the histogram), k-means here."""
        height, width, channels = array.shape
        whole = array.rechunk({2: channels})
        progress("pixels", 0, 1)
        leaves = [delayed(pixel_counts)(block) for block in whole.to_delayed().ravel()]
        (codes, counts), = dask.compute(tree(leaves, merge_counts, cls.FAN_IN))
        progress("pixels", 1, 1)
        progress("quantize", 0, 1)
        colors, counts = codes_histogram(codes, counts, channels, height * width)
        del codes
        found = quantization(colors, counts, height * width, options)
        progress("quantize", 1, 1)
        return cls(array, found)

    def tasks(self, function, spans: list[tuple[int, int]]) -> list:
        """A delayed function(labels) per span of rows."""
        rows = self.array.rechunk({0: tuple(count for _, count in spans), 1: -1, 2: -1})
        return [delayed(labelled, pure=False)(block, self.found, function)
                for block in rows.to_delayed(optimize_graph=False).ravel()]

    def map_labels(self, function, spans):
        window = 2 * self.threads()
        for answers in ordered_window(compute_all, _batched(self.tasks(function, spans), window), threads=2):
            yield from answers

    def reduce_labels(self, function, combine, spans, report):
        (total,) = dask.compute(tree(self.tasks(function, spans), partial(reduce, combine), self.FAN_IN))
        report(len(spans))
        return total

    def threads(self) -> int:
        if self.client is not None:
            return max(1, sum(self.client.nthreads().values()))
        return parallel.thread_count()


def labelled(block: np.ndarray, found: Quantization, function):
    """A task: function of a block's labels."""
    return function(found.labels(np.asarray(block, dtype=np.uint8)))


def tree(answers: list, merge, fan_in: int):
    """A delayed reduction of answers (in order): merge(a list of up to
    fan_in answers) -> their answer, a tree of tasks."""
    while len(answers) > 1:
        answers = [delayed(merge, pure=False)(answers[start : start + fan_in])
                   for start in range(0, len(answers), fan_in)]
    return answers[0]


def compute_all(tasks: list) -> tuple:
    return dask.compute(*tasks)


def _batched(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def current_client():
    """The distributed Client dask computes with now, or None (threads,
    processes, sync)."""
    scheduler = dask.base.get_scheduler()
    owner = getattr(scheduler, "__self__", None)
    try:
        from distributed import Client
    except ImportError:
        return None
    return owner if isinstance(owner, Client) else None
