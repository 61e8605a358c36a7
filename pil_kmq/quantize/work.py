"""Work done, counted for the encoder's progress(stage, done, total).

The quantize stage's long loops call done() once per unit of work: a Lloyd
pass, a sorted run of the histogram, a slice of labels. Whoever wants to
hear them (encoder.py) installs a listener with listening(); without one,
done() costs one lookup. A context variable, so that saves running at once
in several threads each hear only their own work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

_LISTENER: ContextVar[Callable[[str], None] | None] = ContextVar("pil_kmq_work_listener", default=None)


def done(unit: str) -> None:
    """One unit of work finished: "pass", "run" (histogram) or "slice" (labels)."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(unit)


@contextlib.contextmanager
def listening(listener: Callable[[str], None]) -> Iterator[None]:
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
