"""The file format against spec/kmq.md: worked examples and sizes to the byte."""

import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pil_kmq import api
from pil_kmq.format import coding, container
from conftest import FIXTURES, flat_pixels, noise_image

SPEC_EXAMPLE = bytes.fromhex(
    "4B4D5146 01 03 00000003 00000002 0003 00 00 00000000"
    "FF0000 00FF00 0000FF 1A40 1D88F3F8".replace(" ", "")
)


def test_spec_worked_example_is_what_the_encoder_writes():
    header = container.Header(width=3, height=2, channels=3, k=3)
    labels = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    codebook = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])
    assert container.build(header, codebook, coding.encode(labels, 3)) == SPEC_EXAMPLE


def test_spec_worked_example_decodes_to_its_pixels():
    with Image.open(io.BytesIO(SPEC_EXAMPLE)) as im:
        assert im.format == "KMQ" and im.mode == "RGB" and im.size == (3, 2)
        assert flat_pixels(im) == [
            (255, 0, 0), (0, 255, 0), (0, 0, 255),
            (0, 0, 255), (0, 255, 0), (255, 0, 0),
        ]


def test_spec_example_appears_in_the_spec():
    spec = (FIXTURES.parent / "spec" / "kmq.md").read_text()
    hex_lines = " ".join(
        re.split(r"\s{3,}", line.strip())[0]
        for line in spec.split("The file (37 bytes):")[1].split("\n## ")[0].splitlines()
        if line.startswith("    ")
    )
    assert bytes.fromhex(hex_lines) == SPEC_EXAMPLE


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
    parsed = container.parse(data)
    assert parsed.header.k == k
    assert len(parsed.payload) == payload
    assert len(parsed.codebook) * 8 == codebook_bits
    assert len(data) == 22 + codebook_bits // 8 + payload + 4


def test_tutorial_ratios():
    assert f"{api.size_report((303, 227, 3), 2).ratio:.1%}" == "4.2%"
    assert f"{api.size_report((100, 100, 3), 16).ratio:.1%}" == "16.8%"
    table = api.size_report((100, 100, 3), 16).table()
    assert "40,000" in table and "384" in table and "240,000" in table and "16.83%" in table


def test_crc_covers_everything_before_it():
    data = (FIXTURES / "golden" / "rgb_k16.kmq").read_bytes()
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_unknown_metadata_chunks_are_skipped():
    chunk = struct.pack(">4sI", b"zzZZ", 3) + b"new" + struct.pack(">4sI", b"iCCP", 2) + b"pr"
    header = container.Header(width=1, height=1, channels=1, k=1, metadata_length=len(chunk))
    body = header.pack() + chunk + b"\x07"
    data = body + struct.pack(">I", zlib.crc32(body))
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == b"pr"
        assert im.getpixel((0, 0)) == 7


@pytest.mark.parametrize("coding, name", [(1, "zlib"), (2, "xz"), (3, "bzip2")])
def test_spec_compressed_examples_decode_as_the_spec_says(coding, name):
    spec = (FIXTURES.parent / "spec" / "kmq.md").read_text()
    section = spec.split(f"### Coding {coding} ({name}),")[1].split("file:")[1].split("```")[0]
    hex_text = " ".join(line.split("  ")[0] for line in section.strip().splitlines())
    data = bytes.fromhex(hex_text)
    assert data[16] == coding
    with Image.open(io.BytesIO(data)) as im:
        assert flat_pixels(im) == [
            (0, 0, 0), (0, 0, 0), (255, 0, 0),
            (0, 0, 255), (0, 0, 255), (255, 255, 255),
        ]
