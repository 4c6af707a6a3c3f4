"""Read `feeds.yaml` into typed, validated settings.

Every error names the key path and the line in the file, because users edit this file by
hand and a bare "validation error" would leave them searching.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pypinyin import lazy_pinyin

from .models import Source

DEFAULT_CONFIG = "feeds.yaml"
ENV_CONFIG = "AGGREGATOR_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class ConfigError(Exception):
    """The config file cannot be used; `errors` holds one line per problem."""

    def __init__(self, path: Path | str, errors: list[str]) -> None:
        self.path = str(path)
        self.errors = errors
        super().__init__(f"{path}: " + "; ".join(errors))

    def __str__(self) -> str:
        return "\n".join(f"{self.path}:{e}" if e[:1].isdigit() else f"{self.path}: {e}" for e in self.errors)


def parse_duration(value: Any) -> float:
    """Seconds from `90s`, `15m`, `2h`, `1d`, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 2h, 1d)")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def slugify(name: str) -> str:
    """Pinyin without tones or separators for CJK, a lowercase ASCII slug otherwise.

    `张掖日报` → `zhangyeribao` (the shape of the site this project replaces);
    `Tech News` → `tech-news`; `AI新闻` → `aixinwen`.
    """
    # lazy_pinyin turns each CJK character into a toneless syllable and passes other runs
    # through whole, so syllables join without separators while ASCII words keep theirs.
    chunks = lazy_pinyin(name, errors=lambda run: [run])
    text = "".join(unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() for c in chunks)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _check_url(value: str) -> str:
    p = urlparse(value)
    if p.scheme not in ("http", "https") or not p.netloc:
        raise ValueError(f"not an absolute http(s) URL: {value!r}")
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone: {value!r}") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(_Strict):
    """Settings a source may set, and `defaults:` may set for all."""

    interval: float | None = None
    timezone: str | None = None
    timeout: float | None = None
    user_agent: str | None = None
    headers: dict[str, str] | None = None

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return None if v is None else _check_zone(v)


class SourceConfig(SourceSettings):
    url: str
    name: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v.strip())


class CategoryConfig(_Strict):
    name: str
    slug: str | None = None
    tags: list[str] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a category needs a non-empty name")
        return v.strip()

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", v):
            raise ValueError(f"slug must be lowercase letters, digits, - or _: {v!r}")
        return v

    @property
    def effective_slug(self) -> str:
        # A name with no Latin or CJK letters (e.g. Cyrillic) still needs a stable slug.
        return self.slug or slugify(self.name) or "c-" + hashlib.sha1(self.name.encode()).hexdigest()[:8]


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

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v.strip()).rstrip("/") + "/"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)


class Config(_Strict):
    site: SiteConfig
    defaults: SourceSettings = Field(default_factory=SourceSettings)
    categories: list[CategoryConfig] = Field(default_factory=list)
    jekyll: JekyllConfig | None = None

    @model_validator(mode="after")
    def _unique_slugs(self) -> Config:
        seen: dict[str, int] = {}
        for i, cat in enumerate(self.categories):
            slug = cat.effective_slug
            if slug in seen:
                raise ValueError(
                    f"categories.{i}: duplicate slug {slug!r} (also categories.{seen[slug]}); "
                    "set `slug:` to tell them apart"
                )
            seen[slug] = i
        return self


@dataclass(frozen=True)
class Category:
    name: str
    slug: str
    tags: tuple[str, ...]
    source_keys: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """The loaded config with paths resolved and sources merged across categories."""

    path: Path
    config: Config
    output_dir: Path
    database: Path
    categories: tuple[Category, ...]
    sources: tuple[Source, ...]

    @property
    def site(self) -> SiteConfig:
        return self.config.site

    @property
    def jekyll_dir(self) -> Path | None:
        if self.config.jekyll is None:
            return None
        return (self.path.parent / self.config.jekyll.dir).resolve()

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
            out[path + (key,)] = key_node.start_mark.line + 1
            _lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, path + (i,), out)


def _duplicate_keys(node: yaml.Node, path: str = "") -> list[str]:
    errors: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            where = f"{path}.{k.value}" if path else str(k.value)
            if k.value in seen:
                errors.append(f"{k.start_mark.line + 1}: {where}: duplicate key")
            seen.add(k.value)
            errors += _duplicate_keys(v, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            errors += _duplicate_keys(item, f"{path}.{i}")
    return errors


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, [f"cannot read: {e}"]) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Settings:
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.reader.ReaderError as e:  # a character YAML forbids: it has a position, not a mark
        line = text.count("\n", 0, e.position) + 1
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        raise ConfigError(path, [f"{line}: invalid YAML: the character {char} is not allowed"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{mark.line + 1}: " if mark else "1: "
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(path, [f"{where}invalid YAML: {problem}"]) from None
    if node is None or not isinstance(data, dict):
        raise ConfigError(path, ["1: the file must be a mapping with at least `site:`"])
    dups = _duplicate_keys(node)
    if dups:
        raise ConfigError(path, dups)
    lines: dict[tuple[Any, ...], int] = {}
    _lines(node, (), lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        errors = []
        for err in e.errors():
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "required key is missing"
            m = re.match(r"(categories)\.(\d+): (.*)", msg)
            if m:  # model-level errors name their own location
                loc, msg = (m.group(1), int(m.group(2))), m.group(3)
            line = _line_for(lines, loc)
            dotted = ".".join(_key(p) for p in loc) or "(top level)"
            errors.append(f"{line}: {dotted}: {msg}" if line else f"{dotted}: {msg}")
        raise ConfigError(path, errors) from None
    return _settings(config, path)


def _settings(config: Config, path: Path) -> Settings:
    base = path.resolve().parent
    site = config.site
    defaults = config.defaults
    merged: dict[str, dict[str, Any]] = {}
    categories: list[Category] = []
    for cat in config.categories:
        slug = cat.effective_slug
        keys: list[str] = []
        for src in cat.sources:
            entry = merged.setdefault(src.url, {"cfg": src, "cats": []})
            if slug not in entry["cats"]:
                entry["cats"].append(slug)
            if src.url not in keys:
                keys.append(src.url)
        categories.append(Category(cat.name, slug, tuple(cat.tags), tuple(keys)))
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
        sources.append(
            Source(
                key=url,
                url=url,
                name=src.name,
                categories=tuple(entry["cats"]),
                interval=pick("interval", 1800.0),
                timezone=pick("timezone", site.timezone),
                timeout=pick("timeout", 30.0),
                user_agent=pick("user_agent", site.user_agent),
                headers=tuple(sorted(headers.items())),
            )
        )
    return Settings(
        path=path,
        config=config,
        output_dir=(base / site.output_dir).resolve(),
        database=(base / site.database).resolve(),
        categories=tuple(categories),
        sources=tuple(sources),
    )
