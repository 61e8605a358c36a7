"""kmq encode/decode --scheduler ADDRESS: the batch on a Dask distributed
cluster (the [dask] extra), one task per file.

The task is the local batch's own (convert.encode_file / decode_file), so
the same rules hold on the workers: an existing output is never replaced
without --force, never an input, and every write is atomic
(atomic.write_atomic: an unnamed temporary file, linked into place only
when complete), so a worker killed mid-file leaves nothing behind; the
scheduler reruns its task elsewhere. A worker killed after its output was
in place but before its result reached the scheduler has its task rerun
too, which then finds that output: an output absent when the batch began
and present now counts as written by the batch, not as a failure.
Outcomes are reported as they come, as the local batch reports them.
Paths must mean the same files on the workers (a shared file system)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from .batch_types import Job, Outcome
from .progress import Reporter
from .status import UsageError, describe_error, exists_message


def run_on_cluster(task: Callable[[Job], Outcome], jobs: Sequence[Job], address: str, reporter: Reporter) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError('--scheduler needs the dask extra: pip install "pil-kmq[dask]"') from None
    if not jobs:
        return
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise UsageError(f"--scheduler {address}: cannot connect ({exc})") from None
    futures = []
    existed = {job.target for job in jobs if os.path.lexists(job.target)}
    try:
        futures = client.map(task, list(jobs), pure=False)
        by_key = {future.key: job for future, job in zip(futures, jobs)}
        for future in as_completed(futures):
            job = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # the task failed on every worker it ran on (KilledWorker)
                outcome = Outcome(job.source, f"worker failed: {describe_error(exc)}")
            if outcome.error == exists_message(job.target, can_skip=True) and job.target not in existed:
                outcome = _written_by_an_earlier_attempt(job)
            reporter.report(outcome)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.close()


def _written_by_an_earlier_attempt(job: Job) -> Outcome:
    return Outcome(job.source, None, job.source.stat().st_size, job.target.stat().st_size)
