"""The static site: page paths, what each page shows, escaping, language, feed
autodiscovery, self-contained pages, pagination and template overrides."""

from __future__ import annotations

import html as html_module
import json
import re
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from urllib.parse import urljoin

import lxml.etree
import lxml.html
import nh3
import pytest

from aggregator.config import load_config
from aggregator.models import Author, Enclosure, FeedInfo, Post, Source
from aggregator.publish import publish
from aggregator.publish.feeds import permalink
from aggregator.publish.site import redirect_page, strings_for, text_direction
from aggregator.store import Store

from .conftest import check_feeds, fetch_feeds, fetch_one_feed, run_cli, serve_corpus

SITE_URL = "https://finews.withounder.com/"

ZH = """\
site:
  title: 财经新闻
  url: https://finews.withounder.com
  language: zh-CN
  timezone: Asia/Shanghai
  posts_per_page: 2
categories:
  - name: 张掖日报
    tags: [张掖日报新闻]
    sources:
      - url: {base}zh/zhangye-daily.gbk.rss
        name: 张掖日报
  - name: 甘肃经济
    slug: economy
    sources:
      - url: {base}zh/gansu-economy.atom
"""


@pytest.fixture(scope="module")
def zh_site(tmp_path_factory, corpus_server) -> Path:
    tmp = tmp_path_factory.mktemp("zh-site")
    (tmp / "feeds.yaml").write_text(ZH.format(base=corpus_server.base), encoding="utf-8")
    result = run_cli("--config", str(tmp / "feeds.yaml"), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp / "public"


def html(path: Path) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(path.read_bytes())


def pages(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def test_the_pages_exist_where_promised(zh_site):
    names = {str(p.relative_to(zh_site)) for p in pages(zh_site)}
    assert {"index.html", "category/zhangyeribao.html", "category/economy.html"} <= names
    assert "category/zhangyeribao/page/2.html" in names  # 3 posts, 2 a page
    assert "category/economy/page/2.html" not in names  # 2 posts: one page
    posts = sorted(n for n in names if n.startswith("posts/"))
    assert len(posts) == 5 and all(n.startswith("posts/2022/02/") for n in posts)
    assert (zh_site / "style.css").is_file() and (zh_site / "opml.xml").is_file()


def test_post_page_path_is_the_feeds_permalink(zh_site):
    feed = json.loads((zh_site / "category" / "zhangyeribao.json").read_text(encoding="utf-8"))
    item = next(i for i in feed["items"] if "源头活水" in i["title"])
    post_id = item["id"].rsplit("/", 1)[1]
    page = zh_site / "posts" / "2022" / "02" / f"{post_id}.html"
    assert page.is_file()
    when = datetime(2022, 2, 10, 2, 38, 21, tzinfo=UTC)
    fake = Post(id=post_id, source="s", guid="g", title="t", link=None, published=when, updated=when)
    assert permalink(SITE_URL, fake) == SITE_URL + str(page.relative_to(zh_site))


def test_post_page_shows_source_original_local_date_and_links_back(zh_site):
    page = next(p for p in (zh_site / "posts").rglob("*.html") if "源头活水" in p.read_text("utf-8"))
    doc = html(page)
    assert doc.findtext(".//h1") == "为高质量发展注入“源头活水”"
    time = doc.find(".//article//time")
    assert time.get("datetime") == "2022-02-10T10:38:21+08:00"  # Asia/Shanghai
    assert time.text_content() == "2022-02-10 10:38 (UTC+08:00)"
    meta = doc.find(".//article/header/p").text_content()
    assert "来源" in meta and "张掖日报" in meta
    assert "来源：张掖日报" in meta
    assert doc.find(".//article/header/p//a").get("href") == "http://finews.zning.xyz/zhangyeribao/"
    original = doc.find(".//a[@class='button']")
    assert original.get("href") == "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202102272218590"
    assert "阅读原文" in original.text_content()
    back = [(a.get("href"), a.text_content()) for a in doc.findall(".//nav[@class='back']/a")]
    assert back == [("../../../category/zhangyeribao.html", "返回张掖日报"), ("../../../index.html", "首页")]
    assert "人才支撑和智力保障" in doc.find(".//div[@class='content']").text_content()
    alt = {(a.get("type"), a.get("href")) for a in doc.findall(".//head/link[@rel='alternate']")}
    assert ("application/atom+xml", f"{SITE_URL}category/zhangyeribao.atom") in alt


def test_every_page_is_self_contained_with_language_and_autodiscovery(zh_site):
    for page in pages(zh_site):
        doc = html(page)
        where = page.relative_to(zh_site)
        assert doc.get("lang") == "zh-CN", where
        assert doc.find(".//head/meta[@name='viewport']") is not None, where
        assert doc.findall(".//script") == [], where  # no scripts at all
        (csp,) = doc.findall(".//head/meta[@http-equiv='Content-Security-Policy']")
        assert "script-src 'none'" in csp.get("content"), where  # and none would run if one slipped in
        for el in doc.iter():
            if el.tag in ("link", "img", "iframe", "source", "video", "audio", "embed", "object"):
                url = el.get("href") if el.tag == "link" else el.get("src") or el.get("data")
                if el.tag == "link" and el.get("rel") in ("alternate", "canonical"):
                    continue  # addresses for readers and crawlers, not loaded by the page
                if el.getparent() is not None and any(a.get("class") == "content" for a in el.iterancestors()):
                    continue  # the article's own media
                assert url and not url.startswith(("http:", "https:", "//")), f"{where}: external {el.tag} {url}"
        kinds = [a.get("type") for a in doc.findall(".//head/link[@rel='alternate']")]
        assert kinds == ["application/atom+xml", "application/rss+xml", "application/feed+json"], where
        for a in doc.findall(".//head/link[@rel='alternate']"):
            assert a.get("href").startswith(SITE_URL), where
        # every relative link leads to a file that exists
        for a in doc.iter("a", "link"):
            href = a.get("href") or ""
            if href.startswith(("http:", "https:", "//", "data:", "#", "mailto:")) or not href:
                continue
            target = Path(urljoin(f"file://{page}", href).removeprefix("file://").split("#")[0])
            assert target.is_file(), f"{where}: broken link {href}"


def test_autodiscovery_names_the_feed_offered_not_the_page(zh_site):
    """A reader subscribing from a post page gets its category's feed: the link's title must
    name that feed (a subscription named after one article would be wrong forever)."""
    names = {"zhangyeribao": "张掖日报", "economy": "甘肃经济", "feed": "财经新闻"}
    for page in pages(zh_site):
        for link in html(page).findall(".//head/link[@rel='alternate']"):
            feed = link.get("href").rsplit("/", 1)[1].split(".")[0]
            label = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}[link.get("href").rsplit(".", 1)[1]]
            assert link.get("title") == f"{names[feed]} ({label})", page.relative_to(zh_site)


def test_stylesheet_has_cjk_fonts_dark_mode_and_phone_layout(zh_site):
    css = (zh_site / "style.css").read_text(encoding="utf-8")
    for needle in ('"Noto Sans CJK SC"', '"PingFang SC"', '"Microsoft YaHei"', '"Noto Sans CJK TC"', ":lang(zh)"):
        assert needle in css
    assert "prefers-color-scheme: dark" in css and "color-scheme: light dark" in css
    assert "@media (max-width" in css
    assert "@import" not in css and "url(" not in css  # nothing fetched from elsewhere


def test_index_lists_newest_posts_and_categories_with_feed_links(zh_site):
    doc = html(zh_site / "index.html")
    titles = [a.text_content() for a in doc.findall(".//section[@class='latest']//h3/a")]
    assert titles == ["为高质量发展注入“源头活水”", "兰州新区2021年地区生产总值增长18.5%"]  # posts_per_page
    cats = doc.findall(".//aside[@class='categories']/ul/li")
    assert [li.find("a").text_content() for li in cats] == ["张掖日报", "甘肃经济"]
    assert [a.get("href") for a in cats[1].findall(".//a[@class='pill']")] == [
        "category/economy.atom",
        "category/economy.rss",
        "category/economy.json",
    ]
    assert "3 篇" in cats[0].text_content()


def test_category_pages_paginate(zh_site):
    first = html(zh_site / "category" / "zhangyeribao.html")
    second = html(zh_site / "category" / "zhangyeribao" / "page" / "2.html")
    assert len(first.findall(".//ol[@class='posts']/li")) == 2
    assert len(second.findall(".//ol[@class='posts']/li")) == 1
    assert first.find(".//a[@rel='next']").get("href") == "../category/zhangyeribao/page/2.html"
    assert first.find(".//a[@rel='prev']") is None
    assert second.find(".//a[@rel='prev']").get("href") == "../../../category/zhangyeribao.html"
    assert "第 2 页，共 2 页" in second.find(".//nav[@class='pager']").text_content()
    assert second.findtext(".//title") == "张掖日报 · 第 2 页，共 2 页 · 财经新闻"
    assert second.find(".//link[@rel='canonical']").get("href") == f"{SITE_URL}category/zhangyeribao/page/2.html"


def test_no_page_skips_a_heading_level(zh_site):
    """Screen readers list a page by its headings: the category pages went from the
    category's <h1> straight to <h3> post titles (WCAG 1.3.1). The templates' headings (a
    post's own content aside) start at <h1> and never skip a level on any page."""
    pages = list(zh_site.rglob("*.html"))
    assert any("category" in p.parts for p in pages) and any("posts" in p.parts for p in pages)
    outside_content = "//*[self::h1 or self::h2 or self::h3 or self::h4][not(ancestor::div[@class='content'])]"
    for page in pages:
        levels = [int(h.tag[1]) for h in html(page).xpath(outside_content)]
        assert levels and levels[0] == 1, (page, levels)
        assert all(after <= before + 1 for before, after in pairwise(levels)), (page, levels)


def test_every_page_has_a_skip_link_and_tells_its_navigation_apart(zh_site):
    """A keyboard or screen-reader user went through the masthead's links on every page
    before the post (WCAG 2.4.1: no skip link), and a post page had three <nav> landmarks,
    two of them unnamed, which a screen reader's list of landmarks shows as "navigation",
    "navigation". Each page opens with a link to its <main>, and each <nav> has its own name."""
    for page in pages(zh_site):
        doc = html(page)
        first = next(el for el in doc.find("body").iter() if el.tag == "a" or el.get("tabindex"))
        assert first.get("href") == "#main" and first.text_content().strip() == "跳到正文", page
        assert [el.tag for el in doc.xpath("//*[@id='main']")] == ["main"], page
        names = [nav.get("aria-label") for nav in doc.iter("nav")]
        assert all(names) and len(set(names)) == len(names), (page, names)


def test_a_chinese_post_pages_labels_take_the_full_width_colon(zh_site):
    """The tags line of a Chinese post page read `标签: 经济`, a Latin colon and space in
    Chinese text, where the page's other labels (`来源：`) take the full-width colon."""
    lines = [html(p).find(".//p[@class='tags']") for p in zh_site.glob("posts/*/*/*.html")]
    lines = [p.text_content() for p in lines if p is not None]
    assert lines and all(t.startswith("标签：") and "标签: " not in t for t in lines), lines


HOSTILE = """\
site:
  title: "Site <b>&amp; co</b>"
  url: https://e.example/
  timezone: America/New_York
categories:
  - name: "A&B <i>x</i>"
    slug: ab
    sources:
      - url: https://e.example/feed
        name: "<script>alert('name')</script>"
"""


def _published(tmp_path: Path, post: Post) -> Path:
    """The output folder once HOSTILE's config has published `post` (stored when first seen)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(HOSTILE, encoding="utf-8")
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        store.record_success(post.source, post.first_seen, 200, info=FeedInfo(title="t"), posts=[post])
        publish(settings, store)
    return settings.output_dir


def test_everything_but_sanitized_content_is_escaped(tmp_path):
    src = Source(key="https://e.example/feed", url="https://e.example/feed", categories=("ab",))
    when = datetime(2024, 7, 2, 3, 4, tzinfo=UTC)
    post = Post(
        id="00000000000000ff", source=src.key, guid="g", title="<script>alert(1)</script> & \"q\"",
        link="https://e.example/a?x=1&y=\"2\"", published=when, updated=when,
        content='<p>kept <b>bold</b> <a href="https://e.example/l">link</a></p>',
        authors=(Author(name="<img src=x onerror=alert(2)>"),), tags=("<i>tag</i>",),
        enclosures=(Enclosure("https://e.example/a.mp3", "audio/mpeg", 3), Enclosure("javascript:alert(3)")),
        content_hash="h", first_seen=when,
    )  # fmt: skip
    out = _published(tmp_path, post)
    for page in pages(out):
        doc = html(page)
        assert doc.findall(".//script") == [] and doc.findall(".//i") == [], page
        assert not [el for el in doc.iter() if any(k.startswith("on") for k in el.attrib)], page
        assert doc.xpath("//img") == [], page
    doc = html(out / "posts" / "2024" / "07" / "00000000000000ff.html")
    assert doc.findtext(".//h1") == '<script>alert(1)</script> & "q"'
    assert doc.findtext(".//title") == '<script>alert(1)</script> & "q" · Site <b>&amp; co</b>'
    assert [b.text for b in doc.findall(".//div[@class='content']//b")] == ["bold"]  # content is markup
    assert doc.find(".//a[@class='button']").get("href") == "https://e.example/a?x=1&y=%222%22"  # as the feeds write it
    assert doc.find(".//time").text == "2024-07-01 23:04 (UTC-04:00)"  # the site's zone, not UTC
    assert [a.get("href") for a in doc.findall(".//section[@class='attachments']//a")] == ["https://e.example/a.mp3"]
    assert "<i>tag</i>" in doc.find(".//p[@class='tags']").text_content()
    assert "By <img src=x onerror=alert(2)>" in doc.find(".//article/header/p").text_content()
    assert "A&B <i>x</i>" in html(out / "index.html").find(".//aside").text_content()
    assert doc.get("lang") == "en"
    assert [a.text_content() for a in doc.findall(".//nav[@class='back']/a")] == ["Back to A&B <i>x</i>", "Home"]


def test_a_feeds_home_page_is_linked_only_when_it_is_a_web_url(tmp_path):
    """`<link>javascript:…</link>` in a channel was linked from every post page ("Source: …")
    and the OPML's htmlUrl: the normalizer keeps no such home page, and the outputs link none
    that an earlier version stored."""
    from aggregator.normalize import feed_info
    from aggregator.parse import parse_feed

    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Evil</title>'
        b"<link>javascript:alert(document.domain)</link><item><guid>urn:1</guid></item></channel></rss>"
    )
    assert feed_info(parse_feed("s", body, "https://e.example/feed").info).link is None
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(HOSTILE, encoding="utf-8")
    settings = load_config(cfg)
    when = datetime(2024, 7, 2, 3, 4, tzinfo=UTC)
    post = Post(
        id="00000000000000fe", source="https://e.example/feed", guid="g", title="t", link="javascript:alert(2)",
        published=when, updated=when, content="<p>x</p>", content_hash="h", first_seen=when,
    )  # fmt: skip
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        info = FeedInfo(title="Evil", link="javascript:alert(1)")  # as stored before
        store.record_success(post.source, when, 200, info=info, posts=[post])
        publish(settings, store)
    out = settings.output_dir
    doc = html(out / "posts" / "2024" / "07" / "00000000000000fe.html")
    assert "Source: <script>" in doc.find(".//article/header/p").text_content()  # named, not linked
    assert not [a for a in doc.iter("a") if "javascript" in (a.get("href") or "").lower()]
    assert b"javascript" not in (out / "opml.xml").read_bytes()


def test_words_follow_the_site_language():
    assert strings_for("zh-CN")["home"] == "首页"
    assert strings_for("zh-TW")["home"] == strings_for("zh-Hant-HK")["home"] == "首頁"
    assert strings_for("en-GB")["original"] == strings_for("sv")["original"] == "Read the original"
    assert strings_for("fr-CA")["original"] == "Lire l’article original"
    assert {
        len(strings_for(tag))
        for tag in ("en", "zh", "zh-TW", "fr", "de", "es", "pt", "it", "ru", "ja", "ko", "ar", "he", "fa")
    } == {len(strings_for("en"))}  # every word in every language


@pytest.mark.parametrize(
    ("language", "home", "counts"),
    [
        ("en", "Home", {1: "1 post", 3: "3 posts"}),
        ("fr", "Accueil", {1: "1 article", 3: "3 articles"}),
        ("ru", "Главная", {1: "1 запись", 3: "3 записи", 5: "5 записей"}),
        ("ar", "الرئيسية", {1: "1 مقال", 3: "3 مقالات"}),
        ("he", "דף הבית", {1: "1 כתבה", 3: "3 כתבות"}),
        ("fa", "خانه", {1: "1 مطلب", 3: "3 مطلب"}),
        ("ja", "ホーム", {1: "1件", 3: "3件"}),
    ],
)
def test_the_pages_words_and_counts_are_in_the_site_language(tmp_path, httpserver, language, home, counts):
    """Pages of a French, German, Russian, Japanese or Arabic site said "Home", "Subscribe" and
    "Read the original" in English (only Chinese had its words), and an English category of one
    post said "1 posts". A Hebrew or Persian site still did, under `lang="he"`/`lang="fa"`: a
    screen reader read "Skip to content" in a Hebrew voice, and "Older →" pointed away from the
    older posts' link, on the left of a page laid out right to left."""
    for n in counts:
        items = "".join(f"<item><title>P{i}</title><link>https://e.example/{n}/{i}</link></item>" for i in range(n))
        body = f'<rss version="2.0"><channel><title>F{n}</title>{items}</channel></rss>'
        httpserver.expect_request(f"/{n}.xml").respond_with_data(body, content_type="application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    cats = "".join(
        f"  - name: C{n}\n    slug: c{n}\n    sources:\n      - url: {httpserver.url_for(f'/{n}.xml')}\n"
        for n in counts
    )
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\n  language: {language}\ncategories:\n{cats}", encoding="utf-8"
    )
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    out = tmp_path / "public"
    index = html(out / "index.html")
    assert index.get("lang") == language
    shown = [span.text_content().split(" · ")[0] for span in index.find_class("count")]
    assert shown == list(counts.values())
    for n, phrase in counts.items():
        page = html(out / "category" / f"c{n}.html")
        assert [p.text_content() for p in page.find_class("count")] == [phrase]
        assert page.find(".//nav").findall("a")[0].text_content() == home
    post = html(next((out / "posts").rglob("*.html")))
    original = strings_for(language)["original"]
    assert [a for a in post.iter("a") if a.text_content() == f"{original} ↗"], original


