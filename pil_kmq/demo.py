"""Demo: encode the image shipped in the package at a few K and show what
each costs, from any folder once installed.

    python -m pil_kmq.demo [IMAGE] [--out DIR]

Writes IMAGE (default: a 256x192 crop of Kodak's parrots, package data) at
K = 2, 16 and 256 as .kmq files (and their decoded PNGs) to DIR and prints,
for each, the tutorial's size table, the file size and PSNR.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from .api import size_report
from .quantize.metrics import mean_squared_error, psnr_from_mse

DEFAULT_IMAGE = "parrots.png"  # in pil_kmq/data


def bundled_image() -> contextlib.AbstractContextManager[Path]:
    """The shipped image as a real file (importlib.resources may hand out a
    temporary copy, e.g. from a zip)."""
    return resources.as_file(resources.files("pil_kmq").joinpath("data", DEFAULT_IMAGE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pil_kmq.demo", description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path,
                        help=f"image to encode (default: {DEFAULT_IMAGE}, shipped in the package)")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="folder for the results (default: out)")
    parser.add_argument("-k", default="2,16,256", help="comma-separated K values (default: 2,16,256)")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        path = args.image or stack.enter_context(bundled_image())
        with Image.open(path) as im:
            im.load()
    name = args.image or Path(DEFAULT_IMAGE)
    original = np.asarray(im)
    print(f"{name}: {im.width}x{im.height} {im.mode}")
    for k in (int(value) for value in args.k.split(",")):
        target = args.out / f"{name.stem}_k{k}.kmq"
        start = time.perf_counter()
        im.save(target, colors=k)
        encoded = time.perf_counter()
        with Image.open(target) as decoded:
            decoded.load()
        done = time.perf_counter()
        decoded.save(target.with_suffix(".png"))
        report = size_report(original.shape, decoded.info["colors"])
        print(f"\nK={k}: {target} ({target.stat().st_size:,} bytes), "
              f"PSNR {psnr_from_mse(mean_squared_error(original, np.asarray(decoded))):.2f} dB, "
              f"encode {encoded - start:.2f} s, decode {1000 * (done - encoded):.1f} ms")
        print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
