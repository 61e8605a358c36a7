"""K-means: Lloyd's algorithm over weighted colours, k-means++ start.

Points are distinct colours and weights their pixel counts, so a centroid is
the mean of the pixels assigned to it, exactly as k-means over all pixels.
"""

from __future__ import annotations

import numpy as np

CHUNK = 16384


def _sq_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = points @ (-2.0 * centres.T)
    d += (centres * centres).sum(axis=1)
    d += (points * points).sum(axis=1, keepdims=True)
    np.maximum(d, 0, out=d)
    return d


def _nearest(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre index and squared distance for every point."""
    labels = np.empty(len(points), dtype=np.intp)
    dist = np.empty(len(points), dtype=points.dtype)
    for start in range(0, len(points), CHUNK):
        d = _sq_distances(points[start : start + CHUNK], centres)
        lab = d.argmin(axis=1)
        labels[start : start + CHUNK] = lab
        dist[start : start + CHUNK] = d[np.arange(len(lab)), lab]
    return labels, dist


def kmeans_plus_plus(
    points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Weighted k-means++ seeding: each new centre drawn with probability
    proportional to weight x squared distance to the nearest chosen centre."""
    centres = np.empty((k, points.shape[1]), dtype=points.dtype)
    first = rng.choice(len(points), p=weights / weights.sum())
    centres[0] = points[first]
    closest = _sq_distances(points, centres[:1])[:, 0]
    for i in range(1, k):
        potential = weights * closest
        total = potential.sum()
        if total <= 0:
            centres[i:] = centres[0]
            break
        pick = np.searchsorted(np.cumsum(potential), rng.random() * total)
        pick = min(pick, len(points) - 1)
        centres[i] = points[pick]
        np.minimum(closest, _sq_distances(points, centres[i : i + 1])[:, 0], out=closest)
    return centres


def lloyd(
    points: np.ndarray,
    weights: np.ndarray,
    centres: np.ndarray,
    max_iter: int,
    tol: float,
) -> np.ndarray:
    """Refine centres until none moves more than tol (colour units) or max_iter.

    An emptied cluster is re-seeded at the point that costs the most (weight x
    squared distance), so K colours stay K useful colours.
    """
    k, channels = centres.shape
    centres = centres.astype(np.float64)
    for _ in range(max_iter):
        labels, dist = _nearest(points, centres)
        totals = np.bincount(labels, weights=weights, minlength=k)
        sums = np.stack(
            [np.bincount(labels, weights=weights * points[:, c], minlength=k) for c in range(channels)],
            axis=1,
        )
        new = centres.copy()
        filled = totals > 0
        new[filled] = sums[filled] / totals[filled, None]
        empty = np.flatnonzero(~filled)
        if empty.size:
            cost = weights * dist
            worst = np.argsort(cost)[::-1][: empty.size]
            new[empty[: worst.size]] = points[worst]
        shift = np.sqrt(((new - centres) ** 2).sum(axis=1)).max()
        centres = new
        if shift <= tol and not empty.size:
            break
    return centres


def kmeans(
    points: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    max_iter: int = 300,
    tol: float = 1e-2,
    seed: int = 0,
) -> np.ndarray:
    """K centroids (float64, (k, C)) of weighted points (M, C); requires M > k."""
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    centres = kmeans_plus_plus(points, weights, k, rng)
    return lloyd(points, weights, centres, max_iter, tol)
