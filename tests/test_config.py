"""feeds.yaml: what loads, what is derived, and that each mistake names its key and line."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aggregator.config import (
    SLUG_MAX,
    ConfigError,
    config_path,
    load_config,
    parse_duration,
    request_key,
    slugify,
)

from .conftest import ROOT, run_cli

GOOD = """\
site:
  title: 财经新闻
  url: https://news.example.com
  language: zh-CN
  timezone: Asia/Shanghai
defaults:
  interval: 30m
categories:
  - name: 张掖日报
    tags: [张掖日报新闻]
    sources:
      - url: https://example.com/feed.xml
        name: 张掖日报
        interval: 1h
      - url: https://example.com/shared.xml
  - name: Tech News
    sources:
      - url: https://example.com/shared.xml
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.errors


def test_good_config_loads_with_defaults_and_derived_values(tmp_path):
    s = load(tmp_path, GOOD)
    assert s.site.url == "https://news.example.com/"
    assert s.output_dir == tmp_path / "public" and s.database == tmp_path / "aggregator.db"
    assert s.site.items_per_feed == 50
    assert [c.slug for c in s.categories] == ["zhangyeribao", "tech-news"]
    by_key = {src.key: src for src in s.sources}
    assert by_key["https://example.com/feed.xml"].interval == 3600
    shared = by_key["https://example.com/shared.xml"]
    assert shared.interval == 1800  # from defaults
    assert shared.categories == ("zhangyeribao", "tech-news")  # one source, fetched once, in both
    assert shared.timezone == "Asia/Shanghai"  # the site's zone by default
    assert len(s.sources) == 2


def test_shipped_feeds_yaml_is_valid():
    s = load_config(ROOT / "feeds.yaml")
    assert any(
        c.slug and all(ord(ch) < 128 for ch in c.slug) and any(ord(ch) > 0x3000 for ch in c.name) for c in s.categories
    ), "ships a Chinese category with a pinyin slug"
    assert len(s.sources) >= 5


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("张掖日报", "zhangyeribao"),
        ("Tech News", "tech-news"),
        ("AI新闻", "aixinwen"),
        ("Café Société", "cafe-societe"),
    ],
)
def test_slugify(name, slug):
    assert slugify(name) == slug


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), (45, 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "host",
    [
        "my_feed.bücher.example",  # an ASCII label no IDNA allows is sent as written: requests fetched it
        "BÜCHER.example",
        "straße.example",  # IDNA 2008 keeps ß (2003 made it ss)
        "my_feed.example.com",
        "intranet",
        "localhost:8080",
        "[::1]:8080",
        "10.0.0.1",
        "feeds.example.org.",
        "i❤.example",  # refused by both
        "ｅｘａｍｐｌｅ.com",  # full-width: refused by both
        "bücher。example",  # an ideographic full stop, as a CJK input method types it: urllib3 keeps it
    ],
)
def test_a_source_host_is_warned_of_exactly_when_requests_cannot_send_it(tmp_path, host):
    """`check` refused `my_feed.bücher.example`, which requests fetched (urllib3 encodes only
    the labels beyond ASCII), and passed `bücher。example`, which failed every poll. One that
    fails is a warning, not an error: a config that loaded (its other sources polled) was
    refused after an upgrade, and the daemon no longer started."""
    from requests.exceptions import InvalidURL
    from requests.models import PreparedRequest

    url = f"https://{host}/feed.xml"
    try:
        PreparedRequest().prepare_url(url, None)
        sendable = True
    except InvalidURL:
        sendable = False
    settings = load(tmp_path, GOOD.replace("https://example.com/feed.xml", url, 1))
    assert url in [src.url for src in settings.sources]
    assert (settings.warnings == ()) is sendable, settings.warnings


def test_a_host_no_request_reaches_is_a_warning_naming_the_fix(tmp_path):
    text = GOOD.replace("https://example.com/feed.xml", "https://☃.example/feed.xml", 1).replace(
        "https://example.com/shared.xml", f"https://{'n' * 64}.example.com/shared.xml", 1
    )
    settings = load(tmp_path, text)
    assert settings.warnings == (
        "12: categories.0.sources.0.url: the host '☃.example' cannot be sent in a request (IDNA 2008: "
        "Codepoint U+2603 at position 1 of '☃' not allowed): write the host as 'xn--n3h.example' (punycode), "
        "as browsers send it; every poll of it fails",
        f"15: categories.0.sources.1.url: the host '{'n' * 64}.example.com' has a part longer than 63 characters, "
        "which no domain name has; every poll of it fails",
    )
    hub = load(
        tmp_path,
        GOOD.replace(
            "  url: https://news.example.com\n",
            "  url: https://news.example.com\n  websub_hub: https://☃.example/hub\n",
            1,
        ),
    )
    assert [w.split(": ", 2)[1:] for w in hub.warnings] == [
        ["site.websub_hub", "the host '☃.example' cannot be sent in a request (IDNA 2008: Codepoint U+2603 at "
         "position 1 of '☃' not allowed): write the host as 'xn--n3h.example' (punycode), as browsers send it; "
         "every ping of it fails"]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("host", "effect"),
    [
        ("-feeds.example.com", "its URL is left out of the published feeds"),
        ("feeds.-example.com", "a resolver may refuse it"),
    ],
)
def test_a_host_part_beginning_with_a_hyphen_is_a_warning_not_an_error(tmp_path, host, effect):
    """A label beginning with '-' is no host name (RFC 1123), but a hosts file or a company's
    DNS may give one, and such a source was fetched: refusing it refused a config that polled,
    and the daemon no longer started after an upgrade. `check` says it, and loads it."""
    url = f"https://{host}/feed.xml"
    settings = load(tmp_path, GOOD.replace("https://example.com/feed.xml", url, 1))
    assert url in [src.url for src in settings.sources]
    assert settings.warnings == (
        f"12: categories.0.sources.0.url: a part of the host {host!r} begins with '-', which no host name does "
        f"(RFC 1123): it is fetched as written, but {effect}",
    )
    assert load(tmp_path, GOOD.replace("https://example.com/", "https://feeds-x.example.com/")).warnings == ()


