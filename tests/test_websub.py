"""WebSub: every feed names the hub, and the hub is told (HTTP POST hub.mode=publish) about
each feed file that changed; a hub that fails is logged and never stops publishing, nor
holds up publishing, polling or shutdown."""

from __future__ import annotations

import json
import signal
import time

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import load_config
from aggregator.daemon import Daemon as InProcessDaemon
from aggregator.publish import publish
from aggregator.publish.websub import HubPinger, ping_hub
from aggregator.store import Store

from .conftest import run_cli
from .daemon_support import FEEDS as DAEMON_FEEDS
from .daemon_support import Daemon, FeedServer, HangingHub, fetched, refusing_url, write_config

A = "{http://www.w3.org/2005/Atom}"
CONFIG = """\
site:
  title: WebSub
  url: https://news.example.org/
  websub_hub: {hub}
categories:
  - name: Economy
    sources:
      - url: {base}zh/gansu-economy.atom
"""
FEEDS = {
    f"https://news.example.org/{name}.{ext}" for name in ("category/economy", "feed") for ext in ("atom", "rss", "json")
}


def pings(server: HTTPServer) -> list[tuple[str, str]]:
    return [(req.form.get("hub.mode"), req.form.get("hub.url")) for req, _ in server.log if req.path == "/hub"]


def test_changed_feeds_are_announced_once(tmp_path, httpserver: HTTPServer, corpus_server):
    hub = httpserver.url_for("/hub")
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(hub=hub, base=corpus_server.base), encoding="utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    got = pings(httpserver)
    assert sorted(got) == sorted(("publish", url) for url in FEEDS)
    assert all(req.headers["Content-Type"] == "application/x-www-form-urlencoded" for req, _ in httpserver.log)

    out = tmp_path / "public"
    atom = etree.parse(str(out / "category" / "economy.atom")).getroot()
    assert atom.find(f"{A}link[@rel='hub']").get("href") == hub
    rss = etree.parse(str(out / "feed.rss")).getroot()
    assert rss.find(f"channel/{A}link[@rel='hub']").get("href") == hub
    assert json.loads((out / "feed.json").read_text("utf-8"))["hubs"] == [{"type": "WebSub", "url": hub}]

    again = run_cli("--config", str(cfg), "publish")
    assert again.returncode == 0 and again.stdout.startswith("0 files written")
    assert len(pings(httpserver)) == len(FEEDS)  # nothing changed, nothing announced


def test_a_private_hubs_credentials_go_to_the_hub_only_never_into_the_feeds(tmp_path, httpserver: HTTPServer):
    """`websub_hub: http://pub:pw@hub/hub?token=…` (a private hub taking pings only from its
    publisher): the pings carry the credentials, and every feed announced the hub with them,
    for any reader to take. The feeds announce it without them now, as OPML gives a source's URL."""
    hub = httpserver.url_for("/hub").replace("://", "://pub:hubpw1@") + "?token=t0k3n&site=news"
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": "http://127.0.0.1:9/x"}], f"  websub_hub: {hub}")
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        publish(settings, store, force=True)
    sent = [(req.authorization and req.authorization.password, req.args.get("token")) for req, _ in httpserver.log]
    assert sent and set(sent) == {("hubpw1", "t0k3n")}
    announced = httpserver.url_for("/hub") + "?site=news"
    out = tmp_path / "public"
    assert etree.parse(str(out / "feed.atom")).getroot().find(f"{A}link[@rel='hub']").get("href") == announced
    assert json.loads((out / "feed.json").read_text("utf-8"))["hubs"] == [{"type": "WebSub", "url": announced}]
    published = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"hubpw1" not in published and b"t0k3n" not in published


def test_a_failing_or_missing_hub_is_logged_not_fatal(tmp_path, httpserver: HTTPServer, corpus_server):
    httpserver.expect_request("/hub", method="POST").respond_with_data("hub is broken", status=500)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(hub=httpserver.url_for("/hub"), base=corpus_server.base), encoding="utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed: HTTP 500: hub is broken" in result.stderr
    assert len(pings(httpserver)) == len(FEEDS)
    assert (tmp_path / "public" / "index.html").is_file()

    down = tmp_path / "down.yaml"
    down.write_text(
        CONFIG.format(hub="http://127.0.0.1:9/hub", base=corpus_server.base).replace(
            "title: WebSub", "title: WebSub down"
        ),
        encoding="utf-8",
    )
    result = run_cli("--config", str(down), "publish")
    assert result.returncode == 0, result.stderr
    assert "WebSub hub http://127.0.0.1:9/hub: ping for https://news.example.org/" in result.stderr


