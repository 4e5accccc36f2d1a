"""A seed ensemble on the Train tab in real Chromium, every request off the machine blocked:
start three seeds, watch a curve and a table row per seed, switch the seed on show and see the
views draw that seed's snapshot, stop."""

from __future__ import annotations

import time

import numpy as np
from _serve import served

from ntmviz.app.live import RunConfig
from ntmviz.app.training_view import TrainingView

# What each chart's legend lists, and what the line of each entry holds: [[label, y values], ...]
# per chart with a legend (HoloViews draws each line from its own source).
LINES = """() => {
    const out = [];
    for (const doc of Bokeh.documents) for (const m of doc._all_models.values()) {
        if (m.type !== "Legend" || !m.items.length) continue;
        out.push(m.items.map((item) => {
            const label = item.label != null && typeof item.label === 'object' ? item.label.value : item.label;
            const r = item.renderers[0], data = r.data_source.data, field = r.glyph.y.field;
            return [label, Array.from(data instanceof Map ? data.get(field) : data[field])];
        }));
    }
    return out;
}"""


TABLE_ROWS = """(rows) => rows.map((r) => [r.dataset.seed, [...r.cells].map((c) => c.textContent.trim())])"""

# What the head-locations and memory views hold: the episode's metadata, its write weightings
# over time, and every memory chunk that has arrived.
VIEW_DATA = """() => {
  const out = {};
  for (const g of Object.values(window.__ntmviz.groups)) for (const v of g.views) {
    if (!v.ep) continue;
    if (v.kind === 'heads') {
      const a = v.ep.a['write.weights.time'];
      out.heads = {seed: v.ep.meta.training_seed, step: v.ep.meta.training_step, shape: a.shape,
                   data: Array.from(a.data), approx: a.approx, P: v.ep.P, D: v.ep.D};
    }
    if (v.kind === 'memory') {
      const chunks = {};
      for (const [c, arrays] of v.ep.chunks) if (arrays.memory) chunks[c] = {shape: arrays.memory.shape,
        data: Array.from(arrays.memory.data), approx: arrays.memory.approx};
      out.memory = {seed: v.ep.meta.training_seed, K: v.ep.K, chunks};
    }
  }
  return out;
}"""


