"""Which characters a feed's bytes are, read as a browser reads them (WHATWG Encoding).

feedparser follows RFC 3023: the HTTP charset wins, then the XML declaration, then a BOM,
falling back along that list, then to windows-1252 and iso-8859-2, when a candidate fails to
decode. That loses whole feeds in cases a browser reads without trouble:

- one stray byte in a UTF-8 feed made all of it fail as UTF-8, so all of it was read as
  windows-1252 or iso-8859-2: every CJK character became mojibake, where a browser shows the
  one bad byte as U+FFFD and the rest intact;
- `gb2312`/`gbk`/`x-gbk` and `big5` name, for Python, the narrow historical sets; the
  servers that send them mean what the WHATWG maps them to, GB18030 and Big5-HKSCS, and a
  character outside the narrow set (common in names) failed the whole document;
- an XML declaration after blank lines was not seen (feedparser matches it at byte 0 only);
- a UTF-16 label on ASCII-compatible bytes (a template's copied header or declaration)
  cannot be true, and reading the bytes as UTF-16 made them noise;
- a BOM is the surest evidence there is, and browsers let it beat the HTTP charset.
- a UTF-8 feed behind a server's `charset=gbk` (or under a template's copied declaration)
  was read as the label says; GB18030 decodes nearly any bytes, so every title became
  mojibake without an error. Bytes that are evidently UTF-8 are read so (`_evidently_utf8`).

`prepare` decides, and only where its reading differs from what the parsers would make of
the bytes does it hand them the document re-encoded as UTF-8, declared so (feedparser
converts every document to UTF-8 before parsing, so this changes nothing else). Everything
it does not judge (unknown labels, UTF-16 without a BOM, legacy bytes that fail their own
label) is left to feedparser's rules, as before. `reconcile_charset`, for a catch-all HTTP
charset (ISO-8859-1, windows-1252) that contradicts the document's declaration, is kept:
every byte decodes in those, so a GBK feed served so would never fail and never fall back.

A document that names no encoding at all (no BOM, no HTTP charset, no encoding in its XML
declaration) and is not UTF-8 was read as windows-1252 (feedparser's fallback): a GB2312,
Shift-JIS, EUC-KR or KOI8-R feed became mojibake, with no warning. `guess_encoding` asks
charset_normalizer instead, and is believed only where its reading is clearly better than
windows-1252 (see there). So is a document whose bytes fail every label it has (a GBK feed
under a copied `encoding="utf-8"`); a declaration the bytes decode in is never second-guessed.
Only such documents pay for the detection: every other one is decided before it.
"""

from __future__ import annotations

import codecs
import logging
import re

from charset_normalizer import from_bytes

log = logging.getLogger(__name__)

# Encodings in which any byte sequence decodes, so a decoding failure never reveals them as wrong.
_CATCH_ALL = {"iso8859-1", "iso8859-15", "cp1252"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DECL = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)\"?", re.I)

