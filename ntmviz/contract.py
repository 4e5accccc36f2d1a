"""What a memory model declares once: its heads, their stages and parameters, the state its
memory's slots carry, and how its outputs are measured.

Everything that records, saves, sends, draws, compares or measures an episode reads this
declaration (a `Family`, carried by every Episode), never a model's kind. A new family of
model is a new declaration plus its maths; nothing under ntmviz/app/ changes.

    Family             one kind of model: the NTM, the LSTM baseline, a memory network, yours
      groups           kinds of head, in order (HeadGroup: "read", "write", "hop", ...)
        stages         the weightings that led to a head's final one, in order (Stage; `signed`
                       when they may be < 0: energies before a softmax)
        params         each head's numbers at each step (Param: a number, a distribution, a vector)
        normalised     True when a head's weighting sums to 1 over the slots; False when it may
                       sum to less (a DNC's gated write, its mixed read modes)
      slot_state       numbers per slot, as each step left them (a DNC's usage)      [T, N]
      slot_matrices    slot x slot matrices, as each step left them (temporal links) [T, N, N]
      slot_coords      the slots placed in a plane (a pointer network's points)       [N, 2]
      slot_labels      the slots named by text (a memory network's sentences)
      memory           "written" (the model writes it), "read-only" (attention over encoded
                       inputs) or "none" (the LSTM baseline: no memory, only the sequence)
      steps            "inputs": a step per input step; "passes": passes over one whole input,
                       the answer read after the last (a memory network's hops)
      order            "read, write" (the NTM: a step reads the memory before its write) or
                       "write, read" (a DNC: it reads what it has just written)
      measure          how outputs are scored against targets (a name in MEASURES)

Shapes use one vocabulary: T steps, N slots, M word width, H heads of a group, S shifts.
A param's `shape` names its trailing dimensions per head: () one number, ("M",) a vector over
the word, ("S",) a distribution over shift offsets. A declaration's head counts are config
field names ("read_heads") until `resolve(config)` makes them numbers; an episode's are numbers.

Declarations are plain data: `to_dict()` / `from_dict()` round-trip through JSON (episode files
keep one in their header). A field added later takes its default when an older dict lacks it
(a stage saved before `signed` existed is unsigned).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ConfigError

STEPS = ("inputs", "passes")
ORDERS = ("read, write", "write, read")
MEMORY_KINDS = ("written", "read-only", "none")
PARAM_KINDS = ("number", "distribution", "vector")
# names an episode uses for its own arrays: a group or field may not take them
RESERVED = frozenset({"inputs", "outputs", "targets", "mask", "memory", "reads", "optimum", "slot", "matrix",
                      "coords", "weights", "time", "diff"})


def check_name(what: str, name: Any) -> str:
    """`name` if it can name a group, stage, param or field: a non-empty string of printable
    characters without "." (it joins names in files: "read.weights"), not a reserved name."""
    if not isinstance(name, str) or not name or "." in name or not name.isprintable() or name in RESERVED:
        raise ConfigError(f"{what} {name!r} must be a non-empty string without '.', and not one of "
                          f"{sorted(RESERVED)}")
    return name


@dataclass(frozen=True)
class Measure:
    """How an episode's outputs are scored against its targets.

    Per step: `Episode.step_scores()` ([T], 0 on unscored steps); the episode's score is their
    sum ("sum") or their mean over scored steps ("mean")."""

    name: str
    unit: str  # what the score counts, in words: "bit errors"
    marks: str  # "wrong" (a step is marked where something is wrong) or "cost" (a signed amount per step)
    doc: str
    needs: tuple[str, ...] = ()  # episode arrays it reads besides outputs and targets
    total: str = "sum"


MEASURES = {m.name: m for m in (
    Measure("bit_errors", "bit errors", "wrong",
            "outputs are bits' probabilities, wrong on the other side of 0.5 from the target"),
    Measure("answer_errors", "wrong answers", "wrong",
            "a step's outputs are a distribution over answers, wrong when the most likely is not the target"),
    Measure("bits_above_optimum", "bits above the optimum per prediction", "cost",
            "the cross-entropy of the outputs, in bits, minus that of the optimal predictor's (the "
            "episode's optimum array), per scored prediction; 0 is as good as any predictor can be",
            needs=("optimum",), total="mean"),
)}


@dataclass(frozen=True)
class Stage:
    """One addressing stage: a weighting over the slots that led to a head's final weighting.

    `signed`: its values may be < 0 (energies or scores before a softmax); it is drawn from a
    centre line, each side on the column's largest |value|. Unsigned stages are >= 0, drawn as
    bars from a baseline on the column's largest value."""

    name: str
    doc: str = ""
    signed: bool = False


