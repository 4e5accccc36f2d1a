"""The Sweep tab without a browser, on a real sweep folder written by sweep.py's own functions
(train_ensemble: no Dask needed to make one): the table holds the rows on disk, the curves the
checkpoints' histories, and the buttons open the right checkpoints in Explore and Compare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from bokeh.document import Document
from bokeh.models import (CustomJSTickFormatter, GlyphRenderer, HoverTool, Line, LinearScale, LogScale, MultiLine,
                          Plot, Scatter, Segment)
from bokeh.plotting import figure as Figure

import ntmviz
from ntmviz import checkpoint
from ntmviz.app.compare import checkpoint_pair
from ntmviz.app.explorer import Explorer
from ntmviz.app.sources import load_source, record_episode
from ntmviz.app import charts
from ntmviz.app.sweep_chart import DODGE, HOVER_POINTS, KEY_COLOUR, OUTCOME_STYLE, learning_chart, log_floor_for, run_lines
from ntmviz.app.sweep_view import (Curves, Run, SweepView,
                                   find_sweeps, read_curves)
from ntmviz.sweep import Sweep, read_folder, run_paths, train_ensemble, write_summary

# A copy task small enough that some runs solve it in 200 steps and some do not (measured: lr 1e-4
# solves neither seed; lr 3e-2 one or both, as the build's floating point falls, so the tests
# count the solved runs from the rows on disk). About 12 s on this machine.
TINY = {"task.max_length": 2, "task.bits": 2, "memory_slots": 6, "memory_width": 4, "controller_size": 12,
        "batch_size": 8}
HOSTILE = '<img src=x onerror="window.__pwned=1">'


def make_sweep(folder: Path, combinations=(0, 1)) -> Sweep:
    """A real sweep folder: 2 learning rates x 2 seeds, the runs of `combinations` trained."""
    sweep = Sweep.create("copy", seeds=[0, 1], grid={"lr": [1e-4, 3e-2]}, fixed=TINY, steps=200,
                         validation_samples=20, ensemble_size=2)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(sweep.to_json())
    threads = torch.get_num_threads()
    try:
        for c in combinations:
            train_ensemble(sweep.to_json(), str(folder), c, [0, 1])
    finally:
        torch.set_num_threads(threads)  # train_ensemble sets one thread, as a Dask worker wants
    write_summary(sweep, folder)
    return sweep


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sweeps") / "copy-lr"
    make_sweep(folder)
    return folder


@pytest.fixture
def sweep_copy(sweep_folder, tmp_path) -> Path:
    """A copy of the finished sweep this test may change."""
    return Path(shutil.copytree(sweep_folder, tmp_path / "copy-lr"))


def rows_on_disk(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("c*/seed*.json"))]


def test_the_table_holds_the_rows_on_disk(sweep_folder):
    view = SweepView(sweep_folder)
    assert view.message == ""
    rows = rows_on_disk(sweep_folder)
    assert len(rows) == 4 and {r["solved"] for r in rows} == {True, False}  # the fixture makes both kinds
    data = view.source.data
    assert data["run"] == [f"c{r['combination']}/seed{r['seed']}" for r in rows]
    assert data["g0"] == [json.dumps(r["lr"]) for r in rows]  # the setting the grid varies
    assert data["seed"] == [r["seed"] for r in rows]
    assert data["bit_errors"] == [r["bit_errors"] for r in rows]
    assert data["interval"] == [f"[{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]" for r in rows]
    assert data["exact"] == [100 * r["exact"] for r in rows]
    assert data["solved"] == [{True: "yes", False: "no"}[r["solved"]] for r in rows]
    assert data["status"] == [r["status"] for r in rows] == ["done"] * 4
    assert data["steps"] == [r["steps"] for r in rows] == [200] * 4
    assert data["train_seconds"] == [r["train_seconds"] for r in rows]
    # the same runs and scores as summary.csv
    lines = (sweep_folder / "summary.csv").read_text().splitlines()[1:]
    assert [float(line.split(",")[3]) for line in lines] == pytest.approx(data["bit_errors"])
    titles = [c.title for c in view.table.columns]
    assert titles[:3] == ["run", "lr", "seed"] and "95% interval" in titles and "train s" in titles
    how_many = sum(r["solved"] for r in rows)
    assert f"4 of 4 runs finished, {how_many} solved" in view.summary.object.replace("&#44;", ",")


def drawn(view) -> Figure:
    """The Bokeh figure the view's chart pane puts in the page."""
    root = view.plot.get_root(Document())
    [fig] = root.select({"type": Plot})
    return fig


