"""The polling settings in feeds.yaml: what they become, and each mistake named by key and line."""

from __future__ import annotations

import pytest

from aggregator.config import ConfigError, format_duration, load_config

from .conftest import ROOT, run_cli

BASE = """\
site:
  title: T
  url: https://example.org/
defaults:
  min_interval: 10m
categories:
  - name: News
    sources:
      - url: https://example.com/a.xml
      - url: https://example.com/b.xml
        interval: 1h
"""


def load(tmp_path, text):
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def errors_of(tmp_path, text) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.errors


def test_defaults_auto_interval_and_bounds(tmp_path):
    s = load(tmp_path, BASE)
    a, b = s.sources
    assert a.adaptive and a.interval == 1800 and a.min_interval == 600 and a.max_interval == 86400
    assert not b.adaptive and b.interval == 3600
    assert a.enabled and a.auth is None and a.per_host == 2 and a.timeout == 30
    assert s.site.workers == 16 and s.site.per_host == 2


def test_every_new_source_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKEN", "abc")
    monkeypatch.setenv("PASS", "s3")
    text = BASE.replace("  min_interval: 10m\n", "  min_interval: 1m\n  max_interval: 2h\n  interval: auto\n") + (
        "        timeout: 10s\n        user_agent: Bot/1\n        enabled: false\n"
        "        headers: {X-Key: 'k-${TOKEN}-${TOKEN}', X-Plain: '$TOKEN'}\n"
        "        auth: {username: '${TOKEN}', password: '${PASS}'}\n"
    )
    text = text.replace("site:\n  title: T\n", "site:\n  title: T\n  per_host: 4\n  workers: 3\n")
    s = load(tmp_path, text)
    a, b = s.sources
    assert a.adaptive and a.min_interval == 60 and a.max_interval == 7200
    assert b.timeout == 10 and b.user_agent == "Bot/1" and b.enabled is False
    assert dict(b.headers) == {"X-Key": "k-abc-abc", "X-Plain": "$TOKEN"}
    assert b.auth == ("abc", "s3") and b.per_host == 4 and s.site.workers == 3


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "        interval: 1h\n",
            "        interval: 2m\n",
            "11: categories.0.sources.1.interval: interval 2m is below min_interval 10m",
        ),
        (
            "  min_interval: 10m\n",
            "  min_interval: 10m\n  interval: 5m\n",
            "6: defaults.interval: interval 5m is below",
        ),
        (
            "        interval: 1h\n",
            "        interval: 2d\n",
            "11: categories.0.sources.1.interval: interval 2d is above max_interval 1d",
        ),
        (
            "  min_interval: 10m\n",
            "  min_interval: 2d\n",
            "5: defaults.min_interval: min_interval 2d is above max_interval 1d",
        ),
        (  # named at the source's own max_interval, not at defaults.min_interval (line 5)
            "        interval: 1h\n",
            "        max_interval: 5m\n",
            "11: categories.0.sources.1.max_interval: min_interval 10m is above max_interval 5m",
        ),
        (
            "        interval: 1h\n",
            "        interval: sometimes\n",
            "11: categories.0.sources.1.interval: not a duration",
        ),
        ("        interval: 1h\n", "        enabled: maybe\n", "11: categories.0.sources.1.enabled:"),
        (
            "        interval: 1h\n",
            "        headers:\n          X-Key: ${NOPE_NOT_SET}\n",
            "11: categories.0.sources.1.headers: X-Key: environment variable NOPE_NOT_SET is not set",
        ),
        (
            "        interval: 1h\n",
            "        auth:\n          username: u\n          password: ${NOPE_NOT_SET}\n",
            "13: categories.0.sources.1.auth.password: environment variable NOPE_NOT_SET is not set",
        ),
        (
            "        interval: 1h\n",
            "        auth: {username: u}\n",
            "11: categories.0.sources.1.auth.password: required",
        ),
        ("  title: T\n", "  title: T\n  per_host: 0\n", "3: site.per_host:"),
    ],
)
def test_each_mistake_names_key_path_and_line(tmp_path, monkeypatch, old, new, expected):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    assert old in BASE
    errors = errors_of(tmp_path, BASE.replace(old, new, 1))
    assert any(e.startswith(expected) for e in errors), errors


def test_a_bad_default_is_reported_once(tmp_path):
    errors = errors_of(tmp_path, BASE.replace("  min_interval: 10m\n", "  min_interval: 10m\n  interval: 1m\n"))
    assert len([e for e in errors if "defaults.interval" in e]) == 1


def test_a_fixed_interval_below_the_default_min_needs_min_interval_lowered(tmp_path):
    text = BASE.replace("defaults:\n  min_interval: 10m\n", "")
    assert any("interval 1m is below min_interval 5m" in e for e in errors_of(tmp_path, text.replace("1h", "1m")))
    ok = load(tmp_path, text.replace("        interval: 1h\n", "        interval: 1m\n        min_interval: 30s\n"))
    assert ok.sources[1].interval == 60 and ok.sources[1].min_interval == 30


