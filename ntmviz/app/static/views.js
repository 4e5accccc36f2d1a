// The views: player, memory, focus, head locations, slots, sequence. Each draws one episode at the
// step t of its Group: `build(ep)` once per episode (static layers), `draw(t)` per step (the
// front canvas). `paint(t)` returns false while step t's data has not arrived (see data.js).
//
// Every view draws what the episode's declaration (ep.family) holds: its groups of heads with
// their stages and params, its slot state, slot matrices and slot coordinates. Nothing here knows
// a model's kind. The views of a group share the hidden heads (left out everywhere), the slot row
// under the pointer (marked everywhere) and the window of time the timelines show.

import {
  approx, costMeasure, episodeScore, errorWords, fmt, frame, groupOf, headRow, headValue, maxAbs, missing,
  partOf, scored, slotText, slotsOf, stepErrors, stepsOf, touch, visibleHeads,
} from "./data.js";
import {
  FONT, Heat, INK, MUTED, Stage, axisBottom, axisLeft, axisRows, blit, colourBar, h, labelWidth, markRow,
  poolMax, poolSigned, rampBar,
} from "./draw.js";
import {
  DIST_LABEL, NAMED_W, NUMBER_H, NUMBERS_W, DIST_H, axisWidth, distBarWidth, focusGeometry, headsGeometry, manyHeads, matrixGeometry, memoryGeometry,
  planeGeometry, planeXY, rowAtY, sequenceGeometry, slotStateGeometry, stepAt, stepX,
} from "./layout.js";
import {DIVERGING, GREYS, STATE, headLUT, lutIndexSigned, lutIndexUnit} from "./palette.js";

export class View {
  constructor(root, grp, options) {
    this.root = root;
    this.group = grp;
    this.options = options || {};
    this.dirty = true;
    this.paintedT = -1;
    this.frames = 0;
    this.ep = null;
    this.onNeed = null; // (chunk) => void: ask for a chunk of per-step arrays (set by mount)
  }

  setEpisode(ep) {
    this.ep = ep;
    this.root.replaceChildren();
    this.root.style.width = "";
    this.root.dataset.steps = ep ? String(ep.T) : "0";
    if (ep && ep.slotLabels && ep.labelPx == null) ep.labelPx = labelWidth(ep.slotLabels);
    if (ep) this.build(ep);
    else this.root.append(h("div", {class: "ntmviz-note", text: "No episode loaded."}));
    this.dirty = true;
  }

  note(text) {
    this.root.append(h("div", {class: "ntmviz-note", role: "note", text}));
  }

  noMemory() {
    if (this.ep.hasMemory) return false;
    this.note(`${this.ep.title || "This model"} has no memory: only the sequence view applies.`);
    return true;
  }

  // The heads shown (not hidden), and the steps the timelines show.
  visible() {
    return visibleHeads(this.ep, this.group.hidden);
  }

  span() {
    return this.group.window || [0, this.ep.T];
  }

  // The per-step arrays draw(t) reads.
  needs() {
    return [];
  }

  paint(t) {
    const ep = this.ep;
    if (!ep || this.blank) return true;
    const need = missing(ep, t, this.needs());
    if (need.length) {
      this.root.classList.add("ntmviz-loading");
      for (const c of need) this.ask(c);
      return false;
    }
    this.root.classList.remove("ntmviz-loading");
    const c = Math.floor(t / ep.K);
    touch(ep, c); // kept longest (data.js keeps a few chunks per view)
    // playing forward: ask for the next chunk half-way through this one
    if (c + 1 < ep.chunkCount && t - c * ep.K >= ep.K / 2 && this.needs().length) this.ask(c + 1);
    return this.draw(t) !== false;
  }

  // "SVG" and "PNG" buttons that save this view at step t as a figure for a paper. Python draws
  // it (figures.py, from the episode's arrays), so they appear only where a Python side listens:
  // the served app and live notebooks (options.figures), not the standalone page.
  figureButtons() {
    if (!this.options.figures) return null;
    const box = h("span", {class: "ntmviz-figure", role: "group", "aria-label": "Save figure"});
    for (const fmt of ["svg", "png"]) {
      const name = fmt.toUpperCase();
      box.append(h("button", {type: "button", class: "ntmviz-btn ntmviz-small", "aria-label": `Save figure as ${name}`,
        title: `Save this view at the current step as ${fmt === "svg" ? "SVG (vector)" : "PNG (3x)"}`, text: name,
        onclick: () => this.requestFigure(fmt)}));
    }
    return box;
  }

  requestFigure(fmt) {
    if (!this.onFigure) return;
    this.onFigure(fmt, {t: this.group.t, diff: !!this.options.diff,
      zoom: this.kind === "heads" ? this.rows != null : null, window: this.group.window});
  }

  ask(c) {
    const ep = this.ep;
    if (!this.onNeed || ep.pending.has(c) || ep.chunks.has(c) || c < 0 || c >= ep.chunkCount) return;
    ep.pending.add(c);
    this.onNeed(c);
  }

  // Buttons that zoom the timelines (every view of the group follows): narrower, wider, all.
  timeButtons() {
    const g = this.group;
    const btn = (label, text, fn) => h("button", {type: "button", class: "ntmviz-btn ntmviz-small", "aria-label": label,
      title: label, text, onclick: fn});
    return h("span", {class: "ntmviz-figure", role: "group", "aria-label": "Time zoom"},
      btn("Zoom in on time around the current step", "time +", () => g.zoomTime(0.5)),
      btn("Zoom out on time", "time −", () => g.zoomTime(2)),
      btn("Show every step", "all steps", () => g.setWindow(null)));
  }

  // A timeline's stage (steps across [x0, x0 + pw) of the window): hover text, a click or a drag
  // jumps to the step under the pointer, leaving clears the marked slot, Ctrl+wheel zooms time.
  bindTimeline(stage, x0, pw, hover) {
    const stepUnder = (x) => (x < x0 || x >= x0 + pw ? null : stepAt(x, x0, pw, ...this.span()));
    stage.bind(hover, (x) => {
      const t = stepUnder(x);
      if (t == null) return;
      this.group.setPlaying(false, "click");
      this.group.seek(t, "click");
    }, () => this.group.setHoverRow(null));
    this.wheelZoom(stage, stepUnder);
  }

  // Ctrl (or Cmd) and the wheel over a timeline zoom its time around the step under the pointer.
  wheelZoom(stage, stepUnder) {
    stage.fg.canvas.addEventListener("wheel", (ev) => {
      if (!(ev.ctrlKey || ev.metaKey)) return;
      const r = stage.fg.canvas.getBoundingClientRect();
      const t = stepUnder(ev.clientX - r.left);
      if (t == null) return;
      ev.preventDefault();
      this.group.zoomTime(ev.deltaY < 0 ? 0.5 : 2, t);
    }, {passive: false});
  }

  setOption() {}
  build() {}
  draw() {}
}

// The slot axis left of x: tick numbers, or with slot labels each shown row's label (as canvas
// text: never markup), at the width the axis has (axisWidth: the labels' own, up to a limit).
export function slotAxis(ctx, x, y, px, ep, rows) {
  if (!ep.slotLabels) {
    if (rows) axisRows(ctx, x, y, px, rows.map((r) => slotText(ep, r).replace(/^slots? /, "")), "slot");
    else axisLeft(ctx, x, y, px, ep.N, "slot");
    return;
  }
  const shown = rows || Array.from({length: ep.D}, (_, r) => r);
  const room = axisWidth(ep) - 8;
  ctx.save();
  ctx.font = FONT;
  const labels = shown.map((r) => fitText(ctx, ep.slotLabels[r] != null ? ep.slotLabels[r] : String(r), room));
  ctx.restore();
  axisRows(ctx, x, y, px, labels, "");
}

// `text` cut (with "…") to at most `room` pixels in ctx's font (the tooltip has it whole).
export function fitText(ctx, text, room) {
  const s = String(text).replace(/\s+/g, " ");
  if (ctx.measureText(s).width <= room) return s;
  let lo = 0, hi = s.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(s.slice(0, mid) + "…").width <= room) lo = mid;
    else hi = mid - 1;
  }
  return s.slice(0, lo) + "…";
}

// `text` as one line if it fits `room` pixels in ctx's font, else split at the space that makes
// the longer of two lines shortest.
export function twoLines(ctx, text, room) {
  if (ctx.measureText(text).width <= room) return [text];
  let best = [text], widest = Infinity;
  for (let i = text.indexOf(" "); i > 0; i = text.indexOf(" ", i + 1)) {
    const lines = [text.slice(0, i), text.slice(i + 1)];
    const w = Math.max(...lines.map((s) => ctx.measureText(s).width));
    if (w < widest) (widest = w), (best = lines);
  }
  return best;
}

function title(text, ...rest) {
  return h("div", {class: "ntmviz-title"}, h("span", {text}), ...rest);
}

// ---- memory ----------------------------------------------------------------------------------

