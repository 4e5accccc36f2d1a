"""Tests for the counting languages (Joulin & Mikolov 2015, Table 2): the strings, the next-symbol
targets, exactly the predictable steps scored, wrong predictions as the measure, the Table 2
score, sampling and configuration; and what a stack-augmented RNN's stacks did (the counting
mechanisms) on hand-made traces and a recorded episode."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

import ntmviz
from ntmviz.errors import ConfigError
from ntmviz.mechanisms import measure, readings
from ntmviz.tasks.languages import (
    DEPTH_TRACKS_COUNT, LANGUAGES, PUSHES_THEN_POPS, AnB2n, AnBmCnm, AnBn, AnBnCn, AnBnCnDn, string_index, table2,
)
from ntmviz.tasks.mechanism import Trace

NAMES = [cls.name for cls in LANGUAGES]
BY_NAME = {cls.name: cls for cls in LANGUAGES}

# Each language's string from the counts of a's and b's seen (the rule a counting model needs),
# and the pattern of its strings; written here apart from the task's own code.
COMPLETE = {
    "anbn": lambda a, b: "a" * a + "b" * a,
    "anbncn": lambda a, b: "a" * a + "b" * a + "c" * a,
    "anbncndn": lambda a, b: "a" * a + "b" * a + "c" * a + "d" * a,
    "anb2n": lambda a, b: "a" * a + "b" * 2 * a,
    "anbmcnm": lambda a, b: "a" * a + "b" * b + "c" * (a + b),
}
PATTERN = {"anbn": "(a+)(b+)", "anbncn": "(a+)(b+)(c+)", "anbncndn": "(a+)(b+)(c+)(d+)", "anb2n": "(a+)(b+)",
           "anbmcnm": "(a+)(b+)(c+)"}
FIXED_BY = {"anbn": "b", "anbncn": "b", "anbncndn": "b", "anb2n": "b", "anbmcnm": "c"}  # the first fixing symbol
SWITCHES = {"anbn": 1, "anbncn": 2, "anbncndn": 3, "anb2n": 1, "anbmcnm": 1}  # block ends once it is fixed


def symbols(x: torch.Tensor) -> str:
    """One item's one-hot rows [T, I] -> 'aabb...' (a zero row: '.')."""
    return "".join("abcd"[int(r.argmax())] if r.sum() > 0 else "." for r in x)


def oracle(name: str, wrong_above: int | None = None):
    """A predictor that knows the counting rule: once a string's prefix holds the fixing symbol
    it predicts the rest of the string, then the next string's a; before that it guesses the
    symbol it has just seen. `wrong_above`: it predicts wrongly in strings with more a's."""

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        B, T, I = inputs.shape
        logits = torch.full((B, T, I), -5.0)
        for b in range(B):
            prefix = ""
            for t, s in enumerate(symbols(inputs[b])):
                if s == ".":
                    break
                prefix = s if (s == "a" and prefix and prefix[-1] != "a") else prefix + s
                guess = s
                if FIXED_BY[name] in prefix:
                    full = COMPLETE[name](prefix.count("a"), prefix.count("b"))
                    guess = full[len(prefix)] if len(prefix) < len(full) else "a"
                    if wrong_above is not None and prefix.count("a") > wrong_above:
                        guess = "abcd"[("abcd".index(guess) + 1) % I]
                logits[b, t, "abcd".index(guess)] = 5.0
        return logits

    return predict


def repeat(inputs: torch.Tensor) -> torch.Tensor:
    """Predicts the symbol it has just seen: it never sees a switch coming."""
    return inputs * 10 - 5


