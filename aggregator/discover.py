"""Finding the feed an HTML page points to, and telling such a page from a feed.

Users often paste a site's home page instead of its feed; the page names its feeds in
`<link rel="alternate" type="application/rss+xml" href="...">`. Knows nothing of HTTP:
it reads bytes the pipeline already has.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import NamedTuple
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from .charset import page_encoding

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/rdf+xml",
    "application/json",
)
# The rank of each type, best first. Plain application/json is a JSON Feed on some sites
# (JSON Feed 1.0's own advice), but far more often WordPress's REST API (`/wp-json/...`) or
# an oEmbed endpoint: taken only when the page offers nothing better.
_TYPE_RANK = {
    "application/rss+xml": 0,
    "application/atom+xml": 0,
    "application/rdf+xml": 0,
    "application/feed+json": 1,
    "application/json": 2,
}
HTML_TYPES = ("text/html", "application/xhtml+xml")
_FEED_MARKERS = (b"<rss", b"<feed", b"<rdf:rdf", b"<channel")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# A plain application/json link to these is an API, never a feed.
_NOT_FEEDS = ("/wp-json/", "oembed")
# What a comments feed's title says: WordPress and most blog engines list "Comments Feed"
# (translated) before or beside the posts feed, and the comments are not what was subscribed to.
_COMMENTS_TITLE = re.compile(
    r"\b(?:comments?|commentaires|commenti|kommentare?|comentarios|comentários|reacties)\b|评论|評論|コメント",
    re.IGNORECASE,
)


class FeedLink(NamedTuple):
    """A feed a page links to, with what ranks it among the page's others: its type
    (lowercased) and its title (which names a comments feed)."""

    url: str
    type: str
    title: str


def is_comments_feed(link: FeedLink) -> bool:
    """A feed of comments (WordPress's `/comments/feed/` or `?feed=comments-rss2`, a post's
    own comments feed), known by its title, else by its URL."""
    if _COMMENTS_TITLE.search(link.title):
        return True
    try:
        parts = urlsplit(link.url)
    except ValueError:
        return False
    return "comments" in f"{parts.path}?{parts.query}".lower()


def is_html_page(body: bytes, content_type: str | None = None) -> bool:
    """True for an HTML page; False for anything that looks like a feed, whatever its label.

    Servers label feeds `text/html` often enough that the bytes decide when they show a
    feed's root element; the label decides only for bytes that look like neither.
    """
    head = body[:4096]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    head = head.lstrip().lower()
    if head.startswith(b"{") or any(m in head for m in _FEED_MARKERS):
        return False
    root = _root_element(body)
    if root is not None and root.rpartition(b":")[2] in (b"rss", b"feed", b"rdf"):
        return False  # past a long comment, stylesheet or DOCTYPE: a feed all the same
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime in HTML_TYPES or b"<html" in head or b"<!doctype html" in head


_PROLOG_LIMIT = 1 << 18
_NAME_END = re.compile(rb"[\s/>]")
_SUBSET = re.compile(rb"""\[(?:[^\]"']|"[^"]*"|'[^']*')*\]\s*>""")


def _root_element(body: bytes) -> bytes | None:
    """The lowercased name of the first element, past the XML declaration, comments,
    processing instructions and a DOCTYPE (its internal subset too); None when not found in
    the first 256 KB. A feed labeled text/html whose root came after 4 KB of licence comment
    or entity declarations was taken for a page, and failed as one linking to no feed."""
    end = min(len(body), _PROLOG_LIMIT)
    i = 0
    for bom in _BOMS:
        if body.startswith(bom):
            i = len(bom)
    while i < end:
        lt = body.find(b"<", i, end)
        if lt < 0 or body[i:lt].strip():
            return None  # text before the root: not XML
        if body.startswith(b"<?", lt):
            close, step = body.find(b"?>", lt, end), 2
        elif body.startswith(b"<!--", lt):
            close, step = body.find(b"-->", lt, end), 3
        elif body[lt : lt + 9].upper() == b"<!DOCTYPE":
            bracket, close, step = body.find(b"[", lt, end), body.find(b">", lt, end), 1
            if 0 <= bracket < close:  # an internal subset: the DOCTYPE ends at `]>` (not in a quoted value)
                subset = _SUBSET.match(body, bracket, end)
                close = subset.end() - 1 if subset else -1
        else:
            match = _NAME_END.search(body, lt + 1, min(end, lt + 200))
            return body[lt + 1 : match.start()].lower() if match else None
        if close < 0:  # the comment, instruction or DOCTYPE does not end in the limit
            return None
        i = close + step
    return None


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[str, str, str]] = []  # href, type, title

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"].strip()
        elif tag == "link":
            rel = a.get("rel", "").lower().split()
            kind = a.get("type", "").split(";")[0].strip().lower()
            href = a.get("href", "").strip()
            if "alternate" in rel and kind in FEED_TYPES and href:
                self.links.append((href, kind, " ".join(a.get("title", "").split())))


def find_feed_links(body: bytes, page_url: str, content_type: str | None = None) -> list[FeedLink]:
    """The feeds the page links to, without repeats, the one to poll first.

    Pages list their feeds in no useful order: a WordPress theme may put the comments feed
    or its REST API's `application/json` link before the posts feed, and the first link was
    the one subscribed to. So RSS and Atom come first, then JSON Feed, then plain JSON, and
    comments feeds after every other; document order among equals.

    The page is read as a browser reads it (`content_type` is the response's, its charset
    first): a GBK page read as latin-1 turned `/中文/feed` into `/ÖÐÎÄ/feed`, a 404.
    """
    encoding = page_encoding(body, content_type)
    text = body.decode(encoding, errors="replace").lstrip("\ufeff")
    finder = _LinkFinder()
    try:
        finder.feed(text)
        finder.close()
    except Exception:  # a page broken enough to stop the parser still gave what came before
        pass
    base = (_join(page_url, finder.base) or page_url) if finder.base else page_url
    out: list[FeedLink] = []
    seen: set[str] = set()
    for href, kind, title in finder.links:
        url = _join(base, href, encoding)
        if url is None or url in seen or (kind == "application/json" and any(n in url.lower() for n in _NOT_FEEDS)):
            continue
        seen.add(url)
        out.append(FeedLink(url, kind, title))
    return sorted(out, key=lambda link: (is_comments_feed(link), _TYPE_RANK[link.type]))


def _join(base: str, href: str, encoding: str = "utf-8") -> str | None:
    """`href` made absolute, if it is an http(s) URL, with non-ASCII percent-encoded as a
    browser does; None for one urllib cannot even read.

    A page is written by anyone: a `<link>` or `<base>` to `http://[oops/` made urljoin
    raise, which lost the page's other links and reported an internal error on every poll.
    """
    try:
        parts = urlsplit(urljoin(base, href))
    except ValueError:
        return None
    if parts.scheme not in ("http", "https"):
        return None
    # WHATWG URL: the path and fragment in UTF-8, the query in the page's encoding (UTF-8 for
    # a UTF-16 page), a character that encoding lacks as `&#N;`; what is ASCII stays as written.
    query_encoding = "utf-8" if encoding.startswith("utf-") else encoding
    return urlunsplit(
        parts._replace(
            path=_percent_encode(parts.path, "utf-8"),
            query=_percent_encode(parts.query, query_encoding),
            fragment=_percent_encode(parts.fragment, "utf-8"),
        )
    )


_KEEP = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('"<>`{}')


def _percent_encode(text: str, encoding: str) -> str:
    """`text` with what a URL may not hold as is percent-encoded in `encoding`."""
    return "".join(c if c in _KEEP else quote(c.encode(encoding, errors="xmlcharrefreplace"), safe="") for c in text)