DASHES = {"solid": (), "dashed": (6,), "dotted": (2, 4)}  # Bokeh's named dash patterns


def dash_of(glyph) -> tuple:
    """A glyph's line dash as its pattern, whether given by name or as the pattern."""
    return DASHES[glyph.line_dash] if isinstance(glyph.line_dash, str) else tuple(glyph.line_dash)


def renderers(fig: Figure, glyph: type) -> list[GlyphRenderer]:
    return [r for r in fig.renderers if isinstance(r.glyph, glyph)]


def lines_by_run(fig: Figure, width: float = 1.5) -> dict[str, tuple]:
    """{run: (colour, dash, xs, ys)} of the lines `width` wide (1.5 training, 3 validation): one
    MultiLine per outcome, a line per run."""
    out = {}
    for r in renderers(fig, MultiLine):
        if r.glyph.line_width != width:
            continue
        assert r.glyph.line_color == "colour"  # a colour per line, from the source
        data = r.data_source.data
        for run, colour, xs, ys in zip(data["run"], data["colour"], data["xs"], data["ys"], strict=True):
            out[run] = (colour, dash_of(r.glyph), list(xs), list(ys))
    return out


def points_by_run(fig: Figure, *columns: str, marker: str | None = None) -> dict[str, list]:
    """{run: [(marker, colour, *columns) of each of its points]} of the Scatters that hold `columns`
    (their 'label' column starts with the run's name)."""
    out: dict[str, list] = {}
    for r in renderers(fig, Scatter):
        data = r.data_source.data
        if not all(c in data for c in ("label", *columns)):
            continue
        for i, label in enumerate(data["label"]):
            out.setdefault(label.split(":")[0], []).append(
                (r.glyph.marker, colour_of(r, i), *[data[c][i] for c in columns]))
    return out


def colour_of(renderer: GlyphRenderer, i: int) -> str:
    """The colour glyph i is drawn in: its row's 'color' (HoloViews' column for a colour per row), or
    the glyph's one colour (HoloViews makes one of a column that holds a single value)."""
    data = renderer.data_source.data
    return data["color"][i] if "color" in data else renderer.glyph.line_color


