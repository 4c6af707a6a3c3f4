"""Run one hostile source through the real pipeline in a fresh process, measured.

usage: python -m tests.reliability.pipeline_child CONFIG HOSTILE_URL

A well-behaved source is polled and everything published first (imports, caches and the
allocator's arenas are paid for), then the peak-RSS counter is reset, every file open and
socket connect is recorded by an audit hook, and the hostile source is polled
(fetch → parse → normalize → store), another well-behaved source after it, and the outputs
are published again. Prints one JSON line: the outcomes, the time taken, the peak RSS
growth in MB, and the files opened / addresses connected to while the hostile feed was
handled.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time


def _peak_kb() -> int:
    try:
        with open("/proc/self/status") as fh:
            return int(re.search(r"VmHWM:\s+(\d+)", fh.read()).group(1))  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> int:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux)
    except OSError:
        pass
    return _peak_kb()


def main() -> None:
    config, hostile_url = sys.argv[1], sys.argv[2]
    from aggregator.config import load_config
    from aggregator.fetch import Fetcher
    from aggregator.pipeline import update_source
    from aggregator.publish import publish
    from aggregator.store import Store

    settings = load_config(config)
    store = Store(settings.database)
    store.sync_sources(settings.sources)
    fetcher = Fetcher()
    hostile = settings.source(hostile_url)
    assert hostile is not None
    before, after = [s for s in settings.sources if s.key != hostile_url][:2]
    warm = update_source(before, store, fetcher)
    publish(settings, store)

    opened: list[str] = []
    connected: list[str] = []
    recording = True

    def audit(event: str, args: tuple) -> None:
        if not recording:
            return
        if event == "open" and isinstance(args[0], (str, bytes)):
            opened.append(args[0] if isinstance(args[0], str) else args[0].decode("utf-8", "replace"))
        elif event == "socket.connect":
            connected.append(repr(args[1]))

    base = _reset_peak()
    started, cpu_started = time.monotonic(), time.process_time()
    sys.addaudithook(audit)
    outcome = update_source(hostile, store, fetcher)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    recording = False
    growth_mb = (_peak_kb() - base) / 1024
    next_outcome = update_source(after, store, fetcher)
    publish(settings, store)
    print(
        json.dumps(
            {
                "warm": warm.status,
                "status": outcome.status,
                "error": outcome.error,
                "entries": outcome.entries,
                "after": next_outcome.status,
                "after_entries": next_outcome.entries,
                "elapsed": elapsed,
                "cpu": cpu,
                "rss_growth_mb": growth_mb,
                "opened": opened,
                "connected": connected,
            }
        )
    )


if __name__ == "__main__":
    main()
