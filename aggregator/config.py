"""Read `feeds.yaml` into typed, validated settings.

Every error names the key path and the line in the file, because users edit this file by
hand and a bare "validation error" would leave them searching.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import idna
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .credentials import header_value_problem, remember
from .hosts import wire_name
from .models import FILTER_FIELDS, CategoryFilter, FilterRule, Retention, RuleSet, Source

DEFAULT_CONFIG = "feeds.yaml"
ENV_CONFIG = "AGGREGATOR_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MIN_INTERVAL, MAX_INTERVAL, START_INTERVAL = 300.0, 86400.0, 1800.0


class ConfigError(Exception):
    """The config file cannot be used; `errors` holds one line per problem."""

    def __init__(self, path: Path | str, errors: list[str]) -> None:
        self.path = str(path)
        # one line each, whatever a value quoted in it holds (`database: "\x1e"`: a character
        # that ends a line for Python, a terminal's control): written as an escape
        self.errors = [_LINE_BREAKING.sub(_escape, e) for e in errors]
        super().__init__(f"{path}: " + "; ".join(errors))

    def __str__(self) -> str:
        return "\n".join(f"{self.path}:{e}" if e[:1].isdigit() else f"{self.path}: {e}" for e in self.errors)


_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


MAX_DURATION = 36500 * 86400.0  # a century: past ~30 million days, a date plus it overflows


def parse_duration(value: Any) -> float:
    """Seconds from `90s`, `15m`, `2h`, `1d`, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value) if abs(value) <= sys.float_info.max else math.inf  # an int past it: OverflowError
    else:
        m = _DURATION.match(str(value))
        seconds = float(m.group(1)) * _UNITS[m.group(2)] if m else math.nan
    # YAML's .nan / .inf, or more digits than a float holds (`999…9s`): a poll never due, or a
    # wait without end
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 2h, 1d)")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION:  # `1e300`: scheduling a poll that far ahead would overflow the date
        raise ValueError(f"a duration must be at most {format_duration(MAX_DURATION)}")
    return seconds


MAX_DAYS = MAX_DURATION / 86400


def parse_days(value: Any) -> float:
    """`keep_days`: a number of days (`30`, `1.5`), or a duration of whole days (`30d`, `2w`,
    `48h`), as every other duration key is written: `7d` was refused as no number."""
    if isinstance(value, bool):  # YAML's `yes` was read as 1 day
        raise ValueError(f"should be a number of days (30) or a duration in days (30d, 2w), not {str(value).lower()}")
    if isinstance(value, (int, float)):
        days = float(value) if abs(value) <= sys.float_info.max else math.inf
    else:
        m = _DURATION.match(str(value))
        if m is None:
            try:  # `1e3`, which YAML reads as text and earlier versions took as a number
                m, days = None, float(str(value).strip())
            except ValueError:
                raise ValueError(f"not a number of days: {value!r} (write e.g. 30, 30d or 2w)") from None
        else:
            days = float(m.group(1)) * _UNITS[m.group(2)] / (86400 if m.group(2) else 1)
        if m is not None and m.group(2) and math.isfinite(days) and not days.is_integer():
            raise ValueError(
                f"keep_days counts whole days: {str(value).strip()} is {days:g} days "
                f"(write {math.ceil(days)}d, or the number {days:g})"
            )
    if not math.isfinite(days):
        raise ValueError(f"not a number of days: {value!r} (write e.g. 30, 30d or 2w)")
    if days <= 0:
        raise ValueError(f"should be above 0 days, not {value}: leave keep_days out to keep posts however old")
    if days > MAX_DAYS:
        raise ValueError(f"should be at most {MAX_DAYS:g} days (leave keep_days out to keep posts however old)")
    return days


def format_duration(seconds: float) -> str:
    """The shortest exact spelling in the config's units: 300 → `5m`, 5400 → `90m`, 86400 → `1d`."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def expand_env(value: str) -> str:
    """`${NAME}` → the environment variable's value, so secrets stay out of feeds.yaml."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(sub, value)


def slugify(name: str) -> str:
    """Pinyin without tones or separators for CJK, a lowercase ASCII slug otherwise.

    `张掖日报` → `zhangyeribao` (the shape of the site this project replaces);
    `Tech News` → `tech-news`; `AI新闻` → `aixinwen`.
    """
    # lazy_pinyin turns each CJK character into a toneless syllable and passes other runs
    # through whole, so syllables join without separators while ASCII words keep theirs.
    if name.isascii():  # no CJK: pypinyin (~0.15 s to import) is not needed
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    from pypinyin import lazy_pinyin

    chunks = lazy_pinyin(name, errors=lambda run: [run])
    text = "".join(unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() for c in chunks)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")  # what `slug:` may be: a path segment as it is
# A slug is a file name's stem: `.<slug>.atom.<pid>.<serial>.tmp` while written, 29 bytes
# more at most (a 7-digit pid, a 10-digit serial), of the 255 file systems allow. A longer
# one was published or not depending on the pid and how long the daemon had run.
SLUG_MAX = 226


def category_slug(name: str) -> str:
    """The slug of a category that sets no `slug:`: `slugify(name)`, or, for a name with no
    Latin or CJK letters (e.g. Cyrillic), a stable one made from a hash of the name; one
    longer than SLUG_MAX is cut and ends in that hash (a long name in pinyin was a file name
    the file system refused, at every publish)."""
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    slug = slugify(name) or "c-" + digest
    return slug if len(slug) <= SLUG_MAX else slug[: SLUG_MAX - 9].rstrip("-_") + "-" + digest


# IDNs pass (requests encodes them), but not a space or control character of any script
_NOT_HOST = re.compile(r"[^A-Za-z0-9._\-\x80-\U0010ffff]|[\s\x80-\x9f\u200b-\u200f\u2028-\u202f\ufeff]|^\.|\.\.")
_PORT = re.compile(r"[0-9]{1,5}")
# A name between dots that begins with '-' is no host name (RFC 1123), but a resolver (a hosts
# file, a company's DNS) may give one: a source at `-feeds.example.org` is fetched, and its feed
# URL left out of every published feed. A warning (`_host_warnings`), not an error: refused, a
# config that polled was refused after an upgrade and the daemon no longer started.
_HYPHEN_FIRST = re.compile(r"(?:^|\.)-")
# control characters, no-break and zero-width spaces, soft hyphens, bidi marks, BOMs: unseen in
# an editor, sent percent-encoded, and the server answers 404 for a path nobody can see is wrong
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\xa0\xad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def _joins(text: str, at: int) -> bool:
    """Whether the zero-width (non-)joiner at `at` is spelling, not a stray: Persian writes
    ZWNJ inside words (`رسانه‌ها`, in many a WordPress tag's feed URL), Indic scripts and
    emoji sequences ZWJ; between two such letters, marks or symbols it is typed on purpose."""
    if text[at] not in "\u200c\u200d" or at == 0 or at + 1 == len(text):
        return False
    return all(c > "\x7f" and unicodedata.category(c)[0] in "LMS" for c in (text[at - 1], text[at + 1]))


