"""Drive the renderer's ES modules directly in Chromium, with no Panel: serve ntmviz/app/static
on a loopback port, mount views on a payload, read back pixels and the texts drawn, and the
reference palettes the drawing tests compare pixels with.

    with static_site() as url:                      # http://127.0.0.1:<port>/ (a blank page)
        page.goto(url)
        r = Renderer(page).mount(payload, views=["memory", "focus"])  # waits until each painted
        r.seek(3); r.pixels("memory", "memory", [(x, y)])  # [(r, g, b)] shown at CSS px (x, y)
        r.front("focus", "focus-read-1", [(x, y)])  # [(r, g, b, a)] of the front layer alone
        r.panel("focus", "focus-read-1")            # a panel's own geometry (focus, slots)
        r.record_texts(); ...; r.texts("focus-read-1", "front")  # every fillText, where it went

The reference palettes below are written from the palette's definition (palette.py's and
static/palette.js's headers: the signed palette, the twelve head colours, the STATE ramp), not
imported from the renderer, so a wrong colour in the renderer fails the comparison instead of
being reproduced by it.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import math
import threading
from pathlib import Path
from typing import Any, Iterator

STATIC = Path(__file__).resolve().parent.parent.parent / "ntmviz" / "app" / "static"
PAGE = b"""<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/ntmviz.css">
<style>body { margin: 0; }</style></head><body><main id="root"></main></body></html>"""

# ---- reference palettes ------------------------------------------------------------------------
ZERO = 127
NEGATIVE, MIDDLE, POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)  # blue, white, red
WHITE = (255, 255, 255)
DEEP_PURPLE = (63, 0, 125)  # the STATE ramp's top: slot state and slot x slot matrices (white at 0)
# Twelve head colours told apart with the common colour-vision deficiencies: Paul Tol's "muted"
# set led by his vibrant blue and orange, a dark grey last. Head number i of an episode (every
# group's heads in order) has HEADS[i % 12].
HEADS = ["#0077bb", "#ee7733", "#117733", "#cc6677", "#332288", "#ddcc77", "#88ccee", "#882255",
         "#44aa99", "#999933", "#aa4499", "#555555"]


def js_round(x: float) -> int:
    return math.floor(x + 0.5)


def signed_index(v: float, scale: float) -> int:
    return min(2 * ZERO, max(0, js_round(ZERO + ZERO * v / scale)))


def signed_colour(v: float, scale: float) -> tuple[int, int, int]:
    """Memory cells: negative blue, zero near white, positive red, by |v| / scale."""
    f = (signed_index(v, scale) - ZERO) / ZERO
    end = NEGATIVE if f < 0 else POSITIVE
    return tuple(js_round(MIDDLE[k] + (end[k] - MIDDLE[k]) * abs(f)) for k in range(3))


def hex_rgb(colour: str) -> tuple[int, int, int]:
    v = int(colour[1:], 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def head_colour(index: int) -> tuple[int, int, int]:
    """The colour of an episode's head number `index` (its place in every group's heads in order)."""
    return hex_rgb(HEADS[index % len(HEADS)])


def unit_index(v: float, scale: float = 1.0) -> int:
    """Unit values: round(255 v / scale), clipped to 0 .. 255 (NaN as 0)."""
    if v != v:
        return 0
    return min(255, max(0, js_round(255 * v / scale)))


def unit_colour(v: float, end: tuple[int, int, int], scale: float = 1.0) -> tuple[int, int, int]:
    """Weightings: white at 0 to the head's colour at `scale` (1)."""
    f = unit_index(v, scale) / 255
    return tuple(js_round(255 + (end[k] - 255) * f) for k in range(3))


def state_colour(v: float, lo: float, hi: float) -> tuple[int, int, int]:
    """Slot state and slot x slot matrices: white at `lo` to deep purple at `hi`."""
    return unit_colour(v - lo, DEEP_PURPLE, hi - lo)


# ---- the site ------------------------------------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path in ("/", "/index.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, *args):  # quiet
        pass


