"""Fetch → parse → normalize → store for one source, and the outcome of that.

Every stage's error is caught here, recorded on the source's state, and turned into an
outcome, so one broken feed never stops the others. This is also where one poll's HTTP
facts become the source's polling state: a 410 marks it gone, a 429/503 with Retry-After
holds back its host, a permanent redirect seen on enough consecutive polls is learnt, an
HTML page is searched for the feed it links to, and the next poll time is set.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from . import filters
from .charset import reconcile_charset
from .dates import local_time
from .discover import find_feed_links, is_html_page
from .fetch import Fetcher, FetchError
from .hosts import host_key, parse_retry_after
from .identity import (
    ENCLOSED,
    GUID,
    LINK,
    earlier_hashed_ids,
    enclosure_key,
    guid_problem,
    identity_link,
    link_identity,
    shares_link,
    tell_apart,
)
from .models import NORMALIZER_VERSION, FetchResult, PollUpdate, Post, Source
from .normalize import feed_info, hash_before_8, normalize_entries, unique
from .parse import ParsedFeed, ParseError, parse_feed
from .plural import counted
from .sanitize import printable
from .schedule import (
    BACKING_OFF,
    ERRORING,
    WEEK,
    cache_lifetime,
    feed_hint,
    interval_for,
    interval_in_force,
    next_poll,
    not_before,
    posting_rate,
)
from .store import SourceState, Store, StoreError, TakenOver

log = logging.getLogger(__name__)

LEARN_AFTER = 3  # consecutive polls that must see the same permanent redirect before it is learnt


@dataclass(frozen=True)
class Outcome:
    source: str
    status: str  # new | updated | unchanged | error | rate-limited | gone | skipped
    new: int = 0
    updated: int = 0
    entries: int = 0
    error: str | None = None
    warning: str | None = None
    note: str | None = None  # why unchanged or skipped: "not modified", "disabled", ...
    unscheduled: bool = False  # not even the error could be stored: the next-poll time is the old one
    store_error: str | None = None  # the database refused what this poll brought (disk full, read-only)
    pruned: int = 0  # posts then deleted by the source's keep_days / keep_per_source, new ones included
    # the feed's title or home page link, shown as the source's on its pages, feeds and OPML, changed
    retitled: bool = False

    @property
    def changed(self) -> bool:
        """Its categories' outputs are out of date: a feed retitled with no new entry was
        stored, and shown by no page until some post of its categories changed."""
        return self.new > 0 or self.updated > 0 or self.retitled


def utcnow() -> datetime:
    return datetime.now(UTC)


def update_source(
    source: Source,
    store: Store,
    fetcher: Fetcher,
    now: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
    named: bool = False,
) -> Outcome:
    """Poll `source` once and store what it has; never raises for a bad feed.

    Polls whatever its next-poll time (the caller decides what is due), but never a
    disabled source, nor one whose host asked for silence (Retry-After) or a gone one,
    unless `named`: someone asked for this very source. A gone feed that is back is then
    polled on its schedule again; a host that answers has its Retry-After lifted.
    """
    started = now()
    if not source.enabled:
        return Outcome(source.key, "skipped", note="disabled (enabled: false in the config); not polled")
    try:
        snapshot = store.poll_state(source.key, started - timedelta(seconds=WEEK), started)
    except Exception as e:  # read outside the poll's handling, it stopped every other source's poll
        return _unread(source, e)
    state = snapshot.state
    if state is not None and state.state == "gone" and not named:
        since = f" since {_shown(state.last_error_at, source)}" if state.last_error_at else ""
        return Outcome(
            source.key,
            "skipped",
            note=f"gone ({state.last_error}){since}; no longer polled: remove it from the config, "
            f"or `fetch --source {source.key}` to try it again",
        )
    fetch_url = state.url if state is not None and state.url else source.url
    try:
        host, blocked = _host_block(state, snapshot.retry_after, host_key(fetch_url), store, started)
    except Exception as e:  # as above
        return _unread(source, e)
    if blocked is not None and not named:
        note = f"rate-limited: {host} asked for no request before {_shown(blocked, source)}"
        return Outcome(source.key, "skipped", note=note)
    error: FetchError | ParseError
    refused: str | None = None
    try:
        outcome = _poll(
            source, state, fetch_url, store, fetcher, started, rng, (snapshot.recent, snapshot.dated, snapshot.oldest)
        )
        if blocked is not None and outcome.status in ("new", "updated", "unchanged"):
            if store.lift_host_block(host, blocked, now()):
                log.info("host %s answered: its Retry-After (until %s) is lifted", host, _shown(blocked, source))
        return outcome
    except (FetchError, ParseError) as e:
        error = e
    except TakenOver as e:  # not the database's fault: /healthz took it for a refusing disk for 10 minutes
        return Outcome(source.key, "skipped", note=f"{e}; polled under its new URL")
    except StoreError as e:  # disk full, read-only database: nothing of this poll stored, nothing lost
        error = FetchError(source.key, f"storing failed: {e}")
        refused = str(e)
    except Exception as e:  # a bug in one source's handling must not stop the others
        log.exception("source %s: unexpected error", source.key)
        error = FetchError(source.key, f"internal error: {type(e).__name__}: {e}")
    try:
        failed = _failed(source, state, fetch_url, store, started, error, rng)
    except StoreError as e:  # the database cannot take even this; the outcome still reports it
        message = printable(str(error))  # as `_failed` would have stored it
        log.error("source %s: %s; could not record it: %s", source.key, message, e)
        return Outcome(source.key, "error", error=message, unscheduled=True, store_error=refused or str(e))
    return failed if refused is None else replace(failed, store_error=refused)


def _unread(source: Source, e: Exception) -> Outcome:
    """The outcome of a poll whose source state could not be read (the database locked, a
    disk I/O error, a damaged page): not polled, since its validators, its Retry-After and
    whether it is gone are unknown, and nothing recorded (its error count is unknown too).
    `unscheduled` holds it back in the daemon, instead of trying it again at once."""
    if isinstance(e, StoreError):
        message, refused = printable(f"reading its state failed: {e}"), str(e)
    else:  # a bug, or a value no version of ours wrote
        log.exception("source %s: unexpected error reading its state", source.key)
        message, refused = printable(f"internal error reading its state: {type(e).__name__}: {e}"), None
    log.error("source %s: %s; not polled", source.key, message)
    return Outcome(source.key, "error", error=message, unscheduled=True, store_error=refused)


def _shown(when: datetime, source: Source) -> str:
    """A time in a line people read (`fetch`, the log, `status`' last error) as `status`
    shows its own columns: in the source's zone (the site's unless it has its own). UTC
    here, beside `status`' local times, read as a time hours off."""
    return local_time(when, ZoneInfo(source.timezone))


