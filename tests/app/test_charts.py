"""charts.py: count labels, smoothing against a plain loop, log floors, colours for runs from their
settings, and what the shared options make HoloViews draw (checked on the rendered Bokeh figure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bokeh.models import CustomJSTickFormatter, HoverTool, LogScale, LinearScale

from ntmviz.app import charts


@pytest.mark.parametrize("value, label", [
    (0, "0"), (7, "7"), (950, "950"), (999.4, "999.4"), (999.96, "1k"), (1000, "1k"), (1500, "1.5k"),
    (25_000, "25k"), (140_000, "140k"), (102_500, "102.5k"), (999_999, "1M"), (2_350_000, "2.35M"),
    (1e9, "1G"), (3e12, "3T"), (-2500, "-2.5k"), (0.25, "0.25"), (100.25, "100.3"), (1e-5, "0.00001"),
    (1.5e-7, "1.5e-7"), (math.nan, ""), (math.inf, "")])
def test_compact_labels(value, label):
    assert charts.compact(value) == label


def test_count_formatter_is_a_bokeh_js_formatter_of_tick():
    formatter = charts.count_formatter()
    assert isinstance(formatter, CustomJSTickFormatter)
    assert "return compact(tick);" in formatter.code and "toPrecision(4)" in formatter.code


def _reference_ema(values, weight):
    out, level, k = [], 0.0, 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(math.nan)
            continue
        level = weight * level + (1 - weight) * v
        k += 1
        out.append(level / (1 - weight ** k))
    return out


def test_smooth_matches_a_plain_loop_and_steps_over_gaps():
    rng = np.random.default_rng(3)
    values = rng.normal(2.0, 1.0, 37)
    values[[0, 5, 6, 30]] = [np.nan, np.inf, np.nan, -np.inf]
    got = charts.smooth(values, 0.8)
    assert got.shape == (37,) and got.dtype == np.float64
    np.testing.assert_allclose(got, _reference_ema(values.tolist(), 0.8), equal_nan=True)
    assert np.isnan(got[[0, 5, 6, 30]]).all() and np.isfinite(np.delete(got, [0, 5, 6, 30])).all()
    # the first finite value comes out as it went in (debiased), and a gap does not move the average
    assert got[1] == values[1]
    assert got[7] == pytest.approx(_reference_ema([values[1], values[2], values[3], values[4], values[7]], 0.8)[-1])


def test_smooth_edges():
    assert charts.smooth([], 0.9).shape == (0,)
    np.testing.assert_array_equal(charts.smooth([1.0, np.nan, 3.0], 0.0), [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(charts.smooth([np.nan, np.nan], 0.9), [np.nan, np.nan])
    np.testing.assert_allclose(charts.smooth([4.0] * 50, 0.99), [4.0] * 50)  # a flat series stays flat
    # heavy smoothing lags a step: after it, still well below the new level
    step = charts.smooth([0.0] * 10 + [1.0] * 10, 0.9)
    assert 0 < step[10] < 0.2 and step[-1] < 1.0
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError):
            charts.smooth([1.0], bad)


def test_log_floor_and_for_log():
    assert charts.log_floor([0, 0.125, 2.5]) == 0.01  # half of 0.125 is 0.0625 -> 0.01
    assert charts.log_floor([0.3], [np.nan, 0.05, -1]) == 0.01  # half of 0.05 is exactly 0.025 -> 0.01
    assert charts.log_floor([4.0]) == 1.0
    assert charts.log_floor([0, np.nan]) == 1e-3 and charts.log_floor([], default=0.5) == 0.5
    np.testing.assert_array_equal(charts.for_log([0.0, 0.5, np.nan, -2.0, 3.0], 0.01), [0.01, 0.5, np.nan, 0.01, 3.0])


def test_varying_keys_and_labels():
    runs = [{"lr": 1e-3, "heads": 1, "task.bits": 8}, {"lr": 1e-2, "heads": 1, "task.bits": 8},
            {"lr": 1e-3, "heads": 2, "task.bits": 8}]
    assert charts.varying_keys(runs) == ["lr", "heads"]
    assert charts.varying_keys([{"a": 1}, {"a": 1, "b": 2}]) == ["b"]  # missing in one: varies
    assert charts.varying_keys([{"shape": [1, 2]}, {"shape": [1, 2]}]) == []  # lists compare by value
    assert charts.varying_keys([{"a": 1}]) == [] and charts.varying_keys([]) == []
    assert charts.settings_label(runs[1], ["lr", "heads"]) == "lr=0.01, heads=1"
    assert charts.settings_label({}, []) == "(defaults)"


def test_a_numeric_setting_gets_ordered_colours_by_rank():
    lrs = [1e-2, 1e-4, 1e-3, 1e-2, 1e-4]
    colours = charts.run_colours([{"lr": v, "seed_note": "x"} for v in lrs])
    palette = charts.sequential(3)
    # smallest darkest, in rank order, whatever the spacing; runs of one value share its colour
    assert colours == [palette[2], palette[0], palette[1], palette[2], palette[0]]
    assert len(set(palette)) == 3 and palette[0] == "#0C0786"
    assert _luminance(palette[0]) < _luminance(palette[1]) < _luminance(palette[2])


def test_several_settings_get_categorical_colours():
    runs = [{"lr": 1e-3, "model": "ntm"}, {"lr": 1e-3, "model": "lstm"}, {"lr": 1e-2, "model": "ntm"},
            {"lr": 1e-3, "model": "ntm"}]
    colours = charts.run_colours(runs)
    # sorted combinations: (1e-3, lstm), (1e-3, ntm), (1e-2, ntm)
    assert colours == [charts.CATEGORICAL[1], charts.CATEGORICAL[0], charts.CATEGORICAL[2], charts.CATEGORICAL[1]]
    assert charts.run_colours([{"model": "ntm"}, {"model": "dnc"}]) == [charts.CATEGORICAL[1], charts.CATEGORICAL[0]]
    assert charts.run_colours([{"lr": 1}, {"lr": 1}]) == [charts.CATEGORICAL[0]] * 2  # nothing varies
    assert charts.run_colours([]) == []
    many = charts.categorical(40)
    assert len(set(many)) == 40 and many[:12] == list(charts.CATEGORICAL)


def _luminance(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_options_draw_what_they_say():
    hv = charts.holoviews()
    xs = np.array([0.0, 50_000.0, 100_000.0])
    curves = [hv.Curve({"step": xs, "loss": ys, "run": [name] * 3}, "step", ["loss", "run"], label=name).opts(
        color=colour, **charts.curve_opts(x="step", y="loss", extra=[("run", "run")], y_label="loss"))
        for name, ys, colour in (("a", [1.0, 0.5, 0.25], "#0077bb"), ("b", [2.0, 1.0, 0.1], "#ee7733"))]
    for logy, scale in ((True, LogScale), (False, LinearScale)):
        fig = hv.render(hv.Overlay(curves).opts(**charts.overlay_opts(logy=logy, title="t")), backend="bokeh")
        assert isinstance(fig.y_scale, scale)
        assert isinstance(fig.xaxis[0].formatter, CustomJSTickFormatter)
        hovers = [t for t in fig.tools if isinstance(t, HoverTool)]
        assert len(hovers) == 1 and hovers[0].mode == "vline"
        assert hovers[0].tooltips == [("run", "@{run}"), ("step", "@{step}{0,0}"), ("loss", "@{loss}{0.[000]}")]
        lines = {r.name: r for r in fig.renderers}
        assert {n: r.glyph.line_color for n, r in lines.items()} == {"a": "#0077bb", "b": "#ee7733"}
        assert list(lines["b"].data_source.data["loss"]) == [2.0, 1.0, 0.1]
        legend = fig.legend[0]
        assert [i.label.value for i in legend.items] == ["a", "b"] and legend.click_policy == "mute"
        assert fig.right and fig.right[0] is legend  # beside the plot, not over the curves' ends
