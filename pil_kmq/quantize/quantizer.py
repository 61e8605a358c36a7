"""The quantize stage as one call: an image array in, its codebook and label
map out (histogram, k-means or the quality target, then exact nearest
labels, smoothed if asked (remap), or dithering). It knows nothing of the
file format or of how options are read: the caller passes an object with
QuantizeOptions' attributes and, to search for the smallest file, a
size_of(labels, codebook) callable."""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

from .dither import dither as dither_onto
from .histogram import histogram, labels_for_pixels, mapped_histogram
from .kmeans import kmeans
from .quality import fewest_colors_for_target
from .rd_search import smallest_file_reaching
from .remap import remap
from .schedule import schedule

SizeOf = Callable[[np.ndarray, np.ndarray], int]


class QuantizeOptions(Protocol):
    """What the quantizer reads of the save options (pil_kmq.options.Options)."""

    colors: int
    max_iter: int
    tol: float
    speed: int
    dither: bool
    quality: tuple[int, int] | None
    psnr: float | None
    smooth: float | None
    progress: Callable[[str, int, int], Any] | None


def quantize(image: np.ndarray, options: QuantizeOptions) -> tuple[np.ndarray, np.ndarray]:
    """(label map (h, w) uint8, codebook (K, C) uint8) for an (h, w, C)
    uint8 image, K <= options.colors."""
    labels, codebook, _ = quantize_with_smoothing(image, options)
    return labels, codebook


ColourMap = Callable[[np.ndarray], np.ndarray]


def quantize_with_smoothing(
    image: np.ndarray, options: QuantizeOptions, *, size_of: SizeOf | None = None, estimate: SizeOf | None = None,
    colour_map: ColourMap | None = None, counted: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """quantize(), and the smoothing strength the labels were remapped with
    (0: nearest colours), which the file records (the smTh chunk). With
    size_of (the exact size of a file of labels and codebook) and estimate
    (a fast stand-in), a psnr or quality target searches K and smoothing
    together for the smallest file (rd_search.py).

    colour_map (a function of a colour alone, on (..., C) uint8: the
    encoder's premultiply) quantizes colour_map(image) without making it
    for every pixel: the histogram's distinct colours are mapped and merged,
    and each pixel takes the label of its own colour's image. Only
    dithering, smoothing and the target searches, which need the mapped
    pixels themselves, map the whole image.

    counted: histogram(image's pixels), when the caller has made it."""
    height, width, channels = image.shape
    pixels = image.reshape(-1, channels)
    colors, counts = histogram(pixels) if counted is None else counted
    own_colors, merged = colors, None
    if colour_map is not None:
        colors, counts, merged = mapped_histogram(colors, counts, colour_map)

    def cluster(k: int) -> tuple[np.ndarray, np.ndarray]:
        return cluster_colours(colors, counts, k, options)

    def mapped_image() -> np.ndarray:
        return image if colour_map is None else colour_map(image)

    most = min(options.colors, len(colors))
    if size_of is not None and (options.quality is not None or options.psnr is not None):
        choice = smallest_file_reaching(mapped_image(), options, cluster, colors, sizes=(estimate or size_of, size_of))
        return choice.labels, choice.codebook, choice.smooth
    if options.quality is None and options.psnr is None:
        codebook, color_labels = cluster(most)
    else:
        codebook, color_labels = fewest_colors_for_target(options, most, cluster, colors, counts)
    smooth = 0.0
    if options.dither and len(codebook) < len(colors):
        labels = dither_onto(mapped_image(), codebook)
    else:
        own_labels = color_labels if merged is None else color_labels[merged]
        labels = labels_for_pixels(own_colors, own_labels, pixels).reshape(height, width)
        if options.quality is None and options.psnr is None:
            smooth = options.smooth or 0.0
            if smooth > 0:
                labels = remap(mapped_image(), codebook, labels, smooth)
    return labels, codebook, smooth


def cluster_colours(
    colors: np.ndarray, counts: np.ndarray, k: int, options: QuantizeOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Codebook and a label per distinct colour (uint8) for at most k colours;
    an image with at most k distinct colours keeps them exactly."""
    if len(colors) <= k:
        return colors, np.arange(len(colors), dtype=np.uint8)
    plan = schedule(options.speed, k, len(colors), int(counts.sum()), colors.shape[1])
    codebook, labels = kmeans(colors, counts, k, max_iter=options.max_iter, tol=options.tol, plan=plan)
    return codebook, labels.astype(np.uint8)
