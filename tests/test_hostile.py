"""Hostile input: mutated files fail cleanly and fast; saving loses nothing.

The property tests run a bounded number of mutations of real files on every
test run; tests/fuzz_kmq.py runs the same checks for as long as you like.
"""

from __future__ import annotations

import io
import os
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import FIXTURES, gradient_image, noise_image
from fuzz_kmq import HEADER_FIELDS, SEEDS, judge, load_bytes, mutate, repair, with_fixed_crc


def check_clean_failure(data: bytes) -> None:
    """Loads, or fails with a clean error and a message, within the time limit."""
    judge(data)


seed_files = st.sampled_from(sorted(SEEDS))
fuzz_settings = settings(
    max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@fuzz_settings
@given(name=seed_files, data=st.data())
def test_any_truncation_fails_cleanly(name, data):
    original = SEEDS[name]
    cut = data.draw(st.integers(0, len(original) - 1))
    check_clean_failure(original[:cut])


@fuzz_settings
@given(name=seed_files, field=st.sampled_from(HEADER_FIELDS), data=st.data(), fix_crc=st.booleans())
def test_any_header_field_value_fails_cleanly(name, field, data, fix_crc):
    _, offset, fmt = field
    maximum = (1 << (8 * struct.calcsize(fmt))) - 1
    value = data.draw(st.sampled_from([0, 1, maximum]) | st.integers(0, maximum))
    mutated = bytearray(SEEDS[name])
    struct.pack_into(fmt, mutated, offset, value)
    check_clean_failure(with_fixed_crc(bytes(mutated)) if fix_crc else bytes(mutated))


@fuzz_settings
@given(name=seed_files, data=st.data(), fix_crc=st.booleans())
def test_random_byte_changes_fail_cleanly(name, data, fix_crc):
    mutated = bytearray(SEEDS[name])
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    check_clean_failure(with_fixed_crc(bytes(mutated)) if fix_crc else bytes(mutated))


@fuzz_settings
@given(name=seed_files, garbage=st.binary(min_size=1, max_size=64))
def test_trailing_garbage_is_rejected(name, garbage):
    with pytest.raises(OSError):
        load_bytes(SEEDS[name] + garbage)


@fuzz_settings
@given(body=st.binary(max_size=200), magic=st.booleans())
def test_random_bytes_fail_cleanly(body, magic):
    check_clean_failure((b"KMQF" if magic else b"") + body)


def test_a_mutated_crc_is_always_caught():
    for name, original in SEEDS.items():
        for bit in range(32):
            mutated = bytearray(original)
            mutated[-4 + bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(OSError, match="CRC"):
                load_bytes(bytes(mutated))


def test_interesting_inputs_the_fuzzer_found():
    """Every file in fixtures/fuzz is a case the long fuzz run kept."""
    for path in sorted((FIXTURES / "fuzz").glob("*.kmq")):
        check_clean_failure(path.read_bytes())


def test_huge_claimed_size_is_refused_before_allocation(monkeypatch):
    """A 60 kB-claiming header in a tiny file: refused from the length, before
    Pillow allocates the image (the bomb limit is off to prove it)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    allocations = []
    original_new = Image.core.new
    monkeypatch.setattr(Image.core, "new", lambda *a: allocations.append(a) or original_new(*a))
    data = with_fixed_crc(bytearray(SEEDS["rgb_k16"]), width=60000, height=60000)
    with pytest.raises(OSError, match="truncated"):
        load_bytes(data)
    assert allocations == []


# --- threads --------------------------------------------------------------


def test_loading_from_eight_threads_gives_the_same_pixels():
    files = [(FIXTURES / "golden" / name).read_bytes() for name in sorted(os.listdir(FIXTURES / "golden"))]
    expected = [load_bytes(data).tobytes() for data in files]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(lambda d: load_bytes(d).tobytes(), files)) == expected


@pytest.mark.parametrize("params", [{"colors": 16}, {"colors": 16, "optimize": True},
                                    {"colors": 8, "dither": True}])
def test_encoding_from_eight_threads_gives_identical_files(params):
    images = [gradient_image(48, 32), noise_image(40, 30, seed=2), gradient_image(30, 30, "RGBA")]

    def encode(im: Image.Image) -> bytes:
        buffer = io.BytesIO()
        im.save(buffer, "KMQ", **params)
        return buffer.getvalue()

    expected = [encode(im) for im in images]
    barrier = threading.Barrier(8)

    def encode_all(_):
        # Each thread saves its own Image objects: Pillow keeps the save
        # options on the image (im.encoderinfo) while it saves.
        own = [im.copy() for im in images]
        barrier.wait()
        return [encode(im) for im in own]

    with ThreadPoolExecutor(8) as pool:
        for result in pool.map(encode_all, range(8)):
            assert result == expected


# --- saving never loses data ----------------------------------------------

FAILURES = {
    "bad option": ({"colors": 300}, "colors must be an integer from 1 to 256"),
    "unsupported mode": ({"mode": "F"}, "mode F"),
    "failure mid-quantization": ({"explode": True}, "k-means exploded"),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_save_leaves_no_plausible_file(case, existing, tmp_path, monkeypatch):
    params, message = FAILURES[case]
    params = dict(params)
    im = Image.new(params.pop("mode", "RGB"), (20, 20))
    if params.pop("explode", False):
        def explode(*args, **kwargs):
            raise RuntimeError("k-means exploded")

        im = noise_image(20, 20)
        monkeypatch.setattr("pil_kmq.quantize.quantizer.kmeans", explode)
    target = tmp_path / "out.kmq"
    if existing:
        target.write_bytes(b"precious")
    with pytest.raises(Exception, match=message):
        im.save(target, **params)
    if existing:
        # Pillow truncates the target before any plugin runs; nothing of a
        # .kmq was written after that.
        assert target.read_bytes() == b""
    else:
        assert not target.exists()


def test_save_writes_the_file_in_one_write():
    writes = []

    class Recorder(io.BytesIO):
        def write(self, data):
            writes.append(len(data))
            return super().write(data)

    out = Recorder()
    gradient_image(30, 20).save(out, "KMQ", colors=8)
    assert len(writes) == 1 and writes[0] == len(out.getvalue())


def test_seeds_are_valid_and_repair_leaves_them_as_they_are():
    for name, data in SEEDS.items():
        assert load_bytes(data).size, name
        assert repair(data) == data, name


def test_repaired_mutations_reach_the_band_decompressors():
    """Payload mutations with every length and CRC repaired must get past
    the CRC checks to the streams themselves."""
    import random

    rng = random.Random(5)
    outcomes = set()
    for name in ("bands_zlib", "bands_xz", "bands_zstd", "rgb_k16_xz"):
        for _ in range(60):
            data = bytearray(SEEDS[name])
            data[-30 - rng.randrange(40)] ^= 1 << rng.randrange(8)
            outcome = judge(repair(data))
            outcomes.add(outcome.split(":")[0] + ":" + ("CRC" if "CRC" in outcome else "other"))
    assert not any(o.endswith("CRC") for o in outcomes), outcomes


@fuzz_settings
@given(name=seed_files, seed=st.integers(0, 2**32 - 1))
def test_random_mutations_fail_cleanly(name, seed):
    import random

    check_clean_failure(mutate(SEEDS[name], random.Random(seed)))
