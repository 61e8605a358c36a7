"""Bit packing: labels <-> the raw label stream (MSB-first, b bits each).

Every 8 labels of b bits fill exactly b bytes, so the stream is handled in
groups of 8: a group is one big-endian 64-bit word whose top 8*b bits hold
the labels. That keeps both directions to a handful of vectorized shifts for
every b from 1 to 8, with no per-pixel Python loop and no 8x bit expansion.
"""

from __future__ import annotations

import math

import numpy as np


def bits_per_label(k: int) -> int:
    """ceil(log2 K): the label width of a codebook of K entries (0 for K=1)."""
    if not 1 <= k <= 256:
        raise ValueError(f"K must be 1..256, got {k}")
    return (k - 1).bit_length()


def packed_size(count: int, bits: int) -> int:
    """Bytes of a raw stream of `count` labels of `bits` bits."""
    return (count * bits + 7) // 8


def group_shape(bits: int) -> tuple[int, int]:
    """(labels, bytes) of the smallest run of labels that fills whole
    bytes: every such group starts on a byte, which is what lets a reader
    start anywhere in the stream at a group boundary."""
    common = math.gcd(bits, 8)
    return 8 // common, bits // common


def _shifts(bits: int) -> np.ndarray:
    return np.array([64 - bits * (j + 1) for j in range(8)], dtype=np.uint64)


# Labels packed per slice: bounded working memory (the 64-bit groups take
# 8 bytes a label) whatever the image size; a multiple of 8 labels, so every
# slice starts on a byte.
SLICE_LABELS = 1 << 20


def pack(labels: np.ndarray, bits: int) -> bytes:
    """Pack labels (any shape, values < 2**bits) into the raw label stream."""
    flat = np.ascontiguousarray(labels, dtype=np.uint8).reshape(-1)
    if bits == 0:
        return b""
    if bits == 8:
        return flat.tobytes()
    stream = np.empty(packed_size(flat.size, bits), dtype=np.uint8)
    for start in range(0, flat.size, SLICE_LABELS):
        part = _pack_slice(flat[start : start + SLICE_LABELS], bits)
        offset = start * bits // 8
        stream[offset : offset + part.size] = part
    return stream.tobytes()


def _pack_slice(flat: np.ndarray, bits: int) -> np.ndarray:
    """packed_size(len(flat), bits) bytes. Widths that divide 8 combine
    uint8 lanes directly; the others go through one 64-bit word per group."""
    count = flat.size
    if bits == 1:
        return np.packbits(flat)
    if bits in (2, 4):
        per_byte = 8 // bits
        lanes = np.zeros(-(-count // per_byte) * per_byte, dtype=np.uint8)
        lanes[:count] = flat
        lanes = lanes.reshape(-1, per_byte)
        packed = lanes[:, 0] << np.uint8(8 - bits)
        for j in range(1, per_byte):
            packed |= lanes[:, j] << np.uint8(8 - bits * (j + 1))
        return packed
    groups = -(-count // 8)
    padded = np.zeros(groups * 8, dtype=np.uint64)
    padded[:count] = flat
    words = np.zeros(groups, dtype=np.uint64)
    for j, shift in enumerate(_shifts(bits)):
        words |= padded[j::8] << shift
    stream = words.astype(">u8").view(np.uint8).reshape(groups, 8)[:, :bits]
    return stream.reshape(-1)[: packed_size(count, bits)]


def unpack(stream: bytes | memoryview, count: int, bits: int) -> np.ndarray:
    """Unpack `count` labels of `bits` bits from the raw stream (uint8 array).

    The stream must hold at least packed_size(count, bits) bytes.
    """
    if bits == 0:
        return np.zeros(count, dtype=np.uint8)
    raw = np.frombuffer(stream, dtype=np.uint8, count=packed_size(count, bits))
    if bits == 8:
        return raw
    if bits == 1:
        return np.unpackbits(raw, count=count)
    if 8 % bits == 0:
        # Whole labels per byte (b = 2, 4): one shift per position in a byte.
        per_byte = 8 // bits
        out = np.empty((raw.size, per_byte), dtype=np.uint8)
        mask = (1 << bits) - 1
        for j in range(per_byte):
            np.bitwise_and(raw >> (8 - bits * (j + 1)), mask, out=out[:, j])
        return out.reshape(-1)[:count]
    # b = 3, 5, 6, 7: a group of g labels fills whole bytes (g = 4 for b = 6,
    # else 8). Label j of a group starts r bits into byte q of it and ends
    # within byte q + 1, so it is read from those two bytes as one 16-bit value.
    per_group, group_bytes = group_shape(bits)
    groups = -(-count // per_group)
    whole = np.zeros(groups * group_bytes, dtype=np.uint8)
    whole[: raw.size] = raw
    grouped = whole.reshape(groups, group_bytes)
    mask = (1 << bits) - 1
    out = np.empty((groups, per_group), dtype=np.uint8)
    for j in range(per_group):
        q, r = divmod(j * bits, 8)
        high = grouped[:, q].astype(np.uint16) << 8
        low = grouped[:, q + 1] if q + 1 < group_bytes else 0
        pair = high | low
        np.bitwise_and(pair >> (16 - bits - r), mask, out=out[:, j], casting="unsafe")
    return out.reshape(-1)[:count]


def padding_is_zero(stream: bytes | memoryview, count: int, bits: int) -> bool:
    """True when the bits after the last label in the final byte are zero."""
    used = count * bits % 8
    if used == 0 or bits == 0:
        return True
    last = stream[packed_size(count, bits) - 1]
    return last & ((1 << (8 - used)) - 1) == 0
