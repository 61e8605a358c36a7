"""One band's compressed stream (zlib or raw LZMA2), compressed whole and
decompressed a piece at a time, so that a decoder's memory never depends on
the band's size.

The spec allows exactly one stream per band that decompresses to exactly
the band's label bytes and ends exactly at the band's end; anything else
raises CodingError.
"""

from __future__ import annotations

import lzma
import zlib
from typing import Callable

from .container import XZ, ZLIB, KmqFormatError, band_label_width

# The LZMA2 dictionary size every band is decoded with (spec: "Coding 2").
LZMA2_DICT_SIZE = 1 << 20
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


# Encoder effort (compress): QUICK predicts which input codes smaller,
# THOROUGH is the slowest search the coder has.
QUICK, DEFAULT, THOROUGH = 0, 1, 2


def lzma2_filters(k: int = 256, preset: int = 6, effort: int = DEFAULT) -> list[dict]:
    """Encoder filter chain: with byte labels (K > 16) lc = 4 helps, the
    labels' high bits telling their group (see order.py)."""
    byte_labels = band_label_width(k) == 8
    search = BYTE_LABEL_SEARCH if byte_labels else {}
    if effort == THOROUGH:
        preset, search = 9 | lzma.PRESET_EXTREME, THOROUGH_SEARCH
    elif effort == QUICK:
        preset, search = 0, {}
    return [{
        "id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": LZMA2_DICT_SIZE,
        "lc": 4 if byte_labels else 0, "lp": 0, "pb": 0, **search,
    }]


def compress(data: bytes, coding: int, k: int = 256, effort: int = DEFAULT) -> bytes:
    if coding == ZLIB:
        return zlib.compress(data, 1 if effort == QUICK else 9)
    if coding == XZ:
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=lzma2_filters(k, effort=effort))
    raise ValueError(f"not a band coding: {coding}")


class Inflater:
    """Exact-size reads from one compressed stream whose bytes come from
    `source(n)` (at most n bytes, b"" at the band's end)."""

    def __init__(self, coding: int, source: Callable[[int], bytes]):
        self.name = "zlib" if coding == ZLIB else "xz"
        self.source = source
        self.is_zlib = coding == ZLIB
        self.pending = b""  # zlib: input it has not consumed yet
        self.stalls = 0
        if self.is_zlib:
            self.stream = zlib.decompressobj()
        else:
            filters = [{"id": lzma.FILTER_LZMA2, "dict_size": LZMA2_DICT_SIZE}]
            self.stream = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)

    def _more_input(self) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        if not self.is_zlib and not self.stream.needs_input:
            return b""
        return self.source(INPUT_CHUNK)

    def _step(self, limit: int) -> bytes:
        data = self._more_input()
        try:
            out = self.stream.decompress(data, limit)
        except (zlib.error, lzma.LZMAError, EOFError, ValueError, MemoryError) as error:
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
