"""`fetch`'s polling: every source once, on `site.workers` threads, shared with forked
worker processes when there are many, so a large fetch uses every core.

Polling is fetch → parse → normalize → store, most of it Python holding the GIL: a cold
start over thousands of feeds keeps one core busy while the others idle, however many
threads poll. So a large `fetch` forks workers, and `site.workers` threads are shared out
between it and them (no more requests are in flight than the config says).

The work is cut into runs: each host's sources dealt into at most `per_host` runs, each run
polled one source after another by one thread. The host is the one the poll will fetch from
(the stored URL: a learnt redirect, a discovered feed). However the runs are spread over
threads and processes, no more than `per_host` requests to one host are in flight, without
the processes saying a word to each other (but for a redirect met during this very poll).
Every thread of every process takes the next run from one queue (`processes.task_queue`),
the longest runs first, so with many hosts the processes finish together whatever the
feeds weigh; with a few big hosts, the runs of the biggest bound the time.

Each process writes its own polls to the store: SQLite lets one process write at a time,
and a write transaction waits for the lock (BEGIN IMMEDIATE, see `Store`), so processes are
as safe as threads. A worker says which run it took, then sends each outcome, and each log
record, to `fetch` as soon as it has it, on its own pipe: the lines are printed in the
config's order as before, logs go where `fetch` sends them, and when a worker dies, however
it dies, `fetch` polls what it took and did not report. (A source it stored but had not
reported yet is polled a second time: the server answers 304, or the same body, nothing is
stored twice, and its line says `unchanged`.) Should `fetch` fail to read its workers, it
stops them and polls here whatever it has not polled itself: it never waits for ever.

Workers are forked only while `fetch` is the process's only thread (no lock can be held by
another thread at the fork), never in the daemon. They ignore SIGINT and SIGTERM (`fetch`
decides: on Ctrl-C it kills them and stops) and die with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import logging
import os
import pickle
import select
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import logs
from .config import Settings
from .fetch import Fetcher
from .hosts import host_key
from .models import Source
from .pipeline import Outcome, update_source
from .plural import counted
from .processes import (
    MAX_TASKS,
    become_worker,
    cores,
    env_workers,
    fork_worker,
    forking_is_safe,
    prctl,
    reap,
    send,
    take,
    task_queue,
    unpack,
)
from .store import Store

log = logging.getLogger(__name__)

ENV_WORKERS = "AGGREGATOR_FETCH_WORKERS"  # 0 turns workers off; N: N workers for a large fetch
MAX_WORKERS = 3  # by default: past a few, processes wait on each other's database writes
SHARED_MIN = 200  # sources: below this, a worker saves less than forking it costs
WORKER_EXIT = 30.0  # seconds a worker may take to end after its last outcome
_READ = 1 << 20


def poll_one(source: Source, store: Store, fetcher: Fetcher, named: bool = False) -> Outcome:
    """Poll one source, every log record it makes tagged with it."""
    with logs.source_context(source.key):
        return update_source(source, store, fetcher, named=named)


def worker_count(sources: int, threads: int, requested: int | None = None) -> int:
    """Workers beside `fetch` for `sources` sources polled by `threads` threads in all:
    `requested`, else `AGGREGATOR_FETCH_WORKERS`, else one fewer than the usable cores
    (at most MAX_WORKERS), and none for fewer than SHARED_MIN sources (unless requested),
    none where forking is not safe, and never more processes than threads."""
    if requested is None:
        requested = env_workers(ENV_WORKERS)
    if not forking_is_safe() or sources < 2:
        return 0
    if requested is None:
        requested = min(MAX_WORKERS, cores() - 1) if sources >= SHARED_MIN else 0
    return max(0, min(requested, threads - 1, sources - 1))


def runs(sources: Sequence[Source], per_host: int, fetch_urls: Mapping[str, str] | None = None) -> list[list[int]]:
    """The sources' indices cut into runs, each polled one after another by one thread.

    A host's sources are dealt into at most its `per_host` runs, so that however the runs
    are shared out, no more requests than that are in flight to it: the host of the URL a
    poll will fetch (`fetch_urls`: a learnt redirect, a discovered feed), not always the
    configured one. The longest runs come first (whoever is free takes the next, so the
    last to finish are the short ones). Past MAX_TASKS runs, the shortest are joined end to end.
    """
    fetch_urls = fetch_urls or {}
    by_host: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        by_host.setdefault(host_key(fetch_urls.get(source.key) or source.url), []).append(i)
    out: list[list[int]] = []
    for group in by_host.values():
        k = max(1, min(len(group), sources[group[0]].per_host or per_host))
        out += [group[j::k] for j in range(k)]
    out.sort(key=lambda run: (-len(run), run[0]))
    if len(out) > MAX_TASKS:
        bins = [(len(run), n, list(run)) for n, run in enumerate(out[:MAX_TASKS])]
        heapq.heapify(bins)
        for run in out[MAX_TASKS:]:
            size, n, joined = heapq.heappop(bins)
            heapq.heappush(bins, (size + len(run), n, joined + run))
        out = sorted((joined for _, _, joined in bins), key=lambda run: (-len(run), run[0]))
    return out


@dataclass
class _Worker:
    pid: int
    fd: int
    taken: list[int] = field(default_factory=list)  # the runs it took
    buffer: bytearray = field(default_factory=bytearray)
    reported: set[int] = field(default_factory=set)


class PollsAbandoned(KeyboardInterrupt):
    """A second Ctrl-C while a stop waited for the polls in flight: they are left unfinished
    (each poll stores in one transaction, so nothing of them is stored), for the caller to
    quit at once without joining their threads."""

    def __init__(self, in_flight: int) -> None:
        super().__init__(in_flight)
        self.in_flight = in_flight


class _InFlight:
    """How many polls this process's threads are running: what a stop has to wait for."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    @contextmanager
    def polling(self) -> Iterator[None]:
        with self._lock:
            self.count += 1
        try:
            yield
        finally:
            with self._lock:
                self.count -= 1


