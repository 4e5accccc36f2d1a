"""Copy (paper section 4.1): read a sequence of random bit vectors, then write it back.

Each item draws its own length L from min_length..max_length (paper: 1-20) and uses
T_b = 2L + 1 steps; the batch is padded at the end to the longest item.

    step t          inputs [I = bits + 1]               targets [O = bits]   mask
    0 .. L-1        vector t on channels 0..bits-1     0                    0
    L               delimiter: channel `bits` = 1      0                    0
    L+1 .. 2L       0                                  vector t - L - 1     1

Scoring needs the vectors written somewhere: length L needs L memory slots.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .base import Task, check_int, check_range, randint, span


@dataclass(frozen=True)
class Copy(Task):
    """Copy: bits-wide random vectors, min_length..max_length of them."""

    bits: int = 8  # width of each vector
    min_length: int = 1
    max_length: int = 20

    name = "copy"
    difficulty_name = "sequence length"
    size_field = "max_length"
    eval_sizes = (10, 20, 40, 80, 120)
    solved_below = 0.01
    extra_inputs = ("delim",)

    def __post_init__(self) -> None:
        check_int("bits", self.bits)
        check_range("copy", "min_length", self.min_length, "max_length", self.max_length)

    def required_slots(self) -> int:
        return self.max_length

    def _size_phrase(self) -> str:
        return f"copy length {self.max_length}"

    def at(self, difficulty: int) -> "Copy":
        """Every item exactly `difficulty` vectors long."""
        return dataclasses.replace(self, min_length=difficulty, max_length=difficulty)

    def describe(self) -> str:
        return (f"copy: {self.bits}-bit vectors, length {span(self.min_length, self.max_length)}, "
                f"T = 2L+1 steps, I={self.input_size}, O={self.output_size}")

    def _sample(self, batch_size: int, rng: np.random.Generator):
        B, W = batch_size, self.bits
        L = randint(rng, self.min_length, self.max_length, (B,))  # [B]
        Lmax = int(L.max())
        T = 2 * Lmax + 1
        vectors = rng.integers(0, 2, (B, Lmax, W)).astype(np.float32)  # [B, Lmax, W]
        t = np.arange(T)[None]  # [1, T]
        Lc = L[:, None]  # [B, 1]

        inputs = np.zeros((B, T, W + 1), np.float32)
        inputs[:, :Lmax, :W] = vectors * (t[:, :Lmax] < Lc)[..., None]
        inputs[:, :, W] = t == Lc

        scored = (t > Lc) & (t <= 2 * Lc)  # [B, T]
        source = np.clip(t - Lc - 1, 0, Lmax - 1)  # which vector each output step repeats
        targets = np.take_along_axis(vectors, source[..., None], 1) * scored[..., None]
        return inputs, targets, scored, 2 * L + 1
