"""The transport under the fetcher, against real local servers: kept-alive connections,
proxies from the environment (NO_PROXY, proxy credentials, CONNECT tunnels), TLS
verification with the CA bundle requests would use, and credentials from ~/.netrc or the URL.

The fetcher calls urllib3 directly (not requests.Session) and reproduces requests' rules for
these; each test here would catch a rule lost on the way.
"""

from __future__ import annotations

import base64
import datetime
import gc
import http.server
import os
import select
import socket
import sqlite3
import ssl
import subprocess
import threading
from collections.abc import Iterator

import pytest
import trustme
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from aggregator.fetch import Fetcher, FetchError, _Route
from aggregator.models import Source

from .conftest import run_cli

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
ETAG = '"v1"'


def source(url: str, **kw) -> Source:
    return Source(key=url, url=url, **kw)


class _Server:
    """A threaded stdlib server that counts the TCP connections it accepts."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        outer = self

        class Counting(handler):  # type: ignore[misc, valid-type]
            def setup(self) -> None:
                with outer._lock:
                    outer.connections += 1
                super().setup()

            def parse_request(self) -> bool:
                ok = super().parse_request()
                if ok:
                    with outer._lock:
                        outer.requests.append((self.path, dict(self.headers)))
                return ok

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Feed(http.server.BaseHTTPRequestHandler):
    """200 with an ETag, 304 when it comes back; /moved redirects, /missing is a 404 with a body."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.startswith("/moved"):
            self._send(302, b"<p>moved</p>", Location="/feed")
        elif self.path.startswith("/missing"):
            self._send(404, b"<p>not here</p>")
        elif self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.end_headers()
        else:
            self._send(200, RSS, ETag=ETAG)

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[_Server]:
    server = _Server(_Feed)
    yield server
    server.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- kept-alive connections ---------------------------------------------------------------


def test_one_connection_serves_every_source_on_a_host(feed_server: _Server, no_proxy_env):
    """200s, 304s, a redirect and a 404 (both with a short body) all reuse one connection:
    requests closed the connection of every response whose body was not read (every 304)."""
    fetcher = Fetcher()
    first = fetcher.fetch(source(feed_server.url("/feed?a")))
    assert first.status == 200 and first.body == RSS
    for name in "abcdef":
        assert fetcher.fetch(source(feed_server.url(f"/feed?{name}")), etag=ETAG).not_modified
    moved = fetcher.fetch(source(feed_server.url("/moved")), etag=ETAG)
    assert moved.not_modified and moved.redirects == ((302, feed_server.url("/feed")),)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher.fetch(source(feed_server.url("/missing")))
    assert fetcher.fetch(source(feed_server.url("/feed?z"))).body == RSS
    assert len(feed_server.requests) == 11
    assert feed_server.connections == 1


def _send_feed(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(RSS)))
    handler.end_headers()
    handler.wfile.write(RSS)


