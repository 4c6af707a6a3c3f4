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
