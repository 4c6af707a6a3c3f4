"""The `aggregator` command: thin wrappers over the modules; nothing imports this."""

from __future__ import annotations

import errno
import gc
import glob
import io
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.cells import cell_len
from rich.console import Console
from rich.control import strip_control_codes
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__, logs
from .config import (
    ENV_CONFIG,
    ConfigError,
    Settings,
    config_path,
    format_duration,
    from_feed_scheme,
    load_config,
    parse_config,
    parse_duration,
    request_key,
)
from .credentials import masked, secret_forms
from .dates import local_time
from .lock import AlreadyRunning, FetchLock, FetchRunning, InstanceLock
from .memory import limit_malloc_arenas
from .models import Source
from .pipeline import LEARN_AFTER, Outcome
from .plural import counted as _n
from .poll_workers import PollsAbandoned, polling
from .publish import PublishReport, SiteError, folder_problems, opml_document, publish
from .publish.atomic import write_if_changed
from .publish.site import template_problems

if TYPE_CHECKING:
    from .serve import Server
from .publish.opml import ConfigLayout, OpmlError, merge_into_config, parse_opml, write_config_text
from .sanitize import BIDI_CONTROLS, printable
from .schedule import DISABLED, GONE, NEW, RATE_LIMITED, interval_in_force, stored_state
from .store import (
    SourceState,
    Store,
    StoreError,
    configured_state,
    database_exists,
    read_database,
    why_unwritable,
)
from .targets import own_files, refusal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM: `fetch` stopped by `kill`, `timeout` or systemd
# sysexits' EX_TEMPFAIL, "try again later": another `fetch` runs on the database, nothing was done
EXIT_BUSY = 75
T = TypeVar("T")


# Whether the log goes where the lines for people on stderr do not: as JSON, or to a file.
# Then the `error:` lines go to the log too: a JSON log pipeline never saw why `run` failed.
_LOG_ELSEWHERE = {"on": False}
# Whether stderr is itself the JSON log (`--log-format json` without `--log-file`): then a line
# for people is written as a log record instead, never bare beside the records: a shipper
# reading stderr as JSON lines choked on `error: …` (and logged it twice, as a record too).
_STDERR_IS_JSON = {"on": False}
_LOGGED_LINES = (
    ("error: ", logging.ERROR),
    ("interrupted", logging.WARNING),
    ("stopped", logging.WARNING),
    ("stopping", logging.WARNING),  # a stop waiting for the polls in flight: a log that ends here says why
)


def _echo(text: str, err: bool = False, level: int | None = None) -> None:
    """click.echo, with the password of any URL masked (see credentials.py); an `error:`,
    `interrupted`, `stopping` or `stopped` line on stderr (or one given a `level`) is also
    logged when the log is elsewhere. On a stderr that is the JSON log, a stderr line is a
    record only (level `level`, else its prefix's, else warning: shown at the default level)."""
    if level is None and err:
        level = next((lvl for prefix, lvl in _LOGGED_LINES if text.startswith(prefix)), None)
    if err and _STDERR_IS_JSON["on"]:
        logging.getLogger("aggregator.cli").log(level or logging.WARNING, "%s", text.removeprefix("error: "))
        return
    if err and level is not None:  # logged first: once the line is seen, its record is written (a
        _log_line(level, text.removeprefix("error: "))  # second SIGTERM sent on seeing it cut the record)
    click.echo(masked(text), err=err)


def _log_line(level: int, text: str) -> None:
    """`text` as a record of the configured log (JSON, or the --log-file), when it is not the
    stderr the line for people already went to; never fails the command it reports on."""
    if _LOG_ELSEWHERE["on"]:
        logging.getLogger("aggregator.cli").log(level, "%s", text)


def _setup_logging(verbose: int, fmt: str = "text", file: str | None = None) -> None:
    logs.setup(logging.WARNING - 10 * verbose, fmt, file)
    _LOG_ELSEWHERE["on"] = fmt == "json" or file is not None
    _STDERR_IS_JSON["on"] = fmt == "json" and file is None


def _service_logging(ctx: click.Context, log_format: str | None) -> None:
    """Long-running commands log at info by default; `--log-format` may also follow them."""
    fmt = log_format or ctx.obj["log_format"]
    if fmt != ctx.obj["log_format"]:
        _setup_logging(ctx.obj["verbose"], fmt, ctx.obj["log_file"])
    if ctx.obj["verbose"] == 0:
        logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" is not news


def _load(ctx: click.Context, log_warnings: bool = False) -> Settings:
    """The config, or exit 2 with its errors. Its warnings go to stderr as lines, or, for
    the daemon (whose stderr is a log) and under `--log-format json`, as log records."""
    path = config_path(ctx.obj["config"])
    try:
        settings = load_config(path)
    except ConfigError as e:
        _echo(str(e) + _where_default(ctx, path, e), err=True, level=logging.ERROR)
        ctx.exit(EXIT_USAGE)
        raise  # unreachable: ctx.exit raises
    for warning in settings.warnings:
        if log_warnings or ctx.obj["log_format"] == "json":  # a JSON log takes no bare lines
            logging.getLogger("aggregator.config").warning("%s:%s", settings.path, warning)
        else:
            _echo(f"warning: {settings.path}:{warning}", err=True)
    return settings


def _where_default(ctx: click.Context, path: Path, error: ConfigError) -> str:
    """Where a default `./feeds.yaml` that is not there was looked for: a cron job runs in the
    user's home folder, and `feeds.yaml: file not found` did not say which folder that was."""
    if ctx.obj["config"] or os.environ.get(ENV_CONFIG) or error.errors != ["file not found"]:
        return ""
    try:
        folder = Path.cwd()
    except OSError:  # the current folder was deleted
        return ""
    return f" in {folder} (the default, ./feeds.yaml: give --config FILE or set ${ENV_CONFIG})"


def _read_or_exit(ctx: click.Context, settings: Settings, read: Callable[[Store], T]) -> T:
    """`read` on the database opened read-only (`read_database`): for commands that only look,
    which must work when it cannot be written (a full disk, a read-only file) and must not
    change it; one `error:` line and exit 1 when it cannot be read."""
    try:
        return read_database(settings.database, read)
    except StoreError as e:
        _echo(f"error: {e}", err=True)
        ctx.exit(EXIT_FAILED)
        raise  # unreachable: ctx.exit raises


def _open_store(ctx: click.Context, settings: Settings) -> Store:
    try:
        return Store(settings.database)
    except StoreError as e:
        _echo(f"error: {e}", err=True)
        ctx.exit(EXIT_FAILED)
        raise


def entry() -> None:
    """The entry point of `aggregator` scripts installed before `start.main` took over: the
    imports are done by now, so only the freeze is left to do (see `start`)."""
    gc.freeze()
    main()