class _EmptyRedirects(http.server.BaseHTTPRequestHandler):
    """/hop/<code> redirects to /feed with an empty body, `Content-Length: 0`; /open/<code>
    with no Content-Length and `Connection: keep-alive`, then keeps the connection open, so
    only the connection's end could mark the end of that body."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.startswith(("/hop/", "/open/")):
            self.send_response(int(self.path.split("?")[0].split("/")[2]))
            self.send_header("Location", "/feed")
            if self.path.startswith("/hop/"):
                self.send_header("Content-Length", "0")
            else:
                self.send_header("Connection", "keep-alive")
            self.end_headers()
        else:
            _send_feed(self)

    def log_message(self, *args: object) -> None:
        pass


class _SignedRedirects(http.server.BaseHTTPRequestHandler):
    """/signed answers 302 to the feed at a URL signed anew for every request (S3, a CDN token)."""

    protocol_version = "HTTP/1.1"
    signed = 0

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.startswith("/signed"):
            type(self).signed += 1
            self.send_response(302)
            self.send_header("Location", f"/feed.xml?X-Amz-Signature={type(self).signed:064x}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            _send_feed(self)

    def log_message(self, *args: object) -> None:
        pass


def test_redirects_to_ever_new_urls_do_not_grow_the_fetchers_memory(no_proxy_env):
    """Each URL's route was cached for good, up to 100,000 of them: a feed redirected to a URL
    signed anew on every poll left ~0.8 KB per poll in a daemon, ~80 MB after months. The
    routes kept are bounded; those in use stay (the second generation holds them meanwhile)."""
    server = _Server(_SignedRedirects)
    try:
        fetcher = Fetcher(routes=16)
        feed = source(server.url("/signed"))
        for _ in range(100):
            assert fetcher.fetch(feed).body == RSS
        gc.collect()
        routes = sum(isinstance(o, _Route) for o in gc.get_objects())
        assert routes <= 2 * 16, f"{routes} routes kept after 100 polls"
        assert server.connections == 1
    finally:
        server.close()


@pytest.mark.parametrize("code", [301, 302, 307])
def test_a_redirect_with_an_empty_body_leaves_its_connection_usable(code, no_proxy_env):
    """The hop's empty body is read before its connection goes back to the pool: unread,
    http.client refused the next request on it (the hop's own target, at once), which went
    out again on a new connection: two connections and an extra request per redirect."""
    server = _Server(_EmptyRedirects)
    try:
        fetcher = Fetcher()
        for i in range(3):
            result = fetcher.fetch(source(server.url(f"/hop/{code}?{i}")))
            assert result.body == RSS and result.redirects == ((code, server.url("/feed")),)
        assert fetcher.fetch(source(server.url("/feed?after"))).body == RSS
        assert len(server.requests) == 7  # nothing sent twice
        assert server.connections == 1
    finally:
        server.close()


def test_a_redirect_whose_body_has_no_length_is_not_waited_for_nor_reused(no_proxy_env):
    """Without Content-Length only the connection's end would end the body, and this server
    keeps it open: the connection is dropped at once, neither read to the end (a hang until
    the deadline) nor handed to the next request (which would read that body as its answer)."""
    server = _Server(_EmptyRedirects)
    try:
        fetcher = Fetcher()
        for i in range(2):
            result = fetcher.fetch(source(server.url(f"/open/302?{i}"), timeout=5.0))
            assert result.body == RSS and result.elapsed < 2.0
        assert fetcher.fetch(source(server.url("/feed?after"))).body == RSS
        assert len(server.requests) == 5
        assert server.connections == 3  # each redirect's connection dropped; /feed's kept for the next
    finally:
        server.close()


class _Trickle(http.server.BaseHTTPRequestHandler):
    """/hop redirects with an empty body (its connection goes back to the pool mid-fetch) to
    `target`; /slow trickles a 200 body; /stalled-gone sends a 410 whose body never ends."""

    protocol_version = "HTTP/1.1"
    target = ""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", self.target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/stalled-gone":
            self.send_response(410)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"<p>gone")
            self.wfile.flush()
            threading.Event().wait(5)  # the rest never comes
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            for i in range(0, len(RSS), len(RSS) // 4 + 1):
                self.wfile.write(RSS[i : i + len(RSS) // 4 + 1])
                self.wfile.flush()
                threading.Event().wait(0.4)

    def log_message(self, *args: object) -> None:
        pass


def test_a_deadline_never_cuts_a_download_that_reuses_the_connection(no_proxy_env):
    """Source X's redirect hands its connection back to the pool; source Y then downloads on
    that connection while X waits on a slow host. X's deadline passes during Y's download:
    it ends X, and only X (a watchdog used to shut every socket its fetch had touched)."""
    a, b = _Server(_Trickle), _Server(_Trickle)
    try:
        _Trickle.target = b.url("/slow")
        fetcher = Fetcher()
        results: dict[str, object] = {}

        def run(key: str, src: Source) -> None:
            try:
                results[key] = fetcher.fetch(src).body
            except FetchError as e:
                results[key] = e

        x = threading.Thread(target=run, args=("x", source(a.url("/hop"), timeout=1.0)))
        x.start()
        while not b.requests:  # X has left host A for host B
            threading.Event().wait(0.01)
        y = threading.Thread(target=run, args=("y", source(a.url("/slow"), timeout=30.0)))
        y.start()
        x.join()
        y.join()
        assert isinstance(results["x"], FetchError) and "deadline" in str(results["x"])
        assert results["y"] == RSS, results["y"]
        assert a.connections == 1  # Y did reuse X's connection
    finally:
        a.close()
        b.close()


def test_an_error_whose_body_stalls_is_still_that_error(no_proxy_env):
    """A 410 whose body stops coming is a 410 (the source is gone), not a timeout: the rest of
    an unwanted body gets half a second, then the connection is dropped."""
    server = _Server(_Trickle)
    try:
        with pytest.raises(FetchError) as caught:
            Fetcher().fetch(source(server.url("/stalled-gone"), timeout=3.0))
        assert caught.value.status == 410 and "HTTP 410" in str(caught.value)
    finally:
        server.close()


class _ClosesKeptAlive(http.server.BaseHTTPRequestHandler):
    """Answers the first request on a connection, and hangs up on the next one without a
    word: what a server whose keep-alive timeout ran out as the request left looks like."""

    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        self.handle_one_request()  # the first request: answered, connection kept open
        if self.close_connection:
            return
        readable, _, _ = select.select([self.connection], [], [], 5)
        if readable:
            self.raw_requestline = self.rfile.readline(65537)
            self.parse_request()  # counted by the server, then no answer at all

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.startswith("/dead"):
            self.close_connection = True  # a fresh connection that fails must not be retried
            return
        _send_feed(self)

    def log_message(self, *args: object) -> None:
        pass


def test_a_kept_alive_connection_closed_by_the_server_is_retried_once_on_a_new_one(no_proxy_env):
    server = _Server(_ClosesKeptAlive)
    try:
        fetcher = Fetcher()
        assert fetcher.fetch(source(server.url("/feed?1"))).body == RSS
        assert fetcher.fetch(source(server.url("/feed?2"))).body == RSS  # first try hung up on, then a new one
        assert [p for p, _ in server.requests] == ["/feed?1", "/feed?2", "/feed?2"]
        assert server.connections == 2
        with pytest.raises(FetchError, match="connection failed: .*Remote end closed connection"):
            Fetcher().fetch(source(server.url("/dead")))
        assert [p for p, _ in server.requests].count("/dead") == 1  # not retried: not a reused connection
    finally:
        server.close()


# -- proxies from the environment ----------------------------------------------------------


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy for plain HTTP (absolute-form request lines) and CONNECT tunnels."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.send_response(200)
        self.send_header("Content-Length", str(len(RSS)))
        self.end_headers()
        self.wfile.write(RSS)

    def do_CONNECT(self) -> None:  # noqa: N802 - stdlib name
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=5)
        self.send_response(200, "Connection established")
        self.end_headers()
        client = self.connection
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 5)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    while isinstance(sock, ssl.SSLSocket) and sock.pending():  # a proxy spoken to over TLS:
                        data += sock.recv(sock.pending())  # records already read, which select() cannot see
                    (upstream if sock is client else client).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[_Server]:
    server = _Server(_Proxy)
    yield server
    server.close()


def test_no_proxy_sends_listed_hosts_direct_and_the_rest_through_the_proxy(feed_server, proxy, no_proxy_env):
    no_proxy_env.setenv("HTTP_PROXY", f"http://feeder:pa55@127.0.0.1:{proxy.port}")
    no_proxy_env.setenv("NO_PROXY", "localhost,127.0.0.1")
    fetcher = Fetcher()
    assert fetcher.fetch(source(feed_server.url("/feed"))).body == RSS  # 127.0.0.1: direct
    assert fetcher.fetch(source("http://feeds.example.invalid/feed.xml")).body == RSS  # through the proxy
    assert [p for p, _ in feed_server.requests] == ["/feed"]
    assert [p for p, _ in proxy.requests] == ["http://feeds.example.invalid/feed.xml"]
    sent = proxy.requests[0][1]
    assert sent["Proxy-Authorization"] == "Basic " + base64.b64encode(b"feeder:pa55").decode()
    assert sent["Host"] == "feeds.example.invalid"


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A proxy that wants credentials it was not given: 407 to a CONNECT."""

    protocol_version = "HTTP/1.1"

    def do_CONNECT(self) -> None:  # noqa: N802 - stdlib name
        self.send_response(407, "Proxy Authentication Required")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    "proxy",
    [
        "op:s3cret@127.0.0.1:3128",  # no scheme
        "http://op:s3/cret@127.0.0.1:3128",  # a password's '/', '#' or '?' not percent-encoded
        "http://op:s3#cret@127.0.0.1:3128",
    ],
)
def test_a_proxy_url_that_cannot_be_read_is_named_with_its_password_masked(proxy, no_proxy_env):
    """`masked` reads only a well-formed URL: such a proxy's message showed its password
    (`the proxy op:s3cret@… names no host`, urllib3's `Failed to parse: http://op:s3/cret@…`,
    which did not even say it was the proxy)."""
    no_proxy_env.setenv("HTTP_PROXY", proxy)
    with pytest.raises(FetchError) as e:
        Fetcher().fetch(source("http://feeds.example.invalid/feed.xml"))
    assert "cret" not in str(e.value)
    assert str(e.value).startswith("request failed: the proxy ")
    assert "op:***@127.0.0.1:3128 (HTTP_PROXY) is no URL with a host: write it as http://host:port" in str(e.value)


