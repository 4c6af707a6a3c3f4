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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ..models import Post
from ..sanitize import one_line, url_text
from .feeds import bidi_closed, feed_uri, html_excerpt, language_tag, stated_language, web_url, written_in
from .site import pictures_shown, player, strings_for

__all__ = ["jekyll_filename", "reads_as_another_type", "render_jekyll"]

# What YAML may not hold raw in a scalar, of what `one_line` leaves (it drops the C0 controls,
# DEL, lone surrogates and U+FFFE/FFFF, which are no text): the C1 controls, which XML allows
# and mis-decoded feeds carry (`\x9d` in `â€\x9d`), are outside YAML's printable set, and
# PyYAML, ruamel and Psych stop at them ("unacceptable character #x009d", "control characters
# are not allowed": Jekyll's whole build stopped); NEL, U+2028 and U+2029 are line breaks to
# YAML 1.1 (a plain value ends at NEL in Psych; ruamel folds it into a space). Written as
# escapes, which read back as the very characters; the C0 controls too, should one come.
_YAML_ESCAPE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
# A plain YAML scalar we can write unquoted: no indicator first, no ": " / " #" inside, and
# nothing to escape.
_PLAIN_UNSAFE = re.compile(r"""^[-?:,\[\]{}#&*!|>'"%@`\s]|:\s|\s#|:$|\s$|""" + _YAML_ESCAPE.pattern)
# What a YAML 1.1 reader may take for another type: Jekyll's (Ruby's Psych) reads booleans and
# null in any case (`tRUE`), and numbers in every base, base 60 (`24:7`) and dates included, so
# anything that starts like a number is quoted, as are the `=` and `<<` keys.
_YAML_SPECIAL = re.compile(r"(?i)^(?:~|null|true|false|yes|no|on|off|y|n|=|<<|[-+]?\.?\d.*|[-+]?\.(?:inf|nan))$")
# An attribution already present in the source's own content.
_HAS_SOURCE_LINE = re.compile(r"(?i)(?:^|[>\n(（])\s*source\s*[:：]")


