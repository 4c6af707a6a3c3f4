"""Read the store, write every output under the output directory.

Publishers read only the store; each file is written atomically and only when its bytes
changed, so publishing twice with nothing new leaves every file (and its mtime) alone.

Publishing is also cheap when little changed. For each category the store gives a map of
its sources' revisions (a source's revision moves in the transaction that inserts or
changes any of its posts), each with a digest of its title and its own categories; the map
last published is kept in the store with a digest of everything else every page depends on
(site config, the categories' names, templates, version), not of which sources the other
categories have: a source added to one category regenerates that one. A category whose map and
digest are unchanged is skipped without reading a post; a changed one has its feeds and
pages rebuilt, and only its new or changed posts get post pages and Jekyll files. The
home page, the all-posts feeds and `opml.xml` follow whenever any category changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from math import ceil
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Category, Settings
from ..credentials import public_post, public_url, without_secrets
from ..models import Post
from ..processes import forking_is_safe
from ..store import Store
from . import parallel
from .atomic import SyncBatch, Writeback, sweep_once, write_all_if_changed, write_if_changed
from .feeds import FeedMeta, forget_excerpts, render_feeds
from .jekyll import jekyll_filename, render_jekyll
from .opml import OpmlFeed, render_opml
from .site import (
    CategoryLink,
    SiteError,
    SiteRenderer,
    category_page_path,
    post_page_path,
    redirect_page,
    stale_pages,
    strings_for,
)
from .websub import HubPinger, ping_hub

log = logging.getLogger(__name__)

__all__ = [
    "PublishReport",
    "SiteError",
    "all_posts_feed_meta",
    "category_feed_meta",
    "folder_problems",
    "opml_document",
    "publish",
]

CHANGED_BATCH = 200  # changed posts read from the store at a time
READ_ALL = 250  # posts of a category rebuilt from scratch read in one go (more: in batches, for memory)
SYNC_EVERY = 5.0  # seconds of a long publish between making its files durable and recording progress
# publish_state key: since when the all-posts feeds have had no post (a category's is in its state)
ALL_EMPTY_SINCE = "feed:empty-since"
ALL_UPDATED = "feed:updated"  # the updated time the all-posts feed last gave (`_never_back`)
OWNER_FILE = ".aggregator-owner"  # in the output folder: which database published it last (a random id)


@dataclass
class PublishReport:
    written: list[Path] = field(default_factory=list)
    unchanged: int = 0
    removed: list[Path] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # slugs regenerated
    feeds_changed: list[str] = field(default_factory=list)  # absolute URLs of rewritten feeds
    pinged: tuple[int, int] = (0, 0)  # WebSub hub (accepted, failed)
    posts_rendered: int = 0  # post pages rendered (new or changed posts only, unless forced)
    workers: int = 0  # worker processes started to share the categories (`parallel`)
    stopped: bool = False  # asked to stop (`publish`'s `stop`): what is left is redone next time
    shared: int = 0  # categories the workers published
    # to record: (path, post id, source, kind, category, date written)
    post_files: list[tuple[str, str, str, str, str | None, datetime | None]] = field(default_factory=list, repr=False)
    batch: SyncBatch = field(default_factory=SyncBatch, repr=False)  # made durable before state is saved

    def write(self, path: Path, data: bytes) -> bool:
        changed = write_if_changed(path, data, self.batch)
        self.add(path, changed)
        return changed

    def write_all(self, files: dict[Path, bytes]) -> list[bool]:
        """Files replaced together or not at all (`write_all_if_changed`)."""
        changed = write_all_if_changed(files, self.batch)
        for path, one in zip(files, changed, strict=True):
            self.add(path, one)
        return changed

    def add(self, path: Path, changed: bool) -> None:
        if changed:
            self.written.append(path)
        else:
            self.unchanged += 1

    def merge(self, other: PublishReport) -> None:
        """Take in what a worker did (its files become durable with this run's)."""
        self.written += other.written
        self.unchanged += other.unchanged
        self.removed += other.removed
        self.categories += other.categories
        self.feeds_changed += other.feeds_changed
        self.posts_rendered += other.posts_rendered
        self.post_files += other.post_files
        self.batch.files += other.written  # what it wrote is made durable with this run's files


def publish(
    settings: Settings,
    store: Store,
    categories: Iterable[str] | None = None,
    force: bool = False,
    workers: int | None = None,
    pinger: HubPinger | None = None,
    stop: Callable[[], bool] | None = None,
) -> PublishReport:
    """Regenerate the outputs of `categories` (all when None) that changed since last time,
    then the home page and all-posts outputs if anything did. `force` rebuilds everything
    (files whose bytes come out the same are still left untouched).

    A publish with many posts to render shares its categories with worker processes
    (`parallel`): `workers` of them when given (0: none), else one per spare core when
    there are at least PARALLEL_POSTS posts to render.

    The WebSub hub (`site.websub_hub`) is told of the changed feeds once the files are
    written and the publish mark is cleared: by `pinger` when given (the daemon's thread;
    this returns at once and `pinged` stays (0, 0)), else here, within `ping_hub`'s
    deadline for the whole batch.

    `stop`, asked between categories and between post pages, ends the publish there when it
    says so (the daemon asked to stop, past its grace): every file is written atomically,
    the categories done are recorded, and those not done (and the home page, all-posts
    feeds, take-downs) are redone by the next publish; `stopped` says so."""
    problems = folder_problems(settings)
    if problems:  # else the error named a temporary file deep inside, or the output folder when it was jekyll's
        raise NotADirectoryError("; ".join(f"{'.'.join(key)}: {problem}" for key, problem in problems))
    with store.publishing():
        report = _publish(settings, store, categories, force, workers, stop)
    hub = settings.site.websub_hub
    if hub and report.feeds_changed:
        if pinger is not None:
            pinger.add(hub, report.feeds_changed)
        else:
            report.pinged = ping_hub(hub, report.feeds_changed)
    return report


def folder_problems(settings: Settings) -> list[tuple[tuple[str, ...], str]]:
    """(key path, why) for each output folder that a file stands in the way of (at it, or
    at a folder above it): nothing could be written there until it is moved away.

    Every folder the publisher writes into is looked at, not only the roots: a file at
    `public/category` passed `check`, and the publish then failed on a temporary file deep
    inside it, after claiming the folder (`.aggregator-owner`). That is the output folder,
    `category/`, each category's `category/<slug>/page/`, `posts/` and the year and month
    folders already in it (one listing each: the post pages in them are never read), and
    Jekyll's `_posts/`. Each path is looked at once, however many folders lie under it."""
    out = settings.output_dir
    key = ("site", "output_dir")
    folders = [(key, out), (key, out / "category"), (key, out / POSTS)]
    folders += [(key, out / "category" / cat.slug / "page") for cat in settings.categories]
    folders += [(key, dated) for dated in _dated_folders(out / POSTS)]
    if settings.jekyll_dir is not None:
        folders.append((("jekyll", "dir"), settings.jekyll_dir / "_posts"))
    problems = []
    seen: set[Path] = set()  # a folder, or a file already reported: what lies under it is settled
    for key, folder in folders:
        for p in (folder, *folder.parents):
            if p in seen:
                break
            try:
                if p.is_dir():
                    seen.add(p)
                    break
                if p.exists() or p.is_symlink():
                    seen.add(p)
                    what = "a file" if p.exists() else "a link to nothing"
                    fix = f"move it away, or set {'.'.join(key)} to another folder"
                    problems.append((key, f"{p} is {what}, not a folder: {fix}"))
                    break
            except OSError:  # a folder above that we may not enter: the write says so, with its own error
                break
    return problems


POSTS = "posts"  # the post pages' folder: posts/<yyyy>/<mm>/<id>.html (`post_page_path`)


def _dated_folders(posts: Path) -> list[Path]:
    """The entries of `posts/` named as a year, and of each year's folder named as a month,
    that are not folders (a file named `2026` stops every page of that year): one listing
    of `posts/` and one of each year, never of a month, which holds the pages."""
    found = []
    try:
        years = sorted((e for e in os.scandir(posts) if e.name.isdigit() and len(e.name) == 4), key=lambda e: e.name)
    except OSError:  # none yet (or not a folder: said of `posts/` itself)
        return []
    for year in years:
        if not year.is_dir():
            found.append(Path(year.path))
            continue
        try:
            months = sorted(os.scandir(year.path), key=lambda e: e.name)
        except OSError:
            continue
        found += [Path(m.path) for m in months if m.name.isdigit() and len(m.name) == 2 and not m.is_dir()]
    return found


# publish state: the take-downs a stopped publish owes ("*": all of them, as a rebuild does;
# else a JSON list of source keys), done and forgotten by the next publish that is not stopped
OWED_KEY = "takedown"


def _owed_take_downs(store: Store) -> set[str] | bool | None:
    """What a stopped publish left to take down: True for everything, the sources, or None."""
    value = store.publish_state(OWED_KEY)
    if value is None:
        return None
    if value == "*":
        return True
    try:
        keys = json.loads(value)
    except ValueError:
        return True  # not ours: check everything
    return {k for k in keys if isinstance(k, str)} if isinstance(keys, list) else True


def _changed_sources(settings: Settings, plans: dict[str, _Plan], slugs: Iterable[str]) -> set[str]:
    """The sources of the categories `slugs` now and those their last published state had."""
    slugs = set(slugs)
    changed = {key for cat in settings.categories if cat.slug in slugs for key in cat.source_keys}
    for slug in slugs:
        old = plans[slug].old if slug in plans else None
        if isinstance(old, dict) and isinstance(old.get("sources"), dict):
            changed.update(old["sources"])
    return changed


def _owing(
    store: Store, settings: Settings, plans: dict[str, _Plan], context: str, force: bool, slugs: Iterable[str]
) -> tuple[str, str]:
    """The `OWED_KEY` state to record with the states of the categories `slugs`: what was
    owed already, and their take-downs (all of them after a forced or context-changing
    rebuild, which may have removed a category)."""
    slugs = set(slugs)
    owed = _owed_take_downs(store)
    if force or owed is True or any(plans[s].old_context != context for s in slugs if s in plans):
        return OWED_KEY, "*"
    sources = _changed_sources(settings, plans, slugs) | (owed or set())
    return OWED_KEY, json.dumps(sorted(sources), ensure_ascii=False)


class _Stopped(Exception):
    """The publish was asked to stop (`publish`'s `stop`)."""


def _publish(
    settings: Settings,
    store: Store,
    categories: Iterable[str] | None,
    force: bool,
    workers: int | None,
    stop: Callable[[], bool] | None = None,
) -> PublishReport:
    report = PublishReport()
    other, ahead = _claim_output(settings, store)
    if other:
        # Every category, not only those asked for (the daemon's publish after a poll): the
        # other database may have overwritten any of them, and once the folder is claimed
        # back nothing would tell a later publish that those left unchanged are not ours.
        force, categories = True, None
    restored = ahead > store.publish_serial()
    if restored:
        _take_down_unknown(settings, store, report)
        force, categories = True, None
    unrecorded = store.unrecorded_files()
    if unrecorded:
        # Upgraded from a version that kept no record of its files: what it published is
        # recorded as it stands (a Jekyll file keeps its name and URL; a page left under an
        # older date becomes a redirect), and every post is published, so that each file is.
        adopted = store.adopt_post_files(_files_on_disk(settings))
        log.info("found %d post pages and Jekyll files an older version published", adopted)
        force, categories = True, None
    for root in (settings.output_dir, settings.jekyll_dir):
        if root is not None:
            for leftover in sweep_once(root):
                log.info("removed %s, left by a writer that was killed", leftover)
    site = SiteRenderer(settings)
    context = _context(settings, site)
    members = _memberships(settings)
    wanted = set(categories) if categories is not None else None
    known = store.publish_state_keys("category:")  # before this run records the new ones
    plans = {
        cat.slug: plan
        for cat in settings.categories
        if (wanted is None or cat.slug in wanted) and (plan := _plan(settings, store, context, cat, force, members))
    }
    todo = [cat for cat in settings.categories if cat.slug in plans]  # the categories to regenerate
    done: set[str] = set()  # post ids whose page was rendered in this run
    states: list[tuple[str, str]] = []  # publish state to record once the files are durable
    finished: set[str] = set()  # the categories this process published in full

    checkpoint = time.monotonic() + SYNC_EVERY

    def one(cat: Category) -> None:
        nonlocal checkpoint
        if stop is not None and stop():
            raise _Stopped
        states.append(_publish_category(settings, store, site, context, cat, plans[cat.slug], report, done, stop))
        finished.add(cat.slug)
        # A long run records its progress as it goes, so that one killed redoes little; by
        # time, not files: a syncfs costs ~0.1 s, and at most one per few seconds of work.
        if time.monotonic() >= checkpoint:
            # the categories' states with the take-downs they owe: a run killed after this
            # point would otherwise leave those for good, as a stopped one did
            states.insert(0, _owing(store, settings, plans, context, force, finished))
            _record(store, report, states)
            checkpoint = time.monotonic() + SYNC_EVERY

    fork = forking_is_safe()
    count = _worker_count(store, todo, plans, workers, fork)
    try:
        if count:
            _publish_shared(settings, store, site, context, members, todo, force, count, fork, report, states, one)
        else:
            for cat in todo:
                one(cat)
    except _Stopped:
        report.stopped = True
        left = [cat.slug for cat in todo if cat.slug not in finished]
        log.info("publish stopped: %d of %d categories left for the next publish", len(left), len(todo))
        if force:  # a rebuild of them all (forced, or another database's folder): left as they are, they read as done
            for slug in left:
                store.forget_publish_state(f"category:{slug}")
    site_state, home = store.publish_state("site"), _site_digest(settings, context)
    owed = _owed_take_downs(store)
    if report.stopped:
        # the home page, all-posts feeds and take-downs come with the categories left; the
        # take-downs of those done are owed, or the next publish, finding them done, would
        # leave their filtered-out or hidden posts' pages online for good
        if report.categories:
            states.insert(0, _owing(store, settings, plans, context, force, report.categories))
    elif force or report.categories or site_state != home or not (settings.output_dir / "index.html").is_file():
        _publish_all(settings, store, site, report)
        states.append(("site", home))
    if (states or owed is not None) and not report.stopped:
        # Before the last states are recorded: a run killed in between redoes something
        # next time, and so takes down what it had not.
        _record(store, report, [])
        everything = force or owed is True or len(report.categories) == len(settings.categories)
        # the sources of the regenerated categories, and those they had: one taken out of the
        # config (or out of a category) leaves its posts' files to take down; and those a
        # stopped publish left (`OWED_KEY`)
        changed = _changed_sources(settings, plans, report.categories) | (owed if isinstance(owed, set) else set())
        _redirect_moved(settings, store, report, None if everything else changed)
        _take_down(settings, store, report, None if everything else changed)
        if everything:  # a category removed from the config changes the context: all are regenerated
            _take_down_categories(settings, store, report, known)
        if owed is not None:
            _record(store, report, [])  # the take-downs durable before they are no longer owed
            store.forget_publish_state(OWED_KEY)
    elif not report.stopped:
        # A publish killed after recording a post's new page, its category's state with it
        # (a long publish records as it goes), left the old page as it was: redirected now.
        _redirect_moved(settings, store, report, set())
    recorded = bool(report.written or report.removed) or restored  # the folder changed
    _record(store, report, states)
    if unrecorded and not report.stopped:  # else the next publish looks for them again, and rebuilds all
        store.files_recorded()
    if recorded:  # the database first: the folder's mark is ahead of it only after a restore
        serial = store.next_publish_serial(ahead)
        write_if_changed(settings.output_dir / OWNER_FILE, f"{store.publish_state('owner')} {serial}\n".encode())
    forget_excerpts()
    return report


def _take_down_unknown(settings: Settings, store: Store, report: PublishReport) -> None:
    """Delete the post pages and Jekyll files of posts this database has no trace of, found
    when the output folder was published last by a later copy of it (`_claim_output`): the
    database was restored from an older backup. The later copy's posts that left their feed
    since kept their pages and Jekyll files for good (Jekyll built them into the site), as
    nothing recorded them. Those still in their feed come back at their next poll, with the
    same ids and file names."""
    files = _files_on_disk(settings)
    unknown = store.unknown_posts(post for _, post, _, _ in files)
    if not unknown:
        return
    log.warning(
        "%s was published by a later copy of the database %s (restored from an older backup? or a copy of it "
        "publishing into the same folder): "
        "taking down the pages and Jekyll files of %d posts it does not know, and publishing everything again",
        settings.output_dir,
        settings.database,
        len(unknown),
    )
    for name, post, kind, _ in files:
        if post not in unknown:
            continue
        root = settings.jekyll_dir if kind == "jekyll" else settings.output_dir
        assert root is not None  # only found where it is configured
        _remove_post_file(
            root, name, report, "its post is not in this database", "of a post this database does not know"
        )


def _remove_post_file(root: Path, name: str, report: PublishReport, why: str, failed: str) -> bool:
    """Delete a post's page or Jekyll file (and the folders it leaves empty), saying `why`;
    whether it is gone (a file already missing is). One that cannot be deleted is logged,
    `failed` saying whose it was, and left for the next publish."""
    path = root / name
    try:
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError as e:
        log.warning("could not remove %s, %s: %s", path, failed, e)
        return False
    report.removed.append(path)
    log.info("removed %s: %s", path, why)
    _remove_empty_folders(path.parent, root)
    return True


_JEKYLL_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})-([0-9a-f]{16})\.md")
_PAGE_NAME = re.compile(r"([0-9a-f]{16})\.html")
_FRONT_DATE = re.compile(r"^date: (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4})$", re.M)


