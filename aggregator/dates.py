"""Date strings from feeds → aware UTC datetimes, honest about missing zones.

feedparser reads a date without a zone as UTC and garbles some common shapes
(`2022/02/08 09:30`, `2022年02月08日`, `... 09:30:00 CST`). Chinese and many other local
feeds write exactly those, meaning their own local time. The two shapes that cover nearly
every feed (ISO 8601-like and RFC 822-like) are read here, with the source's zone where
the string has none, and so are the rarer shapes feedparser reads wrongly: Java's
Date.toString and C's asctime (`Mon Nov 02 10:00:00 CST 2026`, which feedparser takes as US
Central whatever the feed, or as UTC without a zone), Chinese dates with a weekday (after
the date; before it, feedparser reads none), 上午/下午, 时/分 or an hour alone (`10点`:
feedparser keeps only the day, and shifts it by its own zone), English AM/PM after an RFC
822 time (feedparser drops it: 10:05 PM was 10:05), ISO 8601 week dates (`2026-W45-1`,
`2026-W45`) and the ISO basic format (`20261102T100000Z`, `20261102`), of which feedparser
keeps only the day, in UTC, and a month alone (`September 2008`, `2008/09`, `2008年9月`), which
feedparser reads not at all or as 2008 in the month it is read in. Anything else is left to
feedparser's many format handlers.
"""

from __future__ import annotations

import re
import time
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from feedparser.datetimes import _date_handlers, _parse_date, _parse_date_iso8601
from feedparser.datetimes.iso8601 import _iso8601_matches

_ZONE = (
    r"(?P<zone>Z|[+-]\d{1,2}(?::?\d{2})?|(?:UTC|GMT|UT)(?:\s*[+-]\d{1,2}(?::?\d{2})?)?"
    r"|(?<=\d)\s\d{2}:\d{2}(?=$)|[A-Za-z]{1,5})"
)
# 2022-02-08, 2022/2/8 09:30, 2022-02-08T09:30:00.123+08:00, 2022年02月08日 09时30分,
# 2022年2月8日 星期二 09:30, 2022年2月8日 下午3:05, 2022年2月8日09:30 (no space after 日), ...
# The weekday word (星期二, 周二, 週二, 礼拜二, also in brackets: （星期二）) is skipped, as RFC
# 822's `Tue,` is.
_WEEKDAY_ZH = r"[(（]?(?:星期|礼拜|禮拜|周|週)[一二三四五六日天][)）]?"
_WEEKDAY_EN = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]{0,6}\.?"  # `Mon 2026-11-02`, `Monday, 2026-11-02`


def _iso_pattern(rare: bool) -> str:
    """The ISO-like shape; `rare` adds what few feeds write, tried only once the common shapes
    failed: a weekday before the date (`星期一 2026年11月2日`, `(周一) 2026-11-02`, `周一，…`,
    `Mon 2026-11-02 10:05`)
    and an hour without minutes (`10点`, `10时`; an hour alone after `:` or a space is not
    taken), half past (`10点半`) and on the hour (`10点整`)."""
    minutes = r"\s*[:时時点點]\s*(?P<M>\d{1,2})(?:\s*[:分]\s*(?P<S>\d{1,2})(?:[.,]\d+)?\s*秒?|\s*分)?"
    if rare:  # `10点半` is half past, `10点整` on the hour
        minutes = rf"(?:{minutes}|\s*[时時点點](?:(?P<half>半)|整)?)"
    return (
        (rf"(?:(?:{_WEEKDAY_ZH}|{_WEEKDAY_EN})\s*[,，]?\s*)?" if rare else "")
        + r"(?P<y>\d{4})\s*[-/.年년]\s*(?P<m>\d{1,2})\s*[-/.月월]\s*(?P<d>\d{1,2})\s*[日일.]?"
        rf"(?:\s*{_WEEKDAY_ZH})?"
        r"(?:(?:\s*T\s*|\s+|(?<=[日일一二三四五六天)）]))"
        r"(?:(?P<ap>上午|早上|早晨|凌晨|中午|下午|傍晚|晚上|晚间|晚間|오전|오후)\s*)?"
        rf"(?P<H>\d{{1,2}}){minutes}"
        r"(?:\s*(?P<ampm>[AP]\.?M\.?)(?![A-Za-z]))?"
        rf"(?:\s*{_WEEKDAY_ZH})?)?"
        rf"\s*{_ZONE}?"
    )


