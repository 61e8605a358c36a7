"""Measure the .kmq reader under fuzzing: for every input, its outcome, time
and peak memory, checked against the limits a decoder must keep.

    python tests/fuzz_harness.py --seconds 600             # long run, 1 s limit
    python tests/fuzz_harness.py --cases 300 --seed 0      # what the suite runs
    python tests/fuzz_harness.py --atheris -- -max_total_time=600   # pip install atheris

--ignore-memory still measures memory but does not count the budget as a
finding (to hunt crashes past a decoder known to be over it).

The inputs are tests/fuzz_kmq.py's seeds and mutations (which repair
checksums and lengths so they reach the payload decoders). A finding (an
exception outside Pillow's accepted set, a decode over the time limit, or
peak memory over the budget) is written to fixtures/fuzz/ as
finding-<kind>-<hash>.kmq; tests/test_hostile.py replays that folder.

Peak memory is what tracemalloc sees: Python objects and numpy arrays
(numpy reports its buffers to it), not Pillow's own image buffer, which
every decoder needs anyway. So the budget is BYTES_PER_PIXEL per claimed
pixel beyond that image, plus a fixed allowance and the file's own size.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import random
import re
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fuzz_kmq import FUZZ_DIR, SEEDS, mutate

ACCEPTED = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
BYTES_PER_PIXEL = 0.5
FIXED_ALLOWANCE = 64 * 1024
LARGE_SIZE = (512, 384)  # enough pixels that B/px, not the fixed allowance, decides
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
    data: bytes = field(repr=False)

    @property
    def budget(self) -> float:
        return FIXED_ALLOWANCE + 2 * len(self.data) + BYTES_PER_PIXEL * self.pixels

    @property
    def bytes_per_pixel(self) -> float:
        return self.peak_bytes / self.pixels if self.pixels else 0.0


def measure(data: bytes, seed: str = "") -> Case:
    """Open and load `data` as a user would; its outcome, time and peak
    traced memory (within tracing()). Exceptions outside ACCEPTED propagate."""
    pixels = 0
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
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - baseline
    return Case(seed, outcome, seconds, max(peak, 0), pixels, data)


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
    """fuzz_kmq's small seeds, and two large ones (raw and compressed
    labels) made through the public API, whatever the format version."""
    seeds = dict(SEEDS)
    width, height = LARGE_SIZE
    ramp = np.add.outer(np.arange(height), np.arange(width)) % 256
    rng = np.random.default_rng(0)
    array = np.dstack([ramp, ramp[::-1], rng.integers(0, 64, (height, width))]).astype(np.uint8)
    for name, optimize in (("large_raw", False), ("large_optimized", True)):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "KMQ", colors=16, optimize=optimize)
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
    cases: list[Case] = field(default_factory=list)
    crashes: list[tuple[Case | None, bytes, str]] = field(default_factory=list)
    slow: list[tuple[Case, str]] = field(default_factory=list)
    over_budget: list[tuple[Case, str]] = field(default_factory=list)

    check_memory: bool = True

    def add(self, seed: str, data: bytes, time_limit: float) -> None:
        try:
            case = measure(data, seed)
        except Exception as error:  # outside the accepted set: a finding
            self.crashes.append((None, data, f"{type(error).__name__}: {error}"))
            return
        self.cases.append(case)
        for problem in problems(case, time_limit):
            if problem.startswith("slow"):
                self.slow.append((case, problem))
            elif self.check_memory:
                self.over_budget.append((case, problem))

    def summary(self) -> str:
        outcomes = Counter((case.seed, case.outcome) for case in self.cases)
        slowest = max(self.cases, key=lambda case: case.seconds)
        # Per pixel means something only where pixels outweigh fixed costs.
        large = [case for case in self.cases if case.pixels >= 65536] or self.cases
        largest = max(large, key=lambda case: case.bytes_per_pixel)
        lines = [
            f"{len(self.cases) + len(self.crashes)} inputs, {len(self.crashes)} crashes, "
            f"{len(self.slow)} slow, {len(self.over_budget)} over the memory budget",
            f"distinct outcomes: {len({case.outcome for case in self.cases})} kinds, "
            f"{len(outcomes)} (seed, kind) pairs",
            f"slowest: {slowest.seconds * 1000:.1f} ms ({slowest.seed}, {slowest.outcome}, "
            f"{slowest.pixels:,} px)",
            f"largest peak per pixel (images of 64K px or more): {largest.bytes_per_pixel:.2f} B/px ({largest.peak_bytes:,} bytes, "
            f"{largest.pixels:,} px, {largest.seed}, {largest.outcome})",
            "per seed: " + "; ".join(
                f"{name} " + ", ".join(f"{kind} {count}" for (seed, kind), count in sorted(outcomes.items())
                                       if seed == name)
                for name in sorted(all_seeds())),
        ]
        lines += [f"  {case.seed}: {reason}" for case, reason in (self.slow + self.over_budget)[:5]]
        return "\n".join(lines)

    def findings(self) -> list[tuple[bytes, str]]:
        """One input (the shortest) per kind of finding, seed and outcome."""
        found = [(None, data, reason) for _, data, reason in self.crashes]
        found += [(case, case.data, reason) for case, reason in self.slow + self.over_budget]
        kept: dict[tuple[str, str, str], bytes] = {}
        reasons: dict[tuple[str, str, str], str] = {}
        for case, data, reason in found:
            key = (reason.split(":")[0], case.seed if case else "", case.outcome if case else reason)
            if key not in kept or len(data) < len(kept[key]):
                kept[key], reasons[key] = data, reason
        return [(kept[key], reasons[key]) for key in kept]


def run(cases: int, seed: int, time_limit: float) -> Report:
    report = Report()
    all_seeds()  # made before tracing: K-means is not what is measured
    with tracing():
        for name, data in generate(cases, seed):
            report.add(name, data, time_limit)
    return report


@contextlib.contextmanager
def tracing():
    """tracemalloc on for the block (it slows every allocation)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def save_finding(data: bytes, reason: str) -> Path:
    FUZZ_DIR.mkdir(exist_ok=True)
    kind = re.sub(r"[^a-z]+", "-", reason.split(":")[0].lower()).strip("-")
    path = FUZZ_DIR / f"finding-{kind}-{hashlib.sha1(data).hexdigest()[:12]}.kmq"
    path.write_bytes(data)
    print(f"FINDING {path}: {reason}", file=sys.stderr)
    return path


