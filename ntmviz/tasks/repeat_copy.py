"""Repeat copy (paper section 4.2): read a sequence and a repeat count, write the sequence
that many times, then signal the end.

Each item draws its length L from min_length..max_length and its repeat count R from
min_repeats..max_repeats (paper: both 1-10), and uses T_b = (R + 1) L + 2 steps.

    step t                inputs [I = bits + 2]                targets [O = bits + 1]        mask
    0 .. L-1              vector t on channels 0..bits-1       0                             0
    L                     channel bits = 1 (delimiter),        0                             0
                          channel bits+1 = R / repeat_scale
    L+1 .. L+R*L          0                                    vector (t - L - 1) mod L      1
    L+1+R*L               0                                    channel bits = 1 (end marker) 1

The repeat count is divided by `repeat_scale` (default 10, the paper's largest training
count), a constant that does not follow max_repeats, so a model trained on 1-10 repeats
reads 20 repeats as 2.0. (The paper normalised the count to mean 0, variance 1 over its
training range; a fixed scale keeps the meaning of the channel when the range changes.)
The end-marker target is 0 on every copy step and 1 on the step after the last copy.

The sequence must be held in memory once: length L needs L memory slots.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from .base import (Batch, Task, batch_of, check_int, check_range, make_generator, numpy_rng, parse_bit_rows,
                   randint, span)
from .copy import not_measured, offset_words, playback, playback_fit, stored_slots, write_walk
from .mechanism import Mechanism, Reading, Trace, first_step, focus, locations


@dataclass(frozen=True)
class RepeatCopy(Task):
    """Repeat copy: min_length..max_length vectors, min_repeats..max_repeats copies."""

    typed_input = True  # its input is rows of bits a person can type

    bits: int = 8
    min_length: int = 1
    max_length: int = 10
    min_repeats: int = 1
    max_repeats: int = 10
    repeat_scale: float = 10.0  # the repeat-count channel holds R / repeat_scale

    name = "repeat_copy"
    difficulty_name = "sequence length"
    size_field = "max_length"
    eval_sizes = (5, 10, 15, 20)
    solved_below = 0.05
    extra_inputs = ("delim", "repeats")
    extra_outputs = ("end",)

    def __post_init__(self) -> None:
        check_int("bits", self.bits)
        check_range("repeat copy", "min_length", self.min_length, "max_length", self.max_length)
        check_range("repeat copy", "min_repeats", self.min_repeats, "max_repeats", self.max_repeats)
        if isinstance(self.repeat_scale, bool) or not isinstance(self.repeat_scale, (int, float)) \
                or not self.repeat_scale > 0:
            raise ConfigError(f"repeat_scale must be a positive number, got {self.repeat_scale!r}")

    def required_slots(self) -> int:
        return self.max_length

    def _size_phrase(self) -> str:
        return f"repeat copy length {self.max_length}"

    def at(self, difficulty: int, *, repeats: int | None = None) -> "RepeatCopy":
        """Every item exactly `difficulty` vectors long. The repeat counts keep the training
        range unless `repeats` fixes them too (the paper varies length and repeats apart)."""
        changes = dict(min_length=difficulty, max_length=difficulty)
        if repeats is not None:
            changes.update(min_repeats=repeats, max_repeats=repeats)
        return dataclasses.replace(self, **changes)

    def eval_variants(self) -> list[tuple[str, "RepeatCopy"]]:
        """Lengths with the training repeats, then length and repeats each beyond training (the
        paper's two generalisation tests): length 10 x 15 repeats and length 15 x 10 repeats."""
        return super().eval_variants() + [("10 x 15 repeats", self.at(10, repeats=15)),
                                          ("15 x 10 repeats", self.at(15, repeats=10))]

    def describe(self) -> str:
        return (f"repeat copy: {self.bits}-bit vectors, length {span(self.min_length, self.max_length)}, "
                f"repeats {span(self.min_repeats, self.max_repeats)} (input R/{self.repeat_scale:g}), "
                f"T = (R+1)L+2 steps, I={self.input_size}, O={self.output_size}")

    def _sample(self, batch_size: int, rng: np.random.Generator):
        B = batch_size
        L = randint(rng, self.min_length, self.max_length, (B,))  # [B]
        R = randint(rng, self.min_repeats, self.max_repeats, (B,))  # [B]
        vectors = rng.integers(0, 2, (B, int(L.max()), self.bits)).astype(np.float32)
        return self._lay_out(vectors, L, R)

    @property
    def typed_hint(self) -> str:
        return f"Type rows of {self.bits} bits (0 or 1), one vector per line; the seed picks the repeats."

    def typed(self, text: str, seed: int = 0) -> tuple["RepeatCopy", Batch]:
        """Typed rows of bits [L, bits] as the vectors; the repeat count drawn from `seed`."""
        rows = parse_bit_rows(text, self.bits)
        fixed = self.at(len(rows))
        R = randint(numpy_rng(make_generator(seed, None)), self.min_repeats, self.max_repeats, (1,))
        return fixed, batch_of(*fixed._lay_out(rows[None], np.array([len(rows)]), R))

    def _lay_out(self, vectors: np.ndarray, L: np.ndarray, R: np.ndarray):
        """vectors [B, Lmax, W], L [B] lengths, R [B] repeats -> (inputs, targets, mask, lengths)."""
        B, Lmax, W = vectors.shape
        lengths = (R + 1) * L + 2
        T = int(lengths.max())
        t = np.arange(T)[None]  # [1, T]
        Lc, Rc = L[:, None], R[:, None]  # [B, 1]
        end = Lc + 1 + Rc * Lc  # [B, 1] the end-marker step

        inputs = np.zeros((B, T, W + 2), np.float32)
        inputs[:, :Lmax, :W] = vectors * (t[:, :Lmax] < Lc)[..., None]
        delim = t == Lc
        inputs[:, :, W] = delim
        inputs[:, :, W + 1] = delim * (Rc / float(self.repeat_scale))

        copying = (t > Lc) & (t < end)  # [B, T]
        source = np.minimum(np.maximum(t - Lc - 1, 0) % Lc, Lmax - 1)
        targets = np.zeros((B, T, W + 1), np.float32)
        targets[:, :, :W] = np.take_along_axis(vectors, source[..., None], 1) * copying[..., None]
        targets[:, :, W] = t == end
        return inputs, targets, copying | (t == end), lengths

    part_name = "repeat"

    def part_errors(self, logits: Tensor, batch: Batch) -> Tensor | None:
        """Wrong bits per sequence in each of the R copies' steps, [B, R] (every output channel,
        so an end marker given too early counts in its copy; the end marker's own step apart),
        when every sequence has the same R (as in the "10 x 15 repeats" test); else None. It
        shows where a model that cannot play R copies stops."""
        if self.min_repeats != self.max_repeats:
            return None
        R = self.max_repeats
        wrong = self.wrong_bits(logits, batch)  # [B, T]
        L = (batch.inputs[..., self.bits] > 0.5).to(torch.float32).argmax(-1, keepdim=True)  # [B, 1] delimiter step
        t = torch.arange(wrong.shape[1], device=wrong.device)[None]  # [1, T]
        copying = (t > L) & (t <= L + R * L)  # [B, T]
        repeat = torch.where(copying, torch.div(t - L - 1, L.clamp(min=1), rounding_mode="floor"), 0)  # [B, T]
        return torch.zeros(wrong.shape[0], R, device=wrong.device).scatter_add_(1, repeat, wrong * copying)

    # ---- what the heads did ----------------------------------------------------------------
    # The paper's algorithm (section 4.2): write the vectors to consecutive slots as in copy,
    # then for each repeat move the read head back to the first written slot and walk it again.
    mechanisms = (
        Mechanism(
            "write_walk", "write head walks one slot per vector",
            "As in copy: the fraction of the L-1 moves between the first L slots of the write head's "
            "path that are one slot in its usual direction. The paper's algorithm: 1.", "mean", 0.95,
            "the write head moves one slot per vector on {value:.1%} of moves"),
        Mechanism(
            "returns", "read head returns to the start each repeat",
            "The fraction of the R repeats whose first read (step L+1+rL-lag for repeat r) is on the "
            "first written slot. The paper's algorithm: 1.", "mean", 0.95,
            "the read head is back at the start for {value:.1%} of repeats"),
        Mechanism(
            "playback", "read head replays the written slots",
            "The fraction of the R*L copy steps whose read (step t-lag for the output at step t) is on "
            "the slot the vector shown was written to. The paper's algorithm: 1.", "mean", 0.95,
            "the read head reads {value:.1%} of copied vectors from the slot they were written to"),
        Mechanism(
            "sharpness", "heads focus on one slot",
            "The mean largest weight of the write head over the input steps 0 .. L-1 and of the read "
            "head over the R*L playback reads. The paper's algorithm: 1.", "mean", 0.9,
            "while writing and playing back, the heads put {value:.3f} of their weight on one slot"),
    )

    def _layout(self, trace: Trace) -> tuple[int, int] | None:
        """(L, R): the delimiter's step and the repeat count it carries, or None."""
        L = first_step(trace.inputs[:, self.bits] > 0.5)
        if not L:
            return None
        R = int(round(float(trace.inputs[L, self.bits + 1]) * float(self.repeat_scale)))
        return (L, R) if R >= 1 else None

    def _output_steps(self, L: int, R: int) -> tuple[list[int], list[int]]:
        """The copy steps and the vector each shows."""
        return [L + 1 + i for i in range(R * L)], [i % L for i in range(R * L)]

    def playback_lag(self, trace: Trace) -> int | None:
        layout = self._layout(trace)
        if layout is None:
            return None
        L, R = layout
        return playback_fit(trace, *self._output_steps(L, R), L)

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        layout = self._layout(trace)
        if layout is None:
            return not_measured(self.mechanisms, "no delimiter with a repeat count")
        L, R = layout
        if lag is None:
            lag = self.playback_lag(trace)
        steps, vectors = self._output_steps(L, R)
        read_steps = [t - lag for t in steps]
        stored = stored_slots(trace, L)
        start = int(stored[0])
        reads = locations(trace.read)
        firsts = [read_steps[r * L] for r in range(R)]
        back = [r for r, t in enumerate(firsts) if t < len(reads) and reads[t] == start]
        missed = [r + 1 for r in range(R) if r not in back]
        note = f"the read head was on slot {start}, where writing began, at the start of {len(back)} of {R} repeats"
        if missed:
            t = firsts[missed[0] - 1]
            where = f"slot {int(reads[t])}" if t < len(reads) else "no step"
            note += (f"; repeat {missed[0]} started at {where}"
                     f"{offset_words(trace, start, int(reads[t]) if t < len(reads) else None, stored)}")
        sharp = float(np.concatenate([focus(trace.write)[:L],
                                      focus(trace.read)[[t for t in read_steps if t < len(reads)]]]).mean())
        return {
            "write_walk": write_walk(trace, L),
            "returns": Reading(len(back) / R, note),
            "playback": playback(trace, read_steps, vectors, L, lag),
            "sharpness": Reading(sharp, f"the heads put {sharp:.3f} of their weight on one slot on average "
                                        "while writing and playing back"),
        }
