"""One HTTP exchange per call: conditional GET with hard limits, turned into a FetchResult.

Knows nothing of feeds or SQL. Every failure becomes a FetchError naming the source, so
the pipeline can record it and move on to the next source.

The limits hold against a hostile server: redirects are followed here, hop by hop, so
loops are named and permanent hops reported; the body is inflated here with a running
cap (a gzip/deflate/br bomb is counted before it can allocate); and a watchdog closes the
socket when the total deadline passes, because socket timeouts are per read and a server
sending one byte a second would otherwise stretch a request without end.
"""

from __future__ import annotations

import base64
import functools
import heapq
import http.client
import logging
import os
import re
import socket
import ssl
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

import idna
import urllib3
from requests.exceptions import InvalidProxyURL, InvalidSchema, RequestException
from requests.models import PreparedRequest
from requests.utils import (
    DEFAULT_CA_BUNDLE_PATH,
    get_auth_from_url,
    get_netrc_auth,
    prepend_scheme_if_needed,
    requote_uri,
    select_proxy,
    should_bypass_proxies,
    urldefragauth,
)
from urllib3 import BaseHTTPResponse, PoolManager, ProxyManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context

from . import USER_AGENT
from .credentials import header_value_problem
from .hosts import DEFAULT_PER_HOST, HostLimiter, host_key, wire_name
from .models import FetchResult, Source

try:  # br is decoded only with a Brotli binding that can bound its output (brotli >= 1.2)
    import brotli as _brotli

    _brotli.Decompressor().process(b"", output_buffer_limit=1)
except (ImportError, TypeError, AttributeError):  # pragma: no cover - depends on the installation
    _brotli = None

try:  # SOCKS proxies, as requests: only with PySocks installed (without it, urllib3 warns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.DependencyWarning)
        from urllib3.contrib.socks import SOCKSProxyManager
except ImportError:  # pragma: no cover - depends on the installation
    SOCKSProxyManager = None

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
DEADLINE = 30.0
CONNECT_TIMEOUT = 10.0
MAX_REDIRECTS = 10
CHUNK = 64 * 1024
DRAIN_LIMIT = 64 * 1024  # a redirect's or error's body up to this is read, to keep the connection
DRAIN_TIMEOUT = 0.5  # seconds a server may stall in such a body before the connection is dropped
POOLS = 64  # hosts whose idle connections are kept (least recently used dropped), as requests did
POOL_SIZE = 64  # idle connections kept per host: at most site.per_host are busy at once
ROUTES_KEPT = 10_000  # URLs whose route (see `_Route`) is kept, twice over: a 10,000-source daemon's all
REDIRECT_CODES = (301, 302, 303, 307, 308)
PERMANENT_CODES = (301, 308)
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
ACCEPT_ENCODING = "gzip, deflate, br" if _brotli else "gzip, deflate"


class FetchError(Exception):
    """A fetch that produced no usable response; `source` is the source key.

    `status` and `headers` are those of the HTTP response when there was one (a 429's
    Retry-After is read from them); `url` is the URL that gave that response.
    `discovered` is set by the pipeline when the request was for the feed an HTML page
    (the source's URL) links to, not for the source's URL itself. `temporary` says a
    temporary redirect (302, 303, 307) led to that response: it speaks for that URL only.
    """

    def __init__(
        self,
        source: str,
        message: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        temporary: bool = False,
    ) -> None:
        self.source = source
        self.status = status
        self.headers = headers or {}
        self.url = url
        self.temporary = temporary
        self.discovered: str | None = None
        super().__init__(message)


# -- the total deadline ---------------------------------------------------------------

_current = threading.local()


class _Alarms:
    """One thread firing every watchdog's deadline, instead of a Timer thread per fetch.

    Starting a thread per request cost more CPU than a 304 exchange itself (a warm cycle
    over thousands of sources); a heap of deadlines and one waiting thread cost next to
    nothing. Cancelled alarms stay in the heap, marked dead, until their time comes.
    """

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []  # [due (monotonic), sequence, callback or None]
        self._cond = threading.Condition()
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    def set(self, seconds: float, callback: Callable[[], None]) -> list[Any]:
        with self._cond:
            self._stopping = False
            self._seq += 1
            alarm = [time.monotonic() + seconds, self._seq, callback]
            heapq.heappush(self._heap, alarm)
            if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
                self._thread = threading.Thread(target=self._run, name="fetch-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0] is alarm:
                self._cond.notify()
        return alarm

    def cancel(self, alarm: list[Any]) -> None:
        with self._cond:
            alarm[2] = None

    def stop(self) -> None:
        """End the thread if no alarm is pending (the next `set` starts it again): a process
        done fetching keeps no thread of ours, so the publisher may fork its workers."""
        with self._cond:
            thread = self._thread
            if thread is None or any(alarm[2] is not None for alarm in self._heap):
                return
            self._heap.clear()
            self._stopping = True
            self._cond.notify()
        thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    if self._stopping:
                        self._stopping = False
                        self._thread = None
                        return
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                callback = heapq.heappop(self._heap)[2]
            callback()


_ALARMS = _Alarms()


class _Watchdog:
    """Shuts down every socket the current fetch uses once `seconds` have passed.

    Sockets register themselves (see `_WatchedConnection`) with the watchdog of the thread
    that opens or reuses them; shutting a socket down wakes a read blocked on it at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._alarm: list[Any] | None = None

    def __enter__(self) -> _Watchdog:
        _current.watchdog = self
        self._alarm = _ALARMS.set(self.seconds, self._fire)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._alarm is not None:
            _ALARMS.cancel(self._alarm)
        _current.watchdog = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.fired:
                _shut(sock)
            else:
                self._socks.append(sock)

    def unwatch(self, sock: socket.socket | None) -> None:
        """Forget a socket going back to the pool: the next fetch to use it is another's,
        and this deadline must not cut that fetch's download short."""
        with self._lock:  # every registration: one socket registers on connect and on each request
            self._socks = [s for s in self._socks if s is not sock]

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            socks, self._socks = self._socks, []
        for sock in socks:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        # socket.socket's own shutdown, not SSLSocket's, which would tear down TLS state
        # under the feet of the thread reading it; shutting the descriptor is enough.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _watch(sock: socket.socket | None) -> None:
    dog = getattr(_current, "watchdog", None)
    if dog is not None:
        dog.watch(sock)


def _note_reuse(conn: HTTPConnection) -> None:
    """Tell the fetch whether this request goes out on a socket that already carried one.

    A kept-alive socket the server closed a moment ago fails before any response byte; that
    request is sent again on a fresh connection (see `Fetcher._open`), as browsers do.
    """
    _current.reused = conn.sock is not None and conn.sock is getattr(conn, "_used_sock", None)


class _FinalResponse(http.client.HTTPResponse):
    """http.client's response, reading past every informational (1xx) response to the final one.

    http.client skips a 100 Continue only: a 103 Early Hints (or 102 Processing) was taken
    as the answer, an empty one, and the real answer was left unread on the connection. Each
    is a status line and headers, nothing else (RFC 9110 §15.2); 101 ends HTTP, so it stays.
    """

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()
            if not 101 < status < 200:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the hints: nothing a feed reader needs


class _WatchedConnection(HTTPConnection):
    response_class = _FinalResponse

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)  # covers the TLS handshake and a proxy tunnel, too
        return sock

    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # a connection reused from the pool
        _note_reuse(self)
        super().request(*args, **kwargs)
        self._used_sock = self.sock


