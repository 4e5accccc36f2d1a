"""EpisodeCanvas: the one Panel component that runs the browser renderer (static/*.js).

Each view (player, memory, heads, focus, sequence) is an EpisodeCanvas of another `kind`.
Canvases with the same `group` share the step t in the browser and animate together with no
server round trip; `payload` carries the episode's arrays once (see payload.py), and the
renderer asks for later chunks of per-step arrays with a message ({"chunk": c, "id": payload id})
that `chunks` answers.

The renderer is small ES modules (`MODULES`, dependencies first); `RENDERER_JS` joins them
into one module, dropping the imports between them, for the component and the HTML export.

A served page loads the component's module once, by URL. Panel sends a JSComponent's `_esm`
text with every instance, and the browser runs sucrase over each copy before its module cache
is consulted: five views meant five 80 KB copies in each session's document. With `_bundle`
naming a file, Panel sends its address instead and the browser imports it once per page.
`serve_module()` (called by `ntmviz.app.extension()`, never at import) writes the module to the
user's cache folder ($XDG_CACHE_HOME/ntmviz, else ~/.cache/ntmviz; never the installed package)
as `renderer-<hash of its text>.js`, and registers that folder with Bokeh's server, which serves
it at /static/extensions/ntmviz/ (Panel gives the file that address because it lies in a
registered folder). A file per renderer version, about 110 KB, written once and checked by each
process that serves it: a server left idle for weeks keeps it (a temporary folder can be emptied
under it), and a killed one leaves nothing new behind. Without that call, or where the folder
cannot be written, the text is sent inline.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from functools import partial
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Callable

import panel as pn
import param
from panel.custom import JSComponent

from ..errors import NtmvizError
from ..files import atomic_write
from . import background

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

KINDS = ("player", "memory", "focus", "heads", "slots", "sequence")

_ADAPTER = """
// ---- Panel adapter: the component's parameters <-> one mounted view --------------------
export function render({ model, el }) {
  const handle = mount(el, {
    view: model.kind, group: model.group, data: model.payload, t: model.t, diff: model.diff,
    playing: model.playing, loop: model.loop, speed: model.speed, hidden: model.hidden, figures: true,
  });
  handle.onReport((key, value) => {
    if (model[key] !== value) model[key] = value;
  });
  handle.onNeed((chunk, id) => model.send_msg({chunk, id}));
  handle.onFigure((format, options) => model.send_msg({figure: format, ...options}));
  model.on("msg:custom", (msg) => {
    if (!msg) return;
    if (msg.chunk != null) handle.addChunk(msg.id, msg.chunk, msg.arrays);
    else if (msg.figure != null) handle.saveFigure(msg);
    else if (msg.alive) claimOutput(el);
  });
  model.send_msg({hello: 1}); // answered only by a live Python side (see notebook.py)
  // a new episode, then the step Python holds for it (its t may have arrived first, clamped to the old one)
  model.on("payload", () => { handle.setData(model.payload); handle.seek(model.t); });
  model.on("t", () => handle.seek(model.t));
  for (const key of ["diff", "playing", "loop", "speed", "hidden"]) {
    model.on(key, () => handle.setOption(key, model[key]));
  }
  model.on("remove", () => handle.destroy());
}
"""


EXTENSION = "ntmviz"  # the renderer's address: /static/extensions/ntmviz/renderer-<hash>.js

_served_lock = threading.Lock()


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/ntmviz (an absolute XDG_CACHE_HOME), else ~/.cache/ntmviz."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.abspath(base)) / "ntmviz"


def module_file(text: str, folder: Path) -> Path:
    """`folder`/renderer-<first 16 hex digits of the SHA-256 of `text`>.js, holding exactly
    `text` (written atomically when missing or different). A new text gets a new address, so a
    browser never runs a stale copy it cached."""
    path = folder / f"renderer-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}.js"
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    return atomic_write(path, text.encode("utf-8"))


def serve_module(component: type["EpisodeCanvas"] | None = None, folder: Path | None = None) -> Path | None:
    """Have `component` (EpisodeCanvas) load its module by URL in served pages: its text in
    `folder` (cache_folder()), that folder registered with Bokeh's server as the static extension
    "ntmviz", and `_bundle` pointed at the file. Called again (each session of `panel serve` runs
    the app's script), it only checks the file is still there. Returns the file, or None when it
    cannot be written (then the text goes inline)."""
    from bokeh.embed.bundle import extension_dirs

    component = component or EpisodeCanvas
    with _served_lock:
        bundle = component._bundle
        if isinstance(bundle, Path) and bundle.is_file() and extension_dirs.get(EXTENSION) == bundle.parent:
            return bundle
        try:
            path = module_file(component._esm, folder or cache_folder())
        except OSError as exc:
            log.info("ntmviz: sending the renderer inline (%s cannot be written: %s)", folder or cache_folder(), exc)
            component._bundle = None
            return None
        extension_dirs[EXTENSION] = path.parent
        component._bundle = path
        return path


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

    hidden = param.List(default=[], doc="The heads every view leaves out, by number.")

    _esm = RENDERER_JS + _ADAPTER

    _bundle = None  # the module's file, once serve_module() has written it

    _stylesheets = [RENDERER_CSS]

    def __init__(self, chunks: Callable[[str, int], dict[str, Any] | None] | None = None,
                 figures: Callable[..., tuple[str, str, bytes]] | None = None, **params):
        super().__init__(**params)
        self.chunks = chunks  # (payload id, chunk) -> arrays, or None for an episode no longer shown
        # (format, t, options {diff, zoom, window}) -> (file name, MIME type, bytes): the view's figure
        self.figures = figures
        self.view = None  # the EpisodeView this canvas draws (set by it; notebook.py reads it)

    def _handle_msg(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if "hello" in data:  # the browser checks a live Python side is there (notebook.py)
            self._send_msg({"alive": True})
        elif "figure" in data:
            self._figure_request(data)
        elif "chunk" in data and self.chunks is not None:
            try:
                c, pid = int(data["chunk"]), str(data.get("id"))
                arrays = self.chunks(pid, c)
            except (TypeError, ValueError, IndexError):
                log.exception("ntmviz: a bad chunk request from the browser: %r", data)
                return
            if arrays is not None:
                self._send_msg({"id": pid, "chunk": c, "arrays": arrays})

    def _figure_request(self, data: dict[str, Any]) -> None:
        """Draw the figure the browser asked for and send it back. In a served app the drawing
        runs off the event loop (a worker thread) and the answer comes back on the session's loop."""
        if self.figures is None:
            return
        fmt = str(data.get("figure"))

        def make() -> dict[str, Any]:
            try:
                t = int(data.get("t", 0))
                zoom, window = data.get("zoom"), data.get("window")
                options = {"diff": bool(data.get("diff")), "zoom": None if zoom is None else bool(zoom),
                           "window": None if window is None else (int(window[0]), int(window[1]))}
                name, mime, body = self.figures(fmt, t, options)
            except NtmvizError as exc:
                return {"figure": fmt, "error": str(exc)}
            except Exception as exc:  # the page keeps working whatever went wrong; the log has why
                log.exception("ntmviz: could not draw a figure for %r", data)
                return {"figure": fmt, "error": f"{type(exc).__name__}: {exc}"}
            return {"figure": fmt, "filename": name, "mime": mime, "b64": base64.b64encode(body).decode("ascii")}

        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:  # no server loop to keep free (Jupyter, tests)
            self._send_msg(make())
            return
        background.submit(lambda: doc.add_next_tick_callback(partial(self._send_msg, make())))
