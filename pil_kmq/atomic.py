"""Atomic image writes: a file is either the old one or the complete new one.

The image is written to a temporary file beside the target and renamed over
it only once fully written and flushed, so an interrupted run, a full disk or
an encoder that raises half-way never leaves a truncated file where a good
one was. The rename is atomic because the temporary file is in the same
directory (the same file system) as the target.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image


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
    fd, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as file:
            im.save(file, format=format, **params)
            file.flush()
            os.fsync(file.fileno())
        _give_default_permissions(temp, target)
        _commit(temp, target, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The Pillow format name Image.save would pick for this file name."""
    extension = Path(path).suffix.lower()
    format = Image.registered_extensions().get(extension)
    if format is None:
        raise ValueError(f"unknown file extension: {extension or '(none)'}")
    return format


def _commit(temp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, target)
        return
    # A hard link fails if the target exists, atomically, where an
    # exists-check followed by a rename could race with another writer.
    try:
        os.link(temp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
    except (OSError, NotImplementedError):
        # File systems without hard links: the best we can do is check first.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.replace(temp, target)


def _give_default_permissions(temp: Path, target: Path) -> None:
    """mkstemp makes owner-only files; give the result the mode a plain
    open() would (or keep the mode of the file being replaced)."""
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    with contextlib.suppress(OSError, NotImplementedError):
        os.chmod(temp, mode)


@functools.cache
def _umask() -> int:
    # The only portable way to read the umask is to set it and set it back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
