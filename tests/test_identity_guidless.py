"""Entries without a guid that share a link (a digest, a changelog page, podcast episodes all
linking to the show's page) are each a post; one link per entry keeps its link identity."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from aggregator.identity import post_id
from aggregator.models import Retention, Source
from aggregator.normalize import normalize
from aggregator.parse import parse_feed, parse_feedparser
from aggregator.pipeline import ingest, retain
from aggregator.store import Store

from .conftest import run_cli

T0 = datetime(2025, 6, 1, tzinfo=UTC)
PAGE = "https://shop.example/changelog"
SRC = Source(key="https://shop.example/feed.xml", url="https://shop.example/feed.xml", categories=("news",))


def rss(*items: tuple[str, ...]) -> bytes:
    """An RSS feed of guid-less (title, text[, link]) items; the link is PAGE unless given."""
    body = "".join(
        f"<item><title>{title}</title><link>{link[0] if link else PAGE}</link><description>{text}</description></item>"
        for title, text, *link in items
    )
    return (
        f'<rss version="2.0"><channel><title>t</title><link>https://shop.example/</link>{body}</channel></rss>'.encode()
    )


DAYS = [(f"Release 1.{n}", f"Fixed bug {n} in the checkout.") for n in (3, 2, 1)]  # newest first


# --------------------------------------------------------------------------- normalize alone


@pytest.mark.parametrize("parse", [parse_feed, parse_feedparser], ids=["fast", "feedparser"])
def test_guidless_entries_sharing_a_link_are_each_a_post(parse):
    """Three entries of one link were one post (the first); the other two were dropped."""
    body = rss(*DAYS, DAYS[2], ("Elsewhere", "Its own page.", "https://shop.example/other"))
    posts = normalize(SRC, parse(SRC.url, body, SRC.url), T0)
    assert [p.title for p in posts] == ["Release 1.3", "Release 1.2", "Release 1.1", "Elsewhere"]  # the repeat once
    assert len({p.id for p in posts}) == 4
    # the first listed keeps the id it had, as does an entry alone on its link
    assert posts[0].id == post_id(SRC.key, PAGE) and posts[0].guid == PAGE
    assert posts[3].id == post_id(SRC.key, "https://shop.example/other")
    assert all(p.guid.startswith(PAGE) and p.guid != PAGE for p in posts[1:3])


def test_both_parse_paths_give_the_same_ids():
    body = rss(*DAYS)
    fast = normalize(SRC, parse_feed(SRC.url, body, SRC.url), T0)
    slow = normalize(SRC, parse_feedparser(SRC.url, body, SRC.url), T0)
    assert [p.id for p in fast] == [p.id for p in slow] and len({p.id for p in fast}) == 3


def test_json_feed_items_without_id_sharing_a_url_are_each_a_post():
    items = [{"url": PAGE, "title": title, "content_text": text} for title, text in DAYS]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": items}).encode()
    feed = parse_feed(SRC.url, body, SRC.url, {"content-type": "application/feed+json"})
    posts = normalize(SRC, feed, T0)
    assert len({p.id for p in posts}) == 3 and posts[0].id == post_id(SRC.key, PAGE)


def test_entries_with_guids_sharing_a_link_are_left_to_their_guids():
    body = (
        '<rss version="2.0"><channel><title>t</title>'
        + "".join(
            f'<item><guid isPermaLink="false">urn:x:{n}</guid><title>{n}</title><link>{PAGE}</link></item>'
            for n in range(2)
        )
        + "</channel></rss>"
    ).encode()
    posts = normalize(SRC, parse_feed(SRC.url, body, SRC.url), T0)
    assert [p.id for p in posts] == [post_id(SRC.key, "urn:x:0"), post_id(SRC.key, "urn:x:1")]


# --------------------------------------------------------------------------- with the store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite")
    s.sync_sources([SRC])
    yield s
    s.close()


def take(store: Store, body: bytes, when: datetime) -> tuple[list, int, int]:
    return ingest(SRC, store, parse_feed(SRC.key, body, SRC.url), when)


def stored(store: Store) -> dict[str, tuple[str, str]]:
    """id → (title, content) of every post stored."""
    rows = store.db.execute("SELECT id, title, content FROM posts").fetchall()
    return {pid: (title, content) for pid, title, content in rows}


def test_a_second_entry_of_a_stored_link_is_a_new_post_and_leaves_the_stored_one_alone(store):
    """Before: the newcomer, listed first, took the link's id and overwrote the stored entry
    as an edit of it. Now the stored entry keeps its id and text; the newcomer is new."""
    (old,), new, _ = take(store, rss(DAYS[2]), T0)
    assert new == 1 and old.id == post_id(SRC.key, PAGE)
    posts, new, updated = take(store, rss(DAYS[1], DAYS[2]), T0 + timedelta(days=1))
    assert (new, updated) == (1, 0)
    assert [p.id for p in posts][1] == old.id
    assert stored(store)[old.id][0] == "Release 1.1" and len(stored(store)) == 2


def test_after_the_upgrade_the_entries_that_were_dropped_come_as_new_posts(store):
    """What an older version stored of a digest (its first entry, under the link's id) stays
    as it is, id and text; the entries it dropped come as new posts, once."""
    (kept,), _, _ = take(store, rss(DAYS[0]), T0)  # all an older version kept of rss(*DAYS)
    posts, new, updated = take(store, rss(*DAYS), T0 + timedelta(hours=1))
    assert (new, updated) == (2, 0) and posts[0].id == kept.id == post_id(SRC.key, PAGE)
    assert take(store, rss(*DAYS), T0 + timedelta(hours=2))[1:] == (0, 0)
    assert sorted(t for t, _ in stored(store).values()) == ["Release 1.1", "Release 1.2", "Release 1.3"]


def test_a_link_told_apart_stays_so_when_one_entry_is_left(store):
    """Entries told apart keep their ids when the others leave the feed: the one left was
    taken for an edit of the link's post."""
    first, _, _ = take(store, rss(*DAYS), T0)
    ids = [p.id for p in first]
    for n in range(3):
        posts, new, updated = take(store, rss(DAYS[n]), T0 + timedelta(hours=n + 1))
        assert [p.id for p in posts] == [ids[n]] and (new, updated) == (0, 0)
    assert {v[0] for v in stored(store).values()} == {t for t, _ in DAYS}


def test_an_edited_entry_of_a_shared_link_stays_its_post(store):
    """Chosen trade-off: an entry is matched to its stored post by its title (text edited) or
    its text (title corrected), when no other post or entry of the link has that title or
    text. Changed in both at once, it is a new post and the old one stays as it was."""
    first, _, _ = take(store, rss(*DAYS), T0)
    ids = [p.id for p in first]
    fixed_text = [DAYS[0], (DAYS[1][0], "Fixed bug 2 in the checkout page."), DAYS[2]]
    posts, new, updated = take(store, rss(*fixed_text), T0 + timedelta(hours=1))
    assert [p.id for p in posts] == ids and (new, updated) == (0, 1)
    fixed_title = [DAYS[0], ("Release 1.2.0", "Fixed bug 2 in the checkout page."), DAYS[2]]
    posts, new, updated = take(store, rss(*fixed_title), T0 + timedelta(hours=2))
    assert [p.id for p in posts] == ids and (new, updated) == (0, 1)
    assert stored(store)[ids[1]] == ("Release 1.2.0", "Fixed bug 2 in the checkout page.")
    both = [DAYS[0], ("Release 1.2.1", "Another text altogether."), DAYS[2]]
    posts, new, updated = take(store, rss(*both), T0 + timedelta(hours=3))
    assert (new, updated) == (1, 0) and posts[1].id not in ids


def test_a_new_day_of_a_digest_with_one_title_is_no_edit_of_the_day_that_left(store):
    """A digest titled the same every day, its feed keeping three days: the new day is a new
    post, not an edit of the day that left the feed (whose title it shares)."""
    days = [("Daily digest", f"News of day {n}.") for n in range(5, 0, -1)]
    take(store, rss(*days[2:]), T0)
    posts, new, updated = take(store, rss(*days[1:4]), T0 + timedelta(days=1))
    assert (new, updated) == (1, 0)
    posts, new, updated = take(store, rss(*days[:3]), T0 + timedelta(days=2))
    assert (new, updated) == (1, 0)
    assert sorted(c for _, c in stored(store).values()) == [f"News of day {n}." for n in range(1, 6)]


def test_a_switch_to_link_identity_keeps_the_entries_told_apart(store):
    """A feed whose guids prove useless (one guid for two links) is identified by link from
    then on, and copies of one link merged: entries without guid told apart are no copies,
    and none of them is merged away or overwritten by another."""
    bad = '<item><guid isPermaLink="false">g</guid><title>{0}</title><link>https://shop.example/{0}</link></item>'
    first, new, _ = take(store, rss(*DAYS).replace(b"</channel>", bad.format("x1").encode() + b"</channel>"), T0)
    assert new == 4
    ids = {p.title: p.id for p in first}
    both = (bad.format("x1") + bad.format("x2")).encode() + b"</channel>"
    posts, new, updated = take(store, rss(DAYS[0]).replace(b"</channel>", both), T0 + timedelta(hours=1))
    assert store.source_state(SRC.key).identity == "link"
    assert (new, updated) == (1, 0) and posts[0].id == ids["Release 1.3"]
    assert {t for t, _ in stored(store).values()} == {"Release 1.3", "Release 1.2", "Release 1.1", "x1", "x2"}
    posts, new, updated = take(store, rss(*DAYS).replace(b"</channel>", both), T0 + timedelta(hours=2))
    assert (new, updated) == (0, 0) and [p.id for p in posts[:3]] == [ids[t] for t, _ in DAYS]


# --------------------------------------------------------------------------- as a user runs it


def _fetch(cfg: Path) -> None:
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr


def _published(tmp_path: Path) -> dict[str, str]:
    """Published item id → title, from the category's JSON Feed."""
    feed = json.loads((tmp_path / "public" / "category" / "news.json").read_text(encoding="utf-8"))
    return {item["id"]: item["title"] for item in feed["items"]}


def _count(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "aggregator.db") as con:
        return con.execute("SELECT count(*) FROM posts").fetchone()[0]


def test_a_changelog_feed_linking_every_entry_to_one_page_publishes_every_entry(tmp_path, httpserver: HTTPServer):
    """`aggregator fetch` over HTTP of three guid-less entries linking to one page: all three
    are stored and published (one was, before); fetched again (in another order), nothing new;
    a fourth entry is one new post; an entry whose title is corrected stays its post, under
    the new title."""
    served = {"body": rss(*DAYS)}
    httpserver.expect_request("/feed.xml").respond_with_handler(
        lambda _: Response(served["body"], content_type="application/rss+xml")
    )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/'}\n"
        f"categories:\n  - name: News\n    slug: news\n    sources:\n      - url: {httpserver.url_for('/feed.xml')}\n",
        encoding="utf-8",
    )
    _fetch(cfg)
    assert _count(tmp_path) == 3
    assert sorted(_published(tmp_path).values()) == ["Release 1.1", "Release 1.2", "Release 1.3"]
    ids = set(_published(tmp_path))
    served["body"] = rss(*DAYS[::-1])  # the same entries, listed otherwise: parsed again, not "same body"
    _fetch(cfg)
    assert _count(tmp_path) == 3 and set(_published(tmp_path)) == ids
    served["body"] = rss(("Release 1.4", "Fixed bug 4 in the checkout."), *DAYS)
    _fetch(cfg)
    assert _count(tmp_path) == 4 and len(_published(tmp_path)) == 4 and ids < set(_published(tmp_path))
    ids = set(_published(tmp_path))
    corrected = ("Release 1.2.0", DAYS[1][1])
    served["body"] = rss(("Release 1.4", "Fixed bug 4 in the checkout."), DAYS[0], corrected, DAYS[2])
    _fetch(cfg)
    assert _count(tmp_path) == 4 and set(_published(tmp_path)) == ids
    assert "Release 1.2.0" in _published(tmp_path).values() and "Release 1.2" not in _published(tmp_path).values()


