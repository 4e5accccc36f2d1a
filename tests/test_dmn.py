"""Tests for the dynamic memory network (Kumar et al. 2015): its passes against a float64
recomputation of the paper's modules from the model's weights, the GRU against torch's, padding,
the seed ensemble, a short training run through the Trainer, recorded episodes (their own arrays
checked in float64), files, the pass mechanisms on constructed gates, the CLI, and a DMN and a
shipped MemN2N episode of the same story side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ntmviz import checkpoint
from ntmviz.cli import main
from ntmviz.config import DMNConfig, from_dict, model_config, to_dict
from ntmviz.contract import Family
from ntmviz.episode import Episode, record
from ntmviz.errors import ConfigError
from ntmviz.evaluate import evaluate
from ntmviz.mechanisms import measure, readings
from ntmviz.models import build_model
from ntmviz.layers import StackedGRUCell
from ntmviz.models.dmn import DMN, FAMILY
from ntmviz.shipped import checkpoint_path
from ntmviz.streams import stream_seed
from ntmviz.tasks import Batch, get_task
from ntmviz.tasks.mechanism import Trace
from ntmviz.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture
def task():
    return get_task("babi_two", people=3, places=4, objects=2, min_sentences=3, max_sentences=7)


def make(task, seed=0, **kw) -> DMN:
    torch.manual_seed(seed)
    return DMN(DMNConfig.for_task(task, **{"embedding_size": 6, "passes": 3, **kw}))


# ---- the maths, against a float64 recomputation ------------------------------------------------

def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference(model: DMN, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """The four modules for one story inputs [T, L] of a K = 1 model, in float64 numpy, one
    fact and one pass at a time: scores and gates [E, n], episodes [E, d], logits [E, O]."""
    w = {name: t.detach().double().numpy()[0] for name, t in model.state_dict().items()}
    d = model.config.embedding_size
    A, R = w["words"], w["times"]
    ids = np.rint(inputs).astype(int)
    story = [s for s in ids[1:] if s.any()]
    n = len(story)

    def encode(sentence):  # position encoding (Sukhbaatar et al. section 4.1) of the words
        words = [x for x in sentence if x]
        J = len(words)
        out = np.zeros(d)
        for j, word in enumerate(words, 1):
            k = np.arange(1, d + 1)
            out += ((1 - j / J) - (k / d) * (1 - 2 * j / J)) * A[word]
        return out

    facts = [encode(s) + R[n - 1 - i] for i, s in enumerate(story)]  # the last sentence has recency 0
    q = encode(ids[0])
    m = q
    out = {"scores": [], "gates": [], "episodes": [], "logits": [], "facts": np.array(facts)}
    for _ in range(model.config.passes):
        scores = []
        for c in facts:
            z = np.concatenate([c * q, c * m, np.abs(c - q), np.abs(c - m)])
            hidden = np.tanh(w["gate_hidden.weight"] @ z + w["gate_hidden.bias"])
            scores.append(float(w["gate_out.weight"][0] @ hidden + w["gate_out.bias"][0]))
        scores = np.array(scores)
        gates = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        e = sum(g * c for g, c in zip(gates, facts))
        xi = w["memory.input.weight"] @ e + w["memory.input.bias"]
        hh = w["memory.hidden.weight"] @ m + w["memory.hidden.bias"]
        r = sigmoid(xi[:d] + hh[:d])
        u = sigmoid(xi[d:2 * d] + hh[d:2 * d])
        candidate = np.tanh(xi[2 * d:] + r * hh[2 * d:])
        m = (1 - u) * candidate + u * m
        logits = w["answer.weight"] @ np.concatenate([m, q]) + w["answer.bias"]
        for key, value in (("scores", scores), ("gates", gates), ("episodes", e), ("logits", logits)):
            out[key].append(value)
    return {k: np.array(v) for k, v in out.items()}


def test_passes_match_a_float64_recomputation_from_the_weights(task):
    model = make(task, seed=3)
    batch = task.sample(4, seed=1)
    run = model.passes(batch.inputs)
    logits = model(batch.inputs)
    S = batch.inputs.shape[1] - 1
    assert run.attention.shape == run.scores.shape == (4, 3, S) and run.facts.shape == (4, S, 6)
    assert run.episodes.shape == (4, 3, 6) and run.memories.shape == (4, 4, 6) and logits.shape == batch.targets.shape
    assert (logits[:, 1:] == 0).all()
    for i in range(4):
        n = int(batch.lengths[i]) - 1
        want = reference(model, batch.inputs[i, : n + 1].numpy())
        np.testing.assert_allclose(run.scores[i, :, :n].detach().numpy(), want["scores"], atol=1e-5)
        np.testing.assert_allclose(run.attention[i, :, :n].detach().numpy(), want["gates"], atol=1e-6)
        np.testing.assert_allclose(run.facts[i, :n].detach().numpy(), want["facts"], atol=1e-6)
        np.testing.assert_allclose(run.episodes[i].detach().numpy(), want["episodes"], atol=1e-6)
        np.testing.assert_allclose(run.pass_logits[i].detach().numpy(), want["logits"], atol=1e-5)
        np.testing.assert_allclose(logits[i, 0].detach().numpy(), want["logits"][-1], atol=1e-5)
        assert (run.attention[i, :, n:] == 0).all() and torch.isinf(run.scores[i, :, n:]).all()
        assert (run.facts[i, n:] == 0).all()  # a padding sentence is no fact
    np.testing.assert_allclose(run.memories[:, 0].detach().numpy(), run.question.detach().numpy())  # m^0 = q


# ---- supervised gates (the paper's training) ------------------------------------------------------

def test_the_fact_chain_goes_from_the_question_to_the_answer(task):
    """Pass 1's target is the fact naming the asked object, pass 2's its carrier's move, whichever
    comes first in the story; a pass beyond the chain has none (-1)."""
    stories = [(["mary went to the kitchen", "john went to the garden", "mary took the apple"], [2, 0]),
               (["mary took the apple", "mary went to the kitchen", "mary dropped the apple",
                 "mary went to the garden"], [2, 1]),
               (["john went to the hallway", "john picked up the apple", "john went to the garden"], [1, 2])]
    rows = [task.story_inputs(sentences, "where is the apple ?") for sentences, _ in stories]
    for row, (_, chain) in zip(rows, stories):
        assert task.fact_chain(row) == chain
        assert sorted(chain) == task.supporting_facts(row)
    T = max(len(r) for r in rows)
    inputs = np.zeros((3, T, rows[0].shape[1]), np.float32)
    for b, r in enumerate(rows):
        inputs[b, : len(r)] = r
    batch = Batch(torch.from_numpy(inputs), torch.zeros(3, T, task.output_size), torch.zeros(3, T),
                  torch.tensor([len(r) for r in rows]))
    assert task.fact_targets(batch, 3).tolist() == [[2, 0, -1], [2, 1, -1], [1, 2, -1]]
    assert task.fact_targets(batch, 1).tolist() == [[2], [2], [1]]
    single = get_task("babi_single", people=3, places=4)
    row = single.story_inputs(["mary went to the kitchen", "john went to the garden"], "where is mary ?")
    assert single.fact_chain(row) == [0]


def test_supervised_gates_add_the_gates_cross_entropy_to_the_answers_loss(task):
    """outputs_and_loss: the answer's cross-entropy, plus gate_supervision x the sum over the
    passes with a target of -log(gate on that fact), the gates recomputed in float64."""
    batch = task.sample(5, seed=4)
    targets = task.fact_targets(batch, 3).numpy()
    plain = make(task, seed=2)
    logits, loss = plain.outputs_and_loss(task, batch)
    torch.testing.assert_close(logits, plain(batch.inputs))
    torch.testing.assert_close(loss, task.sequence_loss(logits, batch))
    supervised = make(task, seed=2, gate_supervision=0.5)
    logits, loss = supervised.outputs_and_loss(task, batch)
    for i in range(5):
        n = int(batch.lengths[i])
        want = reference(supervised, batch.inputs[i, :n].numpy())
        answer = -np.log(np.exp(want["logits"][-1]) / np.exp(want["logits"][-1]).sum())[int(batch.targets[i, 0].argmax())]
        gates = -sum(np.log(want["gates"][e, f]) for e, f in enumerate(targets[i]) if f >= 0)
        assert (targets[i] >= 0).sum() == 2
        assert float(loss[i].detach()) == pytest.approx(answer + 0.5 * gates, rel=1e-5)
    loss.sum().backward()
    assert supervised.gate_hidden.weight.grad.abs().sum() > 0


def test_supervised_gates_learn_two_supporting_facts_where_the_answer_alone_does_not(task):
    """The same DMN, seeds and batches through the Trainer: with the gates' supervision it
    answers two-fact stories; from the answer alone, in as many steps, it does not yet."""
    errors = {}
    for weight in (0.0, 1.0):
        model = build_model(DMNConfig.for_task(task, embedding_size=16, passes=3, gate_supervision=weight),
                            seeds=[0, 1])
        Trainer(model, task, seeds=[0, 1], batch_size=32, lr=0.01).run(300)
        errors[weight] = [r.bit_errors for r in evaluate(model, task, stream="validation", samples=300)]
    assert max(errors[1.0]) < 0.1
    assert min(errors[0.0]) > 0.25


def test_the_memory_gru_is_torchs_gru_cell():
    cell = StackedGRUCell(2, 5, 4)
    x, h = torch.randn(6, 5), torch.randn(6, 4)
    out = cell(x, h)
    for k in range(2):
        ref = torch.nn.GRUCell(5, 4)
        with torch.no_grad():
            ref.weight_ih.copy_(cell.input.weight[k])
            ref.bias_ih.copy_(cell.input.bias[k])
            ref.weight_hh.copy_(cell.hidden.weight[k])
            ref.bias_hh.copy_(cell.hidden.bias[k])
        torch.testing.assert_close(out[3 * k: 3 * k + 3], ref(x[3 * k: 3 * k + 3], h[3 * k: 3 * k + 3]))


def test_the_question_and_memory_steer_the_gates(task):
    """Changing only the question changes the first pass's gates; the gates of later passes depend
    on the memory: with the memory GRU's weights changed, pass 1 stays and pass 2 moves."""
    model = make(task, seed=1)
    batch = task.sample(2, seed=3)
    before = model.passes(batch.inputs)
    other = batch.inputs.clone()
    for i in range(2):  # ask about the other object
        asked = task.text(batch.inputs[i, 0]).split()[3]
        other[i, 0] = torch.tensor(task.ids(f"where is the {'apple' if asked == 'football' else 'football'} ?"))
    assert not torch.equal(other[:, 0], batch.inputs[:, 0])
    assert not torch.allclose(model.passes(other).attention[:, 0], before.attention[:, 0])
    with torch.no_grad():
        model.memory.input.weight.mul_(3.0)
    after = model.passes(batch.inputs)
    torch.testing.assert_close(after.attention[:, 0], before.attention[:, 0])
    assert not torch.allclose(after.attention[:, 1], before.attention[:, 1])


