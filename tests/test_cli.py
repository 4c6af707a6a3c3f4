"""The `aggregator` command as users and their scripts run it: output and exit codes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from .conftest import CORPUS, REFERENCE, StaticServer, fetch_one_feed, run_cli
from .reliability.conftest import read_only

ZH = """\
site:
  title: 财经新闻
  url: https://finews.withounder.com
  language: zh-CN
  timezone: Asia/Shanghai
categories:
  - name: 张掖日报
    tags: [张掖日报新闻]
    sources:
      - url: {base}zh/zhangye-daily.gbk.rss
        name: 张掖日报
jekyll:
  dir: jekyll
"""


@pytest.fixture
def zh_site(tmp_path, corpus_server) -> Path:
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(ZH.format(base=corpus_server.base), encoding="utf-8")
    return cfg


def test_check_ok_and_bad(tmp_path, zh_site):
    ok = run_cli("--config", str(zh_site), "check")
    assert ok.returncode == 0 and "1 category, 1 source" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(zh_site.read_text().replace("Asia/Shanghai", "Asia/Nowhere"), encoding="utf-8")
    result = run_cli("--config", str(bad), "check")
    assert result.returncode == 2
    assert f"{bad}:5: site.timezone: unknown time zone: 'Asia/Nowhere'" in result.stderr


def test_config_from_environment_and_default_path(tmp_path, zh_site, monkeypatch):
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(zh_site))
    assert run_cli("check").returncode == 0
    monkeypatch.delenv("AGGREGATOR_CONFIG")
    missing = run_cli("check", cwd=tmp_path / "..")
    assert missing.returncode == 2 and "feeds.yaml: file not found" in missing.stderr


def test_a_default_config_that_is_not_there_names_the_folder_it_was_looked_for_in(tmp_path, monkeypatch):
    """A cron job runs in the user's home folder: without --config it said only `feeds.yaml:
    file not found`, not where it looked nor how to name the config."""
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"feeds.yaml: file not found in {tmp_path} (the default, ./feeds.yaml: give --config FILE or set "
        "$AGGREGATOR_CONFIG)\n"
    )
    named = run_cli("--config", "feeds.yaml", "status", cwd=tmp_path)  # named: as it was named
    assert (named.returncode, named.stderr) == (2, "feeds.yaml: file not found\n")


def test_jekyll_export_of_the_reference_post_is_byte_identical(zh_site):
    result = run_cli("--config", str(zh_site), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    posts = sorted((zh_site.parent / "jekyll" / "_posts").glob("2022-02-10-*.md"))
    assert len(posts) == 1
    assert posts[0].read_bytes() == (REFERENCE / "sample-post.md").read_bytes()


def test_broken_sources_are_reported_and_the_others_land(tmp_path, httpserver: HTTPServer, corpus_server):
    httpserver.expect_request("/html").respond_with_data(
        "<!doctype html><html><body>Service page</body></html>", content_type="text/html"
    )
    httpserver.expect_request("/garbage").respond_with_data(
        b"\x89PNG\r\n\x1a\n\x00\x00garbage", content_type="image/png"
    )
    httpserver.expect_request("/500").respond_with_data("boom", status=500)
    cfg = tmp_path / "feeds.yaml"
    httpserver.expect_request("/empty").respond_with_data(
        "<rss version='2.0'><channel><title>Quiet</title><link>https://q.example/</link></channel></rss>",
        content_type="application/rss+xml",
    )
    broken = [httpserver.url_for(p) for p in ("/html", "/garbage", "/500")] + ["http://127.0.0.1:9/down.xml"]
    broken.append(httpserver.url_for("/empty"))  # not broken: a feed with nothing in it yet
    text = ZH.format(base=corpus_server.base).replace("jekyll:\n  dir: jekyll\n", "")
    cfg.write_text(text + "".join(f"      - url: {u}\n" for u in broken), encoding="utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("new") and "zhangye-daily" in line for line in lines)
    assert any("/html: an HTML page" in line for line in lines)
    assert any("/garbage: not a feed" in line for line in lines)
    assert any("/500: HTTP 500" in line for line in lines)
    assert any("down.xml: connection failed" in line for line in lines)
    assert any(line.endswith("/empty (the feed has no entries)") for line in lines), lines
    assert "6 sources: 1 new, 0 updated, 1 unchanged, 4 failed" in lines[-1]
    atom = etree.parse(str(tmp_path / "public" / "category" / "zhangyeribao.atom"))
    assert len(atom.getroot().findall("{http://www.w3.org/2005/Atom}entry")) == 3

    status = run_cli("--config", str(cfg), "status", "--json")
    rows = {r["url"]: r for r in json.loads(status.stdout)}
    assert rows[httpserver.url_for("/500")]["state"] == "erroring"
    assert rows[httpserver.url_for("/500")]["last_error"] == "HTTP 500 INTERNAL SERVER ERROR"
    assert rows[httpserver.url_for("/500")]["errors"] == 1
    ok = rows[f"{corpus_server.base}zh/zhangye-daily.gbk.rss"]
    assert ok["state"] == "ok" and ok["posts"] == 3 and ok["next_poll"] and ok["name"] == "张掖日报"
    table = run_cli("--config", str(cfg), "status")
    assert table.returncode == 0 and "HTTP 500" in table.stdout and "张掖日报" in table.stdout


def test_fetch_named_source_only_and_unknown_source(tmp_path, corpus_server):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        ZH.format(base=corpus_server.base).replace("jekyll:\n  dir: jekyll\n", "")
        + f"      - url: {corpus_server.base}zh/gansu-economy.atom\n",
        encoding="utf-8",
    )
    one = run_cli("--config", str(cfg), "fetch", "--source", f"{corpus_server.base}zh/gansu-economy.atom")
    assert one.returncode == 0 and "1 source: 1 new" in one.stdout
    unknown = run_cli("--config", str(cfg), "fetch", "--source", "http://nope.example/feed")
    assert unknown.returncode == 2 and "not a configured source" in unknown.stderr


RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>http://b.example/</link>'
    b"<item><title>Post</title><link>http://b.example/1</link><guid>urn:1</guid></item></channel></rss>"
)


def test_fetch_source_takes_a_url_as_a_browser_or_the_output_shows_it(tmp_path, httpserver: HTTPServer):
    """`/中文/feed` copied from a browser's address bar is `/%E4%B8%AD%E6%96%87/feed`, and a
    private feed's URL copied from `status` or `fetch` has `token=***`: both were refused as
    not configured (exit 2). A masked URL that several sources show as is refused, naming them."""
    httpserver.expect_request("/中文/feed").respond_with_data(RSS, content_type="application/rss+xml")
    base = httpserver.url_for("/")
    plain, private = f"{base}中文/feed", f"{base}中文/feed?tag=tok&token=s3cret"
    users = [f"http://{u}:pw@{base.split('://')[1]}中文/feed?a=1" for u in ("ann", "bob")]
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        + "".join(f"      - url: {u}\n" for u in (plain, private, *users)),
        encoding="utf-8",
    )

    def fetch(url: str) -> subprocess.CompletedProcess[str]:
        return run_cli("--config", str(cfg), "fetch", "--source", url)

    browser = fetch(f"{base}%E4%B8%AD%E6%96%87/feed")
    assert browser.returncode == 0, browser.stdout + browser.stderr
    assert f"new        {plain} " in browser.stdout and "1 source: 1 new" in browser.stdout
    shown = fetch(f"{base}%e4%b8%ad%e6%96%87/feed?tag=tok&token=***")  # the status line, as a browser encodes it
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "1 source: 1 new" in shown.stdout and "s3cret" not in shown.stdout
    assert httpserver.log[-1][0].args["token"] == "s3cret"  # the configured URL was requested
    assert fetch(users[0].replace(":pw@", ":***@")).returncode == 0
    ambiguous = fetch(f"{base}中文/feed?a=1")  # as OPML exports both: without user info
    assert ambiguous.returncode == 2
    assert "could be any of 2 configured sources" in ambiguous.stderr and "pw@" not in ambiguous.stderr
    unknown = fetch(f"{base}other/feed?token=***")
    assert unknown.returncode == 2 and "not a configured source" in unknown.stderr


def test_a_masked_source_url_of_several_sources_names_each_by_its_config_line(tmp_path):
    """Two sources told apart only by their secret showed as the same masked URL, twice, and
    the masking took the list's commas and closing parenthesis for part of the secret."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        "      - url: http://127.0.0.1:9/nodate.rss?token=a\n      - url: http://127.0.0.1:9/other.rss\n"
        "      - url: http://127.0.0.1:9/nodate.rss?token=b\n",
        encoding="utf-8",
    )
    shown = "http://127.0.0.1:9/nodate.rss?token=***"
    result = run_cli("--config", str(cfg), "fetch", "--source", shown)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"error: {shown} could be any of 2 configured sources ({shown} at {cfg}:7, {shown} at {cfg}:9): "
        "name the one meant as the config writes it"
    )
    assert result.stdout == ""


def test_publish_regenerates_from_the_store(tmp_path, zh_site):
    assert run_cli("--config", str(zh_site), "fetch").returncode == 0
    shutil.rmtree(tmp_path / "public")
    result = run_cli("--config", str(zh_site), "publish")
    assert result.returncode == 0 and "files written" in result.stdout
    assert (tmp_path / "public" / "feed.rss").is_file() and (
        tmp_path / "public" / "category" / "zhangyeribao.json"
    ).is_file()


def test_corpus_server_serves_real_bytes(corpus_server: StaticServer):
    import requests

    body = requests.get(corpus_server.url("zh/zhangye-daily.gbk.rss"), timeout=5).content
    assert body == (CORPUS / "zh" / "zhangye-daily.gbk.rss").read_bytes()


def test_fetch_lines_are_written_as_they_are_without_rich_rendering(tmp_path, httpserver: HTTPServer):
    """Piped output (no progress bar): one plain line per source, control codes stripped as
    rich strips them, and nothing in a URL taken for an emoji code (rich printed `:x:` as ❌)."""
    body = (CORPUS / "zh" / "gansu-economy.atom").read_bytes()
    httpserver.expect_request("/feeds/:x:.atom").respond_with_data(body, content_type="application/atom+xml")
    httpserver.expect_request("/gone").respond_with_data("", status=404)
    feed, missing = httpserver.url_for("/feeds/:x:.atom"), httpserver.url_for("/gone")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: A\n    sources:\n"
        f"      - url: {feed}\n      - url: {missing}\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"new        {feed} (") and lines[1] == f"error      {missing}: HTTP 404 NOT FOUND"
    assert lines[2].startswith("2 sources: 1 new, 0 updated, 0 unchanged, 1 failed;")


def test_the_command_freezes_its_imports_and_keeps_the_collector_on(tmp_path):
    """`start.main` holds the collector off while the command imports: it must be back on
    when the command runs (a daemon without it would keep every reference cycle for ever),
    with the imports frozen out of its sight."""
    probe = (
        "import gc, sys\n"
        "from aggregator.start import main\n"
        "sys.argv = ['aggregator', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.isenabled(), gc.get_freeze_count(), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "Usage:" in out.stdout
    enabled, frozen = out.stderr.split()
    assert enabled == "True"
    assert int(frozen) > 20_000  # click, pydantic, feedparser, requests, jinja2…, not just the start module


def test_a_log_file_that_cannot_be_written_is_one_error_line(tmp_path):
    """`--log-file` in a folder on a read-only file system (a service unit without its
    LogsDirectory=): a traceback of the logging module, read as a crash."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://t.example/\n", encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    with read_only(logs):
        for command in ("check", "run"):
            done = run_cli("--config", str(cfg), "--log-file", str(logs / "a.log"), command, timeout=30)
            assert done.returncode == 1, (command, done.stderr)
            assert done.stderr == f"error: cannot write the log file {logs / 'a.log'}: Read-only file system\n"


def test_a_log_file_in_missing_folders_creates_them_and_is_appended_to(tmp_path):
    """As the README says: service setups point `--log-file` at a folder nothing else makes
    (`/var/log/aggregator/` without LogsDirectory=), and rely on it being created."""
    with socket.socket() as s:  # a port nothing listens on: each fetch logs its refusal
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: A\n    sources:\n"
        f"      - url: http://127.0.0.1:{port}/f\n",
        encoding="utf-8",
    )
    log = tmp_path / "var" / "log" / "aggregator" / "aggregator.log"
    first = run_cli("--config", str(cfg), "--log-file", str(log), "fetch", timeout=60)
    assert first.returncode == 1 and first.stderr == "", first.stderr  # the source failed; logged to the file
    before = log.read_text(encoding="utf-8")
    assert "connection failed" in before, before
    run_cli("--config", str(cfg), "--log-file", str(log), "fetch", "--source", f"http://127.0.0.1:{port}/f")
    after = log.read_text(encoding="utf-8")
    assert after.startswith(before) and after.count("connection failed") == 2, after


def test_a_log_file_on_a_full_disk_is_one_line_on_stderr_not_a_traceback_per_record(tmp_path):
    """Every record written to a full disk printed the logging module's `--- Logging error ---`
    block and a traceback on stderr: thousands in a service's journal, hiding why."""
    from .daemon_support import FEEDS, FeedServer, write_config
    from .reliability.conftest import fill, tmpfs

    server = FeedServer()
    try:
        sources = [{"url": server.feed(f"/{i}", feed)} for i, feed in enumerate(FEEDS[:3])]
        cfg = write_config(tmp_path / "feeds.yaml", sources)
        with tmpfs(tmp_path / "logs", "1m") as logs:
            log = logs / "a.log"
            log.touch()
            fill(logs)
            done = run_cli("--config", str(cfg), "-vv", "--log-file", str(log), "fetch", timeout=120)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    lost = f"aggregator: log file {log}: cannot write (No space left on device); log lines may be lost until it can\n"
    assert done.stderr == lost


def test_a_log_file_says_once_when_it_writes_again(tmp_path, capsys):
    """The disk of a long-running daemon's log file fills and is freed: one line for each."""
    import logging

    from aggregator.logs import setup

    from .reliability.conftest import fill, tmpfs

    log = logging.getLogger("aggregator.test")
    with tmpfs(tmp_path / "logs", "1m") as logs:
        handler = setup(logging.INFO, "text", logs / "a.log")
        try:
            filler = fill(logs)
            for i in range(50):
                log.warning("lost line %d %s", i, "x" * 200)
            filler.unlink()
            log.warning("kept line")
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        written = (logs / "a.log").read_text(encoding="utf-8")
    assert "kept line" in written
    name = logs / "a.log"
    assert capsys.readouterr().err == (
        f"aggregator: log file {name}: cannot write (No space left on device); log lines may be lost until it can\n"
        f"aggregator: log file {name}: writing again\n"
    )


@pytest.mark.parametrize("how", ["rotated on a full disk", "folder removed"])
def test_a_log_file_that_cannot_be_reopened_never_raises_into_the_code_that_logs(tmp_path, capsys, how):
    """logrotate moving the file on a full disk, or the log folder removed: reopening it
    (outside the stdlib's error handling) raised into whatever logged, and the daemon died."""
    import logging
    import shutil

    from aggregator.logs import setup

    from .reliability.conftest import fill, tmpfs

    log = logging.getLogger("aggregator.test")
    with tmpfs(tmp_path / "disk", "1m") as disk:
        folder = disk / "log"
        handler = setup(logging.INFO, "text", folder / "a.log")
        try:
            log.warning("first line")
            if how == "folder removed":
                shutil.rmtree(folder)
                log.warning("lost line")  # raised FileNotFoundError here
                folder.mkdir()
            else:
                filler = fill(disk)
                log.warning("lost line %s", "x" * 5000)  # past the page the file has
                (folder / "a.log").rename(folder / "a.log.1")
                log.warning("lost line")  # raised OSError (ENOSPC) here, flushing the moved file
                filler.unlink()
            log.warning("kept line")
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        assert "kept line" in (folder / "a.log").read_text(encoding="utf-8")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "cannot write" in err[0] and err[1].endswith("writing again"), err


def test_publish_to_a_read_only_output_folder_is_one_line_and_exit_1(tmp_path, httpserver: HTTPServer):
    """The README's exit code for an output `publish` cannot write, as an operator meets it."""
    httpserver.expect_request("/feed").respond_with_data(
        (CORPUS / "zh" / "gansu-economy.atom").read_bytes(), content_type="application/atom+xml"
    )
    out = fetch_one_feed(tmp_path, httpserver.url_for("/feed"))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("title: T\n", "title: T2\n"), encoding="utf-8")
    with read_only(out):  # every page names the site: all must be written again
        done = run_cli("--config", str(tmp_path / "feeds.yaml"), "publish")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: publishing to {out} failed: ") and "Read-only file system" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing half-written


@pytest.mark.parametrize("command", ["check", "fetch", "publish"])
def test_ctrl_c_before_a_command_begins_exits_130_without_a_traceback(tmp_path, command):
    """Ctrl-C while the config is still being read (a FIFO no one writes holds the read):
    exit 130 and one line, as for an interrupt anywhere else, not click's "Aborted!" and 1."""
    import os
    import signal
    import time

    from .conftest import ROOT

    fifo = tmp_path / "feeds.yaml"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(fifo), command],
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        waits = ""
        while waits != "wait_for_partner" and time.monotonic() < deadline:  # blocked opening the FIFO
            time.sleep(0.02)
            waits = Path(f"/proc/{proc.pid}/wchan").read_text()
        assert waits == "wait_for_partner", waits
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err and b"Aborted" not in err, err


def _stopped_writing_its_output(*args: str) -> tuple[int, str, str]:
    """Run the command with its standard output a pipe already full, as a reader that stopped
    reading leaves it; send SIGTERM once it waits to write (its work up to that line done),
    then read the pipe: (exit code, stderr, what it wrote)."""
    import os
    import signal
    import time

    read, write = os.pipe()
    os.set_blocking(write, False)
    filled = 0
    try:
        while True:
            filled += os.write(write, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write, True)
    try:
        proc = subprocess.Popen(_cli(*args), stdout=write, stderr=subprocess.PIPE, env=_cli_env())
    finally:
        os.close(write)
    try:
        deadline = time.monotonic() + 30
        waits = ""
        while "pipe_write" not in waits and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            waits = Path(f"/proc/{proc.pid}/wchan").read_text()
        assert "pipe_write" in waits, (waits, proc.poll())
        proc.send_signal(signal.SIGTERM)
        with os.fdopen(read, "rb") as pipe:
            out = pipe.read()[filled:].decode()
        err = proc.communicate(timeout=30)[1].decode()
    finally:
        proc.kill()
    return proc.returncode, err, out


def test_sigterm_stops_status_prune_backup_and_publish_saying_what_was_done_exit_143(tmp_path, corpus_server):
    """`timeout 5m aggregator prune` in cron, or `kill`: SIGTERM ended `publish`, `prune`,
    `status` and `backup` at once without a word (exit -15), the user left to guess what was
    pruned, whether the backup was written. Now each stops as `fetch` does: what it did is
    whole (prune's sources one transaction each, the backup renamed into place once checked),
    one line says what was done and what was left, and it exits 143."""
    import sqlite3

    feeds = [corpus_server.url("zh/zhangye-daily.gbk.rss"), corpus_server.url("zh/gansu-economy.atom")]
    listed = "".join(f"      - url: {url}\n        keep_per_source: 9\n" for url in feeds)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\n  items_per_feed: 1\ncategories:\n  - name: C\n"
        f"    sources:\n{listed}",
        encoding="utf-8",
    )
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("keep_per_source: 9", "keep_per_source: 1"))
    db = tmp_path / "aggregator.db"

    def posts() -> list[int]:
        with sqlite3.connect(db) as conn:
            return [sum(1 for _ in conn.execute("SELECT 1 FROM posts WHERE source = ?", [url])) for url in feeds]

    assert posts() == [3, 2]
    code, err, out = _stopped_writing_its_output("--config", str(cfg), "prune")  # stopped saying the first's removals
    assert code == 143 and "Traceback" not in err, err
    assert err == (
        "stopped by SIGTERM after 1 of 2 sources with limits pruned (2 posts removed): the rest are left as they "
        "were (none half-pruned) for the next `aggregator prune`\n"
    )
    assert out.startswith(f"{feeds[0]}: removed 2 posts") and posts() == [1, 2]

    code, err, out = _stopped_writing_its_output("--config", str(cfg), "backup", str(tmp_path / "copy.db"))
    said = f"stopped by SIGTERM after the backup was written: {tmp_path / 'copy.db'} is complete and checked\n"
    assert (code, err) == (143, said) and out.startswith("backed up "), err
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert not list(tmp_path.glob(".copy.db*")), "a partial copy was left"

    code, err, out = _stopped_writing_its_output("--config", str(cfg), "publish")
    said = f"stopped by SIGTERM after publishing: every file in {tmp_path / 'public'} is written\n"
    assert (code, err) == (143, said) and "written" in out, err

    code, err, out = _stopped_writing_its_output("--config", str(cfg), "status", "--json")
    said = "stopped by SIGTERM: what was stored or written before stays, nothing is half-written\n"
    assert (code, err) == (143, said), err


@pytest.mark.parametrize(("key", "where"), [("jekyll.dir", "jekyll"), ("site.output_dir", "public")])
def test_a_file_where_an_output_folder_should_be_is_named_by_check_and_publish(zh_site, key, where):
    """`check` said ok; `publish` then failed naming the output folder and a temporary file
    deep inside it, whichever folder the file was really in the way of."""
    blocker = zh_site.parent / where
    blocker.write_text("not a folder")
    check = run_cli("--config", str(zh_site), "check")
    line = ZH.splitlines().index("  dir: jekyll") + 1 if key == "jekyll.dir" else 1  # output_dir: the default
    assert check.returncode == 2, check.stderr
    assert f"{zh_site}:{line}: {key}: {blocker} is a file, not a folder" in check.stderr, check.stderr
    published = run_cli("--config", str(zh_site), "publish")
    assert published.returncode == 1, published.stderr
    assert f"{key}: {blocker} is a file, not a folder: move it away, or set {key}" in published.stderr
    assert ".tmp" not in published.stderr and "Errno" not in published.stderr
    assert blocker.read_text() == "not a folder"
    blocker.unlink()
    assert run_cli("--config", str(zh_site), "check").returncode == 0


@pytest.mark.parametrize(
    "blockers",
    [
        ("category", "posts"),  # as the README's user met it: `mkdir public; touch public/category public/posts`
        ("category/xinwen",),  # where a category's page/ folder goes (`新闻` → xinwen)
        ("posts/2026",),  # a year of post pages
        ("posts/2026/11",),  # a month of them
    ],
)
def test_a_file_where_a_folder_inside_the_output_goes_is_named_by_check_and_publish(tmp_path, blockers):
    """Only the output and Jekyll roots were looked at: `check` said ok with a file at
    `public/category`, then `fetch` failed with `[Errno 20] Not a directory:
    '…/public/category/.a.atom.9431.1.tmp'`, having written `.aggregator-owner` already."""
    cfg = tmp_path / "k.yaml"
    cfg.write_text("site:\n  title: t\n  url: https://e.example/\ncategories:\n  - name: A\n  - name: 新闻\n")
    public = tmp_path / "public"
    for blocker in blockers:
        (public / blocker).parent.mkdir(parents=True, exist_ok=True)
        (public / blocker).write_text("not a folder")
    before = sorted(p.relative_to(public) for p in public.rglob("*"))
    check = run_cli("--config", str(cfg), "check")
    assert check.returncode == 2 and check.stdout == "", check.stdout + check.stderr
    wanted = [f"{cfg}:1: site.output_dir: {public / b} is a file, not a folder: move it away" for b in blockers]
    assert [line[: len(w)] for line, w in zip(check.stderr.splitlines(), wanted, strict=True)] == wanted
    for command in ("fetch", "publish"):
        done = run_cli("--config", str(cfg), command)
        assert done.returncode == 1, done.stdout + done.stderr
        assert all(f"site.output_dir: {public / b} is a file, not a folder" in done.stderr for b in blockers)
        assert ".tmp" not in done.stderr and "Errno" not in done.stderr, done.stderr
        # nothing written, not even `.aggregator-owner`
        assert sorted(p.relative_to(public) for p in public.rglob("*")) == before
    for blocker in blockers:
        (public / blocker).unlink()
    assert run_cli("--config", str(cfg), "check").returncode == 0
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert (public / "category" / "xinwen.atom").is_file() and (public / ".aggregator-owner").is_file()


def test_an_output_folder_that_cannot_be_looked_at_is_left_to_the_write_to_report(tmp_path):
    """`check` died with a traceback when a folder above the output folder could not be
    entered (PermissionError from is_dir); a name too long to look up fails the same way."""
    from aggregator.config import load_config
    from aggregator.publish import folder_problems

    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(f"site:\n  title: t\n  url: https://e.example/\n  output_dir: {'x' * 300}/www\n")
    assert folder_problems(load_config(cfg)) == []
    check = run_cli("--config", str(cfg), "check")
    assert check.returncode == 0 and "Traceback" not in check.stderr, check.stderr


def test_a_text_log_line_gives_its_local_time_with_the_offset(monkeypatch):
    """A bare local time could not be lined up with UTC (JSON logs, another host's)."""
    import logging
    import time

    from aggregator.logs import TextFormatter

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        record = logging.LogRecord("aggregator.x", logging.WARNING, "", 0, "hello", None, None)
        record.created, record.msecs = 1_795_000_000.25, 250.0  # 2026-11-18 11:06:40.250 UTC
        line = TextFormatter().format(record)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert line == "2026-11-18 19:06:40,250+0800 WARNING aggregator.x: hello"


def test_a_feed_scheme_url_from_a_browser_is_polled_over_http(tmp_path, httpserver: HTTPServer):
    """`feed://host/x` and `feed:https://host/x`, as browsers and sites hand feed links out:
    refused as not http(s), the user had to know to rewrite them."""
    from aggregator.config import from_feed_scheme

    assert from_feed_scheme("feed:https://a.example/rss") == "https://a.example/rss"
    assert from_feed_scheme("FEED://a.example/rss?x=1") == "http://a.example/rss?x=1"
    assert from_feed_scheme("feed:ftp://a.example/rss") == "feed:ftp://a.example/rss"  # still refused
    httpserver.expect_request("/feed").respond_with_data(
        (CORPUS / "zh" / "gansu-economy.atom").read_bytes(), content_type="application/atom+xml"
    )
    plain = httpserver.url_for("/feed")
    given = "feed:" + plain.removeprefix("http:")
    out = fetch_one_feed(tmp_path, given)
    assert (out / "category" / "c.atom").is_file()
    again = run_cli("--config", str(tmp_path / "feeds.yaml"), "fetch", "--source", given)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"unchanged  {plain} (same body)" in again.stdout, again.stdout
    status = json.loads(run_cli("--config", str(tmp_path / "feeds.yaml"), "status", "--json").stdout)
    assert [row["url"] for row in status] == [plain]
    bad = tmp_path / "bad.yaml"
    bad.write_text((tmp_path / "feeds.yaml").read_text().replace(given, "feed:ftp://x.example/rss"))
    check = run_cli("--config", str(bad), "check")
    assert check.returncode == 2 and "not an absolute http(s) URL" in check.stderr


def test_check_refuses_a_source_whose_ca_bundle_is_missing(tmp_path):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: C\n    sources:\n"
        "      - url: https://intra.example/feed\n        tls_verify: certs/ca.pem\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2, result.stdout + result.stderr
    problem = "categories.0.sources.0.tls_verify: no such CA bundle file or folder"
    assert f"{cfg}:8: {problem}: {tmp_path / 'certs' / 'ca.pem'}" in result.stderr
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("", encoding="utf-8")
    assert run_cli("--config", str(cfg), "check").returncode == 0


def test_a_standard_output_that_cannot_be_written_is_one_line_and_fetch_still_publishes(tmp_path, zh_site):
    """`fetch >> fetch.log` on a full disk, or `fetch | grep -q new` whose reader leaves after
    its first line: the first line that could not be written stopped `fetch` with a traceback
    (or, for the pipe, silently) after storing the polls and before publishing them. Now it
    does its work, says once that its output is incomplete (not for a pipe, as `| head`), and
    exits 1."""
    import os

    from .conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "aggregator", "--config", str(zh_site)]
    with open("/dev/full", "w") as full:
        fetched = subprocess.run([*command, "fetch"], stdout=full, stderr=subprocess.PIPE, text=True, env=env)
        status = subprocess.run([*command, "status", "--json"], stdout=full, stderr=subprocess.PIPE, text=True, env=env)
    lost = "error: cannot write to standard output: No space left on device: the output is incomplete\n"
    assert (fetched.returncode, fetched.stderr) == (1, lost)
    assert (status.returncode, status.stderr) == (1, lost)
    assert (tmp_path / "public" / "category" / "zhangyeribao.atom").is_file()
    assert len(list((tmp_path / "jekyll" / "_posts").glob("*.md"))) == 3

    shutil.rmtree(tmp_path / "public")
    shutil.rmtree(tmp_path / "jekyll")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        piped = subprocess.run([*command, "publish"], stdout=write, stderr=subprocess.PIPE, text=True, env=env)
    finally:
        os.close(write)
    assert (piped.returncode, piped.stderr) == (1, "")
    assert (tmp_path / "public" / "category" / "zhangyeribao.atom").is_file()


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_titles_a_terminals_encoding_cannot_write_are_escaped_not_a_traceback(tmp_path, zh_site, encoding):
    """Under `PYTHONIOENCODING=latin-1` (or an ISO-8859-1 locale) `status` and `status --json`
    stopped at the first Chinese title with a UnicodeEncodeError traceback."""
    import os

    from .conftest import ROOT

    assert run_cli("--config", str(zh_site), "fetch").returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": encoding}
    command = [sys.executable, "-m", "aggregator", "--config", str(zh_site), "status"]
    table = subprocess.run(command, capture_output=True, env=env)
    assert table.returncode == 0 and b"Traceback" not in table.stderr, table.stderr
    assert "张掖日报".encode("unicode_escape") in table.stdout  # escaped, in the terminal's encoding
    table.stdout.decode(encoding)
    as_json = subprocess.run([*command, "--json"], capture_output=True, env=env)
    assert as_json.returncode == 0 and b"Traceback" not in as_json.stderr, as_json.stderr
    assert json.loads(as_json.stdout)[0]["name"] == "张掖日报"  # JSON is UTF-8 whatever the terminal's


WRITER = """\
import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("CREATE TEMP TABLE one AS SELECT * FROM posts LIMIT 1")
print("writing", flush=True)
while True:  # one post a commit, as a daemon storing its polls does
    db.execute("UPDATE one SET id = ?", [uuid.uuid4().hex[:16]])
    db.execute("INSERT INTO posts SELECT * FROM one")
