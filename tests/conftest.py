"""Shared fixtures: the corpus served over real HTTP on 127.0.0.1, and config writers."""

from __future__ import annotations

import compileall
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
REFERENCE = SHARED / "reference"
CHECK_FEEDS = SHARED / "tools" / "check_feeds.py"
# What the tests read from the shared folder beside the checkout: the feed corpus, the Jekyll
# reference post, the Atom and JSON Feed schemas and the feed validator.
SHARED_PARTS = ("corpus", "reference", "schemas", "tools")


def pytest_configure(config: pytest.Config) -> None:
    """Stop at once, naming what is missing, when the shared folder is not beside the
    checkout: a clone placed elsewhere failed to collect five modules (FileNotFoundError from
    those reading the corpus at import) and the rest of the suite was never run."""
    missing = [SHARED / part for part in SHARED_PARTS if not (SHARED / part).is_dir()]
    if not SHARED.is_dir():
        missing = [SHARED]  # the whole of it: said once
    if missing:
        raise pytest.UsageError(
            f"the tests need the shared folder beside the checkout, {SHARED}, with "
            f"{', '.join(f'{part}/' for part in SHARED_PARTS)} in it (see README.md); "
            f"missing: {', '.join(str(path) for path in missing)}"
        )
    if not hasattr(config, "workerinput"):  # once, in the controller, before the workers start
        # The suite starts the real command about a thousand times; without bytecode written for
        # it (a fresh clone run with PYTHONDONTWRITEBYTECODE=1, as CI may be) each of them compiled
        # every module of the package again: about 0.1 s of CPU each.
        compileall.compile_dir(ROOT / "aggregator", quiet=1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: twice the cores (at most four more). A third of the suite's wall time is spent
    waiting (daemons between polls, subprocesses starting, servers trickling), and a worker
    waiting leaves its core to another."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(2 * cores, cores + 4)


# Session fixtures too costly to build once per xdist worker: the tests using one form an
# xdist group (`--dist loadgroup`), so one worker builds it.
SHARED_FIXTURES = ("corpus_fetch",)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        shared = [name for name in SHARED_FIXTURES if name in getattr(item, "fixturenames", ())]
        if shared and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(shared[0]))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".xml": "application/xml",
        ".rss": "application/rss+xml",
        ".atom": "application/atom+xml",
        ".rdf": "application/rdf+xml",
        ".dat": "application/octet-stream",
    }

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class StaticServer:
    """A threaded stdlib HTTP server over a folder: real sockets, real HTTP."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.root = root
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def url(self, relpath: str | Path) -> str:
        return self.base + str(relpath).replace("\\", "/")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    """An empty store in a real SQLite file (a test file with sources to sync first has its own)."""
    from aggregator.store import Store

    with Store(tmp_path / "db.sqlite") as s:
        yield s


@pytest.fixture(scope="session")
def corpus_server() -> Iterator[StaticServer]:
    assert CORPUS.is_dir(), f"the shared corpus is missing at {CORPUS}"
    server = StaticServer(CORPUS)
    yield server
    server.close()


@pytest.fixture(scope="session")
def corpus_fetch(tmp_path_factory, corpus_server) -> tuple[Path, list[Path], subprocess.CompletedProcess[str]]:
    """One cold `aggregator fetch` over the whole corpus, shared by the modules that only read
    its outcome (the store and `public/`): (folder, corpus files, the command's result).
    Its users must leave it as they found it (test_end_to_end's re-fetch asserts it changes
    nothing); it is the slowest fixture of the suite, so it runs once per session."""
    from .test_end_to_end import corpus_files, write_config

    tmp = tmp_path_factory.mktemp("corpus")
    files = corpus_files()
    cfg = write_config(tmp, corpus_server, files)
    result = run_cli("--config", str(cfg), "fetch", timeout=600)
    return tmp, files, result


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real `aggregator` command in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fetch_one_feed(folder: Path, url: str, site: str = "", top: str = "") -> Path:
    """`aggregator fetch` of one feed into a category `C` (slug `c`); its output folder.
    `site`: more `site:` lines (`  language: zh-CN\n`); `top`: more sections (`jekyll:`…)."""
    return fetch_feeds(folder, [url], site, top)


def fetch_feeds(folder: Path, urls: list[str], site: str = "", top: str = "") -> Path:
    """`fetch_one_feed` of several feeds, all in the category `C`."""
    cfg = folder / "feeds.yaml"
    sources = "".join(f"      - url: {url}\n" for url in urls)
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\n{site}{top}categories:\n  - name: C\n    sources:\n{sources}",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "public"


def serve_corpus(httpserver: Any, rel: str, content_type: str = "application/rss+xml") -> str:
    """A corpus file served as it is over real HTTP (pytest-httpserver), at `/<its name>`; its URL."""
    path = f"/{Path(rel).name}"
    httpserver.expect_request(path).respond_with_data((CORPUS / rel).read_bytes(), content_type=content_type)
    return httpserver.url_for(path)


def fetch_corpus_file(folder: Path, httpserver: Any, rel: str) -> Path:
    """`fetch_one_feed` of a corpus file served over HTTP (`serve_corpus`); the output folder."""
    httpserver.clear()
    return fetch_one_feed(folder, serve_corpus(httpserver, rel))


def fetch_feed_text(folder: Path, name: str, text: str, site: str = "", top: str = "") -> Path:
    """`fetch_one_feed` of a feed written here as `text`, served over HTTP as `name`."""
    www = folder / "www"
    www.mkdir(exist_ok=True)
    (www / name).write_text(text, encoding="utf-8")
    server = StaticServer(www)
    try:
        return fetch_one_feed(folder, server.url(name), site, top)
    finally:
        server.close()


def take(store: Any, src: Any, body: bytes, when: Any) -> list:
    """The posts `body` gives `src`, parsed and stored as a poll would (`pipeline.ingest`)."""
    from aggregator.parse import parse_feed
    from aggregator.pipeline import ingest

    posts, _, _ = ingest(src, store, parse_feed(src.key, body, src.url), when)
    return posts


def check_feeds(folder: Path, readers: bool = True) -> subprocess.CompletedProcess[str]:
    """The shared strict validator (Atom RELAX NG, RSS 2.0 rules, JSON Feed schema, newsboat)."""
    args = [sys.executable, str(CHECK_FEEDS), str(folder)] + (["--readers"] if readers else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=900)


def have_newsboat() -> bool:
    return shutil.which("newsboat") is not None
