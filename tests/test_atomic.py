"""save_atomic: the target is the old file or the complete new one, never
anything in between, and no temporary file is left behind."""

from __future__ import annotations

import os
import stat
import sys

import pytest
from PIL import Image

import pil_kmq  # noqa: F401  (registers KMQ)
from pil_kmq.atomic import format_for_path, save_atomic

FAILING_FORMAT = "KMQTESTFAIL"


@pytest.fixture
def failing_format():
    """A format whose encoder writes half a file and then raises, as an
    encoder hitting a bug or a full disk would."""

    def save_half_then_fail(im, fp, filename):
        fp.write(b"half a file")
        raise RuntimeError("encoder blew up")

    Image.register_save(FAILING_FORMAT, save_half_then_fail)
    yield FAILING_FORMAT
    Image.SAVE.pop(FAILING_FORMAT, None)


def small_image() -> Image.Image:
    return Image.linear_gradient("L").resize((16, 8)).convert("RGB")


def test_writes_the_file_in_the_format_of_its_extension(tmp_path):
    save_atomic(small_image(), tmp_path / "out.kmq", colors=4)
    save_atomic(small_image(), tmp_path / "out.png")

    with Image.open(tmp_path / "out.kmq") as im:
        assert im.format == "KMQ" and im.info["colors"] == 4
    with Image.open(tmp_path / "out.png") as im:
        assert im.format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.kmq", "out.png"]


def test_explicit_format_wins_over_the_extension(tmp_path):
    save_atomic(small_image(), tmp_path / "out.data", "KMQ", colors=2)
    with Image.open(tmp_path / "out.data") as im:
        assert im.format == "KMQ"


def test_a_failing_encoder_leaves_the_old_file_and_no_temporary(tmp_path, failing_format):
    target = tmp_path / "out.png"
    target.write_bytes(b"old and good")

    with pytest.raises(RuntimeError, match="blew up"):
        save_atomic(small_image(), target, failing_format)

    assert target.read_bytes() == b"old and good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_a_failing_encoder_creates_nothing_where_there_was_nothing(tmp_path, failing_format):
    with pytest.raises(RuntimeError):
        save_atomic(small_image(), tmp_path / "new.png", failing_format)
    assert list(tmp_path.iterdir()) == []


def test_bad_save_options_leave_the_old_file(tmp_path):
    target = tmp_path / "out.kmq"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="colors"):
        save_atomic(small_image(), target, colors=0)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.kmq"]


def test_no_overwrite_refuses_an_existing_file(tmp_path):
    target = tmp_path / "out.kmq"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        save_atomic(small_image(), target, overwrite=False, colors=2)
    assert target.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["out.kmq"]

    save_atomic(small_image(), tmp_path / "fresh.kmq", overwrite=False, colors=2)
    assert (tmp_path / "fresh.kmq").stat().st_size > 0


def test_unknown_extension_or_unwritable_format_is_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="unknown file extension"):
        save_atomic(small_image(), tmp_path / "out.nosuch")
    with pytest.raises(ValueError, match="cannot write"):
        save_atomic(small_image(), tmp_path / "out.png", "NOSUCHFORMAT")
    assert list(tmp_path.iterdir()) == []


def test_format_for_path_matches_pillow():
    assert format_for_path("a/b.PNG") == "PNG"
    assert format_for_path("x.jpg") == "JPEG"
    assert format_for_path("x.kmq") == "KMQ"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_permissions_are_those_of_a_plain_open_not_mkstemp(tmp_path):
    save_atomic(small_image(), tmp_path / "new.png")
    with open(tmp_path / "plain", "wb"):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "new.png").st_mode) == stat.S_IMODE(
        os.stat(tmp_path / "plain").st_mode
    )

    existing = tmp_path / "existing.png"
    existing.write_bytes(b"")
    os.chmod(existing, 0o640)
    save_atomic(small_image(), existing)
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o640
