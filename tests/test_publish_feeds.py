"""Feed rendering (Atom, RSS, JSON Feed) and atomic writes, checked by the shared strict validator."""

from __future__ import annotations

import hashlib
import html
import json
import os
import random
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import lxml.html
import pytest
from lxml import etree

import aggregator
from aggregator.models import Author, Enclosure, Post
from aggregator.publish import atomic, feeds
from aggregator.publish.atomic import write_if_changed
from aggregator.publish.feeds import (
    FeedMeta,
    html_excerpt,
    permalink,
    post_guid,
    render_atom,
    render_json,
    render_rss,
)
from aggregator.sanitize import sanitize_html

SHARED = Path(__file__).resolve().parents[2] / "shared"
CHECK_FEEDS = SHARED / "tools" / "check_feeds.py"
JSONFEED_SCHEMA = SHARED / "schemas" / "jsonfeed-1.1.schema.json"
A = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC = "{http://purl.org/dc/elements/1.1/}creator"
SITE = "https://finews.example.com/"
NEWEST = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

META = FeedMeta(
    title="张掖日报 & <News>",
    site_url=SITE,
    self_base=f"{SITE}category/zhangyeribao",
    alternate=f"{SITE}category/zhangyeribao.html",
    language="zh-CN",
    description="张掖日报新闻",
    site_title="Finews 财经",
    websub_hub="https://hub.example.net/",
)
ALL_META = FeedMeta(
    title="Finews",
    site_url=SITE,
    self_base=f"{SITE}feed",
    alternate=SITE,
    language="en",
    description="",
    site_title="Finews",
)


def _id(i: int) -> str:
    return hashlib.sha1(f"post-{i}".encode()).hexdigest()[:16]


def make_post(i: int) -> Post:
    """Post number i (0 is the newest): every few posts another awkward case."""
    published = NEWEST - timedelta(hours=7 * i, minutes=3 * i)
    titles = [
        f"张掖日报：第{i}期“源头活水”",
        f"Fish & Chips <b>not bold</b> #{i}",
        f"Bell\x07 and \x00null\x1f and \ufffe #{i}",
        "",
        f"Ünïcödé — emoji 🎉 #{i}",
        f"  Plain\ttitle\n{i}  ",
    ]
    authors = [
        (),
        (Author(name="张三"),),
        (Author(name="Alice", email="alice@example.org", url="https://alice.example/"), Author(name="Bob")),
        (Author(email="only@example.org"), Author(url="https://url-only.example/"), Author(email="not an email")),
    ]
    tags = [(), ("政治", "经济 & 社会"), ("tech", "<script>", "tech", "bad\x0btag")]
    enclosures = [
        (Enclosure(f"https://cdn.example.com/a/{i}.mp3", "audio/mpeg", 12345 + i),),
        (
            Enclosure(f"https://cdn.example.com/b/{i}.ogg"),
            Enclosure(f"https://cdn.example.com/b/{i}.mp4", "video/mp4", 999),
        ),
        (Enclosure("relative/path.mp3", "audio/mpeg", 10),),
        (Enclosure(f"https://cdn.example.com/图片/{i}.jpg", "image/jpeg"),),
        (),
    ]
    if i % 5 == 0:
        link = None
    elif i % 7 == 1:
        link = f"https://news.example.cn/新闻/{i}.html?q=张掖"
    else:
        link = f"https://example.org/articles/{i}?a=1&b=2"
    content = (
        "" if i % 4 == 0 else f'<p>正文 {i} &amp; <a href="https://example.org/x">link</a>\x0c</p>\n<p>{"长" * 300}</p>'
    )
    summary = "" if i % 3 == 0 else f"<p>Summary {i} &amp; more\x01</p>"
    if i % 2 == 0:
        source = dict(
            source_title=f"来源 {i}",
            source_link="https://source.example/",
            source_url="https://source.example/feed.xml",
        )
    elif i % 6 == 1:
        source = {}
    else:
        source = dict(source_url="https://other.example/rss")
    return Post(
        id=_id(i),
        source="https://source.example/feed.xml",
        guid=f"guid-{i}",
        title=titles[i % len(titles)],
        link=link,
        published=published,
        updated=published + timedelta(minutes=30 * (i % 3)),
        content=content,
        summary=summary,
        authors=authors[i % len(authors)],
        tags=tags[i % len(tags)],
        enclosures=enclosures[i % len(enclosures)],
        language=[None, None, "en", "zh_CN", "not a language!"][i % 5],
        comments=f"https://example.org/articles/{i}#comments" if i % 4 == 1 else None,
        **source,
    )


@pytest.fixture(scope="module")
def posts() -> list[Post]:
    return [make_post(i) for i in range(30)]


def _write_all(folder: Path, name: str, meta: FeedMeta, posts: list[Post]) -> list[bool]:
    return [
        write_if_changed(folder / f"{name}.{ext}", render(meta, posts))
        for ext, render in (("atom", render_atom), ("rss", render_rss), ("json", render_json))
    ]


