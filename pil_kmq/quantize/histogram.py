"""Histogram: the distinct colours of an image, weighted by how often they occur.

K-means over distinct colours with weights gives the same codebook as over
every pixel, for a fraction of the work: photos repeat colours heavily.
Every step works in slices so that an image whose pixels are all distinct
(2**24 colours) needs a few bytes per pixel, not tens.
"""

from __future__ import annotations

import numpy as np

from . import work

# Elements handled at once by the sliced passes: bounds their temporaries.
SLICE = 1 << 20
# Codes sorted at once (sort_in_runs): a fraction of a second each, so
# that the encoder's progress moves while a large image's codes are sorted.
SORT_RUN = 1 << 21
# Fewest pixels for which labels_for_pixels builds its 16 MiB RGB lookup
# table: making it costs ~0.3 ms whatever the image, and below this a binary
# search is quicker (measured, kodim23 resized: 64x64 0.06 ms against
# 0.33 ms, 80x80 even, 96x96 0.48 against 0.32).
TABLE_MIN_PIXELS = 1 << 13


def pack_codes(pixels: np.ndarray) -> np.ndarray:
    """One uint32 per pixel from its channels (pixels: (N, C) uint8)."""
    codes = pixels[:, 0].astype(np.uint32)
    for channel in range(1, pixels.shape[1]):
        codes <<= np.uint32(8)
        codes |= pixels[:, channel]
    return codes


def unpack_codes(codes: np.ndarray, channels: int) -> np.ndarray:
    """(M, channels) uint8 colours of uint32 codes, a slice at a time."""
    colors = np.empty((len(codes), channels), dtype=np.uint8)
    for start in range(0, len(codes), SLICE):
        part = codes[start : start + SLICE]
        for channel in range(channels):
            shift = np.uint32(8 * (channels - 1 - channel))
            colors[start : start + SLICE, channel] = part >> shift  # wraps to the low byte
    return colors


def distinct_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes in ascending order (uint32) and their counts (uint32);
    sorts `codes` in place.

    A sort then a run-length scan in slices: two passes (count the runs,
    then fill arrays of exactly that size), so nothing but the codes and
    the answer is ever held whole. Several times faster than np.unique or a
    bincount over all 2**24 codes.
    """
    sort_in_runs(codes)
    total = len(codes)
    bounds = [(s, min(s + SLICE, total - 1)) for s in range(0, total - 1, SLICE)]
    run_count = 1 + sum(int(np.count_nonzero(codes[s + 1 : e + 1] != codes[s:e])) for s, e in bounds)
    distinct = np.empty(run_count, dtype=np.uint32)
    # Run starts, then (in place, a slice at a time, front to back) their
    # differences: the counts, without a second array as long as the runs.
    counts = np.empty(run_count + 1, dtype=np.int64 if total >= 1 << 32 else np.uint32)
    distinct[0], counts[0], filled = codes[0], 0, 1
    for s, e in bounds:
        new_run = np.flatnonzero(codes[s + 1 : e + 1] != codes[s:e]) + (s + 1)
        distinct[filled : filled + len(new_run)] = codes[new_run]
        counts[filled : filled + len(new_run)] = new_run
        filled += len(new_run)
    counts[-1] = total
    for s in range(0, run_count, SLICE):
        e = min(s + SLICE, run_count)
        counts[s:e] = counts[s + 1 : e + 1] - counts[s:e]
    counts = counts[:-1]
    return distinct, counts


def sort_runs(count: int) -> int:
    """How many work.done("run") calls sort_in_runs makes for `count` codes."""
    runs = -(-count // SORT_RUN)
    merges = 0
    while runs > 1:
        merges += runs // 2
        runs -= runs // 2
    return -(-count // SORT_RUN) + merges if count > SORT_RUN else 0


def sort_in_runs(codes: np.ndarray) -> None:
    """codes.sort(), in steps of bounded length: runs of SORT_RUN sorted,
    then adjacent runs merged pairwise (a stable sort of two sorted runs is
    timsort's linear merge), each step one work.done("run"). The same
    result as one sort, in about the same time (a little less: runs fit
    the cache)."""
    total = len(codes)
    if total <= SORT_RUN:
        codes.sort()
        return
    for start in range(0, total, SORT_RUN):
        codes[start : start + SORT_RUN].sort()
        work.done("run")
    width = SORT_RUN
    while width < total:
        for start in range(0, total - width, 2 * width):
            codes[start : start + 2 * width].sort(kind="stable")
            work.done("run")
        width *= 2


def histogram(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct colours (M, C) uint8 in ascending code order and their counts
    (M,) uint32. The per-pixel codes are not kept: for a big image they are
    the largest array in the encoder, and recomputing them at the end (see
    labels_for_pixels) costs one cheap pass."""
    distinct, counts = distinct_codes(pack_codes(pixels))
    return unpack_codes(distinct, pixels.shape[1]), counts


def labels_for_pixels(
    colors: np.ndarray, color_labels: np.ndarray, pixels: np.ndarray
) -> np.ndarray:
    """Each pixel's label (N,), given a label (uint8) for each distinct colour."""
    return label_lookup(colors, color_labels, len(pixels))(pixels)


def label_lookup(colors: np.ndarray, color_labels: np.ndarray, pixels: int):
    """pixels (N, C) -> their labels (N,) uint8, given a label for each
    distinct colour; built once, so a stream of blocks shares the table
    (`pixels`: how many will be looked up in all, which decides the table).

    Up to three channels a direct lookup table over every code (16 MiB) is a
    single gather per slice; four-channel codes, and the few pixels of a
    small image (TABLE_MIN_PIXELS), are looked up by binary search in the
    colours' codes (ascending, as histogram returns them).
    """
    channels = colors.shape[1]
    table = None
    if channels == 1 or (channels <= 3 and pixels >= TABLE_MIN_PIXELS):
        table = np.zeros(1 << (8 * channels), dtype=np.uint8)
        for start in range(0, len(colors), SLICE):
            table[pack_codes(colors[start : start + SLICE])] = color_labels[start : start + SLICE]
    else:
        distinct = pack_codes(colors)

    def lookup(pixels: np.ndarray) -> np.ndarray:
        labels = np.empty(len(pixels), dtype=np.uint8)
        for start in range(0, len(pixels), SLICE):
            codes = pack_codes(pixels[start : start + SLICE])
            if table is not None:
                labels[start : start + SLICE] = table[codes]
            else:
                labels[start : start + SLICE] = color_labels[np.searchsorted(distinct, codes)]
            work.done("slice")
        return labels

    return lookup
