"""The `kmq` command, driven through main(argv) in-process (captured output,
exit codes); a few tests start a real process, for what only a process
shows: exit statuses, a terminal, the installed console script."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pil_kmq  # noqa: F401  (registers KMQ for reading the outputs)
from pil_kmq import cli

REPO = Path(__file__).resolve().parents[1]


def run_kmq(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """cli.main(args) run in `cwd`, with stdout and stderr captured."""
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd or REPO)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main([str(arg) for arg in args])
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def run_kmq_process(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m pil_kmq args` in a real process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pil_kmq", *map(str, args)],
        cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=120,
    )


def make_image(path: Path, seed: int = 0, size: tuple[int, int] = (24, 16), mode: str = "RGB") -> Path:
    """A small noisy gradient: a few hundred colours, so K-means really runs."""
    rng = np.random.default_rng(seed)
    width, height = size
    ramp = np.linspace(0, 200, width, dtype=np.float64)[None, :, None]
    noise = rng.integers(0, 40, (height, width, 3))
    array = np.clip(ramp + noise + [0, 30, 60], 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).convert(mode).save(path)
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


SUMMARY = re.compile(r"kmq (encode|decode): \d+ written, \d+ skipped, \d+ failed; ")


def failure_lines(result: subprocess.CompletedProcess) -> list[str]:
    """stderr's lines but the batch summary (shown unless -q)."""
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if not SUMMARY.match(line)]


def summary_line(result: subprocess.CompletedProcess) -> str:
    (line,) = [line for line in result.stderr.splitlines() if SUMMARY.match(line)]
    return line


# --- encode --------------------------------------------------------------


def test_encode_folder_writes_a_kmq_beside_each_image(tmp_path):
    make_image(tmp_path / "a.png", 1)
    make_image(tmp_path / "b.bmp", 2)
    make_image(tmp_path / ".hidden.png", 3)
    make_image(tmp_path / "nested" / "c.png", 4)
    (tmp_path / "notes.txt").write_text("not an image")

    result = run_kmq("encode", tmp_path, "-k", "4")

    assert result.returncode == 0, result.stderr
    # Not on a terminal: no progress line, but the summary (stderr, unless -q).
    assert result.stdout == "" and failure_lines(result) == []
    assert summary_line(result).startswith("kmq encode: 2 written, 0 skipped, 0 failed; ")
    assert sorted(p.name for p in tmp_path.glob("*.kmq")) == ["a.kmq", "b.kmq"]
    assert not (tmp_path / "nested" / "c.kmq").exists()
    with Image.open(tmp_path / "a.kmq") as im:
        assert im.format == "KMQ" and im.size == (24, 16) and im.info["colors"] == 4


def test_encode_output_and_out_dir(tmp_path):
    source = make_image(tmp_path / "in" / "photo.png")

    assert run_kmq("encode", source, "-k", "3", "-o", tmp_path / "named.bin").returncode == 0
    assert run_kmq("encode", source, "-k", "3", "--out-dir", tmp_path / "new" / "dir").returncode == 0

    with Image.open(tmp_path / "named.bin") as im:
        assert im.format == "KMQ" and im.info["colors"] == 3
    assert (tmp_path / "new" / "dir" / "photo.kmq").read_bytes() == (tmp_path / "named.bin").read_bytes()
    assert not (tmp_path / "in" / "photo.kmq").exists()


