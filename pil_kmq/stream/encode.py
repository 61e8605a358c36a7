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
from functools import partial
from typing import IO, Any, Callable, Iterator, Protocol

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
    write_plan(fp, source.shape, lambda options, progress: quantize_rows(source, options, progress), params)


def write_plan(fp: IO[bytes], shape: tuple[int, int, int],
               quantize: Callable[[Options, Callable], "LabelledRows"], params: dict[str, Any]) -> None:
    """The file of an image of `shape` whose passes run where `quantize`'s
    answer says (rows read here and bands coded in threads: QuantizedRows;
    tasks on a Dask cluster: pil_kmq.dask): validates the options, runs
    quantize(options, progress) for the codebook, then orders and codes."""
    options = Options.from_mapping(params)
    refuse_whole_image_options(options)
    metadata = image_metadata({}, params)
    report = options.progress or (lambda stage, done, total: None)
    last = [("code", 0, 0)]

    def progress(stage: str, done: int, total: int) -> None:
        last[0] = (stage, done, total)
        report(stage, done, total)

    plan = quantize(options, progress)
    _write_candidates(fp, plan, shape, options, metadata=metadata, progress=progress)
    stage, done, total = last[0]
    if done != total:  # the last candidate tried was abandoned part way
        report(stage, total, total)


def _write_candidates(fp: IO[bytes], plan: "LabelledRows", shape: tuple[int, int, int], options: Options, *,
                      metadata: dict, progress: Callable[[str, int, int], None]) -> None:
    """The file of optimize's (or the given coding's) smallest candidate."""
    height, width, channels = shape
    numbers = coding.candidates(options.coding, options.optimize)
    codebook = plan.codebook
    if coding.reorders(len(codebook), options.coding, options.optimize):
        permutation = order.palette_order(adjacency_of_rows(plan, height, width, progress))
        relabel, codebook = order.relabelling(codebook, permutation)
        plan = RelabelledRows(plan, relabel, codebook)

    compressed = [number for number in numbers if number != RAW]
    limit = None
    if RAW in numbers:
        limit = format.raw_file_size(format.file_head(width, height, codebook, RAW, metadata), height * width, len(codebook))

    def banded(number: int) -> Iterator[bytes]:
        return band_file(plan, height, width, number, optimize=options.optimize, metadata=metadata, progress=progress)

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
    _write_all(fp, raw_file(plan, height, width, metadata=metadata, progress=progress))


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


class LabelledRows(Protocol):
    """The codebook and the labels of any span of rows, by function:
    map_labels(function, spans) yields function(labels of each span), in
    span order; reduce_labels folds such answers with an associative
    combine, in span order (report(spans done) as it goes)."""

    codebook: np.ndarray

    def map_labels(self, function: Callable[[np.ndarray], Any], spans: list[tuple[int, int]]) -> Iterator: ...

    def reduce_labels(self, function: Callable[[np.ndarray], Any], combine: Callable[[Any, Any], Any],
                      spans: list[tuple[int, int]], report: Callable[[int], None]) -> Any: ...


class Quantization:
    """What pass 1 found: the codebook, and the labels of any pixels, as
    the encoder's quantize_image gives them."""

    def __init__(self, codebook: np.ndarray, lookup):
        self.codebook, self.lookup = codebook, lookup

    def labels(self, block: np.ndarray) -> np.ndarray:
        """(rows, W) labels of (rows, W, C) pixels."""
        block = collapse_transparent(block)
        return self.lookup(block.reshape(-1, block.shape[2])).reshape(block.shape[:2])


def quantization(colors: np.ndarray, counts: np.ndarray, pixels: int, options: Options) -> Quantization:
    """encoder.quantize_image's codebook and lookup, from the exact colour
    histogram of an image of `pixels` pixels (ColourCounter's answer).
    RGBA of more colours than K is clustered premultiplied, as there, and
    each colour looked up takes the label of its premultiplied colour
    (quantize_with_smoothing's colour_map): no block is premultiplied."""
    if colors.shape[1] == 4 and len(colors) > options.colors:
        premultiplied, merged_counts, merged = mapped_histogram(colors, counts, premultiply)
        codebook, premultiplied_labels = cluster_colours(premultiplied, merged_counts, options.colors, options)
        codebook, own_labels = unpremultiply(codebook), premultiplied_labels[merged]
    else:
        codebook, own_labels = cluster_colours(colors, counts, min(options.colors, len(colors)), options)
    return Quantization(codebook, label_lookup(colors, own_labels, pixels))


class QuantizedRows:
    """A RowSource's labels (LabelledRows): rows read and labelled here,
    spans in threads (pipeline.ordered_window)."""

    def __init__(self, source: RowSource, found: Quantization):
        self.source, self.quantization, self.codebook = source, found, found.codebook

    def labels(self, top: int, count: int) -> np.ndarray:
        return self.quantization.labels(self.source.rows(top, count))

    def map_labels(self, function: Callable[[np.ndarray], Any], spans: list[tuple[int, int]]) -> Iterator:
        return ordered_window(lambda span: function(self.labels(*span)), spans)

    def reduce_labels(self, function, combine, spans, report):
        total = None
        for done, answer in enumerate(self.map_labels(function, spans), 1):
            total = answer if total is None else combine(total, answer)
            report(done)
        return total


