"""Pillow plugin for .kmq (K-means quantized) images.

Importing this module (done by `import pil_kmq`) registers the format, so
Image.open and Image.save handle .kmq files like any built-in format.
"""

from __future__ import annotations

import io
from typing import IO

import numpy as np
from PIL import Image, ImageFile, ImagePalette

from .encoder import encode_image, save_all
from .format import container, decoder
from .format.lookup import PackedLookup


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.MAGIC)


class KmqImageFile(ImageFile.ImageFile):
    format = "KMQ"
    format_description = "K-means quantized image"

    def _open(self) -> None:
        # Only the head is read: the size is known as soon as it has
        # arrived (ImageFile.Parser), and lengths are checked on load.
        assert self.fp is not None
        self.fp.seek(0)
        source = decoder.Source(self.fp)
        self._layout = decoder.read_head(source.read_at, source.size)
        header = self._layout.header
        self.info.update(self._layout.info)
        self.info["colors"] = header.k
        self._codebook = self._layout.codebook
        self._size = (header.width, header.height)
        self._mode = header.mode
        self.tile = [ImageFile._Tile("kmq", (0, 0, *self.size), header.payload_offset, (self._layout,))]

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
        # Check the length before Pillow allocates the (claimed) image. Not
        # when ImageFile.Parser prepares a prefix it has (its file is closed
        # then): that decoder waits for the whole file.
        if self.fp is not None and not self.fp.closed and self.tile:
            decoder.check_length(decoder.Source(self.fp), self._layout, ImageFile.LOAD_TRUNCATED_IMAGES)
        super().load_prepare()

    def verify(self) -> None:
        """Check the whole file without building the image: lengths, every
        CRC and (raw) every label < K. Must be called directly after open."""
        if self.fp is None:
            raise RuntimeError("verify must be called directly after open")
        decoder.verify(decoder.Source(self.fp), self._layout)
        super().verify()


class KmqDecoder(ImageFile.PyDecoder):
    """Decodes band by band (raw: a piece of rows at a time) straight into
    the image, bands in threads. Pulls from the file when Pillow loads; fed
    by ImageFile.Parser, it waits until the whole file has arrived."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        (layout,) = self.args
        if self.fd is not None:
            source = decoder.Source(self.fd)
        elif decoder.is_complete(buffer, layout):
            base = layout.header.payload_offset
            source = decoder.Source(io.BytesIO(bytes(buffer)), base=-base, size=base + len(buffer))
        else:
            return 0, 0  # ImageFile.Parser: keep feeding
        sink = _Writer(self.im, self.mode, layout.codebook)
        zero = decoder.decode(source, layout, sink, allow_truncated=ImageFile.LOAD_TRUNCATED_IMAGES)
        for box in zero:  # a one-colour image, or rows a truncated file lacks
            self.im.paste(sink.fill, box)
        return -1, 0


class _Writer:
    """A sink that looks labels up in the codebook and writes the pixels
    into a region of the image (from any thread: regions never overlap).
    Band codings hand it packed label bytes instead (packed_lookup and
    write_pixels): one lookup from bytes to pixels, no unpacking."""

    def __init__(self, im, mode: str, codebook: np.ndarray):
        self.im, self.mode = im, mode
        channels = codebook.shape[1]
        self._lookups: dict[int, PackedLookup] = {}
        if mode == "P":
            self.table, self.rawmode = np.arange(len(codebook), dtype=np.uint8), "P"
            self.fill = 0
        elif channels == 1:
            self.table, self.rawmode = codebook[:, 0].copy(), "L"
            self.fill = int(codebook[0, 0])
        else:
            # one 32-bit word per colour: a 1-D take is several times faster
            # than gathering rows of a (K, 3) table
            words = np.zeros((len(codebook), 4), dtype=np.uint8)
            words[:, :channels] = codebook
            self.table = words.view(np.uint32)[:, 0]
            self.rawmode = "RGBX" if channels == 3 else "RGBA"
            self.fill = tuple(int(v) for v in codebook[0])

    def packed_lookup(self, bits: int) -> PackedLookup:
        lookup = self._lookups.get(bits)
        if lookup is None:  # a race builds it twice, harmlessly
            lookup = self._lookups[bits] = PackedLookup(self.table, bits)
        return lookup

    def __call__(self, x0: int, y0: int, block: np.ndarray) -> None:
        self.write_pixels(x0, y0, np.take(self.table, block))

    def write_pixels(self, x0: int, y0: int, pixels: np.ndarray) -> None:
        writer = Image._getdecoder(self.mode, "raw", self.rawmode)
        writer.setimage(self.im, (x0, y0, x0 + pixels.shape[1], y0 + pixels.shape[0]))
        status, error = writer.decode(np.ascontiguousarray(pixels))
        writer.cleanup()
        if status >= 0 or error:
            raise OSError(f"could not write the pixels at ({x0}, {y0})")


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    fp.write(encode_image(im, im.encoderinfo))


Image.register_open(KmqImageFile.format, KmqImageFile, _accept)
Image.register_decoder("kmq", KmqDecoder)
Image.register_save(KmqImageFile.format, _save)
Image.register_save_all(KmqImageFile.format, save_all)  # refuses several frames by name
Image.register_extension(KmqImageFile.format, ".kmq")
Image.register_mime(KmqImageFile.format, "image/x-kmq")