PAST_FLOAT = "1" + "0" * 400  # seconds no float holds: an int overflows, a string is inf


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  language: zh-CN\n", "  language: zh-CN\n  colour: blue\n", "5: site.colour: unknown key"),
        ("  timezone: Asia/Shanghai\n", "  timezone: Mars/Olympus\n", "5: site.timezone: unknown time zone"),
        (
            "  timezone: Asia/Shanghai\n",
            "  timezone: asia/shanghai\n",
            "5: site.timezone: unknown time zone: 'asia/shanghai' (did you mean 'Asia/Shanghai'?)",
        ),
        (
            "  timezone: Asia/Shanghai\n",
            "  timezone: +08:00\n",
            "5: site.timezone: unknown time zone: '+08:00' (an offset",
        ),
        ("  url: https://news.example.com\n", "  url: news.example.com\n", "3: site.url: not an absolute http(s) URL"),
        ("  interval: 30m\n", "  interval: 5 minutes\n", "7: defaults.interval: not a duration"),
        ("        interval: 1h\n", "        interval: often\n", "14: categories.0.sources.0.interval: not a duration"),
        ("        interval: 1h\n", "        interval: .nan\n", "14: categories.0.sources.0.interval: not a duration"),
        ("  interval: 30m\n", "  interval: 30m\n  timeout: .inf\n", "8: defaults.timeout: not a duration"),
        (
            "  interval: 30m\n",
            "  interval: 30m\n  timeout: 1.0e+300\n",
            "8: defaults.timeout: a duration must be at most",
        ),
        ("  interval: 30m\n", f"  interval: 30m\n  timeout: {PAST_FLOAT}\n", "8: defaults.timeout: not a duration"),
        ("  interval: 30m\n", f"  interval: 30m\n  timeout: {PAST_FLOAT}s\n", "8: defaults.timeout: not a duration"),
        (
            "      - url: https://example.com/feed.xml\n",
            "      - url: ftp://example.com/feed.xml\n",
            "12: categories.0.sources.0.url: not an absolute http(s) URL",
        ),
        (
            "      - url: https://example.com/feed.xml\n",
            "      - url: https://exmaple .com/feed.xml\n",
            "12: categories.0.sources.0.url: not a host name: 'exmaple .com'",
        ),
        (
            "      - url: https://example.com/feed.xml\n",
            "      - url: https://example.com:99999/feed.xml\n",
            "12: categories.0.sources.0.url: the port of example.com is not a number from 1 to 65535",
        ),
        (
            "      - url: https://example.com/feed.xml\n",
            "      - url: https://example.com:8o8o/feed.xml\n",
            "12: categories.0.sources.0.url: the port of example.com is not a number from 1 to 65535",
        ),
        ("  url: https://news.example.com\n", "  url: https://:443/\n", "3: site.url: no host name"),
        ("  url: https://news.example.com\n", "  url: https://news\u00a0example.com\n", "3: site.url: not a host"),
        ("  url: https://news.example.com\n", "  url: https://.com/\n", "3: site.url: not a host name"),
        ("  url: https://news.example.com\n", "  url: https://a:b/c@news.example.com\n", "3: site.url: a / ? #"),
        ("  url: https://news.example.com\n", "  url: https://u[x:p@news.example.com\n", "3: site.url: not a valid"),
        (
            "  url: https://news.example.com\n",
            "  url: https://n.example/news?x=1\n",
            "3: site.url: the site's URL cannot",
        ),
        (
            "  url: https://news.example.com\n",
            "  url: https://n.example/news#top\n",
            "3: site.url: the site's URL cannot",
        ),
        (
            "  url: https://news.example.com\n",
            "  url: https://n.example/?\n",
            "3: site.url: the site's URL cannot have",
        ),
        (
            "  url: https://news.example.com\n",
            "  url: https://me:pw@n.example/\n",
            "3: site.url: the site's URL cannot",
        ),
        (
            "  - name: Tech News\n",
            "  - name: Tech News\n    slug: " + "t" * (SLUG_MAX + 1) + "\n",
            "17: categories.1.slug: slug longer",
        ),
        ("  language: zh-CN\n", "  language: x\n", "4: site.language: not a language tag such as en"),
        ("  language: zh-CN\n", "  language: chinese\n", "4: site.language: not a language tag such as en"),
        ("  title: 财经新闻\n", "", "1: site.title: required key is missing"),
        ("    tags: [张掖日报新闻]\n", "    tags: 7\n", "10: categories.0.tags:"),
        ("  - name: Tech News\n", "  - name: Tech News\n    sluggish: yes\n", "17: categories.1.sluggish: unknown key"),
    ],
)
def test_each_mistake_names_key_path_and_line(tmp_path, old, new, expected):
    assert old in GOOD
    errors = errors_of(tmp_path, GOOD.replace(old, new, 1))
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize(("written", "char", "at"), [("a\u200b.xml", "200B", 22), ("news\u00a0feed", "00A0", 25)])
def test_an_invisible_character_in_a_url_is_an_error_naming_it(tmp_path, written, char, at):
    """A URL copied from a web page or a document with a zero-width or no-break space in its
    path passed `check`: sent percent-encoded, it was a 404 at every poll, for a path that
    looks right in every editor."""
    text = GOOD.replace("https://example.com/feed.xml", f"https://example.com/{written}", 1)
    assert errors_of(tmp_path, text) == [
        f"12: categories.0.sources.0.url: holds an invisible character, U+{char}, at character {at} "
        "(copied with the URL from a page or document): type that part again"
    ]
    assert load(tmp_path, GOOD.replace("/feed.xml", "/中文 feed.xml", 1)).sources  # a space, CJK: sent encoded


@pytest.mark.parametrize(
    "written",
    [
        "persian/\u0631\u0633\u0627\u0646\u0647\u200c\u0647\u0627/rss.xml",  # رسانه‌ها: ZWNJ inside a Persian word
        "tag/\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645/feed/",  # می‌خواهم, a WordPress tag's feed
        "ml/\u0d15\u0d47\u0d30\u0d33\u200d\u0d02/feed",  # ZWJ in Malayalam
    ],
)
def test_a_joiner_inside_a_word_of_a_url_is_spelling_not_an_invisible_character(tmp_path, written):
    """Persian writes a zero-width non-joiner inside words, and so do its tags' feed URLs;
    since the invisible-character check such a source was refused ('type that part again',
    which only types it again). Between two letters it loads; a stray one is still refused."""
    url = f"https://example.com/{written}"
    s = load(tmp_path, GOOD.replace("https://example.com/feed.xml", url, 1))
    assert url in [src.url for src in s.sources]
    stray = GOOD.replace("https://example.com/feed.xml", "https://example.com/feed\u200c.xml", 1)
    error = errors_of(tmp_path, stray)[0]
    assert error.startswith("12: categories.0.sources.0.url: holds an invisible character, U+200C")


def test_one_feed_spelled_two_ways_is_warned_of(tmp_path):
    """`HTTP://Example.com:80/f#top` is the request `http://example.com/f` makes: listed both
    ways it was polled, and its posts stored, twice without a word. IDN and [IPv6] hosts pass."""
    text = GOOD.replace(
        "      - url: https://example.com/shared.xml\n",
        "      - url: https://example.com/shared.xml\n      - url: HTTPS://Example.COM:443/shared.xml#top\n"
        "      - url: https://example.com/shared.xml?page=2\n      - url: http://例子.测试/f\n"
        "      - url: http://[::1]:8080/f\n",
        1,
    )
    settings = load(tmp_path, text)
    line = text.splitlines().index("      - url: HTTPS://Example.COM:443/shared.xml#top") + 1
    assert settings.warnings == (
        f"{line}: categories.0.sources.2: the same feed as line {line - 1}, spelled otherwise (letter case of the "
        "scheme or host, a default port, an empty path, a #fragment, percent-encoding or an international host "
        "name): it would be polled and its posts stored twice; write the URL as there",
    )
    assert len(settings.sources) == 6  # a warning, not an error: such a config loaded before
    # a path percent-encoded (as a browser copies it), a host in IDNA: the same requests
    both = text.replace(
        "      - url: http://[::1]:8080/f\n",
        "      - url: http://[::1]:8080/f\n      - url: http://xn--fsqu00a.xn--0zwm56d/f\n"
        "      - url: https://example.com/%E4%B8%AD%e6%96%87/feed\n      - url: https://example.com/中文/feed\n",
    )
    warned = [w.split(": ")[1] for w in load(tmp_path, both).warnings]
    assert warned == ["categories.0.sources.2", "categories.0.sources.6", "categories.0.sources.8"], warned
    off = text.replace("HTTPS://Example.COM:443/shared.xml#top\n", "HTTPS://Example.COM:443/shared.xml#top\n"
                       "        enabled: false\n")  # fmt: skip
    assert load(tmp_path, off).warnings == ()  # not polled twice: one of them is not polled at all


