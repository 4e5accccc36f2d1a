// ntmviz renderer: draws a recorded NTM episode on canvases and animates it in the browser.
//
// A plain ES module with no imports, used twice, verbatim: inside the Panel JSComponent
// (ntmviz/app/canvas.py) and inlined into the standalone HTML export (ntmviz/app/export.py).
//
// The episode's arrays arrive once, as base64 of little-endian float32 bytes, or (large arrays:
// memory, head weightings) of uint8 indices into the palette they are painted with:
//   payload = {format: "ntmviz-view", T, N, M, R, W, S, I, O, D, slots_px, meta, input_labels,
//              output_labels, arrays: {name: {shape: [...], b64: "..."} |
//                                            {shape, dtype: "u1", signed, scale, b64}}}
// Index i decodes to (i - 127.5) scale / 127.5 (signed) or i scale / 255, which the palette maps
// back to i: the picture is the one the exact values give. When N is more than the slot axis has
// pixels, arrays with a slot axis arrive pooled to D rows (see ntmviz/app/payload.py; row r
// covers slots floor(r N / D) .. floor((r + 1) N / D) - 1), and "memory.diff" holds the change.
// Every view that shares a playback group id shares one step t (a Group below). A Group
// paints in requestAnimationFrame: moving t many times between two frames paints once, and a
// slow frame makes playback skip steps rather than queue them.
//
// Hooks for tests and benchmarks (documented in ntmviz/app/__init__.py):
//   window.__ntmviz.frames   animation frames in which at least one view repainted
//   window.__ntmviz.paints   view repaints (a frame with 5 views adds 5)
//   window.__ntmviz.step     the step of the last painted frame
//   every view root: class "ntmviz-view", data-view, data-step, data-frames, data-steps

const NS = "__ntmviz";

function registry() {
  const g = globalThis;
  if (!g[NS]) {
    g[NS] = {version: 1, groups: {}, frames: 0, paints: 0, step: 0, active: null, keys: false};
  }
  return g[NS];
}

// ---- colours -------------------------------------------------------------------------------

const READ_COLOURS = ["#1f6fb4", "#2a9d4b", "#17a2b8", "#7b4fc4"];
const WRITE_COLOURS = ["#d62728", "#f28e1c", "#d6479b", "#8c564b"];

export function headColour(kind, h) {
  const list = kind === "read" ? READ_COLOURS : WRITE_COLOURS;
  return list[h % list.length];
}

function hexRGB(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

// A 256-entry lookup table of packed RGBA (little-endian ABGR words for a Uint32Array view).
function pack(r, g, b) {
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

function rampLUT(from, to) {
  const lut = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    const f = i / 255;
    lut[i] = pack(Math.round(from[0] + (to[0] - from[0]) * f), Math.round(from[1] + (to[1] - from[1]) * f),
      Math.round(from[2] + (to[2] - from[2]) * f));
  }
  return lut;
}

// Diverging blue - near white - red for signed values; index 128 is zero.
const DIVERGING = (() => {
  const neg = [33, 102, 172], mid = [247, 247, 247], pos = [178, 24, 43];
  const lut = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    const f = (i - 127.5) / 127.5;
    const end = f < 0 ? neg : pos, a = Math.abs(f);
    lut[i] = pack(Math.round(mid[0] + (end[0] - mid[0]) * a), Math.round(mid[1] + (end[1] - mid[1]) * a),
      Math.round(mid[2] + (end[2] - mid[2]) * a));
  }
  return lut;
})();
const GREYS = rampLUT([255, 255, 255], [34, 34, 34]);
const headLUTs = {};
function headLUT(kind, h) {
  const key = kind + h;
  if (!headLUTs[key]) headLUTs[key] = rampLUT([255, 255, 255], hexRGB(headColour(kind, h)));
  return headLUTs[key];
}

function lutIndexSigned(v, scale) {
  const i = Math.round(127.5 + 127.5 * v / scale);
  return i < 0 ? 0 : i > 255 ? 255 : i;
}
function lutIndexUnit(v, scale) {
  const i = Math.round(255 * v / scale);
  return i < 0 ? 0 : i > 255 ? 255 : i;
}

// ---- data ----------------------------------------------------------------------------------

function base64Bytes(b64) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(b64);
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

function decode(spec) {
  if (spec == null) return null;
  if (spec.data instanceof Float32Array) return spec;
  const bytes = base64Bytes(spec.b64);
  if (spec.dtype === "u1") {
    // palette indices: each decodes to the middle of its interval (hover shows it as ≈)
    const s = Number(spec.scale) || 1, table = new Float32Array(256);
    for (let i = 0; i < 256; i++) table[i] = spec.signed ? ((i - 127.5) * s) / 127.5 : (i * s) / 255;
    const data = new Float32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) data[i] = table[bytes[i]];
    return {shape: spec.shape, data, approx: true, scale: s};
  }
  const data = bytes.byteOffset % 4 ? new Float32Array(bytes.slice().buffer) : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return {shape: spec.shape, data};
}

const decodedCache = new WeakMap();

// The decoded episode: typed arrays plus sizes, built once per payload.
export function episodeFrom(payload) {
  if (payload == null || payload.arrays == null) return null;
  if (decodedCache.has(payload)) return decodedCache.get(payload);
  const ep = {
    T: payload.T, N: payload.N || 0, M: payload.M || 0, R: payload.R || 0, W: payload.W || 0,
    S: payload.S || 0, I: payload.I, O: payload.O, meta: payload.meta || {},
    inputLabels: payload.input_labels || null, outputLabels: payload.output_labels || null,
    hasMemory: payload.has_memory != null ? !!payload.has_memory : !!payload.arrays.memory, a: {},
    slotsPx: payload.slots_px != null ? payload.slots_px : null,
  };
  ep.D = payload.D || ep.N; // rows of the slot-axis arrays (D < N: pooled, see slotsOf)
  for (const [k, v] of Object.entries(payload.arrays)) ep.a[k] = decode(v);
  ep.heads = [];
  for (let h = 0; h < ep.R; h++) ep.heads.push({kind: "read", h, label: `read ${h + 1}`, colour: headColour("read", h)});
  for (let h = 0; h < ep.W; h++) ep.heads.push({kind: "write", h, label: `write ${h + 1}`, colour: headColour("write", h)});
  // Colour scales, fixed over the episode so a colour means the same value at every step.
  if (ep.a.memory) {
    ep.memScale = ep.a.memory.scale || maxAbs(ep.a.memory.data) || 1;
    if (ep.a["memory.diff"]) ep.diffScale = ep.a["memory.diff"].scale || maxAbs(ep.a["memory.diff"].data) || 1;
    else {
      const mem = ep.a.memory.data, NM = ep.D * ep.M;
      let d = 0;
      for (let i = NM; i < mem.length; i++) {
        const v = Math.abs(mem[i] - mem[i - NM]);
        if (v > d) d = v;
      }
      ep.diffScale = d || 1;
    }
  }
  decodedCache.set(payload, ep);
  return ep;
}

