"""The k-means stages: exact labels, the pass bound, the error-based stop,
bins, starts, and the same bytes at any BLAS thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pil_kmq.quantize import bins as bins_module
from pil_kmq.quantize import kmeans as kmeans_module
from pil_kmq.quantize import refine as refine_module
from pil_kmq.quantize.histogram import histogram
from pil_kmq.quantize.init import kmeans_plus_plus, variance_split_start
from pil_kmq.quantize.bins import bin_index, bin_means, finer_bins
from pil_kmq.quantize.cells import LateSearch
from pil_kmq.quantize.kmeans import kmeans
from pil_kmq.quantize.lloyd import lloyd, weighted_error
from pil_kmq.quantize.nearest import BoundedSearch, nearest


def photo_like_colors(seed: int = 0, size: int = 120):
    """Histogram of a smooth noisy image with several thousand colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    planes = [128 + 100 * np.sin(x / (9 + 4 * c) + y / (13 + c) + c) + rng.normal(0, 8, x.shape) for c in range(3)]
    image = np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)
    return histogram(image.reshape(-1, 3))


def total_error(colors, counts, codebook, labels) -> float:
    return weighted_error(colors.astype(float), counts.astype(float), codebook.astype(float), labels)


@pytest.mark.parametrize("k", [2, 16, 256])
def test_labels_are_exactly_nearest_to_the_codebook(k):
    colors, counts = photo_like_colors(k)
    codebook, labels = kmeans(colors, counts, k)
    assert codebook.dtype == np.uint8 and labels.dtype == np.uint8 and len(codebook) == k
    np.testing.assert_array_equal(labels, nearest(colors, codebook))


def test_narrow_colour_range_with_few_wide_bins():
    rng = np.random.default_rng(11)
    colors, counts = histogram(rng.integers(100, 132, (20000, 3), dtype=np.uint8))
    codebook, labels = kmeans(colors, counts, 64)
    np.testing.assert_array_equal(labels, nearest(colors, codebook))


def test_max_iter_zero_is_the_rounded_split():
    colors, counts = photo_like_colors(8)
    codebook, labels = kmeans(colors, counts, 16, max_iter=0)
    split = variance_split_start(*bin_means(colors, counts, 6), 16)
    np.testing.assert_array_equal(codebook, np.clip(np.rint(np.rint(split * 1024) / 1024), 0, 255))
    np.testing.assert_array_equal(labels, nearest(colors, codebook))


def test_exact_assignment_across_slices(monkeypatch):
    colors, counts = photo_like_colors(3)
    monkeypatch.setattr(refine_module, "EXACT_SLICE", 1000)
    monkeypatch.setattr(kmeans_module, "EXACT_MAX_COLOURS", ((1 << 30, 1000),))
    codebook, labels = kmeans(colors, counts, 32)
    np.testing.assert_array_equal(labels, nearest(colors, codebook))


def test_more_passes_never_raise_the_error():
    colors, counts = photo_like_colors(1)
    errors = [total_error(colors, counts, *kmeans(colors, counts, 16, max_iter=n)) for n in (0, 2, 300)]
    assert errors[0] > errors[1] > errors[2]


def test_lloyd_honours_max_passes_and_tol():
    colors, counts = photo_like_colors(2)
    points, weights = colors.astype(float), counts.astype(float)
    start = np.rint(variance_split_start(points, weights, 16) * 1024) / 1024
    snap = lambda c: np.rint(c * 1024) / 1024  # noqa: E731
    runs = {}
    for passes, tol in ((1, 0.0), (3, 0.0), (500, 1e-2), (500, 0.0)):
        centres, labels, used, error = lloyd(BoundedSearch(points), weights, start, passes, tol, snap)
        assert used <= passes
        runs[passes, tol] = (used, error)
    assert runs[1, 0.0][0] == 1 and runs[3, 0.0][0] == 3
    # A loose tol stops earlier, a zero tol runs to a fixed point and does better.
    assert runs[500, 1e-2][0] < runs[500, 0.0][0] < 500
    assert runs[500, 0.0][1] <= runs[500, 1e-2][1] <= runs[3, 0.0][1]


