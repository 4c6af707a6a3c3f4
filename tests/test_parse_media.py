"""Media RSS captions and the entry's own text, on both parse paths, over real corpus feeds.

A `media:description` describes a photo or a video. feedparser read one that followed an
item's `<description>` as a second description, which it makes the content: ABC News's
image captions were published as the body of every post, the article's text only as its
summary. Each test parses the corpus file with the fast path (`parse_feed`, which takes it:
asserted) and with feedparser (`parse_feedparser`); both must give what a reader expects.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import lxml.html
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator.models import NORMALIZER_VERSION, Source
from aggregator.normalize import normalize
from aggregator.parse import parse_feed, parse_feedparser
from aggregator.parse_fast import parse_fast

from .conftest import CORPUS, fetch_corpus_file

NOW = datetime(2030, 1, 1, tzinfo=UTC)
MEDIA = "http://search.yahoo.com/mrss/"
ABC = "kagi/fastfeedparser__benchmark_data_5357198db71ce075.xml"
PICASA = "speedparser2011/speedparser__feeds_0034.dat.xml"
SLIDESHARE = "speedparser2011/speedparser__feeds_0098.dat.xml"
CAPTION_FIRST = "kagi/fastfeedparser__benchmark_data_08f1ee71883dbcde.xml"  # media:description, then description
# feeds whose entries' only text is a media:description (YouTube's Atom, photo feeds)
CAPTION_ONLY = [
    "feedparser-tests/wellformed/media-rss/media_group.xml",
    "kagi/fastfeedparser__benchmark_data_1e4ab389e139d659.xml",
    "kagi/fastfeedparser__benchmark_data_3597ad3b5fc7ebdd.xml",
    "suites/rss-parser__test_input_atom-customfields.atom",
]
PARSERS = pytest.mark.parametrize("parser", [parse_feed, parse_feedparser], ids=["fast", "feedparser"])
# A Mastodon account's RSS as Mastodon 4 writes it (app/views/accounts/show.rss.ruby, FormattingHelper's
# rss_content_preroll, RSS::MediaContent): a content warning leads the description, `<p><strong>Content
# warning:</strong>…</p><hr />`, and each picture is a media:content, its alt text its media:description.
MASTODON_PHOTO = "https://files.mastodon.example/media_attachments/files/113/550/001/original/a.jpg"
MASTODON_NO_ALT = "https://files.mastodon.example/media_attachments/files/113/550/003/original/c.jpg"
MASTODON_STILL = "https://files.mastodon.example/media_attachments/files/113/550/002/original/b.png"
MASTODON = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:webfeeds="http://webfeeds.org/rss/1.0" xmlns:media="http://search.yahoo.com/mrss/">
  <channel>
    <title>Jane Doe</title>
    <description>Public posts from @jane@mastodon.example</description>
    <link>https://mastodon.example/@jane</link>
    <lastBuildDate>Sat, 28 Nov 2026 10:12:00 +0000</lastBuildDate>
    <generator>Mastodon v4.3.2</generator>
    <item>
      <guid isPermaLink="true">https://mastodon.example/@jane/113550000000000002</guid>
      <link>https://mastodon.example/@jane/113550000000000002</link>
      <pubDate>Sat, 28 Nov 2026 10:12:00 +0000</pubDate>
      <description>&lt;p&gt;&lt;strong&gt;Content warning:&lt;/strong&gt;Spoilers for the finale&lt;/p&gt;\
&lt;hr /&gt;&lt;p&gt;The gardener did it.&lt;/p&gt;</description>
      <media:content url="{MASTODON_STILL}" type="image/png" fileSize="48213" medium="image">
        <media:rating scheme="urn:simple">adult</media:rating>
        <media:description type="plain">The last scene: the gardener holding a trowel &amp; smiling &lt;3\
</media:description>
      </media:content>
    </item>
    <item>
      <guid isPermaLink="true">https://mastodon.example/@jane/113550000000000001</guid>
      <link>https://mastodon.example/@jane/113550000000000001</link>
      <pubDate>Fri, 27 Nov 2026 08:00:00 +0000</pubDate>
      <description>&lt;p&gt;Our new garden&lt;/p&gt;</description>
      <media:content url="{MASTODON_PHOTO}" type="image/jpeg" fileSize="123456" medium="image">
        <media:rating scheme="urn:simple">nonadult</media:rating>
        <media:description type="plain">Three raised beds of tomatoes
under a blue sky</media:description>
      </media:content>
      <media:content url="{MASTODON_NO_ALT}" type="image/jpeg" fileSize="9999" medium="image">
        <media:rating scheme="urn:simple">nonadult</media:rating>
      </media:content>
      <category>garden</category>
    </item>
  </channel>
</rss>
"""


