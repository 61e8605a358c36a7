"""Lloyd's iterations on weighted points, stopped by the relative change of
the weighted squared error: passes end when they stop paying, not at a
fixed count (which stops short of convergence on some images and wastes
passes on others)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from . import work
from .keys import squared_norms

# Up to this many points Lloyd sums every cluster from scratch (a bincount
# per column) rather than moving the points whose label changed (time
# only: every sum is exact, so the values are the same).
WHOLE_SUMS_POINTS = 1 << 12


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
    point order, so the sums are the same on every run and machine. A
    bincount per (contiguous) column: half the time of one bincount over
    (label, column) entries, which must first be made (1000 colours:
    10 us against 23, at any K)."""
    totals = np.bincount(labels, weights, minlength=k)
    return totals, np.array([np.bincount(labels, column, minlength=k) for column in weighted]).T


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
    now, was = labels[changed], base_labels[changed]
    moved = [np.bincount(now, column, minlength=k) - np.bincount(was, column, minlength=k) for column in columns]
    return totals + moved[0], sums + np.array(moved[1:]).T


def scatter(square_total: float, totals: np.ndarray, sums: np.ndarray) -> float:
    """Weighted squared error of the clusters about their means:
    sum w |x|^2 - sum |S_j|^2 / W_j."""
    filled = totals > 0
    if filled.all():  # the same sum, without the gathers
        return square_total - float(((sums**2).sum(axis=1) / totals).sum())
    return square_total - float(((sums[filled] ** 2).sum(axis=1) / totals[filled]).sum())


def error_about(square_total: float, centres, totals, sums) -> float:
    """Weighted squared error of clusters (weights and sums) about `centres`:
    sum w |x|^2 - 2 sum c_j . S_j + sum W_j |c_j|^2, from the sums the next
    pass needs anyway, instead of a gather over every point. bincount adds
    in a fixed order, so the value is the same on every run."""
    return square_total - float((centres * (2 * sums - totals[:, None] * centres)).sum())


def weighted_error(points, weights, centres, labels) -> float:
    return float((weights * squared_norms(points - centres[labels])).sum())


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
    square_total = float((weights * squared_norms(points)).sum())
    def sums_of(trial_labels, base):
        if base is None or len(points) <= WHOLE_SUMS_POINTS:
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
        new, means, emptied = _update(points, weights, centres, labels, (totals, sums), snap=snap)
        if np.array_equal(new, centres):
            break
        step = None
        if relaxation > 1 and not emptied:
            step = settle(np.clip(snap(centres + relaxation * (means - centres)), 0, 255), (labels, totals, sums))
            _, _, relaxed_error, _, _ = step
            if not relaxed_error < scatter(square_total, totals, sums):
                step = None
        if step is None:
            step = settle(new, (labels, totals, sums))
        previous = error
        centres, labels, error, totals, sums = step
        if previous - error <= tol * error and not emptied:
            break
    return Clustering(centres, labels, error), used


def _update(points, weights, centres, labels, cluster_moments, *, snap):
    """Lloyd's step from the clusters' (weights, sums): (new centres, the
    non-empty clusters' means, whether a cluster was empty); an emptied
    cluster is re-seeded at the point that costs the most (weight x
    squared distance). Without one (nearly always) no masks: small sets
    pay per numpy call."""
    totals, sums = cluster_moments
    empty = totals == 0
    if not empty.any():
        means = sums / totals[:, None]
        return snap(means), means, False
    means = sums[~empty] / totals[~empty, None]
    new = centres.copy()
    new[~empty] = snap(means)
    distances = squared_norms(points - centres[labels])
    worst = np.argsort(-(weights * distances), kind="stable")[: int(empty.sum())]
    new[np.flatnonzero(empty)[: len(worst)]] = snap(points[worst])
    return new, means, True


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
