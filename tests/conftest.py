from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pil_kmq  # noqa: F401  (registers KMQ)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: minutes-scale checks, run with --runslow (see README)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


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
