"""`aggregator run` as a subprocess: polls at the interval, publishes, stops cleanly on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from pytest_httpserver import HTTPServer

from .conftest import CORPUS

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
