"""Counting languages (Joulin & Mikolov 2015, Table 2): predict the next symbol of a stream of
strings from a^n b^n, a^n b^n c^n, a^n b^n c^n d^n, a^n b^2n or a^n b^m c^(n+m).

    anbn       a^n b^n              n >= 1
    anbncn     a^n b^n c^n
    anbncndn   a^n b^n c^n d^n
    anb2n      a^n b^2n
    anbmcnm    a^n b^m c^(n+m)      n, m >= 1; its size is the count of c's, n + m >= 2

An item is `sequences` strings one after another (the paper trains on an unbroken stream, so a
model must find where one string ends and the next begins), each with its own n drawn from
min_n..max_n (the paper trains on n < 20; for anbmcnm the total n + m is drawn, then m
uniformly in 1..n+m-1). Symbols are one-hot over the language's alphabet (a, b, ...):

    step t        inputs [I = symbols]      targets [O = symbols]       mask
    0 .. L-1      symbol t                  symbol t + 1                1 where predictable

The last step's target is the first symbol of the string that would follow: always a.

Predictable steps (mask 1): those whose next symbol the strings so far determine. The a's of a
string never tell when the b's start (nor the b's of a^n b^m c^(n+m) when the c's start); once
the first symbol of the counted part arrives, the rest of the string is fixed, and so is the a
that begins the next one. So the scored steps are those whose input is

    anbn, anb2n            a b                    (n and 2n steps a string)
    anbncn, anbncndn       a b, c, (d)            (2n and 3n)
    anbmcnm                a c                    (n + m)

as the paper counts them ("only the predictable symbols", after the first b: the authors'
evaluation starts once a b follows an a, a c follows a b for a^n b^m c^(n+m)).

Loss: the base class's binary cross-entropy over the one-hot outputs (a sigmoid per symbol);
the measure is "answer_errors": a scored step is wrong when the most likely symbol is not the
next one (`wrong_bits`), so the training loop's bit errors count wrong predictions.
`table2` scores a model as the paper's Table 2 does, over n in a range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from .base import Batch, Task, check_int, check_range, randint, span

SYMBOLS = "abcd"


@dataclass(frozen=True)
class Language(Task):
    """What the five languages share: a string is blocks of one symbol each, whose lengths
    follow from n (and m); the steps from the first symbol of block `counted_from` on are
    predictable. Subclasses give `blocks`, `counted_from`, `pattern` and the alphabet size."""

    min_n: int = 1
    max_n: int = 19  # the paper trains on n < 20
    sequences: int = 3  # strings per item, one after another

    difficulty_name = "n"
    size_field = "max_n"
    eval_sizes = (20, 30, 40, 50, 60)  # the paper's Table 2 tests n up to 60
    solved_below = 0.01  # wrong predictions per item on the training range
    error_unit = "wrong predictions/seq"
    measure = "answer_errors"

    alphabet: ClassVar[int] = 2  # symbols a, b, ...
    pattern: ClassVar[str] = ""  # the language in words, "a^n b^n"
    counted_from: ClassVar[int] = 1  # the block whose first symbol fixes the rest of the string
    lowest_n: ClassVar[int] = 1  # the smallest size the language has

    def __post_init__(self) -> None:
        check_range(self.name, "min_n", self.min_n, "max_n", self.max_n, minimum=self.lowest_n)
        check_int("sequences", self.sequences)

    def blocks(self, n: np.ndarray, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
        """n [...] sizes -> the string's blocks in order: (symbol index, length [...])."""
        raise NotImplementedError

    # ---- sizes and text -------------------------------------------------------------------
    @property
    def input_labels(self) -> tuple[str, ...]:
        return tuple(SYMBOLS[: self.alphabet])

    @property
    def output_labels(self) -> tuple[str, ...]:
        return tuple(SYMBOLS[: self.alphabet])

    def required_slots(self) -> int:
        """The depth a stack needs to count the largest string: one push per a (per a or b
        for a^n b^m c^(n+m)), max_n."""
        return self.max_n

    def _size_phrase(self) -> str:
        return f"{self.pattern} with n up to {self.max_n}"

    def at(self, difficulty: int) -> "Language":
        """Every string of size n = `difficulty`."""
        return dataclasses.replace(self, min_n=difficulty, max_n=difficulty)

    def describe(self) -> str:
        return (f"{self.pattern}: predict the next symbol, {self.sequences} strings per item, "
                f"n {span(self.min_n, self.max_n)}, I={self.input_size}, O={self.output_size}")

    def text(self, batch: Batch, index: int = 0) -> str:
        """Item `index`'s symbols, strings apart: 'aabb aaabbb ab'."""
        n = int(batch.lengths[index])
        symbols = batch.inputs[index, :n].argmax(-1).tolist()
        out = []
        for t, s in enumerate(symbols):
            if t and s == 0 and symbols[t - 1] != 0:
                out.append(" ")
            out.append(SYMBOLS[s])
        return "".join(out)

    # ---- sampling ----------------------------------------------------------------------------
    def _sample(self, batch_size: int, rng: np.random.Generator):
        B, A = batch_size, self.alphabet
        n = randint(rng, self.min_n, self.max_n, (B, self.sequences))  # [B, strings]
        parts = self.blocks(n, rng)  # each (symbol, lengths [B, strings])
        lengths = np.stack([length for _, length in parts], -1).reshape(B, -1)  # [B, strings * blocks]
        symbols = np.tile([s for s, _ in parts], self.sequences)  # [strings * blocks]
        ends = np.cumsum(lengths, 1)  # [B, strings * blocks]
        L = ends[:, -1]  # [B] steps of each item
        T = int(L.max())
        t = np.arange(T)
        block = (t[None, None] >= ends[:, :, None]).sum(1)  # [B, T] the block each step is in
        inside = t[None] < L[:, None]  # [B, T]
        block = np.minimum(block, lengths.shape[1] - 1)
        symbol = np.where(inside, symbols[block], 0)  # [B, T]
        following = np.concatenate([symbol[:, 1:], np.zeros((B, 1), np.int64)], 1)
        following = np.where(t[None] == L[:, None] - 1, 0, following)  # the next string's a
        eye = np.eye(A, dtype=np.float32)
        inputs = eye[symbol] * inside[..., None]
        targets = eye[following] * inside[..., None]
        mask = inside & (block % len(parts) >= self.counted_from)
        return inputs, targets, mask, L

    # ---- scoring -----------------------------------------------------------------------------
    def wrong_bits(self, logits: Tensor, batch: Batch) -> Tensor:
        """Wrong predictions at each step, scored or not: [B, T] float32, 1 where the most likely
        symbol is not the next one."""
        self._check_logits(logits, batch)
        return (logits.argmax(-1) != batch.targets.argmax(-1)).to(torch.float32)


