"""Figures for papers: one view of an episode at one step, as SVG (vector) or PNG (3x by default).

    fig = figure(episode, "heads", step=30)        # memory | heads | focus | sequence | slots
    fig.save("heads.svg"); fig.save("heads.png", scale=4)
    save_figure(episode, "memory", "memory.svg", step=12, diff=True)
    figure(episode, "heads", 30, hidden={1, 5}, window=(20, 40))   # heads 1 and 5 left out, steps 20..39
    MemoryView(episode).save("fig.svg")            # a view saves what it shows at its step t
    ntmviz figure EPISODE --view heads --step 30 --out fig.svg

Every view reads the episode's declaration (episode.family, contract.py), never a model's kind:
its groups of heads (each head numbered in `episode.head_list()` order, which gives its colour,
`palette.head_colour(i)`), each group's stages and params (a param's kind, range, log scale,
centring and symbol say how it is drawn), its slot state, slot matrices, slot coordinates and
slot labels, and its measure (contract.MEASURES). What the episode lacks is left out.

    memory     the N x M memory after step t (or the change step t made), each shown head's
               weighting at t in a strip beside it and its most weighted slot outlined
    heads      each shown head's weighting over time (slots down, steps across), step t marked
    focus      each shown head's stages at t, each column on its own scale (its max printed), and
               its params of kind "number" and "distribution"; a stage declared signed (energies
               before a softmax) drawn from a centre line, v < 0 to its left, on max |v| ("±max")
    sequence   inputs, targets, outputs over time, the measure per step, and the vectors at t
               (params of kind "vector", and the read vectors of the group declared `reads`)
    slots      slot state (slot x time, and bars at t), slot matrices at t, slot coordinates with
               each shown head's weighting as discs; only when the family declares any of them

Each figure is drawn from the Episode's arrays with the renderer's palette (palette.py) and its
pooling (payload.py), so a cell has the colour the screen paints for the same value: memory
cells on the episode's symmetric scale (max |memory| over the episode; the change's own scale
with `diff`), weightings white to the head's colour over 0 .. 1, bits in greys, slot state and
slot matrices in the STATE ramp. Slot axes longer than the screen's are pooled as the screen
pools them (largest magnitude / largest weight). Slot labels (a story's sentences) are written
in full on the slot axis, which takes the room they need up to LABEL_ROOM px; a longer label
wraps onto a second line, and only past that is its middle shortened, the full text kept on
hover. Every figure has axes, labels and a colour bar; the SVG is vector (a rectangle per cell).

Bad requests (a view the episode cannot show, a step, head or time window out of range, an
unknown format) raise ConfigError with a one-line message.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..contract import MEASURES, HeadGroup
from ..episode import Episode
from ..errors import ConfigError
from ..files import atomic_write
from .drawing import INK, MUTED, Scene, text_width, to_png, to_svg
from .palette import DIVERGING, GREYS, STATE, head_colour, head_ramp, palette_index, signed_colours, unit_colours
from .payload import QUANTISE_ABOVE, blocks, describe, max_abs, pool_slots, pool_time, slot_pixels, time_pixels

VIEWS = ("memory", "heads", "focus", "sequence", "slots")
MEMORY_VIEWS = ("memory", "heads", "focus", "slots")
FORMATS = ("svg", "png")
DEFAULT_SCALE = 3.0  # PNG pixels per CSS pixel: about 300 dpi at the size the screen shows
MAX_SCALE = 12.0
BUSY = 0.05  # the head locations' zoom keeps slots some head weights at least this (views.js BUSY)
AXIS = 48  # room left of a numbered slot axis for its ticks and title
PAD = 10
TITLE_H = 24
MAX_WIDTH = 1180  # panels (one per head) reflow into rows no wider than this
LABEL_ROOM = 320  # the widest a slot label is written before it wraps
LABEL_SIZE = 10
LABEL_LINE = 12  # px per line of a slot label
MAX_LABELLED_PX = 900  # a labelled slot axis grows to give each row a line, up to this tall
MATRIX_ROWS = 160  # a slot x slot matrix is pooled to at most this many rows and columns (payload's MAX_MATRIX_PX)
BAR_NOTE = "bars ÷ the column's max"
SIGNED_NOTE = "bars ÷ the column's max (±: its max |value|)"  # a head with a signed stage
MIN_BAR = 0.002  # focus bars shorter than this fraction of their column are left out (under 0.1 px)
HIDDEN_FILL, HIDDEN_TEXT = "#dddddd", "#aaaaaa"  # a hidden head in a legend
WRONG = "#ee0000"
COST_UP, COST_DOWN = "#b2182b", "#2166ac"  # the diverging palette's ends: above / below the optimum
STATE_END = "#%02x%02x%02x" % tuple(int(c) for c in STATE[255])  # slot state's bars: the STATE ramp's top


@dataclass
class Figure:
    """One view at one step, ready to write: `svg()`, `png(scale)`, `save(path)`. In Jupyter it
    shows itself (as SVG)."""

    scene: Scene
    view: str
    step: int

    def svg(self) -> str:
        return to_svg(self.scene)

    def png(self, scale: float = DEFAULT_SCALE) -> bytes:
        return to_png(self.scene, _check_scale(scale))

    def save(self, path: str | os.PathLike, format: str | None = None, scale: float | None = None) -> Path:
        """Write the figure (atomically); the format from `format` or the file's suffix."""
        fmt = figure_format(path, format)
        data = self.svg().encode("utf-8") if fmt == "svg" else self.png(DEFAULT_SCALE if scale is None else scale)
        return atomic_write(path, data)

    def _repr_svg_(self) -> str:
        return self.svg()


def figure_format(path: str | os.PathLike, format: str | None = None) -> str:
    fmt = (format or Path(path).suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown figure format {fmt or Path(path).name!r}: use .svg or .png")
    return fmt


def _check_scale(scale: float) -> float:
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"the PNG scale must be a number, got {scale!r}") from None
    if not 1 <= scale <= MAX_SCALE:
        raise ConfigError(f"the PNG scale must be between 1 and {MAX_SCALE:g} pixels per screen pixel, got {scale:g}")
    return scale


def check_request(episode: Episode, view: str, step: int | None) -> int:
    """The step to draw (the last one by default), after checking the view fits the episode."""
    if not isinstance(episode, Episode):
        raise TypeError(f"figures need an ntmviz Episode, got {type(episode).__name__}")
    if view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}: expected one of {', '.join(VIEWS)}")
    if view in MEMORY_VIEWS and not episode.has_memory:
        raise ConfigError(f"this episode has no memory ({episode.title}), so it has no {view} view; "
                          "only the sequence view can be drawn")
    if view == "slots" and not episode.family.has_slots:
        raise ConfigError(f"this episode's model ({episode.title}) declares no slot state, slot matrices or "
                          "slot coordinates, so it has no slots view")
    T = episode.steps
    if T < 1:
        raise ConfigError("the episode has no steps to draw")
    if step is None:
        return T - 1
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise ConfigError(f"the step must be a whole number, got {step!r}")
    if not 0 <= step < T:
        raise ConfigError(f"step {step} is out of range: this episode has steps 0 to {T - 1}")
    return int(step)


def check_hidden(episode: Episode, hidden: Iterable[int] | None) -> frozenset[int]:
    """The head numbers (Episode.head_list order) to leave out, checked."""
    if hidden is None:
        return frozenset()
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise ConfigError(f"hidden must be a collection of head numbers, got {hidden!r}")
    count = len(episode.head_list())
    out = set()
    for i in hidden:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise ConfigError(f"hidden heads are head numbers, got {i!r}")
        if not 0 <= i < count:
            span = f"heads 0 to {count - 1}" if count else "no heads"
            raise ConfigError(f"hidden head {int(i)} is out of range: this episode has {span}")
        out.add(int(i))
    return frozenset(out)


