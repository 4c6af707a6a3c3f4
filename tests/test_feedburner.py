"""FeedBurner feeds: each entry's `<link>` is FeedBurner's click-counting redirect
(`http://feedproxy.google.com/~r/…`), and `feedburner:origLink` names the article's own page
(`feedburner:origEnclosureLink`, its enclosure's file). FeedBurner is deprecated and its
redirects break: the original is what we publish, as Miniflux does. The entry's id is still
made of the link as written, so that no post stored before is published a second time.

Read from real corpus feeds, by both parse paths, then through the store and `aggregator
fetch` over real HTTP, as a user runs it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import lxml.html
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator.identity import LINK, canonical_link, post_id
from aggregator.models import NORMALIZER_VERSION, Source
from aggregator.normalize import normalize
from aggregator.parse import ParsedFeed, parse_feed, parse_feedparser
from aggregator.parse_fast import parse_fast

from .conftest import CORPUS, fetch_corpus_file, take

FEEDBURNER = "{http://rssnamespace.org/feedburner/ext/1.0}"
ATOM = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
PUBLICO = "speedparser2011/speedparser__feeds_0085.dat.xml"  # no guids: ids are made of the links

FEEDS = [
    PUBLICO,
    "speedparser2011/speedparser__feeds_0091.dat.xml",
    "speedparser2011/speedparser__feeds_0120.dat.xml",
    "speedparser2011/speedparser__feeds_0171.dat.xml",
    "speedparser2011/speedparser__feeds_0254.dat.xml",
    "speedparser2011/speedparser__feeds_0372.dat.xml",  # Wired: its own redirect host, feeds.wired.com
    "suites/picoFeed__tests_fixtures_googleblog.xml",
    "suites/rss-parser__test_input_feedburner.atom",
    "suites/feedjira__spec_sample_feeds_TypePadNews.xml",
    "suites/rome__rome-modules_src_test_resources_xml_slashdot.xml",  # RSS 1.0, rss.slashdot.org
]


def _written(path: Path) -> list[tuple[str, str | None, str | None]]:
    """(origLink, link, guid) of each entry, as the file writes them (read with lxml here, not
    by either parser under test); the link is an Atom entry's alternate one."""
    out = []
    for item in etree.fromstring(path.read_bytes().lstrip()).iter("{*}item", "{*}entry"):
        orig = item.findtext(f"{FEEDBURNER}origLink")
        if item.tag == f"{ATOM}entry":
            link = next(x.get("href") for x in item.findall(f"{ATOM}link") if x.get("rel") == "alternate")
            guid = item.findtext(f"{ATOM}id")
        else:
            link, guid = item.findtext("{*}link"), item.findtext("guid")
            guid = guid or item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about")
        out.append((orig.strip(), link.strip() if link else None, guid.strip() if guid else None))
    return out


def _both_paths(rel: str) -> dict[str, list]:
    """The posts of a corpus feed as the fast path and feedparser read it."""
    path = CORPUS / rel
    body, url = path.read_bytes(), "http://127.0.0.1:8000/" + rel
    headers = {"content-type": "application/xml"}
    source = Source(key=url, url=url)
    fast = parse_fast(body, url, headers)
    assert fast is not None, "the fast path declined it: it would not be tested"
    info, entries, version, encoding, authors, images, itunes = fast
    parsed = ParsedFeed(info, entries, version, url, encoding, authors=authors, images=images, itunes_images=itunes)
    return {
        "fast": normalize(source, parsed, NOW),
        "feedparser": normalize(source, parse_feedparser(url, body, url, headers), NOW),
    }


@pytest.mark.parametrize("rel", FEEDS)
def test_a_feedburner_entry_links_to_its_original_page_whichever_parser_reads_it(rel):
    """The posts linked to FeedBurner's redirects (376 of them in 24 corpus feeds); they link
    to the pages the feeds record as the originals now, with the ids they had."""
    for how, posts in _both_paths(rel).items():
        expected: dict[str, str] = {}  # id → link; an entry listed twice is one post, the first
        for orig, link, guid in _written(CORPUS / rel):
            # the id is made of what it was made of before: the guid, else the link as written
            expected.setdefault(post_id(posts[0].source, guid or link), orig)
        assert {p.id: p.link for p in posts} == expected, how
        # what the source's posts are found by stays the redirect's (see the shared show page below)
        written = {post_id(posts[0].source, guid or link): link for _, link, guid in _written(CORPUS / rel)}
        assert {p.canonical_link for p in posts} == {canonical_link(written[p.id]) for p in posts}


