"""Tests for the encoder-decoder with additive attention (Bahdanau, Cho & Bengio 2015) and its
no-attention baseline: the model against a float64 loop of the paper's equations, the recorded
episode against a float64 recomputation from its own arrays and the model's weights, files, the
seed ensemble, a short run through the real Trainer and the CLI, the alignment mechanism on
constructed attention, symbol reversal, and the by-length table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ntmviz import checkpoint
from ntmviz.cli import main
from ntmviz.config import Seq2SeqConfig, TrainConfig, from_dict, to_dict
from ntmviz.contract import Family
from ntmviz.episode import Episode, record
from ntmviz.errors import ConfigError
from ntmviz.mechanisms import describe_for_cli, readings, trace_of
from ntmviz.models import build_model, family
from ntmviz.models.seq2seq import ATTENTION, NO_ATTENTION, Seq2Seq, delimiters
from ntmviz.tasks import get_task
from ntmviz.tasks.alignment import SymbolReversal, by_length, length_table
from ntmviz.tasks.mechanism import Trace
from ntmviz.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_model(task, seed=0, models=1, dtype=torch.float64, **changes) -> Seq2Seq:
    torch.manual_seed(seed)
    sizes = dict(encoder_size=5, decoder_size=4, attention_size=3)
    return Seq2Seq(Seq2SeqConfig.for_task(task, **{**sizes, **changes}), models).to(dtype)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference(model: Seq2Seq, x: np.ndarray, k: int = 0) -> dict[str, np.ndarray]:
    """The paper's equations for one sequence x [T, I] with model k's weights, in float64 numpy,
    a step and a position at a time: logits [T, O] and, with attention, every output step's raw
    energies, weights, context and query."""
    w = {name: p.detach()[k].double().numpy() for name, p in model.named_parameters()}
    c = model.config
    H = c.encoder_size

    def gru(prefix, inp, h):
        gi = w[f"{prefix}.input.weight"] @ inp + w[f"{prefix}.input.bias"]
        gh = w[f"{prefix}.hidden.weight"] @ h + w[f"{prefix}.hidden.bias"]
        U = h.shape[0]
        r = sigmoid(gi[:U] + gh[:U])
        z = sigmoid(gi[U:2 * U] + gh[U:2 * U])
        n = np.tanh(gi[2 * U:] + r * gh[2 * U:])
        return (1 - z) * n + z * h

    T = x.shape[0]
    L = int(np.flatnonzero(x[:, -1] > 0.5)[0])
    f, b = [None] * L, [None] * L
    h = np.zeros(H)
    for j in range(L):
        h = f[j] = gru("forward_rnn", x[j], h)
    h = np.zeros(H)
    for j in reversed(range(L)):
        h = b[j] = gru("backward_rnn", x[j], h)
    ann = [np.concatenate([f[j], b[j]]) for j in range(L)]
    s = np.tanh(w["init.weight"] @ b[0] + w["init.bias"])
    y = np.zeros(c.output_size)
    out = np.zeros((T, c.output_size))
    rec = {"energies": [], "weights": [], "contexts": [], "queries": []}
    for t in range(L + 1, T):
        if c.attends:
            e = np.array([w["energy"] @ np.tanh(w["query.weight"] @ s + w["query.bias"]
                                                 + w["key.weight"] @ ann[j] + w["key.bias"]) for j in range(L)])
            a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
            ctx = sum(a[j] * ann[j] for j in range(L))
            rec["energies"].append(e)
            rec["weights"].append(a)
        else:
            ctx = np.concatenate([f[L - 1], b[0]])
        rec["queries"].append(s)
        rec["contexts"].append(ctx)
        s = gru("decoder", np.concatenate([y, ctx]), s)
        out[t] = w["output.weight"] @ np.concatenate([s, ctx, y]) + w["output.bias"]
        y = np.eye(c.output_size)[out[t].argmax()]
    return {"logits": out, "annotations": np.array(ann), **{k: np.array(v) for k, v in rec.items()}}


@pytest.fixture
def reversal():
    return SymbolReversal(symbols=5, min_length=2, max_length=6)


# ---- the equations ---------------------------------------------------------------------------

@pytest.mark.parametrize("attention", ["additive", "none"])
def test_forward_matches_the_papers_equations(reversal, attention):
    model = make_model(reversal, models=2, attention=attention)
    batch = reversal.sample(3, seed=4)
    assert len(set(batch.lengths.tolist())) > 1  # rows of different lengths, so padding is exercised
    x = torch.cat([batch.inputs, batch.inputs]).double()  # model k's rows k*3 .. k*3+2
    run = model.run(x)
    for p in range(6):
        k, n = p // 3, int(batch.lengths[p % 3])
        ref = reference(model, x[p, :n].numpy(), k)
        np.testing.assert_allclose(run.logits[p, :n].detach().numpy(), ref["logits"], rtol=1e-10, atol=1e-12)
        assert torch.all(run.logits[p, : int(run.lengths[p]) + 1] == 0)  # the input phase and the delimiter
        L = int(run.lengths[p])
        np.testing.assert_allclose(run.annotations[p, :L].detach().numpy(), ref["annotations"], atol=1e-12)
        J = n - L - 1
        np.testing.assert_allclose(run.queries[p, :J].detach().numpy(), ref["queries"], atol=1e-12)
        np.testing.assert_allclose(run.contexts[p, :J].detach().numpy(), ref["contexts"], atol=1e-12)
        if attention == "additive":
            np.testing.assert_allclose(run.energies[p, :J, :L].detach().numpy(), ref["energies"], atol=1e-12)
            np.testing.assert_allclose(run.weights[p, :J, :L].detach().numpy(), ref["weights"], atol=1e-12)
            assert torch.all(run.weights[p, :, L:] == 0)  # no weight past the row's own tokens


def test_a_row_does_not_depend_on_padding_or_other_rows(reversal):
    model = make_model(reversal)
    batch = reversal.sample(4, seed=2)
    alone = model(batch.inputs[:1, : int(batch.lengths[0])].double())
    padded = torch.cat([batch.inputs.double(), torch.zeros(4, 5, reversal.input_size, dtype=torch.float64)], 1)
    together = model(padded)
    torch.testing.assert_close(together[0, : int(batch.lengths[0])], alone[0], rtol=0, atol=1e-12)


def test_gradients_reach_every_weight(reversal):
    model = make_model(reversal, dtype=torch.float32)
    batch = reversal.sample(8, seed=0)
    reversal.loss(model(batch.inputs), batch).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_the_delimiter_finds_the_input(reversal):
    batch = reversal.sample(5, seed=1)
    assert delimiters(batch.inputs).tolist() == ((batch.lengths - 1) // 2).tolist()
    x = batch.inputs.clone()
    x[0, 0] = 0
    x[0, 0, -1] = 1
    with pytest.raises(ConfigError, match="no input"):
        delimiters(x)


def test_seed_ensemble_members_are_the_single_models(reversal):
    config = Seq2SeqConfig.for_task(reversal, encoder_size=6, decoder_size=5, attention_size=4)
    ensemble = build_model(config, seeds=[3, 7])
    single = build_model(config, seeds=[7])
    batch = reversal.sample(4, seed=0)
    both = ensemble(torch.cat([batch.inputs, batch.inputs]))
    torch.testing.assert_close(both[4:], single(batch.inputs))


# ---- configuration and declaration -------------------------------------------------------------

def test_config_round_trips_and_refuses_bad_settings(reversal):
    config = Seq2SeqConfig.for_task(reversal, attention="none")
    assert from_dict(json.loads(json.dumps(to_dict(config)))) == config
    assert not config.attends and config.feedback == "answer"
    assert Seq2SeqConfig.for_task(get_task("copy")).feedback == "bits"
    with pytest.raises(ConfigError, match="attention"):
        Seq2SeqConfig.for_task(reversal, attention="dot")
    with pytest.raises(ConfigError, match="anbn"):
        Seq2SeqConfig.for_task(get_task("anbn"))  # no delimiter between an input and an output
    with pytest.raises(ConfigError, match="encoder_size"):
        Seq2SeqConfig.for_task(reversal, encoder_size=0)


def test_the_declarations():
    for declared in (ATTENTION, NO_ATTENTION):
        assert Family.from_dict(json.loads(json.dumps(declared.to_dict()))) == declared
    registered = family("seq2seq")
    config = Seq2SeqConfig(9, 8)
    assert registered.resolve(config) == ATTENTION
    assert type(registered.resolve(config)) is Family  # what an episode file gives back
    assert registered.resolve(Seq2SeqConfig(9, 8, attention="none")) == NO_ATTENTION
    group = ATTENTION.group("attention")
    assert group.reads and group.stage_names == ("energy", "weights") and not NO_ATTENTION.has_memory
    assert [s.signed for s in group.stages] == [True]  # energies may be < 0: drawn from a centre line


# ---- recording -----------------------------------------------------------------------------------

@pytest.fixture
def episodes(reversal):
    model = make_model(reversal, dtype=torch.float32, encoder_size=6)
    batch = reversal.sample(4, seed=5)
    return model, batch, record(model, batch, task=reversal)


def test_recorded_attention_is_the_papers_from_the_episodes_own_arrays(episodes, reversal):
    model, batch, eps = episodes
    w = {name: p.detach()[0].double().numpy() for name, p in model.named_parameters()}
    for b, ep in enumerate(eps):
        ep.validate()
        n, L = int(batch.lengths[b]), (int(batch.lengths[b]) - 1) // 2
        assert ep.steps == n and ep.memory.shape == (L, 2 * model.config.encoder_size) and ep.static_memory
        assert ep.slot_labels == reversal.input_of(batch.inputs[b, :n].numpy())
        head = ep.heads["attention"]
        memory = ep.memory.astype(np.float64)
        for t in range(n):
            if t <= L:  # the encoder's steps and the delimiter: the decoder has not started
                assert not head.weights[t].any() and not head.energy[t].any() and not ep.reads[t].any()
                continue
            query = head.query[t, 0].astype(np.float64)
            e = np.array([w["energy"] @ np.tanh(w["query.weight"] @ query + w["query.bias"]
                                                 + w["key.weight"] @ m + w["key.bias"]) for m in memory])
            np.testing.assert_allclose(head.energy[t, 0], e, atol=1e-5)  # as computed, signs and all
            a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
            np.testing.assert_allclose(head.weights[t, 0], a, atol=1e-6)
            np.testing.assert_allclose(ep.reads[t, 0], a @ memory, atol=1e-5)  # the context
        probs = ep.outputs[L + 1:]
        np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
        assert ep.meta["model_text"] == " ".join(reversal.output_tokens[i] for i in probs.argmax(-1))


def test_episodes_save_and_load(episodes, tmp_path):
    _, _, eps = episodes
    ep = eps[0]
    loaded = Episode.load(ep.save(tmp_path / "s2s.safetensors"))
    assert loaded.family == ep.family == ATTENTION
    assert loaded.slot_labels == ep.slot_labels
    for name, a in ep.arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[name], a)
    assert loaded.score() == ep.score()


def test_without_attention_the_episode_has_no_memory(reversal, tmp_path):
    model = make_model(reversal, dtype=torch.float32, attention="none")
    batch = reversal.sample(2, seed=0)
    ep = record(model, batch, task=reversal)[0]
    assert ep.family == NO_ATTENTION and ep.memory is None and not ep.heads and ep.slot_labels is None
    assert Episode.load(ep.save(tmp_path / "none.safetensors")).family == NO_ATTENTION
    text, data = describe_for_cli(model, reversal, samples=4)
    assert "no memory" in text and data == {"note": text}


def test_the_baseline_is_the_attention_model_without_its_attention(reversal):
    """The same weights, minus the attention's W, U and v."""
    with_attention = dict(make_model(reversal, attention="additive").named_parameters())
    without = dict(make_model(reversal, attention="none").named_parameters())
    assert set(with_attention) - set(without) == {"query.weight", "query.bias", "key.weight", "key.bias", "energy"}
    assert set(without) < set(with_attention)
    assert all(without[k].shape == with_attention[k].shape for k in without)


