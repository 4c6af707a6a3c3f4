"""Cross-source duplicates: the same article from two sources is published once (or twice, if asked)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.config import load_config
from aggregator.identity import canonical_link, enclosure_key, text_fingerprint
from aggregator.models import CategoryFilter, FilterRule, RuleSet, Source
from aggregator.publish import publish
from aggregator.store import Store

from .conftest import StaticServer, check_feeds, run_cli, take

T0 = datetime(2025, 6, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=2)
ARTICLE = "<p>" + "省里召开经济工作会议，部署今年的重点任务，强调稳中求进、以进促稳、先立后破。" * 3 + "</p>"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://e.org/a?utm_source=rss&utm_medium=feed&id=7", "https://e.org/a?id=7"),
        ("https://e.org/a?id=7&fbclid=xyz&gclid=1&mc_cid=2&mc_eid=3&spm=a.b.c", "https://e.org/a?id=7"),
        ("HTTPS://E.ORG:443/a/#comments", "https://e.org/a/"),
        ("http://E.org:8080/a?b=2&a=1", "http://e.org:8080/a?b=2&a=1"),  # order kept: it may matter
        ("https://e.org", "https://e.org/"),
        ("https://e.org/a?UTM_Campaign=x&_hsenc=y&igshid=z", "https://e.org/a"),
        ("https://[2001:db8::1]:443/p?x=1", "https://[2001:db8::1]/p?x=1"),
    ],
)
def test_canonical_link_strips_tracking_only(url, canonical):
    assert canonical_link(url) == canonical


@pytest.mark.parametrize("url", [None, "", "/relative", "mailto:a@e.org", "javascript:alert(1)", "http://[::1"])
def test_no_canonical_link_for_what_is_not_a_web_url(url):
    assert canonical_link(url) is None


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://cdn.e.org/1.mp3?Expires=17&Signature=abc~&Key-Pair-Id=K", "https://cdn.e.org/1.mp3"),  # CloudFront
        (
            "https://b.s3.amazonaws.com/1.mp3?X-Amz-Algorithm=A&X-Amz-Signature=f&X-Amz-Date=2",
            "https://b.s3.amazonaws.com/1.mp3",
        ),
        (
            "https://e.org/get?id=7&sig=x&se=2026&sp=r&sv=1",
            "https://e.org/get?id=7",
        ),  # Azure SAS: the id kept
        (
            "https://e.org/1.mp3?hdnts=exp=1~hmac=2&utm_source=rss",
            "https://e.org/1.mp3",
        ),  # Akamai, and tracking
        ("https://e.org/1.mp3?st=30&token=t", "https://e.org/1.mp3?st=30&token=t"),  # no signature: all kept
        ("https://e.org/1.mp3", "https://e.org/1.mp3"),
    ],
)
def test_an_enclosure_is_identified_by_its_url_without_its_signature(url, key):
    assert enclosure_key(url) == key


def test_fingerprint_needs_enough_text_and_the_same_title():
    long = "word " * 40
    assert text_fingerprint("Read more", "A") is None
    assert text_fingerprint(long, "Title") == text_fingerprint("  " + long.upper(), "title ")
    assert text_fingerprint(long, "Title") != text_fingerprint(long, "Another title")


# --------------------------------------------------------------------------- store + pipeline


def source(name: str, *categories: str, keep: tuple[str, ...] = (), filters=()) -> Source:
    url = f"http://{name}.example/feed.xml"
    return Source(key=url, url=url, categories=categories, keep_duplicates=keep, filters=filters)


def feed_with(link: str, title: str = "经济工作会议召开", content: str = ARTICLE, guid: str | None = None) -> bytes:
    g = f"<guid>{guid}</guid>" if guid else ""
    return (
        f'<rss version="2.0"><channel><title>t</title><item>{g}<title>{title}</title><link>{link}</link>'
        f"<description><![CDATA[{content}]]></description></item></channel></rss>"
    ).encode()


def test_same_canonical_link_from_two_sources_is_published_once(store):
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    (first,) = take(store, a, feed_with("https://site.example/2025/meeting.html"), T0)
    (later,) = take(store, b, feed_with("https://site.example/2025/meeting.html?utm_source=b&utm_medium=rss"), T0)
    stored = {p.id: p for p in store.posts_for_category("news", 10)}
    assert list(stored) == [first.id]  # the first seen is published
    assert store.count_posts() == 2  # the later one is stored...
    assert [p.id for p in store.latest_posts(10)] == [first.id]
    assert _duplicate_of(store, later.id) == first.id  # ...and marked


def _items(*items: tuple[str, ...]) -> bytes:
    """An RSS feed of (guid, title, link[, text]) items; the text is ARTICLE unless given."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
        f"<description><![CDATA[{text[0] if text else ARTICLE}]]></description></item>"
        for guid, title, link, *text in items
    )
    return f'<rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


