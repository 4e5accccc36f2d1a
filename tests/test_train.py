"""The training loop: callbacks, exact resume, divergence, control from another thread, curriculum."""

import math
import threading
import time

import pytest
import torch

import ntmviz
from ntmviz import checkpoint
from ntmviz.errors import ConfigError
from ntmviz.tasks import get_task
from ntmviz.train import MAX_SKIPPED, History, Trainer, TrainingDiverged, curriculum_task


@pytest.fixture
def task():
    return get_task("copy", bits=3, max_length=3)


def tiny_ntm(task, seed=0):
    torch.manual_seed(seed)
    return ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=6, memory_width=5,
                                       controller_size=12))


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


class Recorder:
    def __init__(self):
        self.events = []

    def on_start(self, trainer):
        self.events.append(("start", trainer.step))

    def on_step(self, trainer, m):
        self.events.append(("step", m.step, m.sequences, m.loss, m.bit_errors))

    def on_end(self, trainer, reason):
        self.events.append(("end", reason))


def test_callbacks_see_every_step(task):
    rec = Recorder()
    trainer = Trainer(tiny_ntm(task), task, batch_size=4, callbacks=[rec])
    assert trainer.run(5) == "done"
    steps = [e for e in rec.events if e[0] == "step"]
    assert rec.events[0] == ("start", 0) and rec.events[-1] == ("end", "done")
    assert [e[1] for e in steps] == [1, 2, 3, 4, 5]
    assert [e[2] for e in steps] == [4, 8, 12, 16, 20]
    assert all(math.isfinite(e[3]) and e[3] > 0 and e[4] >= 0 for e in steps)


def test_resume_from_checkpoint_is_exact(task, tmp_path):
    straight = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3, seeds=7)
    straight.run(6)

    first = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3, seeds=7)
    first.run(3)
    path = first.save(tmp_path / "half.safetensors")
    resumed = Trainer.resume_from(checkpoint.load(path, device="cpu"))
    assert (resumed.step, resumed.sequences) == (3, 12)
    resumed.run(6)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k


def test_resume_with_a_new_learning_rate(task, tmp_path):
    first = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3)
    first.run(2)
    ckpt = checkpoint.load(first.save(tmp_path / "c.safetensors"), device="cpu")
    assert Trainer.resume_from(ckpt).optimizer.param_groups[0]["lr"] == 3e-3
    assert Trainer.resume_from(ckpt, lr=1e-4).optimizer.param_groups[0]["lr"] == 1e-4


def test_batches_depend_on_seed_and_step_only(task):
    a = Trainer(tiny_ntm(task), task, batch_size=4, seeds=1)
    b = Trainer(tiny_ntm(task, seed=5), task, batch_size=4, seeds=1)
    assert torch.equal(a.batch(3).inputs, b.batch(3).inputs)
    assert not torch.equal(a.batch(3).inputs, a.batch(4).inputs)


def test_nan_loss_stops_before_the_update(task):
    model = tiny_ntm(task)
    rec = Recorder()
    trainer = Trainer(model, task, batch_size=4, callbacks=[rec])
    trainer.run(2)
    with torch.no_grad():
        model.output.bias.fill_(float("nan"))
    before = weights(model)
    with pytest.raises(TrainingDiverged, match="step 3"):
        trainer.run(5)
    assert trainer.step == 2
    after = weights(model)
    for k in before:  # the optimiser never stepped on the NaN batch
        assert torch.equal(before[k].nan_to_num(7.0), after[k].nan_to_num(7.0)), k
    assert rec.events[-1] == ("end", "diverged")
    with pytest.raises(TrainingDiverged):
        trainer.save("never-written.safetensors")


def test_pause_resume_stop_from_another_thread(task):
    trainer = Trainer(tiny_ntm(task), task, batch_size=2)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("reason", trainer.run(10**9)), daemon=True)
    thread.start()
    deadline = time.time() + 30
    while trainer.step < 3 and time.time() < deadline:
        time.sleep(0.01)
    trainer.pause()
    time.sleep(0.2)
    paused_at = trainer.step
    time.sleep(0.3)
    assert trainer.paused and trainer.step == paused_at
    trainer.resume()
    while trainer.step < paused_at + 3 and time.time() < deadline:
        time.sleep(0.01)
    assert trainer.step >= paused_at + 3
    trainer.stop()
    thread.join(10)
    assert not thread.is_alive() and result["reason"] == "stopped"


