"""The remap's cost against a plain encode: CPU time, side by side per image and K.

    OPENBLAS_NUM_THREADS=1 python benchmarks/remap_time.py CORPUS_DIR [--k 16,64,256] [--smooth 1,4,16]

For every image (*.png, sorted) and K: a plain im.save(buffer, "KMQ",
colors=K) and the remap alone (quantize/remap.py, from that K's nearest
labels) at each smoothing, best of 3 each. CPU time of this one process is
steadier than wall time on a shared machine; OPENBLAS_NUM_THREADS=1 keeps
every thread's work in it. Prints the worst ratio remap / plain per K.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pil_kmq  # noqa: E402  (registers the format)
from pil_kmq.quantize.remap import remap  # noqa: E402


def seconds(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--k", default="16,64,256")
    parser.add_argument("--smooth", default="1,4,16")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    ks = [int(v) for v in args.k.split(",")]
    smooths = [float(v) for v in args.smooth.split(",")]
    paths = sorted(args.corpus.glob("*.png"))[: args.limit]
    print(f"{'image':<12}{'K':>4}{'plain save s':>14}" + "".join(f"{'remap s=' + str(s):>14}" for s in smooths))
    worst: dict[int, float] = {}
    for path in paths:
        image = Image.open(path).convert("RGB")
        original = np.asarray(image)
        for k in ks:
            plain = min(seconds(lambda: image.save(io.BytesIO(), "KMQ", colors=k)) for _ in range(3))
            labels, codebook = pil_kmq.compress(original, k)
            spent = [min(seconds(lambda: remap(original, codebook, labels, s)) for _ in range(3)) for s in smooths]
            worst[k] = max(worst.get(k, 0.0), max(spent) / plain)
            print(f"{path.stem:<12}{k:>4}{plain:>14.3f}" + "".join(f"{t:>14.3f}" for t in spent), flush=True)
    print("worst remap / plain save per K: " + ", ".join(f"K={k}: {r:.2f}" for k, r in worst.items()))


if __name__ == "__main__":
    main()
