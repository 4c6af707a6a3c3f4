"""The Jekyll export as Jekyll renders it: each post file, front matter off, through kramdown
(Jekyll's Markdown converter, GFM input as Jekyll configures it by default).

kramdown reads the text of our sanitized HTML as Markdown a second time, so what the
sanitizer lets through as text (`[x](javascript:…)`, `{: onclick=…}`, a line with a `|`)
must come out of kramdown as that text, not as a link, an attribute or a table. Debian's
`ruby-kramdown` and `ruby-kramdown-parser-gfm` (installed by `.ci/run`) do the rendering:
a missing kramdown fails these tests rather than skip them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import html

from .conftest import run_cli

# What Jekyll 4 passes kramdown for a post (its `kramdown` defaults that change the HTML).
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

# (what, the entry's HTML as the feed gives it, the text the rendered page must show)
HOSTILE = [
    ("a link", "Hi [click](javascript:alert(1)) there", "[click](javascript:alert(1))"),
    ("an image", "See ![x](javascript:alert(2)) here", "![x](javascript:alert(2))"),
    ("a reference", "[a]: javascript:alert(3)\n\nand [a] then", "[a]: javascript:alert(3)"),
    ("an attribute list", '<p>*x*{: onmouseover="alert(4)"}</p>', '{: onmouseover="alert(4)"}'),
    ("a block attribute list", 'para\n\n{: onclick="alert(5)"}\n\nnext', '{: onclick="alert(5)"}'),
    ("a table", "Lakers | Celtics\n--- | ---\nwin | loss", "Lakers | Celtics"),
    ("a link definition", "<b>[y][1]</b>\n\n[1]: javascript:alert(6)", "[1]: javascript:alert(6)"),
]

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile</title><link>https://h.example/</link><description>d</description>
{items}
</channel></rss>"""
ITEM = """<item><title>{title}</title><link>https://h.example/{n}</link><guid>https://h.example/{n}</guid>
<pubDate>Mon, 0{n} Jan 2024 10:00:00 GMT</pubDate><description>{text}</description></item>"""


def _kramdown(paths: list[Path]) -> dict[str, str]:
    done = subprocess.run(
        ["ruby", "-e", RENDER, *map(str, paths)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"kramdown (ruby-kramdown, ruby-kramdown-parser-gfm) could not run: {done.stderr}"
    return json.loads(done.stdout)


def _dangers(page: str) -> list[str]:
    """Event handlers, `javascript:` URLs and tables in kramdown's HTML."""
    found = []
    for el in html.fragment_fromstring(page, create_parent="div").iter():
        if el.tag == "table":
            found.append("a table")
        for name, value in el.attrib.items():
            if name.lower().startswith("on"):
                found.append(f"<{el.tag} {name}={value!r}>")
            if name in ("href", "src") and "".join(value.split()).lower().startswith("javascript:"):
                found.append(f"<{el.tag} {name}={value!r}>")
    return found


def test_kramdown_renders_the_text_not_links_attributes_or_tables(tmp_path, httpserver, corpus_server) -> None:
    items = "\n".join(ITEM.format(n=n, title=what, text=escape(text)) for n, (what, text, _) in enumerate(HOSTILE, 1))
    httpserver.expect_request("/h.xml").respond_with_data(RSS.format(items=items), content_type="application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site: {title: T, url: 'https://t.example/'}\njekyll: {dir: jekyll}\ncategories:\n"
        f"  - name: 'Sport | News'\n    sources:\n      - url: {httpserver.url_for('/h.xml')}\n"
        f"  - name: 张掖日报\n    tags: [张掖日报新闻]\n    sources:\n"
        f"      - url: {corpus_server.base}zh/zhangye-daily.gbk.rss\n        name: 张掖日报\n",
        encoding="utf-8",
    )
    done = run_cli("--config", str(cfg), "fetch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "jekyll").rglob("*.md"))
    assert len(files) == len(HOSTILE) + 3  # the zh feed's three entries
    pages = _kramdown(files)
    for path, page in pages.items():
        assert _dangers(page) == [], f"{Path(path).name}: kramdown made {_dangers(page)} of\n{page}"
    text = "\n".join(html.fragment_fromstring(p, create_parent="div").text_content() for p in pages.values())
    text = text.translate(str.maketrans("“”‘’", "\"\"''"))  # kramdown's smart quotes
    for what, _, shown in HOSTILE:
        assert shown in text, f"{what}: the text {shown!r} is not what the page shows"
    # the footer is one line of two links, not a table row
    english = [p for p in pages.values() if "category/sport-news.html" in p]
    assert len(english) == len(HOSTILE)
    footer = html.fragment_fromstring(english[0], create_parent="div").xpath("//p[a[.='Home']]")
    assert [a.text for a in footer[-1].iter("a")] == ["Back to Sport | News", "Home"]
