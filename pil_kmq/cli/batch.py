"""Running a batch: one job per input file, in worker processes with -j,
never overwriting without --force, and stopping cleanly on Ctrl-C."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .batch_types import Job, Outcome
from .progress import Reporter
from .status import EXIT_FAILED, EXIT_OK, UsageError, describe_error, exists_message


def run_job(job: Job, force: bool, write: Callable[[Job], None]) -> Outcome:
    try:
        if job.target.is_dir():
            return Outcome(job.source, f"output {job.target} is a folder")
        if not force and job.target.exists():
            return Outcome(job.source, exists_message(job.target))
        write(job)
        return Outcome(job.source, None, job.source.stat().st_size, job.target.stat().st_size)
    except FileExistsError:
        return Outcome(job.source, exists_message(job.target))
    except Exception as exc:  # reported as one line; the batch goes on
        return Outcome(job.source, describe_error(exc, job.source))


def run_batch(
    task: Callable[[Job], Outcome], jobs: Sequence[Job], workers: int, reporter: Reporter
) -> None:
    """Run every job, in `workers` processes when more than one.

    On Ctrl-C the workers abandon the file in hand (save_atomic removes its
    temporary file) and skip the rest, so the command stops promptly and
    leaves only complete outputs.
    """
    workers = min(workers, len(jobs))
    if workers <= 1:
        for job in jobs:
            reporter.report(task(job))
        return
    stop = multiprocessing.Event()
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(stop,)) as pool:
        futures = {pool.submit(_run_in_worker, task, job): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker process died (BrokenProcessPool)
                    outcome = Outcome(futures[future].source, f"worker failed: {describe_error(exc)}")
                reporter.report(outcome)
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


# Worker-process state: a Ctrl-C interrupts a job but not an idle worker
# (which would die with a traceback), and after one no further job starts.
_stop_event: Any = None
_in_job = False


def _start_worker(stop: Any) -> None:
    global _stop_event
    _stop_event = stop
    signal.signal(signal.SIGINT, _interrupt_job)


def _interrupt_job(signum: int, frame: Any) -> None:
    if _in_job:
        raise KeyboardInterrupt


def _run_in_worker(task: Callable[[Job], Outcome], job: Job) -> Outcome:
    global _in_job
    if _stop_event is not None and _stop_event.is_set():
        return Outcome(job.source, "interrupted")
    _in_job = True
    try:
        return task(job)
    except KeyboardInterrupt:
        _stop_event.set()
        return Outcome(job.source, "interrupted")
    finally:
        _in_job = False


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
    for the second rather than a silent overwrite."""
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
    return jobs, problems


def run_jobs(args: argparse.Namespace, verb: str, task: Callable[[Job], Outcome],
           jobs: list[Job], problems: list[Outcome]) -> int:
    show_progress = not args.quiet and sys.stderr.isatty()
    reporter = Reporter(verb, len(jobs) + len(problems), sys.stderr, show_progress)
    for problem in problems:
        reporter.report(problem)
    if args.out_dir is not None and jobs:
        try:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reporter.failure(Path(args.out_dir), describe_error(exc))
            return EXIT_FAILED
    workers = args.jobs or os.cpu_count() or 1
    worst = [EXIT_OK] + [problem.exit_code for problem in problems]

    def report(outcome: Outcome) -> None:  # the exit status: the worst failure's
        if outcome.error is not None:
            worst.append(outcome.exit_code)
        reporter.report(outcome)

    try:
        run_batch(task, jobs, workers, SimpleNamespace(report=report))
    finally:
        reporter.finish()
    return max(worst) if reporter.failed else EXIT_OK


def check_single_output(args: argparse.Namespace) -> None:
    if args.output is not None and (len(args.inputs) != 1 or Path(args.inputs[0]).is_dir()):
        raise UsageError("-o/--output takes a single input file; use --out-dir for several")


