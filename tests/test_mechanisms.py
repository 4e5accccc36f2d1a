"""Mechanism metrics: hand-built head weightings whose answers are known exactly, aggregation
with intervals and one lag per model, and real episodes of the shipped checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ntmviz
from ntmviz.errors import ConfigError
from ntmviz.mechanisms import aggregate, measure, model_lag, readings, summarise, task_of
from ntmviz.tasks import get_task
from ntmviz.tasks.mechanism import (
    Trace, context_addressing, path, rank_correlation, signed_step, unwrap,
)

N = 16  # slots in the hand-built traces (unequal to every other size)
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def onehot(slots, n: int = N) -> np.ndarray:
    """Slots per step [T] -> weights [T, 1, n], all weight on that slot."""
    w = np.zeros((len(slots), 1, n), np.float32)
    w[np.arange(len(slots)), 0, np.asarray(slots) % n] = 1
    return w


def inputs_of(task, seed: int = 0) -> np.ndarray:
    return task.sample(1, seed=seed).inputs[0].numpy()


def values(task, trace, lag=None, family="ntm") -> dict[str, float]:
    """The readings of the mechanisms of `family`'s algorithm (the NTM's by default: a DNC's
    need arrays these traces lack)."""
    mine = {m.name for m in task.mechanisms if family in m.families}
    return {k: r.value for k, r in task.measure_mechanisms(trace, lag).items() if k in mine}


# ---- copy -------------------------------------------------------------------------------

COPY = get_task("copy", bits=4, max_length=6)
L = 5  # T = 2L + 1 = 11


def copy_trace(read_slots, write_slots=None) -> Trace:
    write_slots = list(range(2 * L + 1)) if write_slots is None else write_slots  # +1 per step, on through the output
    return Trace(inputs_of(COPY.at(L)), onehot(read_slots), onehot(write_slots))


# The read head waits on slot 0 (where writing began) and plays back slot j for vector j:
# lag 1 reads at step L + j (the shipped copy NTM's habit), lag 0 at step L + 1 + j.
PERFECT_LAG1 = [0] * L + [0, 1, 2, 3, 4, 5]
PERFECT_LAG0 = [0] * (L + 1) + [0, 1, 2, 3, 4]
# The known failure: the parked read head slips to the slot before 0 (N-1) at the delimiter,
# so playback starts one slot early.
SLIPPED = [0] * L + [N - 1, 0, 1, 2, 3, 4]


@pytest.mark.parametrize("reads, lag", [(PERFECT_LAG1, 1), (PERFECT_LAG0, 0)])
def test_a_perfect_copy_scores_one_on_every_mechanism(reads, lag):
    trace = copy_trace(reads)
    assert COPY.playback_lag(trace) == lag
    assert values(COPY, trace) == {"write_walk": 1.0, "playback": 1.0, "playback_start": 1.0, "parked": 1.0,
                                   "parked_focus": 1.0, "sharpness": 1.0}
    notes = {k: r.note for k, r in COPY.measure_mechanisms(trace).items()}
    assert notes["playback_start"] == "playback started at slot 0, where writing began"
    assert notes["write_walk"] == "the write head moved one slot (+1) per vector on 4 of 4 moves (slots 0, 1, 2, 3, 4)"
    assert notes["parked"] == f"the read head stayed on slot 0 from step 0 until playback began at step {L + 1 - lag}"


def test_a_copy_walking_down_the_slots_is_the_same_algorithm():
    down = [(-t) % N for t in range(2 * L + 1)]
    trace = copy_trace([0] * L + [0, N - 1, N - 2, N - 3, N - 4, N - 5], down)
    assert values(COPY, trace) == {"write_walk": 1.0, "playback": 1.0, "playback_start": 1.0, "parked": 1.0,
                                   "parked_focus": 1.0, "sharpness": 1.0}


def test_the_read_head_slipping_one_slot_at_the_first_output_step_is_caught():
    trace = copy_trace(SLIPPED)
    # against the model's lag (1): playback starts one slot early and every vector is read from the wrong slot
    got = COPY.measure_mechanisms(trace, lag=1)
    assert values(COPY, trace, lag=1) == {
        "write_walk": 1.0, "playback": 0.0, "playback_start": 0.0, "parked": 0.0, "parked_focus": 1.0,
        "sharpness": 1.0}
    assert got["playback_start"].note == f"playback started at slot {N - 1}; writing began at slot 0 (one slot early)"
    assert got["parked"].note == f"the read head left slot 0 at step {L} (for slot {N - 1}) before playback began at step {L}"
    # one episode alone fits lag 0 best, and the slip still shows: the head did not stay parked
    alone = values(COPY, trace)
    assert COPY.playback_lag(trace) == 0
    assert alone["parked"] == 0.0 and alone["playback"] == 1.0


def test_a_parked_head_drifting_while_the_input_arrives_is_caught():
    reads = [0, 0, 0, N - 1, N - 1, N - 1, 0, 1, 2, 3, 4]  # slips at step 3, comes back for playback
    got = COPY.measure_mechanisms(copy_trace(reads), lag=1)
    assert got["parked"].value == 0.0 and got["playback_start"].value == 0.0
    assert got["parked"].note.startswith(f"the read head left slot 0 at step 3 (for slot {N - 1})")


def test_copy_focus_measures_the_weakest_parked_step_and_the_mean_sharpness():
    trace = copy_trace(PERFECT_LAG1)
    read = trace.read.copy()
    read[2, 0, :] = 0
    read[2, 0, 0], read[2, 0, N - 1] = 0.56, 0.44  # still on slot 0, but only just
    got = values(COPY, trace._replace(read=read), lag=1)
    assert got["parked"] == 1.0
    assert got["parked_focus"] == pytest.approx(0.56)
    write = trace.write.copy()
    write[:L] *= 0.5
    write[:L, 0, N - 1] += 0.5  # half the weight elsewhere on every input step (a tie: the location stays slot t)
    got = values(COPY, Trace(trace.inputs, trace.read, write), lag=1)
    assert got["sharpness"] == pytest.approx((0.5 * L + 1.0 * L) / (2 * L))


def test_a_stuck_write_head_fails_the_walk():
    trace = copy_trace(PERFECT_LAG1, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5])  # two steps per slot: path 0..5
    assert values(COPY, trace, lag=1)["write_walk"] == 1.0  # a stay counts once: still one slot per vector
    trace = copy_trace(PERFECT_LAG1, [0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0])  # jumps two slots per vector
    got = values(COPY, trace, lag=1)
    assert got["write_walk"] == 0.0 and got["playback"] == pytest.approx(1 / 5)


def test_a_copy_of_one_vector_has_no_write_moves():
    task = COPY.at(1)
    trace = Trace(inputs_of(task), onehot([0, 0, 0]), onehot([0, 1, 2]))
    got = values(COPY, trace)
    assert math.isnan(got["write_walk"]) and got["playback"] == 1.0


# ---- repeat copy ------------------------------------------------------------------------

def test_repeat_copy_returns_to_the_start_each_repeat():
    task = get_task("repeat_copy", bits=4, min_length=3, max_length=3, min_repeats=2, max_repeats=2)
    x = inputs_of(task)  # L = 3, R = 2: T = 11, copies at steps 4..9, end marker at 10
    assert x.shape[0] == 11
    write = onehot(list(range(11)))
    perfect = [0, 0, 0, 0, 0, 1, 2, 0, 1, 2, 3]  # lag 0: reads at 4..9 = slots 0 1 2 0 1 2
    got = values(task, Trace(x, onehot(perfect), write))
    assert task.playback_lag(Trace(x, onehot(perfect), write)) == 0
    assert got == {"write_walk": 1.0, "returns": 1.0, "playback": 1.0, "sharpness": 1.0}
    late = [0, 0, 0, 0, 0, 1, 2, 1, 2, 3, 4]  # the second repeat starts at slot 1: the head did not go back
    got = task.measure_mechanisms(Trace(x, onehot(late), write), lag=0)
    assert got["returns"].value == 0.5 and got["playback"].value == pytest.approx(3 / 6)
    assert got["returns"].note == ("the read head was on slot 0, where writing began, at the start of 1 of 2 "
                                   "repeats; repeat 2 started at slot 1 (one slot late)")


# ---- associative recall -------------------------------------------------------------------

RECALL = get_task("associative_recall", bits=4, item_length=2, min_items=4, max_items=4)


def recall_trace(answer_slot_of, seed: int = 3):
    """Items written one per slot (item j on slot j over its steps); at the answer the read
    head is on answer_slot_of(q). Returns (trace, q)."""
    x = inputs_of(RECALL, seed)
    k, n = 2, 4
    starts = [j * (k + 1) for j in range(n)]
    qs = n * (k + 1)
    q = next(j for j, s in enumerate(starts[:-1]) if np.array_equal(x[s + 1: s + 1 + k, :4], x[qs + 1: qs + 1 + k, :4]))
    T = x.shape[0]
    # item j's steps: its k vectors and the delimiter that ends it, j(k+1)+1 .. (j+1)(k+1)
    write_slots = [max(t - 1, 0) // (k + 1) if t <= qs else 10 for t in range(T)]
    read_slots = [12] * T
    for t in range(qs + k + 1, T):
        read_slots[t] = answer_slot_of(q)
    return Trace(x, onehot(read_slots), onehot(write_slots)), q


def test_recall_reading_the_successors_slot_passes_and_the_wrong_slot_scores_zero():
    right, q = recall_trace(lambda q: q + 1)
    got = RECALL.measure_mechanisms(right)
    assert got["lookup"].value == 1.0 and got["item_slots"].value == 1.0
    assert got["lookup"].note.startswith(f"the query was item {q}; 100% of what the read head read at the answer "
                                         f"was written by item {q + 1}, its successor")
    for wrong in (lambda q: q, lambda q: q + 2 if q + 2 < 4 else 0, lambda q: 12):
        trace, _ = recall_trace(wrong)
        assert RECALL.measure_mechanisms(trace)["lookup"].value == 0.0


def test_recall_with_two_read_heads_averages_them_and_names_each_heads_share():
    """One head reads the successor, the other an unwritten slot: the mean is half (which
    passes, just), and the note gives each head's share, so a split lookup can be seen."""
    trace, q = recall_trace(lambda q: q + 1)
    elsewhere = onehot([12] * trace.inputs.shape[0])
    two = Trace(trace.inputs, np.concatenate([trace.read, elsewhere], axis=1), trace.write)
    got = RECALL.measure_mechanisms(two)["lookup"]
    assert got.value == 1.0
    assert f"50% of what the read head read at the answer was written by item {q + 1}, its successor " \
           "(per read head: 100%, 0%)" in got.note
    assert "per read head" not in RECALL.measure_mechanisms(trace)["lookup"].note  # one head: no breakdown


