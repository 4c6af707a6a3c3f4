"""The fast parse path: well-formed RSS/Atom/RDF read with lxml into feedparser's entry shape.

feedparser spends ~100× the time of an XML parse on bookkeeping (a SAX state machine in
Python, its own sanitizer and URI resolver). For a well-formed feed we parse the bytes
with libxml2 and walk the tree once, reproducing what feedparser would have stored for
every key the normalizer reads (ids and their relative-URI resolution, the guid-as-link
rule, first-title-wins, description-as-content, the utf-8/cp1252 repairs, dates through
feedparser's own date parser), so a post gets the same id and content on either path and
a feed that flips between well-formed and ill-formed never duplicates its posts.

`parse_fast` returns None for anything it should not judge: ill-formed XML, a DOCTYPE
feedparser keeps (entities: its sandboxed handling decides; one it removes whole is removed
here the same way, `_without_doctype`), an encoding decision feedparser
would make differently, CDF or unknown roots, base64 content. The caller then uses
feedparser. Hostile XML is never expanded here: no entity resolution, no DTD loading, no
network, no huge-tree mode.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterable
from html import escape as _escape
from typing import Any
from urllib.parse import urlsplit

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.sanitizer import RE_DOCTYPE_PATTERN, RE_ENTITY_PATTERN
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree

from .defuse import HostileXML, _defuse_doctypes, has_long_tag
from .identity import both_schemes, canonical_link
from .models import FeedInfo

__all__ = [
    "parse_fast",
    "XML_PARSER",
    "escape_bare_ampersands",
    "home_page",
    "media_url",
    "same_document",
    "split_author",
    "web_address",
]

# One parser, safe by construction: entities stay unexpanded, no DTD or network access.
XML_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    recover=False,
    remove_comments=True,
    remove_pis=True,
)

# Namespaces feedparser treats as the feed's own (no prefix), and the modules we read.
_CORE_NS = {
    "",
    "http://backend.userland.com/rss",
    "http://blogs.law.harvard.edu/tech/rss",
    "http://purl.org/rss/1.0/",
    "http://my.netscape.com/rdf/simple/0.9/",
    "http://example.com/newformat#",
    "http://example.com/necho",
    "http://purl.org/echo/",
    "uri/of/echo/namespace#",
    "http://purl.org/pie/",
    "http://purl.org/atom/ns#",
    "http://www.w3.org/2005/atom",
    "http://purl.org/rss/1.0/modules/rss091#",
}
# feedparser names an unknown namespace by the prefix the feed gives it; Pheedo's is read by ours
PHEEDO_NS = "http://www.pheedo.com/namespace/pheedo"
_PREFIXES = {k.lower(): v for k, v in _FeedParserMixin.namespaces.items() if v} | {PHEEDO_NS: "pheedo"}
ATOM10 = "http://www.w3.org/2005/Atom"
ATOM03 = "http://purl.org/atom/ns#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XML_NS = "{http://www.w3.org/XML/1998/namespace}"
XHTML = "http://www.w3.org/1999/xhtml"
_RSS_VERSIONS = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
_HTML_TYPES = {"application/xhtml+xml", "text/html"}

_XML_DECL_ENCODING = re.compile(rb'^<\?xml[^>]*?encoding=[\'"](.*?)[\'"][^>]*\?>')
_C1 = re.compile("[\x80-\x9f]")
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")


def link_text(value: str) -> str:
    """A `<link>`'s text as feedparser reads it: `&amp;` and `&name;` left by a lenient parse
    become `&` and `&name` (normalize reads FeedBurner's originals the same way)."""
    return _LINK_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&"))


_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)
_looks_like_html = _FeedParserMixin.looks_like_html

_TITLE = {"title", "dc_title"}
_PUBLISHED = {"published", "issued", "pubdate", "dcterms_issued"}
_UPDATED = {"updated", "modified", "lastbuilddate", "dc_date", "dcterms_modified"}
_AUTHOR = {"author", "dc_author", "dc_creator", "itunes_author"}
_CATEGORY = {"category", "keywords", "dc_subject", "media_category", "itunes_category"}
_CONTENT_HTML = {"content_encoded", "fullitem"}
# the last five characters, lowercased, of the tags of elements that may be the feed's
# artwork or hold it (`feed_images`): `{ns}logo` ends in `}logo`, an unqualified one is `logo`
_ARTWORK_ENDS = {"image", "ntent", "bnail", "group", "logo", "}logo", "icon", "}icon"}

# FeedBurner's record of what it rewrote into its redirects (feedproxy.google.com/~r/…): the
# entry's own link and its enclosure's, kept as written under feedparser's keys (`parse.py`
# reads them so on its path); normalize publishes them in place of the redirects. Pheedo's
# click trackers (`feeds.washingtonpost.com/click.phdo?i=…`, dead since 2013) recorded theirs alike.
ORIGINAL_LINKS = ("feedburner_origlink", "pheedo_origlink")
ORIGINAL_ENCLOSURE = "feedburner_origenclosurelink"
ORIGINALS = (*ORIGINAL_LINKS, ORIGINAL_ENCLOSURE)

_SKIP = {"source", "image", "textinput", "contributor", "dc_contributor", "itunes_owner"}

_PERIODS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0, "monthly": 30 * 86400.0, "yearly": 365 * 86400.0}


