"""Per-host politeness: a cap on requests in flight to one host, and reading Retry-After.

A host is a server (name and non-default port), not a source: many sources on one site
share its slots, and a rate limit one of them receives holds back all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import idna

DEFAULT_PER_HOST = 2
# A server asking for more than a week of silence is more likely broken than serious; waiting
# longer would silence the source for good, which is the one thing this poller must not do.
MAX_RETRY_AFTER = timedelta(days=7)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def wire_name(name: str) -> str:
    """A host name as requests sends it: each label with letters beyond ASCII encoded by IDNA
    2008, strictly, as urllib3 does; its ASCII labels as written (`my_feed.bücher.de` is
    fetched: `_` is no IDNA letter, but that label is not encoded). Raises `idna.IDNAError`
    for a name no request can carry (`☃.net`)."""
    if name.isascii():
        return name
    return ".".join(
        label if label.isascii() else idna.encode(label, strict=True, std3_rules=True).decode("ascii")
        for label in name.split(".")
    )


def host_key(url: str) -> str:
    """`example.com`, or `example.com:8080` when the port is not the scheme's default; an
    IPv6 address in brackets, as URLs write it (`::1:8080` read as an address, not a port)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        return host
    return f"{host}:{port}"


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """When a `Retry-After` (delay in seconds, or an HTTP date) ends; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdecimal():  # not isdigit(): "²" is a digit that int() refuses
        until = now + timedelta(seconds=int(value[:12]))
    else:
        try:
            until = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if until.tzinfo is None:  # HTTP dates are GMT by definition
            until = until.replace(tzinfo=UTC)
    return max(now, min(until, now + MAX_RETRY_AFTER))


class HostLimiter:
    """At most `limit` concurrent requests per host; callers beyond that wait their turn."""

    def __init__(self, default: int = DEFAULT_PER_HOST) -> None:
        self.default = default
        self._slots: dict[str, tuple[int, threading.BoundedSemaphore]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, url: str, limit: int | None = None) -> Iterator[str]:
        """A slot of `url`'s host. A `limit` other than the host's so far (a reload changed
        `site.per_host`) takes effect at once: new callers share fresh slots, those in flight
        release their old ones. Kept at the first limit, a raised `per_host` held the daemon's
        polls waiting in its pool workers until a restart."""
        host = host_key(url)
        want = max(1, limit or self.default)
        with self._lock:
            held = self._slots.get(host)
            if held is None or held[0] != want:
                held = self._slots[host] = (want, threading.BoundedSemaphore(want))
        with held[1]:
            yield host
