"""K-means over weighted colours: a short path for small problems, coarse to
fine for large ones (see kmeans()); what each stage does, how often and on
what comes from one Schedule (schedule.py).

Points are distinct colours and weights their pixel counts, so a codebook
entry is the mean of the pixels assigned to it, exactly as k-means over all
pixels. On the long path most Lloyd passes run on bins of colour space,
each standing as the weighted mean of its colours: the number of bins grows
slowly with the number of colours, so time has no cliff and memory stays
bounded.

Determinism: every distance is computed exactly. Colours are integers and
centres (and bin means) are kept on a grid of 1/1024, then of 1 for the
codebook, so each product and sum in a squared distance is exact in float64
whatever order it is added in: ties go to the lowest index, and the result
is the same on every run, machine and thread count. The sums that decide
when to stop come from bincount, which adds in a fixed order.
"""

from __future__ import annotations

import numpy as np

from .bins import bin_index, bin_means, count_bins, finer_bins, snap_to_grid
from .cells import LateSearch
from .init import kmeans_plus_plus, variance_split_start
from .keys import BruteForceSearch
from .lloyd import Clustering, NearestSearch, lloyd
from .nearest import BoundedSearch
from .refine import CELL_BITS, refine_whole, refine_sliced, rounded_passes
from .schedule import DEFAULT_SPEED, Schedule, schedule
from .swap import SwapRounds, swap_rounds, tried_swaps

# Point sets up to this many distances a pass are searched by brute force
# (time only: both searches are exact). 2**22, not 2**20: the short path's
# few passes leave Hamerly's bounds no time to pay (k-means time, speed 4:
# 128x128 photos K=256 0.74x, 256x256 photos K=64 0.63x, icons 128-256 K=256
# 0.89-0.90x; speed 2-3, 128x128 K=256 0.91 / 0.72x). Not 2**24: at speed
# 2-3 the bounds win over tens of passes (256x256 photos K=256 1.36 / 1.16x).
BRUTE_FORCE_ENTRIES = 1 << 22


def search_for(points: np.ndarray, k: int) -> NearestSearch:
    if len(points) * k <= BRUTE_FORCE_ENTRIES:
        return BruteForceSearch(points)
    return BoundedSearch(points)


def kmeans(
    colors: np.ndarray, counts: np.ndarray, k: int, *, max_iter: int = 300, tol: float = 1e-4,
    plan: Schedule | None = None,
):
    """Codebook ((k, C) uint8) and each colour's label (uint8, exactly its
    nearest codebook entry, ties to the lowest index) for M > k distinct
    colours (M, C) uint8 weighted by their counts, as `plan` says (by
    default schedule(DEFAULT_SPEED, ...)).

    Short path (plan.short): the split, Lloyd and swaps straight on the
    exact colours, then the rounded passes. Long path, coarse to fine,
    because Lloyd's many early passes need not see every colour: starts,
    Lloyd and swap moves (swap.py) on bin means (best_start), Lloyd over
    the exact colours (beyond plan.exact_max_colours, over bins 2 levels
    wide; starting from the bin means' bounds: BoundedSearch.from_bins;
    with plan.fine_swaps rounds of swaps among its passes), then passes on
    the codebook rounded to colours over the exact colours (the rounded
    mean is the best integer entry for a cluster, so those passes lower the
    error the file will really have). Each float stage stops when a pass
    lowers the error by at most `tol` of it (the fine stage:
    plan.fine_tol_factor x tol), or at its pass cap. `max_iter` bounds the
    Lloyd passes of the run, all stages together (0: the split's box
    means, rounded, and the exact assignment); each restart and each start
    level has the same bound, and each swap trial settles in at most that
    many passes.
    """
    colors = np.asarray(colors, dtype=np.uint8)
    if plan is None:
        plan = schedule(DEFAULT_SPEED, k, len(colors), int(counts.sum()), colors.shape[1])
    if plan.short:
        return short_kmeans(colors, counts, k, plan, max_iter=max_iter, tol=tol)
    coarse_points, coarse_weights = bin_means(colors, counts, plan.coarse_bits)
    exact = len(colors) <= plan.exact_max_colours
    swap_level = bins = None
    if exact:
        swap_level, bins = _swap_level(colors, counts, k, len(coarse_points), plan)
    state, passes, coarse = best_start(
        colors, counts, (coarse_points, coarse_weights), k, plan, max_iter=max_iter, tol=tol, swap_level=swap_level
    )
    budget, tol = max_iter - passes, tol * plan.fine_tol_factor
    if not exact:
        return refine_sliced(colors, counts, state.centres, plan, budget=budget, tol=tol)
    if coarse is not None:
        search = BoundedSearch.from_bins(colors.astype(np.float64), bins, coarse, state.centres)
    else:
        search = LateSearch(colors.astype(np.float64), CELL_BITS)
    return refine_whole(colors, counts, state.centres, search, plan, budget=budget, tol=tol)