def test_the_chart_draws_each_history_in_its_settings_colour_and_its_outcome_style(sweep_folder):
    view = SweepView(sweep_folder, smoothing=0.0)
    fig = drawn(view)
    dark, light = charts.sequential(2)  # lr 1e-4 (the smaller: darker), lr 3e-2
    colour = {1e-4: dark, 3e-2: light}
    lines = lines_by_run(fig)
    assert sorted(lines) == sorted(r.name for r in view.runs)  # none selected: every run
    ends = points_by_run(fig, "sequences", "y", "bit_errors", "low", "high")
    for run in view.runs:
        meta = checkpoint.load(run.checkpoint).meta
        lr, solved = run.settings["lr"], run.row["solved"]
        line_colour, dash, xs, ys = lines[run.name]
        assert xs == meta["history"]["sequences"] and ys == pytest.approx(meta["history"]["bit_errors"])
        assert len(xs) == 21  # a point every 10 steps, and step 1
        assert line_colour == colour[lr]  # colour: the settings, whatever the outcome
        assert dash == (() if solved else (6,))  # solid: solved; dashed: not
        [(marker, dot_colour, *point)] = ends[run.name]
        assert (marker, dot_colour) == ("circle" if solved else "x", colour[lr])
        assert point == [200 * 8, run.row["bit_errors"], run.row["bit_errors"], *run.row["interval"]]
    # every run's interval as a vertical bar in its colour
    bars = sorted((colour_of(r, i), lo, hi) for r in renderers(fig, Segment)
                  for i, (x0, x1, lo, hi) in enumerate(zip(*(r.data_source.data[k]
                                                             for k in ("x0", "x1", "low", "high"))))
                  if x0 == x1)
    assert bars == sorted((colour[r.settings["lr"]], *r.row["interval"]) for r in view.runs)
    # the legend: the settings' colours, in the settings' order, then the line styles on show
    [legend] = fig.legend
    assert legend.items[0].label.field == "color"  # an entry per value of the settings column
    [key] = legend.items[0].renderers
    assert list(key.data_source.data["color"]) == ["lr=0.0001", "lr=0.03"]
    mapper = key.glyph.fill_color.transform
    assert dict(zip(mapper.factors, mapper.palette)) == {"lr=0.0001": dark, "lr=0.03": light}
    outcomes = [o for o in OUTCOME_STYLE if any(r.outcome == o for r in view.runs)]
    assert [item.label.value for item in legend.items[1:]] == outcomes
    key = next(item for item in legend.items[1:] if item.label.value == "not solved")
    assert sorted((type(r.glyph).__name__, r.glyph.line_color, getattr(r.glyph, "marker", None),
                   dash_of(r.glyph)) for r in key.renderers) == [
        ("Line", KEY_COLOUR, None, (6,)), ("Scatter", KEY_COLOUR, "x", ())]
    assert legend.click_policy == "none"  # one entry draws every settings' key: a click would hide them all
    # hovering along x shows every run's point there, on its line
    [hover] = [t for t in fig.tools if isinstance(t, HoverTool) and t.mode == "vline"]
    assert hover.tooltips == [("bit errors", "@{bit_errors}{0.[000]} at @{sequences}{0,0} sequences, @{label}")]
    [hovered] = hover.renderers
    data = hovered.data_source.data
    assert isinstance(hovered.glyph, Line) and hovered.glyph.line_alpha == 0  # read by the hover, never seen
    for run in view.runs:
        mine = [i for i, label in enumerate(data["label"]) if label == f"{run.name}: lr={run.settings['lr']} "
                                                                       f"({run.outcome})"]
        assert mine == list(range(mine[0], mine[0] + len(mine)))  # one piece
        assert [data["sequences"][i] for i in mine] == lines[run.name][2]
        assert [data["bit_errors"][i] for i in mine] == pytest.approx(lines[run.name][3])
        assert mine[0] == 0 or (np.isnan(data["sequences"][mine[0] - 1]) and data["label"][mine[0] - 1] == "")
    assert isinstance(fig.xaxis[0].formatter, CustomJSTickFormatter) and isinstance(fig.y_scale, LinearScale)

    # selecting runs draws only theirs, each in the colour it had among all
    view.selection = [2]
    assert list(lines_by_run(drawn(view))) == [view.runs[2].name]
    assert lines_by_run(drawn(view))[view.runs[2].name][0] == colour[view.runs[2].settings["lr"]]
    assert view.source.selected.indices == [2]  # the table shows the selection too
    view.source.selected.indices = [0, 3]  # ticked in the table
    assert view.selection == [0, 3] and sorted(lines_by_run(drawn(view))) == sorted([view.runs[0].name,
                                                                                     view.runs[3].name])


def test_smoothing_and_the_log_scale(sweep_folder):
    view = SweepView(sweep_folder)
    assert view.smoothing == 0.6 and not view.log_scale  # the defaults
    history = {r.name: checkpoint.load(r.checkpoint).meta["history"]["bit_errors"] for r in view.runs}
    lines = lines_by_run(drawn(view))
    for name, raw in history.items():
        np.testing.assert_allclose(lines[name][3], charts.smooth(raw, 0.6))
    assert "smoothed (weight 0.6)" in view.curves_note.object.replace("&#40;", "(").replace("&#41;", ")").replace(
        "&#46;", ".")
    slider = view.smoothing_slider
    slider._process_events({"value": 0.7})  # the browser while the slider is dragged: no redraw yet
    assert view.smoothing == 0.6
    slider._process_events({"value": 0.9, "value_throttled": 0.9})  # and when it is let go
    assert view.smoothing == 0.9
    lines = lines_by_run(drawn(view))
    for name, raw in history.items():
        np.testing.assert_allclose(lines[name][3], charts.smooth(raw, 0.9))
    # the log scale: zeros at a power of ten below the smallest value logged, the hover keeps the value
    view.log_toggle.value = True
    assert view.log_scale
    fig = drawn(view)
    assert isinstance(fig.y_scale, LogScale) and isinstance(fig.yaxis[0].formatter, CustomJSTickFormatter)
    floor = charts.log_floor(*history.values(), *[[r.row["bit_errors"], *r.row["interval"]] for r in view.runs])
    assert floor == log_floor_for(view.runs) and 0 < floor < 0.1
    lines = lines_by_run(fig)
    [hover] = [t for t in fig.tools if isinstance(t, HoverTool) and t.mode == "vline"]
    hovered = hover.renderers[0].data_source.data
    for name, raw in history.items():
        smooth = charts.smooth(raw, 0.9)
        np.testing.assert_allclose(lines[name][3], np.maximum(smooth, floor))
        mine = [i for i, label in enumerate(hovered["label"]) if label.startswith(f"{name}: ")]
        np.testing.assert_allclose([hovered["y"][i] for i in mine], np.maximum(smooth, floor))  # on the line
        np.testing.assert_allclose([hovered["bit_errors"][i] for i in mine], smooth)  # says the value
    scores = [r.row["bit_errors"] for r in view.runs]
    assert 0.0 in scores  # a solved run scores 0: drawn at the floor
    ends = points_by_run(fig, "y", "bit_errors", "low")
    assert {run: tuple(p[-1][2:4]) for run, p in ends.items()} == {
        r.name: (max(r.row["bit_errors"], floor), r.row["bit_errors"]) for r in view.runs}
    assert f"zeros are drawn at {floor:g}" in view.curves_note.object.replace("&#46;", ".")
    view.smoothing = 0.0
    assert "smoothed" not in view.curves_note.object and drawn(view).yaxis[0].axis_label == "bit errors per sequence"