def _host_port(netloc: str) -> tuple[str, str]:
    """(host, port as written) of a URL's netloc: `[::1]:8080` → ('::1', '8080'). By hand:
    urllib's `hostname` and `port` split the netloc again each, and a config of 10,000
    sources checks every URL at each start."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        return host, after[1:] if after.startswith(":") else after
    host, _, port = hostport.partition(":")
    return host, port


def from_feed_scheme(url: str) -> str:
    """`feed://host/x` is `http://host/x`, and `feed:https://host/x` is `https://host/x`:
    browsers and sites hand out feed links so, to open them in a reader, and a reader is
    expected to take them (a `feed:` URL was refused as not http(s))."""
    if url[:5].lower() != "feed:":
        return url
    rest = url[5:]
    if rest.startswith("//"):
        return "http:" + rest
    return rest if rest[:7].lower() == "http://" or rest[:8].lower() == "https://" else url


# ASCII characters a URL may not hold as they are (RFC 3986); letters of other scripts stay, as IRIs
_UNSAFE_IN_URL = re.compile(r'[ "<>\\^`{|}]')


def check_url(value: str) -> str:
    """An absolute http(s) URL whose host and port could be asked for: a typo there was
    otherwise `ok` to `check` and failed at every poll instead."""
    try:
        p = urlsplit(value)
    except ValueError as e:  # `Invalid IPv6 URL`: a bracket out of place
        raise ValueError(f"not a valid URL ({e})") from None
    if p.scheme not in ("http", "https") or not p.netloc:
        raise ValueError(f"not an absolute http(s) URL: {value!r}")
    host, port = _host_port(p.netloc)
    if not host:
        raise ValueError(f"no host name in {value!r}")
    literal = p.netloc.rpartition("@")[2].startswith("[")  # an [IPv6] literal has its own characters
    if not literal and _NOT_HOST.search(host):
        raise ValueError(f"not a host name: {host!r} (letters, digits, '-' and '.' only)")
    if hidden := next((m for m in _INVISIBLE.finditer(value) if not _joins(value, m.start())), None):
        raise ValueError(
            f"holds an invisible character, U+{ord(hidden.group()):04X}, at character {hidden.start() + 1} "
            "(copied with the URL from a page or document): type that part again"
        )
    if port and not (_PORT.fullmatch(port) and 0 < int(port) < 65536):
        if "@" in value.partition("://")[2][len(p.netloc) :]:  # `user:pa/ss@host`: the netloc ended at the `/`
            raise ValueError("a / ? # or @ in a user name or password must be percent-encoded (%2F %3F %23 %40)")
        raise ValueError(f"the port of {host} is not a number from 1 to 65535")
    return value


def fetchable_url(value: str) -> str:
    """`check_url`, and an internationalised host the requests can be sent to: each label
    with letters beyond ASCII encoded by IDNA 2008, strictly, as urllib3 (under requests) does;
    its ASCII labels are sent as written (`my_feed.bücher.de` is fetched: `_` is no IDNA
    letter, but that label is not encoded). `http://☃.net/` was `ok` to `check` and failed
    at every poll with `request failed: Failed to parse: …`; its punycode form, which browsers
    reach, is fetched. So did `bücher。de` (an ideographic full stop, as a CJK input method types
    it) and `ＥＸＡＭＰＬＥ.com` (full-width): urllib3 maps neither."""
    value = check_url(value)
    host = urlsplit(value).hostname or ""
    if ":" in host:  # an [IPv6] literal
        return value
    if len(host) > 63 and any(len(label) > 63 for label in host.split(".") if label.isascii()):
        # `Failed to parse: …, label empty or too long` at every poll (DNS allows 63 bytes)
        raise ValueError(f"the host {host!r} has a part longer than 63 characters, which no domain name has")
    try:
        wire_name(host)
    except idna.IDNAError as e:
        try:
            hint = f": write the host as {host.encode('idna').decode('ascii')!r} (punycode), as browsers send it"
        except UnicodeError:
            hint = ""
        raise ValueError(f"the host {host!r} cannot be sent in a request (IDNA 2008: {e}){hint}") from None
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone: {value!r}{_zone_hint(value)}") from None
    return value


def _zone_hint(value: str) -> str:
    """`Asia/shanghai`, `asia/Shanghai`: names are case-sensitive on Linux (they are files);
    an offset such as `+08:00` is not a zone and a zone name is meant."""
    from zoneinfo import available_timezones  # reads the whole database: only on an error

    folded = value.strip().casefold()
    same = sorted(z for z in available_timezones() if z.casefold() == folded)
    if same:
        return f" (did you mean {same[0]!r}?)"
    if re.fullmatch(r"(UTC|GMT)?\s*[+-]\d{1,2}(:?\d{2})?", value.strip(), re.IGNORECASE):
        return (
            " (an offset is not a zone: give a name such as 'Asia/Shanghai', which knows its offset through the year)"
        )
    return ""


def _tls_setting(value: Any) -> bool | str | None:
    """`tls_verify`: a boolean, or the path of a CA bundle. The text `"true"` or `"false"`
    (quoted, so not YAML's boolean) is that boolean, never a file of that name."""
    if value is None or isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"should be true, false or the path of a CA bundle file or folder, not {type(value).__name__} {value!r}"
        )
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if not text:
        raise ValueError("is empty: write true, false or the path of a CA bundle file or folder")
    if "\0" in text:
        raise ValueError("a path cannot hold the character U+0000")
    return text


def tls_path(path: Path, value: str) -> Path:
    """A `tls_verify` CA bundle path: relative to the config file's own folder."""
    return (path.parent / Path(value).expanduser()).resolve()


def _user_agent(value: str | None) -> str | None:
    """`user_agent` as a User-Agent header can carry it: `user_agent: |` (a line break at its
    end) or one in Chinese passed `check`, then every poll of every source failed."""
    if value is not None and (problem := header_value_problem(value)):
        raise ValueError(f"the User-Agent header {problem}, which a header cannot carry: {value!r}")
    return value


def _from_env(written: str) -> str:
    """` (after ${TOK})`: where the value came from, when an environment variable made it."""
    names = _ENV.findall(written)
    return f" (with {', '.join('${' + n + '}' for n in names)} filled in)" if names else ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthConfig(_Strict):
    """HTTP basic auth; either value may be `${ENV_VAR}`."""

    username: str
    password: str

    @field_validator("username", "password")
    @classmethod
    def _env(cls, v: str) -> str:
        return expand_env(v)


class FilterRuleConfig(_Strict):
    """One include/exclude rule: regular expressions (Python syntax, searched anywhere in
    the field) on a post's title, content text, author, tag or link; all given must match."""

    title: str | None = None
    content: str | None = None
    author: str | None = None
    tag: str | None = None
    link: str | None = None

    @field_validator(*FILTER_FIELDS)
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"invalid regular expression {v!r}: {e}") from None
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> FilterRuleConfig:
        if not self.patterns():
            raise ValueError(f"a rule needs at least one of: {', '.join(FILTER_FIELDS)}")
        return self

    def patterns(self) -> tuple[tuple[str, str], ...]:
        return tuple((f, getattr(self, f)) for f in FILTER_FIELDS if getattr(self, f) is not None)


def _rules(include: list[FilterRuleConfig] | None, exclude: list[FilterRuleConfig] | None) -> RuleSet:
    return RuleSet(
        include=tuple(FilterRule(r.patterns()) for r in include or ()),
        exclude=tuple(FilterRule(r.patterns()) for r in exclude or ()),
    )


