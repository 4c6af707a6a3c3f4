"""The Jekyll export as Jekyll renders it: each post file, front matter off, through kramdown
(Jekyll's Markdown converter, GFM input with Jekyll's default options).

kramdown reads the text of our sanitized HTML as Markdown a second time, so what the
sanitizer lets through as text (`[x](javascript:…)`, `{: onclick=…}`, a line with a `|`, an
indented line, `# x`) must come out of kramdown as that text, not as a link, an attribute, a
table, a code block showing the tags or a heading. Debian's `ruby-kramdown` and
`ruby-kramdown-parser-gfm` (installed by `.ci/run`) do the rendering: a missing kramdown
fails these tests rather than skip them.
"""

from __future__ import annotations

import collections
import json
import re
import sqlite3
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import html

from .conftest import run_cli

RENDER = """
require "json"
require "kramdown"
require "kramdown-parser-gfm"
out = {}
ARGV.each do |path|
  text = File.read(path, encoding: "utf-8")
  body = text.sub(/\\A---\\n.*?\\n---\\n/m, "")
  out[path] = Kramdown::Document.new(body, input: "GFM", hard_wrap: false, auto_ids: true,
                                     entity_output: "as_char", smart_quotes: "lsquo,rsquo,ldquo,rdquo").to_html
end
puts JSON.generate(out)
"""

# (what, the entry's HTML as the feed gives it, text the rendered page must show)
HOSTILE = [
    ("a link", "Hi [click](javascript:alert(1)) there", "[click](javascript:alert(1))"),
    ("an image", "See ![x](javascript:alert(2)) here", "![x](javascript:alert(2))"),
    ("a reference", "[a]: javascript:alert(3)\n\nand [a] then", "[a]: javascript:alert(3)"),
    ("an attribute list", '<p>*x*{: onmouseover="alert(4)"}</p>', '*x*{: onmouseover="alert(4)"}'),
    ("a block attribute list", 'para\n\n{: onclick="alert(5)"}\n\nnext', '{: onclick="alert(5)"}'),
    ("a table", "Lakers | Celtics\n--- | ---\nwin | loss", "Lakers | Celtics"),
    ("a link definition", "<b>[y][1]</b>\n\n[1]: javascript:alert(6)", "[1]: javascript:alert(6)"),
    ("an indented line", "<p>Intro</p>\n\n    <p><b>bold</b> text</p>", "Intro bold text"),
    ("a block after an image", '<img src="https://h.example/a.png" alt=""><p>After it</p>', "After it"),
    ("Markdown block marks", "# not a heading\n\n- not a list\n\n1. nor this\n\n: nor a definition", "# not a"),
    ("a setext underline", "Not a title\n===\n\nnor this\n---", "Not a title ==="),
    ("Markdown span marks", "*a* _b_ `c` ~~d~~ $$e$$ back\\slash a  \nb", "*a* _b_ `c` ~~d~~ $$e$$ back\\slash"),
]

# Real feeds whose posts kramdown read differently before (indented HTML, blocks after inline
# content on one line, Markdown-looking text): 112 of their 125 posts.
CORPUS_FEEDS = [
    "speedparser2011/speedparser__feeds_0120.dat.xml",
    "suites/rss-parser__test_input_many-links.rss",
    "suites/picoFeed__tests_fixtures_rue89.xml",
    "kagi/fastfeedparser__benchmark_data_f5957e5aeed84305.xml",
    "suites/rss-parser__test_input_heise.atom",
]

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile</title><link>https://h.example/</link><description>d</description>
{items}
</channel></rss>"""
ITEM = """<item><title>{title}</title><link>https://h.example/{n}</link><guid>https://h.example/{n}</guid>
<pubDate>Mon, {n:02d} Jan 2024 10:00:00 GMT</pubDate><description>{text}</description></item>"""

# What the export adds after the content: a player per sound or video, each picture the
# content does not show (`jekyll._media`), each on its line.
OUR_MEDIA = re.compile(
    r'(?:\n?<p><(audio|video) controls preload="none" src="[^"]*"></\1></p>'
    r'|\n?<p><img src="[^"]*" alt="" loading="lazy"></p>)+\Z'
)

TYPOGRAPHY = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "--", "—": "---", "…": "..."})


def _kramdown(paths: list[Path]) -> dict[str, str]:
    done = subprocess.run(["ruby", "-e", RENDER, *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kramdown (ruby-kramdown, ruby-kramdown-parser-gfm) could not run: {done.stderr}"
    return json.loads(done.stdout)


def _tree(page: str) -> html.HtmlElement:
    return html.fragment_fromstring(page or "<p></p>", create_parent="div")


def _text(page: str) -> str:
    """The text a browser shows, whitespace aside, kramdown's typographic quotes made plain."""
    return "".join(_tree(page).text_content().translate(TYPOGRAPHY).split())


def _elements(page: str) -> collections.Counter[str]:
    return collections.Counter(el.tag for el in _tree(page).iter() if isinstance(el.tag, str) and el.tag != "p")


def _dangers(page: str) -> list[str]:
    """Event handlers and `javascript:` URLs in kramdown's HTML (a table or any other element
    the post did not have is `_elements`' to find)."""
    found = []
    for el in _tree(page).iter():
        for name, value in el.attrib.items():
            if name.lower().startswith("on"):
                found.append(f"<{el.tag} {name}={value!r}>")
            if name in ("href", "src") and "".join(value.split()).lower().startswith("javascript:"):
                found.append(f"<{el.tag} {name}={value!r}>")
    return found


