"""Atomic image writes: a file is either the old one or the complete new one.

The image is written to a temporary file in the target's folder (the same
file system, so the final rename or link is atomic) and put in place only
once fully written and flushed. Where the system allows (Linux, O_TMPFILE)
the temporary file has no name at all until then, so a process killed
mid-write leaves nothing behind. Elsewhere it is named after the writer's
host and PID, so a later run can remove the leftovers of a dead writer and
never those of a live one (remove_stale_temporaries).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import socket
import zlib
from pathlib import Path
from typing import IO, Any, Callable

from PIL import Image

TEMPORARY_SUFFIX = ".kmq-tmp"
# Unnamed temporary files need O_TMPFILE and a way to give them a name
# later (linkat through /proc/self/fd); tests switch this off to exercise
# the named fallback.
USE_UNNAMED = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")

_AT_FDCWD, _AT_EMPTY_PATH = -100, 0x1000  # Linux's values
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_NAME_PATTERN = re.compile(r"\..*\.([0-9a-f]{8})-([0-9]+)\.[0-9a-f]{8}" + re.escape(TEMPORARY_SUFFIX))
# Named temporary files of this process (path -> owner PID), for
# remove_own_temporaries when a signal ends the process.
_named_temporaries: dict[str, int] = {}
_linkable_devices: dict[int, bool] = {}


def save_atomic(
    im: Image.Image,
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    overwrite: bool = True,
    **params: Any,
) -> None:
    """Save `im` to `path` atomically, like im.save(path, format, **params).

    The format comes from the path's extension when not given. With
    overwrite=False an existing file is never replaced (FileExistsError),
    even one that appears while the image is being encoded.
    """
    target = Path(path)
    format = format or format_for_path(target)
    if format.upper() not in Image.SAVE:
        Image.init()  # Pillow loads most plugins lazily
        if format.upper() not in Image.SAVE:
            raise ValueError(f"Pillow cannot write {format} files")
    write_atomic(target, lambda file: im.save(file, format=format, **params), overwrite=overwrite)


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], None], *, overwrite: bool = True
) -> None:
    """Call write(file) on a temporary file beside `path`, then put it in
    place: `path` is the old file or the complete new one (save_atomic's
    rules, for writers that are not Image.save: streamed .kmq, .npy)."""
    target = Path(path)
    fd, temp = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb", closefd=False) as file:
            write(file)
            file.flush()
            os.fsync(fd)
        _keep_mode_of(target, fd)
        if temp is None:  # unnamed: name it now, the target itself if it may not exist
            temp = None if not overwrite else _register(_temporary_name(target))
            _name_unnamed(fd, temp or target)
        if temp is not None:
            _commit(temp, target, overwrite)
    finally:
        os.close(fd)
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            _named_temporaries.pop(temp, None)


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The Pillow format name Image.save would pick for this file name."""
    extension = Path(path).suffix.lower()
    format = Image.registered_extensions().get(extension)
    if format is None:
        raise ValueError(f"unknown file extension: {extension or '(none)'}")
    return format


def remove_own_temporaries() -> None:
    """Remove this process's named temporary files (from a signal handler,
    just before the process ends; unnamed ones vanish by themselves)."""
    pid = os.getpid()
    for temp, owner in list(_named_temporaries.items()):
        if owner == pid:  # not a parent's, inherited through fork
            with contextlib.suppress(OSError):
                os.unlink(temp)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files left in `folder` by writers on this host
    whose process is gone; the files removed. Live writers' are kept."""
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _NAME_PATTERN.fullmatch(entry.name)
            if match is None or match[1] != _HOST or _process_exists(int(match[2])):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or a PID we cannot judge
    return True


def _create_temporary(target: Path) -> tuple[int, str | None]:
    """An open file beside `target`: unnamed if possible (None), else named."""
    fd = _open_unnamed(target) if USE_UNNAMED else None
    if fd is not None:
        return fd, None
    while True:
        temp = _register(_temporary_name(target))
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(temp, flags, 0o666), temp  # mode as a plain open() gives
        except FileExistsError:
            _named_temporaries.pop(temp, None)
        except BaseException:
            _named_temporaries.pop(temp, None)
            raise


def _open_unnamed(target: Path) -> int | None:
    """An O_TMPFILE file in target's folder, or None where the file system
    cannot make one or this process cannot link one into place."""
    flags = os.O_TMPFILE | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target.parent, flags, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP):
            return None
        raise
    device = os.fstat(fd).st_dev
    if device not in _linkable_devices:  # try once per file system
        _linkable_devices[device] = _can_name_unnamed(target, flags)
    if not _linkable_devices[device]:
        os.close(fd)
        return None
    return fd


def _temporary_name(target: Path) -> str:
    # Bounded, so a long target name cannot make the name too long.
    stem = target.name[:100]
    return str(target.parent / f".{stem}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def _register(temp: str) -> str:
    # Registered before it exists, so no moment where it exists unregistered.
    _named_temporaries[temp] = os.getpid()
    return temp


def _commit(temp: str, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, target)
        return
    try:
        _link_new(temp, target)
    except FileExistsError:
        raise
    except (OSError, NotImplementedError):
        # File systems without hard links: the best we can do is check first.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.replace(temp, target)


def _can_name_unnamed(target: Path, flags: int) -> bool:
    probe = _register(_temporary_name(target))
    fd = os.open(target.parent, flags, 0o666)
    try:
        _name_unnamed(fd, probe)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
        _named_temporaries.pop(probe, None)


def _name_unnamed(fd: int, name: str | Path) -> None:
    """Link an O_TMPFILE file into its folder; FileExistsError if `name` exists."""
    try:
        return _link_new(f"/proc/self/fd/{fd}", Path(name))
    except FileExistsError:
        raise
    except OSError as exc:
        # Some kernels and sandboxes refuse the /proc route (EXDEV);
        # linkat(fd, "", AT_EMPTY_PATH) is the direct call.
        if not hasattr(ctypes.CDLL(None), "linkat"):
            raise
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", _AT_FDCWD, os.fsencode(name), _AT_EMPTY_PATH) != 0:
            error = ctypes.get_errno()
            if error == errno.EEXIST:
                raise FileExistsError(errno.EEXIST, "file exists", str(name)) from None
            raise OSError(error, os.strerror(error), str(name)) from exc


def _link_new(source: str, target: Path) -> None:
    # A hard link fails if the target exists, atomically, where an
    # exists-check followed by a rename could race with another writer.
    try:
        os.link(source, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None


def _keep_mode_of(target: Path, fd: int) -> None:
    """A replaced file keeps its permissions; a new one has those of a
    plain open() (the 0o666 & ~umask the temporary file was created with)."""
    try:
        mode = target.stat().st_mode & 0o7777
    except (FileNotFoundError, NotADirectoryError):
        return
    with contextlib.suppress(OSError, NotImplementedError, AttributeError):
        os.fchmod(fd, mode)
