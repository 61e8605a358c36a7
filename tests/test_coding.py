"""Index codings: round trips for every coding, mode and K, and malformed payloads."""

from __future__ import annotations

import bz2
import io
import lzma
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pil_kmq  # noqa: F401  (registers the format)
from pil_kmq.encoder import collapse_transparent
from pil_kmq.format import coding, container, entropy

MODES = {"L": 1, "RGB": 3, "RGBA": 4}
KS = (1, 2, 3, 16, 256)
STREAMS = entropy.STREAM_CODINGS
ALL_CODINGS = (coding.RAW, *STREAMS)


def label_map(height: int, width: int, k: int, seed: int = 0) -> np.ndarray:
    """A blocky map using every index 0..k-1 (where it fits), with some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((height, width))
    labels = (x // 3 + 2 * (y // 4)) % k
    noise = rng.random((height, width)) < 0.05
    labels[noise] = rng.integers(0, k, int(noise.sum()))
    flat = labels.reshape(-1)
    flat[: min(k, flat.size)] = np.arange(min(k, flat.size))
    return labels.astype(np.uint8)


def distinct_codebook(k: int, channels: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if channels == 1:
        return rng.permutation(256)[:k].astype(np.uint8).reshape(k, 1)
    # distinct colours: distinct first channel
    book = rng.integers(0, 256, (k, channels)).astype(np.uint8)
    book[:, 0] = rng.permutation(256)[:k]
    return book


def kmq_bytes(labels: np.ndarray, book: np.ndarray, number: int, payload: bytes) -> bytes:
    height, width = labels.shape
    header = container.Header(width=width, height=height, channels=book.shape[1], k=len(book), coding=number)
    return container.build(header, book.tobytes(), payload)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("number", ALL_CODINGS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("shape", [(23, 37), (1, 50), (50, 1), (1, 1), (70, 9)])
def test_encode_decode_direct(number, k, shape):
    labels = label_map(*shape, k)
    payload = coding.encode(labels, k, number)
    out = coding.decode(payload, shape[1], shape[0], k, number)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, labels)


@pytest.mark.parametrize("band", [1, 2, 3, 7, 32, 255])
@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (33, 17), (64, 5)])
def test_band_order_round_trip(band, shape):
    labels = label_map(*shape, 256, seed=band)
    stream = entropy.to_band_order(labels, band)
    assert len(stream) == labels.size
    np.testing.assert_array_equal(entropy.from_band_order(stream, shape[1], shape[0], band), labels)
    for number in STREAMS:
        payload = entropy.encode_stream(labels, 256, number, band)
        assert payload[0] == band
        np.testing.assert_array_equal(coding.decode(payload, shape[1], shape[0], 256, number), labels)


def test_band_order_is_column_major_inside_bands():
    labels = np.arange(15, dtype=np.uint8).reshape(5, 3)
    # bands of 2 rows: rows 0-1, rows 2-3, then row 4 alone
    assert list(entropy.to_band_order(labels, 2)) == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, 12, 13, 14]


@pytest.mark.parametrize("number", ALL_CODINGS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", KS)
def test_every_coding_opens_in_pillow(number, mode, k):
    labels = label_map(19, 26, k, seed=k)
    book = distinct_codebook(k, MODES[mode])
    data = kmq_bytes(labels, book, number, coding.encode(labels, k, number))
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode and image.size == (26, 19)
        pixels = np.asarray(image)
    expected = book[labels]
    if mode == "L":
        expected = expected[..., 0]
    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("shape", [(40, 60), (1, 80), (80, 1)])
def test_save_optimize_round_trip(mode, k, shape):
    labels = label_map(*shape, k, seed=3)
    book = distinct_codebook(k, MODES[mode])
    array = book[labels]
    image = Image.fromarray(array[..., 0] if mode == "L" else array, mode)
    plain, small = io.BytesIO(), io.BytesIO()
    image.save(plain, "KMQ", colors=256)
    image.save(small, "KMQ", colors=256, optimize=True)
    assert container.parse(plain.getvalue()).header.coding == coding.RAW
    assert len(small.getvalue()) <= len(plain.getvalue())
    for data in (plain.getvalue(), small.getvalue()):
        with Image.open(io.BytesIO(data)) as back:
            assert back.mode == mode
            # Fully transparent pixels come back as (0, 0, 0, 0) (encoder.collapse_transparent).
            expected = np.asarray(image)
            expected = collapse_transparent(expected[..., None] if mode == "L" else expected)
            np.testing.assert_array_equal(np.asarray(back), expected.reshape(np.asarray(image).shape))


def test_optimize_compresses_a_smooth_image_and_is_deterministic():
    labels = label_map(64, 96, 16)
    book = distinct_codebook(16, 3)
    image = Image.fromarray(book[labels], "RGB")
    outputs = []
    for _ in range(2):
        buffer = io.BytesIO()
        image.save(buffer, "KMQ", colors=16, optimize=True)
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1]
    parsed = container.parse(outputs[0])
    assert parsed.header.coding in STREAMS
    assert len(parsed.payload) < 64 * 96 * 4 // 8 / 2


def test_smallest_picks_the_smallest_candidate_and_keeps_colours():
    labels = label_map(30, 41, 64, seed=5)
    book = distinct_codebook(64, 3)
    number, new_book, payload = coding.smallest(labels, book)
    order = entropy.reorder_palette(labels, 64)
    relabelled, _ = entropy.apply_order(labels, book, order)
    sizes = [len(p) for _, p in entropy.candidates(relabelled, 64)]
    sizes.append(len(coding.encode(relabelled, 64, coding.RAW)))
    assert len(payload) == min(sizes)
    decoded = coding.decode(payload, 41, 30, 64, number)
    np.testing.assert_array_equal(new_book[decoded], book[labels])



def test_smallest_breaks_ties_to_the_lower_coding_number(monkeypatch):
    """spec: the smallest payload is kept, ties going to the lower coding
    number, whatever order the candidates are tried in (bzip2 before xz)."""
    labels = label_map(8, 8, 4)
    book = distinct_codebook(4, 3)
    fake = [(entropy.ZLIB, b"z" * 9), (entropy.BZIP2, b"b" * 5), (entropy.XZ, b"x" * 5)]
    monkeypatch.setattr(entropy, "candidates", lambda labels, k, codings=None: list(fake))
    number, _, payload = coding.smallest(labels, book)
    assert (number, payload) == (entropy.XZ, b"x" * 5)

def test_reorder_palette_is_a_permutation():
    labels = label_map(20, 20, 37)
    order = entropy.reorder_palette(labels, 37)
    assert sorted(order.tolist()) == list(range(37))



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
    expected = entropy.reorder_palette(labels, k)
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

    monkeypatch.setattr(entropy.np.linalg, "eigh", rotated_eigh)
    np.testing.assert_array_equal(entropy.reorder_palette(labels, k), expected)



def test_reorder_palette_does_not_hang_on_eigenvector_sign_or_rounding(monkeypatch):
    """Bars of 9 colours: a path graph, whose Fiedler vector is as large at
    one end as at the other. eigh may return any sign and differ in the last
    bits; the order must not follow either."""
    labels = np.tile(np.arange(9, dtype=np.uint8), (4, 1))
    expected = entropy.reorder_palette(labels, 9)
    original = np.linalg.eigh
    for seed in range(10):
        rng = np.random.default_rng(seed)

        def noisy_eigh(matrix):
            values, vectors = original(matrix)
            signs = rng.choice([-1.0, 1.0], vectors.shape[1])
            return values, vectors * signs + rng.standard_normal(vectors.shape) * 1e-14

        monkeypatch.setattr(entropy.np.linalg, "eigh", noisy_eigh)
        np.testing.assert_array_equal(entropy.reorder_palette(labels, 9), expected)

def test_optimize_gives_the_same_bytes_whatever_the_blas_thread_count():
    script = (
        "import hashlib, io, sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
        "import pil_kmq; from PIL import Image; "
        "sys.path.insert(0, sys.argv[2]); from test_coding import dots_on_background; "
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


# ---------------------------------------------------------------- malformed payloads

W, H, K = 40, 30, 16


@pytest.fixture(scope="module")
def good():
    labels = label_map(H, W, K)
    return labels, {n: coding.encode(labels, K, n) for n in STREAMS}


def raises_fast(payload, number, k=K, width=W, height=H):
    start = time.perf_counter()
    with pytest.raises(OSError):
        coding.decode(payload, width, height, k, number)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("number", STREAMS)
def test_truncated_payloads_raise(good, number):
    payload = good[1][number]
    for cut in sorted({0, 1, 2, len(payload) // 2, len(payload) - 1}):
        raises_fast(payload[:cut], number)


@pytest.mark.parametrize("number", STREAMS)
def test_trailing_bytes_raise(good, number):
    raises_fast(good[1][number] + b"\0", number)
    raises_fast(good[1][number] + good[1][number][1:], number)


@pytest.mark.parametrize("number", STREAMS)
def test_garbage_raises(number):
    rng = np.random.default_rng(number)
    for size in (1, 5, 100, 3000):
        raises_fast(b"\x01" + rng.integers(0, 256, size).astype(np.uint8).tobytes(), number)


@pytest.mark.parametrize("number", STREAMS)
def test_band_zero_raises(good, number):
    raises_fast(b"\0" + good[1][number][1:], number)


@pytest.mark.parametrize("number", STREAMS)
def test_index_not_below_k_raises(good, number):
    labels = good[0].copy()
    labels[H - 1, W - 1] = K  # one index too large
    payload = entropy.encode_stream(labels, 256, number, 1)
    raises_fast(payload, number)
    # the same stream is fine for a larger K
    coding.decode(payload, W, H, K + 1, number)


def _stream(number: int, data: bytes) -> bytes:
    if number == entropy.ZLIB:
        return zlib.compress(data, 9)
    if number == entropy.XZ:
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    return bz2.compress(data, 9)


@pytest.mark.parametrize("number", STREAMS)
def test_short_and_long_streams_raise(good, number):
    flat = good[0].tobytes()
    raises_fast(b"\x01" + _stream(number, flat[:-1]), number)
    raises_fast(b"\x01" + _stream(number, flat + b"\0"), number)


@pytest.mark.parametrize("number", STREAMS)
def test_decompression_bomb_raises_fast(number):
    # 64 MiB of zeros claimed for a 40x30 image
    bomb = b"\x01" + _stream(number, bytes(64 << 20) if number != entropy.XZ else bytes(8 << 20))
    assert len(bomb) < 200_000
    raises_fast(bomb, number)


def test_xz_dictionary_larger_than_the_image_needs_is_rejected(good):
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 30}]
    stream = lzma.compress(good[0].tobytes(), format=lzma.FORMAT_XZ, filters=filters)
    raises_fast(b"\x01" + stream, entropy.XZ)


@pytest.mark.parametrize("number", STREAMS)
def test_corrupt_file_in_pillow_raises_oserror(good, number):
    book = distinct_codebook(K, 3)
    payload = bytearray(good[1][number])
    payload[len(payload) // 2] ^= 0xFF
    data = kmq_bytes(good[0], book, number, bytes(payload))  # CRC is valid: the payload is bad
    with pytest.raises(OSError):
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    truncated = kmq_bytes(good[0], book, number, bytes(good[1][number]))[:-20]
    with pytest.raises(OSError):
        with Image.open(io.BytesIO(truncated)) as image:
            image.load()


def test_xz_other_filter_chains_are_rejected(good):
    filters = [{"id": lzma.FILTER_DELTA, "dist": 1}, {"id": lzma.FILTER_LZMA2, "dict_size": 4096}]
    stream = lzma.compress(good[0].tobytes(), format=lzma.FORMAT_XZ, filters=filters)
    raises_fast(b"\x01" + stream, entropy.XZ)
    # the same data with LZMA2 alone is fine, whatever the check type
    for check in (lzma.CHECK_NONE, lzma.CHECK_CRC32, lzma.CHECK_CRC64):
        stream = lzma.compress(good[0].tobytes(), format=lzma.FORMAT_XZ, check=check,
                               filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 4096}])
        np.testing.assert_array_equal(coding.decode(b"\x01" + stream, W, H, K, entropy.XZ), good[0])


def test_xz_two_streams_are_rejected(good):
    half = good[0].tobytes()[: W * H // 2]
    one = lzma.compress(half, format=lzma.FORMAT_XZ, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 4096}])
    raises_fast(b"\x01" + one + one, entropy.XZ)


@pytest.mark.parametrize("number", STREAMS)
def test_mutated_payloads_decode_or_raise_oserror(good, number):
    """Random byte changes: the decoder returns a valid map or raises OSError, nothing else."""
    rng = np.random.default_rng(100 + number)
    payload = good[1][number]
    for _ in range(150):
        mutated = bytearray(payload)
        for pos in rng.integers(0, len(mutated), rng.integers(1, 4)):
            mutated[pos] = int(rng.integers(0, 256))
        try:
            labels = coding.decode(bytes(mutated), W, H, K, number)
        except OSError:
            continue
        assert labels.shape == (H, W) and int(labels.max()) < K
