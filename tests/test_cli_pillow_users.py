"""What users of the `kmq` command expect (issue 14): pngquant's --quality
and exit 99, --psnr, info over many files, --background, the user's path in
errors, narrow terminals, the label views, the sheet and EXIF orientation;
all through cli.main(argv) in-process."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pil_kmq.cli.convert import StageLine
from pil_kmq.cli.views import false_colours
from pil_kmq.cli.progress import fit_to_terminal
from pil_kmq.cli.sheet import sheet_panels
from test_cli import failure_lines, make_image, pixels, run_kmq

# --- 2. --quality MIN-MAX and exit 99, --psnr ----------------------------------


def noisy(path: Path) -> Path:
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


def test_encode_below_min_quality_exits_99_and_writes_nothing(tmp_path):
    source = noisy(tmp_path / "noise.png")
    result = run_kmq("encode", source, "-k", "4", "--quality", "60-90")
    assert result.returncode == 99
    (line,) = failure_lines(result)
    assert "noise.png" in line and "below the minimum quality 60" in line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["noise.png"]


def test_a_batch_with_one_image_below_min_exits_99(tmp_path):
    noisy(tmp_path / "noise.png")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "flat.png")
    result = run_kmq("encode", tmp_path, "-k", "4", "--quality", "60-90")
    assert result.returncode == 99 and (tmp_path / "flat.kmq").exists()


def test_encode_quality_max_alone_and_psnr(tmp_path):
    source = make_image(tmp_path / "photo.png", size=(32, 24))
    assert run_kmq("encode", source, "--quality", "80", "-o", tmp_path / "q.kmq").returncode == 0
    assert run_kmq("encode", source, "--psnr", "30", "-o", tmp_path / "p.kmq").returncode == 0
    with Image.open(tmp_path / "q.kmq") as q, Image.open(tmp_path / "p.kmq") as p:
        assert 1 < p.info["colors"] < q.info["colors"] <= 256  # 80 is about 40 dB
    both = run_kmq("encode", source, "--quality", "80", "--psnr", "30")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_an_old_quality_in_db_is_refused_pointing_to_psnr(tmp_path):
    result = run_kmq("encode", "a.png", "--quality", "32.5", cwd=tmp_path)
    assert result.returncode == 2 and "use --psnr 32.5" in result.stderr


# --- 9. info, --background, -o into a missing folder, narrow terminals, labels --


@pytest.fixture
def two_kmq(tmp_path) -> Path:
    folder = tmp_path / "kmq"
    make_image(folder / "a.png", 1)
    with Image.open(make_image(folder / "b.png", 2, size=(30, 20))) as im:
        soft = im.convert("RGBA")
    soft.putalpha(Image.linear_gradient("L").resize((30, 20)))  # transparent to opaque
    soft.save(folder / "b.png")
    assert run_kmq("encode", folder, "-k", "4").returncode == 0
    return folder


def test_info_takes_many_files_and_folders_in_one_table(two_kmq):
    result = run_kmq("info", two_kmq, two_kmq / "a.kmq")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "size", "mode", "K", "coding", "bytes", "ratio"]
    assert len(lines) == 4 and str(two_kmq / "b.kmq") in lines[2] and "30 x 20" in lines[2]


def test_info_json_is_a_list_of_reports(two_kmq):
    result = run_kmq("info", two_kmq, "--json")
    reports = json.loads(result.stdout)
    assert [Path(report["file"]).name for report in reports] == ["a.kmq", "b.kmq"]
    assert reports[1]["header"]["mode"] == "RGBA"


def test_info_goes_on_past_a_bad_file_and_original_needs_one_file(two_kmq):
    (two_kmq / "c.kmq").write_bytes(b"not a kmq file")
    result = run_kmq("info", two_kmq)
    assert result.returncode == 1 and len(result.stdout.splitlines()) == 3
    assert "c.kmq" in failure_lines(result)[0]
    usage = run_kmq("info", two_kmq, "--original", two_kmq / "a.png")
    assert usage.returncode == 2 and "single" in usage.stderr


def test_decoding_alpha_to_jpeg_names_background_and_background_flattens(two_kmq, tmp_path):
    refused = run_kmq("decode", two_kmq / "b.kmq", "-o", tmp_path / "b.jpg")
    assert refused.returncode == 1 and "--background COLOR" in failure_lines(refused)[0]
    assert not (tmp_path / "b.jpg").exists()

    done = run_kmq("decode", two_kmq / "b.kmq", "-o", tmp_path / "b.png", "--background", "#ff0000")
    assert done.returncode == 0, done.stderr
    with Image.open(two_kmq / "b.kmq") as im:
        rgba = np.asarray(im, dtype=float)
    alpha = rgba[..., 3:] / 255
    expected = rgba[..., :3] * alpha + np.array([255, 0, 0]) * (1 - alpha)
    flat = pixels(tmp_path / "b.png")
    assert flat.shape[2] == 3 and np.abs(flat - expected).max() <= 1
    assert run_kmq("decode", two_kmq / "b.kmq", "-o", tmp_path / "b.jpg", "--background", "white").returncode == 0
    bad = run_kmq("decode", two_kmq / "b.kmq", "--background", "notacolour")
    assert bad.returncode == 2 and "unknown colour" in bad.stderr


@pytest.mark.parametrize("command", ["encode", "decode", "sheet"])
def test_output_into_a_missing_folder_names_the_users_path(two_kmq, tmp_path, command):
    source = two_kmq / ("a.kmq" if command == "decode" else "a.png")
    target = tmp_path / "missing" / "out.png"
    result = run_kmq(command, source, "-o", target, *(["-k", "2"] if command == "sheet" else []))
    assert result.returncode == 1
    (line,) = failure_lines(result)
    assert str(tmp_path / "missing") in line and ".tmp" not in line
    assert not (tmp_path / "missing").exists()


def test_progress_lines_fit_a_narrow_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "24")
    line = fit_to_terminal("encode 12/400 files, 3.2 files/s, 2 min 03 s left")
    assert len(line) == 23 and line.endswith("...")
    assert fit_to_terminal("short") == "short"


def test_the_false_colours_are_distinct_for_every_k():
    for k in (2, 16, 256):
        assert len(np.unique(false_colours(k), axis=0)) == k


# --- 10. the sheet and EXIF orientation ----------------------------------------


def test_the_sheet_fits_a_screen_and_is_captioned(tmp_path):
    source = make_image(tmp_path / "wide.png", size=(768, 512))
    result = run_kmq("sheet", source, "-k", "2,16", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "wide.sheet.png") as sheet:
        assert 1000 < sheet.width <= 1600
    with Image.open(source) as im:
        panels = sheet_panels(im, [2, 16], {})
    captions = [panel.caption for panel in panels]
    assert captions[1][0] == "K = 2" and captions[1][1].endswith(" dB") and "KiB" in captions[1][2]
    assert run_kmq("sheet", source, "-k", "2", "--width", "0", "-o", tmp_path / "full.png").returncode == 0
    with Image.open(tmp_path / "full.png") as full:
        assert full.width > 2 * 768


def rotated_photo(path: Path) -> Path:
    """A 30x20 image whose EXIF says: turn 90 degrees clockwise to view."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "a phone photo"
    make_image(path, size=(30, 20)).parent  # noqa: B018
    with Image.open(path) as im:
        im.load()
        im.save(path, exif=exif)
    return path


def test_the_command_honours_exif_orientation_and_image_save_keeps_it(tmp_path):
    source = rotated_photo(tmp_path / "phone.png")
    assert run_kmq("encode", source, "-k", "8").returncode == 0
    with Image.open(tmp_path / "phone.kmq") as upright:
        assert upright.size == (20, 30)
        assert upright.getexif().get(0x0112, 1) == 1 and upright.getexif()[0x010E] == "a phone photo"
    with Image.open(source) as im:
        buffer = io.BytesIO()
        im.save(buffer, "KMQ", colors=8)
    with Image.open(buffer) as kept:
        assert kept.size == (30, 20) and kept.getexif()[0x0112] == 6


# --- 11. progress per stage on a terminal ----------------------------------------


def test_the_stage_line_shows_each_stage_and_clears_itself(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    line = StageLine("big.png")
    for call in [("pixels", 0, 1), ("quantize", 0, 1), ("search", 2, 9), ("code", 0, 1), ("code", 1, 1)]:
        line(*call)
    line.clear()
    written = capsys.readouterr().err
    assert "encode big.png: quantize" in written and "search   [####----------------]  22%" in written
    assert written.endswith("\r\x1b[K")