TWO_KINDS = """\
site:
  title: T
  url: https://example.org/
  colour: blue
defaults:
  min_interval: 10m
categories:
  - name: News
    sources:
      - url: https://example.com/a.xml
        interval: 2m
      - url: https://example.com/b.xml
        enabled: maybe
        interval: 5m
  - name: More
    sources:
      - url: https://example.com/c.xml
        intervall: 1h
      - url: https://example.com/d.xml
        min_interval: 2d
"""


def test_schema_and_interval_mistakes_are_reported_together_in_file_order(tmp_path):
    """Range errors used to wait until every schema error was fixed: a user saw one mistake,
    fixed it, and only then the next. A source with another mistake is range-checked too."""
    assert errors_of(tmp_path, TWO_KINDS) == [
        "4: site.colour: unknown key",
        "11: categories.0.sources.0.interval: interval 2m is below min_interval 10m "
        "(set min_interval lower to poll this often)",
        "13: categories.0.sources.1.enabled: Input should be a valid boolean, unable to interpret input",
        "14: categories.0.sources.1.interval: interval 5m is below min_interval 10m "
        "(set min_interval lower to poll this often)",
        "18: categories.1.sources.0.intervall: unknown key (did you mean `interval`?)",
        "20: categories.1.sources.1.min_interval: min_interval 2d is above max_interval 1d",
    ]


def test_interval_mistakes_come_in_file_order_with_or_without_schema_errors(tmp_path):
    """`defaults:` written after the categories: its error is on a later line than a
    source's, and comes after it whether or not the file has a schema error too."""
    text = BASE.replace("defaults:\n  min_interval: 10m\n", "") + (
        "      - url: https://example.com/c.xml\n        max_interval: 1m\ndefaults:\n  interval: 2m\n"
    )
    only_ranges = errors_of(tmp_path, text)
    assert [e.split(":")[0] for e in only_ranges] == ["11", "13"], only_ranges
    with_schema = errors_of(tmp_path, text.replace("  title: T\n", "  title: T\n  colour: blue\n"))
    assert [e.split(":")[0] for e in with_schema] == ["3", "12", "14"], with_schema
    assert with_schema[1:] == [e.replace(e.split(":")[0], str(int(e.split(":")[0]) + 1), 1) for e in only_ranges]


def test_cli_check_reports_both_kinds_in_one_run(tmp_path):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(TWO_KINDS, encoding="utf-8")
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f"{cfg}:4: site.colour: unknown key" in lines
    assert f"{cfg}:18: categories.1.sources.0.intervall: unknown key (did you mean `interval`?)" in lines
    assert f"{cfg}:20: categories.1.sources.1.min_interval: min_interval 2d is above max_interval 1d" in lines
    assert lines.index(f"{cfg}:4: site.colour: unknown key") < lines.index(
        f"{cfg}:20: categories.1.sources.1.min_interval: min_interval 2d is above max_interval 1d"
    )


def test_an_interval_field_that_is_itself_wrong_is_not_range_checked(tmp_path):
    """Only values that validated are compared: a bad `min_interval` (its own or inherited
    from `defaults:`) makes no range error up, and a bad `interval` still lets min and max be
    compared."""
    text = BASE.replace("  min_interval: 10m\n", "  min_interval: soon\n") + (
        "      - url: https://example.com/c.xml\n        interval: often\n        min_interval: 2d\n"
    )
    assert errors_of(tmp_path, text) == [
        "5: defaults.min_interval: not a duration: 'soon' (use e.g. 90s, 15m, 2h, 1d)",
        "13: categories.0.sources.2.interval: not a duration: 'often' (use e.g. 90s, 15m, 2h, 1d)",
        "14: categories.0.sources.2.min_interval: min_interval 2d is above max_interval 1d",
    ]
    broken = BASE.replace("defaults:\n  min_interval: 10m\n", "defaults: [1]\n").replace("1h", "1m")
    assert errors_of(tmp_path, broken) == [
        "4: defaults: should be a mapping (`key: value` lines), not list [1]",
    ]


def test_the_example_config_lists_the_new_keys_and_is_valid(monkeypatch):
    monkeypatch.setenv("EXAMPLE_API_KEY", "k")
    monkeypatch.setenv("EXAMPLE_PASSWORD", "p")
    text = (ROOT / "config" / "feeds.example.yaml").read_text(encoding="utf-8")
    for key in ("min_interval:", "max_interval:", "interval: auto", "per_host:", "enabled:", "auth:", "${"):
        assert key in text, key
    s = load_config(ROOT / "config" / "feeds.example.yaml")
    assert s.sources


@pytest.mark.parametrize(("seconds", "text"), [(300, "5m"), (5400, "90m"), (86400, "1d"), (90, "90s"), (7200, "2h")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
