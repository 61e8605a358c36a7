"""Codebook order for the compressed codings (an encoder freedom).

The decoded colours do not depend on the order of the codebook, but LZMA's
literal coder does: ordering often-adjacent colours next to each other lets
the high bits of a label say which group of colours it is in.
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

# Laplacian eigenvalues closer than this count as one repeated eigenvalue.
EIGEN_TIE = 1e-6


# Labels counted at once by adjacency(): its int64 temporaries stay a few
# MB (whole, they were 24 bytes a pixel, the peak of an optimize encode),
# and the time between its calls to `each` short.
ADJACENCY_SLICE = 1 << 20


def adjacency_rows(width: int) -> int:
    """Rows of the label map adjacency() counts at once."""
    return max(1, ADJACENCY_SLICE // max(width, 1))


def adjacency(labels: np.ndarray, k: int, each=None) -> np.ndarray:
    """(k, k) symmetric counts of horizontally or vertically adjacent pairs,
    counted a slice of rows at a time (each(), if given, after each slice)."""
    a = np.asarray(labels)
    rows = adjacency_rows(a.shape[1])
    m = np.zeros((k, k), np.int64)
    for top in range(0, a.shape[0], rows):
        m += pairs_within(a[top : top + rows], k)
        if top:
            m += pair_counts(a[top : top + 1], a[top - 1 : top], k)
        if each is not None:
            each()
    return m + m.T


def pairs_within(labels: np.ndarray, k: int) -> np.ndarray:
    """Unsymmetrized counts of the adjacent pairs inside a block of rows
    (left-right, then below-above): blocks' counts plus the pairs across
    their edges add up to the whole map's."""
    return pair_counts(labels[:, 1:], labels[:, :-1], k) + pair_counts(labels[1:], labels[:-1], k)


def pair_counts(p: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts of the label pairs (p, q), element by element. A pair
    is the 16-bit code p * k + q (k <= 256): a quarter of int64 codes'
    memory traffic, 2.5x quicker on a 48 Mpx map (0.42 -> 0.17 s)."""
    codes = np.asarray(p).astype(np.uint16)
    codes *= np.uint16(k)
    codes += np.asarray(q, dtype=np.uint8)
    return np.bincount(codes.ravel(), minlength=k * k).reshape(k, k)


@lru_cache(maxsize=1)
def _openblas_thread_setters():
    """(get, set) of the OpenBLAS that numpy loaded, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    return get, put
    return None


_BLAS_LOCK = threading.Lock()


@contextmanager
def _one_blas_thread():
    """OpenBLAS threads spin on matrices this small: on a busy machine
    eigh(256) takes seconds with 2 threads and 10 ms with one."""
    setters = _openblas_thread_setters()
    if setters is None:
        yield
        return
    get, put = setters
    with _BLAS_LOCK:
        before = get()
        put(1)
        try:
            yield
        finally:
            put(before)


def _fiedler_split(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """idx sorted by the Fiedler vector of the normalized Laplacian of m[idx, idx]."""
    sub = m[np.ix_(idx, idx)].astype(np.float64)
    np.fill_diagonal(sub, 0.0)
    degree = sub.sum(axis=1) + 1e-9
    scale = 1.0 / np.sqrt(degree)
    laplacian = np.eye(len(idx)) - scale[:, None] * sub * scale[None, :]
    with _one_blas_thread():
        values, vectors = np.linalg.eigh(laplacian)
    tied = np.abs(values - values[1]) <= EIGEN_TIE
    if tied.sum() == 1:
        fiedler = vectors[:, 1]
    else:
        # A repeated eigenvalue (a symmetric or disconnected graph): any basis
        # of its eigenspace is a valid answer of eigh, and which one it gives
        # depends on the BLAS build and its thread count. The projection of a
        # fixed vector (orthogonal to the trivial eigenvector) onto the
        # eigenspace does not.
        trivial = np.sqrt(degree) / np.linalg.norm(np.sqrt(degree))
        probe = np.cos(idx * 2.399963229728653)
        probe -= (trivial @ probe) * trivial
        space = vectors[:, tied]
        fiedler = space @ (space.T @ probe)
    fiedler = fiedler * scale
    # round away the last bits so that the order does not hang on
    # floating-point noise, and fix the eigenvector's arbitrary sign: the
    # lowest index among the largest entries (a symmetric graph has them at
    # both ends, with opposite signs) comes out positive
    key = np.round(fiedler / (np.abs(fiedler).max() + 1e-300), 9)
    top = np.flatnonzero(np.abs(key) == np.abs(key).max())
    if key[top[np.argmin(idx[top])]] < 0:
        key = -key
    return idx[np.lexsort((idx, key))]


def reorder_palette(labels: np.ndarray, k: int, each=None) -> np.ndarray:
    """A permutation `order` of 0..k-1 giving often-adjacent colours nearby
    labels, hierarchically: new label i is old label order[i].

    Recursive spectral bisection of the adjacency graph: the labels are
    sorted by the graph's Fiedler vector and cut into halves, and each half
    is ordered the same way, so that every aligned block of 2^j labels holds
    colours that appear next to each other. The high bits of a label then
    say which group of colours it is in, which is what an LZMA literal coder
    (lc = high bits of the previous byte, bitwise tree over the current one)
    can use. Deterministic for a given input.
    """
    return palette_order(adjacency(labels, k, each))


def palette_order(m: np.ndarray) -> np.ndarray:
    """reorder_palette's permutation from the (k, k) symmetric adjacency."""
    k = len(m)

    def order(idx: np.ndarray) -> list[int]:
        if len(idx) <= 2:
            return [int(i) for i in idx]
        if m[np.ix_(idx, idx)].sum() == 0:
            return [int(i) for i in idx]
        ranked = _fiedler_split(m, idx)
        half = len(ranked) // 2
        return order(ranked[:half]) + order(ranked[half:])

    return np.array(order(np.arange(k)), dtype=np.int64)


def apply_order(labels: np.ndarray, codebook: np.ndarray, order: np.ndarray):
    """(labels, codebook) relabelled so that new label i is old label order[i]."""
    relabel, reordered = relabelling(codebook, order)
    return relabel[labels], reordered


def relabelling(codebook: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(old label -> new label table (uint8), the reordered codebook), so
    that new label i is old label order[i]: apply_order's table, for callers
    that relabel a piece of the label map at a time."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return inverse.astype(np.uint8), np.ascontiguousarray(codebook[order])