def test_recall_measures_each_read_head_alone_and_names_the_one_that_looked_up():
    """The same two heads: per head, the second head fails and the first passes, so the episode
    passes on its best head and the note names it; a single head that misses fails."""
    trace, q = recall_trace(lambda q: q + 1)
    elsewhere = onehot([12] * trace.inputs.shape[0])
    two = Trace(trace.inputs, np.concatenate([elsewhere, trace.read], axis=1), trace.write)
    got = RECALL.measure_mechanisms(two)["lookup_head"]
    assert got.heads == (0.0, 1.0) and got.value == 1.0
    assert got.note == f"read head 2 put 100% of its weight at the answer on item {q + 1}'s writing"
    wrong, _ = recall_trace(lambda q: q)
    got = RECALL.measure_mechanisms(wrong)["lookup_head"]
    assert got.heads == (0.0,) and got.value == 0.0


def test_recall_shared_slots_count_by_each_items_share():
    """Items 0 and 2 on slot 0, items 1 and 3 on slot 1: a slot is half each item's. Reading
    the successor's slot is half the successor's (which passes, just); item_slots is 2/4."""
    trace, q = recall_trace(lambda q: q + 1)
    T = trace.inputs.shape[0]
    write = onehot([(max(t - 1, 0) // 3) % 2 if t <= 12 else 10 for t in range(T)])
    read = onehot([(q + 1) % 2] * T)
    got = RECALL.measure_mechanisms(Trace(trace.inputs, read, write))
    assert got["item_slots"].value == 0.5
    assert got["lookup"].value == 1.0 and "50% of what the read head read" in got["lookup"].note
    read = onehot([q % 2] * T)  # the query's own slot, which the successor never wrote
    assert RECALL.measure_mechanisms(Trace(trace.inputs, read, write))["lookup"].value == 0.0


# ---- priority sort -------------------------------------------------------------------------

SORT = get_task("priority_sort", bits=4, min_inputs=6, max_inputs=6, outputs=4)


def sort_trace(slot_of_rank, lag: int = 0, n: int = 6, k: int = 4):
    """Input t written at slot_of_rank(rank of its priority, 0 = lowest); the read head reads
    the top-k slots in order at steps n+1+i-lag."""
    x = inputs_of(SORT, seed=5)
    priority = x[:n, 4]
    rank = np.argsort(np.argsort(priority))
    write_slots = [slot_of_rank(int(r)) for r in rank] + [13] * (x.shape[0] - n)
    order = np.argsort(-priority)[:k]
    read_slots = [15] * x.shape[0]
    for i, item in enumerate(order):
        read_slots[n + 1 + i - lag] = write_slots[item]
    return Trace(x, onehot(read_slots), onehot(write_slots))


def test_priority_sort_in_priority_order_correlates_one_and_reversed_minus_one():
    up = values(SORT, sort_trace(lambda r: r))
    assert up == {"priority_order": pytest.approx(1.0), "priority_order_head": pytest.approx(1.0),
                  "distinct_slots": 1.0, "readout": 1.0, "readout_head": 1.0}
    down = values(SORT, sort_trace(lambda r: 10 - r, lag=1))
    assert down == {"priority_order": pytest.approx(-1.0), "priority_order_head": pytest.approx(-1.0),
                    "distinct_slots": 1.0, "readout": 1.0, "readout_head": 1.0}
    assert SORT.playback_lag(sort_trace(lambda r: r, lag=1)) == 1
    wrapped = values(SORT, sort_trace(lambda r: (r - 3) % N))  # slots 13, 14, 15, 0, 1, 2: still in order
    assert wrapped["priority_order"] == pytest.approx(1.0)
    assert SORT.mechanisms[0].passes(down["priority_order"])  # either direction is the mechanism


def test_priority_sort_measures_each_write_head_alone():
    """Head 1 writes in reverse priority order; head 2, with more weight, writes every input to
    one slot, so the summed location has no order while head 1's is exactly reversed."""
    sorted_down = sort_trace(lambda r: 10 - r)
    T = sorted_down.inputs.shape[0]
    flat = onehot([3] * T) * 2
    two = Trace(sorted_down.inputs, sorted_down.read, np.concatenate([sorted_down.write, flat], axis=1))
    got = SORT.measure_mechanisms(two)
    assert got["priority_order"].value == 0.0
    head = got["priority_order_head"]
    assert head.value == pytest.approx(-1.0) and head.heads == (pytest.approx(-1.0), 0.0)
    assert head.note == "write head 1's location was rank-correlated with priority at -1.000 (per write head: -1.00, +0.00)"


def test_priority_sort_pairs_each_read_head_with_the_sorting_write_head():
    """Write head 1 sorts and write head 2, heavier, sits on slot 3; read head 2 reads write head
    1's slots in priority order while read head 1, heavier, sits on slot 15. The summed heads
    show neither; each head alone shows both."""
    sorted_down = sort_trace(lambda r: 10 - r)
    T = sorted_down.inputs.shape[0]
    write = np.concatenate([sorted_down.write, onehot([3] * T) * 2], axis=1)
    read = np.concatenate([onehot([15] * T) * 2, sorted_down.read], axis=1)
    got = SORT.measure_mechanisms(Trace(sorted_down.inputs, read, write), lag=0)
    assert got["readout"].value == 0.0
    head = got["readout_head"]
    assert head.value == 1.0 and head.heads == (0.0, 1.0)
    assert head.note == ("read head 2 read 4 of 4 outputs from the slot write head 1, the sorting head, gave the "
                         "input of that rank (per read head: 0%, 100%)")
    late = SORT.measure_mechanisms(Trace(sorted_down.inputs, read, write), lag=1)["readout_head"]
    assert late.heads[1] < 1.0  # read a step early, the same reads miss


def test_priority_sort_everything_on_one_slot_has_no_order():
    got = values(SORT, sort_trace(lambda r: 3))
    assert got["priority_order"] == 0.0 and got["distinct_slots"] == pytest.approx(1 / 6)


# ---- n-grams -----------------------------------------------------------------------------------

def test_ngrams_one_slot_per_context_scores_one_and_a_fixed_slot_only_on_repeats():
    task = get_task("ngrams", n=3, sequence_length=12)  # contexts of 2 bits
    bits = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0], np.float32)  # T = 11 input bits
    x = bits[:, None]
    ctx = task.contexts_of(bits)
    assert ctx.tolist() == [0, 0, 0, 1, 3, 2, 1, 3, 3, 2, 0]
    per_context = Trace(x, onehot(ctx + 4), onehot(np.r_[0, ctx[:-1]] + 4))  # write at t+1 on context(t)'s slot
    assert values(task, per_context) == {"read_by_context": 1.0, "write_by_context": 1.0}
    fixed = Trace(x, onehot([7] * 11), onehot([7] * 11))
    got = values(task, fixed)
    # read, steps 1..10: a hit when the context equals the previous step's (steps 1, 2 and 8), or at step 1?
    # step 1 is the first counted step: new slot and new context -> hit; then ctx repeats at 2 and 8
    assert got["read_by_context"] == pytest.approx(3 / 10)
    # write, steps 2..10 against contexts of steps 1..9 = 0 0 1 3 2 1 3 3 2: first is a hit, repeats at 2 and 8
    assert got["write_by_context"] == pytest.approx(3 / 9)


def test_context_addressing_by_hand():
    assert context_addressing([5, 6, 5, 6], [1, 2, 1, 2]).tolist() == [True, True, True, True]
    assert context_addressing([5, 5, 5], [1, 2, 1]).tolist() == [True, False, False]
    assert context_addressing([5, 6, 6], [1, 2, 1]).tolist() == [True, True, False]


# ---- helpers -------------------------------------------------------------------------------------

def test_helpers():
    assert signed_step(0, N - 1, N) == -1 and signed_step(N - 1, 0, N) == 1
    assert path(np.array([3, 3, 4, 4, 4, 2])) [0].tolist() == [3, 4, 2]
    assert path(np.array([3, 3, 4, 4, 4, 2]))[1].tolist() == [0, 2, 5]
    assert rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [1, 1, 2, 2]) == pytest.approx(0.8944, abs=1e-4)
    assert unwrap(np.array([N - 2, N - 1, 0]), N).tolist() == [-1, 0, 1]
    assert unwrap(np.array([3, 5, 4]), N).tolist() == [-1, 1, 0]