def test_an_empty_sources_or_categories_key_is_an_empty_list(tmp_path):
    """Every source (or category) commented out leaves the key with nothing under it, which
    YAML reads as null: the same as leaving the key out, not `Input should be a valid list`."""
    text = GOOD.replace(
        "      - url: https://example.com/shared.xml\n", "      # - url: https://example.com/shared.xml\n"
    )
    settings = load(tmp_path, text)
    assert [(c.slug, c.source_keys) for c in settings.categories][1] == ("tech-news", ())
    head = GOOD.split("categories:")[0]
    assert load(tmp_path, head + "categories:\n  # - name: Off\n").categories == ()


def test_duplicate_slugs_are_rejected(tmp_path):
    text = GOOD.replace("  - name: Tech News\n", "  - name: Other\n    slug: zhangyeribao\n")
    errors = errors_of(tmp_path, text)
    assert any("duplicate slug 'zhangyeribao'" in e and e.startswith("16: categories.1") for e in errors), errors


def test_every_duplicate_slug_is_reported_at_once_in_file_order(tmp_path):
    """Three categories clashing with the first: three errors in one run, each at its own
    line, among the other mistakes of the file (here a bad time zone, and a source URL)."""
    extra = "".join(f"  - name: Copy {n}\n    slug: zhangyeribao\n" for n in range(3))
    text = (GOOD + extra).replace("  timezone: Asia/Shanghai\n", "  timezone: Mars/Base\n")
    errors = errors_of(tmp_path, text)
    assert [e.split(": ")[:2] for e in errors] == [
        ["5", "site.timezone"],
        ["19", "categories.2"],
        ["21", "categories.3"],
        ["23", "categories.4"],
    ], errors
    assert all("duplicate slug 'zhangyeribao' (also categories.0)" in e for e in errors[1:]), errors
    valid = errors_of(tmp_path, GOOD + extra)  # and with nothing else wrong
    assert [e.split(":")[0] for e in valid] == ["19", "21", "23"], valid


MERGED = """\
site:
  title: T
  url: https://t.example/
categories:
  - name: A
    sources:
      - url: https://a.example/1.xml
        headers: &h {X-A: "1"}
        interval: &i 1h
      - <<: {headers: *h, interval: *i}
        url: https://a.example/2.xml
        interval: 2h
"""


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "python"])
def test_a_yaml_merge_key_may_be_overridden_beside_it(tmp_path, monkeypatch, fast):
    """`<<: {…, interval: *i}` then `interval: 2h`, YAML's way to take settings and change one,
    was refused as `interval: duplicate key` (libyaml's loader merges into the node before the
    keys were looked at), once per alias of a repeated node."""
    if not fast:
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    s = load(tmp_path, MERGED)
    assert [(src.interval, dict(src.headers)) for src in s.sources] == [(3600, {"X-A": "1"}), (7200, {"X-A": "1"})]
    twice = MERGED + "        interval: 3h\n"
    assert errors_of(tmp_path, twice) == ["13: categories.0.sources.1.interval: duplicate key"]


def test_duplicate_keys_and_broken_yaml(tmp_path):
    assert errors_of(tmp_path, GOOD.replace("  language: zh-CN\n", "  language: zh-CN\n  language: en\n")) == [
        "5: site.language: duplicate key"
    ]
    errors = errors_of(tmp_path, GOOD.replace("    tags: [张掖日报新闻]\n", "    tags: [张掖日报新闻\n"))
    assert "invalid YAML" in errors[0] and errors[0][0].isdigit()


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "python"])
@pytest.mark.parametrize("key", ["[a]: x", "? {a: 1}\n  : x"])
def test_a_key_in_brackets_is_an_error_at_its_line_not_a_crash(tmp_path, monkeypatch, fast, key):
    """`[a]: x` (a flow list as a key) made the duplicate-key check raise `TypeError: unhashable
    type: 'list'`: `check` printed a traceback and exited 1, and the daemon died on the reload."""
    if not fast:
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    errors = errors_of(tmp_path, GOOD.replace("  language: zh-CN\n", f"  {key}\n  language: zh-CN\n"))
    assert len(errors) == 1 and errors[0].startswith("4: invalid YAML: found unhashable key"), errors
    assert errors[0].endswith("a key in [brackets] or {braces}, or after `? `: a key is plain text (`name:`)")


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # a regression fails, not the machine


@pytest.mark.parametrize("where", ["top", "tags"])
def test_aliases_repeating_values_a_billion_times_are_refused_at_once_with_their_line(tmp_path, where):
    """Ten anchors, each an alias of the one before ten times over ("billion laughs", 1 KB):
    `check` grew past 4 GB and ran for minutes, and the daemon did the same at a reload,
    walking every expansion. Refused in a moment at the line of the value holding the aliases;
    ordinary aliases and merge keys still load (above)."""
    head = "site:\n  title: T\n  url: https://t.example/\n"
    if where == "top":
        text = head + "x0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
        text += "".join(f"x{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
        expected = "13: x9: its aliases (*name) repeat what they stand for into 12,345,679,027 values"
    else:
        text = head + "categories:\n  - name: A\n    tags: &t0 [a,a,a,a,a,a,a,a,a,a]\n"
        for i in range(1, 9):
            text += f"  - name: B{i}\n    tags: &t{i} [{','.join([f'*t{i - 1}'] * 10)}]\n"
        expected = "22: categories.8.tags: its aliases (*name) repeat what they stand for into 1,234,567,944 values"
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(cfg), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith(f"{cfg}:{expected}, more than a config holds (at most 1,000,000)"), result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("  x: *s\n", "4: site.x"),  # site: &s holding itself
        ("categories:\n  - &c\n    name: A\n    tags: [a, *c]\n", "7: categories.0.tags.1"),
    ],
)
def test_an_alias_inside_the_value_it_names_is_an_error_not_a_crash(tmp_path, tail, expected):
    """YAML lets an alias stand inside the value it names (a merge or list pasted into its own
    anchor): `check` died of a RecursionError with a 1,000-line traceback, and the daemon with
    it at a reload. Now one error at the alias's line."""
    text = "site: &s\n  title: T\n  url: https://t.example/\n" + tail
    assert errors_of(tmp_path, text) == [
        f"{expected}: an alias (*name) inside the value it stands for repeats it without end: remove it"
    ]


def test_many_sources_sharing_a_list_by_alias_load(tmp_path):
    """4,000 sources each `exclude: *spam`, one 100-rule list written once (1.2 million
    values expanded, 76 times what the file writes): loaded before the alias-bomb guard, then
    refused as a billion laughs ('more than a config holds'). It loads again."""
    text = "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: A\n    sources:\n"
    text += "      - url: https://s0.example/feed.xml\n        exclude: &spam\n"
    text += "".join(f'          - title: "(?i)spamword{j}"\n' for j in range(100))
    text += "".join(f"      - url: https://s{i}.example/feed.xml\n        exclude: *spam\n" for i in range(1, 4000))
    s = load(tmp_path, text)
    assert len(s.sources) == 4000
    assert len(s.sources[-1].filters[0].levels[0].exclude) == 100


