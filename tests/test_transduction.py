"""The transduction tasks (reversal, bigram flipping) and the allocation task: what they ask
for, step by step, against a plain reading of their definitions; and their mechanisms on
hand-made traces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ntmviz.errors import ConfigError
from ntmviz.tasks import get_task
from ntmviz.tasks.mechanism import Trace


def _one_hot(slots, N):
    w = np.zeros((len(slots), 1, N), np.float32)
    w[np.arange(len(slots)), 0, slots] = 1
    return w


@pytest.mark.parametrize("name", ["copy", "reversal", "bigram_flip"])
def test_targets_play_the_inputs_in_the_tasks_order(name):
    task = get_task(name, bits=4, min_length=2, max_length=8)
    batch = task.sample(200, seed=11)
    lengths = set()
    for i in range(200):
        L = (int(batch.lengths[i]) - 1) // 2
        lengths.add(L)
        x = batch.inputs[i, :L, :4].numpy()
        order = {"copy": list(range(L)), "reversal": list(range(L - 1, -1, -1)),
                 "bigram_flip": [j + 1 if j % 2 == 0 else j - 1 for j in range(L)]}[name]
        assert (batch.targets[i, L + 1: 2 * L + 1].numpy() == x[order]).all()
        assert batch.mask[i].tolist() == [0.0] * (L + 1) + [1.0] * L + [0.0] * (batch.inputs.shape[1] - 2 * L - 1)
        assert batch.inputs[i, L, 4] == 1 and batch.inputs[i, :, 4].sum() == 1
    want = {2, 4, 6, 8} if name == "bigram_flip" else set(range(2, 9))
    assert lengths == want


def test_bigram_flip_is_even_and_refuses_no_pairs():
    assert get_task("bigram_flip").at(7).max_length == 8
    with pytest.raises(ConfigError, match="max_length must be at least 2"):
        get_task("bigram_flip", min_length=1, max_length=1)


def test_allocation_is_copy_sequences_in_turn():
    task = get_task("allocation", bits=3, min_length=1, max_length=3, sequences=3)
    batch = task.sample(50, seed=2)
    for i in range(50):
        x, y, m = batch.inputs[i].numpy(), batch.targets[i].numpy(), batch.mask[i].numpy()
        t, parts = 0, 0
        while t < int(batch.lengths[i]):
            L = int(np.flatnonzero(x[t:, 3] == 1)[0])
            assert 1 <= L <= 3
            assert (y[t + L + 1: t + 2 * L + 1] == x[t: t + L, :3]).all()
            assert m[t: t + L + 1].sum() == 0 and m[t + L + 1: t + 2 * L + 1].all()
            t += 2 * L + 1
            parts += 1
        assert parts == 3 and t == int(batch.lengths[i])
    assert task.required_slots() == 3
    with pytest.raises(ConfigError, match="needs 3 memory slots, the model has 2"):
        task.check_fits(2)


def test_reversal_playback_on_a_stack_like_trace():
    """Written to slots 0..L-1, read back L-1..0: playback 1; read in copy's order: a fraction."""
    task = get_task("reversal", bits=2, max_length=4)
    L, N = 4, 9
    inputs = np.zeros((2 * L + 1, 3), np.float32)
    inputs[L, 2] = 1
    write = _one_hot([0, 1, 2, 3] + [3] * (L + 1), N)
    good = _one_hot([0] * (L + 1) + [3, 2, 1, 0], N)
    got = task.measure_mechanisms(Trace(inputs, good, write), lag=0)
    assert got["playback"].value == 1.0
    assert math.isnan(got["least_used"].value)  # no usage recorded: not a DNC's trace
    wrong = _one_hot([0] * (L + 1) + [0, 1, 2, 3], N)
    assert task.measure_mechanisms(Trace(inputs, wrong, write), lag=0)["playback"].value == 0.0


