"""A post's page URL, once published, keeps answering while the post exists: when its source
re-dates it to another month, its page moves (`posts/<yyyy>/<mm>/<id>.html`) and the old
path becomes a redirect to the new one, until the post is taken down. Real HTTP
(pytest-httpserver) for the feed, a real SQLite file, the real `aggregator` command."""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.serve import Server, StaticApp

from .conftest import check_feeds, run_cli

SITE = "https://news.example.org/"

CONFIG = f"""\
site:
  title: Moves
  url: {SITE}
  language: en
  timezone: UTC
categories:
  - name: News
    slug: news
    sources:
      - url: {{url}}
"""

# Link-less entries: their feed items link to our pages, so readers follow exactly those URLs.
FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Notes</title>
<id>urn:uuid:7d9d2c5e-0f7e-4a43-9b4e-5a1f00000001</id>
<updated>2022-02-10T08:00:00Z</updated>
<entry>
<title>The newer note</title>
<id>urn:uuid:7d9d2c5e-0f7e-4a43-9b4e-5a1f00000002</id>
<published>2022-02-10T07:30:00Z</published>
<updated>2022-02-10T07:30:00Z</updated>
<content type="html">&lt;p&gt;Newer text.&lt;/p&gt;</content>
</entry>
<entry>
<title>The moving note</title>
<id>urn:uuid:7d9d2c5e-0f7e-4a43-9b4e-5a1f00000003</id>
<published>{when}</published>
<updated>{when}</updated>
<content type="html">&lt;p&gt;Moving text.{note}&lt;/p&gt;</content>
</entry>
</feed>
"""


@pytest.fixture
def site(tmp_path: Path, httpserver: HTTPServer):
    """One category, one link-less Atom feed; `serve(date)` re-dates its second entry, with a
    note saying so (the store takes an entry's new date with an edit of its content: a
    date alone changed is not stored)."""
    state = {"when": "2022-02-09T18:00:00Z", "note": ""}

    def handler(request: Request) -> Response:
        return Response(FEED.format(**state).encode(), content_type="application/atom+xml")

    httpserver.expect_request("/notes.atom").respond_with_handler(handler)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.format(url=httpserver.url_for("/notes.atom")), encoding="utf-8")

    def serve(when: str) -> None:
        state["when"], state["note"] = when, f" (Re-dated {when[:10]}.)"

    return cfg, serve


def fetch(cfg: Path) -> None:
    done = run_cli("--config", str(cfg), "fetch")
    assert done.returncode == 0, done.stdout + done.stderr


def item_url(public: Path, title: str) -> str:
    """The URL the category's JSON Feed gives readers for the item titled `title`."""
    feed = json.loads((public / "category" / "news.json").read_text("utf-8"))
    return next(item["url"] for item in feed["items"] if item["title"] == title)


def redirect_target(page: Path) -> str:
    """Where a redirect stub sends its reader, checked to say the same in all three ways."""
    text = page.read_text("utf-8")
    assert "Moving text." not in text  # a stub, not a second copy of the post
    refresh = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', text)
    canonical = re.search(r'<link rel="canonical" href="([^"]+)">', text)
    link = re.search(r'<a href="([^"]+)">The moving note</a>', text)
    assert refresh and canonical and link, text
    assert refresh[1] == link[1]
    target = (page.parent / refresh[1]).resolve()
    assert SITE + str(target.relative_to(page.parents[3].resolve())) == canonical[1]
    return canonical[1]


