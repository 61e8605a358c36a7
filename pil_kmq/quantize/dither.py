"""Floyd-Steinberg error diffusion onto a fixed codebook.

Dithering trades pointwise error (PSNR) and compressibility for smoother
gradients, so it is off unless asked for. It never changes the codebook:
k-means picks the colours, dithering only picks which one each pixel uses.

L and RGB images go through Pillow's C ditherer (Image.quantize with a
palette). Its nearest-colour search is approximate (a cache of 6-bit
colours), which is acceptable here: a dithered pixel is deliberately not
its nearest colour anyway. Pillow cannot match RGBA colours, so RGBA images
are dithered here in numpy over all four channels, alpha included: a pixel's
alpha error diffuses like its colour error, so soft edges dither like
gradients do. Error diffusion is sequential along a row, but pixel (y, x)
depends only on (y, x-1) and on row y-1 up to x+1, so every pixel on an
anti-diagonal x + 2y = t can be done at once: W + 2H vectorized steps.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def dither(image: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Labels (h, w) uint8 for an (h, w, C) uint8 image dithered onto the
    (K, C) uint8 codebook."""
    if image.shape[2] in (1, 3):
        return _dither_with_pillow(image, codebook)
    return _dither_wavefront(image, codebook)


def _dither_with_pillow(image: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    k = len(codebook)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
        codebook = np.repeat(codebook, 3, axis=1)
    # Pillow matches against all 256 entries: pad with copies of entry 0,
    # so a padded index can only ever stand for entry 0's colour.
    palette = np.repeat(codebook[:1], 256, axis=0)
    palette[:k] = codebook
    palette_image = Image.new("P", (1, 1))
    palette_image.putpalette(palette.tobytes())
    dithered = Image.fromarray(image, "RGB").quantize(
        palette=palette_image, dither=Image.Dither.FLOYDSTEINBERG
    )
    labels = np.asarray(dithered, dtype=np.uint8).copy()
    labels[labels >= k] = 0
    return labels


# Floyd-Steinberg weights: right, below-left, below, below-right.
_RIGHT, _BELOW_LEFT, _BELOW, _BELOW_RIGHT = 7 / 16, 3 / 16, 5 / 16, 1 / 16


def _dither_wavefront(image: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    height, width, _ = image.shape
    work = image.astype(np.float32)
    codebook_values = codebook.astype(np.float32)
    codebook_by_channel = [codebook_values[None, :, c] for c in range(codebook_values.shape[1])]
    labels = np.empty((height, width), dtype=np.uint8)
    all_rows = np.arange(height)
    for front in range(width + 2 * (height - 1)):
        # Rows y with x = front - 2y inside the image.
        first = max(0, (front - width) // 2 + 1)
        last = min(height - 1, front // 2)
        if first > last:
            continue
        ys = all_rows[first : last + 1]
        xs = front - 2 * ys
        values = np.clip(work[ys, xs], 0, 255)
        # Elementwise, not a matrix product: BLAS may add in a different
        # order from run to run, and the output must not change.
        distances = np.zeros((len(ys), len(codebook_values)), dtype=np.float32)
        for channel in range(codebook_values.shape[1]):
            offset = values[:, channel, None] - codebook_by_channel[channel]
            distances += offset * offset
        chosen = distances.argmin(axis=1)
        labels[ys, xs] = chosen
        error = values - codebook_values[chosen]
        right = xs + 1 < width
        work[ys[right], xs[right] + 1] += error[right] * _RIGHT
        below = ys + 1 < height
        below_left = below & (xs > 0)
        work[ys[below_left] + 1, xs[below_left] - 1] += error[below_left] * _BELOW_LEFT
        work[ys[below] + 1, xs[below]] += error[below] * _BELOW
        below_right = below & right
        work[ys[below_right] + 1, xs[below_right] + 1] += error[below_right] * _BELOW_RIGHT
    return labels
