"""Assignment: every colour gets the label of its exactly nearest codebook
entry. nearest() and ExactSearch are the plain definition, the oracle the
faster searches (the same lloyd.NearestSearch protocol) are tested
against: keys.BruteForceSearch (distance matrices, for small point sets)
and BoundedSearch (skips points Hamerly's bounds prove unchanged) serve
the k-means passes, cells.LateSearch the late ones over many colours.

Distances are |x|^2 - 2 x.c + |c|^2 on integer colours and centres on a
1/1024 grid: every product and sum is exact in float64, so BLAS's order of
adding cannot change a result: ties go to the lowest index on every
machine and thread count.
"""

from __future__ import annotations

import numpy as np

from .keys import CHUNK_ENTRIES, KEY_SCALE, nearest_two, row_numbers, squared_norms

# Distances computed at once by ExactSearch (bounds its memory).
EXACT_CHUNK_ENTRIES = 1 << 18


def nearest(colors: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index (uint8) of the nearest codebook entry for each colour (both uint8)."""
    return ExactSearch(colors.astype(np.float64)).nearest(codebook.astype(np.float64)).astype(np.uint8)


class ExactSearch:
    """The nearest-colour protocol (lloyd.NearestSearch) by its definition:
    every squared distance, argmin (ties to the lowest index). The oracle
    the fast searches are tested against; exact for points and centres on
    the 1/1024 grid."""

    def __init__(self, points: np.ndarray):
        self.points = points
        self.order = np.arange(len(points))

    def nearest(self, centres: np.ndarray) -> np.ndarray:
        labels = np.empty(len(self.points), dtype=np.intp)
        step = max(1, EXACT_CHUNK_ENTRIES // max(1, len(centres)))
        for start in range(0, len(self.points), step):
            offsets = self.points[start : start + step, None, :] - centres[None]
            labels[start : start + step] = (offsets * offsets).sum(axis=2).argmin(axis=1)
        return labels


# From this K up, a point that may have changed label checks only the
# centres near its own (see BoundedSearch._search_neighbours).
NEIGHBOUR_K = 100
# Lists this long cost more to gather than a row of the distance matrix (BLAS)
# costs to compute: points that need one are searched against every centre
# (at K=256 a list of 64 costs ~480 ns a point, of 256 ~2 us, a row ~340:
# 3% off a K=256 clustering). Labels are exact either way: only time changes.
FULL_ROW_WIDTH = 64
# Radii (colour levels) at which BoundedSearch looks for centres that moved
# near a point (see BoundedSearch._nearby_moves).
NEARBY_LOW_BITS = 2
# When more than 1/NEARBY_SHARE of the centres move, Hamerly's plain bound:
# most points are near some move anyway, and it costs less.
NEARBY_SHARE = 4
NEARBY_RADII = 2.0 ** np.arange(NEARBY_LOW_BITS, 8)


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
        self.norms = squared_norms(points)
        self.points_by_channel = [np.ascontiguousarray(points[:, c]) for c in range(points.shape[1])]
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
        search.upper = np.sqrt(squared_norms(offsets))
        offsets = points - coarse.points[bins]
        search.lower = coarse.lower[bins] - np.sqrt(squared_norms(offsets))
        search.centres = centres.copy()
        return search

    def _search_all(self, rows: np.ndarray, centres: np.ndarray) -> None:
        # Keys (see nearest_two) term by term: scaling by a power of two is
        # exact, and so is every partial sum of multiples of 2**8.
        step = max(1, CHUNK_ENTRIES // len(centres))
        scaled = (-2.0 * KEY_SCALE) * centres
        centre_terms = KEY_SCALE * (centres * centres).sum(axis=1)[:, None] + row_numbers(len(centres))
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            keys = scaled @ self.points[part].T
            keys += centre_terms
            keys += KEY_SCALE * self.norms[part]
            nearest, best, second = nearest_two(keys)
            self.labels[part] = nearest
            self.upper[part] = np.sqrt(best)
            self.lower[part] = np.sqrt(second)

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
            self.upper[unsure] = np.sqrt(self._squared_distances(unsure, centres, self.labels[unsure]))
            unsure = unsure[self.upper[unsure] >= bound[unsure]]
            if unsure.size and len(centres) >= NEIGHBOUR_K:
                self._search_neighbours(unsure, centres, gaps)
            elif unsure.size:
                self._search_all(unsure, centres)
        return self.labels.copy()

    def _squared_distances(self, rows, centres, labels) -> np.ndarray:
        total = None
        for values, point_values in zip(centres.T, self.points_by_channel):
            offset = np.ascontiguousarray(values).take(labels)
            offset -= point_values.take(rows)
            offset *= offset
            total = offset if total is None else total + offset
        return total

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
        present = np.zeros(k, dtype=bool)
        present[self.labels[rows]] = True
        listed = np.flatnonzero(present)
        slot = np.cumsum(present) - 1
        own = slot[self.labels[rows]]
        gaps = gaps[listed]
        gaps[np.arange(len(listed)), listed] = 0.0
        # Table widths: powers of two below FULL_ROW_WIDTH. A point needs the
        # next width while its centre's neighbour just past the current one
        # is in reach; past the last, a full row.
        widths = [1 << b for b in range(k.bit_length()) if (1 << b) < min(k, FULL_ROW_WIDTH)]
        # Any order of equal gaps will do: a list takes all of them or none.
        # Only the first widths[-1] + 1 of a row need sorting.
        span = widths[-1] + 1
        neighbours = np.argpartition(gaps, span - 1, axis=1)[:, :span]
        order = np.argsort(np.take_along_axis(gaps, neighbours, axis=1), axis=1)
        neighbours = np.take_along_axis(neighbours, order, axis=1)
        # reach[:, i]: the gap of the neighbour just past widths[i].
        reach = np.sqrt(np.maximum(np.take_along_axis(gaps, neighbours[:, widths], axis=1), 0))
        limit = 2 * self.upper[rows] + self.MARGIN
        level = np.zeros(len(rows), dtype=np.intp)
        for index in range(len(widths)):
            level += reach[:, index].take(own) <= limit
        full = np.flatnonzero(level == len(widths))
        if full.size:
            self._search_all(rows[full], centres)
        for index, width in enumerate(widths):
            group = np.flatnonzero(level == index)
            if group.size == 0:
                continue
            # Each listed centre's first `width` neighbours, in index order,
            # and their coordinates as (channel, neighbour, listed centre):
            # a point gathers its centre's column, not W scattered values.
            lists = np.sort(neighbours[:, :width], axis=1)
            coordinates = np.ascontiguousarray(centres[lists].transpose(2, 1, 0))
            step = max(1, CHUNK_ENTRIES // width)
            for start in range(0, len(group), step):
                part = group[start : start + step]
                owners = own[part]
                self._search_candidates(rows[part], lists, coordinates, owners, reach[owners, index])

    def _search_candidates(self, rows, lists, coordinates, owners, reach_beyond) -> None:
        """Nearest and second nearest of each of `rows` among its centre's
        list (row `owners` of `lists`, centre indices in ascending order so
        that ties go to the lowest index); every other centre is at least
        reach_beyond from the point's old centre."""
        total = None
        for channel, values in enumerate(coordinates):
            offset = values.take(owners, axis=1)
            offset -= self.points_by_channel[channel].take(rows)
            offset *= offset
            total = offset if total is None else total + offset
        # Any centre beyond the list is at least its gap to the point's old
        # centre less the point's distance to that centre away.
        beyond = reach_beyond - self.upper[rows]
        total *= KEY_SCALE
        total += row_numbers(len(total))
        nearest, best, second = nearest_two(total)
        self.labels[rows] = lists[owners, nearest]
        self.upper[rows] = np.sqrt(best)
        self.lower[rows] = np.minimum(np.sqrt(second), beyond)
