"""What a batch works on: a job (one input, one output) and its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STDIO = Path("-")  # an input read from stdin, an output written to stdout


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass(frozen=True)
class Outcome:
    """What became of one input: an error message, or the bytes in and out."""

    source: Path
    error: str | None = None
    input_bytes: int = 0
    output_bytes: int = 0
    exit_code: int = 1  # the command's status when this file failed (99: below --quality's min)
    skipped: str | None = None  # why nothing was written (--skip-if-larger), exit_code then 98
    warning: str | None = None  # written, but worth a line on stderr (an output larger than its input)
