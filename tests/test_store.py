"""SQLite store on real files: no duplicates, real updates, one transaction per source."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.models import Author, Enclosure, FeedInfo, Post, Source
from aggregator.store import Store, StoreError

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SRC = Source(key="http://e.org/feed", url="http://e.org/feed", name="E", categories=("news", "world"))
OTHER = Source(key="http://o.org/feed", url="http://o.org/feed", categories=("world",))


def post(n: int, source: Source = SRC, **kw) -> Post:
    base = dict(
        id=f"{n:016x}",
        source=source.key,
        guid=f"g{n}",
        title=f"Post {n} 标题",
        link=f"http://e.org/{n}",
        published=T0 + timedelta(hours=n),
        updated=T0 + timedelta(hours=n),
        content=f"<p>{n}</p>",
        authors=(Author("Ann", "a@e.org", None),),
        tags=("x", "y"),
        enclosures=(Enclosure("http://e.org/a.mp3", "audio/mpeg", 42),),
        content_hash=f"h{n}",
        first_seen=T0,
    )
    base.update(kw)
    return Post(**base)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite")
    s.sync_sources([SRC, OTHER])
    yield s
    s.close()


def test_wal_and_schema(store, tmp_path):
    con = sqlite3.connect(tmp_path / "db.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_posts_round_trip_with_categories_and_attribution(store):
    store.record_success(SRC.key, T0, 200, info=FeedInfo(title="Feed", link="http://e.org/"), posts=[post(1)])
    (p,) = store.posts_for_category("news", 10)
    assert p == replace(
        post(1), categories=("news", "world"), source_title="E", source_link="http://e.org/", source_url=SRC.url
    )
    assert p.published.tzinfo is not None


def test_an_enclosure_duration_is_stored_and_rows_without_one_still_read(store, tmp_path):
    """A podcast episode's duration is stored with its sound; an enclosure stored before
    durations were kept (no `duration` key in its JSON) reads back as one without."""
    timed = post(
        1, enclosures=(Enclosure("http://e.org/a.mp3", "audio/mpeg", 42, 3723), Enclosure("http://e.org/a.jpg"))
    )
    store.record_success(SRC.key, T0, 200, posts=[timed, post(2)])
    con = sqlite3.connect(tmp_path / "db.sqlite")
    with con:
        stored = dict(con.execute("SELECT id, enclosures FROM posts"))
        con.execute(
            "UPDATE posts SET enclosures = ? WHERE id = ?",
            ['[{"url": "http://e.org/a.mp3", "type": "audio/mpeg", "length": 42}]', post(2).id],
        )
    con.close()
    assert '"duration": 3723' in stored[timed.id] and stored[timed.id].count("duration") == 1
    assert stored[post(2).id] == '[{"url": "http://e.org/a.mp3", "type": "audio/mpeg", "length": 42}]'
    assert store.post(timed.id).enclosures == timed.enclosures
    assert store.post(post(2).id).enclosures == (Enclosure("http://e.org/a.mp3", "audio/mpeg", 42),)


def test_refetch_never_duplicates_and_unchanged_touches_nothing(store):
    assert store.record_success(SRC.key, T0, 200, posts=[post(1), post(2)]) == (2, 0)
    assert store.record_success(SRC.key, T0 + timedelta(hours=1), 200, posts=[post(1), post(2)]) == (0, 0)
    assert store.count_posts() == 2
    assert store.posts_for_category("news", 10)[0].first_seen == T0


def test_changed_content_updates_in_place(store):
    store.record_success(SRC.key, T0, 200, posts=[post(1)])
    later = T0 + timedelta(days=1)
    changed = post(1, title="New title", content_hash="h1b", first_seen=later)
    assert store.record_success(SRC.key, later, 200, posts=[changed]) == (0, 1)
    (p,) = store.posts_for_category("news", 10)
    assert p.title == "New title" and p.first_seen == T0
    assert p.updated == later  # the feed did not say when it changed: the fetch time is when


def test_undated_entry_keeps_its_first_date(store):
    store.record_success(SRC.key, T0, 200, posts=[post(1, published=T0, dated=False)])
    later = T0 + timedelta(days=2)
    store.record_success(SRC.key, later, 200, posts=[post(1, published=later, content_hash="zz", dated=False)])
    assert store.posts_for_category("news", 10)[0].published == T0


def test_categories_order_and_limit(store):
    store.record_success(SRC.key, T0, 200, posts=[post(n) for n in range(5)])
    store.record_success(OTHER.key, T0, 200, posts=[post(n, OTHER, id=f"{100 + n:016x}") for n in range(5, 8)])
    news = store.posts_for_category("news", 3)
    assert [p.title for p in news] == ["Post 4 标题", "Post 3 标题", "Post 2 标题"]
    world = store.posts_for_category("world", 100)
    assert len(world) == 8 and world[0].source == OTHER.key
    assert len(store.latest_posts(100)) == 8


def test_errors_count_up_and_success_resets(store):
    assert store.record_error(SRC.key, T0, "HTTP 500", 500, T0) == 1
    assert store.record_error(SRC.key, T0, "HTTP 500", 500, T0) == 2
    st = store.source_state(SRC.key)
    assert st.state == "erroring" and st.error_count == 2 and st.last_error == "HTTP 500"
    store.record_success(SRC.key, T0, 200, etag='"e"', posts=[post(1)])
    st = store.source_state(SRC.key)
    assert st.error_count == 0 and st.last_error is None and st.etag == '"e"' and st.posts == 1


def test_a_failed_update_leaves_nothing_half_written(store):
    store.record_success(SRC.key, T0, 200, posts=[post(1)])
    bad = [post(2), post(3, title=None)]  # NOT NULL title: the batch fails midway
    with pytest.raises(StoreError):
        store.record_success(SRC.key, T0, 200, etag='"new"', posts=bad)
    assert store.count_posts() == 1
    assert store.source_state(SRC.key).etag is None


def test_removed_sources_leave_categories(store):
    store.record_success(OTHER.key, T0, 200, posts=[post(9, OTHER)])
    store.sync_sources([SRC])
    assert store.posts_for_category("world", 10) == []
    assert [s.key for s in store.source_states()] == [SRC.key]


def test_unopenable_database_is_a_clear_error(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="dir.db"):
        Store(tmp_path / "dir.db")


def test_a_store_closed_for_a_fork_is_open_again_after_and_the_child_opens_its_own(tmp_path):
    store = Store(tmp_path / "a.db")
    store.set_publish_state("before", "1")
    with store.closed_for_fork():
        pid = os.fork()
        if pid == 0:  # the child: its own connection, no SQLite state inherited for this file
            code = 1
            try:
                with Store(tmp_path / "a.db") as own:
                    code = 0 if own.publish_state("before") == "1" else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.set_publish_state("after", "2")  # the parent's connection works again
    assert store.publish_state("after") == "2" and store.publish_state("before") == "1"
    store.close()


_WRITER = """
import sys
from dataclasses import replace
from tests.test_store import post, T0
from aggregator.models import Source
from aggregator.store import Store
db, name, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Store(db) as store:
    for i in range(60):
        src = Source(key=f"http://{name}.org/{i}", url=f"http://{name}.org/{i}")
        posts = [replace(post(start + i * 10 + k), source=src.key, link=f"http://{name}.org/{i}/{k}") for k in range(5)]
        store.record_success(src.key, T0, 200, posts=posts)
