"""EpisodeCanvas: the one Panel component that runs the browser renderer (static/ntmviz.js).

Each view (player, memory, heads, focus, sequence) is an EpisodeCanvas of another `kind`.
Canvases with the same `group` share the step t in the browser and animate together with no
server round trip; `payload` carries the episode's arrays once (see payload.py).
"""

from __future__ import annotations

from pathlib import Path

import param
from panel.custom import JSComponent

STATIC = Path(__file__).parent / "static"
RENDERER_JS = (STATIC / "ntmviz.js").read_text(encoding="utf-8")
RENDERER_CSS = (STATIC / "ntmviz.css").read_text(encoding="utf-8")

KINDS = ("player", "memory", "heads", "focus", "sequence")

_ADAPTER = """
// ---- Panel adapter: the component's parameters <-> one mounted view --------------------
export function render({ model, el }) {
  const handle = mount(el, {
    view: model.kind, group: model.group, data: model.payload, t: model.t, diff: model.diff,
    playing: model.playing, loop: model.loop, speed: model.speed,
  });
  handle.onReport((key, value) => {
    if (model[key] !== value) model[key] = value;
  });
  model.on("payload", () => handle.setData(model.payload));
  model.on("t", () => handle.seek(model.t));
  for (const key of ["diff", "playing", "loop", "speed"]) {
    model.on(key, () => handle.setOption(key, model[key]));
  }
  model.on("remove", () => handle.destroy());
}
"""


class EpisodeCanvas(JSComponent):
    """A browser-drawn view of an episode; see the module docstring."""

    kind = param.Selector(default="memory", objects=list(KINDS), doc="""
        Which view to draw: player, memory, heads, focus or sequence.""")

    group = param.String(default="ntmviz", doc="""
        Canvases with the same group share one step t in the browser.""")

    payload = param.Dict(default={}, doc="""
        The episode as episode_payload() makes it (sent once per episode).""")

    t = param.Integer(default=0, doc="""
        The current step (the browser reports it back, throttled).""")

    diff = param.Boolean(default=False, doc="""
        Memory view: show memory[t+1] - memory[t] instead of the memory.""")

    playing = param.Boolean(default=False, doc="Player: playing or paused.")

    loop = param.Boolean(default=False, doc="Player: loop at the end.")

    speed = param.Integer(default=10, doc="Player: steps per second.")

    _esm = RENDERER_JS + _ADAPTER

    _stylesheets = [RENDERER_CSS]
