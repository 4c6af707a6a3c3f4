"""Which character set to tell the parser, when the HTTP header and the bytes disagree.

feedparser follows RFC 3023: the HTTP charset wins, then the XML declaration, then a BOM,
falling back along that list when a candidate fails to decode. A wrong HTTP charset that
still decodes everything (ISO-8859-1, windows-1252: every byte is a character) never fails,
so a GBK or Big5 feed served as `charset=ISO-8859-1`, a common server default, would come
out as mojibake. Only in that case, and only when the bytes decode cleanly in the encoding
the document itself declares (BOM, else XML declaration), is the header's charset replaced
by the document's; every other case is left to feedparser's rules.
"""

from __future__ import annotations

import codecs
import re

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


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def document_encoding(body: bytes) -> str | None:
    """The encoding the bytes declare for themselves: a BOM, else the XML declaration."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    m = _DECL.match(body[:512])
    return m.group(1).decode("ascii") if m else None


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
