"""Exit codes and the one-line failure messages shared by every subcommand."""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line that makes no sense (exit 2), found after parsing."""


def exists_message(target: Path, can_skip: bool = False) -> str:
    """Why an existing output was left alone, and the options that would not."""
    return f"{target} exists (use --force to overwrite{', --skip-existing to skip' if can_skip else ''})"


def describe_error(exc: BaseException, source: Path | None = None) -> str:
    """One line for a failure: the reason, without a traceback."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename and (source is None or Path(exc.filename) != source):
            text += f": {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        text = "out of memory"
    return " ".join(text.split())
