"""Fuzzing with hypothesis: mutated corpus feeds through parse → normalize (→ store → publish),
and random configs through `load_config`.

The only outcomes allowed for a feed are posts that keep the post model's invariants, or a
ParseError naming the source; the published feeds must pass the shared strict validators
(Atom RELAX NG, RSS 2.0 rules, JSON Feed 1.1 schema). For a config: Settings, or a
ConfigError whose every message starts with a line number. Anything else (an uncaught
exception, invalid output) fails with hypothesis's shrunk example.

The runs are derandomized, so CI replays the same 2,600 cases every time, and then the 64 cases of
a run four times as long that reached code those did not (`fuzz_cases.json.gz`, rebuilt by
`python -m tests.reliability.fuzz_corpus`): the branches of aggregator the 10,400 cases ran, in a
quarter of their time. Set FUZZ_SEED=<n> to explore other cases and FUZZ_SCALE=<k> to run k times as many.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator.config import ConfigError, Settings, load_config
from aggregator.models import Post, Source
from aggregator.normalize import normalize
from aggregator.parse import ParseError, parse_feed
from aggregator.publish import publish
from aggregator.sanitize import sanitized_text
from aggregator.store import Store

from ..conftest import CHECK_FEEDS, CORPUS, ROOT, SHARED

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
# Where coverage stops growing: the branches (arcs) of aggregator run by the fuzzing, measured by
# `python -m tests.reliability.fuzz_corpus` (a run 4× as long): feeds 1,500 cases run 2,195 arcs,
# 6,000 run 2,255; pipeline 600 / 5,908 and 2,400 / 6,136; configs 500 / 662 and 2,000 / 693.
# The 64 later cases that ran an arc the first ones had not are pinned (`fuzz_cases.json.gz`).
FEED_CASES = int(1500 * SCALE)
PIPELINE_CASES = int(600 * SCALE)
CONFIG_CASES = int(500 * SCALE)
PINNED = Path(__file__).with_name("fuzz_cases.json.gz")
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def fuzz_settings(n: int) -> Callable:
    chosen = settings(
        max_examples=n,
        deadline=None,
        derandomize="FUZZ_SEED" not in os.environ,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    if "FUZZ_SEED" not in os.environ:
        return chosen
    return lambda f: seed(int(os.environ["FUZZ_SEED"]))(chosen(f))


def replay_pinned(which: str, case: Callable[..., None]) -> int:
    """Run `case` on the pinned cases of one test (see the module's docstring); how many."""
    cases = json.loads(gzip.decompress(PINNED.read_bytes())).get(which, [])
    for pinned in cases:
        if "text" in pinned:
            case(base64.b64decode(pinned["text"]).decode("utf-8", "surrogatepass"))
        else:
            case(base64.b64decode(pinned["body"]), pinned["headers"])
    return len(cases)


def _small(folder: str, limit: int) -> list[Path]:
    return sorted(p for p in (CORPUS / folder).rglob("*") if p.is_file() and p.stat().st_size <= limit)


# Real feeds of every format and many encodings, small enough for thousands of cases a minute.
SEEDS: list[bytes] = [
    p.read_bytes()
    for p in (
        _small("suites", 12_000)
        + _small("zh", 100_000)
        + _small("speedparser2011", 6_000)[:20]
        + _small("feedparser-tests/wellformed/atom10", 2_000)[::12]
        + _small("feedparser-tests/wellformed/rss", 2_000)[::25]
        + _small("feedparser-tests/wellformed/rdf", 2_000)[::5]
        + _small("feedparser-tests/encoding", 2_000)[::8]
    )
]
assert len(SEEDS) > 60, len(SEEDS)

ENTITY_REFS = [
    b"&amp;", b"&lt;", b"&nbsp;", b"&eacute;", b"&undefined;", b"&#0;", b"&#xD800;", b"&#1114112;",
    b"&#x110000;", b"&#65535;", b"&#12;", b"&", b"&#", b"&#x;", b"&lol9;", b"&a;&a;&a;&a;", b"&#x1F600;",
]  # fmt: skip
MARKUP = [
    b"<item>", b"</item>", b"<entry>", b"</entry>", b"<![CDATA[", b"]]>", b"<!--", b"-->", b"<title>",
    b"</channel>", b"</feed>", b'<!DOCTYPE x [<!ENTITY a "b">]>', b"<script>alert(1)</script>",
    b'<a href="javascript:alert(1)">x</a>', b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"<", b">", b'"',
    b'<link href="javascript:alert(1)"/>', b"<guid></guid>", b"<description>&lt;img src=x onerror=alert(1)&gt;",
    b'<enclosure url="ftp://x" length="-1" type=""/>', b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">',
    b'<?xml version="1.0" encoding="utf-16"?>', b"\r", b"\t", b"\x1b[31m", b"\xe2\x80\xae", b"\xed\xa0\x80",
    b'&lt;math&gt;&lt;mi xlink:href="javascript:alert(1)"&gt;x&lt;/mi&gt;&lt;mpadded voffset="-9em"&gt;',
    b'<math xmlns="http://www.w3.org/1998/Math/MathML"><mtext><img src=x onerror=alert(1)/></mtext></math>',
]  # fmt: skip
ENCODINGS = [
    "utf-8", "utf-16", "utf-16le", "utf-32", "gbk", "gb2312", "big5", "shift_jis", "euc-jp", "iso-8859-1",
    "windows-1252", "koi8-r", "cp037", "x-bogus", "", "utf-7", "us-ascii",
]  # fmt: skip
DATES = [
    "", "0000-00-00", "9999-12-31T23:59:59+14:00", "Mon, 32 Foo 2020 25:61:61 +9999", "-1", "1e308",
    "2020-02-30", "Sat, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 -1200", "2024-13-01T00:00:00Z",
    "yesterday", "1712345678", "2024-06-01T12:00:00", "2100-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
    "Tue, 10 Jun 2003 04:00:00 GMT", "2003-12-13T18:30:02.25+01:00", "２０２４年６月１日", "T", "NaN",
]  # fmt: skip
DATE_ELEMENT = re.compile(rb"(<(pubDate|updated|published|dc:date|lastBuildDate|issued|modified|created)[^>]*>)([^<]*)")
CONTENT_TYPES = [
    {}, {"content-type": "application/rss+xml"}, {"content-type": "application/atom+xml; charset=gbk"},
    {"content-type": "text/html"}, {"content-type": "application/json"}, {"content-type": "text/xml; charset=bogus"},
]  # fmt: skip


OPS = ["truncate", "flip", "bytes", "entity", "markup", "declare", "reencode", "attr", "date"]


@st.composite
def mutated_feeds(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["truncate", "flip", "bytes", "entity", "markup", "declare", "reencode", "attr", "date"])
        )
        pos = draw(st.integers(0, len(data)))
        if op == "truncate":
            del data[pos:]
        elif op == "flip" and data:
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "bytes":
            data[pos:pos] = draw(st.binary(max_size=32))
        elif op == "entity":
            data[pos:pos] = draw(st.sampled_from(ENTITY_REFS))
        elif op == "markup":
            data[pos:pos] = draw(st.sampled_from(MARKUP))
        elif op == "declare":  # a declaration that lies about the encoding
            decl = f'<?xml version="1.0" encoding="{draw(st.sampled_from(ENCODINGS))}"?>'.encode()
            data = bytearray(re.sub(rb"^\s*<\?xml[^>]*\?>", b"", bytes(data), count=1))
            data[0:0] = decl
        elif op == "reencode":  # the bytes in another encoding than the declaration says
            codec = draw(st.sampled_from([e for e in ENCODINGS if e and e != "x-bogus"]))
            data = bytearray(bytes(data).decode("utf-8", "replace").encode(codec, "replace"))
        elif op == "attr":  # a giant attribute in the next start tag
            m = re.compile(rb"<[A-Za-z][\w:.-]*").search(bytes(data), pos)
            if m:
                size = draw(st.sampled_from([100, 5_000, 100_000, 400_000]))
                data[m.end() : m.end()] = b' x="' + b"A" * size + b'"'
        elif op == "date":
            bad = draw(st.sampled_from(DATES)).encode()
            data = bytearray(DATE_ELEMENT.sub(lambda m, bad=bad: m.group(1) + bad, bytes(data)))
    return bytes(data[:2_000_000])


