"""Hostile XML through the whole pipeline: served over HTTP, fetched, parsed, normalized,
stored and published in a fresh process that measures itself (see pipeline_child.py).

Every case must finish within a few seconds, grow the process's peak RSS by less than
50 MB, open no local file and reach no other host, and end either as posts (with nothing
expanded) or as that source's recorded error; a well-behaved source polled right after it
in the same process must be stored as usual, and every published file must stay valid.
"""

from __future__ import annotations

import json
import resource
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.defuse import HostileXML, defuse
from aggregator.parse import parse_feed
from aggregator.parse_fast import parse_fast

from ..conftest import CORPUS, ROOT, StaticServer
from .conftest import CanaryServer, child_env, output_problems

# One hostile feed: CPU seconds (what a quadratic case blows up, and what a loaded CI machine
# leaves alone: category_flood through feedparser, 2.5 s of CPU, took 5–7 s of wall time beside
# three copies of itself), and wall seconds (a wait that never ends).
TIME_BOUND = 10.0
WALL_BOUND = 40.0
RSS_BOUND = 50.0  # MB of peak RSS growth
HANG = 60  # a case still running then has hung
ADDRESS_SPACE = 1 << 30  # a regression must fail here, not exhaust the machine running the suite


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


RSS_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
EXPANDED = ("lollollollollol", "CANARY-REACHED", "root:x:0:0")


def _rss(items: str, head: str = RSS_HEAD, doctype: str = "") -> str:
    return (
        f'{head}{doctype}<rss version="2.0"><channel><title>hostile</title><link>http://hostile.example/</link>'
        f"<description>d</description>{items}</channel></rss>"
    )


def _item(title: str, body: str, guid: str = "g1") -> str:
    return f"<item><title>{title}</title><description>{body}</description><guid>{guid}</guid></item>"


def _laughs(one_line: bool) -> str:
    sep = "" if one_line else "\n"
    ents = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return f"<!DOCTYPE rss [{sep}{sep.join(ents)}{sep}]>{sep}"