"""


def test_a_backup_beside_a_writer_counts_the_posts_of_the_copy(tmp_path, zh_site):
    """`backup` beside the daemon storing polls said `652 posts` of a copy holding 616: it
    counted the database after the copy was made. Its counts are the copy's own."""
    import sqlite3

    assert run_cli("--config", str(zh_site), "fetch").returncode == 0
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "aggregator.db")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline() == "writing\n"
        for n in range(3):
            result = run_cli("--config", str(zh_site), "backup", str(tmp_path / f"copy{n}.db"))
            assert result.returncode == 0, result.stderr
            with sqlite3.connect(tmp_path / f"copy{n}.db") as copy:
                posts = copy.execute("SELECT count(*) FROM posts").fetchone()[0]
            assert f": 1 source, {posts} posts, " in result.stdout, result.stdout
    finally:
        writer.kill()
        writer.wait()


def test_two_backups_to_one_path_at_once_both_write_a_whole_copy(tmp_path, zh_site):
    """A cron job's `backup /var/backups/news.db` and one run by hand at the same time shared
    one temporary file: the second removed the first's under it, and both failed (`disk I/O
    error`, `attempt to write a readonly database`), leaving no copy. Each writes its own."""
    import sqlite3

    assert run_cli("--config", str(zh_site), "fetch").returncode == 0
    with sqlite3.connect(tmp_path / "aggregator.db") as db:  # large enough for the copies to overlap
        db.execute("CREATE TEMP TABLE one AS SELECT * FROM posts LIMIT 1")
        for n in range(3000):
            db.execute("UPDATE one SET id = ?, content = ?", [f"{n:016x}", f"{n} " * 5000])
            db.execute("INSERT INTO posts SELECT * FROM one")
    stale = tmp_path / ".copy.db.999999999.partial"  # of a backup killed long ago
    stale.write_bytes(b"half")
    stale.with_name(stale.name + "-journal").write_bytes(b"half")
    command = [sys.executable, "-m", "aggregator", "--config", str(zh_site), "backup", str(tmp_path / "copy.db")]
    backups = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for backup in backups:
        out, err = backup.communicate(timeout=120)
        assert backup.returncode == 0, err
        assert ": 1 source, 3003 posts, " in out, out
    with sqlite3.connect(f"file:{tmp_path / 'copy.db'}?mode=ro", uri=True) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM posts").fetchone()[0] == 3003
    assert not list(tmp_path.glob(".*.partial*"))


