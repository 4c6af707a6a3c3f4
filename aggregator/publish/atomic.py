"""Atomic, change-aware file writes for everything the publisher produces.

Readers, web servers and caches may open an output file at any moment, so a file is never
written in place: the bytes go to a temporary file in the same directory (same file system,
so the rename is atomic), are fsynced, and then replace the old file in one step. A file
whose bytes would not change is not touched at all, so its mtime (and the HTTP
Last-Modified / ETag a static server derives from it) stays put and readers see no change.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_if_changed"]


def _read_umask() -> int:
    """The process umask. Read once at import: os.umask can only be read by setting it,
    which would briefly change it for every other thread."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _same_bytes(path: Path, data: bytes) -> bool:
    """True when `path` is a regular file holding exactly `data` (size checked first: cheap)."""
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return False


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless the file already holds these bytes.

    Returns True when the file was (re)written, False when it was left untouched.
    Parent directories are created as needed. On any error the temporary file is removed
    and the previous file, if any, is left as it was.
    """
    path = Path(path)
    if _same_bytes(path, data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file 0600; published files must be readable like any other.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; best effort (not possible on every platform)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
