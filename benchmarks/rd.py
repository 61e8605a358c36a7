"""Rate-distortion curves (bits per pixel vs PSNR) of .kmq against libimagequant + PNG-8 / WebP / JPEG XL.

    python benchmarks/rd.py CORPUS_DIR [--out benchmarks/rd.png] [--cache DIR] [--jobs N] [--limit N]

Curves, each point aggregated over the images (mean PSNR, total bits over
total pixels; whole files):

- kmq colors=K, optimize=True (nearest labels), K = --k;
- kmq colors=K, smooth=s, optimize=True, for each s of --smooth (K = --k-smooth);
- kmq psnr=T (quality=T before the option's rename: the PSNR target, K and
  smoothing searched), optimize=True,
  T = --targets dB; every image must meet T (checked, the run fails if not);
- libimagequant at K (C API, speed 4, no dithering), its remapped image
  stored as PNG-8 (Pillow, optimize), WebP lossless (method 6) and JPEG XL
  lossless (effort 9, imagecodecs).

Every file is decoded again and PSNR measured against the original. The
script prints the curves and the BD-rates (Bjontegaard delta rate: cubic fit
of log rate against PSNR, mean difference over the shared PSNR range) of the
PSNR-target curve against the others, and draws them into --out.
Per-image results are kept in --cache (JSON) so an interrupted run resumes.
The remap's cost against a plain save: benchmarks/remap_time.py.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pil_kmq  # noqa: E402  (registers the format)
from pil_kmq.quantize.metrics import mean_squared_error, psnr_from_mse  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from liq import liq_labels  # noqa: E402


def target_keyword() -> str:
    """The save option of the PSNR target: psnr= where the encoder has it, else quality=."""
    try:
        from pil_kmq.options import Options
    except ImportError:
        from pil_kmq.api import Options
    return "psnr" if "psnr" in Options.__dataclass_fields__ else "quality"


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    return psnr_from_mse(mean_squared_error(original.reshape(-1, 3), decoded.reshape(-1, 3)))


def kmq_point(image: Image.Image, original: np.ndarray, **options) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, "KMQ", optimize=True, **options)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        k = decoded.info["colors"]
        rgb = np.asarray(decoded.convert("RGB"))
    return {"bytes": len(buffer.getvalue()), "psnr": psnr(original, rgb), "k": k}


def imagequant_p(image: Image.Image, k: int) -> Image.Image:
    """libimagequant through its C API: speed 4, no dithering, as a P image."""
    _, label_map, codebook = liq_labels(image, k, 4)
    p = Image.fromarray(label_map, "P")
    p.putpalette(codebook.tobytes(), "RGB")
    return p


def imagequant_points(original: np.ndarray, k: int) -> dict:
    import imagecodecs

    p = imagequant_p(Image.fromarray(original), k)
    rgb = np.asarray(p.convert("RGB"))
    sizes = {}
    for name, fmt, options in (("png8", "PNG", {"optimize": True}),
                               ("webp", "WEBP", {"lossless": True, "method": 6, "quality": 100})):
        buffer = io.BytesIO()
        p.save(buffer, fmt, **options)
        sizes[name] = len(buffer.getvalue())
    jxl = imagecodecs.jpegxl_encode(rgb, lossless=True, effort=9)
    assert np.array_equal(imagecodecs.jpegxl_decode(jxl), rgb)
    sizes["jxl"] = len(jxl)
    return {"psnr": psnr(original, rgb), **sizes}


def measure_image(path: Path, args: argparse.Namespace) -> dict:
    image = Image.open(path).convert("RGB")
    original = np.asarray(image)

    def section(name: str, compute) -> dict:
        """One part of the results, from --cache (one JSON file per image and part) if there."""
        cached = args.cache / f"{path.stem}.{name}.json" if args.cache else None
        if cached is not None and cached.exists():
            return json.loads(cached.read_text())
        part = compute()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(part))
        return part

    def targets() -> dict:
        part = {}
        for target in args.targets:
            point = kmq_point(image, original, **{target_keyword(): target})
            if point["k"] < 256 and point["psnr"] < target:
                raise SystemExit(f"{path.name}: target {target} dB missed ({point['psnr']:.3f} dB)")
            part[str(target)] = point
        return part

    result = {
        "pixels": original.shape[0] * original.shape[1],
        "nearest": section("nearest", lambda: {str(k): kmq_point(image, original, colors=k) for k in args.k}),
        "liq": section("liq", lambda: {str(k): imagequant_points(original, k) for k in args.k}),
        "smooth": {
            str(s): section(f"smooth{s}", lambda s=s: {str(k): kmq_point(image, original, colors=k, smooth=s)
                                                       for k in args.k_smooth})
            for s in args.smooth
        },
        "target": section("target", targets),
    }
    print(f"  {path.name} done", file=sys.stderr, flush=True)
    return result


def curve(results: list[dict], points_of) -> list[tuple[float, float]]:
    """(bpp, mean PSNR) per operating point, over every image."""
    pixels = sum(r["pixels"] for r in results)
    keys = points_of(results[0]).keys()
    out = []
    for key in keys:
        points = [points_of(r)[key] for r in results]
        out.append((8 * sum(p[0] for p in points) / pixels, float(np.mean([p[1] for p in points]))))
    return sorted(out, key=lambda point: point[1])


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float:
    """Bjontegaard delta rate of test against anchor (negative: test smaller),
    over the PSNR range both curves cover."""
    fits = []
    for points in (anchor, test):
        rates, psnrs = np.array(points).T
        fits.append(np.polyfit(psnrs, np.log(rates), min(3, len(points) - 1)))
    low = max(min(p for _, p in anchor), min(p for _, p in test))
    high = min(max(p for _, p in anchor), max(p for _, p in test))
    if high <= low:
        return float("nan")
    integrals = [np.polyval(np.polyint(fit), high) - np.polyval(np.polyint(fit), low) for fit in fits]
    return float(np.exp((integrals[1] - integrals[0]) / (high - low)) - 1)


def curves(results: list[dict], args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    def pick(section, field="bytes", sub=None):
        def points_of(r):
            part = r[section] if sub is None else r[section][sub]
            return {key: (p[field], p["psnr"]) for key, p in part.items()}
        return points_of

    out = {"kmq psnr= target (K and smooth searched)": curve(results, pick("target")),
           "kmq colors=K (nearest)": curve(results, pick("nearest"))}
    for s in args.smooth:
        out[f"kmq colors=K, smooth={s}"] = curve(results, pick("smooth", sub=str(s)))
    for field, name in (("jxl", "JPEG XL lossless e9"), ("webp", "WebP lossless"), ("png8", "PNG-8")):
        out[f"libimagequant + {name}"] = curve(results, pick("liq", field))
    return out


def draw(named: dict[str, list[tuple[float, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=110)
    for index, (name, points) in enumerate(named.items()):
        bpp, db = zip(*points)
        dashed = name.startswith("libimagequant")
        axes.plot(bpp, db, linestyle="--" if dashed else "-", marker="o" if index == 0 else ".",
                  label=name, linewidth=2.2 if index == 0 else 1.2)
    axes.set_xlabel("bits per pixel (whole files)")
    axes.set_ylabel("PSNR (dB, mean over images)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


def numbers(text: str, kind=float) -> list:
    return [kind(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--k", type=lambda t: numbers(t, int), default=[16, 24, 32, 48, 64, 96, 128, 192, 256])
    parser.add_argument("--k-smooth", type=lambda t: numbers(t, int), default=[16, 32, 64, 128, 256])
    parser.add_argument("--smooth", type=numbers, default=[1.0, 4.0])
    parser.add_argument("--targets", type=numbers, default=[27.0, 29.0, 31.0, 33.0, 35.0, 37.0, 39.0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("rd.png"))
    parser.add_argument("--cache", type=Path, default=None, help="directory for per-image results (JSON)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--reverse", action="store_true",
                        help="work through the images last first (a second run sharing --cache meets the first)")
    args = parser.parse_args(argv)
    paths = sorted(args.corpus.glob("*.png"))[: args.limit]
    if args.reverse:
        paths.reverse()
    if not paths:
        raise SystemExit(f"no .png files in {args.corpus}")
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(measure_image, paths, [args] * len(paths)))
    named = curves(results, args)
    print(f"{len(paths)} images from {args.corpus}; bpp = 8 * total bytes / total pixels, PSNR = mean over images")
    for name, points in named.items():
        print(f"\n{name}\n" + "  ".join(f"{bpp:.3f} bpp {db:.2f} dB" for bpp, db in points))
    lead, *others = named
    print(f"\nBD-rate of '{lead}' against:")
    for name in others:
        print(f"  {name:<45} {100 * bd_rate(named[name], named[lead]):+6.1f}%")
    draw(named, args.out, f"Rate-distortion, {len(paths)} images of {args.corpus.name}")
    print(f"\ncurves drawn in {args.out}")


if __name__ == "__main__":
    main()
