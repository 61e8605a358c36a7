"""The encoder against its anchors, side by side in one run: PSNR and time
of pil_kmq (at speeds 1, default and 10), libimagequant (its C API, speeds
1, 4 and 10) and the cached scikit-learn best-of-ten reference, on Kodak
and on a second folder; then per image size from 32x32 to 24 MP, for
photographs and for RGBA icons with soft alpha; the save's overhead outside
k-means; and time and peak memory as the image grows.

    python benchmarks/quantize.py KODAK_DIR [OTHER_DIR] [--icons ICON_DIR]
        [--k 16,64,256] [--repeat 3] [--no-scaling]
        [--out benchmarks/results/quantize.txt]
    python benchmarks/quantize.py KODAK_DIR --icons ICON_DIR --quick   # minutes
    python benchmarks/quantize.py DIR --reference      # recompute sklearn

PSNR is over the whole set: 10 log10(255^2 / MSE), the MSE over every pixel
and channel of every image, no dithering. RGBA is compared premultiplied,
as the encoder weighs error: (r a/255, g a/255, b a/255, a) in floating
point, four channels, so a colour error counts in proportion to its alpha.
pil_kmq is timed as im.save(buffer, "KMQ", colors=K[, speed=S]);
libimagequant as pngquant calls it (liq_set_speed, liq_image_create_rgba on
im.convert("RGBA").tobytes(), liq_image_quantize, dithering 0,
liq_write_remapped_image): both from the Pillow image to labels and
codebook, every method interleaved image by image (A, B, ..., A, B, ...),
best of --repeat each. `speed=` is passed only when this pil_kmq accepts it
(options.PARSERS); otherwise only its default runs and the other columns
read "-".

Size rows (--icons adds the icon half):
- photographs: kodim23, kodim05, kodim13, kodim19 (or evenly spaced ones
  when a folder lacks them). Up to 256x256: their centre 512x512 square,
  Lanczos-downsized; 512x512: that square as is; 1 MP: the whole frame
  Lanczos-resized to 1224x816; 24 MP: kodim23 bicubic-upsized to 6000x4000.
- icons: 4 evenly spaced of ICON_DIR's 256x256 RGBA icons. 32 to 128:
  Lanczos-downsized (Pillow resizes RGBA premultiplied); 256: as is; 512:
  Lanczos-upsized 2x; 1 MP: 4 sprite sheets of 4x4 icons (1024x1024, every
  icon once); 24 MP: one 24x16 sheet of 256x256 icons cycling through all
  of them (6144x4096, 25.2 MP).
Rows up to 1 MP take the best of max(--repeat, 5) below 512x512, of
--repeat above; the 24 MP rows one run.

--quick (for development) keeps rows up to 512x512, 2 images a row, best
of 2, the first 6 images of each folder, no scaling rows, and writes no
file. Not a unit test: nothing here is imported by the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

try:  # the pil_kmq on the path (PYTHONPATH=CHECKOUT measures that checkout's)
    import pil_kmq  # noqa: F401  (registers KMQ)
except ImportError:  # else this checkout's
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import pil_kmq  # noqa: F401
from liq import liq_labels  # noqa: E402
from machine import cpu_model  # noqa: E402

# scikit-learn KMeans(n_init=10, max_iter=1000, tol=0, random_state=0) on the
# weighted distinct colours of each image, codebook rounded to 8 bits, every
# colour to its nearest entry: PSNR over the set, by folder name and K
# (python benchmarks/quantize.py DIR --reference; minutes at K=256).
# Recomputed for the issue (it quotes 29.91 / 35.45 / 40.14 for Kodak).
SKLEARN_BEST_OF_TEN = {
    "kodak": {16: 29.906, 64: 35.450, 256: 40.135},
    "skimage_photos": {16: 31.132, 64: 36.502, 256: 41.015},
}
EXTENSIONS = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff"}
PHOTO_NAMES = ("kodim23", "kodim05", "kodim13", "kodim19")
PER_ROW = 4
OUR_SPEEDS = (1, None, 10)  # None: no speed keyword, the default
LIQ_SPEEDS = (1, 4, 10)
LANCZOS, BICUBIC = Image.Resampling.LANCZOS, Image.Resampling.BICUBIC


def image_paths(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
    if not paths:
        raise SystemExit(f"no images in {folder}")
    return paths


def load_images(folder: Path, limit: int | None = None) -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p in image_paths(folder)[:limit]]


def speed_supported() -> bool:
    """Whether this pil_kmq has a `speed` save option (unknown save options
    are ignored, as Pillow does, so a trial save would not tell)."""
    from pil_kmq import options

    fields = {field.name for field in dataclasses.fields(options.Options)}
    return "speed" in getattr(options, "PARSERS", {}) or "speed" in fields


# -- methods: (seconds, quantized array in the image's mode) ----------------


def kmq_method(speed: int | None) -> Callable[[Image.Image, int], tuple[float, np.ndarray]]:
    extra = {} if speed is None else {"speed": speed}

    def run(im: Image.Image, k: int) -> tuple[float, np.ndarray]:
        buffer = io.BytesIO()
        start = time.perf_counter()
        im.save(buffer, "KMQ", colors=k, **extra)
        seconds = time.perf_counter() - start
        buffer.seek(0)
        return seconds, np.asarray(Image.open(buffer).convert(im.mode))

    return run


def liq_method(speed: int) -> Callable[[Image.Image, int], tuple[float, np.ndarray]]:
    def run(im: Image.Image, k: int) -> tuple[float, np.ndarray]:
        return liq_quantize(im, k, speed)

    return run


def liq_quantize(im: Image.Image, k: int, speed: int) -> tuple[float, np.ndarray]:
    """(seconds, quantized array) through libimagequant's C API."""
    seconds, label_map, codebook = liq_labels(im, k, speed)
    return seconds, codebook[label_map]


