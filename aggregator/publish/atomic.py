"""Atomic, change-aware file writes for everything the publisher produces.

Readers, web servers and caches may open an output file at any moment, so a file is never
written in place: the bytes go to a temporary file in the same directory (same file system,
so the rename is atomic), are fsynced, and then replace the old file in one step. A file
whose bytes would not change is not touched at all, so its mtime (and the HTTP
Last-Modified / ETag a static server derives from it) stays put and readers see no change.

A writer killed between creating its temporary file and the rename (SIGKILL, OOM, power
loss) leaves that file behind. Temporary names carry the writer's PID
(`.<name>.<pid>.<serial>.tmp`), so `sweep_temp_files` can tell a dead writer's leftovers from a
live writer's work in progress; the publisher sweeps each output tree once per process.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..processes import alive, linux_libc

__all__ = ["SyncBatch", "Writeback", "write_if_changed", "write_all_if_changed", "sweep_temp_files", "sweep_once"]

# `.<name>.<pid>.<serial>.tmp` (a random part in older versions); also the pid-less
# `.<name>.<random>.tmp` of the oldest
_TEMP_RE = re.compile(r"^\..+?\.(?:(\d+)\.)?[^.]+\.tmp$")
STALE_AFTER = 3600.0  # no write takes an hour: older temp files are leftovers whatever their PID says


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
        self.folders: list[Path] = []  # made durable too, whatever was written in them by whom

    def commit(self) -> None:
        if not self.files and not self.folders:
            return
        dirs = sorted({p.parent for p in self.files} | set(self.folders))
        devices: dict[int, Path] = {}
        for d in dirs:
            with contextlib.suppress(OSError):
                devices.setdefault(d.stat().st_dev, d)
        if not all(_syncfs(d) for d in devices.values()):
            for p in self.files:
                _fsync_path(p)
            for d in dirs:
                _fsync_path(d)
        self.files.clear()
        self.folders.clear()


WRITEBACK_EVERY = 0.15  # seconds between a large publish's early flushes (`Writeback`)


class Writeback:
    """Flushes a folder's file system every `every` seconds on a thread, while a large
    publish renders, so that most of its files are on disk before the final `commit()`.

    That commit is one syncfs that waits for every file at once, with the cores idle: 0.1 s
    of a 1 s publish of 5,600 files. Started early, the writeback overlaps the rendering
    (the 100 × 50 publish: 0.96 → 0.93 s, 7 of 8 interleaved runs faster). Durability
    still comes from the commit; these flushes only leave it less to do.
    """

    def __init__(self, folder: Path, every: float = WRITEBACK_EVERY) -> None:
        self.folder, self.every = folder, every
        self.flushes = 0  # syncfs calls that succeeded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publish-writeback", daemon=True)

    def _start(self) -> bool:
        try:
            self._thread.start()
        except RuntimeError:  # "can't start new thread": the flushes are only an optimization
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.flushes += _syncfs(self.folder)

    @contextlib.contextmanager
    def running(self) -> Iterator[Writeback]:
        """Flush while the block runs (not at all where there is no syncfs, or no thread to be
        had: the workers forked just before may have used up the process limit); stopped after it."""
        if linux_libc("syncfs") is None or not self._start():
            yield self
            return
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def _syncfs(directory: Path) -> bool:
    """syncfs(2) on the file system holding `directory`; False where there is none."""
    syncfs = linux_libc("syncfs")
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


def write_if_changed(path: Path, data: bytes, batch: SyncBatch | None = None) -> bool:
    """Write `data` to `path` atomically unless the file already holds these bytes.

    Returns True when the file was (re)written, False when it was left untouched.
    Parent directories are created as needed. On any error the temporary file is removed
    and the previous file, if any, is left as it was. With a `batch`, the file is made
    durable by `batch.commit()` rather than by an fsync here.
    """
    return write_all_if_changed({Path(path): data}, batch)[0]


def write_all_if_changed(files: dict[Path, bytes], batch: SyncBatch | None = None) -> list[bool]:
    """`write_if_changed` for files that must change together (a category's Atom, RSS and
    JSON feeds, which readers and WebSub subscribers take for one feed): every changed file
    is written to its temporary file first, and only once all of them are complete are they
    renamed over the old ones. A full disk or any other error while writing leaves every
    file as it was, instead of the Atom feed new and the RSS feed old until the next publish.
    """
    staged: list[tuple[str, Path]] = []
    changed: list[bool] = []
    try:
        for path, data in files.items():
            tmp = None if _same_bytes(path, data) else _stage(path, data, durable=batch is None)
            changed.append(tmp is not None)
            if tmp is not None:
                staged.append((tmp, path))
        while staged:
            tmp, path = staged[0]
            _rename(tmp, path)
            staged.pop(0)
            if batch is None:
                _fsync_path(path.parent)
            else:
                batch.files.append(path)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    return changed


def _stage(path: Path, data: bytes, durable: bool) -> str:
    """`data` in a new temporary file beside `path` (fsynced when `durable`); its name."""
    try:
        fd, tmp = _create_temp(path)
    except FileNotFoundError:  # the folder does not exist yet: only then pay for mkdir
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as e:
        _name(e, path)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _rename(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as e:
        _name(e, path)
        raise


def _name(e: BaseException, path: Path) -> None:
    if isinstance(e, OSError) and e.errno is not None and e.filename is None:
        e.filename = str(path)  # "No space left on device" alone does not say where


_serial = itertools.count()
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _create_temp(path: Path) -> tuple[int, str]:
    """Create `.<name>.<pid>.<serial>.tmp` beside `path`, exclusively.

    The mode is 0666 less the umask, as for any file the process creates (mkstemp's 0600
    would need a chmod after it); the serial is unique within the process, and a name left
    by a dead writer that had our PID is skipped by O_EXCL. Cheaper than `tempfile.mkstemp`,
    whose random names cost more than the write on a large publish.
    """
    prefix = f"{path.parent}{os.sep}.{path.name}.{os.getpid()}."
    for _ in range(100):
        tmp = f"{prefix}{next(_serial)}.tmp"
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", prefix)


def _fsync_path(path: Path) -> None:
    """fsync a file, or a directory to persist a rename in it; best effort (not possible on
    every platform or file system)."""
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


def sweep_temp_files(root: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary files that killed writers left under `root`; returns them.

    A file is a leftover when the PID in its name is no longer running, when its name
    carries no PID (written by an older version) or when it is older than STALE_AFTER.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            m = _TEMP_RE.match(name)
            if m is None:
                continue
            path = Path(folder, name)
            try:
                old = now - path.stat().st_mtime > STALE_AFTER
                if old or m.group(1) is None or not alive(int(m.group(1))):
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue  # its writer renamed or removed it meanwhile
    return removed


_swept: set[Path] = set()
_swept_lock = threading.Lock()


def sweep_once(root: Path) -> list[Path]:
    """`sweep_temp_files(root)` the first time this process publishes into `root`."""
    root = Path(root)
    with _swept_lock:
        if root in _swept or not root.is_dir():
            return []
        _swept.add(root)
    return sweep_temp_files(root)
