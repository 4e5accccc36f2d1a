"""Figures for papers: one view of an episode at one step, as SVG (vector) or PNG (3x by default).

    fig = figure(episode, "heads", step=30)        # memory | heads | focus | sequence
    fig.save("heads.svg"); fig.save("heads.png", scale=4)
    save_figure(episode, "memory", "memory.svg", step=12, diff=True)
    MemoryView(episode).save("fig.svg")            # a view saves what it shows at its step t
    ntmviz figure EPISODE --view heads --step 30 --out fig.svg

Each figure is drawn from the Episode's arrays with the renderer's palette (palette.py) and its
pooling (payload.py), so a cell has the colour the screen paints for the same value: memory
cells on the episode's symmetric scale (max |memory| over the episode; the change's own scale
with `diff`), weightings white to the head's colour over 0 .. 1, bits in greys. Slot axes longer
than the screen's are pooled as the screen pools them (largest magnitude / largest weight).
Every figure has axes, labels and a colour bar; the SVG is vector (a rectangle per cell).

Bad requests (a view the episode cannot show, a step out of range, an unknown format) raise
ConfigError with a one-line message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..episode import Episode
from ..errors import ConfigError
from ..files import atomic_write
from .drawing import MUTED, Scene, to_png, to_svg
from .palette import DIVERGING, GREYS, head_colour, head_ramp, signed_colours, unit_colours
from .payload import (
    QUANTISE_ABOVE, blocks, describe, focus_params, max_abs, ntm_focus, palette_index, pool_slots, pool_time,
    slot_pixels, time_pixels, vector_params,
)

VIEWS = ("memory", "heads", "focus", "sequence")
MEMORY_VIEWS = ("memory", "heads", "focus")
FORMATS = ("svg", "png")
DEFAULT_SCALE = 3.0  # PNG pixels per CSS pixel: about 300 dpi at the size the screen shows
MAX_SCALE = 12.0
BUSY = 0.05  # the head locations' zoom keeps slots some head weights at least this (views.js BUSY)
AXIS = 48  # room left of a slot axis for its ticks and title
PAD = 10
TITLE_H = 24


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
        raise ConfigError(f"this episode has no memory (an LSTM baseline), so it has no {view} view; "
                          "only the sequence view can be drawn")
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


def figure(episode: Episode, view: str, step: int | None = None, *, diff: bool = False,
           zoom: bool | None = None, marker: bool = True, title: str | None = None) -> Figure:
    """`view` of `episode` at `step` (default: the last step) as a Figure.

    diff: memory only, draw memory[t+1] - memory[t]. zoom: heads only, only the busy slots
    (None: as the app decides, when the heads use at most a quarter of the slots). marker: heads
    and sequence, mark step t. title: replaces the view's title ('' for none)."""
    t = check_request(episode, view, step)
    draw = {"memory": _memory, "heads": _heads, "focus": _focus, "sequence": _sequence}[view]
    scene = draw(episode, t, diff=diff, zoom=zoom, marker=marker, title=title)
    scene.description = f"ntmviz {view} view at step {t}: {describe(episode)}"
    return Figure(scene, view, t)


def save_figure(episode: Episode, view: str, path: str | os.PathLike, step: int | None = None, *,
                format: str | None = None, scale: float | None = None, **options) -> Path:
    """Write `view` of `episode` at `step` to `path` (.svg or .png); returns the path."""
    fmt = figure_format(path, format)
    if scale is not None:
        _check_scale(scale)
    return figure(episode, view, step, **options).save(path, fmt, scale)


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


def axis_left(scene: Scene, x: float, y: float, h: float, n: int, label: str) -> None:
    """Slot ticks (index i at the middle of its row) right-aligned left of x, and the title."""
    for i in nice_ticks(n, h, 18):
        ty = y + (i + 0.5) * h / n
        scene.line(x - 3, ty, x, ty, stroke=MUTED)
        scene.text(x - 5, ty, str(i), size=10, fill=MUTED, anchor="end", baseline="middle")
    scene.text(x - 36, y + h / 2, label, size=11, anchor="middle", baseline="middle", rotate=-90)


