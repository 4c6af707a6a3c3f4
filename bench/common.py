"""Helpers shared by the benchmarks: configs, measured child processes, medians."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"  # as tests/conftest.py locates it


@dataclass
class Measured:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    rss_mb: float  # peak resident set of the child
    code: int
    out: str = ""
    err: str = ""


def run_child(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Measured:
    """Run a Python child; wall time, CPU time and peak RSS from wait4 (the child alone)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    out_path = Path(cwd or ".") / f".bench-out-{time.monotonic_ns()}"
    with open(out_path, "w+") as out, open(str(out_path) + ".err", "w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=full_env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, etext = out.read(), err.read()
    out_path.unlink()
    Path(str(out_path) + ".err").unlink()
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, text, etext)


def write_config(folder: Path, urls: list[str], categories: int = 100, interval: str = "30m") -> Path:
    """One source per URL, spread round-robin over `categories` categories (JSON is YAML)."""
    n = max(1, min(categories, len(urls)))
    cats = [{"name": f"Category {i:03d}", "slug": f"cat{i:03d}", "sources": []} for i in range(n)]
    for i, url in enumerate(urls):
        cats[i % n]["sources"].append({"url": url})
    config = {
        "site": {"title": "bench", "url": "https://bench.example/", "output_dir": "public", "database": "bench.db"},
        # min_interval (5 min by default) would refuse the short intervals of the scale run
        "defaults": {"interval": interval, "min_interval": interval},
        "categories": cats,
    }
    path = folder / "feeds.yaml"
    path.write_text(json.dumps(config, indent=1))
    return path


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def file_create_cost(folder: Path, n: int = 400) -> float:
    """Microseconds to create, write (4 KB) and close one new file under `folder`.

    Publishing writes a file per post page, so this one figure of the disk decides much of
    the publish and cold-ingest timings: ~30 µs on a freshly made ext4, ~600 µs on this
    machine's root file system (the inode allocation; tmpfs: ~7 µs). Printed with the
    figures so that they can be read against the disk they were taken on.
    """
    probe = folder / f".create-probe-{os.getpid()}"
    probe.mkdir()
    data = b"x" * 4096
    try:
        start = time.perf_counter()
        for i in range(n):
            fd = os.open(probe / f"{i}.html", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
        return (time.perf_counter() - start) / n * 1e6
    finally:
        for i in range(n):
            (probe / f"{i}.html").unlink(missing_ok=True)
        probe.rmdir()
