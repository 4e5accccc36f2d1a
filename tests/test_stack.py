"""Tests for the neural stack, queue and deque (Grefenstette et al. 2015): the structure's
updates and reads against plain float64 loops of the paper's equations and its worked example,
the discrete limits, the weights' properties, gradients, the recorded episode, the seed
ensemble, the pop bias and a short training run."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from ntmviz.config import DequeConfig, QueueConfig, StackConfig
from ntmviz.episode import Episode, record
from ntmviz.errors import ConfigError
from ntmviz.models.stack import (
    DEQUE, QUEUE, STACK, NeuralStack, deque_read, deque_update, popped, push_rows, queue_read, queue_update,
    stack_read, stack_update, structure_pop, structure_read, structure_rows, structure_update, structure_values,
    sum_above, sum_below,
)
from ntmviz.tasks import get_task
from ntmviz.train import Trainer

CONFIGS = {"stack": StackConfig, "queue": QueueConfig, "deque": DequeConfig}
F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def task():
    return get_task("copy", bits=3, max_length=4)


def model_for(kind: str, task, **settings) -> NeuralStack:
    return NeuralStack(CONFIGS[kind].for_task(task, **{"memory_width": 4, "controller_size": 16, **settings}))


# ---- the paper's equations as plain loops (1-based in the paper; lists here, bottom to top) ------

def ref_pop_top(s: list[float], u: float) -> list[float]:
    """Eq. 2 (and 7): row i keeps max(0, s[i] - max(0, u - the strength above it))."""
    return [max(0.0, s[i] - max(0.0, u - sum(s[i + 1:]))) for i in range(len(s))]


def ref_pop_bottom(s: list[float], u: float) -> list[float]:
    """Eq. 4 (and 8): the same with the strength below."""
    return [max(0.0, s[i] - max(0.0, u - sum(s[:i]))) for i in range(len(s))]


def ref_read_top(s: list[float]) -> list[float]:
    """Eq. 3 (and 10): each row's share of the read."""
    return [min(s[i], max(0.0, 1.0 - sum(s[i + 1:]))) for i in range(len(s))]


def ref_read_bottom(s: list[float]) -> list[float]:
    """Eq. 5 (and 11)."""
    return [min(s[i], max(0.0, 1.0 - sum(s[:i]))) for i in range(len(s))]


def ref_run(kind: str, u, d, v):
    """u, d [T, H], v [T, H, M] (lists; H = 2 for the deque: top, bottom) -> per step
    (strengths, values, read weights per end), in the paper's own layout (the deque's eq. 6
    moves every row up one a step)."""
    s, V, out = [], [], []
    for t in range(len(u)):
        if kind == "stack":
            s, V = ref_pop_top(s, u[t][0]) + [d[t][0]], V + [v[t][0]]
            reads = [ref_read_top(s)]
        elif kind == "queue":
            s, V = ref_pop_bottom(s, u[t][0]) + [d[t][0]], V + [v[t][0]]
            reads = [ref_read_bottom(s)]
        else:
            both = ref_pop_bottom(ref_pop_top(s, u[t][0]), u[t][1])  # eqs. 7, 8
            s, V = [d[t][1]] + both + [d[t][0]], [v[t][1]] + V + [v[t][0]]  # eqs. 6, 9
            reads = [ref_read_top(s), ref_read_bottom(s)]
        out.append((list(s), [list(x) for x in V], reads))
    return out


def fixed_rows(kind: str, x: list, t: int, N: int) -> np.ndarray:
    """The paper's rows after step t placed in the module's fixed layout of N rows."""
    lo = N // 2 - 1 - t if kind == "deque" else 0
    out = np.zeros((N, *np.shape(x)[1:]))
    out[lo: lo + len(x)] = x
    return out


UPDATES = {"stack": (stack_update, stack_read), "queue": (queue_update, queue_read),
           "deque": (deque_update, deque_read)}


def run_module(kind: str, u: torch.Tensor, d: torch.Tensor, v: torch.Tensor):
    """The module's named functions over T steps: u, d [P, T, H], v [P, T, H, M] -> per step
    (strength [P, N], values [P, N, M], weights [P, H, N], reads [P, H, M])."""
    P, T, H = u.shape
    N = structure_rows(kind, T)
    update, read = UPDATES[kind]
    strength, values = torch.zeros(P, N, dtype=u.dtype), torch.zeros(P, N, v.shape[-1], dtype=u.dtype)
    out = []
    for t in range(T):
        if kind == "deque":
            strength = update(strength, u[:, t], d[:, t], t)
        else:
            strength = update(strength, u[:, t, 0], d[:, t, 0], t)
        values = structure_values(kind, values, v[:, t], t)
        w, r = read(strength, values)
        if kind != "deque":
            w, r = w[:, None], r[:, None]
        out.append((strength, values, w, r))
    return out


