"""Render a list of posts as Atom 1.0, RSS 2.0 and JSON Feed 1.1 documents.

Pure functions: the caller passes the posts (newest first) and gets bytes back; nothing
here reads the store, the clock or the locale, so rendering the same posts twice yields
the same bytes and `write_if_changed` leaves unchanged feeds alone.

Atom and RSS are built with feedgen (the project's chosen stack), but feedgen 1.0.0 has
faults that make its raw output invalid or unstable, so we build its lxml tree with
`_create_atom()` / `_create_rss()`, repair the tree, and serialize it ourselves:

- entry `<link>`s lose `rel`, `type` and `length` (a shadowed loop variable in
  `FeedEntry.atom_entry`), so enclosures become alternate links: we rewrite them;
- `add_entry()` prepends by default, reversing the order: we always pass `order="append"`;
- feed `updated` / `lastBuildDate` and entry `updated` default to *now*: we always set
  them from the posts (epoch for an empty feed);
- `enclosure(length=None)` writes `length="None"` and a missing type crashes lxml; RSS
  takes the *last* enclosure link: we choose the one RSS enclosure ourselves;
- the channel `<link>` is the *last* feed link whatever its rel: we set it explicitly;
- `source()` writes an Atom `<source>` with a rel-less link (meaning "alternate") to the
  feed URL and no id, and needs both url and title: we write `<source>` ourselves;
- RSS gets only the first `rel="self"` link, never `rel="hub"`: we add the hub link;
- RSS `<author>` is written only for authors with an email: names go to `dc:creator`;
- lxml refuses text with characters XML 1.0 forbids: every string is cleaned first.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

import lxml.html
from feedgen.feed import FeedGenerator
from lxml import etree

from .. import PROJECT_URL, __version__
from ..models import Author, Enclosure, Post

__all__ = [
    "FeedMeta",
    "clean_text",
    "html_excerpt",
    "permalink",
    "post_guid",
    "render_atom",
    "render_feeds",
    "render_json",
    "render_rss",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
_A = f"{{{ATOM_NS}}}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "aggregator"
# The date in every post's tag: URI. Frozen forever: changing it would change every GUID
# and make every reader show every post again as new.
TAG_DATE = "2022"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXCERPT_CHARS = 200
OCTET_STREAM = "application/octet-stream"

# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")
_EMAIL = re.compile(r"^[^@\s<>()]+@[^@\s<>()]+$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")


@dataclass(frozen=True)
class FeedMeta:
    """What one feed says about itself; the same for its three formats."""

    title: str  # category name, or site title for the all-posts feed
    site_url: str  # absolute, ends with "/"
    self_base: str  # absolute URL the feed files live under; ".atom"/".rss"/".json" appended
    alternate: str  # absolute URL of the HTML page (category page or home)
    language: str  # e.g. "zh-CN"
    description: str
    site_title: str
    websub_hub: str | None = None


# ----------------------------------------------------------------------------- helpers


def clean_text(text: str | None) -> str:
    """`text` without the characters XML 1.0 cannot carry (lxml raises on them)."""
    return _NOT_XML.sub("", text) if text else ""


def _one_line(text: str | None) -> str:
    return " ".join(clean_text(text).split())


@functools.lru_cache(maxsize=8192)
def _uri(url: str | None, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """An absolute URL as a plain-ASCII URI, or None when it is not one we can publish.

    IRIs (CJK paths, IDN hosts) are legal in Atom but not in RSS or JSON Feed (whose schema
    checks `format: uri`), so every URL is percent-encoded / punycoded the same way, and a
    URL whose host is not a host name or IP literal is dropped rather than published broken.
    Cached: the same source and site URLs come up for every item of every feed.
    """
    url = clean_text(url).strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port  # raises ValueError on a junk port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        return None
    netloc = ""
    if parts.netloc or scheme in ("http", "https"):
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                return None
        if ":" in host:
            host = f"[{host}]"
        if not _HOST.match(host):
            return None
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
        netloc = host if port is None else f"{host}:{port}"
        if userinfo is not None:
            netloc = _pct(userinfo, "!$&'()*+,;=:~") + "@" + netloc
    return urlunsplit(
        (
            scheme,
            netloc,
            _pct(parts.path, "!$&'()*+,/:;=@~"),
            _pct(parts.query, "!$&'()*+,/:;=?@~"),
            _pct(parts.fragment, "!$&'()*+,/:;=?@~"),
        )
    )


def _pct(part: str, safe: str) -> str:
    """Percent-encode what a URI may not hold, keeping valid %XX escapes as they are."""
    return quote(_BAD_PERCENT.sub("%25", part), safe=safe + "%")


_OLDEST = datetime(1900, 1, 1, tzinfo=UTC)


def _utc(dt: datetime) -> datetime:
    """Aware UTC, whole seconds. A naive value is taken as UTC (the model stores UTC).

    Dates before 1900 (0001-01-01 is what broken generators write for "no date") become
    1900-01-01: strftime writes year 1 as "1", which no RSS, Atom or JSON Feed reader accepts.
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return max(dt.astimezone(UTC), _OLDEST).replace(microsecond=0)


