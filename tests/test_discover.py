"""Which feed a page's `<link rel="alternate">` list leads to: WordPress and other engines
list a comments feed, a REST API or oEmbed link beside (often before) the posts feed, and
the first link used to be the one subscribed to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.discover import FeedLink, find_feed_links, is_comments_feed
from aggregator.fetch import Fetcher
from aggregator.models import Source

from .conftest import run_cli

PAGE = "https://blog.example/"


def page(*links: str, base: str = "") -> bytes:
    return f"<!doctype html><html><head>{base}{''.join(links)}</head><body></body></html>".encode()


def link(href: str, kind: str = "application/rss+xml", title: str = "") -> str:
    t = f' title="{title}"' if title else ""
    return f'<link rel="alternate" type="{kind}"{t} href="{href}">'


# What WordPress 6 prints in <head> (trimmed): comments feed after the posts feed, the REST API
# link to the page's own JSON and its oEmbed links, typed application/json.
WORDPRESS = page(
    link("/wp-json/wp/v2/pages/2", "application/json"),
    link("/wp-json/oembed/1.0/embed?url=https%3A%2F%2Fblog.example%2F", "application/json+oembed"),
    link("/comments/feed/", title="Blog &raquo; Comments Feed"),
    link("/feed/", title="Blog &raquo; Feed"),
)


def urls(body: bytes) -> list[str]:
    return [found.url for found in find_feed_links(body, PAGE)]


def test_links_are_named_tuples_with_url_type_and_title():
    assert find_feed_links(page(link("/feed/", title="Blog  &raquo;\n Feed")), PAGE) == [
        FeedLink("https://blog.example/feed/", "application/rss+xml", "Blog » Feed")
    ]
    (found,) = find_feed_links(page(link("/f", kind="Application/Atom+XML; charset=utf-8")), PAGE)
    assert (found.url, found.type, found.title) == ("https://blog.example/f", "application/atom+xml", "")


def test_wordpress_home_page_leads_to_the_posts_feed():
    assert urls(WORDPRESS) == ["https://blog.example/feed/", "https://blog.example/comments/feed/"]


def test_rss_and_atom_come_before_json_feed_and_plain_json_after_both():
    body = page(
        link("/api/site.json", "application/json"),
        link("/feed.json", "application/feed+json"),
        link("/atom.xml", "application/atom+xml"),
        link("/rss.xml"),
    )
    assert urls(body) == [
        "https://blog.example/atom.xml",  # document order among equals
        "https://blog.example/rss.xml",
        "https://blog.example/feed.json",
        "https://blog.example/api/site.json",
    ]


def test_a_json_feed_typed_application_json_is_still_found_when_it_is_the_only_one():
    assert urls(page(link("/feed.json", "application/json"))) == ["https://blog.example/feed.json"]


def test_rest_api_and_oembed_links_are_never_taken_for_feeds():
    body = page(
        link("/wp-json/wp/v2/posts/7", "application/json"),
        link("/api/oembed?url=x", "application/json"),
        link("/wp-json/oembed/1.0/embed?url=x", "application/json+oembed"),
    )
    assert urls(body) == []


def test_comments_feeds_come_last_whatever_their_type_or_place():
    body = page(
        link("/comments/feed/"),  # by its URL
        link("/?feed=comments-rss2"),  # WordPress without pretty permalinks
        link("/c.atom", "application/atom+xml", title="Flux des commentaires"),  # by its title
        link("/2024/01/hello/feed/", title="Blog » Hello Comments Feed"),  # one post's comments
        link("/feed.json", "application/json"),
    )
    assert urls(body) == [
        "https://blog.example/feed.json",
        "https://blog.example/comments/feed/",
        "https://blog.example/?feed=comments-rss2",
        "https://blog.example/c.atom",
        "https://blog.example/2024/01/hello/feed/",
    ]


def test_comments_are_known_by_the_word_not_any_string_holding_it():
    assert is_comments_feed(FeedLink("https://b.example/feed", "application/rss+xml", "Kommentare"))
    assert is_comments_feed(FeedLink("https://b.example/feed", "application/rss+xml", "博客 » 评论 Feed"))
    assert not is_comments_feed(FeedLink("https://b.example/feed", "application/rss+xml", "Commentary Weekly"))
    assert not is_comments_feed(FeedLink("https://commentary.example/feed", "application/rss+xml", ""))


def test_repeats_keep_their_first_type_and_title_and_base_still_applies():
    body = page(
        link("feed/", title="First"),
        link("https://other.example/feed/", "application/atom+xml", title="Second"),
        base='<base href="https://other.example/">',
    )
    assert find_feed_links(body, PAGE) == [FeedLink("https://other.example/feed/", "application/rss+xml", "First")]


def test_a_page_served_over_http_leads_to_its_posts_feed(httpserver: HTTPServer):
    """The bytes as the fetcher hands them over, with the URL they came from as the base."""
    httpserver.expect_request("/").respond_with_data(WORDPRESS, content_type="text/html; charset=UTF-8")
    url = httpserver.url_for("/")
    fetcher = Fetcher()
    try:
        result = fetcher.fetch(Source(key=url, url=url))
    finally:
        fetcher.close()
    assert [found.url for found in find_feed_links(result.body, result.url)] == [
        httpserver.url_for("/feed/"),
        httpserver.url_for("/comments/feed/"),
    ]


def gbk_page(meta: str = "") -> bytes:
    text = "<p>这是一个关于中文写作和阅读的博客，欢迎大家订阅我们的新闻。</p>"  # enough for detection to be sure
    return f"<!doctype html><html><head>{meta}<title>博客</title>{link('/中文/feed?标=签')}</head>{text}</html>".encode(
        "gbk"
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (gbk_page('<meta charset="gbk">'), "text/html"),
        (gbk_page('<meta http-equiv="Content-Type" content="text/html; charset=GB2312">'), None),
        (gbk_page(), "text/html; charset=GBK"),
        (gbk_page('<meta charset="utf-8">'), "text/html; charset=gbk"),  # the HTTP charset wins, as in browsers
        (gbk_page(), None),  # declared nowhere: detected
    ],
    ids=["meta-charset", "meta-http-equiv", "http-charset", "http-beats-meta", "detected"],
)
def test_a_legacy_encoded_page_links_where_a_browser_goes(body: bytes, content_type: str | None):
    """Read as latin-1, a GBK page's `/中文/feed` was `/ÖÐÎÄ/feed`, a 404. The path is
    percent-encoded in UTF-8 and the query in the page's encoding, as browsers request them."""
    assert [found.url for found in find_feed_links(body, PAGE, content_type)] == [
        "https://blog.example/%E4%B8%AD%E6%96%87/feed?%B1%EA=%C7%A9"
    ]


