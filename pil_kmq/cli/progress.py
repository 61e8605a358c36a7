"""Batch progress: failure lines always, a redrawn progress line only
where someone is watching, and a summary line unless -q."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import TextIO

from .batch_types import Outcome


class Reporter:
    """Failure lines always; progress only on a terminal; the summary
    (written / skipped / failed) wherever show_summary says.

    Progress goes to stderr and is redrawn in place at most ten times a
    second, so stdout stays clean for pipes.
    """

    REDRAW_INTERVAL = 0.1

    def __init__(self, verb: str, total: int, stream: TextIO, show_progress: bool,
                 show_summary: bool | None = None):
        self.verb = verb
        self.total = total
        self.stream = stream
        self.show_progress = show_progress
        self.show_summary = show_progress if show_summary is None else show_summary
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.line = RedrawnLine(stream)
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.exit_status = 0  # the worst failure's (1, or 99 below --quality's min)
        self.skip_status = 0  # 98 if --skip-if-larger left a file unwritten (a failure's status wins)
        self.input_bytes = 0
        self.output_bytes = 0

    def report(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.skipped is not None:
            self.skipped += 1
            self.skip_status = outcome.exit_code
            self.failure(outcome.source, f"not written: {outcome.skipped}")
        elif outcome.error is not None:
            self.failed += 1
            self.exit_status = max(self.exit_status, outcome.exit_code)
            self.failure(outcome.source, outcome.error)
        else:
            self.input_bytes += outcome.input_bytes
            self.output_bytes += outcome.output_bytes
            if outcome.warning is not None:
                self.failure(outcome.source, f"warning: {outcome.warning}")
        now = time.monotonic()
        if self.show_progress and (now - self.last_drawn >= self.REDRAW_INTERVAL or self.done == self.total):
            self.last_drawn = now
            self._draw(self._progress_line(now))

    def skip(self, source: Path) -> None:
        """An input whose output exists already (--skip-existing)."""
        self.skipped += 1
        self.report(Outcome(source))

    def failure(self, source: Path, reason: str) -> None:
        self._clear()
        print(f"kmq: {source}: {reason}", file=self.stream, flush=True)

    def finish(self) -> None:
        self._clear()
        if self.show_summary:
            print(self.summary(), file=self.stream, flush=True)

    def summary(self) -> str:
        written = self.done - self.failed - self.skipped
        elapsed = time.monotonic() - self.started
        line = (
            f"kmq {self.verb}: {written} written, {self.skipped} skipped, {self.failed} failed; "
            f"{human_bytes(self.input_bytes)} -> {human_bytes(self.output_bytes)}"
        )
        if self.input_bytes:
            line += f" ({self.output_bytes / self.input_bytes:.1%})"
        return line + f" in {elapsed:.1f} s"

    def _progress_line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        remaining = (self.total - self.done) / rate if rate else math.inf
        return (
            f"{self.verb} {self.done}/{self.total} files, "
            f"{rate:.1f} files/s, {duration(remaining)} left"
        )

    def _draw(self, line: str) -> None:
        self.line.draw(line)

    def _clear(self) -> None:
        self.line.clear()


class RedrawnLine:
    """One status line redrawn in place on a terminal stream, cut to its width."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.shown = False

    def draw(self, line: str) -> None:
        self.stream.write("\r" + fit_to_terminal(line) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def fit_to_terminal(line: str) -> str:
    """The line cut to the terminal's width (less one column, so it never
    wraps: a wrapped line cannot be redrawn in place)."""
    width = shutil.get_terminal_size().columns - 1
    if len(line) <= width:
        return line
    return line[: width - 3] + "..." if width > 3 else line[: max(width, 0)]


def plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
