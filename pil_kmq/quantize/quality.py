"""The quality targets: the fewest colours reaching a PSNR (psnr=) or a
pngquant-style quality (quality=), and the refusal when even the most
colours allowed miss quality's minimum."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .metrics import histogram_mse, psnr_from_mse

Clustering = Callable[[int], tuple[np.ndarray, np.ndarray]]

# quality q (pngquant's 0-100 scale) allows a mean squared error of at most
# MSE_SCALE * (100 - q) / (q + MSE_OFFSET), in 8-bit units over every stored
# channel: q 50 ~ 35.7 dB, 80 ~ 40.2 dB, 90 ~ 43.4 dB, close to pngquant's
# own curve; 100 means lossless and 0 accepts anything.
MSE_SCALE = 80.0
MSE_OFFSET = 180.0


class QualityNotReached(ValueError):
    """Even the most colours allowed miss quality's minimum (pngquant's exit 99)."""

    def __init__(self, minimum: int, reached: int, colors: int, mse: float):
        self.minimum, self.reached, self.colors = minimum, reached, colors
        super().__init__(
            f"quality {reached} (PSNR {psnr_from_mse(mse):.2f} dB) at {colors} colours "
            f"is below the minimum quality {minimum}: nothing written "
            f"(lower the minimum or allow more colours)"
        )


def quality_to_mse(quality: int) -> float:
    """The largest mean squared error a quality accepts (inf for 0)."""
    if quality <= 0:
        return math.inf
    return MSE_SCALE * (100 - quality) / (quality + MSE_OFFSET)


def mse_to_quality(mse: float) -> int:
    """The highest quality an MSE reaches (the inverse of quality_to_mse)."""
    if mse <= 0:
        return 100
    if math.isinf(mse):
        return 0
    exact = (MSE_SCALE * 100 - MSE_OFFSET * mse) / (mse + MSE_SCALE)
    quality = max(0, min(99, math.floor(exact)))
    while quality > 0 and quality_to_mse(quality) < mse:  # floating-point edges
        quality -= 1
    while quality < 99 and quality_to_mse(quality + 1) >= mse:
        quality += 1
    return quality


def fewest_colors_for_target(
    options, most: int, cluster: Clustering, colors: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """cluster(k) for the fewest colours (<= most) reaching options.psnr or
    options.quality's max; `most` when none does, unless that misses
    quality's min (QualityNotReached)."""
    if options.psnr is not None:
        bound = 255.0**2 / 10 ** (options.psnr / 10)
    else:
        bound = quality_to_mse(options.quality[1])
    codebook, labels, mse = fewest_colors_within(bound, most, cluster, colors, counts, progress=options.progress)
    if options.quality is not None and mse > quality_to_mse(options.quality[0]):
        raise QualityNotReached(options.quality[0], mse_to_quality(mse), len(codebook), mse)
    return codebook, labels


def fewest_colors_within(
    max_mse: float, most: int, cluster: Clustering, colors: np.ndarray, counts: np.ndarray,
    *, progress: Callable[[str, int, int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(codebook, a label per distinct colour, MSE) of cluster(k) for the
    smallest k <= most whose MSE is at most max_mse; for `most` if none is
    (a target is a request for quality, not a promise).
    """
    results = {}
    steps = 1 + max(1, math.ceil(math.log2(max(most, 2))))  # progress's total: a bisection's length

    def reaches(k: int) -> bool:
        codebook, labels = cluster(k)
        results[k] = codebook, labels, histogram_mse(colors, counts, codebook, labels)
        if progress is not None:
            progress("search", min(len(results), steps), steps)
        return results[k][2] <= max_mse

    return results[smallest_k_reaching(reaches, most)]


def smallest_k_reaching(reaches: Callable[[int], bool], most: int) -> int:
    """Smallest k <= most with reaches(k), by bisection (most if none does):
    k = low always misses and k = high always reaches, so the answer's
    k - 1 is known to miss even where quality is not monotone in k."""
    high = most
    if not reaches(high):
        return high
    low = 0
    while high - low > 1:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    return high
