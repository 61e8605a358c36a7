"""dpi and XMP (the dpIn and xMPp chunks): kept through Image.save and
Image.open for every mode the plugin saves, from save options as Pillow's
plugins take them and from im.info, as the spec's rules say."""

from __future__ import annotations

import io
import math
import re
import struct
import warnings

import numpy as np
import pytest
from PIL import Image, PngImagePlugin, features

from helpers import gradient_image, save_to_bytes
from pil_kmq.format import container, write_file
from pil_kmq.options import OptionTypeError, OptionValueError

XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/x-kmq"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
DPI = (300, 72.5)
# Every mode Image.save takes (stored as L, RGB or RGBA; the rest converted).
MODES = ["L", "RGB", "RGBA", "1", "P", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
         "LA", "La", "PA", "RGBa", "I;16", "I;16B", "I;16L"]


def image_in(mode: str) -> Image.Image:
    source = gradient_image(12, 8, "RGBA")
    if mode in ("LAB", "HSV", "La", "RGBa", "PA", "I;16B", "I;16L"):
        return Image.new(mode, (12, 8))
    return source.convert(mode)


def reopened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("mode", MODES)
def test_dpi_and_xmp_options_round_trip_in_every_mode(mode):
    out = reopened(save_to_bytes(image_in(mode), colors=4, dpi=DPI, xmp=XMP))
    assert out.info["dpi"] == (300.0, 72.5) and isinstance(out.info["dpi"][0], float)
    assert out.info["xmp"] == XMP


@pytest.mark.parametrize("mode", MODES)
def test_dpi_and_xmp_in_image_info_round_trip_in_every_mode(mode):
    im = image_in(mode)
    im.info.update(dpi=(299.9994, 600), xmp=XMP)
    out = reopened(save_to_bytes(im, colors=4))
    assert out.info["dpi"] == (299.9994, 600.0) and out.info["xmp"] == XMP


@pytest.mark.parametrize("coding", ["raw", "zlib", "xz"])
def test_every_coding_keeps_them(coding):
    out = reopened(save_to_bytes(gradient_image(40, 30), colors=16, coding=coding, dpi=DPI, xmp=XMP))
    assert out.info["dpi"] == DPI and out.info["xmp"] == XMP


def png_with_metadata(mode: str) -> bytes:
    """A PNG as Pillow writes it: dpi from the option (pHYs, px/m) and XMP
    in an iTXt chunk, as Adobe's tools store it."""
    text = PngImagePlugin.PngInfo()
    text.add_itxt("XML:com.adobe.xmp", XMP.decode())
    buffer = io.BytesIO()
    image_in(mode).save(buffer, "PNG", dpi=(300, 300), pnginfo=text)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_a_png_s_dpi_and_xmp_survive_png_to_kmq_to_png(mode):
    with Image.open(io.BytesIO(png_with_metadata(mode))) as png:
        png_dpi = png.info["dpi"]
        assert png_dpi != (300, 300)  # pHYs holds whole px/m: 299.9994
        kmq = reopened(save_to_bytes(png, colors=4))
    # Pillow 11+ exposes a PNG's XMP as info["xmp"] (bytes); 10.x only under
    # its iTXt keyword (str): both are kept
    assert kmq.info["dpi"] == png_dpi and kmq.info["xmp"] == XMP
    back = io.BytesIO()
    kmq.save(back, "PNG", dpi=kmq.info["dpi"])  # PNG takes dpi only as an option
    assert Image.open(back).info["dpi"] == png_dpi


def test_an_option_wins_over_image_info_and_none_stores_nothing():
    im = gradient_image(8, 8)
    im.info.update(dpi=(72, 72), xmp=b"<old/>")
    out = reopened(save_to_bytes(im, colors=4, dpi=(150, 150), xmp="<new/>"))
    assert out.info["dpi"] == (150.0, 150.0) and out.info["xmp"] == b"<new/>"
    out = reopened(save_to_bytes(im, colors=4, dpi=None, xmp=None))
    assert "dpi" not in out.info and "xmp" not in out.info


def test_an_empty_xmp_writes_no_chunk():
    data = save_to_bytes(gradient_image(8, 8), colors=4, xmp=b"")
    assert data == save_to_bytes(gradient_image(8, 8), colors=4)


