"""Allow-list HTML sanitizer for feed content, built on nh3 (ammonia / html5ever).

Feed HTML is untrusted and gets republished on our own origin, so only markup
known to be harmless survives: an allow-list of tags and attributes modelled on
Miniflux's ``reader/sanitizer``.  Everything else is stripped (the tag goes,
its text stays), except elements whose content is code or form state
(``script``, ``style``, ``svg``, ``textarea``...), which vanish entirely.

Harmless markup is serialized back unchanged (html5ever's serializer), so
whitespace, CJK text and ``class`` attributes round-trip byte-identically.

URL attributes (``href``, ``src``, ``srcset``, ``poster``, ``cite``) are
resolved against the entry's ``base_url`` and their scheme re-checked *after*
resolution, so relative tricks cannot smuggle in ``javascript:``.  ``data:`` is
only accepted as ``data:image/...`` in ``<img src>``.  ``<iframe>`` is kept
only for https embeds from a short list of video hosts, and is always sandboxed.
"""

from __future__ import annotations

import html as _html
import html.entities as _html_entities
import re
import unicodedata
from contextvars import ContextVar
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import nh3

__all__ = [
    "ALLOWED_TAGS",
    "sanitize_html",
    "html_to_text",
    "one_line",
    "printable",
    "sanitized_text",
    "url_text",
    "youtube_player",
]

# --------------------------------------------------------------------------- allow-lists

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

_ALLOWED_TAGS: set[str] = _HEADINGS | {
    # text blocks and sectioning (landmarks a feed article may legitimately carry)
    "p", "br", "hr", "div", "span", "blockquote", "pre", "address",
    "article", "section", "aside", "header", "footer", "hgroup", "center",
    # inline semantics
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn",
    "em", "i", "ins", "kbd", "mark", "q", "s", "samp", "small", "strike", "strong",
    "sub", "sup", "time", "tt", "u", "var", "wbr",
    "ruby", "rb", "rp", "rt", "rtc",
    # lists
    "ul", "ol", "li", "dl", "dt", "dd",
    # tables
    "table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td",
    # media (URLs are checked by _filter_attribute)
    "img", "figure", "figcaption", "picture", "source", "video", "audio", "track",
    "iframe",  # only allow-listed https video hosts; see _iframe_src
    # disclosure
    "details", "summary",
}  # fmt: skip

# MathML Core's elements, which the W3C's MathML safe list finds safe as they are (and the
# MathML 3 ones KaTeX writes). Browsers render them natively; without them a formula lost its
# text. `maction` is left out (its children stay); `annotation` goes with its content, below.
_MATHML_TAGS: set[str] = {
    "math", "merror", "mfrac", "mi", "mmultiscripts", "mn", "mo", "mover", "mpadded", "mphantom",
    "mprescripts", "mroot", "mrow", "ms", "mspace", "msqrt", "mstyle", "msub", "msubsup", "msup",
    "mtable", "mtd", "mtext", "mtr", "munder", "munderover", "semantics", "menclose", "mlabeledtr",
}  # fmt: skip
_ALLOWED_TAGS |= _MATHML_TAGS
ALLOWED_TAGS = frozenset(_ALLOWED_TAGS)  # what sanitized HTML may hold (excerpts read it as text)

# Tags whose *content* is removed too: code, styling, form state, foreign
# content (SVG: mutation-XSS; MathML is kept but for its annotations), or raw text browsers
# never show.  <object> and
# <applet> are not here: their content is the fallback a browser shows in their
# place (often the only text of the embed), so the tag goes and the fallback stays.
# So does <noscript>'s (`_NOSCRIPT`, before parsing): <noscript> is listed only in case
# one is ever left.
_CLEAN_CONTENT_TAGS: set[str] = {
    "script", "style", "noscript", "template", "xmp", "noembed", "noframes", "plaintext",
    "title", "head", "textarea", "select", "option", "optgroup", "datalist",
    "embed", "param", "svg", "frameset", "frame",
    # a formula's source or other markup beside it, which browsers do not show (the safe list
    # keeps it only for trusted encodings, of which a feed has none)
    "annotation", "annotation-xml",
}  # fmt: skip

# The MathML elements with attributes of their own (the safe list's, and the alignments KaTeX writes).
_MATHML_OWN_ATTRIBUTES: dict[str, set[str]] = {
    "math": {"display", "alttext"},
    "mfrac": {"linethickness"},
    "mo": {"form", "fence", "separator", "lspace", "rspace", "stretchy", "symmetric", "maxsize",
           "minsize", "largeop", "movablelimits", "accent"},
    "mpadded": {"width", "height", "depth", "lspace"},  # no voffset: it moves a formula anywhere
    "mspace": {"width", "height", "depth"},
    "mover": {"accent"},
    "munder": {"accentunder"},
    "munderover": {"accent", "accentunder"},
    "mtable": {"columnalign", "rowalign", "columnlines", "rowlines", "frame"},
    "mtr": {"columnalign", "rowalign"},
    "mtd": {"columnspan", "rowspan", "columnalign", "rowalign"},
    "menclose": {"notation"},
}  # fmt: skip

# No ``id``/``name`` (DOM clobbering), no ``style`` (CSS expressions, overlays),
# no ``on*``, no ``rel``/``target`` (we set rel ourselves via link_rel).
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class", "title", "lang", "dir"},
    "a": {"href", "hreflang"},
    "img": {"src", "srcset", "sizes", "alt", "width", "height", "loading", "decoding"},
    "source": {"src", "srcset", "sizes", "type", "media"},
    "video": {"src", "poster", "controls", "width", "height", "loop", "muted", "playsinline", "preload"},
    "audio": {"src", "controls", "loop", "muted", "preload"},
    "track": {"src", "kind", "srclang", "label", "default"},
    "iframe": {"src", "width", "height", "allowfullscreen", "frameborder", "loading"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "data": {"value"},
    "abbr": set(),
    "th": {"colspan", "rowspan", "scope", "abbr", "headers"},
    "td": {"colspan", "rowspan", "headers"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "reversed", "type"},
    "li": {"value"},
    "details": {"open"},
    # MathML Core's attributes (no href, no xlink, no style): those of every element, and
    # those of the elements that have their own
    **{tag: {"displaystyle", "scriptlevel", "mathvariant", "mathcolor", "mathbackground", "mathsize",
             "intent", "arg"} | _MATHML_OWN_ATTRIBUTES.get(tag, set())
       for tag in _MATHML_TAGS},
}  # fmt: skip

# MathML sizes a formula can take from a feed: within a few ems, and only sideways below zero
# (KaTeX's negative thin space). Unbounded, an empty `mpadded` holding a page-sized `mspace`
# painted over the page around the post, as `style` would (which is why there is no `style`).
_MATH_LENGTHS = frozenset({"width", "height", "depth", "lspace", "rspace", "maxsize", "minsize", "mathsize",
                           "linethickness"})  # fmt: skip
_MATH_SIDEWAYS = frozenset({"width", "lspace", "rspace"})
_MATH_LENGTH_RE = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(em|ex|mu|px|pt|%)?\s*")
_MATH_MAX = {None: 4.0, "em": 4.0, "ex": 8.0, "mu": 72.0, "px": 64.0, "pt": 48.0, "%": 400.0}


def _math_length(attr: str, value: str) -> str | None:
    m = _MATH_LENGTH_RE.fullmatch(value)
    if m is None:
        return None
    size = float(m.group(1))
    if abs(size) > _MATH_MAX[m.group(2)] or (size < 0 and attr not in _MATH_SIDEWAYS):
        return None
    return value


_IFRAME_SANDBOX = "allow-scripts allow-same-origin allow-popups"
_IFRAME_HOSTS = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "www.youtube-nocookie.com",
        "player.vimeo.com",
        "player.bilibili.com",
        "v.qq.com",
        "www.dailymotion.com",
    }
)

# Schemes a reader may follow from a link (Miniflux's list, trimmed).
_LINK_SCHEMES = frozenset(
    {
        "http", "https", "mailto", "tel", "sms", "ftp", "sftp", "ssh", "git", "svn", "svn+ssh",
        "irc", "ircs", "irc6", "xmpp", "sip", "sips", "callto", "facetime", "skype",
        "magnet", "ed2k", "bitcoin", "geo", "news", "nntp", "feed", "webcal", "gopher",
        "itms", "itms-apps", "spotify", "steam", "rtmp",
    }
)  # fmt: skip
# Embedded resources are fetched by the browser: web URLs only.
_MEDIA_SCHEMES = frozenset({"http", "https"})
_WEB_PREFIXES = ("http://", "https://")

# ammonia checks href/src against this first; we re-check every URL attribute ourselves.
_NH3_URL_SCHEMES = set(_LINK_SCHEMES | {"data"})

_URL_ATTRIBUTES = frozenset({"href", "src", "srcset", "poster", "cite"})

# --------------------------------------------------------------------------- URL helpers

