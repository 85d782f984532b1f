"""Memory caps by size, not by count: an approximate byte measure and a byte-budgeted ring.

A cap of "100,000 events" says nothing about memory: an event with a transcript weighs a
hundred times one with a state change. The structures that grow with traffic (event history,
per-event audiences) keep an approximate running total of what they hold and drop the oldest
entries past a byte budget (``limits.*_bytes``, docs/operations.md "Memory").

``approx_size`` is deliberately rough and cheap: fixed costs per CPython object kind
(``sys.getsizeof`` on 64-bit builds, rounded) and recursion into containers, with a depth
limit. It is meant to be within a small factor of the truth, never exact.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_STR = 49  # sys.getsizeof("") on CPython 3.12; + 1 byte per ASCII character
_SMALL = 32  # int, float, bool, None (shared singletons are counted anyway: it is an estimate)
_DICT = 64  # an empty dict, + about 100 bytes per entry of table and key/value slots
_DICT_ENTRY = 100
_SEQ = 56  # an empty list/tuple/set, + 8 bytes per element pointer
_OBJECT = 56  # an instance with __slots__ or a dataclass header


def approx_size(obj: Any, _depth: int = 0) -> int:
    """Approximate bytes held by ``obj`` and what it references (JSON-like data, dataclasses)."""
    if obj is None or isinstance(obj, bool | int | float):
        return _SMALL
    if isinstance(obj, str):
        return _STR + len(obj)
    if isinstance(obj, bytes | bytearray):
        return 33 + len(obj)
    if _depth > 8:
        return _OBJECT
    depth = _depth + 1
    if isinstance(obj, dict):
        return (
            _DICT
            + _DICT_ENTRY * len(obj)
            + sum(approx_size(k, depth) + approx_size(v, depth) for k, v in obj.items())
        )
    if isinstance(obj, list | tuple | set | frozenset):
        return _SEQ + 8 * len(obj) + sum(approx_size(v, depth) for v in obj)
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        return _OBJECT + approx_size(fields, depth)
    slots = getattr(type(obj), "__slots__", ())
    return _OBJECT + 8 * len(slots) + sum(approx_size(getattr(obj, s, None), depth) for s in slots)


class ByteRing(Generic[T]):
    """A FIFO that drops its oldest items once their approximate size passes ``budget`` bytes.

    The newest item is always kept, even alone above the budget (a single huge event is still
    resumable once). ``max_items`` is an optional second cap by count.
    """

    __slots__ = ("_items", "budget", "max_items", "nbytes")

    def __init__(self, budget: int, max_items: int | None = None) -> None:
        self.budget = budget
        self.max_items = max_items
        self._items: deque[tuple[T, int]] = deque()
        self.nbytes = 0

    def append(self, item: T, size: int | None = None) -> list[T]:
        """Add ``item``; return the items dropped to make room (oldest first)."""
        if size is None:
            size = approx_size(item)
        self._items.append((item, size))
        self.nbytes += size
        dropped: list[T] = []
        items = self._items
        most = len(items) if self.max_items is None else self.max_items
        while len(items) > 1 and (self.nbytes > self.budget or len(items) > most):
            old, old_size = items.popleft()
            self.nbytes -= old_size
            dropped.append(old)
        return dropped

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[T]:
        return (item for item, _ in self._items)

    def first(self) -> T:
        return self._items[0][0]

    def last(self) -> T:
        return self._items[-1][0]