def axis_rows(scene: Scene, x: float, y: float, h: float, labels: list[str], label: str) -> None:
    """A slot axis of listed rows (the zoom on busy slots): each row labelled with its slots."""
    n = len(labels)
    every = max(1, int(np.ceil(n * 14 / h)))
    for i, text in enumerate(labels):
        if i % every == 0:
            ty = y + (i + 0.5) * h / n
            scene.line(x - 3, ty, x, ty, stroke=MUTED)
            scene.text(x - 5, ty, text, size=10, fill=MUTED, anchor="end", baseline="middle")
    scene.text(x - 36, y + h / 2, label, size=11, anchor="middle", baseline="middle", rotate=-90)


def axis_bottom(scene: Scene, x: float, y: float, w: float, n: int, label: str) -> None:
    for i in nice_ticks(n, w, 30):
        tx = x + (i + 0.5) * w / n
        scene.line(tx, y, tx, y + 3, stroke=MUTED)
        scene.text(tx, y + 4, str(i), size=10, fill=MUTED, anchor="middle", baseline="top")
    scene.text(x + w / 2, y + 18, label, size=11, anchor="middle", baseline="top")


def colour_bar(scene: Scene, x: float, y: float, w: float, h: float, table: np.ndarray, signed: bool,
               scale: float, label: str, name: str) -> None:
    """A vertical bar, one band per palette entry (top: +scale or 1), with its ends (and 0) labelled."""
    if signed:
        idx = np.arange(254, -1, -1)  # +scale at the top, 0 in the middle, -scale at the bottom
        ticks = [(0.0, f"+{scale:.3g}"), (0.5, "0"), (1.0, f"−{scale:.3g}")]
    else:
        idx = np.arange(255, -1, -1)
        ticks = [(0.0, f"{scale:.3g}"), (1.0, "0")]
    scene.heatmap(x, y, w, h, table[idx][:, None, :], name=name)
    scene.rect(x, y, w, h, stroke="#bbbbbb", width=0.75)
    for f, text in ticks:
        ty = y + f * h
        scene.line(x + w, ty, x + w + 3, ty, stroke=MUTED)
        scene.text(x + w + 5, ty, text, size=10, fill=MUTED, baseline="middle")
    room = 7 + 6 * max(len(text) for _, text in ticks)  # past the longest tick label
    scene.text(x + w + room + 8, y + h / 2, label, size=11, anchor="middle", baseline="middle", rotate=-90)


def _head_list(episode: Episode):
    """(label, kind, h, HeadRecord) for every head, read heads first (as the views order them)."""
    out = []
    for kind in ("read", "write"):
        rec = getattr(episode, kind)
        for h in range(rec.heads if rec is not None else 0):
            out.append((f"{kind} {h + 1}", kind, h, rec))
    return out


def _rows(episode: Episode) -> tuple[int, int]:
    """(D rows drawn for the slot axis, its height in px), as payload.py pools it."""
    N = episode.slots
    return min(N, slot_pixels(N)), slot_pixels(N)


def _slot_text(N: int, D: int, r: int) -> str:
    b = blocks(N, D)
    n0, n1 = int(b[r]), int(b[r + 1])
    return f"{n0}–{n1 - 1}" if n1 - n0 > 1 else str(n0)


# ---- memory -----------------------------------------------------------------------------------------
def memory_values(episode: Episode, t: int, diff: bool) -> tuple[np.ndarray, float]:
    """([D, M] the values the memory view paints at step t, the colour scale)."""
    D, _ = _rows(episode)
    if episode.static_memory:  # the same at every step: nothing changes
        mem = np.asarray(episode.memory, dtype=np.float64)
        values, scale = (np.zeros_like(mem), 1.0) if diff else (mem, max_abs(mem))
        return pool_slots(values, D, 0, True), scale
    mem = np.asarray(episode.memory, dtype=np.float64)
    if diff:
        values, scale = mem[t + 1] - mem[t], max_abs(np.diff(mem, axis=0))
    else:
        values, scale = mem[t + 1], max_abs(episode.memory)
    return pool_slots(values, D, 0, True), scale


