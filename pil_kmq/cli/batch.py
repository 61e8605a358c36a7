"""Running a batch: one job per input file, in worker processes with -j,
never writing over an input, never overwriting without --force, and
stopping cleanly on a signal."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..atomic import remove_stale_temporaries
from .batch_types import STDIO, Job, Outcome
from .interrupts import guard_worker
from .progress import Reporter
from .status import EXIT_FAILED, UsageError, describe_error, exists_message

WORKER_GRACE_SECONDS = 5


def run_job(job: Job, force: bool, write: Callable[[Job], Outcome | None]) -> Outcome:
    """write(job) may return the outcome itself (sizes of stdin or stdout,
    a skip, a warning); else the sizes of the two files."""
    try:
        if job.target != STDIO and job.target.is_dir():
            return Outcome(job.source, f"output {job.target} is a folder")
        if job.target != STDIO and not force and job.target.exists():
            return Outcome(job.source, exists_message(job.target, can_skip=True))
        outcome = write(job)
        if outcome is not None:
            return outcome
        return Outcome(job.source, None, job.source.stat().st_size, job.target.stat().st_size)
    except FileExistsError:
        return Outcome(job.source, exists_message(job.target, can_skip=True))
    except BrokenPipeError:
        if job.target == STDIO:
            raise  # stdout closed (| head): main() ends quietly by SIGPIPE
        return Outcome(job.source, describe_error(BrokenPipeError()))
    except Exception as exc:  # reported as one line; the batch goes on
        return Outcome(job.source, describe_error(exc, job.source))


def run_batch(
    task: Callable[[Job], Outcome], jobs: Sequence[Job], workers: int, reporter: Reporter
) -> None:
    """Run every job, in `workers` processes when more than one.

    On a stop signal (Interrupted, raised by the handler main() installs)
    or any other exception, the workers are ended before it propagates: each
    removes its temporary file as it goes, and finished outputs stay.
    """
    workers = min(workers, len(jobs))
    if workers <= 1:
        for job in jobs:
            reporter.report(task(job))
        return
    with ProcessPoolExecutor(workers, initializer=guard_worker) as pool:
        futures = {pool.submit(task, job): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker process died (BrokenProcessPool)
                    outcome = Outcome(futures[future].source, f"worker failed: {describe_error(exc)}")
                reporter.report(outcome)
        except BaseException:
            _end_workers(pool)
            raise


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM to every worker (each ends by it, removing its temporary
    file), SIGKILL to any still there after a few seconds."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(WORKER_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def expand_inputs(
    arguments: Iterable[str], accept: Callable[[Path], bool], what: str
) -> tuple[list[Path], list[Outcome]]:
    """Files named on the command line, a folder meaning the accepted files
    in it (not recursive, hidden files skipped, sorted by name)."""
    files: list[Path] = []
    problems: list[Outcome] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(
                entry for entry in path.iterdir()
                if entry.is_file() and not entry.name.startswith(".") and accept(entry)
            )
            if not found:
                problems.append(Outcome(path, f"folder holds no {what}"))
            files.extend(found)
        else:
            files.append(path)  # a missing file is reported by its job
    return files, problems


def plan_jobs(
    sources: Sequence[Path], target_for: Callable[[Path], Path]
) -> tuple[list[Job], list[Outcome]]:
    """One job per source; two sources aiming at one output is a failure
    for the second rather than a silent overwrite. An output that is an
    input (by name, symlink or hard link) stops the whole batch: UsageError."""
    jobs: list[Job] = []
    problems: list[Outcome] = []
    claimed: dict[str, Path] = {}
    for source in sources:
        target = target_for(source)
        key = os.path.normcase(os.path.abspath(target))
        if key in claimed:
            problems.append(Outcome(source, f"output {target} is also the output for {claimed[key]}"))
            continue
        claimed[key] = source
        jobs.append(Job(source, target))
    refuse_outputs_that_are_inputs(sources, jobs)
    return jobs, problems


def refuse_outputs_that_are_inputs(sources: Sequence[Path], jobs: Sequence[Job]) -> None:
    """UsageError naming both paths if any output is the same file as any
    input (os.path.samefile's test), before anything is written, --force or not."""
    inputs: dict[tuple[int, int], Path] = {}
    for source in sources:
        with contextlib.suppress(OSError, ValueError):
            if source != STDIO:
                status = os.stat(source)
                inputs.setdefault((status.st_dev, status.st_ino), source)
    for job in jobs:
        if job.target == STDIO:
            continue
        try:
            status = os.stat(job.target)
        except (OSError, ValueError):
            continue  # not there yet, so not an input
        source = inputs.get((status.st_dev, status.st_ino))
        if source is not None:
            raise UsageError(
                f"output {job.target} is the same file as the input {source}; "
                "choose another output (--force never writes over an input)"
            )


def run_jobs(args: argparse.Namespace, verb: str, task: Callable[[Job], Outcome],
           jobs: list[Job], problems: list[Outcome]) -> int:
    show_progress = not args.quiet and sys.stderr.isatty()
    reporter = Reporter(verb, len(jobs) + len(problems), sys.stderr, show_progress,
                        show_summary=not args.quiet)
    for problem in problems:
        reporter.report(problem)
    if getattr(args, "skip_existing", False):
        jobs = [job for job in jobs if not _skipped(job, reporter)]
    if args.out_dir is not None and jobs:
        try:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reporter.failure(Path(args.out_dir), describe_error(exc))
            return EXIT_FAILED
    for folder in {job.target.parent for job in jobs if job.target != STDIO}:
        with contextlib.suppress(OSError):
            remove_stale_temporaries(folder)  # of earlier runs killed mid-write
    workers = args.jobs or os.cpu_count() or 1
    try:
        if getattr(args, "scheduler", None):
            from .cluster import run_on_cluster

            run_on_cluster(task, jobs, args.scheduler, reporter)
        else:
            run_batch(task, jobs, workers, reporter)
    finally:
        reporter.finish()
    return reporter.exit_status or reporter.skip_status


def _skipped(job: Job, reporter: Reporter) -> bool:
    if os.path.lexists(job.target):
        reporter.skip(job.source)
        return True
    return False


def check_single_output(args: argparse.Namespace) -> None:
    if args.output is not None and (len(args.inputs) != 1 or Path(args.inputs[0]).is_dir()):
        raise UsageError("-o/--output takes a single input file; use --out-dir for several")
    if str(STDIO) in args.inputs and len(args.inputs) != 1:
        raise UsageError("- (standard input) must be the only input")
    if str(STDIO) in args.inputs and args.out_dir is not None:
        raise UsageError("standard input has no name to write into --out-dir: give -o OUT, or none for stdout")
