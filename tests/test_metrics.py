"""/metrics content from a real store: what the database knows plus what this process counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from aggregator.metrics import Metrics
from aggregator.models import Source
from aggregator.store import Store


def _src(url: str) -> Source:
    return Source(key=url, url=url)


def _samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    body, ctype = metrics.render()
    assert ctype.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_from_the_store_and_the_process(tmp_path):
    store = Store(tmp_path / "a.db")
    store.sync_sources([_src("http://a/"), _src("http://b/"), _src("http://c/")])
    metrics = Metrics(store.stats)
    samples = _samples(metrics)
    assert samples[("aggregator_sources", (("state", "new"),))] == 3
    assert samples[("aggregator_sources", (("state", "ok"),))] == 0
    assert samples[("aggregator_posts_stored", ())] == 0
    assert ("aggregator_last_successful_poll_timestamp_seconds", ()) not in samples  # never polled
    assert samples[("aggregator_fetches_total", (("outcome", "error"),))] == 0  # present before the first poll

    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.record_success("http://a/", when, 200, next_poll=when + timedelta(hours=1))
    store.record_error("http://b/", when, "HTTP 500", 500, when + timedelta(hours=1))
    metrics.fetches.labels("new").inc()
    metrics.fetches.labels("error").inc()
    metrics.fetch_duration.observe(0.3)
    metrics.fetch_duration.observe(12)
    metrics.publish_duration.observe(0.02)
    samples = _samples(metrics)
    assert samples[("aggregator_sources", (("state", "ok"),))] == 1
    assert samples[("aggregator_sources", (("state", "erroring"),))] == 1
    assert samples[("aggregator_sources", (("state", "new"),))] == 1
    assert samples[("aggregator_last_successful_poll_timestamp_seconds", ())] == when.timestamp()
    assert samples[("aggregator_fetches_total", (("outcome", "new"),))] == 1
    assert samples[("aggregator_fetch_duration_seconds_bucket", (("le", "0.5"),))] == 1
    assert samples[("aggregator_fetch_duration_seconds_bucket", (("le", "30.0"),))] == 2
    assert samples[("aggregator_fetch_duration_seconds_sum", ())] == 12.3
    assert samples[("aggregator_publish_duration_seconds_count", ())] == 1

    # a source removed from the config no longer counts
    store.sync_sources([_src("http://a/")])
    samples = _samples(metrics)
    assert sum(v for (name, _), v in samples.items() if name == "aggregator_sources") == 1
    store.close()


def test_two_daemons_in_one_process_have_separate_metrics(tmp_path):
    with Store(tmp_path / "a.db") as one, Store(tmp_path / "b.db") as two:
        m1, m2 = Metrics(one.stats), Metrics(two.stats)
        m1.fetches.labels("new").inc()
        assert _samples(m2)[("aggregator_fetches_total", (("outcome", "new"),))] == 0