def test_parallel_jobs_give_the_same_files(tmp_path):
    for seed in range(4):
        make_image(tmp_path / "in" / f"img{seed}.png", seed)

    serial = run_kmq("encode", tmp_path / "in", "-k", "5", "--out-dir", tmp_path / "serial")
    parallel = run_kmq("encode", tmp_path / "in", "-k", "5", "--out-dir", tmp_path / "parallel", "-j", "2")

    assert serial.returncode == 0 and parallel.returncode == 0, parallel.stderr
    names = sorted(p.name for p in (tmp_path / "serial").iterdir())
    assert names == [f"img{seed}.kmq" for seed in range(4)]
    for name in names:
        assert (tmp_path / "parallel" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()


def test_corrupt_input_in_a_batch_is_one_line_and_the_batch_goes_on(tmp_path):
    make_image(tmp_path / "a.png", 1)
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    make_image(tmp_path / "c.png", 2)

    result = run_kmq("encode", tmp_path, "-k", "4", "-j", "2")

    assert result.returncode == 1
    lines = failure_lines(result)
    assert len(lines) == 1 and "b.png" in lines[0], result.stderr
    assert (tmp_path / "a.kmq").exists() and (tmp_path / "c.kmq").exists()
    assert not (tmp_path / "b.kmq").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_input_is_a_failure_not_a_crash(tmp_path):
    result = run_kmq("encode", tmp_path / "nope.png")
    assert result.returncode == 1
    lines = failure_lines(result)
    assert len(lines) == 1 and "nope.png" in lines[0] and "No such file" in lines[0]


def test_existing_output_is_kept_without_force(tmp_path):
    source = make_image(tmp_path / "a.png")
    (tmp_path / "a.kmq").write_bytes(b"precious")

    refused = run_kmq("encode", source, "-k", "2")

    assert refused.returncode == 1
    assert "--force" in refused.stderr and len(failure_lines(refused)) == 1
    assert (tmp_path / "a.kmq").read_bytes() == b"precious"

    forced = run_kmq("encode", source, "-k", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    with Image.open(tmp_path / "a.kmq") as im:
        assert im.format == "KMQ"


def test_failing_encoder_leaves_the_existing_output_untouched(tmp_path):
    # A float image opens fine in Pillow but the encoder refuses it: a plain
    # open(target, "wb") would already have truncated the old output.
    Image.new("F", (8, 8), 0.5).save(tmp_path / "deep.tiff")
    (tmp_path / "deep.kmq").write_bytes(b"the good old file")
    before = sorted(p.name for p in tmp_path.iterdir())

    result = run_kmq("encode", tmp_path / "deep.tiff", "--force")

    assert result.returncode == 1
    lines = failure_lines(result)
    assert len(lines) == 1 and "deep.tiff" in lines[0] and "mode" in lines[0]
    assert (tmp_path / "deep.kmq").read_bytes() == b"the good old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary files left


USAGE_ERRORS = [
    [],
    ["encode"],
    ["frobnicate", "x.png"],
    ["encode", "a.png", "-k", "0"],
    ["encode", "a.png", "-k", "many"],
    ["encode", "a.png", "b.png", "-o", "out.kmq"],
    ["encode", "a.png", "-o", "x.kmq", "--out-dir", "d"],
    ["encode", "a.png", "-j", "-1"],
    ["encode", "a.png", "--quality", "-3"],
    ["encode", "a.png", "--speed", "11"],
    ["decode", "a.kmq", "--format", "nosuchformat"],
    ["decode", "a.kmq", "-o", "a.unknownext"],
    ["sheet", "a.png", "-k", "2,x"],
    ["sheet", "a.png", "-k", "2,300"],
    ["info"],
]


@pytest.mark.parametrize("args", [USAGE_ERRORS[0], USAGE_ERRORS[4], USAGE_ERRORS[5]])
def test_usage_errors_exit_2(tmp_path, args):
    result = run_kmq_process(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "usage" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_return_2_in_process(tmp_path, monkeypatch, capsys, args):
    """All the cases, through main() itself (quicker than a process each)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    assert "error" in capsys.readouterr().err or args == []
    assert list(tmp_path.iterdir()) == []


def test_help_exits_0_and_every_option_states_its_default():
    assert run_kmq("encode", "--help").returncode == 0
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "encode" in a.choices).choices
    assert set(subparsers) == {"encode", "decode", "info", "sheet"}
    for name, subparser in subparsers.items():
        for action in subparser._actions:
            if action.option_strings and action.dest != "help":
                assert "default" in action.help, f"kmq {name} {action.option_strings[0]}"


# --- decode --------------------------------------------------------------


@pytest.fixture(scope="module")
def encoded_once(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("encoded")
    make_image(folder / "one.png", 1)
    make_image(folder / "two.png", 2, mode="RGBA")
    assert run_kmq("encode", folder, "-k", "4").returncode == 0
    return folder


@pytest.fixture
def encoded(encoded_once, tmp_path) -> Path:
    """A folder with two small .kmq files (K=4) and their originals (a
    fresh copy for each test, encoded once)."""
    return Path(shutil.copytree(encoded_once, tmp_path / "images"))


def test_decode_folder_round_trips_the_pixels(encoded, tmp_path):
    result = run_kmq("decode", encoded, "--out-dir", tmp_path / "out")

    assert result.returncode == 0, result.stderr
    for name in ("one", "two"):
        with Image.open(encoded / f"{name}.kmq") as kmq, Image.open(tmp_path / "out" / f"{name}.png") as png:
            assert png.format == "PNG" and png.mode == kmq.mode
            assert np.array_equal(np.asarray(png), np.asarray(kmq))


def test_decode_default_name_does_not_clobber_the_original(encoded):
    original = (encoded / "one.png").read_bytes()
    result = run_kmq("decode", encoded / "one.kmq")
    assert result.returncode == 1 and "--force" in result.stderr
    assert (encoded / "one.png").read_bytes() == original

    assert run_kmq("decode", encoded / "one.kmq", "--format", "bmp").returncode == 0
    with Image.open(encoded / "one.bmp") as im:
        assert im.format == "BMP" and im.size == (24, 16)


def test_decode_format_follows_the_output_name(encoded, tmp_path):
    assert run_kmq("decode", encoded / "one.kmq", "-o", tmp_path / "x.tif").returncode == 0
    with Image.open(tmp_path / "x.tif") as im:
        assert im.format == "TIFF"


def test_decode_labels_is_the_segmentation_in_distinct_false_colours(encoded):
    result = run_kmq("decode", "--labels", encoded / "one.kmq")

    assert result.returncode == 0, result.stderr
    with Image.open(encoded / "one.labels.png") as labels:
        assert labels.mode == "P"
        label_map = np.asarray(labels)
        palette = np.array(labels.getpalette()[: 4 * 3]).reshape(4, 3)
    with Image.open(encoded / "one.kmq") as im:
        im.draft("P", None)
        assert np.array_equal(label_map, np.asarray(im))  # the values are the labels
    assert len(np.unique(label_map)) > 1
    assert len(np.unique(palette, axis=0)) == 4  # one colour per label
    assert not np.array_equal(palette[label_map], pixels(encoded / "one.kmq"))  # not the codebook


def test_decode_labels_raw_writes_the_labels_as_grey_values(encoded):
    result = run_kmq("decode", "--labels-raw", encoded / "one.kmq")

    assert result.returncode == 0, result.stderr
    with Image.open(encoded / "one.labels-raw.png") as raw, Image.open(encoded / "one.kmq") as im:
        im.draft("P", None)
        assert raw.mode == "L" and np.array_equal(np.asarray(raw), np.asarray(im))


def test_decode_reports_a_corrupt_kmq_and_goes_on(encoded):
    data = bytearray((encoded / "one.kmq").read_bytes())
    data[-10] ^= 0xFF
    (encoded / "broken.kmq").write_bytes(bytes(data))

    result = run_kmq("decode", encoded, "--out-dir", encoded / "out")

    assert result.returncode == 1
    lines = failure_lines(result)
    assert len(lines) == 1 and "broken.kmq" in lines[0] and "CRC" in lines[0]
    assert sorted(p.name for p in (encoded / "out").iterdir()) == ["one.png", "two.png"]


# --- info ----------------------------------------------------------------


def test_info_shows_the_header_and_the_size_table(encoded):
    result = run_kmq("info", encoded / "one.kmq")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "24 x 16" in out and "RGB" in out and "raw" in out
    assert f"{24 * 16 * 3 * 8:>14,}" in out  # original bits: 24 per pixel
    assert f"{24 * 16 * 2:>14,}" in out  # label bits: 2 per pixel at K=4
    assert f"{4 * 3 * 8:>14,}" in out  # codebook bits
    assert f"{(encoded / 'one.kmq').stat().st_size:,} bytes" in out


def test_info_json_with_original_has_the_numbers(encoded):
    kmq, original = encoded / "one.kmq", encoded / "one.png"
    result = run_kmq("info", kmq, "--json", "--original", original)

    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)  # a list: one report per file
    assert report["header"]["width"] == 24 and report["header"]["k"] == 4
    assert report["header"]["coding_name"] == "raw"
    sizes = report["sizes"]
    assert sizes["original_bits"] == 24 * 16 * 24
    assert sizes["total_bits"] == sizes["label_bits"] + sizes["codebook_bits"] == 24 * 16 * 2 + 96
    assert sizes["ratio"] == pytest.approx(sizes["total_bits"] / sizes["original_bits"])
    assert report["file_bytes"] == kmq.stat().st_size
    mse = np.mean((pixels(kmq).astype(float) - pixels(original)) ** 2)
    assert report["comparison"]["mse"] == pytest.approx(mse)
    assert report["comparison"]["psnr_db"] == pytest.approx(10 * np.log10(255**2 / mse))


def test_info_reads_standard_input(encoded):
    """`kmq info -` (as encode and decode take -): the same report as for
    the file, named -, in a real process reading a pipe."""
    kmq, original = encoded / "one.kmq", encoded / "one.png"
    with open(kmq, "rb") as stdin:
        piped = subprocess.run([sys.executable, "-m", "pil_kmq", "info", "-", "--json", "--original", str(original)],
                               cwd=REPO, stdin=stdin, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    (report,) = json.loads(piped.stdout)
    (expected,) = json.loads(run_kmq("info", kmq, "--json", "--original", original).stdout)
    assert report["file"] == "-" and {**report, "file": str(kmq)} == expected


def test_info_of_a_lossless_file_has_no_finite_psnr(tmp_path):
    array = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "four.png")
    assert run_kmq("encode", tmp_path / "four.png", "-k", "4").returncode == 0

    result = run_kmq("info", tmp_path / "four.kmq", "--json", "--original", tmp_path / "four.png")

    (report,) = json.loads(result.stdout)  # strict JSON: no Infinity
    assert report["comparison"] == {"original": str(tmp_path / "four.png"), "mse": 0.0, "psnr_db": None}


def test_info_of_a_non_kmq_file_fails_in_one_line(tmp_path):
    make_image(tmp_path / "a.png")
    result = run_kmq("info", tmp_path / "a.png")
    assert result.returncode == 1 and result.stdout == ""
    assert failure_lines(result) == [f"kmq: {tmp_path / 'a.png'}: not a KMQ file"]


# --- sheet ---------------------------------------------------------------


def test_sheet_shows_the_original_and_each_k(tmp_path):
    source = make_image(tmp_path / "small.png", size=(64, 40))

    result = run_kmq("sheet", source, "-k", "2,4", "-o", tmp_path / "sheet.png")

    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.format == "PNG"
        assert sheet.width >= 3 * 64 and sheet.height > 40  # three panels in a row, captions below
        array = np.asarray(sheet.convert("RGB"))
    # The original panel is there, untouched, first under the title.
    windows = np.lib.stride_tricks.sliding_window_view(array, (40, 64, 3))[:, :, 0]
    found = np.argwhere((windows == pixels(source)).all(axis=(2, 3, 4)))
    assert len(found) == 1 and found[0][1] < 20 and 20 < found[0][0] < 60


def test_sheet_default_name_and_no_overwrite(tmp_path):
    source = make_image(tmp_path / "in" / "small.png")
    (tmp_path / "here").mkdir()
    assert run_kmq("sheet", source, "-k", "2", cwd=tmp_path / "here").returncode == 0
    assert not (tmp_path / "in" / "small.sheet.png").exists()  # not where encode would find it
    first = (tmp_path / "here" / "small.sheet.png").read_bytes()
    again = run_kmq("sheet", source, "-k", "3", cwd=tmp_path / "here")
    assert again.returncode == 1 and "--force" in again.stderr
    assert (tmp_path / "here" / "small.sheet.png").read_bytes() == first


# --- terminal output -----------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_on_a_terminal_and_the_summary_unless_quiet(tmp_path):
    make_image(tmp_path / "a.png", 1)
    make_image(tmp_path / "b.png", 2)

    shown = _stderr_on_a_terminal(tmp_path, "encode", tmp_path, "-k", "3")
    assert "encode 2/2 files" in shown  # the progress line
    assert "kmq encode: 2 written, 0 skipped, 0 failed; " in shown and "->" in shown

    quiet = _stderr_on_a_terminal(tmp_path, "encode", tmp_path, "-k", "3", "--force", "-q")
    assert quiet == ""


def _stderr_on_a_terminal(cwd: Path, *args: object) -> str:
    """Run kmq with stderr on a pseudo-terminal; what it wrote there."""
    controller, terminal = os.openpty()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pil_kmq", *map(str, args)],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
        )
    finally:
        os.close(terminal)
    chunks = []
    try:
        while chunk := _read_or_eof(controller):
            chunks.append(chunk)
    finally:
        os.close(controller)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode()


def _read_or_eof(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO on Linux once the child has closed the terminal
        return b""


# --- the console script --------------------------------------------------


def test_console_script_is_declared_and_resolves():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kmq"] == "pil_kmq.cli:main"
    assert callable(cli.main)


def test_installed_console_script_runs():
    try:
        entry_points = importlib.metadata.entry_points(group="console_scripts", name="kmq")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        entry_points = ()
    if not entry_points:
        pytest.skip("pil-kmq is not installed (running from the source tree)")
    (entry_point,) = entry_points
    assert entry_point.value == "pil_kmq.cli:main"
    assert entry_point.load() is cli.main or entry_point.load().__module__ == "pil_kmq.cli"
    # pip puts the script beside the interpreter (a venv's bin/), which need
    # not be on PATH when the venv is used without activating it.
    beside = Path(sys.executable).with_name("kmq")
    script = str(beside) if beside.exists() else shutil.which("kmq")
    if script is None:
        pytest.skip("installed, but the kmq script is not on PATH")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "encode" in result.stdout


# --- options passed to Image.save ----------------------------------------


def test_codec_options_become_the_save_keywords_of_the_same_names():
    args = cli.build_parser().parse_args(
        ["encode", "a.png", "-k", "8", "--dither", "--optimize", "--quality", "60-80"]
    )
    assert cli.codec_params(args.colors, args.quality, args.dither, args.optimize, args.psnr) == {
        "colors": 8, "dither": True, "optimize": True, "quality": (60, 80),
    }
    args = cli.build_parser().parse_args(["encode", "a.png", "--psnr", "30"])
    assert cli.codec_params(args.colors, args.quality, psnr=args.psnr) == {"psnr": 30.0}
    plain = cli.build_parser().parse_args(["encode", "a.png"])
    # Nothing given, nothing passed: the library's defaults are the command's.
    assert cli.codec_params(plain.colors, plain.quality, plain.dither, plain.optimize) == {}


def test_encode_optimize_writes_a_smaller_compressed_file_with_the_same_pixels(tmp_path):
    source = tmp_path / "smooth.png"
    x = np.linspace(0, 255, 64, dtype=np.uint8)
    Image.fromarray(np.dstack([np.tile(x, (48, 1))] * 3)).save(source)
    assert run_kmq("encode", source, "-k", "16", "-o", tmp_path / "raw.kmq").returncode == 0
    result = run_kmq("encode", source, "-k", "16", "--optimize", "-o", tmp_path / "small.kmq")
    assert result.returncode == 0, result.stderr

    assert (tmp_path / "small.kmq").stat().st_size < (tmp_path / "raw.kmq").stat().st_size
    assert np.array_equal(pixels(tmp_path / "small.kmq"), pixels(tmp_path / "raw.kmq"))
    (report,) = json.loads(run_kmq("info", tmp_path / "small.kmq", "--json").stdout)
    assert report["header"]["coding"] != 0
    assert report["header"]["coding_name"] in {"zlib", "xz", "zstd"}


def test_encode_coding_zstd_writes_coding_3_and_a_bad_name_is_a_usage_error(tmp_path):
    source = make_image(tmp_path / "photo.png", size=(40, 30))
    result = run_kmq("encode", source, "-k", "16", "--coding", "zstd", "-o", tmp_path / "z.kmq")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(run_kmq("info", tmp_path / "z.kmq", "--json").stdout)
    assert (report["header"]["coding"], report["header"]["coding_name"]) == (3, "zstd")
    assert run_kmq("encode", source, "-k", "16", "-o", tmp_path / "r.kmq").returncode == 0
    assert np.array_equal(pixels(tmp_path / "z.kmq"), pixels(tmp_path / "r.kmq"))
    bad = run_kmq("encode", source, "--coding", "brotli", "-o", tmp_path / "b.kmq")
    assert bad.returncode == 2 and "known codings are" in bad.stderr and "'zstd'" in bad.stderr


def test_encode_psnr_picks_the_smallest_k_reaching_the_target(tmp_path):
    source = make_image(tmp_path / "photo.png", size=(32, 24))
    result = run_kmq("encode", source, "--psnr", "30", "-o", tmp_path / "q.kmq")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(run_kmq("info", tmp_path / "q.kmq", "--json", "--original", source).stdout)
    k = report["header"]["k"]
    assert report["comparison"]["psnr_db"] >= 30
    assert run_kmq("encode", source, "-k", str(k - 1), "-o", tmp_path / "fewer.kmq").returncode == 0
    (fewer,) = json.loads(run_kmq("info", tmp_path / "fewer.kmq", "--json", "--original", source).stdout)
    assert fewer["comparison"]["psnr_db"] < 30


def test_encode_dither_changes_the_indices(tmp_path):
    source = make_image(tmp_path / "photo.png", size=(32, 24))
    assert run_kmq("encode", source, "-k", "4", "-o", tmp_path / "plain.kmq").returncode == 0
    assert run_kmq("encode", source, "-k", "4", "--dither", "-o", tmp_path / "dith.kmq").returncode == 0
    assert not np.array_equal(pixels(tmp_path / "plain.kmq"), pixels(tmp_path / "dith.kmq"))
