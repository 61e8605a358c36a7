"""Exact nearest centres by keys: a squared distance and a row number in one
float64, so that a minimum down the columns of a (K, n) matrix (fast in
numpy, unlike argmin along short rows) gives the nearest entry, ties to
the lowest index, exactly and the same on every machine."""

from __future__ import annotations

import numpy as np

# Squared distances between colours and centres on the 1/1024 grid (both in
# 0..255, up to 4 channels) are multiples of 2**-20 below 2**18: scaled by 2**28 and plus a row index
# below 256, each (distance, row) pair is one exact float64 key, and the
# least key is the nearest row, ties to the lowest. A minimum down the
# columns of a (K, n) matrix is far faster in numpy than argmin along rows.
KEY_SCALE = 2.0**28
KEY_ROWS = 256
# Entries of a key matrix computed at once. Small enough that OpenBLAS runs
# the product on the calling thread: its thread start-up costs more than
# the work for these thin (inner dimension C) products, and a busy machine
# makes it far worse. 64K float64 entries also stay in cache.
CHUNK_ENTRIES = 1 << 16


def squared_norms(points: np.ndarray) -> np.ndarray:
    """|x|^2 of each row of (n, C) points, by einsum: summing short rows
    with .sum(axis=1) is numpy's slow path (3441 RGB colours: 160 us
    against 15). Exact on the 1/1024 grid either way, so the same values."""
    return np.einsum("ij,ij->i", points, points)


def row_numbers(count: int) -> np.ndarray:
    return np.arange(count, dtype=np.float64)[:, None]


def nearest_two(keys: np.ndarray):
    """(row of the least, least, second least squared distance) of each
    column of a (W, n) matrix of keys (W <= 256); second least inf when W
    is 1. Overwrites `keys`."""
    first = keys.min(axis=0)
    nearest = first.astype(np.int64) & (KEY_ROWS - 1)
    best = (first - nearest) / KEY_SCALE
    if len(keys) == 1:
        return nearest, best, np.full(len(first), np.inf)
    keys[nearest, np.arange(keys.shape[1])] = np.inf
    second = np.floor(keys.min(axis=0) / KEY_ROWS) * (KEY_ROWS / KEY_SCALE)
    return nearest, best, second


class BruteForceSearch:
    """Exact nearest centre by one product of matrices: for small point sets
    (the short path, restarts on wide bins), where bookkeeping costs more
    than distances.

    The key of (centre j, point x) is S (|c_j|^2 - 2 x.c_j) + j: the squared
    distance less |x|^2, which is the same for every centre of a column and
    so cannot change its least. One product of the points with a column of
    ones appended, (C + 1, n), by the centres with their key terms appended,
    (K, C + 1), gives every key: no pass over the matrix besides the
    minimum (2-4x quicker than adding the terms after: 1000 colours x 256
    centres 0.17 ms against 0.78). Every term is a multiple of 2**8 below
    2**48 on the grid, so the sum is exact in any order BLAS adds it, and a
    key, even negative, is an integer whose low 8 bits are the row."""

    def __init__(self, points: np.ndarray):
        self.points = points
        self.order = np.arange(len(points))
        self.augmented = np.ones((points.shape[1] + 1, len(points)))
        self.augmented[:-1] = points.T

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        terms = np.empty((len(centres), centres.shape[1] + 1))
        np.multiply(centres, -2.0 * KEY_SCALE, out=terms[:, :-1])
        terms[:, -1] = KEY_SCALE * (centres * centres).sum(axis=1) + np.arange(len(centres))
        count = self.augmented.shape[1]
        step = max(1, CHUNK_ENTRIES // len(centres))
        if count <= step:
            return (terms @ self.augmented).min(axis=0).astype(np.int64) & (KEY_ROWS - 1)
        labels = np.empty(count, dtype=np.int64)
        for start in range(0, count, step):
            keys = terms @ self.augmented[:, start : start + step]
            labels[start : start + step] = keys.min(axis=0).astype(np.int64) & (KEY_ROWS - 1)
        return labels
