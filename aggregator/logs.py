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


def setup(level: int = logging.WARNING, fmt: str = "text", file: str | Path | None = None) -> logging.Handler:
    """Configure the root logger: stderr (systemd's journal, Docker's log driver) or `file`.

    A file is opened with WatchedFileHandler, which reopens it when logrotate moves it
    away, so `config/logrotate` needs no copytruncate and no signal.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (use {' or '.join(FORMATS)})")
    handler: logging.Handler
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(str(file), encoding="utf-8")
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