def test_a_failing_proxy_is_named_not_the_feeds_server(no_proxy_env):
    """The proxy down was `connection failed: Connection refused` under the feed's URL (the
    operator looked at the feed's server), and a proxy refusing the tunnel urllib3's nested
    repr; each names the proxy and its variable now, its password masked."""
    with socket.socket() as closed:  # a port nothing listens on: the proxy is down
        closed.bind(("127.0.0.1", 0))
        down = closed.getsockname()[1]
    no_proxy_env.setenv("HTTP_PROXY", f"http://op:pw9@127.0.0.1:{down}")
    with pytest.raises(FetchError) as e:
        Fetcher().fetch(source("http://feeds.example.invalid/feed.xml"))
    assert str(e.value) == (
        f"connection failed: cannot reach the proxy http://op:***@127.0.0.1:{down} (HTTP_PROXY): Connection refused"
    )
    refusing = _Server(_Refusing)
    try:
        no_proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{refusing.port}")
        with pytest.raises(FetchError) as e:
            Fetcher().fetch(source("https://feeds.example.invalid/feed.xml"))
        assert str(e.value) == (
            f"connection failed: the proxy http://127.0.0.1:{refusing.port} (HTTPS_PROXY) answered the tunnel "
            "to feeds.example.invalid:443 with 407 Proxy Authentication Required"
        )
    finally:
        refusing.close()