_ISO = re.compile(_iso_pattern(rare=False), re.I)
_ISO_RARE = re.compile(_iso_pattern(rare=True), re.I)
# Tue, 08 Feb 2022 09:30:00 +0800 / 8 Feb 22 9:30 GMT / Tue, 8 Feb 2022


def _rfc_pattern(ampm: bool) -> str:
    """The RFC 822-like shape; `ampm` wants an English AM/PM after the time (`Mon, 02 Nov
    2026 10:05 PM +0800`), which RFC 822 has not: tried only once the common shapes failed.
    (Without it, `PM` was taken for a zone nobody knows, and feedparser read 10:05 PM as 10:05.)"""
    return (
        r"(?:[^\W\d_]{2,9}(?:-[^\W\d_]{4,5})?\.?\s*,?\s*)?(?P<d>\d{1,2})\.?[\s-]+(?:de\s+)?(?P<mon>[^\W\d_]{3,10})\.?,?"
        r"(?:\s+de)?[\s-]+(?P<y>\d{2,4})"
        + (
            r"\s+(?P<H>\d{1,2}):(?P<M>\d{1,2})(?::(?P<S>\d{1,2})(?:\.\d+)?)?\s*(?P<ampm>[AP]\.?M\.?)(?![A-Za-z])"
            if ampm
            else r"(?:\s+(?P<H>\d{1,2}):(?P<M>\d{1,2})(?::(?P<S>\d{1,2})(?:\.\d+)?)?)?"
        )
        + rf"\s*{_ZONE}?"
    )


