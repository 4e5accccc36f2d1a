"""Fixtures for the explorer tests: tiny episodes with unequal sizes, so a swapped axis fails."""

from __future__ import annotations

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
