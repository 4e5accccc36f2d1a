"""LiveRun: a Trainer in a background thread, no browser. Small models so each test is quick."""

import math
import threading
import time

import numpy as np
import pytest
import torch

from ntmviz import checkpoint
from ntmviz.app.live import LiveRun, RunConfig, live_runs, new_run
from ntmviz.episode import Episode


def small(**overrides) -> RunConfig:
    options = dict(task="copy", task_options={"max_length": 3}, memory_slots=8, memory_width=5,
                   controller_size=16, lr=1e-3, batch_size=4, snapshot_every=3, max_snapshots=50)
    options.update(overrides)
    return RunConfig(**options)


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def runs():
    """Every run a test makes is stopped and joined afterwards, whatever happens."""
    made = []

    def make(config=None, **kw):
        run = new_run(config or small(), **kw)
        made.append(run)
        return run

    yield make
    for run in made:
        run.stop()
        assert run.join(30), f"{run.name} did not stop"


def test_snapshots_every_k_steps(runs):
    run = runs(small(snapshot_every=3, steps=10))
    run.start()
    assert run.join(60)
    assert run.status == "done"
    version, snaps = run.snapshots()
    # step 0 (untrained), every 3 steps, and the last step
    assert [s.step for s in snaps] == [0, 3, 6, 9, 10]
    assert version == len(snaps)
    first = snaps[0].episode
    assert isinstance(first, Episode) and first.has_memory
    assert first.memory.shape[1:] == (8, 5)
    # the probe input is fixed: every snapshot shows the same input
    for s in snaps[1:]:
        assert (s.episode.inputs == first.inputs).all()
        assert s.episode.meta["training_step"] == s.step
    assert not math.isnan(snaps[1].loss)
    assert [m.step for m in run.metrics_since(7)] == [8, 9, 10]


def test_pause_and_resume_keep_the_step_count(runs):
    run = runs(small(snapshot_every=1000))
    run.start()
    wait_for(lambda: run.step >= 3, what="a few steps")
    run.pause()
    wait_for(lambda: run.status == "paused", what="the pause")
    paused_at = run.step
    time.sleep(0.5)
    assert run.step == paused_at
    assert run.trainer.step == paused_at
    run.resume()
    wait_for(lambda: run.step >= paused_at + 3, what="steps after resuming")
    assert run.status == "running"
    steps = [m.step for m in run.metrics_since(0)]
    assert steps == list(range(1, len(steps) + 1))  # no step lost or repeated


def test_the_pause_is_the_trainers_and_a_paused_run_serves_requests(runs, tmp_path):
    """One pause mechanism: LiveRun.pause is Trainer.pause; the held loop serves save() at once."""
    run = runs(small(snapshot_every=1000))
    run.start()
    wait_for(lambda: run.step >= 2, what="a few steps")
    run.pause()
    assert run.trainer.paused and run.paused
    wait_for(lambda: run.status == "paused", what="the pause")
    at = run.step
    started = time.monotonic()
    path = run.save(tmp_path / "paused.safetensors")
    assert time.monotonic() - started < 5
    assert checkpoint.load(path).step == at == run.step
    run.trainer.resume()  # the trainer's resume is the run's
    wait_for(lambda: run.step > at, what="steps after resuming")
    assert run.status == "running" and not run.paused


def test_stop_frees_the_thread(runs):
    before = threading.active_count()
    run = runs()
    run.start()
    wait_for(lambda: run.step >= 1, what="a step")
    assert run in live_runs()
    assert threading.active_count() == before + 1
    run.stop()
    assert run.join(30)
    assert not run.thread.is_alive()
    assert run.status == "stopped"
    assert threading.active_count() == before
    assert run not in live_runs()


def test_stop_while_paused_and_stop_before_the_first_step(runs):
    run = runs()
    run.start()
    run.pause()
    run.stop()
    assert run.join(30)
    run2 = runs()
    run2.start()
    run2.stop()  # may come before Trainer.run clears its stop flag
    assert run2.join(30)
    assert run2.status in ("stopped", "done")


class Poison:
    """A fault: at step `at`, one weight becomes NaN (so the next loss is NaN)."""

    def __init__(self, at: int):
        self.at = at

    def on_step(self, trainer, metrics):
        if trainer.step == self.at:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("nan")


