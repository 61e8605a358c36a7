"""pil_kmq.dask (the [dask] extra): from_kmq reads only the bands a slice
touches; to_kmq, a graph of tasks (the histogram and adjacency as
reductions over chunks, a task per band), writes Image.save's bytes."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

from pil_kmq import dask as kmq_dask  # noqa: E402
from pil_kmq.format import bands  # noqa: E402
from pil_kmq.stream import StreamReader  # noqa: E402
from test_stream import CODINGS, photo_like, saved, small_pieces, streamed  # noqa: E402,F401  (a fixture)


@pytest.fixture
def small_bands(monkeypatch):
    monkeypatch.setattr(bands, "MIN_BAND_LABELS", 1 << 10)
    monkeypatch.setattr(bands, "TARGET_BAND_LABELS", 1 << 12)


def test_slicing_decodes_only_the_bands_it_touches(tmp_path, small_bands, monkeypatch):
    array = photo_like(400, 40, 3)
    path = tmp_path / "a.kmq"
    Image.fromarray(array).save(path, colors=24, coding="xz")
    decoded = []
    original = StreamReader.read_band
    monkeypatch.setattr(StreamReader, "read_band", lambda self, i: decoded.append(i) or original(self, i))
    lazy = kmq_dask.from_kmq(path)
    with StreamReader(path) as reader:
        spans = reader.spans
    assert len(spans) >= 4 and lazy.chunks[0] == tuple(rows for _, rows in spans)
    assert decoded == [] and lazy.shape == (400, 40, 3)
    y0, y1 = spans[1][0] + 3, spans[2][0] + 5  # inside band 1 to inside band 2
    with dask.config.set(scheduler="sync"):
        part = lazy[y0:y1].compute()
    assert sorted(decoded) == [1, 2]
    with Image.open(path) as im:
        whole = np.asarray(im)
    np.testing.assert_array_equal(part, whole[y0:y1])
    decoded.clear()
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(lazy.compute(), whole)
    assert sorted(decoded) == list(range(len(spans)))


def test_labels_and_grey(tmp_path, small_bands):
    array = photo_like(300, 50, 1)[..., 0]
    path = tmp_path / "g.kmq"
    Image.fromarray(array, "L").save(path, colors=7)
    from pil_kmq.reader import read_labels

    np.testing.assert_array_equal(kmq_dask.from_kmq(path, labels=True).compute(), read_labels(path))
    with Image.open(path) as im:
        np.testing.assert_array_equal(kmq_dask.from_kmq(path)[100:200].compute(), np.asarray(im)[100:200])


def to_kmq_bytes(array: np.ndarray, chunks, **options) -> bytes:
    """to_kmq of `array` ((h, w, 1) given as (h, w)) chunked as given."""
    flat = array[..., 0] if array.shape[2] == 1 else array
    written = io.BytesIO()
    kmq_dask.to_kmq(da.from_array(flat, chunks=chunks[: flat.ndim]), written, **options)
    return written.getvalue()


# What the graph adds to the streaming core (the histogram's and the
# adjacency's reduction trees, chunks cut anywhere, band tasks) at every
# mode and K, plain and optimized; every coding at one of them: the band
# coding is the streaming core's own (stream.encode.write_plan), whose
# tests cross every coding with every mode and K.
GRAPH_CASES = [(channels, k, options) for channels in (1, 3, 4) for k in (1, 2, 3, 17, 256)
               for options in ({}, {"optimize": True})]
GRAPH_CASES += [(4, 17, options) for options in CODINGS if options not in ({}, {"optimize": True})]


@pytest.mark.parametrize("channels, k, options", GRAPH_CASES,
                         ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) or "plain" if isinstance(v, dict) else str(v))
def test_to_kmq_same_bytes(small_pieces, small_bands, channels, k, options):
    """Chunks cut across bands, columns and (RGBA) channels; many bands,
    so the histogram and adjacency trees are several levels deep."""
    array = photo_like(133, 97, channels, seed=k)
    expected = saved(array, colors=k, **options)
    assert to_kmq_bytes(array, (29, 40, 2), colors=k, **options) == expected
    if k == 17:
        assert streamed(array, colors=k, **options) == expected


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (9, 7), (1024, 400)])
def test_to_kmq_same_bytes_at_several_sizes(shape):
    """Real band sizes (the 1024 x 400 image is 2 bands), one chunk or many
    (cut across bands and columns: 12 of them for the largest, not 77)."""
    array = photo_like(*shape, 3, seed=shape[0])
    many = (100, 64, 3) if shape[0] * shape[1] < 1 << 16 else (300, 150, 3)
    for options in ({"colors": 16, "optimize": True}, {"colors": 5, "coding": "zlib"}):
        expected = saved(array, **options)
        assert to_kmq_bytes(array, many, **options) == expected
        assert to_kmq_bytes(array, shape + (3,), **options) == expected


class CountedRows:
    """An array for da.from_array that counts the pixels read from it."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        self.read = 0

    def __getitem__(self, index):
        block = self.array[index]
        self.read += block.size // self.shape[2]
        return block


