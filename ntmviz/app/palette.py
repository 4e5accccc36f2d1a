"""The renderer's palettes in Python (static/palette.js is the browser's copy; a browser test
checks the two agree entry by entry), so figures paint each value the colour the screen does.

Every heatmap colours a value through a 256-entry table indexed by its palette index
(payload.palette_index):

    signed values (memory, keys, adds)   index round(127 + 127 v / scale) in 0 .. 254:
                                         127 is 0 (near white), 0 is -scale (blue), 254 +scale (red)
    unit values (weightings, bits)       index round(255 v / scale) in 0 .. 255

    DIVERGING [256, 3] uint8    the signed palette
    GREYS     [256, 3] uint8    white (0) to near black (1): inputs, targets, outputs, erase
    head_ramp(kind, h)          white (0) to the head's colour (1): its weightings
"""

from __future__ import annotations

import numpy as np

from .payload import SIGNED_ZERO, palette_index

READ_COLOURS = ("#1f6fb4", "#2a9d4b", "#17a2b8", "#7b4fc4")
WRITE_COLOURS = ("#d62728", "#f28e1c", "#d6479b", "#8c564b")
NEGATIVE, MIDDLE, POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)
WHITE, NEAR_BLACK = (255, 255, 255), (34, 34, 34)


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


def hex_rgb(colour: str) -> tuple[int, int, int]:
    v = int(colour[1:], 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def head_colour(kind: str, h: int) -> str:
    """The colour of head h of a kind ("read" blues and greens, "write" reds and oranges)."""
    colours = READ_COLOURS if kind == "read" else WRITE_COLOURS
    return colours[h % len(colours)]


def head_ramp(kind: str, h: int) -> np.ndarray:
    """[256, 3]: white to the head's colour, for its weightings."""
    return ramp(WHITE, hex_rgb(head_colour(kind, h)))


def signed_colours(values: np.ndarray, scale: float) -> np.ndarray:
    """[..., 3] uint8: each value's colour on a symmetric scale (the memory view's cells)."""
    return DIVERGING[palette_index(values, scale, signed=True)]


def unit_colours(values: np.ndarray, table: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """[..., 3] uint8: each value in [0, scale] through a 256-entry table (weights, bits)."""
    return table[palette_index(values, scale, signed=False)]