# WHATWG labels for the encodings it reads wider than Python's codec of the same name, or
# that Python does not know by that name (x-gbk).
_WIDER = {
    **dict.fromkeys(
        (
            "gb2312",
            "gbk",
            "x-gbk",
            "cp936",
            "chinese",
            "csgb2312",
            "csiso58gb231280",
            "gb_2312",
            "gb_2312-80",
            "iso-ir-58",
        ),
        "gb18030",
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"), "big5hkscs"),
}
_UTF16_LABELS = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}
_UTF16_EXTRA = {"ucs-2", "unicode", "unicodefeff", "unicodefffe", "csunicode", "iso-10646-ucs-2"}
# A bad byte is read as U+FFFD (not the whole document in another encoding) only in these,
# and only when most of the document's non-ASCII reads well in it: a single-byte label that
# fails, or a legacy document labelled UTF-8, is left to feedparser's fallbacks.
_REPLACEABLE = {"utf-8", "gb18030", "big5hkscs"}
_GOOD_PER_BAD = 4
# How many different non-ASCII characters, every one valid UTF-8, make a document labelled otherwise UTF-8:
# a UTF-8 feed behind a server's `charset=gbk` (or a template's copied declaration) was read
# as GB18030, which decodes nearly any bytes, so every title became mojibake without an error.
_UTF8_EVIDENCE = 8
_ASCII = bytes(range(128))
_START_DECL = re.compile(r"<\?xml\b[^>]*?\?>")
_DECL_ENCODING = re.compile(r"""(\bencoding\s*=\s*)(["'])[^"']*\2""")
_DECL_VERSION = re.compile(r"""^(<\?xml\s+version\s*=\s*(["'])[^"']*\2)""")
# How much less chaotic (charset_normalizer's mess ratio, 0 = reads like text) the detected
# reading must be than windows-1252's for it to be believed. On short Western text the
# detector picks cp1250 or cp1257 over windows-1252 by up to ~0.07 (`Où est l’élève`,
# `Ação`), where a CJK or Cyrillic document read as windows-1252 is 0.1 worse or fails.
_GUESS_MARGIN = 0.1
# Another candidate this close to the best one, reading the bytes differently, makes the
# guess a coin toss (two CJK characters read as GBK, Big5, EUC-KR and EUC-JP alike).
_GUESS_TIE = 0.01
# ... unless the best reading is this much more coherent (reads more like a language): Russian
# decodes without chaos in KOI8-R and in windows-1251 alike, but reads as Russian in one only.
_GUESS_TIE_COHERENCE = 0.1
# Legacy single-byte encodings of other scripts than Latin, asked about apart (`guess_encoding`),
# and how coherent (0–1: the letters' frequencies match a language's) their reading must be:
# right ones scored 0.42–0.72 on the corpus and on news text, wrong ones 0.0.
_SINGLE_BYTE = ["koi8_r", "koi8_u", "cp1251", "iso8859_5", "cp1256", "cp1255", "cp874", "tis_620", "cp1253"]
_COHERENT = 0.2


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None


def whatwg_codec(label: str) -> str | None:
    """The Python codec a browser's reading of `label` corresponds to: `gbk` → gb18030,
    `big5` → big5hkscs, a UTF-16/32 label as `utf-16` (the caller decides whether the bytes
    can be UTF-16 at all); None for a label nobody knows."""
    key = label.strip().strip("'\"").lower()
    if key in _WIDER:
        return _WIDER[key]
    if key in _UTF16_EXTRA:
        return "utf-16"
    codec = _codec(key)
    if codec in _UTF16_LABELS:
        return "utf-16"
    return _WIDER.get(codec or "", codec)


def bom_encoding(body: bytes) -> str | None:
    """The codec a byte order mark starting `body` names (utf-16/32 read the mark), or None."""
    return next((name for bom, name in _BOMS if body.startswith(bom)), None)


def document_encoding(body: bytes) -> str | None:
    """The encoding the bytes declare for themselves: a BOM, else the XML declaration
    (found after leading whitespace too: a browser sees it there)."""
    if (name := bom_encoding(body)) is not None:
        return name
    m = _DECL.match(body[:512])
    return m.group(1).decode("ascii") if m else None


# A <meta charset> or <meta http-equiv="Content-Type" content="...; charset=..."> in a page's
# head, as a browser's prescan finds it (WHATWG looks in the first 1024 bytes; engines look on
# to the end of <head>, so a few KB). Comments are skipped: a commented-out meta is not one.
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_COMMENT = re.compile(rb"<!--.*?(?:-->|$)", re.S)
_PRESCAN = 8192


