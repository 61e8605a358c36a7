"""Assignment: every colour gets the index of its exactly nearest centroid.

Squared distances are computed as |x|^2 - 2 x.c + |c|^2 in float32 on
integer colours and integer (rounded) centroids: every term is an integer
below 2**24, so float32 is exact and the result is the true nearest centroid,
ties going to the lowest index, the same on every machine.
"""

from __future__ import annotations

import numpy as np

# Rows of the distance matrix computed at once: bounds memory at
# CHUNK x K x 4 bytes (16 MiB at K=256).
CHUNK = 16384


def nearest(colors: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index (uint8) of the nearest codebook entry for each colour (both uint8)."""
    points = colors.astype(np.float32)
    centres = codebook.astype(np.float32)
    centre_norms = (centres * centres).sum(axis=1)
    labels = np.empty(len(points), dtype=np.uint8)
    for start in range(0, len(points), CHUNK):
        block = points[start : start + CHUNK]
        distances = block @ (-2.0 * centres.T)
        distances += centre_norms
        distances += (block * block).sum(axis=1, keepdims=True)
        labels[start : start + CHUNK] = distances.argmin(axis=1)
    return labels
