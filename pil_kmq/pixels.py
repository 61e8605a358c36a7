"""Pixels: bring any Pillow image to one of the three stored modes.

The file stores L (1 channel), RGB (3) or RGBA (4). Every other mode is
converted to the nearest of those that loses nothing visible; 16-bit grey
is scaled to 8 bits, and modes whose range is unknown (I, F) are refused
rather than clipped. A colour profile travels only with pixels in its
colour space: when the mode changes colour space, the pixels are converted
to sRGB through the profile (colour_managed).
"""

from __future__ import annotations

import functools
import io
import warnings
from importlib import resources

import numpy as np
from PIL import Image

from .options import OptionValueError

STORED_MODES = ("L", "RGB", "RGBA")

# Modes converted without loss of anything visible.
_TO_L = {"1", "L"}
_TO_RGB = {"RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_RGBA = {"RGBA", "RGBa", "LA", "La", "PA"}
SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}

# The colour space a profile must describe to apply to a mode's pixels.
_SPACE = {"1": "GRAY", "L": "GRAY", "LA": "GRAY", "La": "GRAY", "CMYK": "CMYK", "LAB": "LAB"}
_SPACE.update(dict.fromkeys(SIXTEEN_BIT, "GRAY"))


def stored_mode(im: Image.Image) -> str:
    """The stored mode for an image, or ValueError naming an unusable mode."""
    mode = im.mode
    has_key = "transparency" in im.info
    if mode in _TO_RGBA:
        return "RGBA"
    if mode == "P":
        palette_mode = im.palette.mode if im.palette else "RGB"
        return "RGBA" if has_key or palette_mode == "RGBA" else "RGB"
    if mode in _TO_L or mode in SIXTEEN_BIT:
        return "RGBA" if has_key and mode != "1" else "L"
    if mode in _TO_RGB:
        return "RGBA" if has_key and mode == "RGB" else "RGB"
    if mode in ("I", "F"):
        raise ValueError(_scale_hint(im))
    raise ValueError(
        f"cannot save mode {mode} as KMQ: only 8-bit modes and 16-bit grey are supported "
        "(L, RGB, RGBA, I;16 and those that convert to them without loss)"
    )


# An ICC profile's data colour space (header bytes 16-19) as _SPACE names it.
_PROFILE_SPACES = {b"RGB ": "RGB", b"GRAY": "GRAY", b"CMYK": "CMYK", b"Lab ": "LAB"}


def profile_space(profile: bytes) -> str | None:
    """The colour space an ICC profile describes (RGB, GRAY, CMYK, LAB), or
    None for bytes without a profile header ('acsp' at 36) or another space."""
    if len(profile) < 40 or profile[36:40] != b"acsp":
        return None
    return _PROFILE_SPACES.get(bytes(profile[16:20]))


def check_profile_space(im: Image.Image, profile: bytes) -> None:
    """ValueError naming icc_profile if the profile describes another colour
    space than the image's pixels (a CMYK profile on RGB pixels): it cannot
    be converted through, and written beside them it would be wrong."""
    space, pixels = profile_space(profile), _SPACE.get(im.mode, "RGB")
    if space is not None and space != pixels and im.mode not in ("YCbCr", "HSV"):
        raise OptionValueError(
            f"icc_profile describes {space} colours but this {im.mode} image's pixels are {pixels}: "
            f"give the profile of the pixels (or none), or convert the image to a {space} mode first"
        )


def _scale_hint(im: Image.Image) -> str:
    low, high = im.getextrema()
    if high <= low:  # one value: scale from 0 to it
        low = min(low, 0)
        high = max(high, low + 1)
    shifted = "v" if low == 0 else f"(v - {low:g})"
    return (
        f"cannot save mode {im.mode} as KMQ: its values (here {low:g} to {high:g}) have no "
        f"known range; scale them to 8 bits first, e.g. "
        f"im.point(lambda v: {shifted} * {255 / (high - low):.6g}).convert(\"L\")"
    )


def to_array(im: Image.Image) -> np.ndarray:
    """An (height, width, channels) uint8 array in the image's stored mode."""
    return to_array_with_profile(im, None)[0]


def to_array_with_profile(im: Image.Image, profile: bytes | None) -> tuple[np.ndarray, bytes | None]:
    """The stored-mode array and the ICC profile that describes it: the
    given one, or sRGB's after a colour-managed change of colour space."""
    if im.width == 0 or im.height == 0:
        raise ValueError(f"cannot save an empty image ({im.width}x{im.height}) as KMQ")
    mode = stored_mode(im)
    if im.mode in SIXTEEN_BIT:
        scaled = _sixteen_bit(im, mode)
        if mode == "L":
            return scaled, profile
        # Grey with a transparency key: 8-bit grey and alpha, then as LA.
        im = Image.merge("LA", [Image.fromarray(np.ascontiguousarray(scaled[:, :, c])) for c in (0, 3)])
    if im.mode == "La":  # premultiplied: Pillow converts it only to LA
        im = im.convert("LA")
    if profile and _SPACE.get(im.mode, "RGB") != _SPACE.get(mode, "RGB"):
        im, profile = colour_managed(im, profile, mode)
    if im.mode != mode:
        im = im.convert(mode)
    array = np.asarray(im, dtype=np.uint8)
    return array.reshape(im.height, im.width, -1), profile


def _sixteen_bit(im: Image.Image, mode: str) -> np.ndarray:
    """I;16*: value / 257, rounded (65535 -> 255); a transparency key
    becomes alpha, compared at 16 bits."""
    values = np.asarray(im).astype(np.uint32)
    grey = ((values + 128) // 257).astype(np.uint8)
    if mode == "L":
        return grey[:, :, None]
    alpha = np.where(values == int(im.info["transparency"]), 0, 255).astype(np.uint8)
    return np.dstack([grey, grey, grey, alpha])


def colour_managed(im: Image.Image, profile: bytes, mode: str) -> tuple[Image.Image, bytes | None]:
    """The image in sRGB (alpha kept) and sRGB's profile, converted through
    `profile`; without littlecms (or with a profile it cannot use), the
    pixels unchanged and no profile, with a warning."""
    try:
        from PIL import ImageCms
    except ImportError as exc:
        return im, _dropped(im, mode, exc)
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        srgb = ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))
        colour_mode = {"LA": "L", "1": "L"}.get(im.mode, im.mode)
        alpha = im.convert("RGBA").getchannel("A") if mode == "RGBA" else None
        colour = im.convert(colour_mode) if colour_mode != im.mode else im
        converted = ImageCms.profileToProfile(colour, source, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        return im, _dropped(im, mode, exc)
    if alpha is not None:
        converted.putalpha(alpha)
    return converted, srgb_profile()


def _dropped(im: Image.Image, mode: str, reason: Exception) -> None:
    warnings.warn(
        f"the ICC profile of this {im.mode} image was dropped: the pixels are stored as "
        f"{mode} and could not be converted through it ({reason or type(reason).__name__})",
        UserWarning, stacklevel=6,
    )


@functools.cache
def srgb_profile() -> bytes:
    """The sRGB profile written after a colour-managed conversion: shipped
    bytes (littlecms's built-in sRGB with a fixed date), so files are the
    same on every machine and every run."""
    return resources.files("pil_kmq").joinpath("data/srgb.icc").read_bytes()
