"""Tests for the end-to-end memory network: shapes, position and temporal encoding against
plain references, adjacent weight tying, the seed ensemble, a tiny training run, checkpoints,
the episode arrays, the supporting-fact mechanism and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ntmviz import checkpoint
from ntmviz.cli import main
from ntmviz.config import MemN2NConfig, from_dict, to_dict
from ntmviz.errors import ConfigError
from ntmviz.evaluate import evaluate
from ntmviz.episode import record
from ntmviz.models.memn2n import MemN2N, position_encoding
from ntmviz.tasks import Batch
from ntmviz.models import build_model
from ntmviz.tasks import get_task
from ntmviz.tasks.mechanism import Trace
from ntmviz.train import Trainer


def config_for(task, **kw) -> MemN2NConfig:
    return MemN2NConfig(task.input_size, task.output_size, task.vocab_size, task.required_slots(), **kw)


@pytest.fixture
def task():
    return get_task("babi_single", people=3, places=3, min_sentences=2, max_sentences=6)


def test_config_round_trip_and_bad_values(task):
    c = config_for(task, embedding_size=8, hops=2)
    assert from_dict(json.loads(json.dumps(to_dict(c)))) == c and to_dict(c)["kind"] == "memn2n"
    with pytest.raises(ConfigError, match="hops must be a positive integer"):
        MemN2NConfig(6, 3, 20, hops=0)
    with pytest.raises(ConfigError, match="vocabulary of more than 3"):
        MemN2NConfig(6, 3, 3)


def test_position_encoding_matches_the_paper():
    ids = torch.tensor([[4, 7, 2, 0, 0], [9, 0, 0, 0, 0]])
    d = 3
    l = position_encoding(ids, d)
    assert l.shape == (2, 5, 3)
    for s, J in ((0, 3), (1, 1)):
        for j in range(1, 6):
            for k in range(1, d + 1):
                want = (1 - j / J) - (k / d) * (1 - 2 * j / J) if j <= J else 0.0
                assert l[s, j - 1, k - 1].item() == pytest.approx(want, abs=1e-6)


def _reference(model: MemN2N, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The network in plain loops for one story of a K = 1 model: (answer logits [O], attention [H, S])."""
    c = model.config
    W, Tm = model.words[0].detach(), model.times[0].detach()
    ids = inputs.round().long()
    q, story = ids[0], [s for s in ids[1:] if (s > 0).any()]
    n = len(story)

    def embed(level, sentence):
        J = int((sentence > 0).sum())
        out = torch.zeros(c.embedding_size)
        for j in range(1, J + 1):
            for k in range(1, c.embedding_size + 1):
                out[k - 1] += ((1 - j / J) - (k / c.embedding_size) * (1 - 2 * j / J)) * W[level, sentence[j - 1], k - 1]
        return out

    u = embed(0, q)
    attention = []  # the answer read out after each hop is checked through the last one
    for h in range(c.hops):
        m = torch.stack([embed(h, s) + Tm[h, n - 1 - i] for i, s in enumerate(story)])
        out = torch.stack([embed(h + 1, s) + Tm[h + 1, n - 1 - i] for i, s in enumerate(story)])
        p = torch.softmax(m @ u, 0)
        u = u + p @ out
        attention.append(p)
    return W[c.hops, 1: c.output_size + 1] @ u, torch.stack(attention)


def test_forward_matches_a_plain_reference(task):
    torch.manual_seed(0)
    model = MemN2N(config_for(task, embedding_size=5, hops=3))
    batch = task.sample(5, seed=1)
    logits = model(batch.inputs)
    hops = model.hops(batch.inputs)
    assert logits.shape == batch.targets.shape and (logits[:, 1:] == 0).all()
    S = batch.inputs.shape[1] - 1
    assert hops.attention.shape == (5, 3, S) and hops.memory_out.shape == (5, 3, S, 5)
    for i in range(5):
        n = int(batch.lengths[i]) - 1
        want_logits, want_attention = _reference(model, batch.inputs[i])
        assert torch.allclose(logits[i, 0], want_logits, atol=1e-5)
        assert torch.allclose(hops.attention[i, :, :n], want_attention, atol=1e-6)
        assert (hops.attention[i, :, n:] == 0).all()  # padding sentences are no memories
        assert torch.allclose(hops.attention[i].sum(-1), torch.ones(3))


