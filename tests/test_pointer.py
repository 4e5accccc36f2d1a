"""Tests for pointer networks (Vinyals, Fortunato & Jaitly 2015): the batched model against a
float64 loop of the paper's equations written out one item at a time (teacher forcing in
training mode, its own argmax in eval mode), the seed ensemble, the declaration, the recorded
episode against a recomputation from its own arrays and the model's weights, files, the
Trainer and the CLI end to end, and the successor mechanism on episodes whose answer is known."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from ntmviz import checkpoint
from ntmviz.cli import main
from ntmviz.config import PointerConfig, model_config
from ntmviz.contract import Family
from ntmviz.episode import Episode, record
from ntmviz.errors import ConfigError
from ntmviz.mechanisms import readings
from ntmviz.models import build_model, family
from ntmviz.models.pointer import FAMILY, NOT_THERE, POINTERS, VOCABULARY, PointerNetwork
from ntmviz.tasks import get_task
from ntmviz.tasks.geometry import END, ConvexHull, SortNumbers, TravellingSalesman
from ntmviz.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_model(task, seed=0, size=6, models=1, dtype=torch.float64, output="pointer") -> PointerNetwork:
    torch.manual_seed(seed)
    config = PointerConfig(task.input_size, task.output_size, pointer_size=size, output=output)
    return PointerNetwork(config, models).to(dtype)


def reference(model: PointerNetwork, item: np.ndarray, teacher: bool, k: int = 0):
    """The paper's equations for one item [T, I] of model k, in float64, one vector at a time:
    (encoder states e_0..e_n [n+1, C], energies u [n+1 steps, n+1 positions])."""
    Fw = model.config.features
    x = np.asarray(item, np.float64)
    n = int((x[:, Fw] > 0.5).sum())

    def weights(lstm):
        return [getattr(lstm, name)[k].detach().double().numpy() for name in
                ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    def cell(w, z, h, c):
        wih, whh, bih, bhh = w
        i, f, g, o = np.split(wih @ z + whh @ h + bih + bhh, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c

    end = np.zeros(Fw + 1)
    end[Fw] = 1
    z = [end] + [np.concatenate([x[j, :Fw], [0.0]]) for j in range(n)]
    C = model.config.pointer_size
    h, c = np.zeros(C), np.zeros(C)
    enc, dec = weights(model.encoder), weights(model.decoder)
    e = []
    for zj in z:
        h, c = cell(enc, zj, h, c)
        e.append(h)
    W1, W2 = model.w1[k].detach().double().numpy(), model.w2[k].detach().double().numpy()
    v = model.v[k].detach().double().numpy()
    vocabulary = not model.config.points
    if vocabulary:  # the baseline: its answer a softmax over the positions, read from [d_i; c_i]
        W_out, b_out = model.w_out[k].detach().double().numpy(), model.b_out[k].detach().double().numpy()
    p, energies, answers, contexts = 0, [], [], []
    for i in range(n + 1):
        if teacher:
            p = int(round(x[i, -1]))
        h, c = cell(dec, z[p] if p < len(z) else np.zeros(Fw + 1), h, c)  # a position past the inputs reads zeros
        u = np.array([v @ np.tanh(W1 @ ej + W2 @ h) for ej in e])
        energies.append(u)
        if vocabulary:
            a = np.exp(u - u.max())
            a /= a.sum()
            context = a @ np.array(e)
            answers.append(W_out @ np.concatenate([h, context]) + b_out)
            contexts.append(context)
            p = int(np.argmax(answers[-1]))
        else:
            p = int(np.argmax(u))
    if vocabulary:
        return np.array(e), np.array(energies), np.array(answers), np.array(contexts)
    return np.array(e), np.array(energies)


@pytest.fixture(params=["sort_numbers", "convex_hull", "tsp"])
def task(request):
    return get_task(request.param, min_n=3, max_n=7)


@pytest.mark.parametrize("teacher", [True, False])
def test_the_batch_matches_the_papers_equations_item_by_item(task, teacher):
    model = make_model(task).train(teacher)
    batch = task.sample(5, seed=3)
    x = batch.inputs.double()
    assert len(set(batch.lengths.tolist())) > 1  # items of several sizes share the batch
    logits = model(x).detach().numpy()
    assert logits.shape == (5, x.shape[1], task.output_size)
    for b in range(5):
        n = int(batch.lengths[b]) - 1
        e, u = reference(model, x[b].numpy(), teacher)
        np.testing.assert_allclose(logits[b, : n + 1, : n + 1], u, rtol=1e-10, atol=1e-12)
        assert np.all(logits[b, :, n + 1:] == NOT_THERE)  # positions the item does not have


@pytest.mark.parametrize("output", ["pointer", "vocabulary"])
def test_each_once_decodes_whole_permutations_from_the_attentions_own_energies(task, output):
    """run(each_once=True), eval mode: every answer points at each of its n inputs once, then at
    the end to the last step; the energies are the paper's equations fed those pointers (teacher
    forcing on them, float64), so only the answer was masked. Training mode ignores it."""
    model = make_model(task, seed=4, output=output).eval()
    batch = task.sample(40, seed=9)
    x = batch.inputs.double()
    with torch.no_grad():
        plain = model(x).argmax(-1).numpy()
        run = model.run(x, each_once=True)
    pointers = run.logits.argmax(-1).numpy()
    repeats = 0
    for b in range(40):
        n = int(batch.lengths[b]) - 1
        assert sorted(pointers[b, :n].tolist()) == list(range(1, n + 1))
        assert (pointers[b, n:] == END).all()
        repeats += len(set(plain[b, :n].tolist())) < n or plain[b, n] != END
        fed = x[b].numpy().copy()
        fed[:, -1] = np.concatenate([[0], pointers[b, :-1]])  # the pointer each step was fed
        u = reference(model, fed, teacher=True)[1]
        np.testing.assert_allclose(run.energies[b, : n + 1, : n + 1].numpy(), u, rtol=1e-10, atol=1e-12)
    assert repeats > 10  # an untrained model's own answers are not permutations: the mask did this
    model.train()
    torch.testing.assert_close(model.run(x, each_once=True).logits, model(x))


@pytest.mark.parametrize("teacher", [True, False])
def test_the_vocabulary_baseline_matches_its_equations_item_by_item(task, teacher):
    """Output "vocabulary": the same attention, read as a context; the answer over the positions as words."""
    model = make_model(task, output="vocabulary").train(teacher)
    batch = task.sample(5, seed=4)
    x = batch.inputs.double()
    run = model.run(x)
    logits = model(x).detach().numpy()
    assert logits.shape == (5, x.shape[1], task.output_size)
    for b in range(5):
        n = int(batch.lengths[b]) - 1
        e, u, answers, contexts = reference(model, x[b].numpy(), teacher)
        np.testing.assert_allclose(run.energies[b, : n + 1, : n + 1].detach().numpy(), u, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(logits[b, : n + 1], answers, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(run.contexts[b, : n + 1].detach().numpy(), contexts, rtol=1e-10, atol=1e-12)
    # it answers over every position, those past an item's inputs too (it may name one it does not have)
    assert np.all(logits > NOT_THERE)


def test_teacher_forcing_reads_the_previous_channel_in_training_mode_only(task):
    model = make_model(task)
    batch = task.sample(4, seed=5)
    other = batch.inputs.double().clone()
    other[:, 1:, -1] = 1  # a different teacher: always input 1
    model.train()
    assert not torch.allclose(model(batch.inputs.double()), model(other))
    model.eval()
    torch.testing.assert_close(model(batch.inputs.double()), model(other), rtol=0, atol=0)


def test_seed_ensemble_members_are_the_single_models(task):
    batch = task.sample(3, seed=1)
    singles = [make_model(task, seed=s, dtype=torch.float32) for s in (0, 1)]
    stacked = PointerNetwork.stack(singles).eval()
    out = stacked(torch.cat([batch.inputs] * 2))
    for k, single in enumerate(singles):
        torch.testing.assert_close(out[3 * k: 3 * k + 3], single.eval()(batch.inputs), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stacked.member(1).eval()(batch.inputs), singles[1](batch.inputs))


def test_bad_inputs_are_refused():
    task = get_task("convex_hull")
    model = make_model(task)
    with pytest.raises(ConfigError, match=r"inputs must be \[batch, time, 4\]"):
        model(torch.zeros(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ConfigError, match="points over at most 50"):
        model(torch.zeros(1, 60, 4, dtype=torch.float64))
    with pytest.raises(ConfigError, match="--task sort_numbers, convex_hull or tsp, not copy"):
        model_config("pointer", get_task("copy"))


def test_the_declaration():
    assert family("pointer") is FAMILY
    assert FAMILY.memory == "read-only" and FAMILY.slot_coords and FAMILY.slot_labels
    assert FAMILY.steps == "inputs" and FAMILY.measure == "answer_errors"
    (group,) = FAMILY.groups
    assert group.name == "pointer" and group.count == 1 and group.normalised
    assert group.stage_names == ("energies", "weights") and [s.signed for s in group.stages] == [True]
    assert Family.from_dict(FAMILY.to_dict()) == FAMILY
    # output "vocabulary" builds the baseline's family: its attention is a read, not the answer
    task = get_task("convex_hull")
    assert FAMILY.resolve(PointerConfig(task.input_size, task.output_size)) == POINTERS == FAMILY
    baseline = FAMILY.resolve(PointerConfig(task.input_size, task.output_size, output="vocabulary"))
    assert baseline == VOCABULARY and baseline.name == "pointer" and baseline.slot_coords
    (attention,) = baseline.groups
    assert attention.name == "attention" and attention.reads and attention.stage_names == ("energies", "weights")
    assert [s.signed for s in attention.stages] == [True]
    with pytest.raises(ConfigError, match="unknown output 'words'; expected pointer or vocabulary"):
        PointerConfig(task.input_size, task.output_size, output="words")


def test_the_recorded_baseline_reads_its_attention_and_answers_over_positions():
    task = get_task("convex_hull", min_n=4, max_n=6)
    model = make_model(task, size=8, dtype=torch.float32, output="vocabulary")
    batch = task.sample(3, seed=2)
    episodes = record(model, batch, task=task)
    with torch.inference_mode():
        run = model.eval().run(batch.inputs)
    for b, ep in enumerate(episodes):
        N = int(batch.lengths[b])
        assert ep.family == VOCABULARY and set(ep.heads) == {"attention"}
        np.testing.assert_allclose(ep.outputs, torch.softmax(run.logits[b, :N], -1).numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(ep.heads["attention"].weights[:, 0], run.weights[b, :N, :N].numpy(), atol=1e-7)
        np.testing.assert_allclose(ep.reads[:, 0], run.contexts[b, :N].numpy(), atol=1e-7)
        # the reads are the attention's weighted sum of the memory (the encoder's states)
        np.testing.assert_allclose(ep.reads[:, 0], ep.heads["attention"].weights[:, 0] @ ep.memory, atol=1e-5)
        target = ep.targets.argmax(-1)
        assert ep.score() == float(((ep.outputs.argmax(-1) != target) & (ep.mask > 0)).sum())


@pytest.fixture
def recorded(task):
    model = make_model(task, size=8, dtype=torch.float32)
    batch = task.sample(4, seed=11)
    return model, task, batch, record(model, batch, task=task)


def test_recorded_arrays_match_a_float64_recomputation(recorded):
    model, task, batch, episodes = recorded
    model64 = model.to(torch.float64)
    Fw = model.config.features
    for b, ep in enumerate(episodes):
        n = int(batch.lengths[b]) - 1
        assert ep.steps == n + 1 and ep.slots == n + 1 and ep.width == 8 and ep.static_memory
        e, u = reference(model64, ep.inputs, teacher=False)  # recording runs in eval mode
        np.testing.assert_allclose(ep.memory, e, rtol=1e-4, atol=1e-5)
        energies = ep.heads["pointer"].stages["energies"][:, 0].astype(np.float64)
        # the energies as computed, signs and all (a signed stage)
        np.testing.assert_allclose(energies, u, rtol=1e-4, atol=1e-4)
        # the weights are the softmax of the episode's own energies
        soft = np.exp(energies - energies.max(-1, keepdims=True))
        soft /= soft.sum(-1, keepdims=True)
        weights = ep.heads["pointer"].weights[:, 0]
        np.testing.assert_allclose(weights, soft, rtol=1e-5, atol=1e-6)
        # the outputs are the weights over the positions, zero past the item's own
        np.testing.assert_allclose(ep.outputs[:, : n + 1], weights, atol=1e-6)
        assert np.all(ep.outputs[:, n + 1:] == 0)
        # the slots are the end, then the inputs in their plane (a number at (v, 0))
        values = ep.inputs[:n, :Fw]
        np.testing.assert_array_equal(ep.slot_coords[1:, :Fw], values)
        if Fw == 1:
            assert np.all(ep.slot_coords[:, 1] == 0)
        assert tuple(ep.slot_coords[0]) == ((-0.1, 0.0) if Fw == 1 else (-0.1, -0.1))
        assert ep.slot_labels[0] == "end" and len(ep.slot_labels) == n + 1
        if isinstance(task, SortNumbers):
            assert [float(s) for s in ep.slot_labels[1:]] == pytest.approx(values[:, 0], abs=5e-4)
        else:
            assert ep.slot_labels[1:] == [str(i) for i in range(1, n + 1)]
        assert ep.meta["answer"] == task.item_answer(batch, b) and ep.meta["answer"][-1] == END
        # the score counts wrong pointers on the answer's steps
        target = ep.targets.argmax(-1)
        scored = ep.mask > 0
        assert ep.score() == float(((weights.argmax(-1) != target[: n + 1]) & scored).sum())


def test_episodes_and_checkpoints_save_and_load(recorded, tmp_path):
    model, task, batch, episodes = recorded
    ep = episodes[0]
    ep.save(tmp_path / "x.episode")
    back = Episode.load(tmp_path / "x.episode")
    assert back.family == ep.family
    for name, a in ep.arrays().items():
        np.testing.assert_array_equal(back.arrays()[name], a)
    assert back.slot_labels == ep.slot_labels

    trainer = Trainer(build_model(model_config("pointer", task, pointer_size=8), seeds=[0]), task, seeds=[0],
                      batch_size=4, lr=1e-3)
    trainer.run(2)
    trainer.save(tmp_path / "p.safetensors")
    ckpt = checkpoint.load(tmp_path / "p.safetensors", device="cpu")
    assert ckpt.config == trainer.model.config and ckpt.task == task and ckpt.family.name == "pointer"
    x = batch.inputs
    torch.testing.assert_close(ckpt.model.eval()(x), trainer.model.eval()(x))


def test_a_short_training_run_lowers_the_loss():
    task = get_task("sort_numbers", min_n=3, max_n=4)
    torch.manual_seed(0)
    model = build_model(model_config("pointer", task, pointer_size=16), seeds=[0, 1])
    trainer = Trainer(model, task, seeds=[0, 1], batch_size=16, lr=1e-2, log_every=1)
    trainer.run(60)
    for history in trainer.histories:
        assert np.all(np.isfinite(history.loss))
        assert np.mean(history.loss[-10:]) < 0.7 * np.mean(history.loss[:5])


def test_the_cli_trains_evaluates_and_records_it(tmp_path, capsys):
    out = tmp_path / "hull.safetensors"
    assert main(["train", "--model", "pointer", "--task", "convex_hull", "--pointer-size", "8", "--steps", "3",
                 "--batch-size", "4", "--checkpoint-every", "3", "--quiet", "--out", str(out)]) == 0
    ckpt = checkpoint.load(out, device="cpu")
    assert ckpt.config.kind == "pointer" and ckpt.step == 3
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out), "--samples", "8", "--seed", "123"]) == 0
    text = capsys.readouterr().out
    assert "convex_hull, pointer" in text
    for size in ("training range", "20", "50"):  # the paper's test sizes, by default
        assert re.search(rf"^ +{size} +\d+\.\d+ \[", text, re.M), text
    episode = tmp_path / "hull.episode"
    assert main(["record", "--checkpoint", str(out), "--input", "0.1,0.1\n0.9,0.2\n0.5,0.5\n0.4,0.95",
                 "--out", str(episode)]) == 0
    ep = Episode.load(episode)
    assert ep.steps == 5 and ep.slots == 5 and ep.meta["answer"] == [1, 2, 4, 0]
    np.testing.assert_allclose(ep.slot_coords[1:], [[0.1, 0.1], [0.9, 0.2], [0.5, 0.5], [0.4, 0.95]], rtol=1e-6)
    capsys.readouterr()
    bad = tmp_path / "bad.episode"
    assert main(["record", "--checkpoint", str(out), "--input", "0.1,0.1\n0.5,x\n0.2,0.9", "--out", str(bad)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["ntmviz: error: line 2, y: 'x' is not a number"]
    assert not bad.exists()


@pytest.mark.parametrize("argv, message", [
    (["--task", "copy"], "a pointer network points at its inputs: --task sort_numbers, convex_hull or tsp, not copy"),
    (["--task", "convex_hull", "--pointer-size", "0"], "pointer_size must be a positive integer, got 0"),
    (["--task", "convex_hull", "--task-option", "max_n=60"],
     "convex_hull: 60 inputs, but the model points over at most 50 (positions)"),
    (["--task", "convex_hull", "--task-option", "min_n=2"], "min_n must be an integer >= 3, got 2"),
])
def test_a_setting_that_cannot_work_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    assert main(["train", "--model", "pointer", *argv, "--steps", "1", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"ntmviz: error: {message}"]
    assert not list(tmp_path.iterdir())


def one_hot_episode(task, batch, peaks: list[list[int]]) -> list[Episode]:
    """Episodes of `batch` whose pointer puts all its weight on the given peaks, one list per item."""
    episodes = []
    for b, item_peaks in enumerate(peaks):
        n = int(batch.lengths[b]) - 1
        w = np.zeros((n + 1, 1, n + 1), np.float32)
        w[np.arange(len(item_peaks)), 0, item_peaks] = 1
        w[len(item_peaks):, 0, 0] = 1
        coords = np.zeros((n + 1, 2), np.float32)
        episodes.append(Episode.from_arrays(
            memory=np.zeros((n + 1, 3), np.float32), heads={"pointer": w}, stages={"pointer": {"energies": w}},
            inputs=batch.inputs[b, : n + 1].numpy(), slot_coords=coords,
            meta={"task": task.name, "task_config": task.to_dict()},
            family=FAMILY.resolve(PointerConfig(task.input_size, task.output_size, pointer_size=3))))
    return episodes


@pytest.mark.parametrize("cls", [SortNumbers, ConvexHull, TravellingSalesman])
def test_the_successor_mechanism_on_known_pointers(cls):
    task = cls(min_n=6, max_n=8)
    batch = task.sample(3, seed=4)
    answers = [task.item_answer(batch, b) for b in range(3)]
    # the true answers: every step's peak is the next item
    for ep in one_hot_episode(task, batch, answers):
        ((mechanism, reading),) = readings(ep)
        assert mechanism.name == "successor" and reading.value == 1.0
    # the answer reversed (its end still last): each peak's successor in the answer is the one
    # the next step's peak came before, never the next step's peak, so no step hits
    for ep in one_hot_episode(task, batch, [a[:-1][::-1] + [END] for a in answers]):
        ((_, reading),) = readings(ep)
        assert reading.value == 0.0
    # one slip: a wrong peak at step 1, then the true answer from step 2 on
    slipped = []
    for answer in answers:
        wrong = next(p for p in range(1, 9) if p not in answer[:3])
        slipped.append([answer[0], wrong] + answer[2:])
    for ep, answer in zip(one_hot_episode(task, batch, slipped), answers):
        ((_, reading),) = readings(ep)
        # step 1 misses; step 2 follows the slip, which has no successor in the answer (or the wrong one)
        assert reading.value == pytest.approx((len(answer) - 2) / len(answer))
