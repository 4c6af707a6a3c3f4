"""`aggregator run` as a subprocess: polls at the interval, publishes, stops cleanly on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer

from .conftest import CORPUS
from .daemon_support import Daemon, FeedServer, fetched
from .pollrig import rss

CONFIG = """\
site:
  title: Daemon test
  url: https://example.org/
categories:
  - name: News
    sources:
      - url: {url}
        interval: 1s
        min_interval: 1s
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_polls_at_interval_publishes_and_stops_on_signal(tmp_path, httpserver: HTTPServer, sig):
    body = (CORPUS / "zh" / "gansu-economy.atom").read_bytes()
    httpserver.expect_request("/feed").respond_with_data(body, content_type="application/atom+xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(url=httpserver.url_for("/feed")), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(cfg), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(httpserver.log) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(httpserver.log) >= 3, "the daemon did not poll again at its 1s interval"
        atom = tmp_path / "public" / "category" / "news.atom"
        while not (atom.exists() and "兰州新区" in atom.read_text(encoding="utf-8")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "兰州新区" in atom.read_text(encoding="utf-8"), "the daemon did not publish what it fetched"
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "stopped" in err


@pytest.mark.parametrize("named", ["", '        name: ""\n'])
def test_a_feed_retitled_with_no_new_entry_is_republished_under_its_new_title(tmp_path, named):
    """The daemon published a source's categories only after a poll that brought new or
    changed posts: a feed that renamed itself (or moved its home page) was stored under the
    new title, yet every page, feed and the OPML named it by the old one until a post changed.
    An empty `name: ""` names nothing: the feed's title is shown, and its change counts."""
    feeds = FeedServer()
    dated = datetime(2026, 11, 1, tzinfo=UTC)
    feeds.routes["/f"] = (rss(title="Old Title", items=3, dated=dated), "application/rss+xml", 0.0)
    url = feeds.url("/f")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(url=url) + named, encoding="utf-8")
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(url, "new"))
        daemon.wait_for(lambda r: r.get("categories") == ["news"])
        feeds.routes["/f"] = (rss(title="New Title", items=3, dated=dated), "application/rss+xml", 0.0)
        daemon.wait_for(fetched(url, "unchanged"))  # the same entries
        daemon.wait_for(lambda r: r.get("categories") == ["news"], count=2)
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
        feeds.close()
    public = tmp_path / "public"
    for page in ("category/news.html", "category/news.atom", "opml.xml", "index.html"):
        text = (public / page).read_text(encoding="utf-8")
        assert "New Title" in text and "Old Title" not in text, page


def test_a_named_source_whose_feed_retitles_itself_at_every_poll_costs_no_publish(tmp_path):
    """A configured `name:` is shown instead of the feed's title: a feed putting the time in
    its title changed nothing shown, yet each poll republished its categories."""
    feeds = FeedServer()
    dated = datetime(2026, 11, 1, tzinfo=UTC)
    feeds.routes["/f"] = (rss(title="Title at 10:00", items=3, dated=dated), "application/rss+xml", 0.0)
    url = feeds.url("/f")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(url=url) + "        name: Desk\n", encoding="utf-8")
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(url, "new"))
        daemon.wait_for(lambda r: r.get("categories") == ["news"])
        for minute in range(1, 4):
            feeds.routes["/f"] = (rss(title=f"Title at 10:0{minute}", items=3, dated=dated), "application/rss+xml", 0.0)
            daemon.wait_for(fetched(url, "unchanged"), count=minute)
        time.sleep(0.5)  # a publish the last poll asked for has been logged
        published = [r for r in daemon.records if r.get("categories") == ["news"]]
        assert len(published) == 1, daemon.log
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
        feeds.close()
