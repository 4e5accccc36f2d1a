"""The Sweep tab in real Chromium, every request off the machine blocked and failing the test:
a real sweep folder (written by sweep.py's train_ensemble) under a folder whose name is markup.
The table draws the rows on disk, the chart draws the checkpoints' curves in their settings'
colours, its axis labels are charts.compact()'s, hovering names the runs (as text), the log toggle
redraws on a log axis, and Open in Explore records the ticked run and the Explore views show that
episode."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from _serve import served

from ntmviz.app import charts
from ntmviz.sweep import Sweep, train_ensemble, write_summary

HOSTILE = '<img src=x onerror="window.__pwned=1">'
INJECTED = 'img[src="x"], b, svg[onload]'
# As tests/app/test_sweep_view.py: seeds of lr 3e-2 solve this copy task in 200 steps, lr 1e-4 none.
TINY = {"task.max_length": 2, "task.bits": 2, "memory_slots": 6, "memory_width": 4, "controller_size": 12,
        "batch_size": 8}

# Every line of a run the page draws: {run: [colour, dash, xs, ys as drawn]}, from the chart's
# Bokeh MultiLine renderers (one per outcome, a line per run, its colour in the source's 'colour').
CURVES_JS = """() => {
  const out = {};
  const value = p => (p !== null && typeof p === 'object' && 'value' in p) ? p.value : p;  // {value: v} or v
  for (const doc of window.Bokeh.documents) {
    for (const m of doc.all_models) {
      if (!m.glyph || m.glyph.constructor.__name__ !== 'MultiLine' || value(m.glyph.line_width) !== 1.5) continue;
      const d = m.data_source.data;
      Array.from(d.run).forEach((run, i) => {
        out[run] = [d.colour[i], value(m.glyph.line_dash), Array.from(d.xs[i]), Array.from(d.ys[i])];
      });
    }
  }
  return out;
}"""

# The y scale of every plot in the page, and what the count axes' formatter makes of some values.
SCALES_JS = """() => Array.from(window.Bokeh.documents).flatMap(doc => Array.from(doc.all_models))
  .filter(m => m.y_scale && m.renderers).map(m => m.y_scale.constructor.__name__)"""
FORMAT_JS = """(values) => {
  for (const doc of window.Bokeh.documents) for (const m of doc.all_models)
    if (m.formatter && m.formatter.code) return m.formatter.doFormat(values, {loc: 0});
  return null;
}"""
TICKS = [0, 7, 500, 999.4, 999.96, 1000, 1500, 12345, 102_500, 140_000, 999_999, 2_350_000, 1e9, -2500, 0.25,
         100.25, 1e-5, 1.5e-7]


def hover_chart(page, fraction: float) -> list[str]:
    """Move the mouse over the chart at `fraction` of its width (half its height); the texts of
    the tooltips that show."""
    box = page.locator(".ntmviz-sweep-chart .bk-Canvas").first.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] * 0.5, steps=4)
    tips = page.locator(".bk-tooltip-content")  # in each tooltip's shadow root (Playwright's CSS pierces it)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        texts = [t for t in tips.all_inner_texts() if t.strip()]
        if texts:
            return texts
        page.wait_for_timeout(200)
    return []


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shared") / HOSTILE
    sweep = Sweep.create("copy", seeds=[0, 1], grid={"lr": [1e-4, 3e-2]}, fixed=TINY, steps=200,
                         validation_samples=20, ensemble_size=2)
    folder.mkdir()
    (folder / "sweep.json").write_text(sweep.to_json())
    threads = torch.get_num_threads()
    try:
        for c in (0, 1):
            train_ensemble(sweep.to_json(), str(folder), c, [0, 1])
    finally:
        torch.set_num_threads(threads)
    write_summary(sweep, folder)
    return folder


def rows_drawn(page) -> dict[str, list[str]]:
    """{run: the texts of its cells} of every row the table drew (the checkbox cell dropped)."""
    out = {}
    for row in page.locator(".slick-row").all():
        cells = [c.strip() for c in row.locator(".slick-cell").all_inner_texts()][1:]
        out[cells[0]] = cells
    return out


def expected_cells(row: dict) -> list[str]:
    lo, hi = row["interval"]
    return [f"c{row['combination']}/seed{row['seed']}", str(row["lr"]), str(row["seed"]), f"{row['bit_errors']:.3f}",
            f"[{lo:.3f}, {hi:.3f}]", f"{100 * row['exact']:.1f}", {True: "yes", False: "no"}[row["solved"]],
            row["status"], row["diverged"], str(row["steps"]), f"{row['train_seconds']:.1f}"]


def assert_nothing_ran(page) -> None:
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator(INJECTED).count() == 0


def test_the_sweep_tab_draws_the_runs_and_opens_one_in_explore(browser, browser_helpers, sweep_folder, monkeypatch):
    from ntmviz.app.payload import describe
    from ntmviz.app.sources import load_source, record_episode

    monkeypatch.setenv("NTMVIZ_SWEEPS", str(sweep_folder))  # what `ntmviz serve --sweep DIR` gives too
    explorers = []

    def factory():
        from ntmviz.app import Explorer

        explorers.append(Explorer.default())
        return explorers[-1]

    rows = [json.loads(p.read_text()) for p in sorted((sweep_folder / "runs").glob("c*/seed*.json"))]
    assert len(rows) == 4 and {r["solved"] for r in rows} == {True, False}
    shots = Path(os.environ.get("NTMVIZ_SCREENSHOTS", sweep_folder.parent))
    with served(factory, path="explorer") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(browser_helpers.TIMEOUT_MS)
        try:
            page = context.new_page()
            app = browser_helpers.AppPage(page)
            page.goto(url, timeout=browser_helpers.TIMEOUT_MS)
            app.wait_painted(timeout=120)
            explorer = explorers[-1]  # this page's session (the readiness check made another)
            page.get_by_text("Sweep", exact=True).first.click()
            page.locator(".slick-row").nth(3).wait_for()

            # the table draws every row on disk, as text
            drawn = rows_drawn(page)
            assert drawn == {f"c{r['combination']}/seed{r['seed']}": expected_cells(r) for r in rows}, drawn
            headers = [h.strip() for h in page.locator(".slick-header-column").all_inner_texts()]
            assert headers[1:5] == ["run", "lr", "seed", "bit errors / seq"], headers
            assert page.get_by_text(f"{sweep_folder}: copy (ntm), 2 combination(s) x 2 seed(s)").count() == 1
            how_many = sum(r["solved"] for r in rows)
            assert page.get_by_text(f"4 of 4 runs finished, {how_many} solved.").count() == 1
            assert str(sweep_folder) in page.get_by_role("combobox", name="Sweeps found").inner_text()
            assert_nothing_ran(page)

            # the browser draws every run's training curve (smoothed as the slider says), in its
            # settings' colour (lr 1e-4 and 3e-2 apart, whatever the outcome) and its outcome's dash
            view = explorer.sweep
            curves = page.evaluate(CURVES_JS)
            assert sorted(curves) == sorted(r.name for r in view.runs)
            dark, light = charts.sequential(2)
            for run in view.runs:
                colour, dash, xs, ys = curves[run.name]
                assert colour == {1e-4: dark, 3e-2: light}[run.settings["lr"]]
                assert dash in (("solid", []) if run.row["solved"] else ("dashed", [6]))
                assert xs == run.curves.train[0] and ys == pytest.approx(charts.smooth(run.curves.train[1], 0.6))
            # the axis reads 500, 1k, 1.5k; the browser's labels are compact()'s
            assert page.evaluate(FORMAT_JS, TICKS) == [charts.compact(v) for v in TICKS]
            page.screenshot(path=str(shots / "sweep-tab.png"), full_page=True)
            # hovering shows every run at that x, named by its settings and outcome
            tips = hover_chart(page, 0.45)
            assert tips, "no tooltip"
            said = {run.name for run in view.runs if any(
                f"{run.name}: lr={run.settings['lr']} ({run.outcome})" in t for t in tips)}
            assert len(said) >= 2, tips
            page.screenshot(path=str(shots / "sweep-hover.png"), full_page=True)
            # the log scale: the plot redrawn on a log y axis
            page.mouse.move(0, 0)
            page.get_by_role("button", name="Log scale").click()
            app.wait(lambda _: page.evaluate(SCALES_JS) == ["LogScale"], "a log y axis")
            assert view.log_scale
            page.screenshot(path=str(shots / "sweep-log.png"), full_page=True)

            # tick the solved run, open it in Explore: its episode is what the views show
            solved = next(i for i, r in enumerate(view.runs) if r.row["solved"])
            run = view.runs[solved]
            row = page.locator(".slick-row").filter(has_text=run.name)
            row.locator("input[type=checkbox]").check()
            app.wait(lambda _: view.selection == [solved], "the tick to reach the server")
            page.get_by_role("button", name="Open in Explore").click()
            expected = record_episode(load_source(run.checkpoint), length=2, seed=0)
            app.wait_painted(steps=expected.steps, timeout=120)
            page.get_by_text(describe(expected)).wait_for()
            episode = explorer.state.episode
            assert torch.equal(torch.as_tensor(episode.outputs), torch.as_tensor(expected.outputs))
            picked = page.get_by_role("combobox", name="Checkpoint").evaluate(
                "el => el.options[el.selectedIndex].text")
            assert picked == f"{HOSTILE}: lr=0.03 seed {run.row['seed']}"
            page.screenshot(path=str(shots / "sweep-opened-in-explore.png"))
            assert_nothing_ran(page)
            app.assert_no_errors()
        finally:
            context.close()


def test_a_hostile_sweep_typed_in_is_text_and_a_plain_folder_says_so(browser, browser_helpers, sweep_folder,
                                                                    tmp_path):
    folder = Path(shutil.copytree(sweep_folder, tmp_path / "other"))
    definition = json.loads((folder / "sweep.json").read_text())
    definition["grid"] = {HOSTILE: definition["grid"]["lr"]}  # a sweep.json someone else wrote
    (folder / "sweep.json").write_text(json.dumps(definition))
    for path in (folder / "runs").glob("c*/seed*.json"):
        row = json.loads(path.read_text())
        row[HOSTILE] = f"<b>{row.pop('lr')}</b>"
        path.write_text(json.dumps(row))
    (tmp_path / "plain").mkdir()

    def factory():
        from ntmviz.app.sweep_view import SweepView

        return SweepView()

    with served(factory) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(browser_helpers.TIMEOUT_MS)
        try:
            page = context.new_page()
            app = browser_helpers.AppPage(page)
            page.goto(url, timeout=browser_helpers.TIMEOUT_MS)
            field = page.get_by_label("Sweep folder", exact=True)
            field.fill(str(tmp_path / "plain"))
            page.get_by_role("button", name="Open sweep").click()
            alert = page.get_by_role("alert")
            alert.wait_for()
            assert alert.inner_text() == (f"{tmp_path / 'plain'} is not a sweep folder: it has no sweep.json "
                                          f"(`ntmviz sweep --out FOLDER` makes one)")
            field.fill(str(folder))
            page.get_by_role("button", name="Open sweep").click()
            page.locator(".slick-row").nth(3).wait_for()
            # (the rows and the cleared message are separate updates: either can reach the page first)
            app.wait(lambda _: page.get_by_role("alert").count() == 0, "the message to clear")
            headers = [h.strip() for h in page.locator(".slick-header-column").all_inner_texts()]
            assert headers[1:3] == ["run", HOSTILE], headers
            cells = {cells[0]: cells for cells in rows_drawn(page).values()}
            assert cells["c1/seed0"][1] == "<b>0.03</b>"
            # the chart's hover names the settings as text
            tips = hover_chart(page, 0.45)
            assert any(f"c0/seed0: {HOSTILE}=<b>0.0001</b> (not solved)" in t for t in tips), tips
            assert_nothing_ran(page)
            # another sweep of as many runs: every row drawn is the new one's (Bokeh's table keeps
            # its drawn rows when only the data changes and the row count does not)
            field.fill(str(sweep_folder))
            page.get_by_role("button", name="Open sweep").click()
            rows = [json.loads(p.read_text()) for p in sorted((sweep_folder / "runs").glob("c*/seed*.json"))]
            app.wait(lambda _: rows_drawn(page) == {f"c{r['combination']}/seed{r['seed']}": expected_cells(r)
                                                   for r in rows}, "the other sweep's rows", timeout=30)
            app.assert_no_errors()
        finally:
            context.close()
