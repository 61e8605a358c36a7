"""Where Lloyd starts: a deterministic variance split (Wu's idea) and
seeded k-means++ starts, since Lloyd only finds the local optimum nearest its
start and at small K the start decides most of the quality."""

from __future__ import annotations

import numpy as np

from .schedule import seed_trials

# Up to this many points (8x8 and 16x16 images) the split sorts them
# (_SortedBoxes) instead of tabling each box's level range (_Boxes): time
# only, the same boxes. A round of the sorted split costs in proportion to
# the points, one of the table to the batch's level ranges: 8x8 and 16x16
# images 0.7-0.9x the k-means time, but 32x32 photos at K=16 (600-1000
# points) 1.35-1.55x the split's time (AMD EPYC, load 4-6).
SORTED_SPLIT_POINTS = 256

def variance_split_start(points: np.ndarray, weights: np.ndarray, k: int, *, fraction: float) -> np.ndarray:
    """Initial centres by greedy variance splitting (Wu's idea, on the points).

    Start with one box holding every colour; repeatedly take the boxes with
    the largest weighted squared error and cut each across the axis and
    level that remove the most error. The k box means start Lloyd near a
    good optimum, deterministically. Each round splits the worst
    `fraction` of the boxes together, with one bincount for all of
    them, so the Python loop runs tens of times rather than k times; on
    photos this picks the same boxes as splitting one at a time.
    """
    if len(points) <= SORTED_SPLIT_POINTS:
        boxes = _SortedBoxes(points, weights)
        if boxes.exact:
            return split_boxes(boxes, k, fraction)
    return split_boxes(_Boxes(points, weights), k, fraction)


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
    weighted sums, weighted sum of squares) and level range (inclusive; may
    be loose after splits on other axes: cut tables need only span it)."""

    def __init__(self, points: np.ndarray, weights: np.ndarray):
        self.channels = points.shape[1]
        self.levels = np.clip(points, 0, 255).astype(np.intp)
        self.moments = moments(points, weights)
        self.box_of_point = np.zeros(len(points), dtype=np.intp)
        self.box_moments = self.moments.sum(axis=0, keepdims=True)
        self.box_low = self.levels.min(axis=0, keepdims=True)
        self.box_high = self.levels.max(axis=0, keepdims=True)
        self.splittable = np.ones(1, dtype=bool)
        # RGBA only: on photos the ranges are near tight already (64x64 and
        # 256x256 kodim23: no gain), on icons the split takes a third of
        # the time (256x256, K=256: 17 -> 6 ms).
        self.tight = self.channels >= 4 and _sums_exact(points, weights, self.box_moments[0, -1])
        if self.tight:
            self.level_columns = [np.ascontiguousarray(self.levels[:, c]) for c in range(self.channels)]

    @property
    def count(self) -> int:
        return len(self.box_moments)

    def means(self) -> np.ndarray:
        return self.box_moments[:, 1 : 1 + self.channels] / self.box_moments[:, :1]

    def worst(self, size: int) -> np.ndarray:
        """Up to `size` splittable boxes with the largest squared error."""
        sums = self.box_moments[:, 1 : 1 + self.channels]
        errors = self.box_moments[:, -1] - (sums * sums).sum(axis=1) / self.box_moments[:, 0]
        errors[~self.splittable] = -np.inf
        candidates = np.flatnonzero(errors > 0)
        return candidates[np.argsort(-errors[candidates], kind="stable")][:size]

    def split(self, batch: np.ndarray) -> None:
        """Cut every box of the batch at its best cut; boxes with none are
        marked unsplittable."""
        slot_of_box = np.full(self.count, -1)
        slot_of_box[batch] = np.arange(len(batch))
        slots = slot_of_box[self.box_of_point]
        chosen = np.flatnonzero(slots >= 0)
        low, high = self.box_low[batch], self.box_high[batch]
        best, lower = _best_cuts(
            self.levels[chosen], self.moments[chosen], slots[chosen], low, high, totals=self.box_moments[batch]
        )
        can_split = best[:, 1] >= 0
        self.splittable[batch[~can_split]] = False
        batch, lower, best, low = batch[can_split], lower[can_split], best[can_split], low[can_split]
        if batch.size:
            self._cut(batch, chosen, best[:, 0], best[:, 1] + low[np.arange(len(batch)), best[:, 0]], lower)

    def _cut(self, batch, chosen, axes, cuts, lower) -> None:
        """Points above their box's cut (an absolute level) move to a new box."""
        new_ids = np.full(self.count, -1)
        new_ids[batch] = self.count + np.arange(len(batch))
        axis_of_box = np.zeros(self.count, dtype=np.intp)
        cut_of_box = np.full(self.count, 256)
        axis_of_box[batch] = axes
        cut_of_box[batch] = cuts
        boxes = self.box_of_point[chosen]
        moves = self.levels.ravel()[chosen * self.channels + axis_of_box[boxes]] > cut_of_box[boxes]
        self.box_of_point[chosen[moves]] = new_ids[boxes[moves]]
        upper = self.box_moments[batch] - lower
        self.box_moments[batch] = lower
        self.box_moments = np.concatenate([self.box_moments, upper])
        upper_low = self.box_low[batch].copy()
        upper_low[np.arange(len(batch)), axes] = cuts + 1
        upper_high = self.box_high[batch].copy()
        self.box_high[batch, axes] = cuts
        self.box_low = np.concatenate([self.box_low, upper_low])
        self.box_high = np.concatenate([self.box_high, upper_high])
        self.splittable = np.concatenate([self.splittable, np.ones(len(batch), dtype=bool)])
        if self.tight:
            self._tighten(np.concatenate([batch, new_ids[batch]]), chosen)

    def _tighten(self, boxes, chosen) -> None:
        """Each of `boxes`' level range shrunk to its points' (all among
        `chosen`): the cut tables then skip levels no point holds (an RGBA
        box's alpha range stays 0..255 through cuts on the colours)."""
        owners = self.box_of_point[chosen]
        for channel, column in enumerate(self.level_columns):
            low = np.full(self.count, 255, dtype=np.intp)
            high = np.zeros(self.count, dtype=np.intp)
            np.minimum.at(low, owners, column[chosen])
            np.maximum.at(high, owners, column[chosen])
            self.box_low[boxes, channel] = low[boxes]
            self.box_high[boxes, channel] = high[boxes]


