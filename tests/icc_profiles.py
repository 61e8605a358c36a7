"""ICC profiles built byte by byte with struct, for the colour-management
tests: no profile file is copied from anywhere, and Pillow can only create
sRGB, LAB and XYZ ones (ImageCms.createProfile), no grey or CMYK one.

icc_profile() writes a version 2 profile from its tags (test_pillow_users
builds its grey one with it). cmyk_profile() is a minimal valid ICC v2
output ('prtr') profile, data colour space CMYK, PCS Lab: the tags an
output profile requires (desc, cprt, wtpt, A2B0, B2A0, gamt), each lut an
mft2 (lut16Type) with identity matrix and curves and a small CLUT. Its
colours come from a toy subtractive ink model (ink_reflectance), chosen so
that they differ clearly from Pillow's naive CMYK -> RGB (255 - C - K,
...): paper white for no ink, black for full ink, cyan ink a mid
blue-green rather than pure (0, 255, 255).
"""

from __future__ import annotations

import itertools
import struct

import numpy as np

D50 = (0.9642, 1.0, 0.8249)

# Linear-light reflectance of each ink in sRGB's red, green and blue: a
# printed colour reflects the product of the inks' (Beer-Lambert-ish,
# interpolated linearly in the amount of ink).
INKS = {
    "cyan": (0.05, 0.45, 0.85),
    "magenta": (0.85, 0.08, 0.45),
    "yellow": (0.95, 0.85, 0.05),
    "black": (0.04, 0.04, 0.04),
}

# Linear sRGB to XYZ, Bradford-adapted to the D50 of the profile connection space.
SRGB_TO_XYZ_D50 = np.array([
    [0.4360747, 0.3850649, 0.1430804],
    [0.2225045, 0.7168786, 0.0606169],
    [0.0139322, 0.0971045, 0.7141733],
])


def s15_fixed16(*values: float) -> bytes:
    return b"".join(struct.pack(">i", round(value * 65536)) for value in values)


def xyz_tag(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + s15_fixed16(*xyz)


def desc_tag(text: str) -> bytes:
    """textDescriptionType: ASCII, then empty Unicode and ScriptCode parts."""
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * (4 + 4 + 2 + 1 + 67)


def text_tag(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode("ascii") + b"\0"


def lut16_tag(inputs: int, outputs: int, grid: int, clut: np.ndarray) -> bytes:
    """mft2 with identity matrix, two-entry identity input and output
    curves, and clut ((grid ** inputs) x outputs uint16, first input
    channel varying slowest)."""
    assert clut.shape == (grid**inputs, outputs)
    identity_curve = struct.pack(">HH", 0, 65535)
    return (
        b"mft2\0\0\0\0" + struct.pack(">BBBx", inputs, outputs, grid)
        + s15_fixed16(1, 0, 0, 0, 1, 0, 0, 0, 1)
        + struct.pack(">HH", 2, 2)
        + identity_curve * inputs
        + clut.astype(">u2").tobytes()
        + identity_curve * outputs
    )


def icc_profile(device_class: bytes, colour_space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    """A version 2.1 profile: the 128-byte header, the tag table, the tags
    (each 4-byte aligned), rendering intent perceptual, illuminant D50."""
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for signature, body in tags.items():
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (
        struct.pack(">I", offset + len(data)) + b"\0" * 4 + bytes([2, 0x10, 0, 0])
        + device_class + colour_space + pcs
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 28
        + s15_fixed16(*D50) + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def ink_reflectance(cmyk: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) reflected by ink amounts cmyk (..., 4) in 0..1."""
    reflected = np.ones(cmyk.shape[:-1] + (3,))
    for channel, ink in enumerate(INKS.values()):
        amount = cmyk[..., channel, None]
        reflected *= 1 - amount * (1 - np.asarray(ink))
    return reflected


def lab_from_linear_srgb(rgb: np.ndarray) -> np.ndarray:
    xyz = rgb @ SRGB_TO_XYZ_D50.T / np.asarray(D50)
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def encode_lab_v2(lab: np.ndarray) -> np.ndarray:
    """ICC v2's 16-bit Lab (lut16): L 0..100 as 0..0xFF00, a and b
    -128..127.996 as 0..0xFFFF (0 at 0x8000)."""
    encoded = np.empty(lab.shape)
    encoded[..., 0] = np.clip(np.rint(lab[..., 0] * 0xFF00 / 100), 0, 0xFF00)
    encoded[..., 1:] = np.clip(np.rint((lab[..., 1:] + 128) * 256), 0, 0xFFFF)
    return encoded.astype(np.uint16)


def cmyk_profile(grid: int = 3) -> bytes:
    """A minimal ICC v2 CMYK printer profile (see the module docstring)."""
    levels = np.linspace(0, 1, grid)
    cmyk_points = np.array(list(itertools.product(levels, repeat=4)))  # first channel slowest
    a2b0 = encode_lab_v2(lab_from_linear_srgb(ink_reflectance(cmyk_points)))
    # B2A0 (Lab -> CMYK), a crude inverse: only black ink, by lightness.
    lab_corners = np.array(list(itertools.product((0.0, 1.0), repeat=3)))
    b2a0 = np.zeros((8, 4))
    b2a0[:, 3] = 1 - lab_corners[:, 0]
    return icc_profile(b"prtr", b"CMYK", b"Lab ", {
        b"desc": desc_tag("pil-kmq test CMYK (toy inks)"),
        b"cprt": text_tag("No copyright, use freely"),
        b"wtpt": xyz_tag(D50),
        b"A2B0": lut16_tag(4, 3, grid, a2b0),
        b"B2A0": lut16_tag(3, 4, 2, np.rint(b2a0 * 65535)),
        b"gamt": lut16_tag(3, 1, 2, np.zeros((8, 1))),  # everything in gamut
    })
