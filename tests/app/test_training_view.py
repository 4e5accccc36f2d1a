"""TrainingView without a browser: built with get_root(document, comm), driven from Python through
its parts' public names (view.form, view.buttons, view.curves, view.seed_table, view.scrubber)."""

import asyncio
import html
import math
import re
import threading
import time

import panel as pn
import pytest
import torch
from bokeh.document import Document
from bokeh.models import GlyphRenderer, Legend, Plot, Scatter
from pyviz_comms import Comm

import ntmviz.app.training_view as training_view_module
from ntmviz import checkpoint
from ntmviz.app.live import RunConfig, live_runs, new_run
from ntmviz.app.state import Playback
from ntmviz.app.training_view import TrainingView


def small(**overrides) -> RunConfig:
    options = dict(task="copy", task_options={"max_length": 3}, memory_slots=8, memory_width=5,
                   controller_size=16, lr=1e-3, optimizer="adam", batch_size=4, snapshot_every=2)
    options.update(overrides)
    return RunConfig(**options)


def pull_until(view, predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view.pull()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def view(tmp_path):
    v = TrainingView(small(), save_folder=str(tmp_path), folder=str(tmp_path))
    v.root = pn.panel(v).get_root(Document(), Comm())  # the Bokeh models the page would get
    yield v
    v.stop()
    assert v.run is None or not v.run.alive


def plots(view) -> dict[str, Plot]:
    """The rendered charts by title."""
    return {p.title.text: p for p in view.root.select({"type": Plot}) if p.title is not None and p.title.text}


def legend_labels(plot) -> list[str]:
    (legend,) = plot.select({"type": Legend})
    return [item.label["value"] if isinstance(item.label, dict) else item.label.value for item in legend.items]


def line_data(plot) -> dict[str, list]:
    """What each seed's line in a rendered chart holds: its legend label -> its y values."""
    (legend,) = plot.select({"type": Legend}) or (None,)
    out = {}
    for r in plot.select({"type": GlyphRenderer}):
        if type(r.glyph).__name__ != "Line" or r.glyph.line_alpha == 0:  # not the hover's invisible carrier
            continue
        data = r.data_source.data
        ys = [v for k, v in data.items() if k != "step"]
        label = next((item.label["value"] if isinstance(item.label, dict) else item.label.value
                      for item in (legend.items if legend else []) if r in item.renderers), "")
        out[label] = [float(v) for v in ys[0]]
    return out


def test_start_streams_points_and_grows_the_snapshot_slider(view):
    b = view.buttons
    assert b.pause.disabled and b.stop.disabled and not b.start.disabled and view.status == "ready"
    run = view.start()
    assert run is not None and run.alive and run in live_runs() and view.status == "running"
    assert b.start.disabled and not b.pause.disabled
    pull_until(view, lambda: len(view.curves.points(0)["loss"]) >= 3, what="three curve points")
    first_end = view.scrubber.slider.end
    pull_until(view, lambda: view.scrubber.slider.end >= first_end + 2, what="the slider to grow")
    assert view.scrubber.slider.value == view.scrubber.slider.end  # follows the newest
    assert view.state.episode is view.snapshot.episode
    assert view.state.episode.meta["training_step"] == view.snapshot.step == view.shown_step
    assert "sequences/s" in view.status_text
    assert view.progress.value > 0
    steps = view.curves.points(0)["step"]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def test_the_slider_reads_as_the_training_step(view):
    """The slider's title is the training step of the snapshot under it, never its position."""
    view.start()
    pull_until(view, lambda: len(view.snapshot_list) >= 3, what="three snapshots")
    view.pause()
    pull_until(view, lambda: view.run.status == "paused", what="the pause")
    s = view.scrubber
    steps = [snap.step for snap in view.snapshot_list]
    assert s.slider.format.args["steps"] == steps == s.steps == view.snapshot_steps
    assert "toLocaleString" in s.slider.format.code
    s.slider.value = 1
    assert view.shown_step == steps[1] == 2 and s.slider_title == "Training step: 2"
    s.show_step(steps[-1])
    assert s.slider.value == len(steps) - 1 and view.shown_step == steps[-1]
    assert s.slider_title == f"Training step: {steps[-1]:,}"


def test_a_run_is_running_when_the_view_shows_it(view):
    """The browser test saw view.run before its thread started (view.run was set first)."""
    seen = []
    view.param.watch(lambda e: seen.append(e.new is not None and e.new.alive), "run")
    view.start()
    assert seen == [True]


def test_scrub_back_shows_an_older_snapshot_in_the_shared_state(tmp_path):
    state = Playback()
    v = TrainingView(small(), state=state, save_folder=str(tmp_path), show_views=False)
    pn.panel(v).get_root(Document(), Comm())
    try:
        v.start()
        pull_until(v, lambda: len(v.snapshot_list) >= 3, what="three snapshots")
        v.scrubber.slider.value = 0
        assert state.episode is v.snapshot_list[0].episode
        assert v.snapshot.step == 0 == v.shown_step and not v.scrubber.follow
        assert v.scrubber.label.object.startswith("Snapshot 1 of")
        v.pull()
        assert v.scrubber.slider.value == 0  # new snapshots do not pull the view away
        v.scrubber.slider.value = v.scrubber.slider.end
        assert v.scrubber.follow
    finally:
        v.stop()


def test_before_start_the_tab_shows_no_other_model(tmp_path, episode):
    """The explorer shares its state: before Start the Train tab does not show the explorer's
    episode under its form, it says what its views will show; after, they show this run only."""
    state = Playback(episode)  # the Explore tab's episode (another model)
    v = TrainingView(small(steps=4), state=state, save_folder=str(tmp_path), folder=str(tmp_path))
    pn.panel(v).get_root(Document(), Comm())
    s = v.scrubber
    assert s.area.objects == [s.note, s.show_button] and s.note.object == (
        "Nothing trained yet. Press Start: the views here then show the model these settings describe, from its "
        "untrained first step (step 0), a snapshot every 2 steps.")
    v.form.snapshot_every.value = "3"
    assert s.note.object.endswith("a snapshot every 3 steps.")
    assert not s.show_button.visible and not s.showing_run and state.episode is episode
    assert not v.run_area.visible and not s.scrub_area.visible  # no curves, no slider: no model yet
    assert s.slider.disabled and s.label.object == "No snapshots yet."
    v.start()
    assert v.run_area.visible and s.scrub_area.visible
    pull_until(v, lambda: v.run.ended and len(v.snapshot_list) >= 3, what="the run")
    v.pull()
    views = s.area.objects
    assert s.showing_run and len(views) == 1 and state.episode is v.snapshot.episode
    from ntmviz.app.canvas import EpisodeCanvas

    canvases = views[0].select(EpisodeCanvas)  # the views on the page, in order, on the shared state
    assert [c.kind for c in canvases] == ["player", "heads", "memory", "sequence"]  # an NTM: no slot state
    assert all(c.view.state is state for c in canvases)
    state.episode = episode  # another tab shows another episode: the views go, a note says why
    assert not s.showing_run and s.area.objects == [s.note, s.show_button] and s.show_button.visible
    assert s.note.object.startswith("The views show an episode from another tab")
    s.show_button.clicks += 1
    assert state.episode is v.snapshot.episode and s.area.objects == views
    v.stop()


def test_pause_resume_and_stop_buttons(view):
    b = view.buttons
    view.start()
    pull_until(view, lambda: view.run.step >= 2, what="two steps")
    b.pause.clicks += 1
    pull_until(view, lambda: view.status == "paused", what="the pause")
    assert view.status_text.startswith("**Paused**")
    assert b.pause.disabled and not b.resume.disabled
    at = view.run.step
    time.sleep(0.3)
    view.pull()
    assert view.run.step == at
    b.resume.clicks += 1
    pull_until(view, lambda: view.run.step > at, what="training to go on")
    b.stop.clicks += 1  # asks; never waits on the event loop
    assert b.stop.disabled and b.start.disabled
    pull_until(view, lambda: view.status == "stopped", what="the stop")
    assert view.status_text.startswith("**Stopped**")
    assert not view.run.alive
    assert not b.start.disabled and b.stop.disabled


def test_save_checkpoint_and_load_it_back(view, tmp_path):
    assert view.save_checkpoint() is None and view.message  # nothing to save yet
    view.start()
    pull_until(view, lambda: view.run.step >= 2, what="two steps")
    path = view.save_checkpoint()
    assert path is not None and path.parent == tmp_path and path.is_file()
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.task.name == "copy" and loaded.step >= 2
    assert loaded.config.memory_slots == 8
    data = view.checkpoint_file().getvalue()  # what "Download checkpoint" sends
    assert data[:8] and len(data) > 1000
    view.stop()
    # a new run can start from the saved file
    view.start_from.options = {"a new model": "", path.name: str(path)}
    view.start_from.value = str(path)
    assert view.form.memory_slots.disabled and view.form.seeds.disabled
    run = view.start()
    assert run is not None and run.trainer.step == loaded.step
    # its past curve comes first, at its own steps
    past = view.curve(0)
    assert past["sequences"] == run.histories()[0]["sequences"][:len(past["sequences"])]
    assert past["step"][-1] == loaded.step


def test_divergence_shows_a_message_naming_the_step(view):
    class Poison:
        def on_step(self, trainer, metrics):
            if trainer.step == 3:
                with torch.no_grad():
                    next(trainer.model.parameters()).view(-1)[0] = float("nan")

    run = view.start()
    run.trainer.callbacks.append(Poison())
    pull_until(view, lambda: run.status == "diverged", what="the divergence")
    view.pull()
    assert view.alert.visible and "step 4" in view.alert.object and view.status == "diverged"
    assert view.snapshot_list  # still there to scrub
    assert not view.buttons.start.disabled
    assert view.save_checkpoint() is not None


def test_bad_settings_show_a_message_and_start_nothing(view):
    view.form.memory_slots.value = "1"  # the copy task of length 3 needs 3 slots
    assert view.start() is None
    assert view.alert.visible and "slots" in view.alert.object
    assert view.run is None


def test_the_curve_is_thinned_evenly_not_grown(view):
    view.max_points = 10
    view.start()
    pull_until(view, lambda: view.run.step >= 40, what="40 steps")
    view.pause()
    pull_until(view, lambda: view.status == "paused", what="the pause")
    steps = view.curves.points(0)["step"]
    assert 5 <= len(steps) <= 10 and view.curves.drawn()["step"].tolist() == steps
    # the start of the run stays, the newest rows are at most one spacing behind, and the gaps
    # are even: the thinned rows nearest to evenly spaced steps, then rows that far apart
    assert steps[0] == 1 and view.run.step - steps[-1] < 2 * view.curves._spacing + 1
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert max(gaps) <= 2 * min(gaps) + 1, gaps


def test_play_training_walks_through_the_snapshots(view):
    view.start()
    pull_until(view, lambda: len(view.snapshot_list) >= 3, what="three snapshots")
    view.pause()
    pull_until(view, lambda: view.status == "paused", what="the pause")  # no new snapshots while playing
    s = view.scrubber
    s.play.value = True
    assert s.slider.value == 0
    seen = []
    for _ in range(len(view.snapshot_list) + 2):
        view.pull()
        seen.append(s.slider.value)
    assert seen[:2] == [1, 2]
    assert not s.play.value  # stops at the newest


class Gate:
    """A Trainer callback that holds the training thread inside step `at` until released."""

    def __init__(self, at: int):
        self.at, self.inside, self.release = at, threading.Event(), threading.Event()

    def on_step(self, trainer, metrics):
        if trainer.step == self.at:
            self.inside.set()
            assert self.release.wait(60), "the test never released the gate"


@pytest.fixture
def gate(monkeypatch):
    """Every run the view starts is held inside its step 3 until gate.release is set."""
    g = Gate(at=3)

    def gated(*args, **kwargs):
        run = new_run(*args, **kwargs)
        run.trainer.callbacks.insert(0, g)
        return run

    monkeypatch.setattr(training_view_module, "new_run", gated)
    yield g
    g.release.set()


def test_buttons_follow_the_runs_status_not_the_click(view, gate):
    b = view.buttons
    view.start()
    assert gate.inside.wait(60)
    b.pause.clicks += 1  # asked while the thread is inside step 3
    assert view.run.status == "pausing" and b.status == "pausing"
    for _ in range(3):  # pulls do not flip the buttons back: the run is still pausing
        view.pull()
        assert b.pause.disabled and not b.resume.disabled
        assert view.status_text.startswith("**Pausing**")
    gate.release.set()
    pull_until(view, lambda: view.status == "paused", what="the pause")
    assert b.pause.disabled and not b.resume.disabled
    b.resume.clicks += 1
    assert not b.pause.disabled and b.resume.disabled
    view.pull()
    assert not b.pause.disabled and b.resume.disabled


def test_the_pull_stops_once_the_run_has_ended(view):
    view.form.steps.value = "6"
    view.start()
    assert view.pulling
    pull_until(view, lambda: view.status == "done", what="the end of the run")
    view.pull()  # the pull that sees the end shows it and stops pulling
    assert not view.pulling
    assert view.snapshot_list[-1].step == 6  # the last snapshot was pulled before stopping
    assert view.curves.drawn()["step"].tolist() == list(range(1, 7))  # every point sent at the end
    view.scrubber.play.value = True  # Play training needs the pull again
    assert view.pulling
    for _ in range(len(view.snapshot_list) + 1):
        view.pull()
    assert not view.scrubber.play.value and not view.pulling


def test_save_and_download_run_off_the_event_loop(view, gate, tmp_path):
    from ntmviz.app import background

    view.start()
    assert gate.inside.wait(60)  # a save now waits for the thread to finish step 3
    b = view.buttons
    threads = []
    real_save = view.run.save
    view.run.save = lambda *a: threads.append(threading.current_thread().name) or real_save(*a)

    async def wait_for(predicate, what):
        for _ in range(1200):
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    async def scenario():
        ticks = 0

        async def ticker():  # other sessions' work on the same event loop
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        b.save.clicks += 1  # schedules the save; the click itself returns at once
        await wait_for(lambda: ticks > 5, "the event loop to serve other work")
        assert b.save.label == "Saving…" and b.save.disabled and b.download.disabled and b.busy == "saving"
        assert view.status_text.endswith("· saving…") and not view.saved
        gate.release.set()
        await wait_for(lambda: view.saved, "the save")
        assert b.save.label == "Save checkpoint" and not b.save.disabled and not b.busy
        b.download._clicks += 1  # Download: the same, on the background pool
        await wait_for(lambda: b.download.data, "the download")
        task.cancel()

    asyncio.run(scenario())
    saved = checkpoint.load(view.saved, device="cpu")
    assert saved.step >= 3 and saved.task.name == "copy"
    assert b.download.data.startswith("data:")
    assert threads and all(t.startswith(background.THREAD_PREFIX) for t in threads)  # the app's one pool


def test_the_stop_button_never_waits_for_the_training_thread(view, gate):
    """Stop runs on the event loop every session shares: it asks the run to stop and returns,
    even while the thread is held inside a step; the pull shows the end later."""
    view.start()
    assert gate.inside.wait(60)  # the thread is inside step 3 and cannot stop until released
    run = view.run
    joined = []
    real_join = run.join
    run.join = lambda *args, **kwargs: joined.append(args) or real_join(*args, **kwargs)
    view.buttons.stop.clicks += 1
    assert joined == [] and run.alive and run.status == "stopping"
    gate.release.set()
    assert real_join(60) and run.status == "stopped"
    pull_until(view, lambda: view.status == "stopped", what="the end shown")


def test_the_session_backstop_stops_the_run_without_waiting_for_it(view, gate):
    """on_session_destroyed runs on the event loop every session shares: like Stop, it asks the
    run to stop and returns while the thread is still held inside a step."""
    view.start()
    assert gate.inside.wait(60)
    run = view.run
    joined = []
    real_join = run.join
    run.join = lambda *args, **kwargs: joined.append(args) or real_join(*args, **kwargs)
    view._session_destroyed(None)
    assert joined == [] and run.alive and run.status == "stopping"
    gate.release.set()
    assert real_join(60) and run.status == "stopped"


def test_a_lost_connection_pauses_the_run_and_a_reconnect_resumes_it(view):
    from bokeh.events import ClientReconnected, ConnectionLost

    view.start()
    pull_until(view, lambda: view.run.step >= 2, what="two steps")
    view._connection_lost(ConnectionLost())
    assert view.run.status in ("pausing", "paused")  # at once, not when the session is dropped
    pull_until(view, lambda: view.status == "paused", what="the pause")
    view._reconnected(ClientReconnected())
    at = view.run.step
    pull_until(view, lambda: view.run.step > at, what="training to go on")
    # a run the user paused stays paused when the page comes back
    view.pause()
    view._connection_lost(ConnectionLost())
    view._reconnected(ClientReconnected())
    pull_until(view, lambda: view.run.status == "paused", what="the user's pause")
    time.sleep(0.3)
    assert view.run.status == "paused"


def test_leaving_the_page_asks_while_a_run_holds_unsaved_steps(view):
    assert not view.guard.active
    view.form.steps.value = "4"
    view.start()
    view.pull()
    assert view.guard.active  # alive
    pull_until(view, lambda: view.status == "done", what="the end")
    assert view.guard.active  # ended, 4 steps not saved
    assert view.save_checkpoint() is not None
    assert not view.guard.active


@pytest.mark.parametrize("field, typed, message", [
    ("size", "0", "Longest input must be at least 1 for copy (the sequence length); you typed 0."),
    ("size", "-5", "Longest input must be at least 1 for copy (the sequence length); you typed -5."),
    ("size", "12.5", "Longest input must be a whole number; \u201c12.5\u201d is not one."),
    ("memory_slots", "1e20", "Memory slots (N) must be a whole number; \u201c1e20\u201d is not one."),
    ("memory_slots", "100000000000000000000", "Memory slots (N) must be at most 4,096; you typed "
                                              "100,000,000,000,000,000,000."),
    ("steps", "0", "Steps must be at least 1; you typed 0."),
    ("batch_size", "", "Batch size: type a whole number."),
    ("lr", "0", "Learning rate must be more than 0; you typed 0."),
    ("lr", "fast", "Learning rate must be a number such as 0.001; \u201cfast\u201d is not one."),
])
def test_settings_are_read_as_typed_or_refused_in_the_users_terms(view, field, typed, message):
    getattr(view.form, field).value = typed
    assert view.start() is None and view.run is None
    assert view.message == message
    assert getattr(view.form, field).value == typed  # what the user typed stays, never rewritten


def test_a_bad_snapshot_period_is_said_at_once_and_a_good_one_applies_to_the_run(view):
    view.start()
    view.form.snapshot_every.value = "0"
    assert view.message == "Snapshot every (steps) must be at least 1; you typed 0." and view.alert.visible
    view.form.snapshot_every.value = "7"
    assert view.run.snapshot_every == 7 and view.form.settings.snapshot_every == 7
    view.form.validate_every.value = "3"
    assert view.run.validate_every == 3


def test_recall_at_one_item_names_the_number_of_items_not_a_field(view):
    view.form.task.value = "associative_recall"
    view.form.size.value = "1"
    assert view.start() is None
    assert view.message == ("Longest input must be at least 2 for associative recall (the number of items); "
                            "you typed 1.")
    view.form.task.value = "priority_sort"
    view.form.size.value = "5"
    assert view.start() is None
    assert "at least 20 for priority sort (the number of inputs)" in view.message


def test_checkpoints_saved_here_are_listed_in_start_from(tmp_path):
    shipped, runs = tmp_path / "shipped", tmp_path / "runs"
    shipped.mkdir()
    v = TrainingView(small(steps=3), folder=str(shipped), save_folder=str(runs), show_views=False)
    pn.panel(v).get_root(Document(), Comm())
    try:
        assert list(v.start_from.options) == ["a new model"]
        v.start()
        v.stop()
        path = v.save_checkpoint()
        assert v.start_from.options == {"a new model": "", f"runs/{path.name}": str(path)}
        assert v.saved == str(path)
    finally:
        v.stop()


def test_an_unexpected_start_failure_is_logged_with_its_traceback(view, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(training_view_module, "new_run", broken)
    with caplog.at_level("ERROR", logger="ntmviz.app.training_view"):
        assert view.start() is None
    assert "could not start: RuntimeError: a bug" in view.message
    [record] = [r for r in caplog.records if r.name == "ntmviz.app.training_view"]
    assert record.exc_info and str(record.exc_info[1]) == "a bug"


def test_a_save_or_download_that_fails_unexpectedly_is_logged_with_its_traceback(view, caplog):
    view.start()
    pull_until(view, lambda: view.run.step >= 1, what="a step")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    view.run.save = full_disk
    with caplog.at_level("ERROR", logger="ntmviz.app.training_view"):
        assert view.save_checkpoint() is None
        assert "could not save" in view.message and "No space left on device" in view.message
        assert asyncio.run(view.save_checkpoint_async()) is None
        assert asyncio.run(view._download_file()).getvalue() == b""  # Download: nothing, and said
    records = [r for r in caplog.records if r.name == "ntmviz.app.training_view"]
    assert len(records) == 3 and all(r.exc_info and isinstance(r.exc_info[1], OSError) for r in records)
    assert "No space left on device" in view.message
    assert view.buttons.save.label == "Save checkpoint" and not view.buttons.busy  # no longer busy


# ---- Compare ------------------------------------------------------------------------------

def _trained_checkpoint(tmp_path, name, **overrides):
    run = new_run(small(steps=3, snapshot_every=1, **overrides))
    run.start()
    assert run.join(60) and run.status == "done"
    return run, run.save(tmp_path / name)


def test_compare_an_ntm_and_an_lstm_checkpoint_on_one_input(tmp_path):
    from ntmviz.app.compare import Compare, checkpoint_pair

    _, ntm = _trained_checkpoint(tmp_path, "a-ntm.safetensors")
    _, lstm = _trained_checkpoint(tmp_path, "b-lstm.safetensors", model="lstm", hidden_size=8, layers=1)
    left, right = checkpoint_pair(ntm, lstm, length=3, seed=2)
    assert (left.inputs == right.inputs).all() and left.has_memory and right.memory is None

    cmp = Compare(folder=str(tmp_path))
    pn.panel(cmp).get_root(Document(), Comm())
    assert cmp.left_pick.value == str(ntm) and cmp.right_pick.value == str(lstm)
    cmp.length.value = "3"
    assert cmp.compare(), cmp.message
    assert (cmp.left.episode.inputs == cmp.right.episode.inputs).all()
    assert cmp.right.episode.memory is None and cmp._right_side.note.visible
    assert not cmp._right_side._memory.visible and cmp._left_side._memory.visible
    assert not cmp._right_side._focus.visible and not cmp._right_side._heads.visible  # no heads to show
    cmp.t = 4  # one shared step (one Player) moves both sides
    assert cmp.left.t == 4 and cmp.right.t == 4 and cmp.player.frame()["t"] == 4
    cmp.left.t = 2  # as a click in one side's view would
    assert cmp.right.t == 2 and cmp.t == 2


def test_compare_two_training_snapshots_and_a_snapshot_with_a_checkpoint(view, tmp_path):
    from ntmviz.app.compare import Compare

    view.start()
    pull_until(view, lambda: len(view.snapshot_list) >= 3, what="three snapshots")
    path = view.save_checkpoint()
    view.stop()
    cmp = Compare(training=view, folder=str(tmp_path))
    pn.panel(cmp).get_root(Document(), Comm())
    options = cmp.options()
    snaps = [v for k, v in options.items() if k.startswith("training snapshot")]
    from ntmviz.app.compare import MAX_SNAPSHOTS

    # every snapshot, or MAX_SNAPSHOTS of them thinned (the first and the newest always)
    assert len(snaps) == min(len(view.snapshot_list), MAX_SNAPSHOTS)
    assert snaps[0] == "snapshot:0" and snaps[-1] == f"snapshot:{view.snapshot_list[-1].step}"
    cmp.left_pick.value, cmp.right_pick.value = snaps[0], snaps[-1]
    assert cmp.compare(), cmp.message
    assert cmp.left.episode.meta["training_step"] == 0
    assert cmp.right.episode.meta["training_step"] == view.snapshot_list[-1].step
    cmp.left_pick.value, cmp.right_pick.value = str(path), snaps[0]
    assert cmp.compare(), cmp.message  # the checkpoint runs on the snapshot's probe input
    assert (cmp.left.episode.inputs == cmp.right.episode.inputs).all()


# ---- seeds ----------------------------------------------------------------------------------

def table_rows(view) -> dict[int, list[str]]:
    """The seed table as the page shows it: data-seed -> the cells' text."""
    rows = {}
    for seed, body in re.findall(r'<tr data-seed="(\d+)"[^>]*>(.*?)</tr>', view.seed_table.html):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body)
        rows[int(seed)] = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]
    return rows


