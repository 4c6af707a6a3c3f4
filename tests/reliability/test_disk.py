"""A full disk and a read-only database, for real: small tmpfs mounts filled to the last
byte, and read-only bind mounts (which stop even root).

What we promise: the problem is reported in one clear line naming the file and the cause
(no traceback), exit code 1 for `fetch`, nothing already stored is lost or damaged, every
output file stays the complete previous version, and once space returns the next run (or
the running daemon) stores and publishes what it could not before.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from werkzeug import Request, Response

from aggregator.config import load_config
from aggregator.daemon import Daemon
from aggregator.store import Store

from ..conftest import check_feeds, run_cli
from ..daemon_support import write_config as daemon_config
from ..pollrig import rss
from .conftest import (
    CorpusServer,
    aggregator,
    child_env,
    corpus_paths,
    db_check,
    fill,
    output_problems,
    read_only,
    temp_files,
    tmpfs,
    write_config,
)

A = {"zh": corpus_paths("zh"), "suites": corpus_paths("suites")[:20]}
B = {"kagi": corpus_paths("kagi")[:6]}  # ~2 MB of feeds: far more than a full disk can take


def _configs(folder: Path, server: CorpusServer, extra: str = "") -> tuple[Path, Path]:
    """feeds-a.yaml (sources A) and feeds-ab.yaml (A and B), same database and outputs."""
    a = write_config(folder, server, A, extra).rename(folder / "feeds-a.yaml")
    ab = write_config(folder, server, {**A, **B}, extra).rename(folder / "feeds-ab.yaml")
    return a, ab


def _posts(db: Path) -> dict[str, tuple[str, str]]:
    integrity, posts, dups = db_check(db)
    assert integrity == "ok" and not dups, (integrity, dups)
    return posts


def _b_posts(posts: dict[str, tuple[str, str]], server: CorpusServer) -> int:
    keys = {server.url(p) for p in B["kagi"]}
    return sum(source in keys for source, _ in posts.values())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_fetch_on_a_full_disk_loses_nothing_and_recovers(tmp_path, reliability_corpus):
    reliability_corpus.released = None
    with tmpfs(tmp_path / "disk", "40m") as disk:
        cfg_a, cfg_ab = _configs(disk, reliability_corpus)
        first = run_cli("--config", str(cfg_a), "fetch")
        assert first.returncode == 0, first.stderr
        stored = _posts(disk / "aggregator.db")
        filler = fill(disk, leave=256 * 1024)  # room to open the database, not to store B
        full = run_cli("--config", str(cfg_ab), "fetch")
        assert full.returncode == 1, full.stdout + full.stderr
        assert "Traceback" not in full.stderr, full.stderr[-3000:]
        b_line = next(line for line in full.stdout.splitlines() if B["kagi"][0] in line)
        assert f"storing failed: database {disk / 'aggregator.db'}: database or disk is full" in b_line, b_line
        after = _posts(disk / "aggregator.db")
        assert {k: after[k] for k in stored} == stored, "posts stored before the disk filled were lost or changed"
        assert not output_problems(disk / "public", disk / "jekyll")
        assert not temp_files(disk / "public", disk / "jekyll")
        filler.unlink()
        again = run_cli("--config", str(cfg_ab), "fetch")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        recovered = _posts(disk / "aggregator.db")
        assert _b_posts(after, reliability_corpus) < _b_posts(recovered, reliability_corpus)
        assert all(_b_count > 0 for _b_count in _per_b_source(recovered, reliability_corpus))
        assert {k: recovered[k] for k in stored} == stored
        checked = check_feeds(disk / "public", readers=False)
        assert checked.returncode == 0, checked.stdout[-3000:]


def _per_b_source(posts: dict[str, tuple[str, str]], server: CorpusServer) -> list[int]:
    return [sum(source == server.url(p) for source, _ in posts.values()) for p in B["kagi"]]


def test_publishing_to_a_full_disk_keeps_the_old_outputs_and_recovers(tmp_path, reliability_corpus):
    reliability_corpus.released = None
    with tmpfs(tmp_path / "out", "16m") as out:
        extra = f"  output_dir: {out / 'public'}\n"
        cfg_a, cfg_ab = _configs(tmp_path, reliability_corpus)
        for cfg in (cfg_a, cfg_ab):  # outputs on the small file system, the database beside the config
            cfg.write_text(cfg.read_text().replace("  items_per_feed: 50\n", "  items_per_feed: 50\n" + extra))
        assert run_cli("--config", str(cfg_a), "fetch").returncode == 0
        before = _snapshot(out / "public")
        filler = fill(out)
        full = run_cli("--config", str(cfg_ab), "fetch")
        assert full.returncode == 1, full.stdout[-2000:]
        assert "Traceback" not in full.stderr, full.stderr[-3000:]
        assert f"error: publishing to {out / 'public'} failed: [Errno 28] No space left on device: '" in full.stderr
        assert "publishing failed" in full.stdout  # the summary line says so too
        assert _b_posts(_posts(tmp_path / "aggregator.db"), reliability_corpus) > 0, "the posts were stored"
        now = _snapshot(out / "public")
        assert {k: now[k] for k in before} == before, "an output file changed while the disk was full"
        assert not temp_files(out / "public") and not output_problems(out / "public")
        filler.unlink()
        again = run_cli("--config", str(cfg_ab), "fetch")  # nothing new to fetch: publishing catches up
        assert again.returncode == 0, again.stderr[-2000:]
        kagi = (out / "public" / "category" / "kagi.json").read_text(encoding="utf-8")
        assert len(json.loads(kagi)["items"]) > 10
        assert check_feeds(out / "public", readers=False).returncode == 0


def _wait(pred, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the daemon exited while waiting for {what}"
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _count(db: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_daemon_on_a_full_disk_keeps_running_and_recovers(tmp_path, reliability_corpus):
    with tmpfs(tmp_path / "disk", "40m") as disk:
        reliability_corpus.released = {p for ps in A.values() for p in ps}
        _, cfg = _configs(disk, reliability_corpus, extra="defaults:\n  interval: 1s\n  min_interval: 1s\n")
        db = disk / "aggregator.db"
        log = tmp_path / "daemon.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                aggregator("--config", str(cfg), "run"), stdout=subprocess.DEVNULL, stderr=err, env=child_env()
            )
        try:
            n_a = sum(len(ps) for ps in A.values())
            _wait(lambda: _count(db, "SELECT count(*) FROM sources WHERE state = 'ok'") >= n_a, 30, proc, "A stored")
            stored = _posts(db)
            filler = fill(disk, leave=256 * 1024)
            reliability_corpus.released = None  # B appears while there is no room for it
            _wait(lambda: b"database or disk is full" in log.read_bytes(), 20, proc, "the disk-full error")
            time.sleep(2)  # several ticks on a full disk
            assert proc.poll() is None, "the daemon died on a full disk"
            # (Some B sources may get stored meanwhile: a failed write frees what it had taken.)
            filler.unlink()
            _wait(lambda: all(n > 0 for n in _per_b_source(_posts(db), reliability_corpus)), 30, proc, "every B source")
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
        text = log.read_text(errors="replace")
        assert rc == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        after = _posts(db)
        assert {k: after[k] for k in stored} == stored
        kagi = (disk / "public" / "category" / "kagi.json").read_text(encoding="utf-8")
        assert len(json.loads(kagi)["items"]) > 10, "the outputs did not catch up after space returned"
        assert not temp_files(disk / "public", disk / "jekyll") and not output_problems(disk / "public")
        assert check_feeds(disk / "public", readers=False).returncode == 0


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_database_is_a_clear_error_and_loses_nothing(tmp_path, reliability_corpus, what):
    reliability_corpus.released = None
    data = tmp_path / "data"
    data.mkdir()
    cfg_a, cfg_ab = _configs(tmp_path, reliability_corpus)
    for cfg in (cfg_a, cfg_ab):
        text = cfg.read_text()
        cfg.write_text(text.replace("  items_per_feed: 50\n", "  items_per_feed: 50\n  database: data/a.db\n"))
    assert run_cli("--config", str(cfg_a), "fetch").returncode == 0
    db = data / "a.db"
    stored = _posts(db)
    with read_only(db if what == "file" else data):
        done = run_cli("--config", str(cfg_ab), "fetch")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        expect = "(the file is read-only)" if what == "file" else f"({data} is on a read-only file system)"
        assert done.stderr.startswith("error: ") and str(db) in done.stderr and expect in done.stderr, done.stderr
        daemon = run_cli("--config", str(cfg_ab), "run", timeout=30)
        assert daemon.returncode == 1 and expect in daemon.stderr and "Traceback" not in daemon.stderr
    assert _posts(db) == stored
    assert run_cli("--config", str(cfg_ab), "fetch").returncode == 0, "writable again: fetch works"
    assert _b_posts(_posts(db), reliability_corpus) > 0


def test_run_on_a_full_disk_that_cannot_take_the_configs_new_sources_is_one_clear_error(tmp_path):
    """`aggregator run` records the config's sources before it starts: on a full disk, with
    sources the database does not know yet (a config grown while the daemon was stopped), that
    write failed and `run` died with a traceback of 40 lines. Now: one `error:` line naming
    the database and the cause, exit 1, as for `fetch` and the other commands that write."""
    with tmpfs(tmp_path / "disk", "4m") as disk:
        head = "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        one = disk / "feeds-one.yaml"
        one.write_text(head + "      - url: http://127.0.0.1:9/feed\n", encoding="utf-8")
        many = disk / "feeds-many.yaml"  # ~750 KB of new sources: more than the disk has left
        many.write_text(head + "".join(f"      - url: http://127.0.0.1:9/{'x' * 200}/{i}\n" for i in range(3000)))
        first = subprocess.run(
            aggregator("--config", str(one), "fetch"), capture_output=True, text=True, env=child_env()
        )
        assert (disk / "aggregator.db").is_file(), first.stderr
        fill(disk, leave=256 * 1024)
        done = subprocess.run(
            aggregator("--config", str(many), "run"), capture_output=True, text=True, env=child_env(), timeout=120
        )
        assert done.returncode == 1, done.stderr[-3000:]
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "database or disk is full" in errors[0], done.stderr[-3000:]
        assert str(disk / "aggregator.db") in errors[0], errors
        assert _count(disk / "aggregator.db", "SELECT count(*) FROM sources") == 1


def test_a_retiming_after_a_reload_mid_poll_that_the_full_disk_refuses_is_logged(tmp_path, httpserver, caplog):
    """A reload that changes a source's interval while its poll runs has that poll re-time the
    source when it ends (`Daemon._poll`). On a full disk the re-timing's write failed, and
    its StoreError left the poll unseen: no log line, and the rest of the poll's handling
    skipped. Now the failure is logged, naming the source, and the poll's outcome stands."""
    feed = rss(items=3)
    with tmpfs(tmp_path / "disk", "4m") as disk:
        cfg = disk / "feeds.yaml"
        url = httpserver.url_for("/feed.xml")
        daemon_config(cfg, [{"url": url, "interval": "1h"}])
        settings = load_config(cfg)
        store = Store(settings.database)
        daemon = Daemon(settings, store)
        filler: list[Path] = []

        def reload_then_fill(request: Request) -> Response:
            """The reload comes while the poll waits for its answer; then the disk fills."""
            daemon_config(cfg, [{"url": url, "interval": "2h"}])
            assert daemon.reload("file changed")
            filler.append(fill(disk))
            return Response(rss(items=4), content_type="application/rss+xml")

        try:
            store.sync_sources(settings.sources)
            httpserver.expect_ordered_request("/feed.xml").respond_with_data(feed, content_type="application/rss+xml")
            httpserver.expect_ordered_request("/feed.xml").respond_with_handler(reload_then_fill)
            assert daemon._poll(settings.sources[0]).status == "new"
            with caplog.at_level(logging.INFO, logger="aggregator"):
                outcome = daemon._poll(settings.sources[0])  # the source as it was when the poll began
            assert outcome.status == "error" and outcome.unscheduled  # the poll's own write refused too
            lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            said = f"source {url}: re-timing it for the reloaded config failed"
            assert any(m.startswith(said) and "disk is full" in m for m in lines), lines
        finally:
            for f in filler:
                f.unlink()
            daemon.fetcher.close()
            daemon.pool.shutdown()
            store.close()