@pytest.mark.parametrize("kind", ["stack", "queue", "deque"])
def test_updates_and_reads_match_the_paper_loops(kind):
    g = torch.Generator().manual_seed(1)
    P, T, M = 3, 6, 2
    H = 2 if kind == "deque" else 1
    u = torch.rand(P, T, H, generator=g, dtype=F64)
    d = torch.rand(P, T, H, generator=g, dtype=F64)
    v = torch.rand(P, T, H, M, generator=g, dtype=F64) * 2 - 1
    got = run_module(kind, u, d, v)
    N = structure_rows(kind, T)
    for p in range(P):
        want = ref_run(kind, u[p].tolist(), d[p].tolist(), v[p].tolist())
        for t, (s, V, reads) in enumerate(want):
            strength, values, w, r = (x[p].numpy() for x in got[t])
            np.testing.assert_allclose(strength, fixed_rows(kind, s, t, N), atol=1e-12)
            np.testing.assert_allclose(values, fixed_rows(kind, V, t, N), atol=1e-12)
            for h, weights in enumerate(reads):
                np.testing.assert_allclose(w[h], fixed_rows(kind, weights, t, N), atol=1e-12)
                np.testing.assert_allclose(r[h], np.array(weights) @ np.array(V), atol=1e-12)


def test_the_papers_worked_example():
    """Figure 1a: push v1 with d = 0.8; pop 0.1 and push v2 with 0.5; pop 0.9 and push v3 with
    0.9. The last pop takes all of v2 and 0.4 of v1, so s_3[2] = 0 and the read skips v2 (the
    text of section 3.1)."""
    V = torch.eye(3, dtype=F64)  # v1, v2, v3 as one-hot rows, so a read shows its weights
    u, d = [0.0, 0.1, 0.9], [0.8, 0.5, 0.9]
    strengths = [[0.8, 0, 0], [0.7, 0.5, 0], [0.3, 0.0, 0.9]]
    reads = [[0.8, 0, 0], [0.5, 0.5, 0], [0.1, 0.0, 0.9]]
    s, values = torch.zeros(1, 3, dtype=F64), V[None]
    for t in range(3):
        s = stack_update(s, torch.tensor([u[t]], dtype=F64), torch.tensor([d[t]], dtype=F64), t)
        w, r = stack_read(s, values * (torch.arange(3) <= t)[None, :, None])
        assert s[0].tolist() == pytest.approx(strengths[t], abs=1e-12)
        assert w[0].tolist() == pytest.approx(reads[t], abs=1e-12)
        assert r[0].tolist() == pytest.approx(reads[t], abs=1e-12)


# ---- discrete limits ---------------------------------------------------------------------------

def run_discrete(kind: str, ops: list[tuple], M: int = 3):
    """ops: per step (u, d, value index) per end (top first) -> [(reads [H, M] one-hot rows
    as lists, strength)] run through the module's named functions."""
    T = len(ops)
    H = 2 if kind == "deque" else 1
    u = torch.tensor([[[o[h][0] for h in range(H)] for o in ops]], dtype=F64)
    d = torch.tensor([[[o[h][1] for h in range(H)] for o in ops]], dtype=F64)
    v = torch.zeros(1, T, H, M, dtype=F64)
    for t, o in enumerate(ops):
        for h in range(H):
            if o[h][2] is not None:
                v[0, t, h, o[h][2]] = 1
    return [(r[0].tolist(), s[0]) for s, _, _, r in run_module(kind, u, d, v)]


A, B_, C_ = [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]
NOTHING = [0.0, 0.0, 0.0]


def test_discrete_stack_is_last_in_first_out():
    # push a, push b, pop (reads a), pop and push c in one step (reads c, a is gone), pop (empty)
    steps = run_discrete("stack", [((0, 1, 0),), ((0, 1, 1),), ((1, 0, None),), ((1, 1, 2),), ((1, 0, None),)])
    assert [r for r, _ in steps] == [[A], [B_], [A], [C_], [NOTHING]]
    assert steps[3][1].tolist() == [0, 0, 0, 1, 0]


def test_discrete_queue_is_first_in_first_out():
    # push a, push b (the front is still a), pop (reads b), push c, pop (reads c), pop (empty)
    steps = run_discrete("queue", [((0, 1, 0),), ((0, 1, 1),), ((1, 0, None),), ((0, 1, 2),), ((1, 0, None),),
                                   ((1, 0, None),)])
    assert [r for r, _ in steps] == [[A], [A], [B_], [B_], [C_], [NOTHING]]


