"""Bit packing: labels <-> the raw index stream (MSB-first, b bits each).

Every 8 indices of b bits fill exactly b bytes, so the stream is handled in
groups of 8: a group is one big-endian 64-bit word whose top 8*b bits hold
the indices. That keeps both directions to a handful of vectorized shifts for
every b from 1 to 8, with no per-pixel Python loop and no 8x bit expansion.
"""

from __future__ import annotations

import numpy as np


def bits_per_index(k: int) -> int:
    """ceil(log2 K): the index width of a codebook of K entries (0 for K=1)."""
    if not 1 <= k <= 256:
        raise ValueError(f"K must be 1..256, got {k}")
    return (k - 1).bit_length()


def packed_size(count: int, bits: int) -> int:
    """Bytes of a raw stream of `count` indices of `bits` bits."""
    return (count * bits + 7) // 8


def _shifts(bits: int) -> np.ndarray:
    return np.array([64 - bits * (j + 1) for j in range(8)], dtype=np.uint64)


def pack(labels: np.ndarray, bits: int) -> bytes:
    """Pack labels (any shape, values < 2**bits) into the raw index stream."""
    flat = np.ascontiguousarray(labels, dtype=np.uint8).reshape(-1)
    if bits == 0:
        return b""
    if bits == 8:
        return flat.tobytes()
    count = flat.size
    groups = -(-count // 8)
    padded = np.zeros(groups * 8, dtype=np.uint64)
    padded[:count] = flat
    words = np.zeros(groups, dtype=np.uint64)
    for j, shift in enumerate(_shifts(bits)):
        words |= padded[j::8] << shift
    stream = words.astype(">u8").view(np.uint8).reshape(groups, 8)[:, :bits]
    return stream.tobytes()[: packed_size(count, bits)]


def unpack(stream: bytes | memoryview, count: int, bits: int) -> np.ndarray:
    """Unpack `count` indices of `bits` bits from the raw stream (uint8 array).

    The stream must hold at least packed_size(count, bits) bytes.
    """
    if bits == 0:
        return np.zeros(count, dtype=np.uint8)
    raw = np.frombuffer(stream, dtype=np.uint8, count=packed_size(count, bits))
    if bits == 8:
        return raw.copy()
    groups = -(-count // 8)
    grouped = np.zeros((groups, 8), dtype=np.uint8)
    grouped[:, :bits].flat[: raw.size] = raw
    words = grouped.view(">u8").reshape(groups).astype(np.uint64)
    mask = np.uint64((1 << bits) - 1)
    out = np.empty((groups, 8), dtype=np.uint8)
    for j, shift in enumerate(_shifts(bits)):
        out[:, j] = (words >> shift) & mask
    return out.reshape(-1)[:count]


def padding_is_zero(stream: bytes | memoryview, count: int, bits: int) -> bool:
    """True when the bits after the last index in the final byte are zero."""
    used = count * bits % 8
    if used == 0 or bits == 0:
        return True
    last = stream[packed_size(count, bits) - 1]
    return last & ((1 << (8 - used)) - 1) == 0
