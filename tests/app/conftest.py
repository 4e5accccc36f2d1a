"""Fixtures for the explorer tests: tiny episodes with unequal sizes, so a swapped axis fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ntmviz
from ntmviz.episode import record

T, N, M, I, O = 6, 7, 5, 4, 3


@pytest.fixture
def episode():
    """A tiny NTM episode: T=6 steps, N=7 slots, M=5 wide, 1 read and 1 write head."""
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=I, output_size=O, memory_slots=N, memory_width=M,
                                        controller_size=16))
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, I, generator=g) > 0.5).float()
    y = (torch.rand(T, O, generator=g) > 0.5).float()
    return record(model, x, y, mask=torch.ones(T), meta={"task": "synthetic", "seed": 1})


@pytest.fixture
def other_episode():
    """Another, longer episode with two read heads (T=9, N=11, M=3)."""
    torch.manual_seed(2)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=I, output_size=O, memory_slots=11, memory_width=3,
                                        read_heads=2, controller_size=8))
    x = (torch.rand(9, I) > 0.5).float()
    return record(model, x, meta={"task": "other"})


@pytest.fixture
def lstm_episode():
    torch.manual_seed(3)
    model = ntmviz.LSTMBaseline(ntmviz.LSTMConfig(input_size=I, output_size=O, hidden_size=8, layers=1))
    x = (torch.rand(T, I) > 0.5).float()
    return record(model, x, torch.zeros(T, O), meta={"task": "synthetic"})


@pytest.fixture
def checkpoint_dir(tmp_path):
    """A folder holding an untrained small copy-task NTM checkpoint (8 bits, 16 slots)."""
    from ntmviz.checkpoint import save
    from ntmviz.tasks import get_task

    task = get_task("copy", max_length=5)
    torch.manual_seed(4)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=task.input_size, output_size=task.output_size,
                                        memory_slots=16, memory_width=6, controller_size=16))
    save(tmp_path / "copy-ntm.safetensors", model, task=task, meta={"note": "test"})
    return tmp_path


def _dnc_like(T: int = 4, N: int = 6, M: int = 3, seed: int = 11) -> dict:
    """The arrays a DNC's debug output gives, for Episode.from_arrays: read weightings that mix
    modes and sum to less than 1 (0.31 and 1), a gated write weighting (0.5), usage per slot
    [T, N] and temporal links [T, N, N]."""
    rng = np.random.default_rng(seed)

    def weights(totals):
        w = rng.random((T, len(totals), N)).astype(np.float32) + 0.05
        return (w / w.sum(-1, keepdims=True) * np.asarray(totals, np.float32)[None, :, None]).astype(np.float32)

    return dict(memory=rng.standard_normal((T + 1, N, M)).astype(np.float32), read_weights=weights([0.31, 1.0]),
                write_weights=weights([0.5]), normalised=False,
                slot_state={"usage": rng.uniform(0.1, 0.9, (T, N)).astype(np.float32)},
                slot_matrices={"links": rng.uniform(0.0, 0.2, (T, N, N)).astype(np.float32)},
                title="DNC (the dnc package)")


@pytest.fixture
def dnc_episode():
    """A DNC-like episode (T=4, N=6, M=3): 2 read heads and 1 write head whose weightings need not
    sum to 1, slot state "usage" and slot matrix "links" (see _dnc_like)."""
    from ntmviz import Episode

    return Episode.from_arrays(**_dnc_like())


def _pointer_like(T: int = 5, N: int = 8, M: int = 2, seed: int = 12) -> dict:
    """A pointer network's arrays: one "pointer" head with an "energies" stage over N points
    placed in a plane (slot_coords [N, 2]), its memory the encoded points (static)."""
    rng = np.random.default_rng(seed)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)).astype(np.float32)

    return dict(memory=rng.standard_normal((N, M)).astype(np.float32),
                heads={"pointer": softmax(3 * rng.standard_normal((T, 1, N)))},
                stages={"pointer": {"energies": softmax(rng.standard_normal((T, 1, N)))}},
                slot_coords=rng.uniform(0, 1, (N, 2)).astype(np.float32), title="pointer network")


@pytest.fixture
def pointer_episode():
    """A pointer-like episode (T=5, N=8, M=2, static memory, slots in a plane; see _pointer_like)."""
    from ntmviz import Episode

    return Episode.from_arrays(**_pointer_like())


@pytest.fixture
def dnc_arrays():
    """Make DNC-like from_arrays arguments of any size: dnc_arrays(T=3, N=500, M=4)."""
    return _dnc_like
