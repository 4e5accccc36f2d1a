"""The explorer served by `panel serve apps/explorer.py`, in real Chromium: it loads cleanly,
plays and pauses, scrubs by slider and keys, repaints the memory, opens episode files and
survives a corrupt one. Fixtures: tests/browser/conftest.py."""

from __future__ import annotations

from pathlib import Path

VIEW_NAMES = ("player", "memory", "heads", "focus", "sequence")
CHECKPOINT = Path(__file__).resolve().parent.parent.parent / "checkpoints" / "copy-ntm.safetensors"


def opening_step() -> int:
    """The step the served explorer opens on: its default episode's (mid-way through the scored steps)."""
    from ntmviz.app.sources import cached_episode, load_source

    return cached_episode(load_source(CHECKPOINT)).opening_step()

# [class_name, esm] of every Panel ESM component in the page's documents
ESM_MODELS = """() => {
  const out = [];
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (typeof m.esm === 'string' && m.class_name) out.push([m.class_name, m.esm]);
  return out;
}"""


def test_loads_with_every_view_painted_and_no_errors(explorer_page):
    app = explorer_page
    views = app.views()
    assert set(VIEW_NAMES) <= set(views), views
    steps = views["player"]["steps"]
    assert steps > 1
    # one playback state: every view on the same group, episode and step
    assert len({views[n]["group"] for n in VIEW_NAMES}) == 1
    assert {views[n]["steps"] for n in VIEW_NAMES} == {steps}
    # opening on a step worth seeing: mid-way through the scored steps (the copy's playback)
    opening = opening_step()
    assert 0 < opening < steps - 1
    assert {views[n]["step"] for n in VIEW_NAMES} == {opening}
    assert views["player"]["playing"] is False
    # the controls the docs promise are there, by accessible name
    for name in ("First step", "Step back", "Play", "Step forward", "Last step", "Loop"):
        assert app.button(name).count() == 1, name
    assert app.slider("Step").get_attribute("max") == str(steps - 1)
    assert app.registry()["frames"] >= 1
    # the memory stage drew something (not a blank canvas)
    pixels = app.stage_pixels("memory")
    assert pixels is not None and pixels["nonblank"] > 100, pixels
    # the toolbar's fields keep their own widths (the views get the page's), and the served
    # document has nothing for Bokeh to warn of (W-1005: a "fixed" widget without a height)
    box = app.page.get_by_role("combobox", name="Checkpoint").bounding_box()
    assert box is not None and 240 <= box["width"] <= 290, box
    assert "W-1005" not in app.server_log()
    app.page.wait_for_timeout(500)  # late errors (e.g. a failed paint) would land here
    app.assert_no_errors()


def test_the_renderer_module_is_fetched_once_per_page_not_sent_per_view(browser, explorer_server):
    from conftest import TIMEOUT_MS, AppPage

    from ntmviz.app.canvas import KINDS, EpisodeCanvas

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        fetched = []
        # the module's address: the private folder ntmviz.app.extension() registers with Bokeh's server
        page.on("response", lambda r: fetched.append(r) if "/static/extensions/ntmviz/renderer-" in r.url else None)
        app = AppPage(page, explorer_server)
        page.goto(explorer_server.url, timeout=TIMEOUT_MS)
        app.wait_painted(timeout=90)
        assert set(VIEW_NAMES) <= set(app.views())
        assert len(fetched) == 1, [r.url for r in fetched]
        assert fetched[0].status == 200 and fetched[0].text() == EpisodeCanvas._esm
        # each view's model carries the module's address, not its 80 KB of text (a canvas per kind
        # of view the explorer has: the slots view's too, hidden for an episode with no slot state)
        canvases = [esm for name, esm in page.evaluate(ESM_MODELS) if name == "EpisodeCanvas"]
        assert len(canvases) == len(KINDS)
        assert len(set(canvases)) == 1 and fetched[0].url.endswith(canvases[0].removeprefix("./")), canvases
        app.assert_no_errors()
    finally:
        context.close()


def test_play_advances_and_pause_stops(explorer_page):
    app = explorer_page
    app.page.keyboard.press("Home")
    app.wait_painted(step=0)
    assert app.step() == 0
    app.click("Play")
    app.wait(lambda v: v["player"]["playing"] is True, "playing")
    app.wait(lambda v: all(v[n]["step"] >= 3 for n in VIEW_NAMES), "every view to follow the playback")
    assert app.registry()["step"] >= 3
    app.click("Pause")
    app.wait(lambda v: v["player"]["playing"] is False, "paused")
    stopped = app.step()
    frames = app.registry()["frames"]
    app.page.wait_for_timeout(700)  # at 10 steps/s this would be ~7 steps if still playing
    assert app.step() == stopped
    assert app.registry()["frames"] == frames  # nothing repaints while paused
    assert app.button("Play").count() == 1 and app.button("Pause").count() == 0
    app.assert_no_errors()