def test_bad_inputs_and_settings_are_refused(task):
    model = make(task)
    with pytest.raises(ConfigError, match="does not fit 7 facts"):
        model(torch.ones(1, 9, 6))
    with pytest.raises(ConfigError, match="word ids must be in"):
        model(torch.full((1, 3, 6), 99.0))
    with pytest.raises(ConfigError, match="passes must be a positive integer"):
        DMNConfig.for_task(task, passes=0)
    with pytest.raises(ConfigError, match="a dynamic memory network reads stories"):
        model_config("dmn", get_task("copy"))
    c = DMNConfig.for_task(task, passes=2)
    assert from_dict(json.loads(json.dumps(to_dict(c)))) == c and to_dict(c)["kind"] == "dmn"
    assert DMNConfig.for_task(task).passes == 3  # the default


def test_seed_ensemble_members_are_the_single_models(task):
    c = DMNConfig.for_task(task, embedding_size=5)
    ensemble = build_model(c, seeds=[3, 4])
    batch = task.sample(3, seed=0)
    out = ensemble(torch.cat([batch.inputs, batch.inputs]))
    for k, seed in enumerate([3, 4]):
        single = build_model(c, seeds=[seed])
        torch.testing.assert_close(out[3 * k: 3 * k + 3], single(batch.inputs), atol=1e-6, rtol=0)


