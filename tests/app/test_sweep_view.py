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

import ntmviz
from ntmviz import checkpoint
from ntmviz.app.compare import checkpoint_pair
from ntmviz.app.explorer import Explorer
from ntmviz.app.sources import load_source, record_episode
from ntmviz.app.sweep_view import OUTCOMES, SweepView, find_sweeps, read_curves
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


def test_the_curves_are_the_checkpoint_histories_coloured_by_solved(sweep_folder):
    view = SweepView(sweep_folder)
    colours = dict(OUTCOMES)

    def drawn():
        out = {}
        for outcome, sources in view.curve_sources.items():
            for xs, ys, run in zip(*(sources["train"].data[k] for k in ("xs", "ys", "run"))):
                out[run] = (outcome, xs, ys)
        return out

    curves = drawn()
    assert len(curves) == 4  # none selected: every run
    for run in view.runs:
        meta = checkpoint.load(run.checkpoint).meta
        outcome, xs, ys = curves[run.title]
        assert outcome == ("solved" if run.row["solved"] else "not solved")
        assert xs == meta["history"]["sequences"] and ys == pytest.approx(meta["history"]["bit_errors"])
        assert len(xs) == 21  # a point every 10 steps, and step 1
        ends = view.curve_sources[outcome]["end"].data
        i = ends["run"].index(run.title)
        assert (ends["y"][i], ends["low"][i], ends["high"][i]) == (run.row["bit_errors"], *run.row["interval"])
        assert ends["x"][i] == 200 * 8  # sequences seen: steps x batch
    # each outcome's lines, bars and dots are drawn in its colour
    for renderer in view.figure.renderers:
        source, glyph = renderer.data_source, renderer.glyph
        outcome = next(o for o, s in view.curve_sources.items() if source in s.values())
        assert (glyph.fill_color if hasattr(glyph, "fill_color") else glyph.line_color) == colours[outcome]
    # selecting runs draws only theirs
    view.selection = [2]
    assert list(drawn()) == [view.runs[2].title]
    assert view.source.selected.indices == [2]  # the table shows the selection too
    view.source.selected.indices = [0, 3]  # ticked in the table
    assert view.selection == [0, 3] and sorted(drawn()) == sorted([view.runs[0].title, view.runs[3].title])


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
