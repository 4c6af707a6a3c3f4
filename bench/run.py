"""`python -m bench [CORPUS] [--runs N] [--no-peer] [--scale N]`: the benchmark suite.

Serves CORPUS (default ../shared/corpus) from a local HTTP server in its own process,
writes a config with one source per feed, and measures the real `aggregator fetch`
command as a child process (end to end: fetch, parse, normalize, store, publish), each
figure the median of --runs runs:

  cold       empty database: MB/s of feed bytes, posts/s
  warm       every source answers 304: sources/s
  unchanged  the server ignores conditional requests, same bytes again: sources/s
  publish    100 categories × 50 posts: full, unchanged, one changed category
  peer       lemon24/reader's update_feeds(workers=16) on the same URLs, same server

with the child's CPU time and peak RSS. --scale N runs the `aggregator run` daemon over N
sources (the corpus under many URLs) for a few cycles (bench/scale.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

from .common import DEFAULT_CORPUS, Measured, file_create_cost, median, run_child, write_config
from .server import FeedServer, corpus_feeds

WORKERS = 16  # aggregator's default site.workers; reader gets the same


def _fmt(label: str, samples: list[Measured], unit_value: float, unit: str, extra: str = "") -> str:
    wall = median([m.wall for m in samples])
    cpu = median([m.cpu for m in samples])
    rss = max(m.rss_mb for m in samples)
    tree = max(m.tree_mb for m in samples)
    return (
        f"{label:<22} {unit_value / wall:>9.1f} {unit:<10} wall {wall:6.2f}s  cpu {cpu:6.2f}s  "
        f"peak RSS {rss:5.0f} MB  with workers {tree:5.0f} MB PSS{extra}"
    )


def _posts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM posts").fetchone()[0]


def _fetch(work: Path, env: dict[str, str] | None = None) -> Measured:
    m = run_child(["-m", "aggregator", "-c", str(work / "feeds.yaml"), "fetch"], cwd=work, env=env)
    if m.code not in (0, 1):
        raise SystemExit(f"aggregator fetch failed ({m.code}):\n{m.err[-2000:]}")
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS), help="folder of feeds (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported")
    ap.add_argument("--no-peer", action="store_true", help="skip lemon24/reader")
    ap.add_argument("--scale", type=int, default=0, metavar="N", help="also run the daemon over N sources")
    ap.add_argument("--cycles", type=int, default=3, help="daemon cycles in the scale run")
    ap.add_argument("--interval", type=int, default=90, help="seconds between polls of a source in the scale run")
    ap.add_argument("--before", action="store_true", help="also the cold ingest with feedparser only")
    ap.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    ap.add_argument("--workdir", metavar="DIR", help="where databases and outputs go (default: a temporary folder)")
    args = ap.parse_args(argv)
    corpus, files, rels = corpus_feeds(args.corpus)
    total_mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"corpus {corpus}: {len(files)} feeds, {total_mb:.1f} MB; {args.runs} runs per figure (median)")
    server = FeedServer(corpus)
    tmp = Path(tempfile.mkdtemp(prefix="aggregator-bench-", dir=args.workdir))
    report: dict[str, object] = {"feeds": len(files), "mb": total_mb}
    try:
        create_us = file_create_cost(tmp)
        report["file_create_us"] = create_us
        print(f"{'new file on this disk':<22} {create_us:9.0f} µs  ({tmp}; every post page is one)")
        # the command's own start-up (`aggregator.start`: imports with the collector off, then frozen)
        startup = [run_child(["-m", "aggregator", "--help"]) for _ in range(args.runs)]
        print(f"{'python + imports':<22} wall {median([m.wall for m in startup]):.2f}s "
              "(`aggregator --help`; included in every figure)")  # fmt: skip
        cold, warm, unchanged, cold_posts = [], [], [], []
        for run in range(args.runs):
            for mode, bucket in (("e", warm), ("n", unchanged)):
                work = tmp / f"{mode}{run}"
                work.mkdir()
                write_config(work, [server.url(mode, run, r) for r in rels])
                cold.append(_fetch(work))
                cold_posts.append(_posts(work / "bench.db"))
                bucket.append(_fetch(work))
                shutil.rmtree(work / "public")  # keep the disk small; the db stays for the next figure
        posts = median(cold_posts)
        print(_fmt("cold ingest", cold, total_mb, "MB/s", f"  ({posts / median([m.wall for m in cold]):.0f} posts/s, "
                                                          f"{posts:.0f} posts)"))  # fmt: skip
        print(_fmt("warm (all 304)", warm, len(files), "sources/s"))
        print(_fmt("unchanged 200", unchanged, len(files), "sources/s"))
        before = []
        for run in range(args.runs if args.before else 0):
            work = tmp / f"fp{run}"
            work.mkdir()
            write_config(work, [server.url("e", 200 + run, r) for r in rels])
            before.append(_fetch(work, env={"AGGREGATOR_PARSER": "feedparser"}))
            shutil.rmtree(work)
        if before:
            print(_fmt("cold, feedparser only", before, total_mb, "MB/s", "  (AGGREGATOR_PARSER=feedparser: before)"))
        report.update(cold=[vars(m) | {"out": ""} for m in cold], warm=[vars(m) | {"out": ""} for m in warm],
                      unchanged=[vars(m) | {"out": ""} for m in unchanged], posts=posts)  # fmt: skip
        phases = []
        for mode in ("e", "n"):  # the same cycles again, phase by phase (bench/cycle.py)
            work = tmp / f"phases-{mode}"
            work.mkdir()
            config = str(write_config(work, [server.url(mode, 300, r) for r in rels]))
            for label in ("cold", "warm (all 304)" if mode == "e" else "unchanged 200"):
                if mode == "n" and label == "cold":
                    label = "cold (again)"
                m = run_child(["-m", "bench.cycle", config], cwd=work)
                phases.append({"cycle": label, **json.loads(m.out)})
        print(f"{'phases of one cycle':<22} {'import':>7} {'config':>7} {'poll':>7} {'publish':>8}  (seconds)")
        for ph in phases:
            print(f"  {ph['cycle']:<20} {ph['import_s']:7.2f} {ph['config_s']:7.2f} {ph['poll_s']:7.2f} "
                  f"{ph['publish_s']:8.2f}  poll: {ph['sources'] / ph['poll_s']:.0f} sources/s")  # fmt: skip
        report["phases"] = phases
        pubs = [run_child(["-m", "bench.publish_bench", str(corpus), str(tmp / f"pub{i}")]) for i in range(args.runs)]
        figures = [json.loads(m.out) for m in pubs]
        for key, label in (("full_s", "full"), ("unchanged_s", "nothing changed"),
                           ("one_category_s", "one category changed"),
                           ("full_after_one_change_s", "full, one changed")):  # fmt: skip
            print(f"{'publish ' + label:<34} {median([f[key] for f in figures]) * 1000:7.0f} ms")
        print(f"{'publish peak RSS':<34} {max(m.rss_mb for m in pubs):7.0f} MB (store of 5,000 posts built first)")
        report["publish"] = figures
        if not args.no_peer:
            peer = []
            for run in range(args.runs):
                work = tmp / f"reader{run}"
                work.mkdir()
                (work / "urls.txt").write_text("\n".join(server.url("e", 100 + run, r) for r in rels))
                args_ = [str(work / "reader.db"), str(work / "urls.txt"), str(WORKERS)]
                m = run_child(["-m", "bench.peer_reader", *args_])
                if m.code != 0:
                    print(f"lemon24/reader failed ({m.code}): {m.err.strip().splitlines()[-1:]}  (pip install reader)")
                    break
                peer.append(m)
            if peer:
                entries = json.loads(peer[-1].out)["entries"]
                print(_fmt("lemon24/reader cold", peer, total_mb, "MB/s", f"  ({entries} entries)"))
                ratio = median([m.wall for m in peer]) / median([m.wall for m in cold])
                print(f"{'aggregator / reader':<22} {ratio:9.1f} ×  (cold ingest, wall time, same run)")
                report["peer"] = [vars(m) | {"out": m.out} for m in peer]
        if args.scale:
            from .scale import scale_run

            report["scale"] = scale_run(server, rels, args.scale, args.cycles, tmp, args.interval)
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0
