"""One HTTP exchange against a real local server: conditional GET, limits, errors."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import USER_AGENT
from aggregator.fetch import Fetcher, FetchError, _brotli
from aggregator.models import Source

from .pollrig import TrickleServer

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def source(url: str, **kw) -> Source:
    return Source(key=url, url=url, **kw)


def test_conditional_get_sends_validators_and_reads_304(httpserver: HTTPServer):
    httpserver.expect_ordered_request("/feed", method="GET").respond_with_data(
        RSS,
        headers={"ETag": '"v1"', "Last-Modified": "Wed, 09 Feb 2022 10:00:00 GMT"},
        content_type="application/rss+xml",
    )
    httpserver.expect_ordered_request(
        "/feed", headers={"If-None-Match": '"v1"', "If-Modified-Since": "Wed, 09 Feb 2022 10:00:00 GMT"}
    ).respond_with_data(b"", status=304)
    f = Fetcher()
    first = f.fetch(source(httpserver.url_for("/feed")))
    assert first.status == 200 and first.body == RSS
    assert first.etag == '"v1"' and first.last_modified == "Wed, 09 Feb 2022 10:00:00 GMT"
    second = f.fetch(source(httpserver.url_for("/feed")), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.body is None
    httpserver.check_assertions()


def test_user_agent_names_the_project_and_source_headers_are_sent(httpserver: HTTPServer):
    seen = {}

    def handler(request: Request) -> Response:
        seen.update(request.headers)
        return Response(RSS, content_type="application/rss+xml")

    httpserver.expect_request("/ua").respond_with_handler(handler)
    Fetcher().fetch(source(httpserver.url_for("/ua"), headers=(("X-Token", "s3cret"),)))
    assert seen["User-Agent"] == USER_AGENT and "aggregator" in USER_AGENT
    assert seen["X-Token"] == "s3cret"
    assert "application/atom+xml" in seen["Accept"]


def test_redirects_are_followed_and_final_url_reported(httpserver: HTTPServer):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(RSS, content_type="application/rss+xml")
    result = Fetcher().fetch(source(httpserver.url_for("/old")))
    assert result.body == RSS and result.url == httpserver.url_for("/new")


def test_an_error_after_a_redirect_names_the_url_that_gave_it(httpserver: HTTPServer):
    """`/rel` → 301 → `/moved/x` → 404 said only `HTTP 404 Not Found` beside the configured
    URL, which had not answered 404: the user looked at the wrong page."""
    httpserver.expect_request("/rel").respond_with_data("", status=301, headers={"Location": "/moved/x"})
    httpserver.expect_request("/moved/x").respond_with_data("nope", status=404)
    first = httpserver.url_for("/rel")
    with pytest.raises(FetchError) as info:
        Fetcher().fetch(source(first))
    moved = httpserver.url_for("/moved/x")
    assert str(info.value) == f"HTTP 404 NOT FOUND from {moved} (redirected there from {first})"
    assert info.value.status == 404 and info.value.source == first


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Bearer HDRSECRET1\n", "holds a line break (CR or LF)"),
        ("\tHDRSECRET1", "starts with whitespace"),
        (
            "Bearer HDRSECRET1\u2019",
            "holds a character beyond Latin-1 (percent-encode it, or give it as the server expects)",
        ),
    ],
)
def test_a_header_value_that_cannot_be_sent_is_named_not_shown(httpserver: HTTPServer, value: str, problem: str):
    """`TOK=$'abc\\n'` in `Authorization: Bearer ${TOK}` failed every poll with requests'
    message quoting the value, the token, in `fetch`'s output, the log and `status`."""
    httpserver.expect_request("/h").respond_with_data("<rss/>")
    url = httpserver.url_for("/h")
    with pytest.raises(FetchError) as info:
        Fetcher().fetch(source(url, headers=(("Authorization", value),)))
    assert str(info.value) == f"request failed: the value of the Authorization header {problem}"
    assert info.value.url == url