def test_error_message_names_the_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, GOOD.replace("  language: zh-CN\n", "  language: zh-CN\n  colour: blue\n"))
    assert str(info.value) == f"{tmp_path / 'feeds.yaml'}:5: site.colour: unknown key"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)
    assert config_path(None) == Path("feeds.yaml")
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(tmp_path / "env.yaml"))
    assert config_path(None) == tmp_path / "env.yaml"
    assert config_path("explicit.yaml") == Path("explicit.yaml")


def test_a_source_listed_twice_with_other_settings_is_a_warning_naming_both_lines(tmp_path):
    from .conftest import run_cli

    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: t\n  url: https://n.example/\ncategories:\n"
        "  - name: A\n    sources:\n"
        "      - url: https://example.com/f.xml\n        name: One\n        interval: 1h\n"  # lines 7-9
        "  - name: B\n    sources:\n"
        "      - url: https://example.com/f.xml\n        interval: 2h\n"  # lines 12-13
        "        include:\n          - title: x\n",  # per listing: no warning
        encoding="utf-8",
    )
    settings = load_config(cfg)
    assert settings.warnings == (
        "13: categories.1.sources.0.interval: interval differs from this source's first listing (line 7), "
        "whose settings apply: a source is polled once, with one set of settings; "
        "only include/exclude may differ per category",
    )  # not its name: it sets none, and a listing that only gives the URL asks for nothing
    plain = cfg.read_text(encoding="utf-8").replace("        interval: 2h\n", "")
    cfg.with_name("plain.yaml").write_text(plain, encoding="utf-8")
    assert load_config(cfg.with_name("plain.yaml")).warnings == ()
    assert settings.sources[0].interval == 3600 and settings.sources[0].name == "One"
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 0 and "ok: 2 categories, 1 source" in result.stdout
    assert f"warning: {cfg}:13: categories.1.sources.0.interval: interval differs" in result.stderr
    # under --log-format json, a log record like every other line of stderr, not a bare line
    logged = run_cli("--config", str(cfg), "--log-format", "json", "check")
    assert logged.returncode == 0
    records = [json.loads(line) for line in logged.stderr.splitlines()]  # every line is JSON
    assert [r["level"] for r in records] == ["warning"] and "13: categories.1.sources.0.interval" in records[0][
        "message"
    ]
    assert load_config(ROOT / "feeds.yaml").warnings == ()


def test_a_source_twice_in_one_category_warns_and_inherited_values_are_no_conflict(tmp_path):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: t\n  url: https://n.example/\ndefaults:\n  interval: 1h\ncategories:\n"
        "  - name: A\n    sources:\n"
        "      - url: https://example.com/f.xml\n        include: [{title: python}]\n"  # lines 9-10
        "      - url: https://example.com/f.xml\n        include: [{title: rust}]\n"  # 11-12: ignored
        "  - name: B\n    sources:\n"
        "      - url: https://example.com/f.xml\n        interval: 60m\n"  # 15-16: 1h, as inherited
        "      - url: https://example.com/f.xml\n",  # 17: again in B, whose first listing is line 15
        encoding="utf-8",
    )
    settings = load_config(cfg)
    assert settings.warnings == (
        "11: categories.0.sources.1: this source is listed earlier in this category (line 9): "
        "this listing, its include/exclude rules too, is ignored; merge the two",
        "17: categories.1.sources.1: this source is listed earlier in this category (line 15): "
        "this listing, its include/exclude rules too, is ignored; merge the two",
    )


def test_invalid_yaml_names_the_line_of_the_mistake(tmp_path):
    """An unclosed quote was reported at the line after the end of the file ('found unexpected
    end of stream'), an unclosed bracket at the next key: the line it opened on was not named."""
    quote = errors_of(tmp_path, GOOD.replace("  title: 财经新闻\n", '  title: "财经新闻\n'))
    assert quote == ["2: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 2)"]
    bracket = errors_of(tmp_path, GOOD.replace("    tags: [张掖日报新闻]\n", "    tags: [张掖日报新闻\n"))
    line = GOOD.splitlines().index("    tags: [张掖日报新闻]") + 1
    assert bracket[0].startswith(f"{line + 1}: invalid YAML: ")
    assert bracket[0].endswith(f"(while parsing a flow sequence at line {line})")
    tab = errors_of(tmp_path, GOOD.replace("    tags: [张掖日报新闻]\n", "\ttags: [张掖日报新闻]\n"))
    assert tab[0].startswith(f"{line}: invalid YAML: ") and "indent with spaces" in tab[0]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  title: 财经新闻\n",
            "  title： 财经新闻\n",
            "2: invalid YAML: the key `title` is followed by a full-width colon",
        ),
        (
            "  url: https://news",
            "  url：https://news",
            "3: invalid YAML: the key `url` is followed by a full-width colon",
        ),
        ("  - name: Tech News\n", "  - name： Tech News\n", "16: invalid YAML: the key `name` is followed by a"),
        ("        interval: 1h\n", "        interval： 1h\n", "14: invalid YAML: the key `interval` is followed"),
        ("categories:\n", "categories：\n", "8: invalid YAML: the key `categories` is followed by a full-width"),
        (
            "      - url: https://example.com/feed",
            "      - url： https://example.com/feed",
            "12: invalid YAML: the key `url`",
        ),
        ("  title: 财经新闻\n", "  title:\u3000财经新闻\n", "2: invalid YAML: the key `title` has a full-width space"),
        (
            "      - url: https://example.com/shared.xml\n  - name: Tech",
            "      - url： https://example.com/shared.xml\n  - name: Tech",
            "15: categories.0.sources.1: should be a mapping (`- url: https://…`), not str 'url： https://example.com/"
            "shared.xml'; write the key with an ASCII colon and space (`url: …`), not a full-width one",
        ),
    ],
)
def test_a_key_typed_with_a_full_width_colon_is_named_at_its_own_line(tmp_path, old, new, expected):
    """`title： 财经新闻`, typed with a Chinese input method on, is text, not a key: the parser
    complained about the next line ("mapping values are not allowed here; check this line's
    indentation", "could not find expected ':'"), where nothing is wrong."""
    assert old in GOOD
    errors = errors_of(tmp_path, GOOD.replace(old, new, 1))
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    assert load(tmp_path, GOOD.replace("  title: 财经新闻\n", "  title: 新闻：每日\n")).site.title == "新闻：每日"


@pytest.mark.parametrize(
    ("title", "hint"),
    [
        ("News: daily", 'a value with ": " in it: put the whole value in quotes'),
        ('"C:\\[x]"', "use single quotes"),
        ("@handle", "a value starting with @, ` or %: put the whole value in quotes"),
        ("*stars*", "a value starting with * or &: put the whole value in quotes"),
        ("*x", "a value starting with * or &: put the whole value in quotes"),
        ("!important", "a value starting with !: put the whole value in quotes"),
        ("'it's'", "an apostrophe inside single quotes is written twice ('it''s')"),
        ("[news] daily", "text after a closing quote or bracket: put the whole value in quotes"),
    ],
)
def test_yaml_that_needed_quotes_says_so(tmp_path, title, hint):
    """The parser's own words ("mapping values are not allowed here", "found character '@'
    that cannot start any token") do not say that the value wanted quotes."""
    errors = errors_of(tmp_path, GOOD.replace("  title: 财经新闻\n", f"  title: {title}\n"))
    assert len(errors) == 1 and errors[0].startswith("2: invalid YAML: ") and hint in errors[0], errors


