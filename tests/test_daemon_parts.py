"""The daemon's parts in-process: debounced publishing, the instance lock, health, log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from aggregator import logs
from aggregator.config import load_config
from aggregator.daemon import Daemon, Publisher
from aggregator.lock import AlreadyRunning, InstanceLock
from aggregator.store import Store

from .daemon_support import FEEDS, FeedServer, write_config


class Recorder:
    def __init__(self, results: list[bool] | None = None) -> None:
        self.calls: list[frozenset[str] | None] = []
        self.results = results or []
        self.event = threading.Event()

    def __call__(self, categories: frozenset[str] | None) -> bool:
        self.calls.append(categories)
        self.event.set()
        return self.results.pop(0) if self.results else True


def test_publisher_joins_changes_within_the_window_into_one_publish():
    rec = Recorder()
    pub = Publisher(rec, delay=0.3).start()
    pub.add(["a"])
    pub.add(["b"])
    pub.add(["a", "c"])
    assert rec.event.wait(5)
    pub.stop(5)
    assert rec.calls == [frozenset({"a", "b", "c"})]


def test_publisher_everything_absorbs_categories_and_stop_flushes_at_once():
    rec = Recorder()
    pub = Publisher(rec, delay=60).start()  # a window no test could wait for
    pub.add(["a"])
    pub.add(None)
    pub.stop(5)  # publishes what is pending now, then ends
    assert rec.calls == [None]
    assert pub.idle


def test_publisher_retries_a_failed_publish():
    rec = Recorder(results=[False, True])
    pub = Publisher(rec, delay=0.05, retry=0.1).start()
    pub.add(["a"])
    while len(rec.calls) < 2 and rec.event.wait(5):
        rec.event.clear()
    pub.stop(5)
    assert rec.calls == [frozenset({"a"}), frozenset({"a"})]


def test_a_reload_brings_a_failed_publishs_retry_forward_and_nothing_else_does():
    """After a failed publish the next try waits `retry`; a reload (`sooner`) that may have
    fixed the cause (a template, the output folder) publishes after the usual `delay`, while
    new posts meanwhile (a plain `add`) leave the retry where it was."""
    rec = Recorder(results=[False, True, True])
    pub = Publisher(rec, delay=0.05, retry=60).start()  # a retry no test could wait for
    pub.add(["a"])
    assert rec.event.wait(5)
    rec.event.clear()
    pub.add(["b"])  # a poll's new posts: the retry stays 60 s away
    assert not rec.event.wait(0.5)
    pub.add(None, sooner=True)  # the reload
    assert rec.event.wait(5)
    pub.stop(5)
    assert rec.calls == [frozenset({"a"}), None]


def test_instance_lock_is_exclusive_across_processes_and_released(tmp_path):
    db = tmp_path / "x.db"
    lock = InstanceLock(db).acquire()
    assert (tmp_path / "x.db.lock").read_text().strip() == str(os.getpid())
    assert InstanceLock(db).holder() == os.getpid()
    code = f"from aggregator.lock import InstanceLock; InstanceLock({str(db)!r}).acquire()"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.returncode != 0 and "AlreadyRunning" in other.stderr and f"pid {os.getpid()}" in other.stderr
    with pytest.raises(AlreadyRunning):
        InstanceLock(db).acquire()  # a second open file description in this process is refused too
    lock.release()
    assert InstanceLock(db).holder() is None
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_health_is_503_when_the_scheduler_does_not_run(tmp_path):
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": "http://127.0.0.1:9/x", "interval": "1h"}])
    settings = load_config(cfg)
    with Store(settings.database) as store:
        daemon = Daemon(settings, store)
        ok, detail = daemon.health()
        status, ctype, body = daemon._healthz()
        daemon.fetcher.close()
        daemon.pool.shutdown()
    assert not ok and "scheduler is not running" in detail["problems"]
    assert status == 503 and json.loads(body)["status"] == "unhealthy"


def test_a_reload_accepts_a_category_whose_sources_are_all_commented_out(tmp_path):
    urls = ["http://127.0.0.1:9/x", "http://127.0.0.1:9/y"]
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": u, "interval": "1h"} for u in urls])
    settings = load_config(cfg)
    with Store(settings.database) as store:
        daemon = Daemon(settings, store)
        try:
            text = cfg.read_text(encoding="utf-8")
            first, rest = text.split("  - name: Cat 1", 1)
            cfg.write_text(first.replace("\n      ", "\n      # ") + "  - name: Cat 1" + rest, encoding="utf-8")
            assert daemon.reload("test"), "rejected"  # the category of no source stays, empty
            assert [s.key for s in daemon.settings.sources] == urls[1:]
            assert [c.slug for c in daemon.settings.categories] == ["c0", "c1"]
            assert daemon.metrics.reloads.labels("applied")._value.get() == 1
            # every source commented out: taken for a save cut short (test_daemon_reload.py)
            cfg.write_text(text.replace("\n      ", "\n      # "), encoding="utf-8")
            assert not daemon.reload("test") and [s.key for s in daemon.settings.sources] == urls[1:]
        finally:
            daemon.fetcher.close()
            daemon.pool.shutdown()


def _capture(fmt: str) -> tuple[io.StringIO, logging.Handler]:
    handler = logs.setup(logging.INFO, fmt)
    out = io.StringIO()
    handler.setStream(out)  # type: ignore[attr-defined]
    return out, handler


def test_json_log_lines_name_their_source():
    try:
        out, _ = _capture("json")
        log = logging.getLogger("aggregator.test")
        with logs.source_context("https://a.example/feed"):
            log.warning("connection failed: %s", "refused")
            logging.getLogger("urllib3.connectionpool").info("retrying")
        log.info("published %d files", 3, extra={"categories": ["x"]})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        logs.setup(logging.WARNING)
    assert [r["source"] for r in lines[:2]] == ["https://a.example/feed"] * 2
    assert lines[0]["message"] == "connection failed: refused" and lines[0]["level"] == "warning"
    assert lines[1]["logger"] == "urllib3.connectionpool"
    assert "source" not in lines[2] and lines[2]["categories"] == ["x"]
    assert "ValueError: boom" in lines[3]["exception"] and len(lines) == 4


def test_text_log_lines_name_their_source_once():
    try:
        out, _ = _capture("text")
        log = logging.getLogger("aggregator.test")
        with logs.source_context("https://a.example/feed"):
            log.warning("source https://a.example/feed: HTTP 500")
            log.warning("retrying")
        lines = out.getvalue().splitlines()
    finally:
        logs.setup(logging.WARNING)
    assert lines[0].endswith("source https://a.example/feed: HTTP 500")
    assert lines[1].endswith("retrying [source=https://a.example/feed]")


def test_health_is_503_once_publishing_has_failed_for_ten_minutes(tmp_path):
    """A template broken at run time fails every publish: the outputs go stale while polling
    goes on; /healthz says so once it is no blip."""
    theme = tmp_path / "theme"
    theme.mkdir()
    (theme / "index.html").write_text("{{ 1 // 0 }}", encoding="utf-8")
    source = {"url": "http://127.0.0.1:9/x", "interval": "1h"}
    cfg = write_config(tmp_path / "feeds.yaml", [source], "  templates: theme")
    settings = load_config(cfg)
    with Store(settings.database) as store:
        daemon = Daemon(settings, store)
        daemon.scheduler.start()
        try:
            assert daemon._publish(None) is False
            assert daemon.health()[0], "one failed publish is no ill health"
            since, error = daemon._publish_failing
            daemon._publish_failing = (since - 601, error)  # ten minutes on, still failing
            ok, detail = daemon.health()
        finally:
            daemon.scheduler.shutdown(wait=False)
            daemon.fetcher.close()
            daemon.pool.shutdown()
    assert not ok and any(p.startswith("publishing has failed for 10 min: ") for p in detail["problems"]), detail
    assert "ZeroDivisionError" in " ".join(detail["problems"])


def test_a_rejected_reload_counts_its_errors_in_words(tmp_path):
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": "http://127.0.0.1:9/x", "interval": "1h"}])
    settings = load_config(cfg)
    out, handler = _capture("text")
    try:
        with Store(settings.database) as store:
            daemon = Daemon(settings, store)
            try:
                text = cfg.read_text(encoding="utf-8")
                cfg.write_text(text.replace("interval: 1h", "interval: xx"), encoding="utf-8")
                assert not daemon.reload("test")
                cfg.write_text(text.replace("interval: 1h", "interval: xx\n        colour: red"), encoding="utf-8")
                assert not daemon.reload("test")
            finally:
                daemon.fetcher.close()
                daemon.pool.shutdown()
    finally:
        logging.getLogger().removeHandler(handler)
    assert "rejected with 1 error; still running" in out.getvalue()  # was "1 errors"
    assert "rejected with 2 errors; still running" in out.getvalue()


def test_a_skipped_poll_says_why_in_the_daemons_log(tmp_path, caplog):
    """`skipped (0 new, 0 updated)` told the operator nothing; `fetch` says why, so does the daemon."""
    from datetime import UTC, datetime, timedelta

    url = "http://127.0.0.1:9/x"
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        now = datetime.now(UTC)
        until = now + timedelta(hours=1)
        store.record_rate_limit(url, now, "127.0.0.1:9", until, "HTTP 429", 429, until)
        daemon = Daemon(settings, store)
        try:
            with caplog.at_level(logging.INFO, logger="aggregator.daemon"):
                outcome = daemon._poll(settings.sources[0])
        finally:
            daemon.fetcher.close()
            daemon.pool.shutdown()
    assert outcome.status == "skipped"
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"source {url}: skipped")]
    assert line == f"source {url}: skipped: {outcome.note}" and "rate-limited: 127.0.0.1:9 asked" in line


class _LateDueList(Store):
    """Hands the due list over 0.3 s after reading it: polls that were in flight end meanwhile."""

    def due_sources(self, now):  # type: ignore[no-untyped-def]
        keys = super().due_sources(now)
        time.sleep(0.3)
        return keys


def test_a_poll_that_ends_after_the_due_list_was_read_is_not_repeated(tmp_path):
    """A due list read while a source's poll ran still named it; the poll ended (new schedule
    stored, no longer in flight) before the list was acted on, and the source was polled a
    second time at once. Seen as a double first poll on a loaded machine."""
    server = FeedServer()
    try:
        paths = [f"/f{i}" for i in range(len(FEEDS))]
        urls = [server.feed(p, f, delay=0.2) for p, f in zip(paths, FEEDS, strict=True)]  # each poll ≥ 0.2 s
        settings = load_config(write_config(tmp_path / "feeds.yaml", [{"url": u, "interval": "1h"} for u in urls]))
        store = _LateDueList(settings.database)
        daemon = Daemon(settings, store, tick=0.05, max_sleep=0.1, watch_interval=0.1, publish_delay=0.05)
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            for p in paths:
                server.wait_hits(p, 1, timeout=10)
            time.sleep(1.5)  # dispatches every ≤ 0.1 s, each acting on a list 0.3 s old
            assert {p: server.hits[p] for p in paths} == dict.fromkeys(paths, 1)
        finally:
            daemon.request_stop()
            thread.join(15)
        assert not thread.is_alive()
    finally:
        server.close()


def test_a_workers_change_reloaded_while_a_dispatch_submits_loses_no_poll(tmp_path, caplog):
    """A reload that changes `site.workers` swaps the poll pool and shuts the old one down. A
    dispatch that had read the old pool just before submitted to it after the shutdown:
    "dispatch failed; retrying at the next heartbeat" with a traceback, the source (and the
    rest of its due list) left for the next heartbeat. The dispatch is held, by a tracer in
    its thread, right after it reads `self.pool`; the reload runs meanwhile."""
    import dis
    import sys

    server = FeedServer()
    try:
        url = server.feed("/f", FEEDS[0])
        cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
        settings = load_config(cfg)
        store = Store(settings.database)
        daemon = Daemon(settings, store)
        code = Daemon._submit.__code__
        loads = [i.offset for i in dis.get_instructions(code) if i.opname == "LOAD_ATTR" and i.argval == "pool"]
        after = min(i.offset for i in dis.get_instructions(code) if i.offset > loads[0])
        read = threading.Event()

        def old_pool_shut() -> bool:
            return bool(daemon._old_pools) and daemon._old_pools[-1]._shutdown  # type: ignore[attr-defined]

        def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
            if frame.f_code is code:
                frame.f_trace_opcodes = True
                if event == "opcode" and frame.f_lasti == after and not read.is_set():
                    read.set()  # the old pool is on the stack: the reload swaps it and shuts it down now
                    deadline = time.monotonic() + 10
                    while not old_pool_shut() and time.monotonic() < deadline:
                        time.sleep(0.001)
            return tracer

        def dispatch() -> None:
            sys.settrace(tracer)
            try:
                daemon._dispatch()
            finally:
                sys.settrace(None)

        applied: list[bool] = []
        dispatcher = threading.Thread(target=dispatch)
        # the reload waits for the dispatch's lock only after the swap (to wake the dispatcher)
        reloader = threading.Thread(target=lambda: applied.append(daemon.reload("file changed")))
        try:
            store.sync_sources(settings.sources)
            with caplog.at_level(logging.INFO, logger="aggregator.daemon"):
                dispatcher.start()
                assert read.wait(10), "the dispatch submitted nothing"
                write_config(cfg, [{"url": url, "interval": "1h"}], site_extra="  workers: 3")
                reloader.start()
                dispatcher.join(15)
                reloader.join(15)
                assert applied == [True] and old_pool_shut() and daemon.pool._max_workers == 3
                assert not [r.getMessage() for r in caplog.records if r.getMessage().startswith("dispatch failed")]
                assert daemon._inflight[url].result(10).status == "new"
            assert server.hits["/f"] == 1
        finally:
            dispatcher.join(15)
            daemon.fetcher.close()
            daemon.pool.shutdown()
            for pool in daemon._old_pools:
                pool.shutdown()
            store.close()
    finally:
        server.close()
