"""Turn an Episode into what the browser renderer draws: sizes, labels and compact arrays.

Arrays travel once per episode as base64 bytes (never lists of floats). Two encodings:

    {"shape": [...], "b64": "..."}                      little-endian float32, exact
    {"shape": [...], "dtype": "u1", "signed": bool, "scale": s, "b64": "..."}
                                                         uint8 indices into the renderer's
                                                         256-colour palette

The uint8 form is the colour the renderer paints, nothing less: signed arrays (memory) map v to
round(127.5 + 127.5 v / s) with s = max |v| over the episode (the diverging palette, 128 ~ 0);
unit arrays (head weightings, in [0, 1]) map w to round(255 w / s) with s = 1. Decoding gives
the middle of each index's interval: (i - 127.5) s / 127.5, or i s / 255. Memory and the
T x N weightings use it when they are large (more than `QUANTISE_ABOVE` values) or pooled;
the small arrays (inputs, keys, head parameters ...) stay exact float32.

Never more rows than the screen has: the memory, focus and head-location canvases draw the slot
axis `slots_px` pixels tall (`slot_pixels(N)`). When N is larger, every array with a slot axis
is pooled down to `D = slots_px` rows before it is sent, in the blocks the renderer would pool
(row r covers slots floor(r N / D) .. floor((r + 1) N / D) - 1, `slot_blocks`): memory keeps
the value of largest magnitude, weightings the largest weight (so a sharp focus stays visible).
The memory view's "show change" then needs `memory.diff` (memory[t+1] - memory[t], pooled the
same way from the full-resolution difference, its own scale), sent alongside. The payload's `D`
says how many rows the slot-axis arrays have (D == N when nothing was pooled); the renderer's
hover names the slots a pixel covers.

Each view asks only for the arrays it draws (`VIEW_ARRAYS`); the HTML export sends them all.
"""

from __future__ import annotations

import base64
from typing import Any, Iterable

import numpy as np

from ..episode import Episode

PAYLOAD_FORMAT = "ntmviz-view"

_WEIGHTS = ("read.weights", "write.weights")
_STAGES = tuple(f"{k}.{s}" for k in ("read", "write") for s in ("content", "gated", "shifted", "weights"))
_STAGE_NAMES = ("content", "gated", "shifted", "weights")
_PARAMS = tuple(f"{k}.{p}" for k in ("read", "write") for p in ("beta", "gate", "gamma", "shift"))

VIEW_ARRAYS: dict[str, tuple[str, ...]] = {
    "player": (),
    "memory": ("memory", "memory.diff") + _WEIGHTS,
    "heads": _WEIGHTS,
    "focus": _STAGES + _PARAMS,
    "sequence": ("inputs", "targets", "outputs", "mask", "reads", "read.key", "write.key",
                 "write.erase", "write.add"),
}
ALL_VIEWS = tuple(VIEW_ARRAYS)


QUANTISE_ABOVE = 1 << 16  # arrays with more values than this travel as uint8 palette indices
MAX_SLOT_PX = 420  # the tallest slot axis the renderer draws, in CSS pixels


def slot_pixels(slots: int) -> int:
    """How many CSS pixels tall the renderer draws a slot axis of `slots` slots (0 for none)."""
    return min(MAX_SLOT_PX, max(200, slots * 4)) if slots else 0


def slot_blocks(slots: int, rows: int) -> np.ndarray:
    """[rows + 1] boundaries: display row r covers slots [b[r], b[r + 1]) (the renderer's pooling)."""
    if rows >= slots:
        return np.arange(slots + 1)
    r = np.arange(rows + 1)
    return (r * slots) // rows


def pool_slots(a: np.ndarray, rows: int, axis: int, signed: bool) -> np.ndarray:
    """`a` with its slot axis pooled to `rows` blocks: the value of largest magnitude (signed; +x
    over -x on a tie) or the largest value (weightings, >= 0)."""
    slots = a.shape[axis]
    if rows >= slots:
        return a
    bounds = slot_blocks(slots, rows)
    starts, last = bounds[:-1], bounds[1:] - 1
    hi = lo = np.take(a, starts, axis=axis)
    for j in range(1, int((last - starts).max()) + 1):  # blocks are a few slots: gather, compare
        v = np.take(a, np.minimum(starts + j, last), axis=axis)
        hi = np.fmax(hi, v)  # fmax / fmin skip NaN, as the renderer does
        lo = np.fmin(lo, v) if signed else lo
    if not signed:
        return hi
    return np.where(np.nan_to_num(hi) >= -np.nan_to_num(lo), hi, lo)


