"""Operational behaviour of `aggregator run` found by a review: each test runs the real daemon."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .daemon_support import FEEDS, Daemon, FeedServer, fetched, write_config
from .reliability.conftest import fill, tmpfs


def test_a_reload_the_full_database_cannot_take_is_rejected_not_fatal(tmp_path):
    """A reload writes the sources to the database: on a full disk it failed with a traceback,
    and the daemon stopped (systemd's restarts then met the same full disk)."""
    server = FeedServer()
    try:
        with tmpfs(tmp_path / "disk", "2m") as disk:
            a, b = server.feed("/a", FEEDS[0]), server.feed("/b", FEEDS[1])
            cfg = tmp_path / "feeds.yaml"
            extra = f"  database: {disk / 'a.db'}"
            write_config(cfg, [{"url": a, "interval": "1h"}], site_extra=extra)
            daemon = Daemon(cfg, "--grace", "1s")
            try:
                daemon.wait_for(fetched(a, "new"))
                filler = fill(disk)
                write_config(cfg, [{"url": a, "interval": "1h"}, {"url": b, "interval": "1h"}], site_extra=extra)
                daemon.send(signal.SIGHUP)
                daemon.wait_for(lambda r: r["message"].startswith("config reload (SIGHUP) rejected"))
                time.sleep(0.5)
                assert daemon.proc.poll() is None, daemon.log
                assert not daemon.messages("Traceback"), daemon.log
                filler.unlink()
                daemon.send(signal.SIGHUP)  # (else tried again by itself 30 s later)
                daemon.wait_for(fetched(b, "new"))
            finally:
                rc = daemon.stop()
            assert rc == 0, daemon.log
    finally:
        server.close()


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _health_becomes(port: int, status: int, timeout: float = 5.0) -> tuple[int, dict]:
    """/healthz once it answers `status` (or at the deadline): a poll's outcome is logged a
    moment before the daemon records it for /healthz."""
    deadline = time.monotonic() + timeout
    while (answer := _health(port))[0] != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


def test_healthz_is_unhealthy_while_the_database_cannot_store_polls(tmp_path):
    """A full disk under the database: polls fetch their posts and cannot store them. The
    probe's rolled-back write needs no new space, so only the polls' own writes tell."""
    server = FeedServer()
    try:
        with tmpfs(tmp_path / "disk", "2m") as disk:
            first = server.feed("/a", FEEDS[0])
            big = server.url("/b")  # not found at first; then ~400 KB of posts, more than the full disk takes
            cfg = write_config(
                tmp_path / "feeds.yaml",
                [{"url": first, "interval": "1h"}, {"url": big, "interval": "1s"}],
                site_extra=f"  database: {disk / 'a.db'}",
            )
            daemon = Daemon(cfg, "--serve", "--port", "0", "--grace", "1s")
            try:
                port = daemon.port
                daemon.wait_for(fetched(first, "new"))
                assert _health(port)[0] == 200
                filler = fill(disk)
                server.feed("/b", FEEDS[2])
                daemon.wait_for(lambda r: "storing failed" in r["message"] and r.get("source") == big)
                status, body = _health_becomes(port, 503)  # logged just before the daemon sees the outcome
                assert status == 503, body
                assert any("database" in p and "full" in p for p in body["problems"]), body

                # Once the disk has room, a poll that brings nothing new (a 404, whose error is
                # stored) shows the database takes writes: /healthz said 503 for 10 more
                # minutes, until some source happened to bring a new post.
                def not_found(r: dict) -> bool:
                    return r.get("source") == big and "404" in r["message"]

                seen = len([r for r in list(daemon.records) if not_found(r)])  # /b's first polls
                del server.routes["/b"]  # nothing new for now: every poll answers 404
                seen = len(daemon.wait_for(not_found, timeout=20, count=seen + 1))  # one on the full disk
                filler.unlink()
                daemon.wait_for(not_found, timeout=20, count=seen + 1)  # one after the disk has room
                status, body = _health_becomes(port, 200)
                assert status == 200, body
                server.feed("/b", FEEDS[2])  # the source's next poll stores its posts
                daemon.wait_for(fetched(big, "new"), timeout=20)
            finally:
                daemon.stop()
    finally:
        server.close()


def test_healthz_says_the_database_disk_is_full_before_any_poll_fails(tmp_path):
    """The probe's write is rolled back and never reaches the disk: with no poll due, /healthz
    said ok on a full disk until the next poll failed to store (an hour later, here)."""
    server = FeedServer()
    try:
        with tmpfs(tmp_path / "disk", "2m") as disk:
            first = server.feed("/a", FEEDS[0])
            cfg = write_config(
                tmp_path / "feeds.yaml", [{"url": first, "interval": "1h"}], site_extra=f"  database: {disk / 'a.db'}"
            )
            daemon = Daemon(cfg, "--serve", "--port", "0", "--grace", "1s")
            try:
                port = daemon.port
                daemon.wait_for(fetched(first, "new"))
                assert _health_becomes(port, 200)[0] == 200
                filler = fill(disk)
                status, body = _health(port)
                assert status == 503, body
                assert any(str(disk / "a.db") in p and "disk is full" in p for p in body["problems"]), body
                filler.unlink()
                assert _health(port)[0] == 200
            finally:
                daemon.stop()
    finally:
        server.close()


def test_an_output_folder_removed_while_running_is_published_again(tmp_path):
    """`rm -rf public/` (to start afresh, or by a cleanup job): every page answered 404, and
    /healthz said ok, until a source brought something new, and then only its category."""
    server = FeedServer()
    try:
        a, b = server.feed("/a", FEEDS[0]), server.feed("/b", FEEDS[1])
        cfg = write_config(tmp_path / "feeds.yaml", [{"url": a, "interval": "1h"}, {"url": b, "interval": "1h"}])
        daemon = Daemon(cfg, "--grace", "1s")
        try:
            daemon.wait_for(lambda r: r["message"].startswith("published c0, c1"))
            public = tmp_path / "public"
            before = sorted(str(p.relative_to(public)) for p in public.rglob("*"))
            shutil.rmtree(public)
            deadline = time.monotonic() + 10
            while not (public / "index.html").is_file() and time.monotonic() < deadline:
                time.sleep(0.2)
            daemon.wait_for(lambda r: r["message"].startswith("published all categories"), count=2)
            assert sorted(str(p.relative_to(public)) for p in public.rglob("*")) == before
        finally:
            daemon.stop()
    finally:
        server.close()


def test_a_hanging_host_does_not_hold_up_the_sources_of_other_hosts(tmp_path):
    """Sources of a host that hangs wait for its `per_host` slots, not in the worker pool:
    workers blocked on one host's slots would leave every other host's sources queued
    behind them for (sources ÷ per_host) × timeout."""
    server = FeedServer()
    try:
        slow = [server.stall(f"/slow{i}") for i in range(4)]
        fast = server.feed("/fast", FEEDS[0]).replace("127.0.0.1", "localhost")  # another host
        cfg = write_config(
            tmp_path / "feeds.yaml",
            [*({"url": u, "interval": "1h", "timeout": "3s"} for u in slow), {"url": fast, "interval": "1h"}],
            site_extra="  workers: 2\n  per_host: 1",
        )
        daemon = Daemon(cfg, "--grace", "1s")
        try:
            slow_hits = lambda: sum(server.hits[f"/slow{i}"] for i in range(4))  # noqa: E731
            daemon.wait_for(fetched(fast), timeout=20)
            assert server.hits["/fast"] == 1
            started = [t for i in range(4) for t in server.times.get(f"/slow{i}", [])]
            if started:  # its first request arrived first (on a loaded machine it may come later)
                waited = server.times["/fast"][0] - min(started)
                assert waited < 2.0, f"the other host's source waited {waited:.1f}s behind the hanging host"
            deadline = time.monotonic() + 10
            while not slow_hits() and time.monotonic() < deadline:
                time.sleep(0.05)
            first = min(t for i in range(4) for t in server.times.get(f"/slow{i}", []))
            time.sleep(max(0.0, first + 1.5 - time.monotonic()))  # half its 3 s timeout: the host's slot still held
            assert slow_hits() == 1  # one slot: one poll of it at a time
            deadline = time.monotonic() + 15  # its slot freed (a 3 s timeout), the host's next source goes
            while slow_hits() < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow_hits() == 2
        finally:
            daemon.stop()
    finally:
        server.close()


def test_posts_pruned_by_another_process_leave_the_outputs_within_seconds(tmp_path):
    """`aggregator prune` from cron beside the daemon: the daemon published only after its own
    polls, so the pruned posts' pages stayed online until their source brought a new post.
    A command that changes no post (`status`) must not make it log a publish."""
    server = FeedServer()
    try:
        url = server.feed("/a", FEEDS[1])  # three entries
        cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}], site_extra="  items_per_feed: 1")
        daemon = Daemon(cfg, "--grace", "1s", verbose=2)  # -vv: a publish that changed nothing shows too
        pages = lambda: sorted((tmp_path / "public" / "posts").rglob("*.html"))  # noqa: E731
        logged = lambda: [r for r in daemon.messages("^published") if r["level"] == "info"]  # noqa: E731
        try:
            daemon.wait_for(lambda r: r["message"].startswith("published c0"))
            assert len(pages()) == 3
            cfg.write_text(cfg.read_text(encoding="utf-8") + "        keep_per_source: 1\n", encoding="utf-8")
            daemon.send(signal.SIGHUP)
            daemon.wait_for(lambda r: r["message"].startswith("config reloaded"))
            daemon.wait_for(lambda r: r["message"].startswith("published all categories"), count=2)
            cli = [sys.executable, "-m", "aggregator", "--config", str(cfg)]
            subprocess.run([*cli, "status"], check=True, capture_output=True)
            time.sleep(5)  # more than the daemon's look at the database (2 s)
            # start, first poll (the reload's publish changed nothing: a debug record)
            assert len(logged()) == 2, daemon.log
            done = subprocess.run([*cli, "prune"], check=True, capture_output=True, text=True)
            assert "removed 2 posts" in done.stdout, done.stdout
            deadline = time.monotonic() + 10
            while len(pages()) > 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(pages()) == 1, daemon.log
            (pruned,) = daemon.messages(r"^published all categories: .* 2 removed$")
            # a log pipeline reads the counts as fields; a person reads "1 file", not "1 files"
            assert pruned["removed"] == 2 and pruned["unchanged"] > 0, pruned
            noun = "file" if pruned["written"] == 1 else "files"
            assert f": {pruned['written']} {noun} written, {pruned['unchanged']} unchanged," in pruned["message"]
        finally:
            daemon.stop()
    finally:
        server.close()


