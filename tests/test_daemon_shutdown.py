"""SIGTERM with polls in flight: a stalled one is abandoned after the grace period, a slow one
within it finishes and is published; either way exit 0, an intact database, whole files."""

from __future__ import annotations

import sqlite3

import pytest
from lxml import etree

from aggregator.publish import OWNER_FILE

from .daemon_support import FEEDS, Daemon, FeedServer, fetched, write_config

MARGIN = 3.0  # process start-up of nothing, closing the database, interpreter exit


@pytest.fixture
def feeds():
    server = FeedServer()
    yield server
    server.close()


def _check_outputs(public):
    temporary = [p for p in public.rglob(".*") if p.is_file() and p.name != OWNER_FILE]
    assert not temporary, "a temporary file was left behind"
    for path in public.rglob("*.atom"):
        etree.parse(str(path))  # every file is a whole document


def test_sigterm_during_a_stalled_fetch_exits_within_the_grace_period(tmp_path, feeds):
    fast, stalled = feeds.feed("/fast", FEEDS[0]), feeds.stall("/stalled")
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": fast, "interval": "1h"}, {"url": stalled, "interval": "1h"}])
    daemon = Daemon(cfg, "--grace", "2s")
    try:
        daemon.wait_for(fetched(fast, "new"))
        assert feeds.wait_hits("/stalled", 1) == 1
        daemon.wait_for(lambda r: "c0" in (r.get("categories") or []))
        rc = daemon.stop()
    finally:
        daemon.kill()
    assert rc == 0, daemon.log
    assert daemon.exit_time is not None and daemon.exit_time < 2.0 + MARGIN, f"took {daemon.exit_time:.1f}s"
    abandoned = daemon.messages("^abandoned 1 poll still running")
    assert abandoned and stalled in abandoned[0]["message"]
    assert daemon.records[-1]["message"] == "stopped"

    db = sqlite3.connect(tmp_path / "aggregator.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM posts WHERE source = ?", [fast]).fetchone()[0] > 0
    # nothing was recorded for the abandoned poll: it is still due, and polled first next time
    assert db.execute("SELECT last_fetch, next_poll FROM sources WHERE key = ?", [stalled]).fetchone() == (None, None)
    _check_outputs(tmp_path / "public")


def test_sigterm_lets_a_fetch_in_flight_finish_store_and_publish(tmp_path, feeds):
    slow = feeds.feed("/slow", FEEDS[0], delay=1.5)
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": slow, "interval": "1h"}])
    daemon = Daemon(cfg)  # default grace: 10s
    try:
        daemon.wait_for(lambda r: r.get("categories") is None)  # the start-up publish, before the poll lands
        assert feeds.wait_hits("/slow", 1) == 1
        rc = daemon.stop()
    finally:
        daemon.kill()
    assert rc == 0, daemon.log
    assert daemon.exit_time is not None and daemon.exit_time < 10.0, daemon.log
    order = [r["message"] for r in daemon.records]
    stop_at = next(i for i, m in enumerate(order) if m.startswith("received SIGTERM"))
    done_at = next(i for i, r in enumerate(daemon.records) if fetched(slow, "new")(r))
    assert done_at > stop_at, "the poll finished after the signal"
    assert not daemon.messages("^abandoned")
    db = sqlite3.connect(tmp_path / "aggregator.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    posts = db.execute("SELECT count(*) FROM posts").fetchone()[0]
    atom = etree.parse(str(tmp_path / "public" / "category" / "c0.atom"))
    assert posts > 0 and len(atom.getroot().findall("{http://www.w3.org/2005/Atom}entry")) == posts
    _check_outputs(tmp_path / "public")


def test_grace_zero_abandons_polls_in_flight_at_once(tmp_path, feeds):
    """`--grace 0` was refused (`a duration must be positive`): stopping without waiting is a
    fair thing to ask of a service manager's stop command."""
    stalled = feeds.stall("/stalled")
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": stalled, "interval": "1h"}])
    daemon = Daemon(cfg, "--grace", "0")
    try:
        assert feeds.wait_hits("/stalled", 1) == 1, daemon.log
        rc = daemon.stop()
    finally:
        daemon.kill()
    assert rc == 0 and daemon.messages("^abandoned 1 poll still running"), daemon.log
    assert daemon.exit_time is not None and daemon.exit_time < MARGIN, f"took {daemon.exit_time:.1f}s"


def test_sigterm_stops_a_long_publish_between_files_and_the_next_publish_finishes_it(tmp_path, monkeypatch):
    """A publish of every page (the first after an upgrade, at 10,000 sources: minutes) held
    a SIGTERM until it ended, past systemd's TimeoutStopSec (20s), which then killed it."""
    from datetime import UTC, datetime, timedelta

    from aggregator.config import load_config
    from aggregator.models import Post
    from aggregator.publish import publish
    from aggregator.store import Store

    from .daemon_support import refusing_url

    sources, per_source = 50, 80  # 4,000 post pages: well over the grace period to render
    cfg = write_config(
        tmp_path / "feeds.yaml", [{"url": f"{refusing_url()}/{i}", "interval": "1h"} for i in range(sources)]
    )
    settings = load_config(cfg)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    body = "<p>" + "Words of a post long enough to be rendered as one. " * 40 + "</p>"
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        for i, src in enumerate(settings.sources):
            posts = [
                Post(
                    id=f"{i:06x}{j:010x}",
                    source=src.key,
                    guid=f"{i}-{j}",
                    title=f"Post {i}.{j}",
                    link=None,
                    published=t0 + timedelta(minutes=i * per_source + j),
                    updated=t0,
                    content=body,
                    content_hash=f"{i}-{j}",
                    first_seen=t0,
                )  # fmt: skip
                for j in range(per_source)
            ]
            store.record_success(src.key, t0, 200, posts=posts)
    monkeypatch.setenv("AGGREGATOR_PUBLISH_WORKERS", "0")  # the publisher alone: its own stop is timed
    daemon = Daemon(cfg, "--grace", "1s")
    try:
        daemon.wait_for(lambda r: r["message"].startswith("daemon started"), timeout=30)
        rc = daemon.stop()
    finally:
        daemon.kill()
    assert rc == 0, daemon.log
    assert daemon.exit_time is not None and daemon.exit_time < 1.0 + MARGIN + 2.0, f"took {daemon.exit_time:.1f}s"
    assert daemon.messages("^publishing stopped with the daemon"), daemon.log
    public = tmp_path / "public"
    _check_outputs(public)
    written = len(list((public / "posts").rglob("*.html")))
    assert written < sources * per_source  # stopped part of the way
    with Store(settings.database) as store:  # what is left is published next time, and only once
        report = publish(settings, store)
        assert not report.stopped and (public / "index.html").is_file()
        assert len(list((public / "posts").rglob("*.html"))) == sources * per_source
        assert publish(settings, store).written == []