def test_a_russian_sites_pages_lead_to_newer_and_older_posts_in_russian_words(tmp_path, httpserver):
    """A Russian site's pages led on with "Старше →" ("older" as of a person's age: "старше 18")
    and back with "← Новее": no Russian blog says so; they say "Старые записи" and "Новые записи"."""
    items = "".join(
        f"<item><title>P{i}</title><link>https://e.example/{i}</link>"
        f"<pubDate>Mon, 0{i + 1} Nov 2026 10:00:00 +0000</pubDate></item>"
        for i in range(3)
    )
    httpserver.expect_request("/ru.xml").respond_with_data(
        f'<rss version="2.0"><channel><title>F</title>{items}</channel></rss>', content_type="application/rss+xml"
    )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\n  language: ru\n  posts_per_page: 1\n"
        f"categories:\n  - name: C\n    slug: c\n    sources:\n      - url: {httpserver.url_for('/ru.xml')}\n",
        encoding="utf-8",
    )
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    page = html(tmp_path / "public" / "category" / "c" / "page" / "2.html")
    assert [a.text_content() for a in page.iter("a") if a.get("rel") in ("prev", "next")] == [
        "← Новые записи",
        "Старые записи →",
    ]


def test_templates_folder_overrides_and_a_change_republishes(tmp_path, corpus_server):
    cfg = tmp_path / "feeds.yaml"
    (tmp_path / "theme").mkdir()
    (tmp_path / "theme" / "post.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 class="custom">{{ post.title }}</h1>{% endblock %}',
        encoding="utf-8",
    )
    text = ZH.format(base=corpus_server.base).replace("  posts_per_page: 2\n", "  templates: theme\n")
    cfg.write_text(text, encoding="utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    post_pages = list((tmp_path / "public" / "posts").rglob("*.html"))
    assert len(post_pages) == 5
    assert all(html(p).find(".//h1[@class='custom']") is not None for p in post_pages)
    assert html(tmp_path / "public" / "index.html").find(".//aside[@class='categories']") is not None  # built-in
    (tmp_path / "theme" / "post.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 class="changed">{{ post.title }}</h1>{% endblock %}',
        encoding="utf-8",
    )
    again = run_cli("--config", str(cfg), "fetch")  # no new posts, but the template changed
    assert again.returncode == 0 and "0 new posts" in again.stdout
    assert all(html(p).find(".//h1[@class='changed']") is not None for p in post_pages)

    cfg.write_text(text.replace("templates: theme", "templates: nowhere"), encoding="utf-8")
    bad = run_cli("--config", str(cfg), "check")
    assert bad.returncode == 2 and "site.templates: not a folder" in bad.stderr and "feeds.yaml:6: " in bad.stderr


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% extends 'base.html' %}{% block main %}\n{% if %}{% endblock %}", "theme/post.html:2: "),
        ("{% extends 'base.html' %}{% block main %}{{ post.no_such_field }}{% endblock %}", "theme/post.html:1: "),
        ("{% extends 'base.html' %}{% block main %}\n{{ 1 // 0 }}{% endblock %}", "theme/post.html:2: ZeroDivision"),
    ],
)
def test_a_broken_template_is_a_clear_error(tmp_path, corpus_server, template, message):
    cfg = tmp_path / "feeds.yaml"
    (tmp_path / "theme").mkdir()
    (tmp_path / "theme" / "post.html").write_text(template, encoding="utf-8")
    cfg.write_text(ZH.format(base=corpus_server.base).replace("  posts_per_page: 2\n", "  templates: theme\n"))
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: publishing failed: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert "2 new" in result.stdout  # the posts were stored all the same


