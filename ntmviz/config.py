"""Configurations as dataclasses: the one place each setting's default, bounds and help live.

Model configs (NTMConfig, LSTMConfig, MemN2NConfig): a checkpoint carries one, so it rebuilds its
model; `from_dict(to_dict(cfg)) == cfg` for every config, and both are plain JSON.

TrainConfig: what a training run is, shared by `ntmviz train`, sweeps and the Train tab: the task,
the model kind and every model setting (the model configs' own fields, copied with their
defaults, bounds and help), the trainer's options, steps, seeds and the validation and
checkpoint periods. The CLI's options (cli.py), the keys a sweep may vary (sweep.py) and the
app's RunConfig (app/live.py, a subclass) are all built from these fields; nothing restates a
default.

Each field carries its metadata (`setting`): help text, bounds, soft bounds (the range a form
offers), choices. `settings(cls)` lists them as Setting tuples, for whoever builds options or
widgets; `check_value` checks one value against its field, with the message every caller gives.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple, Union

from .errors import ConfigError

CONTROLLERS = ("lstm", "feedforward")
MEMORY_INITS = ("constant", "learned", "random")
STACK_ACTIONS = ("soft", "discrete")
# Each optimiser and the learning rate it trains with unless one is given (RMSProp as the paper).
OPTIMIZERS = {"adam": 1e-3, "rmsprop": 1e-4}
MODEL_KINDS = ("ntm", "lstm", "memn2n", "dnc", "stack", "queue", "deque", "stack_rnn", "dmn", "pointer", "seq2seq")

_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, *, help: str, type: type | None = None, factory: Any = None,
            bounds: tuple[float | None, float | None] | None = None,
            inclusive_bounds: tuple[bool, bool] = (True, True),
            softbounds: tuple[float | None, float | None] | None = None, choices: tuple | None = None,
            role: str | None = None, derived: bool = False, flag: str | None = None) -> Any:
    """A dataclass field that carries what every front end needs to offer it:

    help: one line, as the CLI's --help shows it; bounds: the values allowed (low, high; None:
    unbounded), `inclusive_bounds` saying whether each end is allowed; softbounds: the range a
    form offers (the Train tab refuses values past it); choices: the values allowed, for text;
    role "trainer": an option of the Trainer itself; derived: set from the task, never by hand;
    flag: the CLI's option name when it is not the field's (without the leading --).
    The type is the default's unless given (needed when the default is None or a factory)."""
    kind = type or _type_of(default if factory is None else factory())
    metadata = {"help": help, "type": kind, "bounds": bounds, "inclusive_bounds": inclusive_bounds,
                "softbounds": softbounds, "choices": choices, "role": role, "derived": derived, "flag": flag}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _type_of(value: Any) -> type | None:
    return None if value is _MISSING or value is None else type(value)


class Setting(NamedTuple):
    """One field of a config as the front ends see it (`settings(cls)`)."""

    name: str
    default: Any  # _MISSING (dataclasses.MISSING) for a field without one
    type: type  # int, float, str, list (of seeds), dict
    help: str
    bounds: tuple | None = None
    inclusive_bounds: tuple[bool, bool] = (True, True)
    softbounds: tuple | None = None
    choices: tuple | None = None
    role: str | None = None
    derived: bool = False
    flag: str | None = None
    owner: str = "train"  # "train", or the model kind whose config the field comes from

    @property
    def option(self) -> str:
        """The CLI's option: --memory-slots, --task-option, ..."""
        return "--" + (self.flag or self.name.replace("_", "-"))


def settings(cls) -> Iterator[Setting]:
    """Every field of a config class (or instance) that carries metadata, in declaration order,
    with its default, bounds, help and choices."""
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        m = f.metadata
        default = f.default if f.default is not _MISSING else (
            f.default_factory() if f.default_factory is not _MISSING else _MISSING)
        yield Setting(f.name, default, m["type"], m["help"], m["bounds"], m["inclusive_bounds"], m["softbounds"],
                      m["choices"], m["role"], m["derived"], m["flag"], m.get("model", getattr(cls, "kind", "train")))


