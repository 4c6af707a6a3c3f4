"""The real daemon (`aggregator run` in a subprocess) against local feed servers:
polling cadence, coalesced missed polls, debounced publishing, one instance per database,
/healthz and /metrics, and a consistent backup while it runs."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aggregator.config import load_config
from aggregator.store import Store

from .conftest import run_cli
from .daemon_support import FEEDS, Daemon, FeedServer, fetched, write_config


@pytest.fixture
def feeds():
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def daemons():
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def _get(url: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_polls_at_the_interval_and_a_missed_poll_runs_once(tmp_path, feeds, daemons):
    a = feeds.feed("/a", FEEDS[0])
    b = feeds.feed("/b", FEEDS[1])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": a, "interval": "1s"}, {"url": b, "interval": "1h"}])
    # b was last polled 10 hours ago and was due 9 hours ago: the machine slept, the daemon was down.
    settings = load_config(cfg)
    now = datetime.now(UTC)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        store.record_success(b, now - timedelta(hours=10), 200, next_poll=now - timedelta(hours=9))

    daemon = Daemon(cfg)
    daemons.append(daemon)
    assert feeds.wait_hits("/a", 5) >= 5, daemon.log
    times = feeds.times["/a"][:5]
    mean_gap = (times[-1] - times[0]) / 4
    assert 0.5 <= mean_gap <= 2.5, f"1s interval polled every {mean_gap:.2f}s on average"
    assert feeds.hits["/b"] == 1, "a missed poll must run once, not once per missed interval"
    assert daemon.stop() == 0, daemon.log

    with Store(settings.database) as store:
        state = store.source_state(b)
    assert state is not None and state.next_poll is not None and state.posts > 0
    # the next poll of b is scheduled from now, one interval (±10% jitter) ahead
    ahead = state.next_poll - datetime.now(UTC)
    assert timedelta(minutes=50) < ahead < timedelta(minutes=70)


def test_sources_finishing_together_publish_once(tmp_path, feeds, daemons):
    urls = [feeds.feed(f"/d{i}", FEEDS[i], delay=0.2 + 0.3 * i) for i in range(3)]
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": u, "interval": "1h"} for u in urls])
    daemon = Daemon(cfg)
    daemons.append(daemon)
    for u in urls:
        daemon.wait_for(fetched(u, "new"))
    batch = daemon.wait_for(lambda r: r.get("categories") is not None)
    assert daemon.stop() == 0, daemon.log
    publishes = [r for r in daemon.records if r.get("categories") is not None]
    # three sources finishing within the debounce window: one publish of their three categories
    assert len(publishes) == 1 and batch[0]["categories"] == ["c0", "c1", "c2"], daemon.log
    for i in range(3):
        assert "</entry>" in (tmp_path / "public" / "category" / f"c{i}.atom").read_text(encoding="utf-8")


def test_a_second_daemon_on_the_same_database_is_refused(tmp_path, feeds, daemons):
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    first = Daemon(cfg)
    daemons.append(first)
    first.wait_for(lambda r: r["message"].startswith("daemon started"))

    second = run_cli("--config", str(cfg), "run", timeout=30)
    assert second.returncode == 1
    assert "already running" in second.stderr and f"pid {first.proc.pid}" in second.stderr
    # another config file naming the same database by another path is refused as well
    other = tmp_path / "elsewhere" / "feeds.yaml"
    other.parent.mkdir()
    write_config(other, [{"url": url, "interval": "1h"}], site_extra="  database: ../aggregator.db")
    assert run_cli("--config", str(other), "run", timeout=30).returncode == 1

    assert first.stop() == 0, first.log
    # the lock goes with the process: a new daemon starts (and stops) normally
    again = Daemon(cfg)
    daemons.append(again)
    again.wait_for(lambda r: r["message"].startswith("daemon started"))
    assert again.stop() == 0, again.log


def test_a_second_serving_daemon_is_told_the_first_runs_not_that_the_port_is_taken(tmp_path, feeds, daemons):
    """`run --serve` binds its port before it takes the lock: the same command started twice
    said only "cannot listen … Address already in use", not the daemon holding both (review)."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    first = Daemon(cfg, "--serve", "--port", "0")
    daemons.append(first)
    port = first.port
    second = run_cli("--config", str(cfg), "run", "--serve", "--port", str(port), timeout=30)
    assert second.returncode == 1
    assert "already running" in second.stderr and f"pid {first.proc.pid}" in second.stderr, second.stderr
    assert first.stop() == 0, first.log