@pytest.mark.parametrize(
    ("name", "template", "expected"),
    [
        (
            "index.html",
            "{% extends 'base.html' %}{% block main %}\n{% for p in posts %}{{ p.title }}{% endblock %}",
            "theme/index.html:2: site.templates: Encountered unknown tag 'endblock'.",
        ),
        (
            "post.html",
            "{% extends 'base.html' %}{% block main %}\n\n{{ post.title | shout }}{% endblock %}",
            "theme/post.html:3: site.templates: No filter named 'shout'.",
        ),
        (
            "_macros.html",  # not a page itself: the pages import it
            "{% macro feed_links(feeds) %}{% if %}{% endmacro %}",
            "theme/_macros.html:1: site.templates: ",
        ),
        (
            "category.html",
            "{% extends 'base.html' %}\n{% import 'mine.html' as m %}",
            "theme/category.html:2: site.templates: no template 'mine.html': neither in ",
        ),
        (
            "index.html",  # saved in another encoding than UTF-8: a traceback, exit 1
            b"{% extends 'base.html' %}\n\xc4\xe3\xba\xc3",
            "theme/index.html: site.templates: cannot read it: 'utf-8' codec can't decode byte 0xc4",
        ),
    ],
)
def test_check_compiles_the_templates(tmp_path, name, template, expected):
    """`check` said ok to a template that every publish then failed on (and the daemon every
    30 s): it compiles them, and says where each is broken, as the config's own errors."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://t.example/\n  templates: theme\n", encoding="utf-8")
    (tmp_path / "theme").mkdir()
    (tmp_path / "theme" / "README.txt").write_text("{% not a template %}")  # used by no page: not checked
    if isinstance(template, bytes):
        (tmp_path / "theme" / name).write_bytes(template)
    else:
        (tmp_path / "theme" / name).write_text(template, encoding="utf-8")
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    assert result.stderr.splitlines()[0].startswith(f"{tmp_path}/{expected}"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    (tmp_path / "theme" / name).unlink()
    fine = run_cli("--config", str(cfg), "check")
    assert fine.returncode == 0 and fine.stderr == "", fine.stderr


def test_check_names_a_broken_template_as_the_config_is_named(tmp_path):
    """The README shows `theme/index.html:3: site.templates: …` beside `feeds.yaml:5: …`,
    but the template's absolute path was printed whatever the config was called as: it is
    named from the config's own path, as given (absolute only when that is, or when the
    folder lies outside the config's)."""
    site = tmp_path / "site"
    (site / "theme").mkdir(parents=True)
    (site / "theme" / "index.html").write_text("{% extends 'base.html' %}\n{% endblock %}", encoding="utf-8")
    cfg = site / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://t.example/\n  templates: theme\n", encoding="utf-8")
    problem = "index.html:2: site.templates: Encountered unknown tag 'endblock'."
    for cwd, given, expected in [
        (site, "feeds.yaml", f"theme/{problem}"),
        (tmp_path, "site/feeds.yaml", f"site/theme/{problem}"),
        (tmp_path, str(cfg), f"{site}/theme/{problem}"),
    ]:
        result = run_cli("--config", given, "check", cwd=cwd)
        assert result.returncode == 2 and result.stderr == f"{expected}\n", result.stderr
    outside = tmp_path / "shared-theme"
    (site / "theme").rename(outside)
    cfg.write_text("site:\n  title: T\n  url: https://t.example/\n  templates: ../shared-theme\n", encoding="utf-8")
    result = run_cli("--config", "feeds.yaml", "check", cwd=site)
    assert result.returncode == 2 and result.stderr == f"{outside}/{problem}\n", result.stderr


