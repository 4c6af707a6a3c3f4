"""OPML in and out: the sources by category as OPML 2.0, and OPML files merged into feeds.yaml.

Export is what readers import (and what `opml.xml` publishes): one outline per category,
a `type="rss"` outline per source with `xmlUrl`/`htmlUrl`. No `dateCreated`: the same
sources give the same bytes, so the published file only changes when the sources do.

Import takes OPML as readers really write it: Miniflux and FreshRSS nest feed outlines
in category outlines (RSSOwl nests folders in folders: the innermost names the category),
Inoreader-style files put a `category="/Tech,/News"` attribute on flat outlines, and some
exporters leave a bare `&` in an attribute, so parsing recovers what it can. The new lines
are written into the config's own text, where each list ends and indented as it is: every
line already there stays as it was (a YAML round trip, ruamel.yaml's, rewrote the file).
"""

from __future__ import annotations

import codecs
import contextlib
import html.entities
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from lxml import etree

from .. import PROJECT_URL
from ..config import SLUG_PATTERN, category_slug, fetchable_url, from_feed_scheme, request_key
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
# An HTML entity (`&eacute;`, `&nbsp;`): undeclared in XML, and the recovering parser drops it
# (`Caf&eacute;` read `Caf`); exporters that escape names as HTML write them. XML's own five stay.
_NAMED_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {b"amp", b"lt", b"gt", b"quot", b"apos"}


def _html_entity(match: re.Match[bytes]) -> bytes:
    """An HTML entity as character references, which need no declaration; others as they are."""
    name = match.group(1)
    text = None if name in _XML_ENTITIES else html.entities.html5.get(name.decode("ascii") + ";")
    return "".join(f"&#{ord(c)};" for c in text).encode("ascii") if text else match.group(0)


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
    # a control character in the site's or a category's name (`"\x1b"` in the YAML) made lxml
    # raise: `export-opml` and every `publish` (opml.xml) stopped at a traceback
    etree.SubElement(head, "title").text = clean_text(title)
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    for (name, _, feeds), slug in zip(categories, own, strict=True):
        folder = etree.SubElement(body, "outline", text=clean_text(name), title=clean_text(name))
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
    _E.ERR_RESOURCE_LIMIT,  # nested over 2048 deep: the parser stops there, and nothing after was read
    # an end tag for no open one (a folder's first line deleted by hand), or one left out:
    # recovery closed <body> there and the feeds after it were dropped, or moved into a folder
    _E.ERR_TAG_NAME_MISMATCH,
}


_MISMATCH = re.compile(r"Opening and ending tag mismatch: (\S+) line \d+ and (\S+)")


