"""`aggregator fetch` and `aggregator status` as a user runs them, one source in each state."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
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
        assert not daemon.messages("later than its interval settings allow"), daemon.log
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()


# -- status only reads ----------------------------------------------------------------------


def _two_sources_fetched(tmp_path, httpserver: HTTPServer) -> tuple[Path, list[str]]:
    """A database as `aggregator fetch` leaves it, of two sources (its config: `feeds.yaml`)."""
    for name in ("a", "b"):
        httpserver.expect_request(f"/{name}.xml").respond_with_data(FEED, content_type="application/rss+xml")
    urls = [httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")]
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(_config(urls), encoding="utf-8")
    done = run_cli("--config", str(cfg), "fetch")
    assert done.returncode == 0, done.stdout + done.stderr
    return cfg, urls


def _config(urls: list[str], database: Path | None = None) -> str:
    where = f"  database: {database}\n" if database else ""
    return f"site:\n  title: S\n  url: https://example.org/\n{where}categories:\n  - name: A\n    sources:\n" + "".join(
        f"      - url: {u}\n" for u in urls
    )


def _as_is(db: Path) -> tuple[bytes, list[str], list[str]]:
    """Everything that would tell a write: the file's bytes, its -wal/-shm/-journal, its dump."""
    conn = sqlite3.connect(f"{db.absolute().as_uri()}?immutable=1", uri=True)
    try:
        dump = list(conn.iterdump())
    finally:
        conn.close()
    return db.read_bytes(), sorted(p.name for p in db.parent.glob(db.name + "*")), dump


