"""Entries with nothing in them: no empty "(untitled)" post."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from aggregator.models import Source
from aggregator.normalize import normalize, normalize_entries
from aggregator.parse import parse_feed, parse_feedparser

from .conftest import run_cli

NOW = datetime(2025, 6, 1, tzinfo=UTC)
SRC = Source(key="https://a.example/feed.xml", url="https://a.example/feed.xml", categories=("c",))


def rss(items: str) -> bytes:
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def item(n: int, extra: str = "") -> str:
    """A guid-less, link-less entry (identified by title and content), dated n days ago."""
    date = format_datetime(datetime.now(UTC) - timedelta(days=n))
    return f"<item><title>story {n}</title><description>text {n}</description><pubDate>{date}</pubDate>{extra}</item>"


@pytest.mark.parametrize("parse", [parse_feed, parse_feedparser], ids=["fast", "feedparser"])
def test_an_entry_with_nothing_in_it_is_left_out(parse, caplog):
    """No guid, link, title, content, date, author, tag or enclosure: it was an empty
    "(untitled)" post linking to its own page. An entry with any one of them is kept."""
    body = rss(
        "<item></item><item/><item><title> </title><description></description></item>"
        "<item><description>only text</description></item>"
        '<item><enclosure url="https://a.example/e.mp3" type="audio/mpeg" length="1"/></item>'
        "<item><guid>urn:x:1</guid></item><item><author>a@b.example (A)</author></item>"
    )
    with caplog.at_level("INFO", logger="aggregator.normalize"):
        posts = normalize_entries(SRC, parse(SRC.key, body, SRC.url), NOW)
    assert posts[2].guid == "urn:x:1" and posts[3].authors and len(posts) == 4
    assert posts[0].content == "only text" and posts[1].enclosures
    assert f"source {SRC.key}: left out 3 entries with nothing in them" in caplog.text
    items = [{}, {"title": "kept"}]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": items}).encode()
    assert [p.title for p in normalize(SRC, parse_feed(SRC.key, body, SRC.url), NOW)] == ["kept"]


def _fetch(cfg: Path) -> str:
    result = run_cli("-v", "--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _serve(tmp_path: Path, httpserver: HTTPServer, body: bytes) -> tuple[Path, dict[str, bytes]]:
    """A config of one source, category C (slug c), served `served["body"]` over HTTP."""
    served = {"body": body}
    httpserver.expect_request("/feed.xml").respond_with_handler(
        lambda _: Response(served["body"], content_type="application/rss+xml")
    )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/'}\n"
        f"categories:\n  - name: C\n    slug: c\n    sources:\n      - url: {httpserver.url_for('/feed.xml')}\n",
        encoding="utf-8",
    )
    return cfg, served


def _published(tmp_path: Path) -> str:
    return (tmp_path / "public" / "category" / "c.rss").read_text(encoding="utf-8")


def test_an_empty_entry_over_http_is_no_untitled_post(tmp_path: Path, httpserver: HTTPServer):
    """`fetch` of a feed with an empty `<item></item>` published an "(untitled)" post dated the
    fetch time, on top of the category, linking to its own page."""
    cfg, _ = _serve(tmp_path, httpserver, rss(item(1) + "<item></item>" + item(2)))
    out = _fetch(cfg)
    assert "(2 new, 0 updated of 2)" in out and "left out 1 entry with nothing in them" in out, out
    assert "(untitled)" not in _published(tmp_path) and _published(tmp_path).count("<item>") == 2
    with sqlite3.connect(tmp_path / "aggregator.db") as con:
        assert sorted(r[0] for r in con.execute("SELECT title FROM posts")) == ["story 1", "story 2"]
