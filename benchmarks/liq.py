"""libimagequant (pngquant's engine) through its C API, as pngquant calls it:
the `imagequant` package's cffi `lib`, not its Python wrapper, whose pixel
loop hides libimagequant's real speed. Shared by the benchmarks."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image


def liq_labels(im: Image.Image, k: int, speed: int = 4) -> tuple[float, np.ndarray, np.ndarray]:
    """(seconds from the Pillow image to labels and palette, label map (h, w)
    uint8, palette (n, 3) uint8, or (n, 4) RGBA for an RGBA image), without
    dithering."""
    from imagequant._libimagequant import ffi, lib

    start = time.perf_counter()
    width, height = im.size
    rgba = im.convert("RGBA").tobytes()
    attr = lib.liq_attr_create()
    lib.liq_set_max_colors(attr, k)
    lib.liq_set_speed(attr, speed)
    image = lib.liq_image_create_rgba(attr, rgba, width, height, 0)
    result_p = ffi.new("liq_result**")
    if lib.liq_image_quantize(image, attr, result_p) != lib.LIQ_OK:
        raise RuntimeError("liq_image_quantize failed")
    lib.liq_set_dithering_level(result_p[0], 0.0)
    labels = ffi.new("char[]", width * height)
    lib.liq_write_remapped_image(result_p[0], image, labels, width * height)
    palette = lib.liq_get_palette(result_p[0])
    # The clock stops here: labels and palette are made; reading them into
    # numpy (a Python loop over the entries, ~0.1 ms at K=256) is the
    # harness's cost, which would swamp libimagequant's on a 32x32 icon.
    seconds = time.perf_counter() - start
    channels = 4 if im.mode == "RGBA" else 3
    codebook = np.array(
        [(e.r, e.g, e.b, e.a)[:channels] for e in palette.entries[0 : palette.count]], dtype=np.uint8
    ).reshape(-1, channels)
    label_map = np.frombuffer(ffi.buffer(labels), dtype=np.uint8).copy().reshape(height, width)
    lib.liq_result_destroy(result_p[0])
    lib.liq_image_destroy(image)
    lib.liq_attr_destroy(attr)
    return seconds, label_map, codebook
