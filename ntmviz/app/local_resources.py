"""Every stylesheet and script the app uses comes from this machine; Panel's CDN is never asked.

`ntmviz.app.extension()` is the one call that sets this up, in every way the app is run:
apps/explorer.py (`panel serve`), `ntmviz serve`, and Jupyter. Importing ntmviz.app changes
nothing: a program that only records episodes, exports HTML or draws figures, or that embeds
ntmviz views in a Panel app of its own with its own setup, keeps Bokeh and Panel as they were.

    import ntmviz.app
    ntmviz.app.extension()          # instead of pn.extension(); same arguments

What it does (once per process; later calls check the renderer's file and call pn.extension):

- Guards Bokeh's ImportedStyleSheet. Panel 1.9 gives its components stylesheet addresses on
  its CDN (https://cdn.holoviz.org/panel/<version>/dist/...) and rewrites them to the serving
  Bokeh server only on some code paths (holoviz/panel#7073 and relatives): when a model is
  detached from its document (the views of a hidden tab of dynamic Tabs) or the document has no
  `dist_url`, Panel's `patch_stylesheet` falls back to the CDN. Stylesheet models are shared by
  every component of a document, so one such call moves `loading.css` or `markdown.css` back to
  the CDN for the whole page: measured here, 45 requests to the CDN in 20 s after Start on the
  Train tab, and theme stylesheets when tabs are reopened. Offline each one is a console error.
  PANEL_CDN_ROOT cannot fix it from here: Panel reads it once, at its own import, and `panel
  serve` imports Panel before it runs apps/explorer.py. So whatever code sets a stylesheet's
  `url`, an address under Panel's CDN is replaced, before any browser can see it, by
    - in a Bokeh server session: the same file under that server's own static route (the
      address Panel itself gives a session's stylesheets, /static/extensions/panel/...);
    - elsewhere (Jupyter, a page saved to a file): the file's text as a `data:` URL, so there
      is nothing to fetch at all (its own relative `url(...)` references inlined too).
  An address outside Panel's CDN, or a file Panel does not ship, is left alone (and the browser
  tests fail on any request that leaves the machine).
- Serves the renderer's module by URL, once per page (canvas.serve_module: a file in the
  user's cache folder, ~/.cache/ntmviz, never in the installed package).
- Inside IPython, registers notebook.mimebundle for Panel objects, so a notebook output that
  holds ntmviz views also plays without a kernel (notebook.py).
- Calls `pn.extension(*args, inline=True, **kwargs)`: in a notebook, BokehJS and Panel's
  JavaScript go inline instead of coming from their CDNs (pass inline=False to choose the CDN).
  Called after a plain pn.extension() in the same notebook, it loads them again, inline.

The guard reads constants of panel.io.resources (CDN_DIST, DIST_DIR, LOCAL_DIST, JS_VERSION) and
`state.rel_path`: pyproject.toml pins Panel to the minor version the tests run, where they hold.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import threading
from pathlib import Path

import panel as pn
from bokeh.models import ImportedStyleSheet
from panel.io.resources import CDN_DIST, DIST_DIR, JS_VERSION, LOCAL_DIST
from panel.io.state import state

from .cache import LRU

_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")


def extension(*args, **kwargs):
    """`pn.extension(*args, **kwargs)` with everything the app loads coming from this machine.

    Why it exists: Panel left alone asks its CDN for stylesheets on some code paths, and a
    notebook loads Panel's scripts from CDNs; the app must work with no network and send nothing
    off the machine. Doing that at import would change Bokeh and Panel for every program that
    merely imports ntmviz.app, so it is this explicit call instead. See the module docstring
    for what it changes."""
    from .canvas import serve_module
    from .notebook import install

    guard_stylesheets()
    serve_module()
    install()  # inside IPython only; once per shell
    return pn.extension(*args, **{"inline": True, **kwargs})


_guard_lock = threading.Lock()
_guarded = False


def guard_stylesheets() -> None:
    """Put the guard on ImportedStyleSheet (once per process; see the module docstring)."""
    global _guarded
    with _guard_lock:
        if not _guarded:
            _guard()
            _guarded = True


def _guard() -> None:
    original = ImportedStyleSheet.__setattr__

    def __setattr__(self, name, value):
        if name == "url" and isinstance(value, str):
            value = local_url(value)
        original(self, name, value)

    ImportedStyleSheet.__setattr__ = __setattr__  # HasProps.__init__ sets properties through it too


def local_url(url: str) -> str:
    """`url` if it does not point at Panel's CDN; else the same file from this machine."""
    if not url.startswith(CDN_DIST):
        return url
    rest = url[len(CDN_DIST):]
    doc = state.curdoc
    if doc is not None and doc.session_context is not None:
        # as Panel's own server_html_page_for_session computes a session's dist_url
        dist = f"{state.rel_path}/{LOCAL_DIST}" if state.rel_path else LOCAL_DIST
        return f"{dist}{rest}" if "?" in rest else f"{dist}{rest}?v={JS_VERSION}"
    inline = data_url(rest.split("?")[0])
    return inline if inline is not None else url


# By stylesheet: Panel 1.9 ships 37 in dist/css (a page uses about a dozen), each under 20 KB as
# a data: URL; the keys come from Panel's own addresses, but the bound holds whatever asks.
_DATA_URLS: LRU[str, str | None] = LRU(64)


def data_url(relative: str) -> str | None:
    """The stylesheet at DIST_DIR/relative as a data: URL, its relative url(...) references
    (spinner images, imported stylesheets) inlined as data: URLs too; None if there is no such file."""
    return _DATA_URLS.get_or_make(relative, lambda: _data_url(relative))


def _data_url(relative: str) -> str | None:
    path = (DIST_DIR / relative).resolve()
    if not path.is_file() or DIST_DIR.resolve() not in path.parents:
        return None
    css = _CSS_URL.sub(lambda m: _inline_reference(m, path.parent), path.read_text(encoding="utf-8"))
    return "data:text/css;base64," + base64.b64encode(css.encode("utf-8")).decode("ascii")


def _inline_reference(match: re.Match, folder: Path) -> str:
    ref = match.group(2)
    if ref.startswith(("data:", "http:", "https:", "#", "/")):
        return match.group(0)
    target = (folder / ref.split("?")[0].split("#")[0]).resolve()
    if not target.is_file() or DIST_DIR.resolve() not in target.parents:
        return match.group(0)
    if target.suffix == ".css":
        inner = data_url(str(target.relative_to(DIST_DIR.resolve())))
        return f"url('{inner}')" if inner else match.group(0)
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return f"url('data:{kind};base64,{base64.b64encode(target.read_bytes()).decode('ascii')}')"