def update_period(period: str | None, frequency: str | None) -> float | None:
    """sy:updatePeriod / sy:updateFrequency as seconds between updates (RSS 1.0 syndication module)."""
    if not period or not isinstance(period, str):  # feedparser gives a dict for an element with attributes
        return None
    base = _PERIODS.get(period.strip().lower())
    if base is None:
        return None
    try:
        times = int(str(frequency).strip()) if frequency not in (None, "") else 1
    except ValueError:
        times = 1
    return base / max(times, 1)


def parse_fast(body: bytes, url: str, headers: dict[str, str] | None = None) -> tuple[Any, ...] | None:
    """(FeedInfo, entries, version, encoding, feed authors, feed images, the channel's
    `itunes:image`s among them) for a well-formed feed, else None (use feedparser)."""
    if body[:1].isspace():
        body = body.lstrip()  # blank lines before the XML declaration: a common server-side slip
    encoding = _encoding(body, headers or {})
    if encoding is None:
        return None
    netscape = False
    if b"<!DOCTYPE" in body[:4096] or b"<!doctype" in body[:4096]:
        stripped = _without_doctype(body, encoding)
        if stripped is None:
            return None  # entity declarations, or a DOCTYPE feedparser keeps: its sandbox decides
        body, netscape = stripped
    if has_long_tag(body):
        return None  # an attribute flood? `defuse` on feedparser's path refuses it or lets it through
    try:
        root = etree.fromstring(body, XML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        escaped = escape_bare_ampersands(body)  # paid only by feeds that failed: one regex pass
        if escaped is body:
            return None
        try:
            root = etree.fromstring(escaped, XML_PARSER)
        except (etree.XMLSyntaxError, ValueError):
            return None
    if root.getroottree().docinfo.doctype:
        return None  # a DOCTYPE past the 4 KB looked at, or one in UTF-7: feedparser's sandbox decides
    ns, _, local = _split(root.tag)
    if local == "rss" and ns == "":
        attr = root.get("version", "")
        version = _RSS_VERSIONS.get(attr) or ("rss20" if attr.startswith("2.") else "rss")
        channel = _child(root, "channel")
        containers = [c for c in (channel, root) if c is not None]
    elif local == "RDF" and ns == RDF:
        version = "rss10"
        containers = [root]
        channel = next((c for c in root if _split(c.tag)[2] == "channel"), None)
    elif local == "feed" and ns in (ATOM10, ATOM03):
        version = "atom10" if ns == ATOM10 else _atom03_version(root)
        channel, containers = root, [root]
    else:
        return None  # CDF, OPML, HTML...: feedparser knows what to say
    w = _Walker(version, encoding, url)
    info = w.feed_info(root, channel)
    images = w.feed_images(root, channel)
    entries: list[dict[str, Any]] = []
    try:
        root_base, root_lang = w.scope(root, url, None)
        for container in containers:
            base, lang = (root_base, root_lang) if container is root else w.scope(container, root_base, root_lang)
            for el in container:
                if isinstance(el.tag, str) and _key(el.tag) in ("item", "entry"):
                    entries.append(w.entry(el, base, lang))
        authors: list[dict[str, Any]] = []
        if version.startswith("atom"):  # feed-level authors stand for every entry naming none
            for el in root:
                if isinstance(el.tag, str) and _key(el.tag) == "author":
                    holder: dict[str, Any] = {}
                    w._author(el, holder, root_base)
                    authors += [a for a in holder.get("authors", []) if a]
    except _Unsupported:
        return None
    return info, entries, "rss091n" if netscape else version, encoding, authors, images, w.itunes_images


# A `&` that starts no entity or character reference (`AT&T`, `?a=1&b=2` in a link), outside
# CDATA sections and comments (matched whole, to be kept as they are). A character reference
# missing its `;` is one still (HTML reads it so; `parse._fix_char_refs` mends UTF-16 pairs).
_BARE_AMP = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->"
    rb"|&(?!#[0-9]|#[xX][0-9a-fA-F]|[A-Za-z_:\x80-\xff][-A-Za-z0-9._:\x80-\xff]*;)",
    re.S,
)


def _amp(m: re.Match[bytes]) -> bytes:
    return b"&amp;" if m[0] == b"&" else m[0]


def escape_bare_ampersands(body: bytes) -> bytes:
    """`body` with each bare `&` written `&amp;`, as an HTML parser reads it (a character),
    so the feed is well-formed XML and parses strictly, not by feedparser's lenient parser
    with a warning; `body` itself (the same object) when it has none. Not for encodings
    whose bytes `&` may be part of a character: UTF-16/32 (BOM or NULs) and ISO-2022 (ESC)."""
    if b"&" not in body or b"\x1b" in body or b"\x00" in body[:4] or body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body
    escaped = _BARE_AMP.sub(_amp, body)
    return body if escaped == body else escaped


_FIRST_ELEMENT = re.compile(rb"<\w")