def _local(dt: datetime, timezone: str) -> datetime:
    """`dt` in the site's time zone (a naive value is taken as UTC, as the store keeps it)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(ZoneInfo(timezone))


def _quoted(text: str) -> str:
    """YAML double-quoted scalar of `text` on one line: `\\` and `"` escaped, and what YAML
    may not hold raw (`_YAML_ESCAPE`) as its escape (`\\x9D`, `\\u2028`), which reads back as
    that very character: the text is kept as the feeds and pages show it."""
    text = one_line(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _YAML_ESCAPE.sub(_yaml_escape, text) + '"'


def _yaml_escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}"


def reads_as_another_type(text: str) -> bool:
    """Whether a YAML 1.1 reader (Jekyll's Psych, and PyYAML, which reads feeds.yaml) takes
    `text`, written plain, for something other than that string: `Off`, `yes`, `~`, `1:30`,
    `0x1F`, `2024-01-01`, `=`. Such a value must be quoted."""
    return not text or _YAML_SPECIAL.match(text) is not None


def _scalar(text: str) -> str:
    """Plain YAML scalar when it reads back as the same string (as in the sample), else quoted."""
    text = one_line(text)
    if _PLAIN_UNSAFE.search(text) or reads_as_another_type(text):
        return _quoted(text)
    return text


def _protocol_relative(site_url: str) -> str:
    """`https://host/` → `//host/`, as the reference links back to the site."""
    url = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*:", "", site_url.strip())
    return url if url.endswith("/") else url + "/"


def _link_label(text: str) -> str:
    """Link text that kramdown shows as written: HTML-escaped (`<Go>` was taken for a tag), the
    brackets and `|` backslash-escaped (a `]` ends the label, a `|` makes the footer line a
    table row), the body's other Markdown characters as character references (`*x*`, `$$x$$`)."""
    label = html.escape(one_line(text), quote=False)
    label = label.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("|", "\\|")
    return _no_liquid(_LABEL_CHAR.sub(_reference, label))


def _autolink(url: str) -> str:
    """`<url>`; characters that would end a Markdown autolink (whitespace, `<`, `>`, ASCII
    controls, DEL) or that XML 1.0 forbids are percent-encoded. The normalizer encodes the
    latter two kinds already (`url_text`); links stored by earlier versions may hold them.
    Braces too: Jekyll runs Liquid over the whole body, and `{{`/`{%` in a link (a feed's
    unrendered URL template) ran, or stopped the site's build."""
    return "<" + re.sub(r"[\s<>{}]", lambda m: quote(m.group(), safe=""), url_text(url.strip())) + ">"


# The sanitizer's serializer escapes `<` and `>` in text and in attribute values, so every
# `<`…`>` left is a tag, and what lies between them is text. (A lookahead for the next `>`
# after each match, `(?![^<>]*>)`, told the same, but scanned a long text to its end for every
# match: a megabyte of ` \n` or `*` in one entry held the publish for an hour.)
# It writes tag names in lowercase.
_TAGS = re.compile(r"(<[^<>]*>)")
_PRE_ELEMENT = re.compile(r"(<pre\b.*?</pre\s*>)", re.DOTALL)
# kramdown's block-level elements (Kramdown::Parser::Html::Constants::HTML_BLOCK_ELEMENTS)
_BLOCK = (
    "address|article|aside|applet|body|blockquote|caption|col|colgroup|dd|div|dl|dt|fieldset|figcaption|"
    "footer|form|h[1-6]|header|hgroup|hr|html|head|iframe|legend|menu|li|main|map|nav|ol|optgroup|p|pre|"
    "section|summary|table|tbody|td|th|thead|tfoot|tr|ul"
)
# One opening after text or an inline tag on its line is shown as text (`&lt;div&gt;`):
# it must start a line.
_BLOCK_OPENING = re.compile(rf"<(?:{_BLOCK})\b")
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK})\b")
# Characters that start Markdown anywhere in a line: links, images, references and footnotes
# (`[`), attribute lists and extensions (`{`), tables (`|`), emphasis (`*`, `_`), code (`` ` ``),
# strike-through (`~`), math (`$`) and backslash escapes.
_MARKDOWN_CHAR = re.compile(r"[\[{|*_`~$\\]")
_REFERENCE = {c: f"&#{ord(c)};" for c in "[{|*_`~$\\"}
_LABEL_CHAR = re.compile(r"[{*_`~$]")  # in the footer's link label: the rest are backslash-escaped
# Whitespace Markdown reads and HTML does not: spaces ending a line (a hard break), four
# columns of indentation (a code block), blank lines (which end a paragraph, and an inline
# element in it).
# (Only from a run's first blank: tried at each of a long run's blanks not followed by a line
# end, it scanned the rest of the run each time, time squared in its length.)
_LINE_END_SPACE = re.compile(r"(?<![ \t])[ \t]+\n")
_INDENT = re.compile(r"\n(?: {4}|[ ]{0,3}\t)[ \t]*")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")
# At the start of a line (up to three spaces in): headings, lists, rules, setext
# underlines, definitions and the end-of-block mark.
_LINE_MARK = re.compile(r"\n( {0,3})(?:([#+=:^-])|(\d{1,9})([.)]))")


def _no_markdown(body: str) -> str:
    """The body as kramdown (Jekyll's Markdown) will show it: the sanitized HTML, not Markdown.

    kramdown reads the text between the tags as Markdown: `[x](javascript:…)` became a live
    link and `*x*{: onmouseover="…"}` an event handler, past the sanitizer; a line indented
    four spaces became a code block showing the next tags as text, a `<p>` after an image on
    its line was shown as text too, and `# x`, `- x`, `1. x`, `a | b` or `*x*` made headings,
    lists, tables and emphasis the feed never had: 8% of the corpus' posts read differently
    after kramdown, 0.2% now (an inline element holding a block, which kramdown cannot nest).
    So, in text only: every character that starts Markdown becomes a character reference,
    which shows the same and starts nothing; a block element after inline content starts a
    line; and the whitespace Markdown reads and HTML does not goes, except inside `<pre>`,
    where it is the text. Lines indented less and without Markdown (the reference post's)
    are left byte for byte.
    """
    parts = _PRE_ELEMENT.split(body)  # odd indices: <pre> elements
    for i, part in enumerate(parts):
        if i % 2:
            part = _in_text(part, _markdown_chars)
            parts[i] = ("\n" + part) if _after_inline(parts[i - 1], len(parts[i - 1])) else part
            continue
        part = _BLOCK_OPENING.sub(_on_its_line, "\n" + part if i == 0 else part)
        part = _in_text(part, _plain_text)
        parts[i] = part[1:] if i == 0 else part
    return "".join(parts)


