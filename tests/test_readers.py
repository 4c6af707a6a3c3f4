"""Real feed readers read what we publish for the whole corpus: rss2email (Debian package
`rss2email`, command `r2e`) fetches every RSS and Atom feed over HTTP and delivers one mail
per item into a Maildir; each item's mail must carry its title, link, guid and date.
(newsboat reads the same feeds in test_end_to_end via check_feeds.py --readers.)"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import shutil
import subprocess
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from lxml import etree

from .conftest import StaticServer

A = "{http://www.w3.org/2005/Atom}"
R2E = shutil.which("r2e")
pytestmark = pytest.mark.skipif(
    R2E is None and not os.environ.get("CI"), reason="rss2email is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def corpus_site(corpus_fetch) -> Path:
    """The published site of the whole corpus (the session's one cold fetch: conftest)."""
    tmp, _, result = corpus_fetch
    assert result.returncode in (0, 1), result.stderr
    return tmp / "public"


def expected_items(path: Path) -> dict[str, dict[str, object]]:
    """guid → what a reader must show, read from our own feed file."""
    root = etree.parse(str(path)).getroot()
    items: dict[str, dict[str, object]] = {}
    if root.tag == "rss":
        for item in root.iter("item"):
            items[item.findtext("guid")] = {
                "title": item.findtext("title"),
                "link": item.findtext("link"),
                "date": parsedate_to_datetime(item.findtext("pubDate")),
            }
    else:
        for entry in root.iter(f"{A}entry"):
            items[entry.findtext(f"{A}id")] = {
                "title": entry.findtext(f"{A}title"),
                "link": entry.find(f"{A}link[@rel='alternate']").get("href"),
                "date": datetime.fromisoformat(entry.findtext(f"{A}updated")),
            }
    return items


def feed_title(path: Path) -> str:
    root = etree.parse(str(path)).getroot()
    return root.findtext("channel/title") if root.tag == "rss" else root.findtext(f"{A}title")


def test_rss2email_reads_every_feed(corpus_site, tmp_path):
    feeds = sorted(corpus_site.glob("category/*.rss")) + sorted(corpus_site.glob("category/*.atom"))
    feeds += [corpus_site / "feed.rss", corpus_site / "feed.atom"]
    assert len(feeds) == 10
    server = StaticServer(corpus_site)
    mail = tmp_path / "mail"
    mail.mkdir()
    names = {f"{p.stem}-{p.suffix[1:]}": p for p in feeds}
    config = [
        "[DEFAULT]",
        "to = reader@example.org",
        "from = r2e@example.org",
        "email-protocol = maildir",
        f"maildir-path = {mail}",
        "date-header = True",
        "html-mail = False",
        "feed-timeout = 60",
        "verbose = warning",
    ]
    for name, path in names.items():
        config += [
            "",
            f"[feed.{name}]",
            f"url = {server.url(path.relative_to(corpus_site))}",
            f"maildir-mailbox = {name}",
        ]
    (tmp_path / "r2e.cfg").write_text("\n".join(config) + "\n", encoding="utf-8")
    try:
        result = subprocess.run(
            [R2E or "r2e", "-c", str(tmp_path / "r2e.cfg"), "-d", str(tmp_path / "r2e.json"), "run"],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "HOME": str(tmp_path)},
        )
    finally:
        server.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]

    problems = []
    total = 0
    # every Atom feed's required author, which rss2email gives an entry naming none: a post
    # with no author of its own is credited to its source, never to this site
    site = etree.parse(str(corpus_site / "feed.atom")).getroot().findtext(f"{A}author/{A}name")
    for name, path in names.items():
        want = expected_items(path)
        title = feed_title(path)
        got = {}
        for msg in mailbox.Maildir(mail / name, factory=None, create=False):
            parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
            got[str(parsed["X-RSS-ID"])] = parsed
        if set(got) != set(want):
            problems.append(f"{name}: rss2email delivered {len(got)} of {len(want)} items")
            continue
        for guid, item in want.items():
            m = got[guid]
            if " ".join(str(m["Subject"]).split()) != " ".join(str(item["title"]).split()):
                problems.append(f"{name}: {guid}: subject {m['Subject']!r} != title {item['title']!r}")
            if str(m["X-RSS-URL"]).strip() != item["link"]:
                problems.append(f"{name}: {guid}: link {m['X-RSS-URL']!r} != {item['link']!r}")
            sent = parsedate_to_datetime(str(m["Date"]))
            if (sent if sent.tzinfo else sent.replace(tzinfo=UTC)) != item["date"]:  # "-0000": UTC
                problems.append(f"{name}: {guid}: date {m['Date']} != {item['date']}")
            if not str(m["From"]).startswith(f'"{title}') and not str(m["From"]).startswith(title):
                problems.append(f"{name}: {guid}: sender {m['From']!r} does not name the feed {title!r}")
            if m["From"].addresses[0].display_name == f"{title}: {site}":
                problems.append(f"{name}: {guid}: sender {m['From']!r} credits this site with the post")
        total += len(want)
    assert not problems, "\n".join(problems[:40])
    assert total > 400  # ten feeds of up to 50 items each really went through