class _WatchedHTTPSConnection(HTTPSConnection):
    response_class = _FinalResponse

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def connect(self) -> None:
        super().connect()
        _watch(self.sock)  # the TLS socket that replaced the raw one

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        _note_reuse(self)
        super().request(*args, **kwargs)
        self._used_sock = self.sock


class _Unwatching(HTTPConnectionPool):
    """Every way back into the pool forgets the socket: the next fetch to take it is
    another's, and this fetch's deadline must not cut that one short."""

    def _put_conn(self, conn: Any) -> None:
        dog = getattr(_current, "watchdog", None)
        if dog is not None and conn is not None:
            dog.unwatch(conn.sock)
        super()._put_conn(conn)


class _WatchedPool(_Unwatching):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(_Unwatching, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _validate_conn(self, conn: Any) -> None:
        """urllib3's check, without its InsecureRequestWarning on every request of a pool made
        for `tls_verify: false`: that was asked for, and `Fetcher` says so once per source.
        (A warnings filter around the request would change the process's filters, from every
        fetching thread at once.)"""
        if self.cert_reqs != "CERT_NONE":
            super()._validate_conn(conn)
            return
        HTTPConnectionPool._validate_conn(self, conn)
        if conn.is_closed:
            conn.connect()


_POOLS = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


# -- where a URL goes ------------------------------------------------------------------


class _Route:
    """How one URL is requested, worked out once per URL (a source's URL is polled again and
    again): the URL as requests would send it, the pool's address, the request target, the
    proxy, and the credentials the URL itself or else ~/.netrc gives.

    `requests` did this work on every request (preparing, re-encoding and re-parsing the URL,
    scanning the environment for proxies, reading ~/.netrc): most of the CPU of a 304.
    """

    __slots__ = ("url", "scheme", "host", "port", "target", "proxy", "proxy_from", "auth", "netrc")

    def __init__(self, url: str, proxies: dict[str, str], netrc: bool) -> None:
        prepared = PreparedRequest()
        prepared.prepare_url(url, None)  # IDNA host, requoted path: requests' own rules
        self.url: str = prepared.url or url
        parts = urlsplit(self.url)  # the pool's address, taken as requests took it
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname
        self.port = parts.port
        self.proxy: str | None = None
        self.proxy_from = ""  # the environment variable that named the proxy, for messages
        if proxies:
            proxy = select_proxy(self.url, proxies)
            if proxy:
                self.proxy_from = _proxy_variable(self.url, proxies)
                try:
                    self.proxy = prepend_scheme_if_needed(proxy, "http")
                    host = parse_url(self.proxy).host
                except LocationValueError:  # urllib3's `Failed to parse: URL`, its password shown
                    host = None
                if not host:
                    raise InvalidProxyURL(
                        f"the proxy {_shown_proxy(proxy)} ({self.proxy_from}) is no URL with a host: write it "
                        "as http://host:port, any user name and password before the host, with their '/', '#', "
                        "'?' and '@' as %2F, %23, %3F and %40"
                    )
        # a plain-HTTP request through an HTTP proxy names the whole URL; otherwise the path
        proxied = self.proxy is not None and self.scheme != "https" and not self.proxy.lower().startswith("socks")
        self.target: str = urldefragauth(self.url) if proxied else (prepared.path_url or "/")
        # user:password written in the URL, else ~/.netrc for its host. requests let ~/.netrc
        # win over the URL, so a netrc entry for a host silently replaced credentials written
        # for one feed there; curl and pip take the URL's, as what was written for this URL.
        userinfo = get_auth_from_url(self.url) if "@" in parts.netloc else ("", "")
        found = get_netrc_auth(self.url) if netrc and not any(userinfo) else None
        self.auth: tuple[str, str] | None = userinfo if any(userinfo) else (tuple(found) if found else None)
        self.netrc = found is not None  # `auth` is the operator's, from ~/.netrc: for their own sources only


def _shown_proxy(proxy: str) -> str:
    """A proxy's URL for a message, its password masked however it is written: `masked`
    reads only a well-formed URL, and showed it for `user:pw@proxy:3128` (no scheme) and for a
    password holding a '/', '#' or '?' not percent-encoded, the very proxies that fail."""
    scheme, sep, rest = proxy.partition("://")
    if not sep:
        scheme, rest = "", proxy
    if "@" not in rest:
        return proxy
    userinfo, _, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{host}"


def _proxy_variable(url: str, proxies: dict[str, str]) -> str:
    """`HTTPS_PROXY`, `ALL_PROXY`...: the variable whose proxy `select_proxy` took for `url`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    keys = (
        [scheme, "all"]
        if not parts.hostname
        else [f"{scheme}://{parts.hostname}", scheme, f"all://{parts.hostname}", "all"]
    )
    key = next((k for k in keys if proxies.get(k)), "all")
    return f"{key.upper()}_PROXY" if "://" not in key else f"the proxy for {key}"


def _proxy_failure(e: urllib3.exceptions.ProxyError, route: _Route) -> str:
    """Why the proxy, not the feed's server, failed: `connection refused` alone sent the
    operator to the feed's host, when it was the proxy in HTTPS_PROXY that was down."""
    proxy = f"the proxy {_shown_proxy(route.proxy or '')} ({route.proxy_from})"
    cause = e.original_error
    tunnel = re.match(r"Tunnel connection failed: (.+)", str(cause)) if isinstance(cause, OSError) else None
    if tunnel:  # the proxy answered the CONNECT with an error: 403, 407, 502...
        return f"{proxy} answered the tunnel to {route.host}:{route.port or 443} with {tunnel.group(1).strip()}"
    if isinstance(cause, ConnectTimeoutError) and not isinstance(cause, NewConnectionError):
        return f"cannot reach {proxy}: timed out"
    return f"cannot reach {proxy}: {_reason(cause)}"


_UNTRUSTED = (
    "unable to get local issuer certificate",
    "unable to get issuer certificate",
    "self-signed certificate",
    "self signed certificate",
    "unable to verify the first certificate",
)


def _tls_advice(e: BaseException, source: Source, ca: str, proxied: bool) -> str:
    """What to do about a certificate that failed verification ("" for any other error): the
    bare OpenSSL reason named neither the bundle it was checked against nor the settings."""
    text = str(e)
    if "certificate verify failed" not in text:
        return ""
    if "certificate has expired" in text:
        return "; the server's operator must renew it (tls_verify: false skips the check meanwhile)"
    if not any(reason in text for reason in _UNTRUSTED):
        return ""
    bundle = source.tls_verify if isinstance(source.tls_verify, str) else ca
    who = "the server (or the proxy, if it inspects TLS)" if proxied else "the server"
    return (
        f"; no CA in {bundle} vouches for it: if {who} uses a private CA or a self-signed "
        "certificate, give that CA's certificate file in the source's tls_verify: (or in "
        "REQUESTS_CA_BUNDLE for every source), or tls_verify: false to skip the check"
    )


def _basic_auth(auth: tuple[str, str]) -> str:
    """UTF-8, as RFC 7617's `charset="UTF-8"` and today's browsers and curl send it.

    requests sends Latin-1 when the text fits it: `pässwörd` went out as bytes no server
    storing UTF-8 (htpasswd files written from a UTF-8 terminal, most applications) could
    match, while `密码` went as UTF-8, so a non-ASCII password worked or not by its letters.
    """
    raw = f"{auth[0]}:{auth[1]}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _merge_headers(base: dict[str, str], extra: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """`base` updated with `extra`, names compared without case (a configured `user-agent`
    replaces ours rather than going out beside it)."""
    out = dict(base)
    for name, value in extra:
        low = name.lower()
        for old in [k for k in out if k.lower() == low]:
            del out[old]
        out[name] = value
    return out


def _check_header(name: str, value: str) -> None:
    """Said naming the header, not quoting its value as requests did: a configured header's
    value is often a token, and the message goes to `fetch`'s output, the log and `status`."""
    if problem := header_value_problem(value):
        raise FetchError("", f"request failed: the value of the {name} header {problem}")


def _netrc_exists() -> bool:
    """Whether requests' `get_netrc_auth` could find a file: it looks on every call, we once."""
    names = (os.environ["NETRC"],) if "NETRC" in os.environ else ("~/.netrc", "~/_netrc")
    return any(os.path.exists(os.path.expanduser(n)) for n in names)


def _ca_location() -> str:
    """The CA bundle, as requests chose it: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or DEFAULT_CA_BUNDLE_PATH


def _verifying_context(ca: str, what: str = "") -> ssl.SSLContext:
    """A context verifying certificates against the CA bundle file or c_rehash'd folder `ca`."""
    if not ca or not os.path.exists(ca):
        raise FetchError("", f"request failed: Could not find a suitable TLS CA certificate bundle, "
                             f"invalid path: {what}{ca}")  # fmt: skip
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    try:
        if os.path.isdir(ca):
            context.load_verify_locations(capath=ca)
        else:
            context.load_verify_locations(cafile=ca)
    except ssl.SSLError as e:  # a file that holds no certificate
        raise FetchError("", f"request failed: no CA certificate could be read from {what}{ca}: {e}") from None
    return context


def _ca_stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when a CA bundle file (or c_rehash'd folder) is replaced or rewritten."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


_warned_unverified: set[str] = set()
_warned_lock = threading.Lock()


def _warn_unverified(key: str) -> None:
    """Say once per source per process that its certificate goes unchecked, as configured."""
    with _warned_lock:
        if key in _warned_unverified:
            return
        _warned_unverified.add(key)
    log.warning("source %s: TLS certificate not verified (tls_verify: false)", key)


# -- the fetcher ----------------------------------------------------------------------


class Fetcher:
    """Holds the connection pools (kept-alive connections shared by every source on a host),
    the per-host slots, and what is known of each URL's route, so every source polled
    through one Fetcher shares them.

    urllib3 directly, not a `requests.Session`: the Session re-prepared, re-encoded and
    re-merged everything on every request (~0.5 ms of CPU a 304, half of the poll), and
    closed a connection whose response had no body, so no 304 ever reused one. Proxies,
    NO_PROXY, the CA bundle, ~/.netrc and URL credentials follow requests' rules, with its
    own helpers, read once per URL; but credentials in the URL win over ~/.netrc, and Basic
    credentials are UTF-8 (see `_Route`, `_basic_auth`).
    """

    def __init__(
        self,
        user_agent: str = USER_AGENT,
        max_body: int = MAX_BODY,
        deadline: float = DEADLINE,
        clock: Callable[[], float] = time.monotonic,
        per_host: int = DEFAULT_PER_HOST,
        routes: int = ROUTES_KEPT,
    ) -> None:
        self.pools = PoolManager(num_pools=POOLS, maxsize=POOL_SIZE, block=False)
        self.pools.pool_classes_by_scheme = _POOLS
        self._proxy_managers: dict[str, PoolManager] = {}
        # Routes of the URLs requested lately, in two generations of at most `routes` each: a
        # full one becomes the old one, whose routes still in use are taken back on their next
        # request. Kept for good, a feed redirected to a URL signed anew on every poll (S3, a
        # CDN token) grew the daemon by ~1 KB a poll, up to 100,000 routes.
        self._routes: dict[str, _Route] = {}
        self._old_routes: dict[str, _Route] = {}
        self._routes_kept = max(1, routes)
        self._lock = threading.Lock()
        self._proxies = getproxies()  # HTTP(S)_PROXY, ALL_PROXY, NO_PROXY: read once, as requests cached them
        self._ca = _ca_location()
        self._netrc = _netrc_exists()
        # CA bundle (requests' or a source's `tls_verify`) → (its file's stamp, the pool's TLS kwargs)
        self._tls_by_ca: dict[str, tuple[tuple[int, int, int] | None, dict[str, Any]]] = {}
        self._ca_unread: dict[str, tuple[int, int, int] | None] = {}  # CA bundle → the stamp that failed to load
        self._unverified: dict[str, Any] | None = None  # `tls_verify: false`
        self._timeouts: dict[float, Timeout] = {}
        self.user_agent = user_agent
        self.max_body = max_body
        self.deadline = deadline
        self.clock = clock
        self.hosts = HostLimiter(per_host)

    def close(self) -> None:
        self.pools.clear()
        with self._lock:
            managers, self._proxy_managers = list(self._proxy_managers.values()), {}
        for manager in managers:
            manager.clear()
        _ALARMS.stop()

    def fetch(
        self,
        source: Source,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """GET `source.url` (following redirects) within the source's total deadline."""
        deadline = source.timeout or self.deadline
        with self.hosts.slot(source.url, source.per_host):  # waiting for a slot is not on the clock
            with _Watchdog(deadline) as dog:
                try:
                    result = self._exchange(source, etag, last_modified, deadline)
                except FetchError as e:
                    if dog.fired:
                        message = (
                            _deadline_message(deadline)
                            + self._via(e.url or source.url)
                            + _hop(e.url or source.url, source)
                        )
                        raise FetchError(source.key, message, url=e.url) from None
                    raise
                if dog.fired:  # a body cut short by the watchdog can look complete
                    message = _deadline_message(deadline) + self._via(result.url) + _hop(result.url, source)
                    raise FetchError(source.key, message, url=result.url)
        return result

    def _exchange(self, source: Source, etag: str | None, last_modified: str | None, deadline: float) -> FetchResult:
        start = self.clock()
        headers = {
            "User-Agent": source.user_agent or self.user_agent,
            "Accept-Encoding": ACCEPT_ENCODING,
            "Accept": ACCEPT,
            "Connection": "keep-alive",
        }
        etag, last_modified = _validator(etag), _validator(last_modified)  # stored by an older version
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        # Credentials and the configured headers go to the source's own host only, and never
        # in clear text after an https source was redirected to http (as requests rules). Its
        # own host is the configured URL's (the key): the URL polled may be one an HTML page
        # linked to or a redirect learnt, on any host, and the user gave them to neither.
        own_headers = _merge_headers(headers, source.headers) if source.headers else headers
        url = source.url
        origin = source.key if _is_web_url(source.key) else url
        # The credentials written in the configured URL are the source's as `auth:` is: a
        # same-host redirect to an absolute URL (`/feed` → `http://host/feed/`) names none, and
        # they were left out of it (a 401), as of the learnt redirect polled from then on.
        own_auth = source.auth or _url_auth(origin)
        visited = [url]
        hops: list[tuple[int, str]] = []
        while True:
            trusted = _credentials_may_follow(origin, url)
            try:
                resp = self._get(
                    source, url, own_headers if trusted else headers, own_auth if trusted else None, trusted
                )
            except FetchError as e:
                raise _at_hop(e, source, url, hops) from None
            lowered = {k.lower(): v for k, v in resp.headers.items()}
            status = resp.status
            location = lowered.get("location") if status in REDIRECT_CODES else None
            if location is None:
                break
            _release(resp)
            try:
                nxt = requote_uri(urljoin(url, _location(location))).split("#", 1)[0]
                scheme = urlsplit(nxt).scheme.lower()
            except ValueError as e:  # "http://[::1/x": urlsplit refuses it
                raise FetchError(source.key, f"redirected to an invalid URL ({e}): {location}", url=url) from None
            if scheme not in ("http", "https"):
                raise FetchError(source.key, f"redirected to an unsupported scheme: {nxt}", url=url)
            if nxt in visited:
                chain = " → ".join([*visited[visited.index(nxt) :], nxt])
                raise FetchError(source.key, f"redirect loop: {chain}", status=status, url=url)
            hops.append((status, nxt))
            if len(hops) > MAX_REDIRECTS:
                raise FetchError(source.key, f"too many redirects: more than {MAX_REDIRECTS}", url=url)
            visited.append(nxt)
            url = nxt
        try:
            if status == 304:
                _release(resp)
                if not (etag or last_modified or _conditional(source.headers)):
                    # Nothing was asked to be compared: a server fault, not "unchanged" (which
                    # showed a source that never gave a post as polled fine, for ever).
                    raise FetchError(
                        source.key,
                        "HTTP 304 Not Modified, though no If-None-Match or If-Modified-Since was sent: nothing to read",
                        status=status,
                        url=url,
                    )
                return self._result(status, lowered, url, None, start, hops)
            if status >= 300:
                _release(resp)
                reason = f"HTTP {status} {resp.reason or ''}".strip()
                if status < 400:
                    reason += " without a usable Location"
                if hops:  # the source's own URL did not answer this: say which one did
                    reason += f" from {url} (redirected there from {source.url})"
                temporary = any(code not in PERMANENT_CODES for code, _ in hops)
                raise FetchError(source.key, reason, status=status, headers=lowered, url=url, temporary=temporary)
            try:
                body = self._read(source, resp, lowered, start, deadline)
            except FetchError as e:
                raise _at_hop(e, source, url, hops) from None
            return self._result(status, lowered, url, body, start, hops)
        finally:
            resp.close()  # a no-op once released; drops a connection left mid-body

    def _get(
        self, source: Source, url: str, headers: dict[str, str], auth: tuple[str, str] | None, trusted: bool = True
    ) -> BaseHTTPResponse:
        """Send one GET (no redirect followed) and return the response with its body unread.

        ~/.netrc's credentials for the URL's host go only to a `trusted` hop (on the host of
        the source's configured URL), as the source's own do: a feed on another host that
        redirected (or an HTML page that linked) there had them sent, and the private feed
        they open published under its name."""
        deadline = source.timeout or self.deadline
        route: _Route | None = None
        try:
            route = self._route(url)
            scheme = urlsplit(url).scheme.lower()
            if scheme not in ("http", "https"):
                raise FetchError(source.key, f"unsupported scheme: No connection adapters were found for {url!r}")
            auth = auth or (route.auth if trusted or not route.netrc else None)
            if auth:  # replaces a configured Authorization header, whatever its case, as requests did
                headers = _merge_headers(headers, (("Authorization", _basic_auth(auth)),))
            for name, value in headers.items():
                _check_header(name, value)
            pool = self._pool(route, source)
            return self._open(pool, route.target, headers, self._timeout(deadline))
        except FetchError as e:
            raise FetchError(source.key, str(e), url=url) from None
        except (ConnectTimeoutError, ReadTimeoutError) as e:
            if isinstance(e, NewConnectionError):  # a subclass of ConnectTimeoutError, but refused
                raise FetchError(source.key, f"connection failed: {_reason(e)}", url=url) from None
            raise FetchError(source.key, f"timed out after {deadline:g}s{self._via(url)}", url=url) from None
        except InvalidSchema as e:
            if route is not None and route.proxy is not None and "SOCKS" in str(e):
                shown = _shown_proxy(route.proxy)
                message = f"the proxy {shown} ({route.proxy_from}) needs PySocks (pip install pysocks)"
                raise FetchError(source.key, f"unsupported scheme: {message}", url=url) from None
            raise FetchError(source.key, f"unsupported scheme: {e}", url=url) from None
        except (RequestException, LocationValueError, ValueError) as e:
            raise FetchError(source.key, f"request failed: {e}", url=url) from None
        except urllib3.exceptions.ProxyError as e:
            if route is None:  # pragma: no cover - raised only by a request, which needs a route
                raise
            raise FetchError(source.key, f"connection failed: {_proxy_failure(e, route)}", url=url) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            advice = _tls_advice(e, source, self._ca, route is not None and route.proxy is not None)
            raise FetchError(source.key, f"connection failed: {_reason(e)}{advice}", url=url) from None

    def _open(self, pool: HTTPConnectionPool, target: str, headers: dict[str, str], timeout: Timeout) -> Any:
        attempts = 0
        while True:
            _current.reused = False
            try:
                return pool.urlopen(
                    "GET",
                    target,
                    headers=headers,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=False,
                    retries=False,
                    timeout=timeout,
                )
            except ProtocolError:
                # A kept-alive connection the server had closed: it fails before any response
                # byte. Sent again, on another connection; never after the deadline.
                dog = getattr(_current, "watchdog", None)
                attempts += 1
                if not _current.reused or attempts > POOL_SIZE or (dog is not None and dog.fired):
                    raise

    def _via(self, url: str) -> str:
        """` through the proxy … (HTTPS_PROXY)` for a URL requested through one, else "": a
        proxy that hangs timed every source out, and the messages named only their servers."""
        route = self._routes.get(url) or self._old_routes.get(url)
        if route is None or route.proxy is None:
            return ""
        return f", through the proxy {_shown_proxy(route.proxy)} ({route.proxy_from})"

    def _route(self, url: str) -> _Route:
        route = self._routes.get(url)
        if route is None:
            route = self._old_routes.get(url)
            if route is None:
                proxies = self._proxies
                if proxies and should_bypass_proxies(url, no_proxy=None):  # NO_PROXY, as requests reads it
                    proxies = {}
                route = _Route(url, proxies, self._netrc)
            if len(self._routes) >= self._routes_kept:  # (threads racing here lose a route at worst)
                self._old_routes, self._routes = self._routes, {}
            self._routes[url] = route
        return route

    def _pool(self, route: _Route, source: Source | None = None) -> HTTPConnectionPool:
        """The pool for the route, with the TLS trust the source asks for (every hop of its
        request): its SSL context is part of urllib3's pool key, so a connection opened under
        one setting is never handed to a source with another, on the same host or not."""
        kwargs = self._tls_for(source) if route.scheme == "https" else None
        if kwargs is None and route.proxy is not None and route.proxy.lower().startswith("https:"):
            kwargs = self._proxy_tls()  # plain http in TLS to the proxy: the pool's is the proxy's
        if route.proxy is None:
            return self.pools.connection_from_host(route.host, route.port, route.scheme, pool_kwargs=kwargs)
        return self._proxy_manager(route.proxy).connection_from_host(
            route.host, route.port, route.scheme, pool_kwargs=kwargs
        )

    def _proxy_manager(self, proxy: str) -> PoolManager:
        # An https:// proxy is verified against the CA bundle as the feeds are (REQUESTS_CA_BUNDLE,
        # CURL_CA_BUNDLE, certifi): urllib3 alone used the system's store, and a proxy certified
        # by the company's CA, given in REQUESTS_CA_BUNDLE, was refused for every source.
        # (Loaded before the lock, which loading it takes.)
        tls = self._proxy_tls()["ssl_context"] if proxy.lower().startswith("https:") else None
        with self._lock:
            manager = self._proxy_managers.get(proxy)
            if manager is None:
                if proxy.lower().startswith("socks"):
                    if SOCKSProxyManager is None:
                        raise InvalidSchema("Missing dependencies for SOCKS support.")
                    username, password = get_auth_from_url(proxy)
                    manager = SOCKSProxyManager(
                        proxy, username=username, password=password, num_pools=POOLS, maxsize=POOL_SIZE
                    )
                else:
                    username, password = get_auth_from_url(proxy)
                    proxy_headers = {"Proxy-Authorization": _basic_auth((username, password))} if username else {}
                    manager = ProxyManager(
                        proxy, proxy_headers=proxy_headers, proxy_ssl_context=tls, num_pools=POOLS, maxsize=POOL_SIZE
                    )
                    manager.pool_classes_by_scheme = _POOLS
                self._proxy_managers[proxy] = manager
        return manager

    def _tls_for(self, source: Source | None) -> dict[str, Any]:
        """The pool's TLS kwargs for the source's `tls_verify`."""
        setting = True if source is None else source.tls_verify
        if setting is True:
            return self._verifying(self._ca)
        if setting is False:
            _warn_unverified(source.key if source is not None else "")
            with self._lock:  # one context, so one pool per host for every such source
                if self._unverified is None:
                    context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    self._unverified = {"cert_reqs": "CERT_NONE", "ssl_context": context}
                return self._unverified
        return self._verifying(setting, "tls_verify: ")

    def _verifying(self, ca: str, what: str = "", system: bool = False) -> dict[str, Any]:
        """TLS kwargs verifying against the CA bundle `ca`, loaded once (requests loaded it per
        connection) and again when the file is replaced: a daemon running for months sees a
        rotated private CA or `update-ca-certificates` without a restart. A new context is a
        new pool key, so no connection verified under the old trust is reused.

        `system`: the system's store is trusted too (an `https://` proxy: see `_proxy_tls`)."""
        key = f"{ca}\0system" if system else ca  # the cache's: one context per bundle and trust
        stamp = _ca_stamp(ca)
        kwargs = self._still_trusted(key, stamp)
        if kwargs is not None:
            return kwargs
        with self._lock:
            kwargs = self._still_trusted(key, stamp)  # another thread may have loaded it meanwhile
            if kwargs is not None:
                return kwargs
            cached = self._tls_by_ca.get(key)
            try:
                context = _verifying_context(ca, what)
                if system:
                    context.load_default_certs()
                kwargs = {"cert_reqs": "CERT_REQUIRED", "ssl_context": context}
            except FetchError as e:
                if cached is None:
                    raise
                # half written, or broken for good: said once, read again when it changes
                self._ca_unread[key] = stamp
                log.warning("CA bundle %s changed and cannot be read (%s): trusting what it held before", ca, e)
                return cached[1]
            self._tls_by_ca[key] = (stamp, kwargs)
            self._ca_unread.pop(key, None)
            return kwargs

    def _proxy_tls(self) -> dict[str, Any]:
        """TLS kwargs for an `https://` proxy: the CA bundle the feeds are checked against
        (REQUESTS_CA_BUNDLE, else certifi's), and the system's store, which urllib3 alone used.
        A company's CA in REQUESTS_CA_BUNDLE was refused; one installed in the system's store
        (`update-ca-certificates`), with no REQUESTS_CA_BUNDLE since the proxy only tunnels,
        was trusted before the bundle was, and must stay so."""
        return self._verifying(self._ca, system=True)

    def _still_trusted(self, ca: str, stamp: tuple[int, int, int] | None) -> dict[str, Any] | None:
        """The kwargs loaded from `ca` while it stands as it was then (or is gone for a moment,
        or changed into something unreadable: the trust it had); None when it must be read."""
        cached = self._tls_by_ca.get(ca)
        if cached is not None and (stamp is None or stamp in (cached[0], self._ca_unread.get(ca))):
            return cached[1]
        return None

    def _timeout(self, deadline: float) -> Timeout:
        timeout = self._timeouts.get(deadline)
        if timeout is None:
            timeout = self._timeouts[deadline] = Timeout(connect=min(CONNECT_TIMEOUT, deadline), read=deadline)
        return timeout

    def _result(
        self,
        status: int,
        headers: dict[str, str],
        url: str,
        body: bytes | None,
        start: float,
        hops: list[tuple[int, str]],
    ) -> FetchResult:
        permanent = None
        for code, target in hops:  # only an unbroken run of permanent hops from the start counts
            if code not in PERMANENT_CODES:
                break
            permanent = target
        return FetchResult(
            url=url,
            status=status,
            body=body,
            headers=headers,
            etag=_validator(headers.get("etag")),
            last_modified=_validator(headers.get("last-modified")),
            elapsed=self.clock() - start,
            redirects=tuple(hops),
            permanent_redirect=permanent,
        )

    def _read(
        self, source: Source, resp: BaseHTTPResponse, headers: dict[str, str], start: float, deadline: float
    ) -> bytes:
        """Read the body within the deadline and the size cap, decompressing ourselves.

        urllib3's own decoding would let a small gzip bomb inflate without bound before we
        could count, so the raw stream is read and inflated here with a running limit.
        """
        length = headers.get("content-length")
        if length and length.isdecimal() and int(length) > self.max_body:
            raise FetchError(source.key, f"body too large: {int(length)} bytes (limit {self.max_body})")
        # every Content-Encoding header, joined: `headers` keeps only the last of each name
        encoding = (resp.headers.get("content-encoding") or "").strip().lower()
        decoder = _decoder(encoding)
        parts: list[bytes] = []
        size = received = 0
        try:
            for chunk in resp.stream(CHUNK, decode_content=False):
                received += len(chunk)
                if self.clock() - start > deadline:
                    raise FetchError(source.key, _deadline_message(deadline))
                for data in decoder(chunk) if decoder else (chunk,):
                    size += len(data)
                    if size > self.max_body:
                        what = "inflated body" if decoder else "body"
                        raise FetchError(source.key, f"{what} too large: over {self.max_body} bytes")
                    parts.append(data)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise FetchError(source.key, f"connection broken while reading the body: {_reason(e)}") from None
        except zlib.error as e:
            raise FetchError(source.key, f"corrupt {encoding} body: {e}") from None
        except Exception as e:
            if _brotli is not None and isinstance(e, _brotli.error):
                raise FetchError(source.key, f"corrupt br body: {e}") from None
            raise
        if decoder is not None and received and not decoder.complete():
            raise FetchError(source.key, f"truncated {encoding} body: the compressed stream ends before its end")
        resp.release_conn()  # read to the end: the connection goes back to the pool
        return b"".join(parts)


def _hop(url: str, source: Source) -> str:
    """` at URL (redirected there from the source's URL)`, for an error of a URL a redirect led
    to; "" for the source's own: a DNS, TLS or connection failure, a timeout, a broken body
    said only the source's URL, which had answered fine, and the user looked at the wrong host."""
    return "" if url == source.url else f" at {url} (redirected there from {source.url})"


def _at_hop(e: FetchError, source: Source, url: str, hops: list[tuple[int, str]]) -> FetchError:
    """`e`, an error of `url`, naming it when a redirect led there (see `_hop`)."""
    if not hops:
        return e
    return FetchError(e.source, f"{e}{_hop(url, source)}", status=e.status, headers=e.headers, url=url)


def _credentials_may_follow(origin: str, url: str) -> bool:
    """Whether a redirect from the source's `origin` URL to `url` may carry its credentials
    and configured headers: same host (and port), and no downgrade from https to http."""
    if not _same_host(host_key(url), host_key(origin)):
        return False
    return not (urlsplit(origin).scheme.lower() == "https" and urlsplit(url).scheme.lower() == "http")


def _url_auth(url: str) -> tuple[str, str] | None:
    """The `user:password` written in `url`, as requests reads it; None when there is none."""
    if "@" not in url:  # the usual case: no parsing
        return None
    try:
        if "@" not in urlsplit(url).netloc:
            return None
    except ValueError:
        return None
    userinfo = get_auth_from_url(url)
    return userinfo if any(userinfo) else None


def _same_host(a: str, b: str) -> bool:
    """Whether two `host_key`s name one host, an internationalised name in either form: a
    server's Location gives `xn--bcher-kva.example` for the `bücher.example` the config
    writes, and that same-host redirect lost the source's credentials (a 401)."""
    if a == b:
        return True
    if a.isascii() and b.isascii():  # the usual case costs no encoding
        return False
    return _ascii_host(a) == _ascii_host(b)


@functools.lru_cache(maxsize=1024)
def _ascii_host(key: str) -> str:
    """A `host_key` with its name in IDNA (punycode) form, as requests sends it."""
    name, colon, port = key.rpartition(":") if not key.endswith("]") else (key, "", "")
    if not colon or not port.isdecimal():
        name, colon, port = key, "", ""
    try:
        name = wire_name(name.lower())
    except idna.IDNAError:
        pass  # no host requests could reach either: compared as written
    return f"{name}{colon}{port}"


def _is_web_url(url: str) -> bool:
    try:
        return urlsplit(url).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def _release(resp: BaseHTTPResponse) -> None:
    """Done with a response whose body we do not want (304, redirect, error): keep its
    connection alive when the rest of the body is short, else close it.

    Even an empty body is read: http.client marks a response done only once its body has
    been read, and refuses the next request on that connection until then. A redirect with
    `Content-Length: 0` handed back unread broke the very next request (the hop's target,
    often on the same pool), which was then sent again on a new connection.

    The rest is read with a short timeout of its own: a server that stalls in an error's
    body must not turn a 410 or a 429 (and its Retry-After) into a timeout.
    """
    remaining = resp.length_remaining
    conn = getattr(resp, "connection", None)
    try:
        if remaining is not None and remaining <= DRAIN_LIMIT and conn is not None and conn.sock is not None:
            if remaining:
                conn.sock.settimeout(DRAIN_TIMEOUT)  # set again by urllib3 when the connection is reused
            resp.read(decode_content=False)
            resp.release_conn()
            return
    except (urllib3.exceptions.HTTPError, OSError):
        pass
    resp.close()


def _conditional(configured: tuple[tuple[str, str], ...]) -> bool:
    """Whether the source's configured headers make every request conditional."""
    return any(name.lower() in ("if-none-match", "if-modified-since") for name, _ in configured)


_FOLD = re.compile(r"[\r\n]+[ \t]*")


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified as it can be sent back: a header folded over lines (obs-fold,
    which http.client keeps as CR LF + space) unfolded to one space, as RFC 9112 §5.2 says.

    Stored folded, it was sent back on every poll, and refused by our own header check
    before any request left: the source failed for good, whatever the server did.
    """
    if value is None:
        return None
    if "\n" in value or "\r" in value:  # rare: a 304 cycle should not pay for a regex
        value = _FOLD.sub(" ", value)
    return value.strip() or None


def _location(value: str) -> str:
    """The Location header as UTF-8, as requests reads it (http.client decodes it as latin-1)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _deadline_message(deadline: float) -> str:
    return f"timed out: the total deadline of {deadline:g}s passed before the response was complete"


class _Inflater:
    """An incremental inflater that never yields more than a bounded step at a time, and
    knows at the end whether the stream was complete.

    A gzip body may be several members one after another (RFC 1952 §2.2; urllib3 and Go read
    them all): each is inflated, and bytes after the last that start no member are ignored,
    as urllib3 does. A stream that stops before its end (a connection closed early, where
    nothing else frames the body) is a truncated body, not a shorter feed: read as one, its
    last entry's cut-off text would replace the stored one.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._br = _brotli.Decompressor() if encoding == "br" else None
        self._gzip = encoding in ("gzip", "x-gzip")
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS) if self._gzip else zlib.decompressobj(zlib.MAX_WBITS | 32)
        self._first = True
        self._members = 1
        self._ignoring = False  # what follows the last gzip member is no member

    def __call__(self, chunk: bytes) -> Iterator[bytes]:
        if self._br is not None:
            yield self._br.process(chunk, output_buffer_limit=CHUNK * 4)
            while not self._br.can_accept_more_data():
                yield self._br.process(b"", output_buffer_limit=CHUNK * 4)
            return
        if self._first and self.encoding == "deflate" and chunk[:1] not in (b"\x78", b"\x1f"):
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # some servers send raw deflate
        self._first = False
        data = chunk
        while data and not self._ignoring:
            if self._z.eof:
                if not self._gzip:
                    return  # deflate has one stream: what follows it is not the body
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._members += 1
            try:
                # max_length bounds each step, so a bomb is counted before it can allocate much
                yield self._z.decompress(data, CHUNK * 4)
                while self._z.unconsumed_tail:
                    yield self._z.decompress(self._z.unconsumed_tail, CHUNK * 4)
            except zlib.error:
                if self._members == 1:
                    raise
                self._ignoring = True  # trailing bytes that start no member, as urllib3 reads them
                return
            data = self._z.unused_data if self._z.eof else b""

    def complete(self) -> bool:
        """Whether the stream ended where it says it ends (the last gzip member too)."""
        if self._br is not None:
            return bool(self._br.is_finished())
        return self._ignoring or self._z.eof


class _Chain:
    """Inflaters one after another, for a body encoded more than once (`gzip, gzip`: a
    server compressing what its application had compressed already, often sent as two
    Content-Encoding headers, which arrive joined). Every step stays bounded as one is."""

    def __init__(self, inflaters: list[_Inflater]) -> None:
        self._inflaters = inflaters

    def __call__(self, chunk: bytes) -> Iterator[bytes]:
        return self._run(0, chunk)

    def _run(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self._inflaters):
            yield data
            return
        for piece in self._inflaters[i](data):
            if piece:
                yield from self._run(i + 1, piece)

    def complete(self) -> bool:
        return all(inflater.complete() for inflater in self._inflaters)


def _decoder(encoding: str) -> _Inflater | _Chain | None:
    """The inflater for a Content-Encoding, or None for one we do not decode.

    A list names the codings in the order they were applied (RFC 9110 §8.4), so they are
    undone from the last; `identity` is none. Read as one unknown name, `gzip, gzip` or
    `identity, gzip` went to the parser still compressed: "not a feed", where requests read it.
    """
    names = [name.strip() for name in encoding.split(",")]
    names = [name for name in names if name and name != "identity"]
    if not all((name == "br" and _brotli is not None) or name in ("gzip", "x-gzip", "deflate") for name in names):
        return None
    if len(names) == 1:
        return _Inflater(names[0])
    return _Chain([_Inflater(name) for name in reversed(names)]) if names else None


_INCOMPLETE = re.compile(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)")
# "Failed to resolve 'h' ([Errno -3] Temporary failure in name resolution)": the DNS server
# down or out of reach (a corporate resolver) fell through to the text, an object's repr first
_DNS = re.compile(r"Failed to resolve '([^']*)' \((?:\[Errno -?\d+\] )?([^)]*)\)")
_TLS = re.compile(r"\[SSL(?:: ([A-Z_]+))?\] ([^(]*?)\s*(?:\(_ssl\.c:\d+\))?(?:['\")]|$)")


def _reason(e: BaseException) -> str:
    """The cause in a few words, not urllib3's nested reprs (pools, retries, tuples)."""
    text = str(e)
    if "InvalidChunkLength" in text or "InvalidChunk" in text:
        return "invalid chunked encoding (a chunk size that is not a hex number)"
    m = _INCOMPLETE.search(text)
    if m:  # urllib3 repeats its nested repr: "('Connection broken: IncompleteRead(…)', IncompleteRead(…))"
        got, more = int(m.group(1)), int(m.group(2))
        return f"the server closed the connection {more} bytes short of the {got + more} it announced"
    m = _DNS.search(text)
    if m and isinstance(e, NewConnectionError):  # urllib3's NameResolutionError, a repr in its text
        return f"cannot resolve {m.group(1)} (DNS: {m.group(2)})"
    m = _TLS.search(text)
    if m and isinstance(e, (urllib3.exceptions.SSLError, ssl.SSLError)):
        return f"TLS handshake failed: {m.group(2).strip() or m.group(1)}"
    for marker in ("Connection refused", "Name or service not known", "Connection reset", "timed out"):
        if marker in text:
            return marker
    return text[:200]
