"""K-means over weighted colours: a variance-splitting start, then Lloyd's
algorithm accelerated with Hamerly's bounds.

Points are distinct colours and weights their pixel counts, so a centroid is
the mean of the pixels assigned to it, exactly as k-means over all pixels.

Determinism: every distance is computed exactly. Colours are integers and
centres are kept on a grid of 1/1024 (then of 1 for the final codebook), so
each product and sum in |x|^2 - 2 x.c + |c|^2 is exact in float64 whatever
order BLAS adds them in, on any number of threads. The bounds are inexact
floats, so a point keeps its label without a check only when the bound
clears by a margin far above their rounding error; everything else is
recomputed exactly.
"""

from __future__ import annotations

import heapq

import numpy as np

# Centres live on this grid during the float phase (see the module docstring).
GRID = 1024.0
# A bound must clear by this much (colour units) to skip a point: rounding
# errors in the bounds are around 1e-12, so this is generous and still rare.
MARGIN = 1e-6
STATS=[]
# Entries of a distance matrix computed at once. Small enough that OpenBLAS
# runs the product on the calling thread: its thread start-up costs more than
# the work for these thin (inner dimension C) products, and a busy machine
# makes it far worse. 64K float64 entries also stay in cache.
CHUNK_ENTRIES = 1 << 16
CELL_BITS = 4


def _snap_to_grid(centres: np.ndarray) -> np.ndarray:
    return np.rint(centres * GRID) / GRID


def _round_to_colours(centres: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(centres), 0, 255)


def variance_split_start(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Initial centres by greedy splitting (Wu's idea, on the points themselves).

    Start with one box holding every colour; repeatedly take the box with the
    largest weighted squared error and cut it across the axis and position
    that remove the most error. The k box means start Lloyd much nearer a
    good optimum than a random k-means++ draw, and deterministically.
    """
    channels = points.shape[1]
    levels = points.astype(np.intp)
    weighted = points * weights[:, None]
    square_sums = weights * (points * points).sum(axis=1)

    def box(indices: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        weight = weights[indices].sum()
        sums = weighted[indices].sum(axis=0)
        error = square_sums[indices].sum() - (sums @ sums) / weight
        return error, sums / weight, indices

    heap: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    order = 0  # tie-breaker so the heap never compares arrays

    def push(indices: np.ndarray) -> None:
        nonlocal order
        error, mean, indices = box(indices)
        heapq.heappush(heap, (-error, order, mean, indices))
        order += 1

    push(np.arange(len(points)))
    finished: list[np.ndarray] = []
    while heap and len(heap) + len(finished) < k:
        neg_error, _, mean, indices = heapq.heappop(heap)
        if -neg_error <= 0 or len(indices) < 2:
            finished.append(mean)
            continue
        box_weights = weights[indices]
        box_weighted = weighted[indices]
        best_gain, best_axis, best_cut = -np.inf, 0, 0
        for axis in range(channels):
            values = levels[indices, axis]
            low = values.min()
            if values.max() == low:
                continue
            values = values - low
            count = np.cumsum(np.bincount(values, box_weights))
            sums = np.stack(
                [np.cumsum(np.bincount(values, box_weighted[:, c])) for c in range(channels)],
                axis=1,
            )
            total_count, total_sums = count[-1], sums[-1]
            left_count, left_sums = count[:-1], sums[:-1]
            right_count = total_count - left_count
            right_sums = total_sums - left_sums
            valid = (left_count > 0) & (right_count > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = (left_sums * left_sums).sum(axis=1) / left_count + (
                    right_sums * right_sums
                ).sum(axis=1) / right_count
            gain[~valid] = -np.inf
            cut = int(gain.argmax())
            if gain[cut] > best_gain:
                best_gain, best_axis, best_cut = gain[cut], axis, cut + low
        on_left = levels[indices, best_axis] <= best_cut
        push(indices[on_left])
        push(indices[~on_left])
    centres = finished + [entry[2] for entry in sorted(heap, key=lambda e: e[1])]
    return np.array(centres[:k], dtype=np.float64).reshape(-1, points.shape[1])


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

    def __init__(self, points: np.ndarray, cell_bits: int):
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

    def candidates(self, centres: np.ndarray) -> np.ndarray:
        """(cells, K) mask of the centres that may be nearest within each box."""
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
        return near <= far.min(axis=1, keepdims=True)

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        """Label of every point (in the points' order as sorted by cell: see
        `order`)."""
        mask = self.candidates(centres)
        count = mask.sum(axis=1)
        first = mask.argmax(axis=1)
        labels = first[self.cell_of_point]
        width = int(count.max())
        if width == 1:
            return labels
        # Left-aligned candidate lists, padded with each box's first candidate.
        table = np.repeat(first[:, None], width, axis=1)
        rows, cols = np.nonzero(mask)
        slots = np.cumsum(mask, axis=1)[rows, cols] - 1
        table[rows, slots] = cols
        point_count = count[self.cell_of_point]
        by_channel = [np.ascontiguousarray(centres[:, c]) for c in range(centres.shape[1])]
        padded = 2
        while True:
            group = np.flatnonzero((point_count <= padded) & (point_count > padded // 2))
            if group.size:
                self._search(group, table[:, :padded], by_channel, labels)
            if padded >= width:
                break
            padded *= 2
        return labels

    def _search(self, group, table, by_channel, labels) -> None:
        step = max(1, (1 << 16) // table.shape[1])
        for start in range(0, len(group), step):
            rows = group[start : start + step]
            candidates = table[self.cell_of_point[rows]]
            total = None
            for channel, centre_values in enumerate(by_channel):
                offset = centre_values.take(candidates)
                offset -= self.points_by_channel[channel][rows, None]
                offset *= offset
                total = offset if total is None else total + offset
            best = total.argmin(axis=1)
            labels[rows] = candidates[np.arange(len(rows)), best]


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
            new[np.flatnonzero(empty)[: len(worst)]] = points[worst]
        shift = np.sqrt(((new - centres) ** 2).sum(axis=1)).max()
        centres = new
        if shift == 0:
            break
        labels = search.nearest(centres)
        if shift <= tol and not empty.any():
            break
    return centres, labels


def kmeans(
    points: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    max_iter: int = 300,
    tol: float = 1e-2,
    seed: int = 0,
    final_iter: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Codebook ((k, C) uint8) and each point's label (exactly its nearest
    codebook entry, ties to the lowest index) for weighted points (M, C) with
    M > k.

    Lloyd runs on float centres (to tol or max_iter), then continues on
    centres rounded to colours: the rounded mean is the best integer centre
    of a cluster, so these passes only lower the error that the file will
    actually have. `seed` is kept for API compatibility: the start is
    deterministic without randomness.
    """
    del seed
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    start = _snap_to_grid(variance_split_start(points, weights, k))
    search = CellSearch(points, CELL_BITS)
    weights = weights[search.order]
    centres, _ = lloyd(search, weights, start, max_iter, tol, _snap_to_grid)
    codebook, labels = lloyd(search, weights, _round_to_colours(centres), final_iter, 0.0, _round_to_colours)
    unsorted = np.empty_like(labels)
    unsorted[search.order] = labels
    return codebook.astype(np.uint8), unsorted
