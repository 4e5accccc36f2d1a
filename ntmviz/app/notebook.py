"""Notebook outputs that still show, play and scrub without a kernel, and whose updates arrive
in the order they were made.

A Panel object displayed in Jupyter renders through Bokeh and talks to the kernel; saved and
converted to HTML (nbconvert), or opened where no kernel runs, it is blank. So every notebook
output that holds ntmviz views also carries, hidden, the same episode as a self-contained
rendering, the one the HTML export uses: the renderer, its stylesheet and every step's arrays
inline, nothing from the network. In the browser (static/ntmviz.js, claimOutput and
offlineFallback):

- a live view whose Python side answers (a running kernel, or a served app) claims the output
  and the fallback is dropped;
- with no answer after a moment (or at once when the page loaded without Bokeh), the fallback
  shows in place of the live views, with a player of its own.

Updates in order. Panel sends a live output's updates over a Jupyter comm that only the browser
can open, once it has drawn the output, and the kernel handles that request only when it gets to
it, after the cells queued before it. So with Run All, what the next cells change (a training run
started, pulled, stopped) is made while the comm is still shut. Panel 1.9 (panel/io/notebook.py,
`push`) then makes each update's message at once and retries each one on a timer of its own
every 0.1 s until the comm is open, so when it opens they go out in the order of their timers,
not the order they were made: an older value lands last (the Train tab stuck at "Running" with
Start disabled while Python holds "Stopped"), and a message naming a model by reference can
arrive before the message that created it, which Bokeh refuses as a whole ("reference <id> isn't
known"). Python counts both as sent and never sends them again. So `mimebundle` gives each
output's comm an outbox while it is shut (`keep_in_order`): what Panel sends waits there, in
order, and goes out in that order the moment the browser opens the comm, before anything sent
after it. Run cell by cell, the comm is open before anything changes and nothing differs.

`install()` (called by `ntmviz.app.extension()` inside IPython, never at import) registers
`mimebundle` as the display formatter of Panel objects; the fallback goes only into outputs that
hold ntmviz views, the outbox onto every Panel output's comm. Plain use:

    offline_html(obj)   # the hidden fallback for any Panel object or Viewer, or None
    keep_in_order(comm) # a Panel server comm not open yet: what is sent waits, in order
"""

from __future__ import annotations

import html
import json
import logging
import sys
import threading
import uuid
from typing import Any

from ..episode import Episode
from .canvas import RENDERER_CSS, RENDERER_JS, EpisodeCanvas
from .export import _script_safe
from .payload import describe, episode_payload

log = logging.getLogger(__name__)

WAIT_MS = 2500  # how long a live view has to answer before the fallback shows
ORDER = ("player", "memory", "focus", "heads", "slots", "sequence")


def _canvases(viewable) -> list[EpisodeCanvas]:
    try:
        return list(viewable.select(EpisodeCanvas))
    except (AttributeError, TypeError):
        return []


def _parts(canvases: list[EpisodeCanvas]) -> list[dict[str, Any]]:
    """One part per playback group: its episode, the views shown (in page order), the memory's
    show-change setting and, for a whole explorer, a title."""
    groups: dict[str, dict[str, Any]] = {}
    for canvas in canvases:
        view = getattr(canvas, "view", None)
        episode = view.state.episode if view is not None else None
        if not isinstance(episode, Episode):
            continue
        part = groups.setdefault(canvas.group, {"episode": episode, "views": set(), "diff": False})
        part["views"].add(canvas.kind)
        if canvas.kind == "memory":
            part["diff"] = part["diff"] or bool(canvas.diff)
    out = []
    for part in groups.values():
        ep = part["episode"]
        views = [v for v in ORDER if v in part["views"] and v != "player"]
        if not ep.has_memory:
            views = [v for v in views if v == "sequence"] or ["sequence"]
        elif not ep.family.has_slots:
            views = [v for v in views if v != "slots"]  # as the explorer: slots only when declared
        title = describe(ep) if len(views) >= 3 else None
        payload = episode_payload(ep, tuple(views) + ("player",))
        out.append({"views": views, "diff": part["diff"], "title": title, "payload": payload})
    return out


def offline_html(viewable, token: str | None = None) -> str | None:
    """The hidden self-contained rendering of the ntmviz views in `viewable` (a Panel object or
    a Viewer), or None when it holds none. `token` names the output it belongs to."""
    import panel as pn
    from panel.viewable import Viewer

    parts = _parts(_canvases(viewable._create_view() if isinstance(viewable, Viewer) else pn.panel(viewable)))
    if not parts:
        return None
    token = token or uuid.uuid4().hex
    data = _script_safe(json.dumps(parts, separators=(",", ":"), allow_nan=False))
    boot = f"offlineFallback(document.querySelector('[data-ntmviz-output=\"{token}\"]'), {WAIT_MS});"
    return (f'<div class="ntmviz-offline" style="display:none" aria-label="ntmviz views (recorded)">'
            f"<style>{RENDERER_CSS}</style>"
            f'<script type="application/json" class="ntmviz-offline-data">{data}</script>'
            f'<script type="module">\n{RENDERER_JS}\n{boot}\n</script></div>')


