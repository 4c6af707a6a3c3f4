"""Render a list of posts as Atom 1.0, RSS 2.0 and JSON Feed 1.1 documents.

Pure functions: the caller passes the posts (newest first) and gets bytes back; nothing
here reads the store, the clock or the locale, so rendering the same posts twice yields
the same bytes and `write_if_changed` leaves unchanged feeds alone.

Each post is reduced once to a format-neutral `_Item` (clean strings, ASCII URIs, UTC
dates, the excerpt), from which the three documents are written directly: Atom and RSS as
text with lxml's escaping and layout, JSON Feed with the json module. Atom and RSS were
built with feedgen until its element trees, the re-parse that gave them real namespaces
and the repairs of its faults (lost link rels, entries reversed, dates defaulting to *now*,
`length="None"`, the wrong channel link, rel-less `<source>` links, no hub link in RSS)
were measured at more than half of the feeds' cost in a full publish (bench/README.md,
"Feeds without feedgen"); the Atom and RSS bytes written are the same. Every string is
first stripped of the characters XML 1.0 forbids (`clean_text`).
"""

from __future__ import annotations

import functools
import json
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape as html_escape
from urllib.parse import quote, urlsplit, urlunsplit

import lxml.html
import orjson
from lxml import etree

from .. import PROJECT_URL, __version__
from ..models import Author, Enclosure, Post
from ..sanitize import ALLOWED_TAGS, BIDI_CONTROLS, grapheme_start
from ..sanitize import language_tag as _language_tag
from .memo import IdentityMemo

__all__ = [
    "FeedMeta",
    "bidi_closed",
    "bidi_isolated",
    "clean_text",
    "html_excerpt",
    "language_tag",
    "permalink",
    "post_guid",
    "render_atom",
    "render_feeds",
    "render_json",
    "render_rss",
    "stated_language",
    "web_url",
    "written_in",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
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
_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")
_EMAIL = re.compile(r"^[^@\s<>()]+@[^@\s<>()]+$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A host name may end in the root's dot (`feeds.example.org.`, a fully qualified name: `check`
# takes it and the fetcher fetches it); its source's links were dropped from every feed.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?\.?|\[[0-9A-Fa-f:.]+\])$")


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
    # The feed's updated time while it has no posts (its newest post's otherwise): the
    # publisher's record of since when it has been empty, never the clock at rendering.
    empty_since: datetime | None = None
    # The updated time this feed last gave: it never goes back, though its newest post leaves
    # it (taken down, pruned, re-dated); readers and caches comparing it took the feed as older.
    updated_floor: datetime | None = None
    # what a post with no title, text or link is called, in the site's language (site.py's words)
    untitled: str = "(untitled)"
    # the feed's cover, an absolute http(s) URL: the RSS channel's `<image>` (and, for a
    # podcast, its itunes:image, which podcast apps show), Atom's `<icon>` and `<logo>`,
    # JSON Feed's `icon`
    image: str | None = None


# ----------------------------------------------------------------------------- helpers


def clean_text(text: str | None) -> str:
    """`text` without the characters XML 1.0 cannot carry (lxml raises on them)."""
    if not text:
        return ""
    if len(text) < _LONG_TEXT:
        return _NOT_XML.sub("", text)
    cleaned = _CLEANED.get(text)
    if cleaned is None:
        cleaned = _clean_long(text)
        if len(text) <= _CLEANED_TEXT:
            _CLEANED.put(text, cleaned)
    return cleaned


def _clean_long(text: str) -> str:
    # A post's content: checked at C speed first (~3x the regex), since it is almost always clean.
    try:
        data = text.encode("utf-8")  # refuses a lone surrogate
    except UnicodeEncodeError:
        return _NOT_XML.sub("", text)
    if len(data.translate(None, _C0)) != len(data) or "\ufffe" in text or "\uffff" in text:
        return _NOT_XML.sub("", text)
    return text


_LONG_TEXT = 512
# A post's content and summary are cleaned by its feed items and again for its pages (and
# the all-posts feeds): the same string object, whose check costs as much as escaping it.
_CLEANED: IdentityMemo[str, str] = IdentityMemo(256)
_CLEANED_TEXT = 65_536  # longer texts are not kept (the memo stays small)
_C0 = bytes(b for b in range(32) if b not in b"\t\n\r")  # in UTF-8 these bytes are only themselves


def _one_line(text: str | None) -> str:
    """A title, name or tag as the feeds write it: on one line, closing the bidi controls it opens."""
    return bidi_closed(" ".join(clean_text(text).split()))


# Bidi embeddings and overrides (LRE, RLE, LRO, RLO; closed by PDF) and isolates (LRI, RLI,
# FSI; closed by PDI).
_BIDI_CONTROL = re.compile(f"[{BIDI_CONTROLS}]")
_CLOSES = {"\u202a": "\u202c", "\u202b": "\u202c", "\u202d": "\u202c", "\u202e": "\u202c"}
_CLOSES.update(dict.fromkeys("\u2066\u2067\u2068", "\u2069"))


def bidi_closed(text: str) -> str:
    """`text` with the bidi embeddings, overrides and isolates it opens closed at its end: a
    title, source or author holding an RLO (U+202E) reversed the text after it to the end of
    the line (UAX #9): on our pages `· World Desk` in the window title, the categories and
    `By …` beside a listing's source; in a reader, the excerpt shown on a title's line."""
    if not _BIDI_CONTROL.search(text):
        return text
    open_: list[str] = []
    for ch in _BIDI_CONTROL.findall(text):
        if ch in _CLOSES:
            open_.append(_CLOSES[ch])
        elif ch == "\u202c":  # a PDF closes an embedding, not past an isolate
            if open_ and open_[-1] == ch:
                open_.pop()
        elif ch in open_:  # a PDI closes its isolate and what was opened inside it
            while open_.pop() != ch:
                pass
    return text + "".join(reversed(open_))


_ISOLATE_OPENER = {"rtl": "\u2067", "ltr": "\u2066"}  # RLI, LRI; else FSI (first strong letter)


def bidi_isolated(text: str, direction: str | None = None) -> str:
    """`text` between an isolate opener and its PDI (U+2069), for where markup cannot isolate
    it: a page's `<title>`. A title written the other way than the rest of the tab's line lost
    its ending punctuation to the far side (`!عاجل` for `عاجل!`, beside ` · My Site`). RLI or
    LRI when its direction is known (`rtl`, `ltr`), else FSI; what `text` opens is closed, and
    a PDI it holds with nothing of its own to close is dropped, lest it close ours early."""
    if "\u2069" in text:
        depth, kept = 0, []
        for ch in text:
            if ch in "\u2066\u2067\u2068":
                depth += 1
            elif ch == "\u2069":
                if not depth:
                    continue
                depth -= 1
            kept.append(ch)
        text = "".join(kept)
    return _ISOLATE_OPENER.get(direction or "", "\u2068") + bidi_closed(text) + "\u2069"


_WEB = ("http", "https")
# An http(s) URI that _normalized_uri() gives back unchanged: lowercase scheme and host (a name), a port
# without leading zeros, and only characters that need no escaping; no empty "?" or "#".
_PLAIN_URI = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9_.-]*[a-z0-9])?(?::[1-9][0-9]{0,3})?"
    r"(?:/(?:[-A-Za-z0-9_.~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*)?"
    r"(?:\?(?:[-A-Za-z0-9_.~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})+)?"
    r"(?:#(?:[-A-Za-z0-9_.~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})+)?"
)


