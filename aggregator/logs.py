"""Logging for people (text) and for log pipelines (JSON lines), each line naming its source.

A service is looked at only when something is wrong, and then the first question is
"which feed?". Work on one source runs inside `source_context(key)`, so every record made
meanwhile, by any module (pipeline, fetch, store, urllib3), carries that source: as a
`source` field in JSON, and in text wherever the message does not already name it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.handlers
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .credentials import masked

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_current_source: contextvars.ContextVar[str | None] = contextvars.ContextVar("aggregator_source", default=None)

# attributes every LogRecord has; anything else was passed with `extra=` and goes to JSON
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def source_context(key: str) -> Iterator[None]:
    """Tag every log record made in this thread meanwhile with `source=key`."""
    token = _current_source.set(key)
    try:
        yield
    finally:
        _current_source.reset(token)


class SourceFilter(logging.Filter):
    """Gives each record a `source` attribute: the one passed in `extra`, else the context's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "source", None) is None:
            record.source = _current_source.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """Local time with its UTC offset: a bare local time was ambiguous for the hour a
        clock goes back, and could not be lined up with the JSON logs' UTC or another host's."""
        stamp = datetime.fromtimestamp(record.created).astimezone()
        return f"{stamp:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d}{stamp:%z}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        source = getattr(record, "source", None)
        if source and source not in record.getMessage():
            first, nl, rest = line.partition("\n")  # keep a traceback below the tagged line
            line = f"{first} [source={source}]{nl}{rest}"
        return masked(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, source, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        source = getattr(record, "source", None)
        if source is not None:
            out["source"] = source
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and key != "source" and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:  # a record from a worker process: its traceback came as text
            out["exception"] = record.exc_text
        return masked(json.dumps(out, ensure_ascii=False, default=str))


class LogFileHandler(logging.handlers.WatchedFileHandler):
    """A log file that, once its disk is full (or it is removed with its folder), says so on
    stderr in one line, not a traceback per record: the journal filled with thousands of
    `--- Logging error ---` blocks, hiding the one line that said why. Says so again, once,
    when it writes again."""

    def __init__(self, filename: str) -> None:
        super().__init__(filename, encoding="utf-8")
        self._failing: str | None = None  # the error writing last failed with, until a write works
        self._failed_now = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        try:
            # reopening after logrotate moved the file (flushing the old one, opening the new)
            # is outside the stdlib's own error handling: on a full disk, or with the folder
            # removed, it raised into whatever code logged, and took the daemon down
            super().emit(record)
        except OSError:
            self.handleError(record)
        if self._failing is not None and not self._failed_now:
            self._failing = None
            _stderr(f"log file {self.baseFilename}: writing again")

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - stdlib name
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)  # a bug (a bad format string): the stdlib's report
            return
        self._failed_now = True
        why = error.strerror or str(error)
        if why != self._failing:
            self._failing = why
            _stderr(f"log file {self.baseFilename}: cannot write ({why}); log lines may be lost until it can")


def _stderr(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"aggregator: {line}\n")
        sys.stderr.flush()


def setup(level: int = logging.WARNING, fmt: str = "text", file: str | Path | None = None) -> logging.Handler:
    """Configure the root logger: stderr (systemd's journal, Docker's log driver) or `file`.

    A file is opened with WatchedFileHandler, which reopens it when logrotate moves it
    away, so `config/logrotate` needs no copytruncate and no signal. Its missing folders are
    created (as the README says): service setups point `--log-file` at a folder nothing
    else makes, such as `/var/log/aggregator/` under a unit without `LogsDirectory=`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (use {' or '.join(FORMATS)})")
    handler: logging.Handler
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handler = LogFileHandler(str(file))
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SourceFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(max(level, logging.DEBUG))
    return handler
