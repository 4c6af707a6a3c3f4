"""`python -m bench.timeline [CORPUS] [--workdir DIR] [--every 0.1]`: how many cores one cold
`aggregator fetch` keeps busy, moment by moment.

Samples the CPU time of the `fetch` process and its workers every `--every` seconds and
prints, per sample, the cores in use in all (and per process) beside the count of source
lines `fetch` has printed so far, then where the run's cores went in all (`/proc/stat`:
busy, idle, I/O wait, stolen by the hypervisor). It shows which phases leave a core idle:
start-up, the poll phase, the publish, the final `syncfs`. Last, the run cut at its first and
last source line, against what the whole run may take at the issue's 20 MB/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from .common import DEFAULT_CORPUS, compile_package, write_config
from .server import FeedServer, corpus_feeds

_STAT = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _cpu_totals() -> dict[str, float]:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1 : 1 + len(_STAT)]
    tick = os.sysconf("SC_CLK_TCK")
    return {name: int(v) / tick for name, v in zip(_STAT, fields, strict=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS), help="folder of feeds (default %(default)s)")
    ap.add_argument("--workdir", help="where the database and outputs go (a fresh file system, say)")
    ap.add_argument("--every", type=float, default=0.1, help="seconds between samples")
    args = ap.parse_args(argv)
    corpus, files, rels = corpus_feeds(args.corpus)
    server = FeedServer(corpus)
    tmp = Path(tempfile.mkdtemp(prefix="aggregator-bench-timeline-", dir=args.workdir))
    try:
        config = write_config(tmp, [server.url("e", 0, r) for r in rels])
        cmd = [sys.executable, "-m", "aggregator", "-c", str(config), "fetch"]
        compile_package()
        before, start = _cpu_totals(), time.perf_counter()
        child = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines = [0]
        marks: dict[int, float] = {}  # source line number → when it was printed (the first, the last)

        def count() -> None:
            assert child.stdout is not None
            for _ in child.stdout:
                lines[0] += 1
                if lines[0] in (1, len(rels)):
                    marks[lines[0]] = time.perf_counter() - start

        threading.Thread(target=count, daemon=True).start()
        root = psutil.Process(child.pid)
        seen: dict[int, float] = {}
        last_total, last_at = 0.0, start
        print(f"{'time':>6} {'cores':>5}  per process        source lines")
        while child.poll() is None:
            time.sleep(args.every)
            previous = dict(seen)
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for proc in procs:
                try:
                    t = proc.cpu_times()
                    # a child's time moves into its parent's children_* fields when it is reaped
                    seen[proc.pid] = t.user + t.system + (t.children_user + t.children_system) * (proc is root)
                except psutil.Error:
                    pass
            now, total = time.perf_counter(), sum(seen.values())
            span = now - last_at
            per = " ".join(f"{(seen[p.pid] - previous.get(p.pid, 0.0)) / span:4.2f}" for p in procs if p.pid in seen)
            print(f"{now - start:5.1f}s {(total - last_total) / span:5.2f}  [{per}]{'':<6} {lines[0]}")
            last_total, last_at = total, now
        wall = time.perf_counter() - start
        after = _cpu_totals()
        spent = {k: after[k] - before[k] for k in _STAT}
        print(f"wall {wall:.2f} s, exit {child.returncode}; the machine's cores over the run (s):")
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in spent.items() if v >= 0.005))
        first, last = marks.get(1), marks.get(len(rels))
        if first is not None and last is not None:
            mb = sum(p.stat().st_size for p in files) / 1e6
            print(
                f"phases: until the first source line {first:.2f} s (start-up, config, the first source's poll); "
                f"to the last {last - first:.2f} s; after the last {wall - last:.2f} s (publish, final sync)"
            )
            print(
                f"at 20 MB/s the whole run over these {mb:.1f} MB would take {mb / 20:.2f} s, "
                f"of which the part after the polls took {wall - last:.2f} s"
            )
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