def web_url(url: str | None) -> str | None:
    """`url` when it is an http(s) URL, else None: a stored link older versions did not check
    (`javascript:`) is not made a link on our pages or in the OPML."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


@functools.lru_cache(maxsize=8192)
def feed_uri(url: str | None, schemes: tuple[str, ...] = _WEB) -> str | None:
    """An absolute URL as a plain-ASCII URI, or None when it is not one we can publish.

    IRIs (CJK paths, IDN hosts) are legal in Atom but not in RSS or JSON Feed (whose schema
    checks `format: uri`), so every URL is percent-encoded / punycoded the same way, and a
    URL whose host is not a host name or IP literal is dropped rather than published broken.
    Cached: the same source and site URLs come up for every item of every feed.
    """
    if url and schemes == _WEB and _PLAIN_URI.fullmatch(url):
        return url  # already what _normalized_uri() would make of it (most links are)
    return _normalized_uri(url, schemes)


def _normalized_uri(url: str | None, schemes: tuple[str, ...]) -> str | None:
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


def _json_date(dt: datetime) -> str:
    """RFC 3339 in UTC of a date that is already `_utc`: "2024-03-01T12:00:00Z"."""
    return dt.isoformat()[:19] + "Z"


def language_tag(tag: str | None) -> str | None:
    """A feed's or post's language as a BCP 47 tag (`zh_TW`, a locale, as `zh-TW`), or None:
    what feeds, `lang` attributes and `:lang()` selectors need. The normalizer keeps no other
    (NORMALIZER_VERSION 8), but a post stored before and not read since (its feed unchanged,
    or the entry gone from it) still holds what it was given (`utf-8`)."""
    return _language_tag(clean_text(tag))


# Letters of the scripts a text may be written in (Unicode blocks). Han and kana are counted a
# character each, the others a word each: a Chinese sentence naming an English product is
# still read as Chinese.
_SCRIPT_UNIT = re.compile(
    # (no letter of any: spaces, digits, ASCII and CJK punctuation, passed over at once, not
    # tried against each script: 4x faster on Chinese or Arabic text)
    "(?=[^\\s!-@\\[-`{-~\u00a0-\u00bf\u2000-\u206f\u3000-\u303f\uff01-\uff0f])(?:"
    "(?P<Latn>[A-Za-z\u00c0-\u024f\u1e00-\u1eff]+)"  # first: the most words of texts not ASCII alone
    "|(?P<Hani>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+)"  # a run: counted per character
    "|(?P<Kana>[\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f]+)"  # not ・, which Chinese uses too
    "|(?P<Hang>[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]+)"
    "|(?P<Arab>[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]+)"
    "|(?P<Hebr>[\u0590-\u05ff\ufb1d-\ufb4f]+)"
    "|(?P<Cyrl>[\u0400-\u052f]+)"
    "|(?P<Grek>[\u0370-\u03ff\u1f00-\u1fff]+)"
    "|(?P<Thai>[\u0e00-\u0e7f]+)"
    "|(?P<Deva>[\u0900-\u097f]+)"
    "|(?P<Beng>[\u0980-\u09ff]+)"
    "|(?P<Guru>[\u0a00-\u0a7f]+)"
    "|(?P<Gujr>[\u0a80-\u0aff]+)"
    "|(?P<Orya>[\u0b00-\u0b7f]+)"
    "|(?P<Taml>[\u0b80-\u0bff]+)"
    "|(?P<Telu>[\u0c00-\u0c7f]+)"
    "|(?P<Knda>[\u0c80-\u0cff]+)"
    "|(?P<Mlym>[\u0d00-\u0d7f]+)"
    "|(?P<Sinh>[\u0d80-\u0dff]+)"
    "|(?P<Laoo>[\u0e80-\u0eff]+)"
    "|(?P<Tibt>[\u0f00-\u0fff]+)"
    "|(?P<Mymr>[\u1000-\u109f]+)"
    "|(?P<Khmr>[\u1780-\u17ff]+)"
    "|(?P<Ethi>[\u1200-\u139f]+)"
    "|(?P<Syrc>[\u0700-\u074f]+)"
    "|(?P<Thaa>[\u0780-\u07bf]+)"
    "|(?P<Nkoo>[\u07c0-\u07ff]+)"
    "|(?P<Armn>[\u0530-\u058f]+)"
    "|(?P<Geor>[\u10a0-\u10ff]+)"
    ")"
)
# The script(s) a language is written in (ISO 15924), when not Latin: by its script subtag if
# it has one (`sr-Latn`, `zh-Hant`), else by the language. `Jpan` is Han with kana.
_LANGUAGE_SCRIPTS = {
    **dict.fromkeys(("zh", "yue", "cmn", "wuu", "hak", "nan", "gan"), ("Hani",)),
    "ja": ("Jpan", "Hani"),
    "ko": ("Hang", "Hani"),
    **dict.fromkeys("ar arz apc ary fa prs ur ps ckb sd ug azb bal lrc mzn pnb skr ks".split(), ("Arab",)),
    # (Arabic's own, ISO 639-3, and others `text_direction` lays out right to left)
    **dict.fromkeys(
        "arb apd ajp acm acq acw acx aeb afb arq ars ayl ayn ayp abv shu ssh"
        " bcc bgn bgp hno haz ota sdh glk bqi khw".split(),
        ("Arab",),
    ),
    **dict.fromkeys("he iw yi ji jrb jpr".split(), ("Hebr",)),
    **dict.fromkeys("ru uk be bg mk sr kk ky tg tt ba cv mn".split(), ("Cyrl",)),
    "el": ("Grek",),
    "th": ("Thai",),
    **dict.fromkeys("hi mr ne sa mai bho kok".split(), ("Deva",)),
    **dict.fromkeys(("bn", "as"), ("Beng",)),
    "pa": ("Guru",),
    "gu": ("Gujr",),
    "or": ("Orya",),
    "ta": ("Taml",),
    "te": ("Telu",),
    "kn": ("Knda",),
    "ml": ("Mlym",),
    "si": ("Sinh",),
    "lo": ("Laoo",),
    **dict.fromkeys(("bo", "dz"), ("Tibt",)),
    "my": ("Mymr",),
    "km": ("Khmr",),
    **dict.fromkeys(("am", "ti"), ("Ethi",)),
    **dict.fromkeys(("syr", "syc", "aii", "cld"), ("Syrc",)),
    "dv": ("Thaa",),
    "nqo": ("Nkoo",),
    "hy": ("Armn",),
    "ka": ("Geor",),
}
_SCRIPT_SUBTAGS = {"hans": "Hani", "hant": "Hani", "hani": "Hani", "jpan": "Jpan", "kore": "Hang"}
_SAMPLE = 400  # characters of a post's title and text enough to tell its script
_ASCII_LETTER = re.compile("[A-Za-z]")
_PER_CHARACTER = frozenset(("Hani", "Kana"))  # one word each, as the other scripts' words count


def written_in(language: str | None, text: str, share: float = 0.5) -> bool:
    """Whether `text` may be in `language` as far as its letters tell: False only when it has
    letters and fewer than `share` of them (Han and kana characters, other scripts' words) are of
    the language's script. Arabic or English text is evidently not Chinese; French is not
    told from English (same script), nor text with no letters from any language.

    What the site's language is checked against for a post that names none: the pages and
    feeds leave it unlabelled (`lang=""`, no feed-wide language) rather than say it is in the
    site's language, as they did. A cheap look at the script, not language detection.
    """
    tag = language_tag(language)
    if not tag or not text:
        return True
    parts = tag.lower().split("-")
    script = next((p for p in parts[1:4] if len(p) == 4 and p.isalpha()), None)
    if script:
        expected = (_SCRIPT_SUBTAGS.get(script) or script.title(),)
        if expected == ("Jpan",):
            expected = ("Jpan", "Hani")
    else:
        expected = _LANGUAGE_SCRIPTS.get(parts[0], ("Latn",))
    sample = text[:_SAMPLE]
    if sample.isascii():  # most posts: Latin letters alone, if any
        return "Latn" in expected or _ASCII_LETTER.search(sample) is None
    counts, total = _script_counts(sample)
    return total == 0 or sum(counts.get(s, 0) for s in expected) >= share * total


@functools.lru_cache(maxsize=1024)
def _script_counts(sample: str) -> tuple[dict[str, int], int]:
    """The letters of `sample` by script (Han and kana by character, the others by word), and
    their total: not to be changed. Kept for the few texts a publish asks about again (a
    post's stated language, then whether its text is in the site's language; feeds, then pages)."""
    counts: dict[str, int] = {}
    for m in _SCRIPT_UNIT.finditer(sample):
        name = m.lastgroup or ""
        counts[name] = counts.get(name, 0) + (m.end() - m.start() if name in _PER_CHARACTER else 1)
    kana = counts.pop("Kana", 0)
    if kana > 1 or (kana and kana * 10 >= counts.get("Hani", 0)):  # Japanese (a stray の in Chinese is not)
        counts["Jpan"] = counts.pop("Hani", 0) + kana
    return counts, sum(counts.values())


# Scripts written right to left, as `_SCRIPT_UNIT` names them.
_RTL_SCRIPT_NAMES = frozenset(("Arab", "Hebr", "Syrc", "Thaa", "Nkoo"))


def letters_direction(text: str) -> str | None:
    """`rtl` when at least half the letters of `text` (by `_script_counts`: words, Han
    characters) are of a script written right to left, `ltr` when fewer are, None when it has
    no letters. For a post naming no language: `dir="auto"` went by its first letter alone,
    and `BBC: انفجار في بيروت` (the Arabic title, text and page beneath it) was laid out
    left to right, its punctuation at the wrong end."""
    counts, total = _script_counts(text[:_SAMPLE])
    if not total:
        return None
    rtl = sum(counts.get(s, 0) for s in _RTL_SCRIPT_NAMES)
    return "rtl" if 2 * rtl >= total else "ltr"


def stated_language(language: str | None, text: str) -> str | None:
    """A post's language tag as the feeds and pages state it: None when its title and text
    are evidently not in it (`written_in`). Many feeds name a language for all they carry,
    often a CMS's default (`en-US`): a Persian or Japanese post was published as English,
    laid out left to right on an English site, read by screen readers with an English voice.
    Without it, the post is told apart from the site's language as one naming none is."""
    tag = language_tag(language)
    if tag is None:
        return None
    parts = tag.lower().split("-")
    if parts[0] in _TWO_ALPHABETS:
        return tag
    if parts[0] not in _LANGUAGE_SCRIPTS and parts[0] not in _LATIN_LANGUAGES:
        if not any(len(p) == 4 and p.isalpha() for p in parts[1:4]):
            return tag  # a language whose script we do not know (`uz`, `ku`, `os`): believed
    return tag if written_in(tag, text, _STATED_SHARE) else None


# Languages written in Latin letters as well as their `_LANGUAGE_SCRIPTS` one, a post naming
# which may be in either: `sr` in Latin letters is still Serbian.
_TWO_ALPHABETS = frozenset(("sr",))
# Languages written in Latin letters alone, as far as feeds go: a post naming one whose text
# is in another script is not in it (`en-US`, a CMS's default, over a Persian post). A language
# in neither list may be written in a script `written_in` takes for Latin (unlisted there):
# Uzbek, Kurdish, Azerbaijani in two alphabets, Ossetian or Yakut in Cyrillic; it is believed.
_LATIN_LANGUAGES = frozenset(
    "en fr de es it pt nl pl cs sk sl hr ro hu fi et lv lt sv da no nb nn is fo ga gd cy br kw gv"
    " eu ca gl oc co sc lb rm fy mt sq tr id ms tl fil vi sw so yo ig zu xh st tn ts ss ve nr rw"
    " rn lg ny sn mg eo la ia ie io vo jv su ceb haw mi sm to fj ty qu gn ay ht wo ln kg om ak"
    " ee tw bm af".split()
)
# A language a post names is believed unless fewer than this share of its letters are of that
# language's script: a Russian post quoting an English mail header is still Russian.
_STATED_SHARE = 1 / 3


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
    text = _text_start(html, limit + 1) if limit > EXCERPT_CHARS else _excerpt_text(html)
    if len(text) <= limit:
        return text
    cut = text[: grapheme_start(text, limit)]  # not inside a character as read: `ก` of `กั`, an emoji's ZWJ
    space = cut.rfind(" ")
    if space > limit * 0.6:  # CJK text has no spaces: cut anywhere
        cut = cut[:space]
    return cut.rstrip(_BEFORE_ELLIPSIS) + "…"


# Punctuation an excerpt does not end on before its `…`: Latin and CJK, Arabic (`،` `؛` `۔`),
# Devanagari and Bengali (`।` `॥`), Ethiopic (`።` `፣` `፤` `፥` `፦`), Armenian (`։`), and the
# scripts that put a space after their stops, so that a cut at a space lands on one most
# often: Burmese (`၊` `။`), Khmer (`។` `៕` `៖`), Tibetan (`།` `༎`)
_BEFORE_ELLIPSIS = (
    " ,.;:，。；：、\u060c\u061b\u06d4\u0964\u0965\u1362\u1363\u1364\u1365\u1366\u0589"
    "\u104a\u104b\u17d4\u17d5\u17d6\u0f0d\u0f0e"
)


_STARTS: IdentityMemo[str, str] = IdentityMemo(512)  # a post's excerpts are asked for within one category's publish
_STARTS_HTML = 65_536  # longer fragments are not kept (their start is read as cheaply)


def forget_excerpts() -> None:
    """Drop the remembered excerpts and cleaned texts (and the posts they hold) once a
    publish is over."""
    _STARTS.clear()
    _CLEANED.clear()


def _excerpt_text(html: str) -> str:
    """`_text_start(html, EXCERPT_CHARS + 1)`, remembered for the same string object.

    A post's excerpt is asked for by each of its feeds (summary, title fallback) and pages
    (description, listing) at lengths up to EXCERPT_CHARS, and each is cut from the same
    text start: the first 200-odd characters of the text are the same whatever is read
    after them.
    """
    text = _STARTS.get(html)
    if text is None:
        text = _text_start(html, EXCERPT_CHARS + 1)
        if len(html) <= _STARTS_HTML:
            _STARTS.put(html, text)
    return text


# The tags our sanitizer lets through but <iframe>, whose content an HTML parser reads as
# raw text: their text is the text between the tags.
_PLAIN_TAGS = ALLOWED_TAGS - {"iframe"}
# One token of HTML as the sanitizer (html5ever) writes it: text, a start tag (attribute
# values always double-quoted), an end tag, or one of the references it writes.
_TOKEN = re.compile(
    r"([^<&]+)"
    r"|<([A-Za-z][A-Za-z0-9]*)(?:[ \t\n\r]+[A-Za-z_:][-A-Za-z0-9_:.]*(?:=\"[^\"]*\")?)*[ \t\n\r]*/?>"
    r"|</([A-Za-z][A-Za-z0-9]*)[ \t\n\r]*>"
    r"|&(amp|lt|gt|quot|nbsp|#39);"
)
# Tags that end a line of text (blocks, line and rule breaks, images), as
# sanitize.sanitized_text reads them: lxml's text_content() joins the text on either side
# ("<h3>Virtue</h3><p>Empathy.</p>" read "VirtueEmpathy."), so an excerpt puts a space there.
_BREAK_TAGS = frozenset(
    """h1 h2 h3 h4 h5 h6 p br hr div blockquote pre address article section aside header
    footer ul ol li dl dt dd table caption tr th td figure figcaption details summary img""".split()
)
_BREAK_TAG = re.compile(r"<(?=/?(?:" + "|".join(sorted(_BREAK_TAGS)) + r")[\s/>])", re.I)
# A fragment with one of these anywhere is read as a document: lxml sees no single <body>.
_DOCUMENT_TAG = re.compile(r"</?(?:html|body|head|frameset)(?![^\t\n\f\r />])", re.I)
_REFERENCES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "nbsp": "\xa0", "#39": "'"}