def expected_row(view, k, state):
    run = view.run
    hist = run.histories()[k]
    m = run.models()[k]
    valid = "\u2014"
    if m.validation is not None:
        valid = (f"{m.validation.bit_errors:.2f} (best {m.best_validation.bit_errors:.2f} at step "
                 f"{m.best_validation.step:,})")
    shown = " (shown)" if k == view.scrubber.member else ""
    return [f"\u25a0 seed {run.seeds[k]}{shown}", f"{hist['loss'][-1]:.3f}", f"{hist['bit_errors'][-1]:.2f}",
            "\u2014", state, valid]


def test_three_seeds_train_as_one_run_with_a_curve_and_a_row_per_seed(view, tmp_path):
    view.form.seeds.value = "0-2"
    view.form.steps.value = "12"
    view.form.validate_every.value = "4"
    assert not view.scrubber.show_seed.visible and not view.seed_table.visible  # one seed: as before
    run = view.start()
    assert run is not None and run.trainer.models == 3 and run.seeds == [0, 1, 2]
    assert run.validate_every == 4
    pull_until(view, lambda: run.ended, what="the end of the run")
    view.pull()
    assert view.scrubber.show_seed.visible and view.seed_table.visible
    hist = run.histories()
    drawn = view.curves.drawn()
    for k in range(3):  # each seed's line is the Trainer's curve of that model
        data = view.curve(k)
        assert data["loss"] == hist[k]["loss"] and data["bit_errors"] == hist[k]["bit_errors"]
        assert data["sequences"] == hist[k]["sequences"] and len(data["loss"]) == 12
        assert data["loss"] == run.trainer.histories[k].loss
        assert drawn[f"loss_{k}" if k else "loss"].tolist() == hist[k]["loss"]  # one Buffer, a column per seed
    charts = plots(view)
    for title, name in (("Loss (nats per sequence)", "loss"), ("Bit errors per sequence", "bit_errors")):
        assert legend_labels(charts[title]) == ["seed 0", "seed 1", "seed 2"]
        lines = line_data(charts[title])  # what the page draws: each seed's line holds its values
        assert {label: values for label, values in lines.items()} == {
            f"seed {k}": [float(v) for v in hist[k][name]] for k in range(3)}
    assert table_rows(view) == {k: expected_row(view, k, "done") for k in range(3)}
    assert "3 of 3 seeds training" in view.status_text and "sequences/s" in view.status_text
    # shown by default: the seed best now on the validation stream (every seed has a score)
    models = run.models()
    best = min(range(3), key=lambda k: (models[k].validation.bit_errors, models[k].validation.loss, k))
    s = view.scrubber
    assert s.show_seed.value == "best" and view.shown_seed == best
    assert s.show_seed.options[f"best now (seed {best})"] == "best"
    last = run.snapshots()[1][-1]
    assert view.state.episode is last.episodes[best]
    # switching the seed switches the snapshots on show, at the same training step
    other = (best + 1) % 3
    s.show_seed.value = other
    assert view.shown_seed == other and view.state.episode is last.episodes[other]
    assert view.state.episode.meta["training_seed"] == other
    assert s.label.object.endswith(f"· seed {other}")
    assert [x.episode for x in view.snapshot_list] == [x.episodes[other] for x in run.snapshots()[1]]
    s.slider.value = 1
    assert view.state.episode is run.snapshots()[1][1].episodes[other]
    assert table_rows(view)[other][0].endswith("(shown)")
    # Save and Download write the seed on show
    path = view.save_checkpoint()
    assert path.name == f"copy-ntm-seed{other}-step12.safetensors"
    assert f"&#40;seed {other}&#41;" in view.alert.object  # as text: the parentheses escaped
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.meta["seed"] == other and loaded.meta["ensemble"]["member"] == other
    for name, t in run.trainer.model.member_state_dict(other).items():
        assert torch.equal(loaded.model.member_state_dict(0)[name], t), name
    assert view.buttons.download.filename == f"copy-ntm-seed{other}-live.safetensors"
    downloaded = tmp_path / "downloaded.safetensors"
    downloaded.write_bytes(view.checkpoint_file().getvalue())
    assert checkpoint.load(downloaded, device="cpu").meta["seed"] == other


