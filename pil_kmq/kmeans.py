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

# Centres live on this grid during the float phase (see the module docstring).
GRID = 1024.0
# Entries of a distance matrix computed at once. Small enough that OpenBLAS
# runs the product on the calling thread: its thread start-up costs more than
# the work for these thin (inner dimension C) products, and a busy machine
# makes it far worse. 64K float64 entries also stay in cache.
CHUNK_ENTRIES = 1 << 16
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


class CellSearch:
    """Exact nearest centre for a fixed set of points, pruned by grid cells.

    Points are grouped into cubic cells of the colour space (their bounding
    box within the cell, in fact). For a box, a centre can be nearest to some
    point in it only if its nearest possible distance to the box is at most
    the smallest farthest possible distance of any centre. That leaves a few
    candidates per box (about 5 of 256 for photos), and in most boxes of a
    converged clustering exactly one, which needs no distances at all.

    All arithmetic is exact (integers and centres on a 1/1024 grid), so
    ties go to the lowest index and the result is the same on every run.
    """

    def __init__(self, points: np.ndarray, cell_bits: int, slack: float = 1.0):
        self.slack = slack
        shift = 8 - cell_bits
        cells = np.zeros(len(points), dtype=np.int64)
        for channel in range(points.shape[1]):
            cells = (cells << cell_bits) | (points[:, channel].astype(np.int64) >> shift)
        self.order = np.argsort(cells, kind="stable")
        self.points = points[self.order]
        self.points_by_channel = [np.ascontiguousarray(self.points[:, c]) for c in range(points.shape[1])]
        cells = cells[self.order]
        starts = np.flatnonzero(np.diff(cells, prepend=-1))
        self.cell_of_point = np.repeat(np.arange(len(starts)), np.diff(starts, append=len(cells)))
        self.low = np.minimum.reduceat(self.points, starts, axis=0)
        self.high = np.maximum.reduceat(self.points, starts, axis=0)

        self.snapshot: np.ndarray | None = None
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []

    def _candidates(self, centres: np.ndarray, slack: float) -> np.ndarray:
        """(cells, K) mask of the centres that may be nearest to some point of
        each box, even after every centre moves by up to `slack`."""
        cells, k = len(self.low), len(centres)
        near = np.zeros((cells, k))
        far = np.zeros((cells, k))
        for channel in range(centres.shape[1]):
            below = self.low[:, channel, None] - centres[None, :, channel]
            above = centres[None, :, channel] - self.high[:, channel, None]
            gap = np.maximum(np.maximum(below, above), 0)
            near += gap * gap
            reach = np.maximum(-below, -above)
            far += reach * reach
        # A point's nearest centre is no farther than the best far bound
        # (plus slack); a centre nearer than that bound (less slack) may win.
        # The tiny extra covers rounding in the square roots.
        reach = np.sqrt(far.min(axis=1, keepdims=True)) + 2 * slack + 1e-9
        return near <= reach * reach

    def _prepare(self, centres: np.ndarray) -> None:
        """Candidate lists for every point, grouped by length (padded to a
        power of two), valid until some centre strays `self.slack` away."""
        mask = self._candidates(centres, self.slack)
        count = mask.sum(axis=1)
        first = mask.argmax(axis=1)
        self.first = first
        self.snapshot = centres.copy()
        self.groups = []
        width = int(count.max())
        if width == 1:
            return
        # Left-aligned candidate lists in index order (so ties go to the
        # lowest index), padded with each box's first candidate.
        table = np.repeat(first[:, None].astype(np.uint8), width, axis=1)
        rows, cols = np.nonzero(mask)
        slots = np.cumsum(mask, axis=1)[rows, cols] - 1
        table[rows, slots] = cols
        point_count = count[self.cell_of_point]
        padded = 2
        while True:
            group = np.flatnonzero((point_count <= padded) & (point_count > padded // 2))
            if group.size:
                # uint8 (K <= 256) keeps these tables small for big images.
                candidates = table[:, :padded][self.cell_of_point[group]]
                self.groups.append((group, candidates))
            if padded >= width:
                break
            padded *= 2

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        """Label of every point (in the points' order as sorted by cell: see
        `order`)."""
        if self.snapshot is None or len(self.snapshot) != len(centres):
            self._prepare(centres)
        else:
            drift = np.sqrt(((centres - self.snapshot) ** 2).sum(axis=1)).max()
            if drift > self.slack:
                self._prepare(centres)
        labels = self.first[self.cell_of_point]
        by_channel = [np.ascontiguousarray(centres[:, c]) for c in range(centres.shape[1])]
        for group, group_candidates in self.groups:
            step = max(1, CHUNK_ENTRIES // group_candidates.shape[1])
            for start in range(0, len(group), step):
                rows = group[start : start + step]
                candidates = group_candidates[start : start + step].astype(np.intp)
                total = None
                for centre_values, point_values in zip(by_channel, self.points_by_channel):
                    offset = centre_values.take(candidates)
                    offset -= point_values[rows, None]
                    offset *= offset
                    total = offset if total is None else total + offset
                best = total.argmin(axis=1)
                labels[rows] = np.take_along_axis(candidates, best[:, None], axis=1)[:, 0]
        return labels


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


class BoundedSearch:
    """Exact nearest centre by brute force, skipping points that provably
    keep their label (Hamerly's bounds), for the coarse stage.

    It remembers, per point, an upper bound on the distance to its centre
    and a lower bound on the distance to any other, and loosens both by how
    far the centres moved since the last call. A point whose upper bound is
    below its lower bound, or below half the gap from its centre to the
    next nearest centre, cannot have changed label. The bounds are floats,
    so they must clear by a margin far above their rounding error.
    """

    MARGIN = 1e-6

    def __init__(self, points: np.ndarray):
        self.points = points
        self.order = np.arange(len(points))
        self.norms = (points * points).sum(axis=1)
        self.centres: np.ndarray | None = None
        count = len(points)
        self.labels = np.zeros(count, dtype=np.intp)
        self.upper = np.full(count, np.inf)
        self.lower = np.zeros(count)

    def _search_all(self, rows: np.ndarray, centres: np.ndarray) -> None:
        k = len(centres)
        step = max(1, CHUNK_ENTRIES // k)
        scaled = -2.0 * centres.T
        centre_norms = (centres * centres).sum(axis=1)
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            distances = self.points[part] @ scaled
            distances += centre_norms
            distances += self.norms[part, None]
            nearest = distances.argmin(axis=1)
            span = np.arange(len(part))
            best = distances[span, nearest]
            if k > 1:
                distances[span, nearest] = np.inf
                second = distances.min(axis=1)
            else:
                second = np.full(len(part), np.inf)
            self.labels[part] = nearest
            self.upper[part] = np.sqrt(np.maximum(best, 0))
            self.lower[part] = np.sqrt(np.maximum(second, 0))

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        if self.centres is None or len(self.centres) != len(centres):
            self._search_all(self.order, centres)
            self.centres = centres.copy()
            return self.labels.copy()
        moves = np.sqrt(((centres - self.centres) ** 2).sum(axis=1))
        self.upper += moves[self.labels]
        self.lower -= moves.max()
        self.centres = centres.copy()
        if len(centres) > 1:
            # Squared gaps as |a|^2 - 2 a.b + |b|^2: exact on the grid, and a
            # K x K x C product is small enough to stay on this thread.
            norms = (centres * centres).sum(axis=1)
            gaps = centres @ (-2.0 * centres.T)
            gaps += norms
            gaps += norms[:, None]
            np.fill_diagonal(gaps, np.inf)
            nearest_gap = np.sqrt(np.maximum(gaps.min(axis=1), 0))
            bound = np.maximum(0.5 * nearest_gap[self.labels], self.lower) - self.MARGIN
        else:
            bound = np.full(len(self.points), np.inf)
        unsure = np.flatnonzero(self.upper >= bound)
        if unsure.size:
            offsets = self.points[unsure] - centres[self.labels[unsure]]
            self.upper[unsure] = np.sqrt((offsets * offsets).sum(axis=1))
            unsure = unsure[self.upper[unsure] >= bound[unsure]]
            if unsure.size:
                self._search_all(unsure, centres)
        return self.labels.copy()

