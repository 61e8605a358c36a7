"""Codings 1 (zlib), 2 (xz) and 3 (zstd): the label map in independent bands of rows.

    payload = B (uint32 band height) || CRC-32 of the head and B
              || band 0 || band 1 || ...           (ceil(H / B) bands)
    band    = S (uint8 strip height) || L (uint32) || L bytes of stream
              || CRC-32 of S, L and the stream

Each band's stream decompresses to its labels in strip order, w bits each
(Header.band_label_width: 1, 2, 4 or 8), MSB first, the last byte padded
with zero bits: the band's rows are cut into strips of S rows, stored one
after the other, each column by column (x = 0..W-1, each column top to
bottom). S = 1 is row-major. Bands are independent, so they decode in
parallel, in bounded memory, and one at a time for random access.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from . import bitpack, streams
from .container import CRC, Header, KmqFormatError, check_crc
from .lookup import PackedLookup
from .pieces import PIECE_LABELS, ReadAt, Sink, check_labels, write_linear

BAND_HEIGHT = struct.Struct(">I")
BAND_HEAD = struct.Struct(">BI")
PAYLOAD_HEAD_SIZE = BAND_HEIGHT.size + CRC.size  # B and the head CRC
BAND_OVERHEAD = BAND_HEAD.size + CRC.size  # S, L and the band CRC
MIN_BAND_LABELS = 1 << 16  # every band but the last holds at least this many
TARGET_BAND_LABELS = 1 << 18  # what the encoder aims for
STRIP_ALIGN = 32  # encoder: band heights are multiples of this (the tall strip)
# Encoder, optimize: a band of at most SMALL_BAND_LABELS labels (icons, small
# screenshots; never a band of a large image but its last) is coded with
# each of SMALL_BAND_STRIPS and the coder's slowest search, and the smallest
# kept. On the 64 oxygen icons against WebP lossless of the same labels
# (benchmarks/webp_gap.py): K=16 1.007 -> 0.953, K=64 1.011 -> 0.968,
# K=256 1.023 -> 1.004. S = 2 is the one that wins at K <= 16, where a
# byte holds two labels: one from each row of the strip.
SMALL_BAND_LABELS = 1 << 17
SMALL_BAND_STRIPS = (1, 2, 32, 64, 255)
# How many of them are coded thoroughly: those whose streams the quick
# search (LZMA2 preset 0) codes smallest. On 32 of the icons the best 2
# come within 0.15% of coding all 5 (the best 1: 0.6%) at half the time.
SMALL_BAND_TRIALS = 2


@dataclass(frozen=True)
class Band:
    index: int
    top: int  # first row
    rows: int
    offset: int  # of its S byte in the file
    strip: int
    length: int  # L

    @property
    def end(self) -> int:
        return self.offset + BAND_OVERHEAD + self.length


def min_band_height(width: int, height: int) -> int:
    return min(height, -(-MIN_BAND_LABELS // width))


def check_band_height(band_height: int, width: int, height: int) -> None:
    low = min_band_height(width, height)
    if not low <= band_height <= (1 << 24) - 1:
        raise KmqFormatError(
            f"bad band height {band_height}: must be {low}..{(1 << 24) - 1} for a "
            f"{width}x{height} image"
        )


def choose_band_height(width: int, height: int) -> int:
    """About TARGET_BAND_LABELS labels per band, bands of equal height (so
    that threads get equal work), a multiple of STRIP_ALIGN rows."""
    count = max(1, round(width * height / TARGET_BAND_LABELS))
    band = -(-height // count)
    band = -(-band // STRIP_ALIGN) * STRIP_ALIGN
    return max(min(band, height), min_band_height(width, height))


def band_rows(height: int, band_height: int) -> list[tuple[int, int]]:
    return [(top, min(band_height, height - top)) for top in range(0, height, band_height)]


def walk(read_at: ReadAt, start: int, file_size: int, header: Header, band_height: int):
    """The bands whose bytes are all in the file, and whether that is all
    of them (False: the file ends inside the band after the last one)."""
    bands = []
    offset = start
    for index, (top, rows) in enumerate(band_rows(header.height, band_height)):
        head = read_at(offset, BAND_HEAD.size)
        if len(head) < BAND_HEAD.size:
            return bands, False
        strip, length = BAND_HEAD.unpack(head)
        if strip == 0:
            raise KmqFormatError(f"band {index}: strip height 0")
        if length == 0:
            raise KmqFormatError(f"band {index}: empty stream")
        band = Band(index, top, rows, offset, strip, length)
        if band.end > file_size:
            return bands, False
        bands.append(band)
        offset = band.end
    if offset < file_size:
        raise KmqFormatError(
            f"file is {file_size - offset} bytes longer than its bands imply ({offset} bytes)"
        )
    return bands, True


# --------------------------------------------------------------------------
# strip order


def to_strip_order(labels: np.ndarray, strip: int) -> np.ndarray:
    """A band's (rows, W) labels, flat, in strip order."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    if strip == 1:
        return labels.reshape(-1)
    return np.concatenate([
        labels[top : top + strip].T.reshape(-1) for top in range(0, labels.shape[0], strip)
    ])


