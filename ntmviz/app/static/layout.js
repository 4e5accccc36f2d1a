// Layout: where each view draws what, in CSS pixels. Pure functions of the episode's sizes, used
// by the views to draw and hit-test and by the tests to find a cell's pixels. No DOM.

// Slot axes and time axes have the same length in every view, so they line up across views.
export function axes(ep) {
  const slotsPx = ep.slotsPx != null ? ep.slotsPx : ep.N ? Math.min(420, Math.max(200, ep.N * 4)) : 0;
  const timePx = ep.timePx != null ? ep.timePx : Math.min(520, Math.max(220, ep.T * 6));
  return {slotsPx, timePx};
}

// Indices 0 .. n-1 to label along px pixels, at least minGap pixels apart.
export function niceTicks(n, px, minGap) {
  const maxLabels = Math.max(1, Math.floor(px / minGap));
  const raw = Math.max(1, (n - 1) / maxLabels);
  const steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000];
  const step = steps.find((s) => s >= raw) || Math.ceil(raw);
  const out = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

export const AXIS = 44; // room left of a slot axis for its tick labels and title
export const LABELLED_AXIS = 150; // ... when the slots have labels (a memory network's sentences)
export function axisWidth(ep) {
  return ep.slotLabels ? LABELLED_AXIS : AXIS;
}

// More heads than this and each head's panels (focus, head locations) get a shorter slot axis,
// so ten heads' panels take a screen or two rather than eight; the memory keeps its own.
export const MANY_HEADS = 4;
export function panelSlotsPx(ep) {
  const {slotsPx} = axes(ep);
  const heads = ep.heads ? ep.heads.length : ep.R + ep.W;
  return heads > MANY_HEADS ? Math.min(slotsPx, 200) : slotsPx;
}

// Memory view: one strip per head (its weighting at t) left of the N x M matrix, arrows at each
// head's focus right of it, then the colour bar. Cell (row r, column m) covers
// [x0 + m cellW, + cellW) x [y0 + r mh / D, + mh / D).
export function memoryGeometry(ep) {
  const {slotsPx} = axes(ep);
  const heads = ep.heads ? ep.heads.length : ep.R + ep.W;
  const cellW = Math.max(3, Math.min(24, Math.floor(230 / Math.max(1, ep.M))));
  const axis = axisWidth(ep);
  const x0 = axis + heads * 7, y0 = 6, mw = ep.M * cellW, mh = slotsPx;
  const barX = x0 + mw + 6 + heads * 7, barW = 10;
  return {x0, y0, mw, mh, cellW, stripX: axis, stripW: 5, arrowX: x0 + mw + 3, barX, barW, barY: y0,
    barH: mh, width: barX + barW + 46, height: y0 + mh + 34};
}

// Head locations: one panel per head, steps across (time_px wide), slots down. `rows` is how
// many slot rows are shown (all D, or the busy ones when zoomed).
export function headsGeometry(ep, rows) {
  const {timePx} = axes(ep), slotsPx = panelSlotsPx(ep);
  const shown = rows == null ? ep.D : rows;
  const ph = shown >= ep.D ? slotsPx : Math.min(slotsPx, Math.max(60, shown * 16));
  const x0 = axisWidth(ep), y0 = 20, pw = timePx;
  return {x0, y0, pw, ph, rows: shown, width: x0 + pw + 8, height: y0 + ph + 34};
}

// The step under x in a time axis [x0, x0 + pw) of T steps (clamped to 0 .. T-1).
export function stepAt(x, x0, pw, T) {
  return Math.max(0, Math.min(T - 1, Math.floor(((x - x0) * T) / pw)));
}
// The centre of step t's column.
export function stepX(t, x0, pw, T) {
  return x0 + ((t + 0.5) * pw) / T;
}
// The row under y in an axis [y0, y0 + px) of `rows` rows.
export function rowAtY(y, y0, px, rows) {
  return Math.max(0, Math.min(rows - 1, Math.floor(((y - y0) * rows) / px)));
}

// Focus: one panel per head (they wrap), each a slot axis then a column per stage and one for
// the final weights (the NTM's four: content, gated, shifted, weights), and the head's
// parameters beneath: the NTM's (86 px), a line per other number, or nothing.
export const STAGES = ["content", "gated", "shifted", "weights"];
export function focusStages(ep, kind) {
  return [...((ep.stages && ep.stages[kind]) || []), "weights"];
}
export function focusGeometry(ep) {
  const slotsPx = panelSlotsPx(ep);
  const kinds = ep.heads ? [...new Set(ep.heads.map((hd) => hd.kind))] : ["read", "write"];
  const cols = Math.max(1, ...kinds.map((k) => focusStages(ep, k).length));
  const paramsH = Math.max(0, ...kinds.map((k) => (ep.ntmFocus && ep.ntmFocus[k] ? 86
    : ep.focusParams && ep.focusParams[k] && ep.focusParams[k].length ? 8 + 16 * ep.focusParams[k].length : 0)));
  const colW = 48, gap = 4, x0 = axisWidth(ep), y0 = 34;
  const blockW = Math.max(4, cols) * (colW + gap) + 12;
  return {x0, y0, colW, gap, ph: slotsPx, blockW, paramsH, width: x0 + blockW, height: y0 + slotsPx + 20 + paramsH};
}

// Sequence: inputs, targets, outputs over time (a row per channel), the bit-error strip and a
// step axis; step t's column is [x0 + t pw / T, + pw / T).
export function sequenceGeometry(ep, names) {
  const {timePx} = axes(ep);
  const cellH = Math.max(3, Math.min(10, Math.floor(80 / Math.max(ep.I, ep.O, 1))));
  const x0 = 64, pw = timePx;
  let y = 4;
  const blocks = {};
  for (const [name, rows] of names) {
    blocks[name] = {y, rows, hgt: rows * cellH};
    y += rows * cellH + 8;
  }
  return {x0, pw, cellH, blocks, errY: y, errH: 8, width: x0 + pw + 10, height: y + 14 + 32};
}
