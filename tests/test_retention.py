"""Retention: keep_days and keep_per_source prune old posts, never a category's newest items_per_feed."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from aggregator.config import ConfigError, load_config
from aggregator.daemon import Daemon
from aggregator.models import Retention, Source
from aggregator.parse import parse_feed
from aggregator.pipeline import ingest, retain
from aggregator.store import Store

from .conftest import StaticServer, run_cli

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def feed(n: int, start: int = 0, host: str = "a") -> bytes:
    """n dated entries, entry i published i days before NOW (i from `start`)."""
    items = "".join(
        f"<item><guid>{host}{i}</guid><title>{host} 第{i}天</title><link>https://{host}.example/{i}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(days=i, hours=1))}</pubDate></item>"
        for i in range(start, start + n)
    )
    return f'<rss version="2.0"><channel><title>{host}</title>{items}</channel></rss>'.encode()


def src(host: str, *categories: str, **retention) -> Source:
    url = f"http://{host}.example/feed.xml"
    return Source(key=url, url=url, categories=categories, retention=Retention(**retention))


def take(store: Store, s: Source, body: bytes, when: datetime = NOW):
    """A poll's store, then its prune, as `update_source` does them."""
    taken = ingest(s, store, parse_feed(s.key, body, s.url), when)
    retain(s, store, taken[1], when)
    return taken


def titles(store: Store, category: str) -> list[str]:
    return [p.title for p in store.posts_for_category(category, 100)]


def test_keep_days_prunes_older_posts(store):
    a = src("a", "news", keep_days=3, protect=2)
    store.sync_sources([a])
    take(store, a, feed(10))  # retention runs after an update that brought new posts
    assert titles(store, "news") == ["a 第0天", "a 第1天", "a 第2天"]  # day 3 is 3 days and 1 hour old
    report = store.prune(a.key, a.retention, NOW + timedelta(days=1))
    assert (report.older, report.over) == (1, 0) and report.titles == ("a 第2天",)


def test_keep_per_source_keeps_the_newest_n(store):
    a = src("a", "news", keep_per_source=4, protect=1)
    store.sync_sources([a])
    take(store, a, feed(10))
    assert titles(store, "news") == ["a 第0天", "a 第1天", "a 第2天", "a 第3天"]
    assert store.prune(a.key, a.retention, NOW).removed == 0  # nothing more to do


def test_the_log_says_1_old_post_not_1_old_posts(store, caplog):
    """A source pruning one post at each poll (keep_per_source, a post a day) logged
    "pruned 1 old posts" in the daemon's log every time."""
    a = src("a", "news", keep_per_source=3, protect=1)
    store.sync_sources([a])
    with caplog.at_level("INFO", logger="aggregator.pipeline"):
        take(store, a, feed(3))
        take(store, a, feed(4), NOW + timedelta(hours=1))  # one new post: the oldest goes
    assert f"source {a.key}: pruned 1 old post" in caplog.messages, caplog.messages
    assert not any("1 old posts" in m for m in caplog.messages), caplog.messages


def test_prune_says_older_than_1_day_not_1_days(tmp_path: Path):
    """`keep_days: 1` (a news wire's config): `prune` printed "(2 older than 1 days)"."""
    www = tmp_path / "www"
    www.mkdir()
    old = datetime(2004, 1, 1, tzinfo=UTC)
    items = "".join(
        f"<item><guid>w{i}</guid><title>w-{i}</title>"
        f"<pubDate>{format_datetime(old - timedelta(days=i))}</pubDate></item>"
        for i in range(3)
    )
    (www / "w.xml").write_text(f'<rss version="2.0"><channel><title>w</title>{items}</channel></rss>')
    server = StaticServer(www)
    cfg = tmp_path / "feeds.yaml"
    text = "site:\n  title: T\n  url: https://t.example/\n  items_per_feed: 1\n"
    text += "categories:\n  - name: C\n    sources:\n"
    cfg.write_text(text + f"      - url: {server.url('w.xml')}\n", encoding="utf-8")
    try:
        fetched = run_cli("--config", str(cfg), "fetch")
    finally:
        server.close()
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    cfg.write_text(cfg.read_text(encoding="utf-8") + "        keep_days: 1\n", encoding="utf-8")
    result = run_cli("--config", str(cfg), "prune")
    assert result.returncode == 0, result.stderr
    assert f"{server.url('w.xml')}: removed 2 posts (2 older than 1 day)" in result.stdout.splitlines(), result.stdout