# ---- what the heads did -----------------------------------------------------------------------------

def constructed(task, text: str, peaks) -> Trace:
    """A trace of one typed input whose attention at output step j is all on input position peaks[j]."""
    batch = task.typed_batch(text)
    inputs = batch.inputs[0].numpy()
    L = int(np.flatnonzero(inputs[:, -1])[0])
    read = np.zeros((inputs.shape[0], 1, L), np.float32)
    for j, p in enumerate(peaks):
        read[L + 1 + j, 0, p] = 1
    return Trace(inputs, read, np.zeros((inputs.shape[0], 0, L), np.float32))


def test_the_alignment_mechanism_on_constructed_attention(reversal):
    right = reversal.measure_mechanisms(constructed(reversal, "a b c d e", [4, 3, 2, 1, 0]))["aligned"]
    assert right.value == 1.0
    wrong = reversal.measure_mechanisms(constructed(reversal, "a b c d e", [0, 1, 2, 3, 4]))["aligned"]
    assert wrong.value == pytest.approx(1 / 5)  # only the middle one lines up
    assert "missed outputs 0, 1, 3, 4" in wrong.note
    dates = get_task("dates")
    # "3 march 1999" -> 1999-03-03: year from 8..11, month from 2..6, day from 0; the '-' and the day's
    # leading zero copy nothing (where the attention is then does not count)
    good = [9, 8, 10, 11, 0, 2, 6, 5, 5, 0]
    assert dates.measure_mechanisms(constructed(dates, "3 march 1999", good))["aligned"].value == 1.0
    bad = [0] * 10  # everything on the day: only the day's one written digit is right
    reading = dates.measure_mechanisms(constructed(dates, "3 march 1999", bad))["aligned"]
    assert reading.value == pytest.approx(1 / 7) and "1 of 7" in reading.note


