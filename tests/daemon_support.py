"""Helpers for tests that run the real daemon as a subprocess against local feed servers."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import CORPUS

# Corpus feeds with distinct entries, one per test source.
FEEDS = [
    CORPUS / "zh" / "gansu-economy.atom",
    CORPUS / "zh" / "zhangye-daily.gbk.rss",
    CORPUS / "kagi" / "fastfeedparser__benchmark_data_c8ffd33cfd9f8891.xml",
]


def write_config(path: Path, sources: list[dict[str, Any]], site_extra: str = "") -> Path:
    """One category per source (slug c0, c1, ...), so publishes can be told apart.

    `sources`: dicts with `url` and optional `interval`, `max_interval` and `timeout`; the one place test configs are
    written, should a new setting (e.g. a minimum interval) need to be added to all.
    """
    lines = ["site:", "  title: Daemon test", "  url: https://example.org/", *site_extra.splitlines(), "categories:"]
    for i, src in enumerate(sources):
        lines += [f"  - name: Cat {i}", f"    slug: c{i}", "    sources:", f"      - url: {src['url']}"]
        if "interval" in src:
            lines.append(f"        interval: {src['interval']}")
            lines.append("        min_interval: 1s")  # tests poll far faster than the 5m floor
        if "max_interval" in src:
            lines.append(f"        max_interval: {src['max_interval']}")
        if "timeout" in src:
            lines.append(f"        timeout: {src['timeout']}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class FeedServer:
    """A threaded stdlib HTTP server: each path answers with a corpus feed after `delay` seconds,
    or stalls (holds the connection without answering) until closed. Counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str, float]] = {}
        self.stalled: set[str] = set()
        self.hits: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.release = threading.Event()
        self.arrived = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                path = self.path.split("?")[0]
                with outer.arrived:
                    outer.hits[path] += 1
                    outer.times.setdefault(path, []).append(time.monotonic())
                    outer.arrived.notify_all()
                if path in outer.stalled:
                    outer.release.wait(60)
                    return
                route = outer.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                body, ctype, delay = route
                if delay:
                    time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            block_on_close = False

        self.httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def feed(self, path: str, source: Path, delay: float = 0.0) -> str:
        ctype = "application/atom+xml" if source.suffix == ".atom" else "application/xml"
        self.routes[path] = (source.read_bytes(), ctype, delay)
        return self.url(path)

    def stall(self, path: str) -> str:
        self.stalled.add(path)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def wait_hits(self, path: str, n: int, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while self.hits[path] < n and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            return self.hits[path]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class Daemon:
    """`aggregator run` in a subprocess, its JSON log lines collected as they come."""

    def __init__(self, config: Path, *args: str, log_format: str = "json", verbose: int = 0) -> None:
        self.config = config
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        cmd = [sys.executable, "-m", "aggregator", "--config", str(config), "--log-format", log_format]
        cmd += [f"-{'v' * verbose}", "run", *args] if verbose else ["run", *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.exit_time: float | None = None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("{"):
                    self.records.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 15.0, count: int = 1) -> list[dict]:
        """Wait until `count` JSON records satisfy `pred`; return them (fails with the log)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.records if pred(r)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"timed out waiting for a log record; log:\n{self.log}")
                self._cond.wait(min(left, 0.2))

    def messages(self, pattern: str) -> list[dict[str, Any]]:
        with self._cond:
            return [r for r in self.records if re.search(pattern, r["message"])]

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    @property
    def port(self) -> int:
        rec = self.wait_for(lambda r: r["message"].startswith("serving http://"))[0]
        return int(re.search(r":(\d+)/", rec["message"]).group(1))

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        started = time.monotonic()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not exit within {timeout}s; log:\n{self.log}") from None
        self.exit_time = time.monotonic() - started
        self._reader.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def fetched(source: str, outcome: str | None = None) -> Callable[[dict[str, Any]], bool]:
    """A predicate: the daemon logged the outcome of a poll of `source`."""

    def pred(r: dict[str, Any]) -> bool:
        return r.get("source") == source and "outcome" in r and (outcome is None or r["outcome"] == outcome)

    return pred


class HangingHub:
    """A WebSub hub that accepts connections and never answers (a hung hub behind a live
    port): every ping waits for its timeout. Counts the connections it accepted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)  # held open, never read from nor answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hub"

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        for conn in self.conns:
            conn.close()


def refusing_url() -> str:
    """A URL on 127.0.0.1 whose port nothing listens on (bound, then closed): connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hub"