def test_a_mis_indented_key_says_to_check_the_indentation(tmp_path):
    """`expected <block end>, but found '?'` was all a mis-indented line got; a key indented
    deeper than its siblings, or a continuation line less deep, was told to use quotes."""
    for text in (
        GOOD.replace("  url: https://news.example.com\n", " url: https://news.example.com\n"),
        GOOD.replace("    sources:\n", "  sources:\n", 1),
        GOOD.replace("        name: 张掖日报\n", "         name: 张掖日报\n"),  # deeper than `url:`
        GOOD.replace("  - name: Tech News\n", "  - name: Tech News\n     slug: tech\n"),
        GOOD.replace("  title: 财经新闻\n", "  title: 财经\n 新闻\n"),  # a continuation, less deep
    ):
        errors = errors_of(tmp_path, text)
        assert len(errors) == 1 and errors[0].endswith(
            "check this line's indentation: the keys of one mapping start in one column"
        ), errors
        assert "put the whole value in quotes" not in errors[0]


def test_yaml_booleans_numbers_and_empty_values_say_what_yaml_made_of_them(tmp_path):
    """`title: Off`, `tags: [on, 1.0]`: "Input should be a valid string" did not say that YAML
    had read a boolean or a number; a bare `-` said "not NoneType None"."""
    text = (
        GOOD.replace("  title: 财经新闻\n", "  title: Off\n")
        .replace("    tags: [张掖日报新闻]\n", "    tags: [on, 1.0, 2024]\n")
        .replace("    sources:\n", "    sources:\n      -\n      - url:\n", 1)
        .replace("  - name: Tech News\n", "  - name: Tech News\n    tags: [~]\n")
    )
    errors = errors_of(tmp_path, text)
    tags = GOOD.splitlines().index("    tags: [张掖日报新闻]") + 1
    sources = GOOD.splitlines().index("    sources:") + 1
    empty_tag = text.splitlines().index("    tags: [~]") + 1
    assert errors == [
        "2: site.title: YAML reads this value as the boolean false, not text: put it in quotes",
        f"{tags}: categories.0.tags.0: YAML reads this value as the boolean true, not text: put it in quotes",
        f"{tags}: categories.0.tags.1: YAML reads this value as the number 1.0, not text: put it in quotes",
        f"{tags}: categories.0.tags.2: YAML reads this value as the number 2024, not text: put it in quotes",
        f"{sources + 1}: categories.0.sources.0: is empty: write `- url: https://…` there, or remove it",
        f"{sources + 2}: categories.0.sources.1.url: has no value",
        f"{empty_tag}: categories.1.tags.0: is empty: write a value there, or remove it",
    ], errors
    secret = GOOD.replace(  # a numeric password or API key is not shown, as no value under auth/headers is
        "        interval: 1h\n",
        "        interval: 1h\n        auth: {username: bob, password: 83920571}\n"
        "        headers: {X-Api-Key: 5550123456789}\n",
    )
    hidden = errors_of(tmp_path, secret)
    assert [e.split(": ", 2)[1:] for e in hidden] == [
        ["categories.0.sources.0.auth.password", "YAML reads this value as a number, not text: put it in quotes"],
        ["categories.0.sources.0.headers.X-Api-Key", "YAML reads this value as a number, not text: put it in quotes"],
    ], hidden
    assert not any("83920571" in e or "5550123456789" in e for e in hidden)
    dated = errors_of(tmp_path, GOOD.replace("  - name: Tech News\n", "  - name: 2024-05-01\n"))
    assert dated[0].endswith("categories.1.name: YAML reads this value as a date, not text: put it in quotes")
    quoted = text.replace("title: Off", 'title: "Off"').replace("[on, 1.0, 2024]", "['on', '1.0', '2024']")
    assert errors_of(tmp_path, quoted) == errors[4:]  # as the hint says: quoted, they are text
    assert errors_of(tmp_path, "site:\ncategories: []\n")[0] == "1: site: is empty: write `key: value` lines there"


def test_a_key_yaml_reads_as_no_text_is_named_at_its_own_line(tmp_path):
    """`yes: x` under `site:` said `1: site.1: Keys should be strings`: the line of `site:`, a
    key path with a key nobody wrote, and pydantic's words; `~:` said `site.None`."""
    for key, what in (
        ("yes", "the boolean true"),
        ("1", "the number 1"),
        ("~", "null (nothing)"),
        ("2024-05-01", "a date"),
    ):
        errors = errors_of(tmp_path, GOOD.replace("  language: zh-CN\n", f"  language: zh-CN\n  {key}: x\n"))
        assert errors == [f"5: site: a key YAML reads as {what}, not text: put it in quotes (or remove it)"], errors
    headers = GOOD.replace("        interval: 1h\n", "        interval: 1h\n        headers:\n          1: x\n")
    assert errors_of(tmp_path, headers) == [
        "16: categories.0.sources.0.headers: a key YAML reads as a number, not text: put it in quotes (or remove it)"
    ]


def test_a_misspelt_key_and_a_bare_source_url_say_what_was_meant(tmp_path):
    """`intervall:`, `default:`, `source:`; `- https://…` under `sources:` said "Input should be
    a valid dictionary or instance of SourceConfig", naming a class of the code."""
    text = GOOD.replace("defaults:", "default:").replace("        interval: 1h\n", "        intervall: 1h\n")
    shared = "      - url: https://example.com/shared.xml\n  - name: T"
    bare = text.replace(shared, "      - https://x.example/\n  - name: T")
    errors = errors_of(tmp_path, bare)
    assert errors == [
        "6: default: unknown key (did you mean `defaults`?)",
        "14: categories.0.sources.0.intervall: unknown key (did you mean `interval`?)",
        "15: categories.0.sources.1: should be a mapping (`- url: https://…`), not str 'https://x.example/'",
    ]
    colour = errors_of(tmp_path, GOOD.replace("  language: zh-CN\n", "  colour: blue\n"))
    assert colour == ["4: site.colour: unknown key"]  # nothing close: no guess


def test_a_config_saved_in_another_encoding_names_the_line(tmp_path):
    """feeds.yaml saved as GBK by an editor: "cannot read: 'utf-8' codec can't decode byte
    0xd5 in position 26: invalid continuation byte", a byte offset no editor shows."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_bytes(GOOD.encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert str(info.value) == f"{cfg}:2: not UTF-8 text (byte 0xb2); save the file as UTF-8"


def test_a_single_value_where_a_list_is_meant_says_so(tmp_path):
    """`sources: https://…` (one feed, no `- url:`) said "Input should be a valid list"."""
    text = GOOD.replace(
        "    sources:\n      - url: https://example.com/shared.xml\n", "    sources: https://example.com/x.xml\n"
    )
    assert errors_of(tmp_path, text) == [
        "17: categories.1.sources: should be a list (lines starting with `- `), not str 'https://example.com/x.xml'"
    ]


def test_a_wrong_type_under_auth_does_not_show_the_password(tmp_path):
    """`auth: alice:hunter2` (a mapping was meant) printed `not str 'alice:hunter2'`, from
    `check` and in the daemon's log of a rejected reload: a password where logs are read."""
    text = GOOD.replace("        interval: 1h\n", '        interval: 1h\n        auth: "alice:hunter2"\n')
    text = text.replace("defaults:\n", "defaults:\n  auth: [bob, s3cret]\n")
    errors = errors_of(tmp_path, text)
    assert errors == [
        "7: defaults.auth: should be a mapping (`key: value` lines), not list",
        "16: categories.0.sources.0.auth: should be a mapping (`key: value` lines), not str",
    ]
    assert not any("hunter2" in e or "s3cret" in e for e in errors)


