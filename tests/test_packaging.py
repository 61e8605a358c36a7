"""The wheel holds every subpackage: built and installed into a temporary
folder, each one imports from there (an editable run would not notice a
subpackage missing from the wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def source_packages() -> list[str]:
    return sorted(
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "pil_kmq").rglob("__init__.py")
    )


def test_the_built_wheel_installs_every_subpackage(tmp_path):
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
    packages = source_packages()
    assert {"pil_kmq", "pil_kmq.cli", "pil_kmq.format", "pil_kmq.quantize"} <= set(packages)
    script = (
        "import importlib, sys\n"
        f"for name in {packages!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(tmp_path / 'site')!r}), module.__file__\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r})\n" + script],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
