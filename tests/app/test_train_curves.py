"""TrainingCurves without a browser: what one Buffer send carries, what the rendered Bokeh charts
hold (each seed's line, its hover, its legend, the x of a diverged seed, the axes), thinning by
thinning.thin_keys, smoothing as charts.smooth, the log scale."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import CustomJSTickFormatter, GlyphRenderer, HoverTool, Legend, LinearScale, LogScale, Plot, Scatter
from pyviz_comms import Comm

from ntmviz.app import charts
from ntmviz.app.train_curves import TrainingCurves, column
from ntmviz.thinning import thin_keys

ALWAYS = math.inf  # `now` for extend(): past any wait, so every call sends


def metrics(step: int, losses, errors=None):
    """A StepMetrics-like row of several seeds (NaN: a seed that has diverged)."""
    errors = errors if errors is not None else [v * 2 for v in losses]
    return SimpleNamespace(step=step, sequences=4 * step, loss=float(np.nanmean(losses)),
                           bit_errors=float(np.nanmean(errors)), model_loss=list(losses),
                           model_bit_errors=list(errors))


def rng_rows(steps, seeds=3, seed=0):
    rng = np.random.default_rng(seed)
    return [metrics(s, rng.uniform(0.5, 3.0, seeds).tolist(), rng.uniform(0.0, 5.0, seeds).tolist()) for s in steps]


@pytest.fixture
def curves():
    c = TrainingCurves(seeds=[3, 5, 8])
    c.root = pn.panel(c).get_root(Document(), Comm())
    return c


def plots(c) -> dict[str, Plot]:
    return {p.title.text: p for p in c.root.select({"type": Plot}) if p.title is not None and p.title.text}


def lines(plot) -> dict[str, dict]:
    """Each drawn line by its legend label, in the legend's order: {"x", "y", "renderer"}."""
    renderers = [r for r in plot.select({"type": GlyphRenderer})  # the seeds' lines (not the hover's carrier)
                 if type(r.glyph).__name__ == "Line" and r.glyph.line_alpha != 0]
    legends = [g for g in plot.select({"type": Legend}) if g.items]
    if legends:  # several seeds: the legend's order and labels
        pairs = [(i.label["value"] if isinstance(i.label, dict) else i.label.value, i.renderers[0])
                 for i in legends[0].items]
    else:  # one seed: no legend entries
        [only] = renderers
        pairs = [("", only)]
    out = {}
    for label, r in pairs:
        data = r.data_source.data
        out[label] = {"x": [float(v) for v in data[r.glyph.x]], "y": [float(v) for v in data[r.glyph.y]],
                      "renderer": r}
    return out


def test_one_send_carries_every_seed_and_the_page_draws_each_seeds_column(curves):
    sends = []
    real = curves.buffer.send
    curves.buffer.send = lambda frame: sends.append(frame) or real(frame)
    rows = rng_rows(range(1, 6))
    curves.extend(rows, now=ALWAYS)
    assert len(sends) == 1 and list(sends[0].columns) == ["step", "sequences", "loss", "bit_errors", "loss_1",
                                                          "bit_errors_1", "loss_2", "bit_errors_2", "hover_loss",
                                                          "hover_bit_errors"]
    curves.extend(rng_rows(range(6, 9), seed=1), now=ALWAYS)
    assert len(sends) == 2 and sends[1]["step"].tolist() == [6, 7, 8]  # only the new rows travel
    every = rows + rng_rows(range(6, 9), seed=1)
    for title, name in (("Loss (nats per sequence)", "loss"), ("Bit errors per sequence", "bit_errors")):
        drawn = lines(plots(curves)[title])
        assert list(drawn) == ["seed 3", "seed 5", "seed 8"]
        for k, seed in enumerate((3, 5, 8)):
            expected = [getattr(m, f"model_{name}")[k] for m in every]
            assert drawn[f"seed {seed}"]["x"] == list(range(1, 9))
            assert drawn[f"seed {seed}"]["y"] == pytest.approx(expected, rel=0, abs=0)
            assert curves.points(k)[name] == expected