def test_the_default_seed_follows_the_smoothed_training_loss_without_validation(view):
    view.form.seeds.value = "3,5,8"
    view.form.steps.value = "10"
    run = view.start()
    pull_until(view, lambda: run.ended, what="the end of the run")
    view.pull()
    smoothed = []
    for k in range(3):
        e = None
        for m in run.metrics_since(0):
            e = m.model_loss[k] if e is None else 0.9 * e + 0.1 * m.model_loss[k]
        smoothed.append(e)
    best = min(range(3), key=lambda k: (smoothed[k], k))
    assert view.shown_seed == run.seeds[best]
    assert view.state.episode is run.snapshots()[1][-1].episodes[best]


class PoisonSeeds:
    """From step `at` on, the training rows of the models `members` are NaN (their loss only)."""

    def __init__(self, members, at):
        self.members, self.at = members, at

    def install(self, trainer):
        sample, B = trainer.batch, trainer.batch_size

        def poisoned(step):
            batch = sample(step)
            if step < self.at:
                return batch
            inputs = batch.inputs.clone()
            for k in self.members:
                inputs[k * B:(k + 1) * B] = float("nan")
            return batch._replace(inputs=inputs)

        trainer.batch = poisoned


@pytest.fixture
def poison(monkeypatch):
    """Every run the view starts has the models `poison.members` diverge at step poison.at + 1."""
    p = PoisonSeeds([1], at=4)

    def poisoned(*args, **kwargs):
        run = new_run(*args, **kwargs)
        p.install(run.trainer)
        return run

    monkeypatch.setattr(training_view_module, "new_run", poisoned)
    return p


