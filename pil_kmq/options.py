"""Every save option in one place: its type, range, default and error message.

Image.save (through im.encoderinfo), the numpy API and the kmq command all
read options through Options.from_mapping, so a value is accepted or refused
with the same words everywhere, and changing what an option means is a
change to this file alone.
"""

from __future__ import annotations

import difflib
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from PIL import Image

from .format import coding
from .format.container import is_resolution
from .quantize.schedule import DEFAULT_SPEED

DEFAULT_COLORS = 256
DEFAULT_MAX_ITER = 300
DEFAULT_TOL = 1e-4

# Spellings people reach for, and the option they mean.
NEAR_MISSES = {
    "k": "colors", "colour": "colors", "colours": "colors", "color": "colors",
    "n_colors": "colors", "ncolors": "colors", "palette_size": "colors",
    "dithering": "dither", "optimise": "optimize", "compression": "coding",
}


# Keys that resemble an option but mean none of ours: ignored without a
# guess (the k-means seeds are fixed, so `seed` is not a misspelt `speed`).
NOT_NEAR_MISSES = {"seed"}


class OptionValueError(ValueError):
    """A save option with a value outside its range."""


class OptionTypeError(TypeError, OptionValueError):
    """A save option of the wrong type (also a ValueError, as the README promises)."""


@dataclass(frozen=True)
class Options:
    """Validated encoder options, named like Image.save's keywords."""

    colors: int = DEFAULT_COLORS
    max_iter: int = DEFAULT_MAX_ITER
    tol: float = DEFAULT_TOL
    # Effort of the k-means, 1 (best) to 10 (fastest); max_iter and tol cap it.
    speed: int = DEFAULT_SPEED
    # Floyd-Steinberg error diffusion onto the codebook (quantize/dither.py).
    dither: bool = False
    # pngquant's (min, max) quality, 0-100 (quality_to_mse): the fewest
    # colours reaching max; refused (QualityNotReached) below min.
    quality: tuple[int, int] | None = None
    # Target PSNR in dB: use the fewest colours (at most `colors`) reaching it.
    psnr: float | None = None
    # Write the smallest coding the format has instead of raw.
    optimize: bool = False
    # Force one coding (a number of coding.NAMES); None: raw, or the smallest with optimize.
    coding: int | None = None
    # Rate-distortion smoothing of the labels (quantize/remap.py); None: 0
    # (nearest colour), or, with a psnr or quality target, chosen by the search.
    smooth: float | None = None
    # progress(stage, done, total), called as the encoder goes (see encoder.STAGES).
    progress: Callable[[str, int, int], Any] | None = None

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> Options:
        """Read and check options (im.encoderinfo or keywords); unknown keys
        are ignored as Pillow does, near-misses of ours draw a warning."""
        warn_near_misses(params)
        values = {
            name: parse(params[name], name) for name, (parse, _) in PARSERS.items()
            if params.get(name) is not None
        }
        if values.get("quality") is not None and values.get("psnr") is not None:
            raise OptionValueError("give quality (pngquant's 0-100 scale) or psnr (dB), not both")
        if values.get("dither") and values.get("smooth", 0) > 0:
            raise OptionValueError(
                "dither and smooth > 0 cannot be combined: dithering adds the noise that smoothing removes"
            )
        warn_smoothing_raw(values)
        return cls(**values)


def warn_smoothing_raw(values: dict[str, Any]) -> None:
    """smooth > 0 only pays in a compressed coding: a raw file costs
    ceil(log2 K) bits a label however smooth, so there it only costs quality."""
    raw = values.get("coding", coding.RAW if not values.get("optimize") else None) == coding.RAW
    if values.get("smooth", 0) > 0 and raw:
        warnings.warn(
            f"smooth={values['smooth']:g} with the raw coding (coding 0) makes no file smaller: "
            "raw labels take ceil(log2 K) bits however smooth, so it only costs quality "
            "(with psnr or quality it is ignored); give optimize=True or coding='zlib' or 'xz'",
            UserWarning, stacklevel=4,
        )


