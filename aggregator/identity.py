"""What makes an entry the same entry: canonical links, content fingerprints, bad guids.

Pure functions over plain values (no HTTP, no SQL): the pipeline feeds them what the
store knows and stores what they decide.

- `canonical_link` strips tracking parameters, so the same article syndicated by two
  sources (one with `?utm_source=rss`) is recognised as one.
- `text_fingerprint` hashes the title and visible text, for sources that syndicate the
  same article under different links.
- `guid_problem` tells when a source's guids cannot be trusted (one guid for different
  entries, or a new guid on every fetch for the same link), as FreshRSS and Miniflux
  users keep meeting; such a source then identifies its entries by link.
- `tell_apart` gives entries without a guid that share a link (a digest, a changelog
  page, podcast episodes all linking to the show's page) each an identity of their own.
- `same_feed_url` tells when a URL edited in the config still names the same feed
  (http→https, a trailing slash), so that the source keeps its posts' ids.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from .models import Post

GUID = "guid"  # identity mode: guid, else link, else title + content
LINK = "link"  # identity mode: link, else guid, else title + content

# Query parameters that only say who sent the reader, never which article it is.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "igshid", "li_fat_id", "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi",
        "__hstc", "__hssc", "__hsfp", "hsctatracking", "_openstat", "oly_anon_id", "oly_enc_id",
        "vero_id", "vero_conv", "rb_clickid", "s_cid", "sc_cid", "wickedid", "srsltid", "xtor",
        "spm", "scm", "ref_src", "ref_url", "guccounter", "guce_referrer", "guce_referrer_sig",
        "at_medium", "at_campaign", "cmpid", "ncid", "_ga", "_gl",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "matomo_", "piwik_", "hmb_", "fb_action_", "fb_ref", "fb_source")

# Below this many characters of visible text, equal text says nothing ("Read more", "Video").
MIN_FINGERPRINT_CHARS = 80

_DEFAULT_PORTS = {"http": "80", "https": "443"}

# Between a link and an entry's content hash in the identity of an entry told apart from
# others of its link (`tell_apart`): no absolute link holds a newline (urlsplit drops it).
SHARED_LINK = "\n"


def is_tracking_param(name: str) -> bool:
    key = name.lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def canonical_link(url: str | None) -> str | None:
    """The link with tracking parameters, fragment, default port and host case removed.

    Only an absolute http(s) URL has a canonical form; anything else gives None. The
    remaining query keeps its order: `?id=1&page=2` and `?page=2&id=1` may be different
    pages on a badly written site, and false duplicates would hide real articles.

    Stored canonical links are what link-identity sources find their posts by: a change
    here must keep giving the same result for links already stored (or migrate them).
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    # Filter the raw `k=v` pieces: decoding and re-encoding would turn `a%20b` into `a+b`
    # and make the same link look different.
    kept = [
        piece for piece in parts.query.split("&") if piece and not is_tracking_param(unquote_plus(piece.split("=")[0]))
    ]
    return urlunsplit((scheme, netloc, parts.path or "/", "&".join(kept), ""))


def names_one_page(link: str) -> bool:
    """Whether a canonical link can name one article: a site's home page (`/`, no query) cannot.

    Feeds link entries they have no page for to the home page, and podcast and section
    feeds often do for all of them: taken for an article's address, it made different
    entries of two sources "copies" of each other, and hid all but one.
    """
    parts = urlsplit(link)
    return parts.path not in ("", "/") or bool(parts.query)


def both_schemes(link: str) -> tuple[str, str]:
    """A canonical link and the same link under the other scheme: a site that moves to https
    rewrites every guid and link in its feed (`http://` → `https://`), and each entry, the
    same article, was stored and published a second time."""
    if link.startswith("https://"):
        return link, "http://" + link[8:]
    if link.startswith("http://"):
        return link, "https://" + link[7:]
    return link, link


