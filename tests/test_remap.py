"""The rate-distortion remap: bounded error, lambda 0 is the identity, E never rises."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pil_kmq
from pil_kmq.quantize.remap import remap, smoothing_weight, squared_error

from helpers import FIXTURES, gradient_image, noise_image


def photo(name: str = "kodim23_crop.png") -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / "images" / name))


def nearest(array: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    labels, codebook = pil_kmq.compress(array, k)
    return labels, codebook


def errors(array: np.ndarray, codebook: np.ndarray, labels: np.ndarray) -> np.ndarray:
    channels = codebook.shape[1]
    return squared_error(array.reshape(-1, channels), codebook, labels.ravel()).reshape(labels.shape)


def disagreements(labels: np.ndarray) -> int:
    return int((labels[1:] != labels[:-1]).sum() + (labels[:, 1:] != labels[:, :-1]).sum())


def energy(array, codebook, labels, lam) -> float:
    return float(errors(array, codebook, labels).sum(dtype=np.int64)) + lam * disagreements(labels)


@pytest.mark.parametrize("k", [2, 16, 64, 256])
def test_smooth_zero_is_the_identity(k):
    array = photo()
    labels, codebook = nearest(array, k)
    assert remap(array, codebook, labels, 0.0) is labels
    assert np.array_equal(remap(array, codebook, labels, 0.0), labels)


@pytest.mark.parametrize("k", [4, 16, 64, 256])
@pytest.mark.parametrize("smooth", [0.25, 1.0, 4.0, 32.0])
def test_error_per_pixel_stays_within_what_lambda_allows(k, smooth):
    array = photo()
    labels, codebook = nearest(array, k)
    lam = smoothing_weight(array, codebook, labels, smooth)
    smoothed = remap(array, codebook, labels, smooth)
    before = errors(array, codebook, labels)
    after = errors(array, codebook, smoothed)
    assert (after <= before + 4 * lam).all()
    # the bound binds: some pixel takes on more error than nearest
    assert (after > before).any()


@pytest.mark.parametrize("k", [8, 64])
@pytest.mark.parametrize("smooth", [0.5, 4.0])
def test_energy_never_rises_and_the_map_gets_smoother(k, smooth):
    array = photo("kodim23_crop.png")
    labels, codebook = nearest(array, k)
    lam = smoothing_weight(array, codebook, labels, smooth)
    smoothed = remap(array, codebook, labels, smooth)
    assert energy(array, codebook, smoothed, lam) < energy(array, codebook, labels, lam)
    assert disagreements(smoothed) < disagreements(labels)
    assert smoothed.dtype == np.uint8 and smoothed.shape == labels.shape
    assert int(smoothed.max()) < len(codebook)


def test_more_smoothing_trades_error_for_fewer_edges():
    array = photo()
    labels, codebook = nearest(array, 32)
    results = [remap(array, codebook, labels, s) for s in (0.5, 2.0, 8.0)]
    edges = [disagreements(r) for r in results]
    error = [int(errors(array, codebook, r).sum()) for r in results]
    assert edges[0] > edges[1] > edges[2]
    assert error[0] < error[1] < error[2]


def test_deterministic():
    array = photo("kodim23_crop.png")
    labels, codebook = nearest(array, 48)
    first = remap(array, codebook, labels, 3.0)
    assert np.array_equal(first, remap(array, codebook, labels.copy(), 3.0))


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (40, 1), (2, 3), (7, 5)])
def test_tiny_and_thin_images(shape):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    labels, codebook = nearest(array, 2)
    smoothed = remap(array, codebook, labels, 8.0)
    lam = smoothing_weight(array, codebook, labels, 8.0)
    assert smoothed.shape == shape
    assert (errors(array, codebook, smoothed) <= errors(array, codebook, labels) + 4 * lam).all()


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_one_and_four_channels(mode):
    array = np.asarray(gradient_image(60, 40, mode))
    if array.ndim == 2:
        array = array[:, :, None]
    noisy = np.clip(array.astype(int) + np.asarray(noise_image(60, 40, mode)).reshape(array.shape) // 16, 0, 255)
    noisy = noisy.astype(np.uint8)
    labels, codebook = nearest(noisy, 12)
    smoothed = remap(noisy, codebook, labels, 2.0)
    assert disagreements(smoothed) < disagreements(labels)


def test_lossless_stays_lossless():
    # at most K distinct colours: no quantization error, so lam is 0
    array = np.asarray(noise_image(20, 10)) // 128 * 255
    labels, codebook = nearest(array, 16)
    assert np.array_equal(codebook[remap(array, codebook, labels, 10.0)], array)
