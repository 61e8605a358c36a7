"""The fixed cost of a save outside k-means (issue 20: <= 1 ms; an 8x8 save
<= 1 ms plus Pillow's own cost), for 8x8, 32x32 and 64x64 RGB and RGBA
images at K=16.

    python benchmarks/overhead.py KODAK_DIR [ICON_DIR] [--runs 300]

Per image, interleaved and best of --runs:
- save: im.save(buffer, "KMQ", colors=16), all of it;
- k-means: the time spent inside the quantizer's clustering call
  (pil_kmq.quantize.quantizer.kmeans, wrapped here; "?" if this pil_kmq has
  no such entry point), and outside = save - k-means of one run; each
  column is its own best, so save need not equal k-means + outside;
- <=K: the save of the same image reduced to 16 colours first (Pillow's
  quantize), which clusters nothing: options, histogram, labels,
  premultiplying, container, CRC and Pillow's glue alone;
- BMP: Pillow's own cost of saving the image, for scale.
Also run from benchmarks/quantize.py. Not a unit test.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

from PIL import Image

try:  # the pil_kmq on the path (PYTHONPATH=CHECKOUT measures that checkout's)
    import pil_kmq  # noqa: F401  (registers KMQ)
except ImportError:  # else this checkout's
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import pil_kmq  # noqa: F401

SIDES = (8, 32, 64)
K = 16
CLUSTERING_ENTRY_POINTS = ("kmeans",)


class ClusteringClock:
    """Wraps the quantizer's clustering call to add up the time inside it."""

    def __init__(self) -> None:
        from pil_kmq.quantize import quantizer

        self.module, self.name, self.seconds = quantizer, None, 0.0
        for name in CLUSTERING_ENTRY_POINTS:
            if callable(getattr(quantizer, name, None)):
                self.name = name
                break

    def __enter__(self) -> ClusteringClock:
        if self.name:
            self.original = getattr(self.module, self.name)

            def timed(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return self.original(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - start

            setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *exc) -> None:
        if self.name:
            setattr(self.module, self.name, self.original)


def _few_colours(im: Image.Image) -> Image.Image:
    if im.mode == "RGBA":
        return im.quantize(K, method=Image.Quantize.FASTOCTREE).convert("RGBA")
    return im.quantize(K).convert("RGB")


def measure(im: Image.Image, runs: int, clock: ClusteringClock) -> dict[str, float]:
    few = _few_colours(im)
    best = {"save": float("inf"), "kmeans": float("nan"), "outside": float("inf"), "<=K": float("inf"),
            "BMP": float("inf")}
    for _ in range(runs):
        clock.seconds = 0.0
        start = time.perf_counter()
        im.save(io.BytesIO(), "KMQ", colors=K)
        total = time.perf_counter() - start
        inside = clock.seconds
        best["save"] = min(best["save"], total)
        if clock.name:
            best["outside"] = min(best["outside"], total - inside)
            best["kmeans"] = min(inside, best["kmeans"]) if best["kmeans"] == best["kmeans"] else inside
        for name, image, fmt in (("<=K", few, "KMQ"), ("BMP", im, "BMP")):
            start = time.perf_counter()
            image.save(io.BytesIO(), fmt, **({"colors": K} if fmt == "KMQ" else {}))
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def test_images(kodak: Path, icons: Path | None) -> list[tuple[str, Image.Image]]:
    paths = sorted(kodak.glob("*.png"))
    photo = Image.open(next((p for p in paths if p.stem == "kodim23"), paths[0])).convert("RGB")
    side = min(photo.size)
    photo = photo.crop(((photo.width - side) // 2, 0, (photo.width + side) // 2, side))
    sources = [("RGB photo", photo)]
    if icons:
        sources.append(("RGBA icon", Image.open(sorted(icons.glob("*.png"))[0]).convert("RGBA")))
    return [(f"{kind} {s}x{s}", im.resize((s, s), Image.Resampling.LANCZOS)) for kind, im in sources for s in SIDES]


def overhead_lines(kodak: Path, icons: Path | None, runs: int = 300) -> list[str]:
    clock = ClusteringClock()
    lines = [
        f"save overhead outside k-means, K={K}, best of {runs} (ms); k-means = time inside "
        f"quantizer.{clock.name or '? (no entry point found)'}",
        f"{'image':<20} {'save':>7} {'k-means':>7} {'outside':>7} {'<=K':>7} {'BMP':>7}",
    ]
    print("\n".join(lines), flush=True)
    with clock:
        for name, im in test_images(kodak, icons):
            for _ in range(3):  # warm
                im.save(io.BytesIO(), "KMQ", colors=K)
            best = measure(im, runs, clock)
            cells = " ".join(f"{best[key] * 1000:>7.3f}" for key in ("save", "kmeans", "outside", "<=K", "BMP"))
            lines.append(f"{name:<20} {cells}")
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kodak", type=Path)
    parser.add_argument("icons", type=Path, nargs="?")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    overhead_lines(args.kodak, args.icons, args.runs)


if __name__ == "__main__":
    main()
