"""include / exclude rules: config shape and errors, matching, and what gets published."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator import filters
from aggregator.config import ConfigError, load_config
from aggregator.models import Author, CategoryFilter, FilterRule, Post, RuleSet
from aggregator.parse import parse_feed
from aggregator.pipeline import ingest
from aggregator.store import Store

from .conftest import ROOT, StaticServer, run_cli

T0 = datetime(2025, 6, 1, tzinfo=UTC)

CONFIG = """\
site:
  title: 过滤
  url: https://news.example.com
defaults:
  exclude:
    - title: "(?i)^\\\\[sponsored\\\\]"
categories:
  - name: 财经
    slug: finance
    exclude:
      - tag: ^广告$
      - author: bot@
        link: /promo/
    sources:
      - url: https://a.example/feed.xml
        include:
          - title: 经济|金融
          - content: 央行
      - url: https://b.example/feed.xml
  - name: 全部
    slug: all
    sources:
      - url: https://a.example/feed.xml
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_rules_load_per_listing_and_category(tmp_path):
    s = load(tmp_path, CONFIG)
    a = s.source("https://a.example/feed.xml")
    b = s.source("https://b.example/feed.xml")
    by_cat = {f.category: f for f in a.filters}
    # finance: the listing's own include (its exclude from defaults), then the category's rules
    listing, category = by_cat["finance"].levels
    assert [r.patterns for r in listing.include] == [(("title", "经济|金融"),), (("content", "央行"),)]
    assert [r.patterns for r in listing.exclude] == [(("title", "(?i)^\\[sponsored\\]"),)]
    assert [r.patterns for r in category.exclude] == [(("tag", "^广告$"),), (("author", "bot@"), ("link", "/promo/"))]
    # all: only the defaults apply (no listing rules there, no category rules)
    (only,) = by_cat["all"].levels
    assert only.exclude and not only.include
    assert [f.category for f in b.filters] == ["finance"]
    assert s.category("finance").rules == category


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      - tag: ^广告$\n", '      - tag: "[广告"\n', "11: categories.0.exclude.0.tag: invalid regular expr"),
        ("          - content: 央行\n", "          - content: (央行\n", "18: categories.0.sources.0.include.1.content"),
        ('    - title: "(?i)^\\\\[sponsored\\\\]"\n', "    - title: '*x'\n", "6: defaults.exclude.0.title: invalid"),
        ("      - tag: ^广告$\n", "      - tags: ^广告$\n", "11: categories.0.exclude.0.tags: unknown key"),
        ("      - tag: ^广告$\n", "      - {}\n", "11: categories.0.exclude.0: a rule needs at least one of: title"),
        ("    slug: finance\n", "    slug: finance\n    duplicates: x\n", "10: categories.0.duplicates: Input should"),
    ],
)
def test_rule_mistakes_name_key_path_and_line(tmp_path, old, new, expected):
    assert old in CONFIG
    with pytest.raises(ConfigError) as info:
        load(tmp_path, CONFIG.replace(old, new, 1))
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors


def test_check_command_reports_a_bad_regex(tmp_path):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(CONFIG.replace("      - tag: ^广告$\n", '      - tag: "(unclosed"\n'), encoding="utf-8")
    result = run_cli("--config", str(cfg), "check")
    assert result.returncode == 2
    assert f"{cfg}:11: categories.0.exclude.0.tag: invalid regular expression '(unclosed'" in result.stderr


# --------------------------------------------------------------------------- matching


def post(**kw) -> Post:
    base = dict(
        id="0" * 16, source="s", guid="g", title="央行发布货币政策报告", link="https://a.example/n/1.html",
        published=T0, updated=T0, content='<p>报告指出，<a href="https://x.example/">稳健</a>的货币政策</p>',
        authors=(Author("记者", "bot@wire.example", None),), tags=("经济", "政策"),
    )  # fmt: skip
    base.update(kw)
    return Post(**base)


def rule(**patterns: str) -> FilterRule:
    return FilterRule(tuple(patterns.items()))


@pytest.mark.parametrize(
    ("r", "matches"),
    [
        (rule(title="央行"), True),
        (rule(title="^货币"), False),
        (rule(content="稳健的货币"), True),  # the text a reader sees, across tags
        (rule(content="x\\.example"), False),  # not the markup
        (rule(author="^记者$"), True),
        (rule(author="wire\\.example"), True),  # name or email
        (rule(tag="^政策$"), True),
        (rule(tag="^政$"), False),
        (rule(link="/n/\\d+\\.html$"), True),
        (rule(title="央行", tag="体育"), False),  # every field of a rule must match
    ],
)
def test_rule_matching(r, matches):
    assert filters.rule_matches(r, post()) is matches


def test_include_exclude_and_levels():
    p = post()
    assert filters.passes(RuleSet(), p)
    assert filters.passes(RuleSet(include=(rule(title="体育"), rule(tag="经济"))), p)  # any include
    assert not filters.passes(RuleSet(include=(rule(title="体育"),)), p)
    assert not filters.passes(RuleSet(include=(rule(tag="经济"),), exclude=(rule(link="/n/"),)), p)  # exclude wins
    cats = (
        CategoryFilter("a", (RuleSet(include=(rule(title="央行"),)), RuleSet(exclude=(rule(tag="政策"),)))),
        CategoryFilter("b", (RuleSet(include=(rule(title="央行"),)),)),
        CategoryFilter("c", (RuleSet(exclude=(rule(title="体育"),)),)),
    )
    assert filters.excluded_in(cats, p) == ("a",)  # every level must pass


