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
    labels, codebook, smooth = quantize_with_smoothing(collapse_transparent(image), options)
    if smooth > 0:
        metadata = {**(metadata or {}), "smooth": smooth}
    progress("quantize", 1, 1)
    progress("code", 0, 1)
    data = format.write_file(
        labels, codebook, coding=options.coding, optimize=options.optimize, metadata=metadata
    )
    progress("code", 1, 1)
    return data


def collapse_transparent(image: np.ndarray) -> np.ndarray:
    """Every fully transparent pixel as (0, 0, 0, 0), as pngquant does: its
    colour is invisible, so it must not spend codebook entries."""
    if image.shape[2] != 4:
        return image
    clear = image[:, :, 3] == 0
    if not clear.any():
        return image
    image = image.copy()
    image[clear] = 0
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
