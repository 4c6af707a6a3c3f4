"""OPML in and out: the sources by category as OPML 2.0, and OPML files merged into feeds.yaml.

Export is what readers import (and what `opml.xml` publishes): one outline per category,
a `type="rss"` outline per source with `xmlUrl`/`htmlUrl`. No `dateCreated`: the same
sources give the same bytes, so the published file only changes when the sources do.

Import takes OPML as readers really write it: Miniflux and FreshRSS nest feed outlines
in category outlines (RSSOwl nests folders in folders: the innermost names the category),
Inoreader-style files put a `category="/Tech,/News"` attribute on flat outlines, and some
exporters leave a bare `&` in an attribute, so parsing recovers what it can. The config is
edited with ruamel.yaml's round-trip mode, so the user's comments, order and quoting stay.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from .. import PROJECT_URL
from ..config import SLUG_PATTERN, category_slug, from_feed_scheme, request_key
from ..credentials import looks_masked, masked, public_url, secret_forms
from .feeds import clean_text, web_url
from .jekyll import reads_as_another_type

__all__ = [
    "ConfigLayout",
    "DEFAULT_CATEGORY",
    "ImportReport",
    "OpmlError",
    "OpmlFeed",
    "merge_into_config",
    "parse_opml",
    "render_opml",
    "write_config_text",
]

DEFAULT_CATEGORY = "Imported"
# `&` that starts no entity: invalid XML, yet common in exported feed URLs (`?a=1&b=2`).
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z][A-Za-z0-9._-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
# Outline types that are not feeds we can poll (FreshRSS web scraping, dynamic OPML, links).
_NOT_FEEDS = {"html+xpath", "xml+xpath", "json+dotnotation", "html+xpath+json+dotnotation", "link", "include"}


class OpmlError(Exception):
    """The file is not OPML we can read."""


# A category's `slug:`, on its outline, where it is not the one its name gives: the slug is
# the category's URL (`/<slug>/feed.xml`), so a config rebuilt from our OPML keeps the URLs
# its subscribers use. Readers ignore attributes in namespaces they do not know.
_NAMESPACE = f"{PROJECT_URL}/opml"
SLUG_ATTRIBUTE = f"{{{_NAMESPACE}}}slug"


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str | None = None
    html_url: str | None = None
    category: str | None = None
    category_slug: str | None = None  # the category's own `slug:`, where the OPML gives one


# ------------------------------------------------------------------------------ export


def render_opml(title: str, categories: Sequence[tuple[str, str, Sequence[OpmlFeed]]]) -> bytes:
    """OPML 2.0: one outline per category (name, slug, feeds) holding its feeds, in config
    order; the slug is written where the name would not give it back."""
    own = [slug if slug != category_slug(name) else None for name, slug, _ in categories]
    root = etree.Element("opml", version="2.0", nsmap={"aggregator": _NAMESPACE} if any(own) else None)
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    for (name, _, feeds), slug in zip(categories, own, strict=True):
        folder = etree.SubElement(body, "outline", text=name, title=name)
        if slug:
            folder.set(SLUG_ATTRIBUTE, slug)
        for feed in feeds:
            # what a feed said of itself may hold characters XML cannot (lxml raises on them)
            label = clean_text(feed.title)
            url = clean_text(feed.url)
            # OPML requires `text`: the URL where the source has no name yet. No `title` then: a
            # title is a name, and readers (and import-opml) took the URL for the feed's name.
            attrs = {"type": "rss", "text": label or url, **({"title": label} if label else {}), "xmlUrl": url}
            if web_url(feed.html_url):  # as stored: any scheme
                attrs["htmlUrl"] = clean_text(feed.html_url)
            etree.SubElement(folder, "outline", attrs)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# ------------------------------------------------------------------------------ import


def _attr(el: etree._Element, name: str) -> str | None:
    """An attribute by name, whatever its case (`xmlUrl`, `xmlurl`, `XMLURL` all occur)."""
    wanted = name.lower()
    for key, value in el.attrib.items():
        if isinstance(key, str) and key.lower() == wanted:
            value = " ".join(value.split())
            return value or None
    return None


def _category_attr(value: str | None) -> str | None:
    """OPML 2.0 `category`: comma-separated, slash-delimited; the first one's last step."""
    for part in (value or "").split(","):
        steps = [s.strip() for s in part.split("/") if s.strip()]
        if steps:
            return steps[-1]
    return None


