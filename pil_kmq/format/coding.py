"""Index codings: how the label map is stored in the payload.

Coding 0 (raw) is the tutorial's: ceil(log2 K) bits per index, MSB first.
Codings 1 (zlib), 2 (xz) and 3 (bzip2) are the compressed ones of
entropy.py: one index per byte in band order under a standard stream.
Each coding has a number (the header's coding field), an encoder from a
label map to payload bytes and a decoder back; the decoder gets a payload
whose length was already checked against the file and must reject (OSError)
anything the spec does not allow.
"""

from __future__ import annotations

import numpy as np

from . import bitpack, entropy
from .entropy import BZIP2, XZ, ZLIB, CodingError

RAW = 0


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


def _stream_encoder(number: int):
    def encode_coded(labels: np.ndarray, k: int) -> bytes:
        return entropy.encode_stream(labels, k, number)

    return encode_coded


def _stream_decoder(number: int):
    def decode_coded(payload, width: int, height: int, k: int) -> np.ndarray:
        return entropy.decode_stream(payload, width, height, k, number)

    return decode_coded


ENCODERS = {RAW: encode_raw}
DECODERS = {RAW: decode_raw}
for _number in entropy.STREAM_CODINGS:
    ENCODERS[_number] = _stream_encoder(_number)
    DECODERS[_number] = _stream_decoder(_number)
NAMES = {RAW: "raw", ZLIB: "zlib", XZ: "xz", BZIP2: "bzip2"}


def encode(labels: np.ndarray, k: int, coding: int = RAW) -> bytes:
    return ENCODERS[coding](labels, k)


def smallest(
    labels: np.ndarray, codebook: np.ndarray, only: int | None = None
) -> tuple[int, np.ndarray, bytes]:
    """optimize=True: the smallest (coding, codebook, payload) the format has,
    or, with `only`, the smallest that coding can write.

    The codebook may come back permuted (the decoded colours are the same);
    raw is among the candidates, and ties go to the lower coding number.
    """
    k = len(codebook)
    order = entropy.reorder_palette(labels, k)
    labels, codebook = entropy.apply_order(labels, codebook, order)
    best = (RAW, encode_raw(labels, k)) if only in (None, RAW) else None
    codings = entropy.STREAM_CODINGS if only is None else (only,)
    for number, payload in entropy.candidates(labels, k, codings):
        if best is None or (len(payload), number) < (len(best[1]), best[0]):
            best = (number, payload)
    return best[0], codebook, best[1]


def decode(payload: bytes | memoryview, width: int, height: int, k: int, coding: int) -> np.ndarray:
    """The (height, width) uint8 label map stored in a payload."""
    return DECODERS[coding](payload, width, height, k)