def test_a_timeout_through_a_proxy_names_the_proxy(no_proxy_env):
    """A proxy that accepts and never answers timed every source out, each message naming
    only its own server."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never answers
    try:
        proxy = f"http://op:pw9@127.0.0.1:{silent.getsockname()[1]}"
        no_proxy_env.setenv("HTTP_PROXY", proxy)
        no_proxy_env.setenv("HTTPS_PROXY", proxy)
        for url, variable in (
            ("http://feeds.example.invalid/a", "HTTP_PROXY"),
            ("https://feeds.example.invalid/b", "HTTPS_PROXY"),
        ):
            with pytest.raises(FetchError) as e:
                Fetcher().fetch(source(url, timeout=0.3))
            said = str(e.value)
            assert said.startswith("timed out") and said.endswith(
                f", through the proxy {proxy.replace('pw9', '***')} ({variable})"
            ), said
    finally:
        silent.close()


# -- TLS: verification with requests' CA bundle ------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server(ca: trustme.CA, *names: str) -> _Server:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return _Server(_Feed, tls=context)


def test_tls_is_verified_against_the_ca_bundle_requests_would_use(ca, tmp_path, no_proxy_env):
    server = _tls_server(ca, "127.0.0.1")
    try:
        url = server.url("/feed", scheme="https")
        with pytest.raises(FetchError, match="TLS handshake failed: certificate verify failed") as e:
            Fetcher().fetch(source(url))  # certifi's bundle does not know our test CA
        # what to do, and the bundle that was asked, as the message goes to `status` and the log
        assert f"; no CA in {DEFAULT_CA_BUNDLE_PATH} vouches for it: if the server uses a private CA" in str(e.value)
        assert "in the source's tls_verify: (or in REQUESTS_CA_BUNDLE for every source)" in str(e.value)
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        fetcher = Fetcher()
        assert fetcher.fetch(source(url)).body == RSS
        assert fetcher.fetch(source(url), etag=ETAG).not_modified
        assert len(server.requests) == 2 and server.connections == 1  # one kept-alive TLS connection
        # (the refused handshake never reached a handler: the server's accept() dropped it)
    finally:
        server.close()


def test_tls_certificate_for_another_name_is_refused(ca, tmp_path, no_proxy_env):
    server = _tls_server(ca, "feeds.example.org")
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        no_proxy_env.setenv("CURL_CA_BUNDLE", str(bundle))
        with pytest.raises(FetchError, match="certificate verify failed: IP address mismatch"):
            Fetcher().fetch(source(server.url("/feed", scheme="https")))
    finally:
        server.close()


def test_an_expired_certificate_says_its_operator_must_renew_it(ca, tmp_path, no_proxy_env):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    ca.issue_cert("127.0.0.1", not_before=past, not_after=past + datetime.timedelta(days=90)).configure_cert(context)
    server = _Server(_Feed, tls=context)
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        with pytest.raises(FetchError) as e:
            Fetcher().fetch(source(server.url("/feed", scheme="https")))
        assert str(e.value) == (
            "connection failed: TLS handshake failed: certificate verify failed: certificate has expired; "
            "the server's operator must renew it (tls_verify: false skips the check meanwhile)"
        )
    finally:
        server.close()


def test_https_through_a_proxy_is_a_verified_connect_tunnel(ca, tmp_path, proxy, no_proxy_env):
    server = _tls_server(ca, "127.0.0.1")
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        no_proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        assert Fetcher().fetch(source(server.url("/feed", scheme="https"))).body == RSS
        assert [p for p, _ in proxy.requests] == [f"127.0.0.1:{server.port}"]  # CONNECT host:port
        assert [p for p, _ in server.requests] == ["/feed"]  # the feed itself, inside the tunnel
    finally:
        server.close()


def test_an_https_proxy_is_verified_against_the_ca_bundle_the_feeds_are(ca, tmp_path, no_proxy_env):
    """An `https://` proxy certified by the company's CA, given in REQUESTS_CA_BUNDLE: urllib3
    checked it against the system's store, and refused it for every source, http or https
    (here a feed of another private CA, the source's own `tls_verify`, inside the tunnel)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    company = trustme.CA()
    company.issue_cert("127.0.0.1").configure_cert(context)
    tls_proxy = _Server(_Proxy, tls=context)
    server = _tls_server(ca, "127.0.0.1")
    try:
        bundle, feeds_ca = tmp_path / "company.pem", tmp_path / "feeds.pem"
        company.cert_pem.write_to_path(str(bundle))
        ca.cert_pem.write_to_path(str(feeds_ca))
        no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        no_proxy_env.setenv("HTTP_PROXY", f"https://127.0.0.1:{tls_proxy.port}")
        no_proxy_env.setenv("HTTPS_PROXY", f"https://127.0.0.1:{tls_proxy.port}")
        fetcher = Fetcher()
        assert fetcher.fetch(source("http://feeds.example.invalid/feed.xml")).body == RSS
        assert fetcher.fetch(source(server.url("/feed", scheme="https"), tls_verify=str(feeds_ca))).body == RSS
        assert [p for p, _ in tls_proxy.requests] == [
            "http://feeds.example.invalid/feed.xml",
            f"127.0.0.1:{server.port}",
        ]
        assert [p for p, _ in server.requests] == ["/feed"]
    finally:
        server.close()
        tls_proxy.close()


def test_an_https_proxy_certified_by_a_ca_of_the_system_store_is_still_trusted(ca, tmp_path, no_proxy_env):
    """The company's CA installed in the system's store (`update-ca-certificates`), as IT does,
    and no REQUESTS_CA_BUNDLE (the proxy only tunnels: the feeds' certificates are public ones):
    the `https://` proxy was trusted, then checked against certifi's bundle alone, and every
    source failed after an upgrade. (SSL_CERT_FILE stands for the system's store here.)"""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    company = trustme.CA()
    company.issue_cert("127.0.0.1").configure_cert(context)
    tls_proxy = _Server(_Proxy, tls=context)
    try:
        system = tmp_path / "system.pem"
        company.cert_pem.write_to_path(str(system))
        no_proxy_env.setenv("SSL_CERT_FILE", str(system))
        no_proxy_env.delenv("REQUESTS_CA_BUNDLE", raising=False)
        no_proxy_env.delenv("CURL_CA_BUNDLE", raising=False)
        no_proxy_env.setenv("HTTP_PROXY", f"https://127.0.0.1:{tls_proxy.port}")
        assert Fetcher().fetch(source("http://feeds.example.invalid/feed.xml")).body == RSS
        assert [p for p, _ in tls_proxy.requests] == ["http://feeds.example.invalid/feed.xml"]
    finally:
        tls_proxy.close()


# -- credentials and headers --------------------------------------------------------------------


def test_credentials_from_netrc_and_the_url_and_the_source_auth_first(feed_server, tmp_path, no_proxy_env):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login fromnetrc password n1\n")
    netrc.chmod(0o600)
    no_proxy_env.setenv("NETRC", str(netrc))

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    Fetcher().fetch(source(feed_server.url("/feed?netrc")))
    Fetcher().fetch(source(feed_server.url("/feed?own"), auth=("me", "s3cret")))
    no_proxy_env.setenv("NETRC", str(tmp_path / "none"))
    Fetcher().fetch(source(f"http://inurl:u1@127.0.0.1:{feed_server.port}/feed?url"))
    sent = {path: headers.get("Authorization") for path, headers in feed_server.requests}
    assert sent == {
        "/feed?netrc": basic("fromnetrc", "n1"),
        "/feed?own": basic("me", "s3cret"),
        "/feed?url": basic("inurl", "u1"),
    }


def _credentials(header: str | None) -> bytes | None:
    """The user:password bytes of a Basic Authorization header, as a server decodes them."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(token, validate=True)


def test_non_ascii_credentials_are_sent_as_utf8_from_every_place_they_come_from(feed_server, tmp_path, no_proxy_env):
    """feeds.yaml's `auth`, the URL (as written or percent-encoded) and ~/.netrc: `pässwörd`
    (which fits Latin-1, so requests sent it as such) and `密码` both go out as UTF-8."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login jürgen password pässwörd\n", encoding="utf-8")
    netrc.chmod(0o600)
    no_proxy_env.setenv("NETRC", str(netrc))
    fetcher = Fetcher()
    port = feed_server.port
    fetcher.fetch(source(feed_server.url("/feed?yaml-latin"), auth=("jürgen", "pässwörd")))
    fetcher.fetch(source(feed_server.url("/feed?yaml-cjk"), auth=("用户", "密码")))
    fetcher.fetch(source(f"http://j%C3%BCrgen:p%C3%A4ssw%C3%B6rd@127.0.0.1:{port}/feed?url-encoded"))
    fetcher.fetch(source(f"http://用户:密码@127.0.0.1:{port}/feed?url-raw"))
    fetcher.fetch(source(feed_server.url("/feed?netrc")))
    sent = {path: _credentials(headers.get("Authorization")) for path, headers in feed_server.requests}
    assert sent == {
        "/feed?yaml-latin": "jürgen:pässwörd".encode(),
        "/feed?yaml-cjk": "用户:密码".encode(),
        "/feed?url-encoded": "jürgen:pässwörd".encode(),
        "/feed?url-raw": "用户:密码".encode(),
        "/feed?netrc": "jürgen:pässwörd".encode(),
    }