export class MemoryView extends View {
  get kind() {
    return "memory";
  }

  needs() {
    const ep = this.ep, weights = ep ? ep.groups.map((g) => `${g.name}.weights`) : [];
    if (ep && ep.staticMemory) return weights; // the memory came whole, with the first message
    return ["memory", ...weights, ...(this.options.diff ? ["memory.diff"] : [])];
  }

  build(ep) {
    if (this.noMemory()) return (this.blank = true);
    this.blank = false;
    const g = (this.geom = memoryGeometry(ep));
    const toggle = h("input", {type: "checkbox", "aria-label": "Show change", class: "ntmviz-diff"});
    toggle.checked = !!this.options.diff;
    toggle.addEventListener("change", () => {
      this.options.diff = toggle.checked;
      this.onOption && this.onOption("diff", toggle.checked);
      this.dirty = true;
      this.group.request();
    });
    this.toggle = toggle;
    this.title = h("span", {class: "ntmviz-subtitle ntmviz-fixed"});
    // a static memory does not change: no "show change", no "after step t"
    const change = ep.staticMemory ? null : h("label", {class: "ntmviz-check"}, toggle, " show change");
    if (ep.staticMemory) {
      this.title.textContent = "the same at every step";
      this.title.title = "this model's memory does not change while it runs";
    }
    this.root.append(title("Memory", this.title, change, this.figureButtons()));
    this.stage = new Stage(g.width, g.height, "Memory matrix, slots by width", "memory");
    this.root.append(this.stage.el);
    this.heat = new Heat();
    const ctx = this.stage.bg.ctx;
    slotAxis(ctx, g.stripX - 2, g.y0, g.mh, ep, null);
    axisBottom(ctx, g.x0, g.y0 + g.mh, g.mw, ep.M, "width");
    if (ep.staticMemory) {
      // drawn once, on the background; each step draws only the heads' strips and marks
      const vals = ep.a.memory.data;
      const img = this.heat.draw(ep.D, ep.M, g.mh, g.mw, (r0, r1, c0, c1) => poolSigned(vals, ep.M, r0, r1, c0, c1),
        (v) => DIVERGING[lutIndexSigned(v, ep.memScale)]);
      blit(ctx, img, g.x0, g.y0, g.mw, g.mh);
      colourBar(ctx, g.barX, g.barY, g.barW, g.barH, ep.memScale, fmt);
    }
    this.stage.bind((x, y) => this.hover(x, y), null, () => this.group.setHoverRow(null));
  }

  setOption(key, value) {
    if (key === "diff" && this.toggle) {
      this.options.diff = !!value;
      this.toggle.checked = !!value;
      this.dirty = true;
    }
  }

  // The values drawn at step t: [D, M] as a Float32Array (memory[t+1], or its change).
  values(t) {
    const ep = this.ep;
    if (ep.staticMemory) return ep.a.memory.data;
    const after = frame(ep, "memory", t + 1).data;
    if (!this.options.diff) return after;
    const change = frame(ep, "memory.diff", t);
    if (change) return change.data;
    const before = frame(ep, "memory", t).data, out = new Float32Array(after.length);
    for (let i = 0; i < out.length; i++) out[i] = after[i] - before[i];
    return out;
  }

  draw(t) {
    const ep = this.ep, g = this.geom;
    const {D, M} = ep, diff = !!this.options.diff && !ep.staticMemory;
    const scale = diff ? ep.diffScale : ep.memScale;
    const ctx = this.stage.fg.ctx;
    ctx.clearRect(0, 0, this.stage.w, this.stage.h);
    if (!ep.staticMemory) {
      const vals = this.values(t);
      const img = this.heat.draw(D, M, g.mh, g.mw, (r0, r1, c0, c1) => poolSigned(vals, M, r0, r1, c0, c1),
        (v) => DIVERGING[lutIndexSigned(v, scale)]);
      blit(ctx, img, g.x0, g.y0, g.mw, g.mh);
    }
    // one strip per head left of the matrix (its weighting at t) and a mark at its focus; a
    // hidden head's place stays empty, so the others do not move
    const hidden = this.group.hidden;
    ep.heads.forEach((hd, i) => {
      if (hidden.has(hd.index)) return;
      const w = headRow(ep, `${hd.group}.weights`, t, hd.h);
      if (!w) return;
      const lut = headLUT(hd.colour);
      const strip = this.heat.draw(D, 1, g.mh, 1, (r0, r1) => poolMax(w, 1, r0, r1, 0, 1), (v) => lut[lutIndexUnit(v, 1)]);
      blit(ctx, strip, g.stripX + i * g.strip, g.y0, g.stripW, g.mh);
      let best = 0;
      for (let n = 1; n < D; n++) if (w[n] > w[best]) best = n;
      const y = g.y0 + ((best + 0.5) * g.mh) / D;
      ctx.strokeStyle = hd.colour;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(g.x0 - 0.5, g.y0 + (best * g.mh) / D - 0.5, g.mw + 1, Math.max(1, g.mh / D) + 1);
      ctx.fillStyle = hd.colour;
      ctx.beginPath();
      const xr = g.arrowX + i * g.strip;
      ctx.moveTo(xr, y);
      ctx.lineTo(xr + 6, y - 4);
      ctx.lineTo(xr + 6, y + 4);
      ctx.fill();
    });
    const row = this.group.hoverRow;
    if (row != null && row < D) markRow(ctx, g.stripX, g.y0 + (row * g.mh) / D, g.x0 + g.mw - g.stripX, g.mh / D);
    if (ep.staticMemory) return;
    colourBar(ctx, g.barX, g.barY, g.barW, g.barH, scale, fmt);
    this.title.textContent = diff ? `change made by step ${t}` : `after step ${t}`;
    this.title.title = diff ? "memory[t+1] − memory[t]" : "memory[t+1]";
  }

  hover(x, y) {
    const ep = this.ep, g = this.geom, t = this.group.t;
    if (!ep || x < g.stripX || x >= g.x0 + g.mw || y < g.y0 || y >= g.y0 + g.mh) {
      this.group.setHoverRow(null);
      return null;
    }
    const r = rowAtY(y, g.y0, g.mh, ep.D);
    this.group.setHoverRow(r);
    const ws = this.visible().map((hd) => {
      const w = frame(ep, `${hd.group}.weights`, t), row = headRow(ep, `${hd.group}.weights`, t, hd.h);
      const v = row ? approx(w, row[r]) : "–";
      return `${hd.label} w${ep.D < ep.N ? " max" : ""}${v.startsWith("≈") ? " " : "="}${v}`;
    }).join(", ");
    if (x < g.x0) return `${slotText(ep, r)}; step ${t}: ${ws}`;
    const m = Math.min(ep.M - 1, Math.floor(((x - g.x0) * ep.M) / g.mw));
    const i = r * ep.M + m;
    const pooled = ep.D < ep.N ? " (largest magnitude over these slots)" : "";
    if (ep.staticMemory) {
      const mem = ep.a.memory;
      return `${slotText(ep, r)}, width ${m}: ${approx(mem, mem.data[i])}${pooled}; step ${t}: ${ws}`;
    }
    const after = frame(ep, "memory", t + 1), before = frame(ep, "memory", t);
    if (!after || !before) return null;
    const change = frame(ep, "memory.diff", t);
    const d = change ? change.data[i] : after.data[i] - before.data[i];
    return `step ${t}, ${slotText(ep, r)}, width ${m}: ${approx(after, after.data[i])} (before ${approx(before, before.data[i])}, ` +
      `change ${approx(change || after, d)})${pooled}; ${ws}`;
  }
}

// ---- head locations over time ----------------------------------------------------------------

export const BUSY = 0.05; // a slot is busy if some head puts at least this weight on it at some step
const WINDOW_STEPS = 1200; // a time window of at most this many steps is drawn from every step's weights

// Rows (of D) that some head weights at least BUSY at some step, from the time overviews.
export function busyRows(ep) {
  const max = new Float32Array(ep.D);
  for (const g of ep.groups) {
    const arr = ep.a[`${g.name}.weights.time`];
    if (!arr) continue;
    const data = arr.data;
    for (let i = 0; i < data.length; i++) {
      const r = i % ep.D;
      if (data[i] > max[r]) max[r] = data[i];
    }
  }
  const rows = [];
  for (let r = 0; r < ep.D; r++) if (max[r] >= BUSY) rows.push(r);
  return rows;
}

export class HeadLocationsView extends View {
  get kind() {
    return "heads";
  }