def marks_drawn(plot) -> list[tuple[float, float]]:
    """The x marks a rendered chart draws: (step, value) each."""
    out = []
    for r in plot.select({"type": GlyphRenderer}):
        if isinstance(r.glyph, Scatter):
            data = r.data_source.data
            out += [(float(x), float(y)) for x, y in zip(data["step"], data["y"])]
    return out


def test_a_diverged_seed_is_marked_while_the_others_go_on(view, poison):
    view.form.seeds.value = "0-2"
    run = view.start()
    pull_until(view, lambda: run.step >= 12 and not run.models()[1].alive, what="seed 1 to diverge, others on")
    view.pull()
    assert run.status == "running" and not view.alert.visible  # one seed is no error of the run
    reason = "the loss became nan at step 5; its weights are those of step 4"
    assert run.models()[1].diverged == reason
    rows = table_rows(view)
    assert rows[1][4] == f"diverged: {reason}"
    assert rows[0][4] == rows[2][4] == "training"
    assert "2 of 3 seeds training" in view.status_text
    for plot in plots(view).values():
        assert legend_labels(plot) == ["seed 0", "seed 1 (diverged)", "seed 2"]
    assert "seed 1 (diverged)" in view.scrubber.show_seed.options
    # its line stops at its last good step, marked there; the others grow
    view.pause()
    pull_until(view, lambda: run.status == "paused", what="the pause")
    view.pull()
    hist = run.histories()
    assert view.curve(1)["loss"] == hist[1]["loss"] and len(hist[1]["loss"]) == 4
    assert view.curve(0)["loss"] == hist[0]["loss"] and len(hist[0]["loss"]) == run.step
    assert view.curve(1)["sequences"] == hist[1]["sequences"]
    later = view.curves.drawn()["loss_1"].tolist()[4:]  # NaN from its divergence on: the line stops there
    assert len(later) == run.step - 4 and all(math.isnan(v) for v in later)
    assert view.curves.diverged == [1]
    charts = plots(view)
    assert marks_drawn(charts["Loss (nats per sequence)"]) == [(4.0, hist[1]["loss"][-1])]
    assert marks_drawn(charts["Bit errors per sequence"]) == [(4.0, hist[1]["bit_errors"][-1])]
    assert rows[1][1] == f"{hist[1]['loss'][-1]:.3f}"  # its last good values stay in the table
    assert view.shown_seed != 1  # the best now is one still training
    # its snapshots can still be shown and saved: its last good weights
    view.scrubber.show_seed.value = 1
    assert view.state.episode.meta["training_seed"] == 1
    path = view.save_checkpoint()
    assert path is not None and "seed1" in path.name
    assert "diverged" in checkpoint.load(path, device="cpu").meta


