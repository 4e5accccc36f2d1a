// Layout: where each view draws what, in CSS pixels. Pure functions of the episode's sizes and
// declaration, used by the views to draw and hit-test and by the tests to find a cell's pixels.
// No DOM.

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

export const AXIS = 44; // room left of a slot axis for its tick numbers and title
export const MAX_LABEL_AXIS = 320; // the most a slot axis of labels takes; longer labels wrap in the tooltip
// Room left of a slot axis: tick numbers, or the slots' labels at the width they need
// (ep.labelPx, measured once per episode by the views), so a sentence reads in full.
export function axisWidth(ep) {
  if (!ep.slotLabels) return AXIS;
  return Math.max(60, Math.min(MAX_LABEL_AXIS, Math.ceil(ep.labelPx || 150) + 12));
}

// More heads than this and each head's panels (focus, head locations) are drawn compact, so ten
// heads' panels fit on a screen or two; the memory keeps its own size.
export const MANY_HEADS = 4;
export function manyHeads(ep) {
  return ep.heads.length > MANY_HEADS;
}
export function panelSlotsPx(ep) {
  const {slotsPx} = axes(ep);
  return manyHeads(ep) ? Math.min(slotsPx, 96) : slotsPx;
}
// The memory's slot axis: shorter with many heads, whose panels need the room.
export function memorySlotsPx(ep) {
  const {slotsPx} = axes(ep);
  return manyHeads(ep) ? Math.min(slotsPx, 256) : slotsPx;
}

// Memory view: one strip per head (its weighting at t) left of the N x M matrix, marks at each
// head's focus right of it, then the colour bar. Cell (row r, column m) covers
// [x0 + m cellW, + cellW) x [y0 + r mh / D, + mh / D).
export function memoryGeometry(ep) {
  const slotsPx = memorySlotsPx(ep);
  const heads = ep.heads.length;
  const strip = heads > 8 ? 4 : 7; // a strip per head; narrower with many
  const cellW = Math.max(3, Math.min(24, Math.floor(230 / Math.max(1, ep.M))));
  const axis = axisWidth(ep);
  const x0 = axis + heads * strip, y0 = 6, mw = ep.M * cellW, mh = slotsPx;
  const barX = x0 + mw + 6 + heads * strip, barW = 10;
  return {x0, y0, mw, mh, cellW, strip, stripX: axis, stripW: strip - 2, arrowX: x0 + mw + 3, barX, barW,
    barY: y0, barH: mh, width: barX + barW + 46, height: y0 + mh + 34};
}

// Head locations: one panel per head, steps across, slots down, a colour bar at the right.
// `rows` is how many slot rows are shown (all D, or the busy ones when zoomed).
export function headsGeometry(ep, rows) {
  const {timePx} = axes(ep), slotsPx = Math.min(panelSlotsPx(ep), 320); // a panel per head: a little shorter
  const shown = rows == null ? ep.D : rows;
  const ph = shown >= ep.D ? slotsPx : Math.min(slotsPx, Math.max(60, shown * (manyHeads(ep) ? 4 : 6)));
  const pw = manyHeads(ep) ? Math.min(timePx, 150) : timePx;
  const x0 = axisWidth(ep), y0 = 20;
  const barX = x0 + pw + 8;
  return {x0, y0, pw, ph, rows: shown, barX, barW: 8, width: barX + 8 + 34, height: y0 + ph + 34};
}

// The step under x in a time axis [x0, x0 + pw) showing steps [t0, t1) (clamped to them).
export function stepAt(x, x0, pw, t0, t1) {
  return Math.max(t0, Math.min(t1 - 1, t0 + Math.floor(((x - x0) * (t1 - t0)) / pw)));
}
// The centre of step t's column.
export function stepX(t, x0, pw, t0, t1) {
  return x0 + ((t - t0 + 0.5) * pw) / (t1 - t0);
}
// The row under y in an axis [y0, y0 + px) of `rows` rows.
export function rowAtY(y, y0, px, rows) {
  return Math.max(0, Math.min(rows - 1, Math.floor(((y - y0) * rows) / px)));
}