def test_to_kmq_codes_bands_in_tasks_gathered_in_windows(small_bands, monkeypatch):
    """Each chunk's colour counts are a task (the histogram a reduction of
    them); bands are coded in tasks of a chunk's height (here 2 bands), so
    each pass reads each chunk once; as many tasks run at once as there are
    threads, and the first band is written with at most twice that started,
    not the whole image."""
    array = photo_like(640, 128, 3)
    source = CountedRows(array)
    lazy = da.from_array(source, chunks=(64, 50, 3), asarray=True, lock=False)
    counted, windows, started_at_first_write = [], [], []
    counts = kmq_dask.pixel_counts
    monkeypatch.setattr(kmq_dask, "pixel_counts", lambda block: counted.append(block.shape) or counts(block))
    compute, running, lock = kmq_dask.compute_one, [0], threading.Lock()

    def compute_one(task, scheduler=None):
        assert scheduler == "sync"  # each task in the thread that asked, no pool per thread
        with lock:
            running[0] += 1
            windows.append(running[0])  # how many computes run now
        try:
            return compute(task, scheduler)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(kmq_dask, "compute_one", compute_one)
    monkeypatch.setattr(kmq_dask.parallel, "thread_count", lambda: 2)

    class Recorder(io.BytesIO):
        def write(self, data):
            if self.tell() and not started_at_first_write:  # after the head: band 0
                started_at_first_write.append(len(windows))
            return super().write(data)

    written = Recorder()
    with dask.config.set(scheduler="threads"):
        kmq_dask.to_kmq(lazy, written, colors=12, coding="zlib")
    assert written.getvalue() == saved(array, colors=12, coding="zlib")
    assert len(counted) == lazy.npartitions and sum(h * w for h, w, _ in counted) == 640 * 128
    assert bands.choose_band_height(128, 640) == 32
    assert len(windows) == 10 and max(windows) <= 2  # 10 tasks of 2 bands, 2 threads' worth at once
    assert started_at_first_write[0] <= 4  # 2 x threads submitted ahead at most
    assert source.read == 2 * 640 * 128  # the histogram, then the bands: each chunk once


def test_span_groups():
    spans = bands.band_rows(1000, 64)  # 15 of 64 rows, one of 40
    assert kmq_dask.span_groups(spans, 1024, 4) == [(64,) * 4] * 3 + [(64, 64, 64, 40)]
    assert kmq_dask.span_groups(spans, 100, 4) == [(64, 64)] * 7 + [(64, 40)]
    assert kmq_dask.span_groups(spans, 10, 4) == [(64,)] * 15 + [(40,)]
    assert kmq_dask.span_groups([(0, 5)], 1024, 8) == [(5,)]


def test_to_kmq_writes_a_path_atomically(tmp_path, small_bands, monkeypatch):
    """A failure part way leaves the old file as it was, and no other."""
    path = tmp_path / "a.kmq"
    path.write_bytes(b"old")
    array = photo_like(200, 30, 3)

    def fail(*args):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(kmq_dask, "labelled", fail)
    with pytest.raises(RuntimeError, match="worker lost"):
        kmq_dask.to_kmq(da.from_array(array, chunks=(50, 30, 3)), path, colors=8)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.kmq"]
    monkeypatch.undo()
    kmq_dask.to_kmq(da.from_array(array, chunks=(50, 30, 3)), path, colors=8)
    assert path.read_bytes() == saved(array, colors=8)