  build(ep) {
    if (this.noMemory()) return (this.blank = true);
    this.blank = false;
    this.busy = busyRows(ep);
    // zoomed unless told otherwise when the heads use at most half of the slots
    const few = this.busy.length > 0 && this.busy.length <= ep.D / 2 && ep.D >= 16;
    const zoom = (this.options.zoom != null ? this.options.zoom : few) && this.busy.length > 0 && this.busy.length < ep.D;
    this.rows = zoom ? this.busy : null; // rows shown, or null for all D
    const g = (this.geom = headsGeometry(ep, zoom ? this.busy.length : null));
    const check = h("input", {type: "checkbox", "aria-label": "Zoom to busy slots", class: "ntmviz-zoom"});
    check.checked = zoom;
    check.disabled = !this.busy.length || this.busy.length >= ep.D;
    check.addEventListener("change", () => {
      this.options.zoom = check.checked;
      this.setEpisode(this.ep);
      this.group.invalidate();
    });
    this.root.append(title("Head locations over time",
      h("span", {class: "ntmviz-subtitle", text: "click or drag to jump; Ctrl+wheel zooms time"}),
      h("label", {class: "ntmviz-check"}, check,
        ` zoom to busy slots (${this.busy.length} of ${ep.D < ep.N ? `${ep.D} rows` : ep.N})`),
      this.timeButtons(), this.figureButtons()));
    const wrap = h("div", {class: "ntmviz-row ntmviz-panels"});
    this.root.append(wrap);
    this.panels = ep.heads.map((hd) => {
      const stage = new Stage(g.width, g.height, `${hd.label} head weighting over time`, `heads-${hd.group}-${hd.h + 1}`);
      wrap.append(stage.el);
      this.bindTimeline(stage, g.x0, g.pw, (x, y) => this.hover(hd, x, y));
      return {hd, stage};
    });
    this.drawn = null;
  }

  // The weight of head hd at `step`, display row r: that step's own (its chunk is here), else
  // the time overview's column holding it (the largest weight over its block of steps).
  weightAt(hd, step, r, overview) {
    const row = headRow(this.ep, `${hd.group}.weights`, step, hd.h);
    if (row) return row[r];
    const [, H, D] = overview.shape;
    return overview.data[(partOf(this.ep.T, this.ep.P, step) * H + hd.h) * D + r];
  }

  // The panels' images for the current window (redrawn when the window, or a chunk in it, changes).
  drawPanels() {
    const ep = this.ep, g = this.geom, rows = this.rows;
    const [t0, t1] = this.span();
    const whole = t0 === 0 && t1 === ep.T;
    if (!whole && t1 - t0 <= WINDOW_STEPS) {
      for (let c = Math.floor(t0 / ep.K); c <= Math.floor((t1 - 1) / ep.K); c++) this.ask(c);
    }
    const key = `${t0}:${t1}:${[...ep.chunks.keys()].join(",")}`;
    if (this.drawn === key) return;
    this.drawn = key;
    for (const {hd, stage} of this.panels) {
      const ctx = stage.bg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
      ctx.font = "bold " + FONT;
      ctx.fillStyle = hd.colour;
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      ctx.fillText(`${hd.label} head`, g.x0, 0);
      const w = ep.a[`${hd.group}.weights.time`];
      const [P, H, D] = w.shape;
      const lut = headLUT(hd.colour);
      const shown = rows ? rows.length : D;
      let get;
      if (whole) { // the overview: P columns, each the largest weight over its steps
        get = (r0, r1, c0, c1) => {
          let m = 0;
          for (let p = c0; p < c1; p++) for (let i = r0; i < r1; i++) {
            const v = w.data[(p * H + hd.h) * D + (rows ? rows[i] : i)];
            if (v > m) m = v;
          }
          return m;
        };
      } else {
        get = (r0, r1, c0, c1) => {
          let m = 0;
          for (let s = t0 + c0; s < t0 + c1; s++) for (let i = r0; i < r1; i++) {
            const v = this.weightAt(hd, s, rows ? rows[i] : i, w);
            if (v > m) m = v;
          }
          return m;
        };
      }
      // transpose on the fly: image rows are slots, columns time
      const img = new Heat().draw(shown, whole ? P : t1 - t0, g.ph, g.pw, get, (v) => lut[lutIndexUnit(v, 1)]);
      blit(ctx, img, g.x0, g.y0, g.pw, g.ph);
      ctx.strokeStyle = "#ccc";
      ctx.strokeRect(g.x0 - 0.5, g.y0 - 0.5, g.pw + 1, g.ph + 1);
      if (rows) {
        // a dashed line where the busy rows skip slots
        ctx.save();
        ctx.strokeStyle = "#999";
        ctx.setLineDash([3, 3]);
        for (let i = 1; i < rows.length; i++) {
          if (rows[i] === rows[i - 1] + 1) continue;
          const y = Math.round(g.y0 + (i * g.ph) / rows.length) + 0.5;
          ctx.beginPath();
          ctx.moveTo(g.x0, y);
          ctx.lineTo(g.x0 + g.pw, y);
          ctx.stroke();
        }
        ctx.restore();
      }
      slotAxis(ctx, g.x0 - 2, g.y0, g.ph, ep, rows);
      timeAxis(ctx, g.x0, g.y0 + g.ph, g.pw, t0, t1);
      rampBar(ctx, g.barX, g.y0, g.barW, g.ph, lut, 0, 1, fmt);
    }
  }

  hover(hd, x, y) {
    const ep = this.ep, g = this.geom, rows = this.rows;
    if (x < g.x0 || x >= g.x0 + g.pw || y < g.y0 || y >= g.y0 + g.ph) {
      this.group.setHoverRow(null);
      return null;
    }
    const [t0, t1] = this.span();
    const t = stepAt(x, g.x0, g.pw, t0, t1);
    const i = rowAtY(y, g.y0, g.ph, rows ? rows.length : ep.D), r = rows ? rows[i] : i;
    this.group.setHoverRow(r);
    const w = ep.a[`${hd.group}.weights.time`];
    const own = headRow(ep, `${hd.group}.weights`, t, hd.h);
    if (own && (t1 - t0 <= g.pw)) {
      return `${hd.label}: step ${t}, ${slotText(ep, r)}, weight ${ep.D < ep.N ? "max " : ""}${approx(frame(ep, `${hd.group}.weights`, t), own[r])}`;
    }
    const [, H, D] = w.shape;
    const p = partOf(ep.T, ep.P, t);
    const [s0, s1] = stepsOf(ep, p);
    const when = s1 - s0 > 1 ? `steps ${s0}–${s1 - 1}` : `step ${t}`;
    const most = ep.D < ep.N || s1 - s0 > 1 ? "max " : "";
    return `${hd.label}: ${when}, ${slotText(ep, r)}, weight ${most}${approx(w, w.data[(p * H + hd.h) * D + r])}`;
  }

  draw(t) {
    const ep = this.ep, g = this.geom, rows = this.rows;
    this.drawPanels();
    const [t0, t1] = this.span();
    const inside = t >= t0 && t < t1;
    const x = stepX(t, g.x0, g.pw, t0, t1);
    const cw = Math.max(2, g.pw / (t1 - t0));
    const hover = this.group.hoverRow, shownRow = hover == null ? -1 : rows ? rows.indexOf(hover) : hover;
    const n = rows ? rows.length : ep.D;
    for (const {hd, stage} of this.panels) {
      stage.el.style.display = this.group.hidden.has(hd.index) ? "none" : "";
      const ctx = stage.fg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
      if (shownRow >= 0) markRow(ctx, g.x0, g.y0 + (shownRow * g.ph) / n, g.pw, g.ph / n);
      if (!inside) continue;
      ctx.strokeStyle = "rgba(0,0,0,0.75)";
      ctx.lineWidth = 1;
      ctx.strokeRect(x - cw / 2 - 0.5, g.y0 - 0.5, cw + 1, g.ph + 1);
      ctx.fillStyle = "#000";
      ctx.beginPath();
      ctx.moveTo(x, g.y0 - 1);
      ctx.lineTo(x - 4, g.y0 - 7);
      ctx.lineTo(x + 4, g.y0 - 7);
      ctx.fill();
    }
  }
}

// A step axis for steps [t0, t1) along w pixels.
function timeAxis(ctx, x, y, w, t0, t1) {
  axisBottom(ctx, x, y, w, t1 - t0, t0 ? `step (from ${t0})` : "step", true, t0);
}

// ---- focus: the addressing stages at step t ----------------------------------------------------

// Pixel row r of `rows` over the D slots of w: the largest value, or for a signed stage the value
// of largest magnitude (+ over - on a tie), as payload.py pools them.
function pooledRow(w, D, rows, r, signed) {
  const n0 = Math.floor((r * D) / rows), n1 = Math.max(n0 + 1, Math.floor(((r + 1) * D) / rows));
  let v = 0;
  for (let n = n0; n < n1; n++) {
    const u = w[n];
    if (signed ? Math.abs(u) > Math.abs(v) || (u === -v && u > 0) : u > v) v = u;
  }
  return v;
}

// A focus bar of length len from x on pixel row r (rows of rowH px from g.y0; a gap around rows
// taller than 4 px).
function barRect(ctx, x, len, g, r, rowH) {
  const pad = rowH > 4 ? 1 : 0;
  ctx.rect(x, g.y0 + r * rowH + pad, len, Math.max(1, rowH - 2 * pad));
}

export class FocusView extends View {
  get kind() {
    return "focus";
  }

