"""Publish timings as a child process: `python -m bench.publish_bench CORPUS WORKDIR`.

Builds a store with 100 categories × 50 real posts (from the corpus, via the real parse and
normalize), then times: a full publish into an empty output folder, a full publish with
nothing changed, and after one new post in one category both the daemon's way (that
category and the all-posts feeds) and a full publish. Prints JSON. The file system is
synced before the first: what the setup wrote is not the publish's to flush.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import load_config
from aggregator.models import Source
from aggregator.normalize import normalize
from aggregator.parse import ParseError, parse_feed
from aggregator.publish import publish
from aggregator.store import Store

from .common import write_config
from .server import CONTENT_TYPES, feed_files

CATEGORIES, PER_CATEGORY = 100, 50


def _real_posts(corpus: Path, want: int) -> list:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    posts = []
    for path in feed_files(corpus):
        url = "https://feeds.example/" + path.name
        try:
            feed = parse_feed(url, path.read_bytes(), url, {"content-type": CONTENT_TYPES[path.suffix]})
        except ParseError:
            continue
        posts += normalize(Source(key=url, url=url), feed, now)
        if len(posts) >= want:
            break
    return posts[:want]


def main() -> None:
    corpus, work = Path(sys.argv[1]), Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    urls = [f"https://src.example/{i}.xml" for i in range(CATEGORIES)]
    settings = load_config(write_config(work, urls, CATEGORIES))
    posts = _real_posts(corpus, CATEGORIES * PER_CATEGORY)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        for i, source in enumerate(settings.sources):
            mine = []
            for j in range(PER_CATEGORY):
                p = posts[(i * PER_CATEGORY + j) % len(posts)]
                when = base + timedelta(minutes=i * PER_CATEGORY + j)
                mine.append(dataclasses.replace(p, id=f"{i:04d}{j:012d}", source=source.key, published=when,
                                                updated=when, first_seen=when))  # fmt: skip
            store.record_success(source.key, base, 200, posts=mine)
        # The publish ends with one syncfs, which flushes whatever is dirty on the file
        # system: without this, the figure included writing back the 5,000 posts just
        # stored (and, inside `python -m bench`, the earlier figures' files), ~0.4 s.
        os.sync()
        t = time.perf_counter()
        full = publish(settings, store)
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        again = publish(settings, store)
        t_again = time.perf_counter() - t
        source = settings.sources[0]
        later = base + timedelta(days=9)
        new = dataclasses.replace(posts[0], id="ffff000000000001", source=source.key, published=later, updated=later,
                                  first_seen=base)  # fmt: skip
        store.record_success(source.key, base, 200, posts=[new])
        t = time.perf_counter()
        one = publish(settings, store, set(source.categories))
        t_one = time.perf_counter() - t
        new2 = dataclasses.replace(new, id="ffff000000000002", published=base + timedelta(days=10))
        store.record_success(source.key, base, 200, posts=[new2])
        t = time.perf_counter()
        full_one = publish(settings, store)
        t_full_one = time.perf_counter() - t
    print(
        json.dumps(
            {
                "posts": len(posts),
                "full_s": t_full,
                "full_files": len(full.written),
                "unchanged_s": t_again,
                "unchanged_written": len(again.written),
                "one_category_s": t_one,
                "one_category_files": len(one.written),
                "full_after_one_change_s": t_full_one,
                "full_after_one_change_files": len(full_one.written),
            }
        )
    )


if __name__ == "__main__":
    main()
