"""One band's compressed stream (zlib, raw LZMA2 or one zstd frame),
compressed whole and decompressed a piece at a time, so that a decoder's
memory never depends on the band's size.

The spec allows exactly one stream per band that decompresses to exactly
the band's label bytes and ends exactly at the band's end; anything else
raises CodingError. A zstd frame's header is checked here, before libzstd
sees it: it must state that size, a window of at most MAX_WINDOW, no
dictionary and no checksum (the band CRC covers the stream).
"""

from __future__ import annotations

import lzma
import zlib
from functools import cache
from typing import Callable

from . import zstdlib
from .container import CODING_NAMES, XZ, ZLIB, ZSTD, KmqFormatError, band_label_width

# The farthest back a band's stream may refer (spec: codings 2 and 3): the
# LZMA2 dictionary every band is decoded with, and the largest zstd window.
MAX_WINDOW = 1 << 20
LZMA2_DICT_SIZE = MAX_WINDOW
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Compressed bytes fed to a decompressor at a time.
INPUT_CHUNK = 1 << 16


class CodingError(KmqFormatError):
    """A band whose stream its coding does not allow."""


# Encoder match search above K = 16 (byte labels): a shorter binary-tree
# search than preset 6's. On Kodak at K = 64 the optimize write takes 12%
# less time (54.5 -> 47.8 ms an image) for 0.44% more bytes, which brings
# an optimize encode within 2x a plain one (2.09 -> 1.95); at K <= 16
# (packed labels) it would cost more than it saves.
BYTE_LABEL_SEARCH = {"depth": 8, "nice_len": 48}
# Encoder match search for small bands (bands.SMALL_BAND_LABELS): the
# longest and deepest there is. On the oxygen icons (32 of 64, S as
# bands.smallest_band picks) it gives 1.5-2.5% smaller streams than preset
# 6's, at about twice its time, which a small band can afford.
THOROUGH_SEARCH = {"nice_len": 273, "depth": 0}


# Encoder, optimize, byte labels: a band whose zlib level 1 stream (coding.py's
# strip predictor) keeps at least NEAR_RATIO of its bytes (1.6 bits a label:
# photographs, their noise and texture; of the 40 screenshots' bands, 2 of one
# image at K = 256) is coded with a NEAR_DICT_SIZE dictionary. Its useful
# matches are near (the row above, the column before); a 1 MiB dictionary
# offers the search far ones that cost longer distances. On the 48 Mpx photo
# tiling (benchmarks/stream_scale.py, K = 256) LZMA2 takes 0.74x the time for
# 0.22% fewer bytes; on Kodak at K = 64/256 0.75x for 0.04% fewer; the two
# screenshot bands 0.25% fewer each. Bands at 1.4 bits a label (screenshots)
# still gain 2-5% from 1 MiB; packed labels (K <= 16) keep it too (Kodak
# K = 16 grew 0.2% at 4 KiB), and so does xz without optimize (coding.py).
NEAR_RATIO = 0.2
NEAR_DICT_SIZE = 1 << 12  # LZMA2's smallest


# Encoder effort (compress): QUICK predicts which input codes smaller,
# THOROUGH is the slowest search the coder has.
QUICK, DEFAULT, THOROUGH = 0, 1, 2


def lzma2_filters(k: int = 256, preset: int = 6, effort: int = DEFAULT, near: bool = False) -> list[dict]:
    """Encoder filter chain (the spec leaves it to the encoder): preset 6,
    lp = pb = 0 (labels have no alignment a position could predict); with
    byte labels (K > 16) lc = 4, the labels' high bits telling their group
    (see order.py), and the shorter match search above, in a NEAR_DICT_SIZE
    dictionary if `near` (the band compresses poorly: near_matches). QUICK
    is preset 0 (a predictor of which input codes smaller), THOROUGH preset
    9e with the longest, deepest search (small bands: bands.smallest_band)."""
    byte_labels = band_label_width(k) == 8
    search = BYTE_LABEL_SEARCH if byte_labels else {}
    dict_size = NEAR_DICT_SIZE if near and byte_labels and effort == DEFAULT else LZMA2_DICT_SIZE
    if effort == THOROUGH:
        preset, search = 9 | lzma.PRESET_EXTREME, THOROUGH_SEARCH
    elif effort == QUICK:
        preset, search = 0, {}
    return [{
        "id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": dict_size,
        "lc": 4 if byte_labels else 0, "lp": 0, "pb": 0, **search,
    }]


# Encoder: zstd level 15, chosen on Kodak, 64 icons and 40 screenshots at
# K = 16/64/256 (w-bit labels, strip height per band as coding.py chooses),
# total size against the zlib coding: level 13 0.94-0.96x on Kodak and
# 0.95-0.99x on icons (over the 0.95x goal at K = 16 on Kodak and at every K
# on icons); 15 0.92-0.94x on Kodak, 0.89-0.93x icons, 0.81-0.89x
# screenshots; 19 0.3-4% smaller than 15 for 2-5x its time. One byte per
# label instead of w bits (K = 16 alone differs): Kodak 0.928x against
# 0.937x, icons 0.834x against 0.885x, screenshots 0.821x against 0.808x,
# for twice the bytes to code: not taken, for encode time.
ZSTD_LEVEL = 15


def zstd_options(level: int = ZSTD_LEVEL) -> dict:
    """Encoder parameters: the window capped at the decoders' limit (libzstd
    shrinks it further to the band's size), the content size written, no
    checksum (the band CRC covers the stream) and no dictionary."""
    parameter = zstdlib.module().CompressionParameter
    return {
        parameter.compression_level: level, parameter.window_log: MAX_WINDOW.bit_length() - 1,
        parameter.content_size_flag: 1, parameter.checksum_flag: 0, parameter.dict_id_flag: 0,
    }