def test_ping_hub_counts(httpserver: HTTPServer):
    httpserver.expect_request("/ok", method="POST").respond_with_data("", status=202)
    assert ping_hub(httpserver.url_for("/ok"), ["https://a/x.atom", "https://a/x.atom", "https://a/y.rss"]) == (2, 0)
    assert ping_hub(httpserver.url_for("/missing"), ["https://a/x.atom"]) == (0, 1)
    assert ping_hub(httpserver.url_for("/ok"), []) == (0, 0)


@pytest.fixture
def hanging_hub():
    hub = HangingHub()
    yield hub
    hub.close()


def websub_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "WebSub" in line]


def test_a_hub_that_never_answers_holds_fetch_up_once_not_per_feed(tmp_path, hanging_hub, corpus_server):
    """Six changed feeds, one timeout of 10 s: not six (a minute) before `fetch` returned."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(hub=hanging_hub.url, base=corpus_server.base), encoding="utf-8")
    started = time.monotonic()
    result = run_cli("--config", str(cfg), "fetch")
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert took < 20, f"took {took:.0f}s:\n{result.stderr}"
    for url in FEEDS:
        assert (tmp_path / "public" / url.removeprefix("https://news.example.org/")).is_file()
    lines = websub_lines(result.stderr)
    assert len(lines) == 2, lines
    assert "failed: timed out after 10 s" in lines[0]
    assert lines[1].endswith("5 pings skipped: the hub did not connect or answer")
    assert len(hanging_hub.conns) == 1


def test_hub_failures_are_one_short_line(tmp_path, httpserver: HTTPServer, corpus_server):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(hub=refusing_url(), base=corpus_server.base), encoding="utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = websub_lines(result.stderr)
    assert len(lines) == 2, lines
    assert lines[0].endswith("failed: connection refused"), lines
    assert "5 pings skipped" in lines[1]
    assert "Max retries" not in result.stderr and "NewConnectionError" not in result.stderr

    page = "<html><head><title>503 Service Unavailable</title></head><body><h1>Busy</h1></body></html>"
    httpserver.expect_request("/hub", method="POST").respond_with_data(page, status=503, content_type="text/html")
    cfg.write_text(CONFIG.format(hub=httpserver.url_for("/hub"), base=corpus_server.base), encoding="utf-8")
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stderr
    lines = websub_lines(result.stderr)
    assert len(lines) == len(FEEDS), lines  # an answering hub is asked for each feed
    assert all(line.endswith("failed: HTTP 503") for line in lines), lines
    assert "<html>" not in result.stderr


def test_a_proxy_that_is_down_is_named_not_the_hub(monkeypatch, caplog):
    """Behind a proxy that is down, every ping said `connection refused` of the hub."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", refusing_url().removesuffix("/hub"))
    with caplog.at_level("WARNING"):
        assert ping_hub("http://hub.example.invalid/hub", ["https://a/x.atom"]) == (0, 1)
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.endswith("failed: cannot reach the proxy (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY): connection refused")


