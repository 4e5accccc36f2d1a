"""Episode files and recordings in real Chromium: a file over the websocket's 20 MB opens (it
travels in pieces), one over the app's limit or an empty one gets a message and the page keeps
working, the same file opened twice opens twice, and a long recording runs off the event loop
with Run disabled and a busy note while other sessions keep working."""

from __future__ import annotations

import threading

import torch

import ntmviz
from ntmviz.files import MAX_EPISODE_BYTES, MB


def file_input(app):
    return app.page.get_by_label("Open episode", exact=True)


def alert_text(app, timeout_ms: int = 120_000) -> str:
    alert = app.page.get_by_role("alert")
    alert.wait_for(state="visible", timeout=timeout_ms)
    return alert.inner_text()


def test_a_file_larger_than_a_websocket_message_opens(explorer_page, tmp_path):
    app = explorer_page
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=5, output_size=4, memory_slots=1024, memory_width=32,
                                        controller_size=16))
    episode = ntmviz.record(model, (torch.rand(300, 5) > 0.5).float(), meta={"task": "big"})
    path = episode.save(tmp_path / "big.safetensors")
    assert path.stat().st_size > 30 * MB  # over Bokeh's 20 MB websocket message limit, even before base64
    file_input(app).set_input_files(str(path))
    app.wait_painted(steps=300, timeout=240)
    assert app.page.get_by_role("alert").count() == 0
    # the page still works: it scrubs and plays
    app.set_slider(150)
    app.wait_painted(step=150, steps=300)
    app.assert_no_errors()


def test_a_file_over_the_limit_or_empty_gets_a_message_and_the_page_keeps_working(explorer_page, tmp_path):
    app = explorer_page
    steps = app.steps()
    app.set_slider(3)
    app.wait_painted(step=3)
    huge = tmp_path / "huge.safetensors"
    with huge.open("wb") as f:  # sparse: 200 MB that take no disk space
        f.truncate(200 * MB)
    file_input(app).set_input_files(str(huge))
    assert alert_text(app) == f"huge.safetensors: too large (200.0 MB, limit {MAX_EPISODE_BYTES // MB} MB)"
    file_input(app).set_input_files(files=[{"name": "empty.safetensors", "mimeType": "application/octet-stream",
                                            "buffer": b""}])
    app.page.get_by_role("alert").get_by_text("empty.safetensors: empty file").wait_for(timeout=60_000)
    views = app.views()
    assert views["player"]["steps"] == steps and views["player"]["step"] == 3
    app.page.keyboard.press("ArrowRight")
    app.wait_painted(step=4, steps=steps)
    app.assert_no_errors()


def test_the_same_file_opened_again_opens_again(explorer_page, copy_episode):
    app = explorer_page
    path, file_steps = copy_episode
    default_steps = app.steps()
    assert default_steps != file_steps
    file_input(app).set_input_files(str(path))
    app.wait_painted(steps=file_steps, timeout=120)
    app.click("Run")  # back to an episode of another length
    app.wait_painted(steps=default_steps, timeout=120)
    file_input(app).set_input_files(str(path))  # the very same file: it must load again
    app.wait_painted(steps=file_steps, timeout=120)
    assert app.page.get_by_role("alert").count() == 0
    app.assert_no_errors()


def test_a_long_recording_leaves_the_server_free_and_run_disabled(browser, browser_helpers, monkeypatch):
    """The recording is held at its start by a gate the test opens, so what happens meanwhile is
    certain: Run is disabled and says so, and a second session opens and draws."""
    from _serve import served

    import ntmviz.app.sources as sources_module
    from ntmviz.app import Explorer

    armed, gate, started = threading.Event(), threading.Event(), threading.Event()
    real_record = sources_module.record_episode

    def gated_record(*args, **kwargs):
        if armed.is_set():  # only the Run below; building a session records its first episode too
            started.set()
            assert gate.wait(timeout=300), "the test never opened the gate"
        return real_record(*args, **kwargs)
    monkeypatch.setattr(sources_module, "record_episode", gated_record)

    explorers = []

    def factory():
        explorer = Explorer.default(folder="/nonexistent")  # an untrained copy NTM, T = 41
        explorers.append(explorer)
        return explorer

    with served(factory) as url:
        context, app = None, None
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            app = browser_helpers.AppPage(page)
            page.goto(url)
            app.wait_painted(timeout=120)
            steps = app.steps()
            explorer = explorers[-1]
            box = page.get_by_label("Length", exact=True)
            box.fill("7")
            box.press("Tab")  # (Enter would run at once, before the gate is armed)
            app.wait(lambda _: explorer.sources.length.value == "7", "the length")
            armed.set()
            app.click("Run")
            assert started.wait(timeout=60)
            # busy: Run disabled and renamed, a note says what is going on
            busy = page.get_by_role("button", name="Recording…", exact=True)
            busy.wait_for(timeout=30_000)
            assert busy.is_disabled()
            page.get_by_text("Recording copy at length 7…").wait_for(timeout=30_000)
            assert explorer.sources.busy and not gate.is_set()
            # another session opens and draws while the recording is still held
            other = context.new_page()
            other_app = browser_helpers.AppPage(other)
            other.goto(url)
            other_app.wait_painted(timeout=120)
            assert not gate.is_set() and explorer.sources.busy
            other.close()
            # this page still scrubs meanwhile
            app.set_slider(5)
            app.wait_painted(step=5)
            # let the recording finish: the new episode shows, Run is back
            armed.clear()
            gate.set()
            app.wait_painted(steps=15, timeout=120)
            run = page.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=30_000)
            assert run.is_enabled() and not explorer.sources.busy
            assert steps != 15 and explorer.state.episode.steps == 15
            app.assert_no_errors()
            other_app.assert_no_errors()
        finally:
            gate.set()
            if context is not None:
                context.close()
