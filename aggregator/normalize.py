"""Parsed entries → Posts: the common post model every publisher reads.

Stable ids, aware UTC dates, sanitized HTML with absolute URLs. Knows nothing of HTTP or
SQL; takes feedparser-shaped entries from either parse path.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import math
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from html.entities import html5 as html5_entities
from itertools import islice
from typing import Any
from unicodedata import category, east_asian_width
from urllib.parse import urljoin, urlparse
from zoneinfo import ZoneInfo

from .credentials import without_secrets
from .dates import InvalidDate, feedparser_date, parse_date
from .identity import canonical_link, hashed_identity, post_id, tell_apart, text_fingerprint
from .models import UNTITLED, Author, Enclosure, FeedInfo, Post, Source
from .parse import ParsedFeed
from .parse_fast import ORIGINAL_ENCLOSURE, ORIGINAL_LINKS, link_text, web_address
from .plural import counted
from .sanitize import (
    grapheme_start,
    html_to_text,
    language_tag,
    one_line,
    sanitize_html,
    sanitized_text,
    shows_something,
    url_text,
    youtube_player,
)

UNTITLED_WORDS = 12
UNTITLED_WIDTH = 60  # columns, a CJK character two: the 30 characters a run of them gets
# A post's title, tags and authors are repeated in every feed and page that lists it: one
# entry with a 2 MB title made every feed of its category 2.6 MB. Caps far above any real
# value (a title of 1,000 characters is a paragraph) keep one broken or hostile feed from
# bloating a category's outputs; the content itself is bounded by the body size limit.
TITLE_MAX = 1000
TAG_MAX = 200
TAGS_MAX = 100
AUTHORS_MAX = 20
ENCLOSURES_MAX = 20
ALT_MAX = 2000  # a picture's alt text (Mastodon allows 1,500 characters)
DATE_KEYS = ("published", "updated", "created")  # in order of preference
log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ANY_ZONE = timedelta(hours=14)  # the epoch as the clock of any zone (UTC−12 to UTC+14) shows it

__all__ = ["entry_date", "normalize", "normalize_entries", "post_id", "unique"]


def normalize(source: Source, feed: ParsedFeed, now: datetime) -> list[Post]:
    """Every entry of `feed` as a Post; entries repeating an identity keep the first."""
    return unique(normalize_entries(source, feed, now))


def normalize_entries(source: Source, feed: ParsedFeed, now: datetime) -> list[Post]:
    """One Post per entry, in feed order, identified by guid (else link, else title + content).

    Ids may repeat: telling a feed that repeats one entry from one that reuses a guid for
    different entries is `identity.guid_problem`'s job, so none is dropped here for its id
    (only an entry with nothing at all, `_blank`). Entries without guid that share a link are
    told apart (`identity.tell_apart`), as on a first fetch: the pipeline tells them apart
    again knowing what the store holds.
    """
    zone = ZoneInfo(source.timezone)
    posts = [(normalize_entry(source, feed, entry, now, zone), entry) for entry in feed.entries]
    kept = [p for p, entry in posts if not _blank(p, entry)]
    if len(kept) < len(posts):
        left = counted(len(posts) - len(kept), "entry")
        log.info("source %s: left out %s with nothing in them: no guid, link, title, text or date", source.key, left)
    return tell_apart(kept, source.ids_from)


def _blank(post: Post, entry: dict[str, Any]) -> bool:
    """Whether an entry has nothing at all (`<item></item>`, what a cut-off document's last
    `<item>` gives): stored, it was an empty "(untitled)" post linking to its own page,
    dated the fetch time, on top of its category for good."""
    shown = post.content or post.enclosures or post.authors or post.tags or post.comments or _title(entry)
    return post.hashed and not post.dated and not shown and not _written(entry)


def _written(entry: dict[str, Any]) -> bool:
    """Whether the source wrote a title, summary or content, even one that sanitizing leaves
    no text of (an <img> alone as the title, markup no reader may run): not nothing."""
    parts = [entry.get("title"), entry.get("summary"), *(c.get("value") for c in entry.get("content") or ())]
    return any(isinstance(p, str) and p.strip() for p in parts)


def unique(posts: Iterable[Post]) -> list[Post]:
    """The first post of each id: one fetch can store an entry only once."""
    seen: set[str] = set()
    out = []
    for post in posts:
        if post.id not in seen:
            seen.add(post.id)
            out.append(post)
    return out


def normalize_entry(source: Source, feed: ParsedFeed, entry: dict[str, Any], now: datetime, zone: ZoneInfo) -> Post:
    fetched = feed.base_url
    # what the feed's relative links are resolved against: the URL fetched without its secret
    # query parameters (`?token=…`: see credentials.without_secrets), the same URL for the rest
    base = without_secrets(fetched)
    written = _absolute(entry.get("link"), fetched)  # ids come from links: resolved as they always were
    # the published link: FeedBurner's (or Pheedo's) record of the page its redirect stands for,
    # else as written
    link = (written and next(filter(None, (_original(entry.get(k), fetched) for k in ORIGINAL_LINKS)), None)) or written
    content_html, content_base = _content(entry)
    content_html = _with_player(entry, content_html)
    summary_html = _summary(entry)
    # (a FeedBurner entry's relative links are the original page's, not its redirect's)
    fetched_base = content_base if content_base and content_base != fetched else (link or fetched)
    # an xml:base or a link that is the feed's own URL carries its secret too
    html_base = _unsecret(fetched_base, fetched, base) if base != fetched else fetched_base
    guid = (entry.get("id") or "").strip()
    ids = _id_prefix(source, guid or written, content_html)
    content, summary = _sanitized(content_html, summary_html, html_base, ids)
    text = sanitized_text(content)
    # capped whatever it is made from: twelve words of content, or a link, may be a megabyte.
    # Nothing to make one of: stored empty, the publishers name it in the site's language.
    title = _title(entry, guessed=_guessed_types(feed.version))
    if not shows_something(title):  # a title of `&#8203;` is none
        title = _first_words(_warning(content) or text) or link or ""
    title = _capped(title, TITLE_MAX)
    # an entry with neither guid nor link is identified by its title as NORMALIZER_VERSION 5
    # read it (`_title` without `guessed`, UNTITLED for none): its id must not change with
    # how the title is shown
    identity = guid or written  # the link as written, not FeedBurner's original: ids must not change
    text_hash = None
    if not identity:
        # the content as resolved before its links were freed of the URL's secret: an id made of it must not change
        hashed = content if html_base == fetched_base else _sanitized(content_html, summary_html, fetched_base, ids)[0]
        made = _title(entry) or _first_words(text, as_ids=True) or UNTITLED
        text_hash = _hash(_capped(made, TITLE_MAX, as_ids=True) + "\n" + hashed)
    published = None
    for key in DATE_KEYS:
        published = entry_date(entry, key, zone)
        if published is not None:
            break
    updated = entry_date(entry, "updated", zone) or published
    dated = published is not None
    published = min(published or now, now)  # a future date would pin the post on top forever
    updated = max(min(updated or published, now), published)
    authors = tuple(islice(_authors(entry, base, feed.authors), AUTHORS_MAX))
    tags = tuple(islice(dict.fromkeys(t for t in (_tag(x) for x in entry.get("tags") or ()) if t), TAGS_MAX))
    enclosures = _timed(tuple(islice(_enclosures(entry, base, feed.images), ENCLOSURES_MAX)), entry)
    language = _language(entry, feed.info.language)
    comments = _absolute(entry.get("comments"), base)
    if base != fetched:  # the parser resolved these against the URL fetched
        comments = comments and _unsecret(comments, fetched, base)
        authors = tuple(replace(a, url=a.url and _unsecret(a.url, fetched, base)) for a in authors)
        enclosures = tuple(replace(e, url=_unsecret(e.url, fetched, base)) for e in enclosures)
    if text_hash is not None:  # and its first enclosure, as published (without the URL's secrets)
        identity = hashed_identity(text_hash, enclosures[0].url if enclosures else None)
    # the link as it names the page: a feed whose links carry a new `utm_campaign=…` at every
    # fetch had each of its posts published as edited at every poll (dated now, on top again)
    canonical = canonical_link(link)
    content_hash = _content_hash(title, canonical, content, summary, authors, tags, enclosures)
    return Post(
        id=post_id(source.ids_from, identity),
        source=source.key,
        guid=identity,
        title=title,
        link=link,
        published=published,
        updated=updated,
        content=content,
        summary=summary,
        authors=authors,
        tags=tags,
        enclosures=enclosures,
        language=language,
        comments=comments,
        content_hash=content_hash,
        first_seen=now,
        dated=dated,
        # what the source's posts are found by (link identity, shared links, copies): a FeedBurner
        # entry's redirect, as before its original was read; by the original, two entries of
        # one show page took each other's ids and guid checks saw one link where there were two
        canonical_link=canonical if link == written else canonical_link(written),
        fingerprint=text_fingerprint(text, title, squeezed=True),  # sanitized_text squeezes whitespace
        linked=not guid and link is not None,
        hashed=not guid and link is None,
        written_link=written if link != written else None,
    )


def feed_info(info: FeedInfo, version: str = "", images: Sequence[str] = (), itunes: Sequence[str] = ()) -> FeedInfo:
    """The feed's title as plain text, as entry titles are (`_title`; `version` is the
    feed's, `ParsedFeed.version`): it is shown as the source's name on every page and feed,
    escaped there, and a title the feed gives as HTML (`Tom &amp;amp; Jerry`) would show its
    entities; control characters, which some feeds carry, are not text at all. The home page
    is linked from every post's page and the OPML: an absolute http(s) URL or none
    (`<link>javascript:…</link>` was linked as given). Its cover (`images`: the feed's own
    artwork, `ParsedFeed.images`) is its one channel image: a podcast category's RSS gives
    it as the show's `itunes:image`. Several that differ (a wide `<image>` logo beside the
    square cover) gave none, and the category no cover: the channel's one `itunes:image`
    (`itunes`, as `ParsedFeed.itunes_images`) is then the cover, as Apple Podcasts and
    Overcast take it; else none."""
    link = _absolute(info.link, "")
    covers = list(dict.fromkeys(filter(None, (_absolute(i, "") for i in images))))
    image = covers[0] if len(covers) == 1 else None
    if len(covers) > 1 and itunes:
        squares = list(dict.fromkeys(filter(None, (_absolute(i, "") for i in itunes))))
        image = squares[0] if len(squares) == 1 else None
    if not info.title:
        return replace(info, link=link, image=image)
    detail = {"type": info.title_type}
    title = _capped(_title({"title": info.title, "title_detail": detail}, _guessed_types(version)), TITLE_MAX)
    return replace(info, title=title or None, title_type="text/plain", link=link, image=image)


def _guessed_types(version: str) -> bool:
    """Whether the feed's text types are the parser's guesses: RSS says nothing of its titles'
    type (feedparser guesses HTML when one looks like it), Atom and JSON Feed say."""
    return version.startswith("rss")


def _title(entry: dict[str, Any], guessed: bool = False) -> str:
    """Plain text: markup stripped and entities decoded, unless the feed says it is text already.

    An Atom `type="text"` title of `History of the <blink> tag` is about the tag and keeps it;
    feedparser marks RSS titles that look like HTML as HTML. That guess (`guessed`) is not the
    feed's word: an RSS title it took for text still has its character references decoded, as
    one it took for HTML has. Feeds escape titles twice, and `Tom &amp;amp; Jerry` was `Tom &
    Jerry` but `Tom &amp;amp; Jerry &lt;3` was `Tom &amp; Jerry <3` (`<3` is no tag: no HTML).
    """
    value = entry.get("title") or ""
    if not isinstance(value, str):
        return ""
    kind = (entry.get("title_detail") or {}).get("type") or "text/html"
    if "plain" in kind:  # not HTML, so not through the sanitizer: drop what is not text here
        return one_line(_CHAR_REF.sub(_char, value) if guessed and "&" in value else value)
    return html_to_text(value)


# A character reference with its `;`: `&` alone (`AT&T`, `Q&A`) and names HTML does not know
# (`&foo;`) stay as written, and `&copy2026` is not read as `©2026`, as html.unescape would.
_CHAR_REF = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,7}|[A-Za-z][A-Za-z0-9]{1,31});")


def _char(m: re.Match[str]) -> str:
    ref = m[0]
    if ref[1] != "#" and ref[1:] not in html5_entities:
        return ref
    return unescape(ref)


def _capped(text: str, limit: int, as_ids: bool = False) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut (at a space near it, if any).
    `as_ids`: cut as ids were made of it (at a code point), for an id must not change."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1 if as_ids else grapheme_start(text, limit - 1)]
    space = head.rfind(" ", limit - 80)
    return (head[:space] if space > 0 else head).rstrip() + "…"


def _content_hash(
    title: str,
    link: str | None,
    content: str,
    summary: str,
    authors: Sequence[Author],
    tags: Sequence[str],
    enclosures: Sequence[Enclosure],
) -> str:
    """What tells a post's edits: its fields as published, the link as it names the page."""
    fields = [
        title,
        link,
        content,
        summary,
        [a.__dict__ for a in authors],
        list(tags),
        [e.as_dict() for e in enclosures],
    ]
    return _hash(json.dumps(fields, ensure_ascii=False))