def _without_doctype(body: bytes, encoding: str) -> tuple[bytes, bool] | None:
    """feedparser's DOCTYPE step (`replace_doctype`) where it keeps nothing: the one DOCTYPE
    before the root removed, and whether it named Netscape's RSS 0.91 (which feedparser
    reports as `rss091n`). Undeclared entities then fail the XML parse, as they fail expat.

    None when feedparser would keep something of it: entity declarations, or a DOCTYPE its
    pattern does not find (only one that starts a line, in upper case, is removed) and expat
    or the loose parser then meets. A feed that announces itself as HTML (`<!DOCTYPE html>`,
    a static-site generator's slip) or names an external DTD is common and otherwise plain.
    Also None where feedparser would see other bytes before the root (it looks at them in
    UTF-8: a Big5 character's second byte may be a letter, UTF-7 writes `<` as `+ADw-`), or
    where `defuse`, which reads quoted literals as XML does, would rewrite the DOCTYPE.
    """
    m = _FIRST_ELEMENT.search(body)
    start = m.start() if m and m.start() else -1  # as feedparser: a root at 0 leaves no head
    head, rest = body[: start + 1], body[start + 1 :]
    try:
        if head.decode(encoding).encode("utf-8") != head or _defuse_doctypes(body) != body:
            return None
    except (UnicodeError, LookupError, HostileXML):
        return None
    doctypes = RE_DOCTYPE_PATTERN.findall(head)
    if len(doctypes) != 1 or b"[" in doctypes[0] or RE_ENTITY_PATTERN.search(head):
        return None
    body = RE_DOCTYPE_PATTERN.sub(b"", head) + rest
    if b"<!DOCTYPE" in body[:4096] or b"<!doctype" in body[:4096]:
        return None
    return body, b"netscape" in doctypes[0].lower()


def same_document(ref: str) -> bool:
    """Whether a link names the document it stands in: empty, or a fragment alone (RFC 3986
    §4.4), or an empty query alone (`?`, `?#top`). Resolved, `<link>#</link>`, `href="#"` or
    `<link>?</link>` was the feed's own URL, so readers opened the XML and link-less entries
    shared one link and one identity. Such a link is no link. A query with anything in it
    (`?p=1`) names another page, and is a link."""
    return ref.strip().partition("#")[0] in ("", "?")


