"""Print the run-time dependencies pinned to their stated minimums
(pyproject's lower bounds), one requirement a line, for CI's second venv:
the suite must pass with exactly the oldest versions the project claims.
An environment marker stays on its pin (pip skips a pin whose marker is
false for the Python it installs into)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def minimums(pyproject: Path = PYPROJECT) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for requirement in dependencies:
        requirement, _, marker = requirement.partition(";")
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(,.*)?", requirement)
        if match is None:
            sys.exit(f"minimums.py: {requirement!r} states no lower bound (name>=version)")
        pins.append(f"{match.group(1)}=={match.group(2)}" + (f"; {marker.strip()}" if marker else ""))
    return pins


if __name__ == "__main__":
    print("\n".join(minimums()))