# ---- aggregation -------------------------------------------------------------------------------

def test_one_lag_per_model_catches_the_episode_that_slipped():
    traces = [copy_trace(PERFECT_LAG1)] * 9 + [copy_trace(SLIPPED)]
    lag, results = summarise(COPY, traces)
    assert lag == 1
    by = {r.mechanism.name: r for r in results}
    assert by["playback_start"].value == pytest.approx(0.9) and by["playback_start"].samples == 10
    assert by["parked"].value == pytest.approx(0.9) and not by["parked"].passes
    assert by["playback"].value == pytest.approx(0.9)
    assert by["parked"].verdict == "the read head slips off the start before playback on 10.0% of sequences"
    lo, hi = by["parked"].interval
    assert lo < 0.9 < hi and hi < 1
    assert by["write_walk"].passes and by["write_walk"].interval == (1.0, 1.0)


def test_aggregate_skips_episodes_a_mechanism_does_not_apply_to():
    m = COPY.mechanisms[0]
    (r,) = aggregate((m,), {m.name: [1.0, math.nan, 0.5]})
    assert r.samples == 2 and r.value == 0.75
    (r,) = aggregate((m,), {m.name: [math.nan]})
    assert r.samples == 0 and math.isnan(r.value) and not r.passes
    assert model_lag([1, 0, 1, None]) == 1 and model_lag([0, 1]) == 0 and model_lag([None]) is None


