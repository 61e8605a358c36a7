"""Image.save / Image.open through the KMQ plugin, as Pillow users call them."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageFile

from helpers import FIXTURES, flat_pixels, gradient_image, noise_image, reopen, save_to_bytes
from pil_kmq.reader import parse

GOLDEN = FIXTURES / "golden"
MALFORMED = FIXTURES / "malformed"


def reference_decode(data: bytes) -> tuple[str, list]:
    """A deliberately naive decoder written from the spec, one pixel at a time."""
    magic, version, channels, width, height, k, coding, flags, meta = struct.unpack(
        ">4sBBIIHBBI", data[:22]
    )
    assert (magic, version, coding, flags) == (b"KMQF", 3, 0, 0)
    start = 22 + meta
    codebook = [tuple(data[start + i * channels : start + (i + 1) * channels]) for i in range(k)]
    bits = (k - 1).bit_length()
    payload = data[start + k * channels : -4]
    stream = "".join(format(byte, "08b") for byte in payload)
    pixels = []
    for i in range(width * height):
        index = int(stream[i * bits : (i + 1) * bits], 2) if bits else 0
        colour = codebook[index]
        pixels.append(colour[0] if channels == 1 else colour)
    return {1: "L", 3: "RGB", 4: "RGBA"}[channels], pixels


# --- golden files ---------------------------------------------------------

GOLDEN_CASES = [(mode, k) for mode in ("l", "rgb", "rgba") for k in (1, 2, 3, 16, 256)]


@pytest.mark.parametrize("mode, k", GOLDEN_CASES)
def test_golden_file_decodes_like_the_reference_decoder(mode, k):
    data = (GOLDEN / f"{mode}_k{k}.kmq").read_bytes()
    expected_mode, expected_pixels = reference_decode(data)
    with Image.open(GOLDEN / f"{mode}_k{k}.kmq") as im:
        assert im.format == "KMQ"
        assert im.mode == expected_mode == mode.upper()
        assert im.info["colors"] <= k
        assert flat_pixels(im) == expected_pixels


@pytest.mark.parametrize("mode, k", GOLDEN_CASES)
def test_encoder_output_matches_golden_bytes(mode, k):
    """Byte-stable output: a change here must be deliberate (regenerate with
    fixtures/make_fixtures.py and say why)."""
    with Image.open(FIXTURES / "images" / f"{mode}.png") as im:
        assert save_to_bytes(im, colors=k) == (GOLDEN / f"{mode}_k{k}.kmq").read_bytes()


# --- round trips and options ---------------------------------------------


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_round_trip_is_a_k_colour_approximation(mode):
    im = gradient_image(40, 30, mode)
    original = np.asarray(im, dtype=float)
    errors = []
    for k in (4, 8, 32):
        out = reopen(save_to_bytes(im, colors=k))
        assert out.mode == mode and out.size == im.size
        decoded = np.asarray(out, dtype=float)
        assert len(np.unique(decoded.reshape(30 * 40, -1), axis=0)) <= k
        errors.append(((original - decoded) ** 2).mean())
    assert errors[0] > errors[1] > errors[2]
    assert 10 * np.log10(255**2 / errors[2]) > 25


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_at_most_k_colours_is_lossless(mode):
    array = noise_image(16, 8, mode).resize((64, 32), Image.Resampling.NEAREST)
    if mode == "RGBA":  # no fully transparent pixel: those all become (0, 0, 0, 0)
        array.putalpha(array.getchannel("A").point(lambda a: max(a, 1)))
    out = reopen(save_to_bytes(array, colors=256))
    assert out.info["colors"] == len(array.getcolors())
    assert out.tobytes() == array.tobytes()


def test_single_colour_image_stores_no_index_bits():
    im = Image.new("RGB", (50, 40), (10, 20, 30))
    data = save_to_bytes(im, colors=16)
    assert len(data) == 22 + 3 + 0 + 4
    assert reopen(data).tobytes() == im.tobytes()


def test_same_image_and_options_give_identical_bytes():
    im = gradient_image(60, 40)
    first = save_to_bytes(im, colors=16, seed=3)
    assert save_to_bytes(im, colors=16, seed=3) == first


def test_default_is_256_colours():
    out = reopen(save_to_bytes(noise_image(40, 40)))
    assert out.info["colors"] == 256


@pytest.mark.parametrize(
    "params", [{"colors": 0}, {"colors": 257}, {"colors": "abc"}, {"colors": 2.5},
               {"max_iter": -1}, {"tol": -1.0}, {"tol": "x"},
               {"coding": "lzw"}, {"coding": 9}, {"coding": True}, {"psnr": 0}, {"quality": 30.5}, {"dither": "yes"}]
)
def test_bad_save_options_raise_value_error(params):
    with pytest.raises(ValueError):
        save_to_bytes(gradient_image(8, 8), **params)


# --- modes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, stored", [("1", "L"), ("L", "L"), ("P", "RGB"), ("RGB", "RGB"), ("RGBX", "RGB"),
                     ("CMYK", "RGB"), ("YCbCr", "RGB"), ("HSV", "RGB"), ("LAB", "RGB"),
                     ("RGBA", "RGBA"), ("LA", "RGBA"), ("PA", "RGBA"), ("RGBa", "RGBA"), ("La", "RGBA")]
)
def test_every_mode_is_stored_in_its_nearest_mode(mode, stored):
    source = gradient_image(20, 10, "RGBA" if stored == "RGBA" else "RGB")
    im = source.convert(mode)
    out = reopen(save_to_bytes(im, colors=256))
    assert out.mode == stored
    expected = (im.convert("LA") if mode == "La" else im).convert(stored)
    difference = np.abs(np.asarray(out, float) - np.asarray(expected, float))
    assert difference.max() <= 8


def test_palette_image_with_transparency_keeps_it_as_alpha():
    im = Image.new("P", (4, 2))
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    im.putdata([0, 1, 2, 1, 0, 0, 2, 1])
    im.info["transparency"] = 0
    out = reopen(save_to_bytes(im, colors=4))
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0))[3] == 0
    assert out.getpixel((1, 0)) == (255, 0, 0, 255)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_modes_of_unknown_range_are_refused_with_how_to_scale(mode):
    im = Image.new(mode, (4, 4), 1000)
    with pytest.raises(ValueError, match=rf"mode {mode} .*0 to 1000.*im\.point\(lambda v: "):
        save_to_bytes(im)


def test_zero_size_image_is_refused():
    with pytest.raises(ValueError, match="empty"):
        save_to_bytes(Image.new("RGB", (0, 5)))


# --- metadata -------------------------------------------------------------


def test_icc_and_exif_round_trip_from_options():
    exif = Image.Exif()
    exif[0x010E] = "a kmq test"  # ImageDescription
    data = save_to_bytes(gradient_image(8, 8), colors=4, icc_profile=b"fake-icc", exif=exif)
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == b"fake-icc"
        assert im.getexif()[0x010E] == "a kmq test"


def test_icc_comes_from_image_info():
    im = gradient_image(8, 8)
    im.info["icc_profile"] = b"profile-bytes"
    with Image.open(io.BytesIO(save_to_bytes(im, colors=4))) as out:
        assert out.info["icc_profile"] == b"profile-bytes"


# --- Pillow integration ---------------------------------------------------


def test_save_and_open_by_path_with_extension(tmp_path):
    path = tmp_path / "photo.kmq"
    gradient_image(30, 20).save(path, colors=16)
    with Image.open(path) as im:
        assert im.format == "KMQ"
        assert im.get_format_mimetype() == "image/x-kmq"
        im.thumbnail((15, 10))
        assert im.size == (15, 10)
        assert im.convert("L").mode == "L"


def test_open_is_lazy_and_context_manager_closes(tmp_path):
    path = tmp_path / "lazy.kmq"
    gradient_image(30, 20).save(path, colors=4)
    with Image.open(path) as im:
        assert im.tile and im.size == (30, 20)
        fp = im.fp
    assert fp.closed


def test_open_from_file_object_and_formats_argument(tmp_path):
    path = tmp_path / "x.kmq"
    gradient_image(30, 20).save(path, colors=4)
    with open(path, "rb") as handle:
        with Image.open(handle, formats=["KMQ"]) as im:
            im.load()
            assert im.size == (30, 20)
        assert not handle.closed


def test_other_formats_fall_through():
    buffer = io.BytesIO()
    gradient_image(8, 8).save(buffer, "PNG")
    buffer.seek(0)
    with Image.open(buffer) as im:
        assert im.format == "PNG"
    buffer.seek(0)
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(buffer, formats=["KMQ"])


def test_draft_p_gives_the_label_map_with_the_codebook_palette():
    im = gradient_image(30, 20)
    data = save_to_bytes(im, colors=6)
    with Image.open(io.BytesIO(data)) as colour:
        colour.load()
    with Image.open(io.BytesIO(data)) as labels:
        assert labels.draft("P", labels.size) == ("P", (0, 0, 30, 20))
        labels.load()
        assert labels.mode == "P"
        parsed = parse(data)
        assert labels.getpalette()[: 3 * parsed.header.k] == list(parsed.codebook)
        assert labels.convert("RGB").tobytes() == colour.tobytes()
        assert max(flat_pixels(labels)) < parsed.header.k


def test_draft_p_for_grey_and_alpha():
    for mode, palette_mode in (("L", "RGB"), ("RGBA", "RGBA")):
        data = save_to_bytes(gradient_image(10, 10, mode), colors=4)
        with Image.open(io.BytesIO(data)) as im:
            im.draft("P", im.size)
            im.load()
            assert im.mode == "P" and im.palette.mode == palette_mode
            assert im.convert(mode).tobytes() == reopen(data).tobytes()


# --- rejections -----------------------------------------------------------

REJECTIONS = {
    "version_1": "version 1: this reader reads versions 2 and 3; pil_kmq 0.1.x reads it",
    "bad_version": "version 4",
    "truncated_header": "truncated header",
    "bad_channels": "channels 2",
    "zero_width": "bad size",
    "too_high": "bad size",
    "k_zero": "bad K 0",
    "k_257": "bad K 257",
    "unknown_coding": "unknown coding 4",
    "flags_set": "unknown flags",
    "truncated_head": "truncated file",
    "chunk_past_region": "runs past",
    "leftover_bytes": "left over",
    "chunk_type_not_letters": "not 4 ASCII letters",
    "empty_chunk": "empty zzZZ chunk",
    "duplicate_chunk": "second iCCP",
    "exif_not_tiff": "TIFF header",
    "smooth_not_a_number": "not a positive decimal number",
    "truncated_payload": "truncated",
    "trailing_garbage": "longer than its header",
    "bad_crc": "CRC mismatch",
    "label_ge_k": "label 3 >= K=3",
    "nonzero_padding": "padding",
    "bad_head_crc": r"CRC mismatch \(head\)",
    "band_height_zero": "bad band height 0",
    "band_height_too_small": "bad band height 1",
    "strip_zero": "strip height 0",
    "empty_band": "empty stream",
    "bad_band_crc": r"CRC mismatch \(band 0\)",
    "truncated_band": "truncated",
    "band_trailing_garbage": "longer than its bands",
    "stream_too_short": "early",
    "stream_too_long": "more than",
    "bytes_after_stream": "followed by extra bytes",
    "broken_stream": "xz band",
    "zlib_preset_dictionary": "zlib band",
    "band_label_ge_k": "label 3 >= K=3",
    "band_nonzero_padding": "non-zero padding bits",
    "dpi_wrong_length": "dpIn of 15 bytes, must be 16",
    "dpi_not_positive": "not two finite numbers > 0",
    "dpi_not_finite": "not two finite numbers > 0",
    "exif_shorter_than_its_signature": "TIFF header",
    "xz_state_reset_after_dictionary_reset": "xz band: Corrupt input data",
    "xz_distance_past_2_20": "xz band: Corrupt input data",
    "zlib_distance_before_the_stream": "zlib band: .*invalid distance too far back",
    "zstd_not_a_frame": "does not start with a zstd frame",
    "zstd_skippable_frame": "does not start with a zstd frame",
    "zstd_no_content_size": "does not state its content size",
    "zstd_content_size_wrong": "frame content size 3, but the band's labels take 2 bytes",
    "zstd_window_too_large": "window of 2097152 bytes",
    "zstd_dictionary": "names a dictionary",
    "zstd_checksum": "content checksum",
    "zstd_reserved_bit": "reserved bit",
    "zstd_truncated_frame": "zstd band: stream is incomplete",
    "zstd_second_frame": "zstd band: the stream is followed by extra bytes",
    "zstd_label_ge_k": "label 3 >= K=3",
    "zstd_in_version_2": "coding 3 in a version 2 file",
}


def test_every_malformed_fixture_has_a_case():
    assert {p.stem for p in MALFORMED.glob("*.kmq")} == set(REJECTIONS) | {"bad_magic"}


@pytest.mark.parametrize("name, message", sorted(REJECTIONS.items()))
def test_malformed_file_raises_oserror_saying_what_is_wrong(name, message, monkeypatch):
    # Without the bomb limit, so the file's own checks are what stops it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(OSError, match=message):
        with Image.open(MALFORMED / f"{name}.kmq", formats=["KMQ"]) as im:
            im.load()


def test_bad_magic_is_not_our_format():
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(MALFORMED / "bad_magic.kmq")
    from pil_kmq.KmqImagePlugin import KmqImageFile

    with pytest.raises(SyntaxError):
        KmqImageFile(str(MALFORMED / "bad_magic.kmq"))


def test_truncated_file_loads_with_load_truncated_images(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    full = reopen((GOLDEN / "rgb_k16.kmq").read_bytes())
    with Image.open(MALFORMED / "truncated_payload.kmq") as im:
        im.load()
        assert im.size == full.size
        # The first rows, fully present, decode exactly.
        assert im.crop((0, 0, 64, 10)).tobytes() == full.crop((0, 0, 64, 10)).tobytes()


def test_decompression_bomb_limit_applies(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    data = save_to_bytes(Image.new("L", (30, 30), 5), colors=1)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))


def test_huge_size_trips_the_bomb_limit_by_default():
    data = bytearray((GOLDEN / "rgb_k16.kmq").read_bytes())
    struct.pack_into(">II", data, 6, (1 << 24) - 1, (1 << 24) - 1)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bytes(data)))


def test_bzip2_is_gone():
    with pytest.raises(ValueError, match="unknown coding 'bzip2'"):
        save_to_bytes(gradient_image(8, 8), colors=4, coding="bzip2")


@pytest.mark.parametrize("name, number", [("raw", 0), ("zlib", 1), ("xz", 2), (2, 2)])
def test_coding_option_forces_a_coding(name, number):
    im = gradient_image(40, 30)
    data = save_to_bytes(im, colors=16, coding=name)
    assert parse(data).header.coding == number
    assert reopen(data).tobytes() == reopen(save_to_bytes(im, colors=16)).tobytes()


@pytest.mark.parametrize("name, number", [("zlib", 1), ("xz", 2)])
def test_optimize_with_a_coding_spends_effort_on_that_coding(name, number):
    im = gradient_image(64, 48)
    plain = save_to_bytes(im, colors=16, coding=name)
    tuned = save_to_bytes(im, colors=16, coding=name, optimize=True)
    assert parse(tuned).header.coding == number
    # The palette order is a heuristic: it may cost a byte on a toy image.
    assert len(tuned) < len(save_to_bytes(im, colors=16)) / 2
    assert reopen(tuned).tobytes() == reopen(plain).tobytes()