class SourceSettings(_Strict):
    """Settings a source may set, and `defaults:` may set for all."""

    interval: float | Literal["auto"] | None = None
    timezone: str | None = None
    timeout: float | None = None
    user_agent: str | None = None
    headers: dict[str, str] | None = None
    min_interval: float | None = None
    max_interval: float | None = None
    auth: AuthConfig | None = None
    enabled: bool | None = None
    include: list[FilterRuleConfig] | None = None  # publish only posts matching one of these
    exclude: list[FilterRuleConfig] | None = None  # never publish posts matching one of these
    keep_days: float | None = None  # prune posts older than this many days (default: keep all)
    keep_per_source: int | None = Field(None, ge=1)  # prune all but this source's newest N
    # true (default), false (no certificate check), or a CA bundle file/folder relative to feeds.yaml
    tls_verify: bool | str | None = None

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        return None if v is None else parse_duration(v)

    @field_validator("keep_days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        return None if v is None else parse_days(v)

    @field_validator("tls_verify", mode="before")
    @classmethod
    def _tls_verify(cls, v: Any) -> Any:
        return _tls_setting(v)

    @field_validator("timeout", "min_interval", "max_interval", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return None
        out = {}
        for name, value in v.items():
            try:
                out[name] = expand_env(value)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
            if problem := header_value_problem(out[name]):
                # said without the value: it is often a token, here or in the daemon's log
                raise ValueError(f"{name}: the value{_from_env(value)} {problem}, which a header cannot carry")
        return out

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return None if v is None else _check_zone(v)

    @field_validator("user_agent")
    @classmethod
    def _agent(cls, v: str | None) -> str | None:
        return _user_agent(v)


class SourceConfig(SourceSettings):
    url: str
    name: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        """A blank name (`name: ''`, a template's placeholder) is no name: the feed's own
        title names the source, as when the key is left out, not a blank."""
        return v.strip() or None if v is not None else None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(from_feed_scheme(v.strip()))  # and `_host_warnings`


def _cover_url(v: str | None) -> str | None:
    """A feed cover's URL (`image:` of a category or the site): absolute http(s), and with
    no credentials, since the feeds publish it."""
    if v is None:
        return None
    url = check_url(v.strip())
    if "@" in urlsplit(url).netloc:  # published in the feeds
        raise ValueError(f"the image's URL cannot hold a user name or password: {urlsplit(url).hostname!r}")
    return url


class CategoryConfig(_Strict):
    name: str
    slug: str | None = None
    tags: list[str] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)
    duplicates: Literal["keep", "first"] = "first"  # first: publish only the first-seen copy of an article
    include: list[FilterRuleConfig] = Field(default_factory=list)
    exclude: list[FilterRuleConfig] = Field(default_factory=list)
    # the cover podcast apps show for the category's RSS (its channel `itunes:image`): else its
    # sources' own, when they all give the same one
    image: str | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        return _cover_url(v)

    @field_validator("sources", mode="before")
    @classmethod
    def _no_sources(cls, v: Any) -> Any:
        """`sources:` with nothing under it (every source commented out) is YAML's null: no
        sources, as when the key is left out, not a type error."""
        return [] if v is None else v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a category needs a non-empty name")
        return v.strip()

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str | None) -> str | None:
        if v is not None and not SLUG_PATTERN.fullmatch(v):
            raise ValueError(f"slug must be lowercase letters, digits, - or _: {v!r}")
        if v is not None and len(v) > SLUG_MAX:
            raise ValueError(f"slug longer than {SLUG_MAX} characters ({len(v)}): it names files")
        return v

    @property
    def effective_slug(self) -> str:
        return self.slug or category_slug(self.name)


class JekyllConfig(_Strict):
    dir: str
    layout: str = "post"
    attribution: bool = False


class SiteConfig(_Strict):
    title: str
    url: str
    language: str = "en"
    timezone: str = "UTC"
    output_dir: str = "public"
    database: str = "aggregator.db"
    items_per_feed: int = Field(50, ge=1, le=10000)
    description: str | None = None
    user_agent: str | None = None
    workers: int = Field(16, ge=1, le=256)
    per_host: int = Field(2, ge=1, le=64)  # requests in flight to one host at a time
    posts_per_page: int = Field(20, ge=1, le=1000)
    templates: str | None = None  # folder whose templates override the built-in ones
    websub_hub: str | None = None  # WebSub hub announced in every feed and pinged on change
    # the cover of the all-posts feeds (`feed.atom|.rss|.json`): else the categories' own,
    # when they all have the same (`publish.all_posts_feed_meta`)
    image: str | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        return _cover_url(v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        url = check_url(v.strip())
        parts = urlsplit(url)
        # every output URL is this one joined with a path: `…/news?x=1#top/feed.atom`
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            raise ValueError(f"the site's URL cannot have a query or a fragment (? or #): {v.strip()!r}")
        if "@" in parts.netloc:
            raise ValueError(f"the site's URL cannot hold a user name or password: {parts.hostname!r}")
        # every page and feed links with it: `/my news/` made links and Atom ids no reader took
        url = _UNSAFE_IN_URL.sub(lambda m: f"%{ord(m.group()):02X}", url)
        return url.rstrip("/") + "/"

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the site needs a title: it names every page and feed")
        return v.strip()

    @field_validator("user_agent")
    @classmethod
    def _agent(cls, v: str | None) -> str | None:
        return _user_agent(v)

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v.strip())  # and `_host_warnings`

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        tag = v.strip().replace("_", "-")  # a locale (`zh_CN`) as the language tag pages and feeds need
        # an ISO 639 code first (`chinese` passed and went into every feed), or x-/i- tags
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*|[IiXx](-[A-Za-z0-9]{1,8})+", tag):
            raise ValueError(f"not a language tag such as en or zh-CN (a 2- or 3-letter code first): {v!r}")
        return tag


class Config(_Strict):
    site: SiteConfig
    defaults: SourceSettings = Field(default_factory=SourceSettings)
    categories: list[CategoryConfig] = Field(default_factory=list)
    jekyll: JekyllConfig | None = None

    @field_validator("categories", mode="before")
    @classmethod
    def _no_categories(cls, v: Any) -> Any:
        """`categories:` with every category commented out: none, as without the key."""
        return [] if v is None else v


@dataclass(frozen=True)
class Category:
    name: str
    slug: str
    tags: tuple[str, ...]
    source_keys: tuple[str, ...]
    duplicates: str = "first"
    rules: RuleSet = RuleSet()
    image: str | None = None  # `image:`, the category's cover (its RSS channel's itunes:image)


@dataclass(frozen=True)
class Settings:
    """The loaded config with paths resolved and sources merged across categories."""

    path: Path
    config: Config
    output_dir: Path
    database: Path
    categories: tuple[Category, ...]
    sources: tuple[Source, ...]
    warnings: tuple[str, ...] = ()  # `line: key.path: problem`, worth saying but not refusing
    # the line of each key path, for messages about a valid config's values (an output
    # folder a file stands in for, a database a reload may not change)
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, compare=False, repr=False)

    def where(self, *key: Any) -> str:
        """`feeds.yaml:12: site.output_dir` for a message that starts with it."""
        line = _line_for(self.lines, key)
        return f"{self.path}:{line}: " if line else f"{self.path}: "

    @property
    def site(self) -> SiteConfig:
        return self.config.site

    @property
    def jekyll_dir(self) -> Path | None:
        if self.config.jekyll is None:
            return None
        return (self.path.parent / self.config.jekyll.dir).resolve()

    @property
    def templates_dir(self) -> Path | None:
        if self.config.site.templates is None:
            return None
        return _templates_folder(self.path, self.config.site.templates)

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)

    def source(self, key: str) -> Source | None:
        return next((s for s in self.sources if s.key == key), None)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that also remembers the line of every key path."""


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:str":
                # `1:`, `yes:`, `~:`: the error names the key as YAML made it (1, True, 'None')
                for made in _made_key(key_node):
                    out.setdefault(path + (made,), key_node.start_mark.line + 1)
            out[path + (key,)] = key_node.start_mark.line + 1
            _lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, path + (i,), out)


def _made_key(node: yaml.ScalarNode) -> tuple[Any, ...]:
    """The forms a key YAML reads as no text takes in a validation error's location."""
    try:
        made = yaml.constructor.SafeConstructor().construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError):
        return ()
    try:
        hash(made)
    except TypeError:
        return ()
    return (made, str(made), repr(made))