TAG = re.compile(r"<[A-Za-z][^>]*>")
ACTIVE = re.compile(r"^<(script|style|iframe(?![^>]*\ssandbox=)|object|embed)\b|\son[a-z]+\s*=|javascript:", re.I)


def _encodable(text: str | None) -> bool:
    if text is None:
        return True
    text.encode("utf-8")  # a lone surrogate here would break SQLite, XML and JSON output
    return True


def check_post(post: Post, key: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", post.id), post.id
    assert post.source == key and post.guid
    # a title, but for a post with nothing to make one of (no title, text or link): publishers name it
    assert post.title.strip() or not (post.link or sanitized_text(post.content)), post
    for dt in (post.published, post.updated, post.first_seen):
        assert dt is not None and dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 0, dt
    assert post.published <= post.updated <= NOW
    assert post.link is None or post.link.startswith(("http://", "https://")), post.link
    for text in (post.title, post.guid, post.content, post.summary, post.link, post.language, post.comments):
        assert _encodable(text)
    for a in post.authors:
        assert _encodable(a.name) and _encodable(a.email) and _encodable(a.url)
    for t in post.tags:
        assert _encodable(t) and t.strip()
    for html in (post.content, post.summary):
        for tag in TAG.findall(html):  # text is escaped by the sanitizer: a raw `<` starts a real tag
            assert not ACTIVE.search(tag), f"active markup survived: {tag[:200]}"


def _parse_and_normalize(body: bytes, headers: dict[str, str], key: str) -> list[Post] | None:
    source = Source(key=key, url=key, categories=("fuzz",), timezone="Asia/Shanghai")
    try:
        feed = parse_feed(key, body, key, headers)
    except ParseError as e:
        assert e.source == key and str(e)
        return None
    posts = normalize(source, feed, NOW)
    for post in posts:
        check_post(post, key)
    return posts


def test_mutated_feeds_give_posts_or_a_parse_error():
    runs = 0

    def case(body: bytes, headers: dict[str, str]) -> None:
        nonlocal runs
        runs += 1
        _parse_and_normalize(body, headers, "http://fuzz.example/feed.xml")

    fuzz_settings(FEED_CASES)(given(body=mutated_feeds(), headers=st.sampled_from(CONTENT_TYPES))(case))()
    assert runs >= FEED_CASES * 0.95, runs
    replay_pinned("feeds", case)


def _validators() -> tuple[object, etree.RelaxNG, jsonschema.Draft7Validator]:
    spec = importlib.util.spec_from_file_location("check_feeds", CHECK_FEEDS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = etree.RelaxNG(etree.parse(str(SHARED / "schemas" / "atom.rng")))
    schema = json.loads((SHARED / "schemas" / "jsonfeed-1.1.schema.json").read_text())
    return module, rng, jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def test_mutated_feeds_store_and_publish_valid_feeds():
    check, rng, json_validator = _validators()
    # /dev/shm (tmpfs, where it exists): fsync costs nothing there, and durability is not under test
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        folder = Path(tmp)
        cfg = folder / "feeds.yaml"
        cfg.write_text(
            "site:\n  title: Fuzz\n  url: https://news.example.com/\n  timezone: Asia/Shanghai\n"
            "jekyll:\n  dir: jekyll\ncategories:\n  - name: Fuzz\n    sources:\n"
            "      - url: http://fuzz.example/feed.xml\n",
            encoding="utf-8",
        )
        config = load_config(cfg)
        store = Store(folder / "fuzz.db")
        runs = 0

        def case(body: bytes, headers: dict[str, str]) -> None:
            nonlocal runs
            runs += 1
            key = f"http://fuzz.example/{runs}.xml"  # each case is a source of its own
            posts = _parse_and_normalize(body, headers, key)
            source = Source(key=key, url=key, categories=("fuzz",))
            store.sync_sources([source])  # the category holds this case's posts only
            if posts is None:
                store.record_error(key, NOW, "parse error", None, None)
            else:
                new, updated = store.record_success(key, NOW, 200, posts=posts)
                assert new == len(posts) and updated == 0
                assert store.count_posts(key) == len(posts)
            publish(config, store)
            out = config.output_dir
            problems = []
            for path in (out / "category" / "fuzz.atom", out / "feed.atom"):
                problems += check.check_atom(path, rng)
            for path in (out / "category" / "fuzz.rss", out / "feed.rss"):
                problems += check.check_rss(path)
            for path in (out / "category" / "fuzz.json", out / "feed.json"):
                problems += check.check_json(path, json_validator)
            assert not problems, "\n".join(problems[:10])

        fuzz_settings(PIPELINE_CASES)(given(body=mutated_feeds(), headers=st.sampled_from(CONTENT_TYPES))(case))()
        assert runs >= PIPELINE_CASES * 0.95, runs
        replay_pinned("pipeline", case)
        store.close()


# -- configs -------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["30m", "90s", "2h", "1d", "0s", "-5m", "1w", "1.5h", "15 m", "Asia/Shanghai", "UTC", "Mars/Base"]),
    st.sampled_from(["https://news.example.com/", "http://x", "ftp://x/", "//x", "javascript:alert(1)", "张掖日报"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=4,
)
SITE_KEYS = ["title", "url", "language", "timezone", "output_dir", "database", "items_per_feed", "description",
             "user_agent", "workers", "bogus"]  # fmt: skip
SOURCE_KEYS = ["url", "name", "interval", "timezone", "timeout", "user_agent", "headers", "bogus"]
CATEGORY_KEYS = ["name", "slug", "tags", "sources", "bogus"]


def _maybe(draw: st.DrawFn, keys: list[str], value_for: Callable[[str], st.SearchStrategy]) -> dict:
    return {k: draw(value_for(k)) for k in keys if draw(st.integers(0, 3))}


def _value(key: str) -> st.SearchStrategy:
    """Mostly scalars; a nested list or mapping one time in eight (those cost ten times more to draw)."""
    return st.integers(0, 7).flatmap(lambda n: VALUES if n == 0 else SCALARS)


# The example config without its comments: every key, and less text for YAML to scan per case.
BASE_CONFIG = [
    line.split("  #")[0].rstrip()
    for line in (ROOT / "config" / "feeds.example.yaml").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]
LINE_INSERTS = [
    "- x", "a: [", "b: {", "  - url: 3", "&a x: *a", "!!python/object:os.system x", "\t", "---",
    "key: 'unterminated", "? complex", "site: again", "  interval: -1s", "    - url: ftp://x/",
]  # fmt: skip
LINE_OPS = ["delete", "duplicate", "indent", "dedent", "insert", "char"]


@st.composite
def configs(draw: st.DrawFn) -> str:
    """YAML text: a config shaped like a real one with random values, or a real one mutated."""
    if draw(st.booleans()):
        lines = list(BASE_CONFIG)
        for _ in range(draw(st.integers(1, 5))):
            i = draw(st.integers(0, len(lines) - 1))
            op = draw(st.sampled_from(LINE_OPS))
            if op == "delete":
                del lines[i]
            elif op == "duplicate":
                lines.insert(i, lines[i])
            elif op == "indent":
                lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
            elif op == "dedent":
                lines[i] = lines[i].lstrip()
            elif op == "insert":
                lines.insert(i, draw(st.sampled_from(LINE_INSERTS)))
            else:
                pos = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:pos] + draw(st.sampled_from(list(":-[]{}#&*!|>'\"%@`\t\0"))) + lines[i][pos:]
            if not lines:
                lines = [""]
        return "\n".join(lines)

    value = _value
    site = _maybe(draw, SITE_KEYS, value)
    if draw(st.integers(0, 3)):
        site["title"] = draw(st.text(min_size=1, max_size=10))
        site["url"] = draw(st.sampled_from(["https://news.example.com/", "https://x.example", "nope"]))
    cats = []
    for _ in range(draw(st.integers(0, 3))):
        cat = _maybe(draw, CATEGORY_KEYS, value)
        if draw(st.integers(0, 3)):
            cat["name"] = draw(st.text(min_size=1, max_size=10))
            cat["sources"] = [
                {"url": draw(st.sampled_from(["https://a.example/f", "http://b.example/x.xml", "bad"])),
                 **_maybe(draw, SOURCE_KEYS[1:], value)}
                for _ in range(draw(st.integers(0, 3)))
            ]  # fmt: skip
        cats.append(cat)
    doc: dict = {"site": site, "categories": cats}
    if draw(st.booleans()):
        doc["defaults"] = _maybe(draw, SOURCE_KEYS[1:], value)
    if draw(st.integers(0, 4)) == 0:
        doc[draw(st.text(max_size=6))] = draw(VALUES)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: generation stays cheap
    return yaml.dump(doc, Dumper=dumper, allow_unicode=True, sort_keys=False)


def test_random_configs_load_or_fail_with_line_numbers():
    runs = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feeds.yaml"

        def case(text: str) -> None:
            nonlocal runs
            runs += 1
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            try:
                result = load_config(path)
            except ConfigError as e:
                assert e.errors, "a ConfigError without a message"
                for line in e.errors:
                    assert re.match(r"^\d+: \S", line), f"not line-numbered: {line!r}"
                for line in str(e).splitlines():
                    assert line.startswith(f"{path}:"), line
                return
            assert isinstance(result, Settings)
            assert all(s.url.startswith(("http://", "https://")) for s in result.sources)
            assert all(re.fullmatch(r"[a-z0-9][a-z0-9_-]*", c.slug) for c in result.categories)

        fuzz_settings(CONFIG_CASES)(given(text=configs())(case))()
        assert runs >= CONFIG_CASES * 0.95, runs
        replay_pinned("config", case)


def test_fuzz_finding_a_post_dated_year_1_publishes_valid_dates(tmp_path):
    """Found by the pipeline fuzzer: `Sat, 01 Jan 0001 00:00:00 GMT` went out as RSS `01 Jan 1`
    and JSON Feed `1-01-01T00:00:00Z`, which no reader accepts."""
    check, rng, json_validator = _validators()
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://x.example/</link>'
        b"<description>d</description><item><title>old</title><link>http://x.example/1</link>"
        b"<pubDate>Sat, 01 Jan 0001 00:00:00 GMT</pubDate></item></channel></rss>"
    )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://news.example.com/\ncategories:\n  - name: Fuzz\n")
    config = load_config(cfg)
    key = "http://x.example/feed"
    with Store(tmp_path / "db") as store:
        store.sync_sources([Source(key=key, url=key, categories=("fuzz",))])
        store.record_success(key, NOW, 200, posts=_parse_and_normalize(body, {}, key))
        publish(config, store)
    out = config.output_dir / "category"
    assert not check.check_rss(out / "fuzz.rss") + check.check_atom(out / "fuzz.atom", rng)
    assert not check.check_json(out / "fuzz.json", json_validator)


def test_fuzz_findings_in_configs_are_line_numbered_and_readable(tmp_path):
    """Found by the config fuzzer: a NUL (or any character YAML forbids) gave an error with no
    line, and a key made of a control character printed that character raw."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://x.example/\n  bad: a\x00b\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert e.value.errors == ["4: invalid YAML: the character U+0000 is not allowed"]
    cfg.write_text('site:\n  title: T\n  url: https://x.example/\n"\\r": 1\n')
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert e.value.errors == ["4: '\\r': unknown key"]
