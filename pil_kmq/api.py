"""The numpy-level API: the tutorial's compress / reconstruct / size report,
and the whole encoder (image -> .kmq bytes) that the plugin and tools share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import bitpack, coding, container
from .histogram import histogram, labels_for_pixels
from .kmeans import kmeans

DEFAULT_COLORS = 256
DEFAULT_MAX_ITER = 300
DEFAULT_TOL = 1e-2
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Options:
    """Validated encoder options (the names of Image.save's keywords)."""

    colors: int = DEFAULT_COLORS
    max_iter: int = DEFAULT_MAX_ITER
    tol: float = DEFAULT_TOL
    seed: int = DEFAULT_SEED

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> Options:
        """Read and check options from im.encoderinfo (ValueError if bad)."""
        colors = _integer(params.get("colors", DEFAULT_COLORS), "colors", 1, 256)
        max_iter = _integer(params.get("max_iter", DEFAULT_MAX_ITER), "max_iter", 0, None)
        seed = _integer(params.get("seed", DEFAULT_SEED), "seed", 0, None)
        tol = params.get("tol", DEFAULT_TOL)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0 or math.isinf(tol):
            raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
        return cls(colors, max_iter, float(tol), seed)


def _integer(value: Any, name: str, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _as_pixels(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (h, w) or (h, w, 1|3|4) array, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"cannot compress an empty image of shape {array.shape}")
    return array.reshape(-1, array.shape[2])


def compress(
    array: np.ndarray,
    k: int,
    *,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    seed: int = DEFAULT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster an image's colours into at most k; return (labels, centroids).

    labels is (h, w) uint8, centroids (K, C) uint8 with K <= k: an image of at
    most k distinct colours comes back losslessly with those colours.
    """
    options = Options.from_mapping(
        {"colors": k, "max_iter": max_iter, "tol": tol, "seed": seed}
    )
    height, width = np.shape(array)[:2]
    pixels = _as_pixels(array)
    colors, counts, codes = histogram(pixels)
    if len(colors) <= options.colors:
        codebook = colors
        color_labels = np.arange(len(colors), dtype=np.uint8)
    else:
        codebook, color_labels = kmeans(
            colors, counts, options.colors,
            max_iter=options.max_iter, tol=options.tol, seed=options.seed,
        )
    labels = labels_for_pixels(colors, color_labels.astype(np.uint8), codes)
    return labels.reshape(height, width), codebook


def reconstruct(
    labels: np.ndarray, centroids: np.ndarray, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """The quantized image: each label replaced by its centroid colour."""
    image = np.asarray(centroids, dtype=np.uint8)[np.asarray(labels)]
    if shape is not None:
        image = image.reshape(shape)
    elif image.shape[-1] == 1:
        image = image[..., 0]
    return image


@dataclass(frozen=True)
class SizeReport:
    """The tutorial's accounting of a raw .kmq image, in bits."""

    width: int
    height: int
    channels: int
    k: int

    @property
    def original_bits(self) -> int:
        return self.width * self.height * self.channels * 8

    @property
    def index_bits(self) -> int:
        return self.width * self.height * bitpack.bits_per_index(self.k)

    @property
    def codebook_bits(self) -> int:
        return self.k * self.channels * 8

    @property
    def total_bits(self) -> int:
        return self.index_bits + self.codebook_bits

    @property
    def ratio(self) -> float:
        """Compressed size as a fraction of the original."""
        return self.total_bits / self.original_bits

    def table(self) -> str:
        rows = [
            ("original", self.original_bits),
            ("index", self.index_bits),
            ("codebook", self.codebook_bits),
            ("total", self.total_bits),
        ]
        lines = [f"{name + ' bits':<15}{value:>14,}" for name, value in rows]
        lines.append(f"{'ratio':<15}{self.ratio:>13.2%}  ({1 / self.ratio:.1f}x smaller)")
        return "\n".join(lines)


def size_report(shape: tuple[int, ...], k: int) -> SizeReport:
    """Size report for an image of `shape` ((h, w) or (h, w, C)) at K colours."""
    channels = shape[2] if len(shape) == 3 else 1
    return SizeReport(width=shape[1], height=shape[0], channels=channels, k=k)


def encode_array(
    array: np.ndarray, options: Options, metadata: dict[str, bytes] | None = None
) -> bytes:
    """A complete .kmq file for an (h, w[, C]) uint8 array."""
    labels, codebook = compress(
        array, options.colors, max_iter=options.max_iter, tol=options.tol, seed=options.seed
    )
    height, width = labels.shape
    header = container.Header(
        width=width, height=height, channels=codebook.shape[1], k=len(codebook)
    )
    payload = coding.encode(labels, header.k, header.coding)
    return container.build(header, codebook.tobytes(), payload, metadata)