@dataclass(frozen=True)
class AnBn(Language):
    """a^n b^n."""

    name = "anbn"
    pattern = "a^n b^n"

    def blocks(self, n, rng):
        return [(0, n), (1, n)]


@dataclass(frozen=True)
class AnBnCn(Language):
    """a^n b^n c^n."""

    name = "anbncn"
    pattern = "a^n b^n c^n"
    alphabet = 3

    def blocks(self, n, rng):
        return [(0, n), (1, n), (2, n)]


@dataclass(frozen=True)
class AnBnCnDn(Language):
    """a^n b^n c^n d^n."""

    name = "anbncndn"
    pattern = "a^n b^n c^n d^n"
    alphabet = 4

    def blocks(self, n, rng):
        return [(0, n), (1, n), (2, n), (3, n)]


@dataclass(frozen=True)
class AnB2n(Language):
    """a^n b^2n."""

    name = "anb2n"
    pattern = "a^n b^2n"

    def blocks(self, n, rng):
        return [(0, n), (1, 2 * n)]


@dataclass(frozen=True)
class AnBmCnm(Language):
    """a^n b^m c^(n+m): its size is the count of c's, n + m (min_n..max_n, at least 2); m is
    uniform in 1..n+m-1, so both n and m are at least 1."""

    min_n: int = 2

    name = "anbmcnm"
    difficulty_name = "n + m"
    pattern = "a^n b^m c^(n+m)"
    alphabet = 3
    counted_from = 2
    lowest_n = 2

    def blocks(self, n, rng):
        m = randint(rng, 1, n - 1, n.shape)
        return [(0, n - m), (1, m), (2, n)]


