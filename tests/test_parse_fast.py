"""The fast lxml parse path: feedparser's entry shape, what it declines, and hostile XML."""

from __future__ import annotations

import http.server
import threading
import time

import pytest
from lxml import etree

from aggregator.parse import ParseError, parse_feed, parse_feedparser
from aggregator.parse_fast import XML_PARSER, parse_fast

from .conftest import CORPUS

URL = "http://127.0.0.1:9/feeds/main.xml"
XML = {"content-type": "application/xml"}


def both(doc: str | bytes, headers: dict[str, str] = XML) -> tuple[list[dict], list[dict]]:
    body = doc.encode() if isinstance(doc, str) else doc
    fast = parse_fast(body, URL, headers)
    assert fast is not None, "the fast path declined a well-formed feed"
    return fast[1], parse_feedparser(URL, body, URL, headers).entries


def same(doc: str | bytes, *keys: str, headers: dict[str, str] = XML) -> list[dict]:
    """Both paths give each key the same value in every entry; returns the fast entries."""
    mine, theirs = both(doc, headers)
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        for key in keys:
            assert a.get(key) == dict.get(b, key), key
    return mine


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Chan</title><link>https://example.org/</link><ttl>60</ttl>
{items}
</channel></rss>"""


def test_guid_rules_match_feedparser():
    items = """
    <item><guid>rel/1</guid><title>relative permalink guid is resolved, and no link</title></item>
    <item><guid isPermaLink="false">rel/2</guid><title>not a permalink: kept as is</title></item>
    <item><link>https://example.org/3?a=1&amp;b=2</link><guid>https://example.org/g3</guid><title>t</title></item>
    <item><title>no guid</title><link>/4</link></item>"""
    entries = same(RSS.format(items=items), "id", "link", "title", "guidislink")
    assert entries[0]["id"] == "http://127.0.0.1:9/feeds/rel/1" and "link" not in entries[0]
    assert entries[1]["id"] == "rel/2" and "link" not in entries[1]
    assert entries[2]["link"] == "https://example.org/3?a=1&b=2"


def test_content_summary_and_description_rules_match_feedparser():
    items = """
    <item><title>a</title><description>&lt;p&gt;sum&lt;/p&gt;</description>
          <content:encoded><![CDATA[<p>full <b>text</b></p>]]></content:encoded></item>
    <item><title>b</title><content:encoded><![CDATA[<p>only content</p>]]></content:encoded></item>
    <item><title>c</title><description>first</description><description>second &amp; more</description></item>
    <item><title>d</title><description>AT&amp;T &lt;3 plain</description></item>"""
    entries = same(RSS.format(items=items), "summary", "content", "summary_detail", "title_detail")
    assert entries[1]["summary"] == "<p>only content</p>"  # content copied to an absent summary
    assert entries[2]["content"][0]["value"] == "second & more"  # a second description is content


def test_atom_text_constructs_match_feedparser():
    doc = """<?xml version="1.0" encoding="utf-8"?>
    <feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en" xml:base="https://example.org/blog/">
      <title type="html">A &amp;lt;b&amp;gt; feed</title><id>urn:x</id>
      <entry xml:base="posts/">
        <id>1</id><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x &lt; <b>y</b></div></title>
        <link href="one.html"/><link rel="enclosure" href="a.mp3" type="audio/mpeg" length="12"/>
        <content type="xhtml" xml:lang="de"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hallo<br/>Welt</p>
          <img src="i.png"/></div></content>
        <author><name>Ann</name><email>ann@example.org</email><uri>/ann</uri></author>
        <category term="t1" label="Label One"/><category term="t2"/>
        <published>2024-01-02T03:04:05+08:00</published><updated>2024-01-03T00:00:00Z</updated>
      </entry>
      <entry><id>urn:uuid:2</id><summary type="html">&lt;p&gt;s&lt;/p&gt;</summary>
        <content type="html"><div xmlns="http://www.w3.org/1999/xhtml">TypePad &lt;b&gt;wraps&lt;/b&gt;</div></content>
        <published>2024-01-02</published></entry>
    </feed>"""
    # (not the xhtml content itself: feedparser writes <br></br>, which HTML reads as two breaks)
    keys = ("id", "link", "links", "title", "title_detail", "authors", "tags", "published",
            "published_parsed", "updated", "updated_parsed")  # fmt: skip
    entries = same(doc, *keys)
    assert entries[0]["id"] == "https://example.org/blog/posts/1"
    assert entries[0]["link"] == "https://example.org/blog/posts/one.html"
    content = entries[0]["content"][0]
    assert content["language"] == "de" and content["base"] == "https://example.org/blog/posts/"
    assert content["value"].startswith("<p>Hallo<br>Welt</p>")  # the wrapping div is gone, <br> stays one
    assert entries[1]["content"][0]["value"] == "TypePad <b>wraps</b>"


def test_authors_dates_and_encodings_match_feedparser():
    items = """
    <item><title>é — ünïcode</title><author>joe@example.org (Joe Bloggs)</author><dc:creator>Jane</dc:creator>
      <category domain="http://x/">Cat</category><category>Dog</category>
      <enclosure url="http://example.org/e.mp3" length="100" type="audio/mpeg"/>
      <comments>/c</comments><pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate>
      <dc:date>2003-06-10T05:00:00+01:00</dc:date>
    </item>"""
    doc = RSS.format(items=items)
    same(doc, "title", "authors", "tags", "links", "comments", "published", "published_parsed", "updated_parsed")
    gbk = doc.replace('encoding="utf-8"', 'encoding="gbk"').replace("é — ünïcode", "张掖日报").encode("gbk")
    entries = same(gbk, "title", "title_detail")
    assert entries[0]["title"] == "张掖日报"
    assert same(doc.replace("é — ünïcode", "cafÃ©"), "title")[0]["title"] == "café"  # utf-8 read as latin-1
    assert same(doc.replace("é — ünïcode", "\x93quoted\x94"), "title")[0]["title"] == "“quoted”"  # cp1252 C1


def test_corpus_feeds_in_the_fast_path_match_the_reference_fixtures():
    body = (CORPUS / "zh" / "zhangye-daily.gbk.rss").read_bytes()
    fast = parse_feed("src", body, URL)
    assert fast.warning is None and fast.encoding and fast.info.title == "张掖日报" and len(fast.entries) == 3
    same(body, "id", "link", "title", "summary", "content", "published", "published_parsed", "authors", "tags")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<rss version='2.0'><channel><item><title>x</item></channel></rss>", "ill-formed"),
        (b"<?xml version='1.0'?><!DOCTYPE rss><rss><channel><item><title>&nbsp;</title></item></channel></rss>",
         "doctype"),
        (b"<html><body>not a feed</body></html>", "unknown root"),
        (b'<?xml version="1.0"?><CHANNEL HREF="http://x/"><ITEM HREF="http://x/1"><TITLE>c</TITLE></ITEM></CHANNEL>',
         "cdf"),
        ("<?xml version='1.0' encoding='utf-16'?><rss version='2.0'><channel/></rss>".encode("utf-16"), "utf-16"),
        (b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>\xff\xfe</title></channel></rss>",
         "bad utf-8"),
    ],
)  # fmt: skip
def test_the_fast_path_declines_what_feedparser_should_judge(body, reason):
    assert parse_fast(body, URL, XML) is None, reason


ATOM_AFTER_DOCTYPE = """<?xml version="1.0" encoding="UTF-8"?>
{doctype}<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:f</id><updated>2024-09-21T00:00:00Z</updated>
<entry><title>Post &amp; more</title><id>urn:1</id><link href="/p/1"/><updated>2024-09-20T00:00:00Z</updated>
<content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>"""


@pytest.mark.parametrize(
    "doctype",
    [
        "<!DOCTYPE html>",  # a static-site generator's slip, seen in the corpus
        '<!DOCTYPE feed SYSTEM "http://127.0.0.1:9/feed.dtd">\n',
        '  <!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://127.0.0.1:9/rss-0.91.dtd">\n',
    ],
)
def test_a_plain_doctype_is_removed_as_feedparser_removes_it(doctype):
    """No entity declared: the fast path reads the feed, as feedparser does, without it."""
    doc = ATOM_AFTER_DOCTYPE.format(doctype=doctype)
    entries = same(doc, "id", "link", "title", "summary", "content", "updated")
    assert entries[0]["title"] == "Post & more" and entries[0]["link"] == "http://127.0.0.1:9/p/1"
    fast, slow = parse_fast(doc.encode(), URL, XML), parse_feedparser(URL, doc.encode(), URL, XML)
    assert fast is not None and fast[0] == slow.info and fast[2] == slow.version
    assert fast[2] == ("rss091n" if "Netscape" in doctype else "atom10")


@pytest.mark.parametrize(
    "doctype",
    [
        "<!DOCTYPE feed>\n",  # fine, but for the undeclared entity the title uses below
        "<!doctype html>",  # feedparser's pattern is case-sensitive: the DOCTYPE stays for its parsers
        '<!DOCTYPE feed [<!ENTITY e "x">]>',
        '<!DOCTYPE feed>\n<!ENTITY e "x">',
        "<!DOCTYPE a>\n<!DOCTYPE b>",
    ],
)
def test_a_doctype_feedparser_keeps_or_an_undeclared_entity_goes_to_feedparser(doctype):
    doc = ATOM_AFTER_DOCTYPE.format(doctype=doctype)
    if doctype == "<!DOCTYPE feed>\n":
        doc = doc.replace("Post &amp; more", "Post&nbsp;more")
    assert parse_fast(doc.encode(), URL, XML) is None
    assert parse_feed("src", doc.encode(), URL, XML).entries  # feedparser still reads it


def test_charset_disagreeing_with_the_declaration_goes_to_feedparser():
    body = RSS.format(items="<item><title>é</title></item>").encode("utf-8")
    assert parse_fast(body, URL, {"content-type": "text/xml; charset=iso-8859-1"}) is None
    assert parse_fast(body, URL, {"content-type": "text/xml; charset=utf-8"}) is not None


def test_dispatch_takes_the_fast_path_for_well_formed_and_feedparser_for_the_rest():
    good = RSS.format(items="<item><title>t</title><link>https://example.org/1</link></item>").encode()
    feed = parse_feed("src", good, URL, XML)
    assert feed.version == "rss20" and feed.warning is None and feed.info.ttl_minutes == 60
    broken = good.replace(b"</item>", b"<broken></item>")
    fallback = parse_feed("src", broken, URL, XML)
    assert fallback.warning and fallback.entries[0]["title"] == "t"


# -- hostile XML ----------------------------------------------------------------------------

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<rss version="2.0"><channel><title>laughs</title>
<item><title>&g;</title><description>&g;</description></item></channel></rss>
"""


