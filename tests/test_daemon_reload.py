"""Reload of the running daemon: on an edit of feeds.yaml and on SIGHUP; an invalid edit is
rejected with its errors logged and the running config keeps going."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from datetime import UTC, datetime

import pytest
from werkzeug import Request, Response

from .daemon_support import FEEDS, Daemon, FeedServer, fetched, write_config
from .pollrig import rss

FEED = rss(items=2)


@pytest.fixture
def feeds():
    server = FeedServer()
    yield server
    server.close()


def _reloaded(reason: str):
    return lambda r: r["message"].startswith(f"config reloaded ({reason})")


def test_edits_and_sighup_apply_and_an_invalid_edit_is_rejected(tmp_path, feeds):
    a, b = feeds.feed("/a", FEEDS[0]), feeds.feed("/b", FEEDS[1])
    c, e = feeds.feed("/c", FEEDS[2]), feeds.feed("/e", FEEDS[2])
    cfg = tmp_path / "feeds.yaml"
    write_config(cfg, [{"url": a, "interval": "1h"}, {"url": b, "interval": "1s"}])
    daemon = Daemon(cfg)
    try:
        assert feeds.wait_hits("/b", 2) >= 2 and feeds.hits["/a"] == 1, daemon.log

        # 1. An edit of the file: b removed, c added, a's interval from 1h to 1s.
        write_config(cfg, [{"url": a, "interval": "1s"}, {"url": c, "interval": "1h"}])
        applied = daemon.wait_for(_reloaded("file changed"))[0]
        assert applied["added"] == [c] and applied["removed"] == [b] and applied["retimed"] == [a]
        removed = daemon.wait_for(lambda r: "removed from the config" in r["message"])
        assert [r.get("source") for r in removed] == [b]  # JSON names it, as every line about a source
        assert feeds.wait_hits("/c", 1) == 1, "an added source is polled soon"
        a_hits = feeds.hits["/a"]
        assert feeds.wait_hits("/a", a_hits + 2) >= a_hits + 2, "a's new 1s interval applies"
        b_hits = feeds.hits["/b"]  # (a poll of b in flight at the reload may still have landed)
        assert feeds.wait_hits("/a", feeds.hits["/a"] + 2) and feeds.hits["/b"] == b_hits, "b is no longer polled"
        db = sqlite3.connect(tmp_path / "aggregator.db")
        assert db.execute("SELECT count(*) FROM posts WHERE source = ?", [b]).fetchone()[0] > 0, "b's posts stay"
        daemon.wait_for(lambda r: r.get("categories") is None, count=2)  # republished for the new config
        everything = (tmp_path / "public" / "feed.atom").read_text(encoding="utf-8")
        assert f'href="{a}"' in everything and f'href="{b}"' not in everything, "b left the outputs"
        valid = cfg.read_text()

        # 2. An invalid edit: rejected with the line and key path; the running config goes on.
        cfg.write_text(valid.replace("interval: 1s", "interval: xx"), encoding="utf-8")
        errors = daemon.wait_for(lambda r: r["message"].startswith("config reload rejected: "))
        assert f"{cfg}:" in errors[0]["message"] and "categories.0.sources.0.interval" in errors[0]["message"]
        assert "not a duration" in errors[0]["message"]
        daemon.wait_for(lambda r: "still running the previous config" in r["message"])
        a_hits = feeds.hits["/a"]
        assert feeds.wait_hits("/a", a_hits + 2) >= a_hits + 2, "the old config keeps polling"

        # 3. SIGHUP: the file now swaps c for e, with size, mtime and inode kept as they were,
        # so only the signal can make the daemon read it.
        st = cfg.stat()
        cfg.write_text(valid.replace("/c", "/e"), encoding="utf-8")
        os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert cfg.stat().st_size == st.st_size
        time.sleep(2.5)  # longer than the daemon's 2s watch interval
        assert feeds.hits["/e"] == 0 and not daemon.messages(r"^config reloaded \(SIGHUP\)")
        daemon.send(signal.SIGHUP)
        applied = daemon.wait_for(_reloaded("SIGHUP"))[0]
        assert applied["added"] == [e] and applied["removed"] == [c]
        assert feeds.wait_hits("/e", 1) == 1
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
    assert daemon.messages("^received SIGHUP")


def test_a_config_cut_short_to_no_source_is_not_applied_and_the_site_stays(tmp_path, feeds):
    """`head -3 feeds.yaml > new && mv new feeds.yaml` (or `categories: []`) parses: applied,
    it took every page and feed of the site down a second later."""
    urls = [feeds.feed(f"/{n}", FEEDS[i]) for i, n in enumerate("abc")]
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": u, "interval": "1h"} for u in urls])
    valid = cfg.read_text(encoding="utf-8")
    daemon = Daemon(cfg)
    try:
        for i in range(3):
            daemon.wait_for(fetched(urls[i]))
        page = tmp_path / "public" / "category" / "c0.atom"
        daemon.wait_for(lambda r: page.exists() and urls[0] in page.read_text(encoding="utf-8"), timeout=20)
        cfg.write_text("\n".join(valid.splitlines()[:3]) + "\n", encoding="utf-8")  # site: title: url: only
        daemon.wait_for(lambda r: "no source left (was 3 sources)" in r["message"])
        daemon.wait_for(lambda r: "still running the previous config" in r["message"])
        cfg.write_text(valid.split("categories:")[0] + "categories: []\n", encoding="utf-8")
        daemon.wait_for(lambda r: "no source left" in r["message"], count=2)
        time.sleep(2.5)  # a publish, had the reload been applied
        assert page.exists() and urls[0] in page.read_text(encoding="utf-8")
        assert not daemon.messages("^removed ")
        # two of three removed: applied (it may be meant), with a warning saying what it does
        write_config(cfg, [{"url": urls[0], "interval": "1h"}])
        applied = daemon.wait_for(_reloaded("file changed"))[0]
        assert sorted(applied["removed"]) == sorted(urls[1:])
        warned = daemon.wait_for(lambda r: r["message"].startswith("the reload removed 2 of 3 sources"))[0]
        assert warned["level"] == "warning"
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()


def test_a_reload_warns_of_a_source_listed_again_with_other_settings(tmp_path, feeds):
    a, b = feeds.feed("/a", FEEDS[0]), feeds.feed("/b", FEEDS[1])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": b, "interval": "1h"}, {"url": b, "interval": "2h"}])
    daemon = Daemon(cfg)  # logs JSON: the start-up warning is a record too, not a bare line
    try:
        daemon.wait_for(lambda r: r["message"].startswith("daemon started"))
        write_config(cfg, [{"url": a, "interval": "1h"}, {"url": a, "interval": "2h"}])
        daemon.wait_for(_reloaded("file changed"))
        warnings = daemon.messages("differs from this source's first listing")
        assert len(warnings) >= 2 and {w["level"] for w in warnings} == {"warning"}, daemon.log  # start-up, reload
        assert all(w["message"].startswith(f"{cfg}:") for w in warnings)
        assert all("categories.1.sources.0.interval: interval differs" in w["message"] for w in warnings)
        # a change a reload cannot apply names its line, as the config's own errors do
        write_config(cfg, [{"url": a, "interval": "1h"}], site_extra="  database: other.db")
        errors = daemon.wait_for(lambda r: r["message"].startswith("config reload rejected: "))
        assert errors[0]["message"].startswith(f"config reload rejected: {cfg}:4: site.database: changed to "), errors
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()


def test_a_raised_per_host_applies_on_reload(tmp_path, feeds):
    """`site.per_host` raised by a reload: the dispatcher let more polls of the host go, but
    the fetcher kept each host's slots at the first limit, so they still ran one by one (each
    waiting in a pool worker) until a restart."""
    urls = [feeds.feed(f"/s{i}", FEEDS[i], delay=3.0) for i in range(3)]
    cfg = tmp_path / "feeds.yaml"
    write_config(cfg, [{"url": u, "interval": "1s"} for u in urls], site_extra="  per_host: 1")
    daemon = Daemon(cfg, "--grace", "1s")
    try:
        assert all(feeds.wait_hits(f"/s{i}", 1, timeout=20) for i in range(3)), daemon.log
        write_config(cfg, [{"url": u, "interval": "1s"} for u in urls], site_extra="  per_host: 3")
        daemon.wait_for(_reloaded("file changed"))
        time.sleep(3.5)  # the polls started under the old limit are done
        since = time.monotonic()
        for i in range(3):
            feeds.wait_hits(f"/s{i}", feeds.hits[f"/s{i}"] + 1, timeout=15)
        starts = sorted(t for i in range(3) for t in feeds.times[f"/s{i}"] if t >= since)
        assert len(starts) >= 3, daemon.log
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert min(gaps) < 1.5, f"polls of the host still one at a time after the reload: {gaps}"
    finally:
        daemon.stop()


def test_a_reload_that_changes_nothing_published_logs_no_publish_line(tmp_path, feeds):
    """SIGHUP on an unchanged config (a logrotate `postrotate`, a deploy script) logged
    `published all categories: 0 files written, 0 unchanged, 0 removed` at info level each
    time; a reload that does change an output still logs its publish."""
    a = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": a, "interval": "1h"}])
    daemon = Daemon(cfg, verbose=2)  # -vv: the quiet publish's debug record shows it happened
    try:
        published = lambda r: r["message"].startswith("published all categories")  # noqa: E731
        daemon.wait_for(lambda r: r["message"].startswith("published c0"))  # after the start's
        daemon.send(signal.SIGHUP)
        daemon.wait_for(_reloaded("SIGHUP"))
        quiet = daemon.wait_for(published, count=2)[1]
        assert quiet["level"] == "debug" and quiet["written"] == 0, quiet
        write_config(cfg, [{"url": a, "interval": "1h"}], site_extra="  description: Renamed")
        daemon.wait_for(_reloaded("file changed"))
        loud = daemon.wait_for(published, count=3)[2]
        assert loud["level"] == "info" and loud["written"] > 0, loud
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()


def test_a_gone_source_put_back_into_the_config_or_enabled_again_is_polled_at_once(tmp_path, httpserver):
    """Logged `1 added`, a gone source re-added (or `enabled: false` then `true`) stayed gone
    and was never polled: the edit is someone asking for it, as `fetch --source` is."""
    answers = {"/back": 410}

    def back(request: Request) -> Response:
        status = answers["/back"]
        return Response("gone" if status == 410 else FEED, status=status, content_type="application/rss+xml")

    httpserver.expect_request("/back").respond_with_handler(back)
    httpserver.expect_request("/stay").respond_with_data(FEED, content_type="application/rss+xml")
    back_url, stay = httpserver.url_for("/back"), httpserver.url_for("/stay")
    cfg = tmp_path / "feeds.yaml"

    def config(*sources: str, enabled: bool = True) -> None:
        lines = "".join(f"      - url: {u}\n        interval: 1h\n" for u in sources)
        if not enabled:
            lines = lines.replace(f"url: {back_url}\n", f"url: {back_url}\n        enabled: false\n")
        head = "site:\n  title: T\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
        cfg.write_text(head + lines, encoding="utf-8")

    config(stay, back_url)
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(back_url, "gone"))
        config(stay, back_url, enabled=False)
        daemon.wait_for(_reloaded("file changed"))
        config(stay, back_url)
        daemon.wait_for(_reloaded("file changed"), count=2)
        daemon.wait_for(fetched(back_url, "gone"), count=2)  # enabled again: polled at once (gone still)

        answers["/back"] = 200  # the feed is back
        config(stay)
        daemon.wait_for(_reloaded("file changed"), count=3)
        config(stay, back_url)
        assert daemon.wait_for(_reloaded("file changed"), count=4)[3]["added"] == [back_url]
        daemon.wait_for(fetched(back_url, "new"))  # put back: polled at once, not left `gone`
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()

    answers["/back"] = 410
    with sqlite3.connect(tmp_path / "aggregator.db") as db:  # gone again, as far as the database knows
        db.execute("UPDATE sources SET state = 'gone', next_poll = NULL WHERE key = ?", [back_url])
    db.close()
    hits = sum(1 for req, _ in httpserver.log if req.path == "/back")
    restarted = Daemon(cfg)  # a restart, the source listed all along: it stays gone
    try:
        restarted.wait_for(lambda r: r["message"].startswith("daemon started"))
        time.sleep(2)
        assert sum(1 for req, _ in httpserver.log if req.path == "/back") == hits, restarted.log
        assert restarted.stop() == 0, restarted.log
    finally:
        restarted.kill()


def test_a_lowered_max_interval_retimes_a_source_whose_learnt_interval_was_above_it(tmp_path, httpserver):
    """`interval: auto` on a quiet feed learns `max_interval` (1d). An edit lowering `max_interval`
    to 2s was logged `1 re-timed`, but the source kept its learnt day: the stored interval was
    used as it was, above the new maximum, and its next poll stayed a day away."""
    quiet = rss(items=3, dated=datetime(2020, 1, 6, tzinfo=UTC))  # nothing this week: max_interval
    httpserver.expect_request("/quiet").respond_with_data(quiet, content_type="application/rss+xml")
    url = httpserver.url_for("/quiet")
    cfg = tmp_path / "feeds.yaml"

    write_config(cfg, [{"url": url, "interval": "auto", "max_interval": "1d"}])
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(url, "new"))
        with sqlite3.connect(f"file:{tmp_path / 'aggregator.db'}?mode=ro", uri=True) as db:
            assert db.execute("SELECT interval FROM sources WHERE key = ?", [url]).fetchone()[0] == 86400
        db.close()
        write_config(cfg, [{"url": url, "interval": "auto", "max_interval": "2s"}])
        assert daemon.wait_for(_reloaded("file changed"))[0]["retimed"] == [url]
        daemon.wait_for(fetched(url, "unchanged"), timeout=10)  # within the new 2s, not tomorrow
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()


def test_a_max_interval_lowered_while_the_daemon_was_stopped_retimes_at_start_saying_so(tmp_path, httpserver):
    """Started after an edit lowering `max_interval`, the daemon re-times a source due later than
    the new settings allow, and says so; the line put it down to a clock set back."""
    quiet = rss(items=3, dated=datetime(2020, 1, 6, tzinfo=UTC))  # nothing this week: max_interval
    httpserver.expect_request("/quiet").respond_with_data(quiet, content_type="application/rss+xml")
    url = httpserver.url_for("/quiet")
    cfg = tmp_path / "feeds.yaml"
    for max_interval in ("1d", "2s"):
        write_config(cfg, [{"url": url, "interval": "auto", "max_interval": max_interval}])
        daemon = Daemon(cfg)
        try:
            daemon.wait_for(fetched(url, "new" if max_interval == "1d" else "unchanged"), timeout=15)
            assert daemon.stop() == 0, daemon.log
        finally:
            daemon.kill()
    (line,) = daemon.messages("later than its interval settings allow")
    assert "lowered while stopped" in line["message"] and url in line["message"], daemon.log


def test_a_max_interval_lowered_while_the_source_is_polled_holds_after_that_poll(tmp_path, feeds):
    """The poll in flight at the reload stores the next poll its old settings give; the daemon
    re-timed it after the poll only when `interval` had changed, so a `max_interval` lowered
    meanwhile (a quiet `interval: auto` feed learning 1d) waited a day for its next poll."""
    feeds.routes["/slow"] = (rss(items=3, dated=datetime(2020, 1, 6, tzinfo=UTC)), "application/rss+xml", 5.0)
    url = feeds.url("/slow")
    cfg = tmp_path / "feeds.yaml"

    write_config(cfg, [{"url": url, "interval": "auto", "max_interval": "1d"}])
    daemon = Daemon(cfg)
    try:
        assert feeds.wait_hits("/slow", 1) == 1
        # while the first poll waits for its answer
        write_config(cfg, [{"url": url, "interval": "auto", "max_interval": "3s"}])
        daemon.wait_for(_reloaded("file changed"))
        assert daemon.wait_for(fetched(url, "new"))[0]["time"] > daemon.messages("^config reloaded")[0]["time"]
        daemon.wait_for(fetched(url, "unchanged"), timeout=15)  # within the new 3s, not tomorrow
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()


@pytest.mark.parametrize("edit", ["[a]: x"], ids=["key in brackets"])
def test_a_bad_edit_that_broke_the_loader_is_rejected_and_the_daemon_keeps_running(tmp_path, feeds, edit):
    """An edit the config loader itself failed on (`[a]: x`: a TypeError, not a config error)
    went up through the reload and stopped the daemon: the site stopped updating until someone
    noticed. It is rejected as any invalid edit is, and the corrected file applies."""
    a, b = feeds.feed("/a", FEEDS[0]), feeds.feed("/b", FEEDS[1])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": a, "interval": "1s"}])
    valid = cfg.read_text(encoding="utf-8")
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(a))
        cfg.write_text(valid.replace("site:\n", f"site:\n  {edit}\n", 1), encoding="utf-8")
        rejected = daemon.wait_for(lambda r: r["message"].startswith("config reload rejected: "))[0]
        assert rejected["message"].startswith(f"config reload rejected: {cfg}:2: "), rejected
        daemon.wait_for(lambda r: "still running the previous config" in r["message"])
        hits = feeds.hits["/a"]
        assert feeds.wait_hits("/a", hits + 2) >= hits + 2, "the previous config keeps polling"
        write_config(cfg, [{"url": a, "interval": "1s"}, {"url": b, "interval": "1h"}])
        assert daemon.wait_for(_reloaded("file changed"))[0]["added"] == [b]
        assert feeds.wait_hits("/b", 1) == 1
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()


def test_a_config_that_cannot_be_read_after_an_edit_is_said_once_and_its_fix_applies(tmp_path, feeds):
    """A config the daemon's user cannot read after an edit (saved by root as 0600; here, as the
    tests run as root, a folder in its place, as a ConfigMap mounted without `subPath` makes)
    was passed over without a word: the old config ran on, and the log let the edit seem
    applied. It is one rejection saying why, not one every 2 s; the fixed file applies."""
    a, b = feeds.feed("/a", FEEDS[0]), feeds.feed("/b", FEEDS[1])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": a, "interval": "1s"}])
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(fetched(a))
        cfg.unlink()
        cfg.mkdir()
        rejected = daemon.wait_for(lambda r: r["message"].startswith("config reload rejected: "))[0]
        assert rejected["message"].startswith(f"config reload rejected: {cfg}: cannot read: "), rejected
        assert "Is a directory" in rejected["message"]
        daemon.wait_for(lambda r: "still running the previous config" in r["message"])
        hits = feeds.hits["/a"]
        assert feeds.wait_hits("/a", hits + 3) >= hits + 3, "the previous config keeps polling"
        assert len(daemon.messages("^config reload rejected: ")) == 1, daemon.log  # said once
        cfg.rmdir()
        write_config(cfg, [{"url": a, "interval": "1s"}, {"url": b, "interval": "1h"}])
        assert daemon.wait_for(_reloaded("file changed"))[0]["added"] == [b]
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