def check_window(episode: Episode, window: tuple[int, int] | None) -> tuple[int, int]:
    """The steps [t0, t1) the timelines show: all of them by default."""
    T = episode.steps
    if window is None:
        return 0, T
    bad = ConfigError(f"the time window {window!r} must be (t0, t1), whole steps with 0 <= t0 < t1 <= {T}")
    try:
        t0, t1 = window
    except (TypeError, ValueError):
        raise bad from None
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in (t0, t1)) or not 0 <= t0 < t1 <= T:
        raise bad
    return int(t0), int(t1)


def figure(episode: Episode, view: str, step: int | None = None, *, diff: bool = False,
           zoom: bool | None = None, hidden: Iterable[int] = (), window: tuple[int, int] | None = None,
           marker: bool = True, title: str | None = None) -> Figure:
    """`view` of `episode` at `step` (default: the last step) as a Figure.

    diff: memory only, draw memory[t+1] - memory[t]. zoom: heads only, only the busy slots
    (None: as the app decides, when the heads use at most half the slots). hidden: head numbers
    (Episode.head_list order) to leave out of every drawing (the legend keeps them, greyed).
    window: (t0, t1), the steps t0 .. t1-1 the timelines show (heads, sequence, slot state).
    marker: heads, sequence and slot state, mark step t. title: replaces the view's title ('' for none)."""
    t = check_request(episode, view, step)
    hidden = check_hidden(episode, hidden)
    window = check_window(episode, window)
    draw = {"memory": _memory, "heads": _heads, "focus": _focus, "sequence": _sequence, "slots": _slots}[view]
    scene = draw(episode, t, diff=bool(diff), zoom=zoom, marker=marker, title=title, heads=heads_of(episode),
                 hidden=hidden, window=window)
    if scene.title:  # the title is never cut by the figure's edge (4% for the PNG's whole-pixel font sizes)
        scene.width = max(scene.width, PAD * 2 + 1.04 * text_width(scene.title, 13, bold=True))
    scene.description = f"ntmviz {view} view at step {t}: {describe(episode)}"
    return Figure(scene, view, t)


def save_figure(episode: Episode, view: str, path: str | os.PathLike, step: int | None = None, *,
                format: str | None = None, scale: float | None = None, **options) -> Path:
    """Write `view` of `episode` at `step` to `path` (.svg or .png); returns the path."""
    fmt = figure_format(path, format)
    if scale is not None:
        _check_scale(scale)
    return figure(episode, view, step, **options).save(path, fmt, scale)


# ---- heads ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Head:
    """One head as the figures draw it: its number in episode.head_list() (which gives its
    colour), its group's declaration, its index in the group, its label and its group's record."""

    index: int
    group: HeadGroup
    h: int
    label: str
    rec: Any  # the group's HeadRecord

    @property
    def colour(self) -> str:
        return head_colour(self.index)

    @property
    def ramp(self) -> np.ndarray:
        return head_ramp(self.index)

    @property
    def key(self) -> str:
        """The head in item names: "read-1"."""
        return f"{self.group.name}-{self.h + 1}"


def heads_of(episode: Episode) -> list[Head]:
    """Every head of the episode, in Episode.head_list order."""
    return [Head(i, episode.family.group(g), h, label, rec)
            for i, (g, h, label, rec) in enumerate(episode.head_list())]


def _shown(heads: list[Head], hidden: frozenset[int]) -> list[Head]:
    return [hd for hd in heads if hd.index not in hidden]


# ---- shared pieces ----------------------------------------------------------------------------------
def nice_ticks(n: int, px: float, min_gap: float) -> list[int]:
    """Indices 0 .. n-1 to label along px pixels, at least min_gap apart (layout.js niceTicks)."""
    max_labels = max(1, int(px // min_gap))
    raw = max(1.0, (n - 1) / max_labels)
    steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000]
    step = next((s for s in steps if s >= raw), int(np.ceil(raw)))
    return list(range(0, n, step))


def fmt(v: float) -> str:
    """A number as the renderer writes it (data.js fmt)."""
    if v is None or not np.isfinite(v):
        return "–"
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e4):
        mantissa, exp = f"{v:.2e}".split("e")
        return f"{mantissa}e{int(exp):+d}"
    return f"{v:.{1 if a >= 100 else 3}f}"


def _title(scene: Scene, text: str, title: str | None) -> None:
    """The figure's title: the view's own `text`, or `title` when given ('' draws none)."""
    scene.title = text if title is None else title
    if scene.title:
        scene.text(PAD, PAD, scene.title, size=13, bold=True, baseline="top")


def _cut(text: str, room: float, size: float) -> str:
    """`text` cut at its end with "…" to fit `room` px (a single word wider than a line)."""
    if text_width(text, size) <= room:
        return text
    while text and text_width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


def fit_label(text: str, room: float = LABEL_ROOM, size: float = LABEL_SIZE, lines: int = 2) -> tuple[list[str], str]:
    """A slot label as the lines it is written in, within `room` px each, and the text to show on
    hover ('' when nothing was left out). Whole when it fits; else wrapped at spaces onto up to
    `lines` lines; only then is the middle left out ("…"), keeping its first line and its last
    words (a story's sentence ends with where someone went)."""
    if text_width(text, size) <= room:
        return [text], ""
    words = text.split()
    wrapped: list[str] = []
    for w in words:
        if wrapped and text_width(f"{wrapped[-1]} {w}", size) <= room:
            wrapped[-1] = f"{wrapped[-1]} {w}"
        else:
            wrapped.append(w)
    if len(wrapped) <= lines and all(text_width(x, size) <= room for x in wrapped):
        return wrapped, ""
    if lines < 2:
        head, tail = [], words
    else:
        head = [_cut(wrapped[0], room, size)]
        tail = words[len(wrapped[0].split()):]
    while len(tail) > 1 and text_width("… " + " ".join(tail), size) > room:
        tail = tail[1:]
    return head + [_cut("… " + " ".join(tail), room, size)], text


def _pooled_labels(labels: list[str], rows: int) -> list[str]:
    """One label per display row: the slot's own, or "first … last" for a pooled block (payload.py's rule)."""
    b = blocks(len(labels), rows)
    return [labels[b[r]] if b[r + 1] - b[r] == 1 else f"{labels[b[r]]} … {labels[b[r + 1] - 1]}"
            for r in range(len(b) - 1)]


def _slot_text(N: int, D: int, r: int) -> str:
    b = blocks(N, D)
    n0, n1 = int(b[r]), int(b[r + 1])
    return f"{n0}–{n1 - 1}" if n1 - n0 > 1 else str(n0)


def _rows(episode: Episode) -> tuple[int, int]:
    """(D rows drawn for the slot axis, its height in px on screen), as payload.py pools it."""
    N = episode.slots
    return min(N, slot_pixels(N)), slot_pixels(N)


