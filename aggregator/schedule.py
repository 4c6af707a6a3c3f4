"""When each source is due: its interval, backoff after errors, Retry-After, and its state.

Due times live in the database (`sources.next_poll`), so a restart keeps the schedule.
Everything here is a pure function of its inputs (the clock and the random source are
arguments), so the schedule is tested without waiting for it.

`interval: auto` starts at 30 minutes and learns: the observed rate of new posts (a week
divided by the posts dated in the last week, as Miniflux does; over a history shorter than a
week, as a busy feed's first fetch is, that span divided by the posts after its oldest, see
`posting_rate`), never more often than the publisher asks (RSS `<ttl>`,
`sy:updatePeriod`/`sy:updateFrequency`, `Cache-Control: max-age`, `Expires`), and always
within `min_interval`..`max_interval`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from .models import FeedInfo, Source

MIN_INTERVAL = 300.0
MAX_INTERVAL = 86400.0
START_INTERVAL = 1800.0
JITTER = 0.10
WEEK = 7 * 86400.0
MIN_SPAN = 300.0  # posts whose dates spread over less than this tell no posting rate (a batch published at once)

# the states `aggregator status` shows, exactly these (`new`, never polled, as /metrics says)
OK, ERRORING, BACKING_OFF, RATE_LIMITED, GONE, DISABLED, NEW = (
    "ok",
    "erroring",
    "backing off",
    "rate-limited",
    "gone",
    "disabled",
    "new",
)
STATES = (OK, ERRORING, BACKING_OFF, RATE_LIMITED, GONE, DISABLED, NEW)


def clamp(seconds: float, low: float = MIN_INTERVAL, high: float = MAX_INTERVAL) -> float:
    return max(low, min(seconds, max(low, high)))


def backoff(interval: float, errors: int, max_interval: float = MAX_INTERVAL) -> float:
    """The wait after `errors` consecutive failures: the first is retried at the normal
    interval, each one after that doubles the wait (interval × 2^(errors-1)), capped."""
    if errors <= 1:
        return interval
    return min(interval * 2 ** min(errors - 1, 30), max(max_interval, interval))


def next_poll(
    now: datetime,
    interval: float,
    errors: int = 0,
    rng: random.Random | None = None,
    min_interval: float = 0.0,
    max_interval: float = MAX_INTERVAL,
) -> datetime:
    """now + the interval (backed off after errors), ±10% so sources drift apart, clamped."""
    seconds = backoff(interval, errors, max_interval)
    jitter = (rng or random).uniform(-JITTER, JITTER)
    return now + timedelta(seconds=clamp(seconds * (1 + jitter), min_interval, max(max_interval, interval)))


def not_before(now: datetime, until: datetime, min_interval: float, rng: random.Random | None = None) -> datetime:
    """A poll time no earlier than `until` (Retry-After) nor `min_interval` from now, jittered
    only later, so the sources of one rate-limited host do not all return at the same second."""
    earliest = max(until, now + timedelta(seconds=min_interval))
    wait = (earliest - now).total_seconds()
    return earliest + timedelta(seconds=wait * (rng or random).uniform(0, JITTER))


def feed_hint(info: FeedInfo | None) -> float | None:
    """How long the feed itself says it stays fresh (seconds): the longer of <ttl> and sy:*."""
    if info is None:
        return None
    hints = [h for h in (info.ttl_minutes * 60.0 if info.ttl_minutes else None, info.update_seconds) if h]
    return max(hints) if hints else None


def cache_lifetime(headers: dict[str, str]) -> float | None:
    """Seconds the response says it stays fresh: Cache-Control max-age, else Expires − Date."""
    control = headers.get("cache-control", "").lower()
    if "no-cache" in control or "no-store" in control:
        return None
    m = re.search(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", control)
    if m:
        seconds = float(m.group(1))
        return seconds if seconds > 0 else None
    expires = _http_date(headers.get("expires"))
    date = _http_date(headers.get("date"))
    if expires is None or date is None:
        return None
    seconds = (expires - date).total_seconds()
    return seconds if seconds > 0 else None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:  # a header sent twice arrives joined ("date1, date2"): the first is an IMF-fixdate
            dt = parsedate_to_datetime(value[:29])
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)  # HTTP dates are GMT, however written


def posting_rate(stamps: Collection[datetime], oldest: datetime | None, now: datetime) -> tuple[int, float]:
    """(posts, seconds they came in): the rate `interval_for` learns, from the dates of a
    source's posts dated in the last week (`stamps`, one per post) and of its oldest dated post.

    A week and the posts in it, unless what is known of the feed spans less than a week: a
    feed holding its last 10 posts of the last 90 minutes, read as 10 posts a week, was polled
    every 16.8 hours and lost ~90 posts before each poll. Then the span from the oldest post
    to now and the posts after the oldest, which only opens it, provided the posts' own dates
    spread over MIN_SPAN or more: a batch published at once (a digest, a migrated blog) read
    as posts seconds apart and was polled at min_interval. The shorter gap wins. (A feed that
    changes its entries and re-dates them to the minutes before every fetch is polled at
    min_interval: it does change every time.)
    """
    week = (len(stamps), WEEK)
    if oldest is None or not stamps or (now - oldest).total_seconds() >= WEEK:
        return week
    if (max(stamps) - oldest).total_seconds() < MIN_SPAN:
        return week
    span = (now - oldest).total_seconds()
    after = sum(1 for s in stamps if s > oldest)
    if after and span / after < WEEK / len(stamps):
        return after, span
    return week


def interval_for(
    source: Source,
    *,
    hint: float | None = None,
    cache: float | None = None,
    recent_posts: int = 0,
    dated: bool = False,
    span: float = WEEK,
) -> float:
    """The interval to use next: fixed, or learnt (`interval: auto`), always clamped.

    `recent_posts`: posts dated within the last `span` seconds (see `posting_rate`); `dated`:
    whether the feed dates its posts at all (an undated feed tells nothing about its rate).
    """
    if not source.adaptive:
        return clamp(source.interval, source.min_interval, source.max_interval)
    seconds = source.interval or START_INTERVAL
    if dated:
        seconds = span / recent_posts if recent_posts else source.max_interval
    floors = [s for s in (hint, cache) if s]
    if floors:  # polling more often than the publisher says the feed changes finds nothing
        seconds = max(seconds, max(floors))
    return clamp(seconds, source.min_interval, source.max_interval)


def interval_in_force(source: Source, stored: float | None) -> float:
    """The interval a source polls at now: the one learnt and stored for `interval: auto`, else
    the config's as it is now (a reload that changed it holds at once, errors included).

    A learnt one is held within the config's `min_interval`..`max_interval` as they are now:
    learnt under a larger `max_interval`, it kept a source re-timed by a reload (and retried
    after errors) at the old maximum until its next success."""
    if source.adaptive and stored:
        return clamp(stored, source.min_interval, source.max_interval)
    return interval_for(source)


def poll_state(
    *,
    enabled: bool,
    gone: bool,
    errors: int,
    rate_limited_until: datetime | None,
    now: datetime,
    polled: bool = True,
) -> str:
    """What the poller is doing with a source, as `status` shows it.

    `polled`: whether a poll of it ever succeeded or failed (one only told to wait by a 429
    or 503 did neither); one never polled is `new`, as /metrics counts it, not `ok`, which
    would claim a success (unless its host's Retry-After holds it back: that says why it is
    not polled yet).
    """
    if not enabled:
        return DISABLED
    if gone:
        return GONE
    if rate_limited_until is not None and rate_limited_until > now:
        return RATE_LIMITED
    if not polled:
        return NEW
    if errors >= 2:
        return BACKING_OFF
    if errors == 1:
        return ERRORING
    return OK


def stored_state(
    *,
    enabled: bool,
    stored: str | None,
    errors: int,
    succeeded: bool,
    rate_limited_until: datetime | None,
    now: datetime,
) -> str:
    """The state of a source from what the database holds: the one rule `status` shows and
    /metrics counts. The stored `state` column tells only `gone`: it says nothing of a host's
    Retry-After holding back its other sources, of one that has ended, or of `enabled: false`.

    `stored`: its `state` column; `succeeded`: a poll of it ever succeeded.
    """
    return poll_state(
        enabled=enabled,
        gone=stored == GONE,
        errors=errors,
        rate_limited_until=rate_limited_until,
        now=now,
        # a poll that succeeded or failed: one whose only answers were 429/503 is still new
        # once its host's Retry-After is lifted, not `ok`, which would claim a success
        polled=succeeded or errors > 0,
    )
