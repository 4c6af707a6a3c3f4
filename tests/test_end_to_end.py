"""The whole pipeline, as a user runs it: `aggregator fetch` over real HTTP, real SQLite,
real corpus feeds, then the strict validators and newsboat over what was published."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import feedparser
import pytest

from .conftest import CORPUS, check_feeds, have_newsboat, run_cli

FOLDERS = ("kagi", "speedparser2011", "suites", "zh")


def corpus_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (CORPUS / folder).iterdir() if p.is_file())


def expected_posts(path: Path, url: str) -> int:
    """Distinct entries as feedparser itself sees them: the count our store must match."""
    d = feedparser.parse(path.read_bytes(), response_headers={"content-location": url})
    ids = set()
    for e in d.entries:
        content = (e.get("content") or [{}])[0].get("value") or e.get("summary") or ""
        ids.add(e.get("id", "").strip() or e.get("link") or ("title", e.get("title", ""), content))
    # A feed that gives one guid to entries with different links is identified by link
    # (when every entry has a distinct link), so that none of those entries is lost.
    pairs = {(e.get("id", "").strip() or e.get("link"), e.get("link")) for e in d.entries}
    links = [link for _, link in pairs]
    if all(links) and len(set(links)) == len(pairs) > len({guid for guid, _ in pairs}):
        return len(pairs)
    return len(ids)


def write_config(tmp: Path, server, files: list[Path], extra_sources: list[str] = ()) -> Path:
    lines = [
        "site:",
        "  title: Corpus 语料",
        "  url: https://news.example.com/",
        "  language: zh-CN",
        "  timezone: Asia/Shanghai",
        "  items_per_feed: 50",
        "categories:",
    ]
    for folder in FOLDERS:
        chosen = [f for f in files if f.parent.name == folder]
        if not chosen:
            continue
        lines += [f"  - name: {folder}", "    sources:"]
        lines += [f"      - url: {server.url(f.relative_to(CORPUS))}" for f in chosen]
    if extra_sources:
        lines += ["  - name: broken", "    sources:"] + [f"      - url: {u}" for u in extra_sources]
    cfg = tmp / "feeds.yaml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus_run(corpus_fetch):
    """One cold `aggregator fetch` over the whole corpus (kagi, speedparser2011, suites, zh),
    shared with test_readers (conftest.corpus_fetch)."""
    return corpus_fetch


def test_fetch_stores_every_entry_of_every_feed(corpus_run, corpus_server):
    tmp, files, result = corpus_run
    assert result.returncode in (0, 1), result.stderr
    con = sqlite3.connect(tmp / "aggregator.db")
    stored = dict(con.execute("SELECT source, count(*) FROM posts GROUP BY source"))
    errors = dict(con.execute("SELECT key, last_error FROM sources WHERE last_error IS NOT NULL"))
    mismatches = []
    for f in files:
        url = corpus_server.url(f.relative_to(CORPUS))
        want = expected_posts(f, url)
        got = stored.get(url, 0)
        if want != got:
            mismatches.append(f"{f.name}: parsed {want} entries, stored {got} ({errors.get(url)})")
    assert not mismatches, "\n".join(mismatches)
    assert sum(stored.values()) > 5000  # the corpus really went through, not an empty run
    # Only feeds with no entries at all may be reported as errors, and only as "not a feed".
    assert all(expected_posts(Path(CORPUS / u.split("/", 3)[3]), u) == 0 for u in errors), errors


def test_published_feeds_are_valid_and_readable(corpus_run):
    tmp, _, result = corpus_run
    out = tmp / "public"
    for folder in FOLDERS:
        for ext in ("atom", "rss", "json"):
            assert (out / "category" / f"{folder}.{ext}").stat().st_size > 500
    for ext in ("atom", "rss", "json"):
        assert (out / f"feed.{ext}").is_file()
    checked = check_feeds(out, readers=True)
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert f"{len(FOLDERS) + 1} Atom, {len(FOLDERS) + 1} RSS" in checked.stdout
    if have_newsboat():
        assert "newsboat" not in checked.stdout


def test_refetch_adds_nothing_and_changes_no_file(corpus_run):
    tmp, _, _ = corpus_run
    cfg = tmp / "feeds.yaml"
    con = sqlite3.connect(tmp / "aggregator.db")
    before_posts = con.execute("SELECT count(*), max(first_seen) FROM posts").fetchone()
    before = snapshot(tmp / "public")
    again = run_cli("--config", str(cfg), "fetch", timeout=600)
    assert again.returncode in (0, 1), again.stderr
    assert " 0 new posts; 0 files written" in again.stdout
    assert con.execute("SELECT count(*), max(first_seen) FROM posts").fetchone() == before_posts
    assert snapshot(tmp / "public") == before
