"""Measure the .kmq reader under fuzzing: every input's outcome, time and
peak memory, against the limits a decoder must keep (the command line is
tests/fuzz_long.py; tests/test_fuzz_harness.py runs a short fixed run).

Inputs: tests/fuzz_kmq.py's seeds and mutate() (which repairs checksums and
lengths to reach the payload decoders), plus two large seeds. Findings: an
exception outside Pillow's accepted set, an input over the time limit, peak
memory over the budget. Memory is what tracemalloc sees: Python and numpy
(which reports its buffers), not Pillow's own image buffer; so the budget is
BYTES_PER_PIXEL beyond that image, plus fixed and per-file bytes.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import random
import re
import time
import tracemalloc
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from fuzz_kmq import SEEDS, mutate
from pil_kmq.format import parallel
from pil_kmq.format.pieces import PIECE_LABELS

ACCEPTED = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
BYTES_PER_PIXEL = 0.5
FIXED_ALLOWANCE = 64 * 1024
# The decoder's working set, whatever the image size: per thread, a piece of
# at most PIECE_LABELS labels with its decompressed bytes, its 32-bit pixel
# words and their bytes for Pillow (format/pieces.py), measured at up to 14
# bytes a label (a 600 s run found 3.64 MB for one 2^18-label piece).
# Beyond it an image may take 0.5 B/px (tests/test_decoding.py measures RSS
# on an 80 Mpx file).
WORKING_BUFFERS = parallel.thread_count() * PIECE_LABELS * 16
LARGE_SIZE = (512, 384)  # enough pixels that B/px, not the fixed allowance, decides
LARGE_PIXELS = 65536  # where B/px means something
SUITE_TIME_LIMIT = 5.0
LONG_TIME_LIMIT = 1.0


@dataclass(frozen=True)
class Case:
    """One input's measurements."""

    seed: str
    outcome: str  # "decoded" or the exception's type name
    seconds: float
    peak_bytes: int
    pixels: int  # claimed by the header, 0 if it was not read
    file_bytes: int
    detail: str = ""  # the error message, numbers blanked

    @property
    def budget(self) -> float:
        return FIXED_ALLOWANCE + WORKING_BUFFERS + 2 * self.file_bytes + BYTES_PER_PIXEL * self.pixels

    @property
    def bytes_per_pixel(self) -> float:
        return self.peak_bytes / self.pixels if self.pixels else 0.0

    def __str__(self) -> str:
        return (f"{self.seconds * 1000:.1f} ms, {self.peak_bytes:,} bytes = {self.bytes_per_pixel:.2f} B/px "
                f"over {self.pixels:,} px ({self.seed}, {self.outcome})")


def measure(data: bytes, seed: str = "") -> Case:
    """Open and load `data` as a user would; its outcome, time and peak
    traced memory (within tracing()). Exceptions outside ACCEPTED propagate."""
    pixels, detail = 0, ""
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["KMQ"]) as im:
                pixels = im.width * im.height
                im.load()
        outcome = "decoded"
    except Image.DecompressionBombWarning:  # as Pillow's fuzzers do: refused
        outcome = "DecompressionBombWarning"
    except ACCEPTED as error:
        outcome = type(error).__name__
        detail = re.sub(r"[0-9a-fx]*[0-9][0-9a-fx]*", "N", str(error))[:80]  # numbers vary
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - baseline
    return Case(seed, outcome, seconds, max(peak, 0), pixels, len(data), detail)


def problems(case: Case, time_limit: float) -> list[str]:
    """What is wrong with a measured case: slow, or over the memory budget."""
    found = []
    if case.seconds > time_limit:
        found.append(f"slow: {case.seconds:.2f} s > {time_limit} s")
    if case.peak_bytes > case.budget:
        found.append(
            f"memory: {case.peak_bytes:,} bytes traced > budget {case.budget:,.0f} "
            f"({case.bytes_per_pixel:.1f} B/px over {case.pixels:,} px)"
        )
    return found


