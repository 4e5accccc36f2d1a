// The episode as the views read it: decoding the payload (ntmviz/app/payload.py), per-step
// chunks, and small pure helpers (blocks, scores, number formatting). No DOM.
//
//   payload = {format: "ntmviz-view", version: 3, id, T, N, M, I, O, D, DM, P, slots_px, time_px,
//              has_memory, static_memory, opening, reads, slot_labels, meta, input_labels,
//              output_labels,
//              family: {name, title, memory, steps, measure: {name, unit, marks, total, doc},
//                       groups: [{name, count, normalised, reads, writes, doc,
//                                 stages: [{name, doc, signed}, ..., {name: "weights", signed: false}],
//                                 params: [{name, kind, symbol, doc, signed, centred, log, range}]}],
//                       slot_state: [{name, doc}], slot_matrices: [{name, doc}], slot_coords, has_slots},
//              heads: [{group, h, label, colour, index}],
//              arrays: {inputs, targets, outputs, mask, score, coords, <group>.weights.time,
//                       slot.<name>.time},
//              scales: {memory, memory.diff, slot.<name>: [low, high], matrix.<name>},
//              steps: {K, count, names, chunks: {"c": {name: array}}}}
//   array  = {shape, b64} (float32) | {shape, dtype: "u1", signed, scale, b64} (palette indices)
//          | {shape, dtype: "u1", rows: {shape, b64}, signed?, b64} (each row on its own scale)
//
// A stage's `signed` (energies before a softmax) says its values may be < 0: the focus view draws
// it from a centre line, each side on the column's largest |value|; its row-scaled arrays carry
// "signed": true (index i of a row of largest |value| m is (i - 127) m / 127).
//
// The renderer knows no model's kind: it draws the groups, stages, params and slot fields the
// declaration names.
//
// Per-step arrays come in chunks of K steps (memory: K + 1 frames, c K .. c K + K); `frame()`
// finds step t's row, or null while its chunk has not arrived (`missing()` names the chunks a
// view needs; the mount asks the server for them).

import {indexValue} from "./palette.js";

export function base64Bytes(b64) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(b64);
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

// One encoded array -> {shape, data: Float32Array, approx, scale}; uint8 indices decode to the
// value of their colour (approx: hover marks them with "≈").
export function decode(spec) {
  if (spec == null) return null;
  if (spec.data instanceof Float32Array) return spec;
  const bytes = base64Bytes(spec.b64);
  if (spec.dtype === "u1" && spec.rows) {
    // each row (the last axis) on its own scale: index i of a row whose largest value is m is i m / 255;
    // signed, m is its largest |value| and i is (i - 127) m / 127 (127: exactly 0)
    const rows = decode(spec.rows).data, width = spec.shape[spec.shape.length - 1] || 1;
    const data = new Float32Array(bytes.length);
    if (spec.signed) for (let i = 0; i < bytes.length; i++) data[i] = ((bytes[i] - 127) * rows[Math.floor(i / width)]) / 127;
    else for (let i = 0; i < bytes.length; i++) data[i] = (bytes[i] * rows[Math.floor(i / width)]) / 255;
    return {shape: spec.shape, data, approx: true, rowScaled: true};
  }
  if (spec.dtype === "u1") {
    const s = Number(spec.scale) || 1, table = new Float32Array(256);
    for (let i = 0; i < 256; i++) table[i] = indexValue(i, s, !!spec.signed);
    const data = new Float32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) data[i] = table[bytes[i]];
    return {shape: spec.shape, data, approx: true, scale: s};
  }
  const data = bytes.byteOffset % 4 ? new Float32Array(bytes.slice().buffer)
    : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return {shape: spec.shape, data, approx: false};
}

export function maxAbs(arr) {
  let m = 0;
  for (let i = 0; i < arr.length; i++) {
    const v = Math.abs(arr[i]);
    if (v > m && Number.isFinite(v)) m = v;
  }
  return m;
}

const decodedCache = new WeakMap();
export const MAX_CHUNKS = 8; // decoded chunks kept per view (least recently used go first)

const NO_FAMILY = {name: "", title: "", memory: "none", steps: "inputs", groups: [], slot_state: [], slot_matrices: [],
  slot_coords: false, has_slots: false, measure: {name: "bit_errors", unit: "bit errors", marks: "wrong", total: "sum", doc: ""}};