# --------------------------------------------------------------------------- published


def rss(*items: tuple[str, str]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>https://a.example/{i}</link>{x}</item>" for i, (t, x) in enumerate(items)
    )
    return f'<rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


def test_excluded_posts_are_stored_but_not_published_and_rules_can_change(tmp_path):
    settings = load(tmp_path, CONFIG)
    a = settings.source("https://a.example/feed.xml")
    store = Store(tmp_path / "db.sqlite")
    store.sync_sources(settings.sources)
    feed = rss(
        ("经济形势分析", "<category>宏观</category>"),
        ("[Sponsored] 经济课程", ""),
        ("体育新闻", ""),
        ("金融市场周报", "<category>广告</category>"),
    )
    ingest(a, store, parse_feed(a.key, feed, a.url), T0)
    assert store.count_posts() == 4
    assert [p.title for p in store.posts_for_category("finance", 10)] == ["经济形势分析"]
    assert sorted(p.title for p in store.posts_for_category("all", 10)) == ["体育新闻", "经济形势分析", "金融市场周报"]
    assert len(store.latest_posts(10)) == 3  # in some category

    # A changed config applies to posts already stored, without refetching.
    relaxed = load(tmp_path, CONFIG.replace("      - tag: ^广告$\n", "      - tag: ^never$\n"))
    store.sync_sources(relaxed.sources)
    assert sorted(p.title for p in store.posts_for_category("finance", 10)) == ["经济形势分析", "金融市场周报"]
    store.close()


def test_published_feeds_leave_excluded_entries_out(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.xml").write_bytes(rss(("经济要闻", ""), ("[SPONSORED] 理财", ""), ("今日天气", "")))
    os.utime(www / "a.xml", (1_700_000_000, 1_700_000_000))
    server = StaticServer(www)
    try:
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            CONFIG.replace("https://a.example/feed.xml", server.url("a.xml")).replace(
                "      - url: https://b.example/feed.xml\n", ""
            ),
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.close()
    titles = {
        slug: [i["title"] for i in json.loads((tmp_path / "public" / "category" / f"{slug}.json").read_text())["items"]]
        for slug in ("finance", "all")
    }
    assert titles["finance"] == ["经济要闻"]
    assert sorted(titles["all"]) == ["今日天气", "经济要闻"]


def test_example_config_documents_every_new_key(monkeypatch):
    monkeypatch.setenv("EXAMPLE_API_KEY", "k")
    monkeypatch.setenv("EXAMPLE_PASSWORD", "p")
    s = load_config(ROOT / "config" / "feeds.example.yaml")
    (cat,) = s.categories
    source = s.sources[0]
    assert cat.duplicates == "first" and cat.rules.exclude
    assert source.retention.keep_days == 365 and source.retention.keep_per_source == 500
    (listing,) = [f for f in source.filters if f.category == cat.slug]
    own, category = listing.levels
    assert [r.patterns for r in own.include] == [(("title", "经济|金融"),), (("content", "央行"),)]
    assert [r.patterns for r in own.exclude] == [(("title", r"(?i)^\[(ad|sponsored)\]"),)]  # from defaults
    assert category == cat.rules


def _jekyll_categories(folder: Path) -> dict[str, str]:
    """Title → the `categories` of its Jekyll post, for every file under `_posts/`."""
    out = {}
    for path in (folder / "_posts").glob("*.md"):
        head = path.read_text(encoding="utf-8").split("\n---\n")[0]
        fields = dict(line.split(": ", 1) for line in head.splitlines()[1:])
        assert json.loads(fields["title"]) not in out, f"two Jekyll posts for {fields['title']}"
        out[json.loads(fields["title"])] = fields["categories"]
    return out


def test_a_post_kept_out_of_its_sources_first_category_gets_a_jekyll_post_in_the_next(tmp_path):
    """A Jekyll post per published post, in the first category (config order) showing it:
    the source's first category leaving a post out must not leave it out of Jekyll."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.xml").write_bytes(rss(("经济要闻", ""), ("今日天气", ""), ("[SPONSORED] 理财", "")))
    server = StaticServer(www)
    try:
        cfg = tmp_path / "feeds.yaml"
        text = CONFIG.replace("https://a.example/feed.xml", server.url("a.xml")).replace(
            "      - url: https://b.example/feed.xml\n", ""
        )
        cfg.write_text(text + "jekyll:\n  dir: jekyll\n", encoding="utf-8")
        result = run_cli("--config", str(cfg), "fetch")
        assert result.returncode == 0, result.stdout + result.stderr
        assert _jekyll_categories(tmp_path / "jekyll") == {"经济要闻": "finance", "今日天气": "all"}

        # the rules change: the weather is now shown in finance too, so its Jekyll post moves there
        cfg.write_text(cfg.read_text(encoding="utf-8").replace("经济|金融", "经济|金融|天气"), encoding="utf-8")
        result = run_cli("--config", str(cfg), "publish")
        assert result.returncode == 0, result.stdout + result.stderr
        assert _jekyll_categories(tmp_path / "jekyll") == {"经济要闻": "finance", "今日天气": "finance"}

        # and back: finance's file of it is taken down, and "all" publishes it again
        cfg.write_text(cfg.read_text(encoding="utf-8").replace("经济|金融|天气", "经济|金融"), encoding="utf-8")
        result = run_cli("--config", str(cfg), "publish")
        assert result.returncode == 0, result.stdout + result.stderr
        assert _jekyll_categories(tmp_path / "jekyll") == {"经济要闻": "finance", "今日天气": "all"}
    finally:
        server.close()
