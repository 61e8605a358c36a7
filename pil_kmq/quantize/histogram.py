"""Histogram: the distinct colours of an image, weighted by how often they occur.

K-means over distinct colours with weights gives the same centroids as over
every pixel, for a fraction of the work: photos repeat colours heavily.
"""

from __future__ import annotations

import numpy as np


def pack_codes(pixels: np.ndarray) -> np.ndarray:
    """One integer per pixel from its channels (pixels: (N, C) uint8)."""
    codes = pixels[:, 0].astype(np.uint32)
    for channel in range(1, pixels.shape[1]):
        codes <<= np.uint32(8)
        codes |= pixels[:, channel]
    return codes


def unpack_codes(codes: np.ndarray, channels: int) -> np.ndarray:
    shifts = np.arange(channels - 1, -1, -1, dtype=np.uint32) * np.uint32(8)
    return ((codes[:, None] >> shifts) & np.uint32(255)).astype(np.uint8)


def distinct_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes in ascending order and their counts; sorts `codes` in
    place.

    A sort then run-length scan: no memory beyond the codes, and several
    times faster than np.unique(return_inverse=True) or a bincount over all
    2**24 codes, which must allocate and scan 128 MiB whatever the image
    size (and, for uint32 input, a 64-bit copy of the codes). On a
    24-megapixel image the two take about the same time.
    """
    codes.sort()
    ordered = codes
    starts_run = np.empty(len(ordered), dtype=bool)
    starts_run[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_run[1:])
    starts = np.flatnonzero(starts_run)
    del starts_run
    counts = np.diff(starts, append=len(ordered))
    return ordered[starts], counts


def histogram(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct colours (M, C) uint8 in ascending code order and their counts
    (M,). The per-pixel codes are not kept: for a big image they are the
    largest array in the encoder, and recomputing them at the end (see
    labels_for_pixels) costs one cheap pass."""
    distinct, counts = distinct_codes(pack_codes(pixels))
    return unpack_codes(distinct, pixels.shape[1]), counts


def labels_for_pixels(
    colors: np.ndarray, color_labels: np.ndarray, pixels: np.ndarray
) -> np.ndarray:
    """Each pixel's label (N,), given a label (uint8) for each distinct colour.

    Up to three channels a direct lookup table over every code (16 MiB) is a
    single gather; four-channel codes are looked up by binary search.
    """
    channels = colors.shape[1]
    codes = pack_codes(pixels)
    distinct = pack_codes(colors)
    if channels <= 3:
        table = np.zeros(1 << (8 * channels), dtype=np.uint8)
        table[distinct] = color_labels
        return table[codes]
    return color_labels[np.searchsorted(distinct, codes)]