def test_curriculum_grows_to_the_full_task(task):
    full = get_task("repeat_copy", max_length=6, max_repeats=4)
    stages = [curriculum_task(full, k, 3) for k in (1, 2, 3)]
    assert [s.max_length for s in stages] == [3, 5, 6]
    assert [s.max_repeats for s in stages] == [2, 3, 4]
    assert stages[-1] == full
    assert curriculum_task(get_task("ngrams"), 1, 3) == get_task("ngrams")  # no curriculum for n-grams

    trainer = Trainer(tiny_ntm(task), task, batch_size=4, curriculum=3, curriculum_threshold=1e9)
    assert trainer.stage == 1 and trainer.current_task.max_length == 2  # 1 + ceil((3 - 1) / 3)
    trainer.run(2)  # any error is below an infinite threshold: one stage per step
    assert trainer.stage == 3 and trainer.current_task == task


def test_history_stays_bounded():
    h = History(limit=10)
    for i in range(1000):
        h.add(i, 1.0 / (i + 1), 0.0)
    assert len(h.sequences) < 10 and h.sequences == sorted(h.sequences)
    assert h.sequences[-1] > 900  # recent points survive the thinning


def test_mismatched_task_and_model_are_refused(task):
    model = tiny_ntm(task)
    with pytest.raises(ntmviz.ConfigError, match="inputs"):
        Trainer(model, get_task("associative_recall", max_items=2), batch_size=2)
    with pytest.raises(ntmviz.ConfigError, match="memory slots"):
        Trainer(model, task.replace(max_length=20), batch_size=2)
    with pytest.raises(ntmviz.ConfigError, match="optimizer"):
        Trainer(model, task, optimizer="sgd")


# ---- seed ensembles -------------------------------------------------------------------------------

def tiny_config(task):
    return ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=6, memory_width=5, controller_size=12)


def ensemble(task, seeds, **options):
    from ntmviz.models import build_model

    return Trainer(build_model(tiny_config(task), seeds=seeds), task, seeds=seeds, batch_size=4, **options)


def test_model_k_of_an_ensemble_trains_as_its_seed_alone(task):
    together = ensemble(task, [4, 1, 7], lr=3e-3)
    together.run(5)
    for k, seed in enumerate([4, 1, 7]):
        alone = ensemble(task, [seed], lr=3e-3)
        alone.run(5)
        for (name, a), b in zip(alone.model.member_state_dict(0).items(), together.model.member_state_dict(k).values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=f"seed {seed} {name}")
        assert alone.histories[0].loss == pytest.approx(together.histories[k].loss, rel=1e-4)


def test_one_model_diverging_stops_that_model_only(task, tmp_path):
    trainer = ensemble(task, [0, 1, 2], log_every=1)
    trainer.run(2)
    with torch.no_grad():
        trainer.model.output.bias[1].fill_(float("nan"))  # model 1 only
    poisoned = {k: v.clone() for k, v in trainer.model.member_state_dict(1).items()}
    others = [{k: v.clone() for k, v in trainer.model.member_state_dict(j).items()} for j in (0, 2)]
    assert trainer.run(5) == "done"
    assert trainer.alive == [True, False, True]
    assert "the loss became nan at step 3" in trainer.diverged[1]
    for name, value in trainer.model.member_state_dict(1).items():  # frozen where it diverged
        assert torch.equal(value.nan_to_num(7.0), poisoned[name].nan_to_num(7.0)), name
    for j, before in zip((0, 2), others):  # the others kept learning
        assert any(not torch.equal(before[n], v) for n, v in trainer.model.member_state_dict(j).items())
    for p in trainer.params:  # no NaN reached the optimiser's moments
        for value in trainer.optimizer.state[p].values():
            assert torch.isfinite(value).all()
    assert len(trainer.histories[1].loss) == 2 and len(trainer.histories[0].loss) == 5  # its curve stopped
    path = trainer.save(tmp_path / "others.safetensors", member=2)
    assert checkpoint.load(path).meta["seed"] == 2
    with pytest.raises(TrainingDiverged, match="not finite"):
        trainer.save(tmp_path / "m1.safetensors", member=1)


