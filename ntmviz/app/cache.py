"""LRU: the one bounded cache every module-level cache of the app is made of.

A served app lives for weeks and sees every file its users open and every key its pages send, so
nothing it keeps per key may grow without bound. Each cache says where it is made what its
bound is and why:

    _HEADERS = LRU(1024)                                          # sources.py
    _EPISODES = LRU(8, weigh=lambda e: e.nbytes, max_weight=256 * MB)
    header = _HEADERS.get_or_make(key, lambda: read_header(path))

Least recently used entries go first. Thread-safe: sessions and background work (background.py)
share these caches. `make` runs outside the lock, so a slow load never holds up a lookup of
another key; when two threads make the same key at once, the first to finish is kept and both
get that one object (the app compares some of them by identity).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class LRU(Generic[K, V]):
    """At most `maxsize` entries and, with `weigh`, at most `max_weight` of their summed weights
    (an entry heavier than that alone is returned but not kept)."""

    def __init__(self, maxsize: int, *, weigh: Callable[[V], int] | None = None, max_weight: int | None = None):
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        if (weigh is None) != (max_weight is None):
            raise ValueError("weigh and max_weight go together")
        self.maxsize, self.max_weight = maxsize, max_weight
        self._weigh = weigh
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: K) -> bool:
        return key in self._data

    @property
    def weight(self) -> int:
        """The summed weights of the entries kept (0 without `weigh`)."""
        return self._weight

    def get(self, key: K, default=None):
        """The value kept for `key` (now the most recently used), else `default`."""
        with self._lock:
            entry = self._data.get(key, _MISSING)
            if entry is _MISSING:
                return default
            self._data.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V) -> V:
        """Keep `value` for `key` (replacing what was there); drop the least recently used
        entries until the bounds hold again. Returns `value`."""
        weight = self._weigh(value) if self._weigh is not None else 0
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._keep(key, value, weight)
        return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for `key`, else `make()`, kept (see the module docstring for two
        threads making one key)."""
        found = self.get(key, _MISSING)
        if found is not _MISSING:
            return found
        value = make()
        weight = self._weigh(value) if self._weigh is not None else 0
        with self._lock:
            entry = self._data.get(key, _MISSING)
            if entry is not _MISSING:  # another thread made it meanwhile: share that one
                self._data.move_to_end(key)
                return entry[0]
            self._keep(key, value, weight)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weight = 0

    def _keep(self, key: K, value: V, weight: int) -> None:
        if self.max_weight is not None and weight > self.max_weight:
            return  # it alone would break the bound: returned to the caller, not kept (the rest stays)
        self._data[key] = (value, weight)
        self._weight += weight
        while len(self._data) > self.maxsize or (self.max_weight is not None and self._weight > self.max_weight):
            _, (_, dropped) = self._data.popitem(last=False)
            self._weight -= dropped
