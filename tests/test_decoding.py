"""Decoding as uploads and servers meet it: verify(), ImageFile.Parser,
truncated files, one-colour images, bounded memory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import FIXTURES
from pil_kmq.format import container, write_file

GOLDEN = FIXTURES / "golden"
MALFORMED = FIXTURES / "malformed"
CODINGS = ("raw", "zlib", "xz")


def files_of_every_coding() -> dict[str, bytes]:
    labels = np.random.default_rng(3).integers(0, 5, (300, 400), dtype=np.uint8)
    labels[100:200] = 2
    book = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]], np.uint8)
    return {name: write_file(labels, book, coding=number) for number, name in container.CODING_NAMES.items()}


FILES = files_of_every_coding()


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        return im.tobytes()


# --- verify ---------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.kmq")), ids=lambda p: p.stem)
def test_verify_passes_good_files(path):
    with Image.open(path) as im:
        im.verify()


@pytest.mark.parametrize("name", CODINGS)
def test_verify_catches_corruption_without_building_the_image(name, monkeypatch):
    data = FILES[name]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x04
    cases = [bytes(flipped), data[:-1], data[: len(data) // 2], data + b"\0"]
    allocations = []
    original_new = Image.core.new
    monkeypatch.setattr(Image.core, "new", lambda *a: allocations.append(a) or original_new(*a))
    for broken in cases:
        with Image.open(io.BytesIO(broken)) as im:
            with pytest.raises(OSError):
                im.verify()
    assert allocations == []


def test_verify_catches_a_label_not_below_k():
    with Image.open(MALFORMED / "label_ge_k.kmq") as im:
        with pytest.raises(OSError, match="label 3 >= K=3"):
            im.verify()


def test_verify_must_come_directly_after_open():
    with Image.open(io.BytesIO(FILES["xz"])) as im:
        im.verify()
        with pytest.raises(RuntimeError):
            im.verify()


# --- ImageFile.Parser -----------------------------------------------------


@pytest.mark.parametrize("name", CODINGS)
@pytest.mark.parametrize("chunk", [1, 7, 100, 4096])
def test_parser_fed_in_chunks_gives_the_image(name, chunk):
    data = FILES[name]
    if chunk == 1:
        data = write_file(np.array([[0, 1, 2], [2, 1, 0]], np.uint8), np.eye(3, dtype=np.uint8) * 255,
                          coding=container.CODING_NAMES and list(container.CODING_NAMES.values()).index(name))
    parser = ImageFile.Parser()
    head = 22 + 5 * 3 if chunk != 1 else 22 + 9
    for start in range(0, len(data), chunk):
        parser.feed(data[start : start + chunk])
        if start + chunk >= head:
            assert parser.image is not None and parser.image.size == Image.open(io.BytesIO(data)).size
    image = parser.close()
    assert image.tobytes() == pixels(data)


@pytest.mark.parametrize("name", CODINGS)
def test_parser_of_a_short_file_fails_cleanly_at_close(name):
    data = FILES[name]
    parser = ImageFile.Parser()
    for start in range(0, len(data) - 10, 500):
        parser.feed(data[start : min(start + 500, len(data) - 10)])
    with pytest.raises(OSError):
        parser.close()


@pytest.mark.parametrize("name", ["bad_crc", "bad_band_crc", "band_label_ge_k"])
def test_parser_of_a_broken_file_raises_oserror(name):
    data = (MALFORMED / f"{name}.kmq").read_bytes()
    parser = ImageFile.Parser()
    with pytest.raises(OSError):
        for start in range(0, len(data), 16):
            parser.feed(data[start : start + 16])
        parser.close()


# --- truncated files, one colour ------------------------------------------


@pytest.mark.parametrize("name", CODINGS)
def test_truncated_files_load_with_load_truncated_images(name, monkeypatch):
    labels = np.random.default_rng(3).integers(0, 5, (400, 1200), dtype=np.uint8)
    book = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]], np.uint8)
    data = write_file(labels, book, coding=list(container.CODING_NAMES.values()).index(name))
    with pytest.raises(OSError, match="truncated"):
        Image.open(io.BytesIO(data[: len(data) * 3 // 4])).load()
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with Image.open(io.BytesIO(data[: len(data) * 3 // 4])) as im:
        im.load()
        full = Image.open(io.BytesIO(data))
        # the rows whose bytes (raw) or bands are all there decode exactly
        assert im.crop((0, 0, 1200, 20)).tobytes() == full.crop((0, 0, 1200, 20)).tobytes()
        assert im.getpixel((1199, 399)) == (0, 0, 0)  # missing: codebook entry 0


@pytest.mark.parametrize("number", list(container.CODING_NAMES))
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_one_colour_images_in_every_coding(number, mode):
    im = Image.new(mode, (300, 200), (7, 8, 9, 10)[: len(mode)] if mode != "L" else 7)
    buffer = io.BytesIO()
    im.save(buffer, "KMQ", colors=1, coding=number)
    with Image.open(io.BytesIO(buffer.getvalue())) as back:
        assert back.tobytes() == im.tobytes()
    with Image.open(io.BytesIO(buffer.getvalue())) as back:
        back.verify()


# --- bounded memory -------------------------------------------------------


@pytest.mark.slow  # a fresh process decoding 8 files of 80 Mpx declared: run with --runslow (.ci/run)
def test_peak_memory_beyond_the_image_is_under_half_a_byte_per_pixel(tmp_path):
    """80 Mpx declared, every coding, whole and cut in half (with
    LOAD_TRUNCATED_IMAGES): measured in a fresh process."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to reset the peak RSS")
    probe = Path(__file__).with_name("memory_probe.py")
    result = subprocess.run([sys.executable, str(probe), str(tmp_path)], capture_output=True,
                            text=True, check=True, timeout=120)
    measured = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(measured) == 2 * len(container.CODING_NAMES) == 8
    for case in measured:
        assert case["bytes_per_pixel"] < 0.5, case