def test_adjacent_weight_tying(task):
    model = MemN2N(config_for(task, embedding_size=4, hops=3))
    c = model.config
    assert model.words.shape == (1, c.hops + 1, c.vocab_size, 4)  # A_1 (= B), C_1 (= A_2), C_2 (= A_3), C_3 (= W)
    assert model.times.shape == (1, c.hops + 1, c.memory_slots, 4)
    hops = model.hops(task.sample(3, seed=0).inputs)
    # the output memories of hop h are the input memories of hop h + 1
    assert torch.equal(hops.memory_out[:, :-1], hops.memory_in[:, 1:])
    # the answer weights are C_H: changing C_H's answer rows changes only the logits, not the attention
    with torch.no_grad():
        model.words[0, c.hops, 1: c.output_size + 1] += 1.0
    again = model.hops(task.sample(3, seed=0).inputs)
    assert torch.equal(again.attention, hops.attention) and not torch.equal(again.logits, hops.logits)


def test_temporal_encoding_counts_back_from_the_question(task):
    """Two stories with the same last sentence: its memory gets T[0] whatever comes before."""
    model = MemN2N(config_for(task, embedding_size=4, hops=1))
    a = torch.tensor([[[*task.ids("where is mary ?")], [*task.ids("mary went to the kitchen")],
                       [*task.ids("john went to the garden")], [0] * 6]], dtype=torch.float32)
    b = torch.tensor([[[*task.ids("where is mary ?")], [*task.ids("john went to the garden")],
                       [0] * 6, [0] * 6]], dtype=torch.float32)
    ma, mb = model.hops(a).memory_in[0, 0], model.hops(b).memory_in[0, 0]
    assert torch.allclose(ma[1], mb[0])  # "john went to the garden", last in both
    assert not torch.allclose(ma[0] - model.times[0, 0, 1], ma[0] - model.times[0, 0, 0])
    with torch.no_grad():
        model.times[0, 0, 1] += 1.0  # recency 1: only story a's first sentence
    assert torch.allclose(model.hops(a).memory_in[0, 0, 0], ma[0] + 1.0)
    assert torch.allclose(model.hops(b).memory_in[0, 0], mb)


def test_bad_inputs_are_refused(task):
    model = MemN2N(config_for(task))
    with pytest.raises(ConfigError, match="does not fit 6 memories"):
        model(torch.ones(1, 8, 6))
    with pytest.raises(ConfigError, match="word ids must be in"):
        model(torch.full((1, 3, 6), 99.0))


def test_seed_ensemble_members_are_the_single_models(task):
    c = config_for(task, embedding_size=6)
    ensemble = build_model(c, seeds=[3, 4])
    batch = task.sample(4, seed=0)
    both = torch.cat([batch.inputs, batch.inputs])
    out = ensemble(both)
    for k, seed in enumerate([3, 4]):
        single = build_model(c, seeds=[seed])
        assert torch.allclose(out[4 * k: 4 * k + 4], single(batch.inputs), atol=1e-6)
        assert torch.equal(ensemble.member(k).words, single.words)


def test_tiny_training_run_learns_single_fact():
    torch.set_num_threads(1)
    task = get_task("babi_single", people=2, places=3, min_sentences=1, max_sentences=4)
    model = build_model(config_for(task, embedding_size=16, hops=1), seeds=[0])
    trainer = Trainer(model, task, seeds=[0], batch_size=32, lr=0.02)
    trainer.run(300)
    score = evaluate(model, task, stream="validation", samples=300)[0]
    assert score.bit_errors < 0.1  # chance is 2/3 wrong


def test_checkpoint_round_trip(task, tmp_path):
    model = build_model(config_for(task, embedding_size=6, hops=2), seeds=[1, 2])
    path = checkpoint.save(tmp_path / "m.safetensors", model, task=task, member=1)
    ckpt = checkpoint.load(path, device="cpu")
    assert ckpt.config == model.config and ckpt.task == task and isinstance(ckpt.model, MemN2N)
    batch = task.sample(3, seed=5)
    assert torch.equal(ckpt.model(batch.inputs), model.member(1).eval()(batch.inputs))
    with open(path, "rb") as f:
        assert b"pickle" not in f.read(2000)


