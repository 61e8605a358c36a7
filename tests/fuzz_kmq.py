"""Fuzz the .kmq reader: mutated files must fail cleanly and fast.

    python tests/fuzz_kmq.py --seconds 600            # mutation loop
    python tests/fuzz_kmq.py --atheris -- -max_total_time=600   # coverage-guided

Either way, an input that raises anything but SyntaxError / OSError /
ValueError (or DecompressionBombError), or takes longer than the time limit,
is written to fixtures/fuzz/ as crash-*.kmq and the run fails. The mutation
loop also keeps one input for every distinct error it reaches
(fixtures/fuzz/<kind>.kmq with --keep), the corpus tests/test_hostile.py replays.
The same helpers serve the bounded property tests in tests/test_hostile.py.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import re
import struct
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

from PIL import Image

import numpy as np

import pil_kmq  # noqa: F401  (registers KMQ)
from pil_kmq import read_labels
from pil_kmq.format import bands, coding, container, write_file
from pil_kmq.reader import parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FUZZ_DIR = FIXTURES / "fuzz"
TIME_LIMIT = 0.5

# As in Pillow's own fuzzers, images past the bomb warning limit count as
# refused: a file may claim any size up to there (a one-colour image stores
# no indices at all), and nothing bigger is decoded.
ACCEPTED_ERRORS = (
    SyntaxError, OSError, ValueError,
    Image.DecompressionBombError, Image.DecompressionBombWarning,
)

# (name, offset, struct format) of every header field after the magic.
HEADER_FIELDS = [
    ("version", 4, ">B"), ("channels", 5, ">B"), ("width", 6, ">I"), ("height", 10, ">I"),
    ("k", 14, ">H"), ("coding", 16, ">B"), ("flags", 17, ">B"), ("metadata_length", 18, ">I"),
]
_FIELD = {name: (offset, fmt) for name, offset, fmt in HEADER_FIELDS}


def _metadata_seed() -> bytes:
    buffer = io.BytesIO()
    im = Image.open(FIXTURES / "golden" / "rgb_k3.kmq").convert("RGB")
    im.save(buffer, "KMQ", colors=3, icc_profile=b"icc" * 5, exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0",
            dpi=(300, 72.5), xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    return buffer.getvalue()


SEEDS = {
    name: (FIXTURES / "golden" / f"{name}.kmq").read_bytes()
    for name in ("l_k3", "rgb_k16", "rgba_k2", "rgb_k1", "l_k256")
}
SEEDS["with_metadata"] = _metadata_seed()


def _coded_seed(source: str, number: int) -> bytes:
    """A golden file re-stored with a band coding."""
    parsed = parse(SEEDS[source])
    codebook = np.frombuffer(parsed.codebook, np.uint8).reshape(parsed.header.k, -1)
    return write_file(parsed.labels, codebook, coding=number)


def _many_bands_seed(number: int) -> bytes:
    """Three bands (64 rows each, the least a 1024-wide image allows) with
    strip heights 1, 32 and 7."""
    y, x = np.indices((160, 1024))
    labels = ((x // 50 + y // 9) % 5).astype(np.uint8)
    header = container.Header(width=1024, height=160, channels=3, k=5, coding=number)
    head = header.pack() + bytes(range(15))
    start = bands.BAND_HEIGHT.pack(64)
    parts = [start, container.crc_bytes(head + start)]
    for (top, rows), strip in zip(bands.band_rows(160, 64), (1, 32, 7)):
        stream = bands.label_stream(labels[top : top + rows], strip, container.band_label_width(5))
        parts.append(bands.encode_band(stream, strip, number, 5))
    return head + b"".join(parts)


for _number, _name in ((container.ZLIB, "zlib"), (container.XZ, "xz"), (container.ZSTD, "zstd")):
    SEEDS[f"rgb_k16_{_name}"] = _coded_seed("rgb_k16", _number)
    SEEDS[f"l_k3_{_name}"] = _coded_seed("l_k3", _number)
    SEEDS[f"bands_{_name}"] = _many_bands_seed(_number)


def load_bytes(data: bytes) -> Image.Image:
    """Open and fully load a file held in memory, as a user would."""
    im = Image.open(io.BytesIO(data), formats=["KMQ"])
    im.load()
    return im


def every_reader(data: bytes) -> None:
    """Load, verify and read_labels: each must accept or refuse cleanly (they
    need not agree: verify does not decompress bands, read_labels reads row
    0 only); the first refusal is the outcome."""
    outcomes = []
    for attempt in (load_bytes, _verify, lambda d: read_labels(io.BytesIO(d), [0])):
        try:
            attempt(data)
            outcomes.append(None)
        except ACCEPTED_ERRORS as error:
            outcomes.append(error)
    errors = [error for error in outcomes if error is not None]
    if errors:
        raise errors[0]


def _verify(data: bytes) -> None:
    with Image.open(io.BytesIO(data), formats=["KMQ"]) as im:
        im.verify()


def with_fixed_crc(data: bytes | bytearray, **fields: int) -> bytes:
    """Set header fields by name, then repair every length and CRC, so a
    mutation gets past them to the checks (and the decompressors) behind."""
    data = bytearray(data)
    for name, value in fields.items():
        offset, fmt = _FIELD[name]
        struct.pack_into(fmt, data, offset, value)
    return repair(data)


def repair(data: bytes | bytearray) -> bytes:
    """Recompute the file CRC (raw), or the head CRC and each band's CRC,
    clamping a band length that runs past the end (codings 1, 2, 3)."""
    data = bytearray(data)
    if len(data) < container.HEADER_SIZE or data[16] not in coding.BAND_CODINGS:
        if len(data) >= 4:
            data[-4:] = struct.pack(">I", zlib.crc32(bytes(data[:-4])))
        return bytes(data)
    channels, k, meta = data[5], struct.unpack_from(">H", data, 14)[0], struct.unpack_from(">I", data, 18)[0]
    offset = container.HEADER_SIZE + meta + k * channels
    if offset + 8 > len(data):
        return bytes(data)
    data[offset + 4 : offset + 8] = container.crc_bytes(bytes(data[: offset + 4]))
    position = offset + 8
    while position + bands.BAND_OVERHEAD + 1 <= len(data):
        (length,) = struct.unpack_from(">I", data, position + 1)
        room = len(data) - position - bands.BAND_OVERHEAD
        if length > room or length == 0:
            length = room
            struct.pack_into(">I", data, position + 1, length)
        end = position + 5 + length
        data[end : end + 4] = container.crc_bytes(bytes(data[position:end]))
        position = end + 4
    return bytes(data)


# A valid body of every defined chunk type, for mutate_metadata to vary.
CHUNK_BODIES = {
    b"iCCP": b"icc", b"eXIf": b"MM\0*\0\0\0\x08", b"smTh": b"1.5",
    b"dpIn": struct.pack(">dd", 300, 72.5), b"xMPp": b"<x:xmpmeta/>",
}
ODD_DOUBLES = (0.0, -0.0, -1.0, float("nan"), float("inf"), 5e-324, 1e308, 300.0)


def mutate_metadata(data: bytes, rng: random.Random) -> bytes:
    """One chunk of a defined type added to the metadata region, valid or
    varied (a byte, its length, its type's case, odd resolutions, twice),
    M and every CRC repaired: the chunk rules, not the CRC, must catch it."""
    if len(data) < container.HEADER_SIZE:
        return data
    (meta,) = struct.unpack_from(">I", data, 18)
    tag = rng.choice(list(CHUNK_BODIES))
    body = bytearray(CHUNK_BODIES[tag])
    variant = rng.randrange(6)
    if variant == 1:
        body[rng.randrange(len(body))] = rng.randrange(256)
    elif variant == 2:
        body = body[: rng.randrange(len(body))] if rng.random() < 0.5 else body + b"\0"
    elif variant == 3:
        position = rng.randrange(4)
        tag = tag[:position] + bytes([tag[position] ^ 0x20]) + tag[position + 1 :]
    elif variant == 4:
        tag, body = b"dpIn", struct.pack(">dd", rng.choice(ODD_DOUBLES), rng.choice(ODD_DOUBLES))
    added = struct.pack(">4sI", tag, len(body)) + body
    added *= 2 if variant == 5 else 1
    region = data[22 : 22 + meta] + added
    return with_fixed_crc(data[:18] + struct.pack(">I", len(region)) + region + data[22 + meta :])


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation of the kinds an attacker or a bad disk makes."""
    kind = rng.randrange(9)
    if kind == 8:
        return mutate_metadata(data, rng)
    if kind == 0:
        return data[: rng.randrange(len(data))]
    if kind == 1:
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out) if rng.random() < 0.5 else with_fixed_crc(out)
    if kind == 2:
        name, _, fmt = rng.choice(HEADER_FIELDS)
        maximum = (1 << (8 * struct.calcsize(fmt))) - 1
        value = rng.choice([0, 1, maximum, rng.randint(0, maximum), min(maximum, rng.randint(0, 300))])
        return with_fixed_crc(data, **{name: value})
    if kind == 3:
        return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    if kind == 4:
        return b"KMQF" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    if kind == 5:  # splice two seeds
        other = rng.choice(list(SEEDS.values()))
        cut = rng.randrange(len(data))
        return with_fixed_crc(data[:cut] + other[cut:])
    if kind == 7:  # inside the payload, every length and CRC repaired
        out = bytearray(data)
        start = min(len(out) - 1, 22 + rng.randrange(max(1, len(out) - 22)))
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(start, len(out))] = rng.randrange(256)
        return repair(out)
    out = bytearray(data)
    position = rng.randrange(len(out))
    out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def judge(data: bytes) -> str:
    """'ok', or the error's kind (type and message without numbers); raises
    AssertionError for an unexpected exception type or a slow input. Slow in
    CPU time, this process's threads: the work an input makes, which a busy
    machine does not inflate as it does wall time (inputs of at most 4 ms of
    CPU took 0.51 s wall once, the suite in two workers at load 9 on 2 cores)."""
    start = time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            every_reader(data)
        kind = "ok"
    except ACCEPTED_ERRORS as error:
        if not str(error):
            raise AssertionError(f"{type(error).__name__} without a message") from error
        message = re.sub(r"b'.*?'|b\".*?\"|<.*?>", "X", str(error))
        kind = f"{type(error).__name__}: {re.sub(r'[0-9a-fx]*[0-9][0-9a-fx]*', 'N', message)}"
    elapsed = time.process_time() - start
    if elapsed > TIME_LIMIT:
        raise AssertionError(f"took {elapsed:.2f} s of CPU")
    return kind


