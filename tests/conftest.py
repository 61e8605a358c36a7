"""Shared pytest set-up: the --runslow option and the fixtures folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import pil_kmq  # noqa: F401  (registers KMQ)

from helpers import FIXTURES, flat_pixels, gradient_image, noise_image  # noqa: F401  (shared makers)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: seconds to minutes of processes, pip or a cluster: run with --runslow, as .ci/run does")


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