@contextmanager
def polling(
    sources: Sequence[Source],
    store: Store,
    settings: Settings,
    named: bool = False,
    workers: int | None = None,
    on_interrupt: Callable[[int], None] | None = None,
    into: list[Future[Outcome]] | None = None,
) -> Iterator[list[Future[Outcome]]]:
    """Poll `sources`; yields one future per source, in their order, resolved as each is done.
    `into` is given them as soon as they exist: a Ctrl-C while the threads are still being
    started (polls already ending) comes before the yield, and the caller's list would stay empty.

    Leaving the block waits for every poll and every worker; on an exception (Ctrl-C) it
    stops the workers, and the polls not started yet, instead, and waits for the polls in
    flight here (each ends within its timeout and is stored whole). On a KeyboardInterrupt,
    `on_interrupt` is first told how many that is, so the user is not left waiting in silence.
    """
    threads = settings.site.workers
    plan = runs(sources, settings.site.per_host, store.fetch_urls())
    count = max(0, min(worker_count(len(sources), threads, workers), len(plan) - 1))  # a run each, at least
    queue = -1
    if count > 0:
        try:
            queue = task_queue(len(plan))
        except OSError as e:  # no pipe large enough (the user's pipe allowance is spent): one process
            log.warning("fetch polls on one process: no queue for its workers (%s)", e)
            count = 0
    share = [threads // (count + 1) + (i < threads % (count + 1)) for i in range(count + 1)]
    take_run = functools.partial(take, queue) if queue >= 0 else _taker(len(plan))
    futures: list[Future[Outcome]] = [Future() for _ in sources]
    if into is not None:
        into[:] = futures
    started: list[_Worker] = []
    stop = threading.Event()
    fetcher: Fetcher | None = None
    pollers: list[threading.Thread] = []
    rescue: list[ThreadPoolExecutor] = []
    in_flight = _InFlight()
    interrupted = False

    def deliver(index: int, outcome: Future[Outcome]) -> None:
        _settle(futures[index], outcome)

    rescued: set[int] = set()

    def poll_left(left: list[list[int]]) -> None:
        """Poll here what a dead worker left: its runs, each one source after another."""
        assert fetcher is not None
        left = [[i for i in run if i not in rescued] for run in left]
        left = [run for run in left if run]
        if not left:
            return
        rescued.update(i for run in left for i in run)
        submitted = 0
        try:
            pool = ThreadPoolExecutor(max_workers=min(len(left), threads), thread_name_prefix="fetch-rescue")
            rescue.append(pool)
            for run in left:
                args = (_taker(1), [run], sources, store, fetcher, named, deliver, stop, None, in_flight)
                pool.submit(_poll_runs, *args)
                submitted += 1
        except RuntimeError as e:  # no thread to be had (a pids limit): poll them on this one
            log.warning("no thread to poll a dead fetch worker's sources (%s): polling them one by one", e)
            rest = left[submitted:]  # the one whose submit failed may sit in a pool with no thread
            _poll_runs(_taker(len(rest)), rest, sources, store, fetcher, named, deliver, stop, None, in_flight)

    taken_here: set[int] = set()
    polling_here = threading.Event()  # set once every polling thread of this process has started

    def unclaimed(workers_count: bool = True) -> list[list[int]]:
        """After every worker has ended: runs nobody announced (a worker killed between taking
        a run and saying so), or, if what the workers said is not to be trusted, every run not
        polled here. This process's threads drained the queue, so no run is left in it."""
        polling_here.wait()
        for thread in pollers:
            thread.join()
        claimed = taken_here.union(*(w.taken for w in started)) if workers_count else taken_here
        lost = [[i for i in plan[r] if not futures[i].done()] for r in range(len(plan)) if r not in claimed]
        return [run for run in lost if run]

    reader = threading.Thread(
        target=_read_workers, args=(started, plan, futures, stop, poll_left, unclaimed), name="fetch-workers"
    )
    failed = False
    try:
        if count:
            prctl()  # loaded before the fork: a child must not load a library
            with store.closed_for_fork():
                for part in share[1:]:
                    try:
                        started.append(_fork(settings, sources, plan, queue, part, named))
                    except OSError as e:  # no more processes or memory: fewer workers
                        log.warning("could not start a fetch worker (%s): polling without it", e)
                        break
        mine = threads - sum(share[1 : 1 + len(started)])
        fetcher = Fetcher(per_host=settings.site.per_host)
        if started:
            shares = share[1 : 1 + len(started)]
            log.info(
                "%s in %s polled on %s: %d here, %s in %s",
                counted(len(sources), "source"),
                counted(len(plan), "run"),
                counted(mine + sum(shares), "thread"),
                mine,
                " + ".join(map(str, shares)),
                counted(len(started), "forked worker"),
            )
            reader.start()
        for n in range(mine):
            thread = threading.Thread(
                target=_poll_runs,
                args=(take_run, plan, sources, store, fetcher, named, deliver, stop, taken_here.add, in_flight),
                name=f"fetch-{n}",
            )
            thread.start()
            pollers.append(thread)
        polling_here.set()
        yield futures
        for fut in futures:
            fut.result()
    except BaseException as e:
        failed = True
        polling_here.set()
        stop.set()
        _kill(started)
        interrupted = isinstance(e, KeyboardInterrupt)
        raise
    finally:
        try:
            if interrupted and on_interrupt is not None:
                # said inside this try: a second Ctrl-C, sent once the user read it, is caught below
                on_interrupt(in_flight.count)  # counted once stopped: no poll starts after this
            for thread in pollers:
                thread.join()
            if reader.is_alive():
                reader.join(None if failed else WORKER_EXIT)
                if reader.is_alive():  # a worker that reported everything but does not end
                    stop.set()
                    _kill(started)
                    reader.join()
            for pool in rescue:
                pool.shutdown(wait=True, cancel_futures=True)
            if failed:  # the polls in flight have settled theirs (their outcomes are stored): the rest never will
                for fut in futures:
                    fut.cancel()
        except KeyboardInterrupt:  # Ctrl-C while waiting: nothing more is waited for
            stop.set()
            _kill(started)
            if failed:  # the second one: the polls still in flight are given up
                raise PollsAbandoned(in_flight.count) from None
            raise
        _kill(started)  # those the reader did not see end
        for worker in started:
            if worker.fd >= 0:
                reap(worker.pid)
                os.close(worker.fd)
                worker.fd = -1
        if queue >= 0:
            os.close(queue)
        if fetcher is not None:
            fetcher.close()


def _poll_runs(
    take_run: Callable[[], int | None],
    plan: list[list[int]],
    sources: Sequence[Source],
    store: Store,
    fetcher: Fetcher,
    named: bool,
    deliver: Callable[[int, Future[Outcome]], None],
    stop: threading.Event,
    took: Callable[[int], None] | None = None,
    in_flight: _InFlight | None = None,
) -> None:
    """A polling thread: take the next run, poll its sources one by one, until none is left."""
    while not stop.is_set() and (run := take_run()) is not None:
        if took is not None:
            took(run)
        for index in plan[run]:
            if stop.is_set():
                return
            done: Future[Outcome] = Future()
            try:
                with in_flight.polling() if in_flight is not None else contextlib.nullcontext():
                    done.set_result(poll_one(sources[index], store, fetcher, named))
            except BaseException as e:  # noqa: BLE001 - a bug: the caller re-raises it from the future
                done.set_exception(e)
            deliver(index, done)


def _taker(count: int) -> Callable[[], int | None]:
    """The runs `0..count-1` for the threads of this process alone, each taken once."""
    runs, lock = iter(range(count)), threading.Lock()

    def take_next() -> int | None:
        with lock:  # next() on a shared iterator is atomic under the GIL, not without one
            return next(runs, None)

    return take_next


def _settle(target: Future[Outcome], done: Future[Outcome]) -> None:
    if target.done():
        return
    with contextlib.suppress(InvalidStateError):  # cancelled meanwhile (Ctrl-C): nobody waits for it
        if done.cancelled():
            target.cancel()
        elif (error := done.exception()) is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())