def test_an_entry_whose_guid_alone_changed_is_not_published_twice(store):
    """One entry of a feed re-guided (the others keep theirs, so the source keeps guid
    identity): same link, same text, a new guid. It was a new post beside the old one."""
    a, b = source("a", "news"), source("b", "home")
    store.sync_sources([a, b])
    others = [("urn:a:2", "二", "https://site.example/2.html"), ("urn:a:3", "三", "https://site.example/3.html")]
    first, *_ = take(store, a, _items(("urn:a:1", "一", "https://site.example/1.html"), *others), T0)
    renamed, *_ = take(store, a, _items(("urn:a:1-renamed", "一", "https://site.example/1.html"), *others), T0)
    assert store.source_state(a.key).identity == "guid"  # one guid of three changed: still guids
    assert renamed.id != first.id and _duplicate_of(store, renamed.id) == first.id
    assert len(store.posts_for_category("news", 10)) == 3 and store.count_posts() == 4
    # the feed then edits the entry, under its new guid: the edit shows, on the post shown
    edited = ARTICLE.replace("先立后破", "统筹发展和安全")
    take(store, a, _items(("urn:a:1-renamed", "一（更新）", "https://site.example/1.html", edited), *others), T1)
    shown = {p.id: p for p in store.posts_for_category("news", 10)}
    assert len(shown) == 3 and shown[first.id].title == "一（更新）" and "统筹发展和安全" in shown[first.id].content
    assert shown[first.id].first_seen == T0 and store.count_posts() == 4
    assert store.source_state(a.key).identity == "guid"
    # while the feed still lists the first entry too, each entry edits its own post
    both = [
        ("urn:a:1", "一", "https://site.example/1.html"),
        ("urn:a:1-renamed", "一（再改）", "https://site.example/1.html"),
    ]
    take(store, a, _items(*both, *others), T1 + timedelta(hours=1))
    assert {p.id: p.title for p in store.posts_for_category("news", 10)}[first.id] == "一"
    # within one feed a shared link alone (every entry linking to the home page) is no copy
    home = [(f"urn:b:{n}", title, "https://site.example/") for n, title in enumerate("一二三四")]
    take(store, b, _items(*home[:2]), T0)
    take(store, b, _items(*home), T0 + timedelta(hours=1))
    assert len(store.posts_for_category("home", 10)) == 4


def test_a_renamed_entry_with_a_short_text_is_not_published_twice(store):
    """Title-only and link-blog feeds: too little text to fingerprint, but the same link,
    title and text under a new guid is the same entry, as for a long text."""
    a = source("a", "news")
    store.sync_sources([a])
    others = [("urn:a:2", "二", "https://site.example/2.html", "<p>短</p>")]
    first, _ = take(store, a, _items(("urn:a:1", "一", "https://site.example/1.html", "<p>短</p>"), *others), T0)
    renamed, _ = take(store, a, _items(("urn:a:1-new", "一", "https://site.example/1.html", "<p>短</p>"), *others), T1)
    assert renamed.id != first.id and _duplicate_of(store, renamed.id) == first.id
    assert len(store.posts_for_category("news", 10)) == 2
    # another title (or text) under that link is another entry
    other, _ = take(
        store, a, _items(("urn:a:1-b", "一（下）", "https://site.example/1.html", "<p>短</p>"), *others), T1
    )
    assert _duplicate_of(store, other.id) is None and len(store.posts_for_category("news", 10)) == 3


