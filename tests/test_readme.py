"""The README documents every save option exactly once, with the range and
default options.py enforces, and its examples print what it shows."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import gradient_image

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


# --- the README's examples print what it shows (benchmarks/readme_figures.py
# regenerates them: run it with --write when one of these fails on purpose) ---

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import readme_figures  # noqa: E402


def test_the_kmq_info_example_prints_what_the_readme_shows():
    assert readme_figures.readme_info_block(README) == readme_figures.info_example()


def test_the_numpy_example_runs_and_prints_what_the_readme_shows(capsys):
    code_start = README.index("```python\nimport numpy as np\nfrom pil_kmq import compress")
    code = README[code_start + len("```python\n") : README.index("```\n", code_start + 10)]
    array = np.asarray(gradient_image(100, 100))  # the example's 100 x 100 RGB image
    exec(code, {"array": array})
    assert capsys.readouterr().out == readme_figures.readme_numpy_block(README)
    assert readme_figures.tutorial_example() in README


def test_the_tutorial_is_said_what_it_is_where_first_named():
    first = README.index("tutorial")
    assert "*the tutorial*" in README[first - 200 : first + 200] and "K-means image compression" in README[first - 200 : first + 400]
