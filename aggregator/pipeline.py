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

from .fetch import Fetcher, FetchError
from .models import Source
from .normalize import normalize
from .parse import ParseError, parse_feed
from .schedule import next_poll
from .store import Store, StoreError

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
        posts = normalize(source, feed, started)
        new, updated = store.record_success(
            source.key,
            started,
            result.status,
            info=feed.info,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=body_hash,
            next_poll=next_poll(started, source.interval),
            posts=posts,
        )
    except (FetchError, ParseError) as e:
        return _failed(source, store, started, str(e), getattr(e, "status", None), state.error_count if state else 0)
    except StoreError as e:  # disk full, read-only database: nothing stored, nothing lost
        return _failed(source, store, started, f"storing failed: {e}", None, state.error_count if state else 0)
    except Exception as e:  # a bug in one source's handling must not stop the others
        log.exception("source %s: unexpected error", source.key)
        message = f"internal error: {type(e).__name__}: {e}"
        return _failed(source, store, started, message, None, state.error_count if state else 0)
    status = "new" if new else "updated" if updated else "unchanged"
    if feed.warning:
        log.info("source %s: feed is not well-formed, took what could be read: %s", source.key, feed.warning)
    return Outcome(source.key, status, new, updated, len(posts), warning=feed.warning)


def _failed(source: Source, store: Store, when: datetime, message: str, status: int | None, errors: int) -> Outcome:
    log.warning("source %s: %s", source.key, message)
    try:
        store.record_error(source.key, when, message, status, next_poll(when, source.interval, errors + 1))
    except StoreError as e:  # the database cannot take even this; the outcome still reports it
        log.error("source %s: could not record the error: %s", source.key, e)
    return Outcome(source.key, "error", error=message)
