// Drawing: small DOM helpers, the two-canvas Stage every view draws on, heatmap images and
// axes. Uses the DOM and canvas 2D; the colours come from palette.js, the places from layout.js.

import {niceTicks} from "./layout.js";
import {DIVERGING, lutIndexSigned, unpack} from "./palette.js";

// An element with attributes; "text" sets textContent (text from data never becomes markup).
export function h(tag, attrs, ...children) {
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
export class Stage {
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

  // hover(x, y) -> text or null; click(x, y) on pointer down and drag; leave() when the pointer goes
  bind(hover, click, leave) {
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
      this.tip.textContent = text; // text, never markup: labels come from files
      this.tip.style.display = "block";
      const left = Math.min(x + 12, this.w - this.tip.offsetWidth - 2);
      this.tip.style.left = `${Math.max(0, left)}px`;
      this.tip.style.top = `${y + 14 > this.h - 30 ? y - 34 : y + 14}px`;
    });
    c.addEventListener("pointerleave", () => {
      this.tip.style.display = "none";
      if (leave) leave();
    });
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
export class Heat {
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
export function poolMax(data, stride, r0, r1, c0, c1) {
  let m = -Infinity;
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) {
    const v = data[r * stride + c];
    if (v > m) m = v;
  }
  return m;
}
export function poolSigned(data, stride, r0, r1, c0, c1) {
  let m = 0;
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) {
    const v = data[r * stride + c];
    if (Math.abs(v) > Math.abs(m)) m = v;
  }
  return m;
}

// Hand `bytes` to the browser as a download named `filename` (a figure the Python side drew).
export function saveFile(filename, mime, bytes) {
  const url = URL.createObjectURL(new Blob([bytes], {type: mime}));
  const a = h("a", {href: url, download: filename, style: "display:none"});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export function blit(ctx, img, x, y, w, h) {
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, x, y, w, h);
}

export const FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
export const INK = "#333";
export const MUTED = "#777";

// A slot axis: index 0 at the top, n slots over h pixels.
export function axisLeft(ctx, x, y, h, n, label) {
  ctx.save();
  ctx.font = FONT;
  ctx.fillStyle = MUTED;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const i of niceTicks(n, h, 18)) ctx.fillText(String(i), x - 3, y + ((i + 0.5) * h) / n);
  axisTitle(ctx, x, y, h, label);
  ctx.restore();
}

// A slot axis of listed rows (a zoom on some slots): each row labelled with its own text.
export function axisRows(ctx, x, y, h, labels, label) {
  ctx.save();
  ctx.font = FONT;
  ctx.fillStyle = MUTED;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const n = labels.length, every = Math.max(1, Math.ceil((n * 14) / h));
  labels.forEach((text, i) => {
    if (i % every === 0) ctx.fillText(text, x - 3, y + ((i + 0.5) * h) / n);
  });
  axisTitle(ctx, x, y, h, label);
  ctx.restore();
}

function axisTitle(ctx, x, y, h, label) {
  ctx.translate(x - 34, y + h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillStyle = INK;
  ctx.fillText(label, 0, 0);
}

// An axis of n items along w pixels, labelled offset .. offset + n - 1 (a window of steps).
export function axisBottom(ctx, x, y, w, n, label, withLabel = true, offset = 0) {
  ctx.save();
  ctx.font = FONT;
  ctx.fillStyle = MUTED;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const i of niceTicks(n, w, 30)) ctx.fillText(String(i + offset), x + ((i + 0.5) * w) / n, y + 2);
  if (withLabel) {
    ctx.fillStyle = INK;
    ctx.fillText(label, x + w / 2, y + 15);
  }
  ctx.restore();
}

// A vertical colour bar of h pixel rows, row r painted colourAt(f) with f running from 1 at the
// top to 0 at the bottom, outlined, with labels [[text, f], ...] beside it.
function bar(ctx, x, y, w, h, colourAt, labels) {
  const rows = Math.max(1, Math.round(h));
  for (let r = 0; r < rows; r++) {
    const [R, G, B] = unpack(colourAt(1 - (r + 0.5) / rows));
    ctx.fillStyle = `rgb(${R},${G},${B})`;
    ctx.fillRect(x, y + (r * h) / rows, w, h / rows + 0.5);
  }
  ctx.strokeStyle = "#bbb";
  ctx.lineWidth = 1;
  ctx.strokeRect(x - 0.5, y - 0.5, w + 1, h + 1);
  ctx.font = FONT;
  ctx.fillStyle = MUTED;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const [text, f] of labels) ctx.fillText(text, x + w + 3, Math.min(y + h - 5, Math.max(y + 5, y + (1 - f) * h)));
}

// A colour bar for a symmetric scale: +scale (red) at the top, 0 in the middle, -scale (blue) at
// the bottom, each pixel row the palette's colour of its value.
export function colourBar(ctx, x, y, w, h, scale, fmt) {
  bar(ctx, x, y, w, h, (f) => DIVERGING[lutIndexSigned(scale * (2 * f - 1), scale)],
    [[`+${fmt(scale)}`, 1], ["0", 0.5], [`−${fmt(scale)}`, 0]]);
}

// A colour bar for values lo .. hi through a 256-entry table (weights: white to the head's colour
// over 0 .. 1; slot state on its range): hi at the top.
export function rampBar(ctx, x, y, w, h, lut, lo, hi, fmt) {
  bar(ctx, x, y, w, h, (f) => lut[Math.max(0, Math.min(255, Math.round(255 * f)))], [[fmt(hi), 1], [fmt(lo), 0]]);
}

// The width the slot labels need in the axis font (the widest label), measured once per episode.
export function labelWidth(labels) {
  if (!labels || !labels.length || typeof document === "undefined") return 0;
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = FONT;
  let w = 0;
  for (const text of labels) w = Math.max(w, ctx.measureText(String(text)).width);
  return w;
}

// A band across a slot row (the one under the pointer in any view), drawn on a front layer.
export function markRow(ctx, x, y, w, rowH) {
  ctx.save();
  ctx.fillStyle = "rgba(255, 200, 0, 0.28)";
  ctx.fillRect(x, y, w, Math.max(2, rowH));
  ctx.strokeStyle = "rgba(160, 110, 0, 0.9)";
  ctx.lineWidth = 1;
  ctx.strokeRect(x + 0.5, y + 0.5, w - 1, Math.max(2, rowH) - 1);
  ctx.restore();
}
