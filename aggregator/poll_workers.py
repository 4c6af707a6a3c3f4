"""A large `fetch` polled by the `fetch` process and forked workers, so it uses every core.

Polling is fetch → parse → normalize → store, most of it Python holding the GIL: a cold
start over thousands of feeds keeps one core busy while the others idle, however many
threads poll. Sources are split into shards by host, one per process (the `fetch` process
and its workers), so each host's sources are polled by one process and `site.per_host`
still holds exactly; `site.workers` threads are shared out between the processes, so no
more requests are in flight than the config says.

Each process polls its shard with its own store connection and writes its own polls:
SQLite lets one process write at a time, and a write transaction waits for the lock
(BEGIN IMMEDIATE, see `Store`), so two processes are as safe as two threads. A worker sends
each outcome, and each log record, to `fetch` as soon as it has it, on its own pipe: the
lines are printed in the config's order as before, logs go where the config says, and a
worker that dies, however it dies, leaves its unreported sources to `fetch`, which polls
them itself. A source a worker stored but had not reported yet is polled a second time:
the server answers 304, or the same body, and nothing is stored twice.

Workers are forked only while `fetch` is the process's only thread (no lock can be held
by another thread at the fork), never in the daemon. They ignore SIGINT and SIGTERM (the
`fetch` process decides: on Ctrl-C it kills them and stops) and die with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import logs
from .config import Settings
from .fetch import Fetcher
from .hosts import host_key
from .models import Source
from .pipeline import Outcome, update_source
from .processes import cores, die_with, forking_is_safe, prctl, reap, send, unpack
from .store import Store

log = logging.getLogger(__name__)

ENV_WORKERS = "AGGREGATOR_FETCH_WORKERS"  # 0 turns workers off; N: N workers for a large fetch
MAX_WORKERS = 3  # by default: past a few, processes wait on each other's database writes
SHARED_MIN = 200  # sources: below this, a worker saves less than forking it costs
_READ = 1 << 16
WORKER_EXIT = 30.0  # seconds a worker may take to end after its last outcome


def poll_one(source: Source, store: Store, fetcher: Fetcher, retry_gone: bool = False) -> Outcome:
    """Poll one source, every log record it makes tagged with it."""
    with logs.source_context(source.key):
        return update_source(source, store, fetcher, retry_gone=retry_gone)


def worker_count(sources: int, threads: int, requested: int | None = None) -> int:
    """Workers beside `fetch` for `sources` sources polled by `threads` threads in all:
    `requested`, else `AGGREGATOR_FETCH_WORKERS`, else one fewer than the usable cores
    (at most MAX_WORKERS), and none for fewer than SHARED_MIN sources (unless requested),
    none where forking is not safe, and never more processes than threads."""
    if requested is None:
        env = os.environ.get(ENV_WORKERS, "").strip()
        if env:
            try:
                requested = int(env)
            except ValueError:
                log.warning("%s=%r is not a number: using the default", ENV_WORKERS, env)
    if not forking_is_safe() or sources < 2:
        return 0
    if requested is None:
        requested = min(MAX_WORKERS, cores() - 1) if sources >= SHARED_MIN else 0
    return max(0, min(requested, threads - 1, sources - 1))


def shards(sources: Sequence[Source], count: int) -> list[list[int]]:
    """The sources' indices split into `count` shards, every host's sources in one shard:
    the largest hosts first, each to the shard with the fewest sources so far."""
    by_host: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        by_host.setdefault(host_key(source.url), []).append(i)
    out: list[list[int]] = [[] for _ in range(count)]
    for group in sorted(by_host.values(), key=len, reverse=True):
        min(out, key=len).extend(group)
    for shard in out:
        shard.sort()  # each process polls its sources in the config's order
    return out


@dataclass
class _Worker:
    pid: int
    fd: int
    indices: list[int]
    buffer: bytearray = field(default_factory=bytearray)
    reported: set[int] = field(default_factory=set)


@contextmanager
def polling(
    sources: Sequence[Source], store: Store, settings: Settings, retry_gone: bool = False, workers: int | None = None
) -> Iterator[list[Future[Outcome]]]:
    """Poll `sources`; yields one future per source, in their order, resolved as each is done.

    Leaving the block waits for every poll and every worker; on an exception (Ctrl-C) it
    stops the workers and the polls not started yet instead.
    """
    threads = settings.site.workers
    count = worker_count(len(sources), threads, workers)
    parts = shards(sources, count + 1) if count else [list(range(len(sources)))]
    share = [threads // len(parts) + (i < threads % len(parts)) for i in range(len(parts))]
    futures: list[Future[Outcome]] = [Future() for _ in sources]
    started: list[_Worker] = []
    local = parts[0]
    if count:
        prctl()  # loaded before the fork: a child must not load a library
        with store.closed_for_fork():
            for n, (indices, part_threads) in enumerate(zip(parts[1:], share[1:], strict=True), 1):
                try:
                    started.append(_fork(settings, [(i, sources[i]) for i in indices], part_threads, retry_gone))
                except OSError as e:  # no more processes or memory: `fetch` polls the rest itself
                    log.warning("could not start a fetch worker (%s): its sources are polled here", e)
                    local = sorted(local + [i for part in parts[n:] for i in part])
                    break
    if started:
        log.info(
            "%d sources polled by this process and %d forked workers, split by host (%s)",
            len(sources),
            len(started),
            " + ".join(str(len(part)) for part in [local, *(w.indices for w in started)]),
        )
    fetcher = Fetcher(per_host=settings.site.per_host)
    pool = ThreadPoolExecutor(max_workers=share[0] if started else threads)

    def run(i: int) -> None:
        fut = pool.submit(poll_one, sources[i], store, fetcher, retry_gone)
        fut.add_done_callback(lambda f: _settle(futures[i], f))

    stop = threading.Event()
    reader = threading.Thread(target=_read_workers, args=(started, futures, run, stop), name="fetch-workers")
    failed = False
    try:
        if started:
            reader.start()
        for i in local:
            run(i)
        yield futures
        for fut in futures:
            fut.result()
    except BaseException:
        failed = True
        stop.set()
        for worker in started:
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signal.SIGKILL)
        for fut in futures:
            fut.cancel()
        raise
    finally:
        if reader.is_alive():
            reader.join(None if failed else WORKER_EXIT)
            if reader.is_alive():  # a worker that reported everything but does not end
                stop.set()
                for worker in started:
                    with contextlib.suppress(OSError):
                        os.kill(worker.pid, signal.SIGKILL)
                reader.join()
        pool.shutdown(wait=True, cancel_futures=True)
        for worker in started:  # the reader reaps each worker it saw end; not these
            if worker.fd >= 0:
                with contextlib.suppress(OSError):
                    os.kill(worker.pid, signal.SIGKILL)
                reap(worker.pid)
                os.close(worker.fd)
                worker.fd = -1
        fetcher.close()


def _settle(target: Future[Outcome], done: Future[Outcome]) -> None:
    if target.done():
        return
    if done.cancelled():
        target.cancel()
    elif (error := done.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(done.result())


def _fork(settings: Settings, sources: list[tuple[int, Source]], threads: int, retry_gone: bool) -> _Worker:
    reader, writer = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # or the child would write their buffers again
        with contextlib.suppress(Exception):
            stream.flush()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(reader)
        os.close(writer)
        raise
    if pid == 0:  # pragma: no cover - the child; its work is checked by what it stores and reports
        code = 1
        try:
            os.close(reader)
            code = _work(settings, sources, threads, retry_gone, writer, parent)
        finally:
            os._exit(code)
    os.close(writer)
    return _Worker(pid, reader, [i for i, _ in sources])


def _work(
    settings: Settings, sources: list[tuple[int, Source]], threads: int, retry_gone: bool, out: int, parent: int
) -> int:  # pragma: no cover - runs in the forked child
    """A worker: poll its shard, report each outcome and log record as it comes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with(parent)
    lock = threading.Lock()

    def post(message: object) -> None:
        with lock:
            send(out, message)

    root = logging.getLogger()
    for handler in list(root.handlers):  # the parent's handlers write for both of us
        root.removeHandler(handler)
    root.addHandler(_Forward(post))
    try:
        with Store(settings.database) as store, ThreadPoolExecutor(max_workers=threads) as pool:
            fetcher = Fetcher(per_host=settings.site.per_host)
            try:
                pending = {pool.submit(poll_one, source, store, fetcher, retry_gone): i for i, source in sources}
                for fut in as_completed(pending):
                    if os.getppid() != parent:
                        return 1
                    post(("done", pending[fut], fut.result()))
            finally:
                fetcher.close()
    except BaseException as e:  # noqa: BLE001 - whatever it was, `fetch` must hear of it
        with contextlib.suppress(Exception):
            post(("failed", f"{type(e).__name__}: {e}"))
        return 1
    return 0