def _in_text(html: str, fix: Callable[[str], str]) -> str:
    """`html` with `fix` applied to each run of text between its tags."""
    pieces = _TAGS.split(html)  # even indices: text
    for j in range(0, len(pieces), 2):
        if pieces[j]:
            pieces[j] = fix(pieces[j])
    return "".join(pieces)


def _markdown_chars(text: str) -> str:
    return _MARKDOWN_CHAR.sub(_reference, text)


def _plain_text(text: str) -> str:
    """Text outside <pre> as kramdown shows it: no Markdown character, and none of the
    whitespace or line marks Markdown reads."""
    text = _markdown_chars(text)
    if "\n" not in text:
        return text
    if " \n" in text or "\t\n" in text:  # (the search for spaces is slow where none end a line)
        text = _LINE_END_SPACE.sub("\n", text)
    text = _BLANK_LINES.sub("\n", _INDENT.sub("\n", text))
    return _LINE_MARK.sub(_line_mark, text)


def _reference(m: re.Match[str]) -> str:
    return _REFERENCE[m.group()]


def _after_inline(text: str, end: int) -> bool:
    """Whether `text[:end]`, spaces and tabs aside, ends in text or an inline tag: kramdown
    is then in a paragraph, where a block element is shown as text."""
    k = end
    while k and text[k - 1] in " \t":
        k -= 1
    if k == 0 or text[k - 1] in "\r\n":
        return False
    if text[k - 1] != ">":
        return True
    return not _BLOCK_TAG.match(text, text.rfind("<", 0, k))


def _on_its_line(m: re.Match[str]) -> str:
    return "\n" + m.group() if _after_inline(m.string, m.start()) else m.group()


def _line_mark(m: re.Match[str]) -> str:
    if m.group(2):
        return f"\n{m.group(1)}&#{ord(m.group(2))};"
    return f"\n{m.group(1)}{m.group(3)}&#{ord(m.group(4))};"


def _no_liquid(body: str) -> str:
    """Jekyll runs Liquid over post bodies: `{{`/`{%` from a source must not execute."""
    return body.replace("{{", "&#123;&#123;").replace("{%", "&#123;%")


def _attribution(body: str, name: str | None, zh: bool, words: dict[str, str]) -> str:
    """The optional "article source" line, unless the source's content already has one; in
    the reference's words on a Chinese site, in the site language's (`words`) on another."""
    name = one_line(name or "")
    if not name or "文章来源" in body or _HAS_SOURCE_LINE.search(body):
        return ""
    name = _no_liquid(html.escape(name, quote=False))
    text = f"（文章来源：{name}）" if zh else f"({words['source']}{words['colon']}{name})"
    # on its own line after text or an inline tag, where kramdown would show the tag as text
    return ("\n" if _after_inline(body, len(body)) else "") + f'<p class="em_media">{text}</p>'


def _media(post: Post, body: str) -> str:
    """The post's sounds and videos as players, and its pictures the body does not show, as
    the site's page gives them: an episode's Jekyll post had its description only (no link
    to the sound, often no link at all), a photo feed's an empty body. HTML blocks, each on
    its own line, which kramdown passes as they are."""
    enclosures = [e for e in post.enclosures if e.url.startswith(("http://", "https://"))]
    shown = pictures_shown(body, enclosures)
    out = []
    for e in enclosures:
        url = html.escape(web_url(feed_uri(e.url) or e.url) or e.url, quote=True)
        element = player(e.type)
        if element:
            out.append(f'<p><{element} controls preload="none" src="{url}"></{element}></p>')
        elif e.url in shown:
            # Mastodon's alt text, else none; its bidi controls closed, as the feeds' `title`
            alt = html.escape(bidi_closed(e.description or ""), quote=True)
            out.append(f'<p><img src="{url}" alt="{alt}" loading="lazy"></p>')
    if not out:
        return ""
    return ("\n" if body else "") + "\n".join(out)


