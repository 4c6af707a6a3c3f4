"""The `aggregator` command: thin wrappers over the modules; nothing imports this."""

from __future__ import annotations

import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .config import ConfigError, Settings, config_path, load_config, parse_config
from .fetch import Fetcher
from .pipeline import Outcome, update_source
from .publish import SiteError, opml_document, publish
from .publish.atomic import write_if_changed
from .publish.opml import OpmlError, merge_into_config, parse_opml, write_config_text
from .store import Store, StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _load(ctx: click.Context) -> Settings:
    path = config_path(ctx.obj["config"])
    try:
        return load_config(path)
    except ConfigError as e:
        click.echo(str(e), err=True)
        ctx.exit(EXIT_USAGE)
        raise  # unreachable: ctx.exit raises


def _open_store(ctx: click.Context, settings: Settings) -> Store:
    try:
        return Store(settings.database)
    except StoreError as e:
        click.echo(f"error: {e}", err=True)
        ctx.exit(EXIT_FAILED)
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $AGGREGATOR_CONFIG, else ./feeds.yaml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int) -> None:
    """Poll RSS/Atom/JSON feeds and republish them per category."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    ctx.obj["verbose"] = verbose
    _setup_logging(verbose)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config: exit 0, or 2 with the errors."""
    settings = _load(ctx)
    click.echo(f"{settings.path}: ok: {len(settings.categories)} categories, {len(settings.sources)} sources")


@main.command()
@click.option("--source", "urls", multiple=True, metavar="URL", help="Only this source (repeatable).")
@click.pass_context
def fetch(ctx: click.Context, urls: tuple[str, ...]) -> None:
    """Poll every (or the named) source once, now; store the posts; publish.

    Exit 0 when every source succeeded, 1 when some failed, 2 for a config or usage error.
    """
    settings = _load(ctx)
    sources = list(settings.sources)
    if urls:
        known = {s.key: s for s in sources}
        unknown = [u for u in urls if u not in known]
        if unknown:
            click.echo(f"error: not a configured source: {', '.join(unknown)}", err=True)
            ctx.exit(EXIT_USAGE)
        sources = [known[u] for u in dict.fromkeys(urls)]
    out = Console(highlight=False, soft_wrap=True)
    with _open_store(ctx, settings) as store:
        store.sync_sources(settings.sources)
        fetcher = Fetcher()
        outcomes: list[Outcome] = []
        with ThreadPoolExecutor(max_workers=settings.site.workers) as pool:
            futures = [pool.submit(update_source, s, store, fetcher) for s in sources]
            for fut in futures:
                o = fut.result()
                outcomes.append(o)
                out.print(_outcome_line(o), markup=False)
        fetcher.close()
        try:
            report = publish(settings, store)
        except SiteError as e:  # the posts are stored; the next publish picks them up
            click.echo(f"error: publishing failed: {e}", err=True)
            ctx.exit(EXIT_FAILED)
    failed = sum(o.status == "error" for o in outcomes)
    counts = {k: sum(o.status == k for o in outcomes) for k in ("new", "updated", "unchanged")}
    out.print(
        f"{len(outcomes)} sources: {counts['new']} new, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {failed} failed; "
        f"{sum(o.new for o in outcomes)} new posts; {len(report.written)} files written",
        markup=False,
    )
    ctx.exit(EXIT_FAILED if failed else EXIT_OK)


def _outcome_line(o: Outcome) -> str:
    if o.status == "error":
        return f"error      {o.source}: {o.error}"
    detail = f"{o.new} new, {o.updated} updated of {o.entries}" if o.entries else ""
    return f"{o.status:<10} {o.source}" + (f" ({detail})" if detail else "")


@main.command("publish")
@click.pass_context
def publish_cmd(ctx: click.Context) -> None:
    """Regenerate every output from the store."""
    settings = _load(ctx)
    with _open_store(ctx, settings) as store:
        store.sync_sources(settings.sources)
        try:
            report = publish(settings, store, force=True)
        except SiteError as e:
            click.echo(f"error: publishing failed: {e}", err=True)
            ctx.exit(EXIT_FAILED)
    click.echo(f"{len(report.written)} files written, {report.unchanged} unchanged in {settings.output_dir}")