# ---- the strings ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_items_are_strings_of_the_language(name):
    task = BY_NAME[name](max_n=7, sequences=4)
    batch = task.sample(16, seed=0)
    seen = set()
    for b in range(16):
        L = int(batch.lengths[b])
        text = task.text(batch, b)
        strings = text.split(" ")
        assert len(strings) == 4 and len("".join(strings)) == L
        assert symbols(batch.inputs[b]) == "".join(strings) + "." * (batch.inputs.shape[1] - L)
        for s in strings:
            counts = [len(g) for g in re.fullmatch(PATTERN[name], s).groups()]
            n = counts[0] + counts[1] if name == "anbmcnm" else counts[0]
            assert task.min_n <= n <= task.max_n
            assert s == COMPLETE[name](counts[0], counts[1])  # b's, c's, d's as the counts say
            seen.add(n)
    assert len(seen) > 3  # sizes vary


def test_a_b_m_c_n_plus_m_splits_its_size():
    task = AnBmCnm(min_n=2, max_n=12, sequences=5)
    batch = task.sample(40, seed=1)
    splits = [(s.count("a"), s.count("b")) for b in range(40) for s in task.text(batch, b).split(" ")]
    assert all(a >= 1 and m >= 1 and 2 <= a + m <= 12 for a, m in splits)
    assert len(set(splits)) > 20


@pytest.mark.parametrize("name", NAMES)
def test_targets_are_the_next_symbol_and_padding_is_zero(name):
    task = BY_NAME[name](max_n=6)
    batch = task.sample(8, seed=3)
    for b in range(8):
        L = int(batch.lengths[b])
        assert torch.equal(batch.targets[b, : L - 1], batch.inputs[b, 1:L])
        assert batch.targets[b, L - 1].tolist() == [1.0] + [0.0] * (task.alphabet - 1)  # the next string's a
        assert (batch.inputs[b, L:] == 0).all() and (batch.targets[b, L:] == 0).all()
        assert (batch.mask[b, L:] == 0).all()


# Hand-checked: the input at each step, its target, and 1 where the target is predictable.
HAND = {
    "anbn": (AnBn, 2, "aabbaabb", "abbaabba", "00110011"),
    "anbncn": (AnBnCn, 2, "aabbccaabbcc", "abbccaabbcca", "001111001111"),
    "anbncndn": (AnBnCnDn, 1, "abcdabcd", "bcdabcda", "01110111"),
    "anb2n": (AnB2n, 2, "aabbbbaabbbb", "abbbbaabbbba", "001111001111"),
    "anbmcnm": (AnBmCnm, 2, "abccabcc", "bccabcca", "00110011"),  # n + m = 2: n = m = 1
}


@pytest.mark.parametrize("name", NAMES)
def test_a_hand_checked_example(name):
    cls, n, inputs, targets, mask = HAND[name]
    batch = cls(sequences=2).at(n).sample(1, seed=0)
    assert symbols(batch.inputs[0]) == inputs and symbols(batch.targets[0]) == targets
    assert "".join(str(int(m)) for m in batch.mask[0]) == mask


@pytest.mark.parametrize("name", NAMES)
def test_the_mask_marks_the_steps_after_the_fixing_symbol(name):
    task = BY_NAME[name](max_n=9)
    batch = task.sample(8, seed=4)
    for b in range(8):
        L = int(batch.lengths[b])
        text = symbols(batch.inputs[b])[:L]
        first = "abcd".index(FIXED_BY[name])
        want = ["abcd".index(s) >= first for s in text]
        assert batch.mask[b, :L].bool().tolist() == want
        per_string = {"anbn": 1, "anbncn": 2, "anbncndn": 3, "anb2n": 2}
        if name in per_string:  # n, 2n, 3n, 2n predictable steps a string
            assert int(batch.mask[b].sum()) == per_string[name] * text.count("a")
        else:
            assert int(batch.mask[b].sum()) == text.count("a") + text.count("b")


# ---- scoring ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_the_counting_rule_makes_no_errors_and_repeating_misses_every_switch(name):
    task = BY_NAME[name](max_n=8)
    batch = task.sample(12, seed=5)
    assert (task.bit_errors(oracle(name)(batch.inputs), batch) == 0).all()
    assert task.bit_errors(repeat(batch.inputs), batch).tolist() == [SWITCHES[name] * task.sequences] * 12
    assert task.measure == "answer_errors" and task.error_unit == "wrong predictions/seq"


