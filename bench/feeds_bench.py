"""Feed rendering alone: `python -m bench.feeds_bench WORKDIR [--runs N] [--out DIR] [--profile] [--publish]`.

WORKDIR is a folder `bench.publish_bench` has filled (its `feeds.yaml` and `bench.db`: 100
categories × 50 posts). The posts of the 101 feeds publish renders (100 categories and the
all-posts feed) are read from the store once; then the 303 documents (Atom, RSS, JSON Feed)
are rendered `--runs` times in this process and the CPU time of each run is printed (JSON),
with the median. Store reads, page rendering and file writes are left out. `--out` writes
the documents under DIR after the timed runs (to compare two versions byte for byte);
`--profile` prints a cProfile of one more run. `--publish` also times one whole `publish()`
(feeds, pages, files) into an empty output folder, on a copy of the store: user and system
CPU apart, since the system time is mostly the disk's.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from aggregator.config import load_config
from aggregator.publish import all_posts_feed_meta, category_feed_meta, publish
from aggregator.publish.feeds import FeedMeta, render_feeds
from aggregator.store import Store


def _feeds(work: Path) -> list[tuple[str, FeedMeta, list]]:
    """(name, meta, posts) of every feed a full publish writes, as `publish()` builds them."""
    settings = load_config(work / "feeds.yaml")
    s = settings.site
    out = []
    with Store(settings.database) as store:
        for cat in settings.categories:
            meta = category_feed_meta(settings, cat)
            out.append((f"category/{cat.slug}", meta, store.posts_for_category(cat.slug, s.items_per_feed)))
        meta = all_posts_feed_meta(settings)
        out.append(("feed", meta, store.latest_posts(s.items_per_feed)))
    return out


def _render(feeds: list[tuple[str, FeedMeta, list]], keep: bool = False) -> dict[str, bytes | int]:
    """Each document (or, unless `keep`, its size: publish writes a feed's three documents and
    lets them go, and holding all 80 MB would add page faults a publish does not have)."""
    docs: dict[str, bytes | int] = {}
    for name, meta, posts in feeds:
        for ext, data in render_feeds(meta, posts).items():
            docs[f"{name}.{ext}"] = data if keep else len(data)
    return docs


def _publish(work: Path) -> dict[str, float]:
    """One full publish into an empty folder, on a copy of the store (the original's publish
    state says everything is out already)."""
    with tempfile.TemporaryDirectory(prefix="feeds-bench-") as tmp:
        for name in ("feeds.yaml", "bench.db"):
            shutil.copy(work / name, Path(tmp) / name)
        settings = load_config(Path(tmp) / "feeds.yaml")
        with Store(settings.database) as store:
            before, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            report = publish(settings, store)
            wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "publish_files": len(report.written),
        "publish_wall_s": round(wall, 3),
        "publish_user_s": round(after.ru_utime - before.ru_utime, 3),
        "publish_sys_s": round(after.ru_stime - before.ru_stime, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--publish", action="store_true")
    args = ap.parse_args()
    feeds = _feeds(args.work)
    times = []
    docs: dict[str, bytes | int] = {}
    for _ in range(args.runs):
        t = time.process_time()
        docs = _render(feeds)
        times.append(time.process_time() - t)
    if args.out:
        for name, data in _render(feeds, keep=True).items():
            assert isinstance(data, bytes)
            path = args.out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(_render, feeds)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    figures = {
        "feeds": len(feeds),
        "documents": len(docs),
        "bytes": sum(n for n in docs.values() if isinstance(n, int)),
        "cpu_s": [round(t, 3) for t in times],  # the first with cold caches, as in a publish
        "median_cpu_s": round(statistics.median(times), 3),
    }
    if args.publish:
        figures.update(_publish(args.work))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
