"""One source added to, then removed from, a large site: `python -m bench.source_change WORKDIR`.

`python -m bench.source_change WORKDIR [--sources 2000] [--posts 20] [--categories 100] [--corpus DIR]`

Builds a store of SOURCES sources × POSTS real posts (the corpus's, parsed and normalized
once and reused under other ids) spread over CATEGORIES categories, straight through the
store API (no HTTP), and publishes it in full. Then, each timed in this process:

- `unchanged`: a publish with nothing new (must write nothing);
- `added`: one source added to the config of one category (synced as a reload does), and
  its first poll stored (POSTS posts), then one publish;
- `removed`: that source taken out of the config again, then one publish (`sync_s`: the
  config's sync, which looks for copies of the moved source's posts: one scan of `posts`);
- `renamed`: another source's title changed (as its feed would say), then one publish.

Prints JSON: seconds, files written and removed, post pages rendered, categories
regenerated, for each step. The file system is synced before each timed publish.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import load_config
from aggregator.models import FeedInfo
from aggregator.publish import PublishReport, publish
from aggregator.store import Store

from .common import DEFAULT_CORPUS, write_config
from .publish_bench import _real_posts

NEW = "https://src.example/added.xml"


def _timed(settings, store: Store) -> tuple[float, PublishReport]:  # noqa: ANN001 - Settings
    os.sync()
    t = time.perf_counter()
    report = publish(settings, store)
    return time.perf_counter() - t, report


def _figures(seconds: float, report: PublishReport) -> dict[str, object]:
    return {
        "s": round(seconds, 2),
        "written": len(report.written),
        "removed": len(report.removed),
        "post_pages_rendered": report.posts_rendered,
        "categories_regenerated": len(report.categories),
    }


def _config(work: Path, sources: int, categories: int, extra: str | None) -> Path:
    """The bench config, with `extra` (a URL) added to the first category when given."""
    path = write_config(work, [f"https://src.example/{i}.xml" for i in range(sources)], categories)
    if extra is not None:
        config = json.loads(path.read_text())
        config["categories"][0]["sources"].append({"url": extra})
        path.write_text(json.dumps(config, indent=1))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--sources", type=int, default=2000)
    ap.add_argument("--posts", type=int, default=20)
    ap.add_argument("--categories", type=int, default=100)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    settings = load_config(_config(work, args.sources, args.categories, None))
    pool = _real_posts(args.corpus, 3000)
    base = datetime(2025, 1, 1, tzinfo=UTC)

    def posts_of(i: int, key: str) -> list:
        out = []
        for j in range(args.posts):
            p = pool[(i * args.posts + j) % len(pool)]
            when = base + timedelta(minutes=i * args.posts + j)
            out.append(dataclasses.replace(p, id=f"{i:06d}{j:010d}", source=key, published=when, updated=when,
                                           first_seen=when))  # fmt: skip
        return out

    figures: dict[str, object] = {"sources": args.sources, "posts": args.sources * args.posts,
                                  "categories": args.categories}  # fmt: skip
    with Store(settings.database) as store:
        t = time.perf_counter()
        store.sync_sources(settings.sources)
        for i, source in enumerate(settings.sources):
            store.record_success(source.key, base, 200, posts=posts_of(i, source.key))
        figures["store_s"] = round(time.perf_counter() - t, 1)
        figures["full"] = _figures(*_timed(settings, store))
        figures["unchanged"] = _figures(*_timed(settings, store))

        settings = load_config(_config(work, args.sources, args.categories, NEW))  # the edit, as a reload reads it
        store.sync_sources(settings.sources)
        store.record_success(NEW, base, 200, posts=posts_of(args.sources, NEW))
        figures["added"] = _figures(*_timed(settings, store))

        settings = load_config(_config(work, args.sources, args.categories, None))
        t = time.perf_counter()
        store.sync_sources(settings.sources)  # a source with posts moves: its copies are looked for
        sync = time.perf_counter() - t
        figures["removed"] = _figures(*_timed(settings, store)) | {"sync_s": round(sync, 2)}

        renamed = settings.sources[1].key  # in the second category
        store.record_success(renamed, base, 200, FeedInfo(title="A new title"))
        figures["renamed"] = _figures(*_timed(settings, store))
        figures["unchanged_after"] = _figures(*_timed(settings, store))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
