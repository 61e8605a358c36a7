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
makes, one value costs roughly the same PSNR at every K: on the Kodak
images smooth = 1 costs 0.24 dB at K = 16 and 0.48 dB at K = 256 (for
optimize=True files 23% and 15% smaller), smooth = 4 0.9 to 1.8 dB (37%
to 28% smaller). smooth = 0 is the nearest-colour labelling unchanged.

A pixel's squared error never exceeds its nearest error + 4 * lam: past
that, its nearest label is better whatever its neighbours (at most 4
disagreements to gain), so such candidates are never taken.

Few pixels are looked at: at first only those where another label can
gain (see _Grid._movable), then only the neighbours of pixels that moved.
"""

from __future__ import annotations

import numpy as np

from .schedule import TARGET_SEARCH
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
    pixels: np.ndarray, codebook: np.ndarray, labels: np.ndarray, smooth: float, passes: int = TARGET_SEARCH.remap_passes
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
    del error  # the grid holds a padded copy
    moved = None
    for _ in range(passes):
        for colour in (0, 1):
            moved = state.update(colour, moved)
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
        far = np.full((1, channels), FAR, dtype=np.float32)
        book = np.concatenate([codebook.astype(np.float32), far])
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
        self.movable = self._movable(len(codebook))
        self.first_look = [True, True]
        self.slot = np.empty(self.current.size, dtype=np.int32)  # scratch for _once

    def _movable(self, padding: int) -> np.ndarray:
        """The pixels that may move while every label is the nearest one.

        No label then has less error than the pixel's own, so another wins
        only with more of the 4 neighbours agreeing: possible only where at
        most one neighbour shares the pixel's label, and, if one does, two of
        the others agree with each other."""
        height, width = self.shape
        grid = self.current.reshape(height + 2, width + 2)
        centre = grid[1:-1, 1:-1]
        around = [grid[:-2, 1:-1], grid[2:, 1:-1], grid[1:-1, :-2], grid[1:-1, 2:]]
        same = sum((other == centre).astype(np.uint8) for other in around)
        pair = np.zeros(centre.shape, dtype=bool)
        for i in range(4):
            for j in range(i + 1, 4):
                pair |= (around[i] == around[j]) & (around[i] != centre) & (around[i] != padding)
        movable = np.zeros(grid.shape, dtype=bool)
        movable[1:-1, 1:-1] = (same == 0) | ((same == 1) & pair)
        return movable.ravel()

    def update(self, colour: int, moved: np.ndarray | None) -> np.ndarray:
        """Move the pixels of one checkerboard colour that may gain to their
        best candidates; return the flat indices of those that moved.

        Looked at: the movable pixels of that colour the first time (moved
        None, or the first pass's other colour), and every neighbour of the
        pixels `moved` by the other colour's last update. Others have seen
        no change around them since they were last at their best. In
        chunks, which bound memory (pixels of one colour do not see each
        other)."""
        if self.first_look[colour]:
            self.first_look[colour] = False
            mask = self.movable & self.colours[colour]
            if moved is not None:
                mask[self._around(moved)] = True
            index = np.flatnonzero(mask)
        else:
            index = self._once(self._around(moved))
        screened = moved is None  # the movable pixels of the first look
        parts = [self._update(index[start : start + CHUNK], screened) for start in range(0, index.size, CHUNK)]
        return np.concatenate(parts) if parts else index[:0]

    def _once(self, index: np.ndarray) -> np.ndarray:
        """index without repeats (in no particular order: pixels of one
        colour are independent), without sorting."""
        self.slot[index] = np.arange(index.size, dtype=np.int32)
        return index[self.slot[index] == np.arange(index.size, dtype=np.int32)]

    def _around(self, moved: np.ndarray) -> np.ndarray:
        """The 4 neighbours of each of `moved` that are in the image."""
        around = (moved[None] + np.array([-self.stride, self.stride, -1, 1])[:, None]).ravel()
        return around[self.inside[around]]

    def _update(self, index: np.ndarray, screened: bool) -> np.ndarray:
        """Move the pixels at `index` (flat, one colour); return those that moved.

        Row by row over the 4 neighbours (contiguous elementwise work, no
        reductions across candidates): a neighbour's label replaces the best
        so far only when strictly cheaper, so ties keep the earlier one.
        Unless `screened`, pixels that cannot move are dropped first."""
        flat, lam = self.current, self.lam
        neighbours = [flat[index + step] for step in (-self.stride, self.stride, -1, 1)]
        current = flat[index]
        nearest = self.nearest[index]
        agree = {(i, j): neighbours[i] == neighbours[j] for i in range(4) for j in range(i + 1, 4)}
        if not screened:
            keep = np.flatnonzero(_may_move(neighbours, agree, current, nearest))
            index, current, nearest = index.take(keep), current.take(keep), nearest.take(keep)
            neighbours = [label.take(keep) for label in neighbours]
            agree = {pair: same.take(keep) for pair, same in agree.items()}
        neighbours = [label.astype(np.intp) for label in neighbours]
        planes = [plane.take(index).astype(np.float32) for plane in self.pixels]
        nearest_error = self.nearest_error.take(index)
        limit = nearest_error + np.float32(4) * lam
        # cost = error - lam * (neighbours agreeing); the nearest label first
        best_cost = nearest_error - lam * _agreeing(neighbours, nearest)
        best_error = nearest_error.copy()
        chosen = nearest.astype(np.intp)
        for i, label in enumerate(neighbours):
            error = None
            for book, plane in zip(self.book, planes):
                offset = book.take(label)
                offset -= plane
                offset *= offset
                error = offset if error is None else error + offset
            others = [agree[min(i, j), max(i, j)] for j in range(4) if j != i]
            cost = error - lam * (np.float32(1) + others[0] + others[1] + others[2])
            better = (cost < best_cost) & (error <= limit)
            np.copyto(best_cost, cost, where=better)
            np.copyto(best_error, error, where=better)
            np.copyto(chosen, label, where=better)
        current_cost = self.current_error.take(index) - lam * _agreeing(neighbours, current)
        changed = (best_cost < current_cost) & (chosen != current)
        moved = index[changed]
        flat[moved] = chosen[changed]
        self.current_error[moved] = best_error[changed]
        return moved

    def labels(self) -> np.ndarray:
        height, width = self.shape
        grid = self.current.reshape(height + 2, width + 2)[1:-1, 1:-1]
        return grid.astype(np.uint8)


def _agreeing(neighbours: list[np.ndarray], label: np.ndarray) -> np.ndarray:
    """How many of the 4 neighbours have `label` (float32)."""
    count = (neighbours[0] == label).astype(np.float32)
    for other in neighbours[1:]:
        count += other == label
    return count


def _may_move(neighbours: list[np.ndarray], agree: dict, current: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """False where no candidate can beat the current label: it is the
    nearest (no candidate has less error) and no other label has more
    neighbours agreeing (see _Grid._movable). agree[i, j]: neighbours i
    and j have the same label."""
    same = (neighbours[0] == current).astype(np.uint8)
    for label in neighbours[1:]:
        same += label == current
    pair = np.zeros(len(current), dtype=bool)
    for (i, _), equal in agree.items():
        pair |= equal & (neighbours[i] != current)
    return (current != nearest) | (same == 0) | ((same == 1) & pair)
