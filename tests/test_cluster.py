"""kmq encode --scheduler: a batch on a Dask distributed cluster started
here on loopback; a worker killed mid-batch leaves every output complete
or absent, never partial."""

from __future__ import annotations

import os
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