def _duplicate_keys(node: yaml.Node, path: str = "", seen_nodes: set[int] | None = None) -> list[str]:
    """Keys written twice in one mapping. A `<<` merge key is none of them (the keys it brings
    may be set again beside it: that is what it is for), and a node an alias repeats is
    looked at once, not once per `*alias`."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:
        return []
    seen_nodes.add(id(node))
    errors: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                # `[a]: x`, `? {a: 1}`: a key no mapping of the config can have; the loader
                # refuses it with its line ("found unhashable key"), and `seen` cannot hold it
                continue
            where = f"{path}.{k.value}" if path else str(k.value)
            if k.tag != "tag:yaml.org,2002:merge":
                if k.value in seen:
                    errors.append(f"{k.start_mark.line + 1}: {where}: duplicate key")
                seen.add(k.value)
            errors += _duplicate_keys(v, where, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            errors += _duplicate_keys(item, f"{path}.{i}", seen_nodes)
    return errors


ALIAS_VALUES = 1_000_000  # values a config's aliases may expand to, past what it writes out
# ... or this many times the values it writes: 10,000 sources sharing one 100-rule `exclude:`
# by alias are 75x; a billion laughs is 10^7x and more
ALIAS_RATIO = 100


class _Cycle(Exception):
    """A value found inside itself, by an alias; `where`: the (key path step, line) down to it."""

    def __init__(self, where: tuple[tuple[Any, int], ...]) -> None:
        super().__init__()
        self.where = where


def _alias_bomb(root: yaml.Node) -> str | None:
    """`line: key.path: problem` when the config's aliases expand to more values than any
    feeds.yaml holds: ten anchors each repeating the one before ten times (a "billion
    laughs") made `check`, and the daemon at a reload, grow past 4 GB before saying a word.
    The nodes an alias repeats are one object each: counted once, the check takes as long
    as the file is. Reported at the deepest value written once on the way to the biggest."""
    sizes: dict[int, int] = {}
    refs: Counter[int] = Counter()

    sizing: set[int] = set()  # the nodes being sized, from the root down to this one

    def children(node: yaml.Node) -> list[tuple[Any, int, yaml.Node]]:
        """(key path step, its line, node) of what `node` holds."""
        if isinstance(node, yaml.MappingNode):
            return [
                (key.value if isinstance(key, yaml.ScalarNode) else "?", key.start_mark.line + 1, n)
                for key, value in node.value
                for n in (key, value)
            ]
        if isinstance(node, yaml.SequenceNode):  # an alias's node starts where its anchor is, before the list
            start = node.start_mark
            return [
                (i, (child.start_mark if child.start_mark.index > start.index else start).line + 1, child)
                for i, child in enumerate(node.value)
            ]
        return []

    def size(node: yaml.Node, where: tuple[tuple[Any, int], ...]) -> int:
        refs[id(node)] += 1
        if id(node) in sizing:  # `defaults: &d {headers: *d}`: it holds itself
            raise _Cycle(where)
        if id(node) not in sizes:
            sizing.add(id(node))
            sizes[id(node)] = 1 + sum(size(child, (*where, (step, at))) for step, at, child in children(node))
            sizing.discard(id(node))
        return sizes[id(node)]

    try:
        total = size(root, ())
    except _Cycle as cycle:  # a RecursionError, a traceback from `check` and the daemon's end at a reload
        dotted = ".".join(_key(step) for step, _ in cycle.where) or "(top level)"
        line = cycle.where[-1][1] if cycle.where else root.start_mark.line + 1
        return f"{line}: {dotted}: an alias (*name) inside the value it stands for repeats it without end: remove it"
    limit = max(ALIAS_VALUES, ALIAS_RATIO * len(sizes))
    if total <= limit:
        return None
    node, path, line = root, [], root.start_mark.line + 1
    while True:
        if isinstance(node, yaml.MappingNode):
            key, child = max(node.value, key=lambda pair: sizes[id(pair[1])])
            step, at = key.value if isinstance(key, yaml.ScalarNode) else "?", key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and node.value:
            step, child = max(enumerate(node.value), key=lambda item: sizes[id(item[1])])
            at = child.start_mark.line + 1
        else:
            break
        if refs[id(child)] > 1:  # the aliases are here: at the line of the value holding them
            break
        node, line = child, at
        path.append(step)
    dotted = ".".join(_key(p) for p in path) or "(top level)"
    return (
        f"{line}: {dotted}: its aliases (*name) repeat what they stand for into {total:,} values, more "
        f"than a config holds (at most {limit:,}): write the values out, or use fewer aliases"
    )


def _key(part: Any) -> str:
    """A key path part as written, quoted when it would not be readable bare (blank, control characters)."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--config`, else $AGGREGATOR_CONFIG, else ./feeds.yaml."""
    return Path(explicit or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str]) -> Settings:
    """Parse and validate; raise ConfigError with `line: key.path: problem` lines."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except OSError as e:
        raise ConfigError(path, [f"cannot read: {e}"]) from None
    return parse_config(decode_config(data, path), path)


def decode_config(data: bytes, path: Path) -> str:
    """The config's text; ConfigError naming the line of the first byte that is not UTF-8
    (a file saved as GBK or UTF-16 by an editor), not the codec's byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        error = f"{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as UTF-8"
        raise ConfigError(path, [error]) from None


def _compose_fast(text: str) -> tuple[yaml.Node | None, Any, list[str]] | None:
    """(node, data, duplicate keys) through libyaml when PyYAML has it, else None.

    The pure-Python parser took ~0.4 s for a config of 2,400 sources, which every command
    pays at start-up; libyaml takes ~0.01 s and gives the same nodes, line marks and data.
    A document it refuses is parsed again by the Python loader, so error messages are
    always the ones that loader gives. Duplicate keys are looked for before the data is
    made: making it merges `<<: *anchor` keys into the node, where they read as duplicates.
    """
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return None
    try:
        node = yaml.compose(text, Loader=loader)
        dups = _duplicate_keys(node) if node is not None else []
        data = yaml.constructor.SafeConstructor().construct_document(node) if node is not None else None
    except yaml.YAMLError:
        return None
    return node, data, dups


def _yaml_error(e: yaml.YAMLError, text: str = "") -> str:
    """`LINE: invalid YAML: problem`, pointing at the mistake, not just where the parser gave up.

    An unclosed quote or bracket is only noticed lines later (an unclosed quote at the end
    of the file, past its last line): the line where that quote or bracket opened is named
    too, and is the line given when the parser ran into the end of the file.
    """
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    line = mark.line + 1 if mark else 1
    context, opened = getattr(e, "context", None), getattr(e, "context_mark", None)
    if mark is not None and (wide := _wide_colon(text, mark.line)):
        return wide
    if context and opened is not None and mark is not None and opened.line != mark.line:
        problem = f"{problem} ({context} at line {opened.line + 1})"
        if "end of stream" in problem:
            line = opened.line + 1
    if "'\\t'" in problem:
        problem += "; indent with spaces: YAML does not allow tabs there"
    # Two of the parser's complaints have two usual causes, told apart by what precedes the
    # mark on its line: `title: News: daily` (a key there: quotes wanted) or `     name: B`
    # (a key alone, indented deeper than its siblings); `title: "x" y` (a value there) or a
    # continuation line indented too little (only spaces).
    lines = text.splitlines()
    before = lines[mark.line][: mark.column] if mark is not None and mark.line < len(lines) else ""
    if "mapping values are not allowed" in problem and ": " not in before and "- " not in before:
        return f"{line}: invalid YAML: {problem}; {_INDENT}"
    if "expected <block end>, but found '<scalar>'" in problem and not before.strip():
        return f"{line}: invalid YAML: {problem}; {_INDENT}"
    for says, hint in _YAML_HINTS:
        if says in problem:
            problem += f"; {hint}"
            break
    return f"{line}: invalid YAML: {problem}"


# `title： News`, `name:　World`: a key typed with a Chinese input method on, its full-width
# colon or space making the line text, not a key; the parser complains about the next line.
_WIDE_KEY = re.compile(r"^[ ]*(?:-[ ]+)?([A-Za-z_][A-Za-z0-9_-]*)[ \u3000]*(：|:\u3000)")


def _wide_colon(text: str, at: int) -> str | None:
    """`LINE: invalid YAML: …` naming the key written with a full-width colon (or followed by
    a full-width space) on the line the parser stopped at or the one before: it named the
    next line, and said to check its indentation or that it found no ':'."""
    lines = text.splitlines()
    for n in (at - 1, at):
        m = _WIDE_KEY.match(lines[n]) if 0 <= n < len(lines) else None
        if m:
            what = (
                "is followed by a full-width colon '：'"
                if m.group(2) == "："
                else "has a full-width space after its colon"
            )
            return (
                f"{n + 1}: invalid YAML: the key `{m.group(1)}` {what}: "
                f"write an ASCII colon and space (`{m.group(1)}: …`)"
            )
    return None