def hash_before_8(p: Post) -> str:
    """The content hash NORMALIZER_VERSION 7 gave `p` (its link as written, tracking parameters
    and all), had it read the rest alike: what a post it pruned while still listed is known by
    (`identity.tell_apart`), which came back as new after the upgrade."""
    return _content_hash(p.title, p.written_link or p.link, p.content, p.summary, p.authors, p.tags, p.enclosures)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _one_line(value: Any) -> str | None:
    """A plain-text field (a language, an email address, a media type) as `one_line` keeps
    it, or None: stored, it is shown in pages as it is."""
    return (one_line(value) or None) if isinstance(value, str) else None


def _sanitized(content_html: str, summary_html: str, base: str, ids: str) -> tuple[str, str]:
    """(content, summary) sanitized with their links resolved against `base`, the ids their
    own links lead to prefixed with `ids`; the content is the summary when there is none."""
    content = sanitize_html(content_html, base, ids) if content_html else ""
    if summary_html == content_html:  # the same HTML as summary and content: sanitize it once
        summary = content
    else:
        summary = sanitize_html(summary_html, base, ids) if summary_html else ""
    return content or summary, summary


def _id_prefix(source: Source, identity: str | None, content_html: str) -> str:
    """What the ids a post's own links lead to (footnotes) are prefixed with: its id (`<id>-`),
    so that no two posts in a feed, nor a post and our page around it, share one. A post with
    neither guid nor link is identified by its sanitized content, so its prefix is made of the
    content as written instead."""
    return post_id(source.ids_from, identity or _hash(content_html)) + "-"


