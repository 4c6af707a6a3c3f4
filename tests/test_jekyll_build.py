"""The Jekyll export built by Jekyll itself (Debian's `jekyll`, installed by `.ci/run`), as
the site it replaces builds it: YAML front matter read by Ruby's Psych (YAML 1.1: `tRUE`,
`24:7`, `0b11` are not strings there), Liquid run over every body, then kramdown.

Posts whose link, source name or category label hold Liquid, whose body ends in plain text
with an attribution line after it, and whose category has tags YAML or Jekyll would misread:
the site must build, and each post must show what the feed said.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from html import escape
from pathlib import Path

import yaml
from lxml import html
from ruamel.yaml import YAML

from .conftest import CORPUS, run_cli

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>新闻 {{{{ site.time }}}} {{% foo %}}</title><link>https://lq.example/</link>
<description>d</description>{items}</channel></rss>"""
ITEM = """<item><title>{title}</title><link>{link}</link><guid>urn:lq:{n}</guid>
<pubDate>Thu, 10 Feb 2022 0{n}:38:21 GMT</pubDate><description>{text}</description></item>"""
POSTS = [  # (title, link, HTML of the body)
    ("模板链接", "https://lq.example/1?a={%foo%}&b={{site.time}}", "<p>正文一</p>"),
    ("纯文本", "https://lq.example/2article/{{slug}}", "兰州今日降雪，气温骤降。市民出行请注意安全。"),
    ("图片结尾", "https://lq.example/3", '<p>看图</p><img src="https://lq.example/3.png" alt="雪">'),
]
TAGS = ["24:7", "=", "World News", "tRUE", "张掖日报新闻"]

# What Jekyll made of each post, one JSON object per line.
META = """---
layout: null
---
{% for p in site.posts %}{"title": {{ p.title | jsonify }}, "categories": {{ p.categories | jsonify }}, \
"tags": {{ p.tags | jsonify }}, "url": {{ p.url | jsonify }}, \
"date": {{ p.date | date: "%Y-%m-%d %H:%M:%S %z" | jsonify }}}
{% endfor %}"""


