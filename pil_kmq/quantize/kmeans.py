"""K-means over weighted colours, coarse to fine.

Points are distinct colours and weights their pixel counts, so a centroid is
the mean of the pixels assigned to it, exactly as k-means over all pixels.
The stages (see kmeans()):

1. Bin the colours (2**COARSE_BITS levels a side), each bin standing as the
   weighted mean of its colours; split those greedily by variance for a
   deterministic start (variance_split_start).
2. Lloyd on the bins, skipping points that provably keep their label
   (Hamerly's bounds, BoundedSearch): the many early passes are cheap.
3. A few Lloyd passes over every colour, each nearest centre found among
   a handful of candidates per cell of colour space (CellSearch).
4. Lloyd passes on centres rounded to colours, ending with the exact
   assignment of every colour to the final uint8 codebook.

Determinism: every distance is computed exactly. Colours are integers and
centres (and bin means) are kept on a grid of 1/1024, then of 1 for the
codebook, so each product and sum in |x|^2 - 2 x.c + |c|^2 or (x - c)^2 is
exact in float64, whatever order BLAS adds them in, on any number of
threads: ties go to the lowest index, and the result is the same on every
run. Hamerly's bounds are inexact floats, so a point keeps its label
unchecked only when a bound clears by a margin far above their rounding
error.
"""

from __future__ import annotations

import numpy as np

from .nearest import BoundedSearch, CellSearch

# Centres live on this grid during the float phase (see the module docstring).
GRID = 1024.0
# Cells of colour space for candidate lists: 2**CELL_BITS levels a side.
CELL_BITS = 4
# Candidate lists stay valid until a centre moves this far (colour units).
CELL_SLACK = 3.0
# The coarse stage clusters means of bins 2**(8 - COARSE_BITS) levels wide,
# when there are enough colours for that to pay.
COARSE_BITS = 6
COARSE_MIN_POINTS = 4096
# Share of the boxes split together in each round of the start.
SPLIT_FRACTION = 0.5
# Beyond this many distinct colours, bins of 2**(8 - FINE_BITS) levels stand
# in for them in the passes after the coarse stage.
FINE_MAX_POINTS = 1 << 18
FINE_BITS = 7
# Most Lloyd passes per stage: on the bins (later passes there move centres
# by hundredths of a level), over every colour, on rounded centres. Where K
# is small passes are cheap, so there are more of them.
PASSES_SMALL_K = (15, 6, 3)
PASSES_LARGE_K = (10, 2, 2)
SMALL_K = 64


def _snap_to_grid(centres: np.ndarray) -> np.ndarray:
    return np.rint(centres * GRID) / GRID


def _round_to_colours(centres: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(centres), 0, 255)