def _unsecret(url: str, fetched: str, base: str) -> str:
    """`url` resolved against `base` (the URL `fetched` without its secrets) rather than
    `fetched`: relative URLs keep the base's query only when they name the document itself
    (`#fn1`, ``), so only a URL that is `fetched` (plus a fragment) differs."""
    head, hash_, fragment = url.partition("#")
    return base.partition("#")[0] + hash_ + fragment if head == fetched.partition("#")[0] else url


def _original(url: Any, base: str) -> str | None:
    """What FeedBurner recorded as the original of a URL it rewrote into a redirect of its own
    (`feedproxy.google.com/~r/…`, `feeds.feedburner.com/~r/…`): `feedburner:origLink`, the
    article's page, and `feedburner:origEnclosureLink`, the enclosure's file. The redirects
    count clicks; FeedBurner is deprecated and they break, and an article syndicated by its
    site's own feed too was not found the same by its link. Taken only when written as an
    absolute http(s) URL (a relative one would resolve against feedburner.com); else None.
    Miniflux publishes them so. Its text is read as both parsers read a `<link>`'s: feedparser's
    lenient parser (an ill-formed feed) leaves `&amp;` in it, `?a=1&amp;b=2`."""
    if not isinstance(url, str) or not web_address(url):
        return None
    return _absolute(link_text(url), base)


