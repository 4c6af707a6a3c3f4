"""Unit tests of the Jekyll export against the reference post the old site published."""

from __future__ import annotations

import email.utils
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from lxml import etree

from aggregator.models import Post
from aggregator.publish.feeds import bidi_closed
from aggregator.publish.jekyll import jekyll_filename, render_jekyll
from aggregator.sanitize import one_line

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference" / "sample-post.md"
ZHANGYE = SHARED / "corpus" / "zh" / "zhangye-daily.gbk.rss"
SITE = "https://finews.withounder.com/"


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


@pytest.fixture(scope="module")
def reference_post() -> Post:
    """The reference entry built by hand from the first item of the GBK feed it came from."""
    text = ZHANGYE.read_bytes().decode("gbk")
    root = etree.fromstring(re.sub(r"^<\?xml[^>]*\?>", "", text).encode("utf-8"))
    item = root.find("channel/item")
    published = email.utils.parsedate_to_datetime(item.findtext("pubDate")).astimezone(UTC)
    assert published == datetime(2022, 2, 10, 2, 38, 21, tzinfo=UTC)
    return Post(
        id="5f0c3a9e1b2d4c6f",
        source="http://finews.zning.xyz/zhangyeribao/",
        guid=item.findtext("guid"),
        title=item.findtext("title"),
        link=item.findtext("link"),
        published=published,
        updated=published,
        content=item.findtext("description"),
        source_title="张掖日报",
    )


def _zh(post: Post, **kw) -> str:
    args = dict(
        category_slug="zhangyeribao",
        tags=["张掖日报新闻"],
        back_label="张掖日报新闻",
        site_url=SITE,
        timezone="Asia/Shanghai",
        language="zh-CN",
    )
    args.update(kw)
    return render_jekyll(post, **args)


def test_reference_post_byte_for_byte(reference_post: Post) -> None:
    expected = REFERENCE.read_text(encoding="utf-8")
    assert _zh(reference_post) == expected
    assert not expected.endswith("\n")


def test_attribution_not_repeated_when_content_has_one(reference_post: Post) -> None:
    # The reference content already ends with （文章来源：张掖日报）: asking for attribution adds none.
    out = _zh(reference_post, attribution="张掖日报")
    assert out == REFERENCE.read_text(encoding="utf-8")
    assert out.count("文章来源") == 1


def test_attribution_added_when_missing(reference_post: Post) -> None:
    post = replace(reference_post, content="<p>正文</p>")
    out = _zh(post, attribution="张掖日报 & Co")
    assert '<p>正文</p><p class="em_media">（文章来源：张掖日报 &amp; Co）</p>\n\n<http://' in out
    assert "文章来源" not in _zh(post)  # only when asked for


def test_filename_uses_site_time_zone(reference_post: Post) -> None:
    assert jekyll_filename(reference_post, "Asia/Shanghai") == "2022-02-10-5f0c3a9e1b2d4c6f.md"
    late = replace(reference_post, published=datetime(2022, 2, 9, 20, 30, tzinfo=UTC))
    assert jekyll_filename(late, "Asia/Shanghai") == "2022-02-10-5f0c3a9e1b2d4c6f.md"
    assert jekyll_filename(late, "UTC") == "2022-02-09-5f0c3a9e1b2d4c6f.md"
    assert "date: 2022-02-10 04:30:00 +0800\n" in _zh(late)


