"""Pixels: bring any Pillow image to one of the three stored modes.

The file stores L (1 channel), RGB (3) or RGBA (4). Every other mode is
converted to the nearest of those that loses nothing visible; modes whose
values do not fit in 8 bits per channel are refused rather than clipped.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

STORED_MODES = ("L", "RGB", "RGBA")

# Modes converted without loss of anything visible.
_TO_L = {"1", "L"}
_TO_RGB = {"RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_RGBA = {"RGBA", "RGBa", "LA", "La", "PA"}


def stored_mode(im: Image.Image) -> str:
    """The stored mode for an image, or ValueError naming an unusable mode."""
    mode = im.mode
    has_key = "transparency" in im.info
    if mode in _TO_RGBA:
        return "RGBA"
    if mode == "P":
        palette_mode = im.palette.mode if im.palette else "RGB"
        return "RGBA" if has_key or palette_mode == "RGBA" else "RGB"
    if mode in _TO_L:
        return "RGBA" if has_key and mode == "L" else "L"
    if mode in _TO_RGB:
        return "RGBA" if has_key and mode == "RGB" else "RGB"
    raise ValueError(
        f"cannot save mode {mode} as KMQ: only 8-bit modes are supported "
        "(L, RGB, RGBA and those that convert to them without loss)"
    )


def to_array(im: Image.Image) -> np.ndarray:
    """An (height, width, channels) uint8 array in the image's stored mode."""
    if im.width == 0 or im.height == 0:
        raise ValueError(f"cannot save an empty image ({im.width}x{im.height}) as KMQ")
    mode = stored_mode(im)
    if im.mode == "La":  # premultiplied: Pillow converts it only to LA
        im = im.convert("LA")
    if im.mode != mode:
        im = im.convert(mode)
    array = np.asarray(im, dtype=np.uint8)
    return array.reshape(im.height, im.width, -1)