# The parser's wording for what is nearly always a value that needed quotes, and what to do.
_QUOTE = "put the whole value in quotes"
_INDENT = "check this line's indentation: the keys of one mapping start in one column"
_YAML_HINTS = (
    ("mapping values are not allowed here", f'a value with ": " in it: {_QUOTE} (title: "News: daily")'),
    ("unknown escape character", "a backslash in double quotes starts an escape: use single quotes ('C:\\x')"),
    ("that cannot start any token", f"a value starting with @, ` or %: {_QUOTE}"),
    ("found undefined alias", f"a value starting with * or &: {_QUOTE}"),
    ("expected alphabetic or numeric character", f"a value starting with * or &: {_QUOTE}"),
    ("could not determine a constructor for the tag", f"a value starting with !: {_QUOTE}"),
    ("mapping keys are not allowed here", f'a value starting with "? ": {_QUOTE}'),
    ("found unhashable key", "a key in [brackets] or {braces}, or after `? `: a key is plain text (`name:`)"),
    (
        "expected <block end>, but found '<scalar>'",
        f"text after a closing quote or bracket: {_QUOTE}; "
        "an apostrophe inside single quotes is written twice ('it''s')",
    ),
    ("expected <block end>, but found", _INDENT),
)


def parse_config(text: str, path: Path) -> Settings:
    try:
        fast = _compose_fast(text)
        if fast is not None:
            node, data, dups = fast
        else:
            node = yaml.compose(text, Loader=_LineLoader)
            dups = _duplicate_keys(node) if node is not None else []
            data = yaml.load(text, Loader=_LineLoader)
    except yaml.reader.ReaderError as e:  # a character YAML forbids: it has a position, not a mark
        line = text.count("\n", 0, e.position) + 1
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        raise ConfigError(path, [f"{line}: invalid YAML: the character {char} is not allowed"]) from None
    except yaml.YAMLError as e:
        raise ConfigError(path, [_yaml_error(e, text)]) from None
    if node is None or not isinstance(data, dict):
        raise ConfigError(path, ["1: the file must be a mapping with at least `site:`"])
    if bomb := _alias_bomb(node):
        raise ConfigError(path, [bomb])
    if dups:
        raise ConfigError(path, dups)
    lines: dict[tuple[Any, ...], int] = {}
    _lines(node, (), lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        # The interval ranges too, where their own values are valid: a user with a mistake of
        # each kind sees both at once, in the order of the file (a stable sort: one line's
        # errors keep their order).
        errors = _schema_errors(e, lines) + _interval_errors(*_raw_intervals(data), lines)
        errors += _slug_errors(_raw_slugs(data), lines)
        site = data.get("site")
        errors += _templates_errors(site.get("templates") if isinstance(site, dict) else None, path, lines)
        errors += _tls_errors(_raw_tls(data), path, lines)
        errors += _published_errors(*_raw_places(data), path, lines)
        errors += _database_errors(_raw_places(data)[1], path, lines)
        raise ConfigError(path, sorted(errors, key=_line_of)) from None
    slugs = [(i, cat.effective_slug) for i, cat in enumerate(config.categories)]
    errors = _interval_errors(*_config_intervals(config), lines) + _slug_errors(slugs, lines)
    errors += _templates_errors(config.site.templates, path, lines)
    errors += _tls_errors(_config_tls(config), path, lines)
    jekyll = config.jekyll.dir if config.jekyll is not None else None
    errors += _published_errors(config.site.output_dir, config.site.database, jekyll, path, lines)
    errors += _database_errors(config.site.database, path, lines)
    errors.sort(key=_line_of)  # as above
    if errors:
        raise ConfigError(path, errors)
    settings = _settings(config, path, lines, node)
    remember(s.url for s in settings.sources)  # so that logs and output can mask their passwords
    return settings


def _templates_folder(path: Path, templates: str) -> Path:
    """`site.templates` as a folder: relative to the config file's own folder."""
    return (path.parent / templates).resolve()


def _templates_errors(templates: object, path: Path, lines: dict[tuple[Any, ...], int]) -> list[str]:
    """`site.templates` naming no folder, reported with the other mistakes, not once they are fixed."""
    if not isinstance(templates, str):
        return []
    folder = _templates_folder(path, templates)
    if folder.is_dir():
        return []
    return [f"{_line_for(lines, ('site', 'templates'))}: site.templates: not a folder: {folder}"]


def _raw_places(data: dict[str, Any]) -> tuple[object, object, object]:
    """(output_dir, database, jekyll.dir) of a config that failed validation, defaults filled
    in; a value that is no text has its own error and is checked by nobody here."""
    site, jekyll = data.get("site"), data.get("jekyll")
    site = site if isinstance(site, dict) else {}
    return (
        site.get("output_dir", SiteConfig.model_fields["output_dir"].default),
        site.get("database", SiteConfig.model_fields["database"].default),
        jekyll.get("dir") if isinstance(jekyll, dict) else None,
    )


def _published_errors(
    output_dir: object, database: object, jekyll_dir: object, path: Path, lines: dict[tuple[Any, ...], int]
) -> list[str]:
    """The database or the config file inside a published folder (`output_dir`, `jekyll.dir`):
    `serve`, a static host or Jekyll would hand out the sources' passwords and tokens with
    it (`output_dir: .` beside feeds.yaml served /feeds.yaml and /aggregator.db). Paths as
    `Settings` resolves them, symlinks followed; the config also as written, in case a link
    to it stands in the folder."""
    base = path.resolve().parent
    try:
        config = (path.resolve(), path.absolute())
        db = (base / database).resolve() if isinstance(database, str) else None
        folders = [(("site", "output_dir"), (base / output_dir).resolve() if isinstance(output_dir, str) else None)]
        if isinstance(jekyll_dir, str):
            folders.append((("jekyll", "dir"), (path.parent / jekyll_dir).resolve()))
    except (OSError, ValueError, RuntimeError):  # a NUL, a name too long, a symlink loop: errors of their own
        return []
    errors = []
    for key, folder in folders:
        if folder is None:
            continue
        dotted = ".".join(key)
        jekyll = key == ("jekyll", "dir")
        where = "keep it out of the Jekyll site, or in a folder of it named _…" if jekyll else "keep it outside"
        if any(_published_in(c, folder, jekyll) for c in config):
            fix = where if jekyll else "give the output a folder of its own (e.g. public)"
            errors.append(
                f"{_line_for(lines, key)}: {dotted}: {folder} holds the config file {path}, which would be published "
                f"with the sources' passwords and tokens: {fix}"
            )
        if db is not None and _published_in(db, folder, jekyll):
            errors.append(
                f"{_line_for(lines, ('site', 'database'))}: site.database: {db} is inside {dotted} ({folder}), which "
                f"is published, and the database holds the sources' passwords and tokens: {where}"
            )
    return errors


def _database_errors(database: object, path: Path, lines: dict[tuple[Any, ...], int]) -> list[str]:
    """`site.database` naming a folder (`database: /var/lib/aggregator/`, `database: ""`):
    `check` said ok, and every other command failed with "unable to open database file"."""
    if not isinstance(database, str):
        return []
    try:
        db = (path.resolve().parent / database).resolve()
        if not db.is_dir():
            return []
    except (OSError, ValueError, RuntimeError):  # a NUL, a name too long: the open says so
        return []
    return [
        f"{_line_for(lines, ('site', 'database'))}: site.database: {db} is a folder: give the database "
        f"file's path (e.g. {Path(database.rstrip('/') or '.') / 'aggregator.db'})"
    ]


def _published_in(file: Path, folder: Path, jekyll: bool) -> bool:
    """Whether `file` is published from `folder`: anything in it, but for Jekyll, which builds
    no file under a name starting with `_` or `.` (`_aggregator/feeds.yaml`, `.data/x.db`)."""
    if not file.is_relative_to(folder):
        return False
    parts = file.relative_to(folder).parts
    # but `_site`, Jekyll's own output: built from the rest, deployed, and emptied by each build
    return not (jekyll and parts[0] != "_site" and any(part.startswith(("_", ".")) for part in parts))


_TlsSetting = tuple[tuple[Any, ...], Any]  # (key path of `tls_verify`, its value)


def _config_tls(config: Config) -> list[_TlsSetting]:
    """Every `tls_verify` a validated config sets: `defaults:`, then each source listing."""
    out: list[_TlsSetting] = [(("defaults", "tls_verify"), config.defaults.tls_verify)]
    for i, cat in enumerate(config.categories):
        for j, src in enumerate(cat.sources):
            out.append((("categories", i, "sources", j, "tls_verify"), src.tls_verify))
    return out


def _raw_tls(data: dict[str, Any]) -> list[_TlsSetting]:
    """`_config_tls` of a config that failed validation, read from the YAML data: a value
    that is itself invalid has its own error, and is left out here."""

    def value(raw: Any) -> Any:
        if not isinstance(raw, dict):
            return None
        try:
            return _tls_setting(raw.get("tls_verify"))
        except ValueError:
            return None

    out: list[_TlsSetting] = [(("defaults", "tls_verify"), value(data.get("defaults")))]
    categories = data.get("categories")
    for i, cat in enumerate(categories if isinstance(categories, list) else ()):
        sources = cat.get("sources") if isinstance(cat, dict) else None
        for j, src in enumerate(sources if isinstance(sources, list) else ()):
            out.append((("categories", i, "sources", j, "tls_verify"), value(src)))
    return out


# what a quoted `tls_verify` value meaning a boolean looks like: taken for a file's name
_MEANT_AS_BOOLEAN = {"no": False, "off": False, "n": False, "0": False, "yes": True, "on": True, "y": True, "1": True}


def _tls_errors(settings: list[_TlsSetting], path: Path, lines: dict[tuple[Any, ...], int]) -> list[str]:
    """A `tls_verify` CA bundle naming nothing, reported with the other mistakes: found
    only at the first poll, it failed every request of the source."""
    errors = []
    for loc, value in settings:
        if not isinstance(value, str):
            continue
        try:
            where = tls_path(path, value)
            if where.exists():
                continue
            msg = f"no such CA bundle file or folder: {where}"
            meant = _MEANT_AS_BOOLEAN.get(value.strip().lower())
            if meant is not None:  # `tls_verify: "no"`: quoted, or YAML 1.2 habits
                msg += f" (to turn checking {'on' if meant else 'off'}, write {str(meant).lower()})"
        except (OSError, ValueError) as e:  # a name too long for the system, say
            msg = f"cannot be read as a CA bundle file or folder: {getattr(e, 'strerror', None) or e}"
        line = _line_for(lines, loc)
        dotted = ".".join(str(p) for p in loc)
        errors.append(f"{line}: {dotted}: {msg}" if line else f"{dotted}: {msg}")
    return errors


def _slug_errors(slugs: list[tuple[int, str]], lines: dict[tuple[Any, ...], int]) -> list[str]:
    """One error per category whose slug an earlier one already has (they would write the
    same files): every clash at once, each at its own line, not only the first."""
    errors = []
    seen: dict[str, int] = {}
    for i, slug in slugs:
        if slug in seen:
            line = _line_for(lines, ("categories", i))
            errors.append(
                f"{line}: categories.{i}: duplicate slug {slug!r} (also categories.{seen[slug]}); "
                "set `slug:` to tell them apart"
            )
        else:
            seen[slug] = i
    return errors


def _raw_slugs(data: dict[str, Any]) -> list[tuple[int, str]]:
    """The categories' slugs in a config that failed validation, where name or slug is valid
    enough to tell: a clash is reported with the other mistakes, not after they are fixed."""
    out = []
    categories = data.get("categories")
    for i, cat in enumerate(categories if isinstance(categories, list) else ()):
        if not isinstance(cat, dict):
            continue
        slug, name = cat.get("slug"), cat.get("name")
        if slug is not None:
            try:
                slug = CategoryConfig._slug(slug) if isinstance(slug, str) else None
            except ValueError:
                slug = None
            if slug is not None:
                out.append((i, slug))
        elif isinstance(name, str) and name.strip():
            out.append((i, category_slug(name.strip())))
    return out


def _line_of(error: str) -> int:
    """The line an error message starts with (0 for the rare one without)."""
    head = error.partition(":")[0]
    return int(head) if head.isdigit() else 0


def _did_you_mean(key: object) -> str:
    """` (did you mean `interval`?)` for a misspelt key (`intervall`, `default`, `source`): the
    closest key any part of the config has, if one is close."""
    known: set[str] = set()
    todo = [_Strict]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        known.update(cls.model_fields)
    close = difflib.get_close_matches(str(key), sorted(known - {str(key)}), n=1, cutoff=0.75)
    return f" (did you mean `{close[0]}`?)" if close else ""


_SECRET_KEYS = frozenset({"auth", "headers", "username", "password"})  # values a message must not show


def _secret(loc: tuple[Any, ...]) -> bool:
    """Whether the value at `loc` is one a message must not show."""
    return bool(_SECRET_KEYS.intersection(p for p in loc if isinstance(p, str)))


def _shown(value: object, loc: tuple[Any, ...] = (), limit: int = 60) -> str:
    """`str 'https://…'`: a value's type and its start, for a message (a whole mapping would be a page).

    Only the type under `auth` or `headers`: `auth: alice:hunter2` (a mapping was meant) put
    the password in `check`'s output and in the daemon's log of a rejected reload."""
    if _secret(loc):
        return type(value).__name__
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= limit else text[: limit - 1] + '…'}"


