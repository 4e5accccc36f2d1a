"""Tests for ntmviz.memory: read and write against numpy, erase/add properties, gradcheck.

Sizes are small and unequal (B=3, N=7, M=5, R=2) so a swapped axis fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ntmviz.memory import constant_memory, read, write

B, N, M, R = 3, 7, 5, 2


def rng(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def memory() -> torch.Tensor:
    return torch.randn(B, N, M, generator=rng(0))


def weightings(heads, seed=1, dtype=torch.float32):
    return torch.softmax(2 * torch.randn(B, heads, N, generator=rng(seed), dtype=dtype), -1)


# ---- numpy references -------------------------------------------------------------------

def np_read(memory, weights):
    b_, h_, _ = weights.shape
    out = np.zeros((b_, h_, memory.shape[-1]))
    for b in range(b_):
        for h in range(h_):
            for i in range(memory.shape[1]):
                out[b, h] += weights[b, h, i] * memory[b, i]
    return out


def np_write(memory, weights, erase, add):
    out = memory.astype(np.float64).copy()
    b_, w_, n_ = weights.shape
    for b in range(b_):
        for i in range(n_):
            keep = np.ones(memory.shape[-1])
            for h in range(w_):
                keep *= 1 - weights[b, h, i] * erase[b, h]
            out[b, i] *= keep
            for h in range(w_):
                out[b, i] += weights[b, h, i] * add[b, h]
    return out


# ---- read ----------------------------------------------------------------------------

def test_read_shape_and_values(memory):
    w = weightings(R)
    r = read(memory, w)
    assert r.shape == (B, R, M)
    np.testing.assert_allclose(r.numpy(), np_read(memory.numpy(), w.numpy()), atol=1e-5)


def test_read_one_hot_returns_the_slot(memory):
    w = torch.zeros(B, R, N)
    w[:, 0, 3] = 1
    w[:, 1, 6] = 1
    r = read(memory, w)
    torch.testing.assert_close(r[:, 0], memory[:, 3])
    torch.testing.assert_close(r[:, 1], memory[:, 6])


# ---- write ---------------------------------------------------------------------------

@pytest.mark.parametrize("heads", [1, 2, 3])
def test_write_matches_numpy(memory, heads):
    w = weightings(heads, seed=2)
    erase = torch.rand(B, heads, M, generator=rng(3))
    add = torch.rand(B, heads, M, generator=rng(4)) * 2 - 1
    out = write(memory, w, erase, add)
    assert out.shape == (B, N, M)
    want = np_write(memory.numpy(), w.numpy(), erase.numpy(), add.numpy())
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)


def test_write_head_order_does_not_matter(memory):
    w = weightings(2, seed=5)
    erase = torch.rand(B, 2, M, generator=rng(6))
    add = torch.randn(B, 2, M, generator=rng(7))
    a = write(memory, w, erase, add)
    b = write(memory, w.flip(1), erase.flip(1), add.flip(1))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("heads", [1, 2])
def test_full_erase_clears_only_the_addressed_slot(memory, heads):
    slot = 4
    w = torch.zeros(B, heads, N)
    w[:, :, slot] = 1 if heads == 1 else torch.tensor([1.0, 0.0])  # second head addresses nothing
    out = write(memory, w, torch.ones(B, heads, M), torch.zeros(B, heads, M))
    assert torch.all(out[:, slot] == 0)
    others = [i for i in range(N) if i != slot]
    assert torch.equal(out[:, others], memory[:, others])


def test_no_erase_no_add_changes_nothing(memory):
    for heads in (1, 2):
        w = weightings(heads, seed=8)
        out = write(memory, w, torch.zeros(B, heads, M), torch.zeros(B, heads, M))
        torch.testing.assert_close(out, memory, atol=0, rtol=0)


def test_add_to_empty_memory_is_outer_product():
    w = weightings(1, seed=9)
    add = torch.randn(B, 1, M, generator=rng(10))
    out = write(torch.zeros(B, N, M), w, torch.rand(B, 1, M, generator=rng(11)), add)
    torch.testing.assert_close(out, w.transpose(1, 2) * add)


def test_constant_memory():
    m = constant_memory(N, M, 0.25, dtype=torch.float64)
    assert m.shape == (N, M) and m.dtype == torch.float64
    assert torch.all(m == 0.25)


# ---- gradcheck -------------------------------------------------------------------------

def test_gradcheck_read():
    memory = torch.randn(B, N, M, dtype=torch.float64, generator=rng(12), requires_grad=True)
    w = weightings(R, seed=13, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(read, (memory, w))


@pytest.mark.parametrize("heads", [1, 2])
def test_gradcheck_write(heads):
    memory = torch.randn(B, N, M, dtype=torch.float64, generator=rng(14), requires_grad=True)
    w = weightings(heads, seed=15, dtype=torch.float64).requires_grad_(True)
    erase = torch.rand(B, heads, M, dtype=torch.float64, generator=rng(16), requires_grad=True)
    add = torch.randn(B, heads, M, dtype=torch.float64, generator=rng(17), requires_grad=True)
    assert torch.autograd.gradcheck(write, (memory, w, erase, add))