def test_non_ascii_proxy_credentials_are_sent_as_utf8(proxy, no_proxy_env):
    no_proxy_env.setenv("HTTP_PROXY", f"http://j%C3%BCrgen:p%C3%A4ssw%C3%B6rd@127.0.0.1:{proxy.port}")
    assert Fetcher().fetch(source("http://feeds.example.invalid/feed.xml")).body == RSS
    assert _credentials(proxy.requests[0][1].get("Proxy-Authorization")) == "jürgen:pässwörd".encode()


def test_netrc_is_used_only_when_no_credentials_are_configured(feed_server, tmp_path, no_proxy_env):
    """The source's `auth`, then the URL's own user:password, then ~/.netrc for the host
    (requests let ~/.netrc replace the URL's: a host-wide entry won over one feed's)."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login fromnetrc password n1\n")
    netrc.chmod(0o600)
    no_proxy_env.setenv("NETRC", str(netrc))
    fetcher = Fetcher()
    port = feed_server.port
    fetcher.fetch(source(f"http://inurl:u1@127.0.0.1:{port}/feed?url", auth=("me", "s3cret")))
    fetcher.fetch(source(f"http://inurl:u1@127.0.0.1:{port}/feed?url-only"))
    fetcher.fetch(source(feed_server.url("/feed?none")))
    sent = {path: _credentials(headers.get("Authorization")) for path, headers in feed_server.requests}
    assert sent == {"/feed?url": b"me:s3cret", "/feed?url-only": b"inurl:u1", "/feed?none": b"fromnetrc:n1"}


def test_configured_headers_replace_ours_whatever_their_case(feed_server, no_proxy_env):
    headers = (("user-agent", "MyReader/1.0"), ("ACCEPT", "application/rss+xml"))
    Fetcher().fetch(source(feed_server.url("/feed"), headers=headers))
    _, sent = feed_server.requests[0]
    user_agents = [v for k, v in sent.items() if k.lower() == "user-agent"]
    assert user_agents == ["MyReader/1.0"]
    assert [v for k, v in sent.items() if k.lower() == "accept"] == ["application/rss+xml"]
    both = (("authorization", "Bearer t0ken"),)
    Fetcher().fetch(source(feed_server.url("/feed?auth"), headers=both, auth=("me", "pw")))
    _, sent = feed_server.requests[1]
    assert [v for k, v in sent.items() if k.lower() == "authorization"] == ["Basic bWU6cHc="]  # auth wins, once


def test_credentials_follow_a_redirect_only_to_the_same_host_and_never_down_to_http():
    from aggregator.fetch import _credentials_may_follow

    assert _credentials_may_follow("https://feeds.example/a", "https://feeds.example/b")
    assert _credentials_may_follow("http://feeds.example/a", "https://feeds.example/b")  # upgrade: fine
    assert not _credentials_may_follow("https://feeds.example/a", "http://feeds.example/b")  # clear text
    assert not _credentials_may_follow("https://feeds.example/a", "https://other.example/a")
    assert not _credentials_may_follow("https://feeds.example/a", "https://feeds.example:8443/a")
    assert _credentials_may_follow("https://bücher.example/a", "https://xn--bcher-kva.example/b")  # one host
    assert not _credentials_may_follow("https://bücher.example/a", "https://xn--bcher-kva.example:8443/b")
    # an ASCII label no IDNA allows beside one it encodes: urllib3 encodes only the latter
    assert _credentials_may_follow("https://my_feed.bücher.example/a", "https://my_feed.xn--bcher-kva.example/b")


class _Private(http.server.BaseHTTPRequestHandler):
    """A private feed that moved: /old.xml answers 301 to the absolute URL of /new.xml on the
    host the request named (as servers write Location: an IDN host in punycode); /new.xml
    wants credentials. Serves as a forward proxy too (absolute-form request lines)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.endswith("/old.xml"):
            self.send_response(301)
            self.send_header("Location", f"http://{self.headers['Host']}/new.xml")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ok = self.headers.get("Authorization") is not None
        self.send_response(200 if ok else 401)
        body = RSS if ok else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("how", ["url", "auth", "idn-url", "idn-auth"])