def test_wrong_bits_count_the_most_likely_symbol():
    task = AnBnCn(sequences=1).at(1)  # abc
    batch = task.sample(1, seed=0)
    logits = torch.tensor([[[0.0, 1.0, 0.9], [5.0, 5.0, 6.0], [0.0, 0.0, 0.0]]])  # b (right), c (right), a (tie)
    assert task.wrong_bits(logits, batch).tolist() == [[0.0, 0.0, 0.0]]
    logits[0, 1] = torch.tensor([0.0, 3.0, 2.0])  # b after b: wrong
    assert task.wrong_bits(logits, batch).tolist() == [[0.0, 1.0, 0.0]]
    assert task.bit_errors(logits, batch).tolist() == [1.0]


def test_the_loss_is_binary_cross_entropy_on_scored_steps():
    task = AnBn(max_n=4)
    batch = task.sample(4, seed=6)
    logits = torch.randn(batch.targets.shape, requires_grad=True)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none").sum(-1)
    assert torch.allclose(task.sequence_loss(logits, batch), (bce * batch.mask).sum(-1))


def test_table2_scores_the_counting_rule_perfectly_and_finds_where_generalisation_stops():
    task = AnBn(sequences=2)
    perfect = table2(oracle("anbn"), task, sizes=range(1, 13), samples=3)
    assert perfect.symbol_accuracy == 1.0 and perfect.solved == 1.0 and set(perfect.strings) == {1.0}
    partial = table2(oracle("anbn", wrong_above=8), task, sizes=range(1, 13), samples=3)
    assert partial.n == tuple(range(1, 13))
    assert partial.strings == (1.0,) * 8 + (0.0,) * 4 and partial.solved == 8 / 12
    assert partial.symbols == (1.0,) * 8 + (0.0,) * 4
    assert partial.symbol_accuracy == sum(range(1, 9)) / sum(range(1, 13))  # n predictable symbols a string
    blind = table2(repeat, task, sizes=[5, 6], samples=2)
    assert blind.solved == 0.0 and blind.symbols == (4 / 5, 5 / 6)  # one miss a string, at its end


def test_string_index():
    batch = AnBnCn(sequences=3).at(2).sample(1, seed=0)
    assert string_index(batch.inputs)[0].tolist() == [0] * 6 + [1] * 6 + [2] * 6


# ---- sampling and configuration ------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_sampling_is_deterministic_per_seed(name):
    task = BY_NAME[name]()
    a, b, c = task.sample(6, seed=9), task.sample(6, seed=9), task.sample(6, seed=10)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("name, fields, message", [
    ("anbn", {"min_n": 0}, "min_n must be an integer >= 1"),
    ("anbn", {"min_n": 5, "max_n": 4}, "min_n 5 is larger than max_n 4"),
    ("anb2n", {"max_n": 2.5}, "max_n must be an integer"),
    ("anbncn", {"sequences": 0}, "sequences must be an integer >= 1"),
    ("anbncndn", {"sequences": True}, "sequences must be an integer"),
    ("anbmcnm", {"min_n": 1}, "min_n must be an integer >= 2"),
])
def test_bad_fields_raise_config_errors_naming_the_field(name, fields, message):
    with pytest.raises(ConfigError, match=message):
        BY_NAME[name](**fields)


