"""Read the store, write every output under the output directory.

Publishers read only the store; each file is written atomically and only when its bytes
changed, so publishing twice with nothing new leaves every file (and its mtime) alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Category, Settings
from ..store import Store
from .atomic import sweep_once, write_if_changed
from .feeds import FeedMeta, render_atom, render_json, render_rss
from .jekyll import jekyll_filename, render_jekyll

log = logging.getLogger(__name__)


@dataclass
class PublishReport:
    written: list[Path] = field(default_factory=list)
    unchanged: int = 0

    def add(self, path: Path, changed: bool) -> None:
        if changed:
            self.written.append(path)
        else:
            self.unchanged += 1


def publish(settings: Settings, store: Store, categories: Iterable[str] | None = None) -> PublishReport:
    """Regenerate the outputs of `categories` (all when None) and the all-posts outputs."""
    report = PublishReport()
    for root in (settings.output_dir, settings.jekyll_dir):
        if root is not None:
            for leftover in sweep_once(root):
                log.info("removed %s, left by a writer that was killed", leftover)
    wanted = set(categories) if categories is not None else None
    for cat in settings.categories:
        if wanted is None or cat.slug in wanted:
            _publish_category(settings, store, cat, report)
    _publish_all(settings, store, report)
    return report


def _feed_files(base: Path, meta: FeedMeta, posts: list, report: PublishReport) -> None:
    for ext, render in (("atom", render_atom), ("rss", render_rss), ("json", render_json)):
        path = base.with_name(f"{base.name}.{ext}")
        report.add(path, write_if_changed(path, render(meta, posts)))


def _publish_category(settings: Settings, store: Store, cat: Category, report: PublishReport) -> None:
    site = settings.site
    posts = store.posts_for_category(cat.slug, site.items_per_feed)
    meta = FeedMeta(
        title=cat.name,
        site_url=site.url,
        self_base=f"{site.url}category/{cat.slug}",
        alternate=f"{site.url}category/{cat.slug}.html",
        language=site.language,
        description=" ".join(cat.tags) or f"{cat.name} · {site.title}",
        site_title=site.title,
    )
    _feed_files(settings.output_dir / "category" / cat.slug, meta, posts, report)
    if settings.jekyll_dir is not None and settings.config.jekyll is not None:
        _publish_jekyll(settings, cat, posts, report)


def _publish_all(settings: Settings, store: Store, report: PublishReport) -> None:
    site = settings.site
    posts = store.latest_posts(site.items_per_feed)
    meta = FeedMeta(
        title=site.title,
        site_url=site.url,
        self_base=f"{site.url}feed",
        alternate=site.url,
        language=site.language,
        description=site.description or site.title,
        site_title=site.title,
    )
    _feed_files(settings.output_dir / "feed", meta, posts, report)


def _publish_jekyll(settings: Settings, cat: Category, posts: list, report: PublishReport) -> None:
    jekyll = settings.config.jekyll
    assert jekyll is not None and settings.jekyll_dir is not None
    site = settings.site
    for post in posts:
        source = settings.source(post.source)
        if source is not None and source.categories and source.categories[0] != cat.slug:
            continue  # one file per post: it belongs to its source's first category
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
        path = settings.jekyll_dir / "_posts" / jekyll_filename(post, site.timezone)
        report.add(path, write_if_changed(path, text.encode("utf-8")))