# Browsers strip leading/trailing C0 controls + space and drop tab/CR/LF anywhere,
# so remove all of them (and DEL) before looking for a scheme; U+FFFE/FFFF too, which
# `_drop_not_text` takes out of the output after this check (`java&#xFFFF;script:`).
_URL_JUNK_RE = re.compile(r"[\x00-\x20\x7f\ufffe\uffff]+")
_SCHEME_RE = re.compile(r"([a-z][a-z0-9+.\-]*):")
_WS = " \t\n\r\f"
# Characters that are not text (C0 controls but tab/LF/CR, DEL, lone surrogates, U+FFFE/FFFF):
# XML 1.0 forbids all but DEL, YAML and most editors choke on them, and controls are only ever
# used for evasion. Never stored: `_prepare` drops them raw, `_drop_not_text` decoded, and
# `url_text` percent-encodes them in URLs (only a guid is kept as given: it makes the post's id).
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# A numeric character reference that html5ever decodes into one of those (its leading zeros,
# `x`/`X`, a missing `;` all allowed; &#0;, surrogates and overflows it makes U+FFFD itself).
_NOT_TEXT_REF = re.compile(
    r"&#(?:[xX]0*(?:[1-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[fF]{3}[eEfF])(?![0-9a-fA-F])"
    r"|0*(?:[1-8]|1[124-9]|2[0-9]|3[01]|127|6553[45])(?![0-9]))"
)
_SRCSET_DESCRIPTOR_RE = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[wxh]")
_IFRAME_SRC_RE = re.compile(r"https://([A-Za-z0-9.\-]+)(?::443)?(?:[/?#][^\s\\]*)?")

# A <noscript> start or end tag. Its content is the fallback of a script we remove (a gist's
# code, an embed's link, a lazy-loaded image), what a reader of our script-less pages should
# see; html5ever, parsing as a browser with scripts on, reads it as raw text, so the tags go
# before parsing and what was inside is sanitized as any markup. `[^<>]` keeps the search
# linear on a hostile `<noscript<noscript…`.
_NOSCRIPT = re.compile(r"</?noscript(?=[\s/>])[^<>]*>", re.I)

_base_url: ContextVar[str | None] = ContextVar("aggregator_sanitize_base_url", default=None)


def _scheme(url: str) -> str | None:
    """The scheme a browser would see, lowercased, or None for a relative URL."""
    match = _SCHEME_RE.match(_URL_JUNK_RE.sub("", url).lower())
    return match.group(1) if match else None


def _resolve(url: str) -> str | None:
    """Make ``url`` absolute against the current base_url; None if unusable.

    Absolute URLs are returned untouched (urljoin would normalise them and break
    byte-identical republishing); only scheme-less URLs are joined.
    """
    stripped = url.strip(_WS)
    if not stripped:
        return url
    # Entity-encoded schemes that survived one decode (``&amp;#106;avascript:``) or hide
    # behind a quote/backtick (old IE quoting) are harmless to current browsers, but
    # refuse them anyway in case the output is decoded twice or quoted differently.
    if _scheme(_html.unescape(stripped).lstrip("`'\"")) not in (None, *_LINK_SCHEMES, "data"):
        return None
    if _scheme(stripped) is not None:
        return url
    base = _base_url.get()
    if not base:
        return url
    try:
        return urljoin(base, stripped)
    except ValueError:  # e.g. malformed IPv6 netloc in the base or the URL
        return None


def _checked_url(url: str, schemes: frozenset[str], allow_data_image: bool = False) -> str | None:
    """Resolve ``url`` and return it only if its final scheme is allowed."""
    if url.startswith(_WEB_PREFIXES) and "http" in schemes and "https" in schemes:
        # Most URLs: absolute http(s), which _resolve returns untouched and every list allows
        # (no entity or junk can precede the literal scheme). Half the sanitizer's callback time.
        return url
    resolved = _resolve(url)
    if resolved is None:
        return None
    scheme = _scheme(resolved)
    if scheme == "feed":
        return resolved if "feed" in schemes and _feed_target_ok(resolved) else None
    if scheme is None or scheme in schemes:
        return resolved
    if allow_data_image and scheme == "data" and _URL_JUNK_RE.sub("", resolved).lower().startswith("data:image/"):
        return resolved
    return None


def _feed_target_ok(url: str) -> bool:
    """Whether a `feed:` URL wraps a web URL: `feed:https://…` or `feed://…`. An app that
    takes `feed:` hands it what follows, and `feed:javascript:…` is then a script."""
    target = _URL_JUNK_RE.sub("", _html.unescape(url))[5:]
    return _scheme(target.lstrip("`'\"")) in (None, "http", "https")


def _iframe_src(url: str) -> str | None:
    """Accept only ``https://<allow-listed host>/...`` embeds.

    A strict regex rather than urlsplit: browsers treat ``\\`` as ``/`` and
    ignore tabs, so ``https://evil\\@www.youtube.com`` must not pass.
    """
    candidate = url.strip(_WS)
    if candidate.startswith("//"):
        candidate = "https:" + candidate
    elif candidate[:7].lower() == "http://":
        # an embed written before the players went https (every post of 2010): our pages and
        # readers, on https, refuse it over http, and all the listed hosts serve it over https
        candidate = "https://" + candidate[7:]
    resolved = _checked_url(candidate, frozenset({"https"}))
    if resolved is None:
        return None
    match = _IFRAME_SRC_RE.fullmatch(resolved)
    if match is None or match.group(1).lower() not in _IFRAME_HOSTS:
        return None
    return resolved


def _split_srcset(value: str) -> list[tuple[str, str]]:
    """Split a srcset into (url, descriptor) pairs per the HTML spec's algorithm."""
    candidates: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i] in _WS or value[i] == ","):
            i += 1
        start = i
        while i < n and value[i] not in _WS:
            i += 1
        url = value[start:i]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth, start = 0, i
            while i < n:
                ch = value[i]
                if ch == "(":
                    depth += 1
                elif ch == ")" and depth:
                    depth -= 1
                elif ch == "," and not depth:
                    break
                i += 1
            descriptor = " ".join(value[start:i].split())
        if url:
            candidates.append((url, descriptor))
    return candidates


def _srcset(value: str) -> str | None:
    """Resolve and check each srcset candidate; drop bad ones, keep the value if unchanged."""
    parts: list[str] = []
    changed = False
    for url, descriptor in _split_srcset(value):
        checked = _checked_url(url, _MEDIA_SCHEMES)
        if checked is None or (descriptor and not _SRCSET_DESCRIPTOR_RE.fullmatch(descriptor)):
            changed = True
            continue
        changed = changed or checked != url
        parts.append(f"{checked} {descriptor}" if descriptor else checked)
    if not parts:
        return None
    return ", ".join(parts) if changed else value


def _filter_url_attribute(tag: str, attr: str, value: str) -> str | None:
    if attr == "srcset":
        return _srcset(value)
    if tag == "iframe" and attr == "src":
        return _iframe_src(value)
    if attr == "href":
        checked = _checked_url(value, _LINK_SCHEMES)
        if checked is not None and "#" in value:
            in_post = _in_post.get()
            if in_post is not None:
                return in_post.href(checked)
        return checked
    if attr == "cite":
        return _checked_url(value, _LINK_SCHEMES)
    return _checked_url(value, _MEDIA_SCHEMES, allow_data_image=(tag == "img" and attr == "src"))


def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    """nh3 callback (runs after ammonia's own scheme check): resolve + re-check URLs; bound
    MathML sizes."""
    if attr not in _URL_ATTRIBUTES:
        if attr == "id" or attr == "name":  # allowed only by the cleaners of in-post links' second reading
            in_post = _in_post.get()
            return in_post.target(value) if in_post is not None else None
        if attr in _MATH_LENGTHS and tag in _MATHML_TAGS:
            return _math_length(attr, value)
        if attr == "preload":  # `auto` (or "", or anything unknown) let a page of posts download whole videos
            return value if value.strip().lower() in ("none", "metadata") else "metadata"
        return value
    try:
        return _filter_url_attribute(tag, attr, value)
    except Exception:  # never let a hostile URL become a crash; nh3 would strip it anyway
        return None


# --------------------------------------------------------------------------- cleaners

# The passes after nh3 (`_fix_iframe`, `_drop_katex_html`, `sanitized_text`) read its output
# as markup where every `<` and `>` left is a tag: nh3 0.3.7 was the first to escape them in
# attribute values too. An older one, still installed, must fail loudly, not let a
# `title="</span><img onerror=…>"` out as markup.
if "&lt;" not in nh3.clean('<b title="<">x</b>', tags={"b"}, attributes={"b": {"title"}}):
    raise ImportError(f"aggregator needs nh3 0.3.7 or later (installed: {getattr(nh3, '__version__', 'older')})")

# A video or audio always has controls: `autoplay` is not kept (it is not on the allow-list), and
# one without controls (a muted looping clip meant to autoplay) was a box nobody could start.
_MEDIA_CONTROLS = {"video": {"controls": ""}, "audio": {"controls": ""}}


def _cleaner(attributes: dict[str, set[str]], iframes: bool) -> nh3.Cleaner:
    """The allow-list cleaner, with `attributes`; without iframes, it drops them with what they hold."""
    if iframes:
        return nh3.Cleaner(
            tags=_ALLOWED_TAGS,
            clean_content_tags=_CLEAN_CONTENT_TAGS,
            attributes=attributes,
            attribute_filter=_filter_attribute,
            strip_comments=True,
            link_rel="noopener noreferrer",
            url_schemes=_NH3_URL_SCHEMES,
            set_tag_attribute_values={"iframe": {"sandbox": _IFRAME_SANDBOX}, **_MEDIA_CONTROLS},
        )
    return nh3.Cleaner(
        tags=_ALLOWED_TAGS - {"iframe"},
        clean_content_tags=_CLEAN_CONTENT_TAGS | {"iframe"},
        attributes={k: v for k, v in attributes.items() if k != "iframe"},
        attribute_filter=_filter_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=_NH3_URL_SCHEMES,
        set_tag_attribute_values=_MEDIA_CONTROLS,
    )


