"""Compare without a browser: sources keyed by training step, a default pair that can be compared,
lists that follow the run, and both sides on one step."""

import threading

import panel as pn
import pytest
import torch
from bokeh.document import Document
from panel.models.esm import ReactiveESM
from pyviz_comms import Comm

import ntmviz
import ntmviz.app.training_view as training_view_module
from ntmviz.app.compare import Compare, checkpoint_signature
from ntmviz.app.live import RunConfig, new_run
from ntmviz.app.training_view import TrainingView
from ntmviz.checkpoint import save
from ntmviz.tasks import get_task


def small(**overrides) -> RunConfig:
    options = dict(task="copy", task_options={"max_length": 3}, memory_slots=8, memory_width=5,
                   controller_size=16, lr=1e-3, optimizer="adam", batch_size=4, snapshot_every=1)
    options.update(overrides)
    return RunConfig(**options)


def pull_until(view, predicate, what, tries=2000):
    for _ in range(tries):
        view.pull()
        if predicate():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def write_checkpoint(folder, name, task, model="ntm"):
    torch.manual_seed(0)
    if model == "ntm":
        m = ntmviz.NTM(ntmviz.NTMConfig(input_size=task.input_size, output_size=task.output_size,
                                        memory_slots=16, memory_width=4, controller_size=8))
    else:
        m = ntmviz.LSTMBaseline(ntmviz.LSTMConfig(input_size=task.input_size, output_size=task.output_size,
                                                  hidden_size=8, layers=1))
    return save(folder / name, m, task=task)


@pytest.fixture
def three_checkpoints(tmp_path):
    """copy-ntm (listed first), copy-lstm and repeat_copy-ntm (another task, 10 inputs to copy's 9)."""
    copy, repeat = get_task("copy", max_length=3), get_task("repeat_copy", max_length=2, max_repeats=2)
    write_checkpoint(tmp_path, "copy-ntm.safetensors", copy)
    write_checkpoint(tmp_path, "copy-lstm.safetensors", copy, model="lstm")
    write_checkpoint(tmp_path, "repeat_copy-ntm.safetensors", repeat)
    return tmp_path


class Gate:
    def __init__(self, at: int):
        self.at, self.inside, self.release = at, threading.Event(), threading.Event()

    def on_step(self, trainer, metrics):
        if trainer.step == self.at:
            self.inside.set()
            assert self.release.wait(60)


@pytest.fixture
def training(tmp_path, monkeypatch):
    """A TrainingView whose run is held inside step 2 (snapshots of steps 0 and 1 taken) until
    `view.gate.release` is set; at most 4 snapshots are kept."""
    gate = Gate(at=2)

    def gated(*args, **kwargs):
        run = new_run(*args, **kwargs)
        run.trainer.callbacks.insert(0, gate)
        return run

    monkeypatch.setattr(training_view_module, "new_run", gated)
    view = TrainingView(small(max_snapshots=4), folder=str(tmp_path / "none"), save_folder=str(tmp_path / "runs"),
                        show_views=False)
    view.gate = gate
    pn.panel(view).get_root(Document(), Comm())
    yield view
    gate.release.set()
    view.stop()


def test_the_default_pair_can_be_compared(three_checkpoints):
    assert checkpoint_signature(three_checkpoints / "copy-ntm.safetensors") == ("copy", 9)
    assert checkpoint_signature(three_checkpoints / "repeat_copy-ntm.safetensors") == ("repeat_copy", 10)
    cmp = Compare(folder=str(three_checkpoints))
    pn.panel(cmp).get_root(Document(), Comm())
    assert cmp.left_pick.value == str(three_checkpoints / "copy-ntm.safetensors")
    assert cmp.right_pick.value == str(three_checkpoints / "copy-lstm.safetensors")  # not repeat copy
    assert cmp.compare(), cmp.message