# Parse errors that mean the file ends early or a tag is left open: the parser recovers from
# bare ampersands and unknown entities (common in real exports), not from these, which a
# partial download or a full disk leave behind.
_E = etree.ErrorTypes
_CUT_OFF = {
    _E.ERR_DOCUMENT_END,
    _E.ERR_TAG_NOT_FINISHED,
    _E.ERR_GT_REQUIRED,
    _E.ERR_LTSLASH_REQUIRED,
    _E.ERR_ATTRIBUTE_NOT_FINISHED,
    _E.ERR_ATTRIBUTE_WITHOUT_VALUE,
    _E.ERR_LITERAL_NOT_FINISHED,
}


_END_TAG = re.compile(rb"</\s*(?:[\w.-]+:)?opml\s*>\Z", re.I)
_BOMS = (  # UTF-32's little-endian BOM starts as UTF-16's: it comes first
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _ends_whole(data: bytes) -> bool:
    """Whether the document ends with its root's end tag (then whitespace, comments or PIs)."""
    if b"\x00" in data[:4]:  # UTF-16/32: read as text first
        encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
        try:
            data = data.decode(encoding or "utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return True  # cannot tell: the parser's errors have to do
    end = len(data)
    while True:  # step back over what may follow the root
        data = data[:end].rstrip()
        end = len(data)
        if data.endswith(b"-->"):
            end = data.rfind(b"<!--")
        elif data.endswith(b"?>"):
            end = data.rfind(b"<?")
        else:
            break
        if end < 0:
            return False
    return _END_TAG.search(data[-64:]) is not None


def parse_opml(data: bytes, origin: str = "OPML") -> list[OpmlFeed]:
    """Every feed outline with the category it sits in; raises OpmlError naming `origin`."""
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    if b"\x00" not in data[:4]:  # not UTF-16/32: a lone `&` is a byte we can fix in place
        data = _BARE_AMPERSAND.sub(b"&amp;", data)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as e:
        raise OpmlError(f"{origin}: not XML: {e}") from None
    if root is None or not isinstance(root.tag, str) or etree.QName(root).localname.lower() != "opml":
        raise OpmlError(f"{origin}: not an OPML file (no <opml> root element)")
    cut = next((e for e in parser.error_log if e.type in _CUT_OFF), None)
    if cut is not None:  # what recovery would read of it is only part of the file
        raise OpmlError(f"{origin}: cut off or broken at line {cut.line}: {cut.message.strip()}; nothing imported")
    if not _ends_whole(data):  # recovery reads a cut-off file without a word about it, at times
        lines = data.count(b"\n") + 1
        raise OpmlError(f"{origin}: cut off or broken at line {lines}: it does not end with </opml>; nothing imported")
    body = next((el for el in root if isinstance(el.tag, str) and el.tag.lower() == "body"), None)
    if body is None:
        raise OpmlError(f"{origin}: OPML file has no <body>")
    out: list[OpmlFeed] = []

    def walk(parent: etree._Element, folder: str | None, slug: str | None) -> None:
        for el in parent:
            if not isinstance(el.tag, str) or el.tag.lower() != "outline":
                continue
            url = _attr(el, "xmlUrl")
            if url:
                kind = (_attr(el, "type") or "rss").lower()
                if kind in _NOT_FEEDS:
                    continue
                out.append(
                    OpmlFeed(
                        url=url,
                        title=_feed_name(el, url),
                        html_url=_attr(el, "htmlUrl"),
                        category=folder or _category_attr(_attr(el, "category")),
                        category_slug=slug if folder else None,
                    )
                )
            else:
                name = _attr(el, "text") or _attr(el, "title")
                own = (el.get(SLUG_ATTRIBUTE) or "").strip()
                if name:
                    walk(el, name, own if SLUG_PATTERN.fullmatch(own) else None)
                else:
                    walk(el, folder, slug)

    walk(body, None, None)
    return out


def _feed_name(el: etree._Element, url: str) -> str | None:
    """The outline's `title`, else its `text`; but not one that is its URL where the other is
    a name: exporters that knew no name put the URL in one of them, and the name was lost."""
    names = [n for n in (_attr(el, "title"), _attr(el, "text")) if n]
    named = [n for n in names if not _is_its_url(n, url, from_feed_scheme(url.strip()))]
    return (named or names or [None])[0]


@dataclass
class ImportReport:
    added: list[tuple[str, str]] = field(default_factory=list)  # (url, category name)
    present: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (url, why)
    new_categories: list[str] = field(default_factory=list)


def _yaml() -> YAML:
    y = YAML()  # round-trip: comments, key order, flow style and quotes survive
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a user's long lines
    return y


def _text(value: str) -> str:
    """`value` as a string feeds.yaml's reader gives back: ruamel writes YAML 1.2, where `Off`,
    `yes` or `1:30` are text and so go unquoted, but the config is read as YAML 1.1 (PyYAML),
    where they are a boolean or a number, and `check` refuses them. Quoted, they stay text."""
    return DoubleQuotedScalarString(value) if reads_as_another_type(value) else value


def _is_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in url)


def merge_into_config(text: str, feeds: Iterable[OpmlFeed], category: str | None = None) -> tuple[str, ImportReport]:
    """`text` (a feeds.yaml) with the feeds added to their categories, and what was done.

    `category` puts every feed in that one category; otherwise each goes to the category its
    OPML outline names, or `Imported`. A category is matched by name or slug, else appended.
    A feed already listed in its category is left alone (importing twice changes nothing).
    """
    y = _yaml()
    try:
        # read with the dumping YAML's own settings: load_yaml_guess_indent's reader keeps no
        # quotes, and `name: "yes"` came back bare: a boolean to the config's reader
        _, indent, block_seq_indent = load_yaml_guess_indent(text)
        data = y.load(text)
    except YAMLError as e:
        raise OpmlError(f"cannot read the config as YAML: {e}") from None
    if not isinstance(data, CommentedMap):
        raise OpmlError("the config is not a YAML mapping")
    offset = block_seq_indent if block_seq_indent is not None else 0
    y.indent(mapping=_mapping_indent(text), sequence=max(indent or 2, offset + 2), offset=offset)

    cats = data.get("categories")
    if cats is None:
        cats = CommentedSeq()
        data["categories"] = cats
    if not isinstance(cats, list):
        raise OpmlError("the config's `categories` is not a list")
    report = ImportReport()
    configured = _configured_urls(cats)
    shown_as = secret_forms(configured)
    for feed in feeds:
        url = from_feed_scheme(feed.url.strip())  # the config would read it so: store it so
        if not _is_http(url):
            report.skipped.append((url, "not an absolute http(s) URL"))
            continue
        if url not in configured and url in shown_as:  # our own export of a source with a secret
            real = shown_as[url]
            if len(real) > 1:
                why = f"its secret was masked on export, and {len(real)} configured sources export as it"
                report.skipped.append((url, why + ": add the one meant by hand"))
                continue
            url = next(iter(real))
        elif url not in configured and looks_masked(url):
            why = "its secret was masked (***) on export and cannot be fetched: add it with its secret by hand"
            report.skipped.append((url, why))
            continue
        name = " ".join((category or feed.category or DEFAULT_CATEGORY).split()) or DEFAULT_CATEGORY
        slug = None if category else feed.category_slug
        target = _find_category(cats, name, slug)
        if target is None:
            fields = [("name", _text(name))] + ([("slug", _text(slug))] if slug else [])
            target = CommentedMap([*fields, ("sources", CommentedSeq())])
            cats.append(target)
            report.new_categories.append(name)
        sources = target.get("sources")
        if sources is None:
            sources = CommentedSeq()
            target["sources"] = sources
        if any(isinstance(s, dict) and from_feed_scheme(str(s.get("url", "")).strip()) == url for s in sources):
            report.present.append((url, str(target.get("name"))))
            continue
        entry = CommentedMap([("url", url)])
        # a source's other listings take its first one's name; a title that is the URL names nothing
        # (an older export's, or a reader's for a feed it never fetched), and as `name:` it hid the
        # feed's own title in every output for good
        if feed.title and url not in configured and not _is_its_url(feed.title, feed.url, url):
            entry["name"] = _text(feed.title)
        configured.add(url)
        if sources:
            _move_trailing_comment(sources[-1], entry)
        sources.append(entry)
        report.added.append((url, str(target.get("name"))))
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue(), report


def _is_its_url(title: str, written: str, url: str) -> bool:
    """Whether an outline's title is its feed's URL: as the OPML writes it, as the config
    reads it, or masked (`token=***`, no user info) as an export or `status` shows it."""
    title = title.strip()
    forms = {written.strip(), url, public_url(url), masked(url)}
    return title in forms or request_key(title) in {request_key(f) for f in forms if f}


def _configured_urls(cats: list) -> set[str]:
    """Every source URL the config lists, in any category, as the config reads it."""
    return {
        from_feed_scheme(str(src.get("url", "")).strip())
        for cat in cats
        if isinstance(cat, dict) and isinstance(cat.get("sources"), list)
        for src in cat["sources"]
        if isinstance(src, dict) and src.get("url")
    }


def _mapping_indent(text: str) -> int:
    """How far the file indents a nested mapping (`site:` then `  title:`); 2 if it never does."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for above, line in zip(lines, lines[1:], strict=False):
        if not above.startswith((" ", "-")) and above.rstrip().endswith(":"):
            stripped = line.lstrip()
            if line.startswith(" ") and not stripped.startswith("- "):
                return len(line) - len(stripped)
    return 2


def _move_trailing_comment(previous: object, entry: CommentedMap) -> None:
    """Blank lines and comments after the last list item belong before whatever follows the
    list: keep them after the item appended to it rather than between the two items."""
    node = previous
    slots = []
    while isinstance(node, CommentedMap) and node:
        key = list(node.keys())[-1]
        slots.append((node, key))
        node = node[key]
        if isinstance(node, CommentedSeq) and node:
            node = node[-1]
    for holder, key in reversed(slots):
        item = holder.ca.items.get(key)
        if item and len(item) > 2 and item[2] is not None:
            token = item[2]
            item[2] = None
            entry.ca.items[list(entry.keys())[-1]] = [None, None, token, None]
            return


def _find_category(cats: list, name: str, slug: str | None = None) -> CommentedMap | None:
    """The category with `slug`, where the OPML gives one (it is the category's URL: two
    categories may share a name); else the one named `name`, else the one with its slug."""
    wanted = slug or category_slug(name)
    for cat in cats:
        if not isinstance(cat, dict):
            continue
        cat_name = " ".join(str(cat.get("name", "")).split())
        if (cat.get("slug") or category_slug(cat_name)) == wanted or (slug is None and cat_name == name):
            return cat
    return None


@dataclass(frozen=True)
class ConfigLayout:
    """How the config file's bytes are laid out beyond what YAML sees: a UTF-8 byte order mark
    and CRLF line ends. The text is edited with LF ends and no BOM (ruamel writes those), and
    given both back before it is written: a Windows-edited config came back all LF, no BOM."""

    bom: bool = False
    newline: str = "\n"

    @classmethod
    def read(cls, data: bytes) -> tuple[str, ConfigLayout]:
        """The text of a config file's bytes (LF ends, no BOM), and its layout."""
        bom = data.startswith(codecs.BOM_UTF8)
        text = data.decode("utf-8-sig" if bom else "utf-8")
        crlf = text.count("\r\n")
        newline = "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"  # the commoner of the two
        return text.replace("\r\n", "\n"), cls(bom, newline)

    def apply(self, text: str) -> str:
        """`text` (LF ends) as the file had it."""
        text = text.replace("\r\n", "\n")
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return ("\ufeff" if self.bom else "") + text


def write_config_text(path: Path, text: str) -> None:
    """Replace the config atomically, keeping its permissions (it may hold API keys).

    A config that is a symlink (into a checkout of the site's repository) has its target
    replaced: renamed over the link itself, the link became a copy and the target kept the
    old text."""
    path = Path(os.path.realpath(path))
    mode = path.stat().st_mode & 0o7777
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
