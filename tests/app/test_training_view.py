"""TrainingView without a browser: built with get_root(document, comm), driven from Python."""

import asyncio
import math
import threading
import time

import panel as pn
import pytest
import torch
from bokeh.document import Document
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
    pn.panel(v).get_root(Document(), Comm())
    yield v
    v.stop()
    assert v.run is None or not v.run.alive


def test_start_streams_points_and_grows_the_snapshot_slider(view):
    assert view.pause_button.disabled and view.stop_button.disabled and not view.start_button.disabled
    run = view.start()
    assert run is not None and run.alive and run in live_runs()
    assert view.start_button.disabled and not view.pause_button.disabled
    pull_until(view, lambda: len(view.source.data["loss"]) >= 3, what="three curve points")
    first_end = view.snapshot_slider.end
    pull_until(view, lambda: view.snapshot_slider.end >= first_end + 2, what="the slider to grow")
    assert view.snapshot_slider.value == view.snapshot_slider.end  # follows the newest
    assert view.state.episode is view.snapshot.episode
    assert view.state.episode.meta["training_step"] == view.snapshot.step
    assert "sequences/s" in view.status.object
    assert view.progress.value > 0
    steps = view.source.data["step"]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


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
        v.snapshot_slider.value = 0
        assert state.episode is v.snapshot_list[0].episode
        assert v.snapshot.step == 0 and not v.follow
        assert "Snapshot 1 of" in v.snapshot_label.object
        v.pull()
        assert v.snapshot_slider.value == 0  # new snapshots do not pull the view away
        v.snapshot_slider.value = v.snapshot_slider.end
        assert v.follow
    finally:
        v.stop()


def test_pause_resume_and_stop_buttons(view):
    view.start()
    pull_until(view, lambda: view.run.step >= 2, what="two steps")
    view.pause_button.clicks += 1
    pull_until(view, lambda: "Paused" in view.status.object, what="the pause")
    assert view.run.status == "paused"
    assert view.pause_button.disabled and not view.resume_button.disabled
    at = view.run.step
    time.sleep(0.3)
    view.pull()
    assert view.run.step == at
    view.resume_button.clicks += 1
    pull_until(view, lambda: view.run.step > at, what="training to go on")
    view.stop_button.clicks += 1  # asks; never waits on the event loop
    assert view.stop_button.disabled and view.start_button.disabled
    pull_until(view, lambda: "Stopped" in view.status.object, what="the stop")
    assert not view.run.alive
    assert not view.start_button.disabled and view.stop_button.disabled


def test_save_checkpoint_and_load_it_back(view, tmp_path):
    assert view.save_checkpoint() is None and view.message  # nothing to save yet
    view.start()
    pull_until(view, lambda: view.run.step >= 2, what="two steps")
    path = view.save_checkpoint()
    assert path is not None and path.parent == tmp_path and path.is_file()
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.task.name == "copy" and loaded.step >= 2
    assert loaded.config.memory_slots == 8
    data = view._checkpoint_file().getvalue()  # what "Download checkpoint" sends
    assert data[:8] and len(data) > 1000
    view.stop()
    # a new run can start from the saved file
    view.start_from.options = {"a new model": "", path.name: str(path)}
    view.start_from.value = str(path)
    assert view.memory_slots.disabled
    run = view.start()
    assert run is not None and run.trainer.step == loaded.step


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
    assert view.alert.visible and "step 4" in view.alert.object
    assert view.snapshot_list  # still there to scrub
    assert not view.start_button.disabled
    assert view.save_checkpoint() is not None


def test_bad_settings_show_a_message_and_start_nothing(view):
    view.memory_slots.value = "1"  # the copy task of length 3 needs 3 slots
    assert view.start() is None
    assert view.alert.visible and "slots" in view.alert.object
    assert view.run is None


def test_the_curve_is_thinned_not_grown(view):
    view.max_points = 10
    view.start()
    pull_until(view, lambda: view.run.step >= 30, what="30 steps")
    steps = view.source.data["step"]
    assert len(steps) <= 10 and view._stride > 1
    # the start of the run stays, and the rest is every stride-th step: even, with no holes
    assert steps[0] == 1 and [b - a for a, b in zip(steps[1:], steps[2:])] == [view._stride] * (len(steps) - 2)
    assert steps[1] == view._stride and steps[-1] <= view.run.step


