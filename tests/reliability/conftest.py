"""Fault-suite helpers: a corpus server whose feeds can be withheld, a canary server that
records any request, output validators, database snapshots and small file systems.

Everything is real: HTTP over 127.0.0.1, the `aggregator` command in subprocesses, SQLite
files, tmpfs mounts (the suite runs as root in CI, like the daemon's own container).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lxml import etree

from aggregator.publish import OWNER_FILE

from ..conftest import CORPUS, ROOT

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: thousands of posts
TEMP_FILE = re.compile(r"^\..+\.tmp$")  # what the publisher's atomic writes leave when killed


def seed_from_env(name: str = "RELIABILITY_SEED") -> int:
    """The seed of a randomized fault test: $RELIABILITY_SEED to replay a run, else fresh."""
    value = os.environ.get(name)
    return int(value) if value else random.SystemRandom().randrange(1 << 32)


def aggregator(*args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator", *args]


def child_env() -> dict[str, str]:
    """The test's own code first on the path, as the brief's PYTHONPATH convention does."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


# -- servers ------------------------------------------------------------------------------


class _CorpusHandler(http.server.SimpleHTTPRequestHandler):
    """The corpus, except the paths the test has not released yet (404 until then)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".xml": "application/xml"}

    def send_head(self):  # type: ignore[no-untyped-def]
        released = self.server.released  # type: ignore[attr-defined]
        if released is not None and self.path.split("?")[0].lstrip("/") not in released:
            self.send_error(404)
            return None
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class CorpusServer:
    """Serves `CORPUS`; `released` (relative paths, or None for all) decides what exists."""

    def __init__(self) -> None:
        handler = functools.partial(_CorpusHandler, directory=str(CORPUS))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.released = None  # type: ignore[attr-defined]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def released(self) -> set[str] | None:
        return self.httpd.released  # type: ignore[attr-defined]

    @released.setter
    def released(self, paths: set[str] | None) -> None:
        self.httpd.released = paths  # type: ignore[attr-defined]

    def url(self, rel: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{rel}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _CanaryHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = b'<!ENTITY canary "CANARY-REACHED">'
        self.send_response(200)
        self.send_header("Content-Type", "application/xml-dtd")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class CanaryServer:
    """Another local host an attacker would like us to reach; `hits` lists every request."""

    def __init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CanaryHandler)
        self.httpd.daemon_threads = True
        self.httpd.hits = []  # type: ignore[attr-defined]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits  # type: ignore[attr-defined]

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def reliability_corpus() -> Iterator[CorpusServer]:
    server = CorpusServer()
    yield server
    server.close()


@pytest.fixture
def canary() -> Iterator[CanaryServer]:
    server = CanaryServer()
    yield server
    server.close()


# -- configs ------------------------------------------------------------------------------


def write_config(folder: Path, server: CorpusServer, groups: dict[str, list[str]], extra: str = "") -> Path:
    """feeds.yaml with one category per group of corpus paths, Jekyll export on."""
    lines = [
        "site:",
        "  title: Reliability 可靠性",
        "  url: https://news.example.com/",
        "  timezone: Asia/Shanghai",
        "  items_per_feed: 50",
        "  workers: 4",
        "jekyll:",
        "  dir: jekyll",
        "categories:",
    ]
    for name, paths in groups.items():
        lines += [f"  - name: {name}", "    sources:"] + [f"      - url: {server.url(p)}" for p in paths]
    cfg = folder / "feeds.yaml"
    cfg.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return cfg


def corpus_paths(*folders: str) -> list[str]:
    return [str(p.relative_to(CORPUS)) for f in folders for p in sorted((CORPUS / f).iterdir()) if p.is_file()]


# -- checks -------------------------------------------------------------------------------


def output_problems(*roots: Path, checked: dict[Path, tuple[int, int, int]] | None = None) -> list[str]:
    """Every output file must be a complete document of its kind; no temp file may remain.

    `checked` remembers each file found complete by inode, size and mtime: a check after every
    kill then reads only what the last run wrote (an atomic write is a new inode), not all of
    the thousands of pages again.
    """
    problems = []
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # a live writer's temp file renamed away since the listing
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if checked is not None and checked.get(path) == stamp:
                continue
            found = [f"{path}: {e}" for e in _document_problems(path)]
            problems += found
            if checked is not None and not found:
                checked[path] = stamp
    return problems


def temp_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if TEMP_FILE.match(p.name)]


def _document_problems(path: Path) -> list[str]:
    if TEMP_FILE.match(path.name):
        return []  # reported by temp_files(): only a problem once a run has completed
    data = path.read_bytes()
    try:
        if path.suffix in (".atom", ".rss", ".xml"):
            root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
            want = "{http://www.w3.org/2005/Atom}feed" if path.suffix == ".atom" else None
            if want and root.tag != want:
                return [f"root element is {root.tag}"]
        elif path.suffix == ".json":
            doc = json.loads(data)
            if not isinstance(doc.get("items"), list):
                return ["JSON Feed without items"]
        elif path.suffix == ".md":
            text = data.decode("utf-8")
            if not text.startswith("---\n") or text.count("\n---\n") < 1:
                return ["Jekyll post without complete front matter"]
            if not text.rstrip("\n").endswith("/)"):  # the last line links back home
                return ["Jekyll post cut short (no closing home link)"]
            front = yaml.load(text[4 : text.index("\n---\n", 3)], Loader=_YAML_LOADER)
            if not isinstance(front, dict) or "title" not in front:
                return ["front matter without a title"]
        elif path.suffix == ".html":
            text = data.decode("utf-8")
            if not text.lstrip().lower().startswith("<!doctype html") or not text.rstrip().endswith("</html>"):
                return ["HTML page cut short (no doctype or no closing </html>)"]
        elif path.suffix == ".css":
            if not data.strip():
                return ["empty stylesheet"]
        elif path.name == OWNER_FILE:  # the database's id and publish count, written whole or not at all
            if not re.fullmatch(rb"[0-9a-f]{16}( [0-9]+)?\n", data):
                return [f"owner mark cut short or garbled: {data[:40]!r}"]
        else:
            return [f"unexpected output file {path.name}"]
    except (etree.XMLSyntaxError, ValueError, yaml.YAMLError) as e:  # UnicodeDecodeError is a ValueError
        return [f"incomplete or invalid: {type(e).__name__}: {str(e)[:200]}"]
    return []


def db_check(path: Path) -> tuple[str, dict[str, tuple[str, str]], list[tuple[str, str, int]]]:
    """(integrity_check result, {post id: (source, content_hash)}, duplicate (source, guid) rows)."""
    con = sqlite3.connect(path, timeout=30)
    try:
        integrity = "; ".join(r[0] for r in con.execute("PRAGMA integrity_check"))
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'posts'").fetchone():
            # Killed after the file was made but before the schema's transaction committed:
            # nothing was stored yet (a post that was would be missing from `seen`).
            return integrity, {}, []
        posts = {r[0]: (r[1], r[2]) for r in con.execute("SELECT id, source, content_hash FROM posts")}
        dups = con.execute(
            "SELECT source, guid, count(*) FROM posts GROUP BY source, guid HAVING count(*) > 1"
        ).fetchall()
    finally:
        con.close()
    return integrity, posts, dups


def per_source_counts(posts: dict[str, tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for source, _ in posts.values():
        counts[source] = counts.get(source, 0) + 1
    return counts


# -- small file systems -------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real, small file system at `path`: writes past `size` fail with ENOSPC."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(
            f"cannot mount a tmpfs at {path} ({done.stderr.decode().strip()}): the disk-full and read-only "
            "tests need root with CAP_SYS_ADMIN, as CI has"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """Bind-mount `path` (a file or a folder) read-only over itself: even root cannot write it."""
    for args in (["mount", "--bind", str(path), str(path)], ["mount", "-o", "remount,bind,ro", str(path)]):
        done = subprocess.run(args, capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", str(path)], capture_output=True)
            pytest.fail(f"cannot bind-mount {path} read-only: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system holding `folder` until `leave` bytes are free; returns the filler."""
    filler = folder / "filler"
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize - leave
    chunk = b"\0" * (1 << 20)
    # unbuffered, and every error swallowed: a concurrent writer may take the last bytes first
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as fh:
        while free > 0:
            free -= fh.write(chunk[: min(len(chunk), free)])
    return filler
