"""Where Lloyd starts: a deterministic variance split (Wu's idea) and
seeded k-means++ starts, since Lloyd only finds the local optimum nearest its
start and at small K the start decides most of the quality."""

from __future__ import annotations

import numpy as np

# Share of the boxes split together in each round of the split start.
SPLIT_FRACTION = 0.5


def variance_split_start(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Initial centres by greedy variance splitting (Wu's idea, on the points).

    Start with one box holding every colour; repeatedly take the boxes with
    the largest weighted squared error and cut each across the axis and
    level that remove the most error. The k box means start Lloyd near a
    good optimum, deterministically. Each round splits the worst
    SPLIT_FRACTION of the boxes together, with one bincount for all of
    them, so the Python loop runs tens of times rather than k times; on
    photos this picks the same boxes as splitting one at a time.
    """
    channels = points.shape[1]
    levels = np.clip(points, 0, 255).astype(np.intp)
    moments = np.column_stack(
        [weights, points * weights[:, None], weights * (points * points).sum(axis=1)]
    )
    width = moments.shape[1]
    box_of_point = np.zeros(len(points), dtype=np.intp)
    box_moments = moments.sum(axis=0, keepdims=True)
    # Level ranges of each box (inclusive; may be loose after splits on
    # other axes): cut tables only need to span the widest box of a round.
    box_low = levels.min(axis=0, keepdims=True)
    box_high = levels.max(axis=0, keepdims=True)
    splittable = np.ones(1, dtype=bool)
    while len(box_moments) < k:
        sums = box_moments[:, 1 : 1 + channels]
        errors = box_moments[:, -1] - (sums * sums).sum(axis=1) / box_moments[:, 0]
        errors[~splittable] = -np.inf
        candidates = np.flatnonzero(errors > 0)
        if candidates.size == 0:
            break
        batch_size = min(k - len(box_moments), max(1, int(len(box_moments) * SPLIT_FRACTION)))
        ranked = candidates[np.argsort(-errors[candidates], kind="stable")]
        batch = ranked[:batch_size]
        slot_of_box = np.full(len(box_moments), -1)
        slot_of_box[batch] = np.arange(len(batch))
        slots = slot_of_box[box_of_point]
        chosen = np.flatnonzero(slots >= 0)
        slots = slots[chosen]
        low, high = box_low[batch], box_high[batch]
        best, lower = _best_cuts(levels[chosen], moments[chosen], slots, low, high, box_moments[batch])
        can_split = best[:, 1] >= 0
        splittable[batch[~can_split]] = False
        batch, lower, best, low = batch[can_split], lower[can_split], best[can_split], low[can_split]
        if batch.size == 0:
            continue
        axes = best[:, 0]
        cuts = best[:, 1] + low[np.arange(len(batch)), axes]  # back to absolute levels
        new_ids = np.full(len(slot_of_box), -1)
        new_ids[batch] = len(box_moments) + np.arange(len(batch))
        # Points above their box's cut move to the new box.
        axis_of_box = np.zeros(len(slot_of_box), dtype=np.intp)
        cut_of_box = np.full(len(slot_of_box), 256)
        axis_of_box[batch] = axes
        cut_of_box[batch] = cuts
        boxes = box_of_point[chosen]
        moves = levels[chosen, axis_of_box[boxes]] > cut_of_box[boxes]
        box_of_point[chosen[moves]] = new_ids[boxes[moves]]
        upper = box_moments[batch] - lower
        box_moments[batch] = lower
        box_moments = np.concatenate([box_moments, upper])
        upper_low = box_low[batch].copy()
        upper_low[np.arange(len(batch)), axes] = cuts + 1
        upper_high = box_high[batch].copy()
        box_high[batch, axes] = cuts
        box_low = np.concatenate([box_low, upper_low])
        box_high = np.concatenate([box_high, upper_high])
        splittable = np.concatenate([splittable, np.ones(len(batch), dtype=bool)])
    return box_moments[:, 1 : 1 + channels] / box_moments[:, :1]


def _best_cuts(levels, moments, slots, low, high, totals):
    """For each box of a batch, the cut (axis, level above its low end; -1
    if none leaves points on both sides) that removes the most error, and
    the moments at or below it.

    One table of moments by (box, axis, level), each box and axis only as
    long as its own level range: cumulative sums along it give the moments
    at or below every cut of every axis of every box at once."""
    count, channels = low.shape
    lengths = (high - low + 1).ravel()  # (box, axis) segments
    starts = np.cumsum(lengths) - lengths
    positions = (starts.reshape(count, channels)[slots] + levels - low[slots]).ravel()
    size = int(lengths.sum())
    repeated = np.repeat(moments, channels, axis=0)
    table = np.stack(
        [np.bincount(positions, repeated[:, m], minlength=size) for m in range(moments.shape[1])],
        axis=1,
    )
    # Cumulative along each segment: a running sum less its value where the
    # segment starts (weights and weighted sums are exact either way).
    table = np.cumsum(table, axis=0)
    before = np.concatenate([np.zeros((1, table.shape[1])), table])[starts]
    left = table - np.repeat(before, lengths, axis=0)
    box_of_entry = np.repeat(np.arange(count), lengths.reshape(count, channels).sum(axis=1))
    right = totals[box_of_entry] - left
    left_sums, right_sums = left[:, 1 : 1 + channels], right[:, 1 : 1 + channels]
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (left_sums * left_sums).sum(axis=1) / left[:, 0] + (
            right_sums * right_sums
        ).sum(axis=1) / right[:, 0]
    gain[(left[:, 0] <= 0) | (right[:, 0] <= 0)] = -np.inf
    # First best entry of each box, as argmax over (axis, level) would pick.
    box_starts = starts[::channels]
    top = np.maximum.reduceat(gain, box_starts)
    hits = np.flatnonzero(gain == top[box_of_entry])
    first = hits[np.flatnonzero(np.diff(box_of_entry[hits], prepend=-1))]
    segment = np.searchsorted(starts, first, side="right") - 1
    axes = segment % channels
    cuts = np.where(np.isfinite(top), first - starts[segment], -1)
    return np.column_stack([axes, cuts]), left[first]


def kmeans_plus_plus(points: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Greedy k-means++ (several candidates per step, the best kept), on a
    fixed seed: the result is the same on every run and machine (the
    arithmetic is sequential numpy, no BLAS)."""
    rng = np.random.default_rng(seed)
    trials = 2 + int(np.log(k))
    total = weights.sum()
    first = int(np.searchsorted(np.cumsum(weights), rng.random() * total))
    chosen = [min(first, len(points) - 1)]
    closest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        potential = np.cumsum(weights * closest)
        picks = np.searchsorted(potential, rng.random(trials) * potential[-1])
        picks = np.minimum(picks, len(points) - 1)
        offsets = points[None, :, :] - points[picks][:, None, :]
        distances = np.einsum("tmc,tmc->tm", offsets, offsets)
        np.minimum(distances, closest, out=distances)
        # A plain numpy sum, not BLAS: the same order on any thread count.
        best = int(np.argmin((distances * weights).sum(axis=1)))
        closest = distances[best]
        chosen.append(int(picks[best]))
    return points[chosen].copy()
