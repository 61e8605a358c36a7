"""The codings by number and name, and how the encoder fills a payload.

Coding 0 (raw) is the tutorial's bit packing (raw.py); codings 1 (zlib),
2 (xz, raw LZMA2) and 3 (zstd) store independent bands (bands.py). With
optimize the encoder orders the codebook (order.py) and picks, band by band,
the strip height that compresses smaller; bands are compressed in threads.

zstd, the fast coding, always gets the strip height choice (on Kodak at
K = 16 it is what brings zstd level 15 under 0.95x the zlib coding: 0.958
with S = 1 alone, 0.947 with the choice) and never the codebook order,
which changes its size by less than 0.01% (it has no literal context bits
like LZMA's lc).
"""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np

from . import bands, order, parallel, raw, streams
from .container import CODING_NAMES, RAW, XZ, ZLIB, ZSTD, band_label_width, crc_bytes

NAMES = CODING_NAMES
BAND_CODINGS = (ZLIB, XZ, ZSTD)
# Strip heights an optimize encode chooses from per band; without optimize, the first.
STRIPS = {ZLIB: (1, 32), XZ: (32, 1), ZSTD: (1, 32)}
# Codings that choose the strip height per band even without optimize.
ALWAYS_CHOOSE_STRIPS = (ZSTD,)
# Codings the codebook order cannot make smaller (it serves LZMA's literal context).
UNORDERED_CODINGS = (RAW, ZSTD)


def reorders(k: int, coding: int | None, optimize: bool) -> bool:
    """Whether the encoder orders the codebook (order.py) before coding:
    only optimize spends that effort, and it pays only where LZMA's literal
    context can use it (coding None: optimize's candidates include xz)."""
    return optimize and k > 2 and coding not in UNORDERED_CODINGS


def band_payload(labels: np.ndarray, k: int, coding: int, head: bytes, optimize: bool, *,
                 each_band: Callable[[], object] | None = None, relabel: np.ndarray | None = None) -> bytes:
    """B, the head CRC and every band, compressed in threads; relabel (old
    label -> stored label, ordered()'s table) is applied band by band in
    those threads, not to the whole map first."""
    height, width = labels.shape
    band_height = bands.choose_band_height(width, height)
    strips = band_strips(coding, optimize, height)

    def encode(rows: tuple[int, int]) -> bytes:
        top, count = rows
        band = labels[top : top + count]
        return code_band(band if relabel is None else relabel[band], k, coding, strips, optimize)

    encoded = parallel.ordered_map(encode, bands.band_rows(height, band_height), each=each_band)
    return payload_start(head, band_height) + b"".join(encoded)


def payload_start(head: bytes, band_height: int) -> bytes:
    """B and the CRC of the head and B: what comes before band 0."""
    start = bands.BAND_HEIGHT.pack(band_height)
    return start + crc_bytes(head + start)


def band_strips(coding: int, optimize: bool, height: int) -> tuple[int, ...]:
    """The strip heights a band of an image `height` rows tall chooses from."""
    choose = optimize or coding in ALWAYS_CHOOSE_STRIPS
    return STRIPS[coding] if choose and height > 1 else STRIPS[coding][:1]


def code_band(band: np.ndarray, k: int, coding: int, strips: tuple[int, ...], optimize: bool = False) -> bytes:
    """One band's bytes (bands.encode_band) for its (rows, W) labels. With
    optimize a small band is coded with each strip height of
    bands.smallest_band and the smallest kept; otherwise, with several
    strip heights, the band gets the one its bytes compress smaller with
    under zlib level 1: a cheap predictor that picks as the real coder
    would within 0.1% on Kodak, at a tenth of the cost of trying both. With
    optimize, xz also hears from it how near the band's matches are
    (streams.near_matches)."""
    width_bits = band_label_width(k)
    if optimize and band.size <= bands.SMALL_BAND_LABELS:
        return bands.smallest_band(band, coding, k, width_bits)
    strip, near = strips[0], False
    if len(strips) > 1:
        sample = predictor_sample(band) if coding == XZ else band
        streams_ = {s: bands.label_stream(sample, s, width_bits) for s in strips}
        quick = {s: len(zlib.compress(streams_[s], 1)) for s in strips}
        strip = min(strips, key=quick.__getitem__)
        # only a codebook in order.py's order (optimize) gains: unordered,
        # Kodak's xz files grew 0.3% at K = 64 and 1.3% at K = 256
        near = optimize and coding == XZ and streams.near_matches(k, quick[strip], len(streams_[strip]))
    return bands.encode_band(bands.label_stream(band, strip, width_bits), strip, coding, k, near=near)