def test_credentials_follow_a_same_host_redirect_to_an_absolute_url(how, no_proxy_env):
    """`http://user:pw@host/old.xml` moved to `http://host/new.xml`: the Location names no
    credentials, and those written in the source's URL were left behind (HTTP 401), where the
    source's `auth:` went along. An IDN host (`bücher.example`, reached here through a proxy)
    comes back from the server as punycode, and even `auth:` was left behind: "another host"."""
    server = _Server(_Private)
    try:
        host = "bücher.example" if how.startswith("idn") else f"127.0.0.1:{server.port}"
        if how.startswith("idn"):
            no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
        if how.endswith("url"):
            feed = source(f"http://reader:pw1@{host}/old.xml")
        else:
            feed = source(f"http://{host}/old.xml", auth=("reader", "pw1"))
        assert Fetcher().fetch(feed).body == RSS
        assert [_credentials(sent.get("Authorization")) for _, sent in server.requests] == [b"reader:pw1"] * 2
    finally:
        server.close()


# -- TLS: a source's own trust (`tls_verify`) ----------------------------------------------------


def test_a_source_trusts_its_own_ca_bundle_or_none_without_sharing_a_connection(ca, tmp_path, no_proxy_env, caplog):
    """A private CA's certificate: refused by default, fetched with `tls_verify: <the CA>` or
    `false` (said once in the log); a default source on the same host afterwards is refused
    still, the unverified connection kept alive not handed to it."""
    server = _tls_server(ca, "127.0.0.1")
    try:
        url = server.url("/feed", scheme="https")
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        fetcher = Fetcher()
        with pytest.raises(FetchError, match="TLS handshake failed: certificate verify failed") as refused:
            fetcher.fetch(source(url))
        assert refused.value.source == url
        assert fetcher.fetch(source(url, tls_verify=str(bundle))).body == RSS
        caplog.set_level("WARNING", logger="aggregator.fetch")
        insecure = Source(key=url + "?insecure", url=url + "?insecure", tls_verify=False)
        assert fetcher.fetch(insecure).body == RSS
        assert fetcher.fetch(insecure, etag=ETAG).not_modified
        moved = Source(key=url + "?moved", url=server.url("/moved", scheme="https"), tls_verify=False)
        assert fetcher.fetch(moved).url == url  # every hop of its request unverified, as the first
        assert server.connections == 2  # one verified with the CA, one unverified, each kept alive
        said = [r.getMessage() for r in caplog.records if "not verified" in r.getMessage()]
        assert said == [
            f"source {key}: TLS certificate not verified (tls_verify: false)" for key in (insecure.key, moved.key)
        ]  # once each, not at every request
        with pytest.raises(FetchError, match="certificate verify failed"):
            fetcher.fetch(source(url + "?default"))  # the same host, after the unverified source
        with pytest.raises(FetchError, match="certificate verify failed"):
            fetcher.fetch(source(url + "?default"), etag=ETAG)
    finally:
        server.close()