def test_a_per_head_mechanism_reports_the_head_that_passes_most_often_for_every_episode():
    """Head 3 passes on 3 of 4 episodes, head 1 on 2, head 2 never; an episode the mechanism does
    not apply to is skipped. The model's head is chosen once, not per episode: the episode where
    only head 1 passes counts as a miss for head 3."""
    m = next(m for m in RECALL.mechanisms if m.per_head)
    episodes = [(1.0, 0.0, 1.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), math.nan, (0.0, 0.0, 1.0)]
    (r,) = aggregate((m,), {m.name: episodes})
    assert r.head == 2 and r.value == 0.75 and r.samples == 4 and not r.passes
    assert r.title == "one read head reads the successor (read head 3)"
    assert r.to_dict()["head"] == 3
    lo, hi = r.interval
    assert lo < 0.75 < hi
    (r,) = aggregate((m,), {m.name: [math.nan]})
    assert r.samples == 0 and r.head is None and not r.passes


def test_a_two_sided_per_head_mechanism_reports_the_head_largest_in_size():
    m = next(m for m in SORT.mechanisms if m.per_head)
    (r,) = aggregate((m,), {m.name: [(0.5, -0.9, math.nan), (0.3, -0.95, math.nan), math.nan]})
    assert r.head == 1 and r.value == pytest.approx(-0.925) and r.samples == 2 and not r.passes
    assert r.title == "one write head's location follows priority (write head 2)"
    (r,) = aggregate((m,), {m.name: [(math.nan, math.nan)]})  # no head ranked anything
    assert r.samples == 0 and r.head is None