def near_matches(k: int, quick_size: int, size: int) -> bool:
    """Whether xz codes a band of byte labels with the near dictionary, from
    the size of its `size` label bytes under zlib level 1 (quick_size)."""
    return band_label_width(k) == 8 and quick_size >= NEAR_RATIO * size


def compress(data: bytes, coding: int, k: int = 256, effort: int = DEFAULT, near: bool = False) -> bytes:
    if coding == ZLIB:
        return zlib.compress(data, 1 if effort == QUICK else 9)
    if coding == XZ:
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=lzma2_filters(k, effort=effort, near=near))
    if coding == ZSTD:
        return zstdlib.module().compress(data, options=zstd_options())
    raise ValueError(f"not a band coding: {coding}")


def check_zstd_frame_header(data: bytes, size: int) -> None:
    """The frame header (RFC 8878 3.1.1.1) at the start of `data` against
    coding 3's rules, for a band whose labels take `size` bytes; so a frame
    can never make libzstd allocate more than MAX_WINDOW."""
    if len(data) < 5 or data[:4] != ZSTD_MAGIC:
        raise CodingError("zstd band: the stream does not start with a zstd frame")
    descriptor = data[4]
    content_flag, single_segment = descriptor >> 6, descriptor >> 5 & 1
    if descriptor & 0x08:
        raise CodingError("zstd band: reserved bit set in the frame header")
    if descriptor & 0x03:
        raise CodingError("zstd band: the frame names a dictionary")
    if descriptor & 0x04:
        raise CodingError("zstd band: the frame has a content checksum")
    if content_flag == 0 and not single_segment:
        raise CodingError("zstd band: the frame does not state its content size")
    position, window = 5, None
    if not single_segment:
        if len(data) < 6:
            raise CodingError("zstd band: stream ends inside the frame header")
        exponent, mantissa = data[5] >> 3, data[5] & 7
        base = 1 << (10 + exponent)
        window = base + (base >> 3) * mantissa
        position = 6
    field = (1, 2, 4, 8)[content_flag]
    if len(data) < position + field:
        raise CodingError("zstd band: stream ends inside the frame header")
    content = int.from_bytes(data[position : position + field], "little") + (256 if field == 2 else 0)
    if content != size:
        raise CodingError(f"zstd band: frame content size {content}, but the band's labels take {size} bytes")
    if window is None:
        window = content
    if window > MAX_WINDOW:
        raise CodingError(f"zstd band: window of {window} bytes, more than {MAX_WINDOW}")


@cache
def _zstd_window_limit() -> dict:
    """Decoder option: libzstd refuses a window over MAX_WINDOW (the frame
    header check already did; this keeps libzstd to it as well). Built once:
    small files pay for every fixed cost."""
    return {zstdlib.module().DecompressionParameter.window_log_max: MAX_WINDOW.bit_length() - 1}


class Inflater:
    """Exact-size reads from one compressed stream whose bytes come from
    `source(n)` (at most n bytes, b"" at the band's end) and decompress to
    `size` bytes."""

    def __init__(self, coding: int, source: Callable[[int], bytes], size: int):
        self.name = CODING_NAMES[coding]
        self.source, self.size = source, size
        self.is_zlib = coding == ZLIB
        self.frame_unchecked = coding == ZSTD
        self.pending = b""  # zlib: input it has not consumed yet
        self.stalls = 0
        self.errors: tuple[type[BaseException], ...] = (
            zlib.error, lzma.LZMAError, EOFError, ValueError, MemoryError)
        if self.is_zlib:
            self.stream = zlib.decompressobj()
        elif coding == ZSTD:
            zstd, limit = zstdlib.module(), _zstd_window_limit()
            self.stream = zstd.ZstdDecompressor(options=limit)
            self.errors += (zstd.ZstdError,)
        else:
            filters = [{"id": lzma.FILTER_LZMA2, "dict_size": LZMA2_DICT_SIZE}]
            self.stream = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)

    def _more_input(self) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        if not self.is_zlib and not self.stream.needs_input:
            return b""
        data = self.source(INPUT_CHUNK)
        if self.frame_unchecked:
            check_zstd_frame_header(data, self.size)
            self.frame_unchecked = False
        return data

    def _step(self, limit: int) -> bytes:
        data = self._more_input()
        try:
            out = self.stream.decompress(data, limit)
        except self.errors as error:
            raise CodingError(f"{self.name} band: {error}") from None
        if self.is_zlib:
            self.pending = bytes(self.stream.unconsumed_tail)
        self.stalls = 0 if out or data else self.stalls + 1
        if self.stalls > 2:
            raise CodingError(f"{self.name} band: stream is incomplete")
        return out

    def read(self, size: int) -> bytes:
        """Exactly `size` decompressed bytes."""
        parts, need = [], size
        while need:
            if self.stream.eof:
                raise CodingError(f"{self.name} band: stream ends {need} bytes early")
            out = self._step(need)
            parts.append(out)
            need -= len(out)
        return b"".join(parts)

    def finish(self) -> None:
        """The stream must end here, exactly at the end of the band."""
        while not self.stream.eof:
            if self._step(1):
                raise CodingError(f"{self.name} band decompresses to more than the band's labels")
        if self.stream.unused_data or self.pending or self.source(1):
            raise CodingError(f"{self.name} band: the stream is followed by extra bytes")