// Focus: one panel per head (they wrap), each a slot axis then a column per stage and one for
// the final weights, each headed by its name and its largest value at t (its own scale), and
// the head's numbers beneath: a line per "number" param (left) and a row of small bars per
// "distribution" (right of them when they fit, else below).
export const NUMBER_H = 15, DIST_H = 44, NUMBERS_W = 104, DIST_LABEL = 26, NAMED_W = 144;
// A distribution's bar width: narrower with more entries.
export function distBarWidth(K) {
  return Math.max(3, Math.min(16, Math.floor(120 / K)));
}
// Whether a distribution names its entries (then it is drawn as a line per entry, as numbers are).
function named(p) {
  return !!(p.labels && p.labels.length && p.labels.length === (p.width || p.labels.length));
}
export function focusGeometry(ep, group) {
  const slotsPx = panelSlotsPx(ep), many = manyHeads(ep);
  const numbers = group.params.filter((p) => p.kind === "number").length;
  const dists = group.params.filter((p) => p.kind === "distribution");
  const colW = many ? 44 : 48, gap = 4, x0 = many && !ep.slotLabels ? 30 : axisWidth(ep), y0 = 42;
  const cols = group.stages.length;
  const barsW = (p) => (named(p) ? NAMED_W : DIST_LABEL + (p.width || 3) * (distBarWidth(p.width || 3) + 2));
  const distW = dists.length ? Math.max(...dists.map(barsW)) : 0;
  const distH = dists.reduce((sum, p) => sum + (named(p) ? NUMBER_H * (p.labels.length + 1) : DIST_H), 0);
  const stagesW = cols * (colW + gap) + 6;
  const beside = numbers && dists.length && NUMBERS_W + distW <= Math.max(stagesW, 240);
  const blockW = Math.max(stagesW, 84, beside ? NUMBERS_W + distW : Math.max(numbers ? NUMBERS_W : 0, distW)); // 84: its title
  const numbersH = numbers ? numbers * NUMBER_H + 4 : 0;
  const paramsH = beside ? Math.max(numbersH, distH) : numbersH + distH;
  const paramsY = y0 + slotsPx + 8;
  return {x0, y0, colW, gap, ph: slotsPx, blockW, numbers, paramsY, paramsH,
    distX: beside ? x0 + NUMBERS_W : x0, distY: beside ? paramsY : paramsY + numbersH,
    distW, width: x0 + blockW, height: paramsY + paramsH + 2};
}

// Sequence: inputs, targets, outputs over time (a row per channel), the score strip (marks, or
// signed bars for a cost) and a step axis; step t's column is [x0 + (t - t0) pw / n, + pw / n)
// for the n steps [t0, t1) of the window.
export function sequenceGeometry(ep, names, cost) {
  const {timePx} = axes(ep);
  const cellH = Math.max(3, Math.min(10, Math.floor(80 / Math.max(ep.I, ep.O, 1))));
  const x0 = 64, pw = timePx;
  let y = 4;
  const blocks = {};
  for (const [name, rows] of names) {
    blocks[name] = {y, rows, hgt: rows * cellH};
    y += rows * cellH + 8;
  }
  const errH = cost ? 26 : 8;
  return {x0, pw, cellH, blocks, errY: y, errH, width: x0 + pw + 60, height: y + errH + 6 + 32};
}

// Slots: per slot state field a slot x time image and the values at t as bars beside it; per
// slot matrix an N x N image at t; slot coordinates as points in a square plane.
export function slotStateGeometry(ep) {
  const {slotsPx, timePx} = axes(ep);
  const x0 = axisWidth(ep), y0 = 20;
  const barsX = x0 + timePx + 10, barsW = 80;
  return {x0, y0, pw: timePx, ph: slotsPx, barsX, barsW, width: barsX + barsW + 60, height: y0 + slotsPx + 34};
}
export function matrixGeometry(ep) {
  const side = Math.max(120, Math.min(260, axes(ep).slotsPx));
  const x0 = 44, y0 = 20;
  return {x0, y0, side, barX: x0 + side + 8, width: x0 + side + 8 + 50, height: y0 + side + 34};
}
export function planeGeometry(ep) {
  const side = 280, pad = 14, x0 = 8, y0 = 20;
  return {x0, y0, side, pad, width: x0 + side + (ep.slotLabels ? 160 : 16), height: y0 + side + 10};
}
// Where point (x, y) of a plane whose coordinates span [lo, hi] on both axes is drawn.
export function planeXY(g, lo, hi, x, y) {
  const span = hi - lo || 1, inner = g.side - 2 * g.pad;
  return [g.x0 + g.pad + ((x - lo) / span) * inner, g.y0 + g.pad + (1 - (y - lo) / span) * inner];
}