def _host_block(
    state: SourceState | None, stored: datetime | None, host: str, store: Store, started: datetime
) -> tuple[str, datetime | None]:
    """The host holding this source back and until when (None: no Retry-After in force).

    Two hosts may: the one its URL is on, and the one that last answered it with a
    Retry-After (`state.host`, whose Retry-After is `stored`), which is another when the
    source's URL redirects or its page links to a feed elsewhere. Checking only the first
    let every `fetch` request a host that had asked for silence, through the redirect.
    """
    blocks = [] if state is not None and state.host == host else [(store.host_retry_after(host), host)]
    if state is not None and state.host:
        blocks.append((stored, state.host))
    live = [(until, name) for until, name in blocks if until is not None and until > started]
    if not live:
        return host, None
    until, name = max(live)
    return name, until


def _poll(
    source: Source,
    state: SourceState | None,
    fetch_url: str,
    store: Store,
    fetcher: Fetcher,
    started: datetime,
    rng: random.Random | None,
    stats: tuple[dict[str, datetime], int, datetime | None],
) -> Outcome:
    # An upgrade that reads feeds otherwise (NORMALIZER_VERSION) refreshes a post when its feed
    # is next parsed; one that has not changed since (an archive answering 304, or the same
    # body) was never parsed again, and its posts kept the older reading for good (a
    # month-dated archive its fetch-time dates). A feed this version has not parsed yet is
    # read in full, once: recorded per source by the poll that parsed it, so an older daemon
    # still running beside the upgrade cannot take that read for itself.
    read = state is not None and state.read_by >= NORMALIZER_VERSION
    result = fetcher.fetch(
        replace(source, url=fetch_url),
        etag=state.etag if read and state else None,
        last_modified=state.last_modified if read and state else None,
    )
    discovered = state.discovered_url if state else None
    learnt = state.learnt_url if state else None
    redirect_url, redirect_count = _redirect_streak(state, result)
    if result.body is not None and is_html_page(result.body, result.headers.get("content-type")):
        links = find_feed_links(result.body, result.url, result.headers.get("content-type"))
        if not _may_discover(source, state, fetch_url):
            # A URL that served a feed and now answers a page (an outage or login page, a
            # captive portal) is failing, not moved: taken for a page, one such answer swapped
            # the feed for the site's main feed, for good and without a word.
            also = f"; it links to {links[0].url}: if that is the feed now, put its URL in the config" if links else ""
            raise ParseError(source.key, f"an HTML page where the feed was{also}")
        if not links:
            raise ParseError(
                source.key,
                'an HTML page, not a feed, and it links to none (no <link rel="alternate"> with a feed type)',
            )
        discovered = links[0].url
        log.info("source %s: an HTML page; polling the feed it links to: %s", source.key, discovered)
        try:
            result = fetcher.fetch(replace(source, url=discovered))
        except FetchError as e:
            e.discovered = discovered  # a 404/410 there says nothing of the page (see _failed)
            raise
        if result.body is not None and is_html_page(result.body, result.headers.get("content-type")):
            raise ParseError(source.key, f"an HTML page linking to {discovered}, which is an HTML page too")
        fetch_url, redirect_url, redirect_count = discovered, None, 0
    elif redirect_url is not None and redirect_count >= LEARN_AFTER:
        log.info(
            "source %s: permanent redirect to %s seen on %d polls in a row; polling it from now on",
            source.key,
            redirect_url,
            redirect_count,
        )
        fetch_url = learnt = redirect_url
        redirect_url, redirect_count = None, 0

    since = started - timedelta(seconds=WEEK)
    recent, dated, oldest = stats  # store.posting_stats(source.key, since, started), read with the state
    poll = PollUpdate(
        fetch_url=fetch_url,
        learnt_url=learnt,
        discovered_url=discovered,
        redirect_url=redirect_url,
        redirect_count=redirect_count,
        feed_hint=state.feed_hint if state else None,
    )

    def schedule(
        p: PollUpdate, recent: dict[str, datetime], dated: int, oldest: datetime | None
    ) -> tuple[PollUpdate, datetime]:
        cache = cache_lifetime(result.headers)
        posts, span = posting_rate(recent.values(), oldest, started)
        interval = interval_for(source, hint=p.feed_hint, cache=cache, recent_posts=posts, dated=dated > 0, span=span)
        when = next_poll(started, interval, 0, rng, source.min_interval, source.max_interval)
        return replace(p, interval=interval), when

    if result.not_modified:
        poll, when = schedule(replace(poll, result="not modified (304)"), recent, dated, oldest)
        store.record_success(source.key, started, 304, next_poll=when, poll=poll)
        return Outcome(source.key, "unchanged", note="not modified")
    body = result.body or b""
    body_hash = hashlib.sha256(body).hexdigest()
    if read and state and state.body_hash == body_hash and fetch_url == state.url:  # server ignored the conditional GET
        poll, when = schedule(replace(poll, result="same body as last time (not parsed)"), recent, dated, oldest)
        store.record_success(
            source.key,
            started,
            result.status,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=body_hash,
            next_poll=when,
            poll=poll,
        )
        return Outcome(source.key, "unchanged", note="same body")
    feed = parse_feed(source.key, body, result.url, reconcile_charset(body, result.headers))

    def schedule_after(posts: list[Post]) -> tuple[PollUpdate, datetime]:
        seen, dated_count, first = dict(recent), dated, oldest
        for p in posts:
            if p.dated:
                dated_count += 1
                first = p.published if first is None else min(first, p.published)
                if since <= p.published <= started:
                    seen.setdefault(p.id, p.published)  # its stored date: a feed re-dating its entries is not new
        return schedule(
            replace(poll, feed_hint=feed_hint(feed.info), result=counted(len(posts), "entry")), seen, dated_count, first
        )

    posts, new, updated = ingest(
        source,
        store,
        feed,
        started,
        status=result.status,
        etag=result.etag,
        last_modified=result.last_modified,
        body_hash=body_hash,
        schedule=schedule_after,
        state=state,
    )
    pruned = retain(source, store, new, started)
    status = "new" if new else "updated" if updated else "unchanged"
    if feed.warning:
        log.info("source %s: feed is not well-formed, took what could be read: %s", source.key, feed.warning)
    empty = None if posts else "the feed has no entries"  # else a first fetch read as `unchanged` and nothing more
    info = feed_info(feed.info, feed.version, feed.images, feed.itunes_images)  # as `ingest` stored it
    # (a configured `name:` is shown instead of the title: a feed retitling itself at every
    # poll then changes nothing shown, and must not cost a publish each time; an empty
    # `name: ""` is none, the title shown as the store's `name or title` shows it)
    retitled = (
        state is None
        or state.site_link != info.link
        or state.image != info.image
        or (not source.name and state.title != info.title)
    )
    return Outcome(
        source.key, status, new, updated, len(posts), warning=feed.warning, note=empty, pruned=pruned, retitled=retitled
    )


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
    schedule: Callable[[list[Post]], tuple[PollUpdate | None, datetime]] | None = None,
    state: SourceState | None = None,
) -> tuple[list[Post], int, int]:
    """Normalize → identify → filter → store a parsed feed; returns (posts, new, updated).
    Pruning by the source's retention is `retain`'s, after it.

    `schedule` turns the posts into the polling state and next-poll time to store with them
    (the adaptive interval learns from them); without it, the source's own interval.
    """
    state = state if state is not None else store.source_state(source.key, count_posts=False)
    if state is not None and state.id_key not in (None, source.key):  # it took over a source whose URL was edited
        source = replace(source, id_key=state.id_key)
    upgraded = state is not None and state.read_by < NORMALIZER_VERSION  # this version's first read of it
    posts = _hashed(source, store, normalize_entries(source, feed, when), upgraded)
    posts, told_apart = _tell_apart(source, store, posts)
    posts, identity = _identify(source, store, state, posts, told_apart)
    posts = filters.apply(source, unique(posts))
    if schedule is not None:
        poll, when_next = schedule(posts)
    else:
        poll, when_next = None, next_poll(when, source.interval, 0, None, source.min_interval, source.max_interval)
    new, updated = store.record_success(
        source.key,
        when,
        status,
        info=feed_info(feed.info, feed.version, feed.images, feed.itunes_images),
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        next_poll=when_next,
        posts=posts,
        poll=poll,
        identity=identity,
    )
    return posts, new, updated