class SlotAxis:
    """A slot axis as the figures draw it: D display rows (pooled as payload.py pools them), the
    rows shown (all, or a zoom's), and the text of each: the episode's slot labels when it names
    its slots, the slots a zoomed row covers, else numbered ticks. `room` is the px it takes left
    of the axis line (labels get what they need, up to LABEL_ROOM each)."""

    def __init__(self, episode: Episode, D: int, shown: list[int] | None = None, title: str = "slot",
                 labels: bool = True):
        self.N, self.D, self.title = episode.slots, D, title
        self.shown = list(range(D)) if shown is None else list(shown)
        self.labelled = labels and episode.slot_labels is not None
        self.lines: list[tuple[list[str], str]] | None = None
        if self.labelled:
            pooled = _pooled_labels([str(x) for x in episode.slot_labels], D)
            self.lines = [fit_label(pooled[r]) for r in self.shown]
        elif shown is not None:
            self.lines = [([_slot_text(self.N, D, r)], "") for r in self.shown]
        self.line_count = max((len(x) for x, _ in self.lines), default=1) if self.lines else 1
        widest = max((text_width(x, LABEL_SIZE) for ls, _ in self.lines for x in ls), default=0) if self.lines else 0
        self.room = max(AXIS, widest + 29)  # tick 5, the text, a gap, the rotated title

    def height(self, base: float) -> float:
        """The axis's height in px: `base`, or taller so each labelled row has room for its lines."""
        if not self.labelled:
            return float(base)
        per = LABEL_LINE * self.line_count + 2
        return float(max(base, min(MAX_LABELLED_PX, len(self.shown) * per)))

    def draw(self, scene: Scene, x: float, y: float, h: float) -> None:
        """Ticks and their text right-aligned left of x (row i at the middle of its h / rows px),
        and the axis title."""
        if self.lines is None:
            for i in nice_ticks(self.N, h, 18):
                ty = y + (i + 0.5) * h / self.N
                scene.line(x - 3, ty, x, ty, stroke=MUTED)
                scene.text(x - 5, ty, str(i), size=10, fill=MUTED, anchor="end", baseline="middle")
        else:
            n = len(self.shown)
            row_h = h / n
            every = max(1, math.ceil((LABEL_LINE * self.line_count if self.labelled else 14) / row_h))
            for i, (lines, hover) in enumerate(self.lines):
                if i % every:
                    continue
                cy = y + (i + 0.5) * row_h
                scene.line(x - 3, cy, x, cy, stroke=MUTED)
                first = cy - (len(lines) - 1) * LABEL_LINE / 2
                for j, text in enumerate(lines):
                    scene.text(x - 5, first + j * LABEL_LINE, text, size=LABEL_SIZE,
                               fill=INK if self.labelled else MUTED, anchor="end", baseline="middle", hover=hover)
        scene.text(x - self.room + 12, y + h / 2, self.title, size=11, anchor="middle", baseline="middle",
                   rotate=-90)


def axis_bottom(scene: Scene, x: float, y: float, w: float, n: int, label: str, start: int = 0) -> None:
    """Ticks under n columns across w px, labelled start .. start + n - 1, and the axis title."""
    for i in nice_ticks(n, w, 30):
        tx = x + (i + 0.5) * w / n
        scene.line(tx, y, tx, y + 3, stroke=MUTED)
        scene.text(tx, y + 4, str(start + i), size=10, fill=MUTED, anchor="middle", baseline="top")
    scene.text(x + w / 2, y + 18, label, size=11, anchor="middle", baseline="top")


def colour_bar(scene: Scene, x: float, y: float, w: float, h: float, table: np.ndarray, signed: bool,
               scale: float, label: str, name: str, ends: tuple[str, ...] | None = None) -> float:
    """A vertical bar, one band per palette entry (top: +scale or the high end), with its ends
    (and 0) labelled (`ends` replaces the labels: top first). Returns the x right of its label."""
    if signed:
        idx = np.arange(254, -1, -1)  # +scale at the top, 0 in the middle, -scale at the bottom
        texts = ends or (f"+{scale:.3g}", "0", f"−{scale:.3g}")
        ticks = list(zip((0.0, 0.5, 1.0), texts))
    else:
        idx = np.arange(255, -1, -1)
        texts = ends or (f"{scale:.3g}", "0")
        ticks = list(zip((0.0, 1.0), texts))
    scene.heatmap(x, y, w, h, table[idx][:, None, :], name=name)
    scene.rect(x, y, w, h, stroke="#bbbbbb", width=0.75)
    for f, text in ticks:
        ty = y + f * h
        scene.line(x + w, ty, x + w + 3, ty, stroke=MUTED)
        scene.text(x + w + 5, ty, text, size=10, fill=MUTED, baseline="middle")
    room = 7 + max(text_width(text, 10) for _, text in ticks)  # past the longest tick label
    scene.text(x + w + room + 8, y + h / 2, label, size=11, anchor="middle", baseline="middle", rotate=-90)
    return x + w + room + 16


def _legend(scene: Scene, x: float, y: float, width: float, heads: list[Head], hidden: frozenset[int],
            suffix: str = "") -> float:
    """Every head's colour and label in rows that fit `width`, hidden heads greyed (and said so).
    Returns the y below it."""
    lx, ly = x, y
    for hd in heads:
        off = hd.index in hidden
        text = hd.label + suffix + (" (hidden)" if off else "")
        w = 14 + text_width(text, 10) + 16
        if lx > x and lx + w > x + width:
            lx, ly = x, ly + 16
        scene.rect(lx, ly, 10, 10, fill=HIDDEN_FILL if off else hd.colour, name=f"legend-{hd.key}")
        scene.text(lx + 14, ly + 5, text, size=10, fill=HIDDEN_TEXT if off else INK, baseline="middle")
        lx += w
    return ly + 16 if heads else y


