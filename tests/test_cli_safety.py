"""The kmq command with the mistakes real batches meet: an output that is
an input, outputs already there, temporary files of an earlier run killed
mid-write. In-process through cli.main; tests/test_cli_signals.py has the
signals and pipes, which need real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pil_kmq import atomic
from test_cli import failure_lines, make_image, run_kmq, summary_line


def make_kmq(path: Path, width: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (5, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, "KMQ", colors=3)
    return path


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- an output that is an input ------------------------------------------


def _same_by_name(tmp_path):
    source = make_image(tmp_path / "a.png")
    return ["encode", source, "-o", source], source, source


def _same_kmq_by_name(tmp_path):
    source = make_kmq(tmp_path / "x.kmq")
    return ["decode", source, "-o", source], source, source


def _same_by_symlink(tmp_path):
    source = make_image(tmp_path / "a.png")
    (tmp_path / "link.kmq").symlink_to(source)
    return ["encode", source, "-o", tmp_path / "link.kmq"], source, tmp_path / "link.kmq"


def _same_by_hard_link_in_a_folder_batch(tmp_path):
    # a.png encodes to a.kmq, which is b.png under another name: the
    # whole batch is refused, b.png is not encoded either.
    make_image(tmp_path / "a.png", 1)
    source = make_image(tmp_path / "b.png", 2)
    os.link(source, tmp_path / "a.kmq")
    return ["encode", tmp_path], source, tmp_path / "a.kmq"


def _same_sheet_by_name(tmp_path):
    source = make_image(tmp_path / "a.png")
    return ["sheet", source, "-o", source], source, source


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("case", [_same_by_name, _same_kmq_by_name, _same_by_symlink,
                                  _same_by_hard_link_in_a_folder_batch, _same_sheet_by_name])
def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path, case, force):
    args, source, output = case(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    result = run_kmq(*args, *force, *(["-k", "2"] if args[0] != "decode" else []))

    assert result.returncode == 2, result.stderr
    assert f"output {output} is the same file as the input {source}" in result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --- outputs that exist ---------------------------------------------------


def test_skip_existing_leaves_outputs_alone_counts_them_and_exits_0(tmp_path):
    make_image(tmp_path / "a.png", 1)
    make_image(tmp_path / "b.png", 2)
    (tmp_path / "a.kmq").write_bytes(b"precious")

    result = run_kmq("encode", tmp_path, "-k", "3", "--skip-existing")

    assert result.returncode == 0, result.stderr
    assert failure_lines(result) == []
    assert summary_line(result).startswith("kmq encode: 1 written, 1 skipped, 0 failed; ")
    assert (tmp_path / "a.kmq").read_bytes() == b"precious"
    with Image.open(tmp_path / "b.kmq") as im:
        assert im.format == "KMQ"


def test_the_summary_counts_failures_and_quiet_silences_it(tmp_path):
    make_image(tmp_path / "a.png", 1)
    (tmp_path / "b.png").write_bytes(b"not a PNG")

    result = run_kmq("encode", tmp_path, "-k", "3")
    assert result.returncode == 1
    assert summary_line(result).startswith("kmq encode: 1 written, 0 skipped, 1 failed; ")

    quiet = run_kmq("encode", tmp_path, "-k", "3", "--force", "-q")
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == failure_lines(quiet) and len(failure_lines(quiet)) == 1


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_skip_existing_and_force_together_are_a_usage_error(tmp_path, command):
    source = make_image(tmp_path / "a.png") if command == "encode" else make_kmq(tmp_path / "a.kmq")
    result = run_kmq(command, source, "--skip-existing", "--force")
    assert result.returncode == 2 and "not allowed with" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_a_batch_removes_stale_temporaries_of_dead_writers_only(tmp_path):
    source = make_image(tmp_path / "a.png")
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True, check=True).stdout)
    host = atomic._HOST
    stale = tmp_path / f".a.kmq.{host}-{dead_pid}.0123abcd{atomic.TEMPORARY_SUFFIX}"
    live = tmp_path / f".b.kmq.{host}-{os.getpid()}.0123abcd{atomic.TEMPORARY_SUFFIX}"
    other_host = tmp_path / f".c.kmq.{int(host, 16) ^ 1:08x}-{dead_pid}.0123abcd{atomic.TEMPORARY_SUFFIX}"
    for path in (stale, live, other_host):
        path.write_bytes(b"half a file")

    assert run_kmq("encode", source, "-k", "2").returncode == 0

    assert not stale.exists()
    assert live.exists() and other_host.exists()