def test_publico_posts_keep_the_ids_their_feedproxy_links_gave_them():
    """Público's feed gives no guids: each post's id was made of its feedproxy link, and is still."""
    posts = _both_paths(PUBLICO)["fast"]
    assert len(posts) == 16
    for post in posts:
        assert post.guid.startswith("http://feedproxy.google.com/~r/PublicoRSS/~3/")
        assert post.id == post_id(post.source, post.guid)
        assert "publico.pt/" in post.link and "feedproxy" not in post.link


def test_a_feedburner_enclosure_is_the_original_file():
    """FeedBurner rewrote each Vimeo clip's enclosure into a redirect (`~5/…/moogaloop.swf`)
    and recorded the original as `feedburner:origEnclosureLink`."""
    rel = "speedparser2011/speedparser__feeds_0167.dat.xml"
    originals = [x.text.strip() for x in etree.parse(str(CORPUS / rel)).iter(f"{FEEDBURNER}origEnclosureLink")]
    for how, posts in _both_paths(rel).items():
        assert [p.enclosures[0].url for p in posts] == originals, how
        assert all(p.enclosures[0].length and "feedproxy" not in p.enclosures[0].url for p in posts)


def test_an_ill_formed_feedburner_feed_gives_the_same_original_links():
    """A feed broken by a stray tag is read by feedparser's lenient parser, which left
    `&amp;` in Slashdot's `?sid=…&amp;from=rss` originals: links to no page the well-formed
    reading gave, and no copy of them for duplicate detection."""
    rel = "suites/rome__rome-modules_src_test_resources_xml_slashdot.xml"
    body = (CORPUS / rel).read_bytes()
    url = "http://127.0.0.1:8000/" + rel
    broken = parse_feed(url, body.replace(b"</rdf:RDF>", b"<stray></rdf:RDF>"), url)
    assert broken.warning is not None  # feedparser's lenient parser read it
    posts = normalize(Source(key=url, url=url), broken, NOW)
    assert [(p.id, p.link) for p in posts] == [(p.id, p.link) for p in _both_paths(rel)["fast"]]
    assert all("&from=rss" in p.link for p in posts)


@pytest.mark.parametrize(
    "orig",
    ["", "/relative/page.html", "javascript:alert(1)", "#", "ftp://site.example/a"],
    ids=["empty", "relative", "javascript", "fragment", "ftp"],
)
def test_an_original_link_that_is_no_absolute_web_address_is_not_taken(orig):
    """Only an absolute http(s) URL is an original: anything else leaves the link as written."""
    body = (
        '<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel><title>t</title>'
        "<item><title>a</title><link>http://feedproxy.google.com/~r/x/~3/abc/a</link>"
        f"<feedburner:origLink>{orig}</feedburner:origLink></item></channel></rss>"
    ).encode()
    url = "http://feeds.feedburner.com/x"
    for parse in (parse_feed, parse_feedparser):
        (post,) = normalize(Source(key=url, url=url), parse(url, body, url), NOW)
        assert post.link == "http://feedproxy.google.com/~r/x/~3/abc/a"


def test_guidless_feedburner_entries_of_one_original_keep_their_own_ids():
    """Two entries without guid, each its own redirect, both recording one original page (an
    article posted again): each was identified by its redirect, and still is, rather than
    told apart as entries sharing a link (which gave the second another id)."""
    items = "".join(
        f"<item><title>Take {i}</title><link>http://feedproxy.google.com/~r/x/~3/id{i}/a</link>"
        f"<description>Take {i} of the article.</description>"
        "<feedburner:origLink>https://site.example/a.html</feedburner:origLink></item>"
        for i in (1, 2)
    )
    body = (
        '<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel><title>t</title>'
        f"{items}</channel></rss>"
    ).encode()
    url = "http://feeds.feedburner.com/x"
    for parse in (parse_feed, parse_feedparser):
        posts = normalize(Source(key=url, url=url), parse(url, body, url), NOW)
        assert [p.id for p in posts] == [post_id(url, f"http://feedproxy.google.com/~r/x/~3/id{i}/a") for i in (1, 2)]
        assert [p.link for p in posts] == ["https://site.example/a.html"] * 2


