"""Passwords written into source URLs (`https://user:password@host/feed`, or
`https://host/feed?token=…`) are for fetching only.

What anyone can read (feeds, pages, OPML) gets URLs without their user info; what the
operator reads (command output, `status`, logs, which end up in log pipelines and tickets)
keeps the user name, to tell sources apart, and masks the password.

A feed's relative links are resolved against the URL it was fetched from, password and all,
and stored so: post ids are derived from them, and must not change. So the password is
taken out of a post's links and markup when it is published (`public_post`), not before.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterable
from dataclasses import replace
from itertools import product
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from requests.utils import requote_uri

from .models import Post

# scheme://userinfo@ in running text. User info may hold any of RFC 3986's sub-delims
# (!$&'()*+,;=), so only what ends an authority (/?#), whitespace and what quotes a URL in
# text ("<>) end it; it runs to the authority's last "@", as urllib reads it.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s\"<>]*)@")

# Private feeds carry their secret in the query as often (`?token=…`, `&api_key=…`,
# `&private_token=…`, `&sig=…`): a parameter named one of these words, alone or after `_`, `-`
# or `.`, holds a credential. Its value is shown as `***` everywhere but in the request.
# The value ends at the next parameter, the fragment, a space, or a colon that ends the URL
# (`source URL?token=…: HTTP 404`): taken as part of the value, that colon was masked away.
_SECRET_NAME = (
    r"(?:[\w.~-]*[_.-])?(?:token|key|apikey|secret|password|passwd|pwd|pass|sig|signature|auth"
    r"|session|sessionid|sid|credentials?)"
)
# (and a `)` that closes a parenthesis around the URL: `(redirected there from …?token=…)`)
_SECRET_PARAM = re.compile(r"(?i)([?&;]" + _SECRET_NAME + r"=)(?:[^&#\s\"'<>:)]|[:)](?![\s\"'<>]|$))+")
_SECRET_KEY = re.compile(r"(?i)" + _SECRET_NAME)

__all__ = [
    "header_value_problem",
    "looks_masked",
    "masked",
    "public_post",
    "public_url",
    "remember",
    "secret_forms",
    "without_secrets",
]


def _mask(m: re.Match[str]) -> str:
    user, colon, _ = m.group(2).partition(":")
    return f"{m.group(1)}{user}:***@" if colon else f"{m.group(1)}***@"  # a lone user info is a token


# User info the pattern cannot find in running text (a password with a space, a quote, < or >,
# which a URL should percent-encode but requests sends as written): from the configured
# source URLs (`remember`), masked wherever it appears, as written and as JSON escapes it.
_odd: dict[str, str] = {}


def remember(urls: Iterable[str]) -> None:
    """Note the user info of these URLs that `masked` could not otherwise find."""
    for url in urls:
        userinfo = _userinfo(url)
        if userinfo and not _USERINFO.fullmatch(f"http://{userinfo}@"):
            user = userinfo.partition(":")[0]
            shown = f"{user}:***" if ":" in userinfo else "***"
            for form in (userinfo, json.dumps(userinfo)[1:-1]):
                _odd[form + "@"] = shown + "@"


def masked(text: str) -> str:
    """`text` with the password (or token) of every URL in it replaced by `***`."""
    if "=" in text:
        text = _SECRET_PARAM.sub(r"\1***", text)
    if "@" not in text:
        return text
    for secret, shown in _odd.items():
        if secret in text:
            text = text.replace(secret, shown)
    return _USERINFO.sub(_mask, text)


def public_url(url: str | None) -> str | None:
    """`url` without its user info, and with `***` for the value of a secret query parameter,
    for what gets published."""
    if url and "=" in url:
        url = _SECRET_PARAM.sub(r"\1***", url)
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urllib reads (a bad IPv6 literal): drop what looks like user info
        return _USERINFO.sub(r"\1", url, count=1)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def without_secrets(url: str) -> str:
    """`url` without its secret query parameters (user info kept): the base a feed's relative
    links are resolved against. Resolved against the URL fetched, `#fn1` or `href=""` carried
    the feed's `?token=…` into its posts' markup, published in every feed and page; removed,
    not masked, such a link still leads to the feed's page. `url` when it holds no secret."""
    if "=" not in url or not _SECRET_PARAM.search(url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    pieces = re.split(r"([&;])", parts.query)  # parameters, each separator between two kept
    kept: list[str] = []
    for i in range(0, len(pieces), 2):
        name, eq, _ = pieces[i].partition("=")
        if eq and _SECRET_KEY.fullmatch(name):
            continue
        kept += [pieces[i - 1], pieces[i]] if kept else [pieces[i]]
    return urlunsplit(parts._replace(query="".join(kept)))


def _query_secrets(*urls: str | None) -> re.Pattern[str] | None:
    """What the secret query values of `urls` look like in stored text (None: they hold none):
    `name=value`, the value as written, decoded, percent-encoded or requoted, and HTML-escaped
    or not, up to where a URL's value ends."""
    values: dict[str, set[str]] = {}
    for url in urls:
        for m in _SECRET_PARAM.finditer(url or ""):
            name, value = m.group(1)[1:-1], m.group(0)[len(m.group(1)) :]
            forms = {value, unquote(value), quote(unquote(value), safe=""), requote_uri(value)}
            values.setdefault(name.lower(), set()).update(forms | {html.escape(f) for f in forms})
    if not values:
        return None
    alternatives = "|".join(
        re.escape(name) + "=(?:" + "|".join(map(re.escape, sorted(forms, key=len, reverse=True))) + ")"
        for name, forms in values.items()
    )
    return re.compile(r"(?i)(?<=[?&;])(" + alternatives + r")(?![^&#\s\"'<>])")


def _mask_value(m: re.Match[str]) -> str:
    return m.group(1).partition("=")[0] + "=***"


def looks_masked(url: str) -> bool:
    """Whether `url` holds a secret as `masked` and `public_url` show it, `***` (`?token=***`,
    `user:***@`): such a URL was copied from output or an OPML export, and cannot be fetched."""
    if "***" not in url:
        return False
    if any(m.group(0)[len(m.group(1)) :] == "***" for m in _SECRET_PARAM.finditer(url)):
        return True
    userinfo = _userinfo(url)
    return userinfo == "***" or userinfo.partition(":")[2] == "***"


def secret_forms(urls: Iterable[str]) -> dict[str, set[str]]:
    """What the URLs holding a secret look like once exported (`public_url`: the user info
    dropped, `token=***`) or shown (`masked`: `user:***@`) → those URLs. So a URL copied
    from output or an OPML export finds the source it came from."""
    forms: dict[str, set[str]] = {}
    for url in urls:
        for form in {public_url(url) or url, masked(url)} - {url}:
            forms.setdefault(form, set()).add(url)
    return forms


def _userinfo(url: str | None) -> str:
    """The user info of `url` as written ("" when none): what its links were resolved with."""
    if not url or "@" not in url:
        return ""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return ""
    return netloc.rpartition("@")[0]


def _host(url: str | None) -> str:
    """The host[:port] of `url`, without user info ("" when none)."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] if url else ""
    except ValueError:
        return ""


def _forms(userinfo: str) -> set[str]:
    """`://userinfo@` as stored text may hold it: as written, decoded, percent-encoded, or as
    requests rewrote it when following a redirect (its requote decodes what need not be
    encoded and encodes a stray %), each with HTML's escapes of &, < and > applied or not
    and of each quote (raw, named or numeric), as sanitizers write attributes."""
    bases = {userinfo, unquote(userinfo), quote(userinfo, safe="!$&'()*+,;=:~%"), requote_uri(userinfo)}
    out = set()
    for base in bases:
        for amp, dq, sq in product((False, True), ('"', "&quot;", "&#34;"), ("'", "&#x27;", "&#39;")):
            form = html.escape(base, quote=False) if amp else base
            out.add("://" + form.replace('"', dq).replace("'", sq) + "@")
    return out


@functools.lru_cache(maxsize=256)
def _scrubbing(source: str, url: str | None) -> tuple[list[str], set[str], re.Pattern[str]] | None:
    """What `public_post` looks for in a source's posts (None: its URLs hold no user info):
    the forms of its user info, longest first, its host(s), and any user info on them."""
    secrets = {_userinfo(source), _userinfo(url)} - {""}
    if not secrets:
        return None
    forms = sorted(set().union(*map(_forms, secrets)), key=len, reverse=True)
    # and, whatever form it took, any user info on the source's own host(s)
    hosts = {_host(source), _host(url)} - {""}
    on_host = re.compile(r"://[^/?#\s\"<>]*@(" + "|".join(map(re.escape, hosts)) + r")(?=[/?#\s\"'<>]|$)")
    return forms, hosts, on_host


@functools.lru_cache(maxsize=256)
def _query_scrubbing(source: str, url: str | None) -> re.Pattern[str] | None:
    return _query_secrets(source, url)


def public_post(post: Post) -> Post:
    """`post` as it may be published: a source fetched with a password in its URL has it in
    every link resolved against that URL (the post's link, enclosures, authors' pages, the
    links and images of its content, a title made of its link), and in its own URL and site
    link. Only that source's own user info is taken out: a `user:pass@` in an article's text
    (a connection string in a tutorial) is the article's. The value of a secret parameter of
    the source's URL (`?token=…`) is shown as `***` wherever it is: posts stored before their
    links were resolved without it hold it, and a private podcast's episode URLs repeat it.
    Other posts come back as they are."""
    found = _scrubbing(post.source, post.source_url)
    query = _query_scrubbing(post.source, post.source_url)
    if found is None and query is None:  # a secret elsewhere in the query is masked in the source's URL
        source_url = public_url(post.source_url)
        return post if source_url == post.source_url else replace(post, source_url=source_url)
    forms, hosts, on_host = found or ([], set(), None)

    def text(value: str) -> str:
        if query is not None and "=" in value:
            value = query.sub(_mask_value, value)
        for form in forms:
            if form in value:
                value = value.replace(form, "://")
        return on_host.sub(r"://\1", value) if on_host is not None and "@" in value else value

    def url(value: str | None) -> str | None:
        if value and query is not None and "=" in value:
            value = query.sub(_mask_value, value)
        if not value or "@" not in value:
            return value
        if any(f in value for f in forms) or _userinfo(value) and _host(value) in hosts:
            return public_url(value)
        return value

    return replace(
        post,
        title=text(post.title),
        link=url(post.link),
        content=text(post.content),
        summary=text(post.summary),
        comments=url(post.comments),
        authors=tuple(replace(a, url=url(a.url)) for a in post.authors),
        enclosures=tuple(replace(e, url=url(e.url) or e.url) for e in post.enclosures),
        source_url=public_url(post.source_url),
        source_link=public_url(post.source_link),
    )


def header_value_problem(value: str) -> str | None:
    """What keeps `value` from being sent as a header's (None: nothing), said without the
    value, which is often a token: a line break or leading whitespace (requests refused them
    at every poll, its message quoting the value), or a character beyond Latin-1 (http.client's
    error named the character, not the header). `check` and the fetcher share this one rule.
    Trailing whitespace goes out as it always did (servers strip it)."""
    if "\r" in value or "\n" in value:
        return "holds a line break (CR or LF)"
    if value[:1].isspace():
        return "starts with whitespace"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "holds a character beyond Latin-1 (percent-encode it, or give it as the server expects)"
    return None
