"""Regenerate the README's figures from the code, so they stay true.

    .venv/bin/python benchmarks/readme_figures.py            # show what the pages should say
    .venv/bin/python benchmarks/readme_figures.py --write    # rewrite those parts of README.md and docs/
    .venv/bin/python benchmarks/readme_figures.py --corpus DIR   # also the size and memory tables

Without a corpus it regenerates what needs nothing but the repository: the
`kmq info` example (fixtures/images/kodim23_crop.png as photos/parrot.png,
encoded at K = 16), the numpy API example's size table, and the contact sheet
benchmarks/sheet.png. With --corpus (the Kodak folder) it also runs
benchmarks/size.py and benchmarks/quantize.py and prints their tables
for the README's size and memory paragraphs (copied by hand: timings vary
from run to run; keep the full outputs in benchmarks/results/).
The examples live in README.md or docs/*.md (the `kmq info` example in
docs/cli.md, the numpy example in docs/options.md): the functions below
take the text of all of them (documents_text). tests/test_readme.py checks
the examples against the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# The README and the pages it leads to, where the examples live.
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md"))]
CROP = REPO / "fixtures" / "images" / "kodim23_crop.png"
INFO_COMMAND = "kmq info kmq/parrot.kmq --original photos/parrot.png"
SHEET_COMMAND = ["sheet", "fixtures/images/kodim23_crop.png", "-o", "benchmarks/sheet.png", "--force"]

sys.path.insert(0, str(REPO))
from pil_kmq import cli, size_report  # noqa: E402


def run_kmq(argv: list[str], cwd: Path) -> str:
    """`kmq ARGV` in-process in `cwd`; its standard output (RuntimeError if it fails)."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    finally:
        os.chdir(previous)
    if code != 0:
        raise RuntimeError(f"kmq {' '.join(argv)} exited {code}: {err.getvalue()}")
    return out.getvalue()


def info_example() -> str:
    """What `kmq info kmq/parrot.kmq --original photos/parrot.png` prints
    after `kmq encode photos/ -k 16 --out-dir kmq/`."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "photos").mkdir()
        shutil.copy(CROP, root / "photos" / "parrot.png")
        run_kmq(["encode", "photos/", "-k", "16", "--out-dir", "kmq/"], root)
        return run_kmq(INFO_COMMAND.split()[1:], root)


def numpy_example() -> str:
    """The size table the README's numpy example prints (100 x 100 RGB, K = 16)."""
    return size_report((100, 100, 3), 16).table() + "\n"


def tutorial_example() -> str:
    """The README's sentence on the tutorial's own image (227 x 303 at K = 2)."""
    report = size_report((227, 303, 3), 2)
    return (f"{report.label_bits:,} + {report.codebook_bits} bits, {report.ratio:.1%} of its "
            f"{report.original_bits:,} raw bits")


def write_sheet() -> None:
    run_kmq(SHEET_COMMAND, REPO)


def corpus_tables(corpus: Path) -> str:
    """The size table (benchmarks/size.py) and the quality, time and scaling
    tables (benchmarks/quantize.py: the README's quality, speed and Memory
    paragraphs; needs the bench extra for libimagequant's columns)."""
    outputs = []
    for script, *extra in (("size.py",), ("quantize.py",)):
        result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), str(corpus), *extra],
                                capture_output=True, text=True, check=True)
        outputs.append(result.stdout)
    return "\n".join(outputs)


def readme_info_block(text: str) -> str:
    """The output the README shows under its `$ kmq info ...` line."""
    start = text.index(f"$ {INFO_COMMAND}\n") + len(f"$ {INFO_COMMAND}\n")
    return text[start : text.index("\n$ ", start) + 1]


def readme_numpy_block(text: str) -> str:
    """The output block that follows the README's numpy example."""
    code_end = text.index("print(size_report(array.shape, 16).table())")
    start = text.index("```\n", text.index("```\n", code_end) + 4) + 4
    return text[start : text.index("```\n", start)]


def documents_text() -> str:
    """README.md and docs/*.md, one after the other."""
    return "\n".join(path.read_text() for path in DOCUMENTS)


def updated_readme(text: str) -> str:
    """The text of one document with its examples regenerated (those it holds)."""
    if f"$ {INFO_COMMAND}\n" in text:
        text = text.replace(readme_info_block(text), info_example(), 1)
    if "print(size_report(array.shape, 16).table())" in text:
        text = text.replace(readme_numpy_block(text), numpy_example(), 1)
    return re.sub(r"\d[\d,]* \+ \d+ bits, [\d.]+% of its [\d,]+ raw bits", tutorial_example(), text, count=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md, docs/*.md and benchmarks/sheet.png")
    parser.add_argument("--corpus", type=Path,
                        help="Kodak folder: also run benchmarks/size.py and quantize.py")
    args = parser.parse_args()
    print(f"$ {INFO_COMMAND}\n{info_example()}")
    print(numpy_example())
    print(tutorial_example())
    if args.write:
        for path in DOCUMENTS:
            path.write_text(updated_readme(path.read_text()))
        write_sheet()
        print(f"\nwrote {', '.join(str(path.relative_to(REPO)) for path in DOCUMENTS)} and benchmarks/sheet.png")
    if args.corpus:
        print(corpus_tables(args.corpus))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
