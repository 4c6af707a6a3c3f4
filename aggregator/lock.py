"""One daemon per database: an flock on `<database>.lock` beside the database file.

Two daemons on one database would poll every source twice and race each other's
schedule. An flock (not a pid file) is released by the kernel whenever the process ends,
even by SIGKILL, so a crash never leaves a stale lock behind that blocks a restart. The
file stays in place (removing it would let a third process lock a new inode while the
second still holds the old one); it holds the holder's pid for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process holds the lock of this database."""

    def __init__(self, database: Path, pid: int | None) -> None:
        self.database = database
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"another aggregator daemon ({who}) is already running on {database}; "
            "stop it first (a second one would poll every source twice)"
        )


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class InstanceLock:
    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.database = Path(database).resolve()
        self.path = lock_path(self.database)
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        """Take the lock or raise AlreadyRunning at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(self.database, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> int | None:
        """The pid of the daemon holding the lock, or None when no daemon runs (never blocks)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_pid(fd) or -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
