"""A small threaded HTTP/1.1 server over a folder of feeds, for the benchmarks.

Files are read into memory once and served under many URLs, so one corpus can stand for
thousands of sources:

    /e/<n>/<path>   honours If-None-Match / If-Modified-Since (answers 304), like nginx
    /n/<n>/<path>   ignores conditional requests: always 200 with the same bytes

`<n>` is any integer (it only makes the URL distinct). Keep-alive, no logging, no disk I/O
per request.

The server listens on HOSTS loopback addresses (127.0.0.1 … 127.0.0.HOSTS, one port) and
spreads the URLs over them: a corpus of real feeds comes from many servers, and the
aggregator caps requests in flight per host (`site.per_host`, 2 by default), so serving
every feed from one address would measure that politeness cap, not the aggregator.
The stdlib's SimpleHTTPRequestHandler cannot answer 304, hence this.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import multiprocessing
import socketserver
import threading
import zlib
from pathlib import Path

CONTENT_TYPES = {".xml": "application/xml", ".rss": "application/rss+xml", ".atom": "application/atom+xml",
                 ".json": "application/feed+json"}  # fmt: skip
FEED_SUFFIXES = tuple(CONTENT_TYPES)
LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)
HOSTS = 16  # loopback addresses served (Linux routes all of 127.0.0.0/8 to lo)


def feed_files(corpus: Path) -> list[Path]:
    """Every feed file under `corpus`, in a stable order."""
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix in FEED_SUFFIXES)


def corpus_feeds(folder: str | Path) -> tuple[Path, list[Path], list[str]]:
    """The corpus folder resolved, its feed files and their paths relative to it (as the
    server's URLs carry them); exits with a message when it holds no feed."""
    corpus = Path(folder).resolve()
    files = feed_files(corpus)
    if not files:
        raise SystemExit(f"no feeds (*.xml, *.rss, *.atom, *.json) under {corpus}")
    return corpus, files, [str(p.relative_to(corpus)).replace("\\", "/") for p in files]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as nginx (tcp_nodelay on): headers and body are two writes
    files: dict[str, tuple[bytes, str, str]] = {}

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = self.path.split("/", 3)  # '', mode, n, path
        entry = self.files.get(parts[3]) if len(parts) == 4 else None
        if entry is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, etag, ctype = entry
        if parts[1] == "e" and (
            self.headers.get("If-None-Match") == etag or self.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if parts[1] == "e":
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def _serve(corpus: str, ready: multiprocessing.Queue, hosts: int) -> None:
    root = Path(corpus)
    files = {}
    for p in feed_files(root):
        body = p.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        files[str(p.relative_to(root)).replace("\\", "/")] = (body, etag, CONTENT_TYPES[p.suffix])
    _Handler.files = files
    first = _Server(("127.0.0.1", 0), _Handler)
    port = first.server_address[1]
    servers = [first]
    for n in range(2, hosts + 1):
        try:
            servers.append(_Server((f"127.0.0.{n}", port), _Handler))
        except OSError:  # not Linux (only 127.0.0.1 routed): one host
            break
    ready.put((port, len(servers)))
    for httpd in servers[1:]:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    first.serve_forever()


class FeedServer:
    """The server in its own process, so it never competes for the measured process's GIL."""

    def __init__(self, corpus: Path, hosts: int = HOSTS) -> None:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        ready: multiprocessing.Queue = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(str(corpus), ready, hosts), daemon=True)
        self.process.start()
        self.port, self.hosts = ready.get(timeout=60)
        self.base = f"http://127.0.0.1:{self.port}/"

    def url(self, mode: str, n: int, relpath: str) -> str:
        """The URL of a file, on one of the loopback hosts (the same one every time)."""
        host = 1 + zlib.crc32(f"{n}/{relpath}".encode()) % self.hosts
        return f"http://127.0.0.{host}:{self.port}/{mode}/{n}/{relpath}"

    def close(self) -> None:
        self.process.terminate()
        self.process.join(5)
