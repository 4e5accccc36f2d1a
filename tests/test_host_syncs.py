"""The training step reads nothing back from the device: Trainer.run reads every step's results
back together through train._to_host, once every `sync_every` steps (issue 29), and the host's
bookkeeping, callbacks, checkpoints and divergence come out exactly as when it reads back every
step. On this CPU a read-back costs nothing, so the tests count them: `_to_host` is counted, and
every other way of reading a tensor's value (tolist, item, bool, float, int, numpy, and the
operators that read on a GPU: _local_scalar_dense, nonzero, masked_select, boolean indexing)
raises inside the step."""

import contextlib
import math
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ntmviz
from ntmviz import checkpoint, train
from ntmviz.models import build_model
from ntmviz.tasks import get_task
from ntmviz.train import MAX_SKIPPED, Trainer, TrainingDiverged
from ntmviz.train_callbacks import Checkpoints, Validation

aten = torch.ops.aten
READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.nonzero.default,
         aten.masked_select.default, aten.equal.default, aten._unique2.default, aten.unique_consecutive.default}
PY_READS = ("tolist", "item", "__bool__", "__float__", "__int__", "__index__", "numpy")


@pytest.fixture
def task():
    return get_task("copy", bits=3, max_length=3)


def ensemble(task, seeds, **options):
    config = ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=6, memory_width=5, controller_size=12)
    return Trainer(build_model(config, seeds=seeds), task, seeds=seeds, batch_size=4, **options)


class HostReads(TorchDispatchMode):
    """While entered: counts train._to_host calls (with the step each came at) and the loads of
    the host's view onto the device, and raises on any other read of a tensor's value, and on
    torch.tensor (host values to the device, a synchronous copy on a GPU), except where they are
    the host's own business: inside those two, in the task's sampling (its CPU generator), and
    torch.optim's step counts (kept on the CPU on every device)."""

    def __init__(self, trainer, monkeypatch):
        super().__init__()
        trainer.host_reads = False  # the step as on a GPU: it may not read a mask to skip the masking ops
        self.trainer, self.at, self.loads = trainer, [], 0
        self.active, self._allowed = False, 0
        real_to_host, real_load, real_sample = train._to_host, Trainer._load_device_state, type(trainer.task).sample
        real_tensor = torch.tensor

        def to_host(x):
            self.at.append(trainer.step)
            with self.allowed():
                return real_to_host(x)

        def load(trainer):
            self.loads += 1
            with self.allowed():
                return real_load(trainer)

        def sample(task, *args, **kwargs):
            with self.allowed():
                return real_sample(task, *args, **kwargs)

        def tensor(*args, **kwargs):
            if not sys._getframe(1).f_globals["__name__"].startswith("torch.optim."):
                self.check(None, "torch.tensor")
            return real_tensor(*args, **kwargs)

        monkeypatch.setattr(train, "_to_host", to_host)
        monkeypatch.setattr(Trainer, "_load_device_state", load)
        monkeypatch.setattr(type(trainer.task), "sample", sample)
        monkeypatch.setattr(torch, "tensor", tensor)
        for name in PY_READS:
            real = getattr(torch.Tensor, name)

            def guarded(x, *args, _real=real, _name=name, **kwargs):
                self.check(x, _name)
                return _real(x, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, guarded)

    def __enter__(self):
        self.active = True
        return super().__enter__()

    def __exit__(self, *exc):
        self.active = False
        return super().__exit__(*exc)

    @contextlib.contextmanager
    def allowed(self):
        self._allowed += 1
        try:
            yield
        finally:
            self._allowed -= 1

    def check(self, x, what):
        counts = [state.get("step") for state in self.trainer.optimizer.state.values()]
        if self.active and not self._allowed and not any(x is c for c in counts):
            raise AssertionError(f"{what} inside the training step")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in READS:
            self.check(args[0], str(func))
        if func is aten.index.Tensor and any(i is not None and i.dtype == torch.bool for i in args[1]):
            self.check(args[0], "boolean indexing")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("sync_every, steps", [(1, 5), (3, 7), (8, 8), (8, 20), (16, 3)])
