"""The `aggregator` command: thin wrappers over the modules; nothing imports this."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .config import ConfigError, Settings, config_path, load_config
from .fetch import Fetcher
from .pipeline import Outcome, update_source
from .publish import PublishReport, publish
from .store import Store, StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
T = TypeVar("T")


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
    report: PublishReport | None = None
    with _open_store(ctx, settings) as store:
        _or_exit(ctx, "the database", store.sync_sources, settings.sources)
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
        except (StoreError, OSError) as e:  # disk full, read-only output: what is stored stays stored
            click.echo(f"error: publishing to {settings.output_dir} failed: {e}", err=True)
    failed = sum(o.status == "error" for o in outcomes)
    counts = {k: sum(o.status == k for o in outcomes) for k in ("new", "updated", "unchanged")}
    written = f"{len(report.written)} files written" if report is not None else "publishing failed"
    out.print(
        f"{len(outcomes)} sources: {counts['new']} new, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {failed} failed; "
        f"{sum(o.new for o in outcomes)} new posts; {written}",
        markup=False,
    )
    ctx.exit(EXIT_FAILED if failed or report is None else EXIT_OK)


def _or_exit(ctx: click.Context, what: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a step that writes to disk; a full disk or a read-only file is one clear line and exit 1."""
    try:
        return fn(*args)
    except (StoreError, OSError) as e:
        click.echo(f"error: {what}: {e}", err=True)
        ctx.exit(EXIT_FAILED)
        raise  # unreachable: ctx.exit raises


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
        _or_exit(ctx, "the database", store.sync_sources, settings.sources)
        report = _or_exit(ctx, f"publishing to {settings.output_dir} failed", publish, settings, store)
    click.echo(f"{len(report.written)} files written, {report.unchanged} unchanged in {settings.output_dir}")


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