def _yaml_scalar(value: bool | int | float | date, loc: tuple[Any, ...]) -> str:
    """`the boolean false`, `the number 2024`, `a date`: what YAML made of an unquoted value,
    without the value itself under `auth` or `headers` (a numeric password or API key)."""
    kind = "a date" if isinstance(value, date) else "the boolean" if isinstance(value, bool) else "the number"
    if isinstance(value, date) or _secret(loc):
        return kind.replace("the ", "a ")
    return f"{kind} {str(value).lower() if isinstance(value, bool) else repr(value)}"


# pydantic's bound errors, as words and the key of the bound in the error's context
_BOUNDS = {
    "greater_than": ("above", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("below", "lt"),
    "less_than_equal": ("at most", "le"),
}
# what a number key counts, said with a bound it misses
_COUNTS = {
    "items_per_feed": " (the newest posts each feed lists)",
    "posts_per_page": " (posts on each page)",
    "workers": " (sources polled at once)",
    "per_host": " (requests in flight to one host)",
    "keep_per_source": " (the newest posts kept of each source; leave it out to keep them all)",
}


def _schema_errors(e: ValidationError, lines: dict[tuple[Any, ...], int]) -> list[str]:
    """One `line: key.path: problem` per pydantic error, in pydantic's order."""
    errors = []
    for err in e.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _did_you_mean(loc[-1])
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "invalid_key" or loc[-1:] == ("[key]",):
            # `yes: x`, `1: x`: "Keys should be strings", at the line of the mapping, the key
            # shown as pydantic made it (`site.1` for `yes`); named by its line, in the mapping's path
            made = err["input"]
            what = "null (nothing)" if made is None else _yaml_scalar(made, loc)
            msg = f"a key YAML reads as {what}, not text: put it in quotes (or remove it)"
            line = _line_for(lines, loc)
            loc = loc[: -2 if loc[-1:] == ("[key]",) else -1]
            dotted = ".".join(_key(p) for p in loc) or "(top level)"
            errors.append(f"{line}: {dotted}: {msg}" if line else f"{dotted}: {msg}")
            continue
        elif err["type"] == "model_type":  # `- https://…` where `- url: https://…` was meant
            example = "`- url: https://…`" if len(loc) > 1 and loc[-2] == "sources" else "`key: value` lines"
            if err["input"] is None:  # a bare `-`, or a key with nothing under it
                msg = f"is empty: write {example} there" + (", or remove it" if isinstance(loc[-1], int) else "")
            else:
                msg = f"should be a mapping ({example}), not {_shown(err['input'], loc)}"
                wide = _WIDE_KEY.match(err["input"]) if isinstance(err["input"], str) else None
                if wide:  # `- url： https://…`
                    msg += f"; write the key with an ASCII colon and space (`{wide.group(1)}: …`), not a full-width one"
        elif err["type"] == "string_type" and err["input"] is None:  # `- url:` with nothing after it
            msg = "is empty: write a value there, or remove it" if isinstance(loc[-1], int) else "has no value"
        elif err["type"] == "string_type" and isinstance(err["input"], bool | int | float | date):  # `name: Off`
            msg = f"YAML reads this value as {_yaml_scalar(err['input'], loc)}, not text: put it in quotes"
        elif err["type"] in _BOUNDS:  # `items_per_feed: 0`: pydantic's "Input should be greater than or equal to 1"
            words, key = _BOUNDS[err["type"]]
            msg = f"should be {words} {err['ctx'][key]}, not {err['input']!r}{_COUNTS.get(loc[-1], '')}"
        elif err["type"] in ("int_parsing", "int_from_float", "int_type") and err["input"] is not None:
            msg = f"should be a whole number, not {_shown(err['input'], loc)}{_COUNTS.get(loc[-1], '')}"
        elif err["type"] == "list_type":  # `sources: https://…`, or a mapping where items were meant
            msg = f"should be a list (lines starting with `- `), not {_shown(err['input'], loc)}"
        line = _line_for(lines, loc)
        dotted = ".".join(_key(p) for p in loc) or "(top level)"
        errors.append(f"{line}: {dotted}: {msg}" if line else f"{dotted}: {msg}")
    return errors


_INTERVAL_FIELDS = ("interval", "min_interval", "max_interval")
_INVALID = object()  # an interval field whose value did not validate: no range check can use it
# The interval fields of `defaults:` or of one source: parsed value, None when not set, or _INVALID.
_Intervals = dict[str, Any]
_Layer = tuple[tuple[Any, ...], _Intervals]


def _config_intervals(config: Config) -> tuple[_Intervals, list[_Layer]]:
    """The interval fields of a validated config: `defaults:`, then each source listing."""
    layers = [
        (("categories", i, "sources", j), {name: getattr(src, name) for name in _INTERVAL_FIELDS})
        for i, cat in enumerate(config.categories)
        for j, src in enumerate(cat.sources)
    ]
    return {name: getattr(config.defaults, name) for name in _INTERVAL_FIELDS}, layers


def _raw_intervals(data: dict[str, Any]) -> tuple[_Intervals, list[_Layer]]:
    """`_config_intervals` of a config that failed validation, read from the YAML data: each
    field validated on its own, as the schema would, so a mistake elsewhere (even in the same
    source) hides no range error, and a field that is itself wrong is checked by nobody."""

    def fields(raw: Any) -> _Intervals:
        if raw is None:
            return dict.fromkeys(_INTERVAL_FIELDS)
        if not isinstance(raw, dict):
            return dict.fromkeys(_INTERVAL_FIELDS, _INVALID)
        out: _Intervals = {}
        for name in _INTERVAL_FIELDS:
            try:
                out[name] = getattr(SourceSettings.model_validate({name: raw.get(name)}), name)
            except ValidationError:
                out[name] = _INVALID
        return out

    layers: list[_Layer] = []
    categories = data.get("categories")
    for i, cat in enumerate(categories if isinstance(categories, list) else ()):
        sources = cat.get("sources") if isinstance(cat, dict) else None
        for j, src in enumerate(sources if isinstance(sources, list) else ()):
            if isinstance(src, dict):
                layers.append((("categories", i, "sources", j), fields(src)))
    return fields(data.get("defaults")), layers


def _interval_errors(defaults: _Intervals, sources: list[_Layer], lines: dict[tuple[Any, ...], int]) -> list[str]:
    """A fixed `interval` outside `min_interval`..`max_interval`, or min above max, is a
    mistake worth stopping for: clamping it silently would poll at a rate nobody wrote."""
    errors: dict[str, None] = {}  # ordered, without repeats (a bad `defaults:` shows once)
    layers: list[tuple[tuple[Any, ...], _Intervals | None]] = [(("defaults",), None), *sources]
    for path, src in layers:

        def pick(name: str, default: Any, src: _Intervals | None = src, path: tuple[Any, ...] = path) -> Any:
            value = src[name] if src is not None else None
            if value is not None:
                return value, path + (name,)
            value = defaults[name]
            return (value, ("defaults", name)) if value is not None else (default, None)

        interval, at = pick("interval", "auto")
        low, low_at = pick("min_interval", MIN_INTERVAL)
        high, high_at = pick("max_interval", MAX_INTERVAL)
        # A value that did not validate has its own error; no range is checked against it.
        if low is _INVALID or high is _INVALID:
            continue
        if interval is _INVALID:
            interval = "auto"  # min against max is still checked

        def err(where: tuple[Any, ...] | None, msg: str, path: tuple[Any, ...] = path) -> None:
            where = where or path
            line = _line_for(lines, where)
            dotted = ".".join(str(p) for p in where)
            errors[f"{line}: {dotted}: {msg}" if line else f"{dotted}: {msg}"] = None

        if low > high:
            # at the listing's own value when it set one: `defaults.min_interval` named for a
            # source's `max_interval` left the user to find which of hundreds of sources it was
            own = [w for w in (low_at, high_at) if w is not None and w[: len(path)] == path]
            where = own[0] if own else low_at or high_at
            err(where, f"min_interval {format_duration(low)} is above max_interval {format_duration(high)}")
        elif interval != "auto" and interval < low:
            err(
                at,
                f"interval {format_duration(interval)} is below min_interval {format_duration(low)} "
                "(set min_interval lower to poll this often)",
            )
        elif interval != "auto" and interval > high:
            err(
                at,
                f"interval {format_duration(interval)} is above max_interval {format_duration(high)} "
                "(set max_interval higher to poll this rarely)",
            )
    return list(errors)


def _as_requested(url: str) -> str:
    """A source URL as the server sees the request: the letter case of the scheme and host,
    a default port and a fragment (never sent) make no difference there. String work alone
    (the URL passed `check_url`): every source of a large config takes this at each start."""
    scheme, _, rest = url.partition("#")[0].partition("://")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i != -1), default=len(rest))
    user, at, hostport = rest[:cut].rpartition("@")
    host, port = _host_port(hostport)
    scheme = scheme.lower()
    netloc = f"{user}{at}" + (f"[{host.lower()}]" if hostport.startswith("[") else host.lower())
    port = port.lstrip("0")
    if port and port != {"http": "80", "https": "443"}.get(scheme):
        netloc += f":{port}"
    path = rest[cut:]
    return f"{scheme}://{netloc}{path if path.startswith('/') else '/' + path}"