def _build(jekyll: str, site: Path, out: Path, timezone: str) -> list[dict]:
    """`jekyll build --safe` of the exported folder, a layout and META added; what META lists."""
    (site / "_config.yml").write_text(f"timezone: {timezone}\nmarkdown: kramdown\n", encoding="utf-8")
    (site / "_layouts").mkdir()
    (site / "_layouts" / "post.html").write_text("<article>{{ content }}</article>\n", encoding="utf-8")
    (site / "meta.json").write_text(META, encoding="utf-8")
    built = subprocess.run(
        [jekyll, "build", "--safe", "--source", str(site), "--destination", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Liquid" not in built.stdout + built.stderr, built.stdout + built.stderr
    return [json.loads(line) for line in (out / "meta.json").read_text(encoding="utf-8").splitlines()]


def test_jekyll_builds_the_export_and_shows_each_post_as_the_feed_gave_it(tmp_path, httpserver) -> None:
    jekyll = shutil.which("jekyll")
    assert jekyll, "jekyll is not installed (.ci/run installs Debian's jekyll)"
    items = "".join(
        ITEM.format(n=n, title=title, link=escape(link), text=escape(text))
        for n, (title, link, text) in enumerate(POSTS, 1)
    )
    httpserver.expect_request("/lq.xml").respond_with_data(RSS.format(items=items), content_type="application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/', language: zh-CN, timezone: Asia/Shanghai}\n"
        "jekyll: {dir: site, attribution: true}\ncategories:\n"
        f"  - name: '模板 {{{{ site.time }}}}'\n    slug: '0b11'\n    tags: {json.dumps(TAGS, ensure_ascii=False)}\n"
        f"    sources:\n      - url: {httpserver.url_for('/lq.xml')}\n",
        encoding="utf-8",
    )
    done = run_cli("--config", str(cfg), "fetch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    site = tmp_path / "site"
    assert len(list((site / "_posts").glob("*.md"))) == len(POSTS)
    meta = _build(jekyll, site, tmp_path / "out", "Asia/Shanghai")
    assert sorted(m["title"] for m in meta) == sorted(title for title, _, _ in POSTS)
    for m in meta:
        assert m["categories"] == ["0b11"]  # a string, not the number 3: the post is in its category
        assert m["tags"] == TAGS  # each tag whole, none read as a number, boolean or YAML key
        assert m["url"].startswith("/0b11/2022/02/10/") and m["date"].startswith("2022-02-10 ")
    pages = {
        m["title"]: html.fromstring((tmp_path / "out" / m["url"].lstrip("/")).read_bytes().decode("utf-8"))
        for m in meta
    }
    for title, link, _ in POSTS:
        page = pages[title]
        [origin] = [a.get("href") for a in page.iter("a") if a.get("href", "").startswith("https://lq.example/")]
        # the feed's link, braces percent-encoded: no Liquid ran inside it
        assert origin == link.replace("{", "%7B").replace("}", "%7D")
        [credit] = page.xpath("//p[@class='em_media']")  # an element, not its tags shown as text
        assert credit.text_content() == "（文章来源：新闻 {{ site.time }} {% foo %}）"
        assert "&lt;p" not in html.tostring(page, encoding="unicode")
        [back] = [a for a in page.iter("a") if a.get("href", "").endswith("/category/0b11.html")]
        assert back.text_content() == "返回24:7"  # the category's first tag
    assert "兰州今日降雪" in pages["纯文本"].text_content()


LINENOISE = CORPUS / "feedparser-tests" / "encoding" / "bozo_linenoise.xml"  # `â€\x9d` in its text


def _front_matter_readers(text: str) -> list[dict]:
    """The front matter as each strict YAML reader we have reads it: PyYAML (pure and libyaml)
    and ruamel (safe and round-trip); each raises on a character YAML does not allow."""
    head = text[4:].partition("\n---\n")[0]
    rt = YAML(typ="rt")
    return [
        yaml.load(head, Loader=yaml.SafeLoader),
        yaml.load(head, Loader=yaml.CSafeLoader),
        YAML(typ="safe", pure=True).load(head),
        {k: str(v) if k == "date" else v for k, v in rt.load(head).items()},
    ]


def test_a_title_with_a_control_character_keeps_the_jekyll_site_building(tmp_path, httpserver) -> None:
    """feedparser's bozo_linenoise.xml is mis-decoded text ending `â€\\x9d`: the title made of it
    held a raw U+009D, which YAML does not allow. Written as `title: "â€™<>â€Š"`, the file
    stopped PyYAML and ruamel ("unacceptable character #x009d") and Jekyll's whole site build
    ("control characters are not allowed"). Escaped (`\\x9D`), every reader gives the title back."""
    httpserver.expect_request("/noise.xml").respond_with_data(
        LINENOISE.read_bytes(), content_type="application/rss+xml"
    )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/', language: en, timezone: UTC}\n"
        "jekyll: {dir: site}\ncategories:\n  - name: Noise\n    tags: [Line noise]\n"
        f"    sources:\n      - url: {httpserver.url_for('/noise.xml')}\n",
        encoding="utf-8",
    )
    done = run_cli("--config", str(cfg), "fetch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(tmp_path / "aggregator.db")
    (title,) = [row[0] for row in con.execute("SELECT title FROM posts")]
    con.close()
    assert "\x9d" in title  # the text as the feeds and pages show it
    site = tmp_path / "site"
    [post] = (site / "_posts").glob("*.md")
    text = post.read_text(encoding="utf-8")
    front_matter = text.partition("\n---\n")[0]
    assert "\x9d" not in front_matter and 'title: "â€™<>â€\\x9DŠ"' in front_matter.splitlines()
    for read in _front_matter_readers(text):
        assert read["title"] == title and read["tags"] == ["Line noise"] and read["categories"] == "noise"

    jekyll = shutil.which("jekyll")
    assert jekyll, "jekyll is not installed (.ci/run installs Debian's jekyll)"
    [meta] = _build(jekyll, site, tmp_path / "out", "UTC")
    assert meta["title"] == title and meta["tags"] == ["Line noise"] and meta["categories"] == ["noise"]
