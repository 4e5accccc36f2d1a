// The views: player, memory, head locations, focus, sequence. Each draws one episode at the
// step t of its Group: `build(ep)` once per episode (static layers), `draw(t)` per step (the
// front canvas). `paint(t)` returns false while step t's data has not arrived (see data.js).

import {
  answerScoring, approx, errorWords, fmt, frame, headRow, headValue, maxAbs, missing, partOf, scored, slotText,
  stepErrors, stepsOf, touch,
} from "./data.js";
import {
  Heat, INK, MUTED, Stage, FONT, axisBottom, axisLeft, axisRows, blit, colourBar, h, poolMax,
  poolSigned,
} from "./draw.js";
import {
  axisWidth, focusGeometry, focusStages, headsGeometry, memoryGeometry, rowAtY, sequenceGeometry, stepAt,
  stepX,
} from "./layout.js";
import {DIVERGING, GREYS, headLUT, lutIndexSigned, lutIndexUnit} from "./palette.js";

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
    if (ep) this.build(ep);
    else this.root.append(h("div", {class: "ntmviz-note", text: "No episode loaded."}));
    this.dirty = true;
  }

  note(text) {
    this.root.append(h("div", {class: "ntmviz-note", role: "note", text}));
  }

  noMemory() {
    if (this.ep.hasMemory) return false;
    this.note("This model has no memory (an LSTM baseline): only the sequence view applies.");
    return true;
  }

  // The per-step arrays draw(t) reads.
  needs() {
    return [];
  }

  paint(t) {
    const ep = this.ep;
    if (!ep || (this.kind !== "player" && this.kind !== "sequence" && !ep.hasMemory)) return true;
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
      zoom: this.kind === "heads" ? this.rows != null : null});
  }

  ask(c) {
    const ep = this.ep;
    if (!this.onNeed || ep.pending.has(c) || ep.chunks.has(c)) return;
    ep.pending.add(c);
    this.onNeed(c);
  }

  setOption() {}
  build() {}
  draw() {}
}

// The slot axis left of x: tick numbers, or with slot labels each shown row's label (as canvas
// text: never markup), cut to the room the axis has. `rows`: the rows shown (a zoom), or null.
export function slotAxis(ctx, x, y, px, ep, rows) {
  if (!ep.slotLabels) {
    if (rows) axisRows(ctx, x, y, px, rows.map((r) => slotText(ep, r).replace(/^slots? /, "")), "slot");
    else axisLeft(ctx, x, y, px, ep.N, "slot");
    return;
  }
  const shown = rows || Array.from({length: ep.D}, (_, r) => r);
  const room = axisWidth(ep) - 10;
  ctx.save();
  ctx.font = FONT;
  const labels = shown.map((r) => fitText(ctx, ep.slotLabels[r] != null ? ep.slotLabels[r] : String(r), room));
  ctx.restore();
  axisRows(ctx, x, y, px, labels, "");
}

// `text` cut (with "…") to at most `room` pixels in ctx's font.
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

// The kinds of head an episode has ("read", and "write" unless it has none).
function kindsOf(ep) {
  return [...new Set(ep.heads.map((hd) => hd.kind))];
}

// ---- memory ----------------------------------------------------------------------------------

export class MemoryView extends View {
  get kind() {
    return "memory";
  }

  needs() {
    const ep = this.ep, weights = ep ? kindsOf(ep).map((k) => `${k}.weights`) : [];
    if (ep && ep.staticMemory) return weights; // the memory came whole, with the first message
    return ["memory", ...weights, ...(this.options.diff ? ["memory.diff"] : [])];
  }