def test_the_newest_items_per_feed_of_every_category_are_never_pruned(store):
    a = src("a", "news", "solo", keep_per_source=1, protect=3)
    b = src("b", "news")
    store.sync_sources([a, b])
    store.record_success(a.key, NOW, 200)  # nothing stored yet; prune below does the work
    take(store, b, feed(5, host="b"))
    take(store, a, feed(6, start=2, host="a"))
    # a's posts are older than b's: in "news" only a 第2天 is among the newest 3 (it shares
    # b 第2天's time, and was stored later), but in "solo" (a alone) its newest 3 are, so
    # those 3 stay although keep_per_source is 1.
    assert titles(store, "solo") == ["a 第2天", "a 第3天", "a 第4天"]
    assert titles(store, "news")[:3] == ["b 第0天", "b 第1天", "a 第2天"]
    report = store.prune(a.key, a.retention, NOW)
    assert report.removed == 0 and report.protected == 2  # the 2 still beyond keep_per_source


def test_pruned_entries_do_not_come_back_while_still_in_the_feed(store):
    a = src("a", "news", keep_days=2, protect=1)
    store.sync_sources([a])
    take(store, a, feed(5))
    assert store.count_posts() == 2
    _, new, updated = take(store, a, feed(5), NOW + timedelta(hours=1))  # the same feed again
    assert (new, updated) == (0, 0) and store.count_posts() == 2
    take(store, a, feed(3), NOW + timedelta(hours=2))  # entries 3 and 4 leave the feed...
    remembered = {r[0] for r in store.db.execute("SELECT id FROM pruned")}
    assert len(remembered) == 1  # ...so only entry 2 is still remembered as pruned


def test_unlimited_by_default(store, tmp_path):
    a = src("a", "news")
    store.sync_sources([a])
    take(store, a, feed(30))
    assert not a.retention.limited and store.count_posts() == 30
    assert store.prune(a.key, a.retention, NOW).removed == 0


# --------------------------------------------------------------------------- config and command

CONFIG = """\
site:
  title: 保留
  url: https://news.example.com
  items_per_feed: 2
defaults:
  keep_days: 30
categories:
  - name: 新闻
    slug: news
    sources:
      - url: {a}
      - url: {b}
        keep_per_source: 3
        keep_days: 36500
"""


def test_retention_keys_load_and_validate(tmp_path: Path):
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG.format(a="https://a.example/f", b="https://b.example/f"), encoding="utf-8")
    s = load_config(path)
    assert s.source("https://a.example/f").retention == Retention(30, None, 2)
    assert s.source("https://b.example/f").retention == Retention(36500, 3, 2)
    for bad, where in (
        ("keep_days: 30", "6: defaults.keep_days"),
        ("keep_per_source: 3", "13: categories.0.sources.1"),
    ):
        path.write_text(
            CONFIG.format(a="https://a.example/f", b="https://b.example/f").replace(bad, bad.split(":")[0] + ": 0"),
            encoding="utf-8",
        )
        with pytest.raises(ConfigError) as info:
            load_config(path)
        said = ("should be above 0 days", "should be at least 1, not 0")  # in words, not pydantic's
        assert any(e.startswith(where) and any(w in e for w in said) for e in info.value.errors), info.value.errors


