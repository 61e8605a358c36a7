"""What kmq decode writes besides the colours: the label map as a
segmentation in false colours or as bare values, and images flattened onto
a background for formats without alpha."""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageColor


def label_image(im: Image.Image, raw: bool) -> Image.Image:
    """The label map of a P image from draft("P"): mode L whose values are
    the labels (raw), or a P image of the same values whose palette gives
    each label its own false colour (the segmentation view)."""
    labels = np.asarray(im)
    if raw:
        return Image.fromarray(labels, "L")
    view = Image.fromarray(labels, "P")
    view.putpalette(false_colours(im.info.get("colors", 256)).tobytes())
    return view


def false_colours(k: int) -> np.ndarray:
    """k distinct, well separated RGB colours: hues a golden angle apart,
    with saturation and brightness cycling so neighbours differ in all three."""
    index = np.arange(k)
    hue = (index * 0.6180339887498949) % 1.0
    saturation = np.array([0.95, 0.6, 0.8])[index % 3]
    value = np.array([0.95, 0.75, 0.55, 0.85])[index % 4]
    sector = np.floor(hue * 6).astype(int) % 6
    fraction = hue * 6 - np.floor(hue * 6)
    p, q, t = value * (1 - saturation), value * (1 - saturation * fraction), value * (1 - saturation * (1 - fraction))
    table = np.stack([
        np.choose(sector, [value, q, p, p, t, value]),
        np.choose(sector, [t, value, value, q, p, p]),
        np.choose(sector, [p, p, t, value, value, q]),
    ], axis=1)
    return np.rint(table * 255).astype(np.uint8)


def flatten(im: Image.Image, background: tuple) -> Image.Image:
    """RGB: the image composited over a solid colour."""
    rgba = im.convert("RGBA")
    base = Image.new("RGBA", rgba.size, tuple(background[:3]) + (255,))
    return Image.alpha_composite(base, rgba).convert("RGB")


def parse_colour(text: str) -> tuple:
    """argparse type for --background: any colour Pillow knows."""
    try:
        return ImageColor.getrgb(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown colour {text!r}: give a name such as white or a #rrggbb value"
        ) from None
