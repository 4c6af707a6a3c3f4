"""lemon24/reader's cold ingest of the same URLs, run as a child: `python -m bench.peer_reader DB URLS WORKERS`.

reader is only a benchmark peer (pip install reader), never a dependency of aggregator.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    from reader import make_reader

    db, urls_file, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    urls = Path(urls_file).read_text().split()
    reader = make_reader(db)
    for url in urls:
        reader.add_feed(url, exist_ok=True)
    start = time.perf_counter()
    reader.update_feeds(workers=workers)
    seconds = time.perf_counter() - start
    counts = reader.get_entry_counts()
    errors = sum(1 for f in reader.get_feeds() if f.last_exception)
    print(json.dumps({"seconds": seconds, "entries": counts.total, "errors": errors}))
    reader.close()


if __name__ == "__main__":
    main()
