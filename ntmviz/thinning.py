"""One thinning rule for every bounded history: learning curves, metric streams, snapshots.

Items are keyed by when they happened (a training step or a sequence count), in order.
Thinning keeps the first item, the newest, and between them the items nearest to evenly
spaced keys, so a curve thinned many times still spans the whole run evenly, whatever the
spacing it was logged at.

    keep = thin_keys([0, 10, 20, ..., 20000], limit=1000)   # indices into the list
    items = [items[i] for i in keep]
"""

from __future__ import annotations

import bisect
from typing import Sequence


def thin_keys(keys: Sequence[float], limit: int) -> list[int]:
    """Indices (ascending) of at most `limit` items to keep from items sorted by `keys`.

    keys [n], non-decreasing; limit >= 2. Always keeps index 0 and index n - 1.
    """
    if limit < 2:
        raise ValueError(f"a thinned history keeps at least 2 items, got limit {limit}")
    n = len(keys)
    if n <= limit:
        return list(range(n))
    first, last = keys[0], keys[-1]
    kept: list[int] = []
    for j in range(limit):
        target = first + (last - first) * j / (limit - 1)
        i = bisect.bisect_left(keys, target, 0, n)
        if i > 0 and (i == n or target - keys[i - 1] <= keys[i] - target):
            i -= 1  # the nearer neighbour; ties go to the older item
        if not kept or i > kept[-1]:
            kept.append(i)
    if kept[-1] != n - 1:
        kept[-1] = n - 1
    return kept


def thin(items: list, key, limit: int) -> list:
    """The items `thin_keys` keeps, with key(item) giving each item's key."""
    return [items[i] for i in thin_keys([key(x) for x in items], limit)]
