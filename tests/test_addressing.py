"""Tests for ntmviz.addressing: shapes, values against numpy, properties, zeros, gradcheck.

Sizes are small and unequal (B=3, H=2, N=7, M=5, S=3) so a swapped axis fails.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch

from ntmviz.addressing import (
    AddressTrace,
    address,
    circular_shift,
    content_weighting,
    cosine_similarity,
    interpolate,
    sharpen,
    shift_index,
    shift_offsets,
)

B, H, N, M, S = 3, 2, 7, 5, 3


class Inputs(NamedTuple):
    memory: torch.Tensor  # [B, N, M]
    previous: torch.Tensor  # [B, H, N]
    key: torch.Tensor  # [B, H, M]
    beta: torch.Tensor  # [B, H]
    gate: torch.Tensor  # [B, H]
    shift: torch.Tensor  # [B, H, S]
    gamma: torch.Tensor  # [B, H]


def make_inputs(dtype=torch.float32, seed=0) -> Inputs:
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=dtype)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    return Inputs(
        memory=randn(B, N, M),
        previous=torch.softmax(2 * randn(B, H, N), -1),
        key=randn(B, H, M),
        beta=0.5 + 3 * rand(B, H),
        gate=rand(B, H),
        shift=torch.softmax(randn(B, H, S), -1),
        gamma=1 + 2 * rand(B, H),
    )


@pytest.fixture
def inputs() -> Inputs:
    return make_inputs()


# ---- numpy references (plain loops) -------------------------------------------------------

def np_cosine(memory, keys):
    b_, n_, _ = memory.shape
    h_ = keys.shape[1]
    out = np.zeros((b_, h_, n_))
    for b in range(b_):
        for h in range(h_):
            for i in range(n_):
                k, m = keys[b, h], memory[b, i]
                out[b, h, i] = k @ m / (np.linalg.norm(k) * np.linalg.norm(m))
    return out


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_content(memory, keys, beta):
    return np_softmax(beta[..., None] * np_cosine(memory, keys))


def np_interpolate(content, previous, gate):
    return gate[..., None] * content + (1 - gate[..., None]) * previous


def np_shift(w, s):
    b_, h_, n_ = w.shape
    width = s.shape[-1]
    offsets = range(-(width // 2), width // 2 + 1)
    out = np.zeros_like(w)
    for b in range(b_):
        for h in range(h_):
            for i in range(n_):
                out[b, h, i] = sum(w[b, h, (i - k) % n_] * s[b, h, j] for j, k in enumerate(offsets))
    return out


def np_sharpen(w, gamma):
    p = w ** gamma[..., None]
    return p / p.sum(-1, keepdims=True)


def np_address(x: Inputs):
    a = [t.double().numpy() for t in x]
    memory, previous, key, beta, gate, shift, gamma = a
    content = np_content(memory, key, beta)
    gated = np_interpolate(content, previous, gate)
    shifted = np_shift(gated, shift)
    return content, gated, shifted, np_sharpen(shifted, gamma)


def assert_distribution(w: torch.Tensor, atol=1e-5):
    assert torch.all(w >= 0)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), atol=atol, rtol=0)


# ---- shapes ---------------------------------------------------------------------------

def test_shapes_of_each_stage(inputs):
    assert cosine_similarity(inputs.memory, inputs.key).shape == (B, H, N)
    c = content_weighting(inputs.memory, inputs.key, inputs.beta)
    assert c.shape == (B, H, N)
    g = interpolate(c, inputs.previous, inputs.gate)
    assert g.shape == (B, H, N)
    s = circular_shift(g, inputs.shift)
    assert s.shape == (B, H, N)
    assert sharpen(s, inputs.gamma).shape == (B, H, N)
    trace = address(*inputs)
    assert isinstance(trace, AddressTrace)
    assert all(stage.shape == (B, H, N) for stage in trace)


def test_shift_offsets_and_index():
    assert shift_offsets(S).tolist() == [-1, 0, 1]
    assert shift_offsets(5).tolist() == [-2, -1, 0, 1, 2]
    index = shift_index(N, S)
    assert index.shape == (S, N)
    for s, k in enumerate(shift_offsets(S).tolist()):
        assert index[s].tolist() == [(i - k) % N for i in range(N)]


# ---- values against numpy --------------------------------------------------------------

def test_cosine_similarity_matches_numpy(inputs):
    got = cosine_similarity(inputs.memory, inputs.key).numpy()
    want = np_cosine(inputs.memory.double().numpy(), inputs.key.double().numpy())
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_content_weighting_matches_numpy(inputs):
    got = content_weighting(inputs.memory, inputs.key, inputs.beta).numpy()
    want = np_content(inputs.memory.double().numpy(), inputs.key.double().numpy(), inputs.beta.double().numpy())
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_interpolate_matches_numpy(inputs):
    content = torch.softmax(torch.randn(B, H, N, generator=torch.Generator().manual_seed(1)), -1)
    got = interpolate(content, inputs.previous, inputs.gate).numpy()
    want = np_interpolate(content.numpy(), inputs.previous.numpy(), inputs.gate.numpy())
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("width", [1, 3, 5])
def test_circular_shift_matches_numpy(inputs, width):
    g = torch.Generator().manual_seed(2)
    shift = torch.softmax(torch.randn(B, H, width, generator=g), -1)
    got = circular_shift(inputs.previous, shift).numpy()
    np.testing.assert_allclose(got, np_shift(inputs.previous.numpy(), shift.numpy()), atol=1e-6)
    # A prebuilt index gives the same result.
    got_index = circular_shift(inputs.previous, shift, shift_index(N, width)).numpy()
    np.testing.assert_allclose(got_index, got, atol=0)


def test_sharpen_matches_numpy(inputs):
    got = sharpen(inputs.previous, inputs.gamma).numpy()
    want = np_sharpen(inputs.previous.double().numpy(), inputs.gamma.double().numpy())
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_address_matches_numpy_at_every_stage(inputs):
    trace = address(*inputs)
    for name, got, want in zip(AddressTrace._fields, trace, np_address(inputs)):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5, err_msg=name)


# ---- properties ----------------------------------------------------------------------

def test_every_stage_is_a_distribution(inputs):
    trace = address(*inputs)
    for stage in trace:
        assert_distribution(stage)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_one_hot_shift_is_a_roll(inputs, offset):
    shift = torch.zeros(B, H, S)
    shift[..., offset + S // 2] = 1
    got = circular_shift(inputs.previous, shift).numpy()
    np.testing.assert_allclose(got, np.roll(inputs.previous.numpy(), offset, axis=-1), atol=1e-7)


def test_one_hot_shift_wide_range_is_a_roll(inputs):
    width = 5
    for offset in range(-2, 3):
        shift = torch.zeros(B, H, width)
        shift[..., offset + width // 2] = 1
        got = circular_shift(inputs.previous, shift).numpy()
        np.testing.assert_allclose(got, np.roll(inputs.previous.numpy(), offset, axis=-1), atol=1e-7)


def test_gamma_one_changes_nothing(inputs):
    got = sharpen(inputs.previous, torch.ones(B, H))
    torch.testing.assert_close(got, inputs.previous, atol=1e-6, rtol=0)


def test_larger_gamma_is_sharper(inputs):
    soft = sharpen(inputs.previous, torch.full((B, H), 1.5))
    sharp = sharpen(inputs.previous, torch.full((B, H), 4.0))
    assert torch.all(sharp.max(-1).values > soft.max(-1).values)


def test_gate_one_gives_content_weighting(inputs):
    trace = address(inputs.memory, inputs.previous, inputs.key, inputs.beta, torch.ones(B, H),
                    inputs.shift, inputs.gamma)
    torch.testing.assert_close(trace.gated, trace.content)
    torch.testing.assert_close(trace.content, content_weighting(inputs.memory, inputs.key, inputs.beta))


def test_gate_zero_gives_previous_weighting(inputs):
    trace = address(inputs.memory, inputs.previous, inputs.key, inputs.beta, torch.zeros(B, H),
                    inputs.shift, inputs.gamma)
    torch.testing.assert_close(trace.gated, inputs.previous)


def test_larger_beta_is_sharper(inputs):
    weak = content_weighting(inputs.memory, inputs.key, torch.full((B, H), 0.5))
    strong = content_weighting(inputs.memory, inputs.key, torch.full((B, H), 5.0))
    assert torch.all(strong.max(-1).values > weak.max(-1).values)
    # The focus stays on the same slot, and the entropy drops.
    assert torch.equal(strong.argmax(-1), weak.argmax(-1))
    entropy = lambda w: -(w * w.log()).sum(-1)  # noqa: E731
    assert torch.all(entropy(strong) < entropy(weak))


def test_beta_zero_is_uniform(inputs):
    w = content_weighting(inputs.memory, inputs.key, torch.zeros(B, H))
    torch.testing.assert_close(w, torch.full((B, H, N), 1 / N))


def test_identical_slots_share_weight():
    memory = torch.ones(B, N, M)
    key = torch.randn(B, H, M, generator=torch.Generator().manual_seed(3))
    w = content_weighting(memory, key, torch.full((B, H), 3.0))
    torch.testing.assert_close(w, torch.full((B, H, N), 1 / N))


# ---- zeros: no NaN, no Inf -------------------------------------------------------------

def test_zero_memory_and_keys_give_finite_values_and_gradients(inputs):
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    leaves[0] = torch.zeros(B, N, M, requires_grad=True)  # memory
    leaves[2] = torch.zeros(B, H, M, requires_grad=True)  # key
    trace = address(*leaves)
    for stage in trace:
        assert torch.isfinite(stage).all()
        assert_distribution(stage)
    torch.testing.assert_close(trace.content, torch.full((B, H, N), 1 / N))
    # A loss that depends on every stage.
    loss = sum((stage * torch.arange(N, dtype=stage.dtype)).sum() for stage in trace)
    loss.backward()
    for name, leaf in zip(Inputs._fields, leaves):
        assert leaf.grad is not None, name
        assert torch.isfinite(leaf.grad).all(), name


def test_sharpen_of_weights_with_exact_zeros_is_finite():
    w = torch.zeros(B, H, N)
    w[..., 2] = 1
    w.requires_grad_(True)
    gamma = torch.full((B, H), 2.0, requires_grad=True)
    out = sharpen(w, gamma)
    assert torch.isfinite(out).all()
    out[..., 2].sum().backward()
    assert torch.isfinite(w.grad).all() and torch.isfinite(gamma.grad).all()


# ---- gradcheck ----------------------------------------------------------------------

def test_gradcheck_address():
    x = make_inputs(dtype=torch.float64, seed=4)
    leaves = tuple(t.clone().requires_grad_(True) for t in x)

    def fn(*args):
        return tuple(address(*args))

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5)


def test_gradcheck_each_stage():
    x = make_inputs(dtype=torch.float64, seed=5)
    req = lambda t: t.clone().requires_grad_(True)  # noqa: E731
    assert torch.autograd.gradcheck(cosine_similarity, (req(x.memory), req(x.key)))
    assert torch.autograd.gradcheck(content_weighting, (req(x.memory), req(x.key), req(x.beta)))
    assert torch.autograd.gradcheck(interpolate, (req(x.previous), req(x.previous.flip(-1)), req(x.gate)))
    assert torch.autograd.gradcheck(circular_shift, (req(x.previous), req(x.shift)))
    assert torch.autograd.gradcheck(sharpen, (req(x.previous), req(x.gamma)))