def test_steps_read_back_once_every_sync_every_steps_and_never_otherwise(task, monkeypatch, sync_every, steps):
    trainer = ensemble(task, [0, 1, 2], sync_every=sync_every)
    with HostReads(trainer, monkeypatch) as reads:
        assert trainer.run(steps) == "done"
    assert len(reads.at) == math.ceil(steps / sync_every)
    assert reads.at == sorted({*range(sync_every, steps + 1, sync_every), steps})
    assert reads.loads == 1  # the host's view went to the device once, before the first step
    assert all(len(h.loss) > 0 for h in trainer.histories)


def test_the_guard_sees_a_read_inside_the_step(task, monkeypatch):
    trainer = ensemble(task, [0, 1], sync_every=4)
    real = trainer._per_model_grad_norms
    monkeypatch.setattr(trainer, "_per_model_grad_norms", lambda: real() + 0 * float(real().sum()))
    with HostReads(trainer, monkeypatch), pytest.raises(AssertionError, match="inside the training step"):
        trainer.run(2)


class Record:
    """Every on_step as it is told: the metrics, the step the model is at, the host's view."""

    def __init__(self):
        self.events = []

    def on_step(self, trainer, m):
        self.events.append((m, trainer.step, list(trainer.alive), dict(trainer.diverged),
                            [list(s) for s in trainer.skipped], list(trainer.stages)))

    def on_end(self, trainer, reason):
        self.events.append(("end", reason))


def told(record):
    """The events without the seconds and rate (host timing) and the model's step."""
    return [e if e[0] == "end" else (e[0][:4] + e[0][6:], *e[2:]) for e in record.events]


def same(a, b):
    """Bitwise equal tensors, NaNs in the same places; other values equal, NaN equal to NaN."""
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.isnan(), b.isnan()) and \
            torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def nan_loss_at(trainer, member, step):
    """Model `member`'s outputs are NaN at training step `step` only (its weights stay finite)."""
    def hook(module, inputs, logits):
        if trainer.step == step - 1:  # counts the steps done
            logits = logits.clone()
            logits.view(trainer.models, -1)[member] = math.nan
        return logits

    trainer.model.register_forward_hook(hook)


def optimizer_state(trainer):
    return [dict(s) for s in trainer.optimizer.state.values()]


def test_results_are_those_of_reading_back_every_step(task, tmp_path):
    """A model diverging on the way, validation, checkpoints: every recorded number, the host's
    view each on_step was told, the weights, the optimiser's state and the checkpoints' files."""
    runs = {}
    for sync_every in (1, 3):
        out = tmp_path / str(sync_every)
        out.mkdir()
        record, validation = Record(), Validation(4, 6)
        saver = Checkpoints([out / f"m{k}.safetensors" for k in range(3)], 9)
        trainer = ensemble(task, [0, 1, 2], log_every=1, sync_every=sync_every, callbacks=[validation, saver, record])
        nan_loss_at(trainer, member=1, step=3)
        trainer.run(2)
        trainer.run(13)
        runs[sync_every] = trainer, record, validation, out
    (one, record1, validation1, out1), (three, record3, validation3, out3) = runs[1], runs[3]
    assert one.diverged == three.diverged == {1: "the loss became nan at step 3; its weights are those of step 2"}
    assert same(told(record3), told(record1))
    steps1 = [e for e in record1.events if e[0] != "end"]
    assert [e[1] for e in steps1] == [e[0].step for e in steps1] == list(range(1, 14))  # each told at once
    # read back every 3 steps, at the end of each run, and at the steps validation (4, 8, 12)
    # and checkpoints (9) ask for
    assert [e[1] for e in record3.events if e[0] != "end"] == [2, 2, 4, 4, 7, 7, 7, 8, 9, 12, 12, 12, 13]
    assert [h.to_dict() for h in three.histories] == [h.to_dict() for h in one.histories]
    assert three.validation == one.validation and validation3.best == validation1.best
    assert [v["step"] for v in three.validation] == [[4, 8, 12], [], [4, 8, 12]]
    assert same(dict(three.model.state_dict()), dict(one.model.state_dict()))
    assert same(optimizer_state(three), optimizer_state(one))
    for k in range(3):  # written at step 9 in both, with the model of step 9 (model 1's of step 2)
        a, b = (checkpoint.load(out / f"m{k}.safetensors", device="cpu") for out in (out1, out3))
        assert a.step == b.step == 9 and a.meta.get("diverged") == b.meta.get("diverged")
        assert same(dict(b.model.state_dict()), dict(a.model.state_dict()))
        assert same(b.optimizer_state, a.optimizer_state) and b.meta["history"] == a.meta["history"]