def test_one_article_linked_over_http_and_https_by_two_sources_is_published_once(store):
    """A site half-moved to https: one source still links its articles with http://, another
    with https://. The same page under either scheme, with different texts (excerpts)."""
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    (first,) = take(store, a, _items(("urn:a:1", "一", "http://site.example/2025/1.html", "<p>甲</p>")), T0)
    (copy,) = take(store, b, _items(("urn:b:1", "一", "https://site.example/2025/1.html", "<p>乙</p>")), T1)
    assert _duplicate_of(store, copy.id) == first.id and len(store.posts_for_category("news", 10)) == 1


def test_entries_linking_to_a_home_or_show_page_are_not_copies_across_sources(store):
    """Different entries of two sources that link to a home page, or to a page that other
    entries of their own source link to as well (a show's page), are not one article: they
    were hidden as copies of the first source's first entry."""
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    home = "http://site.example/"
    take(store, a, _items(*[(f"urn:a:{n}", f"甲{n}", home, f"<p>甲{n}</p>") for n in range(3)]), T0)
    take(store, b, _items(*[(f"urn:b:{n}", f"乙{n}", home, f"<p>乙{n}</p>") for n in range(3)]), T0)
    assert len(store.posts_for_category("news", 10)) == 6
    show = "https://pod.example/show"
    c, d = source("c", "pods"), source("d", "pods")
    store.sync_sources([a, b, c, d])
    take(store, c, _items(*[(f"urn:c:{n}", f"第{n}集", show, f"<p>{n}</p>") for n in range(2)]), T0)
    (single,) = take(store, d, _items(("urn:d:1", "访谈", show, "<p>访谈</p>")), T1)  # one entry in d
    assert _duplicate_of(store, single.id) is None and len(store.posts_for_category("pods", 10)) == 3
    # an article's own page still makes two sources' entries one post
    (one,) = take(store, c, _items(("urn:c:9", "特辑", "https://pod.example/special", "<p>x</p>")), T1)
    (two,) = take(store, d, _items(("urn:d:9", "特辑", "https://pod.example/special?utm_source=d", "<p>y</p>")), T1)
    assert _duplicate_of(store, two.id) == one.id


def test_same_text_under_different_links_is_a_duplicate(store):
    a, b, c = source("a", "news"), source("b", "news"), source("c", "news")
    store.sync_sources([a, b, c])
    (first,) = take(store, a, feed_with("https://a.example/1"), T0)
    (copy,) = take(store, b, feed_with("https://b.example/x/9"), T0 + timedelta(minutes=5))
    (third,) = take(store, c, feed_with("https://c.example/z"), T0 + timedelta(minutes=9))
    assert _duplicate_of(store, copy.id) == first.id
    assert _duplicate_of(store, third.id) == first.id  # every copy points at the first, not a chain
    assert [p.id for p in store.posts_for_category("news", 10)] == [first.id]


def test_short_or_differently_titled_texts_are_not_duplicates(store):
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    take(store, a, feed_with("https://a.example/1", content="<p>视频</p>"), T0)
    take(store, b, feed_with("https://b.example/1", content="<p>视频</p>"), T0)
    take(store, a, feed_with("https://a.example/2", title="一篇文章"), T0)
    take(store, b, feed_with("https://b.example/2", title="另一篇文章"), T0)
    assert len(store.posts_for_category("news", 10)) == 4


