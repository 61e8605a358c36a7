"""The .kmq file format, version 3 (spec/kmq.md): container, codings and
their band layout. Knows nothing of Pillow; pil_kmq.reader reads files,
write_file is the one entry point the encoder calls."""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import coding as _coding
from .bitpack import bits_per_label, packed_size
from .container import CRC_SIZE, MODE_TO_CHANNELS, RAW, XZ, ZLIB, ZSTD, Header, KmqFormatError, build_head

__all__ = ["write_file", "KmqFormatError", "RAW", "ZLIB", "XZ", "ZSTD"]


def write_file(
    labels: np.ndarray,
    codebook: np.ndarray,
    *,
    coding: int | None = None,
    optimize: bool = False,
    metadata: dict[str, bytes] | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> bytes:
    """A complete .kmq file for an (h, w) label map and a (K, C) codebook.

    coding None: raw, or with optimize the smallest of raw, xz and zstd (zstd
    tried only where it can win: coding.worth_trying). optimize
    also spends effort inside a coding (codebook order, strip heights); the
    codebook may then be stored permuted, decoding to the same colours.
    Of several candidate files the smallest is written, the lower coding on
    a tie. Deterministic: the same input gives the same bytes. progress(done,
    total), if given, hears each band coded (each candidate coding's).
    """
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    codebook = np.ascontiguousarray(codebook, dtype=np.uint8)
    if labels.ndim != 2 or 0 in labels.shape:
        raise ValueError(f"labels must be a non-empty (h, w) array, got shape {labels.shape}")
    if codebook.ndim != 2 or codebook.shape[1] not in MODE_TO_CHANNELS.values():
        raise ValueError(f"codebook must be (K, 1|3|4), got shape {codebook.shape}")
    k = len(codebook)
    if not 1 <= k <= 256 or (labels.size and int(labels.max()) >= k):
        raise ValueError(f"labels must be < K={k} and K 1..256")
    numbers = _coding.candidates(coding, optimize)
    reorder = _coding.reorders(k, coding, optimize)
    steps = _coding.order_steps(labels) if reorder else 0
    work = [0, steps + sum(_coding.band_count(labels, number) for number in numbers)]

    def done() -> None:
        work[0] += 1
        if progress is not None:
            progress(*work)

    if progress is not None:
        progress(*work)
    relabel = None
    if reorder:
        relabel, codebook = _coding.ordered_table(labels, codebook, done)
    # A raw file's size is known without writing it: it is built only if
    # it wins (ties go to the earlier candidate, raw first).
    best, sizes = None, {}
    for number in numbers:
        if coding is None and not _coding.worth_trying(number, sizes, labels.size):
            for _ in range(_coding.band_count(labels, number)):
                done()  # the work it would have taken, counted as done
            continue
        head = file_head(labels.shape[1], labels.shape[0], codebook, number, metadata)
        if number == RAW:
            data, size = None, raw_file_size(head, labels.size, k)
            done()
        else:
            data = head + _coding.payload(labels, k, number, head, optimize, each_band=done, relabel=relabel)
            size = len(data)
            sizes[number] = size - len(head)
        if best is None or size < best[0]:
            best = (size, head, data)
    _, head, data = best
    return data if data is not None else head + _coding.payload(labels, k, RAW, head, relabel=relabel)


def raw_file_size(head: bytes, pixels: int, k: int) -> int:
    """Bytes of a raw file with this head: the packed labels and the CRC."""
    return len(head) + packed_size(pixels, bits_per_label(k)) + CRC_SIZE


def file_head(width: int, height: int, codebook: np.ndarray, coding: int,
              metadata: dict[str, bytes] | None) -> bytes:
    """Everything before the payload of a file in `coding`."""
    header = Header(width=width, height=height, channels=codebook.shape[1], k=len(codebook), coding=coding)
    return build_head(header, codebook.tobytes(), metadata)