def label_stream(labels: np.ndarray, strip: int, width: int) -> bytes:
    """What a band's stream decompresses to: its labels in strip order,
    `width` bits each."""
    return bitpack.pack(to_strip_order(labels, strip), width)


class LabelReader:
    """Labels, `width` bits each, read from a band's decompressed stream a
    piece at a time; the few labels of a byte split between two pieces are
    kept for the next."""

    def __init__(self, inflater: streams.Inflater, width: int):
        self.inflater, self.width = inflater, width
        self.per_byte = 8 // width
        self.spare = np.zeros(0, np.uint8)

    def read(self, count: int) -> np.ndarray:
        if self.width == 8:
            return np.frombuffer(self.inflater.read(count), dtype=np.uint8)
        need = count - self.spare.size
        if need <= 0:
            labels, self.spare = self.spare[:count], self.spare[count:]
            return labels
        size = -(-need // self.per_byte)
        unpacked = bitpack.unpack(self.inflater.read(size), size * self.per_byte, self.width)
        labels = np.concatenate([self.spare, unpacked[:need]])
        self.spare = unpacked[need:]
        return labels

    def finish(self) -> None:
        """What is left of the last byte is padding: it must be zero bits."""
        if self.spare.any():
            raise KmqFormatError("band: non-zero padding bits after the last label")
        self.inflater.finish()


class PixelReader:
    """LabelReader's twin for a sink that takes pixels: packed bytes looked
    up straight to pixels (lookup.PackedLookup), `labels` labels in all."""

    def __init__(self, inflater: streams.Inflater, packed: PackedLookup, labels: int):
        self.inflater, self.packed = inflater, packed
        self.remaining = labels
        self.spare: np.ndarray | None = None  # pixels of a byte's labels not yet handed on
        self.last = 0  # the last byte read: its unused slots are the padding

    def read(self, count: int) -> np.ndarray:
        have = 0 if self.spare is None else self.spare.size
        if count <= have:
            pixels, self.spare = self.spare[:count], self.spare[count:]
            return pixels
        need = count - have
        per_byte = self.packed.per_byte
        packed = np.frombuffer(self.inflater.read(-(-need // per_byte)), dtype=np.uint8)
        labels = min(packed.size * per_byte, self.remaining)
        self.remaining -= labels
        self.last = int(packed[-1])
        pixels = self.packed.pixels(packed, labels)
        if have:
            pixels = np.concatenate([self.spare, pixels])
        pixels, self.spare = pixels[:count], pixels[count:]
        return pixels

    def finish(self) -> None:
        unused = 0 if self.spare is None else self.spare.size
        if self.last & ((1 << unused * self.packed.bits) - 1):
            raise KmqFormatError("band: non-zero padding bits after the last label")
        self.inflater.finish()


def _pieces(band: Band, width: int):
    """(label count, place) for each piece of the band in stream order;
    place(flat, sink) hands the piece's labels to the sink."""
    if band.strip == 1:
        total = band.rows * width
        for first in range(0, total, PIECE_LABELS):
            count = min(PIECE_LABELS, total - first)
            yield count, lambda flat, sink, first=first: write_linear(sink, flat, first, width, band.top)
        return
    strip, end = band.strip, band.top + band.rows
    # Whole strips that fit in a piece together go as one (small images:
    # one piece instead of one per strip, so the fixed cost of a piece is
    # paid once): n strips of (W, S) labels, each transposed to S rows.
    together = PIECE_LABELS // (strip * width)
    top = band.top
    while together > 1 and top + strip <= end:
        count = min(together, (end - top) // strip)
        yield count * strip * width, lambda flat, sink, top=top, count=count: sink(
            0, top, flat.reshape(count, width, strip).transpose(0, 2, 1).reshape(count * strip, width)
        )
        top += count * strip
    for top in range(top, end, strip):
        rows = min(strip, end - top)
        columns = max(1, PIECE_LABELS // rows)
        for x0 in range(0, width, columns):
            count = min(columns, width - x0) * rows
            yield count, lambda flat, sink, x0=x0, top=top, rows=rows: sink(
                x0, top, flat.reshape(-1, rows).T
            )


# --------------------------------------------------------------------------
# one band


def encode_band(packed: bytes, strip: int, coding: int, k: int, *, effort: int = streams.DEFAULT,
                near: bool = False) -> bytes:
    """S, L, the stream and the band CRC for a band's packed labels (what
    label_stream gives for that strip height); near: streams.near_matches."""
    stream = streams.compress(packed, coding, k, effort, near)
    head = BAND_HEAD.pack(strip, len(stream))
    return head + stream + CRC.pack(zlib.crc32(stream, zlib.crc32(head)))


def smallest_band(labels: np.ndarray, coding: int, k: int, width: int) -> bytes:
    """The smallest encode_band, with the coder's slowest search, of a small
    band's (rows, W) labels over the SMALL_BAND_TRIALS strip heights of
    SMALL_BAND_STRIPS whose streams a quick search codes smallest (heights
    at or above the band's are one strip: tried once); ties go to the
    lower S. For small images the best S is worth a few percent, and the
    zlib-1 predictor of larger bands misses it (1.3% at K=256 on icons)."""
    strips = sorted({min(strip, labels.shape[0]) for strip in SMALL_BAND_STRIPS})
    packed = {strip: label_stream(labels, strip, width) for strip in strips}
    quick = {strip: len(streams.compress(packed[strip], coding, k, streams.QUICK)) for strip in strips}
    tried = sorted(strips, key=lambda strip: (quick[strip], strip))[:SMALL_BAND_TRIALS]
    encoded = {strip: encode_band(packed[strip], strip, coding, k, effort=streams.THOROUGH) for strip in tried}
    return encoded[min(tried, key=lambda strip: (len(encoded[strip]), strip))]


def decode_band(read_at: ReadAt, band: Band, header: Header, sink: Sink) -> None:
    """Decompress a band a piece at a time into sink; check its CRC."""
    position = band.offset + BAND_HEAD.size
    end = position + band.length
    state = {"crc": zlib.crc32(BAND_HEAD.pack(band.strip, band.length)), "at": position}

    def source(size: int) -> bytes:
        size = min(size, end - state["at"])
        data = read_at(state["at"], size) if size > 0 else b""
        state["crc"] = zlib.crc32(data, state["crc"])
        state["at"] += len(data)
        return data

    def check() -> None:
        while source(streams.INPUT_CHUNK):
            pass
        check_crc(state["crc"], read_at(end, CRC.size), f"band {band.index}")

    labels = band.rows * header.width
    bits = header.band_label_width
    inflater = streams.Inflater(header.coding, source, bitpack.packed_size(labels, bits))
    # A sink with packed_lookup takes pixels looked up from the packed bytes
    # (w < 8: no unpacking). Byte labels go to it as labels: a strip's
    # transpose then moves bytes, not pixels (Kodak K = 64: 0.92-0.98 -> 0.87x
    # PNG-8's open + load).
    packed_lookup = getattr(sink, "packed_lookup", None) if bits < 8 else None
    if packed_lookup is not None:
        reader: LabelReader | PixelReader = PixelReader(inflater, packed_lookup(bits), labels)
        target = sink.write_pixels
    else:
        reader, target = LabelReader(inflater, bits), sink
    try:
        for count, place in _pieces(band, header.width):
            flat = reader.read(count)
            if target is sink:
                check_labels(flat, header.k)
            place(flat, target)
        reader.finish()
    except KmqFormatError:
        check()  # a bad CRC says more than what the stream made of the bytes
        raise
    check()


def check_band_crc(read_at: ReadAt, band: Band) -> None:
    """The band's CRC alone, without decompressing (verify)."""
    crc = zlib.crc32(BAND_HEAD.pack(band.strip, band.length))
    position, end = band.offset + BAND_HEAD.size, band.offset + BAND_HEAD.size + band.length
    while position < end:
        data = read_at(position, min(streams.INPUT_CHUNK * 16, end - position))
        if not data:
            raise KmqFormatError("image file is truncated")
        crc = zlib.crc32(data, crc)
        position += len(data)
    check_crc(crc, read_at(end, CRC.size), f"band {band.index}")
