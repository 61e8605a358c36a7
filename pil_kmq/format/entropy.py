"""Compressed index codings: a band-interleaved byte layout under a standard stream.

Codings 1 (zlib, RFC 1950), 2 (xz, LZMA2) and 3 (bzip2) share one layout:

    payload = B (1 byte, 1..255) || stream

where `stream` decompresses to exactly W*H bytes, one index per byte, in
*band order*: the rows are cut into bands of B rows (the last band holds the
H mod B rows left over, if any), bands are stored top to bottom, and inside a
band the pixels go column by column, left to right, each column top to
bottom. B = 1 is plain row-major order. Putting vertical neighbours next to
each other lets the stream's 1-D model see the row above as well as the pixel
to the left.

The encoder is free to choose B and the stream's parameters (level, LZMA
lc/lp/pb, block size): the decoder reads them from the stream. It is also
free to choose the order of the codebook (see reorder_palette): the decoded
colours do not depend on it.

Decoders never allocate more than the header justifies: every stream is
decompressed with max_length = W*H, xz with a memory limit derived from W*H,
and anything else (trailing bytes, a short or long stream, an index >= K)
raises CodingError.
"""

from __future__ import annotations

import bz2
import lzma
import zlib

import numpy as np

ZLIB = 1
XZ = 2
BZIP2 = 3
STREAM_CODINGS = (ZLIB, XZ, BZIP2)

# Band heights the encoder tries under optimize=True (the format allows 1..255).
BAND_CANDIDATES = (1, 32)

XZ_MIN_DICT = 1 << 12
XZ_MEMLIMIT_SLACK = 1 << 20  # decoder state beyond the dictionary

# Laplacian eigenvalues closer than this count as one repeated eigenvalue.
EIGEN_TIE = 1e-6


class CodingError(OSError):
    """A payload that its coding does not allow."""


# --------------------------------------------------------------------------
# layout


def to_band_order(labels: np.ndarray, band: int) -> bytes:
    """The (h, w) label map serialized in band order with band height `band`."""
    if not 1 <= band <= 255:
        raise ValueError(f"band height must be 1..255, got {band}")
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    height, width = labels.shape
    if band == 1:
        return labels.tobytes()
    full = height // band
    parts = []
    if full:
        head = labels[: full * band].reshape(full, band, width).transpose(0, 2, 1)
        parts.append(np.ascontiguousarray(head).tobytes())
    if height % band:
        parts.append(np.ascontiguousarray(labels[full * band :].T).tobytes())
    return b"".join(parts)


def from_band_order(stream: bytes, width: int, height: int, band: int) -> np.ndarray:
    """Inverse of to_band_order: the (h, w) uint8 label map."""
    flat = np.frombuffer(stream, dtype=np.uint8, count=width * height)
    if band == 1:
        return flat.reshape(height, width).copy()
    full = height // band
    out = np.empty((height, width), dtype=np.uint8)
    split = full * band * width
    if full:
        out[: full * band] = flat[:split].reshape(full, width, band).transpose(0, 2, 1).reshape(
            full * band, width
        )
    rest = height - full * band
    if rest:
        out[full * band :] = flat[split:].reshape(width, rest).T
    return out


# --------------------------------------------------------------------------
# streams


def xz_dict_size(count: int) -> int:
    """The largest LZMA2 dictionary an encoder may use for `count` indices."""
    size = XZ_MIN_DICT
    while size < count:
        size *= 2
    return size


def _compress(data: bytes, coding: int, variant: int = 0) -> bytes:
    if coding == ZLIB:
        return zlib.compress(data, 9)
    if coding == XZ:
        filters = [{
            "id": lzma.FILTER_LZMA2,
            "preset": 9 | lzma.PRESET_EXTREME,
            "dict_size": xz_dict_size(len(data)),
            "lc": (0, 4)[variant], "lp": 0, "pb": 0,
        }]
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, filters=filters)
    if coding == BZIP2:
        return bz2.compress(data, 9)
    raise ValueError(f"not a stream coding: {coding}")


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """An xz multibyte integer at pos: (value, next pos)."""
    value = 0
    for i in range(9):
        if pos + i >= len(data):
            break
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise CodingError("xz payload: bad multibyte integer")


