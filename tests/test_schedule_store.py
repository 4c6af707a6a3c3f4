"""The polling state in SQLite: an old database gains it on open, and due sources are chosen there."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from aggregator.models import Source
from aggregator.store import Store

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

OLD_SOURCES = """CREATE TABLE sources (key TEXT PRIMARY KEY, url TEXT NOT NULL, name TEXT, title TEXT, site_link TEXT,
etag TEXT, last_modified TEXT, body_hash TEXT, last_fetch TEXT, last_success TEXT, last_status INTEGER,
last_error TEXT, error_count INTEGER, next_poll TEXT, state TEXT, active INTEGER)"""


def test_a_database_from_before_keeps_its_schedule_and_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute(OLD_SOURCES)
    con.execute(
        "INSERT INTO sources (key, url, error_count, state, active, next_poll) VALUES (?, ?, 2, 'erroring', 1, ?)",
        ["https://a.example/feed", "https://a.example/feed", (NOW + timedelta(hours=1)).isoformat()],
    )
    con.commit()
    con.close()
    with Store(path) as store:
        store.sync_sources([Source(key="https://a.example/feed", url="https://a.example/feed")])
        st = store.source_state("https://a.example/feed")
        assert st.error_count == 2 and st.host == "a.example" and st.enabled and st.learnt_url is None
        assert store.due_sources(NOW) == []
        assert store.due_sources(NOW + timedelta(hours=1)) == ["https://a.example/feed"]
        assert store.host_blocks(NOW) == {}


def test_due_sources_leave_out_disabled_gone_and_rate_limited_hosts(tmp_path):
    sources = [
        Source(key="https://a.example/1", url="https://a.example/1"),
        Source(key="https://a.example/2", url="https://a.example/2"),
        Source(key="https://b.example/1", url="https://b.example/1"),
        Source(key="https://c.example/1", url="https://c.example/1", enabled=False),
        Source(key="https://d.example/1", url="https://d.example/1"),
    ]
    with Store(tmp_path / "a.db") as store:
        store.sync_sources(sources)
        assert store.due_sources(NOW) == sorted(s.key for s in sources if s.enabled)
        store.record_gone("https://d.example/1", NOW, "HTTP 410 Gone")
        store.record_rate_limit(
            "https://a.example/1", NOW, "a.example", NOW + timedelta(minutes=10), "HTTP 429", 429, NOW
        )
        assert store.due_sources(NOW) == ["https://b.example/1"]
        due = store.due_sources(NOW + timedelta(minutes=10))
        assert due == ["https://a.example/2", "https://b.example/1", "https://a.example/1"]  # never polled first
        # an earlier Retry-After never shortens a later one
        store.record_rate_limit("https://a.example/2", NOW, "a.example", NOW + timedelta(minutes=1), "x", 429, NOW)
        assert store.host_retry_after("a.example") == NOW + timedelta(minutes=10)
        # removed from the config: not due either
        store.sync_sources(sources[1:])
        assert "https://a.example/1" not in store.due_sources(NOW + timedelta(days=1))
