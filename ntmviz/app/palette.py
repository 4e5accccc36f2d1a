"""The renderer's palettes in Python (static/palette.js is the browser's copy; a browser test
checks the two agree entry by entry), so figures paint each value the colour the screen does.

Every heatmap colours a value through a 256-entry table indexed by its palette index
(palette_index below; payload.py sends large arrays as these very indices):

    signed values (memory, keys, adds)   index round(127 + 127 v / scale) in 0 .. 254:
                                         127 is 0 (near white), 0 is -scale (blue), 254 +scale (red)
    unit values (weightings, bits)       index round(255 v / scale) in 0 .. 255

    DIVERGING [256, 3] uint8    the signed palette
    GREYS     [256, 3] uint8    white (0) to near black (1): inputs, targets, outputs, erase
    STATE     [256, 3] uint8    white (0) to deep purple (1): slot state and slot x slot matrices
    head_ramp(i)                white (0) to head i's colour (1): its weightings

Heads: twelve colours told apart with the common colour-vision deficiencies (Paul Tol's "muted"
set, led by his vibrant blue and orange, a dark grey last). An episode's heads, every group's in
order (Episode.head_list), take them in turn: head i has HEAD_COLOURS[i % 12]. The payload sends
each head's colour, so the browser paints what figures paint.
"""

from __future__ import annotations

import numpy as np

SIGNED_ZERO = 127  # the signed palette's index of 0; indices 0 .. 254

HEAD_COLOURS = ("#0077bb", "#ee7733", "#117733", "#cc6677", "#332288", "#ddcc77", "#88ccee", "#882255",
                "#44aa99", "#999933", "#aa4499", "#555555")
NEGATIVE, MIDDLE, POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)
WHITE, NEAR_BLACK, DEEP_PURPLE = (255, 255, 255), (34, 34, 34), (63, 0, 125)


def palette_index(a: np.ndarray, scale: float, signed: bool) -> np.ndarray:
    """The renderer's colour index of every value, as uint8 (JS Math.round: floor(x + 0.5)).

    signed: round(127 + 127 v / scale) in 0 .. 254 (127 is 0); else round(255 v / scale) in 0 .. 255."""
    v = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0)
    if signed:
        return np.clip(np.floor(SIGNED_ZERO + SIGNED_ZERO * v / scale + 0.5), 0, 2 * SIGNED_ZERO).astype(np.uint8)
    return np.clip(np.floor(255 * v / scale + 0.5), 0, 255).astype(np.uint8)


def _round(x: np.ndarray) -> np.ndarray:
    """JavaScript's Math.round: halves go up."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _mix(start, end, f: np.ndarray) -> np.ndarray:
    """[len(f), 3] uint8: start + (end - start) f, rounded as palette.js rounds."""
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    return _round(start + (end - start) * np.asarray(f, np.float64)[:, None]).astype(np.uint8)


def ramp(start, end) -> np.ndarray:
    """A 256-entry table from `start` (index 0) to `end` (index 255)."""
    return _mix(start, end, np.arange(256) / 255)


def _diverging() -> np.ndarray:
    f = np.clip((np.arange(256) - SIGNED_ZERO) / SIGNED_ZERO, -1, 1)
    out = _mix(MIDDLE, NEGATIVE, -f)
    positive = f >= 0
    out[positive] = _mix(MIDDLE, POSITIVE, f[positive])
    return out


DIVERGING = _diverging()
GREYS = ramp(WHITE, NEAR_BLACK)
STATE = ramp(WHITE, DEEP_PURPLE)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    v = int(colour[1:], 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def head_colour(index: int) -> str:
    """The colour of an episode's head number `index` (Episode.head_list's order)."""
    return HEAD_COLOURS[index % len(HEAD_COLOURS)]


def head_ramp(index: int) -> np.ndarray:
    """[256, 3]: white to head `index`'s colour, for its weightings."""
    return ramp(WHITE, hex_rgb(head_colour(index)))


def signed_colours(values: np.ndarray, scale: float) -> np.ndarray:
    """[..., 3] uint8: each value's colour on a symmetric scale (the memory view's cells)."""
    return DIVERGING[palette_index(values, scale, signed=True)]


def unit_colours(values: np.ndarray, table: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """[..., 3] uint8: each value in [0, scale] through a 256-entry table (weights, bits)."""
    return table[palette_index(values, scale, signed=False)]