def test_a_utf8_page_served_with_a_default_latin1_charset_keeps_its_links():
    """Servers label pages ISO-8859-1 by default; the page's own <meta> is believed over that
    catch-all where its bytes are what it says (as feeds' declarations are)."""
    body = page(link("/中文/feed"), '<meta charset="utf-8">')
    assert [f.url for f in find_feed_links(body, PAGE, "text/html; charset=ISO-8859-1")] == [
        "https://blog.example/%E4%B8%AD%E6%96%87/feed"
    ]
    # and with no <meta> at all, as before the page's encoding was looked for: its bytes are UTF-8
    assert [f.url for f in find_feed_links(page(link("/中文/feed")), PAGE, "text/html; charset=ISO-8859-1")] == [
        "https://blog.example/%E4%B8%AD%E6%96%87/feed"
    ]


def test_a_utf8_page_links_to_its_non_ascii_feed_percent_encoded():
    body = page(link("/中文/feed?标=签#é"), '<meta charset="utf-8">')
    assert urls(body) == ["https://blog.example/%E4%B8%AD%E6%96%87/feed?%E6%A0%87=%E7%AD%BE#%C3%A9"]
    assert urls(page(link("/a%20b/feed?q=a%26b&x=1"))) == ["https://blog.example/a%20b/feed?q=a%26b&x=1"]


FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>http://b.example/</link>'
    b"<item><title>Post</title><link>http://b.example/1</link><guid>urn:1</guid></item></channel></rss>"
)


@pytest.mark.parametrize(
    ("meta", "content_type"),
    [('<meta charset="gbk">', "text/html"), ("", "text/html; charset=GBK")],
    ids=["meta-charset", "http-charset"],
)
def test_fetch_follows_a_gbk_page_to_its_non_ascii_feed(
    tmp_path: Path, httpserver: HTTPServer, meta: str, content_type: str
):
    """End to end: the page says GBK in its <meta> or its Content-Type, and links to
    `/中文/feed`: the feed is polled at `/%E4%B8%AD%E6%96%87/feed`, as a browser requests it."""
    body = f"<!doctype html><html><head>{meta}<title>博客</title>{link('/中文/feed')}</head></html>".encode("gbk")
    httpserver.expect_request("/page.html").respond_with_data(body, content_type=content_type)
    httpserver.expect_request("/中文/feed").respond_with_data(FEED, content_type="application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    url = httpserver.url_for("/page.html")
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n      - url: {url}\n",
        encoding="utf-8",
    )
    done = run_cli("--config", str(cfg), "fetch")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 new post" in done.stdout
    status = run_cli("--config", str(cfg), "status", "--json")
    (row,) = json.loads(status.stdout)
    assert row["discovered_url"] == httpserver.url_for("/%E4%B8%AD%E6%96%87/feed")
    assert [r.path for r, _ in httpserver.log] == ["/page.html", "/中文/feed"]
