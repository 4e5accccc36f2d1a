"""Episode: the recorded trace of one sequence, shaped by its model's declaration, and
`record()`, which makes one from any model of the contract.

An Episode holds numpy float32 arrays with named dimensions (t step, h head, n memory slot,
m word width) and the declaration of the model that made it (`family`, a contract.Family with
its head counts), which says what every array means. Every field but `family` is optional:

    inputs, outputs, targets   [T, I], [T, O], [T, O]   outputs are probabilities
    mask                       [T]       1 where an output is scored
    optimum                    [T, O]    the optimal predictor's outputs (n-grams' measure)
    memory                     [T+1, N, M]  before step 0, then after every step; or [N, M] when
                               it does not change (a read-only memory)
    reads                      [T, R, M]    read vectors of the group declared `reads`
    heads[group]               a HeadRecord per head group, in the family's order:
        .weights               [T, H, N]    the weighting each head used
        .stages[name]          [T, H, N]    the weightings that led to it, in the declared order
        .params[name]          [T, H] or [T, H, K]   each head's numbers at each step
    slot_state[name]           [T, N]       a number per slot after step t (a DNC's usage)
    slot_matrices[name]        [T, N, N]    a slot x slot matrix after step t (its temporal links)
    slot_coords                [N, 2]       the slots placed in a plane (a pointer network's points)
    slot_labels                N strings    the slots named (a memory network's sentences)

The NTM's episode: heads "read" and "write" with stages content, gated, shifted and params key,
beta, gate, shift, gamma (write heads also erase, add); `weights[t] @ memory[t] == reads[t]`,
and `replay_write(t)` rebuilds memory[t+1] from memory[t]. An LSTM baseline's has no memory.
`episode.read` and `episode.write` are heads["read"] and heads["write"] (None when absent).

Format version 3 keeps the declaration in the file's header. Versions 1 (NTM and LSTM episodes,
every head array fixed by name) and 2 (a "read" and a "write" group of any names) still load:
their declaration is read off their arrays (`infer_family`).

Files are safetensors (https://github.com/huggingface/safetensors: tensors plus a JSON
header, nothing executable) with the format name, version and metadata in the header, and
checksums of the data and header (see files.py): a damaged file raises FileFormatError naming
the damaged arrays. A loaded episode's `checksum` says "verified", or "absent" for a file
written before checksums existed. Files over MAX_EPISODE_BYTES are refused before reading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.numpy import save as st_save

from .config import to_dict
from .contract import MEASURES, Family, HeadGroup, Param, Recording, SlotField, Stage, check_name
from .errors import ConfigError, EpisodeArrayError, FileFormatError
from .files import MAX_EPISODE_BYTES, atomic_write, read_file, read_safetensors, seal, size_problem

FORMAT = "ntmviz-episode"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

SEQUENCE = ("inputs", "outputs", "targets", "mask", "optimum")  # [T, ...] arrays of the sequence
NORMALISED_TOLERANCE = 1e-3  # a normalised weighting's rows sum to 1 within this

# Version 1 files fixed the NTM's arrays by name; so did the NTM's version 2 files, under the
# generic names. What they mean, for upgrading such files (new files carry their declaration).
_V1_STAGES = ("content", "gated", "shifted")
_V1_PARAMS = (
    Param("key", "vector", ("M",), "k"), Param("beta", "number", (), "β", range=(0.0, 50.0), log=True),
    Param("gate", "number", (), "g", range=(0.0, 1.0)), Param("shift", "distribution", ("S",), "s", centred=True),
    Param("gamma", "number", (), "γ", range=(1.0, 10.0)),
)
_V1_WRITE_PARAMS = (Param("erase", "vector", ("M",), "e", signed=False), Param("add", "vector", ("M",), "a"))
_TITLES = {"ntm": "Neural Turing Machine", "lstm": "LSTM baseline", "memn2n": "End-to-end memory network"}

# The names meta["scoring"] took before measures (version 2 files): how they map.
_SCORINGS = {"bits": "bit_errors", "answer": "answer_errors"}


class HeadRecord:
    """One group of heads over an episode.

        weights   [T, H, N]  the weighting each head used (required)
        stages    {name: [T, H, N]}  the weightings that led to it, in order (optional); the NTM's
                  content -> gated -> shifted, a memory network's hops
        params    {name: [T, H] or [T, H, K]}  per-step head parameters (optional); the NTM's key,
                  beta, gate, shift, gamma (and erase, add on write heads)

    Stages and params read as attributes too (`rec.content`, `rec.key`); the NTM's stage names
    may be given as keywords: `HeadRecord(weights=w, content=c, key=k, ...)` files content /
    gated / shifted under stages and the rest under params.
    """

    def __init__(self, weights: np.ndarray, stages: dict[str, np.ndarray] | None = None,
                 params: dict[str, np.ndarray] | None = None, **named: np.ndarray | None):
        self.weights = weights
        self.stages = dict(stages or {})
        self.params = dict(params or {})
        for k, v in named.items():
            if v is not None:
                (self.stages if k in _V1_STAGES else self.params)[k] = v

    def __getattr__(self, name: str):
        # only called when normal lookup fails: a stage or param by name
        d = self.__dict__
        for part in ("stages", "params"):
            if name in d.get(part, {}):
                return d[part][name]
        raise AttributeError(f"this head record has no {name!r} (stages {list(d.get('stages', {}))}, "
                             f"params {list(d.get('params', {}))})")

    @property
    def heads(self) -> int:
        return self.weights.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        """{name: array}: params, then stages in order, then "weights" (names are unique)."""
        return {**self.params, **self.stages, "weights": self.weights}

    def __repr__(self) -> str:
        return (f"HeadRecord(weights {tuple(self.weights.shape)}, stages {list(self.stages)}, "
                f"params {list(self.params)})")


class Episode:
    """The recorded trace of one sequence (or of one answer of a model that attends to memory).
    See the module docstring for the fields and their shapes."""

    def __init__(self, inputs: np.ndarray | None = None, outputs: np.ndarray | None = None,
                 targets: np.ndarray | None = None, mask: np.ndarray | None = None,
                 memory: np.ndarray | None = None, reads: np.ndarray | None = None,
                 read: HeadRecord | None = None, write: HeadRecord | None = None, *,
                 heads: dict[str, HeadRecord] | None = None, optimum: np.ndarray | None = None,
                 slot_state: dict[str, np.ndarray] | None = None,
                 slot_matrices: dict[str, np.ndarray] | None = None, slot_coords: np.ndarray | None = None,
                 slot_labels: list[str] | None = None, family: Family | None = None,
                 meta: dict[str, Any] | None = None):
        self.inputs, self.outputs, self.targets, self.mask, self.optimum = inputs, outputs, targets, mask, optimum
        self.memory, self.reads = memory, reads
        self.heads: dict[str, HeadRecord] = dict(heads or {})
        for name, rec in (("read", read), ("write", write)):  # the NTM's groups, as keywords
            if rec is not None:
                self.heads[name] = rec
        self.slot_state: dict[str, np.ndarray] = dict(slot_state or {})
        self.slot_matrices: dict[str, np.ndarray] = dict(slot_matrices or {})
        self.slot_coords = slot_coords
        self.slot_labels = slot_labels
        self.meta: dict[str, Any] = dict(meta or {})
        self.family: Family = family if family is not None else infer_family(self)
        # "verified" or "absent" (a file from before checksums) when loaded from a file; None when
        # recorded. Not saved: it describes the file this episode was read from.
        self.checksum: str | None = None

    # ---- the NTM's two groups ---------------------------------------------------------------
    @property
    def read(self) -> HeadRecord | None:
        return self.heads.get("read")

    @read.setter
    def read(self, rec: HeadRecord | None) -> None:
        self._set_group("read", rec)

    @property
    def write(self) -> HeadRecord | None:
        return self.heads.get("write")

    @write.setter
    def write(self, rec: HeadRecord | None) -> None:
        self._set_group("write", rec)

    def _set_group(self, name: str, rec: HeadRecord | None) -> None:
        if rec is None:
            self.heads.pop(name, None)
        else:
            self.heads[name] = rec

    # ---- sizes -------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """T, the number of steps."""
        for a in (self.inputs, self.outputs):
            if a is not None:
                return a.shape[0]
        for rec in self.heads.values():
            return rec.weights.shape[0]
        return 0

    def __len__(self) -> int:
        return self.steps

    @property
    def has_memory(self) -> bool:
        return self.memory is not None

    @property
    def static_memory(self) -> bool:
        """True when memory is one [N, M] matrix for the whole episode (it does not change)."""
        return self.memory is not None and self.memory.ndim == 2

    @property
    def slots(self) -> int:
        """N (0 without memory)."""
        return self.memory.shape[-2] if self.has_memory else 0

    @property
    def width(self) -> int:
        """M (0 without memory)."""
        return self.memory.shape[-1] if self.has_memory else 0

    @property
    def title(self) -> str:
        """What made this episode, in words: the family's title ("Neural Turing Machine")."""
        return self.family.title

    def memory_before(self, t: int) -> np.ndarray:
        """The memory before step t: [N, M] (what step t read, in a family whose order is "read,
        write"; a "write, read" family's step t read memory_after(t))."""
        return self.memory if self.static_memory else self.memory[t]

    def memory_after(self, t: int) -> np.ndarray:
        """The memory after step t: [N, M] (the same matrix at every t when it is static)."""
        return self.memory if self.static_memory else self.memory[t + 1]

    def memory_frames(self) -> np.ndarray:
        """[T+1, N, M]: the memory before step 0 and after each step (a static memory repeated,
        as a read-only view)."""
        if self.static_memory:
            return np.broadcast_to(self.memory, (self.steps + 1, *self.memory.shape))
        return self.memory

    def head_records(self) -> list[tuple[str, HeadRecord]]:
        """[(group, record)] in the family's order."""
        order = [g.name for g in self.family.groups] or list(self.heads)
        return [(name, self.heads[name]) for name in order if name in self.heads]

    def head_list(self) -> list[tuple[str, int, str, HeadRecord]]:
        """Every head in order: (group, index in its group, label "read 1", record)."""
        return [(g, h, f"{g} {h + 1}", rec) for g, rec in self.head_records() for h in range(rec.heads)]

    # ---- scores ----------------------------------------------------------------------------
    @property
    def measure(self) -> str:
        """How outputs are scored (a name in contract.MEASURES): the family's."""
        return self.family.measure

    @property
    def error_name(self) -> str:
        """What `score()` counts, in words: "bit errors", "wrong answers", ..."""
        return MEASURES[self.measure].unit

    @property
    def scoring(self) -> str:
        """"answer" when a step's outputs are a distribution over answers, else "bits"."""
        return "answer" if self.measure == "answer_errors" else "bits"

    def scored(self) -> np.ndarray:
        """[T] True where an output is scored."""
        return np.ones(self.steps, bool) if self.mask is None else self.mask > 0

    def step_scores(self) -> np.ndarray:
        """The measure at each step, 0 on unscored steps: [T] (needs targets and outputs).

        bit_errors: wrong bits; answer_errors: 1 where the most likely output is not the
        target's; bits_above_optimum: the step's cross-entropy in bits minus the optimum's."""
        if self.targets is None or self.outputs is None:
            raise ValueError("this episode has no targets and outputs to compare")
        if self.measure == "answer_errors":
            wrong = (self.outputs.argmax(-1) != self.targets.argmax(-1)).astype(np.float32)
        elif self.measure == "bits_above_optimum":
            if self.optimum is None:
                raise ValueError("this episode's measure needs the optimum's outputs, which it lacks")
            wrong = (_bits(self.outputs, self.targets) - _bits(self.optimum, self.targets)).astype(np.float32)
        else:
            wrong = ((self.outputs > 0.5) != (self.targets > 0.5)).sum(-1).astype(np.float32)
        return wrong * self.scored()

    def score(self) -> float:
        """The episode's measure: the sum of `step_scores()`, or their mean over scored steps
        for a measure that is a mean (bits above the optimum per prediction)."""
        s = self.step_scores()
        if MEASURES[self.measure].total == "mean":
            n = int(self.scored().sum())
            return float(s.sum() / n) if n else 0.0
        return float(s.sum())

    def errors(self) -> np.ndarray:
        """`step_scores()` (kept under its older name)."""
        return self.step_scores()

    def bit_errors(self) -> np.ndarray:
        """Wrong bits per step, counting only scored steps: [T] (needs targets)."""
        if self.targets is None or self.outputs is None:
            raise ValueError("this episode has no targets and outputs to compare")
        wrong = ((self.outputs > 0.5) != (self.targets > 0.5)).sum(-1).astype(np.float32)
        return wrong * self.scored()

    def opening_step(self) -> int:
        """A step worth showing first: the middle of the scored steps (a copy's playback, with
        the memory full), else the middle of the episode."""
        if self.steps == 0:
            return 0
        scored = np.flatnonzero(self.scored()) if (self.targets is not None or self.mask is not None) else []
        if len(scored):
            return int(scored[len(scored) // 2])
        return self.steps // 2

    def replay_write(self, t: int) -> np.ndarray:
        """memory[t+1] rebuilt from memory[t] and the recorded write at step t  -> [N, M] (NTM)."""
        w, e, a = self.write.weights[t], self.write.erase[t], self.write.add[t]  # [W,N] [W,M] [W,M]
        keep = np.prod(1 - w[:, :, None] * e[:, None, :], axis=0)
        return self.memory[t] * keep + w.T @ a

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array under a flat name: "inputs", "memory", "read.weights", "write.erase",
        "slot.usage", "matrix.links", "coords", ..."""
        out = {k: getattr(self, k) for k in (*SEQUENCE, "memory", "reads")}
        for group, rec in self.head_records():
            out.update({f"{group}.{k}": v for k, v in rec.arrays().items()})
        out.update({f"slot.{k}": v for k, v in self.slot_state.items()})
        out.update({f"matrix.{k}": v for k, v in self.slot_matrices.items()})
        out["coords"] = self.slot_coords
        return {k: v for k, v in out.items() if v is not None}

    # ---- making one from your own model's arrays -------------------------------------------
    @classmethod
    def from_arrays(cls, memory, read_weights=None, write_weights=None, inputs=None, outputs=None, targets=None,
                    mask=None, stages=None, params=None, slot_labels=None, meta=None, *, heads=None,
                    normalised=True, reads=None, optimum=None, slot_state=None, slot_matrices=None,
                    slot_coords=None, title=None, measure=None, order="read, write", family=None) -> "Episode":
        """An episode of any model that attends over a memory, from numpy arrays or torch tensors.

            memory          [T+1, N, M] (before step 0, then after each step) or [N, M] (static)
            read_weights    [T, H, N] (or [T, N] for one head): the read heads' weightings
            write_weights   [T, W, N] (or [T, N]), optional
            heads           {group: [T, H, N]}: weightings of any groups of heads, in order,
                            instead of (or besides) read_weights and write_weights
            normalised      True: each row of a weighting sums to 1 (a softmax over slots); False:
                            rows may sum to less (a DNC's gated write, its mixed read modes),
                            within 0 .. 1; or {group: bool}
            inputs          [T, I]; outputs, targets [T, O]  (optional)
            mask            [T]: 1 where an output is scored, 0 where not (optional: all scored)
            stages          {name: [T, H, N]}: the read heads' weightings before the final one, in
                            order (e.g. a memory network's hops); or {group: {name: ...}}
            params          {name: [T, H] or [T, H, K]}: per-step head parameters, or per group as above
            reads           [T, R, M]: the read heads' read vectors (optional)
            slot_state      {name: [T, N]}: a number per slot after each step (usage, strengths)
            slot_matrices   {name: [T, N, N]}: a slot x slot matrix after each step (temporal links)
            slot_coords     [N, 2]: the slots placed in a plane
            slot_labels     N strings naming the slots (shown as text on the slot axes)
            optimum         [T, O]: the optimal predictor's outputs (measure "bits_above_optimum")
            meta            a JSON-serialisable dict (task, model, ...)
            title           what made it, for the page's title (default "your model")
            order           "read, write" (default: a step reads, then writes, as the NTM) or
                            "write, read" (it reads what it has just written, as a DNC)
            measure         how outputs are scored: "bit_errors" (default), "answer_errors",
                            "bits_above_optimum"
            family          a contract.Family that declares all of this (docs of stages and
                            params, kinds of param); by default it is read off the arrays

        A step is whatever your model does once (a memory network's hop is a step). Raises
        EpisodeArrayError naming the array and the shape expected when something does not fit.
        """
        mem = _as_array("memory", memory)
        if mem.ndim not in (2, 3):
            raise EpisodeArrayError(f"memory has shape {mem.shape}, expected [N, M] or [T+1, N, M]")
        N = mem.shape[-2]
        groups = _weight_groups(read_weights, write_weights, heads)
        if not groups:
            raise EpisodeArrayError("give the heads' weightings: read_weights, or heads={group: [T, H, N]}")
        norm = normalised if isinstance(normalised, dict) else {g: bool(normalised) for g in groups}
        unknown = set(norm) - set(groups)
        if unknown:
            raise EpisodeArrayError(f"normalised names groups with no weightings: {sorted(unknown)}")
        weights: dict[str, np.ndarray] = {}
        T = None
        for group, w in groups.items():
            label = {"read": "read_weights", "write": "write_weights"}.get(group, f"heads[{group!r}]")
            weights[group] = _weights(label, w, T, N, norm.get(group, True))
            T = weights[group].shape[0]
        if mem.ndim == 3 and mem.shape[0] != T + 1:
            raise EpisodeArrayError(f"memory has shape {mem.shape}, expected [{T + 1}, {N}, M] "
                                    f"(T+1 frames for T={T} steps) or a static [{N}, M]")
        seq = {}
        for label, a in (("inputs", inputs), ("outputs", outputs), ("targets", targets), ("optimum", optimum)):
            if a is not None:
                a = _as_array(label, a)
                if a.ndim != 2 or a.shape[0] != T:
                    raise EpisodeArrayError(f"{label} has shape {a.shape}, expected [{T}, width]")
                seq[label] = a
        for label in ("targets", "optimum"):
            if label in seq and "outputs" in seq and seq[label].shape != seq["outputs"].shape:
                raise EpisodeArrayError(f"{label} has shape {seq[label].shape}, expected "
                                        f"{seq['outputs'].shape} (the shape of outputs)")
        if mask is not None:
            mask = _as_array("mask", mask)
            if mask.shape != (T,):
                raise EpisodeArrayError(f"mask has shape {mask.shape}, expected [{T}]")
            if not np.isin(mask, (0.0, 1.0)).all():
                raise EpisodeArrayError("mask must hold only 0 (not scored) and 1 (scored)")
        extra = {g: {"stages": {}, "params": {}} for g in weights}
        for part, given in (("stages", stages), ("params", params)):
            if given is None:
                continue
            if not isinstance(given, dict):
                raise EpisodeArrayError(f"{part} must be a dict {{name: array}}, got {type(given).__name__}")
            per_group = given if given and all(isinstance(v, dict) for v in given.values()) else {"read": given}
            for group, named in per_group.items():
                if group not in weights:
                    raise EpisodeArrayError(f"{part} for {group!r} heads given without their weightings")
                w = weights[group]
                for name, a in named.items():
                    _check_field(f"{part} name", name)
                    label = f"{part}[{name!r}]" + (f" ({group} heads)" if group != "read" else "")
                    a = _as_array(label, a)
                    if a.ndim == w.ndim - 1 and part == "stages":
                        a = a[:, None]  # [T, N]: one head
                    if part == "stages" and a.shape != w.shape:
                        raise EpisodeArrayError(f"{label} has shape {a.shape}, expected {tuple(w.shape)} [T, H, N]")
                    if part == "params" and (a.ndim not in (2, 3) or a.shape[:2] != w.shape[:2]):
                        raise EpisodeArrayError(f"{label} has shape {a.shape}, expected "
                                                f"[{w.shape[0]}, {w.shape[1]}] or [{w.shape[0]}, {w.shape[1]}, K]")
                    extra[group][part][name] = a
        for group in weights:
            clash = set(extra[group]["stages"]) & set(extra[group]["params"])
            if clash:
                raise EpisodeArrayError(f"the names {sorted(clash)} are both a stage and a param")
        if reads is not None:
            if "read" not in weights:
                raise EpisodeArrayError("reads given without read_weights")
            reads = _as_array("reads", reads)
            if reads.shape != (T, weights["read"].shape[1], mem.shape[-1]):
                raise EpisodeArrayError(f"reads has shape {reads.shape}, expected "
                                        f"{(T, weights['read'].shape[1], mem.shape[-1])} [T, R, M]")
        state = _named_arrays("slot_state", slot_state, (T, N))
        matrices = _named_arrays("slot_matrices", slot_matrices, (T, N, N))
        coords = None
        if slot_coords is not None:
            coords = _as_array("slot_coords", slot_coords)
            if coords.shape != (N, 2):
                raise EpisodeArrayError(f"slot_coords has shape {coords.shape}, expected [{N}, 2] (x, y per slot)")
        labels = None
        if slot_labels is not None:
            if isinstance(slot_labels, (str, bytes)) or not hasattr(slot_labels, "__len__"):
                raise EpisodeArrayError(f"slot_labels must be a list of {N} strings")
            labels = [str(x) for x in slot_labels]
            if len(labels) != N:
                raise EpisodeArrayError(f"slot_labels has {len(labels)} labels, expected {N} (one per slot)")
        meta = dict(meta or {})
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise EpisodeArrayError(f"meta is not JSON-serialisable ({exc})") from None
        if measure is None:
            scoring = meta.get("scoring", "bits")
            if scoring not in _SCORINGS:
                raise EpisodeArrayError(f"meta['scoring'] is {scoring!r}, expected one of {sorted(_SCORINGS)}")
            measure = _SCORINGS[scoring] if family is None else family.measure
        if measure not in MEASURES:
            raise EpisodeArrayError(f"measure {measure!r} is not one of {sorted(MEASURES)}")
        if "optimum" in MEASURES[measure].needs and "optimum" not in seq:
            raise EpisodeArrayError(f"measure {measure!r} needs the optimum's outputs (optimum=[T, O])")
        meta.setdefault("format_version", VERSION)
        records = {g: HeadRecord(w, **extra[g]) for g, w in weights.items()}
        episode = cls(inputs=seq.get("inputs"), outputs=seq.get("outputs"), targets=seq.get("targets"), mask=mask,
                      optimum=seq.get("optimum"), memory=mem, reads=reads, heads=records, slot_state=state,
                      slot_matrices=matrices, slot_coords=coords, slot_labels=labels, meta=meta,
                      family=family)
        if family is None:
            try:
                episode.family = infer_family(episode, title=title or "your model", measure=measure,
                                              normalised=norm).with_changes(order=order)
            except ConfigError as exc:
                raise EpisodeArrayError(str(exc)) from None
        try:
            episode.validate("from_arrays")
        except FileFormatError as exc:
            raise EpisodeArrayError(str(exc).removeprefix("from_arrays: ")) from None
        return episode

    # ---- files -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The bytes of this episode's file (the inverse of `from_bytes`), checksums included.

        Version 3: the arrays under their flat names (`arrays()`); the header lists them
        ("contents") and holds the declaration ("family"), the metadata and the slot labels."""
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.arrays().items()}
        header = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(self.meta),
                  "contents": json.dumps(sorted(arrays)), "family": json.dumps(self.family.to_dict())}
        if self.slot_labels is not None:
            header["slot_labels"] = json.dumps(list(self.slot_labels))
        return seal(st_save(arrays, metadata=header))

    @property
    def nbytes(self) -> int:
        """The size of this episode's arrays in a file (float32), in bytes."""
        return sum(int(np.prod(v.shape)) * 4 for v in self.arrays().values())

    def save(self, path: str | os.PathLike) -> Path:
        """Write one self-describing file, atomically (a temp file, then a rename)."""
        return atomic_write(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Episode":
        """Read a file written by `save` (format version 3, or 1 and 2 from before); anything
        else, a damaged file or one over MAX_EPISODE_BYTES (checked before reading) raises
        FileFormatError."""
        return cls.from_bytes(read_file(path, "episode", MAX_EPISODE_BYTES), name=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "episode") -> "Episode":
        """Parse the bytes of an episode file (as uploaded in the app)."""
        problem = size_problem(len(data), MAX_EPISODE_BYTES)
        if problem:
            raise FileFormatError(f"{name}: {problem}")
        header, arrays, checksum = read_safetensors(data, name, FORMAT, READABLE_VERSIONS)
        meta = _header_json(header, "meta", {}, dict, name)
        version = header.get("version")
        if version == "1":
            episode = _unflatten_v1(arrays, meta, name)
        elif version == "2":
            episode = _unflatten_v2(arrays, header, meta, name)
        else:
            episode = _unflatten(arrays, header, meta, name)
        episode.validate(name)
        episode.checksum = checksum
        return episode

    def validate(self, name: str = "episode") -> None:
        """Check every array's shape against the others and the declaration; FileFormatError if not."""
        T = self.steps

        def bad(msg: str) -> FileFormatError:
            return FileFormatError(f"{name}: {msg}")

        for k in SEQUENCE:
            a = getattr(self, k)
            want_ndim = 1 if k == "mask" else 2
            if a is not None and (a.ndim != want_ndim or a.shape[0] != T):
                raise bad(f"{k} {a.shape} is not [{T}{', width' if want_ndim == 2 else ''}]")
        for k in ("targets", "optimum"):
            a = getattr(self, k)
            if a is not None and self.outputs is not None and a.shape != self.outputs.shape:
                raise bad(f"{k} {a.shape} do not match outputs {self.outputs.shape}")
        family = self.family
        if not family.has_memory:
            if self.has_memory or self.heads or self.reads is not None:
                raise bad("the episode has memory or heads, though its model declares none")
            if self.inputs is None and self.outputs is None:
                raise bad("the episode has neither memory nor inputs and outputs")
            return
        if not self.has_memory:
            raise bad("memory is missing, though the episode has heads")
        if not ((self.memory.ndim == 3 and self.memory.shape[0] == T + 1) or self.memory.ndim == 2):
            raise bad(f"memory {self.memory.shape} is not [{T + 1}, N, M] or [N, M]")
        if family.memory == "written" and self.static_memory:
            raise bad("the model writes its memory, but the episode's memory is one static matrix")
        N, M = self.memory.shape[-2:]
        declared = [g.name for g in family.groups]
        if set(declared) != set(self.heads):
            raise bad(f"head groups {sorted(self.heads)} do not match the declaration's {declared}")
        if not self.heads:
            raise bad("the episode has memory but no heads")
        for g in family.groups:
            rec = self.heads[g.name]
            H = rec.heads if rec.weights.ndim == 3 else -1
            if rec.weights.shape != (T, H, N) or (isinstance(g.count, int) and H != g.count):
                raise bad(f"{g.name}.weights is {rec.weights.shape}, expected [{T}, {g.count}, {N}]")
            if list(rec.stages) != [s.name for s in g.stages] or set(rec.params) != {p.name for p in g.params}:
                raise bad(f"{g.name} head arrays (stages {list(rec.stages)}, params {sorted(rec.params)}) do not "
                          f"match the declaration (stages {[s.name for s in g.stages]}, params "
                          f"{[p.name for p in g.params]})")
            for k, a in rec.stages.items():
                if a.shape != (T, H, N):
                    raise bad(f"{g.name}.{k} is {a.shape}, expected {(T, H, N)}")
            for p in g.params:
                a = rec.params[p.name]
                if a.ndim != 2 + len(p.shape) or a.shape[:2] != (T, H):
                    raise bad(f"{g.name}.{p.name} is {a.shape}, expected [{T}, {H}"
                              + "".join(f", {d}" for d in p.shape) + "]")
        reader = next((g.name for g in family.groups if g.reads), None)
        if self.reads is not None:
            R = self.heads[reader].heads if reader else -1
            if self.reads.shape != (T, R, M):
                raise bad(f"reads are {self.reads.shape}, expected {(T, R, M)}")
        for part, shape, fields in (("slot_state", (T, N), family.slot_state),
                                    ("slot_matrices", (T, N, N), family.slot_matrices)):
            named = getattr(self, part)
            if set(named) != {f.name for f in fields}:
                raise bad(f"{part} {sorted(named)} do not match the declaration's {[f.name for f in fields]}")
            for k, a in named.items():
                if a.shape != shape:
                    raise bad(f"{part}[{k!r}] is {a.shape}, expected {shape}")
        if (self.slot_coords is not None) != family.slot_coords:
            raise bad("slot coordinates are " + ("missing" if family.slot_coords else "not declared"))
        if self.slot_coords is not None and self.slot_coords.shape != (N, 2):
            raise bad(f"slot_coords are {self.slot_coords.shape}, expected {(N, 2)}")
        if self.slot_labels is not None and (len(self.slot_labels) != N
                                             or not all(isinstance(x, str) for x in self.slot_labels)):
            raise bad(f"slot_labels must be {N} strings")
        for need in MEASURES[family.measure].needs:
            if getattr(self, need) is None and self.targets is not None:
                raise bad(f"its measure {family.measure!r} needs the {need} array, which is missing")

    def __repr__(self) -> str:
        size = f"N={self.slots}, M={self.width}, " if self.has_memory else ""
        size += "static memory, " if self.static_memory else ""
        return f"Episode({self.family.name}, T={self.steps}, {size}task={self.meta.get('task')!r})"


# ---- the declaration of an episode that came without one ---------------------------------------

def infer_family(episode: Episode, title: str | None = None, measure: str | None = None,
                 normalised: dict[str, bool] | None = None) -> Family:
    """The declaration an episode's arrays imply: its groups with their stages and params in
    order (a stage signed where it has a value < 0; a [T, H] param is a number, a [T, H, K] one a
    vector, or a distribution where its rows sum to 1), its slot state and matrices, coordinates and labels. Version 1 and 2 NTM
    episodes (the NTM's array names) get the NTM's meanings. Title and measure from the
    metadata ("model" kind, "scoring") where not given."""
    meta = episode.meta or {}
    kind = meta.get("model", {}).get("kind") if isinstance(meta.get("model"), dict) else None
    if measure is None:
        measure = _SCORINGS.get(str(meta.get("scoring", "bits")), "bit_errors")
    title = title or _TITLES.get(kind, "memory model" if episode.has_memory else "model without memory")
    groups = []
    for name, rec in episode.heads.items():
        ntm = _ntm_names(name, rec)
        params = []
        for p, a in rec.params.items():
            if ntm:
                params.append(next(q for q in _V1_PARAMS + _V1_WRITE_PARAMS if q.name == p))
            elif a.ndim == 2:
                params.append(Param(p))
            elif np.all(a >= 0) and np.allclose(a.sum(-1), 1, atol=NORMALISED_TOLERANCE):
                params.append(Param(p, "distribution", ("K",)))
            else:
                params.append(Param(p, "vector", ("K",), signed=bool(np.any(a < 0))))
        norm = (normalised or {}).get(name, True)
        # a stage with a value < 0 (energies before a softmax) is signed, drawn whole from a centre line
        stages = tuple(Stage(s, signed=bool(np.any(np.asarray(a) < 0))) for s, a in rec.stages.items())
        groups.append(HeadGroup(name, rec.heads, stages, tuple(params), normalised=norm,
                                reads=name == "read" and episode.reads is not None,
                                writes=name == "write" and not episode.static_memory))
    memory = "none" if not episode.has_memory else "read-only" if episode.static_memory or "write" not in \
        episode.heads else "written"
    return Family(name=kind or "custom", title=title, groups=tuple(groups), memory=memory,
                  slot_state=tuple(SlotField(k) for k in episode.slot_state),
                  slot_matrices=tuple(SlotField(k) for k in episode.slot_matrices),
                  slot_coords=episode.slot_coords is not None, slot_labels=episode.slot_labels is not None,
                  measure=measure)


def _ntm_names(group: str, rec: HeadRecord) -> bool:
    """Whether a record holds exactly the NTM's arrays (as version 1 and the NTM's version 2 files do)."""
    params = [p.name for p in _V1_PARAMS] + ([p.name for p in _V1_WRITE_PARAMS] if group == "write" else [])
    return list(rec.stages) == list(_V1_STAGES) and set(rec.params) == set(params)


# ---- recording ---------------------------------------------------------------------------

def record(
    model: torch.nn.Module,
    inputs,
    targets: torch.Tensor | np.ndarray | None = None,
    *,
    mask: torch.Tensor | np.ndarray | None = None,
    lengths: Sequence[int] | torch.Tensor | None = None,
    meta: dict[str, Any] | None = None,
    task: Any = None,
) -> Episode | list[Episode]:
    """Run `model` on inputs and keep every step's trace.

    inputs [T, I] -> one Episode; [B, T, I] -> a list of B Episodes. `inputs` may also be a
    task Batch (with .inputs, .targets, .mask, .lengths). `lengths` [B] trims each episode
    to its own number of steps when a batch mixes lengths. `task`: the task the batch came
    from, which adds what it knows (channel or slot labels, metadata, the optimum's outputs)
    and scores the episodes by its measure.

    The model records itself (its `record(inputs, lengths)` returns a contract.Recording under
    its declaration's names: the NTM runs its training forward keeping every step); this runs it
    under inference mode and in eval mode, and builds the Episodes.
    """
    if hasattr(inputs, "inputs"):  # a task Batch
        batch = inputs
        inputs, targets = batch.inputs, batch.targets if targets is None else targets
        mask = batch.mask if mask is None else mask
        lengths = getattr(batch, "lengths", None) if lengths is None else lengths
    else:
        batch = None
    device = model.device
    dtype = next(model.parameters()).dtype
    x = torch.as_tensor(inputs, dtype=dtype, device=device)
    single = x.dim() == 2
    if single:
        x = x.unsqueeze(0)
    expected = model.config.input_size
    if x.dim() != 3 or x.shape[-1] != expected:
        raise ConfigError(f"inputs must be [T, {expected}] or [B, T, {expected}], got {list(x.shape)}")
    B, T, _ = x.shape
    if T == 0:
        raise ConfigError("inputs have no time steps")
    if lengths is None:
        lengths = [T] * B
    lengths = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            recording: Recording = model.record(x, lengths)
    finally:
        model.train(was_training)

    def host(a):
        if a is None:
            return None
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        a = a.astype(np.float32)
        return a[None] if single else a

    targets_np, mask_np = host(targets), host(mask)
    x_np = x.float().cpu().numpy()
    family = recording.family
    if task is not None:
        family = family.with_changes(measure=task.measure)
    base_meta = {"format_version": VERSION, "model": to_dict(model.config), **(meta or {})}
    if task is not None:
        base_meta = {"task": task.name, "task_config": task.to_dict(), **base_meta}
    outputs = [item["outputs"] for item in recording.items]
    extras = task.episode_extras(batch, outputs) if task is not None and batch is not None \
        else [{} for _ in outputs]
    episodes = []
    for b, (item, extra) in enumerate(zip(recording.items, extras)):
        n = lengths[b]
        if family.steps == "passes":  # the answer is read after the last pass: only it is scored
            H = item["outputs"].shape[0]
            sequence = {"targets": None if targets_np is None else np.repeat(
                targets_np[b, _first_scored(mask_np, b)][None], H, 0),
                "mask": np.eye(H, dtype=np.float32)[-1]}
        else:
            sequence = {"inputs": x_np[b, :n], "targets": None if targets_np is None else targets_np[b, :n],
                        "mask": None if mask_np is None else mask_np[b, :n]}
        episodes.append(_from_item(item, family, {**base_meta, **extra.get("meta", {})}, sequence,
                                   # a task's labels name the slots of a family whose slots are its inputs
                                   extra.get("slot_labels") if family.slot_labels else None,
                                   extra.get("optimum")))
    return episodes[0] if single else episodes


def _first_scored(mask: np.ndarray | None, b: int) -> int:
    """The first scored step of row b (0 without a mask)."""
    if mask is None:
        return 0
    scored = np.flatnonzero(mask[b] > 0)
    return int(scored[0]) if len(scored) else 0


def _from_item(item: dict[str, np.ndarray], family: Family, meta: dict[str, Any], sequence: dict[str, Any],
               slot_labels: list[str] | None, optimum: np.ndarray | None) -> Episode:
    """One Episode from a Recording's item (arrays named as Episode.arrays() names them)."""
    heads = {}
    for g in family.groups:
        heads[g.name] = HeadRecord(item[f"{g.name}.weights"],
                                   stages={s.name: item[f"{g.name}.{s.name}"] for s in g.stages},
                                   params={p.name: item[f"{g.name}.{p.name}"] for p in g.params})
    return Episode(
        outputs=item["outputs"], memory=item.get("memory"), reads=item.get("reads"), heads=heads,
        slot_state={f.name: item[f"slot.{f.name}"] for f in family.slot_state},
        slot_matrices={f.name: item[f"matrix.{f.name}"] for f in family.slot_matrices},
        slot_coords=item.get("coords"), slot_labels=slot_labels, optimum=optimum, family=family, meta=meta,
        **sequence)


def _bits(p: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cross-entropy in bits of probabilities p [T, O] against 0/1 targets, summed over O: [T]."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(targets, np.float64)
    return -(y * np.log2(p) + (1 - y) * np.log2(1 - p)).sum(-1)


def _as_array(name: str, a) -> np.ndarray:
    """A numpy array or torch tensor as float32 numpy; EpisodeArrayError if it is not numbers."""
    if isinstance(a, torch.Tensor):
        a = a.detach().float().cpu().numpy()
    try:
        out = np.asarray(a, dtype=np.float32)
    except (TypeError, ValueError):
        raise EpisodeArrayError(f"{name} is not an array of numbers ({type(a).__name__})") from None
    if not np.isfinite(out).all():
        raise EpisodeArrayError(f"{name} has NaN or infinite values")
    return out


def _weight_groups(read_weights, write_weights, heads) -> dict[str, Any]:
    """{group: weightings} in order: read, write, then the groups of `heads`."""
    out = {}
    for group, w in (("read", read_weights), ("write", write_weights)):
        if w is not None:
            out[group] = w
    if heads is not None:
        if not isinstance(heads, dict):
            raise EpisodeArrayError(f"heads must be a dict {{group: [T, H, N]}}, got {type(heads).__name__}")
        for group, w in heads.items():
            try:
                check_name("head group", group)
            except ConfigError as exc:
                raise EpisodeArrayError(str(exc)) from None
            if group in out:
                raise EpisodeArrayError(f"the {group!r} weightings are given twice")
            out[group] = w
    return out


def _weights(name: str, a, T: int | None, N: int, normalised: bool = True) -> np.ndarray:
    """Head weightings [T, H, N] (or [T, N], one head), checked to be distributions over N slots
    (normalised) or weightings that sum to at most 1 (not normalised)."""
    w = _as_array(name, a)
    if w.ndim == 2:
        w = w[:, None]
    t = "T" if T is None else str(T)
    if w.ndim != 3 or w.shape[2] != N or (T is not None and w.shape[0] != T) or 0 in w.shape[:2]:
        raise EpisodeArrayError(f"{name} has shape {w.shape}, expected [{t}, H, {N}] (steps, heads, "
                                f"the memory's {N} slots)")
    if (w < 0).any():
        raise EpisodeArrayError(f"{name} has negative weights; expected [{t}, H, {N}] weightings over slots")
    sums = w.sum(-1, dtype=np.float64)
    if normalised:
        worst = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
        if abs(sums[worst] - 1) > NORMALISED_TOLERANCE:
            raise EpisodeArrayError(
                f"{name}[{worst[0]}, {worst[1]}] sums to {sums[worst]:.4g}; expected each row of {name} "
                f"[{w.shape[0]}, {w.shape[1]}, {N}] to sum to 1 (a softmax over slots), or pass "
                f"normalised=False for weightings that may sum to less (a gated write)")
    else:
        worst = np.unravel_index(np.argmax(sums), sums.shape)
        if sums[worst] > 1 + NORMALISED_TOLERANCE:
            raise EpisodeArrayError(f"{name}[{worst[0]}, {worst[1]}] sums to {sums[worst]:.4g}; weightings "
                                    f"that are not normalised must still sum to at most 1")
    return w


def _named_arrays(what: str, given, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """{name: array} of the given shape (slot state, slot matrices); EpisodeArrayError if not."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise EpisodeArrayError(f"{what} must be a dict {{name: array}}, got {type(given).__name__}")
    out = {}
    for name, a in given.items():
        _check_field(f"{what} name", name)
        a = _as_array(f"{what}[{name!r}]", a)
        if a.shape != shape:
            dims = "[T, N]" if len(shape) == 2 else "[T, N, N]"
            raise EpisodeArrayError(f"{what}[{name!r}] has shape {a.shape}, expected {list(shape)} {dims}: "
                                    f"its value after each step")
        out[name] = a
    return out


def _check_field(what: str, name) -> None:
    try:
        check_name(what, name)
    except ConfigError as exc:
        raise EpisodeArrayError(str(exc)) from None


def _header_json(header: dict, key: str, default, kind: type, name: str):
    try:
        value = json.loads(header[key]) if key in header else default
    except json.JSONDecodeError:
        raise FileFormatError(f"{name}: episode {key} is not valid JSON") from None
    if not isinstance(value, kind):
        raise FileFormatError(f"{name}: episode {key} is not of the JSON type it should be")
    return value


def _check_contents(arrays: dict[str, np.ndarray], header: dict, name: str) -> None:
    contents = _header_json(header, "contents", sorted(arrays), list, name)
    missing, unknown = set(contents) - set(arrays), set(arrays) - set(contents)
    if missing or unknown:
        raise FileFormatError(f"{name}: episode arrays missing {sorted(missing)}"
                              + (f", unknown {sorted(unknown)}" if unknown else ""))


def _unflatten(arrays: dict[str, np.ndarray], header: dict, meta: dict, name: str) -> Episode:
    """A version 3 file: its declaration in the header names every array."""
    _check_contents(arrays, header, name)
    try:
        family = Family.from_dict(_header_json(header, "family", None, dict, name))
    except ConfigError as exc:
        raise FileFormatError(f"{name}: {exc}") from None
    labels = _header_json(header, "slot_labels", None, (list, type(None)), name)
    expected = {k for k in (*SEQUENCE, "memory", "reads", "coords") if k in arrays}
    heads = {}
    for g in family.groups:
        fields = [*g.stage_names, *(p.name for p in g.params)]
        missing = [f"{g.name}.{f}" for f in fields if f"{g.name}.{f}" not in arrays]
        if missing:
            raise FileFormatError(f"{name}: episode arrays missing {missing}")
        heads[g.name] = HeadRecord(arrays[f"{g.name}.weights"],
                                   stages={s.name: arrays[f"{g.name}.{s.name}"] for s in g.stages},
                                   params={p.name: arrays[f"{g.name}.{p.name}"] for p in g.params})
        expected |= {f"{g.name}.{f}" for f in fields}
    named = {}
    for part, prefix, fields in (("slot_state", "slot.", family.slot_state),
                                 ("slot_matrices", "matrix.", family.slot_matrices)):
        missing = [prefix + f.name for f in fields if prefix + f.name not in arrays]
        if missing:
            raise FileFormatError(f"{name}: episode arrays missing {missing}")
        named[part] = {f.name: arrays[prefix + f.name] for f in fields}
        expected |= {prefix + f.name for f in fields}
    unknown = set(arrays) - expected
    if unknown:
        raise FileFormatError(f"{name}: episode arrays {sorted(unknown)} are not in its declaration")
    return Episode(**{k: arrays.get(k) for k in (*SEQUENCE, "memory", "reads")}, heads=heads,
                   slot_coords=arrays.get("coords"), slot_labels=labels, family=family, meta=meta, **named)


def _unflatten_v2(arrays: dict[str, np.ndarray], header: dict, meta: dict, name: str) -> Episode:
    """A version 2 file: a "read" and a "write" group, the header's heads the stage order."""
    _check_contents(arrays, header, name)
    heads_spec = _header_json(header, "heads", {}, dict, name)
    labels = _header_json(header, "slot_labels", None, (list, type(None)), name)
    records = {}
    for kind in ("read", "write"):
        prefix = kind + "."
        part = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        spec = heads_spec.get(kind)
        if not part and spec is None:
            continue
        if not isinstance(spec, dict) or "weights" not in part:
            raise FileFormatError(f"{name}: {kind} head arrays or their description are missing")
        stages, params = list(spec.get("stages", [])), list(spec.get("params", []))
        named = set(stages) | set(params) | {"weights"}
        if set(part) != named or len(named) != len(stages) + len(params) + 1:
            raise FileFormatError(f"{name}: {kind} head arrays {sorted(part)} do not match their "
                                  f"description (stages {stages}, params {params})")
        records[kind] = HeadRecord(part["weights"], stages={k: part[k] for k in stages},
                                   params={k: part[k] for k in params})
    unknown = {k for k in arrays if k.split(".")[0] not in ("read", "write")} - {*SEQUENCE, "memory", "reads"}
    if unknown:
        raise FileFormatError(f"{name}: unknown episode arrays {sorted(unknown)}")
    return Episode(**{k: arrays.get(k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")},
                   heads=records, meta=meta, slot_labels=labels)


def _unflatten_v1(arrays: dict[str, np.ndarray], meta: dict, name: str) -> Episode:
    """A version 1 file: an NTM's (or an LSTM's) episode, every head array fixed by name."""
    for required in ("inputs", "outputs"):
        if required not in arrays:
            raise FileFormatError(f"{name}: episode has no {required!r} array")
    if "memory" in arrays:
        for required in ("reads", "read.weights", "write.weights"):
            if required not in arrays:
                raise FileFormatError(f"{name}: episode has no {required!r} array")
    heads = {}
    params = [p.name for p in _V1_PARAMS]
    for kind in ("read", "write"):
        prefix = kind + "."
        part = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if part:
            names = params + ([p.name for p in _V1_WRITE_PARAMS] if kind == "write" else [])
            required = set(names) | set(_V1_STAGES) | {"weights"}
            missing, unknown = required - set(part), set(part) - required
            if missing or unknown:
                raise FileFormatError(f"{name}: {kind} head arrays missing {sorted(missing)}"
                                      + (f", unknown {sorted(unknown)}" if unknown else ""))
            heads[kind] = HeadRecord(part["weights"], stages={k: part[k] for k in _V1_STAGES},
                                     params={k: part[k] for k in names})
    return Episode(**{k: arrays.get(k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")},
                   heads=heads, meta=meta)