def test_play_training_walks_through_the_snapshots(view):
    view.start()
    pull_until(view, lambda: len(view.snapshot_list) >= 3, what="three snapshots")
    view.pause()
    view.play.value = True
    assert view.snapshot_slider.value == 0
    seen = []
    for _ in range(len(view.snapshot_list) + 2):
        view.pull()
        seen.append(view.snapshot_slider.value)
    assert seen[:2] == [1, 2]
    assert not view.play.value  # stops at the newest


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
    view.start()
    assert gate.inside.wait(60)
    view.pause_button.clicks += 1  # asked while the thread is inside step 3
    assert view.run.status == "pausing"
    for _ in range(3):  # pulls do not flip the buttons back: the run is still pausing
        view.pull()
        assert view.pause_button.disabled and not view.resume_button.disabled
        assert "Pausing" in view.status.object
    gate.release.set()
    pull_until(view, lambda: "Paused" in view.status.object, what="the pause")
    assert view.pause_button.disabled and not view.resume_button.disabled
    view.resume_button.clicks += 1
    assert not view.pause_button.disabled and view.resume_button.disabled
    view.pull()
    assert not view.pause_button.disabled and view.resume_button.disabled


def test_the_pull_stops_once_the_run_has_ended(view):
    view.steps.value = "6"
    view.start()
    assert view._callback is not None and view._callback.running
    pull_until(view, lambda: "Done" in view.status.object, what="the end of the run")
    view.pull()  # the pull that sees the end shows it and stops pulling
    assert not view._callback.running
    assert view.snapshot_list[-1].step == 6  # the last snapshot was pulled before stopping
    view.play.value = True  # Play training needs the pull again
    assert view._callback.running
    for _ in range(len(view.snapshot_list) + 1):
        view.pull()
    assert not view.play.value and not view._callback.running


def test_save_and_download_run_off_the_event_loop(view, gate, tmp_path):
    view.start()
    assert gate.inside.wait(60)  # a save now waits for the thread to finish step 3

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
        view.save_button.clicks += 1  # schedules the save; the click itself returns at once
        await wait_for(lambda: ticks > 5, "the event loop to serve other work")
        assert view.save_button.label == "Saving…" and view.save_button.disabled and view.download.disabled
        assert "saving" in view.status.object and not view.saved
        gate.release.set()
        await wait_for(lambda: view.saved, "the save")
        assert view.save_button.label == "Save checkpoint" and not view.save_button.disabled
        view.download._clicks += 1  # Download: the same, in a worker thread
        await wait_for(lambda: view.download.data, "the download")
        task.cancel()

    asyncio.run(scenario())
    saved = checkpoint.load(view.saved, device="cpu")
    assert saved.step >= 3 and saved.task.name == "copy"
    assert view.download.data.startswith("data:")


def test_the_stop_button_never_waits_for_the_training_thread(view, gate):
    """Stop runs on the event loop every session shares: it asks the run to stop and returns,
    even while the thread is held inside a step; the pull shows the end later."""
    view.start()
    assert gate.inside.wait(60)  # the thread is inside step 3 and cannot stop until released
    run = view.run
    joined = []
    real_join = run.join
    run.join = lambda *args, **kwargs: joined.append(args) or real_join(*args, **kwargs)
    view.stop_button.clicks += 1
    assert joined == [] and run.alive and run.status == "stopping"
    gate.release.set()
    assert real_join(60) and run.status == "stopped"
    pull_until(view, lambda: "topped" in view.status.object, what="the end shown")


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
    pull_until(view, lambda: "Paused" in view.status.object, what="the pause")
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
    view.steps.value = "4"
    view.start()
    view.pull()
    assert view.guard.active  # alive
    pull_until(view, lambda: "Done" in view.status.object, what="the end")
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
    getattr(view, field).value = typed
    assert view.start() is None and view.run is None
    assert view.message == message
    assert getattr(view, field).value == typed  # what the user typed stays, never rewritten


def test_recall_at_one_item_names_the_number_of_items_not_a_field(view):
    view.task.value = "associative_recall"
    view.size.value = "1"
    assert view.start() is None
    assert view.message == ("Longest input must be at least 2 for associative recall (the number of items); "
                            "you typed 1.")
    view.task.value = "priority_sort"
    view.size.value = "5"
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
    assert view.save_button.label == "Save checkpoint"  # no longer busy


# ---- Compare ------------------------------------------------------------------------------

def _trained_checkpoint(tmp_path, name, **overrides):
    from ntmviz.app.live import new_run

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
    import html
    import re

    rows = {}
    for seed, body in re.findall(r'<tr data-seed="(\d+)"[^>]*>(.*?)</tr>', view.seed_table.object):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body)
        rows[int(seed)] = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]
    return rows


