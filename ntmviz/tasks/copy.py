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

from ..errors import ConfigError
from .base import Batch, Task, batch_of, check_int, check_range, parse_bit_rows, randint, span
from .mechanism import (
    DNC, LAGS, NOT_APPLICABLE, Mechanism, Reading, Trace, first_step, focus, follows_links, least_used, locations,
    path, signed_step, slot_list, walk_direction,
)


# Families whose memory is written where a head puts its weight: playback reads the same thing
# in each of them (output j's vector read from the slot it was written to).
WRITTEN = ("ntm", "dnc", "stack", "queue", "deque")

LEAST_USED = Mechanism(
    "least_used", "writes go to the least-used slot",
    "The fraction of the L input steps whose write went to a slot of the smallest usage (within "
    "0.01): the DNC's allocation. Its algorithm: 1.", "mean", 0.9,
    "{value:.1%} of the writes went to a least-used slot", families=DNC)
FOLLOWS_LINKS = Mechanism(
    "follows_links", "reads follow the temporal links in write order",
    "The fraction of playback reads after the first whose read mode is mostly forward and whose "
    "location is where the forward link points: the DNC reads the vectors back in the order they "
    "were written. Its algorithm for copy: 1.", "mean", 0.9,
    "{value:.1%} of playback reads followed the forward temporal link", families=DNC)


