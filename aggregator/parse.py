"""Bytes → a parsed feed, whatever the format.

Well-formed RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 take the fast lxml path (`parse_fast`,
~25× feedparser); what it declines (ill-formed XML, DOCTYPEs feedparser keeps, CDF, encodings it would read
differently) goes through feedparser. JSON Feed 1.0/1.1, which feedparser does not read,
is read here. All three yield the same feedparser-shaped entries, so the normalizer has
one input shape. Knows nothing of HTTP or SQL.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from html import escape, unescape
from typing import Any

import feedparser
import feedparser.api
import feedparser.mixin
import feedparser.util
from lxml import etree

from .charset import prepare
from .defuse import HostileXML, defuse, has_long_tag
from .models import FeedInfo
from .parse_fast import (
    MEDIA,
    ORIGINALS,
    OWN,
    PHEEDO_NS,
    XML_PARSER,
    escape_bare_ampersands,
    home_page,
    media_alt_type,
    media_url,
    parse_fast,
    same_document,
    split_author,
    tag_list,
    update_period,
    web_address,
)

log = logging.getLogger(__name__)

# AGGREGATOR_PARSER=feedparser turns the fast path off: an escape hatch, and the benchmarks' "before".
FEEDPARSER_ONLY = os.environ.get("AGGREGATOR_PARSER", "").lower() == "feedparser"

JSON_TYPES = ("application/feed+json", "application/json")


class ParseError(Exception):
    """The body is not a feed we can read; `source` is the source key."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(message)


_feedparser_replace_doctype = getattr(feedparser.api.replace_doctype, "__wrapped__", feedparser.api.replace_doctype)


def _replace_doctype_defused(data: bytes) -> tuple[str | None, bytes, dict[str, str]]:
    """feedparser's DOCTYPE step, after `defuse`: the one place both of its parsers' input
    passes, already converted to UTF-8 (so a UTF-16 feed cannot hide its DTD from us)."""
    return _feedparser_replace_doctype(defuse(data))


_replace_doctype_defused.__wrapped__ = _feedparser_replace_doctype  # type: ignore[attr-defined]
feedparser.api.replace_doctype = _replace_doctype_defused


def _add_tag(self: Any, term: str | None, scheme: str | None, label: str | None) -> None:
    """feedparser's own `_add_tag`, with the fast path's `TagList`: its `value not in tags`
    scanned every tag the entry had, quadratic in an entry's categories."""
    tags = tag_list(self._get_context())
    if term or scheme or label:
        tags.add(feedparser.util.FeedParserDict(term=term, scheme=scheme, label=label))


feedparser.mixin._FeedParserMixin._add_tag = _add_tag

# feedparser keeps one `feed.image`, the last of a channel's `itunes:image` and `<image>`:
# both are the show's artwork, which an episode repeating as its own is not the episode's
# (normalize drops it), so every one is recorded here, under this key of `d.feed`, with the
# channel's `media:thumbnail`, `media:content medium="image"`, `<logo>` and `<icon>`.
FEED_IMAGES = "aggregator_images"
# and the channel's `itunes:image` apart: the square cover podcast apps show, which is the
# feed's cover when its images differ (a wide `<image>` logo beside it)
FEED_ITUNES_IMAGES = "aggregator_itunes_images"
_feedparser_start_itunes_image = feedparser.mixin._FeedParserMixin._start_itunes_image
_feedparser_end_url = feedparser.mixin._FeedParserMixin._end_url


def _feed_image(self: Any, href: Any, key: str = FEED_IMAGES) -> None:
    if isinstance(href, str) and href.strip() and not (self.inentry or self.insource):
        images = self.feeddata.get(key)
        if images is None:
            images = self.feeddata[key] = []
        images.append(href.strip())


def _start_itunes_image(self: Any, attrs_d: dict[str, Any]) -> None:
    """feedparser's own, recording a channel's `itunes:image` as the fast path does."""
    _feedparser_start_itunes_image(self, attrs_d)
    _feed_image(self, attrs_d.get("href") or attrs_d.get("url"))
    _feed_image(self, attrs_d.get("href") or attrs_d.get("url"), FEED_ITUNES_IMAGES)