def test_every_seed_diverging_ends_the_run_with_a_message(view, poison):
    poison.members = [0, 1]
    view.form.seeds.value = "0,1"
    run = view.start()
    pull_until(view, lambda: run.ended, what="the divergence")
    view.pull()
    assert run.status == "diverged"
    assert view.alert.visible and "every model diverged by step 5" in view.alert.object
    rows = table_rows(view)
    assert all(r[4].startswith("diverged: the loss became nan at step 5") for r in rows.values())
    assert legend_labels(plots(view)["Loss (nats per sequence)"]) == ["seed 0 (diverged)", "seed 1 (diverged)"]
    assert len(view.curves.marks("loss")) == 2
    assert view.snapshot_list and not view.buttons.start.disabled  # as for one seed


@pytest.mark.parametrize("typed, message", [
    ("", "Seeds: type a seed (0), a range of seeds (0-7) or a list (0,3,5)."),
    ("0-", "Seeds '0-': '0-' is not a seed or a range of seeds (e.g. 0-7)"),
    ("3-1", "Seeds '3-1': the range 3-1 runs backwards"),
    ("0,2,0", "Seeds '0,2,0': a seed appears twice"),
    ("-1", "Seeds '-1': '-1' is not a seed or a range of seeds (e.g. 0-7)"),
    ("0-16", "Seeds '0-16': more than 16 seeds"),
    ("4294967296", "Seeds: a seed must be at most 4,294,967,295; you typed 4,294,967,296."),
])
def test_bad_seeds_show_a_message_and_start_nothing(view, typed, message):
    view.form.seeds.value = typed
    assert view.start() is None and view.run is None
    assert view.message == message and view.alert.visible
    assert view.form.seeds.value == typed