def test_prune_command_prints_what_it_removed(tmp_path: Path):
    www = tmp_path / "www"
    www.mkdir()
    old = datetime(2004, 1, 1, tzinfo=UTC)  # far beyond 30 days, whenever this runs
    for host in ("a", "b"):
        items = "".join(
            f"<item><guid>{host}{i}</guid><title>{host}-{i}</title><link>https://{host}.example/{i}</link>"
            f"<pubDate>{format_datetime(old - timedelta(days=i))}</pubDate></item>"
            for i in range(6)
        )
        (www / f"{host}.xml").write_text(f'<rss version="2.0"><channel><title>{host}</title>{items}</channel></rss>')
        os.utime(www / f"{host}.xml", (1_700_000_000, 1_700_000_000))
    server = StaticServer(www)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(a=server.url("a.xml"), b=server.url("b.xml")), encoding="utf-8")
    try:
        fetched = run_cli("--config", str(cfg), "fetch")
    finally:
        server.close()
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    # what the fetch pruned at once is said: "12 new posts" with a third of them kept read as lost
    kept = sqlite3.connect(tmp_path / "aggregator.db").execute("SELECT count(*) FROM posts").fetchone()[0]
    summary = fetched.stdout.splitlines()[-1]
    assert f"12 new posts ({12 - kept} posts pruned by keep_days/keep_per_source); " in summary, fetched.stdout
    lines = [line for line in fetched.stdout.splitlines() if "pruned by keep_days/keep_per_source)" in line]
    assert sum(int(line.split("; ")[1].split()[0]) for line in lines[:-1]) == 12 - kept > 0, fetched.stdout
    # The fetch already pruned each source after storing it (what was left depends on
    # which source came first); `prune` brings both to the config: a's posts are all
    # older than 30 days, b keeps its newest 3, and the category's newest 2 (a-0 and b-0,
    # both of 2004-01-01) are never pruned.
    result = run_cli("--config", str(cfg), "prune")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("removed ")
    con = sqlite3.connect(tmp_path / "aggregator.db")
    assert sorted(r[0] for r in con.execute("SELECT title FROM posts")) == ["a-0", "b-0", "b-1", "b-2"]

    cfg.write_text(cfg.read_text().replace("keep_per_source: 3", "keep_per_source: 1"), encoding="utf-8")
    result = run_cli("--config", str(cfg), "prune")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"{server.url('b.xml')}: removed 2 posts (2 beyond the newest 1)" in lines
    assert "  - b-1" in lines and "  - b-2" in lines
    assert lines[-1] == "removed 2 posts from 2 sources with limits; kept 1 as their category's newest"
    assert sorted(r[0] for r in con.execute("SELECT title FROM posts")) == ["a-0", "b-0"]


def test_prune_without_limits_says_so(tmp_path: Path):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site: {title: t, url: 'https://e.org/'}\ncategories: []\n", encoding="utf-8")
    result = run_cli("--config", str(cfg), "prune")
    assert result.returncode == 0
    assert "nothing to prune" in result.stdout


def test_prune_before_the_first_fetch_creates_no_database(tmp_path: Path):
    """A root cron job's nightly `prune` before the service's first start created the database,
    empty and root's own (0600), which the service then could not write to: nothing to prune."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: t, url: 'https://e.org/', database: data/news.db}\ndefaults: {keep_days: 30}\n"
        "categories:\n  - name: C\n    sources:\n      - url: http://127.0.0.1:9/feed\n",
        encoding="utf-8",
    )
    (tmp_path / "data").mkdir()
    result = run_cli("--config", str(cfg), "prune")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"nothing to prune: no database yet at {tmp_path / 'data' / 'news.db'} (nothing fetched)\n"
    assert list((tmp_path / "data").iterdir()) == []


# --------------------------------------------------------------------------- relaxed limits

RELAXED = """\
site:
  title: 放宽
  url: https://news.example.com
  items_per_feed: 1
categories:
  - name: 新闻
    slug: news
    sources:
      - url: {url}
{limits}"""


def _days_feed(www: Path) -> None:
    """6 entries dated 0, 10, ..., 50 days (and an hour) ago; a fixed mtime: 304s from then on."""
    now = datetime.now(UTC)
    items = "".join(
        f"<item><guid>g{d}</guid><title>{d} days</title><link>https://a.example/{d}</link>"
        f"<pubDate>{format_datetime(now - timedelta(days=d, hours=1))}</pubDate></item>"
        for d in range(0, 60, 10)
    )
    (www / "f.xml").write_text(f'<rss version="2.0"><channel><title>a</title>{items}</channel></rss>')
    os.utime(www / "f.xml", (1_700_000_000, 1_700_000_000))


def _fetch_with(cfg: Path, url: str, limits: str) -> str:
    cfg.write_text(RELAXED.format(url=url, limits="".join(f"        {x}\n" for x in limits.split(";") if x)))
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()[0]


def _stored(tmp_path: Path) -> tuple[list[str], int]:
    """The stored posts' titles, newest first, and how many pruned ids are remembered."""
    with sqlite3.connect(tmp_path / "aggregator.db") as con:
        titles = [r[0] for r in con.execute("SELECT title FROM posts ORDER BY published DESC")]
        return titles, con.execute("SELECT count(*) FROM pruned").fetchone()[0]


