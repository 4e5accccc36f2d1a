"""Episode: the recorded trace of one sequence, and `record()`, which makes it.

An Episode holds numpy float32 arrays with named dimensions: t step, h head, n memory slot,
m word width, s shift offset. T steps, I input and O output width.

    inputs, outputs, targets   [T, I], [T, O], [T, O]   outputs are probabilities (sigmoid)
    mask                       [T]      1 where an output is scored
    memory                     [T+1, N, M]  before step 0, then after every step
    reads                      [T, R, M]    read vectors
    read.weights (and .content .gated .shifted)          [T, R, N]
    read.key [T, R, M], .beta [T, R], .gate [T, R], .shift [T, R, S], .gamma [T, R]
    write.*  the same over W write heads, plus .erase and .add  [T, W, M]

An LSTM baseline's episode has inputs, outputs, targets and mask only (memory is None).
`weights[t] @ memory[t] == reads[t]`; `replay_write(t)` rebuilds memory[t+1] from memory[t].

Format version 2 (any model that attends over a memory, `Episode.from_arrays`): a kind of head
(`HeadRecord`) has `weights` [T, H, N] and optional, named `stages` (weightings [T, H, N] that led
to it, in order: the NTM's content, gated, shifted) and `params` ([T, H] or [T, H, K]: the NTM's
key, beta, gate, shift, gamma, erase, add). Memory may be static, [N, M]; write heads, reads,
inputs, outputs, targets and mask are optional; `slot_labels` names the N slots. Version 1 files
(NTM and LSTM episodes from before) still load.

Files are safetensors (https://github.com/huggingface/safetensors: tensors plus a JSON
header, nothing executable) with the format name, version and metadata in the header, and
checksums of the data and header (see files.py): a damaged file raises FileFormatError naming
the damaged arrays. A loaded episode's `checksum` says "verified", or "absent" for a file
written before checksums existed. Files over MAX_EPISODE_BYTES are refused before reading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.numpy import save as st_save

from .config import to_dict
from .errors import ConfigError, EpisodeArrayError, FileFormatError
from .files import MAX_EPISODE_BYTES, atomic_write, read_file, read_safetensors, seal, size_problem

FORMAT = "ntmviz-episode"
VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: NTM episodes only, every head array fixed by name

# The NTM's records under the generic names: its addressing stages before the final weights, in
# order, and its per-step head parameters (erase and add on write heads only).
NTM_STAGES = ("content", "gated", "shifted")
ADDRESS_STAGES = NTM_STAGES + ("weights",)
HEAD_PARAMS = ("key", "beta", "gate", "shift", "gamma")
WRITE_PARAMS = ("erase", "add")

# meta["scoring"]: how an episode's outputs are judged against its targets, and what its errors
# are called. "bits" (the default): every output is a bit's probability, wrong on the other side
# of 0.5. "answer": a step's outputs are a distribution over answer words (a memory network's),
# wrong when the most likely word is not the target's.
SCORINGS = {"bits": "bit errors", "answer": "wrong answers"}


class HeadRecord:
    """One kind of head (read or write) over an episode.

        weights   [T, H, N]  the weighting each head used (required)
        stages    {name: [T, H, N]}  the weightings that led to it, in order (optional); the NTM's
                  content -> gated -> shifted, a memory network's hops
        params    {name: [T, H] or [T, H, K]}  per-step head parameters (optional); the NTM's key,
                  beta, gate, shift, gamma (and erase, add on write heads)

    Stages and params read as attributes too (`rec.content`, `rec.key`), and the NTM's names may
    be given as keywords: `HeadRecord(weights=w, content=c, key=k, ...)` files content / gated /
    shifted under stages and the rest under params.
    """

    def __init__(self, weights: np.ndarray, stages: dict[str, np.ndarray] | None = None,
                 params: dict[str, np.ndarray] | None = None, **named: np.ndarray | None):
        self.weights = weights
        self.stages = dict(stages or {})
        self.params = dict(params or {})
        for k, v in named.items():
            if v is not None:
                (self.stages if k in NTM_STAGES else self.params)[k] = v

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


@dataclass
class Episode:
    """The recorded trace of one sequence (or of one answer of a model that attends to memory).
    See the module docstring for shapes; every field but the heads' weights is optional."""

    inputs: np.ndarray | None = None
    outputs: np.ndarray | None = None
    targets: np.ndarray | None = None
    mask: np.ndarray | None = None
    memory: np.ndarray | None = None  # [T+1, N, M], or [N, M] when it does not change
    reads: np.ndarray | None = None
    read: HeadRecord | None = None
    write: HeadRecord | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    slot_labels: list[str] | None = None  # N names of the memory slots (a memory network's sentences)
    # "verified" or "absent" (a file from before checksums) when loaded from a file; None when
    # recorded. Not saved: it describes the file this episode was read from.
    checksum: str | None = field(default=None, repr=False, compare=False)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """T, the number of steps."""
        if self.inputs is not None:
            return self.inputs.shape[0]
        for rec in (self.read, self.write):
            if rec is not None:
                return rec.weights.shape[0]
        return self.outputs.shape[0] if self.outputs is not None else 0

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

    def memory_before(self, t: int) -> np.ndarray:
        """The memory step t read from: [N, M]."""
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
        """[(kind, record)] for the kinds of head this episode has, read heads first."""
        return [(k, r) for k, r in (("read", self.read), ("write", self.write)) if r is not None]

    # ---- analysis helpers ----------------------------------------------------------------
    @property
    def scoring(self) -> str:
        """How outputs are judged: "bits" or "answer" (see SCORINGS)."""
        return str(self.meta.get("scoring", "bits"))

    @property
    def error_name(self) -> str:
        """What `errors()` counts, for labels: "bit errors" or "wrong answers"."""
        return SCORINGS.get(self.scoring, SCORINGS["bits"])

    def errors(self) -> np.ndarray:
        """Errors per step on scored steps: [T] (needs targets). Wrong bits, or with scoring
        "answer" 1 where the most likely output is not the target's."""
        if self.scoring != "answer":
            return self.bit_errors()
        if self.targets is None or self.outputs is None:
            raise ValueError("this episode has no targets and outputs to compare")
        wrong = (self.outputs.argmax(-1) != self.targets.argmax(-1)).astype(np.float32)
        return wrong * (self.mask if self.mask is not None else 1)

    def bit_errors(self) -> np.ndarray:
        """Wrong bits per step, counting only scored steps: [T] (needs targets)."""
        if self.targets is None or self.outputs is None:
            raise ValueError("this episode has no targets and outputs to compare")
        wrong = ((self.outputs > 0.5) != (self.targets > 0.5)).sum(-1).astype(np.float32)
        return wrong * (self.mask if self.mask is not None else 1)

    def replay_write(self, t: int) -> np.ndarray:
        """memory[t+1] rebuilt from memory[t] and the recorded write at step t  -> [N, M] (NTM)."""
        w, e, a = self.write.weights[t], self.write.erase[t], self.write.add[t]  # [W,N] [W,M] [W,M]
        keep = np.prod(1 - w[:, :, None] * e[:, None, :], axis=0)
        return self.memory[t] * keep + w.T @ a

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array under a flat name ("inputs", "memory", "read.weights", "write.erase", ...)."""
        out = {k: getattr(self, k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")}
        for kind, rec in self.head_records():
            out.update({f"{kind}.{k}": v for k, v in rec.arrays().items()})
        return {k: v for k, v in out.items() if v is not None}

    # ---- making one from your own model's arrays -------------------------------------------
    @classmethod
    def from_arrays(cls, memory, read_weights, write_weights=None, inputs=None, outputs=None, targets=None,
                    mask=None, stages=None, params=None, slot_labels=None, meta=None) -> "Episode":
        """An episode of any model that attends over a memory, from numpy arrays or torch tensors.

            memory          [T+1, N, M] (before step 0, then after each step) or [N, M] (static)
            read_weights    [T, H, N] (or [T, N] for one head): each row a distribution over slots
            write_weights   [T, W, N] (or [T, N]), optional, distributions too
            inputs          [T, I]; outputs, targets [T, O]  (optional)
            mask            [T]: 1 where an output is scored, 0 where not (optional: all scored)
            stages          {name: [T, H, N]}: the read heads' weightings before the final one, in
                            order (e.g. a memory network's hops); or {"read": {...}, "write": {...}}
            params          {name: [T, H] or [T, H, K]}: per-step head parameters, or per kind as above
            slot_labels     N strings naming the slots (shown as text on the slot axes)
            meta            a JSON-serialisable dict (task, model, ...); meta["scoring"] = "answer"
                            when outputs are a distribution over answers (see SCORINGS)

        A step is whatever your model does once (a memory network's hop is a step). Raises
        EpisodeArrayError naming the array and the shape expected when something does not fit.
        """
        mem = _as_array("memory", memory)
        if mem.ndim not in (2, 3):
            raise EpisodeArrayError(f"memory has shape {mem.shape}, expected [N, M] or [T+1, N, M]")
        N = mem.shape[-2]
        read = _weights("read_weights", read_weights, None, N)
        T = read.shape[0]
        if mem.ndim == 3 and mem.shape[0] != T + 1:
            raise EpisodeArrayError(f"memory has shape {mem.shape}, expected [{T + 1}, {N}, M] "
                                    f"(T+1 frames for T={T} steps) or a static [{N}, M]")
        write = None if write_weights is None else _weights("write_weights", write_weights, T, N)
        seq = {}
        for label, a in (("inputs", inputs), ("outputs", outputs), ("targets", targets)):
            if a is not None:
                a = _as_array(label, a)
                if a.ndim != 2 or a.shape[0] != T:
                    raise EpisodeArrayError(f"{label} has shape {a.shape}, expected [{T}, width]")
                seq[label] = a
        if "targets" in seq and "outputs" in seq and seq["targets"].shape != seq["outputs"].shape:
            raise EpisodeArrayError(f"targets has shape {seq['targets'].shape}, expected "
                                    f"{seq['outputs'].shape} (the shape of outputs)")
        if mask is not None:
            mask = _as_array("mask", mask)
            if mask.shape != (T,):
                raise EpisodeArrayError(f"mask has shape {mask.shape}, expected [{T}]")
            if not np.isin(mask, (0.0, 1.0)).all():
                raise EpisodeArrayError("mask must hold only 0 (not scored) and 1 (scored)")
        heads = {"read": read, "write": write}
        extra = {kind: {"stages": {}, "params": {}} for kind in heads}
        for part, given in (("stages", stages), ("params", params)):
            if given is None:
                continue
            if not isinstance(given, dict):
                raise EpisodeArrayError(f"{part} must be a dict {{name: array}}, got {type(given).__name__}")
            per_kind = given if given and set(given) <= {"read", "write"} and all(
                isinstance(v, dict) for v in given.values()) else {"read": given}
            for kind, named in per_kind.items():
                w = heads[kind]
                if w is None:
                    raise EpisodeArrayError(f"{part} for write heads given without write_weights")
                for name, a in named.items():
                    _check_name(f"{part} name", name)
                    label = f"{part}[{name!r}]" + (f" ({kind} heads)" if kind == "write" else "")
                    a = _as_array(label, a)
                    if a.ndim == w.ndim - 1 and part == "stages":
                        a = a[:, None]  # [T, N]: one head
                    if part == "stages" and a.shape != w.shape:
                        raise EpisodeArrayError(f"{label} has shape {a.shape}, expected {tuple(w.shape)} [T, H, N]")
                    if part == "params" and (a.ndim not in (2, 3) or a.shape[:2] != w.shape[:2]):
                        raise EpisodeArrayError(f"{label} has shape {a.shape}, expected "
                                                f"[{w.shape[0]}, {w.shape[1]}] or [{w.shape[0]}, {w.shape[1]}, K]")
                    extra[kind][part][name] = a
        for kind in heads:
            clash = set(extra[kind]["stages"]) & set(extra[kind]["params"])
            if clash:
                raise EpisodeArrayError(f"the names {sorted(clash)} are both a stage and a param")
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
        if meta.get("scoring", "bits") not in SCORINGS:
            raise EpisodeArrayError(f"meta['scoring'] is {meta['scoring']!r}, expected one of {sorted(SCORINGS)}")
        meta.setdefault("format_version", VERSION)
        records = {kind: None if w is None else HeadRecord(w, **extra[kind]) for kind, w in heads.items()}
        return cls(inputs=seq.get("inputs"), outputs=seq.get("outputs"), targets=seq.get("targets"), mask=mask,
                   memory=mem, read=records["read"], write=records["write"], meta=meta, slot_labels=labels)

    # ---- files -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The bytes of this episode's file (the inverse of `from_bytes`), checksums included.

        Version 2: the arrays under their flat names; the header lists them ("contents"), each
        kind of head's stages in order and its params ("heads"), and the slot labels."""
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.arrays().items()}
        heads = {kind: {"stages": list(rec.stages), "params": list(rec.params)} for kind, rec in self.head_records()}
        header = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(self.meta),
                  "contents": json.dumps(sorted(arrays)), "heads": json.dumps(heads)}
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
        """Read a file written by `save` (format version 2, or 1 from before generic episodes);
        anything else, a damaged file or one over MAX_EPISODE_BYTES (checked before reading)
        raises FileFormatError."""
        return cls.from_bytes(read_file(path, "episode", MAX_EPISODE_BYTES), name=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "episode") -> "Episode":
        """Parse the bytes of an episode file (as uploaded in the app)."""
        problem = size_problem(len(data), MAX_EPISODE_BYTES)
        if problem:
            raise FileFormatError(f"{name}: {problem}")
        header, arrays, checksum = read_safetensors(data, name, FORMAT, READABLE_VERSIONS)
        meta = _header_json(header, "meta", {}, dict, name)
        if header.get("version") == "1":
            episode = _unflatten_v1(arrays, meta, name)
        else:
            episode = _unflatten(arrays, header, meta, name)
        episode.validate(name)
        episode.checksum = checksum
        return episode

    def validate(self, name: str = "episode") -> None:
        """Check that every array's shape agrees with the others; raise FileFormatError if not."""
        T = self.steps

        def bad(msg: str) -> FileFormatError:
            return FileFormatError(f"{name}: {msg}")

        for k in ("inputs", "outputs", "targets"):
            a = getattr(self, k)
            if a is not None and (a.ndim != 2 or a.shape[0] != T):
                raise bad(f"{k} {a.shape} is not [{T}, width]")
        if self.targets is not None and self.outputs is not None and self.targets.shape != self.outputs.shape:
            raise bad(f"targets {self.targets.shape} do not match outputs {self.outputs.shape}")
        if self.mask is not None and self.mask.shape != (T,):
            raise bad(f"mask {self.mask.shape} is not [{T}]")
        if not self.has_memory:
            if self.read is not None or self.write is not None or self.reads is not None:
                raise bad("memory is missing, though the episode has heads")
            if self.inputs is None and self.outputs is None:
                raise bad("the episode has neither memory nor inputs and outputs")
            return
        if not ((self.memory.ndim == 3 and self.memory.shape[0] == T + 1) or self.memory.ndim == 2):
            raise bad(f"memory {self.memory.shape} is not [{T + 1}, N, M] or [N, M]")
        N, M = self.memory.shape[-2:]
        if self.read is None:
            raise bad("read heads are missing")
        for kind, rec in self.head_records():
            H = rec.heads if rec.weights.ndim == 3 else -1
            if rec.weights.shape != (T, H, N):
                raise bad(f"{kind}.weights is {rec.weights.shape}, expected [{T}, H, {N}]")
            for k, a in rec.stages.items():
                if a.shape != (T, H, N):
                    raise bad(f"{kind}.{k} is {a.shape}, expected {(T, H, N)}")
            for k, a in rec.params.items():
                if a.ndim not in (2, 3) or a.shape[:2] != (T, H):
                    raise bad(f"{kind}.{k} is {a.shape}, expected [{T}, {H}] or [{T}, {H}, K]")
        if self.reads is not None and self.reads.shape != (T, self.read.heads, M):
            raise bad(f"reads are {self.reads.shape}, expected {(T, self.read.heads, M)}")
        if self.slot_labels is not None and (len(self.slot_labels) != N
                                             or not all(isinstance(x, str) for x in self.slot_labels)):
            raise bad(f"slot_labels must be {N} strings")

    def __repr__(self) -> str:
        size = f"N={self.slots}, M={self.width}, " if self.has_memory else ""
        size += "static memory, " if self.static_memory else ""
        return f"Episode(T={self.steps}, {size}task={self.meta.get('task')!r})"


