"""Serving the output directory over real HTTP: media types, validators and 304s, gzip, HEAD,
and nothing outside the directory; and `aggregator serve` as a command."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from aggregator.serve import Server, StaticApp, static_routes

from .conftest import CORPUS

ATOM = (CORPUS / "zh" / "gansu-economy.atom").read_bytes()


@pytest.fixture
def site(tmp_path) -> Path:
    root = tmp_path / "public"
    (root / "category").mkdir(parents=True)
    (root / "category" / "news.atom").write_bytes(ATOM)
    (root / "category" / "news.rss").write_bytes(b"<?xml version='1.0'?><rss version='2.0'><channel/></rss>")
    (root / "category" / "news.json").write_bytes(b'{"version": "https://jsonfeed.org/version/1.1", "items": []}')
    (root / "index.html").write_text("<!doctype html><title>首页</title>" + "<p>x</p>" * 200, encoding="utf-8")
    (root / ".feed.atom.123.tmp").write_bytes(b"half")
    (tmp_path / "secret.txt").write_text("not served")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def server(site):
    srv = Server(StaticApp(lambda: site, static_routes(lambda: site)), "127.0.0.1", 0).start()
    yield srv
    srv.stop()


def request(server: Server, method: str, path: str, headers: dict[str, str] | None = None):
    host, port = server.addresses[0]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/category/news.atom", "application/atom+xml"),
        ("/category/news.rss", "application/rss+xml"),
        ("/category/news.json", "application/feed+json"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
    ],
)
def test_media_types(server, path, ctype):
    status, headers, _ = request(server, "GET", path)
    assert status == 200 and headers["content-type"] == ctype


def test_etag_last_modified_and_304(server, site):
    status, headers, body = request(server, "GET", "/category/news.atom")
    assert status == 200 and body == ATOM
    etag, modified = headers["etag"], headers["last-modified"]
    assert etag.startswith('"') and re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", modified)

    status, headers304, body = request(server, "GET", "/category/news.atom", {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers304["etag"] == etag
    assert request(server, "GET", "/category/news.atom", {"If-Modified-Since": modified})[0] == 304
    assert request(server, "GET", "/category/news.atom", {"If-None-Match": f'"other", W/{etag}'})[0] == 304
    # If-None-Match wins over If-Modified-Since (RFC 9110): a stale tag gets the body
    stale = {"If-None-Match": '"stale"', "If-Modified-Since": modified}
    assert request(server, "GET", "/category/news.atom", stale)[0] == 200

    # a new version (the publisher replaces the file) has a new tag, and the old one no longer matches
    path = site / "category" / "news.atom"
    path.write_bytes(ATOM + b"\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    status, headers, body = request(server, "GET", "/category/news.atom", {"If-None-Match": etag})
    assert status == 200 and headers["etag"] != etag and body == ATOM + b"\n"


def test_gzip_when_accepted(server):
    status, headers, body = request(server, "GET", "/category/news.atom", {"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["content-encoding"] == "gzip" and "accept-encoding" in headers["vary"].lower()
    assert gzip.decompress(body) == ATOM and int(headers["content-length"]) == len(body) < len(ATOM)
    # its validator differs from the identity one but either revalidates
    assert headers["etag"] != request(server, "GET", "/category/news.atom")[1]["etag"]
    assert request(server, "GET", "/category/news.atom", {"If-None-Match": headers["etag"]})[0] == 304
    plain = request(server, "GET", "/category/news.atom", {"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in plain[1] and plain[2] == ATOM


def test_head_has_the_headers_and_no_body(server):
    get = request(server, "GET", "/category/news.atom", {"Accept-Encoding": "gzip"})
    status, headers, body = request(server, "HEAD", "/category/news.atom", {"Accept-Encoding": "gzip"})
    assert status == 200 and body == b""
    for name in ("content-type", "content-length", "etag", "last-modified", "content-encoding"):
        assert headers[name] == get[1][name]


def test_nothing_outside_the_directory_and_no_temporary_files(server):
    for path in ("/../secret.txt", "/category/../../secret.txt", "/%2e%2e/secret.txt", "/escape", "/nope.atom"):
        status, _, body = request(server, "GET", path)
        assert status == 404 and b"not served" not in body, path
    assert request(server, "GET", "/.feed.atom.123.tmp")[0] == 404
    status, headers, _ = request(server, "POST", "/category/news.atom")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, _ = request(server, "GET", "/category")
    assert status == 301 and headers["location"] == "category/"


@pytest.mark.parametrize("path", ["/category/news.atom/", "/index.html/", "/category/news.rss//"])
def test_a_file_name_with_a_trailing_slash_is_not_found(server, path):
    """As nginx and Apache answer: a file is not a folder, and answers at one URL only."""
    for method in ("GET", "HEAD"):
        status, _, body = request(server, method, path)
        assert status == 404 and b"<" not in body, (method, path)
    assert request(server, "GET", "/category/")[0] == 404  # a folder without index.html, as before


def test_healthz_of_serve_alone(server):
    """As the README's command table says: plain `ok`, not `run --serve`'s JSON, and no /metrics."""
    status, headers, body = request(server, "GET", "/healthz")
    assert status == 200 and body == b"ok\n" and headers["content-type"].startswith("text/plain")
    assert request(server, "GET", "/metrics")[0] == 404


def test_serve_command_answers_304(tmp_path, site):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://example.org/\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(cfg), "serve", "--port", "0", "--log-format", "json"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        port = None
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/", json.loads(line)["message"])  # JSON logs
            if m:
                port = int(m.group(1))
                break
        assert port, "".join(lines)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/category/news.atom")
        first = conn.getresponse()
        assert first.status == 200 and first.read() == ATOM
        conn.request("GET", "/category/news.atom", headers={"If-None-Match": first.getheader("ETag")})
        second = conn.getresponse()
        assert second.status == 304 and second.read() == b""
        conn.close()
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _serve(tmp_path: Path) -> subprocess.Popen[str]:
    """`aggregator serve --port 0` of a config of no source in `tmp_path` (its output folder
    `tmp_path/public`), its log on a pipe."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://example.org/\n", encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(cfg), "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_says_when_nothing_is_published_yet(tmp_path):
    """Started before the first `fetch`, it answered 404 everywhere with no word why."""
    proc = _serve(tmp_path)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(2)]  # "serving …", then the warning
        assert "serving http://127.0.0.1:" in lines[0], lines
        assert f"nothing published in {tmp_path / 'public'} yet: run `aggregator fetch`" in lines[1], lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_clients_path_forges_no_log_line(tmp_path, site):
    """`run --serve` in Docker listens on 0.0.0.0: any client could write the log. A file name too
    long for the file system was logged as a warning with the path as asked, so a `%0a` in it
    began a line of the client's own and a `%1b` drove the terminal of whoever read the log."""
    proc = _serve(tmp_path)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        port = int(re.search(r"serving http://127\.0\.0\.1:(\d+)/", first)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path in (
            "/x%0a2026-01-01%2000:00:00,000+0000%20ERROR%20forged%1b[2J" + "b" * 300,
            "/%1b[2J" + "c" * 300 + "/x",
        ):
            conn.request("GET", path)
            answer = conn.getresponse()
            assert answer.status == 404 and answer.read() == b"not found\n"
        conn.request("GET", "/category/news.atom")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "forged" not in rest and "\x1b" not in rest and "bbbb" not in rest and "cccc" not in rest, rest


def test_a_folder_redirect_is_a_valid_location(server, site):
    """The slash added to a folder's URL: percent-encoded for a CJK name (not a 500), and
    never a protocol-relative `//folder/` that a browser would take for a host."""
    (site / "专题" / "经济").mkdir(parents=True)
    (site / "专题" / "经济" / "index.html").write_text("<!doctype html><title>经济</title>", encoding="utf-8")
    status, headers, _ = request(server, "GET", "/%E4%B8%93%E9%A2%98/%E7%BB%8F%E6%B5%8E")
    assert status == 301 and headers["location"] == "%E7%BB%8F%E6%B5%8E/"
    status, _, body = request(server, "GET", "/%E4%B8%93%E9%A2%98/%E7%BB%8F%E6%B5%8E/")
    assert status == 200 and "经济".encode() in body
    status, headers, _ = request(server, "GET", "//category")
    assert status == 301 and urljoin("http://h//category", headers["location"]) == "http://h/category/"


@pytest.mark.parametrize("path", ["/category/news", "/category/news/"])
def test_a_category_folder_leads_to_its_page(server, site, path):
    """`category/news/` holds news's older pages, `category/news.html` is its page: the folder
    answered 301 to itself with a slash, and that 404 (no index.html in it)."""
    (site / "category" / "news" / "page").mkdir(parents=True)
    (site / "category" / "news" / "page" / "2.html").write_text("<!doctype html><title>2</title>", encoding="utf-8")
    (site / "category" / "news.html").write_text("<!doctype html><title>新闻</title>", encoding="utf-8")
    status, headers, _ = request(server, "GET", path)
    assert status == 301 and headers["location"] == ("news.html" if path == "/category/news" else "../news.html")
    status, _, body = request(server, "GET", urlsplit(urljoin("http://h" + path, headers["location"])).path)
    assert status == 200 and "新闻".encode() in body


def test_a_redirect_stub_is_answered_301_and_a_page_quoting_one_is_not(server, site):
    """The publisher's stub at a re-dated post's old path (publish.site.redirect_page) is
    answered 301 to the page it names, GET and HEAD alike; a page whose text merely shows
    the stub's markup is served as it is."""
    from aggregator.publish.site import redirect_page

    (site / "posts" / "2022" / "01").mkdir(parents=True)
    (site / "posts" / "2022" / "01" / "ab.html").write_text("<!doctype html><title>the post</title>")
    old = "posts/2022/02/ab.html"
    (site / old).parent.mkdir(parents=True)
    (site / old).write_bytes(redirect_page("https://t.example/", "en", "T", old, "posts/2022/01/ab.html"))
    for method in ("GET", "HEAD"):
        status, headers, _ = request(server, method, f"/{old}")
        assert (status, headers["location"]) == (301, "../01/ab.html")
    status, _, body = request(server, "GET", "/posts/2022/01/ab.html")
    assert status == 200 and b"the post" in body
    quoting = (site / old).read_text().replace("</head>", "").replace("<head>", "<head></head>")
    (site / old).with_name("quoting.html").write_text(quoting)
    status, _, body = request(server, "GET", "/posts/2022/02/quoting.html")
    assert status == 200 and body.decode() == quoting


@pytest.mark.parametrize("command", [["serve"], ["run", "--serve"]])
def test_the_config_database_and_log_are_never_served(tmp_path, command):
    """Links to the config and the database, and a log file, in the output folder (by hand,
    or a config from before `check` refused such a folder): all were served, the sources'
    passwords with them. 404, wherever they are seen from."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
        "      - url: https://e.example/f.xml\n        auth: {username: u, password: secretpw}\n",
        encoding="utf-8",
    )
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<!doctype html><title>home</title>", encoding="utf-8")
    log = public / "aggregator.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(cfg), "--log-file", str(log), *command, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        for _ in range(200):
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/", log.read_text("utf-8") if log.exists() else "")
            if m:
                port = int(m.group(1))
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            threading.Event().wait(0.05)
        assert port
        db, wal = tmp_path / "aggregator.db", tmp_path / "aggregator.db-wal"
        for own in (db, wal):  # the daemon's own once it runs; `serve` alone opens none
            if not own.exists():
                own.write_bytes(b"SQLite format 3\x00secretpw")
        os.link(cfg, public / "feeds.yaml")  # a hard link: another path, the same file
        (public / "db").symlink_to(db)
        os.link(db, public / "copy.db")
        os.link(wal, public / "aggregator.db-wal")
        (public / "aggregator.log.1").write_text("old log lines, secretpw\n", encoding="utf-8")  # logrotate's
        (public / "aggregator.log.2.gz").write_bytes(b"secretpw")
        (public / "aggregator.log-20261129").write_bytes(b"secretpw")  # logrotate's dateext
        threading.Event().wait(1.1)  # rotated copies are looked for once a second
        paths = ("/feeds.yaml", "/db", "/copy.db", "/aggregator.db-wal", "/aggregator.log", "/aggregator.log.1")
        for path in (*paths, "/aggregator.log.2.gz", "/aggregator.log-20261129"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            assert (resp.status, b"secret" in resp.read()) == (404, False), path
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("path", "to"),
    [
        ("/posts/2022/02/ab.html", "/posts/2022/01/ab.html"),  # a re-dated post's old page
        ("/posts%2F2022%2F02/ab.html", "/posts/2022/01/ab.html"),  # the client's folders, not PATH_INFO's
        ("/posts", "/posts/"),
        ("/posts/2022", "/posts/2022/"),
        ("/category/news", "/category/news.html"),
        ("/category/news/", "/category/news.html"),
        ("/category/news/?x=1", "/category/news.html"),
    ],
)
def test_redirects_are_relative_so_they_hold_under_a_proxy_prefix(server, site, path, to):
    """Behind a reverse proxy serving the site at `https://t.example.com/news/`, a Location of
    `/posts/2022/01/ab.html` led out of the site: relative to the URL asked for, it leads to
    the page whatever the prefix."""
    from aggregator.publish.site import redirect_page

    (site / "posts" / "2022" / "01").mkdir(parents=True)
    (site / "posts" / "2022" / "01" / "ab.html").write_text("<!doctype html><title>the post</title>")
    (site / "posts" / "2022" / "02").mkdir(parents=True)
    old = "posts/2022/02/ab.html"
    (site / old).write_bytes(redirect_page("https://t.example/", "en", "T", old, "posts/2022/01/ab.html"))
    (site / "posts" / "index.html").write_text("<!doctype html><title>posts</title>")
    (site / "posts" / "2022" / "index.html").write_text("<!doctype html><title>2022</title>")
    (site / "category" / "news").mkdir()
    (site / "category" / "news.html").write_text("<!doctype html><title>news</title>")
    status, headers, _ = request(server, "GET", path)
    location = headers["location"]
    assert status == 301 and not location.startswith("/") and "://" not in location, location
    for prefix in ("https://t.example.com", "https://t.example.com/news", "https://t.example.com/a/b"):
        assert urljoin(prefix + path, location) == prefix + to, (prefix, location)
    assert request(server, "GET", to)[0] == 200


@pytest.mark.parametrize("style", ["asctime", "minus-zero"])
def test_an_http_date_without_a_zone_is_read_as_gmt(server, site, monkeypatch, style):
    """HTTP dates are GMT, and asctime's form (`Sun Nov  6 08:49:37 1994`, which RFC 9110 still
    asks servers to accept) and a `-0000` zone carry no zone: they were read in this machine's
    local zone, so west of UTC a file changed an hour ago was answered 304 Not Modified."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        mtime = (site / "category" / "news.atom").stat().st_mtime
        before = time.gmtime(mtime - 3600)  # an hour before the file was last written
        since = (
            time.strftime("%a %b %d %H:%M:%S %Y", before)
            if style == "asctime"
            else time.strftime("%a, %d %b %Y %H:%M:%S -0000", before)
        )
        assert request(server, "GET", "/category/news.atom", {"If-Modified-Since": since})[0] == 200
        after = time.gmtime(mtime + 3600)
        since = time.strftime("%a %b %d %H:%M:%S %Y", after)
        assert request(server, "GET", "/category/news.atom", {"If-Modified-Since": since})[0] == 304
    finally:
        monkeypatch.undo()
        time.tzset()