def check_xz_layout(stream: bytes | memoryview, count: int) -> None:
    """The structure the spec requires of an xz payload, checked before any
    decoding: one stream with exactly one block whose filter chain is a
    single LZMA2 filter with a dictionary of at most xz_dict_size(count)."""
    if len(stream) < 12 + 12 or bytes(stream[:6]) != b"\xfd7zXZ\x00" or bytes(stream[-2:]) != b"YZ":
        raise CodingError("xz payload: not a complete xz stream")
    # block header: size, flags, [sizes], filter flags
    size = (stream[12] + 1) * 4
    if stream[12] == 0 or 12 + size > len(stream):
        raise CodingError("xz payload: bad block header")
    flags = stream[13]
    if flags & 0x03 != 0:
        raise CodingError("xz payload: the filter chain must be LZMA2 alone")
    pos = 14
    if flags & 0x40:
        _, pos = _varint(stream, pos)
    if flags & 0x80:
        _, pos = _varint(stream, pos)
    filter_id, pos = _varint(stream, pos)
    props_size, pos = _varint(stream, pos)
    if filter_id != 0x21 or props_size != 1 or pos >= 12 + size:
        raise CodingError("xz payload: the filter chain must be LZMA2 alone")
    bits = stream[pos] & 0x3F
    if bits > 40:
        raise CodingError("xz payload: bad LZMA2 dictionary size")
    dictionary = 0xFFFFFFFF if bits == 40 else (2 | (bits & 1)) << (bits // 2 + 11)
    if dictionary > xz_dict_size(count):
        raise CodingError(
            f"xz payload: LZMA2 dictionary of {dictionary} bytes, at most "
            f"{xz_dict_size(count)} allowed for {count} indices"
        )
    # index: one record
    backward = (int.from_bytes(bytes(stream[-8:-4]), "little") + 1) * 4
    start = len(stream) - 12 - backward
    if start < 12 + size or stream[start] != 0:
        raise CodingError("xz payload: bad index")
    records, _ = _varint(stream, start + 1)
    if records != 1:
        raise CodingError(f"xz payload: {records} blocks, exactly 1 allowed")


def _decompress(stream: bytes | memoryview, coding: int, count: int) -> bytes:
    """Exactly `count` bytes from one complete stream, or CodingError."""
    name = {ZLIB: "zlib", XZ: "xz", BZIP2: "bzip2"}[coding]
    try:
        if coding == ZLIB:
            d = zlib.decompressobj()
            out = d.decompress(stream, count)
            if not d.eof:
                # max_length stopped it: drive the stream once more to see
                # whether it ends here (a valid stream of `count` bytes does).
                out += d.decompress(d.unconsumed_tail, 1) if len(out) == count else b""
            ok = d.eof and not d.unused_data and not d.unconsumed_tail
        elif coding == XZ:
            check_xz_layout(stream, count)
            d = lzma.LZMADecompressor(
                format=lzma.FORMAT_XZ, memlimit=xz_dict_size(count) + XZ_MEMLIMIT_SLACK
            )
            out = d.decompress(stream, count)
            if not d.eof and len(out) == count:
                out += d.decompress(b"", 1)
            ok = d.eof and not d.unused_data
        else:
            d = bz2.BZ2Decompressor()
            out = d.decompress(stream, count)
            if not d.eof and len(out) == count:
                out += d.decompress(b"", 1)
            ok = d.eof and not d.unused_data
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, MemoryError) as exc:
        raise CodingError(f"{name} payload: {exc}") from None
    if not ok:
        if len(out) > count:
            raise CodingError(f"{name} payload decompresses to more than the {count} indices")
        raise CodingError(f"{name} payload: stream is incomplete or followed by extra bytes")
    if len(out) != count:
        raise CodingError(f"{name} payload holds {len(out)} indices, expected {count}")
    return out


# --------------------------------------------------------------------------
# codings


def encode_stream(labels: np.ndarray, k: int, coding: int, band: int = 1, variant: int = 0) -> bytes:
    data = to_band_order(labels, band)
    return bytes([band]) + _compress(data, coding, variant)


def decode_stream(
    payload: bytes | memoryview, width: int, height: int, k: int, coding: int
) -> np.ndarray:
    if len(payload) < 1:
        raise CodingError("payload is empty: no band height")
    band = payload[0]
    if band == 0:
        raise CodingError("band height 0")
    data = _decompress(memoryview(payload)[1:], coding, width * height)
    labels = from_band_order(data, width, height, band)
    if k < 256 and int(labels.max()) >= k:
        raise CodingError(f"index {int(labels.max())} >= K={k}")
    return labels


def candidates(labels: np.ndarray, k: int, codings=STREAM_CODINGS) -> list[tuple[int, bytes]]:
    """Every (coding, payload) the encoder tries under optimize=True, of the
    given codings."""
    out = [
        (number, encode_stream(labels, k, number, 1)) for number in (ZLIB, BZIP2) if number in codings
    ]
    if XZ in codings:
        for band in BAND_CANDIDATES:
            if band > 1 and labels.shape[0] == 1:
                continue
            for variant in (0, 1):
                out.append((XZ, encode_stream(labels, k, XZ, band, variant)))
    return out


# --------------------------------------------------------------------------
# palette order


def adjacency(labels: np.ndarray, k: int) -> np.ndarray:
    """(k, k) symmetric counts of horizontally or vertically adjacent pairs."""
    a = np.asarray(labels, dtype=np.int64)
    counts = np.zeros(k * k, dtype=np.int64)
    for p, q in ((a[:, 1:], a[:, :-1]), (a[1:], a[:-1])):
        counts += np.bincount((p * k + q).ravel(), minlength=k * k)
    m = counts.reshape(k, k)
    return m + m.T


def _fiedler_split(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """idx sorted by the Fiedler vector of the normalized Laplacian of m[idx, idx]."""
    sub = m[np.ix_(idx, idx)].astype(np.float64)
    np.fill_diagonal(sub, 0.0)
    degree = sub.sum(axis=1) + 1e-9
    scale = 1.0 / np.sqrt(degree)
    laplacian = np.eye(len(idx)) - scale[:, None] * sub * scale[None, :]
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


def reorder_palette(labels: np.ndarray, k: int) -> np.ndarray:
    """A permutation `order` of 0..k-1 giving often-adjacent colours nearby
    indices, hierarchically: new index i is old index order[i].

    Recursive spectral bisection of the adjacency graph: the indices are
    sorted by the graph's Fiedler vector and cut into halves, and each half
    is ordered the same way, so that every aligned block of 2^j indices holds
    colours that appear next to each other. The high bits of an index then
    say which group of colours it is in, which is what an LZMA literal coder
    (lc = high bits of the previous byte, bitwise tree over the current one)
    can use. Deterministic for a given input.
    """
    m = adjacency(labels, k)

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
    """(labels, codebook) relabelled so that new index i is old index order[i]."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return inverse.astype(np.uint8)[labels], np.ascontiguousarray(codebook[order])
