"""Image -> .kmq file bytes: mode handling, quantization, the payload coding
and the container, in that order. Everything is computed before the caller
writes a byte, so a failure never leaves a plausible partial file."""

from __future__ import annotations

from typing import IO, Any

import numpy as np
from PIL import Image

from . import format
from .options import METADATA_KEYS, Options, metadata_bytes
from .pixels import to_array_with_profile
from .quantize.histogram import distinct_codes, pack_codes
from .quantize.quantizer import quantize_with_smoothing

# What progress(stage, done, total) hears, in order; "search" (one call per
# K tried) comes between quantize's 0 and 1 when quality or psnr is given.
STAGES = ("pixels", "quantize", "search", "code")


def encode_image(im: Image.Image, params: dict[str, Any]) -> bytes:
    """The .kmq file for a Pillow image and its save options (im.encoderinfo)."""
    options = Options.from_mapping(params)
    refuse_frames(im, getattr(im, "n_frames", 1))
    progress = options.progress or _silent
    progress("pixels", 0, 1)
    metadata = image_metadata(im, params)
    # A profile from the image describes its pixels: it is converted with
    # them (pixels.py); one given as an option is stored as given.
    from_image = metadata.get("icc_profile") == im.info.get("icc_profile")
    array, profile = to_array_with_profile(im, metadata.pop("icc_profile", None) if from_image else None)
    if profile:
        metadata = {"icc_profile": profile, **metadata}
    progress("pixels", 1, 1)
    return encode_array(array, options, metadata)


def encode_array(
    image: np.ndarray, options: Options, metadata: dict[str, bytes] | None = None
) -> bytes:
    """A complete .kmq file for an (h, w, C) uint8 array."""
    progress = options.progress or _silent
    progress("quantize", 0, 1)
    labels, codebook, smooth = quantize_image(image, options)
    if smooth > 0:
        metadata = {**(metadata or {}), "smooth": smooth}
    progress("quantize", 1, 1)
    progress("code", 0, 1)
    data = format.write_file(
        labels, codebook, coding=options.coding, optimize=options.optimize, metadata=metadata
    )
    progress("code", 1, 1)
    return data


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
    image = collapse_transparent(image)
    if image.shape[2] != 4 or _has_at_most(image.reshape(-1, 4), options.colors):
        return quantize_with_smoothing(image, options)
    labels, codebook, smooth = quantize_with_smoothing(premultiply(image), options)
    return labels, unpremultiply(codebook), smooth


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
    """Whether pixels (N, C) hold at most k distinct colours; a sample
    usually answers no at once."""
    step = len(pixels) // 65536
    if step > 1 and len(distinct_codes(pack_codes(pixels[::step]))[0]) > k:
        return False
    return len(distinct_codes(pack_codes(pixels))[0]) <= k


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


def image_metadata(im: Image.Image, params: dict[str, Any]) -> dict[str, bytes]:
    """ICC profile and EXIF from the save options, else from im.info."""
    metadata = {}
    for key in METADATA_KEYS:
        value = metadata_bytes(params[key] if key in params else im.info.get(key), key)
        if value:
            metadata[key] = value
    return metadata


def refuse_frames(im: Image.Image, frames: int) -> None:
    """A .kmq file holds one image: refuse to drop frames silently (an MPO,
    a phone photo with its preview, is one image)."""
    if frames > 1 and getattr(im, "format", None) != "MPO":
        raise ValueError(
            f"KMQ holds a single image and this one has {frames} frames; save one "
            "frame at a time (im.seek(n), then im.copy().save(...))"
        )


def save_all(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """Image.save(..., save_all=True): fine for one frame, else refused."""
    extra = len(im.encoderinfo.get("append_images") or ())
    refuse_frames(im, getattr(im, "n_frames", 1) + extra)
    fp.write(encode_image(im, im.encoderinfo))


def _silent(stage: str, done: int, total: int) -> None:
    pass
