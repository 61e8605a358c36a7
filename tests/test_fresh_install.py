"""The README on a fresh machine (issue 23): a clean copy of the repository,
a fresh venv, the README's two set-up commands and its first `kmq` example,
each word for word as the README shows it, in a shell that has not
activated any venv.

Marked slow (it installs the package twice and runs the suite inside the
copy, minutes): `.ci/run` runs it with --runslow. Like `.ci/run`, it needs
the package index pip is configured with.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".venv*", "__pycache__", "build", "dist", "*.egg-info", "out",
                                 ".pytest_cache", ".hypothesis", ".git")


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def readme_commands() -> tuple[str, str, str]:
    """(install and demo, install the test extra and test, the first kmq example)."""
    readme = (REPO / "README.md").read_text()
    install, test = (block.strip() for block in shell_blocks(readme)[:2])
    (example, *_) = shell_blocks(readme[readme.index("## The `kmq` command"):])
    return install, test, example


def clean_copy(target: Path) -> None:
    """The repository's files as a fresh clone would have them (tracked and
    new ones, not ignored ones: no venv, no caches, no outputs)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, capture_output=True, check=True, timeout=60,
        ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        shutil.copytree(REPO, target, ignore=IGNORED)
        return
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def fresh_shell_environment() -> dict[str, str]:
    """This environment without any venv: no VIRTUAL_ENV, no PYTHONPATH, and
    no venv's bin folder on PATH, as a new terminal would have it."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    folders = [folder for folder in env.get("PATH", "").split(os.pathsep)
               if folder and not (Path(folder).parent / "pyvenv.cfg").exists()]
    env["PATH"] = os.pathsep.join(folders)
    return env


def run_in_shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=3600)


@pytest.mark.slow
def test_the_readme_commands_work_verbatim_on_a_fresh_copy(tmp_path):
    install, test, example = readme_commands()
    copy = tmp_path / "pil-kmq"
    clean_copy(copy)
    assert not (copy / ".venv").exists() and (copy / "pyproject.toml").exists()
    env = fresh_shell_environment()
    python = subprocess.run(["bash", "-c", "python3 -c 'import sys; print(sys.version_info >= (3, 11))'"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert python.stdout.strip() == "True", "the README asks for Python 3.11 or newer as python3"

    demo = run_in_shell(install, copy, env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "parrots.png: 256x192 RGB" in demo.stdout and "label bits" in demo.stdout
    assert sorted(os.listdir(copy / "out")) == sorted(
        f"parrots_k{k}.{ext}" for k in (2, 16, 256) for ext in ("kmq", "png"))

    tests = run_in_shell(test, copy, env)
    last = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else ""
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"\d+ passed", last) and "failed" not in last and "error" not in last, last

    cli = run_in_shell(example, copy, env)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "PSNR" in cli.stdout and "K              16 colours" in cli.stdout
    with open(copy / "parrot.png", "rb") as decoded:
        assert decoded.read(8) == b"\x89PNG\r\n\x1a\n"
    assert (copy / "parrot.kmq").read_bytes().startswith(b"KMQF")
