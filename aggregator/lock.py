"""One daemon per database: an flock on `<database>.lock` beside the database file; and one
`fetch` per database: an flock on `<database>.fetch.lock`.

Two daemons on one database would poll every source twice and race each other's
schedule. An flock (not a pid file) is released by the kernel whenever the process ends,
even by SIGKILL, so a crash never leaves a stale lock behind that blocks a restart. The
file stays in place (removing it would let a third process lock a new inode while the
second still holds the old one); it holds the holder's pid for the error message, which is
checked against the kernel's own list of holders (`holder_pid`) before it is named.

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
            pid = holder_pid(fd)
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
                return holder_pid(fd) or -1
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


def holder_pid(fd: int) -> int | None:
    """The pid of the process holding the flock on `fd`'s file, or None when it cannot be told.

    The pid written in the file is not trusted as it is: a holder that had to open the file
    read-only (a `fetch.lock` left by `sudo aggregator fetch`, see `InstanceLock.acquire`)
    cannot write its own, so the file still names an older holder, long gone or its pid
    reused, and a refused fetch named that process. The kernel's list of flock holders
    (/proc/locks, Linux) says who holds it; elsewhere the written pid is named only while a
    process has it."""
    recorded = _read_pid(fd)
    holders = _flock_holders(fd)
    if not holders:  # no /proc/locks, or a file system whose numbers it gives otherwise
        return recorded if recorded is not None and _alive(recorded) else None
    if recorded in holders:
        return recorded
    return next(iter(holders)) if len(holders) == 1 else None


def _flock_holders(fd: int) -> set[int]:
    """The pids /proc/locks gives for the flocks held on `fd`'s file (empty when unknown)."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids: set[int] = set()
    for line in lines:  # `12: FLOCK  ADVISORY  WRITE 32003 fe:00:2147823 0 EOF`; `-> FLOCK` waits
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            major, minor, ino = parts[5].split(":")
            where = (int(major, 16), int(minor, 16), int(ino))
            pid = int(parts[4])
        except ValueError:
            continue
        if where == want and pid > 0:  # 0 or -1: a process outside our pid namespace
            pids.add(pid)
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process, alive
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
