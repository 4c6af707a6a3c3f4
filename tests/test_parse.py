"""Bytes → parsed feed: every format we read, and what is not a feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aggregator.models import Author, Source
from aggregator.normalize import normalize
from aggregator.parse import ParseError, _fix_char_refs, parse_feed, parse_feedparser
from aggregator.parse_fast import parse_fast, split_author

from .conftest import CORPUS

URL = "http://127.0.0.1/feed"


def test_rss_atom_and_rdf_from_the_corpus():
    rss = parse_feed(URL, (CORPUS / "zh" / "zhangye-daily.gbk.rss").read_bytes(), URL)
    assert rss.version == "rss20" and rss.info.title == "张掖日报" and len(rss.entries) == 3
    atom = parse_feed(URL, (CORPUS / "zh" / "gansu-economy.atom").read_bytes(), URL)
    assert atom.version == "atom10" and atom.info.language == "zh-CN" and len(atom.entries) == 2
    rdf = parse_feed(URL, (CORPUS / "suites" / "feed-rs__feed-rs_fixture_rss1_rss_1.0_example_2.xml").read_bytes(), URL)
    assert rdf.version == "rss10" and rdf.entries


@pytest.mark.parametrize("version", ["https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1"])
def test_json_feed(version):
    doc = {
        "version": version,
        "title": "JSON 测试",
        "home_page_url": "https://example.org/",
        "authors": [{"name": "Feed Author"}],
        "items": [
            {
                "id": "1",
                "url": "https://example.org/1",
                "title": "First",
                "content_html": "<p>Hello</p>",
                "date_published": "2024-01-02T03:04:05+08:00",
                "tags": ["a", "b"],
                "attachments": [{"url": "https://example.org/a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 123}],
            },
            {"id": 2, "content_text": "plain <text>\n\nsecond para", "author": {"name": "Item Author"}},
        ],
    }
    feed = parse_feed(URL, json.dumps(doc).encode(), URL, {"content-type": "application/feed+json"})
    assert feed.info.title == "JSON 测试" and feed.info.link == "https://example.org/"
    first, second = feed.entries
    assert first["id"] == "1" and first["link"] == "https://example.org/1"
    assert first["content"][0]["value"] == "<p>Hello</p>"
    assert first["links"][0] == {
        "rel": "enclosure",
        "href": "https://example.org/a.mp3",
        "type": "audio/mpeg",
        "length": "123",
    }
    assert [t["term"] for t in first["tags"]] == ["a", "b"]
    assert first["authors"] == [{"name": "Feed Author"}]
    assert second["id"] == "2" and "&lt;text&gt;" in second["content"][0]["value"]
    assert second["authors"] == [{"name": "Item Author"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html><head><title>Oops</title></head><body>Error</body></html>", "HTML page"),
        (b"\x00\x01\x02garbage\xff\xfe", "not a feed"),
        (b"", "empty"),
        (b'{"hello": "world"}', "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": ', "invalid JSON"),
    ],
)
def test_what_is_not_a_feed_is_a_parse_error_naming_the_source(body, message):
    with pytest.raises(ParseError, match=message) as info:
        parse_feed("http://src.example/feed", body, URL)
    assert info.value.source == "http://src.example/feed"


def test_ill_formed_xml_still_yields_entries_with_a_warning():
    body = (CORPUS / "zh" / "gansu-economy.atom").read_bytes().replace(b"</feed>", b"<broken></feed>")
    feed = parse_feed(URL, body, URL)
    assert len(feed.entries) == 2 and feed.warning


@pytest.mark.parametrize(
    ("refs", "text"),
    [
        ("&#55357;&#56832;", "a \U0001f600 b"),  # an emoji as its UTF-16 pair, in decimal
        ("&#xD83D;&#xDE00;", "a \U0001f600 b"),  # … and in hex
        ("&#xd83d&#xde00", "a \U0001f600 b"),  # … without semicolons
        ("&#xD800;", "a \ufffd b"),  # half a pair
        ("&#xDE00;&#xD83D;", "a \ufffd\ufffd b"),  # the halves the wrong way round
        ("&#x110000;", "a \ufffd b"),  # past the last character
        ("&#99999999999;", "a \ufffd b"),
        ("&#128512;&#x1F600;", "a \U0001f600\U0001f600 b"),  # right as they were
        pytest.param("&#" + "9" * 5000 + ";", "a \ufffd b", id="5000-digits"),  # more than int() takes
        ("&#55000;&#56000;&#56832;", "a \ud6d8\U000c0200 b"),  # no high half, then a pair
        ("&#56320;&#56319;&#57343;", "a \ufffd\U0010ffff b"),  # a lone low half, then a pair
    ],
)
def test_references_to_no_character_cost_one_character_not_the_feed(refs, text):
    """Such references make a feed ill-formed, so feedparser reads it; its loose parser
    crashed on each, and every post of the feed was lost (`parser crashed: UnicodeEncodeError`)."""
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>a {refs} b</title><link>http://e.org/1</link></item>"
        "<item><title>next</title><link>http://e.org/2</link></item></channel></rss>"
    ).encode()
    feed = parse_feed("http://x/feed", body, "http://x/feed", {"content-type": "text/xml"})
    assert [e.get("title") for e in feed.entries] == [text, "next"]


@pytest.mark.parametrize(
    ("body", "fixed"),
    [
        (b"&#xD83D;&#xDE001;", b"&#xFFFD;&#xDE001;"),  # a lone half, then U+DE001: not a pair
        (b"&#55357;&#568321;", b"&#xFFFD;&#568321;"),  # … in decimal (U+8AC01)
        (b"&#xD800A;&#xDFFFF", b"&#xD800A;&#xDFFFF"),  # characters of plane 13, not surrogates
        (b"&#xD8000A;", b"&#xFFFD;"),  # past U+10FFFF
        (b"&#55357;&#56191;&#57343;", b"&#xFFFD;&#xEFFFF;"),  # a lone high half, then a pair
    ],
)
def test_a_reference_ends_where_its_digits_do(body, fixed):
    assert _fix_char_refs(body) == fixed


def test_a_utf16_body_is_left_as_it_is():
    """In UTF-16 these bytes are characters, not references: rewriting them would shift
    every character after them, and the feed would be lost."""
    text = "\u2326\u3535\u3533\u3b37\u2326\u3635\u3338\u3b32"  # "&#55357;&#56832;" in UTF-16LE bytes
    assert text.encode("utf-16-le") == b"&#55357;&#56832;"
    body = (
        '<?xml version="1.0" encoding="UTF-16"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{text}</title><link>http://e.org/1</link></item></channel></rss>"
    ).encode("utf-16")
    assert _fix_char_refs(body) == body
    assert _fix_char_refs(body.removeprefix(b"\xff\xfe")) == body.removeprefix(b"\xff\xfe")
    assert [e.get("title") for e in parse_feedparser("http://x/feed", body, "http://x/feed").entries] == [text]


def _naive_tags(ops: list[tuple]) -> list[dict]:
    """feedparser's own rule, as it was: scan the list for an equal tag; fill in the last term."""
    tags: list[dict] = []
    for op in ops:
        if op[0] == "add":
            _, term, scheme, label = op
            if (term or scheme or label) and {"term": term, "scheme": scheme, "label": label} not in tags:
                tags.append({"term": term, "scheme": scheme, "label": label})
        elif tags and not tags[-1]["term"]:
            tags[-1]["term"] = op[1]
        elif op[1]:
            _naive_tags_add = {"term": op[1], "scheme": None, "label": None}
            if _naive_tags_add not in tags:
                tags.append(_naive_tags_add)
    return tags