def test_duplicates_keep_publishes_every_copy(store):
    a, b = source("a", "news", "all", keep=("all",)), source("b", "news", "all", keep=("all",))
    store.sync_sources([a, b])
    take(store, a, feed_with("https://site.example/m"), T0)
    take(store, b, feed_with("https://site.example/m?fbclid=1"), T0)
    assert len(store.posts_for_category("all", 10)) == 2  # duplicates: keep
    assert len(store.posts_for_category("news", 10)) == 1  # default: first


def test_a_copy_is_published_where_the_first_is_not(store):
    a, b = source("a", "news"), source("b", "news", "world")
    store.sync_sources([a, b])
    take(store, a, feed_with("https://site.example/m"), T0)
    (copy,) = take(store, b, feed_with("https://site.example/m"), T0)
    assert [p.id for p in store.posts_for_category("world", 10)] == [copy.id]  # only copy there
    assert len(store.posts_for_category("news", 10)) == 1
    # the all-posts feed is the union of the categories, each article once: the first copy
    assert [p.id for p in store.latest_posts(10)] != [copy.id] and len(store.latest_posts(10)) == 1
    # ... unless the copy's category keeps duplicates
    kept = source("b", "news", "world", keep=("world",))
    store.sync_sources([a, kept])
    assert len(store.latest_posts(10)) == 2


def test_a_copy_is_published_where_the_first_is_filtered_out(store):
    rules = (CategoryFilter("news", (RuleSet(exclude=(FilterRule((("link", r"^https://site\.example/"),)),)),)),)
    a, b = source("a", "news", filters=rules), source("b", "news")
    store.sync_sources([a, b])
    take(store, a, feed_with("https://site.example/m"), T0)
    (copy,) = take(store, b, feed_with("https://mirror.example/m"), T0)
    assert [p.id for p in store.posts_for_category("news", 10)] == [copy.id]


def test_an_update_keeps_the_duplicate_mark(store):
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    (first,) = take(store, a, feed_with("https://site.example/m"), T0)
    take(store, b, feed_with("https://site.example/m", guid="b1"), T0)
    (copy,) = take(store, b, feed_with("https://site.example/m", guid="b1", title="标题改了"), T0 + timedelta(hours=1))
    assert _duplicate_of(store, copy.id) == first.id
    assert len(store.posts_for_category("news", 10)) == 1


def dated(link: str, when: str) -> bytes:
    return feed_with(link).replace(b"</link>", f"</link><pubDate>{when}</pubDate>".encode())


@pytest.mark.parametrize("reprint_first", [True, False])
def test_copies_stored_before_a_publish_are_ordered_by_their_dates(store, reprint_first):
    """One fetch polls the original's source and a reprint's in whatever order its threads
    finish: either way the copy dated first is the one published."""
    a, b, c = source("a", "news"), source("b", "news"), source("c", "world")
    store.sync_sources([a, b, c])
    original = dated("https://site.example/m", "Sat, 31 May 2025 01:30:00 GMT")
    reprint = dated("https://site.example/m?utm_source=b", "Sat, 31 May 2025 03:00:00 GMT")
    steps = [(b, reprint), (a, original)] if reprint_first else [(a, original), (b, reprint)]
    ids = {src.key: take(store, src, body, T0)[0].id for src, body in steps}
    (third,) = take(store, c, dated("https://site.example/m#x", "Sat, 31 May 2025 05:00:00 GMT"), T0)
    first = ids[a.key]
    assert _duplicate_of(store, first) is None
    assert _duplicate_of(store, ids[b.key]) == first and _duplicate_of(store, third.id) == first
    assert [p.id for p in store.posts_for_category("news", 10)] == [first]


