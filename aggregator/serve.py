"""Serve the output directory over HTTP, as a feed reader expects it served.

A WSGI app on waitress (a maintained, pure-Python, threaded server: no hand-written HTTP
parsing here). What matters to feed readers is done carefully: the registered media types
(`application/atom+xml`, `application/rss+xml`, `application/feed+json`), validators
(ETag and Last-Modified) with 304 answers so a reader polling every few minutes costs a
stat() and a few headers, gzip for those that accept it, and HEAD. The stub the publisher
leaves at a re-dated post's old page path is answered 301 to its new page. The publisher only
rewrites a file whose bytes changed, so mtime and size identify a version exactly; ETags
are derived from them and need no reading or hashing.

Extra routes (`/healthz`, `/metrics` when the daemon runs with `--serve`) are plain
callables, so this module knows nothing of the daemon or the store.
"""

from __future__ import annotations

import errno
import gzip
import html
import logging
import mimetypes
import os
import posixpath
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import waitress
from waitress.server import BaseWSGIServer, MultiSocketServer

from .sanitize import printable

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".json": "application/feed+json",  # every .json the publisher writes is a JSON Feed
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml",
    ".opml": "text/x-opml",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}
COMPRESSIBLE = (
    "text/",
    "application/atom+xml",
    "application/rss+xml",
    "application/feed+json",
    "application/xml",
    "application/json",
    "image/svg+xml",
)
# A redirect stub the publisher leaves where a re-dated post's page was (publish.site.redirect_page,
# which writes this mark): answered 301, as a static host cannot. Only small pages are looked at.
REDIRECT_MARK = b'<meta name="aggregator" content="redirect">'
_REFRESH = re.compile(rb'<meta http-equiv="refresh" content="0; url=([^"<>]+)">')
MAX_STUB = 4096
MIN_GZIP = 512  # below this the gzip header costs more than it saves
GZIP_CACHE_BYTES = 32 * 1024 * 1024
CACHE_CONTROL = "no-cache"  # readers may keep a copy but revalidate each time: that is what the 304s are for

Route = Callable[[], tuple[int, str, bytes]]  # → (status, content type, body)
StartResponse = Callable[..., Any]

_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    304: "Not Modified",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
    500: "Internal Server Error",
}


def content_type(path: Path) -> str:
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")


class _GzipCache:
    """Compressed bodies keyed by (path, mtime, size): popular feeds are compressed once."""

    def __init__(self, limit: int = GZIP_CACHE_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int], data: Callable[[], bytes]) -> bytes:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        body = gzip.compress(data(), compresslevel=6, mtime=0)
        with self._lock:
            if key not in self._items and len(body) <= self.limit:
                self._items[key] = body
                self.size += len(body)
                while self.size > self.limit:
                    _, old = self._items.popitem(last=False)
                    self.size -= len(old)
        return body


