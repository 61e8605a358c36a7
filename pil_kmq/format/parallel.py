"""How many threads the codec uses for bands (zlib and lzma release the GIL).

Callers that run their own pools can limit it: set PIL_KMQ_THREADS in the
environment, or `pil_kmq.format.parallel.THREADS` at run time (it wins).
Output never depends on the count.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Iterable, TypeVar

ENVIRONMENT_VARIABLE = "PIL_KMQ_THREADS"

# None: PIL_KMQ_THREADS if set, else the cores this process may use.
THREADS: int | None = None

T = TypeVar("T")
R = TypeVar("R")


def thread_count() -> int:
    """The number of threads to use (>= 1)."""
    if THREADS is not None:
        return max(1, int(THREADS))
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be an integer, got {value!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def ordered_map(function: Callable[[T], R], items: Iterable[T], threads: int | None = None,
                each: Callable[[], object] | None = None) -> list[R]:
    """[function(item) for item in items], in threads; the first failure in
    item order is raised, so errors do not depend on the thread count.
    each(), if given, is called in the caller's thread as each item is
    done, in the order they finish (the encoder's progress)."""
    items = list(items)
    threads = min(threads or thread_count(), len(items))
    each = each or _nothing
    if threads <= 1:
        return [_after(function(item), each) for item in items]
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            if each is not _nothing:
                for future in as_completed(futures):
                    if future.exception() is not None:
                        break  # raised below, the first in item order
                    each()
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _after(result: R, each: Callable[[], object]) -> R:
    each()
    return result


def _nothing() -> None:
    pass
