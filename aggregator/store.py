"""SQLite storage through sqlite-utils: the only module that writes SQL.

One transaction per source update, WAL so that publishers and `status` read while the
daemon writes. Knows nothing of HTTP or XML: it stores Posts and fetch state.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from . import filters
from .hosts import host_key
from .identity import (
    ENCLOSED,
    GUID,
    SHARED_LINK,
    HashedPost,
    LinkedPost,
    both_schemes,
    canonical_link,
    enclosure_key,
    feed_url_key,
    names_one_page,
    same_feed_url,
    shares_link,
)
from .models import NORMALIZER_VERSION, Author, Enclosure, FeedInfo, PollUpdate, Post, Retention, Source
from .plural import counted
from .processes import alive
from .schedule import stored_state

log = logging.getLogger(__name__)
T = TypeVar("T")

# sqlite-utils imports numpy and pandas when they are installed, only to map their types,
# which we never store: numpy alone is ~0.09 s of CPU on every start-up (a tenth of a whole
# `fetch` where every source answers 304). Hidden for that one import, not for the process.
_HIDDEN = [m for m in ("numpy", "pandas") if m not in sys.modules]
for _m in _HIDDEN:
    sys.modules[_m] = None  # type: ignore[assignment]
try:
    import sqlite_utils
finally:
    for _m in _HIDDEN:
        del sys.modules[_m]

# What a version may find in the file. Raised when an older version would misread what a
# newer one stores, so that it refuses the file with a clear error instead of failing on it:
# 2: enclosures may carry a `duration` (an older `Enclosure(**e)` failed on it), and
#    `post_files` rows of kind `redirect` (an older publish forgot them, leaving the pages).
SCHEMA_VERSION = 2
# `reclaim` gives free pages back after a prune only when at least this many (4 MiB) are free
RECLAIM_MIN_PAGES = 1024
FULL_BELOW_PAGES = 2  # fewer free bytes than this many pages: no transaction's journal has room

POST_COLUMNS = {
    "id": str,
    "source": str,
    "guid": str,
    "title": str,
    "link": str,
    "published": str,
    "updated": str,
    "content": str,
    "summary": str,
    "authors": str,
    "tags": str,
    "enclosures": str,
    "language": str,
    "comments": str,
    "content_hash": str,
    "first_seen": str,
    "dated": int,
    "canonical_link": str,  # link without tracking parameters (identity.canonical_link)
    "fingerprint": str,  # hash of title + visible text (identity.text_fingerprint)
    "duplicate_of": str,  # id of the first-seen post of another source with the same article
    "excluded": str,  # space-separated category slugs whose filters keep the post out
    "revision": int,  # the source's revision when this row last changed (publish diffs on it)
    "normalized": int,  # models.NORMALIZER_VERSION that made the row (NULL: before there was one)
}

SOURCE_COLUMNS = {
    "key": str,
    "url": str,
    "name": str,
    "title": str,
    "site_link": str,
    "image": str,  # the feed's cover (FeedInfo.image): a podcast category's channel itunes:image
    "etag": str,
    "last_modified": str,
    "body_hash": str,
    # the NORMALIZER_VERSION that last parsed its feed: below this one's, the feed is read in full
    # (no conditional GET, no same-body shortcut) so that its posts take the new reading
    "read_by": int,
    "last_fetch": str,
    "last_success": str,
    "last_status": int,
    "last_error": str,
    "error_count": int,
    "next_poll": str,
    "state": str,
    "active": int,
    "enabled": int,  # 0: `enabled: false` in the config
    "host": str,  # host_key(url): joins the hosts table for Retry-After
    "learnt_url": str,  # a permanent redirect learnt after a streak (the key stays the configured URL)
    "discovered_url": str,  # the feed an HTML page at the configured URL links to
    "redirect_url": str,  # a permanent redirect seen but not yet learnt
    "redirect_count": int,  # consecutive polls that saw redirect_url
    "interval": float,  # the interval in force (seconds): fixed, or learnt for `interval: auto`
    "feed_hint": float,  # the feed's own <ttl>/sy:update* (seconds)
    "last_error_at": str,
    "last_result": str,  # one line on the last poll, for status: "not modified", "same body", ...
    "identity": str,  # guid | link: what identifies this source's entries (identity.py)
    "identity_note": str,  # why a source was switched to link identity
    "filters_hash": str,  # the filter rules its posts' `excluded` was computed with
    # the keep_days / keep_per_source / items_per_feed in force (JSON, `_retention`): its
    # pruned entries are taken back when they loosen (`_loosened`)
    "retention": str,
    "revision": int,  # bumped in the transaction that inserts or changes any of its posts
    # what its post ids are computed from (identity.post_id): its key, or the key of the source
    # it took over when that source's URL was edited in the config (`sync_sources`)
    "id_key": str,
    # the next poll a host's Retry-After pushed later (`hold_for_host`), taken back when the
    # host answers a poll asked for by name (`lift_host_block`); NULL once polled or re-timed
    "held_next_poll": str,
}

# Retry-After is per host, not per source, and must survive a restart.
HOST_COLUMNS = {"host": str, "retry_after": str, "status": int, "source": str, "updated": str}

SOURCE_CATEGORY_COLUMNS = {"source": str, "category": str, "keep_duplicates": int}

# Ids of pruned posts still listed in their feed, so that the next fetch does not store
# them again; forgotten once the entry leaves the feed.
PRUNED_COLUMNS = {"id": str, "source": str, "pruned_at": str, "content_hash": str}  # (the post's, to know it by)

PUBLISH_STATE_COLUMNS = {"key": str, "value": str}

# Facts about the file itself. Its creation on a store that already had posts is when their
# rowids are turned to the order `_upsert_posts` keeps (see `_migrate`).
META_COLUMNS = {"key": str, "value": str}

# The files published for each post (its page, its Jekyll file; `path` relative to the output
# or Jekyll folder, by `kind`: "page", "jekyll", or "redirect": a page the post had under an
# earlier date, now a stub sending readers on to its page), so that the publisher can
# take them down when the post is pruned, excluded by a filter, hidden as a duplicate or its
# source leaves the config, remove a Jekyll file left under an old date when a post is
# re-dated, and turn a page left under an old date into a redirect (its URL is public).
# `category`: the one category the file is for (Jekyll), NULL when any category will do.
# `dated`: the date a Jekyll file was written with (its name and front matter), kept for good
POST_FILE_COLUMNS = {
    "path": str, "post": str, "source": str, "kind": str, "category": str, "superseded": int, "dated": str,
}  # fmt: skip

# table → (columns, primary key, NOT NULL columns); new columns are added on open
TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...], set[str]]] = {
    "sources": (SOURCE_COLUMNS, "key", {"url"}),
    "posts": (POST_COLUMNS, "id", {"source", "guid", "title", "published", "updated"}),
    "source_categories": (SOURCE_CATEGORY_COLUMNS, ("source", "category"), set()),
    "hosts": (HOST_COLUMNS, "host", set()),
    "pruned": (PRUNED_COLUMNS, "id", {"source"}),
    "publish_state": (PUBLISH_STATE_COLUMNS, "key", set()),
    "post_files": (POST_FILE_COLUMNS, "path", {"post", "kind"}),
    "meta": (META_COLUMNS, "key", set()),
}
INDEXES = [
    ("posts", ["source", "published"]),
    ("posts", ["published"]),
    ("source_categories", ["category"]),
    ("sources", ["next_poll"]),
    ("posts", ["canonical_link"]),
    ("posts", ["fingerprint"]),
    ("pruned", ["source"]),
    ("posts", ["source", "revision"]),
    ("post_files", ["post", "kind"]),
    ("post_files", ["source"]),
    # the few superseded pages and redirects, looked for on every publish (`moved_pages`)
    ("post_files", ["kind", "superseded"]),
]
# The copies of a post, by the post they copy: prune promotes one when it deletes the first
# (`_promote_copies`), a fetch repoints them (`_first_copy`, `_merge_same_link`). Without it
# each lookup read the whole posts table, once per source pruned (1,000 sources: 27 s).
# Partial, on the copies alone: SQLite uses a `WHERE duplicate_of IS NOT NULL` index only for
# a comparison that implies it (`duplicate_of = ?`, `IN (…)`), never for `duplicate_of IS
# NULL`. A whole-column index (63bd6ba) was taken for `_first_copy`'s `… AND duplicate_of IS
# NULL` lookups, true of nearly every post: a cold fetch of 60 feeds read 14 times the pages.
# tests/test_store.py holds every other query to the plan it has without this index.
COPIES_INDEX = "idx_posts_copies"
_COPIES_INDEX_SQL = f"CREATE INDEX IF NOT EXISTS {COPIES_INDEX} ON posts(duplicate_of) WHERE duplicate_of IS NOT NULL"

# SQL: the configured sources the poller may ever poll (enabled, not gone), with their host's
# Retry-After; `due_sources` and `earliest_next_poll` must agree on them.
_POLLABLE = (
    "FROM sources s LEFT JOIN hosts h ON h.host = s.host "
    "WHERE s.active = 1 AND coalesce(s.enabled, 1) = 1 AND coalesce(s.state, '') != 'gone' "
)

# SQL: post `p` is published in the category of source_categories row `sc`: not excluded
# there, and not a later copy of an article whose first copy that category publishes
# (unless the category keeps duplicates).
# How posts are listed for publishing: newest first, and posts of the same time (undated
# entries share their first-seen time, a date-only feed midnight) as their feed lists them,
# stably: by rowid, which `_upsert_posts` makes descend in feed order. (The id, a hash,
# shuffled them.) Over `posts p`.
POST_ORDER = "p.published DESC, p.rowid DESC"
_NOT_EXCLUDED = "({p}.excluded IS NULL OR instr(' ' || {p}.excluded || ' ', ' ' || {c}.category || ' ') = 0)"
VISIBLE = (
    _NOT_EXCLUDED.format(p="p", c="sc") + " AND (p.duplicate_of IS NULL OR sc.keep_duplicates = 1 OR NOT EXISTS ("
    "SELECT 1 FROM posts o JOIN source_categories oc ON oc.source = o.source AND oc.category = sc.category "
    "WHERE o.id = p.duplicate_of AND " + _NOT_EXCLUDED.format(p="o", c="sc") + "))"
)
# SQL: the first copy of post `p` is shown in some category.
_FIRST_SHOWN = (
    "SELECT 1 FROM posts o JOIN source_categories oc ON oc.source = o.source WHERE o.id = p.duplicate_of AND "
    + _NOT_EXCLUDED.format(p="o", c="oc")
)

# SQL: post_files row `f` is stale: a Jekyll file superseded by a newer file of its post (a
# superseded page is not: it becomes a redirect), or its post is no longer published in its
# category (in any category, for a page or redirect).
_STALE_FILE = (
    "((f.superseded = 1 AND f.kind = 'jekyll') OR NOT EXISTS (SELECT 1 FROM posts p "
    "JOIN source_categories sc ON sc.source = p.source "
    f"AND (f.category IS NULL OR sc.category = f.category) WHERE p.id = f.post AND {VISIBLE}))"
)


# What to do about a database a newer version wrote (README, "Going back to an older version")
_NEWER = ": run that version (or newer), or restore a backup taken before the upgrade"


class StoreError(Exception):
    """The database cannot be opened or written."""


class TakenOver(StoreError):
    """The source's row was renamed (its URL edited in the config) while a poll of it ran: the
    poll's posts are rolled back, and the source is polled under its new URL. No fault of the
    database, which takes writes as before."""


@dataclass(frozen=True)
class PruneReport:
    """What `Store.prune` removed from one source."""

    source: str
    older: int = 0  # beyond keep_days
    over: int = 0  # beyond keep_per_source
    protected: int = 0  # would have gone, but are among a category's newest items_per_feed
    titles: tuple[str, ...] = ()

    @property
    def removed(self) -> int:
        return self.older + self.over


@dataclass(frozen=True)
class SourceState:
    key: str
    url: str
    name: str | None
    title: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    last_fetch: datetime | None
    last_success: datetime | None
    last_status: int | None
    last_error: str | None
    error_count: int
    next_poll: datetime | None
    state: str
    posts: int = 0
    enabled: bool = True
    host: str | None = None
    learnt_url: str | None = None
    discovered_url: str | None = None
    redirect_url: str | None = None
    redirect_count: int = 0
    interval: float | None = None
    feed_hint: float | None = None
    last_error_at: datetime | None = None
    last_result: str | None = None
    identity: str = GUID
    identity_note: str | None = None
    site_link: str | None = None  # the feed's home page, as the feed gives it
    image: str | None = None  # the feed's cover (FeedInfo.image)
    id_key: str | None = None  # what its post ids are computed from (SOURCE_COLUMNS)
    read_by: int = 0  # the NORMALIZER_VERSION that last parsed its feed (SOURCE_COLUMNS)

    @property
    def display_name(self) -> str:
        return self.name or self.title or self.key


def configured_state(source: Source, stored: SourceState | None) -> SourceState:
    """A configured source's state as `sync_sources` would leave it, from its stored row (of
    any `active`), without writing: its name and `enabled` from the config, and one not stored
    yet `new`. `status` shows this, so that looking at a draft config changes nothing (a
    source the draft leaves out is not made inactive, nor its categories forgotten). A draft
    that edits a source's URL shows the new URL `new`: the row is taken over (`_take_over`)
    only when a command that writes syncs that config."""
    if stored is None:
        return SourceState(
            key=source.key, url=source.url, name=source.name, title=None, etag=None, last_modified=None,
            body_hash=None, last_fetch=None, last_success=None, last_status=None, last_error=None,
            error_count=0, next_poll=None, state="new", enabled=source.enabled, host=host_key(source.url),
            id_key=source.key,
        )  # fmt: skip
    return replace(stored, name=source.name, enabled=source.enabled, host=stored.host or host_key(source.url))


@dataclass(frozen=True)
class PollState:
    """`Store.poll_state`: `retry_after` is that of the source's stored host (`state.host`)."""

    state: SourceState | None
    retry_after: datetime | None
    recent: dict[str, datetime]
    dated: int
    oldest: datetime | None = None