def test_posts_pruned_under_a_tighter_limit_come_back_when_it_is_relaxed(tmp_path: Path):
    """Pruned by `keep_days: 15`, 4 posts never came back after keep_days was raised or
    removed: the pruned ids stopped their entries for good, and the feed, unchanged (304),
    was not even read again. Tightened, the pruned ones stay pruned."""
    www = tmp_path / "www"
    www.mkdir()
    _days_feed(www)
    server = StaticServer(www)
    cfg, url = tmp_path / "feeds.yaml", server.url("f.xml")
    try:
        assert _fetch_with(cfg, url, "keep_days: 15").endswith(
            "(6 new, 0 updated of 6; 4 pruned by keep_days/keep_per_source)"
        )
        assert _fetch_with(cfg, url, "keep_days: 15").endswith("(not modified)")
        assert _stored(tmp_path) == (["0 days", "10 days"], 4)
        # raised: what 25 days keep comes back, the rest is pruned again
        assert _fetch_with(cfg, url, "keep_days: 25").endswith(
            "(4 new, 0 updated of 6; 3 pruned by keep_days/keep_per_source)"
        )
        assert _stored(tmp_path) == (["0 days", "10 days", "20 days"], 3)
        assert _fetch_with(cfg, url, "keep_days: 25").endswith("(not modified)")
        # tightened: `prune` prunes, and the fetch after it brings nothing back
        cfg.write_text(RELAXED.format(url=url, limits="        keep_days: 25\n        keep_per_source: 2\n"))
        assert run_cli("--config", str(cfg), "prune").returncode == 0
        assert _fetch_with(cfg, url, "keep_days: 25;keep_per_source: 2").endswith("(not modified)")
        assert _stored(tmp_path) == (["0 days", "10 days"], 4)
        # no limit at all: every entry comes back, and no pruned id is left
        assert _fetch_with(cfg, url, "").endswith("(4 new, 0 updated of 6)")
        assert _stored(tmp_path) == ([f"{d} days" for d in range(0, 60, 10)], 0)
        assert _fetch_with(cfg, url, "").endswith("(not modified)")
    finally:
        server.close()


def test_limits_removed_after_an_upgrade_bring_back_what_an_older_version_pruned(tmp_path: Path):
    """A database whose pruned ids an older version made (no retention recorded with them):
    only no limit at all is surely looser, and brings them back."""
    www = tmp_path / "www"
    www.mkdir()
    _days_feed(www)
    server = StaticServer(www)
    cfg, url = tmp_path / "feeds.yaml", server.url("f.xml")
    try:
        assert _fetch_with(cfg, url, "keep_days: 15").endswith("4 pruned by keep_days/keep_per_source)")
        with sqlite3.connect(tmp_path / "aggregator.db") as con:
            con.execute("UPDATE sources SET retention = NULL")  # as an older version left it
        assert _fetch_with(cfg, url, "keep_days: 25").endswith("(not modified)")  # unknown: kept pruned
        assert _stored(tmp_path) == (["0 days", "10 days"], 4)
        with sqlite3.connect(tmp_path / "aggregator.db") as con:
            con.execute("UPDATE sources SET retention = NULL")
        assert _fetch_with(cfg, url, "").endswith("(4 new, 0 updated of 6)")
        assert _stored(tmp_path) == ([f"{d} days" for d in range(0, 60, 10)], 0)
    finally:
        server.close()