def test_nan_is_caught_with_its_step_and_the_last_snapshot_kept(runs, tmp_path):
    run = runs(small(snapshot_every=4, steps=1000))
    run.trainer.callbacks.append(Poison(at=6))
    run.start()
    assert run.join(60)
    assert run.status == "diverged"
    assert "step 7" in run.error
    assert "step 4" in run.error  # the weights went back to the last snapshot's
    _, snaps = run.snapshots()
    assert [s.step for s in snaps] == [0, 4]
    assert snaps[-1].episode is not None
    assert run.step == 6  # metrics of the steps that worked are kept
    # the last good weights are still there and save as a normal checkpoint
    path = run.save(tmp_path / "good.safetensors")
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.step == 4
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_huge_learning_rate_diverges_without_hanging(runs):
    run = runs(small(lr=1e30, optimizer="adam", snapshot_every=1000, steps=300))
    run.start()
    assert run.join(60)
    assert run.status in ("diverged", "done")
    if run.status == "diverged":
        assert "at step" in run.error


def test_snapshot_ring_is_bounded(runs):
    run = runs(small(snapshot_every=1, max_snapshots=5, steps=40, metrics_limit=7, history_limit=8))
    sizes = []
    original = run._snapshot

    def watched(metrics):
        original(metrics)
        sizes.append(len(run.snapshots()[1]))

    run._snapshot = watched
    run.start()
    assert run.join(60)
    assert run.status == "done"
    assert max(sizes) <= 5
    _, snaps = run.snapshots()
    assert snaps[0].step == 0 and snaps[-1].step == 40  # thinned, still spanning the run
    assert [s.step for s in snaps] == sorted(s.step for s in snaps)
    assert len(run.metrics_since(0)) == 7
    assert len(run.history["loss"]) < 8


def test_save_while_running_writes_a_resumable_checkpoint(runs, tmp_path):
    run = runs(small(snapshot_every=1000))
    run.start()
    wait_for(lambda: run.step >= 2, what="two steps")
    path = run.save(tmp_path / "live.safetensors")
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.step >= 2 and loaded.task.name == "copy"
    assert loaded.optimizer_state is not None
    run.stop()
    assert run.join(30)
    # and a run can start from it
    again = LiveRun.from_checkpoint(path, steps=2, snapshot_every=1)
    again.start()
    assert again.join(60)
    assert again.status == "done" and again.step == loaded.step + 2


def test_lstm_run_records_episodes_without_memory(runs):
    run = runs(small(model="lstm", hidden_size=8, layers=1, steps=3, snapshot_every=1))
    run.start()
    assert run.join(60)
    _, snaps = run.snapshots()
    assert snaps and snaps[-1].episode.memory is None


def test_a_model_that_does_not_train_on_sequences_is_refused():
    from ntmviz.errors import ConfigError

    with pytest.raises(ConfigError, match="^model must be one of ntm, lstm.*, got 'memn2n'$"):
        small(model="memn2n").build()  # a memory network reads stories: `ntmviz train`


def test_a_memory_too_small_for_the_task_is_refused():
    from ntmviz.errors import ConfigError

    with pytest.raises(ConfigError):
        LiveRun.create(small(memory_slots=2))


class Gate:
    """A callback that holds the training thread inside step `at` until released."""

    def __init__(self, at: int):
        self.at, self.inside, self.release = at, threading.Event(), threading.Event()

    def on_step(self, trainer, metrics):
        if trainer.step == self.at:
            self.inside.set()
            assert self.release.wait(60), "the test never released the gate"


def test_status_says_pausing_and_stopping_until_the_thread_does_it(runs):
    run = runs(small(snapshot_every=1000))
    gate = Gate(at=2)
    run.trainer.callbacks.insert(0, gate)  # before the run's own callback: the step is not over
    run.start()
    assert gate.inside.wait(60)
    run.pause()
    assert run.status == "pausing"  # asked, not done: the thread is still in step 2
    gate.release.set()
    wait_for(lambda: run.status == "paused", what="the pause")
    run.resume()
    assert run.status == "running"
    run.pause()
    wait_for(lambda: run.status == "paused", what="the second pause")
    run.stop()
    assert run.status in ("stopping", "stopped")
    assert run.join(30) and run.status == "stopped" and run.ended


