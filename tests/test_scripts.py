"""Text in every script as the pages and feeds cut and show it: Thai and Hindi vowel signs,
decomposed (NFD) Vietnamese, emoji joined by ZWJ, flags, and the bidi controls a title may
carry. Feeds written here, served over HTTP from 127.0.0.1, fetched by the real CLI."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import lxml.etree
import lxml.html
import yaml

from .conftest import fetch_feed_text

ATOM = "{http://www.w3.org/2005/Atom}"
ZWJ = "\u200d"
FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # one emoji of seven code points

# Texts with no space to cut at, where nearly every code point is inside a cluster: a cut
# anywhere but at a cluster's end shows a consonant without its vowel, a part of a family.
# The leading `x` puts the odd code points at the places an even cut would fall.
UNCUT = {
    "thai": "x" + "กั" * 150,
    "hindi": "x" + "कि" * 150,
    "family": FAMILY * 45,
    "flags": "x" + "🇯🇵" * 150,
    "vietnamese-nfd": "x" + unicodedata.normalize("NFD", "ệ") * 100,
}


def _is_boundary(text: str, at: int) -> bool:
    """Whether a cut at `at` leaves every character of `text` whole, as a reader sees them."""
    if at in (0, len(text)):
        return True
    if unicodedata.category(text[at]).startswith("M") or ZWJ in (text[at], text[at - 1]):
        return False
    flags = 0
    while at - flags > 0 and 0x1F1E6 <= ord(text[at - flags - 1]) <= 0x1F1FF:
        flags += 1
    return flags % 2 == 0


def _check_cut(shown: str, texts: dict[str, str]) -> str | None:
    """What is wrong with `shown`, a text the site or a feed shows of one of `texts` (whole,
    or a piece of it ending in `…`), or None."""
    piece = shown.removesuffix("…")
    for text in texts.values():
        at = text.find(piece)
        if at >= 0:
            ends = (at, at + len(piece))
            return None if all(_is_boundary(text, i) for i in ends) else f"cut inside a character: {shown!r}"
    return None  # not one of them (the site's own words)


def _feed(entries: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk</title><id>urn:desk</id>'
        f"<updated>2026-11-28T10:00:00Z</updated>{entries}</feed>"
    )


def _entry(n: int, title: str, content: str, extra: str = "") -> str:
    return (
        f"<entry><id>urn:{n}</id><title>{title}</title><updated>2026-11-28T{n:02d}:00:00Z</updated>"
        f'<link href="https://news.example/{n}"/>{extra}<content type="text">{content}</content></entry>'
    )


def test_titles_and_excerpts_are_never_cut_inside_a_character(tmp_path: Path) -> None:
    entries = "".join(_entry(n, "", text) for n, text in enumerate(UNCUT.values(), 1))
    out = fetch_feed_text(tmp_path, "f.atom", _feed(entries))
    shown: list[str] = []
    atom = lxml.etree.parse(str(out / "category" / "c.atom"))
    for entry in atom.iter(f"{ATOM}entry"):
        shown += [entry.findtext(f"{ATOM}title") or "", entry.findtext(f"{ATOM}summary") or ""]
    for item in json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]:
        shown += [item.get("title", ""), item.get("summary", "")]
    pages = [out / "category" / "c.html", *sorted((out / "posts").rglob("*.html"))]
    for page in pages:
        doc = lxml.html.parse(str(page)).getroot()
        shown += [doc.findtext(".//title").split(" · ")[0], *doc.xpath("//meta[@name='description']/@content")]
        shown += [" ".join(e.text_content().split()) for e in doc.xpath("//h1|//h3|//p[@class='excerpt']")]
    assert len(pages) == 1 + len(UNCUT)
    problems = [p for p in (_check_cut(s, UNCUT) for s in shown if s) if p]
    assert problems == []


# Bidi controls: an override or embedding opened in a name and never closed (`\u202e`, RLO)
# runs on to the end of its paragraph, reversing the site's own text after it.
OPENERS = {"\u202a": "e", "\u202b": "e", "\u202d": "e", "\u202e": "e", "\u2066": "i", "\u2067": "i", "\u2068": "i"}


def _open_at_end(text: str) -> int:
    """How many bidi embeddings, overrides and isolates `text` leaves open (UAX #9)."""
    stack: list[str] = []
    for ch in text:
        if ch in OPENERS:
            stack.append(OPENERS[ch])
        elif ch == "\u202c" and stack and stack[-1] == "e":
            stack.pop()
        elif ch == "\u2069" and "i" in stack:
            while stack.pop() != "i":
                pass
    return len(stack)


def test_a_bidi_override_in_a_title_or_name_reverses_nothing_after_it(tmp_path: Path) -> None:
    author = "<author><name>Anna \u202eKarenina</name></author>"
    entries = _entry(1, "Breaking \u202enews \u2067from", "Text.", author) + _entry(2, "خبر عاجل", "نص.")
    feed = _feed(entries).replace("<title>Desk</title>", "<title>Multi \u202eSOURCE \u202bمصدر</title>")
    out = fetch_feed_text(tmp_path, "f.atom", feed)
    pages = [out / "index.html", out / "category" / "c.html", *sorted((out / "posts").rglob("*.html"))]
    assert len(pages) == 4
    for page in pages:
        doc = lxml.html.parse(str(page)).getroot()
        title = doc.findtext(".//title")
        assert title.endswith(" · T") or title == "T", title
        assert _open_at_end(title.removesuffix(" · T")) == 0, (page.name, title)
        for meta in doc.xpath("//p[@class='meta']"):
            for part in meta.xpath(".//span[not(@class='sep')]|.//a"):
                assert _open_at_end(part.text_content()) == 0, (page.name, part.text_content())
            # names from feeds and the config are isolated from the separators beside them
            names = meta.xpath(".//span[@class='source']|.//a[@class='cat']|.//span/a|.//bdi")
            assert names and all(n.get("dir") == "auto" or n.tag == "bdi" for n in names), page.name


THAI_PHRASES = (
    "ที่กรุงเทพมหานครวันนี้มีฝนตกหนักหลายพื้นที่ ทำให้การจราจรติดขัดอย่างมากในช่วงเช้าและช่วงเย็นของวันทำงานปกติ"
    " กรมอุตุนิยมวิทยาเตือนว่าฝนจะตกต่อเนื่องไปอีกสามวัน ประชาชนควรเตรียมพร้อมรับมือกับน้ำท่วมขัง"
)


def test_an_untitled_thai_posts_title_is_its_first_phrase_not_its_whole_text(tmp_path: Path) -> None:
    """Thai puts spaces between phrases, not words: an untitled post's title, its first twelve
    "words", was its whole text (as a Chinese one's was before its titles were cut at 30
    characters), repeated in every listing and feed. It is the first phrase that fits."""
    out = fetch_feed_text(tmp_path, "f.atom", _feed(_entry(1, "", THAI_PHRASES)))
    atom = lxml.etree.parse(str(out / "category" / "c.atom"))
    titles = [e.findtext(f"{ATOM}title") for e in atom.iter(f"{ATOM}entry")]
    assert titles == [THAI_PHRASES.split()[0] + "…"]
    page = next((out / "posts").rglob("*.html"))
    assert lxml.html.parse(str(page)).getroot().findtext(".//h1") == titles[0]


def test_an_untitled_post_with_a_long_accented_word_is_titled_by_its_first_twelve_words(tmp_path: Path) -> None:
    """The Thai rule (cut at the last phrase within 60 characters) took any text holding a
    word of over 40 characters not all ASCII for phrases: an untitled English post linking a
    French Wikipedia page further on, a German one with a long compound, lost its twelve words
    for a shorter title. Only Thai, Lao, Khmer and Burmese phrases are cut so."""
    text = (
        "Just read this great piece about the election results and what they mean for the coming"
        " years, see https://fr.wikipedia.org/wiki/Élection_présidentielle_française_de_2022"
    )
    out = fetch_feed_text(tmp_path, "f.atom", _feed(_entry(1, "", text)))
    atom = lxml.etree.parse(str(out / "category" / "c.atom"))
    titles = [e.findtext(f"{ATOM}title") for e in atom.iter(f"{ATOM}entry")]
    assert titles == [" ".join(text.split()[:12]) + "…"]


def test_an_untitled_thai_post_whose_long_phrase_comes_after_its_twelfth_is_cut_at_a_phrase(tmp_path: Path) -> None:
    """Since c55db50 only the first twelve words were looked at for a phrase of over 40
    characters: a Thai post whose first twelve phrases were shorter was titled by all twelve
    (264 characters) instead of cut at the last phrase within 60, as before. A head in Thai
    letters is cut so when the text holds such a phrase anywhere (an English head still not)."""
    phrases = [
        "ประเทศไทยมีฝนตกหนัก", "ในหลายจังหวัดภาคเหนือ", "เมื่อวันจันทร์ที่ผ่านมา", "กรมอุตุนิยมวิทยาเตือน",
        "ประชาชนให้ระวังน้ำท่วม", "ฉับพลันและน้ำป่าไหลหลาก", "โดยเฉพาะพื้นที่ลาดเชิงเขา", "และใกล้ทางน้ำไหลผ่าน",
        "เจ้าหน้าที่เตรียมพร้อม", "ช่วยเหลือผู้ประสบภัย", "ตลอดยี่สิบสี่ชั่วโมง", "ในช่วงสัปดาห์นี้",
        "ผู้ว่าราชการจังหวัดเชียงใหม่ได้สั่งการให้ทุกอำเภอเตรียมพร้อมรับมือสถานการณ์",
    ]  # fmt: skip
    out = fetch_feed_text(tmp_path, "f.atom", _feed(_entry(1, "", " ".join(phrases))))
    atom = lxml.etree.parse(str(out / "category" / "c.atom"))
    titles = [e.findtext(f"{ATOM}title") for e in atom.iter(f"{ATOM}entry")]
    assert titles == [" ".join(phrases[:2]) + "…"]


def test_a_bidi_override_in_a_title_or_name_is_closed_in_the_feeds(tmp_path: Path) -> None:
    """Readers show an entry's title on one line with its excerpt, source or date: an override
    left open in the title reversed them. Every title, name and tag the feeds write closes
    what it opens; the text itself is kept."""
    extra = '<author><name>Anna \u202eKarenina</name></author><category term="\u2067tag"/>'
    feed = _feed(_entry(1, "Breaking \u202enews \u2067from", "Text.", extra))
    out = fetch_feed_text(tmp_path, "f.atom", feed, top="jekyll:\n  dir: site\n")
    atom = lxml.etree.parse(str(out / "category" / "c.atom"))
    entry = next(atom.iter(f"{ATOM}entry"))
    shown = [
        entry.findtext(f"{ATOM}title"),
        entry.findtext(f"{ATOM}author/{ATOM}name"),
        *(c.get("term") for c in entry.iter(f"{ATOM}category")),
    ]
    rss = lxml.etree.parse(str(out / "category" / "c.rss"))
    shown += [rss.findtext("channel/item/title"), *(c.text for c in rss.iter("category"))]
    item = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"][0]
    shown += [item["title"], *(a["name"] for a in item["authors"]), *item["tags"]]
    (post,) = (tmp_path / "site" / "_posts").glob("*.md")  # a theme's <title> follows it with the site's name
    shown.append(yaml.safe_load(post.read_text(encoding="utf-8").split("---\n")[1])["title"])
    assert shown[0] == "Breaking \u202enews \u2067from\u2069\u202c"
    assert [s for s in shown if _open_at_end(s)] == []


def test_a_title_that_shows_nothing_is_made_from_the_text(tmp_path: Path) -> None:
    """A title of a zero-width space (`&#8203;`, written by some sites for "no title"), a BOM,
    a bidi mark or a hangul filler was published as it was: an invisible link in every listing
    and an empty-looking entry in readers. The post is titled from its text, as an untitled one."""
    blanks = ["&#8203;", "\u200e", "\u2060\ufeff", "\u3164", "&#x200B; &#x200B;", "\u202e"]
    entries = "".join(_entry(n, title, f"Real text of post {n} here.") for n, title in enumerate(blanks, 1))
    out = fetch_feed_text(tmp_path, "f.atom", _feed(entries + _entry(20, "Seen\u200b", "Text.")))
    atom = lxml.etree.parse(str(out / "category" / "c.atom"))
    titles = sorted(e.findtext(f"{ATOM}title") for e in atom.iter(f"{ATOM}entry"))
    assert titles == ["Real text of post 1 here.", *(f"Real text of post {n} here." for n in range(2, 7)), "Seen\u200b"]
    listing = lxml.html.parse(str(out / "category" / "c.html")).getroot()
    assert sorted(a.text for a in listing.xpath("//ol[@class='posts']//h3/a")) == titles


def test_an_upgrade_remakes_what_version_9_stored_without_dating_it(tmp_path: Path, httpserver) -> None:
    """Version 9 stored an untitled Thai post titled with its whole text and a code block
    without its first blank line; the feed answers 304 since. After the upgrade (10) the feed
    is read in full once: the posts take the new title and content, keeping ids and `updated`
    (no edit, not moved to the top as news)."""
    import sqlite3

    from .conftest import fetch_one_feed

    code = '<content type="html">&lt;pre&gt;\n\n    indented()\n&lt;/pre&gt;</content>'
    body = _feed(_entry(1, "", THAI_PHRASES) + _entry(2, "Code", "").replace('<content type="text"></content>', code))
    served = {"Content-Type": "application/atom+xml", "ETag": '"v1"'}
    httpserver.expect_request("/feed", headers={"If-None-Match": '"v1"'}).respond_with_data("", status=304)
    httpserver.expect_request("/feed").respond_with_data(body, headers=served)
    fetch_one_feed(tmp_path, httpserver.url_for("/feed"))
    con = sqlite3.connect(tmp_path / "aggregator.db")
    con.row_factory = sqlite3.Row
    want = {r["id"]: dict(r) for r in con.execute("SELECT id, title, content, updated FROM posts")}
    assert {r["title"] for r in want.values()} == {THAI_PHRASES.split()[0] + "…", "Code"}
    with con:  # as version 9 stored them
        for pid, r in want.items():
            title = THAI_PHRASES if r["title"] != "Code" else "Code"
            content = r["content"].replace("<pre>\n\n", "<pre>\n")
            con.execute(
                "UPDATE posts SET title = ?, content = ?, content_hash = 'older', normalized = 9 WHERE id = ?",
                [title, content, pid],
            )
        con.execute("UPDATE sources SET read_by = 9")
    fetch_one_feed(tmp_path, httpserver.url_for("/feed"))
    after = {r["id"]: dict(r) for r in con.execute("SELECT id, title, content, updated FROM posts")}
    con.close()
    assert after == want