def _files_on_disk(settings: Settings) -> list[tuple[str, str, str, datetime | None]]:
    """(path, post id, kind, date written) of the post pages (`posts/<yyyy>/<mm>/<id>.html`)
    and Jekyll files (`_posts/<yyyy-mm-dd>-<id>.md`, its date read from its front matter) in
    the output folders, as `Store.adopt_post_files` takes them."""
    found: list[tuple[str, str, str, datetime | None]] = []
    for folder in _dated_folders_in(settings.output_dir / POSTS):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if (m := _PAGE_NAME.fullmatch(entry.name)) and entry.is_file(follow_symlinks=False):
                    path = Path(entry.path).relative_to(settings.output_dir).as_posix()
                    found.append((path, m[1], "page", None))
    if settings.jekyll_dir is not None:
        with contextlib.suppress(OSError):
            for entry in os.scandir(settings.jekyll_dir / "_posts"):
                if not (m := _JEKYLL_NAME.fullmatch(entry.name)) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    with open(entry.path, encoding="utf-8", errors="replace") as f:
                        head = f.read(4096)
                except OSError:
                    continue
                date = _FRONT_DATE.search(head)
                dated = datetime.strptime(date[1], "%Y-%m-%d %H:%M:%S %z") if date else None
                found.append((f"_posts/{entry.name}", m[2], "jekyll", dated))
    return found