class _HeldFeed:
    """A feed on 127.0.0.1 whose answers wait until `release()`: a poll held in flight, so
    another command can be run while it lasts. Counts the requests (`hits`)."""

    def __init__(self, body: bytes) -> None:
        import http.server
        import threading

        self.hits = 0
        self.released = threading.Event()
        self.asked = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                outer.hits += 1
                outer.asked.set()
                outer.released.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/feed.rss"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def held_feed():
    feed = _HeldFeed((CORPUS / "zh" / "zhangye-daily.gbk.rss").read_bytes())
    yield feed
    feed.close()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator", *args]


def _cli_env() -> dict[str, str]:
    import os

    from .conftest import ROOT

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_a_second_fetch_while_one_runs_polls_nothing_and_exits_75(tmp_path, held_feed):
    """Two overlapping cron runs of `fetch` (one every 15 minutes, a run taking 20) polled
    every source twice. The second is refused at once, naming the first, and polls nothing."""
    from aggregator.lock import InstanceLock

    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(ZH.replace("{base}zh/zhangye-daily.gbk.rss", held_feed.url), encoding="utf-8")
    first = subprocess.Popen(
        _cli("--config", str(cfg), "fetch"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env()
    )
    try:
        assert held_feed.asked.wait(60), "the first fetch never polled"
        second = run_cli("--config", str(cfg), "fetch", timeout=60)
        named = run_cli("--config", str(cfg), "fetch", "--source", held_feed.url, timeout=60)
    finally:
        held_feed.release()
        out, err = first.communicate(timeout=120)
    db = (tmp_path / "aggregator.db").resolve()
    assert (second.returncode, second.stdout) == (75, "")
    assert second.stderr == (
        f"error: another `aggregator fetch` (pid {first.pid}) is already running on {db}; nothing polled "
        "(a second one would poll every source twice): try again once it has ended\n"
    )
    assert named.returncode == 75 and named.stderr == second.stderr
    assert held_feed.hits == 1, "the feed was polled twice"
    assert first.returncode == 0, out + err

    # once it has ended, the next fetch runs; and a daemon on the database does not hold fetch's lock
    daemon = InstanceLock(db).acquire()
    try:
        again = run_cli("--config", str(cfg), "fetch", timeout=60)
    finally:
        daemon.release()
    assert again.returncode == 0, again.stdout + again.stderr
    assert held_feed.hits == 2
    refused = run_cli("--config", str(cfg), "backup", str(tmp_path / "aggregator.db.fetch.lock"))
    assert refused.returncode == 1 and "it is the database's fetch lock file" in refused.stderr, refused.stderr


def test_a_fetch_lock_file_the_user_may_not_write_still_keeps_a_second_fetch_out(tmp_path, held_feed):
    """A `sudo aggregator fetch` run once leaves `<database>.fetch.lock` owned by root: the
    service user's fetch could not open it for writing and went on without the lock, so two
    overlapping cron runs polled every source twice again. An flock needs no write access.
    Such a holder cannot write its pid in the file either, which still names an older holder
    (here a live process holding nothing, as a pid reused): the refusal named that process.
    It names the holder the kernel knows (/proc/locks)."""
    import os

    setpriv = shutil.which("setpriv")  # util-linux: as a user without root's override of permissions
    assert setpriv, "setpriv (util-linux) is missing"
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(ZH.replace("{base}zh/zhangye-daily.gbk.rss", held_feed.url), encoding="utf-8")
    lock = tmp_path / "aggregator.db.fetch.lock"
    lock.write_text(f"{os.getpid()}\n")  # the pid an older holder (root's fetch, killed) left
    lock.chmod(0o444)  # as another user's lock file is to this one
    as_user = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = [*as_user, sys.executable, "-c", f"open({str(lock)!r}, 'r+')"]
    assert subprocess.run(probe, capture_output=True).returncode != 0  # the lock file really is not writable
    fetch = [*as_user, *_cli("--config", str(cfg), "fetch")]
    first = subprocess.Popen(fetch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env())
    try:
        assert held_feed.asked.wait(60), "the first fetch never polled"
        try:  # one that went on would wait for the held feed: it is not given that long
            second = subprocess.run(fetch, capture_output=True, text=True, env=_cli_env(), timeout=30)
        except subprocess.TimeoutExpired:
            second = None
    finally:
        held_feed.release()
        out, err = first.communicate(timeout=120)
    assert second is not None, "the second fetch polled beside the first"
    assert second.returncode == 75, second.stdout + second.stderr
    assert f"another `aggregator fetch` (pid {first.pid}) is already running" in second.stderr, second.stderr
    assert held_feed.hits == 1, "the feed was polled twice"
    assert first.returncode == 0, out + err
    assert os.stat(lock).st_mode & 0o777 == 0o444  # left as it was


def test_a_reader_that_left_ends_a_command_that_only_looks_with_exit_0(tmp_path, zh_site):
    """`aggregator status | head -1` exited 1 once `head` had left: under `set -o pipefail`
    every such script failed. A command that only looks (check, status, export-opml) ends
    quietly with exit 0 when its reader leaves, as `git log | head` does; so does `backup`,
    whose one line comes once the copy is written and checked (`backup … | true` exited 1,
    a written backup reported failed). One that changes things as it prints still exits 1,
    and a full disk is still an error."""
    import os
    import sqlite3

    assert run_cli("--config", str(zh_site), "fetch").returncode == 0
    copy = tmp_path / "copy.db"
    for args in (["status"], ["status", "--json"], ["export-opml"], ["check"], ["backup", str(copy)]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first line
        try:
            done = subprocess.run(
                _cli("--config", str(zh_site), *args), stdout=write, stderr=subprocess.PIPE, text=True, env=_cli_env()
            )
        finally:
            os.close(write)
        assert (done.returncode, done.stderr) == (0, ""), args
    with sqlite3.connect(copy) as conn:  # the backup itself is whole
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
    with open("/dev/full", "w") as full:
        command = _cli("--config", str(zh_site), "export-opml")
        opml = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, env=_cli_env())
    lost = "error: cannot write to standard output: No space left on device: the output is incomplete\n"
    assert (opml.returncode, opml.stderr) == (1, lost)

    # and as a shell script runs it: a status longer than a pipe's buffer, read by `head -1`
    many = "".join(f"      - url: http://127.0.0.1:9/feed{n}.rss\n" for n in range(1000))
    zh_site.write_text(zh_site.read_text(encoding="utf-8").replace("jekyll:", many + "jekyll:"), encoding="utf-8")
    script = f"set -o pipefail; {' '.join(_cli('--config', str(zh_site), 'status'))} | head -1 >/dev/null"
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=_cli_env())
    assert (shell.returncode, shell.stderr) == (0, ""), shell.stderr