def test_files_beside_the_templates_are_not_read_as_templates(tmp_path, corpus_server):
    """A vim swap file (or a .DS_Store, a logo) in the `site.templates` folder, not UTF-8, was
    read as a template: `check` said ok and every publish failed with a traceback (the
    daemon's every 30 s). Such files are left alone; a template changed still republishes,
    and a page's template not in UTF-8 is one error naming it, not a traceback."""
    theme = tmp_path / "theme"
    theme.mkdir()
    builtin = Path(__file__).parent.parent / "aggregator" / "templates" / "post.html"
    (theme / "post.html").write_text(builtin.read_text(encoding="utf-8"), encoding="utf-8")
    (theme / ".post.html.swp").write_bytes(b"b0VIM 9.0\x00\x00\x10\x00\xe4\xf3\xff")
    (theme / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\xff\xfe")
    (theme / "post.html~").write_bytes(b"\xc4\xe3\xba\xc3")
    (theme / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(ZH.format(base=corpus_server.base).replace("  posts_per_page: 2\n", "  templates: theme\n"))
    assert run_cli("--config", str(cfg), "check").returncode == 0
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
    post_pages = list((tmp_path / "public" / "posts").rglob("*.html"))
    assert len(post_pages) == 5
    (theme / "post.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 class="changed">{{ post.title }}</h1>{% endblock %}',
        encoding="utf-8",
    )
    again = run_cli("--config", str(cfg), "publish")
    assert again.returncode == 0, again.stderr
    assert all(html(p).find(".//h1[@class='changed']") is not None for p in post_pages)
    (theme / "post.html").write_bytes(b"{% extends 'base.html' %}\n\xc4\xe3\xba\xc3")
    broken = run_cli("--config", str(cfg), "publish")
    assert broken.returncode == 1 and "Traceback" not in broken.stderr, broken.stderr
    assert f"error: publishing failed: template {theme / 'post.html'}: cannot read it: " in broken.stderr


def numbered_feed(folder: Path, count: int) -> None:
    """`folder/f.rss`: posts `Post 1` … `Post <count>`, one a day, the last the newest."""
    items = "".join(
        f"<item><title>Post {n}</title><link>https://f.example/{n}</link><guid>f{n}</guid>"
        f"<pubDate>{n:02d} Jul 2024 03:04:00 +0000</pubDate><description>Text {n}</description></item>"
        for n in range(1, count + 1)
    )
    (folder / "f.rss").write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>'
        f"<link>https://f.example/</link><description>d</description>{items}</channel></rss>",
        encoding="utf-8",
    )


def fetch_site(tmp_path: Path, config: str, count: int) -> Path:
    """`aggregator fetch` over real HTTP of `config` (`{url}`: a feed of `count` posts); its output folder."""
    from .conftest import StaticServer

    www = tmp_path / "www"
    www.mkdir()
    numbered_feed(www, count)
    server = StaticServer(www)
    try:
        (tmp_path / "feeds.yaml").write_text(config.format(url=server.url("f.rss")), encoding="utf-8")
        result = run_cli("--config", str(tmp_path / "feeds.yaml"), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    return tmp_path / "public"


def titles(page: Path) -> list[str]:
    return [a.text_content() for a in html(page).xpath("//ol[@class='posts']/li/h3/a")]


def test_the_home_page_lists_posts_per_page_posts_whatever_items_per_feed(tmp_path):
    """The home page showed at most `items_per_feed` posts: with 2 a feed and 5 a page, 2, while
    the category page beside it showed 5. It shows `posts_per_page`, as the README says; the
    all-posts feeds keep `items_per_feed`."""
    site = "site:\n  title: T\n  url: https://t.example/\n  posts_per_page: {page}\n  items_per_feed: {feed}\n"
    config = site + "categories:\n  - name: C\n    sources:\n      - url: {{url}}\n"
    out = fetch_site(tmp_path, config.format(page=5, feed=2), 5)
    newest = [f"Post {n}" for n in range(5, 0, -1)]
    assert titles(out / "category" / "c.html") == newest
    assert titles(out / "index.html") == newest
    assert len(json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]) == 2
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(": 5\n", ": 3\n").replace(": 2\n", ": 4\n"))
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert titles(out / "index.html") == newest[:3]
    assert len(json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]) == 4


def test_a_post_links_to_the_categories_that_publish_it_in_config_order(tmp_path):
    """A source in two categories, the second of which excludes `Post 4`: Post 4's page led
    (breadcrumb, back links) to Arts, whose pages and feeds lack it, offered Arts' feeds as
    its own, and the home page listed it under Arts; categories came by slug, not config
    order. Now only those that publish it, in config order: the first is the one Jekyll
    files the post under."""
    config = (
        "site: {{title: T, url: 'https://t.example/'}}\njekyll: {{dir: jekyll}}\ncategories:\n"
        "  - name: Sports\n    sources:\n      - url: {url}\n"
        "  - name: Arts\n    exclude: [{{title: '^Post 4$'}}]\n    sources:\n      - url: {url}\n"
    )
    out = fetch_site(tmp_path, config, 5)
    assert titles(out / "category" / "arts.html") == ["Post 5", "Post 3", "Post 2", "Post 1"]
    jekyll = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "jekyll" / "_posts").iterdir()}
    assert len(jekyll) == 5 and all("\ncategories: sports\n" in text for text in jekyll.values()), jekyll
    pages = {html(p).findtext(".//h1"): html(p) for p in (out / "posts").rglob("*.html")}
    for title, want in (("Post 4", ["Sports"]), ("Post 3", ["Sports", "Arts"])):
        doc = pages[title]
        assert [a.text_content() for a in doc.findall(".//nav[@class='crumbs']/a")] == ["Home", *want]
        back = [a.text_content() for a in doc.findall(".//nav[@class='back']/a")]
        assert back == [*(f"Back to {name}" for name in want), "Home"]
        alternate = {a.get("href") for a in doc.findall(".//head/link[@rel='alternate']")}
        assert alternate == {f"https://t.example/category/sports.{ext}" for ext in ("atom", "rss", "json")}
    listed = {
        li.find("h3/a").text_content(): [a.text_content() for a in li.findall(".//a[@class='cat']")]
        for li in html(out / "index.html").xpath("//ol[@class='posts']/li")
    }
    assert listed == {f"Post {n}": ["Sports"] if n == 4 else ["Sports", "Arts"] for n in range(1, 6)}
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("    exclude: [{title: '^Post 4$'}]\n", ""))
    assert run_cli("--config", str(cfg), "publish").returncode == 0  # the rule gone: Post 4's page says Arts too
    post4 = next(p for p in (out / "posts").rglob("*.html") if html(p).findtext(".//h1") == "Post 4")
    assert [a.text_content() for a in html(post4).findall(".//nav[@class='crumbs']/a")] == ["Home", "Sports", "Arts"]


def test_locale_style_languages_become_language_tags_in_the_pages(tmp_path):
    """`zh_CN` (as locales and many Chinese CMS feeds write it) is not a language tag: the
    pages must say `zh-CN`/`zh-TW`, or `:lang(zh)` (the CJK font stack) and browsers miss it."""
    from .conftest import StaticServer

    www = tmp_path / "www"
    www.mkdir()
    (www / "tw.rss").write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>台灣</title>'
        "<link>https://tw.example/</link><description>d</description><language>zh_TW</language>"
        "<item><title>繁體標題</title><link>https://tw.example/1</link><guid>tw1</guid>"
        "<pubDate>Tue, 02 Jul 2024 03:04:00 +0800</pubDate><description>&lt;p&gt;內容&lt;/p&gt;</description></item>"
        "</channel></rss>",
        encoding="utf-8",
    )
    cfg = tmp_path / "feeds.yaml"
    server = StaticServer(www)
    try:
        cfg.write_text(
            # (a name in the site's script: one in Latin letters has lang="", as a post's would)
            "site:\n  title: T\n  url: https://t.example/\n  language: zh_CN\ncategories:\n"
            f"  - name: 台灣\n    slug: tw\n    sources:\n      - url: {server.url('tw.rss')}\n",
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    out = tmp_path / "public"
    for page in pages(out):
        doc = html(page)
        assert doc.get("lang") == "zh-CN", page
        assert {el.get("lang") for el in doc.xpath("//body//*[@lang]")} <= {"zh-TW"}, page
    post = next((out / "posts").rglob("*.html"))
    assert html(post).find(".//div[@class='content']").get("lang") == "zh-TW"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("zh_CN", "zh CN"), encoding="utf-8")
    bad = run_cli("--config", str(cfg), "check")
    assert bad.returncode == 2 and "feeds.yaml:4: site.language: not a language tag" in bad.stderr


def test_text_direction_follows_the_language_and_its_script():
    rtl = ("ar", "he-IL", "fa_IR", "ur", "az-Arab", "ckb", "yi", "ps-AF", "ur-PK", "arz", "ary", "apc", "ckb-IQ", "ug")
    assert [text_direction(t) for t in rtl] == ["rtl"] * len(rtl)
    assert [text_direction(t) for t in ("en", "zh-Hant-TW", "ku-Latn", "ar-Latn", "az", "sr-Cyrl")] == ["ltr"] * 6
    assert text_direction(None) is text_direction("") is None
    stub = redirect_page("https://t.example/", "ar-EG", "عنوان", "posts/2024/01/a.html", "posts/2024/02/a.html")
    assert lxml.html.fromstring(stub).get("dir") == "rtl"


