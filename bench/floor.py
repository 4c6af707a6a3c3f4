"""The floor of a cold ingest: `python -m bench.floor [CORPUS] [--workdir DIR] [--runs N]`.

The least work any CPython aggregator must do for the cold ingest `python -m bench` times,
with none of our code: start the interpreter and import the native libraries; GET every
feed (urllib3, 16 threads, keep-alive, from the bench's server in its own process); parse
each body with lxml (orjson for JSON Feed) and pull out each entry's id, link, title, date
and content; parse the date; clean the content with nh3; insert the rows into SQLite (WAL,
one transaction per feed, as crash safety needs); write a page per entry and three feeds and
a page per category (`str.format`, no template engine), each to a temporary name and
renamed, then `syncfs`. No deduplication, filters, fingerprints, pinyin, Jekyll, templates
or error handling. Each stage's CPU time is measured in this process (median of --runs); the
sum halved is what two perfectly shared cores would need, against what 20 MB/s allows.
"""

from __future__ import annotations

import argparse
import email.utils
import html
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import nh3
import orjson
import urllib3
from lxml import etree

from .common import DEFAULT_CORPUS, median
from .server import FeedServer, corpus_feeds

ATOM = "{http://www.w3.org/2005/Atom}"
RSS1 = "{http://purl.org/rss/1.0/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_DATE = "{http://purl.org/dc/elements/1.1/}date"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, recover=True)
CATEGORIES = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Entry = tuple[str, str, str, datetime, str]  # id, link, title, date, content


def _text(el: etree._Element | None) -> str:
    return "" if el is None else "".join(el.itertext())


def _date(value: str) -> datetime:
    value = value.strip()
    if not value:
        return EPOCH
    try:
        date = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            date = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return EPOCH
    return date if date.tzinfo else date.replace(tzinfo=UTC)


def _entries_xml(body: bytes) -> list[tuple[str, str, str, str, str]]:
    root = etree.fromstring(body, PARSER)
    out = []
    if root is None:
        return out
    for item in root.iter("item", RSS1 + "item"):
        content = item.find(CONTENT)
        if content is None:
            content = item.find("description")
        if content is None:
            content = item.find(RSS1 + "description")
        link = item.findtext("link") or item.findtext(RSS1 + "link") or ""
        date = item.findtext("pubDate") or item.findtext(DC_DATE) or ""
        out.append((item.findtext("guid") or link, link, _text(item.find("title")), date, _text(content)))
    for entry in root.iter(ATOM + "entry"):
        link = entry.find(ATOM + "link")
        href = "" if link is None else link.get("href", "")
        content = entry.find(ATOM + "content")
        if content is None:
            content = entry.find(ATOM + "summary")
        date = entry.findtext(ATOM + "published") or entry.findtext(ATOM + "updated") or ""
        out.append((entry.findtext(ATOM + "id") or href, href, _text(entry.find(ATOM + "title")), date, _text(content)))
    return out


def _entries_json(body: bytes) -> list[tuple[str, str, str, str, str]]:
    doc = orjson.loads(body)
    out = []
    for item in doc.get("items", []) if isinstance(doc, dict) else []:
        if isinstance(item, dict):
            content = item.get("content_html") or html.escape(str(item.get("content_text") or ""))
            link = str(item.get("url") or "")
            out.append((str(item.get("id") or link), link, str(item.get("title") or ""),
                        str(item.get("date_published") or ""), str(content)))  # fmt: skip
    return out


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """Median CPU and wall seconds of `fn` over `runs` calls, and its last result."""
    cpus, walls, result = [], [], None
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        result = fn()
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)
    return median(cpus), median(walls), result


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><article><h1><a href="{link}">{title}</a></h1><time>{date}</time>{content}</article></main></body></html>
"""
RSS_ITEM = "<item><title>{title}</title><link>{link}</link><guid>{id}</guid><pubDate>{date}</pubDate><description>{content}</description></item>\n"  # noqa: E501
ATOM_ENTRY = '<entry><title>{title}</title><link href="{link}"/><id>{id}</id><updated>{iso}</updated><content type="html">{content}</content></entry>\n'  # noqa: E501


def _write(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _publish(out: Path, posts: list[tuple[int, Entry]]) -> int:
    """A page per post, then per category its page and RSS, Atom and JSON feeds (50 newest)."""
    shutil.rmtree(out, ignore_errors=True)
    files = 0
    by_cat: dict[int, list[Entry]] = {}
    for n, (cat, (pid, link, title, date, content)) in enumerate(posts):
        folder = out / f"cat{cat:03d}" / f"{date:%Y/%m}"
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / f"{n}.html", PAGE.format(title=html.escape(title), link=html.escape(link),
                                                 date=date.isoformat(), content=content))  # fmt: skip
        files += 1
        by_cat.setdefault(cat, []).append((pid, link, title, date, content))
    for cat, entries in by_cat.items():
        entries = sorted(entries, key=lambda e: e[3], reverse=True)[:50]
        esc = [(html.escape(i), html.escape(lk), html.escape(t), d, html.escape(c)) for i, lk, t, d, c in entries]
        rss = "".join(RSS_ITEM.format(id=i, link=lk, title=t, date=email.utils.format_datetime(d), content=c)
                      for i, lk, t, d, c in esc)  # fmt: skip
        atom = "".join(
            ATOM_ENTRY.format(id=i, link=lk, title=t, iso=d.isoformat(), content=c) for i, lk, t, d, c in esc
        )
        feed = orjson.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
            {"id": i, "url": lk, "title": t, "date_published": d.isoformat(), "content_html": c}
            for i, lk, t, d, c in entries]})  # fmt: skip
        base = out / f"cat{cat:03d}"
        _write(base / "rss.xml", f'<?xml version="1.0"?><rss version="2.0"><channel>{rss}</channel></rss>')
        _write(base / "atom.xml", f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">{atom}</feed>')
        _write(base / "feed.json", feed.decode())
        _write(
            base / "index.html", "".join(PAGE.format(title=t, link=lk, date="", content="") for _, lk, t, _, _ in esc)
        )
        files += 4
    fd = os.open(out, os.O_RDONLY)
    try:
        os.syncfs(fd) if hasattr(os, "syncfs") else os.fsync(fd)
    finally:
        os.close(fd)
    return files


def _store(db_path: Path, per_feed: list[list[Entry]]) -> int:
    db_path.unlink(missing_ok=True)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE posts (source INTEGER, id TEXT, link TEXT, title TEXT, date TEXT, content TEXT, "
               "PRIMARY KEY (source, id))")  # fmt: skip
    db.execute("CREATE INDEX posts_link ON posts (link)")
    rows = 0
    for source, entries in enumerate(per_feed):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT OR REPLACE INTO posts VALUES (?, ?, ?, ?, ?, ?)",
                       [(source, i, lk, t, d.isoformat(), c) for i, lk, t, d, c in entries])  # fmt: skip
        db.execute("COMMIT")
        rows += len(entries)
    db.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--workdir", default=None, help="where the database and the files go (default: a temp dir)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    corpus, files, rel = corpus_feeds(args.corpus)
    mb = sum(p.stat().st_size for p in files) / 1e6
    work = Path(args.workdir or f"/tmp/bench-floor-{os.getpid()}") / "floor"
    work.mkdir(parents=True, exist_ok=True)

    starts = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import urllib3, lxml.etree, nh3, orjson, sqlite3, email.utils"],
                       check=True)  # fmt: skip
        starts.append(time.perf_counter() - t)
    start_up = median(starts)

    server = FeedServer(corpus)
    try:
        urls = [server.url("n", 0, r) for r in rel]
        pool = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)

        def fetch_all() -> list[bytes]:
            with ThreadPoolExecutor(16) as ex:
                return list(ex.map(lambda u: pool.request("GET", u).data, urls))

        fetch_cpu, fetch_wall, bodies = _timed(fetch_all, args.runs)
    finally:
        server.close()
    assert isinstance(bodies, list) and len(bodies) == len(files), "not every feed was fetched"

    def parse_all() -> list[list[tuple[str, str, str, str, str]]]:
        out = []
        for path, body in zip(files, bodies, strict=True):
            try:
                out.append(_entries_json(body) if path.suffix == ".json" else _entries_xml(body))
            except (etree.XMLSyntaxError, orjson.JSONDecodeError, ValueError):
                out.append([])
        return out

    parse_cpu, _, raw = _timed(parse_all, args.runs)

    def dates_all() -> list[list[tuple[str, str, str, datetime, str]]]:
        return [[(i, lk, t, _date(d), c) for i, lk, t, d, c in feed] for feed in raw]

    date_cpu, _, dated = _timed(dates_all, args.runs)

    def clean_all() -> list[list[Entry]]:
        return [[(i, lk, t, d, nh3.clean(c)) for i, lk, t, d, c in feed] for feed in dated]

    clean_cpu, _, cleaned = _timed(clean_all, args.runs)
    store_cpu, store_wall, rows = _timed(lambda: _store(work / "floor.db", cleaned), args.runs)
    posts = [(n % CATEGORIES, e) for n, feed in enumerate(cleaned) for e in feed]
    publish_cpu, publish_wall, written = _timed(lambda: _publish(work / "out", posts), args.runs)

    stages = [
        ("start-up and imports (wall)", start_up, start_up),
        (f"GET {len(files)} feeds, 16 threads", fetch_cpu, fetch_wall),
        ("parse (lxml / orjson), fields out", parse_cpu, parse_cpu),
        ("dates", date_cpu, date_cpu),
        ("content through nh3.clean", clean_cpu, clean_cpu),
        (f"store {rows} rows, a transaction per feed", store_cpu, store_wall),
        (f"publish {written} files, syncfs", publish_cpu, publish_wall),
    ]
    print(f"{len(files)} feeds, {mb:.1f} MB, {len(posts)} entries; median CPU (wall) of {args.runs} runs")
    for name, cpu, wall in stages:
        print(f"  {name:<44} {cpu:6.2f} s CPU  ({wall:5.2f} s wall)")
    total = sum(cpu for _, cpu, _ in stages)
    budget = mb / 20
    print(f"  {'sum, one core':<44} {total:6.2f} s CPU")
    print(f"  {'two cores, perfectly shared':<44} {total / 2:6.2f} s      20 MB/s allows {budget:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