# ---- real episodes -------------------------------------------------------------------------------

def shipped(name: str):
    from ntmviz.app.sources import load_source

    path = CHECKPOINTS / f"{name}.safetensors"
    if not path.exists():
        pytest.skip(f"{path.name} is not shipped")
    return load_source(path)


def test_a_recorded_episode_of_the_shipped_copy_checkpoint():
    """The readings of a real episode agree with its weights, read off independently here."""
    from ntmviz.app.sources import record_episode

    torch.set_num_threads(1)
    source = shipped("copy-ntm")
    L = 12
    episode = record_episode(source, length=L, seed=3)
    assert task_of(episode) == source.task
    got = {m.name: r for m, r in readings(episode)}
    lag = source.task.playback_lag(ntmviz.mechanisms.trace_of(episode))
    write = episode.write.weights[:, 0].argmax(-1)  # [T]
    read = episode.read.weights[:, 0].argmax(-1)
    moves = (np.diff(write[:L]) + 64) % 128 - 64
    assert got["write_walk"].value == pytest.approx(max((moves == 1).mean(), (moves == -1).mean()))
    replayed = [read[L + 1 + j - lag] == write[j] for j in range(L)]
    assert got["playback"].value == pytest.approx(np.mean(replayed))
    assert got["playback_start"].value == float(replayed[0])
    waits = read[: L + 1 - lag]
    assert got["parked"].value == float(bool((waits == waits[0]).all() and replayed[0]))
    weakest = episode.read.weights[: L + 1 - lag, 0].max(-1).min()
    assert got["parked_focus"].value == pytest.approx(float(weakest))
    wrong = ((episode.outputs > 0.5) != (episode.targets > 0.5)).any(-1) & (episode.mask > 0)
    if not wrong.any():  # a model that copied this episode exactly read every vector from where it went
        assert got["playback"].value == 1.0


