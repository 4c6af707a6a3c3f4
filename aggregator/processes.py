"""What every worker process of ours needs: how many cores, when forking is safe, how a
worker dies with its parent, and how messages cross a pipe.

Two jobs use worker processes: a large publish (`publish/parallel.py`) and a large `fetch`
(`poll_workers.py`). Both send pickled messages, each framed by its length, on a pipe
per worker, and both must never leave a worker behind their parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LENGTH = struct.Struct("<Q")  # each message's length, before it
MAX_TASKS = 16_384  # tokens that fit in a pipe's default 64 KiB: the queue is filled before anyone reads
RESULT_PIPE = 1 << 20  # bytes a result pipe holds (if allowed): a worker seldom waits for its parent to read
_TOKEN = struct.Struct("<I")
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, Linux
_PR_SET_PDEATHSIG = 1


@functools.cache
def cores() -> int:
    """The cores this process may use: its CPU affinity, and the CPU quota of its cgroup and
    of every cgroup above it (cgroup v2 `cpu.max`: `docker run --cpus=1`, systemd's
    `CPUQuota=100%`, on a 16-core host mean one). Read once: every publish asks."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        group = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
    except (OSError, StopIteration, IndexError):
        return count
    folder = Path("/sys/fs/cgroup") / group.strip("/")
    for limit in (folder, *folder.parents):
        try:
            quota, period = (limit / "cpu.max").read_text().split()[:2]
            if quota != "max":
                count = min(count, max(1, math.ceil(int(quota) / int(period))))
        except (OSError, ValueError):
            pass
        if limit == Path("/sys/fs/cgroup"):
            break
    return count


def env_workers(name: str) -> int | None:
    """The worker count an environment variable asks for (`AGGREGATOR_PUBLISH_WORKERS`,
    `AGGREGATOR_FETCH_WORKERS`), or None: unset, empty, or not a number (said in the log)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        log.warning("%s=%r is not a number: using the default", name, value)
        return None


def forking_is_safe() -> bool:
    """True when the calling thread is the process's only one (nothing else can hold a lock),
    on Linux (macOS system libraries are not safe to use in a forked child)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def alive(pid: int) -> bool:
    """Whether process `pid` runs: whether a temporary file named after it may be in use."""
    if pid == os.getpid():
        return True  # another thread of ours may be writing it right now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


@functools.cache
def linux_libc(name: str) -> Callable[..., int] | None:
    """A Linux C library function (`syncfs`, `prctl`), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


def prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded by the parent before it forks: a forked child must not load a
    library (the loader's lock may have been held by another thread at the fork)."""
    return linux_libc("prctl")


def become_worker(parent: int) -> None:
    """What a worker does first. It ignores SIGINT and SIGTERM: a Ctrl-C or a service stop
    reaching the whole process group is the parent's to handle (it stops its workers). And
    it never outlives the parent: a worker left running after its parent was killed could
    write what a restarted parent already wrote newer (a publish worker's pages, a poll
    worker's posts and polling state), so on Linux the kernel kills the worker with its
    parent (PR_SET_PDEATHSIG); elsewhere, and for a parent already gone, the worker checks
    (and its loop checks again before each task)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    call = prctl()
    if call is not None:
        call(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def fork_worker(work: Callable[[int, int], int]) -> tuple[int, int]:
    """Fork a worker that runs `work(result_fd, parent_pid)` and exits with what it returns
    (1 if it raises); returns (its pid, the reading end of its `result_pipe`). The caller
    must be the process's only thread (`forking_is_safe`)."""
    reader, writer = result_pipe()
    flush_std()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(reader)
        os.close(writer)
        raise
    if pid == 0:  # pragma: no cover - the child; its work is checked by what it reports
        code = 1
        try:
            os.close(reader)
            code = work(writer, parent)
        finally:
            os._exit(code)
    os.close(writer)
    return pid, reader


def task_queue(tasks: int) -> int:
    """A queue of the tasks `0..tasks-1` that every process and thread may take from: a pipe
    filled with one 4-byte token per task before anyone reads (a read of 4 bytes from a pipe
    is atomic, so each token is taken exactly once; an empty pipe whose writer is closed
    reads as the end). Returns the reading end, to be inherited by forked workers."""
    if tasks > MAX_TASKS:
        raise ValueError(f"at most {MAX_TASKS} tasks")
    queue, writer = os.pipe()
    tokens = b"".join(_TOKEN.pack(i) for i in range(tasks))
    try:
        # Not blocking: a pipe may hold less than 64 KiB (a user past pipe-user-pages-soft
        # gets small ones), and nobody reads before the tokens are all in.
        os.set_blocking(writer, False)
        if os.write(writer, tokens) != len(tokens):
            raise OSError(errno.ENOBUFS, "the task queue does not fit in a pipe")
    except OSError:
        os.close(queue)
        raise
    finally:
        os.close(writer)  # readers see the end once the tokens are gone
    return queue


def take(queue: int) -> int | None:
    """The next task of a `task_queue`, or None when they are all taken."""
    data = os.read(queue, _TOKEN.size)
    return _TOKEN.unpack(data)[0] if data else None


def result_pipe() -> tuple[int, int]:
    """A pipe for a worker's messages to its parent, (reader, writer), as large as allowed."""
    reader, writer = os.pipe()
    with contextlib.suppress(OSError):
        import fcntl

        fcntl.fcntl(writer, _F_SETPIPE_SZ, RESULT_PIPE)
    return reader, writer


def flush_std() -> None:
    """Flush stdout and stderr before a fork, or the child would write their buffers again."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def send(fd: int, message: object) -> None:
    """Write one message, whole, to a pipe: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def unpack(buffer: bytearray) -> list[bytes]:
    """The whole messages at the start of `buffer`, taken out of it (a partial one stays)."""
    out = []
    while len(buffer) >= LENGTH.size:
        (size,) = LENGTH.unpack_from(buffer)
        if len(buffer) < LENGTH.size + size:
            break
        out.append(bytes(buffer[LENGTH.size : LENGTH.size + size]))
        del buffer[: LENGTH.size + size]
    return out


def reap(worker: int | subprocess.Popen[Any]) -> int:
    """Wait for a worker (a forked pid or a spawned Popen); its exit code (-1: unknown)."""
    if isinstance(worker, int):
        try:
            _, status = os.waitpid(worker, 0)
        except ChildProcessError:  # SIGCHLD ignored (inherited through exec): the kernel reaped it
            return -1
        return os.waitstatus_to_exitcode(status)
    return worker.wait()
