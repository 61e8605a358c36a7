"""optimize=True .kmq against PNG-8 and WebP lossless on the same labels.

    python benchmarks/webp_gap.py CORPUS_DIR [CORPUS_DIR ...] [--k 16,64,256]
                                  [--cache DIR] [--limit N] [--per-image]

Each image (*.png, sorted) is quantized once per K by pil_kmq.compress in
its own mode (RGBA stays RGBA, anything else becomes RGB), the labels and
codebook cached in --cache as .npz. The same labels and codebook are then
stored as

- .kmq, write_file(optimize=True): what Image.save(optimize=True) writes,
- PNG-8: a P image with the codebook as palette (RGBA codebooks as an RGBA
  palette, so Pillow writes tRNS), saved by Pillow with optimize=True,
- WebP lossless: the RGB or RGBA image codebook[labels] (what Pillow hands
  libwebp for a P image anyway), saved by Pillow with lossless=True,
  method=6, quality=100 and exact=True (so libwebp keeps every pixel as
  given, as .kmq does); libwebp finds the palette itself.

Printed per set and K: total bytes of each, and .kmq / WebP and .kmq / PNG-8
as ratios of the totals and as the median and maximum of per-image ratios.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pil_kmq  # noqa: E402
from pil_kmq.format import write_file  # noqa: E402


def image_array(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB"
        return np.asarray(image.convert(mode))


def labels_for(path: Path, k: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, codebook) of the image at K, from the cache when there."""
    cached = cache / f"{path.parent.name}_{path.stem}_k{k}.npz" if cache else None
    if cached is not None and cached.exists():
        data = np.load(cached)
        return data["labels"], data["codebook"]
    labels, codebook = pil_kmq.compress(image_array(path), k)
    if cached is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cached, labels=labels, codebook=codebook)
    return labels, codebook


def saved(image: Image.Image, format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **params)
    return buffer.getvalue()


def png8(labels: np.ndarray, codebook: np.ndarray) -> bytes:
    image = Image.fromarray(labels, "P")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[codebook.shape[1]]
    palette = codebook if mode != "L" else np.repeat(codebook, 3, axis=1)
    image.putpalette(palette.tobytes(), "RGBA" if mode == "RGBA" else "RGB")
    return saved(image, "PNG", optimize=True)


def webp_lossless(labels: np.ndarray, codebook: np.ndarray) -> bytes:
    pixels = codebook[labels]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[codebook.shape[1]]
    image = Image.fromarray(pixels if mode != "L" else pixels[:, :, 0], mode)
    return saved(image, "WEBP", lossless=True, method=6, quality=100, exact=True)


def kmq_optimize(labels: np.ndarray, codebook: np.ndarray) -> bytes:
    return write_file(labels, codebook, optimize=True)


CODERS = {"kmq": kmq_optimize, "PNG-8": png8, "WebP-LL": webp_lossless}


def measure(paths: list[Path], k: int, cache: Path | None) -> list[dict[str, int]]:
    """Bytes of every coder's file, one dict per image."""
    rows = []
    for path in paths:
        labels, codebook = labels_for(path, k, cache)
        rows.append({"name": path.stem, **{name: len(code(labels, codebook)) for name, code in CODERS.items()}})
    return rows


def report(corpus: Path, k: int, rows: list[dict[str, int]], per_image: bool) -> None:
    totals = {name: sum(row[name] for row in rows) for name in CODERS}
    line = "  ".join(f"{name} {total:>10,}" for name, total in totals.items())
    ratios = []
    for anchor in ("WebP-LL", "PNG-8"):
        each = [row["kmq"] / row[anchor] for row in rows]
        ratios.append(
            f"kmq/{anchor} {totals['kmq'] / totals[anchor]:.3f} "
            f"(median {statistics.median(each):.3f}, max {max(each):.3f}, "
            f"{sum(r > 1 for r in each)}/{len(each)} > 1)"
        )
    print(f"{corpus.name:<14} K={k:<4} {line}  |  " + "  ".join(ratios), flush=True)
    if per_image:
        for row in rows:
            print(f"    {row['name']:<40} " + "  ".join(f"{row[n]:>8}" for n in CODERS)
                  + f"  {row['kmq'] / row['WebP-LL']:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpora", type=Path, nargs="+")
    parser.add_argument("--k", default="16,64,256", help="comma-separated K values")
    parser.add_argument("--cache", type=Path, default=None, help="directory for cached labels (.npz)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--per-image", action="store_true", help="print every image's sizes")
    args = parser.parse_args(argv)
    for corpus in args.corpora:
        paths = sorted(corpus.glob("*.png"))[: args.limit]
        if not paths:
            raise SystemExit(f"no .png files in {corpus}")
        for k in (int(v) for v in args.k.split(",")):
            report(corpus, k, measure(paths, k, args.cache), args.per_image)


if __name__ == "__main__":
    main()
