"""The long-running service: APScheduler dispatches due sources to a worker pool.

One dispatcher job (not one job per source) reads due times from the database every
`tick` seconds: the schedule survives restarts, a config reload needs no job surgery,
and thousands of sources cost one job. Publishing happens after a batch finishes, once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from .config import Settings
from .fetch import Fetcher
from .pipeline import Outcome, update_source
from .publish import publish
from .store import Store, StoreError

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, settings: Settings, store: Store, tick: float = 1.0) -> None:
        self.settings = settings
        self.store = store
        self.tick = tick
        self.fetcher = Fetcher()
        self.pool = ThreadPoolExecutor(max_workers=settings.site.workers, thread_name_prefix="fetch")
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.stopping = threading.Event()
        self._inflight: dict[str, Future[Outcome]] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        # monotonic time before which a source is not polled again, whatever the database says:
        # when its new schedule cannot be saved (disk full), it must not be re-polled every tick
        self._not_before: dict[str, float] = {}

    def run(self) -> int:
        self.store.sync_sources(self.settings.sources)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        self.scheduler.add_job(
            self._dispatch,
            "interval",
            seconds=self.tick,
            id="dispatch",
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()
        log.info("daemon started: %d sources, output %s", len(self.settings.sources), self.settings.output_dir)
        self._publish(None)
        while not self.stopping.wait(3600):
            pass
        log.info("stopping: waiting for in-flight fetches")
        self.scheduler.shutdown(wait=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._publish_dirty()
        self.fetcher.close()
        log.info("stopped")
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self.stopping.set()

    def _dispatch(self) -> None:
        if self.stopping.is_set():
            return
        now = datetime.now(UTC)
        due = {s.key: s for s in self.store.source_states() if s.next_poll is None or s.next_poll <= now}
        for source in self.settings.sources:
            if source.key in due and source.key not in self._inflight:
                if self._not_before.get(source.key, 0.0) > time.monotonic():
                    continue
                self._not_before[source.key] = time.monotonic() + source.interval
                fut = self.pool.submit(update_source, source, self.store, self.fetcher)
                self._inflight[source.key] = fut
                fut.add_done_callback(lambda f, s=source: self._done(s.key, s.categories, f))
        self._publish_dirty()  # sources that finished since the last tick publish together, once

    def _done(self, key: str, categories: tuple[str, ...], fut: Future[Outcome]) -> None:
        self._inflight.pop(key, None)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.error("source %s: %s", key, exc)
            return
        outcome = fut.result()
        log.info("source %s: %s (%d new, %d updated)", key, outcome.status, outcome.new, outcome.updated)
        if outcome.changed:
            with self._lock:
                self._dirty.update(categories)

    def _publish_dirty(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        if dirty and not self._publish(dirty):
            with self._lock:
                self._dirty |= dirty  # retried next tick, so outputs catch up once the disk has room

    def _publish(self, categories: set[str] | None) -> bool:
        try:
            report = publish(self.settings, self.store, categories)
            log.info("published: %d files written, %d unchanged", len(report.written), report.unchanged)
            return True
        except (OSError, StoreError) as e:  # disk full, read-only output: say so, retry later
            log.error("publishing to %s failed (will retry): %s", self.settings.output_dir, e)
        except Exception:
            log.exception("publish failed")
        return False