_CLEANER = _cleaner(_ALLOWED_ATTRIBUTES, iframes=True)
# Fallback if the iframe post-pass ever meets output it does not recognise.
_CLEANER_NO_IFRAME = _cleaner(_ALLOWED_ATTRIBUTES, iframes=False)
# The same, with `id` on every element, and an <a>'s `name` (the old way to mark a place, which
# browsers go to as to an id: `<a name="fn1">`): what a post's own links lead to (footnotes, a table
# of contents). Used only to read again a post that has such links (`_InPost`), whose filter keeps
# only the ids and names they lead to, each prefixed as the post's own.
_ID_ATTRIBUTES = {
    **_ALLOWED_ATTRIBUTES,
    "*": _ALLOWED_ATTRIBUTES["*"] | {"id"},
    "a": _ALLOWED_ATTRIBUTES["a"] | {"name"},
}
_CLEANER_IDS = _cleaner(_ID_ATTRIBUTES, iframes=True)
_CLEANER_IDS_NO_IFRAME = _cleaner(_ID_ATTRIBUTES, iframes=False)


def _attribute_text(value: str) -> str:
    """`value` escaped as html5ever writes an attribute value (nh3 >= 0.3.7: `<`, `>` too)."""
    escaped = value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")
    return escaped.replace("<", "&lt;").replace(">", "&gt;")


class _InPost:
    """A post's links to places in itself (`#fn1`, or the post's own URL and `#fn1`), and the
    elements they lead to.

    Ids are dropped (DOM clobbering: `<img id="location">` is `window.location` to a script),
    so a footnote's link led nowhere on our pages, or to the original article. A post whose
    links lead into itself is read a second time keeping the ids those links name, each
    prefixed with `prefix` (the post's own: no id of our pages, nor of another post in a feed,
    is ever taken), and the links lead there: `#<prefix>fn1`. A link to an id the post does
    not have keeps its resolved URL (the original's `#comments`)."""

    def __init__(self, prefix: str, base: str | None) -> None:
        self.prefix = prefix
        self.page = (base or "").partition("#")[0]
        self.links: dict[str, str] = {}  # fragment -> the URL it resolved to
        self.wanted: set[str] = set()  # the ids they name (each fragment, and percent-decoded)
        self.second = False  # the second reading: ids kept, links rewritten

    def href(self, checked: str) -> str:
        page, _, fragment = checked.partition("#")
        if not fragment or page != self.page:
            return checked
        if not self.second:
            self.links.setdefault(fragment, checked)
            return checked
        if fragment.startswith(self.prefix):  # read again (`_UNWRAPPED_SCOPE`): rewritten already
            return f"#{fragment}"
        return f"#{self.prefix}{fragment}"

    def target(self, value: str) -> str | None:
        if not self.second:
            return None
        name = value[len(self.prefix) :] if value.startswith(self.prefix) else value  # (read again: kept already)
        return self.prefix + name if name in self.wanted else None

    def read_again(self) -> None:
        self.second = True
        self.wanted = set(self.links) | {unquote(f) for f in self.links}

    def unmatched(self, cleaned: str) -> str:
        """`cleaned` with the links to ids the post lacks leading where they led before.

        The ids are those of its output: the filter also sees those of elements that go with
        their content (`<svg id="tiles">`, a real blog's link target), which lead nowhere."""
        start = len(self.prefix)
        cleaned = _without_repeated_names(cleaned)
        found = {
            _html.unescape(m.group(2))[start:] for t in _TAG.finditer(cleaned) for m in _TARGET.finditer(t.group())
        }
        for fragment, url in self.links.items():
            if fragment not in found and unquote(fragment) not in found:
                written = f'href="{_attribute_text(f"#{self.prefix}{fragment}")}"'
                cleaned = cleaned.replace(written, f'href="{_attribute_text(url)}"')
        return cleaned


# A start tag in nh3's output (text escapes `<`, a value `>` and `"`), and an id or an <a>'s name
# in it, kept only by `_InPost.target`: a tag may hold both (`<a name="fn2" id="fn1">`).
_TAG = re.compile(r'<[a-z][^>]*?\s(?:id|name)="[^>]*>')  # (only tags holding one: fewer to look into)
_TARGET = re.compile(r'\s(id|name)="([^"]*)"')


def _without_repeated_names(cleaned: str) -> str:
    """`cleaned` without the `<a name>`s that repeat an id or an earlier name of the post.

    An old footnote often marks its place twice (`<p id="fn1"><a name="fn1">`): both kept, our
    page was invalid HTML (a name may equal no other element's id nor another name) and the
    link goes to the id anyway, as a browser looks for ids before names."""
    if ' name="' not in cleaned:
        return cleaned
    tags = [(t, [(m.group(1), m.group(2)) for m in _TARGET.finditer(t.group())]) for t in _TAG.finditer(cleaned)]
    ids = {value for _, attrs in tags for kind, value in attrs if kind == "id"}
    names: set[str] = set()
    out: list[str] = []
    done = 0
    for tag, attrs in tags:
        for kind, value in attrs:
            if kind != "name":
                continue
            own_id = ("id", value) in attrs
            if (value in ids and not own_id) or value in names:
                start = tag.start()
                out += (cleaned[done:start], tag.group().replace(f' name="{value}"', "", 1))
                done = tag.end()
            names.add(value)
    if not out:
        return cleaned
    out.append(cleaned[done:])
    return "".join(out)


_in_post: ContextVar[_InPost | None] = ContextVar("aggregator_sanitize_in_post", default=None)

# Block-level boundaries become spaces in html_to_text; everything else is unwrapped.
_TEXT_BREAK_TAGS: set[str] = _HEADINGS | {
    "p", "br", "hr", "div", "blockquote", "pre", "address", "article", "section", "aside",
    "header", "footer", "ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "tr", "th", "td",
    "figure", "figcaption", "details", "summary",
}  # fmt: skip
_TEXT_CLEANER = nh3.Cleaner(
    tags=_TEXT_BREAK_TAGS,
    clean_content_tags=_CLEAN_CONTENT_TAGS | {"iframe", "video", "audio"},
    attributes={},
    strip_comments=True,
    link_rel=None,
)

# nh3 output is html5ever-serialized: attribute values are always double-quoted with
# `"`, `<` and `>` escaped, so this matches every iframe exactly.  iframe content is
# raw text that html5ever writes back *unescaped*; it is dropped so that no other
# parser (feed readers, XML tools) can ever see markup in it.
_IFRAME_RE = re.compile(r'<iframe((?:\s[^\s"\'>/=]+(?:="[^"]*")?)*)>.*?</iframe>', re.S)
_HAS_SRC_RE = re.compile(r'\ssrc="')
_TAG_RE = re.compile(r"<[^>]*>")
# Case-sensitive on purpose: it reads html5ever's serialization, whose tag names are always
# lowercase, and re.I made this the slowest step of sanitized_text.
_BREAK_TAG_RE = re.compile(r"</?(?:" + "|".join(sorted(_TEXT_BREAK_TAGS | {"img", "iframe"})) + r")\b[^>]*>")


def _fix_iframe(match: re.Match[str]) -> str:
    attrs = match.group(1)
    return f"<iframe{attrs}></iframe>" if _HAS_SRC_RE.search(attrs) else ""


# html5ever (under nh3) spends time per open element on each tag, so 100,000 nested <div>s
# take minutes. Like Blink (which caps its tree at 512 levels), tags deeper than this are
# dropped before parsing and their text is kept; real articles nest a few dozen deep.
MAX_HTML_DEPTH = 512
_HTML_TAG_RE = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*>")
_HTML_VOID = frozenset(
    "area base br col embed hr img input keygen link meta param source track wbr".split()
)  # fmt: skip
_HTML_SIBLINGS = frozenset("p li dt dd tr td th option rb rt rp".split())  # an open one ends at the next
_NESTED_LT_RE = re.compile(r"<[^>]*<")
# A lowercase start tag (not self-closing, not one of _HTML_SIBLINGS, which may close an open
# sibling) directly followed by its end tag: the walk's stack is the same before and after.
_HTML_PAIR_RE = re.compile(
    r"<(?!(?:" + "|".join(sorted(_HTML_SIBLINGS)) + r")[\s>])([a-z]+)(?=[\s>])[^<>]*(?<!/)>[^<]*</\1>"
)


def _cap_depth(html: str) -> str:
    """`html` without the tags that would nest deeper than MAX_HTML_DEPTH; linear time."""
    # Only a start tag opens a level, and every `<` not followed by `/` is at most one: below
    # the cap, no walk over the tags (most of a long article's cost here) is needed.
    if html.count("<") - html.count("</") <= MAX_HTML_DEPTH or not _may_reach_cap(html):
        return html
    stack: list[str] = []
    open_count: dict[str, int] = {}
    dropped: dict[str, int] = {}  # names of dropped start tags whose end tags must go too
    parts: list[str] = []  # the text kept between dropped tags (runs of dropped tags add nothing)
    done = 0
    for m in _HTML_TAG_RE.finditer(html, 0, _tags_end(html)):
        name = m.group(2).lower()
        if m.group(1):  # an end tag closes a dropped (always deeper) element first, else an open one
            if dropped.get(name):
                dropped[name] -= 1
                done = _cut(html, m, parts, done)
            elif open_count.get(name):
                _close(stack, open_count, name)
        elif name not in _HTML_VOID and not m.group().endswith("/>"):
            if stack and stack[-1] == name and name in _HTML_SIBLINGS:  # <p>a<p>b: siblings, not nested
                open_count[stack.pop()] -= 1
            if len(stack) >= MAX_HTML_DEPTH:
                dropped[name] = dropped.get(name, 0) + 1
                done = _cut(html, m, parts, done)
            else:
                stack.append(name)
                open_count[name] = open_count.get(name, 0) + 1
    if not done:
        return html
    parts.append(html[done:])
    return "".join(parts)


