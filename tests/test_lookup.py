"""The decoder's fused path: packed label bytes looked up straight to pixels
(format/lookup.py, bands.PixelReader), against unpack + codebook lookup."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import pil_kmq  # noqa: F401  (registers the format)
from pil_kmq.format import bands, bitpack, container
from pil_kmq.format.container import KmqFormatError
from pil_kmq.format.lookup import PackedLookup


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32])
def test_packed_bytes_give_the_pixels_of_their_labels(bits, dtype):
    rng = np.random.default_rng(bits)
    for k in sorted({1, 2, 3, (1 << bits) - 1, 1 << bits}):
        if not 1 <= k <= 1 << bits or container.band_label_width(k) != bits:
            continue
        table = rng.integers(0, np.iinfo(dtype).max, k, dtype=dtype, endpoint=True)
        labels = rng.integers(0, k, 999, dtype=np.uint8)
        packed = np.frombuffer(bitpack.pack(labels, bits), np.uint8)
        pixels = PackedLookup(table, bits).pixels(packed, labels.size)
        assert pixels.dtype == dtype
        np.testing.assert_array_equal(pixels[: labels.size], table[labels])


def test_a_label_at_or_over_k_is_refused_in_a_whole_byte_and_in_the_last_byte():
    lookup = PackedLookup(np.arange(3, dtype=np.uint32), 2)
    good = [0, 1, 2, 0] * 4
    for bad in ([3] + good[1:], good[:-3] + [3, 0, 0]):
        packed = np.frombuffer(bitpack.pack(np.array(bad, np.uint8), 2), np.uint8)
        with pytest.raises(KmqFormatError, match="label 3 >= K=3"):
            lookup.pixels(packed, len(bad))
    # slots past the labels (the band's padding) are not labels
    packed = np.frombuffer(bitpack.pack(np.array(good[:-1] + [3], np.uint8), 2), np.uint8)
    lookup.pixels(packed, len(good) - 1)
    with pytest.raises(KmqFormatError, match="label 3 >= K=3"):
        PackedLookup(np.arange(3, dtype=np.uint32), 8).pixels(np.array([0, 3], np.uint8), 2)


def band_file(labels: np.ndarray, codebook: np.ndarray, coding: int, band_height: int,
              strips: tuple[int, ...], tamper=None, coded_bands: bytes | None = None) -> bytes:
    """A band-coded file with the strip heights given, band by band;
    tamper(packed) may change a band's packed labels before compression.
    coded_bands: encoded_bands()'s bytes for these labels, when the caller
    has them (they do not depend on the codebook's colours or channels)."""
    height, width = labels.shape
    k, channels = codebook.shape
    header = container.Header(width=width, height=height, channels=channels, k=k, coding=coding)
    head = header.pack() + codebook.tobytes()
    start = bands.BAND_HEIGHT.pack(band_height)
    if coded_bands is None:
        coded_bands = encoded_bands(labels, k, coding, band_height, strips, tamper)
    return head + start + container.crc_bytes(head + start) + coded_bands


def encoded_bands(labels: np.ndarray, k: int, coding: int, band_height: int,
                  strips: tuple[int, ...], tamper=None) -> bytes:
    """The bands of band_file, each with the next of `strips` (cycled)."""
    parts = []
    rows = bands.band_rows(labels.shape[0], band_height)
    for (top, count), strip in zip(rows, strips * len(rows)):
        packed = bands.label_stream(labels[top : top + count], strip, container.band_label_width(k))
        if tamper is not None:
            packed = tamper(packed)
        parts.append(bands.encode_band(packed, strip, coding, k))
    return b"".join(parts)


CODINGS = [container.ZLIB, container.XZ, container.ZSTD]


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("k", [1, 2, 3, 5, 16, 17, 64, 256])
def test_every_k_and_mode_round_trips_with_odd_strips_and_pieces_that_split_bytes(coding, k):
    # 1031 columns and strips of 7 and 3 rows: pieces of an odd number of
    # labels, so a byte's labels straddle two pieces; 300-row bands hold
    # more than one piece (PIECE_LABELS) each
    rng = np.random.default_rng(k)
    height, width = 611, 1031
    labels = (rng.integers(0, k, (height, width // 8 + 1), dtype=np.uint8).repeat(8, axis=1)[:, :width])
    coded = encoded_bands(labels, k, coding, 300, (7, 1, 3))  # the same bands in every mode
    for channels, mode in ((1, "L"), (3, "RGB"), (4, "RGBA")):
        codebook = rng.integers(0, 256, (k, channels), dtype=np.uint8)
        data = band_file(labels, codebook, coding, 300, (7, 1, 3), coded_bands=coded)
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode == mode
            got = np.asarray(im).reshape(height, width, channels)
        np.testing.assert_array_equal(got, codebook[labels])
    with Image.open(io.BytesIO(data)) as im:  # the label map itself
        im.draft("P", im.size)
        np.testing.assert_array_equal(np.asarray(im), labels)


@pytest.mark.parametrize("coding", CODINGS)
def test_the_plugin_takes_the_fused_path(coding, monkeypatch):
    labels = np.indices((70, 1000)).sum(axis=0).astype(np.uint8) % 5
    data = band_file(labels, np.arange(15, dtype=np.uint8).reshape(5, 3), coding, 70, (1,))

    def refuse(*args):
        raise AssertionError("labels unpacked one by one")

    monkeypatch.setattr(bands, "LabelReader", refuse)
    with Image.open(io.BytesIO(data)) as im:
        im.load()


@pytest.mark.parametrize("coding", CODINGS)
def test_bad_labels_and_padding_are_still_refused(coding):
    labels = np.zeros((70, 1001), np.uint8)  # 70070 labels of 2 bits: 2 spare slots
    codebook = np.arange(9, dtype=np.uint8).reshape(3, 3)

    def label_three(packed: bytes) -> bytes:
        return packed[:5000] + b"\xc0" + packed[5001:]

    def padding(packed: bytes) -> bytes:
        return packed[:-1] + bytes([packed[-1] | 1])

    for tamper, message in ((label_three, "label 3 >= K=3"), (padding, "padding")):
        data = band_file(labels, codebook, coding, 70, (1,), tamper)
        with pytest.raises(OSError, match=message):
            with Image.open(io.BytesIO(data)) as im:
                im.load()