def methods() -> dict[str, Callable | None]:
    """Column name -> method, ours then libimagequant's; None for a speed
    this pil_kmq does not have."""
    speeds = speed_supported()
    table: dict[str, Callable | None] = {}
    for speed in OUR_SPEEDS:
        name = "kmq" + ("def" if speed is None else str(speed))
        table[name] = kmq_method(speed) if speed is None or speeds else None
    for speed in LIQ_SPEEDS:
        table[f"liq{speed}"] = liq_method(speed)
    return table


# -- error --------------------------------------------------------------------


def compared(array: np.ndarray) -> np.ndarray:
    """What PSNR compares: the colours, premultiplied by alpha for RGBA."""
    values = array.astype(np.float64)
    if values.ndim == 3 and values.shape[2] == 4:
        values[..., :3] *= values[..., 3:] / 255.0
    return values


def squared_error(im: Image.Image, quantized: np.ndarray) -> float:
    difference = compared(quantized) - compared(np.asarray(im))
    return float(np.vdot(difference, difference))


def psnr(total_squared_error: float, values: int) -> float:
    if total_squared_error == 0:
        return float("inf")
    return 10 * np.log10(255.0**2 * values / total_squared_error)


def compare(images: list[Image.Image], k: int, repeat: int, table: dict) -> dict[str, tuple[float, float]]:
    """{method: (PSNR over the images, total of per-image best-of-repeat
    seconds)}, the methods interleaved image by image so that machine load
    hits all alike; quality from each method's first run."""
    active = {name: method for name, method in table.items() if method is not None}
    errors = dict.fromkeys(active, 0.0)
    seconds = dict.fromkeys(active, 0.0)
    for im in images:
        best = dict.fromkeys(active, np.inf)
        for attempt in range(repeat):
            for name, method in active.items():
                elapsed, quantized = method(im, k)
                best[name] = min(best[name], elapsed)
                if attempt == 0:
                    errors[name] += squared_error(im, quantized)
        for name in active:
            seconds[name] += best[name]
    values = sum(im.width * im.height * len(im.getbands()) for im in images)
    return {name: (psnr(errors[name], values), seconds[name]) for name in active}


# -- tables ---------------------------------------------------------------


def _cell(results: dict, name: str, scale: float, digits: int) -> str:
    if name not in results:
        return f"{'-':>7} {'-':>6}"
    db, seconds = results[name]
    return f"{seconds * scale:>7.{digits}f} {db:>6.2f}"