@pytest.mark.parametrize(("site", "other"), [("ar", "en"), ("en", "ar")])
def test_right_to_left_languages_are_laid_out_right_to_left(tmp_path, site, other):
    """An Arabic (Hebrew, Persian, Urdu) site had `lang="ar"` and no `dir`: browsers laid it out
    left to right, punctuation at the wrong end. It has `dir="rtl"`; a post in a language written
    the other way than the site's has its own `dir` wherever it is shown (its listing, title, text)."""
    from .conftest import StaticServer

    www = tmp_path / "www"
    www.mkdir()
    for lang, title in (("ar", "خبر عاجل"), ("en", "Breaking news")):
        (www / f"{lang}.rss").write_text(
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{lang}</title>'
            f"<link>https://{lang}.example/</link><description>d</description><language>{lang}</language>"
            f"<item><title>{title}</title><link>https://{lang}.example/1</link><guid>{lang}1</guid>"
            "<pubDate>Tue, 02 Jul 2024 03:04:00 +0000</pubDate><description>&lt;p&gt;نص. Text.&lt;/p&gt;</description>"
            "</item></channel></rss>",
            encoding="utf-8",
        )
    cfg = tmp_path / "feeds.yaml"
    server = StaticServer(www)
    try:
        cfg.write_text(
            # (the category named in the site's language: one in another script says it, as a post does)
            f"site:\n  title: T\n  url: https://t.example/\n  language: {site}\ncategories:\n"
            f"  - name: {'أخبار' if site == 'ar' else 'News'}\n    slug: c\n"
            f"    sources:\n      - url: {server.url('ar.rss')}\n      - url: {server.url('en.rss')}\n",
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    out = tmp_path / "public"
    for page in pages(out):
        doc = html(page)
        assert doc.get("dir") == ("rtl" if site == "ar" else None), page
        # (names in a post's line, a source's or a category's, are isolated with dir="auto" alone)
        assert {(el.get("lang"), el.get("dir")) for el in doc.xpath("//body//*[@dir][@lang or @dir!='auto']")} <= {
            (other, text_direction(other))
        }
    for listing in (out / "index.html", out / "category" / "c.html"):
        items = {li.get("lang"): li.get("dir") for li in html(listing).xpath("//ol[@class='posts']/li")}
        assert items == {site: None, other: text_direction(other)}, listing
    for page in (out / "posts").rglob("*.html"):
        doc = html(page)
        title, content = doc.find(".//article//h1"), doc.find(".//div[@class='content']")
        want = text_direction(other) if title.get("lang") == other else None
        assert title.get("dir") == content.get("dir") == want, page


def _site_of(tmp_path: Path, language: str, category: str, posts: list[Post], per_page: int = 20) -> Path:
    """The output folder once a site in `language`, of one category named `category` with one
    source, has published `posts` (in-process: no CLI, no HTTP)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: Site\n  url: https://e.example/\n  language: {language}\n  posts_per_page: {per_page}\n"
        f'categories:\n  - name: "{category}"\n    slug: c\n    sources:\n      - url: https://e.example/feed\n',
        encoding="utf-8",
    )
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        store.record_success(
            "https://e.example/feed", posts[0].first_seen, 200, info=FeedInfo(title="Desk"), posts=posts
        )
        publish(settings, store)
    return settings.output_dir


def _post(n: int, title: str, language: str | None = None, text: str = "") -> Post:
    when = datetime(2024, 7, 2, 3, n, tzinfo=UTC)
    return Post(
        id=f"{n:016x}", source="https://e.example/feed", guid=str(n), title=title, link=f"https://e.example/{n}",
        published=when, updated=when, content=f"<p>{text or title}</p>", tags=("x",), language=language,
        content_hash=str(n), first_seen=when,
    )  # fmt: skip


def _said(doc: lxml.html.HtmlElement, needle: str) -> list[tuple[str | None, str | None]]:
    """(lang, dir) of each text of `doc`'s body holding `needle`, as a browser tells them: the
    nearest element's (or ancestor's) that says one."""
    out = []
    for text in doc.xpath("//body//text()[contains(., $n)]", n=needle):
        holder = text.getparent().getparent() if text.is_tail else text.getparent()
        lang = holder.xpath("ancestor-or-self::*[@lang][1]/@lang")
        direction = holder.xpath("ancestor-or-self::*[@dir][1]/@dir")
        out.append((lang[0] if lang else None, direction[0] if direction else None))
    return out


# Our English words, as the pages show them on a site in a language we have none for
_ENGLISH_WORDS = (
    "Skip to content", "Home", "Latest posts", "Categories", "Subscribe", "Source", "Read the original", "Tags",
    "Back to", "Generated by", "Page 1 of 2", "Newer", "Older", "2 posts",
)  # fmt: skip


@pytest.mark.parametrize("language", ["ur", "ps-AF", "ckb", "yi", "hi", "fr", "ar"])
def test_our_english_words_on_a_site_in_a_language_we_have_none_for_say_they_are_english(tmp_path, language):
    """An Urdu (Pashto, Sorani, Yiddish, Hindi) site's pages show our English words, "Home",
    "Read the original", under `<html lang="ur">`: a screen reader read them in an Urdu voice,
    and laid out right to left they lost their order (`Page 1 of 2`). They say `lang="en"`,
    and `dir="ltr"` on a page laid out right to left, whose newer posts lie right (`Newer →`);
    the site's own text (its category, its posts) stays in its language. A site we have words
    for says no English."""
    name = "دنیا"
    posts = [_post(1, "خبر!", text="متن."), _post(2, "دوسری خبر", text="متن.")]
    out = _site_of(tmp_path, language, name, posts, per_page=1)
    rtl = text_direction(language) == "rtl"
    english = language.split("-")[0] not in ("fr", "ar")
    seen = set()
    for page in pages(out):
        doc = html(page)
        assert (doc.get("lang"), doc.get("dir")) == (language, "rtl" if rtl else None), page
        if not english:
            assert doc.xpath("//*[@lang='en']") == [], page
            continue
        for word in _ENGLISH_WORDS:
            said = _said(doc, word)
            seen.update([word] if said else [])
            assert set(said) <= {("en", "ltr" if rtl else None)}, (page, word, said)
        # the site's own text is not in our words' language, in them (`Back to …`) or beside them
        assert "en" not in {lang for lang, _ in _said(doc, name) + _said(doc, "خبر")}, page
    if english:
        assert seen == set(_ENGLISH_WORDS)
        pager = html(out / "category" / "c.html").find(".//nav[@class='pager']")
        assert pager.get("lang") == "en"
        assert pager.find("a").text_content() == ("← Older" if rtl else "Older →")


@pytest.mark.parametrize(
    ("site", "category", "language", "title", "want"),
    [
        ("en", "أخبار", "ar", "عاجل!", ("ar", "rtl")),  # as its posts are said to be
        ("en", "أخبار", None, "عاجل!", ("", "rtl")),  # unknown, as its posts' language
        ("zh-CN", "World News", None, "Markets rally", ("", "ltr")),
        # Latin letters over posts in the site's language: its term (`AI`), in the page's language
        ("zh-CN", "AI", "zh-CN", "人工智能的新进展", (None, None)),
        ("zh-CN", "Tech", None, "科技新闻速递", (None, None)),
        ("ar", "AI", None, "أخبار الذكاء الاصطناعي", (None, None)),
        ("ar", "C++", "en", "Markets rally", ("en", "ltr")),
        ("en", "World", None, "Markets rally", (None, None)),  # the site's: isolated alone (`<bdi>`, `dir="auto"`)
    ],
)
def test_a_category_named_in_another_script_than_the_sites_says_its_language(
    tmp_path, site, category, language, title, want
):
    """An Arabic category on an English site was said to be English, and isolated by its first
    letter (`dir="auto"`), wherever it was named (the home page, its page, a post's lines): a
    screen reader read it in an English voice. It says the language its posts are said to be
    in (none, `lang=""`, when they do not say), and its direction."""
    out = _site_of(tmp_path, site, category, [_post(1, title, language)])
    holders = []
    for page in pages(out):
        for text in html(page).xpath("//body//text()[. = $n]", n=category):
            holders.append(text.getparent())
    assert len(holders) == 6  # the home page's listing and list, its page's path and heading, the post's two
    for el in holders:
        assert (el.get("lang"), None if el.get("dir") == "auto" else el.get("dir")) == want, lxml.html.tostring(el)
        assert el.tag == "bdi" or el.get("dir"), lxml.html.tostring(el)


@pytest.mark.parametrize(
    ("site", "category", "language", "title", "tab", "category_tab"),
    [
        ("en", "أخبار", "ar", "عاجل!", "\u2067عاجل!\u2069 · Site", "\u2067أخبار\u2069 · Site"),
        ("en", "World", None, "BBC: انفجار في بيروت!", "\u2067BBC: انفجار في بيروت!\u2069 · Site", "World · Site"),
        ("ar", "C++", "en", "C++ \u2069now", "\u2066C++ now\u2069 · Site", "\u2066C++\u2069 · Site"),
        ("ar", "أخبار", None, "عاجل!", "عاجل! · Site", "أخبار · Site"),  # the page's direction: as it was
        ("en", "World", None, "Hello!", "Hello! · Site", "World · Site"),
    ],
)
def test_a_title_written_the_other_way_is_isolated_in_the_tab(
    tmp_path, site, category, language, title, tab, category_tab
):
    """The tab's title is the post's or category's and the site's name, `<title>` text, where no
    `<bdi>` goes: `عاجل! · Site` was one right-to-left line, `Site · !عاجل` in the tab (Chromium
    lays a title out by its first letter). Its part written the other way from the page is
    isolated by Unicode marks (RLI or LRI … PDI, which Chromium honours); a stray PDI of its own
    is dropped, lest it end the isolation early."""
    out = _site_of(tmp_path, site, category, [_post(1, title, language)])
    assert html(next((out / "posts").rglob("*.html"))).findtext(".//title") == tab
    assert html(out / "category" / "c.html").findtext(".//title") == category_tab
    assert html(out / "index.html").findtext(".//title") == "Site"


def test_noscript_fallback_of_an_embed_is_published(tmp_path: Path, corpus_server) -> None:
    """A real blog feed whose code listings are gist embeds: `<script src=gist>` and the code
    itself in `<noscript><pre><code>`. The script is removed, so the fallback is the listing a
    visitor or subscriber can see; it used to be dropped with the <noscript>, leaving
    "you can see the code here:" followed by nothing."""
    out = fetch_one_feed(tmp_path, corpus_server.url("kagi/fastfeedparser__benchmark_data_95c748e927f3182f.xml"))
    page = next(
        text
        for p in (out / "posts").rglob("*.html")
        if "<title>Simple Django Asynchronous Processing" in (text := p.read_text("utf-8"))
    )
    assert '<pre><code class="language-python python">import logging\nfrom time import sleep' in page
    atom = (out / "category" / "c.atom").read_text("utf-8")
    assert '&lt;code class="language-python python"&gt;import logging' in atom
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text("utf-8").lower()
            assert "<noscript" not in text and "&lt;noscript" not in text, path


def test_templates_escape_exactly_as_plain_jinja_does():
    """Our environment compiles templates to escape output without markupsafe's Markup wrapper
    (and keeps globals in one dict): every construct a user's template may use must still
    escape once, never twice, and leave `|safe` and Markup alone, as plain Jinja does."""
    from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape
    from markupsafe import Markup

    from aggregator.publish.site import _Environment

    templates = {
        "base.html": "<t>{% block title %}{{ v }}{% endblock %}</t>{% block main %}{% endblock %}",
        "page.html": (
            '{% extends "base.html" %}{% import "m.html" as m %}'
            "{% block title %}[{{ super() }}]{% endblock %}"
            "{% block main %}{{ m.box(v) }}{% call m.wrap() %}<i>{{ v }}</i>{% endcall %}"
            "{% set held %}<b>{{ v }}</b>{% endset %}{{ held }}{{ held|upper }}"
            "{% filter upper %}{{ v }}&{% endfilter %}{{ v|e }}{{ v|safe }}{{ m_ }}{{ v ~ m_ }}"
            "{{ [v, m_]|join(',') }}{{ n }}{{ none_ }}{{ '%s|%s'|format(v, m_) }}{{ v if n else m_ }}"
            "{% for x in [v, m_] %}{{ loop.index }}{{ x }}{% endfor %}{% include 'inc.html' %}"
            "{% autoescape false %}{{ v }}{% endautoescape %}{{ g }}{% endblock %}"
        ),
        "m.html": "{% macro box(x) %}<div>{{ x }}</div>{% endmacro %}"
        "{% macro wrap() %}<p>{{ caller() }}</p>{% endmacro %}",
        "inc.html": "<inc>{{ v }}</inc>",
    }
    values = {"v": '<a href="x">&\'', "m_": Markup("<em>ok</em>"), "n": 3, "none_": None}

    def render(cls: type) -> str:
        env = cls(
            loader=DictLoader(templates),
            autoescape=select_autoescape(["html"], default_for_string=True, default=True),
            undefined=StrictUndefined,
        )
        env.globals["g"] = "<g>"
        return env.get_template("page.html").render(values)

    ours, plain = render(_Environment), render(Environment)
    assert ours == plain
    assert "&lt;a href=&#34;x&#34;&gt;&amp;&#39;" in ours and "&amp;lt;" not in ours and "<em>ok</em>" in ours


def test_a_listing_does_not_repeat_the_title_its_text_opens_with(tmp_path):
    """Many feeds open their text with the title: the listing showed it twice, one line under
    the other (an untitled post's title is its text's start, and showed twice too)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(HOSTILE, encoding="utf-8")
    settings = load_config(cfg)
    when = datetime(2024, 7, 2, 3, 4, tzinfo=UTC)
    long = "alpha beta gamma delta " * 10
    cases = {  # title, content → the excerpt the listing shows
        "a": ("Budget passes", "<p>Budget passes: the vote was 52 to 48.</p>", "the vote was 52 to 48."),
        "b": ("张掖日报", "<p>张掖日报今天发布了新闻</p>", "今天发布了新闻"),
        "c": ("Go", "<p>Gophers are here</p>", "Gophers are here"),  # not a word of its own
        "d": ("Only a title", "<p>Only a title</p>", None),
        "e": ("", f"<p>{long}</p>", "gamma delta alpha beta"),  # untitled: the title is the start, cut
    }
    posts = [
        Post(
            id=f"00000000000000a{k}",
            source="https://e.example/feed",
            guid=k,
            title=title,
            link=f"https://e.example/{k}",
            published=when,
            updated=when,
            content=content,
            content_hash=k,
            first_seen=when,
        )  # fmt: skip
        for k, (title, content, _) in cases.items()
    ]
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        store.record_success(posts[0].source, when, 200, info=FeedInfo(title="t"), posts=posts)
        publish(settings, store)
    listing = html(settings.output_dir / "category" / "ab.html")
    shown = {}
    for item in listing.xpath("//ol[@class='posts']/li"):
        key = item.find(".//h3/a").get("href").rsplit("/", 1)[1].removesuffix(".html")[-1]
        shown[key] = item.findtext(".//p[@class='excerpt']")
    assert set(shown) == set(cases), shown
    for key, (_, _, expected) in cases.items():
        if expected is None or key != "e":
            assert shown[key] == expected, (key, shown[key])
        else:
            assert shown[key].startswith(expected) and not shown[key].startswith("alpha"), shown[key]


def test_links_to_the_original_and_attachments_are_valid_urls(tmp_path):
    """A torrent feed's links (`…XviD.[eztv].torrent`) went into the post page's "Read the
    original" button and attachment links as stored: `[`, `]`, `|` and spaces are not allowed
    in a URL's path or query, and the W3C checker failed 30 of the corpus's pages on them
    (browsers cope; other tools do not). They are percent-encoded as the feeds write them."""
    src = Source(key="https://e.example/feed", url="https://e.example/feed", categories=("ab",))
    when = datetime(2024, 7, 2, 3, 4, tzinfo=UTC)
    link = "http://t.example/Zero.Hour.S01E09.[eztv] x.torrent?a=b|c"
    post = Post(
        id="00000000000000fe", source=src.key, guid="g", title="t", link=link, published=when, updated=when,
        content="<p>x</p>", enclosures=(Enclosure(link, "application/x-bittorrent", 3),),
        content_hash="h", first_seen=when,
    )  # fmt: skip
    out = _published(tmp_path, post)
    doc = html(out / "posts" / "2024" / "07" / "00000000000000fe.html")
    encoded = "http://t.example/Zero.Hour.S01E09.%5Beztv%5D%20x.torrent?a=b%7Cc"
    assert doc.find(".//a[@class='button']").get("href") == encoded
    (attachment,) = doc.findall(".//section[@class='attachments']//a")
    assert attachment.get("href") == encoded
    assert attachment.text == "Zero.Hour.S01E09.[eztv] x.torrent?a=b|c"  # the name as the feed gave it


def test_pages_carry_no_control_characters(tmp_path):
    """A podcast feed's text, twice mis-decoded (`â€œPodcastsâ€\\x9d`), put the C1 control
    U+009D into the post's title, listing excerpt, meta description and text: HTML forbids
    control characters (the W3C checker failed those pages), and fonts draw them as boxes.
    They are left out of the pages (the feeds, whose XML allows them, keep what they had)."""
    src = Source(key="https://e.example/feed", url="https://e.example/feed", categories=("ab",))
    when = datetime(2024, 7, 2, 3, 4, tzinfo=UTC)
    post = Post(
        id="00000000000000fd", source=src.key, guid="g", title="â€œPodcastsâ€\x9d \x7fnow\x85\U0001fffe",
        link="https://e.example/p", published=when, updated=when,
        content="<p>â€œPodcasts are now available.â€\x9d\x80 More\ufdd0 text\U0010ffff</p>",
        authors=(Author(name="A\x9b"),), content_hash="h", first_seen=when,
    )  # fmt: skip
    out = _published(tmp_path, post)
    page = out / "posts" / "2024" / "07" / "00000000000000fd.html"
    for path in (page, out / "index.html", out / "category" / "ab.html"):
        text = path.read_text(encoding="utf-8")
        assert "Podcasts" in text, path
        assert not [c for c in text if "\x7f" <= c <= "\x9f" or "\ufdd0" <= c <= "\ufdef"], path
        # and the noncharacters past the first plane (U+1FFFE … U+10FFFF), as forbidden
        assert not [c for c in text if ord(c) > 0xFFFF and ord(c) & 0xFFFE == 0xFFFE], path
    assert html(page).findtext(".//h1") == "â€œPodcastsâ€ now"
    stub = redirect_page("https://e.example/", "en", post.title, "posts/2024/06/a.html", "posts/2024/07/a.html")
    assert "\x9d" not in stub.decode("utf-8") and "â€œPodcastsâ€ now" in stub.decode("utf-8")


def test_a_code_blocks_leading_blank_line_reaches_readers_and_the_site(tmp_path, httpserver) -> None:
    code = "\n    first_line_after_a_blank()\n"
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Code</title><link>https://e.example/</link>'
        "<item><guid>g1</guid><title>Snippet</title><link>https://e.example/1</link>"
        f"<description><![CDATA[<pre>\n{code}</pre>]]></description></item></channel></rss>"
    )
    httpserver.expect_request("/feed").respond_with_data(body, content_type="application/rss+xml")
    out = fetch_one_feed(tmp_path, httpserver.url_for("/feed"))
    (page,) = (out / "posts").rglob("*.html")
    atom = lxml.etree.parse(str(out / "category" / "c.atom")).getroot()
    (content,) = atom.iterfind(".//{http://www.w3.org/2005/Atom}content")
    item = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"][0]
    for markup in (page.read_text(encoding="utf-8"), content.text, item["content_html"]):
        pre = re.search(r"<pre[^>]*>.*?</pre>", markup, re.S)
        assert pre is not None, markup
        # as a browser or a reader's HTML parser reads it: the line feed after `<pre>` is dropped
        assert html_module.unescape(nh3.clean(pre.group(), tags=set())) == code


