"""When to poll: intervals learnt or fixed, backoff, jitter, Retry-After, and the states shown."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from aggregator.hosts import host_key, parse_retry_after
from aggregator.models import FeedInfo, Source
from aggregator.schedule import (
    STATES,
    backoff,
    cache_lifetime,
    feed_hint,
    interval_for,
    next_poll,
    not_before,
    poll_state,
    posting_rate,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
AUTO = Source(key="https://a.example/feed", url="https://a.example/feed", adaptive=True)


class NoJitter(random.Random):
    """The injectable RNG pinned to the middle of its range, so times come out exact."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2 if a < 0 < b else a


def seconds(dt: datetime) -> float:
    return (dt - NOW).total_seconds()


def test_backoff_doubles_after_the_first_failure_and_is_capped():
    assert [backoff(600, n) for n in range(1, 6)] == [600, 1200, 2400, 4800, 9600]
    assert backoff(600, 40, max_interval=86400) == 86400  # capped, and no overflow
    assert backoff(600, 0) == 600


def test_next_poll_uses_backoff_and_clamps():
    rng = NoJitter()
    assert seconds(next_poll(NOW, 600, 0, rng)) == 600
    assert seconds(next_poll(NOW, 600, 3, rng)) == 2400
    assert seconds(next_poll(NOW, 600, 30, rng, 300, 7200)) == 7200
    assert seconds(next_poll(NOW, 60, 0, rng, 300, 7200)) == 300  # never below min_interval


def test_jitter_spreads_sources_within_ten_percent():
    rng = random.Random(42)
    waits = [seconds(next_poll(NOW, 1800, 0, rng)) for _ in range(200)]
    assert all(1620 <= w <= 1980 for w in waits)
    assert len(set(waits)) > 150, "sources would poll in lockstep"
    assert min(waits) < 1700 and max(waits) > 1900  # the whole ±10% band is used


def test_not_before_waits_for_retry_after_and_min_interval_jittering_only_later():
    rng = random.Random(1)
    for _ in range(50):
        at = not_before(NOW, NOW + timedelta(seconds=3600), 300, rng)
        assert 3600 <= seconds(at) <= 3960
        short = not_before(NOW, NOW + timedelta(seconds=30), 300, rng)
        assert 300 <= seconds(short) <= 330


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache-control": "public, max-age=7200"}, 7200),
        ({"cache-control": "max-age=0"}, None),
        ({"cache-control": "no-cache, max-age=600"}, None),
        ({"expires": "Fri, 01 Mar 2024 15:00:00 GMT", "date": "Fri, 01 Mar 2024 12:00:00 GMT"}, 10800),
        ({"expires": "0", "date": "Fri, 01 Mar 2024 12:00:00 GMT"}, None),
        ({"expires": "Fri, 01 Mar 2024 11:00:00 GMT", "date": "Fri, 01 Mar 2024 12:00:00 GMT"}, None),
        ({}, None),
    ],
)
def test_cache_lifetime(headers, expected):
    assert cache_lifetime(headers) == expected


def test_feed_hint_takes_the_longer_of_ttl_and_sy():
    assert feed_hint(FeedInfo(ttl_minutes=90)) == 5400
    assert feed_hint(FeedInfo(update_seconds=3600.0)) == 3600
    assert feed_hint(FeedInfo(ttl_minutes=30, update_seconds=7200.0)) == 7200
    assert feed_hint(FeedInfo()) is None


def test_adaptive_interval_learns_from_rate_and_hints_within_bounds():
    assert interval_for(AUTO) == 1800  # nothing known yet: start at 30m
    assert interval_for(AUTO, recent_posts=20, dated=True) == 7 * 86400 / 20  # a post every 8.4h
    assert interval_for(AUTO, recent_posts=5000, dated=True) == 300  # busy: clamped to min_interval
    assert interval_for(AUTO, recent_posts=0, dated=True) == 86400  # quiet for a week: max_interval
    assert interval_for(AUTO, recent_posts=0, dated=False) == 1800  # undated: the rate tells nothing
    # the publisher's hints are floors: never poll more often than the feed says it changes
    assert interval_for(AUTO, hint=7200, recent_posts=500, dated=True) == 7200
    assert interval_for(AUTO, cache=3 * 3600) == 3 * 3600
    assert interval_for(AUTO, hint=30 * 86400) == 86400  # ...but within max_interval
    tight = Source(key="k", url="k", adaptive=True, min_interval=60, max_interval=600)
    assert interval_for(tight, recent_posts=1, dated=True) == 600


def _every(minutes: float, count: int, newest: datetime = NOW) -> list[datetime]:
    """The dates of `count` posts, one every `minutes`, the newest at `newest`."""
    return [newest - timedelta(minutes=minutes * i) for i in range(count)]


def _learnt(stamps: list[datetime], oldest: datetime | None = None, source: Source = AUTO) -> float:
    """The interval a source whose dated posts are `stamps` (its oldest at `oldest`) is given at NOW."""
    recent = [s for s in stamps if NOW - timedelta(days=7) <= s <= NOW]
    posts, span = posting_rate(recent, oldest or min(stamps), NOW)
    return interval_for(source, recent_posts=posts, dated=True, span=span)