def test_a_wait_keeps_the_curves_to_their_share_of_the_server(curves):
    """After a send costing c seconds, nothing is sent for c (1 / load - 1) seconds; flush sends."""
    sends = []
    real = curves.buffer.send
    curves.buffer.send = lambda frame: sends.append(len(frame)) or real(frame)
    curves.extend(rng_rows([1]), now=1000.0)
    wait = curves._next_send - 1000.0
    assert len(sends) == 1 and wait > 0
    curves.extend(rng_rows([2, 3]), now=1000.0 + wait / 2)  # too soon: kept for later
    assert sends == [1] and curves.points(0)["step"] == [1, 2, 3]
    curves.extend(rng_rows([4]), now=1000.0 + wait)
    assert sends == [1, 3]
    curves.extend(rng_rows([5]), now=0.0)
    curves.flush()
    assert sends == [1, 3, 1] and curves.drawn()["step"].tolist() == [1, 2, 3, 4, 5]


def test_one_tooltip_has_every_seed_at_the_hovered_step(curves):
    rows = rng_rows(range(1, 4))
    rows[2].model_loss[1] = math.nan  # seed 5 has diverged at step 3
    curves.extend(rows, now=ALWAYS)
    loss = plots(curves)["Loss (nats per sequence)"]
    [hover] = loss.select({"type": HoverTool})  # one hover, on one line: the invisible carrier
    assert hover.mode == "vline"  # moving along x, whatever the height
    assert hover.tooltips == [("training step", "@{step}{0,0}"), ("seed 3", "@{loss}{0.[000]}"),
                              ("seed 5", "@{loss_1}{0.[000]}"), ("seed 8", "@{loss_2}{0.[000]}")]
    [carrier] = hover.renderers
    assert carrier.glyph.line_alpha == 0 and carrier not in [line["renderer"] for line in lines(loss).values()]
    data = carrier.data_source.data  # its row of each step holds every seed's value there
    for k, name in enumerate(("loss", "loss_1", "loss_2")):
        assert [float(v) for v in data[name]] == pytest.approx([m.model_loss[k] for m in rows], nan_ok=True)
    # it runs through the mean of the seeds' finite values, so 'vline' finds it at every step
    assert [float(v) for v in data[carrier.glyph.y]] == pytest.approx(
        [float(np.nanmean(m.model_loss)) for m in rows])


def test_lines_legend_and_axes(curves):
    curves.extend(rng_rows(range(1, 4)), now=ALWAYS)
    loss = plots(curves)["Loss (nats per sequence)"]
    colours = charts.categorical(3)
    assert list(lines(loss)) == ["seed 3", "seed 5", "seed 8"]
    for line, colour in zip(lines(loss).values(), colours):
        assert line["renderer"].glyph.line_color == colour
    assert isinstance(loss.xaxis[0].formatter, CustomJSTickFormatter)  # 140k, not 1.400e+5
    assert loss.xaxis[0].formatter.code == charts.count_formatter().code
    assert loss.xaxis[0].axis_label == "training step" and loss.yaxis[0].axis_label == "loss"
    assert isinstance(loss.y_scale, LinearScale)
    [legend] = loss.select({"type": Legend})
    assert legend.click_policy == "mute"


def test_thinning_keeps_the_rows_thin_keys_keeps_then_takes_rows_that_far_apart():
    c = TrainingCurves(seeds=[0], max_points=10)
    c.root = pn.panel(c).get_root(Document(), Comm())
    kept, spacing = [], 0.0  # the reference: thin_keys to half, then rows at least `spacing` apart
    for step in range(1, 60):
        c.extend([metrics(step, [1.0 / step])], now=ALWAYS)
        if kept and step - kept[-1] < spacing:
            continue
        kept.append(step)
        if len(kept) > 10:
            kept = [kept[i] for i in thin_keys(kept, 5)]
            spacing = (kept[-1] - kept[0]) / (len(kept) - 1)
    assert c.points(0)["step"] == kept and c.drawn()["step"].tolist() == kept
    assert kept[0] == 1 and len(kept) <= 10
    assert lines(plots(c)["Loss (nats per sequence)"])[""]["x"] == kept  # the refilled page too
    assert c.points(0)["loss"] == [1.0 / s for s in kept]