def test_mechanism_readings_of_a_recorded_episode(episodes, reversal):
    _, batch, eps = episodes
    ep = eps[0]
    trace = trace_of(ep)
    assert trace.read.shape == ep.heads["attention"].weights.shape and trace.write.shape[1] == 0
    (mechanism, reading), = readings(ep)
    assert mechanism.name == "aligned" and mechanism.threshold == 0.95
    L = (ep.steps - 1) // 2
    peaks = ep.heads["attention"].weights[:, 0].argmax(-1)
    expected = np.mean([peaks[L + 1 + j] == L - 1 - j for j in range(L)])
    assert reading.value == pytest.approx(expected)
    # the same episode with its attention put on the mirrored positions passes
    w = np.zeros_like(ep.heads["attention"].weights)
    for j in range(L):
        w[L + 1 + j, 0, L - 1 - j] = 1
    ep.heads["attention"].weights = w
    assert readings(ep)[0][1].value == 1.0


# ---- training, checkpoints, the command line ------------------------------------------------------------

def test_a_short_run_through_the_trainer_learns_and_saves(reversal, tmp_path):
    config = Seq2SeqConfig.for_task(reversal, encoder_size=16, decoder_size=16, attention_size=16)
    model = build_model(config, seeds=[0, 1])
    trainer = Trainer(model, reversal, seeds=[0, 1], batch_size=16, lr=1e-2)
    first = trainer.train_step()
    for _ in range(40):
        last = trainer.train_step()
    assert all(math.isfinite(x) for x in last.model_loss)
    assert last.loss < 0.8 * first.loss
    path = trainer.save(tmp_path / "s2s.safetensors", member=1)
    ckpt = checkpoint.load(path)
    batch = reversal.sample(3, seed=9)
    torch.testing.assert_close(ckpt.model(batch.inputs), model.member(1)(batch.inputs))
    assert ckpt.family == ATTENTION and ckpt.task == reversal


