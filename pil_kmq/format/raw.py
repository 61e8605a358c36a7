"""Coding 0 (raw): the tutorial's layout, ceil(log2 K) bits per label, MSB
first, one CRC for the whole file. Row y starts at bit y*W*b, so any rows
can be read without the others (unchecked: the CRC covers the whole file).
"""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np

from . import bitpack
from .container import Header, KmqFormatError, check_crc
from .pieces import PIECE_LABELS, ReadAt, Sink, check_labels, write_linear


def encode(labels: np.ndarray, k: int) -> bytes:
    return bitpack.pack(labels, bitpack.bits_per_label(k))


def decode_range(
    read_at: ReadAt, header: Header, first: int, count: int, sink: Sink, *,
    on_bytes: Callable[[bytes], None] | None = None,
) -> int:
    """Hand labels first .. first+count-1 (row-major) to sink, a piece at a
    time; return how many there were (fewer if the file ends early).

    Pieces start on multiples of 8 labels, which fill whole bytes, so the
    bytes read are contiguous and on_bytes (the CRC) sees each once when
    first is 0. The last label's padding bits must be zero."""
    bits, width = header.bits, header.width
    offset = header.payload_offset
    end = first + count
    start = first - first % 8
    while start < end:
        stop = min(start + PIECE_LABELS, end)
        size = bitpack.packed_size(stop - start, bits)
        data = read_at(offset + start * bits // 8, size)
        if on_bytes is not None:
            on_bytes(data)
        whole = min(stop - start, len(data) * 8 // bits) if bits else stop - start
        flat = bitpack.unpack(data, whole, bits)
        skip = max(first - start, 0)
        flat = flat[skip:]
        check_labels(flat, header.k)
        write_linear(sink, flat, start + skip, width)
        if whole < stop - start:
            return start + whole - first if start + whole > first else 0
        if stop == header.pixel_count and not bitpack.padding_is_zero(data, stop - start, bits):
            raise KmqFormatError("raw payload: padding bits after the last label are not zero")
        start = stop
    return count


def decode_all(read_at: ReadAt, header: Header, head_crc: int, sink: Sink) -> int:
    """Decode every label and check the file's CRC. Returns how many labels
    went to sink: fewer than W*H if the file is short (the CRC is then not
    checked; what was there went to sink). All labels but no CRC is the
    caller's to judge (it knows the file's length). With K = 1 there are no
    label bits and none go to sink: the caller fills the image with label 0."""
    crc = [head_crc]

    def add(data: bytes) -> None:
        crc[0] = zlib.crc32(data, crc[0])

    if header.bits == 0:  # K = 1: no label bits, every label is 0
        stored = read_at(header.payload_offset, 4)
        if len(stored) == 4:
            check_crc(crc[0], stored)
        return 0
    done = decode_range(read_at, header, 0, header.pixel_count, sink, on_bytes=add)
    stored = read_at(header.payload_offset + header.raw_payload_size, 4)
    if done == header.pixel_count and len(stored) == 4:
        check_crc(crc[0], stored)
    return done
