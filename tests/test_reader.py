"""read_labels: random access to rows of the label map, with the decoder's checks."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, gradient_image, noise_image
from pil_kmq import read_labels
from pil_kmq.format import container, write_file

MALFORMED = FIXTURES / "malformed"


def _labels_by_pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.draft("P", im.size)
        return np.asarray(im)


def _save(im: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "KMQ", **params)
    return buffer.getvalue()


class Counting(io.BytesIO):
    """Counts the bytes read from it."""

    read_bytes = 0

    def read(self, size=-1):
        data = super().read(size)
        self.read_bytes += len(data)
        return data


@pytest.mark.parametrize("k", [1, 2, 3, 5, 16, 33, 64, 100, 256])
@pytest.mark.parametrize("coding", ["raw", "zlib", "xz"])
def test_read_labels_reads_any_rows(k, coding):
    data = _save(noise_image(13, 11, seed=k), colors=k, coding=coding)  # odd width: rows start mid-byte
    expected = _labels_by_pillow(data)
    assert np.array_equal(read_labels(io.BytesIO(data)), expected)
    for rows in (range(0, 1), range(3, 7), slice(5, None), range(10, 11), slice(4, 4), slice(1, 9, 3)):
        assert np.array_equal(read_labels(io.BytesIO(data), rows), expected[rows if isinstance(rows, slice) else slice(rows.start, rows.stop)])
    assert np.array_equal(read_labels(io.BytesIO(data), [7, 2, 2, 10]), expected[[7, 2, 2, 10]])


def test_read_labels_of_a_raw_file_reads_only_the_bytes_of_the_rows():
    data = _save(noise_image(200, 100), colors=16)
    handle = Counting(data)
    row = read_labels(handle, range(50, 51))
    assert row.shape == (1, 200)
    assert handle.read_bytes <= 22 + 16 * 3 + 200 // 2 + 8


def test_read_labels_of_a_banded_file_reads_only_the_bands_of_the_rows():
    labels = np.random.default_rng(1).integers(0, 4, (4096, 256), dtype=np.uint8)
    data = write_file(labels, np.zeros((4, 1), np.uint8), coding=container.ZLIB)
    expected = _labels_by_pillow(data)
    assert np.array_equal(expected, labels)
    handle = Counting(data)
    assert np.array_equal(read_labels(handle, [4000]), expected[[4000]])
    assert handle.read_bytes < len(data) / 3
    # a damaged band that is not read does not matter; the one read does
    damaged = bytearray(data)
    damaged[200] ^= 1
    assert np.array_equal(read_labels(io.BytesIO(bytes(damaged)), [4000]), expected[[4000]])
    with pytest.raises(OSError, match="CRC"):
        read_labels(io.BytesIO(bytes(damaged)), [0])


def test_read_labels_from_a_path_and_an_offset_file(tmp_path):
    path = tmp_path / "x.kmq"
    gradient_image(40, 30).save(path, colors=16, optimize=True)
    expected = _labels_by_pillow(path.read_bytes())
    assert np.array_equal(read_labels(path, range(10, 20)), expected[10:20])
    handle = io.BytesIO(b"prefix" + path.read_bytes())
    handle.seek(6)
    assert np.array_equal(read_labels(handle), expected)


@pytest.mark.parametrize("rows", [range(0, 31), [30], [-1], slice(-3, None), slice(0, 31)])
def test_rows_outside_the_image_raise_index_error(rows):
    data = _save(gradient_image(40, 30), colors=16)
    with pytest.raises(IndexError):
        read_labels(io.BytesIO(data), rows)


@pytest.mark.parametrize("rows", [["a"], [1.5], slice(0, 5, -1), 3])
def test_rows_that_are_not_row_numbers_raise(rows):
    data = _save(gradient_image(40, 30), colors=16)
    with pytest.raises((ValueError, TypeError)):
        read_labels(io.BytesIO(data), rows)


def test_read_labels_honours_max_image_pixels(monkeypatch):
    header = container.Header(width=50000, height=50000, channels=1, k=1)
    body = header.pack() + b"\x07"
    data = body + zlib.crc32(body).to_bytes(4, "big")
    with pytest.raises(Image.DecompressionBombError):
        read_labels(io.BytesIO(data), [0])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50000 * 50000 * 2 // 3)
    with pytest.warns(Image.DecompressionBombWarning):
        assert read_labels(io.BytesIO(data), [5]).shape == (1, 50000)


@pytest.mark.parametrize("name, message", [
    ("label_ge_k", "label 3 >= K=3"), ("band_label_ge_k", "label 3 >= K=3"),
    ("trailing_garbage", "longer"), ("band_trailing_garbage", "longer"),
    ("bad_crc", "CRC"), ("bad_band_crc", "CRC"), ("bad_head_crc", "CRC"),
    ("truncated_payload", "truncated"), ("truncated_band", "truncated"),
    ("version_1", "0.1.x"), ("duplicate_chunk", "second"),
])
def test_read_labels_rejects_what_the_decoder_rejects(name, message):
    with pytest.raises(OSError, match=message):
        read_labels(MALFORMED / f"{name}.kmq")


def test_partial_raw_reads_are_unchecked_but_lengths_are():
    """Documented: a partial raw read does not check the CRC (it covers the
    whole file), but the file length is always checked."""
    data = (MALFORMED / "bad_crc.kmq").read_bytes()
    assert read_labels(io.BytesIO(data), [0]).shape == (1, 64)
    with pytest.raises(OSError, match="longer"):
        read_labels(MALFORMED / "trailing_garbage.kmq", [0])