def test_playback_finds_a_vector_where_any_write_head_put_it():
    """A deque pushes each vector onto both its ends (rows 0-3 and 8-5 here) and reads it back
    from either. The heads' summed write goes one end or the other by a hair (0.51 against 0.49),
    so only where each write head put each vector tells a read from the second end it is right."""
    task = get_task("reversal", bits=2, max_length=4)
    L, N = 4, 9
    T = 2 * L + 1
    inputs = np.zeros((T, 3), np.float32)
    inputs[L, 2] = 1
    front = _one_hot([0, 1, 2, 3] + [3] * (L + 1), N) * np.array([.51, .49, .51, .49] + [.5] * (L + 1))[:, None, None]
    back = _one_hot([8, 7, 6, 5] + [5] * (L + 1), N) * np.array([.49, .51, .49, .51] + [.5] * (L + 1))[:, None, None]
    from_back = _one_hot([0] * (L + 1) + [5, 6, 7, 8], N)  # output j plays vector L-1-j: rows 5, 6, 7, 8
    from_front = _one_hot([0] * (L + 1) + [3, 2, 1, 0], N)
    both = np.concatenate([front, back], 1)
    assert task.measure_mechanisms(Trace(inputs, from_back, both), lag=0)["playback"].value == 1.0
    assert task.measure_mechanisms(Trace(inputs, from_front, both), lag=0)["playback"].value == 1.0
    # the heads' sum alone (one write head) loses the reads of the vectors it put at the other end
    summed = (front + back)
    assert task.measure_mechanisms(Trace(inputs, from_back, summed), lag=0)["playback"].value == 0.5
    assert task.measure_mechanisms(Trace(inputs, from_front, summed), lag=0)["playback"].value == 0.5
    wrong = _one_hot([0] * (L + 1) + [4, 4, 4, 4], N)
    assert task.measure_mechanisms(Trace(inputs, wrong, both), lag=0)["playback"].value == 0.0


def test_dnc_mechanisms_read_usage_and_modes():
    task = get_task("copy", bits=2, max_length=3)
    L, N = 3, 5
    T = 2 * L + 1
    inputs = np.zeros((T, 3), np.float32)
    inputs[L, 2] = 1
    write = _one_hot([4, 2, 0] + [0] * (L + 1), N)
    usage = np.ones((T, N), np.float32)
    usage[0, 4] = usage[1, 2] = usage[2, 1] = 0.0  # the third write (slot 0) misses the least-used slot 1
    reads = [0] * (L + 1) + [4, 2, 0]
    modes = np.zeros((T, 1, 3), np.float32)
    modes[:, 0, 2] = 1
    modes[L + 2, 0] = [0.1, 0.8, 0.1]  # the second playback read came by content
    extra = {"slot.usage": usage, "read.modes": modes, "read.forward": _one_hot(reads, N)}
    got = task.measure_mechanisms(Trace(inputs, _one_hot(reads, N), write, extra), lag=0)
    assert got["least_used"].value == pytest.approx(2 / 3)
    assert got["follows_links"].value == pytest.approx(1 / 2)  # reads 2 and 3: read 2 by content
    assert got["playback"].value == 1.0


def test_allocation_reuse_and_distinct_slots():
    task = get_task("allocation", bits=2, min_length=2, max_length=2, sequences=3)
    N = 3
    steps = []
    inputs = np.zeros((15, 3), np.float32)
    for k in range(3):
        inputs[5 * k + 2, 2] = 1
    # sequence 1 -> slots 0, 1; sequence 2 -> slots 2, 0 (0 reused); sequence 3 -> slots 1, 1 (one clash)
    writes = [0, 1, 1, 1, 1, 2, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    got = task.measure_mechanisms(Trace(inputs, _one_hot([0] * 15, N), _one_hot(writes, N)))
    assert got["reuse"].value == pytest.approx(3 / 4)  # slot 0 in seq 2; slot 1 twice in seq 3
    assert got["distinct"].value == pytest.approx(5 / 6)
    roomy = task.measure_mechanisms(Trace(inputs, _one_hot([0] * 15, 7), _one_hot(writes, 7)))
    assert math.isnan(roomy["reuse"].value) and "nothing must be reused" in roomy["reuse"].note
