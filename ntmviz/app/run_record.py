"""A training run as it stands, as one output that needs no kernel: status, curves, seeds, views.

    record = view.last_state()       # TrainingView.last_state(): RunRecord.of(view)
    record                           # in Jupyter: shown as HTML (and kept when the notebook is saved)
    record.html()                    # the same markup

A live Train tab in a notebook talks to its kernel; saved and opened without one (nbconvert's HTML,
a notebook viewer), its buttons cannot work and its curves cannot stream. So the run's last
state is written out as plain HTML: the status line, the loss and bit-error curves as inline SVG
(what the charts draw: the same rows, smoothing and log scale, a line per seed, an x where a
diverged seed stopped), the seed table, and the views of the snapshot on show as the
self-contained rendering notebook outputs carry (notebook.py: the renderer and every step's
arrays inline), which plays and scrubs in the page. Nothing in it is fetched from anywhere, and
every string from the run (seeds, messages, file names) is text, never markup.
"""

from __future__ import annotations

import html
import math
import uuid
from dataclasses import dataclass

import numpy as np

from ..thinning import thin_keys
from . import charts
from .train_curves import NAMES, TITLES, Y_LABELS, column, seed_colours

WIDTH, HEIGHT = 460, 250
LEFT, TOP, BOTTOM = 58, 30, 42
LEGEND = 118  # room on the right for the legend (more than one seed)
MAX_POINTS = 400  # per line: more than the chart has pixels across


@dataclass
class Line:
    """One seed's line: its label, colour, steps [n] and values [n] (NaN: a gap)."""

    label: str
    colour: str
    steps: np.ndarray
    values: np.ndarray


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) from low to high."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def chart_svg(title: str, ylabel: str, lines: list[Line], marks: list[tuple[float, float, str]],
              log: bool = False, legend: bool = False) -> str:
    """A line chart as an inline <svg>: x the training step (ticks as charts.compact writes them),
    y linear or log10, a polyline per run of finite values of each line, an x per mark."""
    right = LEGEND if legend else 16
    pw, ph = WIDTH - LEFT - right, HEIGHT - TOP - BOTTOM
    steps = np.concatenate([ln.steps for ln in lines]) if lines else np.zeros(0)
    values = np.concatenate([ln.values for ln in lines]) if lines else np.zeros(0)
    finite = np.isfinite(values) & (values > 0 if log else True)
    fy = (lambda v: np.log10(v)) if log else (lambda v: v)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
           f'aria-label="{html.escape(title, quote=True)}" font-family="sans-serif" font-size="11" '
           f'class="ntmviz-record-chart">',
           f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    if not finite.any():
        out.append(f'<text x="{LEFT + pw / 2}" y="{TOP + ph / 2}" text-anchor="middle" fill="#777">'
                   'no steps yet</text></svg>')
        return "".join(out)
    x0, x1 = float(steps.min()), float(steps.max())
    y0, y1 = float(fy(values[finite]).min()), float(fy(values[finite]).max())
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    sx = lambda x: LEFT + (x - x0) / (x1 - x0) * pw  # noqa: E731
    sy = lambda y: TOP + ph - (y - y0) / (y1 - y0) * ph  # noqa: E731
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
    for x in _nice_ticks(x0, x1):
        out.append(f'<line x1="{sx(x):.1f}" y1="{TOP + ph}" x2="{sx(x):.1f}" y2="{TOP + ph + 4}" stroke="#555"/>'
                   f'<text x="{sx(x):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{charts.compact(x)}</text>')
    for y in _nice_ticks(math.floor(y0) if log else y0, math.ceil(y1) if log else y1, 5):
        if not y0 - 1e-9 <= y <= y1 + 1e-9:
            continue
        label = charts.compact(10 ** y) if log else charts.compact(y)
        out.append(f'<line x1="{LEFT - 4}" y1="{sy(y):.1f}" x2="{LEFT + pw}" y2="{sy(y):.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 6}" text-anchor="middle">training step</text>'
               f'<text transform="rotate(-90 14 {TOP + ph / 2})" x="14" y="{TOP + ph / 2}" '
               f'text-anchor="middle">{html.escape(ylabel)}{" (log scale)" if log else ""}</text>')
    for ln in lines:
        ok = np.isfinite(ln.values) & (ln.values > 0 if log else True)
        runs = np.split(np.arange(len(ok)), np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1)
        for run in runs:
            if run.size == 0 or not ok[run[0]]:
                continue
            pts = " ".join(f"{sx(float(ln.steps[i])):.1f},{sy(float(fy(ln.values[i]))):.1f}" for i in run)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{ln.colour}" stroke-width="1.5" '
                       f'data-label="{html.escape(ln.label, quote=True)}"/>')
    for step, value, colour in marks:
        if log and not value > 0:
            continue
        x, y = sx(step), sy(float(fy(value)))
        out.append(f'<path d="M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}M{x - 5:.1f},{y + 5:.1f}'
                   f'L{x + 5:.1f},{y - 5:.1f}" stroke="{colour}" stroke-width="2.5" class="ntmviz-diverged"/>')
    if legend:
        for i, ln in enumerate(lines):
            y = TOP + 6 + 14 * i
            out.append(f'<line x1="{WIDTH - LEGEND + 8}" y1="{y}" x2="{WIDTH - LEGEND + 24}" y2="{y}" '
                       f'stroke="{ln.colour}" stroke-width="2"/><text x="{WIDTH - LEGEND + 28}" y="{y + 4}">'
                       f'{html.escape(ln.label)}</text>')
    out.append("</svg>")
    return "".join(out)


