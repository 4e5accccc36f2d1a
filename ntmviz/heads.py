"""The NTM's heads, declared once (Graves et al. 2014, 3.3): what each head computes at a step,
and how the controller's output becomes every head's parameters.

`NTM` is the model's declaration (contract.Family): two groups of heads, read and write, each
addressed through the same stages, content -> gated -> shifted -> weights, with the parameters
below. Everything else about the NTM's step takes its names and shapes from here: the layout of
the raw vector (`raw_layout`), the parameters' activations (`activate`), the fields one memory
step returns (`STEP_FIELDS`, fused.MemoryStep, native.py's buffers) and the episode's arrays.
Adding a parameter is one line here plus its maths (and its place in the C kernels' arguments,
which follow STEP_FIELDS' order).

One linear layer emits the raw parameters of all H = R + W heads at once (read heads first).
A parameter every group has is laid out over all H heads; one that only write heads have, over
the W write heads. Raw vector [P, sum(head_sizes(...))], in declaration order:
key H*M | beta H | gate H | shift H*S | gamma H | erase W*M | add W*M.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .contract import Family, HeadGroup, Param, Stage
from .layers import StackedLinear

STAGES = (
    Stage("content", "the key against every slot (cosine similarity), sharpened by β, softmaxed (eq. 5)"),
    Stage("gated", "the content weighting blended with the previous weighting by the gate g (eq. 7)"),
    Stage("shifted", "rotated over the slots by the shift distribution s (eq. 8)"),
)
SHARED = (
    Param("key", "vector", ("M",), "k", "the content key, compared with every slot"),
    Param("beta", "number", (), "β", "key strength: how sharply content addressing picks", range=(0.0, 50.0), log=True),
    Param("gate", "number", (), "g", "interpolation gate: 0 keeps the previous place, 1 jumps by content",
          range=(0.0, 1.0)),
    Param("shift", "distribution", ("S",), "s", "how far to move the weighting, over offsets -S//2 .. S//2",
          centred=True),
    Param("gamma", "number", (), "γ", "sharpening: γ >= 1 raises the weights to a power, then renormalises",
          range=(1.0, 10.0)),
)
WRITE_ONLY = (
    Param("erase", "vector", ("M",), "e", "what the write erases, in [0, 1] per component", signed=False),
    Param("add", "vector", ("M",), "a", "what the write adds, in [-1, 1] per component"),
)

NTM = Family(
    name="ntm",
    title="Neural Turing Machine",
    groups=(
        HeadGroup("read", "read_heads", STAGES, SHARED, reads=True,
                  doc="read heads: r = w M, from the memory before this step's write"),
        HeadGroup("write", "write_heads", STAGES, SHARED + WRITE_ONLY, writes=True,
                  doc="write heads: each erases e, then adds a, where it is focused"),
    ),
    memory="written",
    doc="Graves, Wayne & Danihelka 2014: a controller reads and writes an N x M memory through soft attention.",
)

PARAMS = tuple(p.name for p in SHARED + WRITE_ONLY)  # in raw-vector order
STAGE_NAMES = tuple(s.name for s in STAGES)
WRITE_PARAMS = frozenset(p.name for p in WRITE_ONLY)

# The activation that gives each parameter its range (the paper's, section 3.3).
ACTIVATIONS = {
    "key": lambda x: x,
    "beta": F.softplus,  # β >= 0
    "gate": torch.sigmoid,  # g in [0, 1]
    "shift": lambda x: torch.softmax(x, dim=-1),  # a distribution over the S offsets
    "gamma": lambda x: 1 + F.softplus(x),  # γ >= 1
    "erase": torch.sigmoid,  # e in [0, 1]
    "add": torch.tanh,  # a in [-1, 1]
}

# What one memory step returns (fused.MemoryStep, in this order; the kernels write them so):
# the weighting, reads and memory that carry on, then every parameter, then every stage.
STEP_FIELDS = ("weights", "reads", "memory") + PARAMS + STAGE_NAMES

HeadParams = NamedTuple("HeadParams", [(name, Tensor) for name in PARAMS])
HeadParams.__doc__ = """Every head's parameters for one step: each [P, heads, *shape] (key [P, H, M],
beta [P, H], shift [P, H, S], erase [P, W, M] ...), in heads.PARAMS order."""


def param_heads(name: str, H: int, W: int) -> int:
    """How many heads a parameter is laid out over: all H, or the W write heads."""
    return W if name in WRITE_PARAMS else H


# raw_layout and head_sizes are cached: every memory step asks (activate, native.backward), and
# building them from the declaration costs more than a lookup (a few microseconds a step).
@cache
def raw_layout(H: int, W: int, M: int, S: int) -> tuple[tuple[str, int, tuple[int, ...]], ...]:
    """(name, heads, per-head shape) of each slice of the raw vector, in order."""
    dims = {"M": M, "S": S}
    return tuple((p.name, param_heads(p.name, H, W), tuple(dims[d] for d in p.shape)) for p in SHARED + WRITE_ONLY)


@cache
def head_sizes(heads: int, write_heads: int, width: int, shift_width: int) -> tuple[int, ...]:
    """Widths of the slices of the raw vector, in PARAMS order."""
    return tuple(n * math.prod(shape) for _, n, shape in raw_layout(heads, write_heads, width, shift_width))


def step_shapes(P: int, H: int, R: int, N: int, M: int, S: int) -> tuple[tuple[int, ...], ...]:
    """The shape of each of STEP_FIELDS for P rows."""
    return tuple(output_shapes(P, H, R, N, M, S)[: len(STEP_FIELDS)])


# What the memory step's backward reads besides the step's fields: every implementation (the
# compiled kernels, Triton, the registered operator in ops.py) returns these after STEP_FIELDS.
SAVED = ("key_norm", "slot_norm", "cosine")  # returned beside the step's fields for the backward
OUTPUTS = STEP_FIELDS + SAVED
DIFFERENTIABLE = 3  # weights, reads, memory: the fields that carry on to the next step
# What the backward reads, in the order the compiled kernels take them: every parameter and
# stage, the weighting, then SAVED (the step's inputs memory and previous come first).
BACKWARD_FIELDS = STEP_FIELDS[DIFFERENTIABLE:] + ("weights",) + SAVED


def _any_layout(H, W, M, S) -> tuple[tuple[str, int, tuple], ...]:
    """raw_layout, also for the symbolic sizes of a fake tensor (which its cache cannot hash)."""
    if all(type(n) is int for n in (H, W, M, S)):
        return raw_layout(H, W, M, S)
    dims = {"M": M, "S": S}
    return tuple((p.name, param_heads(p.name, H, W), tuple(dims[d] for d in p.shape)) for p in SHARED + WRITE_ONLY)


def raw_width(H, W, M, S):
    """Z: the numbers per row of the raw vector (heads.head_sizes summed)."""
    total = 0
    for _, heads, shape in _any_layout(H, W, M, S):
        for d in shape:
            heads = heads * d
        total = total + heads
    return total


def output_shapes(P, H, R, N, M, S) -> list[tuple]:
    """The shape of each of OUTPUTS for P rows: step_shapes, then SAVED's."""
    shapes = {"weights": (P, H, N), "reads": (P, R, M), "memory": (P, N, M),
              "key_norm": (P, H), "slot_norm": (P, N), "cosine": (P, H, N)}
    for name, heads, shape in _any_layout(H, H - R, M, S):
        shapes[name] = (P, heads, *shape)
    for name in STAGE_NAMES:
        shapes[name] = (P, H, N)
    return [shapes[name] for name in OUTPUTS]


def activate(raw: Tensor, heads: int, write_heads: int, width: int, shift_width: int) -> HeadParams:
    """raw [P, sum(head_sizes)] -> HeadParams, each slice through its activation."""
    rows = raw.shape[0]
    layout = raw_layout(heads, write_heads, width, shift_width)
    parts = raw.split(head_sizes(heads, write_heads, width, shift_width), -1)
    # a number per head is its slice as it is ([P, heads]); reshaping it anyway costs a dispatch a step
    return HeadParams(*(ACTIVATIONS[name](part.reshape(rows, n, *shape) if shape else part)
                        for (name, n, shape), part in zip(layout, parts)))


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