def _dated_folders_in(posts: Path) -> list[str]:
    """The month folders of `posts/` (`<yyyy>/<mm>`)."""
    months = []
    with contextlib.suppress(OSError):
        for year in os.scandir(posts):
            if year.name.isdigit() and len(year.name) == 4 and year.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    months += [
                        m.path for m in os.scandir(year.path)
                        if m.name.isdigit() and len(m.name) == 2 and m.is_dir(follow_symlinks=False)
                    ]  # fmt: skip
    return months


def _claim_output(settings: Settings, store: Store) -> tuple[bool, int]:
    """Mark the output folder as this database's: (whether another database published it
    last, the serial of the publish that marked it: see `Store.next_publish_serial`).

    Two configs with one `output_dir` (a test config beside the real one) overwrote each
    other's home page, all-posts feeds and OPML, silently, and a publish that found its own
    categories unchanged left the other's files in place. The folder now names its last
    publisher by a random id kept in the database (a backup or a moved database keeps it):
    a publish that finds another id says so and rebuilds everything it publishes. The mark
    also holds how many publishes that database had made: one ahead of the database's own
    count is a later copy of it (the database was restored from an older backup).
    """
    mine = store.publish_state("owner") or store.publish_state_or("owner", secrets.token_hex(8))
    marker = settings.output_dir / OWNER_FILE
    try:
        theirs, _, serial = marker.read_text(encoding="ascii").strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        theirs, serial = "", ""
    if theirs == mine:
        return False, int(serial) if serial.isdigit() else 0
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_if_changed(marker, f"{mine} {store.publish_serial()}\n".encode())
    if not theirs:  # a new folder, or one published by a version before the marker
        return False, 0
    log.warning(
        "%s was last published from another database (%s): two configs publishing into one folder "
        "overwrite each other's home page, all-posts feeds and OPML; give each its own site.output_dir "
        "(after starting a database afresh, this is said once). Publishing everything again",
        settings.output_dir,
        theirs,
    )
    return True, 0


