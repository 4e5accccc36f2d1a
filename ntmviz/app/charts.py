"""Helpers shared by the app's HoloViews charts (the Sweep tab's learning curves, the Train tab's
training curves): readable count ticks, smoothing, colours for runs from their settings, and the
options every curve chart takes.

    from ntmviz.app import charts

    hv = charts.holoviews()                                  # HoloViews with its Bokeh backend loaded
    smooth = charts.smooth(losses, 0.9)                      # [n] -> [n], NaN stays a gap
    colours = charts.run_colours([{"lr": 1e-3}, {"lr": 1e-2}, {"lr": 1e-3}])   # by what varies
    curve = hv.Curve((steps, smooth), "step", "loss", label="lr=0.001").opts(
        color=colours[0], **charts.curve_opts(x="step", y="loss"))
    chart = hv.Overlay([curve, ...]).opts(**charts.overlay_opts(logy=True))
    charts.compact(140_000) == "140k"                        # what count_formatter() shows on an axis

Nothing here is drawn or sent anywhere by itself; importing it imports no HoloViews (HoloViews and
its Bokeh backend load on the first call to holoviews(), as a chart is first built).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping, Sequence

import numpy as np

# ---- ticks ----------------------------------------------------------------------------------------
_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))

# compact() in JavaScript, for Bokeh's axes (a browser test checks the two agree value by value).
# toPrecision(4) then Number(): 4 significant digits (halves away from zero), trailing zeros dropped.
_COMPACT_JS = """
const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
function compact(v) {
  if (!Number.isFinite(v)) return "";
  const sign = v < 0 ? "-" : "";
  const a = Math.abs(v);
  for (let i = 0; i < units.length; i++) {
    let [size, suffix] = units[i];
    if (a >= size) {
      let s = Number((a / size).toPrecision(4));
      if (s >= 1000 && i > 0) {
        [size, suffix] = units[i - 1];
        s = Number((a / size).toPrecision(4));
      }
      return sign + String(s) + suffix;
    }
  }
  const s = Number(a.toPrecision(4));
  if (s >= 1000) return sign + "1k";
  return s === 0 ? "0" : sign + String(s);
}
return compact(tick);
"""


def _precision4(a: float) -> float:
    """a >= 0 to 4 significant digits as JavaScript's toPrecision(4) rounds: the exact binary value,
    halves up (Python's own formatting rounds halves to even: 100.25 -> 100.2, not 100.3)."""
    if a == 0:
        return 0.0
    exact = Decimal(a)
    quantum = Decimal(1).scaleb(exact.adjusted() - 3)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def _js_number(x: float) -> str:
    """x >= 0 as JavaScript's String(x) writes it: integers without '.0', the shortest digits that
    read back as x, exponents only below 1e-6 (as '1.5e-7')."""
    if x == int(x) and x < 1e21:
        return str(int(x))
    if x < 1e-6:
        mantissa, exp = repr(x).split("e")
        return f"{mantissa}e{int(exp)}"
    text = repr(x)
    if "e" in text:  # Python writes 1e-05 and 1e-06 with an exponent, JavaScript does not
        return np.format_float_positional(x, trim="-")
    return text


def compact(x: float) -> str:
    """A count as a short label: 0, 950, 1.5k, 140k, 2.35M, 1G (4 significant digits at most,
    trailing zeros dropped); '' for NaN or infinity. What count_formatter() shows on an axis."""
    x = float(x)
    if not math.isfinite(x):
        return ""
    sign, a = ("-" if x < 0 else ""), abs(x)
    for i, (size, suffix) in enumerate(_UNITS):
        if a >= size:
            scaled = _precision4(a / size)
            if scaled >= 1000 and i > 0:  # 999,999 rounds to 1000k: that is 1M
                size, suffix = _UNITS[i - 1]
                scaled = _precision4(a / size)
            return sign + _js_number(scaled) + suffix
    scaled = _precision4(a)
    if scaled >= 1000:  # 999.95 rounds up to 1000: that is 1k
        return sign + "1k"
    return "0" if scaled == 0 else sign + _js_number(scaled)


def count_formatter():
    """A Bokeh tick formatter for counts (steps, sequences seen): compact() in the browser, so an
    axis reads 0, 50k, 100k, 150k, never 1.500e+5. Pass as HoloViews' xformatter / yformatter."""
    from bokeh.models import CustomJSTickFormatter

    return CustomJSTickFormatter(code=_COMPACT_JS)


# ---- smoothing ----------------------------------------------------------------------------------
def smooth(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average of a series, [n] -> [n] float64, as TensorBoard smooths.

    s_i = weight * s_(i-1) + (1 - weight) * v_i over the finite values in order, divided by
    (1 - weight ** k) after k of them so the start is not pulled towards 0 (the first output equals
    the first value). NaN and infinite values are gaps: their output is NaN and they do not move
    the average. weight in [0, 1): 0 returns the values unchanged (as float64, gaps as NaN)."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    out = np.full(v.shape, np.nan)
    finite = np.isfinite(v)
    if weight == 0.0:
        out[finite] = v[finite]
        return out
    level, k = 0.0, 0
    for i in np.flatnonzero(finite).tolist():  # a plain loop: a few thousand points, microseconds each
        level = weight * level + (1.0 - weight) * float(v[i])
        k += 1
        out[i] = level / (1.0 - weight ** k)
    return out


# ---- log scales -----------------------------------------------------------------------------------
def log_floor(*series: Sequence[float] | np.ndarray, default: float = 1e-3) -> float:
    """Where a log axis puts zeros: the power of ten at or below half the smallest positive finite
    value in `series` (`default` if there is none). E.g. bit errors of 0.125 and 2.5 -> 0.01."""
    smallest = math.inf
    for s in series:
        a = np.asarray(s, dtype=np.float64).reshape(-1)
        a = a[np.isfinite(a) & (a > 0)]
        if a.size:
            smallest = min(smallest, float(a.min()))
    if not math.isfinite(smallest):
        return default
    return 10.0 ** math.floor(math.log10(smallest / 2))


def for_log(values: Sequence[float] | np.ndarray, floor: float) -> np.ndarray:
    """[n] float64: values below `floor` (zeros, negatives) raised to it, so a log axis draws them
    at its bottom instead of dropping them; NaN stays NaN."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return np.where(np.isnan(v), np.nan, np.maximum(v, floor))


# ---- colours for runs ----------------------------------------------------------------------------
# Paul Tol's "muted" set led by his vibrant blue and orange (palette.HEAD_COLOURS' order): told apart
# with the common colour-vision deficiencies, all dark enough for a line on white.
CATEGORICAL = ("#0077bb", "#ee7733", "#117733", "#cc6677", "#332288", "#ddcc77", "#88ccee", "#882255",
               "#44aa99", "#999933", "#aa4499", "#555555")
SEQUENTIAL_RANGE = (0.0, 0.75)  # of Plasma: past ~0.75 its orange and yellow are too pale on white


def categorical(n: int) -> list[str]:
    """n colours for unordered things: CATEGORICAL, then (past 12) colorcet's glasbey_dark."""
    if n <= len(CATEGORICAL):
        return list(CATEGORICAL[:n])
    import colorcet

    extra = [c for c in colorcet.glasbey_dark if c not in CATEGORICAL]
    return [*CATEGORICAL, *extra[: n - len(CATEGORICAL)]]  # glasbey_dark has 256


def sequential(n: int) -> list[str]:
    """n colours in order, dark blue -> purple -> orange (Plasma over SEQUENTIAL_RANGE), evenly
    spaced: the smallest value darkest. One colour: the dark end."""
    from bokeh.palettes import Plasma256

    lo, hi = SEQUENTIAL_RANGE
    if n == 1:
        return [Plasma256[0]]
    return [Plasma256[round(255 * (lo + (hi - lo) * i / (n - 1)))] for i in range(n)]


def varying_keys(settings: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys whose values differ between the runs' settings (a key missing from some runs
    counts as varying), in the order they first appear."""
    keys: list[str] = []
    for s in settings:
        keys.extend(k for k in s if k not in keys)
    missing = object()
    return [k for k in keys if len({_key(s.get(k, missing)) for s in settings}) > 1]


def _key(value: Any) -> Any:
    """A hashable stand-in for a setting's value (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _key(v)) for k, v in value.items()))
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _order(value: Any) -> tuple:
    """Sort key across mixed types: numbers by value first, then everything else by its text."""
    return (0, float(value), "") if _is_number(value) else (1, 0.0, repr(value))


def settings_order(settings: Mapping[str, Any], keys: Sequence[str]) -> tuple:
    """A sort key for runs by the values of `keys` (numbers by value, before other values): the
    order run_colours gives its colours in, and the order a legend should list them in."""
    return tuple(_order(_key(settings.get(k))) for k in keys)


def settings_label(settings: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """'lr=0.001, controller_size=100': the values of `keys` (default every key) in that order;
    '(defaults)' when there are none."""
    keys = list(settings) if keys is None else list(keys)
    return ", ".join(f"{k}={settings[k]}" for k in keys if k in settings) or "(defaults)"


def run_colours(settings: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> list[str]:
    """A colour per run, from its settings: runs with the same values of `keys` (default: the
    varying_keys) share a colour.

    One key, every value a number (a learning rate, a memory size): sequential() by rank of the
    distinct values, so the smallest is darkest and neighbours in value are neighbours in colour,
    however the values are spaced (1e-4, 1e-3, 1e-2 are three even steps). Otherwise: categorical()
    per distinct combination, in sorted order. Nothing varying: every run CATEGORICAL[0]."""
    keys = varying_keys(settings) if keys is None else list(keys)
    if not settings:
        return []
    combos = [tuple(_key(s.get(k)) for k in keys) for s in settings]
    distinct = sorted(set(combos), key=lambda c: tuple(_order(v) for v in c))  # as settings_order
    numeric = len(keys) == 1 and all(_is_number(c[0]) for c in distinct)
    palette = sequential(len(distinct)) if numeric and len(distinct) > 1 else categorical(len(distinct))
    colour = dict(zip(distinct, palette))
    return [colour[c] for c in combos]


# ---- HoloViews ------------------------------------------------------------------------------------
def holoviews():
    """The holoviews module with its Bokeh backend loaded (loading it makes Bokeh HoloViews'
    current backend unless another loaded backend already was: a notebook's choice stays)."""
    import holoviews as hv
    from holoviews import Store

    before = Store.current_backend if Store.current_backend in Store.renderers else None
    import holoviews.plotting.bokeh  # noqa: F401  registers the Bokeh plotting options

    if before is not None:
        Store.set_current_backend(before)
    return hv


def hover_tooltips(x: str, y: str, extra: Sequence[tuple[str, str]] = (), *, x_label: str = "step",
                   y_label: str = "value") -> list[tuple[str, str]]:
    """Tooltips for a curve whose key dimension is `x` and value dimension `y`: the `extra`
    (label, field) pairs first (e.g. ("run", "run")), then x as a whole number with thousands
    separators and y with up to 3 decimals. Bokeh writes field values as text, never markup."""
    return [*((label, f"@{{{name}}}") for label, name in extra), (x_label, f"@{{{x}}}{{0,0}}"),
            (y_label, f"@{{{y}}}{{0.[000]}}")]


def curve_opts(*, x: str, y: str, extra: Sequence[tuple[str, str]] = (), x_label: str = "step",
               y_label: str = "value", line_width: float = 1.5) -> dict[str, Any]:
    """Options for each hv.Curve of a chart of runs (Bokeh backend): hover in 'vline' mode, so
    moving along x shows every run's value there; the tooltips of hover_tooltips(); compact counts
    on x. Apply as curve.opts(**curve_opts(x=..., y=...), color=...)."""
    return dict(backend="bokeh", tools=["hover"], hover_mode="vline", line_width=line_width,
                hover_tooltips=hover_tooltips(x, y, extra, x_label=x_label, y_label=y_label),
                xformatter=count_formatter(), muted_alpha=0.08)


def overlay_opts(*, logy: bool = False, legend: str = "right", title: str = "", height: int = 340,
                 xlabel: str | None = None, ylabel: str | None = None) -> dict[str, Any]:
    """Options for the hv.Overlay of the runs (Bokeh backend): a log or linear y axis, the legend
    beside the plot at `legend` ('right' keeps it off curves ending at the right edge; 'top_right'
    etc. put it inside) with clicks muting a run, the width of its container, pan/zoom tools."""
    out: dict[str, Any] = dict(backend="bokeh", logy=logy, legend_position=legend, show_legend=True,
                               legend_opts={"click_policy": "mute"}, responsive=True, height=height,
                               title=title, tools=["pan", "wheel_zoom", "box_zoom", "reset", "save"],
                               active_tools=["pan", "wheel_zoom"], show_grid=True)
    if xlabel is not None:
        out["xlabel"] = xlabel
    if ylabel is not None:
        out["ylabel"] = ylabel
    return out
