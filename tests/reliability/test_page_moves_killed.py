"""Re-dated posts' pages move while the process moving them is SIGKILLed at random moments:
every URL a reader may hold (the old page paths) answers at every moment with a whole page
or a whole redirect stub, never a 404 or half a file, and the run that finally completes
leaves each old path redirecting to its post's new page. Real processes, real HTTP
(pytest-httpserver), a real SQLite file."""

from __future__ import annotations

import random
import re
import subprocess
import time
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ..conftest import check_feeds, run_cli
from .conftest import aggregator, child_env, output_problems, seed_from_env, temp_files

SITE = "https://news.example.org/"
POSTS = 200
KILLS = 12

ENTRY = """<entry>
<title>Note {i}</title>
<id>urn:uuid:7d9d2c5e-0f7e-4a43-9b4e-{i:012d}</id>
<published>{month}-{day:02d}T{hour:02d}:00:00Z</published>
<updated>{month}-{day:02d}T{hour:02d}:00:00Z</updated>
<content type="html">&lt;p&gt;Note {i} text{note}.&lt;/p&gt;</content>
</entry>
"""


def feed(month: str, note: str) -> bytes:
    """POSTS link-less entries (their feed items link to our pages), all dated in `month`."""
    entries = "".join(ENTRY.format(i=i, month=month, day=1 + i % 28, hour=i % 24, note=note) for i in range(POSTS))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n<title>Notes</title>\n'
        f"<id>urn:uuid:7d9d2c5e-0f7e-4a43-9b4e-ffffffffffff</id>\n<updated>{month}-28T23:00:00Z</updated>\n"
        f"{entries}</feed>\n"
    ).encode()


def test_pages_moved_under_kills_always_answer_and_end_as_redirects(tmp_path: Path, httpserver: HTTPServer):
    seed = seed_from_env()
    rng = random.Random(seed)
    where = f"seed {seed}: RELIABILITY_SEED={seed} replays it"
    state = {"body": feed("2022-02", "")}

    def handler(request: Request) -> Response:
        return Response(state["body"], content_type="application/atom+xml")

    httpserver.expect_request("/notes.atom").respond_with_handler(handler)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: Moves\n  url: {SITE}\n  items_per_feed: {POSTS}\ncategories:\n  - name: News\n"
        f"    slug: news\n    sources:\n      - url: {httpserver.url_for('/notes.atom')}\n",
        encoding="utf-8",
    )
    public = tmp_path / "public"
    started = time.monotonic()
    done = run_cli("--config", str(cfg), "fetch")
    run_time = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    old = sorted((public / "posts" / "2022" / "02").glob("*.html"))
    assert len(old) == POSTS

    state["body"] = feed("2022-01", " (re-dated)")  # every post moves a month back
    for i in range(KILLS):
        # fetches (store, then publish what changed) and `publish` (everything) alike
        command = "publish" if i % 3 == 2 else "fetch"
        proc = subprocess.Popen(
            aggregator("--config", str(cfg), command),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),
        )
        try:
            proc.wait(rng.uniform(0.2, 1.2 * run_time))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        missing = [p for p in old if not p.is_file()]
        assert not missing, f"run {i} ({where}): old URLs answer 404, e.g. {missing[:3]}"
        problems = output_problems(public)
        assert not problems, f"run {i} ({where}): " + "\n".join(problems[:5])

    done = run_cli("--config", str(cfg), "fetch")  # the run that completes: no `publish` forcing it
    assert done.returncode == 0, done.stdout + done.stderr
    new = {p.name for p in (public / "posts" / "2022" / "01").glob("*.html")}
    assert new == {p.name for p in old}, where
    for page in old:
        text = page.read_text("utf-8")
        target = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', text)
        assert target and target[1] == f"../../../posts/2022/01/{page.name}", f"{page} ({where}): {text[:300]}"
        assert " (re-dated)." in (page.parent / target[1]).read_text("utf-8")
    assert not temp_files(public)
    checked = check_feeds(public)
    assert checked.returncode == 0, checked.stdout + checked.stderr