def test_discrete_deque_at_both_ends():
    top = lambda u, d, x=None: (u, d, x)  # noqa: E731
    ops = [
        (top(0, 1, 0), top(0, 1, 1)),  # a on top, b at the bottom: b a
        (top(0, 1, 2), top(0, 0)),  # c on top: b a c
        (top(1, 0), top(0, 0)),  # pop the top: b a
        (top(0, 0), top(1, 0)),  # pop the bottom: a
        (top(0, 0), top(0, 1, 2)),  # c at the bottom: c a
        (top(1, 0), top(1, 0)),  # pop both ends: empty
    ]
    steps = run_discrete("deque", ops)
    assert [r for r, _ in steps] == [[A, B_], [C_, B_], [A, B_], [A, A], [A, C_], [NOTHING, NOTHING]]
    # rows T + t (top) and T - 1 - t (bottom): after step 4, c at row 6 - 1 - 4 = 1 and a at row 6
    assert steps[4][1].nonzero().flatten().tolist() == [1, 6]


# ---- properties --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["stack", "queue", "deque"])
def test_weights_and_strengths_stay_in_range(kind):
    g = torch.Generator().manual_seed(2)
    P, T = 16, 12
    H = 2 if kind == "deque" else 1
    # half the rows nearly discrete, half anywhere in (0, 1)
    scale = torch.tensor([1.0, 6.0], dtype=F64).repeat(P // 2)[:, None, None]
    raw = torch.randn(P, T, 2 * H, generator=g, dtype=F64) * scale
    u, d = torch.sigmoid(raw).split(H, -1)
    N = structure_rows(kind, T)
    strength = torch.zeros(P, N, dtype=F64)
    for t in range(T):
        after = structure_pop(kind, strength, u[:, t])
        took = popped(strength, after)  # [P, H, N]
        assert (took >= -1e-12).all()
        before = [strength, *after[:-1]]
        for h in range(H):  # a pop takes u, or all there is
            want = torch.minimum(u[:, t, h], before[h].sum(-1))
            torch.testing.assert_close(took[:, h].sum(-1), want, atol=1e-12, rtol=0)
        strength = structure_update(kind, strength, u[:, t], d[:, t], t)
        assert ((strength >= 0) & (strength <= 1)).all()
        w, _ = structure_read(kind, strength, torch.zeros(P, N, 1, dtype=F64))
        assert (w >= 0).all() and (w.sum(-1) <= 1 + 1e-12).all()
        # a read takes 1 of strength, or all there is
        torch.testing.assert_close(w.sum(-1), strength.sum(-1, keepdim=True).clamp(max=1).expand(P, H),
                                   atol=1e-12, rtol=0)


def test_sums_above_and_below():
    s = torch.tensor([[0.5, 0.25, 0.0, 1.0]], dtype=F64)
    assert sum_above(s).tolist() == [[1.25, 1.0, 1.0, 0.0]]
    assert sum_below(s).tolist() == [[0.0, 0.5, 0.75, 0.75]]


# ---- gradients ---------------------------------------------------------------------------------

def kink_margin(kind: str, strength, pop, push, t) -> float:
    """The smallest distance of any max / min argument of one update and read from its kink."""
    args = []
    s = strength
    ends = {"stack": ("top",), "queue": ("bottom",), "deque": ("top", "bottom")}[kind]
    cover = {"top": sum_above, "bottom": sum_below}
    for h, end in enumerate(ends):
        left = pop[:, h, None] - cover[end](s)
        args += [left, s - left.clamp(min=0)]
        s = (s - left.clamp(min=0)).clamp(min=0)
    s = structure_update(kind, strength, pop, push, t)
    for end in ends:
        room = 1 - cover[end](s)
        args += [room, s - room.clamp(min=0)]
    rows = torch.ones_like(strength, dtype=torch.bool)
    for row in push_rows(kind, t, strength.shape[-1]):
        rows[:, row] = False  # the pushed rows' old strengths are replaced, not popped
    pre = [a[rows] for a in args[: 2 * len(ends)]]
    return float(min(a.abs().min() for a in pre + args[2 * len(ends):]))


def test_derivatives_at_ties_take_the_left_argument():
    """Footnote 1: at max(x, y) or min(x, y) with x = y the derivative is the left argument's.
    Read of s = [0.5, 0.5]: row 0's weight is min(s[0], max(0, 1 - s[1])) = min(0.5, 0.5), so
    dw[0]/ds[0] = 1 and dw[0]/ds[1] = 0. Pop u = 0.5 from the top of [0.5, 0.5] (appendix A,
    eqs. 16, 17: derivatives only where s_t[i] > 0 and u - the strength above > 0): row 1 ends
    at 0 (no derivative); row 0 has u - 0.5 = 0 (no pop derivative, and ds_t[0]/ds_t-1[0] = 1)."""
    s = torch.tensor([[0.5, 0.5]], dtype=F64, requires_grad=True)
    w, _ = stack_read(s, torch.zeros(1, 2, 1, dtype=F64))
    assert torch.autograd.grad(w[0, 0], s)[0].tolist() == [[1.0, 0.0]]
    u = torch.tensor([0.5], dtype=F64, requires_grad=True)
    after = structure_pop("stack", s, u[:, None])[0]
    assert after.tolist() == [[0.5, 0.0]]
    ds0, du0 = torch.autograd.grad(after[0, 0], (s, u), retain_graph=True)
    ds1, du1 = torch.autograd.grad(after[0, 1], (s, u))
    assert (ds0.tolist(), du0.tolist()) == ([[1.0, 0.0]], [0.0])
    assert (ds1.tolist(), du1.tolist()) == ([[0.0, 0.0]], [0.0])


@pytest.mark.parametrize("kind", ["stack", "queue", "deque"])
def test_gradcheck_away_from_the_kinks(kind):
    g = torch.Generator().manual_seed({"stack": 3, "queue": 4, "deque": 5}[kind])
    P, M = 2, 3
    H = 2 if kind == "deque" else 1
    N = 6 if kind == "deque" else 5
    t = 2 if kind == "deque" else N - 1
    strength = (0.1 + 0.5 * torch.rand(P, N, generator=g, dtype=F64)).requires_grad_()
    pop = (0.2 + 0.6 * torch.rand(P, H, generator=g, dtype=F64)).requires_grad_()
    push = (0.1 + 0.8 * torch.rand(P, H, generator=g, dtype=F64)).requires_grad_()
    values = torch.randn(P, N, M, generator=g, dtype=F64).requires_grad_()
    assert kink_margin(kind, strength.detach(), pop.detach(), push.detach(), t) > 1e-3

    def f(strength, pop, push, values):
        s = structure_update(kind, strength, pop, push, t)
        return structure_read(kind, s, values)

    assert torch.autograd.gradcheck(f, (strength, pop, push, values), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["stack", "deque"])
def test_no_nan_gradients_even_at_discrete_pushes_and_pops(kind, task):
    torch.manual_seed(0)
    model = model_for(kind, task)
    batch = task.sample(4, seed=3)
    for bias in (None, 30.0, -30.0):  # as trained; every push and pop 1 (ties everywhere); every one 0
        model.zero_grad()
        if bias is not None:
            with torch.no_grad():
                model.interface.weight.zero_()
                model.interface.bias.fill_(bias)
        model(batch.inputs).sum().backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


# ---- the model ---------------------------------------------------------------------------------

def test_declarations():
    for fam, H, name in ((STACK, 1, "Neural stack"), (QUEUE, 1, "Neural queue"), (DEQUE, 2, "Neural deque")):
        assert fam.title == name and fam.order == "write, read" and fam.memory == "written"
        push, read = fam.group("push"), fam.group("read")
        assert (push.count, read.count) == (H, H) and push.writes and read.reads
        assert not push.normalised and not read.normalised
        assert [p.name for p in push.params] == ["push", "value"] and [p.name for p in read.params] == ["pop"]
        assert [f.name for f in fam.slot_state] == ["strength"]
    assert "top end" in DEQUE.doc and "bottom end" in DEQUE.doc


@pytest.mark.parametrize("kind", ["stack", "queue", "deque"])
def test_recorded_episode(kind, task, tmp_path):
    torch.manual_seed(1)
    model = model_for(kind, task)
    batch = task.sample(3, seed=2)
    T = batch.inputs.shape[1]
    N, H, M = structure_rows(kind, T), model.ends, 4
    episodes = record(model, batch, task=task)
    probs = torch.sigmoid(model(batch.inputs)).detach().numpy()
    for b, e in enumerate(episodes):
        n = int(batch.lengths[b])
        assert e.family.name == kind and e.steps == n
        assert e.memory.shape == (n + 1, N, M) and (e.memory[0] == 0).all()
        np.testing.assert_allclose(e.outputs, probs[b, :n], atol=1e-6)
        push, read, strength = e.heads["push"], e.heads["read"], e.slot_state["strength"]
        assert push.weights.shape == read.weights.shape == read.popped.shape == (n, H, N)
        assert e.reads.shape == (n, H, M) and strength.shape == (n, N)
        for t in range(n):
            # the read is its weights over the memory this step left (the order "write, read")
            np.testing.assert_allclose(e.reads[t], read.weights[t] @ e.memory[t + 1], atol=1e-5)
            rows = push_rows(kind, t, N)
            changed = np.zeros(N, bool)
            for h, row in enumerate(rows):
                want = np.zeros(N, np.float32)
                want[row] = push.push[t, h]
                np.testing.assert_array_equal(push.weights[t, h], want)  # d_t on the row pushed at t
                np.testing.assert_array_equal(e.memory[t + 1, row], push.value[t, h])
                assert strength[t, row] == pytest.approx(float(push.push[t, h]))
                changed[row] = True
            np.testing.assert_array_equal(e.memory[t + 1, ~changed], e.memory[t, ~changed])  # rows never change
        assert ((strength >= 0) & (strength <= 1)).all() and (read.weights.sum(-1) <= 1 + 1e-5).all()
        # the named functions replay the recorded pops and pushes to the recorded strengths and pops
        s = torch.zeros(1, N, dtype=F64)
        for t in range(n):
            u, d = torch.tensor(read.pop[t:t + 1], dtype=F64), torch.tensor(push.push[t:t + 1], dtype=F64)
            took = popped(s, structure_pop(kind, s, u))
            s = structure_update(kind, s, u, d, t)
            np.testing.assert_allclose(took[0], read.popped[t], atol=1e-5)
            np.testing.assert_allclose(s[0], strength[t], atol=1e-5)
        # the file keeps the declaration and the slot state
        path = e.save(tmp_path / f"{kind}{b}.safetensors")
        back = Episode.load(path)
        assert back.family == e.family and back.checksum == "verified"
        np.testing.assert_array_equal(back.slot_state["strength"], strength)
        np.testing.assert_array_equal(back.heads["read"].popped, read.popped)
        assert [label for _, _, label, _ in back.head_list()] == [f"{g} {h + 1}" for g in ("push", "read")
                                                                  for h in range(H)]


@pytest.mark.parametrize("kind", ["stack", "deque"])
def test_seed_ensemble_members_are_the_single_models(kind, task):
    members = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        members.append(model_for(kind, task))
    ensemble = NeuralStack.stack(members)
    assert ensemble.models == 2
    batch = task.sample(4, seed=0)
    out = ensemble(torch.cat([batch.inputs, batch.inputs]))
    for k, single in enumerate(members):
        torch.testing.assert_close(out[4 * k: 4 * k + 4], single(batch.inputs), atol=1e-6, rtol=1e-5)
        for name, value in single.member_state_dict(0).items():
            assert torch.equal(ensemble.member_state_dict(k)[name], value), name


def test_pop_bias_initialisation(task):
    """Appendix B: the pop's bias starts negative (config.pop_bias), the push's does not."""
    for kind in ("stack", "deque"):
        model = model_for(kind, task, pop_bias=-2.5)
        H = model.ends
        assert (model.interface.bias[:, H: 2 * H] == -2.5).all()
        assert (model.interface.bias[:, :H] != -2.5).all()
        assert (model.with_models(3).interface.bias[:, H: 2 * H] == -2.5).all()
        with torch.no_grad():
            model.interface.weight.zero_()
        e = record(model, task.sample(1, seed=0), task=task)[0]
        np.testing.assert_allclose(e.heads["read"].pop, 1 / (1 + math.exp(2.5)), rtol=1e-5)
    assert StackConfig.for_task(task).pop_bias == -1.0  # the paper's value


def test_bad_inputs_are_refused(task):
    model = model_for("queue", task)
    I = task.input_size
    for bad in (torch.zeros(2, 5, I + 1), torch.zeros(5, I), torch.zeros(2, 3, 5, I)):
        with pytest.raises(ConfigError, match="inputs must be"):
            model(bad)
    with pytest.raises(ConfigError, match="split evenly"):
        model.with_models(2)(torch.zeros(3, 5, I))


def test_short_training_run_stays_finite(task):
    torch.manual_seed(0)
    random.seed(0)
    model = model_for("deque", task)
    trainer = Trainer(model, task, seeds=[0], batch_size=8)
    assert trainer.run(20) == "done"
    losses = trainer.history.loss
    assert losses and all(math.isfinite(x) for x in losses)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    e = record(model, task.sample(2, seed=1), task=task)[0]
    assert np.isfinite(e.memory).all() and np.isfinite(e.heads["read"].weights).all()
