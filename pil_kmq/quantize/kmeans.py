"""K-means over weighted colours, coarse to fine (see kmeans()).

Points are distinct colours and weights their pixel counts, so a codebook
entry is the mean of the pixels assigned to it, exactly as k-means over all
pixels. Most Lloyd passes run on bins of colour space, each standing as the
weighted mean of its colours: the number of bins grows slowly with the
number of colours, so time has no cliff and memory stays bounded.

Determinism: every distance is computed exactly. Colours are integers and
centres (and bin means) are kept on a grid of 1/1024, then of 1 for the
codebook, so each product and sum in a squared distance is exact in float64
whatever order it is added in: ties go to the lowest index, and the result
is the same on every run, machine and thread count. The sums that decide
when to stop come from bincount, which adds in a fixed order.
"""

from __future__ import annotations

import numpy as np

from .bins import bin_index, bin_means, count_bins, finer_bins, level_bits, snap_to_grid
from .cells import LateSearch
from .init import kmeans_plus_plus, variance_split_start
from .lloyd import lloyd
from .swap import swap_rounds, swap_search
from .keys import BruteForceSearch
from .nearest import BoundedSearch
from .refine import CELL_BITS, refine_sliced, refine_whole

# The coarse stage (starts and most passes) clusters means of bins
# 2**(8 - COARSE_BITS) levels wide, when there are enough colours to pay.
COARSE_BITS = 6
COARSE_MIN_POINTS = 4096
# Per-K settings are tables of (largest K, value), searched in order.
# Extra seeded k-means++ starts, tried beside the split (more colours: a
# start matters less, costs more). At K=16 the swap search (below) does what
# five restarts did, better: one restart is left, for a second basin.
RESTARTS = ((16, 1),)
# Restarts only need ranking: they stop at a looser tol, this many times tol.
RESTART_TOL_FACTOR = 10.0
# Up to this K the split and the restarts start and converge on bins
# 2**(8 - WIDE_BITS) levels wide, where passes are cheap, and the best goes
# through WIDE_SWAPS rounds of swap moves there (swap.py): at K=64 they gain
# 0.05 dB for less time than a restart, which they replace.
WIDE_RESTARTS_K = 64
WIDE_BITS = 5
WIDE_SWAPS = ((16, 5), (64, 12))
# Where there are fewer wide bins than this share x K (smooth images), the
# wide stage also runs on bins one bit finer, and the start with the least
# error after the coarse passes goes on: at K=64 skimage's chelsea, retina
# and ihc gain 0.05, 0.05, 0.01 dB (+0.016 on the set), Kodak is unchanged.
WIDE_FINER_SHARE = ((16, 0), (64, 20))
# k-means++ draws its seeds from bins 2**(8 - SEED_BITS) levels wide: a few
# hundred points, so seeding costs little beside the passes that follow.
SEED_BITS = 4
# Point sets up to this many distances a pass are searched by brute force.
BRUTE_FORCE_ENTRIES = 1 << 17
# Time, not quality, bounds the passes of each stage (a K=256 clustering
# takes 11-26 coarse passes to converge): at most COARSE_PASSES on the
# coarse bins, then COARSE_SWAPS rounds of swaps there (wide bins are too
# coarse for K=256), then FINE_PASSES float and ROUNDED_PASSES rounded
# passes over the exact colours. The coarse passes matter least (run to
# convergence they gain 0.006 dB at K=256, the fine ones 0.08): the time
# goes to the swaps and fine passes. Set for Kodak against libimagequant's
# time (benchmarks/quantize.py): with the keyed searches (nearest.py) a pass
# costs about a third less, and 4 / 12 / 7 fine passes (12 wide swap rounds
# at K=64, 2 coarse swap rounds at K=256) fit where 2 / 4 / 3 did.
# At K=64 passes to 8 / 24 (most images stop at tol before): +0.001 dB on
# Kodak, +0.002 on skimage, for 0.04 / 0.05x of libimagequant's time. At
# K=256 three more fine passes (10) pay more than a third swap round for
# the time: +0.004 dB on Kodak and skimage, for 0.05x of libimagequant's.
COARSE_PASSES = ((16, 8), (64, 8), (256, 3))
COARSE_SWAPS = ((64, 0), (256, 2))
# Swaps tried at once, as a share of K, and Lloyd passes settling them: on
# wide bins a tenth of K with time to settle (with 12 rounds at K=64, a
# tenth gains 0.004 dB on Kodak over a fifth); on the coarse bins a few,
# each settled by one pass (the fine passes settle them further): at K=256
# 3% of K gains 0.006 dB on skimage over 5% (Kodak -0.002).
WIDE_SWAP_SHARE, WIDE_SWAP_PASSES = 0.1, 3
# Up to SEARCH_K the wide swaps are a swap search (swap.swap_search; with
# one restart, was five: K=16 +0.008 dB on Kodak, +0.025 on skimage's
# photographs), over wide bins few enough for brute force (photographs:
# 1-7k; on noise the trials would cost more than all the other passes).
SEARCH_K = 16
COARSE_SWAP_SHARE, COARSE_SWAP_PASSES = 0.03, 1
# Beyond this many coarse bins (noise, synthetic images: not photographs)
# swaps cost more than they gain: a removal cost is a distance to every entry.
SWAP_MAX_POINTS = 1 << 16
# Swaps judge a cluster by the bins in it: where there are fewer coarse bins
# than SWAP_FINER_SHARE x K (smooth images, whose clusters are hardly wider
# than a coarse bin) the coarse swaps run on bins one bit finer. At K=256 on
# Kodak +0.006 dB (kodim02 +0.22), skimage's retina +0.08.
SWAP_FINER_SHARE = 28
# Focused coarse swaps (swap.focused_swapped) pay for FINE_SWAPS rounds
# among the fine passes (refine.py): +0.013 dB on Kodak and skimage at K=256.
COARSE_SWAP_REACH = 8
FINE_SWAPS = ((64, 0), (256, 1))
# At K=16 fine passes are cheap beside the start: they run to tol/10 (+0.0008
# dB on Kodak, +0.0005 on skimage's photographs), at most 20 of them.
FINE_PASSES = ((16, 20), (64, 24), (256, 10))
FINE_TOL_FACTOR = ((16, 0.1), (1 << 30, 1.0))
# Up to this many distinct colours the fine passes run over the exact
# colours with one search (some 100 bytes a colour), beyond it over bins 2
# levels wide and the rounded passes a slice at a time. Above K=16, 2**18:
# skimage's motorcycles (150k colours) gain 0.01 dB at K=256, 20% faster.
EXACT_MAX_COLOURS = ((16, 1 << 17), (256, 1 << 18))