def _tags_end(html: str) -> int:
    """Where the last tag can end: just past the last `>`.

    A `<` with no `>` after it starts no tag, and `_HTML_TAG_RE` found so by reading to the
    end of the content, from each such `<`: `<b ` 100,000 times, never closed (300 KB), took
    12-40 s. Searched no further than this, every `<name` finds its `>`, and the walk is linear.
    """
    return html.rfind(">") + 1


def _close(stack: list[str], open_count: dict[str, int], name: str) -> None:
    """An end tag of an open element: it closes every element opened inside it, as browsers do."""
    while True:
        top = stack.pop()
        open_count[top] -= 1
        if top == name:
            break


def _may_reach_cap(html: str) -> bool:
    """False when `_cap_depth`'s walk would drop nothing, found in half its time for long articles.

    Where no tag holds a `<` (so every `<` starts a tag or a comment ending at the next `>`),
    pairs like `<span class="k">x</span>` with no tag between (most of the tags of a
    highlighted code listing) are taken out first, in C: each leaves the walk's stack as it
    was, and sat on top of a stack the walk of what remains goes through too. So when what
    remains never has MAX_HTML_DEPTH elements open at once, neither has `html`.
    """
    if _NESTED_LT_RE.search(html):
        return True
    reduced = html
    for _ in range(6):  # a pair around pairs comes out on the next pass
        shorter = _HTML_PAIR_RE.sub("", reduced)
        if len(shorter) == len(reduced):
            break
        reduced = shorter
        if reduced.count("<") - reduced.count("</") < MAX_HTML_DEPTH:
            return False
    stack: list[str] = []
    open_count: dict[str, int] = {}
    for m in _HTML_TAG_RE.finditer(reduced, 0, _tags_end(reduced)):  # the walk of _cap_depth, without cutting
        name = m.group(2).lower()
        if m.group(1):
            if open_count.get(name):
                _close(stack, open_count, name)
        elif name not in _HTML_VOID and not m.group().endswith("/>"):
            if stack and stack[-1] == name and name in _HTML_SIBLINGS:
                open_count[stack.pop()] -= 1
            stack.append(name)
            if len(stack) >= MAX_HTML_DEPTH:  # after the push: a pair taken out may have sat on this stack
                return True
            open_count[name] = open_count.get(name, 0) + 1
    return False


def _cut(html: str, m: re.Match[str], parts: list[str], done: int) -> int:
    if m.start() > done:
        parts.append(html[done : m.start()])
    return m.end()


def _prepare(html: object) -> str:
    """Coerce to a str nh3 accepts, without raw characters that are not text (`_NOT_TEXT`)."""
    if html is None:
        return ""
    if isinstance(html, bytes | bytearray):
        html = bytes(html).decode("utf-8", "replace")
    elif not isinstance(html, str):
        html = str(html)
    try:
        data = html.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from surrogateescape decoding
        html = html.encode("utf-8", "replace").decode("utf-8")
        data = html.encode("utf-8")
    # Control characters are the same single bytes in UTF-8 (never part of a multi-byte
    # sequence): bytes.translate finds them ~10x faster than the regex scans the text.
    # U+FFFE/FFFF: `in` on the str is ~10x cheaper than on the bytes, and free on ASCII text.
    if len(data.translate(None, _CONTROL_BYTES)) != len(data) or "\ufffe" in html or "\uffff" in html:
        html = _NOT_TEXT.sub("", html)
    html = _images(html)
    if "gist.github.com" in html:
        html = _SCRIPT_ELEMENT.sub(_gist_link, html)
    if _NOSCRIPT.search(html):
        html = _NOSCRIPT.sub("", html)
    return _cut_long_text(_cap_depth(html))


# Lazy-loading pages (WeChat articles, most Chinese CMSs, WordPress plugins) put the image
# in a data- attribute and a placeholder, or nothing, in src: the script that swaps them never
# runs in a reader, so the image was lost. Miniflux's `add_dynamic_image` reads the same ones.
# Lazy iframes (WeChat's Tencent Video embeds, lazysizes, WP Rocket) do the same with data-src.
_LAZY_SRC = ("data-src", "data-original", "data-lazy-src", "data-actualsrc", "data-original-src", "data-orig-file")
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")


def _attributes_pattern(space: str) -> str:
    """A start tag's attributes, what follows its name, as a possessive pattern; `space`: the
    characters (a class's content) that part names and values."""
    return (
        rf"""(?:[^{space}/>=][^{space}/>=]*+(?:[{space}]*+=[{space}]*+"""
        rf"""(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^{space}>]++))?+|[{space}/=]++)*+"""
    )


