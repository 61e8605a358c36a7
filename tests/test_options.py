"""options.py: every save option is checked in one place, with a message
naming the option, from Image.save, the numpy API and the kmq command."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from helpers import gradient_image
from pil_kmq import cli, compress
from pil_kmq.options import OptionTypeError, OptionValueError, Options

# (option, bad value, exception type, words the message must hold)
BAD = [
    ("colors", 0, OptionValueError, "colors must be an integer from 1 to 256"),
    ("colors", 300, OptionValueError, "from 1 to 256, got 300"),
    ("colors", "16", OptionTypeError, "colors must be an integer"),
    ("colors", 2.5, OptionTypeError, "colors must be an integer"),
    ("max_iter", -1, OptionValueError, "max_iter must be an integer >= 0"),
    ("tol", -1.0, OptionValueError, "tol must be a number >= 0"),
    ("tol", "x", OptionTypeError, "tol must be a number"),
    ("speed", 0, OptionValueError, "speed must be an integer from 1 to 10, got 0"),
    ("speed", 11, OptionValueError, "speed must be an integer from 1 to 10, got 11"),
    ("speed", 4.0, OptionTypeError, "speed must be an integer"),
    ("quality", 500, OptionValueError, "quality must be an integer from 0 to 100 or a (min, max) pair"),
    ("quality", 35.5, OptionTypeError, "for a target PSNR in dB use psnr=35.5"),
    ("quality", 250.0, OptionTypeError, "use psnr=250.0"),
    ("quality", (90, 50), OptionValueError, "min <= max"),
    ("quality", (1, 2, 3), OptionValueError, "quality must be"),
    ("quality", True, OptionTypeError, "quality"),
    ("psnr", 500, OptionValueError, "psnr must be a number > 0 and <= 100"),
    ("psnr", float("nan"), OptionValueError, "psnr"),
    ("psnr", "40", OptionTypeError, "psnr"),
    ("progress", 3, OptionTypeError, "progress must be a callable"),
    ("optimize", "no", OptionTypeError, "optimize must be True or False"),
    ("optimize", 2, OptionTypeError, "optimize must be True or False"),
    ("optimize", [], OptionTypeError, "optimize"),
    ("dither", "yes", OptionTypeError, "dither must be True, False"),
    ("dither", Image.Dither.ORDERED, OptionValueError, "Image.Dither.ORDERED is not supported"),
    ("dither", Image.Dither.RASTERIZE, OptionValueError, "Image.Dither.RASTERIZE is not supported"),
    ("coding", "lzw", OptionValueError, "unknown coding 'lzw'"),
    ("coding", 1.0, OptionTypeError, "coding must be a coding name or number"),
    ("icc_profile", "text", OptionTypeError, "icc_profile must be bytes, got str"),
    ("exif", "text", OptionTypeError, "exif must be bytes or Image.Exif, got str"),
]


@pytest.mark.parametrize("name, value, kind, words", BAD)
def test_image_save_refuses_a_bad_option_by_name_and_writes_nothing(name, value, kind, words):
    buffer = io.BytesIO()
    with pytest.raises(kind, match=re.escape(words)):
        gradient_image(8, 8).save(buffer, "KMQ", **{name: value})
    assert buffer.getvalue() == b""


def test_type_errors_are_value_errors_too():
    """The README promises ValueError for any bad option; a wrong type is
    also a TypeError, as Python code expects."""
    assert issubclass(OptionTypeError, TypeError) and issubclass(OptionTypeError, ValueError)


@pytest.mark.parametrize("name, value, kind, words", [case for case in BAD if case[0] in ("colors", "dither", "quality", "psnr", "speed")])
def test_the_numpy_api_refuses_the_same_values(name, value, kind, words):
    array = np.asarray(gradient_image(8, 8))
    k = value if name == "colors" else 4
    extra = {} if name == "colors" else {name: value}
    with pytest.raises(kind, match=name):
        compress(array, k, **extra)


@pytest.mark.parametrize(
    "args, words",
    [
        (["encode", "a.png", "-k", "300"], "colors must be an integer from 1 to 256, got 300"),
        (["encode", "a.png", "-k", "many"], "colors must be an integer"),
        (["encode", "a.png", "--quality", "500"], "quality must be an integer from 0 to 100"),
        (["encode", "a.png", "--quality", "90-50"], "min <= max"),
        (["encode", "a.png", "--psnr", "500"], "psnr must be a number > 0 and <= 100"),
        (["sheet", "a.png", "-k", "2,300"], "colors must be an integer from 1 to 256"),
    ],
)
def test_the_command_refuses_the_same_values_with_exit_2(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (1, True), (0, False), (np.bool_(True), True)])
def test_flags_take_bool_and_the_ints_0_and_1(value, expected):
    assert Options.from_mapping({"optimize": value}).optimize is expected


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), (0, False), (Image.Dither.NONE, False), (Image.Dither.FLOYDSTEINBERG, True), (3, True)],
)
def test_dither_takes_image_dither_like_image_quantize(value, expected):
    assert Options.from_mapping({"dither": value}).dither is expected


@pytest.mark.parametrize("key, meant", [("colours", "colors"), ("dithering", "dither"), ("k", "colors"), ("optimise", "optimize"), ("qualty", "quality")])
def test_near_miss_keys_warn_with_the_right_spelling(key, meant):
    with pytest.warns(UserWarning, match=f"{key!r} is not known and was ignored: did you mean {meant!r}"):
        gradient_image(8, 8).save(io.BytesIO(), "KMQ", **{key: 4})


def test_other_unknown_keys_are_ignored_silently_as_pillow_does():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain, extra = io.BytesIO(), io.BytesIO()
        gradient_image(8, 8).save(plain, "KMQ", colors=4)
        gradient_image(8, 8).save(extra, "KMQ", colors=4, seed=7, transparency_hint=None, lossless=True)
    assert plain.getvalue() == extra.getvalue()


def test_none_means_the_default():
    assert Options.from_mapping({"colors": None, "quality": None, "psnr": None, "dither": None}) == Options()


def test_metadata_options_accept_bytes_and_exif():
    exif = Image.Exif()
    exif[0x010E] = "a description"
    buffer = io.BytesIO()
    gradient_image(8, 8).save(buffer, "KMQ", colors=4, icc_profile=bytearray(b"icc"), exif=exif)
    buffer.seek(0)
    with Image.open(buffer) as im:
        assert im.info["icc_profile"] == b"icc"
        assert im.getexif()[0x010E] == "a description"