_RFC = re.compile(_rfc_pattern(ampm=False))
_RFC_AMPM = re.compile(_rfc_pattern(ampm=True), re.I)
# Java's Date.toString and C's asctime: `Mon Nov 02 10:00:00 CST 2026`, `Mon Nov  2 10:00:00
# 2026`, `Mon Nov 02 10:00:00 GMT+08:00 2026`: the zone, when written, between time and year.
_CTIME = re.compile(
    r"(?:[A-Za-z]{3,9},?\s+)?(?P<mon>[A-Za-z]{3,9})\s+(?P<d>\d{1,2})\s+"
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?"
    r"(?:\s+(?P<zone>(?:UTC|GMT|UT)(?:[+-]\d{1,2}(?::?\d{2})?)?|[+-]\d{2}:?\d{2}|[A-Za-z]{1,5}))?"
    r"\s+(?P<y>\d{4})"
)
# git's and some generators' variant, a numeric zone after the year: `Mon Nov 2 10:00:00
# 2026 +0800` (feedparser read the zone as the year 800, and the post was undated).
_CTIME_ZONE_LAST = re.compile(
    r"(?:[A-Za-z]{3,9},?\s+)?(?P<mon>[A-Za-z]{3,9})\s+(?P<d>\d{1,2})\s+"
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?"
    r"\s+(?P<y>\d{4})\s+(?P<zone>[+-]\d{2}:?\d{2})"
)
# ISO 8601 week dates (2026-W45-1, 2026W451, with a time: 2026-W45-1T10:00:00Z; a week alone,
# 2026-W45, is its Monday, as feedparser takes 2026-11 for its first day) and the basic format
# (20261102, 20261102T100000Z, 20261102T1000+0800). Eight digits in a date are a date to
# feedparser too, which rolls impossible ones over (`12345678` was 10 December 2012): here
# they are read as the day they write, or no day at all (InvalidDate).
_ISO_COMPACT = re.compile(
    r"(?P<y>\d{4})(?:-?W(?P<w>\d{2})(?:-?(?P<wd>[1-7]))?|(?P<m>\d{2})(?P<d>\d{2})(?=T|$)|-(?P<o>\d{3})(?=T|$))"
    r"(?:T(?P<H>\d{2}):?(?P<M>\d{2})(?::?(?P<S>\d{2})(?:[.,]\d+)?)?)?"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?",
    re.I,
)
# A month name before the day, as US sites write: `November 2, 2026`, `Nov. 2nd, 2026 10:05
# PM`, `Monday, November 2, 2026 at 10:05 PM EST` (neither this nor feedparser read them: the
# post took its fetch time as its date).
_MONTH_FIRST = re.compile(
    r"(?:[^\W\d_]{2,9}\.?,?\s+)?(?P<mon>[^\W\d_]{3,10})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})"
    r"(?:(?:\s*,\s*|\s+(?:at\s+)?)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?"
    r"(?:\s*(?P<ampm>[AP]\.?M\.?)(?![A-Za-z]))?)?"
    rf"\s*{_ZONE}?",
    re.I,
)
# The day first with dots, as German, Russian and other European sites write: `02.11.2026`,
# `2.11.2026, 10:05 Uhr` (dots are never the US order; `02/11/2026` could be either: not read).
_DOTTED = re.compile(
    r"(?P<d>\d{1,2})\.\s*(?P<m>\d{1,2})\.\s*(?P<y>\d{4})"
    r"(?:,?\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\s*Uhr)?)?"
    rf"\s*{_ZONE}?"
)
# A month alone, as archives, newsletters and library news date their items: `September
# 2008`, `Sept. 2008`, `septiembre de 2008`, and with the year first, W3C-DTF's month precision
# `2008-09`, `2008/09`, `2008.09`, `2008年9月`. Its first day, at midnight in the source's zone.
# Before, feedparser read no named month (every post took its fetch time as its date, and a
# 2008-2011 archive sat on top of its category as new), `2008/09` and `2008年9月` as 2008 in
# whatever month it was when fetched, and `2008-09` at midnight UTC. No zone is taken after
# either (`(?P<zone>(?!))` never matches): a month is not written to the hour.
_MONTH_YEAR = re.compile(r"(?P<mon>[^\W\d_]{3,10})\.?,?\s+(?:de\s+)?(?P<y>\d{4})(?P<zone>(?!))?")
_YEAR_MONTH = re.compile(r"(?P<y>\d{4})\s*(?:[-/.]\s*(?P<m>\d{1,2})|年\s*(?P<m2>\d{1,2})\s*月)(?P<zone>(?!))?")
_COMMENT = re.compile(r"\s*\([^()]*\)\s*$")  # "+0800 (CST)": the offset is the truth
# `北京时间` (Beijing time), before or after the date, bracketed or not (full-width brackets
# are ASCII ones once NFKC-normalized): China's +08:00. Read as a comment, or not at all, it
# left the time in the source's zone (UTC unless configured: eight hours late).
_BEIJING_TIME = re.compile(r"^[(\[【]?北京[时時][间間][)\]】]?\s*|\s*[(\[【]?北京[时時][间間][)\]】]?$")
_OFFSET_AT_END = re.compile(r"(?:[+-]\d{2}:?\d{2}|Z|GMT|UTC)$")
# Go's time.Time.String(), which a Go template prints for a date it is given as is:
# `2024-01-02 10:00:00 +0800 CST`, `… -0500 EST`, `… +0000 UTC`, `… +0800 +08` (a zone with no
# abbreviation), ` m=+0.001` after it for a time read off the clock. The offset is the truth;
# the name after it is dropped. (feedparser read only the day, at midnight UTC: a post of
# 10:00 in Shanghai was dated 08:00 there, one of 10:00 in New York 19:00 the day before.)
_NAME_AFTER_OFFSET = re.compile(
    r"(?<=\d)(\s+[+-]\d{4})\s+(?:[A-Za-z]{2,5}|[+-]\d{2}(?:\d{2})?)(?:\s+m=[+-]\d+(?:\.\d+)?)?$"
)
# A year before year 1, as ISO 8601's signed years write it: `-0001-11-30T00:00:00+00:00` is
# what PHP's DateTime makes of MySQL's zero date, `0000-00-00 00:00:00` (its RFC 822 form,
# `Wed, 30 Nov -0001 …`, reads as year 1: no date either). feedparser read it as 1 January
# 2000, and the post was published as one of that day.
_SIGNED_YEAR = re.compile(r"-\d{4,}-")
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