def _rfc3339(dt: datetime) -> str:
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lang(tag: str | None) -> str | None:
    tag = clean_text(tag).strip().replace("_", "-")
    return tag if _LANG.match(tag) else None


def _media_type(value: str | None) -> str | None:
    value = _one_line(value)
    return value if _MEDIA_TYPE.match(value) else None


def _email(value: str | None) -> str | None:
    value = clean_text(value).strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value if _EMAIL.match(value) else None


def html_excerpt(html: str, limit: int = EXCERPT_CHARS) -> str:
    """Plain text of an HTML fragment, whitespace collapsed, cut at a word near `limit`."""
    text = _plain_text.__wrapped__(html) if html and len(html) > _CACHED_HTML else _plain_text(html)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:  # CJK text has no spaces: cut anywhere
        cut = cut[:space]
    return cut.rstrip(" ,.;:，。；：、") + "…"


_CACHED_HTML = 32_768  # longer fragments are not kept: the cache stays under ~16 MB


@functools.lru_cache(maxsize=256)
def _plain_text(html: str) -> str:
    """The text of an HTML fragment, whitespace collapsed. Cached: one publish asks for the
    same post's excerpt several times (three feed formats, its page, category pages), and
    parsing the fragment is most of what rendering an item costs."""
    html = clean_text(html)
    if not html.strip():
        return ""
    try:
        text = lxml.html.fragment_fromstring(html, create_parent="div").text_content()
    except (etree.LxmlError, ValueError):
        text = re.sub(r"<[^>]*>", " ", html)
    return " ".join(clean_text(text).split())


def _site_host(site_url: str) -> tuple[str, str]:
    """(host, path) of the site URL, host lowercased and punycoded, path without "/" ends."""
    parts = urlsplit(_uri(site_url) or site_url)
    return (parts.hostname or "localhost").lower(), parts.path.strip("/")


def post_guid(site_url: str, post_id: str) -> str:
    """The post's id in every feed: `tag:<host>,2022:posts/<id>` (RFC 4151).

    It depends only on the site's host and the post id, so it never changes when the post
    is updated or re-dated (unlike the yyyy/mm permalink), and it is an IRI for Atom and a
    non-permalink guid for RSS (whose <link> points to the original article instead).
    """
    host, path = _site_host(site_url)
    prefix = f"{path}/" if path else ""
    return f"tag:{host},{TAG_DATE}:{prefix}posts/{quote(clean_text(post_id), safe='')}"


def permalink(site_url: str, post: Post) -> str:
    """The post's own page on our site: `<site>posts/<yyyy>/<mm>/<id>.html` (UTC month)."""
    when = _utc(post.published)
    return f"{site_url}posts/{when:%Y}/{when:%m}/{quote(clean_text(post.id), safe='')}.html"


@dataclass(frozen=True)
class _Person:
    name: str | None
    email: str | None
    url: str | None


@dataclass(frozen=True)
class _Attachment:
    url: str
    type: str | None
    length: int | None


@dataclass(frozen=True)
class _Item:
    """One post reduced to clean, format-neutral values, so the three formats agree."""

    guid: str
    url: str
    title: str
    published: datetime
    updated: datetime
    body_html: str  # full content (or the summary when there is no content)
    summary_html: str  # the post's own summary, when it also has content
    summary_text: str  # plain-text excerpt
    has_content: bool
    authors: tuple[_Person, ...]
    tags: tuple[str, ...]
    attachments: tuple[_Attachment, ...]
    language: str | None
    comments: str | None
    source_title: str | None
    source_link: str | None
    source_url: str | None


