"""Dask arrays to and from .kmq files: pip install "pil-kmq[dask]".

from_kmq(path) is a lazy dask.array whose chunks are the file's bands:
computing a slice of rows decodes only the bands it touches (each task
opens the file and reads its band, so any scheduler, threads, processes
or a distributed cluster, can run it). to_kmq(array, path) runs the
streaming core's passes (pil_kmq.stream.encode) as a graph on whatever
scheduler is current: the histogram and optimize's adjacency counts as
reductions over chunks, k-means once in this process, a task per band
returning its coded bytes, written here in order: the same bytes as
Image.save of the same pixels.
"""

from __future__ import annotations

import os
from functools import partial, reduce
from pathlib import Path
from typing import IO, Any

import dask
import dask.array as da
import dask.threaded
import numpy as np
from dask import delayed
from dask.base import tokenize

from .atomic import write_atomic
from .format import parallel
from .options import Options
from .stream import StreamReader
from .stream.encode import Quantization, pixel_counts, quantization, write_plan
from .stream.histogram import ColourCounter, codes_histogram
from .stream.pipeline import ordered_window
from .stream.rows import check_shape

__all__ = ["from_kmq", "to_kmq"]

# Pixels per coding task at most (16 bands of TARGET_BAND_LABELS): a task
# reads the rows of its bands whole, so chunks taller than this are read
# by more than one task rather than held whole by each.
GROUP_PIXELS = 1 << 22


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
        merge = partial(merge_histograms, channels=channels, total=height * width)
        (codes, counts), = dask.compute(tree(leaves, merge, cls.FAN_IN))
        progress("pixels", 1, 1)
        progress("quantize", 0, 1)
        colors, counts = codes_histogram(codes, counts, channels, height * width)
        del codes
        found = quantization(colors, counts, height * width, options)
        progress("quantize", 1, 1)
        return cls(array, found)

    def tasks(self, function, spans: list[tuple[int, int]], combine=None) -> list:
        """A delayed task per group of spans (span_groups): the list of
        function(labels) of its spans, or with combine their fold."""
        width = self.array.shape[1]
        rows = min(max(self.array.chunks[0]), max(1, GROUP_PIXELS // width))
        groups = span_groups(spans, rows, 2 * self.threads())
        grouped = self.array.rechunk({0: tuple(sum(group) for group in groups), 1: -1, 2: -1})
        return [delayed(labelled, pure=False)(block, self.found, function, group, combine)
                for block, group in zip(grouped.to_delayed(optimize_graph=False).ravel(), groups)]

    def map_labels(self, function, spans):
        # a compute per task, as many at once as the scheduler has threads
        # (twice that submitted): memory for that many tasks' pixels, and
        # their bytes gathered in order. On dask's local threads each task
        # runs in the thread that asked for it, as the streaming core's
        # bands do, not in a pool of threads per asking thread.
        scheduler = dask.base.get_scheduler()  # None: the collections' default, threads
        local = scheduler is None or scheduler is dask.threaded.get
        compute = partial(compute_one, scheduler="sync" if local else None)
        for answers in ordered_window(compute, self.tasks(function, spans), threads=self.threads()):
            yield from answers

    def reduce_labels(self, function, combine, spans, report):
        (total,) = dask.compute(tree(self.tasks(function, spans, combine), partial(reduce, combine), self.FAN_IN))
        report(len(spans))
        return total

    def threads(self) -> int:
        if self.client is not None:
            return max(1, sum(self.client.nthreads().values()))
        return parallel.thread_count()


def labelled(block: np.ndarray, found: Quantization, function, heights: tuple[int, ...], combine=None):
    """A task: function of the labels of each span (of `heights` rows) of
    a block, a list in order or, with combine, folded."""
    labels = found.labels(np.asarray(block, dtype=np.uint8))
    tops = np.cumsum((0, *heights))
    answers = [function(labels[top:bottom]) for top, bottom in zip(tops[:-1], tops[1:])]
    return answers if combine is None else reduce(combine, answers)


def span_groups(spans: list[tuple[int, int]], chunk_rows: int, tasks: int) -> list[tuple[int, ...]]:
    """Consecutive spans grouped into tasks of about `chunk_rows` rows (the
    array's chunk height, so that each chunk is read about once, not once
    per band it holds), but at least `tasks` of them where there are as
    many spans (so that every thread has work): each group's heights."""
    height = sum(count for _, count in spans)
    rows = max(1, min(chunk_rows, -(-height // tasks)))
    groups: list[tuple[int, ...]] = []
    group: list[int] = []
    for _, count in spans:
        group.append(count)
        if sum(group) >= rows:
            groups.append(tuple(group))
            group = []
    return groups + [tuple(group)] if group else groups


def merge_histograms(parts: list[tuple[np.ndarray, np.ndarray]], channels: int, total: int):
    """A node of the histogram's tree: its parts' (codes, counts) added up,
    by the streaming core's ColourCounter (a table over every code up to
    three channels: memory bounded by 2**24 counts, not by the colours)."""
    counter = ColourCounter(channels, total)
    for codes, counts in parts:
        counter.add(codes, counts)
    return counter.codes()


def tree(answers: list, merge, fan_in: int):
    """A delayed reduction of answers (in order): merge(a list of up to
    fan_in answers) -> their answer, a tree of tasks."""
    while len(answers) > 1:
        answers = [delayed(merge, pure=False)(answers[start : start + fan_in])
                   for start in range(0, len(answers), fan_in)]
    return answers[0]


def compute_one(task, scheduler: str | None = None):
    (answer,) = dask.compute(task, scheduler=scheduler)
    return answer


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