@dataclass(frozen=True)
class Copy(Task):
    """Copy: bits-wide random vectors, min_length..max_length of them."""

    typed_input = True  # its input is rows of bits a person can type

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
        check_range(self.name.replace("_", " "), "min_length", self.min_length, "max_length", self.max_length)

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

    def source(self, j: np.ndarray, L: np.ndarray) -> np.ndarray:
        """Which input vector output j plays (j in 0..L-1, broadcast with L): copy plays them in
        order; reversal and bigram flipping (transduction.py) in their own orders."""
        return j

    def lengths(self, rng: np.random.Generator, B: int) -> np.ndarray:
        """[B] each item's length."""
        return randint(rng, self.min_length, self.max_length, (B,))

    def _sample(self, batch_size: int, rng: np.random.Generator):
        L = self.lengths(rng, batch_size)  # [B]
        vectors = rng.integers(0, 2, (batch_size, int(L.max()), self.bits)).astype(np.float32)  # [B, Lmax, W]
        return self._lay_out(vectors, L)

    def _lay_out(self, vectors: np.ndarray, L: np.ndarray):
        """vectors [B, Lmax, W], L [B] -> (inputs, targets, mask, lengths): each item's first L
        vectors, a delimiter, then the L outputs in `source` order."""
        B, Lmax, W = vectors.shape
        T = 2 * Lmax + 1
        t = np.arange(T)[None]  # [1, T]
        Lc = L[:, None]  # [B, 1]

        inputs = np.zeros((B, T, W + 1), np.float32)
        inputs[:, :Lmax, :W] = vectors * (t[:, :Lmax] < Lc)[..., None]
        inputs[:, :, W] = t == Lc

        scored = (t > Lc) & (t <= 2 * Lc)  # [B, T]
        source = np.clip(self.source(t - Lc - 1, Lc), 0, Lmax - 1)  # which vector each output step plays
        targets = np.take_along_axis(vectors, source[..., None], 1) * scored[..., None]
        return inputs, targets, scored, 2 * L + 1

    @property
    def typed_hint(self) -> str:
        return f"Type rows of {self.bits} bits (0 or 1), one vector per line."

    def typed(self, text: str, seed: int = 0) -> tuple["Copy", Batch]:
        """Typed rows of bits [L, bits] as the vectors; the task fixed at length L."""
        rows = parse_bit_rows(text, self.bits)
        L = len(rows)
        fixed = self.at(L)
        if not fixed.min_length <= L <= fixed.max_length:  # bigram flipping plays pairs: an even count
            raise ConfigError(f"{self.name.replace('_', ' ')} takes {fixed.difficulty_name}s like "
                              f"{fixed.max_length}, not {L} rows")
        return fixed, batch_of(*fixed._lay_out(rows[None], np.array([L])))

    # ---- what the heads did ----------------------------------------------------------------
    # The paper's algorithm (section 4.1): write each vector to the next slot (+1 per step),
    # keep the read head at the first written slot, then read the slots back in order.
    mechanisms = (
        Mechanism(
            "write_walk", "write head walks one slot per vector",
            "The slots the write head passes through from step 0 on (a stay on one slot counted once) "
            "are where the vectors went, in order. Measured: the fraction of the L-1 moves between the "
            "first L of them that are one slot in the head's usual direction (+1 or -1). The paper's "
            "algorithm: 1.", "mean", 0.95,
            "the write head moves one slot per vector on {value:.1%} of moves"),
        Mechanism(
            "playback", "read head replays the written slots",
            "The fraction of the L vectors whose playback read (the read at step L+1+j-lag for vector "
            "j) is on the slot vector j was written to. The paper's algorithm: 1.", "mean", 0.95,
            "the read head reads {value:.1%} of vectors from the slot they were written to", families=WRITTEN),
        Mechanism(
            "playback_start", "playback starts where writing began",
            "Whether the first playback read (step L+1-lag) is on the first written slot. The paper's "
            "algorithm: every sequence.", "rate", 0.99,
            "playback starts away from where writing began on {miss:.1%} of sequences"),
        Mechanism(
            "parked", "parked read head does not slip",
            "Whether the read head stays on one slot from step 0 until the first playback read, that "
            "slot being the first written one or the one just before it in the write head's direction "
            "(then the read head's first move lands on it). The paper's algorithm: every sequence.",
            "rate", 0.99,
            "the read head slips off the start before playback on {miss:.1%} of sequences"),
        Mechanism(
            "parked_focus", "parked read head is sharp",
            "The smallest largest-weight of the read head over the steps it waits (0 .. L-lag): a "
            "parked head whose strongest slot holds less than half its weight can drift to a "
            "neighbour. The paper's algorithm: 1 (the threshold asks for 0.5).", "mean", 0.5,
            "while parked, the read head keeps at least {value:.3f} of its weight on its slot (mean over sequences)"),
        Mechanism(
            "sharpness", "heads focus on one slot",
            "The mean largest weight of the write head over the input steps 0 .. L-1 and of the read "
            "head over the L playback reads. The paper's algorithm: 1.", "mean", 0.9,
            "while writing and playing back, the heads put {value:.3f} of their weight on one slot"),
        LEAST_USED,
        FOLLOWS_LINKS,
    )

    def _input_length(self, trace: Trace) -> int | None:
        """L: the step of the delimiter (channel `bits`), or None without one."""
        return first_step(trace.inputs[:, self.bits] > 0.5)

    def playback_lag(self, trace: Trace) -> int | None:
        L = self._input_length(trace)
        if not L:
            return None
        return playback_fit(trace, [L + 1 + j for j in range(L)], list(range(L)), L)

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        L = self._input_length(trace)
        if not L:
            return not_measured(self.mechanisms, "no delimiter, or no vectors before it")
        if lag is None:
            lag = self.playback_lag(trace)
        out = {"write_walk": write_walk(trace, L), "least_used": least_used(trace, list(range(L)))}
        read_steps = [L + 1 + j - lag for j in range(L)]
        out["follows_links"] = follows_links(trace, read_steps[1:]) if L > 1 else \
            Reading(NOT_APPLICABLE, "one vector: no link to follow")
        out["playback"] = playback(trace, read_steps, list(range(L)), L, lag)
        stored = stored_slots(trace, L)
        start, P = int(stored[0]), read_steps[0]
        reads = locations(trace.read)
        first = int(reads[P]) if P < len(reads) else None
        if first == start:
            out["playback_start"] = Reading(1.0, f"playback started at slot {start}, where writing began")
        else:
            out["playback_start"] = Reading(0.0, f"playback started at slot {first}; writing began at slot "
                                                 f"{start}{offset_words(trace, start, first, stored)}")
        out["parked"] = parked(trace, reads, stored, P)
        weakest = float(focus(trace.read)[:P].min())
        out["parked_focus"] = Reading(weakest, f"while parked, the read head's strongest slot held at least "
                                               f"{weakest:.3f} of its weight")
        sharp = float(np.concatenate([focus(trace.write)[:L], focus(trace.read)[P: P + L]]).mean())
        out["sharpness"] = Reading(sharp, f"the heads put {sharp:.3f} of their weight on one slot on average "
                                          "while writing and playing back")
        return out


# ---- helpers shared with repeat copy --------------------------------------------------------