def _text_start(html: str, want: int) -> str:
    """The plain text of `html` (whitespace collapsed), or at least its first `want` characters.

    The text of sanitized HTML is the text between its tags with its few references
    replaced, and a space at each of `_BREAK_TAGS`, so it is read token by token only as
    far as the excerpt needs (a post's content can be 100 KB; its excerpt needs a few
    hundred bytes of it). The first thing that is not sanitizer-shaped (a comment, another
    reference, a raw-text element like <script>) sends the whole fragment to lxml's HTML
    parser, which is what this reads the same as, token for token (tests/test_publish_feeds.py).
    Like the parser, it reads the fragment without the characters XML forbids.
    """
    if not html:
        return ""
    pieces: list[str] = []
    size = 0
    check = want
    pos, end = 0, len(html)
    match = _TOKEN.match
    while pos < end:
        m = match(html, pos)
        if m is None:
            return _parsed_text(html)
        text, tag, end_tag, ref = m.groups()
        if text is not None:
            pieces.append(text)
            size += len(text)
        elif ref is not None:
            pieces.append(_REFERENCES[ref])
            size += 1
        else:
            name = (tag or end_tag).lower()
            if name not in _PLAIN_TAGS:
                return _parsed_text(html)
            if name in _BREAK_TAGS:
                pieces.append(" ")
                size += 1
        pos = m.end()
        if size >= check:  # maybe enough: collapse what we have
            text = " ".join("".join(pieces).split())
            if len(text) >= want:
                break
            check = size + want - len(text)
    if pos < end and _DOCUMENT_TAG.search(html, pos):  # lxml reads all of such a fragment otherwise
        return _parsed_text(html)
    if _NOT_XML.search(html, 0, pos):  # read it as lxml would: without them
        return _text_start(_NOT_XML.sub("", html), want)
    return " ".join("".join(pieces).split())