# ---- recording ---------------------------------------------------------------------------

def record(
    model: torch.nn.Module,
    inputs,
    targets: torch.Tensor | np.ndarray | None = None,
    *,
    mask: torch.Tensor | np.ndarray | None = None,
    lengths: Sequence[int] | torch.Tensor | None = None,
    meta: dict[str, Any] | None = None,
) -> Episode | list[Episode]:
    """Run `model` on inputs and keep every step's trace.

    inputs [T, I] -> one Episode; [B, T, I] -> a list of B Episodes. `inputs` may also be a
    task Batch (with .inputs, .targets, .mask, .lengths). `lengths` [B] trims each episode
    to its own number of steps when a batch mixes lengths. Runs the model's own forward (the
    same fused time loop as training, fused.run_sequence) under inference mode, keeping every
    step's stages; traces stay on the model's device until one move to the CPU at the end.
    """
    if hasattr(inputs, "inputs"):  # a task Batch
        batch = inputs
        inputs, targets = batch.inputs, batch.targets if targets is None else targets
        mask = batch.mask if mask is None else mask
        lengths = getattr(batch, "lengths", None) if lengths is None else lengths
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

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            stacked = None
            if hasattr(model, "run"):  # the NTM: the training path's forward, keeping every step
                logits, trace = model.run(x, record=True)
                steps = trace.steps
                # one copy per field happened in run(); one move to the CPU per field here
                stacked = {name: getattr(steps, name).float().cpu().numpy() for name in steps._fields}
                stacked["memory"] = trace.memories.float().cpu().numpy()
            else:  # no memory to trace
                logits = model(x)
            outputs = torch.sigmoid(logits).float().cpu().numpy()  # [B, T, O]
    finally:
        model.train(was_training)

    def host(a):
        if a is None:
            return None
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        a = a.astype(np.float32)
        return a[None] if single else a

    targets_np, mask_np = host(targets), host(mask)
    if lengths is None:
        lengths = [T] * B
    lengths = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
    base_meta = {"format_version": VERSION, "model": to_dict(model.config), **(meta or {})}
    x_np = x.float().cpu().numpy()

    episodes = []
    for b in range(B):
        n = lengths[b]
        ep = Episode(
            inputs=x_np[b, :n],
            outputs=outputs[b, :n],
            targets=None if targets_np is None else targets_np[b, :n],
            mask=None if mask_np is None else mask_np[b, :n],
            meta=dict(base_meta),
        )
        if stacked is not None:
            R = model.config.read_heads
            heads = {k: stacked[k][b, :n] for k in HEAD_PARAMS + ADDRESS_STAGES}
            ep.read = HeadRecord(**{k: v[:, :R] for k, v in heads.items()})
            ep.write = HeadRecord(**{k: v[:, R:] for k, v in heads.items()},
                                  erase=stacked["erase"][b, :n], add=stacked["add"][b, :n])
            ep.reads = stacked["reads"][b, :n]
            ep.memory = stacked["memory"][b, : n + 1]
        episodes.append(ep)
    return episodes[0] if single else episodes


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