def curves_svg(curves, name: str) -> str:
    """What a TrainingCurves chart draws now (`name`: "loss" or "bit_errors"), as inline SVG."""
    data = curves.drawn()
    steps = data["step"].to_numpy(dtype=np.float64)
    keep = thin_keys(steps.tolist(), MAX_POINTS) if len(steps) >= 2 else list(range(len(steps)))
    colours = seed_colours(len(curves.seeds))
    lines = [Line(curves.label(k), colours[k], steps[keep], data[column(name, k)].to_numpy(np.float64)[keep])
             for k in range(len(curves.seeds))]
    return chart_svg(TITLES[name], Y_LABELS[name], lines, curves.marks(name), log=name == "loss" and curves.log_loss,
                     legend=len(curves.seeds) > 1)


class RunRecord:
    """A run's state as self-contained HTML (see the module docstring)."""

    def __init__(self, status: str, charts_svg: list[str], table: str, episode=None, caption: str = ""):
        self.status, self.charts, self.table, self.episode, self.caption = status, charts_svg, table, episode, caption

    @classmethod
    def of(cls, view) -> "RunRecord":
        """The record of a TrainingView as it stands."""
        snap = view.snapshot
        caption = view.scrubber.label.object if snap is not None else ""
        table = view.seed_table.html if view.seed_table.visible else ""
        return cls(view.status_text, [curves_svg(view.curves, n) for n in NAMES], table,
                   snap.episode if snap is not None else None, caption)

    def _views(self) -> str:
        """The views of the episode, as the notebook fallback renders them (they play in the page)."""
        if self.episode is None:
            return '<p class="ntmviz-record-note">No snapshot yet.</p>'
        from .notebook import offline_html, wrap
        from .state import Playback
        from .views import HeadLocationsView, MemoryView, Player, SequenceView
        import panel as pn

        state = Playback(self.episode)
        views = pn.Column(Player(state=state), HeadLocationsView(state=state), MemoryView(state=state),
                          SequenceView(state=state))
        token = uuid.uuid4().hex
        fallback = offline_html(views, token) or ""
        return wrap("", fallback, token)

    def html(self) -> str:
        status = self.status
        lead = ""
        if status.startswith("**") and "**" in status[2:]:  # the status line's bold lead, as the page shows it
            end = status.index("**", 2)
            lead, status = status[2:end], status[end + 2:]
        parts = ['<div class="ntmviz-record" aria-label="Training run (recorded)">',
                 f'<p class="ntmviz-record-status"><strong>{html.escape(lead)}</strong>{html.escape(status)}</p>',
                 '<div style="display:flex;flex-wrap:wrap;gap:12px">', *self.charts, "</div>", self.table]
        if self.caption:
            parts.append(f'<p class="ntmviz-record-caption">{html.escape(self.caption)}</p>')
        parts += [self._views(), "</div>"]
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.html()