def variance_split_start(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Initial centres by greedy variance splitting (Wu's idea, on the points).

    Start with one box holding every colour; repeatedly take the boxes with
    the largest weighted squared error and cut each across the axis and
    level that remove the most error. The k box means start Lloyd near a
    good optimum, deterministically. Each round splits the worst
    SPLIT_FRACTION of the boxes together, with one bincount for all of
    them, so the Python loop runs tens of times rather than k times; on
    photos this picks the same boxes as splitting one at a time.
    """
    channels = points.shape[1]
    levels = np.clip(points, 0, 255).astype(np.intp)
    moments = np.column_stack(
        [weights, points * weights[:, None], weights * (points * points).sum(axis=1)]
    )
    width = moments.shape[1]
    box_of_point = np.zeros(len(points), dtype=np.intp)
    box_moments = moments.sum(axis=0, keepdims=True)
    # Level ranges of each box (inclusive; may be loose after splits on
    # other axes): cut tables only need to span the widest box of a round.
    box_low = levels.min(axis=0, keepdims=True)
    box_high = levels.max(axis=0, keepdims=True)
    splittable = np.ones(1, dtype=bool)
    while len(box_moments) < k:
        sums = box_moments[:, 1 : 1 + channels]
        errors = box_moments[:, -1] - (sums * sums).sum(axis=1) / box_moments[:, 0]
        errors[~splittable] = -np.inf
        candidates = np.flatnonzero(errors > 0)
        if candidates.size == 0:
            break
        batch_size = min(k - len(box_moments), max(1, int(len(box_moments) * SPLIT_FRACTION)))
        ranked = candidates[np.argsort(-errors[candidates], kind="stable")]
        batch = ranked[:batch_size]
        slot_of_box = np.full(len(box_moments), -1)
        slot_of_box[batch] = np.arange(len(batch))
        slots = slot_of_box[box_of_point]
        chosen = np.flatnonzero(slots >= 0)
        slots = slots[chosen]
        # Position (slot, axis, level above the box's low end): cumulative
        # sums along level give the moments at or below every cut of every
        # axis of every box.
        span = int((box_high[batch] - box_low[batch]).max()) + 1
        relative = levels[chosen] - box_low[batch][slots]
        positions = ((slots[:, None] * channels + np.arange(channels)) * span + relative).ravel()
        size = len(batch) * channels * span
        repeated = np.repeat(moments[chosen], channels, axis=0)
        cumulative = np.stack(
            [np.bincount(positions, repeated[:, m], minlength=size) for m in range(width)],
            axis=1,
        )
        cumulative = np.cumsum(cumulative.reshape(len(batch), channels, span, width), axis=2)
        left = cumulative[:, :, :-1]
        right = box_moments[batch][:, None, None, :] - left
        left_sums, right_sums = left[..., 1 : 1 + channels], right[..., 1 : 1 + channels]
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = (left_sums * left_sums).sum(axis=3) / left[..., 0] + (
                right_sums * right_sums
            ).sum(axis=3) / right[..., 0]
        gain[(left[..., 0] <= 0) | (right[..., 0] <= 0)] = -np.inf
        flat = gain.reshape(len(batch), -1)
        best = flat.argmax(axis=1)
        can_split = np.isfinite(flat[np.arange(len(batch)), best])
        splittable[batch[~can_split]] = False
        batch, best = batch[can_split], best[can_split]
        if batch.size == 0:
            continue
        slot_index = np.flatnonzero(can_split)
        axes, cuts = np.divmod(best, span - 1)
        cuts = cuts + box_low[batch, axes]  # back to absolute levels
        new_ids = np.full(len(slot_of_box), -1)
        new_ids[batch] = len(box_moments) + np.arange(len(batch))
        # Points above their box's cut move to the new box.
        axis_of_box = np.zeros(len(slot_of_box), dtype=np.intp)
        cut_of_box = np.full(len(slot_of_box), 256)
        axis_of_box[batch] = axes
        cut_of_box[batch] = cuts
        boxes = box_of_point[chosen]
        moves = levels[chosen, axis_of_box[boxes]] > cut_of_box[boxes]
        box_of_point[chosen[moves]] = new_ids[boxes[moves]]
        lower = left[slot_index, axes, cuts - box_low[batch, axes]]
        upper = box_moments[batch] - lower
        box_moments[batch] = lower
        box_moments = np.concatenate([box_moments, upper])
        upper_low = box_low[batch].copy()
        upper_low[np.arange(len(batch)), axes] = cuts + 1
        upper_high = box_high[batch].copy()
        box_high[batch, axes] = cuts
        box_low = np.concatenate([box_low, upper_low])
        box_high = np.concatenate([box_high, upper_high])
        splittable = np.concatenate([splittable, np.ones(len(batch), dtype=bool)])
    return box_moments[:, 1 : 1 + channels] / box_moments[:, :1]


def lloyd(
    search: CellSearch,
    weights: np.ndarray,
    centres: np.ndarray,
    max_iter: int,
    tol: float,
    snap,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd iterations until no centre moves more than tol or after
    max_iter updates; returns centres and labels exactly nearest to them.

    An emptied cluster is re-seeded at the point that costs the most (weight x
    squared distance), so K colours stay K useful colours.
    """
    k, channels = centres.shape
    points = search.points
    weighted = [weights * points[:, c] for c in range(channels)]
    labels = search.nearest(centres)
    for _ in range(max_iter):
        totals = np.bincount(labels, weights, minlength=k)
        sums = np.stack([np.bincount(labels, w, minlength=k) for w in weighted], axis=1)
        empty = totals == 0
        new = centres.copy()
        new[~empty] = snap(sums[~empty] / totals[~empty, None])
        if empty.any():
            distances = ((points - centres[labels]) ** 2).sum(axis=1)
            worst = np.argsort(-(weights * distances), kind="stable")[: int(empty.sum())]
            new[np.flatnonzero(empty)[: len(worst)]] = snap(points[worst])
        shift = np.sqrt(((new - centres) ** 2).sum(axis=1)).max()
        centres = new
        if shift == 0:
            break
        labels = search.nearest(centres)
        if shift <= tol and not empty.any():
            break
    return centres, labels


def bin_means(points: np.ndarray, weights: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Points merged into cubic bins of 2**(8-bits) levels a side, each bin
    represented by the weighted MEAN of its points (not its centre), so the
    clustering of the bins sees where the colours really are."""
    shift = 8 - bits
    codes = np.zeros(len(points), dtype=np.int64)
    for channel in range(points.shape[1]):
        codes = (codes << bits) | (points[:, channel].astype(np.int64) >> shift)
    _, which = np.unique(codes, return_inverse=True)
    which = which.reshape(-1)
    totals = np.bincount(which, weights)
    means = np.stack(
        [np.bincount(which, weights * points[:, c]) for c in range(points.shape[1])], axis=1
    ) / totals[:, None]
    return means, totals


def kmeans(
    points: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    max_iter: int = 300,
    tol: float = 1e-2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Codebook ((k, C) uint8) and each point's label (exactly its nearest
    codebook entry, ties to the lowest index) for weighted points (M, C) with
    M > k, the points being integer colours.

    Coarse to fine, because Lloyd's many early passes need not see every
    colour: split and run Lloyd on bin means, then a few passes over all
    the colours, then passes on centres rounded to colours (at most
    PASSES_SMALL_K or PASSES_LARGE_K passes per stage). The rounded mean is the best integer centre of a cluster, so
    those last passes only lower the error the file will actually have.
    max_iter lowers those caps (0: the split's box means, rounded, and the
    exact assignment); tol stops the float stages early.
    `seed` is kept for API compatibility: nothing here is random.
    """
    del seed
    coarse_iter, full_iter, rounded_iter = (
        min(passes, max_iter) for passes in (PASSES_SMALL_K if k <= SMALL_K else PASSES_LARGE_K)
    )
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if points.shape[1] >= 3 and len(points) > COARSE_MIN_POINTS:
        coarse_points, coarse_weights = bin_means(points, weights, COARSE_BITS)
        coarse_points = _snap_to_grid(coarse_points)
    else:
        coarse_points, coarse_weights = points, weights
    centres = _snap_to_grid(variance_split_start(coarse_points, coarse_weights, k))
    if len(coarse_points) > k:
        coarse = BoundedSearch(coarse_points)
        centres, _ = lloyd(coarse, coarse_weights, centres, coarse_iter, tol, _snap_to_grid)
    # Passes over every colour, unless there are so many (big noisy photos)
    # that finer bins stand in for them until the last, exact assignment.
    fine_points, fine_weights = points, weights
    if points.shape[1] >= 3 and len(points) > FINE_MAX_POINTS:
        fine_points, fine_weights = bin_means(points, weights, FINE_BITS)
        fine_points = _snap_to_grid(fine_points)
    search = CellSearch(fine_points, CELL_BITS, CELL_SLACK)
    fine_weights = fine_weights[search.order]
    centres, _ = lloyd(search, fine_weights, centres, full_iter, tol, _snap_to_grid)
    codebook, labels = lloyd(
        search, fine_weights, _round_to_colours(centres),
        rounded_iter, 0.0, _round_to_colours,
    )
    if fine_points is not points:
        search = CellSearch(points, CELL_BITS, CELL_SLACK)
        labels = search.nearest(codebook)
    unsorted = np.empty_like(labels)
    unsorted[search.order] = labels
    return codebook.astype(np.uint8), unsorted