@dataclass(frozen=True)
class Param:
    """One of a head's numbers at each step.

    kind "number": one value per head (shape ()); "distribution": values over `shape`'s last
    dimension that sum to 1 (the NTM's shift, over offsets centred on 0 when `centred`; a DNC's
    read modes, its entries named by `labels`);
    "vector": values over the word (the NTM's key, erase, add), `signed` when they may be < 0.
    `range` (low, high) places a number on a bar (`log`: on a log scale), else it is shown as text."""

    name: str
    kind: str = "number"
    shape: tuple[str, ...] = ()
    symbol: str = ""  # the paper's symbol, for labels: "β"
    doc: str = ""
    signed: bool = True
    centred: bool = False
    range: tuple[float, float] | None = None
    log: bool = False
    labels: tuple[str, ...] = ()  # names of a distribution's entries ("backward", "content", "forward")


@dataclass(frozen=True)
class HeadGroup:
    """One kind of head: how many, how its weighting came about, and its numbers at each step."""

    name: str
    count: int | str  # a number, or the config field that holds it
    stages: tuple[Stage, ...] = ()
    params: tuple[Param, ...] = ()
    normalised: bool = True  # weightings sum to 1 over the slots (else at most 1)
    reads: bool = False  # the episode's read vectors are this group's reads (weights @ memory)
    writes: bool = False  # this group's heads write the memory
    doc: str = ""

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The stages in order, then "weights", the weighting the heads used."""
        return tuple(s.name for s in self.stages) + ("weights",)

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


@dataclass(frozen=True)
class SlotField:
    """A named number per slot (slot_state) or per pair of slots (slot_matrices) at each step."""

    name: str
    doc: str = ""
    range: tuple[float, float] | None = None  # the values' range when known (usage in 0..1); else their own


@dataclass(frozen=True)
class Family:
    """What one kind of memory model produces at each step (see the module docstring)."""

    name: str
    title: str  # what the page calls it: "Neural Turing Machine"
    groups: tuple[HeadGroup, ...] = ()
    memory: str = "written"
    slot_state: tuple[SlotField, ...] = ()
    slot_matrices: tuple[SlotField, ...] = ()
    slot_coords: bool = False
    slot_labels: bool = False
    steps: str = "inputs"
    order: str = "read, write"
    measure: str = "bit_errors"
    doc: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # JSON-safe notes a family keeps

    def __post_init__(self) -> None:
        if self.memory not in MEMORY_KINDS:
            raise ConfigError(f"memory must be one of {MEMORY_KINDS}, got {self.memory!r}")
        if self.steps not in STEPS:
            raise ConfigError(f"steps must be one of {STEPS}, got {self.steps!r}")
        if self.order not in ORDERS:
            raise ConfigError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.measure not in MEASURES:
            raise ConfigError(f"measure must be one of {sorted(MEASURES)}, got {self.measure!r}")
        if self.memory == "none" and (self.groups or self.slot_state or self.slot_matrices):
            raise ConfigError("a family without memory has no heads and no slot state")
        seen: set[str] = set()
        for g in self.groups:
            check_name("head group", g.name)
            if g.name in seen:
                raise ConfigError(f"head group {g.name!r} is declared twice")
            seen.add(g.name)
            names = [s.name for s in g.stages] + [p.name for p in g.params]
            for n in names:
                check_name(f"{g.name} field", n)
            if len(set(names)) != len(names):
                raise ConfigError(f"head group {g.name!r} names a stage or param twice")
            for s in g.stages:
                if not isinstance(s.signed, bool):
                    raise ConfigError(f"stage {s.name!r}: signed must be true or false, got {s.signed!r}")
            for p in g.params:
                if p.kind not in PARAM_KINDS:
                    raise ConfigError(f"param {p.name!r}: kind must be one of {PARAM_KINDS}, got {p.kind!r}")
        for part in (self.slot_state, self.slot_matrices):
            for f in part:
                check_name("slot field", f.name)
        if sum(g.reads for g in self.groups) > 1:
            raise ConfigError("at most one head group's reads are the episode's read vectors")

    # ---- looking things up -------------------------------------------------------------
    def group(self, name: str) -> HeadGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"{self.name} has no head group {name!r} (it has {[g.name for g in self.groups]})")

    @property
    def has_memory(self) -> bool:
        return self.memory != "none"

    @property
    def has_slots(self) -> bool:
        """Whether the slots carry anything of their own to draw: state, matrices or coordinates."""
        return bool(self.slot_state or self.slot_matrices or self.slot_coords)

    @property
    def measure_info(self) -> Measure:
        return MEASURES[self.measure]

    @property
    def resolved(self) -> bool:
        """Whether every head count is a number."""
        return all(isinstance(g.count, int) for g in self.groups)

    def resolve(self, config: Any) -> "Family":
        """This declaration with each head count read from `config` (a field name) or kept."""
        groups = []
        for g in self.groups:
            count = g.count if isinstance(g.count, int) else int(getattr(config, g.count))
            groups.append(dataclasses.replace(g, count=count))
        return dataclasses.replace(self, groups=tuple(groups))

    def with_changes(self, **changes: Any) -> "Family":
        """A copy with fields replaced (e.g. the measure a task scores by)."""
        return dataclasses.replace(self, **changes)

    def heads(self) -> list[tuple[str, int, str]]:
        """Every head in order, as (group, index in its group, label): ("read", 0, "read 1")."""
        if not self.resolved:
            raise ConfigError(f"{self.name}: head counts are not known yet (resolve it with a config)")
        return [(g.name, h, f"{g.name} {h + 1}") for g in self.groups for h in range(int(g.count))]

    # ---- as data ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (`from_dict` is the inverse)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Family":
        """A declaration from `to_dict`'s output; ConfigError for anything else."""
        try:
            d = dict(data)
            d["groups"] = tuple(
                HeadGroup(**{**g, "stages": tuple(Stage(**s) for s in g.get("stages", ())),
                             "params": tuple(_param(p) for p in g.get("params", ()))})
                for g in d.get("groups", ()))
            for part in ("slot_state", "slot_matrices"):
                d[part] = tuple(_slot_field(f) for f in d.get(part, ()))
            return cls(**d)
        except (TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"not a model declaration: {exc}") from None