def test_a_missing_templates_folder_is_reported_with_the_other_mistakes(tmp_path):
    """It was checked last, once everything else was valid: a second round of `check`."""
    text = GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  templates: mine\n")
    alone = errors_of(tmp_path, text)
    assert alone == [f"6: site.templates: not a folder: {tmp_path / 'mine'}"]
    with_others = errors_of(tmp_path, text.replace("  interval: 30m\n", "  interval: often\n"))
    assert len(with_others) == 2 and with_others[0] == alone[0], with_others
    assert with_others[1].startswith("8: defaults.interval: not a duration: 'often'")
    (tmp_path / "mine").mkdir()
    assert load(tmp_path, text).templates_dir == tmp_path / "mine"


@pytest.mark.parametrize("tag", ["en", "zh-Hans-CN", "yue-HK", "x-klingon", "i-klingon", "de-CH-1996"])
def test_language_tags_with_an_iso_639_code_first_are_kept(tmp_path, tag):
    assert load(tmp_path, GOOD.replace("  language: zh-CN\n", f"  language: {tag}\n")).site.language == tag


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("HTTP://Example.COM:80/f#top", "http://example.com/f", True),
        ("https://example.com:443", "https://example.com/", True),
        ("http://[::1]:80?q=1", "http://[::1]/?q=1", True),
        ("http://u:p@Ex.com:0080/x?y#z", "http://u:p@ex.com/x?y", True),
        ("http://example.com/F", "http://example.com/f", False),  # paths are case-sensitive
        ("http://example.com/f?a", "http://example.com/f", False),
        ("http://example.com:8080/f", "http://example.com/f", False),
        ("https://example.com/f", "http://example.com/f", False),
    ],
)
def test_urls_are_the_same_request_exactly_when_a_server_could_not_tell_them_apart(a, b, same):
    from aggregator.config import _as_requested

    assert (_as_requested(a) == _as_requested(b)) is same


# -- tls_verify: a source's own TLS trust ------------------------------------------------------


def test_tls_verify_is_true_false_or_a_ca_bundle_relative_to_the_config(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "internal-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    text = GOOD.replace(
        "        interval: 1h\n", "        interval: 1h\n        tls_verify: certs/internal-ca.pem\n"
    ).replace("  interval: 30m\n", "  interval: 30m\n  tls_verify: false\n")
    s = load(tmp_path, text)
    by_key = {src.key: src.tls_verify for src in s.sources}
    assert by_key == {
        "https://example.com/feed.xml": str(tmp_path / "certs" / "internal-ca.pem"),
        "https://example.com/shared.xml": False,  # from `defaults:`
    }
    assert all(src.tls_verify is True for src in load(tmp_path, GOOD).sources)  # the default: verified
    # the text "true" or "TRUE" (quoted) and YAML's yes/no are booleans, never a file of that name
    for written, meant in (('"TRUE"', True), ("'false'", False), ("no", False), ("yes", True), ("c_rehash_dir", None)):
        if meant is None:
            (tmp_path / written).mkdir()
        one = GOOD.replace("        interval: 1h\n", f"        interval: 1h\n        tls_verify: {written}\n")
        got = {src.key: src.tls_verify for src in load(tmp_path, one).sources}["https://example.com/feed.xml"]
        assert got == (str(tmp_path / written) if meant is None else meant), written


def test_a_missing_ca_bundle_is_reported_with_its_line_and_the_other_mistakes(tmp_path):
    text = GOOD.replace("        interval: 1h\n", "        interval: 1h\n        tls_verify: certs/nowhere.pem\n")
    alone = errors_of(tmp_path, text)
    missing = f"15: categories.0.sources.0.tls_verify: no such CA bundle file or folder: {tmp_path}/certs/nowhere.pem"
    assert alone == [missing]
    with_others = errors_of(tmp_path, text.replace("  interval: 30m\n", "  interval: often\n"))
    assert len(with_others) == 2 and with_others[1] == missing, with_others
    assert with_others[0].startswith("7: defaults.interval: not a duration: 'often'")
    in_defaults = errors_of(tmp_path, GOOD.replace("  interval: 30m\n", "  interval: 30m\n  tls_verify: ca.pem\n"))
    assert in_defaults == [f"8: defaults.tls_verify: no such CA bundle file or folder: {tmp_path}/ca.pem"]


@pytest.mark.parametrize(
    ("value", "hint"), [('"no"', "to turn checking off, write false"), ("'On'", "to turn checking on, write true")]
)
def test_a_quoted_yes_or_no_as_tls_verify_says_to_write_the_boolean(tmp_path, value, hint):
    """YAML 1.1 reads bare `no` as false; quoted (or from YAML 1.2 habits) it is a file name,
    and the error said only that no such CA bundle exists."""
    errors = errors_of(
        tmp_path, GOOD.replace("        interval: 1h\n", f"        interval: 1h\n        tls_verify: {value}\n")
    )
    assert len(errors) == 1 and "no such CA bundle file or folder" in errors[0] and errors[0].endswith(f"({hint})")


@pytest.mark.parametrize(("value", "problem"), [("3", "not int 3"), ('""', "is empty"), ("[a]", "not list")])
def test_a_tls_verify_that_is_no_boolean_nor_path_is_refused(tmp_path, value, problem):
    errors = errors_of(
        tmp_path, GOOD.replace("        interval: 1h\n", f"        interval: 1h\n        tls_verify: {value}\n")
    )
    assert len(errors) == 1 and errors[0].startswith("15: categories.0.sources.0.tls_verify: "), errors
    assert problem in errors[0]


def test_a_long_category_name_gets_a_slug_short_enough_to_name_files_and_the_same_every_time(tmp_path):
    """120 CJK characters make a slug of ~500 letters in pinyin: every publish failed with
    'File name too long' after `check` said ok. Cut, it ends in a hash of the name, so two
    long names alike in their first 217 letters keep their own slugs. Published: see below."""
    name = "张掖日报新闻" * 20
    text = GOOD.replace("  - name: Tech News\n", f"  - name: {name}\n  - name: {name}了\n  - name: Tech News\n")
    slugs = [c.slug for c in load(tmp_path, text).categories]
    assert len(slugs[1]) == len(slugs[2]) == SLUG_MAX and slugs[1] != slugs[2]
    assert slugs[1].startswith("zhangyeribaoxinwen" * 10) and slugs[1][-9] == "-"
    assert slugs == [c.slug for c in load(tmp_path, text).categories]  # stable
    cut = [c.slug for c in load(tmp_path, text.replace(name, "新闻" * 40, 1)).categories][1]
    assert cut.startswith("xinwen" * 36) and len(cut) == SLUG_MAX  # 240 letters: cut as well


def test_a_category_with_a_long_name_is_published(tmp_path):
    name = "张掖日报新闻" * 20
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(f"site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: {name}\n", encoding="utf-8")
    done = run_cli("--config", str(cfg), "publish")
    assert done.returncode == 0, done.stdout + done.stderr
    slug = load_config(cfg).categories[0].slug
    assert (tmp_path / "public" / "category" / f"{slug}.atom").is_file()
    assert (tmp_path / "public" / "category" / f"{slug}.html").is_file()