@pytest.mark.parametrize("value, kind, words", [
    (300, OptionTypeError, "dpi must be a pair (x, y) of numbers > 0 (dots per inch), got 300"),
    ((300,), OptionTypeError, "dpi must be a pair"),
    (("300", "300"), OptionTypeError, "dpi must be a pair"),
    ((True, 1), OptionTypeError, "dpi must be a pair"),
    ((0, 72), OptionValueError, "dpi must be a pair (x, y) of numbers > 0 (dots per inch), got (0, 72)"),
    ((-1, 72), OptionValueError, "dpi"),
    ((math.nan, 72), OptionValueError, "dpi"),
    ((math.inf, 72), OptionValueError, "dpi"),
])
def test_a_bad_dpi_option_is_refused_by_name_and_nothing_is_written(value, kind, words):
    buffer = io.BytesIO()
    with pytest.raises(kind, match=re.escape(words)):
        gradient_image(8, 8).save(buffer, "KMQ", dpi=value)
    assert buffer.getvalue() == b""


def test_a_bad_xmp_option_is_refused_by_name():
    with pytest.raises(OptionTypeError, match="xmp must be bytes or str, got int"):
        save_to_bytes(gradient_image(8, 8), xmp=5)


@pytest.mark.parametrize("dpi", [(0, 0), 72, (math.nan, math.nan)])
def test_a_dpi_in_image_info_the_file_cannot_hold_is_left_out_with_a_warning(dpi):
    """A JPEG with a JFIF density of 0, a WMF's single number: the image
    still saves, the rest of its metadata with it."""
    im = gradient_image(8, 8)
    im.info.update(dpi=dpi, xmp=XMP)
    with pytest.warns(UserWarning, match=r"im.info\['dpi'\] is not stored in the KMQ file: dpi must be"):
        out = reopened(save_to_bytes(im, colors=4))
    assert "dpi" not in out.info and out.info["xmp"] == XMP


def test_the_chunks_are_as_the_spec_says():
    data = save_to_bytes(gradient_image(4, 4), colors=1, dpi=(300, 0.5), xmp=b"<x/>")
    metadata = data[22 : 22 + struct.unpack_from(">I", data, 18)[0]]
    assert metadata == (
        b"dpIn" + struct.pack(">I", 16) + bytes.fromhex("4072C00000000000 3FE0000000000000")
        + b"xMPp" + struct.pack(">I", 4) + b"<x/>"
    )


@pytest.mark.parametrize("body, words", [
    (b"\0" * 15, "dpIn of 15 bytes, must be 16"),
    (b"\0" * 17, "dpIn of 17 bytes, must be 16"),
    (struct.pack(">dd", 300, 0.0), "not two finite numbers > 0"),
    (struct.pack(">dd", -0.0, 300), "not two finite numbers > 0"),
    (struct.pack(">dd", -300, 300), "not two finite numbers > 0"),
    (struct.pack(">dd", 300, math.inf), "not two finite numbers > 0"),
    (struct.pack(">dd", math.nan, 300), "not two finite numbers > 0"),
])
def test_a_reader_rejects_a_dpi_chunk_the_spec_rejects(body, words):
    with pytest.raises(container.KmqFormatError, match=words):
        container.parse_chunks(struct.pack(">4sI", b"dpIn", len(body)) + body)


def test_a_second_xmp_chunk_is_rejected():
    chunk = struct.pack(">4sI", b"xMPp", 3) + b"<x>"
    with pytest.raises(container.KmqFormatError, match="a second xMPp chunk"):
        container.parse_chunks(chunk + chunk)


def test_write_file_refuses_a_resolution_the_file_cannot_hold():
    with pytest.raises(ValueError, match="dpi must be a pair of finite numbers > 0"):
        write_file(np.zeros((2, 2), np.uint8), np.zeros((1, 1), np.uint8), metadata={"dpi": (0, 1)})


def test_no_warning_when_image_info_holds_nothing_to_drop():
    im = gradient_image(8, 8)
    im.info.update(dpi=(96, 96))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_to_bytes(im, colors=4)


def test_the_command_keeps_them_both_ways(tmp_path):
    from test_cli import run_kmq

    (tmp_path / "scan.png").write_bytes(png_with_metadata("RGB"))
    assert run_kmq("encode", tmp_path / "scan.png", "-o", tmp_path / "scan.kmq", "-k", "4").returncode == 0
    shown = run_kmq("info", tmp_path / "scan.kmq").stdout
    assert re.search(r"metadata +xmp \(\d+ bytes\), dpi 299\.999 x 299\.999\n", shown), shown
    assert run_kmq("decode", tmp_path / "scan.kmq", "-o", tmp_path / "back.png").returncode == 0
    assert Image.open(tmp_path / "back.png").info["dpi"] == Image.open(tmp_path / "scan.png").info["dpi"]
    if features.check("webp"):
        assert run_kmq("decode", tmp_path / "scan.kmq", "-o", tmp_path / "back.webp").returncode == 0
        assert Image.open(tmp_path / "back.webp").info["xmp"] == XMP