def run_until_thinned(training):
    """Let the held run go on until its early snapshots are thinned away, then pause it."""
    training.gate.release.set()
    pull_until(training, lambda: training.run.step >= 12, "more steps")
    training.pause()
    pull_until(training, lambda: training.run.status == "paused", "the pause")
    assert 1 not in [s.step for s in training.snapshot_list]


def test_a_snapshot_option_shows_the_step_it_names_after_thinning(training, three_checkpoints):
    cmp = Compare(training=training, folder=str(three_checkpoints))
    pn.panel(cmp).get_root(Document(), Comm())
    training.start()
    assert training.gate.inside.wait(60)
    pull_until(training, lambda: len(training.snapshot_list) == 2, "the first two snapshots")
    cmp.refresh_options()
    step_1 = cmp.left_pick.options["training snapshot at step 1"]  # what the list offered then
    run_until_thinned(training)
    # the option chosen then never shows another step: it is refused by name
    with pytest.raises(ntmviz.ConfigError, match="step 1 is no longer kept"):
        cmp._episode(step_1, None)
    newest = training.snapshot_list[-1].step
    cmp.left_pick.value = cmp.left_pick.options[f"training snapshot at step {newest:,}"]
    cmp.right_pick.value = cmp.left_pick.options["training snapshot at step 0"]
    assert cmp.compare(), cmp.message
    assert cmp.left.episode.meta["training_step"] == newest
    assert cmp.right.episode.meta["training_step"] == 0


def test_snapshots_are_listed_without_refresh(training, three_checkpoints):
    cmp = Compare(training=training, folder=str(three_checkpoints))
    pn.panel(cmp).get_root(Document(), Comm())
    training.start()
    assert training.gate.inside.wait(60)
    pull_until(training, lambda: len(training.snapshot_list) == 2, "the first two snapshots")
    snaps = {k: v for k, v in cmp.left_pick.options.items() if k.startswith("training snapshot")}
    assert snaps == {"training snapshot at step 0": "snapshot:0", "training snapshot at step 1": "snapshot:1"}
    # two snapshots of the run are now the default pair
    assert (cmp.left_pick.value, cmp.right_pick.value) == ("snapshot:0", "snapshot:1")
    # the user picks step 1 against step 0; the run goes on and thins its snapshots
    cmp.left_pick.value, cmp.right_pick.value = "snapshot:1", "snapshot:0"
    run_until_thinned(training)
    steps = [s.step for s in training.snapshot_list]
    offered = sorted(int(v.split(":")[1]) for v in cmp.left_pick.options.values() if v.startswith("snapshot:"))
    assert offered == steps  # the list follows the run
    assert cmp.left_pick.value == "snapshot:0"  # the pick moved to the nearest kept step before it


def test_checkpoints_saved_by_the_train_tab_are_listed_at_once(training, three_checkpoints):
    runs = training.save_folder
    cmp = Compare(training=training, folder=str(three_checkpoints), extra_folders=[runs])
    pn.panel(cmp).get_root(Document(), Comm())
    training.start()
    training.gate.release.set()
    training.stop()
    path = training.save_checkpoint()
    assert cmp.left_pick.options[f"runs/{path.name}"] == str(path)


def test_both_sides_move_as_one_step(three_checkpoints):
    cmp = Compare(folder=str(three_checkpoints))
    root = pn.panel(cmp).get_root(Document(), Comm())
    cmp.left_pick.value = str(three_checkpoints / "copy-ntm.safetensors")
    cmp.right_pick.value = str(three_checkpoints / "copy-lstm.safetensors")
    assert cmp.compare(), cmp.message
    # one playback group in the browser: a click or key on either side moves both at once
    assert cmp.left.group == cmp.right.group
    canvases = [m for m in root.select({"type": ReactiveESM})]
    assert {m.data.group for m in canvases} == {cmp.left.group}
    # the two sequence views sit in one row, side by side, so their steps line up
    # each view of the two sides sits in one row, half the width each, so their steps line up
    panel = cmp.__panel__()
    for name in ("sequence", "memory", "focus", "heads"):
        left, right = (getattr(side, name).canvas for side in (cmp._left_side, cmp._right_side))
        rows = [row for row in panel.select(pn.Row) if any(left in col.select() for col in row.objects)]
        assert len(rows) == 1, name
        halves = rows[0].objects
        assert len(halves) == 2 and left in halves[0].select() and right in halves[1].select(), name
        assert [h.styles["flex"] for h in halves] == ["1 1 0", "1 1 0"], name