def _weights(name: str, a, T: int | None, N: int) -> np.ndarray:
    """Head weightings [T, H, N] (or [T, N], one head) checked to be distributions over N slots."""
    w = _as_array(name, a)
    if w.ndim == 2:
        w = w[:, None]
    t = "T" if T is None else str(T)
    if w.ndim != 3 or w.shape[2] != N or (T is not None and w.shape[0] != T) or 0 in w.shape[:2]:
        raise EpisodeArrayError(f"{name} has shape {w.shape}, expected [{t}, H, {N}] (steps, heads, "
                                f"the memory's {N} slots)")
    if (w < 0).any():
        raise EpisodeArrayError(f"{name} has negative weights; expected [{t}, H, {N}] distributions over slots")
    sums = w.sum(-1, dtype=np.float64)
    worst = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
    if abs(sums[worst] - 1) > 1e-3:
        raise EpisodeArrayError(f"{name}[{worst[0]}, {worst[1]}] sums to {sums[worst]:.4g}; expected each "
                                f"row of {name} [{w.shape[0]}, {w.shape[1]}, {N}] to sum to 1 (a softmax over slots)")
    return w


def _check_name(what: str, name) -> None:
    if not isinstance(name, str) or not name or "." in name or name == "weights":
        raise EpisodeArrayError(f"{what} {name!r} must be a non-empty string without '.', not 'weights'")


