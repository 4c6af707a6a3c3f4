"""Whether `export-opml PATH` and `backup PATH` may write PATH.

Both replace PATH atomically (a temporary file renamed over it), and so, unchecked, replaced
whatever stood there: `export-opml aggregator.db` destroyed the database, `backup feeds.yaml`
the config, and `backup aggregator.db.lock` while a daemon ran put a new inode where the
daemon's flock was, so a second daemon started on the same database. So a PATH that is one of
the files the aggregator itself keeps is refused, and an existing file is only replaced by
one of its own kind: a backup over an SQLite database, an export over an OPML/XML file.
"""

from __future__ import annotations

import os
from pathlib import Path

from .charset import bom_encoding
from .config import Settings
from .lock import fetch_lock_path, lock_path

__all__ = ["SQLITE_MAGIC", "looks_like_opml", "looks_like_sqlite", "own_files", "refusal"]

SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 database file
_DATABASE_FILES = ("-wal", "-shm", "-journal")


def _same(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name one file: the same resolved path (symlinks followed, and for
    a file not there yet), or the same inode (a hard link) when both exist."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: compare what can be
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be looked at)
        return False


def _inside(path: Path, folder: Path | None) -> bool:
    """Whether `path` lies in `folder` (resolved, so `public/../public/x` and symlinks count)."""
    if folder is None:
        return False
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def own_files(settings: Settings) -> list[tuple[Path, str]]:
    """The aggregator's own files, each with what it is: the config in use, the database and
    its `-wal`/`-shm`/`-journal`/`.lock`/`.fetch.lock` files. Never to be replaced, nor served."""
    database = settings.database
    return [
        (settings.path, "the config file in use"),
        (database, "the database itself"),
        *((database.with_name(database.name + t), f"the database itself (its {t} file)") for t in _DATABASE_FILES),
        (lock_path(database), "the database's lock file (a daemon holds it while it runs)"),
        (fetch_lock_path(database), "the database's fetch lock file (`aggregator fetch` holds it while it runs)"),
    ]


def _protected(path: Path, settings: Settings) -> str | None:
    """Why `path` is one of the aggregator's own files, or None."""
    return next((what for own, what in own_files(settings) if _same(path, own)), None)


def _head(path: Path, size: int = 512) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def looks_like_sqlite(head: bytes) -> bool:
    """Whether a file starting with `head` is an SQLite 3 database."""
    return head.startswith(SQLITE_MAGIC)


def looks_like_opml(head: bytes) -> bool:
    """Whether a file starting with `head` is XML (an OPML export among them): after an
    optional byte order mark and whitespace, `<?xml` or `<opml`."""
    text = head.decode(bom_encoding(head) or "utf-8", errors="ignore").lstrip("\ufeff")
    return text.lstrip().lower().startswith(("<?xml", "<opml"))


def refusal(path: Path, settings: Settings, kind: str) -> str | None:
    """Why `path` must not be written by `kind` ("backup" or "opml"), or None when it may.

    Refused: the config, the database and its `-wal`/`-shm`/`-journal`/`.lock` files; for a
    backup also a file in the output or Jekyll folder (those are published, and the database
    holds the source URLs with their secrets); and any existing file that is not of the kind
    the command writes. An empty file holds nothing to lose (`backup "$(mktemp)"`) and may be
    replaced; the database's own lock file, empty until a daemon writes it, is refused above.
    """
    own = _protected(path, settings)
    if own is not None:
        return f"it is {own}"
    if kind == "backup":
        for folder, key in ((settings.output_dir, "site.output_dir"), (settings.jekyll_dir, "jekyll.dir")):
            if _inside(path, folder):
                return f"it is inside {key} ({folder}), which is published: the database holds the sources' secrets"
    if not os.path.lexists(path):
        return None
    what = "an SQLite database (a backup)" if kind == "backup" else "an OPML or XML file"
    if not path.is_file():
        return f"it exists and is not {what}"
    try:
        head = _head(path)
    except OSError as e:
        return f"it exists and cannot be read to check that it is {what}: {e.strerror or e}"
    ours = not head or (looks_like_sqlite(head) if kind == "backup" else looks_like_opml(head))
    return None if ours else f"it exists and is not {what}; remove it first or choose another path"
