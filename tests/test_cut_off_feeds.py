"""A feed cut off mid-download, and entries with nothing in them: no empty "(untitled)" post,
and no post that the complete entry later duplicates."""

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


GUIDLESS = rss(
    "<item><title>one</title><description>first text</description></item>"
    "<item><title>two &amp; more</title><description>&lt;p&gt;second&lt;/p&gt;</description></item>"
    "<item><title>three</title><description>third text</description></item>"
)
ATOM = (
    b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
    b"<entry><title>one</title><content>first text</content></entry>"
    b'<entry xml:lang="en"><title>two</title><content type="html">&lt;p&gt;second&lt;/p&gt;</content></entry>'
    b"</feed>"
)


@pytest.mark.parametrize("body", [GUIDLESS, ATOM], ids=["rss", "atom"])
def test_a_feed_cut_anywhere_gives_only_posts_of_the_complete_feed(body: bytes):
    """Cut at every byte, the document gives a subset of the complete document's posts: the
    entry the cut fell in, taken with a half-read title or no content, was a post of its own
    (guid-less: its id is made of title and content) beside the complete entry fetched later,
    or an empty "(untitled)" one."""
    complete = {p.id: p.title for p in normalize(SRC, parse_feed(SRC.key, body, SRC.url), NOW)}
    assert len(complete) in (2, 3)
    for cut in range(body.index(b"<title>t</title>") + 16, len(body)):
        posts = normalize(SRC, parse_feed(SRC.key, body[:cut], SRC.url), NOW)
        assert {p.id: p.title for p in posts}.items() <= complete.items(), (cut, body[:cut][-30:])


def test_a_cut_off_feed_says_it_left_out_its_last_entry():
    feed = parse_feed(SRC.key, rss(item(1) + "<item><title>partial")[: -len(b"</channel></rss>")], SRC.url)
    assert [e["title"] for e in feed.entries] == ["story 1"]
    assert feed.warning is not None and feed.warning.endswith("; its last entry, cut off, left out")
    # a complete entry that only lacks the document's end tags is kept
    feed = parse_feed(SRC.key, rss(item(1) + item(2))[: -len(b"</channel></rss>")], SRC.url)
    assert [e["title"] for e in feed.entries] == ["story 1", "story 2"] and "left out" not in (feed.warning or "")


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


def test_a_feed_cut_off_over_http_publishes_no_untitled_post_and_no_duplicate(tmp_path: Path, httpserver: HTTPServer):
    """The reviewer's case: `fetch` of an RSS file cut off after `<item><title>partial`
    stored an empty "(untitled)" post, dated the fetch time, at the top of its category, for
    good; cut after the title, a post "partial" that the complete entry came beside."""
    whole = rss(item(1) + item(2) + "<item><title>partial</title><description>the rest</description></item>")
    cfg, served = _serve(tmp_path, httpserver, whole[: whole.index(b"partial") + len(b"partial")])
    out = _fetch(cfg)
    assert "(2 new, 0 updated of 2)" in out and "its last entry, cut off, left out" in out, out
    assert "(untitled)" not in _published(tmp_path) and _published(tmp_path).count("<item>") == 2
    served["body"] = whole[: whole.index(b"</title><description>the rest") + len(b"</title>")]
    assert "(0 new, 0 updated of 2)" in _fetch(cfg)
    served["body"] = whole
    assert "(1 new, 0 updated of 3)" in _fetch(cfg)
    with sqlite3.connect(tmp_path / "aggregator.db") as con:
        assert sorted(r[0] for r in con.execute("SELECT title FROM posts")) == ["partial", "story 1", "story 2"]
    assert "(untitled)" not in _published(tmp_path) and _published(tmp_path).count("<item>") == 3
