"""Crash safety: `aggregator fetch` and `aggregator run` are SIGKILLed at random moments,
restarted each time, and the database and outputs must come out as a clean run makes them.

The corpus server releases the feeds a few at a time, so every restart has new entries to
insert as well as sources to re-poll and outputs to rewrite: kills land in every stage
(start-up, fetching, parsing, the store's transactions, publishing). After each kill the
database must pass `PRAGMA integrity_check`, no post stored before may be missing and every
output file present must be a complete document; after the final clean run the posts must
equal those of an uninterrupted reference run (same ids, same content, none twice), the
outputs must pass the strict validators and no temporary file may be left behind.
Set RELIABILITY_SEED to replay a run's kill moments.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.publish.atomic import sweep_temp_files, write_if_changed

from ..conftest import check_feeds, run_cli
from .conftest import (
    CorpusServer,
    aggregator,
    child_env,
    corpus_paths,
    db_check,
    output_problems,
    per_source_counts,
    seed_from_env,
    temp_files,
    write_config,
)

# The uninterrupted reference run is a module fixture both crash tests compare with: one
# xdist worker runs the module, so it is built once (`--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("crash")

FOLDERS = ("kagi", "suites")
FETCH_KILLS = 50
DAEMON_KILLS = 10


def groups() -> dict[str, list[str]]:
    return {folder: corpus_paths(folder) for folder in FOLDERS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, reliability_corpus: CorpusServer):
    """One uninterrupted cold fetch of the whole subset: what every crashed history must equal."""
    folder = tmp_path_factory.mktemp("reference")
    reliability_corpus.released = None
    cfg = write_config(folder, reliability_corpus, groups())
    done = run_cli("--config", str(cfg), "fetch", timeout=300)
    assert done.returncode in (0, 1), done.stderr
    integrity, posts, dups = db_check(folder / "aggregator.db")
    assert integrity == "ok" and not dups
    assert len(posts) > 4000, "the reference run did not take in the corpus"
    errors = dict(sqlite3.connect(folder / "aggregator.db").execute("SELECT key, last_error FROM sources"))
    return {"posts": posts, "errors": errors, "returncode": done.returncode}


class CrashLog:
    """Invariants checked after every kill, and what the kills hit, for the failure message."""

    def __init__(self, folder: Path, seed: int) -> None:
        self.db = folder / "aggregator.db"
        self.outputs = (folder / "public", folder / "jekyll")
        self.seed = seed
        self.seen: set[str] = set()
        self.killed = self.completed = self.temp_seen = 0
        self.checked: dict[Path, tuple[int, int, int]] = {}  # output files found complete

    def check(self, what: str) -> None:
        where = f"{what} (seed {self.seed}: RELIABILITY_SEED={self.seed} replays it)"
        if self.db.exists():
            integrity, posts, dups = db_check(self.db)
            assert integrity == "ok", f"{where}: integrity_check: {integrity}"
            assert not dups, f"{where}: (source, guid) stored twice: {dups[:5]}"
            lost = self.seen - posts.keys()
            assert not lost, f"{where}: {len(lost)} stored posts vanished, e.g. {sorted(lost)[:3]}"
            self.seen = set(posts)
        problems = output_problems(*self.outputs, checked=self.checked)
        assert not problems, f"{where}: " + "\n".join(problems[:10])
        self.temp_seen += len(temp_files(*self.outputs))

    def final(self, reference: dict, label: str, readers: bool = True) -> None:
        where = f"{label} (seed {self.seed}; {self.killed} kills, {self.completed} runs finished first)"
        self.check(where)
        _, posts, _ = db_check(self.db)
        want = reference["posts"]
        assert per_source_counts(posts) == per_source_counts(want), f"{where}: per-source post counts differ"
        assert posts == want, f"{where}: ids or contents differ from the uninterrupted run"
        leftovers = temp_files(*self.outputs)
        assert not leftovers, f"{where}: temporary files left behind: {leftovers[:5]}"
        checked = check_feeds(self.outputs[0], readers=readers)
        assert checked.returncode == 0, f"{where}: " + checked.stdout[-3000:]


def release_schedule(rng: random.Random, runs: int) -> list[set[str]]:
    """Feeds released before each run: a few more every time, all by 80% of the runs."""
    paths = [p for ps in groups().values() for p in ps]
    rng.shuffle(paths)
    full_by = max(1, int(runs * 0.8))
    return [set(paths[: math.ceil(len(paths) * min(i + 1, full_by) / full_by)]) for i in range(runs)]


def test_fetch_killed_50_times_stores_every_entry_once(tmp_path, reliability_corpus, reference):
    seed = seed_from_env()
    print(f"fetch crash test seed: {seed}")
    rng = random.Random(seed)
    cfg = write_config(tmp_path, reliability_corpus, groups())
    log = CrashLog(tmp_path, seed)
    run_time = 2.5  # how long the last run that finished took: kills land anywhere up to its end
    for i, released in enumerate(release_schedule(rng, FETCH_KILLS)):
        reliability_corpus.released = released
        delay = rng.uniform(0.3, 1.1 * run_time)
        with open(tmp_path / "stderr.log", "ab") as err:
            started = time.monotonic()
            # Every other run shares its polls with a forked worker (a large fetch does), so
            # kills also land while two processes write the database.
            env = {**child_env(), "AGGREGATOR_FETCH_WORKERS": str(i % 2)}
            proc = subprocess.Popen(
                aggregator("--config", str(cfg), "fetch"), stdout=subprocess.DEVNULL, stderr=err, env=env
            )
            try:
                rc = proc.wait(delay)
                run_time = time.monotonic() - started
                log.completed += 1
                assert rc in (0, 1), f"run {i} exited {rc}: see {tmp_path / 'stderr.log'}"
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                log.killed += 1
        log.check(f"after run {i} (killed at {delay:.2f}s)" if proc.returncode == -9 else f"after run {i}")
    reliability_corpus.released = None
    final = run_cli("--config", str(cfg), "fetch", timeout=300)
    assert final.returncode == reference["returncode"], final.stdout[-2000:] + final.stderr[-2000:]
    assert "Traceback" not in (tmp_path / "stderr.log").read_text(errors="replace")
    print(f"{log.killed} killed, {log.completed} finished before their kill, {log.temp_seen} temp files seen")
    log.final(reference, "after the final clean fetch")
    assert log.killed >= FETCH_KILLS * 0.6, f"only {log.killed} of {FETCH_KILLS} runs were killed mid-way"


def _wait_caught_up(db: Path, since: datetime, proc: subprocess.Popen, timeout: float) -> None:
    """Until every source has been polled successfully since `since` (read-only peeks at the WAL db)."""
    deadline = time.monotonic() + timeout
    stamp = since.isoformat(timespec="seconds")
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the daemon died"
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            behind = con.execute(
                "SELECT count(*) FROM sources WHERE active = 1 AND (last_success IS NULL OR last_success < ?)",
                [stamp],
            ).fetchone()[0]
            con.close()
            if behind == 0:
                return
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.25)
    raise AssertionError(f"the daemon did not poll every source within {timeout}s")


def test_daemon_killed_10_times_stores_every_entry_once(tmp_path, reliability_corpus, reference):
    seed = seed_from_env()
    print(f"daemon crash test seed: {seed}")
    rng = random.Random(seed)
    cfg = write_config(tmp_path, reliability_corpus, groups(), extra="defaults:\n  interval: 1s\n  min_interval: 1s\n")
    log = CrashLog(tmp_path, seed)
    stderr = tmp_path / "stderr.log"
    for i, released in enumerate(release_schedule(rng, DAEMON_KILLS)):
        reliability_corpus.released = released
        delay = rng.uniform(0.8, 2.5)  # start-up takes ~0.7s; the first poll and publish follow
        with open(stderr, "ab") as err:
            proc = subprocess.Popen(
                aggregator("--config", str(cfg), "run"), stdout=subprocess.DEVNULL, stderr=err, env=child_env()
            )
            time.sleep(delay)
            assert proc.poll() is None, f"the daemon exited by itself in run {i}: see {stderr}"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log.killed += 1
        log.check(f"after daemon run {i} (killed at {delay:.2f}s)")
    reliability_corpus.released = None
    started = datetime.now(UTC)
    with open(stderr, "ab") as err:
        proc = subprocess.Popen(
            aggregator("--config", str(cfg), "run"), stdout=subprocess.DEVNULL, stderr=err, env=child_env()
        )
        try:
            _wait_caught_up(tmp_path / "aggregator.db", started, proc, timeout=90)
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
    assert rc == 0, f"the clean daemon run exited {rc}: see {stderr}"
    assert "Traceback" not in stderr.read_text(errors="replace")
    log.final(reference, "after a clean daemon run", readers=False)  # the fetch test runs newsboat


def test_publisher_sweeps_temp_files_of_killed_writers_only(tmp_path):
    """The rule the crash tests rely on, shown directly: a dead writer's temp file goes, a live
    writer's stays (its PID is in the name), a PID-less or hour-old one goes."""
    out = tmp_path / "public" / "category"
    out.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        leftover = out / f".news.atom.{dead.pid}.k2j3h4g5.tmp"
        in_progress = out / f".news.rss.{live.pid}.a1b2c3d4.tmp"
        old_style = out / ".news.json.x9y8z7w6.tmp"
        ancient = out / f".feed.atom.{live.pid}.q1w2e3r4.tmp"
        unrelated = out / ".well-known.tmp"
        for p in (leftover, in_progress, old_style, ancient, unrelated):
            p.write_bytes(b"<feed")
        os.utime(ancient, (time.time() - 7200, time.time() - 7200))
        removed = sweep_temp_files(tmp_path / "public")
        assert sorted(removed) == sorted([leftover, old_style, ancient])
        assert in_progress.exists() and unrelated.exists()
    finally:
        live.kill()
        live.wait()
    # and a write in progress names its temp file after its own PID, so others can tell
    target = out / "news.atom"
    seen = []
    real_replace = os.replace

    def spy(src, dst):  # type: ignore[no-untyped-def]
        seen.append(Path(src).name)
        real_replace(src, dst)

    os.replace = spy  # type: ignore[assignment]
    try:
        write_if_changed(target, b"<feed/>")
    finally:
        os.replace = real_replace  # type: ignore[assignment]
    assert seen and seen[0].startswith(f".news.atom.{os.getpid()}.") and seen[0].endswith(".tmp")