class _SortedBoxes(_Boxes):
    """The split's state for few points (see SORTED_SPLIT_POINTS): the
    points in one order per axis, each box a contiguous range (the same
    range in every order) within which they rise by that axis's level.
    A round then finds every box's best cut with cumulative sums along the
    orders, and splits ranges by a stable partition, in a constant number
    of whole-array calls whatever K is: no table over each box's level
    range, no sort after the first. The cuts are _Boxes' exactly: a cut
    between two levels a box holds gains what _Boxes' cut at the lower
    level gains, every sum is exact (checked: _sums_exact), so the values
    are equal, and the first best in (axis, level) order is the first best
    of _Boxes' table."""

    def __init__(self, points: np.ndarray, weights: np.ndarray):
        channels, size = points.shape[1], len(points)
        self.channels = channels
        self.levels = np.clip(points, 0, 255).astype(np.intp)
        self.moments = moments(points, weights)
        self.box_of_point = np.zeros(size, dtype=np.intp)
        self.box_moments = self.moments.sum(axis=0, keepdims=True)
        self.splittable = np.ones(1, dtype=bool)
        self.exact = _sums_exact(points, weights, self.box_moments.sum())
        # Flat (axis, position) entries: the point there, in order of each
        # axis's level within each box; each box's first position.
        self.order = np.argsort(self.levels.T, axis=1, kind="stable").ravel()
        self.axis_base = np.repeat(np.arange(channels) * size, size)
        self.level_entries = self.levels.T.ravel()
        self.moment_rows = np.ascontiguousarray(self.moments.T)
        self.moment_base = (np.arange(len(self.moment_rows)) * channels * size)[:, None]
        self.box_start = np.zeros(1, dtype=np.intp)
        self.box_size = np.array([size])
        self.entry_index = np.arange(channels * size)
        self.point_rows = np.arange(0, size * channels, channels)

    def split(self, batch: np.ndarray) -> None:
        channels, size, count = self.channels, len(self.levels), self.count
        order, entries = self.order, channels * size
        box_at = self.box_of_point[order]  # the same ranges along every axis
        sorted_levels = self.level_entries[order + self.axis_base]
        # Sums at or below each entry within its (moment, axis, box) range:
        # one running sum over all of them less its value before the range
        # (every sum exact, the grand total too: the values per range).
        width = len(self.moment_rows)
        running = np.empty(width * entries + 1)
        running[0] = 0.0
        np.cumsum(self.moment_rows[:, order], out=running[1:])
        range_start = self.axis_base + self.box_start[box_at]
        # Sums at or below each cut (left) and above it (right), side by side.
        sides = np.empty((width, 2 * entries))
        left, right = sides[:, :entries], sides[:, entries:]
        np.subtract(running[1:].reshape(width, entries), running[range_start + self.moment_base], out=left)
        np.subtract(self.box_moments.T[:, box_at], left, out=right)
        with np.errstate(divide="ignore", invalid="ignore"):
            spreads = _spread(sides, channels)
        gain = spreads[:entries] + spreads[entries:]
        # A cut lies after the last entry of a level (the last of a range
        # leaves nothing above), in a batch box.
        in_batch = np.zeros(count, dtype=bool)
        in_batch[batch] = True
        cut_here = in_batch[box_at]
        cut_here[:-1] &= sorted_levels[1:] != sorted_levels[:-1]
        gain[~cut_here | (left[0] <= 0) | (right[0] <= 0)] = -np.inf
        by_position = np.argsort(self.box_start)  # ranges in entry order, for reduceat
        range_starts = (self.box_start[by_position] + np.arange(0, entries, size)[:, None]).ravel()
        top = np.empty(count)
        top[by_position] = np.maximum.reduceat(gain, range_starts).reshape(channels, count).max(axis=0)
        # First best entry of each box in (axis, level) order: entry order.
        ranked = np.where(gain == top[box_at], self.entry_index, entries)
        first = np.empty(count, dtype=np.intp)
        first[by_position] = np.minimum.reduceat(ranked, range_starts).reshape(channels, count).min(axis=0)
        top, first = top[batch], first[batch]
        can_split = np.isfinite(top)
        self.splittable[batch[~can_split]] = False
        if can_split.any():
            batch, first = batch[can_split], first[can_split]
            lower_sizes = first - range_start[first] + 1
            self._cut(batch, first // size, sorted_levels[first], left[:, first].T, lower_sizes)

    def _cut(self, batch, axes, cuts, lower, lower_sizes) -> None:
        """Points above their box's cut (a level) move to a new box, its
        range the upper part of the old one's (a stable partition of every
        axis's order)."""
        count, channels, size = self.count, self.channels, len(self.levels)
        axis_of_box = np.zeros(count, dtype=np.intp)
        cut_of_box = np.full(count, 256)
        axis_of_box[batch] = axes
        cut_of_box[batch] = cuts
        boxes = self.box_of_point
        moves = self.levels.ravel()[self.point_rows + axis_of_box[boxes]] > cut_of_box[boxes]
        moved_id = np.full(count, -1)
        moved_id[batch] = count + np.arange(len(batch))
        self.box_of_point = np.where(moves, moved_id[boxes], boxes)
        # Destinations: the lower points first, then the upper, each in order.
        lower_size = self.box_size.copy()
        lower_size[batch] = lower_sizes
        flags = moves[self.order]
        box_at = boxes[self.order]
        uppers_before = np.cumsum(flags) - flags
        range_start = self.axis_base + self.box_start[box_at]
        uppers_before -= uppers_before[range_start]
        below = self.entry_index - range_start - uppers_before
        destination = range_start + np.where(flags, lower_size[box_at] + uppers_before, below)
        order = np.empty_like(self.order)
        order[destination] = self.order
        self.order = order
        self.box_start = np.concatenate([self.box_start, self.box_start[batch] + lower_sizes])
        self.box_size = np.concatenate([lower_size, self.box_size[batch] - lower_sizes])
        upper = self.box_moments[batch] - lower
        self.box_moments[batch] = lower
        self.box_moments = np.concatenate([self.box_moments, upper])
        self.splittable = np.concatenate([self.splittable, np.ones(len(batch), dtype=bool)])


def _sums_exact(points: np.ndarray, weights: np.ndarray, square_total: float) -> bool:
    """Whether every sum of moments is exact in float64 (points on the grid
    of 1/1024, integer weights, squares below 2**33; integer points below
    2**53): then the cut tables' layout cannot change a value, so their
    level ranges may be tightened without changing the split."""
    scaled = points * 1024.0
    if not (np.array_equal(scaled, np.floor(scaled)) and np.array_equal(weights, np.floor(weights))):
        return False
    whole = np.array_equal(points, np.floor(points))
    return square_total < (2.0**53 if whole else 2.0**33)


def _best_cuts(levels, moments, slots, low, high, *, totals):
    """For each box of a batch, the cut (axis, level above its low end; -1
    if none leaves points on both sides) that removes the most error, and
    the moments at or below it.

    One table of moments by (box, axis, level), each box and axis only as
    long as its own level range: cumulative sums along it give the moments
    at or below every cut of every axis of every box at once. The table is
    (moment, entry): each moment's row is contiguous for bincount and cumsum."""
    count, channels = low.shape
    lengths = (high - low + 1).ravel()  # (box, axis) segments
    starts = np.cumsum(lengths) - lengths
    # One gather of each point's (box, axis) offsets.
    positions = ((starts.reshape(count, channels) - low)[slots] + levels).ravel()
    size = int(lengths.sum())
    width = moments.shape[1]
    # One bincount for every moment: entry (moment, position) gathers its
    # points in the same order as a bincount per moment would.
    index = (positions + size * np.arange(width)[:, None]).ravel()
    table = np.bincount(index, np.repeat(moments.T, channels, axis=1).ravel(), minlength=width * size)
    # Cumulative along each segment: a running sum less its value where the
    # segment starts (weights and weighted sums are exact either way).
    table = np.cumsum(table.reshape(width, size), axis=1)
    before = np.concatenate([np.zeros((width, 1)), table], axis=1)[:, starts]
    left = table - np.repeat(before, lengths, axis=1)
    box_lengths = lengths.reshape(count, channels).sum(axis=1)
    right = np.repeat(totals.T, box_lengths, axis=1) - left
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = _spread(left, channels) + _spread(right, channels)
    gain[(left[0] <= 0) | (right[0] <= 0)] = -np.inf
    # First best entry of each box, as argmax over (axis, level) would pick.
    box_starts = starts[::channels]
    top = np.maximum.reduceat(gain, box_starts)
    entries = np.arange(size)
    first = np.minimum.reduceat(np.where(gain == np.repeat(top, box_lengths), entries, size), box_starts)
    first = np.minimum(first, size - 1)  # a box with no cut at all (gain nan): any entry, cut -1 below
    segment = np.searchsorted(starts, first, side="right") - 1
    axes = segment % channels
    cuts = np.where(np.isfinite(top), first - starts[segment], -1)
    return np.column_stack([axes, cuts]), left[:, first].T


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