def _fork(
    settings: Settings, sources: Sequence[Source], plan: list[list[int]], queue: int, threads: int, named: bool
) -> _Worker:
    pid, reader = fork_worker(lambda out, parent: _work(settings, sources, plan, queue, threads, named, out, parent))
    return _Worker(pid, reader)


def _work(
    settings: Settings,
    sources: Sequence[Source],
    plan: list[list[int]],
    queue: int,
    threads: int,
    named: bool,
    out: int,
    parent: int,
) -> int:  # pragma: no cover - runs in the forked child
    """A worker: poll runs from the queue on its threads; report each run taken, each
    outcome and each log record as it comes."""
    become_worker(parent)
    lock = threading.Lock()

    def post(message: object) -> None:
        with lock:
            send(out, message)

    def deliver(index: int, done: Future[Outcome]) -> None:
        if os.getppid() != parent:
            os._exit(1)
        post(("done", index, done.result()))  # a bug's exception ends the worker: `fetch` redoes the rest

    root = logging.getLogger()
    for handler in list(root.handlers):  # `fetch`'s handlers write for both
        root.removeHandler(handler)
    root.addHandler(_Forward(post))
    try:
        with Store(settings.database) as store:
            fetcher = Fetcher(per_host=settings.site.per_host)
            stop = threading.Event()
            failures: list[BaseException] = []

            def took(run: int) -> None:
                post(("took", run))

            def poll() -> None:
                try:
                    _poll_runs(
                        functools.partial(take, queue), plan, sources, store, fetcher, named, deliver, stop, took
                    )
                except BaseException as e:  # noqa: BLE001
                    failures.append(e)
                    stop.set()

            pollers = [threading.Thread(target=poll) for _ in range(threads)]
            for thread in pollers:
                thread.start()
            for thread in pollers:
                thread.join()
            fetcher.close()
            if failures:
                raise failures[0]
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
    workers: list[_Worker],
    plan: list[list[int]],
    futures: list[Future[Outcome]],
    stop: threading.Event,
    poll_left: Callable[[list[list[int]]], None],
    unclaimed: Callable[..., list[list[int]]],
) -> None:
    """Resolve the workers' outcomes, log their records, reap each worker that ends, and
    poll here what a worker took and did not report (one run after another, as planned).

    Should this thread fail, nobody would resolve the workers' futures and `fetch` would wait
    for ever: so then the workers are stopped, and everything not polled here is polled here.
    """
    try:
        live = {w.fd: w for w in workers}
        while live and not stop.is_set():
            for fd in _ready(live):
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
                left = [[i for i in plan[run] if i not in worker.reported] for run in worker.taken]
                left = [run for run in left if run]
                if left and not stop.is_set():
                    log.warning(
                        "a fetch worker exited with code %s before reporting %s of its sources: they are polled here",
                        code,
                        counted(sum(map(len, left)), "source"),
                    )
                    poll_left(left)
        if not stop.is_set() and (lost := unclaimed()):
            log.warning(
                "%s taken by a fetch worker that died before saying so: they are polled here",
                counted(sum(map(len, lost)), "source"),
            )
            poll_left(lost)
    except Exception:
        log.exception("reading the fetch workers failed: they are stopped, their sources polled here")
        _kill(workers)
        if not stop.is_set():
            poll_left(unclaimed(False))


def _kill(workers: list[_Worker]) -> None:
    """SIGKILL the workers not reaped yet (a reaped one's pid may already be another's)."""
    for worker in workers:
        if worker.fd >= 0:
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signal.SIGKILL)


def _ready(live: dict[int, _Worker]) -> list[int]:
    """The workers' pipes with something to read (or their end), within half a second."""
    return select.select(list(live), [], [], 0.5)[0]


def _handle(worker: _Worker, message: tuple[object, ...], futures: list[Future[Outcome]]) -> None:
    kind = message[0]
    if kind == "done":
        index, outcome = message[1], message[2]
        assert isinstance(index, int) and isinstance(outcome, Outcome)
        worker.reported.add(index)
        if not futures[index].done():
            with contextlib.suppress(InvalidStateError):  # cancelled meanwhile (Ctrl-C)
                futures[index].set_result(outcome)
    elif kind == "took":
        assert isinstance(message[1], int)
        worker.taken.append(message[1])
    elif kind == "log":
        record = logging.makeLogRecord(message[1])  # type: ignore[arg-type]
        logging.getLogger(record.name).handle(record)
    elif kind == "failed":
        log.warning("a fetch worker stopped: %s", message[1])
