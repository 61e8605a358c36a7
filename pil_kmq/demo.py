"""Demo: encode a bundled fixture at a few K and show what each costs.

    python -m pil_kmq.demo [IMAGE] [--out DIR]

Writes IMAGE at K = 2, 16 and 256 as .kmq files (and their decoded PNGs) to
DIR and prints, for each, the tutorial's size table, the file size and PSNR.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .api import size_report
from .quantize.metrics import mean_squared_error, psnr_from_mse

DEFAULT_IMAGE = Path("fixtures/images/parrots.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, default=DEFAULT_IMAGE,
                        help=f"image to encode (default: {DEFAULT_IMAGE})")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="folder for the results (default: out)")
    parser.add_argument("-k", default="2,16,256", help="comma-separated K values (default: 2,16,256)")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    with Image.open(args.image) as im:
        im.load()
    original = np.asarray(im)
    print(f"{args.image}: {im.width}x{im.height} {im.mode}")
    for k in (int(value) for value in args.k.split(",")):
        target = args.out / f"{args.image.stem}_k{k}.kmq"
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