def legend_labels(fig) -> list[str]:
    from bokeh.models import Legend

    (legend,) = [r for r in fig.right if isinstance(r, Legend)]
    return [item.label["value"] if isinstance(item.label, dict) else item.label.value for item in legend.items]


def expected_row(view, k, state):
    run = view.run
    hist = run.histories()[k]
    m = run.models()[k]
    valid = "\u2014"
    if m.validation is not None:
        valid = (f"{m.validation.bit_errors:.2f} (best {m.best_validation.bit_errors:.2f} at step "
                 f"{m.best_validation.step:,})")
    shown = " (shown)" if k == view._member else ""
    return [f"\u25a0 seed {run.seeds[k]}{shown}", f"{hist['loss'][-1]:.3f}", f"{hist['bit_errors'][-1]:.2f}",
            "\u2014", state, valid]


def test_three_seeds_train_as_one_run_with_a_curve_and_a_row_per_seed(view, tmp_path):
    view.seeds.value = "0-2"
    view.steps.value = "12"
    view.validate_every.value = "4"
    assert view.show_seed.visible is False and view.seed_table.visible is False  # one seed: as before
    run = view.start()
    assert run is not None and run.trainer.models == 3 and run.seeds == [0, 1, 2]
    assert run.validate_every == 4
    pull_until(view, lambda: run.ended, what="the end of the run")
    view.pull()
    assert view.show_seed.visible and view.seed_table.visible
    hist = run.histories()
    for k in range(3):  # each seed's line is the Trainer's curve of that model
        data = view.curve(k)
        assert data["loss"] == hist[k]["loss"] and data["bit_errors"] == hist[k]["bit_errors"]
        assert data["sequences"] == hist[k]["sequences"] and len(data["loss"]) == 12
        assert data["loss"] == run.trainer.histories[k].loss
    assert view.source.data["loss_2"] == hist[2]["loss"]  # one source, a column pair per seed
    for fig in (view.loss_figure, view.errors_figure):
        assert legend_labels(fig) == ["seed 0", "seed 1", "seed 2"]
    assert table_rows(view) == {k: expected_row(view, k, "done") for k in range(3)}
    assert "3 of 3 seeds training" in view.status.object and "sequences/s" in view.status.object
    # shown by default: the seed best now on the validation stream (every seed has a score)
    models = run.models()
    best = min(range(3), key=lambda k: (models[k].validation.bit_errors, models[k].validation.loss, k))
    assert view.show_seed.value == "best" and view.shown_seed == best
    assert view.show_seed.options[f"best now (seed {best})"] == "best"
    last = run.snapshots()[1][-1]
    assert view.state.episode is last.episodes[best]
    # switching the seed switches the snapshots on show, at the same training step
    other = (best + 1) % 3
    view.show_seed.value = other
    assert view.shown_seed == other and view.state.episode is last.episodes[other]
    assert view.state.episode.meta["training_seed"] == other
    assert f"seed {other}" in view.snapshot_label.object
    assert [s.episode for s in view.snapshot_list] == [s.episodes[other] for s in run.snapshots()[1]]
    view.snapshot_slider.value = 1
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
    assert view.download.filename == f"copy-ntm-seed{other}-live.safetensors"
    downloaded = tmp_path / "downloaded.safetensors"
    downloaded.write_bytes(view._checkpoint_file().getvalue())
    assert checkpoint.load(downloaded, device="cpu").meta["seed"] == other


def test_the_default_seed_follows_the_smoothed_training_loss_without_validation(view):
    view.seeds.value = "3,5,8"
    view.steps.value = "10"
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


