"""Render one post as a Jekyll `_posts/` file, shaped exactly like the reference post.

The site this project replaces published its posts as Jekyll Markdown files
(`shared/reference/sample-post.md`); readers and its theme depend on that exact shape:
front matter (layout, quoted title, local date with offset, category slug, tags), the
HTML body, the original link as an autolink, and links back to the category and home.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ..models import Post
from ..sanitize import one_line, url_text

__all__ = ["jekyll_filename", "render_jekyll"]

# A plain YAML scalar we can write unquoted: no indicator first, no ": " / " #" inside.
_PLAIN_UNSAFE = re.compile(r"""^[-?:,\[\]{}#&*!|>'"%@`\s]|:\s|\s#|:$|[\x00-\x1f]|\s$""")
_YAML_SPECIAL = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][-+]?\d+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|\d{4}-\d\d?-\d\d?.*)$"
)
# An attribution already present in the source's own content.
_HAS_SOURCE_LINE = re.compile(r"(?i)(?:^|[>\n(（])\s*source\s*[:：]")


def _local(dt: datetime, timezone: str) -> datetime:
    """`dt` in the site's time zone (a naive value is taken as UTC, as the store keeps it)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(ZoneInfo(timezone))


def _quoted(text: str) -> str:
    """YAML double-quoted scalar: only `\\` and `"` need escaping once on one line."""
    return '"' + one_line(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(text: str) -> str:
    """Plain YAML scalar when it reads back as the same string (as in the sample), else quoted."""
    text = one_line(text)
    if not text or _PLAIN_UNSAFE.search(text) or _YAML_SPECIAL.match(text):
        return _quoted(text)
    return text


def _protocol_relative(site_url: str) -> str:
    """`https://host/` → `//host/`, as the reference links back to the site."""
    url = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*:", "", site_url.strip())
    return url if url.endswith("/") else url + "/"


def _link_label(text: str) -> str:
    """Link text as Markdown: `|` escaped too, which would make the footer line a table row."""
    return one_line(text).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("|", "\\|")


def _autolink(url: str) -> str:
    """`<url>`; characters that would end a Markdown autolink (whitespace, `<`, `>`, ASCII
    controls, DEL) or that XML 1.0 forbids are percent-encoded. The normalizer encodes the
    latter two kinds already (`url_text`); links stored by earlier versions may hold them."""
    return "<" + re.sub(r"[\s<>]", lambda m: quote(m.group(), safe=""), url_text(url.strip())) + ">"


# Text between tags in sanitized HTML: the sanitizer's serializer escapes `<` and `>` in text
# and attribute values, so every `<`…`>` left is a tag.
_HTML_TEXT = re.compile(r"[^<]+|<[^>]*>?")
_MARKDOWN_REFS = str.maketrans({"[": "&#91;", "{": "&#123;", "|": "&#124;"})


def _no_markdown(body: str) -> str:
    """Jekyll renders the file as Markdown (kramdown), which reads the text of the sanitized
    HTML again: `[x](javascript:…)` became a live link and `*x*{: onmouseover="…"}` an
    attribute list putting an event handler on the element, both past the sanitizer. `[`
    starts every link, image, reference and footnote, `{` every attribute list and extension;
    as character references in text (not in tags) they show the same and start nothing.
    `|` likewise: a line of text holding one was made a table."""
    if "[" not in body and "{" not in body and "|" not in body:
        return body
    return _HTML_TEXT.sub(lambda m: m.group() if m.group()[0] == "<" else m.group().translate(_MARKDOWN_REFS), body)


def _no_liquid(body: str) -> str:
    """Jekyll runs Liquid over post bodies: `{{`/`{%` from a source must not execute."""
    return body.replace("{{", "&#123;&#123;").replace("{%", "&#123;%")


def _attribution(body: str, name: str | None, zh: bool) -> str:
    """The optional "article source" line, unless the source's content already has one."""
    name = one_line(name or "")
    if not name or "文章来源" in body or _HAS_SOURCE_LINE.search(body):
        return ""
    name = html.escape(name, quote=False)
    text = f"（文章来源：{name}）" if zh else f"(Source: {name})"
    return f'<p class="em_media">{text}</p>'


def jekyll_filename(post: Post, timezone: str) -> str:
    """`<yyyy-mm-dd>-<id>.md`, the date in the site's time zone (Jekyll reads it from the name)."""
    return f"{_local(post.published, timezone):%Y-%m-%d}-{post.id}.md"


def render_jekyll(
    post: Post,
    *,
    category_slug: str,
    tags: Sequence[str],
    back_label: str,
    site_url: str,
    timezone: str,
    language: str,
    layout: str = "post",
    attribution: str | None = None,
) -> str:
    """The post as a Jekyll Markdown file, byte for byte in the reference's shape.

    `back_label` names the category in the "back to" link (the category's first tag, or its
    name); `attribution` is the source's name, appended as a "文章来源"/"Source" line when
    given and the content carries none. No trailing newline, like the reference.
    """
    zh = language.strip().lower().startswith("zh")
    tag_list = [t for t in (one_line(t) for t in tags) if t]
    lines = [
        "---",
        f"layout: {_scalar(layout)}",
        f"title: {_quoted(post.title)}",
        f"date: {_local(post.published, timezone):%Y-%m-%d %H:%M:%S %z}",
        f"categories: {_scalar(category_slug)}",
    ]
    if tag_list:
        lines.append(f"tags: {_scalar(' '.join(tag_list))}")
    lines.append("---")
    body = _no_liquid(_no_markdown((post.content if post.content.strip() else post.summary).rstrip()))
    text = "\n".join(lines) + "\n" + body + _attribution(body, attribution, zh)
    if post.link:
        text += "\n\n" + _autolink(post.link)
    home = _protocol_relative(site_url)
    category_page = f"{home}category/{category_slug}.html"
    label = _link_label(back_label)
    if zh:
        footer = f"[返回{label}]({category_page})｜[返回首页]({home})"
    else:
        # `\|`: kramdown (Jekyll's Markdown) reads a line holding a bare `|` as a table row
        footer = f"[Back to {label}]({category_page}) \\| [Home]({home})"
    return text + "\n\n" + footer