  // every group's stage columns (the final weights last) and the numbers beneath them
  needs() {
    const ep = this.ep, out = [];
    if (!ep) return out;
    for (const g of ep.groups) {
      for (const s of g.stages) out.push(`${g.name}.${s.name}`);
      for (const p of g.params) if (p.kind !== "vector") out.push(`${g.name}.${p.name}`);
    }
    return out;
  }

  build(ep) {
    if (this.noMemory()) return (this.blank = true);
    this.blank = false;
    const first = ep.groups[0];
    const names = first ? first.stages.map((s) => s.name) : [];
    const explain = names.length > 1 ? `stages: ${names.join(" → ")}, each on its own scale` : "the weights each head used";
    this.root.append(title("Focus at step", this.title = h("span", {class: "ntmviz-subtitle ntmviz-fixed"}),
      h("span", {class: "ntmviz-subtitle ntmviz-stages", text: explain}), this.figureButtons()));
    const wrap = h("div", {class: "ntmviz-row ntmviz-panels"});
    this.root.append(wrap);
    this.panels = ep.heads.map((hd) => {
      const group = groupOf(ep, hd.group), g = focusGeometry(ep, group);
      const stage = new Stage(g.width, g.height, `${hd.label} head's addressing stages at this step`, `focus-${hd.group}-${hd.h + 1}`);
      const ctx = stage.bg.ctx;
      if (g.x0 < 40) axisLeft(ctx, g.x0 - 2, g.y0, g.ph, ep.N, ""); // compact: ticks without a title
      else slotAxis(ctx, g.x0 - 2, g.y0, g.ph, ep, null);
      ctx.fillStyle = hd.colour;
      ctx.font = "bold " + FONT;
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      ctx.fillText(`${hd.label} head`, g.x0 + 2, 2);
      ctx.font = FONT;
      group.stages.forEach((st, j) => {
        const x = g.x0 + j * (g.colW + g.gap);
        ctx.fillStyle = INK;
        ctx.fillText(fitText(ctx, st.name, g.colW + g.gap - 2), x + 1, 17);
        ctx.strokeStyle = "#e4e4e4";
        ctx.strokeRect(x + 0.5, g.y0 - 0.5, g.colW, g.ph + 1);
      });
      stage.bind((x, y) => this.hover(hd, group, g, x, y), null, () => this.group.setHoverRow(null));
      wrap.append(stage.el);
      return {hd, group, stage, geom: g};
    });
  }

  // A stage's weighting of head hd at t over the D rows, and its largest value (a signed stage:
  // its largest |value|, the scale of both sides of its centre line).
  column(hd, name, t, signed) {
    const w = headRow(this.ep, `${hd.group}.${name}`, t, hd.h);
    if (!w) return null;
    let max = 0, at = 0;
    for (let r = 0; r < w.length; r++) {
      const v = signed ? Math.abs(w[r]) : w[r];
      if (v > max && (!signed || Number.isFinite(v))) (max = v), (at = r);
    }
    return {w, max, at};
  }

  hover(hd, group, g, x, y) {
    const ep = this.ep, t = this.group.t;
    const j = Math.floor((x - g.x0) / (g.colW + g.gap));
    const stage = j >= 0 && j < group.stages.length ? group.stages[j] : null;
    if (stage && y < g.y0) {
      this.group.setHoverRow(null);
      return `${stage.name}: ${stage.doc || "a stage of this head's addressing"}`;
    }
    if (stage && y >= g.y0 && y < g.y0 + g.ph) {
      const r = rowAtY(y, g.y0, g.ph, ep.D);
      this.group.setHoverRow(r);
      const col = this.column(hd, stage.name, t, stage.signed);
      if (!col) return null;
      const arr = frame(ep, `${hd.group}.${stage.name}`, t);
      // a signed stage's value with its sign; its largest is the one of largest |value|
      const pooled = ep.D < ep.N ? (stage.signed ? "largest |value| " : "max ") : "";
      const largest = stage.signed ? `largest |value|: ${fmt(col.w[col.at])}` : `largest: ${fmt(col.max)}`;
      return `${hd.label}, step ${t}, ${slotText(ep, r)}: ${stage.name} ${pooled}${approx(arr, col.w[r])}` +
        ` (this column's ${largest} at ${slotText(ep, col.at)})`;
    }
    this.group.setHoverRow(null);
    if (y >= g.paramsY) {
      const parts = group.params.filter((p) => p.kind !== "vector").map((p) => {
        if (p.kind === "number") return `${p.symbol || p.name} ${p.name} ${fmt(headValue(ep, `${hd.group}.${p.name}`, t, hd.h))}`;
        const s = headRow(ep, `${hd.group}.${p.name}`, t, hd.h);
        const k = s ? (s.length - 1) / 2 : 0;
        const entry = (i) => (p.labels && p.labels.length === s.length ? p.labels[i]
          : p.centred ? `${i - k > 0 ? "+" : ""}${i - k}` : i);
        return s ? `${p.name} ` + Array.from(s, (v, i) => `${entry(i)}: ${fmt(v)}`).join(", ") : "";
      });
      return parts.length ? `${hd.label}, step ${t}: ${parts.join("; ")}` : null;
    }
    return null;
  }

  draw(t) {
    const ep = this.ep;
    this.title.textContent = String(t);
    const hover = this.group.hoverRow;
    for (const {hd, group, stage, geom: g} of this.panels) {
      const hiddenNow = this.group.hidden.has(hd.index);
      stage.el.style.display = hiddenNow ? "none" : "";
      if (hiddenNow) continue;
      const ctx = stage.fg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
      const D = ep.D, rows = Math.min(D, Math.round(g.ph)), rowH = g.ph / rows;
      ctx.font = FONT;
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      group.stages.forEach((st, j) => {
        const x = g.x0 + j * (g.colW + g.gap);
        const col = this.column(hd, st.name, t, st.signed);
        if (!col) return;
        if (st.signed) return this.drawSigned(ctx, x, g, col, rows, rowH, hd.colour);
        // the column's own scale: its largest weight at t fills the column; its value is written
        // above it, so a flat stage (every bar the same) and a peaked one both read
        ctx.fillStyle = MUTED;
        ctx.fillText(col.max > 0 ? fmt(col.max) : "0", x + 1, 30);
        ctx.fillStyle = hd.colour;
        ctx.beginPath();
        const room = g.colW - 3;
        if (col.max > 0) {
          for (let r = 0; r < rows; r++) {
            const len = (pooledRow(col.w, D, rows, r, false) / col.max) * room;
            if (len >= 0.25) barRect(ctx, x + 2, len, g, r, rowH);
          }
        }
        ctx.fill();
        ctx.fillStyle = INK; // the baseline: where every bar starts
        ctx.fillRect(x + 1, g.y0, 1, g.ph);
      });
      if (hover != null && hover < D) markRow(ctx, g.x0, g.y0 + (hover * g.ph) / D, g.blockW - 8, g.ph / D);
      this.drawParams(ctx, hd, group, g, t);
    }
  }

  // A signed stage's column (energies before a softmax): a centre line at c = x + 2 + half, each
  // row's bar |v| / max|v| of half from it, right for v > 0 (from c + 1), left for v < 0 (ending
  // at c), in the head's colour; "±max" above. Rows pooled to the pixels keep the value of largest
  // magnitude (+ over - on a tie), as payload.py pools them.
  drawSigned(ctx, x, g, col, rows, rowH, colour) {
    const D = this.ep.D, half = Math.floor((g.colW - 4) / 2), c = x + 2 + half;
    ctx.fillStyle = MUTED;
    ctx.fillText(col.max > 0 ? fitText(ctx, `±${fmt(col.max)}`, g.colW + g.gap - 2) : "0", x + 1, 30);
    ctx.fillStyle = colour;
    ctx.beginPath();
    if (col.max > 0) {
      for (let r = 0; r < rows; r++) {
        const v = pooledRow(col.w, D, rows, r, true), len = (Math.abs(v) / col.max) * half;
        if (len >= 0.25) barRect(ctx, v > 0 ? c + 1 : c - len, len, g, r, rowH);
      }
    }
    ctx.fill();
    ctx.fillStyle = INK; // the centre line: 0, where both sides start
    ctx.fillRect(c, g.y0, 1, g.ph);
  }