  build(ep) {
    if (this.noMemory()) return;
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
    this.title = h("span", {class: "ntmviz-subtitle"});
    this.root.style.width = `${g.width}px`; // long titles wrap instead of widening the page
    // a static memory does not change: no "show change", no "after step t"
    const change = ep.staticMemory ? null : h("label", {class: "ntmviz-check"}, toggle, " show change");
    if (ep.staticMemory) {
      this.title.textContent = "the same at every step";
      this.title.title = "this model's memory does not change while it runs";
    }
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Memory"}), this.title,
      change, this.figureButtons()));
    this.stage = new Stage(g.width, g.height, "Memory matrix, slots by width", "memory");
    this.root.append(this.stage.el, this.legend(ep));
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
    this.stage.bind((x, y) => this.hover(x, y));
  }

  legend(ep) {
    const items = ep.heads.map((hd) => h("span", {class: "ntmviz-key"},
      h("i", {style: `background:${hd.colour}`}), hd.label));
    return h("div", {class: "ntmviz-legend"}, ...items);
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
    // one strip per head left of the matrix: its weighting at t, and a mark at its focus
    ep.heads.forEach((hd, i) => {
      const w = headRow(ep, `${hd.kind}.weights`, t, hd.h);
      const lut = headLUT(hd.kind, hd.h);
      const strip = this.heat.draw(D, 1, g.mh, 1, (r0, r1) => poolMax(w, 1, r0, r1, 0, 1), (v) => lut[lutIndexUnit(v, 1)]);
      blit(ctx, strip, g.stripX + i * 7, g.y0, g.stripW, g.mh);
      let best = 0;
      for (let n = 1; n < D; n++) if (w[n] > w[best]) best = n;
      const y = g.y0 + ((best + 0.5) * g.mh) / D;
      ctx.strokeStyle = hd.colour;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(g.x0 - 0.5, g.y0 + (best * g.mh) / D - 0.5, g.mw + 1, Math.max(1, g.mh / D) + 1);
      ctx.fillStyle = hd.colour;
      ctx.beginPath();
      const xr = g.arrowX + i * 7;
      ctx.moveTo(xr, y);
      ctx.lineTo(xr + 6, y - 4);
      ctx.lineTo(xr + 6, y + 4);
      ctx.fill();
    });
    if (ep.staticMemory) return;
    colourBar(ctx, g.barX, g.barY, g.barW, g.barH, scale, fmt);
    this.title.textContent = diff ? `change made by step ${t}` : `after step ${t}`;
    this.title.title = diff ? "memory[t+1] − memory[t]" : "memory[t+1]";
  }

  hover(x, y) {
    const ep = this.ep, g = this.geom, t = this.group.t;
    if (!ep || x < g.x0 || x >= g.x0 + g.mw || y < g.y0 || y >= g.y0 + g.mh) return null;
    const r = rowAtY(y, g.y0, g.mh, ep.D);
    const m = Math.min(ep.M - 1, Math.floor(((x - g.x0) * ep.M) / g.mw));
    const i = r * ep.M + m;
    const ws = ep.heads.map((hd) => {
      const w = frame(ep, `${hd.kind}.weights`, t);
      const v = approx(w, headRow(ep, `${hd.kind}.weights`, t, hd.h)[r]);
      return `${hd.label} w${ep.D < ep.N ? " max" : ""}${v.startsWith("≈") ? " " : "="}${v}`;
    }).join(", ");
    if (ep.staticMemory) {
      const mem = ep.a.memory;
      return `${slotText(ep, r)}, width ${m}: ${approx(mem, mem.data[i])}${ep.D < ep.N ? " (largest magnitude over these slots)" : ""}; ` +
        `step ${t}: ${ws}`;
    }
    const after = frame(ep, "memory", t + 1), before = frame(ep, "memory", t);
    if (!after || !before) return null;
    const change = frame(ep, "memory.diff", t);
    const d = change ? change.data[i] : after.data[i] - before.data[i];
    const pooled = ep.D < ep.N ? " (largest magnitude over these slots)" : "";
    return `step ${t}, ${slotText(ep, r)}, width ${m}: ${approx(after, after.data[i])} (before ${approx(before, before.data[i])}, ` +
      `change ${approx(change || after, d)})${pooled}; ${ws}`;
  }
}

// ---- head locations over time ----------------------------------------------------------------

export const BUSY = 0.05; // a slot is busy if some head puts at least this weight on it at some step