def test_why_run_failed_to_start_reaches_a_json_log_and_a_log_file(tmp_path, zh_site):
    """`aggregator --log-format json --log-file …/aggregator.log run` beside a running daemon
    wrote its `error:` line to stderr only: the JSON log pipeline reading the file never saw
    why `run` had failed. The line for people stays on stderr; the log gets a record too."""
    import os

    from aggregator.lock import InstanceLock

    log = tmp_path / "logs" / "aggregator.log"
    db = (tmp_path / "aggregator.db").resolve()
    holder = InstanceLock(db).acquire()
    try:
        to_file = run_cli("--config", str(zh_site), "--log-format", "json", "--log-file", str(log), "run", timeout=60)
        on_stderr = run_cli("--config", str(zh_site), "run", "--log-format", "json", timeout=60)
        as_text = run_cli("--config", str(zh_site), "--log-file", str(tmp_path / "text.log"), "run", timeout=60)
    finally:
        holder.release()
    why = f"another aggregator daemon (pid {os.getpid()}) is already running on {db}"
    assert to_file.returncode == 1 and to_file.stderr.startswith(f"error: {why}"), to_file.stderr
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    failed = [r for r in records if r["level"] == "error"]
    assert len(failed) == 1 and failed[0]["message"].startswith(why), records
    assert failed[0]["logger"] == "aggregator.cli"
    records = [json.loads(line) for line in on_stderr.stderr.splitlines()]  # stderr is the JSON log: no bare line
    assert on_stderr.returncode == 1 and [r["message"] for r in records if r["level"] == "error"][-1].startswith(why)
    assert as_text.returncode == 1 and f"ERROR aggregator.cli: {why}" in (tmp_path / "text.log").read_text()

    # a config that does not load: the reason, in the log as well
    zh_site.write_text(zh_site.read_text(encoding="utf-8").replace("Asia/Shanghai", "Asia/Nowhere"), encoding="utf-8")
    bad = run_cli("--config", str(zh_site), "--log-format", "json", "--log-file", str(log), "run", timeout=60)
    problem = f"{zh_site}:5: site.timezone: unknown time zone: 'Asia/Nowhere'"
    assert bad.returncode == 2 and problem in bad.stderr
    last = json.loads(log.read_text(encoding="utf-8").splitlines()[-1])
    assert last["level"] == "error" and problem in last["message"], last


