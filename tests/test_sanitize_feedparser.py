"""feedparser's 745 sanitizer test feeds through parse → normalize: safe, and the same text.

Each `feedparser-tests/wellformed/sanitize/` file hides something (event handlers, script,
style, `javascript:` URLs, embeds...) in an entry and states what feedparser's own
sanitizer leaves. Ours is a different allow-list, so markup may differ; what must hold is
that nothing unsafe survives (checked by parsing the output) and that a reader sees the
same words, except where browsers themselves would show different text (listed below).
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime

import pytest

from aggregator.models import Source
from aggregator.normalize import normalize
from aggregator.parse import ParseError, parse_feed
from aggregator.sanitize import html_to_text

from .conftest import CORPUS
from .test_sanitize import assert_safe

SANITIZE = CORPUS / "feedparser-tests" / "wellformed" / "sanitize"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
_FIELD = re.compile(r"entries\[0\]\['(content|summary|description|title)'\](?:\[0\]\['value'\])?\s*==\s*(.*)")

# Where a browser shows other text than feedparser keeps: the content of <iframe> is raw
# text a browser never displays; the "crazy" document's <title>, comments and script
# source are not shown either (feedparser keeps them as text); and outside SVG/MathML
# `<![CDATA[` opens a bogus comment in HTML5, so only the `]]>` after it is text.
BROWSER_TEXT_DIFFERS = re.compile(r"_(iframe|crazy)\.xml$")
BROWSER_TEXT = {"item_content_encoded_script_nested_cdata.xml": "]]>"}
# The link an iframe off the video hosts' list leaves in its place (to the suite's example.com).
_EMBED_LINK = re.compile(r'<a href="(http://example\.com/?)" rel="noopener noreferrer">\1</a>')


def _literal(expr: str) -> str | None:
    """A Python string expression from an Expect line ('a' + 'b' included), else None."""
    expr = re.split(r"\s+and\s+(?=entries|feed|not|bozo)", expr.strip())[0]
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None

    def fold(n: ast.AST) -> str:
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            return n.value
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            return fold(n.left) + fold(n.right)
        raise ValueError(n)

    try:
        return fold(node)
    except ValueError:
        return None


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for path in sorted(SANITIZE.glob("*.xml")):
        head = path.read_text(encoding="utf-8", errors="replace")[:4000]
        m = re.search(r"Expect:\s*(.*)", head)
        found = _FIELD.search(m.group(1)) if m else None
        if found:
            expected = _literal(found.group(2))
            if expected is not None:
                cases.append((path.name, found.group(1), expected))
    return cases


CASES = _cases()


def _post(name: str):
    url = "http://127.0.0.1:8097/tests/wellformed/sanitize/" + name
    try:
        feed = parse_feed(url, (SANITIZE / name).read_bytes(), url)
    except ParseError:
        return None
    posts = normalize(Source(key=url, url=url), feed, NOW)
    return posts[0] if posts else None


def test_the_sanitizer_suite_is_found():
    assert len(CASES) > 550  # the rest are feed-level (title, tagline, info, copyright)


@pytest.mark.parametrize(("name", "field", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_entries_come_out_safe_with_their_text(name: str, field: str, expected: str):
    post = _post(name)
    assert post is not None
    for html in (post.content, post.summary):
        assert_safe(html)
    if field == "title":
        if BROWSER_TEXT_DIFFERS.search(name):
            assert "executeMe" not in post.title and set(post.title.split()) <= set(html_to_text(expected).split())
        else:
            assert post.title == (html_to_text(expected) or post.title)  # else the fallback title
        return
    html = post.summary if field in ("summary", "description") and post.summary else post.content
    if name in BROWSER_TEXT:
        assert html_to_text(html) == BROWSER_TEXT[name]
    elif BROWSER_TEXT_DIFFERS.search(name):
        assert "executeMe" not in html and "alert" not in html.lower()
        shown = _EMBED_LINK.sub(" ", html)
        assert set(html_to_text(shown).split()) <= set(html_to_text(expected).split())
    else:
        assert html_to_text(html) == html_to_text(expected)