def _absolute(url: Any, base: str) -> str | None:
    """An absolute http(s) URL, or None: readers cannot follow anything else."""
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        full = urljoin(base, url.strip())
        parsed = urlparse(full)
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return None
    return url_text(full)


def _content(entry: dict[str, Any]) -> tuple[str, str | None]:
    """Full content preferred over summary; HTML preferred over plain text, then the longest."""
    parts = []
    for part in entry.get("content") or ():
        value = part.get("value") or ""
        if value.strip():
            is_html = "html" in (part.get("type") or "text/html")
            parts.append((is_html, value if is_html else _text_to_html(value), part.get("base")))
    if parts:
        _, html, base = max(parts, key=lambda p: (p[0], len(p[1])))
        return html, base
    detail = entry.get("summary_detail") or {}
    value = entry.get("summary") or ""
    if value and "plain" in (detail.get("type") or ""):
        value = _text_to_html(value)
    return value, detail.get("base")


def _with_player(entry: dict[str, Any], html: str) -> str:
    """`html` after YouTube's player (in a block of its own) for the video the entry is, when it embeds none itself.

    A YouTube channel's feed gives each video as a `media:content` of its Flash URL (its text
    is the video's description): Flash is no enclosure, and our pages showed the description
    and a thumbnail with no player, where a post embedding the video (`_youtube_player`) has one."""
    media = entry.get("media_content")
    if not media or "youtube.com/embed/" in html:
        return html
    for item in media:
        if isinstance(item, dict):
            player = youtube_player(item.get("url"), {k: str(item.get(k) or "") for k in ("width", "height")})
            if player is not None:  # on a line of its own: the description, plain text, follows
                return f"<div>{player}</div>{html}"
    return html


