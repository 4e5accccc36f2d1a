"""Notebook outputs that still show, play and scrub without a kernel.

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

`install()` (called by `ntmviz.app.extension()` inside IPython, never at import) registers
`mimebundle` as the display formatter of Panel objects; it only changes outputs that hold ntmviz
views. Plain use:

    offline_html(obj)   # the hidden fallback for any Panel object or Viewer, or None
"""

from __future__ import annotations

import html
import json
import logging
import sys
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
        elif not (ep.family.slot_state or ep.family.slot_matrices or ep.family.slot_coords):
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


def mimebundle(obj, include=None, exclude=None):
    """Panel's notebook output for `obj`, with the fallback added to its HTML when it holds
    ntmviz views (see the module docstring)."""
    from panel.viewable import Viewer

    viewable = obj._create_view() if isinstance(obj, Viewer) else obj  # as Panel's Viewer renders itself
    bundle = viewable._repr_mimebundle_(include, exclude)
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
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
