"""What Pillow users expect of Image.save and the numpy API (issue 14):
colour-managed mode changes, pngquant's quality, 16-bit grey, transparent
pixels, several frames, the array contract and progress."""

from __future__ import annotations

import io
import struct
import sys

import numpy as np
import PIL
import pytest
from PIL import Image, ImageCms

from helpers import FIXTURES, gradient_image, noise_image, reopen, save_to_bytes
from icc_profiles import D50, cmyk_profile, desc_tag, icc_profile, xyz_tag
from pil_kmq import compress, reconstruct
from pil_kmq.pixels import srgb_profile
from pil_kmq.quantize.metrics import histogram_mse, mean_squared_error
from pil_kmq.quantize.quality import QualityNotReached, mse_to_quality, quality_to_mse


# --- 1. colour management --------------------------------------------------


def grey_profile(gamma: float = 1.0) -> bytes:
    """A minimal ICC v2 grey profile (white point, one-gamma kTRC)."""
    return icc_profile(b"mntr", b"GRAY", b"XYZ ", {
        b"wtpt": xyz_tag(D50),
        b"kTRC": b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)),
        b"desc": desc_tag("linear grey"),
    })


def colour_space(profile: bytes) -> str:
    return ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.xcolor_space.strip()


def test_a_profile_is_converted_with_pixels_that_change_colour_space():
    # Grey with alpha is stored as RGBA: a grey profile on RGB pixels would be
    # wrong, so the pixels go through it to sRGB and sRGB's profile is written.
    im = Image.new("LA", (8, 8), (128, 200))
    im.info["icc_profile"] = grey_profile(gamma=1.0)  # linear grey: 128 is sRGB's 188
    out = reopen(save_to_bytes(im, colors=4))
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (188, 188, 188, 200)
    assert out.info["icc_profile"] == srgb_profile() and colour_space(out.info["icc_profile"]) == "RGB"


def test_a_lab_image_is_written_with_srgb_s_profile():
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), lab, "RGB", "LAB")
    im = ImageCms.applyTransform(gradient_image(16, 8), to_lab)
    im.info["icc_profile"] = lab.tobytes()
    out = reopen(save_to_bytes(im, colors=16))
    assert out.mode == "RGB" and colour_space(out.info["icc_profile"]) == "RGB"


def test_a_profile_in_the_pixels_colour_space_travels_unchanged_and_files_stay_deterministic():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = gradient_image(16, 8)
    im.info["icc_profile"] = srgb
    assert reopen(save_to_bytes(im, colors=8)).info["icc_profile"] == srgb
    converted = Image.new("LA", (8, 8), (100, 255))
    converted.info["icc_profile"] = grey_profile()
    assert save_to_bytes(converted, colors=2) == save_to_bytes(converted, colors=2)  # the sRGB profile has a fixed date


def test_without_littlecms_the_profile_is_dropped_with_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL.ImageCms", None)  # import fails, as without littlecms
    monkeypatch.delattr(PIL, "ImageCms")
    im = Image.new("LA", (8, 8), (128, 255))
    im.info["icc_profile"] = grey_profile()
    with pytest.warns(UserWarning, match="ICC profile of this LA image was dropped"):
        out = reopen(save_to_bytes(im, colors=2))
    assert "icc_profile" not in out.info and out.getpixel((0, 0)) == (128, 128, 128, 255)


def test_a_profile_that_does_not_fit_the_pixels_is_dropped_with_a_warning():
    im = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    im.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with pytest.warns(UserWarning, match="dropped"):
        out = reopen(save_to_bytes(im, colors=2))
    assert "icc_profile" not in out.info and out.getpixel((0, 0)) == (255, 0, 0)


def cmyk_patches() -> Image.Image:
    """12 ink mixes, white (no ink) and full ink included, as 4x4 patches."""
    inks = [(0, 0, 0, 0), (255, 255, 255, 255), (255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0),
            (0, 0, 0, 255), (128, 0, 0, 0), (0, 0, 0, 128), (60, 40, 20, 10), (200, 100, 0, 30),
            (0, 180, 180, 0), (90, 90, 90, 90)]
    patches = np.array(inks, np.uint8)[np.arange(48).reshape(4, 12) % 12]
    return Image.fromarray(np.repeat(np.repeat(patches, 4, axis=0), 4, axis=1), "CMYK")


