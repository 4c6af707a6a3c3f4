"""What every worker process of ours needs: how many cores, when forking is safe, how a
worker dies with its parent, and how messages cross a pipe.

Two jobs use worker processes: a large publish (`publish/parallel.py`) and a large `fetch`
(`poll_workers.py`). Both send pickled messages, each framed by its length, on a pipe
per worker, and both must never leave a worker behind their parent.
"""

from __future__ import annotations

import ctypes
import functools
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

LENGTH = struct.Struct("<Q")  # each message's length, before it
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


def forking_is_safe() -> bool:
    """True when the calling thread is the process's only one (nothing else can hold a lock),
    on Linux (macOS system libraries are not safe to use in a forked child)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


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


def die_with(parent: int) -> None:
    """Never outlive the parent. A worker left running after its parent was killed could
    write what a restarted parent already wrote newer (a publish worker's pages, a poll
    worker's posts and polling state), so on Linux the kernel kills the worker with its
    parent (PR_SET_PDEATHSIG); elsewhere, and for a parent already gone, the worker checks
    (and its loop checks again before each task)."""
    call = prctl()
    if call is not None:
        call(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


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
    """Wait for a worker (a forked pid or a spawned Popen); its exit code."""
    if isinstance(worker, int):
        _, status = os.waitpid(worker, 0)
        return os.waitstatus_to_exitcode(status)
    return worker.wait()