@pytest.mark.parametrize("late", [False, True])
@pytest.mark.parametrize("k", [16, 100, 256])
def test_bounded_search_stays_exact_as_centres_move(k, late):
    """Bounds and neighbour lists (K >= NEIGHBOUR_K) against brute force, with
    ties (points and centres on a coarse lattice, coincident centres), when
    all centres move, none, or only a few (far: the nearby-move bound);
    LateSearch starting from cells, as the late passes do."""
    rng = np.random.default_rng(k)
    points = (rng.integers(0, 32, (3000, 3)) * 8).astype(float)
    centres = points[rng.choice(len(points), k, replace=False)] + 0.0
    search = LateSearch(points, 5) if late else BoundedSearch(points)
    points = search.points
    for step, scale in enumerate((6.0, 2.0, 0.5, 0.0, 3.0, 0.25, 20.0, 1.0, 40.0, 0.0)):
        distances = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
        np.testing.assert_array_equal(search.nearest(centres), distances.argmin(axis=1))
        moved = centres + rng.normal(0, scale, centres.shape) * (step % 2)
        if step >= 6:
            few = rng.choice(k, 3, replace=False)
            moved = centres.copy()
            moved[few] += rng.normal(0, scale, (3, 3))
        centres = np.clip(np.rint(moved * 4) / 4, 0, 255)
        centres[:3] = centres[3:6]


def test_sorted_and_dense_bins_agree(monkeypatch):
    colors, counts = photo_like_colors(4)
    sorted_means, sorted_totals = bin_means(colors, counts, 7)
    monkeypatch.setattr(bins_module, "SORT_RATIO", 0)
    monkeypatch.setattr(bins_module, "SLICE", 777)
    dense_means, dense_totals = bin_means(colors, counts, 7)
    np.testing.assert_array_equal(sorted_means, dense_means)
    np.testing.assert_array_equal(sorted_totals, dense_totals)


@pytest.mark.parametrize("sort_ratio", [bins_module.SORT_RATIO, 0])
def test_finer_bins_nest_in_the_coarse_ones(monkeypatch, sort_ratio):
    monkeypatch.setattr(bins_module, "SORT_RATIO", sort_ratio)
    colors, counts = photo_like_colors(6)
    coarse = bin_index(colors, 6)
    (means, totals, parents), finer = finer_bins(colors, counts, 7, coarse)
    expected_means, expected_totals = bin_means(colors, counts, 7)
    np.testing.assert_array_equal(means, expected_means)
    np.testing.assert_array_equal(totals, expected_totals)
    np.testing.assert_array_equal(finer, bin_index(colors, 7))
    np.testing.assert_array_equal(parents[finer], coarse)