// Row r of a slot-axis array covers slots [n0, n1); as hover text, "slot n" or "slots n0–n1".
function slotsOf(ep, r) {
  if (ep.D >= ep.N) return [r, r + 1];
  const n0 = Math.floor((r * ep.N) / ep.D);
  return [n0, Math.max(n0 + 1, Math.floor(((r + 1) * ep.N) / ep.D))];
}
function slotText(ep, r) {
  const [n0, n1] = slotsOf(ep, r);
  return n1 - n0 > 1 ? `slots ${n0}–${n1 - 1}` : `slot ${n0}`;
}
// The row under pixel offset y of a slot axis `px` pixels tall.
function rowAt(ep, y, px) {
  return Math.max(0, Math.min(ep.D - 1, Math.floor((y * ep.D) / px)));
}
// A value for hover: "≈" when it arrived as a palette index; "max" when pooled over slots.
function approx(arr, v) {
  return (arr && arr.approx ? "≈" : "") + fmt(v);
}

function maxAbs(arr) {
  let m = 0;
  for (let i = 0; i < arr.length; i++) {
    const v = Math.abs(arr[i]);
    if (v > m && Number.isFinite(v)) m = v;
  }
  return m;
}

// A [T, H, K] array's row for (t, h) as a subarray of length K.
function row3(arr, t, h) {
  const [, H, K] = arr.shape;
  const o = (t * H + h) * K;
  return arr.data.subarray(o, o + K);
}
function at2(arr, t, h) {
  return arr.data[t * arr.shape[1] + h];
}
function headArray(ep, head, name) {
  return ep.a[`${head.kind}.${name}`];
}

