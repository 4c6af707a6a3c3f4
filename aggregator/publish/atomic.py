"""Atomic, change-aware file writes for everything the publisher produces.

Readers, web servers and caches may open an output file at any moment, so a file is never
written in place: the bytes go to a temporary file in the same directory (same file system,
so the rename is atomic), are fsynced, and then replace the old file in one step. A file
whose bytes would not change is not touched at all, so its mtime (and the HTTP
Last-Modified / ETag a static server derives from it) stays put and readers see no change.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["SyncBatch", "write_if_changed"]


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


class SyncBatch:
    """Makes many writes durable at once instead of one fsync pair per file.

    Publishing a large site writes thousands of pages; an fsync of each file and of its
    directory costs about a millisecond apiece, ten times the write itself. Files written
    with a batch skip both; `commit()` then flushes each file system they live on with one
    `syncfs(2)` (on Linux; elsewhere it fsyncs each file and directory). Until `commit()`
    returns the new files are atomic (never half-written under their name) but not yet
    durable: commit before recording anywhere that they were written.
    """

    def __init__(self) -> None:
        self.files: list[Path] = []

    def commit(self) -> None:
        if not self.files:
            return
        dirs = sorted({p.parent for p in self.files})
        devices: dict[int, Path] = {}
        for d in dirs:
            with contextlib.suppress(OSError):
                devices.setdefault(d.stat().st_dev, d)
        if not all(_syncfs(d) for d in devices.values()):
            for p in self.files:
                _fsync_path(p)
            for d in dirs:
                _fsync_dir(d)
        self.files.clear()


def _syncfs(directory: Path) -> bool:
    """syncfs(2) on the file system holding `directory`; False where there is none."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        return False
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return False
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_if_changed(path: Path, data: bytes, batch: SyncBatch | None = None) -> bool:
    """Write `data` to `path` atomically unless the file already holds these bytes.

    Returns True when the file was (re)written, False when it was left untouched.
    Parent directories are created as needed. On any error the temporary file is removed
    and the previous file, if any, is left as it was. With a `batch`, the file is made
    durable by `batch.commit()` rather than by an fsync here.
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
            if batch is None:
                os.fsync(fh.fileno())
        # mkstemp creates the file 0600; published files must be readable like any other.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if batch is None:
        _fsync_dir(path.parent)
    else:
        batch.files.append(path)
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