@pytest.mark.parametrize("how", ["tls_verify", "REQUESTS_CA_BUNDLE"])
def test_a_ca_bundle_replaced_while_running_is_trusted_without_a_restart(ca, tmp_path, no_proxy_env, how, caplog):
    """A rotated private CA (or `update-ca-certificates` rewriting the system bundle): the same
    Fetcher, as a long-running daemon holds it, trusts the new CA at its next request and no
    longer the old one, not even over a connection it had kept alive under the old trust."""
    rotated = trustme.CA()
    old_server, new_server = _tls_server(ca, "127.0.0.1"), _tls_server(rotated, "127.0.0.1")
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        if how == "REQUESTS_CA_BUNDLE":
            no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        trust = {"tls_verify": str(bundle)} if how == "tls_verify" else {}
        old, new = old_server.url("/feed", scheme="https"), new_server.url("/feed", scheme="https")
        fetcher = Fetcher()
        assert fetcher.fetch(source(old, **trust)).body == RSS
        with pytest.raises(FetchError, match="certificate verify failed"):
            fetcher.fetch(source(new, **trust))
        staged = tmp_path / "ca.pem.new"  # replaced as deployment tools do: written aside, renamed over
        rotated.cert_pem.write_to_path(str(staged))
        os.replace(staged, bundle)
        assert fetcher.fetch(source(new, **trust)).body == RSS
        with pytest.raises(FetchError, match="certificate verify failed"):
            fetcher.fetch(source(old, **trust), etag=ETAG)  # its kept-alive connection not reused
        assert old_server.connections == 1  # the refused handshake never reached a handler
        bundle.unlink()  # gone for a moment, as between an unlink and a rename: the trust it had
        assert fetcher.fetch(source(new, **trust), etag=ETAG).not_modified
        bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB")  # half written: the trust it had, said once
        with caplog.at_level("WARNING", logger="aggregator.fetch"):
            for _ in range(2):
                assert fetcher.fetch(source(new, **trust), etag=ETAG).not_modified
        said = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith(f"CA bundle {bundle} changed and cannot be read"), said
        rotated.cert_pem.write_to_path(str(bundle))  # whole again: read, and trusted
        assert fetcher.fetch(source(new, **trust), etag=ETAG).not_modified
    finally:
        old_server.close()
        new_server.close()


