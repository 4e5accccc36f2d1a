"""Turn an Episode into what the browser renderer draws: its declaration, sizes, labels and
compact arrays.

Everything a view draws comes from the episode's declaration (episode.family, contract.py), sent
as `family` (its groups of heads with their stages and params, its slot state, slot matrices and
slot coordinates, its measure) and `heads` (every head in order, with its label and colour); the
arrays are named as Episode.arrays() names them ("read.weights", "write.erase", "slot.usage",
"matrix.links", "coords"). Nothing here, or in the renderer, knows a model's kind.

Never more pixels than the screen has, whatever the episode's size:

- The slot axis. The memory, focus and head-location canvases draw it `slots_px` pixels tall
  (`slot_pixels(N)`). When N is larger, every array with a slot axis is pooled down to
  D = slots_px rows before it is sent, in the blocks the renderer draws (row r covers slots
  floor(r N / D) .. floor((r + 1) N / D) - 1, `blocks`): memory keeps the value of largest
  magnitude, weightings the largest weight (so a sharp focus stays visible).
- The time axis. Views over time (head locations, the sequence) draw `time_px` pixels wide
  (`time_pixels(T)`). The head locations travel as `read.weights.time` / `write.weights.time`
  [P, H, D]: the weightings pooled along time to P = min(T, time_px) columns (column p covers
  steps floor(p T / P) .. floor((p + 1) T / P) - 1; the largest weight of each block). The
  sequence's inputs, targets, outputs and mask [T, <= a few dozen] travel whole (the renderer
  pools them; they are small, and wrong bits are counted from the exact values).
- The step axis. What a view shows at step t (the memory after t, the head weightings and
  addressing stages at t, the key / erase / add / read vectors) travels in chunks of K steps,
  K chosen so one chunk holds at most `STEP_BUDGET` bytes. The first message carries the chunk
  of the current step; the renderer asks for the others as playback reaches them (see
  canvas.py). Memory chunk c holds memory[c K .. c K + K] (K + 1 frames: the memory before and
  after each of its steps); the other chunks hold steps c K .. c K + K - 1. So every view shows
  the true value at the current step, and a 5000-step episode opens with a payload of the
  same size as a 50-step one. The HTML export inlines every chunk (there is no server to ask).

Two encodings, both base64 of little-endian bytes (never lists of floats):

    {"shape": [...], "b64": "..."}                      float32, exact
    {"shape": [...], "dtype": "u1", "signed": bool, "scale": s, "b64": "..."}
                                                         uint8 indices into the renderer's
                                                         palettes

The uint8 form is the colour the renderer paints, nothing less. Signed arrays (memory) map v to
round(127 + 127 v / s), clipped to 0 .. 254, with s = max |v| over the episode: index 127 is
exactly zero, so a memory of 1e-6 decodes to 0, not to half a step of the palette. Unit arrays
(weightings, in [0, 1]) map w to round(255 w) (s = 1). Decoding gives (i - 127) s / 127, or
i s / 255, within s / 254 (signed) or s / 510 of the value sent. Arrays with a slot axis are
sent this way when they are large (more than `QUANTISE_ABOVE` values over the episode) or
pooled; the small arrays (inputs, keys, head parameters ...) stay exact float32.

A focus stage is drawn on its own scale (its largest weight at the step), so when quantised it
travels scaled per row: {"shape", "dtype": "u1", "rows": {"shape", "b64"} (float32: each row's
largest value), "b64"}, index i of row k decoding to i / 255 * rows[k]. A content weighting whose
peak is 0.01 keeps 255 levels below that peak, not 2. A stage declared `signed` (energies before a
softmax, which may be < 0) is pooled by largest magnitude, as memory is, and travels with
"signed": true, rows[k] its largest |value| and index i decoding to (i - 127) / 127 * rows[k].

Each view asks only for the arrays it draws (`view_arrays`); the HTML export sends them all.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from typing import Any, Iterable

import numpy as np

from ..contract import MEASURES
from ..episode import Episode
from .palette import SIGNED_ZERO, head_colour, palette_index  # noqa: F401  (palette_index: the payload's encoding)

PAYLOAD_FORMAT = "ntmviz-view"
PAYLOAD_VERSION = 3

WHOLE = ("inputs", "targets", "outputs", "mask")  # [T, small]: drawn over time, sent whole
ALL_VIEWS = ("player", "memory", "focus", "heads", "slots", "sequence")

QUANTISE_ABOVE = 1 << 16  # slot-axis arrays with more values than this travel as uint8 palette indices
MAX_SLOT_PX = 420  # the tallest slot axis the renderer draws, in CSS pixels
MAX_MATRIX_PX = 160  # a slot x slot matrix is pooled to at most this many rows and columns
MIN_TIME_PX, MAX_TIME_PX = 220, 520  # the narrowest and widest time axis it draws
STEP_BUDGET = 1 << 19  # bytes of per-step arrays in one chunk (before base64)
FINAL_STAGE_DOC = "the weighting the head used"


def slot_pixels(slots: int) -> int:
    """How many CSS pixels tall the renderer draws a slot axis of `slots` slots (0 for none)."""
    return min(MAX_SLOT_PX, max(200, slots * 4)) if slots else 0


def time_pixels(steps: int) -> int:
    """How many CSS pixels wide the renderer draws a time axis of `steps` steps."""
    return min(MAX_TIME_PX, max(MIN_TIME_PX, steps * 6))


def blocks(n: int, parts: int) -> np.ndarray:
    """[parts + 1] boundaries: part r covers [b[r], b[r + 1]) of 0 .. n-1 (identity when parts >= n)."""
    if parts >= n:
        return np.arange(n + 1)
    r = np.arange(parts + 1)
    return (r * n) // parts


slot_blocks = blocks  # display row r of a slot axis pooled to `rows` rows covers slots [b[r], b[r + 1])


def pool_slots(a: np.ndarray, rows: int, axis: int, signed: bool) -> np.ndarray:
    """`a` with its slot axis pooled to `rows` blocks: the value of largest magnitude (signed; +x
    over -x on a tie) or the largest value (weightings, >= 0)."""
    slots = a.shape[axis]
    if rows >= slots:
        return a
    bounds = blocks(slots, rows)
    starts, last = bounds[:-1], bounds[1:] - 1
    hi = lo = np.take(a, starts, axis=axis)
    for j in range(1, int((last - starts).max()) + 1):  # blocks are a few slots: gather, compare
        v = np.take(a, np.minimum(starts + j, last), axis=axis)
        hi = np.fmax(hi, v)  # fmax / fmin skip NaN, as the renderer does
        lo = np.fmin(lo, v) if signed else lo
    if not signed:
        return hi
    return np.where(np.nan_to_num(hi) >= -np.nan_to_num(lo), hi, lo)


def pool_time(a: np.ndarray, cols: int) -> np.ndarray:
    """`a` [T, ...] (weightings, >= 0) pooled along time to [cols, ...]: the largest value of each
    block of steps (`blocks(T, cols)`)."""
    if cols >= a.shape[0]:
        return a
    return np.fmax.reduceat(a, blocks(a.shape[0], cols)[:-1], axis=0)


def max_abs(a: np.ndarray) -> float:
    """The largest finite |value| (the renderer's colour scale), 1 if there is none."""
    a = np.abs(np.asarray(a))
    m = float(a.max()) if a.size else 0.0
    if not np.isfinite(m):
        a = a[np.isfinite(a)]
        m = float(a.max()) if a.size else 0.0
    return m or 1.0


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
    """The inverse of `encode_array` / `encode_quantised` / `encode_row_scaled` (for tests and
    tools): float32 values; uint8 indices decode to the value of their colour (within
    `quantisation_error` of the original), row-scaled ones to i / 255 of their row's largest value
    (signed: (i - 127) / 127 of its largest |value|)."""
    raw = base64.b64decode(spec["b64"])
    if spec.get("dtype", "f4") == "f4":
        return np.frombuffer(raw, dtype="<f4").reshape(spec["shape"])
    idx = np.frombuffer(raw, dtype=np.uint8).reshape(spec["shape"]).astype(np.float64)
    if "rows" in spec:  # each row on its own scale
        rows = decode_array(spec["rows"]).astype(np.float64)[..., None]
        if spec.get("signed"):
            return ((idx - SIGNED_ZERO) * rows / SIGNED_ZERO).astype(np.float32)
        return (idx * rows / 255).astype(np.float32)
    s = float(spec["scale"])
    out = (idx - SIGNED_ZERO) * s / SIGNED_ZERO if spec["signed"] else idx * s / 255
    return out.astype(np.float32)


def quantisation_error(spec: dict[str, Any]) -> float:
    """The largest |decoded - original| an encoded array can have (0 for float32; for a
    row-scaled array the bound of its largest row: row k's own is rows[k] / 510, signed rows[k] / 254)."""
    if spec.get("dtype", "f4") == "f4":
        return 0.0
    if "rows" in spec:
        rows = decode_array(spec["rows"])
        step = 2.0 * SIGNED_ZERO if spec.get("signed") else 510.0
        return (float(rows.max()) if rows.size else 0.0) / step * (1 + 1e-4)  # (1e-4: the row's float32 rounding)
    return float(spec["scale"]) / (2.0 * SIGNED_ZERO if spec["signed"] else 510.0) * (1 + 1e-6)


def focus_fields(group) -> list[str]:
    """What the focus view draws of a group's heads: its stages, the final weights, then its
    params of kind "number" and "distribution"."""
    return [*group.stage_names, *(p.name for p in group.params if p.kind != "vector")]


def vector_fields(group) -> list[str]:
    """The params the sequence view draws as vectors at step t (kind "vector")."""
    return [p.name for p in group.params if p.kind == "vector"]


def view_arrays(episode: Episode, view: str) -> tuple[str, ...]:
    """The arrays view `view` draws of this episode, by the names of Episode.arrays() ("...time":
    the whole episode pooled along time, sent with the first message)."""
    family, groups = episode.family, episode.family.groups
    if view not in ALL_VIEWS:
        raise KeyError(view)
    if view == "memory":
        return ("memory", "memory.diff", *(f"{g.name}.weights" for g in groups))
    if view == "heads":  # the overview, and every step's weights for a zoom on time
        return tuple(f"{g.name}.weights{suffix}" for g in groups for suffix in (".time", ""))
    if view == "focus":
        return tuple(f"{g.name}.{f}" for g in groups for f in focus_fields(g))
    if view == "slots":
        out = [f"slot.{f.name}{suffix}" for f in family.slot_state for suffix in (".time", "")]
        out += [f"matrix.{f.name}" for f in family.slot_matrices]
        if family.slot_coords:
            out += ["coords", *(f"{g.name}.weights" for g in groups)]
        return tuple(out)
    if view == "sequence":
        out = [*WHOLE, "score"] + (["reads"] if episode.reads is not None else [])
        return tuple(out + [f"{g.name}.{p}" for g in groups for p in vector_fields(g)])
    return ()


def declaration(episode: Episode) -> dict[str, Any]:
    """The episode's declaration as the renderer reads it: its family (groups with every stage,
    the final weights last, and their params; slot state, matrices, coordinates; the measure)."""
    f = episode.family
    measure = MEASURES[f.measure]
    return {
        "name": f.name, "title": f.title, "memory": f.memory, "steps": f.steps, "doc": f.doc,
        "measure": {"name": measure.name, "unit": measure.unit, "marks": measure.marks, "total": measure.total,
                    "doc": measure.doc},
        "groups": [{"name": g.name, "count": g.count, "normalised": g.normalised, "reads": g.reads,
                    "writes": g.writes, "doc": g.doc,
                    "stages": [{"name": s.name, "doc": s.doc, "signed": s.signed} for s in g.stages]
                    + [{"name": "weights", "doc": FINAL_STAGE_DOC, "signed": False}],
                    # every field a param declares, as it declares it, and its width K
                    "params": [_json_safe({**dataclasses.asdict(p), "width": _param_width(episode, g.name, p.name)})
                               for p in g.params]}
                   for g in f.groups],
        "slot_state": [{"name": x.name, "doc": x.doc} for x in f.slot_state],
        "slot_matrices": [{"name": x.name, "doc": x.doc} for x in f.slot_matrices],
        "slot_coords": f.slot_coords,
        "has_slots": f.has_slots,  # the slots view: the declaration's own answer, not rebuilt in the browser
    }


def _param_width(episode: Episode, group: str, name: str) -> int:
    """K of a [T, H, K] param (1 for a number), for laying it out before its values arrive."""
    a = episode.heads[group].params.get(name) if group in episode.heads else None
    return int(a.shape[-1]) if a is not None and a.ndim == 3 else 1


def head_list(episode: Episode) -> list[dict[str, Any]]:
    """Every head in order: its group, index in the group, label, colour and number."""
    return [{"group": g, "h": h, "label": label, "colour": head_colour(i), "index": i}
            for i, (g, h, label, _) in enumerate(episode.head_list())]


def _state_range(episode: Episode, name: str) -> tuple[float, float]:
    """The colour scale of a slot state field: its declared range, else its values' [min, max]
    over the episode (0 included, so an all-positive field starts its ramp at 0)."""
    declared = next(f.range for f in episode.family.slot_state if f.name == name)
    if declared is not None:
        return float(declared[0]), float(declared[1])
    a = np.asarray(episode.slot_state[name], np.float64)
    finite = a[np.isfinite(a)]
    lo, hi = (min(0.0, float(finite.min())), max(0.0, float(finite.max()))) if finite.size else (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def encode_row_scaled(a: np.ndarray, signed: bool = False) -> dict[str, Any]:
    """Weightings [..., D] (>= 0) as uint8 on each row's own scale: {"shape", "dtype": "u1",
    "rows": float32 [...] (each row's largest value), "b64"}; index i of a row whose largest value
    is m decodes to i m / 255 (within m / 510 of the value sent).

    signed (a stage that may be < 0): m is the row's largest |value|, v maps to round(127 + 127 v / m)
    and "signed": true says so; index i decodes to (i - 127) m / 127 (within m / 254; 127 is exactly 0)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if signed:
        rows = np.abs(a).max(-1) if a.size else np.zeros(a.shape[:-1])
        scale = np.where(rows > 0, rows, 1.0)[..., None]
        idx = np.clip(np.floor(SIGNED_ZERO + SIGNED_ZERO * a / scale + 0.5), 0, 2 * SIGNED_ZERO).astype(np.uint8)
    else:
        rows = a.max(-1) if a.size else np.zeros(a.shape[:-1])
        scale = np.where(rows > 0, rows, 1.0)[..., None]
        idx = np.clip(np.floor(255 * a / scale + 0.5), 0, 255).astype(np.uint8)
    out = {"shape": list(idx.shape), "dtype": "u1", "rows": encode_array(rows), "b64": _b64(np.ascontiguousarray(idx))}
    if signed:
        out["signed"] = True
    return out


def _is_slot_axis(name: str, family) -> tuple[int, ...]:
    """The slot axes of a per-step array [T or T+1, ...] (none: it is not drawn over the slots)."""
    if name.startswith("memory"):
        return (1,)
    if name.startswith("matrix."):
        return (1, 2)
    if name.startswith("slot."):
        return (1,)
    group, _, field = name.partition(".")
    if any(g.name == group and field in g.stage_names for g in family.groups):
        return (2,)
    return ()


class EpisodePayload:
    """An episode as the views in `views` draw it, ready to send: `initial(t)` is the first
    message (declaration, sizes, labels, whole and overview arrays, and the chunk of step t),
    `chunk(c)` a later chunk of the per-step arrays. `step_budget=None` puts every step in one chunk.

    The episode's arrays are pooled and scaled once, here; chunks are cut from them on demand."""

    def __init__(self, episode: Episode, views: Iterable[str] = ALL_VIEWS,
                 step_budget: int | None = STEP_BUDGET, scales: dict[str, Any] | None = None):
        names: set[str] = set()
        for v in views:
            names.update(view_arrays(episode, v))
        family = episode.family
        self.episode = episode
        self.id = uuid.uuid4().hex[:12]
        self.T = T = episode.steps
        mem = episode.has_memory
        slots = episode.slots if mem else 0
        self.rows = rows = min(slots, slot_pixels(slots))
        self.matrix_rows = min(slots, MAX_MATRIX_PX)
        self.cols = min(T, time_pixels(T))
        pooled = rows < slots
        arrays = episode.arrays()
        if "score" in names and episode.targets is not None and episode.outputs is not None:
            arrays["score"] = episode.step_scores()
        self.whole: dict[str, Any] = {k: encode_array(arrays[k]) for k in (*WHOLE, "score", "coords")
                                      if k in names and k in arrays}
        self.scales: dict[str, Any] = {}
        # per-step arrays, slot-pooled: name -> (array [T or T+1, ...], encoding)
        # encoding: None float32, ("palette", signed, scale) uint8 palette indices, ("rows", signed) row-scaled
        self._steps: dict[str, tuple[np.ndarray, Any]] = {}
        self.static = static = episode.static_memory
        if mem:
            self.scales["memory"] = max_abs(episode.memory)
            memory64 = np.asarray(episode.memory, dtype=np.float64)
            self.scales["memory.diff"] = max_abs(np.diff(memory64, axis=0)) if T and not static else 1.0
        for name in family.slot_state:
            self.scales[f"slot.{name.name}"] = list(_state_range(episode, name.name))
        for name in family.slot_matrices:
            a = np.asarray(episode.slot_matrices[name.name])
            self.scales[f"matrix.{name.name}"] = max_abs(a)
        # scales given from outside (Compare's one scale for two episodes) win over the episode's own
        self.scales.update({k: v for k, v in (scales or {}).items() if k in self.scales})
        if static and "memory" in names:
            # one [D, M] matrix for the whole episode: sent once, with the whole arrays
            a = pool_slots(np.asarray(episode.memory), rows, 0, True)
            big = pooled or a.size > QUANTISE_ABOVE
            self.whole["memory"] = (encode_quantised(a, True, self.scales["memory"]) if big else encode_array(a))
        focus = {f"{g.name}.{s.name}" for g in family.groups for s in g.stages}  # drawn on their own scale
        signed_focus = {f"{g.name}.{s.name}" for g in family.groups for s in g.stages if s.signed}  # may be < 0
        for k in sorted(names):
            if k in self.whole or k.endswith(".time") or k == "memory.diff" or k not in arrays or (k == "memory" and static):
                continue
            a = np.asarray(arrays[k])
            axes = _is_slot_axis(k, family)
            signed = k == "memory" or k.startswith(("slot.", "matrix.")) or k in signed_focus  # weightings are >= 0
            for axis in axes:
                a = pool_slots(a, self.matrix_rows if k.startswith("matrix.") else rows, axis, signed)
            quantise = bool(axes) and (pooled or a.size > QUANTISE_ABOVE)
            if not quantise:
                encoding = None
            elif k == "memory":
                encoding = ("palette", True, self.scales["memory"])
            elif k.startswith("matrix."):
                encoding = ("palette", True, self.scales[k])
            elif k.startswith("slot."):
                lo, hi = self.scales[k]
                encoding = ("palette", True, max(abs(lo), abs(hi)))
            elif k in focus or k.endswith(".weights"):
                encoding = ("rows", k in signed_focus) if k in focus else ("palette", False, 1.0)
            else:
                encoding = None
            self._steps[k] = (a, encoding)
            if k == "memory" and "memory.diff" in names and quantise and T:
                # quantised frames would lose small changes: the change travels with its own scale
                diff = pool_slots(np.diff(memory64, axis=0), rows, 1, True)
                self._steps["memory.diff"] = (diff, ("palette", True, self.scales["memory.diff"]))
        self.overview: dict[str, Any] = {}
        for k in names:
            if not k.endswith(".time") or k[:-5] not in arrays:
                continue
            src = np.asarray(arrays[k[:-5]])  # [T, H, N] weightings or [T, N] slot state: the largest value
            a = pool_time(pool_slots(src, rows, src.ndim - 1, k.startswith("slot.")), self.cols)
            big = pooled or self.cols < T or a.size > QUANTISE_ABOVE
            if k.startswith("slot."):
                self.overview[k] = encode_array(a)  # [P, D]: small, and signed fields stay exact
            else:
                self.overview[k] = encode_quantised(a, False) if big else encode_array(a)
        # bytes per step: float32 values, uint8 indices (row-scaled ones with each row's float32 scale)
        per_step = sum(a[0].size * (4 if enc is None else 1)
                       + (4 * a[0].size // a.shape[-1] if enc is not None and enc[0] == "rows" else 0)
                       for a, enc in self._steps.values())
        if step_budget is None or not per_step:
            self.K = max(1, T)
        else:
            self.K = int(max(1, min(T, step_budget // per_step)))
        self.chunks = -(-T // self.K) if self._steps else 0

    def chunk(self, c: int) -> dict[str, Any]:
        """Chunk c of the per-step arrays: memory frames c K .. c K + K, steps c K .. c K + K - 1."""
        if not 0 <= c < self.chunks:
            raise IndexError(f"chunk {c} of {self.chunks}")
        t0, t1 = c * self.K, min(self.T, (c + 1) * self.K)
        out = {}
        for k, (a, encoding) in self._steps.items():
            part = a[t0:t1 + 1] if k == "memory" else a[t0:t1]
            if encoding is None:
                out[k] = encode_array(part)
            elif encoding[0] == "rows":
                out[k] = encode_row_scaled(part, encoding[1])
            else:
                _, signed, scale = encoding
                out[k] = encode_quantised(part, signed, scale)
        return out

    def _slot_labels(self) -> list[str] | None:
        """The slot labels per display row (D of them), or None."""
        labels = self.episode.slot_labels
        return None if labels is None else _pooled_labels([str(x) for x in labels], self.rows)

    def initial(self, t: int = 0, all_chunks: bool = False) -> dict[str, Any]:
        """The first message: see `episode_payload`."""
        ep = self.episode
        mem = ep.has_memory
        first = min(max(0, int(t)), max(0, self.T - 1)) // self.K
        wanted = range(self.chunks) if all_chunks else [first] if self.chunks else []
        return {
            "format": PAYLOAD_FORMAT,
            "version": PAYLOAD_VERSION,
            "id": self.id,
            "T": self.T,
            "N": ep.slots,
            "M": ep.width,
            "I": int(ep.inputs.shape[1]) if ep.inputs is not None else 0,
            "O": int(ep.outputs.shape[1]) if ep.outputs is not None else 0,
            "D": self.rows,
            "DM": self.matrix_rows,
            "P": self.cols,
            "slots_px": slot_pixels(ep.slots if mem else 0),
            "time_px": time_pixels(self.T),
            "has_memory": mem,
            "static_memory": self.static,
            "opening": ep.opening_step(),
            "family": declaration(ep),
            "heads": head_list(ep),
            "reads": ep.reads is not None,
            "slot_labels": self._slot_labels(),
            "meta": _json_safe(ep.meta),
            "input_labels": _labels(ep, "input", ep.inputs.shape[1]) if ep.inputs is not None else None,
            "output_labels": _labels(ep, "output", ep.outputs.shape[1]) if ep.outputs is not None else None,
            "arrays": {**self.whole, **self.overview},
            "scales": dict(self.scales),
            "steps": {"K": self.K, "count": self.chunks, "names": sorted(self._steps),
                      "chunks": {str(c): self.chunk(c) for c in wanted}},
        }


def shared_scales(episodes: Iterable[Episode | None]) -> dict[str, Any]:
    """One colour scale for several episodes (Compare's sides): the memory's and its change's
    largest |value| over all of them, each slot state's widest range, each matrix's largest |value|,
    for every name two or more of them have; a name only one has keeps its own scale."""
    per_name: dict[str, list] = {}
    for ep in episodes:
        if ep is None or not ep.has_memory:
            continue
        memory64 = np.asarray(ep.memory, dtype=np.float64)
        per_name.setdefault("memory", []).append(max_abs(memory64))
        if ep.steps and not ep.static_memory:
            per_name.setdefault("memory.diff", []).append(max_abs(np.diff(memory64, axis=0)))
        for f in ep.family.slot_state:
            per_name.setdefault(f"slot.{f.name}", []).append(_state_range(ep, f.name))
        for f in ep.family.slot_matrices:
            per_name.setdefault(f"matrix.{f.name}", []).append(max_abs(ep.slot_matrices[f.name]))
    out: dict[str, Any] = {}
    for name, values in per_name.items():
        if len(values) < 2:
            continue
        if name.startswith("slot."):
            out[name] = [min(v[0] for v in values), max(v[1] for v in values)]
        else:
            out[name] = max(values)
    return out


def _pooled_labels(labels: list[str], rows: int) -> list[str]:
    """One label per display row: the slot's own, or "first … last" for a pooled block."""
    b = blocks(len(labels), rows)
    return [labels[b[r]] if b[r + 1] - b[r] == 1 else f"{labels[b[r]]} … {labels[b[r + 1] - 1]}"
            for r in range(len(b) - 1)]


def _labels(episode: Episode, which: str, width: int) -> list[str] | None:
    labels = episode.meta.get(f"{which}_labels")
    if isinstance(labels, (list, tuple)) and len(labels) == width:
        return [str(x) for x in labels]
    return None


def episode_payload(episode: Episode | None, views: Iterable[str] = ALL_VIEWS, t: int = 0,
                    step_budget: int | None = None) -> dict[str, Any]:
    """The JSON-ready description of `episode` that the views in `views` need.

    Returns {} for no episode. `family`: the declaration (`declaration`); `heads`: every head
    with its label and colour (`head_list`); sizes: T steps, N slots, M width, I/O input/output
    width, D rows of the slot-axis arrays (N unless pooled), DM rows and columns of slot x slot
    matrices, P columns of the time-pooled overviews (T unless pooled), slots_px / time_px the
    drawn height of a slot axis and width of a time axis; `opening` the step worth showing first;
    `meta` the episode's JSON metadata (task, seed, ...); `arrays` the whole and overview arrays
    ("score": the measure at each step); `scales` the colour scales (memory, its change: max |v|
    over the episode; slot state: [low, high]; matrices: max |v|); `steps` {K, count, names,
    chunks: {"c": {name: array}}} the per-step arrays in chunks of K steps. With `step_budget=None` (the default, as the export uses it)
    every chunk is included; with a budget only the chunk holding step t (see EpisodePayload).
    """
    if episode is None:
        return {}
    plan = EpisodePayload(episode, views, step_budget)
    return plan.initial(t, all_chunks=step_budget is None)


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
    """One line about an episode: what made it, task, size, seed, score (for titles and notes)."""
    if episode is None:
        return "no episode"
    meta = episode.meta
    parts = [episode.title]
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
        heads = " / ".join(f"{r.heads} {k}" for k, r in episode.head_records())
        parts.append(f"{'static ' if episode.static_memory else ''}memory {episode.slots}×{episode.width}, "
                     f"{heads} head(s)")
    else:
        parts.append("no memory")
    if meta.get("question"):  # a story: what was asked, and what came back
        parts.append(f"question {meta['question']!r}, answer {meta.get('answer')}, "
                     f"model's answer {meta.get('model_answer')}")
    elif episode.targets is not None and episode.outputs is not None:
        parts.append(score_text(episode))
    src = meta.get("checkpoint") or meta.get("source")
    if src:
        parts.append(f"from {src}")
    return ", ".join(parts)


def score_text(episode: Episode) -> str:
    """The episode's measure in words: "3 bit errors", "0.008 bits above the optimum per prediction"."""
    value = episode.score()
    shown = f"{value:.3f}" if MEASURES[episode.measure].total == "mean" else f"{value:g}"
    return f"{shown} {episode.error_name}"