def metadata_bytes(value: Any, name: str) -> bytes | None:
    """icc_profile / exif / xmp: bytes-like (exif also Image.Exif; xmp also
    str, as Pillow < 11 keeps a PNG's XMP), or None."""
    if value is None or value == b"":
        return None
    if isinstance(value, Image.Exif) and name == "exif":
        return value.tobytes()
    if isinstance(value, str) and name == "xmp":
        return value.encode("utf-8") or None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    accepted = {"exif": "bytes or Image.Exif", "xmp": "bytes or str"}.get(name, "bytes")
    raise OptionTypeError(f"{name} must be {accepted}, got {type(value).__name__} {_short(value)}")


def _dpi(value: Any, name: str) -> tuple[float, float]:
    """dpi=(x, y) in dots per inch, as Pillow's PNG, JPEG and TIFF plugins
    take it; stored exactly (the file holds binary64), so 300 reads back 300.0."""
    wanted = "a pair (x, y) of numbers > 0 (dots per inch)"
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
        isinstance(part, numbers.Real) and not isinstance(part, bool) for part in value
    ):
        raise OptionTypeError(f"{name} must be {wanted}, got {_short(value)}")
    dpi = (float(value[0]), float(value[1]))
    if not is_resolution(dpi):
        raise OptionValueError(f"{name} must be {wanted}, got {_short(value)}")
    return dpi