def _parsed_text(html: str) -> str:
    return _plain_text(html) if len(html) <= _CACHED_HTML else _plain_text.__wrapped__(html)


_CACHED_HTML = 32_768  # longer fragments are not kept: the cache stays under ~16 MB


@functools.lru_cache(maxsize=256)
def _plain_text(html: str) -> str:
    """The text of any HTML fragment, whitespace collapsed, as lxml's HTML parser reads it
    with a space before each of `_BREAK_TAGS` (so that a block's text is not run into the next).
    Cached: parsing is the costly part, and a publish asks for the same post's excerpt
    several times (its feeds, its page, category pages)."""
    html = clean_text(html)
    if not html.strip():
        return ""
    html = _BREAK_TAG.sub(" <", html)
    try:
        text = lxml.html.fragment_fromstring(html, create_parent="div").text_content()
    except (etree.LxmlError, ValueError, AssertionError):  # lxml asserts one <body>: "<html>x"
        text = re.sub(r"<[^>]*>", " ", html)
    return " ".join(clean_text(text).split())


@functools.lru_cache(maxsize=64)
def _site_host(site_url: str) -> tuple[str, str]:
    """(host, path) of the site URL, host lowercased and punycoded, path without "/" ends."""
    parts = urlsplit(feed_uri(site_url) or site_url)
    return (parts.hostname or "localhost").lower(), parts.path.strip("/")