def test_status_with_a_draft_config_leaves_the_database_byte_identical(tmp_path, httpserver: HTTPServer, monkeypatch):
    """`status` (and `export-opml`) with a config that left a source out made it inactive and
    forgot its categories in the live database (the daemon's): looking changed what was seen."""
    monkeypatch.setenv("COLUMNS", "250")  # the table's cells on one line each
    cfg, (a, b) = _two_sources_fetched(tmp_path, httpserver)
    db = tmp_path / "aggregator.db"
    before = _as_is(db)
    added = httpserver.url_for("/c.xml")  # in the draft only: never stored
    draft = tmp_path / "draft.yaml"
    draft.write_text(_config([a, added], database=db), encoding="utf-8")

    shown = run_cli("--config", str(draft), "status", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {r["url"]: r for r in json.loads(shown.stdout)}
    assert list(rows) == [a, added]  # as configured: the one left out is not shown
    assert rows[a]["state"] == "ok" and rows[a]["posts"] == 2
    assert rows[added]["state"] == "new" and rows[added]["posts"] == 0 and rows[added]["next_poll"] is None
    table = run_cli("--config", str(draft), "status")
    assert table.returncode == 0 and "at once (never polled)" in table.stdout, table.stdout + table.stderr
    opml = run_cli("--config", str(draft), "export-opml")
    assert opml.returncode == 0 and added in opml.stdout, opml.stderr
    assert _as_is(db) == before  # not a byte, not a -wal or -shm created beside it

    live = run_cli("--config", str(cfg), "status", "--json")  # the live config: both, as they were
    assert [(r["url"], r["state"], r["posts"]) for r in json.loads(live.stdout)] == [(a, "ok", 2), (b, "ok", 2)]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT key, active FROM sources ORDER BY key").fetchall() == [(a, 1), (b, 1)]
    assert conn.execute("SELECT count(*) FROM source_categories").fetchone()[0] == 2
    conn.close()


@pytest.mark.parametrize("how", ["permissions", "chattr"])
def test_status_reads_a_database_it_may_not_write(tmp_path, httpserver: HTTPServer, monkeypatch, how):
    """`status` wrote (the config's sources into the database) before it read: on a read-only
    file or folder it said `attempt to write a readonly database`, exit 1, as on a full disk.
    Read-only for real: root without the capability that writes any file (as a service user
    is), or a file and folder made immutable (`chattr +i`), which binds root too."""
    monkeypatch.setenv("COLUMNS", "250")  # the table's cells on one line each
    setpriv = shutil.which("setpriv")  # util-linux: on every Debian system
    assert setpriv, "setpriv (util-linux) is missing"
    data = tmp_path / "data"
    data.mkdir()
    db = data / "news.db"
    for name in ("a", "b"):
        httpserver.expect_request(f"/{name}.xml").respond_with_data(FEED, content_type="application/rss+xml")
    urls = [httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")]
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(_config(urls, database=db), encoding="utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    wanted = run_cli("--config", str(cfg), "status", "--json")
    before = _as_is(db)

    def as_user(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "aggregator", "--config", str(cfg), *args]
        if how == "permissions":
            command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ)

    if how == "permissions":
        db.chmod(0o444)
        data.chmod(0o555)
    else:
        for path in (db, data):
            made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if made.returncode != 0:
                subprocess.run(["chattr", "-i", str(db)], capture_output=True)
                pytest.skip(f"chattr +i is not supported here: {made.stderr.strip()}")
    try:
        probe = [sys.executable, "-c", f"open({str(data / 'probe')!r}, 'w')"]
        if how == "permissions":
            probe = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *probe]
        assert subprocess.run(probe, capture_output=True).returncode != 0  # the folder really is read-only
        shown = as_user("status", "--json")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == wanted.stdout
        table = as_user("status")
        assert table.returncode == 0 and urls[0] in table.stdout, table.stderr
        opml = as_user("export-opml")
        assert opml.returncode == 0 and urls[1] in opml.stdout, opml.stderr
        copy = as_user("backup", str(tmp_path / "copy.db"))
        assert copy.returncode == 0 and "2 sources, 4 posts" in copy.stdout, copy.stderr
        assert _as_is(db) == before
    finally:
        if how == "permissions":
            data.chmod(0o755)
            db.chmod(0o644)
        else:
            for path in (data, db):
                subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    backup = sqlite3.connect(tmp_path / "copy.db")
    assert backup.execute("SELECT count(*) FROM posts").fetchone()[0] == 4
    backup.close()


def test_status_answers_while_a_writer_holds_a_write_transaction(tmp_path, httpserver: HTTPServer):
    """`status` took the write lock to sync the sources: while the daemon held a write
    transaction it waited (30 s), then failed `database is locked`. It reads beside the writer
    now, what the writer last committed, and the writer commits when it is done."""
    cfg, (a, b) = _two_sources_fetched(tmp_path, httpserver)
    writer = sqlite3.connect(tmp_path / "aggregator.db", isolation_level=None)
    try:
        writer.execute("UPDATE sources SET last_error = 'committed', error_count = 1 WHERE key = ?", [a])
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE sources SET last_error = 'not yet', error_count = 2 WHERE key = ?", [b])
        began = time.monotonic()
        shown = run_cli("--config", str(cfg), "status", "--json", timeout=25)
        assert shown.returncode == 0, shown.stderr
        assert time.monotonic() - began < 20  # not after the 30 s busy timeout
        rows = {r["url"]: r for r in json.loads(shown.stdout)}
        assert (rows[a]["state"], rows[a]["last_error"]) == ("erroring", "committed")
        assert (rows[b]["state"], rows[b]["last_error"]) == ("ok", None)
        writer.execute("COMMIT")  # status held nothing that stops the writer
    finally:
        writer.close()
    rows = {r["url"]: r for r in json.loads(run_cli("--config", str(cfg), "status", "--json").stdout)}
    assert (rows[b]["state"], rows[b]["last_error"]) == ("backing off", "not yet")


def test_status_reads_a_database_of_an_older_version_without_upgrading_it(tmp_path):
    """Opening the database for `status` migrated it (a write): it reads an older file as it
    is now, and leaves the upgrade to the next command that writes; a newer file is refused."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)  # the first version's tables: no hosts, no `enabled`, no `host`
    conn.executescript(
        "CREATE TABLE sources (key TEXT PRIMARY KEY, url TEXT NOT NULL, name TEXT, title TEXT, site_link TEXT, "
        "etag TEXT, last_modified TEXT, body_hash TEXT, last_fetch TEXT, last_success TEXT, last_status INTEGER, "
        "last_error TEXT, error_count INTEGER, next_poll TEXT, state TEXT, active INTEGER);"
        "CREATE TABLE posts (id TEXT PRIMARY KEY, source TEXT NOT NULL, guid TEXT NOT NULL, title TEXT NOT NULL, "
        "link TEXT, published TEXT NOT NULL, updated TEXT NOT NULL, content TEXT, summary TEXT, authors TEXT, "
        "tags TEXT, enclosures TEXT, language TEXT, comments TEXT, content_hash TEXT, first_seen TEXT, dated INTEGER);"
        "CREATE TABLE source_categories (source TEXT, category TEXT, PRIMARY KEY (source, category));"
        "PRAGMA journal_mode = WAL;"
    )
    url = "https://old.example/feed.xml"
    conn.execute(
        "INSERT INTO sources VALUES (?, ?, NULL, 'Old', NULL, NULL, NULL, NULL, '2026-11-01T10:00:00+00:00', "
        "'2026-11-01T10:00:00+00:00', 200, NULL, 0, '2026-11-01T10:30:00+00:00', 'ok', 1)",
        [url, url],
    )
    conn.execute(
        "INSERT INTO posts (id, source, guid, title, published, updated) VALUES ('p', ?, 'g', 'T', "
        "'2026-11-01T09:00:00+00:00', '2026-11-01T09:00:00+00:00')",
        [url],
    )
    conn.commit()
    conn.close()
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(_config([url, "https://new.example/feed.xml"], database=db), encoding="utf-8")
    before = _as_is(db)
    shown = run_cli("--config", str(cfg), "status", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [(r["state"], r["posts"], r["name"], r["last_status"]) for r in rows] == [
        ("ok", 1, "Old", 200),
        ("new", 0, "https://new.example/feed.xml", None),
    ]
    assert _as_is(db) == before

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    newer = run_cli("--config", str(cfg), "status")
    assert newer.returncode == 1 and f"database {db} is from a newer aggregator (schema 99)" in newer.stderr
