"""Per-stage throughput in one process: `python -m bench.stages [CORPUS] [--runs N]`.

The XML floor (lxml alone), fastfeedparser (if installed: the candidate we measured and did
not choose), our fast path, feedparser, and the normalizer over the posts of each path.
Medians of --runs passes over every feed in memory (no HTTP, no SQLite).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from aggregator.models import Source
from aggregator.normalize import normalize
from aggregator.parse import ParsedFeed, ParseError, parse_feedparser
from aggregator.parse_fast import XML_PARSER, parse_fast

from .common import DEFAULT_CORPUS, median
from .server import CONTENT_TYPES, feed_files

CLOCK = time.perf_counter  # --cpu: time.process_time, less swayed by a busy machine


def _time(fn, bodies, runs: int) -> tuple[float, int]:
    times, ok = [], 0
    for _ in range(runs):
        ok = 0
        start = CLOCK()
        for path, body in bodies:
            try:
                if fn(path, body) is not None:
                    ok += 1
            except Exception:
                pass
        times.append(CLOCK() - start)
    return median(times), ok


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.stages")
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="CPU time of this process instead of wall time")
    args = ap.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    corpus = Path(args.corpus)
    bodies = [(p, p.read_bytes()) for p in feed_files(corpus) if p.suffix != ".json"]
    mb = sum(len(b) for _, b in bodies) / 1e6
    print(f"{len(bodies)} XML feeds, {mb:.1f} MB, median of {args.runs}")

    def headers(p: Path) -> dict[str, str]:
        return {"content-type": CONTENT_TYPES[p.suffix]}

    def url(p: Path) -> str:
        return "http://127.0.0.1:8000/" + str(p.relative_to(corpus))

    stages = {"lxml parse alone (floor)": lambda p, b: etree.fromstring(b, XML_PARSER)}
    try:
        import fastfeedparser

        stages["fastfeedparser"] = lambda p, b: fastfeedparser.parse(b)
    except ImportError:
        pass
    stages["aggregator fast path"] = lambda p, b: parse_fast(b, url(p), headers(p))
    stages["feedparser (our settings)"] = lambda p, b: parse_feedparser(url(p), b, url(p), headers(p))
    for name, fn in stages.items():
        seconds, ok = _time(fn, bodies, args.runs)
        print(f"{name:<28} {mb / seconds:8.1f} MB/s  {seconds:6.2f}s  ({ok} feeds read)")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    fast, slow = [], []
    for p, b in bodies:
        r = parse_fast(b, url(p), headers(p))
        if r is not None:
            fast.append((p, ParsedFeed(r[0], r[1], r[2], url(p), r[3], authors=r[4], images=r[5], itunes_images=r[6])))
            try:
                slow.append((p, parse_feedparser(url(p), b, url(p), headers(p))))
            except ParseError:
                pass
    for name, feeds in (("normalize (fast-path input)", fast), ("normalize (feedparser input)", slow)):
        times, posts = [], 0
        for _ in range(args.runs):
            start = CLOCK()
            posts = sum(len(normalize(Source(key=url(p), url=url(p)), f, now)) for p, f in feeds)
            times.append(CLOCK() - start)
        seconds = median(times)
        print(f"{name:<28} {posts / seconds:8.0f} posts/s {seconds:6.2f}s  ({posts} posts)")


if __name__ == "__main__":
    main()