def test_under_json_logging_to_stderr_every_stderr_line_is_a_json_record(tmp_path, zh_site):
    """`aggregator --log-format json fetch` (a container, its stderr shipped as JSON lines)
    wrote its `error: …` line bare beside the records, and the shipper choked on it (then got
    the same error again as a record). With stderr the JSON log, what a command says there is
    a record only: a refused fetch, a usage error, `check`'s problems, `status`'s note."""
    import os

    from aggregator.lock import FetchLock

    def records(*args: str, code: int) -> list[dict]:
        done = run_cli("--config", str(zh_site), "--log-format", "json", *args, timeout=60)
        assert done.returncode == code, done.stderr
        lines = done.stderr.splitlines()
        assert lines and all(line.startswith("{") for line in lines), done.stderr  # json.loads takes `1`, `"x"`
        return [json.loads(line) for line in lines]

    said = records("status", code=0)  # no database yet: a note, as a record
    assert [r["level"] for r in said] == ["warning"] and said[0]["message"].startswith("no database yet at ")
    holder = FetchLock(tmp_path / "aggregator.db").acquire()
    try:
        refused = records("fetch", code=75)
    finally:
        holder.release()
    assert [(r["level"], r["logger"]) for r in refused] == [("error", "aggregator.cli")], refused
    assert refused[0]["message"].startswith(f"another `aggregator fetch` (pid {os.getpid()}) is already running")
    usage = records("fetch", "--sauce", "x", code=2)
    assert [r["level"] for r in usage] == ["error"] and "No such option '--sauce'" in usage[0]["message"], usage
    unknown = records("fecth", code=2)  # found before the log was set up: it was click's bare usage text
    assert [r["level"] for r in unknown] == ["error"] and "No such command 'fecth'" in unknown[0]["message"], unknown
    (tmp_path / "public").write_text("not a folder")
    problems = records("check", code=2)
    assert [r["level"] for r in problems] == ["error"], problems
    assert f"site.output_dir: {tmp_path / 'public'} is a file, not a folder" in problems[0]["message"]


