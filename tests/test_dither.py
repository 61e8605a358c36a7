"""Floyd-Steinberg dithering onto the k-means codebook."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import pil_kmq  # noqa: F401  (registers the format)
from pil_kmq.api import compress, reconstruct
from pil_kmq.quantize.dither import dither

from helpers import premultiplied


def gradient(channels: int, height: int = 40, width: int = 96) -> np.ndarray:
    """Slow ramps: the case dithering exists for."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 255 // (width - 1) + c * 40 + y) % 256 for c in range(channels)]
    if channels == 4:  # a soft alpha edge as the fourth channel
        planes[3] = np.clip(y * 255 // (height - 1), 0, 255)
    return np.stack(planes, axis=2).astype(np.uint8)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_dither_changes_labels_and_round_trips(channels):
    image = gradient(channels)
    plain_labels, codebook = compress(image, 8)
    dithered_labels, dithered_codebook = compress(image, 8, dither=True)
    np.testing.assert_array_equal(codebook, dithered_codebook)  # same colours
    assert (plain_labels != dithered_labels).mean() > 0.05
    assert dithered_labels.max() < len(codebook)

    stored = image[:, :, 0] if channels == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "KMQ", colors=8, dither=True)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
    expected = reconstruct(dithered_labels, codebook, image.shape)
    np.testing.assert_array_equal(decoded.reshape(image.shape), expected)


def block_means(image: np.ndarray, size: int = 8) -> np.ndarray:
    height, width = image.shape[0] // size * size, image.shape[1] // size * size
    blocks = image[:height, :width].astype(np.float64)
    return blocks.reshape(height // size, size, width // size, size, -1).mean(axis=(1, 3))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_dither_keeps_local_averages(channels):
    # Error diffusion's point: averages over small areas follow the original
    # far better than with nearest-colour quantization. RGBA is dithered in
    # premultiplied space, so its averages are those of what is composited.
    image = gradient(channels, 64, 128)
    plain_labels, codebook = compress(image, 8)
    dithered_labels, _ = compress(image, 8, dither=True)
    seen = premultiplied if channels == 4 else np.asarray
    truth = block_means(seen(image))
    plain_error = np.abs(block_means(seen(codebook[plain_labels])) - truth).mean()
    dithered_error = np.abs(block_means(seen(codebook[dithered_labels])) - truth).mean()
    assert dithered_error < 0.75 * plain_error


def test_dither_of_an_image_in_the_codebook_is_exact():
    rng = np.random.default_rng(0)
    codebook = rng.integers(0, 256, (6, 4), dtype=np.uint8)
    truth = rng.integers(0, 6, (12, 17))
    labels = dither(codebook[truth], codebook)
    np.testing.assert_array_equal(codebook[labels], codebook[truth])


def test_dither_never_uses_padding_entries():
    image = gradient(3)
    codebook = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    labels = dither(image, codebook)
    assert set(np.unique(labels)) <= {0, 1}