def test_every_model_diverging_raises_and_on_end_says_so(task):
    rec = Recorder()
    trainer = ensemble(task, [0, 1], callbacks=[rec])
    trainer.run(1)
    with torch.no_grad():
        trainer.model.output.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="every model diverged by step 2"):
        trainer.run(3)
    assert rec.events[-1] == ("end", "diverged")


def test_on_end_is_told_the_true_reason_when_a_callback_fails(task):
    class Boom:
        def on_step(self, trainer, m):
            raise RuntimeError("boom")

    rec = Recorder()
    trainer = Trainer(tiny_ntm(task), task, batch_size=2, callbacks=[Boom(), rec])
    with pytest.raises(RuntimeError, match="boom"):
        trainer.run(3)
    assert rec.events[-1] == ("end", "error")


def test_gradient_clipping_bounds_each_models_update_on_its_own(task):
    trainer = ensemble(task, [0, 1], clip=1e-3)
    seen = []
    step = trainer.optimizer.step

    def watched(*args, **kwargs):  # each model's gradient norm as the optimiser receives it
        seen.append(torch.stack([torch.sqrt(sum(p.grad[k].square().sum() for p in trainer.params)) for k in (0, 1)]))
        return step(*args, **kwargs)

    trainer.optimizer.step = watched
    trainer.run(3)
    assert len(seen) == 3
    for norms in seen:  # both at the bound: clipped per model (one global norm would leave them unequal)
        torch.testing.assert_close(norms, torch.full((2,), 1e-3), rtol=1e-3, atol=0.0)


def test_an_exploding_but_finite_gradient_is_clipped_not_called_divergence(task):
    """Gradients of 1e21 square past float32's range: summed there, the norm was inf and the
    model was stopped as diverged (two of three n-gram seeds were lost so), where clipping
    would have bounded the step."""
    trainer = ensemble(task, [0, 1], clip=10.0)
    with torch.no_grad():
        trainer.model.output.weight[1].mul_(1e21)  # model 1's logits, and its gradients, explode
    trainer.run(1)
    assert trainer.alive == [True, True], trainer.diverged
    assert all(torch.isfinite(p).all() for p in trainer.params)


def overflow_gradients_of(trainer, member):
    """Make model `member`'s gradients overflow (inf) on every backward pass, its loss finite:
    what a rare n-gram batch did to the addressing's backward through time in float32."""
    def hook(grad):
        grad = grad.clone()
        grad[member] = math.inf
        return grad
    return trainer.model.output.weight.register_hook(hook)


def test_a_gradient_that_overflows_skips_the_batch_and_the_model_trains_on(task, tmp_path):
    trainer = ensemble(task, [0, 1], log_every=1)
    trainer.run(2)
    hook = overflow_gradients_of(trainer, 1)
    before = [{n: v.clone() for n, v in trainer.model.member_state_dict(k).items()} for k in (0, 1)]
    trainer.run(3)
    hook.remove()
    assert trainer.alive == [True, True] and trainer.skipped == [[], [3]]
    for name, value in trainer.model.member_state_dict(1).items():  # it skipped the batch
        assert torch.equal(value, before[1][name]), name
    assert any(not torch.equal(before[0][n], v) for n, v in trainer.model.member_state_dict(0).items())
    for p in trainer.params:  # no inf reached the optimiser's moments
        for value in trainer.optimizer.state[p].values():
            assert torch.isfinite(value).all()
    trainer.run(4)  # the next batch's gradient is finite: it learns again
    assert any(not torch.equal(before[1][n], v) for n, v in trainer.model.member_state_dict(1).items())
    path = trainer.save(tmp_path / "m1.safetensors", member=1)
    assert checkpoint.load(path).meta["skipped_batches"] == [3]
    assert Trainer.resume_from([checkpoint.load(path)]).skipped == [[3]]


