"""A source whose URL is edited in feeds.yaml keeps its posts and their ids, as the real
`aggregator fetch` runs it: the learnt redirect written into the config, http→https, and
an edit that names another feed (which still starts afresh, as before)."""

from __future__ import annotations

import http.server
import json
import socket
import sqlite3
import ssl
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from pytest_httpserver import HTTPServer

from aggregator.identity import LINK, post_id, same_feed_url
from aggregator.models import PollUpdate, Post, Source
from aggregator.parse import parse_feed
from aggregator.pipeline import ingest
from aggregator.publish import OWNER_FILE
from aggregator.store import Store, StoreError

from .conftest import run_cli
from .daemon_support import FEEDS, Daemon, FeedServer, fetched
from .daemon_support import write_config as write_daemon_config
from .pollrig import rss

FEED = rss(title="Moving feed", items=3, dated=datetime(2024, 5, 1, 12, tzinfo=UTC))


def write_config(folder: Path, *urls: str) -> Path:
    cfg = folder / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: Moves\n  url: https://example.org/\njekyll:\n  dir: jekyll\n"
        "categories:\n  - name: News\n    sources:\n" + "".join(f"      - url: {u}\n" for u in urls),
        encoding="utf-8",
    )
    return cfg


def fetch(cfg: Path, expect: int = 0) -> str:
    """`aggregator -v fetch`; its stderr (the log)."""
    result = run_cli("--config", str(cfg), "-v", "fetch")
    assert result.returncode == expect, result.stdout + result.stderr
    return result.stderr


def posts(folder: Path) -> dict[str, tuple[str, str]]:
    """Post id → (source, guid), read straight from the database."""
    with sqlite3.connect(folder / "aggregator.db") as db:
        return {pid: (src, guid) for pid, src, guid in db.execute("SELECT id, source, guid FROM posts")}


def source_keys(folder: Path) -> list[str]:
    with sqlite3.connect(folder / "aggregator.db") as db:
        return [k for (k,) in db.execute("SELECT key FROM sources ORDER BY key")]


