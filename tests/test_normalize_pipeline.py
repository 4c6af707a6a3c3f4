"""Identity and updates through the real pipeline: a local HTTP server whose feed changes.

Each test serves a feed file from a temporary folder, polls it with the real Fetcher and
`update_source`, rewrites the file between polls (moving its mtime forward, so the
server's Last-Modified changes), and reads the real SQLite store back.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.fetch import Fetcher
from aggregator.identity import GUID, LINK, post_id
from aggregator.models import NORMALIZER_VERSION, Retention, Source
from aggregator.normalize import _hash, hash_before_8
from aggregator.pipeline import update_source
from aggregator.store import Store

from .conftest import StaticServer, run_cli

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class Feed:
    """A feed file on a local server, rewritable between polls, with a fake clock for `now`."""

    def __init__(self, root: Path, name: str, server: StaticServer, store: Store) -> None:
        self.path = root / f"{name}.xml"
        self.url = server.url(self.path.name)
        self.source = Source(key=self.url, url=self.url, categories=("news",), timezone="Asia/Shanghai")
        self.store = store
        self.fetcher = Fetcher()
        self.now = T0
        self.version = 0
        store.sync_sources([self.source])

    def serve(self, items: list[tuple[str | None, str, str, str]], build: str = "", permalink: bool = False) -> None:
        """items: (guid, link, title, content); `permalink`: the guids are (isPermaLink true)."""
        xml = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>本地新闻</title>']
        xml.append(f"<link>http://news.example/</link><lastBuildDate>{build}</lastBuildDate>")
        for guid, link, title, content in items:
            g = f"<guid isPermaLink='{str(permalink).lower()}'>{guid}</guid>" if guid else ""
            xml.append(f"<item>{g}<link>{link}</link><title>{title}</title><description><![CDATA[{content}]]>")
            xml.append("</description></item>")
        xml.append("</channel></rss>")
        self.path.write_text("".join(xml), encoding="utf-8")
        self.version += 1
        stamp = 1_700_000_000 + self.version * 60  # Last-Modified moves on with every version
        os.utime(self.path, (stamp, stamp))

    def poll(self):
        self.now += timedelta(hours=1)
        return update_source(self.source, self.store, self.fetcher, now=lambda: self.now)

    def rows(self) -> dict[str, dict]:
        con = sqlite3.connect(self.store.path)
        con.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in con.execute("SELECT * FROM posts ORDER BY id")}

    def published(self) -> list:
        return self.store.posts_for_category("news", 100)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[StaticServer]:
    s = StaticServer(tmp_path_factory.mktemp("www"))
    yield s
    s.close()


@pytest.fixture
def feed(tmp_path, server, request) -> Iterator[Feed]:
    store = Store(tmp_path / "db.sqlite")
    f = Feed(server.root, request.node.name, server, store)
    yield f
    f.fetcher.close()
    store.close()


def items(n: int, guid: str = "g{i}", title: str = "第{i}条新闻", body: str = "<p>正文 {i}</p>"):
    return [
        (guid.format(i=i), f"https://news.example/a/{i}.html", title.format(i=i), body.format(i=i))
        for i in range(1, n + 1)
    ]


def test_changed_entry_updates_the_post_and_unchanged_refetch_touches_nothing(feed):
    feed.serve(items(3), build="v1")
    first = feed.poll()
    assert (first.status, first.new, first.updated) == ("new", 3, 0)
    before = feed.rows()

    changed = items(3)
    changed[1] = (changed[1][0], changed[1][1], "第2条新闻（更新）", "<p>正文 2，补充了细节。</p>")
    feed.serve(changed, build="v2")
    second = feed.poll()
    assert (second.status, second.new, second.updated) == ("updated", 0, 1)
    after = feed.rows()
    assert after.keys() == before.keys()  # the same posts: no second copy
    (pid,) = [k for k in after if after[k]["content_hash"] != before[k]["content_hash"]]
    assert after[pid]["title"] == "第2条新闻（更新）" and "补充了细节" in after[pid]["content"]
    assert after[pid]["updated"] == feed.now.isoformat()  # undated entry: the fetch time is when it changed
    assert after[pid]["first_seen"] == before[pid]["first_seen"]
    assert after[pid]["published"] == before[pid]["published"]  # an undated entry keeps its first date
    assert all(after[k] == before[k] for k in after if k != pid)

    feed.serve(changed, build="v3")  # the body changes, no entry does
    third = feed.poll()
    assert (third.status, third.new, third.updated, third.entries) == ("unchanged", 0, 0, 3)
    assert feed.rows() == after  # not a single column touched


def test_a_post_a_newer_normalizer_reads_otherwise_is_refreshed_not_dated_as_edited(feed):
    """An upgrade that reads an unchanged entry otherwise (a tracking pixel removed, an image
    enclosure kept) changes its content hash: each such post was stored as edited now, and
    readers showed hundreds of old episodes as updated at once. Refreshed, it keeps its date."""
    feed.serve(items(3), build="v1")
    feed.poll()
    con = sqlite3.connect(feed.store.path)
    with con:  # as a database an older version filled: its own hashes, no version mark
        con.execute("UPDATE posts SET normalized = NULL, content_hash = 'older', content = '<p>older</p>'")
    con.close()
    before = feed.rows()
    feed.serve(items(3), build="v2")  # another body, the same entries
    outcome = feed.poll()
    assert (outcome.status, outcome.updated) == ("updated", 3)  # refreshed: pages are written again
    after = feed.rows()
    for pid, row in after.items():
        assert row["updated"] == before[pid]["updated"], row  # not dated as an edit
        assert row["content"] != "<p>older</p>" and row["normalized"] == NORMALIZER_VERSION
        assert row["revision"] > before[pid]["revision"]
    edited = items(3)
    edited[0] = (*edited[0][:3], "<p>正文 1，更正。</p>")
    feed.serve(edited, build="v3")  # a real edit, read by this version
    assert feed.poll().updated == 1
    (pid,) = [k for k, row in feed.rows().items() if "更正" in row["content"]]
    assert feed.rows()[pid]["updated"] == feed.now.isoformat()


@pytest.mark.parametrize(
    "body", ["<p>" + "这是一段足够长的正文内容，用来生成指纹。" * 8 + "{i}</p>", "<p>短{i}</p>"], ids=["long", "short"]
)
def test_a_site_moving_to_https_does_not_publish_its_entries_twice(feed, body):
    """The move rewrites every guid and link from http:// to https://: each entry came in as
    new, and subscribers got the whole feed a second time. Same text, same page under the
    other scheme: the same entry, its post now linking to https (an edit, not a new post)."""
    http = [
        (f"http://news.example/a/{i}.html", f"http://news.example/a/{i}.html", f"第{i}条新闻", body.format(i=i))
        for i in range(1, 4)
    ]
    feed.serve(http)
    assert feed.poll().new == 3
    ids = {p.id for p in feed.published()}
    feed.serve([(g.replace("http:", "https:", 1), ln.replace("http:", "https:", 1), t, c) for g, ln, t, c in http])
    feed.poll()
    shown = feed.published()
    assert {p.id for p in shown} == ids  # the posts readers have, no second copy
    assert sorted(p.link for p in shown) == [f"https://news.example/a/{i}.html" for i in range(1, 4)]


def test_an_entry_without_guid_or_link_an_older_normalizer_hashed_otherwise_keeps_its_post(feed):
    """An entry without guid or link is known by the hash of its title and sanitized content;
    version 13's sanitizer reads a FeedBurner ad block and an SVG picture's name otherwise, so
    after the upgrade each such entry of an unchanged feed came as a new post beside the one
    readers had (twice in every feed). It keeps its post, refreshed, not dated as an edit."""
    ads = '<a href="http://feedads.g.doubleclick.net/~a/D/0/da"><img src="http://feedads.g.doubleclick.net/~a/D/0/di"></a>'
    entries = [
        (None, "", "周报 1", f"<p>正文 1<br>{ads}<br>\n{ads}</p>"),
        (None, "", "周报 2", '<p>See <svg role="img" aria-label="A diagram"><path d="M0"/></svg> below.</p>'),
        (None, "", "同名", "<p>一</p>"),
        (None, "", "同名", "<p>二</p>"),  # two of one title: which is which cannot be told
    ]
    feed.serve(entries, build="v1")
    assert feed.poll().new == 4
    con = sqlite3.connect(feed.store.path)
    with con:  # as version 12 stored them: under the hash its sanitizer gave, its version mark
        for (pid,) in con.execute("SELECT id FROM posts").fetchall():
            older = _hash(f"older {pid}")
            con.execute(
                "UPDATE posts SET id = ?, guid = ?, content_hash = 'older', normalized = ? WHERE id = ?",
                [post_id(feed.url, older), older, NORMALIZER_VERSION - 1, pid],
            )
        con.execute("UPDATE sources SET read_by = ?", [NORMALIZER_VERSION - 1])  # its last reader
    con.close()
    before = feed.rows()
    feed.serve(entries, build="v2")
    outcome = feed.poll()
    after = feed.rows()
    kept = {pid for pid, row in before.items() if row["title"] != "同名"}
    assert outcome.new == 2 and len(after) == 6  # only the two of one title come again
    for pid in kept:
        assert after[pid]["updated"] == before[pid]["updated"]  # refreshed, not dated as an edit
        assert after[pid]["guid"] != before[pid]["guid"] and after[pid]["normalized"] == NORMALIZER_VERSION
    feed.serve(entries, build="v3")
    assert (feed.poll().new, feed.rows()) == (0, after)


def test_a_post_a_newer_normalizer_reads_the_same_is_marked_current_so_its_next_edit_is_dated(feed):
    """A post an upgrade reads as before was left marked with the older version, so the feed's
    next undated edit of it was taken for the upgrade's and not dated: raising the version
    (podcast durations) would have done that to every post stored. Marked current, without
    being republished, its edit is dated as any other."""
    feed.serve(items(2), build="v1")
    feed.poll()
    con = sqlite3.connect(feed.store.path)
    with con:  # as an older version stored them, reading them as this one does
        con.execute("UPDATE posts SET normalized = ?", [NORMALIZER_VERSION - 1])
    con.close()
    before = feed.rows()
    feed.serve(items(2), build="v2")
    assert feed.poll().updated == 0
    after = feed.rows()
    for pid, row in after.items():
        assert row == {**before[pid], "normalized": NORMALIZER_VERSION}  # nothing else: not republished
    edited = items(2)
    edited[0] = (*edited[0][:3], "<p>正文 1，更正。</p>")
    feed.serve(edited, build="v3")
    assert feed.poll().updated == 1
    (pid,) = [k for k, row in feed.rows().items() if "更正" in row["content"]]
    assert feed.rows()[pid]["updated"] == feed.now.isoformat()


def test_one_guid_for_different_entries_switches_to_link_identity(feed):
    entries = items(4)
    entries[1] = ("https://news.example/", *entries[1][1:])
    entries[3] = ("https://news.example/", *entries[3][1:])
    feed.serve(entries)
    outcome = feed.poll()
    assert outcome.new == 4  # none of the entries sharing a guid is lost
    state = feed.store.source_state(feed.url)
    assert state.identity == LINK and "used for different entries" in state.identity_note
    assert sorted(p.title for p in feed.published()) == ["第1条新闻", "第2条新闻", "第3条新闻", "第4条新闻"]
    ids = set(feed.rows())
    feed.serve(entries, build="again")
    assert feed.poll().new == 0 and set(feed.rows()) == ids  # stable afterwards


def test_guids_that_change_on_every_fetch_switch_to_link_identity_keeping_ids(feed):
    feed.serve(items(3, guid="{i}-1700000001"))
    assert feed.poll().new == 3
    ids = set(feed.rows())
    assert feed.store.source_state(feed.url).identity == GUID

    feed.serve(items(3, guid="{i}-1700000999"))  # same entries, guids made up anew
    outcome = feed.poll()
    assert (outcome.new, outcome.updated) == (0, 0)
    state = feed.store.source_state(feed.url)
    assert state.identity == LINK and "changed between fetches" in state.identity_note
    assert set(feed.rows()) == ids  # every post keeps its id: URLs and feed GUIDs do not move

    feed.serve(items(4, guid="{i}-1700005555"))  # again new guids, and one new entry
    outcome = feed.poll()
    assert (outcome.new, outcome.updated) == (1, 0)
    assert set(feed.rows()) > ids and len(feed.published()) == 4


def test_late_detection_merges_the_copies_already_stored(feed):
    """One changed guid among many is taken for a new entry; when most change, the copies merge."""
    feed.serve(items(6))
    feed.poll()
    drifted = items(6)
    drifted[0] = ("g1-edited", *drifted[0][1:3], "<p>另一条正文</p>")  # the same text would be a copy
    feed.serve(drifted)
    assert feed.poll().new == 1  # 1 of 6 changed: could be a new entry reusing the link
    assert feed.store.source_state(feed.url).identity == GUID
    assert len(feed.published()) == 7

    feed.serve(items(6, guid="x{i}"))  # now every guid changes: the feed makes them up
    outcome = feed.poll()
    assert (outcome.new, outcome.updated) == (0, 0)
    assert feed.store.source_state(feed.url).identity == LINK
    published = feed.published()
    assert len(published) == 6 and len({p.link for p in published}) == 6  # the copy is gone
    # the one kept for each link is the first seen: its id is the one readers already have
    first_ids = {p.link: p.id for p in published}
    assert first_ids["https://news.example/a/1.html"] in set(feed.rows())


def test_tracking_parameters_do_not_make_a_new_entry_in_link_mode(feed):
    feed.serve(items(2, guid="https://news.example/"))  # repeated guid: link identity from the start
    feed.poll()
    ids = set(feed.rows())
    tracked = [(g, link + "?utm_source=rss&utm_medium=feed", t, c) for g, link, t, c in items(2, guid="x")]
    feed.serve(tracked)
    assert feed.poll().new == 0
    assert set(feed.rows()) == ids


def test_links_whose_tracking_parameters_change_at_every_fetch_are_no_edit(feed):
    """A CMS that stamps `utm_campaign` with the day (or the fetch) published every post as
    edited at every poll: its updated time moved to now, and readers showed it again."""

    def stamped(n: int, campaign: str, guid: str = "g{i}") -> list:
        return [(g, f"{link}?utm_source=rss&utm_campaign={campaign}", t, c) for g, link, t, c in items(n, guid=guid)]

    feed.serve(stamped(2, "day1"))
    assert feed.poll().new == 2
    before = feed.rows()
    feed.serve(stamped(2, "day2"))
    again = feed.poll()
    assert (again.status, again.new, again.updated) == ("unchanged", 0, 0)
    assert feed.rows() == before  # the stored link is the first one's, the updated time as it was
    moved = stamped(2, "day3")
    moved[0] = (moved[0][0], "https://news.example/a/1-corrected.html?utm_campaign=day3", *moved[0][2:])
    feed.serve(moved)
    edited = feed.poll()  # a link to another page is a correction, as before
    assert (edited.new, edited.updated) == (0, 1)
    assert any(r["link"].startswith("https://news.example/a/1-corrected.html") for r in feed.rows().values())


def test_a_shared_link_entry_pruned_before_an_upgrade_changed_its_hash_stays_pruned(feed):
    """An entry of a link several entries share (a digest's) pruned while still listed is
    known by its content hash; NORMALIZER_VERSION 8 hashes the link without its `utm_*`, and
    the entry an older version pruned came back as new after the upgrade."""
    link = "http://news.example/digest?utm_source=rss"
    digest = [(None, link, f"Day {d} news", f"<p>What happened on day {d}.</p>") for d in ("one", "two", "three")]
    feed.serve(digest)
    assert feed.poll().new == 3
    con = sqlite3.connect(feed.store.path)
    con.row_factory = sqlite3.Row
    with con:  # day one pruned by version 7 while listed: its id kept with the hash that version gave it
        row = next(r for r in feed.store.posts_for_category("news", 10) if r.title == "Day one news")
        con.execute(
            "INSERT INTO pruned (id, source, pruned_at, content_hash) VALUES (?, ?, ?, ?)",
            [row.id, feed.url, T0.isoformat(), hash_before_8(replace(row, link=link))],
        )
        con.execute("DELETE FROM posts WHERE id = ?", [row.id])
        con.execute("UPDATE sources SET read_by = NULL")  # and read anew after the upgrade
    con.close()
    again = feed.poll()
    assert again.new == 0, again
    assert sorted(p.title for p in feed.published()) == ["Day three news", "Day two news"]


def test_link_identity_never_merges_entries_that_share_a_link(feed):
    feed.serve(items(3, guid="https://news.example/"))  # bad guids: link identity
    feed.poll()
    assert feed.store.source_state(feed.url).identity == LINK
    same_link = [(f"n{i}", "https://news.example/", f"快讯{i}", f"<p>快讯 {i}</p>") for i in range(1, 4)]
    feed.serve(items(3, guid="https://news.example/") + same_link)  # three entries all linking home
    outcome = feed.poll()
    assert outcome.new == 3  # told apart by their guids, not collapsed into one post
    assert len(feed.published()) == 6


def test_status_json_shows_the_identity_decision(feed, tmp_path):
    feed.serve(items(3, guid="https://news.example/"))
    feed.poll()
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site: {{title: t, url: 'https://e.org/', database: '{feed.store.path}'}}\n"
        f"categories:\n  - name: news\n    sources:\n      - url: {feed.url}\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "status", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["identity"] == LINK and "used for different entries" in row["identity_note"]


def test_a_json_feed_with_lone_surrogates_in_its_own_fields_is_stored(feed):
    """JSON's `\\ud83d` escapes can leave a lone surrogate that SQLite cannot store: in a
    feed-level field it used to fail the source on every poll."""
    feed.path.write_text(
        '{"version": "https://jsonfeed.org/version/1.1", "title": "JF \\ud83d test?", '
        '"home_page_url": "https://news.example/\\udc00", "description": "d \\ud800", '
        '"items": [{"id": "1", "title": "item \\ud83d", "content_html": "<p>x \\udfff</p>"}]}',
        encoding="utf-8",
    )
    out = feed.poll()
    assert out.status == "new" and out.new == 1, out
    state = feed.store.source_state(feed.url)
    assert state is not None and state.title == "JF \ufffd test?"
    assert feed.poll().status == "unchanged"


def test_a_future_dated_entry_does_not_rise_to_the_top_again_when_edited(feed):
    """A date in the future is read as the time the entry was first seen (else it would stay
    on top of every feed until then); an edit of the entry, still dated in the future, must
    not move it up again to the time of the edit, or a feed could bump its posts at will."""
    future = (T0 + timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S +0000")

    def serve(body: str) -> None:
        feed.path.write_text(
            '<rss version="2.0"><channel><title>t</title><link>http://news.example/</link>'
            f"<item><guid>g1</guid><title>t</title><pubDate>{future}</pubDate>"
            f"<description>{body}</description></item></channel></rss>",
            encoding="utf-8",
        )
        feed.version += 1
        os.utime(feed.path, (1_700_000_000 + feed.version * 60,) * 2)

    serve("first")
    assert feed.poll().new == 1
    (first,) = feed.rows().values()
    assert first["published"] == feed.now.isoformat()  # not the future date
    serve("edited")
    assert feed.poll().updated == 1
    (edited,) = feed.rows().values()
    assert "edited" in edited["content"] and edited["updated"] == feed.now.isoformat()
    assert edited["published"] == first["published"]  # where it was, not at the time of the edit


def test_entries_linking_to_fragment_only_are_each_stored_without_a_link(feed):
    """`<link>#</link>` and no guid, as some generators write for entries without a page: the
    link was resolved to the feed's URL and taken for each entry's identity, so only the
    first of them was stored, linking readers to the feed's XML. Each is its own post now,
    without a link, identified by its title and content, and stays one post when refetched."""
    entries = [(None, "#", f"快讯{i}", f"<p>快讯正文 {i}</p>") for i in range(1, 4)]
    feed.serve([*entries, (None, "https://news.example/a/9.html", "第9条新闻", "<p>正文 9</p>")])
    assert feed.poll().new == 4
    rows = feed.rows()
    by_title = {r["title"]: r for r in rows.values()}
    assert sorted(by_title) == ["快讯1", "快讯2", "快讯3", "第9条新闻"]
    assert [by_title[f"快讯{i}"]["link"] for i in range(1, 4)] == [None, None, None]
    assert by_title["第9条新闻"]["link"] == "https://news.example/a/9.html"
    assert by_title["第9条新闻"]["id"] == post_id(feed.url, "https://news.example/a/9.html")  # as before
    feed.serve([*entries, (None, "https://news.example/a/9.html", "第9条新闻", "<p>正文 9</p>")], build="again")
    assert feed.poll().new == 0 and feed.rows() == rows


def test_entries_whose_permalink_guid_names_the_feed_itself_are_each_stored_without_a_link(feed):
    """`<guid>#</guid>` (a permalink, RSS 2.0's default) and no link: the guid was resolved to
    the feed's URL, each entry's link and identity, so only the first was stored, linking to the
    feed's XML. Each is its own post, without link, and stays one post when refetched; an entry
    with a link of its own is identified by it."""
    entries = [("#", "", f"快讯{i}", f"<p>快讯正文 {i}</p>") for i in range(1, 4)]
    entries.append(("#", "https://news.example/a/9.html", "第9条新闻", "<p>正文 9</p>"))
    feed.serve(entries, permalink=True)
    assert feed.poll().new == 4
    rows = feed.rows()
    by_title = {r["title"]: r for r in rows.values()}
    assert [by_title[f"快讯{i}"]["link"] for i in range(1, 4)] == [None, None, None]
    assert feed.url not in {r["guid"] for r in rows.values()} | {r["link"] for r in rows.values()}
    assert by_title["第9条新闻"]["id"] == post_id(feed.url, "https://news.example/a/9.html")
    feed.serve(entries, build="again", permalink=True)
    assert feed.poll().new == 0 and feed.rows() == rows


def _stored_by_a_version_1(feed, version: int = 1) -> None:
    """The first `<link>#</link>` entry as a version before 2 stored it: under the feed's URL
    (and the first `<link>?</link>` or `<guid>#</guid>` one, as a version before 4 did)."""
    feed.serve([(None, feed.url, "快讯1", "<p>快讯正文 1</p>")])
    assert feed.poll().new == 1
    con = sqlite3.connect(feed.store.path)
    with con:
        con.execute("UPDATE posts SET normalized = ?", [version])
    con.close()


@pytest.mark.parametrize(
    "entry", [(None, "?", False), ("#", "", True)], ids=["link-empty-query", "permalink-guid-fragment"]
)
def test_an_entry_naming_the_feed_itself_keeps_the_id_a_version_3_gave_it(feed, entry):
    """A version before 4 resolved `<link>?</link>`, and a permalink `<guid>#</guid>`, to the
    feed's URL and stored the first such entry under it. That entry, link-less now, keeps
    its id (not shown again as new beside its old copy), not dated as edited; the entries
    dropped then come once."""
    guid, link, permalink = entry
    _stored_by_a_version_1(feed, version=3)
    ((kept, old),) = feed.rows().items()
    entries = [(guid, link, f"快讯{i}", f"<p>快讯正文 {i}</p>") for i in range(1, 4)]
    feed.serve(entries, build="new", permalink=permalink)
    assert feed.poll().new == 2
    rows = feed.rows()
    assert sorted(r["title"] for r in rows.values()) == ["快讯1", "快讯2", "快讯3"]
    assert rows[kept]["link"] is None and rows[kept]["updated"] == old["updated"]
    assert rows[kept]["normalized"] == NORMALIZER_VERSION
    feed.serve(entries, build="again", permalink=permalink)
    assert feed.poll().new == 0 and feed.rows() == rows


def test_an_entry_linking_to_fragment_only_keeps_the_id_an_older_version_gave_it(feed):
    """An older version (NORMALIZER_VERSION 1) resolved `<link>#</link>` to the feed's URL and
    stored the first such entry under it. After the upgrade that entry is link-less, so
    identified by title and content: it came as a new post beside its old copy (the same
    entry twice, shown again as new). It keeps the id it has; the entries dropped come once."""
    _stored_by_a_version_1(feed)
    ((kept, old),) = feed.rows().items()
    feed.serve([(None, "#", f"快讯{i}", f"<p>快讯正文 {i}</p>") for i in range(1, 4)], build="new")
    assert feed.poll().new == 2
    rows = feed.rows()
    assert sorted(r["title"] for r in rows.values()) == ["快讯1", "快讯2", "快讯3"]
    assert rows[kept]["link"] is None and rows[kept]["updated"] == old["updated"]
    feed.serve([(None, "#", f"快讯{i}", f"<p>快讯正文 {i}</p>") for i in range(1, 4)], build="again")
    assert feed.poll().new == 0 and feed.rows() == rows


def test_an_entry_keeping_an_older_version_s_id_pruned_while_listed_stays_pruned(feed):
    """The entry that kept the id an older version gave it (see above), pruned while the feed
    still lists it, is not stored again under the id its title and content give."""
    feed.source = replace(feed.source, retention=Retention(keep_per_source=2, protect=0))
    _stored_by_a_version_1(feed)
    (kept,) = feed.rows()
    entries = [(None, "#", f"快讯{i}", f"<p>快讯正文 {i}</p>") for i in range(1, 4)]
    feed.serve(entries, build="new")
    assert feed.poll().new == 2
    rows = feed.rows()
    assert kept not in rows and sorted(r["title"] for r in rows.values()) == ["快讯2", "快讯3"]  # pruned, the oldest
    feed.serve(entries, build="again")
    assert feed.poll().new == 0 and feed.rows() == rows


def test_an_entry_whose_permalink_guid_is_a_number_is_stored_without_a_made_up_link(feed):
    """`<guid>12345</guid>` (a permalink by default) and no link: the guid resolved against the
    feed's URL was stored as the link, a page that does not exist. No link now; the id is the
    one the resolved guid always gave."""
    feed.serve([("12345", "", "数字编号", "<p>正文</p>")], permalink=True)
    assert feed.poll().new == 1
    (row,) = feed.rows().values()
    guid = feed.url.rsplit("/", 1)[0] + "/12345"
    assert (row["link"], row["guid"], row["id"]) == (None, guid, post_id(feed.url, guid))


def test_titles_escaped_twice_are_stored_alike_and_an_entry_without_guid_or_link_keeps_its_id(feed):
    """`Tom &amp;amp; Jerry` was stored as `Tom & Jerry`, `Tom &amp;amp; Jerry &lt;3` as
    `Tom &amp; Jerry <3`; both decoded now. The entry identified by its title and content (no
    guid, no link) keeps the id the title as read before gave it."""
    feed.serve([("g1", "", "Tom &amp;amp; Jerry", "<p>一</p>"), (None, "", "Tom &amp;amp; Jerry &lt;3", "<p>二</p>")])
    assert feed.poll().new == 2
    by_title = {r["title"]: r for r in feed.rows().values()}
    assert sorted(by_title) == ["Tom & Jerry", "Tom & Jerry <3"]
    hashed = by_title["Tom & Jerry <3"]
    assert hashed["id"] == post_id(feed.url, _hash("Tom &amp; Jerry <3\n" + hashed["content"]))