def get(root: Path, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET `path` from `aggregator serve`'s app over real HTTP."""
    server = Server(StaticApp(lambda: root), "127.0.0.1", 0).start()
    try:
        host, port = server.addresses[0]
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        server.stop()


def test_a_redated_post_s_old_page_redirects_to_its_new_page_until_it_is_pruned(site):
    cfg, serve = site
    root = cfg.parent
    public = root / "public"
    fetch(cfg)
    first = item_url(public, "The moving note")  # what a reader's item links to
    assert first.startswith(f"{SITE}posts/2022/02/")
    first_page = public / first.removeprefix(SITE)
    assert "Moving text." in first_page.read_text("utf-8")

    serve("2022-01-09T18:00:00Z")  # the source corrects the date: a month earlier
    fetch(cfg)
    second = item_url(public, "The moving note")
    assert second.startswith(f"{SITE}posts/2022/01/")
    second_page = public / second.removeprefix(SITE)
    assert "Moving text." in second_page.read_text("utf-8")
    assert redirect_target(first_page) == second  # the reader's old link still leads to the post
    status, headers, _ = get(public, "/" + first.removeprefix(SITE))  # `aggregator serve` answers a real 301
    # relative to the old page (a proxy may serve the site under a prefix): its month's sibling
    assert (status, headers.get("location")) == (301, "../01/" + second.rpartition("/")[2])
    status, _, body = get(public, "/" + second.removeprefix(SITE))
    assert status == 200 and b"Moving text." in body
    # the stub is no post: no page, feed or listing names it
    outputs = [p for p in public.rglob("*") if p.is_file() and p != first_page]
    assert len(outputs) > 8 and not [p for p in outputs if first.removeprefix(SITE) in p.read_text("utf-8")]
    checked = check_feeds(public)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    serve("2021-12-09T18:00:00Z")  # and again: both old URLs lead straight to the last page
    fetch(cfg)
    third = item_url(public, "The moving note")
    assert third.startswith(f"{SITE}posts/2021/12/")
    assert "Moving text." in (public / third.removeprefix(SITE)).read_text("utf-8")
    assert redirect_target(first_page) == third and redirect_target(second_page) == third

    again = run_cli("--config", str(cfg), "publish")  # a later publish keeps them as they are
    assert again.returncode == 0 and again.stdout.startswith("0 files written"), again.stdout + again.stderr
    assert redirect_target(first_page) == third and redirect_target(second_page) == third

    limited = cfg.read_text("utf-8").replace("  timezone: UTC\n", "  timezone: UTC\n  items_per_feed: 1\n")
    cfg.write_text(limited + "        keep_per_source: 1\n", "utf-8")  # the older note goes
    pruned = run_cli("--config", str(cfg), "prune")
    assert "removed 1 post " in pruned.stdout, pruned.stdout + pruned.stderr
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert not first_page.exists() and not second_page.exists()
    assert not (public / third.removeprefix(SITE)).exists()
    with sqlite3.connect(root / "aggregator.db") as db:
        assert db.execute("SELECT count(*) FROM post_files").fetchone()[0] == 1  # the newer note's page
    checked = check_feeds(public)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_post_moved_back_gets_its_page_back_and_a_filtered_out_one_loses_its_redirects(site):
    cfg, serve = site
    public = cfg.parent / "public"
    fetch(cfg)
    first = public / item_url(public, "The moving note").removeprefix(SITE)
    serve("2022-03-09T18:00:00Z")
    fetch(cfg)
    moved = public / item_url(public, "The moving note").removeprefix(SITE)
    assert "/2022/03/" in str(moved) and redirect_target(first).endswith(str(moved.relative_to(public)))

    serve("2022-02-09T18:00:00Z")  # the correction is undone: the first URL is the page again
    fetch(cfg)
    assert "Moving text." in first.read_text("utf-8")
    assert redirect_target(moved).endswith(str(first.relative_to(public)))

    text = cfg.read_text("utf-8")
    cfg.write_text(text + "    exclude:\n      - title: moving\n", "utf-8")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert not first.exists() and not moved.exists()


def test_a_publish_killed_before_redirecting_a_moved_page_left_it_whole_and_the_next_one_redirects_it(site):
    """What a kill between recording a post's new page (its category's state recorded with
    it by a long publish's checkpoint) and writing the stub leaves, made in the real
    database and folder: the old page's row superseded, its file the old page, whole. The
    next publish, with nothing else to do (not `publish`, which rebuilds everything: a
    fetch's), turns it into the redirect."""
    cfg, serve = site
    root = cfg.parent
    public = root / "public"
    fetch(cfg)
    first = public / item_url(public, "The moving note").removeprefix(SITE)
    page = first.read_bytes()
    serve("2022-01-09T18:00:00Z")
    fetch(cfg)
    moved = item_url(public, "The moving note")
    assert redirect_target(first) == moved
    first.write_bytes(page)
    db = sqlite3.connect(root / "aggregator.db")
    with db:
        assert db.execute("UPDATE post_files SET kind = 'page', superseded = 1 WHERE kind = 'redirect'").rowcount == 1
    db.close()
    done = run_cli("--config", str(cfg), "fetch")  # the feed unchanged: a publish of nothing new
    assert done.returncode == 0 and "1 file written" in done.stdout, done.stdout + done.stderr
    assert redirect_target(first) == moved
    again = run_cli("--config", str(cfg), "fetch")
    assert again.returncode == 0 and "0 files written" in again.stdout, again.stdout + again.stderr


def _jekyll_config(cfg: Path) -> Path:
    """The site's config with a Jekyll export next to it."""
    cfg.write_text(cfg.read_text("utf-8") + "jekyll:\n  dir: jekyll\n", encoding="utf-8")
    return cfg.parent / "jekyll" / "_posts"


def _moving_post(posts: Path) -> tuple[str, str]:
    """(file name, text) of the moving note's one Jekyll file."""
    files = [p for p in posts.iterdir() if "The moving note" in p.read_text("utf-8")]
    assert len(files) == 1, sorted(p.name for p in posts.iterdir())
    return files[0].name, files[0].read_text("utf-8")


def test_a_redated_post_keeps_its_jekyll_file_name_and_date_so_its_jekyll_url(site):
    """Jekyll makes a post's URL from its date, and has no redirect without a plugin: the
    entry keeps the file name and front matter date it was first written with (as the
    reference says the same entry must always get the same file name and URL), while its
    text follows the edit and the feeds carry the new date."""
    cfg, serve = site
    posts = _jekyll_config(cfg)
    fetch(cfg)
    name, text = _moving_post(posts)
    assert name.startswith("2022-02-09-") and "date: 2022-02-09 18:00:00 +0000" in text
    serve("2022-03-15T09:00:00Z")
    fetch(cfg)
    after_name, after = _moving_post(posts)
    assert after_name == name and len(list(posts.iterdir())) == 2  # no second file for it
    assert "date: 2022-02-09 18:00:00 +0000" in after and "Re-dated 2022-03-15" in after
    feed = json.loads((cfg.parent / "public" / "category" / "news.json").read_text("utf-8"))
    moved = next(i for i in feed["items"] if i["title"] == "The moving note")
    assert moved["date_published"].startswith("2022-03-15T09:00:00")  # the feeds say what the source says
    done = run_cli("--config", str(cfg), "publish")  # a full publish keeps it too
    assert done.returncode == 0, done.stdout + done.stderr
    assert _moving_post(posts) == (after_name, after)


def test_an_upgrade_pins_the_jekyll_files_an_older_version_wrote(site):
    """A database from before dates were kept with Jekyll files: the upgrade takes each
    current file's date from its post (the date it was written with), so a re-dating after
    the upgrade already keeps the file."""
    cfg, serve = site
    posts = _jekyll_config(cfg)
    fetch(cfg)
    name, _ = _moving_post(posts)
    db = sqlite3.connect(cfg.parent / "aggregator.db")
    db.execute("ALTER TABLE post_files DROP COLUMN dated")  # as an older version made the table
    db.commit()
    db.close()
    serve("2022-03-15T09:00:00Z")
    fetch(cfg)
    after_name, after = _moving_post(posts)
    assert after_name == name and "date: 2022-02-09 18:00:00 +0000" in after and "Re-dated" in after
