"""Nearest centre by cells of colour space, for the passes over many colours:
each cell checks only the few centres that can be nearest to some point in
it, so a pass costs a few distances per colour instead of K."""

from __future__ import annotations

import numpy as np

from . import work
from .keys import squared_norms
from .nearest import BoundedSearch

# CellSearch's gathers use no BLAS: larger blocks, fewer numpy calls.
CELL_CHUNK_ENTRIES = 1 << 18
# Where padding entries of candidate lists sit (no colour is near it).
FAR_AWAY = 1e6


class CellSearch:
    """Exact nearest centre for a fixed set of points, pruned by grid cells:
    one assignment (LateSearch's first, assign_exact's slices).

    Points are grouped into cubic cells of the colour space (their bounding
    box within the cell, in fact). For a box, a centre can be nearest to some
    point in it only if its nearest possible distance to the box is at most
    the smallest farthest possible distance of any centre. That leaves a few
    candidates per box (about 5 of 256 for photos), and in most boxes of a
    converged clustering exactly one, which needs no distances at all.

    All arithmetic is exact (integers and centres on a 1/1024 grid), so
    ties go to the lowest index and the result is the same on every run.
    """

    def __init__(self, points: np.ndarray, cell_bits: int, *, bounds: bool = True):
        shift = 8 - cell_bits
        cells = np.zeros(len(points), dtype=np.int64)
        for channel in range(points.shape[1]):
            cells = (cells << cell_bits) | (points[:, channel].astype(np.int64) >> shift)
        # Up to 16 bits of cell (RGB at 5 bits), a stable sort is numpy's
        # radix sort: 4x quicker than on int64, the same order.
        self.order = np.argsort(cells.astype(np.uint16) if cell_bits * points.shape[1] <= 16 else cells, kind="stable")
        # Whether nearest() leaves each point's second distance in `lower`
        # (LateSearch's bounds); a single assignment needs none.
        self.bounds = bounds
        self.points = points[self.order]
        self.points_by_channel = [np.ascontiguousarray(self.points[:, c]) for c in range(points.shape[1])]
        cells = cells[self.order]
        starts = np.flatnonzero(np.diff(cells, prepend=-1))
        self.cell_of_point = np.repeat(np.arange(len(starts)), np.diff(starts, append=len(cells)))
        self.low = np.minimum.reduceat(self.points, starts, axis=0)
        self.high = np.maximum.reduceat(self.points, starts, axis=0)
        # Parent cells (twice as wide): their candidates are found first and
        # each cell then checks only its parent's, not all K centres.
        parents = np.zeros(len(starts), dtype=np.int64)
        for channel in range(points.shape[1]):
            parents = (parents << (cell_bits - 1)) | (self.low[:, channel].astype(np.int64) >> (shift + 1))
        _, self.parent_of_cell = np.unique(parents, return_inverse=True)
        self.parent_of_cell = self.parent_of_cell.reshape(-1)
        count = int(self.parent_of_cell.max()) + 1
        self.parent_low = np.full((count, points.shape[1]), np.inf)
        self.parent_high = np.full((count, points.shape[1]), -np.inf)
        np.minimum.at(self.parent_low, self.parent_of_cell, self.low)
        np.maximum.at(self.parent_high, self.parent_of_cell, self.high)
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []

    @staticmethod
    def _candidates(low, high, centres: np.ndarray, *, among=None, valid=None) -> np.ndarray:
        """(boxes, K) mask of the centres that may be nearest to some point of
        each box, and the reach that decides it; with `among` ((boxes, W)
        centre indices, `valid` marking real ones), a (boxes, W) mask over
        those only."""
        near = far = 0.0
        for channel in range(centres.shape[1]):
            values = centres[:, channel] if among is None else centres[:, channel].take(among)
            below = low[:, channel, None] - values
            above = values - high[:, channel, None]
            gap = np.maximum(np.maximum(below, above), 0)
            near = near + gap * gap
            reach = np.maximum(-below, -above)
            far = far + reach * reach
        if valid is not None:
            far[~valid] = np.inf
        # A point's nearest centre is no farther than the best far bound; a
        # centre nearer than that bound may win. The tiny extra covers
        # rounding in the square roots.
        reach = np.sqrt(far.min(axis=1, keepdims=True)) + 1e-9
        mask = near <= reach * reach
        if valid is not None:
            mask &= valid
        return mask, reach[:, 0]

    @staticmethod
    def _left_aligned(mask: np.ndarray, values: np.ndarray | None = None, pad: int | None = None):
        """Each row's chosen values (column numbers, or `values`) packed to
        the left in order, padded with `pad` or the row's first; and their
        counts."""
        count = mask.sum(axis=1)
        rows, cols = np.nonzero(mask)
        chosen = cols if values is None else values[rows, cols]
        first = chosen[np.searchsorted(rows, np.arange(len(mask)))]
        width = int(count.max())
        table = np.repeat(first[:, None] if pad is None else np.full((len(mask), 1), pad), width, axis=1)
        slots = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
        table[rows, slots] = chosen
        return table, count

    def _prepare(self, centres: np.ndarray) -> None:
        """Candidate lists for every point, grouped by length (padded to a
        power of two)."""
        parent_mask, _ = self._candidates(self.parent_low, self.parent_high, centres)
        parent_table, parent_count = self._left_aligned(parent_mask)
        among = parent_table[self.parent_of_cell]
        valid = np.arange(among.shape[1]) < parent_count[self.parent_of_cell, None]
        mask, reach = self._candidates(self.low, self.high, centres, among=among, valid=valid)
        # Padding points at a sentinel centre (index K, far away): it never
        # wins, and the second nearest of a list is a real one.
        table, count = self._left_aligned(mask, among, pad=len(centres))
        self.first = table[:, 0].astype(np.intp)
        self.table = table
        # Any centre outside a cell's list is at least this far from its points.
        self.floor = reach
        self.lower = np.full(len(self.points), -np.inf)
        self.groups = []
        width = int(count.max())
        if width == 1:
            return
        point_count = count[self.cell_of_point]
        padded = 2
        while True:
            group = np.flatnonzero((point_count <= padded) & (point_count > padded // 2))
            if group.size:
                candidates = np.ascontiguousarray(table[:, :padded])[self.cell_of_point[group]]
                self.groups.append((group, candidates))
            if padded >= width:
                break
            padded *= 2

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        """Label of every point (in the points' order as sorted by cell: see
        `order`); with `bounds`, `lower` then holds each point's distance to
        its second nearest candidate (-inf in one-candidate cells)."""
        self._prepare(centres)
        labels = self.first[self.cell_of_point]
        sentinel = np.full(1, FAR_AWAY)
        by_channel = [np.concatenate([centres[:, c], sentinel]) for c in range(centres.shape[1])]
        for group, group_candidates in self.groups:
            step = max(1, CELL_CHUNK_ENTRIES // group_candidates.shape[1])
            for start in range(0, len(group), step):
                rows = group[start : start + step]
                candidates = group_candidates[start : start + step]
                total = None
                for centre_values, point_values in zip(by_channel, self.points_by_channel):
                    offset = centre_values.take(candidates)
                    offset -= point_values[rows, None]
                    offset *= offset
                    total = offset if total is None else total + offset
                best = total.argmin(axis=1)
                span = np.arange(len(rows))
                labels[rows] = candidates[span, best]
                if not self.bounds:
                    continue
                total[span, best] = np.inf
                second = np.sqrt(total.min(axis=1))
                self.lower[rows] = np.minimum(second, self.floor[self.cell_of_point[rows]])
        return labels


class LateSearch(BoundedSearch):
    """Exact nearest centre for the late passes over many points: the first
    assignment by cells (a few distances per point), then Hamerly's bounds
    and the neighbour lists of BoundedSearch. Late passes move few labels,
    so re-building cell candidate lists each time centres drift (most of
    CellSearch's cost) would buy nothing."""

    def __init__(self, points: np.ndarray, cell_bits: int):
        self.cells: CellSearch | None = CellSearch(points, cell_bits)
        super().__init__(self.cells.points)
        self.order = self.cells.order

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        if self.cells is None:
            return super().nearest(centres)
        cells, self.cells = self.cells, None
        labels = cells.nearest(centres)
        offsets = self.points - centres[labels]
        self.upper = np.sqrt(squared_norms(offsets))
        # Points of one-candidate cells have no second distance: every other
        # centre is at least the cell's floor away.
        floor = cells.floor[cells.cell_of_point]
        self.lower = np.where(np.isneginf(cells.lower), floor, cells.lower)
        self.labels = labels.astype(np.intp)
        self.centres = centres.copy()
        return labels.copy()


def assign_exact(colors: np.ndarray, counts: np.ndarray, codebook: np.ndarray, cell_bits: int, size: int):
    """Every colour's exactly nearest codebook entry (uint8), and the clusters'
    weights and sums, `size` colours at a time."""
    k, channels = codebook.shape
    labels = np.empty(len(colors), dtype=np.uint8)
    totals = np.zeros(k)
    sums = np.zeros((k, channels))
    for start in range(0, len(colors), size):
        part = colors[start : start + size]
        search = CellSearch(part.astype(np.float64), cell_bits, bounds=False)
        part_labels = search.nearest(codebook)
        weights = counts[start : start + size][search.order].astype(np.float64)
        totals += np.bincount(part_labels, weights, minlength=k)
        for channel in range(channels):
            sums[:, channel] += np.bincount(
                part_labels, weights * search.points[:, channel], minlength=k
            )
        labels[start + search.order] = part_labels
        work.done("slice")
    return labels, totals, sums
