"""The long fuzz runs, measured (tests/fuzz_harness.py): outcome, time and
peak memory of every input; findings saved in fixtures/fuzz/, which
tests/test_hostile.py replays.

    python tests/fuzz_long.py --seconds 600      # mutations, 1 s per input
    python tests/fuzz_long.py --cases 300        # the suite's run (5 s per input)
    python tests/fuzz_long.py --atheris -- -max_total_time=600   # pip install atheris

--ignore-memory measures memory but does not count the budget as a finding
(to hunt crashes past a decoder known to be over it).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
import tempfile
from pathlib import Path

from fuzz_harness import LONG_TIME_LIMIT, SUITE_TIME_LIMIT, Report, all_seeds, run, tracing
from fuzz_kmq import FUZZ_DIR


def save_finding(data: bytes, reason: str) -> None:
    FUZZ_DIR.mkdir(exist_ok=True)
    kind = re.sub(r"[^a-z]+", "-", reason.split(":")[0].lower()).strip("-")
    path = FUZZ_DIR / f"finding-{kind}-{hashlib.sha1(data).hexdigest()[:12]}.kmq"
    path.write_bytes(data)
    print(f"FINDING {path}: {reason}", file=sys.stderr)


def atheris_run(argv: list[str], check_memory: bool) -> int:
    import atheris  # optional: pip install atheris

    def one_input(data: bytes) -> None:
        report = Report(check_memory=check_memory)
        with tracing():
            report.add("atheris", data, LONG_TIME_LIMIT)
        for found, reason in report.findings.values():
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
    parser.add_argument("--ignore-memory", action="store_true", help="measure memory, do not enforce it")
    parser.add_argument("rest", nargs="*", help="arguments for libFuzzer (after --)")
    args = parser.parse_args()
    check_memory = not args.ignore_memory
    if args.atheris:
        return atheris_run(args.rest, check_memory)
    long = args.seconds is not None
    report = run(sys.maxsize if long else args.cases, args.seed, LONG_TIME_LIMIT if long else SUITE_TIME_LIMIT,
                 args.seconds if long else math.inf, check_memory)
    for data, reason in report.findings.values():
        save_finding(data, reason)
    print(report.summary())
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