# --------------------------------------------------------------------------- store


ARTICLE = "<p>" + "The city council approved the new budget after a long debate on schools and roads. " * 3 + "</p>"


def _feedburner_copy(guid: str | None = None, title: str = "Budget approved") -> bytes:
    g = f"<guid isPermaLink='false'>{guid}</guid>" if guid else ""
    return (
        '<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel><title>fb</title>'
        f"<item>{g}<title>{title}</title><link>http://feedproxy.google.com/~r/SiteNews/~3/Xy12/budget</link>"
        f"<description><![CDATA[{ARTICLE}]]></description>"
        "<feedburner:origLink>https://site.example/2025/budget.html</feedburner:origLink></item></channel></rss>"
    ).encode()


def _src(name: str) -> Source:
    url = f"http://{name}.example/feed.xml"
    return Source(key=url, url=url, categories=("news",))


def _show(items: list[tuple[str, str]]) -> bytes:
    """A FeedBurner feed whose entries (guid, redirect path) all record one show page as original."""
    xml = "".join(
        f"<item><guid isPermaLink='false'>{g}</guid><title>Episode {g}</title>"
        f"<link>http://feedproxy.google.com/~r/Show/~3/{path}</link><description>Notes of {g}</description>"
        "<feedburner:origLink>http://show.example/</feedburner:origLink></item>"
        for g, path in items
    )
    return (
        '<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel><title>fb</title>'
        f"{xml}</channel></rss>"
    ).encode()


def test_entries_recording_one_original_keep_their_own_posts_under_link_identity(store):
    """A podcast's FeedBurner feed records the show's page as every episode's original: found
    by it, a source identified by link gave each new episode the first one's id (its text
    overwrote the first episode's), and one entry of two was dropped."""
    fb = _src("fb")
    store.sync_sources([fb])
    take(store, fb, _show([("g1", "aaa/one"), ("g2", "bbb/two")]), datetime(2025, 6, 1, tzinfo=UTC))
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE sources SET identity = 'link'")
    posts = take(
        store, fb, _show([("g1", "aaa/one"), ("g2", "bbb/two"), ("g3", "ccc/three")]), datetime(2025, 6, 2, tzinfo=UTC)
    )
    assert len({p.id for p in posts}) == 3
    rows = dict(con.execute("SELECT title, link FROM posts"))
    assert sorted(rows) == ["Episode g1", "Episode g2", "Episode g3"]
    assert set(rows.values()) == {"http://show.example/"}
    con.close()


def test_one_guid_for_entries_recording_one_original_still_switches_to_link_identity(store):
    """Two entries under one guid, different redirects, one original: their redirects tell
    them apart, and the source is identified by link (by the original, one was dropped)."""
    fb = _src("fb")
    store.sync_sources([fb])
    posts = take(store, fb, _show([("same", "aaa/one"), ("same", "bbb/two")]), datetime(2025, 6, 1, tzinfo=UTC))
    assert len({p.id for p in posts}) == 2
    assert store.source_state(fb.key).identity == LINK


def _as_version_7_stored_them(path: Path) -> None:
    """Make the stored posts what NORMALIZER_VERSION 7 stored: the redirect as the link (and
    canonical link), its own content hashes, its version mark."""
    con = sqlite3.connect(path)
    with con:
        con.create_function("canonical_link", 1, canonical_link)
        con.execute(
            "UPDATE posts SET link = 'http://feedproxy.google.com/~r/SiteNews/~3/Xy12/budget', "
            "canonical_link = canonical_link('http://feedproxy.google.com/~r/SiteNews/~3/Xy12/budget'), "
            "content_hash = 'older', normalized = 7"
        )
    con.close()


