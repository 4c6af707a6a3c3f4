"""Hostile servers: one real `aggregator fetch` over a config holding every hostile case at
once, plus two well-behaved corpus sources.

Each case is a raw-socket server on 127.0.0.1 (its own port, so the per-host limit does not
queue the slow ones behind each other; the three that send megabytes share one port, so they
run one after another and the memory bound is per case, not their sum). The run must record
each hostile source's own error, end each within its 3 s deadline + 1 s (from the server
seeing the request to the source's error line in the JSON log), stay within +50 MB of peak
RSS over a run of the good sources alone, and store and publish the good sources as usual.
"""

from __future__ import annotations

import json
import os
import select
import socket
import socketserver
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from .conftest import aggregator, child_env, output_problems

TIMEOUT = 3.0  # each source's total deadline (`timeout:` in the config)
SLACK = 1.0  # the promise: done within the deadline + 1 s
MEMORY = 50 * 1024 * 1024  # and within +50 MB peak RSS
CAP = 16 * 1024 * 1024  # aggregator.fetch.MAX_BODY
GOOD = ["suites/RSParser__Tests_RSParserTests_Resources_DaringFireball.atom", "zh/gansu-economy.atom"]

HEAD_OK = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
RSS_START = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://x/</link>'


def _gzip_bomb() -> bytes:
    """64 MB of zeros gzipped to ~64 KB: four times the body cap once inflated."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    return b"".join(z.compress(block) for _ in range(64)) + z.flush()


class _Handler(socketserver.BaseRequestHandler):
    """Reads the request head, then misbehaves as the path asks."""

    server: _Listener

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = sock.recv(4096)
            if not data:
                return
            head += data
            if self.server.raw_close:  # a TLS refusal: whatever arrives (a ClientHello), hang up
                sock.close()
                self.server.hub.seen("tls-closed")
                return
            if head[:1] == b"\x16":  # a ClientHello to a plain HTTP server: 400, as nginx answers
                self.server.hub.seen("tls-to-plain-http")
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
        path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "?"
        self.server.hub.seen(path.lstrip("/"))
        try:
            getattr(self, "case_" + path.strip("/").replace("-", "_"), self.case_not_found)(sock)
        except OSError:
            pass  # the client gave up: the point of most cases

    def _wait(self, sock: socket.socket, seconds: float) -> bool:
        """Sleep, but return False as soon as the client hangs up (or the test ends)."""
        if self.server.hub.stop.is_set():
            return False
        readable, _, _ = select.select([sock], [], [], seconds)
        return not readable  # readable while we send nothing means EOF or reset

    def case_not_found(self, sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def case_slow_headers(self, sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while self._wait(sock, 0.5):
            sock.sendall(b"a")

    def case_trickle(self, sock: socket.socket) -> None:
        sock.sendall((HEAD_OK + "Content-Length: 100000\r\n\r\n").encode() + RSS_START)
        while self._wait(sock, 1.0):
            sock.sendall(b" ")

    def case_endless(self, sock: socket.socket) -> None:
        sock.sendall((HEAD_OK + "Connection: close\r\n\r\n").encode() + RSS_START)
        block = b"<item><title>endless</title></item>" * 2000
        while not self.server.hub.stop.is_set():
            sock.sendall(block)

    def case_over_cap(self, sock: socket.socket) -> None:
        sock.sendall((HEAD_OK + f"Content-Length: {CAP + 1}\r\n\r\n").encode() + RSS_START)
        block = b" " * 65536
        for _ in range(CAP // len(block) + 1):
            sock.sendall(block)

    def case_gzip_bomb(self, sock: socket.socket) -> None:
        bomb = self.server.hub.bomb
        sock.sendall((HEAD_OK + f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n").encode() + bomb)

    def case_reset(self, sock: socket.socket) -> None:
        sock.sendall((HEAD_OK + "Content-Length: 100000\r\n\r\n").encode() + RSS_START + b" " * 1000)
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        sock.close()

    def _redirect(self, sock: socket.socket, location: str) -> None:
        sock.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    def case_loop_a(self, sock: socket.socket) -> None:
        self._redirect(sock, "/loop-b")

    def case_loop_b(self, sock: socket.socket) -> None:
        self._redirect(sock, "/loop-a")

    def case_to_file(self, sock: socket.socket) -> None:
        self._redirect(sock, "file:///etc/passwd")

    def case_to_ftp(self, sock: socket.socket) -> None:
        self._redirect(sock, f"ftp://127.0.0.1:{self.server.server_address[1]}/feed.xml")

    def case_bad_chunked(self, sock: socket.socket) -> None:
        sock.sendall((HEAD_OK + "Transfer-Encoding: chunked\r\n\r\n").encode())
        sock.sendall(b"10\r\n<rss version='2\r\nzz-not-hex\r\nmore\r\n0\r\n\r\n")

    def case_empty(self, sock: socket.socket) -> None:
        sock.sendall((HEAD_OK + "Content-Length: 0\r\n\r\n").encode())

    def case_html_error(self, sock: socket.socket) -> None:
        page = b"<!DOCTYPE html><html><head><title>Error</title></head><body><h1>503 Unavailable</h1></body></html>"
        sock.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(page)}\r\n\r\n".encode() + page
        )


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub: HostileHub, raw_close: bool = False) -> None:
        self.hub = hub
        self.raw_close = raw_close
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


class HostileHub:
    """The listeners, and when each path was first requested (wall-clock, as the logs are)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.bomb = _gzip_bomb()
        self.first: dict[str, float] = {}
        self._lock = threading.Lock()
        self.listeners: list[_Listener] = []

    def seen(self, path: str) -> None:
        with self._lock:
            self.first.setdefault(path, time.time())

    def listener(self, raw_close: bool = False) -> _Listener:
        srv = _Listener(self, raw_close)
        self.listeners.append(srv)
        return srv

    def close(self) -> None:
        self.stop.set()
        for srv in self.listeners:
            srv.shutdown()
            srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cases(hub: HostileHub) -> dict[str, tuple[str, str]]:
    """name → (its URL, the path the server sees first; empty when no server takes it)."""
    heavy = hub.listener()  # the three that send megabytes: one port, so one at a time
    cases: dict[str, tuple[str, str]] = {}
    for name in ("endless", "over-cap", "gzip-bomb"):
        cases[name] = (f"http://127.0.0.1:{heavy.port}/{name}", name)
    for name in (
        "slow-headers",
        "trickle",
        "reset",
        "loop-a",
        "to-file",
        "to-ftp",
        "bad-chunked",
        "empty",
        "html-error",
    ):
        cases[name] = (f"http://127.0.0.1:{hub.listener().port}/{name}", name)
    cases["html-error"] = (f"http://127.0.0.1:{hub.listener().port}/html-error", "html-error")
    plain = hub.listener()
    cases["tls-to-plain-http"] = (f"https://127.0.0.1:{plain.port}/feed.xml", "tls-to-plain-http")
    cases["tls-closed"] = (f"https://127.0.0.1:{hub.listener(raw_close=True).port}/feed.xml", "tls-closed")
    cases["refused"] = (f"http://127.0.0.1:{_closed_port()}/feed.xml", "")
    return cases