def _parsed(rel: str, parser):
    """(parsed feed, its posts) of a corpus file, as fetched from a local URL."""
    body = (CORPUS / rel).read_bytes()
    url = "http://127.0.0.1:8000/" + rel
    headers = {"content-type": "application/xml"}
    if parser is parse_feed:
        assert parse_fast(body, url, headers) is not None  # the fast path is the one tested
    feed = parser(url, body, url, headers)
    return feed, normalize(Source(key=url, url=url), feed, NOW)


def _items(rel: str) -> list[tuple[str, str]]:
    """(own description, caption) of each item of an RSS corpus file, as written."""
    root = etree.parse(str(CORPUS / rel)).getroot()
    out = []
    for item in root.iter("item"):
        caption = item.find(f".//{{{MEDIA}}}description")
        out.append((item.findtext("description").strip(), caption.text.strip() if caption is not None else ""))
    return out


def _text(html: str) -> str:
    return lxml.html.fromstring(f"<div>{html}</div>").text_content().strip() if html else ""


@PARSERS
def test_an_image_caption_is_not_the_article_body(parser):
    """ABC News: each item's `<description>` (the article's text) is the post's body; the
    caption of its image (media:group/media:description) is neither the body nor the summary."""
    feed, posts = _parsed(ABC, parser)
    items = _items(ABC)
    assert len(posts) == len(items) == 25
    assert all(caption for _, caption in items) and any(text != caption for text, caption in items)
    for post, (text, caption) in zip(posts, items, strict=True):
        assert _text(post.content) == text and (caption in text or caption not in post.content)
        assert post.summary == ""  # the body is the summary: nothing else to keep
    for entry in feed.entries:
        assert "content" not in entry  # a caption is never content


@PARSERS
def test_an_album_description_is_not_replaced_by_its_caption(parser):
    """Picasa: each album's rich HTML description (thumbnail, date, "View Album") is the
    body; the album "Witch Prison" was published as those two words."""
    _, posts = _parsed(PICASA, parser)
    (witch,) = [p for p in posts if "Witch Prison" in (p.title + p.content)]
    assert "<table>" in witch.content and "View Album" in witch.content and "<img" in witch.content
    assert all("View Album" in p.content for p in posts)


@PARSERS
def test_a_description_after_a_caption_is_the_summary_not_the_caption(parser):
    """An item giving its media:group (with a caption) before its `<description>` and
    content:encoded: the description is its summary (excerpts, Atom summary), not the caption,
    and the content:encoded its body."""
    feed, posts = _parsed(CAPTION_FIRST, parser)
    items = _items(CAPTION_FIRST)
    assert len(posts) == len(items) and sum(bool(caption) for _, caption in items) == 19
    for post, entry, (text, caption) in zip(posts, feed.entries, items, strict=True):
        assert _text(post.summary) == _text(text) and (caption not in post.summary or caption in text)
        assert [c["type"] for c in entry["content"]] == ["text/html"]  # content:encoded alone


CAPTIONS = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>
<item><guid>1</guid><title>after</title><description>Own &lt;b&gt;text&lt;/b&gt;</description>
<media:group><media:description>Caption</media:description></media:group></item>
<item><guid>2</guid><title>before</title><media:group><media:description>Caption</media:description></media:group>
<description>Own &lt;b&gt;text&lt;/b&gt;</description></item>
<item><guid>3</guid><title>empty own</title><description></description>
<media:content url="http://e.org/a.jpg"><media:description>Caption</media:description></media:content></item>
<item><guid>4</guid><title>only</title><media:description>Caption</media:description></item>
<item><guid>5</guid><title>both levels</title><media:description>Caption</media:description>
<summary xmlns="http://www.w3.org/2005/Atom">Own &lt;b&gt;text&lt;/b&gt;</summary>
<media:description>Other</media:description></item>
</channel></rss>"""

CAPTION_ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
<title>t</title><id>urn:f</id><entry><id>urn:1</id><title>Video</title><summary>Own text</summary>
<media:group><media:title>Video</media:title><media:description>Caption</media:description></media:group></entry>
</feed>"""


@PARSERS
def test_a_caption_is_the_text_only_of_an_entry_with_none_of_its_own(parser):
    """Wherever the caption stands (before or after the entry's own text, in a media:group, a
    media:content or the item), the entry's own description or summary is its body; an entry
    with no text of its own (none, or an empty description) shows its caption."""
    url = "http://e.org/feed.xml"
    for body in (CAPTIONS, CAPTION_ATOM):
        assert parse_fast(body, url) is not None
    posts = normalize(Source(key=url, url=url), parser(url, CAPTIONS, url), NOW)
    assert {p.title: (p.content, p.summary) for p in posts} == {
        "after": ("Own <b>text</b>", ""),
        "before": ("Own <b>text</b>", ""),
        "empty own": ("Caption", ""),
        "only": ("Caption", ""),
        "both levels": ("Own <b>text</b>", ""),
    }
    (video,) = normalize(Source(key=url, url=url), parser(url, CAPTION_ATOM, url), NOW)
    assert (video.content, video.summary) == ("Own text", "")