def short_kmeans(colors, counts, k, plan: Schedule, *, max_iter: int, tol: float):
    """kmeans() on the exact colours: the split (and plan.restarts seeded
    starts), Lloyd, swaps, then the rounded passes, all with one search."""
    points, weights = colors.astype(np.float64), counts.astype(np.float64)
    search = search_for(points, k)
    split_on = bin_means(colors, counts, plan.split_bits) if plan.split_bits else (points, weights)
    cap = min(max_iter, plan.short_passes)
    state, passes = _best_of_starts(search, weights, k, plan, max_iter=cap, tol=tol, seeds=points, split_on=split_on)
    state, used = _swapped(search, weights, state, plan, max_iter=max_iter - passes, tol=tol, loose=tol)
    final = rounded_passes(search, weights, state.centres, passes=min(plan.rounded_passes, max_iter - passes - used))
    return final.centres.astype(np.uint8), final.labels.astype(np.uint8)


def _best_of_starts(search, weights, k, plan: Schedule, *, max_iter: int, tol: float, seeds, split_on=None):
    """(Clustering, passes) of the best of the split and plan.restarts
    k-means++ starts (drawn from `seeds`: points, or (bin means, weights))
    after Lloyd to `tol`."""
    seed_points, seed_weights = seeds if isinstance(seeds, tuple) else (seeds, weights)
    split_points, split_weights = split_on or (search.points, weights)
    start = variance_split_start(split_points, split_weights, k, fraction=plan.split_fraction)
    if len(start) < k:  # fewer bins than K: split the points themselves
        start = variance_split_start(search.points, weights, k, fraction=plan.split_fraction)
    best, best_passes = None, 0
    for seed in range(1 + plan.restarts):
        centres = start if seed == 0 else kmeans_plus_plus(seed_points, seed_weights, k, seed)
        state, passes = lloyd(
            search, weights, snap_to_grid(centres), passes=max_iter, tol=tol, snap=snap_to_grid,
            relaxation=plan.relaxation,
        )
        if best is None or state.error < best.error:
            best, best_passes = state, passes
    return best, best_passes


def _swapped(search, weights, state: Clustering, plan: Schedule, *, max_iter: int, tol: float, loose: float):
    """(Clustering, passes): the swap trials (K <= 16, over few points:
    each trial is a Lloyd run, from tol) or plan.wide_swaps rounds of
    swaps, settled to `loose`."""
    if plan.trial_rounds and len(search.points) * len(state.centres) <= plan.trial_max_entries:
        return tried_swaps(search, weights, state, plan, max_passes=max_iter, tol=tol, snap=snap_to_grid)
    rounds = SwapRounds(plan.wide_swaps, plan.wide_swap_share, min(plan.wide_swap_passes, max_iter), loose)
    return swap_rounds(search, weights, state, rounds, plan, snap=snap_to_grid)


