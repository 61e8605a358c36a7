"""What a newcomer hits first (issue 23): pngquant's habits in the `kmq`
command (- for stdin and stdout, --skip-if-larger and its exit status 98,
a warning for an output larger than its input), --frame, info --original
upright like encode, a progress bar that moves, an icc_profile option in
another colour space, smooth= with the raw coding, and the demo's name."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import gradient_image, reopen, save_to_bytes
from icc_profiles import cmyk_profile
from pil_kmq.cli.convert import StageLine
from pil_kmq.pixels import srgb_profile
from test_cli import REPO, failure_lines, make_image, pixels, run_kmq, summary_line


def run_process(*args: object, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess:
    """`python -m pil_kmq ARGS` in a real process, bytes in and out."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "pil_kmq", *map(str, args)], input=stdin,
                          capture_output=True, cwd=cwd, env=env, timeout=120)


def blocks(path: Path, size: int = 256) -> Path:
    """A flat, screenshot-like image of 256 colours in 16 px blocks: a tiny
    PNG, a raw .kmq of a byte per pixel (many times larger)."""
    rng = np.random.default_rng(3)
    grid = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(np.kron(grid, np.ones((size // 16, size // 16, 1), np.uint8))).save(path)
    return path


def noise_png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


# --- - for standard input and output ------------------------------------------


def test_stdin_to_stdout_round_trips(tmp_path):
    source = make_image(tmp_path / "photo.png", size=(40, 30))
    encoded = run_process("encode", "-", "-k", "16", stdin=source.read_bytes(), cwd=tmp_path)
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout.startswith(b"KMQF") and sorted(os.listdir(tmp_path)) == ["photo.png"]
    decoded = run_process("decode", "-", stdin=encoded.stdout, cwd=tmp_path)
    assert decoded.returncode == 0, decoded.stderr
    assert sorted(os.listdir(tmp_path)) == ["photo.png"]  # no file named -
    quantized = reopen(encoded.stdout)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(decoded.stdout))), np.asarray(quantized))
    assert quantized.info["colors"] == 16


def test_dash_as_output_writes_stdout_with_the_format_asked(tmp_path):
    source = make_image(tmp_path / "photo.png")
    encoded = run_process("encode", source, "-o", "-", cwd=tmp_path)
    assert encoded.returncode == 0 and encoded.stdout.startswith(b"KMQF")
    (tmp_path / "x.kmq").write_bytes(encoded.stdout)
    png = run_process("decode", "x.kmq", "-o", "-", cwd=tmp_path)
    webp = run_process("decode", "x.kmq", "-o", "-", "--format", "webp", cwd=tmp_path)
    assert png.returncode == 0 and png.stdout.startswith(b"\x89PNG")
    assert webp.returncode == 0 and webp.stdout[8:12] == b"WEBP"
    assert sorted(os.listdir(tmp_path)) == ["photo.png", "x.kmq"]


def test_stdin_must_be_the_only_input(tmp_path):
    result = run_kmq("encode", "-", make_image(tmp_path / "a.png"))
    assert result.returncode == 2 and "only input" in result.stderr


# --- --skip-if-larger and the warning --------------------------------------------


def test_a_larger_output_is_written_with_a_warning(tmp_path):
    source = blocks(tmp_path / "screen.png")
    result = run_kmq("encode", source)
    assert result.returncode == 0 and (tmp_path / "screen.kmq").exists()
    (line,) = failure_lines(result)
    assert line.startswith(f"kmq: {source}: warning: the .kmq file (") and "larger than the input" in line
    smaller = run_kmq("encode", noise_png(tmp_path / "noise.png"), "-k", "16")
    assert smaller.returncode == 0 and failure_lines(smaller) == []


def test_skip_if_larger_writes_nothing_and_exits_98(tmp_path):
    source = blocks(tmp_path / "screen.png")
    result = run_kmq("encode", source, "--skip-if-larger")
    assert result.returncode == 98
    (line,) = failure_lines(result)
    assert "not written" in line and "--skip-if-larger" in line
    assert "0 written, 1 skipped, 0 failed" in summary_line(result)
    assert sorted(os.listdir(tmp_path)) == ["screen.png"]
    # an existing output is left as it was, even with --force
    (tmp_path / "screen.kmq").write_bytes(b"old")
    assert run_kmq("encode", source, "--skip-if-larger", "--force").returncode == 98
    assert (tmp_path / "screen.kmq").read_bytes() == b"old"
    # optimize makes it smaller than the PNG: written, exit 0
    assert run_kmq("encode", source, "--skip-if-larger", "--optimize", "-o", tmp_path / "o.kmq").returncode == 0
    assert (tmp_path / "o.kmq").stat().st_size < source.stat().st_size


def test_skip_if_larger_in_a_batch_and_on_stdout(tmp_path):
    blocks(tmp_path / "screen.png")
    noise_png(tmp_path / "noise.png")
    result = run_kmq("encode", tmp_path, "-k", "16", "--skip-if-larger")
    assert result.returncode == 98 and "1 written, 1 skipped, 0 failed" in summary_line(result)
    assert sorted(os.listdir(tmp_path)) == ["noise.kmq", "noise.png", "screen.png"]
    piped = run_process("encode", "-", "--skip-if-larger", stdin=(tmp_path / "screen.png").read_bytes(), cwd=tmp_path)
    assert piped.returncode == 98 and piped.stdout == b""


def test_a_failure_s_status_wins_over_98(tmp_path):
    blocks(tmp_path / "screen.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    result = run_kmq("encode", tmp_path, "--skip-if-larger")
    assert result.returncode == 1


# --- frames -------------------------------------------------------------------


def animation(path: Path) -> Path:
    frames = [Image.new("L", (8, 8), value) for value in (0, 100, 200)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path


@pytest.mark.parametrize(("args", "value"), [((), 0), (("--frame", "2"), 200)])
def test_encode_picks_a_frame(tmp_path, args, value):
    source = animation(tmp_path / "anim.gif")
    result = run_kmq("encode", source, *args)
    assert result.returncode == 0, result.stderr
    assert pixels(tmp_path / "anim.kmq")[0, 0, 0] == value


def test_a_frame_beyond_the_last_is_one_failure_line(tmp_path):
    result = run_kmq("encode", animation(tmp_path / "anim.gif"), "--frame", "3")
    assert result.returncode == 1
    (line,) = failure_lines(result)
    assert "--frame 3: the image has 3 frames (--frame 0 to 2)" in line


# --- info --original turns the original upright, as encode does -----------------


def test_info_original_applies_the_exif_orientation_encode_applies(tmp_path):
    im = gradient_image(192, 128)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    assert run_kmq("encode", tmp_path / "rot.jpg", "-k", "64").returncode == 0
    with Image.open(tmp_path / "rot.kmq") as encoded:
        assert encoded.size == (128, 192)
    result = run_kmq("info", tmp_path / "rot.kmq", "--original", tmp_path / "rot.jpg", "--json")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["comparison"]["psnr_db"] > 25  # the same picture (turned the other way: ~10 dB)


# --- decode of a file that is not KMQ ----------------------------------------------


def test_decode_of_a_non_kmq_file_says_so_and_exits_1(tmp_path):
    source = make_image(tmp_path / "photo.png")
    result = run_kmq("decode", source)
    assert result.returncode == 1
    assert failure_lines(result) == [f"kmq: {source}: not a KMQ file (it is PNG)"]
    assert sorted(os.listdir(tmp_path)) == ["photo.png"]
    piped = run_process("decode", "-", stdin=source.read_bytes(), cwd=tmp_path)
    assert piped.returncode == 1 and b"kmq: -: not a KMQ file (it is PNG)" in piped.stderr
    assert run_process("decode", "-", stdin=b"hello", cwd=tmp_path).stderr.startswith(b"kmq: -: not a KMQ file\n")
    (tmp_path / "notes.txt").write_text("hello")
    result = run_kmq("decode", tmp_path / "notes.txt")
    assert result.returncode == 1 and failure_lines(result) == [f"kmq: {tmp_path / 'notes.txt'}: not a KMQ file"]


# --- the progress bar ---------------------------------------------------------------


def test_the_stage_line_draws_a_bar_with_its_percentage(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    line = StageLine("big.png")
    line.REDRAW_INTERVAL = 0.0
    for call in [("pixels", 0, 1), ("quantize", 0, 40), ("quantize", 10, 40), ("code", 3, 4), ("code", 4, 4)]:
        line(*call)
    line.clear()
    written = capsys.readouterr().err
    assert "encode big.png: quantize [#####---------------]  25%" in written
    assert "encode big.png: code     [###############-----]  75%" in written
    assert "100%" in written and written.endswith("\r\x1b[K")


def test_the_stage_line_redraws_at_most_ten_times_a_second(capsys):
    line = StageLine("big.png")
    for done in range(1000):
        line("quantize", done, 1000)
    assert capsys.readouterr().err.count("\r") < 20


# --- save options -------------------------------------------------------------------


def test_an_icc_profile_option_is_converted_through_like_an_embedded_one():
    cmyk = Image.new("CMYK", (8, 8), (255, 0, 0, 0))  # cyan ink
    profile = cmyk_profile()
    as_option = reopen(save_to_bytes(cmyk, colors=4, icc_profile=profile))
    cmyk.info["icc_profile"] = profile
    embedded = reopen(save_to_bytes(cmyk, colors=4))
    assert as_option.info["icc_profile"] == srgb_profile() == embedded.info["icc_profile"]
    assert as_option.getpixel((0, 0)) == embedded.getpixel((0, 0)) != (0, 255, 255)


def test_an_icc_profile_option_of_another_colour_space_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="icc_profile describes CMYK colours but this RGB image"):
        gradient_image(8, 8).save(tmp_path / "x.kmq", icc_profile=cmyk_profile())
    assert not (tmp_path / "x.kmq").exists() or (tmp_path / "x.kmq").stat().st_size == 0


def test_smooth_with_the_raw_coding_warns_naming_the_coding():
    im = gradient_image(16, 16)
    with pytest.warns(UserWarning, match=r"smooth=1 with the raw coding \(coding 0\)"):
        save_to_bytes(im, colors=4, smooth=1)
    with pytest.warns(UserWarning, match="raw coding"):
        save_to_bytes(im, colors=4, smooth=1, optimize=True, coding="raw")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_to_bytes(im, colors=4, smooth=1, optimize=True)
        save_to_bytes(im, colors=4, smooth=1, coding="zlib")
        save_to_bytes(im, colors=4, smooth=0)


def test_the_demo_names_itself_in_its_help():
    result = subprocess.run([sys.executable, "-m", "pil_kmq.demo", "--help"], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m pil_kmq.demo ")


def test_the_histogram_sorts_in_runs_with_the_same_result(monkeypatch):
    from pil_kmq.quantize import histogram, work

    monkeypatch.setattr(histogram, "SORT_RUN", 1000)
    for count in (999, 1000, 1001, 5000, 7777):
        codes = np.random.default_rng(count).integers(0, 1 << 24, count, dtype=np.uint32)
        expected, heard = np.sort(codes), []
        with work.listening(heard.append):
            histogram.sort_in_runs(codes)
        assert np.array_equal(codes, expected) and len(heard) == histogram.sort_runs(count)
    assert histogram.sort_runs(7777) == 8 + 7  # 8 runs, then 4 + 2 + 1 merges


def test_threads_report_each_band_from_the_caller_s_thread_and_failures_in_order():
    import threading

    from pil_kmq.format import parallel

    callers = []
    assert parallel.ordered_map(lambda x: x * 2, range(7), threads=3,
                                each=lambda: callers.append(threading.current_thread())) == list(range(0, 14, 2))
    assert callers == [threading.current_thread()] * 7

    def fail(x):
        if x in (2, 5):
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 2"):
        parallel.ordered_map(fail, range(7), threads=3, each=lambda: None)


def test_adjacency_counted_in_slices_of_rows_is_the_whole_count(monkeypatch):
    from pil_kmq.format import order

    rng = np.random.default_rng(1)
    for height, width, k in [(1, 1, 1), (1, 7, 3), (5, 1, 4), (37, 53, 16), (30, 200, 256)]:
        labels = rng.integers(0, k, (height, width)).astype(np.uint8)
        whole = order.adjacency(labels, k)
        for rows in (1, 2, 3):
            monkeypatch.setattr(order, "ADJACENCY_SLICE", rows * width)
            calls = []
            assert np.array_equal(order.adjacency(labels, k, lambda: calls.append(1)), whole)
            assert len(calls) == -(-height // rows)
        monkeypatch.undo()
        assert whole.sum() == 2 * (height * (width - 1) + (height - 1) * width)
