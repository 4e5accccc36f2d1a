"""Priority sort (paper section 4.5): read vectors with priorities, write the highest-priority
ones back in order of priority, highest first.

Each batch item draws its number of inputs n from min_inputs..max_inputs (paper: 20 both)
and outputs the top k = min(outputs, n) of them (paper: 16); T_b = n + 1 + k steps.
Priorities are uniform in [-1, 1].

    step t            inputs [I = bits + 2]                        targets [O = bits]        mask
    0 .. n-1          vector t, channel bits = its priority        0                         0
    n                 channel bits+1 = 1 (delimiter)               0                         0
    n+1 .. n+k        0                                            the (t-n)-th highest      1

All n inputs must be stored before any is known to be in the top k: n memory slots.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .base import Task, check_int, check_range, randint, span


@dataclass(frozen=True)
class PrioritySort(Task):
    """Priority sort: min_inputs..max_inputs prioritised vectors, the top `outputs` sorted."""

    bits: int = 8
    min_inputs: int = 20
    max_inputs: int = 20
    outputs: int = 16  # how many of the highest-priority vectors to write (fewer if fewer inputs)

    name = "priority_sort"
    difficulty_name = "number of inputs"
    size_field = "max_inputs"
    eval_sizes = (10, 30)
    extra_inputs = ("priority", "delim")
    signed_channels = ("priority",)

    def __post_init__(self) -> None:
        check_int("bits", self.bits)
        check_range("priority sort", "min_inputs", self.min_inputs, "max_inputs", self.max_inputs)
        check_int("outputs", self.outputs)

    def required_slots(self) -> int:
        return self.max_inputs

    def _size_phrase(self) -> str:
        return f"priority sort of {self.max_inputs} inputs"

    def at(self, difficulty: int) -> "PrioritySort":
        """Exactly `difficulty` inputs; still the top `outputs` (or all, if fewer) come out."""
        return dataclasses.replace(self, min_inputs=difficulty, max_inputs=difficulty)

    def describe(self) -> str:
        return (f"priority sort: {span(self.min_inputs, self.max_inputs)} {self.bits}-bit vectors with "
                f"priorities in [-1, 1], write the top {self.outputs} highest first, "
                f"I={self.input_size}, O={self.output_size}")

    def _sample(self, batch_size: int, rng: np.random.Generator):
        B, W = batch_size, self.bits
        n = randint(rng, self.min_inputs, self.max_inputs, (B,))  # [B]
        k = np.minimum(n, self.outputs)  # [B]
        lengths = n + 1 + k
        nmax, T = int(n.max()), int(lengths.max())
        vectors = rng.integers(0, 2, (B, nmax, W)).astype(np.float32)
        priority = rng.uniform(-1.0, 1.0, (B, nmax)).astype(np.float32)  # [B, nmax]
        t = np.arange(T)[None]  # [1, T]
        nc, kc = n[:, None], k[:, None]
        present = t[:, :nmax] < nc  # [B, nmax] inputs this item really has

        inputs = np.zeros((B, T, W + 2), np.float32)
        inputs[:, :nmax, :W] = vectors * present[..., None]
        inputs[:, :nmax, W] = priority * present
        inputs[:, :, W + 1] = t == nc

        order = np.argsort(np.where(present, -priority, np.inf), axis=1, kind="stable")  # highest first
        answering = (t > nc) & (t <= nc + kc)
        rank = np.clip(t - nc - 1, 0, nmax - 1)  # [B, T] which of the sorted vectors step t writes
        source = np.take_along_axis(order, rank, 1)
        targets = np.take_along_axis(vectors, source[..., None], 1) * answering[..., None]
        return inputs, targets, answering, lengths