def _summary(entry: dict[str, Any]) -> str:
    if not entry.get("content"):
        return ""  # the summary is already the content; keep it once
    value = entry.get("summary") or ""
    kind = (entry.get("summary_detail") or {}).get("type")
    if kind is None:  # a summary the parser copied from the content has the content's type
        kind = next((c.get("type") for c in entry["content"] if c.get("value") == value), None)
    if value and "plain" in (kind or ""):
        value = _text_to_html(value)
    return value


def _text_to_html(text: str) -> str:
    return escape(text).replace("\n", "<br>\n")


# A content warning as Mastodon's RSS puts it before a post's text (`rss_content_preroll`:
# `<p><strong>Content warning:</strong>the warning</p><hr />`, the label in the post's language),
# as the sanitizer writes it: a paragraph, a bold label first, then a rule.
_CONTENT_WARNING = re.compile(r"<p><strong>[^<]*</strong>(?:[^<]|<(?!/?p[\s>]))*</p>\s*<hr>")


def _warning(content: str) -> str:
    """The text of the content warning `content` starts with (`_CONTENT_WARNING`), else "".

    An untitled post's title is made of its first words: those of a Mastodon post with a content
    warning ran on past the warning into the text it warns of, shown in every list of posts."""
    if not content.startswith("<p><strong>"):
        return ""
    warning = _CONTENT_WARNING.match(content)
    return sanitized_text(warning.group()) if warning is not None else ""


def _first_words(text: str, as_ids: bool = False) -> str:
    """An untitled post's title: its text's first words. `as_ids`: as the ids of entries with
    no guid, link or title were made of it (cut at a code point): an id must not change."""
    words = text.split(None, UNTITLED_WORDS)  # the twelve first, and the rest in one
    if not words:
        return ""
    if len(words) == 1 and len(words[0]) > 40:  # CJK runs have no spaces
        return words[0][: 30 if as_ids else grapheme_start(words[0], 30)] + "…"
    head = " ".join(words[:UNTITLED_WORDS])
    cut = _wide_cut(head, UNTITLED_WIDTH, spaced_too=as_ids)
    long_head = not as_ids and cut is None and len(head) > UNTITLED_WIDTH
    if long_head and _phrased(words, head):
        # Thai, Lao, Khmer, Burmese put spaces between phrases, not words: twelve of them were
        # the whole text as its title. Cut at the last phrase that fits, else inside one.
        space = head.rfind(" ", 0, UNTITLED_WIDTH + 1)
        cut = space if space >= UNTITLED_WIDTH // 2 else UNTITLED_WIDTH
    if cut is not None:  # CJK words run long: `□陈英 我市坚持…` was a whole paragraph of a title
        return head[: cut if as_ids else grapheme_start(head, cut)].rstrip() + "…"
    return head + ("…" if len(words) > UNTITLED_WORDS else "")


def _phrased(words: list[str], head: str) -> bool:
    """Whether the twelve words of `head` are phrases of a script without spaces between its
    words: one of over 40 characters among them, or, a head in those letters, further on
    (twelve shorter phrases were still the whole paragraph). `words`: the twelve and the rest."""
    if any(len(w) > 40 and _PHRASED.search(w) for w in words[:UNTITLED_WORDS]):
        return True
    rest = words[UNTITLED_WORDS:]
    return bool(rest and _PHRASED.search(head) and any(len(w) > 40 and _PHRASED.search(w) for w in rest[0].split()))


