"""A large publish shares its categories with worker processes (`aggregator.publish.parallel`).

What must hold: the files are the bytes a publish on one process writes, the states and
post-file records are the same (the next publish writes nothing), every task is done
exactly once, and a worker that fails or dies loses nothing: the publisher does its
categories itself. Real corpus feeds through the real parser, real SQLite, real processes
(forked and spawned), and the real `aggregator publish` command.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import operator
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

import aggregator.publish as publishing
from aggregator.config import Settings, load_config
from aggregator.models import Source
from aggregator.normalize import normalize
from aggregator.parse import ParseError, parse_feed
from aggregator.publish import OWNER_FILE, atomic, parallel, publish
from aggregator.store import Store

from .conftest import CORPUS, run_cli

FEEDS = sorted((CORPUS / "kagi").glob("*"))[:80]  # real-world feeds, mostly large


def _config(tmp: Path, categories: int) -> Path:
    """`categories` categories of one corpus feed each; the first feed also in the second
    category (a post in two categories), Jekyll on (files only the primary category writes)."""
    lines = ["site:", "  title: Shared", "  url: https://shared.example/", "  timezone: Asia/Shanghai",
             "  posts_per_page: 7", "jekyll:", "  dir: jekyll", "categories:"]  # fmt: skip
    for i in range(categories):
        lines += [f"  - name: 类别 {i}", f"    slug: cat{i:03d}", "    sources:"]
        lines.append(f"      - url: https://feeds.example/{i}.xml")
        if i == 1:
            lines.append("      - url: https://feeds.example/0.xml")
    path = tmp / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fill(settings: Settings, per_source: int) -> int:
    """Store the posts of real corpus feeds (at most `per_source` of each), one feed per source."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    stored = 0
    feeds = iter(FEEDS)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        for source in settings.sources:
            posts = []
            while not posts:
                path = next(feeds)
                try:
                    feed = parse_feed(source.url, path.read_bytes(), source.url, {"content-type": "application/xml"})
                except ParseError:
                    continue
                posts = normalize(Source(key=source.key, url=source.url), feed, now)[:per_source]
            store.record_success(source.key, now, 200, posts=posts)
            stored += len(posts)
    return stored


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A store of 500-odd posts in 30 categories; each test copies it."""
    folder = tmp_path_factory.mktemp("shared")
    settings = load_config(_config(folder, 30))
    assert _fill(settings, 40) >= 500  # enough for the publisher to share a fresh publish
    return folder


@pytest.fixture
def site(built: Path, tmp_path: Path) -> Settings:
    copy = tmp_path / "site"
    shutil.copytree(built, copy)
    return load_config(copy / "feeds.yaml")


def _tree(*roots: Path) -> dict[str, bytes]:
    """Every file's bytes, but the owner mark's, which names the database (copied or not)."""
    return {
        f"{root.name}/{p.relative_to(root)}": p.read_bytes()
        for root in roots
        for p in root.rglob("*")
        if p.is_file() and p.name != OWNER_FILE
    }


def _records(settings: Settings) -> tuple[list, list]:
    with sqlite3.connect(settings.database) as db:
        files = db.execute(
            "SELECT path, post, source, kind, category, superseded FROM post_files ORDER BY path"
        ).fetchall()
        states = db.execute("SELECT * FROM publish_state ORDER BY 1").fetchall()
    # The context digest names the output folder, which the serial copy has elsewhere; the
    # owner id (`publish._claim_output`) is made by a database's first publish, so each has its own,
    # and the count of publishes (`serial`) is of the `publish` calls each was given.
    kept = {"site": lambda v: "site", "owner": lambda v: "owner", "feed:updated": str}
    return files, [(key, kept.get(key, _without_context)(value)) for key, value in states if key != "serial"]


def _without_context(value: str) -> object:
    state = json.loads(value)
    return {k: v for k, v in state.items() if k != "context"} if isinstance(state, dict) else state


def _serial(site: Settings) -> tuple[dict[str, bytes], tuple[list, list]]:
    """The reference: the same store published on one process, in a copy of the folder."""
    ref = site.path.parent.parent / "serial"
    shutil.copytree(site.path.parent, ref)
    settings = load_config(ref / "feeds.yaml")
    with Store(settings.database) as store:
        publish(settings, store, workers=0)
    return _tree(settings.output_dir, settings.jekyll_dir), _records(settings)


@contextmanager
def _another_thread() -> Iterator[None]:
    """A thread besides the main one, as in the daemon: forking is not safe, workers are spawned."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# -- the queue and its workers ----------------------------------------------------------


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "spawned"])
def test_workers_take_every_task_exactly_once(fork):
    with parallel.Pool(operator.add, 1000, tasks=60, workers=2, fork=fork) as pool:
        pool.collect(block=True)  # the caller takes nothing: the workers do it all
        mine = list(pool)
    assert mine == []
    assert sorted(d.task for d in pool.done) == list(range(60))
    assert all(d.result == 1000 + d.task for d in pool.done)
    assert pool.failures == [] and pool.started == 2


