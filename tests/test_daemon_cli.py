"""`aggregator fetch`'s progress bar: on a terminal only, with the per-source lines and the
summary unchanged; and the service commands' options."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from .conftest import run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07")


def _config(tmp_path, corpus_server):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://example.org/\ncategories:\n  - name: News\n    sources:\n"
        f"      - url: {corpus_server.base}zh/gansu-economy.atom\n"
        f"      - url: {corpus_server.base}zh/zhangye-daily.gbk.rss\n"
        "      - url: http://127.0.0.1:9/down.xml\n",
        encoding="utf-8",
    )
    return cfg


def _run_on_a_terminal(args: list[str]) -> tuple[int, str]:
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", *args], stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(60), b"".join(chunks).decode("utf-8", "replace")


def test_fetch_progress_bar_on_a_terminal_and_none_in_a_pipe(tmp_path, corpus_server):
    cfg = _config(tmp_path, corpus_server)
    piped = run_cli("--config", str(cfg), "fetch")
    assert piped.returncode == 1
    lines = piped.stdout.splitlines()
    # exactly one line per source and the summary: no bar, no escape codes
    assert len(lines) == 4 and "\x1b" not in piped.stdout and "━" not in piped.stdout
    assert lines[0].startswith("new        ") and "gansu-economy.atom (" in lines[0]
    assert lines[2].startswith("error      http://127.0.0.1:9/down.xml: connection failed")
    assert lines[3].startswith("3 sources: 2 new, 0 updated, 0 unchanged, 1 failed; ")

    fresh = tmp_path / "tty" / "feeds.yaml"  # the same config on an empty database: the same lines
    fresh.parent.mkdir()
    fresh.write_text(cfg.read_text(encoding="utf-8"), encoding="utf-8")
    code, screen = _run_on_a_terminal(["--config", str(fresh), "fetch"])
    assert code == 1
    text = ANSI.sub("", screen)
    assert "━" in text and "3/3" in text and "1 failed" in text  # the bar, with done and failed counts
    for line in lines:  # the same per-source lines and summary, above the bar
        assert line + "\r\n" in text, line


def test_run_rejects_a_bad_grace_and_a_taken_port(tmp_path):
    import socket

    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://example.org/\n", encoding="utf-8")
    bad = run_cli("--config", str(cfg), "run", "--grace", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--config", str(cfg), "run", "--serve", "--port", str(port), timeout=30)
    assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    # nothing left behind by the failed start: no empty database, no lock file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds.yaml"], result.stderr


# a label of 64 characters: no valid host name, refused by the resolver before any query
@pytest.mark.parametrize("host", ["no-such-" + "x" * 56 + ".invalid"])
def test_serve_and_run_name_a_host_they_cannot_listen_on_in_one_line(tmp_path, host):
    """waitress raises ValueError for a name that does not resolve (`999.1.1.1` too): it was
    a 40-line traceback, where a taken port says one line."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://example.org/\n", encoding="utf-8")
    for command in (["serve"], ["run", "--serve"]):
        result = run_cli("--config", str(cfg), *command, "--host", host, "--port", "18742", timeout=30)
        assert result.returncode == 1, result.stderr
        assert f"error: cannot listen on {host}:18742: " in result.stderr and "resolves" in result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds.yaml"], result.stderr