def test_an_entry_of_a_shared_link_pruned_while_listed_stays_pruned(tmp_path):
    """The entry holding the link's own id, pruned (keep_per_source) while the feed still
    lists it, came back on the next fetch as a new post under an id of link and content
    (the pruned id was the link's), at the top when undated, and pushed another post out."""
    src = replace(SRC, retention=Retention(keep_per_source=2, protect=0))
    store = Store(tmp_path / "db.sqlite")
    store.sync_sources([src])

    def take_(body: bytes, when: datetime) -> tuple[list, int, int]:
        taken = ingest(src, store, parse_feed(src.key, body, src.url), when)
        retain(src, store, taken[1], when)  # the prune that follows a poll's store
        return taken

    take_(rss(DAYS[2]), T0)  # the oldest alone: it has the link's id
    take_(rss(*DAYS[1:]), T0 + timedelta(days=1))
    take_(rss(*DAYS), T0 + timedelta(days=2))  # the oldest is pruned
    assert sorted(t for t, _ in stored(store).values()) == ["Release 1.2", "Release 1.3"]
    for n in range(3, 5):
        assert take_(rss(*DAYS), T0 + timedelta(days=n))[1:] == (0, 0)
        assert sorted(t for t, _ in stored(store).values()) == ["Release 1.2", "Release 1.3"]
    store.close()