def test_the_log_format_is_taken_in_any_case(tmp_path, zh_site, monkeypatch):
    """`AGGREGATOR_LOG_FORMAT=JSON` (a unit file's habit) was refused: `Invalid value for
    '--log-format': 'JSON' is not one of 'text', 'json'`, exit 2, the daemon never started."""
    zh_site.write_text(zh_site.read_text(encoding="utf-8").replace("Asia/Shanghai", "Asia/Nowhere"), encoding="utf-8")
    monkeypatch.setenv("AGGREGATOR_LOG_FORMAT", "JSON")
    bad = run_cli("--config", str(zh_site), "run", timeout=60)
    problem = f"{zh_site}:5: site.timezone: unknown time zone: 'Asia/Nowhere'"
    assert bad.returncode == 2 and "--log-format" not in bad.stderr, bad.stderr
    records = [json.loads(line) for line in bad.stderr.splitlines() if line.startswith("{")]
    assert [r["message"] for r in records if r["level"] == "error"] == [problem], bad.stderr  # JSON it is
    monkeypatch.delenv("AGGREGATOR_LOG_FORMAT")
    after = run_cli("--config", str(zh_site), "run", "--log-format", "Json", timeout=60)
    assert after.returncode == 2 and any(line.startswith("{") for line in after.stderr.splitlines()), after.stderr


