"""One standalone HTML file that plays and scrubs an episode with no server and no network.

The page inlines the same renderer the app runs (static/ntmviz.js), its stylesheet and the
episode's arrays (base64, as payload.py encodes them), so it opens from a file:// address, offline.
It opens at the episode's opening step, with every view its declaration has and "What the heads
did" beneath them.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from ..episode import Episode
from ..files import atomic_write
from .canvas import RENDERER_CSS, RENDERER_JS
from .mechanisms_view import MARKS, mechanism_rows
from .payload import describe, episode_payload

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ntmviz">
<title>{title}</title>
<style>
body {{ margin: 0; background: #fff; }}
{css}
</style>
</head>
<body>
<main id="ntmviz-root" aria-label="ntmviz episode explorer"></main>
<script type="application/json" id="ntmviz-data">{data}</script>
<script type="module">
{js}
// ---- standalone page bootstrap -----------------------------------------------------------
const payload = JSON.parse(document.getElementById("ntmviz-data").textContent);
mountPage(document.getElementById("ntmviz-root"), payload, {title_js});
</script>
</body>
</html>
"""


def _script_safe(json_text: str) -> str:
    """JSON that cannot end or confuse the <script> element it sits in: no '<' at all
    (JSON.parse reads the escape back as '<')."""
    return json_text.replace("<", "\\u003c")


def export_html_string(episode: Episode, title: str | None = None) -> str:
    """The standalone page for `episode`, as a string (see `export_html`)."""
    if not isinstance(episode, Episode):
        raise TypeError(f"export_html needs an ntmviz Episode, got {type(episode).__name__}")
    title = title or f"ntmviz: {describe(episode)}"
    payload = episode_payload(episode)
    rows, _ = mechanism_rows(episode)  # "What the heads did", as the app shows it beside the views
    payload["mechanisms"] = [{"title": r["title"], "verdict": MARKS[r["met"]][1], "says": r["note"]} for r in rows]
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    if "</script" in RENDERER_JS.lower():
        raise RuntimeError("renderer source must not contain a closing script tag")
    return _PAGE.format(title=html.escape(title), css=RENDERER_CSS, data=_script_safe(data),
                        js=RENDERER_JS, title_js=_script_safe(json.dumps(title)))


def export_html(episode: Episode, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write one standalone HTML file that plays and scrubs `episode` offline; returns its path.

    Everything is inline (renderer, styles, the episode's arrays as payload.py encodes them): the
    file needs no server and no network. The write is atomic (a temp file, then a rename).
    """
    page = export_html_string(episode, title)
    return atomic_write(path, page.encode("utf-8"))