def test_a_first_copy_already_published_stays_first(store):
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    (reprint,) = take(store, b, dated("https://site.example/m?utm_source=b", "Sat, 31 May 2025 03:00:00 GMT"), T0)
    store.record_post_files([("posts/m.html", reprint.id, b.key, "page", None, None)])  # readers have seen it
    (original,) = take(store, a, dated("https://site.example/m", "Sat, 31 May 2025 01:30:00 GMT"), T0)
    assert _duplicate_of(store, original.id) == reprint.id and _duplicate_of(store, reprint.id) is None


def test_a_copy_stored_while_a_publish_runs_does_not_displace_the_first(store):
    """A running publish may already have put the first copy in a feed (its files are
    recorded only once written): the order of arrival stands."""
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    (reprint,) = take(store, b, dated("https://site.example/m?utm_source=b", "Sat, 31 May 2025 03:00:00 GMT"), T0)
    with store.publishing():
        (original,) = take(store, a, dated("https://site.example/m", "Sat, 31 May 2025 01:30:00 GMT"), T0)
    assert _duplicate_of(store, original.id) == reprint.id and _duplicate_of(store, reprint.id) is None
    assert store.publish_state_keys("publishing:") == []  # the mark is gone with the publish


def test_a_dead_publishers_mark_expires_and_the_next_publish_clears_it(store):
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    store.set_publish_state("publishing:999999.1", "2025-01-01T00:00:00+00:00")  # SIGKILLed long ago
    (reprint,) = take(store, b, dated("https://site.example/m?utm_source=b", "Sat, 31 May 2025 03:00:00 GMT"), T0)
    (original,) = take(store, a, dated("https://site.example/m", "Sat, 31 May 2025 01:30:00 GMT"), T0)
    assert _duplicate_of(store, reprint.id) == original.id  # an expired mark holds nothing back
    with store.publishing():
        assert len(store.publish_state_keys("publishing:")) == 1  # its own
    assert store.publish_state_keys("publishing:") == []


def test_the_later_copies_in_a_batch_point_at_the_copy_that_took_first_place(store):
    a, b = source("a", "news"), source("b", "news")
    store.sync_sources([a, b])
    take(store, b, dated("https://b.example/reprint", "Sat, 31 May 2025 03:00:00 GMT"), T0)  # same text
    two = (
        dated("https://a.example/1", "Sat, 31 May 2025 01:00:00 GMT")
        .replace(b"</channel>", b"")
        .replace(b"</rss>", b"")
    ) + feed_with("https://a.example/2").split(b"<channel><title>t</title>")[1]
    posts = take(store, a, two, T0)
    assert len(posts) == 2
    firsts = [p for p in posts if _duplicate_of(store, p.id) is None]
    assert len(firsts) == 1  # the dated one took first place; its twin in the batch points at it
    (twin,) = [p for p in posts if p is not firsts[0]]
    assert _duplicate_of(store, twin.id) == firsts[0].id


def _duplicate_of(store: Store, pid: str) -> str | None:
    row = store.db.execute("SELECT duplicate_of FROM posts WHERE id = ?", [pid]).fetchone()
    return row[0]


# --------------------------------------------------------------------------- as a user runs it


def test_published_category_feeds_carry_one_copy_unless_keep(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.xml").write_bytes(feed_with("https://site.example/2025/m.html", guid="a-1"))
    os.utime(www / "a.xml", (1_700_000_000, 1_700_000_000))
    (www / "b.xml").write_bytes(feed_with("https://site.example/2025/m.html?utm_source=b", guid="b-1"))
    server = StaticServer(www)
    try:
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            "site: {title: 测试, url: 'https://news.example/'}\n"
            "categories:\n"
            "  - name: 新闻\n    slug: news\n    sources:\n"
            f"      - url: {server.url('a.xml')}\n      - url: {server.url('b.xml')}\n"
            "  - name: 全部\n    slug: all\n    duplicates: keep\n    sources:\n"
            f"      - url: {server.url('a.xml')}\n      - url: {server.url('b.xml')}\n",
            encoding="utf-8",
        )
        for _ in range(2):  # the second run is a re-fetch: still one copy, nothing new
            result = run_cli("--config", str(cfg), "fetch")
            assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    news = json.loads((tmp_path / "public" / "category" / "news.json").read_text(encoding="utf-8"))
    everything = json.loads((tmp_path / "public" / "category" / "all.json").read_text(encoding="utf-8"))
    assert len(news["items"]) == 1 and len(everything["items"]) == 2
    checked = check_feeds(tmp_path / "public", readers=False)
    assert checked.returncode == 0, checked.stdout[-3000:]


