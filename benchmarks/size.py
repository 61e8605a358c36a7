"""File size and decode time of each .kmq coding against PNG-8 and WebP lossless.

    python benchmarks/size.py CORPUS_DIR [--k 16,64,256] [--cache DIR] [--limit N]

For every image in CORPUS_DIR (*.png, sorted) and every K, the labels and
codebook come from pil_kmq.compress (cached in --cache as .npz, since the
k-means is slow at K=256). The same labels and palette are then stored as

- raw .kmq (coding 0, the default),
- each compressed coding (its best band height / stream setting, palette
  reordered as optimize=True does),
- .kmq with optimize=True (the smallest of all),
- PNG-8 (Pillow, optimize=True) and WebP lossless (method=6, quality=100)
  of the P image with that palette,

and the script prints total bytes and bits per pixel (whole files, headers
and palettes included), the ratio of optimize to PNG-8 and WebP, and the
median decode time per image (Image.open + load, to RGB colours for .kmq,
to P for PNG-8).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pil_kmq  # noqa: E402  (registers the format)
from pil_kmq.format import coding, container, entropy  # noqa: E402


def labels_for(path: Path, k: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if cache is not None:
        cached = cache / f"{path.stem}_k{k}.npz"
        if cached.exists():
            data = np.load(cached)
            return data["labels"], data["codebook"]
    array = np.asarray(Image.open(path).convert("RGB"))
    labels, codebook = pil_kmq.compress(array, k)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"{path.stem}_k{k}.npz", labels=labels, codebook=codebook)
    return labels, codebook


def kmq_file(labels: np.ndarray, codebook: np.ndarray, number: int, payload: bytes) -> bytes:
    height, width = labels.shape
    header = container.Header(
        width=width, height=height, channels=codebook.shape[1], k=len(codebook), coding=number
    )
    return container.build(header, codebook.tobytes(), payload)


def p_image(labels: np.ndarray, codebook: np.ndarray) -> Image.Image:
    image = Image.fromarray(labels, "P")
    image.putpalette(codebook.tobytes(), "RGB")
    return image


def decode_time(data: bytes, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        best = min(best, time.perf_counter() - start)
    return best


def run(corpus: Path, ks: list[int], cache: Path | None, limit: int | None) -> None:
    paths = sorted(corpus.glob("*.png"))[:limit]
    if not paths:
        raise SystemExit(f"no .png files in {corpus}")
    names = ["raw"] + [coding.NAMES[n] for n in entropy.STREAM_CODINGS] + ["optimize", "PNG-8", "WebP-LL"]
    print(f"{len(paths)} images from {corpus}; sizes are whole files; bpp = 8*bytes/pixels")
    for k in ks:
        sizes = {name: 0 for name in names}
        times: dict[str, list[float]] = {name: [] for name in names if name != "optimize"}
        pixels = 0
        encode_seconds = 0.0
        for path in paths:
            labels, codebook = labels_for(path, k, cache)
            pixels += labels.size
            files = {"raw": kmq_file(labels, codebook, coding.RAW, coding.encode(labels, len(codebook)))}
            start = time.perf_counter()
            number, book, payload = coding.smallest(labels, codebook)
            encode_seconds += time.perf_counter() - start
            files["optimize"] = kmq_file(labels, book, number, payload)
            order = entropy.reorder_palette(labels, len(codebook))
            relabelled, rebook = entropy.apply_order(labels, codebook, order)
            best: dict[int, bytes] = {}
            for num, pay in entropy.candidates(relabelled, len(codebook)):
                if num not in best or len(pay) < len(best[num]):
                    best[num] = pay
            for num, pay in best.items():
                files[coding.NAMES[num]] = kmq_file(relabelled, rebook, num, pay)
            image = p_image(labels, codebook)
            buffer = io.BytesIO()
            image.save(buffer, "PNG", optimize=True)
            files["PNG-8"] = buffer.getvalue()
            buffer = io.BytesIO()
            image.save(buffer, "WEBP", lossless=True, method=6, quality=100)
            files["WebP-LL"] = buffer.getvalue()
            for name in names:
                sizes[name] += len(files[name])
                if name in times and name != "WebP-LL":
                    times[name].append(decode_time(files[name]))
        print(f"\nK={k}  ({len(paths)} images, {pixels:,} pixels; optimize encode "
              f"{encode_seconds / len(paths):.2f} s/image for the coding)")
        print(f"{'format':<10}{'bytes':>12}{'bpp':>8}{'decode ms':>11}")
        for name in names:
            ms = f"{1000 * statistics.median(times[name]):.1f}" if times.get(name) else "-"
            print(f"{name:<10}{sizes[name]:>12,}{8 * sizes[name] / pixels:>8.3f}{ms:>11}")
        opt = sizes["optimize"]
        print(f"optimize / PNG-8 = {opt / sizes['PNG-8']:.3f} (goal <= 0.8);  "
              f"optimize / WebP-LL = {opt / sizes['WebP-LL']:.3f} (goal <= 1)")
        raw_ms = statistics.median(times["raw"])
        ratios = ", ".join(
            f"{coding.NAMES[n]} {statistics.median(times[coding.NAMES[n]]) / raw_ms:.2f}x"
            for n in entropy.STREAM_CODINGS
        )
        print(f"decode time vs raw: {ratios}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--k", default="16,64,256", help="comma-separated K values")
    parser.add_argument("--cache", type=Path, default=None, help="directory for cached labels (.npz)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    args = parser.parse_args(argv)
    ks = [int(v) for v in args.k.split(",")]
    run(args.corpus, ks, args.cache, args.limit)


if __name__ == "__main__":
    main()
