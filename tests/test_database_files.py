"""An operator's database files: a corrupt file, someone else's SQLite file, a folder where
the database goes, a restored backup. Real `aggregator` commands on real SQLite files, feeds
served from 127.0.0.1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .conftest import run_cli
from .daemon_support import FEEDS, FeedServer, write_config
from .reliability.conftest import read_only


@pytest.fixture
def feeds():
    server = FeedServer()
    yield server
    server.close()


def _limited(cfg: Path) -> Path:
    """The config with keep_per_source, so that `prune` has work (and so opens the database)."""
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("categories:", "defaults:\n  keep_per_source: 3\ncategories:"), encoding="utf-8")
    return cfg


def test_prune_of_a_corrupt_database_is_one_error_line_not_a_traceback(tmp_path, feeds):
    url = feeds.feed("/a", FEEDS[0])
    cfg = _limited(write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}]))
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    db = tmp_path / "aggregator.db"
    with sqlite3.connect(db) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 8
    with open(db, "r+b") as f:  # a few pages in the middle overwritten (a bad sector, a stray dd)
        f.seek(4096 * 5)
        f.write(b"\xa5" * 4096 * 3)
    result = run_cli("--config", str(cfg), "prune")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and str(db) in result.stderr and "malformed" in result.stderr


def test_someone_elses_sqlite_file_is_refused_and_left_as_it_was(tmp_path, feeds):
    """`site.database` pointing at another program's SQLite file (a typo, a shared folder):
    `fetch` and `publish` added the aggregator's tables to it and turned its journal to WAL."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    db = tmp_path / "aggregator.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE accounts (name TEXT)")
        conn.execute("INSERT INTO accounts VALUES ('alice')")
    conn.close()
    before = db.read_bytes()
    for command in ("fetch", "publish", "prune", "status"):
        result = run_cli("--config", str(_limited(cfg)) if command == "prune" else str(cfg), command)
        assert result.returncode == 1, (command, result.stdout)
        assert "Traceback" not in result.stderr, result.stderr
        assert f"{db} is not an aggregator database" in result.stderr, (command, result.stderr)
        assert "accounts" in result.stderr and "site.database" in result.stderr
        assert db.read_bytes() == before, command
    assert not (tmp_path / "aggregator.db-wal").exists()


def test_a_folder_where_the_database_goes_is_named_as_a_folder(tmp_path, feeds):
    """A folder at `site.database` (a `mkdir -p` one level too deep, a volume mounted there):
    `status` said "no database yet: nothing has been fetched" (exit 0) and `backup` "nothing
    fetched yet?", while the daemon's commands said only "unable to open database file"."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    (tmp_path / "aggregator.db").mkdir()
    for args in (["status"], ["backup", str(tmp_path / "copy.db")], ["fetch"], ["publish"]):
        result = run_cli("--config", str(cfg), *args)
        # the config's check says it first, at `site.database`'s line, as any config error (exit 2)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert f"site.database: {tmp_path / 'aggregator.db'} is a folder" in result.stderr, (args, result.stderr)
    assert not list((tmp_path / "aggregator.db").iterdir())  # nothing created in it
    assert not (tmp_path / "copy.db").exists()


def test_a_folder_made_where_the_database_goes_after_the_config_was_read_is_named_as_a_folder(tmp_path):
    """The config's check sees a folder there first; one made after it (a volume mounted while
    the daemon starts) is named by the store, not SQLite's bare "unable to open database file"."""
    from aggregator.store import Store, StoreError

    (tmp_path / "aggregator.db").mkdir()
    with pytest.raises(StoreError, match="it is a folder, not a file"):
        Store(tmp_path / "aggregator.db")


def _rss(*numbers: int) -> bytes:
    items = "".join(
        f"<item><title>Post {n}</title><link>http://example.net/p/{n}</link><guid>http://example.net/p/{n}</guid>"
        f"<description>Body of post {n}</description><pubDate>Tue, 0{n} Jan 2024 10:00:00 GMT</pubDate></item>"
        for n in numbers
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://example.net/</link>'
        f"<description>d</description>{items}</channel></rss>"
    ).encode()