  // The head's numbers: one line each ("β beta 3.21", with a bar on its declared range) and its
  // distributions as small bars (the NTM's shift, over offsets centred on 0).
  drawParams(ctx, hd, group, g, t) {
    const ep = this.ep, bx = g.x0;
    let y = g.paramsY;
    ctx.font = FONT;
    ctx.textBaseline = "top";
    for (const p of group.params) {
      if (p.kind !== "number") continue;
      const v = headValue(ep, `${hd.group}.${p.name}`, t, hd.h);
      ctx.fillStyle = INK;
      ctx.textAlign = "left";
      // the paper's symbol where there is one (the tooltip names it in full), and a bar on its range
      ctx.fillText(fitText(ctx, `${p.symbol || p.name} ${fmt(v)}`, p.range ? 58 : NUMBERS_W), bx, y);
      if (p.range) {
        const [lo, hi] = p.range;
        const f = p.log ? Math.log1p(Math.max(0, v - lo)) / Math.log1p(hi - lo) : (v - lo) / (hi - lo);
        ctx.fillStyle = "#eee";
        ctx.fillRect(bx + 60, y + 2, 40, 8);
        ctx.fillStyle = hd.colour;
        ctx.fillRect(bx + 60, y + 2, 40 * Math.max(0, Math.min(1, f)), 8);
      }
      y += NUMBER_H;
    }
    y = g.distY;
    for (const p of group.params) {
      if (p.kind !== "distribution") continue;
      const s = headRow(ep, `${hd.group}.${p.name}`, t, hd.h);
      if (!s) continue;
      const K = s.length, k = (K - 1) / 2, sw = distBarWidth(K), sh = 24;
      ctx.fillStyle = MUTED;
      ctx.textAlign = "left";
      if (p.labels && p.labels.length === K) { // entries with names (a DNC's read modes): a line each
        ctx.fillText(fitText(ctx, p.symbol || p.name, NUMBERS_W), g.distX, y);
        for (let i = 0; i < K; i++) {
          const ly = y + NUMBER_H * (i + 1);
          ctx.fillStyle = INK;
          ctx.fillText(fitText(ctx, `${p.labels[i]} ${fmt(s[i])}`, NAMED_W - 46), g.distX, ly);
          ctx.fillStyle = "#eee";
          ctx.fillRect(g.distX + NAMED_W - 42, ly + 2, 40, 8);
          ctx.fillStyle = hd.colour;
          ctx.fillRect(g.distX + NAMED_W - 42, ly + 2, 40 * Math.max(0, Math.min(1, s[i])), 8);
          ctx.fillStyle = MUTED;
        }
        y += NUMBER_H * (K + 1);
        continue;
      }
      ctx.fillText(fitText(ctx, p.symbol || p.name, DIST_LABEL - 4), g.distX, y);
      const sx = g.distX + DIST_LABEL;
      for (let i = 0; i < K; i++) {
        const x = sx + i * (sw + 2);
        ctx.fillStyle = "#eee";
        ctx.fillRect(x, y, sw, sh);
        ctx.fillStyle = hd.colour;
        const v = Math.max(0, Math.min(1, s[i]));
        ctx.fillRect(x, y + sh * (1 - v), sw, sh * v);
        if (K <= 9 || i === 0 || i === K - 1 || (p.centred && i === k)) {
          ctx.fillStyle = MUTED;
          ctx.textAlign = "center";
          const label = p.centred ? `${i - k > 0 ? "+" : ""}${i - k}` : String(i);
          ctx.fillText(label, x + sw / 2, y + sh + 2);
        }
      }
      y += DIST_H;
    }
  }
}

// ---- slots: slot state over time, slot x slot matrices, slots in a plane -------------------------

export class SlotsView extends View {
  get kind() {
    return "slots";
  }

  needs() {
    const ep = this.ep;
    if (!ep) return [];
    const out = [...ep.family.slot_state.map((f) => `slot.${f.name}`), ...ep.family.slot_matrices.map((f) => `matrix.${f.name}`)];
    if (ep.family.slot_coords) out.push(...ep.groups.map((g) => `${g.name}.weights`));
    return out;
  }