def test_an_old_database_gains_the_new_columns_with_canonical_links(tmp_path):
    """A database made before duplicates and link identity existed opens with every post kept."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE posts (id TEXT PRIMARY KEY, source TEXT NOT NULL, guid TEXT NOT NULL, title TEXT NOT NULL, "
        "link TEXT, published TEXT NOT NULL, updated TEXT NOT NULL, content TEXT, summary TEXT, authors TEXT, "
        "tags TEXT, enclosures TEXT, language TEXT, comments TEXT, content_hash TEXT, first_seen TEXT, dated INTEGER)"
    )
    con.execute(
        "INSERT INTO posts (id, source, guid, title, link, published, updated) VALUES "
        "('00000000000000aa', 's', 'g', 't', 'https://E.example/a?utm_source=x#c', '2024-01-01', '2024-01-01')"
    )
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    store = Store(path)
    row = store.db.execute("SELECT canonical_link, duplicate_of, excluded FROM posts").fetchone()
    assert row == ("https://e.example/a", None, None)
    assert store.ids_by_link("s", ["https://e.example/a"]) == {"https://e.example/a": "00000000000000aa"}
    store.close()


def test_canonical_link_keeps_the_encoding_of_what_it_keeps():
    assert canonical_link("https://e.org/s?q=a%20b&utm_source=x&k=%E4%B8%AD") == "https://e.org/s?q=a%20b&k=%E4%B8%AD"
    assert canonical_link("https://e.org/s?q=a%20b") == "https://e.org/s?q=a%20b"
    assert canonical_link("https://e.org/s?&&utm_medium=rss&") == "https://e.org/s"


def test_fingerprint_of_sanitized_text_needs_no_second_squeeze() -> None:
    """normalize passes sanitized_text output as already squeezed: it must be, for every kind of space."""
    from aggregator.sanitize import sanitize_html, sanitized_text

    html = (
        "<p>\u00a0Lead\u3000text\u2028with\u2029odd\u0085spaces\x1c\x1d\x1e\x1f and&nbsp;&#x2003;entities</p>"
        "<ul><li> one </li><li>two\r\n\tthree</li></ul><pre>  code\n\n  block  </pre>" * 3
    )
    text = sanitized_text(sanitize_html(html))
    assert text == " ".join(text.split())
    assert text_fingerprint(text, " A  title ", squeezed=True) == text_fingerprint(text, " A  title ") is not None


def test_a_copy_shown_once_its_first_is_pruned_gets_its_page(tmp_path):
    """`prune` deleted the first copy; the other became the one shown and its category's
    pages linked to it, but the next fetch's publish never wrote its page (404)."""
    www = tmp_path / "www"
    www.mkdir()
    dated = b"<item><pubDate>Mon, 02 Jun 2025 08:00:00 +0000</pubDate>"
    for name in "xyz":
        body = feed_with(f"https://site.example/2025/m.html?utm_source={name}", guid=f"{name}-1")
        (www / f"{name}.xml").write_bytes(body.replace(b"<item>", dated))
    (www / "w.xml").write_bytes(feed_with("https://w.example/today.html", title="今日要闻", content="<p>新</p>"))
    server = StaticServer(www)
    try:
        cfg = tmp_path / "feeds.yaml"
        sources = "".join(f"      - url: {server.url(n + '.xml')}\n" for n in "xyzw")
        config = "site: {title: 测试, url: 'https://news.example/', items_per_feed: 1}\n"
        config += f"categories:\n  - name: 新闻\n    slug: news\n    sources:\n{sources}"
        cfg.write_text(config, encoding="utf-8")
        for name in "xyzw":  # x first: its post is the one shown; w's is the category's newest
            assert run_cli("--config", str(cfg), "fetch", "--source", server.url(f"{name}.xml")).returncode == 0
        (www / "x.xml").write_bytes(b'<rss version="2.0"><channel><title>t</title></channel></rss>')
        # x keeps nothing older than a day: its post goes, and the category keeps a newest post
        limited = f"      - url: {server.url('x.xml')}\n        keep_days: 1\n"
        cfg.write_text(config.replace(f"      - url: {server.url('x.xml')}\n", limited), encoding="utf-8")
        assert "removed 1 post " in run_cli("--config", str(cfg), "prune").stdout
        assert run_cli("--config", str(cfg), "fetch").returncode == 0
    finally:
        server.close()
    with sqlite3.connect(tmp_path / "aggregator.db") as conn:
        rows = conn.execute("SELECT id, duplicate_of FROM posts WHERE source != ?", [server.url("w.xml")]).fetchall()
    (shown,) = [pid for pid, copied in rows if copied is None]  # one copy took the first's place
    assert [copied for _, copied in rows if copied is not None] == [shown]  # the other points at it
    public = tmp_path / "public"
    listing = (public / "category" / "news.html").read_text(encoding="utf-8")
    linked = set(re.findall(r'href="[^"]*?(posts/[^"]+\.html)"', listing))
    assert len(linked) == 2 and all((public / page).is_file() for page in linked), linked
    assert any(shown in page for page in linked)
    check_feeds(public)


