"""`aggregator fetch` polls sources in parallel, as many at once as `site.workers` allows."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from .conftest import run_cli
from .pollrig import rss

FEED = rss(items=1)


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0


def _server(counter: _Counter) -> http.server.ThreadingHTTPServer:
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            with counter.lock:
                counter.active += 1
                counter.peak = max(counter.peak, counter.active)
            time.sleep(0.3)
            with counter.lock:
                counter.active -= 1
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.mark.parametrize(("workers", "peak"), [(16, 4), (2, 2)])
def test_fetch_polls_sources_in_parallel_up_to_workers(tmp_path, workers, peak):
    counter = _Counter()
    servers = [_server(counter) for _ in range(4)]  # four hosts (ports), so per_host does not bind
    try:
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            f"site:\n  title: P\n  url: https://example.org/\n  workers: {workers}\n"
            "categories:\n  - name: All\n    sources:\n"
            + "".join(f"      - url: http://127.0.0.1:{s.server_address[1]}/feed\n" for s in servers),
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 sources: 4 new" in result.stdout
    assert counter.peak == peak