def test_one_seed_keeps_the_single_run_view(view):
    view.form.seeds.value = "7"
    view.form.steps.value = "4"
    run = view.start()
    pull_until(view, lambda: run.ended, what="the end")
    view.pull()
    assert run.seeds == [7] and not view.scrubber.show_seed.visible and not view.seed_table.visible
    assert view.status_text.startswith("**Done** · step 4 of 4 · 16 sequences · ")
    assert "seeds training" not in view.status_text
    assert view.curve(0)["loss"] == run.histories()[0]["loss"]
    loss = plots(view)["Loss (nats per sequence)"]
    assert not loss.select({"type": Legend}) or not legend_labels(loss)  # no legend for one line
    assert list(line_data(loss).values()) == [run.histories()[0]["loss"]]
    assert view.save_checkpoint().name == "copy-ntm-seed7-step4.safetensors"


def test_while_training_the_tables_numbers_change_at_most_every_table_period(view):
    """Every redraw of the table lays the page out again: numbers alone wait table_period."""
    view.table_period = 3600
    view.form.seeds.value = "0-2"
    run = view.start()
    view.scrubber.show_seed.value = 0  # a fixed seed: the choice of the best cannot redraw it
    pull_until(view, lambda: run.step >= 3 and "training" in view.seed_table.html, what="a few steps")
    shown = view.seed_table.html
    at = run.step
    pull_until(view, lambda: run.step >= at + 5, what="more steps")
    view.pull()
    newest = view.curve(0)["loss"][-1]
    assert table_rows(view)[0][1] != f"{newest:.3f}" and view.seed_table.html == shown  # not yet shown
    view.pause()
    pull_until(view, lambda: run.status == "paused", what="the pause")
    view.pull()
    hist = run.histories()
    assert table_rows(view) == {k: expected_row(view, k, "paused") for k in range(3)}  # paused: at once
    assert table_rows(view)[0][1] == f"{hist[0]['loss'][-1]:.3f}"


