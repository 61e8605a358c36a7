"""Pillow plugin for .kmq (K-means quantized) images.

Importing this module (done by `import pil_kmq`) registers the format, so
Image.open and Image.save handle .kmq files like any built-in format.
"""

from __future__ import annotations

import os
import zlib
from typing import IO

import numpy as np
from PIL import Image, ImageFile, ImagePalette

from .format import bitpack, coding, container
from .encoder import encode_image, save_all


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.MAGIC)


class KmqImageFile(ImageFile.ImageFile):
    format = "KMQ"
    format_description = "K-means quantized image"

    def _open(self) -> None:
        assert self.fp is not None
        header = container.parse_header(self.fp.read(container.HEADER_SIZE))
        self.fp.seek(0, os.SEEK_END)
        file_size = self.fp.tell()
        if header.payload_offset + container.CRC_SIZE > file_size:
            msg = (
                f"truncated file: {file_size} bytes cannot hold the header, "
                f"{header.metadata_length} bytes of metadata and a "
                f"{header.codebook_size}-byte codebook"
            )
            raise container.KmqFormatError(msg)
        payload_size = container.check_length(header, file_size)

        self.fp.seek(0)
        prefix = self.fp.read(header.payload_offset)
        self.info.update(container.parse_chunks(prefix[container.HEADER_SIZE : header.codebook_offset]))
        self.info["colors"] = header.k
        codebook = np.frombuffer(prefix, np.uint8, header.codebook_size, header.codebook_offset)
        self._codebook = codebook.reshape(header.k, header.channels)

        self._size = (header.width, header.height)
        self._mode = header.mode
        self._truncated = payload_size is None
        args = (header, self._codebook, zlib.crc32(prefix), payload_size)
        self.tile = [ImageFile._Tile("kmq", (0, 0, *self.size), header.payload_offset, args)]

    def draft(self, mode: str | None, size: tuple[int, int] | None):
        """draft("P", ...) loads the label map (the segmentation) instead of the
        colours: a P image whose palette is the codebook."""
        if mode != "P" or not self.tile or self._mode == "P":
            return None
        codebook = self._codebook
        if codebook.shape[1] == 1:
            codebook = np.repeat(codebook, 3, axis=1)
        rawmode = "RGBA" if codebook.shape[1] == 4 else "RGB"
        self._mode = "P"
        self.palette = ImagePalette.raw(rawmode, codebook.tobytes())
        self.palette.mode = rawmode
        return self._mode, (0, 0, *self.size)


    def load_prepare(self) -> None:
        # Fail on a short file before Pillow allocates the (claimed) image.
        if self._truncated and not ImageFile.LOAD_TRUNCATED_IMAGES:
            msg = "image file is truncated: shorter than its header implies"
            raise OSError(msg)
        super().load_prepare()


class KmqDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        header, codebook, prefix_crc, payload_size = self.args
        labels = self._read_labels(header, prefix_crc, payload_size)
        if labels is None:
            # One colour: fill instead of gathering, so a tiny file that
            # (legitimately) claims a large solid image costs one memset.
            fill = 0 if self.mode == "P" else tuple(int(v) for v in codebook[0])
            self.im.paste(fill if self.mode != "L" else fill[0], (0, 0, *self.im.size))
        elif self.mode == "P":
            self.set_as_raw(labels.tobytes(), "P")
        else:
            self.set_as_raw(*_look_up(codebook, labels))
        return -1, 0

    def _read_labels(
        self, header: container.Header, prefix_crc: int, payload_size: int | None
    ) -> np.ndarray | None:
        """The label map, CRC checked; None for a one-colour (K=1) raw image."""
        assert self.fd is not None
        if payload_size is None:
            return self._decode_truncated(header)
        data = self.fd.read(payload_size + container.CRC_SIZE)
        if len(data) < payload_size + container.CRC_SIZE:
            return self._decode_truncated(header, data)
        payload = memoryview(data)[:payload_size]
        container.check_crc(payload, data[payload_size:], prefix_crc)
        if header.k == 1 and header.coding == coding.RAW:
            return None
        return coding.decode(payload, header.width, header.height, header.k, header.coding)

    def _decode_truncated(self, header: container.Header, data: bytes | None = None) -> np.ndarray:
        if data is None:
            data = self.fd.read(header.raw_payload_size)
        if not ImageFile.LOAD_TRUNCATED_IMAGES or header.coding != coding.RAW:
            msg = f"image file is truncated ({len(data)} payload bytes of {header.raw_payload_size})"
            raise OSError(msg)
        # What is there decodes; the missing indices are 0, like a truncated PNG's gray.
        padded = data[: header.raw_payload_size].ljust(header.raw_payload_size, b"\0")
        labels = bitpack.unpack(padded, header.pixel_count, header.bits)
        return np.minimum(labels, header.k - 1).reshape(header.height, header.width)


def _look_up(codebook: np.ndarray, labels: np.ndarray) -> tuple[bytes, str]:
    """Pixels for the labels and their raw mode. Colours are gathered as one
    32-bit word per pixel (RGB padded to RGBX): a 1-D take is several times
    faster than gathering rows of a (K, 3) table."""
    if codebook.shape[1] == 1:
        return np.take(codebook[:, 0], labels).tobytes(), "L"
    words = np.zeros((len(codebook), 4), dtype=np.uint8)
    words[:, : codebook.shape[1]] = codebook
    pixels = np.take(words.view(np.uint32)[:, 0], labels)
    return pixels.tobytes(), "RGBX" if codebook.shape[1] == 3 else "RGBA"


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    fp.write(encode_image(im, im.encoderinfo))


Image.register_open(KmqImageFile.format, KmqImageFile, _accept)
Image.register_decoder("kmq", KmqDecoder)
Image.register_save(KmqImageFile.format, _save)
Image.register_save_all(KmqImageFile.format, save_all)  # refuses several frames by name
Image.register_extension(KmqImageFile.format, ".kmq")
Image.register_mime(KmqImageFile.format, "image/x-kmq")