def test_english_site() -> None:
    post = Post(
        id="00000000000000aa",
        source="https://example.org/feed",
        guid="x",
        title="Rust 2.0 released",
        link="https://example.org/news/rust 2.0?a=1&b=<2>",
        published=datetime(2024, 7, 1, 23, 15, 0, tzinfo=UTC),
        updated=datetime(2024, 7, 2, 0, 0, 0, tzinfo=UTC),
        content="<p>Big news.</p>\n",
    )
    out = render_jekyll(
        post,
        category_slug="tech-news",
        tags=["tech", "rust"],
        back_label="tech",
        site_url="https://news.example.com/",
        timezone="America/New_York",
        language="en",
        layout="article",
        attribution="Example News",
    )
    assert out == (
        "---\n"
        "layout: article\n"
        'title: "Rust 2.0 released"\n'
        "date: 2024-07-01 19:15:00 -0400\n"
        "categories: tech-news\n"
        "tags: tech rust\n"
        "---\n"
        '<p>Big news.</p><p class="em_media">(Source: Example News)</p>\n'
        "\n"
        "<https://example.org/news/rust%202.0?a=1&b=%3C2%3E>\n"
        "\n"
        "[Back to tech](//news.example.com/category/tech-news.html) \\| [Home](//news.example.com/)"
    )
    fm = _front_matter(out)
    assert fm["tags"].split() == ["tech", "rust"]


@pytest.mark.parametrize(
    ("language", "source", "footer"),
    [
        ("fr-FR", "(Source\u00a0: Exemple)",
         "[Retour à tech](//n.example/category/t.html) \\| [Accueil](//n.example/)"),
        ("de", "(Quelle: Exemple)", "[Zurück zu tech](//n.example/category/t.html) \\| [Startseite](//n.example/)"),
        ("ja", "(出典：Exemple)", "[techに戻る](//n.example/category/t.html) \\| [ホーム](//n.example/)"),
    ],
)  # fmt: skip
def test_the_jekyll_posts_words_are_in_the_site_language(language: str, source: str, footer: str) -> None:
    """Every site but a Chinese one had "(Source: …)" and "Back to … | Home" in English in its
    Jekyll posts, a French or Japanese one too, though its pages speak its language."""
    post = Post(
        id="00000000000000aa",
        source="https://n.example/feed",
        guid="g",
        title="Titre",
        link="",
        published=datetime(2024, 7, 1, 23, 15, 0, tzinfo=UTC),
        updated=datetime(2024, 7, 1, 23, 15, 0, tzinfo=UTC),
        content="<p>Texte.</p>",
    )
    out = render_jekyll(
        post, category_slug="t", tags=["tech"], back_label="tech", site_url="https://n.example/",
        timezone="UTC", language=language, attribution="Exemple",
    )  # fmt: skip
    assert f'<p class="em_media">{source}</p>' in out and out.endswith("\n\n" + footer)


def test_existing_source_line_is_respected() -> None:
    post = Post(
        id="00000000000000ab",
        source="s",
        guid="g",
        title="t",
        link=None,
        published=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        content="<p>Text</p>\n<p>Source: Reuters</p>",
    )
    out = render_jekyll(
        post,
        category_slug="w",
        tags=[],
        back_label="World",
        site_url="http://w.example/",
        timezone="UTC",
        language="en-GB",
        attribution="Wire",
    )
    assert "(Source: Wire)" not in out
    assert "tags:" not in out  # no tags, no line
    # No link: the body is followed directly by the links back.
    assert out.endswith(
        "<p>Source: Reuters</p>\n\n[Back to World](//w.example/category/w.html) \\| [Home](//w.example/)"
    )


@pytest.mark.parametrize(
    "title",
    [
        'He said "hi" \\ then left',
        "为高质量发展注入“源头活水”",
        "C:\\path\\ \"quoted\" and 'single'",
        "Line\nbreak\tand\x00 control\x1f chars",
        "---",
        "key: value # not a comment",
    ],
)
def test_title_escaping_round_trips_through_yaml(title: str) -> None:
    post = Post(
        id="00000000000000ac",
        source="s",
        guid="g",
        title=title,
        link="https://e.example/a",
        published=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        summary="<p>summary only</p>",
    )
    out = render_jekyll(
        post,
        category_slug="2024",
        tags=["true", "a: b"],
        back_label="[x]",
        site_url="https://e.example/",
        timezone="UTC",
        language="zh-TW",
    )
    title_line = next(line for line in out.splitlines() if line.startswith("title: "))
    assert title_line.startswith('title: "') and title_line.endswith('"')
    fm = _front_matter(out)
    expected = " ".join(title.replace("\x00", "").replace("\x1f", "").split())
    assert fm["title"] == expected
    assert fm["categories"] == "2024"  # quoted: a bare 2024 would be read as a number
    assert fm["tags"] == ["true", "a: b"]  # a list: Jekyll splits a string of tags at its spaces
    assert "\n<p>summary only</p>\n\n<https://e.example/a>\n\n" in out  # summary when no content
    assert out.endswith("[返回\\[x\\]](//e.example/category/2024.html)｜[返回首页](//e.example/)")