def local_time(when: datetime, zone: tzinfo) -> str:
    """A time as people read it in `status`, `fetch`'s lines and the log: in `zone`, with
    the offset, so it is never taken for another zone's."""
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %z")


def parse_date(raw: str, zone: tzinfo) -> datetime | None:
    """Aware UTC, or None when the string is none of the shapes above.

    A string without a zone, or with an abbreviation the source's own zone uses (`CST`
    for Asia/Shanghai), is read as the source's local time. Any other abbreviation is
    RFC 822's or North America's: `Mon Nov 02 10:00:00 CST 2026` is 10:00 in Shanghai for
    a source in Asia/Shanghai (or another zone that calls itself CST, as Asia/Taipei does,
    or is 8 hours ahead of UTC, as Asia/Hong_Kong is: `_china_like`) and US Central time
    for any other source, as `... 10:00:00 CST` always was here (America/Havana's own CST
    is Cuba's, −05:00).
    A weekday that contradicts the date (`周二 2026-11-02`, a Monday) is ignored, as RFC
    822 readers ignore `Tue, 02 Nov 2026`: the date is what is written with care, the
    weekday often a template's. Raises InvalidDate for a day, month, week or time that
    does not exist, and for a year before 1 (`-0001-11-30`: PHP's MySQL zero date).
    """
    # Full-width forms, as Chinese and Japanese input methods type them (`2024－01－02 10：00`,
    # `２０２４年１月２日`), are their ASCII selves: feedparser read `10：00` as midnight UTC and
    # `2024－01－02` as 1 November 2024.
    written_in_ascii = raw.isascii()
    text = raw if written_in_ascii else unicodedata.normalize("NFKC", raw)
    text = " ".join(text.split())
    if not written_in_ascii:  # Beijing time, a Korean date: most dates pay no search for them
        if "北京" in text:
            text = _beijing_time(text)
        elif _HANGUL_DATE.search(text):
            zone = _KOREA
    text = _NAME_AFTER_OFFSET.sub(r"\1", _COMMENT.sub("", text))
    if not text:
        return None
    if _SIGNED_YEAR.match(text):
        raise InvalidDate(raw)
    # The two common shapes first; the rare ones only after them, and only when the first
    # character could start them (a letter: Java/asctime, a weekday; a digit: ISO week or
    # basic, an hour alone, AM/PM after RFC 822's time; a bracket: a bracketed weekday).
    first = text[0]
    shapes = _SHAPES_ALPHA if first.isalpha() else _SHAPES_DIGIT if first.isdigit() else _SHAPES
    for pattern, fields in shapes:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values = fields(m)
        if values is None:
            continue  # a month name nobody knows: a rarer shape may still read it
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
            continue  # a zone nobody knows, or `PM` read as one: a rarer shape may still read it
        try:
            return naive.replace(tzinfo=offset).astimezone(UTC)
        except (OverflowError, ValueError):
            return None
    return None


def _iso_fields(m: re.Match[str]) -> tuple[int, ...] | None:
    y, mo, d, h, mi, sec = (int(m.group(g) or 0) for g in ("y", "m", "d", "H", "M", "S"))
    if m.re is _ISO_RARE and m.group("half"):
        mi = 30
    ap, ampm = m.group("ap"), m.group("ampm")
    if ampm is not None:
        h = _twelve_hour(h, pm=ampm[0] in "Pp", raw=m.string)
    elif ap == "中午":  # noon: 11 and 12 as written, 1 and 2 in the afternoon
        h = h + 12 if h < 6 else h
    elif ap is not None:
        if h == 12 and ap in _EVENING:
            raise InvalidDate(m.string)  # 晚上12点: midnight, but of which day?
        h = _twelve_hour(h, pm=ap in _PM_WORDS, raw=m.string)
    return y, mo, d, h, mi, sec