def test_the_declaration():
    assert FAMILY.memory == "read-only" and FAMILY.slot_labels and FAMILY.steps == "passes"
    read = FAMILY.group("read")
    assert read.stage_names == ("scores", "weights") and read.reads and read.normalised and read.count == 1
    assert [s.signed for s in read.stages] == [True]  # w2 . tanh(...) + b2 may be < 0
    assert Family.from_dict(json.loads(json.dumps(FAMILY.to_dict()))) == FAMILY


# ---- training, recording, files ---------------------------------------------------------------

def test_a_short_training_run_learns_single_fact():
    task = get_task("babi_single", people=2, places=3, min_sentences=1, max_sentences=4)
    model = build_model(DMNConfig.for_task(task, embedding_size=16, passes=2), seeds=[0])
    trainer = Trainer(model, task, seeds=[0], batch_size=32, lr=0.01)
    trainer.run(300)
    score = evaluate(model, task, stream="validation", samples=300)[0]
    assert score.bit_errors < 0.1  # chance is 2/3 wrong


@pytest.fixture
def trained(tmp_path_factory):
    """A DMN trained for a few steps through the real Trainer, saved and loaded back."""
    task = get_task("babi_two", people=3, places=4, objects=2, min_sentences=3, max_sentences=7)
    model = build_model(DMNConfig.for_task(task, embedding_size=8, passes=3), seeds=[0, 1])
    trainer = Trainer(model, task, seeds=[0, 1], batch_size=16, lr=0.01)
    trainer.run(20)
    path = checkpoint.save(tmp_path_factory.mktemp("dmn") / "dmn.safetensors", model, task=task, member=1)
    return checkpoint.load(path, device="cpu"), model.member(1).eval(), task, path


