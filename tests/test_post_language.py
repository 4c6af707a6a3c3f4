"""A post's language as the pages and feeds state it: only a language tag, and not the site's
when the post does not say its own and is evidently written in another."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import lxml.etree
import lxml.html
import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.models import NORMALIZER_VERSION, FeedInfo, Post, Source
from aggregator.publish import publish
from aggregator.store import Store

from .chromium import CHROMIUM, Chromium
from .conftest import StaticServer, check_feeds, fetch_feeds, fetch_one_feed, run_cli, serve_corpus

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ZH_SITE = "  language: zh-CN\n"


def stored_languages(folder: Path) -> list[str | None]:
    with sqlite3.connect(folder / "aggregator.db") as db:
        return [r[0] for r in db.execute("SELECT language FROM posts")]


def post_pages(out: Path) -> list[Path]:
    return sorted((out / "posts").rglob("*.html"))


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("utf-8", None),
        ("iso-8859-1", None),
        ("English", None),
        ("chinese", None),
        ("", None),
        ("en--us", None),
        (None, None),
        ("zh_CN", "zh-CN"),
        (" en-gb ", "en-gb"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("de-CH-1996", "de-CH-1996"),
        ("en-US-u-ca-gregory", "en-US-u-ca-gregory"),
        ("x-klingon", "x-klingon"),
        ("i-klingon", "i-klingon"),
    ],
)
def test_only_what_is_shaped_like_a_language_tag_is_one(value, tag):
    from aggregator.sanitize import language_tag

    assert language_tag(value) == tag


@pytest.mark.parametrize(
    ("site", "text", "fits"),
    [
        ("zh-CN", "يونيك - توب شوب ربيع/صيف 2012 في أسبوع لندن للأزياء", False),  # Arabic
        ("zh-CN", "Breaking news about things", False),
        ("zh-CN", "気仙沼市震災復興計画（案） 2011年9月29日まで（案）に対する意見募集中", False),  # kana: Japanese
        ("zh-CN", "张掖日报 iPhone 15 发布会在北京举行", True),  # Chinese naming an English product
        ("zh-CN", "我の朋友们今天去了北京参加了会议", True),  # a stray の
        ("zh-CN", "2011 / 12 / 31", True),  # no letters: nothing tells
        ("zh-Hant-TW", "新聞", True),
        ("ja", "東京都", True),  # Han alone may be Japanese
        ("ko", "한국어 뉴스", True),
        ("ar", "خبر عاجل", True),
        ("acm", "خبر عاجل", True),  # Arabic's own (Iraqi), laid out right to left as Arabic is
        ("jrb", "שלום עולם", True),  # Judeo-Arabic, in Hebrew letters
        ("en", "خبر عاجل", False),
        ("en", "Новости дня", False),
        ("en", "Nouvelles du jour", True),  # French is not told from English: same script
        ("sr-Latn", "Vesti dana", True),
        ("sr", "Vesti dana", False),
        ("fr", "", True),
        ("en", "ދިވެހިރާއްޖޭގެ ޚަބަރު", False),  # Thaana (Dhivehi), written right to left
        ("dv", "ދިވެހިރާއްޖޭގެ ޚަބަރު", True),
        ("en", "ܫܠܡܐ ܥܠܡܐ", False),  # Syriac
        ("en", "বাংলাদেশের খবর", False),  # Bengali
        ("bn-BD", "বাংলাদেশের খবর", True),
        ("ta", "தமிழ் செய்திகள்", True),
        ("en", "ព័ត៌មានថ្មីៗ", False),  # Khmer
        ("am", "የኢትዮጵያ ዜና", True),  # Ethiopic
    ],
)
def test_a_text_is_evidently_not_in_a_language_only_when_its_script_says_so(site, text, fits):
    from aggregator.publish.feeds import written_in

    assert written_in(site, text) is fits


def test_an_encoding_declared_as_the_language_is_no_language(tmp_path, httpserver: HTTPServer):
    """A real Japanese blog feed declares `xml:lang="utf-8"`: its posts' pages said
    `lang="utf-8"` and its entries `xml:lang="utf-8"` (which Atom's schema lets pass). Not a
    language: it is dropped where the feed is read, and the posts have none of their own."""
    out = fetch_one_feed(
        tmp_path,
        serve_corpus(httpserver, "speedparser2011/speedparser__feeds_0248.dat.xml", "application/xml"),
        ZH_SITE,
    )
    assert set(stored_languages(tmp_path)) == {None}
    assert len(post_pages(out)) > 1
    for page in (*post_pages(out), out / "index.html", out / "category" / "c.html"):
        doc = lxml.html.fromstring(page.read_bytes())
        assert {el.get("lang") for el in doc.iter() if el.get("lang") is not None} <= {"zh-CN", ""}, page
    atom = lxml.etree.parse(str(out / "category" / "c.atom")).getroot()
    assert "utf-8" not in {e.get(XML_LANG) for e in atom.iter(f"{ATOM}entry")}
    assert "utf-8" not in {i.get("language") for i in json.loads((out / "category" / "c.json").read_text())["items"]}
    result = check_feeds(out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_language_an_earlier_version_stored_is_stored_again_without_dating_the_post(tmp_path, httpserver: HTTPServer):
    """Version 7 stored `utf-8` as the language of the Japanese blog's posts. The language is
    not in the content hash (post ids are made of it): read again unchanged, such a post was
    only marked current and kept its `utf-8`. Now it is stored again as an upgrade's edit:
    no language, the same id, dates and first sighting (not dated as edited)."""
    fetch_one_feed(
        tmp_path,
        serve_corpus(httpserver, "speedparser2011/speedparser__feeds_0248.dat.xml", "application/xml"),
        ZH_SITE,
    )
    con = sqlite3.connect(tmp_path / "aggregator.db")
    con.row_factory = sqlite3.Row
    columns = "id, published, updated, first_seen, dated, content_hash, language, normalized"
    with con:  # as version 7 stored them; and the feed's body has changed since (it is read again)
        con.execute("UPDATE posts SET language = 'utf-8', normalized = ?", [NORMALIZER_VERSION - 1])
        con.execute("UPDATE sources SET etag = NULL, last_modified = NULL, body_hash = NULL")
    before = {r["id"]: dict(r) for r in con.execute(f"SELECT {columns} FROM posts")}
    result = run_cli("--config", str(tmp_path / "feeds.yaml"), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    after = {r["id"]: dict(r) for r in con.execute(f"SELECT {columns} FROM posts")}
    con.close()
    assert len(after) > 1
    assert after == {pid: {**row, "language": None, "normalized": NORMALIZER_VERSION} for pid, row in before.items()}


def test_a_language_stored_by_an_earlier_version_is_published_only_if_it_is_a_tag(tmp_path):
    """An unchanged entry is not stored again after an upgrade (its language is not in its
    content hash): what an earlier version stored as its language is checked when published."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\n  language: zh-CN\n"
        "categories:\n  - name: C\n    sources:\n      - url: https://e.example/feed\n",
        encoding="utf-8",
    )
    settings = load_config(cfg)
    src = Source(key="https://e.example/feed", url="https://e.example/feed", categories=("c",))
    when = datetime(2024, 7, 2, 3, 4, tzinfo=UTC)
    post = Post(
        id="00000000000000aa", source=src.key, guid="g", title="京都市観光案内標識アップグレード指針",
        link="https://e.example/a", published=when, updated=when, content="<p>まち</p>",
        language="utf-8", content_hash="h", first_seen=when,
    )  # fmt: skip
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        store.record_success(src.key, when, 200, info=FeedInfo(title="t"), posts=[post])
        publish(settings, store)
    out = settings.output_dir
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".atom", ".rss", ".json"):
            text = path.read_text("utf-8")
            assert 'lang="utf-8"' not in text and '"language": "utf-8"' not in text, path