def test_all_formats_pass_the_strict_validator_and_newsboat(tmp_path: Path, posts: list[Post]) -> None:
    assert _write_all(tmp_path, "category/zhangyeribao", META, posts) == [True, True, True]
    assert _write_all(tmp_path, "category/empty", META, []) == [True, True, True]
    assert _write_all(tmp_path, "feed", ALL_META, posts[:7]) == [True, True, True]
    result = subprocess.run(
        [sys.executable, str(CHECK_FEEDS), str(tmp_path), "--readers"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checked 3 Atom, 3 RSS, 3 JSON files: 0 problems" in result.stdout


def test_rendering_is_deterministic(posts: list[Post]) -> None:
    copies = [make_post(i) for i in range(30)]  # equal values, distinct objects
    for render in (render_atom, render_rss, render_json):
        first = render(META, posts)
        assert render(META, posts) == first
        assert render(META, copies) == first
        assert render(META, []) == render(META, [])


def test_feed_dates_come_from_posts_not_the_clock(posts: list[Post]) -> None:
    newest_update = NEWEST + timedelta(hours=2, seconds=5, microseconds=7)
    posts = [posts[0], replace(posts[1], updated=newest_update), *posts[2:]]  # not the first post's
    atom = etree.fromstring(render_atom(META, posts))
    assert atom.findtext(f"{A}updated") == "2024-03-01T14:00:05+00:00"
    rss = etree.fromstring(render_rss(META, posts))
    assert rss.findtext("channel/lastBuildDate") == "Fri, 01 Mar 2024 14:00:05 +0000"
    empty = etree.fromstring(render_atom(META, []))
    assert empty.findtext(f"{A}updated").startswith("1970-01-01T00:00:00")
    assert etree.fromstring(render_rss(META, [])).findtext("channel/lastBuildDate") == "Thu, 01 Jan 1970 00:00:00 +0000"
    since = replace(META, empty_since=datetime(2025, 6, 1, 8, 30, 15, 999, tzinfo=UTC))  # what the publisher gives
    assert etree.fromstring(render_atom(since, [])).findtext(f"{A}updated") == "2025-06-01T08:30:15+00:00"
    rss = etree.fromstring(render_rss(since, []))
    assert rss.findtext("channel/lastBuildDate") == "Sun, 01 Jun 2025 08:30:15 +0000"
    assert render_atom(since, posts) == render_atom(META, posts)  # only while there is no post


def test_atom_structure(posts: list[Post]) -> None:
    root = etree.fromstring(render_atom(META, posts))
    # some posts name no language and are in English ("Summary 1"): no feed-wide zh-CN for them
    # to inherit; the feed's own title says it, as do the entries that are in it
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    assert root.get(lang) is None and root.find(f"{A}title").get(lang) == "zh-CN"
    assert [e.get(lang) for e in root.findall(f"{A}entry")][:5] == ["zh-CN", None, "en", "zh-CN", None]
    assert root.findtext(f"{A}id") == f"{SITE}category/zhangyeribao.atom"
    assert root.findtext(f"{A}title") == "张掖日报 & <News>"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{A}link")}
    assert links == {
        "self": f"{SITE}category/zhangyeribao.atom",
        "alternate": f"{SITE}category/zhangyeribao.html",
        "hub": "https://hub.example.net/",
    }
    gen = root.find(f"{A}generator")
    assert (gen.text, gen.get("version"), gen.get("uri")) == (
        "aggregator",
        aggregator.__version__,
        aggregator.PROJECT_URL,
    )
    assert root.findtext(f"{A}author/{A}name") == "Finews 财经"

    entries = root.findall(f"{A}entry")
    assert [e.findtext(f"{A}id") for e in entries] == [post_guid(SITE, p.id) for p in posts]  # newest first
    for post, entry in zip(posts, entries, strict=True):
        elinks = entry.findall(f"{A}link")
        assert all(link.get("rel") in ("alternate", "enclosure") for link in elinks), "a link lost its rel"
        alternate = [link for link in elinks if link.get("rel") == "alternate"]
        assert len(alternate) == 1
        if post.link is None:
            assert alternate[0].get("href") == permalink(SITE, post)
        for link in elinks:
            if link.get("rel") == "enclosure" and link.get("length") is not None:
                assert link.get("length").isdigit()
        src = entry.find(f"{A}source")
        if post.source_url:
            assert src is not None
            assert src.find(f"{A}link[@rel='self']").get("href") == post.source_url
            assert src.findtext(f"{A}id") == post.source_url
            assert src.findtext(f"{A}title") == (post.source_title or None)
        else:
            assert src is None
        assert entry.findtext(f"{A}title").strip()

    first = entries[0]  # post 0: source with title + home page, enclosure with length, no link
    src = first.find(f"{A}source")
    assert src.find(f"{A}link[@rel='alternate']").get("href") == "https://source.example/"
    enc = first.find(f"{A}link[@rel='enclosure']")
    assert (enc.get("href"), enc.get("type"), enc.get("length")) == (
        "https://cdn.example.com/a/0.mp3",
        "audio/mpeg",
        "12345",
    )
    # hostile titles: markup kept as text, forbidden characters removed
    assert entries[1].findtext(f"{A}title") == "Fish & Chips <b>not bold</b> #1"
    assert entries[2].findtext(f"{A}title") == "Bell and null and #2"
    assert entries[3].findtext(f"{A}title").startswith("正文 3 & link 长长")  # empty title: excerpt
    assert len(entries[3].findtext(f"{A}title")) <= 81
    # authors: name-less email gets the address as name, url-only/bad email dropped
    names = [a.findtext(f"{A}name") for a in entries[3].findall(f"{A}author")]
    assert names == ["only@example.org"]
    assert entries[2].find(f"{A}author/{A}email").text == "alice@example.org"
    # post 0 has no author, nor had its source feed: not the feed's (this site, which did not
    # write it, RFC 4287 4.2.1), but its source's, which is credited with it
    # (named by the entry itself too: readers skipping <source> take the feed's, see
    # test_an_atom_entry_without_author_credits_its_source_in_readers_skipping_source)
    assert [a.findtext(f"{A}name") for a in entries[0].findall(f"{A}author")] == [posts[0].source_title]
    assert [a.findtext(f"{A}name") for a in entries[0].findall(f"{A}source/{A}author")] == [posts[0].source_title]
    assert entries[2].find(f"{A}source/{A}author") is None  # Alice and Bob wrote it
    # content is the full HTML, summary is the post's summary
    content = entries[1].find(f"{A}content")
    assert content.get("type") == "html" and content.text.startswith("<p>正文 1 &amp; <a")
    assert "\x0c" not in content.text
    assert entries[1].find(f"{A}summary").text == "<p>Summary 1 &amp; more</p>"
    assert [c.get("term") for c in entries[2].findall(f"{A}category")] == ["tech", "<script>", "badtag"]


def test_an_atom_entry_without_author_credits_its_source_in_readers_skipping_source(posts: list[Post]) -> None:
    """A post with no author was credited to its source only inside <source> (RFC 4287
    4.2.1): @rowanmanning/feed-parser and atoma read no <source> and give an entry
    without its own <author> the feed's, this site's: 78 of a corpus publish's posts showed
    "财经新闻" as their author. Each such entry names its source as its author itself."""
    import feedparser

    data = render_atom(META, posts)
    root = etree.fromstring(data)
    site = root.findtext(f"{A}author/{A}name")
    assert site == META.site_title
    parsed = feedparser.parse(data)
    checked = 0
    for post, entry, fp in zip(posts, root.findall(f"{A}entry"), parsed.entries, strict=True):
        # what a reader that knows no <source> shows: the entry's authors, else the feed's
        shown = [a.findtext(f"{A}name") for a in entry.findall(f"{A}author")] or [site]
        if any(a.name or a.email for a in post.authors):
            assert site not in shown
            continue
        if post.source_title or post.source_url:
            assert shown == [post.source_title or post.source_url]
            assert fp.get("author") == (post.source_title or post.source_url)
            checked += 1
    assert checked >= 3


def test_a_json_feed_item_names_its_first_author_for_json_feed_1_0_readers(posts: list[Post]) -> None:
    """JSON Feed 1.1 readers read `authors`; 1.0 readers (atoma) read
    only `author`, which 1.1 keeps for compatibility: every post showed no author in them.
    An item with authors gives its first as `author` too, and says nothing of one without."""
    feed = json.loads(render_json(META, posts))
    validator = jsonschema.Draft7Validator(
        json.loads(JSONFEED_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker()
    )
    assert [e.message for e in validator.iter_errors(feed)] == []
    with_authors = [i for i in feed["items"] if i.get("authors")]
    assert len(with_authors) >= 3
    for item in feed["items"]:
        assert item.get("author") == (item["authors"][0] if item.get("authors") else None)
    assert {"name": "Alice", "url": "https://alice.example/"} in (i["author"] for i in with_authors)


def test_an_atom_feeds_first_link_is_its_page(posts: list[Post]) -> None:
    """@extractus/feed-extractor takes a feed's first <link>, whatever its rel, for the site
    it belongs to: with `self` first, a reader's "visit website" opened the .atom file
    itself. The page (`alternate`) comes first, then `self` and the hub; entries already
    gave their article's link first."""
    for meta in (META, ALL_META):
        for items in (posts, []):
            root = etree.fromstring(render_atom(meta, items))
            links = root.findall(f"{A}link")
            assert links[0].get("rel") == "alternate" and links[0].get("href") == meta.alternate
            assert {link.get("rel") for link in links[1:]} <= {"self", "hub"}
            for entry in root.findall(f"{A}entry"):
                assert entry.find(f"{A}link").get("rel") == "alternate"


def test_rss_structure(posts: list[Post]) -> None:
    data = render_rss(META, posts)
    channel = etree.fromstring(data).find("channel")
    assert channel.findtext("link") == f"{SITE}category/zhangyeribao.html"
    rels = {link.get("rel"): link.get("href") for link in channel.findall(f"{A}link")}
    assert rels == {"self": f"{SITE}category/zhangyeribao.rss", "hub": "https://hub.example.net/"}
    assert channel.findtext("generator").startswith(f"aggregator {aggregator.__version__}")
    items = channel.findall("item")
    assert len(items) == len(posts)
    for post, item in zip(posts, items, strict=True):
        guid = item.find("guid")
        assert guid.get("isPermaLink") == "false"
        assert guid.text == post_guid(SITE, post.id)
        assert len(item.findall("enclosure")) <= 1
        if post.source_url:
            assert item.find("source").get("url") == post.source_url
            assert item.findtext("source") == (post.source_title or post.source_url)
        if post.link is not None and "新闻" not in post.link:
            assert item.findtext("link") == post.link  # the original article, not our page
    assert items[0].findtext("link") == permalink(SITE, posts[0])
    assert items[1].findtext("link") == "https://news.example.cn/%E6%96%B0%E9%97%BB/1.html?q=%E5%BC%A0%E6%8E%96"
    # one enclosure: the first with a length; unknown length is written as 0
    assert items[1].find("enclosure").attrib == {
        "url": "https://cdn.example.com/b/1.mp4",
        "length": "999",
        "type": "video/mp4",
    }
    assert items[3].find("enclosure").get("length") == "0"
    assert items[2].find("enclosure") is None  # relative URL dropped
    # full content in content:encoded, summary in description
    assert items[1].findtext(CONTENT).startswith("<p>正文 1")
    assert items[1].findtext("description") == "<p>Summary 1 &amp; more</p>"
    assert items[4].find(CONTENT) is None and items[4].findtext("description") == "<p>Summary 4 &amp; more</p>"
    # authors: with email as RSS <author>, names alone as dc:creator
    assert [a.text for a in items[2].findall("author")] == ["alice@example.org (Alice)"]
    assert [c.text for c in items[2].findall(DC)] == ["Bob"]
    assert [c.text for c in items[1].findall(DC)] == ["张三"]


def test_every_string_reads_back_as_written() -> None:
    """Atom and RSS are written as text: whatever a string holds, a parser reads it back."""
    nasty = "a & b < c > d \"q\" 's' ]]> &amp; \t tab"
    content = f"<p>{nasty}\r\nCR LF\rCR\x01</p>\n  <p>&lt;end&gt;</p>  "
    post = replace(
        make_post(1),
        title=nasty + "\x0b",
        content=content,
        summary=f"<b>{nasty}</b>\r",
        tags=(nasty, "x\ty"),
        authors=(Author(name=nasty, email="a&b@example.org"), Author(name="<Bob>")),
        link="https://example.org/?a=1&b='2'",
        source_title=nasty,
        source_url="https://source.example/feed?x=1&y=2",
    )
    one_line = " ".join(nasty.split())
    clean_content = content.replace("\x01", "")
    root = etree.fromstring(render_atom(META, [post]))
    entry = root.find(f"{A}entry")
    assert entry.findtext(f"{A}title") == one_line
    assert entry.findtext(f"{A}content") == clean_content  # CRs kept, not read as line feeds
    assert entry.findtext(f"{A}summary") == f"<b>{nasty}</b>\r"
    assert [c.get("term") for c in entry.findall(f"{A}category")] == [one_line, "x y"]
    assert [a.findtext(f"{A}name") for a in entry.findall(f"{A}author")] == [one_line, "<Bob>"]
    assert entry.find(f"{A}link[@rel='alternate']").get("href") == "https://example.org/?a=1&b='2'"
    assert entry.findtext(f"{A}source/{A}title") == one_line
    assert entry.find(f"{A}source/{A}link[@rel='self']").get("href") == "https://source.example/feed?x=1&y=2"
    item = etree.fromstring(render_rss(META, [post])).find("channel/item")
    assert item.findtext("title") == one_line
    assert item.findtext(CONTENT) == clean_content
    assert item.findtext("description") == f"<b>{nasty}</b>\r"
    assert [c.text for c in item.findall("category")] == [one_line, "x y"]
    assert item.findtext("author") == f"a&b@example.org ({one_line})"
    assert [c.text for c in item.findall(DC)] == ["<Bob>"]
    assert item.find("source").get("url") == "https://source.example/feed?x=1&y=2"
    assert item.findtext("source") == one_line


def test_guid_is_stable_when_the_post_changes(posts: list[Post]) -> None:
    post = posts[5]
    changed = replace(
        post,
        title="A new title",
        link="https://elsewhere.example/",
        published=post.published - timedelta(days=400),
        updated=post.updated + timedelta(days=1),
        content="<p>rewritten</p>",
    )
    guid = post_guid(SITE, post.id)
    for p in (post, changed):
        assert etree.fromstring(render_rss(META, [p])).findtext("channel/item/guid") == guid
        assert etree.fromstring(render_atom(META, [p])).findtext(f"{A}entry/{A}id") == guid
        assert json.loads(render_json(META, [p]))["items"][0]["id"] == guid
    assert guid == f"tag:finews.example.com,2022:posts/{post.id}"
    # a site under a path: the path is part of the id (two sites on one host stay apart)
    assert post_guid("https://finews.example.com/news/", post.id) == f"tag:finews.example.com,2022:news/posts/{post.id}"


def test_json_feed(posts: list[Post]) -> None:
    data = render_json(META, posts)
    assert "张掖日报".encode() in data  # ensure_ascii=False
    feed = json.loads(data)
    validator = jsonschema.Draft7Validator(
        json.loads(JSONFEED_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker()
    )
    assert [e.message for e in validator.iter_errors(feed)] == []
    assert list(feed)[:4] == ["version", "title", "home_page_url", "feed_url"]
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == f"{SITE}category/zhangyeribao.json"
    assert feed["hubs"] == [{"type": "WebSub", "url": "https://hub.example.net/"}]
    assert "authors" not in feed  # every item without its own would be credited to this site
    items = feed["items"]
    assert [i["id"] for i in items] == [post_guid(SITE, p.id) for p in posts]
    assert items[0]["date_published"] == "2024-03-01T12:00:00Z"
    assert items[0]["_source"] == {
        "title": "来源 0",
        "url": "https://source.example/feed.xml",
        "home_page_url": "https://source.example/",
    }
    assert items[1]["attachments"] == [
        {"url": "https://cdn.example.com/b/1.ogg", "mime_type": "application/octet-stream"},
        {"url": "https://cdn.example.com/b/1.mp4", "mime_type": "video/mp4", "size_in_bytes": 999},
    ]
    assert items[3]["attachments"][0]["url"] == "https://cdn.example.com/%E5%9B%BE%E7%89%87/3.jpg"
    assert items[2]["tags"] == ["tech", "<script>", "badtag"]
    assert items[2]["authors"] == [{"name": "Alice", "url": "https://alice.example/"}, {"name": "Bob"}]
    assert "\x01" not in items[1]["summary"] and items[1]["summary"] == "Summary 1 & more"
    assert all("content_html" in i for i in items)


def test_json_feed_bytes(posts: list[Post]) -> None:
    """Compact JSON, the bytes the json module writes too. A length beyond 64 bits, which
    readers cannot hold (nor orjson write), is left out as unknown; the largest is kept."""
    data = render_json(META, posts)
    assert data == json.dumps(json.loads(data), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    for length, size in ((10**30, None), (2**63, None), (2**63 - 1, 2**63 - 1)):
        huge = replace(
            posts[0], enclosures=(Enclosure("https://cdn.example.com/big.iso", "application/x-iso", length),)
        )
        feed = json.loads(render_json(META, [huge]))
        assert feed["items"][0]["attachments"][0].get("size_in_bytes") == size


ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"


def test_an_episode_duration_is_published_in_rss_and_json_feed(posts: list[Post]) -> None:
    """A stored duration reached no reader: JSON Feed gives it to its attachment, RSS to its
    item (itunes:duration, of the one enclosure RSS writes), Atom has no place for it."""
    episode = replace(
        posts[0],
        enclosures=(
            Enclosure("https://cdn.example.com/ep.jpg", "image/jpeg"),
            Enclosure("https://cdn.example.com/ep.mp3", "audio/mpeg", 5000, 3723),
        ),
    )
    untimed = replace(posts[1], id=_id(99), enclosures=(Enclosure("https://cdn.example.com/x.mp3", "audio/mpeg", 7),))
    feed = json.loads(render_json(META, [episode, untimed]))
    assert [i.get("attachments") for i in feed["items"]] == [
        [
            {"url": "https://cdn.example.com/ep.jpg", "mime_type": "image/jpeg"},
            {
                "url": "https://cdn.example.com/ep.mp3",
                "mime_type": "audio/mpeg",
                "size_in_bytes": 5000,
                "duration_in_seconds": 3723,
            },
        ],
        [{"url": "https://cdn.example.com/x.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 7}],
    ]
    data = render_rss(META, [episode, untimed])
    timed_item, untimed_item = etree.fromstring(data).find("channel").findall("item")
    assert timed_item.find("enclosure").get("url") == "https://cdn.example.com/ep.mp3"
    assert timed_item.findtext(f"{ITUNES}duration") == "3723"
    assert untimed_item.find(f"{ITUNES}duration") is None
    assert b"itunes" not in render_atom(META, [episode])
    # a feed without durations declares no namespace it does not use: its bytes stay as they were
    assert b"xmlns:itunes" not in render_rss(META, [untimed])


def test_duplicate_ids_are_written_once(posts: list[Post]) -> None:
    doubled = [posts[0], posts[1], posts[0]]
    assert len(etree.fromstring(render_atom(META, doubled)).findall(f"{A}entry")) == 2
    assert len(json.loads(render_json(META, doubled))["items"]) == 2


def test_write_if_changed(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "feed.atom"
    assert write_if_changed(path, b"one") is True
    assert path.read_bytes() == b"one"
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert write_if_changed(path, b"one") is False
    assert path.stat().st_mtime_ns == 1_000_000_000_000_000_000
    assert write_if_changed(path, b"two!") is True
    assert path.read_bytes() == b"two!"
    assert path.stat().st_mtime_ns != 1_000_000_000_000_000_000
    assert write_if_changed(path, b"") is True and path.read_bytes() == b""
    assert sorted(p.name for p in path.parent.iterdir()) == ["feed.atom"]  # no temp files
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the process creates


def test_write_if_changed_leaves_no_temp_file_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "feed.rss"
    path.write_bytes(b"old")

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_if_changed(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.rss"]


def test_a_category_s_three_feeds_change_together_or_not_at_all_on_a_full_disk(tmp_path: Path) -> None:
    """Written one by one, a publish that ran out of disk space left the Atom feed new and
    the RSS and JSON feeds old (and a retry 30 s later, on a disk still full, kept them so):
    readers of one format saw posts the others did not have. All three are written in full
    before any replaces its old version."""
    from .reliability.conftest import fill, tmpfs

    with tmpfs(tmp_path / "disk", "1m") as disk:
        files = {disk / f"tech.{ext}": f"old {ext}".encode() for ext in ("atom", "rss", "json")}
        assert atomic.write_all_if_changed(files) == [True, True, True]
        new = {path: (b"%s " % path.suffix.encode()) * 3000 for path in files}  # ~15 KB each
        filler = fill(disk, leave=24 * 1024)  # room for the first new file, not for all three
        with pytest.raises(OSError) as raised:
            atomic.write_all_if_changed(new)
        assert raised.value.filename in {str(p) for p in files}  # the error says which file
        assert {p: p.read_bytes() for p in files} == files, "a feed changed while the others could not"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "tech.atom", "tech.json", "tech.rss"]
        filler.unlink()
        assert atomic.write_all_if_changed({**new, disk / "tech.rss": files[disk / "tech.rss"]}) == [True, False, True]
        assert atomic.write_all_if_changed(new) == [False, True, False]
        assert {p: p.read_bytes() for p in files} == new


# ------------------------------------------------------------------------------ excerpts

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# Where a line of text ends: the text on either side of these tags is two words.
_BREAKS = re.compile(
    r"<(?=/?(?:h[1-6]|p|br|hr|div|blockquote|pre|address|article|section|aside|header|footer|ul|ol|li|dl|dt|dd"
    r"|table|caption|tr|th|td|figure|figcaption|details|summary|img)[\s/>])",
    re.I,
)


def _lxml_text(fragment: str) -> str:
    """What an excerpt reads: the text lxml's HTML parser finds, with a space before each
    tag that ends a line of text, whitespace collapsed."""
    fragment = _NOT_XML.sub("", fragment)
    if not fragment.strip():
        return ""
    fragment = _BREAKS.sub(" <", fragment)
    try:
        text = lxml.html.fragment_fromstring(fragment, create_parent="div").text_content()
    except AssertionError:  # "<html>x": no <body>; the excerpt strips the tags instead
        text = re.sub(r"<[^>]*>", " ", fragment)
    except etree.ParserError:  # "<!doctype html></mi>": lxml finds no document, so no text
        return ""
    return " ".join(_NOT_XML.sub("", text).split())


_PIECES = [
    "word", " ", "  ", "\n", "\t", "\r\n", "张掖日报", "🎉", "é", "\xa0", "\u3000", "\x85", "\ufeff",
    "&amp;", "&lt;", "&gt;", "&quot;", "&nbsp;", "&#39;", ">", "'", '"', "=", ";",
    "<p>", "</p>", "<br>", "<br/>", "<P class=\"x\">", "<div>", "</div>", "<a href=\"https://x/?a=1&amp;b=2\">",
    "</a>", '<img alt="a>b" src="x">', "<b>", "</b>", "<pre>", "</pre>", "<td >", "</li >", "<table>", "<tr>",
    "<ul><li>", "</li></ul>", "<h2>", "</h2>", "<blockquote>", "</blockquote>", "<figcaption>", "<hr>",
    '<math display="block">', "</math>", "<mi>", "</mi>", '<mo stretchy="false">', "</mo>", "<mfrac>", "</mfrac>",
    '<mspace width="1em"></mspace>', "<semantics>", "</semantics>", "<mtd>", "</mtr>",
]  # fmt: skip
_HOSTILE = [
    "<!-- c -->", "<![CDATA[x]]>", "<?pi?>", "< x", "<3", "</>", "<script>a<b</script>", "<style>p{}</style>",
    "<title>t</title>", "<textarea>t</textarea>", "<iframe>x</iframe>", "<html>", "<body>", "<head>", "<svg>",
    "&apos;", "&hellip;", "&amp", "&notit;", "&#0;", "&#x41;", "& ", "<a b='c'>", "<a b=c>", '<a b="c>',
    "\x00", "\x0b", "\ud800", "\uffff", "<!doctype html>",
]  # fmt: skip


def _fragments(seed: int, count: int, pieces: list[str]) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(count)]


@pytest.mark.parametrize("hostile", [False, True], ids=["sanitizer-shaped", "anything"])
def test_excerpts_read_what_lxml_reads(hostile: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """An excerpt reads sanitizer-shaped HTML without parsing it, and only as far as it needs:
    it must read exactly the text lxml's HTML parser finds, and anything else goes to lxml."""
    fragments = _fragments(7, 1500, _PIECES + _HOSTILE if hostile else _PIECES)
    if not hostile:
        fragments += [sanitize_html(f, "https://example.org/") for f in _fragments(8, 300, _PIECES + _HOSTILE)]

        def no_parse(fragment: str) -> str:
            raise AssertionError(f"sanitizer-shaped HTML was parsed: {fragment!r}")

        monkeypatch.setattr(feeds, "_parsed_text", no_parse)
    for fragment in fragments:
        text = _lxml_text(fragment)
        assert html_excerpt(fragment, 10**9) == text, fragment
        for limit in (3, 12, 40):  # read partway: the same as cutting the whole text
            assert html_excerpt(fragment, limit) == html_excerpt(html.escape(text, quote=False), limit), fragment


def test_long_content_excerpt() -> None:
    body = "<p>" + " ".join(f"word{i} &amp; more" for i in range(20_000)) + "</p><!-- the end -->"
    excerpt = html_excerpt(body)
    assert excerpt.startswith("word0 & more word1 & more") and excerpt.endswith("…")
    assert len(excerpt) <= 201
    # lxml finds no single <body> in these, and the tags are stripped instead, leaving spaces:
    # a tag far past the excerpt's end changes its beginning
    assert html_excerpt("<html>x") == "x"
    assert html_excerpt("x<b>y</b>zzzzzz</body><body>", 4) == "x y…" == html_excerpt("x y zzzzzz", 4)


def test_plain_uris_are_taken_as_they_are() -> None:
    """Most links are already plain URIs and skip the URL parsing; the rest must not."""
    plain = [
        "https://example.org/articles/1?a=1&b=2#top",
        "http://a.example:8080/x/%E6%96%B0;p=1/~u/?q=a/b?c",
        "https://news.example.cn/a_b-c.d/(1)!$'*+,:@=",
        "http://h",
        "http://h?x",
    ]
    normalized = [
        "HTTPS://Example.org/",  # scheme and host lowercased
        "http://a.example:0080/",  # port read as a number
        "http://a.example:99999/",  # no such port: dropped
        "https://example.org/a?",  # empty query dropped
        "https://example.org/a#",
        "https://example.org/a#b#c",  # second "#" escaped
        "https://example.org/%zz/ x",  # bad escape, space
        "https://例子.测试/路径",  # IDN host, IRI path
        "https://user:pw@example.org/",
        "https://[::1]:8080/",
        "https://-bad-.example/",
        "https://Feeds.example.org./x",  # a fully qualified name
        "ftp://example.org/",
        "https://example.org/\x00",
    ]
    for url in plain:
        assert feeds._PLAIN_URI.fullmatch(url), url
        assert feeds._normalized_uri(url, feeds._WEB) == url
    for url in normalized:
        assert not feeds._PLAIN_URI.fullmatch(url), url
        assert feeds.feed_uri(url) == feeds._normalized_uri(url, feeds._WEB)
    assert feeds.feed_uri("HTTPS://Example.org/") == "https://example.org/"
    assert feeds.feed_uri("http://a.example:0080/") == "http://a.example:80/"
    assert feeds.feed_uri("https://example.org/a#b#c") == "https://example.org/a#b%23c"
    assert feeds.feed_uri("https://Feeds.example.org./x") == "https://feeds.example.org./x"  # its dot kept
    assert feeds.feed_uri("https://-bad-.example/") is None


def test_content_without_a_summary_is_not_published_twice(tmp_path: Path) -> None:
    """An Atom entry with only <content> (feedparser copies it into the summary too) is
    republished with its content once, and our plain-text excerpt as the summary."""
    from .conftest import StaticServer, run_cli

    body = "<p>The full article, " + "with many words " * 30 + "and a <b>bold</b> end.</p>"
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "only-content.atom").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Only content</title><id>urn:oc</id><updated>2024-03-01T00:00:00Z</updated>"
        "<entry><title>One</title><id>urn:oc:1</id><link href='https://oc.example/1'/>"
        f"<updated>2024-03-01T00:00:00Z</updated><content type='html'>{html.escape(body)}</content></entry>"
        "</feed>",
        encoding="utf-8",
    )
    server = StaticServer(tmp_path / "www")
    try:
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
            f"      - url: {server.url('only-content.atom')}\n",
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    out = tmp_path / "public" / "category"
    entry = etree.parse(str(out / "c.atom")).find(f"{A}entry")
    assert "and a <b>bold</b> end." in entry.findtext(f"{A}content")
    summary = entry.find(f"{A}summary")
    assert summary.get("type") == "text" and "<b>" not in summary.text and summary.text.startswith("The full article")
    item = etree.parse(str(out / "c.rss")).find("channel/item")
    assert "<b>bold</b>" in item.findtext(CONTENT) and "<b>" not in item.findtext("description")
    assert (out / "c.atom").read_text(encoding="utf-8").count("&lt;b&gt;bold&lt;/b&gt; end.") == 1


def test_excerpts_keep_words_apart_at_block_boundaries(tmp_path: Path, corpus_server) -> None:
    """A real feed whose posts are headings and paragraphs (`<h3>Your Favorite Virtue</h3>
    <p>Empathy.</p>`): every excerpt a reader or visitor sees (RSS description, Atom
    summary, JSON Feed summary, the category page, the post page's description) keeps the
    words of two blocks apart. lxml's text_content() ran them together ("VirtueEmpathy.")."""
    from .conftest import fetch_one_feed

    out = fetch_one_feed(tmp_path, corpus_server.url("kagi/fastfeedparser__benchmark_data_1464cc512ecc7ddd.xml"))
    item = next(
        i
        for i in json.loads((out / "category" / "c.json").read_bytes())["items"]
        if i["title"] == "Proust questionnaire"
    )
    assert "Your Favorite Virtue Empathy. Your Favorite Qualities" in item["summary"]
    rss = etree.parse(str(out / "category" / "c.rss")).find("channel/item[title='Proust questionnaire']")
    assert "Virtue Empathy." in rss.findtext("description")
    atom = etree.parse(str(out / "category" / "c.atom")).xpath(
        "//a:entry[a:title='Proust questionnaire']/a:summary", namespaces={"a": A[1:-1]}
    )[0]
    assert "Virtue Empathy." in atom.text
    page = (out / "category" / "c.html").read_text(encoding="utf-8")
    assert "Virtue Empathy." in page and "VirtueEmpathy" not in page
    post = next(p for p in (out / "posts").rglob("*.html") if "<title>Proust questionnaire" in p.read_text("utf-8"))
    assert (
        'content="Thank you for sharing the questionnaire Zachary Kai! If you want to participate check out the link'
        in (description := post.read_text("utf-8"))
    )
    assert "the link Your Favorite Virtue Empathy. Your Favorite" in description


def test_an_excerpt_that_spells_out_markup_is_text_in_every_html_field(tmp_path: Path) -> None:
    """A post that writes about `<script>` and `<b>` as text: RSS <description> carried our
    plain-text excerpt escaped only once, so readers, which take it as HTML, decoded a live
    `<script>` (dropped by feedparser, the words with it) and a `<b>` (shown bold). Now
    every field a reader reads as HTML holds the words as text; the plain-text ones hold them as written."""
    import feedparser

    from .conftest import check_feeds, fetch_feed_text

    spelled = "Never write <script>alert(1)</script> or <b>x</b>"
    content = f"<p>{html.escape(spelled, quote=False)}</p>"
    out = fetch_feed_text(
        tmp_path,
        "spelled.atom",
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Spelled</title><id>urn:sp</id><updated>2024-03-01T00:00:00Z</updated>"
        "<entry><title>Markup</title><id>urn:sp:1</id><link href='https://sp.example/1'/>"
        f"<updated>2024-03-01T00:00:00Z</updated><content type='html'>{html.escape(content)}</content></entry>"
        "</feed>",
    )

    def shown(fragment: str) -> tuple[str, list[str]]:
        """What a reader rendering `fragment` as HTML shows, and the elements it builds."""
        div = lxml.html.fragment_fromstring(fragment, create_parent="div")
        return div.text_content(), [el.tag for el in div.iterdescendants()]

    rss = etree.parse(str(out / "category" / "c.rss")).find("channel/item")
    assert shown(rss.findtext("description")) == (spelled, [])
    assert shown(rss.findtext(CONTENT)) == (spelled, ["p"])
    (item,) = feedparser.parse((out / "category" / "c.rss").read_bytes()).entries
    assert shown(item.summary) == (spelled, [])  # was 'Never write  or <b>x</b>'
    entry = etree.parse(str(out / "category" / "c.atom")).find(f"{A}entry")
    assert entry.find(f"{A}summary").get("type") == "text" and entry.findtext(f"{A}summary") == spelled
    assert shown(entry.findtext(f"{A}content")) == (spelled, ["p"])
    (json_item,) = json.loads((out / "category" / "c.json").read_bytes())["items"]
    assert json_item["summary"] == spelled and shown(json_item["content_html"]) == (spelled, ["p"])
    page = lxml.html.fromstring((out / "category" / "c.html").read_bytes())
    assert page.findtext(".//p[@class='excerpt']") == spelled
    (post,) = (out / "posts").rglob("*.html")
    doc = lxml.html.fromstring(post.read_bytes())
    assert doc.find(".//meta[@name='description']").get("content") == spelled
    assert not doc.xpath("//script") and not doc.xpath("//b")
    checked = check_feeds(out, readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_empty_feed_is_dated_since_it_has_been_empty_not_1970(tmp_path: Path) -> None:
    """A category with no posts (and the all-posts feeds before any post) said
    `<updated>1970-01-01T00:00:00+00:00</updated>` (RSS: lastBuildDate 1970): readers showed
    a feed last updated in 1970. Now they give the time the publisher first found them empty,
    kept in the database, so that later publishes (a forced one too) leave their bytes alone."""
    from .conftest import StaticServer, check_feeds, run_cli

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "one.atom").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>One</title><id>urn:one</id><updated>2024-03-01T00:00:00Z</updated>"
        "<entry><title>One</title><id>urn:one:1</id><link href='https://one.example/1'/>"
        "<updated>2024-03-01T00:00:00Z</updated><content type='html'>Text</content></entry>"
        "</feed>",
        encoding="utf-8",
    )
    out = tmp_path / "public"

    def dates(name: str) -> tuple[datetime, datetime]:
        atom = etree.parse(str(out / f"{name}.atom")).findtext(f"{A}updated")
        rss = etree.parse(str(out / f"{name}.rss")).findtext("channel/lastBuildDate")
        return datetime.fromisoformat(atom), datetime.strptime(rss, "%a, %d %b %Y %H:%M:%S %z")

    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for name in ("feed", "category/e") for p in out.glob(f"{name}.*")}

    server = StaticServer(tmp_path / "www")
    try:
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: E\n    sources: []\n",
            encoding="utf-8",
        )
        before = datetime.now(UTC).replace(microsecond=0)
        result = run_cli("--config", str(cfg), "publish")  # nothing fetched: the all-posts feeds are empty too
        after = datetime.now(UTC)
        assert result.returncode == 0, result.stdout + result.stderr
        for name in ("feed", "category/e"):
            atom, rss = dates(name)
            assert before <= atom == rss <= after, name  # was 1970-01-01
        first = files()
        checked = check_feeds(out, readers=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        (out / "category" / "e.html").unlink()  # the category is rebuilt from scratch
        cfg.write_text(
            cfg.read_text("utf-8") + f"  - name: C\n    sources:\n      - url: {server.url('one.atom')}\n",
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    now = files()
    assert {k: now[k] for k in ("e.atom", "e.rss", "e.json")} == {k: first[k] for k in ("e.atom", "e.rss", "e.json")}
    assert dates("feed")[0] == datetime(2024, 3, 1, tzinfo=UTC)  # a post: the newest post's date again
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stdout + result.stderr
    assert files() == now


@pytest.mark.parametrize(
    "words",
    [
        ["الأخبار،"] * 40,  # Arabic comma
        ["समाचार।"] * 40,  # Devanagari danda
        ["ዜና፣"] * 80,  # Ethiopic comma
        ["լուր։"] * 80,  # Armenian full stop
        ["ዜና፤"] * 80,  # Ethiopic semicolon
        ["သတင်း၊"] * 60,  # Burmese: a space after a phrase's stop, the cut lands on one
        ["သတင်း။"] * 60,
        ["ព័ត៌មាន។"] * 60,  # Khmer full stop
        ["བོད།"] * 80,  # Tibetan shad
    ],
)
def test_an_excerpt_cut_after_a_scripts_own_punctuation_ends_on_the_word(words):
    """An excerpt cut after a word's comma or full stop drops it before its `…` (`news…`, not
    `news,…`): only Latin and CJK punctuation was dropped; an Arabic excerpt ended `،…`."""
    excerpt = html_excerpt("<p>" + " ".join(words) + "</p>")
    assert excerpt.endswith(words[0][:-1] + "…"), excerpt
