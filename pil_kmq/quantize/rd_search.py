"""Quality target search over K and the remap's smoothing together: the
smallest file that meets the target, not merely the fewest colours.

At a given PSNR (psnr=, or quality='s error bound), a larger K whose spare
quality is spent on smoothing the label map (remap.py) codes smaller than
the fewest colours reaching it. The search:

1. the smallest K reaching the target with nearest labels (bisection; K
   below it miss the target whatever the smoothing, which only adds error);
2. K up a ladder of steps of sqrt(2) from there, each with the largest
   smoothing whose PSNR still meets the target (a few remaps, guided by
   a power law of the error rise against `smooth`); the climb stops when
   a step codes larger than the best so far;
3. sizes estimated cheaply during the climb (the caller's `estimate`,
   e.g. a fast xz pass); the two best confirmed with the caller's `exact`
   coding when their estimates are too close to tell apart.

Every candidate's PSNR is measured on its final labels, so the answer meets
the target exactly as measured (or is the nearest labelling at `max_k` when
even that misses). Deterministic: no randomness, no timing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .histogram import labels_for_pixels
from .quality import QualityNotReached, mse_to_quality, quality_to_mse, smallest_k_reaching
from .remap import remap, squared_error
from .schedule import TARGET_SEARCH as PLAN

Labelling = tuple[np.ndarray, np.ndarray]  # (labels (h, w) uint8, codebook (K, C) uint8)
SizeOf = Callable[[np.ndarray, np.ndarray], int]  # bytes of a file of (labels, codebook)


@dataclass
class Choice:
    """One candidate answer: a labelling, its smoothing and estimated size."""

    labels: np.ndarray
    codebook: np.ndarray
    smooth: float
    estimate: int


def smallest_file_reaching(
    image: np.ndarray,
    options,
    cluster: Callable[[int], tuple[np.ndarray, np.ndarray]],
    colors: np.ndarray,
    *,
    sizes: tuple[SizeOf, SizeOf],
) -> Choice:
    """The quantizer's call: the labels, codebook and smoothing of the
    smallest file meeting options.psnr or options.quality's max with at
    most options.colors colours, for an (h, w, C) image whose distinct
    colours are `colors`; cluster(k) gives a codebook and a label per
    distinct colour (k-means); sizes = (estimate, size_of), a fast and the
    exact size of a file of (labels, codebook), from the encoder.
    options.smooth, if given, caps the smoothing. Below quality's min:
    QualityNotReached."""
    height, width, channels = image.shape
    most = min(options.colors, len(colors))
    steps = [0, 1 + max(1, math.ceil(math.log2(max(most, 2)))) + PLAN.ladder_steps]  # done, total

    def nearest(k: int) -> Labelling:
        codebook, color_labels = cluster(k)
        labels = labels_for_pixels(colors, color_labels, image.reshape(-1, channels))
        if options.progress is not None:  # one call per K tried, as the plain search
            steps[0] = min(steps[0] + 1, steps[1])
            options.progress("search", *steps)
        return labels.reshape(height, width), codebook

    if options.psnr is not None:
        max_mse = 255.0**2 / 10 ** (options.psnr / 10)
    else:
        max_mse = quality_to_mse(options.quality[1])
    cap = PLAN.smooth_range[1] if options.smooth is None else options.smooth
    choice = smallest_within(image, max_mse, most, nearest, sizes, max_smooth=cap)
    if options.quality is not None:
        flat = image.reshape(-1, channels)
        mse = float(squared_error(flat, choice.codebook, choice.labels.ravel()).sum(dtype=np.int64)) / flat.size
        if mse > quality_to_mse(options.quality[0]):
            raise QualityNotReached(options.quality[0], mse_to_quality(mse), len(choice.codebook), mse)
    return choice


def smallest_within(
    pixels: np.ndarray,
    max_mse: float,
    max_k: int,
    nearest: Callable[[int], Labelling],
    sizes: tuple[SizeOf, SizeOf],
    *,
    max_smooth: float = PLAN.smooth_range[1],
) -> Choice:
    """The smallest coding of `pixels` (h, w, C) whose MSE (over every pixel
    and channel) is at most max_mse.

    nearest(k) is the nearest labelling for at most k colours (k-means);
    its len(codebook) may be below k (few distinct colours). sizes =
    (estimate, exact) give the size of a labelling (labels, codebook),
    roughly and as the file will store it. No smoothing above max_smooth
    is tried.
    """
    estimate, exact = sizes
    cache: dict[int, Labelling] = {}

    def labelling(k: int) -> Labelling:
        if k not in cache:
            cache[k] = nearest(k)
        return cache[k]

    limit_mse = max_mse
    flat = pixels.reshape(-1, pixels.shape[-1])

    def mse(labels: np.ndarray, codebook: np.ndarray) -> float:
        return float(squared_error(flat, codebook, labels.ravel()).sum(dtype=np.int64)) / flat.size

    def reaches(k: int) -> bool:
        return mse(*labelling(k)) <= limit_mse

    start = smallest_k_reaching(reaches, max_k)
    labels, codebook = labelling(start)
    if not reaches(start):
        return Choice(labels, codebook, 0.0, estimate(labels, codebook))

    def smoothed(labels: np.ndarray, codebook: np.ndarray) -> Choice | None:
        if mse(labels, codebook) > limit_mse:
            return None
        return _best_smoothing(
            pixels, labels, codebook, limit_mse=limit_mse, mse=mse, estimate=estimate, max_smooth=max_smooth
        )

    climbed = _climb(start, max_k, labelling, smoothed)
    ranked = sorted(climbed, key=lambda c: c.estimate)
    close = [c for c in ranked[:2] if c.estimate <= ranked[0].estimate * (1 + PLAN.estimate_spread)]
    if len(close) == 1:
        return close[0]
    return min(close, key=lambda c: exact(c.labels, c.codebook))


def _climb(
    start: int,
    max_k: int,
    labelling: Callable[[int], Labelling],
    smoothed: Callable[[np.ndarray, np.ndarray], Choice | None],
) -> list[Choice]:
    """The best smoothing at each K of the ladder from `start` (skipping K
    whose nearest labels miss the target), until one estimates larger than
    the best so far."""
    climbed: list[Choice] = []
    k = start
    for _ in range(PLAN.ladder_steps + 1):
        labels, codebook = labelling(k)
        choice = smoothed(labels, codebook)
        if choice is not None:
            worse = bool(climbed) and choice.estimate > min(c.estimate for c in climbed)
            climbed.append(choice)
            if worse:
                break
        if len(codebook) < k or k >= max_k:
            break  # no more colours to be had
        k = min(max_k, int(round(k * PLAN.ladder_step)))
    return climbed


def _best_smoothing(
    pixels: np.ndarray,
    labels: np.ndarray,
    codebook: np.ndarray,
    *,
    limit_mse: float,
    mse: Callable[[np.ndarray, np.ndarray], float],
    estimate: Callable[[np.ndarray, np.ndarray], int],
    max_smooth: float,
) -> Choice:
    """The largest smoothing tried whose labels still meet limit_mse, with
    its estimated size (smooth 0, the nearest labels, if none does)."""
    base = mse(labels, codebook)
    best_smooth, best_labels = 0.0, labels
    if base > 0:
        allowed = limit_mse / base - 1  # relative MSE rise the target allows
        tried: list[tuple[float, float]] = []  # (smooth, relative rise)
        rise, power = PLAN.rise, PLAN.power
        for _ in range(PLAN.smooth_tries):
            smooth = _clip((PLAN.aim * allowed / rise) ** (1 / power), max_smooth)
            if any(s == smooth for s, _ in tried):
                break
            smoothed = remap(pixels, codebook, labels, smooth)
            measured = max(mse(smoothed, codebook) / base - 1, 1e-9)
            if measured <= allowed and smooth > best_smooth:
                best_smooth, best_labels = smooth, smoothed
            tried.append((smooth, measured))
            rise, power = _fit(tried, power)
    return Choice(best_labels, codebook, best_smooth, estimate(best_labels, codebook))


def _fit(tried: list[tuple[float, float]], power: float) -> tuple[float, float]:
    """(rise, power) of the power law through the last two tries (or the
    last one with the old power)."""
    s1, r1 = tried[-1]
    if len(tried) >= 2:
        s0, r0 = tried[-2]
        if s0 != s1 and r0 > 1e-9 and r1 > 1e-9:
            power = min(3.0, max(0.5, math.log(r1 / r0) / math.log(s1 / s0)))
    return r1 / s1**power, power


def _clip(smooth: float, most: float) -> float:
    low, high = min(PLAN.smooth_range[0], most), min(PLAN.smooth_range[1], most)
    # a few significant bits, so that the same smoothing is recognised
    return float(np.float32(min(high, max(low, smooth))))
