"""The encoder's colour choice: exact assignment, losslessness, determinism,
the quality target and option checking."""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import pil_kmq  # noqa: F401  (registers the format)
from pil_kmq.encoder import collapse_transparent
from pil_kmq.api import compress, reconstruct
from pil_kmq.options import Options
from pil_kmq.quantize.metrics import histogram_psnr as psnr

from helpers import FIXTURES, premultiplied


def smooth_image(height: int = 48, width: int = 64, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth gradients plus a little noise, many
    distinct colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [
        128 + 100 * np.sin(x / (7 + 3 * c) + y / (11 + c) + c) + rng.normal(0, 6, (height, width))
        for c in range(channels)
    ]
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)


def brute_force_nearest(pixels: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Nearest codebook entry by exhaustive integer search, ties to the lowest
    index (argmin returns the first minimum)."""
    offsets = pixels.astype(np.int64)[:, None, :] - codebook.astype(np.int64)[None, :, :]
    return (offsets * offsets).sum(axis=2).argmin(axis=1)


def expected_labels(pixels: np.ndarray, codebook: np.ndarray, k: int) -> np.ndarray:
    """The labels compress promises: the nearest entry, RGBA of more than k
    colours compared premultiplied (colour error weighted by alpha)."""
    if pixels.shape[1] == 4 and len(np.unique(pixels, axis=0)) > k:
        return brute_force_nearest(premultiplied(pixels), premultiplied(codebook))
    return brute_force_nearest(pixels, codebook)


def save_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "KMQ", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("k", [1, 2, 7, 16, 64])
def test_every_pixel_gets_its_exactly_nearest_colour(channels, k):
    image = smooth_image(channels=channels, seed=k)
    labels, codebook = compress(image, k)
    assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
    assert codebook.dtype == np.uint8 and codebook.shape[1] == channels
    assert len(codebook) <= k
    pixels = image.reshape(-1, channels)
    np.testing.assert_array_equal(labels.ravel(), expected_labels(pixels, codebook, k))


def test_ties_go_to_the_lowest_index():
    # A grey ramp quantized to few colours: many pixels sit exactly halfway
    # between two integer centroids.
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :], 4, axis=0)
    image = np.repeat(ramp[:, :, None], 3, axis=2)
    tied_pixels = 0
    for k in (3, 4, 5, 6, 10):
        labels, codebook = compress(image, k)
        pixels = image.reshape(-1, 3)
        distances = ((pixels[:, None, :].astype(int) - codebook[None].astype(int)) ** 2).sum(axis=2)
        tied_pixels += ((distances == distances.min(axis=1, keepdims=True)).sum(axis=1) > 1).sum()
        np.testing.assert_array_equal(labels.ravel(), brute_force_nearest(pixels, codebook))
    assert tied_pixels > 0  # the test means something


def test_random_colours_match_brute_force_at_k_256():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    labels, codebook = compress(image, 256)
    np.testing.assert_array_equal(labels.ravel(), brute_force_nearest(image.reshape(-1, 3), codebook))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_few_colours_come_back_losslessly(channels):
    rng = np.random.default_rng(channels)
    palette = rng.integers(0, 256, (9, channels), dtype=np.uint8)
    image = palette[rng.integers(0, 9, (20, 30))]
    labels, codebook = compress(image, 9)
    np.testing.assert_array_equal(reconstruct(labels, codebook, image.shape), image)
    assert {tuple(c) for c in codebook} == {tuple(c) for c in palette}


def test_more_colours_lower_the_error():
    image = smooth_image()
    values = []
    for k in (4, 16, 64):
        labels, codebook = compress(image, k)
        values.append(psnr(image.reshape(-1, 3), np.ones(image.size // 3, dtype=np.int64), codebook, labels.ravel()))
    assert values[0] < values[1] < values[2]


# Each thread saves its own Image object: Pillow keeps save options on the
# image (encoderinfo), so one object saved from several threads at once mixes
# their options whatever the plugin does.


@pytest.mark.parametrize("colors", [4, 32, 256])
def test_same_input_gives_the_same_bytes_every_time_and_on_every_thread(colors):
    array = smooth_image(96, 128)
    expected = save_bytes(Image.fromarray(array), colors=colors)
    assert save_bytes(Image.fromarray(array), colors=colors) == expected
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: save_bytes(Image.fromarray(array), colors=colors), range(8)))
    assert all(result == expected for result in results)


@pytest.mark.parametrize("channels", [3, 4])
def test_dithered_output_is_deterministic_across_threads(channels):
    array = smooth_image(48, 48, channels=channels)
    expected = save_bytes(Image.fromarray(array), colors=16, dither=True)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: save_bytes(Image.fromarray(array), colors=16, dither=True), range(8))
        )
    assert all(result == expected for result in results)


def test_psnr_picks_the_smallest_k_reaching_the_target():
    image = smooth_image()
    pixels = image.reshape(-1, 3)
    ones = np.ones(len(pixels), dtype=np.int64)
    for target in (22.0, 26.0, 30.0):
        labels, codebook = compress(image, 256, psnr=target)
        k = len(codebook)
        assert psnr(pixels, ones, codebook, labels.ravel()) >= target
        assert 1 < k < 256
        fewer_labels, fewer = compress(image, k - 1)
        assert psnr(pixels, ones, fewer, fewer_labels.ravel()) < target


def test_unreachable_psnr_uses_the_most_colours_allowed():
    image = smooth_image()
    labels, codebook = compress(image, 8, psnr=99.0)
    assert len(codebook) == 8
    np.testing.assert_array_equal(
        (labels, codebook)[1], compress(image, 8)[1]
    )


def test_psnr_100_on_a_few_colour_image_is_lossless_when_needed():
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    image = palette[rng.integers(0, 5, (16, 16))]
    labels, codebook = compress(image, 256, psnr=100.0)
    assert len(codebook) == 5
    np.testing.assert_array_equal(reconstruct(labels, codebook, image.shape), image)


def test_chosen_k_is_in_the_header_and_im_info():
    image = Image.fromarray(smooth_image())
    data = save_bytes(image, psnr=30.0)
    reopened = Image.open(io.BytesIO(data))
    labels, codebook = compress(np.asarray(image), 256, psnr=30.0)
    assert reopened.info["colors"] == len(codebook) < 256
    np.testing.assert_array_equal(np.asarray(reopened), reconstruct(labels, codebook, (48, 64, 3)))


@pytest.mark.parametrize(
    "options",
    [
        {"dither": "yes"},
        {"dither": 1},  # Image.Dither.ORDERED
        {"dither": Image.Dither.RASTERIZE},
        {"dither": 7},
        {"psnr": 0},
        {"psnr": -5.0},
        {"psnr": 100.5},
        {"psnr": "high"},
        {"psnr": True},
        {"psnr": math.nan},
        {"psnr": math.inf},
        {"quality": 35.0},  # a PSNR in dB before 0.2.0: refused, pointing to psnr=
        {"quality": 101},
        {"quality": (80, 60)},
        {"colors": 0},
        {"colors": 257},
        {"tol": -1.0},
    ],
)
def test_bad_options_raise_value_error_before_any_output(options):
    with pytest.raises(ValueError):
        Options.from_mapping(options)
    buffer = io.BytesIO()
    with pytest.raises(ValueError):
        Image.fromarray(smooth_image(8, 8)).save(buffer, "KMQ", **options)
    assert buffer.getvalue() == b""


def test_good_options_are_read():
    options = Options.from_mapping({"dither": True, "psnr": 35, "colors": 64})
    assert options.dither is True and options.psnr == 35.0 and options.colors == 64
    assert Options.from_mapping({"quality": 80}).quality == (0, 80)
    assert Options.from_mapping({"quality": (65, 80)}).quality == (65, 80)
    assert Options.from_mapping({}).dither is False and Options.from_mapping({}).quality is None


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    channels=st.sampled_from([1, 3, 4]),
    k=st.integers(1, 256),
)
def test_exact_nearest_for_arbitrary_images(data, channels, k):
    height = data.draw(st.integers(1, 24))
    width = data.draw(st.integers(1, 24))
    levels = data.draw(st.sampled_from([2, 7, 256]))  # few or many distinct colours
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, levels, (height, width, channels)) * (255 // (levels - 1))).astype(np.uint8)
    labels, codebook = compress(image, k)
    image = collapse_transparent(image)  # what compress clusters: clear pixels as (0, 0, 0, 0)
    pixels = image.reshape(-1, channels)
    assert len(codebook) <= k and labels.max() < len(codebook)
    np.testing.assert_array_equal(labels.ravel(), expected_labels(pixels, codebook, k))
    if len(np.unique(pixels, axis=0)) <= k:
        np.testing.assert_array_equal(reconstruct(labels, codebook, image.shape), image)


def test_the_quantizer_knows_nothing_of_the_format_or_the_options():
    """quantize/ imports neither pil_kmq.format nor pil_kmq.options: the
    encoder hands it what it needs (options by attribute, size_of)."""
    import ast
    from pathlib import Path

    import pil_kmq.quantize

    for path in Path(pil_kmq.quantize.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
                assert node.level < 2 and not any(n.split(".")[0] in ("format", "options") for n in names), path
            elif isinstance(node, ast.Import):
                assert not any("pil_kmq.format" in a.name or "pil_kmq.options" in a.name for a in node.names), path


@pytest.mark.parametrize("speed", [1, 4, 10])
def test_every_speed_saves_a_file_whose_labels_are_nearest(speed):
    """Every speed labels each pixel with its exactly nearest colour."""
    from pil_kmq.quantize.nearest import nearest

    image = np.asarray(Image.open(FIXTURES / "images" / "kodim23_crop.png").convert("RGB"))
    labels, codebook = compress(image, 16, speed=speed)
    np.testing.assert_array_equal(labels.ravel(), nearest(image.reshape(-1, 3), codebook))