@dataclass(frozen=True)
class StoreStats:
    sources_by_state: dict[str, int]
    posts: int
    last_success: datetime | None


def iso(dt: datetime | None) -> str | None:
    """UTC, second precision: sorts as text, reads back aware."""
    return None if dt is None else dt.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Store:
    """A SQLite file; safe to share between threads (one lock serializes all access)."""

    def __init__(self, path: str | Path, reader: bool = False, read_only: bool = False, immutable: bool = True) -> None:
        """`reader`: only ever reads a database another Store has opened and migrated (a
        publish worker): no migration, and any write refused (`query_only`).

        `read_only`: for commands that only look (`status`, `export-opml`, `backup`; see
        `read_database`): the file is opened read-only (`mode=ro`, or `immutable` when no
        connection has it open), so nothing in it changes, and nothing is created: such a
        command works on a full disk or a read-only file, and never takes the write lock
        from the daemon. No migration either: a file from an older version is read as it
        is (`_has` tells what it lacks); one from a newer version is refused, as on open.
        `immutable=False`: never `immutable`, even with no -wal (read again after a writer came)."""
        self.path = Path(path)
        self.reader = reader or read_only
        self.read_only = read_only
        self._may_be_immutable = immutable
        self.immutable = False
        self._stamp: tuple[int, ...] | None = None
        self._schema: dict[str, set[str]] | None = None  # read-only: the tables and columns there are
        self._lock = threading.RLock()
        self._connect()
        try:
            if read_only:
                self._read_schema()
            elif not reader:
                self._migrate()
        except BaseException:
            # a refused file (newer schema, foreign, empty) is not left open: a daemon that
            # retries kept one handle (and -wal, -shm) per try until the garbage collector came
            self.db.close()
            raise

    def _connect(self) -> None:
        if self.read_only:
            self._connect_read_only()
            return
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            if not self.reader:
                self._refuse_foreign()
                if not conn.execute("PRAGMA page_count").fetchone()[0]:
                    # a new file: pages pruned posts free can be given back (`reclaim`); only
                    # settable before the first table (an older file turns by `prune --vacuum`)
                    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            if self.reader:
                self.db.execute("PRAGMA query_only = ON")
        except BaseException as e:
            if conn is not None:  # not a database, say: the handle is not kept until garbage collection
                conn.close()
            if not isinstance(e, (sqlite3.Error, OSError)):
                raise
            raise StoreError(f"cannot open database {self.path}: {e}{why_unwritable(self.path)}{damaged(e)}") from None

    def _connect_read_only(self) -> None:
        """Open the file without a way to write it, and without creating anything beside it.

        A WAL database opened `mode=ro` needs its -shm (the WAL index): SQLite creates it and
        an empty -wal when they are missing, and leaves them (sqlite.org/wal.html, "read-only
        databases"); it cannot on a read-only folder, and on a full disk the -shm cannot grow
        ("disk I/O error"). When the -wal holds commits (the daemon's, say), `mode=ro`: it sees
        every commit and reads beside the writer (a WAL reader blocks no writer), and the
        -wal and -shm of a running writer are there already. When there is no -wal, or an
        empty one (opened, never written: what a failed open leaves), every commit is in the
        file itself: `immutable`, which reads it without the -shm and without locks, so
        nothing is created. A writer may come in the meantime: `changed` tells, from the
        file's stat and its -wal's size, and `read_database` then reads again."""
        journal = Path(f"{self.path}-journal")
        conn: sqlite3.Connection | None = None
        try:
            self._stamp = _stamp(self.path)
            # a -wal of no frames (0 bytes) is one opened but never written: the file holds every commit
            self.immutable = self._may_be_immutable and not self._stamp[-1] and not journal.exists()
            uri = self.path.absolute().as_uri() + ("?immutable=1" if self.immutable else "?mode=ro")
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.execute("PRAGMA query_only = ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the file is opened here
        except BaseException as e:
            if conn is not None:
                conn.close()
            if not isinstance(e, (sqlite3.Error, OSError)):
                raise
            raise StoreError(f"cannot read database {self.path}: {e}{why_unreadable(self.path)}{damaged(e)}") from None

    def _read_schema(self) -> None:
        """What a read-only store has to read from, and a refusal of a newer version's file."""
        try:
            with self._lock:
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                tables = [r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                self._schema = {t: {c[1] for c in self.db.execute(f"PRAGMA table_info([{t}])")} for t in tables}
        except sqlite3.Error as e:
            raise StoreError(f"cannot read database {self.path}: {e}{damaged(e)}") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"database {self.path} is from a newer aggregator (schema {version}){_NEWER}")
        if not self._schema:  # an empty file, or an SQLite file no table was ever made in
            raise StoreError(f"database {self.path} is empty: nothing has been fetched into it yet (`fetch` does)")
        if "sources" not in self._schema:
            raise StoreError(_foreign(self.path, set(self._schema)))

    def _posts_of_ours(self, tables: set[str]) -> bool:
        """Whether a database without a sources table is one the first versions made (posts alone)."""
        if "posts" not in tables:
            return False
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(posts)")}
        return {"id", "source", "guid", "title", "published", "updated"} <= columns

    def _refuse_foreign(self) -> None:
        """Refuse another program's SQLite file before anything is written to it: `site.database`
        pointed at one (a typo, a shared folder) had the aggregator's tables added to it, its
        journal turned to WAL and its `user_version` set. An empty file, or one with no table,
        is a new database."""
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "sources" not in tables and not self._posts_of_ours(tables):
            self.db.close()
            raise StoreError(_foreign(self.path, tables))

    def _has(self, table: str, column: str | None = None) -> bool:
        """Whether the file has this table (and column): always, once migrated; a read-only
        store's file may be from an older version (`_migrate` adds them on the next write)."""
        if self._schema is None:
            return True
        return table in self._schema and (column is None or column in self._schema[table])

    def changed(self) -> bool:
        """Whether an `immutable` read may have missed a write: the file changed, or a writer
        committed to its -wal, since it was opened. Never for a `mode=ro` store, which sees
        every commit as a reader among writers."""
        if not self.immutable:
            return False
        try:
            return _stamp(self.path) != self._stamp
        except OSError:  # gone, or replaced by a rename in progress
            return True

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads in one read transaction: they all see the same commit (status's states and
        its hosts' Retry-After). A read transaction never blocks the daemon's writes."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                yield
                return
            conn.execute("BEGIN")
            try:
                yield
            finally:
                if conn.in_transaction:
                    conn.rollback()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def closed_for_fork(self) -> Iterator[None]:
        """Close the connection while child processes are forked, and open it again after.

        SQLite keeps per-process bookkeeping of the locks its connections hold on a file.
        A child forked while a connection is open inherits it, and a connection the child
        opens to the same file shares it: it would believe it holds locks it does not.
        (sqlite.org/howtocorrupt.html 2.6 forbids using the inherited connection itself.)
        """
        with self._lock:
            self.db.close()
            try:
                yield
            finally:
                self._connect()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite_utils.Database]:
        with self._lock:
            try:
                with self._immediate():
                    yield self.db
            except sqlite3.Error as e:
                hint = why_unwritable(self.path) if "readonly" in str(e) else ""
                raise StoreError(f"database {self.path}: {e}{hint}{damaged(e)}") from e

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """A write transaction that takes the write lock when it begins (nested: a savepoint).

        Another process may write to the same file (`fetch` beside the daemon, a shared
        `fetch`'s workers). A deferred transaction that read before the other committed
        cannot take the write lock afterwards: SQLite answers SQLITE_BUSY at once, without
        waiting. BEGIN IMMEDIATE waits for the lock (busy_timeout) before reading anything.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    # -- schema -----------------------------------------------------------------------

    def _migrate(self) -> None:
        """Create what is missing: tables, then any column added since the file was made.

        Columns are only ever added (never renamed or dropped), so an old database opens
        in a new version and keeps every post; `user_version` guards against the reverse.
        """
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"database {self.path} is from a newer aggregator (schema {version}){_NEWER}")
            added: set[tuple[str, str]] = set()
            created: set[str] = set()
            for name, (columns, pk, not_null) in TABLES.items():
                table = db[name]
                if not table.exists():
                    table.create(columns, pk=pk, not_null=not_null)
                    created.add(name)
                else:
                    for column, kind in columns.items():
                        if column not in table.columns_dict:
                            table.add_column(column, kind)
                            added.add((name, column))
            if ("posts", "canonical_link") in added:  # link identity and duplicates look posts up by it
                db.conn.create_function("canonical_link", 1, canonical_link, deterministic=True)
                db.execute("UPDATE posts SET canonical_link = canonical_link(link) WHERE link IS NOT NULL")
            # each Jekyll file was written with its post's date (unless a re-dating was stored and
            # its publish killed just before the upgrade: that file moves once, as before)
            if ("post_files", "dated") in added:
                db.execute(
                    "UPDATE post_files SET dated = (SELECT p.published FROM posts p WHERE p.id = post_files.post) "
                    "WHERE kind = 'jekyll' AND superseded = 0"
                )
            if ("sources", "id_key") in added:  # every id so far was computed from the source's key
                db.execute("UPDATE sources SET id_key = key")
            if "meta" in created and "posts" not in created:
                # Posts stored before were inserted in feed order (rowid ascending); since,
                # each fetch's new posts are inserted last entry first, so that "rowid DESC"
                # lists equal times as their feed does (`POST_ORDER`). Negated, the old rowids
                # read that way too, and stay below every new one.
                db.execute("UPDATE posts SET rowid = -rowid WHERE rowid > 0")
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('post_order', 'rowid descending: feed order')")
            if "post_files" in created and "posts" not in created:
                # A version before `post_files` wrote pages and Jekyll files it kept no record
                # of: the next publish looks for them on disk (`unrecorded_files`), or a post
                # re-dated at its first poll got a second Jekyll file (a second URL) and kept
                # its old page whole, not a redirect.
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('unrecorded_files', '1')")
            for table, columns in INDEXES:
                db[table].create_index(columns, if_not_exists=True)
            # 63bd6ba's whole-column index, left in the files it opened (its revert kept it there)
            db.execute("DROP INDEX IF EXISTS idx_posts_duplicate_of")
            db.execute(_COPIES_INDEX_SQL)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- sources ----------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[Source]) -> dict[str, str]:
        """Make the sources table and category membership match the config; returns the
        sources taken over by another (old key → new key, see `_take_over`)."""
        sources = list(sources)
        with self._tx() as db:
            moved = self._take_over(db, [s.key for s in sources])
            id_keys = self._id_keys(db, [s.key for s in sources])
            db.execute("UPDATE sources SET active = 0")
            for s in sources:
                db.execute(
                    "INSERT INTO sources (key, url, name, error_count, state, active, enabled, host, id_key) "
                    "VALUES (?, ?, ?, 0, 'new', 1, ?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET name = excluded.name, active = 1, enabled = excluded.enabled, "
                    "host = coalesce(sources.host, excluded.host)",
                    [s.key, s.url, s.name, int(s.enabled), host_key(s.url), id_keys.get(s.key, s.key)],
                )
            before = _memberships(db)
            db.execute("DELETE FROM source_categories")
            db["source_categories"].insert_all(
                (
                    {"source": s.key, "category": c, "keep_duplicates": int(c in s.keep_duplicates)}
                    for s in sources
                    for c in s.categories
                ),
                ignore=True,
            )
            after = _memberships(db)
            self._copies_shown_elsewhere(db, [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)])
            retentions = dict(db.execute("SELECT key, retention FROM sources WHERE active = 1").fetchall())
            for s in sources:
                self._refilter(db, s)
                self._loosened(db, s, retentions.get(s.key))
        return moved

    @staticmethod
    def _copies_shown_elsewhere(db: sqlite_utils.Database, moved: list[str]) -> None:
        """Give the next revision to the copies of the posts of `moved` (sources that joined or
        left a category, or changed its duplicates rule) and to their sources.

        A copy is hidden in the categories that show its first copy: when that one's source
        joins or leaves a category, the copy leaves or comes back to it, and its page's
        category links change, though nothing of its own source did. The publisher learns of
        it by the revision, as of any change to what a source's posts show (the moved
        sources' own posts it tells by the config). Most syncs move no source with posts:
        one look at the (source, revision) index, and no scan for copies."""
        if not moved:
            return
        db.execute("CREATE TEMP TABLE IF NOT EXISTS _moved (key TEXT PRIMARY KEY)")
        db.execute("DELETE FROM _moved")
        db.conn.executemany("INSERT OR IGNORE INTO _moved (key) VALUES (?)", [(k,) for k in moved])
        if db.execute("SELECT 1 FROM posts WHERE source IN (SELECT key FROM _moved) LIMIT 1").fetchone() is None:
            return  # added, or without posts: none of theirs has a copy
        copies: dict[str, list[str]] = {}
        for pid, source in db.execute(
            "SELECT id, source FROM posts WHERE duplicate_of IS NOT NULL AND duplicate_of IN "
            "(SELECT id FROM posts WHERE source IN (SELECT key FROM _moved))"
        ).fetchall():
            copies.setdefault(source, []).append(pid)
        for source, ids in copies.items():
            revision = _bump_revision(db, source)
            for chunk, marks in _in_chunks(ids):
                db.execute(f"UPDATE posts SET revision = ? WHERE id IN ({marks})", [revision, *chunk])

    def poll_again(self, keys: Iterable[str]) -> None:
        """Due at once, and no longer `gone`: sources a reload put back into the config or
        enabled again. Someone asked for them, as `fetch --source` asks for one; their error
        count stays (a 410 again makes them gone again)."""
        keys = list(keys)
        if keys:
            with self._tx() as db:
                db.conn.executemany(
                    "UPDATE sources SET next_poll = NULL, held_next_poll = NULL, state = CASE WHEN state != 'gone' "
                    "THEN state WHEN coalesce(error_count, 0) > 1 THEN 'backing off' ELSE 'erroring' END WHERE key = ?",
                    [(k,) for k in keys],
                )

    def _take_over(self, db: sqlite_utils.Database, keys: list[str]) -> dict[str, str]:
        """Let a source whose URL was edited in the config keep its posts, ids and polling state.

        A source the config no longer lists (S, listed at the last sync) is taken over by
        one it newly lists (U, never stored) whose URL is the one S was polled at (a learnt
        permanent redirect, a feed its page linked to), or S's URL up to http/https or a
        trailing slash (`same_feed_url`), or the URL S's ids are computed from (an earlier
        take-over undone: then S need not have been listed). Only a one-to-one match counts:
        U the only match of S and S the only match of U; anything else is left as before (S
        stays, with its posts unpublished, and U starts afresh). The row is renamed, not copied: U inherits
        S's `id_key`, so its entries keep the ids they have (file names, URLs, feed GUIDs),
        and S's posts, published files and pruned ids become U's in this same transaction.
        """
        configured = set(keys)
        removed = {  # key → (the URL it was polled at, its learnt redirect, its id_key, listed at the last sync)
            key: (url or key, learnt, id_key or key, bool(active))
            for key, url, learnt, id_key, active in db.execute(
                "SELECT key, url, learnt_url, id_key, active FROM sources WHERE active = 1 OR id_key != key"
            ).fetchall()
            if key not in configured
        }
        if not removed:
            return {}
        stored = {key for (key,) in db.execute("SELECT key FROM sources").fetchall()}
        added = [key for key in dict.fromkeys(keys) if key not in stored]
        # the added keys by what `same_feed_url` compares: each removed source looks up its
        # matches, never compares itself with every added one (10,000 edited: 10^8 pairs)
        loosely: dict[tuple[str, ...], list[str]] = {}
        for new in added:
            if (loose := feed_url_key(new)) is not None:
                loosely.setdefault(loose, []).append(new)
        order = {new: n for n, new in enumerate(added)}

        def moved_to(old: str) -> list[str]:
            """The added keys that `old` moved to, in config order."""
            polled, _, ids_from, listed = removed[old]
            found = {ids_from} & order.keys()  # the URL its ids come from: an earlier take-over undone
            if listed:
                found.update({polled} & order.keys())
                for url in (polled, old):
                    if (loose := feed_url_key(url)) is not None:
                        found.update(loosely.get(loose, ()))
            return sorted(found, key=order.__getitem__)

        matches = {old: moved_to(old) for old in removed}
        claims: dict[str, int] = {}
        for news in matches.values():
            for new in news:
                claims[new] = claims.get(new, 0) + 1
        pairs = {old: news[0] for old, news in matches.items() if len(news) == 1 and claims[news[0]] == 1}
        for old, new in pairs.items():
            polled, learnt, ids_from, _ = removed[old]
            if new == ids_from:
                why = "the URL its posts' ids were computed from"
            elif polled == new:
                how = "learnt from permanent redirects" if polled == learnt else "linked from its page"
                why = f"the URL it was polled at ({how})"
            else:
                why = "the same URL up to http/https or a trailing slash"
            values: dict[str, Any] = {"key": new}
            if polled == new or polled == old or same_feed_url(new, polled):
                # polled at the configured URL from now on: nothing learnt stands between
                values.update(learnt_url=None, discovered_url=None)
                if polled != new:  # another URL: what was known about the old one does not hold
                    values.update(
                        url=new, host=host_key(new), redirect_url=None, redirect_count=0, etag=None,
                        last_modified=None, body_hash=None, next_poll=None, held_next_poll=None,
                    )  # fmt: skip
                    db.execute(
                        "UPDATE sources SET state = 'new', error_count = 0, last_error = NULL, last_error_at = NULL "
                        "WHERE key = ? AND state IN ('gone', 'erroring', 'backing off')",
                        [old],
                    )
            # else: polled elsewhere (a learnt redirect) and only its configured URL was edited: polled there still
            columns = ", ".join(f"[{c}] = ?" for c in values)
            db.execute(
                f"UPDATE sources SET {columns}, id_key = coalesce(id_key, key) WHERE key = ?", [*values.values(), old]
            )
            for table in ("posts", "post_files", "pruned", "hosts"):
                db.execute(f"UPDATE {table} SET source = ? WHERE source = ?", [new, old])
            log.info("source %s: takes over %s, %s: its posts keep their ids", new, old, why, extra={"source": new})
        return pairs

    @staticmethod
    def _id_keys(db: sqlite_utils.Database, keys: list[str]) -> dict[str, str]:
        """The `id_key` of each source about to be created whose own URL another source's ids
        are computed from (that one took over the source this URL named, and is still listed):
        another key, so that no two sources ever compute the same post ids."""
        inherited = {k for (k,) in db.execute("SELECT id_key FROM sources WHERE id_key != key").fetchall()}
        if not inherited:
            return {}
        out: dict[str, str] = {}
        for key in keys:
            if key not in inherited or db.execute("SELECT 1 FROM sources WHERE key = ?", [key]).fetchone():
                continue
            n = 2
            while db.execute("SELECT 1 FROM sources WHERE id_key = ?", [f"{key} ({n})"]).fetchone():
                n += 1
            out[key] = f"{key} ({n})"  # a space: in no URL, so in no other source's key
        return out

    def _refilter(self, db: sqlite_utils.Database, source: Source) -> None:
        """Recompute `excluded` for a source's stored posts when its rules changed."""
        wanted = filters.fingerprint(source)
        row = db.execute("SELECT filters_hash FROM sources WHERE key = ?", [source.key]).fetchone()
        if row is None or row[0] == wanted:
            return
        changes = []
        for r in db.query("SELECT * FROM posts WHERE source = ?", [source.key]):
            excluded = " ".join(filters.excluded_in(source.filters, _post(r))) or None
            if excluded != r["excluded"]:
                changes.append((excluded, r["id"]))
        db.conn.executemany("UPDATE posts SET excluded = ? WHERE id = ?", changes)
        db.execute("UPDATE sources SET filters_hash = ? WHERE key = ?", [wanted, source.key])
        if changes:  # what its categories publish changed: the publisher must redo them
            revision = _bump_revision(db, source.key)
            db.conn.executemany("UPDATE posts SET revision = ? WHERE id = ?", [(revision, i) for _, i in changes])

    @staticmethod
    def _loosened(db: sqlite_utils.Database, source: Source, stored: str | None) -> None:
        """Record the source's retention; when it is looser than the one recorded (a larger or
        removed keep_days or keep_per_source, a larger items_per_feed), forget its pruned ids
        and what tells an unchanged feed (ETag, Last-Modified, body hash): the next poll reads
        the feed again and takes back the entries the new limits keep, pruning the rest anew.
        Kept, the ids stopped every pruned entry for good, however the limits were relaxed."""
        wanted = _retention(source.retention)
        if stored == wanted:
            return
        before = _stored_retention(stored) if stored else None
        # unknown before (stored by an older version): only no limit at all is surely looser
        if (before is None and not source.retention.limited) or (
            before is not None and _looser(source.retention, before)
        ):
            gone = db.execute("DELETE FROM pruned WHERE source = ?", [source.key]).rowcount
            if gone:
                db.execute(
                    "UPDATE sources SET etag = NULL, last_modified = NULL, body_hash = NULL WHERE key = ?", [source.key]
                )
                log.info(
                    "source %s: retention loosened; the next poll reads its feed again for %s",
                    source.key,
                    counted(gone, "pruned entry"),
                    extra={"source": source.key},
                )
        db.execute("UPDATE sources SET retention = ? WHERE key = ?", [wanted, source.key])

    def source_state(self, key: str, count_posts: bool = True) -> SourceState | None:
        """The source's stored state; `count_posts=False` leaves `posts` at 0 (a poll does
        not need it, and counting on every poll of a large source is not free)."""
        posts = "(SELECT count(*) FROM posts p WHERE p.source = s.key)" if count_posts else "0"
        with self._lock:
            cur = self.db.execute(f"SELECT s.*, {posts} AS posts FROM sources s WHERE key = ?", [key])
            row = cur.fetchone()
            if row is None:
                return None
            cols = [d[0] for d in cur.description]
        return _state(dict(zip(cols, row, strict=True)))

    def poll_state(self, key: str, since: datetime, until: datetime) -> PollState:
        """What a poll reads before fetching, under one acquisition of the lock: the source's
        state, its host's Retry-After and `posting_stats`. Taking the lock once instead of
        three times matters: with many fetch threads each acquisition also waits for the GIL."""
        try:
            with self._lock:
                cur = self.db.execute(
                    "SELECT s.*, 0 AS posts, h.retry_after AS h_retry_after FROM sources s "
                    "LEFT JOIN hosts h ON h.host = s.host WHERE key = ?",
                    [key],
                )
                row = cur.fetchone()
                cols = [d[0] for d in cur.description]
                recent, dated, oldest = self.posting_stats(key, since, until)
        except sqlite3.Error as e:  # locked, disk I/O, a damaged page: what the poller catches
            raise StoreError(f"database {self.path}: {e}{damaged(e)}") from e
        if row is None:
            return PollState(None, None, recent, dated, oldest)
        r = dict(zip(cols, row, strict=True))
        return PollState(_state(r), from_iso(r["h_retry_after"]), recent, dated, oldest)

    def source_states(self, active_only: bool = True) -> list[SourceState]:
        sql = (
            "SELECT s.*, (SELECT count(*) FROM posts p WHERE p.source = s.key) AS posts FROM sources s"
            + (" WHERE active = 1" if active_only else "")
            + " ORDER BY key"
        )
        with self._lock:
            rows = list(self.db.query(sql))
        return [_state(r) for r in rows]

    def fetch_urls(self) -> dict[str, str]:
        """Source key → the URL its next poll fetches, where that is not the configured one
        (a permanent redirect learnt, a feed found through an HTML page)."""
        with self._lock:
            rows = self.db.execute("SELECT key, url FROM sources WHERE url IS NOT NULL AND url != key").fetchall()
        return dict(rows)

    def record_success(
        self,
        key: str,
        when: datetime,
        status: int,
        info: FeedInfo | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        body_hash: str | None = None,
        next_poll: datetime | None = None,
        posts: Iterable[Post] = (),
        poll: PollUpdate | None = None,
        identity: tuple[str, str] | None = None,
    ) -> tuple[int, int]:
        """Store a successful poll and its posts in one transaction; returns (new, updated).

        `identity` = (mode, reason) records that the source's entries are identified
        differently from now on (see identity.py); copies of one entry stored under the
        old identity are merged into the first one, which the new posts' ids point at.
        """
        posts = list(posts)
        with self._tx() as db:
            if identity is not None:
                db.execute(
                    "UPDATE sources SET identity = ?, identity_note = ? WHERE key = ?", [identity[0], identity[1], key]
                )
                relinked = {p.canonical_link for p in posts if p.canonical_link and p.guid == p.canonical_link}
                self._merge_same_link(db, key, relinked)
            new, updated = self._upsert_posts(db, key, posts)
            if posts:  # forget pruned entries that have left the feed: they will not come back
                db.execute("CREATE TEMP TABLE IF NOT EXISTS _fetched (id TEXT PRIMARY KEY)")
                db.execute("DELETE FROM _fetched")
                db.conn.executemany("INSERT OR IGNORE INTO _fetched VALUES (?)", [(p.id,) for p in posts])
                db.execute("DELETE FROM pruned WHERE source = ? AND id NOT IN (SELECT id FROM _fetched)", [key])
            values: dict[str, Any] = {
                "last_fetch": iso(when),
                "last_success": iso(when),
                "last_status": status,
                "last_error": None,
                "last_error_at": None,
                "error_count": 0,
                "next_poll": iso(next_poll),
                "held_next_poll": None,
                "state": "ok",
            }
            if status != 304:
                values.update(etag=etag, last_modified=last_modified, body_hash=body_hash)
            if info is not None:  # the feed was parsed: read as this version reads it
                values.update(title=info.title, site_link=info.link, image=info.image, read_by=NORMALIZER_VERSION)
            if poll is not None:
                values.update(_poll_values(poll))
            # One plain UPDATE: sqlite-utils' Table.update ran a dozen statements (schema
            # reads, a lookup) per call, most of the store's cost in a cycle of 304s.
            columns = ", ".join(f"[{c}] = ?" for c in values)
            cur = db.execute(f"UPDATE sources SET {columns} WHERE key = ?", [*values.values(), key])
            if cur.rowcount == 0:  # taken over (`_take_over`) while this poll ran: its posts are rolled back
                raise TakenOver(f"source {key} is no longer in the database (its URL was edited in the config)")
        return new, updated

    def record_error(
        self,
        key: str,
        when: datetime,
        message: str,
        status: int | None,
        next_poll: datetime | None,
        state: str = "erroring",
        fetch_url: str | None = None,
        page: bool = False,
    ) -> int:
        """Count one more consecutive failure; returns the count. `fetch_url` replaces what
        to poll next (a discovered feed that vanished sends the poller back to the page);
        `page`: that URL is a page, and the feed it linked to stays on record as what says so."""
        with self._tx() as db:
            db.execute(
                "UPDATE sources SET last_fetch = ?, last_status = ?, last_error = ?, last_error_at = ?, "
                "error_count = coalesce(error_count, 0) + 1, next_poll = ?, held_next_poll = NULL, state = ?, "
                "last_result = NULL WHERE key = ?",
                [iso(when), status, message, iso(when), iso(next_poll), state, key],
            )
            if fetch_url is not None:
                db.execute(
                    "UPDATE sources SET url = ?, host = ?, learnt_url = NULL, "
                    + ("" if page else "discovered_url = NULL, ")
                    + "redirect_url = NULL, redirect_count = 0, etag = NULL, last_modified = NULL, body_hash = NULL "
                    "WHERE key = ?",
                    [fetch_url, host_key(fetch_url), key],
                )
            row = db.execute("SELECT error_count FROM sources WHERE key = ?", [key]).fetchone()
        return row[0] if row else 0

    def record_gone(self, key: str, when: datetime, message: str, status: int | None = 410) -> None:
        """The server said the feed is gone for good: stop polling it, and keep saying why."""
        with self._tx() as db:
            db.execute(
                "UPDATE sources SET last_fetch = ?, last_status = ?, last_error = ?, last_error_at = ?, "
                "error_count = coalesce(error_count, 0) + 1, next_poll = NULL, held_next_poll = NULL, "
                "state = 'gone', last_result = NULL WHERE key = ?",
                [iso(when), status, message, iso(when), key],
            )

    def record_rate_limit(
        self,
        key: str,
        when: datetime,
        host: str,
        until: datetime,
        message: str,
        status: int | None,
        next_poll: datetime,
        own_next: datetime | None = None,
    ) -> None:
        """A 429/503 with Retry-After: hold back the whole host until then; not a feed error,
        so the error count stays as it was. `own_next`: when the source's own schedule has it
        polled again, which `lift_host_block` gives back (not at once: it was just polled)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO hosts (host, retry_after, status, source, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(host) DO UPDATE SET retry_after = max(coalesce(hosts.retry_after, ''), "
                "excluded.retry_after), status = excluded.status, source = excluded.source, updated = excluded.updated",
                [host, iso(until), status, key, iso(when)],
            )
            db.execute(
                "UPDATE sources SET last_fetch = ?, last_status = ?, last_error = ?, last_error_at = ?, "
                "next_poll = ?, held_next_poll = ?, state = 'rate-limited', last_result = NULL, host = ? "
                "WHERE key = ?",
                [iso(when), status, message, iso(when), iso(next_poll), iso(own_next), host, key],
            )

    def held_by_host(self, host: str, until: datetime, but: str) -> list[str]:
        """Keys of the sources on `host` (but `but`) due before its Retry-After `until` ends:
        what would all come due at that very second."""
        with self._lock:
            rows = self.db.execute(
                f"SELECT s.key {_POLLABLE} AND s.host = ? AND s.key != ? AND (s.next_poll IS NULL OR s.next_poll < ?)",
                [host, but, iso(until)],
            ).fetchall()
        return [r[0] for r in rows]

    def set_next_polls(self, when: dict[str, datetime]) -> None:
        """Reschedule sources, in one transaction."""
        if when:
            with self._tx() as db:
                db.conn.executemany(
                    "UPDATE sources SET next_poll = ?, held_next_poll = NULL WHERE key = ?",
                    [(iso(t), k) for k, t in when.items()],
                )

    def hold_for_host(self, when: dict[str, datetime], now: datetime) -> None:
        """Push sources later for their host's Retry-After, keeping the next poll each had
        (due now when none) for `lift_host_block` to give back; the first push's, if pushed again."""
        if when:
            with self._tx() as db:
                db.conn.executemany(
                    "UPDATE sources SET held_next_poll = coalesce(held_next_poll, next_poll, ?), next_poll = ? "
                    "WHERE key = ?",
                    [(iso(now), iso(t), k) for k, t in when.items()],
                )

    def lift_host_block(self, host: str, until: datetime, now: datetime) -> bool:
        """Forget the host's Retry-After `until`: it answered a poll someone asked for by name.
        Its sources held back by it are due when their own schedule says (at once, if that
        time is past). A newer Retry-After (another poll of the host got a 429 meanwhile)
        stays: False."""
        with self._tx() as db:
            lifted = db.execute(
                "UPDATE hosts SET retry_after = NULL WHERE host = ? AND retry_after = ?", [host, iso(until)]
            ).rowcount
            if lifted:
                # rate-limited by an older version, which kept no schedule of its own for it
                db.execute(
                    "UPDATE sources SET next_poll = ? WHERE host = ? AND state = 'rate-limited' AND next_poll > ? "
                    "AND held_next_poll IS NULL",
                    [iso(now), host, iso(now)],
                )
                # pushed past the Retry-After, the sources are due when their own schedule said (a
                # daemon started later took their pushed time for a clock set back); the one that got
                # the 429 too, after its interval: polled again at once, it hit the host that had just
                # asked for fewer requests
                db.execute(
                    "UPDATE sources SET next_poll = max(held_next_poll, ?), held_next_poll = NULL "
                    "WHERE host = ? AND held_next_poll IS NOT NULL",
                    [iso(now), host],
                )
        return bool(lifted)

    def host_retry_after(self, host: str) -> datetime | None:
        """Until when `host` asked not to be polled (None: it never asked, or asked long ago)."""
        try:
            with self._lock:
                row = self.db.execute("SELECT retry_after FROM hosts WHERE host = ?", [host]).fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"database {self.path}: {e}{damaged(e)}") from e
        return from_iso(row[0]) if row else None

    def host_blocks(self, now: datetime) -> dict[str, datetime]:
        """Hosts rate-limited beyond `now`, and until when."""
        if not self._has("hosts"):  # a file from before Retry-After was kept: none known
            return {}
        with self._lock:
            rows = self.db.execute("SELECT host, retry_after FROM hosts WHERE retry_after > ?", [iso(now)]).fetchall()
        return {host: from_iso(until) for host, until in rows}  # type: ignore[misc]

    def due_sources(self, now: datetime) -> list[str]:
        """Keys of the configured sources to poll now: due, enabled, not gone, host not rate-limited."""
        sql = (
            f"SELECT s.key {_POLLABLE} "
            "AND (s.next_poll IS NULL OR s.next_poll <= ?) AND (h.retry_after IS NULL OR h.retry_after <= ?) "
            "ORDER BY s.next_poll IS NOT NULL, s.next_poll, s.key"
        )
        with self._lock:
            return [r[0] for r in self.db.execute(sql, [iso(now), iso(now)]).fetchall()]

    def posting_stats(
        self, key: str, since: datetime, until: datetime
    ) -> tuple[dict[str, datetime], int, datetime | None]:
        """(id → date of the source's dated posts published in [since, until], count of all its
        dated posts, the oldest one's date): the history the adaptive interval learns a feed's
        rate from (`schedule.posting_rate`)."""
        with self._lock:
            recent = self.db.execute(
                "SELECT id, published FROM posts WHERE source = ? AND dated = 1 AND published >= ? AND published <= ?",
                [key, iso(since), iso(until)],
            ).fetchall()
            # the oldest comes with the count, from the same rows: no second pass
            total, oldest = self.db.execute(
                "SELECT count(*), min(published) FROM posts WHERE source = ? AND dated = 1", [key]
            ).fetchone()
        return {r[0]: datetime.fromisoformat(r[1]) for r in recent}, total, from_iso(oldest)

    def _merge_same_link(self, db: sqlite_utils.Database, source: str, links: set[str]) -> None:
        """Keep only the first-seen post of each of these links of a source (see `record_success`).

        Only the links of the entries being re-identified: older posts that shared a link
        (say, the home page) without being copies of one entry are left alone.
        """
        first: dict[str, str] = {}
        merged: list[tuple[str, str]] = []  # (dropped id, kept id)
        for pid, link, guid, raw in db.execute(
            "SELECT id, canonical_link, guid, link FROM posts WHERE source = ? AND canonical_link IS NOT NULL "
            "ORDER BY first_seen, id",
            [source],
        ).fetchall():
            if link not in links or shares_link(raw, guid):
                continue  # (an entry without guid told apart from others of its link is no copy)
            if link in first:
                merged.append((pid, first[link]))
            else:
                first[link] = pid
        for dropped, kept in merged:  # other sources' copies now point at the one kept
            db.execute("UPDATE posts SET duplicate_of = ? WHERE duplicate_of = ?", [kept, dropped])
            db.execute("DELETE FROM posts WHERE id = ?", [dropped])
        if merged:
            _bump_revision(db, source)

    def _upsert_posts(self, db: sqlite_utils.Database, source: str, posts: list[Post]) -> tuple[int, int]:
        if not posts:
            return 0, 0
        existing: dict[str, dict[str, Any]] = {}
        pruned: set[str] = set()
        ids = [p.id for p in posts]
        for chunk, marks in _in_chunks(ids):
            sql = (
                "SELECT id, content_hash, published, updated, first_seen, dated, duplicate_of, normalized, language "
                f"FROM posts WHERE id IN ({marks})"
            )
            for row in db.query(sql, chunk):
                existing[row["id"]] = row
            pruned.update(r[0] for r in db.execute(f"SELECT id FROM pruned WHERE id IN ({marks})", chunk))
        inserts, updates = [], []
        current: list[str] = []  # unchanged posts an older version stored (see below)
        copies: list[tuple[Post, str]] = []  # (post, the post it copies)
        taken: dict[tuple[str, str], str] = {}  # see _first_copy
        links = Counter(p.canonical_link for p in {p.id: p for p in posts}.values() if p.canonical_link)
        shared = {link for link, n in links.items() if n > 1}  # links that say nothing in this feed
        row = db.execute("SELECT coalesce(revision, 0) FROM sources WHERE key = ?", [source]).fetchone()
        revision = (row[0] if row else 0) + 1
        for p in posts:
            old = existing.get(p.id)
            if old is None:
                if p.id in pruned:
                    continue  # pruned while still in the feed: keep it pruned
                row = _row(p)
                row["duplicate_of"] = self._first_copy(db, p, taken, shared)
                inserts.append(row)
            elif old["content_hash"] != p.content_hash or _newly_dated(p, old) or _relabelled(p, old):
                row = _edit(p, old)
                updates.append(row)
            else:
                if (old["normalized"] or 0) < NORMALIZER_VERSION:
                    current.append(p.id)
                continue
            if row["duplicate_of"] is not None:
                copies.append((p, row["duplicate_of"]))
        updates += self._renamed_edits(db, source, copies, set(ids))
        # This version reads these posts as the one that stored them did: they are its own now,
        # so the feed's next undated change to one is an edit, dated (`_edit`), not taken for an
        # upgrade's. Nothing published changes: no revision.
        for chunk, marks in _in_chunks(current):
            db.execute(f"UPDATE posts SET normalized = ? WHERE id IN ({marks})", [NORMALIZER_VERSION, *chunk])
        for row in (*inserts, *updates):
            row["revision"] = revision
        if inserts or updates:
            db.execute("UPDATE sources SET revision = ? WHERE key = ?", [revision, source])
        # Plain executemany: sqlite-utils' insert_all/upsert_all re-read the schema and build
        # the statement on every call, which cost more than the rows themselves.
        if inserts:
            # Last entry first: rowids then descend in feed order, and a later fetch's new
            # entries (a feed prepends them) come above, so `POST_ORDER` lists posts of equal
            # times (undated entries, date-only feeds) as the feed does. Updates keep their rowid.
            inserts.reverse()
            columns = list(inserts[0])
            names = ", ".join(f"[{c}]" for c in columns)
            db.conn.executemany(
                f"INSERT INTO posts ({names}) VALUES ({', '.join('?' * len(columns))})",
                [[r[c] for c in columns] for r in inserts],
            )
        if updates:
            columns = list(updates[0])
            names = ", ".join(f"[{c}]" for c in columns)
            assign = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c != "id")
            db.conn.executemany(
                f"INSERT INTO posts ({names}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT(id) DO UPDATE SET {assign}",
                [[r[c] for c in columns] for r in updates],
            )
        return len(inserts), len(updates)

    @staticmethod
    def _renamed_edits(
        db: sqlite_utils.Database, source: str, copies: list[tuple[Post, str]], batch: set[str]
    ) -> list[dict[str, Any]]:
        """Edits to the shown post of entries this source renamed (see `_first_copy`).

        An entry whose guid alone changed is stored as a hidden copy of the post already
        shown, and the feed's later edits come under the new guid: without this, they went to
        the hidden copy and subscribers kept the first version for good. Only when the shown
        post's own entry has left the feed (a feed listing both entries edits each itself).
        """
        edits = []
        for p, first in copies:
            if first in batch:
                continue
            shown = db.execute(
                "SELECT id, source, guid, content_hash, published, updated, first_seen, dated, duplicate_of, "
                "normalized FROM posts WHERE id = ?",
                [first],
            ).fetchone()
            if shown is None or shown[1] != source or shown[3] == p.content_hash:
                continue
            keys = ("id", "source", "guid", "content_hash", "published", "updated", "first_seen", "dated")
            old = dict(zip((*keys, "duplicate_of", "normalized"), shown, strict=True))
            edit = _edit(p, old)
            edit["id"], edit["guid"] = old["id"], old["guid"]  # its identity stays the shown post's
            edits.append(edit)
        return edits

    @staticmethod
    def _first_copy(
        db: sqlite_utils.Database, p: Post, taken: dict[tuple[str, str], str], shared: set[str]
    ) -> str | None:
        """The first-seen post of another source with the same canonical link or fingerprint;
        None when there is none, or when `p` takes its place (below).

        Copies that arrive before any publish (one `fetch` polls both sources, in whatever
        order its threads finish) are ordered by their own dates instead: a copy published
        earlier than the first one becomes the first, so the original, not whichever reprint
        was stored a moment sooner, is the one published. Once the first copy may be out (it
        has a page, or a publish is running), it stays first: readers may have seen it.
        `taken`: (column, value) → the post of this batch that took the first place there,
        which the batch's later copies of it point at.

        A link says which article an entry is only when it names one page: not a home page,
        and not one that other entries of either source (stored, or in this batch:
        `shared`) link to as well: a podcast's episodes all linking to the show's page are
        different episodes, in one source or two.

        Of the same source, only a post with both the same link and the same text (and
        title) is a copy: one entry whose guid the feed changed (the other entries' guids
        kept, so the source keeps guid identity), which was published a second time. A
        shared link alone or text alone says nothing within one feed. A link is the same
        under either scheme (`both_schemes`): a site's move to https renamed every entry.
        """
        link = p.canonical_link
        if link is not None and (link in shared or not names_one_page(link)):
            link = None
        if link is not None:
            if p.fingerprint:
                same_text, values = "fingerprint = ?", [p.fingerprint]
            else:  # too short to fingerprint: the same title and text, as stored
                same_text, values = "fingerprint IS NULL AND title = ? AND content = ?", [p.title, p.content]
            row = db.execute(
                f"SELECT id FROM posts WHERE source = ? AND canonical_link IN (?, ?) AND {same_text} "
                "AND duplicate_of IS NULL ORDER BY first_seen, id LIMIT 1",
                [p.source, *both_schemes(link), *values],
            ).fetchone()
            if row is not None and not _links_to_others(db, link, (p.source,), row[0]):
                return row[0]
        for column, value in (("canonical_link", link), ("fingerprint", p.fingerprint)):
            if not value:
                continue
            if (column, value) in taken:
                return taken[column, value]
            row = db.execute(
                f"SELECT id, published, source FROM posts WHERE {column} IN (?, ?) AND source != ? "
                "AND duplicate_of IS NULL ORDER BY first_seen, id LIMIT 1",
                [*(both_schemes(value) if column == "canonical_link" else (value, value)), p.source],
            ).fetchone()
            if row is None:
                continue
            first, published, other = row
            if column == "canonical_link" and _links_to_others(db, value, (p.source, other), first):
                continue
            earlier = iso(p.published)
            if not earlier or earlier >= published or _maybe_out(db, first):
                return first
            # its categories, and those of its copies (shown where it was not), show another
            db.execute(
                "UPDATE sources SET revision = coalesce(revision, 0) + 1 WHERE key IN "
                "(SELECT source FROM posts WHERE duplicate_of = ? OR id = ?)",
                [first, first],
            )
            db.execute("UPDATE posts SET duplicate_of = ? WHERE duplicate_of = ? OR id = ?", [p.id, first, first])
            taken[column, value] = p.id
            return None
        return None

    # -- identity ---------------------------------------------------------------------

    def identities_by_link(self, source: str, links: Iterable[str]) -> dict[str, list[str]]:
        """Canonical link → the identities (`guid` column) stored for it in this source."""
        out: dict[str, list[str]] = {}
        for row in self._by_link(source, links, "guid"):
            out.setdefault(row[0], []).append(row[1])
        return out

    def ids_by_link(self, source: str, links: Iterable[str]) -> dict[str, str]:
        """Canonical link → the id of this source's first-seen post with it."""
        out: dict[str, str] = {}
        for link, pid in self._by_link(source, links, "id"):
            out.setdefault(link, pid)
        return out

    def linked_posts(
        self, source: str, links: Mapping[str, str], redirects: Collection[str] = ()
    ) -> tuple[dict[str, list[LinkedPost]], dict[str, str]]:
        """Link → this source's posts identified by that link (entries without guid, see
        `identity.tell_apart`), first seen first; and the source's pruned ids, each with the
        content hash its post had ("" when pruned by a version that did not keep it).
        `links` maps each link to its canonical form (`Post.canonical_link`). `redirects`: the
        FeedBurner redirects among them, whose posts are published under their originals'
        links (NORMALIZER_VERSION 8) and identified by the redirect still (`identity.identity_link`)."""
        out: dict[str, list[LinkedPost]] = {}
        canonicals = [c for c in dict.fromkeys(links.values()) if c]
        with self._lock:
            for chunk, marks in _in_chunks(canonicals):
                for pid, guid, link, canonical, title, content, content_hash in self.db.execute(
                    "SELECT id, guid, link, canonical_link, title, content, content_hash FROM posts "
                    f"WHERE source = ? AND canonical_link IN ({marks}) ORDER BY first_seen, id",
                    [source, *chunk],
                ):
                    if not (link in links and (guid == link or shares_link(link, guid))):
                        link = guid.partition(SHARED_LINK)[0]  # a FeedBurner post: its identity's link
                        if link not in redirects or links[link] != canonical:
                            continue
                    out.setdefault(link, []).append(LinkedPost(pid, guid, title, content or "", content_hash or ""))
            rows = self.db.execute("SELECT id, content_hash FROM pruned WHERE source = ?", [source])
            pruned = {pid: content_hash or "" for pid, content_hash in rows}
        return out, pruned

    def hashed_ids(self, source: str, posts: Iterable[Post]) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
        """For entries without guid or link (identified by a hash of title and content,
        `Post.hashed`): identity → the id of this source's post stored under it, or of its
        post pruned while listed (found by content hash: the id may be an older version's,
        see below), so that the entry stays pruned; and (id, title, content) of this
        source's posts with one of the entries' titles that an older version identified by
        a link it made of `<link>#</link>` (before 2), `<link>?</link>` or a permalink
        `<guid>#</guid>` (before 4): the feed's own URL, first seen first."""
        posts = list(posts)
        out: dict[str, str] = {}
        older: list[tuple[str, str, str]] = []
        with self._lock:
            for chunk, marks in _in_chunks(list(dict.fromkeys(p.content_hash for p in posts if p.content_hash))):
                gone = dict(
                    self.db.execute(
                        f"SELECT content_hash, id FROM pruned WHERE source = ? AND content_hash IN ({marks})",
                        [source, *chunk],
                    ).fetchall()
                )
                out.update((p.guid, gone[p.content_hash]) for p in posts if p.content_hash in gone)
            for chunk, marks in _in_chunks(list(dict.fromkeys(p.guid for p in posts))):
                for guid, pid in self.db.execute(
                    f"SELECT guid, id FROM posts WHERE source = ? AND guid IN ({marks}) ORDER BY first_seen, id",
                    [source, *chunk],
                ):
                    out.setdefault(guid, pid)
            for chunk, marks in _in_chunks(list(dict.fromkeys(p.title for p in posts))):
                older += self.db.execute(
                    "SELECT id, title, content FROM posts WHERE source = ? AND guid = link "
                    f"AND COALESCE(normalized, 0) < 4 AND title IN ({marks}) ORDER BY first_seen, id",
                    [source, *chunk],
                ).fetchall()
        return out, [(r[0], r[1], r[2] or "") for r in older]

    def hashed_posts(self, source: str, bases: Iterable[str]) -> dict[str, list[HashedPost]]:
        """The hash of title and content of entries without guid or link (`bases`) → this
        source's posts identified by it (alone, as versions before 12 stored them, or with an
        enclosure: `identity.hashed_identity`), with what tells which entry each is."""
        out: dict[str, list[HashedPost]] = {}
        with self._lock:
            wanted = set(bases)
            for chunk, marks in _in_chunks(list(wanted)):
                for guid, pid, enclosures, published, dated in self.db.execute(
                    "SELECT guid, id, enclosures, published, dated FROM posts "
                    f"WHERE source = ? AND substr(guid, 1, 32) IN ({marks}) ORDER BY first_seen, id",
                    [source, *chunk],
                ):
                    base = guid.partition(ENCLOSED)[0]
                    if base not in wanted:
                        continue  # (a guid of another kind that starts alike)
                    first = next(iter(json.loads(enclosures or "[]")), None)
                    url = first.get("url") if isinstance(first, dict) else None
                    enclosure = enclosure_key(url) if isinstance(url, str) and url else None
                    when = from_iso(published) if dated and published else None
                    out.setdefault(base, []).append(HashedPost(pid, guid, enclosure, when))
        return out

    def reread_hashed(self, source: str, titles: Iterable[str]) -> list[tuple[str, HashedPost]]:
        """(title, post) of this source's posts with one of `titles` that an older
        NORMALIZER_VERSION identified by a hash of title and content (entries without guid or
        link): its sanitizer may have read the content otherwise, so the entry's hash is not
        the one stored (`pipeline._hashed`). First seen first."""
        out: list[tuple[str, HashedPost]] = []
        with self._lock:
            for chunk, marks in _in_chunks(list(dict.fromkeys(titles))):
                for pid, guid, title, enclosures, published, dated in self.db.execute(
                    "SELECT id, guid, title, enclosures, published, dated FROM posts WHERE source = ? "
                    f"AND COALESCE(normalized, 0) < ? AND title IN ({marks}) ORDER BY first_seen, id",
                    [source, NORMALIZER_VERSION, *chunk],
                ):
                    base, sep, _ = guid.partition(ENCLOSED)
                    if len(base) != 32 or not all(c in "0123456789abcdef" for c in base):
                        continue  # identified by a guid or link: not a hash
                    first = next(iter(json.loads(enclosures or "[]")), None)
                    url = first.get("url") if isinstance(first, dict) else None
                    enclosure = enclosure_key(url) if isinstance(url, str) and url else None
                    when = from_iso(published) if dated and published else None
                    out.append((title, HashedPost(pid, guid, enclosure, when)))
        return out

    def _by_link(self, source: str, links: Iterable[str], column: str) -> list[tuple[str, str]]:
        links = list(dict.fromkeys(x for x in links if x))
        rows: list[tuple[str, str]] = []
        with self._lock:
            for chunk, marks in _in_chunks(links):
                rows += self.db.execute(
                    f"SELECT canonical_link, {column} FROM posts WHERE source = ? AND canonical_link IN ({marks}) "
                    "ORDER BY first_seen, id",
                    [source, *chunk],
                ).fetchall()
        return rows

    def earliest_next_poll(self) -> datetime | None:
        """When the daemon next has work: the soonest time a source of `due_sources` is due.

        A source never polled (NULL) counts as due now, a host under a Retry-After delays
        its sources; disabled and gone sources never come due. None when nothing will.
        """
        sql = f"SELECT min(max(coalesce(s.next_poll, ''), coalesce(h.retry_after, ''))) {_POLLABLE}"
        with self._lock:
            soonest = self.db.execute(sql).fetchone()[0]
        if soonest is None:
            return None
        return from_iso(soonest) if soonest else datetime.now(UTC)

    def shift_schedule(self, after: datetime, delta: timedelta) -> int:
        """Move every due time later than `after` (next polls, hosts' Retry-After) earlier by
        `delta`, in one transaction: the clock went back by `delta`. Returns the sources moved."""
        with self._tx() as db:
            rows = db.execute("SELECT key, next_poll FROM sources WHERE next_poll > ?", [iso(after)]).fetchall()
            for key, when in rows:
                db.execute("UPDATE sources SET next_poll = ? WHERE key = ?", [iso(from_iso(when) - delta), key])
            held = db.execute("SELECT key, held_next_poll FROM sources WHERE held_next_poll > ?", [iso(after)])
            for key, when in held.fetchall():
                db.execute("UPDATE sources SET held_next_poll = ? WHERE key = ?", [iso(from_iso(when) - delta), key])
            hosts = db.execute("SELECT host, retry_after FROM hosts WHERE retry_after > ?", [iso(after)]).fetchall()
            for host, until in hosts:
                db.execute("UPDATE hosts SET retry_after = ? WHERE host = ?", [iso(from_iso(until) - delta), host])
        return len(rows)

    def set_next_poll(self, key: str, when: datetime) -> None:
        """Reschedule one source (a reload changed its interval)."""
        self.set_next_polls({key: when})

    def stats(self, now: datetime | None = None) -> StoreStats:
        """Cheap aggregates for /metrics: active sources by state (as `status` shows them:
        `stored_state`), posts stored, last success."""
        now = now or datetime.now(UTC)
        enabled = "s.enabled" if self._has("sources", "enabled") else "1"  # an older file (read-only)
        hosts = self._has("hosts") and self._has("sources", "host")
        sql = (
            f"SELECT {enabled}, s.state, s.error_count, s.last_success IS NOT NULL, "
            + ("h.retry_after FROM sources s LEFT JOIN hosts h ON h.host = s.host" if hosts else "NULL FROM sources s")
            + " WHERE s.active = 1"
        )
        with self._lock:
            rows = self.db.execute(sql).fetchall()
            posts = self.db.execute("SELECT count(*) FROM posts").fetchone()[0]
            last = self.db.execute("SELECT max(last_success) FROM sources WHERE active = 1").fetchone()[0]
        states = Counter(
            stored_state(
                enabled=enabled != 0,
                stored=state,
                errors=errors or 0,
                succeeded=bool(succeeded),
                rate_limited_until=from_iso(until),
                now=now,
            )
            for enabled, state, errors, succeeded, until in rows
        )
        return StoreStats(dict(states), posts, from_iso(last))

    def outside_version(self) -> int | None:
        """SQLite's `data_version` on this connection: it moves only when another connection
        (another process: `aggregator prune`, `fetch`) commits (`status` never does); None, asking nothing,
        while another thread holds the store (the caller looks again later)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return int(self.db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None
        finally:
            self._lock.release()

    def probe_writable(self, timeout: float = 2.0) -> str | None:
        """None when the database accepts a write now, else why not (for /healthz).

        Uses its own connection, so a probe never queues behind this Store's lock, and a
        real (rolled back) header write, so a read-only file or a held lock is caught. A
        rolled-back write never reaches the disk, so a full disk is read off the file system:
        committing a probe instead would look to the daemon like another process's write.
        """
        try:
            conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            return f"cannot open {self.path}: {e}"
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute(f"PRAGMA user_version = {int(version)}")
            page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            conn.execute("ROLLBACK")
            free = _free_bytes(self.path.parent)
            if free is not None and free < FULL_BELOW_PAGES * page:
                return f"database {self.path}: its disk is full ({free:,} bytes free)"
            return None
        except sqlite3.Error as e:
            return f"database {self.path} is not writable: {e}"
        finally:
            conn.close()

    def backup(self, target: str | Path) -> Path:
        """A consistent copy through SQLite's online backup API, safe while the daemon writes.

        The copy is written beside `target` and renamed into place once complete and
        checked, so `target` is never a half-written database; it is a single file
        (rollback journal, not WAL), ready to copy elsewhere or open read-only.
        """
        target = Path(target)
        # a temporary file of its own: two backups to one PATH at once (a cron job's and one run
        # by hand) shared `.<name>.partial`, the second removing the first's under it; both
        # failed ('disk I/O error'), and one could rename the other's half-written copy into place
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        _remove_stale_partials(target)
        try:
            tmp.unlink(missing_ok=True)  # a killed backup's (on a read-only disk: EROFS, not ENOENT)
            create_private(tmp)
            dest = sqlite3.connect(str(tmp))
            try:
                with self._lock:
                    self.db.conn.backup(dest)
                dest.execute("PRAGMA journal_mode = DELETE")
                check = dest.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dest.close()
            if check != "ok":
                raise StoreError(f"backup of {self.path} failed its integrity check: {check}{damaged('malformed')}")
            tmp.replace(target)
        except (sqlite3.Error, OSError) as e:
            _discard(tmp)
            if isinstance(e, OSError) and e.filename == str(tmp):  # named the folder, not our temporary file
                why = f"{e.strerror}{why_unwritable(target)}"
            else:
                why = f"{e}{damaged(e)}"
            raise StoreError(f"cannot back up {self.path} to {target}: {why}") from None
        except BaseException:
            _discard(tmp)
            raise
        return target

    # -- posts ------------------------------------------------------------------------

    def posts_for_category(self, category: str, limit: int, offset: int = 0) -> list[Post]:
        """The category's published posts (not excluded there, not a later duplicate), newest
        first; `offset` pages through them."""
        return self._posts(
            f"JOIN source_categories sc ON sc.source = p.source AND sc.category = ? WHERE {VISIBLE} ",
            [category],
            limit,
            offset,
        )

    def shown_in(self, ids: Iterable[str]) -> dict[str, set[str]]:
        """Post id → the slugs of the categories that publish it (filters, duplicates)."""
        out: dict[str, set[str]] = {}
        ids = list(ids)
        with self._lock:
            for chunk, marks in _in_chunks(ids):
                for pid, slug in self.db.execute(
                    "SELECT p.id, sc.category FROM posts p JOIN source_categories sc ON sc.source = p.source "
                    f"WHERE p.id IN ({marks}) AND {VISIBLE}",
                    chunk,
                ):
                    out.setdefault(pid, set()).add(slug)
        return out

    def count_category_posts(self, category: str) -> int:
        with self._lock:
            return self.db.execute(
                "SELECT count(*) FROM posts p JOIN source_categories sc ON sc.source = p.source AND sc.category = ? "
                f"WHERE {VISIBLE}",
                [category],
            ).fetchone()[0]

    def category_summaries(self) -> dict[str, tuple[int, datetime | None]]:
        """Per category with published posts: (count, newest published), in one query (the
        home page lists every category; a query pair per category cost more than the page)."""
        sql = (
            "SELECT sc.category, count(*), max(p.published) FROM posts p "
            f"JOIN source_categories sc ON sc.source = p.source WHERE {VISIBLE} GROUP BY sc.category"
        )
        with self._lock:
            rows = self.db.execute(sql).fetchall()
        return {cat: (count, from_iso(newest)) for cat, count, newest in rows}

    def post(self, post_id: str) -> Post | None:
        found = self._posts("WHERE p.id = ? ", [post_id], 1)
        return found[0] if found else None

    def posts_changed_since(
        self, source: str, revision: int, limit: int, offset: int = 0, category: str | None = None
    ) -> list[Post]:
        """The source's posts inserted or changed after its `revision` (0: all of them, including
        posts stored before revisions existed), newest first; with `category`, only those that
        category publishes (filters and duplicates applied)."""
        where, params = "WHERE p.source = ? ", [source]
        if category is not None:
            where = f"JOIN source_categories sc ON sc.source = p.source AND sc.category = ? {where}AND {VISIBLE} "
            params = [category, source]
        if revision > 0:
            where += "AND p.revision > ? "
            params.append(revision)
        return self._posts(where, params, limit, offset)

    def category_revisions(self, category: str) -> dict[str, tuple[int, str]]:
        """Per source of the category: its revision and a digest of what pages show of it.

        The publisher keeps the last map it published; a category whose map is unchanged
        has no new or changed post and no renamed source, so it need not be regenerated.
        """
        sql = (
            "SELECT s.key, coalesce(s.revision, 0) AS revision, s.name, s.title, s.site_link, s.url, s.image "
            "FROM sources s JOIN source_categories sc ON sc.source = s.key AND sc.category = ? ORDER BY s.key"
        )
        with self._lock:
            rows = list(self.db.query(sql, [category]))
        out: dict[str, tuple[int, str]] = {}
        for r in rows:
            # (the cover, a podcast category's channel image, only when known: the digests of
            # sources without one stay those published before it was kept)
            cover = [r["image"]] if r["image"] else []
            shown = json.dumps([r["name"], r["title"], r["site_link"], r["url"], *cover], ensure_ascii=False)
            out[r["key"]] = (r["revision"], hashlib.sha1(shown.encode()).hexdigest()[:12])
        return out

    def category_covers(self, category: str) -> list[str | None]:
        """The cover (`FeedInfo.image`) of each source of the category, None for one without."""
        sql = "SELECT s.image FROM sources s JOIN source_categories sc ON sc.source = s.key AND sc.category = ?"
        with self._lock:
            return [r[0] for r in self.db.execute(sql, [category]).fetchall()]

    def covers_by_category(self) -> dict[str, list[str | None]]:
        """`category_covers` of every category at once (one query, for the all-posts feeds)."""
        sql = "SELECT sc.category, s.image FROM source_categories sc JOIN sources s ON s.key = sc.source"
        out: dict[str, list[str | None]] = {}
        with self._lock:
            for category, image in self.db.execute(sql).fetchall():
                out.setdefault(category, []).append(image)
        return out

    def publish_state(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT value FROM publish_state WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def publish_state_or(self, key: str, value: str) -> str:
        """The value stored under `key`, storing `value` first if there is none: in one
        transaction, so two processes asking at once both get the one that was stored."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO publish_state (key, value) VALUES (?, ?)", [key, value])
            return db.execute("SELECT value FROM publish_state WHERE key = ?", [key]).fetchone()[0]

    def set_publish_state(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO publish_state (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Mark a publish as running while it runs (see `_maybe_out`); a mark left by a
        publisher that died is disregarded after PUBLISH_MARK_TTL."""
        key = f"{_PUBLISHING}{os.getpid()}.{threading.get_ident()}"
        now = datetime.now(UTC)
        with self._tx() as db:
            db.execute(  # marks of publishers that died, past their time
                "DELETE FROM publish_state WHERE substr(key, 1, ?) = ? AND value <= ?",
                [len(_PUBLISHING), _PUBLISHING, iso(now - PUBLISH_MARK_TTL)],
            )
            db.execute("INSERT OR REPLACE INTO publish_state (key, value) VALUES (?, ?)", [key, iso(now)])
        try:
            yield
        finally:
            try:
                self.forget_publish_state(key)
            except StoreError as e:  # the publish itself went through: left, the mark expires
                log.warning("could not clear the publish mark %s (it expires): %s", key, e)

    def publish_state_keys(self, prefix: str) -> list[str]:
        with self._lock:
            rows = self.db.execute(
                "SELECT key FROM publish_state WHERE substr(key, 1, ?) = ? ORDER BY key", [len(prefix), prefix]
            ).fetchall()
        return [key for (key,) in rows]

    def forget_publish_state(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM publish_state WHERE key = ?", [key])

    def record_post_files(self, files: Iterable[tuple[str, str, str, str, str | None, datetime | None]]) -> None:
        """Remember the (path, post id, source, kind, category, date written) of files just
        published; the path relative to the folder of its kind; the date, a Jekyll file's
        (`jekyll_dates`).

        A post's earlier file of the same kind under another path (its date moved) is
        marked superseded: a Jekyll file is handed to the publisher to delete
        (`stale_post_files`), a page to turn into a redirect (`moved_pages`).
        """
        rows = list(files)
        if not rows:
            return
        with self._tx() as db:
            db.conn.executemany(
                "UPDATE post_files SET superseded = 1 WHERE post = ? AND kind = ? AND path != ?",
                [(post, kind, path) for path, post, _, kind, _, _ in rows],
            )
            db.conn.executemany(
                "INSERT OR REPLACE INTO post_files (path, post, source, kind, category, superseded, dated) "
                "VALUES (?, ?, ?, ?, ?, 0, ?)",
                [(*row[:5], iso(row[5])) for row in rows],
            )

    def unrecorded_files(self) -> bool:
        """Whether the database was made by a version that kept no record of the files it
        published (`_migrate`): the publisher must find them on disk (`adopt_post_files`)."""
        with self._lock:
            row = self.db.execute("SELECT 1 FROM meta WHERE key = 'unrecorded_files'").fetchone()
        return row is not None

    def adopt_post_files(self, files: Iterable[tuple[str, str, str, datetime | None]]) -> int:
        """Record the (path, post id, kind, date written) of files an older version published
        without recording them, found on disk; how many. Only posts of this database (a pruned
        one's are taken down, as the older version did not), and only where nothing of that
        kind is recorded for the post yet; with no category (whichever category publishes the
        post records its own). Of several Jekyll files of one post, the earliest dated is its
        file (the first written: its URL is the one readers know); the others are superseded,
        taken down as a re-dated post's old file is."""
        found: dict[tuple[str, str], list[tuple[str, datetime | None]]] = {}
        for path, post, kind, dated in files:
            found.setdefault((post, kind), []).append((path, dated))
        if not found:
            return 0
        rows = []
        with self._tx() as db:
            ids = sorted({post for post, _ in found})
            sources = {}
            for chunk, marks in _in_chunks(ids):
                # a pruned post's files too, which the older version left: taken down as stale
                sources.update(db.execute(f"SELECT id, source FROM pruned WHERE id IN ({marks})", chunk).fetchall())
                sources.update(db.execute(f"SELECT id, source FROM posts WHERE id IN ({marks})", chunk).fetchall())
            known = {tuple(r) for r in db.execute("SELECT DISTINCT post, kind FROM post_files").fetchall()}
            for (post, kind), paths in sorted(found.items()):
                if post not in sources or (post, kind) in known or (kind == "page" and (post, "redirect") in known):
                    continue
                paths.sort(key=lambda f: (f[1] is None, f[1] or datetime.min.replace(tzinfo=UTC), f[0]))
                for n, (path, dated) in enumerate(paths):
                    superseded = int(kind == "jekyll" and n > 0)
                    rows.append((path, post, sources[post], kind, superseded, iso(dated)))
            db.conn.executemany(
                "INSERT OR IGNORE INTO post_files (path, post, source, kind, superseded, dated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def publish_serial(self) -> int:
        """How many publishes this database has made that wrote something (`next_publish_serial`)."""
        value = self.publish_state("serial") or "0"
        return int(value) if value.isdigit() else 0

    def next_publish_serial(self, at_least: int) -> int:
        """Count a publish that wrote something: the serial, past `at_least` (the output
        folder's), in one write transaction, so that it only ever grows and the output folder,
        marked with it after, is never ahead of the database that published it unless that
        database was replaced by an older copy (a restored backup)."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM publish_state WHERE key = 'serial'").fetchone()
            now = int(row[0]) if row and str(row[0]).isdigit() else 0
            serial = max(now, at_least) + 1
            db.execute("INSERT OR REPLACE INTO publish_state (key, value) VALUES ('serial', ?)", [str(serial)])
        return serial

    def unknown_posts(self, ids: Iterable[str]) -> set[str]:
        """Of these post ids, those this database has no trace of: no post, no pruned id, no
        file recorded. Their files on disk were published by a later copy of it (it was
        restored from an older backup), and nothing else would ever take them down."""
        wanted = sorted(set(ids))
        known: set[str] = set()
        with self._lock:
            for chunk, marks in _in_chunks(wanted):
                for table, column in (("posts", "id"), ("pruned", "id"), ("post_files", "post")):
                    sql = f"SELECT {column} FROM {table} WHERE {column} IN ({marks})"
                    known.update(r[0] for r in self.db.execute(sql, chunk))
        return set(wanted) - known

    def files_recorded(self) -> None:
        """Every file published is recorded now (`unrecorded_files`)."""
        with self._tx() as db:
            db.execute("DELETE FROM meta WHERE key = 'unrecorded_files'")

    def jekyll_dates(self, ids: Iterable[str]) -> dict[str, datetime]:
        """Post id → the date its Jekyll file was written with: the file keeps it (its name,
        and so its URL) when the source re-dates the post, as the same entry must keep its
        file name and URL however often it is fetched."""
        keys = sorted(set(ids))
        if not keys:
            return {}
        with self._lock:
            rows = self.db.execute(
                "SELECT post, dated FROM post_files WHERE kind = 'jekyll' AND superseded = 0 AND dated IS NOT NULL "
                "AND post IN (SELECT value FROM json_each(?))",
                [json.dumps(keys)],
            ).fetchall()
        return {post: from_iso(dated) for post, dated in rows}  # type: ignore[misc]

    def moved_pages(self, sources: Iterable[str] | None = None) -> list[tuple[str, str, str, str]]:
        """(old path, post id, post title, current page path) of each page a published post
        had under an earlier date: superseded pages not yet redirects, whichever source they
        are of (a publish killed before redirecting them leaves them to the next), and the
        redirects already made, only `sources`' (what a partial publish can change) when given."""
        sql = (
            # CROSS JOIN: from the few rows of `f` (an index on kind), never from every current page
            "SELECT f.path, f.post, p.title, c.path FROM post_files f "
            "CROSS JOIN post_files c ON c.post = f.post AND c.kind = 'page' AND c.superseded = 0 "
            f"CROSS JOIN posts p ON p.id = f.post WHERE NOT {_STALE_FILE} AND "
        )
        # Two queries, each on an index: the pending ones are looked for on every publish.
        queries: list[tuple[str, list[Any]]] = [(sql + "f.superseded = 1 AND f.kind = 'page'", [])]
        if sources is None:
            queries.append((sql + "f.kind = 'redirect'", []))
        elif keys := sorted(set(sources)):
            queries.append(
                (sql + "f.kind = 'redirect' AND f.source IN (SELECT value FROM json_each(?))", [json.dumps(keys)])
            )
        with self._lock:
            return sorted((r[0], r[1], r[2], r[3]) for q, params in queries for r in self.db.execute(q, params))

    def record_redirects(self, files: Iterable[tuple[str, str]]) -> None:
        """Remember that the (path, post id) pages, superseded by their post's page under a new
        date, now hold a redirect to it: kept until the post is taken down (`stale_post_files`)."""
        rows = list(files)
        if not rows:
            return
        with self._tx() as db:
            db.conn.executemany(
                "UPDATE post_files SET kind = 'redirect', superseded = 0 WHERE path = ? AND post = ? "
                "AND ((kind = 'page' AND superseded = 1) OR kind = 'redirect')",
                rows,
            )

    def stale_post_files(self, sources: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """(kind, path) of published post files that no longer stand for a published post;
        with `sources`, only among those sources' files (what a partial publish can change)."""
        sql, params = f"SELECT f.kind, f.path FROM post_files f WHERE {_STALE_FILE}", []
        if sources is not None:
            keys = sorted(set(sources))
            if not keys:
                return []
            sql += " AND f.source IN (SELECT value FROM json_each(?))"
            params = [json.dumps(keys)]
        with self._lock:
            return [(r[0], r[1]) for r in self.db.execute(sql, params)]

    def forget_post_files(self, paths: Iterable[str]) -> None:
        """Forget files the publisher deleted, unless their post came back meanwhile."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM post_files WHERE path IN (SELECT f.path FROM post_files f "
                f"WHERE f.path IN (SELECT value FROM json_each(?)) AND {_STALE_FILE})",
                [json.dumps(list(paths))],
            )

    def latest_posts(self, limit: int) -> list[Post]:
        """The newest posts published in any category (the union of the category feeds), each
        article once: a copy shown in a category without its first copy is left out when the
        first is shown in another (a reader of `feed.*` saw it twice), unless a category that
        shows the copy keeps duplicates."""
        return self._posts(
            f"WHERE EXISTS (SELECT 1 FROM source_categories sc WHERE sc.source = p.source AND {VISIBLE} "
            f"AND (p.duplicate_of IS NULL OR sc.keep_duplicates = 1 OR NOT EXISTS ({_FIRST_SHOWN}))) ",
            [],
            limit,
        )

    def prune(self, source: str, retention: Retention, now: datetime) -> PruneReport:
        """Delete the source's posts beyond `keep_days` / `keep_per_source`, in one transaction.

        The newest `retention.protect` published posts of every category the source feeds
        are never deleted, so no output feed ever shrinks. Deleted ids are remembered while
        their entries stay in the feed, so the next fetch does not bring them back.
        """
        if not retention.limited:
            return PruneReport(source)
        cutoff = iso(now - timedelta(days=retention.keep_days)) if retention.keep_days is not None else None
        with self._lock:  # a read first: the daemon asks every hour, and most sources have nothing to go
            count, oldest = self.db.execute(
                "SELECT count(*), min(published) FROM posts WHERE source = ?", [source]
            ).fetchone()
        if not (
            (cutoff is not None and oldest is not None and oldest < cutoff)
            or (retention.keep_per_source is not None and count > retention.keep_per_source)
        ):
            return PruneReport(source)
        with self._tx() as db:
            rows = db.execute(
                f"SELECT id, title, published, content_hash FROM posts p WHERE source = ? ORDER BY {POST_ORDER}",
                [source],
            ).fetchall()
            hashes = {r[0]: r[3] for r in rows}
            doomed: dict[str, tuple[str, str]] = {}  # id → (reason, title)
            for rank, (pid, title, published, _) in enumerate(rows):
                if cutoff is not None and published < cutoff:
                    doomed[pid] = ("older", title)
                elif retention.keep_per_source is not None and rank >= retention.keep_per_source:
                    doomed[pid] = ("over", title)
            if not doomed:
                return PruneReport(source)
            protected: set[str] = set()
            categories = db.execute("SELECT category FROM source_categories WHERE source = ?", [source]).fetchall()
            for (category,) in categories:
                newest = db.execute(
                    "SELECT p.id FROM posts p JOIN source_categories sc ON sc.source = p.source AND sc.category = ? "
                    f"WHERE {VISIBLE} ORDER BY {POST_ORDER} LIMIT ?",
                    [category, retention.protect],
                )
                protected.update(r[0] for r in newest)
            gone = [pid for pid in doomed if pid not in protected]
            _promote_copies(db, gone)
            for chunk, marks in _in_chunks(gone):
                db.execute(f"DELETE FROM posts WHERE id IN ({marks})", chunk)
            db.conn.executemany(
                "INSERT OR REPLACE INTO pruned (id, source, pruned_at, content_hash) VALUES (?, ?, ?, ?)",
                [(pid, source, iso(now), hashes[pid]) for pid in gone],
            )
            if gone:  # its categories' pages list fewer posts now
                _bump_revision(db, source)
        return PruneReport(
            source,
            older=sum(doomed[pid][0] == "older" for pid in gone),
            over=sum(doomed[pid][0] == "over" for pid in gone),
            protected=len(doomed) - len(gone),
            titles=tuple(doomed[pid][1] for pid in gone),
        )

    def reclaim(self, vacuum: bool = False) -> tuple[int, int] | None:
        """Give the pages pruned posts freed back to the file system; (bytes before, after), or
        None when nothing was done. SQLite keeps freed pages for reuse: without this the file
        stayed at its largest after `prune` took most posts.

        Without `vacuum`: only a file made with `auto_vacuum = INCREMENTAL` (every new one),
        and only when at least an eighth of it (and `RECLAIM_MIN_PAGES`) is free: the free
        pages are cut from its end (`incremental_vacuum`, a write transaction). With `vacuum`
        (`prune --vacuum`): VACUUM, which rewrites the whole file, needing that much free
        disk and the write lock meanwhile, and turns an older file to incremental."""
        with self._lock:
            before = self._bytes()
            try:
                if vacuum:
                    self.db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # taken by the VACUUM
                    self.db.execute("VACUUM")
                else:
                    mode, pages, free = (
                        self.db.execute(f"PRAGMA {p}").fetchone()[0]
                        for p in ("auto_vacuum", "page_count", "freelist_count")
                    )
                    if mode != 2 or free < max(RECLAIM_MIN_PAGES, pages // 8):
                        return None
                    # its own transaction; executescript steps it to the end (a page per step:
                    # execute() stopped after the first page, the statement having no columns)
                    self.db.conn.executescript("PRAGMA incremental_vacuum")
                # The file shrinks once its WAL is copied back. After a prune, without waiting for
                # a reader in the way (the daemon's, a publish worker's): the next checkpoint does it.
                mode = "TRUNCATE" if vacuum else "PASSIVE"
                self.db.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            except sqlite3.Error as e:
                room = " (VACUUM writes a copy of the database: it needs that much free disk)" if vacuum else ""
                hint = why_unwritable(self.path) if "readonly" in str(e) else ""
                raise StoreError(f"database {self.path}: {e}{hint}{room}{damaged(e)}") from e
            after = self._bytes()
        log.info("database %s: %s gave back %d bytes", self.path, "VACUUM" if vacuum else "pruning", before - after)
        return before, after

    def _bytes(self) -> int:
        """The size of the database file and its WAL."""
        return sum(Path(f"{self.path}{x}").stat().st_size for x in ("", "-wal") if Path(f"{self.path}{x}").exists())

    def count_posts(self, source: str | None = None) -> int:
        with self._lock:
            if source is None:
                return self.db.execute("SELECT count(*) FROM posts").fetchone()[0]
            return self.db.execute("SELECT count(*) FROM posts WHERE source = ?", [source]).fetchone()[0]

    def _posts(self, where: str, params: list[Any], limit: int, offset: int = 0) -> list[Post]:
        # Choose the page by rowid first: sorting whole rows (content and all) only to keep
        # a page of them made every page of a large category cost a full scan of its content.
        sql = (
            "SELECT p.*, s.name AS s_name, s.title AS s_title, s.site_link AS s_link, s.url AS s_url, "
            # the categories that publish the post (as their pages choose), not every one of its source's
            "(SELECT group_concat(sc.category, ' ') FROM source_categories sc "
            f"WHERE sc.source = p.source AND {VISIBLE}) AS cats "
            "FROM posts p JOIN sources s ON s.key = p.source "
            f"WHERE p.rowid IN (SELECT p.rowid FROM posts p {where}"
            f"ORDER BY {POST_ORDER} LIMIT ? OFFSET ?) "
            f"ORDER BY {POST_ORDER}"
        )
        with self._lock:
            rows = list(self.db.query(sql, [*params, limit, offset]))
        return [_post(r) for r in rows]


def _promote_copies(db: sqlite_utils.Database, gone: list[str]) -> None:
    """Copies of posts about to be deleted: the first-seen one of each becomes the post shown,
    the others its copies. Each gets its source's next revision, so that the next publish
    writes its page: it became visible, and its category's pages link to it (they linked to
    a page never written)."""
    doomed = set(gone)
    for chunk, marks in _in_chunks(gone):
        rows = db.execute(
            f"SELECT id, duplicate_of, source FROM posts WHERE duplicate_of IN ({marks}) ORDER BY first_seen, id",
            chunk,
        ).fetchall()
        shown: dict[str, str] = {}  # deleted post → the copy shown in its place
        for pid, copied, source in rows:
            if pid in doomed:
                continue
            first = shown.setdefault(copied, pid)
            revision = _bump_revision(db, source)
            db.execute(
                "UPDATE posts SET duplicate_of = ?, revision = ? WHERE id = ?",
                [None if first == pid else first, revision, pid],
            )


def _retention(r: Retention) -> str:
    return json.dumps({"keep_days": r.keep_days, "keep_per_source": r.keep_per_source, "protect": r.protect})


def _stored_retention(text: str) -> Retention:
    d = json.loads(text)  # by key, not Retention(**d): a later version may record more
    return Retention(d.get("keep_days"), d.get("keep_per_source"), d.get("protect", Retention.protect))


def _looser(now: Retention, before: Retention) -> bool:
    """Whether `now` keeps some post that `before` would prune: a limit raised or removed."""

    def raised(new: float | None, old: float | None) -> bool:
        return old is not None and (new is None or new > old)

    return (
        raised(now.keep_days, before.keep_days)
        or raised(now.keep_per_source, before.keep_per_source)
        or now.protect > before.protect
    )


def _memberships(db: sqlite_utils.Database) -> dict[str, set[tuple[str, int]]]:
    """Source → its (category, keep_duplicates) rows: what decides where its posts are shown."""
    out: dict[str, set[tuple[str, int]]] = {}
    for source, category, keep in db.execute("SELECT source, category, keep_duplicates FROM source_categories"):
        out.setdefault(source, set()).add((category, keep or 0))
    return out


def _bump_revision(db: sqlite_utils.Database, source: str) -> int:
    """Mark the source's categories for republishing when what they show changed outside an
    upsert (filtered, pruned, merged): the publisher compares source revisions."""
    db.execute("UPDATE sources SET revision = coalesce(revision, 0) + 1 WHERE key = ?", [source])
    row = db.execute("SELECT revision FROM sources WHERE key = ?", [source]).fetchone()
    return row[0] if row else 0


def create_private(path: Path) -> None:
    """Create `path` empty, readable by its owner only, unless it exists: SQLite would create a
    database 0644 (under the usual umask 022, the one the systemd unit sets), and the database
    holds the sources' secrets (`?token=` URLs, passwords in them) for any local user to read.
    SQLite gives the -wal, -shm and -journal files beside it the database file's mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
    except FileExistsError:
        pass  # an existing file (or symlink) keeps the mode it was given


def why_unwritable(path: Path) -> str:
    """Why SQLite's bare "unable to open database file" happened, when we can tell."""
    if folder_there := _a_folder(path):
        return folder_there
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f" ({folder} is on a read-only file system)"
    except OSError:
        return ""
    if not os.access(folder, os.X_OK):
        return f" (no permission to enter {folder})"
    if not os.access(folder, os.W_OK):
        return f" (no write permission on {folder}, where SQLite keeps the -wal and -shm files)"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return " (the file is read-only)"
    return ""


def _discard(path: Path) -> None:
    """Remove a temporary file if it is there; on a read-only disk it never was (and unlink
    raises EROFS even for a missing file), and the error being reported matters more."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def damaged(e: BaseException | str) -> str:
    """What to do about a damaged database file (a bad sector, a copy cut short, pages
    overwritten): SQLite's "database disk image is malformed" said nothing of it."""
    text = str(e)
    if "malformed" in text:
        return (
            " (the file is damaged: keep it aside, and restore a backup (`aggregator backup`) or "
            "salvage what it holds with `sqlite3 <file> .recover | sqlite3 <new file>`)"
        )
    if "file is not a database" in text:
        return (
            " (not an SQLite database, or its first page is damaged: set site.database to another file, "
            "or restore a backup)"
        )
    return ""


def why_unreadable(path: Path) -> str:
    """Why a read-only open failed, when we can tell: a folder that may not be entered, or a
    -wal left without its -shm (the database was not closed cleanly) in a folder where SQLite
    may not create one."""
    if folder_there := _a_folder(path):
        return folder_there
    folder = path.parent
    try:
        if not os.access(folder, os.X_OK):
            return f" (no permission to enter {folder})"
        if Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists():
            return (
                f" (its write-ahead log {path}-wal needs a {path}-shm beside it, which cannot be created"
                f"{why_unwritable(path)}; `aggregator fetch` or `publish` where it can be restores it)"
            )
    except OSError:
        pass
    return ""


def _foreign(path: Path, tables: set[str]) -> str:
    """Why the SQLite file at `path`, with these tables but no `sources`, is not opened."""
    some = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
    return (
        f"{path} is not an aggregator database (it has no sources table; its tables: {some}): "
        "nothing was written to it; set site.database to a file of its own"
    )


def _stamp(path: Path) -> tuple[int, ...]:
    """What changes when a database is written or replaced (an `immutable` read checks it):
    its file's stat, and the size of its -wal (0: none, or one never written)."""
    st = os.stat(path)
    try:
        wal = os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        wal = 0
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, wal)


def read_database(path: Path, read: Callable[[Store], T]) -> T:
    """`read(store)` on the database at `path`, opened read-only (`Store(read_only=True)`):
    for the commands that only look. Nothing is written, created or locked for writing: they
    work on a full disk, a read-only (or `chattr +i`) file or folder, and beside a daemon
    holding a write transaction, whose committed data they see. An `immutable` read that a
    writer may have overlapped (`Store.changed`) is read again as a reader among writers."""
    for last in (False, False, True):
        store = Store(path, read_only=True, immutable=not last)
        try:
            result = read(store)
        except (sqlite3.Error, StoreError) as e:  # (a backup's: its check of the copy failed)
            if store.changed() and not last:  # torn by a writer: read again
                continue
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"cannot read database {path}: {e}{damaged(e)}") from None
        finally:
            store.close()
        if not store.changed():
            return result
    raise AssertionError("unreachable: the last read is never immutable")


def _remove_stale_partials(target: Path) -> None:
    """The temporary files of backups to `target` that died (SIGKILL, a power cut): those of
    processes no longer running, and the one an earlier version named `.<name>.partial`."""
    with suppress(OSError):  # a folder that cannot be listed, a read-only disk: the backup itself says why
        target.with_name(f".{target.name}.partial").unlink(missing_ok=True)
        for path in target.parent.glob(f".{glob.escape(target.name)}.*.partial*"):  # and its -journal
            pid, _, rest = path.name[len(target.name) + 2 :].partition(".partial")
            if pid.isdigit() and rest in ("", "-journal") and not alive(int(pid)):
                path.unlink(missing_ok=True)


def database_exists(path: Path) -> bool:
    """Whether there is a database file at `path`; True also when its folder may not be
    entered, or a folder stands there, so that opening it says why (Path.is_file raised
    PermissionError: a traceback; a folder was "no database yet", exit 0)."""
    try:
        return path.is_file() or path.is_dir()
    except OSError:
        return True


def _a_folder(path: Path) -> str:
    """SQLite's bare "unable to open database file" when a folder stands at `path`."""
    try:
        if path.is_dir():
            return " (it is a folder, not a file: set site.database to a file's path, or move the folder away)"
    except OSError:
        pass
    return ""


def _free_bytes(folder: Path) -> int | None:
    """Bytes this process may still write under `folder`: root may use the blocks a file
    system reserves for it (5% on ext4), so an ext4 disk others see full is not full to it."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


_PUBLISHING = "publishing:"  # publish_state keys of the publishes running (`Store.publishing`)
PUBLISH_MARK_TTL = timedelta(hours=1)


def _in_chunks(values: list[str]) -> Iterator[tuple[list[str], str]]:
    """`values` 500 at a time, each chunk with its `?,?,…` for an `IN (…)`: well under
    SQLite's limit on bound parameters, whatever the batch."""
    for i in range(0, len(values), 500):
        chunk = values[i : i + 500]
        yield chunk, ",".join("?" * len(chunk))


def _links_to_others(db: sqlite_utils.Database, link: str, sources: tuple[str, ...], first: str) -> bool:
    """Whether a post of these sources other than `first` and its copies has this link too:
    then it is a section's or a show's page, not one article's."""
    marks = ", ".join("?" * len(sources))
    row = db.execute(
        f"SELECT 1 FROM posts WHERE canonical_link = ? AND source IN ({marks}) AND id != ? "
        "AND coalesce(duplicate_of, '') != ? LIMIT 1",
        [link, *sources, first, first],
    ).fetchone()
    return row is not None


def _maybe_out(db: sqlite_utils.Database, post: str) -> bool:
    """Whether readers may have seen `post`: it has a published file, or a publish is running
    (it records its files only once they are written)."""
    cutoff = iso(datetime.now(UTC) - PUBLISH_MARK_TTL)
    return (
        db.execute(
            "SELECT 1 FROM post_files WHERE post = ? UNION ALL "
            "SELECT 1 FROM publish_state WHERE substr(key, 1, ?) = ? AND value > ? LIMIT 1",
            [post, len(_PUBLISHING), _PUBLISHING, cutoff],
        ).fetchone()
        is not None
    )


def _newly_dated(p: Post, old: dict[str, Any]) -> bool:
    """Whether `p` is dated where the older version that stored it found no date (a month
    alone, `September 2008`, before NORMALIZER_VERSION 8): it takes the date now read, once.

    Such a post was dated the time it was first seen, on top of its category; a new date
    alone is otherwise not taken (many feeds stamp every entry with the time they were
    generated), but this one is the upgrade's reading, not the feed's doing. The post keeps
    its `updated` time (`_edit`), as any post an upgrade refreshes does, and its id.
    """
    return (
        not old["dated"]
        and p.dated
        and p.published != p.first_seen  # a date in the future is the fetch time: no date to take
        and (old["normalized"] or 0) < NORMALIZER_VERSION
    )


def _relabelled(p: Post, old: dict[str, Any]) -> bool:
    """Whether this version reads the language of stored post `old` otherwise than the older
    one that stored it (NORMALIZER_VERSION 8: `xml:lang="utf-8"` is none). The language is
    not in the content hash, which post ids are made of, so that it is stored again as an
    upgrade's edit (`_edit`: not dated) rather than kept until the entry is edited."""
    return (old["normalized"] or 0) < NORMALIZER_VERSION and old.get("language") != p.language


def _edit(p: Post, old: dict[str, Any]) -> dict[str, Any]:
    """The row of `p` as an edit of stored post `old`: its first sighting, copy mark and, unless
    the edit gives one, its date stay."""
    row = _row(p)
    row["first_seen"] = old["first_seen"]
    row["duplicate_of"] = old["duplicate_of"]
    # no date of its own, or one in the future (which the normalizer reads as the time of
    # this poll: `published == first_seen`): keep the one first given, or every edit would
    # move the post up to the top again
    if not p.dated or p.published == p.first_seen:
        row["published"], row["dated"] = old["published"], old["dated"]
    if not p.dated or row["updated"] <= old["updated"]:  # changed without saying so: now is when,
        if (old.get("normalized") or 0) >= NORMALIZER_VERSION:
            row["updated"] = iso(p.first_seen) or row["updated"]
        else:  # unless an older version read it: the feed may not have changed at all
            row["updated"] = old["updated"]
    return row


def _row(p: Post) -> dict[str, Any]:
    """The posts row of a Post (`duplicate_of` is the store's to decide)."""
    return {
        "id": p.id,
        "source": p.source,
        "guid": p.guid,
        "title": p.title,
        "link": p.link,
        "published": iso(p.published),
        "updated": iso(p.updated),
        "content": p.content,
        "summary": p.summary,
        "authors": json.dumps([a.__dict__ for a in p.authors], ensure_ascii=False),
        "tags": json.dumps(list(p.tags), ensure_ascii=False),
        "enclosures": json.dumps([e.as_dict() for e in p.enclosures], ensure_ascii=False),
        "language": p.language,
        "comments": p.comments,
        "content_hash": p.content_hash,
        "first_seen": iso(p.first_seen),
        "dated": int(p.dated),
        "canonical_link": p.canonical_link,
        "fingerprint": p.fingerprint,
        "excluded": " ".join(p.excluded) or None,
        "duplicate_of": None,
        "normalized": NORMALIZER_VERSION,
    }


def _post(r: dict[str, Any]) -> Post:
    return Post(
        id=r["id"],
        source=r["source"],
        guid=r["guid"],
        title=r["title"],
        link=r["link"],
        published=from_iso(r["published"]),  # type: ignore[arg-type]
        updated=from_iso(r["updated"]),  # type: ignore[arg-type]
        content=r["content"] or "",
        summary=r["summary"] or "",
        authors=tuple(Author(**a) for a in json.loads(r["authors"] or "[]")),
        tags=tuple(json.loads(r["tags"] or "[]")),
        enclosures=tuple(Enclosure.from_dict(e) for e in json.loads(r["enclosures"] or "[]")),
        language=r["language"],
        comments=r["comments"],
        content_hash=r["content_hash"] or "",
        first_seen=from_iso(r["first_seen"]),
        dated=bool(r["dated"]),
        categories=tuple((r.get("cats") or "").split()),
        source_title=r.get("s_name") or r.get("s_title"),
        source_link=r.get("s_link"),
        source_url=r.get("s_url"),
        canonical_link=r.get("canonical_link"),
        fingerprint=r.get("fingerprint"),
        excluded=tuple((r.get("excluded") or "").split()),
        duplicate_of=r.get("duplicate_of"),
    )


def _poll_values(poll: PollUpdate) -> dict[str, Any]:
    values: dict[str, Any] = {
        "url": poll.fetch_url,
        "host": host_key(poll.fetch_url),
        "learnt_url": poll.learnt_url,
        "discovered_url": poll.discovered_url,
        "redirect_url": poll.redirect_url,
        "redirect_count": poll.redirect_count,
        "last_result": poll.result,
        "feed_hint": poll.feed_hint,
    }
    if poll.interval is not None:
        values["interval"] = poll.interval
    return values


def _state(r: dict[str, Any]) -> SourceState:
    return SourceState(
        key=r["key"],
        url=r["url"],
        name=r["name"],
        title=r["title"],
        etag=r["etag"],
        last_modified=r["last_modified"],
        body_hash=r["body_hash"],
        last_fetch=from_iso(r["last_fetch"]),
        last_success=from_iso(r["last_success"]),
        last_status=r["last_status"],
        last_error=r["last_error"],
        error_count=r["error_count"] or 0,
        next_poll=from_iso(r["next_poll"]),
        state=r["state"] or "new",
        posts=r.get("posts") or 0,
        enabled=r.get("enabled") != 0,
        host=r.get("host"),
        learnt_url=r.get("learnt_url"),
        discovered_url=r.get("discovered_url"),
        redirect_url=r.get("redirect_url"),
        redirect_count=r.get("redirect_count") or 0,
        interval=r.get("interval"),
        feed_hint=r.get("feed_hint"),
        last_error_at=from_iso(r.get("last_error_at")),
        last_result=r.get("last_result"),
        identity=r.get("identity") or GUID,
        identity_note=r.get("identity_note"),
        site_link=r.get("site_link"),
        image=r.get("image"),
        id_key=r.get("id_key") or r["key"],
        read_by=r.get("read_by") or 0,
    )