EXPECTED = {  # what each source's recorded error must say (lower case)
    "slow-headers": "total deadline of 3s passed",
    "trickle": "total deadline of 3s passed",
    "endless": f"body too large: over {CAP} bytes",
    "over-cap": f"body too large: {CAP + 1} bytes (limit {CAP})",
    "gzip-bomb": f"inflated body too large: over {CAP} bytes",
    "reset": "connection broken while reading the body: connection reset",
    "loop-a": "redirect loop:",
    "to-file": "redirected to an unsupported scheme: file:///etc/passwd",
    "to-ftp": "redirected to an unsupported scheme: ftp://",
    "bad-chunked": "connection broken while reading the body: invalid chunked encoding",
    "empty": "empty",
    "html-error": "an html page, not a feed",
    "tls-to-plain-http": "connection failed: tls handshake failed: wrong version number",
    "tls-closed": "connection failed: tls handshake failed: eof occurred",
    "refused": "connection failed: connection refused",
}


def _config(folder: Path, urls: list[str]) -> Path:
    lines = [
        "site:",
        "  title: Hostile",
        "  url: https://news.example.com/",
        "  workers: 24",
        "  per_host: 1",
        "defaults:",
        f"  timeout: {TIMEOUT:g}s",
        "categories:",
        "  - name: Mixed",
        "    sources:",
    ] + [f"      - url: {u}" for u in urls]
    cfg = folder / "feeds.yaml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def _run(cfg: Path, *args: str) -> tuple[int, str, str, int]:
    """Run the real CLI; (exit code, stdout, stderr, peak RSS in bytes) via wait4's rusage."""
    out, err = cfg.parent / "stdout", cfg.parent / "stderr"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(aggregator("--config", str(cfg), *args), stdout=o, stderr=e, env=child_env())
        deadline = time.monotonic() + 60  # a hang is a failure, not a stuck suite
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"aggregator {' '.join(args)} still running after 60 s: {out.read_text()}")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return proc.returncode, out.read_text(), err.read_text(), usage.ru_maxrss * 1024