def test_a_time_in_a_zones_old_local_mean_time_is_a_valid_html_datetime(tmp_path) -> None:
    """Amsterdam kept its local mean time (+00:19:32) until 1937: a post of 1930 on a site in
    Europe/Amsterdam was written `<time datetime="1930-05-01T12:19:32+00:19:32">`, which HTML
    refuses (an offset has hours and minutes). It is written in UTC, the same instant."""
    from .conftest import fetch_feed_text

    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><link>https://f.example/</link>'
        "<item><title>Archive</title><guid>a</guid><link>https://f.example/a</link>"
        "<pubDate>Thu, 01 May 1930 12:00:00 +0000</pubDate><description>Old news.</description></item>"
        "</channel></rss>"
    )
    out = fetch_feed_text(tmp_path, "f.rss", rss, site="  timezone: Europe/Amsterdam\n")
    pages = [out / "index.html", out / "category" / "c.html", *(out / "posts").rglob("*.html")]
    stamps = [t.get("datetime") for page in pages for t in html(page).iter("time")]
    assert stamps and set(stamps) == {"1930-05-01T12:00:00+00:00"}, stamps


def test_an_embed_off_the_video_hosts_list_leaves_a_link_on_the_page_and_in_the_feeds(tmp_path) -> None:
    """Medium writes an embedded video or gist as an iframe around a fallback link, and a
    podcast's post embeds Spotify's player: neither host is one whose iframes are kept, and the
    post page and every feed showed 'Listen:' followed by nothing, not even a link."""
    from .conftest import fetch_feed_text

    medium = (
        '<figure><iframe src="https://cdn.embedly.com/widgets/media.html?src=https%3A%2F%2Fwww.youtube.com%2F'
        'embed%2Fabc&amp;schema=youtube" width="854" height="480" frameborder="0" scrolling="no">'
        '<a href="https://medium.com/media/0123abcd/href">https://medium.com/media/0123abcd/href</a></iframe></figure>'
    )
    spotify = (
        '<iframe style="border-radius:12px" src="https://open.spotify.com/embed/episode/7mak" width="100%" '
        'height="152" frameBorder="0" allow="encrypted-media" loading="lazy" title="Spotify Embed: Ep 12"></iframe>'
    )
    rss = (
        '<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        "<channel><title>F</title><link>https://f.example/</link><item><title>Episode</title><guid>a</guid>"
        "<link>https://f.example/a</link><pubDate>Wed, 01 May 2024 12:00:00 +0000</pubDate>"
        f"<content:encoded><![CDATA[<p>Watch:</p>{medium}<p>Listen:</p>{spotify}<p>Thanks.</p>]]></content:encoded>"
        "</item></channel></rss>"
    )
    out = fetch_feed_text(tmp_path, "f.rss", rss)
    (page,) = (out / "posts").rglob("*.html")
    atom = lxml.etree.parse(str(out / "category" / "c.atom")).getroot()
    (content,) = atom.iterfind(".//{http://www.w3.org/2005/Atom}content")
    item = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"][0]
    for markup in (lxml.html.tostring(html(page).find_class("content")[0], encoding="unicode"), content.text,
                   item["content_html"]):  # fmt: skip
        links = {a.get("href"): a.text_content() for a in lxml.html.fragment_fromstring(markup, "div").iter("a")}
        assert links == {
            "https://medium.com/media/0123abcd/href": "https://medium.com/media/0123abcd/href",
            "https://open.spotify.com/embed/episode/7mak": "Spotify Embed: Ep 12",
        }, markup
        assert "<iframe" not in markup


