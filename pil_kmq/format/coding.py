"""The codings by number and name, and how the encoder fills a payload.

Coding 0 (raw) is the tutorial's bit packing (raw.py); codings 1 (zlib) and
2 (xz, raw LZMA2) store independent bands (bands.py). With optimize the
encoder orders the codebook (order.py) and picks, band by band, the strip
height that compresses smaller; bands are compressed in threads.
"""

from __future__ import annotations

import zlib

import numpy as np

from . import bands, order, parallel, raw
from .container import CODING_NAMES, RAW, XZ, ZLIB, band_label_width, crc_bytes

NAMES = CODING_NAMES
BAND_CODINGS = (ZLIB, XZ)
# Strip heights an optimize encode chooses from per band; without optimize, the first.
STRIPS = {ZLIB: (1, 32), XZ: (32, 1)}


def band_payload(labels: np.ndarray, k: int, coding: int, head: bytes, optimize: bool) -> bytes:
    """B, the head CRC and every band, compressed in threads."""
    height, width = labels.shape
    band_height = bands.choose_band_height(width, height)
    strips = band_strips(coding, optimize, height)

    def encode(rows: tuple[int, int]) -> bytes:
        top, count = rows
        return code_band(labels[top : top + count], k, coding, strips)

    encoded = parallel.ordered_map(encode, bands.band_rows(height, band_height))
    return payload_start(head, band_height) + b"".join(encoded)


def payload_start(head: bytes, band_height: int) -> bytes:
    """B and the CRC of the head and B: what comes before band 0."""
    start = bands.BAND_HEIGHT.pack(band_height)
    return start + crc_bytes(head + start)


def band_strips(coding: int, optimize: bool, height: int) -> tuple[int, ...]:
    """The strip heights a band of an image `height` rows tall chooses from."""
    return STRIPS[coding] if optimize and height > 1 else STRIPS[coding][:1]


def code_band(band: np.ndarray, k: int, coding: int, strips: tuple[int, ...]) -> bytes:
    """One band's bytes (bands.encode_band) for its (rows, W) labels. With
    several strip heights the band gets the one its bytes compress smaller
    with under zlib level 1: a cheap predictor that picks as the real coder
    would within 0.1% on Kodak, at a tenth of the cost of trying both."""
    width_bits = band_label_width(k)
    candidates = {s: bands.label_stream(band, s, width_bits) for s in strips}
    strip = strips[0]
    if len(strips) > 1:
        strip = min(strips, key=lambda s: len(zlib.compress(candidates[s], 1)))
    return bands.encode_band(candidates[strip], strip, coding, k)


def payload(labels: np.ndarray, k: int, coding: int, head: bytes, optimize: bool = False) -> bytes:
    """Everything after the head: for raw, the packed labels and the file CRC."""
    if coding == RAW:
        packed = raw.encode(labels, k)
        return packed + crc_bytes(packed, zlib.crc32(head))
    if coding in BAND_CODINGS:
        return band_payload(labels, k, coding, head, optimize)
    raise ValueError(f"unknown coding {coding!r}")


def ordered(labels: np.ndarray, codebook: np.ndarray):
    """(labels, codebook) with the codebook in the order LZMA likes."""
    return order.apply_order(labels, codebook, order.reorder_palette(labels, len(codebook)))


def candidates(coding: int | None, optimize: bool) -> tuple[int, ...]:
    if coding is not None:
        return (coding,)
    # zlib is never the smallest on photos and costs as much as xz to try
    return (RAW, XZ) if optimize else (RAW,)