@contextlib.contextmanager
def static_site() -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def block_offsite(context, origin: str, offsite: list[str]) -> None:
    """Abort every request that does not go to `origin` (or data:/blob:), recording it."""
    def route(r):
        url = r.request.url
        if url.startswith((origin, "data:", "blob:")):
            return r.continue_()
        offsite.append(url)
        return r.abort()
    context.route("**/*", route)


# ---- the page ------------------------------------------------------------------------------------
MOUNT_JS = """async ([payload, views, options]) => {
  const m = await import('/ntmviz.js');
  const root = document.getElementById('root');
  root.replaceChildren();
  const group = 'test-' + Math.random().toString(36).slice(2);
  window.__handles = {};
  window.__group = group;
  for (const v of views) {
    const cell = document.createElement('div');
    root.append(cell);
    window.__handles[v] = m.mount(cell, {view: v, group, data: payload, t: 0, ...(options[v] || {})});
  }
  return group;
}"""

PIXELS_JS = """([view, stage, points]) => {
  const root = window.__handles[view].view.root;
  const st = root.querySelector(`.ntmviz-stage[data-stage="${stage}"]`);
  const c = st.querySelector('canvas[data-layer="front"]');
  const back = st.querySelector('canvas[data-layer="back"]');
  const dpr = c.width / parseFloat(c.style.width);
  const fg = c.getContext('2d').getImageData(0, 0, c.width, c.height);
  const bg = back.getContext('2d').getImageData(0, 0, back.width, back.height);
  return points.map(([x, y]) => {
    const i = (Math.floor(y * dpr) * c.width + Math.floor(x * dpr)) * 4;
    // what shows: the front layer where it is opaque, else the back layer
    const src = fg.data[i + 3] ? fg.data : bg.data;
    return [src[i], src[i + 1], src[i + 2]];
  });
}"""


PANEL_JS = """([view, stage]) => {
  const v = window.__handles[view].view;
  const lists = [v.panels || [], v.states || [], v.matrices || [], v.plane ? [v.plane] : []];
  for (const list of lists) for (const p of list) {
    if (p.stage.el.dataset.stage !== stage) continue;
    const g = {...(p.geom || p.g)};
    if (p.lo !== undefined) Object.assign(g, {lo: p.lo, hi: p.hi});
    return g;
  }
  return null;
}"""

FRONT_JS = """([view, stage, points]) => {
  const root = window.__handles[view].view.root;
  const c = root.querySelector(`.ntmviz-stage[data-stage="${stage}"] canvas[data-layer="front"]`);
  const dpr = c.width / parseFloat(c.style.width);
  const fg = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return points.map(([x, y]) => {
    const i = (Math.floor(y * dpr) * c.width + Math.floor(x * dpr)) * 4;
    return [fg[i], fg[i + 1], fg[i + 2], fg[i + 3]];
  });
}"""

# Every canvas fillText from now on, with the stage and layer it went to and its fill colour.
RECORD_TEXT_JS = """() => {
  window.__texts = [];
  if (window.__textsHooked) return;
  window.__textsHooked = true;
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, x, y, ...rest) {
    const st = this.canvas.closest ? this.canvas.closest('.ntmviz-stage') : null;
    (window.__texts = window.__texts || []).push({text: String(text), x, y, stage: st ? st.dataset.stage : null,
      layer: this.canvas.dataset.layer || null, fill: String(this.fillStyle), align: this.textAlign,
      width: this.measureText(String(text)).width});
    return fill.call(this, text, x, y, ...rest);
  };
}"""


