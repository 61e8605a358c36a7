"""The .kmq container: header, metadata chunks, codebook, payload, CRC-32.

This module is the spec (spec/kmq.md) in code and knows nothing of Pillow or
of how the payload was coded. Every check a decoder must make on the layout
is here, before anything the size of the image is allocated.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .bitpack import bits_per_index, packed_size
from .coding import DECODERS, RAW as CODING_RAW

MAGIC = b"KMQF"
VERSION = 1
HEADER = struct.Struct(">4sBBIIHBBI")
HEADER_SIZE = HEADER.size  # 22
CHUNK_HEAD = struct.Struct(">4sI")
CRC_SIZE = 4

CHANNELS_TO_MODE = {1: "L", 3: "RGB", 4: "RGBA"}
MODE_TO_CHANNELS = {mode: channels for channels, mode in CHANNELS_TO_MODE.items()}

# Codings a reader of this version understands.
KNOWN_CODINGS = frozenset(DECODERS)
KNOWN_FLAGS = 0

# Metadata chunk types and the im.info keys they carry.
CHUNK_INFO_KEYS = {b"iCCP": "icc_profile", b"eXIf": "exif"}
INFO_KEY_CHUNKS = {key: tag for tag, key in CHUNK_INFO_KEYS.items()}


class KmqFormatError(OSError):
    """A file that is a .kmq file but breaks the spec."""


@dataclass
class Header:
    width: int
    height: int
    channels: int
    k: int
    coding: int = CODING_RAW
    flags: int = 0
    metadata_length: int = 0
    version: int = VERSION

    @property
    def mode(self) -> str:
        return CHANNELS_TO_MODE[self.channels]

    @property
    def bits(self) -> int:
        return bits_per_index(self.k)

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
    if len(data) < HEADER_SIZE:
        raise KmqFormatError(
            f"truncated header: {len(data)} of {HEADER_SIZE} bytes"
        )
    _, version, channels, width, height, k, coding, flags, meta = HEADER.unpack(
        data[:HEADER_SIZE]
    )
    if version != VERSION:
        raise KmqFormatError(f"unsupported version {version} (this reader: {VERSION})")
    if channels not in CHANNELS_TO_MODE:
        raise KmqFormatError(f"bad channels {channels}: must be 1, 3 or 4")
    if width == 0 or height == 0:
        raise KmqFormatError(f"bad size {width}x{height}: width and height must be >= 1")
    if not 1 <= k <= 256:
        raise KmqFormatError(f"bad K {k}: must be 1..256")
    if coding not in KNOWN_CODINGS:
        raise KmqFormatError(f"unknown coding {coding}")
    if flags & ~KNOWN_FLAGS:
        raise KmqFormatError(f"unknown flags 0x{flags:02x}")
    return Header(width, height, channels, k, coding, flags, meta, version)


def parse_chunks(data: bytes) -> dict[str, bytes]:
    """Parse the metadata region into im.info entries, skipping unknown chunks."""
    info: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if len(data) - pos < CHUNK_HEAD.size:
            raise KmqFormatError("bad metadata: chunk header runs past the region")
        tag, length = CHUNK_HEAD.unpack_from(data, pos)
        pos += CHUNK_HEAD.size
        if length > len(data) - pos:
            raise KmqFormatError(
                f"bad metadata: chunk {tag!r} of {length} bytes runs past the region"
            )
        key = CHUNK_INFO_KEYS.get(tag)
        if key is not None:
            info[key] = bytes(data[pos : pos + length])
        pos += length
    return info


def build_chunks(metadata: dict[str, bytes]) -> bytes:
    parts = []
    for key, tag in INFO_KEY_CHUNKS.items():
        value = metadata.get(key)
        if value:
            parts.append(CHUNK_HEAD.pack(tag, len(value)) + bytes(value))
    return b"".join(parts)


def expected_file_size(header: Header, payload_size: int) -> int:
    return header.payload_offset + payload_size + CRC_SIZE


def check_length(header: Header, file_size: int) -> int | None:
    """Check the file length against the header; return the payload size.

    For the raw coding the payload size follows from the header, so a file of
    any other length is broken; None means the file is short (truncated),
    which the caller may tolerate. Other codings take the bytes between the
    codebook and the CRC.
    """
    available = file_size - header.payload_offset - CRC_SIZE
    if header.coding == CODING_RAW:
        expected = header.raw_payload_size
        if available > expected:
            raise KmqFormatError(
                f"file is {available - expected} bytes longer than its header implies "
                f"({expected_file_size(header, expected)} bytes)"
            )
        return expected if available == expected else None
    return available if available >= 0 else None


def build(
    header: Header, codebook: bytes, payload: bytes, metadata: dict[str, bytes] | None = None
) -> bytes:
    """The complete file: header, chunks, codebook, payload and CRC-32."""
    chunks = build_chunks(metadata or {})
    header.metadata_length = len(chunks)
    if len(codebook) != header.codebook_size:
        raise ValueError("codebook size does not match K x channels")
    body = b"".join((header.pack(), chunks, codebook, payload))
    return body + struct.pack(">I", zlib.crc32(body))


@dataclass
class Parsed:
    """A whole file parsed in memory (tools and tests; the plugin streams)."""

    header: Header
    info: dict[str, bytes] = field(default_factory=dict)
    codebook: bytes = b""
    payload: bytes = b""


def parse(data: bytes) -> Parsed:
    """Parse and fully validate a complete .kmq file held in memory."""
    header = parse_header(data[:HEADER_SIZE])
    if header.payload_offset + CRC_SIZE > len(data):
        raise KmqFormatError("truncated file: header, metadata and codebook do not fit")
    info = parse_chunks(data[HEADER_SIZE : header.codebook_offset])
    payload_size = check_length(header, len(data))
    if payload_size is None:
        raise KmqFormatError("image file is truncated")
    check_crc(data[:-CRC_SIZE], data[-CRC_SIZE:])
    codebook = data[header.codebook_offset : header.payload_offset]
    payload = data[header.payload_offset : header.payload_offset + payload_size]
    return Parsed(header, info, codebook, payload)


def check_crc(body: bytes, stored: bytes, crc: int = 0) -> None:
    actual = zlib.crc32(body, crc)
    (expected,) = struct.unpack(">I", stored)
    if actual != expected:
        raise KmqFormatError(
            f"CRC mismatch: stored 0x{expected:08x}, computed 0x{actual:08x}"
        )