def test_the_form_shows_the_one_source_of_defaults(tmp_path, monkeypatch):
    """A fresh Train tab reads back exactly RunConfig.quick() (config.py's defaults with the tab's
    small model), and its limits are the settings' own: a cap changed there is the form's cap."""
    import dataclasses

    import ntmviz.app.train_form as train_form_module
    from ntmviz.app import run_settings
    from ntmviz.config import setting_of

    v = TrainingView(folder=str(tmp_path), save_folder=str(tmp_path), show_views=False)
    assert v.run_config() == RunConfig.quick()
    assert v.form.memory_slots.value == str(RunConfig.quick().memory_slots) and v.form.settings.memory_slots == 16
    v.form.model.value = "lstm"  # the LSTM's own fields: its hidden size and layers
    assert v.form.settings.model == "lstm" and v.form.model_fields == ["hidden_size", "layers"]
    assert v.form.hidden_size.label == "Hidden size" and v.form.hidden_size.value == "64"
    assert v.run_config() == dataclasses.replace(RunConfig.quick(), model="lstm")
    v.form.model.value = "ntm"
    cap = setting_of(RunConfig, "memory_slots").softbounds[1]
    v.form.memory_slots.value = str(cap + 1)
    assert v.start() is None and f"at most {cap:,}" in v.message
    wider = {"memory_slots": (1, 10**6)}  # the setting's soft bounds changed: the form follows
    monkeypatch.setattr(train_form_module, "setting_of", lambda cls, name: setting_of(cls, name)._replace(
        softbounds=wider.get(name, setting_of(cls, name).softbounds)))
    assert v.run_config().memory_slots == cap + 1
    # the same settings as param parameters, for widgets made with from_param
    Settings = run_settings.settings_class(RunConfig.quick())
    form = Settings()
    assert form.memory_slots == 16 and form.param.memory_slots.softbounds == (1, cap)
    assert form.param.optimizer.objects == ["adam", "rmsprop"] and form.param.lr.doc.startswith("learning rate")
    form.memory_slots = 32
    assert run_settings.to_config(form, RunConfig.quick()) == RunConfig.quick(memory_slots=32)
    with pytest.raises(ValueError):
        form.memory_slots = 0