def _memory(episode: Episode, t: int, diff: bool = False, title: str | None = None, **_) -> Scene:
    N, M = episode.slots, episode.width
    D, mh = _rows(episode)
    heads = _head_list(episode)
    values, scale = memory_values(episode, t, diff)
    cell_w = max(3, min(24, 230 // max(1, M)))
    x0, y0 = AXIS + PAD + len(heads) * 7 + 2, PAD + TITLE_H + 6
    mw = M * cell_w
    bar_x = x0 + mw + 8 + len(heads) * 7
    scene = Scene(bar_x + 10 + 56, y0 + mh + 40 + 22)
    _title(scene, f"Change made by step {t}" if diff else f"Memory after step {t}", title)
    scene.heatmap(x0, y0, mw, mh, signed_colours(values, scale), name="memory")
    scene.rect(x0, y0, mw, mh, stroke="#bbbbbb", width=0.75)
    for i, (label, kind, h, rec) in enumerate(heads):
        w = pool_slots(np.asarray(rec.weights[t, h]), D, 0, False)
        colour = head_colour(kind, h)
        sx = AXIS + PAD + i * 7
        scene.heatmap(sx, y0, 5, mh, unit_colours(w, head_ramp(kind, h))[:, None, :], name=f"strip-{kind}-{h + 1}")
        best = int(np.argmax(w))
        scene.rect(x0 - 0.75, y0 + best * mh / D - 0.75, mw + 1.5, max(1.0, mh / D) + 1.5, stroke=colour, width=1.5)
        ay, ax = y0 + (best + 0.5) * mh / D, x0 + mw + 3 + i * 7
        scene.polygon([(ax, ay), (ax + 6, ay - 4), (ax + 6, ay + 4)], fill=colour)
    axis_left(scene, AXIS + PAD - 2, y0, mh, N, "slot")
    axis_bottom(scene, x0, y0 + mh, mw, M, "width")
    colour_bar(scene, bar_x, y0, 10, mh, DIVERGING, True, scale, "change" if diff else "value", "colour-bar")
    # legend: each head's colour (its weighting strip left of the slots, its focus outlined)
    lx, ly = AXIS + PAD, y0 + mh + 40
    for label, kind, h, _ in heads:
        scene.rect(lx, ly, 10, 10, fill=head_colour(kind, h))
        scene.text(lx + 14, ly + 5, f"{label} weighting", size=10, baseline="middle")
        lx += 14 + 7 * len(label) + 70
    return scene


# ---- head locations over time -------------------------------------------------------------------------
def head_overview(episode: Episode) -> dict[str, tuple[np.ndarray, bool]]:
    """{"read.weights.time", "write.weights.time"}: ([P, H, D] pooled weightings, whether the
    screen gets them as palette indices) exactly as payload.py sends them."""
    D, _ = _rows(episode)
    T = episode.steps
    P = min(T, time_pixels(T))
    out = {}
    for kind, rec in episode.head_records():
        a = pool_time(pool_slots(np.asarray(rec.weights), D, 2, False), P)
        big = D < episode.slots or P < T or a.size > QUANTISE_ABOVE
        out[kind] = (a, big)
    return out


def busy_rows(episode: Episode) -> list[int]:
    """The rows (of D) some head weights at least BUSY at some step, as views.js busyRows sees
    them (from the values the screen receives)."""
    D, _ = _rows(episode)
    top = np.zeros(D)
    for a, big in head_overview(episode).values():
        seen = palette_index(a, 1.0, False) / 255 if big else np.asarray(a, np.float64)
        if seen.size:
            top = np.maximum(top, np.nan_to_num(seen).max(axis=(0, 1)))
    return [int(r) for r in np.flatnonzero(top >= BUSY)]


def zoom_rows(episode: Episode, zoom: bool | None) -> list[int] | None:
    """The rows the head locations show: None for all D, or the busy ones (views.js's rule: by
    default when they are at most a quarter of D and D >= 16)."""
    D, _ = _rows(episode)
    busy = busy_rows(episode)
    few = 0 < len(busy) <= D / 4 and D >= 16
    on = (few if zoom is None else bool(zoom)) and 0 < len(busy) < D
    return busy if on else None


def _heads(episode: Episode, t: int, zoom: bool | None = None, marker: bool = True, title: str | None = None,
           **_) -> Scene:
    N, T = episode.slots, episode.steps
    D, slots_px = _rows(episode)
    pw = time_pixels(T)
    rows = zoom_rows(episode, zoom)
    shown = D if rows is None else len(rows)
    ph = slots_px if shown >= D else min(slots_px, max(60, shown * 16))
    heads = _head_list(episode)
    overview = head_overview(episode)
    per_row = 2
    panel_w, panel_h = AXIS + pw + 70, 20 + ph + 40
    cols = min(per_row, len(heads))
    lines = -(-len(heads) // per_row)
    top = PAD + TITLE_H + 4
    scene = Scene(PAD + cols * panel_w, top + lines * panel_h + 4)
    _title(scene, f"Head locations over time (step {t} marked)" if marker else "Head locations over time", title)
    for i, (label, kind, h, _) in enumerate(heads):
        px, py = PAD + (i % per_row) * panel_w, top + (i // per_row) * panel_h
        x0, y0 = px + AXIS, py + 20
        colour = head_colour(kind, h)
        scene.text(x0, py + 4, f"{label} head", size=11, fill=colour, bold=True, baseline="top")
        a, _ = overview[kind]
        img = a[:, h, :].T  # [D, P]: slots down, time across
        if rows is not None:
            img = img[rows]
        scene.heatmap(x0, y0, pw, ph, unit_colours(img, head_ramp(kind, h)), name=f"heads-{kind}-{h + 1}")
        scene.rect(x0 - 0.5, y0 - 0.5, pw + 1, ph + 1, stroke="#cccccc", width=1)
        if rows is not None:
            for j in range(1, len(rows)):
                if rows[j] != rows[j - 1] + 1:  # a dashed line where the shown rows skip slots
                    ly = round(y0 + j * ph / len(rows)) + 0.5
                    scene.line(x0, ly, x0 + pw, ly, stroke="#999999", width=1, dash=(3, 3))
            axis_rows(scene, x0 - 2, y0, ph, [_slot_text(N, D, r) for r in rows], "slot")
        else:
            axis_left(scene, x0 - 2, y0, ph, N, "slot")
        axis_bottom(scene, x0, y0 + ph, pw, T, "step")
        if marker:
            x = x0 + (t + 0.5) * pw / T
            cw = max(2.0, pw / T)
            scene.rect(x - cw / 2 - 0.5, y0 - 0.5, cw + 1, ph + 1, stroke="#000000", width=1)
            scene.polygon([(x, y0 - 1), (x - 4, y0 - 7), (x + 4, y0 - 7)], fill="#000000")
        colour_bar(scene, x0 + pw + 10, y0, 8, ph, head_ramp(kind, h), False, 1.0, "weight",
                   f"colour-bar-{kind}-{h + 1}")
    return scene


# ---- focus --------------------------------------------------------------------------------------------
def _focus(episode: Episode, t: int, title: str | None = None, **_) -> Scene:
    N = episode.slots
    D, ph = _rows(episode)
    heads = _head_list(episode)
    col_w, gap = 48, 4
    cols = max(4, *(len(rec.stages) + 1 for _, _, _, rec in heads))
    block_w = cols * (col_w + gap) + 12
    panel_w = AXIS + block_w + 14
    params_h = max(0, *(86 if ntm_focus(rec) else 16 * len(focus_params(rec)) for _, _, _, rec in heads))
    top = PAD + TITLE_H + 4
    y0 = top + 34
    scene = Scene(PAD + len(heads) * panel_w, y0 + ph + 30 + params_h + 4)
    ntm = all(ntm_focus(rec) and list(rec.stages) == ["content", "gated", "shifted"] for *_, rec in heads)
    stages_text = " → ".join([*heads[0][3].stages, "weights"]) if heads else "weights"
    _title(scene, f"Focus at step {t}: " + ("content → gated → shifted → sharpened weights" if ntm else stages_text),
           title)
    bar_rows = min(D, round(ph))
    row_h = ph / bar_rows
    edge = 1 if row_h > 4 else 0
    for i, (label, kind, h, rec) in enumerate(heads):
        px = PAD + i * panel_w
        x0 = px + AXIS
        colour = head_colour(kind, h)
        scene.text(x0 + 2, top + 2, f"{label} head", size=11, fill=colour, bold=True, baseline="top")
        axis_left(scene, x0 - 2, y0, ph, N, "slot")
        for j, stage in enumerate([*rec.stages, "weights"]):
            x = x0 + j * (col_w + gap)
            scene.text(x + 2, top + 18, "sharpened" if stage == "weights" and ntm else stage, size=10, fill=MUTED,
                       baseline="top")
            scene.rect(x + 0.5, y0 - 0.5, col_w, ph + 1, stroke="#dddddd", width=1)
            w = pool_slots(np.asarray(getattr(rec, stage)[t, h]), D, 0, False)
            b = blocks(D, bar_rows)
            for r in range(bar_rows):
                n0, n1 = int(b[r]), max(int(b[r]) + 1, int(b[r + 1]))
                v = float(np.nan_to_num(w[n0:n1]).max())
                if v > 0.002:
                    scene.rect(x + 1, y0 + r * row_h + edge, min(1.0, v) * (col_w - 2), max(1.0, row_h - 2 * edge),
                               fill=colour)
            # a weight axis under each stage: its bars run from 0 to 1
            scene.line(x + 1, y0 + ph + 1, x + col_w - 1, y0 + ph + 1, stroke=MUTED, width=0.75)
            for tx in (x + 1, x + col_w - 1):
                scene.line(tx, y0 + ph + 1, tx, y0 + ph + 4, stroke=MUTED, width=0.75)
            if j == 0:
                scene.text(x + 1, y0 + ph + 5, "0", size=9, fill=MUTED, anchor="middle", baseline="top")
                scene.text(x + col_w - 1, y0 + ph + 5, "1", size=9, fill=MUTED, anchor="middle", baseline="top")
                scene.text(x + col_w / 2, y0 + ph + 5, "weight", size=9, fill=MUTED, anchor="middle", baseline="top")
        py = y0 + ph + 22
        if not ntm_focus(rec):  # another model's per-head numbers, a line each
            for k, name in enumerate(focus_params(rec)):
                scene.text(x0 - 40, py + 16 * k, f"{name} {fmt(float(rec.params[name][t, h]))}", size=10,
                           baseline="top")
            continue
        # the NTM's parameters: beta, gate, gamma as numbers and bars; the shift distribution as bars
        beta, gate, gamma = (float(getattr(rec, p)[t, h]) for p in ("beta", "gate", "gamma"))
        for k, (name, value, frac) in enumerate((("β key strength", beta, np.log1p(max(0.0, beta)) / np.log1p(50)),
                                                 ("g gate", gate, gate), ("γ sharpening", gamma, (gamma - 1) / 9))):
            y = py + 16 * k
            scene.text(x0 - 40, y, f"{name} {fmt(value)}", size=10, baseline="top")
            scene.rect(x0 + 80, y + 2, 52, 8, fill="#eeeeee")
            scene.rect(x0 + 80, y + 2, 52 * float(np.clip(frac, 0, 1)), 8, fill=colour)
        shift = np.asarray(rec.shift[t, h])
        S = shift.shape[0]
        k = (S - 1) // 2
        sx, sw, sh = x0 + 146, min(16, 86 // S), 36
        scene.text(sx, py, "shift", size=10, fill=MUTED, baseline="top")
        for j in range(S):
            x = sx + j * (sw + 2)
            v = float(np.clip(shift[j], 0, 1))
            scene.rect(x, py + 14, sw, sh, fill="#eeeeee")
            scene.rect(x, py + 14 + sh * (1 - v), sw, sh * v, fill=colour)
            if S <= 9 or j in (0, S - 1, k):
                scene.text(x + sw / 2, py + 16 + sh, f"{'+' if j - k > 0 else ''}{j - k}", size=9, fill=MUTED,
                           anchor="middle", baseline="top")
    return scene


# ---- sequence -----------------------------------------------------------------------------------------
def _pooled_time(a: np.ndarray, cols: int) -> np.ndarray:
    """[T, rows] -> [rows, cols]: the largest |value| of each block of steps (as the screen's Heat)."""
    T = a.shape[0]
    a = np.abs(np.nan_to_num(np.asarray(a, np.float64)))
    if cols < T:
        a = np.maximum.reduceat(a, blocks(T, cols)[:-1], axis=0)
    return a.T


def _sequence(episode: Episode, t: int, marker: bool = True, title: str | None = None, **_) -> Scene:
    T = episode.steps
    I = episode.inputs.shape[1] if episode.inputs is not None else 0
    O = episode.outputs.shape[1] if episode.outputs is not None else 0
    pw = time_pixels(T)
    cols = min(T, round(pw))
    cell_h = max(3, min(10, 80 // max(I, O, 1)))
    x0 = PAD + 64
    top = PAD + TITLE_H + 4
    blocks_ = [("inputs", episode.inputs), ("targets", episode.targets), ("outputs", episode.outputs)]
    blocks_ = [(name, a) for name, a in blocks_ if a is not None]
    errors = episode.errors() if episode.targets is not None and episode.outputs is not None else np.zeros(T)
    what = episode.error_name  # "bit errors", or "wrong answers" (a memory network's answer)
    scored = np.ones(T, bool) if episode.mask is None else np.asarray(episode.mask) > 0
    errors = np.where(scored, errors, 0)
    vectors = []
    if episode.has_memory:
        for label, kind, h, rec in _head_list(episode):
            for name in vector_params(rec):
                vectors.append((label, kind, h, name, np.asarray(rec.params[name][t, h]), name != "erase"))
            if kind == "read" and episode.reads is not None:
                vectors.append((label, kind, h, "read", np.asarray(episode.reads[t, h]), True))
    y = top
    layout = {}
    for name, a in blocks_:
        layout[name] = y
        y += a.shape[1] * cell_h + 8
    err_y = y
    vec_top = err_y + 8 + 40
    M = max([episode.width if episode.has_memory else 0] + [len(v[4]) for v in vectors])  # widest vector
    vcell = max(3, min(14, 220 // max(1, M))) if M else 0
    height = vec_top + (len(vectors) * 18 + 50 if vectors else 0)
    scene = Scene(x0 + max(pw, 86 + M * vcell) + 110, height)
    total = int(errors.sum())
    _title(scene, f"Sequence, step {t}: " + (f"{int(errors[t])} {what} at this step, {total} in the episode"
                                             if episode.targets is not None and scored[t] else
                                             "not scored" if episode.targets is not None else "no targets"), title)
    for name, a in blocks_:
        rows = a.shape[1]
        by = layout[name]
        scene.heatmap(x0, by, pw, rows * cell_h, unit_colours(_pooled_time(a, cols), GREYS), name=name)
        scene.rect(x0 - 0.5, by - 0.5, pw + 1, rows * cell_h + 1, stroke="#cccccc", width=1)
        scene.text(x0 - 6, by + rows * cell_h / 2, name, size=11, anchor="end", baseline="middle")
        if name == "outputs" and episode.targets is not None and pw / T >= 3 and episode.scoring == "bits":
            cw = pw / T
            wrong = (np.asarray(episode.outputs) > 0.5) != (np.asarray(episode.targets) > 0.5)
            for s, o in zip(*np.nonzero(wrong & scored[:, None])):
                scene.rect(x0 + s * cw + 0.75, by + o * cell_h + 0.75, max(1.0, cw - 1.5), cell_h - 1.5,
                           stroke="#ee0000", width=1.5)
    scene.text(x0 - 6, err_y + 4, "bit errors" if episode.scoring == "bits" else "wrong", size=11, anchor="end", baseline="middle")
    cw = pw / T
    for s in np.flatnonzero(errors):
        scene.rect(x0 + s * cw, err_y, max(1.0, cw - 0.5), 8, fill="#ee0000")
    scene.rect(x0 - 0.5, err_y - 0.5, pw + 1, 9, stroke="#cccccc", width=1)
    axis_bottom(scene, x0, err_y + 10, pw, T, "step")
    if marker:
        scene.rect(x0 + t * cw - 0.5, top - 1.5, max(2.0, cw) + 1, err_y - top + 10, stroke="#000000", width=1)
    bits_y = top
    colour_bar(scene, x0 + pw + 12, bits_y, 8, max(40.0, err_y - top - 8), GREYS, False, 1.0, "bit", "colour-bar-bits")
    if vectors:
        vx = x0 + 22
        scene.text(PAD, vec_top - 6, f"vectors at step {t}", size=11, bold=True)
        for i, (label, kind, h, what, row, signed) in enumerate(vectors):
            vy = vec_top + i * 18
            scale = max(1.0, max_abs(row)) if signed else 1.0
            colours = signed_colours(row, scale) if signed else unit_colours(row, GREYS)
            scene.heatmap(vx, vy, len(row) * vcell, 14, colours[None, :, :], name=f"{label} {what}")
            scene.text(vx - 6, vy + 7, f"{label} {what}", size=10, fill=head_colour(kind, h), anchor="end",
                       baseline="middle")
            if signed and scale > 1:
                scene.text(vx + M * vcell + 6, vy + 7, f"scale ±{fmt(scale)}", size=9, fill=MUTED, baseline="middle")
        vy = vec_top + len(vectors) * 18
        axis_bottom(scene, vx, vy, M * vcell, M, "width")
        colour_bar(scene, vx + M * vcell + 80, vec_top, 8, max(36.0, len(vectors) * 18 - 4), DIVERGING, True, 1.0,
                   "key, add, read", "colour-bar-vectors")
    return scene


__all__ = ["Figure", "figure", "save_figure", "VIEWS", "FORMATS", "DEFAULT_SCALE"]