def cases(secret: Path, secret_dtd: Path, canary: CanaryServer) -> dict[str, tuple[bytes, str]]:
    """name → (body, expected outcome: "posts" or "refused")."""
    big = "A" * 100_000
    many_refs = "&a;" * 20_000
    deep = 100_000
    out: dict[str, tuple[bytes, str]] = {
        "billion_laughs": (_rss(_item("&lol9;", "&lol9;"), doctype=_laughs(False)).encode(), "posts"),
        "billion_laughs_one_line": (
            (RSS_HEAD.rstrip("\n") + _laughs(True) + _rss(_item("&lol9;", "&lol9;"), head="")).encode(),
            "posts",
        ),
        "quadratic_blowup": (
            _rss(_item("q", many_refs), doctype=f'<!DOCTYPE rss [\n<!ENTITY a "{big}">\n]>\n').encode(),
            "refused",
        ),
        "quadratic_blowup_one_line": (
            _rss(_item("q", many_refs), doctype=f'<!DOCTYPE rss [<!ENTITY a "{big}">]>').encode(),
            "refused",
        ),
        # feedparser keeps <!ENTITY> lines it finds anywhere before the root, even outside the DOCTYPE
        "quadratic_blowup_stray_entity": (
            _rss(_item("q", many_refs), doctype=f'<!DOCTYPE rss>\n<!ENTITY a "{big}">\n').encode(),
            "posts",
        ),
        "xxe_etc_passwd": (
            _rss(_item("&xxe;", "&xxe;"), doctype='<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n').encode(),
            "posts",
        ),
        "xxe_secret_file": (
            _rss(_item("&xxe;", "&xxe;"), doctype=f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>').encode(),
            "posts",
        ),
        "xxe_other_host": (
            _rss(
                _item("&xxe;", "&xxe;"),
                doctype=f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{canary.url("xxe_other_host")}">]>',
            ).encode(),
            "posts",
        ),
        "xxe_parameter_entity": (
            _rss(
                _item("&canary;", "&canary;"),
                doctype=f'<!DOCTYPE rss [\n<!ENTITY % p SYSTEM "{canary.url("xxe_parameter_entity")}">\n%p;\n]>\n',
            ).encode(),
            "posts",
        ),
        "doctype_local_file": (
            _rss(_item("&secret;", "&secret;"), doctype=f'<!DOCTYPE rss SYSTEM "{secret_dtd}">\n').encode(),
            "posts",
        ),
        "doctype_file_url": (
            _rss(_item("&secret;", "&secret;"), doctype=f'<!DOCTYPE rss SYSTEM "file://{secret_dtd}">').encode(),
            "posts",
        ),
        "doctype_other_host": (
            _rss(
                _item("&canary;", "&canary;"),
                doctype=f'<!DOCTYPE rss PUBLIC "-//X//DTD X//EN" "{canary.url("doctype_other_host")}">\n',
            ).encode(),
            "posts",
        ),
        # the guard runs after feedparser's decoding: a UTF-16 document cannot hide its DTD
        "quadratic_blowup_utf16": (
            _rss(
                _item("q", many_refs),
                head='<?xml version="1.0" encoding="utf-16"?>\n',
                doctype=f'<!DOCTYPE rss [\n<!ENTITY a "{big}">\n]>\n',
            ).encode("utf-16"),
            "refused",
        ),
        "billion_laughs_utf16": (
            _rss(
                _item("&lol9;", "&lol9;"), head='<?xml version="1.0" encoding="utf-16"?>', doctype=_laughs(True)
            ).encode("utf-16"),
            "posts",
        ),
        "deep_nesting": (_rss(_item("deep", "<x>" * deep + "x" + "</x>" * deep)).encode(), "refused"),
        "deep_nesting_unclosed": (_rss(_item("deep", "<x>" * deep + "x")).encode(), "refused"),
        "deep_nesting_atom_xhtml": (
            (
                '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>'
                '<updated>2024-01-01T00:00:00Z</updated><entry><id>urn:e</id><title>deep</title>'
                '<updated>2024-01-01T00:00:00Z</updated><content type="xhtml">'
                '<div xmlns="http://www.w3.org/1999/xhtml">' + "<div>" * deep + "x" + "</div>" * deep + "</div>"
                "</content></entry></feed>"
            ).encode(),
            "refused",
        ),
        # escaped HTML is no XML nesting: it reaches the sanitizer, which must cap it, not hang
        "deep_nesting_escaped_html": (
            _rss(_item("deep html", "&lt;div&gt;" * deep + "x" + "&lt;/div&gt;" * deep)).encode(),
            "posts",
        ),
        "deep_nesting_cdata_html": (
            _rss(_item("deep html", "<![CDATA[" + "<div><span><b>" * deep + "x]]>")).encode(),
            "posts",
        ),
        # tags never closed by a `>`: the depth cap's walk over the tags read each to the end
        # of the content (300 KB: 40 s), where the next `<` ends it
        "unterminated_tags_html": (
            _rss(_item("unterminated", "<![CDATA[" + "<b " * deep + "x]]>")).encode(),
            "posts",
        ),
        # the same depth with a `<` in each tag's attribute: a walk that took `<` for the end
        # of a tag counted none of them, and html5ever met all 100,000 levels
        "deep_nesting_lt_in_attributes": (
            _rss(_item("lt in attributes", "<![CDATA[" + '<div title="<">' * deep + "x]]>")).encode(),
            "posts",
        ),
        # one entry with 50,000 categories: feedparser's "already tagged?" scan of the list
        # made them quadratic (100,000 took two minutes on either parser)
        "category_flood": (
            _rss(
                "<item><title>tags</title><guid>g1</guid>"
                + "".join(f'<category domain="d">t{i}</category><category>t{i % 100}</category>' for i in range(25_000))
                + "</item>"
            ).encode(),
            "posts",
        ),
        "giant_attributes": (
            (
                '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>'
                '<updated>2024-01-01T00:00:00Z</updated><entry><id>urn:e</id><title>giant</title>'
                f'<updated>2024-01-01T00:00:00Z</updated><link href="http://hostile.example/{"a" * 1_000_000}"/>'
                f'<category term="{"t" * 1_000_000}"/>'
                f'<content type="html">&lt;img src="http://hostile.example/{"i" * 1_000_000}" '
                f'alt="{"b" * 1_000_000}"&gt;'
                "</content></entry></feed>"
            ).encode(),
            "posts",
        ),
        "attribute_flood": (
            (
                '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>'
                "<entry " + " ".join(f'a{i}="v"' for i in range(200_000)) + ">"
                "<id>urn:e</id><title>x</title></entry></feed>"
            ).encode(),
            "refused",
        ),
        "json_deep_nesting": (
            ('{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{"id": "1", "x": '
             + "[" * deep + "]" * deep + "}]}").encode(),
            "refused",
        ),
    }  # fmt: skip
    return out


@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory):
    """The served feeds (two good ones around every hostile case), the secret files and the canary host."""
    root = tmp_path_factory.mktemp("hostile")
    marker = "SECRET-" + secrets.token_hex(8)
    secret = root / "secret.txt"
    secret.write_text(marker + "\n")
    secret_dtd = root / "secret.dtd"
    secret_dtd.write_text(f'<!ENTITY secret "{marker}">\n')
    canary = CanaryServer()
    feeds = root / "feeds"
    feeds.mkdir()
    good = sorted((CORPUS / "zh").iterdir())
    for f in good:
        (feeds / f.name).write_bytes(f.read_bytes())
    table = cases(secret, secret_dtd, canary)
    assert sorted(table) == sorted(NAMES)
    for name, (body, _) in table.items():
        (feeds / f"{name}.xml").write_bytes(body)
    server = StaticServer(feeds)
    try:
        yield root, table, good, marker, canary, server
    finally:
        server.close()
        canary.close()


