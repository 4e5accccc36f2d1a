"""A line of text that changes often (a run's status, the snapshot on show), drawn as text.

    line = TextLine(object="**Running** · step 1,200 of 5,000")   # a leading **word** is bold
    line.object = "**Paused** · step 1,300 of 5,000"

Why not a Markdown pane: a pane whose object changes re-sends every property of its model,
stylesheets included, and new stylesheet models are references, so Bokeh re-walks the session's
whole document at each change. The Train tab's status changes a few times a second; with 8 pages
open that walk took a quarter of the server's main thread (py-spy, benchmarks/load.py). Here a
change sends one string, and the browser sets it as text content: no markup, whatever it holds.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent


class TextLine(JSComponent):
    """One paragraph of plain text with an optional bold lead (see the module docstring)."""

    object = param.String(default="", doc="""
        The line. A leading **word(s)** is shown bold; everything is shown as text, never markup.""")

    _esm = """
export function render({ model, el }) {
  const p = document.createElement("p");
  p.className = "ntmviz-textline";
  const draw = () => {
    const line = model.object || "";
    const lead = /^\\*\\*(.+?)\\*\\*/.exec(line);
    const parts = [];
    if (lead) {
      const b = document.createElement("strong");
      b.textContent = lead[1];
      parts.push(b);
    }
    parts.push(document.createTextNode(lead ? line.slice(lead[0].length) : line));
    p.replaceChildren(...parts);
  };
  draw();
  model.on("object", draw);
  el.append(p);
}
"""

    _stylesheets = [".ntmviz-textline { margin: 0.4em 0; line-height: 1.4; }"]

    def __init__(self, object: str = "", **params):
        super().__init__(object=object, **params)
