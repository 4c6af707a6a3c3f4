"""One daemon per database: an flock on `<database>.lock` beside the database file; and one
`fetch` per database: an flock on `<database>.fetch.lock`.

Two daemons on one database would poll every source twice and race each other's
schedule. An flock (not a pid file) is released by the kernel whenever the process ends,
even by SIGKILL, so a crash never leaves a stale lock behind that blocks a restart. The
file stays in place (removing it would let a third process lock a new inode while the
second still holds the old one); it holds the holder's pid for the error message.

Two `fetch` runs overlapping (a cron job every 15 minutes whose run took 20) polled every
source twice, so a fetch takes a lock of its own. It is not the daemon's: `fetch` beside a
running daemon (to poll now, or one `--source`) is allowed, as before.
"""

from __future__ import annotations

import contextlib
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


class FetchRunning(AlreadyRunning):
    """Another `aggregator fetch` holds the fetch lock of this database."""

    def __init__(self, database: Path, pid: int | None) -> None:
        self.database = database
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        Exception.__init__(
            self,
            f"another `aggregator fetch` ({who}) is already running on {database}; nothing polled "
            "(a second one would poll every source twice): try again once it has ended",
        )


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def fetch_lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".fetch.lock")


class InstanceLock:
    """The daemon's lock: `<database>.lock`."""

    refused: type[AlreadyRunning] = AlreadyRunning
    # the pid is only for the message: a lock that could not record it (a full disk) still
    # keeps a second holder out; the daemon, though, refuses to start on such a disk, as before
    needs_pid = True

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.database = Path(database).resolve()
        self.path = self.path_for(self.database)
        self._fd: int | None = None

    @staticmethod
    def path_for(database: Path) -> Path:
        return lock_path(database)

    def acquire(self) -> InstanceLock:
        """Take the lock or raise AlreadyRunning at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            if self.needs_pid:
                raise
            # a lock file this user may not write (one `sudo aggregator fetch` left, owned by
            # root): an flock needs no write access, and without it two fetches ran at once
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise self.refused(self.database, pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            if self.needs_pid:  # closed: an exception here left the lock held by a lost descriptor
                os.close(fd)
                raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
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


class FetchLock(InstanceLock):
    """`fetch`'s lock: `<database>.fetch.lock`, apart from the daemon's."""

    refused = FetchRunning
    needs_pid = False

    @staticmethod
    def path_for(database: Path) -> Path:
        return fetch_lock_path(database)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
