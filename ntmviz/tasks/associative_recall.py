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