_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def request_key(url: str) -> str:
    """`url` as the request reaches the server, to compare URLs a person typed or copied: the
    host in IDNA, the path and query percent-encoded as the fetcher sends them (`/中文/` and
    `/%e4%b8%ad%E6%96%87/` alike), then `_as_requested`. Slower than that: for a few URLs."""
    from requests.exceptions import RequestException  # a person's URL, not every source's at start
    from requests.models import PreparedRequest

    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        return _ESCAPE.sub(lambda m: m.group(0).upper(), _as_requested(prepared.url or url))
    except (RequestException, ValueError, UnicodeError):
        return url


# What each listing of a source may set for itself: which of its posts the category shows.
_PER_LISTING = {"url", "include", "exclude"}


def _conflicts(config: Config, lines: dict[tuple[Any, ...], int]) -> list[str]:
    """A source listed in several categories is polled once, with its first listing's
    settings: a later listing that sets a value otherwise than the first one's (its own,
    else `defaults:`) is silently outvoted; listed twice in one category, the second listing
    (its filters too) is ignored altogether. Worth a warning, not an error: such a config
    loaded before, and a daemon must still start on it."""
    first: dict[str, tuple[tuple[Any, ...], SourceConfig]] = {}
    placed: dict[tuple[str, int], tuple[Any, ...]] = {}  # (url, category) → where it is listed first there
    out: list[str] = []

    def say(at: tuple[Any, ...], problem: str) -> None:
        out.append(f"{_line_for(lines, at)}: {'.'.join(map(str, at))}: {problem}")

    def effective(src: SourceConfig, name: str) -> Any:
        value = getattr(src, name)
        return value if value is not None else getattr(config.defaults, name, None)

    spellings: dict[str, tuple[tuple[Any, ...], SourceConfig]] = {}  # a URL as servers see it → its first spelling
    for i, cat in enumerate(config.categories):
        for j, src in enumerate(cat.sources):
            here = ("categories", i, "sources", j)
            if src.url not in first:
                first[src.url] = (here, src)
                placed[src.url, i] = here
                # `request_key` (IDNA, percent-encoding) only where it can differ: it is slower
                plain = src.url.isascii() and "%" not in src.url
                other, was = spellings.setdefault(
                    _as_requested(src.url) if plain else request_key(src.url), (here, src)
                )
                if other != here and effective(src, "enabled") is not False and effective(was, "enabled") is not False:
                    say(here, f"the same feed as line {_line_for(lines, other)}, spelled otherwise (letter case of "
                        "the scheme or host, a default port, an empty path, a #fragment, percent-encoding or an "
                        "international host name): it would be polled "
                        "and its posts stored twice; write the URL as there")  # fmt: skip
                continue
            there, orig = first[src.url]
            if (src.url, i) in placed:
                earlier = _line_for(lines, placed[src.url, i])
                say(here, f"this source is listed earlier in this category (line {earlier}): "
                    "this listing, its include/exclude rules too, is ignored; merge the two")  # fmt: skip
                continue
            placed[src.url, i] = here
            # Only what this listing sets: one that gives just the URL (the usual way to show a
            # source in a second category) asks for nothing, so nothing of it is outvoted.
            for name in sorted(src.model_fields_set - _PER_LISTING):
                if effective(src, name) != effective(orig, name):
                    at = here + (name,)
                    say(at, f"{name} differs from this source's first listing (line {_line_for(lines, there)}), "
                        "whose settings apply: a source is polled once, with one set of settings; "
                        "only include/exclude may differ per category")  # fmt: skip
    return out