class _Forward(logging.Handler):
    """Sends a worker's log records to `fetch`, which hands them to its own handlers."""

    def __init__(self, post: Callable[[object], None]) -> None:
        super().__init__()
        self.post = post
        self.addFilter(logs.SourceFilter())  # the source is known here, in the polling thread

    def emit(self, record: logging.LogRecord) -> None:
        try:
            state = dict(vars(record))
            state["msg"], state["args"] = record.getMessage(), None
            if record.exc_info:
                state["exc_text"] = logging.Formatter().formatException(record.exc_info)
            state["exc_info"] = None
            self.post(("log", state))
        except Exception:  # noqa: BLE001 - a log record that cannot be sent must not stop a poll
            self.handleError(record)


def _read_workers(
    workers: list[_Worker], futures: list[Future[Outcome]], run: Callable[[int], None], stop: threading.Event
) -> None:
    """Resolve the workers' outcomes, log their records, reap each worker that ends, and
    have a worker's unreported sources polled here (`run`)."""
    live = {w.fd: w for w in workers}
    while live and not stop.is_set():
        ready, _, _ = select.select(list(live), [], [], 0.5)
        for fd in ready:
            worker = live[fd]
            data = os.read(fd, _READ)
            if data:
                worker.buffer += data
                for message in unpack(worker.buffer):
                    try:
                        _handle(worker, pickle.loads(message), futures)
                    except Exception as e:  # noqa: BLE001 - its source is polled here if never reported
                        log.warning("a fetch worker's message could not be read: %s", e)
                continue
            del live[fd]
            os.close(fd)
            worker.fd = -1
            code = reap(worker.pid)
            left = [i for i in worker.indices if i not in worker.reported]
            if left and not stop.is_set():
                log.warning(
                    "a fetch worker exited with code %s before reporting %d of its sources: they are polled here",
                    code,
                    len(left),
                )
                for i in left:
                    run(i)


def _handle(worker: _Worker, message: tuple[object, ...], futures: list[Future[Outcome]]) -> None:
    kind = message[0]
    if kind == "done":
        index, outcome = message[1], message[2]
        assert isinstance(index, int) and isinstance(outcome, Outcome)
        worker.reported.add(index)
        if not futures[index].done():
            futures[index].set_result(outcome)
    elif kind == "log":
        record = logging.makeLogRecord(message[1])  # type: ignore[arg-type]
        logging.getLogger(record.name).handle(record)
    elif kind == "failed":
        log.warning("a fetch worker stopped: %s", message[1])