# Thai, Lao, Burmese, Khmer: scripts written without spaces between words, only between phrases
# (a long accented word, a French URL in an English post, is no phrase of them)
_PHRASED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")


def _is_hangul(ch: str) -> bool:
    """A hangul syllable or jamo (Korean puts spaces between words)."""
    return "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"


def _wide_cut(text: str, width: int, spaced_too: bool = False) -> int | None:
    """Where `text` holding wide (CJK) characters passes `width` columns, each of those two
    wide; None when it holds none (a title of words stays words) or fits. Emoji and hangul
    are two columns wide but written between spaces, as words: `🔥 Breaking: the central
    bank…` was cut inside a word (`again to…`) as Chinese is, a Korean title inside a word
    (`반응은` as `반응…`); `spaced_too` reads them as ids were made (`_first_words`)."""
    if text.isascii():
        return None
    used, wide = 0, False
    for i, ch in enumerate(text):
        two = east_asian_width(ch) in ("W", "F")
        wide = wide or (two and (spaced_too or not (category(ch) == "So" or _is_hangul(ch))))
        used += 2 if two else 1
        if used > width:
            return i if wide else None
    return None


def entry_date(entry: dict[str, Any], key: str, zone: ZoneInfo) -> datetime | None:
    """Aware UTC; a date written without a zone is read in the source's zone."""
    # dict.get skips FeedParserDict's deprecated mapping of `updated` onto `published`
    raw = dict.get(entry, key)
    written = isinstance(raw, str) and raw.strip()
    found = None
    if written:
        try:
            found = parse_date(raw, zone)
        except InvalidDate:
            return None
    if found is None:
        # the text read again rather than feedparser's reading of it (`{key}_parsed`), which may
        # be a month it made up (`feedparser_date`); JSON Feed entries come without one anyway
        parsed = feedparser_date(raw) if written else dict.get(entry, f"{key}_parsed")
        if parsed:
            try:
                found = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, OSError):
                return None
    # 0001-01-01 and the Unix epoch are what broken generators write for "no date"; the epoch
    # written without a zone is read in the source's zone, and is still it, as any zone's clock
    # shows it (`1970-01-01 00:00:00` in Asia/Shanghai was dated 31 December 1969, 16:00 UTC;
    # `1970-01-01 08:00:00`, a Chinese server's timestamp 0, in a source left in UTC, 08:00 UTC)
    if found is not None and (found.year < 1900 or abs(found - _EPOCH) <= _EPOCH_ANY_ZONE):
        return None
    return found


def _authors(entry: dict[str, Any], base: str, inherited: list[dict[str, Any]]) -> Iterable[Author]:
    """The entry's authors, else its atom:source's, else the Atom feed's (RFC 4287 §4.2.1)."""
    seen = set()
    source = entry.get("source") if isinstance(entry.get("source"), dict) else {}
    raw = (
        entry.get("authors")
        or ([{"name": entry["author"]}] if entry.get("author") else [])
        or source.get("authors")
        or inherited
    )
    for a in raw:
        if not isinstance(a, dict):
            continue
        name = _capped(html_to_text(a.get("name") or ""), TAG_MAX) or None
        email_ = _one_line(a.get("email"))
        url = _absolute(a.get("href"), base)
        author = Author(name, email_, url)
        if (name or email_ or url) and author not in seen:
            seen.add(author)
            yield author


def _tag(tag: Any) -> str | None:
    term = tag.get("label") or tag.get("term") if isinstance(tag, dict) else None
    if not isinstance(term, str):
        return None
    return _capped(html_to_text(term), TAG_MAX) or None


