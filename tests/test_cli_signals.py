"""The kmq command interrupted: stop signals, a killed parent, a closed
pipe. Real processes, with the timing arranged so nothing races: the
writer pauses half-way through a file (tests/pausing_kmq.py) before the
test signals it, and the pipe's reader is closed before anything is written."""

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

from test_cli import REPO, pixels
from test_cli_safety import hidden_files, make_kmq

HELPER = Path(__file__).with_name("pausing_kmq.py")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and pipes")


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


@pytest.mark.parametrize("args, closed", [
    (["info", "{kmq}"], "stdout"),
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
    if closed == "stderr":  # the summary comes after the work, which is done
        with Image.open(tmp_path / "out" / "x.png") as im:
            assert im.size == (8, 5)