def retain(source: Source, store: Store, new: int, when: datetime) -> int:
    """Prune the source's posts beyond its `keep_days` / `keep_per_source` after a poll
    that brought new ones; returns how many went (new ones older than `keep_days` too)."""
    if not (new and source.retention.limited):
        return 0
    return prune_source(source, store, when)


def prune_source(source: Source, store: Store, when: datetime) -> int:
    """Prune the source's posts beyond its `keep_days` / `keep_per_source` (after a poll, or on
    the daemon's hourly round), saying how many went; returns that number."""
    report = store.prune(source.key, source.retention, when)
    if report.removed:
        log.info("source %s: pruned %s", source.key, counted(report.removed, "old post"), extra={"source": source.key})
    return report.removed


def _hashed(source: Source, store: Store, posts: list[Post], upgraded: bool = False) -> list[Post]:
    """The posts, an entry without guid or link keeping the id of the post an older version
    stored it as: versions before NORMALIZER_VERSION 2 read `<link>#</link>` (before 4,
    `<link>?</link>` and a permalink `<guid>#</guid>`) as the feed's URL and identified the
    first such entry by it, and it would come again as a new post
    beside that one (`store.hashed_ids`: matched by equal title and content, once); and an
    entry with an enclosure that a version before 12 stored under its title and content
    alone keeping that post's id (`identity.earlier_hashed_ids`); `upgraded` (this version's
    first read of the feed): one an older version hashed otherwise (`_reread`)."""
    hashed = [p for p in posts if p.hashed]
    if not hashed:
        return posts
    bases = [p.guid.partition(ENCLOSED)[0] for p in hashed if ENCLOSED in p.guid]
    if bases:  # entries with an enclosure: those an older version stored without it keep their ids
        posts = earlier_hashed_ids(posts, store.hashed_posts(source.key, bases))
        hashed = [p for p in posts if p.hashed]
    known, older = store.hashed_ids(source.key, hashed)
    given = {p.guid: known[p.guid] for p in hashed if p.guid in known}
    taken = {p.id for p in posts} | set(given.values())
    for pid, title, content in older:
        p = next((q for q in hashed if q.guid not in given and (q.title, q.content) == (title, content)), None)
        if p is not None and pid not in taken:
            given[p.guid] = pid
            taken.add(pid)
    if upgraded:
        _reread(source, store, hashed, given, taken)
    return [replace(p, id=given[p.guid]) if p.hashed and p.guid in given else p for p in posts]


