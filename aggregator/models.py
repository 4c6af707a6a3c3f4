"""Plain value objects passed between the stages of the pipeline.

Each stage takes one of these and returns the next, so no stage needs to know how an
earlier one did its work (see DESIGN.md: config → fetch → parse → normalize → store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# What reads a feed into posts (parse, normalize, sanitize) as of this version: raise it when
# a change makes unchanged entries come out otherwise (`bench.dump_posts` shows it). The store
# keeps it per post, and a post that differs only because a newer version read it is refreshed
# without being dated as edited: readers would have shown every such post as updated at once.
# 2: media:description read as plain text unless typed html (line breaks kept), and a podcast
#    episode's duration kept with its sound (`Enclosure.duration`).
# 3: an episode's image that is the show's own cover art is no longer one of its enclosures.
# 4: `<link>?</link>` and a permalink `<guid>#</guid>` name the feed itself: no link (as
#    `<link>#</link>` since 2); `<comments>#</comments>` no comments URL; the show's art given
#    as the channel's media:thumbnail / image media:content or an Atom logo / icon, and any
#    of the feed's art repeated as an episode's media:thumbnail / media:content, no enclosure.
# 5: a feed that declares no encoding and is not UTF-8 is read in the encoding detected
#    (charset.guess_encoding) where windows-1252 clearly fits worse: a GB2312 feed's stored
#    mojibake titles and content come out as Chinese, refreshed rather than dated as edits.
# 6: lazy iframes get their src and every video/audio has controls (preload at most
#    `metadata`); a <noscript> spares only the lazy image it duplicates; an enclosure without
#    a type (or feedparser's `text/html` default) is typed by its file name; a permalink guid
#    that is no absolute URL is no link; an RSS title escaped twice is decoded alike; a feed
#    naming only itself has no home page; a post with nothing to name it has no stored title.
# 7: a feed's relative links (an entry's `#fn1` footnotes, its author's page) are resolved
#    against its URL without its secret query parameters (`credentials.without_secrets`).
# 8: a post's content hash takes its link without tracking parameters (`canonical_link`): a
#    link whose `utm_*` changes at every fetch is no edit.
#    An image's or video's caption (a Media RSS media:description) is no longer the content of
#    an entry that has a description or summary of its own, nor its summary; a summary keeps
#    the type of its own element (SlideShare's HTML is no longer escaped as plain text); an
#    author written `mailto:x@y.org (Name)` is named `Name`, not `mailto: (Name`.
#    A month alone (`September 2008`, `Sept. 2008`, `2008-09`, `2008/09`, `2008年9月`) is a
#    date, the first of the month at midnight in the source's zone: a post an older version
#    found no date in (dated when first seen, on top) takes that date, once (`store._newly_dated`).
#    A FeedBurner entry's link is the page its `feedburner:origLink` names, not FeedBurner's
#    redirect (its id still made of the redirect), and its enclosure the `origEnclosureLink`.
#    A language that is no BCP 47 tag (`xml:lang="utf-8"`) is no language: the next one given
#    (the content's, the feed's) or none. Not in the content hash (post ids are made of it): a
#    post read again whose language now differs is stored again all the same (store._relabelled),
#    and the publishers drop such a value a post not read again still holds.
# 9: a feed labelled another encoding (a server's `charset=gbk`, a copied declaration) whose
#    bytes are evidently UTF-8 is read as UTF-8 (`charset._evidently_utf8`): the mojibake an
#    older version stored of it is refreshed, not dated as an edit. A Pheedo entry links to
#    its `pheedo:origLink`, as a FeedBurner one to its origLink (8).
#    Versions already at 8 before some of its readings (3d09b71, for one) stored what 8 now
#    reads otherwise as 8's: upgraded from one, every FeedBurner post (the redirect as link
#    and enclosure) was dated as edited, a feed dated by the month kept its posts dated when
#    first seen, on top as news, for good (`store._newly_dated`), and an `xml:lang="utf-8"`
#    stayed stored. At 9 they take the new reading once, as from 7.
# 10: titles made of an untitled post's text, and capped titles, are cut between whole
#    characters (grapheme clusters), a Thai (Lao, Khmer, Burmese) one at its first phrase, an
#    emoji's or a Korean one at whole words, and a title that shows nothing (`&#8203;`) is made
#    of the text; a <pre> starting with a blank line keeps it, and a `feed:` link must wrap a
#    web URL. Posts an older version stored take these once, not dated as edits; ids unchanged.
# 11: an embed off the video hosts' list leaves a link, a gist's script a link to the gist, a
#    WordPress emoji picture its character, a task list's checkboxes ☑/☐, a lazy video or sound
#    its src; feed services' counters and FeedFlare pictures are dropped whatever their size;
#    an http:// YouTube or Vimeo player, and a YouTube Flash embed, play over https; a long
#    MathML CDATA section shows no cut. An enclosure or media:content typed by a file extension
#    (`mp3`) is typed by its file name; the fast path reads `rel="Enclosure"` as feedparser does.
#    A feed whose bytes fail the encoding it declares (a GBK feed saying UTF-8) is read in the
#    one detected: the mojibake an older version stored is refreshed, not dated as an edit.
# 12: an entry's media:thumbnail is no enclosure when the entry has an image already (the photo
#    as an enclosure or media:content, the thumbnail that photo small): it was shown twice.
#    An entry with neither guid nor link is identified by its title, content and first
#    enclosure (`identity.hashed_identity`); one stored under title and content alone keeps
#    its id (`identity.earlier_hashed_ids`).
#    A post's links to its own footnotes lead to them (the ids they name kept, prefixed
#    `<post id>-`); an ad or counter link left empty, an `<img src="">`, a lazy image's preview
#    beside its <noscript> copy, and figures and wrappers emptied by an inline SVG go; a counter
#    host written with character references goes; a YouTube channel's video gets the player.
# 13: a media:content's media:description is its picture's alt text (`Enclosure.description`:
#    Mastodon's); an `<a name>` a post's own link leads to is kept, prefixed as ids are; an
#    inline SVG with `role="img"` leaves its title (or aria-label) as text; a FeedBurner ad
#    block leaves no `<br>` or empty paragraph. An untitled post opening with a content warning
#    (Mastodon's `<p><strong>…</strong>…</p><hr>`) is titled by the warning alone.
NORMALIZER_VERSION = 13

# The title versions up to 5 stored for an entry with no title, text or link (now stored empty, and
# named by the publishers in the site's language): what the identity of such an entry
# without guid is still made of, so that it keeps its id.
UNTITLED = "(untitled)"


@dataclass(frozen=True)
class Source:
    """One feed to poll, as resolved from the config (a URL listed twice is one Source)."""

    key: str  # stable identity: the configured URL
    url: str  # what to fetch now (the configured URL, or a learnt one)
    name: str | None = None  # configured display name; else the feed's own title
    categories: tuple[str, ...] = ()  # category slugs this source feeds
    interval: float = 1800.0  # seconds
    timezone: str = "UTC"  # for dates written without a zone
    timeout: float = 30.0  # total deadline of one request, redirects included
    user_agent: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may carry secrets
    adaptive: bool = False  # `interval: auto`: `interval` is only the start, then learnt from the feed
    min_interval: float = 300.0
    max_interval: float = 86400.0
    enabled: bool = True
    auth: tuple[str, str] | None = field(default=None, repr=False)  # basic auth (username, password)
    # `tls_verify`: True (the CA bundle requests would use), False (no verification: a
    # self-signed certificate), or the absolute path of a CA bundle file or c_rehash'd folder
    tls_verify: bool | str = True
    per_host: int | None = None  # site.per_host: requests in flight to one host (None: the Fetcher's)
    # per category this source feeds: the include/exclude rules that decide what is published
    filters: tuple[CategoryFilter, ...] = ()
    keep_duplicates: tuple[str, ...] = ()  # category slugs configured with `duplicates: keep`
    retention: Retention = field(default_factory=lambda: Retention())
    # what its post ids are computed from (the store's `id_key`): its key, or the key of the
    # source it took over when its URL was edited in the config, so the ids stay the same
    id_key: str | None = None

    @property
    def ids_from(self) -> str:
        return self.id_key or self.key


@dataclass(frozen=True)
class FilterRule:
    """Regular expressions on post fields; the rule matches when every one of them does."""

    patterns: tuple[tuple[str, str], ...]  # (field, regex); field in FILTER_FIELDS


FILTER_FIELDS = ("title", "content", "author", "tag", "link")


@dataclass(frozen=True)
class RuleSet:
    """One config level's rules: a post passes when some include rule (if any) matches and no exclude rule does."""

    include: tuple[FilterRule, ...] = ()
    exclude: tuple[FilterRule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)


