"""Label map pieces: how decoders hand labels on in bounded blocks.

A decoder never holds more than PIECE_LABELS labels at a time, whatever the
image size; each piece goes to a `sink(x0, y0, block)` that gets a 2-D uint8
block of labels (rows, columns) with its top-left corner in the label map.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .container import KmqFormatError

# Labels per piece: 256 Ki (about 1 MB once looked up as 32-bit pixels).
PIECE_LABELS = 1 << 18

Sink = Callable[[int, int, np.ndarray], None]
# read_at(offset, size) -> at most `size` bytes of the file from `offset`.
ReadAt = Callable[[int, int], bytes]


def check_labels(labels: np.ndarray, k: int) -> None:
    if k < 256 and labels.size and int(labels.max()) >= k:
        raise KmqFormatError(f"label {int(labels.max())} >= K={k}")


def write_linear(sink: Sink, flat: np.ndarray, first: int, width: int, top: int = 0) -> None:
    """Hand on `flat`, the labels first, first+1, ... of a row-major run
    starting at row `top`: a partial row, whole rows, a partial row."""
    y, x = divmod(first, width)
    y += top
    n, pos = flat.size, 0
    if x:
        m = min(width - x, n)
        sink(x, y, flat[:m].reshape(1, m))
        pos, y = m, y + 1
    rows = (n - pos) // width
    if rows:
        sink(0, y, flat[pos : pos + rows * width].reshape(rows, width))
        pos, y = pos + rows * width, y + rows
    if pos < n:
        sink(0, y, flat[pos:].reshape(1, n - pos))
