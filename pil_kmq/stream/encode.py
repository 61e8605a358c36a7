"""A .kmq file from a source of row blocks, in passes over the rows:

1. "pixels": the exact colour histogram, block by block (histogram.py);
   then "quantize": k-means on it, once (the encoder's quantizer.cluster_colours);
2. "order" (optimize, K > 2, a compressed coding): the labels' adjacency,
   band by band, for the codebook order (format/order.py);
3. "code": each band's labels (the encoder's lookup), remapped to that
   order, coded by the encoder's own band coder, bands in threads and
   written in order.

Each stage is the in-memory encoder's function applied to a piece, and
every piece's answer adds up to the whole image's (counts, pair counts), so
the bytes are Image.save's. Options whose answer depends on the whole image
at once (dither, psnr/quality, smooth) are refused by name.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from typing import IO, Any, Callable, Iterator

import numpy as np

from .. import format
from ..encoder import collapse_transparent, image_metadata, premultiply, unpremultiply
from ..format import bands, bitpack, coding, order
from ..format.container import CRC, RAW
from ..options import Options, OptionValueError
from ..quantize.histogram import label_lookup, mapped_histogram
from ..quantize.quantizer import cluster_colours
from .histogram import ColourCounter, block_counts
from .pipeline import ordered_window
from .rows import RowSource

# Pixels per block of the histogram pass.
BLOCK_PIXELS = 1 << 20
# Labels per block of a raw file (rounded to whole rows, a multiple of 8
# rows so that every block packs to whole bytes).
RAW_BLOCK_LABELS = 1 << 18

STAGES = ("pixels", "quantize", "order", "code")


def refuse_whole_image_options(options: Options) -> None:
    reasons = {
        "dither": options.dither,
        "quality": options.quality is not None,
        "psnr": options.psnr is not None,
        "smooth": bool(options.smooth),
    }
    refused = [name for name, given in reasons.items() if given]
    if refused:
        raise OptionValueError(
            f"{', '.join(refused)} cannot be used when encoding by row blocks: "
            "error diffusion, the psnr/quality search and smoothing depend on the whole "
            "image at once; load the image and use Image.save for them"
        )


def save_rows(source: RowSource, fp: str | os.PathLike[str] | IO[bytes], **params: Any) -> None:
    """Write `source` (rows.py) as a .kmq file to a path or a binary file
    object, with Image.save's options (colors, optimize, coding, max_iter,
    tol, icc_profile, exif, progress). The same bytes as Image.save of the
    same pixels. A path is written as given: callers wanting an atomic
    write pass a temporary file (cli/stream.py does)."""
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "wb") as file:
            _save(source, file, params)
    else:
        _save(source, fp, params)


def _save(source: RowSource, fp: IO[bytes], params: dict[str, Any]) -> None:
    options = Options.from_mapping(params)
    refuse_whole_image_options(options)
    metadata = image_metadata({}, params)
    report = options.progress or (lambda stage, done, total: None)
    last = [("code", 0, 0)]

    def progress(stage: str, done: int, total: int) -> None:
        last[0] = (stage, done, total)
        report(stage, done, total)

    _write_candidates(fp, source, options, metadata, progress)
    stage, done, total = last[0]
    if done != total:  # the last candidate tried was abandoned part way
        report(stage, total, total)


def _write_candidates(fp: IO[bytes], source: RowSource, options: Options, metadata: dict,
                      progress: Callable[[str, int, int], None]) -> None:
    """The file of optimize's (or the given coding's) smallest candidate."""
    height, width, channels = source.shape
    plan = quantize_rows(source, options, progress)
    numbers = coding.candidates(options.coding, options.optimize)
    codebook, relabel = plan.codebook, None
    if coding.reorders(len(codebook), options.coding, options.optimize):
        permutation = order.palette_order(adjacency_of_rows(plan, height, width, progress))
        relabel, codebook = order.relabelling(codebook, permutation)

    def labels(top: int, count: int) -> np.ndarray:
        found = plan.labels(top, count)
        return found if relabel is None else relabel[found]

    compressed = [number for number in numbers if number != RAW]
    limit = None
    if RAW in numbers:
        limit = format.raw_file_size(format.file_head(width, height, codebook, RAW, metadata), height * width, len(codebook))

    def banded(number: int) -> Iterator[bytes]:
        return band_file(labels, height, width, codebook, number, options.optimize, metadata, progress)

    if len(compressed) == 1:
        if limit is None:
            _write_all(fp, banded(compressed[0]))
            return
        if _write_if_smaller(fp, banded(compressed[0]), limit):
            return
    elif compressed:
        def payload_bytes(number: int, size: int) -> int:
            return size - len(format.file_head(width, height, codebook, number, metadata))

        def worth_trying(number: int, sizes: dict[int, int]) -> bool:
            return options.coding is not None or coding.worth_trying(number, sizes, height * width)

        if _write_smallest(fp, compressed, banded, limit, (payload_bytes, worth_trying)):
            return
    _write_all(fp, raw_file(labels, height, width, codebook, metadata, progress))


def _write_smallest(fp: IO[bytes], numbers: list[int], banded: Callable[[int], Iterator[bytes]],
                    limit: int | None, rules: tuple[Callable, Callable]) -> bool:
    """Of several compressed candidates (optimize's xz and zstd), write the
    smallest that beats `limit` (the raw file's size), as format.write_file
    chooses (ties to the earlier candidate; a candidate tried only where
    coding.worth_trying says so): each is coded into a temporary file,
    abandoned as soon as it reaches the best size so far. Says whether one
    was written (else raw wins). rules: payload_bytes(number, file size) and
    worth_trying(number, payload sizes so far)."""
    payload_bytes, worth_trying = rules
    best, best_size, sizes = None, limit, {}
    try:
        for number in numbers:
            if not worth_trying(number, sizes):
                continue
            spool = tempfile.TemporaryFile()
            if best_size is None:
                _write_all(spool, banded(number))
            elif not _write_if_smaller(spool, banded(number), best_size):
                # abandoned at the best size so far: its payload is at least
                # that, which is all worth_trying needs to decide the same
                # way as on the whole size (the raw payload is >= 1 bit a
                # label from K = 2, above its 0.5)
                sizes[number] = payload_bytes(number, best_size)
                spool.close()
                continue
            sizes[number] = payload_bytes(number, spool.tell())
            if best is not None:
                best.close()
            best, best_size = spool, spool.tell()
        if best is None:
            return False
        best.seek(0)
        while chunk := best.read(1 << 20):
            fp.write(chunk)
        return True
    finally:
        if best is not None:
            best.close()


class QuantizedRows:
    """What pass 1 found: the codebook, and the labels of any rows."""

    def __init__(self, source: RowSource, codebook: np.ndarray, lookup, premultiplied: bool):
        self.source, self.codebook, self.lookup, self.premultiplied = source, codebook, lookup, premultiplied

    def labels(self, top: int, count: int) -> np.ndarray:
        """(count, W) labels, as the encoder's quantize_image gives them."""
        block = collapse_transparent(self.source.rows(top, count))
        if self.premultiplied:
            block = premultiply(block)
        return self.lookup(block.reshape(-1, block.shape[2])).reshape(block.shape[:2])


def quantize_rows(source: RowSource, options: Options, progress: Callable) -> QuantizedRows:
    """encoder.quantize_image's codebook and labels, from a histogram pass."""
    height, width, channels = source.shape
    block_rows = max(1, BLOCK_PIXELS // width)
    blocks = bands.band_rows(height, block_rows)
    counter = ColourCounter(channels, height * width)

    def count(rows: tuple[int, int]):
        block = collapse_transparent(source.rows(*rows))
        return block_counts(block.reshape(-1, channels))

    progress("pixels", 0, len(blocks))
    for done, (codes, counts) in enumerate(ordered_window(count, blocks), 1):
        counter.add(codes, counts)
        progress("pixels", done, len(blocks))
    progress("quantize", 0, 1)
    colors, counts = counter.histogram()
    del counter
    # RGBA of more colours than K is clustered premultiplied (quantize_image)
    premultiplied = channels == 4 and len(colors) > options.colors
    if premultiplied:
        colors, counts, _ = mapped_histogram(colors, counts, premultiply)
    codebook, color_labels = cluster_colours(colors, counts, min(options.colors, len(colors)), options)
    lookup = label_lookup(colors, color_labels, height * width)
    if premultiplied:
        codebook = unpremultiply(codebook)
    progress("quantize", 1, 1)
    return QuantizedRows(source, codebook, lookup, premultiplied)


def adjacency_of_rows(plan: QuantizedRows, height: int, width: int, progress: Callable) -> np.ndarray:
    """order.adjacency of the whole label map, summed band by band (pairs
    across a band's top edge included)."""
    k = len(plan.codebook)
    spans = bands.band_rows(height, bands.choose_band_height(width, height))

    def within(rows: tuple[int, int]):
        labels = plan.labels(*rows)
        return labels[:1].copy(), labels[-1:].copy(), order.pairs_within(labels, k)

    total = np.zeros((k, k), np.int64)
    above = None
    progress("order", 0, len(spans))
    for done, (first, last, pairs) in enumerate(ordered_window(within, spans), 1):
        total += pairs
        if above is not None:
            total += order.pair_counts(first, above, k)
        above = last
        progress("order", done, len(spans))
    return total + total.T


def band_file(labels, height: int, width: int, codebook: np.ndarray, number: int, optimize: bool,
              metadata: dict, progress: Callable) -> Iterator[bytes]:
    """The pieces of a banded file, in order (format.coding.band_payload)."""
    k = len(codebook)
    head = format.file_head(width, height, codebook, number, metadata)
    band_height = bands.choose_band_height(width, height)
    strips = coding.band_strips(number, optimize, height)
    spans = bands.band_rows(height, band_height)
    yield head + coding.payload_start(head, band_height)

    def code(rows: tuple[int, int]) -> bytes:
        return coding.code_band(labels(*rows), k, number, strips, optimize)

    progress("code", 0, len(spans))
    for done, data in enumerate(ordered_window(code, spans), 1):
        yield data
        progress("code", done, len(spans))


def raw_file(labels, height: int, width: int, codebook: np.ndarray, metadata: dict,
             progress: Callable) -> Iterator[bytes]:
    """The pieces of a raw file: blocks of whole bytes of labels, then the CRC."""
    k = len(codebook)
    bits = bitpack.bits_per_label(k)
    head = format.file_head(width, height, codebook, RAW, metadata)
    yield head
    crc = zlib.crc32(head)
    rows = -(-RAW_BLOCK_LABELS // width)
    spans = bands.band_rows(height, -(-rows // 8) * 8)

    def pack(span: tuple[int, int]) -> bytes:
        return bitpack.pack(labels(*span), bits) if bits else b""

    progress("code", 0, len(spans))
    for done, data in enumerate(ordered_window(pack, spans), 1):
        crc = zlib.crc32(data, crc)
        yield data
        progress("code", done, len(spans))
    yield CRC.pack(crc)


def _write_all(fp: IO[bytes], pieces: Iterator[bytes]) -> int:
    written = 0
    for piece in pieces:
        fp.write(piece)
        written += len(piece)
    return written


def _write_if_smaller(fp: IO[bytes], pieces: Iterator[bytes], limit: int) -> bool:
    """Write pieces if they come to fewer than `limit` bytes (the raw
    file's size, which wins ties as in format.write_file); else write
    nothing and say so. Stops as soon as the limit is reached."""
    seekable = getattr(fp, "seekable", lambda: False)()
    target = fp if seekable else tempfile.TemporaryFile()
    start = target.tell()
    written = 0
    try:
        for piece in pieces:
            written += len(piece)
            if written >= limit:
                pieces.close()
                target.seek(start)
                target.truncate()
                return False
            target.write(piece)
        if not seekable:
            target.seek(start)
            while chunk := target.read(1 << 20):
                fp.write(chunk)
        return True
    finally:
        if not seekable:
            target.close()