PARALLEL_POSTS = (500, 3000)  # posts to render before workers pay: forked, spawned (~0.4 s to start)


def _worker_count(
    store: Store, todo: list[Category], plans: dict[str, _Plan], requested: int | None, fork: bool
) -> int:
    """Worker processes for this publish: `requested` if given, else none unless enough
    posts are rebuilt from scratch (a daemon's usual publish, a few changed posts, takes
    the publisher alone milliseconds)."""
    if len(todo) < 2 or len(todo) > parallel.MAX_TASKS:
        return 0
    count = min(parallel.worker_count(requested), len(todo) - 1)
    if count == 0 or requested:
        return count
    fresh = sum(store.count_category_posts(cat.slug) for cat in todo if plans[cat.slug].fresh)
    return count if fresh >= PARALLEL_POSTS[0 if fork else 1] else 0


@dataclass
class _Job:
    """A worker's share of a publish: what it needs to publish any of `slugs`."""

    settings: Settings
    context: str
    force: bool
    slugs: list[str]
    site: SiteRenderer | None = None  # a forked worker's, templates compiled; a spawned one builds its own
    members: dict[str, str] | None = None  # `_memberships(settings)`, worked out once by the publisher


_WORKER: dict[str, Any] = {}  # a worker process's store, renderer and rendered post ids, kept across its tasks


def _publish_task(job: _Job, index: int) -> tuple[tuple[str, str] | None, PublishReport]:
    """Publish category `job.slugs[index]` in a worker; the publisher records the result."""
    if _WORKER.get("job") is not job or _WORKER.get("pid") != os.getpid():  # this worker's first task
        _WORKER.update(job=job, pid=os.getpid(), store=Store(job.settings.database, reader=True), done=set(),
                       site=job.site or SiteRenderer(job.settings))  # fmt: skip
    settings = job.settings
    cat = settings.category(job.slugs[index])
    assert cat is not None  # the slugs are the publisher's, from these settings
    report = PublishReport()
    store, site, done = _WORKER["store"], _WORKER["site"], _WORKER["done"]
    # as of now: it may have been published meanwhile
    plan = _plan(settings, store, job.context, cat, job.force, job.members)
    state = None if plan is None else _publish_category(settings, store, site, job.context, cat, plan, report, done)
    report.batch.files = []  # the same paths as report.written: sent once, merged into the publisher's batch
    return state, report


