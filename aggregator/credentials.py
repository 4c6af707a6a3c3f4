"""Passwords written into source URLs (`https://user:password@host/feed`) are for fetching only.

What anyone can read (feeds, pages, OPML, and every link resolved against the feed's URL)
gets the URL without its user info; what the operator reads (command output, `status`,
logs, which end up in log pipelines and tickets) keeps the user name, to tell sources
apart, and masks the password.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# scheme://userinfo@ in running text. User info may hold any of RFC 3986's sub-delims
# (!$&'()*+,;=), so only what ends an authority (/?#), whitespace and what quotes a URL in
# text ("<>) end it; it runs to the authority's last "@", as urllib reads it.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s\"<>]*)@")

__all__ = ["masked", "public_url"]


def _mask(m: re.Match[str]) -> str:
    user, colon, _ = m.group(2).partition(":")
    return f"{m.group(1)}{user}:***@" if colon else f"{m.group(1)}***@"  # a lone user info is a token


def masked(text: str) -> str:
    """`text` with the password (or token) of every URL in it replaced by `***`."""
    return _USERINFO.sub(_mask, text) if "@" in text else text


def public_url(url: str | None) -> str | None:
    """`url` without its user info, for what gets published."""
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urllib reads (a bad IPv6 literal): drop what looks like user info
        return _USERINFO.sub(r"\1", url, count=1)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