def _run(name: str, settings: dict, solved, train, validation=((), ()), score=0.5, interval=(0.25, 0.75)) -> Run:
    c, s = name[1:].split("/seed")
    row = {"combination": int(c), "seed": int(s), "solved": solved, "bit_errors": score, "interval": list(interval)}
    return Run(row, settings, Path(f"/nowhere/{name}.safetensors"),
               Curves((list(train[0]), list(train[1])), (list(validation[0]), list(validation[1])), 300))


def test_run_lines_and_the_chart_of_several_settings_validation_checks_and_no_bar():
    runs = [_run("c2/seed0", {"lr": 1e-2, "model": "ntm"}, True, ([0, 100, 300], [3.0, 1.0, 0.0])),
            _run("c0/seed0", {"lr": 1e-3, "model": "ntm"}, False, ([0, 300], [3.0, 2.0]),
                 validation=([100, 300], [2.5, 1.5])),
            _run("c0/seed1", {"lr": 1e-3, "model": "ntm"}, False, ([0, 300], [2.0, 2.2])),
            _run("c1/seed0", {"lr": 1e-3, "model": "lstm"}, None, ([0, 150, 300], [np.nan, np.inf, 1.0]))]
    lines = run_lines(runs)
    # ordered by the settings (lr, then model as text), then outcome, combination, seed
    assert [(r.run, r.settings, r.outcome) for r in lines] == [
        ("c1/seed0", "lr=0.001, model=lstm", "no bar to solve"), ("c0/seed0", "lr=0.001, model=ntm", "not solved"),
        ("c0/seed1", "lr=0.001, model=ntm", "not solved"), ("c2/seed0", "lr=0.01, model=ntm", "solved")]
    # two keys vary: a colour per combination, in the settings' order
    assert [r.colour for r in lines] == [charts.CATEGORICAL[i] for i in (0, 1, 1, 2)]
    np.testing.assert_array_equal(lines[1].validation[0], [100, 300])
    assert lines[2].validation[0].size == 0 and lines[3].end == (300.0, 0.5, 0.5, 0.25, 0.75)
    # a run keeps its colour when shown alone, given every run; alone, nothing varies
    assert run_lines([runs[0]], runs)[0].colour == charts.CATEGORICAL[2]
    assert run_lines([runs[0]])[0].colour == charts.CATEGORICAL[0] and run_lines([runs[0]])[0].settings == "(defaults)"

    fig = hv_render(learning_chart(lines))
    # the lines: a MultiLine per outcome (and per kind), each line its run's colour
    drawn = {(dash_of(r.glyph), r.glyph.line_width): dict(zip(r.data_source.data["run"],
                                                                      r.data_source.data["colour"]))
             for r in renderers(fig, MultiLine)}
    assert drawn == {((2, 4), 1.5): {"c1/seed0": charts.CATEGORICAL[0]},  # dotted: no bar
                     ((6,), 1.5): {"c0/seed0": charts.CATEGORICAL[1], "c0/seed1": charts.CATEGORICAL[1]},  # dashed
                     ((6,), 3.0): {"c0/seed0": charts.CATEGORICAL[1]},  # the validation checks, thick
                     ((), 1.5): {"c2/seed0": charts.CATEGORICAL[2]}}  # solid: solved
    nan_line = lines_by_run(fig)["c1/seed0"][3]
    assert np.isnan(nan_line[:2]).all() and nan_line[2] == 1.0  # a value missing or infinite is a gap
    validation_tip = ("validation", "@{bit_errors}{0.[000]}")
    [checks] = [t.renderers[0] for t in fig.tools
                if isinstance(t, HoverTool) and validation_tip in t.tooltips]  # the checks' dots, with their hover
    data = checks.data_source.data
    assert (list(data["label"]), list(data["sequences"]), list(data["bit_errors"])) == (
        ["c0/seed0: lr=0.001, model=ntm (not solved)"] * 2, [100, 300], [2.5, 1.5])
    assert checks.glyph.marker == "circle" and colour_of(checks, 0) == charts.CATEGORICAL[1]
    markers = {(run, p[0]) for run, ps in points_by_run(fig, "low").items() for p in ps}
    assert markers == {("c1/seed0", "square"), ("c0/seed0", "x"), ("c0/seed1", "x"), ("c2/seed0", "circle")}
    # end markers move right by a lane per combination of settings; the hover keeps the true x
    ends = {run: ps[0] for run, ps in points_by_run(fig, "x", "sequences").items()}
    assert {run: (p[2], p[3]) for run, p in ends.items()} == {
        "c1/seed0": (300, 300), "c0/seed0": (300 + DODGE * 300, 300), "c0/seed1": (300 + DODGE * 300, 300),
        "c2/seed0": (300 + 2 * DODGE * 300, 300)}
    assert [i.label.value for i in fig.legend[0].items[1:]] == ["solved", "not solved", "no bar to solve"]