class HalfwayHistory:
    """A History whose add() stops between its lists until released (a reader that does not
    synchronise with the writer then sees lists of different lengths)."""

    def __init__(self, history, at: int):
        self.history, self.at, self.calls = history, at, 0
        self.inside, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.history, name)

    def add(self, sequences, loss, bit_errors, stage=0):
        self.calls += 1
        h = self.history
        h.sequences.append(sequences)
        if self.calls == self.at:
            self.inside.set()
            assert self.release.wait(60)
        h.loss.append(loss)
        h.bit_errors.append(bit_errors)
        h.stage.append(stage)

    def to_dict(self):
        return self.history.to_dict()


def test_history_is_read_between_steps_not_halfway_through_one(runs):
    run = runs(small(snapshot_every=1000))
    slow = HalfwayHistory(run.trainer.history, at=3)
    run.trainer.histories[0] = slow
    run.start()
    assert slow.inside.wait(60)
    got = {}
    reader = threading.Thread(target=lambda: got.update(run.history))
    reader.start()
    reader.join(0.5)  # the copy waits for the step to end (the writer holds the history)
    slow.release.set()
    reader.join(60)
    assert not reader.is_alive()
    assert len(got["sequences"]) == len(got["loss"]) == len(got["bit_errors"]) >= 3


class PoisonMoments:
    """At step `at`: the optimiser's moments become NaN, and the next batch's input too, so the
    next loss is NaN while the weights stay finite (the Trainer stops before the update)."""

    def __init__(self, at: int):
        self.at = at

    def on_step(self, trainer, metrics):
        if trainer.step != self.at:
            return
        for entries in trainer.optimizer.state.values():
            entries["exp_avg"].fill_(float("nan"))
        sample = trainer.batch

        def poisoned(step):
            batch = sample(step)
            return batch._replace(inputs=torch.full_like(batch.inputs, float("nan")))

        trainer.batch = poisoned


def test_divergence_with_nan_optimiser_moments_restores_them_too(runs, tmp_path):
    run = runs(small(snapshot_every=4, steps=1000, optimizer="adam"))
    run.trainer.callbacks.append(PoisonMoments(at=6))
    run.start()
    assert run.join(60)
    assert run.status == "diverged"
    assert all(torch.isfinite(p).all() for p in run.trainer.model.parameters())
    assert "step 4" in run.error  # back to the last snapshot's weights and moments
    path = run.save(tmp_path / "after.safetensors")
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.step == 4
    moments = [v for entries in loaded.optimizer_state["state"].values() for v in entries.values()
               if isinstance(v, torch.Tensor)]
    assert moments and all(torch.isfinite(v).all() for v in moments)
    # and it resumes: the first steps of a run from it do not diverge
    again = LiveRun.from_checkpoint(path, steps=3, snapshot_every=100)
    again.start()
    assert again.join(60)
    assert again.status == "done", again.error


def test_an_unexpected_failure_is_logged_with_its_traceback(runs, caplog):
    class Broken:
        def on_step(self, trainer, metrics):
            raise RuntimeError("a bug in a callback")

    run = runs(small(snapshot_every=1000))
    run.trainer.callbacks.append(Broken())
    with caplog.at_level("ERROR", logger="ntmviz.app.live"):
        run.start()
        assert run.join(60)
    assert run.status == "failed" and "a bug in a callback" in run.error
    [record] = [r for r in caplog.records if r.name == "ntmviz.app.live"]
    assert record.exc_info and "a bug in a callback" in str(record.exc_info[1])


def test_a_last_snapshot_that_fails_is_logged_and_the_run_still_ends_done(runs, caplog):
    run = runs(small(steps=3, snapshot_every=1000))  # no snapshot but the first and the last
    calls, real = [], run._snapshot

    def broken(metrics):
        if run.trainer.step == 0:
            return real(metrics)
        calls.append(metrics)
        raise RuntimeError("a bug in recording")

    run._snapshot = broken
    with caplog.at_level("ERROR", logger="ntmviz.app.live"):
        run.start()
        assert run.join(60)
    assert run.status == "done" and run.trainer.step == 3 and len(calls) == 1
    [record] = [r for r in caplog.records if r.name == "ntmviz.app.live"]
    assert "the last snapshot failed" in record.getMessage() and "a bug in recording" in str(record.exc_info[1])