def test_a_source_identified_by_link_keeps_its_ids_when_the_original_is_read(store):
    """A source whose guids proved useless is identified by its posts' canonical links, and
    keeps the ids its posts had before (here, its guid's). A FeedBurner entry's is its
    redirect's, as stored by version 7: its id stays, before its refresh and after it (when
    its stored link is the original's)."""
    fb = _src("fb")
    store.sync_sources([fb])
    (post,) = take(store, fb, _feedburner_copy("fb-1"), datetime(2025, 6, 1, tzinfo=UTC))
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE sources SET identity = ?", [LINK])
    con.close()
    _as_version_7_stored_them(store.path)
    for hour in (1, 2, 3):  # the refresh, then polls reading the refreshed post; the guid changing each time
        (again,) = take(store, fb, _feedburner_copy(f"fb-{hour + 1}"), datetime(2025, 6, 1, hour, tzinfo=UTC))
        assert again.id == post.id
        assert again.link == "https://site.example/2025/budget.html"
        assert store.count_posts() == 1
    con = sqlite3.connect(store.path)
    row = con.execute("SELECT link, normalized, updated FROM posts").fetchone()
    con.close()
    assert row == ("https://site.example/2025/budget.html", NORMALIZER_VERSION, post.updated.isoformat())


def test_a_new_link_identified_source_names_its_feedburner_posts_by_the_redirect(store):
    """Under link identity from its first poll, a FeedBurner entry is identified by its
    redirect's canonical link, as every version before did, on every poll."""
    fb = _src("fb")
    store.sync_sources([fb])
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE sources SET identity = ?", [LINK])
    con.close()
    redirect = canonical_link("http://feedproxy.google.com/~r/SiteNews/~3/Xy12/budget")
    for hour in (0, 1):
        (post,) = take(store, fb, _feedburner_copy(f"fb-{hour}"), datetime(2025, 6, 1, hour, tzinfo=UTC))
        assert post.id == post_id(fb.key, redirect)


def test_a_feedburner_feed_making_up_guids_is_identified_by_link_and_publishes_each_entry_once(store):
    """A feed whose guids change on every fetch is found out (its links stay) and identified
    by link from then on; a FeedBurner entry keeps the post it was stored as."""
    fb = _src("fb")
    store.sync_sources([fb])
    ids = {p.id for hour in range(4) for p in take(store, fb, _feedburner_copy(f"g{hour}"), _at(hour))}
    assert len(ids) == 1 and store.count_posts() == 1
    con = sqlite3.connect(store.path)
    assert con.execute("SELECT identity FROM sources").fetchone() == (LINK,)
    con.close()


def _at(hour: int) -> datetime:
    return datetime(2025, 6, 1, hour, tzinfo=UTC)


def _sharing_one_redirect(*entries: tuple[str, str]) -> bytes:
    """A FeedBurner feed of (title, text) entries without guid, all sharing one redirect (and
    one original)."""
    items = "".join(
        f"<item><title>{title}</title><link>http://feedproxy.google.com/~r/x/~3/show/notes</link>"
        f"<description>{text}</description>"
        "<feedburner:origLink>https://site.example/notes.html</feedburner:origLink></item>"
        for title, text in entries
    )
    return (
        '<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel><title>t</title>'
        f"{items}</channel></rss>"
    ).encode()