def wait_for(predicate, page, timeout=120.0, what="condition"):
    """Poll `predicate` until truthy, letting the page handle its events meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")


def expected_rows(view, state: str) -> list[list]:
    """The table's rows as the run's own numbers say they should read."""
    run = view.run
    rows = []
    for k, (hist, m) in enumerate(zip(run.histories(), run.models())):
        shown = " (shown)" if k == view.scrubber.member else ""
        rows.append([str(m.seed), [f"\u25a0 seed {m.seed}{shown}", f"{hist['loss'][-1]:.3f}",
                                   f"{hist['bit_errors'][-1]:.2f}", "\u2014", state, "\u2014"]])
    return rows


def assert_views_show(data, episode, seed: int) -> None:
    """The views' arrays in the page are those of `episode` (seed `seed`'s snapshot)."""
    heads = data["heads"]
    assert heads["seed"] == seed and heads["step"] == episode.meta["training_step"]
    T, W, N = episode.write.weights.shape
    assert heads["shape"] == [T, W, N] and not heads["approx"]  # small: sent whole and exact
    np.testing.assert_array_equal(np.float32(heads["data"]), episode.write.weights.reshape(-1))
    memory = data["memory"]
    assert memory["seed"] == seed and memory["chunks"]
    K = memory["K"]
    for c, chunk in memory["chunks"].items():
        frames = episode.memory[int(c) * K: int(c) * K + K + 1]
        assert chunk["shape"] == list(frames.shape) and not chunk["approx"]
        np.testing.assert_array_equal(np.float32(chunk["data"]), frames.reshape(-1))


def test_a_three_seed_run_in_the_browser(browser, browser_helpers, tmp_path):
    views = []

    def factory():
        views.append(TrainingView(RunConfig(task_options={"max_length": 3}, memory_slots=8, memory_width=5,
                                            controller_size=16, lr=1e-3, optimizer="adam", batch_size=4,
                                            snapshot_every=2),
                                  save_folder=str(tmp_path), folder=str(tmp_path), period=300))
        return views[-1]

    with served(factory, session_lifetime_ms=500) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        context.set_default_timeout(60_000)
        try:
            page = context.new_page()
            app = browser_helpers.AppPage(page)  # console errors, and any request off the machine
            page.goto(url)
            start = page.get_by_role("button", name="Start", exact=True)
            start.wait_for()
            view = views[-1]  # this page's session (the readiness probe made one too)
            page.get_by_label("Seeds", exact=True).fill("0-2")
            start.click()
            run = wait_for(lambda: view.run, page, what="the run to start")
            assert run.seeds == [0, 1, 2] and run.trainer.models == 3

            # a curve per seed fills in the page, and the legends name the seeds
            wait_for(lambda: (charts := page.evaluate(LINES)) and len(charts) == 2
                     and all(len(values) >= 3 for chart in charts for _, values in chart), page,
                     what="three points on every seed's line")
            charts = page.evaluate(LINES)  # loss, bit errors: a legend entry per seed
            assert [[label for label, _ in chart] for chart in charts] == [["seed 0", "seed 1", "seed 2"]] * 2
            page.get_by_text("3 of 3 seeds training").first.wait_for()

            # paused, the table lists every seed with the run's own numbers
            page.get_by_role("button", name="Pause", exact=True).click()
            wait_for(lambda: run.status == "paused", page, what="the pause")
            rows = page.locator("table.ntmviz-seeds tbody tr")
            wait_for(lambda: rows.evaluate_all(TABLE_ROWS) == expected_rows(view, "paused"), page, timeout=30,
                     what=f"the table to match the run: {rows.evaluate_all(TABLE_ROWS)} vs "
                          f"{expected_rows(view, 'paused')}")
            hist = run.histories()
            wait_for(lambda: any(chart == [[f"seed {k}", hist[k]["loss"]] for k in range(3)]
                                 for chart in page.evaluate(LINES)), page, timeout=30,
                     what="the loss chart's lines to hold every step of each seed")
            assert len(hist[0]["loss"]) == run.step

            # the views draw the seed on show; switching the seed switches them
            shown = view.shown_seed
            snap = run.snapshots()[1][-1]
            assert view.state.episode is snap.episodes[shown]
            before = wait_for(lambda: (d := page.evaluate(VIEW_DATA)).get("heads", {}).get("seed") == shown
                              and d.get("memory", {}).get("chunks") and d, page, what="the views to draw the seed")
            assert_views_show(before, snap.episodes[shown], shown)
            other = (shown + 1) % 3
            page.get_by_label("Show seed", exact=True).select_option(label=f"seed {other}")
            wait_for(lambda: view.shown_seed == other, page, what="the server to switch seeds")
            after = wait_for(lambda: (d := page.evaluate(VIEW_DATA)).get("heads", {}).get("seed") == other
                             and d.get("memory", {}).get("seed") == other and d.get("memory", {}).get("chunks")
                             and d, page, what="the views to draw the other seed")
            assert_views_show(after, snap.episodes[other], other)
            assert after["heads"]["data"] != before["heads"]["data"]  # another model's weightings
            wait_for(lambda: rows.evaluate_all(TABLE_ROWS)[other][1][0].endswith("(shown)"), page,
                     what="the table to mark the seed on show")

            # stop: the run ends as a single run does
            page.get_by_role("button", name="Resume", exact=True).click()
            page.get_by_role("button", name="Stop", exact=True).click()
            wait_for(lambda: run.ended, page, what="the stop")
            page.get_by_text("Stopped").first.wait_for()
            assert run.status == "stopped"
            app.assert_no_errors()
        finally:
            context.close()