@dataclass(frozen=True)
class CategoryFilter:
    """What decides whether a source's post is published in one category: every level must pass."""

    category: str
    levels: tuple[RuleSet, ...]  # the source listing's (or `defaults:`) rules, then the category's


@dataclass(frozen=True)
class Retention:
    """How many of a source's posts the store keeps; None is unlimited."""

    keep_days: float | None = None
    keep_per_source: int | None = None
    protect: int = 50  # the newest N posts of every category are never pruned (site.items_per_feed)

    @property
    def limited(self) -> bool:
        return self.keep_days is not None or self.keep_per_source is not None


@dataclass(frozen=True)
class FetchResult:
    """Outcome of one HTTP exchange; `body` is None for 304 Not Modified."""

    url: str  # final URL after redirects
    status: int
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0
    redirects: tuple[tuple[int, str], ...] = ()  # each hop followed: (status, the URL it pointed to)
    permanent_redirect: str | None = None  # where the leading 301/308 hops lead, to learn after a streak

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class Author:
    name: str | None = None
    email: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None
    duration: int | None = None  # seconds of play, for a sound or a video (itunes:duration, duration_in_seconds)
    # what it shows, in words, for those who cannot see it: its media:content's media:description
    # (Mastodon's alt text), one line of plain text
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stored and hashed form. `duration` and `description` only when known: an
        enclosure without them is the dict it was before they were kept, so its post's
        content hash and row stay the same bytes."""
        d: dict[str, Any] = {"url": self.url, "type": self.type, "length": self.length}
        if self.duration is not None:
            d["duration"] = self.duration
        if self.description:
            d["description"] = self.description
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Enclosure:
        """An enclosure as `as_dict` stored it, or as an older version did (no `duration`,
        no `description`; one reading this version's row ignores the keys it does not know)."""
        return cls(d["url"], d.get("type"), d.get("length"), d.get("duration"), d.get("description"))


@dataclass(frozen=True)
class FeedInfo:
    """What the feed says about itself (channel level)."""

    title: str | None = None
    link: str | None = None
    subtitle: str | None = None
    language: str | None = None
    ttl_minutes: int | None = None
    update_seconds: float | None = None  # sy:updatePeriod / sy:updateFrequency, as a period
    title_type: str = "text/plain"  # as parsed: text/html or xhtml titles still hold markup
    # the feed's cover (normalize.feed_info): its one channel image (itunes:image, <image>,
    # logo), an absolute http(s) URL, or its one itunes:image among several that differ;
    # else None
    image: str | None = None


@dataclass(frozen=True)
class PollUpdate:
    """What one poll learnt about where and how often to poll next; stored with its outcome."""

    fetch_url: str  # what to fetch next time (configured, discovered or learnt)
    learnt_url: str | None = None  # a permanent redirect seen on enough consecutive polls
    discovered_url: str | None = None  # the feed an HTML page's <link rel="alternate"> names
    redirect_url: str | None = None  # a permanent redirect seen, not yet learnt
    redirect_count: int = 0  # consecutive polls that saw `redirect_url`
    interval: float | None = None  # the interval now in force (seconds)
    feed_hint: float | None = None  # the feed's own <ttl>/sy:update* hint (seconds)
    result: str | None = None  # one line for `status`: "not modified", "same body", "20 entries"


@dataclass
class Post:
    """The common post model: one row per (source, entry)."""

    id: str  # 16 hex digits, stable forever
    source: str  # Source.key
    guid: str  # the identity the id was made from
    title: str
    link: str | None
    published: datetime  # aware, UTC
    updated: datetime  # aware, UTC
    content: str = ""  # sanitized HTML, absolute URLs
    summary: str = ""  # sanitized HTML
    authors: tuple[Author, ...] = ()
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None
    comments: str | None = None
    content_hash: str = ""
    first_seen: datetime | None = None
    dated: bool = True  # False when `published` is only the fetch time (the entry had no date)
    categories: tuple[str, ...] = ()  # filled by the store: the categories that publish the post
    source_title: str | None = None  # filled by the store, for attribution
    source_link: str | None = None  # the feed's home page, for attribution
    source_url: str | None = None  # the feed URL, for attribution
    canonical_link: str | None = None  # link without tracking parameters: finds cross-source duplicates
    fingerprint: str | None = None  # hash of title + visible text: finds duplicates under other links
    excluded: tuple[str, ...] = ()  # category slugs whose filters keep this post out
    duplicate_of: str | None = None  # id of the first-seen post of another source with the same article
    # the entry has no guid and is identified by its link (`identity.tell_apart`); not stored
    linked: bool = field(default=False, compare=False)
    # the entry has neither guid nor link, so its identity is a hash of title and content; not stored
    hashed: bool = field(default=False, compare=False)
    # the entry's link as written when `link` is another (FeedBurner's origLink for its redirect,
    # `normalize._original`): what the entry's identity is made of, so ids stay; not stored
    written_link: str | None = field(default=None, compare=False)

    @property
    def author_name(self) -> str | None:
        return next((a.name for a in self.authors if a.name), None)
