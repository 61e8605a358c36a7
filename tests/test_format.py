"""The file format against spec/kmq.md: worked examples, sizes and metadata rules."""

import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pil_kmq import api
from pil_kmq.format import container, write_file
from pil_kmq.reader import parse
from conftest import FIXTURES, flat_pixels, noise_image

SPEC = (FIXTURES.parent / "spec" / "kmq.md").read_text()
RAW_EXAMPLE = bytes.fromhex(
    "4B4D5146 03 03 00000003 00000002 0003 00 00 00000000"
    "FF0000 00FF00 0000FF 1A40 DB8741B0".replace(" ", "")
)
EXAMPLE_PIXELS = [(0, 0, 0), (0, 0, 0), (255, 0, 0), (0, 0, 255), (0, 0, 255), (255, 255, 255)]


def spec_block(title: str) -> bytes:
    """The hex of a fenced example in the spec (each line's hex, before its note)."""
    section = SPEC.split(title)[1].split("```")[1]
    return bytes.fromhex(" ".join(re.split(r"\s{3,}", line.strip())[0] for line in section.strip().splitlines()))


def test_spec_raw_example_is_what_the_encoder_writes():
    labels = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    codebook = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    assert write_file(labels, codebook) == RAW_EXAMPLE


def test_spec_raw_example_decodes_to_its_pixels():
    with Image.open(io.BytesIO(RAW_EXAMPLE)) as im:
        assert im.format == "KMQ" and im.mode == "RGB" and im.size == (3, 2)
        assert flat_pixels(im) == [
            (255, 0, 0), (0, 255, 0), (0, 0, 255),
            (0, 0, 255), (0, 255, 0), (255, 0, 0),
        ]


def test_spec_raw_example_appears_in_the_spec():
    hex_lines = " ".join(
        re.split(r"\s{3,}", line.strip())[0]
        for line in SPEC.split("The file (37 bytes):")[1].split("\n## ")[0].splitlines()
        if line.startswith("    ")
    )
    assert bytes.fromhex(hex_lines) == RAW_EXAMPLE


@pytest.mark.parametrize("coding, title", [(1, "### Coding 1 (zlib), 61-byte file"),
                                           (2, "### Coding 2 (xz), 57-byte file"),
                                           (3, "### Coding 3 (zstd), 62-byte file")])
def test_spec_band_examples_decode_as_the_spec_says(coding, title):
    data = spec_block(title)
    assert data[16] == coding and len(data) == int(re.search(r"(\d+)-byte", title).group(1))
    with Image.open(io.BytesIO(data)) as im:
        assert flat_pixels(im) == EXAMPLE_PIXELS
    with Image.open(io.BytesIO(data)) as im:
        im.verify()


@pytest.mark.parametrize(
    "width, height, k, label_bits, payload, codebook_bits",
    [(227, 303, 2, 68_781, 8_598, 48), (100, 100, 16, 40_000, 5_000, 384)],
)
def test_tutorial_examples_to_the_bit(width, height, k, label_bits, payload, codebook_bits):
    report = api.size_report((height, width, 3), k)
    assert report.label_bits == label_bits
    assert report.codebook_bits == codebook_bits
    assert report.original_bits == width * height * 24
    buffer = io.BytesIO()
    noise_image(width, height).save(buffer, "KMQ", colors=k, max_iter=2)
    data = buffer.getvalue()
    parsed = parse(data)
    assert parsed.header.k == k and parsed.header.version == 3
    assert len(parsed.payload) == payload
    assert len(parsed.codebook) * 8 == codebook_bits
    assert len(data) == 22 + codebook_bits // 8 + payload + 4


def test_tutorial_ratios():
    assert f"{api.size_report((303, 227, 3), 2).ratio:.1%}" == "4.2%"
    assert f"{api.size_report((100, 100, 3), 16).ratio:.1%}" == "16.8%"
    table = api.size_report((100, 100, 3), 16).table()
    assert "40,000" in table and "384" in table and "240,000" in table and "16.83%" in table


def test_raw_crc_covers_everything_before_it():
    data = (FIXTURES / "golden" / "rgb_k16.kmq").read_bytes()
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_every_byte_of_a_banded_file_is_under_a_crc():
    data = (FIXTURES / "golden" / "rgb_k16_xz.kmq").read_bytes()
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises((OSError, SyntaxError)):
            with Image.open(io.BytesIO(bytes(damaged))) as im:
                im.load()


def _with_chunks(chunks: bytes) -> bytes:
    header = container.Header(width=1, height=1, channels=1, k=1, metadata_length=len(chunks))
    body = header.pack() + chunks + b"\x07"
    return body + struct.pack(">I", zlib.crc32(body))


def test_unknown_metadata_chunks_are_skipped():
    chunk = struct.pack(">4sI", b"zzZZ", 3) + b"new" + struct.pack(">4sI", b"iCCP", 2) + b"pr"
    with Image.open(io.BytesIO(_with_chunks(chunk))) as im:
        assert im.info["icc_profile"] == b"pr"
        assert im.getpixel((0, 0)) == 7


def test_exif_is_stored_without_the_jpeg_prefix_and_read_with_it():
    tiff = b"MM\0*\0\0\0\x08\0\0"
    labels, book = np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8)
    for given in (tiff, b"Exif\0\0" + tiff):
        data = write_file(labels, book, metadata={"exif": given})
        assert struct.pack(">4sI", b"eXIf", len(tiff)) + tiff in data
        assert parse(data).info["exif"] == b"Exif\0\0" + tiff
    with pytest.raises(ValueError, match="TIFF"):
        write_file(labels, book, metadata={"exif": b"not exif"})


def test_golden_files_say_version_3():
    for path in (FIXTURES / "golden").glob("*.kmq"):
        assert path.read_bytes()[4] == 3, path.name


def test_a_version_1_file_names_the_release_that_reads_it():
    with pytest.raises(OSError, match=r"version 1.*pil_kmq 0\.1\.x"):
        Image.open(FIXTURES / "v1_rgb_k16.kmq")


@pytest.mark.parametrize("name", ["zlib", "xz", "zstd", "optimize"])
def test_banded_golden_files_are_what_the_encoder_writes(name):
    golden = (FIXTURES / "golden" / f"rgb_k16_{name}.kmq").read_bytes()
    options = {"optimize": True} if name == "optimize" else {"coding": name}
    buffer = io.BytesIO()
    with Image.open(FIXTURES / "images" / "rgb.png") as im:
        im.save(buffer, "KMQ", colors=16, **options)
    assert buffer.getvalue() == golden
    raw = Image.open(FIXTURES / "golden" / "rgb_k16.kmq")
    assert Image.open(io.BytesIO(golden)).tobytes() == raw.tobytes()


def test_a_reader_from_before_coding_3_refuses_a_zstd_file(monkeypatch):
    """pil_kmq 0.3.x parsed headers with this parse_header and codings 0-2:
    a zstd file is refused as an unknown coding, cleanly, before any pixel."""
    data = (FIXTURES / "golden" / "rgb_k16_zstd.kmq").read_bytes()
    assert (data[4], data[16]) == (3, 3)
    monkeypatch.setattr(container, "CODING_NAMES", {0: "raw", 1: "zlib", 2: "xz"})
    with pytest.raises(OSError, match="unknown coding 3"):
        Image.open(io.BytesIO(data))