def _reread(source: Source, store: Store, hashed: list[Post], given: dict[str, str], taken: set[str]) -> None:
    """Into `given`: the id of the post an older NORMALIZER_VERSION stored an entry without
    guid or link as, under another hash of title and content, its sanitizer having read the
    content otherwise (13: a FeedBurner ad block, an SVG picture's name). Each such entry came
    as a new post beside the one readers had. Matched by title, date (or none) and first
    enclosure, when exactly one entry and one stored post have them; only at the first read
    after the upgrade, so that no later entry is taken for a post that left the feed."""
    unknown = [p for p in hashed if p.guid not in given]
    if not unknown:
        return
    batch = {p.guid for p in hashed}

    def key(title: str, published: datetime | None, enclosure: str | None) -> tuple[object, ...]:
        return title, published, enclosure

    entries: dict[tuple[object, ...], list[Post]] = {}
    for p in unknown:
        enclosure = enclosure_key(p.enclosures[0].url) if p.enclosures else None
        entries.setdefault(key(p.title, p.published if p.dated else None, enclosure), []).append(p)
    rows: dict[tuple[object, ...], list[str]] = {}
    for title, row in store.reread_hashed(source.key, {p.title for p in unknown}):
        if row.guid not in batch and row.id not in taken:
            rows.setdefault(key(title, row.published, row.enclosure), []).append(row.id)
    for k, ids in rows.items():
        found = entries.get(k, [])
        if len(ids) == 1 and len(found) == 1:  # more: which is which cannot be told
            given[found[0].guid] = ids[0]
            taken.add(ids[0])