def test_a_step_the_browser_reports_on_one_side_is_not_sent_back_to_either(three_checkpoints):
    """Both sides share t in the browser; sending a reported step back would arrive late and pull
    the page to a step the user has since left (seen: a key press undone under load)."""
    cmp = Compare(folder=str(three_checkpoints))
    root = pn.panel(cmp).get_root(Document(), Comm())
    cmp.left_pick.value = str(three_checkpoints / "copy-ntm.safetensors")
    cmp.right_pick.value = str(three_checkpoints / "copy-lstm.safetensors")
    assert cmp.compare(), cmp.message
    reporter = cmp._left_side.sequence.canvas
    origin = reporter._models[root.ref["id"]][0]  # this canvas's model: the browser set its t itself
    others = [m for m in root.select({"type": ReactiveESM}) if m is not origin]
    assert len(others) >= 2
    opened = cmp.t  # both sides open on the left episode's opening step
    assert opened == cmp.left.episode.opening_step() and all(m.data.t == opened for m in others)
    reporter._process_events({"t": 3})  # as if the left side's browser moved
    assert cmp.t == 3 and cmp.left.t == 3 and cmp.right.t == 3 and cmp.player.frame()["t"] == 3
    assert all(m.data.t == opened for m in others), [m.data.t for m in others]  # nothing echoed
    models = [origin, *others]
    cmp.t = 5  # a move made in Python reaches every view of both sides
    assert all(m.data.t == 5 for m in models), [m.data.t for m in models]


def test_a_failure_is_logged_with_its_traceback(three_checkpoints, monkeypatch, caplog):
    cmp = Compare(folder=str(three_checkpoints))

    def broken(key, other):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cmp, "_episode", broken)
    with caplog.at_level("ERROR", logger="ntmviz.app.compare"):
        assert not cmp.compare()
    assert cmp.message == "could not compare: RuntimeError: a bug"
    [record] = [r for r in caplog.records if r.name == "ntmviz.app.compare"]
    assert record.exc_info and str(record.exc_info[1]) == "a bug"


def test_both_sides_draw_on_one_colour_scale_unless_untoggled(three_checkpoints):
    """The same colour is the same value on either side: each side's payload carries the larger
    of the two memories' scales; unticking gives each its own again."""
    cmp = Compare(folder=str(three_checkpoints))
    pn.panel(cmp).get_root(Document(), Comm())
    cmp.left_pick.value = str(three_checkpoints / "copy-ntm.safetensors")
    cmp.right_pick.value = str(three_checkpoints / "copy-ntm.safetensors")
    cmp.seed.value = "0"
    assert cmp.compare(), cmp.message
    # make the two sides differ: the right one's memory scaled up 3x
    right = cmp.right.episode
    bigger = ntmviz.Episode.from_arrays(memory=right.memory * 3, read_weights=right.read.weights,
                                        write_weights=right.write.weights, inputs=right.inputs, title="bigger")
    cmp.show(cmp.left.episode, bigger, ("small", "big"))
    own = [abs(ep.memory).max() for ep in (cmp.left.episode, cmp.right.episode)]
    assert own[1] == pytest.approx(3 * own[0], rel=1e-5)
    left_scales, right_scales = cmp.scales()
    assert left_scales["memory"] == right_scales["memory"] == pytest.approx(own[1], rel=1e-6)
    sent = cmp._left_side.memory.canvas.payload["scales"]["memory"]
    assert sent == pytest.approx(own[1], rel=1e-6)
    cmp.shared_scale = False
    left_scales, right_scales = cmp.scales()
    assert left_scales["memory"] == pytest.approx(own[0], rel=1e-6)
    assert right_scales["memory"] == pytest.approx(own[1], rel=1e-6)
    assert cmp._left_side.memory.canvas.payload["scales"]["memory"] == pytest.approx(own[0], rel=1e-6)


