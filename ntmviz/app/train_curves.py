"""A run's learning curves on HoloViews: loss and bit errors against the training step, a line per seed.

    curves = TrainingCurves()
    curves.reset([0, 1, 2])                   # a new run's seeds (and a checkpoint's past curve)
    curves.extend(metrics)                    # StepMetrics as the run published them
    curves.flush()                            # send what is pending now (extend sends when it may)
    curves.mark_diverged(1)                   # seed 1's line ends with an x; its legend says so
    curves.points(1)                          # {"step", "sequences", "loss", "bit_errors"}: as drawn, raw
    curves.smoothing = 0.6; curves.log_loss = True

Streaming. One `hv.streams.Buffer` (a DataFrame: step, sequences, column("loss", k) and
column("bit_errors", k) for every seed k, and where the hover runs) feeds both charts, and one
`send` carries every seed's new rows: one stream per update for all seeds. (Before HoloViews,
measured here in Chromium on the loaded 2-core machine: four ColumnDataSources streamed at every
pull made the page lay the plots out four times per update and answer in 2-20 s, against about
1 s with one source.) HoloViews still draws each line from a ColumnDataSource of its own and its
update costs server time per line: measured here, one update of both charts took 55 ms with one
seed, 110 ms with 4 and 360 ms with 16. So an update waits until its cost is at most `load` of
the time since the last: with one seed that is about every pull, with 16 about every 1.8 s.
Each update sends only the new rows.

Hover: one tooltip with every seed's value at the hovered step. Each seed's line has no hover
of its own (Bokeh would stack a tooltip per line); an invisible line through the mean of the
seeds' values (so 'vline' finds it at every step) carries one whose rows are every seed's column.

Thinning (thinning.thin_keys, the one rule): past `max_points` rows the curve keeps half of
them, the first and the newest always, evenly spaced between, and from then on takes a new row
only that far from the last, so the whole run stays on screen at an even density. A re-thin (and
a new smoothing weight) sends the curve again: the Buffer is cleared and refilled.

Smoothing: the drawn values are charts.smooth of the rows kept (TensorBoard's debiased moving
average; 0 draws them as they are), computed as rows arrive and again from the raw rows when
the weight changes. A diverged seed's values are NaN from its divergence on, so its line stops
at its last good step, marked with an x there.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from ..thinning import thin_keys
from . import charts

NAMES = ("loss", "bit_errors")
TITLES = {"loss": "Loss (nats per sequence)", "bit_errors": "Bit errors per sequence"}
Y_LABELS = {"loss": "loss", "bit_errors": "bit errors"}
HEIGHT = 240
BUFFER_ROWS = 10**7  # the Buffer's own bound: never reached (see reset)
SMOOTHING = {"none": 0.0, "light (0.6)": 0.6, "medium (0.8)": 0.8, "strong (0.9)": 0.9, "stronger (0.95)": 0.95,
             "strongest (0.99)": 0.99}


def column(name: str, k: int) -> str:
    """The curves' column of seed k's `name` ("loss" or "bit_errors"): "loss", "loss_1", ..."""
    return name if k == 0 else f"{name}_{k}"


def seed_colours(count: int) -> list[str]:
    """The colour of each seed of a run (its lines, its x and its table swatch)."""
    return charts.categorical(count)


def model_values(m, k: int) -> tuple[float, float]:
    """(loss, bit errors) of model k at one step's metrics (train.StepMetrics); NaN once it diverged."""
    if m.model_loss:
        return m.model_loss[k], m.model_bit_errors[k]
    return m.loss, m.bit_errors


class _Ema:
    """charts.smooth, one value at a time: the debiased moving average of the finite values so far."""

    def __init__(self, weight: float):
        self.weight, self.level, self.count = weight, 0.0, 0

    def push(self, v: float) -> float:
        if not math.isfinite(v):
            return math.nan
        if self.weight == 0.0:
            return float(v)
        self.level = self.weight * self.level + (1.0 - self.weight) * v
        self.count += 1
        return self.level / (1.0 - self.weight ** self.count)