def save_crash(data: bytes, reason: str) -> Path:
    FUZZ_DIR.mkdir(exist_ok=True)
    path = FUZZ_DIR / f"crash-{hashlib.sha1(data).hexdigest()[:12]}.kmq"
    path.write_bytes(data)
    print(f"CRASH {path}: {reason}", file=sys.stderr)
    return path


def mutation_loop(seconds: float, seed: int, keep: bool) -> int:
    rng = random.Random(seed)
    seeds = list(SEEDS.values())
    kinds: dict[str, bytes] = {}
    tried = crashes = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = mutate(rng.choice(seeds), rng)
        tried += 1
        try:
            kind = judge(data)
        except Exception as error:  # anything else is a finding
            crashes += 1
            save_crash(data, f"{type(error).__name__}: {error}")
            continue
        if kind not in kinds or len(data) < len(kinds[kind]):
            kinds[kind] = data
    print(f"{tried} inputs in {seconds:.0f} s, {crashes} crashes, {len(kinds)} distinct outcomes:")
    for kind in sorted(kinds):
        print(f"  {kind}")
    if keep:
        FUZZ_DIR.mkdir(exist_ok=True)
        for kind, data in kinds.items():
            name = re.sub(r"[^a-z0-9]+", "_", kind.lower()).strip("_")[:60]
            (FUZZ_DIR / f"{name}.kmq").write_bytes(data)
    return 1 if crashes else 0


def atheris_main(argv: list[str]) -> int:
    import atheris  # optional: pip install atheris

    def one_input(data: bytes) -> None:
        try:
            judge(data)
        except AssertionError:
            save_crash(data, "slow")
            raise

    corpus = Path(tempfile.mkdtemp(prefix="kmq-corpus-"))
    for name, data in SEEDS.items():
        (corpus / f"{name}.kmq").write_bytes(data)
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *argv, str(corpus)], one_input)
    print(f"corpus: {corpus}", file=sys.stderr)
    atheris.Fuzz()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="mutation loop run time (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="mutation loop seed (default 0)")
    parser.add_argument("--keep", action="store_true", help="write one input per outcome to fixtures/fuzz")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided with atheris")
    parser.add_argument("rest", nargs="*", help="arguments for libFuzzer (after --)")
    args = parser.parse_args()
    if args.atheris:
        return atheris_main(args.rest)
    return mutation_loop(args.seconds, args.seed, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