def test_every_source_of_a_busy_host_gets_its_turn(tmp_path):
    """A host whose sources are due again before all of them had a slot: they were queued in
    config order, so its first sources took every turn and the last one was never polled."""
    server = FeedServer()
    try:
        urls = [server.feed(f"/s{i}", FEEDS[i], delay=1.0) for i in range(3)]
        cfg = write_config(
            tmp_path / "feeds.yaml", [{"url": u, "interval": "1s"} for u in urls], site_extra="  per_host: 1"
        )
        daemon = Daemon(cfg, "--grace", "1s")
        try:
            for i in range(3):
                assert server.wait_hits(f"/s{i}", 2, timeout=20) >= 2, (dict(server.hits), daemon.log)
        finally:
            daemon.stop()
    finally:
        server.close()


def test_a_template_broken_while_running_is_one_line_naming_file_and_line(tmp_path):
    """An edit that breaks a `site.templates` template: the daemon logged "publish failed"
    with a traceback, which reads as a crash; the file and line were only at its end."""
    server = FeedServer()
    try:
        url = server.feed("/a", FEEDS[0])
        theme = tmp_path / "theme"
        theme.mkdir()
        cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}], site_extra="  templates: theme")
        daemon = Daemon(cfg, "--grace", "1s")
        try:
            daemon.wait_for(lambda r: r["message"].startswith("published c0"))
            (theme / "index.html").write_text('{% extends "base.html" %}\n{{ broken( }}\n', encoding="utf-8")
            daemon.send(signal.SIGHUP)  # the config names the folder; its templates are read at publish
            failed = daemon.wait_for(lambda r: r["level"] == "error")[0]
            assert f"template {theme / 'index.html'}:2: " in failed["message"], daemon.log
            assert "retrying in 30s" in failed["message"]
            time.sleep(0.5)
            assert "Traceback" not in daemon.log and daemon.proc.poll() is None, daemon.log
        finally:
            daemon.stop()
    finally:
        server.close()