def test_the_caller_and_the_workers_share_the_queue_without_overlap():
    seen: list[int] = []
    with parallel.Pool(operator.add, 0, tasks=400, workers=1, fork=True) as pool:
        for index in pool:
            seen.append(index)
            time.sleep(0.001)  # a task takes time: the worker gets its share meanwhile
    theirs = [d.task for d in pool.done]
    assert sorted(seen + theirs) == list(range(400))
    assert theirs, "the worker took no task in 0.4 s"


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "spawned"])
def test_a_failing_worker_says_why_and_leaves_the_rest_to_the_caller(fork):
    # getitem([], i) raises for any i: the worker fails on the first task it takes, and stops
    with parallel.Pool(operator.getitem, [], tasks=10, workers=1, fork=fork) as pool:
        pool.collect(block=True)
        mine = list(pool)
    assert len(mine) == 9 and pool.done == []
    assert any("IndexError" in f for f in pool.failures), pool.failures
    assert any("exited with code 1" in f for f in pool.failures)


def _die(job: object, index: int) -> None:
    os._exit(7)  # as a worker killed by the OOM killer would: no word said


def test_a_worker_that_dies_is_reported_and_its_task_is_not_lost():
    with parallel.Pool(_die, None, tasks=5, workers=1, fork=True) as pool:
        pool.collect(block=True)
        mine = list(pool)
    assert len(mine) == 4 and pool.done == []
    assert pool.failures == ["a publish worker exited with code 7"]


def test_worker_count_follows_the_cores_and_the_environment(monkeypatch):
    monkeypatch.delenv(parallel.ENV_WORKERS, raising=False)
    cores = parallel.cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    assert parallel.worker_count() == min(parallel.MAX_WORKERS, cores - 1)
    monkeypatch.setenv(parallel.ENV_WORKERS, "0")
    assert parallel.worker_count() == 0
    monkeypatch.setenv(parallel.ENV_WORKERS, "2")
    assert parallel.worker_count() == 2
    assert parallel.worker_count(0) == 0  # the caller's word wins
    monkeypatch.setenv(parallel.ENV_WORKERS, "many")
    assert parallel.worker_count() == min(parallel.MAX_WORKERS, cores - 1)


# -- publishing with workers ------------------------------------------------------------


def test_a_worker_publishes_the_bytes_a_single_process_does(site):
    """The worker's own path (`_publish_task`, in a spawned interpreter) for every category,
    merged as the publisher merges it: the same files, records and states."""
    files, records = _serial(site)
    with Store(site.database) as store:
        renderer = publishing.SiteRenderer(site)
        context = publishing._context(site, renderer)
        job = publishing._Job(site, context, False, [c.slug for c in site.categories])
        with parallel.Pool(publishing._publish_task, job, len(site.categories), 1, fork=False) as pool:
            pool.collect(block=True)
        assert pool.failures == [] and len(pool.done) == len(site.categories)
        report = publishing.PublishReport()
        states = []
        for done in pool.done:
            state, part = done.result
            report.merge(part)
            states.append(state)
        publishing._record(store, report, states)
        assert report.posts_rendered >= 500
        publishing._publish_all(site, store, renderer, report)
        publishing._record(store, report, [("site", context)])
        again = publish(site, store, workers=0)
    assert _tree(site.output_dir, site.jekyll_dir) == files
    assert _records(site) == records
    assert again.written == [] and again.categories == []