def test_a_connection_error_after_a_redirect_names_the_url_that_failed(httpserver: HTTPServer):
    """A redirect to a host that does not resolve, to https on a port that speaks http, or to
    one that never answers said `connection failed: Name or service not known` (or `TLS
    handshake failed`, `timed out`) beside the configured URL, which had answered fine."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never answers
    port = httpserver.port
    hops = {
        "/dns": "http://feeds.moved-away.invalid/rss",  # .invalid never resolves (RFC 6761)
        "/tls": f"https://127.0.0.1:{port}/feed",
        "/slow": f"http://127.0.0.1:{silent.getsockname()[1]}/feed",
    }
    for path, location in hops.items():
        httpserver.expect_request(path).respond_with_data("", status=301, headers={"Location": location})
    try:
        for path, location in hops.items():
            first = httpserver.url_for(path)
            with pytest.raises(FetchError) as info:
                Fetcher().fetch(source(first, timeout=1))
            said = str(info.value)
            assert said.endswith(f" at {location} (redirected there from {first})"), said
            reason = {
                "/dns": "connection failed: cannot resolve feeds.moved-away.invalid (DNS: ",  # which host
                "/tls": "connection failed: TLS handshake failed",
                "/slow": "timed out",
            }
            assert said.startswith(reason[path]), said
            assert info.value.url == location and info.value.source == first
    finally:
        silent.close()
    # the configured URL's own failure names no other
    with pytest.raises(FetchError) as info:
        Fetcher().fetch(source("http://feeds.moved-away.invalid/rss"))
    assert str(info.value).startswith("connection failed: cannot resolve feeds.moved-away.invalid (DNS: ")
    assert "redirected" not in str(info.value)


def test_redirect_loop_is_an_error(httpserver: HTTPServer):
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match="redirect"):
        Fetcher().fetch(source(httpserver.url_for("/a")))


@pytest.mark.parametrize("status", [404, 500, 503])
def test_http_errors_carry_status_and_source(httpserver: HTTPServer, status):
    httpserver.expect_request("/x").respond_with_data("nope", status=status)
    url = httpserver.url_for("/x")
    with pytest.raises(FetchError) as info:
        Fetcher().fetch(source(url))
    assert info.value.status == status and info.value.source == url and str(status) in str(info.value)


def test_connection_refused_is_an_error():
    with pytest.raises(FetchError, match="connection"):
        Fetcher().fetch(source("http://127.0.0.1:9/feed"))


def test_a_body_cut_short_of_its_length_says_so_in_words():
    """The server promises 100 bytes more than it sends and closes: the error said
    `('Connection broken: IncompleteRead(…)', IncompleteRead(…))`, urllib3's repr twice over."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(RSS) + 100}\r\n\r\n".encode() + RSS)

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed"
    try:
        with pytest.raises(FetchError) as info:
            Fetcher().fetch(source(url))
    finally:
        listener.close()
    assert str(info.value) == (
        "connection broken while reading the body: "
        f"the server closed the connection 100 bytes short of the {len(RSS) + 100} it announced"
    )


def test_informational_responses_before_the_answer_are_skipped():
    """A 103 Early Hints (or 102 Processing) before the answer was taken for the answer: an
    empty body, so an error, and the real answer stayed on the kept-alive connection."""
    paths: list[str] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as reader:
            while line := reader.readline():
                paths.append(line.split()[1].decode())
                while reader.readline() not in (b"\r\n", b""):
                    pass
                body = RSS.replace(b"<title>t</title>", f"<title>{paths[-1]}</title>".encode())
                conn.sendall(
                    b"HTTP/1.1 102 Processing\r\n\r\n"
                    b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                    + f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    threading.Thread(target=serve, daemon=True).start()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    fetcher = Fetcher()
    try:
        for path in ("/a", "/b"):  # the second on the same connection
            result = fetcher.fetch(source(base + path))
            assert result.status == 200 and f"<title>{path}</title>".encode() in result.body
    finally:
        fetcher.close()
        listener.close()
    assert paths == ["/a", "/b"]


def test_gzip_body_is_inflated(httpserver: HTTPServer):
    httpserver.expect_request("/gz").respond_with_data(gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    assert Fetcher().fetch(source(httpserver.url_for("/gz"))).body == RSS


def test_body_over_the_cap_is_refused(httpserver: HTTPServer):
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    with pytest.raises(FetchError, match="too large"):
        Fetcher(max_body=1000).fetch(source(httpserver.url_for("/big")))


def test_gzip_bomb_is_refused_by_its_inflated_size(httpserver: HTTPServer):
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))  # 20 MiB that packs into ~20 KiB
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="too large"):
        Fetcher(max_body=1024 * 1024).fetch(source(httpserver.url_for("/bomb")))


