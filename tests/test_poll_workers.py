"""A large `fetch` shared with forked worker processes (aggregator/poll_workers.py).

Real feeds from the corpus, served over real HTTP by three servers (three hosts, as far as
`site.per_host` is concerned), stored in real SQLite files; the worker processes are real
forks. What is checked is what a user sees: the same lines, the same posts, every source
polled once even when a worker dies, the workers' log lines, and no worker left behind.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aggregator import poll_workers
from aggregator.config import load_config
from aggregator.models import Source
from aggregator.poll_workers import polling, runs, worker_count
from aggregator.store import Store

from .conftest import CORPUS, ROOT, StaticServer

# real-world feeds of 2011, many encodings; the smaller ones, so that the test is quick
FEEDS = sorted(p for p in (CORPUS / "speedparser2011").glob("*.xml") if p.stat().st_size < 60_000)[:36]


@pytest.fixture(scope="module")
def servers():
    started = [StaticServer(CORPUS) for _ in range(3)]
    yield started
    for server in started:
        server.close()


def _config(folder: Path, servers: list[StaticServer], broken: int = 0) -> Path:
    """One source per corpus feed, round-robin over the servers, plus `broken` 404s."""
    urls = [servers[i % len(servers)].url(f.relative_to(CORPUS)) for i, f in enumerate(FEEDS)]
    urls += [servers[i % len(servers)].url(f"speedparser2011/missing-{i}.xml") for i in range(broken)]
    sources = "".join(f"      - url: {u}\n" for u in urls)
    cfg = folder / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: Shared\n  url: https://example.org/\n  workers: 6\n"
        f"categories:\n  - name: All\n    sources:\n{sources}",
        encoding="utf-8",
    )
    return cfg


def _fetch(cfg: Path, workers: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, poll_workers.ENV_WORKERS: str(workers)}
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(cfg), *args, "fetch"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _posts(db: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT source, id, title, link, content_hash, CASE WHEN dated THEN published END, duplicate_of "
            "FROM posts ORDER BY source, id"
        ).fetchall()


def _sources(n: int, hosts: int) -> list[Source]:
    return [Source(key=f"http://h{i % hosts}.example/{i}", url=f"http://h{i % hosts}.example/{i}") for i in range(n)]


def test_runs_deal_each_hosts_sources_into_at_most_per_host_runs_longest_first():
    big = [Source(key=f"http://big.example/{i}", url=f"http://big.example/{i}") for i in range(12)]
    polite = [Source(key=f"http://one.example/{i}", url=f"http://one.example/{i}", per_host=1) for i in range(3)]
    sources = _sources(40, 5) + big + polite
    plan = runs(sources, 2)
    assert sorted(i for run in plan for i in run) == list(range(len(sources)))  # each source once
    assert [len(run) for run in plan] == sorted((len(run) for run in plan), reverse=True)
    for run in plan:
        assert run == sorted(run)  # a run polls in the config's order
    per_host: dict[str, int] = {}
    for run in plan:
        for host in {sources[i].url.split("/")[2] for i in run}:
            per_host[host] = per_host.get(host, 0) + 1
    # at most per_host runs hold a host: so many of its requests in flight, whoever polls them
    assert per_host == {**{f"h{h}.example": 2 for h in range(5)}, "big.example": 2, "one.example": 1}
    assert plan[0] == list(range(40, 52, 2))  # big.example's first half: the longest run


def test_runs_past_the_queues_capacity_are_joined_shortest_first(monkeypatch):
    monkeypatch.setattr(poll_workers, "MAX_TASKS", 4)
    sources = _sources(10, 10)  # ten hosts, one source each: ten runs of one
    plan = runs(sources, 2)
    assert len(plan) == 4 and sorted(i for run in plan for i in run) == list(range(10))
    assert sorted(map(len, plan)) == [2, 2, 3, 3]


def test_worker_count_needs_many_sources_threads_and_a_safe_fork(monkeypatch):
    monkeypatch.delenv(poll_workers.ENV_WORKERS, raising=False)
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)
    monkeypatch.setattr(poll_workers, "cores", lambda: 4)
    assert worker_count(poll_workers.SHARED_MIN - 1, 16) == 0  # too few to pay for a fork
    assert worker_count(poll_workers.SHARED_MIN, 16) == 3
    assert worker_count(5000, 2) == 1  # never more processes than threads
    assert worker_count(5000, 1) == 0
    monkeypatch.setenv(poll_workers.ENV_WORKERS, "0")
    assert worker_count(5000, 16) == 0
    monkeypatch.setenv(poll_workers.ENV_WORKERS, "2")
    assert worker_count(10, 16) == 2  # asked for: even below the threshold
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: False)
    assert worker_count(5000, 16) == 0  # another thread could hold a lock at the fork


def test_a_shared_fetch_prints_and_stores_what_a_single_process_fetch_does(tmp_path, servers):
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    for folder in (alone, shared):
        folder.mkdir()
    one = _fetch(_config(alone, servers, broken=2), 0)
    two = _fetch(_config(shared, servers, broken=2), 2, "-v")
    assert one.returncode == two.returncode == 1, two.stderr  # the two 404s
    assert "polled on 6 threads: 2 here, 2 + 2 in 2 forked workers" in two.stderr
    assert two.stdout.splitlines() == one.stdout.splitlines()  # same lines, same order, same summary
    assert len(two.stdout.splitlines()) == len(FEEDS) + 3
    posts = _posts(shared / "aggregator.db")
    assert posts == _posts(alone / "aggregator.db") and len(posts) > len(FEEDS)
    files = sorted(p.relative_to(shared / "public") for p in (shared / "public").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(alone / "public") for p in (alone / "public").rglob("*") if p.is_file())
    # A 404 polled by a worker is logged by `fetch` itself, naming its source.
    for i in range(2):
        assert f"missing-{i}.xml: HTTP 404" in two.stderr
    again = _fetch(_config(shared, servers, broken=2), 2)  # nothing is stored twice
    assert _posts(shared / "aggregator.db") == posts
    assert "0 new posts" in again.stdout


def _poll_all(cfg: Path, workers: int) -> list:
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        with polling(settings.sources, store, settings, workers=workers) as futures:
            return [f.result() for f in futures]


def _damage_posts_of(db: Path, key: str, count: int = 400) -> None:
    """Give `key` leaf pages of its own in the posts' (source, published) index (it sorts
    last), and overwrite the last of them: a damaged page only reads of its posts visit."""
    with sqlite3.connect(db) as con:
        con.executemany(
            "INSERT INTO posts (id, source, guid, title, published, updated, dated) VALUES (?, ?, ?, 't', ?, ?, 1)",
            [(f"{n:016x}", key, f"g{n}", f"2024-01-01T{n // 60:02d}:{n % 60:02d}", "2024") for n in range(count)],
        )
    with contextlib.closing(sqlite3.connect(db)) as con:
        (last,) = con.execute(
            "SELECT pageno FROM dbstat WHERE name = 'idx_posts_source_published' AND pagetype = 'leaf' "
            "ORDER BY path DESC LIMIT 1"
        ).fetchone()
        size = con.execute("PRAGMA page_size").fetchone()[0]
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(db, "r+b") as f:
        f.seek((last - 1) * size)
        f.write(b"\xff" * size)


def test_a_source_whose_state_cannot_be_read_is_an_error_and_the_others_are_polled(tmp_path, servers):
    """Reading a source's state before its poll (`poll_state`) was outside the poll's error
    handling: a damaged page of one source's posts ("database disk image is malformed", as a
    locked database or a disk I/O error would) ended `fetch` with a traceback, its other
    sources stopped. Now that source is an error naming the database, not polled (its
    validators unknown), and every other one is polled."""
    server = servers[0]
    feeds = [server.url(f.relative_to(CORPUS)) for f in FEEDS[:3]]
    broken = server.url("zz-damaged/feed.xml")  # sorts after the others: its index pages are its own
    cfg = tmp_path / "feeds.yaml"
    listed = "".join(f"      - url: {u}\n" for u in [*feeds, broken])
    cfg.write_text(
        f"site:\n  title: T\n  url: https://example.org/\ncategories:\n  - name: All\n    sources:\n{listed}",
        encoding="utf-8",
    )
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
    _damage_posts_of(settings.database, broken)
    outcomes = {o.source: o for o in _poll_all(cfg, 0)}
    assert outcomes[broken].status == "error" and outcomes[broken].unscheduled
    assert "reading its state failed" in outcomes[broken].error and "malformed" in outcomes[broken].error
    assert [outcomes[u].status for u in feeds] == ["new"] * 3


def _alone(tmp_path: Path, servers: list[StaticServer]) -> tuple[list, list[tuple[str, ...]]]:
    """The same sources polled by this process alone: (outcomes, stored posts)."""
    alone = tmp_path / "alone"
    alone.mkdir()
    outcomes = _poll_all(_config(alone, servers), 0)
    return [(o.source, o.status, o.new) for o in outcomes], _posts(alone / "aggregator.db")


def test_a_worker_that_dies_before_polling_leaves_the_others_every_source(tmp_path, servers, monkeypatch):
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)  # pytest's own threads idle meanwhile
    monkeypatch.setattr(poll_workers, "_work", lambda *args: os._exit(9))
    outcomes = _poll_all(_config(tmp_path, servers), 1)
    expected, posts = _alone(tmp_path, servers)
    assert [(o.source, o.status, o.new) for o in outcomes] == expected
    assert _posts(tmp_path / "aggregator.db") == posts


def test_a_run_a_worker_took_without_saying_so_is_still_polled(tmp_path, servers, monkeypatch, caplog):
    """Killed between taking a run from the queue and announcing it: `fetch` finds the run
    unclaimed once everyone else is done, and polls it."""
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)
    monkeypatch.setattr(poll_workers, "_work", lambda *args: (poll_workers.take(args[3]), os._exit(9)))
    caplog.set_level(logging.WARNING, logger="aggregator")
    outcomes = _poll_all(_config(tmp_path, servers), 1)
    assert "taken by a fetch worker that died before saying so: they are polled here" in caplog.text
    expected, posts = _alone(tmp_path, servers)
    assert [(o.source, o.status, o.new) for o in outcomes] == expected
    assert _posts(tmp_path / "aggregator.db") == posts


def test_a_worker_that_dies_half_way_loses_no_source_and_stores_nothing_twice(tmp_path, servers, monkeypatch, caplog):
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)
    parent, real = os.getpid(), poll_workers.poll_one
    polled: list[str] = []

    def poll_one(source, store, fetcher, named=False):
        outcome = real(source, store, fetcher, named)
        polled.append(source.key)
        if os.getpid() != parent and len(polled) == 2:
            os._exit(7)  # its second source stored, never reported: `fetch` polls it again
        return outcome

    monkeypatch.setattr(poll_workers, "poll_one", poll_one)
    caplog.set_level(logging.WARNING, logger="aggregator")
    outcomes = _poll_all(_config(tmp_path, servers), 2)
    assert caplog.text.count("a fetch worker exited with code 7 before reporting") == 2
    expected, posts = _alone(tmp_path, servers)
    assert [o.source for o in outcomes] == [e[0] for e in expected]
    again = [(o.status, o.new) for o, e in zip(outcomes, expected, strict=True) if (o.status, o.new) != e[1:]]
    # each worker's second poll, and maybe its other thread's poll under way, stored twice
    # over: the second time, nothing new
    assert 2 <= len(again) <= 4 and set(again) == {("unchanged", 0)}
    assert _posts(tmp_path / "aggregator.db") == posts


def test_a_workers_log_records_reach_fetchs_handlers_tagged_with_their_source(tmp_path, servers, monkeypatch, caplog):
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)
    caplog.set_level(logging.WARNING, logger="aggregator")
    outcomes = _poll_all(_config(tmp_path, servers, broken=3), 2)
    missing = [o.source for o in outcomes if o.status == "error"]
    assert len(missing) == 3
    from_workers = [r for r in caplog.records if r.process != os.getpid()]
    assert from_workers  # the 404s are spread over the three hosts, so over every process
    for record in from_workers:  # each tagged in the worker, where its source was known
        assert record.source in missing and record.source in record.getMessage()
    assert {r.getMessage().split()[1].rstrip(":") for r in caplog.records} == set(missing)


def test_json_logs_of_a_shared_fetch_name_the_source_of_each_error(tmp_path, servers):
    cfg = _config(tmp_path, servers, broken=3)
    result = _fetch(cfg, 2, "--log-format", "json")
    errors = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    named = {e.get("source") for e in errors if e["level"] == "warning" and "404" in e["message"]}
    assert named == {s.key for s in load_config(cfg).sources if "missing-" in s.key}


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


_SLOW_HOST = """
import http.server, sys, time
feed, asked, pause, slow = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if asked != "-":
            open(asked, "a").close()  # a poll is under way
        time.sleep(slow if self.path == "/slow" else pause)
        body = open(feed, "rb").read()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def _slow_host(
    tmp_path: Path, feed: Path, asked: Path | None = None, pause: float = 0.0, slow: float = 0.0
) -> tuple[subprocess.Popen, int]:
    """(process, port) of a feed server in a process of its own, out of the way of the
    signals a test sends `fetch`: every path answers `feed` after `pause` seconds, `/slow`
    after `slow`; a request touches `asked` first, when given."""
    script = tmp_path / "slow_host.py"
    script.write_text(_SLOW_HOST)
    args = [sys.executable, str(script), str(feed), str(asked or "-"), str(pause), str(slow)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _fetch_process(cfg: Path, workers: str, **popen: Any) -> subprocess.Popen:
    """`aggregator fetch` as a process of its own (for the signals a test sends it), with
    `workers` fetch workers (AGGREGATOR_FETCH_WORKERS), its stdout and stderr piped."""
    env = {**os.environ, poll_workers.ENV_WORKERS: workers, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "aggregator", "--config", str(cfg), "fetch"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **popen)


@pytest.mark.parametrize("how", ["ctrl-c", "sigkill", "ctrl-c, no workers"])
def test_a_stopped_shared_fetch_leaves_no_worker_behind(tmp_path, how):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it): `fetch` stops at
    once and kills its workers, which ignore the signal. SIGKILL to `fetch` alone: its
    workers die with it (PR_SET_PDEATHSIG), none goes on writing the database."""
    feed, asked = FEEDS[0], tmp_path / "asked"
    hosts, ports = zip(*(_slow_host(tmp_path, feed, asked, pause=0.5) for _ in range(2)), strict=True)
    try:
        sources = "".join(f"      - url: http://127.0.0.1:{ports[i % 2]}/{i}\n" for i in range(40))
        cfg = tmp_path / "feeds.yaml"
        head = "site:\n  title: S\n  url: https://example.org/\n  workers: 2\ncategories:\n  - name: A\n"
        cfg.write_text(f"{head}    sources:\n{sources}")
        workers = "0" if how.endswith("no workers") else "1"
        proc = _fetch_process(cfg, workers, start_new_session=True)
        children: list[int] = []
        deadline = time.monotonic() + 30
        while not children and workers != "0" and time.monotonic() < deadline:
            time.sleep(0.05)
            for task in Path(f"/proc/{proc.pid}/task").iterdir():
                children += [int(c) for c in (task / "children").read_text().split()]
        assert children or workers == "0", "no worker was forked"
        while not asked.exists() and time.monotonic() < deadline:  # a loaded machine may take seconds to start
            time.sleep(0.05)
        assert asked.exists(), "no poll reached a server"
        time.sleep(0.5)  # every process is polling
        if how.startswith("ctrl-c"):
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.kill()
        _, err = proc.communicate(timeout=20)
        assert proc.returncode != 0
        if how.startswith("ctrl-c"):  # the shell's convention, and a line saying what became of the polls
            assert proc.returncode == 130, err
            assert b"interrupted after " in err and b"Traceback" not in err and b"Aborted" not in err, err
            polled = int(err.split(b"interrupted after ")[1].split()[0])
            db = sqlite3.connect(tmp_path / "aggregator.db")
            stored = db.execute("SELECT count(*) FROM sources WHERE last_fetch IS NOT NULL").fetchone()[0]
            db.close()
            assert polled == stored < 40, (polled, stored)  # counted in the store, which polls ended when
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_running(pid) for pid in children):
            time.sleep(0.05)
        assert not any(_running(pid) for pid in children)
    finally:
        for h in hosts:
            h.kill()
            h.wait()


def test_per_host_holds_across_the_processes_of_a_shared_fetch(tmp_path):
    """Two hosts, 24 sources each, per_host 2, 8 threads in two processes: each host sees at
    most 2 requests at once (its sources are dealt into 2 runs), and does see 2."""
    from .test_pipeline_parallel import _Counter, _server

    counters = [_Counter(), _Counter()]
    hosts = [_server(c) for c in counters]
    try:
        sources = "".join(f"      - url: http://127.0.0.1:{hosts[i % 2].server_address[1]}/{i}\n" for i in range(48))
        cfg = tmp_path / "feeds.yaml"
        head = "site:\n  title: H\n  url: https://example.org/\n  workers: 8\n  per_host: 2\ncategories:\n"
        cfg.write_text(f"{head}  - name: A\n    sources:\n{sources}")
        result = _fetch(cfg, 1, "-v")
    finally:
        for h in hosts:
            h.shutdown()
            h.server_close()
    assert result.returncode == 0, result.stderr
    assert "48 sources in 4 runs polled on 8 threads: 4 here, 4 in 1 forked worker" in result.stderr
    assert [c.peak for c in counters] == [2, 2]


def test_per_host_counts_the_host_a_poll_fetches_not_the_configured_one(tmp_path):
    """Sources configured on two hosts whose polls all fetch from a third (a learnt permanent
    redirect, a feed found through an HTML page): that host still sees at most per_host
    requests at once, however many processes poll."""
    from .test_pipeline_parallel import _Counter, _server

    counter = _Counter()
    target = _server(counter)
    try:
        sources = "".join(f"      - url: http://127.0.0.{1 + i % 2}:9/{i}\n" for i in range(48))
        cfg = tmp_path / "feeds.yaml"
        head = "site:\n  title: H\n  url: https://example.org/\n  workers: 8\n  per_host: 2\ncategories:\n"
        cfg.write_text(f"{head}  - name: A\n    sources:\n{sources}")
        settings = load_config(cfg)
        with Store(settings.database) as store:
            store.sync_sources(settings.sources)
            with store._tx() as db:  # what a learnt redirect leaves behind
                db.execute("UPDATE sources SET url = ? || rowid", [f"http://127.0.0.1:{target.server_address[1]}/"])
        result = _fetch(cfg, 3, "-v")
    finally:
        target.shutdown()
        target.server_close()
    assert result.returncode == 0, result.stderr
    assert "48 sources in 2 runs polled on 8 threads: 4 here, 4 in 1 forked worker" in result.stderr
    assert counter.peak == 2


def _fetch_outcomes(tmp_path: Path, servers: list[StaticServer], name: str) -> tuple[list, list[tuple[str, ...]]]:
    folder = tmp_path / name
    folder.mkdir()
    outcomes = _poll_all(_config(folder, servers), 2)
    return [(o.source, o.status, o.new) for o in outcomes], _posts(folder / "aggregator.db")


def test_when_reading_the_workers_fails_fetch_stops_them_and_polls_the_rest(tmp_path, servers, monkeypatch, caplog):
    """Nobody else resolves a worker's sources: a failing reader must not leave `fetch`
    waiting for ever."""
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)

    def broken(*args):
        raise RuntimeError("the reader broke")

    monkeypatch.setattr(poll_workers, "_ready", broken)
    caplog.set_level(logging.WARNING, logger="aggregator")
    outcomes, posts = _fetch_outcomes(tmp_path, servers, "broken")
    assert "reading the fetch workers failed: they are stopped, their sources polled here" in caplog.text
    expected, alone_posts = _alone(tmp_path, servers)
    assert [o[0] for o in outcomes] == [e[0] for e in expected]
    assert {o[1] for o in outcomes} <= {"new", "unchanged"} and posts == alone_posts


def test_without_a_queue_for_workers_fetch_polls_on_one_process(tmp_path, servers, monkeypatch, caplog):
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)

    def no_pipe(tasks):
        raise OSError(105, "the task queue does not fit in a pipe")

    monkeypatch.setattr(poll_workers, "task_queue", no_pipe)
    caplog.set_level(logging.INFO, logger="aggregator")
    outcomes, posts = _fetch_outcomes(tmp_path, servers, "nopipe")
    assert "fetch polls on one process: no queue for its workers" in caplog.text
    assert "forked worker" not in caplog.text
    expected, alone_posts = _alone(tmp_path, servers)
    assert outcomes == expected and posts == alone_posts


def test_a_fetch_started_with_sigchld_ignored_still_ends(tmp_path, servers):
    """SIGCHLD set to SIG_IGN survives exec (some supervisors start children so): the kernel
    then reaps the workers itself, and waiting for one fails with ECHILD."""
    cfg = _config(tmp_path, servers, broken=2)
    code = (
        "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'aggregator', '--config', sys.argv[1], 'fetch'])"
    )
    env = {**os.environ, poll_workers.ENV_WORKERS: "2", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{len(FEEDS) + 2} sources:" in result.stdout.splitlines()[-1]


def test_a_dead_workers_sources_are_polled_even_without_a_thread_to_spare(tmp_path, servers, monkeypatch, caplog):
    """No thread to be had for the rescue (a container's pids limit, spent by the workers):
    the reader polls what the dead worker left itself, instead of queueing it for nobody."""
    monkeypatch.setattr(poll_workers, "forking_is_safe", lambda: True)
    parent, real = os.getpid(), poll_workers.poll_one

    def poll_one(source, store, fetcher, named=False):
        if os.getpid() != parent:
            os._exit(7)  # the worker dies on its first source, before storing it
        return real(source, store, fetcher, named)

    class NoThreads(poll_workers.ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(poll_workers, "poll_one", poll_one)
    monkeypatch.setattr(poll_workers, "ThreadPoolExecutor", NoThreads)
    caplog.set_level(logging.WARNING, logger="aggregator")
    outcomes, posts = _fetch_outcomes(tmp_path, servers, "nothreads")
    assert "no thread to poll a dead fetch worker's sources" in caplog.text
    expected, alone_posts = _alone(tmp_path, servers)
    assert outcomes == expected and posts == alone_posts


class _HeldServer:
    """A real HTTP server on 127.0.0.1 whose answers wait until `release` is set: polls that
    stay in flight as long as the test wants."""

    def __init__(self) -> None:
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()
        body = FEEDS[0].read_bytes()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.arrived.release()
                outer.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _readline(stream, timeout: float) -> bytes:
    """One line of a child's pipe, or b"" after `timeout` seconds."""
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n") and select.select([stream], [], [], max(0, deadline - time.monotonic()))[0]:
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        line += chunk
    return line


@pytest.mark.parametrize("again", [False, True])
def test_the_first_ctrl_c_says_it_waits_for_the_polls_in_flight_and_a_second_quits_at_once(tmp_path, again):
    """A real SIGINT to `fetch` while 2 polls are in flight on a slow server: one line says
    it is stopping, waiting for those 2, and that Ctrl-C again quits at once. Left to wait,
    they finish and are stored; a second SIGINT exits 130 at once, nothing of them stored."""
    server = _HeldServer()
    try:
        port = server.httpd.server_address[1]
        sources = "".join(f"      - url: http://127.0.0.1:{port}/{i}\n" for i in range(4))
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            f"site:\n  title: S\n  url: https://example.org/\n  workers: 2\ncategories:\n  - name: A\n"
            f"    sources:\n{sources}",
            encoding="utf-8",
        )
        proc = _fetch_process(cfg, "0")
        try:
            assert server.arrived.acquire(timeout=20) and server.arrived.acquire(timeout=5), "no poll arrived"
            proc.send_signal(signal.SIGINT)
            line = _readline(proc.stderr, 5).decode()
            assert line.startswith("stopping: waiting for the 2 polls in flight"), line
            assert "Ctrl-C again to quit at once" in line and proc.poll() is None, line
            if again:
                proc.send_signal(signal.SIGINT)
                began = time.monotonic()
                proc.wait(timeout=5)
                assert time.monotonic() - began < 3  # not the polls' 30 s timeout
            else:
                server.release.set()
            _, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
        err = err.decode()
        assert proc.returncode == 130 and "Traceback" not in err, err
        with contextlib.closing(sqlite3.connect(tmp_path / "aggregator.db")) as db:
            (stored,) = db.execute("SELECT count(*) FROM sources WHERE last_fetch IS NOT NULL").fetchone()
        if again:
            assert "interrupted after 0 of 4 sources" in err and "2 polls in flight abandoned" in err, err
            assert stored == 0
        else:
            assert "interrupted after 2 of 4 sources" in err, err
            assert stored == 2
    finally:
        server.close()


