"""Posts of the same time (undated entries share their first-seen time, a date-only feed
midnight) are published in the order their feed lists them, in every output."""

from __future__ import annotations

import json
import sqlite3

import lxml.html
from lxml import etree
from pytest_httpserver import HTTPServer

from .conftest import run_cli

MIDNIGHT = "Fri, 01 Mar 2024 00:00:00 +0000"
FEED_ORDER = [f"Item {n}" for n in (5, 2, 7, 0, 3, 6, 1, 4)]  # their ids, hashes, sort otherwise


def _rss(titles: list[str], changed: str = "") -> bytes:
    items = "".join(
        f"<item><title>{t}</title><guid>urn:{t}</guid><pubDate>{MIDNIGHT}</pubDate>"
        f"<description>{'edited' if t == changed else 'x'}</description></item>"
        for t in titles
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>'
        f"<link>https://example.org/</link>{items}</channel></rss>"
    ).encode()


def _published(public) -> dict[str, list[str]]:
    """The titles of the category's posts in each output, in the order listed."""
    atom = etree.parse(str(public / "category" / "a.atom")).getroot()
    rss = etree.parse(str(public / "category" / "a.rss")).getroot()
    page = lxml.html.parse(str(public / "category" / "a.html")).getroot()
    return {
        "json": [i["title"] for i in json.loads((public / "category" / "a.json").read_text())["items"]],
        "atom": atom.xpath("//a:entry/a:title/text()", namespaces={"a": "http://www.w3.org/2005/Atom"}),
        "rss": rss.xpath("//item/title/text()"),
        "page": page.xpath("//h3/a/text()"),
        "all": [i["title"] for i in json.loads((public / "feed.json").read_text())["items"]],
    }


def _config(tmp_path, url: str):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n      - url: {url}\n",
        encoding="utf-8",
    )
    return cfg


def test_posts_of_one_time_are_listed_as_their_feed_lists_them(tmp_path, httpserver: HTTPServer):
    httpserver.expect_ordered_request("/f").respond_with_data(_rss(FEED_ORDER), content_type="application/rss+xml")
    later = ["Item new", *FEED_ORDER]  # the feed prepends a new entry of the same day, and edits one
    httpserver.expect_ordered_request("/f").respond_with_data(
        _rss(later, changed="Item 7"), content_type="application/rss+xml"
    )
    cfg = _config(tmp_path, httpserver.url_for("/f"))
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    outputs = _published(tmp_path / "public")
    assert outputs == dict.fromkeys(outputs, FEED_ORDER), outputs
    second = run_cli("--config", str(cfg), "fetch")
    assert second.returncode == 0 and "1 new, 1 updated" in second.stdout, second.stdout
    outputs = _published(tmp_path / "public")
    assert outputs == dict.fromkeys(outputs, later), outputs


def test_a_store_from_before_lists_its_posts_in_feed_order_too(tmp_path, httpserver: HTTPServer):
    """Posts stored by an earlier version were inserted in feed order (rowid ascending, and
    no `meta` table): opening the store turns them to the order used now."""
    httpserver.expect_request("/f").respond_with_data(_rss(FEED_ORDER), content_type="application/rss+xml")
    cfg = _config(tmp_path, httpserver.url_for("/f"))
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    db = sqlite3.connect(tmp_path / "aggregator.db")
    with db:  # as the earlier version left it
        db.execute("DROP TABLE IF EXISTS meta")
        db.execute("UPDATE posts SET rowid = rowid + 1000")
        for n, title in enumerate(FEED_ORDER, 1):
            db.execute("UPDATE posts SET rowid = ? WHERE title = ?", [n, title])
    db.close()
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    outputs = _published(tmp_path / "public")
    assert outputs == dict.fromkeys(outputs, FEED_ORDER), outputs