def outputs(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every published file (site and Jekyll): relative path → (bytes, mtime in ns); not the
    folder's `.aggregator-owner`, which counts the publishes that changed it."""
    out = {}
    for root in (folder / "public", folder / "jekyll"):
        for path in root.rglob("*"):
            if path.is_file() and path.name != OWNER_FILE:
                out[str(path.relative_to(folder))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


def assert_published_the_same(
    before: dict[str, tuple[bytes, int]], after: dict[str, tuple[bytes, int]], old: str, new: str
):
    """Same files; a post's page or Jekyll file untouched unless it shows the source URL,
    and any file that changed differs only by that URL."""
    assert sorted(after) == sorted(before)
    assert any("/posts/" in p for p in before) and any("_posts/" in p for p in before)
    for path, (data, mtime) in before.items():
        now, now_mtime = after[path]
        if now != data:
            assert old.encode() in data and data.replace(old.encode(), new.encode()) == now, path
        elif "posts/" in path:
            assert now_mtime == mtime, f"{path} rewritten with the same bytes"


def status(cfg: Path) -> dict[str, dict]:
    result = run_cli("--config", str(cfg), "status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["url"]: row for row in json.loads(result.stdout)}


def test_config_edited_to_the_learnt_redirect_keeps_every_post_and_page(tmp_path, httpserver: HTTPServer, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    httpserver.expect_request("/old.xml").respond_with_data("", status=301, headers={"Location": "/new.xml"})
    httpserver.expect_request("/new.xml").respond_with_data(FEED, content_type="application/rss+xml")
    old, new = httpserver.url_for("/old.xml"), httpserver.url_for("/new.xml")
    cfg = write_config(tmp_path, old)
    for _ in range(3):
        fetch(cfg)
    table = run_cli("--config", str(cfg), "status").stdout
    assert f"→ polls {new} (learnt from permanent redirects)" in table  # what invites the edit
    ids, before = posts(tmp_path), outputs(tmp_path)
    assert len(ids) == 3 and {src for src, _ in ids.values()} == {old}

    cfg.write_text(cfg.read_text().replace(old, new))
    log = fetch(cfg)

    assert f"source {new}: takes over {old}" in log
    assert sorted(posts(tmp_path)) == sorted(ids)  # the same ids: nothing comes again as new
    assert {src for src, _ in posts(tmp_path).values()} == {new}
    assert source_keys(tmp_path) == [new]  # the old row is gone
    assert_published_the_same(before, outputs(tmp_path), old, new)
    row = status(cfg)[new]
    assert (row["posts"], row["fetch_url"], row["learnt_url"], row["state"]) == (3, new, None, "ok")
    assert "→ polls" not in run_cli("--config", str(cfg), "status").stdout
    before = outputs(tmp_path)
    fetch(cfg)  # and from now on it is an ordinary source
    assert sorted(posts(tmp_path)) == sorted(ids) and outputs(tmp_path) == before


class _Feed(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def log_message(self, *args: object) -> None:
        pass


class _Switchable(http.server.ThreadingHTTPServer):
    """Plain HTTP until `tls` is set, then TLS on the same listening socket (never closed and
    bound again, so no other process can take the port in between)."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self.tls is not None:  # a failed handshake raises an OSError, which serve_forever drops
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, addr


class MovingServer:
    """The feed over http on a port, then (`to_https`) over https on the same port, as a
    site that moved to https serves it; its CA is trusted through REQUESTS_CA_BUNDLE."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        self.server = _Switchable(("127.0.0.1", 0), _Feed)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to_https(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server.tls = context

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def moving_server(tmp_path, monkeypatch) -> Iterator[MovingServer]:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("NO_PROXY", "*")
    server = MovingServer(ca)
    yield server
    server.close()


def test_config_edited_from_http_to_https_keeps_every_post(tmp_path, moving_server: MovingServer):
    old = f"http://127.0.0.1:{moving_server.port}/feed.xml"
    new = f"https://127.0.0.1:{moving_server.port}/feed.xml"
    cfg = write_config(tmp_path, old)
    fetch(cfg)
    ids, before = posts(tmp_path), outputs(tmp_path)
    assert len(ids) == 3

    moving_server.to_https()
    cfg.write_text(cfg.read_text().replace(old, new))
    log = fetch(cfg)

    assert f"source {new}: takes over {old}" in log
    assert sorted(posts(tmp_path)) == sorted(ids)
    assert source_keys(tmp_path) == [new]
    assert_published_the_same(before, outputs(tmp_path), old, new)
    row = status(cfg)[new]
    assert (row["posts"], row["fetch_url"], row["state"], row["last_error"]) == (3, new, "ok", None)


def test_config_edited_to_another_feed_starts_afresh_as_before(tmp_path, httpserver: HTTPServer):
    httpserver.expect_request("/a.xml").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/b.xml").respond_with_data(FEED, content_type="application/rss+xml")
    a, b = httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")
    cfg = write_config(tmp_path, a)
    fetch(cfg)
    ids_a = set(posts(tmp_path))
    cfg.write_text(cfg.read_text().replace(a, b))
    log = fetch(cfg)
    assert "takes over" not in log
    stored = posts(tmp_path)
    assert {pid for pid, (src, _) in stored.items() if src == a} == ids_a  # kept in the database
    ids_b = {pid for pid, (src, _) in stored.items() if src == b}
    assert len(ids_b) == 3 and not ids_b & ids_a  # b's own ids: another feed, not a move
    assert source_keys(tmp_path) == sorted([a, b])
    pages = [p for p in outputs(tmp_path) if p.startswith("public/posts/")]
    assert len(pages) == 3 and all(Path(p).stem in ids_b for p in pages)  # a's pages taken down


# -- the rules, on a real store -----------------------------------------------------------------

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def src(url: str) -> Source:
    return Source(key=url, url=url, categories=("news",))


def take(store: Store, source: Source, body: bytes = FEED) -> list[Post]:
    posts, _, _ = ingest(source, store, parse_feed(source.key, body, source.url), T0)
    return posts


def by_source(store: Store) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pid, source in store.db.execute("SELECT id, source FROM posts").fetchall():
        out.setdefault(source, set()).add(pid)
    return out


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://e.org/feed", "https://e.org/feed", True),
        ("https://e.org/feed/", "https://e.org/feed", True),
        ("http://E.org", "https://e.org/", True),
        ("http://e.org/feed", "http://e.org/feed.xml", False),
        ("http://e.org/feed", "http://www.e.org/feed", False),
        ("http://e.org/feed", "http://e.org:8080/feed", False),
        ("http://e.org/feed?a=1", "http://e.org/feed?a=2", False),
        ("ftp://e.org/feed", "http://e.org/feed", False),
    ],
)
def test_same_feed_url_is_only_http_https_and_a_trailing_slash(a, b, same):
    assert same_feed_url(a, b) is same and same_feed_url(b, a) is same


def test_several_urls_edited_at_once_are_each_taken_over_and_keep_their_ids(store):
    a, b = src("http://a.example/feed"), src("https://b.example/news/")
    store.sync_sources([a, b])
    ids = {a.key: {p.id for p in take(store, a)}, b.key: {p.id for p in take(store, b)}}
    a2, b2 = src("https://a.example/feed"), src("https://b.example/news")
    assert store.sync_sources([a2, b2]) == {a.key: a2.key, b.key: b2.key}
    assert by_source(store) == {a2.key: ids[a.key], b2.key: ids[b.key]}
    assert [st.key for st in store.source_states(active_only=False)] == [a2.key, b2.key]
    assert store.source_state(a2.key).id_key == a.key
    more = rss(title="Moving feed", items=4, dated=datetime(2024, 5, 1, 12, tzinfo=UTC))
    posts = take(store, a2, more)  # the same entries and one new: ids from the key it took over
    assert {p.id for p in posts} - ids[a.key] == {post_id(a.key, "urn:item:3")}
    assert store.count_posts(a2.key) == 4


def _calls_to_move_all(folder: Path, n: int) -> int:
    """Python calls made by the sync that takes n sources over from http to https at once."""
    with Store(folder / f"moves-{n}.db") as store:
        store.sync_sources([src(f"http://h{i}.example/feed") for i in range(n)])
        edited = [src(f"https://h{i}.example/feed") for i in range(n)]
        calls = 0

        def count(frame: object, event: str, arg: object) -> None:
            nonlocal calls
            calls += event in ("call", "c_call")

        sys.setprofile(count)
        try:
            moved = store.sync_sources(edited)
        finally:
            sys.setprofile(None)
    assert len(moved) == n  # each one taken over by its https URL
    return calls


def test_urls_edited_at_once_are_matched_in_time_linear_in_their_number(tmp_path):
    """Every removed source was compared with every added one: a newsroom moving its 10,000
    sources to https in one edit had its next command (or the daemon's reload) spend 10^8
    URL comparisons, about half an hour, before doing anything. Eight times the sources
    must cost about eight times the work (64 times: pair by pair)."""
    small, large = _calls_to_move_all(tmp_path, 50), _calls_to_move_all(tmp_path, 400)
    assert large < 16 * small, (small, large)


def test_an_ambiguous_or_stale_match_is_left_as_before(store):
    slash, bare = src("http://a.example/feed/"), src("http://a.example/feed")
    store.sync_sources([slash, bare])
    take(store, slash), take(store, bare)
    # two removed sources match the one added: neither is taken over
    assert store.sync_sources([src("https://a.example/feed")]) == {}
    assert set(by_source(store)) == {slash.key, bare.key}
    # one removed source, two added that match it
    other = src("http://c.example/feed")
    store.sync_sources([other])
    take(store, other)
    assert store.sync_sources([src("https://c.example/feed"), src("https://c.example/feed/")]) == {}
    # a source removed earlier (not listed at the last sync) is not taken over either
    store.sync_sources([src("https://d.example/feed")])
    assert store.sync_sources([src("http://c.example/feed/")]) == {}
    assert store.source_state("http://c.example/feed").posts == 3


def test_a_source_polled_elsewhere_keeps_polling_there_when_only_its_url_is_retyped(store):
    old, learnt = src("http://a.example/feed"), "https://feeds.a.example/rss"
    store.sync_sources([old])
    take(store, old)
    store.record_success(old.key, T0, 200, poll=PollUpdate(fetch_url=learnt, learnt_url=learnt), etag='"e1"')
    new = src("https://a.example/feed")
    assert store.sync_sources([new]) == {old.key: new.key}
    st = store.source_state(new.key)
    assert (st.url, st.learnt_url, st.etag, st.posts) == (learnt, learnt, '"e1"', 3)


def test_a_gone_source_whose_url_is_edited_is_polled_again(store):
    old = src("http://a.example/feed")
    store.sync_sources([old])
    take(store, old)
    store.record_gone(old.key, T0, "HTTP 410 GONE")
    new = src("https://a.example/feed")
    store.sync_sources([new])
    st = store.source_state(new.key)
    assert (st.state, st.error_count, st.next_poll, st.last_error, st.posts) == ("new", 0, None, None, 3)


def test_a_link_identity_source_keeps_its_ids_when_taken_over(store):
    old = src("http://a.example/feed")
    store.sync_sources([old])
    store.record_success(old.key, T0, 200, identity=(LINK, "its guids change"))
    item = "<item><guid>{g}</guid><title>T</title><link>https://a.example/1</link><description>x</description></item>"
    body = '<rss version="2.0"><channel><title>t</title>{}</channel></rss>'
    first = take(store, old, body.format(item.format(g="g1")).encode())
    assert first[0].id == post_id(old.key, "https://a.example/1")
    new = src("https://a.example/feed")
    store.sync_sources([new])
    again = take(store, new, body.format(item.format(g="g2")).encode())  # a new guid, the same link
    assert [p.id for p in again] == [first[0].id] and store.count_posts() == 1


def test_an_old_database_gets_each_source_its_own_key_as_id_key(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        store.sync_sources([src("http://a.example/feed")])
        take(store, src("http://a.example/feed"))
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE sources DROP COLUMN id_key")
    with Store(path) as store:
        assert store.source_state("http://a.example/feed").id_key == "http://a.example/feed"
        assert store.sync_sources([src("https://a.example/feed")]) == {
            "http://a.example/feed": "https://a.example/feed"
        }
        assert {p.id for p in take(store, src("https://a.example/feed"))} == by_source(store)["https://a.example/feed"]


def test_a_poll_of_the_old_url_finishing_after_the_take_over_stores_nothing(store):
    old, new = src("http://a.example/feed"), src("https://a.example/feed")
    store.sync_sources([old])
    take(store, old)
    store.sync_sources([new])  # a daemon's reload, while a poll of the old URL ran
    more = rss(title="Moving feed", items=4, dated=datetime(2024, 5, 1, 12, tzinfo=UTC))
    with pytest.raises(StoreError, match="no longer in the database"):
        take(store, old, more)
    assert by_source(store) == {new.key: {post_id(old.key, f"urn:item:{i}") for i in range(3)}}


def test_the_daemon_takes_over_a_source_whose_url_is_edited_on_reload(tmp_path):
    feeds = FeedServer()
    a, a_slash = feeds.feed("/a", FEEDS[0]), feeds.feed("/a/", FEEDS[0])
    cfg = write_daemon_config(tmp_path / "feeds.yaml", [{"url": a, "interval": "1h"}])
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(a, "new"))
        ids = posts(tmp_path)
        write_daemon_config(cfg, [{"url": a_slash, "interval": "2h"}])
        applied = daemon.wait_for(lambda r: r["message"].startswith("config reloaded"))[0]
        assert applied["added"] == [a_slash] and applied["removed"] == [a] and applied["retimed"] == [a_slash]
        took = daemon.messages(f"^source {a_slash}: takes over {a}, the same URL")
        assert [r.get("source") for r in took] == [a_slash], daemon.log  # JSON names it, as every source line
        assert not daemon.messages("removed from the config")
        daemon.wait_for(fetched(a_slash, "unchanged"))  # its URL changed: polled at once, nothing new
        assert sorted(posts(tmp_path)) == sorted(ids) and source_keys(tmp_path) == [a_slash]
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
        feeds.close()


def test_the_edit_reverted_takes_the_posts_back(store):
    old, new = src("http://a.example/old"), src("http://a.example/new")
    store.sync_sources([old])
    ids = {p.id for p in take(store, old)}
    store.record_success(old.key, T0, 200, poll=PollUpdate(fetch_url=new.key, learnt_url=new.key))
    assert store.sync_sources([new]) == {old.key: new.key}
    assert store.sync_sources([old]) == {new.key: old.key}  # the URL its ids come from
    assert by_source(store) == {old.key: ids} and store.source_state(old.key).id_key == old.key
    assert store.source_state(old.key).url == old.key  # polled at the URL configured again
    # a removed source that took another over is taken back even when it was left unlisted
    store.record_success(old.key, T0, 200, poll=PollUpdate(fetch_url=new.key, learnt_url=new.key))
    assert store.sync_sources([new]) == {old.key: new.key}
    store.sync_sources([src("http://b.example/feed")])
    assert store.sync_sources([old]) == {new.key: old.key}
    assert by_source(store) == {old.key: ids}


def test_the_old_url_listed_again_beside_the_one_that_took_it_over_gets_ids_of_its_own(store):
    old, new = src("http://a.example/feed"), src("https://a.example/feed")
    store.sync_sources([old])
    ids = {p.id for p in take(store, old)}
    store.sync_sources([new])
    store.sync_sources([new, old])  # both listed: nothing to take over, two sources
    assert store.source_state(old.key).id_key != store.source_state(new.key).id_key == old.key
    again = {p.id for p in take(store, old)}
    assert not again & ids and by_source(store) == {new.key: ids, old.key: again}
