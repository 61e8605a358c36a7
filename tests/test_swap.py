"""Swap moves: the removal cost by its definition, a swap that moves an idle
entry to where a cluster needs two, and rounds and searches that never raise
the error."""

from __future__ import annotations

import numpy as np

from pil_kmq.quantize.bins import snap_to_grid
from pil_kmq.quantize.lloyd import weighted_error
from pil_kmq.quantize.nearest import BoundedSearch
from pil_kmq.quantize.swap import focused_swapped, removal_costs, swap_rounds, swap_search, swapped


def blobs():
    """Points in three tight blobs (weights 1), two blobs far apart."""
    rng = np.random.default_rng(3)
    centres = np.array([[20.0, 20, 20], [220, 220, 220], [220, 20, 20]])
    points = np.concatenate([np.rint(c + rng.normal(0, 3, (200, 3))) for c in centres])
    return np.clip(points, 0, 255), np.ones(600)


def test_removal_costs_match_their_definition():
    points, weights = blobs()
    rng = np.random.default_rng(4)
    centres = snap_to_grid(points[rng.choice(len(points), 7, replace=False)] + 0.3)
    distances = ((points[:, None] - centres[None]) ** 2).sum(axis=2)
    labels = distances.argmin(axis=1)
    expected = np.zeros(7)
    for j in range(7):
        mine = labels == j
        without = np.delete(distances[mine], j, axis=1).min(axis=1)
        expected[j] = (weights[mine] * (without - distances[mine, j])).sum()
    np.testing.assert_allclose(removal_costs(points, weights, centres, labels), expected, rtol=1e-12)


def test_an_idle_entry_moves_to_the_cluster_that_needs_it():
    """Two entries share the first blob, one covers both far blobs: a swap
    gives each blob its own entry."""
    points, weights = blobs()
    centres = snap_to_grid(np.array([[19.0, 20, 20], [21.0, 20, 20], [220, 120, 120]]))
    labels = ((points[:, None] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    new, count = swapped(points, weights, centres, labels, snap_to_grid, most=1)
    assert count == 1
    search = BoundedSearch(points)
    before = weighted_error(points, weights, centres, labels)
    settled, settled_labels, error, _ = swap_rounds(
        search, weights, centres, labels, before, 3, 0.5, 3, 0.0, snap_to_grid
    )
    assert error < 0.1 * before
    assert sorted(np.rint(settled[:, 0] / 100).astype(int)) == [0, 2, 2]
    np.testing.assert_array_equal(
        settled_labels, ((points[:, None] - settled[None]) ** 2).sum(axis=2).argmin(axis=1)
    )


def random_start(seed: int, k: int):
    """A cloud of weighted colours, k entries on some of them, their labels
    and error."""
    rng = np.random.default_rng(seed)
    points = np.rint(rng.normal(128, 40, (3000, 3)).clip(0, 255))
    weights = rng.integers(1, 20, 3000).astype(float)
    centres = snap_to_grid(points[:k] + 0.5)
    labels = ((points[:, None] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    return points, weights, centres, labels, weighted_error(points, weights, centres, labels)


def test_rounds_never_raise_the_error():
    points, weights, centres, labels, error = random_start(5, 24)
    for rounds in (1, 4):
        _, _, after, used = swap_rounds(
            BoundedSearch(points), weights, centres, labels, error, rounds, 0.2, 2, 0.0, snap_to_grid
        )
        assert after <= error and used <= 2 * rounds


def test_focused_swaps_are_the_full_ones_when_they_see_every_entry():
    """With reach x most >= K every entry is measured: the same swaps as
    swapped(); with less, still a swap of the idle entry in the blobs."""
    points, weights, centres, labels, _ = random_start(7, 24)
    for most in (1, 3):
        full = swapped(points, weights, centres, labels, snap_to_grid, most)
        focused = focused_swapped(points, weights, centres, labels, snap_to_grid, most, 24)
        np.testing.assert_array_equal(focused[0], full[0])
        assert focused[1] == full[1] > 0
    points, weights = blobs()
    centres = snap_to_grid(np.array([[19.0, 20, 20], [21.0, 20, 20], [220, 120, 120]]))
    labels = ((points[:, None] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    new, count = focused_swapped(points, weights, centres, labels, snap_to_grid, 1, 1)
    assert count == 1 and sorted(np.rint(new[:, 0] / 100).astype(int)) == [0, 2, 2]


def test_a_search_moves_an_idle_entry_to_the_cluster_that_needs_it():
    """Two entries share the first blob, one covers both far blobs: a swap
    gives each blob its own entry; the search finds it by trying it."""
    points, weights = blobs()
    centres = snap_to_grid(np.array([[19.0, 20, 20], [21.0, 20, 20], [220, 120, 120]]))
    labels = ((points[:, None] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    before = weighted_error(points, weights, centres, labels)
    settled, settled_labels, error, used = swap_search(
        BoundedSearch(points), weights, centres, labels, before, 5, 0.0, snap_to_grid, (2, 2), 3
    )
    assert error < 0.1 * before and 0 < used
    assert sorted(np.rint(settled[:, 0] / 100).astype(int)) == [0, 2, 2]
    np.testing.assert_array_equal(
        settled_labels, ((points[:, None] - settled[None]) ** 2).sum(axis=2).argmin(axis=1)
    )
    assert error == weighted_error(points, weights, settled, settled_labels)


def test_searches_never_raise_the_error_and_stop_without_passes():
    points, weights, centres, labels, error = random_start(6, 12)
    _, _, after, _ = swap_search(BoundedSearch(points), weights, centres, labels, error, 4, 0.0, snap_to_grid)
    assert after < error
    unchanged = swap_search(BoundedSearch(points), weights, centres, labels, error, 0, 0.0, snap_to_grid)
    assert unchanged[2] == error and unchanged[3] == 0