def _tell_apart(source: Source, store: Store, posts: list[Post]) -> tuple[list[Post], set[str]]:
    """The posts, entries without guid sharing a link told apart as what is stored says
    (`identity.tell_apart`), and those links; the store is asked only about links that
    this feed, or one before, gave to more than one entry."""
    shared: dict[str, set[str]] = {}
    canonical: dict[str, str] = {}  # the normalizer's canonical link of each
    redirects: set[str] = set()  # FeedBurner's: its post is published under the original's link
    for p in posts:
        if p.linked and p.link:
            link = identity_link(p)  # FeedBurner's redirect, not its original: what ids are made of
            shared.setdefault(link, set()).add(p.content_hash)
            canonical[link] = p.canonical_link or ""
            if p.written_link:
                redirects.add(link)
    if not shared:
        return posts, set()
    known = store.identities_by_link(source.key, canonical.values())
    links = {
        link: canonical[link]
        for link, hashes in shared.items()
        if len(hashes) > 1 or any(shares_link(link, guid) for guid in known.get(canonical[link], ()))
    }
    if not links:
        return posts, set()
    stored, pruned = store.linked_posts(source.key, links, redirects & set(links))
    return tell_apart(posts, source.ids_from, stored, pruned, hash_before_8), set(links)


def _identify(
    source: Source, store: Store, state: SourceState | None, posts: list[Post], told_apart: set[str]
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
    return link_identity(posts, source.ids_from, stored, told_apart), change


def _redirect_streak(state: SourceState | None, result: FetchResult) -> tuple[str | None, int]:
    """The permanent redirect now pending and how many polls in a row have seen it.

    A poll that is not redirected permanently, or is redirected elsewhere, starts over:
    only the same redirect on consecutive polls is trusted enough to learn.
    """
    target = result.permanent_redirect
    if target is None:
        return None, 0
    if state is not None and state.redirect_url == target:
        return target, state.redirect_count + 1
    return target, 1


def _may_discover(source: Source, state: SourceState | None, fetch_url: str) -> bool:
    """Whether an HTML answer is a page to search for its feed: the configured URL of a source
    that never gave a feed, or whose page was searched before (its feed there since gone)."""
    if state is None or state.last_success is None:
        return True
    return bool(state.discovered_url) and fetch_url == source.url


def _failed(
    source: Source,
    state: SourceState | None,
    fetch_url: str,
    store: Store,
    when: datetime,
    error: FetchError | ParseError,
    rng: random.Random | None,
) -> Outcome:
    message = printable(str(error))  # stored, logged and printed: a server's ESC must not reach a terminal
    status = getattr(error, "status", None)
    headers = getattr(error, "headers", None) or {}
    # Not the stored interval of a fixed one: stored at the last success, it held the errors
    # after a reload that raised it (a publisher asking for fewer polls) at the old rate.
    interval = interval_in_force(source, state.interval if state else None)
    if status in (429, 503):
        until = parse_retry_after(headers.get("retry-after"), when)
        if until is None and status == 429:  # asked to slow down, without saying how long: one interval
            until = when + timedelta(seconds=interval)
        if until is not None:
            host = host_key(getattr(error, "url", None) or fetch_url)
            message = f"{message}: rate-limited, no request to {host} before {_shown(until, source)}"
            log.warning("source %s: %s", source.key, message)
            # Retry-After says "not before", not "come back then": the source's own interval
            # still holds. A server down behind `503, Retry-After: 60` on every poll was
            # polled every min_interval (5m), however long the source's interval.
            floor = max(source.min_interval, interval)
            own = not_before(when, when, floor, rng)
            store.record_rate_limit(
                source.key, when, host, until, message, status, not_before(when, until, floor, rng), own
            )
            # The host's other sources, held back meanwhile, come back spread as this one does:
            # all due at the second its Retry-After ended, they were a burst at the host that
            # had just asked for fewer requests.
            held = store.held_by_host(host, until, but=source.key)
            store.hold_for_host({key: not_before(when, until, 0, rng) for key in held}, when)
            return Outcome(source.key, "rate-limited", error=message)
    reset_to, page = None, False
    linked = getattr(error, "discovered", None)
    if status in (404, 410) and linked:
        # The page answered and links to a feed that is not there: the page is not gone, and
        # may link to another feed later; it is searched again on the next poll.
        message = f"{message} at the feed the page links to, {linked}; the page will be searched again"
    elif status in (404, 410) and state is not None and state.discovered_url and fetch_url == state.discovered_url:
        # The feed the page linked to is gone, not necessarily the page: look at the page again.
        reset_to, page = source.url, True
        message = f"{message} at the discovered feed {fetch_url}; the page {source.url} will be searched again"
    elif status in (404, 410) and state is not None and state.learnt_url and fetch_url == state.learnt_url:
        # The URL a permanent redirect pointed to is gone: the configured URL may be back (a
        # move undone, a redirect to a maintenance page); else it redirects again, or fails
        # itself. Kept, the learnt URL failed for good, and no command could unlearn it.
        reset_to = source.url
        message = f"{message} at {fetch_url} (learnt from a permanent redirect); {source.url} will be polled again"
    elif status == 410 and getattr(error, "temporary", False):
        # A temporary redirect's target is gone, not the source: the source's URL may
        # redirect elsewhere (or answer itself) tomorrow, as the 302 promised.
        message = f"{message}, through a temporary redirect: the source is polled again"
    elif status == 410:
        message = f"{message}: the feed is gone; no longer polled"
        log.warning("source %s: %s", source.key, message)
        store.record_gone(source.key, when, message, status)
        return Outcome(source.key, "gone", error=message)
    errors = (state.error_count if state else 0) + 1
    log.warning("source %s: %s (%d in a row)", source.key, message, errors)
    store.record_error(
        source.key,
        when,
        message,
        status,
        next_poll(when, interval, errors, rng, source.min_interval, source.max_interval),
        state=ERRORING if errors == 1 else BACKING_OFF,
        fetch_url=reset_to,
        page=page,
    )
    return Outcome(source.key, "error", error=message)