def test_a_diverged_seed_is_marked_while_the_others_go_on(view, poison):
    view.seeds.value = "0-2"
    run = view.start()
    pull_until(view, lambda: run.step >= 12 and not run.models()[1].alive, what="seed 1 to diverge, others on")
    view.pull()
    assert run.status == "running" and not view.alert.visible  # one seed is no error of the run
    reason = "the loss became nan at step 5; its weights are those of step 4"
    assert run.models()[1].diverged == reason
    rows = table_rows(view)
    assert rows[1][4] == f"diverged: {reason}"
    assert rows[0][4] == rows[2][4] == "training"
    assert "2 of 3 seeds training" in view.status.object
    for fig in (view.loss_figure, view.errors_figure):
        assert legend_labels(fig) == ["seed 0", "seed 1 (diverged)", "seed 2"]
    assert "seed 1 (diverged)" in view.show_seed.options
    # its line stops at its last good step, marked there; the others grow
    view.pause()
    pull_until(view, lambda: run.status == "paused", what="the pause")
    view.pull()
    hist = run.histories()
    assert view.curve(1)["loss"] == hist[1]["loss"] and len(hist[1]["loss"]) == 4
    assert view.curve(0)["loss"] == hist[0]["loss"] and len(hist[0]["loss"]) == run.step
    assert view.curve(1)["sequences"] == hist[1]["sequences"]
    later = view.source.data["loss_1"][4:]  # NaN from its divergence on: the line stops there
    assert len(later) == run.step - 4 and all(math.isnan(v) for v in later)
    assert view.marks.data["sequences"] == [hist[1]["sequences"][-1]]
    assert view.marks.data["loss"] == [hist[1]["loss"][-1]]
    assert view.marks.data["bit_errors"] == [hist[1]["bit_errors"][-1]]
    assert rows[1][1] == f"{hist[1]['loss'][-1]:.3f}"  # its last good values stay in the table
    assert view.shown_seed != 1  # the best now is one still training
    # its snapshots can still be shown and saved: its last good weights
    view.show_seed.value = 1
    assert view.state.episode.meta["training_seed"] == 1
    path = view.save_checkpoint()
    assert path is not None and "seed1" in path.name
    assert "diverged" in checkpoint.load(path, device="cpu").meta


def test_every_seed_diverging_ends_the_run_with_a_message(view, poison):
    poison.members = [0, 1]
    view.seeds.value = "0,1"
    run = view.start()
    pull_until(view, lambda: run.ended, what="the divergence")
    view.pull()
    assert run.status == "diverged"
    assert view.alert.visible and "every model diverged by step 5" in view.alert.object
    rows = table_rows(view)
    assert all(r[4].startswith("diverged: the loss became nan at step 5") for r in rows.values())
    assert legend_labels(view.loss_figure) == ["seed 0 (diverged)", "seed 1 (diverged)"]
    assert len(view.marks.data["loss"]) == 2
    assert view.snapshot_list and not view.start_button.disabled  # as for one seed


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
    view.seeds.value = typed
    assert view.start() is None and view.run is None
    assert view.message == message and view.alert.visible
    assert view.seeds.value == typed


def test_one_seed_keeps_the_single_run_view(view):
    view.seeds.value = "7"
    view.steps.value = "4"
    run = view.start()
    pull_until(view, lambda: run.ended, what="the end")
    view.pull()
    assert run.seeds == [7] and not view.show_seed.visible and not view.seed_table.visible
    assert view.status.object.startswith("**Done** · step 4 of 4 · 16 sequences · ")
    assert "seeds training" not in view.status.object
    assert view.source.data["loss"] == run.histories()[0]["loss"]
    assert view.save_checkpoint().name == "copy-ntm-seed7-step4.safetensors"


def test_while_training_the_tables_numbers_change_at_most_every_table_period(view):
    """Every redraw of the table lays the page out again: numbers alone wait table_period."""
    view.table_period = 3600
    view.seeds.value = "0-2"
    run = view.start()
    view.show_seed.value = 0  # a fixed seed: the choice of the best cannot redraw it
    pull_until(view, lambda: run.step >= 3 and "training" in view.seed_table.object, what="a few steps")
    shown = view.seed_table.object
    at = run.step
    pull_until(view, lambda: run.step >= at + 5, what="more steps")
    view.pull()
    assert view._last[0][0] > at and view.seed_table.object == shown  # newer numbers, not yet shown
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

    from ntmviz.app import run_settings
    from ntmviz.config import setting_of

    v = TrainingView(folder=str(tmp_path), save_folder=str(tmp_path), show_views=False)
    assert v.run_config() == RunConfig.quick()
    assert v.memory_slots.value == str(RunConfig.quick().memory_slots)
    v.model.value = "lstm"  # one size field: the LSTM's hidden size
    assert v.run_config() == dataclasses.replace(RunConfig.quick(), model="lstm")
    v.model.value = "ntm"
    cap = setting_of(RunConfig, "memory_slots").softbounds[1]
    v.memory_slots.value = str(cap + 1)
    assert v.start() is None and f"at most {cap:,}" in v.message
    wider = {"memory_slots": (1, 10**6)}  # the setting's soft bounds changed: the form follows
    monkeypatch.setattr(training_view_module, "setting_of", lambda cls, name: setting_of(cls, name)._replace(
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