// The decoded episode: typed arrays plus sizes and the declaration, built once per payload.
export function episodeFrom(payload) {
  if (payload == null || payload.arrays == null) return null;
  if (decodedCache.has(payload)) return decodedCache.get(payload);
  const family = payload.family || NO_FAMILY;
  const ep = {
    id: payload.id || null, T: payload.T, N: payload.N || 0, M: payload.M || 0, I: payload.I, O: payload.O,
    meta: payload.meta || {}, inputLabels: payload.input_labels || null, outputLabels: payload.output_labels || null,
    hasMemory: !!payload.has_memory, a: {},
    // static: one [D, M] memory for the whole episode, in arrays.memory (not per step)
    staticMemory: !!payload.static_memory,
    family, title: family.title || "", measure: family.measure || NO_FAMILY.measure,
    groups: family.groups || [],
    hasReads: !!payload.reads,
    slotLabels: Array.isArray(payload.slot_labels) ? payload.slot_labels.map(String) : null,
    slotsPx: payload.slots_px != null ? payload.slots_px : null,
    timePx: payload.time_px != null ? payload.time_px : null,
    opening: payload.opening || 0,
  };
  ep.D = payload.D || ep.N; // rows of the slot-axis arrays (D < N: pooled, see slotsOf)
  ep.DM = payload.DM || ep.N; // rows and columns of a slot x slot matrix
  ep.P = payload.P || ep.T; // columns of the time overviews (P < T: pooled, see stepsOf)
  for (const [k, v] of Object.entries(payload.arrays)) ep.a[k] = decode(v);
  const steps = payload.steps || {K: Math.max(1, ep.T), count: 0, names: [], chunks: {}};
  ep.K = steps.K;
  ep.chunkCount = steps.count;
  ep.stepNames = steps.names || [];
  ep.chunks = new Map(); // c -> {name: decoded}; insertion order = least recently used first
  ep.pending = new Set();
  for (const [c, arrays] of Object.entries(steps.chunks || {})) addChunk(ep, Number(c), arrays);
  // every head in order: {group, h, label, colour, index}; `index` is what "hidden" lists
  ep.heads = (payload.heads || []).map((hd) => ({...hd}));
  // Colour scales, fixed over the episode so a colour means the same value at every step.
  ep.scales = payload.scales || {};
  ep.memScale = ep.scales.memory || 1;
  ep.diffScale = ep.scales["memory.diff"] || 1;
  decodedCache.set(payload, ep);
  return ep;
}

// A group of heads of the declaration, by name.
export function groupOf(ep, name) {
  return ep.groups.find((g) => g.name === name) || {name, stages: [{name: "weights"}], params: []};
}

// The heads not hidden (hidden: a Set of head numbers).
export function visibleHeads(ep, hidden) {
  return hidden && hidden.size ? ep.heads.filter((hd) => !hidden.has(hd.index)) : ep.heads;
}

export function addChunk(ep, c, arrays) {
  const decoded = {};
  for (const [k, v] of Object.entries(arrays)) decoded[k] = decode(v);
  ep.chunks.delete(c);
  ep.chunks.set(c, decoded);
  ep.pending.delete(c);
  while (ep.chunks.size > MAX_CHUNKS) ep.chunks.delete(ep.chunks.keys().next().value);
}

// The chunk holding step t (memory: frame t, 0 .. T; frame T lives in the last chunk).
export function chunkIndex(ep, t, name) {
  const c = Math.floor(t / ep.K);
  return name === "memory" ? Math.min(c, ep.chunkCount - 1) : c;
}

// Step t's row of a per-step array: {data: Float32Array [rest], shape: rest, approx, scale}, or
// null if its chunk is not here (yet). For "memory", t is a frame: memory[t], 0 .. T.
export function frame(ep, name, t) {
  if (t < 0 || !ep.chunkCount) return null;
  const c = chunkIndex(ep, t, name);
  const chunk = ep.chunks.get(c);
  const arr = chunk && chunk[name];
  if (!arr) return null;
  const rest = arr.shape.slice(1);
  let size = 1;
  for (const s of rest) size *= s;
  const i = t - c * ep.K;
  if (i < 0 || i >= arr.shape[0]) return null;
  return {data: arr.data.subarray(i * size, (i + 1) * size), shape: rest, approx: arr.approx, scale: arr.scale};
}

// Row h of step t of a [T, H, K] array (a Float32Array of K), or null.
export function headRow(ep, name, t, h) {
  const f = frame(ep, name, t);
  if (!f) return null;
  const K = f.shape[1];
  return f.data.subarray(h * K, (h + 1) * K);
}

// Step t's value for head h of a [T, H] array, or NaN.
export function headValue(ep, name, t, h) {
  const f = frame(ep, name, t);
  return f ? f.data[h] : NaN;
}