def test_a_url_edited_while_its_source_is_polled_leaves_the_daemon_healthy(tmp_path):
    """The poll in flight when an edit of the config renamed its source (the URL written with
    a trailing slash: the same feed, taken over) could not store under the old name: taken for
    a database refusing writes, /healthz said 503 for 10 minutes (unless another poll stored)."""
    server = FeedServer()
    body = (FEEDS[0].read_bytes(), "application/atom+xml")
    server.routes["/slow"] = (*body, 3.0)
    server.routes["/slow/"] = (*body, 0.0)
    old, new = server.url("/slow"), server.url("/slow/")
    cfg = tmp_path / "feeds.yaml"
    write_config(cfg, [{"url": old, "interval": "1h"}])
    daemon = Daemon(cfg, "--serve", "--port", "0")
    try:
        port = daemon.port
        assert server.wait_hits("/slow", 1) == 1
        write_config(cfg, [{"url": new, "interval": "1h"}])  # while the first poll waits for its answer
        daemon.wait_for(lambda r: r["message"].startswith("config reloaded"))
        daemon.wait_for(fetched(new, "new"))
        ended = daemon.wait_for(lambda r: r.get("source") == old and "URL was edited" in r["message"])[0]
        status, detail = _health_becomes(port, 503, timeout=2.0)
        assert status == 200 and not detail["problems"], detail
        assert ended.get("outcome") == "skipped", daemon.log  # said as such, not a failed poll
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
        server.close()
