"""The README and docs/ document every save option exactly once, with the
range and default options.py enforces, and their examples print what they
show, wherever they live (README.md or docs/*.md)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import gradient_image

from pil_kmq.options import METADATA_KEYS, PARSERS, Options

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def option_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in DOCUMENTS.splitlines():
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

sys.path.insert(0, str(REPO / "benchmarks"))
import readme_figures  # noqa: E402

DOCUMENTS = readme_figures.documents_text()  # README.md and docs/*.md


def test_the_kmq_info_example_prints_what_the_readme_shows():
    assert readme_figures.readme_info_block(DOCUMENTS) == readme_figures.info_example()


def test_the_numpy_example_runs_and_prints_what_the_readme_shows(capsys):
    code_start = DOCUMENTS.index("```python\nimport numpy as np\nfrom pil_kmq import compress")
    code = DOCUMENTS[code_start + len("```python\n") : DOCUMENTS.index("```\n", code_start + 10)]
    array = np.asarray(gradient_image(100, 100))  # the example's 100 x 100 RGB image
    exec(code, {"array": array})
    assert capsys.readouterr().out == readme_figures.readme_numpy_block(DOCUMENTS)
    assert readme_figures.tutorial_example() in DOCUMENTS


def test_the_tutorial_is_said_what_it_is_where_first_named():
    first = README.index("tutorial")
    assert "*the tutorial*" in README[first - 200 : first + 200] and "K-means image compression" in README[first - 200 : first + 400]


# --- what a newcomer reads first (issue 23) ------------------------------------

SET_UP_COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/python -m pil_kmq.demo",
    'python3 -m venv .venv && .venv/bin/pip install ".[test,dask]" && .venv/bin/python -m pytest -q -n auto',
)


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|console)\n(.*?)```", text, re.S)


def test_the_readme_opens_with_the_two_set_up_commands():
    assert [block.strip() for block in shell_blocks(README)[:2]] == list(SET_UP_COMMANDS)
    assert README.index("```sh") < README.index("\n## ")  # before any section


def test_the_readme_names_the_python_version_pyproject_requires():
    import tomllib

    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    assert "Python 3.11 or newer" in README[: README.index("```sh")]


@pytest.mark.parametrize("path", readme_figures.DOCUMENTS, ids=lambda path: path.name)
def test_every_command_runs_in_a_fresh_shell_after_the_set_up(path):
    """The set-up commands install into .venv without activating it: python
    is called as .venv/bin/python, and kmq only once the page has said to
    activate the venv or call .venv/bin/kmq."""
    text = path.read_text()
    for block in shell_blocks(text):
        for line in block.splitlines():
            command = line.removeprefix("$ ").strip()
            first = command.split()[0] if command else ""
            assert first not in ("python", "pip", "pytest"), (path.name, line)
            if first == "kmq":
                before = text[: text.index(block)]
                assert ". .venv/bin/activate" in before + block[: block.index(line)] or ".venv/bin/kmq" in before, \
                    (path.name, line)


def test_the_layout_table_names_every_module():
    design = (REPO / "docs" / "design.md").read_text()
    rows = {match.group(1): match.group(2) for match in re.finditer(r"^\| `([\w./]+)` \|(.*)\|$", design, re.M)}
    package = REPO / "pil_kmq"
    for module in sorted(package.rglob("*.py")):
        relative = module.relative_to(package)
        if len(relative.parts) == 1:
            assert relative.name in rows, relative
        elif module.stem != "__init__":
            assert f"`{module.stem}`" in rows[relative.parts[0] + "/"], relative


@pytest.mark.parametrize("path", readme_figures.DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_leads_to_a_file(path):
    for target in re.findall(r"\]\(([^)#]+)\)", path.read_text()):
        if not target.startswith(("http://", "https://")):
            assert (path.parent / target).exists(), (path.name, target)
