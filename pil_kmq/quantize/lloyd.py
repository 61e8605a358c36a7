"""Lloyd's iterations on weighted points, stopped by the relative change of
the weighted squared error: passes end when they stop paying, not at a
fixed count (which stops short of convergence on some images and wastes
passes on others)."""

from __future__ import annotations

import numpy as np


def cluster_sums(
    labels: np.ndarray, weights: np.ndarray, weighted: list[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(weight, weighted coordinate sums) of each cluster. bincount adds in
    point order, so the sums are the same on every run and machine."""
    totals = np.bincount(labels, weights, minlength=k)
    sums = np.stack([np.bincount(labels, w, minlength=k) for w in weighted], axis=1)
    return totals, sums


def scatter(square_total: float, totals: np.ndarray, sums: np.ndarray) -> float:
    """Weighted squared error of the clusters about their means:
    sum w |x|^2 - sum |S_j|^2 / W_j."""
    filled = totals > 0
    return square_total - float(((sums[filled] ** 2).sum(axis=1) / totals[filled]).sum())


def weighted_error(points, weights, centres, labels) -> float:
    offsets = points - centres[labels]
    return float((weights * (offsets * offsets).sum(axis=1)).sum())


def lloyd(search, weights: np.ndarray, centres: np.ndarray, max_passes: int, tol: float, snap):
    """Weighted Lloyd from `centres` over search.points (the search gives each
    point's exactly nearest centre) until a pass lowers the error by at
    most tol of it, or after max_passes updates. Returns (centres, labels,
    passes, error), labels exactly nearest to the centres returned.

    An emptied cluster is re-seeded at the point that costs the most (weight
    x squared distance), so K colours stay K useful colours.
    """
    k, channels = centres.shape
    points = search.points
    weighted = [weights * points[:, c] for c in range(channels)]
    square_total = float((weights * (points * points).sum(axis=1)).sum())
    labels = search.nearest(centres)
    previous = np.inf
    passes = 0
    while passes < max_passes:
        passes += 1
        totals, sums = cluster_sums(labels, weights, weighted, k)
        empty = totals == 0
        new = centres.copy()
        new[~empty] = snap(sums[~empty] / totals[~empty, None])
        if empty.any():
            distances = ((points - centres[labels]) ** 2).sum(axis=1)
            worst = np.argsort(-(weights * distances), kind="stable")[: int(empty.sum())]
            new[np.flatnonzero(empty)[: len(worst)]] = snap(points[worst])
        error = scatter(square_total, totals, sums)
        moved = not np.array_equal(new, centres)
        centres = new
        if not moved:
            break
        labels = search.nearest(centres)
        if previous - error <= tol * error and not empty.any():
            break
        previous = error
    return centres, labels, passes, weighted_error(points, weights, centres, labels)