def post_guid(site_url: str, post_id: str) -> str:
    """The post's id in every feed: `tag:<host>,2022:[<path>/]posts/<id>` (RFC 4151).

    It depends only on the site's host and path and the post id, so it never changes when
    the post is updated or re-dated (unlike the yyyy/mm permalink), and it is an IRI for
    Atom and a non-permalink guid for RSS (whose <link> points to the original article
    instead). The path keeps two sites under one host apart; moving the site changes it.
    """
    host, path = _site_host(site_url)
    prefix = f"{path}/" if path else ""
    return f"tag:{host},{TAG_DATE}:{prefix}posts/{_segment(post_id)}"


def permalink(site_url: str, post: Post) -> str:
    """The post's own page on our site: `<site>posts/<yyyy>/<mm>/<id>.html` (UTC month)."""
    when = _utc(post.published)
    return f"{site_url}posts/{when.year:04d}/{when.month:02d}/{_segment(post.id)}.html"


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")  # what quote() never escapes


def _segment(post_id: str) -> str:
    """The id as one URI path segment (our ids are hex digits: nothing to quote)."""
    return post_id if _UNRESERVED.fullmatch(post_id) else quote(clean_text(post_id), safe="")


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
    duration: int | None = None  # seconds of play (a sound's or a video's)
    title: str | None = None  # what it shows, in words (Enclosure.description: Mastodon's alt text)


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
    # no language of its own, and evidently not in the site's (`written_in`): no feed-wide
    # language may be given to it
    unknown_language: bool = False

    # Escaped and encoded once for both XML formats: the content is most of a feed's bytes,
    # so the documents are assembled as bytes around it.
    @functools.cached_property
    def body_xml(self) -> bytes:
        return _x_utf8(self.body_html)

    @functools.cached_property
    def summary_xml(self) -> str:
        return _x(self.summary_html)


def _person(a: Author) -> _Person | None:
    p = _Person(_one_line(a.name) or None, _email(a.email), feed_uri(a.url))
    return p if (p.name or p.email or p.url) else None


# The largest length a reader can hold: readers decode JSON Feed's `size_in_bytes` into a
# 64-bit integer (Go's int64, Swift's Int) and refuse the whole feed when it does not fit.
LENGTH_MAX = 2**63 - 1


def _attachment(e: Enclosure) -> _Attachment | None:
    url = feed_uri(e.url)
    if url is None:
        return None
    length = e.length if isinstance(e.length, int) and not isinstance(e.length, bool) else None
    length = length if length is not None and 0 <= length <= LENGTH_MAX else None  # beyond: junk, unknown
    seconds = e.duration
    duration = seconds if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0 else None
    return _Attachment(url, _media_type(e.type), length, duration, _one_line(e.description or "") or None)


# A link to a place in the post itself (a footnote: `sanitize._InPost`), as nh3 writes it.
_IN_POST_LINK = re.compile(r'(<a\s(?:[^>]*\s)?href=")#')


def _linked_to_page(html: str, page: str) -> str:
    """`html` with its links to places in itself leading to them on the post's page, `page`.

    Readers drop ids (as our sanitizer did), and resolve `#fn1` against the entry's link, the
    original article: a footnote's link led there, or nowhere. Our page keeps them."""
    if 'href="#' not in html:  # most posts
        return html
    return _IN_POST_LINK.sub(lambda m: f"{m.group(1)}{html_escape(page)}#", html)


def _item(meta: FeedMeta, post: Post) -> _Item:
    content = clean_text(post.content)
    summary = clean_text(post.summary)
    if 'href="#' in content or 'href="#' in summary:
        page = permalink(meta.site_url, post)
        content, summary = _linked_to_page(content, page), _linked_to_page(summary, page)
    has_content = bool(content.strip())
    body = content if has_content else summary
    excerpt_of = summary if summary.strip() else content
    summary_text = html_excerpt(excerpt_of)
    title = _one_line(post.title) or bidi_closed(html_excerpt(excerpt_of, 80)) or meta.untitled
    shown = f"{title} {summary_text}"  # what a reader sees of the item, to tell its script
    language = stated_language(post.language, shown)
    tags: list[str] = []
    for tag in post.tags:
        t = _one_line(tag)
        if t and t not in tags:
            tags.append(t)
    return _Item(
        guid=post_guid(meta.site_url, post.id),
        url=feed_uri(post.link) or permalink(meta.site_url, post),
        title=title,
        published=_utc(post.published),
        updated=_utc(post.updated),
        body_html=body,
        # a summary that only repeats the content (feedparser copies an Atom entry's lone
        # <content> into its summary) is not published twice: our excerpt stands in for it
        summary_html=summary if has_content and summary.strip() and summary != content else "",
        summary_text=summary_text,
        has_content=has_content,
        authors=tuple(p for p in map(_person, post.authors) if p is not None),
        tags=tuple(tags),
        attachments=tuple(a for a in map(_attachment, post.enclosures) if a is not None),
        language=language,
        comments=feed_uri(post.comments),
        source_title=_one_line(post.source_title) or None,
        source_link=feed_uri(post.source_link),
        source_url=feed_uri(post.source_url),  # without its user info: the publisher reads posts through public_post
        unknown_language=language is None and not written_in(meta.language, shown),
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


def _newest(meta: FeedMeta, items: Sequence[_Item]) -> datetime:
    """The feed's updated time: its newest post's, or with none the time since when it has
    been empty (`meta.empty_since`), never the clock (for stable bytes). EPOCH only when the
    caller gives no such time: readers took 1970 as the date of a category with no posts."""
    if items:
        newest = max(i.updated for i in items)
        return newest if meta.updated_floor is None else max(newest, _utc(meta.updated_floor))
    return _utc(meta.empty_since) if meta.empty_since is not None else EPOCH


def _feed_language(meta: FeedMeta, items: Sequence[_Item]) -> tuple[str | None, str | None]:
    """(the feed-wide language, the language of the items that name none) of an Atom or JSON
    feed: the site's for both, unless an item of no language of its own is evidently in another
    (`_Item.unknown_language`): a feed-wide language would say it is in the site's, so there
    is none, and the items that are in the site's language say so themselves."""
    lang = language_tag(meta.language)
    if lang and any(i.unknown_language for i in items):
        return None, lang
    return lang, None


def _self_url(meta: FeedMeta, ext: str) -> str:
    return feed_uri(f"{meta.self_base}.{ext}") or f"{meta.self_base}.{ext}"


def _feed_title(meta: FeedMeta) -> str:
    return _one_line(meta.title) or _one_line(meta.site_title) or "Feed"


# ------------------------------------------------------------------------ XML writing
#
# Atom and RSS are written as text: every document has the same small, fixed shape, and
# building an element tree only to serialize it took twice as long (bench/README.md).
# The output is what lxml's serializer writes with pretty_print: two-space indents, empty
# elements as `<x/>`, and exactly lxml's escaping (below), so a parser reads back every
# string as it was given (tests/test_publish_feeds.py round-trips hostile values).

XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _x(text: str) -> str:
    """Character data escaped as lxml escapes it (a CR is kept as a reference, since a
    parser would read a literal one as a line feed)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _x_utf8(text: str) -> bytes:
    """`_x(text).encode("utf-8")`, escaped after encoding: bytes.replace finds a byte with
    memchr, where str.replace goes character by character through a string holding CJK
    (2 or 4 bytes a character); half the cost for a post's content, the most text a feed
    escapes. The same bytes: no byte of a multi-byte UTF-8 sequence is ASCII."""
    data = text.encode("utf-8")
    if b"&" in data:
        data = data.replace(b"&", b"&amp;")
    if b"<" in data:
        data = data.replace(b"<", b"&lt;")
    if b">" in data:
        data = data.replace(b">", b"&gt;")
    if b"\r" in data:
        data = data.replace(b"\r", b"&#13;")
    return data


_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)


_ATTR_SPECIAL = re.compile('[&<>"\t\n\r]')  # the characters _ATTR_ESCAPES replaces


def _q(value: str) -> str:
    """An attribute value escaped as lxml escapes it (whitespace as references, or a parser
    would normalize it to spaces). Most values (URLs) have nothing to escape, which a search
    tells at a sixth of translate's cost (~2 µs for a URL, a dict lookup a character)."""
    return value if _ATTR_SPECIAL.search(value) is None else value.translate(_ATTR_ESCAPES)


def _el(indent: str, name: str, text: str) -> str:
    """`<name>text</name>` on its own line; `<name/>` when the text is empty."""
    return f"{indent}<{name}>{_x(text)}</{name}>\n" if text else f"{indent}<{name}/>\n"


def _atom_date(dt: datetime) -> str:
    return dt.isoformat()  # dt is from _utc(): "2024-03-01T12:00:00+00:00"


def _rfc822(dt: datetime) -> str:
    """RFC 822 date with English names whatever the locale (strftime's %a/%b follow it)."""
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} +0000"
    )


