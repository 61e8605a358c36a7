"""Where Lloyd starts: a deterministic variance split (Wu's idea) and
seeded k-means++ starts, since Lloyd only finds the local optimum nearest its
start and at small K the start decides most of the quality."""

from __future__ import annotations

import numpy as np

from .schedule import seed_trials


def variance_split_start(points: np.ndarray, weights: np.ndarray, k: int, *, fraction: float) -> np.ndarray:
    """Initial centres by greedy variance splitting (Wu's idea, on the points).

    Start with one box holding every colour; repeatedly take the boxes with
    the largest weighted squared error and cut each across the axis and
    level that remove the most error. The k box means start Lloyd near a
    good optimum, deterministically. Each round splits the worst
    `fraction` of the boxes together, with one sort (or table) for all of
    them (best_cuts), so the Python loop runs tens of times rather than k
    times; on photos this picks the same boxes as splitting one at a time
    (RGBA icons gain from smaller fractions: see Schedule.split_fraction).
    """
    return split_boxes(_Boxes(points, weights, k), k, fraction)


def split_boxes(boxes: _Boxes, k: int, fraction: float) -> np.ndarray:
    """variance_split_start's rounds on given boxes: their k means."""
    while boxes.count < k:
        batch = boxes.worst(min(k - boxes.count, max(1, int(boxes.count * fraction))))
        if batch.size == 0:
            break
        boxes.split(batch)
    return boxes.means()


def moments(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each point's (w, w x, w |x|^2): summed over a box or cluster, its
    weight, mean and squared error."""
    return np.column_stack([weights, points * weights[:, None], weights * (points * points).sum(axis=1)])


class _Boxes:
    """The split's state: each point's box, and each box's moments (weight,
    weighted sums, weighted sum of squares) and squared error (-inf once it
    has no cut), in rows for up to `capacity` boxes: a round writes its new
    boxes in place, in a fixed number of numpy calls whatever the batch
    (the rounds are few and, on the short path, the points too: there the
    calls, not the arithmetic, are the cost)."""

    def __init__(self, points: np.ndarray, weights: np.ndarray, capacity: int):
        self.channels = points.shape[1]
        self.levels = np.clip(points, 0, 255).astype(np.intp)
        self.level_keys = level_keys(self.levels)
        point_moments = moments(points, weights)
        self.moment_rows = np.ascontiguousarray(point_moments.T)  # gathers by column: take
        self.box_of_point = np.zeros(len(points), dtype=np.intp)
        self.box_moments = np.zeros((max(capacity, 1), point_moments.shape[1]))
        self.box_moments[0] = point_moments.sum(axis=0)
        self.errors = np.full(len(self.box_moments), -np.inf)
        self.errors[:1] = _errors(self.box_moments[:1], self.channels)
        self.count = 1

    def means(self) -> np.ndarray:
        used = self.box_moments[: self.count]
        return used[:, 1 : 1 + self.channels] / used[:, :1]

    def worst(self, size: int) -> np.ndarray:
        """Up to `size` splittable boxes with the largest squared error
        (ties to the lowest box)."""
        errors = self.errors[: self.count]
        order = (-errors).argsort(kind="stable")[:size]
        return order[errors[order] > 0]

    def split(self, batch: np.ndarray) -> None:
        """Cut every box of the batch at its best cut (each one's upper side
        a new box, numbered in batch order); boxes with none are marked
        unsplittable."""
        channels, count = self.channels, self.count
        slot_of_box = np.empty(count, dtype=np.intp)
        slot_of_box.fill(-1)
        slot_of_box[batch] = np.arange(len(batch))
        slots = slot_of_box[self.box_of_point]
        chosen = (slots >= 0).nonzero()[0]
        slots = slots[chosen]
        keys = boxed_keys(self.level_keys[chosen], slots)
        rows = self.moment_rows.take(chosen, axis=1)
        axes, cuts, lower = best_cuts(keys, rows, slots, self.box_moments[batch])
        can_split = cuts >= 0
        if not can_split.all():
            self.errors[batch[~can_split]] = -np.inf
            if not can_split.any():
                return
            cuts = np.where(can_split, cuts, 256)  # no point of theirs moves
            batch, lower = batch[can_split], lower[can_split]
        # Points above their box's cut move to its new box.
        new_ids = count - 1 + can_split.cumsum()
        moves = self.levels.ravel()[chosen * channels + axes[slots]] > cuts[slots]
        self.box_of_point[chosen[moves]] = new_ids[slots[moves]]
        changed = np.concatenate([batch, np.arange(count, count + len(batch))])
        self.count = count + len(batch)
        self.box_moments[changed] = np.concatenate([lower, self.box_moments[batch] - lower])
        self.errors[changed] = _errors(self.box_moments[changed], channels)


def _errors(box_moments: np.ndarray, channels: int) -> np.ndarray:
    """Each box's weighted squared error about its mean."""
    sums = box_moments[:, 1 : 1 + channels]
    return box_moments[:, -1] - (sums * sums).sum(axis=1) / box_moments[:, 0]