def test_ctrl_c_prints_the_lines_of_polls_that_ended_before_their_turn(tmp_path):
    """Lines come in config order: a fast source listed after a slow one waits for it. Ctrl-C
    then lost the fast source's line though it was polled and stored (stdout was empty);
    every poll that ended has its line, the one in flight at the Ctrl-C (waited for) too."""
    host, port = _slow_host(tmp_path, FEEDS[0], slow=3.0)
    try:
        slow, fast = f"http://127.0.0.1:{port}/slow", f"http://127.0.0.1:{port}/fast"
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            "site:\n  title: S\n  url: https://example.org/\ncategories:\n  - name: A\n    sources:\n"
            f"      - url: {slow}\n        timeout: 2s\n      - url: {fast}\n"
        )
        proc = _fetch_process(cfg, "0", start_new_session=True)
        deadline, stored = time.monotonic() + 30, 0
        while not stored and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                db = sqlite3.connect(tmp_path / "aggregator.db")
                stored = db.execute("SELECT count(*) FROM sources WHERE key = ? AND last_fetch IS NOT NULL", [fast])
                stored = stored.fetchone()[0]
                db.close()
            except sqlite3.Error:
                pass
        assert stored, "the fast source was not stored"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        host.kill()
        host.wait()
    assert proc.returncode == 130, err
    lines = out.decode().splitlines()
    assert lines[1:] == [f"new        {fast} (10 new, 0 updated of 10)"], (out, err)  # in config order
    assert lines[0].startswith(f"error      {slow}: timed out"), (out, err)  # in flight, waited for


