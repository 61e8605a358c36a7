"""A .kmq file read back as row blocks (its bands; for raw, blocks of rows)
in memory bounded by a few bands, with every check the plugin's decoder
makes (format/decoder.py does the reading)."""

from __future__ import annotations

import os
import zlib
from typing import IO, Iterator

import numpy as np
from PIL import Image

from ..format import bands, raw
from ..format.container import RAW, check_crc
from ..format.decoder import Source, band_table, check_raw_length, read_head, truncated_error
from .encode import RAW_BLOCK_LABELS
from .pipeline import ordered_window


class StreamReader:
    """A .kmq file open for reading by bands.

    check_size: honour Image.MAX_IMAGE_PIXELS as Image.open does. Reading
    by bands needs memory for a few bands only, so callers writing the
    pixels somewhere other than memory (a .npy, a TIFF) may turn it off.
    """

    def __init__(self, fp: str | os.PathLike[str] | IO[bytes], check_size: bool = True):
        self.owned = isinstance(fp, (str, os.PathLike))
        self.file = open(fp, "rb") if self.owned else fp
        try:
            self.source = Source(self.file, base=self.file.tell())
            self.layout = read_head(self.source.read_at, self.source.size)
            header = self.header = self.layout.header
            if check_size:
                Image._decompression_bomb_check((header.width, header.height))
            if header.coding == RAW:
                if not check_raw_length(self.layout, self.source.size):
                    raise truncated_error(self.layout)
                rows = -(-RAW_BLOCK_LABELS // header.width)
                self.bands = None
                self.spans = bands.band_rows(header.height, -(-rows // 8) * 8)
            else:
                self.bands, complete = band_table(self.source.read_at, self.layout, self.source.size)
                if not complete:
                    raise truncated_error(self.layout)
                self.spans = [(band.top, band.rows) for band in self.bands]
        except BaseException:
            self.close()
            raise

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.header.height, self.header.width, self.header.channels

    @property
    def codebook(self) -> np.ndarray:
        return self.layout.codebook

    @property
    def info(self) -> dict:
        return self.layout.info

    def read_band(self, index: int) -> np.ndarray:
        """Band `index`'s labels (rows, W): its CRC checked (raw: unchecked,
        the file's one CRC covers the whole file)."""
        top, rows = self.spans[index]
        out = np.zeros((rows, self.header.width), np.uint8)

        def sink(x0: int, y0: int, block: np.ndarray) -> None:
            out[y0 - top : y0 - top + block.shape[0], x0 : x0 + block.shape[1]] = block

        if self.bands is None:
            raw.decode_range(self.source.read_at, self.header, top * self.header.width, rows * self.header.width, sink)
        else:
            bands.decode_band(self.source.read_at, self.bands[index], self.header, sink)
        return out

    def label_bands(self, threads: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(top row, labels) of every band in order; a raw file's CRC is
        checked after its last block (before the iterator ends)."""
        if self.bands is None:
            yield from self._raw_blocks()
            return
        for index, labels in enumerate(ordered_window(self.read_band, range(len(self.spans)), threads)):
            yield self.spans[index][0], labels

    def pixel_bands(self, threads: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(top row, pixels (rows, W, C)) of every band in order."""
        for top, labels in self.label_bands(threads):
            yield top, self.codebook[labels]

    def _raw_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        header = self.header
        crc = [self.layout.head_crc]

        def add(data: bytes) -> None:
            crc[0] = zlib.crc32(data, crc[0])

        for top, rows in self.spans:
            out = np.zeros((rows, header.width), np.uint8)

            def sink(x0: int, y0: int, block: np.ndarray, top=top, out=out) -> None:
                out[y0 - top : y0 - top + block.shape[0], x0 : x0 + block.shape[1]] = block

            raw.decode_range(self.source.read_at, header, top * header.width, rows * header.width, sink, on_bytes=add)
            if top + rows == header.height:
                stored = self.source.read_at(header.payload_offset + header.raw_payload_size, 4)
                check_crc(crc[0], stored)
            yield top, out

    def close(self) -> None:
        if self.owned and not self.file.closed:
            self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
