"""Associative recall (paper section 4.3): read a list of items, then a query item; answer
with the item that followed the query in the list.

An item is `item_length` (paper: 3) random `bits`-wide (paper: 6) vectors. Each batch item
draws its number of items n from min_items..max_items (paper: 2-6); the query is one of
items 0..n-2 (never the last, which has no successor), uniformly. With k = item_length an
item uses T_b = (n + 2)(k + 1) steps:

    step t                      inputs [I = bits + 2]               targets [O = bits]   mask
    j(k+1)                      channel bits = 1 (item delimiter)   0                    0
    j(k+1)+1 .. j(k+1)+k        item j's vectors   (j = 0..n-1)     0                    0
    n(k+1)                      channel bits+1 = 1 (query delim)    0                    0
    n(k+1)+1 .. n(k+1)+k        the query item's vectors            0                    0
    n(k+1)+k+1                  channel bits+1 = 1 (query delim)    0                    0
    n(k+1)+k+2 .. (n+2)(k+1)-1  0                                   the next item        1

The paper's NTM wrote one compressed vector per item, so n items need n memory slots.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .base import Task, check_int, check_range, randint, span
from .mechanism import Mechanism, Reading, Trace, slot_list


@dataclass(frozen=True)
class AssociativeRecall(Task):
    """Associative recall: min_items..max_items items of item_length bits-wide vectors."""

    bits: int = 6
    item_length: int = 3
    min_items: int = 2
    max_items: int = 6

    name = "associative_recall"
    difficulty_name = "number of items"
    size_field = "max_items"
    eval_sizes = (3, 6, 9, 12)
    solved_below = 0.05
    extra_inputs = ("item", "query")

    def __post_init__(self) -> None:
        check_int("bits", self.bits)
        check_int("item_length", self.item_length)
        # Two items at least: the query must have a successor.
        check_range("associative recall", "min_items", self.min_items, "max_items", self.max_items, minimum=2)

    def required_slots(self) -> int:
        return self.max_items

    def _size_phrase(self) -> str:
        return f"associative recall with {self.max_items} items"

    def at(self, difficulty: int) -> "AssociativeRecall":
        """Every list exactly `difficulty` items long."""
        return dataclasses.replace(self, min_items=difficulty, max_items=difficulty)

    def describe(self) -> str:
        return (f"associative recall: {span(self.min_items, self.max_items)} items of "
                f"{self.item_length} {self.bits}-bit vectors, T = (n+2)({self.item_length}+1) steps, "
                f"I={self.input_size}, O={self.output_size}")

    def _sample(self, batch_size: int, rng: np.random.Generator):
        B, W, k = batch_size, self.bits, self.item_length
        n = randint(rng, self.min_items, self.max_items, (B,))  # [B]
        q = randint(rng, 0, n - 2, (B,))  # [B] the query item
        nmax = int(n.max())
        lengths = (n + 2) * (k + 1)
        T = int(lengths.max())
        vectors = rng.integers(0, 2, (B, nmax * k, W)).astype(np.float32)  # all items' vectors, flat
        t = np.arange(T)[None]  # [1, T]
        nc, qc = n[:, None], q[:, None]  # [B, 1]
        query_start = nc * (k + 1)  # the first query delimiter
        answer_start = query_start + k + 2

        # Which flat vector (item * k + row) each input and target step shows, and whether it shows one.
        in_list = (t < query_start) & (t % (k + 1) != 0)
        in_query = (t > query_start) & (t <= query_start + k)
        answering = (t >= answer_start) & (t < answer_start + k)
        list_src = (t // (k + 1)) * k + t % (k + 1) - 1
        query_src = qc * k + (t - query_start - 1)
        answer_src = (qc + 1) * k + (t - answer_start)
        in_src = np.where(in_list, list_src, np.where(in_query, query_src, 0))
        out_src = np.where(answering, answer_src, 0)

        def pick(src, keep):
            return np.take_along_axis(vectors, np.clip(src, 0, nmax * k - 1)[..., None], 1) * keep[..., None]

        inputs = np.zeros((B, T, W + 2), np.float32)
        inputs[:, :, :W] = pick(in_src, in_list | in_query)
        inputs[:, :, W] = (t < query_start) & (t % (k + 1) == 0)
        inputs[:, :, W + 1] = (t == query_start) | (t == query_start + k + 1)
        return inputs, pick(out_src, answering), answering, lengths

    # ---- what the heads did ----------------------------------------------------------------
    # The paper's algorithm (section 4.3): write one compressed vector per item to its own slot;
    # at the query, find the query item's slot by content, then shift one slot on and read the
    # item written just after it.
    mechanisms = (
        Mechanism(
            "lookup", "content lookup reads the successor",
            "Item j's writing is the write weight of its k vector steps and the delimiter that ends it; "
            "a slot's share for item j is item j's part of all the items' write weight on that slot. "
            "At the answer (the query's closing delimiter and the k answer steps) the read weight is "
            "averaged; the episode passes when at least half of it falls on what the successor of the "
            "query item wrote (read weight times the successor's share, summed over slots). A read head "
            "that reads the same slots whatever the query passes only when those slots happen to be the "
            "successor's. With several read heads the weight is their mean (each head's share is in the "
            "note). The paper's algorithm: every answer.", "rate", 0.9,
            "the read head fails to find the query's successor on {miss:.1%} of answers"),
        Mechanism(
            "lookup_head", "one read head reads the successor",
            "The lookup above, for each read head alone: an episode passes for a head when at least "
            "half of that head's read weight at the answer falls on the successor's writing. Over many "
            "episodes the model's lookup head is the one that passes most often (one head for all "
            "episodes); one episode on its own counts its best head. With several read heads the "
            "others may do other work, so this is the lookup as the paper's four-head model can show "
            "it. The paper's algorithm: every answer.", "rate", 0.9,
            "the lookup head fails to find the query's successor on {miss:.1%} of answers",
            per_head="read"),
        Mechanism(
            "item_slots", "each item gets its own slot",
            "Each item's main slot is the one it put the most write weight on; measured: distinct main "
            "slots / items. The paper's algorithm: 1.", "mean", 0.95,
            "items get their own slot at a rate of {value:.3f} distinct main slots per item"),
    )

    def _layout(self, trace: Trace) -> tuple[np.ndarray, int, int, int] | None:
        """(item delimiter steps [n], k, query start step, the query item q), or None."""
        x, W = trace.inputs, self.bits
        starts = np.flatnonzero(x[:, W] > 0.5)
        queries = np.flatnonzero(x[:, W + 1] > 0.5)
        k = self.item_length
        if len(starts) < 2 or len(queries) < 2:
            return None
        qs = int(queries[0])
        query = x[qs + 1: qs + 1 + k, :W] > 0.5
        for j, s in enumerate(starts[:-1]):
            if np.array_equal(x[s + 1: s + 1 + k, :W] > 0.5, query):
                return starts, k, qs, j
        return None

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        layout = self._layout(trace)
        if layout is None:
            return {m.name: Reading(float("nan"), "no list with a query item from it") for m in self.mechanisms}
        starts, k, qs, q = layout
        n = len(starts)
        written = np.stack([trace.write[s + 1: s + k + 2].sum((0, 1)) for s in starts])  # [n, N]
        total = written.sum(0)
        share = np.divide(written, total, out=np.zeros_like(written), where=total > 1e-6)  # [n, N]
        answer = qs + k + 1  # the closing query delimiter, then the k answer steps
        per_head = trace.read[answer: answer + k + 1].mean(0)  # [R, N]
        read = per_head.mean(0)  # [N]
        successor = per_head @ share[q + 1]  # [R]: each read head's weight on the successor's writing
        got = float(successor.mean())
        # with several read heads the lookup may sit in one of them: say which, beside the mean
        heads = f" (per read head: {', '.join(f'{float(h):.0%}' for h in successor)})" if len(successor) > 1 else ""
        main = written.argmax(1)  # [n]
        top = np.argsort(read)[::-1][:2]
        def owner(slot: int) -> str:
            return f"mostly item {int(share[:, slot].argmax())}" if total[slot] > 1e-6 else "no item wrote it"

        owners = ", ".join(f"slot {int(s)} ({owner(s)})" for s in top if read[s] >= 0.1)
        note = (f"the query was item {q}; {got:.0%} of what the read head read at the answer was written by "
                f"item {q + 1}, its successor{heads}" + (f"; it read {owners}" if owners else ""))
        distinct = len(set(main.tolist()))
        passed = tuple(1.0 if float(h) >= 0.5 else 0.0 for h in successor)
        best = int(successor.argmax())
        return {
            "lookup": Reading(1.0 if got >= 0.5 else 0.0, note),
            "lookup_head": Reading(max(passed), f"read head {best + 1} put {float(successor[best]):.0%} of its "
                                                f"weight at the answer on item {q + 1}'s writing", passed),
            "item_slots": Reading(distinct / n, f"the {n} items' main write slots were {slot_list(main)} "
                                                f"({distinct} distinct)"),
        }