def level_keys(levels: np.ndarray) -> np.ndarray:
    """Each point's (axis, level) part of best_cuts' keys, axis x 256 +
    level on each axis (levels: (n, C) integers 0..255)."""
    return np.arange(levels.shape[1]) << 8 | levels


def boxed_keys(point_keys: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """best_cuts' keys from level_keys and each point's box in the batch."""
    return point_keys + (slots * (point_keys.shape[1] << 8))[:, None]


def best_cuts(keys, rows, slots, totals):
    """For each box of a batch (slots: each point's box, each holding some;
    keys: each point's (box, axis, level) entry on each axis, (box x
    channels + axis) x 256 + level; rows: the points' moments, a row per
    moment; totals: each box's moments), the best cut's axis and level
    (points at or below it on one side; -1 if no cut leaves points on both
    sides) and the moments at or below it.

    The entries in order (one sort): cumulative sums along each (box, axis)
    give the moments at or below every cut of every axis of every box at
    once, the work in proportion to the points, not to the boxes' level
    ranges. A cut after the last entry of a level; the first best in
    (axis, level) order, as a table over every level would pick (the
    levels between two held ones leave the same sides)."""
    channels, boxes = keys.shape[1], len(totals)
    keys = keys.ravel()
    if boxes * 256 <= len(slots):
        return _table_cuts(keys, rows, totals)
    order = _key_order(keys, boxes * channels)
    keys = keys[order]
    size = len(keys)
    # Moments of each entry in order; a running sum after a zero.
    width = len(rows)
    running = np.zeros((width, size + 1))
    rows.take(order // channels, axis=1).cumsum(axis=1, out=running[:, 1:])
    # Each box holds the same number of entries on each axis.
    per_box = np.bincount(slots, minlength=boxes) * channels
    lengths = (per_box // channels).repeat(channels)
    ends = lengths.cumsum()
    starts = ends - lengths
    # Moments at or below each entry (left) and above it (right), side by
    # side: within its (box, axis), the running sum less its value before.
    sides = np.empty((width, 2 * size))
    left, right = sides[:, :size], sides[:, size:]
    np.subtract(running[:, 1:], running.take(starts, axis=1).repeat(lengths, axis=1), out=left)
    np.subtract(totals.T.repeat(per_box, axis=1), left, out=right)
    with np.errstate(divide="ignore", invalid="ignore"):
        spreads = _spread(sides, channels)
    gain = spreads[:size] + spreads[size:]
    # Not a cut: within a level, or after the last entry (nothing above;
    # weights are positive, so something is always at or below).
    gain[:-1][keys[1:] == keys[:-1]] = -np.inf
    gain[ends - 1] = -np.inf
    box_starts = starts[::channels]
    top = np.maximum.reduceat(gain, box_starts)
    first = np.minimum.reduceat(np.where(gain == top.repeat(per_box), np.arange(size), size), box_starts)
    chosen = keys[first]
    cuts = np.where(np.isfinite(top), chosen & 255, -1)
    return (chosen >> 8) % channels, cuts, left.take(first, axis=1).T


def _key_order(keys: np.ndarray, segments: int) -> np.ndarray:
    """The stable order of (segment << 8 | level) keys: numpy sorts 8- and
    16-bit keys stably by radix, 2-3x quicker than 64-bit ones (3000 keys:
    22 against 46 us; 48000 in two passes, by level then segment: 1.2
    against 3.7 ms)."""
    if segments > 1 << 16:
        return keys.argsort(kind="stable")
    if segments <= 256:
        return keys.astype(np.uint16).argsort(kind="stable")
    by_level = keys.astype(np.uint8).argsort(kind="stable")
    return by_level[(keys[by_level] >> 8).astype(np.uint16).argsort(kind="stable")]


def _table_cuts(keys, rows, totals):
    """best_cuts from a table over every (box, axis, level) (keys: each point's
    entry on each axis): for few boxes of many points (the first rounds),
    where the table is smaller than the points' entries and needs no sort."""
    boxes, width = len(totals), len(rows)
    channels = len(keys) // rows.shape[1]
    size = boxes * channels * 256
    index = (keys + size * np.arange(width)[:, None]).ravel()
    table = np.bincount(index, np.repeat(rows, channels, axis=1).ravel(), minlength=width * size)
    sides = np.empty((width, 2, boxes * channels, 256))
    np.cumsum(table.reshape(width, boxes * channels, 256), axis=2, out=sides[:, 0])
    np.subtract(totals.T[:, :, None, None], sides[:, 0].reshape(width, boxes, channels, 256),
                out=sides[:, 1].reshape(width, boxes, channels, 256))
    with np.errstate(divide="ignore", invalid="ignore"):
        spreads = _spread(sides.reshape(width, -1), channels).reshape(2, boxes, channels * 256)
    gain = spreads[0] + spreads[1]
    gain[(sides[0] <= 0).reshape(2, boxes, channels * 256).any(axis=0)] = -np.inf
    first = np.argmax(gain, axis=1)  # the first best in (axis, level) order
    cuts = np.where(np.isfinite(gain[np.arange(boxes), first]), first % 256, -1)
    lower = sides[:, 0].reshape(width, boxes, channels * 256)[:, np.arange(boxes), first].T
    return first // 256, cuts, lower


def _spread(part, channels):
    """|S|^2 / W of each column of (moment, entry) moments, the squares
    added channel by channel (the order a sum along a row of 3 takes)."""
    squares = part[1] * part[1]
    for channel in range(2, 1 + channels):
        squares += part[channel] * part[channel]
    return squares / part[0]


def kmeans_plus_plus(points: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Greedy k-means++ (several candidates per step, the best kept), on a
    fixed seed: the result is the same on every run and machine (the
    arithmetic is sequential numpy, no BLAS). Distances go channel by
    channel over contiguous columns: an (n, C) array broadcast against the
    candidates costs several times more for C = 3, and on the grid every
    term is exact, so the sums are the same in any order."""
    rng = np.random.default_rng(seed)
    trials = seed_trials(k)
    total = weights.sum()
    columns = [np.ascontiguousarray(points[:, c]) for c in range(points.shape[1])]
    first = int(np.searchsorted(np.cumsum(weights), rng.random() * total))
    chosen = [min(first, len(points) - 1)]
    closest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        potential = np.cumsum(weights * closest)
        picks = np.searchsorted(potential, rng.random(trials) * potential[-1])
        picks = np.minimum(picks, len(points) - 1)
        distances = np.zeros((trials, len(points)))
        for column in columns:
            offsets = column[None, :] - column[picks][:, None]
            offsets *= offsets
            distances += offsets
        np.minimum(distances, closest, out=distances)
        # A plain numpy sum, not BLAS: the same order on any thread count.
        best = int(np.argmin((distances * weights).sum(axis=1)))
        closest = distances[best]
        chosen.append(int(picks[best]))
    return points[chosen].copy()