def test_a_folder_hashed_by_c_rehash_is_a_ca_bundle_too(ca, tmp_path, no_proxy_env):
    server = _tls_server(ca, "127.0.0.1")
    try:
        folder = tmp_path / "certs"
        folder.mkdir()
        pem = ca.cert_pem.bytes()
        command = ["openssl", "x509", "-noout", "-subject_hash"]
        digest = subprocess.run(command, input=pem, capture_output=True, check=True).stdout.decode().strip()
        (folder / f"{digest}.0").write_bytes(pem)
        url = server.url("/feed", scheme="https")
        assert Fetcher().fetch(source(url, tls_verify=str(folder))).body == RSS
        with pytest.raises(FetchError, match="certificate verify failed"):
            Fetcher().fetch(source(url, tls_verify=str(tmp_path)))  # a folder without it
    finally:
        server.close()


_ITEM_RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Internal</title><link>https://intra.example/</link>'
    b"<item><title>Inside news</title><link>https://intra.example/1</link><guid>https://intra.example/1</guid>"
    b"<pubDate>Mon, 02 Nov 2026 10:00:00 +0000</pubDate><description>hello</description></item>"
    b"</channel></rss>"
)


class _ItemFeed(_Feed):
    """/page: an HTML page whose <link rel="alternate"> leads to the feed, served elsewhere."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/page":
            page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/feed"></head></html>'
            self._send(200, page, **{"Content-Type": "text/html"})
        else:
            self._send(200, _ITEM_RSS, **{"Content-Type": "application/rss+xml"})


def test_aggregator_fetch_trusts_the_ca_bundle_a_source_names_relative_to_the_config(ca, tmp_path, no_proxy_env):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = _Server(_ItemFeed, tls=context)
    try:
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        url = server.url("/page", scheme="https")  # the feed is found from the page, with the same trust
        cfg = tmp_path / "feeds.yaml"
        text = "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        cfg.write_text(text + f"      - url: {url}\n        tls_verify: ca.pem\n", encoding="utf-8")
        result = run_cli("--config", str(cfg), "fetch", cwd=tmp_path.parent)  # not the config's folder
        assert result.returncode == 0, result.stdout + result.stderr
        db = sqlite3.connect(tmp_path / "aggregator.db")
        assert db.execute("SELECT title FROM posts").fetchall() == [("Inside news",)]
        assert [p for p, _ in server.requests] == ["/page", "/feed"]
        db.close()
        cfg.write_text(text + f"      - url: {url}\n", encoding="utf-8")  # the default trust refuses it
        refused = run_cli("--config", str(cfg), "fetch", "--source", url)
        assert refused.returncode == 1 and "certificate verify failed" in refused.stdout + refused.stderr
    finally:
        server.close()


def test_netrc_credentials_go_to_a_redirect_from_another_host_no_more(httpserver, tmp_path, no_proxy_env):
    """~/.netrc holds the operator's password for a private feed on `localhost`. A public source
    on another host (here 127.0.0.1) that redirected there had that password sent with the
    redirect, and the private feed's entries published under the public source's name. They go
    only to sources configured on that host now, as a source's own credentials do."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost login operator password private1\n")
    netrc.chmod(0o600)
    no_proxy_env.setenv("NETRC", str(netrc))
    private = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Private</title><link>http://p.example/</link>'
        b"<item><title>Board minutes</title><guid>secret-1</guid><description>TOP SECRET</description></item>"
        b"</channel></rss>"
    )
    granted = "Basic " + base64.b64encode(b"operator:private1").decode()
    httpserver.expect_request("/private.xml", headers={"Authorization": granted}).respond_with_data(
        private, content_type="application/rss+xml"
    )
    httpserver.expect_request("/private.xml").respond_with_data("login", status=401)
    port = httpserver.port
    httpserver.expect_request("/public.xml").respond_with_data(
        "", status=302, headers={"Location": f"http://localhost:{port}/private.xml"}
    )
    public_url = f"http://127.0.0.1:{port}/public.xml"
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        f"      - url: {public_url}\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 1 and "HTTP 401" in result.stdout, result.stdout + result.stderr
    sent = [r.headers.get("Authorization") for r, _ in httpserver.log if r.path == "/private.xml"]
    assert sent == [None]
    published = b"".join(p.read_bytes() for p in (tmp_path / "public").rglob("*") if p.is_file())
    assert b"TOP SECRET" not in published and b"Board minutes" not in published
    # the operator's own source on that host is still let in by ~/.netrc
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        f"      - url: http://localhost:{port}/private.xml\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 new post" in result.stdout