def smooth_colors():
    """Histogram of a smooth image with little noise: many colours, few bins."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:120, 0:120]
    planes = [128 + 40 * np.sin(x / (9 + 4 * c) + y / (13 + c) + c) + rng.normal(0, 3, x.shape) for c in range(3)]
    return histogram(np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8).reshape(-1, 3))


def test_smooth_images_also_start_on_finer_wide_bins(monkeypatch):
    """At K=64 a smooth image starts on wide bins and on bins one bit finer,
    and the start with the least coarse error goes on; not at K=16."""
    colors, counts = smooth_colors()
    levels, errors = [], []
    real_start, real_run = kmeans_module._wide_start, kmeans_module._coarse_run
    monkeypatch.setattr(kmeans_module, "_wide_start", lambda *a: levels.append(a[-1]) or real_start(*a))
    monkeypatch.setattr(
        kmeans_module, "_coarse_run", lambda *a: (lambda run: errors.append(run[1][3]) or run)(real_run(*a))
    )
    kmeans(colors, counts, 64)
    assert levels == [kmeans_module.WIDE_BITS, kmeans_module.WIDE_BITS + 1] and len(errors) == 2
    levels.clear()
    kmeans(colors, counts, 16)
    assert levels == [kmeans_module.WIDE_BITS]


def test_swaps_on_finer_bins_only_for_few_coarse_bins(monkeypatch):
    """At K=256 a smooth image's swaps run on the finer bins (and the fine
    stage starts from them); with the share at 0 they never do."""
    colors, counts = smooth_colors()
    levels = []
    real = kmeans_module.best_start
    monkeypatch.setattr(
        kmeans_module, "best_start", lambda *a: levels.append(a[-1]) or real(*a)
    )
    finer = kmeans(colors, counts, 256)
    monkeypatch.setattr(kmeans_module, "SWAP_FINER_SHARE", 0)
    coarse = kmeans(colors, counts, 256)
    assert levels[0] is not None and levels[1] is None
    assert not np.array_equal(finer[0], coarse[0])
    np.testing.assert_array_equal(finer[1], nearest(colors, finer[0]))


def test_bins_keep_the_weight_and_the_mean():
    colors, counts = photo_like_colors(5)
    means, totals = bin_means(colors, counts, 6)
    assert totals.sum() == counts.sum()
    overall = (colors * counts[:, None].astype(float)).sum(axis=0) / counts.sum()
    np.testing.assert_allclose((means * totals[:, None]).sum(axis=0) / totals.sum(), overall, atol=1e-3)


def test_kmeans_plus_plus_is_seeded():
    colors, counts = photo_like_colors(6)
    points, weights = colors.astype(float), counts.astype(float)
    first = kmeans_plus_plus(points, weights, 16, seed=1)
    np.testing.assert_array_equal(first, kmeans_plus_plus(points, weights, 16, seed=1))
    assert not np.array_equal(first, kmeans_plus_plus(points, weights, 16, seed=2))
    assert len({tuple(p) for p in first}) == 16


def test_same_codebook_at_any_blas_thread_count():
    code = (
        "import sys, numpy as np; sys.path.insert(0, 'tests');"
        "from test_kmeans import photo_like_colors; from pil_kmq.quantize.kmeans import kmeans;"
        "c, n = photo_like_colors(7); b, l = kmeans(c, n, 64);"
        "sys.stdout.write(b.tobytes().hex() + l.tobytes().hex())"
    )
    outputs = set()
    for threads in ("1", "2", "4"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.add(result.stdout)
    assert len(outputs) == 1


def test_search_from_bins_stays_exact():
    """A search over colours started from a search over their bins' means
    (as the fine passes start from the coarse ones) against brute force."""
    colors, counts = photo_like_colors(9)
    means, _ = bin_means(colors, counts, 6)
    bins = bin_index(colors, 6)
    # Each colour's row holds the mean of its own bin.
    np.testing.assert_array_equal(np.floor(means[bins]).astype(int) >> 2, colors.astype(int) >> 2)
    rng = np.random.default_rng(9)
    centres = np.rint(means[rng.choice(len(means), 120, replace=False)] * 4) / 4
    coarse = BoundedSearch(means)
    coarse.nearest(centres)
    centres[:5] += 1.5
    points = colors.astype(float)
    search = BoundedSearch.from_bins(points, bins, coarse, centres)
    for step in range(3):
        distances = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
        np.testing.assert_array_equal(search.nearest(centres), distances.argmin(axis=1))
        centres = np.clip(centres + np.rint(rng.normal(0, 1, centres.shape) * 4) / 4, 0, 255)


def test_keyed_searches_break_ties_to_the_lowest_index():
    """Keys pack a distance and a row into one float64: equal entries must
    give the lower row, and a tie for second place the same distance."""
    from pil_kmq.quantize.keys import BruteForceSearch

    rng = np.random.default_rng(5)
    points = rng.integers(0, 256, (3000, 3)).astype(float)
    centres = np.rint(rng.uniform(0, 255, (40, 3)) * 1024) / 1024
    centres[[7, 30]] = centres[3]  # three equal entries
    centres[12] = points[0]  # a distance of exactly 0
    for search in (BruteForceSearch(points), BoundedSearch(points)):
        labels = search.nearest(centres)
        offsets = points[:, None, :] - centres[None]
        distances = (offsets * offsets).sum(axis=2)
        np.testing.assert_array_equal(labels, distances.argmin(axis=1))
        assert labels[0] == 12 and not np.any(np.isin(labels, [7, 30]))
    ordered = np.sort(distances, axis=1)
    np.testing.assert_array_equal(search.upper, np.sqrt(ordered[:, 0]))
    np.testing.assert_array_equal(search.lower, np.sqrt(ordered[:, 1]))