class _Stdout(io.FileIO):
    """Standard output whose first failed write (a full disk behind `>> fetch.log`, a pipe
    whose reader left: `fetch | grep -q`) is kept, not raised: it stopped the command where
    it printed, with a traceback, so `fetch` stored its polls and never published them. The
    rest of the output is dropped; `_Commands.main` says so at the end."""

    lost: OSError | None = None

    def write(self, data: Any) -> int:
        if self.lost is None:
            try:
                return super().write(data)
            except BlockingIOError:  # a non-blocking pipe that is full: as before, the caller's
                raise
            except OSError as e:
                self.lost = e
        return memoryview(data).nbytes


def _guard_stdout() -> _Stdout | None:
    """sys.stdout written through `_Stdout`, with its encoding and buffering; None when there
    is no file to guard (stdout closed, or not a file)."""
    old = sys.stdout
    try:
        fd = old.fileno()
    except (AttributeError, OSError, ValueError):  # None (`>&-`), or io.UnsupportedOperation
        return None
    old.flush()
    raw = _Stdout(fd, "w", closefd=False)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding=old.encoding,
        # a title the terminal's encoding cannot write (CJK under PYTHONIOENCODING=latin-1, an
        # ISO-8859-1 locale) is escaped, as Python writes standard error: `status` was a traceback
        errors="backslashreplace" if old.errors == "strict" else old.errors,
        line_buffering=old.line_buffering,
        write_through=getattr(old, "write_through", False),
    )
    return raw


# Commands that only look: their output is all they do, so a reader that has read what it
# wanted and left (`status | head -1`) is no failure of theirs.
READ_ONLY = frozenset({"check", "status", "export-opml"})
# Commands that write their one line once their work is done, whole and checked: a reader
# gone by then (`backup … | head -0`, a cron wrapper's pipe closed early) cut only the line.
# `backup` exited 1 then, and a nightly backup that had been written was reported as failed.
REPORTED_WHEN_DONE = frozenset({"backup"})