def test_a_diverging_seed_is_recorded_at_its_true_step_when_read_back_later(task, monkeypatch):
    record = Record()
    trainer = ensemble(task, [0, 1, 2], log_every=1, sync_every=8, callbacks=[record])
    trainer.run(2)
    with torch.no_grad():
        trainer.model.output.bias[1].fill_(float("nan"))
    poisoned = {n: v.clone() for n, v in trainer.model.member_state_dict(1).items()}
    with HostReads(trainer, monkeypatch) as reads:
        assert trainer.run(13) == "done"
    assert reads.at == [10, 13] and reads.loads == 0  # loaded in the first run; a death is the device's own
    assert trainer.alive == [True, False, True]
    assert trainer.diverged == {1: "the loss became nan at step 3; its weights are those of step 2"}
    steps = [e for e in record.events if e[0] != "end"]
    m, at, alive, diverged, *_ = steps[2]  # step 3, told when the model was at step 10
    assert (m.step, at, alive) == (3, 10, [True, False, True]) and 1 in diverged
    assert math.isnan(m.model_loss[1]) and m.loss == (m.model_loss[0] + m.model_loss[2]) / 2
    assert steps[1][2] == [True, True, True] and steps[1][3] == {}  # step 2 was before it
    assert len(trainer.histories[1].loss) == 2 and len(trainer.histories[0].loss) == 13
    for name, value in trainer.model.member_state_dict(1).items():  # frozen where it diverged
        assert same(value, poisoned[name]), name


def test_overflowing_gradients_are_counted_in_a_row_across_read_backs(task):
    """Model 0's gradient overflows on every batch from step 2: skipped, then diverged on the
    MAX_SKIPPED-th in a row, though that run spans read-backs every 3 steps."""
    def overflow(grad):
        grad = grad.clone()
        grad[0] = math.inf
        return grad

    results = []
    for sync_every in (1, 3):
        trainer = ensemble(task, [0, 1], sync_every=sync_every)
        trainer.run(1)
        hook = trainer.model.output.weight.register_hook(overflow)
        trainer.run(4)
        hook.remove()
        trainer.run(5)  # a batch that does not overflow: the count starts again
        hook = trainer.model.output.weight.register_hook(overflow)
        trainer.run(5 + MAX_SKIPPED - 1)
        assert trainer.alive == [True, True] and len(trainer.skipped[0]) == 3 + MAX_SKIPPED - 1
        trainer.run(5 + MAX_SKIPPED)
        results.append((trainer.alive, trainer.diverged, trainer.skipped, dict(trainer.model.state_dict())))
    assert results[1][:3] == results[0][:3]
    assert results[1][1][0].startswith(
        f"the gradients became inf on {MAX_SKIPPED} batches in a row at step {5 + MAX_SKIPPED}")
    assert results[1][2] == [[2, 3, 4] + list(range(6, 6 + MAX_SKIPPED)), []]
    assert same(results[1][3], results[0][3])


