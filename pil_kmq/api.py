"""The numpy-level API of the tutorial: compress an array to (labels,
codebook), reconstruct it, and account for the size in bits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encoder import quantize_image
from .format import bitpack
from .options import DEFAULT_MAX_ITER, DEFAULT_SPEED, DEFAULT_TOL, Options


def as_image_array(array: np.ndarray) -> tuple[np.ndarray, bool]:
    """An (h, w, C) uint8 view of an array compress() accepts, and whether
    it was a list of colours ((N, 3) or (N, 4), seen as a 1 x N image)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        hint = " (scale floats in 0..1 with (array * 255).round().astype(np.uint8))" \
            if array.dtype.kind == "f" else ""
        raise ValueError(f"expected a uint8 array, got {array.dtype}{hint}")
    colour_list = array.ndim == 2 and array.shape[1] in (3, 4)
    if colour_list:
        array = array[None, :, :]
    elif array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"expected an (h, w) grey, (h, w, 1|3|4) image or an (n, 3|4) list of colours, "
            f"got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"cannot compress an empty image of shape {array.shape}")
    return array, colour_list


def compress(
    array: np.ndarray,
    k: int,
    *,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    speed: int = DEFAULT_SPEED,
    dither: bool = False,
    quality: int | tuple[int, int] | None = None,
    psnr: float | None = None,
    smooth: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster an image's colours into at most k; return (labels, codebook).

    Accepted, as uint8: an (h, w) grey image, an (h, w, 1), (h, w, 3) RGB or
    (h, w, 4) RGBA image (labels: the (h, w) label map), or an (n, 3) or
    (n, 4) list of colours, as the tutorial reshapes an image (labels: (n,));
    a grey image 3 or 4 pixels wide must then be passed as (h, w, 1).
    codebook is (K, C) uint8 with K <= k: an image of at most k distinct
    colours comes back losslessly with those colours (fully transparent
    pixels all count as (0, 0, 0, 0), as in Image.save). Without dithering
    every pixel gets its exactly nearest codebook colour (ties: lowest
    label); RGBA of more than k colours is compared premultiplied, colour
    error weighted by alpha (encoder.quantize_image). With `psnr` or `quality`, K is the smallest reaching it; with
    `smooth`, labels are traded for a smoother label map; `speed`, 1
    (best) to 10 (fastest), trades quality for time as libimagequant's. The
    keywords are Image.save's options (pil_kmq.options).
    """
    options = Options.from_mapping(
        {"colors": k, "max_iter": max_iter, "tol": tol, "speed": speed, "dither": dither,
         "quality": quality, "psnr": psnr, "smooth": smooth}
    )
    image, colour_list = as_image_array(array)
    labels, codebook, _ = quantize_image(image, options)
    return (labels.reshape(-1) if colour_list else labels), codebook


def reconstruct(
    labels: np.ndarray, codebook: np.ndarray, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """The quantized image: each label replaced by its codebook colour."""
    image = np.asarray(codebook, dtype=np.uint8)[np.asarray(labels)]
    if shape is not None:
        image = image.reshape(shape)
    elif image.shape[-1] == 1:
        image = image[..., 0]
    return image


@dataclass(frozen=True)
class SizeReport:
    """The tutorial's accounting of a raw .kmq image, in bits."""

    width: int
    height: int
    channels: int
    k: int

    @property
    def original_bits(self) -> int:
        return self.width * self.height * self.channels * 8

    @property
    def label_bits(self) -> int:
        return self.width * self.height * bitpack.bits_per_label(self.k)

    @property
    def codebook_bits(self) -> int:
        return self.k * self.channels * 8

    @property
    def total_bits(self) -> int:
        return self.label_bits + self.codebook_bits

    @property
    def ratio(self) -> float:
        """Compressed size as a fraction of the original."""
        return self.total_bits / self.original_bits

    def table(self) -> str:
        rows = [
            ("original", self.original_bits),
            ("label", self.label_bits),
            ("codebook", self.codebook_bits),
            ("total", self.total_bits),
        ]
        lines = [f"{name + ' bits':<15}{value:>14,}" for name, value in rows]
        lines.append(f"{'ratio':<15}{self.ratio:>13.2%}  ({1 / self.ratio:.1f}x smaller)")
        return "\n".join(lines)


def size_report(shape: tuple[int, ...], k: int) -> SizeReport:
    """Size report for an image of `shape` ((h, w) or (h, w, C)) at K colours."""
    channels = shape[2] if len(shape) == 3 else 1
    return SizeReport(width=shape[1], height=shape[0], channels=channels, k=k)