def run_case(run_name: str, root: Path, good: list[Path], server: StaticServer) -> tuple[dict, Path]:
    """One case in its own measured process (pipeline_child.py), so that each case is a test
    of its own that xdist can give any worker; → (the child's report, its folder)."""
    name, _, parser = run_name.partition("@")
    folder = root / run_name
    folder.mkdir()
    hostile = server.url(f"{name}.xml")
    cfg = folder / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: Hostile\n  url: https://news.example.com/\ncategories:\n  - name: All\n    sources:\n"
        f"      - url: {server.url(good[0].name)}\n      - url: {hostile}\n"
        f"      - url: {server.url(good[1].name)}\n",
        encoding="utf-8",
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.reliability.pipeline_child", str(cfg), hostile],
            capture_output=True,
            text=True,
            timeout=HANG,
            cwd=ROOT,
            env=child_env() | ({"AGGREGATOR_PARSER": parser} if parser else {}),
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        return {"crashed": f"still running after {HANG}s: it hangs"}, folder
    if done.returncode != 0:
        return {"crashed": f"the pipeline process failed:\n{done.stderr[-3000:]}"}, folder
    return json.loads(done.stdout.strip().splitlines()[-1]), folder


NAMES = [
    "billion_laughs", "billion_laughs_one_line", "quadratic_blowup", "quadratic_blowup_one_line",
    "quadratic_blowup_stray_entity", "xxe_etc_passwd", "xxe_secret_file", "xxe_other_host",
    "xxe_parameter_entity", "doctype_local_file", "doctype_file_url", "doctype_other_host",
    "quadratic_blowup_utf16", "billion_laughs_utf16", "deep_nesting", "deep_nesting_unclosed",
    "deep_nesting_atom_xhtml", "deep_nesting_escaped_html", "deep_nesting_cdata_html",
    "unterminated_tags_html", "deep_nesting_lt_in_attributes", "category_flood", "giant_attributes",
    "attribute_flood",
    "json_deep_nesting",
]  # fmt: skip

# parse_feed tries the lxml fast path first and falls back to feedparser for what it declines.
# The fast path declines every document with a DOCTYPE, too deep or with an oversized tag
# (`test_which_parser_takes_each_case`), so feedparser meets those; the cases it takes are
# run once more with feedparser forced, so both parsers meet every case.
FAST_PATH_TAKES = [
    "deep_nesting_escaped_html", "deep_nesting_cdata_html", "unterminated_tags_html", "deep_nesting_lt_in_attributes",
    "category_flood",
]  # fmt: skip
RUNS = NAMES + [f"{name}@feedparser" for name in FAST_PATH_TAKES]


def test_which_parser_takes_each_case(tmp_path):
    class _NoHost:
        def url(self, name: str) -> str:
            return f"http://127.0.0.1:9/{name}"

    table = cases(tmp_path / "secret.txt", tmp_path / "secret.dtd", _NoHost())  # type: ignore[arg-type]
    taken = [
        name
        for name, (body, _) in table.items()
        if parse_fast(body, "http://127.0.0.1:9/feed.xml", {"content-type": "application/xml"}) is not None
    ]
    assert taken == FAST_PATH_TAKES


