"""Dates in the rarer shapes real feeds write, through the real command: `aggregator fetch`
of feeds served over HTTP, into a real SQLite file and the published feeds."""

from __future__ import annotations

import json
import sqlite3

from pytest_httpserver import HTTPServer

from .conftest import run_cli

# (title, the feed's date, the stored UTC time): in a source of Asia/Shanghai, read by the
# fast path
SHANGHAI = [
    ("weekday first", "星期一 2025年11月3日 10:05", "2025-11-03T02:05:00+00:00"),
    ("bracketed weekday", "(周一) 2025-11-03 10:06", "2025-11-03T02:06:00+00:00"),
    ("hour alone", "2025年11月3日 11点", "2025-11-03T03:00:00+00:00"),
    ("pm after rfc 822", "Mon, 03 Nov 2025 10:05 PM", "2025-11-03T14:05:00+00:00"),
    ("iso week", "2025-W45", "2025-11-02T16:00:00+00:00"),
    ("basic date", "20251104", "2025-11-03T16:00:00+00:00"),
]
# in a source of Asia/Hong_Kong, read by feedparser's path (the DOCTYPE sends it there)
HONG_KONG = [
    ("cst", "Mon, 03 Nov 2025 10:05:00 CST", "2025-11-03T02:05:00+00:00"),
    ("weekday first hk", "週一 2025-11-03 12時", "2025-11-03T04:00:00+00:00"),
    ("pm after rfc 822 gmt", "Mon, 03 Nov 2025 10:05:00 PM GMT", "2025-11-03T22:05:00+00:00"),
]


def _rss(items: list[tuple[str, str, str]], doctype: bool = False) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><guid>urn:{title}</guid><pubDate>{date}</pubDate>"
        f"<description>{title}</description></item>"
        for title, date, _ in items
    )
    head = '<!DOCTYPE rss SYSTEM "http://e.org/rss.dtd">' if doctype else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{head}<rss version="2.0"><channel><title>F</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    ).encode()


def test_rare_date_shapes_are_stored_and_published_in_the_source_zone(tmp_path, httpserver: HTTPServer):
    """Before, the weekday-first dates were no dates (the posts took their fetch time),
    `11点` and the week were midnight UTC of 1 November, the basic date midnight UTC, 10:05
    PM was 10:05, and Hong Kong's CST was US Central's, 14 hours later."""
    from aggregator.parse_fast import parse_fast

    assert parse_fast(_rss(SHANGHAI), "http://h/") is not None  # the fast path
    assert parse_fast(_rss(HONG_KONG, doctype=True), "http://h/") is None  # feedparser's
    httpserver.expect_request("/sh").respond_with_data(_rss(SHANGHAI), content_type="application/rss+xml")
    httpserver.expect_request("/hk").respond_with_data(
        _rss(HONG_KONG, doctype=True), content_type="application/rss+xml"
    )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
        f"      - url: {httpserver.url_for('/sh')}\n        timezone: Asia/Shanghai\n"
        f"      - url: {httpserver.url_for('/hk')}\n        timezone: Asia/Hong_Kong\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    want = {title: stored for title, _, stored in SHANGHAI + HONG_KONG}

    con = sqlite3.connect(tmp_path / "aggregator.db")
    rows = {
        title: (published, dated)
        for title, published, dated in con.execute("SELECT title, published, dated FROM posts")
    }
    con.close()
    assert rows == {title: (stored, 1) for title, stored in want.items()}

    items = json.loads((tmp_path / "public" / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    published = {i["title"]: i["date_published"] for i in items}
    assert published == {title: stored.replace("+00:00", "Z") for title, stored in want.items()}