def through_profile(im: Image.Image, profile: bytes) -> np.ndarray:
    """What ImageCms gives for im through `profile` to sRGB, directly."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    srgb = ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))
    return np.asarray(ImageCms.profileToProfile(im, source, srgb, outputMode="RGB"))


def test_the_generated_cmyk_profile_is_one_littlecms_uses():
    profile = ImageCms.ImageCmsProfile(io.BytesIO(cmyk_profile())).profile
    assert (profile.device_class, profile.xcolor_space, profile.connection_space) == ("prtr", "CMYK", "Lab ")
    colours = through_profile(cmyk_patches(), cmyk_profile())[::4, ::4].reshape(-1, 3)[:12].astype(int)
    assert (colours[0] >= 250).all() and (colours[1] <= 10).all()  # paper white, full ink black
    assert colours[5].max() < 80 and colours[5].max() - colours[5].min() < 5  # black ink: dark grey
    assert colours[2][0] < colours[2][1] < colours[2][2]  # cyan ink: more blue than green than red


def test_a_cmyk_image_is_converted_through_its_profile_to_srgb():
    im = cmyk_patches()
    im.info["icc_profile"] = cmyk_profile()
    out = reopen(save_to_bytes(im, colors=16))  # 12 colours: kept exactly
    assert out.mode == "RGB" and out.info["icc_profile"] == srgb_profile()
    managed, naive = through_profile(im, cmyk_profile()), np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(out), managed)
    assert np.abs(managed.astype(int) - naive).mean() > 20  # the naive conversion is far off


def test_a_cmyk_gradient_is_converted_then_quantized():
    """More colours than K: the file is the one ImageCms's own sRGB pixels
    would give, quantized, not the naive conversion's."""
    grey = np.asarray(gradient_image(64, 32, "RGB"))
    cmyk = Image.fromarray(np.dstack([grey, grey[:, :, :1] // 2]), "CMYK")
    cmyk.info["icc_profile"] = cmyk_profile()
    out = reopen(save_to_bytes(cmyk, colors=16))
    managed, naive = through_profile(cmyk, cmyk_profile()), np.asarray(cmyk.convert("RGB"))
    expected = reopen(save_to_bytes(Image.fromarray(managed), colors=16))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    assert out.info["icc_profile"] == srgb_profile()
    assert mean_squared_error(np.asarray(out), managed) < 0.1 * mean_squared_error(np.asarray(out), naive)


def test_without_littlecms_a_cmyk_profile_is_dropped_with_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL.ImageCms", None)  # import fails, as without littlecms
    monkeypatch.delattr(PIL, "ImageCms")
    im = cmyk_patches()
    im.info["icc_profile"] = cmyk_profile()
    with pytest.warns(UserWarning, match="ICC profile of this CMYK image was dropped"):
        out = reopen(save_to_bytes(im, colors=16))
    assert "icc_profile" not in out.info
    np.testing.assert_array_equal(np.asarray(out), np.asarray(im.convert("RGB")))


# --- 2. quality is pngquant's ----------------------------------------------


def test_the_quality_scale_maps_to_mse_as_documented():
    assert quality_to_mse(100) == 0 and quality_to_mse(0) == float("inf")
    psnr = {q: 10 * np.log10(255**2 / quality_to_mse(q)) for q in (50, 80, 90)}
    assert psnr[50] == pytest.approx(35.7, abs=0.05) and psnr[80] == pytest.approx(40.2, abs=0.05)
    assert psnr[90] == pytest.approx(43.4, abs=0.05)
    mses = [quality_to_mse(q) for q in range(1, 101)]
    assert all(a > b for a, b in zip(mses, mses[1:]))  # higher quality, smaller error
    for q in range(101):
        assert mse_to_quality(quality_to_mse(q)) == q


def test_quality_uses_the_fewest_colours_reaching_max(fixtures):
    image = np.asarray(Image.open(fixtures / "images" / "rgb.png"))
    for quality in (40, 80):
        labels, codebook = compress(image, 256, quality=quality)
        k = len(codebook)
        assert 1 < k < 256
        assert histogram_mse(image.reshape(-1, 3), np.ones(labels.size), codebook, labels.ravel()) <= quality_to_mse(quality)
        fewer_labels, fewer = compress(image, k - 1)
        assert histogram_mse(image.reshape(-1, 3), np.ones(labels.size), fewer, fewer_labels.ravel()) > quality_to_mse(quality)
    assert len(compress(image, 256, quality=(0, 40))[1]) == len(compress(image, 256, quality=40)[1])


def test_below_min_quality_save_raises_and_writes_nothing(tmp_path):
    im = noise_image(32, 24)
    target = tmp_path / "low.kmq"
    with pytest.raises(ValueError, match="below the minimum quality 60") as raised:
        im.save(target, colors=4, quality=(60, 90))
    assert isinstance(raised.value, QualityNotReached) and raised.value.colors == 4
    assert not target.exists()
    # Between min and max: the most colours allowed, no error.
    assert reopen(save_to_bytes(im, colors=4, quality=(0, 90))).info["colors"] == 4


def test_an_old_style_quality_in_db_fails_loudly():
    with pytest.raises(TypeError, match="psnr=35.0"):
        save_to_bytes(gradient_image(8, 8), quality=35.0)
    with pytest.raises(ValueError, match="psnr"):
        save_to_bytes(gradient_image(8, 8), quality=250)
    with pytest.raises(ValueError, match="not both"):
        save_to_bytes(gradient_image(8, 8), quality=50, psnr=30.0)


# --- 4. modes ----------------------------------------------------------------


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2")])
def test_16_bit_grey_is_scaled_to_8_bits(mode, dtype):
    values = np.array([[0, 128, 129, 385], [386, 25828, 25829, 65535]], dtype=np.uint32)
    im = Image.frombytes(mode, (4, 2), values.astype(dtype).tobytes())
    out = reopen(save_to_bytes(im))
    assert out.mode == "L"
    assert np.asarray(out).tolist() == [[0, 0, 1, 1], [2, 100, 101, 255]]  # value / 257, rounded


def test_a_16_bit_png_round_trips_and_convert_l_would_have_clipped(tmp_path):
    ramp = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode.startswith("I")
        out = reopen(save_to_bytes(im))
    assert np.array_equal(np.asarray(out), np.arange(256, dtype=np.uint8).reshape(16, 16))


def test_16_bit_grey_with_a_transparency_key_gets_alpha():
    values = np.array([[1000, 5000]], dtype="<u2")
    im = Image.frombytes("I;16", (2, 1), values.tobytes())
    im.info["transparency"] = 5000
    out = reopen(save_to_bytes(im))
    assert out.mode == "RGBA" and out.getpixel((1, 0))[3] == 0 and out.getpixel((0, 0)) == (4, 4, 4, 255)
    im.info["icc_profile"] = grey_profile()  # a grey profile does not describe RGBA: converted
    assert colour_space(reopen(save_to_bytes(im)).info["icc_profile"]) == "RGB"


@pytest.mark.parametrize("mode, stored", [("CMYK", "RGB"), ("LA", "RGBA"), ("PA", "RGBA"), ("1", "L")])
def test_other_modes_keep_working(mode, stored):
    im = gradient_image(16, 8, "RGBA").convert(mode) if mode != "PA" else \
        gradient_image(16, 8, "RGBA").convert("P").convert("PA")
    assert reopen(save_to_bytes(im)).mode == stored


def test_p_with_a_transparency_key_keeps_it():
    im = Image.new("P", (4, 1))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((1, 0), 1)
    im.info["transparency"] = 1
    out = reopen(save_to_bytes(im))
    assert out.mode == "RGBA" and out.getpixel((1, 0))[3] == 0 and out.getpixel((0, 0)) == (0, 0, 0, 255)


# --- 5. transparency ---------------------------------------------------------


def test_transparent_pixels_take_one_codebook_entry():
    """4 visible colours plus transparent noise at K=5: every visible colour
    kept exactly, the fifth entry the one invisible colour."""
    visible = np.array([[200, 30, 30, 255], [30, 200, 30, 255], [30, 30, 200, 255], [220, 220, 40, 255]], np.uint8)
    rng = np.random.default_rng(1)
    image = visible[rng.integers(0, 4, (32, 32))]
    clear = rng.random((32, 32)) < 0.4
    image[clear] = rng.integers(0, 256, (int(clear.sum()), 4), dtype=np.uint8) * [1, 1, 1, 0]
    out = reopen(save_to_bytes(Image.fromarray(image, "RGBA"), colors=5))
    decoded = np.asarray(out)
    assert np.array_equal(decoded[~clear], image[~clear])  # the visible colours, exactly
    assert (decoded[clear] == 0).all()
    assert out.info["colors"] == 5


# --- 6. animations -------------------------------------------------------------


def animation(tmp_path, frames: int = 3):
    images = [Image.new("P", (8, 8), index) for index in range(frames)]
    for image in images:
        image.putpalette([value for index in range(256) for value in (index, 255 - index, 0)])
    images[0].save(tmp_path / "anim.gif", save_all=True, append_images=images[1:])
    return Image.open(tmp_path / "anim.gif")


def test_save_writes_the_current_frame_and_save_all_refuses_several_by_name(tmp_path):
    # Pillow's PNG and WebP writers save the current frame unless save_all=True.
    with animation(tmp_path) as im:
        im.save(tmp_path / "first.kmq")
        im.seek(2)
        im.save(tmp_path / "third.kmq")
        with pytest.raises(ValueError, match="save_all=True: .* has 3 frames"):
            im.save(tmp_path / "anim.kmq", save_all=True)
    for name, index in (("first.kmq", 0), ("third.kmq", 2)):
        with Image.open(tmp_path / name) as out:
            assert out.convert("RGB").getpixel((0, 0)) == (index, 255 - index, 0)
    assert not (tmp_path / "anim.kmq").exists()


def test_save_all_counts_appended_images_and_allows_a_single_frame(tmp_path):
    im = gradient_image(8, 8)
    with pytest.raises(ValueError, match="has 3 frames"):
        im.save(io.BytesIO(), "KMQ", save_all=True, append_images=[im, im])
    assert reopen(save_to_bytes(im, save_all=True)).size == (8, 8)


# --- 7. the array contract ------------------------------------------------------


def test_a_list_of_colours_gets_a_label_per_colour():
    image = np.asarray(gradient_image(20, 10))
    colours = image.reshape(-1, 3)
    labels, codebook = compress(colours, 8)
    assert labels.shape == (200,) and codebook.shape == (8, 3)
    image_labels, image_codebook = compress(image, 8)
    assert np.array_equal(labels, image_labels.ravel()) and np.array_equal(codebook, image_codebook)
    assert reconstruct(labels, codebook).shape == (200, 3)


@pytest.mark.parametrize("shape", [(5,), (4, 4, 2), (2, 4, 4, 3), (4, 4, 5)])
def test_other_shapes_are_refused_naming_the_accepted_ones(shape):
    with pytest.raises(ValueError, match=r"\(n, 3\|4\) list of colours"):
        compress(np.zeros(shape, np.uint8), 4)


def test_other_2d_arrays_are_grey_images():
    labels, codebook = compress(np.asarray(gradient_image(6, 5, "L")), 2)
    assert labels.shape == (5, 6) and codebook.shape == (2, 1)


def test_a_float_image_is_refused_with_how_to_convert():
    with pytest.raises(ValueError, match=r"astype\(np.uint8\)"):
        compress(np.zeros((4, 4, 3)), 4)


# --- 11. progress ----------------------------------------------------------------


def test_progress_hears_every_stage_in_order():
    heard = []
    save_to_bytes(gradient_image(32, 24), colors=8, progress=lambda *call: heard.append(call))
    assert [call[0] for call in heard][:2] == ["pixels", "pixels"]
    assert heard[:2] == [("pixels", 0, 1), ("pixels", 1, 1)]
    stages = [stage for stage, _, _ in heard]
    assert stages == sorted(stages, key=["pixels", "quantize", "code"].index)
    for stage in ("quantize", "code"):
        calls = [(done, total) for name, done, total in heard if name == stage]
        assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]  # from 0 to all done
        assert all(0 <= done <= total for done, total in calls)
        assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    heard.clear()
    save_to_bytes(Image.open(FIXTURES / "images" / "rgb.png"), quality=70, progress=lambda *call: heard.append(call))
    searches = [call for call in heard if call[0] == "search"]
    assert len(searches) > 2 and [call[1] for call in searches] == list(range(1, len(searches) + 1))
    assert all(done <= total for _, done, total in searches)
    assert [call[0] for call in heard if call[0] not in ("search", "quantize")] == \
        ["pixels", "pixels"] + ["code"] * len([call for call in heard if call[0] == "code"])


def test_progress_counts_real_work_passes_and_bands():
    """Not just (0, 1) and (1, 1): k-means passes and bands coded (issue 23)."""
    heard = []
    im = noise_image(600, 500)  # 300k colours: k-means runs its passes; two bands
    save_to_bytes(im, colors=16, optimize=True, progress=lambda *call: heard.append(call))
    quantize = [(done, total) for stage, done, total in heard if stage == "quantize"]
    code = [(done, total) for stage, done, total in heard if stage == "code"]
    assert len(quantize) > 20 and quantize[-1][1] > 20
    # raw once, the codebook order once, each xz band and each zstd band:
    # 300,000 labels make 1 band
    assert code == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_progress_changes_nothing_in_the_file_and_a_failing_callback_stops_the_save():
    def broken(stage, done, total):
        raise RuntimeError("stop")

    im = gradient_image(16, 8)
    assert save_to_bytes(im, colors=4, progress=lambda *call: None) == save_to_bytes(im, colors=4)
    with pytest.raises(RuntimeError, match="stop"):
        save_to_bytes(im, progress=broken)
