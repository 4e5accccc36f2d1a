"""Tests for ntmviz.tasks: shapes, seeding, padding, the answers themselves (rebuilt in plain
Python from the inputs), scoring, the n-gram optimum on a hand-worked example, and config."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ntmviz.errors import ConfigError
from ntmviz.tasks import TASKS, Batch, Task, get_task, task_from_dict

NAMES = ["copy", "repeat_copy", "associative_recall", "ngrams", "priority_sort", "reversal", "bigram_flip",
         "allocation", "anbn", "anbncn", "anbncndn", "anb2n", "anbmcnm"]

# Small configurations whose sizes vary from item to item, so padding is exercised everywhere.
MIXED = {
    "copy": dict(min_length=1, max_length=7),
    "repeat_copy": dict(min_length=1, max_length=5, min_repeats=1, max_repeats=4),
    "associative_recall": dict(min_items=2, max_items=5),
    "ngrams": dict(min_length=8, sequence_length=40),
    "priority_sort": dict(min_inputs=3, max_inputs=20, outputs=6),
    "reversal": dict(min_length=2, max_length=7),
    "bigram_flip": dict(min_length=2, max_length=8),
    "allocation": dict(min_length=1, max_length=4, sequences=3),
    "anbn": dict(max_n=6), "anbncn": dict(max_n=6), "anbncndn": dict(max_n=5), "anb2n": dict(max_n=6),
    "anbmcnm": dict(min_n=2, max_n=6),
}


def mixed(name: str) -> Task:
    return get_task(name, **MIXED[name])


def rows(x: torch.Tensor) -> list[list[int]]:
    """A [T, W] tensor of bits as Python lists of ints."""
    return [[int(round(v)) for v in row] for row in x.tolist()]


# ---- the registry and configuration ---------------------------------------------------------

def test_registry_has_every_sequence_task():
    assert sorted(TASKS) == sorted(NAMES)
    for name in NAMES:
        task = get_task(name)
        assert task.name == name
        assert isinstance(task, Task)


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        get_task("sorting")
    for name in NAMES:
        assert name in str(err.value)


def test_unknown_field_is_a_config_error():
    with pytest.raises(ConfigError, match="max_lenght"):
        get_task("copy", max_lenght=5)


@pytest.mark.parametrize("name, bad", [
    ("copy", dict(min_length=0)),
    ("copy", dict(min_length=5, max_length=4)),
    ("copy", dict(bits=True)),
    ("copy", dict(max_length=2.5)),
    ("repeat_copy", dict(min_repeats=3, max_repeats=2)),
    ("repeat_copy", dict(repeat_scale=0)),
    ("associative_recall", dict(min_items=1)),
    ("associative_recall", dict(item_length=0)),
    ("ngrams", dict(sequence_length=5)),  # no generated bit after the 5-bit context
    ("ngrams", dict(n=1)),
    ("ngrams", dict(min_length=50, sequence_length=40)),
    ("priority_sort", dict(outputs=0)),
    ("priority_sort", dict(min_inputs=21)),
])
def test_impossible_configs_raise_one_line_config_errors(name, bad):
    with pytest.raises(ConfigError) as err:
        get_task(name, **bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_to_dict_round_trips_through_json(name):
    task = mixed(name)
    data = json.loads(json.dumps(task.to_dict()))
    assert data["name"] == name
    assert task_from_dict(data) == task
    assert task_from_dict(get_task(name).to_dict()) == get_task(name)


def test_task_from_dict_needs_a_name():
    with pytest.raises(ConfigError):
        task_from_dict({"max_length": 3})


def test_tasks_are_frozen():
    with pytest.raises(Exception):
        get_task("copy").max_length = 3


def test_paper_defaults():
    assert (get_task("copy").min_length, get_task("copy").max_length) == (1, 20)
    rc = get_task("repeat_copy")
    assert (rc.max_length, rc.max_repeats) == (10, 10)
    ar = get_task("associative_recall")
    assert (ar.bits, ar.item_length, ar.min_items, ar.max_items) == (6, 3, 2, 6)
    ng = get_task("ngrams")
    assert (ng.n, ng.sequence_length) == (6, 200)
    ps = get_task("priority_sort")
    assert (ps.min_inputs, ps.max_inputs, ps.outputs) == (20, 20, 16)


# ---- shapes, seeding, padding ----------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name):
    task = mixed(name)
    batch = task.sample(5, seed=0)
    assert isinstance(batch, Batch)
    B, T, I = batch.inputs.shape
    assert (B, I) == (5, task.input_size)
    assert batch.targets.shape == (5, T, task.output_size)
    assert batch.mask.shape == (5, T)
    assert batch.lengths.shape == (5,)
    assert batch.inputs.dtype == batch.targets.dtype == batch.mask.dtype == torch.float32
    assert batch.lengths.dtype == torch.int64
    assert int(batch.lengths.max()) == T
    assert len(task.input_labels) == task.input_size and len(task.output_labels) == task.output_size


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_batch_other_seed_other_batch(name):
    task = mixed(name)
    a, b, c = task.sample(6, seed=3), task.sample(6, seed=3), task.sample(6, seed=4)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert a.inputs.shape != c.inputs.shape or not torch.equal(a.inputs, c.inputs)


def test_generator_is_reproducible_and_advances():
    task = mixed("copy")
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    first, again = task.sample(8, generator=g1), task.sample(8, generator=g2)
    assert torch.equal(first.inputs, again.inputs)
    second = task.sample(8, generator=g1)
    assert first.inputs.shape != second.inputs.shape or not torch.equal(first.inputs, second.inputs)
    with pytest.raises(ConfigError):
        task.sample(8, seed=1, generator=g1)


def test_unseeded_samples_differ():
    task = get_task("copy")
    assert not torch.equal(task.sample(16).inputs[:, :1], task.sample(16).inputs[:, :1])


@pytest.mark.parametrize("name", NAMES)
def test_padding_is_zero_and_unscored_and_lengths_vary(name):
    task = mixed(name)
    batch = task.sample(32, seed=1)
    T = batch.inputs.shape[1]
    assert len(set(batch.lengths.tolist())) > 1
    for b, n in enumerate(batch.lengths.tolist()):
        assert batch.inputs[b, n:].abs().sum() == 0
        assert batch.targets[b, n:].abs().sum() == 0
        assert batch.mask[b, n:].sum() == 0
        assert batch.mask[b, n - 1] == 1  # every task is scored up to its last step
        assert batch.inputs[b, :n].abs().sum() > 0
    assert set(batch.mask.unique().tolist()) <= {0.0, 1.0}
    # Nothing is asked of unscored steps.
    if name != "ngrams" and task.measure != "answer_errors":  # next-symbol targets stand where unscored too
        assert (batch.targets.abs().sum(-1) * (1 - batch.mask)).sum() == 0
    assert T == int(batch.lengths.max())


@pytest.mark.parametrize("name", NAMES)
def test_targets_are_bits(name):
    batch = mixed(name).sample(16, seed=2)
    assert set(batch.targets.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", NAMES)
def test_sample_on_the_requested_device(name):
    batch = mixed(name).sample(3, seed=0, device="cpu")
    assert all(x.device.type == "cpu" for x in batch)
    if torch.cuda.is_available():
        on_gpu = mixed(name).sample(3, seed=0, device="cuda")
        assert all(x.device.type == "cuda" for x in on_gpu)
        assert torch.equal(on_gpu.inputs.cpu(), batch.inputs)


# ---- the answers, rebuilt from the inputs ------------------------------------------------------

def test_copy_targets_are_the_sequence():
    task = mixed("copy")
    batch = task.sample(24, seed=5)
    W = task.bits
    for b in range(24):
        x = rows(batch.inputs[b])
        L = next(t for t, row in enumerate(x) if row[W] == 1)  # the delimiter
        seq = [row[:W] for row in x[:L]]
        assert all(row[W] == 0 for t, row in enumerate(x) if t != L)
        assert batch.lengths[b] == 2 * L + 1
        expected = [[0] * W] * (L + 1) + seq
        n = 2 * L + 1
        assert rows(batch.targets[b, :n]) == expected
        assert batch.mask[b, :n].tolist() == [0.0] * (L + 1) + [1.0] * L
        assert all(sum(row) == 0 for row in x[L + 1:])


def test_repeat_copy_targets_repeat_the_sequence_then_mark_the_end():
    task = mixed("repeat_copy")
    batch = task.sample(24, seed=6)
    W = task.bits
    for b in range(24):
        x = batch.inputs[b].tolist()
        L = next(t for t, row in enumerate(x) if row[W] == 1)
        R = round(x[L][W + 1] * task.repeat_scale)
        assert task.min_repeats <= R <= task.max_repeats
        seq = [[int(v) for v in row[:W]] for row in x[:L]]
        n = int(batch.lengths[b])
        assert n == (R + 1) * L + 2
        expected = [[0] * (W + 1)] * (L + 1) + [row + [0] for row in seq * R] + [[0] * W + [1]]
        assert rows(batch.targets[b, :n]) == expected
        assert batch.mask[b, :n].tolist() == [0.0] * (L + 1) + [1.0] * (R * L + 1)


def test_repeat_count_channel_is_count_over_scale():
    task = get_task("repeat_copy", min_repeats=7, max_repeats=7, repeat_scale=4.0)
    batch = task.sample(3, seed=0)
    counts = batch.inputs[..., task.bits + 1]
    assert torch.allclose(counts.sum(1), torch.full((3,), 7 / 4.0))


def test_associative_recall_answers_the_item_after_the_query():
    task = mixed("associative_recall")
    batch = task.sample(24, seed=7)
    W, k = task.bits, task.item_length
    queries = set()
    for b in range(24):
        n_steps = int(batch.lengths[b])
        x = rows(batch.inputs[b, :n_steps])
        items, t = [], 0
        while x[t][W] == 1:  # item delimiter, then k vectors
            items.append([row[:W] for row in x[t + 1:t + 1 + k]])
            t += k + 1
        assert x[t][W + 1] == 1 and x[t + k + 1][W + 1] == 1  # the query between two query delimiters
        query = [row[:W] for row in x[t + 1:t + 1 + k]]
        answer = rows(batch.targets[b, t + k + 2:t + 2 * k + 2])
        assert t + 2 * k + 2 == n_steps == (len(items) + 2) * (k + 1)
        matches = [j for j in range(len(items) - 1) if items[j] == query]
        assert matches, "the query is one of the items except the last"
        assert answer in [items[j + 1] for j in matches]
        assert batch.mask[b].sum() == k and batch.mask[b, t + k + 2:n_steps].sum() == k
        queries.add(matches[0])
    assert len(queries) > 1


def test_priority_sort_targets_are_the_top_vectors_highest_first():
    task = mixed("priority_sort")
    batch = task.sample(24, seed=8)
    W = task.bits
    for b in range(24):
        x = batch.inputs[b].tolist()
        n = next(t for t, row in enumerate(x) if row[W + 1] == 1)
        pairs = [(row[W], [int(v) for v in row[:W]]) for row in x[:n]]
        assert all(-1 <= p <= 1 for p, _ in pairs)
        top = [vec for _, vec in sorted(pairs, key=lambda pv: -pv[0])][:task.outputs]
        k = len(top)
        assert int(batch.lengths[b]) == n + 1 + k
        assert rows(batch.targets[b, n + 1:n + 1 + k]) == top
        assert batch.mask[b].tolist()[:n + 1 + k] == [0.0] * (n + 1) + [1.0] * k


def test_priority_sort_priorities_spread_over_minus_one_to_one():
    batch = get_task("priority_sort").sample(64, seed=0)
    p = batch.inputs[:, :20, 8]
    assert p.min() < -0.9 and p.max() > 0.9 and abs(float(p.mean())) < 0.1


def test_ngrams_targets_are_the_next_input_bit_and_the_context_is_unscored():
    task = mixed("ngrams")
    batch = task.sample(16, seed=9)
    for b in range(16):
        n = int(batch.lengths[b])
        x, y = batch.inputs[b, :n, 0].tolist(), batch.targets[b, :n, 0].tolist()
        assert y[:-1] == x[1:]
        assert batch.mask[b, :n].tolist() == [0.0] * (task.n - 2) + [1.0] * (n - task.n + 2)


def test_ngram_sequences_follow_their_tables():
    # Bits from a per-sequence random table are far more predictable than coin flips.
    task = get_task("ngrams")
    batch = task.sample(64, seed=0)
    six = float(task.optimal_bits_per_prediction(batch).mean())
    assert six < 0.85
    assert 0.2 < float(batch.inputs.mean()) < 0.8
    # ... and each bit depends on all 5 before it: knowing only the last bit predicts worse.
    one = float(get_task("ngrams", n=2).optimal_bits_per_prediction(batch).mean())
    assert six < one - 0.1


# ---- the n-gram optimum on a hand-worked example ----------------------------------------------

def hand_batch() -> Batch:
    """n = 3 (2-bit contexts). Row 0: bits 0 1 1 0 1 1 1 0 (7 steps). Row 1: 1 1 1 1 1 (4 steps)."""
    seqs = [[0, 1, 1, 0, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    T = 7
    inputs, targets, mask = torch.zeros(2, T, 1), torch.zeros(2, T, 1), torch.zeros(2, T)
    for b, s in enumerate(seqs):
        steps = len(s) - 1
        inputs[b, :steps, 0] = torch.tensor(s[:-1], dtype=torch.float32)
        targets[b, :steps, 0] = torch.tensor(s[1:], dtype=torch.float32)
        mask[b, 1:steps] = 1
    return Batch(inputs, targets, mask, torch.tensor([7, 4]))


def test_optimal_probabilities_by_hand():
    task = get_task("ngrams", n=3, sequence_length=8)
    p = task.optimal_probabilities(hand_batch())
    # Row 0, contexts (bit t + 2 * bit t-1) at steps 1..6: 1, 3, 2, 1, 3, 3 followed by 1, 0, 1, 1, 1, 0.
    # Step 4 sees context 1 once before, followed by 1: (1 + 1/2) / (1 + 1) = 0.75.
    # Step 5 sees context 3 once before, followed by 0: (0 + 1/2) / 2 = 0.25.
    # Step 6 sees context 3 twice, a 0 and a 1: (1 + 1/2) / 3 = 0.5.
    expected0 = [0.5, 0.5, 0.5, 0.5, 0.75, 0.25, 0.5]
    # Row 1: context 3 at steps 1..3, always followed by 1; steps 4.. are padding.
    expected1 = [0.5, 0.5, 1.5 / 2, 2.5 / 3, 0.5, 0.5, 0.5]
    assert p.shape == (2, 7)
    assert torch.allclose(p, torch.tensor([expected0, expected1]))


def test_the_sampler_and_the_estimator_agree_on_the_context():
    # The estimator's counts must match a count in plain Python over the same sampled bits.
    task = get_task("ngrams", n=4, sequence_length=60)
    batch = task.sample(3, seed=11)
    p = task.optimal_probabilities(batch)
    for b in range(3):
        bits = batch.inputs[b, :, 0].int().tolist() + [int(batch.targets[b, -1, 0])]
        counts: dict[tuple, list[int]] = {}
        for t in range(len(bits) - 1):
            if batch.mask[b, t] == 0:
                assert p[b, t] == 0.5
                continue
            ctx = tuple(bits[t - 2:t + 1])
            n0, n1 = counts.setdefault(ctx, [0, 0])
            assert math.isclose(float(p[b, t]), (n1 + 0.5) / (n0 + n1 + 1), rel_tol=1e-6)
            counts[ctx][bits[t + 1]] += 1


def test_bits_per_prediction():
    task = get_task("ngrams", n=3, sequence_length=8)
    batch = hand_batch()
    assert torch.allclose(task.bits_per_prediction(torch.zeros(2, 7, 1), batch), torch.ones(2))
    p = [[0.5, 0.5, 0.5, 0.75, 0.25, 0.5], [0.5, 0.75, 2.5 / 3]]
    nxt = [[1, 0, 1, 1, 1, 0], [1, 1, 1]]
    expected = [sum(-math.log2(q if y else 1 - q) for q, y in zip(ps, ys)) / len(ys) for ps, ys in zip(p, nxt)]
    assert torch.allclose(task.optimal_bits_per_prediction(batch), torch.tensor(expected), atol=1e-5)


# ---- scoring -------------------------------------------------------------------------------

def perfect_logits(batch: Batch) -> torch.Tensor:
    return 20 * (2 * batch.targets - 1)


@pytest.mark.parametrize("name", NAMES)
def test_loss_prefers_right_answers_and_is_differentiable(name):
    task = mixed(name)
    batch = task.sample(8, seed=0)
    random = torch.randn(batch.targets.shape, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert task.loss(perfect_logits(batch), batch) < task.loss(random, batch)
    loss = task.loss(random, batch)
    assert loss.dim() == 0
    loss.backward()
    assert random.grad is not None and random.grad.abs().sum() > 0
    # Unscored steps get no gradient.
    assert (random.grad.abs().sum(-1) * (1 - batch.mask)).sum() == 0


@pytest.mark.parametrize("name", NAMES)
def test_loss_matches_a_plain_formula(name):
    task = mixed(name)
    batch = task.sample(4, seed=1)
    logits = torch.randn(batch.targets.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    total = 0.0
    for b in range(4):
        for t in range(batch.targets.shape[1]):
            if batch.mask[b, t] == 0:
                continue
            for o in range(batch.targets.shape[2]):
                q = 1 / (1 + math.exp(-float(logits[b, t, o])))
                y = float(batch.targets[b, t, o])
                total -= y * math.log(q) + (1 - y) * math.log(1 - q)
    assert math.isclose(float(task.loss(logits, batch)), total / 4, rel_tol=1e-6)


@pytest.mark.parametrize("name", [n for n in NAMES if get_task(n).measure == "bit_errors"])  # the languages
def test_bit_errors_count_flipped_scored_bits(name):  # score answers, not bits: tests/test_languages.py
    task = mixed(name)
    batch = task.sample(6, seed=2)
    logits = perfect_logits(batch)
    errors = task.bit_errors(logits, batch)
    assert errors.shape == (6,) and errors.sum() == 0
    g = torch.Generator().manual_seed(3)
    flips = (torch.rand(batch.targets.shape, generator=g) < 0.3).float()
    flipped = logits * (1 - 2 * flips)
    expected = (flips * batch.mask.unsqueeze(-1)).sum((1, 2))
    assert expected.sum() > 0
    assert torch.equal(task.bit_errors(flipped, batch), expected)


def test_scoring_rejects_mismatched_logits():
    task = get_task("copy", max_length=4)
    batch = task.sample(2, seed=0)
    with pytest.raises(ConfigError):
        task.loss(torch.zeros(2, batch.inputs.shape[1], 9), batch)


# ---- generalisation sizes and memory -----------------------------------------------------------

def test_at_sets_the_generalisation_size():
    copy = get_task("copy").at(50)
    assert copy.sample(4, seed=0).lengths.tolist() == [101] * 4
    rc = get_task("repeat_copy").at(15)
    batch = rc.sample(6, seed=0)
    delim = batch.inputs[..., rc.bits].argmax(1)
    assert delim.tolist() == [15] * 6
    assert (rc.min_repeats, rc.max_repeats) == (1, 10)
    assert get_task("repeat_copy").at(3, repeats=12).sample(2, seed=0).lengths.tolist() == [13 * 3 + 2] * 2
    ar = get_task("associative_recall").at(12)
    assert ar.sample(3, seed=0).lengths.tolist() == [14 * 4] * 3
    ng = get_task("ngrams").at(120)
    assert ng.sample(3, seed=0).lengths.tolist() == [119] * 3
    ps = get_task("priority_sort")
    assert ps.at(40).sample(2, seed=0).lengths.tolist() == [40 + 1 + 16] * 2
    assert ps.at(10).sample(2, seed=0).lengths.tolist() == [10 + 1 + 10] * 2


def test_check_fits():
    with pytest.raises(ConfigError) as err:
        get_task("copy").at(200).check_fits(128)
    assert "200" in str(err.value) and "128" in str(err.value)
    get_task("copy").at(128).check_fits(128)
    assert get_task("copy", max_length=33).required_slots() == 33
    assert get_task("associative_recall").at(20).required_slots() == 20
    assert get_task("priority_sort").at(30).required_slots() == 30
    assert get_task("ngrams").required_slots() == 32
    for name in NAMES:
        task = get_task(name)
        task.check_fits(task.required_slots())
        with pytest.raises(ConfigError):
            task.check_fits(task.required_slots() - 1)


# ---- text ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_render_and_describe(name):
    task = mixed(name)
    batch = task.sample(3, seed=0)
    text = task.render(batch, index=1)
    assert text.strip() and task.output_labels[0] in text
    with_outputs = task.render(batch, index=1, outputs=torch.sigmoid(perfect_logits(batch)))
    assert with_outputs.count("\n") > text.count("\n") and "outputs" in with_outputs
    line = task.describe()
    assert line and "\n" not in line