def test_tag_list_keeps_feedparsers_rule_for_duplicates_and_filled_in_terms():
    """TagList answers "already there?" from a set; it must agree with the scan it replaced,
    including a term filled in after its tag was added (`<category domain="d">x</category>`)."""
    import random

    from aggregator.parse_fast import TagList

    rng = random.Random(7)
    for _ in range(2000):
        ops: list[tuple] = []
        for _ in range(rng.randrange(1, 12)):
            if rng.random() < 0.6:
                ops.append(("add", *(rng.choice([None, "", "a", "b"]) for _ in range(3))))
            else:
                ops.append(("fill", rng.choice(["", "a", "b"])))
        tags = TagList()
        for op in ops:
            if op[0] == "add":
                if op[1] or op[2] or op[3]:
                    tags.add({"term": op[1], "scheme": op[2], "label": op[3]})
            elif tags and not tags[-1]["term"]:
                tags[-1]["term"] = op[1]
            elif op[1]:
                tags.add({"term": op[1], "scheme": None, "label": None})
        assert list(tags) == _naive_tags(ops), ops


def test_both_parsers_collect_the_same_tags_in_the_same_order():
    cats = (
        '<category domain="d">x</category><category domain="d"/><category domain="d">x</category>'
        "<category>x</category><category>y</category><category>x</category>"
        + "".join(f"<category>t{i % 300}</category>" for i in range(1000))
    )
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>c</title><link>http://x/</link>'
        f"<description>d</description><item><title>a</title><guid>g</guid>{cats}</item></channel></rss>"
    ).encode()
    fast = parse_feed("s", body, "http://x/feed").entries[0]["tags"]
    slow = parse_feedparser("s", body, "http://x/feed").entries[0]["tags"]
    assert [dict(t) for t in fast] == [dict(t) for t in slow]
    assert [t["term"] for t in fast[:5]] == ["x", "x", "x", "y", "t0"]
    assert len(fast) == 4 + 300


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser], ids=["fast", "feedparser"])
def test_a_mailto_author_is_a_name_and_an_address(parser):
    """xakep.ru: `<author>mailto:antonov.igor.khv@gmail.com (Игорь Антонов)</author>` was
    published as the author `mailto: (Игорь Антонов` on both paths."""
    rel = "suites/picoFeed__tests_fixtures_xakep.ru.xml"
    body = (CORPUS / rel).read_bytes()
    if parser is parse_feed:
        assert parse_fast(body, URL) is not None  # the fast path is the one tested
    posts = normalize(Source(key=URL, url=URL), parser(URL, body, URL), datetime(2030, 1, 1, tzinfo=UTC))
    authors = {a for p in posts for a in p.authors}
    assert authors == {Author("Игорь Антонов", "antonov.igor.khv@gmail.com"), Author("know how (news)")}


@pytest.mark.parametrize(
    "text, split",
    [
        ("mailto:a.b@e.org (Name)", ("Name", "a.b@e.org")),
        ("Name <mailto:a.b@e.org>", ("Name", "a.b@e.org")),
        ("MailTo:a.b@e.org", ("", "a.b@e.org")),
        ("a.b@e.org (Name)", ("Name", "a.b@e.org")),  # as feedparser splits them
        ("Name <a.b@e.org>", ("Name", "a.b@e.org")),
        ("know how (news)", ("know how (news)", None)),
    ],
)
def test_an_author_string_splits_into_name_and_address(text, split):
    assert split_author(text) == split