def test_gradients_that_overflow_batch_after_batch_are_divergence(task):
    trainer = ensemble(task, [0, 1])
    trainer.run(1)
    overflow_gradients_of(trainer, 0)
    trainer.run(1 + MAX_SKIPPED + 2)
    assert trainer.alive == [False, True]
    assert trainer.diverged[0].startswith(f"the gradients became inf on {MAX_SKIPPED} batches in a row at step {1 + MAX_SKIPPED}")
    assert trainer.skipped[0] == list(range(2, 2 + MAX_SKIPPED))


def test_a_resumed_ensemble_continues_exactly(task, tmp_path):
    straight = ensemble(task, [3, 8], lr=3e-3, curriculum=2, curriculum_threshold=1e9)
    straight.run(6)
    first = ensemble(task, [3, 8], lr=3e-3, curriculum=2, curriculum_threshold=1e9)
    first.run(3)
    paths = [first.save(tmp_path / f"m{k}.safetensors", member=k) for k in range(2)]
    resumed = Trainer.resume_from([checkpoint.load(p, device="cpu") for p in paths])
    assert resumed.seeds == [3, 8] and resumed.stages == first.stages == [2, 2]
    resumed.run(6)
    for k in range(2):
        for (name, a), b in zip(straight.model.member_state_dict(k).items(),
                                resumed.model.member_state_dict(k).values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert resumed.histories[1].stage[-1] == 2


def test_resume_records_the_new_phase(task, tmp_path):
    first = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3)
    first.run(2)
    ckpt = checkpoint.load(first.save(tmp_path / "c.safetensors"), device="cpu")
    again = Trainer.resume_from(ckpt, lr=1e-4)
    again.run(3)
    schedule = again.meta()["schedule"]
    assert [(p["step"], p["lr"], p["optimizer_state"]) for p in schedule] == [(0, 3e-3, "new"), (2, 1e-4, "kept")]
    slim = checkpoint.load(first.save(tmp_path / "s.safetensors", with_optimizer=False), device="cpu")
    assert Trainer.resume_from(slim).meta()["schedule"][-1]["optimizer_state"] == "new"


@pytest.mark.parametrize("text, words", [("", "empty item"), ("3-1", "runs backwards"), ("-2", "not a seed"),
                                         ("0-5000", "more than 1024"), ("1,1", "appears twice"), ("x", "not a seed")])
def test_bad_seed_lists_are_refused(text, words):
    from ntmviz.train import parse_seeds

    with pytest.raises(ntmviz.ConfigError, match=words):
        parse_seeds(text)


def test_seed_lists():
    from ntmviz.train import parse_seeds

    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,3,5") == [0, 3, 5]
    assert parse_seeds("2, 7-8") == [2, 7, 8]


def test_a_diverged_model_trains_again_on_resume_and_its_phase_says_so(task, tmp_path):
    first = ensemble(task, [0, 1], lr=3e-3)
    first.run(2)
    first.diverged[1] = "the loss became nan at step 3; its weights are those of step 2"  # as _mark_diverged
    first.alive[1] = False
    paths = [first.save(tmp_path / f"m{k}.safetensors", member=k) for k in range(2)]
    assert checkpoint.load(paths[1]).meta["diverged"].startswith("the loss became nan")
    again = Trainer.resume_from([checkpoint.load(p, device="cpu") for p in paths])
    assert again.alive == [True, True] and again.diverged == {}
    assert again.meta()["schedule"][-1]["revived_after_divergence"] == {1: first.diverged[1]}  # seed -> why
    before = {n: v.clone() for n, v in again.model.member_state_dict(1).items()}
    again.run(4)
    assert any(not torch.equal(before[n], v) for n, v in again.model.member_state_dict(1).items())