def search_for(points: np.ndarray, k: int):
    if len(points) * k <= BRUTE_FORCE_ENTRIES:
        return BruteForceSearch(points)
    return BoundedSearch(points)


def by_k(table, k: int):
    """The value for K from a table of (largest K, value)."""
    return next((value for bound, value in table if k <= bound), table[-1][1])


def restarts(k: int) -> int:
    return by_k(RESTARTS + ((1 << 30, 0),), k)


def best_start(colors, counts, points, weights, k, max_iter, tol, swap_level=None):
    """The coarse clustering from the best start, the passes it took, and
    its search (None if there was no clustering to do). Up to
    WIDE_RESTARTS_K the split and restarts(k) seeded k-means++ starts each
    converge (loosely) on bins twice as wide, where passes are cheap, and
    only the one with the least error, improved by swaps there, goes on to
    the coarse bins (for smooth images, that of the wide bins and that of
    bins one bit finer, and the better after Lloyd goes on): Lloyd to tol
    or COARSE_PASSES, then swaps (on the finer bins of swap_level if given:
    its points, weights and each one's coarse bin; the search returned is
    then over those)."""
    if k <= WIDE_RESTARTS_K and max_iter > 0:
        starts = [
            _wide_start(colors, counts, points, weights, k, max_iter, tol, bits)
            for bits in _wide_levels(colors, points, k)
        ]
    else:
        starts = [variance_split_start(points, weights, k)]
    centres, passes = snap_to_grid(starts[0]), 0
    if len(points) > k:
        cap = min(max_iter, by_k(COARSE_PASSES, k))
        search, (centres, labels, passes, error) = min(
            (_coarse_run(points, weights, start, cap, tol) for start in starts), key=lambda run: run[1][3]
        )
        if swap_level is not None:
            points, weights, parents = swap_level
            search = BoundedSearch.from_bins(points, parents, search, centres)
            _, labels, _, error = lloyd(search, weights, centres, 0, tol, snap_to_grid)
        if max_iter > passes and len(points) <= SWAP_MAX_POINTS:
            centres, _, _, used = swap_rounds(
                search, weights, centres, labels, error, by_k(COARSE_SWAPS, k),
                COARSE_SWAP_SHARE, min(COARSE_SWAP_PASSES, max_iter - passes), tol, snap_to_grid,
                COARSE_SWAP_REACH,
            )
            passes += used
        return centres, passes, search
    return centres, passes, None


def _coarse_run(points, weights, start, passes: int, tol: float):
    search = BoundedSearch(points)
    return search, lloyd(search, weights, snap_to_grid(start), passes, tol, snap_to_grid)


def _wide_levels(colors, points, k) -> tuple[int, ...]:
    """Bits of the wide bins to start on (see WIDE_FINER_SHARE)."""
    few = len(points) > COARSE_MIN_POINTS and count_bins(colors, WIDE_BITS) < by_k(WIDE_FINER_SHARE, k) * k
    finer = level_bits(WIDE_BITS + 1, colors.shape[1]) > WIDE_BITS  # not RGBA
    return (WIDE_BITS, WIDE_BITS + 1) if few and finer else (WIDE_BITS,)