@pytest.mark.parametrize("rel", CAPTION_ONLY)
@PARSERS
def test_a_caption_that_is_the_only_text_is_the_body(rel, parser):
    """YouTube's Atom entries (and photo feeds) have no text but their video's caption: it
    stays their body, shown as plain text."""
    feed, posts = _parsed(rel, parser)
    assert posts
    for post, entry in zip(posts, feed.entries, strict=True):
        root = etree.parse(str(CORPUS / rel)).getroot()
        captions = [el.text.strip() for el in root.iter(f"{{{MEDIA}}}description") if el.text and el.text.strip()]
        assert "content" not in entry
        assert entry["summary_detail"]["type"] == "text/plain" and entry["summary"] in captions
        assert _text(post.content).split() == entry["summary"].split()


@PARSERS
def test_an_html_summary_keeps_its_html_type(parser):
    """SlideShare: an item's `<description>` is HTML (a thumbnail, a line break, text) and its
    media:content's media:description `type="plain"`. The summary kept the description's
    value with the caption's type, so it was published escaped: `&lt;img src=…` in
    excerpts, the Atom summary and the JSON Feed summary."""
    feed, posts = _parsed(SLIDESHARE, parser)
    assert posts
    for post, entry in zip(posts, feed.entries, strict=True):
        assert entry["summary_detail"]["type"] == "text/html"
        assert entry["summary_detail"]["value"] == entry["summary"]
        assert post.summary.startswith("<img ") and "&lt;" not in post.summary


# ------------------------------------------------------------------ as a user runs it

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"


def _fetch(tmp_path: Path, httpserver: HTTPServer, rel: str) -> sqlite3.Connection:
    """`aggregator fetch` of a corpus file served over HTTP, into category `c`; its database."""
    fetch_corpus_file(tmp_path, httpserver, rel)
    con = sqlite3.connect(tmp_path / "aggregator.db")
    con.row_factory = sqlite3.Row
    return con