def _param(p: dict[str, Any]) -> Param:
    p = dict(p)
    p["shape"] = tuple(p.get("shape", ()))
    p["labels"] = tuple(p.get("labels", ()))
    if p.get("range") is not None:
        p["range"] = tuple(float(x) for x in p["range"])
    return Param(**p)


def _slot_field(f: dict[str, Any]) -> SlotField:
    f = dict(f)
    if f.get("range") is not None:
        f["range"] = tuple(float(x) for x in f["range"])
    return SlotField(**f)



@dataclass
class Recording:
    """What a model hands back when it records a batch (its `record(inputs, lengths)`): its
    declaration, resolved to its sizes, and one dict of numpy arrays per batch row, named as an
    Episode names them (see episode.py): "outputs" (probabilities) always; with memory "memory",
    "<group>.weights", "<group>.<stage or param>", "reads", "slot.<name>", "matrix.<name>",
    "coords". episode.record turns it into Episodes; a model never builds one itself.

    With the family's steps "inputs" each row's arrays are cut to its length already; with
    "passes" the episode has no per-step inputs, and only its last step is scored."""

    family: Family
    items: list[dict[str, Any]]


@dataclass(frozen=True, eq=False)
class _Chosen(Family):
    """A kind's declaration whose config chooses the family it builds (chosen_by_config)."""

    def resolve(self, config: Any) -> Family:
        return self.__dict__["_choose"](config).resolve(config)

    def __eq__(self, other) -> bool:
        return isinstance(other, Family) and self.to_dict() == other.to_dict()

    __hash__ = Family.__hash__


def chosen_by_config(default: Family, choose: Callable[[Any], Family]) -> Family:
    """The registry's declaration of a kind whose config picks one of several families (an
    encoder-decoder with attention or without; a pointer network or its fixed-output baseline):
    it reads, compares and serialises as `default`; `resolve(config)` is `choose(config)`, resolved."""
    chosen = _Chosen(**{f.name: getattr(default, f.name) for f in dataclasses.fields(default)})
    object.__setattr__(chosen, "_choose", choose)  # not a field: the declaration's data stay `default`'s
    return chosen