class StaticApp:
    """WSGI app: GET and HEAD of files under `root()`, plus named extra routes."""

    def __init__(
        self,
        root: Callable[[], Path],
        routes: dict[str, Route] | None = None,
        private: Callable[[], Iterable[Path]] | None = None,
    ) -> None:
        self.root = root
        self.routes = dict(routes or {})
        # files never served, wherever they are: the config, the database, a log file
        self.private = private or (lambda: ())
        self._gzip = _GzipCache()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return self._simple(start_response, 405, "method not allowed\n", [("Allow", "GET, HEAD")], method)
        # PEP 3333: PATH_INFO is already percent-decoded, as bytes in a latin-1 str
        path = (environ.get("PATH_INFO") or "/").encode("latin-1", "replace").decode("utf-8", "replace")
        route = self.routes.get(path.rstrip("/") or "/")
        if route is not None:
            return self._route(route, start_response, method)
        try:
            return self._file(environ, start_response, path, method)
        except OSError as e:
            # the path is the client's: a newline in it forged log lines, an ESC drove the terminal
            log.warning("serving %s failed: %s", printable(path), e)
            return self._simple(start_response, 404, "not found\n", [], method)

    def _route(self, route: Route, start_response: StartResponse, method: str) -> Iterable[bytes]:
        try:
            status, ctype, body = route()
        except Exception:
            log.exception("route failed")
            status, ctype, body = 500, "text/plain; charset=utf-8", b"internal error\n"
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
        start_response(f"{status} {_REASONS.get(status, '')}".strip(), headers)
        return [b""] if method == "HEAD" else [body]

    def _resolve(self, path: str) -> Path | None:
        root = self.root().resolve()
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." or "\x00" in p or p.startswith(".") for p in parts):
            return None  # no traversal, and no dotfiles (the publisher's temporary files start with a dot)
        target = root.joinpath(*parts)
        try:
            resolved = target.resolve()
        except OSError:
            return None
        if resolved != root and root not in resolved.parents:
            return None  # a symlink pointing out of the output directory
        return target

    def _file(self, environ: dict[str, Any], start_response: StartResponse, path: str, method: str) -> Iterable[bytes]:
        target = self._resolve(path)
        if target is None:
            return self._simple(start_response, 404, "not found\n", [], method)
        try:
            st = target.stat()
        except OSError as e:
            # a name too long for the file system names no file either: the client's 404, no warning
            if isinstance(e, FileNotFoundError | NotADirectoryError) or e.errno == errno.ENAMETOOLONG:
                return self._simple(start_response, 404, "not found\n", [], method)
            raise
        if path.endswith("/") and not stat.S_ISDIR(st.st_mode):
            # `tech.atom/` names a folder that is not there, as nginx and Apache answer: one
            # file must not answer at two URLs (relative links in it would resolve wrongly)
            return self._simple(start_response, 404, "not found\n", [], method)
        if stat.S_ISDIR(st.st_mode):
            page = target.with_name(target.name + ".html")
            if target != self.root().resolve() and not (target / "index.html").exists() and page.is_file():
                # `category/tech` is the folder of tech's older pages, and tech.html its page:
                # the folder answered 301 to `category/tech/`, and that 404 (it has no index)
                location = _relative(quote("/" + path.strip("/")) + ".html", environ)
                return self._simple(start_response, 301, "moved\n", [("Location", location)], method)
            if not path.endswith("/"):
                # percent-encoded (a header is latin-1: a CJK folder name would fail the answer)
                location = _relative(quote(("/" + path.strip("/")).rstrip("/") + "/"), environ)
                return self._simple(start_response, 301, "moved\n", [("Location", location)], method)
            target = target / "index.html"
            try:
                st = target.stat()
            except FileNotFoundError:
                return self._simple(start_response, 404, "not found\n", [], method)
        if not stat.S_ISREG(st.st_mode) or self._is_private(st):
            return self._simple(start_response, 404, "not found\n", [], method)

        ctype = content_type(target)
        if ctype.startswith("text/html") and st.st_size <= MAX_STUB:
            moved = _stub_target(target, path)
            if moved is not None:
                location = _relative(moved, environ)
                return self._simple(start_response, 301, "moved\n", [("Location", location)], method)
        tag = f"{st.st_mtime_ns:x}-{st.st_size:x}"
        compressible = ctype.startswith(COMPRESSIBLE) and st.st_size >= MIN_GZIP
        use_gzip = compressible and _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        etag = f'"{tag}-gz"' if use_gzip else f'"{tag}"'
        headers = [
            ("Content-Type", ctype),
            ("ETag", etag),
            ("Last-Modified", formatdate(st.st_mtime, usegmt=True)),
            ("Cache-Control", CACHE_CONTROL),
        ]
        if compressible:
            headers.append(("Vary", "Accept-Encoding"))
        if _not_modified(environ, tag, int(st.st_mtime)):
            start_response("304 Not Modified", headers)
            return [b""]
        if use_gzip:
            body = self._gzip.get((str(target), st.st_mtime_ns, st.st_size), target.read_bytes)
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = target.read_bytes()
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b""] if method == "HEAD" else [body]

    def _is_private(self, st: os.stat_result) -> bool:
        """Whether the file of `st` is one of `private`'s (the same inode: a symlink or hard link
        to it too). A config that lets these into the output folder is refused; this holds
        for one that predates that check, or a file moved there by hand."""
        for path in self.private():
            try:
                own = os.stat(path)
            except OSError:  # not there (a -wal file between checkpoints): nothing to hide
                continue
            if (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino):
                return True
        return False

    def _simple(
        self, start_response: StartResponse, status: int, text: str, extra: list[tuple[str, str]], method: str
    ) -> Iterable[bytes]:
        body = text.encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra]
        start_response(f"{status} {_REASONS[status]}", headers)
        return [b""] if method == "HEAD" else [body]


def _stub_target(target: Path, path: str) -> str | None:
    """Where the redirect stub at `target` (served at `path`) sends readers, as an absolute
    path on this server; None when the file is no stub (or its target leaves the server)."""
    try:
        data = target.read_bytes()
    except OSError:
        return None
    head = data[: data.find(b"</head>")]  # the publisher's mark and refresh, not a page's text quoting them
    found = _REFRESH.search(head) if REDIRECT_MARK in head else None
    if found is None:
        return None
    href = quote(html.unescape(found[1].decode("utf-8", "replace")), safe="/%:?#&=+~")
    if urlsplit(href).scheme or href.startswith("//"):
        return None  # the publisher's are relative: another site's is not ours to vouch for
    # `..` past the root stays at the root, as a browser reads it
    location = posixpath.normpath(posixpath.join(posixpath.dirname(quote("/" + path.lstrip("/"))), href))
    return None if location.startswith("//") else location


