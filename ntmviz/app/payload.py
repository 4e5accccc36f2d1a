"""Turn an Episode into what the browser renderer draws: sizes, labels and float32 arrays.

Arrays travel once per episode as base64 of their little-endian float32 bytes (never lists
of floats): `{"shape": [...], "b64": "..."}`. Each view asks only for the arrays it draws
(`VIEW_ARRAYS`); the HTML export sends them all.
"""

from __future__ import annotations

import base64
from typing import Any, Iterable

import numpy as np

from ..episode import Episode

PAYLOAD_FORMAT = "ntmviz-view"

_WEIGHTS = ("read.weights", "write.weights")
_STAGES = tuple(f"{k}.{s}" for k in ("read", "write") for s in ("content", "gated", "shifted", "weights"))
_PARAMS = tuple(f"{k}.{p}" for k in ("read", "write") for p in ("beta", "gate", "gamma", "shift"))

VIEW_ARRAYS: dict[str, tuple[str, ...]] = {
    "player": (),
    "memory": ("memory",) + _WEIGHTS,
    "heads": _WEIGHTS,
    "focus": _STAGES + _PARAMS,
    "sequence": ("inputs", "targets", "outputs", "mask", "reads", "read.key", "write.key",
                 "write.erase", "write.add"),
}
ALL_VIEWS = tuple(VIEW_ARRAYS)


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """One array as {"shape", "b64"}: base64 of its little-endian float32 bytes."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(spec: dict[str, Any]) -> np.ndarray:
    """The inverse of `encode_array` (for tests and tools)."""
    return np.frombuffer(base64.b64decode(spec["b64"]), dtype="<f4").reshape(spec["shape"])


def episode_arrays(episode: Episode) -> dict[str, np.ndarray]:
    """Every array of the episode under a flat name ("memory", "read.weights", ...)."""
    out = {k: getattr(episode, k) for k in ("inputs", "outputs", "targets", "mask", "memory", "reads")}
    for kind in ("read", "write"):
        rec = getattr(episode, kind)
        if rec is not None:
            out.update({f"{kind}.{k}": v for k, v in rec.arrays().items()})
    return {k: v for k, v in out.items() if v is not None}


def _labels(episode: Episode, which: str, width: int) -> list[str] | None:
    labels = episode.meta.get(f"{which}_labels")
    if isinstance(labels, (list, tuple)) and len(labels) == width:
        return [str(x) for x in labels]
    return None


def episode_payload(episode: Episode | None, views: Iterable[str] = ALL_VIEWS) -> dict[str, Any]:
    """The JSON-ready description of `episode` that the views in `views` need.

    Returns {} for no episode. Sizes: T steps, N slots, M width, R/W heads, S shifts,
    I/O input/output width; `meta` holds the episode's JSON metadata (task, seed, ...).
    """
    if episode is None:
        return {}
    names: set[str] = set()
    for v in views:
        names.update(VIEW_ARRAYS[v])
    arrays = episode_arrays(episode)
    mem = episode.has_memory
    return {
        "format": PAYLOAD_FORMAT,
        "T": episode.steps,
        "N": episode.slots,
        "M": episode.width,
        "R": episode.read.heads if mem else 0,
        "W": episode.write.heads if mem else 0,
        "S": int(episode.read.shift.shape[-1]) if mem else 0,
        "I": int(episode.inputs.shape[1]),
        "O": int(episode.outputs.shape[1]),
        "has_memory": mem,
        "meta": _json_safe(episode.meta),
        "input_labels": _labels(episode, "input", episode.inputs.shape[1]),
        "output_labels": _labels(episode, "output", episode.outputs.shape[1]),
        "arrays": {k: encode_array(a) for k, a in arrays.items() if k in names},
    }


def _json_safe(value: Any) -> Any:
    """Metadata as plain JSON types (numpy scalars and tuples become floats and lists)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def describe(episode: Episode | None) -> str:
    """One line about an episode: task, size, seed, errors (for titles and notes)."""
    if episode is None:
        return "no episode"
    meta = episode.meta
    parts = []
    task = meta.get("task")
    if task:
        parts.append(f"task {task}")
    if meta.get("length") is not None:
        parts.append(f"length {meta['length']}")
    if meta.get("pattern"):
        parts.append("typed input")
    elif meta.get("seed") is not None:
        parts.append(f"seed {meta['seed']}")
    parts.append(f"T={episode.steps}")
    if episode.has_memory:
        parts.append(f"memory {episode.slots}×{episode.width}, {episode.read.heads} read / "
                     f"{episode.write.heads} write head(s)")
    else:
        parts.append("no memory (LSTM)")
    if episode.targets is not None:
        parts.append(f"{int(episode.bit_errors().sum())} bit error(s)")
    src = meta.get("checkpoint") or meta.get("source")
    if src:
        parts.append(f"from {src}")
    return ", ".join(parts)
