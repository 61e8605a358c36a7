"""save_atomic: the target is the old file or the complete new one, never
anything in between, and no temporary file is left behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from PIL import Image

import pil_kmq  # noqa: F401  (registers KMQ)
from pil_kmq import atomic
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
def test_permissions_are_those_of_a_plain_open_not_mkstemp(tmp_path, temporaries):
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


# --- temporary files ------------------------------------------------------


def _unnamed_works(folder) -> bool:
    if not atomic.USE_UNNAMED:
        return False
    save_atomic(small_image(), folder / "probe.png")
    (folder / "probe.png").unlink()
    return all(atomic._linkable_devices.values())


@pytest.fixture(params=["unnamed", "named"])
def temporaries(request, tmp_path, monkeypatch):
    """Both kinds of temporary file: unnamed (O_TMPFILE, where the system
    has it) and the named fallback used everywhere else."""
    if request.param == "unnamed" and not _unnamed_works(tmp_path):
        pytest.skip("no O_TMPFILE or no way to link one here")
    if request.param == "named":
        monkeypatch.setattr(atomic, "USE_UNNAMED", False)
    return request.param


@pytest.fixture
def looking_format(tmp_path):
    """A format whose writer records what the folder holds mid-write."""
    seen: list[list[str]] = []

    def save_and_look(im, fp, filename):
        fp.write(b"some bytes")
        seen.append(sorted(os.listdir(tmp_path)))

    Image.register_save("KMQTESTLOOK", save_and_look)
    yield seen
    Image.SAVE.pop("KMQTESTLOOK", None)


def test_the_temporary_file_is_unnamed_where_the_system_allows(tmp_path, temporaries, looking_format):
    save_atomic(small_image(), tmp_path / "out.bin", "KMQTESTLOOK")

    (during,) = looking_format
    if temporaries == "unnamed":
        assert during == []  # nothing to leave behind if the process is killed
    else:  # named after this host and process, so a later run can judge it
        (name,) = during
        assert name.startswith(".out.bin.") and name.endswith(atomic.TEMPORARY_SUFFIX)
        assert f"{atomic._HOST}-{os.getpid()}." in name
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]
    assert (tmp_path / "out.bin").read_bytes() == b"some bytes"


def test_both_kinds_replace_or_refuse_an_existing_file(tmp_path, temporaries):
    target = tmp_path / "out.kmq"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        save_atomic(small_image(), target, overwrite=False, colors=2)
    assert target.read_bytes() == b"old"
    save_atomic(small_image(), target, colors=2)
    with Image.open(target) as im:
        assert im.format == "KMQ"
    assert sorted(os.listdir(tmp_path)) == ["out.kmq"]


def test_both_kinds_leave_nothing_after_a_failing_encoder(tmp_path, temporaries, failing_format):
    with pytest.raises(RuntimeError):
        save_atomic(small_image(), tmp_path / "new.png", failing_format)
    assert list(tmp_path.iterdir()) == []


def test_remove_own_temporaries_removes_the_file_being_written(tmp_path, monkeypatch):
    """What a signal handler calls just before the process ends."""
    monkeypatch.setattr(atomic, "USE_UNNAMED", False)
    seen = []

    def save_then_be_stopped(im, fp, filename):
        seen.append(sorted(os.listdir(tmp_path)))
        atomic.remove_own_temporaries()
        seen.append(sorted(os.listdir(tmp_path)))
        raise KeyboardInterrupt

    Image.register_save("KMQTESTSTOP", save_then_be_stopped)
    try:
        with pytest.raises(KeyboardInterrupt):
            save_atomic(small_image(), tmp_path / "out.bin", "KMQTESTSTOP")
    finally:
        Image.SAVE.pop("KMQTESTSTOP", None)
    assert len(seen[0]) == 1 and seen[1] == []
    assert atomic._named_temporaries == {}


def test_remove_stale_temporaries_spares_live_writers_and_other_files(tmp_path):
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True, check=True).stdout)
    suffix = atomic.TEMPORARY_SUFFIX
    names = {
        "dead": f".a.png.{atomic._HOST}-{dead_pid}.00ff00ff{suffix}",
        "live": f".a.png.{atomic._HOST}-{os.getpid()}.00ff00ff{suffix}",
        "other host": f".a.png.{int(atomic._HOST, 16) ^ 1:08x}-{dead_pid}.00ff00ff{suffix}",
        "not ours": f".a.png.{dead_pid}.tmp",
        "plain": "a.png",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")

    removed = atomic.remove_stale_temporaries(tmp_path)

    assert removed == [tmp_path / names["dead"]]
    assert sorted(os.listdir(tmp_path)) == sorted(v for k, v in names.items() if k != "dead")