def test_billion_laughs_is_never_expanded():
    try:  # the fast path's own parser: references stay references, or libxml2 refuses outright
        assert len(etree.tostring(etree.fromstring(LAUGHS, XML_PARSER))) < 10_000
    except etree.XMLSyntaxError as e:
        assert "amplification" in str(e)
    assert parse_fast(LAUGHS, URL, XML) is None  # entity declarations: declined
    started = time.monotonic()
    feed = parse_feed("src", LAUGHS, URL, XML)  # and feedparser, the fallback, stays small too
    assert time.monotonic() - started < 5
    assert all(len(str(e.get("title", ""))) < 10_000 for e in feed.entries)


def test_external_entities_read_no_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    doc = f"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>
    <rss version="2.0"><channel><title>t</title>
    <item><title>&x;</title><description>&x;</description></item></channel></rss>"""
    root = etree.fromstring(doc.encode(), XML_PARSER)
    assert b"TOP-SECRET" not in etree.tostring(root)
    feed = parse_feed("src", doc.encode(), URL, XML)
    assert "TOP-SECRET" not in repr(feed.entries) and "TOP-SECRET" not in repr(feed.info)


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        _Counting.hits.append(self.path)
        body = b'<!ENTITY x "FETCHED-OVER-HTTP">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_external_dtd_and_entities_are_not_fetched():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        doc = f"""<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{base}/evil.dtd" [
          <!ENTITY % remote SYSTEM "{base}/param.dtd"> %remote; <!ENTITY y SYSTEM "{base}/y.txt">]>
        <rss version="2.0"><channel><item><title>&x;&y;</title></item></channel></rss>""".encode()
        etree.fromstring(doc, XML_PARSER)
        assert parse_fast(doc, URL, XML) is None
        feed = parse_feed("src", doc, URL, XML)
        assert "FETCHED" not in repr(feed.entries)
        assert _Counting.hits == []
    finally:
        server.shutdown()
        server.server_close()


FEED_LEVEL = [
    """<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <author><name>Feed Author</name><email>a@e.org</email><uri>/me</uri></author>
    <author><name>Second</name></author>
    <entry><id>1</id><title>a</title><created>2003-12-31T10:14:55Z</created></entry></feed>""",
    """<?xml version="1.0"?><rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
    <channel><title>t</title><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>
    <ttl>90</ttl><item><title>a</title><dcterms:created xmlns:dcterms="http://purl.org/dc/terms/">
    2004-01-01T00:00:00Z</dcterms:created></item></channel></rss>""",
]


@pytest.mark.parametrize("doc", FEED_LEVEL)
def test_feed_level_facts_match_feedparser(doc):
    """What the normalizer and the poller read beyond entries: feed authors (inherited by
    entries naming none), sy:update* and ttl hints, and `created` as the last-resort date."""
    body = doc.encode()
    assert parse_fast(body, URL, XML) is not None
    fast, slow = parse_feed("s", body, URL, XML), parse_feedparser("s", body, URL, XML)
    # feedparser leaks the first author's email into the second; names and the first agree
    assert [a.get("name") for a in fast.authors] == [a.get("name") for a in slow.authors]
    assert fast.authors[:1] == slow.authors[:1]
    assert fast.info.update_seconds == slow.info.update_seconds
    assert fast.info.ttl_minutes == slow.info.ttl_minutes
    assert fast.entries[0].get("created_parsed") == slow.entries[0].get("created_parsed") is not None


def test_odd_syndication_period_and_encoding_name_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """Found by the fuzz test: a non-text sy:updatePeriod value, a NUL in the declared encoding."""
    from aggregator.parse import ParseError
    from aggregator.parse_fast import update_period

    assert update_period({"x": "A"}, "1") is None  # type: ignore[arg-type]
    assert update_period("daily", "2") == 43200.0
    body = b'<?xml version="1.0" encoding="ut\x00f-8"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    assert parse_fast(body, "http://x.example/", {}) is None  # declined, not crashed
    with caplog.at_level("ERROR"), pytest.raises(ParseError, match="embedded null"):  # feedparser's verdict
        parse_feed("k", body, "http://x.example/", {})
    assert "fast parser failed" not in caplog.text


LATE_ITEM = "<item><title>a &e; b</title><link>http://e.org/1</link></item>"
LATE_RSS = f'<rss version="2.0"><channel><title>C</title>{LATE_ITEM}</channel></rss>'.encode()
PLAIN_RSS = b'<rss version="2.0"><channel><title>C</title><item><title>I</title><link>http://e.org/1</link></item></channel></rss>'
PAST_4K = b"<!-- " + b"x" * 5000 + b" -->"
DECL = b'<?xml version="1.0"?>\n'
UTF7 = b'<?xml version="1.0" encoding="utf-7"?>\n'
ENTITY_E = b'<!DOCTYPE rss [<!ENTITY e "boom">]>\n'


@pytest.mark.parametrize(
    "body",
    [
        # a second DOCTYPE, with an entity, past the first 4 KB: lxml read it and dropped `&e;`
        pytest.param(DECL + b"<!DOCTYPE html>\n" + PAST_4K + ENTITY_E + LATE_RSS, id="late-second-doctype"),
        pytest.param(DECL + PAST_4K + ENTITY_E + LATE_RSS, id="late-doctype"),
        # UTF-7: the DOCTYPE is not the bytes `<!DOCTYPE`, "netscape" not the bytes `netscape`
        pytest.param(
            UTF7 + b'<!DOCTYPE html>\n+ADw-!DOCTYPE rss +AFsAPA-!ENTITY e "boom"+AD4AXQA+-\n' + LATE_RSS,
            id="utf-7-doctype",
        ),
        pytest.param(UTF7 + b'<!DOCTYPE rss SYSTEM "+AG4-etscape">\n' + PLAIN_RSS, id="utf-7-netscape"),
        # Big5: 0xA4 0x6E is one character whose second byte is `n`: the bytes say "netscape", the text does not
        pytest.param(
            b'<?xml version="1.0" encoding="big5"?>\n<!DOCTYPE rss SYSTEM "\xa4netscape.dtd">\n' + PLAIN_RSS,
            id="big5-netscape",
        ),
        # `defuse` reads a quoted literal from the apostrophe on, and rebuilds the DOCTYPE over part of the feed
        pytest.param(
            DECL + b"<!DOCTYPE rss'>\n<rss version=\"2.0\"><channel><title>it's [x]</title>"
            b"<item><title>I</title></item></channel></rss>",
            id="defuse-reads-it-otherwise",
        ),
    ],
)
def test_a_doctype_the_fast_path_would_read_otherwise_than_feedparser_goes_to_feedparser(body):
    """Each of these the fast path read differently from feedparser (a title, the version)."""
    assert parse_fast(body, URL, XML) is None
    assert parse_feed("src", body, URL, XML).entries  # feedparser still reads it


def test_an_attribute_flood_under_8_kib_is_refused_whichever_parser_would_read_it():
    """600 short attributes fit in one 5 KB tag: the fast path read such a feed while
    feedparser's path (`defuse`) refused it, so the same feed was stored or refused depending
    on whether it was well-formed that day. The fast path now leaves it to `defuse`."""
    attrs = " ".join(f'a{i}="v"' for i in range(600))
    items = "".join(f"<item><title>t{i}</title><guid>g{i}</guid></item>" for i in range(700))
    flood = RSS.format(items=f"<item><title x='1' {attrs}>t</title></item>{items}").encode()
    assert parse_fast(flood, URL, XML) is None
    with pytest.raises(ParseError, match="601 attributes"):
        parse_feed("src", flood, URL, XML)
    # a long tag that is no flood (an inline image's data URI, a long URL) keeps the fast path
    long_url = RSS.format(items=f'<item><title>t</title><enclosure url="http://e.org/{"x" * 6000}"/></item>{items}')
    assert parse_fast(long_url.encode(), URL, XML) is not None


def test_capitalized_link_relations_and_types_match_feedparser():
    """feedparser lowercases every `rel` and `type` (both are case-insensitive); the fast path
    took `rel="Alternate"` for no link and `rel="Enclosure"` for no enclosure."""
    doc = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:t</id><updated>2026-11-28T00:00:00Z</updated>
<link rel="Alternate" type="Text/HTML" href="https://a.example/"/>
<entry><id>urn:a1</id><title>A1</title><updated>2026-11-28T00:00:00Z</updated>
<link rel="Alternate" type="text/HTML" href="https://a.example/a1"/>
<link rel="ENCLOSURE" href="https://a.example/a1.mp3" type="Audio/MPEG" length="1234"/>
</entry></feed>"""
    (entry,) = same(doc, "link", "links")
    assert entry["link"] == "https://a.example/a1"
    assert entry["links"][1] == {
        "rel": "enclosure",
        "href": "https://a.example/a1.mp3",
        "type": "audio/mpeg",
        "length": "1234",
    }
    fast = parse_fast(doc.encode(), URL, XML)
    assert (
        fast is not None
        and fast[0].link == parse_feedparser(URL, doc.encode(), URL, XML).info.link == "https://a.example/"
    )