@pytest.mark.parametrize("case", RUNS)
def test_hostile_feed_is_bounded_and_contained(case, hostile_env):
    root, table, good, marker, canary, server = hostile_env
    r, folder = run_case(case, root, good, server)
    canary_hits = canary.hits
    case = case.partition("@")[0]
    expected = table[case][1]
    assert "crashed" not in r, f"{case}: {r.get('crashed')}"
    print(
        f"{case}: {r['status']} in {r['elapsed']:.2f}s ({r['cpu']:.2f}s CPU), "
        f"peak RSS +{r['rss_growth_mb']:.1f} MB {r['error'] or ''}"
    )
    assert r["cpu"] < TIME_BOUND, f"{case}: took {r['cpu']:.1f}s of CPU"
    assert r["elapsed"] < WALL_BOUND, f"{case}: took {r['elapsed']:.1f}s"
    assert r["rss_growth_mb"] < RSS_BOUND, f"{case}: peak RSS grew by {r['rss_growth_mb']:.0f} MB"
    # no local file read, no other host reached
    watched = ("/etc/passwd", "secret.txt", "secret.dtd")
    assert not [p for p in r["opened"] if p.endswith(watched)], f"{case}: opened {r['opened']}"
    feed_port = str(server.httpd.server_address[1])
    assert all(feed_port in c for c in r["connected"]), f"{case}: connected to {r['connected']}"
    assert not [h for h in canary_hits if case in h], f"{case}: the other host got {canary_hits}"
    # the outcome: posts with nothing expanded, or this source's recorded error
    con = sqlite3.connect(folder / "aggregator.db")
    hostile_key = server.url(f"{case}.xml")
    state = con.execute("SELECT state, last_error FROM sources WHERE key = ?", [hostile_key]).fetchone()
    if expected == "refused":
        assert r["status"] == "error", f"{case}: expected a refusal, got {r}"
        assert state[0] == "erroring" and state[1] == r["error"]
        assert "refused" in r["error"] or "nested too deeply" in r["error"], r["error"]
    else:
        assert r["status"] == "new" and r["entries"] >= 1, f"{case}: expected posts, got {r}"
    stored = "".join(
        str(v) for row in con.execute("SELECT title, content, summary, link, tags FROM posts") for v in row
    )
    for text in (*EXPANDED, marker):
        assert text not in stored, f"{case}: {text!r} reached the database"
    # the well-behaved source after it went through as usual, and the outputs are valid
    assert r["warm"] == "new" and r["after"] == "new" and r["after_entries"] > 0, r
    out = folder / "public"
    assert not output_problems(out)
    published = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    for text in (*EXPANDED, marker):
        assert text not in published, f"{case}: {text!r} was published"


def test_guard_leaves_every_corpus_feed_alone():
    """No real feed is refused, and only documents with an internal DTD subset are rewritten."""
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".md", ".csv")]
    assert len(files) > 2000
    rewritten = []
    for path in files:
        data = path.read_bytes()
        try:
            if defuse(data) != data:
                rewritten.append(path.name)
        except HostileXML as e:
            pytest.fail(f"{path}: {e}")
    assert sorted(rewritten) == ["doctype_contains_entity_decl.xml", "entity_in_doctype.xml"]


def test_plain_entities_still_expand_and_external_ones_do_not():
    """feedparser's own expectations for the corpus's two DTD files still hold through the guard."""
    xml = {"content-type": "application/xml"}
    path = CORPUS / "feedparser-tests/wellformed/rss/entity_in_doctype.xml"
    feed = parse_feed("s", path.read_bytes(), "http://x/", xml)
    assert feed.warning is None and feed.entries[0]["guid"] == "tag:example.com,2006-05-04:/blog/"
    path = CORPUS / "feedparser-tests/wellformed/rdf/doctype_contains_entity_decl.xml"
    rdf = parse_feed("s", path.read_bytes(), "http://x/", xml)
    assert rdf.warning is None and rdf.version == "rss10"
    dtd = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY c "&#169;"><!ENTITY n "ACME">'
    dtd += b'<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY y "&n;&n;">]>'
    plain = parse_feed("s", dtd + b'<rss version="2.0"><channel><title>&n; &c;</title></channel></rss>', "u", xml)
    assert plain.warning is None and plain.info.title == "ACME \xa9"
    # an external or nested entity is left unexpanded: the strict parser stops, the loose one shows it
    title = parse_feed("s", dtd + b'<rss version="2.0"><channel><title>&n; &x; &y;</title></channel></rss>', "u", xml)
    assert title.warning and title.info.title == "ACME &x; &y;"
