"""The numpy-level API: the tutorial's compress / reconstruct / size report,
and the whole encoder (image -> .kmq bytes) that the plugin and tools share."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .format import bitpack, coding, container
from .quantize.dither import dither as dither_onto
from .quantize.histogram import histogram, labels_for_pixels
from .quantize.kmeans import kmeans

DEFAULT_COLORS = 256
DEFAULT_MAX_ITER = 300
DEFAULT_TOL = 1e-4
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Options:
    """Validated encoder options (the names of Image.save's keywords)."""

    colors: int = DEFAULT_COLORS
    max_iter: int = DEFAULT_MAX_ITER
    tol: float = DEFAULT_TOL
    seed: int = DEFAULT_SEED
    # Floyd-Steinberg error diffusion onto the codebook (see dither.py).
    dither: bool = False
    # Target PSNR in dB: use the fewest colours (at most `colors`) reaching it.
    quality: float | None = None
    # Write the smallest coding the format has instead of raw.
    optimize: bool = False
    # Force one coding (a number of coding.NAMES); None: raw, or the smallest with optimize.
    coding: int | None = None

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> Options:
        """Read and check options from im.encoderinfo (ValueError if bad)."""
        colors = _integer(params.get("colors", DEFAULT_COLORS), "colors", 1, 256)
        max_iter = _integer(params.get("max_iter", DEFAULT_MAX_ITER), "max_iter", 0, None)
        seed = _integer(params.get("seed", DEFAULT_SEED), "seed", 0, None)
        tol = params.get("tol", DEFAULT_TOL)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0 or math.isinf(tol):
            raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
        dither = params.get("dither", False)
        if not isinstance(dither, (bool, np.bool_)):
            raise ValueError(f"dither must be True or False, got {dither!r}")
        quality = params.get("quality")
        if quality is not None:
            if (
                isinstance(quality, (bool, np.bool_))
                or not isinstance(quality, (int, float, np.integer, np.floating))
                or not 0 < quality <= 100
            ):
                raise ValueError(f"quality must be a target PSNR in dB, 0 < quality <= 100, got {quality!r}")
            quality = float(quality)
        return cls(
            colors, max_iter, float(tol), seed, dither=bool(dither), quality=quality,
            optimize=bool(params.get("optimize", False)),
            coding=_coding_number(params.get("coding")),
        )


def _coding_number(value: Any) -> int | None:
    """A coding by number or name ("raw", "zlib", "xz", "bzip2"), or None."""
    if value is None:
        return None
    by_name = {name: number for number, name in coding.NAMES.items()}
    if isinstance(value, str) and value.lower() in by_name:
        return by_name[value.lower()]
    if not isinstance(value, bool) and isinstance(value, (int, np.integer)) and int(value) in coding.NAMES:
        return int(value)
    known = ", ".join(f"{number} ({name})" for number, name in coding.NAMES.items())
    raise ValueError(f"unknown coding {value!r}: known codings are {known}")


def _integer(value: Any, name: str, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _as_pixels(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (h, w) or (h, w, 1|3|4) array, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"cannot compress an empty image of shape {array.shape}")
    return array.reshape(-1, array.shape[2])


def compress(
    array: np.ndarray,
    k: int,
    *,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    seed: int = DEFAULT_SEED,
    dither: bool = False,
    quality: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster an image's colours into at most k; return (labels, centroids).

    labels is (h, w) uint8, centroids (K, C) uint8 with K <= k: an image of at
    most k distinct colours comes back losslessly with those colours. Without
    dithering every pixel gets its exactly nearest centroid (ties: lowest
    index). With `quality`, K is the smallest reaching that PSNR (see
    quantize).
    """
    options = Options.from_mapping(
        {"colors": k, "max_iter": max_iter, "tol": tol, "seed": seed,
         "dither": dither, "quality": quality}
    )
    return quantize(array, options)


def quantize(array: np.ndarray, options: Options) -> tuple[np.ndarray, np.ndarray]:
    """compress() with validated options: (labels (h, w) uint8, codebook (K, C) uint8).

    With options.quality the codebook is the one for the smallest K whose
    PSNR (undithered: over every pixel and channel of the stored image)
    reaches the target, found by bisection over K on the one histogram. If
    even options.colors colours miss it, options.colors are used: a target
    is a request for quality, so falling short still gives the best the
    file allows rather than an error.
    """
    height, width = np.shape(array)[:2]
    pixels = _as_pixels(array)
    colors, counts = histogram(pixels)
    if options.quality is None:
        codebook, color_labels = _cluster(colors, counts, options.colors, options)
    else:
        codebook, color_labels = _cluster_for_quality(colors, counts, options)
    if options.dither and len(codebook) < len(colors):
        labels = dither_onto(pixels.reshape(height, width, -1), codebook)
    else:
        labels = labels_for_pixels(colors, color_labels, pixels).reshape(height, width)
    return labels, codebook


def _cluster(
    colors: np.ndarray, counts: np.ndarray, k: int, options: Options
) -> tuple[np.ndarray, np.ndarray]:
    """Codebook and a label per distinct colour (uint8) for at most k colours."""
    if len(colors) <= k:
        return colors, np.arange(len(colors), dtype=np.uint8)
    return kmeans(colors, counts, k, max_iter=options.max_iter, tol=options.tol)


def mean_squared_error(a: np.ndarray, b: np.ndarray) -> float:
    """Over all pixels and channels, in 8-bit units squared."""
    total = 0.0
    for row in range(0, a.shape[0], 256):  # bounded float64 temporaries
        diff = a[row : row + 256].astype(np.float64) - b[row : row + 256]
        total += float(np.vdot(diff.ravel(), diff.ravel()))
    return total / a.size


def psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def psnr(colors: np.ndarray, counts: np.ndarray, codebook: np.ndarray, labels: np.ndarray) -> float:
    """PSNR in dB of the quantized image, from its histogram (inf if exact)."""
    offsets = colors.astype(np.int64) - codebook[labels].astype(np.int64)
    squared_error = float(counts @ (offsets * offsets).sum(axis=1))
    return psnr_from_mse(squared_error / (float(counts.sum()) * colors.shape[1]))


def _cluster_for_quality(
    colors: np.ndarray, counts: np.ndarray, options: Options
) -> tuple[np.ndarray, np.ndarray]:
    """The result for the smallest K reaching options.quality (bisection:
    K = low always misses the target, K = high always reaches it, so the
    answer's K - 1 is known to miss even where PSNR is not monotone in K)."""
    results = {}

    def reaches(k: int) -> bool:
        results[k] = _cluster(colors, counts, k, options)
        return psnr(colors, counts, *results[k]) >= options.quality

    high = min(options.colors, len(colors))
    if not reaches(high):
        return results[high]
    low = 0
    while high - low > 1:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    return results[high]


def read_labels(
    fp: str | os.PathLike[str] | Any, rows: range | slice | None = None
) -> np.ndarray:
    """The label map (segmentation) of a .kmq file, or some of its rows, as
    an (h, w) uint8 array, without decoding colours.

    Random access: in a raw file row y starts at bit y*W*b, so only the bytes
    holding the rows asked for are read (from the start of the group of
    indices that holds the first one, see bitpack.group_shape). The CRC
    covers the whole file and is not checked then; open the file with Pillow
    for a checked read. Other codings decode the whole map and slice it.
    """
    from PIL import Image

    owned = isinstance(fp, (str, os.PathLike))
    file = open(fp, "rb") if owned else fp
    try:
        start = file.tell()
        header = container.parse_header(file.read(container.HEADER_SIZE))
        if rows is None:
            rows = slice(None)
        elif isinstance(rows, range):
            rows = slice(rows.start, rows.stop, rows.step)
        first_row, end_row, step = rows.indices(header.height)
        if step != 1:
            raise ValueError("rows must be contiguous (step 1)")
        end_row = max(end_row, first_row)
        if header.coding != coding.RAW:
            file.seek(start)
            with Image.open(file, formats=["KMQ"]) as im:
                im.draft("P", im.size)
                return np.asarray(im)[first_row:end_row]
        shape = (end_row - first_row, header.width)
        if header.bits == 0 or end_row == first_row:
            return np.zeros(shape, dtype=np.uint8)
        per_group, group_bytes = bitpack.group_shape(header.bits)
        first, end = first_row * header.width, end_row * header.width
        first_group = first // per_group
        skip = first - first_group * per_group
        count = min(-(-end // per_group) * per_group, header.pixel_count) - first_group * per_group
        size = bitpack.packed_size(count, header.bits)
        file.seek(start + header.payload_offset + first_group * group_bytes)
        data = file.read(size)
        if len(data) < size:
            raise container.KmqFormatError("image file is truncated: the rows asked for are missing")
        labels = bitpack.unpack(data, count, header.bits)[skip : skip + end - first]
        coding.check_labels(labels, header.k)
        return labels.reshape(shape)
    finally:
        if owned:
            file.close()


def reconstruct(
    labels: np.ndarray, centroids: np.ndarray, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """The quantized image: each label replaced by its centroid colour."""
    image = np.asarray(centroids, dtype=np.uint8)[np.asarray(labels)]
    if shape is not None:
        image = image.reshape(shape)
    elif image.shape[-1] == 1:
        image = image[..., 0]
    return image


@dataclass(frozen=True)
class SizeReport:
    """The tutorial's accounting of a raw .kmq image, in bits."""

    width: int
    height: int
    channels: int
    k: int

    @property
    def original_bits(self) -> int:
        return self.width * self.height * self.channels * 8

    @property
    def index_bits(self) -> int:
        return self.width * self.height * bitpack.bits_per_index(self.k)

    @property
    def codebook_bits(self) -> int:
        return self.k * self.channels * 8

    @property
    def total_bits(self) -> int:
        return self.index_bits + self.codebook_bits

    @property
    def ratio(self) -> float:
        """Compressed size as a fraction of the original."""
        return self.total_bits / self.original_bits

    def table(self) -> str:
        rows = [
            ("original", self.original_bits),
            ("index", self.index_bits),
            ("codebook", self.codebook_bits),
            ("total", self.total_bits),
        ]
        lines = [f"{name + ' bits':<15}{value:>14,}" for name, value in rows]
        lines.append(f"{'ratio':<15}{self.ratio:>13.2%}  ({1 / self.ratio:.1f}x smaller)")
        return "\n".join(lines)


def size_report(shape: tuple[int, ...], k: int) -> SizeReport:
    """Size report for an image of `shape` ((h, w) or (h, w, C)) at K colours."""
    channels = shape[2] if len(shape) == 3 else 1
    return SizeReport(width=shape[1], height=shape[0], channels=channels, k=k)


def encode_array(
    array: np.ndarray, options: Options, metadata: dict[str, bytes] | None = None
) -> bytes:
    """A complete .kmq file for an (h, w[, C]) uint8 array."""
    labels, codebook = quantize(array, options)
    height, width = labels.shape
    header = container.Header(
        width=width, height=height, channels=codebook.shape[1], k=len(codebook)
    )
    if options.optimize:
        header.coding, codebook, payload = coding.smallest(labels, codebook, options.coding)
    else:
        header.coding = options.coding or coding.RAW
        payload = coding.encode(labels, header.k, header.coding)
    return container.build(header, codebook.tobytes(), payload, metadata)
