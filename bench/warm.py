"""`python -m bench.warm [CORPUS] [--runs N] [--unchanged]`: the warm cycle alone (every source
answers 304; with --unchanged, the server ignores the validators and sends the same 200 bytes).

The same figure as `python -m bench`'s "warm (all 304)", without the cold ingest, publish and
peer runs around it, so a change to the poll path can be measured before and after in a
minute: one cold `aggregator fetch` fills the database, then --runs warm `aggregator fetch`
children (end to end: wall, CPU and peak RSS from wait4) and --runs `bench.cycle` children
(the poll phase alone). Medians; CPU per source is the child's user + system time divided by
the sources, which the other load on a shared machine disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from .common import DEFAULT_CORPUS, median, run_child, write_config
from .server import FeedServer, corpus_feeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.warm", description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS), help="folder of feeds (default %(default)s)")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure; the median is reported")
    ap.add_argument("--unchanged", action="store_true", help="the unchanged-200 cycle instead of the 304 one")
    ap.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    args = ap.parse_args(argv)
    corpus, _, rels = corpus_feeds(args.corpus)
    n = len(rels)
    server = FeedServer(corpus)
    tmp = Path(tempfile.mkdtemp(prefix="aggregator-bench-warm-"))
    try:
        config = write_config(tmp, [server.url("n" if args.unchanged else "e", 0, r) for r in rels])
        fetch = ["-m", "aggregator", "-c", str(config), "fetch"]
        cold = run_child(fetch, cwd=tmp)
        if cold.code not in (0, 1):
            raise SystemExit(f"aggregator fetch failed ({cold.code}):\n{cold.err[-2000:]}")
        load = os.getloadavg()[0]
        ends = [run_child(fetch, cwd=tmp) for _ in range(args.runs)]
        cycles = []
        for _ in range(args.runs):
            m = run_child(["-m", "bench.cycle", str(config)], cwd=tmp)
            cycles.append({**json.loads(m.out), "cpu": m.cpu})
        load_after = os.getloadavg()[0]
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    wall, cpu = median([m.wall for m in ends]), median([m.cpu for m in ends])
    poll = median([c["poll_s"] for c in cycles])
    print(f"{n} sources, {args.runs} runs each (medians); load average {load:.2f} before, {load_after:.2f} after")
    what = "unchanged 200" if args.unchanged else "warm (all 304)"
    print(f"{what}, end to end (`aggregator fetch`): {n / wall:5.0f} sources/s  wall {wall:.2f}s  CPU {cpu:.2f}s "
          f"({cpu / n * 1000:.2f} ms a source)  peak RSS {max(m.rss_mb for m in ends):.0f} MB")  # fmt: skip
    print("  runs: " + ", ".join(f"{m.wall:.2f}s/{m.cpu:.2f}s CPU" for m in ends))
    print(f"{what}, poll phase alone (bench.cycle): {n / poll:5.0f} sources/s  poll {poll:.2f}s  "
          f"(whole child CPU {median([c['cpu'] for c in cycles]):.2f}s)")  # fmt: skip
    print("  runs: " + ", ".join(f"{c['poll_s']:.2f}s" for c in cycles))
    if args.json:
        raw = [vars(m) | {"out": "", "err": ""} for m in ends]
        Path(args.json).write_text(json.dumps({"sources": n, "end_to_end": raw, "cycles": cycles,
                                               "load": [load, load_after]}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
