"""Tests for the stack-augmented RNN (Joulin & Mikolov 2015): the fused time loop against a plain
float64 loop of the paper's equations (values and gradients), gradcheck, the stack's discrete
limits, the recorded episode's arrays, files, the seed ensemble and a short training run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ntmviz.config import StackRNNConfig
from ntmviz.contract import Family
from ntmviz.episode import Episode, record
from ntmviz.errors import ConfigError
from ntmviz.models.stack_rnn import (
    ACTIONS, EMPTY, FAMILY, MOVES, REORDER, StackRNN, _Sequence, replay, stack_step,
)
from ntmviz.tasks.languages import AnBn, AnBnCn
from ntmviz.train import Trainer


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_model(seed=0, dtype=torch.float64, models=1, **changes) -> StackRNN:
    torch.manual_seed(seed)
    base = dict(input_size=3, output_size=2, controller_size=5, stacks=3, stack_depth=10, read_depth=2)
    return StackRNN(StackRNNConfig(**{**base, **changes}), models).to(dtype)


def one_hot_inputs(B, T, I, seed=1, dtype=torch.float64) -> torch.Tensor:
    ids = torch.randint(0, I, (B, T), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(ids, I).to(dtype)


def reference(model: StackRNN, x: torch.Tensor) -> tuple[torch.Tensor, list[list[list[torch.Tensor]]]]:
    """The paper's equations for one sequence x [T, I] of a K = 1 model, a scalar at a time, over
    the configured depth D (no cut): (logits [T, O], the stacks before and after every step as
    nested lists [T+1][S][D] of 0-d tensors). Differentiable, for gradients too."""
    c = model.config
    C, S, k, D = c.controller_size, c.stacks, c.read_depth, c.stack_depth
    U, b = model.input.weight[0], model.input.bias[0]
    R, P = model.recurrent[0][:, :C], model.recurrent[0][:, C:]
    A, bias = model.heads.weight[0], model.heads.bias[0]
    V, c_out = model.output.weight[0], model.output.bias[0]
    empty = torch.tensor(EMPTY, dtype=x.dtype)
    h = torch.zeros(C, dtype=x.dtype)
    s = [[empty] * D for _ in range(S)]
    history, logits = [s], []
    for t in range(x.shape[0]):
        top = torch.stack([s[j][i] for j in range(S) for i in range(k)])  # s^k_{t-1}, stack major
        h = torch.sigmoid(U @ x[t] + b + R @ h + P @ top)
        new = []
        for j in range(S):
            push, noop, pop = torch.softmax(A[3 * j: 3 * j + 3] @ h + bias[3 * j: 3 * j + 3], 0)  # MOVES order
            value = torch.sigmoid(A[3 * S + j] @ h + bias[3 * S + j])
            below = lambda i: s[j][i] if i < D else empty  # noqa: E731  (EMPTY comes up from below)
            column = [push * value + pop * below(1) + noop * s[j][0]]
            column += [push * s[j][i - 1] + pop * below(i + 1) + noop * s[j][i] for i in range(1, D)]
            new.append(column)
        s = new
        history.append(s)
        logits.append(V @ h + c_out)
    return torch.stack(logits), history


def as_array(history, depth: int) -> np.ndarray:
    """[T+1][S][D] -> [T+1, S, depth] (the first `depth` positions)."""
    return np.array([[[v.detach().item() for v in column[:depth]] for column in step] for step in history])


# ---- the maths ----------------------------------------------------------------------------

@pytest.mark.parametrize("depth, steps", [(10, 7), (3, 9)], ids=["deeper than the sequence", "bottom falls off"])
def test_forward_matches_the_papers_equations(depth, steps):
    model = make_model(stack_depth=depth)
    x = one_hot_inputs(2, steps, 3)
    logits, run = model.run(x)
    assert torch.allclose(model(x), logits, atol=1e-12)
    D = min(depth, steps)  # the run's own depth: deeper positions stay EMPTY
    assert run.stacks.shape == (1, 2, steps + 1, 3, D)
    for b in range(2):
        want_logits, history = reference(model, x[b])
        assert torch.allclose(logits[b], want_logits, atol=1e-12)
        full = as_array(history, depth)
        np.testing.assert_allclose(run.stacks[0, b].numpy(), full[..., :D], atol=1e-12)
        np.testing.assert_allclose(full[..., D:], EMPTY, atol=1e-12)  # (a mixture of EMPTYs)


def test_gradients_match_the_papers_equations():
    model = make_model(stack_depth=4)
    x = one_hot_inputs(2, 6, 3)
    weights = torch.randn(2, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (model(x) * weights).sum().backward()
    fused = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    sum((reference(model, x[b])[0] * weights[b]).sum() for b in range(2)).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(fused[name], p.grad, atol=1e-10), name


@pytest.mark.parametrize("depth", [3, 2], ids=["as deep as the sequence", "bottom falls off"])
def test_gradcheck_of_the_time_loop(depth):
    K, B, T, C, S, k = 2, 1, 3, 2, 2, 2
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, dtype=torch.float64, generator=g).requires_grad_()

    operands = (rand(K, B, T, C), rand(K, C, C), rand(K, S * k, C), rand(K, C, 4 * S), rand(K, 1, 4 * S))
    assert torch.autograd.gradcheck(lambda *a: _Sequence.apply(*a, k, depth, False), operands)


def test_the_stacks_discrete_limits():
    stack = torch.tensor([[0.3, 0.7, 0.9, EMPTY]], dtype=torch.float64)  # one stack, depth 4
    value = torch.tensor([0.5], dtype=torch.float64)

    def act(name):
        return torch.eye(3, dtype=torch.float64)[ACTIONS.index(name)].unsqueeze(0)

    assert stack_step(stack, act("push"), value).tolist() == [[0.5, 0.3, 0.7, 0.9]]  # the bottom falls off
    assert stack_step(stack, act("pop"), value).tolist() == [[0.7, 0.9, EMPTY, EMPTY]]  # EMPTY from below
    assert stack_step(stack, act("no-op"), value).tolist() == stack.tolist()
    empty = torch.full((1, 3), EMPTY, dtype=torch.float64)
    assert stack_step(empty, act("pop"), value).tolist() == empty.tolist()  # popping an empty stack
    mixed = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)  # push, pop, no-op
    want = 0.2 * torch.tensor([0.5, 0.3, 0.7, 0.9]) + 0.5 * torch.tensor([0.7, 0.9, EMPTY, EMPTY]) + 0.3 * stack[0]
    assert torch.allclose(stack_step(stack, mixed, value)[0], want.double())
    assert [MOVES[i] for i in REORDER] == list(ACTIONS)


def test_discrete_actions_in_eval_mode_only():
    model = make_model(test_actions="discrete")
    x = one_hot_inputs(2, 6, 3)
    _, soft = model.train().run(x)
    assert not ((soft.moves == 0) | (soft.moves == 1)).all()
    _, hard = model.eval().run(x)
    assert ((hard.moves == 0) | (hard.moves == 1)).all() and (hard.moves.sum(-1) == 1).all()
    # one-hot moves push the exact value, pop or keep: every position holds EMPTY or a pushed value
    pushed = set(np.round(hard.values.numpy().ravel(), 12)) | {EMPTY}
    assert set(np.round(hard.stacks.numpy().ravel(), 12)) <= pushed
    assert model.with_models(2).eval().discrete and not make_model().eval().discrete


def test_a_checkpoint_keeps_discrete_test_actions(tmp_path):
    from ntmviz import checkpoint

    model = make_model(dtype=torch.float32, test_actions="discrete")
    checkpoint.save(tmp_path / "hard.safetensors", model, task=AnBn())
    loaded = checkpoint.load(tmp_path / "hard.safetensors").model.eval()
    assert loaded.config.test_actions == "discrete" and loaded.discrete
    x = one_hot_inputs(2, 6, 3, dtype=torch.float32)
    _, run = loaded.run(x)
    assert ((run.moves == 0) | (run.moves == 1)).all()
    with pytest.raises(ConfigError, match="test_actions"):
        StackRNNConfig(3, 2, test_actions="hard")


# ---- the model's interface -------------------------------------------------------------------

def test_bad_inputs_are_refused():
    model = make_model(dtype=torch.float32, models=2)
    with pytest.raises(ConfigError, match="inputs must be"):
        model(torch.zeros(2, 5, 4))
    with pytest.raises(ConfigError, match="do not split evenly over 2 models"):
        model(torch.zeros(3, 5, 3))


def test_seed_ensemble_members_are_the_single_models():
    members = [make_model(seed, dtype=torch.float32) for seed in (3, 4)]
    ensemble = StackRNN.stack(members)
    x = one_hot_inputs(4, 9, 3, dtype=torch.float32)
    out = ensemble(torch.cat([x, x]))
    out.sum().backward()
    for k, single in enumerate(members):
        assert torch.allclose(out[4 * k: 4 * k + 4], single(x), atol=1e-6)
        single(x).sum().backward()
        assert torch.allclose(ensemble.recurrent.grad[k], single.recurrent.grad, atol=1e-5)
        assert torch.equal(ensemble.member(k).heads.weight, single.heads.weight)


def test_the_declaration():
    family = FAMILY.resolve(make_model().config)
    assert [(g.name, g.count) for g in family.groups] == [("read", 2), ("stack", 3)]
    assert family.group("read").reads and family.group("stack").writes and not family.group("stack").normalised
    assert family.group("stack").param("action").labels == ACTIONS
    assert Family.from_dict(json.loads(json.dumps(family.to_dict()))) == family


# ---- recordings ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def episodes():
    task = AnBnCn(min_n=2, max_n=5, sequences=2)
    model = make_model(5, dtype=torch.float32, input_size=3, output_size=3, controller_size=8, stacks=2,
                       stack_depth=60)
    batch = task.sample(3, seed=2)
    return record(model, batch, task=task), batch


def test_recorded_arrays_are_consistent(episodes):
    eps, batch = episodes
    for ep, n in zip(eps, batch.lengths.tolist()):
        N, S = ep.memory.shape[1:]
        assert ep.steps == n and ep.memory.shape[0] == n + 1 and S == 2 and 2 <= N <= n
        assert (ep.memory[0] == EMPTY).all()
        stack, read = ep.heads["stack"], ep.heads["read"]
        assert stack.weights.shape == (n, 2, N) and read.weights.shape == (n, 2, N)
        np.testing.assert_allclose(stack.action.sum(-1), 1, atol=1e-6)
        np.testing.assert_array_equal(stack.weights[:, :, 0], stack.action[:, :, 0])  # the push's share
        assert (stack.weights[:, :, 1:] == 0).all()
        assert ((stack.value > 0) & (stack.value < 1)).all()
        for t in range(n):
            np.testing.assert_allclose(read.weights[t] @ ep.memory[t], ep.reads[t], atol=0)  # the top k
            np.testing.assert_allclose(replay(ep.memory[t], stack.action[t], stack.value[t]), ep.memory[t + 1],
                                       atol=2e-4)  # rows below N are within USED of EMPTY
        assert ep.measure == "answer_errors" and ep.meta["task"] == "anbncn"
        assert ep.meta["input_labels"] == ["a", "b", "c"]


def test_episodes_save_and_load(episodes, tmp_path):
    ep = episodes[0][1]
    loaded = Episode.load(ep.save(tmp_path / "stack.safetensors"))
    assert loaded.family == ep.family and loaded.family.name == "stack_rnn"
    assert loaded.family.extra == {"empty": EMPTY}
    for name, a in ep.arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[name], a)
    assert loaded.score() == ep.score()


# ---- training ----------------------------------------------------------------------------------

def test_a_short_training_run_stays_finite():
    task = AnBn(max_n=6)
    torch.manual_seed(0)
    model = StackRNN(StackRNNConfig.for_task(task, controller_size=16, stacks=2, stack_depth=20))
    trainer = Trainer(model, task, seeds=[0], batch_size=8)
    metrics = [trainer.train_step() for _ in range(20)]
    assert all(math.isfinite(m.loss) and math.isfinite(m.bit_errors) for m in metrics)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert metrics[-1].loss < metrics[0].loss