def setting_of(cls, name: str) -> Setting:
    """One field's Setting; KeyError if the class has no such field."""
    for s in settings(cls):
        if s.name == name:
            return s
    raise KeyError(name)


def check_value(s: Setting, value: Any, what: str | None = None) -> None:
    """ConfigError (one line, naming `what` or the field, and the value) unless `value` is of the
    field's type, within its bounds and among its choices. None passes where the default is None."""
    what = what or s.name
    if value is None and s.default is None:
        return
    if s.type is int:
        if not isinstance(value, int) or isinstance(value, bool) or not _within(value, s.bounds, s.inclusive_bounds):
            raise ConfigError(f"{what} must be {_describe(s, 'integer')}, got {value!r}")
    elif s.type is float:
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
                or not _within(value, s.bounds, s.inclusive_bounds)):
            raise ConfigError(f"{what} must be {_describe(s, 'number')}, got {value!r}")
    elif s.choices is not None and value not in s.choices:
        raise ConfigError(f"unknown {what} {value!r}; expected {_either(s.choices)}")


def _within(value: float, bounds, inclusive) -> bool:
    if bounds is None:
        return True
    low, high = bounds
    if low is not None and (value < low or (value == low and not inclusive[0])):
        return False
    if high is not None and (value > high or (value == high and not inclusive[1])):
        return False
    return True


def _describe(s: Setting, noun: str) -> str:
    """'a positive integer', 'a non-negative integer', 'a number above 0', 'an integer from 1 to 8'."""
    low, high = s.bounds or (None, None)
    closed_low, closed_high = s.inclusive_bounds
    if high is None and noun == "integer" and low in (0, 1) and closed_low:
        return "a positive integer" if low == 1 else "a non-negative integer"
    parts = []
    if low is not None:
        parts.append(f"at least {low:g}" if closed_low else f"above {low:g}")
    if high is not None:
        parts.append(f"at most {high:g}" if closed_high else f"below {high:g}")
    return ("an integer" if noun == "integer" else "a number") + (" " + " and ".join(parts) if parts else "")


def _either(choices) -> str:
    names = [str(c) for c in choices]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def check_fields(config) -> None:
    """Check every field of `config` that carries metadata (check_value); ConfigError on the first bad one."""
    for s in settings(config):
        check_value(s, getattr(config, s.name))



_POSITIVE = (1, None)
_STEPS = (1, 10**9)  # what a form offers for a count of steps


def _size(what: str, *, high: int = 4096, **more) -> Any:
    """A positive integer field; a form offers 1 .. high (enough for any model here)."""
    return dict(type=int, bounds=_POSITIVE, softbounds=(1, high), help=what, **more)


