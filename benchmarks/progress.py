"""How often progress(stage, done, total) speaks on a large save: the
longest silences, which a progress bar shows as a bar standing still.

    .venv/bin/python benchmarks/progress.py IMAGE_OR_FOLDER [--megapixels 48] [--colors 256] [--plain]

The image (a folder's first PNG, sorted) is scaled up to about MEGAPIXELS
(bicubic, with +-3 of noise so that it holds a photo's million or so
distinct colours rather than the original's few) and saved to memory with
optimize=True (--plain: the default raw coding), timing every progress
call. Prints the CPU model, the load average before and after, the total
time, the calls per stage and the ten longest gaps between calls, each
with the calls on either side, in wall time and in this process's CPU
time. Gaps in wall time grow with the machine's load; the CPU time of a
gap is what it would take on a quiet machine where one thread works
(where two threads code bands, half of it).
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

import pil_kmq  # noqa: F401  (registers KMQ)
from machine import cpu_model  # noqa: E402




def large_image(path: Path, megapixels: float) -> Image.Image:
    with Image.open(path) as im:
        im = im.convert("RGB")
    scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
    noise = np.random.default_rng(0).integers(-3, 4, (im.height, im.width, 3))
    return Image.fromarray(np.clip(np.asarray(im).astype(np.int16) + noise, 0, 255).astype(np.uint8))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="an image, or a folder whose first PNG is used")
    parser.add_argument("--megapixels", type=float, default=48.0)
    parser.add_argument("--colors", type=int, default=256)
    parser.add_argument("--plain", action="store_true", help="the raw coding instead of optimize=True")
    args = parser.parse_args()
    path = sorted(args.source.glob("*.png"))[0] if args.source.is_dir() else args.source
    im = large_image(path, args.megapixels)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load before: {os.getloadavg()[0]:.2f}")
    print(f"{path.name} scaled to {im.width}x{im.height} ({im.width * im.height / 1e6:.1f} MP), "
          f"colors={args.colors}, optimize={not args.plain}")
    calls: list[tuple[float, str, int, int, float]] = []
    start, cpu_start = time.perf_counter(), time.process_time()

    def progress(stage: str, done: int, total: int) -> None:
        calls.append((time.perf_counter() - start, stage, done, total, time.process_time() - cpu_start))

    im.save(io.BytesIO(), "KMQ", colors=args.colors, optimize=not args.plain, progress=progress)
    calls.append((time.perf_counter() - start, "(saved)", 0, 0, time.process_time() - cpu_start))
    calls.insert(0, (0.0, "(start)", 0, 0, 0.0))
    print(f"total {calls[-1][0]:.2f} s wall, {calls[-1][4]:.2f} s CPU; load after: {os.getloadavg()[0]:.2f}")
    for stage in dict.fromkeys(call[1] for call in calls[1:-1]):
        heard = [call for call in calls if call[1] == stage]
        print(f"  {stage:<9} {len(heard):4d} calls, last total {heard[-1][3]}")
    gaps = sorted(((after[0] - before[0], before, after) for before, after in zip(calls, calls[1:])), reverse=True)
    print("longest silences (wall, CPU):")
    for gap, before, after in gaps[:10]:
        print(f"  {gap:6.3f} s {after[4] - before[4]:6.3f} s  "
              f"{before[1]} {before[2]}/{before[3]} -> {after[1]} {after[2]}/{after[3]}")
    cpu_gaps = sorted(((after[4] - before[4], before, after) for before, after in zip(calls, calls[1:])), reverse=True)
    print("longest silences in CPU time: " + ", ".join(
        f"{gap:.3f} s ({before[1]} {before[2]}/{before[3]})" for gap, before, _ in cpu_gaps[:5]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
