"""Values remembered for the very object they were worked out from, within one publish.

A publish hands the same Post objects (and their strings) to every renderer: its feeds,
its category's listing, its own page. What those compute from a post (its excerpt, its
page-independent view) can be kept by the object's identity rather than its value:
hashing a 100 KB post to look it up would cost more than what is saved.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["IdentityMemo"]

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """At most `size` values, each for one object, found only for that same object.

    An entry holds its object, so the object's id cannot be reused by another while the
    entry is kept. When full, it starts over: the lookups it serves come close together
    (a category's posts, shown by its listing and then on their own pages).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: dict[int, tuple[K, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._items.get(id(key))
        return hit[1] if hit is not None and hit[0] is key else None

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[id(key)] = (key, value)

    def clear(self) -> None:
        self._items.clear()
