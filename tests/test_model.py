"""Tests for ntmviz.model: shapes, dtypes, gradients, step traces, the LSTM baseline, training.

Sizes are small and unequal (B=3, T=4, I=6, O=4, N=7, M=5, R=2, W=3, S=5, C=11).
"""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

import ntmviz
from ntmviz import NTM, ConfigError, LSTMBaseline, LSTMConfig, NTMConfig, build_model
from ntmviz.models.ntm import NTMState
from ntmviz.fused import MemoryStep as StepTrace

B, T, I, O, N, M, R, W, C = 3, 4, 6, 4, 7, 5, 2, 3, 11
SHIFT_RANGE = 2
S = 2 * SHIFT_RANGE + 1
H = R + W


def ntm_config(**changes) -> NTMConfig:
    base = dict(input_size=I, output_size=O, memory_slots=N, memory_width=M, read_heads=R, write_heads=W,
                controller_size=C, shift_range=SHIFT_RANGE)
    return NTMConfig(**{**base, **changes})


def make_ntm(seed=0, **changes) -> NTM:
    torch.manual_seed(seed)
    return NTM(ntm_config(**changes))


def inputs(dtype=torch.float32, seed=1) -> torch.Tensor:
    return torch.rand(B, T, I, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.fixture(params=["lstm", "feedforward"])
def controller(request) -> str:
    return request.param


@pytest.fixture
def model(controller) -> NTM:
    return make_ntm(controller=controller)


# ---- shapes ------------------------------------------------------------------------------

def test_forward_shape(model):
    y = model(inputs())
    assert y.shape == (B, T, O)
    assert torch.isfinite(y).all()


def test_step_shapes(model, controller):
    state = model.initial_state(B)
    layers = 1 if controller == "lstm" else 0
    assert len(state.hidden) == len(state.cell) == layers
    assert state.memory.shape == (B, N, M)
    assert state.weights.shape == (B, H, N)
    assert state.reads.shape == (B, R, M)
    y, nxt, trace = model.step(inputs()[:, 0], state)
    assert y.shape == (B, O)
    assert isinstance(nxt, NTMState) and isinstance(trace, StepTrace)
    expected = dict(key=(B, H, M), beta=(B, H), gate=(B, H), shift=(B, H, S), gamma=(B, H),
                    erase=(B, W, M), add=(B, W, M), content=(B, H, N), gated=(B, H, N),
                    shifted=(B, H, N), weights=(B, H, N), reads=(B, R, M), memory=(B, N, M))
    assert set(expected) == set(StepTrace._fields)
    for name, shape in expected.items():
        assert getattr(trace, name).shape == shape, name
    assert all(h.shape == (B, C) for h in nxt.hidden + nxt.cell)


def test_multilayer_lstm_controller():
    model = make_ntm(controller_layers=2)
    state = model.initial_state(B)
    assert len(state.hidden) == 2
    _, nxt, _ = model.step(inputs()[:, 0], state)
    assert len(nxt.hidden) == len(nxt.cell) == 2
    assert model(inputs()).shape == (B, T, O)


def test_head_parameters_in_range(model):
    _, _, trace = model.step(inputs()[:, 0], model.initial_state(B))
    assert torch.all(trace.beta >= 0)
    assert torch.all((trace.gate >= 0) & (trace.gate <= 1))
    assert torch.all(trace.gamma >= 1)
    torch.testing.assert_close(trace.shift.sum(-1), torch.ones(B, H))
    assert torch.all((trace.erase >= 0) & (trace.erase <= 1))
    assert torch.all(trace.add.abs() <= 1)
    for stage in (trace.content, trace.gated, trace.shifted, trace.weights):
        torch.testing.assert_close(stage.sum(-1), torch.ones(B, H))


# ---- step and state ------------------------------------------------------------------

def test_step_trace_weights_are_next_state(model):
    state = model.initial_state(B)
    x = inputs()
    for t in range(T):
        previous_memory = state.memory
        _, nxt, trace = model.step(x[:, t], state)
        assert torch.equal(trace.weights, nxt.weights)
        assert torch.equal(trace.memory, nxt.memory)
        assert torch.equal(trace.reads, nxt.reads)
        # reads see the memory before this step's write
        torch.testing.assert_close(trace.reads, torch.bmm(trace.weights[:, :R], previous_memory))
        state = nxt


def test_forward_equals_looping_step(model):
    x = inputs()
    state = model.initial_state(B)
    ys = []
    for t in range(T):
        y, state, _ = model.step(x[:, t], state)
        ys.append(y)
    torch.testing.assert_close(model(x), torch.stack(ys, 1))


def test_batch_items_are_independent(model):
    x = inputs()
    full = model(x)
    torch.testing.assert_close(model(x[1:2]), full[1:2])


def test_initial_state(model):
    state = model.initial_state(B)
    dtype = next(model.parameters()).dtype
    for t in (*state.hidden, *state.cell, state.memory, state.weights, state.reads):
        assert t.device == model.device and t.dtype == dtype
    # every head starts on slot 0
    assert torch.all(state.weights[..., 0] == 1) and torch.all(state.weights[..., 1:] == 0)
    torch.testing.assert_close(state.memory, torch.full((B, N, M), model.config.memory_init_value))


def test_initial_state_float64():
    model = make_ntm().double()
    state = model.initial_state(B)
    for t in (*state.hidden, *state.cell, state.memory, state.weights, state.reads):
        assert t.dtype == torch.float64


@pytest.mark.parametrize("init", ["constant", "learned", "random"])
def test_memory_inits(init):
    model = make_ntm(memory_init=init, memory_init_value=0.1)
    state = model.initial_state(B)
    assert state.memory.shape == (B, N, M)
    assert ("memory0" in dict(model.named_parameters())) == (init == "learned")
    assert model(inputs()).shape == (B, T, O)


def test_float64_model(controller):
    model = make_ntm(controller=controller).double()
    y = model(inputs().double())
    assert y.dtype == torch.float64 and y.shape == (B, T, O)
    y32 = make_ntm(controller=controller)(inputs())  # same seed, same weights, float32
    torch.testing.assert_close(y.float(), y32, atol=1e-4, rtol=1e-4)


# ---- gradients -----------------------------------------------------------------------

@pytest.mark.parametrize("init", ["constant", "learned"])
def test_gradients_reach_every_parameter_with_zero_memory(controller, init):
    model = make_ntm(controller=controller, memory_init=init, memory_init_value=0.0)
    x = torch.zeros(B, T, I)
    loss = model(x).pow(2).sum() + model(inputs()).sum()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_zero_memory_zero_inputs_outputs_finite(controller):
    model = make_ntm(controller=controller, memory_init_value=0.0)
    x = torch.zeros(B, T, I, requires_grad=True)
    y = model(x)
    assert torch.isfinite(y).all()
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_gradcheck_small_ntm():
    model = make_ntm(controller="feedforward").double()
    x = inputs(torch.float64)[:, :2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-5)


# ---- input checks ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(B, T, I + 1), (B, T, I - 1), (T, I), (B, T, I, 1)])
def test_wrong_input_shape_raises_config_error(shape):
    model = make_ntm()
    with pytest.raises(ConfigError) as info:
        model(torch.zeros(*shape))
    message = str(info.value)
    assert "\n" not in message and str(I) in message


def test_lstm_baseline_wrong_input_raises():
    model = LSTMBaseline(LSTMConfig(input_size=I, output_size=O, hidden_size=C, layers=2))
    with pytest.raises(ConfigError, match=str(I)):
        model(torch.zeros(B, T, I + 2))


# ---- the LSTM baseline ---------------------------------------------------------------

def test_lstm_baseline_forward_equals_looping_step():
    torch.manual_seed(0)
    model = LSTMBaseline(LSTMConfig(input_size=I, output_size=O, hidden_size=C, layers=2))
    x = inputs()
    y = model(x)
    assert y.shape == (B, T, O)
    state = model.initial_state(B)
    assert state.hidden.shape == (2, B, C)
    ys = []
    for t in range(T):
        yt, state, trace = model.step(x[:, t], state)
        assert trace is None
        ys.append(yt)
    torch.testing.assert_close(y, torch.stack(ys, 1), atol=1e-6, rtol=1e-5)


def test_build_model():
    assert isinstance(build_model(ntm_config()), NTM)
    assert isinstance(build_model(LSTMConfig(input_size=I, output_size=O)), LSTMBaseline)


def test_pick_device():
    assert ntmviz.pick_device("cpu") == torch.device("cpu")
    assert ntmviz.pick_device().type in ("cpu", "cuda")


# ---- a short training run -------------------------------------------------------------

def copy_batch(gen: torch.Generator, batch=16, bits=4, max_len=4):
    """A tiny copy task: bits, then a delimiter, then reproduce the bits. -> inputs, targets, mask."""
    length = int(torch.randint(1, max_len + 1, (1,), generator=gen))
    steps = 2 * length + 1
    seq = torch.randint(0, 2, (batch, length, bits), generator=gen).float()
    x = torch.zeros(batch, steps, bits + 1)
    x[:, :length, :bits] = seq
    x[:, length, bits] = 1  # delimiter channel
    y = torch.zeros(batch, steps, bits)
    y[:, length + 1:] = seq
    mask = torch.zeros(batch, steps)
    mask[:, length + 1:] = 1
    return x, y, mask


def masked_bce(model, x, y, mask):
    bce = F.binary_cross_entropy_with_logits(model(x), y, reduction="none").mean(-1)
    return (bce * mask).sum() / mask.sum()


@pytest.fixture
def one_thread():
    """Tiny models run several times faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_short_training_run_lowers_the_loss(one_thread):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    held_out = [copy_batch(torch.Generator().manual_seed(100 + k), batch=64) for k in range(6)]
    model = NTM(NTMConfig(input_size=5, output_size=4, memory_slots=8, memory_width=6, controller_size=32))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def held_out_loss():
        with torch.no_grad():
            return sum(masked_bce(model, *b).item() for b in held_out) / len(held_out)

    initial = held_out_loss()
    start = time.perf_counter()
    for _ in range(400):
        loss = masked_bce(model, *copy_batch(gen))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10)
        opt.step()
        assert torch.isfinite(loss)
    final = held_out_loss()
    assert final < 0.5 * initial, (initial, final)
    assert time.perf_counter() - start < 60