def test_liquid_in_content_is_neutralized() -> None:
    post = Post(
        id="00000000000000ad",
        source="s",
        guid="g",
        title="t",
        link=None,
        published=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        content="<p>{{ site.secret }} {% include evil.html %}</p>",
    )
    out = render_jekyll(
        post,
        category_slug="c",
        tags=["c"],
        back_label="c",
        site_url="https://e.example/",
        timezone="UTC",
        language="en",
    )
    assert "{{" not in out and "{%" not in out
    assert "&#123;&#123; site.secret }}" in out


def test_autolink_percent_encodes_what_markdown_and_xml_refuse() -> None:
    """Links stored by earlier versions hold what the feed gave: DEL would end the autolink
    (CommonMark ends one at any ASCII control) and U+FFFF/FFFE are characters XML 1.0 forbids."""
    post = Post(
        id="00000000000000ad",
        source="s",
        guid="g",
        title="t",
        link="https://e.example/a\uffffb\x7fc\ufffe",
        published=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        content="<p>x</p>",
    )
    out = render_jekyll(
        post, category_slug="c", tags=[], back_label="c", site_url="https://e.example/", timezone="UTC", language="en"
    )
    assert "\n<https://e.example/a%EF%BF%BFb%7Fc%EF%BF%BE>\n" in out


def _en(content: str) -> str:
    post = Post(
        id="00000000000000ad",
        source="s",
        guid="g",
        title="t",
        link=None,
        published=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        content=content,
    )
    out = render_jekyll(
        post, category_slug="c", tags=[], back_label="c", site_url="https://e.example/", timezone="UTC", language="en"
    )
    return out.split("\n---\n", 1)[1].rsplit("\n\n", 1)[0]  # the body, without the footer


def test_markdown_in_sanitized_text_starts_nothing() -> None:
    """kramdown reads the body's text as Markdown: a link to `javascript:` or an attribute list
    adding an event handler, both plain text to the sanitizer, must not come out of it."""
    from aggregator.sanitize import sanitize_html

    link = sanitize_html("Hi [click](javascript:alert(1)) <span>![i](https://t.example/x.png)</span>")
    assert _en(link) == "Hi &#91;click](javascript:alert(1)) <span>!&#91;i](https://t.example/x.png)</span>"
    ial = sanitize_html('<p>*x*{: onmouseover="alert(1)"}</p>\n\n{: onclick="alert(2)"}\n\n[a]: javascript:alert(3)')
    assert _en(ial) == (
        '<p>&#42;x&#42;&#123;: onmouseover="alert(1)"}</p>\n&#123;: onclick="alert(2)"}\n&#91;a]: javascript:alert(3)'
    )
    # inside tags nothing changes: a URL keeps its brackets and braces as the sanitizer wrote them
    attr = sanitize_html('<a href="https://e.example/?a[]={1}">l</a>', "https://e.example/")
    assert _en(attr) == attr


