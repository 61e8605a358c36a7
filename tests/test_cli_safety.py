"""The kmq command with the mistakes and interruptions real batches meet:
an output that is an input, outputs already there, stop signals, a killed
parent, a closed pipe. Real processes only where a signal, a pipe or an
exit status needs one; the rest in-process through cli.main."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pil_kmq import atomic
from test_cli import REPO, failure_lines, make_image, pixels, run_kmq, summary_line

HELPER = Path(__file__).with_name("pausing_kmq.py")
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


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


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("case", [_same_by_name, _same_kmq_by_name, _same_by_symlink,
                                  _same_by_hard_link_in_a_folder_batch])
def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path, case, force):
    args, source, output = case(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    result = run_kmq(*args, *force, "-k", "2") if args[0] == "encode" else run_kmq(*args, *force)

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


# --- signals --------------------------------------------------------------


def start_pausing_kmq(tmp_path: Path, *args: object, named: bool) -> tuple[subprocess.Popen, Path]:
    """kmq (tests/pausing_kmq.py) in a real process; the folder where its
    paused writers announce their PIDs."""
    pauses = tmp_path / "paused"
    pauses.mkdir()
    env = dict(os.environ, KMQ_PAUSE_DIR=str(pauses))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("KMQ_NAMED_TEMPORARIES", None)
    if named:
        env["KMQ_NAMED_TEMPORARIES"] = "1"

    def default_stop_signals() -> None:  # whatever the test runner ignores
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)

    process = subprocess.Popen(
        [sys.executable, str(HELPER), *map(str, args)], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_stop_signals,
    )
    return process, pauses


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def paused_writers(pauses: Path) -> list[int]:
    return sorted(int(p.name) for p in pauses.iterdir() if not p.name.startswith("."))


def process_gone(pid: int) -> bool:
    """Ended; PIDs are not reused within a test's few seconds."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie, dead but not yet reaped by its new parent
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def end_leftovers(process: subprocess.Popen, pids: list[int]) -> None:
    """After a failed test: kill what this test started and is still there
    (idle workers too, which a broken kmq would leave behind)."""
    if process.poll() is None:
        pids = pids + children_of(process.pid)
        process.kill()
        process.wait()
    for pid in pids:
        if not process_gone(pid):
            os.kill(pid, signal.SIGKILL)


@posix_only
@pytest.mark.parametrize("signum, jobs, named", [
    (signal.SIGTERM, 1, True),
    (signal.SIGINT, 2, True),
    (signal.SIGHUP, 1, False),
    (signal.SIGTERM, 2, False),
])
def test_a_stop_signal_keeps_finished_outputs_removes_temporaries_and_ends_by_it(
    tmp_path, signum, jobs, named
):
    inputs, out = tmp_path / "in", tmp_path / "out"
    for name in ("a", "b"):
        make_kmq(inputs / f"{name}.kmq", seed=ord(name))
    make_kmq(inputs / "c.kmq", width=7)  # its writer pauses half-way
    process, pauses = start_pausing_kmq(
        tmp_path, "decode", inputs, "--format", "pausepng", "--out-dir", out, "-j", jobs, named=named)
    family: list[int] = []
    try:
        wait_for(lambda: paused_writers(pauses), "the writer of c to pause")
        family = sorted({*paused_writers(pauses), *children_of(process.pid)})
        wait_for(lambda: (out / "a.pausepng").exists() and (out / "b.pausepng").exists(), "a and b")
        if named:  # the state under test: a temporary file is there
            assert len(hidden_files(out)) == 1

        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)

        assert process.returncode == -signum, stderr
        assert "Traceback" not in stderr
        assert sorted(p.name for p in out.iterdir()) == ["a.pausepng", "b.pausepng"]
        for name in ("a", "b"):
            with Image.open(out / f"{name}.pausepng") as im:
                assert im.format == "PNG"
                assert np.array_equal(np.asarray(im), pixels(inputs / f"{name}.kmq"))
        wait_for(lambda: all(map(process_gone, family)), "the workers to end", timeout=10)
    finally:
        end_leftovers(process, family)


@posix_only
@pytest.mark.parametrize("named", [True, False])
def test_workers_end_when_their_parent_is_killed(tmp_path, named):
    inputs, out = tmp_path / "in", tmp_path / "out"
    make_kmq(inputs / "c1.kmq", width=7, seed=1)
    make_kmq(inputs / "c2.kmq", width=7, seed=2)
    process, pauses = start_pausing_kmq(
        tmp_path, "decode", inputs, "--format", "pausepng", "--out-dir", out, "-j", 2, named=named)
    workers: list[int] = []
    try:
        wait_for(lambda: len(paused_writers(pauses)) == 2, "both workers to pause")
        workers = sorted({*paused_writers(pauses), *children_of(process.pid)})
        assert process.pid not in workers and len(workers) >= 2

        process.kill()  # SIGKILL: the parent can do nothing about it
        process.wait()

        wait_for(lambda: all(map(process_gone, workers)), "the workers to end", timeout=10)
        assert list(out.iterdir()) == []  # named temporaries removed by their writers
    finally:
        end_leftovers(process, workers)


# --- pipes ----------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("args, closed", [
    (["info", "{kmq}"], "stdout"),
    (["info", "{kmq}", "--json"], "stdout"),
    (["decode", "{kmq}", "--out-dir", "{tmp}/out"], "stderr"),  # the summary line
])
def test_writing_to_a_closed_pipe_ends_quietly_by_sigpipe(tmp_path, args, closed):
    kmq = make_kmq(tmp_path / "x.kmq")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, closed: write_end}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pil_kmq", *(a.format(kmq=kmq, tmp=tmp_path) for a in args)],
            env=env, stdin=subprocess.DEVNULL, timeout=60, **streams)
    finally:
        os.close(write_end)
    other = result.stderr if closed == "stdout" else result.stdout
    assert result.returncode == -signal.SIGPIPE, other
    assert other == b""  # no traceback, no "Exception ignored" at exit
