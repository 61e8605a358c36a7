"""kmq encode of a .npy and kmq decode to one, streamed by bands, inside
an address-space cap (prlimit --as) that the whole image does not fit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pil_kmq  # noqa: F401
from pil_kmq.cli import main

# One BLAS/OpenMP thread, one malloc arena and a fixed mmap threshold: the
# cap is about the image, not about how many threads a library starts,
# whether a thread reserves its own 64 MiB arena (address space, which the
# cap counts) or how malloc's heap happened to grow.
CAPPED_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "131072", "PIL_KMQ_THREADS": "2"}
RUN = "import sys; from pil_kmq.cli import main; sys.exit(main(sys.argv[1:]))"
PEAK = ("import sys, atexit; from pil_kmq.cli import main; "
        "atexit.register(lambda: print(open('/proc/self/status').read().split('VmPeak:')[1].split()[0]));"
        "sys.exit(main(sys.argv[1:]))")


def grey_photo(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    return ((x // 3 + y // 5) % 200 + rng.integers(0, 40, (height, width))).astype(np.uint8)


def kmq(*args: str, cap: int | None = None, script: str = RUN) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", script, *args]
    if cap is not None:
        command = ["prlimit", f"--as={cap}", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **CAPPED_ENV})


def test_encode_and_decode_npy_in_process(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, (120, 90, 3), dtype=np.uint8) // 32 * 32
    np.save(tmp_path / "a.npy", array)
    assert main(["encode", str(tmp_path / "a.npy"), "-k", "16", "--optimize", "-q"]) == 0
    assert main(["decode", str(tmp_path / "a.kmq"), "-o", str(tmp_path / "b.npy"), "-q"]) == 0
    with Image.open(tmp_path / "a.kmq") as im:
        np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.asarray(im))
    buffer = tmp_path / "same.kmq"
    Image.fromarray(array).save(buffer, colors=16, optimize=True)
    assert buffer.read_bytes() == (tmp_path / "a.kmq").read_bytes()
    assert main(["decode", str(tmp_path / "a.kmq"), "-o", str(tmp_path / "l.npy"), "--labels-raw", "-q"]) == 0
    from pil_kmq.reader import read_labels

    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), read_labels(tmp_path / "a.kmq"))


@pytest.mark.slow  # three processes under prlimit on 16 Mpx: seconds; run with --runslow (.ci/run)
@pytest.mark.skipif(shutil.which("prlimit") is None or sys.platform != "linux", reason="needs prlimit (util-linux)")
def test_larger_than_the_address_space_cap(tmp_path):
    """The cap: what the command needs for a 1536-row image (interpreter,
    libraries, its threads, blocks and bands in flight) plus 16 MiB (the
    peak varies by a thread's 8 MiB stack from run to run); the image is
    more than that (Image.save would need 5+ bytes a pixel more), and the
    streamed paths must fit, their peak not growing with the image."""
    small, big = tmp_path / "small.npy", tmp_path / "big.npy"
    np.save(small, grey_photo(1536, 2048))
    np.save(big, grey_photo(8192, 2048))
    probe = kmq("encode", str(small), "-k", "4", "--optimize", "-q", script=PEAK)
    assert probe.returncode == 0, probe.stderr
    baseline = int(probe.stdout.split()[-1]) * 1024
    cap = baseline + (16 << 20)
    assert big.stat().st_size > cap - baseline

    done = kmq("encode", str(big), "-k", "4", "--optimize", "-q", cap=cap)
    assert done.returncode == 0, done.stderr
    back = tmp_path / "back.npy"
    done = kmq("decode", str(tmp_path / "big.kmq"), "-o", str(back), "-q", cap=cap)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "big.kmq") as im:
        assert im.size == (2048, 8192)
    from pil_kmq.reader import read_labels
    from pil_kmq.stream import StreamReader

    with StreamReader(tmp_path / "big.kmq") as reader:
        codebook = reader.codebook
    np.testing.assert_array_equal(np.load(back, mmap_mode="r"), codebook[read_labels(tmp_path / "big.kmq")][..., 0])


def test_tiff_too_large_for_pillow_is_streamed(tmp_path, monkeypatch):
    """A tiled, compressed TIFF over Image.MAX_IMAGE_PIXELS (which Pillow
    refuses) encodes by tiles to Image.save's bytes and decodes to a
    BigTIFF by bands; below the limit, Pillow's path is kept."""
    tifffile = pytest.importorskip("tifffile")
    from pil_kmq.stream import ArrayRows, TiffRows, save_rows

    array = np.random.default_rng(2).integers(0, 256, (150, 110, 4), dtype=np.uint8) // 16 * 16
    tifffile.imwrite(tmp_path / "a.tif", array, tile=(32, 48), compression="zlib", extrasamples=("unassalpha",))
    with TiffRows(tmp_path / "a.tif") as rows:
        np.testing.assert_array_equal(rows.rows(30, 70), array[30:100])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10000)
    assert main(["encode", str(tmp_path / "a.tif"), "-k", "32", "--optimize", "-q"]) == 0
    expected = tmp_path / "expected.kmq"
    save_rows(ArrayRows(array), expected, colors=32, optimize=True)
    assert (tmp_path / "a.kmq").read_bytes() == expected.read_bytes()
    assert main(["decode", str(tmp_path / "a.kmq"), "-o", str(tmp_path / "back.tif"), "-q"]) == 0
    with tifffile.TiffFile(tmp_path / "back.tif") as tif:
        assert tif.is_bigtiff
        back = tif.asarray()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(tmp_path / "a.kmq") as im:
        np.testing.assert_array_equal(back, np.asarray(im))


