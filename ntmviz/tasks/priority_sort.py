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
from .mechanism import LAGS, Mechanism, Reading, Trace, first_step, locations, rank_correlation, slot_list, unwrap


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

    # ---- what the heads did ----------------------------------------------------------------
    # The paper's reading of its NTM (section 4.5, figure 17): the write location is set by the
    # priority (so the vectors land in memory sorted), and the read head then reads the slots
    # in order.
    mechanisms = (
        Mechanism(
            "priority_order", "write location follows priority",
            "Spearman's rank correlation, over the n input steps, between each input's priority and "
            "the slot it was written to (slots taken as offsets around their circular mean, so a run "
            "that wraps past slot 0 keeps its order). +1 or -1 (sorted either way) for the paper's "
            "mechanism; the threshold is on the absolute value.", "mean", 0.95,
            "write location is rank-correlated with priority at {value:+.3f} (mean over sequences)",
            two_sided=True),
        Mechanism(
            "priority_order_head", "one write head's location follows priority",
            "The rank correlation above, for each write head alone (its own largest slot at each "
            "input step). Over many sequences the model's head is the one whose mean is largest in "
            "size (one head for all sequences); one sequence on its own counts its best head. With "
            "several write heads the summed location above can mix a head that sorts with others "
            "that do other work. The paper's algorithm: +1 or -1.", "mean", 0.95,
            "one write head's location is rank-correlated with priority at {value:+.3f} (mean over sequences)",
            two_sided=True, per_head="write"),
        Mechanism(
            "distinct_slots", "each input gets its own slot",
            "Distinct write locations over the n input steps / n. The paper's algorithm: 1.", "mean", 0.95,
            "inputs get their own slot at a rate of {value:.3f} distinct slots per input"),
        Mechanism(
            "readout", "read head reads in priority order",
            "The fraction of the k output steps whose read (step n+1+i-lag for the i-th highest "
            "priority) is on the slot that input was written to. The paper's algorithm: 1.", "mean", 0.9,
            "the read head reads {value:.1%} of outputs from the slot of the input of that rank"),
        Mechanism(
            "readout_head", "one read head reads the sorting head's slots in order",
            "For each read head alone: the fraction of the k output steps whose read (its own largest "
            "slot at step n+1+i-lag for the i-th highest priority) is on the slot where the sorting "
            "write head (the one whose location follows priority most closely in that sequence) put "
            "that input. Over many sequences the model's head is the read head with the largest mean. "
            "The paper's algorithm: 1.", "mean", 0.9,
            "one read head reads {value:.1%} of outputs from the sorting write head's slot of the input of "
            "that rank", per_head="read"),
    )

    def _layout(self, trace: Trace) -> tuple[int, int] | None:
        """(n inputs, k outputs), or None without a delimiter."""
        n = first_step(trace.inputs[:, self.bits + 1] > 0.5)
        if not n:
            return None
        return n, min(self.outputs, n, trace.inputs.shape[0] - n - 1)

    def _ranked_slots(self, trace: Trace, n: int, k: int, write: np.ndarray | None = None) -> tuple[list[int], list[int]]:
        """(the output steps n+1 .. n+k, the write location of the input each should show), the
        location from `write` [T, H, N] (default: every write head, summed)."""
        order = np.argsort(-trace.inputs[:n, self.bits], kind="stable")[:k]
        return [n + 1 + i for i in range(k)], locations(trace.write if write is None else write)[order].tolist()

    def _readout_hits(self, trace: Trace, n: int, k: int, lag: int) -> int:
        steps, slots = self._ranked_slots(trace, n, k)
        reads = locations(trace.read)
        return sum(1 for t, s in zip(steps, slots) if reads[t - lag] == s)

    def playback_lag(self, trace: Trace) -> int | None:
        layout = self._layout(trace)
        if layout is None or layout[1] < 1:
            return None
        fits = [self._readout_hits(trace, *layout, lag) for lag in LAGS]
        return LAGS[int(np.argmax(fits))]

    @staticmethod
    def _best_head(heads: tuple[float, ...]) -> Reading:
        """Each write head's rank correlation -> the reading of the one largest in size."""
        if not heads or np.isnan(heads).all():
            return Reading(float("nan"), "no write head to rank", heads or None)
        best = int(np.nanargmax(np.abs(heads)))
        each = f" (per write head: {', '.join(f'{h:+.2f}' for h in heads)})" if len(heads) > 1 else ""
        return Reading(heads[best], f"write head {best + 1}'s location was rank-correlated with priority at "
                                    f"{heads[best]:+.3f}{each}", heads)

    def _head_readout(self, trace: Trace, orders: tuple[float, ...], n: int, k: int, lag: int) -> Reading:
        """Each read head's share of the k outputs read from the slot the sorting write head (the
        one of `orders`, each write head's rank correlation, largest in size) gave that input."""
        if np.isnan(orders).all():
            return Reading(float("nan"), "no write head to follow", None)
        writer = int(np.nanargmax(np.abs(orders)))
        steps, slots = self._ranked_slots(trace, n, k, trace.write[:, writer: writer + 1])
        reads = [t - lag for t in steps]
        shares = tuple(float(np.mean(locations(trace.read[:, r: r + 1])[reads] == slots))
                       for r in range(trace.read.shape[1]))
        best = int(np.argmax(shares))
        each = f" (per read head: {', '.join(f'{v:.0%}' for v in shares)})" if len(shares) > 1 else ""
        return Reading(shares[best], f"read head {best + 1} read {round(shares[best] * k)} of {k} outputs from the "
                                     f"slot write head {writer + 1}, the sorting head, gave the input of that "
                                     f"rank{each}", shares)

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        layout = self._layout(trace)
        if layout is None:
            return {m.name: Reading(float("nan"), "no delimiter after the inputs") for m in self.mechanisms}
        n, k = layout
        if lag is None:
            lag = self.playback_lag(trace)
        priority = trace.inputs[:n, self.bits]

        def order(write: np.ndarray) -> tuple[np.ndarray, float]:
            """write [T, H, N] -> (the n input steps' write locations, their rank correlation with priority)."""
            at = locations(write)[:n]
            return at, rank_correlation(priority, unwrap(at, trace.slots))

        slots, rho = order(trace.write)
        heads = tuple(order(trace.write[:, h: h + 1])[1] for h in range(trace.write.shape[1]))
        top = slots[np.argsort(-priority, kind="stable")]
        distinct = len(set(slots.tolist()))
        out = {
            "priority_order": Reading(rho, f"rank correlation {rho:+.3f} between priority and write location; "
                                           f"highest priority first, the inputs went to slots {slot_list(top)}"),
            "priority_order_head": self._best_head(heads),
            "distinct_slots": Reading(distinct / n, f"the {n} inputs went to {distinct} distinct slots"),
        }
        if k < 1 or lag is None:
            out["readout"] = out["readout_head"] = Reading(float("nan"), "no outputs to read")
        else:
            out["readout_head"] = self._head_readout(trace, heads, n, k, lag)
            hits = self._readout_hits(trace, n, k, lag)
            lead = " (it reads at step t what the output shows at step t+1)" if lag else ""
            out["readout"] = Reading(hits / k, f"the read head read {hits} of {k} outputs from the slot of the "
                                               f"input of that rank{lead}")
        return out
