"""The late k-means stages: passes over the exact colours (beyond
plan.exact_max_colours of them, over bins 2 levels wide, and the rounded
passes a slice at a time), ending on the codebook rounded to colours, the
one the file stores."""

from __future__ import annotations

import numpy as np

from . import work
from .bins import bin_means, count_bins, snap_to_grid
from .cells import LateSearch, assign_exact
from .lloyd import Clustering, NearestSearch, lloyd, moved_to_means, plain_step
from .schedule import Schedule
from .swap import SwapRounds, swap_rounds

# Cells of colour space for candidate lists: 2**CELL_BITS levels a side
# (time only: the searches are exact).
CELL_BITS = 5
# Distinct colours assigned at once in the final passes (bounds memory).
EXACT_SLICE = 1 << 17


def round_to_colours(centres: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(centres), 0, 255)


def rounded_passes(search: NearestSearch, weights, centres, *, passes: int) -> Clustering:
    """Plain Lloyd passes on the codebook rounded to colours (the one the
    file stores), ending on its exactly nearest labels. No over-relaxed
    trial: rounded to colours, it almost never beats the plain step (1 in
    21 Kodak 32x32 crops at K=16, none at K=64 / 256 on crops or icons) and
    costs a whole assignment (full Kodak K=64 / 256: 0.85 / 0.88x the
    k-means time, same codebooks)."""
    final, _ = lloyd(
        search, weights, round_to_colours(centres), passes=passes, tol=0.0, snap=round_to_colours, relaxation=1.0
    )
    return final


def refine_whole(colors, counts, centres, search: NearestSearch, plan: Schedule, *, budget: int, tol: float):
    """(codebook, each colour's label): the fine and rounded passes over
    every colour, with one search (its bounds survive the small moves of
    these late passes): up to plan.fine_passes float passes (with
    plan.fine_swaps rounds of swaps among them), then the rounded ones,
    `budget` in all."""
    weights = counts[search.order].astype(np.float64)
    passes = min(budget, plan.fine_passes)
    if passes > 0:
        state, used = _fine_passes(search, weights, centres, plan, passes=passes - 1, tol=tol)
        # The last fine step goes straight on to the rounded passes: a
        # search at its float centres would only measure it.
        centres = plain_step(search.points, weights, state.centres, state.labels, snap_to_grid)
        budget -= used + 1
    final = rounded_passes(search, weights, centres, passes=min(plan.rounded_passes, budget))
    unsorted = np.empty(len(colors), dtype=np.uint8)
    unsorted[search.order] = final.labels
    return final.centres.astype(np.uint8), unsorted


def _fine_passes(search, weights, centres, plan: Schedule, *, passes: int, tol: float) -> tuple[Clustering, int]:
    """Up to `passes` fine passes, with swap rounds after the first
    plan.fine_swap_after if there are passes left; and the passes used."""
    def settle(centres, passes):
        return lloyd(search, weights, centres, passes=passes, tol=tol, snap=snap_to_grid, relaxation=plan.relaxation)

    if plan.fine_swaps == 0 or passes <= plan.fine_swap_after:
        return settle(centres, passes)
    state, used = settle(centres, plan.fine_swap_after)
    rounds = SwapRounds(min(plan.fine_swaps, passes - used), plan.fine_swap_share, 1, tol, plan.swap_reach)
    state, swapping = swap_rounds(search, weights, state, rounds, plan, snap=snap_to_grid)
    used += swapping
    if passes > used:
        state, more = settle(state.centres, passes - used)
        used += more
    return state, used


def refine_sliced(colors, counts, centres, plan: Schedule, *, budget: int, tol: float):
    """The fine passes on bins 2 levels wide (if there are not too many),
    the rounded passes over the colours a slice at a time: many colours in
    bounded memory."""
    if min(budget, plan.fine_passes) > 0 and len(centres) < count_bins(colors, plan.fine_bits) <= plan.fine_max_bins:
        fine_points, fine_weights = bin_means(colors, counts, plan.fine_bits)
        search = LateSearch(fine_points, CELL_BITS)
        state, used = lloyd(
            search, fine_weights[search.order], centres, passes=min(budget, plan.fine_passes), tol=tol,
            snap=snap_to_grid, relaxation=plan.relaxation,
        )
        centres = state.centres
        budget -= used
    codebook = round_to_colours(centres)
    labels = None
    for _ in range(min(plan.rounded_passes, budget)):
        work.done("pass")
        labels, totals, sums = assign_exact(colors, counts, codebook, CELL_BITS, EXACT_SLICE)
        new = moved_to_means(codebook, totals, sums, round_to_colours)
        if np.array_equal(new, codebook):
            break
        codebook, labels = new, None
    if labels is None:
        labels, _, _ = assign_exact(colors, counts, codebook, CELL_BITS, EXACT_SLICE)
    return codebook.astype(np.uint8), labels