@pytest.mark.parametrize("name", NAMES)
def test_sizes_labels_and_round_trip(name):
    task = BY_NAME[name]()
    assert (task.min_n, task.max_n, task.sequences) == ((2 if name == "anbmcnm" else 1), 19, 3)
    assert task.input_labels == task.output_labels == tuple("abcd"[: task.alphabet])
    assert task.input_size == task.output_size == task.alphabet
    assert task.required_slots() == 19 and task.largest_size == 19
    assert [label for label, _ in task.eval_variants()] == ["20", "30", "40", "50", "60"]
    big = task.at(60)
    assert (big.min_n, big.max_n) == (60, 60)
    data = json.loads(json.dumps(task.to_dict()))
    assert data.pop("name") == name and BY_NAME[name](**data) == task
    assert task.pattern in task.describe() and "n 1-19" in AnBn().describe()
    with pytest.raises(Exception):
        task.max_n = 3  # frozen


def test_lengths_at_a_fixed_size():
    for cls, per_string in ((AnBn, 2), (AnBnCn, 3), (AnBnCnDn, 4), (AnB2n, 3), (AnBmCnm, 2)):
        batch = cls(sequences=3).at(10).sample(2, seed=0)
        assert batch.lengths.tolist() == [3 * per_string * 10] * 2
        assert np.isclose(batch.mask.sum(1).tolist(), 3 * (per_string - 1) * 10 if cls is not AnBmCnm
                          else 3 * 10).all()


# ---- what the stacks did (stack-augmented RNN mechanisms) -------------------------------------------

MOVE = {"P": 0, "O": 1, "N": 2}  # stack.action's order: push, pop, no-op


def one_hot_symbols(text: str, alphabet: int) -> np.ndarray:
    """'aabb' -> inputs [T, alphabet]."""
    return np.eye(alphabet, dtype=np.float32)[["abcd".index(s) for s in text]]


def stack_trace(text: str, alphabet: int, *moves: str, soft: float = 1.0) -> Trace:
    """A stack-augmented RNN's trace of `text`: one string of moves per stack ('P' push, 'O' pop,
    'N' no-op), `soft` of each step's action on its move (the rest shared by the other two), and
    the memory [T+1, N, S] those moves give: a stack per column, top in slot 0, -1 empty, each push
    putting 0.5 on top (exact for one-hot moves; stacks deep enough never to drop a value)."""
    T, S = len(text), len(moves)
    assert all(len(m) == T for m in moves)
    action = np.full((T, S, 3), (1 - soft) / 2, np.float32)
    memory = np.full((T + 1, T + 1, S), -1.0, np.float32)
    for s, m in enumerate(moves):
        for t, move in enumerate(m):
            action[t, s, MOVE[move]] = soft
            before = memory[t, :, s]
            after = {"P": np.concatenate([[0.5], before[:-1]]), "O": np.concatenate([before[1:], [-1.0]]),
                     "N": before}[move]
            memory[t + 1, :, s] = after
    empty = np.zeros((T, 0, T + 1), np.float32)
    return Trace(one_hot_symbols(text, alphabet), empty, empty, extra={"stack.action": action, "memory": memory})


def stack_values(task, trace) -> dict[str, tuple[float, tuple[float, ...]]]:
    return {k: (r.value, r.heads) for k, r in task.measure_mechanisms(trace).items()}


def test_the_languages_declare_their_counters_and_stack_rnn_mechanisms():
    for cls in LANGUAGES:
        assert cls.mechanisms == (PUSHES_THEN_POPS, DEPTH_TRACKS_COUNT)
        assert cls.counter == (("ab", "c") if cls is AnBmCnm else ("a", "b"))
    for m in (PUSHES_THEN_POPS, DEPTH_TRACKS_COUNT):
        assert m.families == ("stack_rnn",) and m.per_head == "stack" and m.kind == "mean" and m.threshold == 0.9
        assert m.passes(1.0) and not m.passes(0.89) and not m.passes(float("nan"))


