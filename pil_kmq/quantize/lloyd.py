"""Lloyd's iterations on weighted points, stopped by the relative change of
the weighted squared error: passes end when they stop paying, not at a
fixed count (which stops short of convergence on some images and wastes
passes on others)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from . import work

# Up to this many points the sums by label take one bincount over (label,
# column) entries: fewer numpy calls, which is what small sets pay for;
# beyond it a bincount per column, without the copies (time only: the sums
# are the same).
ONE_BINCOUNT_POINTS = 1 << 14
# Up to this many points Lloyd sums every cluster from scratch in one
# bincount over (label, column) entries stacked once a run, rather than
# moving the points whose label changed (time only: every sum is exact,
# so the values are the same; 32x32 images 0.95-0.97x the k-means time).
WHOLE_SUMS_POINTS = 1 << 10


class NearestSearch(Protocol):
    """Each point's exactly nearest centre, ties to the lowest index: the
    protocol of the exact reference (nearest.ExactSearch) and of the fast
    searches (keys.BruteForceSearch, nearest.BoundedSearch,
    cells.LateSearch). `points` are in the search's own order; `order`
    maps them back (points[i] is the caller's point order[i])."""

    points: np.ndarray
    order: np.ndarray

    def nearest(self, centres: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Clustering:
    """The state the stages pass on: centres, each point's label (exactly
    its nearest centre, in the search's point order) and the weighted
    squared error of that assignment."""

    centres: np.ndarray
    labels: np.ndarray
    error: float


def cluster_sums(
    labels: np.ndarray, weights: np.ndarray, weighted: list[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(weight, weighted coordinate sums) of each cluster. bincount adds in
    point order, so the sums are the same on every run and machine."""
    table = _bincount_rows(labels, [weights, *weighted], k)
    return table[:, 0], table[:, 1:]


def _bincount_rows(labels: np.ndarray, columns: list[np.ndarray], k: int) -> np.ndarray:
    """(k, len(columns)): each column summed by label, in one bincount over
    (label, column) entries; each entry adds its points in point order, as
    a bincount per column would, so the sums are the same."""
    if len(labels) > ONE_BINCOUNT_POINTS:
        return np.stack([np.bincount(labels, column, minlength=k) for column in columns], axis=1)
    return _stacked_sums(labels, np.column_stack(columns).ravel(), len(columns), k)


def _stacked_sums(labels: np.ndarray, values: np.ndarray, width: int, k: int) -> np.ndarray:
    """_bincount_rows of the columns stacked row by row ((n, width) raveled)."""
    entries = (labels[:, None] * width + np.arange(width)).ravel()
    return np.bincount(entries, values, minlength=k * width).reshape(k, width)


def shifted_sums(base, labels: np.ndarray, weights: np.ndarray, weighted: list[np.ndarray]):
    """cluster_sums(labels, ...) from those of `base` (its labels, totals and
    sums), moving only the points whose label changed: late passes change
    few. Weights are integers and points multiples of 1/1024, so every sum
    is exact far below 2**53 in any order: the same values as cluster_sums."""
    base_labels, totals, sums = base
    changed = np.flatnonzero(labels != base_labels)
    k = len(totals)
    if 2 * changed.size > len(labels):
        return cluster_sums(labels, weights, weighted, k)
    columns = [weights[changed], *(w[changed] for w in weighted)]
    moved = _bincount_rows(labels[changed], columns, k) - _bincount_rows(base_labels[changed], columns, k)
    return totals + moved[:, 0], sums + moved[:, 1:]


def scatter(square_total: float, totals: np.ndarray, sums: np.ndarray) -> float:
    """Weighted squared error of the clusters about their means:
    sum w |x|^2 - sum |S_j|^2 / W_j."""
    filled = totals > 0
    return square_total - float(((sums[filled] ** 2).sum(axis=1) / totals[filled]).sum())


def error_about(square_total: float, centres, totals, sums) -> float:
    """Weighted squared error of clusters (weights and sums) about `centres`:
    sum w |x|^2 - 2 sum c_j . S_j + sum W_j |c_j|^2, from the sums the next
    pass needs anyway, instead of a gather over every point. bincount adds
    in a fixed order, so the value is the same on every run."""
    return square_total - float((centres * (2 * sums - totals[:, None] * centres)).sum())


def weighted_error(points, weights, centres, labels) -> float:
    offsets = points - centres[labels]
    return float((weights * (offsets * offsets).sum(axis=1)).sum())


def lloyd(
    search: NearestSearch, weights: np.ndarray, centres: np.ndarray, *,
    passes: int, tol: float, snap: Callable[[np.ndarray], np.ndarray], relaxation: float,
) -> tuple[Clustering, int]:
    """Weighted Lloyd from `centres` over search.points (the search gives each
    point's exactly nearest centre) until a pass lowers the error by at
    most tol of it, or after `passes` updates. Returns the Clustering
    (labels exactly nearest to its centres) and the passes it took.

    Each pass first tries an over-relaxed step (each centre moved `relaxation`
    times as far as toward its cluster's mean), kept only if its error is
    below the plain step's bound; near convergence Lloyd creeps in the
    same direction pass after pass, and this covers the ground in fewer
    passes. An emptied cluster is re-seeded at the point that costs the
    most (weight x squared distance), so K colours stay K useful colours.
    """
    k, channels = centres.shape
    points = search.points
    weighted = [weights * points[:, c] for c in range(channels)]
    square_total = float((weights * (points * points).sum(axis=1)).sum())
    if len(points) <= WHOLE_SUMS_POINTS:
        stacked = np.column_stack([weights, *weighted]).ravel()

        def sums_of(trial_labels, base):
            table = _stacked_sums(trial_labels, stacked, 1 + channels, k)
            return table[:, 0], table[:, 1:]
    else:
        def sums_of(trial_labels, base):
            if base is None:
                return cluster_sums(trial_labels, weights, weighted, k)
            return shifted_sums(base, trial_labels, weights, weighted)

    def settle(trial, base=None):
        trial_labels = search.nearest(trial)
        trial_totals, trial_sums = sums_of(trial_labels, base)
        trial_error = error_about(square_total, trial, trial_totals, trial_sums)
        return trial, trial_labels, trial_error, trial_totals, trial_sums

    centres, labels, error, totals, sums = settle(centres)
    used = 0
    while used < passes:
        used += 1
        work.done("pass")
        new, means, empty = _update(points, weights, centres, labels, (totals, sums), snap=snap)
        if np.array_equal(new, centres):
            break
        bound = scatter(square_total, totals, sums)
        step = None
        if relaxation > 1 and not empty.any():
            step = settle(np.clip(snap(centres + relaxation * (means - centres)), 0, 255), (labels, totals, sums))
            _, _, relaxed_error, _, _ = step
            if not relaxed_error < bound:
                step = None
        if step is None:
            step = settle(new, (labels, totals, sums))
        previous = error
        centres, labels, error, totals, sums = step
        if previous - error <= tol * error and not empty.any():
            break
    return Clustering(centres, labels, error), used


def _update(points, weights, centres, labels, cluster_moments, *, snap):
    """Lloyd's step from the clusters' (weights, sums): (new centres, the
    non-empty clusters' means, which clusters are empty); an emptied
    cluster is re-seeded at the point that costs the most (weight x
    squared distance)."""
    totals, sums = cluster_moments
    empty = totals == 0
    means = sums[~empty] / totals[~empty, None]
    new = centres.copy()
    new[~empty] = snap(means)
    if empty.any():
        distances = ((points - centres[labels]) ** 2).sum(axis=1)
        worst = np.argsort(-(weights * distances), kind="stable")[: int(empty.sum())]
        new[np.flatnonzero(empty)[: len(worst)]] = snap(points[worst])
    return new, means, empty


def plain_step(points, weights, centres, labels, snap) -> np.ndarray:
    """One plain Lloyd update from labels, without a search after it (an
    emptied cluster keeps its entry)."""
    k, channels = centres.shape
    totals, sums = cluster_sums(labels, weights, [weights * points[:, c] for c in range(channels)], k)
    return moved_to_means(centres, totals, sums, snap)


def moved_to_means(centres, totals, sums, snap=None) -> np.ndarray:
    """Each non-empty cluster's entry at its mean (through snap, if given);
    an empty cluster keeps its entry."""
    new = centres.copy()
    filled = totals > 0
    means = sums[filled] / totals[filled, None]
    new[filled] = means if snap is None else snap(means)
    return new