ARABIC = "speedparser2011/speedparser__feeds_0263.dat.xml"  # Arabic, no language said
JAPANESE = "speedparser2011/speedparser__feeds_0222.dat.xml"  # Japanese, no language said


def feeds_of(out: Path) -> tuple[lxml.etree._Element, lxml.etree._Element, dict]:
    folder = out / "category"
    return (
        lxml.etree.parse(str(folder / "c.atom")).getroot(),
        lxml.etree.parse(str(folder / "c.rss")).getroot(),
        json.loads((folder / "c.json").read_text("utf-8")),
    )


def page_of(out: Path, link: str) -> lxml.html.HtmlElement:
    """The post page whose "original" button links to `link`."""
    for page in post_pages(out):
        doc = lxml.html.fromstring(page.read_bytes())
        if doc.find(".//a[@class='button']").get("href") == link:
            return doc
    raise AssertionError(f"no post page for {link}")


def test_a_post_of_no_language_is_not_said_to_be_in_the_sites(tmp_path, httpserver: HTTPServer):
    """A real Arabic feed says no language; on a Chinese site its posts' pages said they were
    Chinese (`<html lang="zh-CN">`, nothing of their own) and were laid out left to right,
    and the Atom feed's `xml:lang="zh-CN"` (RSS <language>, JSON Feed language) said it of
    its entries. The post's title, text and listing have `lang=""` (unknown) and
    `dir="rtl"` (the direction of most of its letters); no feed
    states a language its entries would inherit."""
    out = fetch_one_feed(tmp_path, serve_corpus(httpserver, ARABIC, "application/xml"), ZH_SITE)
    assert set(stored_languages(tmp_path)) == {None}
    pages = post_pages(out)
    assert len(pages) > 1
    for page in pages:
        doc = lxml.html.fromstring(page.read_bytes())
        assert doc.get("lang") == "zh-CN" and doc.get("dir") is None  # the site's own words
        title, content = doc.find(".//article//h1"), doc.find(".//div[@class='content']")
        assert (title.get("lang"), title.get("dir")) == (content.get("lang"), content.get("dir")) == ("", "rtl"), page
    for listing in (out / "index.html", out / "category" / "c.html"):
        items = lxml.html.fromstring(listing.read_bytes()).xpath("//ol[@class='posts']/li")
        assert items and {(li.get("lang"), li.get("dir")) for li in items} == {("", "rtl")}, listing
    atom, rss, jsonfeed = feeds_of(out)
    assert atom.get(XML_LANG) is None
    assert atom.find(f"{ATOM}title").get(XML_LANG) == "zh-CN"  # the feed's own title is the site's
    entries = atom.findall(f"{ATOM}entry")
    assert entries and {e.get(XML_LANG) for e in entries} == {None}
    assert rss.find("channel/language") is None
    assert "language" not in jsonfeed and not [i for i in jsonfeed["items"] if "language" in i]
    result = check_feeds(out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_posts_of_no_language_in_the_sites_script_are_still_in_its_language(tmp_path, httpserver: HTTPServer):
    """A Japanese site publishing a Japanese and an Arabic feed, neither saying its language:
    the Japanese posts are evidently in the site's language and stay so (no `lang` of their
    own on the pages; `xml:lang="ja"` on their entries, as the feed no longer says it for all),
    the Arabic ones are not said to be."""
    urls = [serve_corpus(httpserver, ARABIC, "application/xml"), serve_corpus(httpserver, JAPANESE, "application/xml")]
    out = fetch_feeds(tmp_path, urls, site="  language: ja\n")
    atom, rss, jsonfeed = feeds_of(out)
    assert atom.get(XML_LANG) is None and atom.find(f"{ATOM}title").get(XML_LANG) == "ja"
    assert rss.find("channel/language") is None and "language" not in jsonfeed
    langs = {}
    for entry in atom.findall(f"{ATOM}entry"):
        link = next(li.get("href") for li in entry.findall(f"{ATOM}link") if li.get("rel") == "alternate")
        langs[link] = entry.get(XML_LANG)
    assert {i["url"]: i.get("language") for i in jsonfeed["items"]} == langs
    by_site = {link.split("/")[2]: lang for link, lang in langs.items()}
    assert by_site == {"www.justselective.com": None, "www.cabrain.net": "ja"}, langs
    for link, lang in langs.items():
        doc = page_of(out, link)
        title, content = doc.find(".//article//h1"), doc.find(".//div[@class='content']")
        want = (None, None) if lang == "ja" else ("", "rtl")
        assert (title.get("lang"), title.get("dir")) == (content.get("lang"), content.get("dir")) == want, link
    result = check_feeds(out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_feed_whose_posts_are_all_in_the_sites_language_says_it_once(tmp_path, httpserver: HTTPServer):
    out = fetch_one_feed(tmp_path, serve_corpus(httpserver, JAPANESE, "application/xml"), "  language: ja\n")
    atom, rss, jsonfeed = feeds_of(out)
    assert atom.get(XML_LANG) == "ja" and atom.find(f"{ATOM}title").get(XML_LANG) is None
    assert {e.get(XML_LANG) for e in atom.findall(f"{ATOM}entry")} == {None}
    assert rss.findtext("channel/language") == "ja" and jsonfeed["language"] == "ja"
    assert not [i for i in jsonfeed["items"] if "language" in i]


DHIVEHI_AND_BENGALI = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk</title><id>urn:dv</id><updated>2026-11-28T10:00:00Z</updated>
<entry><id>urn:dv:1</id><title>ދިވެހިރާއްޖޭގެ ޚަބަރު</title><updated>2026-11-28T10:00:00Z</updated>
<link href="https://dv.example/1"/><content type="html">&lt;p&gt;މިއީ ދިވެހި ބަހުން ލިޔެވިފައިވާ ޚަބަރެކެވެ.&lt;/p&gt;</content></entry>
<entry><id>urn:dv:2</id><title>বাংলাদেশের খবর</title><updated>2026-11-28T09:00:00Z</updated>
<link href="https://bn.example/1"/><content type="html">&lt;p&gt;এটি একটি বাংলা সংবাদ।&lt;/p&gt;</content></entry>
</feed>"""


def test_posts_in_scripts_of_south_asia_are_not_said_to_be_in_the_sites_language(tmp_path, httpserver: HTTPServer):
    """A Dhivehi post (Thaana, written right to left) naming no language on an English site was
    said to be English and laid out left to right, and a Bengali one said to be English: only
    a dozen scripts were told apart, the others' letters not counted at all. Both now have
    `lang=""`, as posts in the other scripts had, and their letters' direction."""
    httpserver.expect_request("/dv.atom").respond_with_data(DHIVEHI_AND_BENGALI, content_type="application/atom+xml")
    out = fetch_one_feed(tmp_path, httpserver.url_for("/dv.atom"))
    for link, direction in (("https://dv.example/1", "rtl"), ("https://bn.example/1", "ltr")):
        doc = page_of(out, link)
        title, content = doc.find(".//article//h1"), doc.find(".//div[@class='content']")
        want = ("", direction)
        assert (title.get("lang"), title.get("dir")) == (content.get("lang"), content.get("dir")) == want, link
    atom, _, _ = feeds_of(out)
    assert atom.get(XML_LANG) is None


JAPANESE_AS_ENGLISH = "speedparser2011/speedparser__feeds_0352.dat.xml"  # `<language>en-us</language>`, a Japanese post
PERSIAN_AS_ENGLISH = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US"><title>Desk</title><id>urn:fa</id>
<updated>2026-11-28T10:00:00Z</updated>
<entry><id>urn:fa:1</id><title>گزارش خبری درباره اقتصاد ایران</title><updated>2026-11-28T10:00:00Z</updated>
<link href="https://fa.example/1"/><content type="html">&lt;p&gt;این یک متن فارسی است.&lt;/p&gt;</content></entry>
<entry><id>urn:fa:2</id><title>Sr: Vesti dana iz Beograda</title><updated>2026-11-28T09:00:00Z</updated>
<link href="https://fa.example/2"/>
<content type="html" xml:lang="sr">&lt;p&gt;Tekst na srpskom.&lt;/p&gt;</content></entry>
</feed>"""


def test_a_post_is_not_said_to_be_in_a_language_its_text_evidently_is_not(tmp_path, httpserver: HTTPServer):
    """Feeds name one language for everything they carry, often their software's default:
    a Japanese post of a feed saying `en-us`, a Persian one of a feed saying `en-US`, were
    published on an English site as English (`lang="en-us"`, no `dir`: the Persian laid out
    left to right; `xml:lang`, JSON Feed `language` saying English). They are told apart as
    posts naming no language are; the feed's English posts keep its language, and a Serbian
    post in Latin letters is still Serbian."""
    httpserver.expect_request("/fa.atom").respond_with_data(PERSIAN_AS_ENGLISH, content_type="application/atom+xml")
    urls = [serve_corpus(httpserver, JAPANESE_AS_ENGLISH, "application/xml"), httpserver.url_for("/fa.atom")]
    out = fetch_feeds(tmp_path, urls)
    want = {
        "http://twitpic.com/4taitp": (None, ("", "ltr")),  # Japanese
        "http://twitpic.com/4rtn9b": ("en-us", ("en-us", None)),  # Latin letters only
        "https://fa.example/1": (None, ("", "rtl")),
        "https://fa.example/2": ("sr", ("sr", None)),
    }
    atom, _, jsonfeed = feeds_of(out)
    for entry in atom.findall(f"{ATOM}entry"):
        link = next(li.get("href") for li in entry.findall(f"{ATOM}link") if li.get("rel") == "alternate")
        assert entry.get(XML_LANG) == want[link][0], link
    assert {i["url"]: i.get("language") for i in jsonfeed["items"]} == {k: v[0] for k, v in want.items()}
    for link, (_, attributes) in want.items():
        doc = page_of(out, link)
        title, content = doc.find(".//article//h1"), doc.find(".//div[@class='content']")
        assert (title.get("lang"), title.get("dir")) == (content.get("lang"), content.get("dir")) == attributes, link
    result = check_feeds(out)
    assert result.returncode == 0, result.stdout + result.stderr


UZBEK_OSSETIAN_KURDISH = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk</title><id>urn:uz</id><updated>2026-11-28T10:00:00Z</updated>
<entry><id>urn:uz:1</id><title>Ўзбекистон янгиликлари</title><updated>2026-11-28T10:00:00Z</updated>
<link href="https://uz.example/1"/>
<content type="html" xml:lang="uz">&lt;p&gt;Президент бугун пойтахтда янги мактабни очди.&lt;/p&gt;</content></entry>
<entry><id>urn:uz:2</id><title>Ирыстоны хабæрттæ</title><updated>2026-11-28T09:00:00Z</updated>
<link href="https://os.example/1"/>
<content type="html" xml:lang="os">&lt;p&gt;Абон ног скъола байгом кодтой.&lt;/p&gt;</content></entry>
<entry><id>urn:uz:3</id><title>هەواڵی کوردستان</title><updated>2026-11-28T08:00:00Z</updated>
<link href="https://ku.example/1"/>
<content type="html" xml:lang="ku">&lt;p&gt;ئەمڕۆ قوتابخانەیەکی نوێ کرایەوە.&lt;/p&gt;</content></entry>
</feed>"""


def test_a_post_in_a_language_of_a_script_not_listed_keeps_the_language_it_names(tmp_path, httpserver: HTTPServer):
    """Uzbek in Cyrillic letters, Ossetian (Cyrillic), Sorani Kurdish (Arabic letters): languages
    whose script `written_in` does not know, taken for Latin ones, so that each post naming one
    was said to be evidently not in it and lost its language (`lang=""`, no `xml:lang`, no JSON
    Feed `language`). A language whose script is not known is believed."""
    httpserver.expect_request("/uz.atom").respond_with_data(UZBEK_OSSETIAN_KURDISH, content_type="application/atom+xml")
    out = fetch_one_feed(tmp_path, httpserver.url_for("/uz.atom"))
    want = {"https://uz.example/1": "uz", "https://os.example/1": "os", "https://ku.example/1": "ku"}
    atom, _, jsonfeed = feeds_of(out)
    for entry in atom.findall(f"{ATOM}entry"):
        link = next(li.get("href") for li in entry.findall(f"{ATOM}link") if li.get("rel") == "alternate")
        assert entry.get(XML_LANG) == want[link], link
    assert {i["url"]: i.get("language") for i in jsonfeed["items"]} == want
    for link, language in want.items():
        doc = page_of(out, link)
        assert doc.find(".//article//h1").get("lang") == language, link


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (.ci/run installs it)")
def test_a_browser_lays_out_a_post_of_no_language_in_its_texts_direction(tmp_path, httpserver: HTTPServer):
    """In Chromium, the Arabic post of no language on a Chinese site: its title and text
    right to left (`dir="rtl"`), the page around them left to right."""
    out = fetch_one_feed(tmp_path, serve_corpus(httpserver, ARABIC, "application/xml"), ZH_SITE)
    post = post_pages(out)[0].relative_to(out)
    server = StaticServer(out)
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        problems = browser.load(server.url(post), 1280, 900, False)
        # the post's pictures are on the web, which the browser is kept from
        assert [p for p in problems if "ERR_PROXY_CONNECTION_FAILED" not in p] == [], problems
        direction = "getComputedStyle(document.querySelector('{}')).direction"
        assert browser.evaluate(direction.format("body")) == "ltr"
        assert browser.evaluate(direction.format("article h1")) == "rtl"
        assert browser.evaluate(direction.format("div.content")) == "rtl"
    finally:
        browser.close()
        server.close()