def test_checkpoint_round_trip(trained):
    ckpt, model, task, path = trained
    assert isinstance(ckpt.model, DMN) and ckpt.config == model.config and ckpt.task == task
    batch = task.sample(3, seed=5)
    assert torch.equal(ckpt.model(batch.inputs), model(batch.inputs))
    with open(path, "rb") as f:
        assert b"pickle" not in f.read(2000)


def test_a_recorded_story_is_its_passes_over_its_facts(trained, tmp_path):
    ckpt, model, task, _ = trained
    stories = task.stories(3, seed=2)
    batch = stories.batch
    episodes = record(ckpt.model, batch, task=task)
    for i, ep in enumerate(episodes):
        n = int(batch.lengths[i]) - 1
        sentences, question, answer = task.story_text(batch, i)
        assert ep.family.name == "dmn" and ep.steps == 3 and ep.static_memory and ep.memory.shape == (n, 8)
        assert ep.slot_labels == sentences and ep.meta["question"] == question and ep.meta["answer"] == answer
        assert ep.meta["supporting"] == [f for f in stories.supporting[i].tolist() if f >= 0]
        assert ep.mask.tolist() == [0, 0, 1] and ep.outputs.shape == (3, task.output_size)
        # the episode's own arrays, in float64: the gates are the softmax of the scores, and each
        # pass's read vector (its episode) is the gates' weighted sum of the facts
        scores = ep.read.stages["scores"].astype(np.float64)
        gates = np.exp(scores - scores.max(-1, keepdims=True))
        gates /= gates.sum(-1, keepdims=True)
        np.testing.assert_allclose(ep.read.weights, gates, atol=1e-6)
        np.testing.assert_allclose(ep.reads, ep.read.weights.astype(np.float64) @ ep.memory.astype(np.float64),
                                   atol=1e-5)
        # and against the float64 recomputation from the model's weights
        want = reference(model, batch.inputs[i, : n + 1].numpy())
        np.testing.assert_allclose(ep.read.stages["scores"][:, 0], want["scores"], atol=1e-5)  # raw, signs and all
        np.testing.assert_allclose(ep.read.weights[:, 0], want["gates"], atol=1e-6)
        np.testing.assert_allclose(ep.memory, want["facts"], atol=1e-6)
        p = np.exp(want["logits"] - want["logits"].max(-1, keepdims=True))
        np.testing.assert_allclose(ep.outputs, p / p.sum(-1, keepdims=True), atol=1e-6)
        assert ep.meta["model_answer"] == task.answer_words[int(want["logits"][-1].argmax())]
        assert ep.score() == float(ep.meta["model_answer"] != answer)
    loaded = Episode.load(episodes[1].save(tmp_path / "story.safetensors"))
    assert loaded.family == episodes[1].family and loaded.slot_labels == episodes[1].slot_labels
    for name, a in episodes[1].arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[name], a)
    assert [m.name for m, _ in readings(loaded)] == ["pass_support", "every_fact"]


