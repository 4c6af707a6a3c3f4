"""Clock jumps: the daemon, in-process with a fake wall clock, a real SQLite store and a
local HTTP server counting requests per feed. A jump back by a day must not silence the
sources for a day; a jump forward by a week must poll each source once, not catch up.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import load_config
from aggregator.daemon import Daemon
from aggregator.store import Store

from ..daemon_support import FEEDS, FeedServer, write_config

HOUR = timedelta(hours=1)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _settle(server: FeedServer, paths: list[str], n: int, seconds: float = 0.6) -> dict[str, int]:
    """Wait until every path has `n` requests, then many more dispatches; the counts then."""
    for p in paths:
        server.wait_hits(p, n, timeout=10)
    time.sleep(seconds)  # at a 0.05 s tick and a 0.1 s heartbeat: several dispatches
    return {p: server.hits[p] for p in paths}


def _next_polls(store: Store) -> list[datetime]:
    return [s.next_poll for s in store.source_states() if s.next_poll is not None]


def test_clock_jumps_neither_stop_polling_nor_burst(tmp_path: Path) -> None:
    server = FeedServer()
    paths = [f"/f{i}" for i in range(len(FEEDS))]
    urls = [server.feed(p, f) for p, f in zip(paths, FEEDS, strict=True)]
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": u, "interval": "1h"} for u in urls])
    settings = load_config(cfg)
    store = Store(settings.database)
    clock = FakeClock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    daemon = Daemon(settings, store, tick=0.05, max_sleep=0.1, watch_interval=0.1, publish_delay=0.05, clock=clock)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        assert _settle(server, paths, 1) == dict.fromkeys(paths, 1)  # polled once; next in ~1 h

        clock.now += 30 * 60 * timedelta(seconds=1)  # half an interval: nothing due
        assert _settle(server, paths, 1, 0.3) == dict.fromkeys(paths, 1)

        clock.now -= timedelta(days=1)  # the clock goes back a day
        deadline = time.monotonic() + 5
        while max(_next_polls(store)) > clock.now + 1.2 * HOUR and time.monotonic() < deadline:
            time.sleep(0.05)
        # each source still due within its interval of the (new) now, not a day later
        assert all(when <= clock.now + 1.2 * HOUR for when in _next_polls(store)), (clock.now, _next_polls(store))
        assert _settle(server, paths, 1, 0.3) == dict.fromkeys(paths, 1)  # and not polled at once
        clock.now += 1.2 * HOUR - 30 * 60 * timedelta(seconds=1)  # an interval after the last poll
        started = time.monotonic()
        assert _settle(server, paths, 2) == dict.fromkeys(paths, 2)
        assert time.monotonic() - started < 5

        clock.now += timedelta(days=7)  # forward a week: each source polled once, no catch-up burst
        assert _settle(server, paths, 3, 1.0) == dict.fromkeys(paths, 3)
        assert all(when >= clock.now + 0.85 * HOUR for when in _next_polls(store)), _next_polls(store)
    finally:
        daemon.request_stop()
        thread.join(15)
        server.close()
    assert not thread.is_alive()
    assert daemon.abandoned == []


def test_a_clock_set_back_while_stopped_is_caught_at_start(tmp_path: Path) -> None:
    server = FeedServer()
    url = server.feed("/f0", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    settings = load_config(cfg)
    store = Store(settings.database)
    store.sync_sources(settings.sources)
    now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    store.set_next_poll(url, now + timedelta(days=1, hours=1))  # polled "tomorrow", by the clock before the jump
    clock = FakeClock(now)
    daemon = Daemon(settings, store, tick=0.05, max_sleep=0.1, watch_interval=0.1, clock=clock)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while _next_polls(store)[0] > now + 1.2 * HOUR and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _next_polls(store)[0] <= now + 1.2 * HOUR  # re-timed from now, not a day away
        clock.now += 1.2 * HOUR
        assert _settle(server, ["/f0"], 1, 0.3) == {"/f0": 1}
    finally:
        daemon.request_stop()
        thread.join(15)
        server.close()
    assert not thread.is_alive()


def test_a_clock_set_back_says_1_pending_poll_not_1_pending_polls(tmp_path: Path, caplog) -> None:
    """One source and a clock set back: the warning read "1 pending polls moved back"."""
    server = FeedServer()
    url = server.feed("/f0", FEEDS[0])
    settings = load_config(write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}]))
    store = Store(settings.database)
    clock = FakeClock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    daemon = Daemon(settings, store, tick=0.05, max_sleep=0.1, watch_interval=0.1, publish_delay=0.05, clock=clock)
    thread = threading.Thread(target=daemon.run, daemon=True)
    with caplog.at_level("WARNING", logger="aggregator.daemon"):
        thread.start()
        try:
            _settle(server, ["/f0"], 1)
            clock.now -= timedelta(days=1)
            deadline = time.monotonic() + 5
            while not any("went back" in m for m in caplog.messages) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            daemon.request_stop()
            thread.join(15)
            server.close()
    (line,) = [m for m in caplog.messages if "went back" in m]
    assert line.endswith("; 1 pending poll moved back by as much"), line