class RelabelledRows:
    """Another LabelledRows' labels through a table (order.relabelling)."""

    def __init__(self, plan: LabelledRows, relabel: np.ndarray, codebook: np.ndarray):
        self.plan, self.relabel, self.codebook = plan, relabel, codebook

    def map_labels(self, function, spans):
        return self.plan.map_labels(partial(relabelled, function, self.relabel), spans)

    def reduce_labels(self, function, combine, spans, report):
        return self.plan.reduce_labels(partial(relabelled, function, self.relabel), combine, spans, report)


def relabelled(function: Callable[[np.ndarray], Any], relabel: np.ndarray, labels: np.ndarray) -> Any:
    return function(relabel[labels])


def quantize_rows(source: RowSource, options: Options, progress: Callable) -> QuantizedRows:
    """encoder.quantize_image's codebook and labels, from a histogram pass."""
    height, width, channels = source.shape
    block_rows = max(1, BLOCK_PIXELS // width)
    blocks = bands.band_rows(height, block_rows)
    counter = ColourCounter(channels, height * width)

    def count(rows: tuple[int, int]):
        return pixel_counts(source.rows(*rows))

    progress("pixels", 0, len(blocks))
    for done, (codes, counts) in enumerate(ordered_window(count, blocks), 1):
        counter.add(codes, counts)
        progress("pixels", done, len(blocks))
    progress("quantize", 0, 1)
    colors, counts = counter.histogram()
    del counter
    found = quantization(colors, counts, height * width, options)
    progress("quantize", 1, 1)
    return QuantizedRows(source, found)


def pixel_counts(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (rows, W, C) block's distinct codes and counts, as the encoder's
    histogram counts them (transparent pixels collapsed first)."""
    block = collapse_transparent(block)
    return block_counts(block.reshape(-1, block.shape[2]))


def adjacency_of_rows(plan: LabelledRows, height: int, width: int, progress: Callable) -> np.ndarray:
    """order.adjacency of the whole label map, summed band by band (pairs
    across a band's top edge included)."""
    k = len(plan.codebook)
    spans = bands.band_rows(height, bands.choose_band_height(width, height))
    progress("order", 0, len(spans))
    _, _, total = plan.reduce_labels(partial(edge_pairs, k=k), partial(join_edge_pairs, k=k), spans,
                                     lambda done: progress("order", done, len(spans)))
    progress("order", len(spans), len(spans))
    return total + total.T


def edge_pairs(labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A span's first and last rows and its unsymmetrized pairs within."""
    return labels[:1].copy(), labels[-1:].copy(), order.pairs_within(labels, k)


def join_edge_pairs(upper: tuple, lower: tuple, k: int) -> tuple:
    """edge_pairs of two adjacent spans joined into those of both: the
    pairs across their edge added (associative, for any reduction tree)."""
    first, above, pairs = upper
    top, last, more = lower
    return first, last, pairs + more + order.pair_counts(top, above, k)


def band_file(plan: LabelledRows, height: int, width: int, number: int, *, optimize: bool,
              metadata: dict, progress: Callable) -> Iterator[bytes]:
    """The pieces of a banded file, in order (format.coding.band_payload)."""
    codebook = plan.codebook
    head = format.file_head(width, height, codebook, number, metadata)
    band_height = bands.choose_band_height(width, height)
    strips = coding.band_strips(number, optimize, height)
    spans = bands.band_rows(height, band_height)
    yield head + coding.payload_start(head, band_height)
    code = partial(coding.code_band, k=len(codebook), coding=number, strips=strips, optimize=optimize)
    progress("code", 0, len(spans))
    for done, data in enumerate(plan.map_labels(code, spans), 1):
        yield data
        progress("code", done, len(spans))


def raw_file(plan: LabelledRows, height: int, width: int, *, metadata: dict,
             progress: Callable) -> Iterator[bytes]:
    """The pieces of a raw file: blocks of whole bytes of labels, then the CRC."""
    codebook = plan.codebook
    bits = bitpack.bits_per_label(len(codebook))
    head = format.file_head(width, height, codebook, RAW, metadata)
    yield head
    crc = zlib.crc32(head)
    rows = -(-RAW_BLOCK_LABELS // width)
    spans = bands.band_rows(height, -(-rows // 8) * 8)
    progress("code", 0, len(spans))
    for done, data in enumerate(plan.map_labels(partial(pack_labels, bits=bits), spans), 1):
        crc = zlib.crc32(data, crc)
        yield data
        progress("code", done, len(spans))
    yield CRC.pack(crc)


def pack_labels(labels: np.ndarray, bits: int) -> bytes:
    return bitpack.pack(labels, bits) if bits else b""


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
