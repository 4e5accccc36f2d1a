// ntmviz renderer: draws a recorded episode of any memory model on canvases and animates it in
// the browser, from the model's declaration (what its heads, stages and slots are).
//
// Small ES modules, each with one job:
//   palette.js  value -> colour (pure)          data.js    payload -> episode, chunks (pure)
//   layout.js   where things are drawn (pure)   group.js   the shared step t, animation, keys
//   draw.js     DOM, canvases, axes             views.js   player, memory, focus, heads, slots, sequence
//   ntmviz.js   this file: mount() and mountPage()
// Served as they are for the tests; canvas.py joins them into one module (imports dropped) for
// the Panel JSComponent and the standalone HTML export, which inline it.

import {addChunk, base64Bytes, episodeFrom} from "./data.js";
import {h, saveFile} from "./draw.js";
import {group, installKeys, registry} from "./group.js";
import {VIEWS} from "./views.js";

// Mount one view into `el`. options: {view, group, data, t, diff, zoom, playing, loop, speed,
// hidden (head numbers to leave out), figures (show the Save figure buttons: a Python side
// answers onFigure)}.
// Returns a handle: setData(payload), seek(t), setOption(key, value), onReport(fn),
// onNeed(fn) (fn(chunk, payloadId): fetch a chunk of per-step arrays), addChunk(id, c, arrays),
// onFigure(fn) (fn(format, {t, diff, zoom, window}): ask for a figure), saveFigure(msg), destroy().
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
  const view = new Cls(root, grp, {diff: !!options.diff, zoom: options.zoom, figures: !!options.figures});
  const activate = () => (registry().active = grp.id);
  root.addEventListener("pointerdown", activate);
  root.addEventListener("focusin", activate);
  let reporter = null, fetcher = null;
  const handle = {
    view,
    group: grp,
    setData(payload) {
      const ep = episodeFrom(payload);
      if (ep) grp.setSteps(ep.T);
      view.setEpisode(ep);
      view.onNeed = ep && fetcher ? (c) => fetcher(c, ep.id) : null;
      grp.invalidate();
    },
    seek(t) {
      grp.seek(t, "python");
    },
    setOption(key, value) {
      if (key === "playing") grp.setPlaying(value, "python");
      else if (key === "hidden") grp.setHidden(value, "python");
      else if (key === "loop" || key === "speed") grp.setOption(key, value, "python");
      else view.setOption(key, value);
      grp.request();
    },
    onReport(fn) {
      reporter = fn;
      if (options.view === "player") grp.reporters.unshift(fn);
      else grp.reporters.push(fn);
      if (known) {
        for (const key of ["t", "playing", "loop", "speed"]) fn(key, grp[key]);
        fn("hidden", [...grp.hidden].sort((a, b) => a - b));
      }
    },
    onNeed(fn) {
      fetcher = fn;
      if (view.ep) view.onNeed = (c) => fetcher(c, view.ep.id);
    },
    addChunk(id, c, arrays) {
      const ep = view.ep;
      if (!ep || ep.id !== id) return; // an answer about an episode no longer shown
      addChunk(ep, c, arrays);
      view.dirty = true;
      grp.request();
    },
    onFigure(fn) {
      view.onFigure = fn;
    },
    // A figure drawn by Python: {filename, mime, b64}, or {error} when it could not be drawn.
    saveFigure(msg) {
      if (msg.error) {
        console.warn(`ntmviz: no figure: ${msg.error}`);
        return;
      }
      saveFile(msg.filename, msg.mime, base64Bytes(msg.b64));
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
    if (options.hidden) grp.hidden = new Set(options.hidden.map(Number));
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

// The standalone page: a player and every view in one root (used by the HTML export), opening
// at the step worth seeing first, with "What the heads did" when the payload carries it. Every
// chunk of per-step arrays is in the payload: there is no server to ask.
export function mountPage(el, payload, title) {
  return mountViews(el, payload, {title, t: payload && payload.opening, mechanisms: payload && payload.mechanisms});
}

// The views an episode can show: its declaration says which (slots only when it declares state of
// its slots; the memory views only when it has a memory).
export function viewsFor(ep) {
  if (!ep || !ep.hasMemory) return ["player", "sequence"];
  return ["player", "memory", "focus", "heads", ...(ep.family.has_slots ? ["slots"] : []), "sequence"];
}

// Views of one episode on one new group, laid out as the page lays them out: a player (kept in
// reach: it sticks to the top), then memory and focus side by side, head locations, the slots,
// the sequence. options: {views (default: all the episode can show), diff (memory), title, t,
// mechanisms ([{title, verdict, says}]: "What the heads did")}. Returns {view name: handle}.
export function mountViews(el, payload, options = {}) {
  const id = `page-${Math.random().toString(36).slice(2)}`;
  const ep = episodeFrom(payload);
  const all = viewsFor(ep);
  const wanted = options.views ? new Set(["player", ...options.views]) : null;
  const views = wanted ? all.filter((v) => wanted.has(v)) : all;
  const grid = h("div", {class: "ntmviz-page"});
  if (options.title) grid.append(h("h1", {class: "ntmviz-h1", text: options.title}));
  if (ep && !ep.hasMemory) grid.append(h("div", {class: "ntmviz-note", role: "note", text: `This episode comes from a model with no memory (${ep.title || "no memory"}): only the sequence is shown.`}));
  el.append(grid);
  const handles = {};
  const row = h("div", {class: "ntmviz-row ntmviz-wrap"});
  let rowPlaced = false;
  for (const v of views) {
    const cell = h("div", {class: v === "player" ? "ntmviz-cell ntmviz-sticky" : "ntmviz-cell"});
    if (v === "memory" || v === "focus") {
      row.append(cell);
      if (!rowPlaced) grid.append(row), (rowPlaced = true);
    } else grid.append(cell);
    handles[v] = mount(cell, {view: v, group: id, data: payload, t: options.t || 0, diff: v === "memory" && !!options.diff});
  }
  if (options.mechanisms && options.mechanisms.length) {
    const list = h("ul", {class: "ntmviz-mechanisms"});
    for (const m of options.mechanisms) {
      list.append(h("li", {}, h("b", {text: `${m.verdict}: `}), h("span", {text: `${m.title}. ${m.says || ""}`})));
    }
    grid.append(h("section", {class: "ntmviz-cell", "aria-label": "What the heads did"},
      h("div", {class: "ntmviz-title", text: "What the heads did"}), list));
  }
  return handles;
}

// ---- notebook outputs (ntmviz/app/notebook.py) -------------------------------------------------
// An output holds the live views (Panel, talking to the kernel) and, hidden, the same episode as a
// self-contained rendering with every step inline. A live view whose Python side answers claims
// the output (claimOutput): the fallback goes. Without an answer (the notebook converted to HTML
// and opened without a kernel, offline or not) the fallback shows after `wait` ms, or as soon as
// the page has loaded without Bokeh (nothing live can appear then), and the live part hides.

export function claimOutput(el) {
  let n = el;
  while (n && !(n.dataset && n.dataset.ntmvizOutput)) n = n.parentNode || n.host;
  if (!n) return;
  n.dataset.live = "yes";
  const offline = n.querySelector(":scope > .ntmviz-offline");
  if (offline) offline.remove();
  const live = n.querySelector(":scope > .ntmviz-live");
  if (live) live.style.display = "";
}

export function offlineFallback(box, wait) {
  if (!box) return;
  const show = () => {
    if (!box.isConnected || box.dataset.live === "yes" || box.dataset.offline === "shown") return;
    const off = box.querySelector(":scope > .ntmviz-offline");
    if (!off) return;
    box.dataset.offline = "shown";
    const live = box.querySelector(":scope > .ntmviz-live");
    if (live) live.style.display = "none";
    off.style.display = "";
    const parts = JSON.parse(off.querySelector("script.ntmviz-offline-data").textContent);
    for (const part of parts) {
      const cell = h("div", {class: "ntmviz-offline-part"});
      off.append(cell);
      mountViews(cell, part.payload, {views: part.views, diff: part.diff, title: part.title, t: part.payload.opening});
    }
  };
  setTimeout(show, wait);
  const early = () => setTimeout(() => {
    const B = globalThis.Bokeh;
    if (!(B && B.Panel)) show();
  }, 400);
  if (document.readyState === "complete") early();
  else globalThis.addEventListener("load", early, {once: true});
}