def test_kramdown_shows_the_posts_html_not_markdown(tmp_path, httpserver, corpus_server) -> None:
    items = "\n".join(ITEM.format(n=n, title=what, text=escape(text)) for n, (what, text, _) in enumerate(HOSTILE, 1))
    httpserver.expect_request("/h.xml").respond_with_data(RSS.format(items=items), content_type="application/rss+xml")
    real = "".join(f"      - url: {corpus_server.base}{feed}\n" for feed in CORPUS_FEEDS)
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/'}\njekyll: {dir: jekyll}\ncategories:\n"
        f"  - name: 'Sport | News'\n    sources:\n      - url: {httpserver.url_for('/h.xml')}\n"
        f"  - name: 张掖日报\n    tags: [张掖日报新闻]\n    sources:\n"
        f"      - url: {corpus_server.base}zh/zhangye-daily.gbk.rss\n        name: 张掖日报\n"
        f"  - name: Real\n    sources:\n{real}",
        encoding="utf-8",
    )
    done = run_cli("--config", str(cfg), "fetch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "aggregator.db") as db:
        stored = dict(db.execute("SELECT id, coalesce(nullif(trim(content), ''), summary, '') FROM posts"))
    files = sorted((tmp_path / "jekyll").rglob("*.md"))
    assert len(files) == len(stored) > len(HOSTILE) + 3 + 100
    # the body alone: what follows it (the link to the original, the footer) is ours
    bodies = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        head = text.rpartition("\n\n")[0]  # the footer off
        rest, _, last = head.rpartition("\n\n")
        body = path.with_suffix(".body")
        body_text = rest if last.startswith("<http") else head  # the link off
        body.write_text(OUR_MEDIA.sub("", body_text), encoding="utf-8")  # and the players and pictures we add
        bodies.append(body)
    pages = {Path(p).stem[11:]: page for p, page in _kramdown(bodies).items()}  # post id from the file name
    differ = []
    for pid, page in pages.items():
        assert _dangers(page) == [], f"{pid}: kramdown made {_dangers(page)} of\n{page}"
        added = _elements(page) - _elements(stored[pid])
        if added or _text(page) != _text(stored[pid]):
            differ.append((pid, dict(added), page[:300]))
    assert differ == []
    shown = "".join(_text(page) for page in pages.values())
    for what, _, text in HOSTILE:
        assert "".join(text.split()) in shown, f"{what}: {text!r} is not what the page shows"


def test_the_footer_is_one_line_of_two_links(tmp_path, httpserver) -> None:
    """kramdown reads a line holding a bare `|` as a table row: the English footer's separator
    and a `|` in the category's name are escaped."""
    httpserver.expect_request("/h.xml").respond_with_data(
        RSS.format(items=ITEM.format(n=1, title="t", text="x")), content_type="application/rss+xml"
    )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/'}\njekyll: {dir: jekyll}\ncategories:\n"
        f"  - name: 'Sport | News'\n    sources:\n      - url: {httpserver.url_for('/h.xml')}\n",
        encoding="utf-8",
    )
    assert run_cli("--config", str(cfg), "fetch", cwd=tmp_path).returncode == 0
    [page] = _kramdown(sorted((tmp_path / "jekyll").rglob("*.md"))).values()
    assert _dangers(page) == [] and "table" not in _elements(page)
    [footer] = _tree(page).xpath("//p[a[.='Home']]")
    assert [(a.text, a.get("href")) for a in footer.iter("a")] == [
        ("Back to Sport | News", "//t.example/category/sport-news.html"),
        ("Home", "//t.example/"),
    ]


def test_the_footer_shows_the_category_label_as_written(tmp_path, httpserver) -> None:
    """The "back to" label was escaped for brackets and `|` only: `<Go> weekly` came out of
    kramdown as dead text and a stray `</Go>` (an HTML tag), `*Featured* $$picks$$` as
    emphasis and math. Every label now reads as written."""
    labels = ["<Go> weekly", "*Featured* $$picks$$", "_a_ `b` ~~c~~ & &copy; {x} \\[y] A|B"]
    categories = ""
    for n, label in enumerate(labels):
        path = f"/{n}.xml"
        httpserver.expect_request(path).respond_with_data(
            RSS.format(items=ITEM.format(n=n + 1, title="t", text="x")), content_type="application/rss+xml"
        )
        categories += (
            f"  - name: C{n}\n    tags: [{json.dumps(label)}]\n    sources:\n      - url: {httpserver.url_for(path)}\n"
        )
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/'}\njekyll: {dir: jekyll}\ncategories:\n" + categories,
        encoding="utf-8",
    )
    done = run_cli("--config", str(cfg), "fetch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pages = _kramdown(sorted((tmp_path / "jekyll").rglob("*.md"))).values()
    shown = []
    for page in pages:
        [footer] = _tree(page).xpath("//p[a[.='Home']]")
        assert [el.tag for el in footer.iter()] == ["p", "a", "a"], page
        shown.append(footer[0].text_content())
    assert sorted(shown) == sorted(f"Back to {label}" for label in labels)
