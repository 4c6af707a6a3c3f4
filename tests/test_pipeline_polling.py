"""Polling against a misbehaving local server: every case asserted on what the store keeps
and on what `aggregator status` (JSON and table) shows for it."""

from __future__ import annotations

import gzip
import http.server
import json
import logging
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.fetch import _brotli
from aggregator.models import NORMALIZER_VERSION
from aggregator.store import Store

from .conftest import run_cli
from .pollrig import Rig, TrickleServer, rss

FEED = rss(items=2)


@pytest.fixture
def rigs():
    made: list[Rig] = []

    def make(*args, **kwargs) -> Rig:
        rig = Rig(*args, **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def sequence(*responses: Response):
    """A handler answering with `responses` in turn, then repeating the last."""
    calls = {"n": 0}

    def handler(request: Request) -> Response:
        i = min(calls["n"], len(responses) - 1)
        calls["n"] += 1
        return responses[i]

    return handler


def requested(server: HTTPServer, path: str) -> int:
    return sum(1 for req, _ in server.log if req.path == path)


# -- conditional GET and unchanged bodies ------------------------------------------------


def _etag_feed(httpserver: HTTPServer, asked: list[str | None] | None = None) -> str:
    """FEED at /feed with ETag "v1", 304 to an If-None-Match of it; `asked` collects what each
    request sent. Its URL."""

    def handler(request: Request) -> Response:
        if asked is not None:
            asked.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(FEED, content_type="application/rss+xml", headers={"ETag": '"v1"'})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    return httpserver.url_for("/feed")


def test_304_not_modified(tmp_path, rigs, httpserver: HTTPServer):
    url = _etag_feed(httpserver)
    rig = rigs(tmp_path, [f"url: {url}"])
    assert rig.poll(url).new == 2
    rig.clock.advance(1800)
    out = rig.poll(url)
    assert (out.status, out.note) == ("unchanged", "not modified")
    st = rig.state(url)
    assert st.last_status == 304 and st.etag == '"v1"' and st.last_result == "not modified (304)" and st.posts == 2
    row = rig.status()[url]
    assert row["state"] == "ok" and row["last_status"] == 304 and row["last_result"] == "not modified (304)"
    assert row["last_success"] and row["next_poll"] and row["errors"] == 0
    assert "not modified (304)" in rig.table()


def test_a_feed_this_version_has_not_parsed_is_read_in_full_once(tmp_path, rigs, httpserver: HTTPServer):
    """After an upgrade that reads feeds otherwise, a feed answering 304 (or the same body) was
    never parsed again, its posts kept the older reading for good. A source whose feed an older
    version parsed last (here, as one still running beside the upgrade leaves it: its own ETag
    and body hash, no `read_by`) is fetched without validators and parsed, once."""
    asked: list[str | None] = []
    url = _etag_feed(httpserver, asked)
    rig = rigs(tmp_path, [f"url: {url}"])
    assert rig.poll(url).new == 2 and rig.state(url).read_by == NORMALIZER_VERSION
    with rig.store.db.conn:
        rig.store.db.execute("UPDATE sources SET read_by = NULL")  # as the older version left it
        rig.store.db.execute(
            "UPDATE posts SET title = 'as read before', content_hash = 'older', normalized = ?",
            [NORMALIZER_VERSION - 1],
        )
    rig.clock.advance(1800)
    out = rig.poll(url)
    assert asked[-1] is None and out.status == "updated" and out.updated == 2
    assert rig.state(url).read_by == NORMALIZER_VERSION
    rig.clock.advance(1800)
    assert rig.poll(url).note == "not modified" and asked[-1] == '"v1"'  # conditional again from then on


def test_validators_folded_over_lines_are_sent_back_unfolded(tmp_path, rigs):
    """An ETag and Last-Modified folded over two lines (obs-fold, which http.client keeps as
    CR LF + space) were stored as given and sent back: our own header check refused them
    before any request left, on every poll, for good."""
    seen: list[tuple[str | None, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append((self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")))
            if self.headers.get("If-None-Match") == '"abc def"':
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", '"abc\r\n def"')  # send_header writes it as it is: a fold
            self.send_header("Last-Modified", "Wed, 09 Feb 2022\r\n\t10:00:00 GMT")
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/feed"
        rig = rigs(tmp_path, [f"url: {url}"])
        assert rig.poll(url).new == 2
        assert rig.state(url).etag == '"abc def"'
        rig.clock.advance(1800)
        out = rig.poll(url)
        assert (out.status, out.note) == ("unchanged", "not modified"), out
        assert seen[-1] == ('"abc def"', "Wed, 09 Feb 2022 10:00:00 GMT")
    finally:
        server.shutdown()
        server.server_close()


def test_status_says_1_entry_not_1_entries(tmp_path, rigs, httpserver: HTTPServer):
    """A feed of one entry: `status` read "1 entries" under its last success."""
    httpserver.expect_request("/feed").respond_with_data(rss(items=1), content_type="application/rss+xml")
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}"])
    assert rig.poll(url).entries == 1
    assert rig.state(url).last_result == "1 entry"
    assert rig.status()[url]["last_result"] == "1 entry"
    assert "1 entry" in rig.table() and "1 entries" not in rig.table()


def test_same_body_200_is_recognised_and_not_parsed(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/feed").respond_with_data(FEED, content_type="application/rss+xml")
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}"])
    first = rig.poll(url)
    assert first.entries == 2 and rig.state(url).last_result == "2 entries"
    second = rig.poll(url)
    assert (second.status, second.note, second.entries) == ("unchanged", "same body", 0)  # 0: never parsed
    st = rig.state(url)
    assert st.last_status == 200 and st.last_result == "same body as last time (not parsed)"
    row = rig.status()[url]
    assert row["state"] == "ok" and row["last_result"] == "same body as last time (not parsed)"
    assert "same body as last time" in rig.table()


# -- rate limits -----------------------------------------------------------------------


def test_an_ipv6_hosts_rate_limit_names_it_in_brackets(tmp_path, rigs):
    """`::1:8080` reads as an address ending in 8080, not as a host and its port."""
    server = HTTPServer(host="::1", port=0)
    server.start()
    try:
        server.expect_request("/a").respond_with_data("slow down", status=429, headers={"Retry-After": "600"})
        url = server.url_for("/a")
        assert url.startswith("http://[::1]:")
        rig = rigs(tmp_path, [f"url: {url}"])
        out = rig.poll(url)
        assert out.status == "rate-limited"
        assert f"no request to [::1]:{server.port} before" in out.error
        assert rig.store.host_retry_after(f"[::1]:{server.port}") is not None
        assert f"[::1]:{server.port}" in rig.table()
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_holds_back_the_whole_host(tmp_path, rigs, httpserver: HTTPServer, form):
    a, b = httpserver.url_for("/a"), httpserver.url_for("/b")
    rig = rigs(tmp_path, [f"url: {a}", f"url: {b}"])
    until = rig.clock.now + timedelta(seconds=600)
    value = "600" if form == "seconds" else format_datetime(until, usegmt=True)
    httpserver.expect_request("/a").respond_with_data("slow down", status=429, headers={"Retry-After": value})
    httpserver.expect_request("/b").respond_with_data(FEED, content_type="application/rss+xml")

    out = rig.poll(a)
    assert out.status == "rate-limited" and "HTTP 429" in out.error
    st = rig.state(a)
    assert st.error_count == 0, "a rate limit is not a feed error"
    assert rig.store.host_retry_after(f"localhost:{httpserver.port}") == until
    assert st.next_poll >= until and st.state == "rate-limited"
    # the other source on that host is not polled either, until the host's time is up
    skipped = rig.poll(b)
    assert skipped.status == "skipped" and "rate-limited" in skipped.note
    assert requested(httpserver, "/b") == 0
    assert rig.store.due_sources(rig.clock.now) == []
    # b comes back once the host's time is up, a moment after (as a does, see below)
    held = rig.state(b).next_poll
    assert until <= held <= until + timedelta(seconds=60)
    assert rig.store.due_sources(held - timedelta(seconds=0.001)) == []
    assert rig.store.due_sources(held) == [b]  # a waits for its own next poll too
    assert a in rig.store.due_sources(st.next_poll)

    rows = rig.status()
    assert rows[a]["state"] == "rate-limited" and rows[b]["state"] == "rate-limited"
    assert rows[a]["rate_limited_until"] == until.isoformat() and rows[a]["errors"] == 0
    assert "HTTP 429" in rows[a]["last_error"] and rows[a]["last_error_at"]
    assert rows[b]["next_poll"] == held.isoformat()  # never fetched, but not before the host allows
    table = rig.table()
    assert table.count("rate-limited") >= 2 and "HTTP 429" in table

    # the limit survives a restart: it lives in the database
    rig.store.close()
    rig.store = Store(rig.settings.database)
    assert rig.store.host_retry_after(f"localhost:{httpserver.port}") == until
    rig.clock.now = held
    assert rig.poll(b).status == "new"


def test_the_sources_a_retry_after_held_back_come_back_spread_not_in_one_second(tmp_path, rigs, httpserver):
    """Held back together, a host's sources all came due at the second its Retry-After ended:
    a burst at the host that had just asked for fewer requests. They come back spread, as
    the source that got the 429 does (over a tenth of the wait), each not before the host allows."""
    urls = [httpserver.url_for(f"/f{n}") for n in range(12)]
    rig = rigs(tmp_path, [f"url: {u}" for u in urls])
    for u in urls[1:]:  # polled once, so each knows its host
        httpserver.expect_request("/" + u.rsplit("/", 1)[1]).respond_with_data(FEED, content_type="application/rss+xml")
        rig.poll(u)
        rig.store.set_next_poll(u, rig.clock.now)  # due now: held back from here on
    httpserver.expect_request("/f0").respond_with_data("slow down", status=429, headers={"Retry-After": "900"})
    until = rig.clock.now + timedelta(seconds=900)
    assert rig.poll(urls[0]).status == "rate-limited"
    times = [rig.state(u).next_poll for u in urls[1:]]
    assert all(until <= t <= until + timedelta(seconds=90) for t in times), times
    assert len(set(times)) >= 8  # times are stored to the second: a few may share one (the rig's rng is seeded)
    assert max(times) - min(times) > timedelta(seconds=30)  # over the spread, not bunched at its start


def test_a_retry_after_from_the_host_a_redirect_leads_to_holds_the_source_back(tmp_path, rigs, httpserver: HTTPServer):
    """The source's URL is on one host and redirects to another, which answers 429: the next
    poll (`aggregator fetch` polls whatever the next-poll time) must not ask that host again.
    Only the host of the source's own URL was checked, so every `fetch` hit it anyway."""
    target = httpserver.url_for("/limited").replace("localhost", "127.0.0.1")  # another host
    url = httpserver.url_for("/moved")
    httpserver.expect_request("/moved").respond_with_data("", status=302, headers={"Location": target})
    httpserver.expect_request("/limited").respond_with_data("later", status=429, headers={"Retry-After": "600"})
    rig = rigs(tmp_path, [f"url: {url}"], site="  timezone: Asia/Shanghai\n")
    limited = rig.poll(url)
    assert limited.status == "rate-limited"
    assert requested(httpserver, "/limited") == 1
    # the time said as `status` says its own: in the site's zone, with the offset (it was UTC)
    until = (rig.clock() + timedelta(seconds=600)).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"before {until:%Y-%m-%d %H:%M:%S} +0800" in limited.error, limited.error
    rig.clock.advance(60)
    skipped = rig.poll(url)
    assert skipped.status == "skipped" and f"127.0.0.1:{httpserver.port} asked for no request" in skipped.note
    assert f"before {until:%Y-%m-%d %H:%M:%S} +0800" in skipped.note, skipped.note
    assert requested(httpserver, "/limited") == 1
    rig.clock.advance(600)  # the host's time is up: polled again
    assert rig.poll(url).status == "rate-limited" and requested(httpserver, "/limited") == 2


def test_503_with_retry_after_is_a_rate_limit_and_without_is_an_error(tmp_path, rigs, httpserver: HTTPServer):
    limited = httpserver.url_for("/busy")
    failing = httpserver.url_for("/down").replace("localhost", "127.0.0.1")  # another host
    httpserver.expect_request("/busy").respond_with_data("busy", status=503, headers={"Retry-After": "120"})
    httpserver.expect_request("/down").respond_with_data("down", status=503)
    rig = rigs(tmp_path, [f"url: {limited}", f"url: {failing}"])
    assert rig.poll(limited).status == "rate-limited"
    assert rig.poll(failing).status == "error"
    assert rig.state(limited).error_count == 0 and rig.state(failing).error_count == 1
    rows = rig.status()
    assert rows[limited]["state"] == "rate-limited" and rows[limited]["errors"] == 0
    assert rows[failing]["state"] == "erroring" and rows[failing]["errors"] == 1
    assert rows[failing]["last_error"] == "HTTP 503 SERVICE UNAVAILABLE"


def test_a_short_retry_after_does_not_poll_sooner_than_the_interval(tmp_path, rigs, httpserver: HTTPServer):
    """A server down behind `503, Retry-After: 60` on every poll: the source, every 2h when
    well, was polled every 5 minutes (min_interval) for as long as the server stayed down."""
    url = httpserver.url_for("/busy")
    httpserver.expect_request("/busy").respond_with_data("busy", status=503, headers={"Retry-After": "60"})
    rig = rigs(tmp_path, [f"url: {url}\ninterval: 2h"])
    for _ in range(3):
        assert rig.poll(url).status == "rate-limited"
        assert 7200 <= rig.wait(url) <= 7200 * 1.2
        rig.clock.now = rig.state(url).next_poll
    # a Retry-After longer than the interval still wins
    httpserver.clear()
    httpserver.expect_request("/busy").respond_with_data("busy", status=503, headers={"Retry-After": "36000"})
    assert rig.poll(url).status == "rate-limited" and 36000 <= rig.wait(url) <= 36000 * 1.2


def test_numbers_written_with_a_superscript_digit_are_no_numbers(tmp_path, rigs, httpserver: HTTPServer):
    """`"²".isdigit()` is true and `int("²")` raises: a Retry-After of `²` crashed the whole
    `fetch` command (outside every source's error handling), and a Content-Length, `<ttl>` or
    enclosure length of `²` lost the whole feed to an internal error."""
    feed = rss(extra="<ttl>²</ttl>").replace(
        b"<description>x</description>", b'<enclosure url="https://e.example/a.mp3" length="\xc2\xb2"/>', 1
    )
    httpserver.expect_request("/busy").respond_with_data("busy", status=503, headers={"Retry-After": "²"})
    httpserver.expect_request("/feed").respond_with_data(feed, headers={"Content-Type": "application/rss+xml"})
    busy, url = httpserver.url_for("/busy"), httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {busy}", f"url: {url}"])
    out = rig.poll(busy)
    assert out.status == "error" and out.error == "HTTP 503 SERVICE UNAVAILABLE"
    assert rig.state(busy).error_count == 1
    out = rig.poll(url)
    assert out.status == "new" and out.new == 2
    [post] = [p for p in rig.store.latest_posts(10) if p.enclosures]
    assert post.enclosures[0].length is None


def test_a_lone_surrogate_in_a_json_feed_costs_one_character_not_the_feed(tmp_path, rigs, httpserver: HTTPServer):
    """JSON may escape half a surrogate pair (`\\ud800`) alone; in an item's id, tag or
    language it made storing fail ("surrogates not allowed") and the whole feed was lost."""
    body = (
        b'{"version":"https://jsonfeed.org/version/1.1","title":"t","items":['
        b'{"id":"a\\ud800b","title":"one","content_text":"y"},'
        b'{"id":"2","title":"two","content_text":"z","tags":["\\udc00t"],"language":"e\\ud800n"},'
        b'{"id":"3","title":"pair \\ud83d\\ude00","content_text":"w"}]}'
    )
    httpserver.expect_request("/feed.json").respond_with_data(body, content_type="application/feed+json")
    url = httpserver.url_for("/feed.json")
    rig = rigs(tmp_path, [f"url: {url}"])
    out = rig.poll(url)
    assert out.status == "new" and out.new == 3, out
    posts = {p.title: p for p in rig.store.latest_posts(10)}
    assert posts["one"].guid == "a\ufffdb" and posts["two"].tags == ("\ufffdt",)
    assert "pair \U0001f600" in posts  # a pair is one character, as JSON means it


# -- errors, backoff, gone ----------------------------------------------------------------


def test_500_streak_backs_off_and_a_success_resets(tmp_path, rigs, httpserver: HTTPServer):
    err = Response("boom", status=500)
    ok = Response(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/feed").respond_with_handler(sequence(err, err, err, err, ok))
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}\ninterval: 10m"])
    expected = [("erroring", 600), ("backing off", 1200), ("backing off", 2400), ("backing off", 4800)]
    for n, (state, wait) in enumerate(expected, start=1):
        out = rig.poll(url)
        assert out.status == "error" and "HTTP 500" in out.error
        st = rig.state(url)
        assert st.error_count == n and st.last_error == "HTTP 500 INTERNAL SERVER ERROR"
        assert wait * 0.9 <= rig.wait(url) <= wait * 1.1  # interval × 2^(n-1), ±10% jitter
        row = rig.status()[url]
        assert (row["state"], row["errors"], row["consecutive_errors"]) == (state, n, n)
        assert row["last_error"] == "HTTP 500 INTERNAL SERVER ERROR" and row["next_poll"] == st.next_poll.isoformat()
        assert state in rig.table()
        rig.clock.now = st.next_poll
    out = rig.poll(url)
    assert out.status == "new"
    st = rig.state(url)
    assert st.error_count == 0 and st.last_error is None and 540 <= rig.wait(url) <= 660
    row = rig.status()[url]
    assert row["state"] == "ok" and row["errors"] == 0 and row["last_error"] is None


def test_errors_after_a_reload_back_off_from_the_interval_the_config_says_now(tmp_path, rigs, httpserver):
    """A fixed interval raised in feeds.yaml (a publisher asked for fewer polls): the errors
    that follow are retried at the new interval, not the one stored by the last success."""
    httpserver.expect_request("/feed").respond_with_handler(
        sequence(Response(FEED, content_type="application/rss+xml"), Response("boom", status=500))
    )
    url = httpserver.url_for("/feed")
    rigs(tmp_path, [f"url: {url}\ninterval: 10m"]).poll(url)
    rig = rigs(tmp_path, [f"url: {url}\ninterval: 2h"])  # the same database, the config edited
    assert rig.state(url).interval == 600  # stored by the success
    for n, wait in enumerate([7200, 14400], start=1):
        assert rig.poll(url).status == "error"
        assert rig.state(url).error_count == n
        assert wait * 0.9 <= rig.wait(url) <= wait * 1.1
        rig.clock.now = rig.state(url).next_poll


def test_backoff_is_capped_at_max_interval_and_keeps_retrying(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/feed").respond_with_data("boom", status=500)
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}\ninterval: 1h\nmax_interval: 4h"])
    for _ in range(8):
        rig.poll(url)
        rig.clock.now = rig.state(url).next_poll
    assert rig.state(url).error_count == 8
    assert rig.wait(url) == 0  # the clock sits on it: still scheduled, never dropped
    assert url in rig.store.due_sources(rig.clock.now)
    rig.poll(url)
    assert 4 * 3600 * 0.9 <= rig.wait(url) <= 4 * 3600
    assert rig.status()[url]["state"] == "backing off"


def test_410_gone_is_no_longer_polled_and_says_so(tmp_path, rigs, httpserver: HTTPServer, caplog):
    httpserver.expect_request("/feed").respond_with_data("gone", status=410)
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}"])
    with caplog.at_level(logging.WARNING, logger="aggregator.pipeline"):
        out = rig.poll(url)
    assert out.status == "gone" and "HTTP 410" in out.error
    assert any("no longer polled" in r.getMessage() and url in r.getMessage() for r in caplog.records)
    st = rig.state(url)
    assert st.state == "gone" and st.next_poll is None and "410" in st.last_error
    assert rig.store.due_sources(rig.clock.advance(10 * 86400)) == []
    again = rig.poll(url)
    assert again.status == "skipped" and "gone" in again.note
    assert requested(httpserver, "/feed") == 1
    row = rig.status()[url]
    assert row["state"] == "gone" and row["next_poll"] is None and "HTTP 410" in row["last_error"]
    table = rig.table()
    assert "gone" in table and "never: gone (HTTP 410)" in table


@pytest.mark.parametrize(("code", "gone"), [(302, False), (307, False), (301, True), (308, True)])
def test_a_410_behind_a_temporary_redirect_leaves_the_source_polled(tmp_path, rigs, httpserver, code, gone):
    """A 302 says "elsewhere for now": a 410 there is that URL's, not the source's, which
    may redirect to a live feed tomorrow. Behind permanent redirects, it is the source's."""
    httpserver.expect_request("/feed").respond_with_data("", status=code, headers={"Location": "/today"})
    httpserver.expect_request("/today").respond_with_data("gone", status=410)
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}"])
    out = rig.poll(url)
    st = rig.state(url)
    if gone:
        assert out.status == "gone" and st.state == "gone" and st.next_poll is None
        return
    assert out.status == "error" and "HTTP 410" in out.error and "temporary redirect" in out.error
    assert st.state == "erroring" and st.next_poll is not None and "/today" in st.last_error
    httpserver.clear()
    httpserver.expect_request("/feed").respond_with_data(FEED, content_type="application/rss+xml")
    rig.clock.advance(86400)
    assert rig.poll(url).status == "new"
    assert rig.state(url).state == "ok"


def test_a_gone_source_named_with_fetch_source_is_tried_again_and_revived(tmp_path, httpserver: HTTPServer):
    """`fetch` skips a gone source; `fetch --source URL` tries it: still 410 keeps it gone, a
    feed that is back puts it on its schedule again, posts and all."""
    answer = {"status": 410}
    httpserver.expect_request("/feed").respond_with_handler(
        lambda request: (
            Response("gone", status=410)
            if answer["status"] == 410
            else Response(FEED, content_type="application/rss+xml")
        )
    )
    url = httpserver.url_for("/feed")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://example.org/\n"
        f"categories:\n  - name: News\n    sources:\n      - url: {url}\n"
    )
    assert run_cli("--config", str(cfg), "fetch").returncode == 1
    skipped = run_cli("--config", str(cfg), "fetch")
    assert requested(httpserver, "/feed") == 1 and f"fetch --source {url}" in skipped.stdout, skipped.stdout
    still = run_cli("--config", str(cfg), "fetch", "--source", url)
    assert still.returncode == 1 and requested(httpserver, "/feed") == 2
    answer["status"] = 200
    back = run_cli("--config", str(cfg), "fetch", "--source", url)
    assert back.returncode == 0, back.stdout + back.stderr
    with Store(tmp_path / "aggregator.db") as store:
        st = store.source_state(url)
        assert st is not None and st.state == "ok" and st.next_poll is not None
        assert store.count_posts(url) == 2 and url in store.due_sources(st.next_poll)


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_is_learnt_after_three_polls(tmp_path, rigs, httpserver: HTTPServer, code):
    httpserver.expect_request("/old").respond_with_data("", status=code, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(FEED, content_type="application/rss+xml")
    old, new = httpserver.url_for("/old"), httpserver.url_for("/new")
    rig = rigs(tmp_path, [f"url: {old}"])
    for n in (1, 2):
        rig.poll(old)
        st = rig.state(old)
        assert (st.url, st.learnt_url, st.redirect_url, st.redirect_count) == (old, None, new, n)
        row = rig.status()[old]
        assert row["fetch_url"] == old and row["pending_redirect"] == {"url": new, "seen": n}
    assert f"redirected permanently to {new}: 2 of 3 polls" in rig.table()
    rig.poll(old)
    st = rig.state(old)
    assert (st.key, st.url, st.learnt_url, st.redirect_url) == (old, new, new, None)
    assert requested(httpserver, "/old") == 3
    rig.poll(old)
    assert requested(httpserver, "/old") == 3 and requested(httpserver, "/new") == 4  # polls the new URL now
    assert st.posts == 2 and rig.state(old).posts == 2  # same key, same post ids: nothing duplicated
    row = rig.status()[old]
    assert row["url"] == old and row["fetch_url"] == new and row["learnt_url"] == new
    assert f"→ polls {new} (learnt from permanent redirects)" in rig.table()


@pytest.mark.parametrize("code", [404, 410])
def test_a_learnt_url_that_vanishes_sends_the_poller_back_to_the_configured_one(
    tmp_path, rigs, httpserver: HTTPServer, code
):
    """A redirect undone (or one to a maintenance page, learnt over three polls) left the
    source polling a URL that is no more: a 404 for ever, or a 410 that marked it gone, even
    for `fetch --source`, though the configured URL answered; nothing short of editing the
    database unlearnt it."""
    moved = Response("", status=301, headers={"Location": "/new"})
    feed = Response(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/old").respond_with_handler(sequence(moved, moved, moved, feed))
    httpserver.expect_request("/new").respond_with_handler(sequence(feed, feed, feed, Response("", status=code)))
    old, new = httpserver.url_for("/old"), httpserver.url_for("/new")
    rig = rigs(tmp_path, [f"url: {old}"])
    for _ in range(3):
        rig.poll(old)
    assert rig.state(old).learnt_url == new
    out = rig.poll(old)
    assert out.status == "error" and new in out.error and f"{old} will be polled again" in out.error
    st = rig.state(old)
    assert (st.state, st.url, st.learnt_url) == ("erroring", old, None)
    rig.clock.advance(3600)
    assert rig.poll(old).status == "unchanged" and rig.state(old).state == "ok"  # the same posts, at home
    assert requested(httpserver, "/old") == 4 and rig.state(old).posts == 2


def test_a_broken_redirect_streak_starts_over(tmp_path, rigs, httpserver: HTTPServer):
    redirect = Response("", status=301, headers={"Location": "/new"})
    direct = Response(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/old").respond_with_handler(sequence(redirect, redirect, direct, redirect, redirect))
    httpserver.expect_request("/new").respond_with_data(FEED, content_type="application/rss+xml")
    old = httpserver.url_for("/old")
    rig = rigs(tmp_path, [f"url: {old}"])
    counts = []
    for _ in range(5):
        rig.poll(old)
        counts.append(rig.state(old).redirect_count)
    assert counts == [1, 2, 0, 1, 2] and rig.state(old).learnt_url is None
    assert rig.status()[old]["learnt_url"] is None


@pytest.mark.parametrize("code", [302, 307])
def test_temporary_redirect_is_followed_but_not_learnt(tmp_path, rigs, httpserver: HTTPServer, code):
    httpserver.expect_request("/old").respond_with_data("", status=code, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(FEED, content_type="application/rss+xml")
    old = httpserver.url_for("/old")
    rig = rigs(tmp_path, [f"url: {old}"])
    for _ in range(4):
        assert rig.poll(old).status in ("new", "unchanged")
    st = rig.state(old)
    assert (st.url, st.learnt_url, st.redirect_url, st.redirect_count) == (old, None, None, 0)
    assert requested(httpserver, "/old") == 4
    row = rig.status()[old]
    assert row["fetch_url"] == old and row["learnt_url"] is None and row["state"] == "ok" and row["posts"] == 2
    assert "→ polls" not in rig.table()


def test_permanent_then_temporary_learns_only_the_permanent_hop(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/c"})
    httpserver.expect_request("/c").respond_with_data(FEED, content_type="application/rss+xml")
    a = httpserver.url_for("/a")
    rig = rigs(tmp_path, [f"url: {a}"])
    for _ in range(3):
        rig.poll(a)
    assert rig.state(a).learnt_url == httpserver.url_for("/b")
    assert rig.status()[a]["fetch_url"] == httpserver.url_for("/b")


def test_redirect_loop_and_too_many_redirects_are_errors(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    for i in range(12):
        httpserver.expect_request(f"/hop{i}").respond_with_data("", status=302, headers={"Location": f"/hop{i + 1}"})
    loop, chain = httpserver.url_for("/a"), httpserver.url_for("/hop0")
    rig = rigs(tmp_path, [f"url: {loop}", f"url: {chain}"])
    out = rig.poll(loop)
    assert out.status == "error" and out.error == f"redirect loop: {loop} → {httpserver.url_for('/b')} → {loop}"
    assert rig.poll(chain).error == "too many redirects: more than 10"
    assert requested(httpserver, "/hop10") == 1 and requested(httpserver, "/hop11") == 0
    rows = rig.status()
    assert rows[loop]["state"] == "erroring" and rows[loop]["last_error"].startswith("redirect loop: ")
    assert rows[chain]["last_error"] == "too many redirects: more than 10"
    assert rig.state(loop).error_count == 1
    assert "redirect loop" in rig.table()


# -- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_trickling_server_cannot_stretch_the_total_deadline(tmp_path, rigs, mode):
    server = TrickleServer(mode, delay=0.2)  # a byte every 0.2 s: no single read ever times out
    try:
        rig = rigs(tmp_path, [f"url: {server.url}\ntimeout: 1s"])
        start = time.monotonic()
        out = rig.poll(server.url)
        took = time.monotonic() - start
    finally:
        server.close()
    assert out.status == "error" and "total deadline of 1s" in out.error
    assert took < 1 + 1, f"gave up after {took:.1f}s"
    st = rig.state(server.url)
    assert st.error_count == 1 and "timed out" in st.last_error and st.posts == 0
    row = rig.status()[server.url]
    assert row["state"] == "erroring" and "total deadline of 1s" in row["last_error"]


def _bomb(encoding: str, size: int) -> bytes:
    data = b"<" + b"\0" * size
    if encoding == "gzip":
        return gzip.compress(data, 6)
    if encoding == "deflate":
        return zlib.compress(data, 6)
    return _brotli.compress(data, quality=5)


@pytest.mark.parametrize(
    "encoding", ["gzip", "deflate", pytest.param("br", marks=pytest.mark.skipif(_brotli is None, reason="no brotli"))]
)
def test_compression_bomb_is_refused_by_its_inflated_size(tmp_path, rigs, httpserver: HTTPServer, encoding):
    bomb = _bomb(encoding, 32 * 1024 * 1024)  # 32 MiB of zeros, a few KiB on the wire
    assert len(bomb) < 200_000
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": encoding})
    url = httpserver.url_for("/bomb")
    rig = rigs(tmp_path, [f"url: {url}"], max_body=1024 * 1024)
    out = rig.poll(url)
    assert out.status == "error" and out.error == "inflated body too large: over 1048576 bytes"
    row = rig.status()[url]
    assert row["state"] == "erroring" and row["last_error"] == out.error and rig.state(url).error_count == 1


def test_oversize_body_is_refused_declared_or_streamed(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/declared").respond_with_data(b"x" * 5000)

    def streamed(request: Request) -> Response:
        return Response((b"x" * 1000 for _ in range(50)), content_type="application/rss+xml")  # chunked

    httpserver.expect_request("/streamed").respond_with_handler(streamed)
    declared, chunked = httpserver.url_for("/declared"), httpserver.url_for("/streamed")
    rig = rigs(tmp_path, [f"url: {declared}", f"url: {chunked}"], max_body=4000)
    assert rig.poll(declared).error == "body too large: 5000 bytes (limit 4000)"
    assert rig.poll(chunked).error == "body too large: over 4000 bytes"
    rows = rig.status()
    assert rows[declared]["last_error"] == "body too large: 5000 bytes (limit 4000)"
    assert rows[chunked]["state"] == "erroring" and rig.state(chunked).posts == 0


# -- content sniffing and character sets ------------------------------------------------------

PAGE = b"""<!doctype html><html><head><title>A blog</title>
<base href="/blog/">
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/atom+xml" title="Posts" href="posts.atom">
<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments.rss">
</head><body>Hello</body></html>"""


def test_html_page_leads_to_the_feed_it_links_to(tmp_path, rigs, httpserver: HTTPServer):
    atom = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title>'
        b"<id>urn:blog</id><updated>2024-01-01T00:00:00Z</updated><entry><title>Hello</title><id>urn:1</id>"
        b"<updated>2024-01-01T00:00:00Z</updated><summary>hi</summary></entry></feed>"
    )
    httpserver.expect_request("/").respond_with_data(PAGE, content_type="text/html; charset=utf-8")
    feed = Response(atom, content_type="application/atom+xml")
    httpserver.expect_request("/blog/posts.atom").respond_with_handler(
        sequence(feed, feed, Response("", status=404), feed)
    )
    page, found = httpserver.url_for("/"), httpserver.url_for("/blog/posts.atom")
    rig = rigs(tmp_path, [f"url: {page}"])
    out = rig.poll(page)
    assert out.status == "new" and out.new == 1
    st = rig.state(page)
    assert (st.key, st.url, st.discovered_url, st.title) == (page, found, found, "Blog")
    row = rig.status()[page]
    assert row["url"] == page and row["fetch_url"] == found and row["discovered_url"] == found
    assert f"→ polls {found} (linked from the page)" in rig.table()
    rig.poll(page)  # next time the feed is polled directly
    assert requested(httpserver, "/") == 1 and requested(httpserver, "/blog/posts.atom") == 2
    # the linked feed vanishes: back to the page, which is searched again
    out = rig.poll(page)
    assert out.status == "error" and "discovered feed" in out.error
    assert rig.state(page).url == page and rig.status()[page]["fetch_url"] == page
    assert rig.poll(page).status == "unchanged" and rig.state(page).url == found
    assert requested(httpserver, "/") == 2


def test_a_page_listing_its_comments_feed_first_leads_to_the_posts_feed(tmp_path, rigs, httpserver: HTTPServer):
    """WordPress-style: the comments feed (and a REST API link typed application/json) come
    before the posts feed in <head>: the first link was polled, and the source's posts were
    its comments."""
    html = (
        "<!doctype html><html><head>"
        '<link rel="alternate" type="application/rss+xml" title="Blog &raquo; Comments Feed" href="/comments/feed/">'
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">'
        '<link rel="alternate" type="application/rss+xml" title="Blog &raquo; Feed" href="/feed/">'
        "</head><body>Hello</body></html>"
    )
    comments = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Comments on Blog</title><link>https://b/</link>'
        b"<item><title>Comment on Item 0 by Ann</title><guid>urn:comment:1</guid></item></channel></rss>"
    )
    httpserver.expect_request("/").respond_with_data(html, content_type="text/html; charset=UTF-8")
    httpserver.expect_request("/comments/feed/").respond_with_data(comments, content_type="application/rss+xml")
    posts = rss(title="Blog", items=3)
    httpserver.expect_request("/feed/").respond_with_data(posts, content_type="application/rss+xml")
    page = httpserver.url_for("/")
    rig = rigs(tmp_path, [f"url: {page}"])
    out = rig.poll(page)
    assert out.status == "new" and out.new == 3
    st = rig.state(page)
    assert (st.url, st.discovered_url, st.title) == (httpserver.url_for("/feed/"),) * 2 + ("Blog",)
    assert sorted(p.title for p in rig.store.latest_posts(10)) == ["Item 0", "Item 1", "Item 2"]
    assert requested(httpserver, "/comments/feed/") == 0 and requested(httpserver, "/wp-json/wp/v2/pages/2") == 0


def test_a_feed_that_answers_a_page_once_is_failing_not_moved(tmp_path, rigs, httpserver: HTTPServer):
    """An outage or login page from a URL that served a feed, linking (as site pages do) to the
    site's main feed: that swapped the source for the main feed, for good and without a word.
    It is an error naming the link; the feed is polled again at its URL and comes back."""
    feed = Response(FEED, content_type="application/rss+xml")
    outage = Response(LINK.format("/main.rss"), content_type="text/html")
    httpserver.expect_request("/feed").respond_with_handler(sequence(feed, outage, outage, feed))
    main_feed = rss(title="Main", items=5)
    httpserver.expect_request("/main.rss").respond_with_data(main_feed, content_type="application/rss+xml")
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}"])
    assert rig.poll(url).new == 2
    for n in (1, 2):
        rig.clock.advance(3600)
        out = rig.poll(url)
        assert out.status == "error" and out.error.startswith("an HTML page where the feed was")
        assert httpserver.url_for("/main.rss") in out.error
        st = rig.state(url)
        assert (st.url, st.discovered_url, st.error_count) == (url, None, n)
    rig.clock.advance(3 * 3600)
    assert rig.poll(url).status in ("new", "unchanged") and rig.state(url).error_count == 0
    assert requested(httpserver, "/main.rss") == 0
    assert rig.state(url).posts == 2


def test_a_discovered_feed_that_answers_a_page_is_failing_not_moved_again(tmp_path, rigs, httpserver: HTTPServer):
    """The feed a page linked to answers a page of its own: an error, polled there again, not
    a second hop to whatever that page links to."""
    feed = Response(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/").respond_with_data(LINK.format("/feed"), content_type="text/html")
    httpserver.expect_request("/feed").respond_with_handler(
        sequence(feed, Response(LINK.format("/other.rss"), content_type="text/html"), feed)
    )
    httpserver.expect_request("/other.rss").respond_with_data(rss(title="Other"), content_type="application/rss+xml")
    page, found = httpserver.url_for("/"), httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {page}"])
    assert rig.poll(page).new == 2 and rig.state(page).url == found
    rig.clock.advance(3600)
    out = rig.poll(page)
    assert out.status == "error" and httpserver.url_for("/other.rss") in out.error
    assert (rig.state(page).url, rig.state(page).discovered_url) == (found, found)
    rig.clock.advance(3 * 3600)
    assert rig.poll(page).status in ("new", "unchanged") and rig.state(page).url == found
    assert requested(httpserver, "/other.rss") == 0


def test_credentials_stay_on_the_configured_host_when_a_page_links_elsewhere(tmp_path, rigs, httpserver: HTTPServer):
    """The page's auth and headers were given for the page's host: the feed it links to on
    another host gets neither, on the poll that finds it nor on the polls after."""
    seen: list[tuple[str | None, str | None]] = []

    def feed(request: Request) -> Response:
        seen.append((request.headers.get("Authorization"), request.headers.get("X-Api-Key")))
        return Response(FEED, content_type="application/rss+xml")

    page = httpserver.url_for("/")
    elsewhere = httpserver.url_for("/feed").replace("localhost", "127.0.0.1")  # same server, another host
    link = f'<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="{elsewhere}">'
    httpserver.expect_request("/").respond_with_data(link, content_type="text/html")
    httpserver.expect_request("/feed").respond_with_handler(feed)
    rig = rigs(tmp_path, [f"url: {page}\nauth: {{username: me, password: s3cret}}\nheaders: {{X-Api-Key: k3y}}"])
    assert rig.poll(page).status == "new"
    rig.clock.advance(7 * 86400)
    assert rig.poll(page).status == "unchanged" and rig.state(page).url == elsewhere
    assert seen == [(None, None), (None, None)]


LINK = '<link rel="alternate" type="application/rss+xml" href="{}">'


def test_a_link_or_base_urllib_cannot_read_costs_only_that_link(tmp_path, rigs, httpserver: HTTPServer):
    """A link (or `<base>`) to `http://[oops/` made urljoin raise: an internal error on every
    poll, with a traceback, and the page's other links were never tried."""
    bad_page = "<html><head>" + LINK.format("http://[oops/feed") + LINK.format("/feed") + "</head></html>"
    bad_base = '<html><head><base href="http://[::1">' + LINK.format("/feed") + "</head></html>"
    httpserver.expect_request("/bad").respond_with_data(bad_page, content_type="text/html")
    httpserver.expect_request("/base").respond_with_data(bad_base, content_type="text/html")
    httpserver.expect_request("/feed").respond_with_data(FEED, content_type="application/rss+xml")
    bad, base = httpserver.url_for("/bad"), httpserver.url_for("/base")
    rig = rigs(tmp_path, [f"url: {bad}", f"url: {base}"])
    assert rig.poll(bad).new == 2 and rig.state(bad).url == httpserver.url_for("/feed")
    assert rig.poll(base).new == 2 and rig.state(base).url == httpserver.url_for("/feed")


def test_a_page_linking_to_a_gone_feed_is_searched_again_not_gone(tmp_path, rigs, httpserver: HTTPServer):
    """The page answers, the feed it links to is 410: that marked the page's source gone for
    good, in words naming neither the feed nor the page (`the feed is gone`). The page is not
    gone and may link to another feed tomorrow: an error naming the feed, the page polled again."""
    page = httpserver.url_for("/")
    html = "<html><head>" + LINK.format("/old.rss") + "</head></html>"
    httpserver.expect_request("/").respond_with_handler(
        sequence(
            Response(html, content_type="text/html"),
            Response(html.replace("/old.rss", "/new.rss"), content_type="text/html"),
        )
    )
    httpserver.expect_request("/old.rss").respond_with_data("gone", status=410)
    httpserver.expect_request("/new.rss").respond_with_data(FEED, content_type="application/rss+xml")
    rig = rigs(tmp_path, [f"url: {page}"])
    out = rig.poll(page)
    assert out.status == "error", out
    assert httpserver.url_for("/old.rss") in out.error and "searched again" in out.error
    st = rig.state(page)
    assert (st.state, st.url, st.last_status) == ("erroring", page, 410)
    rig.clock.advance(3600)
    assert rig.poll(page).new == 2 and rig.state(page).url == httpserver.url_for("/new.rss")


def test_html_page_without_feed_links_is_a_clear_error(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/").respond_with_data(
        "<!doctype html><html><head><title>x</title></head><body>no feed</body></html>", content_type="text/html"
    )
    url = httpserver.url_for("/")
    rig = rigs(tmp_path, [f"url: {url}"])
    out = rig.poll(url)
    assert out.status == "error" and out.error.startswith("an HTML page, not a feed, and it links to none")
    assert rig.status()[url]["last_error"] == out.error


LICENCE = "<!-- " + "This feed is licensed under the terms below. " * 120 + "-->\n"
ENTITIES = (  # one value holds `]>`: not the end of the DOCTYPE
    '<!DOCTYPE rss [\n<!ENTITY br "a]>b">\n'
    + "".join(f'<!ENTITY e{i} "&#{0x4E00 + i};">\n' for i in range(200))
    + "]>\n"
)


@pytest.mark.parametrize(
    "prolog",
    [LICENCE, ENTITIES, '<?xml-stylesheet href="/s.xsl"?>\n' + LICENCE],
    ids=["comment", "entities", "stylesheet"],
)
def test_a_feed_labeled_html_is_a_feed_past_a_long_prolog(tmp_path, rigs, httpserver: HTTPServer, prolog):
    """A feed served as text/html whose root element comes after 4 KB of comment, entity
    declarations or stylesheet instructions was taken for a page linking to no feed."""
    assert len(prolog) > 4096
    body = FEED.replace(b"\n<rss", ("\n" + prolog + "<rss").encode(), 1)
    httpserver.expect_request("/feed").respond_with_data(body, content_type="text/html; charset=utf-8")
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}"])
    out = rig.poll(url)
    assert (out.status, out.new) == ("new", 2), out.error


def test_an_html_page_past_a_long_comment_is_still_a_page(tmp_path, rigs, httpserver: HTTPServer):
    page = f"<!doctype html>{LICENCE}<html><head><title>x</title></head><body>no feed</body></html>"
    httpserver.expect_request("/").respond_with_data(page, content_type="text/html")
    url = httpserver.url_for("/")
    out = rigs(tmp_path, [f"url: {url}"]).poll(url)
    assert out.status == "error" and out.error.startswith("an HTML page, not a feed"), out.error


NEWS = ("张掖日报", "张掖市召开经济运行分析会")  # simplified: GBK and GB18030
NEWS_TW = ("張掖日報", "張掖市召開經濟運行分析會")  # traditional: Big5


def _cjk_feed(encoding: str, site: str, title: str) -> bytes:
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel><title>{site}</title>'
        f"<link>https://example.cn/</link><item><title>{title}</title><guid>urn:cjk:1</guid>"
        f"<description>{title}：全文</description></item></channel></rss>"
    )
    return text.encode(encoding)


@pytest.mark.parametrize(
    ("encoding", "names", "content_type"),
    [
        ("gbk", NEWS, "application/rss+xml; charset=utf-8"),  # wrong header that fails to decode
        ("gb18030", NEWS, "text/xml"),  # no charset: RFC 3023 says us-ascii, which fails
        ("gb18030", NEWS, "application/xml; charset=ISO-8859-1"),  # wrong header that decodes anything
        ("big5", NEWS_TW, "text/xml; charset=iso-8859-1"),
        ("big5", NEWS_TW, "application/rss+xml; charset=utf-8"),
        ("big5", NEWS_TW, "application/rss+xml"),
    ],
)
def test_cjk_feeds_with_a_wrong_or_missing_http_charset(
    tmp_path, rigs, httpserver: HTTPServer, encoding, names, content_type
):
    site, title = names
    body = _cjk_feed(encoding, site, title)
    httpserver.expect_request("/cjk").respond_with_data(body, headers={"Content-Type": content_type})
    url = httpserver.url_for("/cjk")
    rig = rigs(tmp_path, [f"url: {url}"])
    assert rig.poll(url).status == "new"
    posts = rig.store.posts_for_category("news", 10)
    assert [p.title for p in posts] == [title] and f"{title}：全文" in posts[0].summary + posts[0].content
    assert rig.state(url).title == site
    row = rig.status()[url]
    assert row["name"] == site and row["state"] == "ok"
    assert site in rig.table()


def test_a_bom_beats_a_wrong_http_charset(tmp_path, rigs, httpserver: HTTPServer):
    body = b"\xef\xbb\xbf" + _cjk_feed("utf-8", *NEWS)
    httpserver.expect_request("/bom").respond_with_data(
        body, headers={"Content-Type": "text/xml; charset=windows-1252"}
    )
    url = httpserver.url_for("/bom")
    rig = rigs(tmp_path, [f"url: {url}"])
    rig.poll(url)
    assert [p.title for p in rig.store.posts_for_category("news", 10)] == [NEWS[1]]
    assert rig.status()[url]["name"] == NEWS[0]


# -- adaptive interval -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "headers", "expected"),
    [
        ("<ttl>120</ttl>", {}, 7200),
        ("<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>", {}, 21600),
        ("", {"Cache-Control": "max-age=10800"}, 10800),
        ("", {"Expires": "in 4h"}, 14400),  # made below, from the real now, as the server's Date is
        ("", {}, 1800),
    ],
)
def test_auto_interval_follows_the_feeds_hints(tmp_path, rigs, httpserver: HTTPServer, extra, headers, expected):
    if headers.get("Expires") == "in 4h":
        headers = {"Expires": format_datetime(datetime.now(UTC) + timedelta(hours=4), usegmt=True)}
    httpserver.expect_request("/feed").respond_with_data(
        rss(extra=extra), content_type="application/rss+xml", headers=headers
    )
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}"])
    rig.poll(url)
    assert rig.state(url).interval == pytest.approx(expected, abs=2)  # Expires − Date: the server's second
    assert expected * 0.9 - 2 <= rig.wait(url) <= expected * 1.1 + 2
    row = rig.status()[url]
    assert row["interval"] == pytest.approx(expected, abs=2) and row["interval_mode"] == "auto"


def test_auto_interval_learns_the_posting_rate(tmp_path, rigs, httpserver: HTTPServer):
    busy, quiet = httpserver.url_for("/busy"), httpserver.url_for("/quiet")
    rig = rigs(tmp_path, [f"url: {busy}", f"url: {quiet}"])
    # 42 posts in the last week, one every 4 hours → poll every 4 hours
    httpserver.expect_request("/busy").respond_with_handler(
        lambda r: Response(_spaced(rig.clock.now, 42, 4), content_type="application/rss+xml")
    )
    # posts, but none in the last week → max_interval
    httpserver.expect_request("/quiet").respond_with_data(
        rss(items=3, dated=rig.clock.now - timedelta(days=30)), content_type="application/rss+xml"
    )
    rig.poll(busy)
    rig.poll(quiet)
    assert rig.state(busy).interval == pytest.approx(4 * 3600)
    assert rig.state(quiet).interval == 86400
    rows = rig.status()
    assert rows[busy]["interval"] == pytest.approx(4 * 3600) and rows[quiet]["interval"] == 86400
    assert "every 4h (auto)" in rig.table() and "every 1d (auto)" in rig.table()


def _spaced(now, count: int, hours: int) -> bytes:
    items = "".join(
        f"<item><title>P{i}</title><guid>urn:p:{i}</guid>"
        f"<pubDate>{(now - timedelta(hours=hours * i, minutes=1)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        "</item>"
        for i in range(count)
    )
    return f'<rss version="2.0"><channel><title>Busy</title>{items}</channel></rss>'.encode()


def _rss_dated(stamps: list[datetime], title: str = "Feed") -> bytes:
    """An RSS feed of one entry per date in `stamps`, newest first, each named by its date."""
    items = "".join(
        f"<item><title>P</title><guid>urn:p:{at.timestamp():.0f}</guid>"
        f"<pubDate>{format_datetime(at, usegmt=True)}</pubDate></item>"
        for at in sorted(stamps, reverse=True)
    )
    return f'<rss version="2.0"><channel><title>{title}</title>{items}</channel></rss>'.encode()


def _last(count: int, every: timedelta, newest: datetime) -> list[datetime]:
    """The dates of a feed's last `count` entries, one every `every`, the newest at `newest`."""
    return [newest - every * (count - 1 - i) for i in range(count)]


def test_auto_interval_of_a_first_fetch_follows_the_dates_in_the_feed(tmp_path, httpserver: HTTPServer):
    """`fetch` then `status --json`: a feed holding its last 10 posts of the last 90 minutes was
    given 16.8 hours (10 posts read as a week's), ~90 posts lost before its next poll."""

    def serve(count: int, every: timedelta):  # dated from the moment of the request
        return lambda request: Response(
            _rss_dated(_last(count, every, datetime.now(UTC).replace(microsecond=0))),
            content_type="application/rss+xml",
        )

    httpserver.expect_request("/busy").respond_with_handler(serve(10, timedelta(minutes=10)))
    httpserver.expect_request("/news").respond_with_handler(serve(50, timedelta(hours=48) / 49))
    httpserver.expect_request("/weekly").respond_with_handler(serve(10, timedelta(weeks=1)))
    httpserver.expect_request("/undated").respond_with_data(rss(items=10), content_type="application/rss+xml")
    url = httpserver.url_for
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://example.org/\ncategories:\n  - name: C\n    sources:\n"
        + "".join(f"      - url: {url(p)}\n" for p in ("/busy", "/news", "/weekly", "/undated")),
        encoding="utf-8",
    )
    fetched = run_cli("--config", str(cfg), "fetch")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    status = run_cli("--config", str(cfg), "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {r["url"]: r for r in json.loads(status.stdout)}
    now = datetime.now(UTC)
    expected = {
        "/busy": 600,  # 9 posts after the oldest in 90 minutes: one every 10 minutes
        "/news": 48 * 3600 / 49,  # 50 posts over 2 days: ~hourly (the week's count said every 3.4h)
        "/weekly": 86400,  # one post this week: max_interval, as before
        "/undated": 1800,  # no dates, no rate: the starting 30 minutes, as before
    }
    for path, seconds in expected.items():
        row = rows[url(path)]
        assert row["interval_mode"] == "auto" and row["interval"] == pytest.approx(seconds, abs=5), (path, row)
        wait = (datetime.fromisoformat(row["next_poll"]) - now).total_seconds()
        assert seconds * 0.9 - 60 <= wait <= seconds * 1.1 + 5, (path, wait)  # ±10% jitter, the test's own time


def test_a_busy_feed_polled_on_its_schedule_loses_no_post(tmp_path, rigs, httpserver: HTTPServer):
    """A feed posting every 10 minutes and holding its last 10, polled whenever its schedule
    says for 12 hours: every post is stored (the first poll's 16.8 hours kept 20 of 82)."""
    url = httpserver.url_for("/busy")
    rig = rigs(tmp_path, [f"url: {url}"])
    start, every = rig.clock.now, timedelta(minutes=10)

    def published(until: datetime) -> list[datetime]:  # one every 10 minutes, 10 by the start
        return [start - every * 9 + every * k for k in range(int((until - start) / every) + 10)]

    httpserver.expect_request("/busy").respond_with_handler(  # the feed holds the last 10
        lambda request: Response(_rss_dated(published(rig.clock.now)[-10:]), content_type="application/rss+xml")
    )
    end, polls = start + timedelta(hours=12), 0
    while True:
        rig.poll(url)
        polls += 1
        assert rig.state(url).interval <= 700, polls  # a post every 10 minutes: no more than 11.7 between polls
        if rig.state(url).next_poll > end:
            break
        rig.clock.now = rig.state(url).next_poll
    rig.clock.now = end
    rig.poll(url)
    assert rig.state(url).posts == len(published(end)) == 82
    assert polls <= 12 * 6 / 0.9 + 1  # no more often than the posts come


def test_a_feed_dating_every_entry_when_it_is_fetched_is_not_taken_for_a_busy_one(tmp_path, rigs, httpserver):
    """20 entries all dated the moment of the request (a generator stamping its build time): no
    post after the oldest, so a week's count, 20 → every 8.4h, on the first poll and the next."""
    url = httpserver.url_for("/stamped")
    rig = rigs(tmp_path, [f"url: {url}"])
    httpserver.expect_request("/stamped").respond_with_handler(
        lambda request: Response(
            rss(items=20).replace(b"</guid>", f"</guid><pubDate>{format_datetime(rig.clock.now)}</pubDate>".encode()),
            content_type="application/rss+xml",
        )
    )
    for _ in range(2):
        rig.poll(url)
        assert rig.state(url).interval == pytest.approx(7 * 86400 / 20)
        rig.clock.advance(3600)


def test_fixed_interval_ignores_hints(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/feed").respond_with_data(
        rss(extra="<ttl>600</ttl>"), content_type="application/rss+xml"
    )
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}\ninterval: 15m"])
    rig.poll(url)
    assert rig.state(url).interval == 900 and 810 <= rig.wait(url) <= 990
    assert rig.status()[url]["interval_mode"] == "fixed"


def test_next_poll_survives_a_restart(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/feed").respond_with_data(FEED, content_type="application/rss+xml")
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}\ninterval: 1h"])
    assert rig.store.due_sources(rig.clock.now) == [url]  # never polled: due at once
    rig.poll(url)
    nxt = rig.state(url).next_poll
    rig.store.close()
    rig.store = Store(rig.settings.database)
    rig.store.sync_sources(rig.settings.sources)
    assert rig.state(url).next_poll == nxt
    assert rig.store.due_sources(nxt - timedelta(seconds=1)) == []
    assert rig.store.due_sources(nxt) == [url]


# -- per-source settings ----------------------------------------------------------------------


def test_disabled_source_is_not_polled(tmp_path, rigs, httpserver: HTTPServer):
    httpserver.expect_request("/feed").respond_with_data(FEED, content_type="application/rss+xml")
    url = httpserver.url_for("/feed")
    rig = rigs(tmp_path, [f"url: {url}\nenabled: false"])
    out = rig.poll(url)
    assert out.status == "skipped" and "disabled" in out.note
    assert requested(httpserver, "/feed") == 0 and rig.store.due_sources(rig.clock.now) == []
    assert rig.state(url).enabled is False
    row = rig.status()[url]
    assert row["state"] == "disabled" and row["enabled"] is False and row["next_poll"] is None
    assert "never: enabled: false" in rig.table()


def test_headers_from_the_environment_auth_and_user_agent(tmp_path, rigs, httpserver: HTTPServer, monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", "t0ken")
    monkeypatch.setenv("FEED_PASSWORD", "pa:ss")
    seen = {}

    def handler(request: Request) -> Response:
        seen.update(request.headers)
        return Response(FEED, content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(handler)
    url = httpserver.url_for("/feed")
    src = (
        f"url: {url}\nuser_agent: MyReader/2.0\nheaders:\n  X-Api-Key: Bearer ${{FEED_TOKEN}}\n"
        "auth:\n  username: reader\n  password: ${FEED_PASSWORD}"
    )
    rig = rigs(tmp_path, [src])
    assert rig.poll(url).status == "new"
    assert seen["X-Api-Key"] == "Bearer t0ken" and seen["User-Agent"] == "MyReader/2.0"
    assert seen["Authorization"] == "Basic cmVhZGVyOnBhOnNz"  # reader:pa:ss
    assert "t0ken" not in repr(rig.settings.source(url)) and "pa:ss" not in repr(rig.settings.source(url))
    status = rig.cli("status", "--json") + rig.table()
    assert "t0ken" not in status and "pa:ss" not in status


# -- dates ------------------------------------------------------------------------------------

# pubDates feedparser reads wrongly (US Central for CST, UTC without a zone, the day only for
# the Chinese and ISO forms), each with its UTC time for a source in Shanghai and in Chicago
_DATED = [
    ("Mon Nov 02 10:00:00 CST 2026", "2026-11-02T02:00", "2026-11-02T16:00"),
    ("Mon Nov  2 10:00:00 GMT+08:00 2026", "2026-11-02T02:00", "2026-11-02T02:00"),
    ("Mon Nov  2 10:00:00 2026", "2026-11-02T02:00", "2026-11-02T16:00"),
    ("2026年11月2日 星期一 10:00", "2026-11-02T02:00", "2026-11-02T16:00"),
    ("2026年11月2日 下午3:05", "2026-11-02T07:05", "2026-11-02T21:05"),
    ("2026年11月2日 10时05分", "2026-11-02T02:05", "2026-11-02T16:05"),
    ("2026年11月2日10:00", "2026-11-02T02:00", "2026-11-02T16:00"),
    ("2026-W45-1T10:00:00Z", "2026-11-02T10:00", "2026-11-02T10:00"),
    ("20261102T100000+0800", "2026-11-02T02:00", "2026-11-02T02:00"),
]


@pytest.mark.parametrize("feedparser_only", [False, True])
@pytest.mark.parametrize(
    ("zone", "column", "set_on"),
    [("Asia/Shanghai", 1, "source"), ("America/Chicago", 2, "source"), ("Asia/Shanghai", 1, "site")],
)
def test_java_chinese_and_iso_pubdates_are_stored_in_utc(
    tmp_path, rigs, monkeypatch, feedparser_only, zone, column, set_on
):
    """Through the real fetch (a local server), parse (the fast path, and feedparser's as
    AGGREGATOR_PARSER=feedparser makes it), normalize and SQLite store: each post keeps its
    own date, read in the source's zone (its own `timezone`, else the site's)."""
    monkeypatch.setattr("aggregator.parse.FEEDPARSER_ONLY", feedparser_only)
    items = "".join(
        f"<item><title>Item {i}</title><guid>urn:date:{i}</guid><pubDate>{row[0]}</pubDate></item>"
        for i, row in enumerate(_DATED)
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Dates</title>'
        f"<link>https://example.org/</link>{items}</channel></rss>"
    ).encode()
    with HTTPServer(host="127.0.0.1", port=0) as server:
        server.expect_request("/feed").respond_with_data(body, content_type="application/rss+xml")
        url = server.url_for("/feed")
        if set_on == "source":
            rig = rigs(tmp_path, [f"url: {url}\ntimezone: {zone}"])
        else:
            rig = rigs(tmp_path, [f"url: {url}"], site=f"  timezone: {zone}\n")
        assert rig.poll(url).new == len(_DATED)
    stored = {p.title: p for p in rig.store.latest_posts(100)}
    got = {title: (p.published.isoformat(timespec="minutes"), p.dated) for title, p in stored.items()}
    want = {f"Item {i}": (row[column] + "+00:00", True) for i, row in enumerate(_DATED)}
    assert got == want