def test_a_wordpress_emoji_is_shown_as_the_character_not_a_72px_picture(tmp_path, corpus_server) -> None:
    """WordPress writes each emoji of a post's feed as its 72px picture, sized to the line only by
    a `style` that sanitizing drops: a real blog's '(or I 😆) will generate' showed a 72px face
    in the middle of the line on the post page and in every reader of our feeds. The emoji is
    written as the character the author typed (its alt)."""
    out = fetch_one_feed(tmp_path, corpus_server.url("kagi/fastfeedparser__benchmark_data_505487a2324fda79.xml"))
    item = next(
        i for i in json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]
        if "design team" in i["content_html"] and "wireframes" in i["content_html"]
    )  # fmt: skip
    (page,) = [
        p.read_text(encoding="utf-8")
        for p in (out / "posts").rglob("*.html")
        if item["title"] in p.read_text(encoding="utf-8")
    ]
    for markup in (item["content_html"], page):
        assert "wp-smiley" not in markup and "s.w.org/images/core/emoji" not in markup
        assert "the design team (or I 😆) will generate" in markup


def test_a_gist_embedded_by_its_script_leaves_a_link_to_the_code(tmp_path, corpus_server) -> None:
    """A Ghost blog pastes each code listing as a gist's embed script: removed as every script,
    it left 'you should define the input parameters' with the code that followed gone, on the
    page and in the feeds. It leaves a link to the gist; a gist whose <noscript> holds the code
    (a WordPress blog's) shows that code, and no link."""
    ghost = corpus_server.url("kagi/fastfeedparser__benchmark_data_db60413f622a1c47.xml")
    wordpress = corpus_server.url("kagi/fastfeedparser__benchmark_data_95c748e927f3182f.xml")
    out = fetch_feeds(tmp_path, [ghost, wordpress])
    items = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]
    (ghost_item,) = [i for i in items if "registerTool" in i["content_html"]]
    gist = "https://gist.github.com/bitsmuggler/96afe5404e05ebcd642b73b047b00f2c"
    (page,) = [p for p in (out / "posts").rglob("*.html") if "registerTool" in p.read_text(encoding="utf-8")]
    for markup in (ghost_item["content_html"], page.read_text(encoding="utf-8")):
        assert f'<a href="{gist}" rel="noopener noreferrer">{gist}</a>' in markup
    (wordpress_item,) = [
        i for i in items if "11150361" in i["content_html"] or "crack the three codes" in i["content_html"]
    ]
    assert "Status.........: Cracked" in wordpress_item["content_html"]
    assert "gist.github.com/11153181" not in wordpress_item["content_html"]


def test_a_task_lists_checkboxes_say_which_tasks_are_done(tmp_path) -> None:
    """GitHub's release notes (and Hugo's, Jekyll's) write a task list as checkboxes, form
    controls that are never kept: the page and the feeds listed the tasks with no sign of which
    were done. Each box is its ballot-box character, ticked or not."""
    from .conftest import fetch_feed_text

    notes = (
        '<h2>Roadmap</h2><ul class="contains-task-list">\n<li class="task-list-item"><input type="checkbox" id="" '
        'disabled="" class="task-list-item-checkbox" checked=""> Ship the parser</li>\n<li class="task-list-item">'
        '<input type="checkbox" id="" disabled="" class="task-list-item-checkbox"> Write the docs</li>\n</ul>'
    )
    atom = (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US">'
        "<id>tag:github.com,2008:https://github.com/o/r/releases</id>"
        '<link type="text/html" rel="alternate" href="https://github.com/o/r/releases"/>'
        "<title>Release notes from r</title><updated>2024-05-01T10:00:00Z</updated><entry>"
        "<id>tag:github.com,2008:Repository/1/v1.0</id><updated>2024-05-01T10:00:00Z</updated>"
        '<link rel="alternate" type="text/html" href="https://github.com/o/r/releases/tag/v1.0"/><title>v1.0</title>'
        f'<content type="html">{html_module.escape(notes)}</content><author><name>alice</name></author></entry></feed>'
    )
    out = fetch_feed_text(tmp_path, "releases.atom", atom)
    (page,) = (out / "posts").rglob("*.html")
    item = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"][0]
    feed = lxml.etree.parse(str(out / "category" / "c.atom")).getroot()
    content = feed.findtext(".//{http://www.w3.org/2005/Atom}content")
    for markup in (page.read_text(encoding="utf-8"), item["content_html"], content):
        tasks = [
            li.text_content()
            for li in lxml.html.fromstring(markup).iter("li")
            if "task-list-item" in li.get("class", "")
        ]
        assert tasks == ["\u2611 Ship the parser", "\u2610 Write the docs"], markup