def page_encoding(body: bytes, content_type: str | None = None) -> str:
    """The codec a browser reads an HTML page in: a BOM, else the HTTP charset, else the
    page's <meta> charset (or an XHTML page's XML declaration), labels as WHATWG maps them
    (`gbk` → gb18030); else UTF-8 when the bytes are UTF-8, else the detected encoding
    (`guess_encoding`), else windows-1252 (browsers' default for an undeclared page)."""
    if (bom := _bom(body)) is not None:
        return bom[0]
    m = _CHARSET.search(content_type or "")
    head = _COMMENT.sub(b"", body[:_PRESCAN])
    meta = _META_CHARSET.search(head)
    http = _page_codec(m.group(1) if m else None)
    own = _page_codec(meta.group(1).decode("ascii") if meta else None) or _page_codec(document_encoding(body))
    # A catch-all HTTP charset (a server's ISO-8859-1 default) gives way to the page's own
    # declaration when the bytes are that, as `reconcile_charset` does for feeds.
    # With no declaration of its own, a page whose non-ASCII bytes are UTF-8 is UTF-8 under
    # such a label too: links read as Latin-1 (`/中文/feed` as `/ä¸­æ–‡/feed`) answered 404.
    if http in _CATCH_ALL and (own or ("utf-8" if not body.isascii() else None)) not in (None, http):
        try:
            body.decode(own or "utf-8")
            return own or "utf-8"
        except (UnicodeDecodeError, LookupError):
            pass
    if http or own:
        return http or own
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    guessed = guess_encoding(body)
    return guessed[0] if guessed is not None else "cp1252"


def _page_codec(label: str | None) -> str | None:
    """`whatwg_codec`, with a UTF-16 label read as UTF-8: with no BOM, the bytes are not UTF-16."""
    codec = whatwg_codec(label) if label else None
    return "utf-8" if codec == "utf-16" else codec


def reconcile_charset(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """`headers` with the Content-Type charset corrected when it is a catch-all that lies."""
    content_type = headers.get("content-type")
    if not content_type:
        return headers
    m = _CHARSET.search(content_type)
    if not m:
        return headers
    declared = document_encoding(body)
    http_codec, doc_codec = _codec(m.group(1)), _codec(declared) if declared else None
    if http_codec not in _CATCH_ALL or doc_codec is None or doc_codec == http_codec:
        return headers
    try:
        body.decode(doc_codec)
    except UnicodeDecodeError:
        return headers
    fixed = content_type[: m.start()] + f"; charset={declared}" + content_type[m.end() :]
    return {**headers, "content-type": fixed}


def _bom(body: bytes) -> tuple[str, int] | None:
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if body[:4] in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):
        return ("utf-32-le" if body[:4] == codecs.BOM_UTF32_LE else "utf-32-be"), 4
    if body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return ("utf-16-le" if body[:2] == codecs.BOM_UTF16_LE else "utf-16-be"), 2
    return None


def _decode(body: bytes, codec: str) -> str | None:
    """`body` in `codec`; a bad byte as U+FFFD where most of the non-ASCII reads well."""
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        if codec not in _REPLACEABLE:
            return None
    except LookupError:
        return None
    text, good, bad = _replaced(body, codec)
    return text if good >= _GOOD_PER_BAD * bad else None


def _replaced(body: bytes, codec: str) -> tuple[str, int, int]:
    """`body` in `codec` with its bad bytes as U+FFFD; how many non-ASCII characters read
    well, and how many did not."""
    text = body.decode(codec, "replace")
    bad = text.count("\ufffd") - body.decode(codec, "ignore").count("\ufffd")
    ascii_chars = len(body) - len(body.translate(None, _ASCII))
    return text, len(text) - ascii_chars - bad, bad


def _evidently_utf8(body: bytes, decl_label: str | None) -> str | None:
    """The text of bytes labelled another encoding that are UTF-8 all the same, else None: the
    document's own declaration says UTF-8 (a server's default charset contradicts it), or it has enough
    different non-ASCII characters, all of them valid UTF-8, that no legacy text could be (a
    GBK character is valid UTF-8 by chance one time in ~7, so `_UTF8_EVIDENCE` different ones
    one time in millions; the same word repeated is no more evidence than once: `图片` in GBK
    is valid UTF-8, `ͼƬ`; a Latin-1 or windows-125x text is so only when it is itself mojibake).
    Miniflux goes further and lets any valid UTF-8 beat the declared label."""
    if body.isascii():
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if decl_label is not None and _codec(decl_label) == "utf-8":
        return text
    # different characters: a word repeated (a GBK feed's `图片 1`, `图片 2`…) is one chance, not many
    return text if sum(1 for c in set(text) if c > "\x7f") >= _UTF8_EVIDENCE else None


