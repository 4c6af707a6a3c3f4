"""Would a process pool for parse + normalize pay? `python -m bench.pool_trial [CORPUS] --runs 3`.

The poll phase of a cold ingest (`bench.cycle`'s: every source fetched, parsed, normalized
and stored on site.workers threads), run in a child process with parse + normalize done
in-process (workers 0) or sent to a ProcessPoolExecutor of 1 or 2 forkserver workers, the
way a pipeline would do it: the fetch thread hands over the body and gets the posts back.
Wall time; CPU time of the child (wait4) and of its workers (read just before they are shut down);
peak memory as the largest sum over the child and all its descendants of RSS (sampled
every 20 ms with psutil: the workers count) and of PSS (shared pages counted once).

A trial, not the pipeline: `aggregator` has no pool (see bench/README.md for the figures).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import DEFAULT_CORPUS, ROOT, median, write_config
from .server import FeedServer, feed_files


def _work(source: Any, body: bytes, url: str, headers: dict[str, str], when: datetime) -> tuple[Any, list[Any]]:
    """In a worker: parse + normalize; the feed goes back without its entries (only the posts are needed)."""
    from aggregator.normalize import normalize_entries
    from aggregator.parse import ParseError, parse_feed

    try:
        feed = parse_feed(source.key, body, url, headers)
    except ParseError as e:  # ParseError(source, message) does not survive pickling: send its parts
        return None, [e.source, str(e)]
    posts = normalize_entries(source, feed, when)
    return replace(feed, entries=[]), posts


class _Deferred:
    """What the patched parse_feed returns: the body, parsed later in a worker with the source in hand."""

    def __init__(self, body: bytes, url: str, headers: dict[str, str]) -> None:
        self.body, self.url, self.headers = body, url, headers
        self.info = self.warning = None


def _child(config: str, workers: int) -> None:
    from aggregator import pipeline
    from aggregator.config import load_config
    from aggregator.fetch import Fetcher
    from aggregator.memory import limit_malloc_arenas
    from aggregator.parse import ParseError
    from aggregator.store import Store

    limit_malloc_arenas()
    settings = load_config(config)
    pool = None
    if workers:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
        original = pipeline.normalize_entries

        def parse_feed(key: str, body: bytes, url: str, headers: dict[str, str]) -> Any:
            return _Deferred(body, url, headers)

        def normalize_entries(source: Any, feed: Any, when: datetime) -> list[Any]:
            if not isinstance(feed, _Deferred):
                return original(source, feed, when)
            parsed, posts = pool.submit(_work, source, feed.body, feed.url, feed.headers, when).result()
            if parsed is None:
                raise ParseError(*posts)
            feed.info, feed.warning = parsed.info, parsed.warning
            return posts

        pipeline.parse_feed = parse_feed
        pipeline.normalize_entries = normalize_entries
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        fetcher = Fetcher()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=settings.site.workers) as threads:
            outcomes = list(threads.map(lambda s: pipeline.update_source(s, store, fetcher), settings.sources))
        poll = time.perf_counter() - start
        fetcher.close()
        workers_cpu = 0.0
        if pool is not None:  # the workers are the forkserver's children: wait4 on ours does not see them
            import psutil

            for p in psutil.Process().children(recursive=True):
                t = p.cpu_times()
                workers_cpu += t.user + t.system
            pool.shutdown()
        posts = store.count_posts()
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    print(json.dumps({"poll_s": poll, "posts": posts, "statuses": statuses, "workers_cpu_s": workers_cpu}))


def _measure(config: Path, workers: int) -> dict[str, Any]:
    import psutil

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.pool_trial", "--child", str(config), "--workers", str(workers)],
        cwd=config.parent,
        env=env,
        stdout=subprocess.PIPE,
    )
    peak = {"rss": 0.0, "pss": 0.0}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            rss = pss = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        info = p.memory_full_info()
                        rss, pss = rss + info.rss, pss + info.pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
            except psutil.NoSuchProcess:
                return
            peak["rss"] = max(peak["rss"], rss / 2**20)
            peak["pss"] = max(peak["pss"], pss / 2**20)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed with workers={workers}")
    figures = json.loads(out)
    return {
        **figures,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime + figures["workers_cpu_s"],
        "peak_rss_mb": peak["rss"],
        "peak_pss_mb": peak["pss"],
        "load": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.pool_trial")
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.workers[0])
        return
    corpus = Path(args.corpus)
    rels = [str(p.relative_to(corpus)) for p in feed_files(corpus)]
    server = FeedServer(corpus)
    results: dict[int, list[dict[str, Any]]] = {w: [] for w in args.workers}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.runs):
                for workers in args.workers:  # interleaved, so a busy spell of the machine hits every variant
                    work = Path(tmp) / f"r{run}w{workers}"
                    work.mkdir()
                    config = write_config(work, [server.url("e", 500 + run, r) for r in rels])
                    m = _measure(config, workers)
                    results[workers].append(m)
                    print(f"run {run} workers {workers}: " + json.dumps(m), flush=True)
    finally:
        server.close()
    print(f"{'workers':<8} {'poll wall':>10} {'child wall':>11} {'CPU':>7} {'peak RSS sum':>13} {'peak PSS sum':>13}")
    for workers, ms in results.items():
        print(
            f"{workers:<8} {median([m['poll_s'] for m in ms]):9.2f}s {median([m['wall_s'] for m in ms]):10.2f}s "
            f"{median([m['cpu_s'] for m in ms]):6.2f}s {max(m['peak_rss_mb'] for m in ms):10.0f} MB "
            f"{max(m['peak_pss_mb'] for m in ms):10.0f} MB"
        )


if __name__ == "__main__":
    main()
