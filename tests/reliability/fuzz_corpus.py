"""Rebuild `fuzz_cases.json.gz`: the fuzz cases of a long run that reached code CI's shorter run does not.

CI replays the first cases of each fuzz test (`test_fuzz.FEED_CASES`…, derandomized) and then these
pinned ones, so it covers every branch a run `SCALE` times as long covers, in a fraction of its time:
coverage stops growing early and the few cases that still add a branch later are kept. Run it after
changing parse, normalize, publish or config (it takes about 15 minutes):

    pip install coverage && python -m tests.reliability.fuzz_corpus [--scale 4]

It prints, per test, the branches (arcs) of aggregator covered by CI's cases alone and by the whole
long run, and how many of the long run's later cases are pinned for adding to them.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import coverage

CASES = Path(__file__).with_name("fuzz_cases.json.gz")


def _arcs(cov: coverage.Coverage) -> set[tuple[str, int, int]]:
    cov.stop()
    data = cov.get_data()
    arcs = {(f, a, b) for f in data.measured_files() for a, b in data.arcs(f) or ()}
    cov.start()
    return arcs


COUNTS = {"feeds": "FEED_CASES", "pipeline": "PIPELINE_CASES", "config": "CONFIG_CASES"}


def _run(which: str, scale: float) -> tuple[list[Any], int, int, int]:
    """Run one fuzz test `scale` times CI's length under coverage; the inputs past CI's length
    that added an arc, CI's length, the arcs at CI's length, and the arcs at the end."""
    cov = coverage.Coverage(branch=True, source=["aggregator"], data_file=None)
    cov.start()  # before aggregator is imported: its module-level arcs count too
    from . import test_fuzz

    ci_cases = getattr(test_fuzz, COUNTS[which])
    pinned: list[Any] = []
    state: dict[str, Any] = {"count": 0, "last": None, "known": set(), "at_ci": 0}

    def settle() -> None:
        """Credit the previous case (whose publish, in the pipeline test, ran after its call)."""
        count = state["count"]
        if count == ci_cases:
            state["known"] = _arcs(cov)
            state["at_ci"] = len(state["known"])
        elif count > ci_cases:
            arcs = _arcs(cov)
            if arcs - state["known"]:
                pinned.append(state["last"])
                state["known"] = arcs

    def counting(fn: Callable, record: Callable[..., Any]) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            settle()
            state["count"] += 1
            state["last"] = record(*args)
            return fn(*args, **kwargs)

        return wrapped

    def feed(body: bytes, headers: dict[str, str], key: str) -> dict:
        return {"body": base64.b64encode(body).decode(), "headers": headers}

    def config(path: Path) -> dict:
        return {"text": base64.b64encode(Path(path).read_bytes()).decode()}

    test_fuzz.FEED_CASES, test_fuzz.PIPELINE_CASES, test_fuzz.CONFIG_CASES = (
        int(n * scale) for n in (test_fuzz.FEED_CASES, test_fuzz.PIPELINE_CASES, test_fuzz.CONFIG_CASES)
    )
    test_fuzz.replay_pinned = lambda *_: None  # the long run stands alone
    if which == "config":
        test_fuzz.load_config = counting(test_fuzz.load_config, config)
        test_fuzz.test_random_configs_load_or_fail_with_line_numbers()
    else:
        test_fuzz._parse_and_normalize = counting(test_fuzz._parse_and_normalize, feed)
        if which == "feeds":
            test_fuzz.test_mutated_feeds_give_posts_or_a_parse_error()
        else:
            test_fuzz.test_mutated_feeds_store_and_publish_valid_feeds()
    settle()
    cov.stop()
    return pinned, ci_cases, state["at_ci"], len(state["known"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=4.0, help="the long run, in CI runs (default 4)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: runs one test, writes its JSON
    parser.add_argument("which", nargs="*", default=["feeds", "pipeline", "config"])
    args = parser.parse_args()
    if args.one:
        pinned, ci, at_ci, at_end = _run(args.which[0], args.scale)
        Path(args.one).write_text(json.dumps({"pinned": pinned, "ci": ci, "at_ci": at_ci, "at_end": at_end}))
        return
    found = json.loads(gzip.decompress(CASES.read_bytes())) if CASES.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        children = {  # one process each: a clean coverage record, and the cores used
            which: subprocess.Popen(
                [sys.executable, "-m", __spec__.name, "--scale", str(args.scale), "--one", f"{tmp}/{which}", which]
            )
            for which in args.which
        }
        for which, child in children.items():
            if child.wait():
                raise SystemExit(f"{which}: the long run failed (exit {child.returncode})")
            result = json.loads(Path(f"{tmp}/{which}").read_text())
            found[which] = result["pinned"]
            print(f"{which}: CI's {result['ci']} cases cover {result['at_ci']} arcs of aggregator, a run "
                  f"{args.scale:g}× as long {result['at_end']}: {len(result['pinned'])} of its later cases "
                  "added arcs and are pinned")  # fmt: skip
    CASES.write_bytes(gzip.compress(json.dumps(found, sort_keys=True).encode(), mtime=0))


if __name__ == "__main__":
    main()
