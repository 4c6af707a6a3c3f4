"""Podcasts as a user runs them: a feed served over real HTTP, `aggregator fetch` into a real
SQLite file, the published feeds read back and checked by the strict validators and newsboat."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import lxml.html
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator.models import NORMALIZER_VERSION

from .conftest import check_feeds, run_cli

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM = "http://www.w3.org/2005/Atom"
SHOW = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="{ITUNES}">
<channel>
  <title>The Show</title>
  <link>https://show.example/</link>
  <description>A podcast</description>
  <itunes:image href="https://show.example/cover.jpg"/>
  <item>
    <title>Episode 2</title>
    <guid isPermaLink="false">ep2</guid>
    <pubDate>Tue, 02 Jan 2024 10:00:00 +0000</pubDate>
    <description>The second one.</description>
    <itunes:duration>1:02:03</itunes:duration>
    <enclosure url="https://show.example/ep2.mp3" type="audio/mpeg" length="2000"/>
  </item>
  <item>
    <title>Episode 1</title>
    <guid isPermaLink="false">ep1</guid>
    <pubDate>Mon, 01 Jan 2024 10:00:00 +0000</pubDate>
    <description>The first one.</description>
    <itunes:duration>45:30</itunes:duration>
    <enclosure url="https://show.example/ep1.mp3" type="audio/mpeg" length="1000"/>
  </item>
</channel>
</rss>
"""


