"""Peak memory of decoding a large declared image, beyond Pillow's image.

    python tests/memory_probe.py DIR    # prints one JSON line per case

Run in a fresh process by tests/test_decoding.py (peak RSS is per process).
For each coding it writes an 80 Mpx grey file (bands repeated, so that it is
quick to make), then loads it whole and, with LOAD_TRUNCATED_IMAGES, cut in
half; the peak resident memory is measured from a reset high-water mark.
"""

from __future__ import annotations

import ctypes
import gc
import json
import lzma
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

import pil_kmq  # noqa: F401  (registers KMQ)
from pil_kmq.format import bands, bitpack, container, streams

WIDTH, HEIGHT, BAND = 10000, 8000, 32
CODEBOOK = bytes([10, 200])  # K = 2, grey: Pillow keeps L images at 1 byte a pixel


def band_labels() -> np.ndarray:
    y, x = np.indices((BAND, WIDTH))
    return (((x // 7) + y) % 2).astype(np.uint8)


def make(coding: int) -> bytes:
    header = container.Header(WIDTH, HEIGHT, 1, 2, coding).pack() + CODEBOOK
    labels = band_labels()
    if coding == container.RAW:
        payload = bitpack.pack(np.tile(labels, (HEIGHT // BAND, 1)), 1)
        body = header + payload
        return body + struct.pack(">I", zlib.crc32(body))
    label_stream = bands.label_stream(labels, 1, container.band_label_width(2))
    if coding == container.ZLIB:
        stream = zlib.compress(label_stream, 6)
    elif coding == container.ZSTD:
        stream = streams.compress(label_stream, coding)
    else:
        filters = [{"id": lzma.FILTER_LZMA2, "preset": 1, "dict_size": 1 << 20}]
        stream = lzma.compress(label_stream, format=lzma.FORMAT_RAW, filters=filters)
    band = struct.pack(">BI", 1, len(stream)) + stream
    band += struct.pack(">I", zlib.crc32(band))
    start = header + struct.pack(">I", BAND)
    return start + struct.pack(">I", zlib.crc32(start)) + band * (HEIGHT // BAND)


def status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def release_freed_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def peak_beyond_image(path: Path, truncated: bool) -> float:
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    release_freed_memory()
    before = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    with Image.open(path) as im:
        im.load()
        image_bytes = im.width * im.height
        corner = im.getpixel((9, 0))
    peak = status("VmHWM") - before
    assert corner == 200, corner
    return (peak - image_bytes) / (WIDTH * HEIGHT)


def main() -> None:
    Image.MAX_IMAGE_PIXELS = None
    folder = Path(sys.argv[1])
    for coding, name in container.CODING_NAMES.items():
        data = make(coding)
        whole, half = folder / f"{name}.kmq", folder / f"{name}_half.kmq"
        whole.write_bytes(data)
        half.write_bytes(data[: len(data) // 2])
        del data
        for path, truncated in ((whole, False), (half, True)):
            print(json.dumps({"file": path.name, "bytes_per_pixel": peak_beyond_image(path, truncated)}))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