def _own_language(post: Post, site_language: str) -> str | None:
    """The post's language when it is another than the site's (`ar` on an English site), as the
    site's pages state it: for `lang:` in the front matter, which Jekyll themes give the page
    (minima: `<html lang="{{ page.lang | default: site.lang }}">`). Without it an Arabic post
    of an English site was an English page, read by screen readers in an English voice.
    Another variety is another language too (`zh-TW` on a `zh-CN` site: traditional script).
    A post naming none (or one its text is evidently not in) whose letters are of another
    script than the site language's is `und`, undetermined (BCP 47), as its page says `lang=""`:
    the theme's `default` takes an empty value for none, and said the site's. None for a post
    in the site's language (the reference post: no new line) or naming none and written like it."""
    excerpt_of = post.summary if post.summary.strip() else post.content
    text = f"{post.title} {html_excerpt(excerpt_of)}"
    tag = stated_language(post.language, text)
    if tag is None:
        return None if written_in(site_language, text) else "und"
    return None if _same_language(tag, site_language) else tag


def _same_language(tag: str, site_language: str) -> bool:
    """Whether a post's language `tag` is the site's as far as a reader hears and sees it: the
    same language, in the same script (Chinese's told by its region, `zh-TW` traditional), and
    no other region when both name one (`en-GB` on an `en-US` site; `en-GB` on an `en` one is
    its language)."""
    a = _subtags(tag)
    b = _subtags(language_tag(site_language) or site_language)
    if a[0] != b[0] or (a[1] and b[1] and a[1] != b[1]):
        return False
    return not (a[2] and b[2] and a[2] != b[2])


def _subtags(tag: str) -> tuple[str, str | None, str | None]:
    """Primary language, script (Chinese's from its region when unsaid) and region of a tag."""
    parts = tag.replace("_", "-").lower().split("-")
    script = next((p for p in parts[1:3] if len(p) == 4 and p.isalpha()), None)
    region = next((p for p in parts[1:4] if (len(p) == 2 and p.isalpha()) or (len(p) == 3 and p.isdigit())), None)
    if parts[0] == "zh" and script is None:
        script = "hant" if region in ("tw", "hk", "mo") else "hans"
    return parts[0], script, region


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
    words = strings_for(language)
    tag_list = [t for t in (one_line(t) for t in tags) if t]
    lines = [
        "---",
        f"layout: {_scalar(layout)}",
        # none said: the site's word; an override it opens closed (a theme's `<title>` follows it with the site's name)
        f"title: {_quoted(bidi_closed(post.title or words['untitled']))}",
        f"date: {_local(post.published, timezone):%Y-%m-%d %H:%M:%S %z}",
        f"categories: {_scalar(category_slug)}",
    ]
    if any(" " in t for t in tag_list):  # Jekyll splits a string of tags at spaces: a list
        lines.append(f"tags: [{', '.join(_quoted(t) for t in tag_list)}]")
    elif tag_list:
        lines.append(f"tags: {_scalar(' '.join(tag_list))}")
    own = _own_language(post, language)
    if own:
        lines.append(f"lang: {_scalar(own)}")
    lines.append("---")
    body = _no_liquid(_no_markdown((post.content if post.content.strip() else post.summary).rstrip()))
    body += _no_liquid(_media(post, body))
    text = "\n".join(lines) + "\n" + body + _attribution(body, attribution, zh, words)
    if post.link:
        text += "\n\n" + _autolink(post.link)
    home = _protocol_relative(site_url)
    category_page = f"{home}category/{category_slug}.html"
    label = _link_label(back_label)
    if zh:
        footer = f"[返回{label}]({category_page})｜[返回首页]({home})"
    else:
        # `\|`: kramdown (Jekyll's Markdown) reads a line holding a bare `|` as a table row; the
        # site language's words (English ones were on every site but a Chinese one)
        back = words["back_to"].format(name=label)
        footer = f"[{back}]({category_page}) \\| [{_link_label(words['home'])}]({home})"
    return text + "\n\n" + footer
