"""The README documents every save option exactly once, with the range and
default options.py enforces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pil_kmq.options import METADATA_KEYS, PARSERS, Options

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def option_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in README.splitlines():
        match = re.match(r"\| `(\w+)` \|(.*)\|$", line)
        if match:
            rows.setdefault(match.group(1), []).append(match.group(2))
    return rows


@pytest.mark.parametrize("name", [*PARSERS, *METADATA_KEYS])
def test_every_option_has_one_row(name):
    assert len(option_rows().get(name, [])) == 1, name


@pytest.mark.parametrize("name", list(PARSERS))
def test_the_row_states_the_range_and_default_the_code_enforces(name):
    (row,) = option_rows()[name]
    kind, default = [cell.strip().replace("`", "") for cell in row.split("|")][:2]
    assert kind.startswith(PARSERS[name][1].split(":")[0].split(" (")[0]), (kind, PARSERS[name][1])
    value = getattr(Options(), name)
    shown = {None: ("none", "raw")}.get(value, (str(value),))
    assert default in shown, (name, default, value)