def _versus(results: dict, ours: str, theirs: str) -> str:
    if ours not in results:
        return f"{'-':>6} {'-':>6}"
    (own_db, own_s), (their_db, their_s) = results[ours], results[theirs]
    return f"{own_s / their_s:>5.2f}x {own_db - their_db:>+6.2f}"


def method_header(table: dict, unit: str) -> str:
    cells = " ".join(f"{name + ' ' + unit:>7} {'dB':>6}" for name in table)
    return f"{cells} | {'def/L4':>6} {'dB':>6} {'10/L10':>6} {'dB':>6} {'1/L1':>6} {'dB':>6}"


def method_cells(results: dict, table: dict, scale: float, digits: int) -> str:
    cells = " ".join(_cell(results, name, scale, digits) for name in table)
    return (
        f"{cells} | {_versus(results, 'kmqdef', 'liq4')} {_versus(results, 'kmq10', 'liq10')} "
        f"{_versus(results, 'kmq1', 'liq1')}"
    )


def corpus_table(folder: Path, ks: list[int], repeat: int, table: dict, limit: int | None) -> list[str]:
    images = load_images(folder, limit)
    reference = SKLEARN_BEST_OF_TEN.get(folder.name, {}) if limit is None else {}
    lines = [
        f"{folder} ({len(images)} images), PSNR over the set, time = sum of per-image best of {repeat} (s)",
        f"{'K':>4} {method_header(table, 's')} | {'sklearn10':>9} {'1-sk':>6} {'def-sk':>6}",
    ]
    print("\n".join(lines), flush=True)
    for k in ks:
        results = compare(images, k, repeat, table)
        anchor = reference.get(k)
        versus = [
            f"{results[name][0] - anchor:+6.2f}" if anchor and name in results else f"{'-':>6}"
            for name in ("kmq1", "kmqdef")
        ]
        lines.append(f"{k:>4} {method_cells(results, table, 1, 2)} | {anchor or '-':>9} {' '.join(versus)}")
        print(lines[-1], flush=True)
    return lines