def test_a_running_daemon_prunes_a_quiet_sources_old_posts_without_waiting_for_new_ones(tmp_path: Path):
    """keep_days was applied only after a poll that brought posts: a source gone quiet (or dead)
    kept its posts past keep_days for good, in the database and in its category's feeds."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "a.xml").write_bytes(feed(5))
    server = StaticServer(tmp_path / "www")
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "site:\n  title: t\n  url: https://news.example.com\n  items_per_feed: 1\n"
        f"categories:\n  - name: News\n    slug: news\n    sources:\n      - url: {server.url('a.xml')}\n"
        "        keep_days: 3\n        interval: 1h\n",
        encoding="utf-8",
    )
    settings = load_config(path)
    now = [NOW]
    with Store(settings.database) as store:
        daemon = Daemon(
            settings, store, tick=0.05, max_sleep=0.2, watch_interval=0.1, publish_delay=0.05,
            retain_every=0.2, clock=lambda: now[0],
        )  # fmt: skip
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            pages = settings.output_dir / "posts"
            deadline = time.monotonic() + 15
            while store.count_posts() != 3 and time.monotonic() < deadline:  # 3 and 4 days old: pruned at once
                time.sleep(0.05)
            assert store.count_posts() == 3
            while len(list(pages.rglob("*.html"))) != 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(list(pages.rglob("*.html"))) == 3
            now[0] = NOW + timedelta(days=2)  # two quiet days: only the newest (2 days old) is within 3
            while store.count_posts() != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.count_posts() == 1
            while len(list(pages.rglob("*.html"))) != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            (page,) = pages.rglob("*.html")  # the pruned posts' pages are taken down
            assert "a 第0天" in page.read_text(encoding="utf-8")
            assert daemon.metrics.fetches.labels("new")._value.get() == 1  # one poll, no new posts since
        finally:
            daemon.request_stop()
            thread.join(15)
            server.close()
        assert not thread.is_alive()


def test_a_source_whose_prune_fails_does_not_keep_the_others_pruned_posts_online(tmp_path: Path):
    """The daemon's hourly round stopped at the first source whose prune failed (a full disk,
    a damaged page) and dropped the publish of what it had pruned before: those posts' pages
    and feed entries stayed online for good, since a quiet source's next round has nothing
    left to prune. The database refuses b's deletes here for real, with a trigger."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "a.xml").write_bytes(feed(5))
    (tmp_path / "www" / "b.xml").write_bytes(feed(2, start=1, host="b"))  # 1 and 2 days old: kept at first
    server = StaticServer(tmp_path / "www")
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "site:\n  title: t\n  url: https://news.example.com\n  items_per_feed: 1\n"
        "categories:\n  - name: News\n    slug: news\n    sources:\n"
        f"      - url: {server.url('a.xml')}\n        keep_days: 3\n        interval: 1h\n"
        f"      - url: {server.url('b.xml')}\n        keep_days: 3\n        interval: 1h\n",
        encoding="utf-8",
    )
    settings = load_config(path)
    a, b = (s.key for s in settings.sources)
    now = [NOW]
    with Store(settings.database) as store:
        with sqlite3.connect(settings.database) as con:
            con.execute(
                f"CREATE TRIGGER refuse BEFORE DELETE ON posts WHEN old.source = '{b}' "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        con.close()
        daemon = Daemon(
            settings, store, tick=0.05, max_sleep=0.2, watch_interval=0.1, publish_delay=0.05,
            retain_every=0.2, clock=lambda: now[0],
        )  # fmt: skip
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            pages = settings.output_dir / "posts"
            deadline = time.monotonic() + 15
            while (store.count_posts(a), store.count_posts(b)) != (3, 2) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (store.count_posts(a), store.count_posts(b)) == (3, 2)
            while len(list(pages.rglob("*.html"))) != 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(list(pages.rglob("*.html"))) == 5
            while not daemon.publisher.idle and time.monotonic() < deadline:  # the start's publishes are done
                time.sleep(0.05)
            time.sleep(0.3)
            assert daemon.publisher.idle
            now[0] = NOW + timedelta(days=2)  # a keeps its newest; b's two are past keep_days, and refused
            while store.count_posts(a) != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (store.count_posts(a), store.count_posts(b)) == (1, 2)
            while len(list(pages.rglob("*.html"))) != 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            shown = sorted(p.read_text(encoding="utf-8").count("a 第") > 0 for p in pages.rglob("*.html"))
            assert len(shown) == 3 and sum(shown) == 1, "a's pruned posts are still published"
        finally:
            daemon.request_stop()
            thread.join(15)
            server.close()
        assert not thread.is_alive()


SCANS_OF_POSTS = (["SCAN", "posts"], ["SCAN", "p"], ["SCAN", "o"])


def test_prune_finds_the_copies_of_what_it_deletes_by_index_not_by_reading_every_post(store):
    """Prune looked for the copies of the posts it deletes (to show one in their place) with
    `duplicate_of IN (...)`, which no index served: a read of the whole posts table for each
    source with something to prune (`aggregator prune` over 1,000 sources and 24,000 posts:
    27 s). Each lookup is one search of the copies' index now."""
    a = src("a", "news")
    b = src("b", "mirror")
    store.sync_sources([a, b])
    take(store, a, feed(3))
    copies = feed(3).replace(b"<guid>a", b"<guid>b").replace(b"<title>a ", b"<title>b ")
    take(store, b, copies, NOW + timedelta(minutes=5))  # the same articles (links), seen later
    assert len(store.db.execute("SELECT 1 FROM posts WHERE duplicate_of IS NOT NULL").fetchall()) == 3
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        report = store.prune(a.key, Retention(keep_per_source=1, protect=0), NOW)
    finally:
        store.db.conn.set_trace_callback(None)
    assert report.removed == 2
    # the copies of the two deleted posts are shown in their place
    assert store.db.execute("SELECT count(*) FROM posts WHERE duplicate_of IS NULL").fetchone()[0] == 3
    plans = {
        sql: [step for *_, step in store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]
        for sql in statements
        if sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE")
    }
    lookups = [plan for sql, plan in plans.items() if "duplicate_of IN" in sql]
    assert lookups and all(any("idx_posts_copies" in step for step in plan) for plan in lookups)
    scans = [(sql, step) for sql, plan in plans.items() for step in plan if step.split()[:2] in SCANS_OF_POSTS]
    assert scans == []


def _big_feed(n: int) -> bytes:
    """n entries of about 8 KB of text each, a day apart."""
    items = "".join(
        f"<item><guid>big{i}</guid><title>长文 {i}</title><link>https://big.example/{i}</link>"
        f"<description>{f'第{i}篇的正文，' * 800}</description>"
        f"<pubDate>{format_datetime(NOW - timedelta(days=i, hours=1))}</pubDate></item>"
        for i in range(n)
    )
    return f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'.encode()


def _big_store(tmp_path: Path, older: bool = False) -> Path:
    """A config keeping 5 posts of a source whose database holds 400 (7 MB)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: t, url: 'https://e.org/', items_per_feed: 5}\ndefaults: {keep_per_source: 5}\n"
        "categories:\n  - name: C\n    sources:\n      - url: http://big.example/feed.xml\n",
        encoding="utf-8",
    )
    path = tmp_path / "aggregator.db"
    s = src("big", "C")
    with Store(path) as store:
        if older:  # as a version before auto_vacuum made it: nothing freed is ever given back
            store.db.execute("PRAGMA auto_vacuum = NONE")
            store.db.execute("VACUUM")
        store.sync_sources([s])
        ingest(s, store, parse_feed(s.key, _big_feed(400), s.url), NOW)
    return cfg


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_prune_gives_the_space_of_pruned_posts_back_to_the_disk(tmp_path: Path):
    """The database never shrank: with 395 of its 400 posts pruned, the 7 MB file stayed
    7 MB (SQLite keeps freed pages for reuse). A new database gives them back after a
    prune that freed many (auto_vacuum incremental)."""
    cfg = _big_store(tmp_path)
    db = tmp_path / "aggregator.db"
    before = _size(db)
    assert before > 5_000_000
    result = run_cli("--config", str(cfg), "prune")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "removed 395 posts from 1 source with limits"
    assert _size(db) < before / 5
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM posts").fetchone()[0] == 5
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_prune_vacuum_shrinks_an_older_database_and_turns_it_incremental(tmp_path: Path):
    """A database made before auto_vacuum keeps its size after a prune; `prune --vacuum`
    rewrites it, smaller, and from then on it gives freed pages back as a new one does."""
    cfg = _big_store(tmp_path, older=True)
    db = tmp_path / "aggregator.db"
    before = _size(db)
    assert run_cli("--config", str(cfg), "prune").returncode == 0
    assert _size(db) >= before  # an older file: the freed pages stay in it
    result = run_cli("--config", str(cfg), "prune", "--vacuum")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2] == "removed 0 posts from 1 source with limits"
    assert lines[-1].startswith(f"vacuumed {db}: ") and lines[-1].endswith(" MB")
    assert _size(db) < before / 5
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM posts").fetchone()[0] == 5


def test_prune_vacuum_rewrites_the_database_when_no_source_has_limits_any_longer(tmp_path: Path):
    """A user who pruned with limits, then removed them, ran `prune --vacuum` to get the space
    back: it said "nothing to prune" and stopped before the rewrite its help promises."""
    cfg = _big_store(tmp_path, older=True)
    db = tmp_path / "aggregator.db"
    before = _size(db)
    assert run_cli("--config", str(cfg), "prune").returncode == 0  # 395 pruned: their pages stay in the file
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("defaults: {keep_per_source: 5}\n", ""), encoding="utf-8")
    result = run_cli("--config", str(cfg), "prune", "--vacuum")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "nothing to prune: no source sets keep_days or keep_per_source"
    assert lines[-1].startswith(f"vacuumed {db}: ") and lines[-1].endswith(" MB")
    assert _size(db) < before / 5
    plain = run_cli("--config", str(cfg), "prune")  # without --vacuum: as before, nothing more
    assert plain.stdout.splitlines() == ["nothing to prune: no source sets keep_days or keep_per_source"]