def test_an_untitled_entry_without_guid_or_link_keeps_its_id_however_its_title_is_cut():
    """An entry with no guid, link or title is identified by a title made of its text's start:
    cutting that title between whole characters (a Thai vowel sign kept with its consonant, an
    emoji family whole) gave such entries new ids, each a new post beside the old one. The ids
    are the ones earlier versions gave (computed by the code before 778c911)."""
    texts = ["x" + "กั" * 150, "👨\u200d👩\u200d👧\u200d👦" * 45, "ข่าว " + "x" + "กั" * 600, EMOJI_NEWS, KOREAN]
    body = rss_untitled(texts)
    for parse in (parse_feed, parse_feedparser):
        posts = normalize(SRC, parse(SRC.url, body, SRC.url), T0)
        ids = ["5ae88813ce3ba929", "13bd3cd523a041db", "934da7e8fb0d2690", "10b47de3cab746d4", "c02ed78fa0cb75bf"]
        assert [p.id for p in posts] == ids
        # the titles shown end in whole characters, and words
        assert [p.title[-2] for p in posts] == ["ั", "👦", "ั", "g", "한"]


# Untitled posts in characters two columns wide but written in words between spaces, unlike
# Chinese and Japanese (whose titles are cut anywhere): a social post's emoji, Korean
EMOJI_NEWS = "🔥 Breaking: the central bank raised interest rates again today amid growing fears of inflation"
KOREAN = (
    "서울시는 오늘 새로운 교통 정책을 발표했습니다. 시민들의 반응은 엇갈리고 있으며 전문가들은 신중한 접근을 주문했다"
)


def test_an_untitled_post_with_an_emoji_or_in_korean_is_titled_with_whole_words():
    """`🔥 Breaking: the central bank raised interest rates again to…`, `… 시민들의 반응…`: an
    emoji, or hangul, two columns wide, made the title be cut as Chinese is, at 60 columns
    inside a word. Their first twelve words now, as English; Chinese, with an emoji or not,
    is still cut at 60 columns."""
    chinese = "🔥🔥 突发：央行今天再次加息，市场担心通货膨胀加剧，股市应声下跌，投资者纷纷抛售"
    posts = normalize(SRC, parse_feed(SRC.url, rss_untitled([EMOJI_NEWS, KOREAN, chinese]), SRC.url), T0)
    words = [" ".join(text.split()[:12]) + "…" for text in (EMOJI_NEWS, KOREAN)]
    assert [p.title for p in posts] == [*words, chinese[:30] + "…"]


def rss_untitled(texts: list[str]) -> bytes:
    """An RSS feed of items that have only a description."""
    items = "".join(f"<item><description>{t}</description></item>" for t in texts)
    return f'<rss version="2.0"><channel><title>t</title><link>https://shop.example/</link>{items}</channel></rss>'.encode()
