"""Pass 1: the exact colour histogram of an image, block by block.

The result is what quantize.histogram.histogram gives for the whole image
(distinct colours in ascending code order, counts of the same dtype), so
k-means sees the same input and returns the same codebook. Each block's
distinct colours come from the encoder's own sort (distinct_codes); up to
two channels, and RGB of many pixels, they are added into a table over
every code (2**24 entries at most), other codes are merged as sorted runs, a run only when
the pending ones outgrow what is merged (amortised: O(log blocks) merges
of each colour)."""

from __future__ import annotations

import numpy as np

from ..quantize.histogram import TABLE_MIN_COUNT, count_dtype, distinct_codes, merged_runs, pack_codes, unpack_codes


def block_counts(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes (ascending) and their counts of (N, C) pixels."""
    return distinct_codes(pack_codes(pixels))


def merge_counts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several (codes, counts) answers as one: the counts of a whole made of
    their pieces (a merge step of any reduction tree over blocks)."""
    return merged_runs(np.concatenate([c for c, _ in parts]), np.concatenate([n for _, n in parts]))


def codes_histogram(codes: np.ndarray, counts: np.ndarray, channels: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """quantize.histogram.histogram's answer from the merged codes and
    counts of an image of `total` pixels: colours (M, C) and counts."""
    return unpack_codes(codes, channels), counts.astype(count_dtype(total))


class ColourCounter:
    def __init__(self, channels: int, total: int):
        self.channels, self.total = channels, total
        wide = np.uint32 if total < 1 << 32 else np.uint64
        # A table over every code where it costs little beside the image
        # (the in-memory histogram's rule): up to two channels always, RGB
        # from TABLE_MIN_COUNT pixels (64 MiB: a small stream would pay
        # ~50 ms to make and scan it); sorted runs otherwise.
        tabled = channels < 3 or (channels == 3 and total >= TABLE_MIN_COUNT)
        self.table = np.zeros(1 << (8 * channels), wide) if tabled else None
        self.merged = (np.zeros(0, np.uint32), np.zeros(0, np.int64))
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_size = 0

    def add(self, codes: np.ndarray, counts: np.ndarray) -> None:
        """One block's block_counts."""
        if self.table is not None:
            self.table[codes] += counts  # codes are distinct: no repeated index
            return
        self.pending.append((codes, counts))
        self.pending_size += len(codes)
        if self.pending_size > len(self.merged[0]):
            self._merge()

    def _merge(self) -> None:
        self.merged = merge_counts([self.merged, *self.pending])
        self.pending, self.pending_size = [], 0

    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct codes ascending (uint32) and their counts."""
        if self.table is not None:
            codes = np.flatnonzero(self.table)
            counts = self.table[codes]
            codes = codes.astype(np.uint32)
        else:
            self._merge()
            codes, counts = self.merged
        return codes, counts

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """quantize.histogram.histogram's answer: colours (M, C) and counts."""
        return codes_histogram(*self.codes(), self.channels, self.total)


