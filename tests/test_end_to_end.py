"""The whole pipeline, as a user runs it: `aggregator fetch` over real HTTP, real SQLite,
real corpus feeds, then the strict validators and newsboat over what was published."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import feedparser
import pytest

from .conftest import CORPUS, check_feeds, have_newsboat, run_cli

FOLDERS = ("kagi", "speedparser2011", "suites", "zh")


def corpus_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (CORPUS / folder).iterdir() if p.is_file())


def expected_posts(path: Path, url: str) -> int:
    """Distinct entries as feedparser itself sees them: the count our store must match."""
    # Unsanitized: sanitizing changes no count over the corpus (7,120 either way) and took
    # two thirds of this oracle's 33 s.
    d = feedparser.parse(
        path.read_bytes(),
        response_headers={"content-location": url},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    ids = set()
    for e in d.entries:
        content = (e.get("content") or [{}])[0].get("value") or e.get("summary") or ""
        ids.add(e.get("id", "").strip() or e.get("link") or ("title", e.get("title", ""), content))
    # A feed that gives one guid to entries with different links is identified by link
    # (when every entry has a distinct link), so that none of those entries is lost.
    pairs = {(e.get("id", "").strip() or e.get("link"), e.get("link")) for e in d.entries}
    links = [link for _, link in pairs]
    if all(links) and len(set(links)) == len(pairs) > len({guid for guid, _ in pairs}):
        return len(pairs)
    return len(ids)


def write_config(tmp: Path, server, files: list[Path], extra_sources: list[str] = ()) -> Path:
    lines = [
        "site:",
        "  title: Corpus 语料",
        "  url: https://news.example.com/",
        "  language: zh-CN",
        "  timezone: Asia/Shanghai",
        "  items_per_feed: 50",
        "categories:",
    ]
    for folder in FOLDERS:
        chosen = [f for f in files if f.parent.name == folder]
        if not chosen:
            continue
        lines += [f"  - name: {folder}", "    sources:"]
        lines += [f"      - url: {server.url(f.relative_to(CORPUS))}" for f in chosen]
    if extra_sources:
        lines += ["  - name: broken", "    sources:"] + [f"      - url: {u}" for u in extra_sources]
    cfg = tmp / "feeds.yaml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus_run(corpus_fetch):
    """One cold `aggregator fetch` over the whole corpus (kagi, speedparser2011, suites, zh),
    shared with test_readers (conftest.corpus_fetch)."""
    return corpus_fetch


def test_fetch_stores_every_entry_of_every_feed(corpus_run, corpus_server):
    tmp, files, result = corpus_run
    assert result.returncode in (0, 1), result.stderr
    con = sqlite3.connect(tmp / "aggregator.db")
    stored = dict(con.execute("SELECT source, count(*) FROM posts GROUP BY source"))
    errors = dict(con.execute("SELECT key, last_error FROM sources WHERE last_error IS NOT NULL"))
    mismatches = []
    for f in files:
        url = corpus_server.url(f.relative_to(CORPUS))
        want = expected_posts(f, url)
        got = stored.get(url, 0)
        if want != got:
            mismatches.append(f"{f.name}: parsed {want} entries, stored {got} ({errors.get(url)})")
    assert not mismatches, "\n".join(mismatches)
    assert sum(stored.values()) > 5000  # the corpus really went through, not an empty run
    # Only feeds with no entries at all may be reported as errors, and only as "not a feed".
    assert all(expected_posts(Path(CORPUS / u.split("/", 3)[3]), u) == 0 for u in errors), errors


def test_published_feeds_are_valid_and_readable(corpus_run):
    tmp, _, result = corpus_run
    out = tmp / "public"
    for folder in FOLDERS:
        for ext in ("atom", "rss", "json"):
            assert (out / "category" / f"{folder}.{ext}").stat().st_size > 500
    for ext in ("atom", "rss", "json"):
        assert (out / f"feed.{ext}").is_file()
    checked = check_feeds(out, readers=True)
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert f"{len(FOLDERS) + 1} Atom, {len(FOLDERS) + 1} RSS" in checked.stdout
    if have_newsboat():
        assert "newsboat" not in checked.stdout


def test_refetch_adds_nothing_and_changes_no_file(corpus_run):
    tmp, _, _ = corpus_run
    cfg = tmp / "feeds.yaml"
    con = sqlite3.connect(tmp / "aggregator.db")
    before_posts = con.execute("SELECT count(*), max(first_seen) FROM posts").fetchone()
    before = snapshot(tmp / "public")
    again = run_cli("--config", str(cfg), "fetch", timeout=600)
    assert again.returncode in (0, 1), again.stderr
    assert " 0 new posts; 0 files written" in again.stdout
    assert con.execute("SELECT count(*), max(first_seen) FROM posts").fetchone() == before_posts
    assert snapshot(tmp / "public") == before


# Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# U+FFFF, U+FFFE and C0 controls in every text field a post stores: in well-formed feeds as
# references inside escaped HTML (lxml's fast path), in ill-formed ones raw or as XML
# references too (feedparser's loose parser), and in a JSON Feed.
_NOT_XML_FEEDS = {
    "atom-ok.atom": (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Atom ok</title><id>urn:a</id><updated>2025-01-01T00:00:00Z</updated>"
        '<entry><id>urn:a:1</id><link href="https://e.org/a1"/><updated>2025-01-01T00:00:00Z</updated>'
        '<title type="html">atom &amp;#xFFFF;&amp;#x1;title</title>'
        "<author><name>ann&amp;#xFFFF;</name></author><category term='tag&amp;#65535;'/>"
        '<summary type="html">&lt;p&gt;atom &amp;#xFFFE;summary&lt;/p&gt;</summary>'
        '<content type="html">&lt;p title="&amp;#xFFFF;"&gt;atom &amp;#xFFFF;&amp;#x2;content&lt;/p&gt;</content>'
        "</entry></feed>"
    ),
    "atom-bad.atom": (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Atom bad</title><id>urn:b</id><updated>2025-01-01T00:00:00Z</updated>"
        '<entry><id>urn:b:1</id><link href="https://e.org/b1"/><updated>2025-01-01T00:00:00Z</updated>'
        "<title>bad \uffff&#xFFFF;title</title><author><name>bob\uffff</name></author>"
        '<summary type="html">&lt;p&gt;bad \ufffe&#xFFFE;summary&lt;/p&gt;</summary>'
        '<content type="html">&lt;p&gt;bad \uffff&#xFFFF;&amp;#xFFFF;content&lt;/p&gt;</content>'
        "</entry></feed>"
    ),
    "rss-ok.rss": (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>RSS ok</title>'
        "<link>https://e.org/</link><description>d</description>"
        "<item><guid>https://e.org/r1</guid><title>rss &amp;#xFFFF;title</title>"
        "<category>tag&amp;#xFFFF;</category>"
        "<description><![CDATA[<p>rss &#xFFFF;&#x1;&#xFFFE;content</p>]]></description></item>"
        "</channel></rss>"
    ),
    "rss-bad.rss": (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>RSS bad</title>'
        "<link>https://e.org/</link><description>d</description>"
        "<item><guid>https://e.org/r2</guid><title>rss \uffffbad</title>"
        "<description><![CDATA[<p>rss \uffff\ufffebad &#xFFFF;content</p>]]></description></item>"
        "</channel></rss>"
    ),
    "feed.json": (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "JSON", "items": [{"id": "j1",'
        ' "url": "https://e.org/j1", "title": "json \\uffff&#xFFFF;title", "summary": "json \\ufffesummary",'
        ' "content_html": "<p>json \\uffff&#xFFFF;&#x1;content</p>", "tags": ["tag\\uffff"]}]}'
    ),
}


def _fetch_with_jekyll(tmp_path: Path, httpserver, feeds: dict[str, str]) -> sqlite3.Connection:
    """Serve `feeds` (name → body; `.json` ones as JSON Feed), `aggregator fetch` them into
    one category with the Jekyll export on, and open the database it wrote."""
    for name, body in feeds.items():
        kind = "application/feed+json" if name.endswith(".json") else "text/xml"
        httpserver.expect_request(f"/{name}").respond_with_data(body.encode("utf-8"), content_type=kind)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/'}\njekyll: {dir: jekyll}\n"
        "categories:\n  - name: news\n    sources:\n"
        + "".join(f"      - url: {httpserver.url_for('/' + name)}\n" for name in feeds),
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    con.row_factory = sqlite3.Row
    return con


def _assert_no_character_xml_forbids_written(tmp_path: Path, suffixes: tuple[str, ...]) -> None:
    """Not in any file written (pages, feeds, Jekyll), and the feeds valid."""
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != tmp_path]
    assert all(any(p.suffix == s for p in written) for s in suffixes), written
    for path in written:
        assert not _NOT_XML.search(path.read_text(encoding="utf-8")), path
    check = check_feeds(tmp_path / "public", readers=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_characters_xml_forbids_are_neither_stored_nor_published(tmp_path, httpserver):
    """`aggregator fetch` over feeds carrying U+FFFF, U+FFFE and C0 controls on both parse
    paths: the store never holds them, and neither the feeds, the pages nor the Jekyll export
    written from it (the feeds had a guard of their own; the Jekyll export did not)."""
    from aggregator.parse_fast import parse_fast

    # both parse paths are taken: lxml for the well-formed feeds, feedparser for the others
    assert parse_fast(_NOT_XML_FEEDS["atom-ok.atom"].encode(), "http://h/") is not None
    assert parse_fast(_NOT_XML_FEEDS["rss-ok.rss"].encode(), "http://h/") is not None
    assert parse_fast(_NOT_XML_FEEDS["atom-bad.atom"].encode(), "http://h/") is None
    assert parse_fast(_NOT_XML_FEEDS["rss-bad.rss"].encode(), "http://h/") is None
    con = _fetch_with_jekyll(tmp_path, httpserver, _NOT_XML_FEEDS)
    rows = list(con.execute("SELECT * FROM posts"))
    assert len(rows) == len(_NOT_XML_FEEDS)
    for row in rows:
        for column in row.keys():
            if isinstance(row[column], str):
                assert not _NOT_XML.search(row[column]), (row["source"], column, row[column])
    titles = {r["title"] for r in rows}
    assert titles == {"atom title", "bad title", "rss title", "rss bad", "json title"}
    contents = " ".join(r["content"] for r in rows)
    for words in ("atom content", "bad content", "rss content", "rss bad content", "json content"):
        assert words in contents
    assert '<p title="">atom content</p>' in contents

    _assert_no_character_xml_forbids_written(tmp_path, (".md", ".atom"))


# The same characters in the fields that are not HTML: links, a feed's home page, an email
# address, an enclosure's URL and media type, a language (ids are left clean: they are
# stored as the feed gives them, and a changed one would make a post new again).
_NOT_XML_FIELDS = {
    "fields.atom": (  # ill-formed (the raw U+FFFF in an attribute): feedparser reads it
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">'
        "<title>Fields</title><id>urn:f</id><updated>2025-01-01T00:00:00Z</updated>"
        '<link rel="alternate" href="https://e.org/home\uffff"/>'
        '<entry><id>urn:f:1</id><link href="https://e.org/a\uffff\x01"/><title>fields atom</title>'
        "<updated>2025-01-01T00:00:00Z</updated>"
        "<author><name>ann</name><email>ann\uffff@e.org</email><uri>https://e.org/ann\ufffe</uri></author>"
        '<link rel="enclosure" type="audio/mpeg\uffff" href="https://e.org/a\uffff.mp3" length="5"/>'
        "<content>fields atom content</content></entry></feed>"
    ),
    "fields.json": (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "JSON fields",'
        ' "home_page_url": "https://e.org/j\\uffff", "language": "de\\uffff", "items": [{"id": "jf1",'
        ' "url": "https://e.org/jf1\\uffff\\u0001", "title": "fields json", "content_text": "fields json content",'
        ' "authors": [{"name": "jo", "url": "https://e.org/jo\\uffff"}],'
        ' "attachments": [{"url": "https://e.org/jf1\\uffff.mp3", "mime_type": "audio/mpeg\\uffff"}]}]}'
    ),
}


def test_fields_that_are_not_html_keep_no_character_xml_forbids(tmp_path, httpserver):
    """URLs keep such characters percent-encoded (they still lead where they led); plain
    fields drop them. Nothing stored, and nothing in the pages, feeds or Jekyll files."""
    con = _fetch_with_jekyll(tmp_path, httpserver, _NOT_XML_FIELDS)
    posts = {r["title"]: r for r in con.execute("SELECT * FROM posts")}
    assert set(posts) == {"fields atom", "fields json"}
    for table in ("posts", "sources"):
        for row in con.execute(f"SELECT * FROM {table}"):
            for column in row.keys():
                if isinstance(row[column], str):
                    assert not _NOT_XML.search(row[column]), (table, column, row[column])
    assert posts["fields atom"]["link"] == "https://e.org/a%EF%BF%BF%01"
    assert posts["fields json"]["link"] == "https://e.org/jf1%EF%BF%BF%01"
    assert posts["fields json"]["language"] == "de"
    stored = " ".join(str(v) for r in posts.values() for v in dict(r).values())
    for kept in ("ann@e.org", "https://e.org/ann%EF%BF%BE", "audio/mpeg", "https://e.org/a%EF%BF%BF.mp3",
                 "https://e.org/jo%EF%BF%BF", "https://e.org/jf1%EF%BF%BF.mp3"):  # fmt: skip
        assert kept in stored, kept
    homes = {r[0] for r in con.execute("SELECT site_link FROM sources")}
    assert homes == {"https://e.org/home%EF%BF%BF", "https://e.org/j%EF%BF%BF"}

    _assert_no_character_xml_forbids_written(tmp_path, (".md", ".html"))


def test_a_huge_title_and_endless_tags_are_capped_not_copied_into_every_output(tmp_path, httpserver):
    """One entry with a 300,000-character title, 500 tags and 60 authors: every feed and page
    of its category repeated them (a 2 MB title made each feed 2.6 MB). Stored and published
    capped (`normalize.TITLE_MAX`, `TAGS_MAX`, `AUTHORS_MAX`), the feeds stay small and valid."""
    from aggregator.normalize import AUTHORS_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX

    title = "Breaking news " * 21_500  # ~300,000 characters, words to cut between
    tags = "".join(f'<category term="tag{i:03d}-{"x" * 300}"/>' for i in range(500))
    authors = "".join(f"<author><name>writer {i}</name></author>" for i in range(60))
    huge = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Huge</title><id>urn:h</id><updated>2025-01-01T00:00:00Z</updated>"
        f"<entry><id>urn:h:1</id><link href='https://h.example/1'/><title>{title}</title>{authors}{tags}"
        "<updated>2025-01-01T00:00:00Z</updated><content>the text</content></entry>"
        f"<entry><id>urn:h:2</id><link href='https://h.example/2'/><title>{'短' * 1500}</title>"
        "<updated>2025-01-02T00:00:00Z</updated><content>more text</content></entry></feed>"
    )
    con = _fetch_with_jekyll(tmp_path, httpserver, {"huge.atom": huge})
    rows = {r["id"]: r for r in con.execute("SELECT * FROM posts")}
    assert len(rows) == 2
    by_link = {r["link"]: r for r in rows.values()}
    long_one, cjk = by_link["https://h.example/1"], by_link["https://h.example/2"]
    assert len(long_one["title"]) <= TITLE_MAX and long_one["title"].endswith("Breaking news…")
    assert cjk["title"] == "短" * (TITLE_MAX - 1) + "…"  # no space to cut at: cut at the limit
    stored_tags = json.loads(long_one["tags"])
    assert len(stored_tags) == TAGS_MAX and stored_tags[0].startswith("tag000-")
    assert all(len(t) <= TAG_MAX for t in stored_tags)
    assert len(json.loads(long_one["authors"])) == AUTHORS_MAX

    public = tmp_path / "public"
    feeds = [p for p in public.rglob("*") if p.suffix in (".xml", ".atom", ".json", ".rss")]
    assert feeds
    for path in feeds:
        assert path.stat().st_size < 100_000, (path, path.stat().st_size)
    check = check_feeds(public, readers=False)
    assert check.returncode == 0, check.stdout + check.stderr


_UNTITLED_RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title></title>'
    "<link>https://example.org/</link><item><title>Hello</title><link>https://example.org/hello</link>"
    "<guid>https://example.org/hello</guid><description>Body</description>"
    "<pubDate>Sun, 29 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"
)


def test_a_feed_url_the_atom_feed_cannot_name_does_not_stop_publishing(tmp_path, httpserver, monkeypatch):
    """A feed at a fully qualified host name (`example.org.`, trailing dot: valid, and `check`
    takes it) with no title, no name in the config, a home page and entries without authors:
    the Atom entry credits its source, and had no name for it (the feed URL is not one the
    feeds publish), so `publish` crashed with a TypeError traceback and wrote no feed of any
    category. It is fetched through an HTTP proxy on 127.0.0.1, as behind a company proxy."""
    httpserver.expect_request("/feed.xml").respond_with_data(_UNTITLED_RSS, content_type="application/rss+xml")
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY", "ALL_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", httpserver.url_for("/").rstrip("/"))
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        "      - url: http://feeds.example.org./feed.xml\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "1 new" in result.stdout, result.stdout
    feed = "http://feeds.example.org./feed.xml"  # a valid URL: published as it is, dot and all
    for name in ("feed.atom", "category/c.atom"):
        atom = feedparser.parse((tmp_path / "public" / name).read_bytes())
        assert [e.title for e in atom.entries] == ["Hello"], name
        assert atom.entries[0].source.get("link") == "https://example.org/", name
        assert atom.entries[0].source.get("id") == feed, name  # dropped as no URL it could publish
        assert [x.href for x in atom.entries[0].source.links if x.rel == "self"] == [feed], name
    rss = feedparser.parse((tmp_path / "public" / "feed.rss").read_bytes())
    assert rss.entries[0].source.get("href") == feed
    (item,) = json.loads((tmp_path / "public" / "feed.json").read_text(encoding="utf-8"))["items"]
    assert item["_source"]["url"] == feed
    check = check_feeds(tmp_path / "public", readers=False)
    assert check.returncode == 0, check.stdout + check.stderr