def _host_warnings(config: Config, lines: dict[tuple[Any, ...], int]) -> list[str]:
    """A source's or the hub's host that no request reaches as written: one IDNA 2008 cannot
    encode or with a part over 63 characters (`fetchable_url`: every poll fails), one with a
    part beginning with '-' (`_HYPHEN_FIRST`: fetched, but no host name). Warnings, not errors:
    such a config loaded before and its other sources were polled; refused, the daemon no
    longer started after an upgrade, every source down for the one that never worked."""
    out: list[str] = []
    urls = [
        (("categories", i, "sources", j, "url"), src.url)
        for i, cat in enumerate(config.categories)
        for j, src in enumerate(cat.sources)
    ]
    if config.site.websub_hub:
        urls.append((("site", "websub_hub"), config.site.websub_hub))
    for at, url in urls:
        where = f"{_line_for(lines, at)}: {'.'.join(map(str, at))}"
        try:
            fetchable_url(url)
        except ValueError as e:
            out.append(f"{where}: {e}; every {'ping' if at[0] == 'site' else 'poll'} of it fails")
            continue
        if "-" not in url:  # the usual case: no parsing
            continue
        host = urlsplit(url).hostname or ""
        if ":" in host or not _HYPHEN_FIRST.search(host):
            continue
        effect = "its URL is left out of the published feeds" if host.startswith("-") else "a resolver may refuse it"
        out.append(
            f"{where}: a part of the host {host!r} begins with '-', which no host name does (RFC 1123): "
            f"it is fetched as written, but {effect}"
        )
    return out


_DURATION_KEYS = frozenset({"interval", "min_interval", "max_interval", "timeout"})
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _base_60(root: yaml.Node) -> list[str]:
    """A duration written like a clock (`interval: 6:00`) is a base-60 number to YAML 1.1:
    360 seconds, where its writer likely meant 6 hours. Worth a warning, not an error: such a
    config loaded before, and 360 s is what it has been polled at."""
    out: list[str] = []
    seen: set[int] = set()

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        if id(node) in seen:  # a node an alias repeats: said once, at its anchor
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = path + (key.value,)
                if (
                    key.value in _DURATION_KEYS
                    and isinstance(value, yaml.ScalarNode)
                    and not value.style  # plain: libyaml says "", the Python parser None
                    and value.tag in _NUMBER_TAGS
                    and value.value.count(":") == 1  # `1:30:00` is h:mm:ss, read as people mean it
                ):
                    out.append(_clock_warning(value, here))
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    walk(root, ())
    return out


def _clock_warning(value: yaml.ScalarNode, path: tuple[Any, ...]) -> str:
    seconds = float(yaml.constructor.SafeConstructor().construct_object(value))
    return (
        f"{value.start_mark.line + 1}: {'.'.join(map(str, path))}: {value.value} is a base-60 number to YAML, "
        f"minutes and seconds: {format_duration(seconds)}. If you meant hours and minutes, write "
        f"{format_duration(seconds * 60)}; write {format_duration(seconds)} to keep it and silence this warning"
    )


def _settings(config: Config, path: Path, lines: dict[tuple[Any, ...], int], node: yaml.Node) -> Settings:
    base = path.resolve().parent
    site = config.site
    defaults = config.defaults
    merged: dict[str, dict[str, Any]] = {}
    categories: list[Category] = []
    for cat in config.categories:
        slug = cat.effective_slug
        cat_rules = _rules(cat.include, cat.exclude)
        keys: list[str] = []
        for src in cat.sources:
            entry = merged.setdefault(src.url, {"cfg": src, "cats": [], "filters": [], "keep": []})
            if slug not in entry["cats"]:
                entry["cats"].append(slug)
                # a listing's own rules (else `defaults:`) apply in this category, with the category's
                include = src.include if src.include is not None else defaults.include
                exclude = src.exclude if src.exclude is not None else defaults.exclude
                levels = tuple(r for r in (_rules(include, exclude), cat_rules) if r)
                if levels:
                    entry["filters"].append(CategoryFilter(slug, levels))
                if cat.duplicates == "keep":
                    entry["keep"].append(slug)
            if src.url not in keys:
                keys.append(src.url)
        categories.append(Category(cat.name, slug, tuple(cat.tags), tuple(keys), cat.duplicates, cat_rules, cat.image))
    sources: list[Source] = []
    for url, entry in merged.items():
        src: SourceConfig = entry["cfg"]

        def pick(name: str, fallback: Any, src: SourceConfig = src) -> Any:
            for layer in (src, defaults):
                value = getattr(layer, name)
                if value is not None:
                    return value
            return fallback

        headers = {**(defaults.headers or {}), **(src.headers or {})}
        interval = pick("interval", "auto")
        auth = pick("auth", None)
        tls = pick("tls_verify", True)
        sources.append(
            Source(
                key=url,
                url=url,
                name=src.name,
                categories=tuple(entry["cats"]),
                interval=START_INTERVAL if interval == "auto" else interval,
                timezone=pick("timezone", site.timezone),
                timeout=pick("timeout", 30.0),
                user_agent=pick("user_agent", site.user_agent),
                headers=tuple(sorted(headers.items())),
                adaptive=interval == "auto",
                min_interval=pick("min_interval", MIN_INTERVAL),
                max_interval=pick("max_interval", MAX_INTERVAL),
                enabled=pick("enabled", True),
                auth=(auth.username, auth.password) if auth is not None else None,
                tls_verify=str(tls_path(path, tls)) if isinstance(tls, str) else tls,
                per_host=site.per_host,
                filters=tuple(entry["filters"]),
                keep_duplicates=tuple(entry["keep"]),
                retention=Retention(pick("keep_days", None), pick("keep_per_source", None), site.items_per_feed),
            )
        )
    return Settings(
        path=path,
        config=config,
        output_dir=(base / site.output_dir).resolve(),
        database=(base / site.database).resolve(),
        categories=tuple(categories),
        sources=tuple(sources),
        warnings=tuple(
            sorted(_conflicts(config, lines) + _host_warnings(config, lines) + _base_60(node), key=_line_of)
        ),
        lines=lines,
    )