def test_a_spawned_worker_shares_a_publish_from_a_threaded_process(site, caplog, monkeypatch):
    files, records = _serial(site)
    category = publishing._publish_category

    def slow_category(*args, **kwargs):
        time.sleep(0.05)  # the publisher alone would take 1.5 s: the worker, ~0.4 s to start, gets its share
        return category(*args, **kwargs)

    monkeypatch.setattr(publishing, "_publish_category", slow_category)  # in this process only
    caplog.set_level(logging.INFO, logger="aggregator.publish")
    with _another_thread(), Store(site.database) as store:
        report = publish(site, store, workers=1)
        again = publish(site, store, workers=1)
    assert report.workers == 1 and report.shared > 0, caplog.text
    assert "(spawned workers)" in caplog.text
    assert "the publisher does its categories itself" not in caplog.text
    assert _tree(site.output_dir, site.jekyll_dir) == files
    assert _records(site) == records
    assert again.written == [] and again.workers == 0  # nothing to render: no worker started


def test_a_publish_with_a_dying_worker_still_publishes_every_category(site, monkeypatch, caplog):
    files, records = _serial(site)
    task, category = publishing._publish_task, publishing._publish_category

    def dying_task(job, index):
        os._exit(9)  # a forked worker dies on its first category, before reporting it

    def slow_category(*args, **kwargs):
        time.sleep(0.02)  # the publisher is slow enough for the worker to take a category
        return category(*args, **kwargs)

    monkeypatch.setattr(publishing, "_publish_task", dying_task)
    monkeypatch.setattr(publishing, "_publish_category", slow_category)
    monkeypatch.setattr(publishing, "forking_is_safe", lambda: True)
    caplog.set_level(logging.WARNING, logger="aggregator.publish")
    with Store(site.database) as store:
        report = publish(site, store, workers=1)
    monkeypatch.setattr(publishing, "_publish_task", task)
    assert report.workers == 1 and report.shared == 0
    assert "a publish worker exited with code 9: the publisher does its categories itself" in caplog.text
    assert _tree(site.output_dir, site.jekyll_dir) == files
    assert _records(site) == records


def _shared(log: str) -> int:
    """Categories the forked worker published, as the command's log says; none failed."""
    assert "the publisher does its categories itself" not in log
    found = re.search(r"categories published by 2 processes \(forked workers\): (\d+) by the workers", log)
    assert found, log[-2000:]
    return int(found[1])


def test_the_publish_command_forks_workers_and_writes_what_one_process_does(site, monkeypatch):
    files, records = _serial(site)
    monkeypatch.setenv(parallel.ENV_WORKERS, "1")  # this machine may have a single core
    result = run_cli("-v", "-c", str(site.path), "publish")
    assert result.returncode == 0, result.stderr
    assert _shared(result.stderr) > 0, result.stderr
    assert _tree(site.output_dir, site.jekyll_dir) == files
    assert _records(site) == records


def test_a_shared_publish_writes_back_while_it_renders(site, monkeypatch):
    """The publisher flushes the output's file system on a thread while the categories are
    rendered (`atomic.Writeback`), started once the workers are forked and gone when the
    publish returns; the files are those one process writes."""
    files, records = _serial(site)
    category = publishing._publish_category
    seen: list[bool] = []  # per category the publisher did: was the writeback thread running?

    def watched(*args, **kwargs):
        if os.getpid() == publisher:  # a forked worker runs this too, without the thread
            seen.append(any(t.name == "publish-writeback" for t in threading.enumerate()))
        return category(*args, **kwargs)

    publisher = os.getpid()
    monkeypatch.setattr(publishing, "_publish_category", watched)
    with Store(site.database) as store:
        report = publish(site, store, workers=1)
    assert report.workers == 1 and seen and all(seen), seen
    assert not any(t.name == "publish-writeback" for t in threading.enumerate())
    assert _tree(site.output_dir, site.jekyll_dir) == files
    assert _records(site) == records