@dataclass
class Grid:
    """Panels (one per head) in rows no wider than MAX_WIDTH: the first of each row has the full
    slot axis (`first`, with the slot labels), the others a numbered one (`other`), beside the
    same rows. `place(i)` gives panel i's (left, top, axis)."""

    first: SlotAxis
    other: SlotAxis
    core_w: float  # a panel's width right of its axis
    panel_h: float
    count: int
    top: float

    def __post_init__(self) -> None:
        room = MAX_WIDTH - 2 * PAD - self.first.room - self.core_w
        self.per_row = max(1, min(self.count, 1 + int(max(0.0, room) // (self.other.room + self.core_w))))

    def place(self, i: int) -> tuple[float, float, SlotAxis]:
        col, row = i % self.per_row, i // self.per_row
        x = PAD + (0 if col == 0 else self.first.room + self.core_w + (col - 1) * (self.other.room + self.core_w))
        return x, self.top + row * self.panel_h, self.first if col == 0 else self.other

    @property
    def width(self) -> float:
        k = min(self.count, self.per_row)
        return 2 * PAD + (self.first.room + self.core_w + (k - 1) * (self.other.room + self.core_w) if k else 0)

    @property
    def bottom(self) -> float:
        return self.top + (-(-self.count // self.per_row)) * self.panel_h


def _window_text(window: tuple[int, int], T: int) -> str:
    t0, t1 = window
    return "" if (t0, t1) == (0, T) else f", steps {t0}–{t1 - 1}"


# ---- memory -----------------------------------------------------------------------------------------
def memory_values(episode: Episode, t: int, diff: bool) -> tuple[np.ndarray, float]:
    """([D, M] the values the memory view paints at step t, the colour scale). A static memory
    is the same at every step: it has no change to show, so `diff` draws the memory itself."""
    D, _ = _rows(episode)
    mem = np.asarray(episode.memory, dtype=np.float64)
    if episode.static_memory:
        return pool_slots(mem, D, 0, True), max_abs(mem)
    if diff:
        values, scale = mem[t + 1] - mem[t], max_abs(np.diff(mem, axis=0))
    else:
        values, scale = mem[t + 1], max_abs(episode.memory)
    return pool_slots(values, D, 0, True), scale


def _memory(episode: Episode, t: int, *, diff: bool, heads: list[Head], hidden: frozenset[int],
            title: str | None, **_) -> Scene:
    N, M = episode.slots, episode.width
    D, base = _rows(episode)
    axis = SlotAxis(episode, D)
    mh = axis.height(base)
    shown = _shown(heads, hidden)
    static = episode.static_memory
    diff = diff and not static
    values, scale = memory_values(episode, t, diff)
    cell_w = max(3, min(24, 230 // max(1, M)))
    strips_x = PAD + axis.room
    x0, y0 = strips_x + len(shown) * 7 + 2, PAD + TITLE_H + 6
    mw = M * cell_w
    bar_x = x0 + mw + 8 + len(shown) * 7
    scene = Scene(0, 0)
    if static:
        text = f"Memory at step {t} (read-only: the same at every step)"
    else:
        text = f"Change made by step {t}" if diff else f"Memory after step {t}"
    _title(scene, text, title)
    scene.heatmap(x0, y0, mw, mh, signed_colours(values, scale), name="memory")
    scene.rect(x0, y0, mw, mh, stroke="#bbbbbb", width=0.75)
    for i, hd in enumerate(shown):
        w = pool_slots(np.asarray(hd.rec.weights[t, hd.h]), D, 0, False)
        scene.heatmap(strips_x + i * 7, y0, 5, mh, unit_colours(w, hd.ramp)[:, None, :], name=f"strip-{hd.key}")
        if not np.nan_to_num(w).max() > 0:
            continue  # a head that weights nothing (a gated-off write) has no focus to mark
        best = int(np.nanargmax(w))
        scene.rect(x0 - 0.75, y0 + best * mh / D - 0.75, mw + 1.5, max(1.0, mh / D) + 1.5, stroke=hd.colour,
                   width=1.5, name=f"focus-{hd.key}")
        ay, ax = y0 + (best + 0.5) * mh / D, x0 + mw + 3 + i * 7
        scene.polygon([(ax, ay), (ax + 6, ay - 4), (ax + 6, ay + 4)], fill=hd.colour)
    axis.draw(scene, strips_x - 2, y0, mh)
    axis_bottom(scene, x0, y0 + mh, mw, M, "width")
    right = colour_bar(scene, bar_x, y0, 10, mh, DIVERGING, True, scale, "change" if diff else "value", "colour-bar")
    scene.width = max(right + PAD, 300)
    bottom = _legend(scene, PAD, y0 + mh + 40, scene.width - 2 * PAD, heads, hidden, " weighting")
    scene.height = bottom + PAD
    return scene


# ---- head locations over time -------------------------------------------------------------------------
def head_overview(episode: Episode, window: tuple[int, int] | None = None) -> dict[str, tuple[np.ndarray, bool]]:
    """{group: ([P, H, D] pooled weightings over the window's steps, whether the screen gets them
    as palette indices)}, pooled as payload.py pools its "<group>.weights.time" overviews."""
    D, _ = _rows(episode)
    t0, t1 = (0, episode.steps) if window is None else window
    P = min(t1 - t0, time_pixels(t1 - t0))
    out = {}
    for group, rec in episode.head_records():
        a = pool_time(pool_slots(np.asarray(rec.weights[t0:t1]), D, 2, False), P)
        big = D < episode.slots or P < t1 - t0 or a.size > QUANTISE_ABOVE
        out[group] = (a, big)
    return out


def busy_rows(episode: Episode, hidden: Iterable[int] = (), window: tuple[int, int] | None = None) -> list[int]:
    """The rows (of D) some shown head weights at least BUSY at some step of the window, as
    views.js busyRows sees them (from the values the screen receives)."""
    D, _ = _rows(episode)
    hidden = frozenset(hidden)
    top = np.zeros(D)
    overview = head_overview(episode, window)
    for hd in heads_of(episode):
        if hd.index in hidden:
            continue
        a, big = overview[hd.group.name]
        a = a[:, hd.h]
        seen = palette_index(a, 1.0, False) / 255 if big else np.asarray(a, np.float64)
        if seen.size:
            top = np.maximum(top, np.nan_to_num(seen).max(axis=0))
    return [int(r) for r in np.flatnonzero(top >= BUSY)]


def zoom_rows(episode: Episode, zoom: bool | None, hidden: Iterable[int] = (),
              window: tuple[int, int] | None = None) -> list[int] | None:
    """The rows the head locations show: None for all D, or the busy ones (the spec's rule: by
    default when they are at most half of D and D >= 16)."""
    D, _ = _rows(episode)
    busy = busy_rows(episode, hidden, window)
    few = 0 < len(busy) <= D / 2 and D >= 16
    on = (few if zoom is None else bool(zoom)) and 0 < len(busy) < D
    return busy if on else None


def _heads(episode: Episode, t: int, *, zoom: bool | None, marker: bool, heads: list[Head],
           hidden: frozenset[int], window: tuple[int, int], title: str | None, **_) -> Scene:
    T = episode.steps
    t0, t1 = window
    Tw = t1 - t0
    D, base = _rows(episode)
    pw = time_pixels(Tw)
    rows = zoom_rows(episode, zoom, hidden, window)
    axis = SlotAxis(episode, D, rows)
    if rows is not None:
        base = min(base, max(60, len(rows) * 16))
    ph = axis.height(base)
    shown = _shown(heads, hidden)
    overview = head_overview(episode, window)
    grid = Grid(axis, SlotAxis(episode, D, rows, labels=False), pw + 82, 20 + ph + 40, len(shown),
                PAD + TITLE_H + 4)
    scene = Scene(0, 0)
    marked = marker and t0 <= t < t1
    _title(scene, f"Head locations over time{_window_text(window, T)}" + (f" (step {t} marked)" if marked else ""),
           title)
    for i, hd in enumerate(shown):
        px, py, axis = grid.place(i)
        x0, y0 = px + axis.room, py + 20
        scene.text(x0, py + 4, f"{hd.label} head", size=11, fill=hd.colour, bold=True, baseline="top")
        a, _ = overview[hd.group.name]
        img = a[:, hd.h, :].T  # [D, P]: slots down, time across
        if rows is not None:
            img = img[rows]
        scene.heatmap(x0, y0, pw, ph, unit_colours(img, hd.ramp), name=f"heads-{hd.key}")
        scene.rect(x0 - 0.5, y0 - 0.5, pw + 1, ph + 1, stroke="#cccccc", width=1)
        if rows is not None:
            for j in range(1, len(rows)):
                if rows[j] != rows[j - 1] + 1:  # a dashed line where the shown rows skip slots
                    ly = round(y0 + j * ph / len(rows)) + 0.5
                    scene.line(x0, ly, x0 + pw, ly, stroke="#999999", width=1, dash=(3, 3))
        axis.draw(scene, x0 - 2, y0, ph)
        axis_bottom(scene, x0, y0 + ph, pw, Tw, "step", start=t0)
        if marked:
            x = x0 + (t - t0 + 0.5) * pw / Tw
            cw = max(2.0, pw / Tw)
            scene.rect(x - cw / 2 - 0.5, y0 - 0.5, cw + 1, ph + 1, stroke="#000000", width=1)
            scene.polygon([(x, y0 - 1), (x - 4, y0 - 7), (x + 4, y0 - 7)], fill="#000000")
        colour_bar(scene, x0 + pw + 10, y0, 8, ph, hd.ramp, False, 1.0, "weight", f"colour-bar-{hd.key}")
    y = grid.bottom + 4
    if not shown:
        scene.text(PAD, y, "every head is hidden", size=11, fill=MUTED, baseline="top")
        y += 20
    scene.width = max(grid.width, 320)
    if hidden:
        y = _legend(scene, PAD, y, scene.width - 2 * PAD, heads, hidden)
    scene.height = y + PAD
    return scene


# ---- focus --------------------------------------------------------------------------------------------
def range_fraction(v: float, span: tuple[float, float], log: bool) -> float:
    """Where v sits on a param's declared range, 0 .. 1 (clipped). On a log scale: log(v / low)
    over log(high / low), or log1p(v - low) over log1p(high - low) when low <= 0 (the NTM's
    β in 0 .. 50: 0 stays at 0)."""
    lo, hi = float(span[0]), float(span[1])
    if not np.isfinite(v) or hi == lo:
        return 0.0
    if log and lo > 0:
        f = math.log(max(v, lo) / lo) / math.log(hi / lo)
    elif log:
        f = math.log1p(max(v - lo, 0.0)) / math.log1p(hi - lo)
    else:
        f = (v - lo) / (hi - lo)
    return float(np.clip(f, 0.0, 1.0))


def focus_columns(hd: Head, t: int, D: int) -> list[tuple[str, np.ndarray, float, bool]]:
    """[(stage name, [D] its weighting at t pooled to the rows, its scale at t, signed)] for each of
    the group's stages, then "weights". An unsigned stage's scale is its max (rows pooled to their
    largest value); a signed one's (`Stage.signed`: it may be < 0) its max |value| (rows pooled to
    the value of largest magnitude, a value that is not finite drawn as 0)."""
    signed = {s.name for s in hd.group.stages if s.signed}
    out = []
    for name in hd.group.stage_names:
        a = hd.rec.weights if name == "weights" else hd.rec.stages[name]
        row = np.asarray(a[t, hd.h], np.float64)
        if name in signed:
            w = pool_slots(np.where(np.isfinite(row), row, 0.0), D, 0, True)
            out.append((name, w, float(np.abs(w).max()) if w.size else 0.0, True))
        else:
            w = np.nan_to_num(pool_slots(row, D, 0, False))
            out.append((name, w, float(w.max()) if w.size else 0.0, False))
    return out


def _param_label(p) -> str:
    return f"{p.symbol} {p.name}" if p.symbol else p.name


def _params_height(group: HeadGroup) -> float:
    numbers = sum(p.kind == "number" for p in group.params)
    dists = sum(16 * (len(p.labels) + 1) if p.labels else 66 for p in group.params if p.kind == "distribution")
    return 16 * numbers + dists


def _focus_params(scene: Scene, hd: Head, t: int, x: float, y: float, width: float) -> None:
    """A head's params at step t under its stages: numbers as text (on a bar over their declared
    range, log scale when declared), distributions as small bars."""
    numbers = [p for p in hd.group.params if p.kind == "number"]
    texts = [f"{_param_label(p)} {fmt(float(hd.rec.params[p.name][t, hd.h]))}" for p in numbers]
    bar_x = x + max((text_width(s, 10) for s in texts), default=0) + 8
    for p, text in zip(numbers, texts):
        v = float(hd.rec.params[p.name][t, hd.h])
        scene.text(x, y, text, size=10, baseline="top")
        if p.range is not None:
            scene.rect(bar_x, y + 2, 60, 8, fill="#eeeeee")
            scene.rect(bar_x, y + 2, 60 * range_fraction(v, p.range, p.log), 8, fill=hd.colour,
                       name=f"param-{hd.key}-{p.name}")
            scene.text(bar_x + 64, y, f"{p.range[0]:g}–{p.range[1]:g}" + (" log" if p.log else ""), size=9,
                       fill=MUTED, baseline="top")
        y += 16
    for p in (p for p in hd.group.params if p.kind == "distribution"):
        a = np.nan_to_num(np.asarray(hd.rec.params[p.name][t, hd.h], np.float64))
        K = a.shape[-1]
        if len(p.labels) == K:  # entries with names (a DNC's read modes): a line each, as numbers are
            scene.text(x, y, _param_label(p), size=10, fill=MUTED, baseline="top")
            texts = [f"{name} {fmt(float(v))}" for name, v in zip(p.labels, a)]
            entry_x = x + max(text_width(s, 10) for s in texts) + 8
            for j, text in enumerate(texts):
                ey = y + 16 * (j + 1)
                scene.text(x, ey, text, size=10, baseline="top")
                scene.rect(entry_x, ey + 2, 60, 8, fill="#eeeeee")
                scene.rect(entry_x, ey + 2, 60 * float(np.clip(a[j], 0, 1)), 8, fill=hd.colour,
                           name=f"param-{hd.key}-{p.name}")
            y += 16 * (K + 1)
            continue
        centre = (K - 1) // 2
        sw, sh = max(3.0, min(16.0, (width - 2) / K - 2)), 32
        scene.text(x, y, _param_label(p), size=10, fill=MUTED, baseline="top")
        for j in range(K):
            bx = x + j * (sw + 2)
            v = float(np.clip(a[j], 0, 1))
            scene.rect(bx, y + 14, sw, sh, fill="#eeeeee")
            scene.rect(bx, y + 14 + sh * (1 - v), sw, sh * v, fill=hd.colour, name=f"param-{hd.key}-{p.name}")
            if K <= 9 or j in (0, K - 1, centre):
                label = f"{'+' if j - centre > 0 else ''}{j - centre}" if p.centred else str(j)
                scene.text(bx + sw / 2, y + 16 + sh, label, size=9, fill=MUTED, anchor="middle", baseline="top")
        scene.line(x, y + 14 + sh, x + K * (sw + 2) - 2, y + 14 + sh, stroke=MUTED, width=0.75)
        y += 66


def _signed_column(scene: Scene, hd: Head, stage: str, w: np.ndarray, m: float, x: float, y0: float,
                   col_w: float, ph: float, bar_h: float, edge: float) -> None:
    """A signed stage's column: its centre line (the baseline, 0) at x + 1 + half, each row's bar
    |w| / m of half long, to the right of the line for w > 0 and to its left for w < 0."""
    half = (col_w - 2) / 2
    centre = x + 1 + half
    scene.line(centre, y0 - 0.5, centre, y0 + ph + 0.5, stroke=INK, width=1, name=f"baseline-{hd.key}-{stage}")
    if m <= 0:
        return
    for r in np.flatnonzero(np.abs(w) / m >= MIN_BAR):
        length = float(abs(w[r]) / m) * half
        scene.rect(centre if w[r] > 0 else centre - length, y0 + r * bar_h + edge, length,
                   max(1.0, bar_h - 2 * edge), fill=hd.colour, name=f"bar-{hd.key}-{stage}")


def _focus(episode: Episode, t: int, *, heads: list[Head], hidden: frozenset[int], title: str | None,
           **_) -> Scene:
    D, base = _rows(episode)
    axis = SlotAxis(episode, D)
    ph = axis.height(base)
    shown = _shown(heads, hidden)
    columns = {hd.index: focus_columns(hd, t, D) for hd in shown}
    heads_text = {hd.index: [("0" if m <= 0 else f"±{fmt(m)}" if signed else f"max {fmt(m)}")
                             for _, _, m, signed in columns[hd.index]] for hd in shown}
    col_w = max([56.0] + [text_width(s, 9) + 4 for texts in heads_text.values() for s in texts]
                + [text_width(name, 10) + 4 for hd in shown for name in hd.group.stage_names])
    gap = 10
    cols = max([1] + [len(hd.group.stage_names) for hd in shown])
    params_w = 220 if any(hd.group.params for hd in shown) else 0
    notes = {hd.index: SIGNED_NOTE if any(c[3] for c in columns[hd.index]) else BAR_NOTE for hd in shown}
    notes_w = max((text_width(n, 9) for n in notes.values()), default=text_width(BAR_NOTE, 9))
    block_w = max(cols * (col_w + gap), params_w, notes_w + 8)
    params_h = max([0.0] + [_params_height(hd.group) for hd in shown])
    grid = Grid(axis, SlotAxis(episode, D, labels=False), block_w + 16, 46 + ph + 16 + params_h + 12, len(shown),
                PAD + TITLE_H + 4)
    scene = Scene(0, 0)
    stage_lists = {hd.group.stage_names for hd in shown}
    text = f"Focus at step {t}"
    if len(stage_lists) == 1:
        text += ": " + " → ".join(next(iter(stage_lists)))
    _title(scene, text + " (each stage on its own scale)", title)
    bar_h = ph / D
    edge = 1 if bar_h > 4 else 0
    for i, hd in enumerate(shown):
        px, py, axis = grid.place(i)
        x0, y0 = px + axis.room, py + 46
        scene.text(x0 + 2, py + 2, f"{hd.label} head", size=11, fill=hd.colour, bold=True, baseline="top")
        axis.draw(scene, x0 - 2, y0, ph)
        for j, ((stage, w, m, signed), head_text) in enumerate(zip(columns[hd.index], heads_text[hd.index])):
            x = x0 + j * (col_w + gap)
            scene.text(x, py + 18, stage, size=10, fill=MUTED, baseline="top")
            scene.text(x, py + 31, head_text, size=9, fill=INK, baseline="top")
            scene.rect(x + 0.5, y0 - 0.5, col_w, ph + 1, stroke="#dddddd", width=1)
            if signed:
                _signed_column(scene, hd, stage, w, m, x, y0, col_w, ph, bar_h, edge)
                continue
            # the baseline the bars grow from: a flat stage reads as equal bars from it, not as nothing
            scene.line(x + 0.5, y0 - 0.5, x + 0.5, y0 + ph + 0.5, stroke=INK, width=1,
                       name=f"baseline-{hd.key}-{stage}")
            if m <= 0:
                continue
            for r in np.flatnonzero(w / m >= MIN_BAR):
                scene.rect(x + 1, y0 + r * bar_h + edge, float(w[r] / m) * (col_w - 2), max(1.0, bar_h - 2 * edge),
                           fill=hd.colour, name=f"bar-{hd.key}-{stage}")
        scene.text(x0, y0 + ph + 4, notes[hd.index], size=9, fill=MUTED, baseline="top")
        _focus_params(scene, hd, t, x0 - min(axis.room - 8, 40), y0 + ph + 18, block_w)
    y = grid.bottom
    if not shown:
        scene.text(PAD, y + 4, "every head is hidden", size=11, fill=MUTED, baseline="top")
        y += 24
    scene.width = max(grid.width, 320)
    if hidden:
        y = _legend(scene, PAD, y, scene.width - 2 * PAD, heads, hidden)
    scene.height = y + PAD
    return scene


# ---- sequence -----------------------------------------------------------------------------------------
def _pooled_time(a: np.ndarray, cols: int) -> np.ndarray:
    """[T, rows] -> [rows, cols]: the largest |value| of each block of steps (as the screen's Heat)."""
    T = a.shape[0]
    a = np.abs(np.nan_to_num(np.asarray(a, np.float64)))
    if cols < T:
        a = np.maximum.reduceat(a, blocks(T, cols)[:-1], axis=0)
    return a.T


def _wrong_cells(episode: Episode) -> np.ndarray | None:
    """[T, O] the output cells to outline on scored steps, by the measure: the wrong bits, or
    the wrongly chosen answer; None for a measure that marks no cells."""
    out, tgt = np.asarray(episode.outputs), np.asarray(episode.targets)
    if episode.measure == "bit_errors":
        return (out > 0.5) != (tgt > 0.5)
    if episode.measure == "answer_errors":
        chosen = np.eye(out.shape[1], dtype=bool)[out.argmax(-1)]
        return chosen & (out.argmax(-1) != tgt.argmax(-1))[:, None]
    return None


def step_vectors(episode: Episode, t: int, heads: list[Head]) -> list[tuple[Head, str, np.ndarray, bool]]:
    """[(head, name, [K] values at step t, signed)]: each head's params of kind "vector", then
    its read vector when its group is the one declared `reads`."""
    out = []
    for hd in heads:
        for p in hd.group.params:
            if p.kind == "vector":
                out.append((hd, p.name, np.asarray(hd.rec.params[p.name][t, hd.h], np.float64), p.signed))
        if hd.group.reads and episode.reads is not None:
            out.append((hd, "read", np.asarray(episode.reads[t, hd.h], np.float64), True))
    return out


def _sequence(episode: Episode, t: int, *, marker: bool, heads: list[Head], hidden: frozenset[int],
              window: tuple[int, int], title: str | None, **_) -> Scene:
    T = episode.steps
    t0, t1 = window
    Tw = t1 - t0
    pw = time_pixels(Tw)
    cols = min(Tw, round(pw))
    cw = pw / Tw
    I = episode.inputs.shape[1] if episode.inputs is not None else 0
    O = episode.outputs.shape[1] if episode.outputs is not None else 0
    cell_h = max(3, min(10, 80 // max(I, O, 1)))
    measure = MEASURES[episode.measure]
    scored = episode.scored()
    scores = episode.step_scores() if episode.targets is not None and episode.outputs is not None else None
    vectors = step_vectors(episode, t, _shown(heads, hidden)) if episode.has_memory else []
    names = [f"{hd.label} {name}" for hd, name, _, _ in vectors]
    x0 = PAD + max([64.0] + [text_width(s, 10) + 12 for s in names])
    top = PAD + TITLE_H + 4
    strips = [(name, a) for name, a in (("inputs", episode.inputs), ("targets", episode.targets),
                                        ("outputs", episode.outputs)) if a is not None]
    scene = Scene(0, 0)
    marked = marker and t0 <= t < t1
    if scores is None:
        status = "no targets"
    elif not scored[t]:
        status = "not scored"
    elif measure.marks == "cost":
        status = f"{fmt(float(scores[t]))} {measure.unit} at this step, {fmt(episode.score())} over the episode"
    else:
        status = f"{scores[t]:g} {measure.unit} at this step, {episode.score():g} in the episode"
    _title(scene, f"Sequence{_window_text(window, T)}, step {t}: {status}", title)
    y = top
    for name, a in strips:
        rows = a.shape[1]
        scene.heatmap(x0, y, pw, rows * cell_h, unit_colours(_pooled_time(a[t0:t1], cols), GREYS), name=name)
        scene.rect(x0 - 0.5, y - 0.5, pw + 1, rows * cell_h + 1, stroke="#cccccc", width=1)
        scene.text(x0 - 6, y + rows * cell_h / 2, name, size=11, anchor="end", baseline="middle")
        cells = _wrong_cells(episode) if name == "outputs" and scores is not None and cw >= 3 else None
        if cells is not None:
            for s, o in zip(*np.nonzero(cells[t0:t1] & scored[t0:t1, None])):
                scene.rect(x0 + s * cw + 0.75, y + o * cell_h + 0.75, max(1.0, cw - 1.5), cell_h - 1.5,
                           stroke=WRONG, width=1.5)
        y += rows * cell_h + 8
    strips_bottom = y
    if scores is not None:  # the measure per step, labelled with its unit
        scene.text(x0, y + 2, f"{measure.unit}, by step", size=10, fill=MUTED, baseline="top")
        y += 16
        part = np.asarray(scores[t0:t1], np.float64)
        if measure.marks == "cost":
            sh = 40
            scale = max_abs(np.asarray(scores, np.float64))  # the episode's, so a window keeps its scale
            mid = y + sh / 2
            for s in np.flatnonzero(part):
                v = float(part[s])
                h = abs(v) / scale * sh / 2
                scene.rect(x0 + s * cw, mid - h if v > 0 else mid, max(1.0, cw - 0.5), h,
                           fill=COST_UP if v > 0 else COST_DOWN, name="cost")
            scene.line(x0, mid, x0 + pw, mid, stroke=MUTED, width=0.75, name="cost-zero")
            scene.rect(x0 - 0.5, y - 0.5, pw + 1, sh + 1, stroke="#cccccc", width=1)
            scene.text(x0 + pw + 6, y, f"+{fmt(scale)}", size=9, fill=MUTED, baseline="top")
            scene.text(x0 + pw + 6, mid, "0", size=9, fill=MUTED, baseline="middle")
            scene.text(x0 + pw + 6, y + sh, f"−{fmt(scale)}", size=9, fill=MUTED, baseline="bottom")
            scene.text(x0 - 6, mid, "cost", size=11, anchor="end", baseline="middle")
        else:
            sh = 8
            for s in np.flatnonzero(part > 0):
                scene.rect(x0 + s * cw, y, max(1.0, cw - 0.5), sh, fill=WRONG, name="wrong")
            scene.rect(x0 - 0.5, y - 0.5, pw + 1, sh + 1, stroke="#cccccc", width=1)
            scene.text(x0 - 6, y + 4, "wrong", size=11, anchor="end", baseline="middle")
        y += sh + 2
    if strips or scores is not None:
        axis_bottom(scene, x0, y, pw, Tw, "step", start=t0)
        if marked:
            scene.rect(x0 + (t - t0) * cw - 0.5, top - 1.5, max(2.0, cw) + 1, y - top + 2, stroke="#000000", width=1)
    else:
        scene.text(PAD, y, "this episode has no inputs, targets or outputs", size=11, fill=MUTED, baseline="top")
    right = x0 + pw + 40
    if strips:
        right = colour_bar(scene, x0 + pw + 44, top, 8, max(40.0, strips_bottom - top - 8), GREYS, False, 1.0,
                           "value", "colour-bar-bits", ends=("1", "0"))
    y += 40
    if vectors:
        widest = max(len(row) for _, _, row, _ in vectors)
        vcell = max(3, min(14, 220 // max(1, widest)))
        vy0 = y + 4
        scene.text(PAD, vy0 - 6, f"vectors at step {t}", size=11, bold=True)
        for i, ((hd, name, row, signed), text) in enumerate(zip(vectors, names)):
            vy = vy0 + i * 18
            scale = max_abs(row) if signed else 1.0  # each row on its own scale, said beside it
            colours = signed_colours(row, scale) if signed else unit_colours(row, GREYS)
            scene.heatmap(x0, vy, len(row) * vcell, 14, colours[None, :, :], name=text)
            scene.text(x0 - 6, vy + 7, text, size=10, fill=hd.colour, anchor="end", baseline="middle")
            scene.text(x0 + widest * vcell + 6, vy + 7, f"±{fmt(scale)}" if signed else "0 .. 1", size=9,
                       fill=MUTED, baseline="middle")
        vy = vy0 + len(vectors) * 18
        axis_bottom(scene, x0, vy, widest * vcell, widest, "component")
        right = max(right, colour_bar(scene, x0 + widest * vcell + 64, vy0, 8, max(36.0, len(vectors) * 18 - 4),
                                      DIVERGING, True, 1.0, "signed rows", "colour-bar-vectors",
                                      ends=("+scale", "0", "−scale")))
        y = vy + 40
    scene.width = max(right + PAD, 320)
    if hidden:
        y = _legend(scene, PAD, y, scene.width - 2 * PAD, heads, hidden)
    scene.height = y + PAD
    return scene


# ---- slots --------------------------------------------------------------------------------------------
def field_range(values: np.ndarray, declared: tuple[float, float] | None) -> tuple[float, float]:
    """A slot field's colour scale: its declared range, else its values' [min, max] over the
    episode with 0 included (payload.py's rule: an all-positive field starts at white)."""
    if declared is not None:
        lo, hi = float(declared[0]), float(declared[1])
    else:
        a = np.asarray(values, np.float64)
        finite = a[np.isfinite(a)]
        lo, hi = (min(0.0, float(finite.min())), max(0.0, float(finite.max()))) if finite.size else (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def state_colours(values: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """[..., 3] uint8: each value's STATE colour on the field's range (low white, high purple)."""
    lo, hi = span
    return STATE[palette_index((np.asarray(values, np.float64) - lo) / (hi - lo), 1.0, False)]


def _caption(scene: Scene, x: float, y: float, text: str, room: float) -> float:
    """A field's doc in muted lines that fit `room` px; returns the y below it."""
    if not text:
        return y
    lines, hover = fit_label(text, room, 9, lines=3)
    for j, line in enumerate(lines):
        scene.text(x, y + j * 12, line, size=9, fill=MUTED, baseline="top", hover=hover)
    return y + 12 * len(lines)


def _slot_state(scene: Scene, episode: Episode, t: int, field, x: float, y: float, window: tuple[int, int],
                marker: bool) -> tuple[float, float]:
    """One slot_state field: a slot x time image over the window with step t marked, its values
    at t as bars beside it, a colour bar. Returns (right, bottom)."""
    t0, t1 = window
    Tw = t1 - t0
    D, base = _rows(episode)
    axis = SlotAxis(episode, D)
    ph = axis.height(base)
    values = np.asarray(episode.slot_state[field.name], np.float64)  # [T, N]
    span = field_range(values, field.range)
    lo, hi = span
    pooled = pool_slots(values, D, 1, True)  # [T, D], as payload.py pools slot state
    pw = time_pixels(Tw)
    img = pool_time(pooled[t0:t1], min(Tw, pw)).T  # [D, P]
    scene.text(x, y, field.name, size=11, bold=True, baseline="top")
    y = _caption(scene, x, y + 15, field.doc, 560)
    y0, x0 = y + 10, x + axis.room
    scene.heatmap(x0, y0, pw, ph, state_colours(img, span), name=f"slot-{field.name}")
    scene.rect(x0 - 0.5, y0 - 0.5, pw + 1, ph + 1, stroke="#cccccc", width=1)
    axis.draw(scene, x0 - 2, y0, ph)
    axis_bottom(scene, x0, y0 + ph, pw, Tw, "step", start=t0)
    if marker and t0 <= t < t1:
        mx = x0 + (t - t0 + 0.5) * pw / Tw
        cw = max(2.0, pw / Tw)
        scene.rect(mx - cw / 2 - 0.5, y0 - 0.5, cw + 1, ph + 1, stroke="#000000", width=1)
        scene.polygon([(mx, y0 - 1), (mx - 4, y0 - 7), (mx + 4, y0 - 7)], fill="#000000")
    # the values at t, a bar per row from 0 (or the range's low end) on the field's range
    bx, bw = x0 + pw + 16, 90
    now = pooled[t]
    zero = (float(np.clip(0.0, lo, hi)) - lo) / (hi - lo) * bw
    row_h = ph / D
    edge = 1 if row_h > 4 else 0
    for r in range(D):
        end = (float(np.clip(np.nan_to_num(now[r]), lo, hi)) - lo) / (hi - lo) * bw
        if abs(end - zero) > 1e-9:
            scene.rect(bx + min(zero, end), y0 + r * row_h + edge, abs(end - zero), max(1.0, row_h - 2 * edge),
                       fill=STATE_END, name=f"state-{field.name}")
    scene.line(bx + zero, y0 - 0.5, bx + zero, y0 + ph + 0.5, stroke=INK, width=1, name=f"state-base-{field.name}")
    scene.rect(bx - 0.5, y0 - 0.5, bw + 1, ph + 1, stroke="#dddddd", width=1)
    scene.text(bx, y0 + ph + 4, fmt(lo), size=9, fill=MUTED, baseline="top")
    scene.text(bx + bw, y0 + ph + 4, fmt(hi), size=9, fill=MUTED, anchor="end", baseline="top")
    scene.text(bx + bw / 2, y0 + ph + 18, f"at step {t}", size=11, anchor="middle", baseline="top")
    right = colour_bar(scene, bx + bw + 14, y0, 8, ph, STATE, False, hi, field.name, f"colour-bar-slot-{field.name}",
                       ends=(fmt(hi), fmt(lo)))
    return right, y0 + ph + 36


def matrix_values(episode: Episode, name: str, t: int, declared=None) -> tuple[np.ndarray, tuple[float, float]]:
    """([R, R] slot_matrices[name] at step t pooled to R = min(N, MATRIX_ROWS) rows and columns
    (largest magnitude, as payload.py pools it), its colour range over the episode)."""
    a = np.asarray(episode.slot_matrices[name], np.float64)  # [T, N, N]
    R = min(episode.slots, MATRIX_ROWS)
    m = pool_slots(pool_slots(a[t], R, 0, True), R, 1, True)
    return m, field_range(a, declared)


def _slot_matrix(scene: Scene, episode: Episode, t: int, field, x: float, y: float) -> tuple[float, float]:
    """One slot_matrices field at step t: rows "from", columns "to", its doc beneath. Returns (right, bottom)."""
    values, span = matrix_values(episode, field.name, t, field.range)
    R = values.shape[0]
    axis = SlotAxis(episode, R, title="from")
    side = axis.height(float(min(320, max(120, R * 10))))
    x0, y0 = x + axis.room, y + 18
    scene.text(x, y, f"{field.name} at step {t}", size=11, bold=True, baseline="top")
    scene.heatmap(x0, y0, side, side, state_colours(values, span), name=f"matrix-{field.name}")
    scene.rect(x0 - 0.5, y0 - 0.5, side + 1, side + 1, stroke="#cccccc", width=1)
    axis.draw(scene, x0 - 2, y0, side)
    for i in nice_ticks(episode.slots, side, 24):
        tx = x0 + (i + 0.5) * side / episode.slots
        scene.line(tx, y0 + side, tx, y0 + side + 3, stroke=MUTED)
        scene.text(tx, y0 + side + 4, str(i), size=10, fill=MUTED, anchor="middle", baseline="top")
    scene.text(x0 + side / 2, y0 + side + 18, "to", size=11, anchor="middle", baseline="top")
    right = colour_bar(scene, x0 + side + 10, y0, 8, side, STATE, False, span[1], field.name,
                       f"colour-bar-matrix-{field.name}", ends=(fmt(span[1]), fmt(span[0])))
    bottom = _caption(scene, x0, y0 + side + 36, field.doc, max(side, right - x0))
    return right, bottom + 4


def coords_layout(coords: np.ndarray, side: float) -> tuple[np.ndarray, float]:
    """([N, 2] px offsets of each slot's point in a side x side square (x right, y up, one scale
    for both axes), the radius of a weight-1 disc: 0.6 of the typical (median) distance from a
    point to its nearest, within 8 .. 40 px; discs are translucent, so neighbours may overlap)."""
    c = np.nan_to_num(np.asarray(coords, np.float64))
    lo, hi = c.min(axis=0), c.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1])) or 1.0
    inner = side * 0.84
    px = (c - lo) / span * inner
    px = px + (side - (hi - lo) / span * inner) / 2  # centred in the square
    px[:, 1] = side - px[:, 1]  # y grows upward, as in a plane
    if len(px) > 1:
        d = np.sqrt(((px[:, None] - px[None]) ** 2).sum(-1))
        d[np.diag_indices(len(px))] = np.inf
        nearest = float(np.median(d.min(axis=1)))
    else:
        nearest = side
    return px, float(np.clip(0.6 * nearest, 8.0, 40.0))


def plane_path(weights: np.ndarray, t: int) -> list[int]:
    """weights [T, N] one head's -> the slot it weighted most at each step 0..t, in order (a step
    whose weights are all zero, a head that does not read there, adds none): the path drawn
    through the slots' plane, a pointer's answer as it grows. views.js's planePath is the same."""
    w = np.nan_to_num(np.asarray(weights[: t + 1], np.float64))
    return [int(n) for n, top in zip(w.argmax(-1), w.max(-1)) if top > 0]


def _slot_coords(scene: Scene, episode: Episode, t: int, shown: list[Head], x: float, y: float) -> tuple[float, float]:
    """The slots as points in their plane, each shown head's weighting at t as a disc around each
    point (area proportional to weight) in its colour, its path over steps 0..t (plane_path) as a
    line in its colour, labels beside the points. Returns (right, bottom)."""
    side = 320.0
    coords = np.asarray(episode.slot_coords, np.float64)
    px, rmax = coords_layout(coords, side)
    x0, y0 = x + 40, y + 18
    scene.text(x, y, f"slots in their plane, weightings at step {t}", size=11, bold=True, baseline="top")
    scene.rect(x0, y0, side, side, stroke="#cccccc", width=1)
    for hd in shown:
        path = plane_path(hd.rec.weights[:, hd.h], t)
        for a, b in zip(path, path[1:]):
            scene.line(x0 + px[a, 0], y0 + px[a, 1], x0 + px[b, 0], y0 + px[b, 1], stroke=hd.colour, width=1.5,
                       name=f"path-{hd.key}")
        w = np.nan_to_num(np.asarray(hd.rec.weights[t, hd.h], np.float64))
        for n in range(len(px)):
            r = rmax * math.sqrt(max(0.0, float(w[n])))
            if r >= 0.05:
                scene.circle(x0 + px[n, 0], y0 + px[n, 1], r, fill=hd.colour, stroke=hd.colour, width=0.75,
                             opacity=0.45, name=f"disc-{hd.key}")
    for n in range(len(px)):
        scene.circle(x0 + px[n, 0], y0 + px[n, 1], 2.0, fill=INK, name="point")
    right = x0 + side
    if episode.slot_labels is not None:
        for n, label in enumerate(episode.slot_labels):
            lines, hover = fit_label(str(label), 180, 9, lines=1)
            scene.text(x0 + px[n, 0] + 5, y0 + px[n, 1] - 5, lines[0], size=9, fill=INK, hover=hover)
            right = max(right, x0 + px[n, 0] + 5 + text_width(lines[0], 9))
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    scene.text(x0, y0 + side + 4, f"x {fmt(float(lo[0]))} .. {fmt(float(hi[0]))}", size=9, fill=MUTED, baseline="top")
    scene.text(x0 - 4, y0 + side, f"y {fmt(float(lo[1]))} .. {fmt(float(hi[1]))}", size=9, fill=MUTED,
               anchor="start", baseline="bottom", rotate=-90)
    scene.text(x0 + side, y0 + side + 4, "disc area: weight", size=9, fill=MUTED, anchor="end", baseline="top")
    return right, y0 + side + 22


def _slots(episode: Episode, t: int, *, marker: bool, heads: list[Head], hidden: frozenset[int],
           window: tuple[int, int], title: str | None, **_) -> Scene:
    family = episode.family
    scene = Scene(0, 0)
    _title(scene, f"Slots at step {t}{_window_text(window, episode.steps)}", title)
    y = PAD + TITLE_H + 8
    right = 320.0
    for field in family.slot_state:
        r, y = _slot_state(scene, episode, t, field, PAD, y, window, marker)
        right = max(right, r)
        y += 8
    if family.slot_matrices:
        x, bottom = PAD, y
        for field in family.slot_matrices:  # side by side, wrapping at MAX_WIDTH
            mark = len(scene.items)
            r, b = _slot_matrix(scene, episode, t, field, x, y)
            if r > MAX_WIDTH and x > PAD:  # no room beside the last: draw it again on a new row
                del scene.items[mark:]
                y, x = bottom + 8, PAD
                r, b = _slot_matrix(scene, episode, t, field, x, y)
            right, bottom = max(right, r), max(bottom, b)
            x = r + 24
        y = bottom + 8
    if family.slot_coords and episode.slot_coords is not None:
        r, y = _slot_coords(scene, episode, t, _shown(heads, hidden), PAD, y)
        right = max(right, r)
        y += 8
    scene.width = right + PAD
    if heads and family.slot_coords:
        y = _legend(scene, PAD, y, scene.width - 2 * PAD, heads, hidden, " weighting")
    scene.height = y + PAD
    return scene


__all__ = ["Figure", "figure", "save_figure", "VIEWS", "FORMATS", "DEFAULT_SCALE"]