# xz's predictor sees every other strip of PREDICTOR_STRIP rows: the same
# rows in each candidate order, half the zlib work (on the 48 Mpx photo
# tiling the predictor was 13% of a band's time, LZMA2 the rest). Its picks
# differ from the whole band's on 9 of 144 Kodak bands and 11 of 99
# screenshot bands, by as much either way (the zlib-1 guess itself misses
# the better strip by 0.3-1%): optimize totals Kodak K = 16/64/256 -0.15 /
# +0.13 / -0.14%, screenshots -0.03 / -0.51 / -0.44%. zlib and zstd, whose
# coder is quicker, keep the whole band.
PREDICTOR_STRIP = 32


def predictor_sample(band: np.ndarray) -> np.ndarray:
    """The rows of every other strip of PREDICTOR_STRIP rows (the whole
    band when it is one strip)."""
    if band.shape[0] <= PREDICTOR_STRIP:
        return band
    rows = np.arange(band.shape[0])
    return band[(rows // PREDICTOR_STRIP) % 2 == 0]


def payload(labels: np.ndarray, k: int, coding: int, head: bytes, optimize: bool = False, *,
            each_band: Callable[[], object] | None = None, relabel: np.ndarray | None = None) -> bytes:
    """Everything after the head: for raw, the packed labels and the file
    CRC. each_band() is called as each band is coded (raw: once). relabel,
    if given, maps the labels to the stored ones (ordered_table)."""
    if coding == RAW:
        packed = raw.encode(labels if relabel is None else relabel[labels], k)
        if each_band is not None:
            each_band()
        return packed + crc_bytes(packed, zlib.crc32(head))
    if coding in BAND_CODINGS:
        return band_payload(labels, k, coding, head, optimize, each_band=each_band, relabel=relabel)
    raise ValueError(f"unknown coding {coding!r}")


def ordered(labels: np.ndarray, codebook: np.ndarray, each: Callable[[], object] | None = None):
    """(labels, codebook) with the codebook in the order LZMA likes; each(),
    if given, after each slice of the labels counted (order_steps of them)."""
    relabel, codebook = ordered_table(labels, codebook, each)
    return relabel[labels], codebook


def ordered_table(labels: np.ndarray, codebook: np.ndarray, each: Callable[[], object] | None = None):
    """ordered() without relabelling the map: (old label -> new label table,
    the ordered codebook), for payload() to relabel band by band in its
    threads (48 Mpx: a serial 0.26 s pass and a 1 byte/pixel copy saved)."""
    return order.relabelling(codebook, order.reorder_palette(labels, len(codebook), each))


def order_steps(labels: np.ndarray) -> int:
    """How many times ordered() calls each."""
    height, width = labels.shape
    return -(-height // order.adjacency_rows(width))


def band_count(labels: np.ndarray, coding: int) -> int:
    """How many times payload() calls each_band for this coding."""
    if coding not in BAND_CODINGS:
        return 1
    height, width = labels.shape
    return len(bands.band_rows(height, bands.choose_band_height(width, height)))


# optimize tries zstd after xz only where xz took under this many bits per
# label: zstd was smaller than xz on 5 of 456 files (64 icons, 40 screenshots,
# 24 Kodak at K = 16/64/256), all at 0.13-0.30 bits per label (content that
# is mostly runs, where zstd's lighter framing tells), and 1-6% smaller;
# never on photos (>= 1 bit per label), where the trial cost optimize 40-65%
# of xz's encode time for nothing.
ZSTD_TRIAL_BITS = 0.5


def worth_trying(number: int, sizes: dict[int, int], labels: int) -> bool:
    """Whether optimize should encode candidate `number`, given the payload
    sizes of the candidates already made."""
    return number != ZSTD or XZ not in sizes or 8 * sizes[XZ] < ZSTD_TRIAL_BITS * labels


def candidates(coding: int | None, optimize: bool) -> tuple[int, ...]:
    if coding is not None:
        return (coding,)
    # zlib is never the smallest on photos and costs as much as xz to try
    return (RAW, XZ, ZSTD) if optimize else (RAW,)

