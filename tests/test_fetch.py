"""One HTTP exchange against a real local server: conditional GET, limits, errors."""

from __future__ import annotations

import gzip
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import USER_AGENT
from aggregator.fetch import Fetcher, FetchError
from aggregator.models import Source

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
        time.sleep(1.5)
        return Response(RSS)

    httpserver.expect_request("/slow").respond_with_handler(slow)
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        Fetcher().fetch(source(httpserver.url_for("/slow"), timeout=0.5))
    assert time.monotonic() - start < 1.4
