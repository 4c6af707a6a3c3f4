"""Operational behaviour of `aggregator run` found by a review: each test runs the real daemon."""

from __future__ import annotations

import signal
import time

from .daemon_support import FEEDS, Daemon, FeedServer, fetched, write_config
from .reliability.conftest import fill, tmpfs


def test_a_reload_the_full_database_cannot_take_is_rejected_not_fatal(tmp_path):
    """A reload writes the sources to the database: on a full disk it failed with a traceback,
    and the daemon stopped (systemd's restarts then met the same full disk)."""
    server = FeedServer()
    try:
        with tmpfs(tmp_path / "disk", "2m") as disk:
            a, b = server.feed("/a", FEEDS[0]), server.feed("/b", FEEDS[1])
            cfg = tmp_path / "feeds.yaml"
            extra = f"  database: {disk / 'a.db'}"
            write_config(cfg, [{"url": a, "interval": "1h"}], site_extra=extra)
            daemon = Daemon(cfg, "--grace", "1s")
            try:
                daemon.wait_for(fetched(a, "new"))
                filler = fill(disk)
                write_config(cfg, [{"url": a, "interval": "1h"}, {"url": b, "interval": "1h"}], site_extra=extra)
                daemon.send(signal.SIGHUP)
                daemon.wait_for(lambda r: r["message"].startswith("config reload (SIGHUP) rejected"))
                time.sleep(0.5)
                assert daemon.proc.poll() is None, daemon.log
                assert not daemon.messages("Traceback"), daemon.log
                filler.unlink()
                daemon.send(signal.SIGHUP)  # (else tried again by itself 30 s later)
                daemon.wait_for(fetched(b, "new"))
            finally:
                rc = daemon.stop()
            assert rc == 0, daemon.log
    finally:
        server.close()