# An <img> or <iframe> start tag read as browsers read it: a `>` in a quoted value does not end it
# (`alt="Step 1 > Step 2"`), a quote in a name or an unquoted value opens nothing (`alt=it's`).
# Possessive throughout, so nothing backtracks; a quote never closed takes the tag to the end
# of the text (group 2 empty), where browsers drop it, and that match is the last, so the pass is linear.
_ATTRIBUTES = _attributes_pattern(r"\s")
_MEDIA_TAG = re.compile(r"<(img|iframe|video|audio|source)(?=[\s/>])" + _ATTRIBUTES + r"(?:(>)|\Z)", re.I)
_ATTRIBUTE = re.compile(r"""([^\s/>=][^\s/>=]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
# Whether a tag may need `_media`'s work: a lazy attribute, a 0/1 size, WordPress's emoji
# class or an empty src (most have none).
_TO_FIX = re.compile(
    r"""(?<![^\s/"'])(?:(?:"""
    + "|".join(re.escape(a) for a in _LAZY_SRC + _LAZY_SRCSET)
    + r""")\s*=|(?:width|height)\s*=\s*["']?[01](?:px)?["'\s/>]|wp-smiley(?![\w-])|src\s*=\s*(?:"\s*"|'\s*'))"""
    + r"|//(?:[\w.-]*\.)?(?:stats\.wordpress\.com|pixel\.wp\.com|feeds\.feedburner\.com|doubleclick\.net"
    r"|feedsportal\.com)[:/?#\"'\s>]",
    re.I,
)
# Images served by a feed service's counters and ads, whatever their size: WordPress.com's stats
# pixel (written without a size in older feeds), FeedBurner's FeedFlare buttons and counters (the
# service no longer serves them: broken images) and its ads. Miniflux blocks the same hosts.
_TRACKER_SRC = re.compile(
    r"(?:https?:)?//(?:[^/?#\s]*\.)?(?:stats\.wordpress\.com|pixel\.wp\.com|feeds\.feedburner\.com"
    r"|doubleclick\.net|feedsportal\.com)(?:[:/?#]|$)",
    re.I,
)
# A host name written with character references (`stats&#46;wordpress.com`), which `_TO_FIX`,
# reading the raw tag, does not see: browsers decode them, and the pixel was published. Only
# searched in a tag holding an `&`, for one in a host (or a `:&`, an encoded `//`); the src,
# decoded, is then held to `_TRACKER_SRC`.
_ENCODED_TRACKER = re.compile(r"//[^/?#\s\"'>]*&|:&")
# A link to one of those hosts with nothing left to show: the ad or counter image it held was
# removed (`_media`), and the empty link stayed, 70 of them in the corpus's Jekyll posts. Read on
# nh3's output (`"` escaped in values: a ` href="` is an attribute); the hosts are looked for first.
_TRACKER_HOSTS = ("doubleclick.net", "feedsportal.com", "feeds.feedburner.com", "stats.wordpress.com", "pixel.wp.com")
_EMPTY_TRACKER_LINK = re.compile(
    r'<a\s(?:[^>]*\s)?href="(?:https?:)?//(?:[^/?#"]*\.)?(?:stats\.wordpress\.com|pixel\.wp\.com|feeds\.feedburner\.com'
    r'|doubleclick\.net|feedsportal\.com)(?:[:/?#][^"]*)?"[^>]*>(?:\s|&nbsp;)*</a>',
    re.I,
)
# Where `_without_ads` took an empty ad link out (NUL: never in nh3's output, `_prepare` drops it):
# the line breaks after it go too, and a paragraph or block left with nothing but such places.
_AD_GONE = "\x00"
_AD_BREAKS = re.compile(r"\x00(?:\s*+<br>)++")
# What a line an ad's breaks go with begins with (looked for in the few characters before it):
# a break, a block's start tag, another ad's place, or the body's start.
_AD_LINE_START = re.compile(r"(?:\A|<br>|<(?:p|div|center)(?:\s[^>]*)?>|\x00)\s*\Z")


def _ad_line(m: re.Match[str]) -> str:
    """An ad's place without the breaks after it when the ad is all its line held: after text
    (`line one<a ad></a><br>line two`) the break ends that text's line, and stays."""
    before = m.string[max(0, m.start() - 200) : m.start()]
    if m.start() > 200 and not before.strip():
        return m.group()
    return _AD_GONE if _AD_LINE_START.search(before) else m.group()


_EMPTIED_BY_ADS = re.compile(r"<(p|div|center)(?:\s[^>]*)?>(?:\s|&nbsp;)*+\x00(?:\s|&nbsp;|\x00)*+</\1>")


def _without_ads(cleaned: str) -> str:
    """`cleaned` without its empty ad and counter links (`_EMPTY_TRACKER_LINK`) and what they leave.

    FeedBurner's ad block is `<p><a ad><img></a><br/><a ad><img></a></p>`: with its images and
    links gone, its `<br>` and an empty `<p>` stayed, a blank line under every post of the feed."""
    cleaned, gone = _EMPTY_TRACKER_LINK.subn(_AD_GONE, cleaned)
    if not gone:
        return cleaned
    cleaned = _AD_BREAKS.sub(_ad_line, cleaned)
    cleaned = _EMPTIED_BY_ADS.sub(_unless_target, cleaned)
    return cleaned.replace(_AD_GONE, "")


_PLACEHOLDER = re.compile(
    r"(?:blank|gr[ae]y|placeholder|lazy|loading|spacer|pixel|transparent)[\w-]*\.(?:gif|png|svg)", re.I
)
# What a lazy iframe's src holds until its script runs (`about:blank`, `javascript:void(0)`).
_IFRAME_PLACEHOLDER_SCHEMES = frozenset({"about", "javascript", "data"})
# A <noscript> right after a tag, and the start of the <img> it opens with: a lazy image's fallback.
_NOSCRIPT_IMG = re.compile(r"\s*<noscript(?=[\s/>])[^<>]*>\s*(?=<img[\s/>])", re.I)


# html5ever adds each piece of a text node (what lies between two character references,
# or bare `&`s) by copying the node so far, so a long text with many `&` took time squared in
# its length: 800 KB of `& ` took 16 s, and a feed's 16 MB would have held a poll for hours.
# Such a text is cut every few KB by an empty element (`_CUT`), which the cleaners drop: the same text,
# in pieces. A cut goes before an `&` (never inside a reference, never between CR and LF, never
# right after a <pre>'s start tag, whose first line feed the parser drops).
_CUT_EVERY = 4096
_MANY_REFS = 512
# An element no cleaner keeps, closed at once, rather than an empty comment: where text goes
# before a table it is in (a text in <table> or <tr>, "foster parenting") a comment stays in
# the table, and the text's pieces met again, each copied onto the last: time squared once more.
_CUT = "<cut-></cut->"
# Comments, declarations and tags (a `>` in a quoted value does not end one), exactly as the
# tokenizer reads them: the text between them is what is cut. Also `</` and no letter, a comment
# to the first `>`: a cut in it would end it early, showing what it hid. A comment ends at `-->`,
# `--!>`, or at once (`<!-->`, `<!--->`), and only HTML's five spaces part a tag's name and
# attributes (not U+00A0): read longer than the tokenizer reads it, a tag or comment hid the
# text after it from the cuts, and `<!-->` before 4 MB of `& ` held a poll for minutes again.
# Possessive: a linear scan.
_MARKUP = re.compile(
    r"<!--(?:-?>|.*?(?:--!?>|\Z))|<[!?][^>]*+(?:>|\Z)|</(?![a-zA-Z])[^>]*+(?:>|\Z)"
    r"|</?[a-zA-Z][^\t\n\f\r />]*+" + _attributes_pattern(r"\t\n\f\r ") + r"(?:>|\Z)",
    re.S,
)


def _cut_long_text(html: str) -> str:
    """`html` with its long, reference-dense texts cut by empty elements (`_CUT`, every `_CUT_EVERY`)."""
    if len(html) <= _CUT_EVERY or html.count("&") < _MANY_REFS:
        return html
    parts: list[str] = []
    done = math = 0
    while (m := _MARKUP.search(html, done)) is not None:
        _cut_text(html, done, m.start(), parts)
        token = m.group()
        if math and token.startswith("<![CDATA["):
            # In MathML a CDATA section is text to its `]]>`: a cut in it showed as text. It is
            # written as the escaped text it is (and cut as any), so not copied quadratically either.
            end = html.find("]]>", m.start() + 9)
            end = len(html) if end == -1 else end
            text = _html.escape(html[m.start() + 9 : end], quote=False)
            _cut_text(text, 0, len(text), parts)
            done = min(end + 3, len(html))
            continue
        if (tag := _MATH_TAG.match(token)) is not None:
            math = max(0, math - 1) if tag.group(1) else math + (not token.endswith("/>"))
        parts.append(token)
        done = m.end()
    _cut_text(html, done, len(html), parts)
    return "".join(parts)


_MATH_TAG = re.compile(r"<(/?)math(?=[\t\n\f\r />])", re.I)


def _cut_text(html: str, start: int, end: int, parts: list[str]) -> None:
    """Append `html[start:end]`, a text, to `parts`, `_CUT` before an `&` every
    `_CUT_EVERY` characters."""
    at = html.find("&", start + _CUT_EVERY, end)
    while at != -1:
        parts += (html[start:at], _CUT)
        start = at
        at = html.find("&", start + _CUT_EVERY, end)
    parts.append(html[start:end])


def _attributes(body: str) -> dict[str, str]:
    """A start tag's attributes (what follows its name), decoded; the first of a repeated name wins, as in browsers."""
    attrs: dict[str, str] = {}
    for name, value in _ATTRIBUTE.findall(body):
        if value[:1] in ('"', "'"):
            value = value[1:-1]  # exactly the quotes: `'He said "hi"'` keeps its inner ones
        attrs.setdefault(name.lower(), _CHARACTER_REFERENCE.sub(_attribute_reference, value) if "&" in value else value)
    return attrs


# A character reference as `html.unescape` finds them (a named one is then read by its longest
# prefix that is an entity, as the tokenizer reads it).
_CHARACTER_REFERENCE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


def _attribute_reference(match: re.Match[str]) -> str:
    """A character reference in an attribute value, decoded as browsers decode it: a named one
    without its `;` followed by a letter, a digit or `=` is left as written. `&timestamp=` in a
    URL is not `×tamp=` (the `&times` of `html.unescape`), nor `&region=` `®ion=`."""
    ref = match.group(1)
    if ref[0] != "#" and not ref.endswith(";"):
        for end in range(len(ref), 1, -1):
            if ref[:end] in _html_entities.html5:
                following = ref[end : end + 1]
                if following == "=" or (following.isascii() and following.isalnum()):
                    return match.group(0)
                break
    return _html.unescape(match.group(0))


def _start_tag(name: str, attrs: dict[str, str]) -> str:
    """The tag rewritten, without its data- attributes (which sanitizing drops anyway)."""
    kept = "".join(f' {n}="{_html.escape(v)}"' for n, v in attrs.items() if not n.startswith("data-"))
    return f"<{name}{kept}>"


def _lazy_url(attrs: dict[str, str], names: tuple[str, ...]) -> str:
    return next((attrs[a].strip() for a in names if attrs.get(a, "").strip()), "")


def _is_pixel(attrs: dict[str, str]) -> bool:
    return all(attrs.get(side, "").strip().removesuffix("px") in ("0", "1") for side in ("width", "height"))


def _media(match: re.Match[str]) -> str:
    """One <img>, <iframe>, <video>, <audio> or <source>: a tracking pixel dropped, a lazy
    one's real URL put in src (a lazy video's too: a player that played nothing)."""
    tag = match.group(0)
    if match.group(2) is None or not (_TO_FIX.search(tag) or ("&" in tag and _ENCODED_TRACKER.search(tag))):
        return tag  # nothing to do, or a quote never closed: browsers, and html5ever, drop the tag
    name = match.group(1).lower()
    attrs = _attributes(tag[1 + len(name) : -1])
    src = attrs.get("src", "").strip()
    real = _lazy_url(attrs, _LAZY_SRC)
    if name != "img":  # an iframe, a video, a sound, a <source>: no pixel, no <noscript> twin
        changed = False
        if real and (not src or _scheme(src) in _IFRAME_PLACEHOLDER_SCHEMES):
            attrs["src"] = real  # an iframe's then checked against the iframe hosts, as any src
            changed = True
        srcset = _lazy_url(attrs, _LAZY_SRCSET) if name == "source" else ""
        if srcset and not attrs.get("srcset", "").strip():
            attrs["srcset"] = srcset  # a <picture>'s lazy <source>
            changed = True
        return _start_tag(name, attrs) if changed else tag
    if _is_pixel(attrs) or _TRACKER_SRC.match(src):
        return ""  # a tracking pixel: nothing to see, and it tells the sender who read the post
    emoji = _emoji(attrs)
    if emoji:
        return _html.escape(emoji, quote=False)
    srcset = _lazy_url(attrs, _LAZY_SRCSET)
    if not (real or srcset):
        # an empty src (`<img src="">`) and no srcset: a broken picture, or the page's own URL fetched as one
        return "" if "src" in attrs and not src and not attrs.get("srcset", "").strip() else tag
    if _has_fallback(match.string, match.end()):
        # the <noscript> after it holds the image: shown once, from there, whatever the lazy one's
        # src (a low-resolution preview too: the picture showed twice, blurred then sharp)
        return ""
    if src and not src.lower().startswith("data:") and not _PLACEHOLDER.search(src):
        return tag
    if real:
        attrs["src"] = real
    if srcset and not attrs.get("srcset"):
        attrs["srcset"] = srcset
    return _start_tag(name, attrs)


# An <iframe> element as the tokenizer reads it: its start tag (a `>` in a quoted value does not
# end it), then raw text up to `</iframe` (or the end of the text, as browsers read an unclosed one).
_IFRAME_START = re.compile(r"<iframe(?=[\s/>])", re.I)
_EMBED_OR_BOX = re.compile(r"<(?:iframe|embed|input)(?=[\s/>])", re.I)
_IFRAME_ELEMENT = re.compile(
    r"<iframe(?=[\s/>])(" + _ATTRIBUTES + r")(?:>(.*?)(?:</iframe(?=[\s/>])[^>]*+>|\Z)|\Z)", re.I | re.S
)
# Frames that are ads or share buttons, not the post's: FeedBurner's and Amazon's ads, Google's ad
# frames, Facebook's like and Twitter's tweet buttons. They leave nothing, as before.
_AD_FRAME = re.compile(
    r"https?://(?:[^/?#]*[.@])?(?:doubleclick\.net|amazon-adsystem\.com|googlesyndication\.com|feedsportal\.com)"
    r"(?:[:/?#]|$)|https?://(?:www\.)?(?:facebook\.com/(?:plugins|widgets)/|platform\.twitter\.com/widgets/)",
    re.I,
)
# An <a> start tag, to the end of the text if no `>` closes it (browsers drop that one): a search
# failing there was made again from the next `<a`, reading the rest each time.
# Where an <iframe> start tag can be: in markup, not in a comment, the text of a script, style or
# other raw-text element, or another tag's attribute value (`alt="the <iframe> tag"`). Read from
# there, an `<iframe` never closed took the rest of the post. Each alternative always matches
# (to the end of the text at worst), so every `<` is read once: a linear pass.
# So are the <embed> and <input> tags `_youtube_player` and `_checkbox_text` rewrite: a tag
# written in an alt (`alt='<embed src="…youtube.com/v/ID">'`) was rewritten inside it.
_IN_MARKUP = re.compile(
    r"<!--(?:-?>|.*?(?:--!?>|\Z))"
    r"|<(script|style|textarea|title|xmp|noembed|noframes|plaintext)(?=[\s/>])"
    + _ATTRIBUTES
    + r"(?:>.*?(?:</\1(?=[\s/>])[^>]*+>|\Z)|\Z)"
    r"|<(?!(?:iframe|embed|input)(?=[\s/>]))[a-zA-Z][^\s/>]*+" + _ATTRIBUTES + r"(?:>|\Z)"
    r"|(?P<iframe>" + _IFRAME_ELEMENT.pattern + ")"
    r"|(?P<embed><embed(?=[\s/>])" + _ATTRIBUTES + r"(?:>|\Z))"
    r"|(?P<input><input(?=[\s/>])" + _ATTRIBUTES + r"(?:>|\Z))",
    re.I | re.S,
)


def _in_markup(match: re.Match[str], passes: frozenset[str]) -> str:
    """`_iframe_or_link` on an <iframe> element, `_youtube_player` on an <embed>, `_checkbox_text`
    on an <input> (each if among `passes`); a comment, raw text or other tag as it is."""
    kind = match.lastgroup
    if kind not in passes:
        return match.group(0)
    if kind == "iframe":
        iframe = _IFRAME_ELEMENT.match(match.group(0))
        return match.group(0) if iframe is None else _iframe_or_link(iframe)
    if kind == "embed":
        embed = _EMBED_TAG.match(match.group(0))
        return match.group(0) if embed is None else _youtube_player(embed)
    box = _INPUT_TAG.match(match.group(0))
    return match.group(0) if box is None else _checkbox_text(box, match.string[match.end() : match.end() + 1])


_FALLBACK_LINK = re.compile(r"<a(?=[\s/>])(" + _ATTRIBUTES + r")(?:(>)|\Z)", re.I)


def _iframe_or_link(match: re.Match[str]) -> str:
    """An <iframe> off the video hosts' list as a link to what it embeds, else unchanged.

    Such an embed (a Spotify episode, a SoundCloud track, a CodePen, Medium's embedly players
    and gists) is never kept, and it used to vanish without a trace: a reader did not even know
    a podcast or a video stood there. It now leaves a link, named by its `title`, to the link
    its own fallback text gives (Medium's), else to its src; one sized 0 or 1 with no fallback
    link (a tracker) leaves nothing. The link is sanitized as any other."""
    if match.group(2) is None:
        return match.group(0)  # a quote never closed: browsers, and html5ever, drop the tag
    attrs = _attributes(match.group(1))
    src = attrs.get("src", "").strip()
    if src and _iframe_src(src) is not None:
        return match.group(0)
    if _GOOGLE_READER_EMBED.match(src):
        return _unwrapped_youtube(src, attrs)
    url = ""
    fallback = _FALLBACK_LINK.search(match.group(2) or "")
    if fallback is not None and fallback.group(2) is not None:
        url = _attributes(fallback.group(1)).get("href", "").strip()
    if not url and src and not _is_pixel(attrs):
        url = src
    checked = _checked_url(url, _MEDIA_SCHEMES) if url else None
    if not checked or _scheme(checked) not in _MEDIA_SCHEMES or _AD_FRAME.match(checked):
        return ""
    text = " ".join(attrs.get("title", "").split()) or checked
    return f'<a href="{_html.escape(checked)}">{_html.escape(text)}</a>'


# Google Reader's wrapper of a Flash player, as feeds it republished carry it (`embediframe?src=
# http://www.youtube.com/v/ID%26hl%3Den&width=450`): the service is gone, so its link leads nowhere.
_GOOGLE_READER_EMBED = re.compile(r"(?:https?:)?//reader\.googleusercontent\.com/reader/embediframe\?", re.I)


def _unwrapped_youtube(src: str, attrs: dict[str, str]) -> str:
    """A wrapped YouTube video as YouTube's player frame (as `_youtube_player` makes of its Flash
    embed); any other wrapped player, dead with Google Reader and Flash, leaves nothing."""
    inner = parse_qs(urlsplit(src).query).get("src", [""])[0]
    video = _FLASH_YOUTUBE.fullmatch(inner.strip())
    if video is None:
        return ""
    return _youtube_frame(video.group(1), attrs)


def _emoji(attrs: dict[str, str]) -> str:
    """The emoji a WordPress emoji image stands for (its alt), else "".

    WordPress writes every emoji of a post's feed as a 72px picture of it (`wp_staticize_emoji`:
    `<img class="wp-smiley" alt="😆" style="height: 1em">`); without the style, which is never
    kept, it showed 72px tall in the middle of a line on our pages and in readers. The character
    itself is what the author typed. Old-style smilies, whose alt is ASCII (`;)`), stay pictures."""
    alt = attrs.get("alt", "").strip()
    if "wp-smiley" not in attrs.get("class", "").split() or not alt or _CONTROL.search(alt):
        return ""
    return "" if any(ch.isascii() for ch in alt) else alt


_EMBED_TAG = re.compile(r"<embed(?=[\s/>])(" + _ATTRIBUTES + r")(?:>|\Z)", re.I)
_FLASH_YOUTUBE = re.compile(
    r"(?:https?:)?//(?:www\.)?youtube(?:-nocookie)?\.com/v/([\w-]{6,})(?:[?&#].*)?", re.I | re.S
)
_SIZE = re.compile(r"\d{1,4}")


def _youtube_player(match: re.Match[str]) -> str:
    """A YouTube video embedded as Flash (`<embed src="http://www.youtube.com/v/ID">`, every
    post before 2012) as YouTube's player frame; any other <embed> unchanged (and removed).

    Flash is gone from browsers and `<embed>` is never kept: the video vanished, not even a
    link left. The frame is then held to the iframe hosts and sandboxed as any."""
    if not match.group(0).endswith(">"):
        return match.group(0)
    attrs = _attributes(match.group(1))
    video = _FLASH_YOUTUBE.fullmatch(attrs.get("src", "").strip())
    if video is None:
        return match.group(0)
    return _youtube_frame(video.group(1), attrs)


def youtube_player(url: object, attrs: dict[str, str]) -> str | None:
    """YouTube's player frame for a video's Flash URL (`https://www.youtube.com/v/ID?version=3`,
    what a YouTube channel's Atom feed gives as each entry's `media:content`), with the numeric
    width and height of `attrs`; None for any other URL."""
    video = _FLASH_YOUTUBE.fullmatch(url.strip()) if isinstance(url, str) else None
    return None if video is None else _youtube_frame(video.group(1), attrs)


def _youtube_frame(video: str, attrs: dict[str, str]) -> str:
    """YouTube's player frame for a video id, with the numeric width and height of `attrs`."""
    size = "".join(f' {k}="{attrs[k]}"' for k in ("width", "height") if _SIZE.fullmatch(attrs.get(k, "").strip()))
    return f'<iframe src="https://www.youtube.com/embed/{video}"{size} allowfullscreen></iframe>'


_INPUT_START = re.compile(r"<input(?=[\s/>])", re.I)
_INPUT_TAG = re.compile(r"<input(?=[\s/>])(" + _ATTRIBUTES + r")(?:>|\Z)", re.I)


def _checkbox_text(match: re.Match[str], following: str) -> str:
    """A checkbox as the ballot box it shows, ticked (☑) or not (☐); any other <input> unchanged.

    A task list (GitHub's release notes and issues, Hugo, Jekyll: `<li><input type="checkbox"
    checked disabled> Done`) lost its checkboxes with the form controls, which are never kept:
    a reader saw the list without knowing which tasks were done. `following`: the character
    after the tag (a space is put between the box and a word right after it)."""
    if not match.group(0).endswith(">"):
        return match.group(0)
    attrs = _attributes(match.group(1))
    if attrs.get("type", "").strip().lower() != "checkbox":
        return match.group(0)
    box = "\u2611" if "checked" in attrs else "\u2610"
    return box if not following or following.isspace() else box + " "


# A <script> start tag, and its end tag if only whitespace comes between (a <script src> with
# nothing inside); and a GitHub gist's embed script (`<user>/<id>.js`, an optional `?file=`), as
# blogs paste it for a code listing. Every start tag matches (to the end of the text if no `>`
# closes it), so the search never reads a tag twice: failing after it, `<script a=x ` 20,000
# times read the rest of the text from each and took a minute.
_SCRIPT_ELEMENT = re.compile(r"<script(?=[\s/>])(" + _ATTRIBUTES + r")(?:>(\s*</script(?=[\s/>])[^>]*+>)?|\Z)", re.I)
_GIST_SRC = re.compile(r"(?:https?:)?//gist\.github\.com/((?:[A-Za-z0-9-]+/)?[0-9A-Fa-f]+)\.js(?:\?[^#\s]*)?")
_NOSCRIPT_NEXT = re.compile(r"\s*<noscript(?=[\s/>])", re.I)


def _gist_link(match: re.Match[str]) -> str:
    """A gist's embed script as a link to the gist, unless a <noscript> after it holds the code.

    The script, which writes the code listing into the page, is removed as every script is; a
    post that embedded its code so (Ghost's HTML card, most blogs) read 'the tool is
    registered so:' followed by nothing. The link at least leads to the code."""
    if match.group(2) is None or _NOSCRIPT_NEXT.match(match.string, match.end()):
        return match.group(0)  # not empty, or its fallback is kept (see `_NOSCRIPT`): the code is shown there
    gist = _GIST_SRC.fullmatch(_attributes(match.group(1)).get("src", "").strip())
    if gist is None:
        return match.group(0)
    url = f"https://gist.github.com/{gist.group(1)}"
    return f'<a href="{url}">{url}</a>'


def _has_fallback(html: str, end: int) -> bool:
    """Whether a <noscript> right after `end` opens with a real image (the lazy one's fallback)."""
    noscript = _NOSCRIPT_IMG.match(html, end)
    if noscript is None:
        return False
    img = _MEDIA_TAG.match(html, noscript.end())
    if img is None or img.group(2) is None:
        return False
    attrs = _attributes(img.group(0)[4:-1])
    src = attrs.get("src", "").strip()
    return bool(src) and not src.lower().startswith("data:") and not _PLACEHOLDER.search(src) and not _is_pixel(attrs)


def _images(html: str) -> str:
    """`_media` on every <img>, <iframe>, <video>, <audio> and <source>, those in a <noscript> too.

    Each tag is found by `_MEDIA_TAG`, whose search skips to a `<` in C: searching the whole
    text for the attributes first, which no literal starts, took four times as long."""
    return _MEDIA_TAG.sub(_media, html)


def _drop_not_text(prepared: str, cleaned: str) -> str:
    """`cleaned` without the characters that are not text which html5ever decoded from
    references in `prepared` (`&#x1;`, `&#xFFFF;`): `_prepare` only sees them raw.

    Checks the input, not the output: most HTML holds no such reference, and the regex finds
    its literal `&#` faster than a separate `in` test would (21 ms against 14 ms over the
    corpus's 32 MB of HTML).
    """
    if _NOT_TEXT_REF.search(prepared):
        return _NOT_TEXT.sub("", cleaned)
    return cleaned


# Elements the cleaner takes away (keeping their content) that the HTML parser treats as a
# scope or a formatting marker: what was inside them was kept apart from what is around
# them (a link inside a link's <object> fallback, a <div> in a <p>'s <button>).
_UNWRAPPED_SCOPE = re.compile(r"<(?:object|applet|marquee|button)[\s/>]", re.I)


# A <pre> whose text starts with a line feed, as html5ever writes it: the HTML parser drops
# the one line feed right after `<pre>`, and html5ever does not write it twice as the HTML
# serialization algorithm says to.
_PRE_LEADING_LF = re.compile(r"(<pre(?:\s[^>]*)?>)\n")


def _clean(cleaner: nh3.Cleaner, html: str) -> str:
    """`cleaner.clean(html)` that a browser reads back as the same tree: without the doubled
    line feed, each reading of a <pre> starting with a blank line lost that line."""
    cleaned = cleaner.clean(html)
    if "<pre" in cleaned:
        return _PRE_LEADING_LF.sub("\\1\n\n", cleaned)
    return cleaned


# --------------------------------------------------------------------------- public API


def sanitize_html(html: str, base_url: str | None = None, id_prefix: str | None = None) -> str:
    """Return safe HTML: allow-listed tags/attributes, relative URLs made absolute against base_url.

    `id_prefix` (the post's own, as `<post id>-`): the post's links to places in it are kept
    working, the ids they lead to kept with that prefix (`_InPost`); without it, no id is kept."""
    text = _prepare(html)
    if not text:
        return ""
    if "<svg" in text or "<SVG" in text:
        text = _drawings_named(text)
    token = _base_url.set(base_url or None)
    in_post = _InPost(id_prefix, base_url) if id_prefix else None
    in_post_token = _in_post.set(in_post)
    try:
        if _EMBED_OR_BOX.search(text):  # one search for the three passes below (most posts need none)
            passes = frozenset(
                kind
                for kind, needed in (
                    ("embed", "youtube.com/v/" in text),
                    ("iframe", _IFRAME_START.search(text) is not None),
                    ("input", _INPUT_START.search(text) is not None),
                )
                if needed
            )
            if passes:  # one reading of the markup for all three
                text = _IN_MARKUP.sub(lambda m: _in_markup(m, passes), text)
        cleaned = _cleaned(text, _CLEANER, _CLEANER_NO_IFRAME)
        if in_post is not None and in_post.links:  # links into the post (few posts): read again keeping ids
            in_post.read_again()
            cleaned = in_post.unmatched(_cleaned(text, _CLEANER_IDS, _CLEANER_IDS_NO_IFRAME))
        return _drop_not_text(text, cleaned)
    finally:
        _in_post.reset(in_post_token)
        _base_url.reset(token)


# An inline SVG's start tag (a `>` in a quoted value does not end it), its end tag, and its name:
# its own `<title>` (the first: a drawing's title comes before its parts') or `aria-label`.
_SVG_START = re.compile(r"<svg(?=[\s/>])(" + _ATTRIBUTES + r")(?:>|\Z)", re.I)
# Its start and end tags, to find the end tag that closes it (drawings nest SVGs: alexwlchan's each
# commit of a Git history); a start tag ending `/>` closes itself, as it does in foreign content.
_SVG_TAGS = re.compile(r"<svg(?=[\s/>])" + _ATTRIBUTES + r"(?:>|\Z)|</svg\s*>", re.I)
_SVG_TITLE = re.compile(r"<title(?:\s[^>]*)?>(.*?)</title\s*>", re.I | re.S)


def _drawings_named(text: str) -> str:
    """`text` with each inline SVG that says it is a picture (`role="img"`) as the text naming it.

    An SVG is never kept (mutation XSS), and with it went what the author wrote for those who
    cannot see it: `<svg role="img"><title>A 3×3 grid of pixels…</title>` (alexwlchan's) left
    nothing where the drawing was. Its name is what an `<img>`'s alt would be, and a browser
    shows an alt where the picture cannot be. One with no such role (an icon: Ghost's file
    card's `<title>download-circle</title>`), hidden (`aria-hidden="true"`), self-closed or
    never closed goes as before. Read on the raw text, linearly: from each such start tag to
    the end tag closing it, then on from there."""
    parts: list[str] = []
    done = at = 0
    last = ""  # the last character written before `done`, when it is a name's
    while (start := _SVG_START.search(text, at)) is not None:
        at = start.end()
        attrs = _attributes(start.group(1))
        if attrs.get("role", "").strip().lower() != "img" or attrs.get("aria-hidden", "").strip().lower() == "true":
            continue
        if start.group(0).endswith("/>"):
            continue  # nothing in it; the drawings after it are still read
        end = _svg_end(text, at)
        if end is None:
            break
        inner = text[at : end.start()]
        label = attrs.get("aria-label", "")
        if not label.strip():
            title = _SVG_TITLE.search(inner)
            label = html_to_text(title.group(1)) if title is not None else ""
        name = _html.escape(" ".join(label.split()), quote=False)
        if name:
            before = text[done : start.start()][-1:] or last
            after = text[end.end() : end.end() + 1]
            # a word apart from the text beside it (two drawings side by side ran their names together)
            space = " " if before and not before.isspace() and before != ">" else ""
            parts += (text[done : start.start()], space, name, " " if after.isalnum() else "")
            last = name[-1]
            done = end.end()
        at = end.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _svg_end(text: str, at: int) -> re.Match[str] | None:
    """The end tag closing the SVG whose start tag ends at `at`; None when none does."""
    depth = 1
    for tag in _SVG_TAGS.finditer(text, at):
        if tag.group().startswith("</"):
            depth -= 1
            if not depth:
                return tag
        elif not tag.group().endswith("/>"):
            depth += 1
    return None


def _cleaned(text: str, cleaner: nh3.Cleaner, no_iframe: nh3.Cleaner) -> str:
    """`text` cleaned by `cleaner` (`no_iframe` if its iframes come out unexpected), and the
    passes on its output."""
    cleaned = _clean(cleaner, text)
    if _UNWRAPPED_SCOPE.search(text):
        # Taken away, such an element leaves what no parser builds (<a> in <a>, <div> in
        # <p>): read once more, the text is the tree a browser will make of it.
        cleaned = _clean(cleaner, cleaned)
    iframes = cleaned.count("<iframe")
    if iframes:
        cleaned, matched = _IFRAME_RE.subn(_fix_iframe, cleaned)
        if matched != iframes:  # unexpected serialization: drop iframes rather than guess
            cleaned = _clean(no_iframe, text)
    if _KATEX_HTML in cleaned:
        cleaned = _drop_katex_html(cleaned)
    if any(host in cleaned for host in _TRACKER_HOSTS):
        cleaned = _without_ads(cleaned)
    if "<svg" in text or "<SVG" in text:  # an inline drawing (never kept) leaves its wrappers empty
        for _ in range(8):  # a wrapper around wrappers is empty on the next pass
            cleaned, emptied = _EMPTY_WRAPPER.subn(_unless_target, cleaned)
            if not emptied:
                break
    if "</figure>" in cleaned:
        cleaned = _EMPTY_FIGURE.sub(_unless_target, cleaned)
    return cleaned


# A figure with nothing left in it but empty wrappers: its drawing (an inline SVG), its frame (an
# ad's, a player off the video hosts' list) or its image (a counter) was removed, and an empty
# box was published, a gap in the text (WordPress puts each embed and image in one). And, in a
# post that had an inline SVG, such a wrapper anywhere (a drawing's `<div class="chart">`).
# Read on nh3's output: each tag whole, no `>` in a value. One holding an id (a footnote's
# target, `_InPost`) stays.
_WRAPPERS = "div|span|p|picture|figcaption"
_EMPTY_FIGURE = re.compile(r"<figure(?:\s[^>]*)?>(?:\s|&nbsp;|</?(?:" + _WRAPPERS + r")(?:\s[^>]*)?>)*</figure>")
# Empty: a space in a span is a word's (a highlighted listing's `<span class="w"> </span>`).
_EMPTY_WRAPPER = re.compile(r"<(figure|" + _WRAPPERS + r")(?:\s[^>]*)?></\1>")


def _unless_target(match: re.Match[str]) -> str:
    return match.group(0) if ' id="' in match.group(0) else ""


# KaTeX writes each formula twice: as MathML, and as spans that only its own stylesheet lays
# out (`aria-hidden`, for sight only). Without that stylesheet, in a reader or on our pages,
# the spans read as a jumble after the formula; the MathML alone shows it.
_KATEX_HTML = '<span class="katex-html">'
_SPAN_TAG_RE = re.compile(r"<span[\s>]|</span>")


def _drop_katex_html(cleaned: str) -> str:
    """`cleaned` without each KaTeX visual copy that follows its formula's MathML.

    html5ever's serialization is well formed and escapes `<` in text and attribute values,
    so counting span tags finds the copy's end exactly."""
    parts: list[str] = []
    done = 0
    start = cleaned.find(_KATEX_HTML)
    while start != -1:
        end = -1
        if cleaned.endswith("</math></span>", done, start):
            depth = 0
            for m in _SPAN_TAG_RE.finditer(cleaned, start):
                depth += -1 if m.group() == "</span>" else 1
                if depth == 0:
                    end = m.end()
                    break
        if end == -1:  # not after a formula, or (never from nh3 >= 0.3.7) unbalanced: leave the rest
            break
        parts.append(cleaned[done:start])
        done = end
        start = cleaned.find(_KATEX_HTML, done)
    if not parts:
        return cleaned
    parts.append(cleaned[done:])
    return "".join(parts)


def html_to_text(html: str) -> str:
    """Plain text from HTML: tags stripped, entities decoded, whitespace collapsed (for titles / summaries)."""
    text = _prepare(html)
    if not text:
        return ""
    if "<" not in text and "&" not in text:
        # No tag, no reference: html5ever would give back these very characters (`>`
        # escaped, then unescaped below) but for a leading byte order mark, and parsing
        # them was most of the cost of a title or a tag.
        return " ".join(text[1:].split() if text[0] == "\ufeff" else text.split())
    return _parsed_text(text)


def _parsed_text(text: str) -> str:
    """`html_to_text` of `_prepare`d input, parsed with html5ever (the parser browsers
    mimic) rather than regexes on raw input: its output has only real tags left, with text
    `<`/`>` escaped."""
    cleaned = _drop_not_text(text, _TEXT_CLEANER.clean(text))
    return " ".join(_html.unescape(_TAG_RE.sub(" ", cleaned)).split())


def _percent_encoded(m: re.Match[str]) -> str:
    c = m.group()
    return "%EF%BF%BD" if "\ud800" <= c <= "\udfff" else "".join(f"%{b:02X}" for b in c.encode())


def url_text(url: str) -> str:
    """`url` with its characters that are not text percent-encoded, as a browser sends them
    (a lone surrogate as U+FFFD's bytes): stored and shown in pages and feeds as it is, a URL
    must not carry what XML forbids; encoded, it still leads where it led."""
    return _NOT_TEXT.sub(_percent_encoded, url)


def one_line(text: str) -> str:
    """`text` without characters that are not text, its whitespace collapsed to single spaces."""
    return " ".join(_NOT_TEXT.sub("", text).split())


# What shows nothing: format characters (ZWSP, ZWJ, BOM, bidi marks and controls, word joiner),
# spaces and separators, controls, and the fillers that render blank (hangul, braille).
_BLANK_CATEGORIES = frozenset(("Cf", "Cc", "Zs", "Zl", "Zp"))
_BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def shows_something(text: str) -> bool:
    """Whether `text` has a character a reader sees: a title of a zero-width space (`&#8203;`,
    which some sites write for "no title"), a BOM or a bidi mark alone was published as the
    post's title, an empty-looking link in every listing that no one could see or click."""
    return any(
        not (ch.isspace() or ch in _BLANK_CHARACTERS or unicodedata.category(ch) in _BLANK_CATEGORIES) for ch in text
    )


def grapheme_start(text: str, index: int) -> int:
    """The last place at or before `index` where `text` may be cut between two characters as
    a reader sees them (UAX #29 grapheme clusters, in the main): not before a combining mark,
    a vowel sign, a variation selector or skin tone, not after a ZWJ or an Indic virama, not
    inside a flag. A title or excerpt cut at a bare code point showed a Thai or Hindi word
    without its vowel (the next text starting with it alone), a family emoji as its first
    members, Vietnamese written decomposed (NFD) without its accents. A text that is one
    cluster from its start (`index` would go to 0) is cut at `index`: something is shown."""
    at = index
    while 0 < at < len(text):
        before, here = text[at - 1], text[at]
        if _continues(here) or before in _JOINERS or _after_virama(before, here):
            at -= 1
        elif _REGIONAL <= here <= _REGIONAL_END and _REGIONAL <= before <= _REGIONAL_END:
            run = at - 1
            while run > 0 and _REGIONAL <= text[run - 1] <= _REGIONAL_END:
                run -= 1
            if (at - run) % 2 == 0:  # flags are pairs: `at` falls between two
                break
            at -= 1
        else:
            break
    return at or index


_JOINERS = "\u200c\u200d"  # ZWNJ, ZWJ: part of the cluster they end (UAX #29 Extend, ZWJ)
_REGIONAL, _REGIONAL_END = "\U0001f1e6", "\U0001f1ff"


def _continues(ch: str) -> bool:
    """Whether `ch` belongs to the cluster before it: a mark (Mn, Mc, Me), a joiner, an emoji
    skin tone or tag, Thai and Lao SARA AM, a decomposed hangul syllable's vowel or final."""
    if ch.isascii():
        return False
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or ch in _JOINERS
        or ch in "\u0e33\u0eb3"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"
        or "\U000e0020" <= ch <= "\U000e007f"
        or "\u1160" <= ch <= "\u11ff"
        or "\ud7b0" <= ch <= "\ud7ff"
    )


def _after_virama(before: str, here: str) -> bool:
    """A virama joining two consonants of an Indic script (`क्ष`): one cluster (UAX #29 GB9c)."""
    return "\u0900" <= before <= "\u0dff" and unicodedata.combining(before) == 9 and unicodedata.category(here) == "Lo"


# C0 controls, DEL and C1 controls (U+009B is CSI to a terminal that reads C1), lone surrogates,
# and the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): a terminal that
# lays out bidi text (VTE) showed the rest of the line reversed after an RLO.
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"  # as a character class's content
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{BIDI_CONTROLS}]")


