"""Work on a stream of items in threads, results in item order, with at
most a window of them in flight: memory stays bounded by the window, not
by the image (format/parallel.ordered_map holds every result)."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from ..format import parallel

T = TypeVar("T")
R = TypeVar("R")


def ordered_window(
    function: Callable[[T], R], items: Iterable[T], threads: int | None = None
) -> Iterator[R]:
    """function(item) for each item, yielded in order; 2 x threads in flight."""
    threads = threads or parallel.thread_count()
    if threads <= 1:
        for item in items:
            yield function(item)
        return
    pending: deque = deque()
    with ThreadPoolExecutor(threads) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
