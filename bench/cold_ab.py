"""`python -m bench.cold_ab CHECKOUT [CHECKOUT ...]`: the cold ingest, checkouts interleaved.

Runs `aggregator fetch` from each checkout (a folder holding `aggregator/`, e.g. a `git
worktree` of an older commit) over a fresh config and database of one source per corpus
feed, one checkout after the other, `--runs` times, and prints each run's wall and CPU time
(from `wait4`) and the medians. Interleaving is what makes two versions comparable on a
machine whose speed drifts during the day.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import DEFAULT_CORPUS, write_config
from .server import FeedServer, corpus_feeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cold_ab", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="+", help="folders holding aggregator/ (the current one: .)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", metavar="DIR", help="where databases and outputs go")
    args = ap.parse_args(argv)
    checkouts = [str(Path(c).resolve()) for c in args.checkouts]
    for c in checkouts:  # their bytecode, as `pip install` writes it (see common.compile_package)
        compileall.compile_dir(Path(c) / "aggregator", quiet=1)
    corpus, _, rels = corpus_feeds(args.corpus)
    server = FeedServer(corpus)
    times: dict[str, list[tuple[float, float]]] = {c: [] for c in checkouts}
    try:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            n = 0
            for _ in range(args.runs):
                for c in checkouts:
                    n += 1
                    folder = Path(tmp) / f"cold{n}"
                    folder.mkdir()
                    # a path prefix of its own per run: nothing cached by URL carries over
                    cfg = write_config(folder, [server.url("e", 500 + n, r) for r in rels])
                    started = time.perf_counter()
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "aggregator", "-c", str(cfg), "fetch"],
                        cwd=folder,
                        env={**os.environ, "PYTHONPATH": c},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    _, status, usage = os.wait4(proc.pid, 0)
                    wall, cpu = time.perf_counter() - started, usage.ru_utime + usage.ru_stime
                    times[c].append((wall, cpu))
                    code = os.waitstatus_to_exitcode(status)
                    print(f"{c}: {wall:.2f} s wall, {cpu:.2f} s CPU (exit {code})", flush=True)
                    shutil.rmtree(folder)
    finally:
        server.close()
    for c, runs in times.items():
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(u for _, u in runs)
        print(f"{c}: median {wall:.2f} s wall, {cpu:.2f} s CPU over {len(runs)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
