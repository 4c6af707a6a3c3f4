"""A source's name, when the config gives none, is its feed's title: as plain text, like entry
titles, whatever markup, entities or control characters the feed put in it."""

from __future__ import annotations

import json
import sqlite3

from lxml import etree

from .conftest import StaticServer, fetch_feed_text, run_cli

ITEM = "<item><title>One</title><link>https://a.example/1</link><description>x</description></item>"
FEEDS = {
    # double-encoded, as many real feeds are, and a raw control character (ill-formed: feedparser)
    "rss.xml": f"<rss version='2.0'><channel><title>Tom &amp;amp; Jerry&#8217;s\x0b Blog</title>{ITEM}</channel></rss>",
    # an Atom title declared as HTML (well-formed: the fast path), with references to characters that are not text
    "atom.xml": (
        "<feed xmlns='http://www.w3.org/2005/Atom'>"
        "<title type='html'>C &amp;lt;Atom&amp;gt; &amp;amp;&amp;#1;&amp;#xFFFE; co</title>"
        "<id>urn:a</id><updated>2025-01-01T00:00:00Z</updated><entry><title>Two</title><id>urn:a:2</id>"
        "<link href='https://b.example/2'/><updated>2025-01-01T00:00:00Z</updated><content>y</content></entry></feed>"
    ),
}
WANTED = {"rss.xml": "Tom & Jerry’s Blog", "atom.xml": "C <Atom> & co"}


def test_feed_titles_become_plain_text_names_and_publishing_survives_them(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    for name, text in FEEDS.items():
        (www / name).write_text(text, encoding="utf-8")
    server = StaticServer(www)
    try:
        cfg = tmp_path / "feeds.yaml"
        urls = {name: server.url(name) for name in FEEDS}
        cfg.write_text(
            "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: A\n    sources:\n"
            + "".join(f"      - url: {u}\n" for u in urls.values()),
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "files written" in result.stdout
    finally:
        server.close()
    items = json.loads((tmp_path / "public" / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    shown = {i["_source"]["url"]: i["_source"]["title"] for i in items}
    assert shown == {urls[name]: WANTED[name] for name in FEEDS}
    outlines = etree.parse(str(tmp_path / "public" / "opml.xml")).findall(".//outline[@xmlUrl]")
    assert {o.get("xmlUrl"): o.get("title") for o in outlines} == shown
    pages = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "public" / "posts").rglob("*.html"))
    assert "Tom &amp; Jerry’s Blog" in pages and "C &lt;Atom&gt; &amp; co" in pages and "&amp;amp;" not in pages


def test_a_feed_naming_no_home_page_but_itself_is_published_without_one(tmp_path):
    """Planet GNOME's Atom feed has only `rel="self"` (and an `<id>` that is that URL): the
    XML feed was linked as the source's site on every post page (来源：<a href=…atom.xml>), as
    the OPML's `htmlUrl` and as each Atom entry's `<source>` alternate link; so was an RSS
    feed whose `<link>` is the URL it is fetched from. Neither has a home page now."""
    www = tmp_path / "www"
    www.mkdir()
    server = StaticServer(www)
    try:
        urls = {"planet.xml": server.url("planet.xml"), "self.xml": server.url("self.xml")}
        (www / "planet.xml").write_text(
            "<feed xmlns='http://www.w3.org/2005/Atom'><title>Planet</title><id>https://planet.example/atom.xml</id>"
            "<link href='https://planet.example/atom.xml' rel='self' type='application/atom+xml'/>"
            "<updated>2025-01-01T00:00:00Z</updated><entry><title>Two</title><id>urn:a:2</id>"
            "<link href='https://b.example/2'/><updated>2025-01-01T00:00:00Z</updated><content>y</content></entry></feed>",
            encoding="utf-8",
        )
        (www / "self.xml").write_text(
            f"<rss version='2.0'><channel><title>Self</title><link>{urls['self.xml']}</link>{ITEM}</channel></rss>",
            encoding="utf-8",
        )
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            "site:\n  title: T\n  url: https://t.example/\n  language: zh-CN\ncategories:\n  - name: A\n"
            "    sources:\n" + "".join(f"      - url: {u}\n" for u in urls.values()),
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    public = tmp_path / "public"
    outlines = etree.parse(str(public / "opml.xml")).findall(".//outline[@xmlUrl]")
    assert sorted(o.get("title") for o in outlines) == ["Planet", "Self"]
    assert [o.get("htmlUrl") for o in outlines] == [None, None]
    items = json.loads((public / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    assert [sorted(i["_source"]) for i in items] == [["title", "url"], ["title", "url"]]
    atom = etree.parse(str(public / "category" / "a.atom"))
    assert (
        atom.findall(".//{http://www.w3.org/2005/Atom}source/{http://www.w3.org/2005/Atom}link[@rel='alternate']") == []
    )
    pages = "".join(p.read_text(encoding="utf-8") for p in (public / "posts").rglob("*.html"))
    assert "来源：<bdi>Planet</bdi>" in pages and "来源：<bdi>Self</bdi>" in pages and '.xml">' not in pages


def test_an_untitled_post_is_named_in_the_site_s_language(tmp_path):
    """An entry with no title, no text and no link was stored as `(untitled)`, an English
    word on a zh-CN site's post page and in its Jekyll `title:`. It is stored without a title
    now, and each output names it in the site's language."""
    fetch_feed_text(
        tmp_path,
        "f.xml",
        "<rss version='2.0'><channel><title>F</title><link>https://f.example/</link>"
        "<item><guid isPermaLink='false'>u1</guid><description>&lt;img src='https://f.example/i.png'&gt;</description>"
        "</item></channel></rss>",
        site="  language: zh-CN\n",
        top="jekyll:\n  dir: jekyll\n",
    )
    (page,) = (tmp_path / "public" / "posts").rglob("*.html")
    assert "<h1>无标题</h1>" in page.read_text(encoding="utf-8")
    (md,) = (tmp_path / "jekyll" / "_posts").glob("*.md")
    assert '\ntitle: "无标题"\n' in md.read_text(encoding="utf-8")
    for feed in ("feed.json", "category/c.json"):  # and the feeds (English `(untitled)` before)
        (item,) = json.loads((tmp_path / "public" / feed).read_text(encoding="utf-8"))["items"]
        assert item["title"] == "无标题", item
    assert "<title>无标题</title>" in (tmp_path / "public" / "feed.rss").read_text(encoding="utf-8")
    with sqlite3.connect(tmp_path / "aggregator.db") as db:
        assert db.execute("SELECT title FROM posts").fetchall() == [("",)]
