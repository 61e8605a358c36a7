"""Index codings: how the label map is stored in the payload.

Coding 0 (raw) is the tutorial's: ceil(log2 K) bits per index, MSB first.
Each coding has a number (the header's coding field), an encoder from a
label map to payload bytes and a decoder back; the decoder gets a payload
whose length was already checked against the file and must reject (OSError)
anything the spec does not allow.
"""

from __future__ import annotations

import numpy as np

from . import bitpack

RAW = 0


class CodingError(OSError):
    """A payload that its coding does not allow."""


def encode_raw(labels: np.ndarray, k: int) -> bytes:
    return bitpack.pack(labels, bitpack.bits_per_index(k))


def decode_raw(payload: bytes | memoryview, width: int, height: int, k: int) -> np.ndarray:
    bits = bitpack.bits_per_index(k)
    count = width * height
    if len(payload) != bitpack.packed_size(count, bits):
        raise CodingError(
            f"raw payload is {len(payload)} bytes, expected {bitpack.packed_size(count, bits)}"
        )
    if not bitpack.padding_is_zero(payload, count, bits):
        raise CodingError("raw payload: padding bits after the last index are not zero")
    labels = bitpack.unpack(payload, count, bits)
    check_labels(labels, k)
    return labels.reshape(height, width)


def check_labels(labels: np.ndarray, k: int) -> None:
    if k < 256 and labels.size and int(labels.max()) >= k:
        raise CodingError(f"index {int(labels.max())} >= K={k}")


ENCODERS = {RAW: encode_raw}
DECODERS = {RAW: decode_raw}


def encode(labels: np.ndarray, k: int, coding: int = RAW) -> bytes:
    return ENCODERS[coding](labels, k)


def decode(payload: bytes | memoryview, width: int, height: int, k: int, coding: int) -> np.ndarray:
    """The (height, width) uint8 label map stored in a payload."""
    return DECODERS[coding](payload, width, height, k)