def _person(a: Author) -> _Person | None:
    p = _Person(_one_line(a.name) or None, _email(a.email), _uri(a.url))
    return p if (p.name or p.email or p.url) else None


def _attachment(e: Enclosure) -> _Attachment | None:
    url = _uri(e.url)
    if url is None:
        return None
    length = e.length if isinstance(e.length, int) and not isinstance(e.length, bool) and e.length >= 0 else None
    return _Attachment(url, _media_type(e.type), length)


def _item(meta: FeedMeta, post: Post) -> _Item:
    content = clean_text(post.content)
    summary = clean_text(post.summary)
    has_content = bool(content.strip())
    body = content if has_content else summary
    excerpt_of = summary if summary.strip() else content
    summary_text = html_excerpt(excerpt_of)
    title = _one_line(post.title) or html_excerpt(excerpt_of, 80) or "(untitled)"
    tags: list[str] = []
    for tag in post.tags:
        t = _one_line(tag)
        if t and t not in tags:
            tags.append(t)
    return _Item(
        guid=post_guid(meta.site_url, post.id),
        url=_uri(post.link) or permalink(meta.site_url, post),
        title=title,
        published=_utc(post.published),
        updated=_utc(post.updated),
        body_html=body,
        summary_html=summary if has_content and summary.strip() else "",
        summary_text=summary_text,
        has_content=has_content,
        authors=tuple(p for p in map(_person, post.authors) if p is not None),
        tags=tuple(tags),
        attachments=tuple(a for a in map(_attachment, post.enclosures) if a is not None),
        language=_lang(post.language),
        comments=_uri(post.comments),
        source_title=_one_line(post.source_title) or None,
        source_link=_uri(post.source_link),
        source_url=_uri(post.source_url),
    )


def _items(meta: FeedMeta, posts: Iterable[Post]) -> list[_Item]:
    """The posts' items in the given order; a repeated GUID is kept once (first, i.e. newest),
    since a feed must not repeat an id and readers would merge them anyway."""
    seen: set[str] = set()
    out = []
    for post in posts:
        item = _item(meta, post)
        if item.guid not in seen:
            seen.add(item.guid)
            out.append(item)
    return out


def _newest(items: Sequence[_Item]) -> datetime:
    """The feed's updated time: its newest post's, never the clock (for stable bytes)."""
    return max((i.updated for i in items), default=EPOCH)


def _self_url(meta: FeedMeta, ext: str) -> str:
    return _uri(f"{meta.self_base}.{ext}") or f"{meta.self_base}.{ext}"


def _feed_title(meta: FeedMeta) -> str:
    return _one_line(meta.title) or _one_line(meta.site_title) or "Feed"


def _generator(meta: FeedMeta, items: Sequence[_Item], self_url: str, self_type: str) -> FeedGenerator:
    """A FeedGenerator with the channel-level fields both XML formats share."""
    fg = FeedGenerator()
    title = _feed_title(meta)
    fg.id(self_url)
    fg.title(title)
    fg.updated(_newest(items))
    fg.author({"name": _one_line(meta.site_title) or title, "uri": _uri(meta.site_url) or meta.site_url})
    fg.link(href=self_url, rel="self", type=self_type)
    hub = _uri(meta.websub_hub)
    if hub:
        fg.link(href=hub, rel="hub")
    fg.link(href=_uri(meta.alternate) or meta.alternate, rel="alternate", type="text/html")
    lang = _lang(meta.language)
    if lang:
        fg.language(lang)
    description = _one_line(meta.description)
    if description:
        fg.subtitle(description)  # also the RSS <description>
    else:
        fg.description(title)
    return fg


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def _reparse(root: etree._Element) -> etree._Element:
    """A properly namespaced copy of a tree feedgen built.

    feedgen's Atom elements are in *no* namespace (it sets `xmlns` as a plain attribute),
    so `{http://www.w3.org/2005/Atom}entry` finds nothing and elements we add would be
    written with a prefix. Round-tripping through the serializer gives a real Atom tree.
    """
    return etree.fromstring(etree.tostring(root, encoding="UTF-8"), _PARSER)


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -------------------------------------------------------------------------------- Atom


def _atom_links(item: _Item) -> list[dict[str, str]]:
    links = [{"href": item.url, "rel": "alternate", "type": "text/html"}]
    for a in item.attachments:
        link = {"href": a.url, "rel": "enclosure"}
        if a.type:
            link["type"] = a.type
        if a.length is not None:
            link["length"] = str(a.length)
        links.append(link)
    return links