def claimed_size_file(path, width: int, height: int, channels: int = 3) -> None:
    """A valid raw .kmq of one colour: a header and a CRC, no labels (0 bits
    a label at K = 1), however many pixels it claims."""
    import zlib

    from pil_kmq import format
    from pil_kmq.format.container import CRC, RAW

    head = format.file_head(width, height, np.zeros((1, channels), np.uint8), RAW, {})
    path.write_bytes(head + CRC.pack(zlib.crc32(head)))


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_streamed_decode_honours_max_image_pixels(tmp_path, suffix):
    """A 29-byte file claiming 13500 x 13500 grey pixels (a 182 MB output;
    just over twice Pillow's default limit, so that a regression writes no
    more) is refused as Image.open refuses it, before anything is written; with
    --max-pixels the limit moves: a warning past it, an error past twice
    it, no limit at 0 (Pillow's MAX_IMAGE_PIXELS = None)."""
    if suffix == ".tif":
        pytest.importorskip("tifffile")
    bomb = tmp_path / "bomb.kmq"
    claimed_size_file(bomb, 13500, 13500, channels=1)
    assert bomb.stat().st_size < 100
    done = kmq("decode", str(bomb), "-o", str(tmp_path / ("bomb" + suffix)))
    refusal = f"kmq: {bomb}: Image size (182250000 pixels) exceeds limit of {2 * Image.MAX_IMAGE_PIXELS} pixels"
    assert done.returncode == 1 and done.stderr.startswith(refusal), done.stderr
    assert "--max-pixels N sets the limit" in done.stderr.splitlines()[0]
    assert list(tmp_path.iterdir()) == [bomb]
    pillow = kmq("decode", str(bomb), "-o", str(tmp_path / "bomb.png"))  # Pillow's path: the same line
    assert pillow.returncode == 1 and pillow.stderr.splitlines()[0] == done.stderr.splitlines()[0]

    small = tmp_path / "small.kmq"
    claimed_size_file(small, 100, 60)  # 6000 pixels
    out = tmp_path / ("small" + suffix)
    done = kmq("decode", str(small), "-o", str(out), "--max-pixels", "2999")
    assert done.returncode == 1 and "exceeds limit of 5998 pixels" in done.stderr and not out.exists(), done.stderr
    done = kmq("decode", str(small), "-o", str(out), "--max-pixels", "5999")
    assert done.returncode == 0 and "DecompressionBombWarning" in done.stderr, done.stderr
    out.unlink()
    for limit in ("0", "6000"):
        done = kmq("decode", str(small), "-o", str(out), "--max-pixels", limit, "--force")
        assert done.returncode == 0 and "Decompression" not in done.stderr, done.stderr
    if suffix == ".npy":
        assert np.load(out).shape == (60, 100, 3) and not np.load(out).any()
