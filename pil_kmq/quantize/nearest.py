"""Assignment: every colour gets the index of its exactly nearest centroid.

Two searches serve the k-means passes (kmeans.py): BoundedSearch, brute
force that skips points Hamerly's bounds prove unchanged, and CellSearch,
which checks only a few candidate centres per cell of colour space; both are
exact. nearest() is the plain brute-force definition they are tested against.

nearest() computes squared distances as |x|^2 - 2 x.c + |c|^2 in float32
on integer colours and integer (rounded) centroids: every term is an integer
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


# Entries of a distance matrix computed at once. Small enough that OpenBLAS
# runs the product on the calling thread: its thread start-up costs more than
# the work for these thin (inner dimension C) products, and a busy machine
# makes it far worse. 64K float64 entries also stay in cache.
CHUNK_ENTRIES = 1 << 16
# CellSearch's gathers use no BLAS: larger blocks, fewer numpy calls.
CELL_CHUNK_ENTRIES = 1 << 18


class CellSearch:
    """Exact nearest centre for a fixed set of points, pruned by grid cells.

    Points are grouped into cubic cells of the colour space (their bounding
    box within the cell, in fact). For a box, a centre can be nearest to some
    point in it only if its nearest possible distance to the box is at most
    the smallest farthest possible distance of any centre. That leaves a few
    candidates per box (about 5 of 256 for photos), and in most boxes of a
    converged clustering exactly one, which needs no distances at all.

    All arithmetic is exact (integers and centres on a 1/1024 grid), so
    ties go to the lowest index and the result is the same on every run.
    """

    def __init__(self, points: np.ndarray, cell_bits: int, slack: float = 1.0):
        self.slack = slack
        shift = 8 - cell_bits
        cells = np.zeros(len(points), dtype=np.int64)
        for channel in range(points.shape[1]):
            cells = (cells << cell_bits) | (points[:, channel].astype(np.int64) >> shift)
        self.order = np.argsort(cells, kind="stable")
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

        self.snapshot: np.ndarray | None = None
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []

    @staticmethod
    def _candidates(low, high, centres: np.ndarray, slack: float, among=None, valid=None) -> np.ndarray:
        """(boxes, K) mask of the centres that may be nearest to some point of
        each box, even after every centre moves by up to `slack`; with
        `among` ((boxes, W) centre indices, `valid` marking real ones), a
        (boxes, W) mask over those only."""
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
        # A point's nearest centre is no farther than the best far bound
        # (plus slack); a centre nearer than that bound (less slack) may win.
        # The tiny extra covers rounding in the square roots.
        reach = np.sqrt(far.min(axis=1, keepdims=True)) + 2 * slack + 1e-9
        mask = near <= reach * reach
        if valid is not None:
            mask &= valid
        return mask

    @staticmethod
    def _left_aligned(mask: np.ndarray, values: np.ndarray | None = None):
        """Each row's chosen values (column numbers, or `values`) packed to
        the left in order, padded with the row's first; and their counts."""
        count = mask.sum(axis=1)
        rows, cols = np.nonzero(mask)
        chosen = cols if values is None else values[rows, cols]
        first = chosen[np.searchsorted(rows, np.arange(len(mask)))]
        width = int(count.max())
        table = np.repeat(first[:, None], width, axis=1)
        slots = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
        table[rows, slots] = chosen
        return table, count

    def _prepare(self, centres: np.ndarray) -> None:
        """Candidate lists for every point, grouped by length (padded to a
        power of two), valid until some centre strays `self.slack` away."""
        parent_mask = self._candidates(self.parent_low, self.parent_high, centres, self.slack)
        parent_table, parent_count = self._left_aligned(parent_mask)
        among = parent_table[self.parent_of_cell]
        valid = np.arange(among.shape[1]) < parent_count[self.parent_of_cell, None]
        mask = self._candidates(self.low, self.high, centres, self.slack, among, valid)
        table, count = self._left_aligned(mask, among)
        self.first = table[:, 0].astype(np.intp)
        self.table = table
        self.snapshot = centres.copy()
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
        `order`)."""
        fresh = self.snapshot is None or len(self.snapshot) != len(centres)
        if not fresh:
            drift = np.sqrt(((centres - self.snapshot) ** 2).sum(axis=1)).max()
            fresh = drift > self.slack
        if fresh:
            self._prepare(centres)
            labels = self.first[self.cell_of_point]
        else:
            # Label cache: only cells with a candidate that moved are redone.
            moved = (centres != self.previous).any(axis=1)
            redo = moved[self.table].any(axis=1)
            labels = self.labels.copy()
        by_channel = [np.ascontiguousarray(centres[:, c]) for c in range(centres.shape[1])]
        for group, group_candidates in self.groups:
            if not fresh:
                kept = np.flatnonzero(redo[self.cell_of_point[group]])
                group, group_candidates = group[kept], group_candidates[kept]
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
                labels[rows] = np.take_along_axis(candidates, best[:, None], axis=1)[:, 0]
        self.labels, self.previous = labels, centres.copy()
        return labels.copy()


class BruteForceSearch:
    """Exact nearest centre by one distance matrix: for small point sets
    (restarts on wide bins), where bookkeeping costs more than distances.
    |x|^2 - 2 x.c + |c|^2 is exact on the grid, so BLAS's order of adding
    does not matter."""

    def __init__(self, points: np.ndarray):
        self.points = points
        self.order = np.arange(len(points))
        self.norms = (points * points).sum(axis=1)[:, None]

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        distances = self.points @ (-2.0 * centres.T)
        distances += self.norms
        distances += (centres * centres).sum(axis=1)
        return distances.argmin(axis=1)


class BoundedSearch:
    """Exact nearest centre by brute force, skipping points that provably
    keep their label (Hamerly's bounds), for the coarse stage.

    It remembers, per point, an upper bound on the distance to its centre
    and a lower bound on the distance to any other, and loosens both by how
    far the centres moved since the last call. A point whose upper bound is
    below its lower bound, or below half the gap from its centre to the
    next nearest centre, cannot have changed label. The bounds are floats,
    so they must clear by a margin far above their rounding error.
    """

    MARGIN = 1e-6

    def __init__(self, points: np.ndarray):
        self.points = points
        self.order = np.arange(len(points))
        self.norms = (points * points).sum(axis=1)
        self.centres: np.ndarray | None = None
        count = len(points)
        self.labels = np.zeros(count, dtype=np.intp)
        self.upper = np.full(count, np.inf)
        self.lower = np.zeros(count)

    def _search_all(self, rows: np.ndarray, centres: np.ndarray) -> None:
        k = len(centres)
        step = max(1, CHUNK_ENTRIES // k)
        scaled = -2.0 * centres.T
        centre_norms = (centres * centres).sum(axis=1)
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            distances = self.points[part] @ scaled
            distances += centre_norms
            distances += self.norms[part, None]
            nearest = distances.argmin(axis=1)
            span = np.arange(len(part))
            best = distances[span, nearest]
            if k > 1:
                distances[span, nearest] = np.inf
                second = distances.min(axis=1)
            else:
                second = np.full(len(part), np.inf)
            self.labels[part] = nearest
            self.upper[part] = np.sqrt(np.maximum(best, 0))
            self.lower[part] = np.sqrt(np.maximum(second, 0))

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        if self.centres is None or len(self.centres) != len(centres):
            self._search_all(self.order, centres)
            self.centres = centres.copy()
            return self.labels.copy()
        moves = np.sqrt(((centres - self.centres) ** 2).sum(axis=1))
        self.upper += moves[self.labels]
        self.lower -= moves.max()
        self.centres = centres.copy()
        if len(centres) > 1:
            # Squared gaps as |a|^2 - 2 a.b + |b|^2: exact on the grid, and a
            # K x K x C product is small enough to stay on this thread.
            norms = (centres * centres).sum(axis=1)
            gaps = centres @ (-2.0 * centres.T)
            gaps += norms
            gaps += norms[:, None]
            np.fill_diagonal(gaps, np.inf)
            nearest_gap = np.sqrt(np.maximum(gaps.min(axis=1), 0))
            bound = np.maximum(0.5 * nearest_gap[self.labels], self.lower) - self.MARGIN
        else:
            bound = np.full(len(self.points), np.inf)
        unsure = np.flatnonzero(self.upper >= bound)
        if unsure.size:
            offsets = self.points[unsure] - centres[self.labels[unsure]]
            self.upper[unsure] = np.sqrt((offsets * offsets).sum(axis=1))
            unsure = unsure[self.upper[unsure] >= bound[unsure]]
            if unsure.size:
                self._search_all(unsure, centres)
        return self.labels.copy()