def not_measured(mechanisms, why: str) -> dict[str, Reading]:
    """Every mechanism as not applicable, for the reason given."""
    return {m.name: Reading(NOT_APPLICABLE, why) for m in mechanisms}


def parked(trace: Trace, reads: np.ndarray, stored: np.ndarray, P: int) -> Reading:
    """Whether the read head waited on one slot over steps 0 .. P-1 (P: the first playback read),
    the first written slot or the one before it in the write direction, and read the first
    written slot at step P: a head waiting just before the start reaches it with the same shift
    the playback then repeats."""
    start = int(stored[0])
    direction = walk_direction(signed_step(stored[:-1], stored[1:], trace.slots)) if len(stored) > 1 else 1
    before = (start - direction) % trace.slots
    wait = int(reads[0])
    if wait not in (start, before):
        return Reading(0.0, f"the read head waited on slot {wait}, neither slot {start} where writing began "
                            f"nor slot {before} before it")
    away = first_step(reads[:P] != wait)
    if away is None and P < len(reads) and int(reads[P]) != start:  # its first playback move missed the start
        away = P
    if away is not None:
        return Reading(0.0, f"the read head left slot {wait} at step {away} (for slot {int(reads[away])}) before "
                            f"playback began at step {P}")
    return Reading(1.0, f"the read head stayed on slot {wait} from step 0 until playback began at step {P}")


def stored_slots(trace: Trace, count: int) -> np.ndarray:
    """Where the first `count` vectors went: the first `count` slots of the write head's path
    (fewer if it visits fewer)."""
    return path(locations(trace.write))[0][:count]


def write_walk(trace: Trace, L: int) -> Reading:
    """The fraction of the L-1 moves between the first L slots of the write path that are one
    slot in the head's usual direction (a missing slot counts as a wrong move)."""
    if L < 2:
        return Reading(NOT_APPLICABLE, "one vector: the write head has no move to make")
    stored = stored_slots(trace, L)
    moves = signed_step(stored[:-1], stored[1:], trace.slots)
    direction = walk_direction(moves)
    good = int((moves == direction).sum())
    return Reading(good / (L - 1), f"the write head moved one slot ({direction:+d}) per vector on {good} of "
                                   f"{L - 1} moves (slots {slot_list(stored)})")


def playback(trace: Trace, read_steps: list[int], vectors: list[int], L: int, lag: int) -> Reading:
    """The fraction of playback reads (read_steps, each playing vector vectors[i] of the L
    written) on the slot that vector went to."""
    hits = _aligned(trace, read_steps, vectors, L)
    lead = " (it reads at step t what the output shows at step t+1)" if lag else ""
    return Reading(hits / len(read_steps), f"the read head read {hits} of {len(read_steps)} vectors from the "
                                           f"slots they were written to{lead}")


def _aligned(trace: Trace, read_steps: list[int], vectors: list[int], L: int) -> int:
    # where each write head put each vector: a deque pushes a vector onto both its ends, and
    # reading it back from either end is finding it where it was written
    writers = [trace._replace(write=trace.write[:, [w]]) for w in range(trace.write.shape[1])] or [trace]
    stored = [stored_slots(one, L) for one in writers]
    reads = locations(trace.read)
    return sum(1 for t, j in zip(read_steps, vectors)
               if 0 <= t < len(reads) and any(j < len(s) and reads[t] == s[j] for s in stored))


def playback_fit(trace: Trace, output_steps: list[int], vectors: list[int], L: int) -> int:
    """The lag in LAGS under which the most playback reads land on their vector's slot (the
    smaller lag on a tie). output_steps: the steps whose outputs play vectors[i]."""
    fits = [_aligned(trace, [t - lag for t in output_steps], vectors, L) for lag in LAGS]
    return LAGS[int(np.argmax(fits))]


def offset_words(trace: Trace, start: int, slot: int | None, stored: np.ndarray) -> str:
    """' (one slot early)' and the like: where `slot` is against `start` along the write path."""
    if slot is None:
        return ""
    moves = signed_step(stored[:-1], stored[1:], trace.slots) if len(stored) > 1 else np.array([1])
    ahead = int(signed_step(start, slot, trace.slots)) * walk_direction(moves)
    if ahead == 0:
        return ""
    count = "one slot" if abs(ahead) == 1 else f"{abs(ahead)} slots"
    return f" ({count} {'late' if ahead > 0 else 'early'})"