def test_a_shared_publish_goes_on_when_no_writeback_thread_starts(site, monkeypatch):
    """No thread to be had (forking the workers used up the process limit, as a worker that
    could not start shows): the publish goes on without the early flushes, as it goes on
    without the worker."""
    files, records = _serial(site)
    start = threading.Thread.start

    def start_or_fail(self: threading.Thread) -> None:
        if self.name == "publish-writeback":
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", start_or_fail)
    with Store(site.database) as store:
        report = publish(site, store, workers=1)
    assert report.workers == 1
    assert _tree(site.output_dir, site.jekyll_dir) == files
    assert _records(site) == records


def test_writeback_flushes_until_its_block_ends_even_on_an_error(tmp_path):
    writeback = atomic.Writeback(tmp_path, every=0.01)
    with pytest.raises(RuntimeError), writeback.running():
        atomic.write_if_changed(tmp_path / "page.html", b"<p>x</p>", atomic.SyncBatch())
        deadline = time.monotonic() + 10
        while writeback.flushes < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("the publish failed")
    assert writeback.flushes >= 2  # real syncfs calls, each returning 0
    flushes = writeback.flushes
    time.sleep(0.05)
    assert writeback.flushes == flushes
    assert not any(t.name == "publish-writeback" for t in threading.enumerate())


def test_only_a_large_fresh_publish_is_shared(site):
    """500-odd posts rebuilt from scratch: worth forked workers (500), not spawned ones (3,000,
    which take ~0.4 s to start); a publish of one changed post starts none."""

    def workers(store: Store, requested: int | None, fork: bool, force: bool = False, first: int = 99) -> int:
        context = publishing._context(site, publishing.SiteRenderer(site))
        plans = {c.slug: p for c in site.categories[:first] if (p := publishing._plan(site, store, context, c, force))}
        todo = [c for c in site.categories if c.slug in plans]
        return publishing._worker_count(store, todo, plans, requested, fork)

    with Store(site.database) as store:
        assert workers(store, 1, fork=False) == 1  # asked for
        assert workers(store, 0, fork=True) == 0  # turned off
        assert workers(store, 2, fork=True, first=1) == 0  # one category: nothing to share
        if parallel.worker_count() == 0:
            return  # one core: the automatic choice is always none
        assert workers(store, None, fork=True) >= 1
        assert workers(store, None, fork=False) == 0
        publish(site, store, workers=0)
        assert workers(store, 1, fork=True) == 0  # nothing to regenerate
        assert workers(store, None, fork=True, force=True) >= 1  # forced: all fresh again
        source = site.sources[3]
        post = store.posts_for_category(source.categories[0], 1)[0]
        store.record_success(source.key, datetime(2026, 11, 2, tzinfo=UTC), 200,
                             posts=[dataclasses.replace(post, id="new-post-1", title="new")])  # fmt: skip
        assert workers(store, None, fork=True) == 0
        report = publish(site, store)
    assert report.workers == 0 and report.categories == [source.categories[0]]


def _slow(job: object, index: int) -> int:
    time.sleep(0.01)
    return index


def test_when_the_caller_fails_the_workers_stop_taking_tasks():
    with pytest.raises(RuntimeError), parallel.Pool(_slow, None, tasks=1000, workers=1, fork=True) as pool:
        raise RuntimeError("disk full")  # the publisher's own category failed
    assert len(pool.done) < 1000  # the tasks left were taken away: not 10 s of work done for nothing
    assert pool.failures == []