@dataclass(frozen=True)
class NTMConfig:
    """A Neural Turing Machine: controller, R read heads, W write heads, an N x M memory."""

    input_size: int = setting(help="inputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    output_size: int = setting(help="outputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    memory_slots: int = setting(128, **_size("N, memory slots"))
    memory_width: int = setting(20, **_size("M, numbers per slot", high=1024))
    read_heads: int = setting(1, **_size("R, read heads", high=8))
    write_heads: int = setting(1, **_size("W, write heads", high=8))
    controller: str = setting("lstm", choices=CONTROLLERS, help="the controller: lstm or feedforward")
    controller_size: int = setting(100, **_size("controller units per layer"))
    controller_layers: int = setting(1, **_size("controller layers", high=8))
    # shifts -shift_range .. +shift_range, so S = 2 * shift_range + 1
    shift_range: int = setting(1, bounds=(0, None), softbounds=(0, 8),
                               help="shifts a head may make each step: -K .. +K")
    memory_init: str = setting("constant", choices=MEMORY_INITS,
                               help="the memory before the first step: constant, learned or random")
    memory_init_value: float = setting(1e-6, bounds=(0, None),
                                       help="the initial memory's constant, or the std of the random init")

    kind = "ntm"

    def __post_init__(self) -> None:
        check_fields(self)
        if self.shift_width > self.memory_slots:
            raise ConfigError(
                f"shift range -{self.shift_range}..+{self.shift_range} ({self.shift_width} shifts) "
                f"is wider than the memory's {self.memory_slots} slots")

    @classmethod
    def for_task(cls, task, **settings: Any) -> "NTMConfig":
        """The config that reads and writes `task`'s inputs and outputs, with these settings."""
        return cls(task.input_size, task.output_size, **settings)

    @property
    def shift_width(self) -> int:
        """S, the number of shift offsets."""
        return 2 * self.shift_range + 1

    @property
    def heads(self) -> int:
        """H = R + W: every head, read heads first."""
        return self.read_heads + self.write_heads

    def numbers_per_step(self, steps: int) -> int:
        """About how many numbers one sequence keeps per step for backward (train.step_bytes)."""
        return 3 * self.memory_slots * self.memory_width + 12 * self.heads * self.memory_slots \
            + 12 * self.controller_size * self.controller_layers


@dataclass(frozen=True)
class LSTMConfig:
    """The baseline: a stack of LSTM layers and a linear output."""

    input_size: int = setting(help="inputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    output_size: int = setting(help="outputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    hidden_size: int = setting(256, **_size("LSTM baseline: units per layer"))
    layers: int = setting(3, **_size("LSTM baseline: layers", high=8))

    kind = "lstm"

    def __post_init__(self) -> None:
        check_fields(self)

    def numbers_per_step(self, steps: int) -> int:
        return 12 * self.hidden_size * self.layers

    @classmethod
    def for_task(cls, task, **settings: Any) -> "LSTMConfig":
        return cls(task.input_size, task.output_size, **settings)


@dataclass(frozen=True)
class StoryReader:
    """What the configs of models that read stories share: the sizes the story task gives, the
    word embedding's size, the checks and `for_task`."""

    input_size: int = setting(help="I, words per sentence (the task's)", type=int, bounds=_POSITIVE, derived=True)
    output_size: int = setting(help="O, answer words: word ids 1..O (the task's)", type=int, bounds=_POSITIVE,
                               derived=True)
    vocab_size: int = setting(help="V, padding id 0 included (the task's)", type=int, bounds=_POSITIVE, derived=True)
    memory_slots: int = setting(10, **_size("N, sentences a story may have (the task's)"), derived=True)
    embedding_size: int = setting(20, **_size("memory network: embedding size d"))

    reader = "a memory network"  # what the model is called in a message

    def __post_init__(self) -> None:
        check_fields(self)
        if self.output_size >= self.vocab_size:
            raise ConfigError(f"{self.output_size} answer words need a vocabulary of more than "
                              f"{self.output_size} words (id 0 is padding), got {self.vocab_size}")

    @classmethod
    def for_task(cls, task, **settings: Any):
        """The model for a story task: its sentence length, answers, vocabulary and story length."""
        if not hasattr(task, "vocab_size"):
            raise ConfigError(f"{cls.reader} reads stories: --task babi_single, babi_two or babi_yes_no, "
                              f"not {task.name}")
        return cls(task.input_size, task.output_size, task.vocab_size, task.required_slots(), **settings)


@dataclass(frozen=True)
class MemN2NConfig(StoryReader):
    """An end-to-end memory network (Sukhbaatar et al. 2015) over stories of word ids: K hops
    over up to N sentence memories of d numbers, adjacent weight tying (memn2n.py)."""

    hops: int = setting(3, **_size("memory network: hops K", high=16))

    kind = "memn2n"

    def numbers_per_step(self, steps: int) -> int:
        """One step per sentence: its words' vectors at every embedding level."""
        return 3 * (self.hops + 1) * self.input_size * self.embedding_size


@dataclass(frozen=True)
class DMNConfig(StoryReader):
    """A dynamic memory network (Kumar et al. 2015) over stories of word ids: facts of d numbers
    from up to N sentences, E passes of the episodic module's gates over them (models/dmn.py)."""

    passes: int = setting(3, **_size("dynamic memory network: passes of the episodic module over the facts", high=16))
    gate_supervision: float = setting(0.0, bounds=(0, None), softbounds=(0, 10),
                                      help="dynamic memory network: weight of the gates' cross-entropy against the "
                                           "supporting facts, pass by pass, added to the answer's loss (Kumar et "
                                           "al. train with it); 0: the gates learn from the answer alone")

    kind = "dmn"
    reader = "a dynamic memory network"

    def numbers_per_step(self, steps: int) -> int:
        """One step per sentence: its words' vectors, its fact and the gate network's 5d per pass."""
        d = self.embedding_size
        return 3 * self.input_size * d + 6 * self.passes * d



@dataclass(frozen=True)
class DNCConfig:
    """A differentiable neural computer (Graves et al. 2016): an LSTM controller, R read heads
    with read modes (backward, content, forward), one write head allocating by usage, an N x M
    memory with a temporal link matrix (models/dnc.py)."""

    input_size: int = setting(help="inputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    output_size: int = setting(help="outputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    memory_slots: int = setting(128, **_size("N, memory slots"))
    memory_width: int = setting(20, **_size("M, numbers per slot", high=1024))
    read_heads: int = setting(1, **_size("R, read heads", high=8))
    controller_size: int = setting(100, **_size("controller units per layer"))

    kind = "dnc"

    def __post_init__(self) -> None:
        check_fields(self)

    def numbers_per_step(self, steps: int) -> int:
        N = self.memory_slots
        return 3 * N * self.memory_width + 4 * N * N + 20 * self.read_heads * N + 12 * self.controller_size

    @classmethod
    def for_task(cls, task, **settings: Any) -> "DNCConfig":
        return cls(task.input_size, task.output_size, **settings)


@dataclass(frozen=True)
class StackConfig:
    """A neural stack (Grefenstette et al. 2015): an LSTM controller that pushes a vector of
    memory_width numbers with strength d, pops with strength u and reads the top of a
    continuous stack each step (models/stack.py). Its rows grow with the sequence."""

    input_size: int = setting(help="inputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    output_size: int = setting(help="outputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    memory_width: int = setting(20, **_size("M, numbers per slot", high=1024))
    controller_size: int = setting(100, **_size("controller units per layer"))
    pop_bias: float = setting(-1.0, bounds=(None, None), softbounds=(-10, 10),
                              help="neural stack, queue, deque: the pop gate's initial bias (the paper's "
                                   "appendix: negative, so the controller learns to push before it pops)")

    kind = "stack"

    def __post_init__(self) -> None:
        check_fields(self)

    def numbers_per_step(self, steps: int) -> int:
        """The rows grow with the sequence: up to 2 x steps of them (a deque pushes at both ends)."""
        return 2 * steps * (self.memory_width + 4) + 12 * self.controller_size

    @classmethod
    def for_task(cls, task, **settings: Any):
        return cls(task.input_size, task.output_size, **settings)


@dataclass(frozen=True)
class QueueConfig(StackConfig):
    """A neural queue: as the stack, but it reads and pops from the bottom (first in, first out)."""

    kind = "queue"


@dataclass(frozen=True)
class DequeConfig(StackConfig):
    """A neural deque: pushes, pops and reads at both ends, each end with its own strengths."""

    kind = "deque"


@dataclass(frozen=True)
class StackRNNConfig:
    """A stack-augmented RNN (Joulin & Mikolov 2015): a sigmoid RNN of controller_size units with
    `stacks` stacks of scalars, each moved by a PUSH / POP / NO-OP distribution every step; the
    RNN reads the top `read_depth` values of every stack (models/stack_rnn.py)."""

    input_size: int = setting(help="inputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    output_size: int = setting(help="outputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    controller_size: int = setting(100, **_size("controller units per layer"))
    stacks: int = setting(2, **_size("stack RNN: stacks", high=64))
    stack_depth: int = setting(200, **_size("stack RNN: values each stack holds (deeper ones fall off)", high=100_000))
    read_depth: int = setting(2, **_size("stack RNN: top values of each stack the RNN reads (k)", high=64))
    test_actions: str = setting("soft", choices=STACK_ACTIONS,
                                help="stack RNN: soft, or discrete (each action distribution replaced by the "
                                     "one-hot of its likeliest action in evaluation and recording, the authors' "
                                     "test-time option; training stays soft)")

    kind = "stack_rnn"

    def __post_init__(self) -> None:
        check_fields(self)
        if self.read_depth > self.stack_depth:
            raise ConfigError(f"read_depth {self.read_depth} is deeper than stack_depth {self.stack_depth}")

    def numbers_per_step(self, steps: int) -> int:
        return 2 * self.stacks * min(self.stack_depth, steps + 1) + 6 * self.controller_size

    @classmethod
    def for_task(cls, task, **settings: Any) -> "StackRNNConfig":
        return cls(task.input_size, task.output_size, **settings)


POINTER_OUTPUTS = ("pointer", "vocabulary")


@dataclass(frozen=True)
class PointerConfig:
    """A pointer network (Vinyals, Fortunato & Jaitly 2015): an LSTM encoder over the inputs, an
    LSTM decoder whose additive attention over the encoder's states is its output, a pointer at
    one input per step (models/pointer.py). Its inputs are the pointer tasks' (tasks/geometry.py):
    F numbers per input, then the flag "input" and the teacher's "previous" pointer. Output
    "vocabulary" is the paper's baseline on the same tasks: the same encoder, decoder and attention,
    the attention read as a context and the answer a softmax over the O positions as words."""

    input_size: int = setting(help="I = F + 2: F numbers per input, a flag, the previous pointer (the task's)",
                              type=int, bounds=(3, None), derived=True)
    output_size: int = setting(help="O, the positions pointed over: the end, then the inputs (the task's)",
                               type=int, bounds=(2, None), derived=True)
    pointer_size: int = setting(128, **_size("pointer network: LSTM units of its encoder and decoder, and the "
                                             "attention's width"))
    output: str = setting("pointer", choices=POINTER_OUTPUTS,
                          help="pointer network: its attention is its answer (pointer), or, the paper's baseline, "
                               "an encoder-decoder with attention whose answer is a softmax over a fixed "
                               "vocabulary of positions (vocabulary)")

    kind = "pointer"

    @property
    def points(self) -> bool:
        """Whether the attention is the answer (a pointer network), not read by a fixed output layer."""
        return self.output == "pointer"

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def features(self) -> int:
        """F, the numbers of one input (a number; a point's x, y)."""
        return self.input_size - 2

    def numbers_per_step(self, steps: int) -> int:
        """An encoder and a decoder step, and the attention's tanh over every slot."""
        return 24 * self.pointer_size + 2 * steps * self.pointer_size

    @classmethod
    def for_task(cls, task, **settings: Any) -> "PointerConfig":
        if not hasattr(task, "pointer_features"):
            raise ConfigError(f"a pointer network points at its inputs: --task sort_numbers, convex_hull or tsp, "
                              f"not {task.name}")
        return cls(task.input_size, task.output_size, **settings)


ATTENTIONS = ("additive", "none")
FEEDBACKS = ("answer", "bits")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """An RNN encoder-decoder (Bahdanau, Cho & Bengio 2015): a bidirectional GRU encoder of
    encoder_size units per direction, a GRU decoder of decoder_size units, and additive attention
    of attention_size units over the encoder's states; attention "none" is the same model whose
    decoder sees only the encoder's final states (the paper's RNNenc). It reads tasks laid out as
    copy is: input tokens, a delimiter (the last input channel), then the scored output phase
    (models/seq2seq.py). `attention` is a choice, not a bool, so every front end (the command
    line, the Train tab, sweeps) takes it as typed text."""

    input_size: int = setting(help="inputs per step, the delimiter last (the task's)", type=int, bounds=(2, None),
                              derived=True)
    output_size: int = setting(help="outputs per step (the task's)", type=int, bounds=_POSITIVE, derived=True)
    feedback: str = setting("answer", choices=FEEDBACKS, derived=True,
                            help="what the decoder reads back of its previous output: its most likely answer "
                                 "one-hot, or its bits (the task's measure)")
    attention: str = setting("additive", choices=ATTENTIONS,
                             help="encoder-decoder: additive (Bahdanau) attention over the encoder's states, or "
                                  "none (the decoder sees only the encoder's final states)")
    encoder_size: int = setting(64, **_size("encoder-decoder: GRU units per direction of the encoder"))
    decoder_size: int = setting(64, **_size("encoder-decoder: GRU units of the decoder"))
    attention_size: int = setting(64, **_size("encoder-decoder: units of the attention's energy layer"))

    kind = "seq2seq"

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def attends(self) -> bool:
        """Whether the decoder attends over the encoder's states."""
        return self.attention == "additive"

    def numbers_per_step(self, steps: int) -> int:
        """Two encoder and one decoder GRU step, and the attention's tanh over every input."""
        return 12 * self.encoder_size + 6 * self.decoder_size + steps * (self.attention_size + 2)

    @classmethod
    def for_task(cls, task, **settings: Any) -> "Seq2SeqConfig":
        """An encoder-decoder for a task whose last input channel is the delimiter between its
        input and its output phase (copy, reversal, symbol_reversal, dates, ...)."""
        if not task.input_labels or task.input_labels[-1] != "delim":
            raise ConfigError(f"an encoder-decoder reads an input, a delimiter, then writes its output: --task "
                              f"symbol_reversal, dates, copy or reversal, not {task.name}")
        feedback = "answer" if task.measure == "answer_errors" else "bits"
        return cls(task.input_size, task.output_size, feedback, **settings)

ModelConfig = Union[NTMConfig, LSTMConfig, MemN2NConfig, DNCConfig, StackConfig, StackRNNConfig, DMNConfig,
                    PointerConfig]
MODEL_CONFIGS = {"ntm": NTMConfig, "lstm": LSTMConfig, "memn2n": MemN2NConfig, "dnc": DNCConfig,
                 "stack": StackConfig, "queue": QueueConfig, "deque": DequeConfig, "stack_rnn": StackRNNConfig,
                 "dmn": DMNConfig, "pointer": PointerConfig, "seq2seq": Seq2SeqConfig}
_KINDS = MODEL_CONFIGS


def model_settings(*kinds: str) -> dict[str, Setting]:
    """The settings of these model kinds (all by default) that a person chooses (not derived from
    the task), by name; each Setting's owner is its kind. A name two kinds share is one setting."""
    out: dict[str, Setting] = {}
    for kind in kinds or MODEL_KINDS:
        for s in settings(MODEL_CONFIGS[kind]):
            if s.derived:
                continue
            if s.name in out and out[s.name][1:-1] != s[1:-1]:
                raise TypeError(f"{s.name} is a setting of two models with different defaults or bounds")
            out.setdefault(s.name, s._replace(owner=kind))
    return out


def model_config(kind: str, task, /, **settings: Any) -> ModelConfig:
    """The `kind` model's config for `task` from flat settings (the kind's own fields are taken,
    the rest ignored): what `ntmviz train`, sweeps and the Train tab all build a model from."""
    if kind not in MODEL_CONFIGS:
        raise ConfigError(f"unknown model {kind!r}; expected {_either(MODEL_KINDS)}")
    cls = MODEL_CONFIGS[kind]
    own = {s.name for s in model_settings(kind).values()}
    return cls.for_task(task, **{k: v for k, v in settings.items() if k in own})


def foreign_settings(kind: str, names) -> list[str]:
    """One line for each setting among `names` (flat TrainConfig names a person gave) that belongs
    to other models and not to `kind`, which ignores it: "--hops is not a setting of --model ntm
    (it sets memn2n): ignored". One command line may give every model's sizes (benchmarks/figure2a.py's do)."""
    own, every = model_settings(kind), model_settings()
    return [f"--{name.replace('_', '-')} is not a setting of --model {kind} (it sets "
            f"{_either([k for k in MODEL_KINDS if name in model_settings(k)])}): ignored"
            for name in names if name in every and name not in own]


def _with_model_settings(cls):
    """Add every model setting (model_settings()) to a class about to become a dataclass, as a
    field of its own with the model config's default and metadata (and its kind as `model`)."""
    annotations = cls.__dict__.get("__annotations__", {})
    cls.__annotations__ = annotations
    for name, s in model_settings().items():
        source = next(f for f in dataclasses.fields(MODEL_CONFIGS[s.owner]) if f.name == name)
        annotations[name] = source.type
        setattr(cls, name, dataclasses.field(default=source.default, metadata={**source.metadata, "model": s.owner}))
    return cls


@dataclass
@_with_model_settings
class TrainConfig:
    """A training run: the task, the model (its kind and, added from the model configs, every
    model setting: memory_slots ... hops), how it trains and for how long, and which seeds.

    `ntmviz train`'s options, a sweep's keys and the Train tab's fields are made from these
    fields; the app's RunConfig adds what only a live run needs."""

    task: str = setting("copy", help="copy, repeat_copy, associative_recall, ngrams, priority_sort, reversal, "
                                     "bigram_flip, allocation, anbn, anbncn, anbncndn, anb2n, anbmcnm; for "
                                     "--model memn2n or dmn the story tasks babi_single, babi_two, babi_yes_no; "
                                     "for --model pointer sort_numbers, convex_hull, tsp; symbol_reversal, dates "
                                     "(token tasks, for --model seq2seq and the rest)")
    task_options: dict = setting(factory=dict, flag="task-option",
                                 help="override a task field, e.g. max_length=10 (repeatable)")
    model: str = setting("ntm", choices=MODEL_KINDS,
                         help="ntm, lstm, dnc, stack, queue, deque, stack_rnn, or memn2n or dmn (for the story "
                              "tasks babi_*), or pointer (for sort_numbers, convex_hull, tsp), or seq2seq (an "
                              "encoder-decoder with attention, for symbol_reversal, dates)")
    batch_size: int = setting(32, bounds=_POSITIVE, softbounds=(1, 4096), role="trainer",
                              help="sequences per step for each model")
    lr: float | None = setting(None, type=float, bounds=(0, None), inclusive_bounds=(False, True),
                               softbounds=(0, 10), role="trainer",
                               help="learning rate (default: " + ", ".join(
                                   f"{v:g} for {k}" for k, v in OPTIMIZERS.items()) + ")")
    optimizer: str = setting("adam", choices=tuple(OPTIMIZERS), role="trainer",
                             help="adam, or rmsprop with momentum (the paper's)")
    momentum: float = setting(0.9, bounds=(0, 1), role="trainer", help="RMSProp's momentum")
    clip: float = setting(10.0, bounds=(0, None), role="trainer", help="clip each model's gradient norm (0: off)")
    curriculum: int = setting(0, bounds=(0, None), softbounds=(0, 100), role="trainer",
                              help="grow lengths (repeats, items) over K stages, moving on below "
                                   "curriculum_threshold (0: off)")
    curriculum_threshold: float = setting(0.5, bounds=(0, None), inclusive_bounds=(False, True), role="trainer",
                                          help="bit errors per sequence to move on to the next stage")
    steps: int = setting(2000, bounds=_POSITIVE, softbounds=_STEPS, help="train until this many steps in all")
    seeds: list = setting(factory=lambda: [0], type=list,
                          help="one model per seed, trained together as one batched computation: 0-7, or 0,3,5")
    checkpoint_every: int = setting(500, bounds=_POSITIVE, softbounds=_STEPS, help="write the checkpoints every K steps")
    validate_every: int | None = setting(None, type=int, bounds=(0, None), softbounds=(0, 10**9),
                                         help="score every model on the validation stream every K steps and keep "
                                              "each model's best (default: every checkpoint_every steps; 0: never)")
    validation_samples: int = setting(200, bounds=_POSITIVE, softbounds=(1, 100_000),
                                      help="validation-stream sequences per check")

    def __post_init__(self) -> None:
        check_fields(self)
        seeds = self.seeds
        if (not isinstance(seeds, (list, tuple)) or not seeds or len(set(seeds)) != len(seeds)
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
            raise ConfigError(f"seeds must be distinct non-negative integers, got {seeds!r}")
        if not isinstance(self.task_options, dict):
            raise ConfigError(f"task_options must be a dict of task fields, got {self.task_options!r}")

    @classmethod
    def default(cls, name: str) -> Any:
        """One field's default (the one source)."""
        return setting_of(cls, name).default

    @property
    def learning_rate(self) -> float:
        """lr, or the optimiser's own default."""
        return self.lr if self.lr is not None else OPTIMIZERS[self.optimizer]

    @property
    def validation_period(self) -> int:
        """Steps between two validations: validate_every, or checkpoint_every when it is None (0: never)."""
        return self.checkpoint_every if self.validate_every is None else self.validate_every

    def trainer_options(self) -> dict[str, Any]:
        """The Trainer's own options (role "trainer"), the learning rate resolved."""
        options = {s.name: getattr(self, s.name) for s in settings(self) if s.role == "trainer"}
        options["lr"] = self.learning_rate
        return options

    def model_config(self, task) -> ModelConfig:
        """The model config this run trains on `task`."""
        return model_config(self.model, task, **{name: getattr(self, name) for name in model_settings()})

    def build_task(self):
        """The task with its options; ConfigError for an unknown task or a bad option."""
        from .tasks import get_task

        return get_task(self.task, **self.task_options)


TRAINER_OPTIONS = tuple(s.name for s in settings(TrainConfig) if s.role == "trainer")


def trainer_defaults(**given: Any) -> dict[str, Any]:
    """The Trainer's options: each given one that is not None, else TrainConfig's default (the
    learning rate: the optimiser's). Checked like TrainConfig's fields; ConfigError if one is bad."""
    unknown = set(given) - set(TRAINER_OPTIONS)
    if unknown:
        raise TypeError(f"not trainer options: {sorted(unknown)}")
    options = {}
    for s in settings(TrainConfig):
        if s.role == "trainer":
            value = given.get(s.name)
            options[s.name] = s.default if value is None else value
            check_value(s, options[s.name])
    if options["lr"] is None:
        options["lr"] = OPTIMIZERS[options["optimizer"]]
    return options


def to_dict(config: ModelConfig) -> dict[str, Any]:
    """A JSON-ready dict that names the model kind."""
    return {"kind": config.kind, **dataclasses.asdict(config)}


def from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from `to_dict`'s output; unknown kinds or fields raise ConfigError."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {sorted(_KINDS)}")
    cls = _KINDS[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {kind} config fields: {sorted(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"bad {kind} config: {exc}") from None