"""


def test_two_processes_writing_one_database_at_once_both_succeed(tmp_path):
    """A `fetch` beside the daemon, or a shared `fetch`'s workers: each write transaction
    takes the write lock before it reads, so neither meets SQLITE_BUSY (a deferred one that
    read before the other committed could not take the lock afterwards, and failed at once)."""
    import subprocess
    import sys

    from .conftest import ROOT

    db = tmp_path / "shared.db"
    names = ("a", "b", "c")
    with Store(db) as store:
        store.sync_sources(
            [Source(key=f"http://{n}.org/{i}", url=f"http://{n}.org/{i}") for n in names for i in range(60)]
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(db), n, str(j * 10_000)], env=env, stderr=subprocess.PIPE)
        for j, n in enumerate(names)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 3 * 60 * 5


def test_lifting_a_retry_after_keeps_a_newer_one(tmp_path):
    """`fetch --source` lifts the Retry-After it polled through, not one a poll of the same
    host received meanwhile."""
    a, b = (
        Source(key="http://h.example/a", url="http://h.example/a"),
        Source(key="http://h.example/b", url="http://h.example/b"),
    )
    with Store(tmp_path / "db.sqlite") as store:
        store.sync_sources([a, b])
        first, later = T0 + timedelta(hours=1), T0 + timedelta(hours=5)
        store.record_rate_limit(a.key, T0, "h.example", first, "429", 429, first)
        store.record_rate_limit(b.key, T0, "h.example", later, "429", 429, later)  # while `a` was polled
        assert store.lift_host_block("h.example", first, T0) is False
        assert store.host_retry_after("h.example") == later
        assert store.lift_host_block("h.example", later, T0) is True
        assert store.host_retry_after("h.example") is None
        assert {s.key: s.next_poll for s in store.source_states()} == {a.key: T0, b.key: T0}  # due at once


def test_the_first_owner_id_stored_is_the_one_every_process_gets(tmp_path):
    """The output folder's owner mark: two processes publishing for the first time at once
    each made an id and the last write won, so one of them warned of "another database" and
    republished everything. The id is now stored only if none is, and read in the same
    transaction."""
    import subprocess
    import sys

    db = tmp_path / "x.db"
    Store(db).close()
    code = (
        "import sys, secrets; from aggregator.store import Store\n"
        "s = Store(sys.argv[1]); print(s.publish_state_or('owner', secrets.token_hex(8)))"
    )
    argv = [sys.executable, "-c", code, str(db)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    with Store(db) as store:
        assert ids == {store.publish_state("owner")} and len(next(iter(ids))) == 16
        assert store.publish_state_or("owner", "other") == next(iter(ids))


def test_a_database_of_a_newer_version_is_refused_and_an_older_one_upgraded(tmp_path):
    """A version before 2 read a stored podcast duration as a crash (`Enclosure(**e)`) and
    forgot redirect pages; the file says which version wrote it, so that an older version
    refuses it with a clear error, and a newer one takes an older file as it is."""
    from aggregator.store import SCHEMA_VERSION

    path = tmp_path / "a.db"
    Store(path).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    con.execute("PRAGMA user_version = 1")  # as the version before durations wrote it
    con.commit()
    con.close()
    Store(path).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=rf"a\.db is from a newer aggregator \(schema {SCHEMA_VERSION + 1}\)"):
        Store(path)


def _handles_on(path) -> list[str]:
    """This process's open file descriptors on `path` (and its -wal, -shm)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed already
            continue
        if target.startswith(str(path)):
            held.append(target)
    return held