// Rows (of D) that some head weights at least BUSY at some step, from the time overviews.
export function busyRows(ep) {
  const max = new Float32Array(ep.D);
  for (const kind of ["read", "write"]) {
    const arr = ep.a[`${kind}.weights.time`];
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
    if (this.noMemory()) return;
    this.busy = busyRows(ep);
    // zoomed unless told otherwise when the heads use at most a quarter of the slots
    const few = this.busy.length > 0 && this.busy.length <= ep.D / 4 && ep.D >= 16;
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
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Head locations over time"}),
      h("span", {class: "ntmviz-subtitle", text: "click or drag to jump to a step"}),
      h("label", {class: "ntmviz-check"}, check,
        ` zoom to busy slots (${this.busy.length} of ${ep.D < ep.N ? `${ep.D} rows` : ep.N})`), this.figureButtons()));
    const wrap = h("div", {class: "ntmviz-row"});
    this.root.append(wrap);
    this.panels = ep.heads.map((hd) => {
      const stage = new Stage(g.width, g.height, `${hd.label} head weighting over time`, `heads-${hd.kind}-${hd.h + 1}`);
      this.drawPanel(stage, hd);
      wrap.append(stage.el);
      return {hd, stage};
    });
  }

  drawPanel(stage, hd) {
    const ep = this.ep, g = this.geom, rows = this.rows;
    const ctx = stage.bg.ctx;
    ctx.font = "bold " + FONT;
    ctx.fillStyle = hd.colour;
    ctx.textBaseline = "top";
    ctx.fillText(`${hd.label} head`, g.x0, 0);
    const w = ep.a[`${hd.kind}.weights.time`];
    const [P, H, D] = w.shape;
    const lut = headLUT(hd.kind, hd.h);
    const shown = rows ? rows.length : D;
    // transpose on the fly: image rows are slots, columns time
    const img = new Heat().draw(shown, P, g.ph, g.pw, (r0, r1, c0, c1) => {
      let m = 0;
      for (let p = c0; p < c1; p++) for (let i = r0; i < r1; i++) {
        const v = w.data[(p * H + hd.h) * D + (rows ? rows[i] : i)];
        if (v > m) m = v;
      }
      return m;
    }, (v) => lut[lutIndexUnit(v, 1)]);
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
      slotAxis(ctx, g.x0 - 2, g.y0, g.ph, ep, rows);
    } else {
      slotAxis(ctx, g.x0 - 2, g.y0, g.ph, ep, null);
    }
    axisBottom(ctx, g.x0, g.y0 + g.ph, g.pw, ep.T, "step");
    stage.bind((x, y) => this.hover(hd, x, y), (x) => {
      if (x < g.x0 || x >= g.x0 + g.pw) return;
      this.group.setPlaying(false, "click");
      this.group.seek(stepAt(x, g.x0, g.pw, ep.T), "click");
    });
  }

  hover(hd, x, y) {
    const ep = this.ep, g = this.geom, rows = this.rows;
    if (x < g.x0 || x >= g.x0 + g.pw || y < g.y0 || y >= g.y0 + g.ph) return null;
    const t = stepAt(x, g.x0, g.pw, ep.T);
    const i = rowAtY(y, g.y0, g.ph, rows ? rows.length : ep.D), r = rows ? rows[i] : i;
    const w = ep.a[`${hd.kind}.weights.time`];
    const [, H, D] = w.shape;
    const p = partOf(ep.T, ep.P, t);
    const [t0, t1] = stepsOf(ep, p);
    const when = t1 - t0 > 1 ? `steps ${t0}–${t1 - 1}` : `step ${t}`;
    const most = ep.D < ep.N || t1 - t0 > 1 ? "max " : "";
    return `${hd.label}: ${when}, ${slotText(ep, r)}, weight ${most}${approx(w, w.data[(p * H + hd.h) * D + r])}`;
  }

  draw(t) {
    const ep = this.ep, g = this.geom;
    const x = stepX(t, g.x0, g.pw, ep.T);
    const cw = Math.max(2, g.pw / ep.T);
    for (const {stage} of this.panels) {
      const ctx = stage.fg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
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

// ---- focus: the addressing stages at step t ----------------------------------------------------


export class FocusView extends View {
  get kind() {
    return "focus";
  }

  // per kind of head: its stage columns (the final weights last) and the params beneath them
  needs() {
    const ep = this.ep, out = [];
    if (!ep) return out;
    for (const kind of kindsOf(ep)) {
      for (const s of [...focusStages(ep, kind), ...(ep.focusParams[kind] || [])]) out.push(`${kind}.${s}`);
    }
    return out;
  }

  build(ep) {
    if (this.noMemory()) return;
    const g = (this.geom = focusGeometry(ep));
    // the NTM's stages read as its addressing; any other model's by the names it gave them
    const kinds = kindsOf(ep);
    const ntm = kinds.every((k) => ep.ntmFocus[k] && focusStages(ep, k).join() === "content,gated,shifted,weights");
    const stages = focusStages(ep, kinds[0] || "read");
    const explain = ntm ? "addressing: content → gated → shifted → sharpened weights"
      : stages.length > 1 ? `stages: ${stages.join(" → ")}` : "the weights each head used";
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Focus at step"}),
      this.title = h("span", {class: "ntmviz-subtitle"}),
      h("span", {class: "ntmviz-subtitle ntmviz-stages", text: explain}),
      this.figureButtons()));
    const wrap = h("div", {class: "ntmviz-row"});
    this.root.append(wrap);
    this.panels = ep.heads.map((hd) => {
      const stage = new Stage(g.width, g.height, `${hd.label} head's addressing stages at this step`, `focus-${hd.kind}-${hd.h + 1}`);
      const ctx = stage.bg.ctx;
      const cols = focusStages(ep, hd.kind);
      slotAxis(ctx, g.x0 - 2, g.y0, g.ph, ep, null);
      ctx.fillStyle = hd.colour;
      ctx.font = "bold " + FONT;
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      ctx.fillText(`${hd.label} head`, g.x0 + 2, 2);
      ctx.font = FONT;
      cols.forEach((label, j) => {
        const x = g.x0 + j * (g.colW + g.gap);
        ctx.fillStyle = MUTED;
        ctx.fillText(fitText(ctx, label, g.colW), x + 2, 18);
        ctx.strokeStyle = "#ddd";
        ctx.strokeRect(x + 0.5, g.y0 - 0.5, g.colW, g.ph + 1);
        if (j < cols.length - 1) {
          ctx.fillStyle = "#aaa";
          ctx.fillText("›", x + g.colW + 1, g.y0 + g.ph / 2 - 6);
        }
      });
      stage.bind((x, y) => this.hover(hd, x, y));
      wrap.append(stage.el);
      return {hd, stage, cols};
    });
  }

  hover(hd, x, y) {
    const ep = this.ep, g = this.geom, t = this.group.t;
    const j = Math.floor((x - g.x0) / (g.colW + g.gap)), cols = focusStages(ep, hd.kind);
    if (y >= g.y0 && y < g.y0 + g.ph && j >= 0 && j < cols.length) {
      const r = rowAtY(y, g.y0, g.ph, ep.D);
      const name = `${hd.kind}.${cols[j]}`;
      const row = headRow(ep, name, t, hd.h);
      if (!row) return null;
      return `${hd.label}, step ${t}, ${slotText(ep, r)}: ${cols[j]} weight ${ep.D < ep.N ? "max " : ""}${approx(frame(ep, name, t), row[r])}`;
    }
    if (y > g.y0 + g.ph && !ep.ntmFocus[hd.kind]) {
      const names = ep.focusParams[hd.kind] || [];
      if (!names.length) return null;
      return `${hd.label}, step ${t}: ` + names.map((p) => `${p} ${fmt(headValue(ep, `${hd.kind}.${p}`, t, hd.h))}`).join(", ");
    }
    if (y > g.y0 + g.ph) {
      const s = headRow(ep, `${hd.kind}.shift`, t, hd.h);
      if (!s) return null;
      const k = (ep.S - 1) / 2;
      const v = (name) => fmt(headValue(ep, `${hd.kind}.${name}`, t, hd.h));
      return `${hd.label}, step ${t}: key strength β=${v("beta")}, gate g=${v("gate")}, sharpening γ=${v("gamma")}, ` +
        `shift ${Array.from(s, (x2, i) => `${i - k > 0 ? "+" : ""}${i - k}: ${fmt(x2)}`).join(", ")}`;
    }
    return null;
  }

  draw(t) {
    const ep = this.ep, g = this.geom, N = ep.D; // rows of the (possibly pooled) weightings
    this.title.textContent = String(t);
    const rows = Math.min(N, Math.round(g.ph));
    const rowH = g.ph / rows;
    for (const {hd, stage, cols} of this.panels) {
      const ctx = stage.fg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
      ctx.fillStyle = hd.colour;
      cols.forEach((name, j) => {
        const w = headRow(ep, `${hd.kind}.${name}`, t, hd.h);
        const x = g.x0 + j * (g.colW + g.gap) + 1;
        ctx.beginPath();
        for (let r = 0; r < rows; r++) {
          const n0 = Math.floor((r * N) / rows), n1 = Math.max(n0 + 1, Math.floor(((r + 1) * N) / rows));
          let v = 0;
          for (let n = n0; n < n1; n++) if (w[n] > v) v = w[n];
          if (v > 0.002) ctx.rect(x, g.y0 + r * rowH + (rowH > 4 ? 1 : 0), Math.min(1, v) * (g.colW - 2),
            Math.max(1, rowH - (rowH > 4 ? 2 : 0)));
        }
        ctx.fill();
      });
      const py = g.y0 + g.ph + 8, bx = g.x0;
      if (!ep.ntmFocus[hd.kind]) {
        // another model's per-head numbers, one line each (none: nothing beneath the stages)
        ctx.font = FONT;
        ctx.textBaseline = "top";
        ctx.textAlign = "left";
        ctx.fillStyle = INK;
        (ep.focusParams[hd.kind] || []).forEach((p, i) => {
          ctx.fillText(fitText(ctx, `${p} ${fmt(headValue(ep, `${hd.kind}.${p}`, t, hd.h))}`, g.blockW - 12), bx, py + 16 * i);
        });
        continue;
      }
      // the NTM's parameters: beta, gate, gamma as numbers and bars; the shift distribution as bars
      const beta = headValue(ep, `${hd.kind}.beta`, t, hd.h);
      const gate = headValue(ep, `${hd.kind}.gate`, t, hd.h);
      const gamma = headValue(ep, `${hd.kind}.gamma`, t, hd.h);
      ctx.font = FONT;
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      const bar = (label, value, frac, y) => {
        ctx.fillStyle = INK;
        ctx.fillText(`${label} ${fmt(value)}`, bx, y);
        ctx.fillStyle = "#eee";
        ctx.fillRect(bx + 90, y + 2, 52, 8);
        ctx.fillStyle = hd.colour;
        ctx.fillRect(bx + 90, y + 2, 52 * Math.max(0, Math.min(1, frac)), 8);
      };
      bar("β key", beta, Math.log1p(Math.max(0, beta)) / Math.log1p(50), py);
      bar("g gate", gate, gate, py + 16);
      bar("γ sharp", gamma, (gamma - 1) / 9, py + 32);
      const s = headRow(ep, `${hd.kind}.shift`, t, hd.h), S = ep.S, k = (S - 1) / 2;
      const sx = bx + 154, sw = Math.min(16, Math.floor(86 / S)), sh = 36;
      ctx.fillStyle = MUTED;
      ctx.fillText("shift", sx, py);
      for (let i2 = 0; i2 < S; i2++) {
        const x = sx + i2 * (sw + 2);
        ctx.fillStyle = "#eee";
        ctx.fillRect(x, py + 14, sw, sh);
        ctx.fillStyle = hd.colour;
        const v = Math.max(0, Math.min(1, s[i2]));
        ctx.fillRect(x, py + 14 + sh * (1 - v), sw, sh * v);
        if (S <= 9 || i2 === 0 || i2 === S - 1 || i2 === k) {
          ctx.fillStyle = MUTED;
          ctx.textAlign = "center";
          ctx.fillText(`${i2 - k > 0 ? "+" : ""}${i2 - k}`, x + sw / 2, py + 14 + sh + 2);
          ctx.textAlign = "left";
        }
      }
    }
  }
}