def test_a_resume_inside_a_run_of_overflowing_batches_goes_on_counting(task, tmp_path):
    def overflow(grad):
        grad = grad.clone()
        grad[0] = math.inf
        return grad

    first = ensemble(task, [0], sync_every=4)
    first.run(1)
    first.model.output.weight.register_hook(overflow)
    first.run(1 + MAX_SKIPPED - 2)
    resumed = Trainer.resume_from(checkpoint.load(first.save(tmp_path / "m.safetensors"), device="cpu"), sync_every=4)
    resumed.model.output.weight.register_hook(overflow)
    resumed.run(1 + MAX_SKIPPED - 1)
    assert resumed.alive == [True]
    with pytest.raises(TrainingDiverged, match=f"on {MAX_SKIPPED} batches in a row at step {1 + MAX_SKIPPED}"):
        resumed.run(1 + MAX_SKIPPED + 3)
    assert resumed.step == MAX_SKIPPED and resumed.skipped == [list(range(2, 2 + MAX_SKIPPED))]


@pytest.mark.parametrize("before", [0, 2])
def test_every_model_diverging_stops_where_it_did_with_the_same_state(task, before):
    """Every loss NaN from step before + 1 on, read back 8 steps at a time: the run stops at that
    step, as reading back every step does, with the same weights and optimiser state (the steps
    queued after it are undone: their update count, and a first step's state)."""
    ends = []
    for sync_every in (1, 8):
        record = Record()
        trainer = ensemble(task, [0, 1], sync_every=sync_every, callbacks=[record])
        trainer.run(before)
        with torch.no_grad():
            trainer.model.output.bias.fill_(float("nan"))
        weights = {n: v.clone() for n, v in trainer.model.state_dict().items()}
        state = [{k: v.clone() for k, v in s.items()} for s in optimizer_state(trainer)]
        with pytest.raises(TrainingDiverged, match=f"every model diverged by step {before + 1}"):
            trainer.run(12)
        assert trainer.step == before and record.events[-1] == ("end", "diverged")
        # the step that found no model left never updated anything
        assert same(dict(trainer.model.state_dict()), weights) and same(optimizer_state(trainer), state)
        ends.append((dict(trainer.model.state_dict()), optimizer_state(trainer), told(record), trainer.diverged))
    assert same(ends[1], ends[0])
    assert len(ends[1][1]) == (8 if before else 0)  # no state before any update, as before


def test_a_callback_hears_of_each_step_in_order_late_unless_it_asks(task):
    class Asks(Record):
        def needs_model_at(self, step):
            return step == 6

    quiet, asks = Record(), Asks()
    trainer = ensemble(task, [0, 1], sync_every=4, callbacks=[quiet, asks])
    trainer.run(10)
    for record in (quiet, asks):
        assert [(e[0].step, e[1]) for e in record.events[:-1]] == [
            (1, 4), (2, 4), (3, 4), (4, 4), (5, 6), (6, 6), (7, 10), (8, 10), (9, 10), (10, 10)]
    seconds = [e[0].seconds for e in quiet.events[:-1]]  # the host's time, shared out over the steps read back
    assert 0 < seconds[0] and all(a < b for a, b in zip(seconds, seconds[1:])) and seconds[-1] == trainer.seconds
    assert all(0 < e[0].rate < math.inf for e in quiet.events[:-1])


def test_stop_and_pause_read_back_before_the_run_ends_or_holds(task):
    events = []

    class StopAt3:
        def on_step(self, trainer, m):
            events.append((m.step, trainer.step))
            if m.step == 3:
                trainer.stop()

    trainer = ensemble(task, [0, 1], sync_every=2, callbacks=[StopAt3()])
    assert trainer.run(10) == "stopped"
    assert events == [(1, 2), (2, 2), (3, 4), (4, 4)] and trainer.step == 4  # stopped after the step it was in

    class Hold:
        def on_step(self, trainer, m):
            events.append(("step", m.step, trainer.step))

        def on_pause(self, trainer):
            events.append(("pause", trainer.step, len(trainer.histories[0].loss)))
            trainer.resume()

    events.clear()
    trainer = ensemble(task, [0, 1], sync_every=8, log_every=1, callbacks=[Hold()])
    # asked for during step 2, as from another thread: the hold comes after it, on the truth
    trainer.model.register_forward_hook(lambda *args: trainer.pause() if trainer.step == 1 else None)
    trainer.run(3)
    assert events == [("step", 1, 2), ("step", 2, 2), ("pause", 2, 2), ("step", 3, 3)]