STUCK_WRITER = """
import os, sys, time
from pathlib import Path
from aggregator.publish.atomic import write_if_changed
os.fsync = lambda fd: time.sleep(60)  # a disk that stalls: the bytes are in the temp file, the rename not done
write_if_changed(Path(sys.argv[1]), b"<half a feed")
"""


def test_publish_after_a_writer_killed_mid_write(tmp_path, reliability_corpus):
    """A real publisher process SIGKILLed inside an atomic write: readers keep the old complete
    file, and the next `aggregator publish` removes the temporary file it left."""
    reliability_corpus.released = None
    cfg = write_config(tmp_path, reliability_corpus, {"zh": corpus_paths("zh")})
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    target = tmp_path / "public" / "category" / "zh.atom"
    before = target.read_bytes()
    writer = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(target)], env=child_env())
    try:
        deadline = time.monotonic() + 30
        while not temp_files(target.parent) and time.monotonic() < deadline:
            time.sleep(0.02)
        leftover = temp_files(target.parent)
        assert [p.name for p in leftover] and all(f".{writer.pid}." in p.name for p in leftover)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert target.read_bytes() == before and not output_problems(tmp_path / "public")
    done = run_cli("--config", str(cfg), "publish")
    assert done.returncode == 0, done.stderr
    assert not temp_files(tmp_path / "public") and target.read_bytes() == before
    assert check_feeds(tmp_path / "public", readers=False).returncode == 0