@pytest.mark.parametrize(
    ("site_extra", "jekyll", "expected"),
    [
        # `output_dir: .` beside feeds.yaml: `serve` handed out /feeds.yaml and /aggregator.db
        (
            "  output_dir: .\n",
            "",
            [
                "1: site.database: {tmp}/aggregator.db is inside site.output_dir ({tmp}), which is published",
                "6: site.output_dir: {tmp} holds the config file {cfg}, which would be published",
            ],
        ),
        ("  database: public/agg.db\n", "", ["6: site.database: {tmp}/public/agg.db is inside site.output_dir"]),
        ("  output_dir: www/..\n  database: ../agg.db\n", "", ["6: site.output_dir: {tmp} holds the config file"]),
        (
            "  database: site/x.db\n",
            "jekyll:\n  dir: site\n",
            ["6: site.database: {tmp}/site/x.db is inside jekyll.dir"],
        ),
        (
            "",
            "jekyll:\n  dir: .\n",
            ["1: site.database: {tmp}/aggregator.db is inside jekyll.dir", "20: jekyll.dir: {tmp} holds"],
        ),
    ],
)
def test_the_database_or_config_inside_a_published_folder_is_an_error(tmp_path, site_extra, jekyll, expected):
    """Both hold the sources' passwords and tokens: `check` said ok, and `serve` served them."""
    text = GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n" + site_extra) + jekyll
    errors = errors_of(tmp_path, text)
    wanted = [e.format(tmp=tmp_path, cfg=tmp_path / "feeds.yaml") for e in expected]
    assert len(errors) == len(wanted) and all(e.startswith(w) for e, w in zip(errors, wanted, strict=True)), errors
    assert "passwords and tokens" in errors[0]


@pytest.mark.parametrize(
    "site_extra",
    [
        "  output_dir: www\n  database: data/agg.db\n",  # the parent of nothing secret
        "  output_dir: ../public\n",  # beside the config's folder
        "  output_dir: public\n  database: public.db\n",  # a name that only starts like the folder's
    ],
)
def test_published_folders_beside_the_config_and_database_still_load(tmp_path, site_extra):
    text = GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n" + site_extra)
    text += "jekyll:\n  dir: jekyll\n"
    assert load(tmp_path, text).output_dir.name in ("www", "public")


def test_jekyll_builds_no_folder_named_with_an_underscore_so_the_config_may_live_there(tmp_path):
    """Jekyll publishes nothing under `_…` or `.…` names: a config kept in the Jekyll site's
    `_aggregator/` (an upgrade refused it, with no way out) loads; one at its top does not."""
    home = tmp_path / "site" / "_aggregator"
    home.mkdir(parents=True)
    text = GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  output_dir: ../../public\n")
    assert load(home, text + "jekyll:\n  dir: ..\n").jekyll_dir == tmp_path / "site"
    text = text.replace("  output_dir: ../../public\n", "  output_dir: ../../public\n  database: ../.data/x.db\n")
    assert load(home, text + "jekyll:\n  dir: ..\n").database == tmp_path / "site" / ".data" / "x.db"
    (error,) = errors_of(tmp_path / "site", text.replace("../", "") + "jekyll:\n  dir: .\n")
    assert "jekyll.dir" in error and "keep it out of the Jekyll site, or in a folder of it named _" in error, error
    # but `_site`, which Jekyll builds (and empties) and is what gets deployed
    site = tmp_path / "site" / "_site"
    site.mkdir()
    text = GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  output_dir: ../../public\n")
    assert len(errors_of(site, text + "jekyll:\n  dir: ..\n")) == 2  # the config and the database
    # the output folder has no such rule: everything in it is served
    output = GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  output_dir: ..\n")
    assert "site.output_dir" in " ".join(errors_of(home, output))


@pytest.mark.parametrize(("written", "example"), [('""', "aggregator.db"), ("data/", "data/aggregator.db")])
def test_a_database_that_names_a_folder_is_an_error_at_its_line(tmp_path, written, example):
    """`database: /var/lib/aggregator/` (the folder meant for it) or `database: ""`: `check`
    said ok, and every command that opens the database failed ("unable to open database file")."""
    (tmp_path / "data").mkdir()
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(GOOD.replace("  timezone: Asia/Shanghai\n", f"  timezone: Asia/Shanghai\n  database: {written}\n"))
    folder = tmp_path / written.strip('"/')
    expected = f"6: site.database: {folder} is a folder: give the database file's path (e.g. {example})"
    assert errors_of(tmp_path, cfg.read_text(encoding="utf-8")) == [expected]
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2 and result.stderr == f"{cfg}:{expected}\n", result.stderr
    assert load(
        tmp_path, GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  database: data/x.db\n")
    )


def test_a_config_inside_the_output_folder_is_named_with_the_other_mistakes(tmp_path):
    text = GOOD.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  output_dir: .\n")
    errors = errors_of(tmp_path, text.replace("  interval: 30m\n", "  interval: often\n"))
    assert [e.split(":")[1] for e in errors] == [" site.database", " site.output_dir", " defaults.interval"], errors


@pytest.mark.parametrize(
    ("value", "days"),
    # `1e3`: YAML 1.1 reads it as text, and earlier versions took it as 1000 days
    [("7d", 7), ("2w", 14), ("48h", 2), ("30", 30), ("1.5", 1.5), ("' 3d '", 3), ("1e3", 1000)],
)
def test_keep_days_takes_a_duration_of_whole_days(tmp_path, value, days):
    """`keep_days: 7d`, as every other duration key is written, said `Input should be a valid
    number, unable to parse string as a number`; a bare number is still days."""
    s = load(tmp_path, GOOD.replace("  interval: 30m\n", f"  interval: 30m\n  keep_days: {value}\n"))
    assert all(src.retention.keep_days == days for src in s.sources)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("keep_days: 36h", "keep_days counts whole days: 36h is 1.5 days (write 2d, or the number 1.5)"),
        ("keep_days: 0", "should be above 0 days, not 0: leave keep_days out to keep posts however old"),
        ("keep_days: yes", "should be a number of days (30) or a duration in days (30d, 2w), not true"),
        ("keep_days: .inf", "not a number of days: inf (write e.g. 30, 30d or 2w)"),
        ("keep_days: 99999d", "should be at most 36500 days (leave keep_days out to keep posts however old)"),
        ("keep_per_source: 0", "should be at least 1, not 0 (the newest posts kept of each source; leave it out"),
        ("site.items_per_feed: 0", "should be at least 1, not 0 (the newest posts each feed lists)"),
        ("site.items_per_feed: 20000", "should be at most 10000, not 20000 (the newest posts each feed lists)"),
        ("site.posts_per_page: many", "should be a whole number, not str 'many' (posts on each page)"),
        ("site.workers: 2.5", "should be a whole number, not float 2.5 (sources polled at once)"),
    ],
)
def test_number_keys_out_of_range_say_so_in_words(tmp_path, setting, expected):
    """`keep_days: 0` and `items_per_feed: 0` gave pydantic's `Input should be greater than 0`."""
    key, _, value = setting.partition(": ")
    if key.startswith("site."):
        text, where = GOOD.replace("  language: zh-CN\n", f"  language: zh-CN\n  {key[5:]}: {value}\n"), "5: " + key
    else:
        text, where = GOOD.replace("  interval: 30m\n", f"  interval: 30m\n  {key}: {value}\n"), "8: defaults." + key
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1 and errors[0].startswith(f"{where}: {expected}"), errors