def _case_only(message: str) -> bool:
    """Whether a tag mismatch is only one of letter case (`<opml>` ... `</OPML>`): read as before."""
    names = _MISMATCH.match(message.strip())
    return names is not None and names[1].lower() == names[2].lower()


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
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding is not None:  # UTF-16/32 as UTF-8 (its BOM outweighs the declaration), to mend
        with contextlib.suppress(UnicodeDecodeError):  # as any file: a bare `&` cut `?a=1&b=2` to `?a=1=2`
            data = codecs.BOM_UTF8 + data.decode(encoding).encode("utf-8")
    if b"\x00" not in data[:4]:  # not UTF-16/32: a lone `&` is a byte we can fix in place
        data = _BARE_AMPERSAND.sub(b"&amp;", data)
        if b"<!ENTITY" not in data:  # a file declaring its own entities means its own
            data = _NAMED_ENTITY.sub(_html_entity, data)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as e:
        raise OpmlError(f"{origin}: not XML: {e}") from None
    if root is None or not isinstance(root.tag, str) or etree.QName(root).localname.lower() != "opml":
        raise OpmlError(f"{origin}: not an OPML file (no <opml> root element)")
    cut = next((e for e in parser.error_log if e.type in _CUT_OFF and not _case_only(e.message)), None)
    if cut is not None:  # what recovery would read of it is only part of the file
        raise OpmlError(f"{origin}: cut off or broken at line {cut.line}: {cut.message.strip()}; nothing imported")
    if not _ends_whole(data):  # recovery reads a cut-off file without a word about it, at times
        lines = data.count(b"\n") + 1
        raise OpmlError(f"{origin}: cut off or broken at line {lines}: it does not end with </opml>; nothing imported")
    body = next((el for el in root if _named(el, "body")), None)
    if body is None:
        raise OpmlError(f"{origin}: OPML file has no <body>")
    out: list[OpmlFeed] = []
    # depth first, in document order, without recursion: folders nested thousands deep (the
    # parser allows it, huge_tree) were a RecursionError traceback
    stack: list[tuple[Iterator[etree._Element], str | None, str | None]] = [(iter(body), None, None)]
    while stack:
        children, folder, slug = stack[-1]
        el = next(children, None)
        if el is None:
            stack.pop()
            continue
        if not _named(el, "outline"):
            continue
        if (_attr(el, "isComment") or "").lower() == "true":  # OPML 2.0: commented out, with all under it
            continue
        url = _attr(el, "xmlUrl")
        if url:
            if (_attr(el, "type") or "rss").lower() not in _NOT_FEEDS:
                out.append(
                    OpmlFeed(
                        url=url,
                        title=_feed_name(el, url),
                        html_url=_attr(el, "htmlUrl"),
                        category=folder or _category_attr(_attr(el, "category")),
                        category_slug=slug if folder else None,
                    )
                )
            # outlines under a feed's are feeds too, in the folder it sits in: they were lost
            stack.append((iter(el), folder, slug))
            continue
        name = _attr(el, "text") or _attr(el, "title")
        own = (el.get(SLUG_ATTRIBUTE) or "").strip()
        if name:
            stack.append((iter(el), name, own if SLUG_PATTERN.fullmatch(own) else None))
        else:
            stack.append((iter(el), folder, slug))
    return out


def _named(el: etree._Element, name: str) -> bool:
    """Whether `el` is an element of that name, whatever its case or namespace: an OPML in a
    default namespace (`xmlns="http://opml.org/spec2"`) was said to have no <body>."""
    return isinstance(el.tag, str) and etree.QName(el).localname.lower() == name


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


def _scalar(value: str, flow: bool = False) -> str:
    """`value` as feeds.yaml's reader (PyYAML, YAML 1.1) reads it back as that very string:
    plain where it can be (`Real Python`, a URL), else double-quoted: `Off`, `yes`, `1:30`
    read as a boolean or a number plain, and `a: b` or `#x` as something else again."""
    emitter = yaml.emitter.Emitter(io.StringIO(), allow_unicode=True)
    analysis = emitter.analyze_scalar(value)
    plain = analysis.allow_flow_plain if flow else analysis.allow_block_plain
    resolved = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))
    if plain and not analysis.multiline and resolved == "tag:yaml.org,2002:str" and not reads_as_another_type(value):
        return value
    return yaml.safe_dump(value, default_style='"', allow_unicode=True, width=1 << 30).rstrip("\n")