# ---- the mechanism ---------------------------------------------------------------------------

def story(task, seed=0):
    stories = task.stories(1, seed=seed)
    n = int(stories.batch.lengths[0]) - 1
    return stories.batch.inputs[0, : n + 1].numpy(), [f for f in stories.supporting[0].tolist() if f >= 0], n


def gates_peaking_on(peaks: list[int], n: int) -> np.ndarray:
    read = np.full((len(peaks), 1, n), 0.2 / (n - 1))
    for e, slot in enumerate(peaks):
        read[e, 0, slot] = 0.8
    return read


def test_the_pass_mechanisms_on_constructed_gates():
    task = get_task("babi_two", max_sentences=8)
    inputs, facts, n = story(task, seed=4)
    assert len(facts) == 2 and task.supporting_facts(inputs) == facts
    other = next(i for i in range(n) if i not in facts)
    empty = np.zeros((0, 1, n))

    def values(peaks):
        r = task.measure_mechanisms(Trace(inputs, gates_peaking_on(peaks, n), empty))
        return r["pass_support"].value, r["every_fact"].value

    assert values([facts[1], facts[0], other]) == (1.0, 1.0)  # the paper's two passes, one fact each
    assert values([facts[0], facts[0], other]) == (1.0, 0.0)  # one fact found, the other never
    assert values([other, other, other]) == (0.0, 0.0)  # the peaks miss the story's facts
    note = task.measure_mechanisms(Trace(inputs, gates_peaking_on([other] * 3, n), empty))["pass_support"].note
    assert str(facts) in note and str([other] * 3) in note


def test_measure_reads_the_gates_of_held_out_stories(task):
    """mechanisms.measure on a DMN: its pass lines (not the memory network's), and their values
    are what the gates and the generator's supporting facts give, counted here directly."""
    model = make(task, seed=2)
    report = measure(model, task, stream="test", seed=5, samples=40, batch_size=20)[0]
    assert [r.mechanism.name for r in report.results] == ["pass_support", "every_fact"]
    some = every = 0
    for index in range(2):
        stories = task.stories(20, seed=stream_seed("test", 5, index))
        gates = model.passes(stories.batch.inputs).attention.detach().numpy()
        for i in range(20):
            peaks = set(gates[i].argmax(-1).tolist())
            facts = {f for f in stories.supporting[i].tolist() if f >= 0}
            some += bool(peaks & facts)
            every += facts <= peaks
    assert report.results[0].value == pytest.approx(some / 40) and report.results[1].value == pytest.approx(every / 40)
    assert report.results[0].samples == 40


# ---- the CLI ------------------------------------------------------------------------------------