def test_a_lazy_loaded_video_plays_on_the_page_and_in_the_feeds(tmp_path, corpus_server) -> None:
    """A blog loads its clips by script from `<video class="lazy-video" data-src=…>`: the
    script never runs in a reader or on our pages, and the page and every feed showed 16 empty
    players that played nothing. data-src becomes the video's src, as for lazy images."""
    out = fetch_one_feed(tmp_path, corpus_server.url("kagi/fastfeedparser__benchmark_data_ab1814a7b8c94975.xml"))
    clip = "https://pub-f17786433d2849ff86c458a4019a0ed6.r2.dev/FilterAnimation.mp4"
    items = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]
    (item,) = [i for i in items if "The Agency Eating Machine" in i["content_html"]]
    (page,) = [
        p for p in (out / "posts").rglob("*.html") if "The Agency Eating Machine" in p.read_text(encoding="utf-8")
    ]
    for markup in (item["content_html"], page.read_text(encoding="utf-8")):
        videos = list(lxml.html.fromstring(markup).iter("video"))
        assert videos and all(v.get("src", "").startswith("https://") for v in videos), markup
        assert clip in [v.get("src") for v in videos]


def test_feed_services_counters_and_flares_are_not_published(tmp_path, corpus_server) -> None:
    """Old FeedBurner feeds end each post with FeedFlare buttons and an ad, and WordPress.com's
    with its stats counter written without a size: images from feeds.feedburner.com (no longer
    served: broken pictures), feedads.g.doubleclick.net and stats.wordpress.com, each telling
    its sender who read the post, were published on our pages and in our feeds."""
    urls = [corpus_server.url(f"speedparser2011/speedparser__feeds_{n}.dat.xml") for n in ("0007", "0138")]
    out = fetch_feeds(tmp_path, urls)
    trackers = re.compile(r"feeds\.feedburner\.com|doubleclick\.net|stats\.wordpress\.com")
    items = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]
    pages = [p.read_text(encoding="utf-8") for p in (out / "posts").rglob("*.html")]
    images = [
        img.get("src", "")
        for markup in [i.get("content_html", "") for i in items] + pages
        if markup
        for img in lxml.html.fromstring(markup).iter("img")
    ]
    assert images and not [src for src in images if trackers.search(src)]
    # nor the links those images were in, left empty (an ad's link to feedads.g.doubleclick.net)
    empty_links = [
        a.get("href")
        for markup in [i.get("content_html", "") for i in items] + pages
        if markup
        for a in lxml.html.fromstring(markup).iter("a")
        if trackers.search(a.get("href", "")) and not a.text_content().strip() and not len(a)
    ]
    assert not empty_links, empty_links


def test_a_youtube_video_embedded_as_flash_plays_on_the_page_and_in_the_feeds(tmp_path, corpus_server) -> None:
    """Posts before 2012 embed YouTube as Flash (`<object><embed src="http://www.youtube.com/v/ID">`):
    Flash is gone and <embed> is never kept, so the video vanished from the page and every
    feed without a trace. It is YouTube's player frame, as a post of today embeds it."""
    out = fetch_one_feed(tmp_path, corpus_server.url("speedparser2011/speedparser__feeds_0406.dat.xml"))
    frames = [frame.get("src") for page in (out / "posts").rglob("*.html") for frame in html(page).iter("iframe")]
    assert "https://www.youtube.com/embed/BZnDt2wEFjk" in frames
    items = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]
    assert any('src="https://www.youtube.com/embed/BZnDt2wEFjk"' in i.get("content_html", "") for i in items)


def test_a_site_url_with_a_space_links_every_page_with_it_encoded(tmp_path, httpserver):
    """`site.url: https://t.example/my news` wrote `href="https://t.example/my news/…"` on every
    page (invalid HTML, links some tools cut at the space); the feeds had it as %20 already,
    and their ids keep it so."""
    url = serve_corpus(httpserver, "kagi/fastfeedparser__benchmark_data_01b5e6081cb62f3d.xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/my news\ncategories:\n  - name: C\n    sources:\n"
        f"      - url: {url}\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "public"
    pages = [out / "index.html", out / "category" / "c.html", next((out / "posts").rglob("*.html"))]
    for page in pages:
        links = re.findall(r'(?:href|src)="(https://t\.example/[^"]*)"', page.read_text(encoding="utf-8"))
        assert links and all(" " not in link and link.startswith("https://t.example/my%20news/") for link in links)
    assert "<id>tag:t.example,2022:my%20news/posts/" in (out / "category" / "c.atom").read_text(encoding="utf-8")
    assert check_feeds(out).returncode == 0


def test_a_posts_headings_come_under_its_title(tmp_path):
    """A post whose text begins with its title again as `<h1>` (many do), with `<h2>` sections:
    its page had two top-level headings, the title's and the text's, for a screen reader's
    list of headings (and the outline two starts). The text's headings are a level down:
    the page has one `<h1>`, the post's title, and the text's order is kept."""
    from .conftest import fetch_feed_text

    text = "<h1>Rust 2.0</h1><p>News.</p><h2>What changed</h2><h6>Note</h6><h3>Details</h3>"
    feed = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>'
        "<link>https://f.example/</link><description>d</description><item><title>Rust 2.0</title>"
        "<link>https://f.example/1</link><guid>1</guid><pubDate>02 Jul 2024 03:04:00 +0000</pubDate>"
        f"<description><![CDATA[{text}]]></description></item></channel></rss>"
    )
    out = fetch_feed_text(tmp_path, "f.rss", feed)
    doc = html(next(out.glob("posts/*/*/*.html")))
    headings = [(h.tag, h.text_content()) for h in doc.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert headings == [
        ("h1", "Rust 2.0"),
        ("h2", "Rust 2.0"),
        ("h3", "What changed"),
        ("h6", "Note"),
        ("h4", "Details"),
    ]
    atom = (out / "feed.atom").read_text(encoding="utf-8")
    assert "&lt;h1&gt;Rust 2.0&lt;/h1&gt;" in atom  # the feeds carry the text as it is


def test_a_posts_footnote_links_lead_to_its_footnotes_on_the_page_and_from_the_feeds(tmp_path, corpus_server):
    """Daring Fireball's footnotes (`<a href="#fn1-2017-06-12">`, `<li id="fn1-2017-06-12">`) led
    to the original article, and on our pages to nothing: every id was dropped. On the post's page
    each footnote link leads to its note, under the post's own id (never one of the page's, as
    `main`); in the feeds, where readers drop ids, it leads to the note on that page."""
    feed = "suites/RSParser__Tests_RSParserTests_Resources_DaringFireball.atom"
    out = fetch_one_feed(tmp_path, corpus_server.url(feed))
    items = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]
    checked = 0
    for page in (out / "posts").rglob("*.html"):
        tree = html(page)
        (content,) = tree.find_class("content")
        local = [a.get("href") for a in content.iter("a") if a.get("href", "").startswith("#")]
        if not local:
            continue
        post_id = page.stem
        ids = {e.get("id") for e in tree.iter() if e.get("id")}
        for href in local:
            assert href.startswith(f"#{post_id}-fn") and href[1:] in ids, (page, href)
        (item,) = [i for i in items if i["id"].endswith(f"posts/{post_id}")]
        in_feed = {
            a.get("href")
            for a in lxml.html.fragment_fromstring(item["content_html"], "div").iter("a")
            if f"#{post_id}-" in a.get("href", "")
        }
        assert in_feed == {urljoin("https://t.example/", page.relative_to(out).as_posix()) + h for h in local}
        checked += len(local)
    assert checked == 7  # and a back link to an id the post lacks (`#fnr1-2017-06-13`) leads to the original


@pytest.mark.parametrize(
    "feed",
    ["suites/feedjira__spec_sample_feeds_youtube_atom.xml", "kagi/fastfeedparser__benchmark_data_3597ad3b5fc7ebdd.xml"],
)
def test_a_youtube_channels_videos_play_on_their_pages_and_in_the_feeds(tmp_path, corpus_server, feed) -> None:
    """A YouTube channel's Atom feed gives each video as a `media:content` of its Flash URL and
    the description as text: the page and the feeds showed the description and a thumbnail, no
    player, where a post embedding the same video has YouTube's. Each video is now played there."""
    out = fetch_one_feed(tmp_path, corpus_server.url(feed))
    items = json.loads((out / "category" / "c.json").read_text(encoding="utf-8"))["items"]
    assert len(items) == 15
    for item in items:
        video = re.search(r"(?:v=|/shorts/)([\w-]+)", item["url"]).group(1)
        frame = f'src="https://www.youtube.com/embed/{video}"'
        assert frame in item["content_html"], item["content_html"]
    frames = {f.get("src") for page in (out / "posts").rglob("*.html") for f in html(page).iter("iframe")}
    assert len(frames) == 15 and all(f.startswith("https://www.youtube.com/embed/") for f in frames), frames