def render_feeds(meta: FeedMeta, posts: Sequence[Post]) -> dict[str, bytes]:
    """The Atom, RSS and JSON Feed documents for `posts`, by extension; each post is
    reduced to its item once for the three (the same bytes as the render_* functions)."""
    items = _items(meta, posts)
    return {"atom": _atom(meta, items), "rss": _rss(meta, items), "json": _json(meta, items)}


# -------------------------------------------------------------------------------- Atom


def render_atom(meta: FeedMeta, posts: Sequence[Post]) -> bytes:
    """Atom 1.0 document for `posts` (kept in the given order, newest first)."""
    return _atom(meta, _items(meta, posts))


def _atom(meta: FeedMeta, items: list[_Item]) -> bytes:
    title = _feed_title(meta)
    self_url = _self_url(meta, "atom")
    lang, items_lang = _feed_language(meta, items)
    out = [XML_DECLARATION, f'<feed xmlns="{ATOM_NS}"', f' xml:lang="{_q(lang)}">\n' if lang else ">\n"]
    # without a feed-wide language, the feed's own words say theirs (the site's)
    own = f' xml:lang="{_q(items_lang)}"' if items_lang else ""
    out.append(_el("  ", "id", self_url))
    out.append(f"  <title{own}>{_x(title)}</title>\n" if own else _el("  ", "title", title))
    out.append(_el("  ", "updated", _atom_date(_newest(meta, items))))
    out.append("  <author>\n")
    out.append(_el("    ", "name", _one_line(meta.site_title) or title))
    site_uri = feed_uri(meta.site_url) or meta.site_url
    if site_uri:
        out.append(_el("    ", "uri", site_uri))
    out.append("  </author>\n")
    # the page first: readers taking a feed's first <link> whatever its rel for its home page
    # (@extractus/feed-extractor) linked the feed file itself, as WordPress's order avoids
    out.append(f'  <link href="{_q(feed_uri(meta.alternate) or meta.alternate)}" rel="alternate" type="text/html"/>\n')
    out.append(f'  <link href="{_q(self_url)}" rel="self" type="application/atom+xml"/>\n')
    hub = feed_uri(meta.websub_hub)
    if hub:
        out.append(f'  <link href="{_q(hub)}" rel="hub"/>\n')
    out.append(f'  <generator uri="{_q(PROJECT_URL)}" version="{_q(__version__)}">{_x(GENERATOR)}</generator>\n')
    cover = feed_uri(meta.image) if meta.image else None
    if cover:
        # the square cover as both: RFC 4287 wants `icon` square and `logo` 2:1, but readers
        # take either (Miniflux `icon`, else `logo`; feedparser `logo` as the feed's image)
        out.append(_el("  ", "icon", cover))
        out.append(_el("  ", "logo", cover))
    description = _one_line(meta.description)
    if description:
        out.append(f"  <subtitle{own}>{_x(description)}</subtitle>\n" if own else _el("  ", "subtitle", description))
    entries = (_atom_entry(i, None if i.unknown_language else items_lang) for i in items)
    return b"".join(["".join(out).encode("utf-8"), *entries, b"</feed>\n"])