def _replace_atom_links(entry: etree._Element, links: list[dict[str, str]]) -> None:
    """feedgen keeps only `href` on entry links; put the whole links back where they were."""
    old = entry.findall(f"{_A}link")
    at = entry.index(old[0]) if old else len(entry)
    for el in old:
        entry.remove(el)
    for n, spec in enumerate(links):
        el = etree.Element(f"{_A}link")
        for key in ("href", "rel", "type", "length"):
            if key in spec:
                el.set(key, spec[key])
        entry.insert(at + n, el)


def _atom_source(item: _Item) -> etree._Element | None:
    """`<source>` naming the feed the post came from (RFC 4287 4.2.11)."""
    if not (item.source_title or item.source_link or item.source_url):
        return None
    src = etree.Element(f"{_A}source")
    if item.source_url:
        etree.SubElement(src, f"{_A}id").text = item.source_url
    if item.source_title:
        etree.SubElement(src, f"{_A}title").text = item.source_title
    if item.source_link:
        etree.SubElement(src, f"{_A}link", rel="alternate", type="text/html", href=item.source_link)
    if item.source_url:
        etree.SubElement(src, f"{_A}link", rel="self", href=item.source_url)
    return src


def render_feeds(meta: FeedMeta, posts: Sequence[Post]) -> dict[str, bytes]:
    """The Atom, RSS and JSON Feed documents for `posts`, by extension; each post is
    reduced to its item once for the three (the same bytes as the render_* functions)."""
    items = _items(meta, posts)
    return {"atom": _atom(meta, items), "rss": _rss(meta, items), "json": _json(meta, items)}


def render_atom(meta: FeedMeta, posts: Sequence[Post]) -> bytes:
    """Atom 1.0 document for `posts` (kept in the given order, newest first)."""
    return _atom(meta, _items(meta, posts))


def _atom(meta: FeedMeta, items: list[_Item]) -> bytes:
    fg = _generator(meta, items, _self_url(meta, "atom"), "application/atom+xml")
    fg.generator(GENERATOR, version=__version__, uri=PROJECT_URL)
    for item in items:
        fe = fg.add_entry(order="append")  # feedgen's default "prepend" reverses the feed
        fe.guid(item.guid, permalink=False)
        fe.title(item.title)
        fe.updated(item.updated)
        fe.published(item.published)
        people = [
            {k: v for k, v in (("name", p.name or p.email), ("email", p.email), ("uri", p.url)) if v}
            for p in item.authors
            if p.name or p.email
        ]
        if people:
            fe.author(people)
        if item.body_html:
            fe.content(item.body_html, type="html")
        if item.summary_html:
            fe.summary(item.summary_html, type="html")
        elif item.has_content and item.summary_text:
            fe.summary(item.summary_text, type="text")
        fe.link(_atom_links(item))
        if item.tags:
            fe.category([{"term": t} for t in item.tags])
    root = _reparse(fg._create_atom()[0])
    if not _one_line(meta.description):
        for sub in root.findall(f"{_A}subtitle"):  # fg.description() (RSS-required) set it
            root.remove(sub)
    entries = root.findall(f"{_A}entry")
    if len(entries) != len(items):  # pragma: no cover - would mean feedgen changed
        raise RuntimeError("feedgen produced a different number of entries")
    for entry, item in zip(entries, items, strict=True):
        _replace_atom_links(entry, _atom_links(item))
        for old in entry.findall(f"{_A}source"):
            entry.remove(old)
        src = _atom_source(item)
        if src is not None:
            entry.append(src)
        if item.language:
            entry.set(_XML_LANG, item.language)
    return _serialize(root)


# --------------------------------------------------------------------------------- RSS


def _rss_enclosure(item: _Item) -> _Attachment | None:
    """RSS allows one enclosure: the first with a known length, else the first (length 0,
    as the RSS Advisory Board recommends when the size is unknown)."""
    for a in item.attachments:
        if a.length is not None:
            return a
    return item.attachments[0] if item.attachments else None


def render_rss(meta: FeedMeta, posts: Sequence[Post]) -> bytes:
    """RSS 2.0 document for `posts`; item <link> is the original article."""
    return _rss(meta, _items(meta, posts))


