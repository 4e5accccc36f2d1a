// Playback groups: one step t shared by every view of an episode, animated in
// requestAnimationFrame, and the keyboard. A Group paints its views in one animation frame:
// moving t many times between two frames paints once, and a slow frame makes playback skip
// steps rather than queue them. Besides t, the views of a group share the heads they hide
// (`hidden`, reported to Python), the slot row under the pointer (`hoverRow`: every view marks
// it) and the window of time the timelines show (`window`: [t0, t1) or null for all).
//
// Hooks for tests and benchmarks (documented in ntmviz/app/__init__.py):
//   window.__ntmviz.frames   animation frames in which at least one view repainted
//   window.__ntmviz.paints   view repaints (a frame with 5 views adds 5)
//   window.__ntmviz.step     the step of the last painted frame
//   every view root: class "ntmviz-view", data-view, data-step, data-frames, data-steps

const NS = "__ntmviz";

export function registry() {
  const g = globalThis;
  if (!g[NS]) {
    g[NS] = {version: 2, groups: {}, frames: 0, paints: 0, step: 0, active: null, keys: false};
  }
  return g[NS];
}

export class Group {
  constructor(id) {
    this.id = id;
    this.t = 0;
    this.T = 1;
    this.playing = false;
    this.loop = false;
    this.speed = 10; // steps per second
    this.hidden = new Set(); // head numbers every view leaves out
    this.hoverRow = null; // the display row of the slot under the pointer, in any view
    this.window = null; // [t0, t1): the steps the timelines show (null: every step)
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
    this.window = null;
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

  // Hide or show heads (a list of head numbers) in every view.
  setHidden(heads, source) {
    const next = new Set(Array.from(heads || [], Number));
    if (next.size === this.hidden.size && [...next].every((h) => this.hidden.has(h))) return;
    this.hidden = next;
    this.emit("hidden", next, source);
    if (source !== "python") this.report("hidden", [...next].sort((a, b) => a - b));
    this.invalidate();
  }

  toggleHead(index) {
    const next = new Set(this.hidden);
    if (next.has(index)) next.delete(index);
    else next.add(index);
    this.setHidden(next, "button");
  }

  // The slot row under the pointer (null: none): every view marks it on its next frame.
  setHoverRow(row) {
    if (row === this.hoverRow) return;
    this.hoverRow = row;
    this.invalidate();
  }

  // The steps the timelines show: [t0, t1) within 0 .. T, at least 2 steps; null for all of them.
  setWindow(range) {
    let w = null;
    if (range) {
      let [t0, t1] = range.map((x) => Math.round(Number(x) || 0));
      t0 = Math.max(0, Math.min(this.T - 1, t0));
      t1 = Math.max(t0 + Math.min(2, this.T), Math.min(this.T, t1));
      if (t1 - t0 > 0 && (t0 > 0 || t1 < this.T)) w = [t0, t1];
    }
    const same = (a, b) => (a == null && b == null) || (a && b && a[0] === b[0] && a[1] === b[1]);
    if (same(w, this.window)) return;
    this.window = w;
    this.emit("window", w);
    this.invalidate();
  }

  // Zoom the timelines around step t: factor < 1 narrows the window, > 1 widens it.
  zoomTime(factor, around) {
    const [t0, t1] = this.window || [0, this.T];
    const centre = around == null ? this.t : around;
    const span = Math.max(2, Math.round((t1 - t0) * factor));
    if (span >= this.T) return this.setWindow(null);
    const start = Math.max(0, Math.min(this.T - span, Math.round(centre - span / 2)));
    this.setWindow([start, start + span]);
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(what, value, source) {
    for (const fn of this.listeners) fn(what, value, source);
  }

  // Tell Python, through one live component: t at most once a second while playing (a report
  // costs the server a few ms, and many pages may play at once), 80 ms after the last move
  // when scrubbing, and other settings (a pause too, with its t) at once.
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
    }, this.playing ? 1000 : 80);
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
        let drawn = true;
        try {
          drawn = v.paint(this.t) !== false; // false: step t's data has not arrived yet
        } catch (err) {
          console.error("ntmviz: a view failed to paint", err);
        }
        if (!drawn) continue; // painted again when its data arrives (the mount invalidates)
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
export function installKeys() {
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