def test_request_key_compares_urls_as_the_server_sees_the_request():
    """What `fetch --source` matches by: the forms a browser, a terminal and the config write."""
    same = ["http://Bücher.example:80/中文/feed#top", "http://xn--bcher-kva.example/%e4%b8%ad%E6%96%87/feed"]
    assert request_key(same[0]) == request_key(same[1]) == "http://xn--bcher-kva.example/%E4%B8%AD%E6%96%87/feed"
    assert request_key("http://h.example/a?x=1") != request_key("http://h.example/a?x=2")
    assert request_key("not a url") == "not a url"


def test_a_user_agent_no_request_could_carry_is_refused_by_check_at_its_line(tmp_path, httpserver):
    """`user_agent: |` (a block scalar: a line break at its end) or a User-Agent in Chinese passed
    `check`, then every poll of every source failed (`request failed: the value of the User-Agent
    header holds …`), as a header in `headers:` is refused up front."""
    httpserver.expect_request("/f").respond_with_data("<rss><channel><title>t</title></channel></rss>")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: t\n  url: https://news.example/\n  user_agent: |\n    news-bot/1.0\n"
        f"categories:\n  - name: A\n    sources:\n      - url: {httpserver.url_for('/f')}\n"
        "        user_agent: 财经新闻/1.0\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"{cfg}:4: site.user_agent: the User-Agent header holds a line break (CR or LF), which a header "
        "cannot carry: 'news-bot/1.0\\n'",
        f"{cfg}:10: categories.0.sources.0.user_agent: the User-Agent header holds a character beyond Latin-1 "
        "(percent-encode it, or give it as the server expects), which a header cannot carry: '财经新闻/1.0'",
    ], result.stderr
    assert run_cli("--config", str(cfg), "fetch").returncode == 2  # not polled, to fail
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("|\n    news-bot", "news-bot").replace("财经新闻", "cjxw"))
    fetched = run_cli("--config", str(cfg), "fetch")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert httpserver.log[-1][0].headers["User-Agent"] == "cjxw/1.0"


def test_a_header_value_that_cannot_be_sent_is_refused_by_check_without_showing_it(tmp_path, monkeypatch):
    """`Authorization: "Bearer ${TOK}"` with `TOK=$'abc\\n'` passed `check`, then every poll
    failed with requests' message quoting the token, in `fetch`'s output, the log and `status`."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: t\n  url: https://news.example/\ncategories:\n  - name: A\n    sources:\n"
        "      - url: https://example.com/a.xml\n"
        '        headers: {Authorization: "Bearer ${TOK}", X-Plain: "v "}\n'
        "      - url: https://example.com/b.xml\n"
        "        headers:\n"
        '          X-Key: "${KEY}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TOK", "HDRSECRET1\n")
    monkeypatch.setenv("KEY", " HDRSECRET2")
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "HDRSECRET" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"{cfg}:8: categories.0.sources.0.headers: Authorization: the value (with ${{TOK}} filled in) "
        "holds a line break (CR or LF), which a header cannot carry",
        f"{cfg}:10: categories.0.sources.1.headers: X-Key: the value (with ${{KEY}} filled in) "
        "starts with whitespace, which a header cannot carry",
    ], result.stderr
    monkeypatch.setenv("TOK", "HDRSECRET1 ")  # trailing whitespace went out before, as ever: servers strip it
    monkeypatch.setenv("KEY", "HDRSECRET2€")  # refused by every poll (http.client sends Latin-1)
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2 and "HDRSECRET" not in result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"{cfg}:10: categories.0.sources.1.headers: X-Key: the value (with ${{KEY}} filled in) holds a character "
        "beyond Latin-1 (percent-encode it, or give it as the server expects), which a header cannot carry"
    )
    monkeypatch.setenv("KEY", "HDRSECRET2")
    assert run_cli("--config", str(cfg), "check").returncode == 0  # X-Plain "v " and TOK's space too


def test_an_error_quoting_a_value_with_a_line_breaking_character_stays_one_line(tmp_path):
    """`database: "\x1e"` (found by tests/reliability/test_fuzz.py): the error quoting the value
    was split by it into lines naming no file (Python, and log readers, end a line at U+001E)."""
    path = tmp_path / "feeds.yaml"
    path.write_text("site:\n  output_dir: ''\n  database: \"\\x1E\\u2028x\"\ncategories: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert lines and all(line.startswith(f"{path}:") for line in lines), lines
    assert any("\\x1e\\u2028x" in line for line in lines), lines


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "python-parser"])
def test_a_duration_written_like_a_clock_is_warned_of_as_base_60(tmp_path, monkeypatch, libyaml):
    """`interval: 6:00` is YAML 1.1's base-60 number 360: polled every 6 minutes where the
    writer meant 6 hours, without a word. Warned of at its line (not refused: such a config
    loaded before); `1:30:00` (h:mm:ss, read as meant) and a quoted value are not."""
    if not libyaml:
        monkeypatch.delattr("yaml.CSafeLoader")
    text = GOOD.replace("  interval: 30m\n", "  interval: 6:00\n", 1).replace(
        "        interval: 1h\n", "        interval: 1h\n        timeout: 1:30\n        max_interval: 1:30:00\n", 1
    )
    settings = load(tmp_path, text)
    lines = text.splitlines()
    assert settings.warnings == (
        f"{lines.index('  interval: 6:00') + 1}: defaults.interval: 6:00 is a base-60 number to YAML, minutes "
        "and seconds: 6m. If you meant hours and minutes, write 6h; write 6m to keep it and silence this warning",
        f"{lines.index('        timeout: 1:30') + 1}: categories.0.sources.0.timeout: 1:30 is a base-60 number to "
        "YAML, minutes and seconds: 90s. If you meant hours and minutes, write 90m; write 90s to keep it and "
        "silence this warning",
    )
    assert settings.sources[1].interval == 360  # read as it was before
    if libyaml:  # what a user running `check` sees
        cli = run_cli("--config", str(tmp_path / "feeds.yaml"), "check")
        assert cli.returncode == 0, cli.stderr
        assert "feeds.yaml:7: defaults.interval: 6:00 is a base-60 number to YAML" in cli.stderr
    assert load(tmp_path, GOOD.replace("  interval: 30m\n", "  interval: 6m\n", 1)).warnings == ()


def test_a_blank_site_title_is_refused_and_a_blank_source_name_is_no_name(tmp_path):
    """`title: ''` passed `check` and published feeds named nothing (RSS requires a channel
    title); a source's `name: '  '` named it a blank in every list instead of its feed's title."""
    text = GOOD.replace("  title: 财经新闻\n", "  title: '  '\n", 1)
    assert errors_of(tmp_path, text) == ["2: site.title: the site needs a title: it names every page and feed"]
    named = GOOD.replace("        name: 张掖日报\n", "        name: '   '\n", 1)
    assert load(tmp_path, named).sources[0].name is None


def test_a_site_url_with_a_space_is_percent_encoded(tmp_path):
    """`url: https://news.example.com/my news` made every link and Atom id hold a space, which
    no strict reader takes; non-ASCII letters stay as they are (IRIs), as before."""
    text = GOOD.replace("  url: https://news.example.com\n", "  url: https://news.example.com/my news/新闻\n", 1)
    assert load(tmp_path, text).site.url == "https://news.example.com/my%20news/新闻/"