def wrap(live_html: str, fallback: str, token: str) -> str:
    return (f'<div class="ntmviz-output" data-ntmviz-output="{html.escape(token, quote=True)}">'
            f'<div class="ntmviz-live">{live_html}</div>{fallback}</div>')


class _Outbox:
    """Stands in for the Jupyter comm of a Panel server comm the browser has not opened yet:
    keeps what is sent, in order. It is truthy, so Panel's `push` sends to it at once instead of
    retrying each message on a timer of its own. Once the comm is open it forwards (a sender that
    took it just before the swap still lands after what was kept)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[tuple[Any, Any, list]] = []
        self.forward = None  # the open Jupyter comm

    def send(self, data=None, metadata=None, buffers=None) -> None:
        with self.lock:
            if self.forward is None:
                self.pending.append((data, metadata, list(buffers or [])))
                return
        self.forward.send(data, metadata=metadata, buffers=buffers)

    def close(self, *args, **kwargs) -> None:  # the output was cleaned up before it was ever shown
        with self.lock:
            self.pending.clear()

    def on_msg(self, callback) -> None:  # a server comm receives nothing
        pass


def keep_in_order(comm) -> bool:
    """Until the browser opens `comm` (Panel's server comm of one output, a pyviz_comms
    JupyterComm), keep what is sent over it, in order, and send it all as the comm opens, before
    anything sent after (see the module docstring). False, and nothing changed, for a comm that
    is open already or of another kind.

    Panel stores a message as it is made (panel/io/model.py `diff` takes the document's held
    events and counts the models it carries as the browser's), so the order of sending is the
    only thing that must be kept; what is kept is what Panel would have sent, byte for byte."""
    from pyviz_comms import JupyterComm

    if not isinstance(comm, JupyterComm) or comm._comm is not None or "init" in vars(comm):
        return False
    outbox = _Outbox()
    comm._comm = outbox
    init = comm.init

    def opened(*args, **kwargs):
        """The browser opened the comm (its client comm's on_open calls comm.init(),
        panel/viewable.py): open the Jupyter comm, send what waited, then forward."""
        with outbox.lock:
            if outbox.forward is not None:  # opened again (the output drawn anew): as Panel does
                return init(*args, **kwargs)
            comm._comm = None
            try:
                result = init(*args, **kwargs)  # sets comm._comm to the Jupyter comm
            except BaseException:
                comm._comm = outbox
                raise
            for data, metadata, buffers in outbox.pending:
                comm._comm.send(data, metadata=metadata, buffers=buffers)
            outbox.pending.clear()
            outbox.forward = comm._comm
        return result

    comm.init = opened
    return True


def _comm_of(metadata) -> Any:
    """The server comm of the output whose mimebundle metadata is `metadata`, or None."""
    from panel.io.notebook import EXEC_MIME
    from panel.io.state import state

    ref = (metadata or {}).get(EXEC_MIME, {}).get("id") if isinstance(metadata, dict) else None
    view = state._views.get(ref) if ref else None
    return view[3] if view else None


def mimebundle(obj, include=None, exclude=None):
    """Panel's notebook output for `obj`, its updates kept in order until the browser opens its
    comm, with the fallback added to its HTML when it holds ntmviz views (see the module
    docstring)."""
    from panel.viewable import Viewer

    viewable = obj._create_view() if isinstance(obj, Viewer) else obj  # as Panel's Viewer renders itself
    bundle = viewable._repr_mimebundle_(include, exclude)
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    try:
        comm = _comm_of(metadata)
        if comm is not None:
            keep_in_order(comm)
    except Exception:  # the output must show whatever happens here; the log has why
        log.exception("ntmviz: this output's updates are sent as Panel sends them")
    if data is None:  # Panel shows nothing (e.g. pn.extension() not run): the views still can
        data, metadata = {"text/plain": repr(obj)}, metadata or {}
    if not isinstance(data, dict):
        return data, metadata
    try:
        token = uuid.uuid4().hex
        fallback = offline_html(viewable, token)
    except Exception:  # the live output must show whatever happens to its fallback; the log has why
        log.exception("ntmviz: no offline rendering for this output")
        return data, metadata
    if fallback is not None:
        data = {**data, "text/html": wrap(data.get("text/html", ""), fallback, token)}
    return data, metadata


def install(ipython=None) -> bool:
    """Register `mimebundle` for Panel objects in this IPython session (again: no change); False
    outside IPython."""
    if ipython is None:
        if "IPython" not in sys.modules:  # not inside IPython: nothing to register, nothing to import
            return False
        from IPython import get_ipython

        ipython = get_ipython()
    if ipython is None:
        return False
    from panel.viewable import Viewable, Viewer

    formatter = ipython.display_formatter.mimebundle_formatter
    for cls in (Viewable, Viewer):
        if formatter.type_printers.get(cls) is not mimebundle:
            formatter.for_type(cls, mimebundle)
    return True
