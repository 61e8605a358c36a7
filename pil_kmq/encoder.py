"""Image -> .kmq file bytes: mode handling, quantization, the payload coding
and the container, in that order. Everything is computed before the caller
writes a byte, so a failure never leaves a plausible partial file."""

from __future__ import annotations

import contextlib
import lzma
import math
import warnings
from collections.abc import Iterator
from typing import IO, Any

import numpy as np
from PIL import Image

from . import format
from .format import bands, coding
from .options import METADATA, Options, OptionValueError
from .pixels import check_profile_space, to_array_with_profile
from .quantize import histogram, work
from .quantize.histogram import distinct_codes, pack_codes
from .quantize.quantizer import quantize_with_smoothing

# What progress(stage, done, total) hears, in order; "search" (one call per
# K tried) comes among quantize's calls when quality or psnr is given.
# quantize counts units of work (quantize/work.py: sorted runs of the
# histogram, Lloyd passes, slices of labels) against a plan; code counts
# bands coded (each candidate coding's) against their number.
STAGES = ("pixels", "quantize", "search", "code")
# The Lloyd passes progress plans for a k-means run, by K: the median on
# Kodak, screenshots and icons (a run stops at its tol, so a plan is an
# estimate; should a run take more, the total grows with it).
PLANNED_PASSES = ((2, 20), (8, 60), (16, 100), (64, 50), (256, 15))


def encode_image(im: Image.Image, params: dict[str, Any]) -> bytes:
    """The .kmq file for a Pillow image and its save options (im.encoderinfo)."""
    options = Options.from_mapping(params)
    progress = options.progress or _silent
    progress("pixels", 0, 1)
    metadata = image_metadata(im.info, params)
    # A profile describes the image's pixels, from im.info or given as the
    # option (as Pillow's PNG and JPEG writers read it): it is converted
    # with them when the stored mode changes colour space (pixels.py). An
    # option naming another colour space than the pixels' is refused.
    profile = metadata.pop("icc_profile", None)
    if profile and params.get("icc_profile") is not None:
        check_profile_space(im, profile)
    array, profile = to_array_with_profile(im, profile)
    if profile:
        metadata = {"icc_profile": profile, **metadata}
    progress("pixels", 1, 1)
    return encode_array(array, options, metadata)


def encode_array(
    image: np.ndarray, options: Options, metadata: dict[str, bytes] | None = None
) -> bytes:
    """A complete .kmq file for an (h, w, C) uint8 array."""
    progress = options.progress or _silent
    with quantize_progress(image, options) as heard:
        labels, codebook, smooth = quantize_image(image, options)
    if smooth > 0:
        metadata = {**(metadata or {}), "smooth": smooth}
    progress("quantize", heard[1], heard[1])
    return format.write_file(
        labels, codebook, coding=options.coding, optimize=options.optimize, metadata=metadata,
        progress=lambda done, total: progress("code", done, total),
    )