def _publish_shared(
    settings: Settings,
    store: Store,
    site: SiteRenderer,
    context: str,
    members: dict[str, str],
    todo: list[Category],
    force: bool,
    count: int,
    fork: bool,
    report: PublishReport,
    states: list[tuple[str, str]],
    one: Callable[[Category], None],
) -> None:
    """Publish `todo` with `count` workers taking categories from the same queue; whatever a
    worker did not report done (it died, or met an error) is done here afterwards."""
    site.load()  # a broken template fails here, once, not in every worker
    job = _Job(settings, context, force, [c.slug for c in todo], site if fork else None, members)
    done: set[int] = set()  # tasks done, here or by a worker
    try:
        with store.closed_for_fork() if fork else contextlib.nullcontext():
            pool = parallel.Pool(_publish_task, job, len(todo), count, fork)
    except OSError as e:
        log.warning("publishing on one process: %s", e)
    else:
        # The writeback thread starts after the fork: a child forked beside a thread could
        # inherit a lock that thread held.
        with pool, Writeback(settings.output_dir).running():
            for index in pool:
                one(todo[index])
                done.add(index)
        for task in pool.done:
            state, part = task.result
            report.merge(part)
            if state is not None:
                states.append(state)
            done.add(task.task)
        report.workers += pool.started
        report.shared += len(pool.done)
        log.info(
            "%d categories published by %d processes (%s workers): %d by the workers",
            len(todo), pool.started + 1, "forked" if fork else "spawned", len(pool.done),
        )  # fmt: skip
        for failure in pool.failures:
            log.warning("%s: the publisher does its categories itself", failure)
        if pool.failures:  # a worker may have written files it never reported: flush them with the rest
            report.batch.folders += [settings.output_dir, *([settings.jekyll_dir] if settings.jekyll_dir else [])]
    for index in range(len(todo)):
        if index not in done:
            one(todo[index])


def _record(store: Store, report: PublishReport, states: list[tuple[str, str]]) -> None:
    """Make the files written so far durable (one syncfs for all of them: one per category
    cost more than rendering a small category), then record the states they stand for."""
    report.batch.commit()
    store.record_post_files(report.post_files)
    report.post_files.clear()
    for key, value in states:
        store.set_publish_state(key, value)
    states.clear()


def _redirect_moved(settings: Settings, store: Store, report: PublishReport, sources: set[str] | None) -> None:
    """Turn the pages that re-dated posts left under their old dates into redirects to their
    pages now, and point the redirects already made at them (a post re-dated twice sends
    its first URL straight to its last; a changed title or site URL is followed).

    The page path holds the post's month: when a source corrects an entry's date, the page
    moves, and the old one was deleted, so its public URL (a link-less post's feed item
    links there) answered 404. Each stub replaces the old page atomically, so the path
    always serves one or the other; it is recorded as a redirect only once it is durable,
    and until then the next publish redoes it. A redirect goes when its post is taken down
    (`_take_down`), as its page does.
    """
    made: list[tuple[str, str]] = []
    s = settings.site
    for old, post_id, title, new in store.moved_pages(sources):
        if old.startswith("/") or ".." in Path(old).parts:
            continue  # not a path we wrote
        try:
            report.write(settings.output_dir / old, redirect_page(s.url, s.language, title, old, new))
        except OSError as e:
            log.warning("could not redirect %s to %s, where its post moved: %s", old, new, e)
            continue
        made.append((old, post_id))
    report.batch.commit()
    store.record_redirects(made)


def _take_down(settings: Settings, store: Store, report: PublishReport, sources: set[str] | None) -> None:
    """Delete the pages, redirects and Jekyll files of posts no longer published (pruned,
    filtered out, hidden as a duplicate, their source gone from the config) and Jekyll files
    left under a post's old date: otherwise they would stay online, reachable by their old
    links, for good. (A page left under an old date is a redirect: `_redirect_moved`.)

    Only the files of `sources` are looked at (all when None): what makes a post's file
    stale also moves its source's revision, so only regenerated categories can have any,
    and the daemon's small publishes need not check every file ever published. Paths are
    kept relative to the folders they were written in and are only ever deleted under the
    folders configured now, so a copy of a deployment (or a moved output folder) never
    touches another's files. A file that cannot be deleted is logged and tried again next
    time; it does not stop the publish.
    """
    roots = {"page": settings.output_dir, "redirect": settings.output_dir, "jekyll": settings.jekyll_dir}
    done: list[str] = []
    for kind, name in store.stale_post_files(sources):
        root = roots.get(kind)
        if name.startswith("/") or ".." in Path(name).parts or kind not in roots:
            done.append(name)  # not a path we wrote: not ours to delete
            continue
        if root is None:  # Jekyll turned off: its file is taken down once it is back on
            continue
        if _remove_post_file(
            root, name, report, "its post is no longer published there", "whose post is no longer published"
        ):
            done.append(name)
    store.forget_post_files(done)


def _take_down_categories(settings: Settings, store: Store, report: PublishReport, known: list[str]) -> None:
    """Delete the pages and feeds of categories no longer configured (removed, or renamed to
    another slug): left in place they would be served, frozen, for good, and readers
    subscribed to them would never learn that nothing more is coming. Only files of the
    shapes the publisher writes, and only under the output folder configured now.

    A category renamed without a `slug:` gets another slug, so its subscribers' feed URLs
    answer 404: when one goes while another first appears (`known`: the slugs published
    before), a warning says how to keep them."""
    current = {cat.slug for cat in settings.categories}
    appeared = sorted(current - {key.removeprefix("category:") for key in known})
    out = settings.output_dir
    for key in store.publish_state_keys("category:"):
        slug = key.removeprefix("category:")
        if slug in current or not slug or "/" in slug or slug in (".", ".."):
            continue
        if appeared:
            log.warning(
                "the category %r is no longer configured: its pages and feeds are taken down, and its feed "
                "URLs (%scategory/%s.atom, .rss, .json) answer 404 to its subscribers; if it was renamed to "
                "%s, give that category `slug: %s` to keep them",
                slug,
                settings.site.url,
                slug,
                " or ".join(repr(a) for a in appeared),
                slug,
            )
        folder = out / "category" / slug
        files = [folder.with_name(f"{slug}.{ext}") for ext in ("html", "atom", "rss", "json")]
        if not (folder.is_symlink() or (folder / "page").is_symlink()):  # a link to a live category: not ours
            files += stale_pages(folder / "page", 0)
        failed = False
        for path in files:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("could not remove %s, of the category %r no longer configured: %s", path, slug, e)
                failed = True
                continue
            report.removed.append(path)
            log.info("removed %s: the category %r is no longer configured", path, slug)
        _remove_empty_folders(folder / "page", out)
        if not failed:  # else tried again next time
            store.forget_publish_state(key)


