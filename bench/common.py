"""Helpers shared by the benchmarks: configs, measured child processes, medians."""

from __future__ import annotations

import compileall
import functools
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
    tree_mb: float = 0.0  # peak memory of the child and its workers together (PSS summed), sampled


def tree_pss_mb(pid: int) -> float:
    """The proportional set size of a process and its descendants, summed, in MB: pages a
    forked worker shares with its parent are counted once, split between them (RSS summed
    would count them twice; the child's own peak RSS leaves the workers out)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total / 1024


class _TreeSampler:
    """Samples tree_pss_mb of a child every 50 ms on a thread; `peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, tree_pss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


@functools.cache
def compile_package() -> None:
    """Write the package's bytecode before the first child runs, as `pip install` does.

    A source checkout run with PYTHONDONTWRITEBYTECODE set (as on this machine) has none,
    and each child would compile ~20 modules again: ~60 ms in every figure that no
    installed copy pays.
    """
    compileall.compile_dir(ROOT / "aggregator", quiet=1)


def run_child(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Measured:
    """Run a Python child; wall time, CPU time and peak RSS from wait4 (the child alone, or
    its largest waited-for descendant), and the peak PSS of it and its workers, sampled."""
    compile_package()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    out_path = Path(cwd or ".") / f".bench-out-{time.monotonic_ns()}"
    with open(out_path, "w+") as out, open(str(out_path) + ".err", "w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=full_env, stdout=out, stderr=err)
        sampler = _TreeSampler(proc.pid) if Path("/proc/self/smaps_rollup").exists() else None
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        tree = sampler.stop() if sampler is not None else 0.0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, etext = out.read(), err.read()
    out_path.unlink()
    Path(str(out_path) + ".err").unlink()
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, text, etext, tree)


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
