"""A hostile server's words reach the operator's terminal only as text.

An HTTP reason phrase and a Location header are the server's to write, and a source's error
quotes them: `fetch` prints it, the logs carry it, `status` shows it. Raw, an ESC in them
cleared the operator's screen, retitled the window, coloured or rewrote earlier lines.
"""

from __future__ import annotations

import socket
import socketserver
import sqlite3
import threading
from collections.abc import Iterator

import pytest

from .conftest import run_cli

ANSWERS = {
    "/reason": b"HTTP/1.1 500 Oops\x1b[2J\x1b]0;pwned\x07\x1b[31mRED\r\nContent-Length: 0\r\n\r\n",
    "/location": b"HTTP/1.1 302 Found\r\nLocation: http://[::1\x1b[2J\x9b31m/x\r\nContent-Length: 0\r\n\r\n",
}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                return
            head += data
        path = head.split(b" ", 2)[1].decode("latin-1")
        sock.sendall(ANSWERS.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))


@pytest.fixture
def hostile() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_control_characters_a_server_sends_are_shown_escaped(tmp_path, hostile) -> None:
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\n"
        f"categories:\n  - name: C\n    sources:\n      - url: {hostile}/reason\n      - url: {hostile}/location\n",
        encoding="utf-8",
    )
    fetch = run_cli("--config", str(cfg), "fetch")
    assert fetch.returncode == 1, fetch.stdout + fetch.stderr
    status = run_cli("--config", str(cfg), "status")
    shown = fetch.stdout + fetch.stderr + status.stdout + status.stderr
    for control in ("\x1b", "\x07", "\x9b"):
        assert control not in shown
    # what the server sent is still there to read
    assert "HTTP 500 Oops\\x1b[2J\\x1b]0;pwned\\x07\\x1b[31mRED" in fetch.stdout
    assert "http://[::1\\x1b[2J\\x9b31m/x" in fetch.stdout
    assert "\\x1b[2J" in fetch.stderr  # the warning logged


def test_a_feed_title_is_shown_by_status_as_it_is_written(tmp_path) -> None:
    """A feed's title is shown by `status` as text: rich read it as markup, so a title holding
    `[/nope]` stopped `status` with a traceback (for every source), and `[link=…]` made a
    terminal hyperlink; a C1 CSI (U+009B) in it reached the terminal raw."""
    import json

    from .conftest import fetch_feed_text

    title = "Nice [/nope] [link=https://evil.example/]click[/link] \u009b31mRED"
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": title, "items": [{"id": "1", "content_text": "x"}]}
    fetch_feed_text(tmp_path, "f.json", json.dumps(feed))
    cfg = tmp_path / "feeds.yaml"
    status = run_cli("--config", str(cfg), "status")
    assert status.returncode == 0, status.stdout + status.stderr
    # the first column, its cells folded at the table's width, read back as one string
    column = "".join(line.split("│")[1] for line in status.stdout.splitlines() if line.startswith("│"))
    assert "Nice[/nope][link=https://evil.example/]click[/link]\\x9b31mRED" in column.replace(" ", "")
    assert "\u009b" not in status.stdout


def test_an_error_the_store_cannot_take_is_shown_escaped_too(tmp_path, hostile, monkeypatch, caplog) -> None:
    """When the database cannot record a source's error (disk full), the error is still logged
    and handed to `fetch` to print: it went out raw there, the server's ESC and BEL with it."""
    import logging

    from aggregator.fetch import Fetcher
    from aggregator.models import Source
    from aggregator.pipeline import update_source
    from aggregator.store import Store, StoreError

    url = f"{hostile}/reason"
    source = Source(key=url, url=url, categories=("c",))
    with Store(tmp_path / "a.db") as store:
        store.sync_sources([source])

        def full(*args, **kwargs):
            raise StoreError("database or disk is full")

        monkeypatch.setattr(store, "record_error", full)
        with caplog.at_level(logging.ERROR):
            outcome = update_source(source, store, Fetcher())
    assert outcome.status == "error" and outcome.store_error
    shown = outcome.error + caplog.text
    assert "\x1b" not in shown and "\x07" not in shown
    assert "Oops\\x1b[2J" in outcome.error


@pytest.mark.parametrize(
    ("title", "shown"), [("Old \u009d0;pwned", "Old \\x9d0;pwned"), ("Old \u202etxt.exe", "Old \\u202etxt.exe")]
)
def test_prune_lists_a_pruned_posts_title_escaped(tmp_path, title, shown) -> None:
    """`prune` lists the titles of the posts it removed: a C1 control a title keeps (U+009D,
    OSC, which cp1252 leaves undefined: a twice mis-decoded `”`) went to the terminal raw, as
    it did in `status` before; a right-to-left override (U+202E) reversed the rest of the line
    in a terminal that lays out bidi text."""
    from .conftest import fetch_feed_text

    items = "".join(
        f"<item><title>{title}</title><guid>g{n}</guid><pubDate>0{n} Jun 2025 08:00:00 +0000</pubDate></item>"
        for n, title in ((2, "Newest"), (1, title))
    )
    rss = f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><link>https://f.example/</link>{items}</channel></rss>'
    fetch_feed_text(tmp_path, "f.xml", rss, site="  items_per_feed: 1\n")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "        keep_per_source: 1\n", encoding="utf-8")
    pruned = run_cli("--config", str(cfg), "prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert "removed 1 post" in pruned.stdout
    assert title not in pruned.stdout and f"  - {shown}\n" in pruned.stdout


def test_a_gone_sources_error_an_older_version_stored_raw_is_shown_escaped(tmp_path, httpserver) -> None:
    """An error stored before its control characters were escaped (an older version, or a
    database it wrote) is printed by `fetch` in the line saying the source is gone: its ESC
    reached the terminal from there."""
    httpserver.expect_request("/feed").respond_with_data("", status=410)
    url = httpserver.url_for("/feed")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n      - url: {url}\n",
        encoding="utf-8",
    )
    first = run_cli("--config", str(cfg), "fetch")
    assert "gone" in first.stdout, first.stdout + first.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    with con:
        con.execute("UPDATE sources SET last_error = ?", ["HTTP 410 Gone\x1b[2J\x1b]0;pwned\x07"])
    con.close()
    again = run_cli("--config", str(cfg), "fetch")
    shown = again.stdout + again.stderr
    assert "gone (HTTP 410 Gone\\x1b[2J\\x1b]0;pwned\\x07)" in shown
    assert "\x1b" not in shown and "\x07" not in shown


def test_status_json_writes_a_titles_controls_as_json_escapes(tmp_path) -> None:
    """`status --json` wrote a feed's title raw (`ensure_ascii=False`): a C1 CSI (U+009B) or a
    right-to-left override in it reached the terminal that `status` itself protects. They are
    written as JSON's own escapes: the same title to a JSON reader, Arabic letters as they are."""
    import json

    from .conftest import fetch_feed_text

    title = "أخبار \u009b31mRED \u202etxt.exe"
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": title, "items": [{"id": "1", "content_text": "x"}]}
    fetch_feed_text(tmp_path, "f.json", json.dumps(feed))
    cfg = tmp_path / "feeds.yaml"
    status = run_cli("--config", str(cfg), "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "\u009b" not in status.stdout and "\u202e" not in status.stdout, status.stdout
    assert "أخبار" in status.stdout
    assert json.loads(status.stdout)[0]["name"] == title
