"""Every stored field of every post of a corpus, one JSON line each: `python -m bench.dump_posts OUT`.

The guard for performance work on parse and normalize: dump before a change, dump after,
and `cmp` the two files. Ids and content hashes decide whether a reader sees a post as new,
so an optimization must leave every byte of them (and of every stored column) as it was.

Each feed is read three ways: the normal path (`parse_feed`: fast path, else feedparser),
feedparser alone, and the normal path again in a source zone far from UTC (dates without
a zone are read in it). Errors are dumped too, so a change in what fails shows as well.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from aggregator.charset import reconcile_charset
from aggregator.models import Source
from aggregator.normalize import normalize_entries
from aggregator.parse import ParseError, parse_feed, parse_feedparser
from aggregator.store import _row

from .common import DEFAULT_CORPUS
from .server import CONTENT_TYPES, feed_files

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.dump_posts")
    ap.add_argument("out")
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    args = ap.parse_args()
    corpus = Path(args.corpus)
    count = 0
    with open(args.out, "w", encoding="utf-8", errors="surrogatepass") as out:
        for path in feed_files(corpus):
            rel = str(path.relative_to(corpus))
            url = "http://127.0.0.1:8000/" + rel
            body = path.read_bytes()
            headers = reconcile_charset(body, {"content-type": CONTENT_TYPES[path.suffix]})
            runs = [("normal", "UTC", parse_feed), ("shanghai", "Asia/Shanghai", parse_feed)]
            if path.suffix != ".json":
                runs.append(("feedparser", "UTC", parse_feedparser))
            for how, zone, parse in runs:
                source = Source(key=url, url=url, timezone=zone)
                try:
                    feed = parse(url, body, url, headers)
                    posts = normalize_entries(source, feed, NOW)
                except ParseError as e:
                    out.write(json.dumps([rel, how, "error", str(e)], ensure_ascii=False) + "\n")
                    continue
                info = feed.info.__dict__
                out.write(json.dumps([rel, how, "feed", feed.version, feed.encoding, info], ensure_ascii=False) + "\n")
                for p in posts:
                    row = _row(p)
                    out.write(json.dumps([rel, how, "post", row], ensure_ascii=False) + "\n")
                    count += 1
    print(f"{count} posts dumped to {args.out}")


if __name__ == "__main__":
    main()