// ---- sequence: inputs, targets, outputs over time; the head vectors at t -------------------------

// How many values a vector row has: M for the NTM's and the read vectors; K for [T, H, K] params
// (known from the chunk of any step that has arrived; M until then).
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
    const blocks = [["inputs", ep.I], ["targets", ep.O], ["outputs", ep.O]].filter(([name]) => ep.a[name]);
    const g = (this.geom = sequenceGeometry(ep, blocks));
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Sequence"}),
      this.title = h("span", {class: "ntmviz-subtitle"}), this.figureButtons()));
    const wrap = h("div", {class: "ntmviz-row"});
    this.root.append(wrap);
    this.stage = null;
    if (blocks.length) this.buildTime(ep, blocks, wrap);
    // the head vectors at t, those the episode has: the NTM's key (every head), erase and add
    // (write heads), read vector (read heads); another model's [T, H, K] params by their names
    this.vectors = [];
    if (ep.hasMemory) {
      for (const hd of ep.heads) {
        for (const p of ep.vectors[hd.kind] || []) {
          this.vectors.push({hd, name: `${hd.kind}.${p}`, label: p, signed: p !== "erase"});
        }
        if (hd.kind === "read" && ep.hasReads) this.vectors.push({hd, name: "reads", label: "read", signed: true});
      }
    }
    if (this.vectors.length) {
      const K = Math.max(ep.M, ...this.vectors.map((v) => vectorWidth(ep, v)));
      this.vcell = Math.max(3, Math.min(14, Math.floor(220 / K)));
      this.vx0 = 86;
      this.vstage = new Stage(this.vx0 + K * this.vcell + 70, 24 + this.vectors.length * 18 + 30, "Head vectors at this step", "vectors");      const vctx = this.vstage.bg.ctx;
      vctx.font = FONT;
      vctx.textBaseline = "top";
      vctx.fillStyle = INK;
      vctx.fillText("vectors at step t", 4, 4);
      this.vectors.forEach((v, i) => {
        const y = 24 + i * 18;
        vctx.fillStyle = v.hd.colour;
        vctx.textAlign = "right";
        vctx.textBaseline = "middle";
        vctx.fillText(`${v.hd.label} ${v.label}`, this.vx0 - 6, y + 7);
      });
      axisBottom(vctx, this.vx0, 24 + this.vectors.length * 18, K * this.vcell, K, "width");
      this.vstage.bind((x, y) => {
        const i = Math.floor((y - 24) / 18), m = Math.floor((x - this.vx0) / this.vcell);
        if (i < 0 || i >= this.vectors.length || m < 0 || m >= vectorWidth(ep, this.vectors[i])) return null;
        const v = this.vectors[i], t = this.group.t, row = headRow(ep, v.name, t, v.hd.h);
        return row ? `${v.hd.label} ${v.label}, step ${t}, width ${m}: ${fmt(row[m])}` : null;
      });
      this.vheat = new Heat();
      wrap.append(this.vstage.el);
    }
    if (!this.stage && !this.vstage) this.note("This episode has no inputs, outputs or head vectors to show.");
  }

  // inputs, targets, outputs over time and the bit-error strip (when the episode has any of them)
  buildTime(ep, blocks, wrap) {
    const g = this.geom;
    this.stage = new Stage(g.width, g.height, "Inputs, targets and outputs over time", "sequence");
    wrap.append(this.stage.el);
    const ctx = this.stage.bg.ctx;
    const {T, O} = ep;
    this.errors = stepErrors(ep); // wrong bits (or answers) on scored steps only
    this.totalErrors = this.errors.reduce((a, b) => a + b, 0);
    for (const [name] of blocks) {
      const b = g.blocks[name], arr = ep.a[name];
      const img = new Heat().draw(b.rows, T, b.hgt, g.pw, (r0, r1, c0, c1) => {
        let m = 0;
        for (let t = c0; t < c1; t++) for (let r = r0; r < r1; r++) m = Math.max(m, Math.abs(arr.data[t * b.rows + r]));
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
      if (name === "outputs" && ep.a.targets && g.pw / T >= 3 && !answerScoring(ep)) {
        // wrong bits outlined where they count (when a step is wide enough to show it)
        ctx.strokeStyle = "#e00";
        ctx.lineWidth = 1.5;
        const cw = g.pw / T;
        for (let t = 0; t < T; t++) {
          if (!this.errors[t]) continue;
          for (let o = 0; o < O; o++) {
            if ((ep.a.outputs.data[t * O + o] > 0.5) !== (ep.a.targets.data[t * O + o] > 0.5)) {
              ctx.strokeRect(g.x0 + t * cw + 0.75, b.y + o * g.cellH + 0.75, Math.max(1, cw - 1.5), g.cellH - 1.5);
            }
          }
        }
        ctx.lineWidth = 1;
      }
    }
    // the bit-error strip: a red mark at each step with wrong bits
    ctx.fillStyle = INK;
    ctx.textAlign = "right";
    ctx.fillText(errorWords(ep), g.x0 - 6, g.errY + 4);
    const cw = g.pw / T;
    ctx.fillStyle = "#e00";
    for (let t = 0; t < T; t++) if (this.errors[t]) ctx.fillRect(g.x0 + t * cw, g.errY, Math.max(1, cw - 0.5), g.errH);
    ctx.strokeStyle = "#ccc";
    ctx.strokeRect(g.x0 - 0.5, g.errY - 0.5, g.pw + 1, g.errH + 1);
    axisBottom(ctx, g.x0, g.errY + 10, g.pw, T, "step");
    this.stage.bind((x, y) => this.hoverTime(x, y), (x) => {
      if (x < g.x0 || x >= g.x0 + g.pw) return;
      this.group.setPlaying(false, "click");
      this.group.seek(stepAt(x, g.x0, g.pw, ep.T), "click");
    });
  }

  hoverTime(x, y) {
    const ep = this.ep, g = this.geom;
    if (x < g.x0 || x >= g.x0 + g.pw) return null;
    const t = stepAt(x, g.x0, g.pw, ep.T);
    for (const [name, b] of Object.entries(g.blocks)) {
      if (y >= b.y && y < b.y + b.hgt) {
        const r = Math.min(b.rows - 1, Math.floor((y - b.y) / g.cellH));
        const labels = name === "inputs" ? ep.inputLabels : ep.outputLabels;
        const label = labels && labels[r] ? labels[r] : `channel ${r}`;
        return `${name}, step ${t}, ${label}: ${fmt(ep.a[name].data[t * b.rows + r])}`;
      }
    }
    if (y >= g.errY - 2 && y < g.errY + 10) {
      return scored(ep, t) ? `step ${t}: ${errorWords(ep, this.errors[t])}` : `step ${t}: not scored`;
    }
    return `step ${t}`;
  }

  draw(t) {
    if (this.stage) this.drawTime(t);
    this.drawVectors(t);
  }

  drawTime(t) {
    const ep = this.ep, g = this.geom;
    const ctx = this.stage.fg.ctx;
    ctx.clearRect(0, 0, this.stage.w, this.stage.h);
    const cw = g.pw / ep.T;
    const x = g.x0 + t * cw;
    ctx.strokeStyle = "rgba(0,0,0,0.8)";
    ctx.lineWidth = 1;
    ctx.strokeRect(x - 0.5, 2.5, Math.max(2, cw) + 1, g.errY + g.errH);
    const counted = scored(ep, t) && ep.a.targets;
    this.title.textContent = `step ${t}: ${counted ? `${errorWords(ep, this.errors[t])} at this step` : "not scored"}` +
      (ep.a.targets ? `, ${this.totalErrors} in the episode` : "");
  }

  drawVectors(t) {
    const ep = this.ep;
    if (!this.vstage) return;
    const vctx = this.vstage.fg.ctx;
    vctx.clearRect(0, 0, this.vstage.w, this.vstage.h);
    this.vectors.forEach((v, i) => {
      const row = headRow(ep, v.name, t, v.hd.h), K = row.length;
      const scale = v.signed ? Math.max(1, maxAbs(row)) : 1;
      const img = this.vheat.draw(1, K, 1, K, (r0, r1, c0) => row[c0],
        v.signed ? (val) => DIVERGING[lutIndexSigned(val, scale)] : (val) => GREYS[lutIndexUnit(val, 1)]);
      blit(vctx, img, this.vx0, 24 + i * 18, K * this.vcell, 14);
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
    this.root.append(h("div", {class: "ntmviz-player", role: "group", "aria-label": "Playback"},
      this.first, this.back, this.play, this.fwd, this.last, this.loop, this.slider, this.readout,
      h("label", {class: "ntmviz-speedbox"}, "speed ", this.speed, this.speedText)));
    this.unsub && this.unsub();
    this.unsub = g.on((what) => {
      if (what === "playing" || what === "loop" || what === "speed" || what === "steps") this.sync();
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

export const VIEWS = {player: PlayerView, memory: MemoryView, heads: HeadLocationsView, focus: FocusView, sequence: SequenceView};
