"""Assignment: every colour gets the label of its exactly nearest codebook
entry. nearest() is the plain definition, the oracle the faster searches
are tested against; BruteForceSearch (one distance matrix, for small point
sets) and BoundedSearch (skips points Hamerly's bounds prove unchanged)
serve the coarse k-means passes; cells.CellSearch serves the fine ones.

Distances are |x|^2 - 2 x.c + |c|^2 on integer colours and centres on a
1/1024 grid: every product and sum is exact in float64 (in float32 for
nearest()'s integer codebook), so BLAS's order of adding cannot change a
result: ties go to the lowest index on every machine and thread count.
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
# From this K up, a point that may have changed label checks only the
# centres near its own (see BoundedSearch._search_neighbours).
NEIGHBOUR_K = 100
# Radii (colour levels) at which BoundedSearch looks for centres that moved
# near a point (see BoundedSearch._nearby_moves).
NEARBY_LOW_BITS = 2
# When more than 1/NEARBY_SHARE of the centres move, Hamerly's plain bound:
# most points are near some move anyway, and it costs less.
NEARBY_SHARE = 4
NEARBY_RADII = 2.0 ** np.arange(NEARBY_LOW_BITS, 8)


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

    @classmethod
    def from_bins(cls, points, bins, coarse: "BoundedSearch", centres) -> "BoundedSearch":
        """A search over `points` that starts from `coarse`, a search over
        the means of their bins (bins[i]: point i's), instead of from a
        brute-force pass: a point is at most |x - m| from its bin's mean m,
        so its bin's lower bound less that still holds for it."""
        coarse.nearest(centres)
        search = cls(points)
        search.labels = coarse.labels[bins]
        offsets = points - centres[search.labels]
        search.upper = np.sqrt((offsets * offsets).sum(axis=1))
        offsets = points - coarse.points[bins]
        search.lower = coarse.lower[bins] - np.sqrt((offsets * offsets).sum(axis=1))
        search.centres = centres.copy()
        return search

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
        self.centres = centres.copy()
        if len(centres) > 1:
            gaps = self._squared_gaps(centres)
            self.lower -= self._nearby_moves(moves, gaps)
            np.fill_diagonal(gaps, np.inf)
            nearest_gap = np.sqrt(np.maximum(gaps.min(axis=1), 0))
            bound = np.maximum(0.5 * nearest_gap[self.labels], self.lower) - self.MARGIN
        else:
            self.lower -= moves.max()
            bound = np.full(len(self.points), np.inf)
        unsure = np.flatnonzero(self.upper >= bound)
        if unsure.size:
            offsets = self.points[unsure] - centres[self.labels[unsure]]
            self.upper[unsure] = np.sqrt((offsets * offsets).sum(axis=1))
            unsure = unsure[self.upper[unsure] >= bound[unsure]]
            if unsure.size and len(centres) >= NEIGHBOUR_K:
                self._search_neighbours(unsure, centres, gaps)
            elif unsure.size:
                self._search_all(unsure, centres)
        return self.labels.copy()

    @staticmethod
    def _squared_gaps(centres: np.ndarray) -> np.ndarray:
        """Squared gaps as |a|^2 - 2 a.b + |b|^2: exact on the grid, and a
        K x K x C product is small enough to stay on this thread."""
        norms = (centres * centres).sum(axis=1)
        gaps = centres @ (-2.0 * centres.T)
        gaps += norms
        gaps += norms[:, None]
        return gaps

    def _nearby_moves(self, moves: np.ndarray, gaps: np.ndarray) -> np.ndarray:
        """How far each point's lower bound must drop: the largest move of the
        other centres that could now be within it (Hamerly's takes the
        largest of all). With u its upper bound and l its lower, a centre at
        a gap of at least l + u from the point's centre is still >= l away;
        late passes move few centres, so most points see no move at all.
        The gaps are taken at a few fixed radii, powers of two (any radius
        >= l + u will do), so each point costs a few operations."""
        k = len(moves)
        moved = np.flatnonzero(moves)
        largest = np.zeros((k, len(NEARBY_RADII) + 1))
        if moved.size * NEARBY_SHARE > k:
            return np.full(len(self.points), moves.max())
        if moved.size:
            near = gaps[:, moved] < NEARBY_RADII[:, None, None] ** 2
            near[:, moved, np.arange(len(moved))] = False  # a centre's own move is in u
            largest[:, :-1] = np.where(near, moves[moved], 0.0).max(axis=2).T
            largest[:, -1] = moves.max()
        # The least radius 2**e (e >= NEARBY_LOW_BITS) above l + u; beyond the
        # last, the largest move of all.
        reach = np.minimum(self.lower + self.upper + self.MARGIN, 1024.0)
        level = np.clip(np.frexp(reach)[1] - NEARBY_LOW_BITS, 0, len(NEARBY_RADII))
        return largest.ravel()[self.labels * largest.shape[1] + level]

    def _search_neighbours(self, rows: np.ndarray, centres: np.ndarray, gaps: np.ndarray) -> None:
        """_search_all for points with a label, checking only the centres that
        can beat it: c_j is no nearer to x than x's centre c_a once
        |c_j - c_a| >= 2 |x - c_a|, so each point needs only its centre's
        neighbours within twice its distance (a few of K at large K)."""
        k = len(centres)
        # Lists only for the centres these points have (late passes: few).
        listed, own = np.unique(self.labels[rows], return_inverse=True)
        gaps = gaps[listed]
        gaps[np.arange(len(listed)), listed] = 0.0
        # Any order of equal gaps will do: a list takes all of them or none.
        neighbours = np.argsort(gaps, axis=1)
        reach = np.sqrt(np.maximum(np.take_along_axis(gaps, neighbours, axis=1), 0))
        reach = np.concatenate([reach, np.full((len(listed), 1), np.inf)], axis=1)
        own = own.reshape(-1)
        limit = 2 * self.upper[rows] + self.MARGIN
        # Table widths: powers of two up to K. A point needs the next width
        # while its centre's neighbour just past the current one is in reach.
        widths = [min(1 << b, k) for b in range(k.bit_length() + 1) if (1 << b) < 2 * k]
        level = np.zeros(len(rows), dtype=np.intp)
        for width in widths[:-1]:
            level += reach[:, width].take(own) <= limit
        for index, width in enumerate(widths):
            group = np.flatnonzero(level == index)
            step = max(1, CHUNK_ENTRIES // width)
            for start in range(0, len(group), step):
                part = group[start : start + step]
                self._search_candidates(rows[part], centres, neighbours, reach, own[part], width)

    def _search_candidates(self, rows, centres, neighbours, reach, own, width) -> None:
        """Nearest and second nearest of each of `rows` among its centre's
        first `width` neighbours, in index order so that ties go to the
        lowest index."""
        channels = centres.shape[1]
        table = neighbours[own, :width]
        table.sort(axis=1)
        total = None
        for channel in range(channels):
            offset = centres[:, channel].take(table)
            offset -= self.points[rows, channel][:, None]
            offset *= offset
            total = offset if total is None else total + offset
        # Any centre beyond the list is at least its gap to the point's old
        # centre less the point's distance to that centre away.
        beyond = reach[own, width] - self.upper[rows]
        best = total.argmin(axis=1)
        span = np.arange(len(rows))
        self.labels[rows] = table[span, best]
        self.upper[rows] = np.sqrt(total[span, best])
        if width > 1:
            total[span, best] = np.inf
            second = np.sqrt(total.min(axis=1))
        else:
            second = np.full(len(rows), np.inf)
        self.lower[rows] = np.minimum(second, beyond)