def test_counting_on_a_hand_checked_stream():
    counted, expected, count = AnB2n().counting(one_hot_symbols("abbaabbbb", 2))
    assert counted.all()
    assert expected.tolist() == [0, 1, -1, 0, 0, 1, 1, -1, -1]  # push, pop while the count is above zero
    assert count.tolist() == [1, 0, 0, 1, 2, 1, 0, 0, 0]
    counted, expected, count = AnBnCn().counting(one_hot_symbols("aabbcc", 3))
    assert counted.tolist() == [True] * 4 + [False] * 2 and expected.tolist() == [0, 0, 1, 1, -1, -1]
    counted, expected, count = AnBmCnm().counting(one_hot_symbols("abccaabccc", 3))
    assert counted.all() and count.tolist() == [1, 2, 1, 0, 1, 2, 3, 2, 1, 0]


# anbn, two strings (n = 3, then 1): counts after each step 1 2 3 2 1 0 1 0.
ANBN = "aaabbbab"
COUNTER = "PPPOOOPO"  # the paper's counter: push on each a, pop on each b


@pytest.mark.parametrize("other, actions, depth", [
    ("PPPPPPPP", 4 / 8, 3 / 8),  # pushes on every step: the a's right; its depth 1..8 is the count at steps 0-2
    ("PPPNNNPN", 4 / 8, 3 / 8),  # pushes on the a's, waits on the b's: depth 1 2 3 3 3 3 4 4
    ("NNNNNNNN", 0.0, 2 / 8),  # never moves: empty, the count is 0 after the strings' last b's
    ("OOOPPPOP", 0.0, 0.0),  # the moves swapped
])
def test_a_counting_stack_scores_one_and_others_exactly_less(other, actions, depth):
    task = AnBn()
    got = stack_values(task, stack_trace(ANBN, 2, COUNTER, other))
    assert got == {"pushes_then_pops": (1.0, (1.0, actions)), "depth_tracks_count": (1.0, (1.0, depth))}
    alone = stack_values(task, stack_trace(ANBN, 2, other))  # the wrong stack alone
    assert alone == {"pushes_then_pops": (actions, (actions,)), "depth_tracks_count": (depth, (depth,))}


def test_the_best_stack_is_reported_whichever_column_it_is():
    got = AnBn().measure_mechanisms(stack_trace(ANBN, 2, "PPPNNNPN", COUNTER))
    assert got["pushes_then_pops"].value == 1.0 and got["pushes_then_pops"].heads == (0.5, 1.0)
    assert got["pushes_then_pops"].note == ("stack 2 pushed on 4 of 4 a's and popped on 4 of 4 b's while the count "
                                            "was above zero (per stack: 50%, 100%)")
    assert got["depth_tracks_count"].note == ("stack 2 held as many values as the count after 8 of 8 counted steps "
                                              "(per stack: 38%, 100%); the count reached 3, the stack 3")


def test_a_b_2n_scores_the_stack_that_counts_the_a_s_down_by_the_first_b_s():
    # a b b, a a b b b b: the first stack pushes on each a and pops on every b (an empty stack
    # stays empty); the second pushes on each a and pops only once the first is empty.
    text = "abbaabbbb"
    first, second = "POOPPOOOO", "PNOPPNNOO"
    got = stack_values(AnB2n(), stack_trace(text, 2, first, second))
    # scored actions: the 3 a's and the b's while the count is above zero (1 + 2): the second
    # stack's waits there miss; its depth (1 1 0 1 2 2 2 1 0) meets the count (1 0 0 1 2 1 0 0 0) 5 times
    assert got == {"pushes_then_pops": (1.0, (1.0, 3 / 6)), "depth_tracks_count": (1.0, (1.0, 5 / 9))}
    waits = stack_values(AnB2n(), stack_trace(text, 2, "PNNPPNNNN"))  # never pops: depth 1 1 1 2 3 3 3 3 3
    assert waits == {"pushes_then_pops": (3 / 6, (3 / 6,)), "depth_tracks_count": (1 / 9, (1 / 9,))}