def test_entries_sharing_one_redirect_keep_their_ids_through_the_upgrade(store):
    """Entries without guid sharing a link are each given an id of their own, found again by
    the posts stored for that link. Stored by version 7 under the redirect, since under the
    original: each entry is found the post it was, then and after, and keeps its id."""
    fb = _src("fb")
    store.sync_sources([fb])
    monday, tuesday = ("Monday", "Notes of Monday."), ("Tuesday", "Notes of Tuesday.")
    first = take(store, fb, _sharing_one_redirect(monday, tuesday), datetime(2025, 6, 1, tzinfo=UTC))
    ids = {p.title: p.id for p in first}
    assert len(set(ids.values())) == 2
    con = sqlite3.connect(store.path)
    with con:  # as version 7 stored them: the redirect as link, its content hashes
        con.create_function("canonical_link", 1, canonical_link)
        con.execute(
            "UPDATE posts SET link = 'http://feedproxy.google.com/~r/x/~3/show/notes', "
            "canonical_link = canonical_link('http://feedproxy.google.com/~r/x/~3/show/notes'), "
            "content_hash = 'older' || id, normalized = 7"
        )
    con.close()
    feeds = [
        (monday, tuesday),  # the refresh
        (monday, tuesday),  # read under the original's canonical link
        (tuesday,),  # one entry of the link left: still told apart, as stored
        (("Monday", "Notes of Monday, corrected."), tuesday),  # an edit, found by its title
    ]
    for hour, entries in enumerate(feeds, 1):
        posts = take(store, fb, _sharing_one_redirect(*entries), datetime(2025, 6, 1, hour, tzinfo=UTC))
        assert {p.title: p.id for p in posts} == {title: ids[title] for title, _ in entries}, hour
        assert store.count_posts() == 2, hour
        assert {p.link for p in posts} == {"https://site.example/notes.html"}


# --------------------------------------------------------------------------- aggregator fetch


def _published_links(public: Path) -> dict[str, set[str]]:
    """Every post link the category's RSS, Atom and JSON Feed and the post pages give."""
    rss = etree.parse(str(public / "category" / "c.rss"))
    atom = etree.parse(str(public / "category" / "c.atom"))
    feed = json.loads((public / "category" / "c.json").read_bytes())
    pages = set()
    for path in (public / "posts").rglob("*.html"):
        doc = lxml.html.fromstring(path.read_bytes())
        pages |= {a.get("href") for a in doc.iter("a") if "Read the original" in (a.text or "")}
    return {
        "rss": {i.findtext("link") for i in rss.iter("item")},
        "atom": {
            x.get("href")
            for e in atom.iter(f"{ATOM}entry")
            for x in e.findall(f"{ATOM}link")  # (not its <source>'s: the site's home page)
            if x.get("rel", "alternate") == "alternate"
        },
        "json": {i.get("url") for i in feed["items"]},
        "pages": pages,
    }


@pytest.mark.parametrize("rel", [PUBLICO, "suites/picoFeed__tests_fixtures_googleblog.xml"])
def test_published_feeds_and_pages_link_to_the_original_pages(tmp_path, httpserver: HTTPServer, rel):
    """A reader of our RSS, Atom or JSON Feed, or of a post's page, was sent through
    FeedBurner's redirect; now straight to the article."""
    fetch_corpus_file(tmp_path, httpserver, rel)
    originals = {orig for orig, _, _ in _written(CORPUS / rel)}
    for what, links in _published_links(tmp_path / "public").items():
        # (a page's own URL is no entry's link; a link is published as a URI: `Política`
        # percent-encoded)
        assert {unquote(x) for x in links if x and not x.startswith("https://t.example/")} == originals, what