def test_no_line_is_a_markdown_table() -> None:
    """kramdown makes a table of any line holding a bare `|`: the English footer's separator,
    a `|` in the category's label, or one in the text of the body."""
    post = Post(
        id="00000000000000ad",
        source="s",
        guid="g",
        title="t",
        link=None,
        published=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        content='Lakers | Celtics <a href="https://e.example/a|b">x</a>',
    )
    out = render_jekyll(
        post, category_slug="c", tags=[], back_label="A|B", site_url="https://e.example/", timezone="UTC", language="en"
    )
    body, footer = out.split("\n---\n", 1)[1].rsplit("\n\n", 1)
    assert body == 'Lakers &#124; Celtics <a href="https://e.example/a|b">x</a>'
    assert footer == "[Back to A\\|B](//e.example/category/c.html) \\| [Home](//e.example/)"


@pytest.mark.parametrize(
    "value", ["24:7", "=", "<<", "0b11", "tRUE", "yEs", "n", "1e3", ".5", "-1", "+.INF", "2022-02-10", "zhangyeribao"]
)
def test_front_matter_values_read_back_as_the_same_strings(reference_post: Post, value: str) -> None:
    """YAML 1.1 readers take `24:7` for 1447, `0b11` for 3, `tRUE` for a boolean (Ruby's Psych,
    which Jekyll uses, in any case) and `=` for a key PyYAML cannot build: such values are quoted."""
    out = render_jekyll(
        reference_post,
        category_slug=value,
        tags=[value],
        back_label="x",
        site_url=SITE,
        timezone="Asia/Shanghai",
        language="zh-CN",
    )
    fm = _front_matter(out)
    assert fm["categories"] == value and fm["tags"] == value
    assert (f"categories: {value}\n" in out) == (value == "zhangyeribao")  # plain only where it is safe


# Every class of character YAML treats apart: C0 controls, DEL, C1 controls (NEL among them),
# the last of the Latin-1 block, the line and paragraph separators, both ends of the surrogates
# and of the private use area, a noncharacter, the byte order mark, U+FFFD to U+FFFF, and the
# planes above the first.
_CLASSES = [
    *range(0x100),
    *(0x2028, 0x2029, 0xD7FF, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xE000, 0xF8FF, 0xFDD0, 0xFEFF),
    *(0xFFFD, 0xFFFE, 0xFFFF, 0x10000, 0x1FFFE, 0x1F600, 0xE0001, 0x10FFFF),
]
_PSYCH = """
require "yaml"; require "json"; require "date"
docs = JSON.parse(STDIN.read)
fields = ["layout", "title", "categories", "tags"]
puts JSON.generate(docs.map { |d| YAML.safe_load(d, permitted_classes: [Time, Date]).slice(*fields) })
"""


def _readers(heads: list[str], round_trip: bool = True) -> list[list[dict]]:
    """Each front matter as every strict YAML reader reads it, Jekyll's own (Ruby's Psych)
    included: PyYAML (pure, libyaml), ruamel (safe, and round-trip unless not `round_trip`: the
    slowest, it reads as its safe mode does). A character YAML does not allow raises in each."""
    import json
    import shutil
    import subprocess

    from ruamel.yaml import YAML

    fields = ("layout", "title", "categories", "tags")
    ruby = shutil.which("ruby")
    assert ruby, "ruby is not installed (Jekyll's; .ci/run installs Debian's jekyll)"
    psych = subprocess.run(
        [ruby, "-e", _PSYCH], input=json.dumps(heads), capture_output=True, text=True, encoding="utf-8", timeout=300
    )
    assert psych.returncode == 0, psych.stderr
    out = [[{k: d[k] for k in fields if k in d} for d in json.loads(psych.stdout)]]
    for load in (
        lambda h: yaml.load(h, Loader=yaml.SafeLoader),
        lambda h: yaml.load(h, Loader=yaml.CSafeLoader),
        YAML(typ="safe", pure=True).load,
        *((YAML(typ="rt").load,) if round_trip else ()),
    ):
        out.append([{k: (list(d[k]) if k == "tags" and not isinstance(d[k], str) else d[k]) for k in fields if k in d}
                    for d in map(load, heads)])  # fmt: skip
    return out


