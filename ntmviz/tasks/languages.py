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

What the stacks did (mechanisms, for the stack-augmented RNN only: models/stack_rnn.py). The
paper's account of what its model learned on a^n b^n: a stack pushes on every a and pops on
every b, so its depth is the count of a's not yet matched. Each language names the counter its
strings need first (`Language.counter`): the symbols that count up and those that count down,

    anbn, anbncn, anbncndn, anb2n    up on a, down on b        (the end of the b's: n of them)
    anbmcnm                          up on a and b, down on c  (the end of the c's: n + m)

and two mechanisms ask whether one stack is that counter: "pushes_then_pops" (its most likely
action is PUSH on every up step and POP on every down step while the count is above zero) and
"depth_tracks_count" (the places it holds equal the count after every counted step). The
count is ups minus downs so far, never below zero: on a^n b^2n it is zero from the n-th b on,
where a counter that has emptied may pop or wait (an empty stack stays empty) but holds
nothing. Later counters (b's counted down by c's on a^n b^n c^n, a second count of the a's for
the second half of a^n b^2n) are another stack's work and are not measured here.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from ..streams import stream_seed
from ..errors import ConfigError
from .base import Batch, Task, batch_of, check_int, check_range, randint, span
from .mechanism import NOT_APPLICABLE, Mechanism, Reading, Trace

SYMBOLS = "abcd"

# ---- what the stacks did ----------------------------------------------------------------------
# A stack-augmented RNN's arrays (models/stack_rnn.py, by their flat names in Trace.extra):
# "stack.action" [T, S, 3] each stack's distribution over (push, pop, no-op), and "memory"
# [T+1, N, S]: the stacks, a column each, before step 0 and after each step, top in slot 0, -1 empty.

STACK_RNN = ("stack_rnn",)
PUSH, POP = 0, 1  # indices in "stack.action" (models/stack_rnn.ACTIONS: push, pop, no-op)
# A place holds a value when above this: halfway between an empty place (-1, stack_rnn.EMPTY)
# and the smallest value a push puts there (0: pushed values are sigmoids, in 0..1).
HELD = -0.5

PUSHES_THEN_POPS = Mechanism(
    "pushes_then_pops", "a stack pushes the count up and pops it down",
    "Each stack alone, on the steps of the language's counter (a^n b^n: up on each a, down on each "
    "b; a^n b^m c^(n+m): up on a and b, down on c): the fraction of them where the stack's most "
    "likely action is PUSH on an up step, POP on a down step. The count is ups minus downs so far, "
    "never below zero; a down step at count zero (a^n b^2n's second n b's) is not scored. The "
    "episode's value is its best stack's; over many episodes one stack per model is reported. The "
    "counting algorithm: 1. Threshold 0.9: a few steps may go otherwise (a push or pop still "
    "undecided at the switch from one block to the next), while near-uniform actions, or a stack "
    "that pushes on every step, score about a third or a half.", "mean", 0.9,
    "the stack took the counter's action (push up, pop down) on {value:.1%} of the counted steps",
    per_head="stack", families=STACK_RNN)
DEPTH_TRACKS_COUNT = Mechanism(
    "depth_tracks_count", "a stack's depth is the count",
    "Each stack alone: after each step of a counted symbol (up or down, a down step at count zero "
    "included), whether the number of places the stack holds (values above -0.5, halfway between "
    "an empty place, -1, and a pushed value, 0..1) equals the count of ups minus downs so far; the "
    "fraction of those steps where it does. The episode's value is its best stack's. The counting "
    "algorithm: 1, its stack empty at the start of every string. Threshold 0.9: a few steps may be "
    "off (a push or pop taken by halves leaves a place near -0.5), while a stack that only grows "
    "or never moves matches the count on few steps.", "mean", 0.9,
    "the stack held as many values as the count on {value:.1%} of the counted steps",
    per_head="stack", families=STACK_RNN)


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

    typed_input = True  # strings of the language a person types: "aabb aaabbb"
    alphabet: ClassVar[int] = 2  # symbols a, b, ...
    pattern: ClassVar[str] = ""  # the language in words, "a^n b^n"
    counted_from: ClassVar[int] = 1  # the block whose first symbol fixes the rest of the string
    lowest_n: ClassVar[int] = 1  # the smallest size the language has
    # The counter a stack keeps first (module docstring): (symbols that count up, symbols that
    # count down). A stack of the counting algorithm pushes on each up symbol and pops on each
    # down symbol while the count is above zero, so its depth is the count.
    counter: ClassVar[tuple[str, str]] = ("a", "b")

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

    def size_of(self, runs: list[int]) -> int | None:
        """A string's run lengths (one per block, in the alphabet's order) -> its size n, or None
        when no string of the language has these runs."""
        raise NotImplementedError

    # ---- a typed input -----------------------------------------------------------------------
    @property
    def typed_hint(self) -> str:
        return f"Type strings of {self.pattern} apart by spaces, e.g. {self._example()}."

    def _example(self) -> str:
        return " ".join(self.text(self.at(max(self.lowest_n, k)).sample(1, seed=k)).split()[0] for k in (2, 3))

    def typed(self, text: str, seed: int = 0) -> tuple["Language", Batch]:
        """Strings of the language apart by white space -> (the task at the largest n typed, one
        item of those strings), scored as a sampled item is."""
        words = text.split()
        if not words:
            raise ConfigError(f"type at least one string of {self.pattern}, e.g. {self._example()}")
        letters = SYMBOLS[: self.alphabet]
        runs_of, sizes = [], []
        for word in words:
            stray = sorted(set(word) - set(letters))
            if stray:
                raise ConfigError(f"{word!r}: {self.pattern} is written with {', '.join(letters)} only, "
                                  f"not {', '.join(repr(c) for c in stray)}")
            runs = [(letter, len(list(group))) for letter, group in itertools.groupby(word)]
            n = self.size_of([k for _, k in runs]) if "".join(c for c, _ in runs) == letters else None
            if n is None or n < self.lowest_n:
                raise ConfigError(f"{word!r} is not a string of {self.pattern}")
            runs_of.append(runs)
            sizes.append(n)
        symbol = np.array([letters.index(c) for runs in runs_of for c, k in runs for _ in range(k)])  # [L]
        block = np.array([b for runs in runs_of for b, (_, k) in enumerate(runs) for _ in range(k)])  # [L]
        following = np.append(symbol[1:], 0)  # the last string is followed by the next one's a
        eye = np.eye(self.alphabet, dtype=np.float32)
        return self.at(max(sizes)), batch_of(eye[symbol][None], eye[following][None],
                                              (block >= self.counted_from)[None], np.array([len(symbol)]))

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

    # ---- what the stacks did (module docstring) ----------------------------------------------
    mechanisms = (PUSHES_THEN_POPS, DEPTH_TRACKS_COUNT)

    def counting(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """inputs [T, I] one-hot (a zero row: no symbol) -> the counter's steps: (counted [T]
        bool, the steps of an up or down symbol; expected [T] int, PUSH on an up step, POP on a
        down step at a count above zero, -1 elsewhere; count [T], ups minus downs after each
        step, never below zero)."""
        x = np.asarray(inputs)
        symbols = np.where(x.max(-1) > 0.5, x.argmax(-1), -1) if x.size else np.zeros(len(x), int)
        ups = [SYMBOLS.index(c) for c in self.counter[0]]
        downs = [SYMBOLS.index(c) for c in self.counter[1]]
        counted = np.zeros(len(x), bool)
        expected = np.full(len(x), -1)
        count = np.zeros(len(x), int)
        level = 0
        for t, s in enumerate(symbols.tolist()):
            if s in ups:
                counted[t], expected[t] = True, PUSH
                level += 1
            elif s in downs:
                counted[t] = True
                if level > 0:
                    expected[t] = POP
                    level -= 1
            count[t] = level
        return counted, expected, count

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        action, memory = trace.get("stack.action"), trace.get("memory")
        T = len(trace.inputs)
        if action is None:
            why = "the episode records no stack actions (the stack-augmented RNN's)"
            return {m.name: Reading(NOT_APPLICABLE, why) for m in self.mechanisms}
        counted, expected, count = self.counting(trace.inputs)
        if not counted.any() or action.shape[0] != T:
            why = (f"no {self.counter[0][0]}'s or {self.counter[1][0]}'s to count" if not counted.any() else
                   f"{action.shape[0]} steps of stack actions for {T} inputs")
            return {m.name: Reading(NOT_APPLICABLE, why) for m in self.mechanisms}
        return {"pushes_then_pops": self._pushes_then_pops(action, expected),
                "depth_tracks_count": self._depth_tracks_count(memory, action.shape[1], counted, count)}

    def _pushes_then_pops(self, action: np.ndarray, expected: np.ndarray) -> Reading:
        scored = expected >= 0
        if not scored.any():
            return Reading(NOT_APPLICABLE, "no step to push or pop")
        took = np.asarray(action).argmax(-1)[scored]  # [steps, S]
        want = expected[scored, None]
        hits = took == want  # [steps, S]
        heads = hits.mean(0)
        best = int(heads.argmax())
        up, down = self.counter
        pushes, pops = int(hits[want[:, 0] == PUSH, best].sum()), int(hits[want[:, 0] == POP, best].sum())
        per = f" (per stack: {', '.join(f'{h:.0%}' for h in heads)})" if len(heads) > 1 else ""
        note = (f"stack {best + 1} pushed on {pushes} of {int((want == PUSH).sum())} {'/'.join(up)}'s and popped "
                f"on {pops} of {int((want == POP).sum())} {'/'.join(down)}'s while the count was above zero{per}")
        return Reading(float(heads[best]), note, tuple(float(h) for h in heads))

    def _depth_tracks_count(self, memory: np.ndarray | None, stacks: int, counted: np.ndarray,
                            count: np.ndarray) -> Reading:
        T = len(counted)
        if memory is None or memory.ndim != 3 or memory.shape[0] != T + 1 or memory.shape[2] != stacks:
            return Reading(NOT_APPLICABLE, "the episode records no stacks as memory columns ([T+1, N, stacks])")
        depth = (np.asarray(memory)[1:] > HELD).sum(1)  # [T, S] places held after each step
        hits = depth[counted] == count[counted, None]  # [steps, S]
        heads = hits.mean(0)
        best = int(heads.argmax())
        per = f" (per stack: {', '.join(f'{h:.0%}' for h in heads)})" if len(heads) > 1 else ""
        note = (f"stack {best + 1} held as many values as the count after {int(hits[:, best].sum())} of "
                f"{len(hits)} counted steps{per}; the count reached {int(count.max())}, the stack "
                f"{int(depth[:, best].max())}")
        return Reading(float(heads[best]), note, tuple(float(h) for h in heads))

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

    def size_of(self, runs):
        return runs[0] if runs[0] == runs[1] else None

    def blocks(self, n, rng):
        return [(0, n), (1, n)]


@dataclass(frozen=True)
class AnBnCn(Language):
    """a^n b^n c^n."""

    name = "anbncn"
    pattern = "a^n b^n c^n"
    alphabet = 3

    def size_of(self, runs):
        return runs[0] if len(set(runs)) == 1 else None

    def blocks(self, n, rng):
        return [(0, n), (1, n), (2, n)]


@dataclass(frozen=True)
class AnBnCnDn(Language):
    """a^n b^n c^n d^n."""

    name = "anbncndn"
    pattern = "a^n b^n c^n d^n"
    alphabet = 4

    def size_of(self, runs):
        return runs[0] if len(set(runs)) == 1 else None

    def blocks(self, n, rng):
        return [(0, n), (1, n), (2, n), (3, n)]


@dataclass(frozen=True)
class AnB2n(Language):
    """a^n b^2n."""

    name = "anb2n"
    pattern = "a^n b^2n"

    def size_of(self, runs):
        return runs[0] if runs[1] == 2 * runs[0] else None

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
    counter = ("ab", "c")  # a's and b's pushed, counted down by the c's

    def size_of(self, runs):
        return runs[2] if runs[2] == runs[0] + runs[1] else None

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
           samples: int = 20, seed: int = 0, device: str | torch.device | None = None,
           stream: str = "test") -> Table2:
    """Score `predict` (inputs [B, T, I] -> logits [B, T, O], e.g. a model of one member) on
    `samples` items of `task.at(n)` for every n in `sizes` (the paper: n up to 60, training
    n < 20), drawn from `stream` (streams.py: held out from training). A string counts as right
    when every one of its predictable symbols is (the next string's a included), as the authors'
    evaluation counts them."""
    ns, per_symbol, per_string = [], [], []
    right = total = 0
    for n in sizes:
        batch = task.at(int(n)).sample(samples, seed=stream_seed(stream, seed, int(n)), device=device)
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
           "string_index", "string_scores", "PUSHES_THEN_POPS", "DEPTH_TRACKS_COUNT"]
