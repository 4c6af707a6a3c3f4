"""Include / exclude rules: which of a source's posts each category publishes.

Rules come from the config (a source listing or `defaults:`, and the category); each is
one or more regular expressions on a post's fields, all of which must match. A level of
rules passes a post when some include rule matches (or there are none) and no exclude
rule does; a post is published in a category when every level passes. Excluded posts
are still stored, so changing the rules changes what is published without refetching.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import lru_cache

from .models import CategoryFilter, FilterRule, Post, RuleSet, Source
from .sanitize import sanitized_text


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _values(post: Post, field: str) -> Iterable[str]:
    """The texts a rule on `field` searches: any one matching is a match."""
    if field == "title":
        return (post.title,)
    if field == "content":
        return (sanitized_text(post.content), sanitized_text(post.summary))
    if field == "author":
        return [x for a in post.authors for x in (a.name, a.email) if x]
    if field == "tag":
        return post.tags
    if field == "link":
        return (post.link,) if post.link else ()
    raise ValueError(f"unknown filter field: {field}")


def rule_matches(rule: FilterRule, post: Post) -> bool:
    return all(any(_compiled(pattern).search(v) for v in _values(post, field)) for field, pattern in rule.patterns)


def passes(rules: RuleSet, post: Post) -> bool:
    if rules.include and not any(rule_matches(r, post) for r in rules.include):
        return False
    return not any(rule_matches(r, post) for r in rules.exclude)


def excluded_in(filters: Iterable[CategoryFilter], post: Post) -> tuple[str, ...]:
    """The categories whose rules keep `post` out (sorted, so storing it is deterministic)."""
    return tuple(sorted(f.category for f in filters if not all(passes(level, post) for level in f.levels)))


def apply(source: Source, posts: Iterable[Post]) -> list[Post]:
    """The posts with `excluded` set from the source's rules."""
    out = list(posts)
    if source.filters:
        for post in out:
            post.excluded = excluded_in(source.filters, post)
    return out


def fingerprint(source: Source) -> str:
    """Changes exactly when the source's rules or categories do: the store refilters then."""
    text = repr((sorted(source.categories), source.filters))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