def _enclosures(entry: dict[str, Any], base: str, feed_images: Iterable[str] = ()) -> Iterable[Enclosure]:
    """The entry's enclosures, then its Media RSS images, videos and sounds (`media:content`,
    `media:thumbnail`: YouTube's and photo feeds' only media; Miniflux keeps them too), then
    its own image (a podcast episode's `itunes:image`, a JSON Feed item's `image` and
    `banner_image`), last so that RSS's one enclosure stays the episode's sound. An image
    that is the feed's (`feed_images`: many podcasts repeat the show's cover art as every
    episode's `itunes:image`, `media:thumbnail` or `media:content`) is not the episode's: it
    showed under every episode of the show. A `media:thumbnail` of an entry that has an image
    already (the photo as an enclosure or media:content: Flickr's, WordPress's) is that photo
    small, not a second picture: pages showed the photo twice. An enclosure FeedBurner
    rewrote into a redirect of its own is the original it recorded (`_original`,
    `_redirected`)."""
    seen = set()
    kept: list[Enclosure] = []
    links = [x for x in entry.get("links") or () if x.get("rel") == "enclosure"]
    original = _original(entry.get(ORIGINAL_ENCLOSURE), base) if links else None
    redirected = _redirected(links) if original else None
    for i, link in enumerate(links):
        url = original if i == redirected else _absolute(link.get("href"), base)
        if not url or url in seen:
            continue
        seen.add(url)
        length = str(link.get("length") or "").strip()
        enclosure = Enclosure(url, _enclosure_type(url, link.get("type")), int(length) if length.isdecimal() else None)
        kept.append(enclosure)
        yield _with_duration(enclosure, link.get("duration"))  # a JSON Feed attachment's duration_in_seconds
    images = [{"url": i.get("href")} for i in (entry.get("image"), entry.get("banner_image")) if isinstance(i, dict)]
    contents = entry.get("media_content") or ()
    thumbnails = entry.get("media_thumbnail") or ()
    media_items = (*contents, *thumbnails, *images)
    covers = {_absolute(i, base) for i in feed_images} - {None} if media_items and feed_images else set()
    # an image already kept (the photo, as an enclosure or media:content): the entry's
    # media:thumbnail is that photo small, and showed as a second picture under it
    pictured = any(_is_image(e.type) for e in kept)
    for n, media in enumerate(media_items):
        if pictured and len(contents) <= n < len(contents) + len(thumbnails):
            continue
        url = _absolute(media.get("url"), base) if isinstance(media, dict) else None
        if not url or url in seen or url in covers:
            continue
        kind = _media_type(url, media.get("type"))
        if kind is None:
            continue  # a player page or a Flash movie, or a type nothing says: no attachment
        seen.add(url)
        pictured = pictured or _is_image(kind)
        length = str(media.get("filesize") or "").strip()
        enclosure = Enclosure(url, kind, int(length) if length.isdecimal() else None, description=_alt(media))
        yield _with_duration(enclosure, media.get("duration"))


def _alt(media: dict[str, Any]) -> str | None:
    """A media:content's alt text (its own media:description, `parse_fast._media_alt`), one line
    of plain text: Mastodon's pictures were published with none, what their author wrote for
    those who cannot see them lost."""
    value = media.get("description")
    if not isinstance(value, str) or not value.strip():
        return None
    text = html_to_text(value) if media.get("description_type") == "text/html" else one_line(value)
    return _capped(text, ALT_MAX) or None


def _redirected(links: list[dict[str, Any]]) -> int | None:
    """Which of an entry's enclosures FeedBurner rewrote into the redirect its
    `origEnclosureLink` records: the one whose path is such a redirect's (`/~5/`), else the
    only one (FeedBurner writes one original, for an item's one enclosure); None if unsure."""
    marked = [i for i, x in enumerate(links) if "/~5/" in str(x.get("href") or "")]
    return marked[0] if len(marked) == 1 else 0 if len(links) == 1 else None


# A media type, `type/subtype` and any parameters (RFC 6838's names, as publish.feeds checks them).
_MEDIA_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+(\s*;.*)?")


def _enclosure_type(url: str, declared: object) -> str | None:
    """An enclosure's MIME type: the one its source gave, else guessed from its file name.

    feedparser (and the fast path, which reads as it does) types every Atom link that says
    none `text/html`, enclosures too, so that type is not believed unless the file name says
    HTML as well: an episode's `ep.mp3` was republished as a web page, with no player. An RSS
    enclosure without a type (a JSON Feed attachment's is required) is guessed from its name too,
    as is one whose type is no media type (`mp3`): published as `application/octet-stream`, it
    had no player on its page, and apps going by the type took it for no sound."""
    kind = _one_line(declared)
    if kind and (kind.split(";", 1)[0].strip().lower() == "text/html" or not _MEDIA_TYPE.fullmatch(kind)):
        kind = None
    return kind or mimetypes.guess_type(urlparse(url).path)[0] or None


