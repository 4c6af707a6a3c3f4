"""The scale run: the `aggregator run` daemon over N sources (the corpus under many URLs).

`python -m bench --scale N` runs it after the other figures; `python -m bench.scale [CORPUS]
--sources N --cycles C --interval S` runs it alone, e.g. as a soak (many short cycles: does
the daemon's memory grow?).

Samples the daemon's CPU time and RSS every 0.5 s with psutil and splits the run into
poll cycles (sources become due every `interval`): per cycle the polls done, CPU seconds,
peak RSS; and the CPU used while nothing is due (the idle check: no busy waiting).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import DEFAULT_CORPUS, ROOT, compile_package, write_config
from .server import FeedServer, corpus_feeds

INTERVAL = 90  # seconds between polls of a source: one cycle


def scale_run(server, rels: list[str], n: int, cycles: int, tmp: Path, interval: int = INTERVAL) -> dict:
    import psutil

    work = tmp / "scale"
    work.mkdir()
    urls = [server.url("e", 1000 + i // len(rels), rels[i % len(rels)]) for i in range(n)]
    write_config(work, urls, interval=f"{interval}s")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    compile_package()
    log = open(work / "daemon.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "-c", "feeds.yaml", "run"], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    ps = psutil.Process(proc.pid)
    samples = []  # (t, cpu seconds, rss MB, rss MB of its children: publish workers)
    start = time.monotonic()
    deadline = start + interval * cycles + 30
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            t = ps.cpu_times()
            cpu = t.user + t.system + t.children_user + t.children_system  # with its finished workers'
            samples.append((time.monotonic() - start, cpu, ps.memory_info().rss / 1e6, _kids_rss(ps)))
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        log.close()
    polls = _poll_times(work / "daemon.log")
    print(f"scale: {n} sources, {cycles} cycles of {interval}s, daemon pid {proc.pid}")
    out = {"sources": n, "interval": interval, "cycles": []}
    for c in range(cycles):
        lo, hi = c * interval, (c + 1) * interval
        window = [s for s in samples if lo <= s[0] < hi]
        if len(window) < 2:
            continue
        done = [p for p in polls if lo <= p < hi]
        busy_end = max(done) if done else lo
        idle = [s for s in window if s[0] > busy_end + 2]
        idle_cpu = (idle[-1][1] - idle[0][1]) / (idle[-1][0] - idle[0][0]) if len(idle) > 2 else float("nan")
        cycle = {
            "cycle": c + 1,
            "polls": len(done),
            "busy_s": busy_end - lo if done else 0.0,
            "cpu_s": window[-1][1] - window[0][1],
            "peak_rss_mb": max(s[2] for s in window),
            "workers_peak_rss_mb": max(s[3] for s in window),
            "idle_cpu_percent": 100 * idle_cpu,
        }
        out["cycles"].append(cycle)
        print(
            f"  cycle {cycle['cycle']}: {cycle['polls']:>6} polls in {cycle['busy_s']:5.1f}s, "
            f"cpu {cycle['cpu_s']:6.1f}s, peak RSS {cycle['peak_rss_mb']:5.0f} MB "
            f"(+ publish workers {cycle['workers_peak_rss_mb']:.0f} MB), idle CPU {cycle['idle_cpu_percent']:.2f}%"
        )
    return out


def _kids_rss(ps) -> float:
    """RSS of the daemon's children (the publish workers of a large publish), MB."""
    import psutil

    total = 0.0
    for kid in ps.children(recursive=True):
        try:
            total += kid.memory_info().rss / 1e6
        except psutil.Error:
            pass
    return total


def _poll_times(log: Path) -> list[float]:
    """Seconds since the daemon started of every finished poll (its `source …:` log lines)."""
    import datetime as dt

    times, first = [], None
    for line in log.read_text(errors="replace").splitlines():
        if " INFO " not in line:
            continue
        try:
            t = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        if first is None:
            first = t
        if "aggregator.daemon: source " in line:
            times.append(t - first)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS), help="folder of feeds (default %(default)s)")
    ap.add_argument("--sources", type=int, default=10_000, help="sources in the config (default %(default)s)")
    ap.add_argument("--cycles", type=int, default=3, help="poll cycles to run (default %(default)s)")
    ap.add_argument("--interval", type=int, default=INTERVAL, help="seconds between polls of a source")
    ap.add_argument("--workdir", metavar="DIR", help="where the database and outputs go (default: a temporary folder)")
    args = ap.parse_args(argv)
    corpus, _, rels = corpus_feeds(args.corpus)
    server = FeedServer(corpus)
    tmp = Path(tempfile.mkdtemp(prefix="aggregator-bench-scale-", dir=args.workdir))
    try:
        scale_run(server, rels, args.sources, args.cycles, tmp, interval=args.interval)
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
