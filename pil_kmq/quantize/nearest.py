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

        self.snapshot: np.ndarray | None = None
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []

    def _candidates(self, centres: np.ndarray, slack: float) -> np.ndarray:
        """(cells, K) mask of the centres that may be nearest to some point of
        each box, even after every centre moves by up to `slack`."""
        cells, k = len(self.low), len(centres)
        near = np.zeros((cells, k))
        far = np.zeros((cells, k))
        for channel in range(centres.shape[1]):
            below = self.low[:, channel, None] - centres[None, :, channel]
            above = centres[None, :, channel] - self.high[:, channel, None]
            gap = np.maximum(np.maximum(below, above), 0)
            near += gap * gap
            reach = np.maximum(-below, -above)
            far += reach * reach
        # A point's nearest centre is no farther than the best far bound
        # (plus slack); a centre nearer than that bound (less slack) may win.
        # The tiny extra covers rounding in the square roots.
        reach = np.sqrt(far.min(axis=1, keepdims=True)) + 2 * slack + 1e-9
        return near <= reach * reach

    def _prepare(self, centres: np.ndarray) -> None:
        """Candidate lists for every point, grouped by length (padded to a
        power of two), valid until some centre strays `self.slack` away."""
        mask = self._candidates(centres, self.slack)
        count = mask.sum(axis=1)
        first = mask.argmax(axis=1)
        self.first = first
        self.snapshot = centres.copy()
        self.groups = []
        width = int(count.max())
        if width == 1:
            return
        # Left-aligned candidate lists in index order (so ties go to the
        # lowest index), padded with each box's first candidate.
        table = np.repeat(first[:, None].astype(np.uint8), width, axis=1)
        rows, cols = np.nonzero(mask)
        slots = np.cumsum(mask, axis=1)[rows, cols] - 1
        table[rows, slots] = cols
        point_count = count[self.cell_of_point]
        padded = 2
        while True:
            group = np.flatnonzero((point_count <= padded) & (point_count > padded // 2))
            if group.size:
                # uint8 (K <= 256) keeps these tables small for big images.
                candidates = table[:, :padded][self.cell_of_point[group]]
                self.groups.append((group, candidates))
            if padded >= width:
                break
            padded *= 2

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        """Label of every point (in the points' order as sorted by cell: see
        `order`)."""
        if self.snapshot is None or len(self.snapshot) != len(centres):
            self._prepare(centres)
        else:
            drift = np.sqrt(((centres - self.snapshot) ** 2).sum(axis=1)).max()
            if drift > self.slack:
                self._prepare(centres)
        labels = self.first[self.cell_of_point]
        by_channel = [np.ascontiguousarray(centres[:, c]) for c in range(centres.shape[1])]
        for group, group_candidates in self.groups:
            step = max(1, CHUNK_ENTRIES // group_candidates.shape[1])
            for start in range(0, len(group), step):
                rows = group[start : start + step]
                candidates = group_candidates[start : start + step].astype(np.intp)
                total = None
                for centre_values, point_values in zip(by_channel, self.points_by_channel):
                    offset = centre_values.take(candidates)
                    offset -= point_values[rows, None]
                    offset *= offset
                    total = offset if total is None else total + offset
                best = total.argmin(axis=1)
                labels[rows] = np.take_along_axis(candidates, best[:, None], axis=1)[:, 0]
        return labels


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
