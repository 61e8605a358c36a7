"""Stopping on SIGINT, SIGTERM or SIGHUP, or a closed pipe, the way shells
expect: temporary files removed, finished outputs kept, and the process
ended by the signal itself (status 128+n) so a shell loop stops too."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ..atomic import remove_own_temporaries
from .status import EXIT_INTERRUPTED

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(BaseException):
    """A stop signal arrived; unwinding closes and removes what is in hand.

    A BaseException, like KeyboardInterrupt, so no `except Exception`
    reports it as one file's failure and goes on.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, a stop signal raises Interrupted in the main thread;
    later ones are ignored while the first is being handled. Signals the
    caller ignores (nohup, background jobs) stay ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; in-process use from a thread
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def raise_interrupted(signum: int, frame: Any) -> None:
        for other in STOP_SIGNALS:
            if previous[other] is not signal.SIG_IGN:
                signal.signal(other, signal.SIG_IGN)
        raise Interrupted(signum)

    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def end_by_signal(signum: int) -> int:
    """End the process by `signum`'s default action, after removing this
    process's temporary files. Returns (an exit code of 128+n) only where
    the signal cannot end the process."""
    remove_own_temporaries()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    return 128 + signum if signum != signal.SIGINT else EXIT_INTERRUPTED


def end_by_broken_pipe() -> int:
    """The reader of our output has gone: end silently, like coreutils
    (SIGPIPE's default action), with no traceback and no flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # the stream still open gets what it is owed
        with contextlib.suppress(Exception):
            os.dup2(devnull, stream.fileno())  # no later flush can fail
    if hasattr(signal, "SIGPIPE"):
        return end_by_signal(signal.SIGPIPE)
    return 1


def guard_worker() -> None:
    """In a worker process: a stop signal ends it at once (the parent
    reports the batch), and so does the parent's death, even by SIGKILL."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _end_worker)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_when_gone, args=(parent,), daemon=True,
                         name="kmq-watch-parent").start()


def _end_worker(signum: int, frame: Any) -> None:
    end_by_signal(signum)


def _end_when_gone(parent: Any) -> None:
    # multiprocessing gives every child the read end of a pipe that only
    # its parent holds open: it turns readable when the parent dies.
    parent.join()
    remove_own_temporaries()
    os._exit(EXIT_INTERRUPTED)
