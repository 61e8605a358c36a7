"""Image -> .kmq file bytes: mode handling, quantization, the payload coding
and the container, in that order. Everything is computed before the caller
writes a byte, so a failure never leaves a plausible partial file."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .format import coding, container
from .options import METADATA_KEYS, Options, metadata_bytes
from .pixels import to_array
from .quantize.quantizer import quantize


def encode_image(im: Image.Image, params: dict[str, Any]) -> bytes:
    """The .kmq file for a Pillow image and its save options (im.encoderinfo)."""
    options = Options.from_mapping(params)
    metadata = image_metadata(im, params)
    return encode_array(to_array(im), options, metadata)


def encode_array(
    image: np.ndarray, options: Options, metadata: dict[str, bytes] | None = None
) -> bytes:
    """A complete .kmq file for an (h, w, C) uint8 array."""
    labels, codebook = quantize(image, options)
    height, width = labels.shape
    header = container.Header(width=width, height=height, channels=codebook.shape[1], k=len(codebook))
    if options.optimize:
        header.coding, codebook, payload = coding.smallest(labels, codebook, options.coding)
    else:
        header.coding = options.coding or coding.RAW
        payload = coding.encode(labels, header.k, header.coding)
    return container.build(header, codebook.tobytes(), payload, metadata)


def image_metadata(im: Image.Image, params: dict[str, Any]) -> dict[str, bytes]:
    """ICC profile and EXIF from the save options, else from im.info."""
    metadata = {}
    for key in METADATA_KEYS:
        value = metadata_bytes(params[key] if key in params else im.info.get(key), key)
        if value:
            metadata[key] = value
    return metadata