// Chunks a view drawing `names` needs for step t (memory: frames t and t + 1), not yet here.
export function missing(ep, t, names) {
  const out = new Set();
  for (const name of names) {
    if (!ep.stepNames.includes(name)) continue;
    const frames = name === "memory" ? [t, t + 1] : [t];
    for (const f of frames) {
      const c = chunkIndex(ep, f, name);
      if (!ep.chunks.has(c)) out.add(c);
      else if (!ep.chunks.get(c)[name]) out.add(c);
    }
  }
  return [...out];
}

// Mark chunk c used (kept longest).
export function touch(ep, c) {
  const chunk = ep.chunks.get(c);
  if (chunk) {
    ep.chunks.delete(c);
    ep.chunks.set(c, chunk);
  }
}

// ---- blocks: slot rows and time columns -----------------------------------------------------

// Part r of n items split into `parts` parts covers [start, end) (payload.py's `blocks`).
export function blockOf(n, parts, r) {
  if (parts >= n) return [r, r + 1];
  const n0 = Math.floor((r * n) / parts);
  return [n0, Math.max(n0 + 1, Math.floor(((r + 1) * n) / parts))];
}

// The part of `parts` that item i of n falls in.
export function partOf(n, parts, i) {
  if (parts >= n) return i;
  return Math.min(parts - 1, Math.floor(((i + 1) * parts - 1) / n));
}

// Row r of a slot-axis array covers slots [n0, n1).
export function slotsOf(ep, r) {
  return blockOf(ep.N, ep.D, r);
}
export function slotText(ep, r) {
  const [n0, n1] = slotsOf(ep, r);
  const where = n1 - n0 > 1 ? `slots ${n0}–${n1 - 1}` : `slot ${n0}`;
  return ep.slotLabels && ep.slotLabels[r] != null ? `${where} “${ep.slotLabels[r]}”` : where;
}
// Column p of a time overview covers steps [t0, t1).
export function stepsOf(ep, p) {
  return blockOf(ep.T, ep.P, p);
}

// ---- scores ----------------------------------------------------------------------------------

// The measure at each step, 0 on unscored steps, as Episode.step_scores() gives it: Float32Array [T].
// Python computes it (arrays.score); without it, wrong bits or wrong answers from the outputs.
export function stepErrors(ep) {
  if (ep.a.score) return ep.a.score.data;
  const {T, O} = ep, out = new Float32Array(T);
  const outputs = ep.a.outputs, targets = ep.a.targets, mask = ep.a.mask;
  if (!targets || !outputs) return out;
  const answers = answerScoring(ep);
  for (let t = 0; t < T; t++) {
    if (mask && !(mask.data[t] > 0)) continue;
    let e = 0;
    if (answers) {
      e = argmax(outputs.data, t * O, O) !== argmax(targets.data, t * O, O) ? 1 : 0;
    } else {
      for (let o = 0; o < O; o++) if ((outputs.data[t * O + o] > 0.5) !== (targets.data[t * O + o] > 0.5)) e++;
    }
    out[t] = e;
  }
  return out;
}

export function answerScoring(ep) {
  return ep.measure.name === "answer_errors";
}

// Whether the measure marks wrong steps (bits, answers) or is a signed cost per step.
export function costMeasure(ep) {
  return ep.measure.marks === "cost";
}

// The episode's score: the sum of the per-step values, or their mean over scored steps.
export function episodeScore(ep, scores) {
  let sum = 0, n = 0;
  for (let t = 0; t < ep.T; t++) {
    if (!scored(ep, t)) continue;
    sum += scores[t];
    n += 1;
  }
  return ep.measure.total === "mean" ? (n ? sum / n : 0) : sum;
}

// what the measure counts: one step's value as text ("3 bit errors", "0.21 bits above the
// optimum per prediction"), or the label of the score strip
export function errorWords(ep, n) {
  const unit = ep.measure.unit;
  if (n === undefined) return answerScoring(ep) ? "wrong" : costMeasure(ep) ? "bits vs optimum" : "bit errors";
  if (costMeasure(ep) || ep.measure.total === "mean") return `${fmt(n)} ${unit}`;
  return `${n} ${n === 1 ? unit.replace(/s$/, "") : unit}`; // "1 bit error", "1 wrong answer"
}

function argmax(data, start, n) {
  let best = 0;
  for (let i = 1; i < n; i++) if (data[start + i] > data[start + best]) best = i;
  return best;
}

export function scored(ep, t) {
  return ep.a.mask ? ep.a.mask.data[t] > 0 : true;
}

// ---- numbers as text -------------------------------------------------------------------------

export function fmt(v) {
  if (v == null || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(2);
  return v.toFixed(a >= 100 ? 1 : 3);
}

// A value for hover: "≈" when it arrived as a palette index.
export function approx(arr, v) {
  return (arr && arr.approx ? "≈" : "") + fmt(v);
}

