"""Side-by-side colour quantization benchmark: pil_kmq against scikit-learn
KMeans (the tutorial's settings), libimagequant and Pillow's median cut.

    python benchmarks/quantize.py CORPUS_DIR [--k 16,64,256] [--skip-sklearn]
                                  [--limit N] [--sklearn-limit N] [--repeat R]
    python benchmarks/quantize.py CORPUS_DIR --big [--k 256]

PSNR is over the whole set: 10 log10(255^2 / MSE) with the MSE over every
pixel and channel of every image (no dithering anywhere). Times are totals
over the images, measured in the same run so that ratios are fair; on a busy
machine quote the ratios, not the absolutes. scikit-learn at K=256 takes
minutes: --sklearn-limit runs it on the first N images only and its row then
says so (its PSNR and time cover those images; the ratio is per image).
--big instead measures one 24-megapixel image (6000x4000) made from the
corpus image with the most distinct colours, twice: tiled (its own colours repeated) and upscaled
bicubically (about a million distinct colours): pil_kmq's time and peak
memory above the image itself (tracemalloc), and libimagequant's time.
Not a unit test: nothing here is imported by the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pil_kmq.api import compress, reconstruct  # noqa: E402


def load_corpus_paths(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".ppm", ".bmp", ".tif", ".tiff"})
    if not paths:
        raise SystemExit(f"no images in {folder}")
    return paths


def load_corpus(folder: Path, limit: int | None) -> list[np.ndarray]:
    paths = load_corpus_paths(folder)
    if limit:
        paths = paths[:limit]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def quantize_pil_kmq(image: np.ndarray, k: int) -> np.ndarray:
    labels, codebook = compress(image, k)
    return reconstruct(labels, codebook, image.shape)


def quantize_sklearn(image: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    pixels = image.reshape(-1, 3).astype(np.float64)
    model = KMeans(n_clusters=k, n_init="auto", max_iter=300, random_state=0).fit(pixels)
    codebook = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
    return codebook[model.labels_].reshape(image.shape)


def quantize_imagequant(image: np.ndarray, k: int) -> np.ndarray:
    import imagequant

    result = imagequant.quantize_pil_image(
        Image.fromarray(image), dithering_level=0.0, max_colors=k
    )
    return np.asarray(result.convert("RGB"))


def quantize_median_cut(image: np.ndarray, k: int) -> np.ndarray:
    result = Image.fromarray(image).quantize(
        colors=k, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    return np.asarray(result.convert("RGB"))


METHODS = {
    "pil_kmq": quantize_pil_kmq,
    "scikit-learn": quantize_sklearn,
    "libimagequant": quantize_imagequant,
    "Pillow median cut": quantize_median_cut,
}


def run(method, images: list[np.ndarray], k: int, repeat: int) -> tuple[float, float]:
    """(PSNR of the mean MSE over the images, best-of-`repeat` total seconds)."""
    best = float("inf")
    for _ in range(repeat):
        squared_error = 0.0
        values = 0
        elapsed = 0.0
        for image in images:
            start = time.perf_counter()
            quantized = method(image, k)
            elapsed += time.perf_counter() - start
            difference = quantized.astype(np.float64) - image
            squared_error += float((difference * difference).sum())
            values += image.size
        best = min(best, elapsed)
    mse = squared_error / values
    psnr = 10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf")
    return psnr, best


def big_images(folder: Path) -> dict[str, np.ndarray]:
    """The corpus image with the most distinct colours (the hardest case),
    tiled and upscaled to 6000x4000."""
    from pil_kmq.quantize.histogram import histogram

    images = [Image.open(p).convert("RGB") for p in load_corpus_paths(folder)]
    first = max(images, key=lambda im: len(histogram(np.asarray(im).reshape(-1, 3))[0]))
    tile = np.asarray(first)
    reps = (-(-4000 // tile.shape[0]), -(-6000 // tile.shape[1]), 1)
    return {
        "tiled": np.ascontiguousarray(np.tile(tile, reps)[:4000, :6000]),
        "upscaled": np.asarray(first.resize((6000, 4000), Image.Resampling.BICUBIC)),
    }


def run_big(folder: Path, ks: list[int]) -> None:
    import tracemalloc

    print("24-megapixel image (6000x4000 RGB, 72 MB), no dithering")
    print(f"{'K':>4}  {'image':<9} {'colours':>9} {'pil_kmq s':>9} {'peak MB':>8} {'x image':>7} {'liq s':>7}")
    for name, image in big_images(folder).items():
        from pil_kmq.quantize.histogram import histogram

        distinct = len(histogram(image.reshape(-1, 3))[0])
        for k in ks:
            tracemalloc.start()
            start = time.perf_counter()
            compress(image, k)
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            start = time.perf_counter()
            quantize_imagequant(image, k)
            liq_seconds = time.perf_counter() - start
            print(
                f"{k:>4}  {name:<9} {distinct:>9,} {seconds:>9.2f} {peak / 1e6:>8.0f} "
                f"{peak / image.nbytes:>7.2f} {liq_seconds:>7.2f}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--k", default="16,64,256", help="comma-separated K values")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--sklearn-limit", type=int, default=None, help="scikit-learn on the first N images only")
    parser.add_argument("--repeat", type=int, default=1, help="best of R timings (not sklearn)")
    parser.add_argument("--methods", default=None, help="comma-separated subset of: " + ", ".join(METHODS))
    parser.add_argument("--big", action="store_true", help="time and memory on a 24-megapixel image instead")
    args = parser.parse_args(argv)
    if args.big:
        run_big(args.corpus, [int(v) for v in args.k.split(",")] if args.k != "16,64,256" else [256])
        return

    images = load_corpus(args.corpus, args.limit)
    names = list(METHODS) if args.methods is None else [m.strip() for m in args.methods.split(",")]
    if args.skip_sklearn and "scikit-learn" in names:
        names.remove("scikit-learn")
    print(f"{len(images)} images from {args.corpus}, no dithering; time = total seconds over the images")
    header = f"{'K':>4}  {'method':<18} {'images':>6} {'PSNR dB':>8} {'time s':>8} {'s/image':>8} {'vs pil_kmq':>10}"
    print(header)
    print("-" * len(header))
    for k in (int(v) for v in args.k.split(",")):
        results = {}
        for name in names:
            subset = images
            repeat = args.repeat
            if name == "scikit-learn":
                repeat = 1
                if args.sklearn_limit:
                    subset = images[: args.sklearn_limit]
            psnr, seconds = run(METHODS[name], subset, k, repeat)
            results[name] = (psnr, seconds, len(subset))
        own = results.get("pil_kmq")
        for name, (psnr, seconds, count) in results.items():
            per_image = seconds / count
            ratio = f"{per_image / (own[1] / own[2]):.2f}x" if own else "-"
            print(f"{k:>4}  {name:<18} {count:>6} {psnr:>8.3f} {seconds:>8.2f} {per_image:>8.3f} {ratio:>10}", flush=True)
        print()


if __name__ == "__main__":
    main()