@pytest.mark.parametrize("kind", ["newer", "foreign", "empty", "not sqlite"])
@pytest.mark.parametrize("mode", [{}, {"read_only": True}, {"reader": True}])
def test_a_refused_database_is_not_left_open(tmp_path, kind, mode):
    """A failed open closes its connection: the daemon that retries a refused file (newer,
    foreign, empty, not SQLite) held a handle on it (and its -wal, -shm) per try, for as
    long as the error was kept (its traceback holds the Store) or till garbage collection."""
    from aggregator.store import SCHEMA_VERSION

    path = tmp_path / "a.db"
    if kind == "newer":
        Store(path).close()
        con = sqlite3.connect(path)
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    elif kind == "foreign":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE notes (body TEXT)")
    if kind in ("newer", "foreign"):
        con.commit()
        con.close()
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"PK\x03\x04 a zip, not a database" * 200)
    # a reader does no check of its own (its writer did); a writer makes an empty file a database
    refused = kind == "not sqlite" or (not mode.get("reader") and (kind != "empty" or mode.get("read_only")))
    if not refused:
        Store(path, **mode).close()
    else:
        with pytest.raises(StoreError) as caught:
            Store(path, **mode)
        assert caught.value.__traceback__ is not None  # kept, as a retrying caller keeps its last error
        assert _handles_on(path) == []
    assert _handles_on(path) == []


