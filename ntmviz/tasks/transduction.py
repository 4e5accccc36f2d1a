"""The transduction tasks of Grefenstette et al. 2015 (section 4) beside copy: read a sequence,
then write it back reversed (reversal) or with each pair of neighbours swapped (bigram flipping).

They are copy (copy.py) with another order of playback: the same steps, inputs, targets and
mask, output j playing input vector `source(j)`:

    copy            j                      a b c d  ->  a b c d
    reversal        L - 1 - j              a b c d  ->  d c b a
    bigram_flip     j + 1 if j even else j - 1      a b c d  ->  b a d c   (lengths are even)

The paper's symbols are words of a vocabulary of 128; here a symbol is a vector of `bits` bits
(4 bits: 16 symbols), so every model of the project reads and writes them as it does copy's.
A sequence is right when every bit of it is (Score.exact): the paper's whole-sequence accuracy.

The allocation task (Graves et al. 2016, Extended Data Figure 1): several copy sequences one
after another through a memory that cannot hold them all, so a model must free the slots of a
sequence it has played back and write the next one there.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .base import Batch, Task, batch_of, check_int, check_range, parse_bit_rows, randint, span
from .copy import FOLLOWS_LINKS, LEAST_USED, WRITTEN, Copy, not_measured, playback, playback_fit
from .mechanism import DNC, NOT_APPLICABLE, Mechanism, Reading, Trace, first_step, follows_links, least_used, locations

PLAYBACK = Mechanism(
    "playback", "reads find each output's vector where it was written",
    "The fraction of the L outputs whose read (at the output's step, or one step before: the "
    "playback lag) is on the slot the vector it plays was written to. The algorithm: 1.", "mean", 0.95,
    "the reads found {value:.1%} of the vectors where they were written", families=WRITTEN)


def playback_readings(task: Copy, trace: Trace, lag: int | None, forward: bool) -> dict[str, Reading]:
    """The playback mechanisms of a copy-like task: where output j's vector (task.source) was
    written against where the read went; for the DNC its allocation and (`forward`: when the
    task plays in write order) its link following."""
    L = first_step(trace.inputs[:, task.bits] > 0.5)
    if not L:
        return not_measured((PLAYBACK, LEAST_USED, FOLLOWS_LINKS), "no delimiter, or no vectors before it")
    j = np.arange(L)
    sources = [int(s) for s in task.source(j, np.full(L, L))]
    outputs = [L + 1 + i for i in range(L)]
    if lag is None:
        lag = playback_fit(trace, outputs, sources, L)
    out = {"playback": playback(trace, [t - lag for t in outputs], sources, L, lag),
           "least_used": least_used(trace, list(range(L)))}
    out["follows_links"] = follows_links(trace, [t - lag for t in outputs[1:]]) if forward and L > 1 else \
        Reading(NOT_APPLICABLE, "reads in write order only on copy, of two vectors or more")
    return out


@dataclass(frozen=True)
class Reversal(Copy):
    """Reversal: min_length..max_length vectors of `bits` bits, played back last first."""

    bits: int = 4
    min_length: int = 2
    max_length: int = 16

    name = "reversal"
    eval_sizes = (16, 24, 32)
    mechanisms = (PLAYBACK, LEAST_USED)

    def source(self, j, L):
        return L - 1 - j

    def describe(self) -> str:
        return (f"reversal: {self.bits}-bit vectors, length {span(self.min_length, self.max_length)}, "
                f"played back last first, I={self.input_size}, O={self.output_size}")

    def _size_phrase(self) -> str:
        return f"reversal length {self.max_length}"

    def playback_lag(self, trace: Trace) -> int | None:
        return None

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        return {k: v for k, v in playback_readings(self, trace, lag, forward=False).items()
                if k in {m.name for m in self.mechanisms}}


@dataclass(frozen=True)
class BigramFlip(Reversal):
    """Bigram flipping: an even number of vectors, each pair played back swapped."""

    name = "bigram_flip"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length < 2:
            raise ConfigError(f"bigram flipping needs pairs: max_length must be at least 2, got {self.max_length}")

    def source(self, j, L):
        return np.where(np.asarray(j) % 2 == 0, j + 1, j - 1)

    def lengths(self, rng: np.random.Generator, B: int) -> np.ndarray:
        """Even lengths in min_length..max_length (the pairs' count uniform)."""
        low, high = (self.min_length + 1) // 2, self.max_length // 2
        return 2 * randint(rng, max(low, 1), high, (B,))

    def at(self, difficulty: int) -> "BigramFlip":
        """Every item `difficulty` vectors long (rounded up to even)."""
        n = difficulty + difficulty % 2
        return dataclasses.replace(self, min_length=n, max_length=n)

    def describe(self) -> str:
        return (f"bigram flipping: {self.bits}-bit vectors, even length {span(self.min_length, self.max_length)}, "
                f"each pair swapped, I={self.input_size}, O={self.output_size}")

    def _size_phrase(self) -> str:
        return f"bigram flipping length {self.max_length}"


# ---- allocation ---------------------------------------------------------------------------------

REUSE = Mechanism(
    "reuse", "freed slots are reused",
    "Of the vectors of the second and later sequences, the fraction written to a slot an earlier "
    "sequence's vector had been written to, measured when the sequences together hold more vectors "
    "than the memory has slots (so a model that never frees a slot runs out). The paper's "
    "allocation: high, as each sequence's slots are freed once it is played back.", "mean", 0.5,
    "{value:.1%} of the later sequences' vectors went to a slot an earlier sequence had used",
    families=DNC)
DISTINCT = Mechanism(
    "distinct", "a sequence's vectors go to distinct slots",
    "The fraction of vectors written to a slot no other vector of the same sequence was written "
    "to (a write that lands on its own sequence's vector destroys it). The algorithm: 1.",
    "mean", 0.95, "{value:.1%} of the vectors went to a slot of their own within their sequence",
    families=DNC)


@dataclass(frozen=True)
class Allocation(Task):
    """`sequences` copy sequences in turn, each min_length..max_length vectors: read one, a
    delimiter, write it back, then the next. A memory of max_length slots holds one at a time.

        for each sequence k:   L_k input steps (its vectors), 1 delimiter step, L_k output steps
    """

    typed_input = True

    bits: int = 4
    min_length: int = 2
    max_length: int = 6
    sequences: int = 4

    name = "allocation"
    difficulty_name = "sequence length"
    size_field = "max_length"
    eval_sizes = (6,)
    solved_below = 0.05
    extra_inputs = ("delim",)
    mechanisms = (REUSE, DISTINCT, LEAST_USED)

    def __post_init__(self) -> None:
        check_int("bits", self.bits)
        check_range("allocation", "min_length", self.min_length, "max_length", self.max_length)
        check_int("sequences", self.sequences)

    def required_slots(self) -> int:
        return self.max_length

    def _size_phrase(self) -> str:
        return f"allocation with sequences of up to {self.max_length} vectors"

    def at(self, difficulty: int) -> "Allocation":
        return dataclasses.replace(self, min_length=difficulty, max_length=difficulty)

    def describe(self) -> str:
        return (f"allocation: {self.sequences} copy sequences in turn, {self.bits}-bit vectors, length "
                f"{span(self.min_length, self.max_length)} each, I={self.input_size}, O={self.output_size}")

    def _sample(self, batch_size: int, rng: np.random.Generator):
        B, W, K = batch_size, self.bits, self.sequences
        L = randint(rng, self.min_length, self.max_length, (B, K))  # [B, K]
        vectors = rng.integers(0, 2, (B, K, self.max_length, W)).astype(np.float32)
        return self._lay_out(vectors, L)

    def _lay_out(self, vectors: np.ndarray, L: np.ndarray):
        """vectors [B, K, Lmax, W], L [B, K] each sequence's length -> (inputs, targets, mask,
        lengths): each sequence's vectors, a delimiter, its vectors again as targets, in turn."""
        B, K, Lmax, W = vectors.shape
        lengths = (2 * L + 1).sum(1)  # [B]
        T = int(lengths.max())
        inputs = np.zeros((B, T, W + 1), np.float32)
        targets = np.zeros((B, T, W), np.float32)
        mask = np.zeros((B, T), np.float32)
        start = np.zeros(B, np.int64)
        for k in range(K):  # a few sequences: a loop over them, each vectorised over the batch
            Lk = L[:, k]
            for i in range(Lmax):
                on = i < Lk  # [B]
                rows = np.flatnonzero(on)
                inputs[rows, start[rows] + i, :W] = vectors[rows, k, i]
                targets[rows, start[rows] + Lk[rows] + 1 + i] = vectors[rows, k, i]
                mask[rows, start[rows] + Lk[rows] + 1 + i] = 1
            inputs[np.arange(B), start + Lk, W] = 1
            start = start + 2 * Lk + 1
        return inputs, targets, mask, lengths

    @property
    def typed_hint(self) -> str:
        return (f"Type rows of {self.bits} bits (0 or 1), one vector per line, a blank line between "
                f"sequences.")

    def typed(self, text: str, seed: int = 0) -> tuple["Allocation", Batch]:
        """Sequences of typed rows, a blank line apart; the task fixed at the longest."""
        groups = []
        for k, part in enumerate(re.split(r"\n[ \t,_]*\n", text.strip())):
            try:
                groups.append(parse_bit_rows(part, self.bits))
            except ConfigError as exc:
                raise ConfigError(f"sequence {k + 1}: {exc}") from None
        K, Lmax = len(groups), max(len(g) for g in groups)
        vectors = np.zeros((1, K, Lmax, self.bits), np.float32)
        for k, rows in enumerate(groups):
            vectors[0, k, :len(rows)] = rows
        L = np.array([[len(g) for g in groups]])
        fixed = dataclasses.replace(self, min_length=int(L.min()), max_length=Lmax, sequences=K)
        return fixed, batch_of(*fixed._lay_out(vectors, L))

    def _parts(self, trace: Trace) -> list[tuple[int, int]]:
        """(first input step, length) of each sequence, from the delimiters."""
        delims = np.flatnonzero(trace.inputs[:, self.bits] > 0.5)
        parts, start = [], 0
        for d in delims:
            parts.append((start, int(d) - start))
            start = 2 * int(d) - start + 1
        return parts

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        parts = [(s, n) for s, n in self._parts(trace) if n > 0]
        if not parts:
            return not_measured(self.mechanisms, "no sequence before a delimiter")
        where = locations(trace.write)
        slots = [where[s: s + n] for s, n in parts]
        own = [len(set(x.tolist())) for x in slots]
        total = sum(n for _, n in parts)
        out = {"distinct": Reading(sum(own) / total, f"{sum(own)} of {total} vectors went to a slot of their own "
                                                     "within their sequence"),
               "least_used": least_used(trace, [s + i for s, n in parts for i in range(n)])}
        if total <= trace.slots or len(parts) < 2:
            out["reuse"] = Reading(NOT_APPLICABLE, f"the sequences hold {total} vectors, the memory has "
                                                   f"{trace.slots} slots: nothing must be reused")
        else:
            seen, hits, later = set(slots[0].tolist()), 0, 0
            for x in slots[1:]:
                hits += sum(int(s) in seen for s in x)
                later += len(x)
                seen |= set(x.tolist())
            out["reuse"] = Reading(hits / later, f"{hits} of {later} later vectors went to a slot an earlier "
                                                 "sequence had used")
        return out