def _atom_entry(item: _Item, default_language: str | None = None) -> bytes:
    """An entry; `default_language` is the one it is in if it names none (`_feed_language`)."""
    lang = item.language or default_language
    out = [f'  <entry xml:lang="{_q(lang)}">\n' if lang else "  <entry>\n"]
    out.append(f"    <id>{_x(item.guid)}</id>\n")
    out.append(f"    <title>{_x(item.title)}</title>\n")
    out.append(f"    <updated>{_atom_date(item.updated)}</updated>\n")
    credit = _source_credit(item)
    if credit:
        # RFC 4287 4.2.1 gives an author-less entry its <source>'s author (below), but readers
        # that skip <source> (@rowanmanning/feed-parser, atoma) took the
        # feed's, this site's, as every such post's author: the entry names its source itself
        out.append(f"    <author>\n      <name>{_x(credit)}</name>\n    </author>\n")
    for p in item.authors:
        name = p.name or p.email
        if name:
            out.append(f"    <author>\n      <name>{_x(name)}</name>\n")
            if p.email:
                out.append(f"      <email>{_x(p.email)}</email>\n")
            if p.url:
                out.append(f"      <uri>{_x(p.url)}</uri>\n")
            out.append("    </author>\n")
    done: list[bytes] = []
    if item.body_html:
        out.append('    <content type="html">')
        done += ("".join(out).encode("utf-8"), item.body_xml)
        out = ["</content>\n"]
    out.append(f'    <link href="{_q(item.url)}" rel="alternate" type="text/html"/>\n')
    # no duration: RFC 4287 has no place for one, and foreign markup on an enclosure link no
    # Atom reader reads (podcast apps read RSS's itunes:duration, JSON Feed has its own)
    for a in item.attachments:
        type_ = f' type="{_q(a.type)}"' if a.type else ""
        length = f' length="{a.length}"' if a.length is not None else ""
        title = f' title="{_q(a.title)}"' if a.title else ""  # RFC 4287's human-readable link title: the alt text
        out.append(f'    <link href="{_q(a.url)}" rel="enclosure"{type_}{length}{title}/>\n')
    if item.summary_html:
        out.append(f'    <summary type="html">{item.summary_xml}</summary>\n')
    elif item.has_content and item.summary_text:
        out.append(f'    <summary type="text">{_x(item.summary_text)}</summary>\n')
    for tag in item.tags:
        out.append(f'    <category term="{_q(tag)}"/>\n')
    out.append(f"    <published>{_atom_date(item.published)}</published>\n")
    if item.source_title or item.source_link or item.source_url:
        # RFC 4287 4.2.11: the feed the post came from
        out.append("    <source>\n")
        if item.source_url:
            out.append(f"      <id>{_x(item.source_url)}</id>\n")
        if item.source_title:
            out.append(f"      <title>{_x(item.source_title)}</title>\n")
        if item.source_link:
            out.append(f'      <link rel="alternate" type="text/html" href="{_q(item.source_link)}"/>\n')
        if item.source_url:
            out.append(f'      <link rel="self" href="{_q(item.source_url)}"/>\n')
        if credit:
            # RFC 4287 4.2.1: an entry without an author has its source's, else the feed's,
            # which is this site: a reader following it credited the site with the article.
            # The source feed gave none either (its authors stand in for the entry's): it is
            # credited to itself.
            out.append(f"      <author>\n        <name>{_x(credit)}</name>\n")
            out.append("      </author>\n")
        out.append("    </source>\n")
    out.append("  </entry>\n")
    done.append("".join(out).encode("utf-8"))
    return b"".join(done)


def _source_credit(item: _Item) -> str | None:
    """Whom an Atom entry naming no author of its own credits: its source feed (by title, else
    URL, else, for a feed URL the feeds cannot publish, `http://example.org./feed`, its home
    page), never the feed-level author (this site); None when it has an author or no source."""
    if any(p.name or p.email for p in item.authors):
        return None
    return item.source_title or item.source_url or item.source_link


# --------------------------------------------------------------------------------- RSS


_RSS_ROOT = (
    '<rss xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"'
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">\n'
)
ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
# Declared only by a feed that uses it (an episode's itunes:duration or itunes:image), so every other RSS
# feed keeps its bytes.
_RSS_ROOT_ITUNES = _RSS_ROOT.replace(" version=", f' xmlns:itunes="{ITUNES_NS}" version=')
RSS_DOCS = "http://www.rssboard.org/rss-specification"


_PLAYABLE = ("audio/", "video/")


def _playable(a: _Attachment) -> bool:
    """A sound or a video (by its type, else its file name): what podcast apps play."""
    kind = a.type or mimetypes.guess_type(urlsplit(a.url).path)[0] or ""
    return kind.lower().startswith(_PLAYABLE)


def _rss_enclosure(item: _Item) -> _Attachment | None:
    """RSS allows one enclosure: of the item's sounds and videos if it has any (an episode's
    artwork, sized, is no episode: podcast apps play the RSS enclosure), the first with a
    known length, else the first (length 0, as the RSS Advisory Board recommends when the
    size is unknown)."""
    playable = [a for a in item.attachments if _playable(a)]
    candidates = playable or item.attachments
    for a in candidates:
        if a.length is not None:
            return a
    return candidates[0] if candidates else None


def _rss_art(item: _Item, enc: _Attachment | None) -> _Attachment | None:
    """The episode's own art, for an item whose one enclosure is its sound or video: its first
    image, which RSS has no second enclosure for; podcast apps read it as `itunes:image`."""
    if enc is None or not _playable(enc):
        return None
    return next((a for a in item.attachments if a is not enc and (a.type or "").lower().startswith("image/")), None)


def render_rss(meta: FeedMeta, posts: Sequence[Post]) -> bytes:
    """RSS 2.0 document for `posts`; item <link> is the original article."""
    return _rss(meta, _items(meta, posts))


def _rss(meta: FeedMeta, items: list[_Item]) -> bytes:
    title = _feed_title(meta)
    enclosures = list(map(_rss_enclosure, items))
    itunes = any(
        enc is not None and (enc.duration is not None or _rss_art(item, enc) is not None)
        for item, enc in zip(items, enclosures, strict=True)
    )
    # A podcast (an episode's sound or video among the items) is shown by its cover in podcast
    # apps, which Apple requires of a podcast's channel: the category's cover, when it has one
    image = feed_uri(meta.image) if meta.image else None
    cover = image if image and any(enc is not None and _playable(enc) for enc in enclosures) else None
    itunes = itunes or cover is not None
    out = [XML_DECLARATION, _RSS_ROOT_ITUNES if itunes else _RSS_ROOT, "  <channel>\n"]
    out.append(_el("    ", "title", title))
    out.append(_el("    ", "link", feed_uri(meta.alternate) or meta.alternate))
    out.append(_el("    ", "description", _one_line(meta.description) or title))
    out.append(f'    <atom:link href="{_q(_self_url(meta, "rss"))}" rel="self" type="application/rss+xml"/>\n')
    hub = feed_uri(meta.websub_hub)
    if hub:
        out.append(f'    <atom:link href="{_q(hub)}" rel="hub"/>\n')
    out.append(_el("    ", "docs", RSS_DOCS))
    out.append(_el("    ", "generator", f"{GENERATOR} {__version__} ({PROJECT_URL})"))
    lang = _rss_language(meta, items)
    if lang:
        out.append(_el("    ", "language", lang))
    out.append(_el("    ", "lastBuildDate", _rfc822(_newest(meta, items))))
    if image:  # the channel's image, which readers show as the feed's (its title and link the channel's)
        out.append("    <image>\n")
        out.append(_el("      ", "url", image))
        out.append(_el("      ", "title", title))
        out.append(_el("      ", "link", feed_uri(meta.alternate) or meta.alternate))
        out.append("    </image>\n")
    if cover is not None:
        out.append(f'    <itunes:image href="{_q(cover)}"/>\n')
    return b"".join(["".join(out).encode("utf-8"), *map(_rss_item, items), b"  </channel>\n</rss>\n"])