def _head(out: str) -> str:
    assert out.startswith("---\n")
    return out[4:].partition("\n---\n")[0]


def _with(text: str, *, tags: list[str], slug: str = "c", layout: str = "post") -> str:
    post = Post(
        id="00000000000000ad",
        source="s",
        guid="g",
        title=text,
        link=None,
        published=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
        content="<p>x</p>",
    )
    args = dict(back_label="x", site_url="https://e.example/", timezone="UTC", language="en", layout=layout)
    return _head(render_jekyll(post, category_slug=slug, tags=tags, **args))


def test_every_character_class_in_every_front_matter_field_reads_back() -> None:
    """A title made of mis-decoded text held a raw U+009D, and PyYAML, ruamel and Psych refused
    the file ("unacceptable character #x009d"; Jekyll's whole build stopped). Each character of
    each class, in the title, a tag alone (a plain scalar where it can be), a list of tags, the
    category and the layout: every reader gives back the text as `one_line` keeps it."""
    heads, want = [], []
    for code in _CLASSES:
        c = chr(code)
        heads.append(_with(f"a{c}b", tags=[f"t{c}"], slug=f"c{c}", layout=f"post{c}"))
        want.append({"layout": one_line(f"post{c}"), "title": one_line(f"a{c}b"), "categories": one_line(f"c{c}"),
                     "tags": one_line(f"t{c}")})  # fmt: skip
        heads.append(_with(f"{c}", tags=["x y", f"{c}z"]))
        want.append({"layout": "post", "title": one_line(c), "categories": "c",
                     "tags": ["x y", one_line(f"{c}z")]})  # fmt: skip
    for reader in _readers(heads):
        assert reader == want


def test_every_character_in_a_title_and_its_tags_reads_back() -> None:
    """All of Unicode, U+0000 to U+10FFFF, 4,096 characters a title and a tag: every strict
    reader gives each back as `one_line` keeps it."""
    heads, want = [], []
    for start in range(0, 0x110000, 0x1000):
        text = "".join(chr(c) for c in range(start, start + 0x1000))
        tag = one_line(text)  # a tag with a space in it is written in a list (Jekyll splits a string)
        heads.append(_with(text, tags=[text]))
        # (the title closes the bidi overrides it opens: publish.feeds.bidi_closed)
        want.append({"title": bidi_closed(one_line(text)), "tags": [tag] if " " in tag else tag})
    for reader in _readers(heads, round_trip=False):
        assert [{k: d[k] for k in ("title", "tags")} for d in reader] == want


def test_a_long_run_of_markdown_like_text_is_exported_in_linear_time(tmp_path) -> None:
    """A feed entry whose text is a long run of lines ending in a space (or of `*`, or `# `
    lines), and no tag after it: each of its matches was checked for being in a tag by a
    lookahead that scanned the rest of the text, so its export took time squared in its
    length (300 KB: minutes; the 16 MB a feed may send: days), holding every publish."""
    import time

    from .conftest import fetch_feed_text

    runs = [" \n" * 150_000, "*" * 300_000, "\n# x" * 75_000]
    items = "".join(
        f"<item><title>long {n}</title><guid>long-{n}</guid><description>{text}</description></item>"
        for n, text in enumerate(runs)
    )
    rss = f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><link>https://f.example/</link>{items}</channel></rss>'
    start = time.monotonic()
    fetch_feed_text(tmp_path, "long.xml", rss, top="jekyll:\n  dir: jekyll\n")
    assert time.monotonic() - start < 60
    written = sorted((tmp_path / "jekyll" / "_posts").glob("*.md"))
    assert len(written) == 3
    bodies = "".join(p.read_text(encoding="utf-8") for p in written)
    assert "*" not in bodies.split("---", 2)[2] and "&#42;" * 1000 in bodies  # still shown as text
    assert "\n# x" not in bodies and "\n&#35; x" in bodies