def test_slider_and_arrow_keys_scrub(explorer_page):
    app = explorer_page
    steps = app.steps()
    target = min(9, steps - 2)
    app.set_slider(target)
    app.wait_painted(step=target)
    assert app.registry()["step"] == target

    app.page.keyboard.press("ArrowRight")
    app.wait_painted(step=target + 1)
    app.page.keyboard.press("ArrowLeft")
    app.page.keyboard.press("ArrowLeft")
    app.wait_painted(step=target - 1)
    # the slider follows the keys
    assert app.slider("Step").input_value() == str(target - 1)

    app.page.keyboard.press("End")
    app.wait_painted(step=steps - 1)
    app.page.keyboard.press("ArrowRight")  # stays on the last step (no loop)
    app.page.keyboard.press("Home")
    app.wait_painted(step=0)
    app.page.keyboard.press("ArrowLeft")  # stays on the first
    app.page.wait_for_timeout(200)
    assert app.step() == 0

    # the buttons scrub too
    app.click("Step forward")
    app.wait_painted(step=1)
    app.click("Last step")
    app.wait_painted(step=steps - 1)
    app.click("First step")
    app.wait_painted(step=0)
    app.assert_no_errors()


def test_memory_image_changes_between_steps(explorer_page):
    app = explorer_page
    # In the copy task the write head writes at every input step: memory after step 2 and
    # after step 6 differ, and the same step paints the same pixels again.
    app.set_slider(2)
    app.wait_painted(step=2)
    at_2 = app.stage_pixels("memory")
    app.set_slider(6)
    app.wait_painted(step=6)
    at_6 = app.stage_pixels("memory")
    assert at_2 and at_6 and at_2["size"] == at_6["size"] > 0
    assert at_2["hash"] != at_6["hash"], "the memory image did not change between steps 2 and 6"
    app.set_slider(2)
    app.wait_painted(step=2)
    assert app.stage_pixels("memory")["hash"] == at_2["hash"], "the same step painted different pixels"
    # the focus view follows the step as well
    focus_6 = app.stage_pixels("focus-write-1")
    app.set_slider(6)
    app.wait_painted(step=6)
    assert app.stage_pixels("focus-write-1")["hash"] != focus_6["hash"]
    app.assert_no_errors()


def _file_input(app):
    """The "Open episode" file input (the panel also has "Open checkpoint"), in the section the
    toolbar opens."""
    app.show_files()
    return app.page.get_by_role("button", name="Open episode", exact=True)


def test_open_episode_file(explorer_page, copy_episode):
    app = explorer_page
    path, steps = copy_episode
    before = app.steps()
    assert before != steps, "pick an episode whose length differs from the default one"
    app.set_slider(5)
    app.wait_painted(step=5)
    _file_input(app).set_input_files(str(path))
    # a new episode opens on its own step worth seeing
    from ntmviz.episode import Episode

    app.wait_painted(step=Episode.load(path).opening_step(), steps=steps, timeout=90)
    assert app.slider("Step").get_attribute("max") == str(steps - 1)
    # the new episode plays to its end and stops there
    app.click("Play")
    app.wait(lambda v: v["player"]["playing"] is False and v["player"]["step"] == steps - 1,
             "the new episode to play to its last step", timeout=90)
    assert app.page.get_by_role("alert").count() == 0
    app.assert_no_errors()


def test_corrupt_file_shows_message_and_app_keeps_working(explorer_page):
    app = explorer_page
    steps = app.steps()
    app.set_slider(4)
    app.wait_painted(step=4)
    _file_input(app).set_input_files(files=[{
        "name": "broken.safetensors", "mimeType": "application/octet-stream",
        "buffer": b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + bytes(range(256)),
    }])
    alert = app.page.get_by_role("alert")
    alert.wait_for(state="visible", timeout=90_000)
    text = alert.inner_text()
    assert "broken.safetensors" in text or "episode" in text.lower(), text
    # the previous episode is still there and still scrubs and plays
    views = app.views()
    assert views["player"]["steps"] == steps and views["player"]["step"] == 4
    app.page.keyboard.press("ArrowRight")
    app.wait_painted(step=5, steps=steps)
    app.click("Play")
    app.wait(lambda v: v["player"]["step"] >= 7, "playback after the failed load")
    app.click("Pause")
    app.assert_no_errors()


def test_train_tab_opens_offline_without_errors(explorer_page):
    app = explorer_page
    for tab in ("Train", "Explore"):  # Compare: see the note in ntmviz/app/explorer.py
        app.page.get_by_text(tab, exact=True).first.click()
        app.page.wait_for_timeout(1500)  # components of the tab render and fetch their styles
    app.page.get_by_text("Train", exact=True).first.click()
    app.button("Start").wait_for()
    assert app.button("Save checkpoint").count() == 1
    app.page.wait_for_timeout(1000)
    app.assert_no_errors()