def test_the_command_line_end_to_end(tmp_path, capsys):
    out = tmp_path / "s2s.safetensors"
    common = ["--threads", "1", "--eval-samples", "8", "--encoder-size", "8", "--decoder-size", "8",
              "--attention-size", "8"]
    assert main(["train", "--model", "seq2seq", "--task", "dates", "--steps", "3", "--batch-size", "4",
                 "--out", str(out), *common]) == 0
    assert main(["eval", "--checkpoint", str(out), "--seed", "123", "--samples", "4"]) == 0
    text = capsys.readouterr().out
    assert "dd/mm/yy" in text and "the attention peaks on the input the output copies" in text
    episode = tmp_path / "x.episode"
    assert main(["record", "--checkpoint", str(out), "--input", "March 3rd, 1999", "--out", str(episode)]) == 0
    ep = Episode.load(episode)
    assert "".join(ep.slot_labels) == "march␣3rd,␣1999" and ep.meta["target_text"] == "1999-03-03"
    capsys.readouterr()
    assert main(["record", "--checkpoint", str(out), "--input", "31 february 2001", "--out", str(episode)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "february 2001 has 28 days" in err
    for bad, says in ((["--task", "anbn"], "anbn"), (["--task", "dates", "--attention", "dot"], "attention")):
        assert main(["train", "--model", "seq2seq", *bad, "--steps", "1", "--out", str(tmp_path / "b.safetensors"),
                     *common]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and err.count("\n") == 0
    assert not (tmp_path / "b.safetensors").exists()


def test_train_config_offers_the_settings():
    config = TrainConfig(task="symbol_reversal", model="seq2seq", attention="none", encoder_size=7)
    model_config = config.model_config(config.build_task())
    assert isinstance(model_config, Seq2SeqConfig) and model_config.encoder_size == 7 and not model_config.attends


# ---- symbol reversal --------------------------------------------------------------------------------------

def test_symbol_reversal_samples(reversal):
    batch = reversal.sample(16, seed=3)
    for b in range(16):
        n = int(batch.lengths[b])
        L = (n - 1) // 2
        assert reversal.min_length <= L <= reversal.max_length
        x = batch.inputs[b].numpy()
        assert x[L, -1] == 1 and x[:L, :-1].sum(-1).tolist() == [1] * L and not x[n:].any()
        mask = batch.mask[b].numpy()
        assert np.flatnonzero(mask).tolist() == list(range(L + 1, n))
        ids = x[:L, :-1].argmax(-1)
        assert batch.targets[b, L + 1: n].numpy().argmax(-1).tolist() == ids[::-1].tolist()
    torch.testing.assert_close(reversal.sample(4, seed=1).inputs, reversal.sample(4, seed=1).inputs)
    assert reversal.at(9).sample(3, seed=0).lengths.tolist() == [19, 19, 19]


def test_symbol_reversal_scores_tokens(reversal):
    batch = reversal.sample(2, seed=0)
    logits = 5 * (2 * batch.targets - 1)  # right everywhere it is scored
    assert reversal.bit_errors(logits, batch).tolist() == [0, 0]
    n, L = int(batch.lengths[0]), (int(batch.lengths[0]) - 1) // 2
    logits[0, L + 1] = torch.roll(logits[0, L + 1], 1)  # one wrong token
    assert reversal.bit_errors(logits, batch).tolist() == [1, 0]
    manual = -sum(torch.log_softmax(logits[0, t], -1)[int(batch.targets[0, t].argmax())] for t in range(L + 1, n))
    assert reversal.sequence_loss(logits, batch)[0].item() == pytest.approx(manual.item(), rel=1e-6)


def test_symbol_reversal_typed_input(reversal):
    for text in ("c a d b", "c,a,d,b", "CADB", " c  a d b "):
        assert reversal.parse(text) == (list("cadb"), list("bdac"))
    task, batch = reversal.typed("a b c d e e e")
    assert task.max_length == 7 and batch.inputs.shape == (1, 15, 6)
    for bad, says in (("a b z", "'z' is not a symbol"), ("", "type some symbols"), ("ab cd", "'ab'")):
        with pytest.raises(ConfigError, match=says) as err:
            reversal.parse(bad)
        assert "\n" not in str(err.value)
    assert reversal.sources(list("abcd")) == [(3,), (2,), (1,), (0,)]


# ---- by input length ----------------------------------------------------------------------------------------

def test_by_length_scores_every_model_on_the_same_sequences(reversal):
    tokens = reversal.symbols

    def oracle(inputs):  # the right answer, from the inputs alone
        out = torch.zeros(*inputs.shape[:2], tokens)
        for b in range(inputs.shape[0]):
            L = int(inputs[b, :, -1].argmax())
            ids = inputs[b, :L, :-1].argmax(-1)
            out[b, L + 1: 2 * L + 1] = 10 * torch.nn.functional.one_hot(ids.flip(0), tokens)
        return out

    def forgets(inputs):  # right up to 3 symbols, then its first output is wrong
        out = oracle(inputs)
        for b in range(inputs.shape[0]):
            L = int(inputs[b, :, -1].argmax())
            if L > 3:
                out[b, L + 1] = out[b, L + 1].roll(1)
        return out

    rows = by_length({"attention": oracle, "none": forgets}, reversal, [2, 3, 5], samples=30)
    assert [r.length for r in rows] == [2, 3, 5] and [r.samples for r in rows] == [30, 30, 30]
    assert [r.exact["attention"] for r in rows] == [1.0, 1.0, 1.0]
    assert [r.exact["none"] for r in rows] == [1.0, 1.0, 0.0]
    assert rows[2].token_errors["none"] == 1.0 and rows[2].token_rate["none"] == pytest.approx(1 / 5)
    lo, hi = rows[2].intervals["none"]
    assert lo == 0.0 and 0.05 < hi < 0.15  # Wilson's interval for 0 of 30
    table = length_table(rows)
    assert table.splitlines()[2].startswith("| 2 | 30 | 100.0% [")
    assert "| 5 | 30 | 100.0%" in table and "| 0.0% [0.0, 11.4] | 0.00 | 1.00 |" in table


def test_it_reads_bit_tasks_too():
    """On copy (bits, no tokens) it feeds back its thresholded bits and records without labels."""
    copy = get_task("copy", bits=3, min_length=2, max_length=4)
    model = make_model(copy, dtype=torch.float32)
    assert model.config.feedback == "bits"
    torch.testing.assert_close(model._feedback(torch.tensor([[0.3, -0.2, 0.0]])), torch.tensor([[1.0, 0.0, 0.0]]))
    batch = copy.sample(3, seed=0)
    ep = record(model, batch, task=copy)[0]
    ep.validate()
    n = int(batch.lengths[0])
    assert ep.slot_labels is None and ep.memory.shape[0] == (n - 1) // 2
    assert ((ep.outputs > 0) & (ep.outputs < 1)).all()  # sigmoid probabilities, per bit