class Renderer:
    """The renderer's views mounted on a plain page (see the module docstring)."""

    def __init__(self, page):
        self.page = page

    def mount(self, payload: dict[str, Any], views=("player", "memory", "heads", "focus", "sequence"),
              options: dict[str, dict] | None = None) -> "Renderer":
        self.views = list(views)
        self.group = self.page.evaluate(MOUNT_JS, [payload, self.views, options or {}])
        self.wait(0)
        return self

    def state(self) -> dict[str, Any]:
        return self.page.evaluate("""() => {
          const out = {};
          for (const [k, h] of Object.entries(window.__handles)) out[k] = {...h.view.root.dataset};
          out.t = window.__ntmviz.groups[window.__group].t;
          return out; }""")

    def wait(self, step: int, timeout_ms: int = 30_000) -> None:
        """Until every mounted view has painted `step`."""
        self.page.wait_for_function("""([views, step]) => views.every((v) => {
            const d = window.__handles[v].view.root.dataset;
            return Number(d.frames) >= 1 && Number(d.step) === step; })""",
                                    arg=[self.views, step], timeout=timeout_ms, polling=20)

    def seek(self, t: int) -> None:
        self.page.evaluate("(t) => window.__ntmviz.groups[window.__group].seek(t, 'test')", t)
        self.wait(t)

    def geom(self, view: str) -> dict[str, Any]:
        return self.page.evaluate("(v) => window.__handles[v].view.geom", view)

    def panel(self, view: str, stage: str) -> dict[str, Any] | None:
        """The geometry of one of a view's panels (a focus panel, a slot state, a matrix, the
        plane: each has its own), with the plane's coordinate span (lo, hi)."""
        return self.page.evaluate(PANEL_JS, [view, stage])

    def front(self, view: str, stage: str, points: list[tuple[float, float]]) -> list[tuple[int, int, int, int]]:
        """[r, g, b, a] of the front canvas alone at CSS px (x, y): what a step drew."""
        return [tuple(p) for p in self.page.evaluate(FRONT_JS, [view, stage, [list(p) for p in points]])]

    def shown(self, view: str, stage: str) -> bool:
        """Whether a stage of a view is displayed (a hidden head's panels are not)."""
        return self.page.evaluate("""([view, stage]) => {
          const st = window.__handles[view].view.root.querySelector(`.ntmviz-stage[data-stage="${stage}"]`);
          return !!st && getComputedStyle(st).display !== 'none'; }""", [view, stage])

    def record_texts(self) -> None:
        """From now on, keep every canvas fillText: {text, x, y, stage, layer, fill, align, width}
        (texts()); x and y are the canvas's own coordinates (CSS px unless transformed)."""
        self.page.evaluate(RECORD_TEXT_JS)

    def texts(self, stage: str | None = None, layer: str | None = None, clear: bool = False) -> list[dict[str, Any]]:
        got = self.page.evaluate(
            "(clear) => { const t = window.__texts || []; if (clear) window.__texts = []; return t; }", clear)
        return [t for t in got if (stage is None or t["stage"] == stage) and (layer is None or t["layer"] == layer)]

    def group_eval(self, body: str, arg: Any = None) -> Any:
        """Evaluate `(g, arg) => body` on the mounted views' group."""
        return self.page.evaluate(f"(arg) => ((g, arg) => {body})(window.__ntmviz.groups[window.__group], arg)", arg)

    def pixels(self, view: str, stage: str, points: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
        return [tuple(p) for p in self.page.evaluate(PIXELS_JS, [view, stage, [list(p) for p in points]])]

    def stage_box(self, view: str, stage: str) -> dict[str, float]:
        return self.page.evaluate("""([view, stage]) => {
          const st = window.__handles[view].view.root.querySelector(`.ntmviz-stage[data-stage="${stage}"]`);
          const r = st.getBoundingClientRect(); return {x: r.left, y: r.top, width: r.width, height: r.height}; }""",
                                  [view, stage])

    def hover(self, view: str, stage: str, x: float, y: float) -> str:
        """Move the mouse to (x, y) of a stage; the tooltip's text."""
        box = self.stage_box(view, stage)
        self.page.mouse.move(box["x"] + x, box["y"] + y)
        return self.page.evaluate("""([view, stage]) => window.__handles[view].view.root
            .querySelector(`.ntmviz-stage[data-stage="${stage}"] .ntmviz-tip`).textContent""", [view, stage])

    def click(self, view: str, stage: str, x: float, y: float) -> None:
        box = self.stage_box(view, stage)
        self.page.mouse.click(box["x"] + x, box["y"] + y)


def as_json(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the browser receives it (plain JSON)."""
    return json.loads(json.dumps(payload))