def test_export_opml_help_names_every_reason_it_exits_1(tmp_path, zh_site):
    """`export-opml --help` listed a PATH that cannot or may not be written as its reasons for
    exit 1, but not the one the code has too: a database that cannot be read."""
    (tmp_path / "aggregator.db").write_bytes(b"not a database, " * 512)
    broken = run_cli("--config", str(zh_site), "export-opml", timeout=60)
    assert broken.returncode == 1 and broken.stderr.startswith("error: "), broken.stderr
    assert broken.stdout == ""
    shown = " ".join(run_cli("export-opml", "--help", timeout=60).stdout.split())
    assert "or when the database cannot be read" in shown, shown


STATUS_CELLS = [
    ["http://a.example/feed.xml", "ok", "2026-11-29 10:01:35 +0800\nnot modified", "—", "0", "3", "—"],
    ["张掖日报\nhttp://127.0.0.1:8/zh/张掖.rss\n→ polls http://b/x (learnt from permanent redirects)", "erroring",
     "—", "HTTP 500 INTERNAL SERVER ERROR\n2026-11-29 10:01:35 +0800", "12", "0",
     "2026-11-29 11:01:35 +0800\noverdue by 3 hours: is `aggregator run` running?\nevery 1h (auto)"],
    ["", "new", "", "", "0", "0", "at once (never polled)"],
    ["Ａ👍🏽 e\u0301 \\x1b[2J ヘ", "gone", "x\n", "\n", "1", "10", "never: gone (HTTP 410)"],
    ["h" * 300, "backing off", "short", "—", "123456", "1", "now"],
]  # fmt: skip


