import numpy as np
import pytest

from pil_kmq.format import bitpack
from pil_kmq.format.bitpack import bits_per_label, pack, packed_size, padding_is_zero, unpack


@pytest.mark.parametrize(
    "k, bits", [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (16, 4), (17, 5), (128, 7), (129, 8), (256, 8)]
)
def test_bits_per_label_is_ceil_log2(k, bits):
    assert bits_per_label(k) == bits


@pytest.mark.parametrize("k", [0, 257, -1])
def test_bits_per_label_rejects_k_out_of_range(k):
    with pytest.raises(ValueError):
        bits_per_label(k)


@pytest.mark.parametrize("bits", range(0, 9))
@pytest.mark.parametrize("count", [1, 2, 7, 8, 9, 15, 16, 17, 1001])
def test_pack_matches_a_bit_string_and_round_trips(bits, count):
    rng = np.random.default_rng(bits * 1000 + count)
    labels = rng.integers(0, 1 << bits, count, dtype=np.uint8)
    stream = pack(labels, bits)
    assert len(stream) == packed_size(count, bits)
    expected = "".join(format(int(v), f"0{bits}b") for v in labels) if bits else ""
    expected += "0" * (-len(expected) % 8)
    assert stream == (int(expected, 2).to_bytes(len(expected) // 8, "big") if expected else b"")
    assert np.array_equal(unpack(stream, count, bits), labels)
    assert padding_is_zero(stream, count, bits)


def test_padding_check_sees_a_set_bit():
    assert not padding_is_zero(bytes([0b1010_1001]), 5, 1)
    assert padding_is_zero(bytes([0b1010_1000]), 5, 1)


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 63, 64, 65, 200])
def test_pack_matches_the_bit_string_across_slices(bits, count, monkeypatch):
    """Packing works in slices (bounded memory); with slices of 16 labels the
    joins fall inside these counts, and the stream must still be the plain
    MSB-first bit string of the labels."""
    monkeypatch.setattr(bitpack, "SLICE_LABELS", 16)
    labels = np.random.default_rng(bits * 1000 + count).integers(0, 1 << bits, count).astype(np.uint8)
    bit_string = ((labels[:, None] >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8).reshape(-1)
    assert bitpack.pack(labels, bits) == np.packbits(bit_string).tobytes()