def test_cli_train_eval_and_record(tmp_path, capsys):
    out = tmp_path / "dmn.safetensors"
    assert main(["train", "--model", "dmn", "--task", "babi_single", "--task-option", "max_sentences=5",
                 "--seeds", "0,1", "--steps", "20", "--batch-size", "8", "--passes", "2", "--embedding-size", "8",
                 "--checkpoint-every", "10", "--eval-samples", "20", "--validation-samples", "20",
                 "--out", str(out), "--quiet"]) == 0
    assert "answer error rate (validation" in capsys.readouterr().out
    first = tmp_path / "dmn-seed0.safetensors"
    ckpt = checkpoint.load(first, device="cpu")
    assert ckpt.config.passes == 2 and ckpt.config.memory_slots == 5 and isinstance(ckpt.model, DMN)
    assert main(["eval", "--checkpoint", str(first), "--samples", "30", "--seed", "123"]) == 0
    text = capsys.readouterr().out
    assert "answer error rate" in text and "a pass's gates peak on a supporting fact" in text
    assert "hops attend to a supporting fact" not in text  # the memory network's line is not a DMN's
    assert main(["record", "--checkpoint", str(first), "--seed", "3", "--out", str(tmp_path / "e.safetensors")]) == 0
    ep = Episode.load(tmp_path / "e.safetensors")
    assert ep.family.name == "dmn" and ep.steps == 2 and len(ep.slot_labels) == ep.read.weights.shape[-1]


@pytest.mark.parametrize("argv, message", [
    (["--task", "babi_single", "--passes", "0"], "passes must be a positive integer"),
    (["--task", "copy"], "a dynamic memory network reads stories"),
])
def test_cli_refuses_bad_settings_in_one_line(argv, message, tmp_path, capsys):
    assert main(["train", "--model", "dmn", *argv, "--steps", "1", "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


# ---- beside the shipped memory network ----------------------------------------------------------

def test_a_dmn_and_a_memn2n_episode_of_the_same_story(tmp_path):
    """The shipped MemN2N and a DMN on its task record the same story: both files load, carry the
    same sentences as slot labels, question, answer and supporting facts, and each is measured by
    its own family's mechanism."""
    memn2n = checkpoint.load(checkpoint_path("babi_single-memn2n"), device="cpu")
    task = memn2n.task
    dmn = build_model(DMNConfig.for_task(task), seeds=[0])
    batch = task.sample(1, seed=11)
    paths = {}
    for name, model in (("memn2n", memn2n.model), ("dmn", dmn)):
        paths[name] = record(model, batch, task=task)[0].save(tmp_path / f"{name}.safetensors")
    a, b = Episode.load(paths["memn2n"]), Episode.load(paths["dmn"])
    assert (a.family.name, b.family.name) == ("memn2n", "dmn")
    sentences, question, answer = task.story_text(batch, 0)
    assert a.slot_labels == b.slot_labels == sentences
    for key in ("question", "answer", "supporting", "task"):
        assert a.meta[key] == b.meta[key]
    assert a.meta["question"] == question and a.meta["answer"] == answer
    assert a.read.weights.shape[-1] == b.read.weights.shape[-1] == len(sentences)
    assert [m.name for m, _ in readings(a)] == ["support"]
    assert [m.name for m, _ in readings(b)] == ["pass_support", "every_fact"]


def test_the_explorer_draws_a_dmn_story_from_its_declaration(task):
    """No code of its own under ntmviz/app/: the explorer, a figure and an export take a DMN
    episode as they take any family's, the sentences as slot labels, the scores as a stage."""
    from html import unescape

    import panel as pn
    from bokeh.document import Document
    from pyviz_comms import Comm

    from ntmviz.app import Explorer
    from ntmviz.app.export import export_html_string
    from ntmviz.app.figures import figure

    ep = record(make(task, seed=4), task.sample(1, seed=6), task=task)[0]
    explorer = Explorer(ep)
    pn.panel(explorer).get_root(Document(), Comm())
    assert unescape(explorer.heading) == "## ntmviz: inside a Dynamic memory network"
    for t in range(ep.steps):
        explorer.state.t = t
        head = explorer.focus.frame()["heads"]["read 1"]
        np.testing.assert_array_equal(head["scores"], ep.read.stages["scores"][t, 0])
        np.testing.assert_array_equal(head["weights"], ep.read.weights[t, 0])
    assert ep.slot_labels[0] in figure(ep, "memory", 1).svg()
    page = export_html_string(ep)
    assert '"name": "dmn"' in page or '"name":"dmn"' in page
