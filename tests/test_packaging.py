"""The wheel holds every subpackage and the package data: built and
installed into a temporary folder, each subpackage imports from there and
the demo runs from an unrelated folder (an editable run would notice
neither a subpackage nor a data file missing from the wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def source_packages() -> list[str]:
    return sorted(
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "pil_kmq").rglob("__init__.py")
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The site folder of a wheel built from a copy of the sources."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools reuses a build/ folder left in the tree.
    source = tmp_path / "source"
    shutil.copytree(REPO / "pil_kmq", source / "pil_kmq", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "wheel", source],
                   check=True, cwd=tmp_path, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("pil_kmq-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", tmp_path / "site", wheel],
                   check=True, cwd=tmp_path, timeout=300)
    return tmp_path / "site"


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """python -I with only the installed copy (and the venv's dependencies)."""
    prelude = f"import sys; sys.path.insert(0, {str(site)!r})\n"
    return subprocess.run([sys.executable, "-I", "-c", prelude + args[0], *args[1:]],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.slow  # pip builds and installs a wheel: run with --runslow (.ci/run)
def test_the_built_wheel_installs_every_subpackage(installed, tmp_path):
    packages = source_packages()
    assert {"pil_kmq", "pil_kmq.cli", "pil_kmq.format", "pil_kmq.quantize"} <= set(packages)
    script = (
        "import importlib\n"
        f"for name in {packages!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(installed)!r}), module.__file__\n"
        "print('ok')\n"
    )
    result = run_installed(installed, tmp_path, script)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.slow
def test_the_installed_demo_runs_from_any_folder(installed, tmp_path):
    """python -m pil_kmq.demo as the README's first command runs it, from a
    folder holding nothing of the repository."""
    script = (
        "import runpy, pil_kmq\n"
        f"assert pil_kmq.__file__.startswith({str(installed)!r}), pil_kmq.__file__\n"
        "sys.argv = ['pil_kmq.demo', '-k', '2,16']\n"
        "runpy.run_module('pil_kmq.demo', run_name='__main__')\n"
    )
    result = run_installed(installed, tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert "parrots.png: 256x192 RGB" in result.stdout and "label bits" in result.stdout
    assert sorted(os.listdir(tmp_path / "out")) == [
        "parrots_k16.kmq", "parrots_k16.png", "parrots_k2.kmq", "parrots_k2.png"
    ]


def test_ci_runs_the_readme_command_and_the_suite_at_the_stated_minimums():
    """pyproject's lower bounds are tested, not just written: .ci/run makes a
    second venv pinned to exactly them (.ci/minimums.py) and runs the suite."""
    sys.path.insert(0, str(REPO / ".ci"))
    try:
        import minimums
    finally:
        sys.path.pop(0)
    pins = dict(pin.split("==") for pin in minimums.minimums())
    assert set(pins) == {"pillow", "numpy", "backports.zstd"}
    assert pins["pillow"] == "10.3" and pins["numpy"] == "1.23.2"  # found by bisection, see pyproject
    assert pins["backports.zstd"] == "1.0.0; python_version < '3.14'"
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    command = 'python3 -m venv .venv && .venv/bin/pip install ".[test,dask]" && .venv/bin/python -m pytest -q -n auto'
    assert command in readme and command in ci
    # and the slow tests (a fresh venv running the README's commands), which that command skips
    assert ".venv/bin/python -m pytest -q --runslow -m slow" in ci
    assert "@pytest.mark.slow" in (REPO / "tests" / "test_fresh_install.py").read_text()
    assert "python3 .ci/minimums.py" in ci and ".venv-min/bin/python -m pytest -q" in ci


def test_the_zstd_coding_runs_on_the_module_this_python_should_take():
    """compression.zstd from Python 3.14 on, backports.zstd (a dependency
    with a marker) below: CI, whatever its Python, tests the zstd coding on
    the module users of that Python get, never skips it."""
    from pil_kmq.format import zstdlib

    expected = "compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd"
    assert zstdlib.module().__name__ == expected
