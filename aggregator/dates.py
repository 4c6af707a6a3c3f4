"""Date strings from feeds → aware UTC datetimes, honest about missing zones.

feedparser reads a date without a zone as UTC and garbles some common shapes
(`2022/02/08 09:30`, `2022年02月08日`, `... 09:30:00 CST`). Chinese and many other local
feeds write exactly those, meaning their own local time. The two shapes that cover nearly
every feed (ISO 8601-like and RFC 822-like) are read here, with the source's zone where
the string has none; anything else is left to feedparser's many format handlers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

_ZONE = (
    r"(?P<zone>Z|[+-]\d{1,2}(?::?\d{2})?|(?:UTC|GMT|UT)(?:\s*[+-]\d{1,2}(?::?\d{2})?)?"
    r"|(?<=\d)\s\d{2}:\d{2}(?=$)|[A-Za-z]{1,5})"
)
# 2022-02-08, 2022/2/8 09:30, 2022-02-08T09:30:00.123+08:00, 2022年02月08日 09时30分, ...
_ISO = re.compile(
    r"(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:(?:\s*T\s*|\s+)(?P<H>\d{1,2})\s*[:时時]\s*(?P<M>\d{1,2})"
    r"(?:\s*[:分]\s*(?P<S>\d{1,2})(?:[.,]\d+)?\s*秒?)?)?"
    rf"\s*{_ZONE}?",
    re.I,
)
# Tue, 08 Feb 2022 09:30:00 +0800 / 8 Feb 22 9:30 GMT / Tue, 8 Feb 2022
_RFC = re.compile(
    r"(?:[^\W\d_]{2,9}(?:-[^\W\d_]{4,5})?\.?\s*,?\s*)?(?P<d>\d{1,2})\.?[\s-]+(?:de\s+)?(?P<mon>[^\W\d_]{3,10})\.?,?"
    r"(?:\s+de)?[\s-]+(?P<y>\d{2,4})"
    r"(?:\s+(?P<H>\d{1,2}):(?P<M>\d{1,2})(?::(?P<S>\d{1,2})(?:\.\d+)?)?)?"
    rf"\s*{_ZONE}?",
)
_COMMENT = re.compile(r"\s*\([^()]*\)\s*$")  # "+0800 (CST)": the offset is the truth
# Month names in the languages feeds are written in besides English (pt, es, fr, de, it,
# nl): Brazilian and Spanish feeds write `Seg, 24 Set 2018` in <pubDate>, which neither
# this nor feedparser read, and every post took its fetch time as its date.
_MONTH_NAMES = (
    "january janeiro enero janvier januar gennaio januari",
    "february fevereiro febrero février fevrier februar febbraio februari",
    "march março marco marzo mars märz maerz maart mrt",
    "april abril avril aprile",
    "may maio mayo mai maggio mei",
    "june junho junio juin juni giugno",
    "july julho julio juillet juli luglio",
    "august agosto août aout augustus",
    "september setembro septiembre septembre settembre",
    "october outubro octubre octobre oktober ottobre",
    "november novembro noviembre novembre",
    "december dezembro diciembre décembre decembre dezember dicembre",
)


def _month_table() -> dict[str, int]:
    """Every name above, and each of its prefixes of 3 letters or more that names one month
    only (`sept`, `févr`, `dez`; not `jui`, which is juin and juillet)."""
    seen: dict[str, set[int]] = {}
    for month, names in enumerate(_MONTH_NAMES, start=1):
        for name in names.split():
            for end in range(3, len(name) + 1):
                seen.setdefault(name[:end], set()).add(month)
    return {prefix: months.pop() for prefix, months in seen.items() if len(months) == 1}


_MONTHS = _month_table()
# RFC 822 and common North American names; other abbreviations are ambiguous (CST is
# also China, IST is India, Israel and Ireland) and only trusted when the source's own
# zone uses them.
_NAMED = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "AST": -4, "ADT": -3, "AKST": -9, "AKDT": -8, "HST": -10,
    "BST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "WET": 0, "WEST": 1, "MSK": 3,
    "JST": 9, "KST": 9, "HKT": 8, "SGT": 8, "AEST": 10, "AEDT": 11,
}  # fmt: skip


class InvalidDate(ValueError):
    """A date written in a form we read whose values do not exist (`2024-13-45`, 30 February).

    Raised rather than None: feedparser, the fallback for forms we do not read, rolls such
    values over into another real date (`2024-13-45` is 1 January 2025), which is no date.
    """


def parse_date(raw: str, zone: tzinfo) -> datetime | None:
    """Aware UTC, or None when the string is not an ISO- or RFC 822-like date.

    A string without a zone, or with an abbreviation the source's own zone uses (`CST`
    for Asia/Shanghai), is read as the source's local time. Raises InvalidDate for a
    day, month or time that does not exist.
    """
    text = _COMMENT.sub("", " ".join(raw.split()))
    for pattern, fields in ((_ISO, _iso_fields), (_RFC, _rfc_fields)):
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values = fields(m)
        if values is None:
            return None
        y, mo, d, h, mi, sec = values
        try:  # a leap second is its minute's last second; 24:00 ends a day (ISO 8601)
            # (only :60 is a leap second: :61 to :99 are no time, as 25:00 is none)
            naive = datetime(y, mo, d, 0 if h == 24 and mi == sec == 0 else h, mi, 59 if sec == 60 else sec)
        except ValueError as e:
            raise InvalidDate(raw) from e
        if h == 24:
            naive += timedelta(days=1)
        offset = _zone(m.group("zone"), naive, zone)
        if offset is None:
            return None
        try:
            return naive.replace(tzinfo=offset).astimezone(UTC)
        except (OverflowError, ValueError):
            return None
    return None


def _iso_fields(m: re.Match[str]) -> tuple[int, ...] | None:
    return tuple(int(m.group(g) or 0) for g in ("y", "m", "d", "H", "M", "S"))


def _rfc_fields(m: re.Match[str]) -> tuple[int, ...] | None:
    month = _MONTHS.get(m.group("mon").lower())
    if month is None:
        return None
    year = int(m.group("y"))
    if len(m.group("y")) == 2:  # RFC 2822: two-digit years are 19xx from 50 up, else 20xx
        year += 1900 if year >= 50 else 2000
    return (year, month, int(m.group("d")), *(int(m.group(g) or 0) for g in ("H", "M", "S")))


def _zone(token: str | None, naive: datetime, local: tzinfo) -> tzinfo | None:
    if token is None:
        return local
    token = token.strip()
    upper = token.upper()
    if upper in ("Z", "UT", "UTC", "GMT"):
        return UTC
    if upper.startswith(("UTC", "GMT", "UT")):  # GMT+8, UTC-05:00
        return _offset(upper.lstrip("UTCGM").strip())
    if token[0] in "+-":
        return _offset(token)
    if token[0].isdigit():  # "13:02:00 01:00": a "+" lost to URL decoding on the way
        return _offset("+" + token)
    if isinstance(local, ZoneInfo) and upper in _local_names(local, naive):
        return local
    hours = _NAMED.get(upper)
    return None if hours is None else timezone(timedelta(hours=hours))


def _offset(text: str) -> tzinfo | None:
    m = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", text)
    if not m:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    if minutes > 14 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


def _local_names(zone: ZoneInfo, naive: datetime) -> set[str]:
    """The abbreviations the zone uses around that date (standard and daylight time)."""
    names = set()
    for month in (1, 7):
        try:
            name = naive.replace(month=month, day=1, tzinfo=zone).tzname()
        except (ValueError, OverflowError):
            continue
        if name:
            names.add(name.upper())
    return names
