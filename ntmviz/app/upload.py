"""EpisodeUpload: a file picker that checks the file's size in the browser and sends it in pieces.

Why not pn.widgets.FileInput: it sends the whole file, base64, as one websocket message. The
Bokeh server closes the connection on any message over its limit (20 MB unless the server was
started with another --websocket-max-message-size, which `panel serve apps/explorer.py` is not),
so an episode of about 15 MB and up silently killed the page. This component instead
  - reads the file's size in the browser first and, if it is 0 or over `limit`, sends only the
    name and size: Python says "empty file" or "too large (N MB, limit M MB)";
  - else sends the bytes in pieces of `chunk` bytes (base64, so ~5.6 MB per message for 4 MB),
    each well under the server's limit, whatever the file size;
  - clears the input after each pick, so choosing the same file again opens it again.

    upload = EpisodeUpload(on_file=lambda data, name: ..., on_problem=lambda name, text: ...)

`on_file(data: bytes, name: str)` runs on the session's event loop once the last piece is in;
`on_problem(name, text)` when the file was refused ("empty file", "too large (...)") or
arrived incomplete. Nothing is read in the browser beyond File.size before the check passes.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

import param
from panel.custom import JSComponent

from ..files import MAX_EPISODE_BYTES, size_problem

_ESM = """
function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

export function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "ntmviz-upload";
  const label = document.createElement("label");
  const caption = document.createElement("span");
  caption.className = "ntmviz-upload-label";
  caption.textContent = model.label;
  const input = document.createElement("input");
  input.type = "file";
  input.accept = model.accept;
  label.append(caption, input);
  const status = document.createElement("div");
  status.className = "ntmviz-upload-status";
  status.setAttribute("role", "status");
  box.append(label, status);
  el.append(box);

  const show = () => {
    input.disabled = model.busy;
    box.setAttribute("aria-busy", String(model.busy));
    status.textContent = model.status;
  };
  model.on("busy", show);
  model.on("status", show);
  show();

  let current = 0;
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    input.value = "";  // the same file picked again fires "change" again
    if (!file) return;
    const id = ++current;
    if (file.size === 0 || file.size > model.limit) {
      model.send_msg({kind: "refused", id, name: file.name, size: file.size});
      return;
    }
    const pieces = Math.ceil(file.size / model.chunk);
    model.send_msg({kind: "start", id, name: file.name, size: file.size, pieces});
    for (let index = 0; index < pieces; index++) {
      if (id !== current) return;  // another file was picked meanwhile
      const start = index * model.chunk;
      const buffer = await file.slice(start, Math.min(file.size, start + model.chunk)).arrayBuffer();
      model.send_msg({kind: "piece", id, index, data: toBase64(buffer)});
      status.textContent = `Sending ${file.name}: ${Math.round(100 * (index + 1) / pieces)}%`;
    }
    model.send_msg({kind: "end", id});
  });
}
"""

_CSS = """
.ntmviz-upload label { display: flex; flex-direction: column; gap: 4px; font-size: 14px; }
.ntmviz-upload-status { font-size: 12px; color: #555; min-height: 1em; }
"""


class EpisodeUpload(JSComponent):
    """A size-checked, chunked file picker for episode files (see the module docstring)."""

    label = param.String(default="Open episode", doc="The visible label, also the input's name.")

    accept = param.String(default=".safetensors", doc="The file types the picker offers.")

    limit = param.Integer(default=MAX_EPISODE_BYTES, bounds=(1, None), doc="""
        The largest file sent, in bytes; checked in the browser before the file is read.""")

    chunk = param.Integer(default=4 * 2**20, bounds=(1024, 8 * 2**20), doc="""
        Bytes per message. base64 makes a message a third larger: 8 MiB -> ~11 MB, under
        Bokeh's default 20 MB websocket limit.""")

    busy = param.Boolean(default=False, doc="While True the picker is disabled (a file is opening).")

    status = param.String(default="", doc="A short status line under the picker.")

    _esm = _ESM

    _stylesheets = [_CSS]

    def __init__(self, on_file: Callable[[bytes, str], Any] | None = None,
                 on_problem: Callable[[str, str], Any] | None = None, **params):
        super().__init__(**params)
        self._on_file = on_file
        self._on_problem = on_problem
        self._receiving: dict[str, Any] | None = None

    def _problem(self, name: str, text: str) -> None:
        self._receiving = None
        if self._on_problem is not None:
            self._on_problem(name, text)

    def _handle_msg(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        kind, name = msg.get("kind"), str(msg.get("name") or "file")
        if kind in ("refused", "start"):
            size = int(msg.get("size") or 0)
            problem = size_problem(size, self.limit)  # the browser checked it; a page can be edited
            if kind == "refused" or problem:
                self._problem(name, problem or "refused by the browser")
                return
            self._receiving = {"id": msg.get("id"), "name": name, "size": size, "pieces": [], "received": 0}
            return
        r = self._receiving
        if r is None or msg.get("id") != r["id"]:
            return  # a message of an upload that another pick replaced
        if kind == "piece" and msg.get("index") == len(r["pieces"]):
            piece = base64.b64decode(msg.get("data") or "")
            r["received"] += len(piece)
            r["pieces"].append(piece)
            if r["received"] > r["size"]:
                self._problem(r["name"], f"the upload sent more than the {r['size']} bytes it announced")
        elif kind == "end":
            self._receiving = None
            if r["received"] != r["size"]:
                self._problem(r["name"], f"the upload was incomplete ({r['received']} of {r['size']} bytes); "
                                         "try again")
            elif self._on_file is not None:
                self._on_file(b"".join(r["pieces"]), r["name"])
        else:
            self._problem(r["name"], "the upload arrived out of order; try again")
