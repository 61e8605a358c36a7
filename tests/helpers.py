"""Image makers shared by the tests (imported as `helpers` or via conftest)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def noise_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """An image with (practically) every pixel a different colour."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode)


def gradient_image(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A smooth image with many colours, like a photo's sky."""
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    planes = [x + 0 * y, y + 0 * x, (x + y) / 2, 255 - x / 2 + 0 * y]
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    array = np.dstack(planes[:channels]).astype(np.uint8)
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode)


def flat_pixels(im: Image.Image) -> list:
    """Pixel values in row-major order (getdata is deprecated in Pillow 13)."""
    flatten = getattr(im, "get_flattened_data", None)
    return list(flatten() if flatten else im.getdata())


def label_map(height: int, width: int, k: int, seed: int = 0) -> np.ndarray:
    """A blocky map using every label 0..k-1 (where it fits), with some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((height, width))
    labels = (x // 3 + 2 * (y // 4)) % k
    noise = rng.random((height, width)) < 0.05
    labels[noise] = rng.integers(0, k, int(noise.sum()))
    flat = labels.reshape(-1)
    flat[: min(k, flat.size)] = np.arange(min(k, flat.size))
    return labels.astype(np.uint8)


def save_to_bytes(im: Image.Image, **params) -> bytes:
    """The .kmq file Image.save writes for im and these options."""
    buffer = io.BytesIO()
    im.save(buffer, "KMQ", **params)
    return buffer.getvalue()


def reopen(data: bytes) -> Image.Image:
    """A .kmq file's bytes opened and loaded."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """(..., 4) RGBA as the encoder compares RGBA colours: (r, g, b) * a / 255
    rounded, and a (int64, for exact squared distances)."""
    rgba = np.asarray(rgba, dtype=np.int64)
    colour = np.rint(rgba[..., :3] * rgba[..., 3:] / 255.0).astype(np.int64)
    return np.concatenate([colour, rgba[..., 3:]], axis=-1)