def _end_url(self: Any) -> None:
    """feedparser's own, recording a channel's `<image><url>` as the fast path does. RSS 1.0
    puts `<image>` beside its `<channel>`, where feedparser, no longer in the feed, stored the
    URL nowhere: it is stored as in RSS 2.0's channel."""
    beside = self.inimage and not (self.infeed or self.inentry or self.insource)
    if beside:
        self.infeed = 1
    try:
        _feedparser_end_url(self)
    finally:
        if beside:
            self.infeed = 0
    if self.inimage:
        _feed_image(self, (self.feeddata.get("image") or {}).get("href"))


feedparser.mixin._FeedParserMixin._start_itunes_image = _start_itunes_image
feedparser.mixin._FeedParserMixin._end_url = _end_url


_feedparser_start_link = feedparser.mixin._FeedParserMixin._start_link
_feedparser_end_link = feedparser.mixin._FeedParserMixin._end_link


def _start_link(self: Any, attrs_d: dict[str, Any]) -> None:
    """feedparser's `_start_link`, ignoring a link to the document itself (`href="#"`,
    `href=""`, see `same_document`): resolved, it was the feed's URL, an entry's link."""
    href = self._enforce_href(dict(attrs_d)).get("href")
    if href is not None and same_document(href):
        return  # nothing pushed: `_end_link`'s pop finds no `link` on the stack and does nothing
    _feedparser_start_link(self, attrs_d)


def _text_of(self: Any, element: str) -> str | None:
    """The text, as written, of the element being closed, `element`, before feedparser pops
    (and resolves) it; None when it is not the one on top of the stack."""
    top = self.elementstack[-1] if self.elementstack else None
    if top is None or top[0] != element:
        return None
    pieces = top[2]  # a list of str/bytes pieces, or one str (CDF's href)
    if isinstance(pieces, str):
        pieces = [pieces]
    return "".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in pieces)


def _names_this_document(self: Any, element: str) -> bool:
    """Whether the element being closed, `element`, holds text that names the document itself
    (`#`, `?`, nothing: see `same_document`); if so it is dropped from the stack unread, so
    feedparser neither resolves it against the base nor stores it."""
    text = _text_of(self, element)
    if text is not None and same_document(text):
        self.elementstack.pop()
        return True
    return False


def _end_link(self: Any) -> None:
    """feedparser's `_end_link`, dropping a link whose text names the document itself
    (`<link>#</link>`, `<link></link>`) before feedparser resolves it against the base."""
    if not _names_this_document(self, "link"):
        _feedparser_end_link(self)


_feedparser_end_guid = feedparser.mixin._FeedParserMixin._end_guid


def _end_guid(self: Any) -> None:
    """feedparser's `_end_guid` (and `_end_id`), dropping a permalink guid that names the
    document itself (`<guid>#</guid>`, `<guid isPermaLink="true"></guid>`): resolved, it was
    the feed's URL, taken for the link of an entry without one and for the identity of every
    such entry. It is no guid and no link. A guid that is no permalink is kept as written.
    A permalink guid that is no absolute http(s) URL (`<guid>12345</guid>`) stays the guid,
    resolved as before (ids must not change), but is no link (`web_address`)."""
    if self.guidislink and _names_this_document(self, "id"):
        return
    written = _text_of(self, "id") if self.guidislink else None
    context = self._get_context()
    had_link = "link" in context
    _feedparser_end_guid(self)
    if written is not None and not had_link and not web_address(written):
        context.pop("link", None)
        context["guidislink"] = False


def _end_comments(self: Any) -> None:
    """feedparser reads `<comments>` as any element, resolving it as a URL: `<comments>#</comments>`
    was the feed's own URL, published as the post's comments page. It is none."""
    if not _names_this_document(self, "comments"):
        self.pop("comments")


_feedparser_sync_author_detail = feedparser.mixin._FeedParserMixin._sync_author_detail


