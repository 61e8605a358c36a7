"""The quality target: the fewest colours whose PSNR reaches a given value."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .metrics import histogram_psnr

Clustering = Callable[[int], tuple[np.ndarray, np.ndarray]]


def fewest_colors_reaching(
    target_db: float, most: int, cluster: Clustering, colors: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """cluster(k) -> (codebook, a label per distinct colour) for the smallest
    k <= most whose PSNR reaches target_db; for `most` if none does (a target
    is a request for quality: falling short still gives the best the file
    allows rather than an error).

    Bisection: k = low always misses the target and k = high always reaches
    it, so the answer's k - 1 is known to miss even where PSNR is not
    monotone in k.
    """
    results = {}

    def reaches(k: int) -> bool:
        results[k] = cluster(k)
        return histogram_psnr(colors, counts, *results[k]) >= target_db

    high = most
    if not reaches(high):
        return results[high]
    low = 0
    while high - low > 1:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    return results[high]