def _remove_empty_folders(folder: Path, root: Path) -> None:
    """Remove `folder` and its parents up to (not including) `root` while they are empty:
    a month whose last post was taken down leaves no empty `posts/<yyyy>/<mm>/` behind."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or not ours to remove): stop here
            return
        folder = folder.parent


def _context(settings: Settings, site: SiteRenderer) -> str:
    """Digest of everything besides posts and sources that every page depends on: when it
    changes, all of them are rebuilt.

    Not which sources each category has: that was here, and adding one source to one
    category re-rendered every page of the site (11 minutes at 10,000 sources) to write
    none of them. A category's sources are its own state's (`_plan`: its map of them); a
    source's categories are in its entry of that map (`_memberships`), so that its posts'
    pages, which link them, follow; the home page and OPML have their own digest
    (`_site_digest`). What is left is what every page shows: the site, the categories'
    names, slugs, tags and order (a post page links its categories by name), templates."""
    jekyll = settings.config.jekyll
    data: dict[str, Any] = {
        "version": __version__,
        # (not `site.image`, shown by the all-posts feeds only: in `_site_digest`)
        "site": settings.site.model_dump(mode="json", exclude={"image"}),
        # (not a category's `image:`, shown by its own RSS only: in its state, `_plan`)
        "categories": [[c.name, c.slug, list(c.tags)] for c in settings.categories],
        "jekyll": [jekyll.model_dump(mode="json"), str(settings.jekyll_dir)] if jekyll else None,
        "output": str(settings.output_dir),
        "templates": site.fingerprint,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _site_digest(settings: Settings, context: str) -> str:
    """Digest of what the site-wide files (home page, all-posts feeds, OPML) depend on besides
    posts and the store's source titles: `context`, the sources of each category in config
    order with their configured names, which the OPML lists, and `site.image`, the feeds'
    cover. (A source's title, cover or posts changing, or a category's `image:`, regenerates
    its categories, which brings these files along.)"""
    data = [
        context,
        [[c.slug, list(c.source_keys)] for c in settings.categories],
        [[s.key, s.name] for s in settings.sources],
    ]
    if settings.site.image:  # the all-posts feeds' cover (only when set: digests without one stay as they were)
        data.append(settings.site.image)
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def _memberships(settings: Settings) -> dict[str, str]:
    """Per source, a digest of its categories (in config order: its Jekyll file goes with the
    first that shows a post) and those where it keeps duplicates: what its posts' pages
    show of the config beyond `_context`. Part of its entry in each category's map, so that
    a source joining or leaving a category has its posts' pages redone in all of its
    categories, and only there."""
    return {
        s.key: hashlib.sha1(json.dumps([s.categories, sorted(s.keep_duplicates)]).encode()).hexdigest()[:8]
        for s in settings.sources
    }


def category_feed_meta(settings: Settings, cat: Category, covers: Sequence[str | None] = ()) -> FeedMeta:
    """What a category's feeds say about themselves (`category/<slug>.atom|.rss|.json`).
    Its cover is its `image:`, else its sources' (`covers`, `Store.category_covers`) when
    every one gives the same: a podcast's category shows the show's, two shows' none."""
    s = settings.site
    shared = set(covers)
    return FeedMeta(
        title=cat.name,
        site_url=s.url,
        self_base=f"{s.url}category/{cat.slug}",
        alternate=f"{s.url}{category_page_path(cat.slug)}",
        language=s.language,
        description=" ".join(cat.tags) or f"{cat.name} · {s.title}",
        site_title=s.title,
        websub_hub=announced_hub(s.websub_hub),
        untitled=strings_for(s.language)["untitled"],
        image=cat.image or (shared.pop() if len(shared) == 1 else None),
    )


def announced_hub(hub: str | None) -> str | None:
    """The hub URL as every feed announces it: without the `user:password@` or `?token=`
    that the pings may need (a private hub's), which were published in every feed."""
    return public_url(without_secrets(hub)) if hub else None


def all_posts_feed_meta(settings: Settings, covers: Mapping[str, Sequence[str | None]] | None = None) -> FeedMeta:
    """What the all-posts feeds say about themselves (`feed.atom|.rss|.json`). Its cover is
    `site.image`, else the one every category has (`covers`: each category's sources' covers,
    `Store.covers_by_category`; a category's own as `category_feed_meta` chooses it)."""
    s = settings.site
    image = s.image
    if image is None and covers is not None and settings.categories:
        shared = {category_feed_meta(settings, c, covers.get(c.slug, ())).image for c in settings.categories}
        image = shared.pop() if len(shared) == 1 else None
    return FeedMeta(
        title=s.title,
        site_url=s.url,
        self_base=f"{s.url}feed",
        alternate=s.url,
        language=s.language,
        description=s.description or s.title,
        site_title=s.title,
        websub_hub=announced_hub(s.websub_hub),
        untitled=strings_for(s.language)["untitled"],
        image=image,
    )


def _feed_files(base: Path, meta: FeedMeta, posts: list[Post], report: PublishReport) -> None:
    rendered = render_feeds(meta, posts)
    files = {base.with_name(f"{base.name}.{ext}"): data for ext, data in rendered.items()}
    for ext, changed in zip(rendered, report.write_all(files), strict=True):
        if changed:
            report.feeds_changed.append(f"{meta.self_base}.{ext}")


