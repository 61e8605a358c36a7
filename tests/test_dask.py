"""pil_kmq.dask (the [dask] extra): from_kmq reads only the bands a slice
touches; to_kmq writes the streaming core's bytes (Image.save's)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

from helpers import save_to_bytes  # noqa: E402
from pil_kmq import dask as kmq_dask  # noqa: E402
from pil_kmq.format import bands  # noqa: E402
from pil_kmq.stream import ArrayRows, StreamReader, save_rows  # noqa: E402


@pytest.fixture
def small_bands(monkeypatch):
    monkeypatch.setattr(bands, "MIN_BAND_LABELS", 1 << 10)
    monkeypatch.setattr(bands, "TARGET_BAND_LABELS", 1 << 12)


def photo_like(height, width, channels, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 3 + y) % 256, (y * 5) % 256, (x * y // 7) % 256, np.clip(x * 9 - 200, 0, 255)], -1)
    return np.clip(base[..., :channels] + rng.integers(0, 24, (height, width, channels)), 0, 255).astype(np.uint8)


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


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("options", [{"colors": 1}, {"colors": 16, "optimize": True},
                                     {"colors": 256, "coding": "zlib"}, {"colors": 3, "coding": "raw"}])
def test_to_kmq_same_bytes(small_bands, channels, options):
    array = photo_like(150, 60, channels, seed=channels)
    lazy = da.from_array(array if channels > 1 else array[..., 0], chunks=(37, 60) + ((channels,) if channels > 1 else ()))
    written = io.BytesIO()
    kmq_dask.to_kmq(lazy, written, **options)
    streamed = io.BytesIO()
    save_rows(ArrayRows(array), streamed, **options)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    expected = save_to_bytes(Image.fromarray(array[..., 0] if channels == 1 else array, mode), **options)
    assert written.getvalue() == streamed.getvalue() == expected
