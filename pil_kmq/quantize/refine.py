"""The late k-means stages: passes over the exact colours (beyond
kmeans.EXACT_MAX_COLOURS of them, over bins 2 levels wide, and the rounded
passes a slice at a time), ending on the codebook rounded to colours, the
one the file stores."""

from __future__ import annotations

import numpy as np

from . import work
from .bins import bin_means, count_bins, snap_to_grid
from .cells import LateSearch, assign_exact
from .lloyd import lloyd, moved_to_means, plain_step
from .swap import swap_rounds

# Cells of colour space for candidate lists: 2**CELL_BITS levels a side.
CELL_BITS = 5
# The fine stage clusters means of bins 2 levels wide: about as many as the
# colours of a photograph, far fewer than the colours of a noisy image.
# Beyond FINE_MAX_BINS of them (noise, synthetic images) it is skipped: the
# coarse bins are then already as fine as the clustering can use, and its
# tables would cost several bytes per pixel.
FINE_BITS = 7
FINE_MAX_BINS = 1 << 19
ROUNDED_PASSES = 1
# Over-relaxation of the fine passes (see lloyd.lloyd): it covers more
# ground per pass (on Kodak +0.02 dB at K=256, +0.006 at K=64).
LATE_RELAXATION = 1.8
# Distinct colours assigned at once in the final passes (bounds memory).
EXACT_SLICE = 1 << 17
# Swaps among the fine passes (refine_whole's `swaps` rounds): after
# FINE_SWAP_AFTER passes, rounds of up to FINE_SWAP_SHARE x K swaps, each
# settled by one pass (of the fine passes), judged on the exact colours
# (focused: swap.focused_swapped, FINE_SWAP_REACH). One round at K=256:
# +0.013 dB on skimage's photographs and on Kodak (see kmeans.FINE_SWAPS).
FINE_SWAP_AFTER = 4
FINE_SWAP_SHARE, FINE_SWAP_REACH = 0.02, 8


def round_to_colours(centres: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(centres), 0, 255)


def refine_whole(colors, counts, centres, search, fine_passes: int, budget: int, tol: float, swaps: int = 0):
    """The fine and rounded passes over every colour, with one search (its
    bounds survive the small moves of these late passes): up to
    fine_passes float passes (with `swaps` rounds of swaps among them),
    then the rounded ones, budget in all."""
    weights = counts[search.order].astype(np.float64)
    passes = min(budget, fine_passes)
    if passes > 0:
        centres, labels, used = _fine_passes(search, weights, centres, passes - 1, tol, swaps)
        # The last fine step goes straight on to the rounded passes: a
        # search at its float centres would only measure it.
        centres = plain_step(search.points, weights, centres, labels, snap_to_grid)
        budget -= used + 1
    codebook, labels, _, _ = lloyd(
        search, weights, round_to_colours(centres), min(ROUNDED_PASSES, budget), 0.0,
        round_to_colours,
    )
    unsorted = np.empty(len(colors), dtype=np.uint8)
    unsorted[search.order] = labels
    return codebook.astype(np.uint8), unsorted


def _fine_passes(search, weights, centres, passes: int, tol: float, swaps: int):
    """(centres, labels, passes used): up to `passes` fine passes, with swap
    rounds after the first FINE_SWAP_AFTER if there are passes left."""
    if swaps == 0 or passes <= FINE_SWAP_AFTER:
        return lloyd(search, weights, centres, passes, tol, snap_to_grid, LATE_RELAXATION)[:3]
    centres, labels, used, error = lloyd(
        search, weights, centres, FINE_SWAP_AFTER, tol, snap_to_grid, LATE_RELAXATION
    )
    centres, labels, error, swapping = swap_rounds(
        search, weights, centres, labels, error, min(swaps, passes - used), FINE_SWAP_SHARE, 1, tol,
        snap_to_grid, FINE_SWAP_REACH,
    )
    used += swapping
    if passes > used:
        centres, labels, more, _ = lloyd(
            search, weights, centres, passes - used, tol, snap_to_grid, LATE_RELAXATION
        )
        used += more
    return centres, labels, used


def refine_sliced(colors, counts, centres, fine_passes: int, budget: int, tol: float):
    """The fine passes on bins 2 levels wide (if there are not too many),
    the rounded passes over the colours a slice at a time: many colours in
    bounded memory."""
    if budget > 0 and len(centres) < count_bins(colors, FINE_BITS) <= FINE_MAX_BINS:
        fine_points, fine_weights = bin_means(colors, counts, FINE_BITS)
        search = LateSearch(fine_points, CELL_BITS)
        centres, _, used, _ = lloyd(
            search, fine_weights[search.order], centres, min(budget, fine_passes), tol,
            snap_to_grid, LATE_RELAXATION,
        )
        budget -= used
    codebook = round_to_colours(centres)
    labels = None
    for _ in range(min(ROUNDED_PASSES, budget)):
        work.done("pass")
        labels, totals, sums = assign_exact(colors, counts, codebook, CELL_BITS, EXACT_SLICE)
        new = moved_to_means(codebook, totals, sums, round_to_colours)
        if np.array_equal(new, codebook):
            break
        codebook, labels = new, None
    if labels is None:
        labels = assign_exact(colors, counts, codebook, CELL_BITS, EXACT_SLICE)[0]
    return codebook.astype(np.uint8), labels