def max_abs(a: np.ndarray) -> float:
    """The largest finite |value| (as the renderer computes its colour scale), 1 if there is none."""
    a = np.abs(np.asarray(a))
    m = float(a.max()) if a.size else 0.0
    if not np.isfinite(m):
        a = a[np.isfinite(a)]
        m = float(a.max()) if a.size else 0.0
    return m or 1.0


def palette_index(a: np.ndarray, scale: float, signed: bool) -> np.ndarray:
    """The renderer's colour index of every value, as uint8 (JS Math.round: floor(x + 0.5))."""
    v = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0)
    x = 127.5 + 127.5 * v / scale if signed else 255 * v / scale
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """One array as {"shape", "b64"}: base64 of its little-endian float32 bytes."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "b64": _b64(a)}


def encode_quantised(a: np.ndarray, signed: bool, scale: float | None = None) -> dict[str, Any]:
    """One array as uint8 palette indices: {"shape", "dtype": "u1", "signed", "scale", "b64"}.

    signed: scale defaults to max |a| (the memory view's symmetric scale); else scale 1 (weights)."""
    if scale is None:
        scale = max_abs(a) if signed else 1.0
    idx = np.ascontiguousarray(palette_index(a, scale, signed))
    return {"shape": list(idx.shape), "dtype": "u1", "signed": bool(signed), "scale": float(scale),
            "b64": _b64(idx)}


def decode_array(spec: dict[str, Any]) -> np.ndarray:
    """The inverse of `encode_array` / `encode_quantised` (for tests and tools): float32 values;
    uint8 indices decode to the middle of their interval (within scale / 255 of the original)."""
    raw = base64.b64decode(spec["b64"])
    if spec.get("dtype", "f4") == "f4":
        return np.frombuffer(raw, dtype="<f4").reshape(spec["shape"])
    idx = np.frombuffer(raw, dtype=np.uint8).reshape(spec["shape"]).astype(np.float64)
    s = float(spec["scale"])
    out = (idx - 127.5) * s / 127.5 if spec["signed"] else idx * s / 255
    return out.astype(np.float32)


def quantisation_error(spec: dict[str, Any]) -> float:
    """The largest |decoded - original| an encoded array can have (0 for float32)."""
    if spec.get("dtype", "f4") == "f4":
        return 0.0
    return float(spec["scale"]) / (255.0 if spec["signed"] else 510.0) * (1 + 1e-6)


def encode_arrays(arrays: dict[str, np.ndarray], names: set[str], slots: int) -> tuple[dict[str, Any], int]:
    """The arrays in `names` as sent, and D, the rows of every slot-axis array (see module doc)."""
    rows = min(slots, slot_pixels(slots))
    pooled = rows < slots
    out: dict[str, Any] = {}
    for k, a in arrays.items():
        slot_axis = 1 if k == "memory" else 2 if k.split(".")[-1] in _STAGE_NAMES else None
        if slot_axis is None:
            if k in names:
                out[k] = encode_array(a)
            continue
        signed = k == "memory"
        quantise = pooled or a.size > QUANTISE_ABOVE
        if k in names:
            p = pool_slots(np.asarray(a), rows, slot_axis, signed)
            out[k] = encode_quantised(p, signed) if quantise else encode_array(p)
        if k == "memory" and "memory.diff" in names and quantise and a.shape[0] > 1:
            a64 = np.asarray(a, dtype=np.float64)
            diff = a64[1:] - a64[:-1]
            scale = max_abs(diff)
            out["memory.diff"] = encode_quantised(pool_slots(diff, rows, 1, True), True, scale)
    return out, rows


def _labels(episode: Episode, which: str, width: int) -> list[str] | None:
    labels = episode.meta.get(f"{which}_labels")
    if isinstance(labels, (list, tuple)) and len(labels) == width:
        return [str(x) for x in labels]
    return None


def episode_payload(episode: Episode | None, views: Iterable[str] = ALL_VIEWS) -> dict[str, Any]:
    """The JSON-ready description of `episode` that the views in `views` need.

    Returns {} for no episode. Sizes: T steps, N slots, M width, R/W heads, S shifts,
    I/O input/output width, D rows of the slot-axis arrays (N unless pooled), slots_px the
    drawn height of a slot axis; `meta` holds the episode's JSON metadata (task, seed, ...).
    """
    if episode is None:
        return {}
    names: set[str] = set()
    for v in views:
        names.update(VIEW_ARRAYS[v])
    arrays = episode.arrays()
    mem = episode.has_memory
    slots = episode.slots if mem else 0
    encoded, rows = encode_arrays(arrays, names, slots)
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
        "D": rows,
        "slots_px": slot_pixels(slots),
        "has_memory": mem,
        "meta": _json_safe(episode.meta),
        "input_labels": _labels(episode, "input", episode.inputs.shape[1]),
        "output_labels": _labels(episode, "output", episode.outputs.shape[1]),
        "arrays": encoded,
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
