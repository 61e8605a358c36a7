"""Swap moves: the removal cost by its definition, a swap that moves an idle
entry to where a cluster needs two, and rounds and searches that never raise
the error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pil_kmq.quantize.bins import snap_to_grid
from pil_kmq.quantize.lloyd import Clustering, weighted_error
from pil_kmq.quantize.nearest import BoundedSearch, ExactSearch
from pil_kmq.quantize.schedule import schedule
from pil_kmq.quantize.swap import (
    SwapRounds, cut_measure, focused_swapped, level_cuts, mean_cuts, removal_costs, swap_rounds, tried_swaps,
    swapped,
)

PLAN = schedule(1, 16, 100_000, 1_000_000, 3)


def blobs():
    """Points in three tight blobs (weights 1), two blobs far apart."""
    rng = np.random.default_rng(3)
    centres = np.array([[20.0, 20, 20], [220, 220, 220], [220, 20, 20]])
    points = np.concatenate([np.rint(c + rng.normal(0, 3, (200, 3))) for c in centres])
    return np.clip(points, 0, 255), np.ones(600)


def clustering(points, weights, centres) -> Clustering:
    labels = ExactSearch(points).nearest(centres)
    return Clustering(centres, labels, weighted_error(points, weights, centres, labels))


def idle_entry_start():
    """Two entries share the first blob, one covers both far blobs."""
    points, weights = blobs()
    centres = snap_to_grid(np.array([[19.0, 20, 20], [21.0, 20, 20], [220, 120, 120]]))
    return points, weights, clustering(points, weights, centres)


def assert_settled(points, weights, state: Clustering):
    """Labels exactly nearest to the centres, and the error theirs."""
    np.testing.assert_array_equal(state.labels, ExactSearch(points).nearest(state.centres))
    assert state.error == weighted_error(points, weights, state.centres, state.labels)


def test_removal_costs_match_their_definition():
    points, weights = blobs()
    rng = np.random.default_rng(4)
    state = clustering(points, weights, snap_to_grid(points[rng.choice(len(points), 7, replace=False)] + 0.3))
    distances = ((points[:, None] - state.centres[None]) ** 2).sum(axis=2)
    expected = np.zeros(7)
    for j in range(7):
        mine = state.labels == j
        without = np.delete(distances[mine], j, axis=1).min(axis=1)
        expected[j] = (weights[mine] * (without - distances[mine, j])).sum()
    np.testing.assert_allclose(removal_costs(points, weights, state), expected, rtol=1e-12)


def _scatter(points, weights):
    if weights.sum() == 0:
        return 0.0
    mean = (weights[:, None] * points).sum(axis=0) / weights.sum()
    return float((weights * ((points - mean) ** 2).sum(axis=1)).sum())


def test_mean_cuts_match_their_definition():
    """Each cluster's gain is the most, over the axes, that cutting it
    through its mean removes from its error (each side about its own
    mean), with those sides' means; -inf where no axis has two sides."""
    rng = np.random.default_rng(5)
    points = np.rint(rng.uniform(0, 255, (400, 4)) * 1024) / 1024
    points[:40] = [7.0, 7, 7, 7]  # cluster 0: one colour, no cut
    weights = rng.integers(1, 50, 400).astype(float)
    labels = np.concatenate([np.zeros(40, np.intp), rng.integers(1, 9, 360)])  # cluster 9 empty
    gains, lower_means, upper_means = mean_cuts(points, weights, labels, 10)
    assert gains[0] == -np.inf and gains[9] == -np.inf
    for cluster in range(1, 9):
        inside, w = points[labels == cluster], weights[labels == cluster]
        mean = (w[:, None] * inside).sum(axis=0) / w.sum()
        cuts = []
        for axis in range(4):
            low = inside[:, axis] <= mean[axis]
            gain = _scatter(inside, w) - _scatter(inside[low], w[low]) - _scatter(inside[~low], w[~low])
            cuts.append((gain, low))
        gain, low = max(cuts, key=lambda cut: cut[0])
        assert gains[cluster] == pytest.approx(gain, rel=1e-9)
        np.testing.assert_allclose(lower_means[cluster], (w[low, None] * inside[low]).sum(axis=0) / w[low].sum())
        np.testing.assert_allclose(upper_means[cluster], (w[~low, None] * inside[~low]).sum(axis=0) / w[~low].sum())


