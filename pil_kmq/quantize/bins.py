"""Bins of colour space standing for the colours in them: the coarse k-means
passes run on bins, whose number grows slowly with the number of colours,
so time has no cliff and memory stays bounded."""

from __future__ import annotations

import numpy as np

# Centres (and bin means) live on this grid during the float passes: every
# squared distance to an integer colour is then exact in float64.
GRID = 1024.0
# Bins are numbered in at most this many bits, all channels together (RGB:
# 7 a channel, RGBA: 5); a finer level asked for is this coarsest one.
MAX_BIN_BITS = 21
# Colours are binned by a sort when there are SORT_RATIO times fewer than
# bins, else by bincounts over every bin (at most 2**21: 16 MiB each).
SORT_RATIO = 8
# Colours binned at once by bincounts (bounds the temporaries).
SLICE = 1 << 17


def snap_to_grid(centres: np.ndarray) -> np.ndarray:
    return np.rint(centres * GRID) / GRID


def level_bits(bits: int, channels: int) -> int:
    """The bits a channel of bins asked to be `bits` wide really gets."""
    return min(bits, MAX_BIN_BITS // channels)


def bin_means(colors: np.ndarray, counts: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Colours merged into cubic bins 2**(8-bits) levels a side, each bin
    represented by the weighted MEAN of its colours (on the grid), so the
    clustering of the bins sees where the colours really are.

    Few colours (for the bins there could be) are grouped by a sort; many,
    by bincounts over every bin, a slice of colours at a time, so memory
    does not grow with the colours. The sums are of integers, exact either
    way, so both give the same bins."""
    channels = colors.shape[1]
    bits = level_bits(bits, channels)
    size = 1 << (bits * channels)
    if len(colors) * SORT_RATIO < size:
        return _sorted_bin_means(colors, counts, bits)[:2]
    totals = np.zeros(size)
    sums = np.zeros((channels, size))
    for start in range(0, len(colors), SLICE):
        part = colors[start : start + SLICE]
        weights = counts[start : start + SLICE].astype(np.float64)
        which = _bin_of(part, bits)
        totals += np.bincount(which, weights, minlength=size)
        for channel in range(channels):
            sums[channel] += np.bincount(which, weights * part[:, channel], minlength=size)
    filled = np.flatnonzero(totals)
    return snap_to_grid(sums[:, filled].T / totals[filled, None]), totals[filled]


def _sorted_bin_means(colors, counts, bits):
    """bin_means by a sort, and each colour's bin (a row of the means)."""
    which = _bin_of(colors, bits)
    order = np.argsort(which, kind="stable")
    firsts = np.diff(which[order], prepend=-1) != 0
    starts = np.flatnonzero(firsts)
    weights = counts[order].astype(np.float64)
    totals = np.add.reduceat(weights, starts)
    sums = np.stack(
        [np.add.reduceat(weights * colors[order, c], starts) for c in range(colors.shape[1])], axis=1
    )
    index = np.empty(len(colors), dtype=np.intp)
    index[order] = np.cumsum(firsts) - 1
    return snap_to_grid(sums / totals[:, None]), totals, index


def finer_bins(colors: np.ndarray, counts: np.ndarray, bits: int, parents: np.ndarray):
    """((means, totals, each bin's row in `parents`' bins), each colour's
    bin) for bins `bits` wide inside coarser ones (parents: each colour's
    coarser bin). One sort when the colours are few: bin_index's bitmap of
    2**21 bins at 7 bits costs more than sorting a photograph's colours."""
    bits = level_bits(bits, colors.shape[1])
    if len(colors) * SORT_RATIO < 1 << (bits * colors.shape[1]):
        means, totals, index = _sorted_bin_means(colors, counts, bits)
    else:
        means, totals, index = (*bin_means(colors, counts, bits), bin_index(colors, bits))
    outer = np.empty(len(means), dtype=np.intp)
    outer[index] = parents
    return (means, totals, outer), index


def bin_index(colors: np.ndarray, bits: int) -> np.ndarray:
    """Each colour's bin as a row of bin_means's result (bins in ascending
    order there), from a bitmap of the bins (or a sort of few colours)."""
    bits = level_bits(bits, colors.shape[1])
    which = _bin_of(colors, bits)
    if len(colors) * SORT_RATIO < 1 << (bits * colors.shape[1]):
        # few colours for the bins (RGBA's 2**20 at 5 bits): a sort of
        # them costs less than a bitmap of every bin
        return np.unique(which, return_inverse=True)[1].reshape(-1)
    occupied = np.zeros(1 << (bits * colors.shape[1]), dtype=np.intp)
    occupied[which] = 1
    return (np.cumsum(occupied) - 1)[which]


def count_bins(colors: np.ndarray, bits: int) -> int:
    """How many bins bin_means would return, from a bitmap of the bins."""
    bits = level_bits(bits, colors.shape[1])
    occupied = np.zeros(1 << (bits * colors.shape[1]), dtype=bool)
    for start in range(0, len(colors), SLICE):
        occupied[_bin_of(colors[start : start + SLICE], bits)] = True
    return int(np.count_nonzero(occupied))


def _bin_of(colors: np.ndarray, bits: int) -> np.ndarray:
    which = np.zeros(len(colors), dtype=np.intp)
    for channel in range(colors.shape[1]):
        which = (which << bits) | (colors[:, channel] >> (8 - bits))
    return which
