"""The fast path (fused.py) against the readable reference: values and gradients.

The reference is the pure functions (heads.activate, addressing.address, memory.read and
memory.write) and an LSTM cell written out, composed step by step with autograd recording
every op. Sizes are small and unequal so a swapped axis fails. Every test runs twice: with
the compiled kernels (native.py) and with the torch ops that stand in for them on a GPU.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ntmviz
from ntmviz.addressing import address, shift_index
from ntmviz.fused import lstm_cell
from ntmviz.ops import named_step as memory_step
from ntmviz.heads import activate, head_sizes
from ntmviz.memory import read, write
from ntmviz.models import build_model

P, N, M = 3, 7, 5


pytestmark = pytest.mark.usefixtures("fast_path")  # every test with the kernels and with the torch ops (conftest.py)


def reference_memory_step(raw, memory, previous, shift_width, read_heads):
    heads = previous.shape[1]
    p = activate(raw, heads, heads - read_heads, memory.shape[2], shift_width)
    trace = address(memory, previous, p.key, p.beta, p.gate, p.shift, p.gamma,
                    shift_index(memory.shape[1], shift_width))
    w = trace.weights
    return (w, read(memory, w[:, :read_heads]), write(memory, w[:, read_heads:], p.erase, p.add)), trace, p


def memory_inputs(heads, write_heads, shift_width, seed=0):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(P, sum(head_sizes(heads, write_heads, M, shift_width)), generator=g, dtype=torch.float64)
    memory = torch.randn(P, N, M, generator=g, dtype=torch.float64)
    previous = torch.softmax(torch.randn(P, heads, N, generator=g, dtype=torch.float64), -1)
    return [t.requires_grad_() for t in (raw, memory, previous)]


@pytest.mark.parametrize("read_heads, write_heads, shift_width", [(1, 1, 3), (2, 3, 5), (1, 2, 1), (3, 1, 3)])
def test_memory_step_matches_the_reference_in_values_and_gradients(read_heads, write_heads, shift_width):
    inputs = memory_inputs(read_heads + write_heads, write_heads, shift_width)
    fast = memory_step(*inputs, shift_width, read_heads)
    (w, r, m), trace, params = reference_memory_step(*inputs, shift_width, read_heads)
    for name, a, b in [("weights", fast.weights, w), ("reads", fast.reads, r), ("memory", fast.memory, m),
                       ("content", fast.content, trace.content), ("gated", fast.gated, trace.gated),
                       ("shifted", fast.shifted, trace.shifted), ("beta", fast.beta, params.beta),
                       ("gamma", fast.gamma, params.gamma), ("shift", fast.shift, params.shift),
                       ("erase", fast.erase, params.erase), ("add", fast.add, params.add)]:
        torch.testing.assert_close(a, b, msg=name)
    # the gradient of one random functional of all three outputs, both ways
    g = torch.Generator().manual_seed(1)
    probes = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in (w, r, m)]
    fast_grads = torch.autograd.grad(sum((a * p).sum() for a, p in zip(fast[:3], probes)), inputs)
    ref_grads = torch.autograd.grad(sum((a * p).sum() for a, p in zip((w, r, m), probes)), inputs)
    for name, a, b in zip(("raw", "memory", "previous"), fast_grads, ref_grads):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("read_heads, write_heads", [(1, 1), (2, 2)])
def test_memory_step_gradcheck(read_heads, write_heads):
    inputs = memory_inputs(read_heads + write_heads, write_heads, 3, seed=4)
    assert torch.autograd.gradcheck(lambda *x: tuple(memory_step(*x, 3, read_heads)[:3]), inputs, fast_mode=True)
    # a step whose memory nobody uses afterwards (the last) still has gradients for the rest
    assert torch.autograd.gradcheck(lambda *x: memory_step(*x, 3, read_heads).reads, inputs, fast_mode=True)


def test_memory_step_with_zero_memory_has_finite_gradients():
    raw, memory, previous = memory_inputs(2, 1, 3)
    zero = torch.zeros_like(memory, requires_grad=True)
    out = memory_step(raw, zero, previous, 3, 1)
    grads = torch.autograd.grad(sum(t.sum() for t in out[:3]), (raw, zero, previous))
    assert all(torch.isfinite(g).all() for g in grads)


def test_lstm_cell_matches_torch():
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(4, 6).double()
    x, h, c = torch.randn(P, 4, dtype=torch.float64), torch.randn(P, 6, dtype=torch.float64), \
        torch.randn(P, 6, dtype=torch.float64, requires_grad=True)
    gates = F.linear(x, cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh)
    h1, c1 = lstm_cell(gates, c)
    h2, c2 = cell(x, (h, c))
    torch.testing.assert_close((h1, c1), (h2, c2))
    assert torch.autograd.gradcheck(lstm_cell, (gates.detach().requires_grad_(), c))


# ---- the whole model: the fused sequence against a step-by-step reference --------------------------

def reference_forward(model: ntmviz.NTM, inputs: torch.Tensor) -> torch.Tensor:
    """model (K = 1) on inputs [B, T, I], composed from the pure reference functions."""
    c = model.config
    R, B = c.read_heads, inputs.shape[0]
    state = model.initial_state(B)
    memory, weights = state.memory, state.weights
    reads = read(memory, weights[:, :R])
    hidden = [torch.zeros(B, c.controller_size, dtype=inputs.dtype) for _ in range(c.controller_layers)]
    cells = [h.clone() for h in hidden]
    heads_w, heads_b = model.heads.linear.weight[0], model.heads.linear.bias[0]
    outputs = []
    for t in range(inputs.shape[1]):
        x = torch.cat([inputs[:, t], reads.reshape(B, -1)], -1)
        for i, layer in enumerate(model.controller):
            if c.controller == "lstm":
                gates = F.linear(x, layer.weight_ih[0], layer.bias_ih[0]) + F.linear(hidden[i], layer.weight_hh[0],
                                                                                     layer.bias_hh[0])
                gi, gf, gg, go = gates.chunk(4, -1)
                cells[i] = torch.sigmoid(gf) * cells[i] + torch.sigmoid(gi) * torch.tanh(gg)
                hidden[i] = torch.sigmoid(go) * torch.tanh(cells[i])
                x = hidden[i]
            else:
                x = torch.relu(F.linear(x, layer.weight[0], layer.bias[0]))
        (weights, reads, memory), _, _ = reference_memory_step(F.linear(x, heads_w, heads_b), memory, weights,
                                                               c.shift_width, R)
        outputs.append(F.linear(torch.cat([x, reads.reshape(B, -1)], -1), model.output.weight[0], model.output.bias[0]))
    return torch.stack(outputs, 1)


CONFIGS = {
    "lstm": dict(),
    "lstm, 2 layers, 2R 3W": dict(controller_layers=2, read_heads=2, write_heads=3),
    "feed-forward, 2 layers": dict(controller="feedforward", controller_layers=2),
    "learned memory, shift 2": dict(memory_init="learned", shift_range=2),
    "lstm, 2 layers, 2R 3W, learned memory": dict(controller_layers=2, read_heads=2, write_heads=3,
                                                  memory_init="learned"),
}


@pytest.mark.parametrize("changes", CONFIGS.values(), ids=CONFIGS.keys())
def test_model_forward_matches_the_reference_in_values_and_gradients(changes):
    config = ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=N, memory_width=M, controller_size=9,
                              **changes)
    model = build_model(config, seeds=[3]).double()
    x = torch.rand(2, 6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fast = model(x)
    ref = reference_forward(model, x)
    torch.testing.assert_close(fast, ref)
    probe = torch.randn(fast.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    params = list(model.parameters())
    fast_grads = torch.autograd.grad((fast * probe).sum(), params)
    ref_grads = torch.autograd.grad((ref * probe).sum(), params)
    for (name, _), a, b in zip(model.named_parameters(), fast_grads, ref_grads):
        torch.testing.assert_close(a, b, msg=name)


def test_sequence_gradcheck_for_an_ensemble_with_a_two_layer_lstm():
    config = ntmviz.NTMConfig(input_size=3, output_size=2, memory_slots=5, memory_width=4, controller_size=4,
                              controller_layers=2, read_heads=2, write_heads=2, memory_init="learned")
    model = build_model(config, seeds=[0, 1]).double()
    x = torch.rand(4, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    names = [name for name, _ in model.named_parameters()]

    def run(*weights):
        return torch.func.functional_call(model, dict(zip(names, weights)), (x,))

    assert torch.autograd.gradcheck(run, tuple(model.parameters()), atol=1e-6, fast_mode=True)


def test_ensemble_members_are_the_single_models():
    config = ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=N, memory_width=M, controller_size=9,
                              read_heads=2)
    ensemble = build_model(config, seeds=[5, 2, 9])
    x = torch.rand(3 * 2, 5, 4, generator=torch.Generator().manual_seed(1))
    y = ensemble(x)
    for k, seed in enumerate([5, 2, 9]):
        alone = build_model(config, seeds=[seed])
        for (name, a), b in zip(alone.member_state_dict(0).items(), ensemble.member_state_dict(k).values()):
            assert torch.equal(a, b), name
        torch.testing.assert_close(y[2 * k: 2 * k + 2], alone(x[2 * k: 2 * k + 2]))
    # and the gradients of one model's loss touch only that model's slice
    y[2:4].sum().backward()
    for name, p in ensemble.named_parameters():
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0, name
        assert p.grad[1].abs().sum() > 0, name


def test_recording_returns_what_the_step_by_step_path_computes():
    config = ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=N, memory_width=M, controller_size=9,
                              read_heads=2, write_heads=2)
    model = build_model(config, seeds=[0])
    x = torch.rand(2, 5, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits, trace = model.run(x, record=True)
        state = model.initial_state(2)
        for t in range(5):
            y, state, step = model.step(x[:, t], state)
            torch.testing.assert_close(logits[:, t], y)
            for name in ("weights", "reads", "memory", "content", "gated", "shifted", "key", "beta", "gate",
                         "shift", "gamma", "erase", "add"):
                torch.testing.assert_close(getattr(trace.steps, name)[:, t], getattr(step, name), msg=name)
