"""Turning the controller's output into every head's parameters (Graves et al. 2014, 3.3).

One linear layer emits the raw parameters of all H = R + W heads at once (read heads
first); each slice then goes through the activation that gives it its range.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class HeadParams(NamedTuple):
    """Every head's parameters for one step. H = R + W heads, read heads first."""

    key: Tensor  # [B, H, M]  k, the content key
    beta: Tensor  # [B, H]     β >= 0, key strength
    gate: Tensor  # [B, H]     g in [0, 1], interpolation gate
    shift: Tensor  # [B, H, S]  s, a distribution over shifts -S//2 .. S//2
    gamma: Tensor  # [B, H]     γ >= 1, sharpening
    erase: Tensor  # [B, W, M]  e in [0, 1], write heads only
    add: Tensor  # [B, W, M]  a in [-1, 1], write heads only


class Heads(nn.Module):
    """controller output [B, C] -> HeadParams for H heads of width M with S shifts."""

    def __init__(self, controller_size: int, read_heads: int, write_heads: int, width: int, shift_width: int):
        super().__init__()
        self.read_heads, self.write_heads = read_heads, write_heads
        self.width, self.shift_width = width, shift_width
        heads = read_heads + write_heads
        # Sizes of the slices of the linear output, in HeadParams order.
        self.sizes = [heads * width, heads, heads, heads * shift_width, heads,
                      write_heads * width, write_heads * width]
        self.linear = nn.Linear(controller_size, sum(self.sizes))

    def forward(self, hidden: Tensor) -> HeadParams:
        batch = hidden.shape[0]
        heads = self.read_heads + self.write_heads
        key, beta, gate, shift, gamma, erase, add = self.linear(hidden).split(self.sizes, dim=-1)
        return HeadParams(
            key=key.view(batch, heads, self.width),
            beta=F.softplus(beta),
            gate=torch.sigmoid(gate),
            shift=torch.softmax(shift.view(batch, heads, self.shift_width), dim=-1),
            gamma=1 + F.softplus(gamma),
            erase=torch.sigmoid(erase).view(batch, self.write_heads, self.width),
            add=torch.tanh(add).view(batch, self.write_heads, self.width),
        )