def test_a_pair_shown_from_elsewhere_is_what_the_pickers_say(three_checkpoints):
    """The Sweep tab shows a pair with show(): the pickers list it as on show and pick it, and
    Compare with those picks shows it again."""
    from ntmviz.app.compare import checkpoint_pair

    cmp = Compare(folder=str(three_checkpoints))
    left, right = checkpoint_pair(three_checkpoints / "copy-ntm.safetensors", three_checkpoints / "copy-lstm.safetensors",
                                  length=3, seed=1)
    cmp.show(left, right, ("run 3", "run 7"))
    labels = {v: k for k, v in cmp.left_pick.options.items()}
    assert labels[cmp.left_pick.value] == "run 3 (on show)" and labels[cmp.right_pick.value] == "run 7 (on show)"
    assert cmp.left.episode.meta["source"] == "run 3" and cmp.right.episode.meta["source"] == "run 7"
    assert cmp.compare(), cmp.message
    assert (cmp.left.episode.inputs == left.inputs).all() and cmp.right.episode.memory is None
    assert cmp._left_side.title.object.startswith("<strong>run 3</strong>") and "bit errors" in cmp._left_side.title.object


def test_snapshots_are_listed_by_training_step_and_thinned(three_checkpoints):
    """A long run's snapshots: at most MAX_SNAPSHOTS listed, the first and the newest always, each
    by its training step."""
    from ntmviz.app.compare import MAX_SNAPSHOTS

    class Run:
        snapshot_list = [type("S", (), {"step": s})() for s in range(0, 59 * 150, 150)]

    cmp = Compare(folder=str(three_checkpoints), training=None)
    cmp.training = Run()
    snaps = [k for k in cmp.options() if k.startswith("training snapshot")]
    assert len(snaps) == MAX_SNAPSHOTS
    assert snaps[0] == "training snapshot at step 0" and snaps[-1] == f"training snapshot at step {58 * 150:,}"
    steps = [int(k.rsplit(" ", 1)[1].replace(",", "")) for k in snaps]
    assert steps == sorted(steps) and all(s % 150 == 0 for s in steps)


def test_hiding_a_head_hides_it_on_both_sides(three_checkpoints):
    cmp = Compare(folder=str(three_checkpoints))
    cmp.left_pick.value = cmp.right_pick.value = str(three_checkpoints / "copy-ntm.safetensors")
    assert cmp.compare(), cmp.message
    cmp.left.hidden = [1]  # as the one Player's head key reports it
    assert cmp.right.hidden == [1]
    assert list(cmp._right_side.focus.frame()["heads"]) == ["read 1"]


def test_both_sides_get_the_tasks_own_labels_and_answers():
    """A pointer network beside its fixed-vocabulary baseline (shipped): the right side runs on the
    left's own batch with the task, so both name the slots by their numbers and carry the answer."""
    from ntmviz.shipped import shipped_folder

    folder = shipped_folder()
    cmp = Compare(folder=str(folder))
    cmp.left_pick.value = str(folder / "sort_numbers-pointer.safetensors")
    cmp.right_pick.value = str(folder / "sort_numbers-seq2seq.safetensors")
    cmp.seed.value = "4"
    assert cmp.compare(), cmp.message
    left, right = cmp.left.episode, cmp.right.episode
    assert (left.inputs == right.inputs).all() and left.meta["seed"] == right.meta["seed"] == 4
    assert right.slot_labels == left.slot_labels and left.slot_labels[0] == "end"
    assert [float(v) for v in left.slot_labels[1:]] == pytest.approx(left.inputs[:-1, 0], abs=5e-4)
    assert right.meta["answer"] == left.meta["answer"] and "model_answer" in right.meta
    assert right.family.title.startswith("Encoder-decoder with attention") and left.family.title == "Pointer network"
