"""Tell a WebSub hub that feeds changed, so subscribers get them pushed within seconds.

W3C WebSub leaves the publisher-to-hub notification to the hub; the de-facto form every
public hub accepts (and PubSubHubbub 0.4 specified) is a form POST of `hub.mode=publish`
and `hub.url=<feed URL>`, one per feed. A hub being down must never stop publishing:
failures are logged and counted, nothing is raised.

Nor may a hub hold anything up. A hub that accepts connections and never answers cost a
timeout per changed feed, in line: a minute for one `fetch`, a daemon whose next publish
and whose shutdown waited behind them. So a batch of pings (`ping_hub`) has one deadline
for all, and a hub that fails to connect or answer once is taken to be down for the rest
of the batch; the daemon hands its pings to `HubPinger`, a thread of its own, and never
waits for it longer than a short bound.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterable

import requests

from .. import USER_AGENT
from ..plural import counted

__all__ = ["BATCH_DEADLINE", "PING_TIMEOUT", "HubPinger", "ping_hub"]

log = logging.getLogger(__name__)

PING_TIMEOUT = 10.0  # seconds one ping may take to connect, and then to answer
BATCH_DEADLINE = 10.0  # seconds all pings of one `fetch` or `publish` may take together
EXCERPT = 80  # characters of a text/plain error body worth a log line (a hub's HTML page is not)
RETRY_DELAYS = (30.0, 120.0, 600.0)  # seconds before each new try of a failed ping in the daemon


class _HubDown(Exception):
    """The hub did not connect or answer: the batch's other pings would only wait as long.

    Its one argument is the short reason."""


def ping_hub(
    hub: str,
    feed_urls: Iterable[str],
    timeout: float = PING_TIMEOUT,
    session: requests.Session | None = None,
    deadline: float | None = BATCH_DEADLINE,
) -> tuple[int, int]:
    """POST `hub.mode=publish` for each feed URL; returns (accepted, failed).

    `deadline`: seconds for the whole batch (None: no limit); pings it leaves unsent, or
    left after the hub failed to connect or answer, count as failed and are logged in one line."""
    urls = list(dict.fromkeys(feed_urls))
    if not urls:
        return 0, 0
    end = None if deadline is None else time.monotonic() + deadline
    own = session is None
    http = session or requests.Session()
    accepted = failed = 0
    try:
        for i, url in enumerate(urls):
            left = timeout if end is None else min(timeout, end - time.monotonic())
            if left <= 0:
                _skipped(hub, len(urls) - i, f"out of time ({deadline:g} s for all pings)")
                failed += len(urls) - i
                break
            try:
                ok = _ping(http, hub, url, left) is None
            except _HubDown:
                failed += len(urls) - i
                if i + 1 < len(urls):
                    _skipped(hub, len(urls) - i - 1, "the hub did not connect or answer")
                break
            accepted += ok
            failed += not ok
    finally:
        if own:
            http.close()
    return accepted, failed


def _skipped(hub: str, count: int, why: str) -> None:
    log.warning("WebSub hub %s: %s skipped: %s", hub, counted(count, "ping"), why)


def _ping(http: requests.Session, hub: str, url: str, timeout: float) -> str | None:
    """One ping; None when the hub took it, else why not. Raises _HubDown when it did not
    connect or answer."""
    try:
        response = http.post(
            hub,
            data={"hub.mode": "publish", "hub.url": url},
            headers={"User-Agent": USER_AGENT},
            timeout=timeout,
            allow_redirects=False,
            stream=True,  # an error page is not read whole: at most its first line is logged
        )
    except (requests.Timeout, requests.ConnectionError) as e:
        reason = short_reason(e, timeout)
        log.warning("WebSub hub %s: ping for %s failed: %s", hub, url, reason)
        raise _HubDown(reason) from e
    except requests.RequestException as e:  # an invalid hub URL, a redirect loop: this ping only
        reason = short_reason(e, timeout)
        if reason == "invalid hub URL" and _readable(hub):  # the proxy's URL it was (`op:pw@proxy:3128`)
            reason = "invalid proxy URL (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY)"
        log.warning("WebSub hub %s: ping for %s failed: %s", hub, url, reason)
        return reason
    with response:
        status = response.status_code
        if 200 <= status < 300:
            log.debug("WebSub hub %s accepted %s (HTTP %d)", hub, url, status)
            return None
        excerpt = _excerpt(response)
        reason = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
        log.warning("WebSub hub %s: ping for %s failed: %s", hub, url, reason)
        return reason


def _readable(url: str) -> bool:
    """Whether requests takes `url` as a URL: when it does, an invalid URL was the proxy's,
    and `invalid hub URL` sent the operator to a hub setting that is right."""
    try:
        requests.models.PreparedRequest().prepare_url(url, None)
    except requests.RequestException:
        return False
    return True


def _excerpt(response: requests.Response) -> str:
    """The first line of a short text/plain answer (a hub saying why), else nothing."""
    if response.headers.get("Content-Type", "").split(";")[0].strip().lower() != "text/plain":
        return ""
    try:
        head = next(response.iter_content(4 * EXCERPT), b"")
    except (requests.RequestException, StopIteration):
        return ""
    text = " ".join(head.decode("utf-8", "replace").split("\n", 1)[0].split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def short_reason(error: BaseException, timeout: float) -> str:
    """What went wrong, in a few words: requests' text is a nest of reprs
    (`Max retries exceeded ... NewConnectionError(...)`)."""
    if isinstance(error, requests.Timeout):
        return f"timed out after {timeout:.3g} s"
    if isinstance(error, requests.exceptions.ProxyError):  # the proxy down read as the hub down
        inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        why = short_reason(inner, timeout) if inner is not None else "connection failed"  # urllib3's, below
        return f"cannot reach the proxy (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY): {why}"
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:  # the cause is buried in urllib3's wrappers: MaxRetryError.reason, __cause__, args
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
        if isinstance(e, socket.gaierror):
            return "host not found"
        if isinstance(e, TimeoutError | socket.timeout):
            return f"timed out after {timeout:.3g} s"
        if isinstance(e, ssl.SSLError):
            return "TLS error"
        nested = [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
        todo += [n for n in nested if isinstance(n, BaseException)]
    if "NameResolutionError" in repr(error) or "Name or service not known" in str(error):
        return "host not found"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return "invalid hub URL"
    return type(error).__name__


class HubPinger:
    """The daemon's pings, sent on a thread of their own, so a slow hub delays nothing else.

    Feeds wait in a set (in order) until sent: a feed that changes again while its ping is
    pending is pinged once. When a ping fails to connect or is not answered, the pings that
    were pending for that hub when it was sent wait with it: a hub that is down is down for
    all feeds. A failed ping is tried again after each of `retry_delays` (a hub down for a
    minute would otherwise never hear of what changed meanwhile, until the feed changes
    again), then given up with one line; a new change of the feed sends it at once.
    """

    def __init__(self, timeout: float = PING_TIMEOUT, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.timeout = timeout
        self.retry_delays = retry_delays
        self._cond = threading.Condition()
        # (hub, feed URL) → when it was (last) asked for, a serial: oldest first
        self._pending: dict[tuple[str, str], int] = {}
        self._serial = 0
        self._retry: dict[tuple[str, str], float] = {}  # failed → when (monotonic) to try again
        self._attempts: dict[tuple[str, str], int] = {}  # failed attempts of the pings pending or retried
        self._sending = False
        self._stopping = False
        self.failing: tuple[float, str] | None = None  # since when (monotonic) the hub fails, the last reason
        self.accepted = self.failed = 0
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._loop, name="websub", daemon=True)

    def start(self) -> HubPinger:
        self._thread.start()
        return self

    def add(self, hub: str, feed_urls: Iterable[str]) -> None:
        with self._cond:
            if self._stopping:
                return
            for url in feed_urls:
                key = (hub, url)
                self._serial += 1
                self._pending.pop(key, None)  # asked again: it goes last, with its new serial
                self._pending[key] = self._serial
                self._retry.pop(key, None)  # a new change: sent now, its count of failures anew
                self._attempts.pop(key, None)
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Pings not yet answered (the one being sent included), not counting those waiting
        to be tried again (`retrying`)."""
        with self._cond:
            return len(self._pending) + self._sending

    @property
    def retrying(self) -> int:
        """Failed pings waiting to be tried again."""
        with self._cond:
            return len(self._retry)

    def stop(self, timeout: float) -> int:
        """Let pending pings go out for at most `timeout` seconds; returns how many were dropped
        (those waiting to be tried again included).

        A ping still waiting for its hub then is not waited for: the thread is a daemon
        thread, and the process may exit under it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.ident is not None:  # started
            self._thread.join(max(0.0, timeout))
        with self._cond:
            dropped = len(self._pending) + self._sending + len(self._retry)
            self._pending.clear()
            self._retry.clear()
        if dropped:
            log.warning(
                "stopping: %s to the WebSub hub dropped (not sent within %g s)", counted(dropped, "ping"), timeout
            )
        if not self._thread.is_alive():
            self._session.close()
        return dropped

    def _next(self) -> tuple[str, str, int] | None:
        """The next ping to send and the serial asked before it, waiting for one to be due;
        None once stopping with nothing pending (retries are not waited for)."""
        with self._cond:
            while True:
                now = time.monotonic()
                for key in [k for k, due in self._retry.items() if due <= now]:
                    del self._retry[key]
                    self._serial += 1
                    self._pending[key] = self._serial
                if self._pending:
                    hub, url = next(iter(self._pending))
                    del self._pending[(hub, url)]
                    self._sending = True
                    return hub, url, self._serial  # what is asked while it waits is not its to drop
                if self._stopping:
                    return None
                self._cond.wait(min(self._retry.values()) - now if self._retry else None)

    def _loop(self) -> None:
        while (taken := self._next()) is not None:
            hub, url, asked_before = taken
            try:
                reason = _ping(self._session, hub, url, self.timeout)
            except _HubDown as e:
                reason = str(e)
                self._hub_down(hub, asked_before)
            except Exception as e:  # a bug here must not end the thread and leave pings piling up
                reason = type(e).__name__
                log.exception("WebSub hub %s: ping for %s failed", hub, url)
            with self._cond:
                self._sending = False
                if reason is None:
                    self.accepted += 1
                    self.failing = None
                    self._attempts.pop((hub, url), None)
                else:
                    self.failed += 1
                    since = self.failing[0] if self.failing is not None else time.monotonic()
                    self.failing = (since, f"{hub}: {reason}")
                    self._try_again([(hub, url)])

    def _try_again(self, keys: list[tuple[str, str]]) -> None:
        """Schedule failed pings (the lock held), or give them up after the last delay."""
        given_up = []
        for key in keys:
            if key in self._pending or key in self._retry:
                continue  # asked again meanwhile: that ping stands
            attempt = self._attempts.get(key, 0)
            if attempt < len(self.retry_delays):
                self._attempts[key] = attempt + 1
                self._retry[key] = time.monotonic() + self.retry_delays[attempt]
            else:
                self._attempts.pop(key, None)
                given_up.append(key)
        for hub, url in given_up:
            log.warning(
                "WebSub hub %s: ping for %s given up after %s", hub, url, counted(len(self.retry_delays) + 1, "try")
            )

    def _hub_down(self, hub: str, asked_before: int) -> None:
        """The hub's pings that were pending when the failed one was sent wait with it (those
        asked for since, by a later publish, may find it back and are tried)."""
        with self._cond:
            waiting = [key for key, serial in self._pending.items() if key[0] == hub and serial <= asked_before]
            for key in waiting:
                del self._pending[key]
            self.failed += len(waiting)
            self._try_again(waiting)
        if waiting:
            _skipped(hub, len(waiting), "the hub did not connect or answer: tried again later")
