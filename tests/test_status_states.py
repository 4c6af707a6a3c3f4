"""`aggregator fetch` and `aggregator status` as a user runs them, one source in each state."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import load_config
from aggregator.metrics import Metrics
from aggregator.schedule import STATES
from aggregator.store import Store

from .conftest import run_cli
from .daemon_support import Daemon, fetched
from .pollrig import rss

FEED = rss(items=2)


def test_status_shows_each_state_and_fetch_skips_what_it_must(tmp_path, httpserver: HTTPServer, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # the table as a wide terminal shows it, one line per row part
    calls = {"flaky": 0}

    def flaky(request: Request) -> Response:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            return Response(FEED, content_type="application/rss+xml")
        return Response("oops", status=502)

    httpserver.expect_request("/ok").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    httpserver.expect_request("/down").respond_with_data("boom", status=500)
    httpserver.expect_request("/gone").respond_with_data("gone", status=410)
    httpserver.expect_request("/limited").respond_with_data("", status=429, headers={"Retry-After": "3600"})
    httpserver.expect_request("/off").respond_with_data(FEED, content_type="application/rss+xml")
    url = httpserver.url_for
    limited = url("/limited").replace("localhost", "127.0.0.1")  # its own host, so it holds back no other
    sources = {
        "ok": url("/ok"),
        "erroring": url("/flaky"),
        "backing off": url("/down"),
        "gone": url("/gone"),
        "rate-limited": limited,
        "disabled": url("/off"),
    }
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: States\n  url: https://example.org/\ncategories:\n  - name: All\n    sources:\n"
        + "".join(f"      - url: {u}\n" for u in sources.values())
        + "        enabled: false\n",
        encoding="utf-8",
    )

    first = run_cli("--config", str(cfg), "fetch")
    assert first.returncode == 1, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert f"gone       {sources['gone']}: HTTP 410 GONE: the feed is gone; no longer polled" in lines
    assert any(line.startswith(f"rate-limited {limited}: HTTP 429") for line in lines)
    assert any(line.startswith(f"skipped    {sources['disabled']}: disabled") for line in lines)
    assert "6 sources: 2 new, 0 updated, 0 unchanged, 2 failed, 1 rate-limited, 1 skipped" in lines[-1]

    second = run_cli("--config", str(cfg), "fetch")  # "poll now": due or not, except what must be skipped
    assert second.returncode == 1
    lines = second.stdout.splitlines()
    assert any(line.startswith(f"skipped    {sources['gone']}: gone (HTTP 410 GONE") for line in lines)
    assert any(line.startswith(f"skipped    {limited}: rate-limited: 127.0.0.1:") for line in lines)
    assert any(line.startswith(f"unchanged  {sources['ok']}") for line in lines)
    assert "6 sources: 0 new, 0 updated, 1 unchanged, 2 failed, 3 skipped" in lines[-1]
    served = [req.path for req, _ in httpserver.log]
    assert served.count("/ok") == 2 and served.count("/gone") == 1 and served.count("/limited") == 1
    assert "/off" not in served

    sources["new"] = url("/new")  # added after the fetches: never polled
    cfg.write_text(cfg.read_text(encoding="utf-8") + f"      - url: {sources['new']}\n", encoding="utf-8")
    result = run_cli("--config", str(cfg), "status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["url"]: r for r in json.loads(result.stdout)}
    assert {state: rows[u]["state"] for state, u in sources.items()} == {s: s for s in sources}
    assert set(sources) == set(STATES)
    for row in rows.values():  # the old keys are all still there, with the new ones
        for key in ("url", "fetch_url", "name", "categories", "state", "last_fetch", "last_success", "last_status"):
            assert key in row
        for key in ("last_error", "errors", "posts", "next_poll", "learnt_url", "last_error_at", "consecutive_errors"):
            assert key in row
    assert rows[sources["erroring"]]["errors"] == 1 and rows[sources["erroring"]]["last_success"]
    assert rows[sources["erroring"]]["last_error"] == "HTTP 502 BAD GATEWAY"
    assert rows[sources["backing off"]]["errors"] == 2 and rows[sources["backing off"]]["last_success"] is None
    assert rows[limited]["errors"] == 0 and rows[limited]["rate_limited_until"]
    assert rows[sources["gone"]]["next_poll"] is None and rows[sources["disabled"]]["next_poll"] is None
    assert rows[sources["ok"]]["next_poll"] > rows[sources["ok"]]["last_success"]

    table = run_cli("--config", str(cfg), "status")
    assert table.returncode == 0
    for state in STATES:
        assert state in table.stdout
    for text in ("HTTP 502", "HTTP 500", "HTTP 410", "HTTP 429", "never: gone (HTTP 410)", "never: enabled: false"):
        assert text in table.stdout, text


def test_naming_a_source_polls_it_through_its_hosts_retry_after_and_an_answer_lifts_it(
    tmp_path, httpserver: HTTPServer
):
    httpserver.expect_request("/limited").respond_with_data("", status=429, headers={"Retry-After": "99999999"})
    httpserver.expect_request("/good").respond_with_data(FEED, content_type="application/rss+xml")
    limited, good = httpserver.url_for("/limited"), httpserver.url_for("/good")  # one host
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: S\n  url: https://example.org/\n"
        f"categories:\n  - name: All\n    sources:\n      - url: {limited}\n      - url: {good}\n",
        encoding="utf-8",
    )
    run_cli("--config", str(cfg), "fetch", "--source", limited)  # 429: the whole host waits (a week at most)
    held = run_cli("--config", str(cfg), "fetch")
    assert held.returncode == 0, held.stdout + held.stderr
    assert held.stdout.count("rate-limited: ") == 2  # both skipped: the host asked for silence

    named = run_cli("--config", str(cfg), "-v", "fetch", "--source", good)
    assert named.returncode == 0, named.stdout + named.stderr
    assert named.stdout.startswith(f"new        {good}"), named.stdout
    assert "its Retry-After (until" in named.stderr and "is lifted" in named.stderr
    db = sqlite3.connect(tmp_path / "aggregator.db")
    (due, polled) = db.execute("SELECT next_poll, last_fetch FROM sources WHERE key = ?", [limited]).fetchone()
    db.close()
    # due again on its own schedule (30 minutes for `auto`'s first interval, jittered), not at once:
    # it had just been polled, and answered 429; nor when the (week-long) Retry-After would have ended
    since = datetime.fromisoformat(due) - datetime.fromisoformat(polled)
    assert timedelta(minutes=30) <= since <= timedelta(minutes=30 * 1.1 + 1), (due, polled)
    rows = {r["url"]: r for r in json.loads(run_cli("--config", str(cfg), "status", "--json").stdout)}
    assert rows[limited]["state"] == "new", rows[limited]  # its only answer was a 429: not `ok`
    assert rows[good]["state"] == "ok"
    after = run_cli("--config", str(cfg), "fetch")  # the host answered: its sources are polled again
    # (`good` too, unless the fresh 429 of `limited`, polled first, holds the host back again)
    assert f"rate-limited {limited}: HTTP 429" in after.stdout, after.stdout


def test_status_piped_keeps_a_long_url_on_one_line(tmp_path, httpserver: HTTPServer, monkeypatch):
    monkeypatch.setenv("COLUMNS", "")  # as unset (deleted, pytest's children still see 80)
    path = "/feeds/" + "very-long-segment-" * 16 + "feed.xml"  # ~300 characters of URL
    httpserver.expect_request(path).respond_with_data(FEED, content_type="application/rss+xml")
    url = httpserver.url_for(path)
    cfg = tmp_path / "feeds.yaml"
    head = "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
    cfg.write_text(f"{head}      - url: {url}\n")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    status = run_cli("--config", str(cfg), "status")
    assert status.returncode == 0 and any(url in line for line in status.stdout.splitlines()), status.stdout


def test_status_on_an_80_column_terminal_folds_urls_not_dates(tmp_path, httpserver: HTTPServer, monkeypatch):
    """On an 80-column terminal every date was folded mid-token (`2026-11-2` over `9`)."""
    monkeypatch.setenv("COLUMNS", "80")
    path = "/feeds/" + "segment-" * 8 + "feed.xml"
    httpserver.expect_request(path).respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/gone.xml").respond_with_data("no", status=404)
    cfg = tmp_path / "feeds.yaml"
    head = "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
    sources = f"      - url: {httpserver.url_for(path)}\n      - url: {httpserver.url_for('/gone.xml')}\n"
    cfg.write_text(head + sources)
    assert run_cli("--config", str(cfg), "fetch").returncode == 1
    status = run_cli("--config", str(cfg), "status")
    lines = status.stdout.splitlines()
    assert status.returncode == 0 and max(map(len, lines)) <= 80, status.stdout
    today = datetime.now(UTC).date().isoformat()
    # last success and next poll of one, last error and next poll of the other: each whole
    assert sum(line.count(today) for line in lines) >= 4, status.stdout


def test_a_source_never_polled_is_new_in_status_as_in_metrics(tmp_path, monkeypatch):
    """Just added, or the daemon stopped during its first poll: nothing is known of it, so
    `status` must not call it `ok` (a success it never had); /metrics counts it as `new`."""
    monkeypatch.setenv("COLUMNS", "250")
    cfg = tmp_path / "feeds.yaml"
    head = "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
    cfg.write_text(f"{head}      - url: http://127.0.0.1:9/never.xml\n", encoding="utf-8")
    with Store(tmp_path / "aggregator.db") as store:  # as the daemon leaves it when stopped mid-poll
        store.sync_sources(load_config(cfg).sources)
    result = run_cli("--config", str(cfg), "status", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["state"] == "new" and row["last_success"] is None and row["last_fetch"] is None
    with Store(tmp_path / "aggregator.db") as store:
        assert store.stats().sources_by_state == {"new": 1}  # what /metrics exports
    table = run_cli("--config", str(cfg), "status")
    assert table.returncode == 0, table.stderr
    (line,) = [line for line in table.stdout.splitlines() if "never.xml" in line]
    assert " new " in line and " ok " not in line and "at once (never polled)" in line, table.stdout


def test_status_before_any_fetch_shows_every_source_new_and_creates_no_database(tmp_path, monkeypatch):
    """Run by another user (`sudo aggregator status`) before the service's first start, a
    database created by `status` would belong to that user, and the service could not write it."""
    monkeypatch.setenv("COLUMNS", "250")
    cfg = tmp_path / "feeds.yaml"
    db = tmp_path / "data" / "news.db"
    cfg.write_text(
        f"site:\n  title: S\n  url: https://example.org/\n  database: {db}\ncategories:\n  - name: A\n    sources:\n"
        "      - url: http://127.0.0.1:9/a.xml\n      - url: http://127.0.0.1:9/b.xml\n        enabled: false\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "status", "--json")
    assert result.returncode == 0, result.stderr
    assert [(r["url"], r["state"]) for r in json.loads(result.stdout)] == [
        ("http://127.0.0.1:9/a.xml", "new"),
        ("http://127.0.0.1:9/b.xml", "disabled"),
    ]
    assert f"no database yet at {db}" in result.stderr
    assert not db.exists() and not db.parent.exists()
    table = run_cli("--config", str(cfg), "status")
    assert table.returncode == 0 and "a.xml" in table.stdout and not db.parent.exists()


def test_a_database_folder_that_cannot_be_entered_is_one_error_line_not_a_traceback(tmp_path):
    """`status`, `fetch`, `export-opml` and `backup` looked for the database with a stat that
    raised PermissionError (a traceback); each now says which folder it may not enter. Run
    as root without the capabilities that let root enter any folder, as a service user would."""
    import os
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")  # util-linux: on every Debian system
    assert setpriv, "setpriv (util-linux) is missing"
    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: S\n  url: https://example.org/\n  database: {data / 'news.db'}\ncategories:\n"
        "  - name: A\n    sources:\n      - url: http://127.0.0.1:9/a.xml\n",
        encoding="utf-8",
    )
    data.chmod(0o600)  # readable, not searchable
    try:
        for command in (["status"], ["fetch"], ["export-opml"], ["backup", str(tmp_path / "copy.db")]):
            done = subprocess.run(
                [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", sys.executable, "-m", "aggregator",
                 "--config", str(cfg), *command],
                capture_output=True, text=True, timeout=120, env=os.environ,
            )  # fmt: skip
            assert done.returncode == 1, (command, done.stderr)
            assert "Traceback" not in done.stderr, done.stderr
            assert f"no permission to enter {data}" in done.stderr, done.stderr
    finally:
        data.chmod(0o755)


def test_a_poll_long_overdue_asks_whether_the_daemon_runs(tmp_path, httpserver: HTTPServer, monkeypatch):
    """With the daemon stopped, `status` went on showing a next poll an hour gone as if it
    were to come: a poll overdue past any daemon's delay is marked, in the table and the JSON."""
    from datetime import timedelta

    monkeypatch.setenv("COLUMNS", "250")
    httpserver.expect_request("/a.xml").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/b.xml").respond_with_data(FEED, content_type="application/rss+xml")
    a, b = httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")
    cfg = tmp_path / "feeds.yaml"
    head = "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
    cfg.write_text(f"{head}      - url: {a}\n      - url: {b}\n", encoding="utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    with Store(tmp_path / "aggregator.db") as store:  # a was due 3 hours ago, b 5 minutes ago
        store.set_next_poll(a, datetime.now(UTC) - timedelta(hours=3))
        store.set_next_poll(b, datetime.now(UTC) - timedelta(minutes=5))
    rows = {r["url"]: r for r in json.loads(run_cli("--config", str(cfg), "status", "--json").stdout)}
    assert rows[a]["overdue"] is True and rows[b]["overdue"] is False
    table = run_cli("--config", str(cfg), "status").stdout
    assert table.count("overdue by") == 1 and "overdue by 3h: is `aggregator run` running?" in table, table


def test_status_and_metrics_count_a_hosts_retry_after_alike(tmp_path, httpserver: HTTPServer):
    """One source's 429 holds back its host's other sources too: `status` showed both
    `rate-limited`, /metrics counted one `ok` (the stored state of the other). And a disabled
    source was counted by its last poll's state, not as `disabled`."""
    httpserver.expect_request("/limited").respond_with_data("", status=429, headers={"Retry-After": "600"})
    httpserver.expect_request("/good").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/off").respond_with_data(FEED, content_type="application/rss+xml")
    limited, good = httpserver.url_for("/limited"), httpserver.url_for("/good")  # one host
    off = httpserver.url_for("/off").replace("localhost", "127.0.0.1")  # another
    cfg = tmp_path / "feeds.yaml"
    head = "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: All\n    sources:\n"
    listed = f"{head}      - url: {good}\n      - url: {limited}\n      - url: {off}\n"
    cfg.write_text(listed, encoding="utf-8")
    run_cli("--config", str(cfg), "fetch")  # good: ok, then limited: 429 for the whole host
    cfg.write_text(listed + "        enabled: false\n", encoding="utf-8")
    rows = json.loads(run_cli("--config", str(cfg), "status", "--json").stdout)
    shown = {r["url"]: r["state"] for r in rows}
    assert shown == {good: "rate-limited", limited: "rate-limited", off: "disabled"}, shown
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        metrics = Metrics(store.stats)
        body, _ = metrics.render()
    counted = {
        s.labels["state"]: s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "aggregator_sources" and s.value
    }
    assert counted == {"rate-limited": 2, "disabled": 1}, counted


def test_lifting_a_hosts_retry_after_gives_its_other_sources_their_own_schedule_back(tmp_path, httpserver: HTTPServer):
    """`fetch --source` lifted the Retry-After, but the host's other sources kept the next poll
    it had pushed them to (5 minutes on a 15 s interval), and `run` took that for a clock set back."""
    answers = {"/c.xml": 429}

    def c(request: Request) -> Response:
        if answers["/c.xml"] == 429:
            return Response("", status=429, headers={"Retry-After": "300"})
        return Response(FEED, content_type="application/rss+xml")

    httpserver.expect_request("/a.xml").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/c.xml").respond_with_handler(c)
    a, c_url = httpserver.url_for("/a.xml"), httpserver.url_for("/c.xml")  # one host
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: All\n    sources:\n"
        + "".join(f"      - url: {u}\n        interval: 15s\n        min_interval: 10s\n" for u in (a, c_url)),
        encoding="utf-8",
    )
    first = run_cli("--config", str(cfg), "fetch")  # a: new; c: 429, which pushes a past the Retry-After
    assert f"rate-limited {c_url}: HTTP 429" in first.stdout, first.stdout
    answers["/c.xml"] = 200
    named = run_cli("--config", str(cfg), "fetch", "--source", c_url)
    assert named.returncode == 0, named.stdout + named.stderr
    rows = {r["url"]: r for r in json.loads(run_cli("--config", str(cfg), "status", "--json").stdout)}
    assert rows[a]["state"] == "ok" and rows[a]["rate_limited_until"] is None
    own = datetime.fromisoformat(rows[a]["last_success"]) + timedelta(seconds=15 * 1.1 + 1)
    assert datetime.fromisoformat(rows[a]["next_poll"]) <= own, rows[a]  # not the 5 minutes of c's Retry-After

    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(a), timeout=25)  # on its own 15 s schedule
        assert not daemon.messages("later than it could be"), daemon.log
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