def _sync_author_detail(self: Any, key: str = "author") -> None:
    """feedparser's, an author written as one string split into name and address as the
    fast path splits it (`split_author`: a `mailto:` address is an address too)."""
    context = self._get_context()
    detail = context.get(f"{key}s", [feedparser.util.FeedParserDict()])[-1]
    if detail or not context.get(key):
        _feedparser_sync_author_detail(self, key)
        return
    author, email = split_author(context[key])
    if author or email:
        context.setdefault(f"{key}_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email


feedparser.mixin._FeedParserMixin._sync_author_detail = _sync_author_detail
feedparser.mixin._FeedParserMixin._start_link = _start_link
feedparser.mixin._FeedParserMixin._end_link = _end_link
feedparser.mixin._FeedParserMixin._end_guid = _end_guid
feedparser.mixin._FeedParserMixin._end_id = _end_guid
feedparser.mixin._FeedParserMixin._end_comments = _end_comments


def _starting_text(element: str) -> Any:
    """The start handler of an element feedparser has none for and whose text is wanted
    whatever attributes it has: feedparser keeps an unknown element's text only when it has
    none, else its attributes alone, where the fast path keeps the text."""

    def handler(self: Any, attrs_d: dict[str, Any]) -> None:
        self.push(element, 1)

    return handler


# Pheedo's namespace under its own prefix whatever a feed calls it, as the fast path reads it
feedparser.mixin._FeedParserMixin.namespaces.setdefault(PHEEDO_NS, "pheedo")
for _original in ORIGINALS:  # feedburner:origLink, origEnclosureLink, pheedo:origLink
    setattr(feedparser.mixin._FeedParserMixin, f"_start_{_original}", _starting_text(_original))


def _resolving(start: Any, *keys: str) -> Any:
    """feedparser's handler `start` of an element whose `keys` attributes are a media URL,
    which feedparser keeps as written: resolved first, as it resolves links (`media_url`)."""

    def handler(self: Any, attrs_d: dict[str, Any]) -> Any:
        for key in keys:
            if attrs_d.get(key):
                attrs_d[key] = media_url(self.baseuri or "", attrs_d[key])
        return start(self, attrs_d)

    return handler


_Mixin = feedparser.mixin._FeedParserMixin
_Mixin._start_enclosure = _resolving(_Mixin._start_enclosure, "url", "uri", "href")
_Mixin._start_media_content = _resolving(_Mixin._start_media_content, "url")
_Mixin._start_media_thumbnail = _resolving(_Mixin._start_media_thumbnail, "url")
_Mixin._start_itunes_image = _resolving(_Mixin._start_itunes_image, "href", "url")  # `_start_itunes_image` below
_Mixin._start_itunes_link = _resolving(_feedparser_start_itunes_image, "href", "url")  # feedparser's alias
_resolved_media_content = _Mixin._start_media_content
_resolved_media_thumbnail = _Mixin._start_media_thumbnail


def _start_media_content(self: Any, attrs_d: dict[str, Any]) -> None:
    """The resolving `_start_media_content`, recording a channel's `media:content
    medium="image"` as the show's artwork (`_feed_image`), as `parse_fast.feed_images` does.
    An entry's is held open (`_end_media_description` gives it its alt text) to its end tag."""
    _resolved_media_content(self, attrs_d)
    if attrs_d.get("medium") == "image":
        _feed_image(self, attrs_d.get("url"))
    self._aggregator_media = attrs_d if _in_entry(self) else None


def _end_media_content(self: Any) -> None:
    self._aggregator_media = None


def _start_media_thumbnail(self: Any, attrs_d: dict[str, Any]) -> None:
    """The resolving `_start_media_thumbnail`, recording a channel's `media:thumbnail` as
    the show's artwork (`_feed_image`), as `parse_fast.feed_images` does."""
    _resolved_media_thumbnail(self, attrs_d)
    _feed_image(self, attrs_d.get("url"))


def _ending_artwork(element: str) -> Any:
    """The end handler of an Atom feed's `<logo>` or `<icon>`, which feedparser reads as any
    element (resolved, as a URL): recorded as the show's artwork too when it is the feed's
    (or an RSS channel's) own, as `parse_fast.feed_images` does."""

    def handler(self: Any) -> None:
        value = self.pop(element)
        if self.infeed:
            _feed_image(self, value)

    return handler


_Mixin._start_media_content = _start_media_content
_Mixin._end_media_content = _end_media_content
_Mixin._start_media_thumbnail = _start_media_thumbnail
_Mixin._end_logo = _ending_artwork("logo")
_Mixin._end_icon = _ending_artwork("icon")


_feedparser_start_description = _Mixin._start_description
_feedparser_start_summary = _Mixin._start_summary
_feedparser_end_description = _Mixin._end_description
_feedparser_end_summary = _Mixin._end_summary
_ABSENT = object()


def _in_entry(self: Any) -> bool:
    return bool(self.inentry and not self.insource and self.entries)


def _summary_from(self: Any) -> str | None:
    """Where the current entry's summary came from (`parse_fast.MEDIA`, `OWN`, else None)."""
    held = getattr(self, "_aggregator_summary_from", None)
    return held[1] if held is not None and held[0] is self.entries[-1] else None


def _pop_summary(self: Any, element: str, media: bool) -> str | None:
    """Pop a summary element (`media`: a media:description) of the current entry, and keep
    it as the summary as `parse_fast`'s `_own_summary` and `_media_summary` do: a caption
    only while the entry has no summary of its own (see `parse_fast.MEDIA`), and with the
    type of the element whose value is kept. feedparser's `pop` kept the shallower value but
    always the last element's `summary_detail` (see `parse_fast._summary`)."""
    entry = self.entries[-1]
    depths = self.property_depth_map.setdefault(entry, {})
    kept = (entry.get("summary", _ABSENT), entry.get("summary_detail", _ABSENT), depths.get("summary", _ABSENT))
    origin = _summary_from(self)
    deeper = kept[2] is not _ABSENT and self.depth > kept[2]
    value = self.pop_content(element)
    if value is None:
        return None  # not the element on top of the stack: feedparser stored nothing
    if media:
        take, new_origin = origin is None or (origin == MEDIA and not deeper), MEDIA
    else:
        take = bool(value.strip()) if origin == MEDIA else not deeper
        new_origin = OWN if value.strip() else None
    if take:
        entry["summary"] = value  # the summary_detail `pop` stored is this element's
        depths["summary"] = self.depth
        self._aggregator_summary_from = (entry, new_origin)
        return value
    for holder, key, old in (
        (entry, "summary", kept[0]),
        (entry, "summary_detail", kept[1]),
        (depths, "summary", kept[2]),
    ):
        if old is _ABSENT:
            holder.pop(key, None)
        else:
            holder[key] = old
    return value


def _start_description(self: Any, attrs_d: dict[str, Any]) -> None:
    """feedparser's, but a description that follows a caption (see `parse_fast.MEDIA`) is
    the entry's summary, not its content: the caption was no summary of the entry's own."""
    if _in_entry(self) and _summary_from(self) == MEDIA:
        self.push_content("description", attrs_d, "text/html", 1)
    else:
        _feedparser_start_description(self, attrs_d)


def _start_summary(self: Any, attrs_d: dict[str, Any]) -> None:
    """feedparser's, but a summary that follows a caption is the summary (`_start_description`)."""
    if _in_entry(self) and _summary_from(self) == MEDIA:
        self._summaryKey = "summary"
        self.push_content("summary", attrs_d, "text/plain", 1)
    else:
        _feedparser_start_summary(self, attrs_d)


def _end_description(self: Any) -> None:
    """feedparser's, an entry's description kept as the summary by `_pop_summary`."""
    if not _in_entry(self) or self._summaryKey == "content":
        _feedparser_end_description(self)
        return
    _pop_summary(self, "description", media=False)
    self._summaryKey = None


def _end_summary(self: Any) -> None:
    """feedparser's, an entry's summary kept as the summary by `_pop_summary`."""
    if not _in_entry(self) or self._summaryKey == "content":
        _feedparser_end_summary(self)
        return
    _pop_summary(self, self._summaryKey or "summary", media=False)
    self._summaryKey = None


def _start_media_description(self: Any, attrs_d: dict[str, Any]) -> None:
    """A media:description, which is plain text unless its type says html (Media RSS:
    `type="plain"` is the default; feedparser took it for HTML, so a `<` or `&` written as
    text was read as markup, and line breaks were lost). An entry's is never its content
    (feedparser's "a second description is content" made ABC News's image captions the body
    of every post): `_end_media_description` keeps it as the summary, or not at all."""
    if not _in_entry(self) and "summary" in self._get_context() and not self.hasContent:
        self._summaryKey = "content"
        self._start_content(attrs_d)  # as feedparser: a second description is content, plain by default
    else:
        self._aggregator_alt_type = media_alt_type(attrs_d.get("type"))
        self.push_content("description", attrs_d, "text/plain", self.infeed or self.inentry or self.insource)


def _end_media_description(self: Any) -> None:
    """An entry's media:description, the summary only while it has none of its own (`_pop_summary`);
    in a media:content, that picture's alt text too (as `parse_fast`'s `_media_alt`: the first)."""
    if not _in_entry(self) or self._summaryKey == "content":
        _feedparser_end_description(self)
        return
    value = _pop_summary(self, "description", media=True)
    media = getattr(self, "_aggregator_media", None)
    if media is not None and value and value.strip() and "description" not in media:
        media["description"] = value
        media["description_type"] = getattr(self, "_aggregator_alt_type", "text/plain")


_Mixin._start_description = _start_description
_Mixin._start_summary = _start_summary
_Mixin._end_description = _end_description
_Mixin._end_abstract = _end_description
_Mixin._end_summary = _end_summary
_Mixin._start_media_description = _start_media_description
_Mixin._end_media_description = _end_media_description


@dataclass
class ParsedFeed:
    info: FeedInfo
    entries: list[dict[str, Any]]
    version: str
    base_url: str
    encoding: str | None = None
    warning: str | None = None  # feedparser's bozo exception, when the XML was ill-formed
    headers: dict[str, str] = field(default_factory=dict)
    # Atom feed-level authors: they are every entry's that names none (RFC 4287 §4.2.1)
    authors: list[dict[str, Any]] = field(default_factory=list)
    # the feed's own artwork (a channel's itunes:image, <image><url>, media:thumbnail and
    # image media:content, an Atom feed's logo and icon, a JSON Feed's icon), as written: an
    # episode whose image is one of these shows the show's cover, not its own
    images: list[str] = field(default_factory=list)
    # those of them that are the channel's `itunes:image`: the show's square cover, which
    # podcast apps show, preferred when the feed's images differ (`normalize.feed_info`)
    itunes_images: list[str] = field(default_factory=list)


def parse_feed(source: str, body: bytes, url: str, headers: dict[str, str] | None = None) -> ParsedFeed:
    """Parse `body` fetched from `url`; raise ParseError when it is no feed at all."""
    headers = headers or {}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in JSON_TYPES or _looks_like_json(body):
        return _parse_json(source, body, url)
    if not body.strip():
        raise ParseError(source, "empty response body")
    # Read as a browser would (see charset.py): re-encoded as UTF-8 only where that differs.
    as_read, read_headers, read_encoding = prepare(body, headers, source)
    try:
        fast = None if FEEDPARSER_ONLY else parse_fast(as_read, url, read_headers)
    except Exception:  # a bug on the fast path must cost speed, never the source
        log.exception("source %s: fast parser failed, using feedparser", source)
        fast = None
    if fast is not None:
        info, entries, version, encoding, authors, images, itunes_images = fast
        return ParsedFeed(
            info,
            entries,
            version,
            url,
            read_encoding or encoding,
            headers=headers,
            authors=authors,
            images=images,
            itunes_images=itunes_images,
        )
    return _parse_feedparser(source, as_read, url, headers, read_headers, read_encoding)


# An emoji written as the two halves of its UTF-16 pair (`&#55357;&#56832;`, as some
# generators write them), and references no character has (a lone half, past U+10FFFF):
# feedparser's loose parser crashes on each, and the whole feed was lost. The decimal halves
# are matched exactly, as the hex ones are (high 55296-56319, low 56320-57343): in a looser
# range, a reference that is no high half took a real pair's high half for its low one. A
# reference ends where its digits do: `&#xDE001;` is U+DE001, no low half followed by `1;`.
_HIGH_REF = rb"[xX]0*([dD][89abAB][0-9a-fA-F]{2})|0*(5529[6-9]|55[3-9][0-9]{2}|56[0-2][0-9]{2}|563[01][0-9])"
_LOW_REF = (
    rb"[xX]0*([dD][c-fC-F][0-9a-fA-F]{2})(?![0-9a-fA-F])"
    rb"|0*(563[2-9][0-9]|56[4-9][0-9]{2}|57[0-2][0-9]{2}|573[0-3][0-9]|5734[0-3])(?![0-9])"
)
_SURROGATE_PAIR_REF = re.compile(rb"&#(?:" + _HIGH_REF + rb");?&#(?:" + _LOW_REF + rb");?")
_LARGE_CHAR_REF = re.compile(
    rb"&#(?:[xX]0*([dD][89a-fA-F][0-9a-fA-F]{2}(?![0-9a-fA-F])|[0-9a-fA-F]{6,})|0*([0-9]{5,}));?"
)
_MAX_DIGITS = 7  # decimal digits of U+10FFFF: more is past it (and past 4,300, int() refuses them)


def _pair(m: re.Match[bytes]) -> bytes:
    high, low = int(m[1] or m[2], 16 if m[1] else 10), int(m[3] or m[4], 16 if m[3] else 10)
    if 0xD800 <= high <= 0xDBFF and 0xDC00 <= low <= 0xDFFF:
        return b"&#x%X;" % (0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return m[0]


def _no_char(m: re.Match[bytes]) -> bytes:
    code = int(m[1], 16) if m[1] else int(m[2]) if len(m[2]) <= _MAX_DIGITS else 0x110000
    return b"&#xFFFD;" if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else m[0]


def _fix_char_refs(body: bytes) -> bytes:
    """`body` with each surrogate pair's references made one, and references to no character
    made U+FFFD's (as browsers read them); other bytes untouched. ASCII-compatible encodings
    only: in UTF-16 the references are not these bytes (but these bytes may be characters)."""
    if b"&#" not in body or body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        return body
    return _LARGE_CHAR_REF.sub(_no_char, _SURROGATE_PAIR_REF.sub(_pair, body))


def _well_formed(body: bytes) -> bool:
    """Whether libxml2 parses `body` strictly (safely: see parse_fast.XML_PARSER). A body whose
    bare `&`s were escaped goes to feedparser so only when the escaping made it well-formed:
    feedparser's lenient parser reads `&amp;` in a link as `&amp` (`?a=1&ampb=2`)."""
    if has_long_tag(body):
        return False
    try:
        etree.fromstring(body, XML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return False
    return True


def parse_feedparser(source: str, body: bytes, url: str, headers: dict[str, str] | None = None) -> ParsedFeed:
    """feedparser's reading of an XML body: the fallback for what the fast path declines."""
    headers = headers or {}
    if not body.strip():
        raise ParseError(source, "empty response body")
    as_read, read_headers, read_encoding = prepare(body, headers, source)
    return _parse_feedparser(source, as_read, url, headers, read_headers, read_encoding)


def _parse_feedparser(
    source: str,
    body: bytes,
    url: str,
    headers: dict[str, str],
    read_headers: dict[str, str],
    read_encoding: str | None,
) -> ParsedFeed:
    """`parse_feedparser` of a body `charset.prepare` has made (`read_headers` go with it;
    `read_encoding`, when it re-encoded the body, is the encoding it was read in)."""
    body = _fix_char_refs(body)
    escaped = escape_bare_ampersands(body)
    if escaped is not body and _well_formed(escaped):
        body = escaped  # expat then parses it strictly; else the lenient parser reads the bytes as before
    response_headers = {"content-location": url}
    if "content-type" in read_headers:
        response_headers["content-type"] = read_headers["content-type"]
    try:
        d = feedparser.parse(
            body,
            response_headers=response_headers,
            sanitize_html=False,  # sanitized once, by the normalizer, with an allow-list
            resolve_relative_uris=False,  # the normalizer resolves while it sanitizes
        )
    except HostileXML as e:
        raise ParseError(source, str(e)) from None
    except Exception as e:  # feedparser is meant not to raise; a crash is still only this source's
        raise ParseError(source, f"parser crashed: {type(e).__name__}: {e}") from None
    if not d.version and not d.entries:
        what = "an HTML page" if _looks_like_html(body) else "not a feed"
        problem = f" ({d.bozo_exception})" if d.get("bozo_exception") else ""
        raise ParseError(source, f"{what}: no RSS, Atom or JSON Feed found{problem}")
    feed = d.feed
    ttl = feed.get("ttl")
    info = FeedInfo(
        title=feed.get("title") or None,
        link=_home_page(feed, url),
        subtitle=feed.get("subtitle") or None,
        language=feed.get("language") or None,
        ttl_minutes=int(ttl) if isinstance(ttl, str) and ttl.strip().isdecimal() else None,
        update_seconds=update_period(feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")),
        title_type=(feed.get("title_detail") or {}).get("type") or "text/plain",
    )
    warning = None
    entries = list(d.entries)
    if d.get("bozo") and d.get("bozo_exception") is not None:
        warning = f"{type(d.bozo_exception).__name__}: {d.bozo_exception}"
        if entries and _cut_off_in_entry(body, len(entries)):
            entries.pop()
            warning += "; its last entry, cut off, left out"
    for entry in entries:
        _fix_xhtml_voids(entry)
    return ParsedFeed(
        info=info,
        entries=entries,
        version=d.version or "unknown",
        base_url=url,
        encoding=read_encoding or d.get("encoding"),
        warning=warning,
        headers=headers,
        authors=list(feed.get("authors") or []) if (d.version or "").startswith("atom") else [],
        images=list(feed.get(FEED_IMAGES) or ()),
        itunes_images=list(feed.get(FEED_ITUNES_IMAGES) or ()),
    )


def _home_page(feed: dict[str, Any], url: str) -> str | None:
    """feedparser's `feed.link` as `home_page` judges it: taken from the feed's `<id>` (or a
    channel guid) when no alternate link has its URL."""
    link = feed.get("link") or None
    links = feed.get("links") or ()
    from_id = not any(x.get("rel") == "alternate" and x.get("href") == link for x in links)
    return home_page(link, from_id, url, [x.get("href") for x in links if x.get("rel") == "self"])


# An entry's start tag (not one written `<item/>`), and what ends an entry or everything after it.
_ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?:\s[^<>]*)?(/?)>", re.I)
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry|channel|rss|feed|rdf)\s*>", re.I)


def _cut_off_in_entry(body: bytes, entries: int) -> bool:
    """Whether the document, read as `entries` entries, ends inside the last one (a download cut
    short): no end tag of that entry, nor of the channel or feed, came after its start tag.
    feedparser's lenient parser still gives that entry, with what ended before the cut: an
    empty "(untitled)" post, or one whose id, made of a half-read title, is not the complete
    entry's, which then came as a second post. Left out, it is taken whole on a later poll.
    (Only feedparser reads ill-formed documents: the fast path declines them, so both agree.)"""
    starts = list(_ENTRY_START.finditer(body))
    if len(starts) != entries:  # an entry tag in CDATA, or one feedparser skipped: which entry is cut is unsure
        return False
    last = starts[-1] if starts else None
    return last is not None and not last[1] and _ENTRY_END.search(body, last.end()) is None


# feedparser writes inline XHTML's empty elements with an end tag (`<br/>` as `<br></br>`),
# which HTML parsers, and so our sanitizer, read as two line breaks.
_VOID_PAIR = re.compile(r"<(area|br|col|embed|hr|img|input|source|track|wbr)(\s[^<>]*)?></\1>", re.I)


def _fix_xhtml_voids(entry: dict[str, Any]) -> None:
    """Write empty XHTML elements as the fast path does (`<br>`): the same entry must give the
    same content, so the same content hash, whichever parser read the feed that day; a feed
    that is well-formed one day and not the next would otherwise update its posts each time."""
    for detail in [*entry.get("content", ()), entry.get("summary_detail")]:
        if detail and detail.get("type") == "application/xhtml+xml" and "></" in detail.get("value", ""):
            detail["value"] = _VOID_PAIR.sub(r"<\1\2>", detail["value"])
            if detail is entry.get("summary_detail"):
                entry["summary"] = detail["value"]


def _looks_like_json(body: bytes) -> bool:
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lower()
    return b"<html" in head or b"<!doctype html" in head


def _parse_json(source: str, body: bytes, url: str) -> ParsedFeed:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ParseError(source, f"invalid JSON: {e}") from None
    except RecursionError:
        raise ParseError(source, "invalid JSON: nested too deeply") from None
    if _ESCAPED_SURROGATE.search(body):
        data = _without_lone_surrogates(data)
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise ParseError(source, "JSON but not a JSON Feed (no jsonfeed.org version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise ParseError(source, "JSON Feed without an `items` array")
    version = "json" + str(data["version"]).rsplit("/", 1)[-1].replace(".", "")
    info = FeedInfo(
        title=_str(data.get("title")),
        link=home_page(_str(data.get("home_page_url")), True, url, [_str(data.get("feed_url"))]),
        subtitle=_str(data.get("description")),
        language=_str(data.get("language")),
    )
    feed_authors = _json_authors(data)
    entries = [_json_entry(item, feed_authors) for item in items if isinstance(item, dict)]
    icon = _str(data.get("icon"))  # the feed's large square image: a podcast's cover art
    return ParsedFeed(
        info=info, entries=entries, version=version, base_url=url, encoding="utf-8", images=[icon] if icon else []
    )


_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _without_lone_surrogates(data: Any) -> Any:
    """`data` with each lone surrogate (JSON's `\\ud800` escape alone: a pair is joined by
    the decoder) made U+FFFD, in every string: an id, a tag or a language holding one made
    the whole feed fail to store, since no UTF-8 encoder (SQLite's, the id's hash) takes it.
    Walked without recursion: the decoder accepts nesting deeper than a recursive walk would."""

    def fix(v: Any) -> Any:
        return _SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v

    root = [fix(data)]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, v in enumerate(node):
                node[i] = fix(v)
                if isinstance(v, (list, dict)):
                    stack.append(v)
        else:
            for k in list(node):
                v = node.pop(k)
                node[fix(k)] = fix(v)
                if isinstance(v, (list, dict)):
                    stack.append(v)
    return root[0]


def _str(value: Any) -> str | None:
    """A JSON string as text we can store: JSON's `\\ud83d` escapes can leave a lone
    surrogate, which no UTF-8 encoder (SQLite's included) accepts; it becomes U+FFFD."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    return value.strip() or None


def _json_authors(obj: dict[str, Any]) -> list[dict[str, str]]:
    raw = obj.get("authors")
    if not isinstance(raw, list):
        raw = [obj["author"]] if isinstance(obj.get("author"), dict) else []
    out = []
    for a in raw:
        if isinstance(a, dict):
            d = {k: v for k, v in (("name", _str(a.get("name"))), ("href", _str(a.get("url")))) if v}
            if d:
                out.append(d)
    return out


def _json_entry(item: dict[str, Any], feed_authors: list[dict[str, str]]) -> dict[str, Any]:
    """A JSON Feed item in feedparser's entry shape (keys the normalizer reads)."""
    entry: dict[str, Any] = {}
    if item.get("id") is not None:
        entry["id"] = str(item["id"])
    # a `url` of "#" is no link (`same_document`): resolved, it was the feed's own URL
    link = next(
        (u for u in (_str(item.get("url")), _str(item.get("external_url"))) if u and not same_document(u)), None
    )
    if link:
        entry["link"] = link
    # JSON Feed's title and summary are plain text (a headline about `vector<int>` keeps it):
    # typed so, or the normalizer reads them as HTML, as feedparser's RSS titles may be. Their
    # character references are read all the same: WordPress's JSON feeds write `&#8217;`.
    if _str(item.get("title")):
        entry["title"] = unescape(item["title"].strip())
        entry["title_detail"] = {"type": "text/plain", "value": entry["title"]}
    content = []
    if isinstance(item.get("content_html"), str):
        content.append({"type": "text/html", "value": item["content_html"]})
    elif isinstance(item.get("content_text"), str):
        text = escape(item["content_text"]).replace("\n\n", "</p><p>").replace("\n", "<br>")
        content.append({"type": "text/html", "value": f"<p>{text}</p>"})
    if content:
        entry["content"] = content
    if _str(item.get("summary")):
        entry["summary"] = unescape(item["summary"])
        entry["summary_detail"] = {"type": "text/plain", "value": entry["summary"]}
    if _str(item.get("date_published")):
        entry["published"] = item["date_published"]
    if _str(item.get("date_modified")):
        entry["updated"] = item["date_modified"]
    authors = _json_authors(item) or feed_authors
    if authors:
        entry["authors"] = authors
        entry["author"] = authors[0].get("name", "")
    tags = item.get("tags")
    if isinstance(tags, list):
        entry["tags"] = [{"term": str(t)} for t in tags if isinstance(t, (str, int))]
    links = []
    for att in item.get("attachments") or []:
        if isinstance(att, dict) and _str(att.get("url")) and not same_document(att["url"]):
            enc = {"rel": "enclosure", "href": att["url"], "type": _str(att.get("mime_type")) or ""}
            if isinstance(att.get("size_in_bytes"), int):
                enc["length"] = str(att["size_in_bytes"])
            if att.get("duration_in_seconds") is not None:
                enc["duration"] = att["duration_in_seconds"]  # a number, or what stands for one: normalize judges
            links.append(enc)
    if links:
        entry["links"] = links
    if _str(item.get("image")):
        entry["image"] = {"href": item["image"]}
    if _str(item.get("banner_image")):
        entry["banner_image"] = {"href": item["banner_image"]}
    if _str(item.get("language")):
        entry["language"] = item["language"]
    return entry
