"""The Sweep tab's learning-curves chart: a sweep's runs on one HoloViews overlay.

    lines = run_lines(runs, everyone, smoothing=0.6)   # runs: sweep_view.Run, those on show
    chart = learning_chart(lines, logy=False, smoothed=True)   # an hv.Overlay for a pn.pane.HoloViews

Colour says which settings a run had (charts.run_colours over every run of the sweep, so a run
keeps its colour whichever runs are on show); line style and end marker say whether it solved
the task. The number of HoloViews elements is fixed (a path per outcome, not a curve per run):
HoloViews' cost grows with its elements, and a sweep may hold hundreds of runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..thinning import thin_keys
from . import charts

Run = Any  # a sweep_view.Run (sweep_view imports this module, so not imported here)

# Colour says which settings a run had; line style and end marker say whether it solved the task.
OUTCOME_STYLE = {  # outcome: (line_dash, end marker)
    "solved": ("solid", "circle"),
    "not solved": ("dashed", "x"),
    "no bar to solve": ("dotted", "square"),
}
KEY_COLOUR = "#444444"  # the legend's entries that explain the line styles
X, Y = "sequences", "y"  # the x (sequences seen), and y as drawn (bit errors; on a log axis, at least the floor)
DODGE = 0.006  # of the widest x: how far apart the end markers of two combinations of settings sit
HOVER_POINTS = 100  # per run, for the hover along x (each point carries its run's name to the browser)


@dataclass
class RunLines:
    """One run as the chart draws it: its colour (its settings'), its outcome (its line style),
    and its values. train and validation: (sequences [n], y drawn [n], bit errors [n]), the
    training curve smoothed; y is bit errors raised to the floor on a log axis. end: the held-out
    score (sequences, y drawn, score, low drawn, high drawn), low-high its 95% interval."""

    run: str  # Run.name, e.g. 'c0/seed1'
    settings: str  # the settings that vary across the sweep, e.g. 'lr=0.001' (its legend entry)
    outcome: str
    colour: str
    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray, np.ndarray]
    end: tuple[float, float, float, float, float]


def run_lines(runs: list[Run], everyone: list[Run] | None = None, *, smoothing: float = 0.0,
              floor: float | None = None) -> list[RunLines]:
    """The chart's data, a RunLines per run whose curves could be read, ordered by the settings'
    values, then outcome (OUTCOME_STYLE's order), combination and seed. Colours come from the
    settings of `everyone` (default `runs`; pass every run of the sweep, so a run keeps its colour
    whichever runs are shown; see charts.run_colours). smoothing: the training curves' moving-
    average weight (charts.smooth); floor: on a log axis, what is drawn for values below it
    (zeros; see log_floor_for)."""
    everyone = list(everyone if everyone is not None else runs)
    keys = charts.varying_keys([r.settings for r in everyone])
    colours = dict(zip((r.name for r in everyone), charts.run_colours([r.settings for r in everyone], keys)))
    outcomes = list(OUTCOME_STYLE)

    def shown(values) -> np.ndarray:
        v = np.asarray(values, np.float64)
        v = np.where(np.isfinite(v), v, np.nan)  # a diverged run's infinities: gaps, not a broken axis range
        return v if floor is None else charts.for_log(v, floor)

    def curve(xs, ys) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values = np.asarray(ys, np.float64)
        return np.asarray(xs, np.float64), shown(values), np.where(np.isfinite(values), values, np.nan)

    out = []
    for run in sorted(runs, key=lambda r: (charts.settings_order(r.settings, keys), outcomes.index(r.outcome),
                                           int(r.row["combination"]), int(r.row["seed"]))):
        if run.curves is None:  # its row still shows in the table
            continue
        xs, ys = run.curves.train
        score, (low, high) = float(run.row["bit_errors"]), run.row["interval"]
        y, lo, hi = shown([score, low, high])
        out.append(RunLines(run.name, charts.settings_label(run.settings, keys), run.outcome,
                            colours.get(run.name, charts.CATEGORICAL[0]),
                            curve(xs, charts.smooth(ys, smoothing) if smoothing else ys),
                            curve(*run.curves.validation),
                            (float(run.curves.sequences), float(y), score, float(lo), float(hi))))
    return out


def log_floor_for(runs: list[Run]) -> float:
    """Where a log axis draws zeros for these runs: charts.log_floor of the values as logged
    (smoothing makes tiny positives of zeros; they are not what sets the axis)."""
    series = [[float(r.row["bit_errors"]), *r.row["interval"]] for r in runs]
    series += [r.curves.train[1] for r in runs if r.curves] + [r.curves.validation[1] for r in runs if r.curves]
    return charts.log_floor(*series)


def _colour_each_line(colours: list[str], names: list[str]):
    """A HoloViews hook for an hv.Path: its Bokeh MultiLine draws line i in colours[i], and its
    source names the run of each line (column 'run'). HoloViews colours a Path's lines from a
    column only by cutting every line into two-point pieces (which restarts each dash); the
    Bokeh glyph itself takes a colour per line."""
    def hook(plot, element) -> None:
        plot.handles["source"].data.update(colour=list(colours), run=list(names))
        plot.handles["glyph"].line_color = "colour"  # a column name: a colour per line
    return hook


def _label(r: RunLines) -> str:
    """What the hover says of a run: 'c0/seed1: lr=0.001 (not solved)'."""
    return f"{r.run}: {r.settings} ({r.outcome})"


def _points(lines: list[RunLines], part: str, most: int | None = None, gaps: bool = False) -> dict[str, np.ndarray]:
    """The points of `part` ('train' or 'validation') of every line (at most `most` of each,
    thinned as every history is), as columns: sequences, y, bit_errors, label, colour; with gaps,
    a row of NaN (label '') between two runs, so that as one line each run is its own piece."""
    parts = []
    for r in lines:
        xs, ys, values = getattr(r, part)
        keep = thin_keys(xs.tolist(), most) if most and len(xs) > most else slice(None)
        n = len(xs[keep])
        part_columns = {X: xs[keep], Y: ys[keep], "bit_errors": values[keep],
                        "label": np.full(n, _label(r), dtype=object), "colour": np.full(n, r.colour, dtype=object)}
        if gaps and parts:
            parts.append({k: np.array([np.nan if v.dtype.kind == "f" else ""], dtype=v.dtype)
                          for k, v in part_columns.items()})
        parts.append(part_columns)
    names = (X, Y, "bit_errors", "label", "colour")
    if not parts:
        return {k: np.zeros(0, np.float64 if k in (X, Y, "bit_errors") else object) for k in names}
    return {k: np.concatenate([p[k] for p in parts]) for k in names}


def learning_chart(lines: list[RunLines], *, logy: bool = False, smoothed: bool = False):
    """The HoloViews overlay of `lines` (run_lines' output), for the Bokeh backend.

    Per outcome on show: the runs' training curves (thin, the outcome's dash: one hv.Path, a line
    per run in its colour), their validation checks (thick, with a dot at each) and held-out
    scores at the end (the outcome's marker) with their 95% intervals (bars). The legend names the
    settings (their colours) and the outcomes on show (their line style and marker). Hovering
    along x shows each run's point there: run, settings, outcome, sequences seen, bit errors.

    A fixed number of HoloViews elements whatever the number of runs: HoloViews' time to draw an
    overlay grows with the square of its elements (measured here: 229 renderers, 57 s)."""
    hv = charts.holoviews()
    y_label = "bit errors (smoothed)" if smoothed else "bit errors"
    who = ("run", "@{label}")  # 'c0/seed1: lr=0.001 (not solved)'
    tips = {part: [who, *charts.hover_tooltips(X, "bit_errors", x_label="sequences", y_label=label)]
            for part, label in (("validation", "validation"), ("end", "held-out score"))}
    tips["end"].append(("95% interval", "@{low}{0.000} to @{high}{0.000}"))
    # hovering along x shows a tooltip per run there, stacked: one row each, so a sweep's runs fit
    tips["train"] = [(y_label, "@{bit_errors}{0.[000]} at @{sequences}{0,0} sequences, @{label}")]
    columns = [Y, "bit_errors", "label", "colour"]
    colour = hv.dim("colour")
    elements = []
    # the legend of colours: one point per settings, at NaN (drawn nowhere), coloured by category
    legend = dict.fromkeys(r.settings for r in lines)
    palette = {r.settings: r.colour for r in lines}
    # end markers of runs that trained alike sit at one x: each combination of settings moves right
    # by DODGE of the widest x, so their bars do not cover each other (the hover says the true x)
    widest = max((r.end[0] for r in lines), default=0.0)
    lanes = {name: i for i, name in enumerate(legend)}
    if legend:
        elements.append(hv.Scatter({X: [np.nan] * len(legend), Y: [np.nan] * len(legend), "settings": list(legend)},
                                   X, [Y, "settings"]).opts(
            backend="bokeh", color="settings", cmap=palette, size=9, show_legend=True))
    for outcome, (dash, marker) in OUTCOME_STYLE.items():
        mine = [r for r in lines if r.outcome == outcome]
        if not mine:
            continue
        for part, width, alpha in (("train", 1.5, 0.85), ("validation", 3.0, 1.0)):
            drawn = [r for r in mine if len(getattr(r, part)[0])]
            if drawn:
                paths = [{X: getattr(r, part)[0], Y: getattr(r, part)[1]} for r in drawn]
                elements.append(hv.Path(paths, [X, Y]).opts(
                    backend="bokeh", color=KEY_COLOUR, line_dash=dash, line_width=width, alpha=alpha,
                    hooks=[_colour_each_line([r.colour for r in drawn], [r.run for r in drawn])]))
        end = {"x": np.array([r.end[0] + DODGE * widest * lanes[r.settings] for r in mine]),
               **{name: np.array([r.end[i] for r in mine])
                  for i, name in enumerate((X, Y, "bit_errors", "low", "high"))},
               "label": np.array([_label(r) for r in mine], dtype=object),
               "colour": np.array([r.colour for r in mine], dtype=object)}
        elements.append(hv.Segments({"x0": end["x"], "x1": end["x"], "low": end["low"], "high": end["high"],
                                     "colour": end["colour"]}, ["x0", "low", "x1", "high"], ["colour"]).opts(
            backend="bokeh", color=colour, line_width=2))
        elements.append(hv.Scatter(end, "x", [*columns, X, "low", "high"]).opts(
            backend="bokeh", color=colour, marker=marker, size=10 if marker == "x" else 8, line_width=2,
            tools=["hover"], hover_tooltips=tips["end"]))
    checks = _points(lines, "validation")
    if len(checks[X]):
        elements.append(hv.Scatter(checks, X, columns).opts(
            backend="bokeh", color=colour, size=6, tools=["hover"], hover_tooltips=tips["validation"]))
    points = _points(lines, "train", HOVER_POINTS, gaps=True)
    if len(points[X]):
        # what the hover along x reads: every run's training curve as one invisible line (a line, not
        # points: Bokeh finds a line wherever the cursor's x crosses it, points only within a few pixels)
        elements.append(hv.Curve(points, X, [Y, "bit_errors", "label"]).opts(
            backend="bokeh", color=KEY_COLOUR, alpha=0, line_width=1, tools=["hover"], hover_mode="vline",
            hover_tooltips=tips["train"]))
    for outcome, (dash, marker) in OUTCOME_STYLE.items():
        if any(r.outcome == outcome for r in lines):
            # a line and a marker of one NaN point each (nothing drawn), grey, for their legend entry:
            # 'not solved' beside '- x -' (Bokeh draws no legend swatch for a renderer with no data)
            key = {X: [np.nan], Y: [np.nan]}
            elements.append(hv.Curve(key, X, Y, label=outcome).opts(
                backend="bokeh", color=KEY_COLOUR, line_dash=dash, line_width=2))
            elements.append(hv.Scatter(key, X, Y, label=outcome).opts(
                backend="bokeh", color=KEY_COLOUR, marker=marker, size=10 if marker == "x" else 8, line_width=2))
    overlay = hv.Overlay(elements) if elements else hv.Overlay([hv.Curve({X: [], Y: []}, X, Y)])
    ylabel = "bit errors per sequence" + (" (smoothed)" if smoothed else "")
    overlay = overlay.opts(**charts.overlay_opts(logy=logy, title="Learning curves", xlabel="sequences seen",
                                                 ylabel=ylabel),
                           padding=(0.03, 0.05))  # the end markers sit at the right edge: room for them
    # one legend item stands for all settings' colours (a renderer by category): a click would hide them all
    overlay = overlay.opts(backend="bokeh", legend_opts={"click_policy": "none"}, xformatter=charts.count_formatter())
    # a log axis labelled 1, 0.1, 0.01 rather than 10^0, 10^-1, 10^-2
    return overlay.opts(backend="bokeh", yformatter=charts.count_formatter()) if logy else overlay
