"""SQLite storage through sqlite-utils: the only module that writes SQL.

One transaction per source update, WAL so that publishers and `status` read while the
daemon writes. Knows nothing of HTTP or XML: it stores Posts and fetch state.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .models import Author, Enclosure, FeedInfo, Post, Source

SCHEMA_VERSION = 1

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
}

SOURCE_COLUMNS = {
    "key": str,
    "url": str,
    "name": str,
    "title": str,
    "site_link": str,
    "etag": str,
    "last_modified": str,
    "body_hash": str,
    "last_fetch": str,
    "last_success": str,
    "last_status": int,
    "last_error": str,
    "error_count": int,
    "next_poll": str,
    "state": str,
    "active": int,
}

SOURCE_CATEGORY_COLUMNS = {"source": str, "category": str}

# table → (columns, primary key, NOT NULL columns); new columns are added on open
TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...], set[str]]] = {
    "sources": (SOURCE_COLUMNS, "key", {"url"}),
    "posts": (POST_COLUMNS, "id", {"source", "guid", "title", "published", "updated"}),
    "source_categories": (SOURCE_CATEGORY_COLUMNS, ("source", "category"), set()),
}
INDEXES = [
    ("posts", ["source", "published"]),
    ("posts", ["published"]),
    ("source_categories", ["category"]),
]


class StoreError(Exception):
    """The database cannot be opened or written."""


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

    @property
    def display_name(self) -> str:
        return self.name or self.title or self.key


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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open database {self.path}: {e}{_open_hint(self.path)}") from None
        self._lock = threading.RLock()
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite_utils.Database]:
        with self._lock:
            try:
                with self.db.atomic():
                    yield self.db
            except sqlite3.Error as e:
                hint = _open_hint(self.path) if "readonly" in str(e) else ""
                raise StoreError(f"database {self.path}: {e}{hint}") from e

    # -- schema -----------------------------------------------------------------------

    def _migrate(self) -> None:
        """Create what is missing: tables, then any column added since the file was made.

        Columns are only ever added (never renamed or dropped), so an old database opens
        in a new version and keeps every post; `user_version` guards against the reverse.
        """
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"database {self.path} is from a newer aggregator (schema {version})")
            for name, (columns, pk, not_null) in TABLES.items():
                table = db[name]
                if not table.exists():
                    table.create(columns, pk=pk, not_null=not_null)
                else:
                    for column, kind in columns.items():
                        if column not in table.columns_dict:
                            table.add_column(column, kind)
            for table, columns in INDEXES:
                db[table].create_index(columns, if_not_exists=True)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- sources ----------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[Source]) -> None:
        """Make the sources table and category membership match the config."""
        sources = list(sources)
        with self._tx() as db:
            db.execute("UPDATE sources SET active = 0")
            for s in sources:
                db.execute(
                    "INSERT INTO sources (key, url, name, error_count, state, active) VALUES (?, ?, ?, 0, 'new', 1) "
                    "ON CONFLICT(key) DO UPDATE SET name = excluded.name, active = 1",
                    [s.key, s.url, s.name],
                )
            db.execute("DELETE FROM source_categories")
            db["source_categories"].insert_all(
                ({"source": s.key, "category": c} for s in sources for c in s.categories), ignore=True
            )

    def source_state(self, key: str) -> SourceState | None:
        with self._lock:
            row = self.db.execute(
                "SELECT s.*, (SELECT count(*) FROM posts p WHERE p.source = s.key) AS posts "
                "FROM sources s WHERE key = ?",
                [key],
            ).fetchone()
            if row is None:
                return None
            cols = [d[0] for d in self.db.execute("SELECT s.*, 0 AS posts FROM sources s LIMIT 0").description]
        return _state(dict(zip(cols, row, strict=True)))

    def source_states(self, active_only: bool = True) -> list[SourceState]:
        sql = (
            "SELECT s.*, (SELECT count(*) FROM posts p WHERE p.source = s.key) AS posts FROM sources s"
            + (" WHERE active = 1" if active_only else "")
            + " ORDER BY key"
        )
        with self._lock:
            rows = list(self.db.query(sql))
        return [_state(r) for r in rows]

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
    ) -> tuple[int, int]:
        """Store a successful poll and its posts in one transaction; returns (new, updated)."""
        with self._tx() as db:
            new, updated = self._upsert_posts(db, key, list(posts))
            values: dict[str, Any] = {
                "last_fetch": iso(when),
                "last_success": iso(when),
                "last_status": status,
                "last_error": None,
                "error_count": 0,
                "next_poll": iso(next_poll),
                "state": "ok",
            }
            if status != 304:
                values.update(etag=etag, last_modified=last_modified, body_hash=body_hash)
            if info is not None:
                values.update(title=info.title, site_link=info.link)
            db["sources"].update(key, values)
        return new, updated

    def record_error(
        self, key: str, when: datetime, message: str, status: int | None, next_poll: datetime | None
    ) -> int:
        """Returns the consecutive error count."""
        with self._tx() as db:
            db.execute(
                "UPDATE sources SET last_fetch = ?, last_status = ?, last_error = ?, error_count = error_count + 1, "
                "next_poll = ?, state = 'erroring' WHERE key = ?",
                [iso(when), status, message, iso(next_poll), key],
            )
            row = db.execute("SELECT error_count FROM sources WHERE key = ?", [key]).fetchone()
        return row[0] if row else 0

    def _upsert_posts(self, db: sqlite_utils.Database, source: str, posts: list[Post]) -> tuple[int, int]:
        if not posts:
            return 0, 0
        existing: dict[str, dict[str, Any]] = {}
        ids = [p.id for p in posts]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, content_hash, published, updated, first_seen, dated FROM posts WHERE id IN ({marks})"
            for row in db.query(sql, chunk):
                existing[row["id"]] = row
        inserts, updates = [], []
        for p in posts:
            old = existing.get(p.id)
            if old is None:
                inserts.append(_row(p))
            elif old["content_hash"] != p.content_hash:
                row = _row(p)
                row["first_seen"] = old["first_seen"]
                if not p.dated:  # the entry has no date of its own: keep the one first given
                    row["published"], row["dated"] = old["published"], old["dated"]
                if row["updated"] <= old["updated"]:  # changed without saying so: now is when
                    row["updated"] = iso(p.first_seen) or row["updated"]
                updates.append(row)
        if inserts:
            db["posts"].insert_all(inserts, batch_size=200)
        if updates:
            db["posts"].upsert_all(updates, pk="id", batch_size=200)
        return len(inserts), len(updates)

    # -- posts ------------------------------------------------------------------------

    def posts_for_category(self, category: str, limit: int) -> list[Post]:
        return self._posts("JOIN source_categories sc ON sc.source = p.source AND sc.category = ? ", [category], limit)

    def latest_posts(self, limit: int) -> list[Post]:
        return self._posts("WHERE p.source IN (SELECT source FROM source_categories) ", [], limit)

    def count_posts(self, source: str | None = None) -> int:
        with self._lock:
            if source is None:
                return self.db.execute("SELECT count(*) FROM posts").fetchone()[0]
            return self.db.execute("SELECT count(*) FROM posts WHERE source = ?", [source]).fetchone()[0]

    def _posts(self, where: str, params: list[Any], limit: int) -> list[Post]:
        sql = (
            "SELECT p.*, s.name AS s_name, s.title AS s_title, s.site_link AS s_link, s.url AS s_url, "
            "(SELECT group_concat(category, ' ') FROM source_categories c WHERE c.source = p.source) AS cats "
            f"FROM posts p JOIN sources s ON s.key = p.source {where}"
            "ORDER BY p.published DESC, p.id DESC LIMIT ?"
        )
        with self._lock:
            rows = list(self.db.query(sql, [*params, limit]))
        return [_post(r) for r in rows]


def _open_hint(path: Path) -> str:
    """Why SQLite's bare "unable to open database file" happened, when we can tell."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f" ({folder} is on a read-only file system)"
    except OSError:
        return ""
    if not os.access(folder, os.W_OK):
        return f" (no write permission on {folder}, where SQLite keeps the -wal and -shm files)"
    if path.exists() and not os.access(path, os.W_OK):
        return " (the file is read-only)"
    return ""


def _row(p: Post) -> dict[str, Any]:
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
        "enclosures": json.dumps([e.__dict__ for e in p.enclosures], ensure_ascii=False),
        "language": p.language,
        "comments": p.comments,
        "content_hash": p.content_hash,
        "first_seen": iso(p.first_seen),
        "dated": int(p.dated),
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
        enclosures=tuple(Enclosure(**e) for e in json.loads(r["enclosures"] or "[]")),
        language=r["language"],
        comments=r["comments"],
        content_hash=r["content_hash"] or "",
        first_seen=from_iso(r["first_seen"]),
        dated=bool(r["dated"]),
        categories=tuple((r.get("cats") or "").split()),
        source_title=r.get("s_name") or r.get("s_title"),
        source_link=r.get("s_link"),
        source_url=r.get("s_url"),
    )


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
    )