def test_ctrl_c_while_the_polling_threads_start_still_prints_the_polls_that_ended(tmp_path, servers, monkeypatch):
    """A Ctrl-C that lands while `polling` is still starting its threads (a loaded machine:
    polls already ending) came before it handed the futures over, so `fetch` printed no line at
    all for polls it had stored. The instant is made here: the interrupt is raised where the last
    thread has started, just before the hand-over (`polling_here.set()`, the first Event set)."""

    def _stored(db: Path, count: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as con:
                if con.execute("SELECT count(*) FROM sources WHERE last_fetch IS NOT NULL").fetchone()[0] >= count:
                    return
            time.sleep(0.02)
        raise AssertionError("the polls were not stored")

    from click.testing import CliRunner

    from aggregator.cli import main

    class Interrupting(threading.Event):
        fired = False

        def set(self) -> None:
            super().set()
            if not Interrupting.fired:
                Interrupting.fired = True
                _stored(tmp_path / "aggregator.db", 2)  # both polls ended and stored, as on that machine
                raise KeyboardInterrupt

    shim = type(threading)("threading")
    shim.__dict__.update(vars(threading))
    shim.Event = Interrupting
    monkeypatch.setattr(poll_workers, "threading", shim)
    monkeypatch.setenv(poll_workers.ENV_WORKERS, "0")
    urls = [servers[0].url(f.relative_to(CORPUS)) for f in FEEDS[:2]]
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: S\n  url: https://example.org/\n  workers: 2\ncategories:\n  - name: A\n    sources:\n"
        + "".join(f"      - url: {u}\n" for u in urls),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["--config", str(cfg), "fetch"], env={"COLUMNS": "400"})
    assert Interrupting.fired and result.exit_code == 130, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("new ")]
    assert [line.split()[1] for line in lines] == urls, result.output  # both polls ended, both said