def printable(text: str) -> str:
    """`text` with its control characters written as escapes (`\\x1b`, `\\u202e`): a server's
    own words in an error (an HTTP reason phrase, a Location header) are printed by `fetch`,
    `status` and the logs, and an ESC in them drove the operator's terminal (cleared the screen,
    retitled the window, rewrote earlier lines). The escape still says what the server sent."""
    return _CONTROL.sub(_control_escape, text)


def _control_escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# A language tag's shape (RFC 5646 2.1): a 2- or 3-letter language (ISO 639) and up to three
# extended ones, then a script, a region, variants, extensions and private use, each optional;
# or a private-use or grandfathered (`i-klingon`) tag. The 4- to 8-letter languages the grammar
# reserves are left out: none is registered, and what feeds write there is a name (`English`).
_LANGUAGE_TAG = re.compile(
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}"  # language, extlang
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"  # private use
    r"|x(?:-[a-z0-9]{1,8})+|i-[a-z]{2,8})",
    re.I,
)


def language_tag(value: object) -> str | None:
    """`value` as a BCP 47 language tag (`zh_CN`, a locale, as `zh-CN`), or None when it is
    not shaped like one: feeds declare `xml:lang="utf-8"` or `<language>English</language>`,
    which said in a page's `lang` or a feed's `xml:lang` is a wrong language, not an unknown
    one (browsers pick fonts and hyphenation by it, screen readers a voice). A shape check,
    not a registry lookup: `qq` passes, as an unknown language would."""
    if not isinstance(value, str):
        return None
    tag = one_line(value).replace("_", "-")
    return tag if _LANGUAGE_TAG.fullmatch(tag) else None


def sanitized_text(html: str) -> str:
    """Plain text of HTML this module already sanitized (cheap: no second parse).

    Safe only on `sanitize_html` output, where every `<` and `>` left is a real tag
    (text and attribute values have them escaped) and no script or style text remains.
    """
    if not html:
        return ""
    spaced = _BREAK_TAG_RE.sub(" ", html)  # block boundaries separate words; inline tags do not
    return " ".join(_html.unescape(_TAG_RE.sub("", spaced)).split())
