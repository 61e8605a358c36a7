"""kmq encode --scheduler: a batch on a Dask distributed cluster started
here on loopback; a worker killed mid-batch leaves every output complete
or absent, never partial."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

distributed = pytest.importorskip("distributed")

# Two clusters of worker processes started and one worker killed: seconds
# of start-up, run with --runslow (.ci/run), not in the README's command.
pytestmark = pytest.mark.slow

from helpers import save_to_bytes  # noqa: E402

FILES = 8


def make_inputs(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(FILES):
        array = rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"im{index:02d}.png")


@pytest.fixture
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield local, client


def test_batch_on_a_cluster_survives_a_killed_worker(tmp_path, cluster):
    """One run checks the batch's report (a broken input fails alone, the
    summary line as locally) and a worker killed by SIGKILL once the first
    output is in place: the batch still finishes, every output complete
    (Image.save's bytes) or absent, and no temporary file is left."""
    local, client = cluster
    make_inputs(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pil_kmq", "encode", str(tmp_path / "in"), "--out-dir", str(out),
               "-k", "16", "--optimize", "--scheduler", local.scheduler_address]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 120
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr  # broken.png
    assert "broken.png" in stderr and "1 failed" in stderr.splitlines()[-1], stderr
    written = list(out.iterdir())
    assert written and f"{len(written)} written" in stderr.splitlines()[-1], stderr
    for path in written:
        assert path.suffix == ".kmq", path  # no temporary file left behind
        with Image.open(tmp_path / "in" / (path.stem + ".png")) as im:
            expected = save_to_bytes(im, colors=16, optimize=True)
        assert path.read_bytes() == expected  # complete, never partial


def write_then_die_once(job, marker):
    """A task whose first attempt puts its output in place and then loses
    its worker before the result reaches the scheduler."""
    from pil_kmq.cli.batch import run_job

    def write(job):
        job.target.write_bytes(b"complete output")
        if not marker.exists():
            marker.write_text("died once")
            os._exit(1)

    return run_job(job, False, write)


def test_a_rerun_finding_its_own_output_counts_as_written(tmp_path, cluster):
    import cloudpickle

    from pil_kmq.cli.batch_types import Job
    from pil_kmq.cli.cluster import run_on_cluster
    from pil_kmq.cli.progress import Reporter

    local, _ = cluster
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    job = Job(source, tmp_path / "out.kmq")
    outcomes = []

    class Collect(Reporter):
        def report(self, outcome):
            outcomes.append(outcome)

    from functools import partial

    reporter = Collect("encode", 1, sys.stderr, False, show_summary=False)
    run_on_cluster(partial(write_then_die_once, marker=tmp_path / "marker"), [job], local.scheduler_address, reporter)
    assert (tmp_path / "marker").exists()  # the first attempt did die
    assert [outcome.error for outcome in outcomes] == [None]


def test_decode_batch_on_a_cluster_reports_as_the_local_batch(tmp_path, cluster):
    """kmq decode --scheduler: every .kmq file decoded by a worker process
    to the bytes the local batch writes, a broken file failing alone with
    the same message, and the same summary line and exit status."""
    local, client = cluster
    make_inputs(tmp_path / "images")
    folder = tmp_path / "kmq"
    folder.mkdir()
    for path in sorted((tmp_path / "images").iterdir()):
        with Image.open(path) as im:
            (folder / (path.stem + ".kmq")).write_bytes(save_to_bytes(im, colors=16, optimize=index_is_odd(path)))
    whole = (folder / "im00.kmq").read_bytes()
    (folder / "broken.kmq").write_bytes(whole[: len(whole) * 3 // 5])  # ends inside the labels
    runs = {}
    for name, extra in (("local", []), ("cluster", ["--scheduler", local.scheduler_address])):
        out = tmp_path / name
        command = [sys.executable, "-m", "pil_kmq", "decode", str(folder), "--out-dir", str(out), *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        lines = re.sub(r" in [0-9.]+ s$", "", done.stderr.replace(str(out), "OUT"), flags=re.M).splitlines()
        runs[name] = (done.returncode, sorted(lines))
        assert sorted(p.name for p in out.iterdir()) == [f"im{index:02d}.png" for index in range(FILES)]
    assert runs["cluster"] == runs["local"] and runs["local"][0] == 1, runs
    assert any("broken.kmq" in line for line in runs["local"][1]), runs
    for path in (tmp_path / "local").iterdir():
        assert (tmp_path / "cluster" / path.name).read_bytes() == path.read_bytes()


def index_is_odd(path):
    return int(path.stem[2:]) % 2 == 1


def test_to_kmq_on_a_cluster(tmp_path, cluster):
    """pil_kmq.dask.to_kmq with a distributed Client: the chunks' colour
    counts and every band's labels and coding run as tasks on the worker
    processes, and the file is Image.save's."""
    from pil_kmq import dask as kmq_dask
    from pil_kmq.format import bands

    da = pytest.importorskip("dask.array")
    local, client = cluster
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:900, 0:700]
    array = np.clip(np.stack([(x * 3 + y) % 256, (y * 5) % 256, (x * y // 7) % 256], -1)
                    + rng.integers(0, 24, (900, 700, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "a.kmq"
    with distributed.get_task_stream(client) as stream:
        kmq_dask.to_kmq(da.from_array(array, chunks=(128, 350, 3)), path, colors=64, optimize=True)
    assert path.read_bytes() == save_to_bytes(Image.fromarray(array), colors=64, optimize=True)
    ran = {}
    for task in stream.data:
        name = str(task["key"][0] if isinstance(task["key"], tuple) else task["key"]).split("-")[0]
        ran.setdefault(name, set()).add(task["worker"])
    workers = set(client.scheduler_info()["workers"])
    band_count = len(bands.band_rows(900, bands.choose_band_height(700, 900)))
    assert band_count >= 2 and ran["pixel_counts"] <= workers and ran["labelled"] <= workers
    labelled = [task for task in stream.data if str(task["key"]).startswith("labelled")]
    # the adjacency, then each candidate coding: a task per band here (the
    # bands are taller than the chunks)
    assert len(labelled) >= 2 * band_count
