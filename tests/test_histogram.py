"""The histogram's sliced passes give what the one-shot numpy answers give,
across slice boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import FIXTURES
from PIL import Image

from pil_kmq.quantize import histogram as histogram_module
from pil_kmq.quantize.histogram import histogram, labels_for_pixels, pack_codes, unpack_codes


@pytest.fixture(params=[7, 1 << 20])
def slice_size(request, monkeypatch):
    monkeypatch.setattr(histogram_module, "SLICE", request.param)
    return request.param


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("levels", [2, 256])
def test_histogram_matches_numpy_unique(slice_size, channels, levels):
    rng = np.random.default_rng(channels * levels)
    pixels = (rng.integers(0, levels, (1000, channels)) * (255 // (levels - 1))).astype(np.uint8)
    colors, counts = histogram(pixels)
    expected, expected_counts = np.unique(pixels, axis=0, return_counts=True)
    np.testing.assert_array_equal(colors, expected)
    np.testing.assert_array_equal(counts, expected_counts)
    assert counts.dtype == np.uint32 and colors.dtype == np.uint8


def test_one_pixel_and_one_colour():
    colors, counts = histogram(np.full((1, 3), 9, np.uint8))
    assert colors.tolist() == [[9, 9, 9]] and counts.tolist() == [1]
    colors, counts = histogram(np.full((50, 3), 9, np.uint8))
    assert colors.tolist() == [[9, 9, 9]] and counts.tolist() == [50]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_codes_round_trip(channels):
    rng = np.random.default_rng(channels)
    colors = rng.integers(0, 256, (300, channels), dtype=np.uint8)
    np.testing.assert_array_equal(unpack_codes(pack_codes(colors), channels), colors)


@pytest.mark.parametrize("count", [500, histogram_module.TABLE_MIN_PIXELS])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_labels_for_pixels_look_up_each_colour(slice_size, channels, count):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 4, (count, channels), dtype=np.uint8) * 60
    colors, _ = histogram(pixels)
    color_labels = rng.integers(0, 256, len(colors), dtype=np.uint8)
    where = {tuple(c): label for c, label in zip(colors.tolist(), color_labels)}
    expected = [where[tuple(p)] for p in pixels.tolist()]
    np.testing.assert_array_equal(labels_for_pixels(colors, color_labels, pixels), expected)


@pytest.mark.parametrize("table", ["TABLE_MIN_PIXELS", "DENSE_MIN_PIXELS"])
def test_labels_for_pixels_agree_with_and_without_the_table(monkeypatch, table):
    """Small images look labels up by binary search, larger RGB ones in a
    table in pages, the largest in a table over every code: the same labels,
    for pixels in any layout (here every other pixel of an RGBA array's RGB)."""
    rng = np.random.default_rng(9)
    rgba = rng.integers(0, 256, (10000, 4), dtype=np.uint8)
    rgba[::3, :2] = rgba[0, :2]  # colours sharing a red and green pair: one page
    pixels = rgba[::2, :3]
    colors, _ = histogram(np.ascontiguousarray(pixels))
    color_labels = rng.integers(0, 256, len(colors), dtype=np.uint8)
    searched = labels_for_pixels(colors, color_labels, pixels)
    np.testing.assert_array_equal(searched, color_labels[np.searchsorted(pack_codes(colors), pack_codes(pixels))])
    monkeypatch.setattr(histogram_module, "TABLE_MIN_PIXELS", 0)
    monkeypatch.setattr(histogram_module, table, 0)
    np.testing.assert_array_equal(labels_for_pixels(colors, color_labels, pixels), searched)


def random_colours(count: int) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (count, 3), dtype=np.uint8)


def photo_crop(side: int) -> np.ndarray:
    image = np.asarray(Image.open(FIXTURES / "images" / "kodim23_crop.png").convert("RGB"))
    return image[:side, :side].reshape(-1, 3)