def test_a_busy_feeds_first_fetch_is_read_at_its_own_rate_not_a_weeks():
    """10 posts of the last 90 minutes were read as 10 a week: polled every 16.8 hours, the feed
    (which holds its last 10) lost ~90 posts before each poll for the two days it took to learn."""
    busy = _every(10, 10)
    assert posting_rate(busy, min(busy), NOW) == (9, 5400)  # the oldest opens the span: 9 posts after it
    assert _learnt(busy) == 600  # a post every 10 minutes: a poll every 10 minutes
    # the next poll brings one more: the same rate
    assert _learnt(_every(10, 11, NOW)) == 600
    # daily news, 50 posts over the last 2 days: ~once an hour (a week's count: every 3.4h)
    assert _learnt(_every(48 * 60 / 49, 50)) == pytest.approx(2 * 86400 / 49)
    # tighter than min_interval, clamped; the publisher's hints still floor it
    assert _learnt(_every(1, 10)) == 300
    assert interval_for(AUTO, hint=3600, recent_posts=9, dated=True, span=5400) == 3600
    assert interval_for(AUTO, cache=1800, recent_posts=9, dated=True, span=5400) == 1800


def test_a_feed_of_few_or_old_posts_keeps_a_long_interval():
    # a weekly blog, 10 posts over 10 weeks: one this week → max_interval, as before
    weekly = _every(7 * 86400 / 60, 10)
    assert posting_rate([NOW], min(weekly), NOW) == (1, 7 * 86400)
    assert _learnt(weekly) == 86400
    # a busy feed of long ago (10 posts 10 minutes apart, 3 days back): the span runs to now
    assert _learnt(_every(10, 10, NOW - timedelta(days=3))) == pytest.approx((3 * 86400 + 5400) / 9)
    # posts all older than a week: max_interval
    assert _learnt(_every(10, 10, NOW - timedelta(days=8))) == 86400
    # one post a minute old tells no rate: the week's count
    assert posting_rate([NOW - timedelta(minutes=1)], NOW - timedelta(minutes=1), NOW) == (1, 7 * 86400)
    # a feed dating every entry when it was generated: no post after the oldest, the week's count
    same = [NOW - timedelta(minutes=1)] * 20
    assert posting_rate(same, same[0], NOW) == (20, 7 * 86400) and _learnt(same) == 7 * 86400 / 20
    # a few posts of the last minutes, or a batch published at once: no rate, the week's count
    assert posting_rate(_every(1, 3), NOW - timedelta(minutes=2), NOW) == (3, 7 * 86400)
    assert posting_rate(_every(1, 6), NOW - timedelta(minutes=5), NOW) == (5, 300)  # 5 minutes: a rate
    batch = _every(0.01, 10, NOW - timedelta(hours=2))
    assert posting_rate(batch, min(batch), NOW) == (10, 7 * 86400)
    # the denser of the two wins: two posts 6 days apart are 2 a week (one after the oldest in 6 days)
    two = [NOW - timedelta(days=6), NOW]
    assert posting_rate(two, two[0], NOW) == (2, 7 * 86400)
    # nothing dated: the rate is left alone, as before
    assert posting_rate([], None, NOW) == (0, 7 * 86400)
    assert interval_for(AUTO, recent_posts=0, dated=False, span=5400) == 1800


def test_fixed_interval_ignores_hints():
    fixed = Source(key="k", url="k", interval=900)
    assert interval_for(fixed, hint=7200, cache=7200, recent_posts=1000, dated=True) == 900


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("120", NOW) == NOW + timedelta(seconds=120)
    date = format_datetime(NOW + timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(date, NOW) == NOW + timedelta(minutes=5)
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == NOW  # past: now
    assert parse_retry_after("99999999999", NOW) == NOW + timedelta(days=7)  # absurd: capped
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None


def test_host_key():
    assert host_key("https://Example.COM/feed") == "example.com"
    assert host_key("https://example.com:443/feed") == "example.com"
    assert host_key("http://example.com:8080/feed") == "example.com:8080"
    assert host_key("http://user:pw@example.com/feed") == "example.com"


def test_poll_state_precedence_and_the_exact_names():
    assert STATES == ("ok", "erroring", "backing off", "rate-limited", "gone", "disabled", "new")
    later = NOW + timedelta(minutes=1)
    kw = {"enabled": True, "gone": False, "errors": 0, "rate_limited_until": None, "now": NOW}
    assert poll_state(**kw) == "ok"
    assert poll_state(**{**kw, "errors": 1}) == "erroring"
    assert poll_state(**{**kw, "errors": 2}) == "backing off"
    assert poll_state(**{**kw, "errors": 5, "rate_limited_until": later}) == "rate-limited"
    assert poll_state(**{**kw, "rate_limited_until": NOW - timedelta(seconds=1)}) == "ok"  # block over
    assert poll_state(**{**kw, "gone": True, "rate_limited_until": later}) == "gone"
    assert poll_state(**{**kw, "enabled": False, "gone": True}) == "disabled"
    assert poll_state(**{**kw, "polled": False}) == "new"
    assert poll_state(**{**kw, "polled": False, "rate_limited_until": later}) == "rate-limited"  # why it waits
    assert poll_state(**{**kw, "polled": False, "enabled": False}) == "disabled"