def text_fingerprint(text: str, title: str = "", *, squeezed: bool = False) -> str | None:
    """A hash of the title and visible text, or None when the text is too short to mean anything.

    The title is part of it because platforms send the same boilerplate as the content of
    different articles ("This post is for paid subscribers..."); the same article
    syndicated twice has the same title as well as the same text. `squeezed`: the caller
    vouches that `text` is already `" ".join(text.split())` (`sanitized_text` output), which
    saves squeezing it again (two thirds of the cost here).
    """
    folded = (text if squeezed else " ".join(text.split())).casefold()
    if len(folded) < MIN_FINGERPRINT_CHARS:
        return None
    key = " ".join(title.split()).casefold() + "\n" + folded
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def guid_problem(
    entries: Iterable[tuple[str | None, str | None]],
    known: Mapping[str, Iterable[str]] | None = None,
) -> str | None:
    """Why this source's guids cannot identify its entries, or None when they can.

    `entries` are this fetch's (identity under guid mode, canonical link) pairs; `known`
    maps canonical links already stored for the source to the identities stored for them. Link identity is
    only proposed when it is better: every entry has a link and no two share one.
    """
    pairs = list(dict.fromkeys(entries))  # an entry listed twice is not a guid problem
    links = [link for _, link in pairs]
    if not pairs or None in links or len(set(links)) != len(links):
        return None  # links cannot tell the entries apart either: keep what we have
    by_guid: dict[str, set[str]] = defaultdict(set)
    for guid, link in pairs:
        if guid:
            by_guid[guid].add(link)  # type: ignore[arg-type]
    shared = sum(1 for links_of in by_guid.values() if len(links_of) > 1)
    if shared:
        worst = max(by_guid.items(), key=lambda kv: len(kv[1]))
        return f"{shared} guid(s) used for different entries (e.g. {worst[0]!r} for {len(worst[1])} links)"
    if known:
        matched = changed = 0
        for guid, link in pairs:
            old = known.get(link)  # type: ignore[arg-type]
            if old is None:
                continue
            matched += 1
            if guid not in set(old):
                changed += 1
        # One changed guid among many is more likely a new entry reusing a link; most of
        # them changing means the feed makes guids up on every fetch.
        if changed * 2 > matched:
            return f"guids changed between fetches for {changed} of {matched} known links"
    return None


def same_feed_url(a: str, b: str) -> bool:
    """Whether two source URLs differ only by http/https or a trailing slash of the path.

    The edits a user makes to a URL that still names the same feed (a site moved to
    https, a URL copied with or without its final `/`); anything else (another path, host,
    port or query) may be another feed and is not taken for the same one.
    """
    key = feed_url_key(a)
    return key is not None and key == feed_url_key(b)