@pytest.mark.parametrize("rows", [STATUS_CELLS, STATUS_CELLS[:1], [], [STATUS_CELLS[3]] * 3])
def test_status_draws_its_table_as_rich_does_without_rich_laying_it_out(rows):
    """`status` over 10,000 sources took 20 s, 97% of it in rich laying out a table that needs
    no folding (a page as wide as its widest cell, when not a terminal). It draws that table
    itself now: the same characters as rich, for every shape of cell."""
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from aggregator.cli import STATUS_COLUMNS, STATUS_MIN_WIDTHS, _plain_table

    title = f"财经新闻 [b]: {len(rows)} sources"
    table = Table(title=Text(title), pad_edge=False)
    for col in STATUS_COLUMNS:
        no_wrap = col in ("state", "errors", "posts")
        table.add_column(col, overflow="fold", no_wrap=no_wrap, min_width=STATUS_MIN_WIDTHS.get(col))
    for row in rows:
        table.add_row(*map(Text, row))
    out = io.StringIO()
    Console(file=out, soft_wrap=True, width=100_000, color_system=None).print(table)
    assert _plain_table(title, rows) == out.getvalue()
    assert _plain_table(title, [["a\tb", *STATUS_CELLS[0][1:]]]) is None  # a tab: rich expands it
