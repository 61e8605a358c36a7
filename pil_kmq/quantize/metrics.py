"""Mean squared error and PSNR: the one definition of quality, used by the
quality target, the kmq command, the demo and the benchmarks.

PSNR is 10*log10(255^2 / MSE), the MSE over every pixel and stored channel.
"""

from __future__ import annotations

import math

import numpy as np

ROWS_PER_BLOCK = 256  # bounds the float64 temporaries of mean_squared_error


def mean_squared_error(a: np.ndarray, b: np.ndarray) -> float:
    """Over all pixels and channels, in 8-bit units squared."""
    total = 0.0
    for row in range(0, a.shape[0], ROWS_PER_BLOCK):
        diff = a[row : row + ROWS_PER_BLOCK].astype(np.float64) - b[row : row + ROWS_PER_BLOCK]
        total += float(np.vdot(diff.ravel(), diff.ravel()))
    return total / a.size


def psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def histogram_mse(
    colors: np.ndarray, counts: np.ndarray, codebook: np.ndarray, color_labels: np.ndarray
) -> float:
    """MSE of the quantized image from its histogram: the same number as
    over every pixel, for the cost of the distinct colours."""
    offsets = colors.astype(np.int64) - codebook[color_labels].astype(np.int64)
    squared_error = float(counts @ (offsets * offsets).sum(axis=1))
    return squared_error / (float(counts.sum()) * colors.shape[1])


def histogram_psnr(
    colors: np.ndarray, counts: np.ndarray, codebook: np.ndarray, color_labels: np.ndarray
) -> float:
    """PSNR of the quantized image from its histogram (inf if exact)."""
    return psnr_from_mse(histogram_mse(colors, counts, codebook, color_labels))