def _write(path: Path, data: bytes, report: PublishReport) -> None:
    report.write(path, data)


@dataclass(frozen=True)
class _Plan:
    """Why and how a category is regenerated."""

    revisions: dict[str, list[Any]]  # its sources' revisions now, read before any post
    old: Any  # the state last published (a dict, or None)
    fresh: bool  # from scratch: every post's page rewritten

    @property
    def old_context(self) -> Any:
        """The `_context` the category was last published with (None when never)."""
        return self.old.get("context") if isinstance(self.old, dict) else None


def _plan(
    settings: Settings,
    store: Store,
    context: str,
    cat: Category,
    force: bool,
    members: dict[str, str] | None = None,
) -> _Plan | None:
    """How to regenerate the category, or None when nothing it shows changed: its sources
    (which, their revisions, titles, and their own categories: `members`, worked out from
    `settings` when not given) and `context`."""
    if members is None:
        members = _memberships(settings)
    # Read the revisions before any post: a fetch landing meanwhile leaves the state behind
    # what was written, so the next run redoes it rather than missing it.
    revisions = {k: [r, f"{d}.{members.get(k, '')}"] for k, (r, d) in store.category_revisions(cat.slug).items()}
    try:
        old = json.loads(store.publish_state(f"category:{cat.slug}") or "null")
    except ValueError:
        old = None
    fresh = (
        force
        or not isinstance(old, dict)
        or old.get("context") != context
        or not (settings.output_dir / category_page_path(cat.slug)).is_file()
    )
    # a changed `image:` (its RSS's cover, which no other output shows) regenerates the category
    # alone, not from scratch: in the site's context, it rebuilt every category and post page
    if not fresh and old.get("sources") == revisions and old.get("image") == cat.image:
        return None
    return _Plan(revisions, old, fresh)


def _publish_category(
    settings: Settings,
    store: Store,
    site: SiteRenderer,
    context: str,
    cat: Category,
    plan: _Plan,
    report: PublishReport,
    done: set[str],
    stop: Callable[[], bool] | None = None,
) -> tuple[str, str]:
    """Regenerate one category's outputs as `plan` says; returns the publish state to record."""
    out = settings.output_dir
    key = f"category:{cat.slug}"
    revisions, old, fresh = plan.revisions, plan.old, plan.fresh
    report.categories.append(cat.slug)
    site.load()  # a broken template stops the run here, before this category's files
    s = settings.site

    count = store.count_category_posts(cat.slug)
    # Rebuilt from scratch, a category shows every post it has (pages, post pages): read
    # them once, not again for each page and each source. Without a limit, so that a post
    # stored meanwhile cannot push an old one out of the list and off the site.
    everything = _public(store.posts_for_category(cat.slug, -1)) if fresh and count <= READ_ALL else None
    if everything is not None:
        count = len(everything)
        posts = everything[: s.items_per_feed]
    else:
        posts = _public(store.posts_for_category(cat.slug, s.items_per_feed))
    state: dict[str, Any] = {"context": context, "sources": revisions}
    if cat.image:  # (only when set: the states of categories without one stay as they were)
        state["image"] = cat.image
    recorded = old if isinstance(old, dict) else {}
    meta = category_feed_meta(settings, cat, store.category_covers(cat.slug))
    if not posts:
        state["empty_since"] = _empty_since(recorded.get("empty_since"))
        meta = replace(meta, empty_since=datetime.fromisoformat(state["empty_since"]))
        state["updated"] = _empty_updated(recorded.get("updated"), state["empty_since"])
    else:
        meta, state["updated"] = _never_back(meta, posts, recorded.get("updated"))
    _feed_files(out / "category" / cat.slug, meta, posts, report)

    pages = max(1, ceil(count / s.posts_per_page))
    for number in range(1, pages + 1):
        if stop is not None and stop():
            raise _Stopped
        first = (number - 1) * s.posts_per_page
        if everything is not None:
            batch = everything[first : first + s.posts_per_page]
        elif number == 1 and len(posts) >= min(count, s.posts_per_page):
            batch = posts[: s.posts_per_page]
        else:
            batch = _public(store.posts_for_category(cat.slug, s.posts_per_page, first))
        _write(out / category_page_path(cat.slug, number), site.category(cat, batch, number, pages, count), report)
    for stale in stale_pages(out / "category" / cat.slug / "page", pages):
        stale.unlink()
        report.removed.append(stale)

    listed_in = {src.key: src.categories for src in settings.sources}
    jekyll = settings.jekyll_dir is not None

    def post_files(changed: list[Post]) -> None:
        # A post's one Jekyll file goes with the first of its source's categories (config
        # order) that publishes it: the first, unless its filters or duplicates rule leave
        # the post out, which only a store query can tell.
        later = [p.id for p in changed if jekyll and listed_in.get(p.source, (cat.slug,))[0] != cat.slug]
        shown = store.shown_in(later) if later else {}
        dated = store.jekyll_dates(p.id for p in changed) if jekyll else {}
        for post in changed:
            if stop is not None and stop():
                raise _Stopped  # its state unrecorded: the category is redone next time
            if post.id not in done:
                done.add(post.id)
                report.posts_rendered += 1
                page = post_page_path(s.url, post)
                _write(out / page, site.post(post), report)
                report.post_files.append((page, post.id, post.source, "page", None, None))
            if jekyll:
                slugs, showing = listed_in.get(post.source, ()), shown.get(post.id, set())
                if slugs[:1] == (cat.slug,) or next((c for c in slugs if c in showing), None) == cat.slug:
                    _publish_jekyll(settings, cat, post, report, dated.get(post.id))

    if everything is not None:  # every post of every source: what the loop below would read
        post_files(everything)
        return key, json.dumps(state, sort_keys=True)
    previous = old.get("sources", {}) if isinstance(old, dict) and not fresh else {}
    for source, (revision, digest) in revisions.items():
        before = previous.get(source)
        since = before[0] if before and before[1] == digest and before[0] <= revision else 0
        if before is not None and since == revision:
            continue
        offset = 0
        while True:
            changed = _public(store.posts_changed_since(source, since, CHANGED_BATCH, offset, category=cat.slug))
            post_files(changed)
            if len(changed) < CHANGED_BATCH:
                break
            offset += CHANGED_BATCH
    # Recorded by the caller once the files are on disk, never before (`_record`).
    return key, json.dumps(state, sort_keys=True)


