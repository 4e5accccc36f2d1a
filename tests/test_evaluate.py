"""Held-out evaluation: intervals, exact fractions, ensembles on the same sequences, bad requests."""

import math

import numpy as np
import pytest

import ntmviz
from ntmviz.evaluate import evaluate, mean_interval, sequence_results, wilson_interval
from ntmviz.models import build_model
from ntmviz.tasks import get_task


def test_wilson_interval_against_a_known_value():
    low, high = wilson_interval(8, 10)  # textbook: 0.8 of 10 -> [0.490, 0.943]
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 1000)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(0, 1000)[1] == pytest.approx(0.00383, abs=1e-4)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_samples():
    rng = np.random.default_rng(0)
    small = rng.poisson(0.3, 100).astype(float)
    large = rng.poisson(0.3, 10_000).astype(float)
    lo, hi = mean_interval(small)
    assert lo <= small.mean() <= hi
    lo2, hi2 = mean_interval(large)
    assert hi2 - lo2 < (hi - lo) / 5
    assert mean_interval(np.zeros(50)) == (0.0, 0.0)


def test_every_model_of_an_ensemble_is_scored_on_the_same_sequences():
    task = get_task("copy", bits=3, max_length=4)
    config = ntmviz.NTMConfig(task.input_size, task.output_size, 8, 4, controller_size=6)
    both = build_model(config, seeds=[0, 1])
    per_seq = sequence_results(both, task, stream="validation", samples=30, batch_size=7)
    assert per_seq["bit_errors"].shape == (2, 30)
    for k, seed in enumerate([0, 1]):
        alone = sequence_results(build_model(config, seeds=[seed]), task, stream="validation", samples=30, batch_size=7)
        np.testing.assert_allclose(alone["loss"][0], per_seq["loss"][k], rtol=1e-5)
    scores = evaluate(both, task, stream="validation", samples=30, batch_size=7)
    for k, score in enumerate(scores):
        assert score.samples == 30 and score.bit_errors == pytest.approx(per_seq["bit_errors"][k].mean())
        assert score.interval[0] <= score.bit_errors <= score.interval[1]
        assert score.exact == pytest.approx((per_seq["bit_errors"][k] == 0).mean())
        assert score.loss_bits == pytest.approx(score.loss / math.log(2))


def test_test_and_validation_streams_differ_and_repeat():
    task = get_task("copy", bits=3, max_length=4)
    model = build_model(ntmviz.NTMConfig(task.input_size, task.output_size, 8, 4, controller_size=6), seeds=[0])
    a = sequence_results(model, task, stream="test", seed=3, samples=20)
    b = sequence_results(model, task, stream="test", seed=3, samples=20)
    c = sequence_results(model, task, stream="validation", seed=3, samples=20)
    np.testing.assert_array_equal(a["loss"], b["loss"])
    assert not np.array_equal(a["loss"], c["loss"])


def test_ngrams_report_the_gap_to_the_optimum_on_the_same_sequences():
    task = get_task("ngrams", sequence_length=30)
    model = build_model(ntmviz.NTMConfig(task.input_size, task.output_size, 32, 4, controller_size=6), seeds=[0])
    score = evaluate(model, task, samples=20)[0]
    extra = score.extra
    assert extra["gap"] == pytest.approx(extra["model_bits"] - extra["optimal_bits"], abs=1e-6)
    assert extra["gap_interval"][0] <= extra["gap"] <= extra["gap_interval"][1]


@pytest.mark.parametrize("stream, samples, words", [("train", 10, "not 'train'"), ("dev", 10, "not 'dev'"),
                                                    ("test", 0, "positive integer")])
def test_bad_requests(stream, samples, words):
    task = get_task("copy", bits=3, max_length=4)
    model = build_model(ntmviz.NTMConfig(task.input_size, task.output_size, 8, 4, controller_size=6))
    with pytest.raises(ntmviz.ConfigError, match=words):
        evaluate(model, task, stream=stream, samples=samples)
    with pytest.raises(ntmviz.ConfigError, match="memory slots"):
        evaluate(model, task.at(9), samples=5)



def test_repeat_copy_splits_its_bit_errors_between_the_repeats():
    """Each wrong bit counts in the copy whose steps it falls on; the end marker's step in none."""
    import torch

    task = get_task("repeat_copy", bits=4).at(3, repeats=4)  # L = 3: delimiter at step 3, copies at 4..15, end at 16
    batch = task.sample(2, seed=5)
    right = (batch.targets * 2 - 1) * 10  # logits that give every target bit
    wrong = right.clone()
    wrong[0, 4 + 3 * 1 + 2, 1] *= -1  # sequence 0: one bit in copy 2 (its third vector)
    wrong[0, 4 + 3 * 3, :] *= -1  # five bits (four data and the end channel) at the first step of copy 4
    wrong[1, 16, 0] *= -1  # sequence 1: a bit at the end marker's step
    parts = task.part_errors(wrong, batch)
    assert parts.tolist() == [[0, 1, 0, 5], [0, 0, 0, 0]]
    assert task.bit_errors(wrong, batch).tolist() == [6, 1]
    assert task.part_errors(right, batch).sum() == 0
    assert get_task("repeat_copy").part_errors(right, batch) is None  # the counts vary: no common parts


def test_evaluation_reports_each_repeat_and_the_table_prints_them():
    from ntmviz.cards import eval_table

    task = get_task("repeat_copy", bits=3, max_length=3)
    model = build_model(ntmviz.NTMConfig(task.input_size, task.output_size, 8, 4, controller_size=6), seeds=[0])
    fixed = task.at(2, repeats=3)
    per_seq = sequence_results(model, fixed, samples=12, batch_size=5)
    assert per_seq["parts"].shape == (1, 12, 3)
    score = evaluate(model, fixed, samples=12, batch_size=5)[0]
    assert score.extra["part_name"] == "repeat"
    np.testing.assert_allclose(score.extra["parts"], per_seq["parts"][0].mean(0))
    assert sum(score.extra["parts"]) <= score.bit_errors  # only the end marker's step is left out
    assert "parts" not in evaluate(model, task, samples=12)[0].extra  # the training range's counts vary
    report = {"checkpoint": "x", "task": "repeat_copy", "model": "ntm", "parameters": 1, "sequences_seen": 0,
              "stream": "test", "seed": 0, "samples": 12, "difficulty": task.difficulty_name,
              "rows": [{"size": "2 x 3 repeats", **score.to_dict()}]}
    line = eval_table(report, task).splitlines()[-1]
    assert line == ("2 x 3 repeats: bit errors/seq in each repeat (repeat 1 first): "
                    + " ".join(f"{v:.2f}" for v in score.extra["parts"]))