def _wide_start(colors, counts, points, weights, k, max_iter, tol, bits):
    """The best of the split and the seeded starts on bins `bits` wide (or
    the points, if few), after swaps."""
    wide_points, wide_weights = points, weights
    if len(points) > COARSE_MIN_POINTS:
        wide_points, wide_weights = bin_means(colors, counts, bits)
    if len(wide_points) <= k:
        return variance_split_start(points, weights, k)
    start = variance_split_start(wide_points, wide_weights, k)
    seed_points, seed_weights = wide_points, wide_weights
    if len(points) > COARSE_MIN_POINTS:
        seed_points, seed_weights = bin_means(colors, counts, SEED_BITS)
        if len(seed_points) <= k:
            seed_points, seed_weights = wide_points, wide_weights
    loose, best = tol * RESTART_TOL_FACTOR, None
    for seed in range(1 + restarts(k)):
        centres = start if seed == 0 else kmeans_plus_plus(seed_points, seed_weights, k, seed)
        search = search_for(wide_points, k)
        centres, labels, _, error = lloyd(
            search, wide_weights, snap_to_grid(centres), max_iter, loose, snap_to_grid
        )
        if best is None or error < best[3]:
            best = (search, centres, labels, error)
    search, centres, labels, error = best
    if k <= SEARCH_K and len(wide_points) * k <= BRUTE_FORCE_ENTRIES:
        return swap_search(search, wide_weights, centres, labels, error, max_iter, tol, snap_to_grid)[0]
    return swap_rounds(
        search, wide_weights, centres, labels, error, by_k(WIDE_SWAPS, k),
        WIDE_SWAP_SHARE, min(WIDE_SWAP_PASSES, max_iter), loose, snap_to_grid,
    )[0]


def kmeans(colors: np.ndarray, counts: np.ndarray, k: int, *, max_iter: int = 300, tol: float = 1e-4):
    """Codebook ((k, C) uint8) and each colour's label (uint8, exactly its
    nearest codebook entry, ties to the lowest index) for M > k distinct
    colours (M, C) uint8 weighted by their counts.

    Coarse to fine, because Lloyd's many early passes need not see every
    colour: starts, Lloyd and swap moves (swap.py) on bin means, Lloyd over
    the exact colours (beyond EXACT_MAX_COLOURS of them, over bins 2 levels
    wide, and starting from the bin means' bounds: BoundedSearch.from_bins;
    with FINE_SWAPS rounds of swaps among its passes, each settled by one
    of them), then
    passes on the codebook rounded to colours over the exact colours (the
    rounded mean is the best integer entry for a cluster, so those passes
    lower the error the file will really have). Each float stage stops when
    a pass lowers the error by at most `tol` of it (the fine stage:
    FINE_TOL_FACTOR x tol), or at its pass cap (coarse and fine passes by K,
    refine.ROUNDED_PASSES). `max_iter` bounds the Lloyd passes of the run, all
    stages together (0: the split's box means, rounded, and the exact
    assignment); each restart and each start level (see WIDE_FINER_SHARE)
    has the same bound, and each swap on wide bins settles in at most that
    many passes.
    """
    colors = np.asarray(colors, dtype=np.uint8)
    binned = colors.shape[1] >= 3 and len(colors) > COARSE_MIN_POINTS
    swap_level = bins = None
    if binned:
        coarse_points, coarse_weights = bin_means(colors, counts, COARSE_BITS)
        if len(colors) <= by_k(EXACT_MAX_COLOURS, k):
            swap_level, bins = _swap_level(colors, counts, k, len(coarse_points))
    else:
        coarse_points, coarse_weights = colors.astype(np.float64), counts.astype(np.float64)
    centres, passes, coarse = best_start(
        colors, counts, coarse_points, coarse_weights, k, max_iter, tol, swap_level
    )
    budget, tol = max_iter - passes, tol * by_k(FINE_TOL_FACTOR, k)
    if len(colors) <= by_k(EXACT_MAX_COLOURS, k):
        if binned and coarse is not None:
            points = colors.astype(np.float64)
            search = BoundedSearch.from_bins(points, bins, coarse, centres)
        else:
            search = LateSearch(colors.astype(np.float64), CELL_BITS)
        fine, swaps = (by_k(FINE_PASSES, k), by_k(FINE_SWAPS, k)) if binned else (0, 0)
        return refine_whole(colors, counts, centres, search, fine, budget, tol, swaps)
    return refine_sliced(colors, counts, centres, by_k(FINE_PASSES, k), budget, tol)


def _swap_level(colors, counts, k, coarse_count):
    """(None, each colour's coarse bin), or with swaps on finer bins (see
    SWAP_FINER_SHARE) ((their points, weights, coarse bin of each), each
    colour's finer bin): each colour's row in best_start's search."""
    coarse = bin_index(colors, COARSE_BITS)
    finer = level_bits(COARSE_BITS + 1, colors.shape[1]) > COARSE_BITS  # not RGBA
    if by_k(COARSE_SWAPS, k) == 0 or coarse_count >= SWAP_FINER_SHARE * k or not finer:
        return None, coarse
    return finer_bins(colors, counts, COARSE_BITS + 1, coarse)