_EVENING = {"晚上", "晚间", "晚間"}
_PM_WORDS = {"下午", "傍晚", "오후", *_EVENING}  # afternoon, dusk, evening; 上午, 早上, 早晨, 凌晨, 오전: morning


def _twelve_hour(h: int, pm: bool, raw: str) -> int:
    """上午 (AM) 12:05 is 00:05 and 下午 (PM) 12:05 is 12:05; 下午 3:05 is 15:05. An hour
    past 12 after 下午 is taken as written (`下午15:05`, a 24-hour clock with a redundant
    marker); after 上午 it is no time. `PM`/`AM` after the time alike."""
    if pm:
        return h + 12 if h < 12 else h
    if h > 12:
        raise InvalidDate(raw)
    return 0 if h == 12 else h


def _compact_fields(m: re.Match[str]) -> tuple[int, ...] | None:
    """ISO week date (week 1 holds the year's first Thursday), ordinal date (`2024-002`, which
    feedparser read as 1 February) or basic format."""
    y = int(m.group("y"))
    time = tuple(int(m.group(g) or 0) for g in ("H", "M", "S"))
    if m.group("o") is not None:  # an ordinal date: day 1 to 365 (366) of the year
        day_of_year = int(m.group("o"))
        if not 1 <= day_of_year <= date(y, 12, 31).timetuple().tm_yday:
            raise InvalidDate(m.string)
        day = date(y, 1, 1) + timedelta(days=day_of_year - 1)
        return (day.year, day.month, day.day, *time)
    if m.group("w") is None:
        return (y, int(m.group("m")), int(m.group("d")), *time)
    try:
        day = date.fromisocalendar(y, int(m.group("w")), int(m.group("wd") or 1))
    except ValueError as e:  # week 00, or week 53 of a year of 52
        raise InvalidDate(m.string) from e
    return (day.year, day.month, day.day, *time)


def _rfc_fields(m: re.Match[str]) -> tuple[int, ...] | None:
    month = _MONTHS.get(m.group("mon").lower())
    if month is None:
        return None
    year = int(m.group("y"))
    if len(m.group("y")) == 2:  # RFC 2822: two-digit years are 19xx from 50 up, else 20xx
        year += 1900 if year >= 50 else 2000
    return (year, month, int(m.group("d")), *(int(m.group(g) or 0) for g in ("H", "M", "S")))


def _rfc_ampm_fields(m: re.Match[str]) -> tuple[int, ...] | None:
    """A named month's date (`_rfc_fields`), its hour on a 12-hour clock when AM/PM follows."""
    values = _rfc_fields(m)
    if values is None or m.group("ampm") is None:
        return values
    y, mo, d, h, mi, sec = values
    return y, mo, d, _twelve_hour(h, pm=m.group("ampm")[0] in "Pp", raw=m.string), mi, sec


def _dotted_fields(m: re.Match[str]) -> tuple[int, ...]:
    return tuple(int(m.group(g) or 0) for g in ("y", "m", "d", "H", "M", "S"))


def _month_year_fields(m: re.Match[str]) -> tuple[int, ...] | None:
    """A named month's first day (None for a word that names no month: `Summer 2008`)."""
    month = _MONTHS.get(m.group("mon").lower())
    return None if month is None else (int(m.group("y")), month, 1, 0, 0, 0)


def _year_month_fields(m: re.Match[str]) -> tuple[int, ...]:
    """A numbered month's first day; month 0 or 13 is none (InvalidDate, not feedparser's
    guess)."""
    return int(m.group("y")), int(m.group("m") or m.group("m2")), 1, 0, 0, 0


