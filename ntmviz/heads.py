"""Turning the controller's output into every head's parameters (Graves et al. 2014, 3.3).

One linear layer emits the raw parameters of all H = R + W heads at once (read heads
first); each slice then goes through the activation that gives it its range. `activate` is
the readable reference; fused.memory_step applies the same activations inside its one
autograd node.

Layout of the raw vector [P, sum(head_sizes(...))], in HeadParams order:
key H*M | beta H | gate H | shift H*S | gamma H | erase W*M | add W*M.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import StackedLinear


class HeadParams(NamedTuple):
    """Every head's parameters for one step. H = R + W heads, read heads first."""

    key: Tensor  # [P, H, M]  k, the content key
    beta: Tensor  # [P, H]     β >= 0, key strength
    gate: Tensor  # [P, H]     g in [0, 1], interpolation gate
    shift: Tensor  # [P, H, S]  s, a distribution over shifts -S//2 .. S//2
    gamma: Tensor  # [P, H]     γ >= 1, sharpening
    erase: Tensor  # [P, W, M]  e in [0, 1], write heads only
    add: Tensor  # [P, W, M]  a in [-1, 1], write heads only


def head_sizes(heads: int, write_heads: int, width: int, shift_width: int) -> list[int]:
    """Widths of the slices of the raw vector, in HeadParams order."""
    return [heads * width, heads, heads, heads * shift_width, heads, write_heads * width, write_heads * width]


def activate(raw: Tensor, heads: int, write_heads: int, width: int, shift_width: int) -> HeadParams:
    """raw [P, sum(head_sizes)] -> HeadParams, each slice through its activation."""
    rows = raw.shape[0]
    key, beta, gate, shift, gamma, erase, add = raw.split(head_sizes(heads, write_heads, width, shift_width), -1)
    return HeadParams(
        key=key.reshape(rows, heads, width),
        beta=F.softplus(beta),
        gate=torch.sigmoid(gate),
        shift=torch.softmax(shift.reshape(rows, heads, shift_width), dim=-1),
        gamma=1 + F.softplus(gamma),
        erase=torch.sigmoid(erase).reshape(rows, write_heads, width),
        add=torch.tanh(add).reshape(rows, write_heads, width),
    )


class Heads(nn.Module):
    """The heads' linear layer for K models: controller output [P, C] -> raw [P, sum(sizes)]."""

    def __init__(self, models: int, controller_size: int, read_heads: int, write_heads: int, width: int,
                 shift_width: int):
        super().__init__()
        self.read_heads, self.write_heads = read_heads, write_heads
        self.width, self.shift_width = width, shift_width
        self.sizes = head_sizes(read_heads + write_heads, write_heads, width, shift_width)
        self.linear = StackedLinear(models, controller_size, sum(self.sizes))

    def forward(self, hidden: Tensor) -> HeadParams:
        """The reference path: hidden [P, C] -> HeadParams."""
        return activate(self.linear(hidden), self.read_heads + self.write_heads, self.write_heads,
                        self.width, self.shift_width)
