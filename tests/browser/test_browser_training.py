"""The Train view in real Chromium: start, watch the curves and snapshots grow, scrub, pause,
save; closing the page stops the run on the server."""

import time

from _bokeh_js import DATA_LENGTH
from _serve import chromium, served

from ntmviz import checkpoint
from ntmviz.app.live import RunConfig, live_runs
from ntmviz.app.training_view import TrainingView

SLIDER_END = """(id) => {
    for (const doc of Bokeh.documents) {
        const model = doc.get_model_by_id(id);
        if (model) return model.end;
    }
    return -1;
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


def test_train_in_the_browser(tmp_path):
    views = []

    def factory():
        view = TrainingView(RunConfig(task_options={"max_length": 3}, memory_slots=8, memory_width=5,
                                      controller_size=16, lr=1e-3, optimizer="adam", batch_size=4,
                                      snapshot_every=2),
                            save_folder=str(tmp_path), folder=str(tmp_path), period=300)
        views.append(view)
        return view

    before = set(live_runs())
    with served(factory, session_lifetime_ms=500) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        start = page.get_by_role("button", name="Start", exact=True)
        start.wait_for(timeout=60_000)
        view = views[-1]  # the page's session (the readiness probe made one too)
        start.click()

        run = wait_for(lambda: view.run, what="the run to start")
        assert run.alive and run in live_runs()
        page.get_by_text("sequences/s").first.wait_for(timeout=60_000)

        # the curve gains points in the browser (streamed into its ColumnDataSource)
        source_id = view.source.id
        wait_for(lambda: page.evaluate(DATA_LENGTH, [source_id, "loss"]) >= 2, what="curve points")
        n = page.evaluate(DATA_LENGTH, [source_id, "loss"])
        wait_for(lambda: page.evaluate(DATA_LENGTH, [source_id, "loss"]) > n, what="more curve points")

        # the snapshot slider grows in the browser
        slider_id = bokeh_id(view.snapshot_slider)
        wait_for(lambda: page.evaluate(SLIDER_END, slider_id) >= 3, what="the Training step slider to grow")
        page.get_by_text("Snapshot").first.wait_for()

        # pause: the step count stops
        page.get_by_role("button", name="Pause", exact=True).click()
        wait_for(lambda: run.status == "paused", what="the pause")
        page.get_by_text("Paused").first.wait_for(timeout=30_000)
        paused_at = run.step
        time.sleep(0.5)
        assert run.step == paused_at

        # scrub back to the first snapshot with the keyboard on the slider's handle
        handle = page.locator(".noUi-handle").first
        wait_for(lambda: page.evaluate(SLIDER_END, slider_id) == view.snapshot_slider.end, what="slider in sync")
        handle.focus()
        for _ in range(view.snapshot_slider.end + 1):
            page.keyboard.press("ArrowLeft")
        wait_for(lambda: view.snapshot_slider.value == 0, what="the slider to reach the first snapshot")
        first = view.snapshot_list[0]
        assert first.step == 0
        wait_for(lambda: view.state.episode is first.episode, what="the first snapshot on show")
        page.get_by_text("Snapshot 1 of").first.wait_for(timeout=30_000)

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