  build(ep) {
    const fam = ep.family;
    if (!ep.hasMemory || !fam.has_slots) {
      this.note(`${ep.title || "This model"} declares no state of its slots to show here.`);
      return (this.blank = true);
    }
    this.blank = false;
    this.root.append(title("Slots", this.title = h("span", {class: "ntmviz-subtitle ntmviz-fixed"}),
      fam.slot_state.length ? this.timeButtons() : null, this.figureButtons()));
    const wrap = h("div", {class: "ntmviz-row ntmviz-panels"});
    this.root.append(wrap);
    this.states = fam.slot_state.map((f) => {
      const g = slotStateGeometry(ep);
      const stage = new Stage(g.width, g.height, `${f.name} of every slot over time`, `slot-${f.name}`);
      this.bindTimeline(stage, g.x0, g.pw, (x, y) => this.hoverState(f, g, x, y));
      wrap.append(stage.el);
      return {f, g, stage, drawn: null};
    });
    this.matrices = fam.slot_matrices.map((f) => {
      const g = matrixGeometry(ep);
      const stage = new Stage(g.width, g.height, `${f.name}: slot by slot at this step`, `matrix-${f.name}`);
      const ctx = stage.bg.ctx;
      ctx.font = "bold " + FONT;
      ctx.fillStyle = INK;
      ctx.textBaseline = "top";
      ctx.fillText(`${f.name} at step t`, g.x0, 0);
      axisLeft(ctx, g.x0 - 2, g.y0, g.side, ep.N, "slot");
      axisBottom(ctx, g.x0, g.y0 + g.side, g.side, ep.N, "slot");
      const scale = ep.scales[`matrix.${f.name}`] || 1;
      rampBar(ctx, g.barX, g.y0, 8, g.side, STATE, 0, scale, fmt);
      stage.bind((x, y) => this.hoverMatrix(f, g, x, y), null, () => this.group.setHoverRow(null));
      wrap.append(stage.el);
      return {f, g, stage, heat: new Heat()};
    });
    this.plane = null;
    if (fam.slot_coords && ep.a.coords) {
      const g = planeGeometry(ep);
      const stage = new Stage(g.width, g.height, "The slots placed in a plane, with each head's weighting", "plane");
      const c = ep.a.coords.data;
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < c.length; i++) (lo = Math.min(lo, c[i])), (hi = Math.max(hi, c[i]));
      this.plane = {g, stage, lo, hi, peaks: new Map()}; // peaks: each head's planePath memo
      const ctx = stage.bg.ctx;
      ctx.font = "bold " + FONT;
      ctx.fillStyle = INK;
      ctx.textBaseline = "top";
      ctx.fillText("slots in the plane, each head's weight at t", g.x0, 0);
      ctx.strokeStyle = "#ddd";
      ctx.strokeRect(g.x0 + 0.5, g.y0 + 0.5, g.side, g.side);
      ctx.font = FONT;
      for (let n = 0; n < ep.N; n++) {
        const [x, y] = planeXY(g, lo, hi, c[2 * n], c[2 * n + 1]);
        ctx.fillStyle = INK;
        ctx.beginPath();
        ctx.arc(x, y, 2.5, 0, 2 * Math.PI);
        ctx.fill();
        const label = ep.slotLabels && ep.D === ep.N ? ep.slotLabels[n] : String(n);
        ctx.fillStyle = MUTED;
        ctx.textBaseline = "middle";
        ctx.fillText(fitText(ctx, label, 150), x + 5, y);
      }
      stage.bind((x, y) => this.hoverPlane(x, y), null, () => this.group.setHoverRow(null));
      wrap.append(stage.el);
    }
  }

  stateValues(f, t) {
    const row = frame(this.ep, `slot.${f.name}`, t);
    return row ? row.data : null;
  }

  drawState(s, t) {
    const ep = this.ep, {f, g, stage} = s;
    const [t0, t1] = this.span();
    const whole = t0 === 0 && t1 === ep.T;
    if (!whole && t1 - t0 <= WINDOW_STEPS) {
      for (let c = Math.floor(t0 / ep.K); c <= Math.floor((t1 - 1) / ep.K); c++) this.ask(c);
    }
    const key = `${t0}:${t1}:${[...ep.chunks.keys()].join(",")}`;
    const [lo, hi] = ep.scales[`slot.${f.name}`] || [0, 1];
    const colour = (v) => STATE[lutIndexUnit(v - lo, hi - lo)];
    if (s.drawn !== key) {
      s.drawn = key;
      const ctx = stage.bg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
      ctx.font = "bold " + FONT;
      ctx.fillStyle = INK;
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      ctx.fillText(`${f.name} over time${f.doc ? ` (${f.doc})` : ""}`, g.x0, 0);
      const over = ep.a[`slot.${f.name}.time`], D = ep.D;
      const value = (step, r) => {
        const row = frame(ep, `slot.${f.name}`, step);
        return row ? row.data[r] : over.data[partOf(ep.T, ep.P, step) * D + r];
      };
      const get = whole
        ? (r0, r1, c0, c1) => poolMax(over.data, D, c0, c1, r0, r1) // over is [P, D]: rows are steps
        : (r0, r1, c0, c1) => {
          let m = -Infinity;
          for (let step = t0 + c0; step < t0 + c1; step++) for (let r = r0; r < r1; r++) m = Math.max(m, value(step, r));
          return m;
        };
      const img = new Heat().draw(D, whole ? ep.P : t1 - t0, g.ph, g.pw, get, colour);
      blit(ctx, img, g.x0, g.y0, g.pw, g.ph);
      ctx.strokeStyle = "#ccc";
      ctx.strokeRect(g.x0 - 0.5, g.y0 - 0.5, g.pw + 1, g.ph + 1);
      slotAxis(ctx, g.x0 - 2, g.y0, g.ph, ep, null);
      timeAxis(ctx, g.x0, g.y0 + g.ph, g.pw, t0, t1);
      ctx.fillStyle = MUTED;
      ctx.font = FONT;
      ctx.fillText("at t", g.barsX, g.y0 - 12);
      rampBar(ctx, g.barsX + g.barsW + 6, g.y0, 8, g.ph, STATE, lo, hi, fmt);
    }
    const ctx = stage.fg.ctx;
    ctx.clearRect(0, 0, stage.w, stage.h);
    const D = ep.D, rowH = g.ph / D;
    const vals = this.stateValues(f, t);
    if (vals) { // the values at t: a bar per slot, on the field's range
      ctx.fillStyle = "#f3f3f3";
      ctx.fillRect(g.barsX, g.y0, g.barsW, g.ph);
      ctx.fillStyle = "#5a2a8c";
      for (let r = 0; r < D; r++) {
        const f01 = Math.max(0, Math.min(1, (vals[r] - lo) / (hi - lo)));
        if (f01 > 0) ctx.fillRect(g.barsX, g.y0 + r * rowH + (rowH > 4 ? 0.5 : 0), f01 * g.barsW, Math.max(1, rowH - (rowH > 4 ? 1 : 0)));
      }
    }
    const row = this.group.hoverRow;
    if (row != null && row < D) markRow(ctx, g.x0, g.y0 + row * rowH, g.barsX + g.barsW - g.x0, rowH);
    if (t >= t0 && t < t1) {
      const x = stepX(t, g.x0, g.pw, t0, t1), cw = Math.max(2, g.pw / (t1 - t0));
      ctx.strokeStyle = "rgba(0,0,0,0.75)";
      ctx.strokeRect(x - cw / 2 - 0.5, g.y0 - 0.5, cw + 1, g.ph + 1);
    }
  }

  hoverState(f, g, x, y) {
    const ep = this.ep;
    if (y < g.y0 || y >= g.y0 + g.ph) return null;
    const r = rowAtY(y, g.y0, g.ph, ep.D);
    this.group.setHoverRow(r);
    if (x >= g.barsX && x < g.barsX + g.barsW) {
      const vals = this.stateValues(f, this.group.t);
      return vals ? `${f.name} of ${slotText(ep, r)} after step ${this.group.t}: ${fmt(vals[r])}` : null;
    }
    if (x < g.x0 || x >= g.x0 + g.pw) return slotText(ep, r);
    const t = stepAt(x, g.x0, g.pw, ...this.span());
    const row = frame(ep, `slot.${f.name}`, t);
    if (row) return `${f.name} of ${slotText(ep, r)} after step ${t}: ${fmt(row.data[r])}`;
    const p = partOf(ep.T, ep.P, t), [s0, s1] = stepsOf(ep, p);
    return `${f.name} of ${slotText(ep, r)}, steps ${s0}–${s1 - 1}: largest ${fmt(ep.a[`slot.${f.name}.time`].data[p * ep.D + r])}`;
  }

  matrixAt(f, t) {
    const m = frame(this.ep, `matrix.${f.name}`, t);
    return m ? m.data : null;
  }

  hoverMatrix(f, g, x, y) {
    const ep = this.ep, DM = ep.DM;
    if (x < g.x0 || x >= g.x0 + g.side || y < g.y0 || y >= g.y0 + g.side) return null;
    const i = rowAtY(y, g.y0, g.side, DM), j = Math.min(DM - 1, Math.floor(((x - g.x0) * DM) / g.side));
    const m = this.matrixAt(f, this.group.t);
    if (!m) return null;
    const [a0, a1] = [i, i + 1].map((k) => Math.floor((k * ep.N) / DM)), [b0, b1] = [j, j + 1].map((k) => Math.floor((k * ep.N) / DM));
    const name = (n0, n1) => (n1 - n0 > 1 ? `slots ${n0}–${n1 - 1}` : `slot ${n0}`);
    return `${f.name}[${name(a0, a1)}, ${name(b0, b1)}] after step ${this.group.t}: ${fmt(m[i * DM + j])}`;
  }

  hoverPlane(x, y) {
    const ep = this.ep, {g, lo, hi} = this.plane, c = ep.a.coords.data, t = this.group.t;
    let best = -1, dist = 64;
    for (let n = 0; n < ep.N; n++) {
      const [px, py] = planeXY(g, lo, hi, c[2 * n], c[2 * n + 1]);
      const d = (px - x) ** 2 + (py - y) ** 2;
      if (d < dist) (dist = d), (best = n);
    }
    if (best < 0) {
      this.group.setHoverRow(null);
      return null;
    }
    const r = partOf(ep.N, ep.D, best);
    this.group.setHoverRow(r);
    const ws = this.visible().map((hd) => {
      const w = headRow(ep, `${hd.group}.weights`, t, hd.h);
      return `${hd.label} ${w ? fmt(w[r]) : "–"}`;
    }).join(", ");
    const label = ep.slotLabels ? ` “${ep.slotLabels[r]}”` : "";
    return `slot ${best}${label} at (${fmt(c[2 * best])}, ${fmt(c[2 * best + 1])}); step ${t}: ${ws}`;
  }

  draw(t) {
    const ep = this.ep;
    this.title.textContent = `after step ${t}`;
    for (const s of this.states) this.drawState(s, t);
    for (const {f, g, stage, heat} of this.matrices) {
      const ctx = stage.fg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
      const m = this.matrixAt(f, t), DM = ep.DM;
      if (!m) continue;
      const scale = ep.scales[`matrix.${f.name}`] || 1;
      const img = heat.draw(DM, DM, g.side, g.side, (r0, r1, c0, c1) => poolMax(m, DM, r0, r1, c0, c1),
        (v) => STATE[lutIndexUnit(v, scale)]);
      blit(ctx, img, g.x0, g.y0, g.side, g.side);
      const row = this.group.hoverRow;
      if (row != null) {
        const [n0] = slotsOf(ep, row), i = partOf(ep.N, DM, n0);
        markRow(ctx, g.x0, g.y0 + (i * g.side) / DM, g.side, g.side / DM);
      }
    }
    if (this.plane) this.drawPlane(t);
  }

  drawPlane(t) {
    const ep = this.ep, {g, stage, lo, hi} = this.plane, c = ep.a.coords.data;
    const ctx = stage.fg.ctx;
    ctx.clearRect(0, 0, stage.w, stage.h);
    const heads = this.visible();
    heads.forEach((hd, k) => {
      const w = headRow(ep, `${hd.group}.weights`, t, hd.h);
      if (!w) return;
      ctx.strokeStyle = hd.colour;
      ctx.fillStyle = hd.colour;
      // its path so far: the slot it weighted most at each step 0..t (a pointer's answer growing)
      const path = planePath(ep, hd, t, this.plane.peaks);
      if (path.length > 1) {
        ctx.globalAlpha = 0.75;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        path.forEach((n, i) => {
          const [x, y] = planeXY(g, lo, hi, c[2 * n], c[2 * n + 1]);
          if (i) ctx.lineTo(x, y);
          else ctx.moveTo(x, y);
        });
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
      let best = 0;
      for (let n = 0; n < ep.N; n++) {
        const v = w[partOf(ep.N, ep.D, n)];
        if (v > w[partOf(ep.N, ep.D, best)]) best = n;
        if (v < 0.005) continue;
        const [x, y] = planeXY(g, lo, hi, c[2 * n], c[2 * n + 1]);
        ctx.globalAlpha = 0.35;
        ctx.beginPath();
        ctx.arc(x, y, 3 + 14 * Math.sqrt(v) + k, 0, 2 * Math.PI); // area follows the weight
        ctx.fill();
      }
      ctx.globalAlpha = 1;
      const [bx, by] = planeXY(g, lo, hi, c[2 * best], c[2 * best + 1]);
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(bx, by, 19 + k * 2, 0, 2 * Math.PI);
      ctx.stroke();
    });
    const row = this.group.hoverRow;
    if (row != null) {
      const [n0] = slotsOf(ep, row);
      const [x, y] = planeXY(g, lo, hi, c[2 * n0], c[2 * n0 + 1]);
      ctx.strokeStyle = "rgba(160, 110, 0, 0.9)";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x - 6, y - 6, 12, 12);
    }
  }
}