def best_start(colors, counts, coarse, k, plan: Schedule, *, max_iter: int, tol: float, swap_level=None):
    """The coarse clustering from the best start, the passes it took, and
    its search (None if there was no clustering to do). With a wide stage
    (plan.wide_bits) the split and plan.restarts seeded k-means++ starts
    each converge (loosely) on wide bins, where passes are cheap, and only
    the one with the least error, improved by swaps there, goes on to the
    coarse bins `coarse` (points, weights) (for smooth images, that of the
    wide bins and that of bins one bit finer, and the better after Lloyd
    goes on): Lloyd to tol or plan.coarse_passes, then swaps (on the finer
    bins of swap_level if given: its points, weights and each one's coarse
    bin; the search returned is then over those)."""
    points, weights = coarse
    if plan.wide_bits and max_iter > 0:
        starts = [_wide_start(colors, counts, coarse, k, plan, max_iter=max_iter, tol=tol, bits=bits)
                  for bits in _wide_levels(colors, len(points), k, plan)]
    else:
        split_on = bin_means(colors, counts, plan.split_bits) if plan.split_bits not in (0, plan.coarse_bits) else coarse
        split_points, _ = split_on
        if len(split_points) < k:
            split_on = coarse
        starts = [variance_split_start(*split_on, k, fraction=plan.split_fraction)]
    if len(points) <= k:
        return Clustering(snap_to_grid(starts[0]), np.zeros(0, np.intp), 0.0), 0, None
    cap = min(max_iter, plan.coarse_passes)
    runs = []
    for start in starts:
        search = BoundedSearch(points)
        state, passes = lloyd(
            search, weights, snap_to_grid(start), passes=cap, tol=tol, snap=snap_to_grid, relaxation=plan.relaxation
        )
        runs.append((state.error, len(runs), search, state, passes))
    _, _, search, state, passes = min(runs)
    if swap_level is not None:
        points, weights, parents = swap_level
        search = BoundedSearch.from_bins(points, parents, search, state.centres)
        state, _ = lloyd(search, weights, state.centres, passes=0, tol=tol, snap=snap_to_grid, relaxation=1.0)
    if max_iter > passes and len(points) <= plan.swap_max_points:
        rounds = SwapRounds(
            plan.coarse_swaps, plan.coarse_swap_share, min(plan.coarse_swap_passes, max_iter - passes), tol,
            plan.swap_reach,
        )
        state, used = swap_rounds(search, weights, state, rounds, plan, snap=snap_to_grid)
        passes += used
    return state, passes, search


def _wide_levels(colors, coarse_count, k, plan: Schedule) -> tuple[int, ...]:
    """Bits of the wide bins to start on (see Schedule.wide_finer_share)."""
    if coarse_count <= plan.wide_min_points:
        return (plan.wide_bits,)
    few = count_bins(colors, plan.wide_bits) < plan.wide_finer_share * k
    return (plan.wide_bits, plan.wide_bits + 1) if few else (plan.wide_bits,)


def _wide_start(colors, counts, coarse, k, plan: Schedule, *, max_iter: int, tol: float, bits: int) -> np.ndarray:
    """The centres of the best of the split and the seeded starts on bins
    `bits` wide (or on the coarse bins, if few), after swaps; the starts
    converge loosely (plan.restart_tol_factor x tol): they need only
    ranking."""
    coarse_points, _ = coarse
    wide = seeds = coarse
    if len(coarse_points) > plan.wide_min_points:
        wide = bin_means(colors, counts, bits)
        seeds = bin_means(colors, counts, plan.seed_bits)
        seed_points, _ = seeds
        if len(seed_points) <= k:
            seeds = wide
    wide_points, wide_weights = wide
    if len(wide_points) <= k:
        return variance_split_start(*coarse, k, fraction=plan.split_fraction)
    search, loose = search_for(wide_points, k), tol * plan.restart_tol_factor
    state, _ = _best_of_starts(search, wide_weights, k, plan, max_iter=max_iter, tol=loose, seeds=seeds)
    state, _ = _swapped(search, wide_weights, state, plan, max_iter=max_iter, tol=tol, loose=loose)
    return state.centres


def _swap_level(colors, counts, k, coarse_count, plan: Schedule):
    """(None, each colour's coarse bin), or with swaps on finer bins (see
    Schedule.swap_finer_share) ((their points, weights, coarse bin of
    each), each colour's finer bin): each colour's row in best_start's
    search."""
    coarse = bin_index(colors, plan.coarse_bits)
    if plan.coarse_swaps == 0 or coarse_count >= plan.swap_finer_share * k:
        return None, coarse
    return finer_bins(colors, counts, plan.coarse_bits + 1, coarse)