function fmt(v) {
  if (v == null || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(2);
  return v.toFixed(a >= 100 ? 1 : 3);
}

// ---- the playback group: one step t shared by every view of an episode ---------------------

class Group {
  constructor(id) {
    this.id = id;
    this.t = 0;
    this.T = 1;
    this.playing = false;
    this.loop = false;
    this.speed = 10; // steps per second
    this.views = new Set();
    this.listeners = new Set(); // (what, value, source) => void, for controls and syncing
    this.reporters = []; // functions (key, value) => void that tell Python; the first live one is used
    this.frames = 0;
    this._raf = 0;
    this._last = 0;
    this._acc = 0;
    this._reportTimer = 0;
  }

  setSteps(T) {
    this.T = Math.max(1, T | 0);
    if (this.t > this.T - 1) this.seek(this.T - 1, "steps");
    this.emit("steps", this.T);
    this.invalidate();
  }

  seek(t, source) {
    t = Math.max(0, Math.min(this.T - 1, Math.round(Number(t) || 0)));
    if (t === this.t) return;
    this.t = t;
    this.emit("t", t, source);
    if (source !== "python") this.report("t", t);
    this.request();
  }

  step(delta) {
    let t = this.t + delta;
    if (this.loop) t = ((t % this.T) + this.T) % this.T;
    this.seek(t, "key");
  }

  setPlaying(on, source) {
    on = !!on;
    if (on === this.playing) return;
    if (on && !this.loop && this.t >= this.T - 1) this.seek(0, "play"); // play again from the start
    this.playing = on;
    this._last = 0;
    this._acc = 0;
    this.emit("playing", on, source);
    if (source !== "python") {
      this.report("playing", on);
      if (!on) this.report("t", this.t, true);
    }
    this.request();
  }

  setOption(key, value, source) {
    if (this[key] === value) return;
    this[key] = value;
    this.emit(key, value, source);
    if (source !== "python") this.report(key, value);
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(what, value, source) {
    for (const fn of this.listeners) fn(what, value, source);
  }

  // Tell Python, through one live component: t at most every 250 ms while playing (and
  // 80 ms after the last move when scrubbing), other settings at once.
  report(key, value, now) {
    const send = () => {
      const r = this.reporters[0];
      if (r) r(key, key === "t" ? this.t : value);
    };
    if (key !== "t" || now) {
      if (key === "t") clearTimeout(this._reportTimer), this._reportTimer = 0;
      send();
      return;
    }
    if (this._reportTimer) return;
    this._reportTimer = setTimeout(() => {
      this._reportTimer = 0;
      send();
    }, this.playing ? 250 : 80);
  }

  invalidate() {
    for (const v of this.views) v.dirty = true;
    this.request();
  }

  request() {
    if (!this._raf) this._raf = requestAnimationFrame((ts) => this._frame(ts));
  }

  _frame(ts) {
    this._raf = 0;
    if (this.playing) {
      if (!this._last) this._last = ts;
      this._acc += ((ts - this._last) / 1000) * this.speed;
      this._last = ts;
      const n = Math.floor(this._acc);
      if (n > 0) {
        this._acc -= n;
        let t = this.t + n;
        if (t > this.T - 1) {
          if (this.loop) t = t % this.T;
          else {
            t = this.T - 1;
            this.seek(t, "play");
            this.setPlaying(false, "end");
          }
        }
        this.seek(t, "play");
      }
      if (this.playing) this.request();
    }
    this.paint();
  }

  paint() {
    const reg = registry();
    let painted = 0;
    for (const v of this.views) {
      if (v.dirty || v.paintedT !== this.t) {
        try {
          v.paint(this.t);
        } catch (err) {
          console.error("ntmviz: a view failed to paint", err);
        }
        v.dirty = false;
        v.paintedT = this.t;
        v.frames += 1;
        v.root.dataset.step = String(this.t);
        v.root.dataset.frames = String(v.frames);
        painted += 1;
      }
    }
    if (painted) {
      this.frames += 1;
      reg.frames += 1;
      reg.paints += painted;
      reg.step = this.t;
    }
  }
}

export function group(id) {
  const reg = registry();
  if (!reg.groups[id]) reg.groups[id] = new Group(id);
  if (!reg.active) reg.active = id;
  return reg.groups[id];
}

// In a notebook the page's keys belong to the notebook (space, arrows move between cells).
function inNotebook() {
  const w = globalThis;
  return !!(w.Jupyter || w.jupyterlab || w._JUPYTERLAB || w.acquireVsCodeApi ||
    document.querySelector(".jp-Notebook, .jp-LabShell, #notebook-container, .notebook_app"));
}

// Keyboard: left / right arrows step, space plays or pauses, Home / End jump. The keys go to
// the group the pointer or focus was in last. Typing in a text field is left alone. In a
// notebook, only keys pressed while the focus is inside a view count.
function installKeys() {
  const reg = registry();
  if (reg.keys || typeof document === "undefined") return;
  reg.keys = true;
  const notebook = inNotebook();
  document.addEventListener("keydown", (ev) => {
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const path = ev.composedPath ? ev.composedPath() : [];
    const inside = path.find((el) => el && el.dataset && el.dataset.group);
    if (inside) reg.active = inside.dataset.group;
    else if (notebook) return;
    const target = path[0] || ev.target;
    const tag = (target && target.tagName) || "";
    const type = (target && target.type) || "";
    const editable = target && target.isContentEditable;
    if (tag === "TEXTAREA" || tag === "SELECT" || editable) return;
    if (tag === "INPUT" && type !== "range" && type !== "checkbox" && type !== "button") return;
    const g = reg.groups[reg.active];
    if (!g) return;
    if (ev.key === " " || ev.key === "Spacebar") {
      if (tag === "BUTTON") return; // a focused button clicks itself
      g.setPlaying(!g.playing, "key");
    } else if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      if (type === "range") return; // the slider moves itself by one
      g.setPlaying(false, "key");
      g.step(ev.key === "ArrowRight" ? 1 : -1);
    } else if (ev.key === "Home" || ev.key === "End") {
      if (type === "range") return;
      g.setPlaying(false, "key");
      g.seek(ev.key === "Home" ? 0 : g.T - 1, "key");
    } else return;
    ev.preventDefault();
  });
}

// ---- small DOM helpers ---------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "style") el.style.cssText = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

// A stage: a static background canvas, a foreground canvas redrawn per frame, and a tooltip.
class Stage {
  constructor(width, height, label, name) {
    this.w = Math.ceil(width);
    this.h = Math.ceil(height);
    this.el = h("div", {class: "ntmviz-stage", "data-stage": name, style: `width:${this.w}px;height:${this.h}px`});
    this.bg = this._canvas(label, "img");
    this.fg = this._canvas(null, null);
    this.bg.canvas.dataset.layer = "back";
    this.fg.canvas.dataset.layer = "front";
    this.tip = h("div", {class: "ntmviz-tip", role: "tooltip"});
    this.el.append(this.bg.canvas, this.fg.canvas, this.tip);
  }

  _canvas(label, role) {
    const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
    const canvas = h("canvas", {role, "aria-label": label});
    canvas.width = Math.round(this.w * dpr);
    canvas.height = Math.round(this.h * dpr);
    canvas.style.width = `${this.w}px`;
    canvas.style.height = `${this.h}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.imageSmoothingEnabled = false;
    return {canvas, ctx};
  }

  // hover(x, y) -> text or null; click(x, y) on pointer down and drag
  bind(hover, click) {
    const c = this.fg.canvas;
    const pos = (ev) => {
      const r = c.getBoundingClientRect();
      return [ev.clientX - r.left, ev.clientY - r.top];
    };
    c.addEventListener("pointermove", (ev) => {
      const [x, y] = pos(ev);
      if (click && ev.buttons & 1) click(x, y);
      const text = hover && hover(x, y);
      if (!text) {
        this.tip.style.display = "none";
        return;
      }
      this.tip.textContent = text;
      this.tip.style.display = "block";
      const left = Math.min(x + 12, this.w - this.tip.offsetWidth - 2);
      this.tip.style.left = `${Math.max(0, left)}px`;
      this.tip.style.top = `${y + 14 > this.h - 30 ? y - 34 : y + 14}px`;
    });
    c.addEventListener("pointerleave", () => (this.tip.style.display = "none"));
    if (click) {
      c.style.cursor = "pointer";
      c.addEventListener("pointerdown", (ev) => {
        const [x, y] = pos(ev);
        click(x, y);
      });
    }
  }
}

// A scratch canvas for one heatmap at data resolution (or pooled down to pixels).
class Heat {
  constructor() {
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.image = null;
  }

  // Fill a rows x cols image with value(r, c) already pooled; lut and index map values to colours.
  // get(r0, r1, c0, c1) returns the value for a block of source cells.
  draw(rows, cols, outRows, outCols, get, colour) {
    outRows = Math.max(1, Math.min(rows, Math.round(outRows)));
    outCols = Math.max(1, Math.min(cols, Math.round(outCols)));
    if (!this.image || this.image.width !== outCols || this.image.height !== outRows) {
      this.canvas.width = outCols;
      this.canvas.height = outRows;
      this.image = this.ctx.createImageData(outCols, outRows);
      this.words = new Uint32Array(this.image.data.buffer);
    }
    const words = this.words;
    for (let r = 0; r < outRows; r++) {
      const r0 = Math.floor((r * rows) / outRows), r1 = Math.max(r0 + 1, Math.floor(((r + 1) * rows) / outRows));
      for (let c = 0; c < outCols; c++) {
        const c0 = Math.floor((c * cols) / outCols), c1 = Math.max(c0 + 1, Math.floor(((c + 1) * cols) / outCols));
        words[r * outCols + c] = colour(get(r0, r1, c0, c1));
      }
    }
    this.ctx.putImageData(this.image, 0, 0);
    return this.canvas;
  }
}

// Pooling: the largest weight (a sharp focus stays visible) or the value of largest magnitude.
function poolMax(data, stride, r0, r1, c0, c1) {
  let m = -Infinity;
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) {
    const v = data[r * stride + c];
    if (v > m) m = v;
  }
  return m;
}
function poolSigned(data, stride, r0, r1, c0, c1) {
  let m = 0;
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) {
    const v = data[r * stride + c];
    if (Math.abs(v) > Math.abs(m)) m = v;
  }
  return m;
}

function blit(ctx, img, x, y, w, h) {
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, x, y, w, h);
}

const FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
const INK = "#333";
const MUTED = "#777";

function niceTicks(n, px, minGap) {
  // indices 0..n-1 to label along px pixels, at least minGap pixels apart
  const maxLabels = Math.max(1, Math.floor(px / minGap));
  const raw = Math.max(1, (n - 1) / maxLabels);
  const steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000];
  const step = steps.find((s) => s >= raw) || Math.ceil(raw);
  const out = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

function axisLeft(ctx, x, y, h, n, label) {
  // slot axis: index 0 at the top
  ctx.save();
  ctx.font = FONT;
  ctx.fillStyle = MUTED;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const i of niceTicks(n, h, 18)) ctx.fillText(String(i), x - 3, y + ((i + 0.5) * h) / n);
  ctx.translate(x - 34, y + h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillStyle = INK;
  ctx.fillText(label, 0, 0);
  ctx.restore();
}

function axisBottom(ctx, x, y, w, n, label, withLabel = true) {
  ctx.save();
  ctx.font = FONT;
  ctx.fillStyle = MUTED;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const i of niceTicks(n, w, 30)) ctx.fillText(String(i), x + ((i + 0.5) * w) / n, y + 2);
  if (withLabel) {
    ctx.fillStyle = INK;
    ctx.fillText(label, x + w / 2, y + 15);
  }
  ctx.restore();
}

// Sizes shared by the views so slot axes and time axes line up across them.
function layout(ep) {
  const slotsPx = ep.slotsPx != null ? ep.slotsPx : ep.N ? Math.min(420, Math.max(200, ep.N * 4)) : 0;
  const timePx = Math.min(520, Math.max(220, ep.T * 6));
  return {slotsPx, timePx};
}

// ---- views ---------------------------------------------------------------------------------

class View {
  constructor(root, grp, options) {
    this.root = root;
    this.group = grp;
    this.options = options || {};
    this.dirty = true;
    this.paintedT = -1;
    this.frames = 0;
    this.ep = null;
  }

  setEpisode(ep) {
    this.ep = ep;
    this.root.replaceChildren();
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

  setOption() {}
  build() {}
  paint() {}
}

class MemoryView extends View {
  build(ep) {
    if (this.noMemory()) return;
    const {slotsPx} = layout(ep);
    this.cellW = Math.max(3, Math.min(24, Math.floor(260 / ep.M)));
    const marks = ep.heads.length * 7;
    this.x0 = 44 + marks;
    this.y0 = 6;
    this.mw = ep.M * this.cellW;
    this.mh = slotsPx;
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
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Memory "}), this.title,
      h("label", {class: "ntmviz-check"}, toggle, " show change")));
    this.stage = new Stage(this.x0 + this.mw + 56, this.y0 + this.mh + 34, "Memory matrix, slots by width", "memory");
    this.root.append(this.stage.el, this.legend(ep));
    this.heat = new Heat();
    const ctx = this.stage.bg.ctx;
    axisLeft(ctx, 44 - 2, this.y0, this.mh, ep.N, "slot");
    axisBottom(ctx, this.x0, this.y0 + this.mh, this.mw, ep.M, "width");
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

  paint(t) {
    const ep = this.ep;
    if (!ep || !ep.hasMemory) return;
    const {D, M} = ep, NM = D * M, mem = ep.a.memory.data, change = ep.a["memory.diff"];
    const diff = !!this.options.diff;
    const after = mem.subarray((t + 1) * NM, (t + 2) * NM);
    const before = mem.subarray(t * NM, (t + 1) * NM);
    const scale = diff ? ep.diffScale : ep.memScale;
    const get = diff && change
      ? (r0, r1, c0, c1) => poolSigned(change.data.subarray(t * NM, (t + 1) * NM), M, r0, r1, c0, c1)
      : diff
      ? (r0, r1, c0, c1) => {
          let m = 0;
          for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) {
            const v = after[r * M + c] - before[r * M + c];
            if (Math.abs(v) > Math.abs(m)) m = v;
          }
          return m;
        }
      : (r0, r1, c0, c1) => poolSigned(after, M, r0, r1, c0, c1);
    const img = this.heat.draw(D, M, this.mh, this.mw, get, (v) => DIVERGING[lutIndexSigned(v, scale)]);
    const ctx = this.stage.fg.ctx;
    ctx.clearRect(0, 0, this.stage.w, this.stage.h);
    blit(ctx, img, this.x0, this.y0, this.mw, this.mh);
    // one strip per head left of the matrix: its weighting at t, and a mark at its focus
    ep.heads.forEach((hd, i) => {
      const w = row3(headArray(ep, hd, "weights"), t, hd.h);
      const x = 44 + i * 7;
      const lut = headLUT(hd.kind, hd.h);
      const strip = this.heat.draw(D, 1, this.mh, 1, (r0, r1) => poolMax(w, 1, r0, r1, 0, 1), (v) => lut[lutIndexUnit(v, 1)]);
      blit(ctx, strip, x, this.y0, 5, this.mh);
      let best = 0;
      for (let n = 1; n < D; n++) if (w[n] > w[best]) best = n;
      const y = this.y0 + ((best + 0.5) * this.mh) / D;
      ctx.strokeStyle = hd.colour;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(this.x0 - 0.5, this.y0 + (best * this.mh) / D - 0.5, this.mw + 1, Math.max(1, this.mh / D) + 1);
      ctx.fillStyle = hd.colour;
      ctx.beginPath();
      const xr = this.x0 + this.mw + 3 + i * 7;
      ctx.moveTo(xr, y);
      ctx.lineTo(xr + 6, y - 4);
      ctx.lineTo(xr + 6, y + 4);
      ctx.fill();
    });
    // colour scale
    ctx.font = FONT;
    ctx.fillStyle = MUTED;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    const xs = this.x0 + this.mw + 8 + ep.heads.length * 7;
    ctx.fillText(`±${fmt(scale)}`, Math.min(xs, this.stage.w - 40), this.y0 + this.mh + 4);
    this.title.textContent = diff
      ? `change made by step ${t} (memory[t+1] − memory[t])`
      : `after step ${t}`;
  }

  hover(x, y) {
    const ep = this.ep, t = this.group.t;
    if (!ep || x < this.x0 || x >= this.x0 + this.mw || y < this.y0 || y >= this.y0 + this.mh) return null;
    const n = rowAt(ep, y - this.y0, this.mh);
    const m = Math.min(ep.M - 1, Math.floor(((x - this.x0) * ep.M) / this.mw));
    const NM = ep.D * ep.M, arr = ep.a.memory, mem = arr.data, change = ep.a["memory.diff"];
    const before = mem[t * NM + n * ep.M + m], after = mem[(t + 1) * NM + n * ep.M + m];
    const d = change ? change.data[t * NM + n * ep.M + m] : after - before;
    const ws = ep.heads.map((hd) => {
      const w = headArray(ep, hd, "weights");
      const v = approx(w, row3(w, t, hd.h)[n]);
      return `${hd.label} w${ep.D < ep.N ? " max" : ""}${v.startsWith("≈") ? " " : "="}${v}`;
    }).join(", ");
    const pooled = ep.D < ep.N ? " (largest magnitude over these slots)" : "";
    return `step ${t}, ${slotText(ep, n)}, width ${m}: ${approx(arr, after)} (before ${approx(arr, before)}, ` +
      `change ${approx(change || arr, d)})${pooled}; ${ws}`;
  }
}

class HeadLocationsView extends View {
  build(ep) {
    if (this.noMemory()) return;
    const {slotsPx, timePx} = layout(ep);
    this.pw = timePx;
    this.ph = slotsPx;
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Head locations over time"}),
      h("span", {class: "ntmviz-subtitle", text: " (click or drag to jump to a step)"})));
    const wrap = h("div", {class: "ntmviz-row"});
    this.root.append(wrap);
    this.panels = ep.heads.map((hd) => {
      const stage = new Stage(44 + this.pw + 8, 20 + this.ph + 34, `${hd.label} head weighting over time`, `heads-${hd.kind}-${hd.h + 1}`);
      const ctx = stage.bg.ctx;
      ctx.font = "bold " + FONT;
      ctx.fillStyle = hd.colour;
      ctx.textBaseline = "top";
      ctx.fillText(`${hd.label} head`, 44, 0);
      const w = headArray(ep, hd, "weights");
      const [T, H, N] = w.shape;
      const lut = headLUT(hd.kind, hd.h);
      // transpose on the fly: image rows are slots, columns steps
      const img = new Heat().draw(N, T, this.ph, this.pw, (r0, r1, c0, c1) => {
        let m = 0;
        for (let t = c0; t < c1; t++) for (let n = r0; n < r1; n++) {
          const v = w.data[(t * H + hd.h) * N + n];
          if (v > m) m = v;
        }
        return m;
      }, (v) => lut[lutIndexUnit(v, 1)]);
      blit(ctx, img, 44, 20, this.pw, this.ph);
      ctx.strokeStyle = "#ccc";
      ctx.strokeRect(44 - 0.5, 20 - 0.5, this.pw + 1, this.ph + 1);
      axisLeft(ctx, 42, 20, this.ph, ep.N, "slot");
      axisBottom(ctx, 44, 20 + this.ph, this.pw, T, "step");
      const toStep = (x) => Math.floor(((x - 44) * ep.T) / this.pw);
      stage.bind((x, y) => {
        if (x < 44 || x >= 44 + this.pw || y < 20 || y >= 20 + this.ph) return null;
        const t = Math.min(ep.T - 1, toStep(x));
        const n = rowAt(ep, y - 20, this.ph);
        return `${hd.label}: step ${t}, ${slotText(ep, n)}, weight ${ep.D < ep.N ? "max " : ""}${approx(w, w.data[(t * H + hd.h) * N + n])}`;
      }, (x, y) => {
        if (x < 44 || x >= 44 + this.pw) return;
        this.group.setPlaying(false, "click");
        this.group.seek(toStep(x), "click");
      });
      wrap.append(stage.el);
      return {hd, stage};
    });
  }

  paint(t) {
    if (!this.ep || !this.ep.hasMemory) return;
    const x = 44 + ((t + 0.5) * this.pw) / this.ep.T;
    const cw = Math.max(2, this.pw / this.ep.T);
    for (const {stage} of this.panels) {
      const ctx = stage.fg.ctx;
      ctx.clearRect(0, 0, stage.w, stage.h);
      ctx.strokeStyle = "rgba(0,0,0,0.75)";
      ctx.lineWidth = 1;
      ctx.strokeRect(x - cw / 2 - 0.5, 20 - 0.5, cw + 1, this.ph + 1);
      ctx.fillStyle = "#000";
      ctx.beginPath();
      ctx.moveTo(x, 19);
      ctx.lineTo(x - 4, 13);
      ctx.lineTo(x + 4, 13);
      ctx.fill();
    }
  }
}

const STAGES = [["content", "content"], ["gated", "gated"], ["shifted", "shifted"], ["weights", "weights"]];

class FocusView extends View {
  build(ep) {
    if (this.noMemory()) return;
    const {slotsPx} = layout(ep);
    this.ph = slotsPx;
    this.colW = 58;
    this.gap = 6;
    this.blockW = STAGES.length * (this.colW + this.gap) + 18;
    this.x0 = 44;
    this.y0 = 34;
    this.paramsH = 86;
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Focus at step "}),
      this.title = h("span", {class: "ntmviz-subtitle"}),
      h("span", {class: "ntmviz-subtitle", text: " — addressing: content → gated → shifted → sharpened weights"})));
    const W = this.x0 + ep.heads.length * this.blockW;
    this.stage = new Stage(W, this.y0 + this.ph + 20 + this.paramsH, "Each head's addressing stages at this step", "focus");
    this.root.append(this.stage.el);
    const ctx = this.stage.bg.ctx;
    axisLeft(ctx, this.x0 - 2, this.y0, this.ph, ep.N, "slot");
    ctx.font = FONT;
    ep.heads.forEach((hd, i) => {
      const bx = this.x0 + i * this.blockW;
      ctx.fillStyle = hd.colour;
      ctx.font = "bold " + FONT;
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      ctx.fillText(`${hd.label} head`, bx + 2, 2);
      ctx.font = FONT;
      ctx.fillStyle = MUTED;
      STAGES.forEach(([, label], j) => {
        const x = bx + j * (this.colW + this.gap);
        ctx.fillText(label, x + 2, 18);
        ctx.strokeStyle = "#ddd";
        ctx.strokeRect(x + 0.5, this.y0 - 0.5, this.colW, this.ph + 1);
        if (j < STAGES.length - 1) {
          ctx.fillStyle = "#aaa";
          ctx.fillText("›", x + this.colW + 1, this.y0 + this.ph / 2 - 6);
          ctx.fillStyle = MUTED;
        }
      });
    });
    this.stage.bind((x, y) => this.hover(x, y));
  }

  where(x, y) {
    const ep = this.ep;
    const i = Math.floor((x - this.x0) / this.blockW);
    if (!ep || i < 0 || i >= ep.heads.length) return null;
    const j = Math.floor((x - this.x0 - i * this.blockW) / (this.colW + this.gap));
    return {hd: ep.heads[i], i, j};
  }

  hover(x, y) {
    const ep = this.ep, t = this.group.t, w = this.where(x, y);
    if (!w) return null;
    const {hd} = w;
    if (y >= this.y0 && y < this.y0 + this.ph && w.j >= 0 && w.j < STAGES.length) {
      const n = rowAt(ep, y - this.y0, this.ph);
      const arr = headArray(ep, hd, STAGES[w.j][0]);
      return `${hd.label}, step ${t}, ${slotText(ep, n)}: ${STAGES[w.j][1]} weight ${ep.D < ep.N ? "max " : ""}${approx(arr, row3(arr, t, hd.h)[n])}`;
    }
    if (y > this.y0 + this.ph) {
      const s = row3(headArray(ep, hd, "shift"), t, hd.h);
      const k = (ep.S - 1) / 2;
      return `${hd.label}, step ${t}: key strength β=${fmt(at2(headArray(ep, hd, "beta"), t, hd.h))}, ` +
        `gate g=${fmt(at2(headArray(ep, hd, "gate"), t, hd.h))}, sharpening γ=${fmt(at2(headArray(ep, hd, "gamma"), t, hd.h))}, ` +
        `shift ${Array.from(s, (v, i) => `${i - k > 0 ? "+" : ""}${i - k}: ${fmt(v)}`).join(", ")}`;
    }
    return null;
  }

  paint(t) {
    const ep = this.ep;
    if (!ep || !ep.hasMemory) return;
    const ctx = this.stage.fg.ctx, N = ep.D; // rows of the (possibly pooled) weightings
    ctx.clearRect(0, 0, this.stage.w, this.stage.h);
    this.title.textContent = String(t);
    const rows = Math.min(N, Math.round(this.ph));
    const rowH = this.ph / rows;
    ep.heads.forEach((hd, i) => {
      const bx = this.x0 + i * this.blockW;
      ctx.fillStyle = hd.colour;
      STAGES.forEach(([name], j) => {
        const w = row3(headArray(ep, hd, name), t, hd.h);
        const x = bx + j * (this.colW + this.gap) + 1;
        ctx.beginPath();
        for (let r = 0; r < rows; r++) {
          const n0 = Math.floor((r * N) / rows), n1 = Math.max(n0 + 1, Math.floor(((r + 1) * N) / rows));
          let v = 0;
          for (let n = n0; n < n1; n++) if (w[n] > v) v = w[n];
          if (v > 0.002) ctx.rect(x, this.y0 + r * rowH + (rowH > 4 ? 1 : 0), Math.min(1, v) * (this.colW - 2),
            Math.max(1, rowH - (rowH > 4 ? 2 : 0)));
        }
        ctx.fill();
      });
      // parameters: beta, gate, gamma as numbers and bars; the shift distribution as bars
      const py = this.y0 + this.ph + 8;
      const beta = at2(headArray(ep, hd, "beta"), t, hd.h);
      const gate = at2(headArray(ep, hd, "gate"), t, hd.h);
      const gamma = at2(headArray(ep, hd, "gamma"), t, hd.h);
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
      // shift distribution
      const s = row3(headArray(ep, hd, "shift"), t, hd.h), S = ep.S, k = (S - 1) / 2;
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
    });
  }
}

class SequenceView extends View {
  build(ep) {
    const {timePx} = layout(ep);
    this.pw = timePx;
    this.cellH = Math.max(3, Math.min(10, Math.floor(80 / Math.max(ep.I, ep.O))));
    this.x0 = 64;
    const blocks = [["inputs", ep.a.inputs, ep.I], ["targets", ep.a.targets, ep.O], ["outputs", ep.a.outputs, ep.O]]
      .filter(([, a]) => a);
    let y = 4;
    this.blocks = blocks.map(([name, arr, rows]) => {
      const b = {name, arr, rows, y, hgt: rows * this.cellH};
      y += b.hgt + 8;
      return b;
    });
    this.errY = y;
    this.timelineH = y + 14 + 32;
    this.root.append(h("div", {class: "ntmviz-title"}, h("span", {text: "Sequence "}),
      this.title = h("span", {class: "ntmviz-subtitle"})));
    const wrap = h("div", {class: "ntmviz-row"});
    this.root.append(wrap);
    this.stage = new Stage(this.x0 + this.pw + 10, this.timelineH, "Inputs, targets and outputs over time", "sequence");
    wrap.append(this.stage.el);
    const ctx = this.stage.bg.ctx;
    // bit errors on scored steps: outputs thresholded at 0.5 against targets
    const {T, O} = ep;
    this.errors = new Float32Array(T);
    if (ep.a.targets) {
      const mask = ep.a.mask ? ep.a.mask.data : null;
      for (let t = 0; t < T; t++) {
        if (mask && !(mask[t] > 0)) continue;
        let e = 0;
        for (let o = 0; o < O; o++) if ((ep.a.outputs.data[t * O + o] > 0.5) !== (ep.a.targets.data[t * O + o] > 0.5)) e++;
        this.errors[t] = e;
      }
    }
    for (const b of this.blocks) {
      const img = new Heat().draw(b.rows, T, b.hgt, this.pw, (r0, r1, c0, c1) => {
        let m = 0;
        for (let t = c0; t < c1; t++) for (let r = r0; r < r1; r++) m = Math.max(m, Math.abs(b.arr.data[t * b.rows + r]));
        return m;
      }, (v) => GREYS[lutIndexUnit(v, 1)]);
      blit(ctx, img, this.x0, b.y, this.pw, b.hgt);
      ctx.strokeStyle = "#ccc";
      ctx.strokeRect(this.x0 - 0.5, b.y - 0.5, this.pw + 1, b.hgt + 1);
      ctx.font = FONT;
      ctx.fillStyle = INK;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(b.name, this.x0 - 6, b.y + b.hgt / 2);
      if (b.name === "outputs" && ep.a.targets) {
        ctx.strokeStyle = "#e00";
        ctx.lineWidth = 1.5;
        const cw = this.pw / T;
        for (let t = 0; t < T; t++) {
          if (!this.errors[t]) continue;
          for (let o = 0; o < O; o++) {
            if ((ep.a.outputs.data[t * O + o] > 0.5) !== (ep.a.targets.data[t * O + o] > 0.5)) {
              ctx.strokeRect(this.x0 + t * cw + 0.75, b.y + o * this.cellH + 0.75, Math.max(1, cw - 1.5), this.cellH - 1.5);
            }
          }
        }
        ctx.lineWidth = 1;
      }
    }
    // error strip
    ctx.fillStyle = INK;
    ctx.textAlign = "right";
    ctx.fillText("bit errors", this.x0 - 6, this.errY + 4);
    const total = this.errors.reduce((a, b) => a + b, 0);
    this.totalErrors = total;
    const cw = this.pw / T;
    for (let t = 0; t < T; t++) {
      if (!this.errors[t]) continue;
      ctx.fillStyle = "#e00";
      ctx.fillRect(this.x0 + t * cw, this.errY, Math.max(1, cw - 0.5), 8);
    }
    ctx.strokeStyle = "#ccc";
    ctx.strokeRect(this.x0 - 0.5, this.errY - 0.5, this.pw + 1, 9);
    axisBottom(ctx, this.x0, this.errY + 10, this.pw, T, "step");
    this.stage.bind((x, y) => this.hoverTime(x, y), (x, y) => {
      if (x < this.x0 || x >= this.x0 + this.pw) return;
      this.group.setPlaying(false, "click");
      this.group.seek(Math.floor(((x - this.x0) * ep.T) / this.pw), "click");
    });
    // the head vectors at t: key (every head), erase and add (write heads), read vector (read heads)
    this.vectors = [];
    if (ep.hasMemory) {
      for (const hd of ep.heads) {
        this.vectors.push({hd, name: "key", arr: headArray(ep, hd, "key"), signed: true});
        if (hd.kind === "write") {
          this.vectors.push({hd, name: "erase", arr: headArray(ep, hd, "erase"), signed: false});
          this.vectors.push({hd, name: "add", arr: headArray(ep, hd, "add"), signed: true});
        } else {
          this.vectors.push({hd, name: "read", arr: ep.a.reads, signed: true});
        }
      }
      this.vcell = Math.max(3, Math.min(14, Math.floor(220 / ep.M)));
      this.vx0 = 86;
      this.vstage = new Stage(this.vx0 + ep.M * this.vcell + 70, 24 + this.vectors.length * 18 + 30, "Head vectors at this step", "vectors");
      const vctx = this.vstage.bg.ctx;
      vctx.font = FONT;
      vctx.textBaseline = "top";
      vctx.fillStyle = INK;
      vctx.fillText("vectors at step t", 4, 4);
      this.vectors.forEach((v, i) => {
        const y = 24 + i * 18;
        vctx.fillStyle = v.hd.colour;
        vctx.textAlign = "right";
        vctx.textBaseline = "middle";
        vctx.fillText(`${v.hd.label} ${v.name}`, this.vx0 - 6, y + 7);
      });
      axisBottom(vctx, this.vx0, 24 + this.vectors.length * 18, ep.M * this.vcell, ep.M, "width");
      this.vstage.bind((x, y) => {
        const i = Math.floor((y - 24) / 18), m = Math.floor((x - this.vx0) / this.vcell);
        if (i < 0 || i >= this.vectors.length || m < 0 || m >= ep.M) return null;
        const v = this.vectors[i];
        return `${v.hd.label} ${v.name}, step ${this.group.t}, width ${m}: ${fmt(row3(v.arr, this.group.t, v.hd.h)[m])}`;
      });
      this.vheat = new Heat();
      wrap.append(this.vstage.el);
    }
  }

  hoverTime(x, y) {
    const ep = this.ep;
    if (x < this.x0 || x >= this.x0 + this.pw) return null;
    const t = Math.min(ep.T - 1, Math.floor(((x - this.x0) * ep.T) / this.pw));
    for (const b of this.blocks) {
      if (y >= b.y && y < b.y + b.hgt) {
        const r = Math.min(b.rows - 1, Math.floor((y - b.y) / this.cellH));
        const labels = b.name === "inputs" ? ep.inputLabels : ep.outputLabels;
        const label = labels && labels[r] ? labels[r] : `channel ${r}`;
        return `${b.name}, step ${t}, ${label}: ${fmt(b.arr.data[t * b.rows + r])}`;
      }
    }
    if (y >= this.errY - 2 && y < this.errY + 10) return `step ${t}: ${this.errors[t]} bit error(s)`;
    return `step ${t}`;
  }

  paint(t) {
    const ep = this.ep;
    if (!ep) return;
    const ctx = this.stage.fg.ctx;
    ctx.clearRect(0, 0, this.stage.w, this.stage.h);
    const cw = this.pw / ep.T;
    const x = this.x0 + t * cw;
    ctx.strokeStyle = "rgba(0,0,0,0.8)";
    ctx.lineWidth = 1;
    ctx.strokeRect(x - 0.5, 2.5, Math.max(2, cw) + 1, this.errY + 8);
    const scored = ep.a.mask ? ep.a.mask.data[t] > 0 : true;
    this.title.textContent = `step ${t}: ${scored && ep.a.targets ? `${this.errors[t]} bit error(s) at this step` : "not scored"}` +
      (ep.a.targets ? `, ${this.totalErrors} in the episode` : "");
    if (!this.vstage) return;
    const vctx = this.vstage.fg.ctx;
    vctx.clearRect(0, 0, this.vstage.w, this.vstage.h);
    this.vectors.forEach((v, i) => {
      const row = row3(v.arr, t, v.hd.h);
      const scale = v.signed ? Math.max(1, maxAbs(row)) : 1;
      const img = this.vheat.draw(1, ep.M, 1, ep.M, (r0, r1, c0) => row[c0],
        v.signed ? (val) => DIVERGING[lutIndexSigned(val, scale)] : (val) => GREYS[lutIndexUnit(val, 1)]);
      blit(vctx, img, this.vx0, 24 + i * 18, ep.M * this.vcell, 14);
    });
  }
}

// ---- the player ----------------------------------------------------------------------------

// Button icons as inline SVG (no icon font to load), each followed by visible text where useful.
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

class PlayerView extends View {
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

  paint(t) {
    if (!this.slider) return;
    if (Number(this.slider.value) !== t) this.slider.value = String(t);
    this.readout.textContent = `step ${t} / ${this.group.T - 1}`;
  }

  destroy() {
    this.unsub && this.unsub();
  }
}

const VIEWS = {player: PlayerView, memory: MemoryView, heads: HeadLocationsView, focus: FocusView, sequence: SequenceView};

// ---- mounting ------------------------------------------------------------------------------

// Mount one view into `el`. options: {view, group, data, t, diff, playing, loop, speed}.
// Returns a handle: setData(payload), seek(t), setOption(key, value), onReport(fn), destroy().
export function mount(el, options) {
  installKeys();
  const grp = group(options.group || "ntmviz");
  // A group this page has shown before holds the step the user is on (and goes on playing while
  // none of its views is shown, e.g. behind another tab). A view mounted into it again takes the
  // group's step and settings, not its model's, which may be older (Python records the steps the
  // browser reports without sending them back to every model), and then tells Python.
  const known = !!grp.mounted;
  grp.mounted = true;
  const root = h("div", {class: `ntmviz-view ntmviz-${options.view}`, "data-view": options.view, "data-step": "0",
    "data-frames": "0", "data-group": grp.id, tabindex: "-1"});
  el.append(root);
  const Cls = VIEWS[options.view];
  if (!Cls) throw new Error(`ntmviz: unknown view ${options.view}`);
  const view = new Cls(root, grp, {diff: !!options.diff});
  const activate = () => (registry().active = grp.id);
  root.addEventListener("pointerdown", activate);
  root.addEventListener("focusin", activate);
  let reporter = null;
  const handle = {
    view,
    group: grp,
    setData(payload) {
      const ep = episodeFrom(payload);
      if (ep) grp.setSteps(ep.T);
      view.setEpisode(ep);
      grp.invalidate();
    },
    seek(t) {
      grp.seek(t, "python");
    },
    setOption(key, value) {
      if (key === "playing") grp.setPlaying(value, "python");
      else if (key === "loop" || key === "speed") grp.setOption(key, value, "python");
      else view.setOption(key, value);
      grp.request();
    },
    onReport(fn) {
      reporter = fn;
      if (options.view === "player") grp.reporters.unshift(fn);
      else grp.reporters.push(fn);
      if (known) for (const key of ["t", "playing", "loop", "speed"]) fn(key, grp[key]);
    },
    destroy() {
      grp.views.delete(view);
      if (reporter) grp.reporters = grp.reporters.filter((r) => r !== reporter);
      view.destroy && view.destroy();
      root.remove();
    },
  };
  view.onOption = (key, value) => reporter && reporter(key, value);
  if (!known) {
    if (options.loop != null) grp.loop = !!options.loop;
    if (options.speed) grp.speed = Number(options.speed);
  }
  grp.views.add(view);
  handle.setData(options.data);
  if (!known) {
    if (options.t != null && grp.t !== options.t) grp.seek(options.t, "python");
    if (options.playing) grp.setPlaying(true, "python");
  }
  grp.request();
  return handle;
}

// The standalone page: a player and every view in one root (used by the HTML export).
export function mountPage(el, payload, title) {
  const id = `page-${Math.random().toString(36).slice(2)}`;
  const ep = episodeFrom(payload);
  const views = ep && ep.hasMemory ? ["player", "memory", "focus", "heads", "sequence"] : ["player", "sequence"];
  const cls = {player: "ntmviz-cell-wide", sequence: "ntmviz-cell-wide", heads: "ntmviz-cell-wide"};
  const grid = h("div", {class: "ntmviz-page"});
  if (title) grid.append(h("h1", {class: "ntmviz-h1", text: title}));
  if (ep && !ep.hasMemory) grid.append(h("div", {class: "ntmviz-note", role: "note", text: "This episode comes from a model with no memory (an LSTM baseline): only the sequence is shown."}));
  el.append(grid);
  const handles = {};
  const row = h("div", {class: "ntmviz-row"});
  for (const v of views) {
    const cell = h("div", {class: `ntmviz-cell ${cls[v] || ""}`});
    if (v === "memory" || v === "focus") row.append(cell);
    else grid.append(cell);
    if (v === "memory") grid.append(row);
    handles[v] = mount(cell, {view: v, group: id, data: payload, t: 0});
  }
  return handles;
}