def _as_stored_by(tmp_path: Path, httpserver: HTTPServer, version: int, source_state: str) -> dict[str, dict]:
    """The posts of Público's feed, fetched and then rewritten as a database of
    NORMALIZER_VERSION `version` held them (each linking to its redirect; `source_state`, the
    SET clause of what that version recorded of the source)."""
    fetch_corpus_file(tmp_path, httpserver, PUBLICO)
    with contextlib.closing(sqlite3.connect(tmp_path / "aggregator.db")) as con, con:
        con.row_factory = sqlite3.Row
        con.create_function("canonical_link", 1, canonical_link)
        con.execute(  # guid-less entries, so each guid is its link as written
            "UPDATE posts SET link = guid, canonical_link = canonical_link(guid), "
            "content_hash = 'older', normalized = ?",
            [version],
        )
        con.execute(f"UPDATE sources SET {source_state}")
        before = {r["id"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    assert len(before) == 16 and all("feedproxy" in r["link"] for r in before.values())
    return before


def _refetched(tmp_path: Path, httpserver: HTTPServer, before: dict[str, dict]) -> None:
    """Público's feed fetched again over `before` (`_as_stored_by`): the same ids, each post
    linking to its original, of this version, its dates kept."""
    fetch_corpus_file(tmp_path, httpserver, PUBLICO)
    with contextlib.closing(sqlite3.connect(tmp_path / "aggregator.db")) as con:
        con.row_factory = sqlite3.Row
        after = {r["id"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    assert after.keys() == before.keys()  # no post published a second time
    originals = {link: orig for orig, link, _ in _written(CORPUS / PUBLICO)}
    for pid, row in after.items():
        assert row["link"] == originals[row["guid"]] and row["normalized"] == NORMALIZER_VERSION
        assert (row["published"], row["updated"]) == (before[pid]["published"], before[pid]["updated"])


def test_posts_stored_by_the_version_before_are_refreshed_with_the_original_links(tmp_path, httpserver: HTTPServer):
    """A database the version before filled has each post of Público's feed linking to its
    redirect. The next fetch of the same feed links them to the originals, under the same
    ids and pages, without dating them as edited (readers would show them all as updated)."""
    public = tmp_path / "public"
    # as version 7 stored them, which recorded no `read_by`: the feed's validators forgotten
    before = _as_stored_by(tmp_path, httpserver, 7, "body_hash = NULL, etag = NULL, last_modified = NULL")
    pages = sorted(p.relative_to(public) for p in (public / "posts").rglob("*.html"))
    _refetched(tmp_path, httpserver, before)
    originals = {orig for orig, _, _ in _written(CORPUS / PUBLICO)}
    assert sorted(p.relative_to(public) for p in (public / "posts").rglob("*.html")) == pages
    for what, links in _published_links(public).items():  # each page and feed written again
        assert {unquote(x) for x in links if not x.startswith("https://t.example/")} == originals, what


WAPO = "suites/node-feedparser__test_feeds_wapowellness.xml"  # Pheedo's click trackers, 2012


def _pheedo_written() -> dict[str, str]:
    """guid → the link each WaPo entry should be published with: its `pheedo:origLink`, else
    (Pheedo's own ad entries record none) its `<link>`."""
    items = etree.fromstring((CORPUS / WAPO).read_bytes()).iter("item")
    return {
        i.findtext("guid").strip(): (
            i.findtext("{http://www.pheedo.com/namespace/pheedo}origLink") or i.findtext("link")
        ).strip()
        for i in items
    }


def test_a_pheedo_entry_links_to_its_original_page_whichever_parser_reads_it():
    """The Washington Post's entries linked to `feeds.washingtonpost.com/click.phdo?i=…`, Pheedo's
    click counter (gone with Pheedo); `pheedo:origLink` names the article, as origLink does."""
    written = _pheedo_written()
    assert sum("click.phdo" not in link for link in written.values()) == 26  # of 29: three are ads
    for how, posts in _both_paths(WAPO).items():
        assert {p.id: p.link for p in posts} == {post_id(posts[0].source, g): x for g, x in written.items()}, how


def test_pheedo_feeds_are_published_with_the_original_links(tmp_path, httpserver: HTTPServer):
    fetch_corpus_file(tmp_path, httpserver, WAPO)
    for what, links in _published_links(tmp_path / "public").items():
        assert {x for x in links if not x.startswith("https://t.example/")} == set(_pheedo_written().values()), what


def test_posts_stored_by_a_version_8_reading_the_redirect_are_not_dated_as_edited(tmp_path, httpserver: HTTPServer):
    """Versions were at NORMALIZER_VERSION 8 before they read FeedBurner's origLink (3d09b71,
    for one): a user upgrading from one saw every FeedBurner post of the database republished
    as edited at the upgrade's time (Atom `updated`, JSON Feed `date_modified`). Its feed,
    unchanged since (the same bytes), is read again in full once, and the posts take the
    original links under their ids and dates."""
    # as such a version stored them, and recorded it had read the feed as it is
    before = _as_stored_by(tmp_path, httpserver, 8, "read_by = 8")
    _refetched(tmp_path, httpserver, before)
    feed = json.loads((tmp_path / "public" / "category" / "c.json").read_text(encoding="utf-8"))
    assert {i["date_modified"] for i in feed["items"]} <= {
        datetime.fromisoformat(r["updated"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for r in before.values()
    }