def _never_back(meta: FeedMeta, posts: list[Post], recorded: Any) -> tuple[FeedMeta, str]:
    """`meta` with the updated time the feed last gave as its floor, and the one it gives now
    (ISO, to record): when the newest post left the feed, it went back to the next one's."""
    newest = max(p.updated for p in posts)
    floor = _recorded_date(recorded)
    if floor is None:
        return meta, newest.isoformat()
    return replace(meta, updated_floor=floor), max(newest, floor).isoformat()


def _empty_updated(recorded: Any, since: str) -> str:
    """The floor an empty feed keeps (ISO): it gives `since` meanwhile, and, forgotten, its
    posts coming back took it back to the newest one's, years before maybe."""
    floor = _recorded_date(recorded)
    return since if floor is None else max(floor, datetime.fromisoformat(since)).isoformat()


def _recorded_date(value: Any) -> datetime | None:
    """An aware date recorded in the publish state; None for none, or one not ours."""
    try:
        date = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return date if date is not None and date.tzinfo is not None else None


def _empty_since(recorded: Any) -> str:
    """Since when a feed with no posts has been empty, as an ISO date: the one recorded by
    an earlier publish, else now (this publish is the first to find it empty). Its feeds
    give it as their updated time: true (nothing in them changed since), and the same at
    every publish, so that unchanged feeds are not rewritten, nor readers told of a change."""
    if isinstance(recorded, str):
        try:
            datetime.fromisoformat(recorded)
            return recorded
        except ValueError:
            pass  # not ours: a new one
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _publish_all(settings: Settings, store: Store, site: SiteRenderer, report: PublishReport) -> None:
    site.load()
    s = settings.site
    out = settings.output_dir
    # The home page lists posts_per_page of them, the feeds items_per_feed: either may be the larger.
    latest = _public(store.latest_posts(max(s.items_per_feed, s.posts_per_page)))
    posts = latest[: s.items_per_feed]
    meta = all_posts_feed_meta(settings, None if s.image else store.covers_by_category())
    if posts:
        if store.publish_state(ALL_EMPTY_SINCE) is not None:
            store.forget_publish_state(ALL_EMPTY_SINCE)
        recorded = store.publish_state(ALL_UPDATED)
        meta, updated = _never_back(meta, posts, recorded)
        if updated != recorded:
            store.set_publish_state(ALL_UPDATED, updated)
    else:  # no post anywhere yet (no source fetched): as an empty category's feeds
        since = _empty_since(store.publish_state_or(ALL_EMPTY_SINCE, _empty_since(None)))
        meta = replace(meta, empty_since=datetime.fromisoformat(since))
        recorded = store.publish_state(ALL_UPDATED)
        if recorded is not None and (updated := _empty_updated(recorded, since)) != recorded:
            store.set_publish_state(ALL_UPDATED, updated)
    _feed_files(out / "feed", meta, posts, report)
    summaries = store.category_summaries()
    links = []
    for cat in settings.categories:
        count, newest = summaries.get(cat.slug, (0, None))
        links.append(CategoryLink(cat.name, cat.slug, count, newest))
    _write(out / "index.html", site.index(latest[: s.posts_per_page], links), report)
    _write(out / "style.css", site.stylesheet(), report)
    _write(out / "opml.xml", opml_document(settings, store), report)


def _public(posts: list[Post]) -> list[Post]:
    """The posts as they may be published (see credentials.public_post)."""
    return [public_post(p) for p in posts]


def opml_document(settings: Settings, store: Store | None) -> bytes:
    """The configured sources by category as OPML, named as the store knows them (a store
    opened read-only is not synced with the config: any row of a configured source will do)."""
    states = {st.key: st for st in store.source_states(active_only=False)} if store is not None else {}
    sources = {src.key: src for src in settings.sources}
    groups = []
    for cat in settings.categories:
        feeds = []
        for key in cat.source_keys:
            src = sources.get(key)
            st = states.get(key)
            title = (src.name if src else None) or (st.title if st else None)
            url = public_url(key) or key  # a password in the URL is for fetching only
            feeds.append(OpmlFeed(url=url, title=title, html_url=public_url(st.site_link) if st else None))
        groups.append((cat.name, cat.slug, feeds))
    return render_opml(settings.site.title, groups)


def _publish_jekyll(
    settings: Settings, cat: Category, post: Post, report: PublishReport, dated: datetime | None = None
) -> None:
    """The post's Jekyll file, under the date it was first written with (`dated`, see
    `Store.jekyll_dates`), else its own: Jekyll makes the URL from that date, and a source
    re-dating its entry must not move a page readers have linked to (the site's pages get a
    redirect; Jekyll has none without a plugin)."""
    jekyll = settings.config.jekyll
    if jekyll is None or settings.jekyll_dir is None:
        return
    site = settings.site
    if dated is not None and dated != post.published:
        post = replace(post, published=dated)
    text = render_jekyll(
        post,
        category_slug=cat.slug,
        tags=cat.tags,
        back_label=cat.tags[0] if cat.tags else cat.name,
        site_url=site.url,
        timezone=site.timezone,
        language=site.language,
        layout=jekyll.layout,
        attribution=post.source_title if jekyll.attribution else None,
    )
    name = f"_posts/{jekyll_filename(post, site.timezone)}"
    report.write(settings.jekyll_dir / name, text.encode("utf-8"))
    report.post_files.append((name, post.id, post.source, "jekyll", cat.slug, post.published))
