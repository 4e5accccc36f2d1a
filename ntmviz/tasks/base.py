"""What every task shares: the Batch it samples, scoring, sizes and a text rendering.

Shapes: B batch, T time (the longest item in the batch), I input width, O output width.

    Batch.inputs   [B, T, I] float32
    Batch.targets  [B, T, O] float32   0/1 bits
    Batch.mask     [B, T]    float32   1 where an output is scored
    Batch.lengths  [B]       int64     steps item b really uses; steps >= lengths[b] are zero
                                       padding (inputs, targets and mask all 0)

Sampling draws one seed from a CPU `torch.Generator` (so one seed gives one batch whatever
the device), builds the batch with numpy on the CPU and moves it to the requested device in
one step. numpy, because torch's intra-op threads turn these tiny tensor ops from
microseconds into milliseconds when the cores are busy (measured: a 1,000-element sin took
12 ms with 2 threads on 2 loaded cores, 2 us with 1).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .mechanism import Mechanism, Reading, Trace

CPU = torch.device("cpu")


class Batch(NamedTuple):
    """One batch of a task; see the module docstring for shapes."""

    inputs: Tensor  # [B, T, I] float32
    targets: Tensor  # [B, T, O] float32
    mask: Tensor  # [B, T] float32, 1 where scored
    lengths: Tensor  # [B] int64, steps each item uses

    def to(self, device: str | torch.device | None) -> "Batch":
        """The same batch on another device."""
        return Batch(*(x.to(device) for x in self))

    @staticmethod
    def concat(batches: "list[Batch]") -> "Batch":
        """Batches one after another along B, each padded at the end to the longest T (a padded
        step has zero inputs, targets and mask, as within a batch)."""
        if len(batches) == 1:
            return batches[0]
        steps = max(b.inputs.shape[1] for b in batches)

        def pad(x: Tensor) -> Tensor:
            extra = steps - x.shape[1]
            return x if extra == 0 else F.pad(x, (0, 0, 0, extra) if x.dim() == 3 else (0, extra))

        return Batch(*(torch.cat([pad(getattr(b, name)) for b in batches]) for name in ("inputs", "targets", "mask")),
                     torch.cat([b.lengths for b in batches]))


def batch_of(inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, lengths: np.ndarray) -> Batch:
    """A CPU Batch from numpy arrays (inputs [B, T, I], targets [B, T, O], mask [B, T], lengths [B])."""
    return Batch(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)),
                 torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)),
                 torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)),
                 torch.from_numpy(np.ascontiguousarray(lengths, dtype=np.int64)))


def parse_bit_rows(text: str, bits: int) -> np.ndarray:
    """Rows of 0/1 characters, one vector per line -> float32 [L, bits].

    Spaces, tabs, commas and underscores inside a row are ignored; blank lines are skipped.
    Raises ConfigError naming the first bad row."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        cleaned = "".join(ch for ch in line if ch not in " \t,_")
        if not cleaned:
            continue
        bad = sorted({ch for ch in cleaned if ch not in "01"})
        if bad:
            raise ConfigError(f"row {number}: only 0 and 1 are allowed, found {' '.join(repr(c) for c in bad)}")
        if len(cleaned) != bits:
            raise ConfigError(f"row {number} has {len(cleaned)} bit(s); this task needs {bits} per row")
        rows.append([float(ch) for ch in cleaned])
    if not rows:
        raise ConfigError(f"type at least one row of {bits} bits (0 or 1)")
    return np.asarray(rows, dtype=np.float32)


def bit_labels(bits: int) -> tuple[str, ...]:
    """("bit 0", ..., "bit {bits-1}")."""
    return tuple(f"bit {i}" for i in range(bits))