def _header_json(header: dict, key: str, default, kind: type, name: str):
    try:
        value = json.loads(header[key]) if key in header else default
    except json.JSONDecodeError:
        raise FileFormatError(f"{name}: episode {key} is not valid JSON") from None
    if not isinstance(value, kind):
        raise FileFormatError(f"{name}: episode {key} is not of the JSON type it should be")
    return value


def _unflatten(arrays: dict[str, np.ndarray], header: dict, meta: dict, name: str) -> Episode:
    """A version 2 file: the header's contents list every array, its heads the stage order."""
    contents = _header_json(header, "contents", sorted(arrays), list, name)
    missing, unknown = set(contents) - set(arrays), set(arrays) - set(contents)
    if missing or unknown:
        raise FileFormatError(f"{name}: episode arrays missing {sorted(missing)}"
                              + (f", unknown {sorted(unknown)}" if unknown else ""))
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
    return Episode(
        **{k: arrays.get(k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")},
        read=records.get("read"), write=records.get("write"), meta=meta, slot_labels=labels)


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
    for kind in ("read", "write"):
        prefix = kind + "."
        part = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if part:
            required = set(HEAD_PARAMS + ADDRESS_STAGES) | (set(WRITE_PARAMS) if kind == "write" else set())
            missing, unknown = required - set(part), set(part) - required
            if missing or unknown:
                raise FileFormatError(f"{name}: {kind} head arrays missing {sorted(missing)}"
                                      + (f", unknown {sorted(unknown)}" if unknown else ""))
            heads[kind] = HeadRecord(
                part.pop("weights"), stages={k: part.pop(k) for k in NTM_STAGES},
                params={k: part[k] for k in HEAD_PARAMS + WRITE_PARAMS if k in part})
    return Episode(
        **{k: arrays.get(k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")},
        read=heads.get("read"), write=heads.get("write"), meta=meta)