def test_smoothing_draws_charts_smooth_of_the_rows_and_goes_on_streaming(curves):
    rows = rng_rows(range(1, 30))
    for i in range(0, 20, 4):
        curves.extend(rows[i:i + 4], now=ALWAYS)
    curves.smoothing = 0.8
    curves.extend(rows[20:], now=ALWAYS)  # the moving average carries on from the refilled curve
    drawn = curves.drawn()
    for k in range(3):
        for name in ("loss", "bit_errors"):
            np.testing.assert_allclose(drawn[column(name, k)], charts.smooth(curves.points(k)[name], 0.8), rtol=1e-12)
    page = lines(plots(curves)["Loss (nats per sequence)"])
    np.testing.assert_allclose(page["seed 5"]["y"], charts.smooth(curves.points(1)["loss"], 0.8), rtol=1e-12)
    assert curves.points(1)["loss"] == [m.model_loss[1] for m in rows]  # the raw rows stay as measured
    choice = curves.smoothing_choice
    assert choice.value == 0.8 and choice.options["medium (0.8)"] == 0.8  # the choice shows the weight set
    choice.value = choice.options["none"]  # as the page's pick does
    assert curves.smoothing == 0.0 and curves.drawn()["loss"].tolist() == curves.points(0)["loss"]
    curves.smoothing = 0.7  # a weight the choice did not offer is offered then
    assert choice.value == 0.7 and choice.options["0.7"] == 0.7


def test_the_loss_goes_on_a_log_scale_and_the_bit_errors_stay(curves):
    curves.extend(rng_rows(range(1, 5)), now=ALWAYS)
    curves.log_toggle.value = True
    assert curves.log_loss
    charts_ = plots(curves)
    assert isinstance(charts_["Loss (nats per sequence)"].y_scale, LogScale)
    assert isinstance(charts_["Bit errors per sequence"].y_scale, LinearScale)
    assert lines(charts_["Loss (nats per sequence)"])["seed 3"]["y"] == curves.points(0)["loss"]


def test_a_diverged_seed_stops_with_an_x_and_says_so(curves):
    rows = [metrics(s, [1.0 / s, 2.0 / s if s <= 4 else math.nan, 3.0 / s],
                    [0.5, 1.5 if s <= 4 else math.nan, 2.5]) for s in range(1, 9)]
    curves.extend(rows, now=ALWAYS)
    curves.mark_diverged(1)
    assert curves.diverged == [1] and curves.label(1) == "seed 5 (diverged)"
    for title, value in (("Loss (nats per sequence)", 2.0 / 4), ("Bit errors per sequence", 1.5)):
        plot = plots(curves)[title]
        assert list(lines(plot)) == ["seed 3", "seed 5 (diverged)", "seed 8"]
        [marks] = [r for r in plot.select({"type": GlyphRenderer}) if isinstance(r.glyph, Scatter)]
        assert marks.glyph.marker == "x"
        assert list(marks.data_source.data["step"]) == [4] and list(marks.data_source.data["y"]) == [value]
        assert marks.glyph.line_color == charts.categorical(3)[1]  # the seed's colour
        y = lines(plot)["seed 5 (diverged)"]["y"]
        assert all(math.isnan(v) for v in y[4:]) and not any(math.isnan(v) for v in y[:4])  # the line stops
    assert curves.points(1)["step"] == [1, 2, 3, 4]


def test_reset_draws_a_checkpoints_past_curve_first():
    c = TrainingCurves(seeds=[0])
    history = {"sequences": [32, 64, 96], "loss": [3.0, 2.0, 1.5], "bit_errors": [9.0, 6.0, 4.0]}
    c.reset([4], history, batch_size=32)
    c.root = pn.panel(c).get_root(Document(), Comm())
    assert c.seeds == [4] and c.points(0) == {"step": [1, 2, 3], "sequences": [32, 64, 96],
                                              "loss": [3.0, 2.0, 1.5], "bit_errors": [9.0, 6.0, 4.0]}
    c.extend([metrics(4, [1.0])], now=ALWAYS)
    assert lines(plots(c)["Loss (nats per sequence)"])[""]["y"] == [3.0, 2.0, 1.5, 1.0]