def hv_render(chart) -> Figure:
    return charts.holoviews().render(chart, backend="bokeh")


def test_a_numeric_setting_is_coloured_in_order_of_its_values():
    lrs = [3e-2, 1e-4, 1e-2, 1e-3]
    runs = [_run(f"c{i}/seed0", {"lr": lr}, False, ([0, 300], [1.0, 1.0])) for i, lr in enumerate(lrs)]
    lines = run_lines(runs)
    assert [r.settings for r in lines] == ["lr=0.0001", "lr=0.001", "lr=0.01", "lr=0.03"]
    assert [r.colour for r in lines] == charts.sequential(4)  # smallest darkest, evenly by rank
    assert len({r.colour for r in lines}) == 4  # the issue: every unsolved run was one red


def test_the_chart_keeps_its_size_whatever_the_number_of_runs():
    def chart(n: int) -> Figure:
        runs = [_run(f"c{i}/seed{s}", {"lr": 10.0 ** (-4 + i / 10)}, s == 0, (np.arange(300.0), np.ones(300)))
                for i in range(n) for s in range(2)]
        return hv_render(learning_chart(run_lines(runs)))

    small, large = chart(2), chart(40)
    assert len(small.renderers) == len(large.renderers)  # HoloViews' time grows with its elements squared
    [hover] = [t for t in large.tools if isinstance(t, HoverTool) and t.mode == "vline"]
    labels = hover.renderers[0].data_source.data["label"]
    assert sum(1 for label in labels if label) == 80 * HOVER_POINTS  # thinned: each point carries its run's name
    assert len(labels) == 80 * HOVER_POINTS + 79  # and a gap between two runs


def test_a_validation_curve_is_read_as_the_cli_writes_it(tmp_path):
    """A run with checks on the validation stream (`ntmviz train` makes them): dashed, at step x batch."""
    from ntmviz.tasks import get_task
    from ntmviz.train import Trainer

    task = get_task("copy", max_length=2, bits=2)
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=6, memory_width=4,
                                        controller_size=8))
    trainer = Trainer(model, task, batch_size=3)
    trainer.run(20)
    trainer.validation[0] = {"step": [10, 20], "bit_errors": [1.5, 0.25], "loss": [3.0, 1.0]}
    path = trainer.save(tmp_path / "run.safetensors")
    curves = read_curves(path)
    assert curves.validation == ([30.0, 60.0], [1.5, 0.25])
    assert curves.train[0] == trainer.history.sequences and curves.sequences == 60