def web_address(ref: str | None) -> bool:
    """Whether a permalink guid, as written, is an absolute http(s) URL, and so a link. RSS
    2.0 makes every guid a permalink by default, so `<guid>12345</guid>` is one: resolved
    against the feed's URL it was a page that never existed (`http://host/12345`), every
    output's link and the post page's "read the original" button. Readers (Miniflux) take a
    guid for a link only when it is an absolute URL; the guid itself stays as resolved."""
    if not ref:
        return False
    try:
        parts = urlsplit(ref.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def home_page(link: str | None, from_id: bool, url: str, selves: Iterable[str | None] = ()) -> str | None:
    """The feed's home page, `link`, unless it is the feed itself, whatever the scheme: the
    URL fetched, `url` (it gave us XML), or, for a `link` that is the feed's `<id>` or
    channel guid (`from_id`: an identifier, no address), one of `selves`, the feed's
    `rel="self"` links (a JSON Feed's `feed_url`). An Atom feed with no alternate link
    (Planet GNOME's) gave its `<id>`, its own URL, and that XML was linked as the source's
    site from every post page, the OPML's `htmlUrl` and each Atom entry's `<source>`. None
    then: the feed names no page, and its host's root is only a guess (a feed on
    feedburner.com or github.com is not that site's). A `<link>` equal to the self link is
    kept: generators that write the site's URL as the self link are many (abc.net.au's)."""
    if not link:
        return None
    canonical = canonical_link(link)
    if canonical is None:
        return link  # not http(s): the normalizer drops it
    feed_urls = [url, *selves] if from_id else [url]
    ours = {c for u in feed_urls if u and (c := canonical_link(u))}
    return None if ours & set(both_schemes(canonical)) else link


def media_url(base: str, url: str) -> str:
    """An enclosure's or a media item's URL resolved against the xml:base in effect on its
    element, as links are: the normalizer knows only the feed's URL, so `media/a.mp3` in an
    entry whose xml:base is another site pointed at the feed's. A link to the document itself
    (see `same_document`) is none: "" (the normalizer keeps no attachment without a URL)."""
    return "" if same_document(url) else _urljoin(base, url.strip())


class _Unsupported(Exception):
    """A construct the fast path does not reproduce faithfully: hand the feed to feedparser."""


def _split(tag: Any) -> tuple[str, str, str]:
    """(namespace, lowercased namespace, local name)."""
    if not isinstance(tag, str):
        return "", "", ""
    if tag[0] == "{":
        ns, local = tag[1:].split("}", 1)
        return ns, ns.lower(), local
    return "", "", tag


_KEYS: dict[str, str] = {}


def _key(tag: Any) -> str:
    """feedparser's handler name for an element: `title`, `dc_date`, `content_encoded`…"""
    key = _KEYS.get(tag)
    if key is None:
        key = _KEYS[tag] = _make_key(tag)
        if len(_KEYS) > 10_000:  # hostile feeds could invent namespaces without end
            _KEYS.clear()
    return key


def _make_key(tag: Any) -> str:
    ns, lower, local = _split(tag)
    if lower in _CORE_NS or lower == "http://www.w3.org/2005/atom":
        return local.lower()
    prefix = _PREFIXES.get(lower)
    if prefix is None:
        if lower.startswith("http://backend.userland.com/rss"):
            return local.lower()
        return "?" + local.lower()
    return f"{prefix}_{local.lower()}"


def _child(el: Any, name: str) -> Any:
    for c in el:
        if isinstance(c.tag, str) and _key(c.tag) == name:
            return c
    return None


def _atom03_version(root: Any) -> str:
    return {"0.1": "atom01", "0.2": "atom02", "0.3": "atom03"}.get(root.get("version") or "", "atom")


def _norm_codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL in the declared name
        return None


def _encoding(body: bytes, headers: dict[str, str]) -> str | None:
    """The encoding name feedparser would settle on, when libxml2 decodes the same way; else None.

    feedparser follows RFC 3023 (HTTP charset over the XML declaration, us-ascii for text/*
    without a charset) and falls through a list of guesses; we only take the cases where
    its choice and libxml2's (BOM, declaration, else utf-8) read the same characters.
    """
    if body[:2] in (b"\xfe\xff", b"\xff\xfe") or body[:4] in (b"\x00\x00\xfe\xff", b"\x00\x00\x00<", b"<\x00\x00\x00"):
        return None  # UTF-16/32: rare, feedparser's path
    bom = body.startswith(b"\xef\xbb\xbf")
    m = _XML_DECL_ENCODING.match(body[3:200] if bom else body[:200])
    xml_encoding = m.group(1).decode("ascii", "replace").lower() if m else ""
    if bom and xml_encoding and _norm_codec(xml_encoding) != "utf-8":
        return None
    if bom:
        xml_encoding = xml_encoding or ""
    ctype = headers.get("content-type", "")
    mime, _, params = ctype.partition(";")
    mime = mime.strip().lower()
    charset = ""
    for p in params.split(";"):
        k, _, v = p.strip().partition("=")
        if k.strip().lower() == "charset":
            charset = v.strip().strip("'\"").lower()
    if mime in ("application/xml", "application/xml-dtd", "application/xml-external-parsed-entity") or (
        mime.startswith("application/") and mime.endswith("+xml")
    ):
        rfc3023 = charset or xml_encoding or "utf-8"
    elif mime.startswith("text/"):
        rfc3023 = charset or "us-ascii"
    elif "content-type" not in headers:
        rfc3023 = xml_encoding or "iso-8859-1"
    else:
        rfc3023 = xml_encoding or "utf-8"
    if rfc3023 == "gb2312":
        rfc3023 = "gb18030"
    if xml_encoding == "gb2312":
        xml_encoding = "gb18030"
    doc = _norm_codec(xml_encoding or "utf-8")
    if doc is None:
        return None
    if _norm_codec(rfc3023) == doc or (doc == "gb18030" and _norm_codec(rfc3023) in ("gbk", "gb2312")):
        return rfc3023
    latin = ("ascii", "utf-8", "iso8859-1", "cp1252")
    if body.isascii() and _norm_codec(rfc3023) in latin and doc in latin:
        return rfc3023  # every candidate reads ASCII bytes alike
    if _norm_codec(rfc3023) == "ascii" and not charset and xml_encoding:
        return xml_encoding  # us-ascii fails on non-ASCII bytes; feedparser then takes the declaration
    if _norm_codec(rfc3023) == "ascii" and not charset and not xml_encoding:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "utf-8"
    return None


class _Walker:
    """One tree walk with feedparser's rules; holds only per-document settings."""

    def __init__(self, version: str, encoding: str, url: str) -> None:
        self.version = version
        self.atom = version.startswith("atom")
        # feedparser re-encodes every document to utf-8 first, so its repair of utf-8 read as
        # latin-1 runs whatever the document's own encoding was.
        self.utf8 = True
        self.url = url
        self.root_lang: str | None = None
        self.itunes_images: list[str] = []  # the channel's `itunes:image`s (`feed_images`)

    # -- scope: xml:base and xml:lang --------------------------------------------------

    def scope(self, el: Any, base: str, lang: str | None) -> tuple[str, str | None]:
        if not len(el.attrib):
            return base, lang
        xml_base = el.get(XML_NS + "base") or el.get("base")
        if xml_base:
            base = (make_safe_absolute_uri(base, xml_base) or base) if base else _urljoin(base, xml_base)
        xml_lang = el.get(XML_NS + "lang")
        if xml_lang is None:
            xml_lang = el.get("lang")
        if xml_lang == "":
            lang = None
        elif xml_lang is not None:
            lang = xml_lang
        return base, lang

    # -- text ---------------------------------------------------------------------------

    def fix(self, text: str) -> str:
        """feedparser's repairs of every text value: utf-8 read as latin-1, and cp1252 C1 bytes."""
        if text.isascii():
            return text
        if self.utf8:
            try:
                text = text.encode("iso-8859-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
        if _C1.search(text):
            text = text.translate(_cp1252)
        return text

    def plain(self, el: Any) -> str:
        return self.fix("".join(el.itertext()).strip())

    def content(self, el: Any, default_type: str, base: str, lang: str | None) -> tuple[str, dict[str, Any]]:
        """The value and the *_detail params of a text construct, as feedparser's pop() makes them."""
        ctype = _map_type(el.get("type") or default_type)
        params: dict[str, Any] = {"type": ctype, "language": lang.replace("_", "-") if lang else lang, "base": base}
        if el.get("mode", "") == "base64" or not (
            ctype.startswith("text/") or ctype.endswith("+xml") or ctype.endswith("/xml")
        ):
            if len(el):
                raise _Unsupported("base64 content with markup")
            text = (el.text or "").strip()
            try:
                value = base64.decodebytes(text.encode("utf8")).decode("utf8")
            except (binascii.Error, binascii.Incomplete, UnicodeDecodeError):
                value = text
            params["value"] = self.fix(value)
            return params["value"], params
        children = [c for c in el if isinstance(c.tag, str)]
        ctype_declared = ctype
        if children:
            if not ctype.endswith("xml"):
                only = children[0]
                typepad = len(children) == 1 and _split(only.tag)[2] == "div" and not len(only)
                if typepad and not (el.text or "").strip():
                    # TypePad wraps escaped HTML in a div: feedparser drops the div, keeps the text raw
                    value = self.fix((only.text or "").strip())
                    params["value"] = value
                    return value, params
                ctype = params["type"] = "application/xhtml+xml"
            value = self._markup(el, children, escape_text=ctype_declared.endswith("xml"))
        else:
            value = (el.text or "").strip()
        if not self.atom and ctype == "text/plain" and _looks_like_html(value):
            ctype = params["type"] = "text/html"
        value = self.fix(value)
        params["value"] = value
        return value, params

    def _markup(self, el: Any, children: list[Any], escape_text: bool) -> str:
        """Inline markup of a text construct as HTML, without namespaces (atom10 drops the wrapping div).

        The element leaves the tree (so no ancestor's xmlns is repeated on its children) and
        is serialized by libxml2's HTML writer: `<br>` not `<br/>`, `<applet></applet>`.
        """
        for c in el.iter():
            if isinstance(c.tag, str) and c.tag[0] == "{":
                c.tag = c.tag.split("}", 1)[1]
        parent = el.getparent()
        if parent is not None:
            parent.remove(el)
        etree.cleanup_namespaces(el)
        text = el.text or ""
        if (
            self.version == "atom10"
            and len(children) == 1
            and children[0].tag == "div"
            and not text.strip()
            and not (children[0].tail or "").strip()
        ):
            el = children[0]
            text = el.text or ""
        # text before the first child element: feedparser still believed the type (html: raw)
        parts = [_escape(text, quote=False) if escape_text or el is not children[0].getparent() else text]
        parts += [etree.tostring(c, method="html", encoding="unicode", with_tail=True) for c in el]
        return "".join(parts).strip()

    # -- feed ---------------------------------------------------------------------------

    def feed_info(self, root: Any, channel: Any) -> FeedInfo:
        base, lang = self.scope(root, self.url, None)
        # feedparser takes the feed's language from xml:lang on <feed> or <rss>, not on <rdf:RDF>
        language = lang.replace("_", "-") if lang and _split(root.tag)[2] != "RDF" else None
        self.root_lang = lang
        title = link = id_link = subtitle = ttl = None
        selves: list[str] = []
        title_type = "text/plain"
        sy: dict[str, str] = {}
        if channel is not None:
            if channel is not root:
                base, lang = self.scope(channel, base, lang)
            for el in list(channel):
                key = _key(el.tag) if isinstance(el.tag, str) else ""
                if key in ("title", "dc_title") and not title:
                    value, params = self.content(el, "text/plain", *self.scope(el, base, lang))
                    title, title_type = value or None, params["type"]
                elif key == "link":
                    href = _enforce_href(dict(el.attrib)).get("href")
                    if href is not None:
                        rel = el.get("rel", "alternate").lower()
                        alternate = rel == "alternate" and _map_type(el.get("type", "text/html")) in _HTML_TYPES
                        if alternate and not same_document(href):
                            link = _urljoin(self.scope(el, base, lang)[0], href)
                        elif rel == "self":
                            selves.append(_urljoin(self.scope(el, base, lang)[0], href))
                    else:
                        text = self.plain(el)
                        if not same_document(text):
                            link = _LINK_ENTITY.sub(r"&\g<1>", _urljoin(self.scope(el, base, lang)[0], text))
                elif key in ("id", "guid"):
                    value = self.plain(el)
                    if web_address(value) and el.get("isPermaLink", el.get("ispermalink", "true")) == "true":
                        id_link = id_link or _urljoin(self.scope(el, base, lang)[0], value)
                elif key in ("description", "subtitle", "tagline", "dc_description", "itunes_subtitle"):
                    default = "text/html" if key in ("description", "dc_description") else "text/plain"
                    subtitle = self.content(el, default, *self.scope(el, base, lang))[0] or subtitle
                elif key in ("language", "dc_language"):
                    language = self.plain(el) or language
                elif key == "ttl":
                    ttl = self.plain(el)
                elif key in ("sy_updateperiod", "sy_updatefrequency"):
                    sy[key] = self.plain(el)
        link = home_page(link or id_link, not link, self.url, selves)
        return FeedInfo(
            title=title,
            link=link,
            subtitle=subtitle,
            language=language,
            ttl_minutes=int(ttl) if ttl and ttl.isdecimal() else None,
            update_seconds=update_period(sy.get("sy_updateperiod"), sy.get("sy_updatefrequency")),
            title_type=title_type,
        )

    def feed_images(self, root: Any, channel: Any) -> list[str]:
        """The feed's own artwork: each `itunes:image` (its href, else url) and `<image><url>`
        of the channel, or beside it (RSS 1.0 puts `<image>` next to `<channel>`), each
        `media:thumbnail` and `media:content medium="image"` there (or in a `media:group`
        there), and the channel's or Atom feed's `<logo>` and `<icon>`, as
        `parse._start_itunes_image`, `parse._end_url`, `parse._start_media_thumbnail`,
        `parse._start_media_content` and `parse._end_logo` record them on feedparser's path."""
        images: list[str] = []
        base, lang = self.scope(root, self.url, None)
        for container in dict.fromkeys(c for c in (root, channel) if c is not None):
            if container is not root:
                base, lang = self.scope(container, base, lang)
            self._feed_images(container, container is channel, base, lang, images)
        return images

    def _feed_images(self, container: Any, in_channel: bool, base: str, lang: str | None, images: list[str]) -> None:
        for el in container:
            tag = el.tag
            if not isinstance(tag, str) or tag[-5:].lower() not in _ARTWORK_ENDS:
                continue  # the channel's items and the rest: one set lookup each
            key = _key(tag)
            if key in ("media_thumbnail", "media_content"):
                url = el.get("url")
                if url and (key == "media_thumbnail" or el.get("medium") == "image"):
                    url = media_url(self.scope(el, base, lang)[0], url)
                    if url:
                        images.append(url)
                if len(el):
                    self._feed_images(el, in_channel, *self.scope(el, base, lang), images)
            elif key == "media_group":
                self._feed_images(el, in_channel, *self.scope(el, base, lang), images)
            elif key in ("logo", "icon"):
                value = self.plain(el) if in_channel else ""
                if value:
                    images.append(_urljoin(self.scope(el, base, lang)[0], value))
            elif key == "itunes_image":
                href = el.get("href") or el.get("url")
                if href and href.strip():
                    images.append(href.strip())
                    self.itunes_images.append(href.strip())
            elif key == "image":
                b = self.scope(el, base, lang)[0]
                for c in el:
                    if isinstance(c.tag, str) and _key(c.tag) == "url":
                        value = self.plain(c)
                        if value:
                            images.append(_urljoin(self.scope(c, b, lang)[0], value))

    # -- entries ------------------------------------------------------------------------

    def entry(self, item: Any, base: str, lang: str | None) -> dict[str, Any]:
        base, lang = self.scope(item, base, lang)
        e: dict[str, Any] = {}
        state = {"title_set": False, "has_content": False, "depth": {}, "summary_from": None}
        about = item.get(f"{{{RDF}}}about")
        if about:
            e["id"] = about
        self._children(item, e, state, base, lang, 1)
        return e

    def _store(self, e: dict[str, Any], state: dict[str, Any], key: str, value: Any, depth: int) -> None:
        """feedparser keeps a value from a shallower element over a deeper one; else the last."""
        old = state["depth"].get(key)
        if old is None or depth <= old:
            state["depth"][key] = depth
            e[key] = value

    def _own_summary(self, e: dict[str, Any], state: dict[str, Any], value: str, params: dict[str, Any], depth: int):
        """The entry's own summary (description, summary, abstract…), with its `summary_detail`
        taken from the same element as its value (`summary_from`: see `MEDIA`)."""
        if state["summary_from"] == MEDIA:
            if value.strip():  # the caption kept so far was only standing in for this
                _summary(e, state, value, params, depth, OWN)
        elif state["depth"].get("summary") is None or depth <= state["depth"]["summary"]:
            _summary(e, state, value, params, depth, OWN if value.strip() else None)

    def _media_summary(self, e: dict[str, Any], state: dict[str, Any], value: str, params: dict[str, Any], depth: int):
        """A media:description: the entry's summary only while it has none of its own (see `MEDIA`)."""
        if state["summary_from"] == OWN:
            return
        if state["summary_from"] != MEDIA or depth <= state["depth"]["summary"]:
            _summary(e, state, value, params, depth, MEDIA)

    def _children(self, parent: Any, e: dict[str, Any], state: dict[str, Any], base: str, lang: str | None, depth: int):
        for el in list(parent):  # content elements leave the tree as they are serialized
            if not isinstance(el.tag, str):
                continue
            key = _key(el.tag)
            if key in _SKIP:
                continue
            b, lg = self.scope(el, base, lang)
            if key in _TITLE or key == "media_title":
                if state["title_set"]:
                    continue  # the first non-empty title wins
                value, params = self.content(el, "text/plain", b, lg)
                self._store(e, state, "title", value, depth)
                e["title_detail"] = params
                if value and key != "media_title":
                    state["title_set"] = True
            elif key == "link":
                self._link(el, e, b)
            elif key in ("guid", "id"):
                is_link = el.get("isPermaLink", el.get("ispermalink", "true")) == "true"
                value = self.plain(el)
                if is_link and same_document(value):
                    continue  # `<guid>#</guid>`: the feed's own URL, resolved; no guid, no link
                is_link_too = is_link and web_address(value)  # else a guid that is no URL: no link
                if value and is_link:
                    value = _urljoin(b, value)
                self._store(e, state, "id", value, depth)
                e["guidislink"] = is_link_too and "link" not in e
                if is_link_too:
                    e.setdefault("link", value)
            elif key == "media_description":  # Media RSS: plain text unless its type says html
                self._media_summary(e, state, *self.content(el, "text/plain", b, lg), depth)
            elif key in ("description", "dc_description", "abstract", "summary", "itunes_summary"):
                if "summary" in e and not state["has_content"] and state["summary_from"] != MEDIA:
                    self._content(el, e, state, "text/plain", b, lg)
                else:
                    default = "text/html" if key in ("description", "dc_description") else "text/plain"
                    self._own_summary(e, state, *self.content(el, default, b, lg), depth)
            elif key == "content":
                self._content(el, e, state, "text/plain", b, lg, src=el.get("src"))
            elif key in _CONTENT_HTML:
                self._content(el, e, state, "text/html", b, lg)
            elif key in ("body", "xhtml_body"):
                self._content(el, e, state, "application/xhtml+xml", b, lg, has_content=False)
            elif key in _PUBLISHED:
                value = self.plain(el)
                self._store(e, state, "published", value, depth)
                e["published_parsed"] = _parse_date(value)
            elif key in _UPDATED:
                value = self.plain(el)
                self._store(e, state, "updated", value, depth)
                e["updated_parsed"] = _parse_date(value)
            elif key in ("created", "dcterms_created"):  # the date of last resort (normalize.entry_date)
                value = self.plain(el)
                self._store(e, state, "created", value, depth)
                e["created_parsed"] = _parse_date(value)
            elif key in _AUTHOR:
                self._author(el, e, b)
            elif key in _CATEGORY:
                self._category(el, e, key)
            elif key in ("itunes_keywords", "media_keywords"):
                scheme = "http://www.itunes.com/" if key == "itunes_keywords" else None
                for term in self.plain(el).split(","):
                    if term.strip():
                        _add_tag(e, term.strip(), scheme, None)
            elif key in ("media_content", "media_thumbnail"):  # as feedparser: the attributes, names lowercased
                attrs = _case_folded({str(k).lower(): v for k, v in el.attrib.items() if "}" not in str(k)})
                if "url" in attrs:
                    attrs["url"] = media_url(b, attrs["url"])
                e.setdefault(key, []).append(attrs)
                if len(el):
                    if key == "media_content":
                        self._media_alt(el, attrs, b, lg)
                    self._children(el, e, state, b, lg, depth + 1)
            elif key == "itunes_image" or (key == "itunes_link" and (el.get("rel") or "").lower() == "image"):
                href = el.get("href") or el.get("url") or self.plain(el)  # an episode's artwork, as feedparser
                if href and href.strip():
                    e["image"] = {"href": media_url(b, href)}
            elif key == "itunes_duration":  # the episode's length, as feedparser keeps it: text
                self._store(e, state, "itunes_duration", self.plain(el), depth)
            elif key == "enclosure":
                attrs = _enforce_href(_case_folded(dict(el.attrib)))
                if "href" in attrs:
                    attrs["href"] = media_url(b, attrs["href"])
                attrs["rel"] = "enclosure"
                e.setdefault("links", []).append(attrs)
            elif key in ORIGINALS:  # as feedparser keeps any element it has no handler for: its text
                self._store(e, state, key, self.plain(el), depth)
            elif key == "comments":
                value = self.plain(el)
                if not same_document(value):  # `<comments>#</comments>` was the feed's own URL
                    self._store(e, state, "comments", _urljoin(b, value), depth)
            elif key in ("language", "dc_language"):
                self._store(e, state, "language", self.plain(el), depth)
            elif key == "tags":
                for term in self.plain(el).split(","):
                    _add_tag(e, term.strip(), None, None)
            elif len(el):
                self._children(el, e, state, b, lg, depth + 1)  # feedparser reads every descendant

    def _media_alt(self, el: Any, attrs: dict[str, Any], base: str, lang: str | None) -> None:
        """A media:content's own media:description, what the picture shows in words (Mastodon
        writes each picture's alt text there), as `attrs`' `description` and `description_type`,
        as `parse._end_media_description` records it on feedparser's path."""
        for c in el:
            if isinstance(c.tag, str) and _key(c.tag) == "media_description":
                value, params = self.content(c, "text/plain", *self.scope(c, base, lang))
                if value.strip():
                    attrs["description"] = value
                    attrs["description_type"] = media_alt_type(c.get("type"))
                    return

    def _content(self, el, e, state, default, base, lang, src=None, has_content=True) -> None:
        if has_content:
            state["has_content"] = True
        value, params = self.content(el, default, base, lang)
        if src:
            params["src"] = src
        e.setdefault("content", []).append(params)
        if params["type"] in ({"text/plain"} | _HTML_TYPES) or _map_type(el.get("type") or default) in (
            {"text/plain"} | _HTML_TYPES
        ):
            e.setdefault("summary", value)

    def _link(self, el: Any, e: dict[str, Any], base: str) -> None:
        attrs = _enforce_href(_case_folded(dict(el.attrib)))
        if "href" in attrs and same_document(attrs["href"]):
            return  # no link: not the entry's, nor an enclosure
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        links = e.setdefault("links", [])
        if "href" in attrs:
            attrs["href"] = _urljoin(base, attrs["href"])
            links.append(attrs)
            if attrs["rel"] == "alternate" and _map_type(attrs["type"]) in _HTML_TYPES:
                e["link"] = attrs["href"]
            return
        links.append(attrs)
        value = self.plain(el)
        if same_document(value):
            return  # no link: a guid that is one may stand for it
        value = link_text(_urljoin(base, value))
        e["link"] = value
        if value:
            attrs["href"] = value

    def _author(self, el: Any, e: dict[str, Any], base: str) -> None:
        authors = e.setdefault("authors", [])
        detail: dict[str, Any] = {}
        authors.append(detail)
        for c in el:
            if not isinstance(c.tag, str):
                continue
            k = _key(c.tag)
            if k in ("name", "itunes_name"):
                detail["name"] = "".join(c.itertext()).strip()
            elif k in ("email", "itunes_email"):
                detail["email"] = "".join(c.itertext()).strip()
            elif k in ("uri", "url", "homepage"):
                value = self.plain(c)
                detail["href"] = _urljoin(self.scope(c, base, None)[0], value) if value else value
        text = self.fix((el.text or "").strip()) if not detail else ""
        if detail:
            name, email = detail.get("name"), detail.get("email")
            e["author"] = f"{name} ({email})" if name and email else name or email or ""
            return
        e["author"] = text
        if not text:
            return
        author, email = split_author(text)
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    def _category(self, el: Any, e: dict[str, Any], key: str) -> None:
        if key == "itunes_category":
            _add_tag(e, el.get("text"), "http://www.itunes.com/", None)
            for sub in el:
                if isinstance(sub.tag, str) and _key(sub.tag) == "itunes_category":
                    self._category(sub, e, "itunes_category")
        else:
            scheme = el.get("scheme", el.get("domain"))
            if key == "media_category" and scheme is None:
                scheme = "http://search.yahoo.com/mrss/category_schema"
            _add_tag(e, el.get("term"), scheme, el.get("label"))
        value = self.plain(el)
        if not value:
            return
        tags = tag_list(e)
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            _add_tag(e, value, None, None)


# Where an entry's summary came from. A Media RSS `media:description` (of the item, of a
# `media:group`, of a `media:content`) describes a photo or video: ABC News gives each item
# its `<description>` and a `media:group` whose `media:description` is the image's caption.
# feedparser reads it as a second `<description>`, and a second description is the content:
# the caption became the body of every post, on every page and feed, the article's own text
# only its summary; Picasa's albums lost their HTML to a caption "Witch Prison". So a caption
# is never content, and is the summary only while the entry has no summary of its own (one
# with text): YouTube's Atom entries have no other text, and show it as their body. An own
# summary that comes after a caption replaces it, as the first own summary (not content).
OWN, MEDIA = "own", "media"


def media_alt_type(declared: object) -> str:
    """The type of a media:description's text: Media RSS's `type="plain"` unless it says html."""
    return "text/html" if isinstance(declared, str) and "html" in declared.lower() else "text/plain"


def _summary(
    e: dict[str, Any], state: dict[str, Any], value: str, params: dict[str, Any], depth: int, origin: str | None
) -> None:
    """Store `value` as the entry's summary with its own element's `params`: feedparser kept
    the shallower element's value but the last one's type, so SlideShare's HTML description
    (an `<img>` and text) took its media:description's `type="plain"` and was published
    escaped, its markup shown as text (`&lt;img src=…`) in excerpts and every feed."""
    e["summary"] = value
    e["summary_detail"] = params
    state["depth"]["summary"] = depth
    state["summary_from"] = origin


def split_author(text: str) -> tuple[str, str | None]:
    """(name, email) of an RSS author written as one string, as feedparser splits it
    (`x@y.org (Name)`, `Name <x@y.org>`), an address written as a `mailto:` URL included:
    xakep.ru's `mailto:antonov.igor.khv@gmail.com (Игорь Антонов)` lost only its address,
    and `mailto: (Игорь Антонов` was published as the author's name."""
    m = _EMAIL.search(text)
    if not m:
        return text, None
    email = m.group(0)
    author = re.sub("(?i)mailto:" + re.escape(email), "", text).replace(email, "")
    author = author.replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
    if author and author[0] == "(":
        author = author[1:]
    if author and author[-1] == ")":
        author = author[:-1]
    return author.strip(), email


def _map_type(ctype: str) -> str:
    ctype = ctype.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}.get(
        ctype, ctype
    )


def _case_folded(attrs: dict[str, Any]) -> dict[str, Any]:
    """`attrs` with its `rel` and `type` in lowercase, as feedparser gives every element's:
    link relations and media types are case-insensitive, and an Atom `rel="Enclosure"`
    was no enclosure here while feedparser read one."""
    for k in ("rel", "type"):
        if isinstance(attrs.get(k), str):
            attrs[k] = attrs[k].lower()
    return attrs


def _enforce_href(attrs: dict[str, Any]) -> dict[str, Any]:
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    return attrs


class TagList(list):
    """feedparser's list of an entry's tags, with its `value not in tags` in constant time.

    That test scanned the list: an entry with 100,000 categories took two minutes. Only the
    last tag is ever changed after it is added (a `<category>` element's text fills in the
    term of the tag its attributes made), so every tag but the last is remembered by its
    (term, scheme, label), and the last is compared as it is now.
    """

    def __init__(self, tags: Any = ()) -> None:
        super().__init__()
        self._seen: set[tuple[Any, Any, Any]] = set()
        for tag in tags:
            self.add(tag)

    def add(self, tag: Any) -> None:
        """Append `tag` (a term/scheme/label mapping) unless an equal one is here."""
        key = _tag_key(tag)
        if key in self._seen or (self and _tag_key(self[-1]) == key):
            return
        if self:
            self._seen.add(_tag_key(self[-1]))
        self.append(tag)


def tag_list(holder: dict[str, Any]) -> TagList:
    """`holder`'s tags as a TagList, made (from any list already there) if need be."""
    tags = holder.get("tags")
    if not isinstance(tags, TagList):
        tags = holder["tags"] = TagList(tags or ())
    return tags


def _tag_key(tag: dict[str, Any]) -> tuple[Any, Any, Any]:
    # dict.get: feedparser's FeedParserDict overrides `get` with a slow alias lookup
    return (dict.get(tag, "term"), dict.get(tag, "scheme"), dict.get(tag, "label"))


def _add_tag(e: dict[str, Any], term: str | None, scheme: str | None, label: str | None) -> None:
    tags = tag_list(e)
    if term or scheme or label:
        tags.add({"term": term, "scheme": scheme, "label": label})
