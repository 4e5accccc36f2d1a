"""The Train view in real Chromium: before Start only the form and a note; start, watch the curves
and the snapshots grow, the slider read as the training step, scrub, pause, save; closing the page
stops the run on the server. Saved without a kernel, the live view makes way for a note, and the
run's record (TrainingView.last_state) shows its curves and plays its views."""

import re
import time

from _serve import chromium, served

from ntmviz import checkpoint
from ntmviz.app.live import RunConfig, live_runs
from ntmviz.app.training_view import NO_KERNEL, TrainingView

SLIDER_END = """(id) => {
    for (const doc of Bokeh.documents) {
        const model = doc.get_model_by_id(id);
        if (model) return model.end;
    }
    return -1;
}"""

# The most rows any ColumnDataSource of the page holds in `column` (HoloViews gives each line its own).
ROWS = """(column) => {
    let most = -1;
    for (const doc of Bokeh.documents) for (const m of doc._all_models.values()) {
        if (m.type !== "ColumnDataSource") continue;
        const values = m.data instanceof Map ? m.data.get(column) : m.data[column];
        if (values != null) most = Math.max(most, values.length);
    }
    return most;
}"""

# Every .ntmviz-view in the page (shadow roots pierced): its kind -> frames painted.
VIEWS = """() => {
  const out = {};
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view')) out[el.dataset.view] = Number(el.dataset.frames);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""

# Focus the handle of the slider whose title starts with `title` (shadow roots pierced).
FOCUS_SLIDER = """(title) => {
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('bk-slider-title') && el.textContent.startsWith(title)) {
        const handle = el.parentNode.querySelector('.noUi-handle');
        if (handle) { handle.focus(); return true; }
      }
      if (el.shadowRoot && walk(el.shadowRoot)) return true;
    }
    return false;
  };
  return walk(document);
}"""


def wait_for(predicate, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def bokeh_id(widget) -> str:
    """The id of the Bokeh model a Panel widget rendered in the (one) session."""
    (model, _parent), = widget._models.values()
    return model.id


def small_config(**changes) -> RunConfig:
    return RunConfig(**{**dict(task_options={"max_length": 3}, memory_slots=8, memory_width=5, controller_size=16,
                                lr=1e-3, optimizer="adam", batch_size=4, snapshot_every=2), **changes})


def test_train_in_the_browser(tmp_path):
    views = []

    def factory():
        view = TrainingView(small_config(), save_folder=str(tmp_path), folder=str(tmp_path), period=300)
        views.append(view)
        return view

    before = set(live_runs())
    with served(factory, session_lifetime_ms=500) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        start = page.get_by_role("button", name="Start", exact=True)
        start.wait_for(timeout=60_000)
        view = views[-1]  # the page's session (the readiness probe made one too)

        # before Start: the form, and a note instead of views of any model
        page.get_by_text("Nothing trained yet. Press Start").first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        assert page.evaluate(VIEWS) == {}
        assert page.get_by_text(NO_KERNEL).count() == 0  # served: it has its server

        start.click()
        run = wait_for(lambda: view.run, what="the run to start")
        assert run.alive and run in live_runs()
        page.get_by_text("sequences/s").first.wait_for(timeout=60_000)

        # the curves gain points in the browser (streamed into their sources)
        wait_for(lambda: page.evaluate(ROWS, "loss") >= 2, what="curve points")
        n = page.evaluate(ROWS, "loss")
        wait_for(lambda: page.evaluate(ROWS, "loss") > n, what="more curve points")

        # the snapshot slider grows in the browser, titled by the training step of the newest
        slider_id = bokeh_id(view.scrubber.slider)
        wait_for(lambda: page.evaluate(SLIDER_END, slider_id) >= 3, what="the Training step slider to grow")
        page.get_by_text(re.compile(r"^Snapshot \d+ of")).first.wait_for()
        wait_for(lambda: page.evaluate(VIEWS).get("heads", 0) >= 1 and page.evaluate(VIEWS).get("memory", 0) >= 1,
                 what="the views of the newest snapshot")

        # pause: the step count stops
        page.get_by_role("button", name="Pause", exact=True).click()
        wait_for(lambda: run.status == "paused", what="the pause")
        page.get_by_text("Paused").first.wait_for(timeout=30_000)
        paused_at = run.step
        time.sleep(0.5)
        assert run.step == paused_at
        newest = view.snapshot_list[-1].step
        page.get_by_text(f"Training step: {newest:,}", exact=True).first.wait_for(timeout=30_000)

        # scrub back to the first snapshot with the keyboard on the slider's handle
        wait_for(lambda: page.evaluate(SLIDER_END, slider_id) == view.scrubber.slider.end, what="slider in sync")
        assert page.evaluate(FOCUS_SLIDER, "Training step")
        for _ in range(view.scrubber.slider.end + 1):
            page.keyboard.press("ArrowLeft")
        wait_for(lambda: view.scrubber.slider.value == 0, what="the slider to reach the first snapshot")
        first = view.snapshot_list[0]
        assert first.step == 0
        # the server sets the slider's value, then its watchers show that snapshot: wait for them
        wait_for(lambda: view.shown_step == 0, what="the first snapshot's step on show")
        wait_for(lambda: view.state.episode is first.episode, what="the first snapshot on show")
        page.get_by_text("Snapshot 1 of").first.wait_for(timeout=30_000)
        page.get_by_text("Training step: 0", exact=True).first.wait_for(timeout=30_000)  # its step, not its place

        # save a checkpoint from the page, then load it back
        page.get_by_role("button", name="Save checkpoint").click()
        saved = wait_for(lambda: list(tmp_path.glob("*.safetensors")), what="a checkpoint file")
        page.get_by_text("Saved").first.wait_for(timeout=30_000)
        loaded = checkpoint.load(saved[0], device="cpu")
        assert loaded.step == paused_at and loaded.task.name == "copy"

        # close the page: the session ends and its run stops, its thread gone
        page.close()
        wait_for(lambda: not run.alive, timeout=60, what="the run to stop after the page closed")
        assert run.status == "stopped"
        assert set(live_runs()) == before


def test_without_a_kernel_the_live_view_gives_way_and_the_record_shows_the_run(tmp_path):
    """A notebook's Train tab saved and opened with no kernel: its document renders, nothing
    answers it, so it hides itself behind a note; the record of the run shows and plays."""
    import panel as pn
    from bokeh.resources import INLINE

    from ntmviz.app import extension

    extension()
    view = TrainingView(small_config(steps=10, seeds=[0, 1]), save_folder=str(tmp_path), folder=str(tmp_path))
    run = view.start()
    assert run.join(120)
    view.pull()
    saved_view = tmp_path / "live.html"
    pn.panel(view).save(str(saved_view), resources=INLINE)  # the live view's document, no kernel behind it
    record = tmp_path / "record.html"
    record.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                      + view.last_state().html() + "</body></html>", encoding="utf-8")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(saved_view.as_uri())
        note = page.locator("p.ntmviz-needs-kernel")
        note.wait_for(timeout=60_000)
        assert note.text_content() == NO_KERNEL and note.get_attribute("role") == "note"
        assert not page.get_by_role("button", name="Start", exact=True).is_visible()  # nothing that cannot work
        page.goto(record.as_uri())
        page.get_by_text("Done", exact=True).first.wait_for(timeout=30_000)
        assert page.locator("svg.ntmviz-record-chart").count() == 2
        assert page.locator("svg.ntmviz-record-chart polyline").count() == 4  # a line per seed in each
        assert page.locator("table.ntmviz-seeds tbody tr").count() == 2
        page.wait_for_function(f"() => Object.values(({VIEWS})()).filter((frames) => frames >= 1).length >= 3",
                               timeout=60_000)  # the views of the snapshot on show, painted
        assert not errors, errors
