"""Dates in the rarer shapes real feeds write, through the real command: `aggregator fetch`
of feeds served over HTTP, into a real SQLite file and the published feeds."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pytest_httpserver import HTTPServer

from aggregator.models import NORMALIZER_VERSION

from .conftest import CORPUS, run_cli

# (title, the feed's date, the stored UTC time): in a source of Asia/Shanghai, read by the
# fast path
SHANGHAI = [
    ("weekday first", "星期一 2025年11月3日 10:05", "2025-11-03T02:05:00+00:00"),
    ("bracketed weekday", "(周一) 2025-11-03 10:06", "2025-11-03T02:06:00+00:00"),
    ("hour alone", "2025年11月3日 11点", "2025-11-03T03:00:00+00:00"),
    ("pm after rfc 822", "Mon, 03 Nov 2025 10:05 PM", "2025-11-03T14:05:00+00:00"),
    ("iso week", "2025-W45", "2025-11-02T16:00:00+00:00"),
    ("basic date", "20251104", "2025-11-03T16:00:00+00:00"),
]
# in a source of Asia/Hong_Kong, read by feedparser's path (the DOCTYPE sends it there)
HONG_KONG = [
    ("cst", "Mon, 03 Nov 2025 10:05:00 CST", "2025-11-03T02:05:00+00:00"),
    ("weekday first hk", "週一 2025-11-03 12時", "2025-11-03T04:00:00+00:00"),
    ("pm after rfc 822 gmt", "Mon, 03 Nov 2025 10:05:00 PM GMT", "2025-11-03T22:05:00+00:00"),
]


def _rss(items: list[tuple[str, str, str]], doctype: bool = False) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><guid>urn:{title}</guid><pubDate>{date}</pubDate>"
        f"<description>{title}</description></item>"
        for title, date, _ in items
    )
    head = '<!DOCTYPE rss SYSTEM "http://e.org/rss.dtd">' if doctype else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{head}<rss version="2.0"><channel><title>F</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    ).encode()


def _fetch(tmp_path, sources: str, site: str = "", top: str = "") -> None:
    """`aggregator fetch` of a config whose category `A` (slug `a`) has `sources` (its `- url:`
    lines); `site`: more `site:` lines, `top`: more sections (`jekyll:`)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: S\n  url: https://example.org/\n{site}{top}categories:\n  - name: A\n    sources:\n{sources}",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rare_date_shapes_are_stored_and_published_in_the_source_zone(tmp_path, httpserver: HTTPServer):
    """Before, the weekday-first dates were no dates (the posts took their fetch time),
    `11点` and the week were midnight UTC of 1 November, the basic date midnight UTC, 10:05
    PM was 10:05, and Hong Kong's CST was US Central's, 14 hours later."""
    from aggregator.parse_fast import parse_fast

    assert parse_fast(_rss(SHANGHAI), "http://h/") is not None  # the fast path
    assert parse_fast(_rss(HONG_KONG, doctype=True), "http://h/") is None  # feedparser's
    httpserver.expect_request("/sh").respond_with_data(_rss(SHANGHAI), content_type="application/rss+xml")
    httpserver.expect_request("/hk").respond_with_data(
        _rss(HONG_KONG, doctype=True), content_type="application/rss+xml"
    )
    _fetch(
        tmp_path,
        f"      - url: {httpserver.url_for('/sh')}\n        timezone: Asia/Shanghai\n"
        f"      - url: {httpserver.url_for('/hk')}\n        timezone: Asia/Hong_Kong\n",
    )
    want = {title: stored for title, _, stored in SHANGHAI + HONG_KONG}

    con = sqlite3.connect(tmp_path / "aggregator.db")
    rows = {
        title: (published, dated)
        for title, published, dated in con.execute("SELECT title, published, dated FROM posts")
    }
    con.close()
    assert rows == {title: (stored, 1) for title, stored in want.items()}

    items = json.loads((tmp_path / "public" / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    published = {i["title"]: i["date_published"] for i in items}
    assert published == {title: stored.replace("+00:00", "Z") for title, stored in want.items()}


def _stored_dates_in_shanghai(tmp_path, httpserver: HTTPServer, items: list[tuple[str, str, str]]) -> dict[str, str]:
    """`fetch` of an RSS feed of (title, pubDate, _) items by a site in Asia/Shanghai with Jekyll
    on (into `jekyll/`): each post's stored `published`, by title."""
    httpserver.expect_request("/feed").respond_with_data(_rss(items), content_type="application/rss+xml")
    _fetch(
        tmp_path,
        f"      - url: {httpserver.url_for('/feed')}\n",
        site="  timezone: Asia/Shanghai\n",
        top="jekyll:\n  dir: jekyll\n",
    )
    con = sqlite3.connect(tmp_path / "aggregator.db")
    try:
        return dict(con.execute("SELECT title, published FROM posts"))
    finally:
        con.close()


def test_dates_a_go_template_prints_keep_their_time_and_zone(tmp_path, httpserver: HTTPServer):
    """A Go template printing a time.Time as is writes `2025-11-03 00:30:00 +0800 CST`, of which
    feedparser read only the day, at midnight UTC: the post of 00:30 in Shanghai was dated 08:00
    there, the one of 23:30 in New York 19:00 the day before (its Jekyll file a day early, and
    below the other in every output). Now each is the time and offset it writes."""
    items = [
        ("shanghai", "2025-11-03 00:30:00 +0800 CST", "2025-11-02T16:30:00+00:00"),
        ("new york", "2025-11-02 23:30:00.123456789 -0500 EST m=+0.000012", "2025-11-03T04:30:00+00:00"),
    ]
    assert _stored_dates_in_shanghai(tmp_path, httpserver, items) == {title: stored for title, _, stored in items}
    feed = json.loads((tmp_path / "public" / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    assert [(i["title"], i["date_published"]) for i in feed] == [
        ("new york", "2025-11-03T04:30:00Z"),
        ("shanghai", "2025-11-02T16:30:00Z"),
    ]
    fronts = {
        re.search(r"^title: \"(.*)\"$", text, re.M)[1]: (path.name[:10], re.search(r"^date: (.*)$", text, re.M)[1])
        for path in (tmp_path / "jekyll" / "_posts").glob("*.md")
        for text in [path.read_text(encoding="utf-8")]
    }
    assert fronts == {
        "shanghai": ("2025-11-03", "2025-11-03 00:30:00 +0800"),
        "new york": ("2025-11-03", "2025-11-03 12:30:00 +0800"),
    }


def test_dates_written_in_beijing_time_are_read_at_plus_eight(tmp_path, httpserver: HTTPServer):
    """Chinese sites write `2025-11-03 00:30 北京时间` (Beijing time), or `(北京时间)` after it:
    the first was read by feedparser as the 1st of the month it was fetched in, the second in the
    source's zone (UTC unless configured: eight hours late, a post of 00:30 filed the day before)."""
    items = [
        ("after", "2025-11-03 00:30 北京时间", "2025-11-02T16:30:00+00:00"),
        ("bracketed", "2025年11月03日 07:45 (北京时间)", "2025-11-02T23:45:00+00:00"),
    ]
    assert _stored_dates_in_shanghai(tmp_path, httpserver, items) == {title: stored for title, _, stored in items}
    dates = sorted(p.name[:10] for p in (tmp_path / "jekyll" / "_posts").glob("*.md"))
    assert dates == ["2025-11-03", "2025-11-03"]


def _atom(entries: list[tuple[str, str]]) -> bytes:
    """An Atom feed of (title, updated) entries."""
    body = "".join(
        f"<entry><title>{title}</title><id>urn:{title}</id><updated>{updated}</updated>"
        f"<content>{title}</content></entry>"
        for title, updated in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>'
        f'<id>urn:f</id><updated>2025-11-03T00:00:00Z</updated><link href="https://example.org/"/>{body}</feed>'
    ).encode()


def test_php_s_zero_date_is_no_date(tmp_path, httpserver: HTTPServer):
    """PHP's DateTime writes MySQL's zero date, `0000-00-00 00:00:00`, as
    `-0001-11-30T00:00:00+00:00`: feedparser read it as 1 January 2000, and the post was
    published as one of that day, last in its category (the first pruned by `keep_days`).
    It is no date now: the post is dated when first seen, as one without a date."""
    entries = [("zero", "-0001-11-30T00:00:00+00:00"), ("dated", "2025-11-03T10:00:00+08:00")]
    httpserver.expect_request("/php").respond_with_data(_atom(entries), content_type="application/atom+xml")
    _fetch(
        tmp_path,
        f"      - url: {httpserver.url_for('/php')}\n",
    )

    rows = {r["title"]: r for r in _stored(tmp_path).values()}
    assert (rows["zero"]["dated"], rows["zero"]["published"]) == (0, rows["zero"]["first_seen"])
    assert (rows["dated"]["dated"], rows["dated"]["published"]) == (1, "2025-11-03T02:00:00+00:00")
    items = json.loads((tmp_path / "public" / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    assert [(i["title"], i["date_published"][:4]) for i in items] == [
        ("zero", rows["zero"]["first_seen"][:4]),
        ("dated", "2025"),
    ]


def test_the_epoch_written_without_a_zone_is_no_date_in_any_source_zone(tmp_path, httpserver: HTTPServer):
    """`1970-01-01 00:00:00`, a timestamp of 0 written without a zone, is "no date" as the
    epoch written with one is; read in a source's Asia/Shanghai it was 1969-12-31 16:00 UTC,
    which is no epoch, and the post was published as one of 1 January 1970 (last in its
    category, its Jekyll file `1970-01-01-…`), and so was `1970-01-01 08:00:00`, a Chinese
    server's timestamp 0, in a source left in UTC. Now each is dated when first seen."""
    items = [
        ("epoch", "1970-01-01 00:00:00", ""),
        ("epoch day", "1970-01-01", ""),
        ("dated", "2025-11-03 10:00:00", "2025-11-03T02:00:00+00:00"),
    ]
    httpserver.expect_request("/e").respond_with_data(_rss(items), content_type="application/rss+xml")
    # a Chinese server's timestamp 0, `1970-01-01 08:00:00`, in a source left in UTC
    httpserver.expect_request("/u").respond_with_data(
        _rss([("epoch there", "1970-01-01 08:00:00", "")]), content_type="application/rss+xml"
    )
    _fetch(
        tmp_path,
        f"      - url: {httpserver.url_for('/e')}\n      - url: {httpserver.url_for('/u')}\n        timezone: UTC\n",
        site="  timezone: Asia/Shanghai\n",
        top="jekyll:\n  dir: jekyll\n",
    )

    rows = {r["title"]: r for r in _stored(tmp_path).values()}
    assert {title: (r["dated"], r["published"] == r["first_seen"]) for title, r in rows.items()} == {
        "epoch": (0, True),
        "epoch day": (0, True),
        "epoch there": (0, True),
        "dated": (1, False),
    }
    assert rows["dated"]["published"] == "2025-11-03T02:00:00+00:00"
    assert not [p.name for p in (tmp_path / "jekyll" / "_posts").glob("19[67]*")]


def test_dates_typed_with_full_width_forms_keep_their_time(tmp_path, httpserver: HTTPServer):
    """A Chinese input method types `：` and `－` full width: `2025-11-03 10：05` was read by
    feedparser as midnight UTC (08:00 in Shanghai, the time lost), `2025－11－03 10:06` as 1
    November, and so was `2025年11月3日 10：07：30`. Each is its time in the source's zone now."""
    items = [
        ("colon", "2025-11-03 10：05", "2025-11-03T02:05:00+00:00"),
        ("hyphens", "2025－11－03 10:06", "2025-11-03T02:06:00+00:00"),
        ("chinese", "2025年11月3日 10：07：30", "2025-11-03T02:07:30+00:00"),
    ]
    httpserver.expect_request("/fw").respond_with_data(_rss(items), content_type="application/rss+xml")
    _fetch(
        tmp_path,
        f"      - url: {httpserver.url_for('/fw')}\n",
        site="  timezone: Asia/Shanghai\n",
    )

    rows = {r["title"]: (r["dated"], r["published"]) for r in _stored(tmp_path).values()}
    assert rows == {title: (1, stored) for title, _, stored in items}
    page = (tmp_path / "public" / "category" / "a.html").read_text(encoding="utf-8")
    assert re.findall(r"<time [^>]*>([^<]*)</time>", page) == [
        "2025-11-03 10:07",
        "2025-11-03 10:06",
        "2025-11-03 10:05",
    ]


def test_a_year_followed_by_what_no_reader_reads_is_no_month_made_up(tmp_path, httpserver: HTTPServer):
    """feedparser's ISO 8601 reader takes the year of `2025-Nov-03 10:00` or Korean `2025년 11월
    03일 10:05:00` and fills in the month it reads it in: each post was dated the 1st of the
    month it was fetched in, whatever its date. Now the first is no date (dated when first
    seen), and the Korean one is read by feedparser's reader of Korean dates, in Korea's time,
    on either parser's path."""
    items = [("english", "2025-Nov-03 10:00", ""), ("korean", "2025년 11월 03일 10:05:00", "")]
    httpserver.expect_request("/fast").respond_with_data(_rss(items), content_type="application/rss+xml")
    slow = [(f"{title} slow", date, "") for title, date, _ in items]
    httpserver.expect_request("/slow").respond_with_data(_rss(slow, doctype=True), content_type="application/rss+xml")
    _fetch(
        tmp_path,
        f"      - url: {httpserver.url_for('/fast')}\n      - url: {httpserver.url_for('/slow')}\n",
    )

    rows = {r["title"]: r for r in _stored(tmp_path).values()}
    for suffix in ("", " slow"):
        english, korean = rows["english" + suffix], rows["korean" + suffix]
        assert (english["dated"], english["published"]) == (0, english["first_seen"])
        assert (korean["dated"], korean["published"]) == (1, "2025-11-03T01:05:00+00:00")


MONTHLY = CORPUS / "speedparser2011" / "speedparser__feeds_0197.dat.xml"  # `<pubDate>September 2008</pubDate>`


def _months_feed(tmp_path, httpserver: HTTPServer):
    """The config of one source, the month-dated library archive of the corpus served over HTTP
    in Oklahoma's zone, and what each of its entries should be dated: {guid: UTC time}."""
    body = MONTHLY.read_bytes()
    httpserver.expect_request("/news.xml").respond_with_data(body, content_type="application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: S\n  url: https://example.org/\n  timezone: UTC\ncategories:\n  - name: A\n    sources:\n"
        f"      - url: {httpserver.url_for('/news.xml')}\n        timezone: America/Chicago\n",
        encoding="utf-8",
    )
    want = {}
    for item in re.findall(rb"<item>.*?</item>", body, re.S):
        guid = re.search(rb"<guid[^>]*>([^<]*)</guid>", item)[1].decode().strip()
        month = re.search(rb"<pubDate>([^<]*)</pubDate>", item)[1].decode()
        local = datetime.strptime("1 " + month, "%d %B %Y").replace(tzinfo=ZoneInfo("America/Chicago"))
        want.setdefault(guid, local.astimezone(UTC).isoformat())
    return cfg, want


def _stored(tmp_path) -> dict[str, dict]:
    con = sqlite3.connect(tmp_path / "aggregator.db")
    con.row_factory = sqlite3.Row
    rows = {r["guid"]: dict(r) for r in con.execute("SELECT * FROM posts")}
    con.close()
    return rows


def test_a_feed_dated_by_the_month_is_published_in_its_months(tmp_path, httpserver: HTTPServer):
    """speedparser2011's library archive dates its items `September 2008`, `May 2010`: read as
    no date, all 369 of its 2008-2011 posts were dated when fetched and published on top as
    news. Each is the first of its month now, at midnight in the source's zone."""
    cfg, want = _months_feed(tmp_path, httpserver)
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr

    rows = _stored(tmp_path)
    assert len(rows) == len(want) == 369
    assert {guid: (r["published"], r["dated"]) for guid, r in rows.items()} == {
        guid: (when, 1) for guid, when in want.items()
    }
    items = json.loads((tmp_path / "public" / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    newest = sorted((w.replace("+00:00", "Z") for w in want.values()), reverse=True)
    assert items and [i["date_published"] for i in items] == newest[: len(items)]
    assert newest[0] == "2011-08-01T05:00:00Z"  # newest first: the archive's last month


def test_an_upgrade_gives_posts_an_older_version_could_not_date_their_months(tmp_path, httpserver: HTTPServer):
    """A database of an older version (NORMALIZER_VERSION 7) holds the archive's posts dated when
    they were first seen, `dated` 0. The first fetch after the upgrade gives each its month, keeping
    its id and `updated` time, and its page moves to that month (the old one redirects); a
    post this version stored undated would not be re-dated (a new date alone is not taken)."""
    cfg, want = _months_feed(tmp_path, httpserver)
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    with con:  # as version 7 stored them, which recorded no `read_by` (the feed's body hash stays)
        con.execute("UPDATE posts SET published = first_seen, updated = first_seen, dated = 0, normalized = ?", [7])
        con.execute("UPDATE sources SET read_by = NULL")
        con.execute("DELETE FROM post_files")  # and published them so: on top, under this month
        kept = con.execute("SELECT guid FROM posts ORDER BY guid LIMIT 1").fetchone()[0]
        con.execute("UPDATE posts SET normalized = ? WHERE guid = ?", [NORMALIZER_VERSION, kept])
    con.close()
    shutil.rmtree(tmp_path / "public")
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stdout + result.stderr
    before = _stored(tmp_path)
    public = tmp_path / "public"
    old_pages = {p.name: p for p in public.glob("posts/*/*/*.html")}
    assert len(old_pages) == 369 and not list(public.glob("posts/20[01][0-9]/"))

    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    after = _stored(tmp_path)
    assert {r["id"] for r in after.values()} == {r["id"] for r in before.values()}
    for guid, r in after.items():
        if guid == kept:
            assert (r["published"], r["dated"]) == (before[guid]["published"], 0)
            continue
        assert (r["published"], r["dated"], r["normalized"]) == (want[guid], 1, NORMALIZER_VERSION)
        assert r["updated"] == before[guid]["updated"] and r["first_seen"] == before[guid]["first_seen"]
    items = json.loads((public / "category" / "a.json").read_text(encoding="utf-8"))["items"]
    assert [i["url"] for i in items[:1]] == [after[kept]["link"]]  # the only post still dated when first seen
    assert items[1]["date_published"] == "2011-08-01T05:00:00Z"
    moved = {p.name: p for p in public.glob("posts/20[01]?/*/*.html")}
    assert len(moved) == 368
    redirects = [old_pages[name] for name in moved]
    assert all('content="redirect"' in page.read_text("utf-8") for page in redirects)

    result = run_cli("--config", str(cfg), "fetch")  # once: nothing changes again
    assert result.returncode == 0, result.stdout + result.stderr
    assert _stored(tmp_path) == {**after}


def test_an_upgrade_from_a_version_that_kept_no_record_of_its_files_moves_no_jekyll_url(
    tmp_path, httpserver: HTTPServer
):
    """Versions before `post_files` (75a469c, for one) recorded none of the pages and Jekyll
    files they wrote. Upgraded from one, the first `fetch` gave the archive's posts their
    months and wrote each a second Jekyll file under that date (369 posts published twice by
    Jekyll, at two URLs), and left each old page whole, not a redirect. The files found on
    disk are recorded now: each Jekyll file keeps its name, each old page redirects."""
    cfg, want = _months_feed(tmp_path, httpserver)
    cfg.write_text(cfg.read_text(encoding="utf-8") + "jekyll:\n  dir: jekyll\n", encoding="utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    with con:  # as such a version stored the posts: undated, first seen now
        con.execute("UPDATE posts SET published = first_seen, updated = first_seen, dated = 0, normalized = 7")
        con.execute("UPDATE sources SET read_by = NULL")
        con.execute("DELETE FROM post_files")
    con.close()
    shutil.rmtree(tmp_path / "public")
    shutil.rmtree(tmp_path / "jekyll")
    result = run_cli("--config", str(cfg), "publish")  # and published them so, on top, under this month
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    with con:  # without recording a file
        con.execute("DROP TABLE post_files")
        con.execute("PRAGMA user_version = 1")
    con.close()
    public, posts = tmp_path / "public", tmp_path / "jekyll" / "_posts"
    old_pages = {p.name: p for p in public.glob("posts/*/*/*.html")}
    jekyll = {p.name: p.read_text("utf-8") for p in posts.glob("*.md")}
    assert len(old_pages) == len(jekyll) == 369 and not list(public.glob("posts/20[01][0-9]/"))

    result = run_cli("--config", str(cfg), "fetch")  # the upgrade's first command
    assert result.returncode == 0, result.stdout + result.stderr
    assert {r["published"] for r in _stored(tmp_path).values()} == set(want.values())  # re-dated
    assert sorted(p.name for p in posts.glob("*.md")) == sorted(jekyll)  # no second file, no new URL
    for name, text in jekyll.items():
        assert (
            re.search(r"^date: .*$", (posts / name).read_text("utf-8"), re.M)[0]
            == re.search(r"^date: .*$", text, re.M)[0]
        )
    moved = {p.name for p in public.glob("posts/20[01]?/*/*.html")}
    assert moved == set(old_pages)
    assert all('content="redirect"' in page.read_text("utf-8") for page in old_pages.values())

    result = run_cli("--config", str(cfg), "fetch")  # once: nothing changes again
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 files written" in result.stdout


def test_files_an_older_version_left_of_the_posts_it_pruned_are_taken_down(tmp_path, httpserver: HTTPServer):
    """A version before `post_files` pruned posts (`keep_per_source`) and left their pages and
    Jekyll files online; the upgrade's first publish, which finds that version's files on
    disk, takes them down, as it does those of the posts it prunes itself."""
    cfg, _ = _months_feed(tmp_path, httpserver)
    cfg.write_text(cfg.read_text(encoding="utf-8") + "jekyll:\n  dir: jekyll\n", encoding="utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    with con:  # a database of such a version: no record of its files
        con.execute("DROP TABLE post_files")
        con.execute("PRAGMA user_version = 1")
    con.close()
    text = cfg.read_text(encoding="utf-8").replace("timezone: America/Chicago\n", "timezone: America/Chicago\n"
                                                   "        keep_per_source: 60\n")  # fmt: skip
    cfg.write_text(text, encoding="utf-8")
    result = run_cli("--config", str(cfg), "prune")  # as that version pruned: the files stay
    assert result.returncode == 0, result.stdout + result.stderr
    kept = {r["id"] for r in _stored(tmp_path).values()}
    public, posts = tmp_path / "public", tmp_path / "jekyll" / "_posts"
    assert len(kept) == 60 and len(list(posts.glob("*.md"))) == len(list(public.glob("posts/*/*/*.html"))) == 369

    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.stem for p in public.glob("posts/*/*/*.html")} == kept
    assert {p.stem[11:] for p in posts.glob("*.md")} == kept


def test_an_upgrade_from_a_version_8_that_read_no_months_dates_them(tmp_path, httpserver: HTTPServer):
    """Versions were at NORMALIZER_VERSION 8 before they read a month alone as a date
    (3d09b71, for one, which recorded no `read_by`): upgraded from one, the archive's 369 posts
    stayed dated when first seen, on top of their category as news, for good, where an upgrade
    from 7 gave them their months. They take them now, once, keeping ids and `updated`."""
    cfg, want = _months_feed(tmp_path, httpserver)
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    with con:
        con.execute("UPDATE posts SET published = first_seen, updated = first_seen, dated = 0, normalized = 8")
        con.execute("UPDATE sources SET read_by = NULL")
    con.close()
    before = _stored(tmp_path)

    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    after = _stored(tmp_path)
    assert {guid: (r["id"], r["published"], r["dated"], r["updated"]) for guid, r in after.items()} == {
        guid: (r["id"], want[guid], 1, r["updated"]) for guid, r in before.items()
    }
