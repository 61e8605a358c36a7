"""Rate-distortion remap: give a pixel a neighbour's label instead of its
nearest colour's when that costs little error, so the label map compresses better.

The decoder only looks colours up, so any label is a valid choice. remap()
lowers, by iterated conditional modes (ICM) on a red-black checkerboard,

    E = sum over pixels of |pixel - codebook[label]|^2
        + lam * (number of 4-adjacent pixel pairs with different labels)

starting from the nearest labels. Pixels of one colour of the checkerboard
are never 4-adjacent, so all of them are updated at once, each to its best
candidate given its neighbours; a label changes only when that strictly
lowers E, so E never rises and the result is deterministic.

Candidates are the current label, the nearest one and the 4 neighbours'
labels. No other label can win: one that no neighbour has differs from all
4 neighbours, as the nearest label at worst does, with more error. (So the
second-nearest colour is worth trying only when a neighbour has it.)

The smoothing strength `smooth` is unitless: lam = smooth * the image's
mean squared quantization error per pixel (summed over channels, nearest
labels). Since lam is measured against the error the codebook already
makes, one value costs about the same PSNR at every K: on the Kodak
images smooth = 0.5 costs about 0.1 dB and smooth = 2 about 0.5 dB, at
K = 16 as at 256. smooth = 0 is the nearest-colour labelling unchanged.

A pixel's squared error never exceeds its nearest error + 4 * lam: past
that, its nearest label is better whatever its neighbours (at most 4
disagreements to gain), so such candidates are never taken.

Only pixels whose neighbourhood changed are looked at again (a worklist
of "dirty" pixels), so later passes touch few pixels.
"""

from __future__ import annotations

import numpy as np

# Red-black passes (each updates both colours of the checkerboard once).
PASSES = 3
# Colour value of the padding label outside the image: so far from any
# colour that it is never a candidate.
FAR = 1 << 12
# Pixels updated at once: bounds the temporaries (about 100 bytes each).
CHUNK = 1 << 18


def smoothing_weight(pixels: np.ndarray, codebook: np.ndarray, labels: np.ndarray, smooth: float) -> float:
    """lam for `smooth`: smooth x mean squared error per pixel of `labels`."""
    squared = squared_error(pixels.reshape(-1, pixels.shape[-1]), codebook, labels.ravel())
    return _weight(squared, smooth)


def _weight(squared: np.ndarray, smooth: float) -> float:
    return float(smooth) * float(squared.sum(dtype=np.int64)) / max(1, squared.size)


