"""Test helpers for polling: a config + store + fetcher rig with an injectable clock and RNG,
`status` read back through the real command, and a raw-socket server that trickles bytes."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.fetch import Fetcher
from aggregator.pipeline import Outcome, update_source
from aggregator.store import SourceState, Store


def rss(title: str = "Feed", items: int = 2, extra: str = "", dated: datetime | None = None) -> bytes:
    """A small RSS 2.0 feed; items dated an hour apart back from `dated` (undated when None)."""
    parts = []
    for i in range(items):
        date = ""
        if dated is not None:
            stamp = (dated - timedelta(hours=i)).strftime("%a, %d %b %Y %H:%M:%S +0000")
            date = f"<pubDate>{stamp}</pubDate>"
        parts.append(f"<item><title>Item {i}</title><guid>urn:item:{i}</guid>{date}<description>x</description></item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>'
        f"<title>{title}</title><link>https://example.org/</link>{extra}{''.join(parts)}</channel></rss>"
    ).encode()


class Clock:
    """The injectable clock: starts at the real now (so `status`, which reads the real
    clock, agrees about what is in the future) and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Rig:
    """A real feeds.yaml, a real SQLite store and a real Fetcher, polled one source at a time."""

    def __init__(self, tmp_path: Path, sources: list[str], site: str = "", defaults: str = "", **fetcher: Any):
        self.cfg = tmp_path / "feeds.yaml"
        text = "site:\n  title: Poll test\n  url: https://example.org/\n" + site
        if defaults:
            text += "defaults:\n" + defaults
        text += "categories:\n  - name: News\n    sources:\n"
        for src in sources:
            lines = src.strip("\n").splitlines()
            text += f"      - {lines[0]}\n" + "".join(f"        {line}\n" for line in lines[1:])
        self.cfg.write_text(text, encoding="utf-8")
        self.settings = load_config(self.cfg)
        self.store = Store(self.settings.database)
        self.store.sync_sources(self.settings.sources)
        self.fetcher = Fetcher(**fetcher)
        self.clock = Clock()
        self.rng = random.Random(3)

    def close(self) -> None:
        self.fetcher.close()
        self.store.close()

    def poll(self, url: str) -> Outcome:
        source = self.settings.source(url)
        assert source is not None, url
        return update_source(source, self.store, self.fetcher, now=self.clock, rng=self.rng)

    def state(self, url: str) -> SourceState:
        st = self.store.source_state(url)
        assert st is not None
        return st

    def wait(self, url: str) -> float:
        """Seconds from the clock's now to the stored next poll."""
        nxt = self.state(url).next_poll
        assert nxt is not None
        return (nxt - self.clock.now).total_seconds()

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, ["--config", str(self.cfg), *args], env={"COLUMNS": "400"})
        assert result.exit_code in (0, 1), result.output
        return result.output

    def status(self) -> dict[str, dict[str, Any]]:
        return {row["url"]: row for row in json.loads(self.cli("status", "--json"))}

    def table(self) -> str:
        return self.cli("status")


class TrickleServer:
    """A raw-socket HTTP server that sends its response one byte at a time, slowly: first the
    status line and headers (`mode="headers"`) or a quick head then the body (`mode="body"`)."""

    def __init__(self, mode: str, delay: float = 0.2) -> None:
        self.mode = mode
        self.delay = delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed"
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
        body = rss(items=50)
        try:
            conn.recv(65536)
            if self.mode == "headers":
                slow, fast = head + b"X-Padding: " + b"." * 200 + b"\r\n\r\n", b""
            else:
                fast, slow = head + f"Content-Length: {len(body)}\r\n\r\n".encode(), body
            conn.sendall(fast)
            for byte in slow:
                if self.closed.is_set():
                    break
                conn.sendall(bytes([byte]))
                time.sleep(self.delay)
        except OSError:
            pass  # the client gave up and closed: what the test wants
        finally:
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