def _fetch(tmp_path: Path, httpserver: HTTPServer, body: str, top: str = "") -> sqlite3.Connection:
    """`aggregator fetch` of `body`, served as /show.rss, into category `pods`; the database.
    `top`: more top-level lines of the config (`jekyll: {dir: jekyll}\\n`)."""
    httpserver.clear()
    httpserver.expect_request("/show.rss").respond_with_data(body.encode("utf-8"), content_type="application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site: {{title: T, url: 'https://t.example/'}}\n{top}"
        f"categories:\n  - name: pods\n    sources:\n      - url: {httpserver.url_for('/show.rss')}\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    con.row_factory = sqlite3.Row
    return con


def _published(tmp_path: Path) -> tuple[dict, etree._Element]:
    """The category's JSON Feed and RSS items, as written."""
    (json_path,) = (tmp_path / "public").rglob("pods.json")
    (rss_path,) = (tmp_path / "public").rglob("pods.rss")
    return json.loads(json_path.read_bytes()), etree.fromstring(rss_path.read_bytes())


def test_a_podcast_episode_duration_is_stored_and_republished(tmp_path, httpserver: HTTPServer):
    """`itunes:duration` was dropped on the way in: our JSON Feed and RSS gave podcast apps no
    episode lengths. Now each episode's sound carries it, in JSON Feed's `duration_in_seconds`
    and RSS's `itunes:duration`, and the feeds stay valid and readable."""
    con = _fetch(tmp_path, httpserver, SHOW)
    stored = {r["guid"]: json.loads(r["enclosures"]) for r in con.execute("SELECT guid, enclosures FROM posts")}
    assert stored == {
        "ep2": [{"url": "https://show.example/ep2.mp3", "type": "audio/mpeg", "length": 2000, "duration": 3723}],
        "ep1": [{"url": "https://show.example/ep1.mp3", "type": "audio/mpeg", "length": 1000, "duration": 2730}],
    }
    feed, rss = _published(tmp_path)
    sound = {"mime_type": "audio/mpeg"}
    assert [i["attachments"] for i in feed["items"]] == [
        [{"url": "https://show.example/ep2.mp3", **sound, "size_in_bytes": 2000, "duration_in_seconds": 3723}],
        [{"url": "https://show.example/ep1.mp3", **sound, "size_in_bytes": 1000, "duration_in_seconds": 2730}],
    ]
    items = rss.find("channel").findall("item")
    assert [i.findtext(f"{{{ITUNES}}}duration") for i in items] == ["3723", "2730"]
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_episode_page_plays_its_sound_and_gives_its_length(tmp_path, httpserver: HTTPServer):
    """An episode's page listed its sound as a bare link: the site's readers had to download
    it to hear it, and the length the feed gave was nowhere. The page now plays it in place
    (an `<audio>` element that loads nothing until played) and says how long it is."""
    import lxml.html

    _fetch(tmp_path, httpserver, SHOW).close()
    pages = {}
    for path in (tmp_path / "public" / "posts").rglob("*.html"):
        doc = lxml.html.fromstring(path.read_bytes())
        pages[doc.findtext(".//h1")] = doc.find(".//section[@class='attachments']")
    assert len(pages) == 2
    for section in pages.values():
        (audio,) = section.findall(".//audio")
        assert audio.get("controls") is not None and audio.get("preload") == "none"
        assert audio.get("src") == section.find(".//a").get("href")
    (ep2,) = [s for title, s in pages.items() if "2" in title]
    assert ep2.find(".//audio").get("src") == "https://show.example/ep2.mp3"
    assert "(audio/mpeg, 1:02:03)" in ep2.text_content()


def test_durations_an_upgrade_adds_are_not_shown_as_edits(tmp_path, httpserver: HTTPServer):
    """Posts an older version stored without durations gain them at the next fetch of the
    unchanged feed; readers must not see old episodes as updated, so their dates stay."""
    con = _fetch(tmp_path, httpserver, SHOW)
    with con:  # as the version before stored them: no durations, its hashes, its version mark
        for guid, enclosures in con.execute("SELECT guid, enclosures FROM posts").fetchall():
            old = [{k: v for k, v in e.items() if k != "duration"} for e in json.loads(enclosures)]
            con.execute(
                "UPDATE posts SET enclosures = ?, content_hash = 'older', normalized = ? WHERE guid = ?",
                [json.dumps(old), NORMALIZER_VERSION - 1, guid],
            )
        con.execute("UPDATE sources SET body_hash = NULL, etag = NULL, last_modified = NULL")
    before = {r["guid"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    (tmp_path / "public").rename(tmp_path / "public-before")
    _fetch(tmp_path, httpserver, SHOW)
    after = {r["guid"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    for guid, row in after.items():
        assert '"duration"' in row["enclosures"] and row["normalized"] == NORMALIZER_VERSION
        assert (row["updated"], row["published"]) == (before[guid]["updated"], before[guid]["published"])
    feed, _ = _published(tmp_path)
    assert [i["date_modified"] for i in feed["items"]] == ["2024-01-02T10:00:00Z", "2024-01-01T10:00:00Z"]
    assert all("duration_in_seconds" in i["attachments"][0] for i in feed["items"])


def test_the_show_cover_art_is_not_published_under_every_episode(tmp_path, httpserver: HTTPServer):
    """A show repeating its cover art as each episode's `itunes:image` had that image
    attached to every episode in our feeds and pages; an episode's own artwork still is."""
    body = SHOW.replace(
        '<guid isPermaLink="false">ep2</guid>',
        '<guid isPermaLink="false">ep2</guid><itunes:image href="https://show.example/cover.jpg"/>',
    ).replace(
        '<guid isPermaLink="false">ep1</guid>',
        '<guid isPermaLink="false">ep1</guid><itunes:image href="https://show.example/ep1.png"/>',
    )
    _fetch(tmp_path, httpserver, body)
    feed, rss = _published(tmp_path)
    assert [[a["url"] for a in i["attachments"]] for i in feed["items"]] == [
        ["https://show.example/ep2.mp3"],
        ["https://show.example/ep1.mp3", "https://show.example/ep1.png"],
    ]
    # the show's cover only as the category's own (its feeds' image: the RSS channel's
    # itunes:image and <image>, Atom's icon and logo, JSON Feed's icon), under no episode
    feeds = (".rss", ".atom", ".json")
    files = [p for p in (tmp_path / "public").rglob("*") if p.is_file() and p.suffix not in feeds]
    assert b"cover.jpg" not in b"".join(p.read_bytes() for p in files)
    assert "cover.jpg" not in json.dumps(feed["items"])
    (atom,) = (tmp_path / "public").rglob("pods.atom")
    entries = etree.fromstring(atom.read_bytes()).iter(f"{{{ATOM}}}entry")
    assert all(b"cover.jpg" not in etree.tostring(e) for e in entries)
    assert [i.get("href") for i in rss.iter(f"{{{ITUNES}}}image")] == [
        "https://show.example/cover.jpg",
        "https://show.example/ep1.png",
    ]
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


MEDIA = "http://search.yahoo.com/mrss/"
MEDIA_ART_SHOW = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="{ITUNES}" xmlns:media="{MEDIA}" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
  <title>The Show</title>
  <link>https://show.example/</link>
  <description>A podcast</description>
  <media:thumbnail url="https://show.example/thumb.jpg"/>
  <media:content url="https://show.example/art.png" medium="image" type="image/png"/>
  <atom:logo>https://show.example/logo.png</atom:logo>
  <item>
    <title>Episode 2</title>
    <guid isPermaLink="false">ep2</guid>
    <pubDate>Tue, 02 Jan 2024 10:00:00 +0000</pubDate>
    <enclosure url="https://show.example/ep2.mp3" type="audio/mpeg" length="2000"/>
    <itunes:image href="https://show.example/thumb.jpg"/>
    <media:thumbnail url="https://show.example/logo.png"/>
    <media:content url="https://show.example/art.png" medium="image" type="image/png"/>
  </item>
  <item>
    <title>Episode 1</title>
    <guid isPermaLink="false">ep1</guid>
    <pubDate>Mon, 01 Jan 2024 10:00:00 +0000</pubDate>
    <enclosure url="https://show.example/ep1.mp3" type="audio/mpeg" length="1000"/>
    <media:thumbnail url="https://show.example/ep1.jpg"/>
    <itunes:image href="https://show.example/art.png"/>
  </item>
</channel>
</rss>
"""

LOGO_SHOW = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:itunes="{ITUNES}" xmlns:media="{MEDIA}"
  xml:base="https://show.example/podcast/">
  <title>The Show</title>
  <id>urn:show</id>
  <updated>2024-01-02T10:00:00Z</updated>
  <link href="https://show.example/"/>
  <logo>https://show.example/logo.png</logo>
  <icon>/icon.png</icon>
  <entry>
    <title>Episode 2</title><id>urn:ep2</id><updated>2024-01-02T10:00:00Z</updated>
    <link rel="enclosure" href="https://show.example/ep2.mp3" type="audio/mpeg" length="2000"/>
    <itunes:image href="https://show.example/logo.png"/>
    <media:thumbnail url="https://show.example/icon.png"/>
  </entry>
  <entry>
    <title>Episode 1</title><id>urn:ep1</id><updated>2024-01-01T10:00:00Z</updated>
    <link rel="enclosure" href="https://show.example/ep1.mp3" type="audio/mpeg" length="1000"/>
    <media:thumbnail url="https://show.example/ep1.jpg"/>
  </entry>
</feed>
"""


@pytest.mark.parametrize("parser", ["fast", "feedparser"])
@pytest.mark.parametrize("body", [MEDIA_ART_SHOW, LOGO_SHOW], ids=["media-rss", "atom-logo"])
def test_the_show_art_as_media_or_logo_is_not_published_under_every_episode(
    tmp_path, httpserver: HTTPServer, monkeypatch, parser, body
):
    """A show's art given as the channel's `media:thumbnail` or `media:content medium="image"`,
    or as an Atom feed's `<logo>` or `<icon>`, and repeated as each episode's `itunes:image` or
    `media:thumbnail`, was attached to every episode as if it were the episode's own; it is
    the show's, as `itunes:image` and `<image>` already were. An episode's own art still is."""
    if parser == "feedparser":
        monkeypatch.setenv("AGGREGATOR_PARSER", "feedparser")  # read by the `aggregator` subprocess
    con = _fetch(tmp_path, httpserver, body)
    stored = {r["title"]: [e["url"] for e in json.loads(r["enclosures"])] for r in con.execute("SELECT * FROM posts")}
    assert stored == {
        "Episode 2": ["https://show.example/ep2.mp3"],
        "Episode 1": ["https://show.example/ep1.mp3", "https://show.example/ep1.jpg"],
    }
    feed, _ = _published(tmp_path)
    assert [[a["url"] for a in i["attachments"]] for i in feed["items"]] == [
        ["https://show.example/ep2.mp3"],
        ["https://show.example/ep1.mp3", "https://show.example/ep1.jpg"],
    ]
    for art in ("thumb.jpg", "art.png", "logo.png", "icon.png"):
        assert art.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "public").rglob("*") if p.is_file())


UNTYPED_RSS = SHOW.replace(' type="audio/mpeg" length="2000"', ' length="2000"')
UNTYPED_ATOM = LOGO_SHOW.replace(' type="audio/mpeg" length="2000"', ' length="2000"')


@pytest.mark.parametrize("parser", ["fast", "feedparser"])
@pytest.mark.parametrize("body", [UNTYPED_RSS, UNTYPED_ATOM], ids=["rss", "atom"])
def test_an_episode_whose_feed_gives_no_type_is_typed_by_its_file_name(
    tmp_path, httpserver: HTTPServer, monkeypatch, parser, body
):
    """An episode's sound given without a type: an Atom `<link rel="enclosure">` was
    republished as `text/html` (feedparser's default type of a link), in every feed and on
    its page; an RSS `<enclosure>` as `application/octet-stream`, and its page had no player.
    Now its type is guessed from its file name (`ep2.mp3`: `audio/mpeg`), and the page plays it."""
    import lxml.html

    if parser == "feedparser":
        monkeypatch.setenv("AGGREGATOR_PARSER", "feedparser")  # read by the `aggregator` subprocess
    assert 'ep2.mp3" length="2000"' in body  # no type given
    con = _fetch(tmp_path, httpserver, body)
    stored = {r["title"]: json.loads(r["enclosures"])[0]["type"] for r in con.execute("SELECT * FROM posts")}
    assert stored == {"Episode 2": "audio/mpeg", "Episode 1": "audio/mpeg"}
    feed, rss = _published(tmp_path)
    assert [i["attachments"][0]["mime_type"] for i in feed["items"]] == ["audio/mpeg", "audio/mpeg"]
    assert [e.get("type") for e in rss.iter("enclosure")] == ["audio/mpeg", "audio/mpeg"]
    (atom_path,) = (tmp_path / "public").rglob("pods.atom")
    links = etree.parse(str(atom_path)).iterfind(".//{http://www.w3.org/2005/Atom}link[@rel='enclosure']")
    assert [link.get("type") for link in links if link.get("href").endswith(".mp3")] == ["audio/mpeg", "audio/mpeg"]
    for path in (tmp_path / "public" / "posts").rglob("*.html"):
        section = lxml.html.fromstring(path.read_bytes()).find(".//section[@class='attachments']")
        assert section.find(".//audio") is not None and "(audio/mpeg" in section.text_content()
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_episode_whose_sound_has_no_length_keeps_it_as_its_rss_enclosure(tmp_path, httpserver: HTTPServer):
    """RSS carries one enclosure, and the one with a known length was taken: an episode whose
    sound came without a `length` (common) but with its artwork as a sized `media:content`
    was republished with the picture as its enclosure and no `itunes:duration`, so podcast
    apps had nothing to play. The sound (or video) is the RSS enclosure, length 0 if unknown."""
    body = SHOW.replace(f'xmlns:itunes="{ITUNES}"', f'xmlns:itunes="{ITUNES}" xmlns:media="{MEDIA}"').replace(
        '<enclosure url="https://show.example/ep2.mp3" type="audio/mpeg" length="2000"/>',
        '<enclosure url="https://show.example/ep2.mp3" type="audio/mpeg"/>'
        '<media:content url="https://show.example/ep2-art.jpg" medium="image" type="image/jpeg" fileSize="48213"/>',
    )
    _fetch(tmp_path, httpserver, body).close()
    feed, rss = _published(tmp_path)
    assert [[a["url"] for a in i["attachments"]] for i in feed["items"]][0] == [
        "https://show.example/ep2.mp3",
        "https://show.example/ep2-art.jpg",
    ]
    items = rss.find("channel").findall("item")
    assert [dict(i.find("enclosure").attrib) for i in items] == [
        {"url": "https://show.example/ep2.mp3", "length": "0", "type": "audio/mpeg"},
        {"url": "https://show.example/ep1.mp3", "length": "1000", "type": "audio/mpeg"},
    ]
    assert [i.findtext(f"{{{ITUNES}}}duration") for i in items] == ["3723", "2730"]
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_enclosure_length_no_reader_can_hold_is_published_as_unknown(tmp_path, httpserver: HTTPServer):
    """A source's enclosure `length` beyond 64 bits (a typo, junk) was republished as it came,
    as JSON Feed's `size_in_bytes` too: readers decoding it into a 64-bit integer (Miniflux,
    Go's `int64`; Swift's `Int`) refused the whole category feed, every other episode with it.
    Such a length is unknown now: no `size_in_bytes`, no Atom `length`, RSS's `length="0"`."""
    body = SHOW.replace('length="2000"', 'length="99999999999999999999999"')
    _fetch(tmp_path, httpserver, body).close()
    feed, rss = _published(tmp_path)
    assert [i["attachments"] for i in feed["items"]] == [
        [{"url": "https://show.example/ep2.mp3", "mime_type": "audio/mpeg", "duration_in_seconds": 3723}],
        [
            {
                "url": "https://show.example/ep1.mp3",
                "mime_type": "audio/mpeg",
                "size_in_bytes": 1000,
                "duration_in_seconds": 2730,
            }
        ],
    ]
    assert [e.get("length") for e in rss.iter("enclosure")] == ["0", "1000"]
    (atom_path,) = (tmp_path / "public").rglob("pods.atom")
    links = etree.parse(str(atom_path)).iterfind(".//{http://www.w3.org/2005/Atom}link[@rel='enclosure']")
    assert [link.get("length") for link in links] == [None, "1000"]
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


CAPITALIZED_SHOW = LOGO_SHOW.replace('rel="enclosure"', 'rel="Enclosure"').replace(
    'type="audio/mpeg"', 'type="Audio/MPEG"'
)


@pytest.mark.parametrize("parser", ["fast", "feedparser"])
def test_an_enclosure_whose_rel_and_type_are_capitalized_is_kept(tmp_path, httpserver: HTTPServer, monkeypatch, parser):
    """Link relations and media types are case-insensitive, and feedparser reads them so: an
    Atom `<link rel="Enclosure" type="Audio/MPEG">` was an episode to it, yet the fast path
    (the one feeds take when well-formed) dropped it: the episode reached no feed or page.
    Both read it now, and store the same type, so a post is not shown as edited when a feed
    is read by the other path."""
    if parser == "feedparser":
        monkeypatch.setenv("AGGREGATOR_PARSER", "feedparser")  # read by the `aggregator` subprocess
    assert 'rel="Enclosure" href="https://show.example/ep2.mp3" type="Audio/MPEG"' in CAPITALIZED_SHOW
    con = _fetch(tmp_path, httpserver, CAPITALIZED_SHOW)
    stored = {r["title"]: json.loads(r["enclosures"]) for r in con.execute("SELECT * FROM posts")}
    assert stored == {
        "Episode 2": [{"url": "https://show.example/ep2.mp3", "type": "audio/mpeg", "length": 2000}],
        "Episode 1": [
            {"url": "https://show.example/ep1.mp3", "type": "audio/mpeg", "length": 1000},
            {"url": "https://show.example/ep1.jpg", "type": "image/jpeg", "length": None},
        ],
    }
    _, rss = _published(tmp_path)
    assert [e.get("url") for e in rss.iter("enclosure")] == [
        "https://show.example/ep2.mp3",
        "https://show.example/ep1.mp3",
    ]


def test_an_episode_whose_type_is_no_media_type_is_typed_by_its_file_name(tmp_path, httpserver: HTTPServer):
    """An enclosure typed `mp3` (a file extension where a media type goes) was stored so and
    republished as `application/octet-stream`: its page had no player, and podcast apps that
    go by the type took it for no sound. It is typed by its file name, as an untyped one is."""
    import lxml.html

    body = SHOW.replace('type="audio/mpeg" length="2000"', 'type="mp3" length="2000"')
    con = _fetch(tmp_path, httpserver, body)
    stored = {r["title"]: json.loads(r["enclosures"])[0]["type"] for r in con.execute("SELECT * FROM posts")}
    assert stored == {"Episode 2": "audio/mpeg", "Episode 1": "audio/mpeg"}
    feed, rss = _published(tmp_path)
    assert [i["attachments"][0]["mime_type"] for i in feed["items"]] == ["audio/mpeg", "audio/mpeg"]
    assert [e.get("type") for e in rss.iter("enclosure")] == ["audio/mpeg", "audio/mpeg"]
    for path in (tmp_path / "public" / "posts").rglob("*.html"):
        assert lxml.html.fromstring(path.read_bytes()).find(".//audio") is not None


def test_an_episodes_own_art_reaches_podcast_apps_in_rss(tmp_path, httpserver: HTTPServer):
    """RSS has one enclosure, the episode's sound: the episode's own artwork (its
    `itunes:image`), which JSON Feed and Atom carry as attachments, was nowhere in our RSS,
    where podcast apps read episodes. It is the item's `itunes:image`, as podcast apps read
    an episode's art; an episode without art of its own has none."""
    body = SHOW.replace(
        '<guid isPermaLink="false">ep1</guid>',
        '<guid isPermaLink="false">ep1</guid><itunes:image href="https://show.example/ep1.png"/>',
    )
    _fetch(tmp_path, httpserver, body).close()
    _, rss = _published(tmp_path)
    items = rss.find("channel").findall("item")
    assert [i.find("enclosure").get("url") for i in items] == [
        "https://show.example/ep2.mp3",
        "https://show.example/ep1.mp3",
    ]
    assert [[a.get("href") for a in i.iter(f"{{{ITUNES}}}image")] for i in items] == [
        [],
        ["https://show.example/ep1.png"],
    ]
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_episodes_picture_is_its_json_feed_image(tmp_path, httpserver: HTTPServer):
    """JSON Feed 1.1 gives an item its main `image`: ours never had one, though the episode
    had its art (`itunes:image`) or a picture (an image enclosure, a media:thumbnail), so
    readers showed no picture for it. Now its first picture; an episode with none has none."""
    body = SHOW.replace(f'xmlns:itunes="{ITUNES}"', f'xmlns:itunes="{ITUNES}" xmlns:media="{MEDIA}"')
    body = body.replace(
        '<guid isPermaLink="false">ep1</guid>',
        '<guid isPermaLink="false">ep1</guid><itunes:image href="https://show.example/ep1.png"/>',
    )
    body = body.replace(
        "<item>\n    <title>Episode 2</title>",
        "<item>\n    <title>Extra</title><guid>x</guid>"
        '<media:thumbnail url="https://show.example/x-small.jpg"/></item>\n'
        "  <item>\n    <title>Episode 2</title>",
    )
    _fetch(tmp_path, httpserver, body).close()
    feed, _ = _published(tmp_path)
    images = {i["title"]: i.get("image") for i in feed["items"]}
    assert images == {
        "Extra": "https://show.example/x-small.jpg",
        "Episode 2": None,
        "Episode 1": "https://show.example/ep1.png",
    }
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_jekyll_post_of_an_episode_plays_it_and_of_a_photo_shows_it(tmp_path, httpserver: HTTPServer):
    """The Jekyll export kept an episode's description only: no player, no link to its sound
    (an episode often has no `<link>`), so the Jekyll site could not play it; a photo feed's
    post (its picture an enclosure, no text) was empty. They are given as the site's pages
    give them: a player per sound, each picture the content does not show, after the body;
    kramdown passes them as they are."""
    body = SHOW.replace(f'xmlns:itunes="{ITUNES}"', f'xmlns:itunes="{ITUNES}" xmlns:media="{MEDIA}"').replace(
        "<description>The first one.</description>",
        '<media:content url="https://show.example/photo.jpg" medium="image" type="image/jpeg"/>',
    )
    _fetch(tmp_path, httpserver, body, top="jekyll: {dir: jekyll}\n").close()
    posts = sorted((tmp_path / "jekyll" / "_posts").glob("*.md"))
    assert len(posts) == 2
    rendered = subprocess.run(
        ["ruby", "-e", KRAMDOWN, *map(str, posts)], capture_output=True, text=True, check=True
    ).stdout
    pages = [lxml.html.fragment_fromstring(page, create_parent="div") for page in json.loads(rendered).values()]
    ep1, ep2 = pages  # by file name: by date
    assert [a.get("src") for a in ep2.iter("audio")] == ["https://show.example/ep2.mp3"]
    assert "The second one." in ep2.text_content()
    assert [a.get("src") for a in ep1.iter("audio")] == ["https://show.example/ep1.mp3"]
    assert [i.get("src") for i in ep1.iter("img")] == ["https://show.example/photo.jpg"]
    assert all(a.get("controls") is not None and a.get("preload") == "none" for p in pages for a in p.iter("audio"))


KRAMDOWN = """
require "json"
require "kramdown"
require "kramdown-parser-gfm"
out = {}
ARGV.each do |path|
  body = File.read(path, encoding: "utf-8").sub(/\\A---\\n.*?\\n---\\n/m, "")
  out[path] = Kramdown::Document.new(body, input: "GFM", hard_wrap: false).to_html
end
puts JSON.generate(out)
"""


ARTE_LIKE = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="{MEDIA}">
<channel>
  <title>Videos</title>
  <link>https://tv.example/</link>
  <description>Replays</description>
  <item>
    <title>A film</title>
    <guid isPermaLink="false">film1</guid>
    <pubDate>Tue, 02 Jan 2024 10:00:00 +0000</pubDate>
    <description>Tonight's film.</description>
    <media:group>
      <media:content url="https://tv.example/film1.mp4" type="mp4" medium="video" fileSize="9000"/>
      <media:content url="https://tv.example/film1.jpg" type="jpg" medium="image"/>
    </media:group>
  </item>
</channel>
</rss>
"""


@pytest.mark.parametrize("parser", ["fast", "feedparser"])
def test_media_content_whose_type_is_no_media_type_is_typed_by_its_file_name(
    tmp_path, httpserver: HTTPServer, monkeypatch, parser
):
    """A Media RSS video typed `mp4` (a file extension where a media type goes, as ARTE's
    replay feed writes it) and its still typed `jpg` were left out, as if neither were an
    image, video or sound: the post had nothing to play or show. They are typed by their
    file names, as an untyped thumbnail is."""
    if parser == "feedparser":
        monkeypatch.setenv("AGGREGATOR_PARSER", "feedparser")  # read by the `aggregator` subprocess
    con = _fetch(tmp_path, httpserver, ARTE_LIKE)
    (row,) = con.execute("SELECT enclosures FROM posts")
    assert json.loads(row["enclosures"]) == [
        {"url": "https://tv.example/film1.mp4", "type": "video/mp4", "length": 9000},
        {"url": "https://tv.example/film1.jpg", "type": "image/jpeg", "length": None},
    ]
    _, rss = _published(tmp_path)
    assert [dict(e.attrib) for e in rss.iter("enclosure")] == [
        {"url": "https://tv.example/film1.mp4", "length": "9000", "type": "video/mp4"}
    ]


def _daily(*days: int, host: str = "daily.example") -> str:
    """A show whose episodes have no guid, no link and no description, each titled "Daily":
    one item per day (newest first), its sound `https://<host>/<day>.mp3`."""
    items = "".join(
        f"  <item>\n    <title>Daily</title>\n    <pubDate>{['Mon', 'Tue', 'Wed', 'Thu'][d - 1]}, 0{d} Jan 2024"
        f' 06:00:00 +0000</pubDate>\n    <enclosure url="https://{host}/{d}.mp3" type="audio/mpeg" length="1000"/>\n'
        "  </item>\n"
        for d in days
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n  <title>Daily</title>\n'
        f"  <link>https://daily.example/</link>\n  <description>Every day</description>\n{items}</channel>\n</rss>\n"
    )


def test_untitled_episodes_without_guid_or_link_are_each_a_post(tmp_path, httpserver: HTTPServer):
    """Entries with no guid and no link are identified by their title and content: a show's
    "Daily" episodes with no description were one post (three episodes in the feed, one
    stored), and the next day's episode replaced it as an edit. Their sound tells them apart:
    each is a post, in the database and the published feeds, and stays one at the next fetch."""
    con = _fetch(tmp_path, httpserver, _daily(3, 2, 1))
    assert con.execute("SELECT count(DISTINCT id) FROM posts").fetchone()[0] == 3
    con = _fetch(tmp_path, httpserver, _daily(4, 3, 2))
    rows = {json.loads(r["enclosures"])[0]["url"]: r["id"] for r in con.execute("SELECT * FROM posts")}
    assert sorted(rows) == [f"https://daily.example/{d}.mp3" for d in (1, 2, 3, 4)]
    feed, rss = _published(tmp_path)
    sounds = [f"https://daily.example/{d}.mp3" for d in (4, 3, 2, 1)]
    assert [i["attachments"][0]["url"] for i in feed["items"]] == sounds
    assert len({i["id"] for i in feed["items"]}) == 4
    assert [e.get("url") for e in rss.iter("enclosure")] == sounds
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_episode_stored_by_its_title_and_content_alone_keeps_its_id(tmp_path, httpserver: HTTPServer):
    """Episodes an older version stored under the hash of their title and content alone keep
    their ids (their pages, files and feed GUIDs): the stored post is the entry of its sound,
    else of its date (the show moved its sounds to another host); the episodes it hid come
    as new posts."""
    from aggregator.identity import ENCLOSED, post_id

    con = _fetch(tmp_path, httpserver, _daily(1))
    (row,) = con.execute("SELECT id, guid, source, published, updated FROM posts").fetchall()
    base = row["guid"].partition(ENCLOSED)[0]
    assert base != row["guid"]  # the identity of a new entry holds its sound
    old_id = post_id(row["source"], base)
    with con:  # as a version before 12 stored it: the hash of title and content as its identity
        con.execute(
            "UPDATE posts SET id = ?, guid = ?, normalized = ? WHERE id = ?",
            [old_id, base, NORMALIZER_VERSION - 1, row["id"]],
        )
        con.execute("DELETE FROM post_files")
        con.execute("UPDATE sources SET body_hash = NULL, etag = NULL, last_modified = NULL")
    (tmp_path / "public").rename(tmp_path / "public-before")
    con = _fetch(tmp_path, httpserver, _daily(2, 1))
    stored = {r["id"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    assert len(stored) == 2 and old_id in stored
    kept = stored[old_id]
    assert (kept["guid"], kept["published"], kept["updated"]) == (base, row["published"], row["updated"])
    assert json.loads(kept["enclosures"])[0]["url"] == "https://daily.example/1.mp3"
    # moved to another host, the same day's episode is still that post
    con = _fetch(tmp_path, httpserver, _daily(2, 1, host="cdn.daily.example"))
    stored = {r["id"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    assert len(stored) == 2 and json.loads(stored[old_id]["enclosures"])[0]["url"] == "https://cdn.daily.example/1.mp3"
    feed, _ = _published(tmp_path)
    assert any(i["id"].endswith(old_id) for i in feed["items"])
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _ids_by_day(con: sqlite3.Connection) -> dict[int, str]:
    """The stored posts' ids by the day of January 2024 they are of (`_daily`)."""
    return {int(r["published"][8:10]): r["id"] for r in con.execute("SELECT id, published FROM posts")}


def test_an_episode_gaining_its_sound_keeps_its_post_and_takes_no_other(tmp_path, httpserver: HTTPServer):
    """A show listing its "Daily" episodes oldest first, the newest published before its sound:
    when the sound came, the first episode listed (already a post of its own) took the
    soundless post's id, its own changing (its page, file and feed GUID), and the newest
    came as a new post. Each episode keeps its post."""
    con = _fetch(tmp_path, httpserver, _daily(1, 2))
    before = _ids_by_day(con)
    sound = '<enclosure url="https://daily.example/3.mp3" type="audio/mpeg" length="1000"/>'
    soundless = _daily(1, 2, 3).replace(sound, "")
    con = _fetch(tmp_path, httpserver, soundless)
    before |= _ids_by_day(con)
    assert sorted(before) == [1, 2, 3] and len(set(before.values())) == 3
    con = _fetch(tmp_path, httpserver, _daily(1, 2, 3))
    assert _ids_by_day(con) == before
    feed, _ = _published(tmp_path)
    assert sorted(i["id"][-16:] for i in feed["items"]) == sorted(before.values())


def test_a_soundless_post_an_older_version_stored_is_the_episode_of_its_date(tmp_path, httpserver: HTTPServer):
    """A "Daily" episode a version before 12 stored before its sound came (under the hash of
    its title and content alone, no enclosure): after the upgrade, the first episode listed,
    the next day's, took its id (readers saw the old post edited into the new episode, and
    the old one again as new). The episode of its date keeps it."""
    from aggregator.identity import ENCLOSED, post_id

    con = _fetch(tmp_path, httpserver, _daily(1))
    (row,) = con.execute("SELECT id, guid, source FROM posts").fetchall()
    base = row["guid"].partition(ENCLOSED)[0]
    old_id = post_id(row["source"], base)
    with con:  # as a version before 12 stored it, its sound not yet in the feed
        con.execute(
            "UPDATE posts SET id = ?, guid = ?, enclosures = '[]', normalized = ? WHERE id = ?",
            [old_id, base, NORMALIZER_VERSION - 1, row["id"]],
        )
        con.execute("DELETE FROM post_files")
        con.execute("UPDATE sources SET body_hash = NULL, etag = NULL, last_modified = NULL")
    con = _fetch(tmp_path, httpserver, _daily(2, 1))
    ids = _ids_by_day(con)
    assert sorted(ids) == [1, 2] and ids[1] == old_id
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_podcast_categorys_rss_has_the_shows_cover(tmp_path, httpserver: HTTPServer):
    """A podcast category's RSS had no channel `itunes:image`, which Apple requires of a
    podcast: apps showed it with no cover. Its one show's cover (the feed's channel image)
    is the channel's `itunes:image`; an episode's own art stays the item's. Its Atom and
    JSON Feed gave no cover at all: it is Atom's `icon` and `logo` (Miniflux reads `icon`,
    else `logo`), JSON Feed's `icon` and the RSS channel's `<image>`, which readers show."""
    cover = "https://show.example/cover.jpg"
    _fetch(tmp_path, httpserver, SHOW).close()
    feed, rss = _published(tmp_path)
    channel = rss.find("channel")
    assert [i.get("href") for i in channel.findall(f"{{{ITUNES}}}image")] == [cover]
    assert all(i.find(f"{{{ITUNES}}}image") is None for i in channel.findall("item"))
    assert [(i.findtext("url"), i.findtext("title"), i.findtext("link")) for i in channel.findall("image")] == [
        (cover, channel.findtext("title"), channel.findtext("link"))
    ]
    assert feed["icon"] == cover and "favicon" not in feed
    (atom_path,) = (tmp_path / "public").rglob("pods.atom")
    atom = etree.fromstring(atom_path.read_bytes())
    assert [atom.findtext(f"{{{ATOM}}}{k}") for k in ("icon", "logo")] == [cover, cover]
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _serve_two_shows(httpserver: HTTPServer) -> None:
    """`SHOW` at /a.rss, and at /b.rss another show of other episodes and another cover."""
    other = SHOW.replace("cover.jpg", "other-cover.jpg").replace("ep1", "o1").replace("ep2", "o2")
    httpserver.expect_request("/a.rss").respond_with_data(SHOW, content_type="application/rss+xml")
    httpserver.expect_request("/b.rss").respond_with_data(other, content_type="application/rss+xml")


def test_two_shows_in_a_category_take_its_configured_cover(tmp_path, httpserver: HTTPServer):
    """Two shows of different covers in one category: neither's is the category's, until the
    category's `image:` names one; a wrong one is a config error at its line."""
    _serve_two_shows(httpserver)
    cfg = tmp_path / "feeds.yaml"

    def config(image: str) -> None:
        cfg.write_text(
            f"site: {{title: T, url: 'https://t.example/'}}\ncategories:\n  - name: pods\n{image}    sources:\n"
            f"      - url: {httpserver.url_for('/a.rss')}\n      - url: {httpserver.url_for('/b.rss')}\n",
            encoding="utf-8",
        )

    config("")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    _, rss = _published(tmp_path)
    assert rss.find("channel").find(f"{{{ITUNES}}}image") is None
    config("    image: https://t.example/pods.jpg\n")
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stdout + result.stderr
    _, rss = _published(tmp_path)
    assert rss.find("channel").find(f"{{{ITUNES}}}image").get("href") == "https://t.example/pods.jpg"
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config("    image: pods.jpg\n")
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2 and f"{cfg}:4: categories.0.image: " in result.stdout + result.stderr, result


def test_a_category_cover_change_republishes_that_category_alone(tmp_path, httpserver: HTTPServer):
    """A category's `image:` is shown by its own RSS only, but it was part of the whole site's
    context: setting one cover rebuilt every category from scratch (each post page rendered
    again; 40 categories of the corpus, 21 s instead of 1 s). Now that category alone is
    regenerated, and its RSS carries the cover; without it, its show's cover again."""
    from aggregator.config import load_config
    from aggregator.publish import publish
    from aggregator.store import Store

    _serve_two_shows(httpserver)
    cfg = tmp_path / "feeds.yaml"

    def config(image: str) -> None:
        cfg.write_text(
            f"site: {{title: T, url: 'https://t.example/'}}\ncategories:\n  - name: pods\n{image}    sources:\n"
            f"      - url: {httpserver.url_for('/a.rss')}\n  - name: more\n    sources:\n"
            f"      - url: {httpserver.url_for('/b.rss')}\n",
            encoding="utf-8",
        )

    def published(image: str) -> list[str]:
        config(image)
        settings = load_config(cfg)
        store = Store(settings.database)
        try:
            return publish(settings, store, workers=0).categories
        finally:
            store.close()

    config("")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    assert published("") == []
    assert published("    image: https://t.example/pods.jpg\n") == ["pods"]
    _, rss = _published(tmp_path)
    assert rss.find("channel").find(f"{{{ITUNES}}}image").get("href") == "https://t.example/pods.jpg"
    assert published("    image: https://t.example/pods.jpg\n") == []
    assert published("") == ["pods"]
    _, rss = _published(tmp_path)
    assert rss.find("channel").find(f"{{{ITUNES}}}image").get("href") == "https://show.example/cover.jpg"
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _signed(days: tuple[int, ...], signature: str) -> bytes:
    """An undated show of "Daily" episodes without guid or link, each sound a URL its CDN
    signs anew at each request (`?Expires=…&Signature=…&Key-Pair-Id=…`, as CloudFront's)."""
    items = "".join(
        f'<item><title>Daily</title><enclosure url="https://cdn.daily.example/{d}.mp3?Expires={len(signature)}'
        f'&amp;Signature={signature}{d}&amp;Key-Pair-Id=K1" type="audio/mpeg" length="1000"/></item>'
        for d in days
    )
    return f'<rss version="2.0"><channel><title>Daily</title><link>https://daily.example/</link>{items}</channel></rss>'.encode()


def test_an_undated_episode_whose_sound_is_signed_anew_at_each_poll_stays_one_post(store):
    """An undated episode without guid or link is identified by its title, text and sound: a
    show whose CDN signs its sounds anew at each poll (`?Expires=…&Signature=…`) had each of
    them come as a new post at every poll (two episodes, three polls: six posts). The sound is
    known by its URL without the signature, which is published as given (the latest one, that
    still plays); a post the version before stored under a signed URL keeps its id."""
    from datetime import UTC, datetime, timedelta

    from aggregator.identity import ENCLOSED, canonical_link, post_id
    from aggregator.models import Source

    from .conftest import take

    when = datetime(2026, 1, 1, tzinfo=UTC)
    src = Source(key="https://daily.example/feed.xml", url="https://daily.example/feed.xml", categories=("pods",))
    store.sync_sources([src])
    ids = [
        {p.id for p in take(store, src, _signed((2, 1), sig), when + timedelta(hours=i))} for i, sig in enumerate("abc")
    ]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 2
    rows = store.db.execute("SELECT id, guid, enclosures FROM posts ORDER BY id").fetchall()
    urls = sorted(json.loads(r[2])[0]["url"] for r in rows)  # the latest, as given
    assert urls == [f"https://cdn.daily.example/{d}.mp3?Expires=1&Signature=c{d}&Key-Pair-Id=K1" for d in (1, 2)]
    # as the version before stored them: identified by their sound's signed URL of then
    old = {}
    with store.db.conn:
        for pid, guid, enclosures in rows:
            signed = json.loads(enclosures)[0]["url"]
            before = f"{guid.partition(ENCLOSED)[0]}{ENCLOSED}{canonical_link(signed)}"
            old[signed] = post_id(src.key, before)
            store.db.execute("UPDATE posts SET id = ?, guid = ? WHERE id = ?", [old[signed], before, pid])
    posts = take(store, src, _signed((3, 2, 1), "d"), when + timedelta(hours=4))
    assert store.db.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
    kept = {p.enclosures[0].url.replace("Signature=d", "Signature=c"): p.id for p in posts}
    assert {u: kept[u] for u in old} == old


def test_the_all_posts_feeds_have_the_site_image_else_the_cover_every_category_has(tmp_path, httpserver: HTTPServer):
    """`feed.rss` (and `feed.atom`, `feed.json`), a podcast of every show, had no cover: podcast
    apps showed none. It is `site.image` when set, else the cover every category has (one's
    show, another's `image:`), else none; setting `site.image` rewrites those feeds alone."""
    from aggregator.config import ConfigError, load_config
    from aggregator.publish import publish
    from aggregator.store import Store

    _serve_two_shows(httpserver)
    cfg = tmp_path / "feeds.yaml"
    cover, mine = "https://show.example/cover.jpg", "https://t.example/all.png"

    def config(site: str = "", image: str = "") -> None:
        cfg.write_text(
            f"site: {{title: T, url: 'https://t.example/'{site}}}\ncategories:\n  - name: pods\n    sources:\n"
            f"      - url: {httpserver.url_for('/a.rss')}\n  - name: more\n{image}    sources:\n"
            f"      - url: {httpserver.url_for('/b.rss')}\n",
            encoding="utf-8",
        )

    def published(site: str = "", image: str = "") -> tuple[list[str], list[str | None]]:
        """The categories a publish regenerated, and the cover of feed.rss, .atom and .json."""
        config(site, image)
        settings = load_config(cfg)
        with Store(settings.database) as store:
            done = publish(settings, store, workers=0).categories
        out = tmp_path / "public"
        rss = etree.fromstring((out / "feed.rss").read_bytes()).find("channel")
        itunes = rss.find(f"{{{ITUNES}}}image")
        atom = etree.fromstring((out / "feed.atom").read_bytes())
        covers = [
            None if itunes is None else itunes.get("href"),
            rss.findtext("image/url"),
            atom.findtext(f"{{{ATOM}}}icon"),
            atom.findtext(f"{{{ATOM}}}logo"),
            json.loads((out / "feed.json").read_bytes()).get("icon"),
        ]
        return done, covers

    config()
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    assert published() == ([], [None] * 5)  # two shows, two covers: none is every category's
    assert published(image=f"    image: {cover}\n") == (["more"], [cover] * 5)
    assert published(f", image: '{mine}'", f"    image: {cover}\n") == ([], [mine] * 5)
    checked = check_feeds(tmp_path / "public", readers=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config(", image: cover.png")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert f"{cfg}:1: site.image: " in str(info.value)
