"""File size, decode and encode time of each .kmq coding against PNG-8, WebP
lossless and (if pillow-jxl-plugin is installed) JPEG XL lossless.

    python benchmarks/size.py CORPUS_DIR [--k 16,64,256] [--cache DIR] [--limit N]

For every image in CORPUS_DIR (*.png, sorted) and every K, the labels and
codebook come from pil_kmq.compress (cached in --cache as .npz, since the
k-means is slow at K=256). The same labels and codebook are then stored as

- raw .kmq (coding 0, the default), zlib, xz and zstd as
  Image.save(coding=...) writes them, and .kmq with optimize=True (the
  smallest the format has),
- PNG-8 (Pillow, optimize=True), WebP lossless (method=6, quality=100) and
  JPEG XL lossless of the P image with that palette,

and the script prints total bytes and bits per pixel (whole files), the
median over images of the best of --repeat decode times (Image.open + load, to RGB
or RGBA for .kmq, to P for PNG-8) with 1 thread and with every core, and what
a zstd and an optimize encode cost against a plain (raw) one, quantization
included (timed once per image, it is the same for all; the writes are timed
interleaved, best of 3). Images with alpha (icons) are quantized as RGBA and
stored with an RGBA palette in every format.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pil_kmq  # noqa: E402  (registers the format)
from machine import cpu_model  # noqa: E402
from pil_kmq.format import parallel, write_file  # noqa: E402
from pil_kmq.format.container import XZ, ZLIB, ZSTD  # noqa: E402

try:
    import pillow_jxl  # noqa: F401  (registers JXL)

    HAVE_JXL = True
except ImportError:
    HAVE_JXL = False

# pil_kmq 0.1.0 (format version 1), optimize=True, on Kodak with the labels
# of pil_kmq 0.3.1's k-means (0.1.0's benchmarks/size.py run with the same
# --cache): the anchors the banded format is held to. They move with the
# k-means: re-measure them when its output changes.
V1_OPTIMIZE_BPP = {16: 1.314, 64: 2.432, 256: 3.726}
KMQ_NAMES = ("raw", "zlib", "xz", "zstd", "optimize")


def image_mode(image: Image.Image) -> str:
    """RGBA for images with alpha (icons), else RGB."""
    return "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"




def labels_for(path: Path, k: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if cache is not None:
        cached = cache / f"{path.stem}_k{k}.npz"
        if cached.exists():
            data = np.load(cached)
            return data["labels"], data["codebook"]
    with Image.open(path) as image:
        array = np.asarray(image.convert(image_mode(image)))
    labels, codebook = pil_kmq.compress(array, k)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"{path.stem}_k{k}.npz", labels=labels, codebook=codebook)
    return labels, codebook


def p_image(labels: np.ndarray, codebook: np.ndarray) -> Image.Image:
    image = Image.fromarray(labels, "P")
    image.putpalette(codebook.tobytes(), "RGBA" if codebook.shape[1] == 4 else "RGB")
    return image


def saved(image: Image.Image, format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **params)
    return buffer.getvalue()


def decode_once(data: bytes, threads: int) -> float:
    parallel.THREADS = threads
    start = time.perf_counter()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    parallel.THREADS = None
    return time.perf_counter() - start


def decode_times(files: dict[str, bytes], cores: int, repeat: int) -> dict[tuple[str, int], float]:
    """Best of `repeat` decodes of each file at 1 and `cores` threads, the
    formats interleaved so that a busy spell of the machine hits all alike."""
    best: dict[tuple[str, int], float] = {}
    for _ in range(repeat):
        for name, data in files.items():
            for threads in (1, cores) if name in KMQ_NAMES and cores > 1 else (1,):
                seconds = decode_once(data, threads)
                best[(name, threads)] = min(best.get((name, threads), seconds), seconds)
    return best


def timed(function, *args, repeat: int = 2, **kwargs):
    """(result, best seconds of `repeat` runs)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


def interleaved(writers: dict, repeat: int = 3) -> tuple[dict, dict]:
    """(outputs, best seconds) of each writer, run A, B, C, A, B, C, ..."""
    outputs, best = {}, {name: float("inf") for name in writers}
    for _ in range(repeat):
        for name, write in writers.items():
            start = time.perf_counter()
            outputs[name] = write()
            best[name] = min(best[name], time.perf_counter() - start)
    return outputs, best