def test_a_b_m_c_n_plus_m_pushes_on_a_and_b_and_pops_on_c():
    text = "abccaabccc"
    got = stack_values(AnBmCnm(), stack_trace(text, 3, "PPOOPPPOOO", "PNOOPPNOOO"))
    # the second waits on the b's: 2 of its 10 steps miss; its depth 1 1 0 0 1 2 2 1 0 0 meets the
    # count 1 2 1 0 1 2 3 2 1 0 at 5 steps
    assert got == {"pushes_then_pops": (1.0, (1.0, 8 / 10)), "depth_tracks_count": (1.0, (1.0, 5 / 10))}


def test_later_blocks_are_not_scored():
    # a a b b c c: the counter is the a's counted down by the b's; what the stack does on the c's
    # (here: push them and pop nothing) is another counter's work
    got = stack_values(AnBnCn(), stack_trace("aabbcc", 3, "PPOOPP"))
    assert got == {"pushes_then_pops": (1.0, (1.0,)), "depth_tracks_count": (1.0, (1.0,))}


def test_the_most_likely_action_counts_and_a_half_pushed_place_is_not_held():
    soft = stack_values(AnBn(), stack_trace(ANBN, 2, COUNTER, soft=0.4))  # 0.4 on the move, 0.3 on each other
    assert soft["pushes_then_pops"] == (1.0, (1.0,))
    trace = stack_trace("ab", 2, "PO")
    memory = trace.extra["memory"].copy()
    memory[1, 0, 0] = -0.55  # after the a: a push of a third of 0.35 over an empty place (1/3 * 0.35 - 2/3)
    got = AnBn().measure_mechanisms(trace._replace(extra={**trace.extra, "memory": memory}))
    assert got["depth_tracks_count"].value == 0.5  # the a's step no longer holds its value


def test_episodes_without_stack_arrays_do_not_apply():
    inputs = one_hot_symbols(ANBN, 2)
    weights = np.full((8, 1, 4), 0.25, np.float32)
    for extra in (None, {"memory": np.zeros((9, 4, 3), np.float32)}):  # an LSTM-like trace, an NTM's memory
        got = AnBn().measure_mechanisms(Trace(inputs, weights, weights, extra))
        assert set(got) == {"pushes_then_pops", "depth_tracks_count"}
        assert all(math.isnan(r.value) and "no stack actions" in r.note for r in got.values())
    no_memory = stack_trace(ANBN, 2, COUNTER)
    got = AnBn().measure_mechanisms(no_memory._replace(extra={"stack.action": no_memory.extra["stack.action"]}))
    assert got["pushes_then_pops"].value == 1.0 and math.isnan(got["depth_tracks_count"].value)
    wrong_width = stack_trace(ANBN, 2, COUNTER)._replace(extra={"stack.action": no_memory.extra["stack.action"],
                                                                  "memory": np.zeros((9, 4, 3), np.float32)})
    assert math.isnan(AnBn().measure_mechanisms(wrong_width)["depth_tracks_count"].value)


def test_an_untrained_stack_rnn_is_measured_end_to_end():
    task = AnBn(max_n=6, sequences=2)
    torch.manual_seed(0)
    model = ntmviz.models.build_model(ntmviz.config.model_config("stack_rnn", task, controller_size=8, stacks=2,
                                                                 stack_depth=30))
    episodes = ntmviz.episode.record(model, task.sample(3, seed=0), task=task)
    assert {"stack.action", "memory"} <= set(episodes[0].arrays())
    for episode in episodes:
        got = readings(episode)
        assert [m.name for m, _ in got] == ["pushes_then_pops", "depth_tracks_count"]
        for m, r in got:
            assert 0.0 <= r.value <= 1.0 and len(r.heads) == 2 and r.value == max(r.heads)
            assert r.note.startswith("stack ")
    [report] = measure(model, task, samples=4, batch_size=4)
    assert [r.mechanism.name for r in report.results] == ["pushes_then_pops", "depth_tracks_count"]
    assert all(r.samples == 4 and 0.0 <= r.value <= 1.0 and r.head in (0, 1) for r in report.results)
    assert "(stack head " in report.results[0].title
