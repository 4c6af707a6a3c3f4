"""Fetch → parse → normalize → store for one source, and the outcome of that.

Every stage's error is caught here, recorded on the source's state, and turned into an
outcome, so one broken feed never stops the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from . import filters
from .fetch import Fetcher, FetchError
from .identity import GUID, LINK, guid_problem, link_identity
from .models import Post, Source
from .normalize import normalize_entries, unique
from .parse import ParsedFeed, ParseError, parse_feed
from .schedule import next_poll
from .store import SourceState, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    source: str
    status: str  # new | updated | unchanged | error
    new: int = 0
    updated: int = 0
    entries: int = 0
    error: str | None = None
    warning: str | None = None

    @property
    def changed(self) -> bool:
        return self.new > 0 or self.updated > 0


def utcnow() -> datetime:
    return datetime.now(UTC)


def update_source(
    source: Source,
    store: Store,
    fetcher: Fetcher,
    now: Callable[[], datetime] = utcnow,
) -> Outcome:
    """Poll `source` once and store what it has; never raises for a bad feed."""
    state = store.source_state(source.key)
    started = now()
    try:
        result = fetcher.fetch(
            source,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
        )
        if result.not_modified:
            store.record_success(source.key, started, 304, next_poll=next_poll(started, source.interval))
            return Outcome(source.key, "unchanged")
        body = result.body or b""
        body_hash = hashlib.sha256(body).hexdigest()
        if state and state.body_hash == body_hash:  # server ignored the conditional GET
            store.record_success(
                source.key,
                started,
                result.status,
                etag=result.etag,
                last_modified=result.last_modified,
                body_hash=body_hash,
                next_poll=next_poll(started, source.interval),
            )
            return Outcome(source.key, "unchanged")
        feed = parse_feed(source.key, body, result.url, result.headers)
        posts, new, updated = ingest(
            source,
            store,
            feed,
            started,
            status=result.status,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=body_hash,
        )
    except (FetchError, ParseError) as e:
        return _failed(source, store, started, str(e), getattr(e, "status", None), state.error_count if state else 0)
    except Exception as e:  # a bug in one source's handling must not stop the others
        log.exception("source %s: unexpected error", source.key)
        message = f"internal error: {type(e).__name__}: {e}"
        return _failed(source, store, started, message, None, state.error_count if state else 0)
    status = "new" if new else "updated" if updated else "unchanged"
    if feed.warning:
        log.info("source %s: feed is not well-formed, took what could be read: %s", source.key, feed.warning)
    return Outcome(source.key, status, new, updated, len(posts), warning=feed.warning)


def ingest(
    source: Source,
    store: Store,
    feed: ParsedFeed,
    when: datetime,
    *,
    status: int = 200,
    etag: str | None = None,
    last_modified: str | None = None,
    body_hash: str | None = None,
) -> tuple[list[Post], int, int]:
    """Normalize → identify → filter → store a parsed feed, then prune; returns (posts, new, updated)."""
    posts, identity = _identify(source, store, store.source_state(source.key), normalize_entries(source, feed, when))
    posts = filters.apply(source, unique(posts))
    new, updated = store.record_success(
        source.key,
        when,
        status,
        info=feed.info,
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        next_poll=next_poll(when, source.interval),
        posts=posts,
        identity=identity,
    )
    if new and source.retention.limited:
        report = store.prune(source.key, source.retention, when)
        if report.removed:
            log.info("source %s: pruned %d old posts", source.key, report.removed)
    return posts, new, updated


def _identify(
    source: Source, store: Store, state: SourceState | None, posts: list[Post]
) -> tuple[list[Post], tuple[str, str] | None]:
    """The posts with the ids the source's identity mode gives, and a mode change to record.

    A source starts out identified by guid; once its guids prove useless (identity.py)
    it is identified by link for good, keeping the ids its posts already have.
    """
    change = None
    if (state.identity if state else GUID) == GUID:
        links = [p.canonical_link for p in posts if p.canonical_link]
        problem = guid_problem(((p.guid, p.canonical_link) for p in posts), store.identities_by_link(source.key, links))
        if problem is None:
            return posts, None
        log.warning("source %s: %s; identifying its entries by link from now on", source.key, problem)
        change = (LINK, problem)
    stored = store.ids_by_link(source.key, (p.canonical_link for p in posts if p.canonical_link))
    return link_identity(posts, source.key, stored), change


def _failed(source: Source, store: Store, when: datetime, message: str, status: int | None, errors: int) -> Outcome:
    log.warning("source %s: %s", source.key, message)
    store.record_error(source.key, when, message, status, next_poll(when, source.interval, errors + 1))
    return Outcome(source.key, "error", error=message)