# Most a duration can be: a week. Longer is a slip of units (milliseconds) or junk, not a show.
DURATION_MAX = 7 * 86400
_SECONDS = re.compile(r"(\d{1,9})(?:\.\d*)?")
_CLOCK = re.compile(r"(?:(\d{1,4}):)?(\d{1,4}):(\d{1,2}(?:\.\d*)?)")


def duration_seconds(value: Any) -> int | None:
    """Whole seconds of play from `itunes:duration` (`3600`, `MM:SS`, `H:MM:SS`, fractions of
    a second dropped) or JSON Feed's `duration_in_seconds` (a number); None for anything else
    (`45 min`, `0`, `1:75:00`, a week or more): a reader is better shown no length than a wrong one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = int(value) if math.isfinite(value) else 0
    elif isinstance(value, str):
        text = value.strip()
        if m := _SECONDS.fullmatch(text):
            seconds = int(m[1])
        elif m := _CLOCK.fullmatch(text):
            hours, minutes, secs = int(m[1] or 0), int(m[2]), int(float(m[3]))
            if secs >= 60 or (m[1] is not None and minutes >= 60):
                return None  # not a clock: 1:75:00, 10:99
            seconds = (hours * 60 + minutes) * 60 + secs
        else:
            return None
    else:
        return None
    return seconds if 0 < seconds < DURATION_MAX else None


_PLAYABLE = ("audio/", "video/")


def _playable(e: Enclosure) -> bool:
    """A sound or a video (by its type, else its file name): what a duration can be of."""
    if e.type and e.type.lower().startswith(_PLAYABLE):
        return True
    guessed = mimetypes.guess_type(urlparse(e.url).path)[0]
    return bool(guessed) and guessed.lower().startswith(_PLAYABLE)


def _with_duration(e: Enclosure, value: Any) -> Enclosure:
    seconds = duration_seconds(value) if value is not None else None
    return replace(e, duration=seconds) if seconds is not None and _playable(e) else e


def _timed(enclosures: tuple[Enclosure, ...], entry: dict[str, Any]) -> tuple[Enclosure, ...]:
    """`enclosures` with the episode's `itunes:duration` given to its sound or video: the
    first one of them, unless that one says its own (a JSON attachment, a media:content)."""
    raw = dict.get(entry, "itunes_duration")
    if raw is None:
        return enclosures
    i = next((i for i, e in enumerate(enclosures) if _playable(e)), None)
    if i is None or enclosures[i].duration is not None:
        return enclosures
    return (*enclosures[:i], _with_duration(enclosures[i], raw), *enclosures[i + 1 :])


_MEDIA_KINDS = ("image/", "video/", "audio/")


def _is_image(kind: str | None) -> bool:
    return bool(kind) and kind.lower().startswith("image/")


def _media_type(url: str, declared: object) -> str | None:
    """The MIME type of a Media RSS item: its `type`, else guessed from its file name (a
    thumbnail has none, and `mp4` or `jpg` is none); only images, videos and sounds, which
    readers show or play."""
    kind = _one_line(declared) if isinstance(declared, str) else None
    if not kind or not _MEDIA_TYPE.fullmatch(kind):
        kind = mimetypes.guess_type(urlparse(url).path)[0]
    return kind if kind and kind.lower().startswith(_MEDIA_KINDS) else None


def _language(entry: dict[str, Any], feed_language: str | None) -> str | None:
    """The entry's language as a BCP 47 tag (`language_tag`), or None: unknown.

    The first that is a language tag of the entry's own, its content's xml:lang (or HTTP
    Content-Language), its summary's or title's, then the feed's. A value that is no language
    tag (`xml:lang="utf-8"`, an encoding where the language goes) is passed over, as if not
    given: published, it claimed a language no reader knows, and it hid the one given next.
    """
    for value in (entry.get("language"), *_content_languages(entry), feed_language):
        tag = language_tag(value)
        if tag:
            return tag
    return None


def _content_languages(entry: dict[str, Any]) -> Iterable[object]:
    """The xml:lang (or HTTP Content-Language) of the content, then of the summary and title."""
    for part in entry.get("content") or ():
        if isinstance(part, dict):
            yield part.get("language")
    for key in ("summary_detail", "title_detail"):
        detail = entry.get(key)
        if isinstance(detail, dict):
            yield detail.get("language")