def long_run(seconds: float, seed: int, check_memory: bool) -> int:
    report = Report(check_memory=check_memory)
    all_seeds()
    deadline = time.monotonic() + seconds
    with tracing():
        for name, data in generate(sys.maxsize, seed):
            report.add(name, data, LONG_TIME_LIMIT)
            if time.monotonic() > deadline:
                break
    for data, reason in report.findings():
        save_finding(data, reason)
    print(report.summary())
    return 1 if report.findings() else 0


def atheris_run(argv: list[str], check_memory: bool) -> int:
    import atheris  # optional: pip install atheris

    def one_input(data: bytes) -> None:
        report = Report(check_memory=check_memory)
        with tracing():
            report.add("atheris", data, LONG_TIME_LIMIT)
        for found, reason in report.findings():
            save_finding(found, reason)
            raise AssertionError(reason)

    atheris.instrument_all()
    corpus = Path(tempfile.mkdtemp(prefix="kmq-corpus-"))
    for name, data in all_seeds().items():
        (corpus / f"{name}.kmq").write_bytes(data)
    if not any(arg.startswith("-artifact_prefix=") for arg in argv):  # findings go to FUZZ_DIR
        argv = [*argv, f"-artifact_prefix={corpus}/"]
    atheris.Setup([sys.argv[0], *argv, str(corpus)], one_input)
    atheris.Fuzz()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="long run for this long (1 s limit per input)")
    parser.add_argument("--cases", type=int, default=300, help="short run: this many mutations (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided with atheris")
    parser.add_argument("--ignore-memory", action="store_true",
                        help="measure memory but do not count the budget as a finding")
    parser.add_argument("rest", nargs="*", help="arguments for libFuzzer (after --)")
    args = parser.parse_args()
    if args.atheris:
        return atheris_run(args.rest, not args.ignore_memory)
    if args.seconds is not None:
        return long_run(args.seconds, args.seed, not args.ignore_memory)
    report = run(args.cases, args.seed, SUITE_TIME_LIMIT)
    print(report.summary())
    return 1 if report.findings() else 0


if __name__ == "__main__":
    raise SystemExit(main())