def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """Raise ConfigError unless value is an int >= minimum (bools are not ints here)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_range(what: str, low_name: str, low: int, high_name: str, high: int, minimum: int = 1) -> None:
    """Both ends are integers >= minimum and low <= high."""
    check_int(low_name, low, minimum)
    check_int(high_name, high, minimum)
    if low > high:
        raise ConfigError(f"{what}: {low_name} {low} is larger than {high_name} {high}")


def make_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """A CPU generator: the one given, one seeded with `seed`, or a freshly seeded one."""
    if seed is not None and generator is not None:
        raise ConfigError("pass seed or generator, not both")
    if generator is not None:
        if generator.device.type != "cpu":
            raise ConfigError(f"tasks sample with a CPU generator, got one on {generator.device}")
        return generator
    g = torch.Generator(device=CPU)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def randint(rng: np.random.Generator, low, high, size: tuple[int, ...]) -> np.ndarray:
    """Integers uniform in [low, high] inclusive: int64 of `size`. low and high may be arrays
    that broadcast to `size` (a per-item range)."""
    low = np.asarray(low, dtype=np.int64)
    return low + (rng.random(size) * (np.asarray(high) - low + 1)).astype(np.int64)


def numpy_rng(g: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded by one draw from `g` (so `g` advances once per batch)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=CPU))
    return np.random.default_rng(seed)


@dataclass(frozen=True)
class Task:
    """Base class of the five tasks. Subclasses are frozen dataclasses whose fields are their
    configuration, and implement `_sample`, `input_size`, `output_size`, `at`,
    `required_slots`, `describe` and the channel labels."""

    name: ClassVar[str] = "task"
    difficulty_name: ClassVar[str] = "size"  # what `at(difficulty)` sets, for messages and UIs
    size_field: ClassVar[str] = ""  # the field holding the largest size of that knob
    signed_channels: ClassVar[tuple[str, ...]] = ()  # labels of input channels with values in [-1, 1]
    eval_sizes: ClassVar[tuple[int, ...]] = ()  # the sizes `ntmviz eval` reports besides the training range
    # A model has solved the task when its mean bit errors per sequence on the training range are
    # below this (None: no such bar, e.g. where even the optimum makes errors).
    solved_below: ClassVar[float | None] = None
    # What `bit_errors` counts per sequence, for tables ("answer error rate" for the story tasks).
    error_unit: ClassVar[str] = "bit errors/seq"
    # How a recorded episode of this task is scored (a name in contract.MEASURES): its title,
    # sequence view and Compare show this, whatever model made the episode.
    measure: ClassVar[str] = "bit_errors"
    # Whether a person can type this task's input (`typed`), and a short example of what to type
    # (the input box's placeholder and hint).
    typed_input: ClassVar[bool] = False
    typed_hint: ClassVar[str] = ""
    # Validation chooses checkpoints and seeds on the fewest bit errors, then the lowest loss; or
    # on the loss alone where it is the task's measure and the bits a noisy view of it (n-grams).
    choose_on_loss: ClassVar[bool] = False

    def validation_key(self, bit_errors: float, loss: float) -> tuple[float, ...]:
        """What validation minimises to choose a checkpoint or a seed."""
        return (loss,) if self.choose_on_loss else (bit_errors, loss)

    @property
    def choice_rule(self) -> str:
        """`validation_key` in words, for cards and messages."""
        return "lowest loss" if self.choose_on_loss else "fewest bit errors, then lowest loss"

    # ---- sizes ---------------------------------------------------------------------------
    # Channels: the `bits` data bits, then these named extras (tasks without `bits` override
    # input_labels / output_labels). Sizes follow from the labels.
    extra_inputs: ClassVar[tuple[str, ...]] = ()
    extra_outputs: ClassVar[tuple[str, ...]] = ()

    @property
    def input_labels(self) -> tuple[str, ...]:
        """One short name per input channel, length I (for plots and `render`)."""
        return bit_labels(self.bits) + self.extra_inputs

    @property
    def output_labels(self) -> tuple[str, ...]:
        """One short name per output channel, length O."""
        return bit_labels(self.bits) + self.extra_outputs

    @property
    def input_size(self) -> int:
        """I."""
        return len(self.input_labels)

    @property
    def output_size(self) -> int:
        """O."""
        return len(self.output_labels)

    def required_slots(self) -> int:
        """Memory slots the largest sample of this configuration needs."""
        raise NotImplementedError

    def check_fits(self, memory_slots: int) -> None:
        """Raise ConfigError if a memory of `memory_slots` slots is too small for this task."""
        need = self.required_slots()
        if memory_slots < need:
            raise ConfigError(f"{self._size_phrase()} needs {need} memory slots, the model has {memory_slots}")

    def _size_phrase(self) -> str:
        """Names the largest sample, e.g. 'copy length 200' (used by check_fits)."""
        return f"{self.name}"

    @property
    def largest_size(self) -> int:
        """The largest size of the `at()` knob this configuration samples (its training range's top);
        0 for a task with no size knob (size_field ""): its items are what they are (dates)."""
        return int(getattr(self, self.size_field)) if self.size_field else 0

    def at(self, difficulty: int) -> "Task":
        """A copy of this task fixed at one generalisation size (see each task)."""
        raise NotImplementedError

    def eval_variants(self) -> list[tuple[str, "Task"]]:
        """(label, task) for each generalisation test `ntmviz eval` runs by default."""
        return [(str(size), self.at(size)) for size in self.eval_sizes]

    def describe(self) -> str:
        """One line."""
        raise NotImplementedError

    def episode_extras(self, batch: Batch, outputs: list[np.ndarray]) -> list[dict[str, Any]]:
        """What each recorded episode of `batch` carries from the task besides the model's
        arrays, one dict per item (outputs: each item's output probabilities [T, O]):
        "meta" (merged into the episode's metadata), and where the task has them "slot_labels"
        (N strings) and "optimum" ([T, O], the optimal predictor's outputs)."""
        labels = {"input_labels": list(self.input_labels), "output_labels": list(self.output_labels)}
        return [{"meta": dict(labels)} for _ in outputs]

    # ---- configuration as data -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: {"name": ..., every field}."""
        return {"name": self.name, **dataclasses.asdict(self)}

    def replace(self, **changes: Any) -> "Task":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ---- a typed input ---------------------------------------------------------------------
    def typed(self, text: str, seed: int = 0) -> tuple["Task", "Batch"]:
        """What a person typed, as (this task fixed at the input's size, a batch of one). Anything
        not typed (e.g. a repeat count) is sampled with `seed`. Raises ConfigError with one line
        in the user's terms for text the task cannot take. Tasks whose size the memory must hold
        override this; the rest implement `typed_batch`."""
        return self, self.typed_batch(text, seed)

    def typed_batch(self, text: str, seed: int = 0) -> "Batch":
        """The batch of one that `text` describes (see `typed`)."""
        raise ConfigError(f"the {self.name} task takes no typed input")

    # ---- sampling --------------------------------------------------------------------------
    def sample(self, batch_size: int, *, seed: int | None = None, generator: torch.Generator | None = None,
               device: str | torch.device | None = None) -> Batch:
        """A batch of `batch_size` items, each of its own size, padded at the end.

        Same seed (or a generator in the same state) -> the same batch. The sampling runs
        on the CPU; the batch is then moved to `device` (default CPU).
        """
        check_int("batch_size", batch_size)
        rng = numpy_rng(make_generator(seed, generator))
        batch = batch_of(*self._sample(batch_size, rng))
        if device is not None and torch.device(device) != CPU:
            batch = batch.to(device)
        return batch

    def _sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(inputs [B, T, I], targets [B, T, O], mask [B, T], lengths [B]) as numpy arrays."""
        raise NotImplementedError

    # ---- scoring ---------------------------------------------------------------------------
    def _check_logits(self, logits: Tensor, batch: Batch) -> None:
        if logits.shape != batch.targets.shape:
            raise ConfigError(f"{self.name}: logits {list(logits.shape)} do not match targets "
                              f"{list(batch.targets.shape)}")

    # How outputs are scored: False, each output channel is a bit (binary cross-entropy, every
    # wrong bit counts); True, each step's output is one of O classes, its target one-hot (a
    # softmax's cross-entropy, a step is wrong when its most likely class is not the target's):
    # an answer word, a token, a pointer.
    one_hot_outputs: ClassVar[bool] = False

    def sequence_loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Cross-entropy with logits [B, T, O] (binary per bit, or of a softmax over the classes:
        one_hot_outputs), summed over scored steps: nats per sequence, [B], differentiable."""
        self._check_logits(logits, batch)
        targets = batch.targets.to(logits.dtype)
        if self.one_hot_outputs:
            per_step = -(F.log_softmax(logits, -1) * targets).sum(-1)  # [B, T]
        else:
            per_step = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
        return (per_step * batch.mask.to(logits.dtype)).sum(-1)

    def loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """`sequence_loss` averaged over the batch: a differentiable scalar."""
        return self.sequence_loss(logits, batch).mean()

    def bit_errors(self, logits: Tensor, batch: Batch) -> Tensor:
        """Wrong bits per sequence on scored steps: [B] float32 holding whole numbers.
        A bit is wrong where (logits > 0) differs from (targets > 0.5)."""
        return (self.wrong_bits(logits, batch) * batch.mask.to(torch.float32)).sum(-1)

    def wrong_bits(self, logits: Tensor, batch: Batch) -> Tensor:
        """Wrong bits at each step, scored or not: [B, T] float32 (one_hot_outputs: 1 where the
        most likely class is not the target's)."""
        self._check_logits(logits, batch)
        if self.one_hot_outputs:
            return (logits.argmax(-1) != batch.targets.argmax(-1)).to(torch.float32)
        return ((logits > 0) != (batch.targets > 0.5)).sum(-1).to(torch.float32)

    # Where the output falls into parts of its own (repeat copy: one per repeat), the name of a
    # part; `part_errors` then splits the bit errors between them.
    part_name: ClassVar[str] = ""

    def part_errors(self, logits: Tensor, batch: Batch) -> Tensor | None:
        """Wrong bits per sequence in each part of the output, [B, P] float32, where every
        sequence of this task has the same P parts; None where it has none (the default)."""
        return None

    # ---- what the heads did (mechanism metrics; see mechanism.py) -----------------------------
    mechanisms: ClassVar[tuple[Mechanism, ...]] = ()  # the parts of the paper's algorithm this task measures

    def playback_lag(self, trace: Trace) -> int | None:
        """The playback lag (mechanism.LAGS) that best fits this episode, or None when the
        task's readings take no lag."""
        return None

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        """One Reading per mechanism (keys: the names of `mechanisms`, in order) for one
        episode. `lag`: the playback lag to assume (None: `playback_lag(trace)`)."""
        return {}

    # ---- text --------------------------------------------------------------------------------
    def render(self, batch: Batch, index: int = 0, outputs: Tensor | None = None) -> str:
        """A text picture of item `index`: one row per channel, one column per step.

        '.' is 0, '#' is 1, a digit d is a value in [d/10, (d+1)/10); rows of channels in
        [-1, 1] (priorities) show nonzero values v as the digit of (v + 1) / 2. `outputs` are probabilities (sigmoid of the
        logits), [B, T, O] or this item's [T, O]; rows of the mask show '^' on scored steps.
        """
        n = int(batch.lengths[index])
        parts = [f"{self.describe()}\nitem {index}: {n} steps"]
        width = max(len(s) for s in self.input_labels + self.output_labels + ("scored",))

        def block(title: str, values: Tensor, labels: tuple[str, ...]) -> None:
            parts.append(title)
            values = values.detach().to(CPU, torch.float32)[:n]
            for c, label in enumerate(labels):
                parts.append(f"  {label:>{width}} {_row(values[:, c], label in self.signed_channels)}")

        block("inputs", batch.inputs[index], self.input_labels)
        block("targets", batch.targets[index], self.output_labels)
        if outputs is not None:
            outputs = outputs[index] if outputs.dim() == 3 else outputs
            block("outputs", outputs, self.output_labels)
        mask = batch.mask[index].detach().to(CPU)[:n]
        parts.append(f"  {'scored':>{width}} " + "".join("^" if m > 0 else " " for m in mask.tolist()))
        return "\n".join(parts)


def _row(values: Tensor, signed: bool = False) -> str:
    """One channel over time as characters; a signed channel shows nonzero v as a digit of (v + 1) / 2."""
    out = []
    for v in values.tolist():
        if signed and v != 0:
            out.append(str(min(9, max(0, int((v + 1) * 5)))))
        elif v < 0.05:
            out.append(".")
        elif v > 0.95:
            out.append("#")
        else:
            out.append(str(min(9, max(0, int(v * 10)))))
    return "".join(out)


LN2 = math.log(2.0)


def span(low: int, high: int) -> str:
    """'3' or '1-20', for descriptions."""
    return str(low) if low == high else f"{low}-{high}"