def test_ctrl_c_inside_the_optimiser_step_lets_that_step_finish_then_stops(task):
    """The CLI's signal handler (cli._Signals), with SIGINT delivered deterministically in the
    middle of an optimiser step (before the update is applied): the step completes and the run
    stops after it, with the weights of an uninterrupted run of the same number of steps. A
    handler that raised there would leave a half-applied update (or none) to be saved."""
    import os
    import signal

    from ntmviz.cli import _Signals

    straight = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3, seeds=7)
    straight.run(3)
    trainer = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3, seeds=7)
    apply_update = trainer.optimizer.step

    def step_interrupted(*args, **kwargs):
        if trainer.step == 2:  # the third step (steps count from 0 inside train_step)
            os.kill(os.getpid(), signal.SIGINT)  # its handler runs here, before the update below
        return apply_update(*args, **kwargs)

    trainer.optimizer.step = step_interrupted
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    try:
        _Signals(trainer).install()
        assert trainer.run(10) == "stopped"
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
    assert trainer.step == straight.step == 3
    for name, value in weights(straight.model).items():
        assert torch.equal(weights(trainer.model)[name], value), name


# ---- the callbacks every front end shares: validation, periodic checkpoints; the one pause ----------------

def test_validation_scores_the_validation_stream_every_k_steps_and_keeps_the_best(task):
    """Train.Validation: the scores are those of the validation stream (evaluate's, seed 0) at
    steps K, 2K, ...; on_best fires exactly where a model's running best improves, by the task's
    own key, and `best` holds the best key; each model of an ensemble on its own."""
    from ntmviz.evaluate import evaluate
    from ntmviz.train_callbacks import Validation

    class Check:  # runs right after Validation: the stream's own scores of the model as it is now
        def __init__(self):
            self.expected = []

        def on_step(self, trainer, m):
            if m.step % 2 == 0:
                self.expected.append([(s.bit_errors, s.loss) for s in
                                      evaluate(trainer.model, task, stream="validation", seed=0, samples=12)])

    best_at = []
    validation = Validation(2, 12, on_best=lambda trainer, k, step: best_at.append((k, step)))
    check = Check()
    trainer = ensemble(task, [0, 5], lr=3e-2, callbacks=[validation, check])
    trainer.run(12)
    for k in range(2):
        v = trainer.validation[k]
        assert v["step"] == [2, 4, 6, 8, 10, 12]
        scored = list(zip(v["bit_errors"], v["loss"]))
        assert [x for pair in scored for x in pair] == pytest.approx(
            [x for e in check.expected for x in e[k]], rel=1e-5)
        keys = [task.validation_key(e, loss) for e, loss in scored]
        running, improved = None, []
        for step, key in zip(v["step"], keys):
            if running is None or key < running:
                running = key
                improved.append(step)
        assert [s for j, s in best_at if j == k] == improved
        assert validation.best[k] == min(keys)
    again = Validation(2, 12)
    again.on_start(trainer)  # a resumed run starts from the best it had
    assert again.best == validation.best
    off = Validation(0, 12)
    lone = Trainer(tiny_ntm(task), task, batch_size=4, callbacks=[off])
    lone.run(4)
    assert lone.validation[0]["step"] == []  # 0: never