def _rss(meta: FeedMeta, items: list[_Item]) -> bytes:
    fg = _generator(meta, items, _self_url(meta, "rss"), "application/rss+xml")
    fg.generator(f"{GENERATOR} {__version__} ({PROJECT_URL})")
    fg.load_extension("dc", atom=False, rss=True)
    for item in items:
        fe = fg.add_entry(order="append")
        fe.guid(item.guid, permalink=False)
        fe.title(item.title)
        fe.link(href=item.url, rel="alternate")
        fe.published(item.published)
        fe.updated(item.updated)
        if item.body_html:
            fe.content(item.body_html, type="html")
        description = item.summary_html or (item.summary_text if item.has_content else "")
        if description:
            fe.description(description, isSummary=True)
        mailable = [
            {"name": p.name, "email": p.email} if p.name else {"email": p.email} for p in item.authors if p.email
        ]
        if mailable:
            fe.author(mailable)
        creators = [p.name for p in item.authors if p.name and not p.email]
        if creators:
            fe.dc.dc_creator(creators)
        if item.tags:
            fe.category([{"term": t} for t in item.tags])
        if item.comments:
            fe.comments(item.comments)
        enc = _rss_enclosure(item)
        if enc is not None:
            fe.enclosure(enc.url, str(enc.length or 0), enc.type or OCTET_STREAM)
        if item.source_url:
            fe.source(url=item.source_url, title=item.source_title or item.source_url)
    root = _reparse(fg._create_rss()[0])
    channel = root.find("channel")
    assert channel is not None
    link = channel.find("link")
    if link is not None:
        link.text = _uri(meta.alternate) or meta.alternate  # feedgen uses the *last* link
    hub = _uri(meta.websub_hub)
    if hub:
        self_link = channel.find(f"{_A}link[@rel='self']")
        at = channel.index(self_link) + 1 if self_link is not None else len(channel)
        channel.insert(at, etree.Element(f"{_A}link", href=hub, rel="hub"))
    return _serialize(root)


# ---------------------------------------------------------------------------- JSON Feed


def _json_author(p: _Person) -> dict[str, str] | None:
    out: dict[str, str] = {}
    if p.name:
        out["name"] = p.name
    url = p.url or (_uri(f"mailto:{p.email}", schemes=("mailto",)) if p.email else None)
    if url:
        out["url"] = url
    return out or None


def render_json(meta: FeedMeta, posts: Sequence[Post]) -> bytes:
    """JSON Feed 1.1 document for `posts`, with a `_source` extension for attribution."""
    return _json(meta, _items(meta, posts))


def _json(meta: FeedMeta, items: list[_Item]) -> bytes:
    feed: dict[str, object] = {
        "version": JSONFEED_VERSION,
        "title": _feed_title(meta),
        "home_page_url": _uri(meta.alternate) or meta.alternate,
        "feed_url": _self_url(meta, "json"),
    }
    description = _one_line(meta.description)
    if description:
        feed["description"] = description
    lang = _lang(meta.language)
    if lang:
        feed["language"] = lang
    site_author: dict[str, str] = {"name": _one_line(meta.site_title) or _feed_title(meta)}
    site_url = _uri(meta.site_url)
    if site_url:
        site_author["url"] = site_url
    feed["authors"] = [site_author]
    hub = _uri(meta.websub_hub)
    if hub:
        feed["hubs"] = [{"type": "WebSub", "url": hub}]
    out_items = []
    for item in items:
        entry: dict[str, object] = {
            "id": item.guid,
            "url": item.url,
            "title": item.title,
            "content_html": item.body_html,
        }
        if item.summary_text:
            entry["summary"] = item.summary_text
        entry["date_published"] = _rfc3339(item.published)
        entry["date_modified"] = _rfc3339(item.updated)
        authors = [a for a in map(_json_author, item.authors) if a]
        if authors:
            entry["authors"] = authors
        if item.tags:
            entry["tags"] = list(item.tags)
        if item.language:
            entry["language"] = item.language
        if item.attachments:
            attachments = []
            for a in item.attachments:
                att: dict[str, object] = {"url": a.url, "mime_type": a.type or OCTET_STREAM}
                if a.length is not None:
                    att["size_in_bytes"] = a.length
                attachments.append(att)
            entry["attachments"] = attachments
        source = {
            k: v
            for k, v in (("title", item.source_title), ("url", item.source_url), ("home_page_url", item.source_link))
            if v
        }
        if source:
            entry["_source"] = source
        out_items.append(entry)
    feed["items"] = out_items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
