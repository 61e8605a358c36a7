"""A short, deterministic fuzz run (fixed seed, a few hundred inputs) with
its per-input measurements checked: accepted errors only, the suite's time
limit, the decoding memory budget. tests/fuzz_harness.py runs it longer."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import fuzz_harness
from fuzz_harness import SUITE_TIME_LIMIT, Case, measure, problems, run

CASES = 300


@pytest.fixture(scope="module")
def report() -> fuzz_harness.Report:
    return run(CASES, seed=0, time_limit=SUITE_TIME_LIMIT)


def test_every_seed_decodes_and_the_mutations_reach_several_outcomes(report):
    seeds = fuzz_harness.all_seeds()
    assert report.inputs == len(seeds) + CASES
    assert all(report.outcomes[name, "decoded"] >= 1 for name in seeds)
    assert len({outcome for _, outcome in report.outcomes}) >= 4
    assert report.largest is not None and report.largest.pixels >= fuzz_harness.LARGE_PIXELS


def test_the_mutations_reach_the_metadata_chunk_rules(report):
    """fuzz_kmq.mutate_metadata adds chunks of every defined type, varied,
    with the CRCs repaired: the chunk rules (dpIn's among them) must be
    what refuses them."""
    rules = {message for message in report.messages if "bad metadata" in message}
    assert len(rules) >= 5 and any("dpIn" in rule for rule in rules), rules


def test_the_mutations_reach_every_band_coding_s_decompressor(report):
    """Coding 3 included: its frame-header checks and libzstd's own."""
    for name in ("zlib", "xz", "zstd"):
        assert any(message.startswith("CodingError: " + name) for message in report.messages), name


def test_fuzz_inputs_fail_only_with_errors_pillow_accepts(report):
    assert report.reasons("crash") == []


def test_fuzz_inputs_load_within_the_time_limit(report):
    assert report.reasons("slow") == []


def test_fuzz_inputs_load_within_the_memory_budget(report):
    assert report.reasons("memory") == []


# --- the harness can fail ---------------------------------------------------


def test_measure_sees_numpy_allocations_and_the_claimed_size():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(buffer, "KMQ", colors=2)
    with fuzz_harness.tracing():
        case = measure(buffer.getvalue())
    assert case.outcome == "decoded" and case.pixels == 200 * 100
    assert case.peak_bytes > 0 and case.seconds > 0


def test_problems_flags_slow_inputs_and_memory_over_budget():
    pixels = 1_000_000
    fine = Case("s", "decoded", 0.01, int(0.4 * pixels), pixels, 100)
    assert problems(fine, 1.0) == []
    hungry = Case("s", "decoded", 0.01, 13 * pixels, pixels, 100)
    assert problems(hungry, 1.0)[0].startswith("memory: ")
    slow = Case("s", "OSError", 1.5, 0, 0, 0)
    assert problems(slow, 1.0)[0].startswith("slow: ")


def test_an_unexpected_exception_is_a_crash(monkeypatch):
    def broken_open(*args, **kwargs):
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(fuzz_harness.Image, "open", broken_open)
    report = fuzz_harness.Report()
    with fuzz_harness.tracing():
        report.add("s", b"KMQF", SUITE_TIME_LIMIT)
    assert report.outcomes == {} and report.reasons("crash") == ["crash: RuntimeError: decoder bug"]