def test_the_fetch_command_forks_workers_once_its_fetching_is_done(tmp_path, corpus_server, monkeypatch):
    """`fetch` over real HTTP: its threads are gone when it publishes (the fetch watchdog's
    too), so its workers are forked; the outputs are what one process publishes."""
    cfg = _config(tmp_path, 30)
    text = cfg.read_text(encoding="utf-8")
    served = [p for p in FEEDS if p.stat().st_size < 400_000][:30]
    for i, path in enumerate(served):
        text = text.replace(f"https://feeds.example/{i}.xml\n", corpus_server.url(path.relative_to(CORPUS)) + "\n")
    cfg.write_text(text, encoding="utf-8")
    monkeypatch.setenv(parallel.ENV_WORKERS, "1")
    result = run_cli("-v", "-c", str(cfg), "fetch")
    assert result.returncode in (0, 1), result.stderr  # 1: a corpus feed may be unreadable
    assert _shared(result.stderr) > 0, result.stderr[-2000:]
    settings = load_config(cfg)
    files = _tree(settings.output_dir, settings.jekyll_dir)
    assert sum(name.startswith("public/posts/") for name in files) >= 500
    copy = tmp_path.parent / f"{tmp_path.name}-serial"
    shutil.copytree(tmp_path, copy)
    for name in ("public", "jekyll"):
        shutil.rmtree(copy / name)
    monkeypatch.setenv(parallel.ENV_WORKERS, "0")
    assert run_cli("-c", str(copy / "feeds.yaml"), "publish").returncode == 0
    serial = load_config(copy / "feeds.yaml")
    assert _tree(serial.output_dir, serial.jekyll_dir) == files


ORPHAN = """
import operator, sys, time
from aggregator.publish import parallel

fork = sys.argv[1] == "fork"
pool = parallel.Pool(operator.call, time.sleep, tasks=100, workers=1, fork=fork)  # task i sleeps i seconds
print(*[w if isinstance(w, int) else w.pid for w in pool._readers.values()], flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has finished: it only waits to be reaped


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_a_worker_does_not_outlive_its_killed_publisher(mode):
    """Else it could write a category's pages after a restarted publisher wrote newer ones."""
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN, mode], stdout=subprocess.PIPE, text=True)
    try:
        (worker,) = map(int, proc.stdout.readline().split())
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), f"the {mode}ed worker outlived its publisher"
    finally:
        proc.kill()
        proc.wait()


def test_the_daemon_rebuilds_with_spawned_workers_after_a_config_change(corpus_fetch, tmp_path):
    """The daemon publishes from a thread of its own: a full rebuild (here the site title
    changed, over the corpus's 8,000-odd posts) is shared with a spawned worker, which
    publishes its share, and the daemon still stops cleanly on SIGTERM."""
    from .daemon_support import Daemon

    folder, _, result = corpus_fetch
    assert result.returncode in (0, 1), result.stderr
    copy = tmp_path / "site"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".*.tmp"))
    cfg = copy / "feeds.yaml"
    daemon = Daemon(cfg)
    try:
        daemon.wait_for(lambda r: r["message"].startswith("published all categories"), timeout=60)
        cfg.write_text(cfg.read_text("utf-8").replace("title: Corpus 语料", "title: Corpus renamed"), "utf-8")
        (shared,) = daemon.wait_for(lambda r: "categories published by" in r["message"], timeout=120)
        daemon.wait_for(lambda r: r["message"].startswith("published all categories"), timeout=60, count=2)
        assert daemon.stop() == 0, daemon.log
    finally:
        daemon.kill()
    found = re.search(r"by 2 processes \(spawned workers\): (\d+) by the workers", shared["message"])
    assert found and int(found[1]) > 0, shared["message"]
    assert "the publisher does its categories itself" not in daemon.log
    assert "Corpus renamed" in (copy / "public" / "index.html").read_text("utf-8")
    pages = list((copy / "public" / "posts").rglob("*.html"))
    assert len(pages) > 3000 and all("Corpus renamed" in p.read_text("utf-8") for p in pages[::97])


def test_a_writer_that_died_since_the_last_sweep_is_seen_dead(tmp_path):
    """A process asks again whether a writer runs: 8db06f9 moved `@functools.cache` onto
    `processes.alive`, so a writer once found running stayed 'running' for the process's life
    (the leftovers it left when killed were never swept by a later sweep, nor a backup's), and
    `linux_libc` lost its cache: each forked worker loaded libc itself, after the fork."""
    from aggregator.processes import linux_libc

    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    leftover = tmp_path / f".index.html.{writer.pid}.1.tmp"
    leftover.write_text("half a page")
    try:
        assert atomic.sweep_temp_files(tmp_path) == []  # being written
    finally:
        writer.kill()
        writer.wait()
    assert atomic.sweep_temp_files(tmp_path) == [leftover]
    assert not leftover.exists()
    assert linux_libc("prctl") is linux_libc("prctl")  # loaded once, by the parent, before it forks
