"""Large images: Image.save with and without optimize, the streamed
encoder/decoder (pil_kmq.stream) and pil_kmq.dask.to_kmq (local threads
and a 2-process LocalCluster), time and peak RSS each in a fresh process.

    python benchmarks/stream_scale.py CORPUS_DIR [HEIGHT WIDTH] [ROUNDS] [CASE,CASE,...]

Photo-like content: the corpus's images tiled to HEIGHT x WIDTH (default
6000 x 8000, 48 Mpx) plus +-4 noise, written as a .npy in a temporary
folder. Rounds are interleaved (plain, optimize, plain, ...), best of N;
ratios are what to compare between machines. Prints the CPU model and load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from machine import cpu_model  # benchmarks/machine.py

CASES = {
    # Pillow's image is loaded first; peak RSS (VmHWM, reset after loading)
    # is reported beyond what was resident then
    "save": "im.save(out, 'KMQ')",
    "save-optimize": "im.save(out, 'KMQ', optimize=True)",
    "stream-optimize": "save_rows(NpyRows(npy), out, optimize=True)",
    "stream-decode": "[None for _ in StreamReader(kmq, check_size=False).pixel_bands()]",
    # pil_kmq.dask.to_kmq of a dask array of 1024 x 1024 chunks read by
    # offset (not a memory map, whose pages would count as resident): on the
    # local threads, then on a LocalCluster of 2 worker processes x 1 thread
    # started before the clock (peak: this client; workers' peaks printed)
    "dask": "to_kmq(chunked(npy), out)",
    "dask-optimize": "to_kmq(chunked(npy), out, optimize=True)",
    "cluster-optimize": "to_kmq(chunked(npy), out, optimize=True)",
}

CHILD = r"""
import io, json, sys, time
import numpy as np
from PIL import Image
import pil_kmq
from pil_kmq.stream import NpyRows, StreamReader, save_rows
npy, kmq, case = sys.argv[1], sys.argv[2], sys.argv[3]
Image.MAX_IMAGE_PIXELS = None
im = Image.fromarray(np.load(npy)) if case.startswith("save") else None
if case.startswith(("dask", "cluster")):
    import dask.array
    from pil_kmq.dask import to_kmq

    class Rows:  # a .npy read by rows (NpyRows, opened in the task's process), as from_array slices it
        def __init__(self, path):
            with NpyRows(path) as source:
                self.path, self.shape, self.dtype, self.ndim = path, source.shape, np.dtype(np.uint8), 3
        def __getitem__(self, index):
            rows, *rest = index
            top = rows.start or 0
            with NpyRows(self.path) as source:
                return source.rows(top, (rows.stop or self.shape[0]) - top)[(slice(None), *rest)]

    def chunked(path):
        return dask.array.from_array(Rows(path), chunks=(1024, 1024, 3), lock=False, asarray=True)
if case.startswith("cluster"):
    import distributed
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
def hwm():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024
# a child inherits its parent's ru_maxrss: reset the high-water mark instead
open("/proc/self/clear_refs", "w").write("5")
before = hwm()
out = io.BytesIO()
start = time.perf_counter()
exec(sys.argv[4])
elapsed = time.perf_counter() - start
peak = hwm()
workers = sorted(client.run(hwm).values()) if case.startswith("cluster") else []
print(json.dumps({"case": case, "seconds": elapsed, "peak": peak, "loaded": before, "bytes": out.tell(),
                  "workers": workers}))
"""


def photo_like(corpus: Path, height: int, width: int, path: Path) -> None:
    files = sorted(p for p in corpus.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif"))
    tiles = [np.asarray(Image.open(f).convert("RGB").resize((768, 512))) for f in files]
    out = np.lib.format.open_memmap(path, "w+", np.uint8, (height, width, 3))
    rng = np.random.default_rng(0)
    for y in range(0, height, 512):
        row = np.concatenate([tiles[(y // 512 * 7 + i) % len(tiles)] for i in range(-(-width // 768))], axis=1)
        rows = min(512, height - y)
        noisy = row[:rows, :width].astype(np.int16) + rng.integers(-4, 5, (rows, width, 3))
        out[y : y + rows] = np.clip(noisy, 0, 255)
    out.flush()


def main() -> None:
    corpus = Path(sys.argv[1])
    height, width = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (6000, 8000)
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    chosen = sys.argv[5].split(",") if len(sys.argv) > 5 else list(CASES)
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        npy, kmq = Path(folder) / "image.npy", Path(folder) / "image.kmq"
        photo_like(corpus, height, width, npy)
        from pil_kmq.stream import NpyRows, save_rows
        save_rows(NpyRows(npy), kmq, optimize=True)
        best: dict[str, dict] = {}
        for _ in range(rounds):
            for case, code in ((case, CASES[case]) for case in chosen):
                result = json.loads(subprocess.run(
                    [sys.executable, "-c", CHILD, str(npy), str(kmq), case, code],
                    check=True, capture_output=True, text=True).stdout)
                if case not in best or result["seconds"] < best[case]["seconds"]:
                    best[case] = result
        pixels = height * width
        for case, result in best.items():
            extra = (result["peak"] - result["loaded"]) / pixels
            print(f"{case:16s} {result['seconds']:7.2f} s  {pixels / result['seconds'] / 1e6:6.2f} Mpx/s  "
                  f"peak {result['peak'] / 2**20:7.0f} MiB = loaded {result['loaded'] / 2**20:.0f} MiB "
                  f"+ {extra:5.2f} B/px" + "".join(f"; worker {w / 2**20:.0f} MiB" for w in result["workers"]))
        for slow, fast, what in (("save-optimize", "save", "optimize / plain save"),
                                 ("dask-optimize", "stream-optimize", "to_kmq / save_rows (optimize)"),
                                 ("cluster-optimize", "stream-optimize", "to_kmq on the cluster / save_rows")):
            if slow in best and fast in best:
                print(f"{what}: {best[slow]['seconds'] / best[fast]['seconds']:.2f}")
        sizes = {result["bytes"] for case, result in best.items() if "optimize" in case}
        print(f"optimize files {'identical in size' if len(sizes) == 1 else f'DIFFER: {sizes}'}")
        print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
