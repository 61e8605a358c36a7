"""Build the public image sets the benchmarks are measured on, besides Kodak.

    python benchmarks/corpora.py OUT_DIR

writes OUT_DIR/skimage_photos, OUT_DIR/icons and OUT_DIR/screenshots:

- skimage_photos: the 9 colour photographs that ship in scikit-image's
  wheel (astronaut, chelsea, coffee, hubble_deep_field, ihc,
  motorcycle_left, motorcycle_right, retina, rocket).
- icons: 64 RGBA icons with soft alpha, 256x256, from Debian's
  oxygen-icon-theme (every n-th of those whose alpha has more than 2 %
  pixels strictly between 0 and 255, in sorted path order).
- screenshots: 40 GNOME desktop screenshots from Debian's gnome-user-docs
  (the help's figures in every language, byte-distinct, at least 150 px on
  the short side and more than 300 colours; every n-th in sorted order).

It needs pip and apt-get (Debian's `apt-get download`, no root install):
the selection rules above are the whole recipe, so the sets are the same on
every machine that gets the same package versions (noted in
OUT_DIR/SOURCES.txt). Not imported by the tests.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
                  "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg")
ICON_COUNT = 64
SCREENSHOT_COUNT = 40


def every_nth(paths: list[Path], count: int) -> list[Path]:
    return paths[::max(1, len(paths) // count)][:count]


def skimage_photos(work: Path, out: Path) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "scikit-image", "-d", str(work)],
                   check=True)
    wheel = next(work.glob("scikit_image-*.whl"))
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in SKIMAGE_PHOTOS:
            (out / name).write_bytes(archive.read(f"skimage/data/{name}"))
    return wheel.name


def debian_package(name: str, work: Path) -> tuple[Path, str]:
    subprocess.run(["apt-get", "download", "-q", name], cwd=work, check=True)
    deb = next(work.glob(f"{name}_*.deb"))
    tree = work / name
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    return tree, deb.name


def icons(work: Path, out: Path) -> str:
    tree, source = debian_package("oxygen-icon-theme", work)
    soft = []
    for path in sorted(tree.rglob("256x256/*/*.png")):
        with Image.open(path) as im:
            if im.mode != "RGBA":
                continue
            alpha = np.asarray(im)[..., 3]
        if ((alpha > 0) & (alpha < 255)).mean() > 0.02:
            soft.append(path)
    out.mkdir(parents=True, exist_ok=True)
    for path in every_nth(soft, ICON_COUNT):
        shutil.copy(path, out / f"{path.parent.name}-{path.name}")
    return source


def screenshots(work: Path, out: Path) -> str:
    tree, source = debian_package("gnome-user-docs", work)
    seen, kept = set(), []
    for path in sorted((tree / "usr/share/help").rglob("*.png")):
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        with Image.open(path) as im:
            if min(im.size) < 150 or im.mode not in ("RGB", "RGBA", "P"):
                continue
            rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
        if len(np.unique(rgb, axis=0)) > 300:
            kept.append(path)
    out.mkdir(parents=True, exist_ok=True)
    for path in every_nth(kept, SCREENSHOT_COUNT):
        language = path.relative_to(tree / "usr/share/help").parts[0]
        shutil.copy(path, out / f"{language}-{path.name}")
    return source


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        sources = [skimage_photos(work, out / "skimage_photos"),
                   icons(work, out / "icons"),
                   screenshots(work, out / "screenshots")]
    (out / "SOURCES.txt").write_text("\n".join(sources) + "\n")
    print("\n".join(sources))


if __name__ == "__main__":
    main()