def guess_encoding(body: bytes) -> tuple[str, str] | None:
    """(codec, text) of an undeclared, non-UTF-8 `body` as charset_normalizer detects it, or
    None where windows-1252 (the fallback) should stay: no confident detection, a tie
    between readings, a catch-all or UTF codec, or windows-1252 about as good a fit. The
    codec is widened as WHATWG does (GB2312 → GB18030, Big5 → Big5-HKSCS)."""
    matches = from_bytes(body)
    best = matches.best()  # the least chaotic reading (then the most coherent)
    # charset_normalizer settles for a multi-byte reading that fits tolerably and may not try
    # the single-byte ones: KOI8-R Russian came out as Shift_JIS, Thai (TIS-620) as EUC-JIS,
    # Arabic (windows-1256) as Cyrillic. A single-byte reading less chaotic that also reads
    # as a language (coherence) is the better one.
    alone = from_bytes(body, cp_isolation=_SINGLE_BYTE)
    second = alone.best()
    if second is not None and second.coherence >= _COHERENT and (best is None or second.chaos < best.chaos):
        matches, best = alone, second
    if best is None:
        return None
    codec = whatwg_codec(best.encoding)
    if codec is None or codec in _CATCH_ALL or codec.startswith(("utf-", "ascii")):
        return None
    try:
        text = body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None
    for other in matches:
        tied = other.chaos - best.chaos < _GUESS_TIE and best.coherence - other.coherence < _GUESS_TIE_COHERENCE
        if other is not best and tied and str(other) != str(best):
            return None
    western = from_bytes(body, cp_isolation=["cp1252"]).best()
    if western is not None and western.chaos < best.chaos + _GUESS_MARGIN:
        return None
    return codec, text


def decode_feed(body: bytes, headers: dict[str, str] | None = None) -> tuple[str, str, bool] | None:
    """(encoding, text, differs) as a browser would read `body`: BOM, else UTF-8 where the bytes
    evidently are (`_evidently_utf8`), else the HTTP charset
    (a catch-all one that lies giving way to the declaration, see `reconcile_charset`), else
    the XML declaration (after whitespace too), else UTF-8; labels as WHATWG maps them.
    `differs` is whether feedparser's own reading of the labels would be another.
    None where feedparser's fallbacks should decide (no BOM but UTF-16-shaped bytes, an
    unknown label, bytes that fail their label)."""
    decoded = _decode_feed(body, headers)
    return decoded[:3] if decoded is not None else None


def _labels(body: bytes, headers: dict[str, str] | None) -> tuple[str | None, re.Match[bytes] | None]:
    """The HTTP charset (as `reconcile_charset` leaves it) and the XML declaration's match."""
    m = _CHARSET.search(reconcile_charset(body, headers or {}).get("content-type", ""))
    return (m.group(1) if m else None), _DECL.match(body[:512])


def _declared(body: bytes, headers: dict[str, str] | None) -> str | None:
    """The label the document is read by: the HTTP charset, else its XML declaration's."""
    http_label, decl = _labels(body, headers)
    return http_label or (decl.group(1).decode("ascii") if decl else None)


