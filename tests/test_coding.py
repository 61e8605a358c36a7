"""The codings: round trips, strip order, band heights, optimize, threads."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers import FIXTURES, label_map
import pil_kmq  # noqa: F401  (registers the format)
from pil_kmq.format import bands, coding, container, parallel, streams, write_file
from pil_kmq.reader import parse

MODES = {"L": 1, "RGB": 3, "RGBA": 4}
KS = (1, 2, 3, 16, 256)
ALL_CODINGS = (container.RAW, container.ZLIB, container.XZ, container.ZSTD)
BAND_CODINGS = (container.ZLIB, container.XZ, container.ZSTD)


def distinct_codebook(k: int, channels: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if channels == 1:
        return rng.permutation(256)[:k].astype(np.uint8).reshape(k, 1)
    book = rng.integers(0, 256, (k, channels)).astype(np.uint8)
    book[:, 0] = rng.permutation(256)[:k]
    return book


ROUND_TRIPS = [(number, k, shape, False) for number in ALL_CODINGS for k in KS
               for shape in [(23, 37), (1, 50), (50, 1), (1, 1), (70, 9)]]
# optimize orders the codebook (an eigendecomposition per split): fewer cases
ROUND_TRIPS += [(number, k, shape, True) for number in ALL_CODINGS for k in (1, 3, 16, 256)
                for shape in [(23, 37), (1, 50), (50, 1)]]


@pytest.mark.parametrize("number, k, shape, optimize", ROUND_TRIPS)
def test_round_trip(number, k, shape, optimize):
    labels = label_map(*shape, k)
    book = distinct_codebook(k, 3)
    data = write_file(labels, book, coding=number, optimize=optimize)
    parsed = parse(data)
    assert parsed.header.coding == number
    codebook = np.frombuffer(parsed.codebook, np.uint8).reshape(k, 3)
    np.testing.assert_array_equal(codebook[parsed.labels], book[labels])


@pytest.mark.parametrize("number", ALL_CODINGS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", KS)
def test_every_coding_opens_in_pillow(number, mode, k):
    labels = label_map(19, 26, k, seed=k)
    book = distinct_codebook(k, MODES[mode])
    data = write_file(labels, book, coding=number)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode and image.size == (26, 19)
        pixels = np.asarray(image)
    expected = book[labels]
    if mode == "L":
        expected = expected[..., 0]
    np.testing.assert_array_equal(pixels, expected)


def test_strip_order_is_column_major_inside_strips():
    labels = np.arange(15, dtype=np.uint8).reshape(5, 3)
    # strips of 2 rows: rows 0-1, rows 2-3, then row 4 alone
    assert list(bands.to_strip_order(labels, 2)) == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, 12, 13, 14]
    assert bands.to_strip_order(labels, 1).tobytes() == labels.tobytes()


@pytest.mark.parametrize("width, height", [(768, 512), (1, 70000), (70000, 1), (3, 2), (5000, 5000), (257, 1000)])
def test_band_height_is_within_the_spec_range_and_even(width, height):
    band = bands.choose_band_height(width, height)
    bands.check_band_height(band, width, height)
    rows = bands.band_rows(height, band)
    assert sum(count for _, count in rows) == height
    if len(rows) > 1:
        assert band % bands.STRIP_ALIGN == 0
        assert width * band >= bands.MIN_BAND_LABELS


def test_kodak_sized_images_get_two_equal_bands():
    assert bands.choose_band_height(768, 512) == 256


@pytest.mark.parametrize("width, rows", [(30000, 37), (100, 3997)])
def test_pieces_of_a_band_cover_it_once(width, rows):
    """Pieces are bounded whatever the band: a strip wider than a piece is
    cut into runs of columns; narrow strips go several to a piece, each
    label where strip order puts it."""
    seen = np.zeros((rows + 3, width), np.int32)
    for strip in (1, 7, 32):
        seen[:] = 0
        band = bands.Band(0, 3, rows, 0, strip, 1)
        expected = label_map(rows, width, 256, seed=strip)
        stream = bands.to_strip_order(expected, strip)
        position = 0
        pieces = 0

        def sink(x0, y0, block):
            assert block.size <= bands.PIECE_LABELS
            np.testing.assert_array_equal(block, expected[y0 - 3 : y0 - 3 + block.shape[0], x0 : x0 + block.shape[1]])
            seen[y0 : y0 + block.shape[0], x0 : x0 + block.shape[1]] += 1

        for count, place in bands._pieces(band, width):
            place(stream[position : position + count], sink)
            position += count
            pieces += 1
        assert position == stream.size
        assert (seen[3:] == 1).all() and (seen[:3] == 0).all()
        if width == 100:  # 399,700 labels: two pieces, and the last short strip
            assert pieces <= 3, (strip, pieces)


def test_optimize_is_smaller_and_deterministic():
    labels = label_map(64, 96, 16)
    book = distinct_codebook(16, 3)
    outputs = {write_file(labels, book, optimize=True) for _ in range(2)}
    assert len(outputs) == 1
    (data,) = outputs
    assert parse(data).header.coding == container.XZ
    assert len(data) < len(write_file(labels, book)) / 2


def test_optimize_keeps_raw_when_raw_is_smaller():
    labels = np.random.default_rng(0).integers(0, 2, (40, 40), dtype=np.uint8)
    data = write_file(labels, distinct_codebook(2, 3), optimize=True)
    assert parse(data).header.coding == container.RAW


@pytest.mark.parametrize("number", BAND_CODINGS)
def test_output_is_the_same_at_every_thread_count(number, monkeypatch):
    # bands of a few kilo-labels: the same small-band path as 1 << 16, at a
    # fifteenth of the labels
    monkeypatch.setattr(bands, "MIN_BAND_LABELS", 1 << 10)
    monkeypatch.setattr(bands, "TARGET_BAND_LABELS", 1 << 12)
    labels = label_map(150, 130, 64, seed=9)  # five bands, one for each of 5 threads
    book = distinct_codebook(64, 3)
    files, images = set(), set()
    for threads in (1, 2, 5):
        monkeypatch.setattr(parallel, "THREADS", threads)
        data = write_file(labels, book, coding=number, optimize=True)
        files.add(data)
        with Image.open(io.BytesIO(data)) as im:
            images.add(im.tobytes())
    assert len(files) == 1 and len(images) == 1
    assert len(bands.band_rows(150, bands.choose_band_height(130, 150))) == 5


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setattr(parallel, "THREADS", None)
    monkeypatch.setenv("PIL_KMQ_THREADS", "3")
    assert parallel.thread_count() == 3
    monkeypatch.setattr(parallel, "THREADS", 1)
    assert parallel.thread_count() == 1
    monkeypatch.setattr(parallel, "THREADS", None)
    monkeypatch.setenv("PIL_KMQ_THREADS", "many")
    with pytest.raises(ValueError, match="PIL_KMQ_THREADS"):
        parallel.thread_count()


def test_the_first_failing_band_is_the_error_at_every_thread_count(monkeypatch):
    monkeypatch.setattr(bands, "TARGET_BAND_LABELS", 1 << 16)
    labels = label_map(600, 500, 64, seed=9)
    data = bytearray(write_file(labels, distinct_codebook(64, 3), coding=container.ZLIB))
    data[-3] ^= 1  # last band's CRC
    first_band = 22 + 64 * 3 + 8 + 5 + 100
    data[first_band] ^= 1  # inside band 0's stream
    for threads in (1, 2, 4):
        monkeypatch.setattr(parallel, "THREADS", threads)
        with pytest.raises(OSError, match=r"band 0\b"):
            Image.open(io.BytesIO(bytes(data))).load()


def test_bad_arguments_raise_value_error():
    book = distinct_codebook(4, 3)
    with pytest.raises(ValueError):
        write_file(np.full((2, 2), 4, np.uint8), book)
    with pytest.raises(ValueError):
        write_file(np.zeros((2, 2), np.uint8), book, coding=7)
    with pytest.raises(ValueError):
        write_file(np.zeros((0, 2), np.uint8), book)
    assert coding.NAMES == {0: "raw", 1: "zlib", 2: "xz", 3: "zstd"}


@pytest.mark.parametrize("k, width", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 4), (16, 4), (17, 8), (256, 8)])
def test_band_label_width_is_the_smallest_byte_divisor_that_holds_a_label(k, width):
    assert container.band_label_width(k) == width
    assert container.band_label_width(k, version=2) == 8


@pytest.mark.parametrize("number", BAND_CODINGS)
@pytest.mark.parametrize("k", [2, 3, 5, 16])
def test_pieces_that_split_a_byte_of_packed_labels_decode(number, k, monkeypatch):
    """Pieces of an odd number of labels end inside a byte of 1-, 2- or
    4-bit labels: the rest of that byte starts the next piece."""
    monkeypatch.setattr(bands, "PIECE_LABELS", 7)
    labels = label_map(45, 11, k)
    book = distinct_codebook(k, 3)
    data = write_file(labels, book, coding=number, optimize=True)
    parsed = parse(data)
    codebook = np.frombuffer(parsed.codebook, np.uint8).reshape(k, 3)
    np.testing.assert_array_equal(codebook[parsed.labels], book[labels])


def test_packed_band_streams_are_smaller_and_quicker_to_compress_at_small_k():
    """The point of w < 8: half (K <= 16) to an eighth (K = 2) of the bytes
    for LZMA2 to code; on a two-colour map the file shrinks too."""
    y, x = np.indices((256, 256))
    labels = ((x // 3 + y // 5) % 2).astype(np.uint8)
    stream = bands.label_stream(labels, 1, container.band_label_width(2))
    assert len(stream) == labels.size // 8
    packed = len(bands.encode_band(bands.label_stream(labels, 1, 1), 1, container.XZ, 2))
    one_per_byte = len(bands.encode_band(bands.label_stream(labels, 1, 8), 1, container.XZ, 2))
    assert packed < one_per_byte


def test_version_2_files_still_decode():
    """pil_kmq 0.2 wrote version 2 (band labels one per byte at every K):
    its raw, zlib and xz files of one image decode to the same pixels."""
    folder = FIXTURES / "v2"
    decoded = []
    for name in ("rgb_k16.kmq", "rgb_k16_zlib.kmq", "rgb_k16_xz.kmq"):
        data = (folder / name).read_bytes()
        assert data[4] == 2
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            decoded.append(np.asarray(image.convert("RGB")))
    assert decoded[0].std() > 10
    for pixels in decoded[1:]:
        np.testing.assert_array_equal(pixels, decoded[0])


@pytest.mark.parametrize("mode", MODES)
def test_zstd_round_trips_at_every_k(mode):
    """Coding 3 at K = 1..256: every label width w (1, 2, 4, 8), a band
    whose labels end inside a byte (odd width), every mode through Pillow."""
    for k in range(1, 257):
        labels = label_map(13, 21, k, seed=k)
        book = distinct_codebook(k, MODES[mode], seed=k)
        data = write_file(labels, book, coding=container.ZSTD)
        assert data[16] == container.ZSTD
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image)
        expected = book[labels][..., 0] if mode == "L" else book[labels]
        np.testing.assert_array_equal(pixels, expected, err_msg=f"K={k}")


def test_zstd_frames_state_their_size_and_no_checksum_dictionary_or_large_window():
    """What the encoder writes keeps coding 3's frame rules, on a band wider
    than the window (a 2 Mpx row at K = 256: one row is 2 MiB of labels)."""
    from pil_kmq.format import streams

    labels = (np.arange(2_100_000) % 251 // 7).astype(np.uint8).reshape(1, -1)
    data = write_file(labels, distinct_codebook(256, 1), coding=container.ZSTD)
    frame = data[22 + 256 + 8 + 5 :]
    assert frame[:4] == streams.ZSTD_MAGIC
    descriptor, window_descriptor = frame[4], frame[5]
    assert descriptor & 0x27 == 0  # not single segment, no checksum, no dictionary
    assert descriptor >> 6 == 2  # a 4-byte content size
    assert 1 << (10 + (window_descriptor >> 3)) <= streams.MAX_WINDOW
    assert int.from_bytes(frame[6:10], "little") == labels.size
    np.testing.assert_array_equal(parse(data).labels, labels)


def test_zstd_chooses_the_strip_height_without_optimize():
    """Every column a random walk: no two rows alike, so S = 32 (columns)
    codes it far better than S = 1 (rows), and zstd takes it unasked (zlib
    keeps S = 1 without optimize)."""
    steps = np.random.default_rng(3).integers(-1, 2, (64, 600))
    labels = (np.cumsum(steps, axis=0) % 16).astype(np.uint8)
    book = distinct_codebook(16, 3)
    zstd_file, zlib_file = (write_file(labels, book, coding=number)
                            for number in (container.ZSTD, container.ZLIB))
    assert zstd_file[22 + 48 + 8] == 32 and zlib_file[22 + 48 + 8] == 1


def test_optimize_may_choose_zstd_when_it_is_the_smallest():
    """A map zstd codes smaller than LZMA2: an exact repeat of two rows of
    random labels, where zstd's matches cost less than LZMA2's chunk
    headers (test_stream's map; on 8 rows of 700 repeated 8 times xz is
    the smaller now, 6173 bytes to 6262, so that map no longer shows it)."""
    block = np.random.default_rng(5).integers(0, 200, (2, 2000), dtype=np.uint8)
    labels = np.tile(block, (32, 1))
    book = distinct_codebook(200, 3)
    sizes = {number: len(write_file(labels, book, coding=number, optimize=True))
             for number in (container.XZ, container.ZSTD)}
    data = write_file(labels, book, optimize=True)
    best = min(sizes, key=sizes.get)
    assert best == container.ZSTD, sizes
    assert parse(data).header.coding == best and len(data) == sizes[best]


def synthetic_icon(size: int = 64) -> np.ndarray:
    """An RGBA icon: a shaded disc whose edge fades out, on a transparent
    background (the fully transparent pixels are (0, 0, 0, 0))."""
    y, x = (np.indices((size, size)) + 0.5) / size - 0.5
    radius = np.hypot(x, y)
    alpha = np.clip((0.45 - radius) / 0.08, 0, 1)
    shade = np.clip(0.5 + x - y, 0, 1)
    rgba = np.stack([200 * shade + 40, 120 * shade + 60, 255 - 150 * shade, 255 * alpha], -1)
    rgba = rgba.round().astype(np.uint8)
    rgba[alpha == 0] = 0
    return rgba


@pytest.mark.parametrize("k", [16, 64])
def test_small_bands_try_every_strip_height_and_keep_the_smallest(k, monkeypatch):
    labels, book = pil_kmq.compress(synthetic_icon(), k)
    data = write_file(labels, book, optimize=True)
    decoded = parse(data)
    assert decoded.header.coding == container.XZ
    palette = np.frombuffer(decoded.codebook, np.uint8).reshape(-1, 4)
    assert np.array_equal(palette[decoded.labels], book[labels])  # decodes the same
    # one band: its S is one of the candidates, and trying them all
    # thoroughly would code it at most a little smaller
    strip, length = bands.BAND_HEAD.unpack_from(decoded.payload, bands.PAYLOAD_HEAD_SIZE)
    assert strip in bands.SMALL_BAND_STRIPS
    ordered, _ = coding.ordered(labels, book)
    width = container.band_label_width(k)
    thorough = [len(bands.encode_band(bands.label_stream(ordered, other, width), other,
                                      container.XZ, k, effort=streams.THOROUGH))
                for other in bands.SMALL_BAND_STRIPS]
    assert min(thorough) <= length + bands.BAND_OVERHEAD <= 1.01 * min(thorough)
    # and the file is smaller than with the zlib-1 predictor's choice of 32 or 1
    monkeypatch.setattr(bands, "SMALL_BAND_LABELS", 0)
    assert len(data) < len(write_file(labels, book, optimize=True))


def test_large_bands_keep_the_predicted_strip_height(monkeypatch):
    def refuse(*args):
        raise AssertionError("a large band went through smallest_band")

    monkeypatch.setattr(bands, "smallest_band", refuse)
    labels = label_map(400, 400, 16)  # one band of 160,000 labels
    data = write_file(labels, distinct_codebook(16, 3), optimize=True)
    assert bands.BAND_HEAD.unpack_from(parse(data).payload, bands.PAYLOAD_HEAD_SIZE)[0] in (1, 32)


def test_optimize_tries_zstd_only_where_xz_takes_few_bits_per_label(monkeypatch):
    """Noise costs xz about log2(K) bits a label: zstd cannot win there and
    is not tried; a repeated block costs a small fraction of a bit and is."""
    tried = []
    payload = coding.payload

    def spy(labels, k, number, *args, **kwargs):
        tried.append(number)
        return payload(labels, k, number, *args, **kwargs)

    monkeypatch.setattr(coding, "payload", spy)
    book = distinct_codebook(200, 3)
    noise = np.random.default_rng(6).integers(0, 200, (64, 700), dtype=np.uint8)
    steps = []
    write_file(noise, book, optimize=True, progress=lambda done, total: steps.append((done, total)))
    assert container.ZSTD not in tried and container.XZ in tried
    assert steps[-1][0] == steps[-1][1]  # the skipped trial still counts as done
    tried.clear()
    write_file(np.tile(noise[:2], (32, 1)), book, optimize=True)
    assert container.ZSTD in tried
    tried.clear()
    write_file(noise, book, coding=container.ZSTD, optimize=True)  # asked for: always made
    assert tried == [container.ZSTD]


def test_poorly_compressing_byte_label_bands_get_the_near_dictionary(monkeypatch):
    """optimize's xz codes a band of byte labels whose zlib level 1 stream
    keeps at least NEAR_RATIO of its bytes (noise, photographs) with the
    4 KiB dictionary, a band of runs and any packed band (K <= 16) with
    1 MiB, as does a plain xz save (its codebook is not ordered); every file
    decodes with the spec's 1 MiB dictionary."""
    dictionaries = []
    filters = streams.lzma2_filters

    def spy(*args, **kwargs):
        chain = filters(*args, **kwargs)
        dictionaries.append(chain[0]["dict_size"])
        return chain

    monkeypatch.setattr(streams, "lzma2_filters", spy)
    noise = np.random.default_rng(3).integers(0, 200, (384, 512)).astype(np.uint8)  # one band
    runs = np.repeat(noise[:, ::64], 64, axis=1)
    cases = [(noise, 200, streams.NEAR_DICT_SIZE), (runs, 200, streams.LZMA2_DICT_SIZE),
             (noise % 16, 16, streams.LZMA2_DICT_SIZE)]
    for labels, k, expected in cases:
        for optimize in (False, True):
            dictionaries.clear()
            data = write_file(labels, distinct_codebook(k, 3), coding=container.XZ, optimize=optimize)
            assert dictionaries == [expected if optimize else streams.LZMA2_DICT_SIZE]
            decoded = parse(data)
            palette = np.frombuffer(decoded.codebook, np.uint8).reshape(-1, 3)
            assert np.array_equal(palette[decoded.labels], distinct_codebook(k, 3)[labels])


def test_xz_predicts_the_strip_height_from_every_other_strip(monkeypatch):
    """xz's zlib-1 predictor compresses half of a band's rows (every other
    PREDICTOR_STRIP rows, the same rows in each candidate order); zstd's
    sees the whole band. Either way the band decodes to its labels."""
    seen = []

    class Spy:
        @staticmethod
        def compress(data, level=-1):
            seen.append(len(data))
            return zlib.compress(data, level)

    monkeypatch.setattr(coding, "zlib", Spy)
    labels = label_map(160, 1000, 200)  # one band of 160,000 byte labels
    for number, predicted in ((container.XZ, 96 * 1000), (container.ZSTD, 160 * 1000)):
        seen.clear()
        data = write_file(labels, distinct_codebook(200, 3), coding=number, optimize=True)
        assert seen == [predicted, predicted]  # rows 0-31, 64-95, 128-159 / all, for S = 32 and 1
        decoded = parse(data)
        palette = np.frombuffer(decoded.codebook, np.uint8).reshape(-1, 3)
        assert np.array_equal(palette[decoded.labels], distinct_codebook(200, 3)[labels])
    assert np.array_equal(coding.predictor_sample(labels[:32]), labels[:32])