class TrainingCurves(Viewer):
    """Loss and bit errors of every seed of a run against the training step (see the module docstring)."""

    seeds = param.List(default=[0], item_type=int, doc="""
        The seeds whose lines are drawn, in the run's order.""")

    diverged = param.List(default=[], item_type=int, doc="""
        The indices of the seeds whose lines have stopped (each ends with an x).""")

    smoothing = param.Number(default=0.0, bounds=(0.0, 0.99), step=0.01, doc="""
        The moving average's weight (charts.smooth): 0 draws the values as they are, 0.9 smooths hard.""")

    log_loss = param.Boolean(default=False, doc="""
        Draw the loss on a log scale.""")

    max_points = param.Integer(default=2000, bounds=(10, None), doc="""
        The most rows a curve holds; past it the curve is thinned, never grown.""")

    load = param.Number(default=0.2, bounds=(0.01, 1.0), doc="""
        The share of the server's time the curves' updates may take (see the module docstring).""")

    def __init__(self, **params):
        super().__init__(**params)
        self.hv = charts.holoviews()
        self._raw: dict[str, list[float]] = {}  # every row kept (sent or pending), as measured
        self._sent = 0  # rows of _raw in the Buffer
        self._spacing = 0.0  # a new row must be this many steps past the last (0: every row)
        self._emas: dict[str, _Ema] = {}
        self._refill = False  # the Buffer must be cleared and refilled (re-thinned, re-smoothed)
        self._next_send = 0.0  # time.monotonic() before which extend() only collects
        self._loss = pn.pane.HoloViews(sizing_mode="stretch_width", min_height=HEIGHT)
        self._errors = pn.pane.HoloViews(sizing_mode="stretch_width", min_height=HEIGHT)
        # a choice of weights, not a slider: each pick sends the curve again, and the Train tab's one
        # slider is the training step's (browser tests and keyboard users find it as the page's slider)
        self.smoothing_choice = pn.widgets.Select(label="Smoothing", options=self._smoothing_options(), width=170,
                                                  value=self.smoothing, description="The moving average's weight "
                                                  "(as TensorBoard smooths): none draws every value as it is")
        self.smoothing_choice.param.watch(lambda e: setattr(self, "smoothing", e.new), "value")
        self.log_toggle = pn.widgets.Checkbox.from_param(self.param.log_loss, label="Log scale (loss)")
        self.reset(list(self.seeds))

    # ---- the data -----------------------------------------------------------------------------
    def _raw_columns(self) -> list[str]:
        """The columns kept as measured: step, sequences, then each seed's loss and bit errors."""
        return ["step", "sequences", *(column(n, k) for k in range(len(self.seeds)) for n in NAMES)]

    def _columns(self) -> list[str]:
        """The Buffer's columns: the raw ones as drawn, then where the hover's carrier runs."""
        return [*self._raw_columns(), *(f"hover_{n}" for n in NAMES)]

    def reset(self, seeds: Sequence[int], history: dict | None = None, batch_size: int = 1) -> None:
        """Start again for a run of `seeds`; `history` (a checkpoint's past curve, one seed:
        {"sequences", "loss", "bit_errors"}, thinned) is drawn first, at step sequences // batch_size."""
        self.param.update(seeds=[int(s) for s in seeds], diverged=[])
        self._raw = {c: [] for c in self._raw_columns()}
        if history and history.get("sequences") and len(self.seeds) == 1:
            batch = max(1, int(batch_size))
            self._raw.update(step=[s // batch for s in history["sequences"]], sequences=list(history["sequences"]),
                             loss=list(history["loss"]), bit_errors=list(history["bit_errors"]))
        self._sent, self._spacing, self._next_send = 0, 0.0, 0.0
        if len(self._raw["step"]) > self.max_points:
            self._thin()
        # length: HoloViews passes it to ColumnDataSource.stream as its rollover (0 would keep
        # nothing); the thinning keeps far fewer rows, so it never rolls over
        self.buffer = self.hv.streams.Buffer(self._frame(0), length=BUFFER_ROWS, index=False)
        self._refill = False
        self._sent = len(self._raw["step"])
        self._draw()

    def _frame(self, start: int) -> pd.DataFrame:
        """Rows start.. of _raw as drawn (smoothed), carrying the moving averages on."""
        if start == 0:
            self._emas = {c: _Ema(self.smoothing) for c in self._raw if c not in ("step", "sequences")}
        out = {}
        for c, values in self._raw.items():
            new = values[start:]
            ema = self._emas.get(c)
            out[c] = np.asarray(new if ema is None else [ema.push(float(v)) for v in new], dtype=np.float64)
        K = len(self.seeds)
        for n in NAMES:  # where the hover's carrier line runs: the mean of the seeds' finite values
            rows = np.stack([out[column(n, k)] for k in range(K)])
            finite = np.isfinite(rows)
            count = finite.sum(0)
            out[f"hover_{n}"] = np.where(count > 0, np.where(finite, rows, 0.0).sum(0) / np.maximum(count, 1), np.nan)
        return pd.DataFrame(out, columns=self._columns())

    def extend(self, metrics: Sequence, now: float | None = None) -> None:
        """Add the steps of `metrics` (oldest first; NaN where a seed has diverged) that the curve's
        density takes, and send them if the curves may update now (else at a later call)."""
        raw, K = self._raw, len(self.seeds)
        steps = raw["step"]
        for m in metrics:
            if steps and m.step - steps[-1] < self._spacing:
                continue
            steps.append(m.step)
            raw["sequences"].append(m.sequences)
            for k in range(K):
                loss, errors = model_values(m, k)
                raw[column("loss", k)].append(loss)
                raw[column("bit_errors", k)].append(errors)
        if len(steps) > self.max_points:
            self._thin()
        now = time.monotonic() if now is None else now
        if now >= self._next_send:
            self.flush(now)

    def _thin(self) -> None:
        """Keep half of max_points rows (thinning.thin_keys) and take new rows only as far apart."""
        keep = thin_keys(self._raw["step"], max(2, self.max_points // 2))
        self._raw = {c: [values[i] for i in keep] for c, values in self._raw.items()}
        steps = self._raw["step"]
        self._spacing = (steps[-1] - steps[0]) / max(1, len(steps) - 1)
        self._refill = True

    def flush(self, now: float | None = None) -> None:
        """Send every row not yet drawn (or the whole curve after a re-thin): one Buffer.send."""
        started = time.perf_counter()
        if self._refill:
            self._refill = False
            self.buffer.clear()
            self._sent = 0
        if self._sent >= len(self._raw["step"]):
            return
        frame = self._frame(self._sent)
        self._sent = len(self._raw["step"])
        self.buffer.send(frame)
        cost = time.perf_counter() - started
        now = time.monotonic() if now is None else now
        self._next_send = now + cost * (1.0 / self.load - 1.0)

    def _smoothing_options(self) -> dict[str, float]:
        options = dict(SMOOTHING)
        if self.smoothing not in options.values():  # a weight set from code is offered too
            options[f"{self.smoothing:g}"] = self.smoothing
        return dict(sorted(options.items(), key=lambda kv: kv[1]))

    @param.depends("smoothing", watch=True)
    def _resmooth(self) -> None:
        self.smoothing_choice.param.update(options=self._smoothing_options(), value=self.smoothing)
        self._refill = True
        self.flush()

    # ---- readouts -----------------------------------------------------------------------------
    def points(self, k: int) -> dict[str, list]:
        """Seed k's rows as the curves hold them, as measured (before smoothing), its NaN (after it
        diverged) left out: {"step", "sequences", "loss", "bit_errors"}."""
        raw = self._raw
        loss, errors = raw[column("loss", k)], raw[column("bit_errors", k)]
        keep = [i for i, v in enumerate(loss) if math.isfinite(v)]
        return {"step": [raw["step"][i] for i in keep], "sequences": [raw["sequences"][i] for i in keep],
                "loss": [loss[i] for i in keep], "bit_errors": [errors[i] for i in keep]}

    def drawn(self) -> pd.DataFrame:
        """What the charts draw: the Buffer's rows (smoothed)."""
        return self.buffer.data

    def marks(self, name: str, data: pd.DataFrame | None = None) -> list[tuple[int, float, str]]:
        """(step, value, colour) where each diverged seed's `name` line ends (its last drawn finite value)."""
        data = self.drawn() if data is None else data
        colours = seed_colours(len(self.seeds))
        out = []
        for k in self.diverged:
            values = data[column(name, k)].to_numpy()
            finite = np.flatnonzero(np.isfinite(values))
            if finite.size:
                i = int(finite[-1])
                out.append((int(data["step"].iloc[i]), float(values[i]), colours[k]))
        return out

    def mark_diverged(self, k: int) -> None:
        """Seed k has stopped: end its line with an x and say so in the legend (redraws the charts)."""
        if k not in self.diverged:
            self.diverged = sorted([*self.diverged, int(k)])
            self._draw()

    def label(self, k: int) -> str:
        """Seed k's legend entry."""
        return f"seed {self.seeds[k]}" + (" (diverged)" if k in self.diverged else "")

    # ---- drawing ------------------------------------------------------------------------------
    def chart(self, name: str):
        """The DynamicMap of `name` ("loss" or "bit_errors"): a line per seed from the Buffer, and
        an invisible line that carries the hover: one tooltip with every seed at the hovered step."""
        hv, K = self.hv, len(self.seeds)
        dims = [hv.Dimension(column(name, k), label=Y_LABELS[name]) for k in range(K)]  # the y axis named once
        labels = [self.label(k) for k in range(K)]
        # the carrier: drawn through the mean of the seeds' values (finite wherever a seed is), so
        # 'vline' finds it at every step; its tooltip lists every seed's column of the same row
        carried = [hv.Dimension(f"hover_{name}", label="mean"),
                   *(hv.Dimension(column(name, k), label=labels[k]) for k in range(K))]

        def draw(data):
            layers = [hv.Curve(data, "step", dims[k], label=labels[k]) for k in range(K)]
            marks = self.marks(name, data)
            if marks:
                layers.append(hv.Scatter(pd.DataFrame(marks, columns=["step", "y", "colour"]), "step",
                                         ["y", "colour"]))
            layers.append(hv.Curve(data, "step", carried, group="Hover"))
            return hv.Overlay(layers)

        value = charts.hover_tooltips("step", column(name, 0))[-1][1].replace(column(name, 0), "{}")
        tooltips = [("training step", "@{step}{0,0}"),
                    *((labels[k], value.replace("{}", column(name, k), 1)) for k in range(K))]
        shared = charts.curve_opts(x="step", y=Y_LABELS[name])  # its width and count ticks; the hover is the carrier's
        curve = {k: v for k, v in shared.items() if k not in ("backend", "tools", "hover_mode", "hover_tooltips")}
        hover = dict(curve, tools=["hover"], hover_mode=shared["hover_mode"], hover_tooltips=tooltips, line_alpha=0,
                     color="#000000", muted_alpha=0)
        curve.update(color=hv.Cycle(seed_colours(K)), tools=[])
        overlay = {k: v for k, v in charts.overlay_opts(logy=name == "loss" and self.log_loss, title=TITLES[name],
                                                        height=HEIGHT, xlabel="training step",
                                                        ylabel=Y_LABELS[name]).items() if k != "backend"}
        overlay.update(show_legend=K > 1)
        scatter = dict(marker="x", size=13, line_width=2.5, color="colour", tools=[])
        return hv.DynamicMap(draw, streams=[self.buffer]).opts(
            {"Curve": curve, "Curve.Hover": hover, "Overlay": overlay, "Scatter": scatter}, backend="bokeh")

    def _draw(self) -> None:
        self._loss.object = self.chart("loss")
        self._errors.object = self.chart("bit_errors")

    @param.depends("log_loss", watch=True)
    def _log_changed(self) -> None:
        self._loss.object = self.chart("loss")

    def __panel__(self):
        return pn.Column(pn.Row(self._loss, self._errors, sizing_mode="stretch_width"),
                         pn.Row(self.smoothing_choice, self.log_toggle), sizing_mode="stretch_width")
