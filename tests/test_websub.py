"""WebSub: every feed names the hub, and the hub is told (HTTP POST hub.mode=publish) about
each feed file that changed; a hub that fails is logged and never stops publishing."""

from __future__ import annotations

import json

from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator.publish.websub import ping_hub

from .conftest import run_cli

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
