"""The codebook order optimize uses: a deterministic permutation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pil_kmq.format import order

from helpers import label_map


def test_reorder_palette_is_a_permutation():
    labels = label_map(20, 20, 37)
    permutation = order.reorder_palette(labels, 37)
    assert sorted(permutation.tolist()) == list(range(37))



def dots_on_background() -> np.ndarray:
    """A background label with isolated one-pixel dots of 147 other labels:
    its adjacency graph is a star, whose Laplacian has repeated eigenvalues."""
    rng = np.random.default_rng(52)
    labels = np.zeros((30, 30), np.intp)
    labels[1::2, 1::2] = rng.integers(1, 248, (15, 15))
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.uint8)


def test_reorder_palette_does_not_depend_on_the_eigenbasis_lapack_picks(monkeypatch):
    """Within a repeated eigenvalue any orthonormal basis is a valid answer of
    eigh (which one depends on the BLAS build and its thread count): the
    order must be the same for every one of them."""
    labels = dots_on_background()
    k = int(labels.max()) + 1
    expected = order.reorder_palette(labels, k)
    original = np.linalg.eigh
    rng = np.random.default_rng(0)

    def rotated_eigh(matrix):
        values, vectors = original(matrix)
        vectors = vectors.copy()
        start = 0
        while start < len(values):
            end = start + 1
            while end < len(values) and values[end] - values[start] < 1e-9:
                end += 1
            if end - start > 1:
                rotation, _ = np.linalg.qr(rng.standard_normal((end - start, end - start)))
                vectors[:, start:end] = vectors[:, start:end] @ rotation
            start = end
        return values, vectors

    monkeypatch.setattr(order.np.linalg, "eigh", rotated_eigh)
    np.testing.assert_array_equal(order.reorder_palette(labels, k), expected)



def test_reorder_palette_does_not_hang_on_eigenvector_sign_or_rounding(monkeypatch):
    """Bars of 9 colours: a path graph, whose Fiedler vector is as large at
    one end as at the other. eigh may return any sign and differ in the last
    bits; the order must not follow either."""
    labels = np.tile(np.arange(9, dtype=np.uint8), (4, 1))
    expected = order.reorder_palette(labels, 9)
    original = np.linalg.eigh
    for seed in range(10):
        rng = np.random.default_rng(seed)

        def noisy_eigh(matrix):
            values, vectors = original(matrix)
            signs = rng.choice([-1.0, 1.0], vectors.shape[1])
            return values, vectors * signs + rng.standard_normal(vectors.shape) * 1e-14

        monkeypatch.setattr(order.np.linalg, "eigh", noisy_eigh)
        np.testing.assert_array_equal(order.reorder_palette(labels, 9), expected)

def test_optimize_gives_the_same_bytes_whatever_the_blas_thread_count():
    script = (
        "import hashlib, io, sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
        "import pil_kmq; from PIL import Image; "
        "sys.path.insert(0, sys.argv[2]); from test_order import dots_on_background; "
        "grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1); "
        "b = io.BytesIO(); Image.fromarray(grey[dots_on_background()], 'RGB')"
        ".save(b, 'KMQ', optimize=True); print(hashlib.sha256(b.getvalue()).hexdigest())"
    )
    root = Path(__file__).resolve().parent.parent
    digests = set()
    for threads in ("1", "4"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        result = subprocess.run(
            [sys.executable, "-c", script, str(root), str(root / "tests")],
            env=env, capture_output=True, text=True, check=True,
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1


@pytest.mark.parametrize("k", [2, 3, 200, 256])
def test_pair_counts_are_a_plain_count_up_to_the_largest_label(k):
    """pair_counts codes a pair in 16 bits: (255, 255) at K = 256 must not wrap."""
    rng = np.random.default_rng(k)
    p, q = rng.integers(0, k, (2, 40, 50)).astype(np.uint8)
    p[0, :3], q[0, :3] = k - 1, (k - 1, 0, k - 1)
    expected = np.zeros((k, k), np.int64)
    np.add.at(expected, (p.ravel().astype(np.intp), q.ravel().astype(np.intp)), 1)
    assert np.array_equal(order.pair_counts(p, q, k), expected)