def _decode_feed(body: bytes, headers: dict[str, str] | None) -> tuple[str, str, bool, bool] | None:
    """`decode_feed`, and whether the encoding was guessed (`guess_encoding`)."""
    http_label, decl = _labels(body, headers)
    decl_label = decl.group(1).decode("ascii") if decl else None
    labels = [lab for lab in (http_label, decl_label) if lab]
    bom = _bom(body)
    if bom:
        codec, skip = bom
        differs = any(whatwg_codec(lab) not in (codec, "utf-16") for lab in labels)
        text = _decode(body[skip:], codec)
        return (codec, text, differs, False) if text is not None else None
    if b"\x00" in body[:4]:
        return None  # UTF-16/32 without a BOM: rare, feedparser sniffs it
    label = http_label or decl_label
    codec = whatwg_codec(label) if label else "utf-8"
    if codec not in (None, "utf-8", "utf-16") and (text := _evidently_utf8(body, decl_label)) is not None:
        return "utf-8", text, True, False
    if codec is None:
        return None
    if codec == "utf-16":
        codec = "utf-8"  # the label was read as ASCII: the bytes are not UTF-16
    differs = bool(label) and codec != _codec(label)  # widened, or UTF-16 on ASCII bytes
    if body[:1].isspace() and decl is not None:
        differs = True  # feedparser sees no declaration after whitespace
    name = label.strip().lower() if label and _codec(label) == codec else codec  # as the feed wrote it
    if codec == "utf-8" and not differs and body.isascii():
        return name, body.decode("ascii"), False, False
    try:
        return name, body.decode(codec), differs, False
    except UnicodeDecodeError:
        pass
    except LookupError:
        return None
    # A bad byte: when another label of the document reads it all, that label is right (a
    # GBK feed served as UTF-8), read as WHATWG maps it: feedparser's fallback to it used
    # Python's narrow gbk/big5 (a GB18030-only name failed) and knew no x-gbk at all.
    for other in labels:
        alt = whatwg_codec(other)
        if alt and alt not in (codec, "utf-16"):
            try:
                return alt, body.decode(alt), True, False
            except (UnicodeDecodeError, LookupError):
                pass
    text = _decode(body, codec)
    if text is not None:
        return name, text, True, False
    # Undeclared, or declared wrongly: the bytes fail every label (a GBK feed under a template's
    # copied `encoding="utf-8"`). feedparser's fallback read that as windows-1252, and every
    # title was mojibake (`ÕÅÒ´ÈÕ±¨`); a confident detection is believed, else the fallback stays.
    # Not where more of it reads as UTF-8 than not: UTF-8 with stray bytes, of which a detector
    # makes a code page (feedparser's bozo_linenoise.xml, `’<>”` and one bad byte, came out cp1125).
    if labels:
        _, good, bad = _replaced(body, "utf-8")
        if good >= bad:
            return None
    guessed = guess_encoding(body)
    return (*guessed, True, True) if guessed is not None else None


def prepare(
    body: bytes, headers: dict[str, str] | None = None, source: str | None = None
) -> tuple[bytes, dict[str, str], str | None]:
    """(body, headers, encoding) for the parsers: unchanged where they would read `body` as
    `decode_feed` does (encoding None), else the decoded text as UTF-8 with its declaration
    and Content-Type charset saying so (encoding: the codec it was read in). A guessed
    encoding is logged once, at info, naming `source`: the feed is read right, but its
    publisher should declare it (a warning on every poll would be noise nobody can act on)."""
    headers = headers or {}
    decoded = _decode_feed(body, headers)
    if decoded is None or not decoded[2]:
        return body, headers, None
    codec, text, _, guessed = decoded
    if guessed and source is not None:
        label = _declared(body, headers)
        said = f"declared {label}, which its bytes are not" if label else "no encoding declared and not UTF-8"
        log.info("source %s: %s; detected %s", source, said, codec)
    text = text.lstrip("\ufeff \t\r\n")
    m = _START_DECL.match(text)
    if m is None:
        text = '<?xml version="1.0" encoding="utf-8"?>\n' + text
    elif _DECL_ENCODING.search(m.group(0)):
        text = _DECL_ENCODING.sub(r"\1\2utf-8\2", m.group(0), count=1) + text[m.end() :]
    else:  # without a Content-Type, feedparser takes a declaration with no encoding for ISO-8859-1
        text = _DECL_VERSION.sub(r'\1 encoding="utf-8"', m.group(0), count=1) + text[m.end() :]
    fixed = dict(headers)
    content_type = headers.get("content-type")
    if content_type:
        c = _CHARSET.search(content_type)
        if c:
            fixed["content-type"] = content_type[: c.start()] + "; charset=utf-8" + content_type[c.end() :]
        elif content_type.split(";")[0].strip().lower().startswith("text/"):
            fixed["content-type"] = content_type + "; charset=utf-8"
    return text.encode("utf-8"), fixed, codec
