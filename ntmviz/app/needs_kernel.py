"""NeedsKernel: a notebook output that only works with its kernel says so when there is none.

    pn.Column(form, buttons, NeedsKernel(text="This live view needs its kernel: ..."))

A live Train tab saved in a notebook and opened without a kernel (nbconvert's HTML, a notebook
viewer) still renders from the document saved with it: a Start button, curves and a slider that
can do nothing. This invisible component checks, in the browser, that its Python side is there:
it sends a hello, as the episode views do (notebook.py), and asks Panel's comm manager for the
output's kernel. With neither an answer nor a kernel after `wait` ms, it hides the output it sits
in and puts `text` there instead; an answer that comes later (a kernel busy with other cells)
shows the output again. Nothing is drawn while the kernel answers. Only notebooks need it: a
served page always has its server (TrainingView leaves it out there).
"""

from __future__ import annotations

from typing import Any

import param
from panel.custom import JSComponent


class NeedsKernel(JSComponent):
    """Hides the notebook output it sits in, with a note, when no kernel answers (module docstring)."""

    text = param.String(default="This output needs its running kernel.", doc="""
        What the page says in place of the output when no kernel answers (shown as text).""")

    wait = param.Integer(default=2500, bounds=(0, None), doc="""
        Milliseconds to wait for an answer before hiding the output.""")

    _esm = """
function hasKernel(root) {
  const pyviz = window.PyViz;
  const id = root && root.dataset ? root.dataset.rootId : null;
  return Boolean(window.comm_manager
    || (window.Jupyter && window.Jupyter.notebook && window.Jupyter.notebook.kernel)
    || (pyviz && pyviz.kernels && id && pyviz.kernels[id])
    || (typeof google !== "undefined" && google.colab));
}

function outputRoot(el) {
  let node = el;
  while (node && node.getRootNode() !== document) node = node.getRootNode().host;
  return node ? (node.closest("[data-root-id]") || node) : null;
}

export function render({ model, el }) {
  let answered = false, note = null, display = "";
  const show = () => {
    const root = outputRoot(el);
    if (!root || !note) return;
    note.remove();
    note = null;
    root.style.display = display;
  };
  const hide = () => {
    const root = outputRoot(el);
    if (answered || !root || hasKernel(root)) return;
    note = document.createElement("p");
    note.className = "ntmviz-needs-kernel";
    note.setAttribute("role", "note");
    note.textContent = model.text;
    display = root.style.display;  // Panel's roots are "display: contents"
    root.style.display = "none";
    root.parentNode.insertBefore(note, root);
  };
  model.on("msg:custom", (msg) => {
    if (!msg || !msg.alive) return;
    answered = true;
    show();
  });
  model.send_msg({hello: 1});
  setTimeout(hide, model.wait);
}
"""

    def __init__(self, **params):
        params.setdefault("width", 0)
        params.setdefault("height", 0)
        params.setdefault("margin", 0)
        super().__init__(**params)

    def _handle_msg(self, data: Any) -> None:
        if isinstance(data, dict) and "hello" in data:  # a live Python side is here
            self._send_msg({"alive": True})