def _post_files(tmp_path: Path) -> set[str]:
    pages = {p.name.removesuffix(".html") for p in (tmp_path / "public" / "posts").rglob("*.html")}
    jekyll = {p.name[11:].removesuffix(".md") for p in (tmp_path / "jekyll" / "_posts").glob("*.md")}
    assert pages == jekyll
    return pages


def test_restoring_an_older_backup_takes_down_the_files_of_posts_it_does_not_know(tmp_path, feeds):
    """The operator's restore: stop, copy an older backup over the database, start again. The
    posts published after that backup which have left their feed since kept their pages and
    Jekyll files for good (Jekyll built them into the blog): nothing recorded them any more."""
    feeds.routes["/a"] = (_rss(1), "application/rss+xml", 0.0)
    url = feeds.url("/a")
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}], "  output_dir: public")
    cfg.write_text(cfg.read_text(encoding="utf-8") + "jekyll:\n  dir: jekyll\n", encoding="utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    backup = tmp_path / "backup.db"
    assert run_cli("--config", str(cfg), "backup", str(backup)).returncode == 0
    first = _post_files(tmp_path)
    feeds.routes["/a"] = (_rss(1, 2, 3), "application/rss+xml", 0.0)
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    assert len(_post_files(tmp_path)) == 3
    feeds.routes["/a"] = (_rss(1, 3), "application/rss+xml", 0.0)  # post 2 leaves the feed
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    with sqlite3.connect(tmp_path / "aggregator.db") as conn:
        ids = dict(conn.execute("SELECT title, id FROM posts").fetchall())
    conn.close()

    (tmp_path / "aggregator.db").write_bytes(backup.read_bytes())  # the restore
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stderr
    assert "restored from an older backup" in result.stderr
    # post 3, still in the feed, is back under its id and file names; post 2's files are gone
    assert _post_files(tmp_path) == first | {ids["Post 3"]}
    assert ids["Post 2"] not in (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
    again = run_cli("--config", str(cfg), "publish")
    assert again.returncode == 0 and "restored" not in again.stderr  # said once
    assert _post_files(tmp_path) == first | {ids["Post 3"]}


def test_an_empty_database_file_is_said_to_be_empty_not_someone_elses(tmp_path, feeds):
    """An empty file at `site.database` (`touch`, a `.recover` that found nothing, a copy cut
    short at 0 bytes): `status` and `backup` called it "not an aggregator database (it has no
    sources table)", while `fetch` takes it as a new database, which it is."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    for make in (lambda db: db.write_bytes(b""), lambda db: sqlite3.connect(db).execute("VACUUM").connection.close()):
        db = tmp_path / "aggregator.db"
        db.unlink(missing_ok=True)
        make(db)
        for args in (["status"], ["backup", str(tmp_path / "copy.db")]):
            result = run_cli("--config", str(cfg), *args)
            assert result.returncode == 1 and "Traceback" not in result.stderr
            assert f"database {db} is empty: nothing has been fetched into it yet" in result.stderr, result.stderr
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    assert run_cli("--config", str(cfg), "status").returncode == 0


def test_a_damaged_database_is_said_to_be_damaged_with_what_to_do(tmp_path, feeds):
    """A database with pages overwritten, cut short, or someone's text file: every command
    gave SQLite's bare "database disk image is malformed" / "file is not a database"."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    db = tmp_path / "aggregator.db"
    good = db.read_bytes()

    def overwritten() -> None:  # every page after the first (the schema's) up to the 8th
        db.write_bytes(good[:4096] + b"\xa5" * 4096 * 7 + good[4096 * 8 :])

    def cut_short() -> None:
        db.write_bytes(good[: len(good) // 2])

    for damage, said in ((overwritten, "the file is damaged"), (cut_short, "the file is damaged"),
                         (lambda: db.write_text("not a database\n" * 100), "not an SQLite database")):  # fmt: skip
        damage()
        broken = db.read_bytes()
        for args in (["status"], ["backup", str(tmp_path / "copy.db")], ["fetch"], ["publish"]):
            result = run_cli("--config", str(cfg), *args)
            assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
            assert str(db) in result.stderr and said in result.stderr, (args, result.stderr)
            assert "restore a backup" in result.stderr
            # nothing written over what may yet be salvaged (the header's change counter may move)
            assert _unheaded(db.read_bytes()) == _unheaded(broken)
        assert not (tmp_path / "copy.db").exists()


def _unheaded(data: bytes) -> bytes:
    """An SQLite file's bytes but its header's change counter and version-valid-for number."""
    return data[:24] + data[28:92] + data[96:]


def test_a_backup_to_a_link_goes_where_the_link_points(tmp_path, feeds):
    """`backup latest.db`, a link to the copy on another disk (`/mnt/nas/aggregator.db`): the
    copy replaced the link with a file beside it, on the local disk, and left the old copy
    where the operator looks for it."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    nas = tmp_path / "nas"
    nas.mkdir()
    (nas / "aggregator.db").write_bytes(b"")  # an earlier copy (empty: replaceable)
    link = tmp_path / "latest.db"
    link.symlink_to(nas / "aggregator.db")
    result = run_cli("--config", str(cfg), "backup", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == nas / "aggregator.db"
    with sqlite3.connect(f"file:{nas / 'aggregator.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] > 0
    conn.close()
    link.unlink()
    link.symlink_to(tmp_path / "aggregator.db")  # a link to the database itself is still refused
    refused = run_cli("--config", str(cfg), "backup", str(link))
    assert refused.returncode == 1 and "is the database itself" in refused.stderr


def test_a_backup_into_a_missing_folder_names_the_folder(tmp_path, feeds):
    """`backup /mnt/nas/aggregator.db` with the disk not mounted: the error named the
    command's temporary file (`/mnt/nas/.aggregator.db.partial`), not the missing folder."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    nas = tmp_path / "nas"
    result = run_cli("--config", str(cfg), "backup", str(nas / "aggregator.db"))
    assert result.returncode == 1
    assert result.stderr == f"error: cannot back up to {nas / 'aggregator.db'}: no such folder: {nas}\n"
    assert not (tmp_path / "nas").exists()


def test_a_newer_versions_database_says_what_to_do(tmp_path, feeds):
    """Going back to an older version after an upgrade: the refusal named the schema but not
    the way out (README: run the newer version, or restore a backup from before the upgrade)."""
    from aggregator.store import SCHEMA_VERSION

    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    db = tmp_path / "aggregator.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for args in (["status"], ["fetch"], ["backup", str(tmp_path / "copy.db")]):
        result = run_cli("--config", str(cfg), *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"database {db} is from a newer aggregator (schema {SCHEMA_VERSION + 1})" in result.stderr
        assert "restore a backup taken before the upgrade" in result.stderr, result.stderr


def test_a_backup_onto_a_read_only_disk_is_one_error_line(tmp_path, feeds):
    """`backup` to a read-only mount (a backup disk mounted ro): a Python traceback, from
    removing a leftover temporary file that could not be there (EROFS, not ENOENT)."""
    url = feeds.feed("/a", FEEDS[0])
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": url, "interval": "1h"}])
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    mounted = tmp_path / "backups"
    mounted.mkdir()
    with read_only(mounted):
        result = run_cli("--config", str(cfg), "backup", str(mounted / "aggregator.db"))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    db, copy = tmp_path / "aggregator.db", mounted / "aggregator.db"
    assert result.stderr.startswith(f"error: cannot back up {db} to {copy}: ")
    assert "read-only file system" in result.stderr and ".partial" not in result.stderr