def test_a_read_only_store_creates_nothing_writes_nothing_and_notices_a_writer(tmp_path):
    """`status`, `export-opml` and `backup` read through `read_database`: with no -wal beside
    the file (no one has it open) it is read `immutable`, creating no -wal or -shm; a write
    meanwhile is noticed (`changed`), and the read done again as a reader among writers."""
    from aggregator.store import read_database

    path = tmp_path / "news.db"
    with Store(path) as store:
        store.sync_sources([SRC])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.db"]  # closed: no -wal left

    reader = Store(path, read_only=True)
    assert reader.immutable and not reader.changed()
    assert [st.key for st in reader.source_states()] == [SRC.key]
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
        reader.db.execute("UPDATE sources SET name = 'x'")
    writer = sqlite3.connect(path)
    writer.execute("UPDATE sources SET name = 'renamed'")
    writer.commit()
    assert reader.changed()  # its -wal has frames now: what the immutable read saw may be stale
    reader.close()

    writer.close()  # the last connection: checkpointed, its -wal and -shm removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.db"]

    writer = sqlite3.connect(path)  # opens the file at its first statement: inside the read
    reads: list[tuple[bool, str | None]] = []

    def read(store: Store) -> str | None:
        name = store.source_states()[0].name
        reads.append((store.immutable, name))
        if len(reads) == 1:  # a writer commits while the first read runs
            writer.execute("UPDATE sources SET name = 'again'")
            writer.commit()
        return name

    try:
        assert read_database(path, read) == "again"
    finally:
        writer.close()
    # immutable first, torn by the write, then read beside the writer (`mode=ro`: its -wal holds a commit)
    assert reads == [(True, "renamed"), (False, "again")]


def _rss(host: str, items: list[tuple[str, str, datetime]]) -> bytes:
    """An RSS feed of (guid, link path, published) entries; an article's title and text are
    its link's, so that another feed linking to it holds a copy."""
    from email.utils import format_datetime

    body = "".join(
        f"<item><guid>{guid}</guid><title>Article {path}</title><link>https://news.example/{path}</link>"
        f"<description>The whole text of article {path}, as every copy of it prints it.</description>"
        f"<pubDate>{format_datetime(when)}</pubDate></item>"
        for guid, path, when in items
    )
    return f'<rss version="2.0"><channel><title>{host}</title>{body}</channel></rss>'.encode()


