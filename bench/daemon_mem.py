"""`python -m bench.daemon_mem CHECKOUT [CHECKOUT ...]`: the daemon's peak RSS, checkouts interleaved.

Runs `aggregator run` from each checkout (a folder holding `aggregator/`, e.g. a `git
worktree` of an older commit) over the same N sources (the corpus under many URLs) for a
few seconds, one checkout after the other, `--runs` times, and prints each run's peak RSS
(sampled every 0.2 s). Interleaving is what makes two versions comparable on a machine
whose speed drifts during the day.
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

from .common import DEFAULT_CORPUS, write_config
from .server import FeedServer, feed_files


def main(argv: list[str] | None = None) -> int:
    import psutil

    ap = argparse.ArgumentParser(prog="python -m bench.daemon_mem", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="+", help="folders holding aggregator/ (the current one: .)")
    ap.add_argument("--sources", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=60.0, help="how long each daemon runs")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--workdir", metavar="DIR", help="where databases and outputs go")
    args = ap.parse_args(argv)
    corpus = DEFAULT_CORPUS.resolve()
    rels = [str(p.relative_to(corpus)).replace("\\", "/") for p in feed_files(corpus)]
    server = FeedServer(corpus)
    try:
        for run in range(args.runs):
            for n, checkout in enumerate(args.checkouts):
                tmp = Path(tempfile.mkdtemp(prefix="aggregator-mem-", dir=args.workdir))
                base = 3000 + (run * len(args.checkouts) + n) * 100  # fresh URLs: every poll a cold one
                urls = [server.url("e", base + i // len(rels), rels[i % len(rels)]) for i in range(args.sources)]
                cfg = write_config(tmp, urls, interval="90s")
                env = {**os.environ, "PYTHONPATH": str(Path(checkout).resolve())}
                proc = subprocess.Popen([sys.executable, "-m", "aggregator", "-c", str(cfg), "run"], cwd=tmp, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                ps, peak, start = psutil.Process(proc.pid), 0, time.monotonic()
                try:
                    while time.monotonic() - start < args.seconds and proc.poll() is None:
                        try:
                            peak = max(peak, ps.memory_info().rss)
                        except psutil.Error:  # it exited between the check and the sample
                            break
                        time.sleep(0.2)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
                    shutil.rmtree(tmp)
                print(f"run {run + 1}  {checkout:<30} peak RSS {peak / 1e6:5.0f} MB", flush=True)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