# ---- seed ensembles: one Trainer, one model per seed --------------------------------------------

class PoisonSeeds:
    """From step `at` on, the training rows of the models `members` are NaN, so their loss (and
    only theirs: every model has its own rows) becomes NaN at step at + 1."""

    def __init__(self, trainer, members, at: int):
        sample, B = trainer.batch, trainer.batch_size

        def poisoned(step):
            batch = sample(step)
            if step < at:
                return batch
            inputs = batch.inputs.clone()
            for k in members:
                inputs[k * B:(k + 1) * B] = float("nan")
            return batch._replace(inputs=inputs)

        trainer.batch = poisoned


def test_every_seed_is_recorded_in_each_snapshot_by_one_batched_run(runs):
    from ntmviz.episode import record

    run = runs(small(seeds=[0, 3, 5], snapshot_every=3, steps=6))
    assert run.trainer.models == 3 and run.seeds == [0, 3, 5]
    run.start()
    assert run.join(60) and run.status == "done", run.error
    _, snaps = run.snapshots()
    assert [s.step for s in snaps] == [0, 3, 6]
    last = snaps[-1]
    assert last.seeds == (0, 3, 5) and len(last.episodes) == 3
    latest = run.latest
    assert last.model_loss == latest.model_loss and last.model_bit_errors == latest.model_bit_errors
    for k, seed in enumerate([0, 3, 5]):
        ep = last.member(k).episode
        assert ep is last.episodes[k]
        assert ep.meta["training_seed"] == seed and ep.meta["ensemble"] == {"seeds": [0, 3, 5], "member": k}
        assert f"seed {seed}" in ep.meta["source"] and ep.meta["training_step"] == 6
        assert (ep.inputs == last.episodes[0].inputs).all()  # one probe input for every seed
        # what model k alone records on the probe, to float rounding
        alone = record(run.trainer.model.member(k), run.probe)[0]
        np.testing.assert_allclose(ep.outputs, alone.outputs, atol=1e-5)
        np.testing.assert_allclose(ep.write.weights, alone.write.weights, atol=1e-5)
        member = last.member(k)
        assert (member.loss, member.bit_errors, member.seeds) == (latest.model_loss[k], latest.model_bit_errors[k], (seed,))
    assert not np.allclose(last.episodes[0].outputs, last.episodes[1].outputs)  # different models
    # every seed's own curve, every step
    hist = run.histories()
    metrics = run.metrics_since(0)
    for k in range(3):
        assert hist[k]["loss"] == [m.model_loss[k] for m in metrics]
        assert hist[k]["sequences"] == [m.sequences for m in metrics]


def test_a_seed_run_starts_from_the_weights_the_cli_gives_each_seed():
    from ntmviz.models import build_model

    run = LiveRun.create(small(seeds=[2, 7]))
    cli = build_model(run.trainer.model.config, seeds=[2, 7])
    for k in range(2):
        for name, t in run.trainer.model.member_state_dict(k).items():
            assert torch.equal(t, cli.member_state_dict(k)[name]), name
    # and a single run's model 0 is seed 0's, as before seeds came
    single = LiveRun.create(small())
    torch.manual_seed(0)
    import ntmviz

    alone = ntmviz.NTM(single.trainer.model.config)
    for name, t in alone.member_state_dict(0).items():
        assert torch.equal(single.trainer.model.member_state_dict(0)[name], t), name