def test_the_copies_index_serves_the_copy_lookups_and_changes_no_other_querys_plan(tmp_path):
    """posts(duplicate_of) is indexed for prune's and the fetch's copy lookups. A whole-column
    index (63bd6ba) was taken by the planner for `_first_copy`'s `… AND duplicate_of IS NULL`
    lookups, true of almost every post: a cold fetch of 60 corpus feeds read 14 times the
    pages (1.17 million preads), 3.7 s → 13 s. Every query the fetch and the publisher run
    keeps the plan it has without the index; only the copy lookups use it."""
    import re

    from aggregator.models import Retention
    from aggregator.parse import parse_feed
    from aggregator.pipeline import ingest

    a = Source(key="http://a.example/feed", url="http://a.example/feed", categories=("news", "all"))
    b = Source(key="http://b.example/feed", url="http://b.example/feed", categories=("mirror", "all"))
    statements: list[str] = []
    with Store(tmp_path / "db.sqlite") as store:
        store.sync_sources([a, b])
        store.db.conn.set_trace_callback(statements.append)
        days = [T0 - timedelta(days=d) for d in range(6)]
        ingest(a, store, parse_feed(a.key, _rss("a", [(f"a{i}", f"p{i}", days[i]) for i in range(5)]), a.url), T0)
        # b reprints p0-p2 (later: copies of a's) and p3 dated earlier than a's (b's becomes the first)
        b_items = [(f"b{i}", f"p{i}", days[i]) for i in range(3)] + [("b3", "p3", days[5]), ("b9", "own", days[0])]
        ingest(b, store, parse_feed(b.key, _rss("b", b_items), b.url), T0 + timedelta(minutes=5))
        store.db.conn.set_trace_callback(None)
        copies = store.db.execute("SELECT count(*) FROM posts WHERE duplicate_of IS NOT NULL").fetchone()[0]
        ids = [r[0] for r in store.db.execute("SELECT id FROM posts")]
        store.db.conn.set_trace_callback(statements.append)
        for category in ("news", "mirror", "all"):
            store.posts_for_category(category, 3)
            store.posts_for_category(category, 3, offset=3)
            store.count_category_posts(category)
            store.category_revisions(category)
            store.posts_changed_since(a.key, 0, 10, category=category)
        store.posts_changed_since(b.key, 1, 10)
        store.category_summaries()
        store.shown_in(ids)
        store.latest_posts(10)
        store.post(ids[0])
        store.unknown_posts(ids)
        store.jekyll_dates(ids)
        store.stale_post_files()
        store.moved_pages()
        store.prune(a.key, Retention(keep_per_source=1, protect=0), T0)
        store.db.conn.set_trace_callback(None)
        assert copies == 4 and store.count_posts() < 10  # copies were found, and prune deleted posts

    def plans(path) -> dict[str, list[str]]:
        con = sqlite3.connect(path)  # a connection of its own: no statement prepared before
        try:
            return {
                sql: [step for *_, step in con.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]
                for sql in dict.fromkeys(statements)
                if re.match(r"\s*(SELECT|UPDATE|DELETE|WITH)\b", sql, re.I) and "_fetched" not in sql
            }  # (`_fetched`: record_success's temporary table, its connection's alone)
        finally:
            con.close()

    with_index = plans(tmp_path / "db.sqlite")
    con = sqlite3.connect(tmp_path / "db.sqlite")
    con.execute("DROP INDEX idx_posts_copies")
    con.close()
    without = plans(tmp_path / "db.sqlite")
    lookup = re.compile(r"\bWHERE duplicate_of (=|IN\b)")
    lookups = [sql for sql in with_index if lookup.search(sql)]
    assert lookups and all(any("idx_posts_copies" in step for step in with_index[sql]) for sql in lookups)
    others = [sql for sql in with_index if sql not in lookups]
    changed = {sql: (with_index[sql], without[sql]) for sql in others if with_index[sql] != without[sql]}
    assert changed == {}
    assert len(with_index) > 30  # the publisher's queries were all asked


def test_an_existing_database_gains_the_copies_index_and_loses_the_whole_column_one(tmp_path):
    """A database made before the copies index gets it on open; one a version with the
    whole-column posts(duplicate_of) index opened (63bd6ba, whose revert left the index in
    the file) loses that index, which slowed every fetch."""
    path = tmp_path / "db.sqlite"
    with Store(path) as s:
        s.sync_sources([SRC])
        s.record_success(SRC.key, T0, 200, posts=[post(1), post(2)])
    con = sqlite3.connect(path)
    con.execute("DROP INDEX idx_posts_copies")  # as the file was before
    con.execute("CREATE INDEX idx_posts_duplicate_of ON posts(duplicate_of)")
    con.commit()
    con.close()
    with Store(path) as s:
        indexes = {r[0]: r[1] for r in s.db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
        assert s.count_posts() == 2
    assert "idx_posts_duplicate_of" not in indexes
    assert indexes["idx_posts_copies"].endswith("ON posts(duplicate_of) WHERE duplicate_of IS NOT NULL")