LANGUAGES: tuple[type[Language], ...] = (AnBn, AnBnCn, AnBnCnDn, AnB2n, AnBmCnm)


# ---- the paper's Table 2 -----------------------------------------------------------------------

class Table2(NamedTuple):
    """A model's predictions on strings of each n (Joulin & Mikolov 2015, Table 2)."""

    n: tuple[int, ...]  # the sizes tested
    symbols: tuple[float, ...]  # per n: the fraction of predictable symbols predicted right
    strings: tuple[float, ...]  # per n: the fraction of strings with every predictable symbol right
    symbol_accuracy: float  # over every n: the fraction of predictable symbols predicted right
    solved: float  # the fraction of n whose strings were all predicted right (the paper's figure)


def string_index(inputs: Tensor) -> Tensor:
    """inputs [B, T, I] one-hot (padding zero) -> [B, T] int64, the string each step is in:
    a string starts at an a that follows another symbol (or at step 0)."""
    symbol = inputs.argmax(-1)
    is_a = symbol == 0
    starts = is_a & torch.cat([torch.ones_like(is_a[:, :1]), ~is_a[:, :-1]], 1)
    return starts.long().cumsum(1) - 1


def table2(predict: Callable[[Tensor], Tensor], task: Language, sizes: Sequence[int] = range(2, 61),
           samples: int = 20, seed: int = 0, device: str | torch.device | None = None) -> Table2:
    """Score `predict` (inputs [B, T, I] -> logits [B, T, O], e.g. a model of one member) on
    `samples` items of `task.at(n)` for every n in `sizes` (the paper: n up to 60, training
    n < 20). A string counts as right when every one of its predictable symbols is (the next
    string's a included), as the authors' evaluation counts them."""
    ns, per_symbol, per_string = [], [], []
    right = total = 0
    for n in sizes:
        batch = task.at(int(n)).sample(samples, seed=seed + int(n), device=device)
        with torch.no_grad():
            logits = predict(batch.inputs)
        correct, scored = string_scores(logits, batch)
        right += int(correct.sum())
        total += int(scored.sum())
        ns.append(int(n))
        per_symbol.append(int(correct.sum()) / int(scored.sum()))
        per_string.append(float((correct == scored)[scored > 0].float().mean()))
    solved = sum(s == 1.0 for s in per_string) / len(ns)
    return Table2(tuple(ns), tuple(per_symbol), tuple(per_string), right / total, solved)


def string_scores(logits: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
    """logits [B, T, O] -> (right predictions, scored steps) per string: [B, strings] each."""
    strings = string_index(batch.inputs)  # [B, T]
    right = ((logits.argmax(-1) == batch.targets.argmax(-1)) & (batch.mask > 0)).float()
    size = (batch.inputs.shape[0], int(strings.max()) + 1)
    correct = torch.zeros(size, device=logits.device).scatter_add_(1, strings, right)
    scored = torch.zeros(size, device=logits.device).scatter_add_(1, strings, batch.mask.float())
    return correct.cpu(), scored.cpu()


__all__ = ["Language", "AnBn", "AnBnCn", "AnBnCnDn", "AnB2n", "AnBmCnm", "LANGUAGES", "Table2", "table2",
           "string_index", "string_scores"]