class _Commands(click.Group):
    """Ctrl-C outside the places a command handles it (while the config loads or the database
    opens, say) exits as shells report a stopped command, not with click's bare "Aborted!"
    and exit 1: a script can tell an interrupt from a failure."""

    ran: str | None = None  # the command invoked, set by `main`'s callback

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command to its end even when its standard output cannot be written; then
        one `error:` line (none for a reader that stopped reading, as `| head`) and exit 1.

        A reader that stopped reading the output of a command that only looks (READ_ONLY), or
        of one whose line comes after its work is done (REPORTED_WHEN_DONE), is no failure: the
        command ends with its own code, as `git log | head` does. `status | head -1` exited 1,
        and failed every script under `set -o pipefail`."""
        raw = _guard_stdout()
        self.ran = None
        try:
            return super().main(*args, **kwargs)
        except SystemExit as e:
            if raw is None:
                raise
            sys.stdout.flush()  # what is still buffered: its failure is kept too
            if raw.lost is None:
                raise
            if raw.lost.errno == errno.EPIPE and self.ran in READ_ONLY | REPORTED_WHEN_DONE:
                raise SystemExit(e.code) from None
            if raw.lost.errno != errno.EPIPE:
                why = raw.lost.strerror or raw.lost
                _echo(f"error: cannot write to standard output: {why}: the output is incomplete", err=True)
            raise SystemExit(e.code or EXIT_FAILED) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as e:  # a command's usage error, once the log is set up
            if not _STDERR_IS_JSON["on"] and ctx.params.get("log_format") == "json" and not ctx.params.get("log_file"):
                # found before `main` set the log up: an unknown command (`aggregator fecth`)
                _setup_logging(ctx.params.get("verbose") or 0, "json", None)
            if not _STDERR_IS_JSON["on"]:
                raise  # click's own lines: usage, a hint, the error
            where = e.ctx.command_path if isinstance(e, click.UsageError) and e.ctx else ctx.command_path
            _echo(f"error: {where}: {e.format_message()} (see `{where} --help`)", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            if _stopped_by(ctx) == signal.SIGTERM:
                _echo("stopped by SIGTERM: what was stored or written before stays, nothing is half-written", err=True)
                ctx.exit(EXIT_TERMINATED)
            _echo("interrupted: what was stored or written before stays, nothing is half-written", err=True)
            ctx.exit(EXIT_INTERRUPTED)


_STOPS = "aggregator.stops"  # ctx.meta: the stop signals a command received, the first deciding how it ends
# Commands that take SIGTERM and SIGINT themselves, as a clean stop (exit 0): every other one
# takes SIGTERM as Ctrl-C is taken, says what it did and left, and exits 143.
SERVICES = frozenset({"run", "serve"})


def _stop_on_sigterm(ctx: click.Context) -> None:
    """Take SIGTERM (a cron job's `timeout`, systemd, `kill`) as Ctrl-C is taken: it ended a
    command at once with no word (exit -15), leaving the user to guess what was done: which
    sources `fetch` had polled, which `prune` had pruned, whether `backup` wrote its copy. Now
    each stops as at Ctrl-C (`fetch` waits for the polls in flight; a second signal quits at
    once), where it leaves things whole, and one line says what it did and left; exit 143.
    Both signals are handled here to know which came first."""
    if threading.current_thread() is not threading.main_thread():  # signal.signal would raise
        return
    stops: list[int] = ctx.meta.setdefault(_STOPS, [])

    def stop(signum: int, frame: object) -> None:
        stops.append(signum)
        raise KeyboardInterrupt

    # a signal ignored stays ignored: SIGINT is, for a job a script started with `&`
    taken = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not signal.SIG_IGN]
    old = {sig: signal.signal(sig, stop) for sig in taken}
    ctx.call_on_close(lambda: [signal.signal(sig, handler) for sig, handler in old.items()])


def _stopped_by(ctx: click.Context) -> int | None:
    """The signal that first stopped the command (see `_stop_on_sigterm`), if one did."""
    stops = ctx.meta.get(_STOPS)
    return stops[0] if stops else None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $AGGREGATOR_CONFIG, else ./feeds.yaml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--log-format",
    # any case: `AGGREGATOR_LOG_FORMAT=JSON` in a unit file was refused, naming --log-format
    type=click.Choice(logs.FORMATS, case_sensitive=False),
    default="text",
    envvar="AGGREGATOR_LOG_FORMAT",
    show_default=True,
    help="Log lines as text or as JSON objects, one per line (env: AGGREGATOR_LOG_FORMAT).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="AGGREGATOR_LOG_FILE",
    help="Log to this file instead of stderr (appended to; it and its missing folders are created); "
    "reopened after logrotate moves it (env: AGGREGATOR_LOG_FILE).",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int, log_format: str, log_file: str | None) -> None:
    """Poll RSS/Atom/JSON feeds and republish them per category."""
    limit_malloc_arenas()
    _LOG_ELSEWHERE["on"] = _STDERR_IS_JSON["on"] = False  # until the log is set up (an embedder's run left it)
    if isinstance(ctx.command, _Commands):
        ctx.command.ran = ctx.invoked_subcommand
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    ctx.obj["verbose"] = verbose
    ctx.obj["log_format"] = log_format
    ctx.obj["log_file"] = log_file
    if ctx.invoked_subcommand not in SERVICES:
        _stop_on_sigterm(ctx)
    try:
        _setup_logging(verbose, log_format, log_file)
    except OSError as e:  # a read-only or unwritable folder: a traceback read as a crash
        _echo(f"error: cannot write the log file {log_file}: {e.strerror or e}", err=True)
        ctx.exit(EXIT_FAILED)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config: exit 0, or 2 with the errors (a file where an output folder
    should be, and a `site.templates` template that does not compile, among them)."""
    settings = _load(ctx)
    problems = folder_problems(settings)
    for key, problem in problems:  # `file:line: key.path: problem`, as the config's own errors
        _echo(f"{settings.where(*key)}{'.'.join(key)}: {problem}", err=True, level=logging.ERROR)
    templates = template_problems(settings)  # the template's own file and line: that is where to fix it
    for line in templates:
        _echo(line, err=True, level=logging.ERROR)
    if problems or templates:
        ctx.exit(EXIT_USAGE)
    _echo(f"{settings.path}: ok: {_n(len(settings.categories), 'category')}, {_n(len(settings.sources), 'source')}")


def _config_line(settings: Settings, key: str) -> str:
    """`feeds.yaml:12`, the line of a source's first listing: how a user tells apart sources
    whose URLs show the same with their secrets masked."""
    for ci, cat in enumerate(settings.config.categories):
        for si, src in enumerate(cat.sources):
            if src.url == key:
                line = settings.lines.get(("categories", ci, "sources", si, "url"))
                return f"{settings.path}:{line}" if line else str(settings.path)
    return str(settings.path)


def _named_sources(sources: list[Source], urls: tuple[str, ...], settings: Settings) -> tuple[list[Source], list[str]]:
    """The sources `--source` names, and what names none or several. A URL is taken as the
    config writes it, else as a browser or the output shows it: `/%E4%B8%AD%E6%96%87/feed` for
    `/中文/feed`, an IDN host in either form (compared as the server sees the request), or with
    its secret masked (`token=***`, `user:***@`, the user info dropped, as `status` and OPML
    show it): refused as not configured, a URL copied from the output could not be polled."""
    known = {s.key: s for s in sources}
    by_request: dict[str, list[Source]] = {}
    shown: dict[str, set[str]] = {}
    if any(url not in known for url in urls):  # worked out only then: a large config's every URL
        for s in sources:
            by_request.setdefault(request_key(s.key), []).append(s)
        for form, keys in secret_forms(known).items():
            shown.setdefault(request_key(form), set()).update(keys)
    out: list[Source] = []
    problems: list[str] = []
    unknown: list[str] = []
    for url in urls:
        if url in known:
            out.append(known[url])
            continue
        key = request_key(url)
        found = by_request.get(key) or [known[k] for k in sorted(shown.get(key, ()))]
        if len(found) == 1:
            out.append(found[0])
        elif found:
            # masked, two sources may show as one: each is named by its line in the config too
            listed = ", ".join(f"{masked(s.key)} at {_config_line(settings, s.key)}" for s in found)
            why = f"{url} could be any of {len(found)} configured sources ({listed})"
            problems.append(f"{why}: name the one meant as the config writes it")
        else:
            unknown.append(url)
    return out, ([f"not a configured source: {', '.join(unknown)}"] if unknown else []) + problems


@main.command()
@click.option("--source", "urls", multiple=True, metavar="URL", help="Only this source (repeatable).")
@click.pass_context
def fetch(ctx: click.Context, urls: tuple[str, ...]) -> None:
    """Poll every (or the named) source once, now; store the posts; publish.

    Polls whatever the schedule says, except sources that are disabled, gone, or whose host
    asked for silence (Retry-After): those are skipped, each with a line saying why. A gone
    source named with --source is tried again: if its feed is back, it is polled again.
    Exit 0 when every polled source succeeded, 1 when some failed or publishing failed, 2 for
    a config or usage error, 75 when another fetch runs on the same database (nothing is
    polled: two would poll every source twice), 130 when interrupted (Ctrl-C: what was
    polled is stored, and published by the next fetch or publish), 143 when stopped by
    SIGTERM (as by Ctrl-C, and said so).
    """
    settings = _load(ctx)
    sources = list(settings.sources)
    if urls:
        urls = tuple(from_feed_scheme(u) for u in urls)  # as the config's feed:// URLs are read
        named, problems = _named_sources(sources, urls, settings)
        for problem in problems:
            _echo(f"error: {problem}", err=True)
        if problems:
            ctx.exit(EXIT_USAGE)
        sources = list(dict.fromkeys(named))
    _fetch_lock(ctx, settings)
    out = Console(highlight=False, soft_wrap=True)
    report: PublishReport | None = None
    with _open_store(ctx, settings) as store:
        _or_exit(ctx, "the database", store.sync_sources, settings.sources)
        outcomes: list[Outcome] = []
        futures: list[Future[Outcome]] = []
        began = datetime.now(UTC).replace(microsecond=0)

        def stopping(in_flight: int) -> None:
            """The first Ctrl-C: say what the wait is for, and how not to wait."""
            if in_flight:
                again = "send SIGTERM again" if _stopped_by(ctx) == signal.SIGTERM else "press Ctrl-C again"
                by = " (SIGTERM)" if _stopped_by(ctx) == signal.SIGTERM else ""
                _echo(
                    f"stopping{by}: waiting for the {_n(in_flight, 'poll')} in flight to finish and be stored "
                    f"(at most their timeout); {again} to quit at once",
                    err=True,
                )

        try:
            with (  # workers are forked first: while the progress bar is drawn, its thread runs
                polling(sources, store, settings, named=bool(urls), on_interrupt=stopping, into=futures),
                _FetchProgress(out, len(sources)) as progress,
            ):
                for fut in futures:
                    fut.add_done_callback(progress.done)
                for fut in futures:
                    o = fut.result()
                    outcomes.append(o)
                    progress.line(_outcome_line(o))
        except KeyboardInterrupt as e:  # Ctrl-C: each poll's store is one transaction, so nothing is half-stored
            # the lines of polls that ended but whose turn (config order) had not come: they are stored
            for fut in futures[len(outcomes) :]:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    _FetchProgress(out, 0).line(_outcome_line(fut.result()))
            # counted in the store: polls end in any order, and some end after the interrupt
            keys = {s.key for s in sources}
            fetched = [st.last_fetch for st in store.source_states() if st.key in keys]
            polled = sum(when is not None and when >= began for when in fetched)
            what = f"after {polled} of {_n(len(sources), 'source')}: what was polled is stored"
            if polled < len(sources):  # what a stop left: polled first by the next fetch (or daemon)
                what += f", {len(sources) - polled} not polled"
            if isinstance(e, PollsAbandoned):  # Ctrl-C again: their threads are not waited for
                left = f"{_n(e.in_flight, 'poll')} in flight"
                _interrupted(ctx, f"{what} ({left} abandoned, nothing of them stored)", at_once=True)
            _interrupted(ctx, what)
        try:
            report = publish(settings, store)
        except SiteError as e:  # a broken template: the posts are stored; the next publish picks them up
            _echo(f"error: publishing failed: {e}", err=True)
        except (StoreError, OSError) as e:  # disk full, read-only output: what is stored stays stored
            _echo(f"error: publishing to {settings.output_dir} failed: {e}", err=True)
        except KeyboardInterrupt:
            _interrupted(ctx, f"while publishing: all {_n(len(sources), 'source')} polled, what they gave stored")
    failed = sum(o.status in ("error", "gone") for o in outcomes)
    counts = {
        k: sum(o.status == k for o in outcomes) for k in ("new", "updated", "unchanged", "rate-limited", "skipped")
    }
    extra = "".join(f", {counts[k]} {k}" for k in ("rate-limited", "skipped") if counts[k])
    written = f"{_n(len(report.written), 'file')} written" if report is not None else "publishing failed"
    if report is not None and report.removed:
        written += f", {len(report.removed)} removed"
    out.print(
        f"{_n(len(outcomes), 'source')}: {counts['new']} new, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {failed} failed{extra}; "
        f"{_n(sum(o.new for o in outcomes), 'new post')}{_pruned(outcomes)}; {written}",
        markup=False,
    )
    ctx.exit(EXIT_FAILED if failed or report is None else EXIT_OK)


def _fetch_lock(ctx: click.Context, settings: Settings) -> None:
    """One fetch per database, held until the command ends: overlapping cron runs polled every
    source twice. The second is refused at once (exit 75), not made to wait: it would poll
    again everything the first had just polled. A daemon on the database does not count."""
    lock = FetchLock(settings.database)
    try:
        lock.acquire()
    except FetchRunning as e:
        _echo(f"error: {e}", err=True)
        ctx.exit(EXIT_BUSY)
    except OSError:  # no lock file can be made (a read-only folder): opening the database says why
        return
    ctx.call_on_close(lock.release)


def _pruned(outcomes: list[Outcome]) -> str:
    pruned = sum(o.pruned for o in outcomes)
    return f" ({_n(pruned, 'post')} pruned by keep_days/keep_per_source)" if pruned else ""


def _interrupted(ctx: click.Context, what: str, at_once: bool = False) -> None:
    """Ctrl-C (or SIGTERM): say what became of the run, and exit as shells report a command
    they stopped (130, 143).

    `at_once`: polls abandoned in flight hold threads the interpreter would join at exit (up
    to their timeout), and the store they use must not be closed under them; every committed
    poll is durable, so leave without either (SQLite rolls back the unfinished ones)."""
    _stopped(ctx, f"{what}, and the next `aggregator fetch` or `aggregator publish` publishes it", at_once)


def _stopped(ctx: click.Context, what: str, at_once: bool = False) -> None:
    """`interrupted …` (Ctrl-C) or `stopped by SIGTERM …`, then exit 130 or 143 (`at_once`:
    see `_interrupted`)."""
    code, how = EXIT_INTERRUPTED, "interrupted"
    if _stopped_by(ctx) == signal.SIGTERM:
        code, how = EXIT_TERMINATED, "stopped by SIGTERM"
    _echo(f"{how} {what}", err=True)
    if at_once:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    ctx.exit(code)


def _or_exit(ctx: click.Context, what: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a step that writes to disk; a full disk or a read-only file is one clear line and exit 1."""
    try:
        return fn(*args)
    except (StoreError, OSError) as e:
        _echo(f"error: {what}: {e}", err=True)
        ctx.exit(EXIT_FAILED)
        raise  # unreachable: ctx.exit raises


class _FetchProgress:
    """A rich progress bar (sources done / failed) while `fetch` runs, on a terminal only.

    The per-source lines and the summary are printed exactly as without it (above the
    bar), so scripts that read `fetch`'s output see the same lines either way, and when
    stdout is not a terminal there is no bar at all.
    """

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._failed = 0
        if console.is_terminal and total:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("fetching"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("sources · [red]{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=console,
                transient=False,  # the final counts stay on screen above the summary
            )
            self._task = self._progress.add_task("fetch", total=total, failed=0)

    def done(self, fut: Future[Outcome]) -> None:
        if self._progress is None:
            return
        failed = fut.cancelled() or fut.exception() is not None or fut.result().status in ("error", "gone")
        self._failed += failed
        self._progress.update(self._task, advance=1, failed=self._failed)

    def line(self, text: str) -> None:
        """One source's line (above the bar, when there is one).

        Without a bar (stdout is not a terminal) the line is written as rich writes it, its
        control codes stripped, but without rich's rendering: that cost ~0.07 ms a line, a
        tenth of the CPU of a whole 304 poll. (Tabs are left to rich, which expands them by
        cell width; rich's emoji codes are not applied: a URL with `:x:` in it stays itself.)
        """
        text = masked(text)
        if self._progress is None and "\t" not in text:
            file = self.console.file
            file.write(strip_control_codes(text) + "\n")
            file.flush()
        else:
            self.console.print(text, markup=False)

    def __enter__(self) -> _FetchProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _outcome_line(o: Outcome) -> str:
    # (escaped again: a gone source's note quotes the error an older version stored raw)
    if o.status in ("error", "gone", "rate-limited"):
        return printable(f"{o.status:<10} {o.source}: {o.error}")
    if o.status == "skipped":
        return printable(f"skipped    {o.source}: {o.note}")
    detail = f"{o.new} new, {o.updated} updated of {o.entries}" if o.entries else o.note or ""
    if o.pruned:  # new posts older than keep_days go at once: said, or the counts look wrong
        detail += f"; {o.pruned} pruned by keep_days/keep_per_source"
    return f"{o.status:<10} {o.source}" + (f" ({detail})" if detail else "")


@main.command("publish")
@click.pass_context
def publish_cmd(ctx: click.Context) -> None:
    """Regenerate every output from the store.

    Exit 0, or 1 when a `site.templates` template is broken, a file stands where an output
    folder goes (nothing is written), or the output cannot be written (a read-only or full
    disk); 130 when interrupted (Ctrl-C), 143 when stopped by SIGTERM (the files written are
    whole, the rest keep their old content).
    """
    settings = _load(ctx)
    # the Jekyll files are counted too: say where they are (a Jekyll removal was put in public/)
    where = f"{settings.output_dir} and {settings.jekyll_dir}" if settings.jekyll_dir else str(settings.output_dir)
    report: PublishReport | None = None
    try:
        with _open_store(ctx, settings) as store:
            _or_exit(ctx, "the database", store.sync_sources, settings.sources)
            try:
                report = _or_exit(
                    ctx, f"publishing to {settings.output_dir} failed", lambda: publish(settings, store, force=True)
                )
            except SiteError as e:
                _echo(f"error: publishing failed: {e}", err=True)
                ctx.exit(EXIT_FAILED)
        removed = f", {len(report.removed)} removed" if report.removed else ""
        _echo(f"{_n(len(report.written), 'file')} written, {report.unchanged} unchanged{removed} in {where}")
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: every file is written whole (a temporary file renamed)
        if report is not None:
            _stopped(ctx, f"after publishing: every file in {where} is written")
        _stopped(
            ctx,
            f"while publishing to {where}: the files written are whole, the others keep their old content; "
            "the next `aggregator publish` (or `fetch`) writes them",
        )


@main.command("export-opml")
@click.argument("where", metavar="[PATH]", required=False, type=click.Path())
@click.pass_context
def export_opml(ctx: click.Context, where: str | None) -> None:
    """Write the sources, grouped by category, as OPML to PATH (default: stdout).

    Exit 0, 1 when PATH cannot be written (its folder missing: a typo is not made a tree of
    folders; a folder itself, or a PATH ending in `/`: the file is named, none is made up)
    or may not be (the config, the database or one of its files, an existing file that is
    not OPML/XML), or when the database cannot be read (it is only read, as by `status`),
    2 for a config error.
    """
    settings = _load(ctx)
    path = Path(where) if where is not None else None
    # `Path("zz/")` is `zz`: the slash, which says a folder is meant, is only in what was typed
    if where is not None and where.endswith(("/", os.sep)) and not os.path.isdir(where):
        why = "not a folder" if os.path.exists(where.rstrip("/" + os.sep)) else "no such folder"
        _echo(f"error: cannot write {where}: {why}", err=True)
        ctx.exit(EXIT_FAILED)
    if path is not None and path.is_dir():  # click said `File 'out' is a directory`, exit 2
        _echo(f"error: cannot write {where}: it is a folder: name the OPML file to write in it", err=True)
        ctx.exit(EXIT_FAILED)
    if path is not None and not path.parent.is_dir():
        why = "not a folder" if path.parent.exists() else "no such folder"
        _echo(f"error: cannot write {path}: {why}: {path.parent}", err=True)
        ctx.exit(EXIT_FAILED)
    why = refusal(path, settings, "opml") if path is not None else None
    if why is not None:  # the rename would replace it whatever it is: the database, the config
        _echo(f"error: cannot write {path}: {why}", err=True)
        ctx.exit(EXIT_FAILED)
    if database_exists(settings.database):  # feed titles and home pages, where fetched
        # read-only, not synced: an export with a draft config made the sources it leaves out
        # inactive in the live database, and failed on a full disk or a read-only file
        data = _read_or_exit(ctx, settings, lambda store: opml_document(settings, store))
    else:
        data = opml_document(settings, None)
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        write_if_changed(path, data)
    except OSError as e:
        _echo(f"error: cannot write {path}: {e}", err=True)
        ctx.exit(EXIT_FAILED)
    _echo(f"{path}: {_n(len(settings.sources), 'source')} in {_n(len(settings.categories), 'category')}")


def _not_blank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--category ""` was taken as no --category at all: each feed went to its OPML folder."""
    if value is not None and not value.strip():
        raise click.BadParameter("a category name cannot be empty")
    return value.strip() if value is not None else None


@main.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--category",
    metavar="NAME",
    callback=_not_blank,
    help="Put every feed in this category (else the OPML's own).",
)
@click.pass_context
def import_opml(ctx: click.Context, file: Path, category: str | None) -> None:
    """Add the feeds of an OPML FILE to the config, keeping its comments and layout.

    Feeds go to the category their OPML folder (or `category` attribute) names, or to
    --category; feeds outside any folder go to `Imported`, unless configured already. A feed
    already in its category is skipped, so importing twice is harmless.
    """
    settings = _load(ctx)  # the config must be valid before we touch it
    try:
        feeds = parse_opml(file.read_bytes(), str(file))
        text, layout = ConfigLayout.read(settings.path.read_bytes())  # its BOM and CRLF ends kept
        new_text, report = merge_into_config(text, feeds, category)
    except OSError as e:  # unreadable: a permission, a read error
        _echo(f"error: cannot read {e.filename or file}: {e.strerror or e}", err=True)
        ctx.exit(EXIT_USAGE)
        raise
    except OpmlError as e:
        _echo(f"error: {e}", err=True)
        ctx.exit(EXIT_USAGE)
        raise
    for url, why in report.skipped:
        _echo(f"skipped   {url}: {why}")
    for url, cat in report.present:
        _echo(f"present   {url} ({cat})")
    if report.added:
        try:
            parse_config(new_text, settings.path)
        except ConfigError as e:  # would mean merge_into_config broke the file
            _echo(f"error: the config would be invalid, left unchanged:\n{e}", err=True)
            ctx.exit(EXIT_FAILED)
        try:
            write_config_text(settings.path, layout.apply(new_text))
        except OSError as e:  # a read-only or full disk, a folder the user may not write
            _echo(f"error: cannot write {settings.path}: {e}; nothing imported", err=True)
            ctx.exit(EXIT_FAILED)
    for url, cat in report.added:  # only once they are in the file: a failed write adds nothing
        _echo(f"added     {url} ({cat})")
    _echo(
        f"{_n(len(feeds), 'feed')} in {file}: {len(report.added)} added, {len(report.present)} already present, "
        f"{len(report.skipped)} skipped"
        + (f"; new categories: {', '.join(report.new_categories)}" if report.new_categories else "")
        + (f"; {settings.path} updated" if report.added else "")
    )


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _grace(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """A duration, or zero: stop without waiting for polls in flight (as a second signal does)."""
    if re.fullmatch(r"\s*0*\.?0*[smhd]?\s*", value) and "0" in value:
        return 0.0
    return _duration(ctx, param, value)


_host = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
_port = click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on (0: any free)."
)
_log_format = click.option(
    "--log-format",
    "log_format",
    type=click.Choice(logs.FORMATS, case_sensitive=False),
    default=None,
    help="Same as the global option.",
)


@main.command()
@click.option("--serve", is_flag=True, help="Also serve the output directory, /healthz and /metrics over HTTP.")
@_host
@_port
@click.option(
    "--grace",
    default="10s",
    show_default=True,
    callback=_grace,
    help="On SIGTERM/SIGINT, how long polls in flight may take to finish before they are abandoned (0: at once).",
)
@_log_format
@click.pass_context
def run(ctx: click.Context, serve: bool, host: str, port: int, grace: float, log_format: str | None) -> None:
    """The daemon: poll each source at its interval and publish what changed.

    SIGHUP, or saving a changed config file, reloads the config; SIGTERM/SIGINT stop it
    (exit 0). Exit 1 when another daemon already runs on the same database, or when
    --serve's port is taken or --host is no address of this machine (before anything is
    created).
    """
    from .daemon import Daemon

    _service_logging(ctx, log_format)
    settings = _load(ctx, log_warnings=True)
    server = _listen(ctx, host, port, settings.database) if serve else None  # before anything is created
    if server is not None:
        server.app.private = _private_files(ctx, settings)  # the config's path and database stay over reloads
    lock = InstanceLock(settings.database)
    try:
        lock.acquire()
    except AlreadyRunning as e:
        _echo(f"error: {e}", err=True)
        ctx.exit(EXIT_FAILED)
    except OSError as e:  # the database's folder is read-only, or not ours
        _echo(
            f"error: cannot create the lock file {lock.path}: {e.strerror}{why_unwritable(settings.database)}", err=True
        )
        ctx.exit(EXIT_FAILED)
    try:
        with _open_store(ctx, settings) as store:
            daemon = Daemon(settings, store, grace=grace, serve=server)
            code = daemon.run()
    except StoreError as e:  # the config's sources could not be recorded (a full disk): nothing started
        _echo(f"error: the database: {e}", err=True)  # as `fetch`, `publish` and `prune` say it
        ctx.exit(EXIT_FAILED)
    finally:
        lock.release()
    if daemon.abandoned:
        # Abandoned polls hold threads the interpreter would join at exit (up to their
        # timeout). Everything is committed and closed, so leave without waiting for them.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    ctx.exit(code)


def _private_files(ctx: click.Context, settings: Settings) -> Callable[[], list[Path]]:
    """What `serve` must never hand out, even from inside the output folder: the aggregator's
    own files (the config holds the sources' passwords, and so does the database) and the log."""
    files = [path.absolute() for path, _ in own_files(settings)]
    if not ctx.obj["log_file"]:
        return lambda: files
    log = Path(ctx.obj["log_file"]).absolute()
    rotated: list[Path] = []
    looked = [-math.inf]

    def private() -> list[Path]:
        # and the copies logrotate keeps beside it (`aggregator.log.1`, `.2.gz`, with `dateext`
        # `aggregator.log-20261129`): they come and go while serving, so the folder is looked
        # at again, but at most once a second (not a listing of a log folder per request)
        if time.monotonic() - looked[0] >= 1.0:
            pattern = glob.escape(log.name)
            rotated[:] = [*log.parent.glob(pattern + ".*"), *log.parent.glob(pattern + "-*")]
            looked[0] = time.monotonic()
        return [*files, log, *rotated]

    return private


def _listen(ctx: click.Context, host: str, port: int, database: Path) -> Server:
    """Bind `run --serve`'s port first: failing on a taken port after the lock and the
    database were made left an empty database (and a lock file) behind a failed start.
    The port of a daemon already running on the database is taken by that daemon: say so."""
    from .serve import Server, StaticApp

    try:
        return Server(StaticApp(lambda: Path()), host=host, port=port)
    except OSError as e:  # the port is taken, or the address is not ours
        holder = InstanceLock(database).holder()
        if holder is not None:
            _echo(f"error: {AlreadyRunning(database, holder if holder > 0 else None)}", err=True)
        else:
            _echo(f"error: cannot listen on {host}:{port}: {e}", err=True)
        ctx.exit(EXIT_FAILED)
        raise  # unreachable: ctx.exit raises


@main.command("prune")
@click.option(
    "--vacuum",
    is_flag=True,
    help="Then rewrite the database (VACUUM) to give the freed space back, and turn an older "
    "file to giving it back after every prune; needs free disk as large as the database.",
)
@click.pass_context
def prune_cmd(ctx: click.Context, vacuum: bool) -> None:
    """Delete posts beyond each source's keep_days / keep_per_source; print what went.

    The newest items_per_feed posts of every category are never deleted. A database made by
    this version gives the pages freed back to the disk when they are many; `--vacuum`
    rewrites it whole. Exit 0, 1 when the database cannot be written (a read-only or full
    disk, locked by another process), 2 for a config error, 130 when interrupted (Ctrl-C),
    143 when stopped by SIGTERM (saying how many sources were pruned; each is pruned whole or
    not at all).
    """
    settings = _load(ctx)
    limited = [s for s in settings.sources if s.retention.limited]
    if not limited:
        _echo("nothing to prune: no source sets keep_days or keep_per_source")
        if not vacuum:  # `--vacuum` still rewrites the file: what was deleted may be an older prune's
            return
    if not database_exists(settings.database):
        # opening it created it, empty, as whoever ran prune: a root cron job's nightly prune
        # before the service's first start left a database the service could not write to
        _echo(f"nothing to prune: no database yet at {settings.database} (nothing fetched)")
        return
    now = datetime.now(UTC)
    removed = protected = pruned = 0
    stage = "pruning"
    try:
        with _open_store(ctx, settings) as store:
            # a corrupt file or a full disk found only here was a traceback: one `error:` line, exit 1
            _or_exit(ctx, "the database", store.sync_sources, settings.sources)
            for source in limited:
                report = _or_exit(ctx, "the database", store.prune, source.key, source.retention, now)
                pruned += 1
                removed += report.removed
                protected += report.protected
                if not report.removed:
                    continue
                why = []
                if report.older:
                    days = source.retention.keep_days
                    why.append(f"{report.older} older than {days:g} {'day' if days == 1 else 'days'}")
                if report.over:
                    why.append(f"{report.over} beyond the newest {source.retention.keep_per_source}")
                _echo(f"{source.key}: removed {_n(report.removed, 'post')} ({', '.join(why)})")
                for title in report.titles:
                    _echo(f"  - {printable(title)}")  # a C1 control a title keeps (U+009D: OSC) is no command
            stage = "reclaiming"
            reclaimed = _or_exit(ctx, "the database", store.reclaim, vacuum) if vacuum or removed else None
        stage = "done"
        kept = f"; kept {protected} as their category's newest" if protected else ""
        if limited:
            _echo(f"removed {_n(removed, 'post')} from {_n(len(limited), 'source')} with limits{kept}")
        if vacuum and reclaimed:
            before, after = reclaimed
            _echo(f"vacuumed {settings.database}: {_mb(before)} → {_mb(after)}")
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: each source's prune is one transaction, rolled back if cut
        done = f"{pruned} of {_n(len(limited), 'source')} with limits pruned ({_n(removed, 'post')} removed)"
        if stage == "done":
            _stopped(ctx, f"after pruning: {done}")
        if stage == "reclaiming":
            _stopped(
                ctx,
                f"while giving the freed space back: {done}; "
                "the next `aggregator prune` (`--vacuum`) gives the space back",
            )
        _stopped(
            ctx, f"after {done}: the rest are left as they were (none half-pruned) for the next `aggregator prune`"
        )


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


@main.command()
@_host
@_port
@_log_format
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, log_format: str | None) -> None:
    """Serve the output directory over HTTP (feeds with their media types, ETag/304, gzip).

    Runs until SIGTERM/SIGINT (exit 0); `run --serve` does this and polls in one process.
    Exit 1 when the port is taken or --host is no address of this machine.
    """
    from .serve import Server, StaticApp, static_routes

    _service_logging(ctx, log_format)
    settings = _load(ctx)
    root = settings.output_dir
    # Block the stop signals before any thread starts (threads inherit the mask; waitress
    # starts its workers when the server is made) and take them synchronously here: no
    # handler runs in the middle of other code, and no worker dies of a default SIGTERM.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        server = Server(StaticApp(lambda: root, static_routes(lambda: root), _private_files(ctx, settings)), host, port)
    except OSError as e:
        _echo(f"error: cannot listen on {host}:{port}: {e}", err=True)
        ctx.exit(EXIT_FAILED)
    server.start()
    for url in server.urls:
        logging.getLogger("aggregator.serve").info("serving %s from %s", url, root)
    if not (root / "index.html").is_file():  # every request would answer 404, unexplained
        logging.getLogger("aggregator.serve").warning(
            "nothing published in %s yet: run `aggregator fetch` (or `publish`); served as it appears", root
        )
    received = signal.sigwait(stop_signals)
    logging.getLogger("aggregator.serve").info("received %s: stopping", signal.Signals(received).name)
    server.stop()
    logging.getLogger("aggregator.serve").info("stopped")


@main.command()
@click.argument("where", metavar="PATH", type=click.Path())
@click.pass_context
def backup(ctx: click.Context, where: str) -> None:
    """Copy the database to PATH, consistently, even while the daemon runs.

    PATH may be a directory: the copy is then named after the database and the time.
    Exit 0 when the copy is written and checked, 1 when it cannot be, or PATH may not be
    replaced (the config, the database or one of its files, a file in a published folder, an
    existing file that is not an SQLite database); 130 when interrupted (Ctrl-C), 143 when
    stopped by SIGTERM (saying whether the backup was written; none is half-written).
    """
    settings = _load(ctx)
    path = Path(where)
    if not database_exists(settings.database):
        _echo(f"error: no database at {settings.database} (nothing fetched yet?)", err=True)
        ctx.exit(EXIT_FAILED)
    if where.endswith(("/", os.sep)) and not path.is_dir():  # meant as a folder (a cron job's)
        _echo(f"error: cannot back up into {where}: no such directory", err=True)
        ctx.exit(EXIT_FAILED)
    if path.is_dir():
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = path / f"{settings.database.stem}-{stamp}{settings.database.suffix or '.db'}"
    named = path
    if path.is_symlink():  # `latest.db -> /mnt/nas/aggregator.db`: the copy goes where it points,
        path = path.resolve()  # not over the link, on the local disk, leaving the old copy there
        named = Path(f"{named} (→ {path})")
    why = refusal(path, settings, "backup")
    if why is not None:  # the rename would replace it whatever it is: the config, a lock file
        _echo(f"error: cannot back up to {named}: {why}", err=True)
        ctx.exit(EXIT_FAILED)
    if not path.parent.is_dir():  # else the error named our temporary `.<name>.partial` (an unmounted disk)
        why = "not a folder" if path.parent.exists() else "no such folder"
        _echo(f"error: cannot back up to {named}: {why}: {path.parent}", err=True)
        ctx.exit(EXIT_FAILED)
    target: Path | None = None
    try:
        # read-only: a backup is wanted most when the database's disk is full or its file read-only
        target = _read_or_exit(ctx, settings, lambda store: store.backup(path))
        try:
            # counted in the copy: the database's own counts, read after it, had moved on with the
            # daemon's writes (a backup said 652 posts and held 616)
            stats = read_database(target, lambda store: store.stats())
            size = target.stat().st_size
        except (StoreError, OSError) as e:  # gone already: someone else's cleanup
            _echo(f"error: the backup {target} vanished after it was written: {e}", err=True)
            ctx.exit(EXIT_FAILED)
        _echo(
            f"backed up {settings.database} to {target}: {_n(sum(stats.sources_by_state.values()), 'source')}, "
            f"{_n(stats.posts, 'post')}, {size / 1e6:.1f} MB"
        )
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the copy is made beside PATH and renamed once checked
        if target is not None:
            _stopped(ctx, f"after the backup was written: {target} is complete and checked")
        _stopped(
            ctx,
            f"before the backup was complete: nothing was written to {named} (what was there is as it was), "
            "the partial copy removed",
        )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """One row per source: URL (and the one polled), state, last success, last error,
    errors (failed polls in a row), posts stored, next poll (marked overdue when no daemon polls).

    States: new (never polled yet), ok, erroring (the last poll failed), backing off (failing;
    polled less often), rate-limited (its host sent Retry-After), gone (HTTP 410), disabled
    (enabled: false).
    """
    settings = _load(ctx)
    now = datetime.now(UTC)
    stored: dict[str, SourceState] = {}
    blocks: dict[str, datetime] = {}
    if not database_exists(settings.database):
        # Nothing fetched yet: every source is new, and asking must not create the database
        # (nor its folder) as whoever asked: `sudo aggregator status` before the service's first
        # start left a root-owned file the service could not write to.
        _echo(f"no database yet at {settings.database}: nothing has been fetched", err=True)
    else:
        # Read-only, and without syncing the config into it: status failed on a full disk or
        # a read-only file (the sync's write), and with a draft config it made the sources the
        # draft leaves out inactive in the live database, under the daemon.
        def read(store: Store) -> tuple[dict[str, SourceState], dict[str, datetime]]:
            with store.snapshot():  # the states and the hosts' Retry-After of one commit
                return {st.key: st for st in store.source_states(active_only=False)}, store.host_blocks(now)

        stored, blocks = _read_or_exit(ctx, settings, read)
    states = {s.key: configured_state(s, stored.get(s.key)) for s in settings.sources}
    zone = ZoneInfo(settings.site.timezone)
    rows: list[dict[str, Any]] = []
    for source in settings.sources:
        st = states.get(source.key)
        if st is None:
            continue
        until = blocks.get(st.host or "")
        state = stored_state(
            enabled=source.enabled,
            stored=st.state,
            errors=st.error_count,
            succeeded=st.last_success is not None,
            rate_limited_until=until,
            now=now,
        )
        next_at = None if state in (GONE, DISABLED) else st.next_poll
        if state == RATE_LIMITED and until is not None and (next_at is None or next_at < until):
            next_at = until
        # learnt (within the config's bounds as they are now), else as configured
        interval = interval_in_force(source, st.interval) if st.interval or not source.adaptive else None
        rows.append(
            {
                "url": source.key,
                "fetch_url": st.url,
                "name": st.display_name,
                "categories": list(source.categories),
                "state": state,
                "last_fetch": _iso(st.last_fetch),
                "last_success": _iso(st.last_success),
                "last_status": st.last_status,
                "last_error": st.last_error,
                "errors": st.error_count,
                "posts": st.posts,
                "next_poll": _iso(next_at),
                "learnt_url": st.learnt_url,
                "discovered_url": st.discovered_url,
                "last_error_at": _iso(st.last_error_at),
                "consecutive_errors": st.error_count,
                "last_result": st.last_result,
                "rate_limited_until": _iso(until) if state == RATE_LIMITED else None,
                "interval": interval,
                "interval_mode": "auto" if source.adaptive else "fixed",
                "pending_redirect": ({"url": st.redirect_url, "seen": st.redirect_count} if st.redirect_url else None),
                "enabled": source.enabled,
                "identity": st.identity,  # guid, or link once its guids proved useless
                "identity_note": st.identity_note,
                # due longer ago than a running daemon lets a poll wait: nothing polls it
                "overdue": next_at is not None and now - next_at > OVERDUE,
            }
        )
    if as_json:
        _echo(_terminal_json(rows))
        return
    title = _cell(f"{settings.site.title}: {_n(len(rows), 'source')}")
    table = Table(title=title, pad_edge=False)
    for col in STATUS_COLUMNS:
        # a date cell is never narrower than `2026-11-29`: on an 80-column terminal it was
        # folded mid-date (`2026-11-2` over `9`), the URL taking the room instead
        table.add_column(
            col, overflow="fold", no_wrap=col in ("state", "errors", "posts"), min_width=STATUS_MIN_WIDTHS.get(col)
        )
    lines: list[list[str]] = []
    for r, st in ((r, states[r["url"]]) for r in rows):
        where = [r["name"]] if r["name"] != r["url"] else []
        where.append(r["url"])
        if st.url != r["url"]:
            how = "learnt from permanent redirects" if st.url == st.learnt_url else "linked from the page"
            where.append(f"→ polls {st.url} ({how})")
        if st.redirect_url:
            where.append(f"(redirected permanently to {st.redirect_url}: {st.redirect_count} of {LEARN_AFTER} polls)")
        last_ok = _local(st.last_success, zone)
        if st.last_result and not st.last_error:
            last_ok += f"\n{st.last_result}"
        error = "—"
        if st.last_error:
            error = f"{st.last_error}\n{_local(st.last_error_at or st.last_fetch, zone)}"
        next_poll = _local(_dt(r["next_poll"]), zone)
        if r["state"] in (GONE, DISABLED):
            next_poll = "never: " + ("gone (HTTP 410)" if r["state"] == GONE else "enabled: false")
        else:
            if r["next_poll"] is None and r["state"] == NEW:  # the daemon polls a new source at once
                next_poll = "at once (never polled)"
            if r["overdue"]:
                seconds = (now - _dt(r["next_poll"])).total_seconds()  # type: ignore[operator]
                unit = 3600 if seconds >= 7200 else 60
                late = format_duration(round(seconds / unit) * unit)
                next_poll += f"\noverdue by {late}: is `aggregator run` running?"
            if r["interval"]:
                next_poll += f"\nevery {format_duration(round(r['interval']))}" + (
                    " (auto)" if r["interval_mode"] == "auto" else ""
                )
        cells = ("\n".join(where), r["state"], last_ok, error, str(r["errors"]), str(r["posts"]), next_poll)
        lines.append([_cell_text(c) for c in cells])
    # Piped into a file or grep, a page as wide as the longest cell: a URL folded over two
    # lines could not be found or copied whole.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 100_000
    console = Console(soft_wrap=not sys.stdout.isatty(), width=width)
    plain = width is not None and console.color_system is None and console.encoding.startswith("utf")
    if plain and (text := _plain_table(title.plain, lines)) is not None:
        # rich took 20 s to lay out 10,000 rows that need no folding: the same characters, drawn
        # here (cells and title already masked)
        click.echo(text, nl=False)
        return
    for row in lines:
        table.add_row(*map(Text, row))
    console.print(table)


STATUS_COLUMNS = ("source", "state", "last success", "last error", "errors", "posts", "next poll")
STATUS_MIN_WIDTHS = {"last success": 10, "last error": 10, "next poll": 10}


def _plain_table(title: str, rows: list[list[str]]) -> str | None:
    """`status`'s table as rich draws it (HEAVY_HEAD box, padding 0 1 without the outer
    edges, a title line) when nothing in it is folded or styled: a page as wide as its
    widest cell, without colours. None when a cell holds what rich lays out otherwise (a
    tab, a cell over 10,000 columns): rich draws those. tests/test_cli.py compares the two."""
    head = [[c] for c in STATUS_COLUMNS]
    cells = [[c.split("\n") for c in row] for row in rows]
    widths = [max(cell_len(c), STATUS_MIN_WIDTHS.get(c, 0)) for c in STATUS_COLUMNS]
    for row in cells:
        for i, cell in enumerate(row):
            for line in cell:
                if "\t" in line or (n := cell_len(line)) > 10_000:
                    return None
                if n > widths[i]:
                    widths[i] = n
    last = len(widths) - 1
    pads = [(0 if i == 0 else 1, 0 if i == last else 1) for i in range(len(widths))]
    spans = [w + left + right for w, (left, right) in zip(widths, pads, strict=True)]

    def rule(left: str, line: str, cross: str, right: str) -> str:
        return left + cross.join(line * n for n in spans) + right + "\n"

    def draw(row: list[list[str]], bar: str) -> list[str]:
        height = max(len(cell) for cell in row)
        out = []
        for k in range(height):
            parts = []
            for i, cell in enumerate(row):
                text = cell[k] if k < len(cell) else ""
                left, right = pads[i]
                parts.append(" " * left + text + " " * (widths[i] - cell_len(text) + right))
            out.append(bar + bar.join(parts) + bar + "\n")
        return out

    out = [title + "\n", rule("┏", "━", "┳", "┓"), *draw(head, "┃"), rule("┡", "━", "╇", "┩")]
    for row in cells:
        out += draw(row, "│")
    out.append(rule("└", "─", "┴", "┘"))
    return "".join(out)


# What json.dumps(ensure_ascii=False) leaves raw that drives or reorders a terminal (as
# `printable` escapes it): DEL and C1 controls, bidi embeddings, overrides and isolates, and
# lone surrogates. Outside strings its output is ASCII, so these are always inside one.
_JSON_RAW = re.compile(f"[\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")


def _terminal_json(value: Any) -> str:
    """`value` as JSON for a terminal: a title's C1 CSI or right-to-left override is written
    as JSON's `\\u009b`, the same string to a JSON reader; other letters are written as they are."""
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _cell(text: str) -> Text:
    """A status cell as plain text: a feed's title or a server's words in an error are not
    rich markup (`[/x]` in a title stopped `status` with a traceback, `[link=…]` made a
    terminal hyperlink) nor control characters (a C1 CSI, U+009B, drives some terminals)."""
    return Text(_cell_text(text))


def _cell_text(text: str) -> str:
    return "\n".join(printable(line) for line in masked(text).split("\n"))


OVERDUE = timedelta(minutes=10)  # a poll due longer ago than this is not waiting for a busy daemon


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _local(dt: datetime | None, zone: ZoneInfo) -> str:
    return "—" if dt is None else local_time(dt, zone)


if __name__ == "__main__":  # pragma: no cover
    main()
