"""Deployment files, checked by the tools that will read them and run as they would run us:
the systemd unit (`systemd-analyze verify` and `security`, and its command line run for
real), the Dockerfile's command and health check (without Docker: the same commands, run
here), and config/logrotate rotating a running daemon's log file."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from .conftest import ROOT
from .daemon_support import FEEDS, FeedServer, write_config

UNIT = ROOT / "config" / "aggregator.service"
DOCKERFILE = ROOT / "Dockerfile"
LOGROTATE = ROOT / "config" / "logrotate"


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    assert path, f"{name} is missing: .ci/run installs it (Debian package {'systemd' if 'systemd' in name else name})"
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def feeds():
    server = FeedServer()
    yield server
    server.close()


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _aggregator_argv(argv: list[str]) -> list[str]:
    """The deployed `aggregator ...` command line, run with this checkout's interpreter."""
    while argv and argv[0] in ("/usr/bin/env", "env"):
        argv = argv[1:]
    assert argv[0] == "aggregator", argv
    return [sys.executable, "-m", "aggregator", *argv[1:]]


def _with_port(argv: list[str], port: int) -> list[str]:
    out = list(argv)
    out[out.index("--port") + 1] = str(port)
    return out


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("never healthy")


def test_systemd_unit_verifies_and_is_hardened():
    analyze = _tool("systemd-analyze")
    verify = subprocess.run([analyze, "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=20", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    level = re.search(r"Overall exposure level for aggregator.service: ([\d.]+)", security.stdout)
    assert security.returncode == 0 and level and float(level.group(1)) <= 2.0, security.stdout[-2000:]
    unit = _unit_settings()
    assert unit["User"] == ["aggregator"] and unit["Restart"] == ["on-failure"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_systemd_unit_command_line_runs_and_stops_within_its_timeout(tmp_path, feeds):
    unit = _unit_settings()
    argv = _aggregator_argv(shlex.split(unit["ExecStart"][0]))
    grace = float(argv[argv.index("--grace") + 1].rstrip("s"))
    assert grace < float(unit["TimeoutStopSec"][0]), "systemd must not SIGKILL during the grace period"
    assert "AGGREGATOR_CONFIG=/var/lib/aggregator/feeds.yaml" in unit["Environment"]
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": feeds.feed("/a", FEEDS[0]), "interval": "1h"}])
    port = _free_port()
    proc = subprocess.Popen(
        _with_port(argv, port),
        cwd=tmp_path,  # WorkingDirectory
        env={**os.environ, "AGGREGATOR_CONFIG": str(cfg)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(port, proc)
        proc.send_signal(getattr(signal, unit["KillSignal"][0]))
        assert proc.wait(float(unit["TimeoutStopSec"][0])) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        (m.group(1).upper(), m.group(2).strip())
        for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M)
        if not m.group(0).lstrip().startswith("#")
    ]


def test_dockerfile_command_and_healthcheck_work(tmp_path, feeds):
    instructions = _dockerfile()
    for op, args in instructions:
        if op == "COPY":
            for src in shlex.split(args)[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
    first = dict(reversed(instructions))  # (later ones override earlier)
    last = dict(instructions)
    assert first["FROM"].startswith("python:3.11")
    entrypoint, cmd = json.loads(last["ENTRYPOINT"]), json.loads(last["CMD"])
    healthcheck = last["HEALTHCHECK"]
    check = healthcheck[healthcheck.index("CMD ") + 4 :]
    assert "/healthz" in check and "8080" in check and last["EXPOSE"] == "8080"
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for op, a in instructions if op == "ENV")))
    assert env["AGGREGATOR_CONFIG"] == "/data/feeds.yaml"

    cfg = write_config(tmp_path / "feeds.yaml", [{"url": feeds.feed("/a", FEEDS[0]), "interval": "1h"}])
    port = _free_port()
    proc = subprocess.Popen(
        _with_port(_aggregator_argv(entrypoint + cmd), port),
        cwd=tmp_path,  # WORKDIR /data
        env={**os.environ, **env, "AGGREGATOR_CONFIG": str(cfg)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(port, proc)
        probe = check.replace("8080", str(port))
        assert subprocess.run(["/bin/sh", "-c", probe], capture_output=True, timeout=30).returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert json.loads(proc.stderr.read().splitlines()[-1])["message"] == "stopped"  # JSON logs, as set
        assert subprocess.run(["/bin/sh", "-c", probe], capture_output=True, timeout=30).returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_logrotate_rotates_a_running_daemons_log(tmp_path, feeds):
    logrotate = _tool("logrotate")
    logdir = tmp_path / "log"
    log = logdir / "aggregator.log"
    rules = LOGROTATE.read_text().replace("/var/log/aggregator/", f"{logdir}/")
    rules = rules.replace("su aggregator aggregator", "su root root")  # the deployment's user is not here
    (tmp_path / "logrotate.conf").write_text(rules)
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": feeds.feed("/a", FEEDS[0]), "interval": "1h"}])
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(cfg), "--log-file", str(log), "run"])

    def wait_in(path: Path, text: str) -> None:
        deadline = time.monotonic() + 15
        while not (path.exists() and text in path.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.exists() and text in path.read_text(), text

    try:
        wait_in(log, "daemon started")
        rotate = subprocess.run(
            [logrotate, "--force", "--state", str(tmp_path / "state"), str(tmp_path / "logrotate.conf")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rotate.returncode == 0, rotate.stderr
        assert "daemon started" in (logdir / "aggregator.log.1").read_text()
        proc.send_signal(signal.SIGHUP)  # makes the daemon log something
        wait_in(log, "config reloaded (SIGHUP)")
        assert "daemon started" not in log.read_text() and "SIGHUP" not in (logdir / "aggregator.log.1").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _modes(folder: Path, pattern: str) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in folder.glob(pattern)}


def test_the_database_and_its_backups_are_readable_by_their_owner_only(tmp_path, feeds):
    """The unit's UMask=0022 makes new files 0644; the database holds the sources' secrets (a
    `?token=` URL here), so it and its -wal/-shm and backups are the owner's only, while the
    published files stay readable by the web server's user."""
    cfg = write_config(tmp_path / "feeds.yaml", [{"url": feeds.feed("/a", FEEDS[0]) + "?token=s3cr3t"}])
    cli = [sys.executable, "-m", "aggregator", "--config", str(cfg)]
    umask = os.umask(0o022)
    try:
        proc = subprocess.Popen([*cli, "run"], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while not (tmp_path / "public" / "category" / "c0.atom").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            backup = subprocess.run([*cli, "backup", str(tmp_path / "b.db")], capture_output=True, timeout=60)
            assert backup.returncode == 0, backup.stderr
            assert b"s3cr3t" in (tmp_path / "b.db").read_bytes()
            private = _modes(tmp_path, "aggregator.db*-???") | _modes(tmp_path, "*.db")  # and the daemon's -wal, -shm
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        os.umask(umask)
    assert {"aggregator.db", "aggregator.db-wal", "aggregator.db-shm", "b.db"} <= set(private)
    assert all(mode == 0o600 for mode in private.values()), {name: oct(mode) for name, mode in private.items()}
    published = _modes(tmp_path / "public", "**/*")
    assert published and all(mode & 0o444 == 0o444 for mode in published.values()), published


def test_the_install_steps_give_the_config_to_its_owner_only():
    """feeds.yaml holds the sources' secrets (`?token=` URLs, `auth:`): the systemd install steps
    of the README and the unit must not leave it readable by every local user. (The image's
    copy is the shipped example, in a container with no other user.)"""
    texts = [(ROOT / "README.md").read_text(), UNIT.read_text()]
    installs = [m for text in texts for m in re.findall(r"install (-m \d+ [^\n\\]*feeds\.yaml[^\n\\]*)", text)]
    assert len(installs) == 2, installs
    for args in installs:
        mode = int(args.split()[1], 8)
        assert mode & 0o077 == 0 and " -o aggregator -g aggregator " in f" {args} ", args


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_template_the_site_loads_is_package_data():
    """A wheel holds the package's modules and only the data files pyproject lists: a template
    the site loads (a page, or what one extends, includes or imports) left out of the list
    works from a checkout and is missing once installed from the wheel."""
    from jinja2 import Environment, meta

    from aggregator.publish.site import PAGES

    package = ROOT / "aggregator"
    globs = _pyproject()["tool"]["setuptools"]["package-data"]["aggregator"]
    shipped = {path for pattern in globs for path in package.glob(pattern) if path.is_file()}
    folder = importlib.resources.files("aggregator") / "templates"  # where PackageLoader reads them
    todo, seen = list(PAGES), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert package / "templates" / name in shipped, f"templates/{name} is not in package-data {globs}"
        source = (folder / name).read_text("utf-8")
        todo += [n for n in meta.find_referenced_templates(Environment().parse(source)) if n is not None]
    assert {"base.html", "_macros.html"} <= seen, seen


def test_the_python_classifiers_say_what_requires_python_allows_and_the_tests_ran_on():
    """The `Programming Language :: Python :: 3.x` classifiers start at requires-python's floor,
    leave no version out, and name the Python running the tests (add it once they pass)."""
    project = _pyproject()["project"]
    versions = (re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c) for c in project["classifiers"])
    listed = sorted(int(m[1]) for m in versions if m)
    assert listed and project["requires-python"] == f">=3.{listed[0]}", (project["requires-python"], listed)
    assert listed == list(range(listed[0], listed[-1] + 1)), listed
    assert sys.version_info[:2] in [(3, minor) for minor in listed], (sys.version_info[:2], listed)


def test_the_sdist_holds_the_files_the_readme_installs_and_no_tests():
    """Distributors build from the sdist: it must hold the files the README has an installer
    copy from the source tree (the unit, logrotate, the configs, the Dockerfile), and not a
    part of tests/ that cannot run without conftest.py and ../shared/. MANIFEST.in is applied,
    as setuptools' sdist does, to every file of the checkout."""
    from setuptools._distutils.filelist import FileList

    files = FileList()
    files.set_allfiles([str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts])
    files.files = list(files.allfiles)  # setuptools' defaults, tests/test*.py among them, are a subset of these
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            files.process_template_line(line)
    named = set(re.findall(r"`(?:cp |install [^`]*?)?(config/[\w.-]+)", (ROOT / "README.md").read_text()))
    assert named >= {"config/aggregator.service", "config/logrotate", "config/feeds.example.yaml"}, named
    assert named | {"feeds.yaml", "Dockerfile"} <= set(files.files)
    assert not [f for f in files.files if f.startswith(("tests/", "bench/"))]