@pytest.mark.parametrize("again", [False, True])
def test_sigterm_stops_fetch_saying_what_was_polled_and_what_was_left_exit_143(tmp_path, again):
    """`timeout 10m aggregator fetch` in cron, or `kill`: SIGTERM ended `fetch` at once
    without a word (exit -15), the user left to guess what was polled. Now it stops as Ctrl-C
    does: it waits for the polls in flight (saying so; a second SIGTERM quits at once), says
    what was polled and what was left, logs it to a JSON log file too, and exits 143."""
    server = _HeldServer()
    try:
        port = server.httpd.server_address[1]
        sources = "".join(f"      - url: http://127.0.0.1:{port}/{i}\n" for i in range(4))
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            f"site:\n  title: S\n  url: https://example.org/\n  workers: 2\ncategories:\n  - name: A\n"
            f"    sources:\n{sources}",
            encoding="utf-8",
        )
        log = tmp_path / "fetch.log"
        env = {**os.environ, poll_workers.ENV_WORKERS: "0", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "aggregator", "--config", str(cfg), "--log-format", "json"]
        proc = subprocess.Popen(
            [*command, "--log-file", str(log), "fetch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        try:
            assert server.arrived.acquire(timeout=20) and server.arrived.acquire(timeout=5), "no poll arrived"
            proc.send_signal(signal.SIGTERM)
            line = _readline(proc.stderr, 5).decode()
            assert line.startswith("stopping (SIGTERM): waiting for the 2 polls in flight"), line
            assert "send SIGTERM again to quit at once" in line and proc.poll() is None, line
            if again:
                proc.send_signal(signal.SIGTERM)
                began = time.monotonic()
                proc.wait(timeout=5)
                assert time.monotonic() - began < 3  # not the polls' 30 s timeout
            else:
                server.release.set()
            _, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
        err = err.decode()
        assert proc.returncode == 143 and "Traceback" not in err, err
        if again:
            said = "stopped by SIGTERM after 0 of 4 sources: what was polled is stored, 4 not polled (2 polls"
        else:
            said = "stopped by SIGTERM after 2 of 4 sources: what was polled is stored, 2 not polled, and the next"
        assert said in err, err
        logged = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        assert any(r["message"].startswith(said) and r["level"] == "warning" for r in logged), logged
        assert any(r["message"] == line.strip() for r in logged), logged  # the wait, logged too
    finally:
        server.close()
