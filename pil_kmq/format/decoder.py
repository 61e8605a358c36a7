"""Decoding a .kmq file object: the head, then the labels band by band (raw:
a piece of rows at a time) into a sink, bands in threads, in bounded memory.

Shared by the Pillow plugin (load, verify, ImageFile.Parser) and by
pil_kmq.reader.read_labels, so that all of them accept and reject the same
files. Knows nothing of Pillow.
"""

from __future__ import annotations

import io
import os
import threading
import zlib
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from . import bands, parallel, raw
from .container import (
    CRC_SIZE, HEADER_SIZE, RAW, Header, KmqFormatError, check_crc, parse_chunks, parse_header,
)
from .pieces import Sink


class Source:
    """Positional reads from a file object, safe from several threads.
    Offsets are from the start of the .kmq file, which is at `base`."""

    def __init__(self, fp: IO[bytes], base: int = 0, size: int | None = None):
        self.fp, self.base = fp, base
        self.lock = threading.Lock()
        if size is None:
            fp.seek(0, os.SEEK_END)
            size = fp.tell() - base
        self.size = size

    def read_at(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self.size - offset))
        if size == 0:
            return b""
        with self.lock:
            self.fp.seek(self.base + offset)
            return self.fp.read(size)


@dataclass
class Layout:
    """What the head says: enough to decode, verify or read rows."""

    header: Header
    info: dict[str, bytes] = field(default_factory=dict)
    codebook: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.uint8))
    head_crc: int = 0  # CRC-32 of the header, metadata and codebook
    # band_table's answer for a file size, kept between check_length and
    # decode (a load walks the bands once: small files pay every fixed cost)
    walked: tuple[int, list[bands.Band], bool] | None = None


def read_head(read_at, file_size: int) -> Layout:
    """Header, metadata and codebook, checked (SyntaxError: not a .kmq file)."""
    first = read_at(0, HEADER_SIZE)
    header = parse_header(first)
    if file_size < header.payload_offset:
        raise KmqFormatError(
            f"truncated file: {file_size} bytes cannot hold the header, "
            f"{header.metadata_length} bytes of metadata and a {header.codebook_size}-byte codebook"
        )
    head = first + read_at(HEADER_SIZE, header.payload_offset - HEADER_SIZE)
    info = parse_chunks(memoryview(head)[HEADER_SIZE : header.codebook_offset])
    codebook = np.frombuffer(head, np.uint8, header.codebook_size, header.codebook_offset)
    return Layout(header, info, codebook.reshape(header.k, header.channels), zlib.crc32(head))


def band_table(read_at, layout: Layout, file_size: int) -> tuple[list[bands.Band], bool]:
    """The head CRC and band height checked; the complete bands, and whether
    the file holds all of them."""
    if layout.walked is not None and layout.walked[0] == file_size:
        return layout.walked[1], layout.walked[2]
    header = layout.header
    start = read_at(header.payload_offset, bands.PAYLOAD_HEAD_SIZE)
    if len(start) < bands.PAYLOAD_HEAD_SIZE:
        return [], False
    height_bytes = start[: bands.BAND_HEIGHT.size]
    check_crc(zlib.crc32(height_bytes, layout.head_crc), start[bands.BAND_HEIGHT.size :], "head")
    (band_height,) = bands.BAND_HEIGHT.unpack(height_bytes)
    bands.check_band_height(band_height, header.width, header.height)
    first = header.payload_offset + bands.PAYLOAD_HEAD_SIZE
    table, complete = bands.walk(read_at, first, file_size, header, band_height)
    layout.walked = (file_size, table, complete)
    return table, complete


def check_raw_length(layout: Layout, file_size: int) -> bool:
    """True if a raw file has exactly its length; False if short."""
    header = layout.header
    expected = header.payload_offset + header.raw_payload_size + CRC_SIZE
    if file_size > expected:
        raise KmqFormatError(
            f"file is {file_size - expected} bytes longer than its header implies ({expected} bytes)"
        )
    return file_size == expected


def check_length(source: Source, layout: Layout, allow_truncated: bool = False) -> None:
    """The file's length against its head (and band lengths): run before
    the image is allocated, so a tiny file cannot claim a huge one."""
    if layout.header.coding == RAW:
        complete = check_raw_length(layout, source.size)
    else:
        complete = band_table(source.read_at, layout, source.size)[1]
    if not complete and not allow_truncated:
        raise truncated_error(layout)


def truncated_error(layout: Layout) -> OSError:
    return OSError("image file is truncated: shorter than its header implies")


def decode(source: Source, layout: Layout, sink: Sink, allow_truncated: bool = False,
           threads: int | None = None) -> list[tuple[int, int, int, int]]:
    """Every label to sink, every check made. Returns the boxes (x0, y0, x1,
    y1) whose labels are 0 without going through sink: a one-colour raw
    image (no label bits), and with allow_truncated what a short file lacks."""
    header = layout.header
    if header.coding == RAW:
        if not check_raw_length(layout, source.size) and not allow_truncated:
            raise truncated_error(layout)
        done = raw.decode_all(source.read_at, header, layout.head_crc, sink)
        return _boxes_after(done, header.width, header.height)
    table, complete = band_table(source.read_at, layout, source.size)
    if not complete and not allow_truncated:
        raise truncated_error(layout)

    def one(band: bands.Band) -> None:
        bands.decode_band(source.read_at, band, header, sink)

    parallel.ordered_map(one, table, threads)
    top = table[-1].top + table[-1].rows if table else 0
    return [] if complete else [(0, top, header.width, header.height)]


def _boxes_after(first: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    if first >= width * height:
        return []
    y, x = divmod(first, width)
    boxes = []
    if x:
        boxes.append((x, y, width, y + 1))
        y += 1
    if y < height:
        boxes.append((0, y, width, height))
    return boxes


def verify(source: Source, layout: Layout) -> None:
    """Every check but building the image: lengths, every CRC and, for raw,
    every label < K (compressed bands are checked by their CRCs)."""
    header = layout.header
    if header.coding == RAW:
        if not check_raw_length(layout, source.size):
            raise truncated_error(layout)
        raw.decode_all(source.read_at, header, layout.head_crc, lambda x0, y0, block: None)
        return
    table, complete = band_table(source.read_at, layout, source.size)
    if not complete:
        raise truncated_error(layout)
    for band in table:
        bands.check_band_crc(source.read_at, band)


def is_complete(data: bytes | memoryview, layout: Layout) -> bool:
    """Whether `data` (the file from its payload on) holds the whole file:
    what an incremental parser waits for."""
    header = layout.header
    base = header.payload_offset
    source = Source(io.BytesIO(data), base=-base, size=base + len(data))
    if header.coding == RAW:
        return source.size >= base + header.raw_payload_size + CRC_SIZE
    try:
        return band_table(source.read_at, layout, source.size)[1]
    except KmqFormatError:
        return True  # complete enough to fail: decoding will say why