def test_the_shipped_recall_checkpoint_looks_up_the_successor_with_its_fourth_read_head():
    """What its card says: each item is written to a slot of its own, and at the answer its
    fourth read head reads mostly what the query's successor wrote; the four heads' mean does not."""
    torch.set_num_threads(1)
    source = shipped("associative_recall-ntm")
    assert source.model.config.read_heads == 4
    (report,) = measure(source.model, source.task, stream="validation", samples=60, batch_size=60)
    by = {r.mechanism.name: r for r in report.results}
    assert by["lookup"].samples == 60 and by["lookup"].value < 0.5 and not by["lookup"].passes
    assert by["item_slots"].value >= 0.95 and by["item_slots"].passes
    head = by["lookup_head"]
    assert head.head == 3 and head.samples == 60 and head.value >= 0.9 and head.passes
    table = report.table()
    assert "one read head reads the successor (read head 4)" in table
    rows = [line for line in table.splitlines() if line.endswith(("yes", "NO"))]
    assert len(rows) == 3 and len({line.index(" [") for line in rows}) == 1  # the columns line up
    assert "What the heads did (associative_recall, 60 sequences from the validation stream" in table


def test_measure_refuses_a_model_without_memory_and_the_training_stream():
    lstm = ntmviz.LSTMBaseline(ntmviz.LSTMConfig(input_size=COPY.input_size, output_size=COPY.output_size,
                                                 hidden_size=8, layers=1))
    with pytest.raises(ConfigError, match="no memory"):
        measure(lstm, COPY, samples=2)
    ntm = ntmviz.NTM(ntmviz.NTMConfig(input_size=COPY.input_size, output_size=COPY.output_size, memory_slots=N,
                                      memory_width=3, controller_size=8))
    with pytest.raises(ConfigError, match="validation and test"):
        measure(ntm, COPY, stream="train", samples=2)