def _spaces_encoded(url: str) -> str:
    """`url` with the spaces after its host as %20, as a request sends them: a search feed's
    `?q=climate change` was skipped as "not an absolute http(s) URL" (the config takes it);
    one in the host is left for the config's check to name."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if " " not in parts.path + parts.query + parts.fragment:
        return url
    path, query, fragment = (part.replace(" ", "%20") for part in (parts.path, parts.query, parts.fragment))
    return parts._replace(path=path, query=query, fragment=fragment).geturl()


def _refusal(url: str) -> str | None:
    """Why the config would refuse `url` as a source's, or None. Such a feed is skipped: added,
    it failed the config check of the merged text, and the whole file was refused, the error
    naming a line of a config that was never written (a bracket out of place: a traceback)."""
    try:
        parts = urlsplit(url)
    except ValueError as e:  # `Invalid IPv6 URL`
        return f"not a valid URL ({e})"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "not an absolute http(s) URL"
    try:
        fetchable_url(url)  # the host and port, as `check` sees them
    except ValueError as e:
        return str(e)
    return None


@dataclass
class _Category:
    """A category of the config (`node` is where it is written) or one the import adds."""

    name: str
    slug: str | None
    urls: list[str]
    node: yaml.MappingNode | None = None
    added: list[tuple[str, str | None]] = field(default_factory=list)  # (url, name)


def merge_into_config(text: str, feeds: Iterable[OpmlFeed], category: str | None = None) -> tuple[str, ImportReport]:
    """`text` (a feeds.yaml) with the feeds added to their categories, and what was done.

    `category` puts every feed in that one category; otherwise each goes to the category its
    OPML outline names, or `Imported`. A category is matched by name or slug, else appended.
    A feed already listed in its category is left alone (importing twice changes nothing).

    The new lines are written into the file's own text, in the indentation its lists use;
    every line of it stays as it was. (A round trip through ruamel.yaml wrote the whole file
    anew: it dropped `null`s and quotes, re-indented the lists of a file mixing two styles,
    and moved comments.)
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.constructor.SafeConstructor().construct_document(root) if root is not None else {}
    except yaml.YAMLError as e:
        raise OpmlError(f"cannot read the config as YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(root, (yaml.MappingNode, type(None))):
        raise OpmlError("the config is not a YAML mapping")
    raw_cats = data.get("categories")
    if raw_cats is not None and not isinstance(raw_cats, list):
        raise OpmlError("the config's `categories` is not a list")
    cats_node = _value_node(root, "categories")
    cat_nodes = cats_node.value if isinstance(cats_node, yaml.SequenceNode) else []
    cats: list[_Category] = []
    for i, raw in enumerate(raw_cats or []):
        raw = raw if isinstance(raw, dict) else {}
        sources = raw.get("sources") if isinstance(raw.get("sources"), list) else []
        urls = [
            from_feed_scheme(str(s.get("url", "")).strip()) for s in sources if isinstance(s, dict) and s.get("url")
        ]
        node = cat_nodes[i] if i < len(cat_nodes) and isinstance(cat_nodes[i], yaml.MappingNode) else None
        cats.append(_Category(" ".join(str(raw.get("name", "")).split()), raw.get("slug"), urls, node))
    report = ImportReport()
    configured = {url for cat in cats for url in cat.urls}
    shown_as = secret_forms(configured)
    # each configured feed by the request its URL makes: the OPML may spell it otherwise
    # (`https://LWN.net:443/x`, a #fragment), and added so it was polled and stored twice
    spelled: dict[str, str] = {}
    for url in (u for cat in cats for u in cat.urls):
        spelled.setdefault(request_key(url), url)
    for feed in feeds:
        url = _spaces_encoded(from_feed_scheme(feed.url.strip()))  # the config would read it so: store it so
        why = _refusal(url)
        if why is not None:
            report.skipped.append((url, why))
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
        if url not in configured:
            url = spelled.setdefault(request_key(url), url)  # as the config (or this file before) spells it
        homes = [cat for cat in cats if url in cat.urls]
        if not category and not (feed.category or "").strip() and homes:
            # outside any folder (newsboat's `-e`, a flat list) it names no category: a feed
            # configured already is in its own, not listed again in `Imported` (whose feeds
            # then republished every feed a flat export of this config brought back)
            report.present.append((url, homes[0].name))
            continue
        name = " ".join((category or feed.category or DEFAULT_CATEGORY).split()) or DEFAULT_CATEGORY
        slug = None if category else feed.category_slug
        target = _find_category(cats, name, slug)
        if target is None:
            target = _Category(name, slug, [])
            cats.append(target)
            report.new_categories.append(name)
        if url in target.urls:
            report.present.append((url, target.name))
            continue
        # a source's other listings take its first one's name; a title that is the URL names nothing
        # (an older export's, or a reader's for a feed it never fetched), and as `name:` it hid the
        # feed's own title in every output for good
        named = feed.title and url not in configured and not _is_its_url(feed.title, feed.url, url)
        target.urls.append(url)
        target.added.append((url, feed.title if named else None))
        configured.add(url)
        report.added.append((url, target.name))
    if not report.added:
        return text, report
    new_text = _ConfigText(text, root, cats_node).with_additions(cats)
    _check_merged(new_text, cats)
    return new_text, report


def _url_of(source: dict) -> str:
    """A listed source's URL as the config reads it."""
    return from_feed_scheme(str(source.get("url", "")).strip())


def _value_node(mapping: yaml.Node | None, key: str) -> yaml.Node | None:
    """The node of `key`'s value in a mapping node, as written in it (None if it is not)."""
    if not isinstance(mapping, yaml.MappingNode):
        return None
    found = [v for k, v in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == key]
    return found[-1] if found else None


def _key_node(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    found = [k for k, _ in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == key]
    return found[-1] if found else None


class _ConfigText:
    """The config's text with lines inserted where a list ends: after its last item's last
    line and the comments indented under that item (a commented-out key of it), before the
    comments and blank lines that lead to what follows the list. Each list's own layout is
    followed: where its dashes stand, how far its items' keys are from them."""

    def __init__(self, text: str, root: yaml.Node | None, cats_node: yaml.Node | None) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.root = root
        self.cats_node = cats_node
        self.inserts: list[tuple[int, str]] = []  # (index in text, text to insert there)
        self.replaces: list[tuple[int, int, str]] = []

    # --------------------------------------------------------------- positions

    def index(self, mark: yaml.Mark) -> int:
        """A mark's place in the text, from its line and column (libyaml counts bytes, not so these)."""
        if mark.line >= len(self.lines):
            return len(self.text)
        return self.starts[mark.line] + mark.column

    def _blank_or_comment(self, line: int) -> bool:
        stripped = self.lines[line].strip()
        return not stripped or stripped.startswith("#")

    def end_of(self, node: yaml.Node, dash_column: int) -> int:
        """Where lines go after a block node: the start of the line after its last content line,
        and after the comment lines right below that are indented further than `dash_column`."""
        end = node.end_mark
        line = end.line
        if line >= len(self.lines) or not self.lines[line][: end.column].strip():
            line -= 1  # the node ends where the next token starts: at that line's indentation
        while line > node.start_mark.line and self._blank_or_comment(line):
            line -= 1
        line += 1
        while line < len(self.lines):
            current = self.lines[line]
            stripped = current.lstrip(" ")
            if not stripped.startswith("#") or len(current) - len(stripped) <= dash_column:
                break
            line += 1
        return self.starts[line] if line < len(self.lines) else len(self.text)

    def line_text(self, mark: yaml.Mark) -> str:
        return self.lines[mark.line] if mark.line < len(self.lines) else ""

    # --------------------------------------------------------------- layout

    def item_layout(self, seq: yaml.SequenceNode) -> tuple[int, int]:
        """(dash column, item key column) of a block sequence, from its first mapping item."""
        dash = seq.start_mark.column
        for item in seq.value:
            if isinstance(item, yaml.MappingNode) and not item.flow_style:
                if item.start_mark.line == seq.start_mark.line or item.start_mark.column > dash:
                    return dash, max(item.start_mark.column, dash + 2)
        return dash, dash + 2

    def nested_layout(self) -> tuple[int, int]:
        """(offset of `sources:`' dashes from its key, its items' keys from the dash), as the
        file's categories write them; else as its `categories:` list does; else 2 and 2."""
        cats = self.cats_node.value if isinstance(self.cats_node, yaml.SequenceNode) else []
        for cat in cats:
            key = _key_node(cat, "sources") if isinstance(cat, yaml.MappingNode) else None
            seq = _value_node(cat, "sources") if key is not None else None
            if isinstance(seq, yaml.SequenceNode) and not seq.flow_style and seq.value:
                dash, keys = self.item_layout(seq)
                return dash - key.start_mark.column, keys - dash
        if isinstance(self.cats_node, yaml.SequenceNode) and not self.cats_node.flow_style and self.cats_node.value:
            key = _key_node(self.root, "categories")
            dash, keys = self.item_layout(self.cats_node)
            return max(dash - key.start_mark.column, 0), keys - dash
        return 2, 2

    # --------------------------------------------------------------- rendering

    @staticmethod
    def source_lines(url: str, name: str | None, dash: int, keys: int) -> str:
        lead = " " * dash + "-" + " " * (keys - dash - 1)
        out = f"{lead}url: {_scalar(url)}\n"
        return out + (f"{' ' * keys}name: {_scalar(name)}\n" if name else "")

    def category_lines(self, cat: _Category, dash: int, keys: int) -> str:
        offset, inner = self.nested_layout()
        lead = " " * dash + "-" + " " * (keys - dash - 1)
        out = f"{lead}name: {_scalar(cat.name)}\n"
        if cat.slug:
            out += f"{' ' * keys}slug: {_scalar(cat.slug)}\n"
        out += f"{' ' * keys}sources:\n"
        for url, name in cat.added:
            out += self.source_lines(url, name, keys + offset, keys + offset + inner)
        return out

    @staticmethod
    def flow_source(url: str, name: str | None) -> str:
        return "{url: " + _scalar(url, flow=True) + (f", name: {_scalar(name, flow=True)}" if name else "") + "}"

    def flow_category(self, cat: _Category) -> str:
        slug = f", slug: {_scalar(cat.slug, flow=True)}" if cat.slug else ""
        sources = ", ".join(self.flow_source(u, n) for u, n in cat.added)
        return f"{{name: {_scalar(cat.name, flow=True)}{slug}, sources: [{sources}]}}"

    def insert(self, index: int, new: str) -> None:
        if index == len(self.text) and self.text and not self.text.endswith("\n"):
            new = "\n" + new  # a file without a last line end: its last line stays whole
        self.inserts.append((index, new))

    def add_to_flow(self, seq: yaml.SequenceNode, items: list[str]) -> None:
        """Items appended inside a `[...]` list: after its last item, or in an empty one."""
        if seq.value:
            self.inserts.append((self.index(seq.value[-1].end_mark), "".join(", " + i for i in items)))
        else:
            self.inserts.append((self.index(seq.start_mark) + 1, ", ".join(items)))

    def under_key(self, key: yaml.Node, value: yaml.Node, block: str) -> None:
        """`block` as the value of a key written with none (`sources:`), or null (`sources: ~`)."""
        start, end = self.index(value.start_mark), self.index(value.end_mark)
        if end > start:  # `null` or `~`: the block replaces it
            self.replaces.append((start, end, ""))
        line_end = (
            self.starts[key.start_mark.line + 1] if key.start_mark.line + 1 < len(self.starts) else len(self.text)
        )
        self.insert(min(line_end, len(self.text)), block)

    def add_sources(self, cat: _Category) -> None:
        node = cat.node
        assert node is not None
        key = _key_node(node, "sources")
        seq = _value_node(node, "sources")
        if isinstance(seq, yaml.SequenceNode) and seq.flow_style:
            self.add_to_flow(seq, [self.flow_source(u, n) for u, n in cat.added])
            return
        if isinstance(seq, yaml.SequenceNode) and seq.value:
            dash, keys = self.item_layout(seq)
            block = "".join(self.source_lines(u, n, dash, keys) for u, n in cat.added)
            self.insert(self.end_of(seq, dash), block)
            return
        if node.flow_style:
            raise OpmlError(f"cannot add to category {cat.name}: it is written as a {{...}} mapping without sources")
        offset, inner = self.nested_layout()
        if key is not None and isinstance(seq, yaml.ScalarNode):  # `sources:` with none under it
            dash = key.start_mark.column + offset
            block = "".join(self.source_lines(u, n, dash, dash + inner) for u, n in cat.added)
            self.under_key(key, seq, block)
            return
        if key is not None:
            raise OpmlError(f"cannot add to category {cat.name}: its `sources` is not a list")
        column = node.start_mark.column  # no `sources:` key: one is added, as the category's last
        block = f"{' ' * column}sources:\n" + "".join(
            self.source_lines(u, n, column + offset, column + offset + inner) for u, n in cat.added
        )
        dash = self.cats_node.start_mark.column if isinstance(self.cats_node, yaml.SequenceNode) else 0
        self.insert(self.end_of(node, dash), block)

    def add_categories(self, new: list[_Category]) -> None:
        seq = self.cats_node
        if isinstance(seq, yaml.SequenceNode) and seq.flow_style:
            self.add_to_flow(seq, [self.flow_category(c) for c in new])
            return
        if isinstance(seq, yaml.SequenceNode) and seq.value:
            dash, keys = self.item_layout(seq)
            last = seq.value[-1]
            # categories set apart by a blank line: so is the new one
            above = last.start_mark.line - 1
            gap = "\n" if above >= 0 and not self.lines[above].strip() else ""
            block = "".join(gap + self.category_lines(c, dash, keys) for c in new)
            self.insert(self.end_of(seq, dash), block)
            return
        indent = _mapping_indent(self.text)
        block = "".join(self.category_lines(c, indent, indent + 2) for c in new)
        key = _key_node(self.root, "categories") if self.root is not None else None
        if key is not None and isinstance(seq, yaml.ScalarNode):  # `categories:` with none under it
            self.under_key(key, seq, block)
            return
        if key is not None:
            raise OpmlError("the config's `categories` is not a list")
        self.insert(len(self.text), "categories:\n" + block)

    def with_additions(self, cats: list[_Category]) -> str:
        for cat in cats:
            if cat.node is not None and cat.added:
                self.add_sources(cat)
        new = [c for c in cats if c.node is None and c.added]
        if new:
            self.add_categories(new)
        # in the order made where two land at one place: a category's new sources, then new categories
        edits = sorted([(i, i, t) for i, t in self.inserts] + self.replaces, key=lambda e: e[0])
        out, done = [], 0
        for start, end, new_text in edits:
            out += [self.text[done:start], new_text]
            done = max(done, end, start)
        return "".join(out) + self.text[done:]


def _check_merged(text: str, cats: list[_Category]) -> None:
    """The merged text read back: each category lists what it listed and what was added, in
    that order. A layout the insertion misread would otherwise write a config that reads as
    something else (the CLI's config check catches an invalid one, not a valid wrong one)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise OpmlError(f"the config's layout defeated the import (nothing imported): {e}") from None
    raw = data.get("categories") if isinstance(data, dict) else None
    got = [
        [_url_of(s) for s in (c.get("sources") or []) if isinstance(s, dict) and s.get("url")]
        for c in (raw or [])
        if isinstance(c, dict)
    ]
    if got != [c.urls for c in cats]:
        raise OpmlError("the config's layout defeated the import, nothing imported: add the feeds by hand")


def _is_its_url(title: str, written: str, url: str) -> bool:
    """Whether an outline's title is its feed's URL: as the OPML writes it, as the config
    reads it, or masked (`token=***`, no user info) as an export or `status` shows it."""
    title = title.strip()
    forms = {written.strip(), url, public_url(url), masked(url)}
    return title in forms or request_key(title) in {request_key(f) for f in forms if f}


def _mapping_indent(text: str) -> int:
    """How far the file indents a nested mapping (`site:` then `  title:`); 2 if it never does."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for above, line in zip(lines, lines[1:], strict=False):
        if not above.startswith((" ", "-")) and above.rstrip().endswith(":"):
            stripped = line.lstrip()
            if line.startswith(" ") and not stripped.startswith("- "):
                return len(line) - len(stripped)
    return 2


def _find_category(cats: list[_Category], name: str, slug: str | None = None) -> _Category | None:
    """The category with `slug`, where the OPML gives one (it is the category's URL: two
    categories may share a name); else the one named `name`, else the one with its slug."""
    wanted = slug or category_slug(name)
    for cat in cats:
        if (cat.slug or category_slug(cat.name)) == wanted or (slug is None and cat.name == name):
            return cat
    return None


@dataclass(frozen=True)
class ConfigLayout:
    """How the config file's bytes are laid out beyond what YAML sees: a UTF-8 byte order mark
    and CRLF line ends. The text is edited with LF ends and no BOM (the new lines are written
    so), and given both back before it is written: a Windows-edited config came back all LF,
    no BOM."""

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
    old text. Its owner is kept too where we may (root may): `import-opml` run as root on the
    daemon's 0600 config left it root's, and the daemon's user could read it no more."""
    path = Path(os.path.realpath(path))
    st = path.stat()
    mode = st.st_mode & 0o7777
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if hasattr(os, "fchown") and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):  # not root: the file is ours, as before
                    os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fchmod(fh.fileno(), mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