def test_level_cuts_match_their_definition():
    """Each cluster's gain is the most any cut at a level of one axis
    (points at or below the level on one side; levels of points on the
    1/1024 grid are their integer parts) removes from its error, with those
    sides' means; -inf for a one-colour cluster and an empty one."""
    rng = np.random.default_rng(6)
    points = np.rint(rng.uniform(0, 40, (300, 3)) * 1024) / 1024
    points[:30] = [7.0, 7, 7]  # cluster 0: one colour, no cut
    weights = rng.integers(1, 50, 300).astype(float)
    labels = np.concatenate([np.zeros(30, np.intp), rng.integers(1, 6, 270)])  # cluster 6 empty
    gains, lower_means, upper_means = level_cuts(points, weights, labels, 7)
    assert gains[0] == -np.inf and gains[6] == -np.inf
    levels = np.floor(points)
    for cluster in range(1, 6):
        members = labels == cluster
        inside, w, at = points[members], weights[members], levels[members]
        best = max(
            ((_scatter(inside, w) - _scatter(inside[low], w[low]) - _scatter(inside[~low], w[~low]), low)
             for axis in range(3) for level in np.unique(at[:, axis])[:-1]
             for low in [at[:, axis] <= level]),
            key=lambda cut: cut[0],
        )
        gain, low = best
        assert gains[cluster] == pytest.approx(gain, rel=1e-9)
        np.testing.assert_allclose(lower_means[cluster], (w[low, None] * inside[low]).sum(axis=0) / w[low].sum())
        np.testing.assert_allclose(upper_means[cluster], (w[~low, None] * inside[~low]).sum(axis=0) / w[~low].sum())


def test_speed_1_measures_cuts_at_levels_faster_speeds_through_means():
    assert cut_measure(schedule(1, 16, 100_000, 1_000_000, 3)) is level_cuts
    for speed in (2, 4, 10):
        assert cut_measure(schedule(speed, 16, 100_000, 1_000_000, 3)) is mean_cuts


def test_an_idle_entry_moves_to_the_cluster_that_needs_it():
    points, weights, state = idle_entry_start()
    new, count = swapped(points, weights, state, snap_to_grid, most=1, promise=PLAN.promise)
    assert count == 1
    settled, _ = swap_rounds(BoundedSearch(points), weights, state, SwapRounds(3, 0.5, 3, 0.0), PLAN, snap=snap_to_grid)
    assert settled.error < 0.1 * state.error
    assert sorted(np.rint(settled.centres[:, 0] / 100).astype(int)) == [0, 2, 2]
    assert_settled(points, weights, settled)


def random_start(seed: int, k: int):
    """A cloud of weighted colours, k entries on some of them."""
    rng = np.random.default_rng(seed)
    points = np.rint(rng.normal(128, 40, (3000, 3)).clip(0, 255))
    weights = rng.integers(1, 20, 3000).astype(float)
    return points, weights, clustering(points, weights, snap_to_grid(points[:k] + 0.5))


def test_rounds_never_raise_the_error():
    points, weights, state = random_start(5, 24)
    for rounds in (1, 4):
        after, used = swap_rounds(
            BoundedSearch(points), weights, state, SwapRounds(rounds, 0.2, 2, 0.0), PLAN, snap=snap_to_grid
        )
        assert after.error <= state.error and used <= 2 * rounds
        assert_settled(points, weights, after)


def test_focused_swaps_are_the_full_ones_when_they_see_every_entry():
    """With reach x most >= K every entry is measured: the same swaps as
    swapped(); with less, still a swap of the idle entry in the blobs."""
    points, weights, state = random_start(7, 24)
    for most in (1, 3):
        full = swapped(points, weights, state, snap_to_grid, most=most, promise=PLAN.promise)
        focused = focused_swapped(points, weights, state, snap_to_grid, most=most, reach=24, promise=PLAN.promise)
        np.testing.assert_array_equal(focused[0], full[0])
        assert focused[1] == full[1] > 0
    points, weights, state = idle_entry_start()
    new, count = focused_swapped(points, weights, state, snap_to_grid, most=1, reach=1, promise=PLAN.promise)
    assert count == 1 and sorted(np.rint(new[:, 0] / 100).astype(int)) == [0, 2, 2]


def test_a_search_moves_an_idle_entry_to_the_cluster_that_needs_it():
    """The search finds the swap that gives each blob its own entry by
    trying it."""
    points, weights, state = idle_entry_start()
    plan = dataclasses.replace(PLAN, trial_entries=(2, 2), trial_rounds=3)
    settled, used = tried_swaps(BoundedSearch(points), weights, state, plan, max_passes=5, tol=0.0, snap=snap_to_grid)
    assert settled.error < 0.1 * state.error and 0 < used
    assert sorted(np.rint(settled.centres[:, 0] / 100).astype(int)) == [0, 2, 2]
    assert_settled(points, weights, settled)


def test_searches_never_raise_the_error_and_stop_without_passes():
    points, weights, state = random_start(6, 12)
    after, _ = tried_swaps(BoundedSearch(points), weights, state, PLAN, max_passes=4, tol=0.0, snap=snap_to_grid)
    assert after.error < state.error
    unchanged, used = tried_swaps(BoundedSearch(points), weights, state, PLAN, max_passes=0, tol=0.0, snap=snap_to_grid)
    assert unchanged is state and used == 0