def _published(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Link → what each output shows of the post: JSON Feed content and summary, Atom
    content and summary, RSS description and content:encoded, the post page's body (text)."""
    public = tmp_path / "public"
    out: dict[str, dict[str, str]] = {}
    for item in json.loads((public / "category" / "c.json").read_bytes())["items"]:
        out.setdefault(item["url"], {}).update(json=item.get("content_html", ""), json_summary=item.get("summary", ""))
    for entry in etree.parse(str(public / "category" / "c.atom")).getroot().iter(f"{ATOM}entry"):
        link = entry.find(f"{ATOM}link[@rel='alternate']").get("href")
        out[link].update(
            atom=entry.findtext(f"{ATOM}content") or "", atom_summary=entry.findtext(f"{ATOM}summary") or ""
        )
    for item in etree.parse(str(public / "category" / "c.rss")).getroot().iter("item"):
        out[item.findtext("link")].update(
            rss=item.findtext("description") or "", rss_content=item.findtext(CONTENT) or ""
        )
    for page in (public / "posts").rglob("*.html"):
        doc = lxml.html.fromstring(page.read_bytes())
        link = doc.xpath("string(//a[@class='button'][starts-with(., 'Read the original')]/@href)")
        out[link]["page"] = doc.find(".//div[@class='content']").text_content().strip()
    return out


def _abc_items() -> dict[str, tuple[str, str]]:
    """Link → (description, caption) of each ABC News item, as written."""
    root = etree.parse(str(CORPUS / ABC)).getroot()
    return {
        item.findtext("link").strip(): (
            item.findtext("description").strip(),
            item.find(f".//{{{MEDIA}}}description").text.strip(),
        )
        for item in root.iter("item")
    }


def test_abc_news_over_http_publishes_the_article_text_not_the_caption(tmp_path, httpserver: HTTPServer):
    """ABC News served over HTTP, fetched and published: each post's body, in the JSON Feed,
    the Atom and RSS feeds and its own page, is the item's description; the image caption is
    nowhere in them."""
    con = _fetch(tmp_path, httpserver, ABC)
    items = _abc_items()
    published = _published(tmp_path)
    stored = {r["link"]: r for r in con.execute("SELECT link, content, summary FROM posts")}
    assert len(items) == len(stored) == 25
    for link, (text, caption) in items.items():
        shown = published[link]
        assert _text(stored[link]["content"]) == text
        for key in ("json", "atom", "rss_content", "page"):
            assert _text(shown[key]) == text, (key, link)
        assert text.startswith(_text(shown["rss"]).removesuffix("…"))  # RSS's description: an excerpt
        if caption not in text:
            assert not any(caption in value for value in shown.values()), link


def test_posts_an_older_version_stored_with_the_caption_are_refreshed_not_dated_as_edited(
    tmp_path, httpserver: HTTPServer
):
    """Posts the version before stored with the caption as their body are given their text at
    the next fetch of the unchanged feed, keeping their dates: readers must not see 25 old
    news stories as edited at once."""
    con = _fetch(tmp_path, httpserver, ABC)
    items = _abc_items()
    with con:  # as the version before stored them: the caption the body, the text the summary
        for link, (text, caption) in items.items():
            con.execute(
                "UPDATE posts SET content = ?, summary = ?, content_hash = 'older', normalized = ? WHERE link = ?",
                [escape(caption), escape(text), NORMALIZER_VERSION - 1, link],
            )
        con.execute("UPDATE sources SET body_hash = NULL, etag = NULL, last_modified = NULL")
    before = {r["link"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    _fetch(tmp_path, httpserver, ABC)
    after = {r["link"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    assert after.keys() == before.keys() == items.keys()
    for link, row in after.items():
        assert row["id"] == before[link]["id"] and row["normalized"] == NORMALIZER_VERSION
        assert _text(row["content"]) == items[link][0] and row["summary"] == ""
        assert (row["updated"], row["published"]) == (before[link]["updated"], before[link]["published"])
    published = _published(tmp_path)
    for link, (text, _caption) in items.items():
        assert _text(published[link]["json"]) == text and _text(published[link]["atom"]) == text


def test_slideshare_over_http_publishes_its_html_summary_as_html(tmp_path, httpserver: HTTPServer):
    """SlideShare's HTML description (a thumbnail, then text) beside a plain-text caption: its
    summary was published escaped, `&lt;img src=…` shown as text in the JSON Feed's summary
    and the Atom summary (and every excerpt)."""
    _fetch(tmp_path, httpserver, SLIDESHARE)
    published = _published(tmp_path)
    assert len([shown for shown in published.values() if "json" in shown]) == 3
    for shown in published.values():
        if "json" not in shown:
            continue
        for key in ("json_summary", "atom_summary", "json", "atom"):
            assert "<img" not in _text(shown[key]) and "&lt;" not in shown[key], (key, shown[key])
        assert shown["json_summary"] and shown["json_summary"] == shown["atom_summary"]


@PARSERS
def test_a_mastodon_pictures_alt_text_and_content_warning_are_kept(parser):
    """Mastodon writes a picture's alt text as its media:content's media:description: the
    picture was published with none (`alt=""` on its page), what its author wrote for those
    who cannot see it lost. It is the enclosure's description now, one line of plain text (a
    `<3` is text); a picture without one has none, and the alt is the caption of no post.
    The content warning Mastodon puts before the text stays, in view, before it; an untitled
    post's title, made of its first words, ran on from the warning into the text it warns of
    ("Content warning:Spoilers for the finale The gardener did it."): it is the warning's."""
    url = "http://127.0.0.1:8000/@jane.rss"
    body = MASTODON.encode()
    if parser is parse_feed:
        assert parse_fast(body, url, {}) is not None
    spoiler, garden = normalize(Source(key=url, url=url), parser(url, body, url), NOW)
    assert [(e.url, e.description) for e in garden.enclosures] == [
        (MASTODON_PHOTO, "Three raised beds of tomatoes under a blue sky"),
        (MASTODON_NO_ALT, None),
    ]
    assert [(e.url, e.description) for e in spoiler.enclosures] == [
        (MASTODON_STILL, "The last scene: the gardener holding a trowel & smiling <3")
    ]
    assert garden.content == "<p>Our new garden</p>" and garden.summary == spoiler.summary == ""
    assert spoiler.content == (
        "<p><strong>Content warning:</strong>Spoilers for the finale</p><hr><p>The gardener did it.</p>"
    )
    # untitled, it is named by the warning, not by the text behind it (shown in every list of posts)
    assert (spoiler.title, garden.title) == ("Content warning:Spoilers for the finale", "Our new garden")


def test_corpus_files_are_where_the_tests_expect():
    for rel in (ABC, PICASA, SLIDESHARE, CAPTION_FIRST, *CAPTION_ONLY):
        assert Path(CORPUS / rel).is_file(), rel