# The common shapes first, then the rare ones, each only where the first character could
# start it: a string feedparser must read anyway costs a few failed matches at most.
_RARE = ((_ISO_RARE, _iso_fields), (_RFC_AMPM, _rfc_ampm_fields))
_SHAPES = ((_ISO, _iso_fields), (_RFC, _rfc_fields), (_ISO_RARE, _iso_fields))  # `(周一) 2026-…`
_SHAPES_ALPHA = (
    (_ISO, _iso_fields),
    (_RFC, _rfc_fields),
    (_CTIME, _rfc_fields),
    (_CTIME_ZONE_LAST, _rfc_fields),
    *_RARE,
    (_MONTH_FIRST, _rfc_ampm_fields),
    (_MONTH_YEAR, _month_year_fields),
)
_SHAPES_DIGIT = (
    (_ISO, _iso_fields),
    (_RFC, _rfc_fields),
    (_ISO_COMPACT, _compact_fields),
    *_RARE,
    (_DOTTED, _dotted_fields),
    (_YEAR_MONTH, _year_month_fields),
)


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
    if upper == "CST" and _china_like(local, naive):
        return _CHINA
    hours = _NAMED.get(upper)
    return None if hours is None else timezone(timedelta(hours=hours))


_CHINA = timezone(timedelta(hours=8))
# A date written in Korean (`2025년 11월 3일 오후 3:05`, `2025. 11. 3. 오전 10:05`) names no zone
# and is Korea's time, as feedparser's reader of Korean dates takes it (Korea keeps no summer time).
_KOREA = timezone(timedelta(hours=9))
_HANGUL_DATE = re.compile("[년월일]|오[전후]")


def _china_like(local: tzinfo, naive: datetime) -> bool:
    """Whether `CST` in this source is China Standard Time though its zone calls itself
    otherwise: a source 8 hours ahead of UTC (Hong Kong, Singapore, Kuala Lumpur, Manila, a
    fixed UTC+8) is where China's Java servers and Chinese-language sites are, and their
    CST is China's, the source's own offset. Not in Australia, where CST was Australian
    Central Standard Time (+09:30) and neither reading is sure: it stays RFC 822's.

    Everywhere else (Europe/Berlin, UTC, America/*) CST stays RFC 822's −06:00. RSS's
    pubDate is RFC 822, whose grammar defines CST so, and feedparser and Python's email
    reader read it so; a German source's CST is as likely a US server's as a Chinese
    one's, and a guess no better than the one made so far must not date a feed's new
    posts 14 hours away from its older ones, whose stored dates stay as they were read.
    """
    if isinstance(local, ZoneInfo) and local.key.startswith("Australia/"):
        return False
    try:
        return naive.replace(tzinfo=local).utcoffset() == timedelta(hours=8)
    except (OverflowError, ValueError):
        return False


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


def _beijing_time(text: str) -> str:
    """`text` with its `北京时间` as the +0800 it means (unless an offset is written too)."""
    bare = _BEIJING_TIME.sub("", text)
    if bare == text or not bare:
        return text
    return bare if _OFFSET_AT_END.search(bare) else f"{bare} +0800"


def feedparser_date(raw: str) -> time.struct_time | None:
    """feedparser's reading (UTC) of a date string none of the shapes here read, but never
    its ISO 8601 handler's of a year followed by what it cannot read (`2024年1月2日 发布`,
    `2024年1月2日 10:00 北京时间`, `2024-Jan-02`, Korean `2004년 05월 28일`): it takes the year
    and fills in the month it is read in, so the post was dated the 1st of the month it was
    fetched in (1 November 2024 for a post of 2 January fetched in November). Its other
    handlers still have their turn (Korean dates are read by feedparser's own for them)."""
    text = raw.strip()
    if not _bare_year(text):
        return _parse_date(text)
    for handler in _date_handlers:
        if handler is _parse_date_iso8601:
            continue
        try:
            found = handler(text)
        except (KeyError, OverflowError, ValueError, AttributeError):
            continue
        if found and len(found) == 9:
            return found
    return None


def _bare_year(text: str) -> bool:
    """Whether feedparser's ISO 8601 handler reads a year alone at the start of `text` and
    leaves the rest: the first of its patterns that matches, as it tries them."""
    for match in _iso8601_matches:
        m = match(text)
        if m:
            found = m.groupdict()
            bare = not (found.get("month") or found.get("ordinal") or found.get("day"))
            return bool(found.get("year")) and bare and m.end() < len(text)
    return False