@pytest.fixture(scope="module")
def hub() -> Iterator[HostileHub]:
    h = HostileHub()
    yield h
    h.close()


def test_hostile_servers_are_bounded_recorded_and_contained(hub, corpus_server, tmp_path):
    good = [corpus_server.url(p) for p in GOOD]
    base = tmp_path / "baseline"
    base.mkdir()
    code, out, err, baseline_rss = _run(_config(base, good), "fetch")
    assert code == 0, out + err

    cases = _cases(hub)
    run = tmp_path / "hostile"
    run.mkdir()
    cfg = _config(run, [u for u, _ in cases.values()] + good)
    started = time.time()
    code, out, err, rss = _run(cfg, "--log-format", "json", "fetch")
    elapsed = time.time() - started
    assert code == 1, out + err  # some sources failed
    assert "Traceback" not in out + err

    # each hostile source: its own error, recorded in the database
    code, status_out, status_err, _ = _run(cfg, "status", "--json")
    assert code in (0, 1), status_out + status_err
    sources = {s["url"]: s for s in json.loads(status_out)}
    for name, (url, _) in cases.items():
        error = (sources[url].get("last_error") or "").lower()
        assert EXPECTED[name] in error, f"{name}: {error!r}"
        assert f"error      {url}: " in out, f"{name}: no error line in {out}"

    # each bounded in time: from the request reaching the server (or the run's start, when
    # no server took it) to the source's error line in the log
    logged: dict[str, float] = {}
    for line in err.splitlines():
        record = json.loads(line)
        if record.get("level") == "warning" and record.get("source") in sources:
            logged.setdefault(record["source"], datetime.fromisoformat(record["time"]).timestamp())
    took = {}
    for name, (url, path) in cases.items():
        begin = hub.first.get(path, started) if path else started
        assert url in logged, f"{name}: no warning logged"
        took[name] = logged[url] - begin
    print("seconds per case:", {k: round(v, 2) for k, v in took.items()}, f"whole run {elapsed:.1f}s")
    slow = {k: v for k, v in took.items() if v > TIMEOUT + SLACK}
    assert not slow, f"over the {TIMEOUT:g}s deadline + {SLACK:g}s: {slow}"

    # and in memory: the whole run, all cases together, within +50 MB of the good sources alone
    print(f"peak RSS: {rss / 2**20:.1f} MB, baseline {baseline_rss / 2**20:.1f} MB")
    assert rss - baseline_rss < MEMORY, f"peak RSS grew by {(rss - baseline_rss) / 2**20:.0f} MB"

    # the good sources: stored and published as usual
    for url in good:
        assert sources[url]["last_error"] is None, sources[url]
        assert sources[url]["posts"] > 0, sources[url]
        assert f"new        {url} (" in out, out
    published = (run / "public" / "category" / "mixed.atom").read_text(encoding="utf-8")
    assert published.count("<entry>") + published.count("<entry ") == sum(sources[u]["posts"] for u in good)
    assert output_problems(run / "public") == []
