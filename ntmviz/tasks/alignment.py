"""Token transductions whose right alignment is known, for encoder-decoders with attention
(Bahdanau, Cho & Bengio 2015; models/seq2seq.py): symbol reversal and date normalisation.

    symbol_reversal   c a d b            ->  b d a c        output j copies input L-1-j
    dates             march 3rd, 1999    ->  1999-03-03     each output character copies the
                                                            year, month or day of the input

Tokens are one-hot vectors; a sequence is laid out as copy's (copy.py), so every model of the
project reads it, and its output phase is scored:

    step t          inputs [I = V_in + 1]                  targets [O = V_out]          mask
    0 .. L-1        input token t, one-hot                 0                            0
    L               delimiter: channel V_in = 1            0                            0
    L+1 .. L+M      0                                      output token t-L-1, one-hot  1

T_b = L + 1 + M. A step's outputs are a distribution over the output tokens: the loss is the
cross-entropy of the softmax at the scored steps, a sequence's errors (`bit_errors`, reported
as token errors) the scored steps whose most likely token is wrong; a sequence is right when it
has none (Score.exact: the whole-sequence accuracy).

What the heads did: each task knows which input positions each output step copies
(`sources`), found again from the input tokens alone (for dates by parsing the text, as a
typed date is parsed), and measures the fraction of those output steps whose attention peak
(the largest weight of the reading heads) sits on one of them.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import re
from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..streams import stream_seed
from .base import Batch, Task, batch_of, check_int, check_range, randint, span
from .mechanism import NOT_APPLICABLE, Mechanism, Reading, Trace, first_step

SPACE = "␣"  # how a space token is labelled (a label " " would show nothing)

ALIGNED = Mechanism(
    "aligned", "the attention peaks on the input the output copies",
    "Of the output steps that copy from the input (reversal: every output, from the mirrored "
    "position; dates: every digit the input writes, from its year, month or day), the "
    "fraction whose attention peak (the input position with the most weight) is one of the "
    "positions it copies from; the mean over sequences. A model that reads what it writes: 1.",
    "mean", 0.95, "the attention peaks on the copied input on {value:.1%} of output steps (mean over sequences)",
    families=("seq2seq",))


def label(token: str) -> str:
    """A token as a label: a space as SPACE."""
    return SPACE if token == " " else token


@dataclass(frozen=True)
class Transduction(Task):
    """What the token transductions share: the layout, the scoring, the text, the alignment.
    Subclasses give their tokens, their pairs and how an input's outputs align."""

    name = "transduction"
    measure = "answer_errors"
    error_unit = "token errors/seq"
    one_hot_outputs = True  # scored as one class of O per step (base.py)
    solved_below = 0.01
    typed_input = True
    mechanisms = (ALIGNED,)
    joiner: ClassVar[str] = ""  # between tokens when a sequence is written as text

    # ---- tokens ----------------------------------------------------------------------------
    @property
    def input_tokens(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def output_tokens(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def input_labels(self) -> tuple[str, ...]:
        return tuple(label(t) for t in self.input_tokens) + ("delim",)

    @property
    def output_labels(self) -> tuple[str, ...]:
        return tuple(label(t) for t in self.output_tokens)

    def _ids(self, tokens, vocabulary: tuple[str, ...]) -> list[int]:
        index = {t: i for i, t in enumerate(vocabulary)}
        return [index[t] for t in tokens]

    # ---- what subclasses give ----------------------------------------------------------------
    def _pairs(self, batch_size: int, rng: np.random.Generator) -> list[tuple[list[str], list[str]]]:
        """batch_size (input tokens, output tokens) pairs."""
        raise NotImplementedError

    def parse(self, text: str) -> tuple[list[str], list[str]]:
        """What a person typed -> (input tokens, output tokens); ConfigError in the user's terms."""
        raise NotImplementedError

    def sources(self, tokens: list[str]) -> list[tuple[int, ...]]:
        """An input's tokens -> for each output step, the input positions it copies (empty: it
        copies none, e.g. a date's '-'). ConfigError when the input is not one of the task's."""
        raise NotImplementedError

    # ---- sampling --------------------------------------------------------------------------
    def arrays(self, pairs: list[tuple[list[str], list[str]]]) -> tuple[np.ndarray, ...]:
        """(inputs [B, T, I], targets [B, T, O], mask [B, T], lengths [B]) of these pairs."""
        B, V = len(pairs), len(self.input_tokens)
        lengths = np.asarray([len(x) + 1 + len(y) for x, y in pairs], np.int64)
        T = int(lengths.max())
        inputs = np.zeros((B, T, self.input_size), np.float32)
        targets = np.zeros((B, T, self.output_size), np.float32)
        mask = np.zeros((B, T), np.float32)
        for b, (x, y) in enumerate(pairs):
            L = len(x)
            inputs[b, np.arange(L), self._ids(x, self.input_tokens)] = 1
            inputs[b, L, V] = 1
            steps = L + 1 + np.arange(len(y))
            targets[b, steps, self._ids(y, self.output_tokens)] = 1
            mask[b, steps] = 1
        return inputs, targets, mask, lengths

    def _sample(self, batch_size: int, rng: np.random.Generator):
        return self.arrays(self._pairs(batch_size, rng))

    def typed_batch(self, text: str, seed: int = 0) -> Batch:
        """The batch of one that `text` is (parse), with its right output as targets."""
        return batch_of(*self.arrays([self.parse(text)]))

    # ---- text ------------------------------------------------------------------------------
    def input_of(self, inputs: np.ndarray) -> list[str]:
        """One item's inputs [T, I] -> its input tokens (the steps before the delimiter)."""
        inputs = np.asarray(inputs)
        L = first_step(inputs[:, -1] > 0.5)
        L = inputs.shape[0] if L is None else L
        return [self.input_tokens[int(i)] for i in inputs[:L, :-1].argmax(-1)]

    def text(self, tokens) -> str:
        return self.joiner.join(tokens)

    def item_text(self, batch: Batch, index: int, outputs: Tensor | np.ndarray | None = None) -> dict[str, str]:
        """{"input", "target"[, "model"]} of item `index` as text; outputs [T, O] or [B, T, O]."""
        n = int(batch.lengths[index])
        x = batch.inputs[index, :n].detach().cpu().numpy()
        scored = batch.mask[index, :n].detach().cpu().numpy() > 0
        y = batch.targets[index, :n].detach().cpu().numpy()[scored].argmax(-1)
        out = {"input": self.text(self.input_of(x)), "target": self.text(self.output_tokens[i] for i in y)}
        if outputs is not None:
            o = outputs[index] if outputs.ndim == 3 else outputs
            o = o.detach().cpu().numpy() if isinstance(o, Tensor) else np.asarray(o)
            out["model"] = self.text(self.output_tokens[i] for i in o[:n][scored].argmax(-1))
        return out

    def render(self, batch: Batch, index: int = 0, outputs: Tensor | None = None) -> str:
        t = self.item_text(batch, index, outputs)
        lines = [self.describe(), f"{t['input']} -> {t['target']}"]
        if "model" in t:
            lines.append(f"model: {t['model']}")
        return "\n".join(lines)

    def episode_extras(self, batch: Batch, outputs: list[np.ndarray]) -> list[dict]:
        """The input tokens name the slots (an encoder's states, one per token); the input, the
        right output and the model's go into the metadata as text."""
        extras = []
        for index, out in enumerate(outputs):
            n = int(batch.lengths[index])
            tokens = self.input_of(batch.inputs[index, :n].detach().cpu().numpy())
            text = self.item_text(batch, index, np.asarray(out))
            extras.append({"slot_labels": [label(t) for t in tokens],
                           "meta": {"input_labels": list(self.input_labels), "output_labels": list(self.output_labels),
                                    "input_text": text["input"], "target_text": text["target"],
                                    "model_text": text["model"]}})
        return extras

    # ---- what the heads did ------------------------------------------------------------------
    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        """trace.read [T, H, N] the attention (zero off the output phase), trace.inputs [T, I]."""
        inputs = np.asarray(trace.inputs)
        L = first_step(inputs[:, -1] > 0.5)
        if not L:
            return {"aligned": Reading(NOT_APPLICABLE, "no delimiter, or no input before it")}
        try:
            sources = self.sources(self.input_of(inputs))
        except ConfigError as exc:
            return {"aligned": Reading(NOT_APPLICABLE, f"the input is not one of this task's: {exc}")}
        peaks = np.asarray(trace.read).sum(1).argmax(-1)  # [T]
        steps = [(L + 1 + j, src) for j, src in enumerate(sources) if src and L + 1 + j < len(peaks)]
        if not steps:
            return {"aligned": Reading(NOT_APPLICABLE, "no output step copies from the input")}
        missed = [t - L - 1 for t, src in steps if int(peaks[t]) not in src]
        hits = len(steps) - len(missed)
        note = f"the attention peaked on the copied input on {hits} of {len(steps)} output steps"
        if missed:
            note += f" (missed outputs {', '.join(map(str, missed[:8]))}{', ...' if len(missed) > 8 else ''})"
        return {"aligned": Reading(hits / len(steps), note)}


# ---- symbol reversal ------------------------------------------------------------------------------

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class SymbolReversal(Transduction):
    """Reversal of min_length..max_length symbols drawn from `symbols` letters (a, b, c, ...)."""

    symbols: int = 8
    min_length: int = 4
    max_length: int = 16

    name = "symbol_reversal"
    difficulty_name = "sequence length"
    size_field = "max_length"
    eval_sizes = (16, 24, 32)
    joiner = " "
    typed_hint = "Type symbols apart by spaces, e.g. c a d b e."
    example = "c a d b e"

    def __post_init__(self) -> None:
        check_int("symbols", self.symbols, minimum=2)
        if self.symbols > len(LETTERS):
            raise ConfigError(f"symbols must be at most {len(LETTERS)} (one letter each), got {self.symbols}")
        check_range("symbol reversal", "min_length", self.min_length, "max_length", self.max_length)

    @property
    def input_tokens(self) -> tuple[str, ...]:
        return tuple(LETTERS[: self.symbols])

    @property
    def output_tokens(self) -> tuple[str, ...]:
        return self.input_tokens

    def required_slots(self) -> int:
        return self.max_length

    def _size_phrase(self) -> str:
        return f"symbol reversal length {self.max_length}"

    def at(self, difficulty: int) -> "SymbolReversal":
        """Every item `difficulty` symbols long."""
        return dataclasses.replace(self, min_length=difficulty, max_length=difficulty)

    def describe(self) -> str:
        return (f"symbol reversal: {self.symbols} symbols, length {span(self.min_length, self.max_length)}, "
                f"written back last first")

    def _pairs(self, batch_size, rng):
        lengths = randint(rng, self.min_length, self.max_length, (batch_size,))
        pairs = []
        for L in lengths:
            x = [self.input_tokens[i] for i in rng.integers(0, self.symbols, int(L))]
            pairs.append((x, x[::-1]))
        return pairs

    def parse(self, text: str) -> tuple[list[str], list[str]]:
        """'c a d b', 'c,a,d,b' or 'cadb' -> the symbols and their reversal."""
        tokens = [t for t in re.split(r"[\s,]+", text.strip().lower()) if t]
        if len(tokens) == 1:
            tokens = list(tokens[0])
        if not tokens:
            raise ConfigError(f"type some symbols ({self.input_tokens[0]} to {self.input_tokens[-1]}), e.g. "
                              f"{self.example}")
        bad = [t for t in tokens if t not in self.input_tokens]
        if bad:
            raise ConfigError(f"{bad[0]!r} is not a symbol of this task: it uses the letters "
                              f"{self.input_tokens[0]} to {self.input_tokens[-1]}, separated by spaces")
        return tokens, tokens[::-1]

    def typed(self, text: str, seed: int = 0) -> tuple["SymbolReversal", Batch]:
        """The task at the typed length (a memory must hold it), and the batch of one."""
        tokens, _ = self.parse(text)
        return self.at(len(tokens)), self.typed_batch(text, seed)

    def sources(self, tokens: list[str]) -> list[tuple[int, ...]]:
        L = len(tokens)
        return [(L - 1 - j,) for j in range(L)]


# ---- dates --------------------------------------------------------------------------------------

MONTHS = tuple(calendar.month_name[m].lower() for m in range(1, 13))
ABBREVIATIONS = {**{m[:3]: i + 1 for i, m in enumerate(MONTHS)}, "sept": 9}
DATE_CHARACTERS = tuple(" ,-./0123456789" + LETTERS)
OUTPUT_CHARACTERS = tuple("0123456789-")


def ordinal(day: int) -> str:
    """3 -> '3rd', 11 -> '11th', 22 -> '22nd'."""
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# The formats a date is written in: each a list of (text, field) pieces, field "" for glue.
FORMATS: tuple[tuple[str, object], ...] = (
    ("d month yyyy", lambda d: [(str(d.day), "day"), (" ", ""), (MONTHS[d.month - 1], "month"), (" ", ""),
                                (str(d.year), "year")]),
    ("dd/mm/yy", lambda d: [(f"{d.day:02d}", "day"), ("/", ""), (f"{d.month:02d}", "month"), ("/", ""),
                            (f"{d.year % 100:02d}", "year")]),
    ("month dth, yyyy", lambda d: [(MONTHS[d.month - 1], "month"), (" ", ""), (ordinal(d.day), "day"), (", ", ""),
                                   (str(d.year), "year")]),
    ("d mon yyyy", lambda d: [(str(d.day), "day"), (" ", ""), (MONTHS[d.month - 1][:3], "month"), (" ", ""),
                              (str(d.year), "year")]),
    ("dd.mm.yyyy", lambda d: [(f"{d.day:02d}", "day"), (".", ""), (f"{d.month:02d}", "month"), (".", ""),
                              (str(d.year), "year")]),
    ("yyyy-mm-dd", lambda d: [(str(d.year), "year"), ("-", ""), (f"{d.month:02d}", "month"), ("-", ""),
                              (f"{d.day:02d}", "day")]),
    ("mon d, yyyy", lambda d: [(MONTHS[d.month - 1][:3], "month"), (" ", ""), (str(d.day), "day"), (", ", ""),
                               (str(d.year), "year")]),
)
# What `parse_date` reads: a day, a month (a name, its first three letters, "sept", or a number)
# and a year (four digits, or two within the task's years), in these orders.
_DAY = r"(?P<day>\d{1,2}(?:st|nd|rd|th)?)"  # the day with its suffix (the token the output copies)
_PATTERNS = (
    re.compile(rf"^{_DAY} (?P<month>[a-z]+),? (?P<year>\d{{4}}|\d{{2}})$"),
    re.compile(rf"^(?P<month>[a-z]+) {_DAY},? (?P<year>\d{{4}}|\d{{2}})$"),
    re.compile(r"^(?P<day>\d{1,2})(?P<sep>[/.])(?P<month>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})$"),
    re.compile(r"^(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})$"),
)


def write_date(date: datetime.date, form: int) -> tuple[str, dict[str, tuple[int, int]]]:
    """A date in format `form` (an index into FORMATS) -> (text, {field: (start, end)})."""
    text, spans = "", {}
    for piece, field in FORMATS[form][1](date):
        if field:
            spans[field] = (len(text), len(text) + len(piece))
        text += piece
    return text, spans


def _longest_date() -> int:
    return max(len(write_date(datetime.date(2000, 9, 30), f)[0]) for f in range(len(FORMATS)))


@dataclass(frozen=True)
class Dates(Transduction):
    """Dates between min_year and max_year, each written in one of FORMATS (all of them, or only
    format number `format`), to be rewritten as yyyy-mm-dd. Two-digit years stand for the year
    of the range that ends in them, so the range spans at most 100 years; dd/mm/yy puts the day
    first."""

    min_year: int = 1950
    max_year: int = 2049
    format: int = 0  # 0: every format; k: only FORMATS[k - 1]

    name = "dates"
    difficulty_name = "format"
    size_field = ""  # no size to grow: a date is as long as its format writes it (`at(k)`: format k)
    typed_hint = "Type a date as you would write it, e.g. march 3rd, 1999 or 03/03/99."
    example = "march 3rd, 1999"

    def __post_init__(self) -> None:
        check_range("dates", "min_year", self.min_year, "max_year", self.max_year)
        if self.max_year - self.min_year >= 100:
            raise ConfigError(f"dates: min_year {self.min_year} to max_year {self.max_year} spans more than 100 "
                              f"years, so a two-digit year would not name one year")
        if self.max_year > 9999:
            raise ConfigError(f"dates: max_year must have four digits at most, got {self.max_year}")
        check_int("format", self.format, minimum=0)
        if self.format > len(FORMATS):
            raise ConfigError(f"format must be 0 (all) or 1 to {len(FORMATS)}, got {self.format}")

    @property
    def input_tokens(self) -> tuple[str, ...]:
        return DATE_CHARACTERS

    @property
    def output_tokens(self) -> tuple[str, ...]:
        return OUTPUT_CHARACTERS

    @property
    def formats(self) -> list[int]:
        """The indices into FORMATS this task writes dates in."""
        return list(range(len(FORMATS))) if self.format == 0 else [self.format - 1]

    def required_slots(self) -> int:
        return _longest_date()

    def at(self, difficulty: int) -> "Dates":
        """Every date in format number `difficulty` (0: all of them)."""
        return dataclasses.replace(self, format=difficulty)

    def eval_variants(self) -> list[tuple[str, "Task"]]:
        """Each format on its own."""
        return [(FORMATS[k][0], self.at(k + 1)) for k in range(len(FORMATS))]

    def describe(self) -> str:
        which = "every format" if self.format == 0 else f"format {FORMATS[self.format - 1][0]}"
        return f"dates: {span(self.min_year, self.max_year)}, {which}, rewritten as yyyy-mm-dd"

    def _pairs(self, batch_size, rng):
        first = datetime.date(self.min_year, 1, 1).toordinal()
        last = datetime.date(self.max_year, 12, 31).toordinal()
        days = randint(rng, first, last, (batch_size,))
        forms = np.asarray(self.formats)[rng.integers(0, len(self.formats), batch_size)]
        pairs = []
        for day, form in zip(days, forms):
            date = datetime.date.fromordinal(int(day))
            pairs.append((list(write_date(date, int(form))[0]), list(date.isoformat())))
        return pairs

    # ---- reading a date -----------------------------------------------------------------------
    def parse_date(self, text: str) -> tuple[str, datetime.date, dict[str, tuple[int, int]]]:
        """A date as a person writes it -> (the text as the model reads it: lower case, single
        spaces; the date; {field: (start, end)} in that text). ConfigError, in the user's terms,
        for text that is not a date of this task."""
        written = " ".join(str(text).lower().split())
        if not written:
            raise ConfigError(f"type a date, e.g. {self.example}")
        bad = sorted({c for c in written if c not in DATE_CHARACTERS})
        if bad:
            raise ConfigError(f"a date here uses letters, digits, spaces and , - . / only, not {' '.join(bad)}")
        match = next((m for m in (p.match(written) for p in _PATTERNS) if m), None)
        if match is None:
            raise ConfigError(f"{written!r} is not a date written as one of: "
                              f"{'; '.join(name for name, _ in FORMATS)}")
        day, month, year = (match.group(k) for k in ("day", "month", "year"))
        day = int(day.rstrip("stndrh"))
        if month.isdigit():
            number = int(month)
        else:
            number = MONTHS.index(month) + 1 if month in MONTHS else ABBREVIATIONS.get(month)
            if number is None:
                raise ConfigError(f"{month!r} is not a month")
        full = int(year)
        if len(year) == 2:
            full = next((y for y in range(self.min_year, self.max_year + 1) if y % 100 == full), -1)
            if full < 0:
                raise ConfigError(f"'{year}' names no year between {self.min_year} and {self.max_year}")
        if not self.min_year <= full <= self.max_year:
            raise ConfigError(f"{full} is outside this task's years, {self.min_year} to {self.max_year}")
        if not 1 <= number <= 12:
            raise ConfigError(f"{written!r} is not a date: there is no month {number}")
        days = calendar.monthrange(full, number)[1]
        if not 1 <= day <= days:
            raise ConfigError(f"{written!r} is not a date: {MONTHS[number - 1]} {full} has {days} days")
        return written, datetime.date(full, number, day), {k: match.span(k) for k in ("day", "month", "year")}

    def parse(self, text: str) -> tuple[list[str], list[str]]:
        written, date, _ = self.parse_date(text)
        return list(written), list(date.isoformat())

    def sources(self, tokens: list[str]) -> list[tuple[int, ...]]:
        """Each output character's field as the input writes it (all of its characters: a day's
        suffix, a month's name). A digit the input does not write copies nothing: the century of
        a two-digit year, the leading zero of a one-digit day or month."""
        text = "".join(tokens)
        _, _, spans = self.parse_date(text)
        out: list[tuple[int, ...]] = []
        for field, width in (("year", 4), ("", 1), ("month", 2), ("", 1), ("day", 2)):
            if not field:
                out.append(())
                continue
            start, end = spans[field]
            written = text[start:end].rstrip("stndrh")  # the digits of a number (a name: none)
            unwritten = width - len(written) if written.isdigit() else 0
            out += [()] * unwritten + [tuple(range(start, end))] * (width - unwritten)
        return out


# ---- by input length: attention against none (the paper's Figure 2) --------------------------------

class LengthRow(NamedTuple):
    """One input length: each model's whole-sequence accuracy and token errors on the same sequences."""

    length: int  # L, input tokens
    samples: int  # sequences of that length
    exact: dict[str, float]  # model -> fraction of sequences without a wrong token
    intervals: dict[str, tuple[float, float]]  # its 95% Wilson interval
    token_errors: dict[str, float]  # model -> wrong tokens per sequence
    token_rate: dict[str, float]  # model -> wrong tokens per output token


def by_length(predicts: dict[str, Callable[[Tensor], Tensor]], task: Transduction,
              lengths: Sequence[int] | None = None, *, samples: int = 200, seed: int = 0, stream: str = "test",
              batch_size: int = 100) -> list[LengthRow]:
    """Score every model (name -> inputs [B, T, I] -> logits [B, T, O], e.g. a checkpoint's
    model) on the same `stream` sequences, grouped by input length: `samples` sequences of
    `task.at(L)` for each L in `lengths`, or (None) `samples` of `task` itself, grouped by the
    lengths they happen to have (dates: by format and month name)."""
    from ..intervals import wilson_interval
    from ..streams import check_request

    check_request(stream, samples)
    variants = [(int(L), task.at(int(L))) for L in lengths] if lengths else [(0, task)]
    per_length: dict[int, dict[str, list]] = {}
    for key, variant in variants:
        done, index = 0, 0
        while done < samples:
            b = min(batch_size, samples - done)
            batch = variant.sample(b, seed=stream_seed(stream, seed, key * 100_003 + index))
            L = batch.inputs[..., -1].argmax(-1)  # the delimiter's step: the input's length
            outputs = batch.mask.sum(-1)
            for name, predict in predicts.items():
                with torch.no_grad():
                    wrong = task.bit_errors(predict(batch.inputs), batch)
                for i in range(b):
                    row = per_length.setdefault(int(L[i]), {})
                    row.setdefault(name, []).append((float(wrong[i]), float(outputs[i])))
            done += b
            index += 1
    rows = []
    for L in sorted(per_length):
        cells = per_length[L]
        n = len(next(iter(cells.values())))
        exact = {m: sum(w == 0 for w, _ in v) for m, v in cells.items()}
        rows.append(LengthRow(L, n, {m: k / n for m, k in exact.items()},
                              {m: wilson_interval(k, n) for m, k in exact.items()},
                              {m: sum(w for w, _ in v) / n for m, v in cells.items()},
                              {m: sum(w for w, _ in v) / sum(o for _, o in v) for m, v in cells.items()}))
    return rows


def length_table(rows: list[LengthRow], title: str = "") -> str:
    """The rows as a Markdown table: per input length, each model's exact sequences (95%
    interval) and token errors per sequence."""
    names = list(rows[0].exact) if rows else []
    head = ["input length", "n"] + [f"{m}: exact [95%]" for m in names] + [f"{m}: token errors/seq" for m in names]
    lines = ([title, ""] if title else []) + ["| " + " | ".join(head) + " |",
                                              "|" + "|".join(["---:"] * len(head)) + "|"]
    for r in rows:
        cells = [str(r.length), str(r.samples)]
        cells += [f"{100 * r.exact[m]:.1f}% [{100 * r.intervals[m][0]:.1f}, {100 * r.intervals[m][1]:.1f}]"
                  for m in names]
        cells += [f"{r.token_errors[m]:.2f}" for m in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