def _relative(location: str, environ: dict[str, Any]) -> str:
    """`location`, an absolute path on this server, as a reference relative to the URL asked
    for (RFC 7231 allows one): behind a reverse proxy that serves the site under a prefix
    (`https://t.example/news/`), `/posts/…` pointed out of the site, and the server cannot know
    the prefix. The requested path is taken as the client sent it (waitress's REQUEST_URI:
    PATH_INFO has `%2F` decoded and leading slashes merged), so `..` climbs the folders it sees."""
    raw = environ.get("REQUEST_URI") or quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/"))
    # an origin-form path as it is (urlsplit takes `//x` for a host); an absolute-form URI's path
    asked = raw.partition("?")[0].partition("#")[0] if raw.startswith("/") else urlsplit(raw).path or "/"
    script = environ.get("SCRIPT_NAME", "")
    if script and asked.startswith(script + "/"):
        asked = asked[len(script) :]
    folders = asked.split("/")[1:-1]  # those of the URL asked for, below the server's root
    path, mark, after = location.partition("?") if "?" in location else location.partition("#")
    parts = path.split("/")[1:]
    same = 0
    while same < min(len(folders), len(parts) - 1) and folders[same] == parts[same]:
        same += 1
    ref = "../" * (len(folders) - same) + "/".join(parts[same:])
    # empty (the folder asked from), a path (`//x`) or a scheme-like first segment (`a:b/`) would mean another URL
    if not ref or ref.startswith("/") or ":" in ref.partition("/")[0]:
        ref = "./" + ref
    return ref + mark + after


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def _not_modified(environ: dict[str, Any], tag: str, mtime: int) -> bool:
    """RFC 9110 §13.1: If-None-Match (weak comparison) wins; If-Modified-Since otherwise."""
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        if inm.strip() == "*":
            return True
        for candidate in inm.split(","):
            value = candidate.strip().removeprefix("W/").strip('"')
            if value in (tag, f"{tag}-gz"):
                return True
        return False
    ims = environ.get("HTTP_IF_MODIFIED_SINCE")
    if ims:
        try:
            when = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        # HTTP dates are GMT: asctime's (`Sun Nov  6 08:49:37 1994`) and a `-0000` zone come out
        # naive, which .timestamp() took for this machine's local time (west of UTC, a 304 for a
        # file changed since)
        return mtime <= (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    return False


class Server:
    """waitress in a background thread, stoppable: for `run --serve` and for tests."""

    def __init__(self, app: StaticApp, host: str = "127.0.0.1", port: int = 8080, threads: int = 4) -> None:
        self.app = app
        try:
            self._server: BaseWSGIServer | MultiSocketServer = waitress.create_server(
                app, host=host, port=port, threads=threads, ident="aggregator", clear_untrusted_proxy_headers=True
            )
        except ValueError:  # waitress's "Invalid host/port specified.": the name did not resolve
            problem = f"{host!r} is not a valid address nor a host name that resolves"
            raise OSError(errno.EADDRNOTAVAIL, problem) from None
        self._thread: threading.Thread | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        server = self._server
        if isinstance(server, MultiSocketServer):
            return [(h, int(p)) for (h, p) in server.effective_listen]
        return [(str(server.effective_host), int(server.effective_port))]

    @property
    def urls(self) -> list[str]:
        return [f"http://{'[' + h + ']' if ':' in h else h}:{p}/" for h, p in self.addresses]

    def serve_forever(self) -> None:
        self._server.run()

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket from inside the server's own loop, then let its workers finish."""
        server = self._server
        socket_map = server.map if isinstance(server, MultiSocketServer) else server._map
        trigger = next(v.trigger for v in list(socket_map.values()) if isinstance(v, BaseWSGIServer))

        def close_all() -> None:
            from waitress import wasyncore

            wasyncore.close_all(socket_map)

        try:
            trigger.pull_trigger(close_all)
        except OSError:
            pass  # already closed
        if self._thread is not None:
            self._thread.join(timeout)
        server.task_dispatcher.shutdown(timeout=timeout)


def serve_directory(root: Callable[[], Path], host: str, port: int, routes: dict[str, Route] | None = None) -> Server:
    return Server(StaticApp(root, routes), host, port)


def _health_of_directory(root: Callable[[], Path]) -> Route:
    def health() -> tuple[int, str, bytes]:
        directory = root()
        ok = directory.is_dir() and os.access(directory, os.R_OK | os.X_OK)
        body = b"ok\n" if ok else f"output directory {directory} is not readable\n".encode()
        return (200 if ok else 503), "text/plain; charset=utf-8", body

    return health


def static_routes(root: Callable[[], Path]) -> dict[str, Route]:
    """Routes of `aggregator serve` alone: /healthz says whether the directory can be served."""
    return {"/healthz": _health_of_directory(root)}