@pytest.mark.parametrize("blank", [" ", "\t"])
def test_a_long_run_of_blanks_not_ending_a_line_is_exported_in_linear_time(blank) -> None:
    """Spaces ending a line are taken out; a long run of them that does not end one (with a
    line ending in a space elsewhere in the text) was tried from each of its blanks, each
    scanning the rest of the run: 80 KB took 7 s, a megabyte of them twenty minutes."""
    import time

    from aggregator.publish.jekyll import _no_markdown

    text = "<p>a" + blank * 200_000 + "b \nc</p>"
    start = time.process_time()
    out = _no_markdown(text)
    assert time.process_time() - start < 5
    assert out == "<p>a" + blank * 200_000 + "b\nc</p>"


@pytest.mark.parametrize(
    ("site_language", "post_language", "title", "text", "lang"),
    [
        ("en", "ar", "10 أسباب لزيارة دبي!", "<p>هذا نص عربي.</p>", "ar"),
        ("en-US", "he-IL", "Google משיקה מוצר חדש.", "<p>טקסט בעברית.</p>", "he-IL"),
        ("ar", "en-us", "Markets rally again", "<p>Stocks rose on Monday.</p>", "en-us"),
        ("en", "en-GB", "Markets rally again", "<p>Stocks rose.</p>", None),  # the site's language
        ("zh-CN", "zh-cn", "兰州新区生产总值增长", "<p>据统计。</p>", None),
        # evidently not English, or naming none, in another script than the site's: undetermined, as
        # its page says `lang=""` (a theme's `default` takes "" for none)
        ("en", "en-US", "گزارش خبری درباره اقتصاد", "<p>این یک متن فارسی است.</p>", "und"),
        ("en", None, "انفجار في بيروت", "<p>وقع انفجار كبير.</p>", "und"),
        ("zh-CN", None, "World markets rally", "<p>Stocks rose.</p>", "und"),
        ("en", None, "Markets rally again", "<p>Stocks rose.</p>", None),  # names none, written as the site is
        # another variety: traditional script on a simplified site, another region's English
        ("zh-CN", "zh-TW", "繁體標題", "<p>內容</p>", "zh-TW"),
        ("zh-CN", "zh-Hant", "繁體標題", "<p>內容</p>", "zh-Hant"),
        ("zh-CN", "zh_HK", "繁體標題", "<p>內容</p>", "zh-HK"),
        ("zh-TW", "zh-Hant-TW", "繁體標題", "<p>內容</p>", None),
        ("zh-CN", "zh", "兰州新区生产总值增长", "<p>据统计。</p>", None),
        ("en-US", "en-GB", "Markets rally again", "<p>Stocks rose.</p>", "en-GB"),
    ],
)
def test_a_jekyll_post_in_another_language_than_the_sites_says_it(
    site_language: str, post_language: str | None, title: str, text: str, lang: str | None
) -> None:
    """An Arabic post exported to an English Jekyll site had no word of its language: its page was
    English (`<html lang="{{ page.lang | default: site.lang }}">` in minima), an Arabic text read in
    an English voice (WCAG 3.1.2). It says `lang: ar`, as the site's page says `lang="ar"`; a post
    in the site's language says nothing. A `zh-TW` post of a `zh-CN` site said nothing either (only
    the primary language was compared), nor did one naming no language (or one its text is
    evidently not in) written in another script than the site's, whose page says `lang=""`: `und`."""
    post = Post(
        id="00000000000000ab",
        source="https://example.org/feed",
        guid="x",
        title=title,
        link="https://example.org/1",
        published=datetime(2024, 7, 1, 23, 15, 0, tzinfo=UTC),
        updated=None,
        content=text,
        language=post_language,
    )
    out = render_jekyll(
        post,
        category_slug="c",
        tags=["t"],
        back_label="t",
        site_url="https://e.example/",
        timezone="UTC",
        language=site_language,
    )
    assert _front_matter(out).get("lang") == lang
    assert ("\nlang: " in out) == (lang is not None)
