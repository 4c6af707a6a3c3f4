"""`aggregator prune` and `aggregator status` over many sources, two checkouts interleaved.

The database is built by the first checkout through the store API (the same `ingest` a poll uses), never over
HTTP: N sources in categories of 10, each holding `--posts` dated entries, every second
source repeating 4 articles of its neighbour (copies: `duplicate_of`). Then the real
`python -m aggregator --config … prune` (and `status`) runs as a child process with each
checkout on PYTHONPATH, on a fresh copy of that database each run, and the database file's
size is reported before and after (with `--vacuum`, when the checkout knows it).

    python -m bench.prune_bench /work/main . --sources 1000 --runs 3
    python -m bench.prune_bench /work/main . --sources 10000 --status-only
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

NOW = datetime.now(UTC).replace(microsecond=0)


def write_config(folder: Path, n: int, keep: int, protect: int) -> Path:
    lines = [
        "site:",
        "  title: prune bench",
        "  url: https://news.example.com",
        "  database: bench.db",
        "  output_dir: public",
        f"  items_per_feed: {protect}",
        "defaults:",
        f"  keep_per_source: {keep}",
        "categories:",
    ]
    for c in range(0, n, 10):
        lines += [f"  - name: c{c // 10}", "    sources:"]
        lines += [f"      - url: http://h{i}.example/feed.xml" for i in range(c, min(c + 10, n))]
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def feed(i: int, posts: int) -> bytes:
    """Source i's feed: `posts` entries a day apart; an odd source repeats its neighbour's first 4."""
    items = []
    for j in range(posts):
        host, k = (i - 1, j) if i % 2 and j < 4 else (i, j)
        items.append(
            f"<item><guid>h{i}-{j}</guid><title>h{host} article {k}</title>"
            f"<link>https://h{host}.example/post/{k}</link>"
            f"<description>text of article {k} of source {host}, long enough to be fingerprinted "
            f"as the same article wherever it is copied</description>"
            f"<pubDate>{format_datetime(NOW - timedelta(days=j, hours=1 + i % 2))}</pubDate></item>"
        )
    return f'<rss version="2.0"><channel><title>h{i}</title>{"".join(items)}</channel></rss>'.encode()


def build(folder: Path, n: int, posts: int, keep: int, protect: int) -> Path:
    """The config and its database, filled with the checkout this process imports."""
    from aggregator.config import load_config
    from aggregator.parse import parse_feed
    from aggregator.pipeline import ingest
    from aggregator.store import Store

    config = write_config(folder, n, keep, protect)
    settings = load_config(config)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        for i, source in enumerate(settings.sources):
            if posts:
                ingest(source, store, parse_feed(source.key, feed(i, posts), source.url), NOW)
            else:
                store.record_success(source.key, NOW, 200)
    return config


def build_with(checkout: Path, folder: Path, n: int, posts: int, keep: int, protect: int) -> Path:
    """`build` in a child importing `checkout`'s aggregator (the first checkout: the database
    is as that version made it, and the others migrate it when they open it)."""
    code = (  # this file by its path: `bench` on that PYTHONPATH may be the checkout's own
        "import importlib.util, pathlib; "
        f"spec = importlib.util.spec_from_file_location('prune_bench', {str(Path(__file__).resolve())!r}); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        f"m.build(pathlib.Path({str(folder)!r}), {n}, {posts}, {keep}, {protect})"
    )
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=folder, check=True)
    return folder / "feeds.yaml"


def run(checkout: Path, config: Path, args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its output)."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    start, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        env=env,
        cwd=config.parent,  # not the checkout it is run from: `-m` imports the current folder's first
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
    if done.returncode:
        raise SystemExit(f"{checkout}: {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, cpu, done.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.prune_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="+", type=Path, help="checkouts to compare (PYTHONPATH of each)")
    ap.add_argument("--sources", type=int, default=1000)
    ap.add_argument("--posts", type=int, default=24, help="entries per source (default %(default)s)")
    ap.add_argument("--keep", type=int, default=10, help="keep_per_source (default %(default)s)")
    ap.add_argument("--protect", type=int, default=5, help="items_per_feed (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--status-only", action="store_true", help="time `status` alone (no posts stored)")
    ap.add_argument("--vacuum", action="store_true", help="also `prune --vacuum` where a checkout has it")
    ap.add_argument("--workdir", type=Path, help="where the databases go (default: a temporary folder)")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="prune-bench-", dir=a.workdir))
    try:
        base = work / "base"
        base.mkdir()
        t = time.perf_counter()
        config = build_with(a.checkouts[0], base, a.sources, 0 if a.status_only else a.posts, a.keep, a.protect)
        size = (base / "bench.db").stat().st_size
        print(f"built {a.sources} sources in {time.perf_counter() - t:.1f} s ({size:,} bytes)")
        times: dict[tuple[Path, str], list[float]] = {}
        cpus: dict[tuple[Path, str], list[float]] = {}
        for r in range(a.runs):
            for checkout in a.checkouts:
                folder = work / f"run{r}-{checkout.resolve().name}"
                shutil.copytree(base, folder)
                cfg = folder / config.name
                cases = [("status", ["status"])]
                if not a.status_only:
                    cases.insert(0, ("prune", ["prune", "--vacuum"] if a.vacuum else ["prune"]))
                for name, args in cases:
                    wall, cpu, out = run(checkout, cfg, args)
                    times.setdefault((checkout, name), []).append(wall)
                    cpus.setdefault((checkout, name), []).append(cpu)
                    size = sum(f.stat().st_size for f in folder.glob("bench.db*"))
                    last = out.strip().splitlines()[-1] if name == "prune" else f"{len(out.splitlines())} lines"
                    print(f"run {r} {checkout}: {name} {wall:.2f} s wall, {cpu:.2f} s CPU; db {size:,} bytes; {last}")
                shutil.rmtree(folder)
        for key, walls in times.items():
            wall, cpu = statistics.median(walls), statistics.median(cpus[key])
            print(f"{key[0]} {key[1]}: median {wall:.2f} s wall, {cpu:.2f} s CPU (runs: {[f'{w:.2f}' for w in walls]})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
