"""Counts written as words: `1 source`, `2 sources`, `3 categories`.

Command output and log lines are read as sentences; "1 files written" reads as a bug.
"""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """`count` and `noun`, the noun plural unless the count is one (English nouns we use only)."""
    if count == 1:
        return f"1 {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{count} {noun[:-1]}ies"
    return f"{count} {noun}s"
