"""The .kmq container: header, metadata chunks and codebook (the "head").

This module is spec/kmq.md's layout in code and knows nothing of Pillow or
of how the label map is coded. Every check on the head is here, before
anything the size of the image is allocated.
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable

from .bitpack import bits_per_label, packed_size

MAGIC = b"KMQF"
VERSION = 3
# Older versions this reader still reads: version 2 differs only in its
# band label width (always 8 bits; see band_label_width).
READABLE_VERSIONS = (2, 3)
# The pil_kmq releases that read each version this one does not.
OLD_VERSION_READERS = {1: "pil_kmq 0.1.x"}
HEADER = struct.Struct(">4sBBIIHBBI")
HEADER_SIZE = HEADER.size  # 22
CHUNK_HEAD = struct.Struct(">4sI")
CRC = struct.Struct(">I")
CRC_SIZE = CRC.size

MAX_SIDE = (1 << 24) - 1  # width and height; every size then fits in 63 bits

RAW, ZLIB, XZ, ZSTD = 0, 1, 2, 3
CODING_NAMES = {RAW: "raw", ZLIB: "zlib", XZ: "xz", ZSTD: "zstd"}
# Codings an older version's files may have (zstd came after pil_kmq 0.3.1, in version 3).
MAX_CODING = {2: XZ}

CHANNELS_TO_MODE = {1: "L", 3: "RGB", 4: "RGBA"}
MODE_TO_CHANNELS = {mode: channels for channels, mode in CHANNELS_TO_MODE.items()}

EXIF_PREFIX = b"Exif\x00\x00"  # JPEG's APP1 prefix: Pillow's im.info["exif"] has it
TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
# smTh: the encoder's smoothing strength, ASCII digits with at most one "."
SMOOTH_BODY = re.compile(rb"[0-9]{1,8}(\.[0-9]{1,8})?")
# dpIn: horizontal and vertical dots per inch, IEEE 754 binary64 each
DPI_BODY = struct.Struct(">dd")


def band_label_width(k: int, version: int = VERSION) -> int:
    """w: bits a label takes in a band's stream (codings 1, 2): the smallest
    of 1, 2, 4, 8 that holds b, so that labels never straddle a byte and
    LZMA still sees aligned bytes. Version 2 stored 8 at every K."""
    if version == 2:
        return 8
    return next(width for width in (1, 2, 4, 8) if width >= bits_per_label(k))


class KmqFormatError(OSError):
    """A file that is a .kmq file but breaks the spec."""


@dataclass
class Header:
    width: int
    height: int
    channels: int
    k: int
    coding: int = RAW
    flags: int = 0
    metadata_length: int = 0
    version: int = VERSION

    @property
    def mode(self) -> str:
        return CHANNELS_TO_MODE[self.channels]

    @property
    def bits(self) -> int:
        return bits_per_label(self.k)

    @property
    def band_label_width(self) -> int:
        return band_label_width(self.k, self.version)

    @property
    def pixel_count(self) -> int:
        return self.width * self.height

    @property
    def codebook_size(self) -> int:
        return self.k * self.channels

    @property
    def raw_payload_size(self) -> int:
        return packed_size(self.pixel_count, self.bits)

    @property
    def codebook_offset(self) -> int:
        return HEADER_SIZE + self.metadata_length

    @property
    def payload_offset(self) -> int:
        return self.codebook_offset + self.codebook_size

    def pack(self) -> bytes:
        return HEADER.pack(
            MAGIC, self.version, self.channels, self.width, self.height,
            self.k, self.coding, self.flags, self.metadata_length,
        )


def parse_header(data: bytes) -> Header:
    """Parse and validate the fixed header (SyntaxError if not a .kmq file)."""
    if len(data) < len(MAGIC) or not data.startswith(MAGIC):
        raise SyntaxError("not a KMQ file")
    if len(data) >= 5 and data[4] not in READABLE_VERSIONS:
        version = data[4]
        reader = OLD_VERSION_READERS.get(version)
        where = f"; {reader} reads it" if reader else ""
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise KmqFormatError(
            f"unsupported version {version}: this reader reads versions {readable}{where}"
        )
    if len(data) < HEADER_SIZE:
        raise KmqFormatError(f"truncated header: {len(data)} of {HEADER_SIZE} bytes")
    _, version, channels, width, height, k, coding, flags, meta = HEADER.unpack(data[:HEADER_SIZE])
    if channels not in CHANNELS_TO_MODE:
        raise KmqFormatError(f"bad channels {channels}: must be 1, 3 or 4")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise KmqFormatError(f"bad size {width}x{height}: width and height must be 1..{MAX_SIDE}")
    if not 1 <= k <= 256:
        raise KmqFormatError(f"bad K {k}: must be 1..256")
    if coding not in CODING_NAMES:
        raise KmqFormatError(f"unknown coding {coding}")
    if coding > MAX_CODING.get(version, coding):
        raise KmqFormatError(f"coding {coding} in a version {version} file (it came with version 3)")
    if flags:
        raise KmqFormatError(f"unknown flags 0x{flags:02x}")
    return Header(width, height, channels, k, coding, flags, meta, version)


@dataclass(frozen=True)
class ChunkType:
    """A defined metadata chunk type: the im.info key it carries, and its
    body's rules both ways, so that what the encoder writes and what a reader
    accepts are one definition (spec/kmq.md, "Metadata")."""

    tag: bytes
    key: str
    write: Callable[[Any], bytes]  # im.info value -> body (ValueError if it cannot be one)
    read: Callable[[bytes], Any]  # body -> im.info value (KmqFormatError if the spec rejects it)


def _as_is(body: bytes) -> bytes:
    return body


def _exif_body(value: bytes) -> bytes:
    body = bytes(value).removeprefix(EXIF_PREFIX)
    if body and not body.startswith(TIFF_HEADERS):
        raise ValueError("exif must be a TIFF-structured block (after an optional Exif\\0\\0)")
    return body


def _exif_info(body: bytes) -> bytes:
    # The 4-byte signature is the whole rule: the TIFF structure is not parsed.
    if not body.startswith(TIFF_HEADERS):
        raise KmqFormatError("bad metadata: eXIf does not start with a TIFF header")
    return EXIF_PREFIX + body


def _smooth_body(value: float) -> bytes:
    return f"{float(value):.8f}".rstrip("0").rstrip(".").encode()


def _smooth_info(body: bytes) -> float:
    if SMOOTH_BODY.fullmatch(body) is None or float(body) == 0:
        raise KmqFormatError(f"bad metadata: smTh {body[:20]!r} is not a positive decimal number")
    return float(body)


def is_resolution(values: tuple[float, ...]) -> bool:
    """Whether a (x, y) dots-per-inch pair is one a file may hold."""
    return len(values) == 2 and all(math.isfinite(value) and value > 0 for value in values)


def _dpi_body(value: tuple[float, float]) -> bytes:
    dpi = tuple(float(part) for part in value)
    if not is_resolution(dpi):
        raise ValueError(f"dpi must be a pair of finite numbers > 0, got {value!r}")
    return DPI_BODY.pack(*dpi)


def _dpi_info(body: bytes) -> tuple[float, float]:
    if len(body) != DPI_BODY.size:
        raise KmqFormatError(f"bad metadata: dpIn of {len(body)} bytes, must be {DPI_BODY.size}")
    dpi = DPI_BODY.unpack(body)
    if not is_resolution(dpi):
        raise KmqFormatError(f"bad metadata: dpIn {dpi} is not two finite numbers > 0")
    return dpi


CHUNK_TYPES = (  # in the order a writer stores them
    ChunkType(b"iCCP", "icc_profile", bytes, _as_is),
    ChunkType(b"eXIf", "exif", _exif_body, _exif_info),
    ChunkType(b"smTh", "smooth", _smooth_body, _smooth_info),
    ChunkType(b"dpIn", "dpi", _dpi_body, _dpi_info),
    ChunkType(b"xMPp", "xmp", bytes, _as_is),
)
# Types are compared byte for byte: b"EXIF" is not b"eXIf" but an unknown type.
CHUNKS_BY_TAG = {chunk.tag: chunk for chunk in CHUNK_TYPES}


def parse_chunks(data: bytes | memoryview) -> dict[str, Any]:
    """The metadata region as im.info entries; unknown chunk types are
    checked like known ones, then skipped."""
    info: dict[str, Any] = {}
    seen: set[bytes] = set()
    pos = 0
    while pos < len(data):
        if len(data) - pos < CHUNK_HEAD.size:
            raise KmqFormatError(
                f"bad metadata: {len(data) - pos} bytes left over after the last chunk "
                "(a chunk header runs past the region)"
            )
        tag, length = CHUNK_HEAD.unpack_from(data, pos)
        pos += CHUNK_HEAD.size
        if not tag.isalpha() or not tag.isascii():
            raise KmqFormatError(f"bad metadata: chunk type {tag!r} is not 4 ASCII letters")
        if tag in seen:
            raise KmqFormatError(f"bad metadata: a second {tag.decode()} chunk")
        seen.add(tag)
        if length == 0:
            raise KmqFormatError(f"bad metadata: empty {tag.decode()} chunk")
        if length > len(data) - pos:
            raise KmqFormatError(
                f"bad metadata: chunk {tag.decode()} of {length} bytes runs past the region"
            )
        chunk = CHUNKS_BY_TAG.get(tag)
        if chunk is not None:
            info[chunk.key] = chunk.read(bytes(data[pos : pos + length]))
        pos += length
    return info


def build_chunks(metadata: dict[str, Any]) -> bytes:
    """The metadata region for im.info-style entries (ValueError if bad);
    an empty or zero entry writes no chunk."""
    parts = []
    for chunk in CHUNK_TYPES:
        value = metadata.get(chunk.key)
        body = chunk.write(value) if value else b""
        if body:
            parts.append(CHUNK_HEAD.pack(chunk.tag, len(body)) + body)
    return b"".join(parts)


def crc_bytes(data: bytes | memoryview, crc: int = 0) -> bytes:
    return CRC.pack(zlib.crc32(data, crc))


def check_crc(computed: int, stored: bytes, what: str = "file") -> None:
    (expected,) = CRC.unpack(stored)
    if computed != expected:
        raise KmqFormatError(
            f"CRC mismatch ({what}): stored 0x{expected:08x}, computed 0x{computed:08x}"
        )


def build_head(header: Header, codebook: bytes, metadata: dict[str, bytes] | None) -> bytes:
    """Header, metadata chunks and codebook: everything before the payload."""
    chunks = build_chunks(metadata or {})
    header.metadata_length = len(chunks)
    if len(codebook) != header.codebook_size:
        raise ValueError("codebook size does not match K x channels")
    return b"".join((header.pack(), chunks, codebook))