def encode_all(path: Path, labels: np.ndarray, codebook: np.ndarray, k: int) -> tuple[dict, dict]:
    """The files of every format, and encode seconds (quantize, raw, zstd, optimize)."""
    with Image.open(path) as image:
        array = np.asarray(image.convert(image_mode(image)))
    _, quantize_s = timed(pil_kmq.compress, array, k)
    written, seconds = interleaved({
        "raw": lambda: write_file(labels, codebook),
        "zstd": lambda: write_file(labels, codebook, coding=ZSTD),
        "optimize": lambda: write_file(labels, codebook, optimize=True),
    })
    files = {
        "raw": written["raw"],
        "zlib": write_file(labels, codebook, coding=ZLIB),
        "xz": write_file(labels, codebook, coding=XZ),
        "zstd": written["zstd"],
        "optimize": written["optimize"],
    }
    image = p_image(labels, codebook)
    files["PNG-8"] = saved(image, "PNG", optimize=True)
    files["WebP-LL"] = saved(image, "WEBP", lossless=True, method=6, quality=100)
    if HAVE_JXL:
        files["JXL-LL"] = saved(image.convert("RGBA" if codebook.shape[1] == 4 else "RGB"), "JXL",
                                lossless=True)
    return files, {"quantize": quantize_s, **seconds}


def run(corpus: Path, ks: list[int], cache: Path | None, limit: int | None, repeat: int) -> None:
    paths = sorted(corpus.glob("*.png"))[:limit]
    if not paths:
        raise SystemExit(f"no .png files in {corpus}")
    cores = parallel.thread_count()
    print(f"{len(paths)} images from {corpus}; sizes are whole files; bpp = 8*bytes/pixels; "
          f"decode: median over images of the best of {repeat}, 1 thread and {cores} threads")
    print(f"CPU: {cpu_model()}; load average at start: {os.getloadavg()[0]:.2f}")
    for k in ks:
        sizes: dict[str, int] = {}
        times: dict[tuple[str, int], list[float]] = {}
        encode = {"quantize": 0.0, "raw": 0.0, "zstd": 0.0, "optimize": 0.0}
        pixels = 0
        for path in paths:
            labels, codebook = labels_for(path, k, cache)
            pixels += labels.size
            files, seconds = encode_all(path, labels, codebook, k)
            for name, value in seconds.items():
                encode[name] += value
            for name, data in files.items():
                sizes[name] = sizes.get(name, 0) + len(data)
            for key, seconds in decode_times(files, cores, repeat).items():
                times.setdefault(key, []).append(seconds)
        report(k, sizes, times, encode, pixels=pixels, count=len(paths), cores=cores, whole=limit is None)
        print(f"load average after K={k}: {os.getloadavg()[0]:.2f}")


def report(k, sizes, times, encode, *, pixels, count, cores, whole: bool = True) -> None:
    png_ms = 1000 * statistics.median(times[("PNG-8", 1)])
    print(f"\nK={k}  ({count} images, {pixels:,} pixels)")
    print(f"{'format':<10}{'bytes':>12}{'bpp':>8}{'ms 1 thr':>10}{'x PNG-8':>9}"
          f"{f'ms {cores} thr':>10}{'x PNG-8':>9}")
    for name, total in sizes.items():
        one = 1000 * statistics.median(times[(name, 1)])
        line = f"{name:<10}{total:>12,}{8 * total / pixels:>8.3f}{one:>10.2f}{one / png_ms:>9.2f}"
        if (name, cores) in times and cores > 1:
            many = 1000 * statistics.median(times[(name, cores)])
            line += f"{many:>10.2f}{many / png_ms:>9.2f}"
        print(line)
    opt, zstd = sizes["optimize"], sizes["zstd"]
    zstd_ms = 1000 * statistics.median(times[("zstd", 1)])
    print(f"zstd / zlib = {zstd / sizes['zlib']:.3f} (goal <= 0.95);  zstd / PNG-8 = "
          f"{zstd / sizes['PNG-8']:.3f} (goal <= 0.90);  zstd decode 1 thread / PNG-8 = "
          f"{zstd_ms / png_ms:.2f} (goal <= 1)")
    v1 = V1_OPTIMIZE_BPP.get(k)
    if v1 and whole:  # the anchors are for the whole Kodak set
        print(f"optimize bpp / v1 optimize ({v1:.3f}) = {8 * opt / pixels / v1:.4f} (goal <= 1.02)")
    print(f"optimize / PNG-8 = {opt / sizes['PNG-8']:.3f};  optimize / WebP-LL = "
          f"{opt / sizes['WebP-LL']:.3f} (goal < 1)")
    plain = encode["quantize"] + encode["raw"]
    tuned = encode["quantize"] + encode["optimize"]
    fast = encode["quantize"] + encode["zstd"]
    print(f"encode per image: quantize {encode['quantize'] / count:.3f} s, raw write "
          f"{encode['raw'] / count:.3f} s, zstd write {encode['zstd'] / count:.3f} s, optimize write "
          f"{encode['optimize'] / count:.3f} s; zstd encode / plain encode = {fast / plain:.2f} "
          f"(goal <= 1.5); optimize encode / plain encode = {tuned / plain:.2f} (goal <= 2)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--k", default="16,64,256", help="comma-separated K values")
    parser.add_argument("--cache", type=Path, default=None, help="directory for cached labels (.npz)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--repeat", type=int, default=5, help="decodes per file; the best counts")
    args = parser.parse_args(argv)
    run(args.corpus, [int(v) for v in args.k.split(",")], args.cache, args.limit, args.repeat)


if __name__ == "__main__":
    main()
