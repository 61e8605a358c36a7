"""The streaming core (pil_kmq/stream): a .kmq file written from row
blocks is byte for byte Image.save's, and reads back band by band."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from helpers import save_to_bytes
from pil_kmq.format import bands, streams
from pil_kmq.options import OptionValueError
from pil_kmq.reader import read_labels
from pil_kmq.stream import ArrayRows, NpyRows, StreamReader, save_rows
from pil_kmq.stream import decode as stream_decode
from pil_kmq.stream import encode as stream_encode
from pil_kmq.stream.histogram import ColourCounter, block_counts
from pil_kmq.quantize.histogram import TABLE_MIN_COUNT, histogram

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
CODINGS = [{}, {"optimize": True}, {"coding": "zlib"}, {"coding": "xz"},
           {"coding": "zlib", "optimize": True}, {"coding": "xz", "optimize": True},
           {"coding": "raw", "optimize": True}, {"coding": "zstd"}, {"coding": "zstd", "optimize": True}]


def photo_like(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise, soft alpha where there is alpha (some
    of it fully transparent), so every coding and the premultiplied path
    are exercised."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 3 + y) % 256, (y * 5) % 256, (x * y // 7) % 256, np.clip(x * 9 - 200, 0, 255)]
    base = np.stack(planes, -1)[..., [0, 1, 2, 3][:channels] if channels != 1 else [0]]
    return np.clip(base + rng.integers(0, 24, (height, width, channels)), 0, 255).astype(np.uint8)


def saved(array: np.ndarray, **options) -> bytes:
    channels = array.shape[2]
    im = Image.fromarray(array[..., 0] if channels == 1 else array, MODES[channels])
    return save_to_bytes(im, **options)


def streamed(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    save_rows(ArrayRows(array), buffer, **options)
    return buffer.getvalue()


@pytest.fixture
def small_pieces(monkeypatch):
    """Blocks, bands and raw blocks a few kilo-pixels: many of each, in
    both the streamed and the in-memory encoder (which reads the same band
    target), so that every piece boundary is crossed."""
    monkeypatch.setattr(stream_encode, "BLOCK_PIXELS", 3000)
    monkeypatch.setattr(stream_encode, "RAW_BLOCK_LABELS", 2000)
    monkeypatch.setattr(stream_decode, "RAW_BLOCK_LABELS", 2000)
    monkeypatch.setattr(bands, "MIN_BAND_LABELS", 1 << 10)
    monkeypatch.setattr(bands, "TARGET_BAND_LABELS", 1 << 12)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("k", [1, 2, 3, 17, 256])
@pytest.mark.parametrize("options", CODINGS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_same_bytes_as_image_save(small_pieces, channels, k, options):
    array = photo_like(133, 97, channels, seed=k)
    expected = saved(array, colors=k, **options)
    assert streamed(array, colors=k, **options) == expected
    with StreamReader(io.BytesIO(expected)) as reader:
        labels = np.concatenate([block for _, block in reader.label_bands()])
    np.testing.assert_array_equal(labels, read_labels(io.BytesIO(expected)))


def test_same_bytes_when_optimize_picks_zstd():
    """Three candidates (raw, xz, zstd), the last one the smallest: an exact
    repeat of random labels, where zstd's matches cost less than LZMA2's
    chunk headers. The streamed encoder keeps each candidate in a temporary
    file until it is beaten."""
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    block = rng.integers(0, 200, (2, 2000))
    array = palette[np.tile(block, (32, 1))]
    expected = saved(array, colors=200, optimize=True)
    assert expected[16] == 3  # the header's coding byte: zstd
    assert streamed(array, colors=200, optimize=True) == expected


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (9, 7), (1024, 400)])
def test_same_bytes_at_several_sizes(shape):
    """Real block and band sizes: the 1024 x 400 image is 2 bands."""
    array = photo_like(*shape, 3, seed=shape[0])
    for options in ({"colors": 16, "optimize": True}, {"colors": 5, "coding": "zlib"}):
        assert streamed(array, **options) == saved(array, **options)


def test_few_colours_and_metadata_kept(small_pieces):
    """An image of at most K colours keeps them exactly (no premultiply,
    even with alpha), and ICC/EXIF chunks are written as Image.save does."""
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (7, 4), dtype=np.uint8)
    array = palette[rng.integers(0, 7, (60, 50))]
    options = {"colors": 8, "optimize": True, "icc_profile": b"profile bytes"}
    assert streamed(array, **options) == saved(array, **options)


@pytest.mark.parametrize("channels, claimed", [(4, 0), (3, 0), (3, TABLE_MIN_COUNT)])
def test_histogram_merges_blocks(channels, claimed):
    """Many blocks: the merged runs (RGBA; RGB of few pixels) or the table
    over every code (RGB of TABLE_MIN_COUNT pixels, claimed here) equal the
    whole image's histogram."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4, (20000, channels), dtype=np.uint8) * 60
    counter = ColourCounter(channels, max(claimed, len(pixels)))
    assert (counter.table is not None) == (claimed > 0)
    for start in range(0, len(pixels), 777):
        counter.add(*block_counts(pixels[start : start + 777]))
    colors, counts = counter.histogram()
    expected_colors, expected_counts = histogram(pixels)
    np.testing.assert_array_equal(colors, expected_colors)
    np.testing.assert_array_equal(counts, expected_counts)
    assert counts.dtype == expected_counts.dtype