def warn_near_misses(params: dict[str, Any]) -> None:
    for key in params:
        if not isinstance(key, str) or key in PARSERS or key in METADATA_KEYS:
            continue
        meant = NEAR_MISSES.get(key.lower())
        if meant is None and key.lower() not in NOT_NEAR_MISSES:
            close = difflib.get_close_matches(key.lower(), list(PARSERS), n=1, cutoff=0.8)
            meant = close[0] if close else None
        if meant is not None:
            warnings.warn(
                f"KMQ save option {key!r} is not known and was ignored: did you mean {meant!r}?",
                UserWarning, stacklevel=4,
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(low: int, high: int | None) -> Callable[[Any, str], int]:
    def parse(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise OptionTypeError(f"{name} must be an integer {_bounds(low, high)}, got {_short(value)}")
        if value < low or (high is not None and value > high):
            raise OptionValueError(f"{name} must be an integer {_bounds(low, high)}, got {value}")
        return int(value)

    return parse


def _bounds(low: float, high: float | None) -> str:
    return f">= {low}" if high is None else f"from {low} to {high}"


def _flag(value: Any, name: str) -> bool:
    """Flags take bool or the ints 0 and 1, as Pillow's own plugins do."""
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if hasattr(value, "dtype") and value.dtype == bool:  # numpy.bool_
        return bool(value)
    raise OptionTypeError(f"{name} must be True or False (or 1 or 0), got {_short(value)}")


def _dither(value: Any, name: str) -> bool:
    """bool, or an Image.Dither as Image.quantize takes it (plain ints are read
    as Image.Dither: 0 NONE, 1 ORDERED, 2 RASTERIZE, 3 FLOYDSTEINBERG)."""
    if isinstance(value, bool) or (hasattr(value, "dtype") and value.dtype == bool):
        return bool(value)
    if not isinstance(value, numbers.Integral):
        raise OptionTypeError(
            f"{name} must be True, False, Image.Dither.NONE or Image.Dither.FLOYDSTEINBERG, "
            f"got {_short(value)}"
        )
    try:
        method = Image.Dither(int(value))
    except ValueError:
        raise OptionValueError(f"{name} must be True, False or an Image.Dither, got {value!r}") from None
    if method not in (Image.Dither.NONE, Image.Dither.FLOYDSTEINBERG):
        raise OptionValueError(
            f"{name}=Image.Dither.{method.name} is not supported: use "
            "Image.Dither.FLOYDSTEINBERG (or True) or Image.Dither.NONE (or False)"
        )
    return method == Image.Dither.FLOYDSTEINBERG


def _real(low: float, high: float, low_open: bool) -> Callable[[Any, str], float]:
    wanted = f"a number {'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high < math.inf else "")

    def parse(value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise OptionTypeError(f"{name} must be {wanted}, got {_short(value)}")
        value = float(value)
        if math.isnan(value) or value < low or (low_open and value == low) or value > high or math.isinf(value):
            raise OptionValueError(f"{name} must be {wanted}, got {value!r}")
        return value

    return parse


# quality's meaning as an error bound is quantize/quality.py's quality_to_mse.
QUALITY_WANTED = "an integer from 0 to 100 or a (min, max) pair of them (pngquant's scale)"


def _quality_number(value: Any, name: str) -> int:
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        # Before 0.2.0 quality was a PSNR in dB (a float): say so rather than guess.
        raise OptionTypeError(
            f"{name} must be {QUALITY_WANTED}, got {_short(value)}; "
            f"for a target PSNR in dB use psnr={value!r}"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionTypeError(f"{name} must be {QUALITY_WANTED}, got {_short(value)}")
    if not 0 <= value <= 100:
        raise OptionValueError(
            f"{name} must be {QUALITY_WANTED}, got {value} (a target PSNR in dB is the psnr option)"
        )
    return int(value)


def _quality(value: Any, name: str) -> tuple[int, int]:
    """pngquant's quality: max alone (min 0), or a (min, max) pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise OptionValueError(f"{name} must be {QUALITY_WANTED}, got {_short(value)}")
        low, high = (_quality_number(part, name) for part in value)
        if low > high:
            raise OptionValueError(f"{name} (min, max) must have min <= max, got {_short(value)}")
        return low, high
    return 0, _quality_number(value, name)


def _progress(value: Any, name: str) -> Callable[[str, int, int], Any]:
    if not callable(value):
        raise OptionTypeError(f"{name} must be a callable(stage, done, total), got {_short(value)}")
    return value


def _coding(value: Any, name: str) -> int:
    """A coding by number or name ("raw", "zlib", ...)."""
    known = ", ".join(f"{number} ({label!r})" for number, label in coding.NAMES.items())
    if isinstance(value, str):
        by_name = {label: number for number, label in coding.NAMES.items()}
        if value.lower() in by_name:
            return by_name[value.lower()]
        raise OptionValueError(f"unknown {name} {value!r}: known codings are {known}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionTypeError(f"{name} must be a coding name or number: {known}; got {_short(value)}")
    if int(value) not in coding.NAMES:
        raise OptionValueError(f"unknown {name} {value!r}: known codings are {known}")
    return int(value)


# name -> (parser, what the README says of its range); the defaults are Options'.
PARSERS: dict[str, tuple[Callable[[Any, str], Any], str]] = {
    "colors": (_integer(1, 256), "int, 1 to 256"),
    "max_iter": (_integer(0, None), "int >= 0"),
    "tol": (_real(0.0, math.inf, low_open=False), "float >= 0"),
    "speed": (_integer(1, 10), "int, 1 (best) to 10 (fastest)"),
    "dither": (_dither, "bool or Image.Dither (NONE, FLOYDSTEINBERG)"),
    "quality": (_quality, "int 0 to 100, or a (min, max) pair"),
    "psnr": (_real(0.0, 100.0, low_open=True), "float, 0 < psnr <= 100 (dB)"),
    "smooth": (_real(0.0, math.inf, low_open=False), "float >= 0"),
    "optimize": (_flag, "bool"),
    "coding": (_coding, "str or int: " + ", ".join(coding.NAMES.values())),
    "progress": (_progress, "callable(stage, done, total)"),
}
# Metadata options: name -> parser. Each also comes from im.info when not given.
METADATA: dict[str, Callable[[Any, str], Any]] = {
    "icc_profile": metadata_bytes, "exif": metadata_bytes, "dpi": _dpi, "xmp": metadata_bytes,
}
METADATA_KEYS = tuple(METADATA)


def quality_from_text(text: str) -> Any:
    """--quality as pngquant writes it: MAX or MIN-MAX."""
    low, dash, high = text.partition("-")
    if dash:
        return int(low), int(high)
    try:
        return int(text)
    except ValueError:
        return float(text)  # refused by the parser, pointing a dB value to --psnr


def command_line_type(name: str, convert: Callable[[str], Any]):
    """An argparse type for option `name`: the text converted, then checked
    by the same parser as Image.save's keyword (so exit 2 names the range)."""
    import argparse

    parse, _ = PARSERS[name]

    def check(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = text
        try:
            return parse(value, name)
        except OptionValueError as exc:
            text = str(exc).replace("use psnr=", "use --psnr ").replace("the psnr option", "--psnr")
            raise argparse.ArgumentTypeError(text) from None

    return check