def test_saving_from_a_step_told_late_is_refused(task, tmp_path):
    class SaveEveryStep:
        def on_step(self, trainer, m):
            trainer.save(tmp_path / "x.safetensors")

    trainer = ensemble(task, [0], sync_every=3, callbacks=[SaveEveryStep()])
    with pytest.raises(ntmviz.NtmvizError, match="2 step.* past the step on_step is told of"):
        trainer.run(3)


def test_sync_every_defaults_to_every_step_on_the_cpu_and_is_checked(task):
    assert train.default_sync_every("cpu") == 1 and train.default_sync_every("cuda") == 16
    assert ensemble(task, [0]).sync_every == 1
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ntmviz.ConfigError, match="sync_every must be an integer >= 1"):
            ensemble(task, [0], sync_every=bad)


def test_validation_switched_on_while_running_scores_no_step_it_hears_of_late(task):
    """The live app changes `every` from the server's thread: steps 1 and 2, read back with step
    3 (which it asked for once switched on), are not scored with step 3's model under their name."""
    validation = Validation(0, 6)
    trainer = ensemble(task, [0, 1], sync_every=4, callbacks=[validation])
    trainer.model.register_forward_hook(lambda *args: setattr(validation, "every", 1) if trainer.step == 2 else None)
    trainer.run(5)
    assert [v["step"] for v in trainer.validation] == [[3, 4, 5], [3, 4, 5]]


def overflow_member_0(grad):
    grad = grad.clone()
    grad[0] = math.inf
    return grad


@pytest.mark.parametrize("scenario", ["nan loss", "overflows", "weights", "update fails", "all stop"])
def test_the_cpus_shortcut_past_masks_that_change_nothing_gives_the_gpus_results(task, scenario):
    """On the CPU the step reads a mask back and skips the masking ops when it is all False
    (Trainer._may_change); as on a GPU it applies them all. Both, bit for bit, through a model's
    NaN loss, a run of overflowing gradients to divergence, weights that turn NaN in the update,
    an update that fails, and every model stopping before the update."""
    ends = []
    for host_reads in (True, False):
        record = Record()
        trainer = ensemble(task, [0, 1, 2], log_every=1, sync_every=3, callbacks=[record])
        trainer.host_reads = host_reads
        trainer.run(2)
        if scenario == "nan loss":
            nan_loss_at(trainer, member=1, step=4)
        elif scenario == "overflows":
            trainer.model.output.weight.register_hook(overflow_member_0)
        elif scenario == "weights":  # model 2's weights turn NaN in the update of step 4
            def poison(optimizer, args, kwargs):
                if trainer.step == 3:
                    trainer.model.output.weight.data[2] = math.nan
            trainer.optimizer.register_step_post_hook(poison)
        elif scenario == "update fails":  # an update past float32's range: every model stops
            trainer.optimizer.param_groups[0]["lr"] = 3e38
        else:
            with torch.no_grad():
                trainer.model.output.bias.fill_(float("nan"))
        try:
            trainer.run(4 + MAX_SKIPPED)
            end = "done"
        except TrainingDiverged as exc:
            end = str(exc)
        ends.append((end, trainer.step, trainer.alive, trainer.diverged, trainer.skipped, told(record),
                     dict(trainer.model.state_dict()), optimizer_state(trainer)))
    with_reads, without = ends
    assert with_reads[:5] == without[:5]
    assert same(with_reads[5:], without[5:])
    expected = {"nan loss": [True, False, True], "overflows": [False, True, True], "weights": [True, True, False],
                "update fails": [False, False, False], "all stop": [False, False, False]}[scenario]
    assert with_reads[2] == expected, with_reads[3]