@pytest.mark.parametrize("option", [{"dither": True}, {"psnr": 30.0}, {"quality": 80}, {"smooth": 1.0}])
def test_whole_image_options_refused_by_name(option):
    with pytest.raises(OptionValueError, match=next(iter(option))):
        streamed(photo_like(8, 8, 3), **option)


def test_raw_fallback_when_xz_is_larger(small_pieces):
    """optimize picks raw when xz is not smaller (noise), after trying xz:
    the abandoned attempt leaves nothing behind, also on an unseekable file."""
    array = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    expected = saved(array, colors=256, optimize=True)
    assert expected[16] == 0  # the header's coding byte: raw

    class Pipe(io.BytesIO):
        def seekable(self):
            return False

    pipe = Pipe()
    save_rows(ArrayRows(array), pipe, colors=256, optimize=True)
    assert pipe.getvalue() == expected == streamed(array, colors=256, optimize=True)


def test_npy_rows_and_progress(tmp_path, small_pieces):
    array = photo_like(90, 70, 3)
    np.save(tmp_path / "a.npy", array)
    seen = []
    out = tmp_path / "a.kmq"
    with NpyRows(tmp_path / "a.npy") as source:
        save_rows(source, out, colors=32, optimize=True, progress=lambda *a: seen.append(a))
    assert out.read_bytes() == saved(array, colors=32, optimize=True)
    stages = [stage for stage, _, _ in seen]
    assert stages.index("pixels") < stages.index("quantize") < stages.index("order") < stages.index("code")
    total = len(bands.band_rows(90, bands.choose_band_height(70, 90)))
    assert total > 1 and seen[-1] == ("code", total, total)


def test_pixel_bands_and_random_band(small_pieces):
    array = photo_like(300, 40, 4)
    data = saved(array, colors=40, coding="xz")
    with StreamReader(io.BytesIO(data)) as reader:
        assert len(reader.spans) > 2
        pixels = np.concatenate([block for _, block in reader.pixel_bands()])
        expected = np.asarray(Image.open(io.BytesIO(data)))
        np.testing.assert_array_equal(pixels, expected)
        top, rows = reader.spans[2]
        np.testing.assert_array_equal(reader.codebook[reader.read_band(2)], expected[top : top + rows])


def test_raw_crc_checked_at_the_end(small_pieces):
    data = bytearray(saved(photo_like(50, 40, 3), colors=16, coding="raw"))
    data[-1] ^= 1
    with StreamReader(io.BytesIO(bytes(data))) as reader, pytest.raises(OSError, match="CRC"):
        for _ in reader.label_bands():
            pass


def test_size_limit_as_image_open(monkeypatch):
    data = saved(photo_like(30, 30, 1), colors=4)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(Image.DecompressionBombError):
        StreamReader(io.BytesIO(data))
    assert StreamReader(io.BytesIO(data), check_size=False).shape == (30, 30, 1)


def test_same_bytes_where_bands_take_the_near_dictionary(monkeypatch):
    """A noisy photo-like image at K = 64: its bands take xz's near
    dictionary (streams.near_matches) in both encoders alike."""
    near = []
    compress = streams.compress

    def spy(data, coding, k=256, effort=streams.DEFAULT, near_matches=False):
        near.append(near_matches)
        return compress(data, coding, k, effort, near_matches)

    monkeypatch.setattr(streams, "compress", spy)
    array = photo_like(384, 360, 3)  # 138,240 labels: one band over SMALL_BAND_LABELS
    assert streamed(array, colors=64, optimize=True) == saved(array, colors=64, optimize=True)
    assert any(near)
