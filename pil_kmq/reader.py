"""Reading .kmq files without Pillow's image: rows of the label map
(read_labels) and whole files in memory (parse), with the same checks as the
plugin's decoder (format/decoder.py)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import IO, Any, Sequence

import numpy as np

from .format import bands, parallel, raw
from .format.container import CRC_SIZE, RAW, Header
from .format.decoder import (
    Layout, Source, band_table, check_raw_length, decode, read_head, truncated_error,
)
from .format.pieces import Sink


def _wanted_rows(rows: Any, height: int) -> Sequence[int]:
    """Rows as a range or a list, every one checked to be in the image."""
    if rows is None:
        return range(height)
    if isinstance(rows, slice):
        if rows.step is not None and rows.step <= 0:
            raise ValueError("rows: a slice needs a positive step")
        for end in (rows.start, rows.stop):
            if end is not None and not 0 <= end <= height:
                raise IndexError(f"rows {rows}: outside the image's 0..{height}")
        return range(*rows.indices(height))
    if isinstance(rows, (int, np.integer)):
        raise TypeError("rows must be a range, a slice or a sequence of row numbers")
    rows = range(rows.start, rows.stop, rows.step) if isinstance(rows, range) else list(rows)
    for row in rows:
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
            raise ValueError(f"rows: {row!r} is not a row number")
        if not 0 <= row < height:
            raise IndexError(f"row {row} is outside the image (0..{height - 1})")
    return rows


def read_labels(fp: str | os.PathLike[str] | IO[bytes], rows: Any = None) -> np.ndarray:
    """The label map (segmentation) of a .kmq file, or some of its rows, as
    a (len(rows), W) uint8 array, without decoding colours.

    rows: None (all), a range, a slice or a sequence of row numbers (any
    order, repeats allowed); a row outside the image raises IndexError.
    Honours Image.MAX_IMAGE_PIXELS as Image.open does, and rejects what the
    decoder rejects. Only what the rows need is read: the bands holding
    them (each CRC checked), or for raw the bytes of those rows (the file
    CRC covers the whole file, so a partial raw read is unchecked).
    """
    from PIL import Image

    owned = isinstance(fp, (str, os.PathLike))
    file = open(fp, "rb") if owned else fp
    try:
        source = Source(file, base=file.tell())
        layout = read_head(source.read_at, source.size)
        header = layout.header
        Image._decompression_bomb_check((header.width, header.height))
        wanted = _wanted_rows(rows, header.height)
        out = np.zeros((len(wanted), header.width), dtype=np.uint8)
        if not len(wanted):
            return out
        positions: dict[int, list[int]] = {}
        for i, row in enumerate(wanted):
            positions.setdefault(int(row), []).append(i)

        def sink(x0: int, y0: int, block: np.ndarray) -> None:
            for dy in range(block.shape[0]):
                for i in positions.get(y0 + dy, ()):
                    out[i, x0 : x0 + block.shape[1]] = block[dy]

        if len(positions) == header.height:
            decode(source, layout, sink)
        elif header.coding == RAW:
            _read_raw_rows(source, layout, sorted(positions), sink)
        else:
            table, complete = band_table(source.read_at, layout, source.size)
            if not complete:
                raise truncated_error(layout)
            needed = [band for band in table if _rows_in(positions, band)]
            parallel.ordered_map(
                lambda b: bands.decode_band(source.read_at, b, header, sink),
                needed,
            )
        return out
    finally:
        if owned:
            file.close()


def _rows_in(positions: dict[int, list[int]], band: bands.Band) -> list[int]:
    return [y for y in positions if band.top <= y < band.top + band.rows]


def _read_raw_rows(source: Source, layout: Layout, rows: list[int], sink: Sink) -> None:
    header = layout.header
    if not check_raw_length(layout, source.size):
        raise truncated_error(layout)
    start = 0
    while start < len(rows):  # runs of consecutive rows
        end = start + 1
        while end < len(rows) and rows[end] == rows[end - 1] + 1:
            end += 1
        first, count = rows[start] * header.width, (end - start) * header.width
        raw.decode_range(source.read_at, header, first, count, sink)
        start = end


@dataclass
class Parsed:
    """A whole file read and checked in memory (tools and tests)."""

    header: Header
    info: dict[str, bytes]
    codebook: bytes
    payload: bytes  # everything after the codebook
    labels: np.ndarray


def parse(data: bytes) -> Parsed:
    """Read and fully check a complete .kmq file held in memory."""
    source = Source(io.BytesIO(data))
    layout = read_head(source.read_at, source.size)
    header = layout.header
    labels = np.zeros((header.height, header.width), dtype=np.uint8)

    def sink(x0: int, y0: int, block: np.ndarray) -> None:
        labels[y0 : y0 + block.shape[0], x0 : x0 + block.shape[1]] = block

    decode(source, layout, sink)
    end = len(data) - CRC_SIZE if header.coding == RAW else len(data)
    return Parsed(header, layout.info, layout.codebook.tobytes(), data[header.payload_offset : end], labels)