def test_run_serve_answers_healthz_and_metrics(tmp_path, feeds, daemons):
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    daemon = Daemon(cfg, "--serve", "--port", "0")
    daemons.append(daemon)
    base = f"http://127.0.0.1:{daemon.port}"
    daemon.wait_for(fetched(url, "new"))
    daemon.wait_for(lambda r: r.get("categories") == ["c0"])

    status, headers, body = _get(base + "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"

    status, headers, body = _get(base + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    db = tmp_path / "aggregator.db"
    posts = sqlite3.connect(db).execute("SELECT count(*) FROM posts").fetchone()[0]
    assert posts > 0
    assert samples[("aggregator_posts_stored", ())] == posts
    assert samples[("aggregator_sources", (("state", "ok"),))] == 1
    assert samples[("aggregator_sources", (("state", "erroring"),))] == 0
    # every state `status` shows is a series, at 0 when no source is in it: `gone` and the others
    # appeared only while non-zero, so an alert on them had nothing to watch, and a graph no 0
    for state in ("new", "backing off", "rate-limited", "gone", "disabled"):
        assert samples[("aggregator_sources", (("state", state),))] == 0, state
    assert samples[("aggregator_fetches_total", (("outcome", "new"),))] == 1
    assert samples[("aggregator_fetches_total", (("outcome", "error"),))] == 0
    assert samples[("aggregator_fetch_duration_seconds_count", ())] == 1
    assert samples[("aggregator_publish_duration_seconds_count", ())] >= 2  # at start, and after the poll
    last = samples[("aggregator_last_successful_poll_timestamp_seconds", ())]
    assert abs(last - time.time()) < 120

    # the outputs are served from the same process
    status, headers, body = _get(base + "/category/c0.atom")
    assert status == 200 and headers["Content-Type"] == "application/atom+xml" and b"</entry>" in body

    # a database that cannot be written makes the daemon unhealthy, and healthy again after
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        status, _, body = _get(base + "/healthz")
        assert status == 503
        assert any("not writable" in p for p in json.loads(body)["problems"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _get(base + "/healthz")[0] == 200
    assert daemon.stop() == 0, daemon.log


def test_polls_waiting_for_a_worker_are_not_counted_in_flight(tmp_path, feeds, daemons):
    """`aggregator_fetches_in_flight` ("polls running now") and /healthz's `in_flight` counted the
    polls queued behind busy workers too: with `workers: 1`, two due sources showed 2 while one ran."""
    a, b = feeds.stall("/a"), feeds.stall("/b")
    cfg = write_config(
        tmp_path / "feeds.yaml", [{"url": a, "interval": "1h"}, {"url": b, "interval": "1h"}], "  workers: 1"
    )
    daemon = Daemon(cfg, "--serve", "--port", "0")
    daemons.append(daemon)
    base = f"http://127.0.0.1:{daemon.port}"
    deadline = time.monotonic() + 15
    while feeds.hits["/a"] + feeds.hits["/b"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # both dispatched: one runs, the other waits for the only worker
    assert feeds.hits["/a"] + feeds.hits["/b"] == 1
    metrics = text_string_to_metric_families(_get(base + "/metrics")[2].decode())
    samples = {s.name: s.value for family in metrics for s in family.samples}
    assert samples["aggregator_fetches_in_flight"] == 1
    assert json.loads(_get(base + "/healthz")[2])["in_flight"] == 1


def test_backup_while_the_daemon_writes(tmp_path, feeds, daemons):
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1s"}])
    daemon = Daemon(cfg)
    daemons.append(daemon)
    daemon.wait_for(fetched(url, "new"))
    feeds.wait_hits("/a", feeds.hits["/a"] + 1)  # the daemon keeps writing fetch state meanwhile

    copy = tmp_path / "backup.db"
    result = run_cli("--config", str(cfg), "backup", str(copy))
    assert result.returncode == 0, result.stderr
    assert f"to {copy}" in result.stdout
    (tmp_path / "backups").mkdir()
    into_dir = run_cli("--config", str(cfg), "backup", str(tmp_path / "backups"))
    assert into_dir.returncode == 0, into_dir.stderr
    assert daemon.stop() == 0, daemon.log

    live = sqlite3.connect(tmp_path / "aggregator.db")
    expected = live.execute("SELECT count(*) FROM posts").fetchone()[0]
    for path in [copy, *sorted((tmp_path / "backups").glob("aggregator-*.db"))]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == expected > 0
        conn.close()
    assert len(list((tmp_path / "backups").glob("aggregator-*.db"))) == 1
    assert not list(tmp_path.glob(".*.partial"))


def test_backup_without_a_database_fails_clearly(tmp_path):
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": "http://127.0.0.1:9/x", "interval": "1h"}])
    result = run_cli("--config", str(cfg), "backup", str(tmp_path / "b.db"))
    assert result.returncode == 1 and "no database" in result.stderr


def test_backup_refuses_a_missing_folder_and_the_database_itself(tmp_path, feeds):
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    folder = run_cli("--config", str(cfg), "backup", f"{tmp_path}/backups/")
    assert folder.returncode == 1 and "backups/: no such directory" in folder.stderr
    assert not (tmp_path / "backups").exists()  # no file named like the folder either
    for name in ("aggregator.db", "aggregator.db-wal", "aggregator.db-shm"):
        itself = run_cli("--config", str(cfg), "backup", str(tmp_path / name))
        assert itself.returncode == 1 and "is the database itself" in itself.stderr, itself.stderr
    assert sqlite3.connect(tmp_path / "aggregator.db").execute("SELECT count(*) FROM posts").fetchone()[0] > 0