def test_one_seed_diverges_and_the_others_go_on(runs, tmp_path):
    run = runs(small(seeds=[0, 1, 2], snapshot_every=4, steps=12))
    PoisonSeeds(run.trainer, [1], at=5)
    run.start()
    assert run.join(60)
    assert run.status == "done" and run.error == ""  # the run goes on with the others
    models = run.models()
    assert [m.seed for m in models] == [0, 1, 2]
    assert [m.alive for m in models] == [True, False, True]
    assert models[1].diverged == "the loss became nan at step 6; its weights are those of step 5"
    assert models[0].diverged == models[2].diverged == ""
    hist = run.histories()
    assert len(hist[1]["loss"]) == 5 and len(hist[0]["loss"]) == len(hist[2]["loss"]) == 12
    assert math.isnan(run.latest.model_loss[1]) and math.isfinite(run.latest.model_loss[0])
    # its snapshots after that show its last good weights; it saves as a checkpoint that says so
    path = run.save(tmp_path / "seed1.safetensors", member=1)
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.meta["seed"] == 1 and "step 6" in loaded.meta["diverged"]
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_every_seed_diverging_ends_the_run_naming_each(runs):
    run = runs(small(seeds=[0, 1], snapshot_every=3, steps=100))
    PoisonSeeds(run.trainer, [0, 1], at=4)
    run.start()
    assert run.join(60)
    assert run.status == "diverged"
    assert "every model diverged by step 5" in run.error
    assert "seed 0: the loss became nan at step 5" in run.error and "seed 1:" in run.error
    assert [m.alive for m in run.models()] == [False, False]
    assert all("step 5" in m.diverged for m in run.models())
    _, snaps = run.snapshots()
    assert [s.step for s in snaps] == [0, 3]  # kept for scrubbing


def test_save_writes_the_chosen_seed_that_resumes(runs, tmp_path):
    run = runs(small(seeds=[4, 6, 9], snapshot_every=100, steps=3))
    run.start()
    assert run.join(60) and run.status == "done"
    assert run.default_filename(2) == "copy-ntm-seed9-step3.safetensors"
    path = run.save(tmp_path / run.default_filename(2), member=2)
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.meta["seed"] == 9 and loaded.meta["ensemble"] == {"seeds": [4, 6, 9], "member": 2}
    assert loaded.model.models == 1 and loaded.step == 3
    assert loaded.meta["history"] == run.histories()[2]
    for name, t in run.trainer.model.member_state_dict(2).items():
        assert torch.equal(loaded.model.member_state_dict(0)[name], t), name
    with pytest.raises(Exception, match="no model 3"):
        run.save(tmp_path / "x.safetensors", member=3)
    again = LiveRun.from_checkpoint(path, steps=2, snapshot_every=1)
    assert again.seeds == [9]
    again.start()
    assert again.join(60) and again.status == "done" and again.step == 5


def test_validation_scores_every_seed_on_the_validation_stream(runs):
    from ntmviz.evaluate import evaluate

    run = runs(small(seeds=[0, 1], snapshot_every=100, steps=6, validate_every=3, validation_samples=16))
    run.start()
    assert run.join(60) and run.status == "done"
    for k, m in enumerate(run.models()):
        v = run.trainer.validation[k]
        assert v["step"] == [3, 6]
        assert m.validation == (6, v["bit_errors"][1], v["loss"][1])
        best = min(zip(v["bit_errors"], v["loss"], v["step"]))
        assert m.best_validation == (best[2], best[0], best[1])
    # the step-6 score is the validation stream's, as ntmviz eval computes it
    scores = evaluate(run.trainer.model, run.task, stream="validation", seed=0, samples=16)
    assert [s.bit_errors for s in scores] == pytest.approx([m.validation.bit_errors for m in run.models()])


def test_snapshots_are_bounded_in_bytes_too(runs):
    run = runs(small(seeds=[0, 1, 2], snapshot_every=1, steps=20, max_snapshots=50))
    run.start()
    assert run.join(60)
    _, snaps = run.snapshots()
    per = sum(e.nbytes for e in snaps[0].episodes)
    run2 = runs(small(seeds=[0, 1, 2], snapshot_every=1, steps=20, max_snapshots=50, snapshot_bytes=6 * per))
    sizes = []
    original = run2._snapshot

    def watched(metrics):
        original(metrics)
        sizes.append(len(run2.snapshots()[1]))

    run2._snapshot = watched
    run2.start()
    assert run2.join(60)
    assert len(snaps) == 21 and max(sizes) <= 6
    kept = [s.step for s in run2.snapshots()[1]]
    assert kept[0] == 0 and kept[-1] == 20