def _pick(paths: list[Path], names: tuple[str, ...], count: int) -> list[Path]:
    """The named images if the folder has them all, else `count` evenly spaced."""
    by_stem = {p.stem: p for p in paths}
    if names and all(name in by_stem for name in names[:count]):
        return [by_stem[name] for name in names[:count]]
    step = max(1, len(paths) // count)
    return paths[::step][:count]


def _square(im: Image.Image) -> Image.Image:
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return im.crop((left, top, left + side, top + side))


def _sheet(icons: list[Image.Image], columns: int, rows: int) -> Image.Image:
    side = icons[0].width
    sheet = Image.new("RGBA", (columns * side, rows * side))
    for index in range(columns * rows):
        sheet.paste(icons[index % len(icons)], ((index % columns) * side, (index // columns) * side))
    return sheet


SIDES = (32, 64, 128, 256, 512)


def photo_rows(kodak: Path, per_row: int, quick: bool) -> dict[str, list[Image.Image]]:
    photos = [Image.open(p).convert("RGB") for p in _pick(image_paths(kodak), PHOTO_NAMES, per_row)]
    squares = [_square(im) for im in photos]
    rows = {f"{s}x{s}": [sq if sq.width == s else sq.resize((s, s), LANCZOS) for sq in squares] for s in SIDES}
    if not quick:
        rows["1 MP 1224x816"] = [im.resize((1224, 816), LANCZOS) for im in photos]
        rows["24 MP 6000x4000"] = [photos[0].resize((6000, 4000), BICUBIC)]
    return rows


def icon_rows(folder: Path, per_row: int, quick: bool) -> dict[str, list[Image.Image]]:
    paths = image_paths(folder)
    every = [Image.open(p).convert("RGBA") for p in paths]
    chosen = [Image.open(p).convert("RGBA") for p in _pick(paths, (), per_row)]
    rows = {}
    for side in SIDES:
        rows[f"{side}x{side}"] = [im if im.width == side else im.resize((side, side), LANCZOS) for im in chosen]
    if not quick:
        sheets = max(1, min(per_row, len(every) // 16))
        rows["1 MP 4x4 sheet"] = [_sheet(every[start::sheets], 4, 4) for start in range(sheets)]
        rows["24 MP 24x16 sheet"] = [_sheet(every, 24, 16)]
    return rows


def size_table(kind: str, rows: dict[str, list[Image.Image]], ks: list[int], repeat: int, table: dict) -> list[str]:
    lines = [
        f"{kind}: per image, mean of best-of-N times (ms) and PSNR over the row"
        + (" (premultiplied RGBA)" if kind == "icons" else ""),
        f"{'size':<18} {'n':>2} {'N':>2} {'K':>4} {method_header(table, 'ms')}",
    ]
    print("\n".join(lines), flush=True)
    for row, images in rows.items():
        pixels = images[0].width * images[0].height
        runs = 1 if pixels > 4_000_000 else max(repeat, 5) if pixels < 512 * 512 else repeat
        for k in ks:
            results = compare(images, k, runs, table)
            scale = 1000 / len(images)
            lines.append(f"{row:<18} {len(images):>2} {runs:>2} {k:>4} {method_cells(results, table, scale, 1)}")
            print(lines[-1], flush=True)
    return lines


# -- the machine ------------------------------------------------------------




def machine_lines(table: dict) -> list[str]:
    from importlib.metadata import version

    import PIL

    root = Path(pil_kmq.__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()[:100]
    ours = [name for name, method in table.items() if name.startswith("kmq") and method is not None]
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average {_load()} at the start",
        f"pil_kmq {getattr(pil_kmq, '__version__', '?')} from {root} ({commit}); speed option: "
        f"{'yes' if speed_supported() else 'no (only its default runs)'}; ours: {', '.join(ours)}",
        f"Python {platform.python_version()}, numpy {np.__version__}, Pillow {PIL.__version__}, "
        f"imagequant {version('imagequant')}",
        "columns: kmq1 / kmqdef / kmq10 = pil_kmq at speed 1 / no speed keyword / 10; liqN = "
        "libimagequant speed N; X/LN = time ratio to libimagequant speed N, dB = PSNR difference",
        "",
    ]


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


# -- reference ---------------------------------------------------------------


def sklearn_reference(folder: Path, ks: list[int]) -> None:
    from sklearn.cluster import KMeans

    from pil_kmq.quantize.histogram import histogram

    for k in ks:
        error, values = 0.0, 0
        for im in load_images(folder):
            colors, counts = histogram(np.asarray(im).reshape(-1, 3))
            points = colors.astype(np.float64)
            model = KMeans(n_clusters=k, n_init=10, max_iter=1000, tol=0, random_state=0)
            model.fit(points, sample_weight=counts)
            codebook = np.clip(np.rint(model.cluster_centers_), 0, 255)
            nearest = np.min([((points - c) ** 2).sum(axis=1) for c in codebook], axis=0)
            error += float(counts @ nearest)
            values += im.width * im.height * 3
        print(f"{folder.name} K={k}: {psnr(error, values):.2f} dB", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="Kodak first, then other photo sets")
    parser.add_argument("--icons", type=Path, default=None, help="256x256 RGBA icons for the icon size rows")
    parser.add_argument("--k", default="16,64,256", help="comma-separated K values")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few minutes, for development; writes no file")
    parser.add_argument("--reference", action="store_true", help="recompute the sklearn anchor")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables here (full runs only)")
    args = parser.parse_args(argv)
    ks = [int(v) for v in args.k.split(",")]
    if args.reference:
        for folder in args.folders:
            sklearn_reference(folder, ks)
        return
    if args.quick and args.out:
        parser.error("--out is for full runs: a --quick run is not a result")
    repeat = 2 if args.quick else args.repeat
    per_row = 2 if args.quick else PER_ROW
    table = methods()
    lines = machine_lines(table)
    print("\n".join(lines), flush=True)
    for folder in args.folders:
        lines += corpus_table(folder, ks, repeat, table, 6 if args.quick else None) + [""]
    lines += size_table("photographs", photo_rows(args.folders[0], per_row, args.quick), ks, repeat, table) + [""]
    if args.icons:
        lines += size_table("icons", icon_rows(args.icons, per_row, args.quick), ks, repeat, table) + [""]
    from overhead import overhead_lines

    lines += overhead_lines(args.folders[0], args.icons) + [""]
    if not (args.no_scaling or args.quick):
        from scaling import scaling_rows

        lines += scaling_rows(args.folders[0], ks)
    lines.append(f"load average {_load()} at the end")
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
