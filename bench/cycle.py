"""One `aggregator fetch` cycle with its phases timed apart: `python -m bench.cycle CONFIG`.

The same calls as `aggregator fetch` (cli.py): load the config, open the store, poll every
source (shared with forked workers, as `fetch` does), publish everything. Prints JSON with the seconds
of each phase, so the end-to-end figures of bench/run.py can be read as a breakdown.
"""

from __future__ import annotations

import json
import resource
import sys
import time

t0 = time.perf_counter()
from aggregator.config import load_config  # noqa: E402
from aggregator.memory import limit_malloc_arenas  # noqa: E402
from aggregator.poll_workers import polling  # noqa: E402
from aggregator.publish import publish  # noqa: E402
from aggregator.store import Store  # noqa: E402


def main() -> None:
    t_import = time.perf_counter() - t0
    limit_malloc_arenas()  # as the CLI does
    t = time.perf_counter()
    settings = load_config(sys.argv[1])
    t_config = time.perf_counter() - t
    with Store(settings.database) as store:
        t = time.perf_counter()
        store.sync_sources(settings.sources)
        t_sync = time.perf_counter() - t
        t = time.perf_counter()
        with polling(settings.sources, store, settings) as futures:
            outcomes = [f.result() for f in futures]
        t_poll = time.perf_counter() - t
        rss_poll = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        report = publish(settings, store)
        t_publish = time.perf_counter() - t
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    print(json.dumps({"import_s": t_import, "config_s": t_config, "sync_s": t_sync, "poll_s": t_poll,
                      "publish_s": t_publish, "sources": len(outcomes), "statuses": statuses,
                      "files_written": len(report.written), "peak_rss_after_poll_mb": rss_poll,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))  # fmt: skip


if __name__ == "__main__":
    main()
