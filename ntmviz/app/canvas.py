"""EpisodeCanvas: the one Panel component that runs the browser renderer (static/*.js).

Each view (player, memory, heads, focus, sequence) is an EpisodeCanvas of another `kind`.
Canvases with the same `group` share the step t in the browser and animate together with no
server round trip; `payload` carries the episode's arrays once (see payload.py), and the
renderer asks for later chunks of per-step arrays with a message ({"chunk": c, "id": payload id})
that `chunks` answers.

The renderer is small ES modules (`MODULES`, dependencies first); `RENDERER_JS` joins them
into one module, dropping the imports between them, for the component and the HTML export.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from importlib.abc import Traversable
from typing import Any, Callable

import param
from panel.custom import JSComponent

STATIC = resources.files(__package__).joinpath("static")  # package data: found wherever ntmviz is installed
MODULES = ("palette.js", "data.js", "layout.js", "group.js", "draw.js", "views.js", "ntmviz.js")  # dependencies first

_LOCAL_IMPORT = re.compile(r'^import\s*\{[^}]*\}\s*from\s*"\./[\w-]+\.js";[ \t]*\n', re.M)

log = logging.getLogger(__name__)


def bundle(modules: tuple[str, ...] = MODULES, folder: Traversable = STATIC) -> str:
    """The renderer as one ES module: the modules in order, without their imports of each other.
    Every name is declared once across the modules, so joining them keeps each binding."""
    parts = []
    for name in modules:
        source = folder.joinpath(name).read_text(encoding="utf-8")
        joined = _LOCAL_IMPORT.sub("", source)
        if re.search(r"^\s*import\b", joined, re.M):
            raise RuntimeError(f"{name}: only imports of the other renderer modules can be joined")
        parts.append(f"// ---- {name} " + "-" * max(4, 90 - len(name)) + "\n" + joined)
    return "\n".join(parts)


RENDERER_JS = bundle()
RENDERER_CSS = STATIC.joinpath("ntmviz.css").read_text(encoding="utf-8")

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
  handle.onNeed((chunk, id) => model.send_msg({chunk, id}));
  model.on("msg:custom", (msg) => {
    if (msg && msg.chunk != null) handle.addChunk(msg.id, msg.chunk, msg.arrays);
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
        The episode as EpisodePayload.initial() makes it (sent once per episode).""")

    t = param.Integer(default=0, doc="""
        The current step (the browser reports it back, throttled).""")

    diff = param.Boolean(default=False, doc="""
        Memory view: show memory[t+1] - memory[t] instead of the memory.""")

    playing = param.Boolean(default=False, doc="Player: playing or paused.")

    loop = param.Boolean(default=False, doc="Player: loop at the end.")

    speed = param.Integer(default=10, doc="Player: steps per second.")

    _esm = RENDERER_JS + _ADAPTER

    _stylesheets = [RENDERER_CSS]

    def __init__(self, chunks: Callable[[str, int], dict[str, Any] | None] | None = None, **params):
        super().__init__(**params)
        self.chunks = chunks  # (payload id, chunk) -> arrays, or None for an episode no longer shown

    def _handle_msg(self, data: Any) -> None:
        if not (isinstance(data, dict) and "chunk" in data and self.chunks is not None):
            return
        try:
            c, pid = int(data["chunk"]), str(data.get("id"))
            arrays = self.chunks(pid, c)
        except (TypeError, ValueError, IndexError):
            log.exception("ntmviz: a bad chunk request from the browser: %r", data)
            return
        if arrays is not None:
            self._send_msg({"id": pid, "chunk": c, "arrays": arrays})
