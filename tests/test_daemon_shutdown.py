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
