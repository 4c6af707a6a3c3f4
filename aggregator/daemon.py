"""The long-running service: APScheduler dispatches due sources to a worker pool.

Why one dispatcher job and not one APScheduler job per source: the due times live in the
database (`sources.next_poll`, written by the pipeline after every poll), so the schedule
survives restarts and is shared with `aggregator fetch` and `status`; a reload needs no job
surgery (removing, adding, re-timing thousands of jobs); and ten thousand sources cost one
job, not ten thousand trigger objects in memory. The dispatcher runs

- as a heartbeat every `max_sleep` seconds (a safety net), and
- as one-shot wake-ups at the next due time read from the database (never sooner than
  `tick` after the last run), plus at once after a reload;

so an idle daemon sleeps until it has work instead of querying the database every second.

Missed polls coalesce by construction: a source whose `next_poll` lies in the past (after
a sleep of the machine or downtime of the daemon) is due once, is polled once, and the
pipeline schedules its next poll from *now*. The dispatcher job itself coalesces too.

Publishing is debounced on its own thread (`Publisher`): the first source that stores
something starts a `publish_delay` window; every source finishing within it joins, and
their categories are published together, once. Publishes never overlap.

Shutdown (SIGINT/SIGTERM): stop dispatching, cancel queued polls, wait up to `grace`
seconds for polls in flight (each stores its posts in one transaction), publish what they
brought (atomic file writes; a publish still running when the grace period ends, or at a
second signal, stops before its next file, and the next start publishes what it left),
give pending WebSub pings what is left of the grace period (at most PING_DRAIN seconds;
the rest are dropped, and counted in the log), close the database. Polls still running
then are abandoned: nothing of theirs was stored and their `next_poll` is unchanged, so
the next start polls them first; `abandoned` lists them, and the caller must exit without
joining their threads. A second signal abandons at once.

Reload (SIGHUP, or a change of the config file's contents noticed within `watch_interval`
seconds): the new file is validated first; an invalid one is logged with every error and
the running config stays. A valid one applies at once: added sources are polled at the next
dispatch (so is one put back or enabled again, even a gone one: the edit asks for it),
removed ones are no longer dispatched (their posts stay in the database and leave the
published feeds), and a changed interval re-times the source's next poll.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import select
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from .config import ConfigError, Settings, decode_config, parse_config
from .credentials import masked
from .fetch import Fetcher
from .hosts import MAX_RETRY_AFTER, host_key
from .logs import source_context
from .metrics import Metrics
from .models import Source
from .pipeline import Outcome, prune_source, update_source
from .plural import counted
from .publish import SiteError, publish
from .publish.websub import HubPinger
from .schedule import JITTER, backoff, interval_for, interval_in_force, next_poll
from .serve import Route, Server
from .store import Store, StoreError

log = logging.getLogger(__name__)

GRACE = 10.0  # seconds in-flight polls get to finish after SIGTERM
TICK = 1.0  # never dispatch more often than this
MAX_SLEEP = 60.0  # and at least this often (heartbeat)
WATCH_INTERVAL = 2.0  # how often the config file is checked for a change
CONFIG_SETTLE = 0.2  # seconds a changed config file must stand still before it is read
PUBLISH_DELAY = 1.0  # debounce window of publishing
RETAIN_EVERY = 3600.0  # how often keep_days / keep_per_source are applied besides polls bringing posts
PUBLISH_RETRY = 30.0  # after a failed publish
RELOAD_RETRY = 30.0  # after a reload the database could not take (disk full, read-only)
PUBLISH_UNHEALTHY = 600.0  # publishing failing this long (not a blip: a broken template, a full disk) is ill health
# after the database refused a poll's posts (disk full, read-only), unhealthy this long unless
# a later poll stores posts: the probe's rolled-back write needs no new space, so it cannot tell
STORE_UNHEALTHY = 600.0
PING_DRAIN = 2.0  # seconds pending WebSub pings get at shutdown (a hub that hangs must not eat the grace period)
CLOCK_SLACK = timedelta(seconds=2)  # a clock going back by more than this moves the schedule with it


def utcnow() -> datetime:
    return datetime.now(UTC)


class Publisher:
    """Debounced publishing on one thread: changes within `delay` of the first publish once.

    `action(categories)` gets the union of the slugs added since the last call, or None
    when everything must be published; it returns False on failure, and the same work is
    retried after `retry` seconds (unless stopping).
    """

    def __init__(
        self,
        action: Callable[[frozenset[str] | None], bool],
        delay: float = PUBLISH_DELAY,
        retry: float = PUBLISH_RETRY,
    ) -> None:
        self.action = action
        self.delay = delay
        self.retry = retry
        self._cond = threading.Condition()
        self._categories: set[str] = set()
        self._everything = False
        self._loud = False  # a pending request wants its publish logged even when it changes nothing
        self.quiet = False  # the running publish was asked for only quietly (see `add`)
        self._due: float | None = None  # monotonic time of the next publish; None when nothing is pending
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="publish", daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def add(
        self, categories: Iterable[str] | None, delay: float | None = None, quiet: bool = False, sooner: bool = False
    ) -> None:
        """`quiet`: a publish only in case something changed (the store watcher's); it is
        logged only if it writes or removes a file. `sooner`: bring a publish already pending
        (a failed one's retry) forward to `delay` from now: a reload may have fixed the cause,
        and the fix should show at once, not at the retry. Other requests never hasten a
        retry, which would then fail every few seconds while the disk stays full."""
        with self._cond:
            self._loud = self._loud or not quiet
            if categories is None:
                self._everything = True
            else:
                self._categories.update(categories)
            due = time.monotonic() + (self.delay if delay is None else delay)
            if self._due is None or (sooner and due < self._due):
                self._due = due
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._due is None and not self._busy

    def stop(self, timeout: float | None = None) -> None:
        """Publish what is pending now (no more waiting), then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (self._due is None or time.monotonic() < self._due):
                    self._cond.wait(None if self._due is None else max(0.0, self._due - time.monotonic()))
                if self._due is None:
                    return  # stopping, nothing pending
                batch = None if self._everything else frozenset(self._categories)
                self._categories, self._everything, self._due = set(), False, None
                self.quiet, self._loud = not self._loud, False
                self._busy = True
            try:
                ok = self.action(batch)
            finally:
                with self._cond:
                    self._busy = False
            if not ok:
                with self._cond:
                    if self._stopping:
                        return
                self.add(batch, delay=self.retry)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        grace: float = GRACE,
        tick: float = TICK,
        max_sleep: float = MAX_SLEEP,
        watch_interval: float = WATCH_INTERVAL,
        publish_delay: float = PUBLISH_DELAY,
        retain_every: float = RETAIN_EVERY,
        serve: Server | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.grace = grace
        self.tick = tick
        self.max_sleep = max(max_sleep, tick)
        self.watch_interval = watch_interval
        self.retain_every = retain_every
        self.clock = clock
        self.fetcher = Fetcher(per_host=settings.site.per_host)
        self.pool = ThreadPoolExecutor(max_workers=settings.site.workers, thread_name_prefix="fetch")
        self._old_pools: list[ThreadPoolExecutor] = []
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.metrics = Metrics(store.stats)
        self.publisher = Publisher(self._publish, delay=publish_delay)
        self.pinger = HubPinger()  # pings run beside publishing: a hub that hangs holds up nothing
        self.abandoned: list[str] = []

        self._stop = threading.Event()
        self._force = threading.Event()
        self._stop_deadline: float | None = None  # monotonic: the end of the shutdown's grace period
        self._reload_requested = False
        self._reload_retry: float | None = None  # monotonic time to retry a reload the database refused
        # Signal handlers only append here; the main thread acts on them. A handler must take
        # no lock: it runs inside whatever the main thread was doing, perhaps holding that lock.
        self._signals: list[int] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._lock = threading.RLock()  # guards _inflight and _next_wake
        self._inflight: dict[str, Future[Outcome]] = {}
        # No more polls of one host in flight than its per_host slots: one beyond them would
        # hold a pool worker waiting for a slot, and a host that hangs would then hold up every
        # other host's sources behind it. The rest wait here, per host, for a slot to free:
        # `_done` submits the next one itself, with no read of the database (see `_dispatch`).
        self._hosts: dict[str, str] = {}  # key of a source in flight → the host its poll fetches from
        self._waiting: dict[str, deque[Source]] = {}  # host → due sources waiting for a slot
        # A due list read from the database goes stale once a poll on it ends: a source whose
        # poll ended after the read (its new schedule stored, no longer in flight) looked due and
        # free, and was polled a second time at once. Each ended poll takes the next number; a
        # source that ended after the read (`_read_at`) is left for the next dispatch.
        self._ended = 0
        self._ended_at: dict[str, int] = {}  # source key → the number of its last ended poll
        self._read_at = 0  # `_ended` when the due list behind `_waiting` was read
        self._next_wake: datetime | None = None
        self._dispatching = threading.Lock()
        self._redispatch = False
        self._last_dispatch: float | None = None
        self._publish_failing: tuple[float, str] | None = None  # since when (monotonic), the last error
        self._store_failing: tuple[float, str] | None = None  # when (monotonic) the database last refused a poll
        self._last_now: datetime | None = None  # the clock at the last dispatch: a jump back is seen
        # monotonic time before which a source is not polled again whatever the database says:
        # when its new schedule could not be saved (disk full), it must not be re-polled every tick
        self._not_before: dict[str, float] = {}
        self._config_stat, self._config_hash = _file_signature(settings.path)
        self._config_unreadable = False  # the file changed into one that could not be read (said once)
        self._outside_version: int | None = None  # the store's data_version when last looked at

        # listening already (`run` binds before it takes the lock): it serves what this daemon has
        self.server = serve
        if serve is not None:
            routes: dict[str, Route] = {"/healthz": self._healthz, "/metrics": self._metrics}
            serve.app.root = lambda: self.settings.output_dir
            serve.app.routes.update(routes)

    # -- lifecycle ----------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (or `request_stop()`); returns the exit code. Raises
        StoreError, with nothing started, when the database cannot record the config's
        sources (a full disk, a read-only file): the caller says so in one line."""
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)  # wakes the select below
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, self._on_signal)
        try:
            self.store.sync_sources(self.settings.sources)
        except StoreError:
            self._close_wake()
            raise
        self.pinger.start()
        self.publisher.start()
        self.publisher.add(None, delay=0)  # the outputs reflect the config from the first second
        self._every(self._dispatch, self.max_sleep, "heartbeat", first=0.0)
        self._every(self._retain, self.retain_every, "retain", first=min(self.retain_every, MAX_SLEEP))
        self.scheduler.start()
        if self.server is not None:
            self.server.start()
            for url in self.server.urls:
                log.info("serving %s from %s (and /healthz, /metrics)", url, self.settings.output_dir)
        log.info(
            "daemon started (pid %d): %s, output %s",
            os.getpid(),
            counted(len(self.settings.sources), "source"),
            self.settings.output_dir,
        )
        try:
            self._main_loop()
        finally:
            self._shutdown()
        return 0

    def _every(self, job: Callable[[], None], seconds: float, name: str, first: float) -> None:
        """Run `job` every `seconds`, the first time `first` seconds from now; one at a time,
        a missed run done once, late rather than never."""
        self.scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC) + timedelta(seconds=first),
        )

    def request_stop(self) -> None:
        """Stop as SIGTERM does (a second call abandons polls in flight); any thread may call it."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()
        self._poke()

    def request_reload(self) -> None:
        self._reload_requested = True
        self._poke()

    def _poke(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the buffer is full: the main thread is awake anyway

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                log.info("received SIGHUP: reloading %s", self.settings.path)
                self._reload_requested = True
            elif self._stop.is_set():
                log.warning("received %s again: abandoning polls in flight now", name)
                self._force.set()
            else:
                log.info("received %s: stopping (grace period %gs)", name, self.grace)
                self._stop.set()

    def _sleep(self, seconds: float) -> None:
        """Wait for a signal, a poke from another thread, or the timeout."""
        select.select([self._wake_r], [], [], max(0.0, seconds))
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _main_loop(self) -> None:
        """The main thread watches: signals, the config file, and that the dispatcher runs."""
        while True:
            self._handle_signals()
            if self._stop.is_set():
                break
            if self._reload_requested:
                self._reload_requested = False
                self.reload("SIGHUP")
            elif self._config_changed():
                self.reload("file changed")
            elif self._reload_retry is not None and time.monotonic() >= self._reload_retry:
                self.reload("retry")
            self._watchdog()
            self._watch_output()
            self._watch_store()
            self._sleep(self.watch_interval)

    def _shutdown(self) -> None:
        deadline = self._stop_deadline = time.monotonic() + self.grace
        # A running dispatch finishes its round; any later one sees _stop and returns. Not
        # shutdown(wait=True): it holds the scheduler's job store lock while waiting for jobs,
        # and a dispatch ends by adding its next wake-up job, which needs that lock.
        with self._dispatching:
            self.scheduler.shutdown(wait=False)
        with self._lock:
            inflight = dict(self._inflight)
        for pool in (*self._old_pools, self.pool):
            pool.shutdown(wait=False, cancel_futures=True)  # queued polls are dropped: still due next start
        running = {f for f in inflight.values() if not f.done()}
        if running:
            log.info("stopping: waiting up to %gs for %s in flight", self.grace, counted(len(running), "poll"))
        while running and not self._force.is_set() and time.monotonic() < deadline:
            _, running = concurrent.futures.wait(running, timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            self._handle_signals()  # a second SIGTERM abandons at once
        self.abandoned = sorted(k for k, f in inflight.items() if not f.done())
        if self.abandoned:
            log.warning(
                "abandoned %s still running after the grace period; nothing of theirs was stored, "
                "they are polled first at the next start: %s",
                counted(len(self.abandoned), "poll"),
                ", ".join(self.abandoned),
            )
        self.publisher.stop()
        # a moment even when the polls took all the grace (the last publish's pings are sent
        # in ms), none after a second signal
        drain = 0.0 if self._force.is_set() else min(PING_DRAIN, max(0.2, deadline - time.monotonic()))
        self.pinger.stop(drain)
        if self.server is not None:
            self.server.stop()
        if not self.abandoned:
            self.fetcher.close()  # (an abandoned poll still uses the session)
        self._close_wake()
        log.info("stopped")

    def _close_wake(self) -> None:
        """No signal wakes a socket that is closed: the wake-up fd is let go of first."""
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)
        self._wake_r.close()
        self._wake_w.close()

    # -- dispatching ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        self._redispatch = True  # set before trying: a running dispatch sees it when it finishes
        if not self._dispatching.acquire(blocking=False):
            return
        try:
            self._redispatch = False
            self._last_dispatch = time.monotonic()
            with self._lock:
                if self._next_wake is not None and self._next_wake <= datetime.now(UTC):
                    self._next_wake = None
            if self._stop.is_set():
                return
            settings = self.settings
            now = self.clock()
            self._mind_the_clock(now)
            with self._lock:
                read_at = self._ended
            # enabled, not gone, host not under a Retry-After; the longest overdue first
            due = {key: rank for rank, key in enumerate(self.store.due_sources(now))}
            urls = self.store.fetch_urls() if due else {}
            # Only configured sources (removed ones are never polled), taken and queued for their
            # host's slots longest overdue first: in config order, a busy host's first sources,
            # due again by the time a slot freed, took every turn and its last ones never came.
            todo = sorted((s for s in settings.sources if s.key in due), key=lambda s: due[s.key])
            with self._lock:
                busy = Counter(self._hosts.values())
                self._waiting, self._read_at = {}, read_at  # made afresh from what is due now
                for source in todo:
                    if self._free(source.key, read_at) and not self._stop.is_set():
                        if self._not_before.get(source.key, 0.0) > time.monotonic():
                            continue
                        host = host_key(urls.get(source.key) or source.url)
                        if busy[host] >= (source.per_host or settings.site.per_host):
                            self._waiting.setdefault(host, deque()).append(source)
                            continue
                        busy[host] += 1
                        self._submit(source, host)
            self._schedule_next()
        except Exception:
            log.exception("dispatch failed; retrying at the next heartbeat")
        finally:
            self._dispatching.release()
        if self._redispatch and not self._stop.is_set():
            self._wake_dispatcher(datetime.now(UTC) + timedelta(seconds=self.tick))

    def _mind_the_clock(self, now: datetime) -> None:
        """A wall clock set back must not silence the sources until it catches up again.

        Due times are wall-clock times in the database: after a jump back by a day, every
        source would wait a day plus its interval. Seen while running (the clock is earlier
        than at the last dispatch), every pending due time moves back by the jump, so each
        poll comes as planned in elapsed time; at start (the jump happened while stopped),
        a source due later than it ever could be (its interval backed off for its errors,
        or a week for a host's Retry-After) is re-timed from now. A jump forward needs nothing: the sources
        due are polled once each (see the module docstring) and re-timed from the new now.
        """
        last, self._last_now = self._last_now, now
        if last is not None and now < last - CLOCK_SLACK:
            moved = self.store.shift_schedule(now, last - now)
            log.warning(
                "the clock went back by %s; %s moved back by as much", last - now, counted(moved, "pending poll")
            )
        elif last is None:
            blocked = self.store.host_blocks(now)
            for source in self.settings.sources:
                state = self.store.source_state(source.key)
                if state is None or state.next_poll is None:
                    continue
                interval = interval_in_force(source, state.interval)
                longest = backoff(interval, state.error_count, source.max_interval) * (1 + JITTER) + 1
                if state.host in blocked:
                    longest = max(longest, MAX_RETRY_AFTER.total_seconds() * (1 + JITTER) + 1)
                if state.next_poll > now + timedelta(seconds=longest):
                    when = next_poll(now, interval, 0, None, source.min_interval, source.max_interval)
                    log.warning(
                        "source %s: due at %s, later than its interval settings allow (lowered while stopped,"
                        " or the clock set back); re-timed to %s",
                        source.key,
                        state.next_poll.isoformat(),
                        when.isoformat(),
                    )
                    self.store.set_next_poll(source.key, when)

    def _submit(self, source: Source, host: str) -> None:
        while True:
            pool = self.pool
            try:
                fut = pool.submit(self._poll, source)
                break
            except RuntimeError:
                # A reload that changed `site.workers` swapped the pool and shut this one down
                # after it was read: the poll goes to the new one. It was a "dispatch failed"
                # and the source, with the rest of the due list, waited for the next heartbeat.
                if self.pool is pool:  # the daemon itself is stopping
                    raise
        self._inflight[source.key] = fut
        self._hosts[source.key] = host
        fut.add_done_callback(lambda f, s=source: self._done(s, f))

    def _free(self, key: str, read_at: int) -> bool:
        """Not in flight, and no poll of it ended since a due list was read (caller holds the lock)."""
        return key not in self._inflight and self._ended_at.get(key, 0) <= read_at

    def _schedule_next(self) -> None:
        """Wake at the soonest due time, but not before `tick` nor after `max_sleep`."""
        now = datetime.now(UTC)
        soonest = self.store.earliest_next_poll()
        low, high = now + timedelta(seconds=self.tick), now + timedelta(seconds=self.max_sleep)
        when = high if soonest is None else min(max(soonest, low), high)
        if when < high:
            self._wake_dispatcher(when)

    def _wake_dispatcher(self, when: datetime | None = None, force: bool = False) -> None:
        """A one-shot run of the dispatcher at `when` (default now), unless one comes sooner.

        One-shot jobs get fresh ids: a job that re-added itself under a fixed id could be
        removed by the scheduler finishing the very run that added it.
        """
        when = when or datetime.now(UTC)
        with self._lock:
            pending = self._next_wake
            if not force and pending is not None and datetime.now(UTC) < pending <= when:
                return
            self._next_wake = when
        try:
            self.scheduler.add_job(self._dispatch, "date", run_date=when, misfire_grace_time=None, name="wake")
        except Exception:  # the scheduler is shutting down
            log.debug("wake-up not scheduled", exc_info=True)

    def _watchdog(self) -> None:
        """The scheduler times jobs by the wall clock; if it jumped back, it would sleep on.

        The main thread notices a dispatcher silent for longer than the heartbeat and
        wakes it, so polling never stops for long.
        """
        if self._last_dispatch is None:
            return
        silent = time.monotonic() - self._last_dispatch
        if silent > self.max_sleep + 2 * self.watch_interval + 1:
            log.warning("the dispatcher has not run for %.0fs (clock change?); waking it", silent)
            self._last_dispatch = time.monotonic()
            self._wake_dispatcher(force=True)

    def _watch_output(self) -> None:
        """The output folder removed while running (to start afresh, or by a cleanup job) is
        published again in full: else it stayed missing until a source changed, and then
        only that source's categories came back."""
        index = self.settings.output_dir / "index.html"
        if self._publish_failing is None and self.publisher.idle and not index.is_file():
            log.warning("%s is missing: publishing everything again", index)
            self.publisher.add(None, delay=0)

    def _watch_store(self) -> None:
        """Another process's commit (`aggregator prune` from cron) is published within seconds:
        the daemon published only after its own polls, so pruned posts stayed in the feeds and
        pages until one of their sources brought something new. Publishing everything skips
        each category whose sources' revisions are as last published, so a commit that changed
        no post (a `fetch` whose feeds were all unchanged) costs a few queries and logs nothing."""
        version = self.store.outside_version()
        if version is None or version == self._outside_version:
            return
        first, self._outside_version = self._outside_version is None, version
        if not first:
            self.publisher.add(None, quiet=True)

    def _retain(self) -> None:
        """Apply keep_days / keep_per_source to every source, hourly and soon after start: a poll
        applies them only when it brings posts, so a quiet or dead source kept its posts for
        good past keep_days (Miniflux's cleanup runs on a timer too). Sources being polled are
        left to the next round; their poll stores and prunes on its own."""
        if self._stop.is_set():
            return
        now = self.clock()
        touched: set[str] = set()
        for source in self.settings.sources:
            if not source.retention.limited or self._stop.is_set():
                continue
            with self._lock:
                if source.key in self._inflight:
                    continue
            try:
                pruned = prune_source(source, self.store, now)
            except Exception as e:  # a full disk (StoreError), or the store closed at shutdown
                if self._stop.is_set():
                    return
                log.warning(
                    "source %s: pruning old posts failed (retrying in %gs): %s",
                    source.key,
                    self.retain_every,
                    e,
                    extra={"source": source.key},
                )
                break  # what was pruned before is published: a quiet source has nothing left to prune next round
            if pruned:
                touched.update(source.categories)
        if touched:
            self.publisher.add(frozenset(touched))
            try:  # the pages the round freed go back to the disk, when they are many (`Store.reclaim`)
                self.store.reclaim()
            except Exception as e:
                if not self._stop.is_set():
                    log.warning("giving the space of pruned posts back failed: %s", e)

    def _poll(self, source: Source) -> Outcome:
        """Runs on a worker. Everything that follows from the outcome happens here, before the
        future completes: whoever waits for the future (shutdown) then sees it all done."""
        key = source.key
        with source_context(key):
            started = time.monotonic()
            try:
                with self.metrics.in_flight.track_inprogress():  # running: not waiting for a pool worker
                    outcome = update_source(source, self.store, self.fetcher, now=self.clock)
            except Exception as e:  # update_source records feed errors itself; this is a bug
                self.metrics.fetches.labels("error").inc()
                log.exception("source %s: %s", key, e)
                raise
            finally:
                self.metrics.fetch_duration.observe(time.monotonic() - started)
            self.metrics.fetches.labels(outcome.status).inc()
            extra: dict[str, Any] = {"source": key, "outcome": outcome.status, "new": outcome.new}
            if outcome.status == "error":
                log.debug("source %s: error: %s", key, outcome.error, extra=extra)  # the pipeline logged it
            elif outcome.status == "skipped":  # why, as `fetch` says it: "skipped (0 new…)" told nothing
                log.info("source %s: skipped: %s", key, outcome.note, extra=extra)
            else:
                log.info(
                    "source %s: %s (%d new, %d updated)", key, outcome.status, outcome.new, outcome.updated, extra=extra
                )
            self._hold_if_unscheduled(source, outcome)
            if outcome.store_error is not None:
                self._store_failing = (time.monotonic(), outcome.store_error)
            elif outcome.status != "skipped" and not outcome.unscheduled:
                # this poll's state was stored (a 304 or an error writes it too): the database
                # takes writes again. Waiting for new posts kept /healthz 503 up to 10 min after.
                self._store_failing = None
            current = self.settings.source(key)
            if outcome.changed:
                self.publisher.add({*source.categories, *(current.categories if current else ())})
            if current is not None and _timing(current) != _timing(source) and not self._stop.is_set():
                # a reload re-timed it while this poll (old settings) ran: its interval, or the
                # bounds a learnt one is held in (a lowered max_interval waited out the old one)
                try:
                    self._reschedule(current)
                except StoreError as e:  # a full disk: raised here, it reached nobody's log
                    log.error(
                        "source %s: re-timing it for the reloaded config failed: %s; its next poll stays "
                        "where its old settings put it",
                        key,
                        e,
                        extra=extra,
                    )
                    self._store_failing = (time.monotonic(), str(e))
            return outcome

    def _hold_if_unscheduled(self, source: Source, outcome: Outcome) -> None:
        """A poll whose next-poll time could not be stored (disk full, read-only database) would
        be due again at once: hold the source back one interval in memory instead."""
        if not outcome.unscheduled:
            self._not_before.pop(source.key, None)  # the database has its schedule
            return
        wait = interval_for(source)
        self._not_before[source.key] = time.monotonic() + wait
        log.warning("source %s: its next poll time could not be stored; not polled again for %gs", source.key, wait)

    def _done(self, source: Source, fut: Future[Outcome]) -> None:
        with self._lock:
            self._inflight.pop(source.key, None)
            self._ended += 1
            self._ended_at[source.key] = self._ended
            host = self._hosts.pop(source.key, None)
            waiting = self._waiting.get(host) if host is not None else None
            while waiting and not self._stop.is_set():  # the host's slot is free: its next due source
                nxt = self.settings.source(waiting.popleft().key)  # as configured now (a reload)
                if nxt is None or not self._free(nxt.key, self._read_at):
                    continue  # removed by a reload, or polled meanwhile
                if self._not_before.get(nxt.key, 0.0) > time.monotonic():
                    continue
                try:
                    self._submit(nxt, host)
                except RuntimeError:  # the pool is shutting down: it stays due for the next start
                    pass
                break

    # -- publishing -------------------------------------------------------------------------

    def _publish(self, categories: frozenset[str] | None) -> bool:
        settings = self.settings
        started = time.monotonic()
        try:
            report = publish(settings, self.store, categories, pinger=self.pinger, stop=self._publish_must_stop)
        # disk full, read-only output, a template broken by an edit: one clear line (file and
        # line of a template), retried; not a traceback that reads as a crash
        except (OSError, StoreError, SiteError) as e:
            self.metrics.publish_errors.inc()
            log.error("publishing to %s failed (retrying in %gs): %s", settings.output_dir, self.publisher.retry, e)
            self._publish_failed(str(e))
            return False
        except Exception as e:
            self.metrics.publish_errors.inc()
            log.exception("publish failed; retrying in %gs", self.publisher.retry)
            self._publish_failed(f"{type(e).__name__}: {e}")
            return False
        finally:
            self.metrics.publish_duration.observe(time.monotonic() - started)
        self._publish_failing = None
        if report.stopped:
            log.info("publishing stopped with the daemon: what is left is published at the next start")
        what = "all categories" if categories is None else ", ".join(sorted(categories)) or "the all-posts feeds"
        quiet = self.publisher.quiet and not report.written and not report.removed
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "published %s: %s written, %d unchanged, %d removed",
            what,
            counted(len(report.written), "file"),
            report.unchanged,
            len(report.removed),
            extra={
                "categories": None if categories is None else sorted(categories),
                "written": len(report.written),
                "unchanged": report.unchanged,
                "removed": len(report.removed),
            },
        )
        return True

    def _publish_must_stop(self) -> bool:
        """Whether a running publish must stop before its next file: the daemon is stopping and
        its grace period is over (or a second signal came). A publish of every page (the first
        after an upgrade, at 10,000 sources: minutes) held a stop past systemd's
        TimeoutStopSec, which then killed it; within the grace, pending changes still get
        published."""
        if self._force.is_set():
            return True
        deadline = self._stop_deadline
        return deadline is not None and time.monotonic() >= deadline

    # -- reload -----------------------------------------------------------------------------

    def _config_changed(self) -> bool:
        """Cheap check (stat) every few seconds; hash only when the stat changed."""
        path = self.settings.path
        try:
            st = path.stat()
        except OSError:
            return False  # mid-save by an editor, or removed: keep running what we have
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == self._config_stat:
            if not self._config_unreadable:
                return False
            # made readable again (`chmod`, `chown`: no stat field above changes): read it then
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                return False  # still not: said when it became so
            self._config_unreadable = False
            return digest != self._config_hash
        # A save in progress (truncated, not yet written) must not be read as the new config
        # and rejected: read it once it has stood still for a moment, else look next round.
        time.sleep(CONFIG_SETTLE)
        try:
            again = path.stat()
        except OSError:
            return False
        if (again.st_mtime_ns, again.st_size, again.st_ino) != sig:
            return False
        self._config_stat = sig
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            # There but not readable (saved by root as 0600, a folder in its place): the reload
            # says so in the log, once; it stayed silent, and the edit seemed applied.
            return True
        return digest != self._config_hash

    def reload(self, reason: str) -> bool:
        """Apply the config file as it is now; False (and the old config kept) when invalid."""
        old = self.settings
        path = old.path
        self._reload_retry = None
        try:
            self._config_stat, self._config_hash, data = _read_signed(path)
        except OSError as e:
            self._config_unreadable = True
            return self._reject(path, reason, [f"cannot read: {e}"])
        self._config_unreadable = False
        try:
            new = parse_config(decode_config(data, path), path)
        except ConfigError as e:
            return self._reject(path, reason, str(e).splitlines())
        if new.database != old.database:
            return self._reject(
                path,
                reason,
                [
                    f"{new.where('site', 'database')}site.database: changed to {new.database}; "
                    "a daemon keeps its database, restart it"
                ],  # fmt: skip
            )
        if old.sources and not new.sources:
            # A save cut short (a copy over the file, `categories: []` typed by mistake) still
            # parses: applied, it took every page and feed of the site down within a second.
            return self._reject(
                path,
                reason,
                [
                    f"no source left (was {counted(len(old.sources), 'source')}): taken for a save cut short, "
                    "the running config stays; restart the daemon to run with none"
                ],
            )
        for warning in new.warnings:
            log.warning("%s:%s", path, warning)
        before = {s.key: s for s in old.sources}
        after = {s.key: s for s in new.sources}
        added = [k for k in after if k not in before]
        removed = [k for k in before if k not in after]
        retimed = [after[k] for k in after if k in before and _timing(after[k]) != _timing(before[k])]
        try:
            moved = self.store.sync_sources(new.sources)
            retimed += [
                after[k]
                for o, k in moved.items()
                if o in before and k in after and _timing(after[k]) != _timing(before[o])
            ]
            for source in retimed:
                self._reschedule(source)
            # Put back into the config (absent from the previous one) or enabled again: a fresh
            # chance, polled at once, gone or not. A restart keeps a gone source gone: only an
            # edit says someone wants it back. (One taken over by an edited URL: `_take_over`.)
            taken = set(moved.values())
            again = [k for k in added if k not in taken and after[k].enabled]
            again += [k for k in after if k in before and after[k].enabled and not before[k].enabled]
            self.store.poll_again(again)
        except StoreError as e:  # disk full, read-only database: the daemon goes on, and tries again
            self._reload_retry = time.monotonic() + RELOAD_RETRY
            return self._reject(path, reason, [f"cannot apply it: {e}; tried again in {RELOAD_RETRY:g}s"])
        self.settings = new
        if new.site.workers != old.site.workers:
            self._old_pools.append(self.pool)
            self.pool = ThreadPoolExecutor(max_workers=new.site.workers, thread_name_prefix="fetch")
            self._old_pools[-1].shutdown(wait=False)  # its polls in flight finish; new ones go to the new pool
        self.metrics.reloads.labels("applied").inc()
        log.info(
            "config reloaded (%s): %s; %d added, %d removed, %d re-timed",
            reason,
            counted(len(new.sources), "source"),
            len(added),
            len(removed),
            len(retimed),
            extra={"added": added, "removed": removed, "retimed": [s.key for s in retimed]},
        )
        for key in removed:
            if key not in moved:  # one taken over was logged by the store, under its new URL
                log.info(  # outside any poll: its `source` is not in the context
                    "source %s: removed from the config; no longer polled (its posts stay stored)",
                    key,
                    extra={"source": key},
                )
        if len(removed) >= 2 and 2 * len(removed) >= len(before):  # a save cut short, maybe
            log.warning(
                "the reload removed %d of %s: their posts leave the site's pages and feeds now "
                "(they stay stored: put the sources back to bring them back)",
                len(removed),
                counted(len(before), "source"),
            )
        # names, categories and membership may all have changed; a reload that changed
        # nothing published writes nothing, and says so only at debug level
        self.publisher.add(None, sooner=True, quiet=True)
        self._wake_dispatcher(force=True)
        return True

    def _reject(self, path: Path, reason: str, errors: list[str]) -> bool:
        self.metrics.reloads.labels("rejected").inc()
        for line in errors:
            log.error("config reload rejected: %s", line if line.startswith(str(path)) else f"{path}: {line}")
        log.error(
            "config reload (%s) rejected with %s; still running the previous config",
            reason,
            counted(len(errors), "error"),
            extra={"errors": errors},
        )
        return False

    def _reschedule(self, source: Source) -> None:
        state = self.store.source_state(source.key)
        if state is None or state.last_fetch is None or state.next_poll is None:
            return  # never polled, or polled at another URL (taken over): due now anyway
        interval = interval_in_force(source, state.interval)
        when = next_poll(state.last_fetch, interval, state.error_count, None, source.min_interval, source.max_interval)
        self.store.set_next_poll(source.key, when)

    # -- health and metrics -------------------------------------------------------------------

    def _publish_failed(self, error: str) -> None:
        since = self._publish_failing[0] if self._publish_failing is not None else time.monotonic()
        self._publish_failing = (since, error)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Alive when the scheduler runs and dispatches, the database takes writes, and
        publishing has not been failing for PUBLISH_UNHEALTHY (its outputs are going stale)."""
        problems: list[str] = []
        thread = getattr(self.scheduler, "_thread", None)
        if not self.scheduler.running or thread is None or not thread.is_alive():
            problems.append("scheduler is not running")
        elif self._last_dispatch is not None:
            silent = time.monotonic() - self._last_dispatch
            if silent > 2 * self.max_sleep + 10:
                problems.append(f"dispatcher has not run for {silent:.0f}s")
        if self._stop.is_set():
            problems.append("shutting down")
        writable = self.store.probe_writable()
        if writable is not None:
            problems.append(writable)
        refused = self._store_failing
        if refused is not None and time.monotonic() - refused[0] < STORE_UNHEALTHY:
            ago = time.monotonic() - refused[0]
            problems.append(f"the database refused a poll's posts {ago:.0f}s ago: {refused[1]}")
        failing = self._publish_failing
        if failing is not None and time.monotonic() - failing[0] >= PUBLISH_UNHEALTHY:
            minutes = (time.monotonic() - failing[0]) / 60
            problems.append(f"publishing has failed for {minutes:.0f} min: {failing[1]}")
        inflight = int(self.metrics.registry.get_sample_value("aggregator_fetches_in_flight") or 0)
        detail: dict[str, Any] = {
            "status": "ok" if not problems else "unhealthy",
            "problems": problems,
            "sources": len(self.settings.sources),
            "in_flight": inflight,
            "pid": os.getpid(),
        }
        if self.settings.site.websub_hub:
            # Told, not a problem: the hub is another service, its subscribers still poll the
            # feeds, and a 503 here would have the daemon restarted for what a restart cannot fix.
            ping_failing = self.pinger.failing
            detail["websub"] = {
                "pending": self.pinger.pending,
                "retrying": self.pinger.retrying,
                "accepted": self.pinger.accepted,
                "failed": self.pinger.failed,
                "failing": None
                if ping_failing is None
                else masked(f"for {time.monotonic() - ping_failing[0]:.0f}s: {ping_failing[1]}"),  # the hub's URL
            }
        return not problems, detail

    def _healthz(self) -> tuple[int, str, bytes]:
        ok, detail = self.health()
        return (200 if ok else 503), "application/json", (json.dumps(detail) + "\n").encode()

    def _metrics(self) -> tuple[int, str, bytes]:
        body, ctype = self.metrics.render()
        return 200, ctype, body


def _timing(source: Source) -> tuple[float, bool, float, float]:
    """What decides when a source is polled: a reload that changes it re-times the source."""
    return source.interval, source.adaptive, source.min_interval, source.max_interval


def _read_signed(path: Path) -> tuple[tuple[int, int, int], str, bytes]:
    """(stat signature, sha256, bytes): stat first, so a change racing the read is seen next time."""
    st = path.stat()
    data = path.read_bytes()
    return (st.st_mtime_ns, st.st_size, st.st_ino), hashlib.sha256(data).hexdigest(), data


def _file_signature(path: Path) -> tuple[tuple[int, int, int] | None, str | None]:
    try:
        sig, digest, _ = _read_signed(path)
    except OSError:
        return None, None
    return sig, digest