def squared_error(pixels: np.ndarray, codebook: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-pixel squared error (int32) of pixels (N, C) under labels (N,)."""
    total = np.zeros(len(labels), dtype=np.int32)
    for channel in range(pixels.shape[1]):
        offset = codebook[:, channel].astype(np.int32).take(labels)
        offset -= pixels[:, channel]
        offset *= offset
        total += offset
    return total


def remap(
    pixels: np.ndarray, codebook: np.ndarray, labels: np.ndarray, smooth: float, passes: int = PASSES
) -> np.ndarray:
    """Smoothed labels (h, w) uint8 for pixels (h, w, C) uint8, starting
    from their nearest labels (h, w); see the module docstring."""
    height, width = labels.shape
    if smooth <= 0 or height * width == 0:
        return labels
    channels = codebook.shape[1]
    error = squared_error(pixels.reshape(-1, channels), codebook, labels.ravel())
    lam = _weight(error, smooth)
    if lam <= 0:
        return labels
    state = _Grid(pixels, codebook, labels, error.reshape(height, width), lam)
    for _ in range(passes):
        for colour in (0, 1):
            state.update(colour)
    return state.labels()


def _padded(plane: np.ndarray, fill, dtype) -> np.ndarray:
    """plane with a one-pixel border of `fill`, flattened."""
    out = np.full((plane.shape[0] + 2, plane.shape[1] + 2), fill, dtype=dtype)
    out[1:-1, 1:-1] = plane
    return out.ravel()


class _Grid:
    """The label map padded by one pixel of a label no candidate takes,
    flattened, with per-pixel data and the worklist."""

    def __init__(self, pixels: np.ndarray, codebook: np.ndarray, labels: np.ndarray, error: np.ndarray, lam: float):
        height, width = labels.shape
        self.shape = (height, width)
        self.stride = width + 2
        channels = codebook.shape[1]
        # small types: about 20 bytes a pixel in all
        self.current = _padded(labels, len(codebook), np.int16)
        self.nearest = _padded(labels, 0, np.uint8)
        # codebook columns with a far padding colour (index K)
        far = np.full((1, channels), FAR, dtype=np.int32)
        book = np.concatenate([codebook.astype(np.int32), far])
        self.book = [np.ascontiguousarray(book[:, c]) for c in range(channels)]
        self.pixels = [_padded(pixels[..., c], 0, np.uint8) for c in range(channels)]
        self.lam = np.float32(lam)
        self.nearest_error = _padded(error, 0, np.float32)
        self.current_error = self.nearest_error.copy()
        inside = np.zeros((height + 2, width + 2), dtype=bool)
        inside[1:-1, 1:-1] = True
        self.inside = inside.ravel()
        parity = (np.arange(height + 2, dtype=np.uint8)[:, None] + np.arange(width + 2, dtype=np.uint8)) & 1
        self.colours = [self.inside & (parity.ravel() == 0), self.inside & (parity.ravel() == 1)]
        # a pixel whose 4 neighbours all share its label cannot change
        self.dirty = self.inside & ~self._uniform()

    def _uniform(self) -> np.ndarray:
        flat, s = self.current, self.stride
        same = np.zeros_like(flat, dtype=bool)
        same[s:-s] = (flat[s:-s] == flat[s - 1 : -s - 1]) & (flat[s:-s] == flat[s + 1 : -s + 1])
        same[s:-s] &= (flat[s:-s] == flat[: -2 * s]) & (flat[s:-s] == flat[2 * s :])
        return same

    def update(self, colour: int) -> None:
        """Move every dirty pixel of one checkerboard colour to its best
        candidate (in chunks, which bound memory: pixels of one colour do not
        see each other)."""
        index = np.flatnonzero(self.dirty & self.colours[colour])
        self.dirty[index] = False
        moved = [self._update(index[start : start + CHUNK]) for start in range(0, index.size, CHUNK)]
        for part in moved:
            for step in (-self.stride, self.stride, -1, 1):
                self.dirty[part + step] = True
        self.dirty &= self.inside

    def _update(self, index: np.ndarray) -> np.ndarray:
        """Move the pixels at `index` (flat, one colour); return those that moved."""
        s = self.stride
        flat = self.current
        neighbours = np.stack([flat[index - s], flat[index + s], flat[index - 1], flat[index + 1]]).astype(np.intp)
        error = None
        for book, plane in zip(self.book, self.pixels):
            offset = book.take(neighbours)
            offset -= plane[index]
            offset *= offset
            error = offset if error is None else error + offset
        pairs = {(i, j): neighbours[i] == neighbours[j] for i in range(4) for j in range(i + 1, 4)}
        agree = np.empty((4, index.size), dtype=np.float32)
        for i in range(4):
            agree[i] = 1
            for j in range(4):
                if j != i:
                    agree[i] += pairs[min(i, j), max(i, j)]
        nearest_error = self.nearest_error[index]
        cost = error.astype(np.float32)
        # the most error a pixel may take on (see the module docstring)
        cost[cost > nearest_error + np.float32(4) * self.lam] = np.inf
        cost -= self.lam * agree
        nearest = self.nearest[index]
        current = flat[index]
        nearest_cost = nearest_error - self.lam * (neighbours == nearest).sum(axis=0)
        current_cost = self.current_error[index] - self.lam * (neighbours == current).sum(axis=0)
        best = cost.argmin(axis=0)
        span = np.arange(index.size)
        best_cost = cost[best, span]
        chosen = neighbours[best, span]
        chosen_error = error[best, span]
        # the nearest label wins ties with a neighbour's; the current one every tie
        use_nearest = nearest_cost <= best_cost
        chosen[use_nearest] = nearest[use_nearest]
        best_cost[use_nearest] = nearest_cost[use_nearest]
        changed = (best_cost < current_cost) & (chosen != current)
        moved = index[changed]
        flat[moved] = chosen[changed]
        self.current_error[moved] = np.where(use_nearest, nearest_error, chosen_error)[changed]
        return moved

    def labels(self) -> np.ndarray:
        height, width = self.shape
        grid = self.current.reshape(height + 2, width + 2)[1:-1, 1:-1]
        return grid.astype(np.uint8)
