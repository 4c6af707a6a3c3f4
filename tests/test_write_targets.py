"""`export-opml PATH` and `backup PATH` replace PATH atomically, so whatever stood there was
gone: the database, the config, a running daemon's lock file. They refuse the aggregator's own
files, and replace an existing file only with one of its own kind."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.store import Store
from aggregator.targets import looks_like_opml

from .conftest import run_cli

CONFIG = (
    "site:\n  title: T\n  url: https://t.example/\n  output_dir: public\n"
    "jekyll:\n  dir: jekyll\n"
    "categories:\n  - name: A\n    sources:\n      - url: https://a.example/rss\n"
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config and a database (made as `fetch` makes it, without the network)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG, encoding="utf-8")
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
    assert settings.database.exists()
    return cfg


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("command", ["export-opml", "backup"])
def test_the_config_and_the_database_files_are_never_replaced(site: Path, command: str) -> None:
    folder = site.parent
    db = folder / "aggregator.db"
    for tail in ("-wal", "-shm", "-journal", ".lock"):
        Path(f"{db}{tail}").write_bytes(b"")
    (folder / "link.yaml").symlink_to(site)
    os.link(db, folder / "hard.db")
    before = _snapshot(folder)
    tails = ("-wal", "-shm", "-journal", ".lock")
    names = ["feeds.yaml", "aggregator.db", "link.yaml", "hard.db", *(f"aggregator.db{t}" for t in tails)]
    for name in names:
        result = run_cli("--config", str(site), command, str(folder / name))
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert result.stderr.startswith("error: ") and name in result.stderr, result.stderr
        assert "config file in use" in result.stderr or "database" in result.stderr, result.stderr
    assert _snapshot(folder) == before
    assert (folder / "link.yaml").is_symlink()


def test_export_replaces_only_an_opml_or_xml_file(site: Path) -> None:
    folder = site.parent
    notes = folder / "notes.txt"
    notes.write_text("my notes\n")
    result = run_cli("--config", str(site), "export-opml", str(notes))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().startswith(f"error: cannot write {notes}: it exists and is not an OPML")
    assert notes.read_text() == "my notes\n"
    empty = folder / "empty.opml"  # `mktemp`'s: nothing to lose
    empty.write_bytes(b"")
    assert run_cli("--config", str(site), "export-opml", str(empty)).returncode == 0
    assert looks_like_opml(empty.read_bytes())
    old = folder / "old.opml"
    old.write_bytes(b"\xef\xbb\xbf\r\n  <opml version='1.0'><body/></opml>")
    result = run_cli("--config", str(site), "export-opml", str(old))
    assert result.returncode == 0, result.stderr
    assert b"https://a.example/rss" in old.read_bytes()
    assert run_cli("--config", str(site), "export-opml", str(old)).returncode == 0  # our own output
    new = folder / "new.opml"
    assert run_cli("--config", str(site), "export-opml", str(new)).returncode == 0 and new.exists()


def test_backup_replaces_only_an_sqlite_file_and_never_publishes_the_database(site: Path) -> None:
    folder = site.parent
    notes = folder / "notes.txt"
    notes.write_text("my notes\n")
    result = run_cli("--config", str(site), "backup", str(notes))
    assert result.returncode == 1 and "it exists and is not an SQLite database" in result.stderr, result.stderr
    assert notes.read_text() == "my notes\n"
    empty = folder / "tmp.XXXX"  # `backup "$(mktemp)"`: nothing to lose
    empty.write_bytes(b"")
    assert run_cli("--config", str(site), "backup", str(empty)).returncode == 0
    assert empty.read_bytes().startswith(b"SQLite format 3\x00")
    first = folder / "b.db"
    assert run_cli("--config", str(site), "backup", str(first)).returncode == 0
    again = run_cli("--config", str(site), "backup", str(first))  # an older backup is replaced
    assert again.returncode == 0, again.stderr
    assert sqlite3.connect(first).execute("PRAGMA quick_check").fetchone()[0] == "ok"
    for published in ("public", "jekyll"):
        (folder / published).mkdir()
        for target in (folder / published / "x.db", folder / published):
            result = run_cli("--config", str(site), "backup", str(target))
            assert result.returncode == 1 and "which is published" in result.stderr, result.stderr
        assert list((folder / published).iterdir()) == []


def test_what_counts_as_opml() -> None:
    assert looks_like_opml(b'<?xml version="1.0"?><opml/>')
    assert looks_like_opml(b"\xef\xbb\xbf \n<opml>")
    assert looks_like_opml('<?xml version="1.0"?>'.encode("utf-16"))
    assert not looks_like_opml(b"site:\n  title: <opml>")
    assert not looks_like_opml(b"SQLite format 3\x00")