def test_an_ensemble_gets_one_report_per_model_on_the_same_sequences():
    torch.manual_seed(0)
    task = COPY.replace(max_length=4)
    config = ntmviz.NTMConfig(input_size=task.input_size, output_size=task.output_size, memory_slots=N,
                              memory_width=3, controller_size=8)
    ensemble = ntmviz.build_model(config, seeds=[0, 1])
    reports = measure(ensemble, task, samples=6, batch_size=4)
    assert len(reports) == 2 and all(r.samples == 6 for r in reports)
    single = ntmviz.build_model(config, seeds=[1])  # member 1 alone
    (alone,) = measure(single, task, samples=6, batch_size=4)
    assert [r.value for r in alone.results] == pytest.approx([r.value for r in reports[1].results], nan_ok=True)


def test_an_episode_of_another_family_is_not_judged_by_the_ntms_algorithm():
    """The copy task's mechanisms are the NTM's algorithm: a DNC-like episode of the same task
    gets "does not apply" (NaN, and a note naming both), not a failure; an NTM's is measured."""
    task = get_task("copy").at(3)
    batch = task.sample(1, seed=0)
    model = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=12, memory_width=5))
    ntm_episode = ntmviz.record(model, batch, task=task)[0]
    measured = readings(ntm_episode)
    assert measured and all(not math.isnan(r.value) for _, r in measured)
    # the NTM's algorithm alone: the DNC's allocation and links are not asked of it
    assert [m.name for m, _ in measured] == ["write_walk", "playback", "playback_start", "parked", "parked_focus",
                                             "sharpness"]
    other = ntmviz.Episode.from_arrays(
        memory=ntm_episode.memory, read_weights=ntm_episode.read.weights, write_weights=ntm_episode.write.weights,
        inputs=ntm_episode.inputs, outputs=ntm_episode.outputs, targets=ntm_episode.targets, mask=ntm_episode.mask,
        meta={"task": "copy", "task_config": task.to_dict()}, title="a DNC")
    judged = readings(other)  # no algorithm of its family: every part listed, none applies
    assert [m.name for m, _ in judged] == [m.name for m in task.mechanisms]
    assert all(math.isnan(r.value) and "model: a DNC" in r.note and "models only" in r.note for _, r in judged)
    assert [r.note.split(" (")[0] for m, r in judged if m.name == "write_walk"] == ["measured for ntm models only"]