@pytest.mark.parametrize("pixels, most", [
    (random_colours(32 * 32), 1 << 20),  # searched: no table (it cost ~0.3 ms a save)
    (photo_crop(100), 2 << 20),  # a table in pages of the red and green pairs used
])
def test_rgb_labels_below_the_dense_size_need_no_table_over_every_code(pixels, most):
    """No 16 MiB table over all 2**24 RGB codes below DENSE_MIN_PIXELS: the
    memory grows with the image."""
    import tracemalloc

    colors, _ = histogram(pixels)
    color_labels = (np.arange(len(colors)) % 16).astype(np.uint8)
    tracemalloc.start()
    try:
        labels = labels_for_pixels(colors, color_labels, pixels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < most
    np.testing.assert_array_equal(labels, color_labels[np.searchsorted(pack_codes(colors), pack_codes(pixels))])


def _sorted_histogram(pixels):
    """The oracle: a sort of every pixel's code."""
    codes, counts = histogram_module.distinct_codes(pack_codes(pixels))
    return unpack_codes(codes, pixels.shape[1]), counts


@pytest.mark.parametrize("run", [1, 4])
@pytest.mark.parametrize("channels, count", [(4, histogram_module.HASH_MIN_PIXELS), (3, 1 << 18)])
def test_large_images_counted_in_tables_match_the_sort(channels, count, run):
    """RGBA from HASH_MIN_PIXELS pixels is counted in a hashed table (with
    many colours, many of them sharing a slot; pixel by pixel, or a run of
    equal pixels at a time in flat images), RGB (from TABLE_MIN_COUNT
    pixels, here called directly) by a count per code: the same colours
    and counts as a sort."""
    rng = np.random.default_rng(count)
    palette = rng.integers(0, 256, (count // 3, channels), dtype=np.uint8)
    pixels = palette[np.repeat(rng.integers(0, len(palette), count // run), run)]
    pixels[: count // 2] = pixels[: count // 2] // 64 * 64  # few colours beside many
    if channels == 3:
        codes, counts = histogram_module.counted_codes(pixels)
        colors = unpack_codes(codes, channels)
    else:
        colors, counts = histogram(pixels)
    expected, expected_counts = _sorted_histogram(pixels)
    np.testing.assert_array_equal(colors, expected)
    np.testing.assert_array_equal(counts, expected_counts)
    assert counts.dtype == expected_counts.dtype == np.uint32


def test_rgba_labels_from_the_hashed_table_match_a_search():
    """Four-channel labels come from a hashed table; colours that share a
    slot are searched: every pixel gets its own colour's label."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (1 << 16, 4), dtype=np.uint8)
    pixels[::3] = pixels[::3] // 32 * 32
    colors, _ = histogram(pixels)
    color_labels = rng.integers(0, 256, len(colors), dtype=np.uint8)
    expected = color_labels[np.searchsorted(pack_codes(colors), pack_codes(pixels))]
    bits = histogram_module.slot_bits(len(colors) * histogram_module.SLOTS_PER_COLOUR)
    slots = histogram_module.slots_of(pack_codes(colors), bits)
    assert len(np.unique(slots)) < len(colors)  # some colours do share a slot
    np.testing.assert_array_equal(labels_for_pixels(colors, color_labels, pixels), expected)


def test_mapped_histogram_merges_the_colours_a_function_joins():
    from pil_kmq.quantize.histogram import mapped_histogram

    rng = np.random.default_rng(8)
    pixels = rng.integers(0, 256, (5000, 4), dtype=np.uint8)
    pixels[::2, 3] = 0
    colors, counts = histogram(pixels)

    def clear_is_black(c):
        return np.where(c[..., 3:] == 0, 0, c).astype(np.uint8)

    mapped, mapped_counts, merged = mapped_histogram(colors, counts, clear_is_black)
    expected, expected_counts = histogram(clear_is_black(pixels))
    np.testing.assert_array_equal(mapped, expected)
    np.testing.assert_array_equal(mapped_counts, expected_counts)
    np.testing.assert_array_equal(mapped[merged], clear_is_black(colors))