@pytest.mark.parametrize("proxy", ["op:s3cret@127.0.0.1:3128", "http://op:s3/cret@127.0.0.1:3128"])
def test_a_proxy_url_that_cannot_be_read_is_named_not_the_hub(monkeypatch, caplog, proxy):
    """A proxy written without its scheme, or with a password's '/' not percent-encoded,
    failed every ping as `invalid hub URL`: the operator looked at a websub_hub that is right."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with caplog.at_level("WARNING"):
        assert ping_hub("http://hub.example.invalid/hub", ["https://a/x.atom"]) == (0, 1)
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.endswith("failed: invalid proxy URL (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY)")
    assert "cret" not in message


def test_a_long_text_answer_is_cut_to_one_short_line(httpserver: HTTPServer, caplog):
    httpserver.expect_request("/hub", method="POST").respond_with_data("why " * 100 + "\nmore", status=400)
    with caplog.at_level("WARNING"):
        assert ping_hub(httpserver.url_for("/hub"), ["https://a/x.atom"]) == (0, 1)
    (message,) = [r.getMessage() for r in caplog.records]
    reason = message.split("failed: ", 1)[1]
    assert reason.startswith("HTTP 400: why why") and len(reason) <= len("HTTP 400: ") + 80, message
    assert "\n" not in message and "more" not in message


def test_pinger_sends_a_pending_feed_once_and_drops_the_hubs_others_when_it_hangs(hanging_hub):
    """When a ping goes unanswered, the hub's pings that were waiting behind it are dropped;
    one asked for while it hung (a later publish: the hub may be back) is tried."""
    pinger = HubPinger(timeout=1.0).start()
    pinger.add(hanging_hub.url, ["https://a/x.atom", "https://a/w.atom"])
    deadline = time.monotonic() + 8
    while not hanging_hub.conns and time.monotonic() < deadline:
        time.sleep(0.01)
    pinger.add(hanging_hub.url, ["https://a/y.atom", "https://a/y.atom"])
    pinger.add(hanging_hub.url, ["https://a/y.atom"])  # changed again while pending: pinged once
    assert pinger.pending == 3  # x being sent, w and y waiting
    while pinger.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pinger.pending == 0 and len(hanging_hub.conns) == 2  # x, then y; w dropped with the hub down
    assert (pinger.accepted, pinger.failed) == (0, 3)
    assert pinger.failing is not None and pinger.failing[1].endswith("timed out after 1 s")
    assert pinger.retrying == 3  # x, w and y, in 30 s
    pinger.add(hanging_hub.url, ["https://a/z.atom"])
    started = time.monotonic()
    assert pinger.stop(0.3) == 4  # z, being sent: not waited for; the retries dropped
    assert time.monotonic() - started < 1.0


EDITED = DAEMON_FEEDS[0].read_bytes().replace("300.2亿元".encode(), "301.0亿元".encode())


def test_daemon_publishes_and_stops_without_waiting_for_a_hung_hub(tmp_path, hanging_hub):
    feeds = FeedServer()
    try:
        url = feeds.feed("/a", DAEMON_FEEDS[0])
        hub = f"  websub_hub: {hanging_hub.url}"
        cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1s"}], hub)
        daemon = Daemon(cfg, "--grace", "5s")
        try:
            daemon.wait_for(fetched(url, "new"))
            daemon.wait_for(lambda r: "c0" in (r.get("categories") or []))  # behind the start-up publish's pings
            feeds.routes["/a"] = (EDITED, "application/atom+xml", 0.0)
            edited = time.monotonic()
            daemon.wait_for(fetched(url, "updated"), timeout=8)
            daemon.wait_for(lambda r: "c0" in (r.get("categories") or []), count=2, timeout=8)
            assert time.monotonic() - edited < 8  # the first ping alone waits 10 s for the hub
            assert "301.0" in (tmp_path / "public" / "category" / "c0.atom").read_text("utf-8")
            rc = daemon.stop()
        finally:
            daemon.kill()
    finally:
        feeds.close()
    assert rc == 0, daemon.log
    assert daemon.exit_time is not None and daemon.exit_time < 5.0, f"took {daemon.exit_time:.1f}s\n{daemon.log}"
    dropped = daemon.messages(r"^stopping: \d+ pings? to the WebSub hub dropped")
    assert dropped, daemon.log
    assert daemon.records[-1]["message"] == "stopped"


def test_health_tells_a_failing_hub_without_calling_it_a_problem(tmp_path):
    hub = refusing_url().replace("://", "://pub:hubpw2@")  # its password never in /healthz
    source = {"url": "http://127.0.0.1:9/x", "interval": "1h"}
    cfg = write_config(tmp_path / "feeds.yaml", [source], f"  websub_hub: {hub}")
    settings = load_config(cfg)
    with Store(settings.database) as store:
        daemon = InProcessDaemon(settings, store)
        daemon.scheduler.start()
        daemon.pinger.start()
        try:
            assert daemon._publish(None)  # returns with the pings still to send
            deadline = time.monotonic() + 10
            while (daemon.pinger.pending or daemon.pinger.failing is None) and time.monotonic() < deadline:
                time.sleep(0.02)
            ok, detail = daemon.health()
        finally:
            daemon.pinger.stop(1.0)
            daemon.scheduler.shutdown(wait=False)
            daemon.fetcher.close()
            daemon.pool.shutdown()
    assert ok and detail["problems"] == [], detail
    websub = detail["websub"]
    assert websub["pending"] == 0 and websub["accepted"] == 0 and websub["failed"] >= 1, websub
    assert websub["failing"].endswith(f"{hub.replace('hubpw2', '***')}: connection refused"), websub
    assert "hubpw2" not in json.dumps(detail)


def test_a_second_stop_signal_gives_pending_pings_no_time(tmp_path, hanging_hub):
    """The first signal waits for the poll in flight and gives pings what is left of the
    grace period (2 s at most); the second abandons at once: the pings too."""
    feeds = FeedServer()
    try:
        url = feeds.feed("/a", DAEMON_FEEDS[0])
        cfg = write_config(
            tmp_path / "feeds.yaml", [{"url": url, "interval": "1s"}], f"  websub_hub: {hanging_hub.url}"
        )
        daemon = Daemon(cfg, "--grace", "10s")
        try:
            daemon.wait_for(fetched(url, "new"))
            feeds.stalled.add("/a")  # the next poll hangs: in flight when the signals come
            deadline = time.monotonic() + 15
            while feeds.hits["/a"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert feeds.hits["/a"] >= 2 and hanging_hub.conns, daemon.log  # a poll and a ping hang
            daemon.send(signal.SIGTERM)
            daemon.wait_for(lambda r: "stopping" in r["message"])
            rc = daemon.stop(signal.SIGTERM)
        finally:
            feeds.release.set()
            daemon.kill()
    finally:
        feeds.close()
    assert rc == 0, daemon.log
    dropped = daemon.messages(r"pings? to the WebSub hub dropped")
    assert dropped and dropped[-1]["message"].endswith("(not sent within 0 s)"), daemon.log


def test_a_failed_ping_is_tried_again_until_the_hub_takes_it_or_given_up(httpserver: HTTPServer, caplog):
    """A hub down for a while never heard of the feeds that changed meanwhile until they
    changed again: the daemon's pinger tries a failed ping again after each delay, and gives
    it up with one line after the last; a new change of the feed is sent at once."""
    answers = {"/ok": [503, 503, 202], "/down": [503] * 10}
    seen: list[tuple[str, str]] = []

    def hub(request: Request) -> Response:
        seen.append((request.path, request.form["hub.url"]))
        return Response("", status=answers[request.path].pop(0))

    httpserver.expect_request("/ok", method="POST").respond_with_handler(hub)
    httpserver.expect_request("/down", method="POST").respond_with_handler(hub)
    caplog.set_level("WARNING", logger="aggregator.publish.websub")
    pinger = HubPinger(timeout=5.0, retry_delays=(0.2, 0.2)).start()
    try:
        pinger.add(httpserver.url_for("/ok"), ["https://a/x.atom"])
        pinger.add(httpserver.url_for("/down"), ["https://a/y.atom"])
        deadline = time.monotonic() + 10
        while (pinger.pending or pinger.retrying) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (pinger.pending, pinger.retrying) == (0, 0)
        assert seen.count(("/ok", "https://a/x.atom")) == 3 and seen.count(("/down", "https://a/y.atom")) == 3
        assert (pinger.accepted, pinger.failed) == (1, 5)
        gave_up = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
        down = httpserver.url_for("/down")
        assert gave_up == [f"WebSub hub {down}: ping for https://a/y.atom given up after 3 tries"]
        slow = HubPinger(timeout=5.0, retry_delays=(60.0,)).start()
        try:
            slow.add(httpserver.url_for("/down"), ["https://a/z.atom"])
            while not slow.retrying and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.retrying == 1  # in a minute, unless the feed changes again:
            slow.add(httpserver.url_for("/down"), ["https://a/z.atom"])
            while seen.count(("/down", "https://a/z.atom")) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert seen.count(("/down", "https://a/z.atom")) == 2  # sent at once
        finally:
            slow.stop(0)
    finally:
        pinger.stop(0)
