"""Swap moves between Lloyd runs: Lloyd only finds the local optimum nearest
its start, and there some codebook entries still earn far less than one
more entry would earn in a wide cluster. Moving those entries there and
settling again reaches better optima than restarts from scratch, for less
time (on Kodak at K=64: +0.05 dB, where best-of-ten k-means++ wins)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .init import best_cuts, boxed_keys, level_keys, moments
from .keys import squared_norms
from .lloyd import Clustering, NearestSearch, cluster_sums, lloyd, moved_to_means
from .nearest import CHUNK_ENTRIES
from .schedule import Schedule


@dataclass(frozen=True)
class SwapRounds:
    """Rounds of swap moves: up to `rounds`, each of up to share x K swaps
    settled by `passes` Lloyd passes to `tol`; `reach` > 0 focuses the
    measures (focused_swapped)."""

    rounds: int
    share: float
    passes: int
    tol: float
    reach: int = 0


def swap_rounds(
    search: NearestSearch, weights, state: Clustering, rounds: SwapRounds, plan: Schedule, *, snap
) -> tuple[Clustering, int]:
    """The clustering after `rounds` (each kept only if it lowers the
    error; a round that does not pay is tried again with half as many
    swaps), and the Lloyd passes used."""
    most, used = max(1, int(len(state.centres) * rounds.share)), 0
    for _ in range(rounds.rounds if rounds.passes > 0 else 0):
        if rounds.reach:
            trial, count = focused_swapped(
                search.points, weights, state, snap, most=most, reach=rounds.reach, promise=plan.promise,
                measure=cut_measure(plan),
            )
        else:
            trial, count = swapped(
                search.points, weights, state, snap, most=most, promise=plan.promise, measure=cut_measure(plan)
            )
        if count == 0:
            break
        settled, passes = lloyd(
            search, weights, trial, passes=rounds.passes, tol=rounds.tol, snap=snap, relaxation=plan.relaxation
        )
        used += passes
        if settled.error < state.error:
            state = settled
        elif count == 1:
            break
        else:
            most = count // 2
    return state, used


def tried_swaps(
    search: NearestSearch, weights, state: Clustering, plan: Schedule, *, max_passes: int, tol: float, snap
) -> tuple[Clustering, int]:
    """The clustering after up to plan.trial_rounds rounds of single swaps
    tried one at a time: the plan.trial_entries = (cheap, rich) entries that
    cost least to remove, each moved into each of the clusters whose cut
    gains most, every trial settled by Lloyd (to trial_tol_factor x tol,
    in at most trial_passes and `max_passes` passes); the best trial is
    kept if it lowers the error, else the trials stop. A pair of entries
    is tried once: one that did not pay seldom pays a round later (on Kodak
    at K=16 skipping them saves a sixth of the time). Also the passes used.

    For small K: there the estimates before settling mislead (a good swap
    first raises the error, and its cut gains far less than the removal
    costs, so swapped() proposes none), and trying each pair costs little."""
    cheap_count, rich_count = plan.trial_entries
    used, tried = 0, set()
    passes, tol = min(plan.trial_passes, max_passes), tol * plan.trial_tol_factor
    for _ in range(plan.trial_rounds if passes > 0 else 0):
        costs = removal_costs(search.points, weights, state)
        gains, lower_means, upper_means = cut_measure(plan)(search.points, weights, state.labels, len(state.centres))
        cheap = np.argsort(costs, kind="stable")[:cheap_count]
        best = None
        for rich in np.argsort(-gains, kind="stable")[:rich_count]:
            for poor in cheap[(cheap != rich) & (gains[rich] > 0)]:
                if (poor, rich) in tried:
                    continue
                tried.add((poor, rich))
                trial = state.centres.copy()
                trial[rich], trial[poor] = lower_means[rich], upper_means[rich]
                settled, settling = lloyd(
                    search, weights, snap(trial), passes=passes, tol=tol, snap=snap, relaxation=plan.relaxation
                )
                used += settling
                if settled.error < (state.error if best is None else best.error):
                    best = settled
        if best is None:
            break
        state = best
    return state, used


def removal_costs(points, weights, state: Clustering) -> np.ndarray:
    """What removing each entry alone would add to the weighted squared
    error: its points' squared distance to their second nearest entry less
    that to their own (exact on the grid; sums by bincount)."""
    centres, labels = state.centres, state.labels
    k = len(centres)
    scaled = -2.0 * centres
    centre_norms = (centres * centres).sum(axis=1)[:, None]
    extra = np.empty(len(points))
    step = max(1, CHUNK_ENTRIES // k)
    for start in range(0, len(points), step):
        block = points[start : start + step]
        # (K, n): a minimum down columns is fast in numpy (see nearest_two).
        distances = scaled @ block.T
        distances += centre_norms
        span = np.arange(len(block))
        own = labels[start : start + step]
        nearest = distances[own, span]
        distances[own, span] = np.inf
        extra[start : start + step] = distances.min(axis=0) - nearest
    return np.bincount(labels, weights * extra, minlength=k)


def cut_measure(plan: Schedule):
    """How swaps measure each cluster's cut: through its mean, or at the
    best level of its best axis (plan.level_cuts)."""
    return level_cuts if plan.level_cuts else mean_cuts


def level_cuts(points, weights, labels, k):
    """mean_cuts at the best level of each cluster's best axis, as the
    variance split cuts a box (init.best_cuts): what the cut would remove
    from the error, and the means of its two sides (-inf: no cut)."""
    channels = points.shape[1]
    point_moments = moments(points, weights)
    totals = np.stack([np.bincount(labels, m, minlength=k) for m in point_moments.T], axis=1)
    held = totals[:, 0] > 0
    slots = (np.cumsum(held) - 1)[labels]
    keys = boxed_keys(level_keys(np.clip(points, 0, 255).astype(np.intp)), slots)
    lower, cut = np.zeros_like(totals), np.full(k, -1)
    if held.any():
        _, cut[held], lower[held] = best_cuts(keys, np.ascontiguousarray(point_moments.T), slots, totals[held])
    upper = totals - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        def spread(m):
            return (m[:, 1 : 1 + channels] ** 2).sum(axis=1) / m[:, 0]

        gains = spread(lower) + spread(upper) - spread(totals)
        lower_means = lower[:, 1 : 1 + channels] / lower[:, :1]
        upper_means = upper[:, 1 : 1 + channels] / upper[:, :1]
    gains[(cut < 0) | ~np.isfinite(gains)] = -np.inf
    return gains, lower_means, upper_means


def mean_cuts(points, weights, labels, k):
    """Each cluster's best cut through its mean across one axis: what it
    would remove from the error, and the means of its two sides (gain
    -inf where no axis leaves points on both sides). Through the mean,
    not at the best level of the axis (the variance split's cut): a third
    of the time (32x32 images at K=16, ~1000 colours: 90-170 us against
    250-540), no table of levels, and Lloyd settles the swap anyway (all
    24 Kodak crops and 64 icons at 32x32-128x128, K=16: 0.88-0.91x the
    k-means time at -0.004..+0.009 dB; full Kodak K=16 / 256 -0.004 /
    -0.002 dB, skimage -0.001 / -0.000)."""
    channels = points.shape[1]
    weighted = [weights * points[:, c] for c in range(channels)]
    totals, sums = cluster_sums(labels, weights, weighted, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums / totals[:, None]
    # Each (point, axis) on the low side of its cluster's mean, as one
    # (cluster, axis) entry: the low sides' sums by bincount.
    rows, axes = np.nonzero(points <= means[labels])
    entries = labels[rows] * channels + axes
    lower_totals = np.bincount(entries, weights[rows], minlength=k * channels).reshape(k, channels)
    lower_sums = np.array(
        [np.bincount(entries, column[rows], minlength=k * channels) for column in weighted]
    ).reshape(channels, k, channels)  # (coordinate, cluster, axis)
    upper_totals = totals[:, None] - lower_totals
    upper_sums = sums.T[:, :, None] - lower_sums
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = ((lower_sums**2).sum(axis=0) / lower_totals + (upper_sums**2).sum(axis=0) / upper_totals
                 - ((sums**2).sum(axis=1) / totals)[:, None])
    gains[~((lower_totals > 0) & (upper_totals > 0))] = -np.inf
    axis = np.argmax(gains, axis=1)
    span = np.arange(k)
    best = gains[span, axis]
    with np.errstate(divide="ignore", invalid="ignore"):
        lower_means = lower_sums[:, span, axis].T / lower_totals[span, axis][:, None]
        upper_means = upper_sums[:, span, axis].T / upper_totals[span, axis][:, None]
    best[~np.isfinite(best)] = -np.inf
    return best, lower_means, upper_means


def swapped(points, weights, state: Clustering, snap, *, most: int, promise: float, measure=mean_cuts):
    """(centres, swaps made) after up to `most` swaps: the entries that cost
    least to remove move to one side of the clusters whose cut gains most,
    each such cluster's entry to the other side; each entry in one swap at
    most, and only while the gain beats `promise` x the cost (cuts as
    `measure` gives them: see cut_measure)."""
    costs = removal_costs(points, weights, state)
    cuts = measure(points, weights, state.labels, len(state.centres))
    return _paired(state.centres, costs, cuts, snap, most=most, promise=promise)


def focused_swapped(
    points, weights, state: Clustering, snap, *, most: int, reach: int, promise: float, measure=mean_cuts
):
    """swapped() measuring only where the choice is made: exact removal
    costs of the reach x most entries with the least merge bound (see
    _merge_bounds), cut gains of the reach x most clusters with the most
    error; the others stay out. At K=256 on the exact colours this costs a
    fraction of the full measures, which cost several Lloyd passes."""
    centres, labels = state.centres, state.labels
    k = len(centres)
    totals, sums = cluster_sums(labels, weights, [weights * points[:, c] for c in range(points.shape[1])], k)
    squares = np.bincount(labels, weights * squared_norms(points), minlength=k)
    filled = totals > 0
    errors = np.zeros(k)
    errors[filled] = squares[filled] - (sums[filled] ** 2).sum(axis=1) / totals[filled]
    count = min(k, reach * most)
    cheap = np.zeros(k, dtype=bool)
    cheap[np.argsort(_merge_bounds(centres, totals, sums), kind="stable")[:count]] = True
    rich = np.zeros(k, dtype=bool)
    rich[np.argsort(-errors, kind="stable")[:count]] = True
    costs = np.full(k, np.inf)
    inside = cheap[labels]
    part = Clustering(centres, labels[inside], state.error)
    costs[cheap] = removal_costs(points[inside], weights[inside], part)[cheap]
    inside = rich[labels]
    cuts = measure(points[inside], weights[inside], labels[inside], k)
    return _paired(centres, costs, cuts, snap, most=most, promise=promise)


def _merge_bounds(centres, totals, sums) -> np.ndarray:
    """An upper bound on each removal cost from K x K terms: what moving a
    whole cluster (weight W, mean m) to the best other entry c' would add,
    W |m - c'|^2 - W |m - c|^2."""
    k = len(centres)
    means = moved_to_means(centres, totals, sums)
    to_entries = np.zeros((k, k))
    for channel in range(centres.shape[1]):
        offsets = np.subtract.outer(means[:, channel], centres[:, channel])
        offsets *= offsets
        to_entries += offsets
    own = to_entries.diagonal().copy()
    np.fill_diagonal(to_entries, np.inf)
    return totals * (to_entries.min(axis=1) - own)


def _paired(centres, costs, cuts, snap, *, most: int, promise: float):
    """The swaps of swapped() from its measures (cuts: as cut_measure's)."""
    gains, lower_means, upper_means = cuts
    k = len(centres)
    cheap = iter(np.argsort(costs, kind="stable"))
    used = np.zeros(k, dtype=bool)
    new, count = centres.copy(), 0
    for rich in np.argsort(-gains, kind="stable")[:k]:
        if count >= most or not gains[rich] > 0:
            break
        if used[rich]:
            continue
        poor = next((c for c in cheap if not used[c] and c != rich), None)
        if poor is None or not gains[rich] > promise * costs[poor]:
            break
        used[poor] = used[rich] = True
        new[rich], new[poor] = lower_means[rich], upper_means[rich]
        count += 1
    return snap(new), count