def test_open_in_explore_records_from_the_selected_run(sweep_folder):
    explorer = Explorer.default(sweeps=[str(sweep_folder)])
    explorer.__panel__()
    view = explorer.sweep
    assert view.folder == str(sweep_folder) and len(view.runs) == 4  # --sweep DIR is on show at once
    assert explorer._tabs[0].active == Explorer.TABS.index("sweep")  # in the tab the app opens on
    assert Explorer.default()._opening_tab == "explore"  # without --sweep: Explore, as always
    assert view.explore_button.disabled  # nothing selected yet
    view.selection = [3]
    assert not view.explore_button.disabled and view.compare_button.disabled
    assert view.open_in_explore()
    run = view.runs[3]
    sources = explorer.sources
    assert sources.checkpoint.value == str(run.checkpoint)
    assert sources.checkpoint.options[f"copy-lr: lr=0.03 seed 1"] == str(run.checkpoint)
    episode = explorer.state.episode
    expected = record_episode(load_source(run.checkpoint), length=2, seed=0)
    np.testing.assert_array_equal(episode.inputs, expected.inputs)
    np.testing.assert_array_equal(episode.outputs, expected.outputs)
    other = record_episode(load_source(view.runs[2].checkpoint), length=2, seed=0)
    assert not np.array_equal(episode.outputs, other.outputs)  # so the check above tells the runs apart
    assert explorer._tabs[0].active == 0  # Explore in front


def test_open_in_compare_shows_the_two_selected_runs(sweep_folder):
    explorer = Explorer.default(sweeps=[str(sweep_folder)])
    explorer.__panel__()
    view = explorer.sweep
    view.selection = [0, 2]
    assert view.explore_button.disabled and not view.compare_button.disabled
    assert view.open_in_compare()
    a, b = view.runs[0], view.runs[2]
    left, right = checkpoint_pair(a.checkpoint, b.checkpoint)
    compare = explorer.compare
    np.testing.assert_array_equal(compare.left.episode.outputs, left.outputs)
    np.testing.assert_array_equal(compare.right.episode.outputs, right.outputs)
    np.testing.assert_array_equal(compare.left.episode.inputs, compare.right.episode.inputs)
    assert (compare.left.episode.meta["source"], compare.right.episode.meta["source"]) == (a.title, b.title)
    assert explorer._tabs[0].active == 2
    view.selection = [1]
    assert not view.open_in_compare() and view.message == "Tick two runs in the table to compare them."


def test_an_unfinished_sweep_shows_what_is_done_and_refresh_reads_it_again(sweep_copy):
    rows = {p: p.read_bytes() for p in sorted((sweep_copy / "runs" / "c1").glob("seed*.json"))}
    for p in rows:
        p.unlink()  # no row yet: those runs are still to run
    partial = run_paths(sweep_copy, 1, 0)["partial"]
    shutil.copy(run_paths(sweep_copy, 1, 0)["checkpoint"], partial)  # one is mid-way
    view = SweepView(sweep_copy)
    assert view.source.data["run"] == ["c0/seed0", "c0/seed1"]
    summary = view.summary.object.replace("&#44;", ",").replace("&#58;", ":").replace("&#40;", "(")
    assert "2 of 4 runs finished" in summary and "2 still to run (1 with a partial checkpoint" in summary
    view.selection = [1]
    first, second = rows
    first.write_bytes(rows[first])  # one more run finishes
    assert view.refresh()
    assert view.source.data["run"] == ["c0/seed0", "c0/seed1", "c1/seed0"]
    assert view.selection == [1] and view.source.selected.indices == [1]  # the selection stays
    assert "3 of 4 runs finished" in view.summary.object and "1 still to run" in view.summary.object


def test_a_folder_that_is_not_a_sweep_says_so(tmp_path, sweep_copy):
    view = SweepView()
    assert not view.open(tmp_path / "nothing")
    assert view.message == f"{tmp_path / 'nothing'}: no such folder"
    (tmp_path / "plain").mkdir()
    assert not view.open(tmp_path / "plain")
    assert view.message == (f"{tmp_path / 'plain'} is not a sweep folder: it has no sweep.json "
                            f"(`ntmviz sweep --out FOLDER` makes one)")
    assert 'role="alert"' in view.alert.object and view.alert.visible and view.source.data["run"] == []
    (tmp_path / "plain" / "sweep.json").write_text('{"format": "something else"}')
    assert not view.open(tmp_path / "plain") and "not an ntmviz sweep definition" in view.message
    # a damaged row and a damaged checkpoint: the rest shows, and what could not be read is named
    run_paths(sweep_copy, 0, 1)["row"].write_text("{not json")
    run_paths(sweep_copy, 1, 1)["checkpoint"].write_bytes(b"garbage")
    assert view.open(sweep_copy) and view.message == "" and not view.alert.visible
    assert view.source.data["run"] == ["c0/seed0", "c1/seed0", "c1/seed1"]
    assert view.problems.visible
    problems = view.problems.object.replace("&#47;", "/").replace("&#46;", ".").replace("&#58;", ":")
    assert "runs/c0/seed1.json: not a readable row" in problems and "c1/seed1.safetensors" in problems