def test_recorded_story_is_its_hops_over_its_sentences(task):
    """A story recorded through the contract: each hop a step, each sentence a labelled slot, the
    output memories of hop 1 the static memory, only the last hop's readout scored."""
    torch.manual_seed(0)
    model = build_model(config_for(task, embedding_size=6, hops=3), seeds=[0, 1])
    batch = task.sample(3, seed=2)
    episodes = record(model, Batch.concat([batch, batch]), task=task)
    ep = episodes[3 + 1]  # model 1's answer to story 1 (rows are model major)
    n = int(batch.lengths[1]) - 1
    sentences, question, answer = task.story_text(batch, 1)
    assert ep.family.name == "memn2n" and ep.family.steps == "passes" and ep.measure == "answer_errors"
    assert ep.static_memory and ep.memory.shape == (n, 6)
    assert ep.read.weights.shape == (3, 1, n) and not ep.read.stages  # each hop is a step of its own
    np.testing.assert_allclose(ep.read.weights.sum(-1), 1.0, rtol=1e-5)
    assert ep.slot_labels == sentences and len(sentences) == n
    assert ep.outputs.shape == ep.targets.shape == (3, task.output_size)
    np.testing.assert_allclose(ep.outputs.sum(-1), 1.0, rtol=1e-5)
    assert (ep.targets.argmax(-1) == task.answer_words.index(answer)).all()
    assert ep.mask.tolist() == [0, 0, 1]
    meta = ep.meta
    assert (meta["question"], meta["answer"], meta["task"]) == (question, answer, "babi_single")
    assert meta["supporting"] == task.stories(3, seed=2).supporting[1].tolist()
    single = model.member(1)
    hops = single.hops(batch.inputs[1:2])
    np.testing.assert_allclose(ep.memory, hops.memory_out[0, 0, :n].detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ep.read.weights[:, 0], hops.attention[0, :, :n].detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ep.outputs[-1], torch.softmax(hops.logits[0], -1).detach().numpy(), rtol=1e-5)
    assert meta["model_answer"] == task.answer_words[int(hops.logits[0].argmax())]
    assert ep.score() == float(meta["model_answer"] != answer)


def test_supporting_fact_mechanism_reads_the_top_memory():
    task = get_task("babi_two", max_sentences=6)
    stories = task.stories(1, seed=0)
    n = int(stories.batch.lengths[0]) - 1
    inputs = stories.batch.inputs[0, : n + 1].numpy()
    facts = stories.supporting[0].tolist()
    on = np.full((3, 1, n), 0.1 / max(n - 1, 1))
    on[:, 0, facts[0]] = 0.9
    off = np.roll(on, 1, axis=-1) if (facts[0] + 1) % n not in facts else np.roll(on, 2, axis=-1)
    empty = np.zeros((0, 1, n))
    assert task.measure_mechanisms(Trace(inputs, on, empty))["support"].value == 1.0
    reading = task.measure_mechanisms(Trace(inputs, off, empty))["support"]
    assert reading.value == 0.0 and str(facts) in reading.note


def test_cli_train_and_eval(tmp_path, capsys):
    out = tmp_path / "story.safetensors"
    code = main(["train", "--model", "memn2n", "--task", "babi_single", "--task-option", "max_sentences=5",
                 "--task-option", "places=3", "--seeds", "0,1", "--steps", "20", "--batch-size", "8",
                 "--hops", "2", "--embedding-size", "8", "--checkpoint-every", "10", "--eval-samples", "20",
                 "--validation-samples", "20", "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "answer error rate (validation" in text
    first = tmp_path / "story-seed0.safetensors"
    ckpt = checkpoint.load(first, device="cpu")
    assert ckpt.config.hops == 2 and ckpt.config.memory_slots == 5 and ckpt.task.max_sentences == 5
    code = main(["eval", "--checkpoint", str(first), "--samples", "30", "--card", "--seeds-from", str(first),
                 str(tmp_path / "story-seed1.safetensors")])
    assert code == 0
    text = capsys.readouterr().out
    assert "answer error rate" in text and "hops attend to a supporting fact" in text
    card = first.with_suffix(".md").read_text()
    assert "2 seeds; answer error rate from" in card and '"kind": "memn2n"' in card


def test_cli_refuses_memn2n_on_a_sequence_task(capsys):
    assert main(["train", "--model", "memn2n", "--task", "copy", "--steps", "1"]) == 2
    assert "a memory network reads stories" in capsys.readouterr().err


def test_cli_record_writes_a_story_episode(task, tmp_path):
    """Hops are the episode's steps, the story's sentences its slots (labelled), the memory static."""
    from ntmviz.episode import Episode

    path = checkpoint.save(tmp_path / "m.safetensors", build_model(config_for(task), seeds=[0]), task=task)
    assert main(["record", "--checkpoint", str(path), "--out", str(tmp_path / "e.safetensors")]) == 0
    ep = Episode.load(tmp_path / "e.safetensors")
    assert ep.static_memory and ep.steps == config_for(task).hops
    assert len(ep.slot_labels) == ep.read.weights.shape[-1] and all(isinstance(x, str) for x in ep.slot_labels)
    np.testing.assert_allclose(ep.read.weights.sum(-1), 1.0, atol=1e-4)