def test_slow_server_hits_the_timeout(httpserver: HTTPServer):
    def slow(request: Request) -> Response:
        time.sleep(3.0)
        return Response(RSS)

    httpserver.expect_request("/slow").respond_with_handler(slow)
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        Fetcher().fetch(source(httpserver.url_for("/slow"), timeout=0.5))
    assert time.monotonic() - start < 2.5  # the 0.5 s timeout, not the 3 s answer (room for a loaded machine)


# -- politeness, redirects hop by hop, proxies, encodings ---------------------------------


class _Server:
    """A stdlib threaded server (pytest-httpserver answers one request at a time)."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send_feed(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(RSS)))
        self.end_headers()
        self.wfile.write(RSS)

    def log_message(self, *args: object) -> None:
        pass


def test_at_most_per_host_requests_in_flight_to_one_host():
    lock = threading.Lock()
    active: dict[str, int] = {}
    peak: dict[str, int] = {}

    class Counting(_Quiet):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            host = self.headers["Host"].split(":")[0]
            with lock:
                active[host] = active.get(host, 0) + 1
                peak[host] = max(peak.get(host, 0), active[host])
            time.sleep(0.2)
            with lock:
                active[host] -= 1
            self.send_feed()

    server = _Server(Counting)
    try:
        one = f"http://localhost:{server.port}/feed"
        other = f"http://127.0.0.1:{server.port}/feed"  # the same server under another host name
        fetcher = Fetcher()
        sources = [source(f"{u}?n={i}") for i in range(5) for u in (one, other)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(fetcher.fetch, sources))
        assert all(r.body == RSS for r in results)
        assert peak == {"localhost": 2, "127.0.0.1": 2}  # in parallel, but never more than 2 per host
        peak.clear()
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(Fetcher().fetch, [source(f"{one}?w={i}", per_host=3) for i in range(6)]))
        assert peak == {"localhost": 3}  # site.per_host reaches the fetcher through each Source
    finally:
        server.close()


def test_hops_are_reported_and_only_leading_permanent_ones_count(httpserver: HTTPServer):
    httpserver.expect_request("/a").respond_with_data("", status=308, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=301, headers={"Location": "/c"})
    httpserver.expect_request("/c").respond_with_data("", status=307, headers={"Location": "/d"})
    httpserver.expect_request("/d").respond_with_data(RSS)
    result = Fetcher().fetch(source(httpserver.url_for("/a")))
    assert result.url == httpserver.url_for("/d") and result.body == RSS
    assert result.redirects == (
        (308, httpserver.url_for("/b")),
        (301, httpserver.url_for("/c")),
        (307, httpserver.url_for("/d")),
    )
    assert result.permanent_redirect == httpserver.url_for("/c")
    temporary_first = Fetcher().fetch(source(httpserver.url_for("/c")))
    assert temporary_first.permanent_redirect is None


def test_credentials_and_configured_headers_stay_on_the_sources_host(httpserver: HTTPServer):
    seen: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        seen.append(dict(request.headers))
        return Response(RSS)

    other = httpserver.url_for("/feed").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/moved").respond_with_data("", status=301, headers={"Location": other})
    httpserver.expect_request("/feed").respond_with_handler(handler)
    src = source(httpserver.url_for("/moved"), auth=("me", "secret"), headers=(("X-Token", "t"),))
    assert Fetcher().fetch(src).body == RSS
    assert "Authorization" not in seen[0] and "X-Token" not in seen[0]
    Fetcher().fetch(source(other, auth=("me", "secret"), headers=(("X-Token", "t"),)))
    assert seen[1]["Authorization"].startswith("Basic ") and seen[1]["X-Token"] == "t"


def test_redirect_to_another_scheme_is_refused(httpserver: HTTPServer):
    httpserver.expect_request("/x").respond_with_data("", status=302, headers={"Location": "ftp://example.org/feed"})
    with pytest.raises(FetchError, match="unsupported scheme: ftp://example.org/feed"):
        Fetcher().fetch(source(httpserver.url_for("/x")))


def test_429_error_carries_retry_after_and_the_answering_url(httpserver: HTTPServer):
    httpserver.expect_request("/old").respond_with_data("", status=302, headers={"Location": "/limited"})
    httpserver.expect_request("/limited").respond_with_data("", status=429, headers={"Retry-After": "30"})
    with pytest.raises(FetchError) as info:
        Fetcher().fetch(source(httpserver.url_for("/old")))
    assert info.value.status == 429 and info.value.headers["retry-after"] == "30"
    assert info.value.url == httpserver.url_for("/limited")


def test_proxy_from_the_environment(monkeypatch):
    seen: list[str] = []

    class Proxy(_Quiet):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            seen.append(self.path)
            self.send_feed()

    server = _Server(Proxy)
    try:
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{server.port}")
        for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        result = Fetcher().fetch(source("http://feeds.example.invalid/feed.xml"))
    finally:
        server.close()
    assert result.body == RSS and seen == ["http://feeds.example.invalid/feed.xml"]


def test_raw_deflate_and_br_bodies_are_inflated(httpserver: HTTPServer):
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    httpserver.expect_request("/deflate").respond_with_data(
        raw.compress(RSS) + raw.flush(), headers={"Content-Encoding": "deflate"}
    )
    assert Fetcher().fetch(source(httpserver.url_for("/deflate"))).body == RSS
    if _brotli is not None:
        httpserver.expect_request("/br").respond_with_data(_brotli.compress(RSS), headers={"Content-Encoding": "br"})
        assert Fetcher().fetch(source(httpserver.url_for("/br"))).body == RSS
        assert "br" in httpserver.log[-1][0].headers["Accept-Encoding"]


def test_a_body_encoded_twice_is_decoded_twice_and_a_bomb_still_counted(httpserver: HTTPServer):
    """`Content-Encoding: deflate, gzip` (or the same in two headers, of which only the last
    was read) went to the parser still compressed: "not a feed"."""
    twice = gzip.compress(zlib.compress(RSS))
    httpserver.expect_request("/list").respond_with_data(twice, headers={"Content-Encoding": "deflate, gzip"})
    httpserver.expect_request("/identity").respond_with_data(
        gzip.compress(RSS), headers={"Content-Encoding": "identity, gzip"}
    )
    httpserver.expect_request("/two").respond_with_response(
        Response(
            gzip.compress(gzip.compress(RSS)), headers=[("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")]
        )
    )
    bomb = gzip.compress(gzip.compress(b"\0" * (20 * 1024 * 1024)))
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip, gzip"})
    httpserver.expect_request("/cut").respond_with_data(twice[:-12], headers={"Content-Encoding": "deflate, gzip"})
    f = Fetcher()
    for path in ("/list", "/identity", "/two"):
        assert f.fetch(source(httpserver.url_for(path))).body == RSS, path
    with pytest.raises(FetchError, match="inflated body too large"):
        f.fetch(source(httpserver.url_for("/bomb")))
    with pytest.raises(FetchError, match="truncated deflate, gzip body"):
        f.fetch(source(httpserver.url_for("/cut")))


def test_every_gzip_member_is_inflated_and_a_cut_stream_is_an_error(httpserver: HTTPServer):
    """A gzip body of several members (RFC 1952) was cut to its first; a compressed stream
    that stops early (nothing else frames a body sent until the connection closes) was read
    as a shorter feed, its last entry's cut-off text stored over the real one."""
    half = len(RSS) // 2
    members = gzip.compress(RSS[:half]) + gzip.compress(RSS[half:])
    httpserver.expect_request("/members").respond_with_data(members, headers={"Content-Encoding": "gzip"})
    assert Fetcher().fetch(source(httpserver.url_for("/members"))).body == RSS
    padded = gzip.compress(RSS) + b"\0" * 16  # bytes after the last member that start none: ignored
    httpserver.expect_request("/padded").respond_with_data(padded, headers={"Content-Encoding": "gzip"})
    assert Fetcher().fetch(source(httpserver.url_for("/padded"))).body == RSS
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    cut = {"gzip": gzip.compress(RSS), "deflate": raw.compress(RSS) + raw.flush(), "x-gzip": members}
    if _brotli is not None:
        cut["br"] = _brotli.compress(RSS)
    for encoding, body in cut.items():
        path = f"/cut-{encoding}"
        httpserver.expect_request(path).respond_with_data(body[:-6], headers={"Content-Encoding": encoding})
        with pytest.raises(FetchError, match=f"truncated {encoding} body"):
            Fetcher().fetch(source(httpserver.url_for(path)))