def test_hostile_folder_and_setting_names_are_text(sweep_folder, tmp_path):
    folder = Path(shutil.copytree(sweep_folder, tmp_path / HOSTILE))
    definition = json.loads((folder / "sweep.json").read_text())
    definition["grid"] = {HOSTILE: definition["grid"]["lr"]}  # a sweep.json someone else wrote
    (folder / "sweep.json").write_text(json.dumps(definition))
    for path in (folder / "runs").glob("c*/seed*.json"):
        row = json.loads(path.read_text())
        row[HOSTILE] = f"<b>{row.pop('lr')}</b>"
        path.write_text(json.dumps(row))
    assert read_folder(folder).rows
    view = SweepView(folder, search=[str(tmp_path)])
    assert view.message == ""
    assert "<" not in view.summary.object.replace("<br>", "") and "&#60;img" in view.summary.object
    # SlickGrid puts column titles in as HTML: escaped here; cells are text (Bokeh's StringFormatter)
    assert view.table.columns[1].title == "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;"
    assert view.source.data["g0"][0] == "<b>0.0001</b>"
    assert str(folder) in view.found.options  # Select options are text in the page
    # the chart's legend and hover data hold the names as they are (Bokeh draws both as text)
    fig = drawn(view)
    names = [f"{HOSTILE}=<b>0.0001</b>", f"{HOSTILE}=<b>0.03</b>"]
    assert list(fig.legend[0].items[0].renderers[0].data_source.data["color"]) == names
    assert {label.split(": ", 1)[1].rsplit(" (", 1)[0] for r in renderers(fig, Scatter)
            for label in r.data_source.data.get("label", [])} == set(names)
    assert [r.colour for r in view.lines] == [charts.CATEGORICAL[i] for i in (0, 0, 1, 1)]  # text: unordered colours
    explorer = Explorer.default(sweeps=[str(folder)])
    explorer.sweep.selection = [0]
    assert explorer.sweep.open_in_explore()
    assert f"{HOSTILE}: {HOSTILE}=<b>0.0001</b> seed 0" in explorer.sources.checkpoint.options


def test_sweeps_are_found_under_the_search_folders(sweep_folder, tmp_path):
    shutil.copytree(sweep_folder, tmp_path / "runs" / "a")
    (tmp_path / "runs" / "not-a-sweep").mkdir()
    assert find_sweeps([str(tmp_path / "runs"), str(sweep_folder), str(tmp_path / "missing")]) == [
        tmp_path / "runs" / "a", sweep_folder]
    view = SweepView(search=[str(tmp_path / "runs")])
    assert list(view.found.options.values()) == ["", str(tmp_path / "runs" / "a")]
    view.found.value = str(tmp_path / "runs" / "a")  # picking one opens it
    assert view.folder == str(tmp_path / "runs" / "a") and len(view.runs) == 4 and view.path.value == view.folder


def test_serve_sweep_needs_a_folder(capsys):
    from ntmviz.cli import main

    assert main(["serve", "--sweep", "/nonexistent/sweep"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ntmviz: error: --sweep /nonexistent/sweep: no such folder"]


def test_an_unexpected_failure_is_logged_with_its_traceback_and_said(caplog):
    """A bug (here: a job that raises) leaves the Sweep tab working: the user reads what went
    wrong in one line, and the server log holds the traceback."""
    import ntmviz.app.sweep_view as module

    view = module.SweepView("")

    def broken():
        raise RuntimeError("a bug while reading a sweep")

    with caplog.at_level("ERROR", logger=module.log.name):
        assert view._guard(broken) == (False, "RuntimeError: a bug while reading a sweep")
    [record] = [r for r in caplog.records if r.name == module.log.name]
    assert record.exc_info is not None and "a bug while reading a sweep" in str(record.exc_info[1])
