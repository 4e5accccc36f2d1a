"""Checkpoints: a model with its config, task, optimiser state and progress, in one file.

The file is safetensors (raw tensors plus a JSON header, nothing executable), written
atomically. `load(path)` rebuilds the model from the file alone:

    ckpt = ntmviz.checkpoint.load("checkpoints/copy-ntm.safetensors")
    ckpt.model, ckpt.task, ckpt.step, ckpt.sequences, ckpt.meta

Tensor names: "model/<parameter>" for weights, "optim/<param index>/<key>" for optimiser
state tensors; everything else (config, task, step, optimiser hyperparameters, metadata
such as seed, wall time, a learning curve and the path that trained it, `ckpt.compute`)
lives in the JSON header, with checksums of the data and header (see files.py): a damaged
file raises FileFormatError naming the damaged tensors. `ckpt.checksum` is "verified", or
"absent" for a file written before checksums existed (the shipped checkpoints in
checkpoints/ are such files and load as they are).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as st_save_torch

from .config import ModelConfig, from_dict, to_dict
from .errors import ConfigError, FileFormatError
from .files import ABSENT, MAX_CHECKPOINT_BYTES, atomic_write, read_file, read_safetensors, seal
from .contract import Family
from .models import build_model, family, pick_device
from .native import describe_compute

FORMAT = "ntmviz-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (in eval mode) and what came with it."""

    model: torch.nn.Module
    config: ModelConfig
    task: Any = None  # an ntmviz.tasks Task, or None
    step: int = 0
    sequences: int = 0
    optimizer_state: dict | None = None  # for optimizer.load_state_dict, or None
    optimizer_class: str | None = None  # e.g. "Adam": the optimiser that state belongs to
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    checksum: str | None = None  # "verified", or "absent" for a file from before checksums

    @property
    def family(self) -> Family:
        """The declaration of the model's family, with its head counts."""
        return family_of(self.config)

    @property
    def integrity(self) -> str:
        """One line on the file's checksums, e.g. for `ntmviz eval`."""
        if self.checksum == ABSENT:
            return "this checkpoint carries no checksum (written before ntmviz stored them): not verified"
        return "checksums verified" if self.checksum else "not loaded from a file"

    @property
    def compute(self) -> str:
        """One line on the path that trained the model (meta["compute"], written by the Trainer):
        the compiled kernels with their compiler and flags, or torch ops on a device; "not
        recorded" for a checkpoint written before ntmviz recorded it."""
        return describe_compute(self.meta.get("compute"))


def family_of(config: ModelConfig) -> Family:
    """The declaration of the family a config builds, with its head counts."""
    return family(config.kind).resolve(config)


def save(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    task=None,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    sequences: int = 0,
    meta: dict[str, Any] | None = None,
    member: int = 0,
) -> Path:
    """Write one model (+ its optimiser state) to path atomically. Returns the path.

    `model` may be a seed ensemble (layers.Stacked, K models): the file holds model `member`,
    and `optimizer` its slice of the ensemble's optimiser state."""
    tensors = {f"model/{k}": v.cpu().contiguous() for k, v in model.member_state_dict(member).items()}
    optim_header = None
    if optimizer is not None:
        state = member_optimizer_state(optimizer, member)
        plain: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{index}/{key}"] = value.detach().cpu().contiguous()
                else:
                    plain.setdefault(str(index), {})[key] = value
        optim_header = {"class": type(optimizer).__name__, "param_groups": state["param_groups"], "plain": plain}
    header = {
        "format": FORMAT,
        "version": str(VERSION),
        "config": json.dumps(to_dict(model.config)),
        "task": json.dumps(task.to_dict() if task is not None else None),
        "step": str(int(step)),
        "sequences": str(int(sequences)),
        "optimizer": json.dumps(optim_header),
        "meta": json.dumps(meta or {}),
    }
    return atomic_write(path, seal(st_save_torch(tensors, metadata=header)))


def member_optimizer_state(optimizer: torch.optim.Optimizer, member: int) -> dict[str, Any]:
    """The optimiser's state_dict for model `member` of an ensemble: every state tensor shaped
    like its parameter [K, ...] sliced to [...]; scalars (such as Adam's step) kept."""
    state = optimizer.state_dict()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sliced = {}
    for index, entries in state["state"].items():
        shape = params[index].shape
        sliced[index] = {k: v[member] if isinstance(v, torch.Tensor) and v.shape == shape else v
                         for k, v in entries.items()}
    return {"state": sliced, "param_groups": state["param_groups"]}


def concat_optimizer_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """One optimiser state for an ensemble from its members' (each shaped for its own model):
    per-parameter tensors concatenated along the model axis; scalars taken from the first."""
    first = states[0]
    joined = {}
    for index, entries in first["state"].items():
        joined[index] = {key: torch.cat([s["state"][index][key] for s in states])
                         if isinstance(value, torch.Tensor) and value.dim() > 0 else value
                         for key, value in entries.items()}
    return {"state": joined, "param_groups": first["param_groups"]}


def load(path: str | os.PathLike, device: str | torch.device | None = None) -> Checkpoint:
    """Rebuild a checkpoint's model on `device` (CUDA when there is one, else the CPU)."""
    path = Path(path)
    header, arrays, checksum = read_safetensors(read_file(path, "checkpoint", MAX_CHECKPOINT_BYTES),
                                                str(path), FORMAT, VERSION)
    try:
        config = from_dict(json.loads(header["config"]))
        task_dict = json.loads(header.get("task", "null"))
        optim_header = json.loads(header.get("optimizer", "null"))
        meta = json.loads(header.get("meta", "{}"))
        step, sequences = int(header.get("step", 0)), int(header.get("sequences", 0))
    except (KeyError, ValueError) as exc:
        raise FileFormatError(f"{path}: checkpoint header is incomplete or corrupt ({exc})") from None

    model = build_model(config)
    weights = {k[len("model/"):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model/")}
    try:
        model.load_member_state_dict(0, weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise FileFormatError(f"{path}: weights do not match the config ({first[1].strip() if len(first) > 1 else first[0]})") from None
    model.to(pick_device(device)).eval()

    task = None
    if task_dict is not None:
        from .tasks import task_from_dict  # tasks sit above the engine; import on demand

        try:
            task = task_from_dict(task_dict)
        except ConfigError as exc:
            raise FileFormatError(f"{path}: bad task in checkpoint ({exc})") from None

    optimizer_state = None
    if optim_header is not None:
        state: dict[int, dict[str, Any]] = {}
        for index, plain in optim_header.get("plain", {}).items():
            state.setdefault(int(index), {}).update(plain)
        for key, value in arrays.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/", 2)
                state.setdefault(int(index), {})[name] = torch.from_numpy(value)
        # The file holds one model's slice; give it back shaped for the rebuilt model (K = 1).
        params = list(model.parameters())
        for index, entries in state.items():
            if index < len(params):
                member_shape = params[index].shape[1:]
                for key, value in entries.items():
                    if isinstance(value, torch.Tensor) and value.shape == member_shape:
                        entries[key] = value.unsqueeze(0)
        optimizer_state = {"state": state, "param_groups": optim_header["param_groups"]}
    return Checkpoint(model=model, config=config, task=task, step=step, sequences=sequences,
                      optimizer_state=optimizer_state, meta=meta, path=path,
                      optimizer_class=(optim_header or {}).get("class"), checksum=checksum)
