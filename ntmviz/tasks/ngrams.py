"""Dynamic n-grams (paper section 4.4): predict the next bit of a sequence drawn from a random
n-gram model, which the network must learn anew for every sequence.

For each sequence, a table of 2^(n-1) probabilities (paper: n = 6, so 32) is drawn from
Beta(1/2, 1/2), one per context of the n-1 previous bits. The first n-1 bits are fair coin
flips; every later bit is 1 with the probability its context has in the table. Each item
draws its number of bits L from min_length..sequence_length (paper: 200 for all; min_length
None means the same as sequence_length) and uses T_b = L - 1 steps:

    step t        inputs [I = 1]     targets [O = 1]     mask
    0 .. L-2      bit t              bit t + 1           1 if t >= n-2, else 0

So the steps that predict bits 1 .. n-2 are not scored: they have no full context (and those
bits are coin flips). The scored targets are exactly the bits the table generated, L-n+1 of
them. A context is the integer sum_i bit[t - i] * 2^i, i = 0..n-2 (the newest bit lowest).

`optimal_probabilities` is the paper's Bayesian optimum for this prior:
P(next = 1 | context) = (N1 + 1/2) / (N0 + N1 + 1), with N0, N1 how often a 0 or 1 has
followed this context earlier in the same sequence; `bits_per_prediction` scores a model,
or the optimum, in bits per scored prediction.

Memory: the NTM can keep one count per context, 2^(n-1) slots.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import LN2, Batch, Task, check_int, check_range, randint, span
from .mechanism import Mechanism, Reading, Trace, context_addressing, locations


@dataclass(frozen=True)
class NGrams(Task):
    """Dynamic n-grams: L-bit sequences from a per-sequence random n-gram table."""

    n: int = 6  # the n of n-gram: each bit depends on the n-1 before it
    sequence_length: int = 200  # bits per sequence (the most, if min_length is set)
    min_length: int | None = None  # None: every sequence has sequence_length bits

    name = "ngrams"
    difficulty_name = "sequence length"
    size_field = "sequence_length"
    eval_sizes = (200,)
    choose_on_loss = True
    measure = "bits_above_optimum"  # its measure is the cross-entropy; which bits are wrong is mostly luck

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=2)
        if self.n > 16:
            raise ConfigError(f"n must be at most 16 (a table of 2^(n-1) probabilities), got {self.n}")
        # At least one generated, scored bit after the first n-1 coin flips.
        check_range("ngrams", "min_length", self.shortest, "sequence_length", self.sequence_length,
                    minimum=self.n)

    @property
    def context_bits(self) -> int:
        """n - 1."""
        return self.n - 1

    @property
    def contexts(self) -> int:
        """2^(n-1), the size of each sequence's table."""
        return 2 ** self.context_bits

    @property
    def shortest(self) -> int:
        return self.sequence_length if self.min_length is None else self.min_length



    @property
    def input_labels(self) -> tuple[str, ...]:
        return ("bit",)

    @property
    def output_labels(self) -> tuple[str, ...]:
        return ("next",)

    def required_slots(self) -> int:
        return self.contexts

    def _size_phrase(self) -> str:
        return f"{self.n}-grams ({self.contexts} contexts)"

    def at(self, difficulty: int) -> "NGrams":
        """Every sequence exactly `difficulty` bits long."""
        return dataclasses.replace(self, sequence_length=difficulty, min_length=None)

    def describe(self) -> str:
        return (f"dynamic {self.n}-grams: {span(self.shortest, self.sequence_length)}-bit sequences, "
                f"{self.contexts} Beta(1/2, 1/2) probabilities each, predict the next bit, I=1, O=1")

    def _sample(self, batch_size: int, rng: np.random.Generator):
        B, c = batch_size, self.context_bits
        L = randint(rng, self.shortest, self.sequence_length, (B,))  # [B] bits per sequence
        Lmax = int(L.max())
        # Beta(1/2, 1/2) is the arcsine law: sin^2(pi U / 2) for U uniform on [0, 1).
        table = np.sin(rng.random((B, self.contexts)) * (np.pi / 2)) ** 2  # [B, 2^c]
        uniform = rng.random((B, Lmax))
        bits = np.zeros((B, Lmax), np.int64)
        bits[:, :c] = uniform[:, :c] < 0.5  # the first context: coin flips
        ctx = (bits[:, :c][:, ::-1] << np.arange(c)).sum(1)  # context after bit c-1: newest bit lowest
        rows, full = np.arange(B), self.contexts - 1
        for t in range(c, Lmax):  # a loop over time, vectorised over the batch
            bits[:, t] = new = uniform[:, t] < table[rows, ctx]
            ctx = ((ctx << 1) & full) | new
        T = Lmax - 1
        t = np.arange(T)[None]
        inside = t < (L - 1)[:, None]  # [B, T]
        inputs = (bits[:, :T] * inside)[..., None]
        targets = (bits[:, 1:] * inside)[..., None]
        return inputs, targets, inside & (t >= c - 1), L - 1
    # ---- what the heads did ----------------------------------------------------------------
    # The paper's reading of its NTM (section 4.4, figure 15): when a context recurs, the read
    # head returns to the location it used for that context, and on the next step the write
    # head updates it (keeping counts of what followed each context).
    mechanisms = (
        Mechanism(
            "read_by_context", "read head addresses by context",
            "On the steps with a full context (t >= n-2; the context is the last n-1 bits, bit t "
            "included), the fraction where the slot the read head is on was last visited at the last "
            "earlier step with the same context (or, for a context not seen before, the slot is new): "
            "one slot per context scores 1; a head that stays on one slot scores only when the context "
            "repeats at once. The paper's algorithm: 1.", "mean", 0.9,
            "the read head addresses by the recent context on {value:.1%} of steps"),
        Mechanism(
            "write_by_context", "write head updates the context's slot",
            "The same for the write head one step later (step t+1 against the context of step t, "
            "whose outcome bit t+1 it can then count). The paper's algorithm: 1.", "mean", 0.9,
            "the write head addresses by the previous step's context on {value:.1%} of steps"),
    )

    def contexts_of(self, bits: np.ndarray) -> np.ndarray:
        """bits [T] 0/1 -> [T] int: sum_i bit[t - i] * 2^i, i < n-1 (bits before step 0 count as 0)."""
        bits = np.asarray(bits).astype(np.int64)
        ctx = np.zeros_like(bits)
        for i in range(self.context_bits):
            ctx[i:] += bits[: bits.size - i] << i
        return ctx

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        T, first = trace.inputs.shape[0], self.context_bits - 1
        if T <= first + 1:
            return {m.name: Reading(float("nan"), "too short for a full context") for m in self.mechanisms}
        ctx = self.contexts_of(trace.inputs[:, 0] > 0.5)
        out = {}
        for name, head, offset in (("read_by_context", trace.read, 0), ("write_by_context", trace.write, 1)):
            steps = np.arange(first + offset, T)
            slots = locations(head)[steps]
            hits = context_addressing(slots, ctx[steps - offset])
            used, seen = len(set(slots.tolist())), len(set(ctx[steps - offset].tolist()))
            kind = "read" if offset == 0 else "write"
            out[name] = Reading(float(hits.mean()), f"the {kind} head followed the context on {int(hits.sum())} of "
                                                    f"{hits.size} steps, over {used} slots for {seen} contexts")
        return out

    # ---- the optimum -----------------------------------------------------------------------
    def optimal_probabilities(self, batch: Batch) -> Tensor:
        """The Bayesian optimal P(next bit = 1) at every step: [B, T] float32, 0.5 on unscored steps.

        (N1 + 1/2) / (N0 + N1 + 1), counting what followed this step's context on earlier
        scored steps of the same sequence (the posterior mean under the Beta(1/2, 1/2) prior).
        """
        ctx = context_index(batch.inputs, self.context_bits)  # [B, T]
        scored = batch.mask > 0
        onehot = F.one_hot(ctx, self.contexts).to(torch.float32) * scored.unsqueeze(-1)  # [B, T, C]
        nxt = batch.targets[..., 0].to(torch.float32).unsqueeze(-1)
        ones = torch.cumsum(onehot * nxt, 1) - onehot * nxt  # counts before step t
        seen = torch.cumsum(onehot, 1) - onehot
        n1 = ones.gather(2, ctx.unsqueeze(-1))[..., 0]
        total = seen.gather(2, ctx.unsqueeze(-1))[..., 0]
        p = (n1 + 0.5) / (total + 1)
        return torch.where(scored, p, torch.full_like(p, 0.5))

    def episode_extras(self, batch: Batch, outputs: list[np.ndarray]) -> list[dict]:
        """Each episode also carries the optimum's predictions, [T, 1] (its measure: bits above them)."""
        extras = super().episode_extras(batch, outputs)
        optimum = self.optimal_probabilities(batch).float().cpu().numpy()  # [B, T]
        for b, (extra, out) in enumerate(zip(extras, outputs)):
            extra["optimum"] = optimum[b, : len(out), None]
        return extras

    def bits_per_prediction(self, logits: Tensor, batch: Batch) -> Tensor:
        """Mean cross-entropy in bits per scored prediction, per sequence: [B].
        logits [B, T, 1]; for the optimum pass torch.logit(optimal_probabilities(batch)).unsqueeze(-1)."""
        self._check_logits(logits, batch)
        bce = F.binary_cross_entropy_with_logits(logits, batch.targets.to(logits.dtype), reduction="none")
        mask = batch.mask.to(logits.dtype)
        return (bce[..., 0] * mask).sum(1) / mask.sum(1).clamp(min=1) / LN2

    def optimal_bits_per_prediction(self, batch: Batch) -> Tensor:
        """`bits_per_prediction` of the Bayesian optimum: [B], the floor a model can approach."""
        p = self.optimal_probabilities(batch).to(torch.float64)
        return self.bits_per_prediction(torch.logit(p).unsqueeze(-1), batch._replace(
            targets=batch.targets.to(torch.float64))).to(torch.float32)


def context_index(inputs: Tensor, context_bits: int) -> Tensor:
    """inputs [B, T, 1] bits -> [B, T] int64 sum_i bit[t - i] * 2^i, i < context_bits
    (bits before step 0 count as 0)."""
    bits = (inputs[..., 0] > 0.5).long()
    ctx = torch.zeros_like(bits)
    for i in range(context_bits):
        ctx[:, i:] += bits[:, : bits.shape[1] - i] << i
    return ctx