def _rss_language(meta: FeedMeta, items: Sequence[_Item]) -> str | None:
    """The channel's <language>, the site's, when every item is in it: RSS gives an item no
    language of its own, so a reader takes each for the channel's. An item of another language
    (said, or evidently: `_Item.unknown_language`) leaves the channel without one."""
    lang = language_tag(meta.language)
    if lang is None:
        return None
    primary = lang.split("-", 1)[0].lower()
    for item in items:
        if item.unknown_language or (item.language and item.language.split("-", 1)[0].lower() != primary):
            return None
    return lang


def _rss_item(item: _Item) -> bytes:
    out = ["    <item>\n", f"      <title>{_x(item.title)}</title>\n", f"      <link>{_x(item.url)}</link>\n"]
    # The summary (or, with full content, our excerpt) in <description>, the full content in
    # <content:encoded>; with no summary the content is the description.
    if item.summary_html:
        description = item.summary_xml
    elif item.has_content and item.summary_text:
        # RSS description is HTML: the plain-text excerpt is HTML-escaped before XML-escaping,
        # or the "<script>" a post spells out as text reached readers as a live tag
        description = _x(html_escape(item.summary_text, quote=False))
    else:
        description = ""
    done: list[bytes] = []
    if description:
        out.append(f"      <description>{description}</description>\n")
        if item.body_html:
            out.append("      <content:encoded>")
            done += ("".join(out).encode("utf-8"), item.body_xml)
            out = ["</content:encoded>\n"]
    elif item.body_html:
        out.append("      <description>")
        done += ("".join(out).encode("utf-8"), item.body_xml)
        out = ["</description>\n"]
    for p in item.authors:  # RSS <author> must hold an address: names alone go to dc:creator
        if p.email:
            author = f"{p.email} ({p.name})" if p.name else p.email
            out.append(f"      <author>{_x(author)}</author>\n")
    out.append(f'      <guid isPermaLink="false">{_x(item.guid)}</guid>\n')
    for tag in item.tags:
        out.append(f"      <category>{_x(tag)}</category>\n")
    if item.comments:
        out.append(f"      <comments>{_x(item.comments)}</comments>\n")
    enc = _rss_enclosure(item)
    if enc is not None:
        out.append(
            f'      <enclosure url="{_q(enc.url)}" length="{enc.length or 0}" type="{_q(enc.type or OCTET_STREAM)}"/>\n'
        )
        if enc.duration is not None:  # the episode's length, for podcast apps: of the one enclosure RSS has
            out.append(f"      <itunes:duration>{enc.duration}</itunes:duration>\n")
        art = _rss_art(item, enc)
        if art is not None:
            out.append(f'      <itunes:image href="{_q(art.url)}"/>\n')
    out.append(f"      <pubDate>{_rfc822(item.published)}</pubDate>\n")
    if item.source_url:
        out.append(f'      <source url="{_q(item.source_url)}">{_x(item.source_title or item.source_url)}</source>\n')
    for p in item.authors:
        if p.name and not p.email:
            out.append(f"      <dc:creator>{_x(p.name)}</dc:creator>\n")
    out.append("    </item>\n")
    done.append("".join(out).encode("utf-8"))
    return b"".join(done)


# ---------------------------------------------------------------------------- JSON Feed


def _json_author(p: _Person) -> dict[str, str] | None:
    out: dict[str, str] = {}
    if p.name:
        out["name"] = p.name
    url = p.url or (feed_uri(f"mailto:{p.email}", schemes=("mailto",)) if p.email else None)
    if url:
        out["url"] = url
    return out or None


def _json_image(item: _Item) -> str | None:
    """The item's main image (JSON Feed 1.1 `image`): its first picture attachment (an
    enclosure's, a media:content's or thumbnail's, an episode's itunes:image), which readers
    show as the item's picture, as they do RSS's image enclosure; none was given."""
    return next((a.url for a in item.attachments if (a.type or "").lower().startswith("image/")), None)


def render_json(meta: FeedMeta, posts: Sequence[Post]) -> bytes:
    """JSON Feed 1.1 document for `posts`, with a `_source` extension for attribution."""
    return _json(meta, _items(meta, posts))


def _json(meta: FeedMeta, items: list[_Item]) -> bytes:
    feed: dict[str, object] = {
        "version": JSONFEED_VERSION,
        "title": _feed_title(meta),
        "home_page_url": feed_uri(meta.alternate) or meta.alternate,
        "feed_url": _self_url(meta, "json"),
    }
    description = _one_line(meta.description)
    if description:
        feed["description"] = description
    icon = feed_uri(meta.image) if meta.image else None
    if icon:  # the square cover (JSON Feed's 512×512 `icon`; Miniflux takes it without a `favicon`)
        feed["icon"] = icon
    lang, items_lang = _feed_language(meta, items)
    if lang:
        feed["language"] = lang
    # No feed-level `authors`: JSON Feed gives them to every item without its own, and this
    # site wrote none of them (`_source` says where each came from).
    hub = feed_uri(meta.websub_hub)
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
        image = _json_image(item)
        if image is not None:
            entry["image"] = image
        entry["date_published"] = _json_date(item.published)
        entry["date_modified"] = _json_date(item.updated)
        authors = [a for a in map(_json_author, item.authors) if a]
        if authors:
            entry["authors"] = authors
            # and JSON Feed 1.0's one `author`, deprecated by 1.1 but kept "for compatibility
            # with existing feed readers": 1.0 readers (atoma) read only it
            # and showed no author for any post; 1.1 readers prefer `authors`
            entry["author"] = authors[0]
        if item.tags:
            entry["tags"] = list(item.tags)
        item_lang = item.language or (None if item.unknown_language else items_lang)
        if item_lang:
            entry["language"] = item_lang
        if item.attachments:
            attachments = []
            for a in item.attachments:
                att: dict[str, object] = {"url": a.url, "mime_type": a.type or OCTET_STREAM}
                if a.length is not None:
                    att["size_in_bytes"] = a.length
                if a.duration is not None:
                    att["duration_in_seconds"] = a.duration
                if a.title:
                    att["title"] = a.title
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
    # Compact, by orjson: the same bytes as json.dumps(ensure_ascii=False, separators=(",", ":"))
    # at a sixth of its cost (an indent also sent the json module to its pure-Python encoder).
    # Readers parse either; the bytes stay as stable, the dicts being built in a fixed order.
    try:
        data = orjson.dumps(feed)
    except TypeError:  # an integer orjson cannot hold (none should be: `LENGTH_MAX`): stdlib writes it
        data = json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return data + b"\n"