@contextlib.contextmanager
def quantize_progress(image: np.ndarray, options: Options) -> Iterator[list[int]]:
    """Hear the quantize stage's units of work as progress("quantize", done,
    total); yields [done, total] (total as planned, or as many as were done)."""
    progress = options.progress or _silent
    height, width = image.shape[:2]
    pixels = height * width
    passes = next(count for bound, count in PLANNED_PASSES + ((1 << 30, 15),) if options.colors <= bound)
    if options.quality is not None or options.psnr is not None:
        passes *= 1 + max(1, math.ceil(math.log2(max(options.colors, 2))))  # a bisection's runs
    slices = 0 if options.dither else -(-pixels // histogram.SLICE)
    heard = [0, histogram.histogram_runs(pixels, image.shape[2]) + passes + slices]

    def unit_done(unit: str) -> None:
        heard[0] += 1
        heard[1] = max(heard[1], heard[0] + 1)  # never 100% before the end
        progress("quantize", heard[0], heard[1])

    progress("quantize", 0, heard[1])
    if options.progress is None:
        yield heard
        return
    with work.listening(unit_done):
        yield heard


def quantize_image(image: np.ndarray, options: Options) -> tuple[np.ndarray, np.ndarray, float]:
    """quantize_with_smoothing for any stored mode: RGBA with its colour
    error weighted by alpha, as pngquant does.

    A nearly invisible pixel's colour matters little, so RGBA with more
    colours than K is quantized in premultiplied space (premultiply): there
    an entry is the alpha-weighted mean colour, labels are nearest (and
    targets, dithering and smoothing measure error) by the error left after
    compositing; the codebook is stored un-premultiplied. An image with at
    most K distinct colours is quantized as stored, so it is kept exactly.
    """
    given = {}  # what quantize_with_smoothing takes beyond the image
    if searches_smoothing(options):
        given = {"size_of": lambda labels, codebook: len(format.write_file(
            labels, codebook, coding=options.coding, optimize=True)), "estimate": quick_size}
    # Premultiplying clears transparent pixels itself: when a sample
    # already shows more than K colours, the image is not collapsed first.
    # An image of up to SAMPLES_COUNTED_WHOLE samples' pixels is counted
    # whole without one: the sample's sort cost more than the collapse.
    blended = image.shape[2] == 4
    if blended and (
        image.shape[0] * image.shape[1] <= SAMPLES_COUNTED_WHOLE * sample_size(options.colors)
        or not _sample_has_more(image.reshape(-1, 4), options.colors)
    ):
        image = collapse_transparent(image)
        pixels = image.reshape(-1, 4)
        if len(pixels) <= histogram.SLICE:
            # counting them sorts every pixel once, as the histogram does:
            # the histogram answers and the quantizer takes it (an 8x8 icon
            # sorted its pixels twice, 25 us of a 0.2 ms save outside k-means)
            given["counted"] = histogram.histogram(pixels)
            blended = len(given["counted"][0]) > options.colors
        else:
            blended = not _has_at_most(pixels, options.colors)
    if not blended:
        return quantize_with_smoothing(image, options, **given)
    labels, codebook, smooth = quantize_with_smoothing(image, options, colour_map=premultiply, **given)
    return labels, unpremultiply(codebook), smooth


def searches_smoothing(options: Options) -> bool:
    """A psnr or quality target written in a compressed coding searches K
    and smoothing together (quantize/rd_search.py); a raw file costs the
    same however smooth its labels, and dithering excludes smoothing."""
    targeted = options.quality is not None or options.psnr is not None
    compressed = options.optimize or options.coding not in (None, format.RAW)
    return targeted and compressed and not options.dither and options.smooth != 0


def quick_size(labels: np.ndarray, codebook: np.ndarray) -> int:
    """A fast stand-in for the compressed size: xz at preset 0 over the
    labels in the xz coding's strip order. Tracks the real optimize=True
    coding within a few percent across K and smoothing, at 2-5% of its
    time."""
    strip = coding.STRIPS[coding.XZ][0]
    return len(lzma.compress(bands.to_strip_order(labels, strip).tobytes(), preset=0)) + codebook.size


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """(..., 4) uint8 RGBA as (r·a/255, g·a/255, b·a/255, a), rounded: the
    colour a pixel adds when composited, so a squared distance here weighs
    colour error by alpha (and alpha-0 pixels are all (0, 0, 0, 0))."""
    # (x + 127) // 255 for x = c·a <= 65025, without a division and in
    # 16 bits: y = x + 128, (y + (y >> 8)) >> 8 (equal for every c and a:
    # tests/test_alpha.py), a channel at a time in place: 8x quicker than
    # the division on a 1024x1024 image, 2x at 64x64.
    alpha = rgba[..., 3].astype(np.uint16)
    premultiplied = np.empty_like(rgba)
    for channel in range(3):
        rounded = rgba[..., channel] * alpha
        rounded += np.uint16(128)
        rounded += rounded >> 8
        rounded >>= 8
        premultiplied[..., channel] = rounded
    premultiplied[..., 3] = rgba[..., 3]
    return premultiplied


def unpremultiply(codebook: np.ndarray) -> np.ndarray:
    """A premultiplied codebook in stored RGBA: rgb = c·255/a, rounded and
    clipped ((0, 0, 0, 0) at a = 0). Premultiplying the result gives back
    every entry whose colour is at most its alpha (any mean of premultiplied
    colours), so labels found in premultiplied space stay nearest."""
    alpha = codebook[:, 3:].astype(np.uint32)
    colour = codebook[:, :3].astype(np.uint32) * 510 + alpha
    colour = np.where(alpha > 0, colour // np.maximum(2 * alpha, 1), 0)
    return np.concatenate([np.minimum(colour, 255), alpha], axis=1).astype(np.uint8)


def _has_at_most(pixels: np.ndarray, k: int) -> bool:
    """Whether pixels (N, C) hold at most k distinct colours (exactly); a
    slice at a time, so that an image with more stops at the first slice
    that shows them, not after a sort of every pixel."""
    seen = np.zeros(0, dtype=np.uint32)
    for start in range(0, len(pixels), histogram.SLICE):
        seen = np.union1d(seen, distinct_codes(pack_codes(pixels[start : start + histogram.SLICE]))[0])
        if len(seen) > k:
            return False
    return True


# A Weyl sequence's step (the golden ratio's fraction of the pixels): a
# sample that no row width can line up with (a plain stride equal to the
# width, as a 24x16 sheet of 256x256 icons gives, samples one column).
GOLDEN = 0.6180339887498949


def sample_size(k: int) -> int:
    """Pixels in _sample_has_more's sample."""
    return max(4096, k << 4)


# Interleaved saves of RGBA icons with soft alpha, outside k-means (AMD
# EPYC, 4 of benchmarks/corpora.py's icons resized): counting 128x128 and 181x181 whole took
# 0.86x and 0.82x the time of sampling first, 256x256 0.99x, 512x512 1.03x.
SAMPLES_COUNTED_WHOLE = 16


def _sample_has_more(rgba: np.ndarray, k: int) -> bool:
    """Whether a sample of 4096 pixels (16 K at K = 256) of (N, 4) RGBA,
    transparent pixels collapsed, already holds more than k distinct
    colours: the usual answer, at once (a sort of every pixel cost a
    256x256 icon more than libimagequant's whole run). The sample is spread
    over rows and columns alike (GOLDEN)."""
    total, size = len(rgba), sample_size(k)
    if total <= size:
        return False
    positions = np.arange(size, dtype=np.int64) * round(total * GOLDEN) % total
    sample = rgba[positions]
    sample[sample[:, 3] == 0] = 0
    return len(distinct_codes(pack_codes(sample))[0]) > k


def collapse_transparent(image: np.ndarray) -> np.ndarray:
    """Every fully transparent pixel as (0, 0, 0, 0), as pngquant does: its
    colour is invisible, so it must not spend codebook entries."""
    if image.shape[2] != 4:
        return image
    clear = image[:, :, 3] == 0
    if not clear.any():
        return image
    image = image.copy()
    image.view(np.uint32)[..., 0][clear] = 0  # a pixel is one 32-bit word: 7x quicker than image[clear] = 0
    return image


def image_metadata(info: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """ICC profile, EXIF, dpi and XMP from the save options, else from
    im.info (`info`; streamed rows have none). A value in im.info that the option would refuse (a JPEG's dpi
    of (0, 0), a WMF's single number) is left out with a warning, so the
    image still saves; the same value given as an option is refused."""
    metadata = {}
    for key, parse in METADATA.items():
        if key in params:
            value = None if params[key] is None else parse(params[key], key)
        else:
            value = _from_info(info, key, parse)
        if value:
            metadata[key] = value
    return metadata


# im.info keys an entry may also have: Pillow < 11 keeps a PNG's XMP only
# under its iTXt keyword (a str).
INFO_ALIASES = {"xmp": ("xmp", "XML:com.adobe.xmp")}


def _from_info(info: dict[str, Any], key: str, parse) -> Any:
    value = next((info[name] for name in INFO_ALIASES.get(key, (key,)) if info.get(name)), None)
    if value is None:
        return None
    try:
        return parse(value, key)
    except OptionValueError as error:
        warnings.warn(f"im.info[{key!r}] is not stored in the KMQ file: {error}", UserWarning, stacklevel=2)
        return None


def refuse_frames(im: Image.Image, frames: int) -> None:
    """save_all=True asks for every frame and a .kmq file holds one image:
    refuse rather than drop frames silently (an MPO, a phone photo with its
    preview, is one image). A plain save() writes the current frame, as
    Pillow's PNG and WebP writers do."""
    if frames > 1 and getattr(im, "format", None) != "MPO":
        raise ValueError(
            f"save_all=True: KMQ holds a single image and this one has {frames} frames; "
            "save without save_all to write the current frame (im.seek(n) picks it)"
        )


def save_all(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """Image.save(..., save_all=True): fine for one frame, else refused."""
    extra = len(im.encoderinfo.get("append_images") or ())
    refuse_frames(im, getattr(im, "n_frames", 1) + extra)
    fp.write(encode_image(im, im.encoderinfo))


def _silent(stage: str, done: int, total: int) -> None:
    pass