// The slots head `hd` weighted most at steps 0..t, in order: a step whose weights are all zero (a
// head that does not read there) adds none. figures.py's plane_path is the same. `peaks` (a Map
// kept per episode) remembers each step's peak once its weights have arrived, so scrubbing costs
// a lookup per step, not a pass over the slots (-2: not arrived yet; -1: no weight).
export function planePath(ep, hd, t, peaks = new Map()) {
  const name = `${hd.group}.weights`, key = `${name}/${hd.h}`;
  if (!peaks.has(key)) peaks.set(key, new Int32Array(ep.T).fill(-2));
  const memo = peaks.get(key), path = [];
  for (let s = 0; s <= t; s++) {
    if (memo[s] === -2) {
      const w = headRow(ep, name, s, hd.h);
      if (!w) continue; // not arrived: asked again on the next frame
      let best = -1, top = 0;
      for (let n = 0; n < ep.N; n++) {
        const v = w[partOf(ep.N, ep.D, n)];
        if (v > top) (top = v), (best = n);
      }
      memo[s] = best;
    }
    if (memo[s] >= 0) path.push(memo[s]);
  }
  return path;
}

// ---- sequence: inputs, targets, outputs over time; the measure; the head vectors at t -----------

// How many values a vector row has: M for the read vectors; K for [T, H, K] params (known from
// the chunk of any step that has arrived; M until then).
function vectorWidth(ep, v) {
  for (const chunk of ep.chunks.values()) {
    const arr = chunk[v.name];
    if (arr) return arr.shape[arr.shape.length - 1];
  }
  return ep.M;
}

export class SequenceView extends View {
  get kind() {
    return "sequence";
  }

  needs() {
    return this.vectors ? [...new Set(this.vectors.map((v) => v.name))] : [];
  }

  build(ep) {
    this.blank = false;
    const blocks = [["inputs", ep.I], ["targets", ep.O], ["outputs", ep.O]].filter(([name]) => ep.a[name]);
    const cost = costMeasure(ep);
    const g = (this.geom = sequenceGeometry(ep, blocks, cost));
    this.blocks = blocks;
    this.root.append(title("Sequence", this.title = h("span", {class: "ntmviz-subtitle"}),
      blocks.length ? this.timeButtons() : null, this.figureButtons()));
    const wrap = h("div", {class: "ntmviz-row"});
    this.root.append(wrap);
    this.stage = null;
    this.errors = stepErrors(ep); // the measure at each step (0 on unscored steps)
    this.total = episodeScore(ep, this.errors);
    if (blocks.length) {
      this.stage = new Stage(g.width, g.height, "Inputs, targets and outputs over time", "sequence");
      wrap.append(this.stage.el);
      this.bindTimeline(this.stage, g.x0, g.pw, (x, y) => this.hoverTime(x, y));
      this.drawn = null;
    }
    // the head vectors at t: each group's "vector" params (the NTM's key, erase, add) and the read
    // vectors of the group that reads
    this.vectors = [];
    if (ep.hasMemory) {
      for (const hd of ep.heads) {
        const group = groupOf(ep, hd.group);
        for (const p of group.params) {
          if (p.kind === "vector") this.vectors.push({hd, name: `${hd.group}.${p.name}`, label: p.name, signed: p.signed !== false});
        }
        if (group.reads && ep.hasReads) this.vectors.push({hd, name: "reads", label: "read", signed: true});
      }
    }
    if (this.vectors.length) {
      const K = Math.max(ep.M, ...this.vectors.map((v) => vectorWidth(ep, v)));
      this.vcell = Math.max(3, Math.min(14, Math.floor(220 / K)));
      this.vx0 = 96;
      this.vrow = manyHeads(ep) ? 10 : 18; // a row per vector, shorter with many heads
      this.vstage = new Stage(this.vx0 + K * this.vcell + 64, 24 + this.vectors.length * this.vrow + 30, "Head vectors at this step", "vectors");
      const vctx = this.vstage.bg.ctx;
      vctx.font = FONT;
      vctx.textBaseline = "top";
      vctx.fillStyle = INK;
      vctx.fillText("vectors at step t (each row on its own scale)", 4, 4);
      axisBottom(vctx, this.vx0, 24 + this.vectors.length * this.vrow, K * this.vcell, K, "width");
      this.vstage.bind((x, y) => {
        const rows = this.shownVectors(), i = Math.floor((y - 24) / this.vrow), m = Math.floor((x - this.vx0) / this.vcell);
        if (i < 0 || i >= rows.length || m < 0 || m >= vectorWidth(ep, rows[i])) return null;
        const v = rows[i], t = this.group.t, row = headRow(ep, v.name, t, v.hd.h);
        return row ? `${v.hd.label} ${v.label}, step ${t}, width ${m}: ${fmt(row[m])}` : null;
      });
      this.vheat = new Heat();
      wrap.append(this.vstage.el);
    }
    if (!this.stage && !this.vstage) this.note("This episode has no inputs, outputs or head vectors to show.");
  }

  shownVectors() {
    return this.vectors.filter((v) => !this.group.hidden.has(v.hd.index));
  }

  // inputs, targets, outputs over the window and the score strip (redrawn when the window changes)
  drawTime() {
    const ep = this.ep, g = this.geom;
    const [t0, t1] = this.span(), n = t1 - t0;
    const key = `${t0}:${t1}`;
    if (this.drawn === key) return;
    this.drawn = key;
    const ctx = this.stage.bg.ctx;
    ctx.clearRect(0, 0, this.stage.w, this.stage.h);
    const {O} = ep;
    for (const [name] of this.blocks) {
      const b = g.blocks[name], arr = ep.a[name];
      const img = new Heat().draw(b.rows, n, b.hgt, g.pw, (r0, r1, c0, c1) => {
        let m = 0;
        for (let t = t0 + c0; t < t0 + c1; t++) for (let r = r0; r < r1; r++) m = Math.max(m, Math.abs(arr.data[t * b.rows + r]));
        return m;
      }, (v) => GREYS[lutIndexUnit(v, 1)]);
      blit(ctx, img, g.x0, b.y, g.pw, b.hgt);
      ctx.strokeStyle = "#ccc";
      ctx.strokeRect(g.x0 - 0.5, b.y - 0.5, g.pw + 1, b.hgt + 1);
      ctx.font = FONT;
      ctx.fillStyle = INK;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(name, g.x0 - 6, b.y + b.hgt / 2);
      if (name === "outputs" && ep.a.targets && g.pw / n >= 3 && ep.measure.name === "bit_errors") {
        // wrong bits outlined where they count (when a step is wide enough to show it)
        ctx.strokeStyle = "#e00";
        ctx.lineWidth = 1.5;
        const cw = g.pw / n;
        for (let t = t0; t < t1; t++) {
          if (!this.errors[t]) continue;
          for (let o = 0; o < O; o++) {
            if ((ep.a.outputs.data[t * O + o] > 0.5) !== (ep.a.targets.data[t * O + o] > 0.5)) {
              ctx.strokeRect(g.x0 + (t - t0) * cw + 0.75, b.y + o * g.cellH + 0.75, Math.max(1, cw - 1.5), g.cellH - 1.5);
            }
          }
        }
        ctx.lineWidth = 1;
      }
    }
    ctx.fillStyle = INK;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.font = FONT;
    // what the measure counts, left of its strip: on two lines when one does not fit there
    const label = twoLines(ctx, errorWords(ep), g.x0 - 8);
    label.forEach((line, i) => ctx.fillText(line, g.x0 - 6, g.errY + g.errH / 2 + (i - (label.length - 1) / 2) * 12));
    const cw = g.pw / n;
    if (costMeasure(ep)) {
      // a signed bar per step around a zero line: above (red) costs more than the optimum
      let s = 0;
      for (let t = t0; t < t1; t++) s = Math.max(s, Math.abs(this.errors[t]));
      s = s || 1;
      this.costScale = s;
      const mid = g.errY + g.errH / 2;
      for (let t = t0; t < t1; t++) {
        const v = this.errors[t];
        if (!v) continue;
        ctx.fillStyle = v > 0 ? "#c0392b" : "#2166ac";
        const hgt = (Math.abs(v) / s) * (g.errH / 2);
        ctx.fillRect(g.x0 + (t - t0) * cw, v > 0 ? mid - hgt : mid, Math.max(1, cw - 0.5), hgt);
      }
      ctx.strokeStyle = "#999";
      ctx.beginPath();
      ctx.moveTo(g.x0, mid + 0.5);
      ctx.lineTo(g.x0 + g.pw, mid + 0.5);
      ctx.stroke();
      ctx.fillStyle = MUTED;
      ctx.textAlign = "left";
      ctx.fillText(`±${fmt(s)}`, g.x0 + g.pw + 4, mid);
    } else {
      ctx.fillStyle = "#e00";
      for (let t = t0; t < t1; t++) if (this.errors[t]) ctx.fillRect(g.x0 + (t - t0) * cw, g.errY, Math.max(1, cw - 0.5), g.errH);
    }
    ctx.strokeStyle = "#ccc";
    ctx.strokeRect(g.x0 - 0.5, g.errY - 0.5, g.pw + 1, g.errH + 1);
    timeAxis(ctx, g.x0, g.errY + g.errH + 2, g.pw, t0, t1);
  }