@main.command("export-opml")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_opml(ctx: click.Context, path: Path | None) -> None:
    """Write the sources, grouped by category, as OPML to PATH (default: stdout)."""
    settings = _load(ctx)
    if settings.database.is_file():  # feed titles and home pages, where fetched
        with _open_store(ctx, settings) as store:
            store.sync_sources(settings.sources)
            data = opml_document(settings, store)
    else:
        data = opml_document(settings, None)
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        write_if_changed(path, data)
    except OSError as e:
        click.echo(f"error: cannot write {path}: {e}", err=True)
        ctx.exit(EXIT_FAILED)
    click.echo(f"{path}: {len(settings.sources)} sources in {len(settings.categories)} categories")


@main.command("import-opml")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--category", metavar="NAME", help="Put every feed in this category (else the OPML's own).")
@click.pass_context
def import_opml(ctx: click.Context, file: Path, category: str | None) -> None:
    """Add the feeds of an OPML FILE to the config, keeping its comments and layout.

    Feeds go to the category their OPML folder (or `category` attribute) names, or to
    --category; a feed already in its category is skipped, so importing twice is harmless.
    """
    settings = _load(ctx)  # the config must be valid before we touch it
    try:
        feeds = parse_opml(file.read_bytes(), str(file))
        text = settings.path.read_text(encoding="utf-8")
        new_text, report = merge_into_config(text, feeds, category)
    except (OSError, OpmlError) as e:
        click.echo(f"error: {e}", err=True)
        ctx.exit(EXIT_USAGE)
        raise
    for url, why in report.skipped:
        click.echo(f"skipped   {url}: {why}")
    for url, cat in report.present:
        click.echo(f"present   {url} ({cat})")
    for url, cat in report.added:
        click.echo(f"added     {url} ({cat})")
    if report.added:
        try:
            parse_config(new_text, settings.path)
        except ConfigError as e:  # pragma: no cover - would mean merge_into_config broke the file
            click.echo(f"error: the config would be invalid, left unchanged:\n{e}", err=True)
            ctx.exit(EXIT_FAILED)
        write_config_text(settings.path, new_text)
    click.echo(
        f"{len(feeds)} feeds in {file}: {len(report.added)} added, {len(report.present)} already present, "
        f"{len(report.skipped)} skipped"
        + (f"; new categories: {', '.join(report.new_categories)}" if report.new_categories else "")
        + (f"; {settings.path} updated" if report.added else "")
    )


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """The daemon: poll each source at its interval and publish what changed."""
    from .daemon import Daemon

    if ctx.obj["verbose"] == 0:
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    settings = _load(ctx)
    with _open_store(ctx, settings) as store:
        code = Daemon(settings, store).run()
    ctx.exit(code)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """One row per source: last fetch, result, posts, next poll."""
    settings = _load(ctx)
    with _open_store(ctx, settings) as store:
        store.sync_sources(settings.sources)
        states = {s.key: s for s in store.source_states()}
    zone = ZoneInfo(settings.site.timezone)
    rows: list[dict[str, Any]] = []
    for source in settings.sources:
        st = states.get(source.key)
        if st is None:
            continue
        rows.append(
            {
                "url": source.key,
                "fetch_url": st.url,
                "name": st.display_name,
                "categories": list(source.categories),
                "state": st.state,
                "last_fetch": _iso(st.last_fetch),
                "last_success": _iso(st.last_success),
                "last_status": st.last_status,
                "last_error": st.last_error,
                "errors": st.error_count,
                "posts": st.posts,
                "next_poll": _iso(st.next_poll),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{settings.site.title}: {len(rows)} sources")
    for col in ("source", "state", "last fetch", "result", "posts", "next poll"):
        table.add_column(col, overflow="fold")
    for r, st in ((r, states[r["url"]]) for r in rows):
        result = st.last_error or (f"HTTP {st.last_status}" if st.last_status else "never fetched")
        if st.error_count:
            result = f"{result} ({st.error_count} in a row)"
        table.add_row(
            f"{r['name']}\n{r['url']}" if r["name"] != r["url"] else r["url"],
            r["state"],
            _local(st.last_fetch, zone),
            result,
            str(r["posts"]),
            _local(st.next_poll, zone),
        )
    Console(soft_wrap=not sys.stdout.isatty()).print(table)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _local(dt: datetime | None, zone: ZoneInfo) -> str:
    if dt is None:
        return "—"
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %z")


if __name__ == "__main__":  # pragma: no cover
    main()
