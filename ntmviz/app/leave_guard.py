"""LeaveGuard: the browser asks before a reload or close would lose something the page holds.

    guard = LeaveGuard()
    guard.active = True    # leaving now shows the browser's own "Leave site?" question

Browsers show their own wording (a page cannot set it any more) and only on a page the user
has interacted with. Nothing is drawn: the component is an invisible hook on `beforeunload`.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent


class LeaveGuard(JSComponent):
    """While `active`, leaving or reloading the page asks the user first."""

    active = param.Boolean(default=False, doc="""
        Whether leaving the page would lose something (e.g. a training run not saved).""")

    _esm = """
export function render({ model }) {
  const ask = (event) => {
    if (!model.active) return;
    event.preventDefault();
    event.returnValue = "";  // older browsers need a value set to ask
  };
  window.addEventListener("beforeunload", ask);
  model.on("remove", () => window.removeEventListener("beforeunload", ask));
}
"""

    def __init__(self, **params):
        params.setdefault("width", 0)
        params.setdefault("height", 0)
        params.setdefault("margin", 0)
        super().__init__(**params)