def test_checkpoints_are_written_every_k_steps_atomically_and_resume_exactly(task, tmp_path, monkeypatch):
    import ntmviz.files
    from ntmviz.train_callbacks import Checkpoints

    straight = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3, seeds=2)
    straight.run(9)

    path = tmp_path / "run.safetensors"
    seen = {}

    class Look:  # after Checkpoints: which step the file holds at every step
        def on_step(self, trainer, m):
            seen[m.step] = checkpoint.load(path, device="cpu").step if path.exists() else None

    trainer = Trainer(tiny_ntm(task), task, batch_size=4, lr=3e-3, seeds=2,
                      callbacks=[Checkpoints([path], 3), Look()])
    trainer.run(7)  # as if killed after step 7: the file holds step 6
    assert seen == {1: None, 2: None, 3: 3, 4: 3, 5: 3, 6: 6, 7: 6}
    resumed = Trainer.resume_from(checkpoint.load(path, device="cpu"))
    assert resumed.step == 6 and resumed.seeds == [2]
    resumed.run(9)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name

    # a write that fails half way leaves the previous checkpoint whole, and no temporary file
    real_replace = ntmviz.files.os.replace

    def fail(*args):
        raise OSError("disk full")

    resumed.callbacks.append(Checkpoints([path], 3))
    monkeypatch.setattr(ntmviz.files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        resumed.run(12)
    monkeypatch.setattr(ntmviz.files.os, "replace", real_replace)
    assert checkpoint.load(path, device="cpu").step == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.safetensors"]


def test_checkpoints_write_one_file_per_model_of_an_ensemble(task, tmp_path):
    from ntmviz.train_callbacks import Checkpoints

    paths = [tmp_path / "a.safetensors", tmp_path / "b.safetensors"]
    saver = Checkpoints(paths, 2, with_optimizer=False, extra_meta={"note": "x"})
    trainer = ensemble(task, [3, 8], callbacks=[saver])
    trainer.run(3)
    loaded = [checkpoint.load(p, device="cpu") for p in paths]
    assert [c.step for c in loaded] == [2, 2] and [c.meta["seed"] for c in loaded] == [3, 8]
    assert all(c.optimizer_state is None and c.meta["note"] == "x" for c in loaded)
    saver.save(trainer)  # any moment: the end of a run
    assert checkpoint.load(paths[1], device="cpu").step == 3
    with pytest.raises(ntmviz.ConfigError, match="2 checkpoint paths for 3 models"):
        ensemble(task, [0, 1, 2], callbacks=[Checkpoints(paths, 2)]).run(1)


def test_a_paused_loop_calls_on_pause_between_steps_and_on_resume(task):
    """The one pause: the loop holds between two steps; on_pause runs when the hold begins and
    again on every wake() (the live app serves requests there); on_resume when it ends."""
    events = []

    class Hooks:
        def on_step(self, trainer, m):
            events.append(("step", m.step))
            if m.step == 2:
                trainer.pause()

        def on_pause(self, trainer):
            events.append(("pause", trainer.step))

        def on_resume(self, trainer):
            events.append(("resume", trainer.step))

    trainer = Trainer(tiny_ntm(task), task, batch_size=2, callbacks=[Hooks()])
    thread = threading.Thread(target=trainer.run, args=(4,), daemon=True)
    thread.start()
    deadline = time.time() + 30
    while ("pause", 2) not in events and time.time() < deadline:
        time.sleep(0.01)
    assert trainer.paused and trainer.step == 2
    count = events.count(("pause", 2))
    trainer.wake()
    while events.count(("pause", 2)) == count and time.time() < deadline:
        time.sleep(0.01)
    assert trainer.step == 2 and ("resume", 2) not in events
    trainer.resume()
    thread.join(30)
    assert not thread.is_alive() and trainer.step == 4
    assert events[:2] == [("step", 1), ("step", 2)] and events[-3:] == [("resume", 2), ("step", 3), ("step", 4)]
    assert set(events[2:-3]) == {("pause", 2)}


def test_the_memory_estimate_of_a_task_without_a_size_uses_its_longest_items(monkeypatch):
    """Dates have no size knob: the estimate takes the longest of a drawn batch (about 31 steps),
    so three seeds at batch 32 fit in a few GB (a fixed 1000 steps once refused them: 24 GB);
    a hopeless request is still refused in one line naming the need."""
    from ntmviz import train
    from ntmviz.config import model_config

    task = get_task("dates")
    config = model_config("seq2seq", task)
    longest = task.sample(64, seed=0).inputs.shape[1]
    assert 25 <= longest <= 40
    per_row = train.step_bytes(config, task, 1)
    assert per_row == 4 * longest * (config.numbers_per_step(longest) + 4 * config.output_size)
    monkeypatch.setattr(train, "available_memory", lambda: 4 * 2**30)
    train.check_memory(config, task, 96, "--seeds with 3 models at batch 32")  # about 0.03 GB
    with pytest.raises(ConfigError, match=r"--seeds with 4096 models at batch 32 need about \d+\.\d GB per step; "
                                          r"this machine has 4\.0 GB available"):
        train.check_memory(config, task, 4096 * 32, "--seeds with 4096 models at batch 32")
