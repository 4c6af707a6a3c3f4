"""A password written into a source URL (`https://user:password@host/feed`) is used to fetch
and never shown: not in the published feeds, pages, OPML or Jekyll posts, not in `fetch`'s
lines, `status`, `export-opml` or the logs."""

from __future__ import annotations

import base64
import html
import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from .conftest import run_cli

SECRET = "s3cr3t'Pw;(x)"  # RFC 3986 lets user info hold sub-delims unencoded
ODD = 'pa"ss <x>'  # and these it does not, yet requests sends them as written
FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Private {n}</title><id>urn:{n}</id><link href="/"/>
<updated>2025-01-02T00:00:00Z</updated>
<entry><title>One {n}</title><id>urn:{n}:1</id><link href="/posts/{n}/1"/><updated>2025-01-02T00:00:00Z</updated>
<author><name>Ann</name><uri>/about/ann</uri></author>
<content type="html">&lt;p&gt;See &lt;a href="/other"&gt;this&lt;/a&gt; &lt;img src="img/a.png"&gt;&lt;/p&gt;</content>
<link rel="enclosure" href="/a.mp3" type="audio/mpeg" length="1"/></entry>
<entry><id>urn:{n}:3</id><link href="/posts/{n}/3"/><updated>2025-01-01T12:00:00Z</updated></entry>
<entry><title>Two {n}</title><id>urn:{n}:2</id><link href="https://elsewhere.example/{n}/2"/>
<updated>2025-01-01T00:00:00Z</updated><content>plain</content></entry>
</feed>"""
# a feed with "@" in its path (Mastodon, Medium): no password, and an article's own code sample
# with one in it, which is the article's to show
CODE = "git clone https://oauth2:TOKEN@gitlab.com/g/r.git"
PUBLIC = f"""<rss version="2.0"><channel><title>Alice</title><link>https://m.example/@alice</link>
<item><title>How to clone</title><link>https://m.example/@alice/1</link>
<description>&lt;pre&gt;{CODE}&lt;/pre&gt;</description></item></channel></rss>"""


REDIRECTED = "Zq7k%41b%ss"
TOKEN = "TKN4711"  # user info without a password; the feed's text mentions an address with it
TOKEN_FEED = f"""<rss version="2.0"><channel><title>T</title><link>/</link>
<item><title>Write</title><link>/t/1</link><description>mail {TOKEN}@example.com</description></item>
</channel></rss>"""


def _server(httpserver: HTTPServer) -> None:
    def behind(password: str, n: int):
        wanted = "Basic " + base64.b64encode(f"reader:{password}".encode()).decode()

        def feed(request: Request) -> Response:
            if request.headers.get("Authorization") != wanted:
                return Response("who are you?", status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
            return Response(FEED.format(n=n), content_type="application/atom+xml")

        return feed

    httpserver.expect_request("/private.atom").respond_with_handler(behind(SECRET, 1))
    httpserver.expect_request("/odd.atom").respond_with_handler(behind(ODD, 2))
    httpserver.expect_request("/broken.atom").respond_with_data("no", status=500)
    httpserver.expect_request("/feed/@alice").respond_with_data(PUBLIC, content_type="application/rss+xml")
    # followed, a redirect's URL is rewritten by requests (%41 decoded, a stray % encoded)
    httpserver.expect_request("/redir.atom").respond_with_data("", status=302, headers={"Location": "/moved.atom"})
    httpserver.expect_request("/moved.atom").respond_with_data(FEED.format(n=3), content_type="application/atom+xml")
    httpserver.expect_request("/token.rss").respond_with_data(TOKEN_FEED, content_type="application/rss+xml")


def _config(tmp_path: Path, httpserver: HTTPServer) -> Path:
    host = f"{httpserver.host}:{httpserver.port}"
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: t\n  url: https://news.example/\njekyll:\n  dir: jekyll\ncategories:\n"
        "  - name: Private\n    sources:\n"
        f"      - url: http://reader:{SECRET}@{host}/private.atom\n"
        f"      - url: http://reader:{SECRET}@{host}/broken.atom\n"
        f"      - url: 'http://reader:{ODD}@{host}/odd.atom'\n"
        f"      - url: http://{host}/feed/@alice\n"
        f"      - url: http://reader:{REDIRECTED}@{host}/redir.atom\n"
        f"      - url: http://{TOKEN}@{host}/token.rss\n",
        encoding="utf-8",
    )
    return cfg


def _leaks(folder: Path) -> list[str]:
    """Files holding a password in any form: as written, percent-encoded, HTML-escaped."""
    forms = {f.encode() for secret in (SECRET, ODD) for f in (secret, quote(secret), html.escape(secret))}
    forms |= {b"pa&quot;ss", b"pa%22ss", b"3cr3t&#x27;Pw", b"3cr3t&#39;Pw", b"Zq7k", f"{TOKEN}@127".encode()}
    return [str(p) for p in folder.rglob("*") if p.is_file() and any(f in p.read_bytes() for f in forms)]


def test_a_password_in_a_source_url_is_used_and_never_shown(tmp_path, httpserver: HTTPServer):
    _server(httpserver)
    cfg = _config(tmp_path, httpserver)
    fetch = run_cli("--config", str(cfg), "-v", "fetch")
    assert fetch.returncode == 1, fetch.stdout + fetch.stderr  # the broken one failed
    assert "new" in fetch.stdout and "private.atom" in fetch.stdout  # fetched with the password
    as_json = run_cli("--config", str(cfg), "--log-format", "json", "-v", "fetch", "--source", "x")
    outputs = {
        "fetch": fetch.stdout + fetch.stderr,
        "fetch --log-format json": as_json.stdout + as_json.stderr,
        "status": run_cli("--config", str(cfg), "status").stdout,
        "status --json": run_cli("--config", str(cfg), "status", "--json").stdout,
        "export-opml": run_cli("--config", str(cfg), "export-opml").stdout,
        "publish": run_cli("--config", str(cfg), "publish").stdout,
    }
    for name, text in outputs.items():
        assert SECRET not in text, f"{name} shows the password:\n{text}"
        assert ODD not in text and ODD.replace('"', '\\"') not in text, f"{name} shows the odd password:\n{text}"
    assert "reader:***@" in outputs["status"] or "reader:***@" in outputs["fetch"]  # still recognizable
    assert _leaks(tmp_path / "public") == [] and _leaks(tmp_path / "jekyll") == []

    # the feeds still credit the source, at its URL without the password
    items = json.loads((tmp_path / "public" / "category" / "private.json").read_text(encoding="utf-8"))["items"]
    by_url = {i["url"]: i for i in items}
    base = f"http://{httpserver.host}:{httpserver.port}"
    for n in (1, 2, 3):  # each password source: links, markup, enclosures, authors, a title made of a link
        one, untitled = by_url[f"{base}/posts/{n}/1"], by_url[f"{base}/posts/{n}/3"]
        assert one["_source"]["url"] == base + ("/private.atom", "/odd.atom", "/redir.atom")[n - 1]
        assert f'href="{base}/other"' in one["content_html"] and one["attachments"][0]["url"] == f"{base}/a.mp3"
        assert one["authors"][0]["url"] == f"{base}/about/ann"
        assert untitled["title"] == f"{base}/posts/{n}/3"
    assert CODE in by_url["https://m.example/@alice/1"]["content_html"]  # an article's own text is left alone
    assert f"mail {TOKEN}@example.com" in by_url[f"{base}/t/1"]["content_html"]  # even with the source's user info
    rows = json.loads(outputs["status --json"])
    assert {r["last_error"] is not None for r in rows} == {True, False}  # both still reported


def test_masking_keeps_the_user_and_hides_the_password_or_token():
    from aggregator.credentials import masked, public_url

    line = "error http://u:p%40ss@h:8/f.xml then https://TOKEN@h/x, https://h/a@b and bot@example.com"
    assert masked(line) == "error http://u:***@h:8/f.xml then https://***@h/x, https://h/a@b and bot@example.com"
    assert public_url("http://u:p@ss@h:8/f.xml?q=a@b") == "http://h:8/f.xml?q=a@b"  # to the authority's last @
    assert public_url("https://h/a@b") == "https://h/a@b" and public_url(None) is None
    assert masked("error http://u:it's;(x)@h/f: 500") == "error http://u:***@h/f: 500"
    assert public_url("http://u:it's;(x)@h/f") == "http://h/f"
    # a parenthesis closed after the URL is not the token's: the redirect messages' `(… from URL)`
    hop = "at http://a/x.xml?sig=s1 (redirected there from http://b/r?token=t1)"
    assert masked(hop) == "at http://a/x.xml?sig=*** (redirected there from http://b/r?token=***)"
    assert masked("http://b/r?token=t)1:2") == "http://b/r?token=***"  # inside the value, it is the value's


QUERY_SECRET = "Q7sEcReT9"


def test_a_token_in_a_source_urls_query_is_used_and_never_shown(tmp_path, httpserver: HTTPServer):
    """Private feeds as GitLab, Miniflux or podcast hosts give them: the secret in the query
    (`?token=`, `&private_token=`). It is sent, and shown as `***` everywhere else."""

    def feed(request: Request) -> Response:
        if request.args.get("token") != QUERY_SECRET and request.args.get("private_token") != QUERY_SECRET:
            return Response("who are you?", status=403)
        return Response(FEED.format(n=request.path[-6]), content_type="application/atom+xml")

    httpserver.expect_request("/q/feed1.atom").respond_with_handler(feed)
    httpserver.expect_request("/q/feed2.atom").respond_with_handler(feed)
    base = f"http://{httpserver.host}:{httpserver.port}"
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: t\n  url: https://news.example/\njekyll:\n  dir: jekyll\ncategories:\n"
        "  - name: Private\n    sources:\n"
        f"      - url: {base}/q/feed1.atom?token={QUERY_SECRET}&lang=en\n"
        f"      - url: {base}/q/feed2.atom?lang=en&private_token={QUERY_SECRET}\n",
        encoding="utf-8",
    )
    fetch = run_cli("--config", str(cfg), "-v", "fetch")
    assert fetch.returncode == 0, fetch.stdout + fetch.stderr  # the secret was sent
    outputs = {
        "fetch": fetch.stdout + fetch.stderr,
        "status": run_cli("--config", str(cfg), "status").stdout,
        "status --json": run_cli("--config", str(cfg), "status", "--json").stdout,
        "export-opml": run_cli("--config", str(cfg), "export-opml").stdout,
        "fetch --log-format json": run_cli("--config", str(cfg), "--log-format", "json", "-v", "fetch").stderr,
    }
    for name, text in outputs.items():
        assert QUERY_SECRET not in text, f"{name} shows the token:\n{text}"
    assert "feed1.atom?token=***&lang=en" in outputs["status --json"]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("aggregator.db")]
    assert [p for p in files if QUERY_SECRET.encode() in p.read_bytes()] == [cfg]  # the config only
    items = json.loads((tmp_path / "public" / "category" / "private.json").read_text(encoding="utf-8"))["items"]
    assert {i["_source"]["url"] for i in items} == {
        f"{base}/q/feed1.atom?token=***&lang=en",
        f"{base}/q/feed2.atom?lang=en&private_token=***",
    }


def test_secret_query_parameters_are_recognized_by_name():
    from aggregator.credentials import masked, public_url

    assert public_url("https://h/f?token=a1&page=2#x") == "https://h/f?token=***&page=2#x"
    assert public_url("https://u:p@h/f?API_KEY=k&sig=s") == "https://h/f?API_KEY=***&sig=***"
    assert masked("GET https://h/f?feed-token=zz failed") == "GET https://h/f?feed-token=*** failed"
    # words that only end like a secret's name, and other parameters, are left alone
    assert (
        public_url("https://h/f?monkey=1&hotkey=2&passage=3&q=token")
        == "https://h/f?monkey=1&hotkey=2&passage=3&q=token"
    )


def test_a_token_ending_a_source_url_keeps_the_colon_after_it_in_messages(tmp_path, httpserver: HTTPServer):
    """`source URL?api_key=…: HTTP 404`: the colon after the URL was taken as part of the
    secret and masked with it, so the log and `fetch` read `api_key=*** HTTP 404`."""
    httpserver.expect_request("/gone.rss").respond_with_data("no", status=404)
    url = f"http://{httpserver.host}:{httpserver.port}/gone.rss?api_key={QUERY_SECRET}"
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: t\n  url: https://news.example/\ncategories:\n  - name: A\n    sources:\n"
        f"      - url: {url}\n",
        encoding="utf-8",
    )
    fetch = run_cli("--config", str(cfg), "fetch")
    assert fetch.returncode == 1 and QUERY_SECRET not in fetch.stdout + fetch.stderr
    shown = url.replace(QUERY_SECRET, "***")
    assert f"error      {shown}: HTTP 404" in fetch.stdout, fetch.stdout
    assert f"source {shown}: HTTP 404" in fetch.stderr, fetch.stderr


NOLINK_RSS = """<rss version="2.0"><channel><title>N</title><link>http://site.example/</link>
<item><guid>n1</guid><title>T</title>
<description><![CDATA[<p>x<a href="#fn1">1</a> <a href="">top</a></p>]]></description>
<comments>/c/n1</comments></item></channel></rss>"""
NOLINK_ATOM = """<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>
<updated>2025-01-02T00:00:00Z</updated><entry><id>urn:a:1</id><title>A1</title><updated>2025-01-02T00:00:00Z</updated>
<author><name>Ann</name><uri>#ann</uri></author>
<content type="html">&lt;p&gt;y&lt;a href="#fn3"&gt;3&lt;/a&gt;&lt;/p&gt;</content></entry></feed>"""
NOLINK_JSON = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [{"id": "j1", "title": "J1", "content_html": '<p>z<a href="#fn2">2</a></p>'}],
    }
)


def test_a_token_in_a_source_urls_query_is_not_resolved_into_its_posts(tmp_path, httpserver: HTTPServer):
    """An entry without a link has its relative links (`#fn1`, footnotes) resolved against the
    feed's URL: with its `?private_token=…`, which every feed, category feed and post page
    then published. They are resolved against the URL without its secret parameters; a feed
    with no secret in its URL keeps its query in them, as before."""
    for path, body, kind in (
        ("/nolink.rss", NOLINK_RSS, "application/rss+xml"),
        ("/nolink.atom", NOLINK_ATOM, "application/atom+xml"),
        ("/nolink.json", NOLINK_JSON, "application/feed+json"),
        (
            "/plain.rss",
            NOLINK_RSS.replace("<guid>n1", "<guid>p1").replace("<title>T<", "<title>P<"),
            "application/rss+xml",
        ),
    ):
        httpserver.expect_request(path).respond_with_data(body, content_type=kind)
    base = f"http://{httpserver.host}:{httpserver.port}"
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: t\n  url: https://news.example/\njekyll:\n  dir: jekyll\ncategories:\n"
        "  - name: Private\n    sources:\n"
        f"      - url: {base}/nolink.rss?private_token={QUERY_SECRET}\n"
        f"      - url: {base}/nolink.atom?lang=en&api_key={QUERY_SECRET}\n"
        f"      - url: {base}/nolink.json?token={QUERY_SECRET}\n"
        f"      - url: {base}/plain.rss?page=1\n",
        encoding="utf-8",
    )
    fetch = run_cli("--config", str(cfg), "fetch")
    assert fetch.returncode == 0, fetch.stdout + fetch.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("aggregator.db")]
    assert [p for p in files if QUERY_SECRET.encode() in p.read_bytes()] == [cfg]
    with sqlite3.connect(tmp_path / "aggregator.db") as conn:
        rows = conn.execute("SELECT title, link, content, summary, authors, enclosures, comments FROM posts").fetchall()
    stored = {r[0]: r for r in rows}
    assert len(stored) == 4 and not [r for r in rows if QUERY_SECRET in json.dumps(r)]
    # removed, not masked: the links still lead to the feed, and other parameters stay
    assert f'href="{base}/nolink.rss#fn1"' in stored["T"][2]
    assert stored["T"][6] == f"{base}/c/n1"
    assert f'href="{base}/nolink.atom?lang=en#fn3"' in stored["A1"][2]
    assert f"{base}/nolink.atom?lang=en#ann" in stored["A1"][4]
    assert f'href="{base}/nolink.json#fn2"' in stored["J1"][2]
    assert f'href="{base}/plain.rss?page=1#fn1"' in stored["P"][2]  # no secret: resolved as always


def test_a_posts_stored_with_the_sources_token_publish_it_masked():
    """Posts stored before links were resolved without the secret (and a private podcast's
    episode URLs, which repeat the feed's token) hold the source's secret query value: it is
    published as `***`; another source's, or an article's own, `token=` is left alone."""
    from aggregator.credentials import public_post
    from aggregator.models import Author, Enclosure, Post

    feed = f"http://h/f.rss?a=1&private_token={QUERY_SECRET}"
    when = datetime(2025, 1, 1, tzinfo=UTC)
    post = Post(
        id="x",
        source=feed,
        guid="g",
        title=f"{feed}#t",
        link=f"{feed}#t",
        published=when,
        updated=when,
        content=f'<a href="{feed.replace("&", "&amp;")}#fn1">1</a> <a href="https://o/?token=mine">o</a>',
        summary="",
        authors=(Author("A", None, f"{feed}#a"),),
        enclosures=(Enclosure(f"http://cdn.h/ep.mp3?private_token={QUERY_SECRET}", "audio/mpeg", None),),
        comments=f"{feed}#c",
        source_url=feed,
    )
    shown = public_post(post)
    assert QUERY_SECRET not in repr(replace(shown, source=""))  # the key is internal, never published
    masked = "http://h/f.rss?a=1&private_token=***"
    assert shown.link == masked + "#t" and shown.title == masked + "#t" and shown.comments == masked + "#c"
    assert shown.content == f'<a href="{masked.replace("&", "&amp;")}#fn1">1</a> <a href="https://o/?token=mine">o</a>'
    assert shown.authors[0].url == masked + "#a"
    assert shown.enclosures[0].url == "http://cdn.h/ep.mp3?private_token=***"
