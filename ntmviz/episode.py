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

Files are safetensors (https://github.com/huggingface/safetensors: tensors plus a JSON
header, nothing executable) with the format name, version and metadata in the header, and
checksums of the data and header (see files.py): a damaged file raises FileFormatError naming
the damaged arrays. A loaded episode's `checksum` says "verified", or "absent" for a file
written before checksums existed. Files over MAX_EPISODE_BYTES are refused before reading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.numpy import save as st_save

from .config import to_dict
from .errors import ConfigError, FileFormatError
from .files import MAX_EPISODE_BYTES, atomic_write, read_file, read_safetensors, seal, size_problem

FORMAT = "ntmviz-episode"
VERSION = 1

ADDRESS_STAGES = ("content", "gated", "shifted", "weights")
HEAD_PARAMS = ("key", "beta", "gate", "shift", "gamma")


@dataclass
class HeadRecord:
    """One kind of head (read or write) over an episode: arrays [T, H, ...]."""

    key: np.ndarray  # [T, H, M]
    beta: np.ndarray  # [T, H]
    gate: np.ndarray  # [T, H]
    shift: np.ndarray  # [T, H, S]
    gamma: np.ndarray  # [T, H]
    content: np.ndarray  # [T, H, N]
    gated: np.ndarray  # [T, H, N]
    shifted: np.ndarray  # [T, H, N]
    weights: np.ndarray  # [T, H, N]
    erase: np.ndarray | None = None  # [T, W, M], write heads only
    add: np.ndarray | None = None  # [T, W, M], write heads only

    @property
    def heads(self) -> int:
        return self.weights.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class Episode:
    """The recorded trace of one sequence. See the module docstring for shapes."""

    inputs: np.ndarray
    outputs: np.ndarray
    targets: np.ndarray | None = None
    mask: np.ndarray | None = None
    memory: np.ndarray | None = None
    reads: np.ndarray | None = None
    read: HeadRecord | None = None
    write: HeadRecord | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # "verified" or "absent" (a file from before checksums) when loaded from a file; None when
    # recorded. Not saved: it describes the file this episode was read from.
    checksum: str | None = field(default=None, repr=False, compare=False)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """T, the number of steps."""
        return self.inputs.shape[0]

    def __len__(self) -> int:
        return self.steps

    @property
    def has_memory(self) -> bool:
        return self.memory is not None

    @property
    def slots(self) -> int:
        """N (0 without memory)."""
        return self.memory.shape[1] if self.has_memory else 0

    @property
    def width(self) -> int:
        """M (0 without memory)."""
        return self.memory.shape[2] if self.has_memory else 0

    # ---- analysis helpers ----------------------------------------------------------------
    def bit_errors(self) -> np.ndarray:
        """Wrong bits per step, counting only scored steps: [T] (needs targets)."""
        if self.targets is None:
            raise ValueError("this episode has no targets to compare with")
        wrong = ((self.outputs > 0.5) != (self.targets > 0.5)).sum(-1).astype(np.float32)
        return wrong * (self.mask if self.mask is not None else 1)

    def replay_write(self, t: int) -> np.ndarray:
        """memory[t+1] rebuilt from memory[t] and the recorded write at step t  -> [N, M]."""
        w, e, a = self.write.weights[t], self.write.erase[t], self.write.add[t]  # [W,N] [W,M] [W,M]
        keep = np.prod(1 - w[:, :, None] * e[:, None, :], axis=0)
        return self.memory[t] * keep + w.T @ a

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array under a flat name ("inputs", "memory", "read.weights", "write.erase", ...)."""
        out = {k: getattr(self, k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")}
        for kind in ("read", "write"):
            rec = getattr(self, kind)
            if rec is not None:
                out.update({f"{kind}.{k}": v for k, v in rec.arrays().items()})
        return {k: v for k, v in out.items() if v is not None}

    # ---- files -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The bytes of this episode's file (the inverse of `from_bytes`), checksums included."""
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.arrays().items()}
        header = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(self.meta)}
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
        """Read a file written by `save`; anything else, a damaged file or one over
        MAX_EPISODE_BYTES (checked before reading) raises FileFormatError."""
        return cls.from_bytes(read_file(path, "episode", MAX_EPISODE_BYTES), name=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "episode") -> "Episode":
        """Parse the bytes of an episode file (as uploaded in the app)."""
        problem = size_problem(len(data), MAX_EPISODE_BYTES)
        if problem:
            raise FileFormatError(f"{name}: {problem}")
        header, arrays, checksum = read_safetensors(data, name, FORMAT, VERSION)
        try:
            meta = json.loads(header.get("meta", "{}"))
        except json.JSONDecodeError:
            raise FileFormatError(f"{name}: episode metadata is not valid JSON") from None
        episode = _unflatten(arrays, meta, name)
        episode.validate(name)
        episode.checksum = checksum
        return episode

    def validate(self, name: str = "episode") -> None:
        """Check that every array's shape agrees with the others; raise FileFormatError if not."""
        T = self.steps

        def bad(msg: str) -> FileFormatError:
            return FileFormatError(f"{name}: {msg}")

        if self.inputs.ndim != 2 or self.outputs.ndim != 2 or self.outputs.shape[0] != T:
            raise bad("inputs and outputs must be [T, width] with the same T")
        if self.targets is not None and self.targets.shape != self.outputs.shape:
            raise bad(f"targets {self.targets.shape} do not match outputs {self.outputs.shape}")
        if self.mask is not None and self.mask.shape != (T,):
            raise bad(f"mask {self.mask.shape} is not [{T}]")
        if not self.has_memory:
            if self.read is not None or self.write is not None or self.reads is not None:
                raise bad("memory is missing, though the episode has heads")
            return
        if self.memory.ndim != 3 or self.memory.shape[0] != T + 1:
            raise bad(f"memory {self.memory.shape} is not [{T + 1}, N, M]")
        N, M = self.memory.shape[1:]
        for kind, rec in (("read", self.read), ("write", self.write)):
            if rec is None:
                raise bad(f"{kind} heads are missing")
            H = rec.heads
            expect = {"key": (T, H, M), "beta": (T, H), "gate": (T, H), "gamma": (T, H),
                      **{s: (T, H, N) for s in ADDRESS_STAGES}}
            if kind == "write":
                expect.update(erase=(T, H, M), add=(T, H, M))
            for k, shape in expect.items():
                a = getattr(rec, k)
                if a is None or a.shape != shape:
                    raise bad(f"{kind}.{k} is {None if a is None else a.shape}, expected {shape}")
            if rec.shift.ndim != 3 or rec.shift.shape[:2] != (T, H):
                raise bad(f"{kind}.shift {rec.shift.shape} is not [{T}, {H}, S]")
        if self.reads is None or self.reads.shape != (T, self.read.heads, M):
            raise bad(f"reads are {None if self.reads is None else self.reads.shape}, "
                      f"expected {(T, self.read.heads, M)}")

    def __repr__(self) -> str:
        size = f"N={self.slots}, M={self.width}, " if self.has_memory else ""
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
                # one stack per field happened in the loop; one move to the CPU per field here
                stacked = {name: getattr(steps, name).float().cpu().numpy() for name in steps._fields}
                stacked["memory"] = torch.cat([trace.memory0.unsqueeze(1), steps.memory], 1).float().cpu().numpy()
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


def _unflatten(arrays: dict[str, np.ndarray], meta: dict, name: str) -> Episode:
    for required in ("inputs", "outputs"):
        if required not in arrays:
            raise FileFormatError(f"{name}: episode has no {required!r} array")
    heads = {}
    for kind in ("read", "write"):
        prefix = kind + "."
        part = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if part:
            required = set(HEAD_PARAMS + ADDRESS_STAGES) | ({"erase", "add"} if kind == "write" else set())
            missing, unknown = required - set(part), set(part) - required - {"erase", "add"}
            if missing or unknown:
                raise FileFormatError(f"{name}: {kind} head arrays missing {sorted(missing)}"
                                      + (f", unknown {sorted(unknown)}" if unknown else ""))
            heads[kind] = HeadRecord(**part)
    return Episode(
        **{k: arrays.get(k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")},
        read=heads.get("read"), write=heads.get("write"), meta=meta)