def feed_url_key(url: str) -> tuple[str, ...] | None:
    """What `same_feed_url` compares: equal for two URLs exactly when it holds (None: never
    the same as any), so that many URLs are matched through a dict, not pair by pair."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.netloc:
        return None
    user, at, host = parts.netloc.rpartition("@")
    return (user + at + host.lower(), parts.path.rstrip("/"), parts.query, parts.fragment)


def post_id(source_key: str, identity: str) -> str:
    """16 hex digits, the same for the same entry forever (file names, URLs, GUIDs)."""
    return hashlib.sha256(f"{source_key}\n{identity}".encode()).hexdigest()[:16]


def link_identity(
    posts: Iterable[Post], source_key: str, stored: Mapping[str, str], told_apart: Collection[str] = ()
) -> list[Post]:
    """The posts identified by link, keeping the id a post of the same link already has.

    `stored` maps canonical links to the ids stored for them (under guid identity, before
    the source was found to have bad guids): reusing those ids means every published
    post keeps its URL and feed GUID, and no second copy appears when identity changes.
    Entries without guid of the `told_apart` links (`tell_apart`) keep the ids it gave:
    the link's first-seen post is one of several entries, and would be overwritten.
    """
    posts = list(posts)
    guids_of: dict[str, set[str]] = defaultdict(set)
    for p in posts:
        if p.canonical_link:
            guids_of[p.canonical_link].add(p.guid)
    out = []
    for p in posts:
        key = p.canonical_link  # a FeedBurner entry's: its redirect's, not its original's
        if not key or len(guids_of[key]) > 1 or (p.linked and identity_link(p) in told_apart):
            out.append(p)  # the link does not tell this entry from another one: keep its guid identity
            continue
        pid = stored.get(key) or post_id(source_key, key)
        out.append(replace(p, id=pid, guid=key))
    return out


# Between the hash of an entry's title and content and its first enclosure's URL, in the
# identity of an entry without guid or link that has one (`hashed_identity`): the hash is
# 32 hex digits, and no URL holds a newline.
ENCLOSED = "\n"


def hashed_identity(text_hash: str, enclosure: str | None) -> str:
    """The identity of an entry without guid or link: the hash of its title and content, and
    its first enclosure's URL (tracking parameters dropped) when it has one. Made of title and
    content alone, the untitled or "Daily" episodes of a podcast giving no description were
    one post, each new one taken for an edit of the last: their sound is what tells them
    apart. Posts stored under the hash alone keep it (`earlier_hashed_ids`)."""
    return f"{text_hash}{ENCLOSED}{enclosure_key(enclosure)}" if enclosure else text_hash


def enclosure_key(url: str) -> str:
    """An enclosure's URL as an identity holds it: without tracking parameters or fragment,
    nor the signature of a signed URL (`unsigned`): a show whose host signs its sounds anew at
    each poll (`?Expires=…&Signature=…`) had each undated episode without guid or link come
    as a new post at every poll. Only the identity: the URL is published as given."""
    return unsigned(canonical_link(url) or url)


# The query parameters of signed URLs, which a CDN or storage service writes anew each time it
# signs one (expiry, signature, signing key or credentials): CloudFront (`Expires`, `Signature`,
# `Key-Pair-Id`, `Policy`), S3 and Google Cloud Storage (`AWSAccessKeyId`, `GoogleAccessId`,
# `X-Amz-…`, `X-Goog-…`), Azure (`sig`), Akamai (`hdnts`, `hdnea`, `__token__`); in lower case.
SIGNING_PARAMS = frozenset(
    {"expires", "signature", "key-pair-id", "policy", "awsaccesskeyid", "googleaccessid", "sig", "hdnts", "hdnea",
     "__token__"}
)  # fmt: skip
SIGNING_PREFIXES = ("x-amz-", "x-goog-")
# and those that sign along with one of them, too short or common to be dropped alone (an Azure
# SAS's start and expiry times, version and permissions; nginx secure_link's `md5`)
SIGNED_WITH = frozenset({"se", "st", "sv", "sp", "sr", "spr", "srt", "ss", "skoid", "sktid", "skt", "ske", "sks",
                         "skv", "sip", "md5", "token", "exp"})  # fmt: skip


def _signing(name: str) -> bool:
    key = unquote_plus(name).lower()
    return key in SIGNING_PARAMS or key.startswith(SIGNING_PREFIXES)


def unsigned(url: str) -> str:
    """`url` without the query parameters that sign it (`SIGNING_PARAMS`, and with them
    `SIGNED_WITH`); the rest of the query kept as written, in its order (an episode's `?id=7`
    names it). A URL with none is returned as it is."""
    head, mark, query = url.partition("?")
    if not mark:
        return url
    pieces = [piece for piece in query.split("&") if piece]
    names = [piece.split("=", 1)[0] for piece in pieces]
    if not any(_signing(n) for n in names):
        return url
    kept = [
        p for p, n in zip(pieces, names, strict=True) if not _signing(n) and unquote_plus(n).lower() not in SIGNED_WITH
    ]
    return f"{head}?{'&'.join(kept)}" if kept else head


@dataclass(frozen=True)
class HashedPost:
    """A stored post of an entry without guid or link, as `earlier_hashed_ids` matches
    entries against it."""

    id: str
    guid: str  # its identity: the hash of title and content, and its enclosure (`hashed_identity`) or not
    enclosure: str | None  # its first enclosure's URL, as `enclosure_key` gives it; None: it had none
    published: datetime | None  # None when it was undated


def earlier_hashed_ids(posts: Sequence[Post], stored: Mapping[str, Sequence[HashedPost]]) -> list[Post]:
    """The posts, an entry without guid or link that has an enclosure keeping the id and
    identity of the post it was stored as under another (`stored`: the hash of title and
    content → the source's posts of it). The post of its own identity is it; else one stored
    under the hash alone, as versions before 12 identified every such entry, of the same
    enclosure; else one stored under its enclosure's URL as the identity held it then (with the
    signature of a signed URL, `enclosure_key`); else (no entry is that post) one of the same
    date (a show moving its sounds to
    another host keeps its episodes' dates), else one that had no enclosure. Each post is one
    entry, and each entry one post: an entry that is a post already is taken for no other
    (one listed before the episode that gained its sound took that episode's post, its own id
    changing). The others of its hash, episodes an older version merged into it, are new posts.
    Entries new to the source are identified with their enclosure, so that none is taken
    for another, in this fetch or a later one: a hash alone, once its post was pruned, would
    be the id of the next "Daily" episode, which readers took for the one they had seen."""
    left = {base: list(rows) for base, rows in stored.items() if rows}
    if not left:
        return list(posts)
    out = list(posts)
    matched: set[int] = set()  # the entries that are a stored post already
    for step in (_SAME_IDENTITY, _SAME_SOUND, _SAME_DATE, _HAD_NONE):
        for i, p in enumerate(out):
            base, sep, enclosure = p.guid.partition(ENCLOSED)
            rows = left.get(base) if p.hashed and i not in matched else None
            if not rows or (step != _SAME_IDENTITY and not sep):
                continue  # (an entry without enclosure is only the post of its own identity)
            row = next((r for r in rows if _same_episode(r, p, enclosure, step)), None)
            if row is not None:
                rows.remove(row)
                matched.add(i)
                out[i] = replace(p, id=row.id, guid=row.guid)
    return out


# How `earlier_hashed_ids` matches an entry with a stored post, in this order: by identity
# (or, for a post stored under the hash alone, by enclosure), by its sound's URL as the
# identity now holds it (a post stored under the URL's signature of then, which
# `enclosure_key` drops now), by date, by having had no enclosure
_SAME_IDENTITY, _SAME_SOUND, _SAME_DATE, _HAD_NONE = range(4)


def _same_episode(row: HashedPost, p: Post, enclosure: str, step: int) -> bool:
    """Whether the stored `row` is the entry `p` (its enclosure `enclosure`), as `step` tells."""
    if step == _SAME_IDENTITY:
        return row.guid == p.guid or (ENCLOSED not in row.guid and row.enclosure == enclosure)
    if step == _SAME_SOUND:  # stored under its sound's URL as the identity held it then (signed)
        return ENCLOSED in row.guid and row.enclosure == enclosure
    if step == _SAME_DATE:
        return p.dated and row.published == p.published  # (p.dated: a bool)
    return row.enclosure is None


def identity_link(p: Post) -> str | None:
    """The link `p`'s identity is made of: its link as the feed wrote it, which is not the one
    published when FeedBurner recorded the original of its redirect (`Post.written_link`)."""
    return p.written_link or p.link


def shares_link(link: str | None, identity: str) -> bool:
    """Whether `identity` is one `tell_apart` gave an entry of `link` sharing it with others."""
    return bool(link) and identity.startswith(f"{link}{SHARED_LINK}")


@dataclass(frozen=True)
class LinkedPost:
    """A stored post of an entry without guid, as `tell_apart` matches entries against it."""

    id: str
    guid: str  # its identity: the link, or the link and a content hash (`shares_link`)
    title: str
    content: str
    content_hash: str


def tell_apart(
    posts: Sequence[Post],
    source_key: str,
    stored: Mapping[str, Sequence[LinkedPost]] | None = None,
    pruned: Mapping[str, str] | None = None,
    older: Callable[[Post], str] | None = None,
) -> list[Post]:
    """The posts, entries without a guid (`Post.linked`) that share a link each with an id of its own.

    Such an entry is identified by its link: a digest, changelog or podcast feed linking
    every entry to one page had all but one of them dropped, for good. A link only one
    entry has, and ever had, keeps its link identity (a changed id is a post readers show
    again as new). Entries of a shared link are `link + SHARED_LINK + content hash`, but for
    the one that keeps the link's own id: the entry stored under it, else (a link new to the
    source) the first one listed, which had it when the others were dropped.

    `stored` (link → the source's posts identified by it, `Store.linked_posts`)
    keeps the ids of entries already stored, in whatever order the feed lists them: an entry
    is the post of its own id or content hash, else the one post with its title (its text
    was edited), else the one post with its text (its title was corrected). Trade-off: a
    title or text that several of the link's posts or entries share matches nothing (a
    digest titled "Daily digest" each day is not an edit of the day that left the feed), so
    an entry edited in such a field, or in title and text at once, comes as a new post, its
    old version staying as it was. `pruned`: ids pruned while still listed, so taken, each
    with the content hash its post had: an entry of that hash (a hash covers the link) is
    that post, and keeps its id, so that the store skips it (else, under another id, it
    came back as new). `older` gives the hash an older version gave an entry, for posts it
    pruned (a hash-changing upgrade made them new again).
    """
    stored = stored or {}
    pruned = pruned or {}
    groups: dict[str, dict[str, Post]] = defaultdict(dict)  # link → content hash → its first entry
    for p in posts:
        if p.linked and p.link:
            groups[identity_link(p)].setdefault(p.content_hash, p)
    given: dict[tuple[str, str], tuple[str, str]] = {}  # (link, content hash) → (id, identity)
    for link, entries in groups.items():
        rows = list(stored.get(link, ()))
        if len(entries) == 1 and not any(shares_link(link, r.guid) for r in rows):
            continue  # one entry of the link, and only ever one: its link identity, as always
        before = {older(p): key for key, p in entries.items()} if older and pruned else {}
        gone = [
            LinkedPost(pid, link, "", "", h if h in entries else before[h])
            for pid, h in pruned.items()
            if h and (h in entries or h in before)
        ]
        found = _matched(list(entries.values()), rows + gone, source_key, link)
        own = post_id(source_key, link)
        free = not rows and own not in pruned  # a link new to the source
        for key in entries:
            if key in found:
                given[link, key] = (found[key].id, found[key].guid)
            elif free:
                given[link, key], free = (own, link), False
            else:
                identity = f"{link}{SHARED_LINK}{key}"
                given[link, key] = (post_id(source_key, identity), identity)
    out = []
    for p in posts:
        pid_guid = given.get((identity_link(p), p.content_hash)) if p.linked and p.link else None
        out.append(p if pid_guid is None else replace(p, id=pid_guid[0], guid=pid_guid[1]))
    return out


def _matched(entries: list[Post], rows: list[LinkedPost], source_key: str, link: str) -> dict[str, LinkedPost]:
    """Content hash → the stored post each entry of one link is (see `tell_apart`)."""
    found: dict[str, LinkedPost] = {}
    left = list(rows)
    for p in entries:
        own = post_id(source_key, f"{link}{SHARED_LINK}{p.content_hash}")
        row = next((r for r in left if r.id == own or r.content_hash == p.content_hash), None)
        if row is not None:
            found[p.content_hash] = row
            left.remove(row)
    for field in ("title", "content"):  # an edited text keeps its title; a corrected title, its text
        for p in entries:
            value = getattr(p, field)
            if p.content_hash in found or not value:
                continue
            if sum(getattr(q, field) == value for q in entries) > 1:
                continue
            if sum(getattr(r, field) == value for r in rows) != 1:
                continue
            row = next((r for r in left if getattr(r, field) == value), None)
            if row is not None:
                found[p.content_hash] = row
                left.remove(row)
    return found