def test_the_watchdog_cuts_only_the_request_it_guards(httpserver: HTTPServer):
    """A request that hits its deadline shuts its own sockets, not those of requests running
    beside it on other threads nor the pooled connections later requests reuse."""
    httpserver.expect_request("/ok").respond_with_data(RSS)
    fetcher = Fetcher()
    trickle = TrickleServer("body", delay=0.1)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            slow = pool.submit(fetcher.fetch, source(trickle.url, timeout=0.8))
            for _ in range(5):
                assert fetcher.fetch(source(httpserver.url_for("/ok"), timeout=5)).body == RSS
            with pytest.raises(FetchError, match="total deadline of 0.8s"):
                slow.result()
        for _ in range(3):  # the connection the fast requests pooled still works
            assert fetcher.fetch(source(httpserver.url_for("/ok"), timeout=5)).body == RSS
    finally:
        trickle.close()


def test_closing_the_fetcher_ends_the_watchdog_thread_and_the_next_fetch_restarts_it(httpserver: HTTPServer):
    """`fetch` closes its fetcher before publishing: with no thread of ours left, the
    publisher may fork its workers. A later fetch still has its deadline enforced."""
    httpserver.expect_request("/ok").respond_with_data(RSS)
    fetcher = Fetcher()
    assert fetcher.fetch(source(httpserver.url_for("/ok"), timeout=5)).body == RSS
    fetcher.close()
    assert "fetch-watchdog" not in [t.name for t in threading.enumerate()]
    trickle = TrickleServer("body", delay=0.1)
    try:
        with pytest.raises(FetchError, match="total deadline of 0.5s"):
            Fetcher().fetch(source(trickle.url, timeout=0.5))
    finally:
        trickle.close()
    assert "fetch-watchdog" in [t.name for t in threading.enumerate()]