def test_a_copy_hidden_by_its_first_copys_source_joining_a_category_loses_that_link_on_its_page(tmp_path):
    """A copy is shown in a category until the source of its first copy joins it. The
    publisher no longer redoes every page when a category's sources change, only what
    that change touches: the copy's page, in a category that did not change, must still
    drop its link to the category it left."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.xml").write_bytes(feed_with("https://site.example/2025/m.html", guid="a-1"))
    (www / "b.xml").write_bytes(feed_with("https://site.example/2025/m.html?utm_source=b", guid="b-1"))
    server = StaticServer(www)
    cfg = tmp_path / "feeds.yaml"

    def config(world: str, news: str, everything: str) -> None:
        lines = ["site: {title: 测试, url: 'https://news.example/'}", "categories:"]
        for slug, names in (("world", world), ("news", news), ("all", everything)):
            if names:
                lines += [f"  - name: {slug}", f"    slug: {slug}", "    sources:"]
                lines += [f"      - url: {server.url(n + '.xml')}" for n in names]
        cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")

    try:
        config("a", "", "")
        assert run_cli("--config", str(cfg), "fetch").returncode == 0  # a's post is the first copy
        config("a", "b", "b")
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    with sqlite3.connect(tmp_path / "aggregator.db") as conn:
        (copy,) = conn.execute("SELECT id FROM posts WHERE duplicate_of IS NOT NULL").fetchone()
    (page,) = (tmp_path / "public" / "posts").rglob(f"{copy}.html")
    assert "category/news.html" in page.read_text("utf-8")  # shown in news: a is not there
    config("a", "ab", "b")  # applied as the daemon's reload applies it (`publish` rebuilds all)
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        report = publish(settings, store)
    assert "all" in report.categories  # the copy's own category: nothing of it changed but its page
    text = page.read_text("utf-8")
    assert "category/news.html" not in text and "category/all.html" in text
    news = json.loads((tmp_path / "public" / "category" / "news.json").read_text(encoding="utf-8"))
    assert len(news["items"]) == 1  # a's post only
