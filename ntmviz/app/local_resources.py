"""Every stylesheet and script the app uses comes from this machine; Panel's CDN is never asked.

Importing ntmviz.app calls `install()` once, so the rule holds in every way the app is run:
`panel serve apps/explorer.py`, `ntmviz serve`, and Jupyter.

Why this is needed. Panel 1.9 gives its components stylesheet addresses on its CDN
(https://cdn.holoviz.org/panel/<version>/dist/...) and rewrites them to the serving Bokeh server
only on some code paths (holoviz/panel#7073 and relatives): when a model is detached from its
document (the views of a hidden tab of dynamic Tabs) or the document has no `dist_url`, Panel's
`patch_stylesheet` falls back to the CDN. Stylesheet models are shared by every component of a
document, so one such call moves `loading.css` or `markdown.css` back to the CDN for the whole
page and the next call moves it back: measured here, 45 requests to the CDN in 20 s after Start
on the Train tab, and theme stylesheets when tabs are reopened. Offline each one is a console
error. PANEL_CDN_ROOT cannot fix it from here: Panel reads it once, at its own import, and
`panel serve` imports Panel before it runs apps/explorer.py.

What this does. One guard on Bokeh's ImportedStyleSheet (the model every Panel stylesheet
address travels in): whatever code sets a stylesheet's `url`, an address under Panel's CDN is
replaced, before any browser can see it, by
  - in a Bokeh server session: the same file under that server's own static route, the
    address Panel itself uses for the session (its `dist_url`);
  - elsewhere (Jupyter, a page saved to a file): the file's text as a `data:` URL, so there
    is nothing to fetch at all (its own relative `url(...)` references inlined too).
An address outside Panel's CDN, or a file Panel does not ship, is left alone (and the browser
tests fail on any request that leaves the machine). For Jupyter, `pn.config.inline` is also set,
so that `pn.extension()` inlines BokehJS and Panel's JavaScript instead of loading them from
their CDNs: in a notebook, import ntmviz.app before calling `pn.extension()`.
"""

from __future__ import annotations

import base64
import builtins
import functools
import mimetypes
import re
import warnings
from pathlib import Path

import panel as pn
from bokeh.models import ImportedStyleSheet
from panel.config import panel_extension
from panel.io.resources import CDN_DIST, DIST_DIR, JS_VERSION, LOCAL_DIST
from panel.io.state import state

_installed = False
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")


def install() -> None:
    """Put the guard on ImportedStyleSheet and inline Jupyter's scripts (once per process)."""
    global _installed
    if _installed:
        return
    original = ImportedStyleSheet.__setattr__

    def __setattr__(self, name, value):
        if name == "url" and isinstance(value, str):
            value = local_url(value)
        original(self, name, value)

    ImportedStyleSheet.__setattr__ = __setattr__  # HasProps.__init__ sets properties through it too
    if hasattr(builtins, "__IPYTHON__") and panel_extension._loaded and not pn.config.inline:
        warnings.warn("pn.extension() ran before ntmviz.app was imported, so this notebook took Panel's "
                      "scripts from its CDN; call pn.extension() again to load them from this machine",
                      stacklevel=3)
    pn.config.inline = True
    _installed = True


def local_url(url: str) -> str:
    """`url` if it does not point at Panel's CDN; else the same file from this machine."""
    if not url.startswith(CDN_DIST):
        return url
    rest = url[len(CDN_DIST):]
    doc = state.curdoc
    if doc is not None and doc.session_context is not None:
        dist = doc._template_variables.get("dist_url")
        if not dist or dist.startswith(("http:", "https:")):
            dist = f"{state.rel_path}/{LOCAL_DIST}" if state.rel_path else LOCAL_DIST
        return f"{dist}{rest}" if "?" in rest else f"{dist}{rest}?v={JS_VERSION}"
    inline = data_url(rest.split("?")[0])
    return inline if inline is not None else url


@functools.lru_cache(maxsize=None)
def data_url(relative: str) -> str | None:
    """The stylesheet at DIST_DIR/relative as a data: URL, its relative url(...) references
    (spinner images, imported stylesheets) inlined as data: URLs too; None if there is no such file."""
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