class _BadRedirect(http.server.BaseHTTPRequestHandler):
    location = ""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.send_response(302)
        self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.mark.parametrize("location", ["http://[::1/feed", "http://[nothex]/feed"])
def test_a_redirect_to_an_invalid_url_is_the_source_error(location: str):
    """A Location that urlsplit refuses was a bare ValueError out of `fetch`."""
    handler = type("Handler", (_BadRedirect,), {"location": location})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/moved"
        with pytest.raises(FetchError, match="redirected to an invalid URL"):
            Fetcher().fetch(source(url))
    finally:
        server.shutdown()
        server.server_close()


def test_a_304_to_a_request_with_nothing_to_compare_is_an_error(httpserver: HTTPServer):
    """A server answering 304 to a request without validators (a cache or CDN fault): shown
    as `unchanged`, the source looked polled fine for ever with no post ever read."""
    httpserver.expect_request("/feed").respond_with_data(b"", status=304)
    f = Fetcher()
    with pytest.raises(FetchError, match="304 Not Modified, though no If-None-Match") as e:
        f.fetch(source(httpserver.url_for("/feed")))
    assert e.value.status == 304
    # with a validator sent, the same answer is the usual "not modified"
    assert f.fetch(source(httpserver.url_for("/feed")), etag='"v1"').not_modified
    configured = source(httpserver.url_for("/feed"), headers=(("If-None-Match", '"pinned"'),))
    assert f.fetch(configured).not_modified
