"""Time and peak memory of a save as the image grows (the scaling rows of
benchmarks/quantize.py): 512x512 and 1 MP crops, a 24 MP photograph and an
image holding all 2**24 colours.

Each measurement runs in a fresh subprocess that opens the image from a PPM
file, loads it, resets the kernel's peak-RSS mark (/proc/self/clear_refs)
and then saves: peak RSS minus RSS before the save is the save's own memory,
whatever Python freed earlier. libimagequant is timed in its own subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = r"""
import io, json, sys, time
sys.path.insert(0, {root!r})
from PIL import Image
import pil_kmq
sys.path.insert(0, {here!r})
from quantize import liq_quantize

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

method, k, repeat, paths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
total, peak = 0.0, 0.0
for path in paths:
    im = Image.open(path)
    im.load()
    best = float("inf")
    for _ in range(repeat):
        open("/proc/self/clear_refs", "w").write("5")
        before = rss("VmRSS")
        start = time.perf_counter()
        if method == "pil_kmq":
            im.save(io.BytesIO(), "KMQ", colors=k)
        else:
            liq_quantize(im, k, 4)
        best = min(best, time.perf_counter() - start)
        peak = max(peak, (rss("VmHWM") - before) / (im.width * im.height))
    total += best
print(json.dumps({{"seconds": total, "bytes_per_pixel": peak}}))
"""


def measure(method: str, paths: list[Path], k: int, repeat: int) -> dict:
    here = Path(__file__).resolve().parent
    import pil_kmq  # the child measures the same pil_kmq as its parent

    code = CHILD.format(root=str(Path(pil_kmq.__file__).resolve().parent.parent), here=str(here))
    output = subprocess.run(
        [sys.executable, "-c", code, method, str(k), str(repeat), *map(str, paths)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def distinct_count(array: np.ndarray) -> int:
    pixels = array.reshape(-1, 3).astype(np.uint32)
    return len(np.unique((pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]))


def make_cases(kodak: Path, folder: Path) -> dict[str, list[Path]]:
    """PPM files for each row; a row may sum several images."""
    photos = [Image.open(p).convert("RGB") for p in sorted(kodak.glob("*.png"))]
    richest = max(photos, key=lambda im: distinct_count(np.asarray(im)))
    cases: dict[str, list[Image.Image]] = {
        "512x512 crops (24)": [im.crop((128, 0, 640, 512)) for im in photos],
        "1 MP crops, 2x up (24)": [
            im.resize((1536, 1024), Image.Resampling.BICUBIC).crop((256, 0, 1280, 1024))
            for im in photos
        ],
        "24 MP upscaled": [richest.resize((6000, 4000), Image.Resampling.BICUBIC)],
    }
    tile = np.asarray(richest)
    cases["24 MP tiled"] = [Image.fromarray(np.tile(tile, (8, 8, 1))[:4000, :6000])]
    codes = np.random.default_rng(0).permutation(1 << 24).astype(np.uint32)
    every = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    cases["2^24 colours 4096^2"] = [Image.fromarray(every.reshape(4096, 4096, 3))]
    files = {}
    for row, images in cases.items():
        files[row] = []
        for index, im in enumerate(images):
            path = folder / f"{len(files)}-{index}.ppm"
            im.save(path)
            files[row].append(path)
    return files


def scaling_rows(kodak: Path, ks: list[int]) -> list[str]:
    lines = [
        "scaling: time (sum over a row's images, best of 3 below 2 MP) and the save's peak RSS",
        f"{'image':<24} {'colours':>10} {'K':>4} {'pil_kmq s':>9} {'B/px':>6} {'liq4 s':>7} {'ratio':>6}",
    ]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for row, paths in make_cases(kodak, Path(tmp)).items():
            colours = distinct_count(np.asarray(Image.open(paths[0])))
            small = Image.open(paths[0]).width * Image.open(paths[0]).height < 2_000_000
            for k in ks:
                ours = measure("pil_kmq", paths, k, 3 if small else 1)
                liq = measure("liq", paths, k, 3 if small else 1)
                lines.append(
                    f"{row:<24} {colours:>10,} {k:>4} {ours['seconds']:>9.2f} "
                    f"{ours['bytes_per_pixel']:>6.1f} {liq['seconds']:>7.2f} "
                    f"{ours['seconds'] / liq['seconds']:>5.2f}x"
                )
                print(lines[-1], flush=True)
    return lines
