"""Prometheus metrics of the daemon, in the text exposition format, for `/metrics`.

Counters and histograms of what this process did (fetch outcomes and durations, publish
durations, reloads) live in memory; what the database knows (sources by state, posts
stored, the last successful poll) is read from the store at scrape time, so those survive
restarts and agree with `aggregator status`. Each daemon has its own registry: nothing
is global, so tests and embedders may run several.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .schedule import STATES as SOURCE_STATES
from .store import StoreStats

disable_created_metrics()  # the `_created` series double the output and say nothing a restart count does not

OUTCOMES = ("new", "updated", "unchanged", "error")
# every state `status` shows, always exported (0 when none is in it): a series that appeared
# only while non-zero (`gone`, `rate-limited`) could not be alerted on, nor graphed from 0
STATES = SOURCE_STATES
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PUBLISH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StoreCollector(Collector):
    def __init__(self, stats: Callable[[], StoreStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        by_state = GaugeMetricFamily("aggregator_sources", "Configured sources by state.", labels=["state"])
        for state in sorted(set(STATES) | set(stats.sources_by_state)):
            by_state.add_metric([state], stats.sources_by_state.get(state, 0))
        yield by_state
        yield GaugeMetricFamily("aggregator_posts_stored", "Posts in the database.", value=stats.posts)
        if stats.last_success is not None:
            yield GaugeMetricFamily(
                "aggregator_last_successful_poll_timestamp_seconds",
                "Unix time of the most recent successful poll of any source.",
                value=stats.last_success.timestamp(),
            )


class Metrics:
    def __init__(self, stats: Callable[[], StoreStats]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        info = Gauge("aggregator_build_info", "The running version.", ["version"], registry=r)
        info.labels(__version__).set(1)
        self.fetches = Counter("aggregator_fetches", "Polls finished, by outcome.", ["outcome"], registry=r)
        for outcome in OUTCOMES:
            self.fetches.labels(outcome)
        self.fetch_duration = Histogram(
            "aggregator_fetch_duration_seconds",
            "Time to poll one source: fetch, parse, normalize, store.",
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("aggregator_fetches_in_flight", "Polls running now.", registry=r)
        self.publish_duration = Histogram(
            "aggregator_publish_duration_seconds",
            "Time to publish changed outputs.",
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.publish_errors = Counter("aggregator_publish_errors", "Publishes that failed.", registry=r)
        self.reloads = Counter("aggregator_config_reloads", "Config reloads, by result.", ["result"], registry=r)
        for result in ("applied", "rejected"):
            self.reloads.labels(result)
        r.register(_StoreCollector(stats))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
