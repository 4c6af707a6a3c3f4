"""Defuse hostile XML before any parser sees it: entity bombs, XXE, deep nesting, attribute floods.

feedparser hands the document to expat (strict) and, when that fails, to its sgmllib-based
loose parser, and both keep the entity declarations feedparser calls "safe" (any internal
entity whose value has no `&`). That lets a 400 KB feed expand one 100 KB entity 20,000 times
(quadratic blowup: gigabytes), lets a one-line billion-laughs DTD cost tens of MB before
expat's amplification limit trips, and a start tag with 200,000 attributes makes feedparser's
attribute lookup quadratic (minutes). Deeply nested elements cost memory per level in both
parsers. So, on the UTF-8 bytes feedparser is about to parse:

- every DOCTYPE with an internal subset is rebuilt keeping only plain internal general
  entities (a literal without `&`, `%` or `<`, or one character reference); external and
  parameter entities and entities built from other entities are dropped, so their references
  stay unexpanded text; if the kept ones would still add more than MAX_ENTITY_EXPANSION bytes,
  the feed is refused. External DTDs are never fetched (expat's external entities are off);
  tests/reliability prove it.
- elements nested deeper than MAX_DEPTH, or a start tag with more than MAX_ATTRIBUTES
  attributes, make the feed refused.

Refusal is `HostileXML`, which `parse.py` reports as that source's ParseError.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["HostileXML", "defuse", "has_long_tag", "MAX_DEPTH", "MAX_ATTRIBUTES", "MAX_ENTITY_EXPANSION"]

MAX_ENTITY_EXPANSION = 1 << 20  # bytes that declared entities may add to the document
MAX_DEPTH = 2000  # real feeds nest < 100 deep, XHTML content included
MAX_ATTRIBUTES = 500  # real elements carry < 30

_ROOT = re.compile(rb"<[A-Za-z_]")
_PROLOG_TOKEN = re.compile(
    rb"(?P<skip><!--.*?(?:-->|\Z)|<\?.*?(?:\?>|\Z)|(?:<(?![A-Za-z_!?])|[^<])+)|(?P<decl><!)|(?P<root><[A-Za-z_])",
    re.S,
)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)
# Tokens of a DOCTYPE declaration: quoted literals and comments may hold `[`, `]` and `>`.
_DTD_TOKEN = re.compile(rb"\"[^\"]*\"?|'[^']*'?|<!--(?:.*?-->|.*)|[\[\]>]|<|[^\"'\[\]<>]+", re.S)
_DOCTYPE_HEAD = re.compile(
    rb"<!DOCTYPE\s+([^\s\[>]+)(\s+(?:PUBLIC\s*(?:\"[^\"]*\"|'[^']*')\s*(?:\"[^\"]*\"|'[^']*')"
    rb"|SYSTEM\s*(?:\"[^\"]*\"|'[^']*')))?",
    re.I,
)
_PLAIN_ENTITY = re.compile(rb"<!ENTITY\s+(\w+)\s+(?:\"(&#\w+;|[^\"&%<]*)\"|'(&#\w+;|[^'\"&%<]*)')\s*>")
_ENTITY_REF = re.compile(rb"&(\w+);")
_VOID = frozenset(
    b"area base br col embed hr img input keygen link meta param source track wbr".split()
)  # HTML elements without end tags, which ill-formed feeds leave unclosed
_TAG = re.compile(
    rb"<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)|<(/?)([A-Za-z_][^\s/<>]*)([^<>]*)>",
    re.S,
)
_ATTR = re.compile(rb"[^\s=]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+)")
LONG_TAG_BYTES = 8192  # real feeds have no tag this long
_LONG_TAG = re.compile(rb"<[^<>]{%d}" % LONG_TAG_BYTES)
_WIDE_TAG = re.compile(rb"<[^<>]{%d,}" % (8 * MAX_ATTRIBUTES))  # where `_check_structure` counts attributes


class HostileXML(ValueError):
    """The document is built to exhaust the parser (entity bomb, nesting, attribute flood)."""


def defuse(data: bytes) -> bytes:
    """`data` with dangerous DTD content removed; raise HostileXML for what cannot be defused."""
    data = _defuse_doctypes(data)
    _check_structure(data)
    return data


def _defuse_doctypes(data: bytes) -> bytes:
    """Rewrite every DOCTYPE of the prolog and drop stray declarations (`<!ENTITY` outside one).

    The prolog ends at the first start tag outside comments, processing instructions and
    DOCTYPEs; that is never before where feedparser (first `<` + letter) or expat think it ends.
    """
    out: list[bytes] = []
    done = pos = 0
    while (tok := _PROLOG_TOKEN.match(data, pos)) is not None:
        if tok.lastgroup == "root":
            break
        if tok.lastgroup == "skip":
            pos = tok.end()
            continue
        end, subset = _doctype_end(data, pos)
        if not _DOCTYPE.match(data, pos):
            out += [data[done:pos]]  # a declaration outside any DOCTYPE: not XML, and feedparser would use it
        elif subset is not None:
            out += [data[done:pos], _rebuilt_doctype(data, pos, end, subset)]
        else:  # no internal subset: an external DTD is never fetched, nothing to expand
            out += [data[done:end]]
        done = pos = end
    if not out:
        return data
    return b"".join(out) + data[done:]


def _rebuilt_doctype(data: bytes, start: int, end: int, subset: bytes) -> bytes:
    head = _DOCTYPE_HEAD.match(data, start)
    name = head.group(1) if head else b"feed"
    external = (head.group(2) or b"") if head else b""
    entities = _plain_entities(subset)
    _check_expansion(entities, data[end:])
    decls = b"".join(b"<!ENTITY " + k + b' "' + v + b'">\n' for k, v in entities.items())
    doctype = b"<!DOCTYPE " + name + external + (b" [\n" + decls + b"]>" if decls else b">")
    # feedparser's own DOCTYPE/ENTITY regexes only look at the starts of lines
    lead = b"" if start == 0 or data[start - 1 : start] in (b"\n", b"\r") else b"\n"
    return lead + doctype + b"\n"


def _doctype_end(data: bytes, start: int) -> tuple[int, bytes | None]:
    """(index after the declaration, its internal subset or None) for the DOCTYPE at `start`.

    An unterminated declaration (a hostile or truncated file) ends where the root element
    starts, with everything before that treated as an internal subset to drop.
    """
    subset_start = None
    for tok in _DTD_TOKEN.finditer(data, start + 2):
        text = tok.group()
        if text == b"[" and subset_start is None:
            subset_start = tok.end()
        elif text == b"]" and subset_start is not None:
            subset = data[subset_start : tok.start()]
            close = data.find(b">", tok.end())
            return (close + 1 if close >= 0 else len(data)), subset
        elif text == b">" and subset_start is None:
            return tok.end(), None
    root = _ROOT.search(data, start)
    end = root.start() if root else len(data)
    return end, data[subset_start or start : end]


def _plain_entities(subset: bytes) -> dict[bytes, bytes]:
    """The internal general entities that expand to plain text (no entity inside)."""
    out: dict[bytes, bytes] = {}
    for m in _PLAIN_ENTITY.finditer(subset):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        out.setdefault(m.group(1), value)  # XML: the first declaration wins
    return out


def _check_expansion(entities: dict[bytes, bytes], body: bytes) -> None:
    grows = {k: len(v) for k, v in entities.items() if not v.startswith(b"&#") and len(v) > len(k) + 2}
    if not grows:
        return
    refs = Counter(name for name in _ENTITY_REF.findall(body) if name in grows)
    added = sum(grows[name] * n for name, n in refs.items())
    if added > MAX_ENTITY_EXPANSION:
        raise HostileXML(
            f"refused: its entity declarations would expand the document by {added} bytes "
            f"(limit {MAX_ENTITY_EXPANSION}): an entity-expansion bomb"
        )


def _check_structure(data: bytes) -> None:
    """Refuse nesting deeper than MAX_DEPTH and start tags with more than MAX_ATTRIBUTES attributes.

    Depth is counted as the loose parser would build the tree: an end tag closes the nearest
    open element of its name and everything opened inside it, so the unclosed `<p>`s of
    ill-formed feeds do not add up; end tags with no open element are ignored.
    """
    if data.count(b"<") <= MAX_DEPTH and not _LONG_TAG.search(data):
        return
    stack: list[bytes] = []
    open_count: Counter[bytes] = Counter()
    for m in _TAG.finditer(data):  # not findall: a list of every tag would cost more than the parse
        close, raw_name, attrs = m.groups()
        if not raw_name:
            continue  # CDATA section or comment
        name = raw_name.lower()
        if close:
            if open_count[name]:
                while True:
                    top = stack.pop()
                    open_count[top] -= 1
                    if top == name:
                        break
            continue
        if len(attrs) > 8 * MAX_ATTRIBUTES and attrs.count(b"=") > MAX_ATTRIBUTES:
            n = sum(1 for _ in _ATTR.finditer(attrs))
            if n > MAX_ATTRIBUTES:
                raise HostileXML(f"refused: an element <{_name(raw_name)}> has {n} attributes (limit {MAX_ATTRIBUTES})")
        if attrs.endswith(b"/") or name in _VOID:
            continue
        stack.append(name)
        open_count[name] += 1
        if len(stack) > MAX_DEPTH:
            raise HostileXML(f"refused: elements nested more than {MAX_DEPTH} levels deep")


def has_long_tag(data: bytes) -> bool:
    """A tag over 8 KiB, or one over 4,000 bytes with more than MAX_ATTRIBUTES `=`: real feeds
    have none; an attribute flood has one. The fast parse path declines such documents, so
    that `defuse` (on feedparser's path) judges them: a feed is refused, or not, whichever
    path would read it (a tag of 600 short attributes is under 8 KiB)."""
    for m in _WIDE_TAG.finditer(data):
        tag = m.group()
        if len(tag) > LONG_TAG_BYTES or tag.count(b"=") > MAX_ATTRIBUTES:
            return True
    return False


def _name(raw: bytes) -> str:
    return raw[:40].decode("utf-8", "replace")
