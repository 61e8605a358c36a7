"""The smooth option and the PSNR target's search over K and smoothing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pil_kmq.quantize.metrics import mean_squared_error, psnr_from_mse
from pil_kmq.encoder import quick_size


from helpers import FIXTURES, gradient_image, noise_image, premultiplied

IMAGES = ["kodim23_crop.png", "rgb.png", "l.png", "rgba.png"]


def save(im: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "KMQ", **options)
    return buffer.getvalue()


def decoded_psnr(im: Image.Image, data: bytes) -> tuple[float, int]:
    with Image.open(io.BytesIO(data)) as out:
        out.load()
        k = out.info["colors"]
        decoded = np.asarray(out)
    original = np.asarray(im)
    if original.ndim == 3 and original.shape[2] == 4:
        # The targets measure RGBA's colour error weighted by alpha.
        original, decoded = premultiplied(original), premultiplied(decoded)
    channels = 1 if original.ndim == 2 else original.shape[2]
    return psnr_from_mse(mean_squared_error(original.reshape(-1, channels), decoded.reshape(-1, channels))), k


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("target", [27.0, 34.0])
def test_target_met_on_every_image(name, target):
    im = Image.open(FIXTURES / "images" / name)
    data = save(im, psnr=target, optimize=True)
    measured, k = decoded_psnr(im, data)
    assert measured >= target or k == 256


def test_fewest_colors_for_target_gives_a_smaller_file_than_the_fewest_colours():
    im = Image.open(FIXTURES / "images" / "kodim23_crop.png")
    for target in (32.0,):
        searched = save(im, psnr=target, optimize=True)
        fewest = save(im, psnr=target, optimize=True, smooth=0)
        assert decoded_psnr(im, searched)[0] >= target
        assert len(searched) < len(fewest)


def test_target_with_a_raw_file_or_dither_is_the_fewest_colours():
    im = Image.open(FIXTURES / "images" / "rgb.png")
    assert save(im, psnr=32) == save(im, psnr=32, smooth=0)
    assert save(im, psnr=32, dither=True, optimize=True) == save(
        im, psnr=32, dither=True, optimize=True, smooth=0
    )


def test_smooth_caps_the_search():
    im = Image.open(FIXTURES / "images" / "kodim23_crop.png")
    capped = save(im, psnr=32, optimize=True, smooth=0.5)
    free = save(im, psnr=32, optimize=True)
    assert decoded_psnr(im, capped)[0] >= 32
    assert len(free) <= len(capped)


def test_colors_alone_writes_the_nearest_labels():
    im = Image.open(FIXTURES / "images" / "kodim23_crop.png")
    for options in ({"colors": 16}, {"colors": 64, "optimize": True}):
        assert save(im, **options) == save(im, smooth=0, **options)
        assert save(im, **options) == save(im, smooth=0.0, **options)


def test_smooth_trades_quality_for_size():
    im = Image.open(FIXTURES / "images" / "kodim23_crop.png")
    plain = save(im, colors=64, optimize=True)
    smooth = save(im, colors=64, optimize=True, smooth=2)
    assert len(smooth) < len(plain)
    assert decoded_psnr(im, smooth)[0] < decoded_psnr(im, plain)[0]
    assert save(im, colors=64, optimize=True, smooth=2) == smooth


@pytest.mark.parametrize("value", [-1, -0.5, float("inf"), float("nan"), "1", True, [1]])
def test_bad_smooth_is_a_value_error_naming_it(value):
    with pytest.raises(ValueError, match="smooth"):
        save(gradient_image(8, 8), smooth=value)


def test_dither_and_smooth_together_is_an_error_naming_both():
    with pytest.raises(ValueError, match="dither.*smooth|smooth.*dither"):
        save(gradient_image(8, 8), colors=4, dither=True, smooth=1)
    save(gradient_image(8, 8), colors=4, dither=True, smooth=0)  # 0: nearest, no conflict


def test_quick_size_follows_the_label_map():
    flat = np.zeros((64, 64), dtype=np.uint8)
    noisy = np.asarray(noise_image(64, 64, "L")) // 16
    codebook = np.zeros((16, 3), dtype=np.uint8)
    assert quick_size(flat, codebook) < quick_size(noisy, codebook)
    assert quick_size(noisy[:40], codebook) > 0  # a height not a multiple of the band


def test_unreachable_target_gives_the_most_colours():
    im = noise_image(32, 32)
    data = save(im, psnr=60, optimize=True, colors=8)
    measured, k = decoded_psnr(im, data)
    assert k == 8 and measured < 60


def test_target_with_a_raw_file_ignores_smooth():
    im = Image.open(FIXTURES / "images" / "rgb.png")
    with pytest.warns(UserWarning, match=r"raw coding \(coding 0\)"):  # and says so
        data = save(im, psnr=30, smooth=4)
    assert data == save(im, psnr=30)
    assert decoded_psnr(im, data)[0] >= 30


def test_fewest_colors_for_target_is_deterministic():
    im = Image.open(FIXTURES / "images" / "rgb.png")
    assert save(im, psnr=33, optimize=True) == save(im, psnr=33, optimize=True)


def test_pngquant_quality_searches_too_and_keeps_its_minimum():
    from pil_kmq.quantize.quality import QualityNotReached, quality_to_mse

    im = Image.open(FIXTURES / "images" / "kodim23_crop.png")
    searched = save(im, quality=70, optimize=True)
    measured, _ = decoded_psnr(im, searched)
    assert 255.0**2 / 10 ** (measured / 10) <= quality_to_mse(70) * (1 + 1e-9)
    assert len(searched) < len(save(im, quality=70, optimize=True, smooth=0))
    with pytest.raises(QualityNotReached):
        save(im, quality=(95, 100), colors=4, optimize=True)


def test_the_search_reports_progress():
    calls = []
    im = Image.open(FIXTURES / "images" / "rgb.png")
    save(im, psnr=30, optimize=True, progress=lambda *args: calls.append(args))
    searches = [c for c in calls if c[0] == "search"]
    assert searches and all(0 < done <= total for _, done, total in searches)


def test_the_smoothing_used_is_recorded_and_reported(tmp_path, capsys):
    """The file says how its labels were chosen (the smTh chunk): open gives
    im.info["smooth"], kmq info prints it; nearest-colour files have none."""
    import json

    from pil_kmq import cli

    image = Image.open(FIXTURES / "images" / "rgb.png")
    plain, smooth, target = tmp_path / "plain.kmq", tmp_path / "smooth.kmq", tmp_path / "target.kmq"
    image.save(plain, colors=16, optimize=True)
    image.save(smooth, colors=16, optimize=True, smooth=2.5)
    image.save(target, psnr=30, optimize=True)
    with Image.open(plain) as im:
        assert "smooth" not in im.info
    with Image.open(smooth) as im:
        assert im.info["smooth"] == 2.5
    with Image.open(target) as im:
        chosen = im.info.get("smooth", 0.0)
    assert cli.main(["info", str(smooth)]) == 0
    assert "smoothed, smooth=2.5" in capsys.readouterr().out
    assert cli.main(["info", "--json", str(plain), str(target)]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [report["smooth"] for report in reports] == [0.0, chosen]