  hoverTime(x, y) {
    const ep = this.ep, g = this.geom;
    if (x < g.x0 || x >= g.x0 + g.pw) return null;
    const t = stepAt(x, g.x0, g.pw, ...this.span());
    for (const [name, b] of Object.entries(g.blocks)) {
      if (y >= b.y && y < b.y + b.hgt) {
        const r = Math.min(b.rows - 1, Math.floor((y - b.y) / g.cellH));
        const labels = name === "inputs" ? ep.inputLabels : ep.outputLabels;
        const label = labels && labels[r] ? labels[r] : `channel ${r}`;
        return `${name}, step ${t}, ${label}: ${fmt(ep.a[name].data[t * b.rows + r])}`;
      }
    }
    if (y >= g.errY - 2 && y < g.errY + g.errH + 2) {
      return scored(ep, t) ? `step ${t}: ${errorWords(ep, this.errors[t])}` : `step ${t}: not scored`;
    }
    return `step ${t}`;
  }

  draw(t) {
    if (this.stage) {
      this.drawTime();
      const ep = this.ep, g = this.geom, [t0, t1] = this.span();
      const ctx = this.stage.fg.ctx;
      ctx.clearRect(0, 0, this.stage.w, this.stage.h);
      if (t >= t0 && t < t1) {
        const cw = g.pw / (t1 - t0);
        ctx.strokeStyle = "rgba(0,0,0,0.8)";
        ctx.lineWidth = 1;
        ctx.strokeRect(g.x0 + (t - t0) * cw - 0.5, 2.5, Math.max(2, cw) + 1, g.errY + g.errH);
      }
      const counted = scored(ep, t) && ep.a.targets;
      const total = ep.measure.total === "mean" ? `${fmt(this.total)} per scored step` : `${this.total}`;
      this.title.textContent = `step ${t}: ${counted ? `${errorWords(ep, this.errors[t])} at this step` : "not scored"}` +
        (ep.a.targets ? `; ${total} ${ep.measure.total === "mean" ? "over" : "in"} the episode` : "");
    }
    this.drawVectors(t);
  }

  drawVectors(t) {
    const ep = this.ep;
    if (!this.vstage) return;
    const vctx = this.vstage.fg.ctx;
    vctx.clearRect(0, 0, this.vstage.w, this.vstage.h);
    vctx.font = FONT;
    this.shownVectors().forEach((v, i) => {
      const row = headRow(ep, v.name, t, v.hd.h);
      const y = 24 + i * this.vrow;
      vctx.fillStyle = v.hd.colour;
      vctx.textAlign = "right";
      vctx.textBaseline = "middle";
      vctx.fillText(`${v.hd.label} ${v.label}`, this.vx0 - 6, y + this.vrow / 2 - 2);
      if (!row) return;
      const K = row.length;
      const scale = v.signed ? maxAbs(row) || 1 : 1;
      const img = this.vheat.draw(1, K, 1, K, (r0, r1, c0) => row[c0],
        v.signed ? (val) => DIVERGING[lutIndexSigned(val, scale)] : (val) => GREYS[lutIndexUnit(val, 1)]);
      blit(vctx, img, this.vx0, y, K * this.vcell, this.vrow - 4);
      vctx.fillStyle = MUTED;
      vctx.textAlign = "left";
      vctx.fillText(v.signed ? `±${fmt(scale)}` : "0–1", this.vx0 + K * this.vcell + 4, y + this.vrow / 2 - 2);
    });
  }
}

// ---- the player --------------------------------------------------------------------------------

// Button icons as inline SVG (no icon font to load), each followed by visible text where useful.
// Constant markup: nothing from data goes into innerHTML.
const svg = (path) => `<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false"><path d="${path}" fill="currentColor"/></svg>`;
const ICONS = {
  first: svg("M3 2h2v12H3zM14 2v12L6 8z"),
  back: svg("M12 2v12L4 8z"),
  play: svg("M4 2v12l10-6z") + "<span>Play</span>",
  pause: svg("M3 2h4v12H3zM9 2h4v12H9z") + "<span>Pause</span>",
  forward: svg("M4 2v12l8-6z"),
  last: svg("M11 2h2v12h-2zM2 2v12l8-6z"),
  loop: svg("M8 2a6 6 0 1 0 6 6h-2a4 4 0 1 1-4-4v2l4-3-4-3z") + "<span>Loop</span>",
};

export class PlayerView extends View {
  get kind() {
    return "player";
  }

  build(ep) {
    const g = this.group;
    const btn = (label, icon, fn) => {
      const b = h("button", {type: "button", class: "ntmviz-btn", "aria-label": label, title: label, onclick: fn});
      b.innerHTML = ICONS[icon];
      return b;
    };
    this.first = btn("First step", "first", () => (g.setPlaying(false, "button"), g.seek(0, "button")));
    this.back = btn("Step back", "back", () => (g.setPlaying(false, "button"), g.step(-1)));
    this.play = btn("Play", "play", () => g.setPlaying(!g.playing, "button"));
    this.play.classList.add("ntmviz-play");
    this.fwd = btn("Step forward", "forward", () => (g.setPlaying(false, "button"), g.step(1)));
    this.last = btn("Last step", "last", () => (g.setPlaying(false, "button"), g.seek(g.T - 1, "button")));
    this.loop = btn("Loop", "loop", () => g.setOption("loop", !g.loop, "button"));
    this.loop.classList.add("ntmviz-toggle");
    this.loop.setAttribute("aria-pressed", String(g.loop));
    this.slider = h("input", {type: "range", min: 0, max: Math.max(0, ep.T - 1), step: 1, value: g.t,
      "aria-label": "Step", class: "ntmviz-slider"});
    this.slider.addEventListener("input", () => (g.setPlaying(false, "slider"), g.seek(this.slider.value, "slider")));
    this.speed = h("input", {type: "range", min: 1, max: 120, step: 1, value: g.speed, "aria-label": "Speed",
      title: "Speed (steps per second)", class: "ntmviz-speed"});
    this.speed.addEventListener("input", () => g.setOption("speed", Number(this.speed.value), "slider"));
    this.speedText = h("span", {class: "ntmviz-readout"});
    this.readout = h("span", {class: "ntmviz-readout", "aria-live": "off"});
    const controls = h("div", {class: "ntmviz-player", role: "group", "aria-label": "Playback"},
      this.first, this.back, this.play, this.fwd, this.last, this.loop, this.slider, this.readout,
      h("label", {class: "ntmviz-speedbox"}, "speed ", this.speed, this.speedText));
    this.root.append(controls);
    // the key to the heads: a button per head in its colour, pressed while it is shown
    this.chips = ep.heads.map((hd) => {
      const chip = h("button", {type: "button", class: "ntmviz-chip", "data-head": String(hd.index),
        onclick: () => g.toggleHead(hd.index)}, h("i", {style: `background:${hd.colour}`}), hd.label);
      return {hd, chip};
    });
    if (this.chips.length) {
      this.showAll = h("button", {type: "button", class: "ntmviz-btn ntmviz-small", text: "show all heads",
        "aria-label": "Show all heads", onclick: () => g.setHidden([], "button")});
      // the key sits on the player's line when there is room, and wraps below it when not
      controls.append(h("div", {class: "ntmviz-legend", role: "group", "aria-label": "Heads: show or hide"},
        h("span", {class: "ntmviz-subtitle", text: "heads:"}), ...this.chips.map((c) => c.chip), this.showAll));
    }
    this.unsub && this.unsub();
    this.unsub = g.on((what) => {
      if (["playing", "loop", "speed", "steps", "hidden"].includes(what)) this.sync();
    });
    this.sync();
  }

  sync() {
    const g = this.group;
    if (!this.play) return;
    this.play.setAttribute("aria-label", g.playing ? "Pause" : "Play");
    this.play.title = g.playing ? "Pause" : "Play";
    this.play.innerHTML = g.playing ? ICONS.pause : ICONS.play;
    this.loop.setAttribute("aria-pressed", String(g.loop));
    this.speed.value = String(g.speed);
    this.speedText.textContent = ` ${g.speed}/s`;
    this.slider.max = String(Math.max(0, g.T - 1));
    this.root.dataset.playing = String(g.playing);
    for (const {hd, chip} of this.chips || []) {
      const shown = !g.hidden.has(hd.index);
      chip.setAttribute("aria-pressed", String(shown));
      chip.setAttribute("aria-label", `${shown ? "Hide" : "Show"} ${hd.label}`);
      chip.title = `${shown ? "Hide" : "Show"} ${hd.label} in every view`;
    }
    if (this.showAll) this.showAll.style.visibility = g.hidden.size ? "visible" : "hidden";
  }

  draw(t) {
    if (!this.slider) return;
    if (Number(this.slider.value) !== t) this.slider.value = String(t);
    this.readout.textContent = `step ${t} / ${this.group.T - 1}`;
  }

  destroy() {
    this.unsub && this.unsub();
  }
}

export const VIEWS = {
  player: PlayerView, memory: MemoryView, focus: FocusView, heads: HeadLocationsView, slots: SlotsView,
  sequence: SequenceView,
};
