"""Share a large publish's categories with worker processes, so it uses every core.

Rendering is single-core Python: a cold start or a forced rebuild of a few thousand posts
is seconds of one core while the others idle. Each category is independent work (read its
posts from the store, render, write its files), so the publisher and its workers take
categories from one queue until it is empty: whoever is free takes the next, a slow
category holds up nobody, and the publisher never waits for a worker to start.

The queue is a pipe filled with one 4-byte token per category before anyone reads: a read
of 4 bytes from a pipe is atomic, so each token is taken exactly once, and an empty pipe
whose writer is closed reads as the end. A worker sends what it did for each category
(`Done`) as soon as it is done, on its own pipe; a worker that dies, however it dies, leaves
its unreported categories to the publisher, which then does them itself: a publish never
loses a category to a worker. Workers only read the store; the publisher records every
state itself, after the files are durable, exactly as for the categories it did.

Workers are forked when the publisher is the process's only thread (the `publish` and
`fetch` commands): they start in milliseconds with the templates already compiled. In the
daemon other threads may hold locks at any moment, and a child forked then could
deadlock on one, so there workers are fresh interpreters (`python -I -c`, ~0.4 s to
start) that read their job, and the publisher's `sys.path`, from stdin.

Workers ignore SIGINT and SIGTERM: the publisher decides when they stop (it takes the tasks
left when it fails), and they die with it (PR_SET_PDEATHSIG), so a Ctrl-C or a service
stop reaching the whole process group is the publisher's to handle.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..processes import (
    MAX_TASKS,
    RESULT_PIPE,
    become_worker,
    cores,
    env_workers,
    fork_worker,
    prctl,
    reap,
    result_pipe,
    send,
    take,
    task_queue,
    unpack,
)

log = logging.getLogger(__name__)

__all__ = ["MAX_TASKS", "Done", "Pool", "worker_count"]

ENV_WORKERS = "AGGREGATOR_PUBLISH_WORKERS"  # 0 turns workers off; N: N workers for a large publish
MAX_WORKERS = 3  # by default: past a few, workers contend for the disk and the database more than they help
# A spawned worker's program: the publisher's sys.path first, so that it runs the same code
# whatever its working directory holds. Not `-m aggregator.publish.parallel`: that would run
# a second copy of this module, whose messages the publisher could not unpickle.
_SPAWNED = (
    "import pickle, sys; path, job = pickle.load(sys.stdin.buffer); sys.path[:] = path; "
    "from aggregator.publish.parallel import _main; sys.exit(_main(sys.argv[1:], job))"
)


@dataclass
class Done:
    """What a worker did for one task: sent to the publisher, which merges and records it."""

    task: int
    result: Any


def worker_count(requested: int | None = None) -> int:
    """Workers beside the publisher: `requested`, else `AGGREGATOR_PUBLISH_WORKERS`, else one
    fewer than the usable cores (at most MAX_WORKERS)."""
    if requested is None:
        requested = env_workers(ENV_WORKERS)
    if os.name != "posix":  # the queue and result pipes are inherited file descriptors
        return 0
    default = min(MAX_WORKERS, cores() - 1)
    return max(0, default if requested is None else requested)


class Pool:
    """Workers taking tasks `0..tasks-1` from a queue the caller also takes from.

    `target(job, index)` is run in each worker for each task it takes; its return value is
    sent back as a `Done`. `target` must be a module-level function (named for a spawned
    worker) and `job` picklable. With `fork`, `job` is used as it is, not pickled.
    """

    def __init__(self, target: Callable[[Any, int], Any], job: Any, tasks: int, workers: int, fork: bool) -> None:
        self._queue = task_queue(tasks)
        self._readers: dict[int, Any] = {}  # result pipe fd → pid or Popen
        self._buffers: dict[int, bytearray] = {}
        self.done: list[Done] = []
        self.failures: list[str] = []
        self.started = 0  # workers started
        prctl()  # loaded here: a forked child must not load a library (the loader's lock)
        try:
            for _ in range(workers):
                self._start(target, job, fork)
        except OSError as e:  # no more processes, no memory: the publisher does the work
            self.failures.append(f"could not start a publish worker: {e}")
        except BaseException:
            self._abort()
            raise

    def _start(self, target: Callable[[Any, int], Any], job: Any, fork: bool) -> None:
        if fork:
            pid, reader = fork_worker(lambda out, parent: _serve(target, job, self._queue, out, parent))
            self._readers[reader] = pid
        else:
            reader, writer = result_pipe()
            # The job goes through a file, not a pipe: writing more than a pipe holds would
            # wait for the child to start reading, the very wait workers are here to avoid.
            work = (target.__module__, target.__qualname__, __version__, job)
            with tempfile.TemporaryFile() as stdin:
                pickle.dump((sys.path, pickle.dumps(work, pickle.HIGHEST_PROTOCOL)), stdin, pickle.HIGHEST_PROTOCOL)
                stdin.seek(0)
                try:
                    proc = subprocess.Popen(
                        [sys.executable, "-I", "-c", _SPAWNED, str(self._queue), str(writer), str(os.getpid())],
                        stdin=stdin,
                        stdout=subprocess.DEVNULL,
                        pass_fds=(self._queue, writer),
                        process_group=0,  # a Ctrl-C at the terminal is the publisher's, not the worker's
                    )
                except OSError:
                    os.close(reader)
                    raise
                finally:
                    os.close(writer)
            self._readers[reader] = proc
        self._buffers[reader] = bytearray()
        self.started += 1

    def __iter__(self) -> Iterator[int]:
        """The tasks the caller takes, one at a time, while the workers take theirs."""
        while (index := take(self._queue)) is not None:
            yield index
            self.collect(block=False)

    def collect(self, block: bool) -> None:
        """Read what the workers sent (without waiting, or until every worker has finished)."""
        while self._readers:
            ready, _, _ = select.select(list(self._readers), [], [], None if block else 0)
            if not ready:
                return
            for fd in ready:
                data = os.read(fd, RESULT_PIPE)
                if data:
                    self._buffers[fd] += data
                    self._unpack(fd)
                else:
                    self._finish(fd)

    def _unpack(self, fd: int) -> None:
        for data in unpack(self._buffers[fd]):
            try:
                message = pickle.loads(data)
            except Exception as e:  # noqa: BLE001 - whatever it was, its task is redone by the caller
                self.failures.append(f"a publish worker's message could not be read: {e}")
                continue
            if isinstance(message, Done):
                self.done.append(message)
            else:
                self.failures.append(str(message))

    def _finish(self, fd: int) -> None:
        worker = self._readers.pop(fd)
        os.close(fd)
        if self._buffers.pop(fd):
            self.failures.append("a publish worker's last message was cut short")
        code = reap(worker)
        if code != 0:
            self.failures.append(f"a publish worker exited with code {code}")

    def close(self) -> None:
        """Wait for every worker (after the caller has run out of tasks, they soon run out too)."""
        try:
            self.collect(block=True)
        finally:
            self._abort()

    def _abort(self) -> None:
        """Stop and reap whatever worker is left, close every pipe: nothing leaks whatever failed."""
        for fd, worker in list(self._readers.items()):
            with contextlib.suppress(OSError):
                os.kill(worker if isinstance(worker, int) else worker.pid, signal.SIGKILL)
            reap(worker)
            os.close(fd)
            self.failures.append("a publish worker was stopped before it finished")
        self._readers.clear()
        self._buffers.clear()
        if self._queue >= 0:
            os.close(self._queue)
            self._queue = -1

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None and self._queue >= 0:  # the caller failed: take the tasks left, so the workers stop soon
            while take(self._queue) is not None:
                pass
        self.close()


def _serve(target: Callable[[Any, int], Any], job: Any, queue: int, out: int, parent: int) -> int:
    """A worker's loop: take a task, do it, say so; on an error say what it was and stop
    (the publisher does the rest, and meets the same error itself if it is not ours)."""
    become_worker(parent)
    try:
        while (index := take(queue)) is not None:
            if os.getppid() != parent:
                return 1
            send(out, Done(index, target(job, index)))
    except BaseException as e:  # noqa: BLE001 - whatever it was, the publisher must hear of it
        with contextlib.suppress(Exception):
            send(out, f"a publish worker stopped: {type(e).__name__}: {e}")
        return 1
    return 0


def _main(argv: list[str], work: bytes) -> int:
    """A spawned worker (`_SPAWNED QUEUE_FD RESULT_FD PUBLISHER_PID`)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    queue, out, parent = int(argv[0]), int(argv[1]), int(argv[2])
    try:
        module, name, version, job = pickle.loads(work)
        if version != __version__:
            raise RuntimeError(f"aggregator {__version__} is installed, the publisher runs {version}")
        target = getattr(importlib.import_module(module), name)
    except BaseException as e:  # noqa: BLE001
        send(out, f"a publish worker could not start: {type(e).__name__}: {e}")
        return 1
    return _serve(target, job, queue, out, parent)