@functools.cache
def all_seeds() -> dict[str, bytes]:
    """fuzz_kmq's small seeds, and three large ones (raw, optimized and
    zstd labels) made through the public API, whatever the format version."""
    seeds = dict(SEEDS)
    width, height = LARGE_SIZE
    # 16 colours in diagonal stripes: quick to quantize and to compress.
    labels = (np.add.outer(np.arange(height), np.arange(width)) // 8) % 16
    array = np.random.default_rng(0).integers(0, 256, (16, 3), dtype=np.uint8)[labels]
    for name, options in (("large_raw", {}), ("large_optimized", {"optimize": True}),
                          ("large_zstd", {"coding": "zstd"})):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "KMQ", colors=16, **options)
        seeds[name] = buffer.getvalue()
    return seeds


def generate(cases: int, seed: int):
    """(seed name, input): every seed as it is, then `cases` mutations, reproducibly."""
    rng = random.Random(seed)
    seeds = all_seeds()
    names = sorted(seeds)
    for name in names:
        yield name, seeds[name]
    for _ in range(cases):
        name = rng.choice(names)
        yield name, mutate(seeds[name], rng)


@dataclass
class Report:
    """Aggregates only (a long run sees millions of inputs), plus the
    shortest input for each kind of finding, seed and outcome."""

    check_memory: bool = True
    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)  # (seed, outcome) -> count
    messages: Counter = field(default_factory=Counter)  # outcome and message -> count
    slowest: Case | None = None
    largest: Case | None = None  # peak per pixel, over images of LARGE_PIXELS or more
    findings: dict[tuple[str, str, str], tuple[bytes, str]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)  # crash / slow / memory -> count

    def add(self, seed: str, data: bytes, time_limit: float) -> None:
        self.inputs += 1
        try:
            case = measure(data, seed)
        except Exception as error:  # outside the accepted set: a finding
            self._found("crash", seed, type(error).__name__, data, f"crash: {type(error).__name__}: {error}")
            return
        self.outcomes[seed, case.outcome] += 1
        self.messages[f"{case.outcome}: {case.detail}"] += 1
        if self.slowest is None or case.seconds > self.slowest.seconds:
            self.slowest = case
        if case.pixels >= LARGE_PIXELS and (
                self.largest is None or case.bytes_per_pixel > self.largest.bytes_per_pixel):
            self.largest = case
        for problem in problems(case, time_limit):
            kind = problem.split(":")[0]
            if kind == "slow" or self.check_memory:
                self._found(kind, seed, case.outcome, data, problem)

    def _found(self, kind: str, seed: str, outcome: str, data: bytes, reason: str) -> None:
        self.counts[kind] += 1
        key = (kind, seed, outcome)
        if key not in self.findings or len(data) < len(self.findings[key][0]):
            self.findings[key] = (data, reason)

    def reasons(self, kind: str) -> list[str]:
        return [reason for (found, _, _), (_, reason) in self.findings.items() if found == kind]

    def summary(self) -> str:
        lines = [
            f"{self.inputs} inputs: {self.counts['crash']} crashes, {self.counts['slow']} slow, "
            f"{self.counts['memory']} over the memory budget",
            f"distinct outcomes: {len({kind for _, kind in self.outcomes})} exception types, "
            f"{len(self.messages)} messages, {len(self.outcomes)} (seed, type) pairs",
            f"slowest: {self.slowest}",
            f"largest peak per pixel: {self.largest}",
        ]
        for name in sorted(all_seeds()):
            seen = ", ".join(f"{kind} {count}" for (seed, kind), count in sorted(self.outcomes.items())
                             if seed == name)
            lines.append(f"  {name}: {seen}")
        return "\n".join(lines + [f"  finding: {reason}" for _, reason in self.findings.values()])


def run(cases: int, seed: int, time_limit: float, seconds: float = math.inf,
        check_memory: bool = True) -> Report:
    """`cases` inputs or `seconds` of them, whichever ends first."""
    report = Report(check_memory=check_memory)
    all_seeds()  # made before tracing: K-means is not what is measured
    deadline = time.monotonic() + seconds
    with tracing():
        for name, data in generate(cases, seed):
            report.add(name, data, time_limit)
            if time.monotonic() > deadline:
                break
    return report


@contextlib.contextmanager
def tracing():
    """tracemalloc on for the block (it slows every allocation)."""
    if tracemalloc.is_tracing():
        yield
        return
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
