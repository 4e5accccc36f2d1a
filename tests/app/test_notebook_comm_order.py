"""A live notebook output shows what Python holds, also after Run All (examples/training.ipynb in
JupyterLab: the Train widget stuck at "Running", Start disabled, while Python held "Stopped").

No browser and no kernel: a replay of what JupyterLab and the kernel do, message by message.

- The kernel's event loop is an asyncio loop on a virtual clock (`KernelLoop`). A cell is code
  run on that loop that blocks it (no timer fires meanwhile) and takes the virtual time given;
  between cells the loop runs (Panel's retries and the view's periodic pull fire then).
- The output is made as a notebook makes it after `ntmviz.app.extension()`: by
  ntmviz.app.notebook.mimebundle, with Panel's Jupyter comms (a server comm whose channel only
  the browser opens, `Wire` recording what goes over it once open).
- The browser opens that comm only after the last cell: the request to open it reaches the
  kernel when the output is drawn, and the kernel handles it after the execute requests Run All
  queued ahead of it (observed in JupyterLab 4.6, ipykernel 7: every message of the run went
  out only after the last cell).
- The "browser" is a Bokeh document built from the output's own JSON that applies each message
  in the order it arrives, and refuses a whole message that names a model it does not know, as
  BokehJS does ("reference <id> isn't known").

The run then must leave the browser's document equal to Python's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, Callable

import panel as pn
import pytest
from bokeh.core.serialization import Buffer, Deserializer, Serialized, Serializer, UnknownReferenceError
from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent
from panel.io.notebook import EXEC_MIME
from panel.io.state import state
from pyviz_comms import Comm, CommManager, JupyterComm

import ntmviz.app
from ntmviz.app.live import RunConfig
from ntmviz.app.notebook import mimebundle


class KernelLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock. While a cell runs the clock ticks a microsecond per
    reading, so what a cell schedules keeps the order it was made in, as on a real clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.busy = False

    def time(self) -> float:
        if self.busy:
            self.now += 1e-6
        return self.now

    def cell(self, code: Callable[[], Any], seconds: float) -> Any:
        """Run `code` as a cell: on the loop, blocking it, taking `seconds` of virtual time."""
        end = self.now + seconds

        async def body():
            self.busy = True
            try:
                return code()
            finally:
                self.busy = False
                self.now = max(self.now, end)
        return self.run_until_complete(body())

    def idle(self, seconds: float, tick: float = 0.005) -> None:
        """Let the loop run for `seconds` of virtual time (timers and tasks due meanwhile fire)."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = min(end, self.now + tick)
            for _ in range(4):
                self.call_soon(self.stop)
                self.run_forever()


class Wire:
    """The kernel's end of the comm once the browser has opened it: what goes over it, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, list]] = []

    def send(self, data=None, metadata=None, buffers=None) -> None:
        self.sent.append((data, list(buffers or [])))

    def on_msg(self, callback) -> None:
        pass

    def close(self) -> None:
        pass


class ServerComm(JupyterComm):
    """Panel's server comm in Jupyter: closed until the browser opens it (init)."""

    def init(self):
        self._comm = Wire()
        if self._on_open:
            self._on_open({})


class Manager(CommManager):
    server_comm = ServerComm
    client_comm = Comm  # its on_open is what the kernel calls when the browser opens it


def messages(wire: Wire) -> list[tuple[dict, dict, list[Buffer]]]:
    """The Bokeh messages on the wire: header, content and buffers (panel.io.notebook.send's framing)."""
    parts, out = list(wire.sent), []
    while parts:
        header = json.loads(parts.pop(0)[0])
        parts.pop(0)  # metadata
        content = json.loads(parts.pop(0)[0])
        buffers = []
        for _ in range(header.get("num_buffers", 0)):
            ref = json.loads(parts.pop(0)[0])
            payload = parts.pop(0)[1][0]
            buffers.append(Buffer(ref["id"], bytes(payload)))
        out.append((header, content, buffers))
    return out


class Browser:
    """The output's document as the browser holds it: built from the output's JSON, then patched
    message by message; a message naming a model it does not know is refused as a whole."""

    def __init__(self, html: str) -> None:
        found = re.search(r"var docs_json = (\{.*?\});\s*var render_items", html, re.S)
        assert found, "no document JSON in the output"
        [doc_json] = json.loads(found.group(1)).values()
        self.doc = Document.from_json(doc_json)
        self.refused: list[str] = []

    def receive(self, content: dict, buffers: list[Buffer]) -> None:
        deserializer = Deserializer(list(self.doc.models))
        try:
            patch = deserializer.deserialize(Serialized(content, buffers))
        except UnknownReferenceError as error:
            self.refused.append(f"reference {error.id} isn't known")
            return
        for event in patch["events"]:
            DocumentPatchedEvent.handle_event(self.doc, event, None)
        self.doc.models.flush_synced(lambda model: not deserializer.has_ref(model))


def contents(doc: Document) -> dict[str, tuple[str, Any]]:
    """Every model of `doc`: its type and the values of its synced properties (models as refs)."""
    refs = set(doc.models)
    out = {}
    for model in doc.models:
        values = model.query_properties_with_values(lambda prop: prop.serialized, include_defaults=True)
        serializer = Serializer(references=refs, deferred=False)
        out[model.id] = (type(model).__name__, {
            attr: unordered_sets(json.loads(json.dumps(serializer.encode(value), sort_keys=True, default=str)))
            for attr, value in values.items()})
    return out


def unordered_sets(value: Any) -> Any:
    """`value` with each encoded set's entries sorted: a set has no order, and Python's iteration
    order of strings changes with the hash seed, so two equal sets may arrive in different orders."""
    if isinstance(value, dict):
        value = {k: unordered_sets(v) for k, v in value.items()}
        if value.get("type") == "set" and isinstance(value.get("entries"), list):
            value["entries"] = sorted(value["entries"], key=lambda e: json.dumps(e, sort_keys=True))
        return value
    if isinstance(value, list):
        return [unordered_sets(v) for v in value]
    return value


def differences(python: Document, browser: Document, limit: int = 8) -> list[str]:
    """What differs, properties of models both hold first, then models the browser lacks."""
    ours, theirs = contents(python), contents(browser)
    changed = []
    for i in ours.keys() & theirs.keys():
        (name, a), (_, b) = ours[i], theirs[i]
        changed += [f"{name}.{attr}: Python {str(a[attr])[:70]!r}, browser {str(b.get(attr))[:70]!r}"
                    for attr in sorted(a) if a[attr] != b.get(attr)]
    missing = [f"{ours[i][0]} {i} is not in the browser" for i in ours.keys() - theirs.keys()]
    return (sorted(changed) + sorted(missing))[:limit]


@pytest.fixture
def kernel(monkeypatch):
    """A KernelLoop as the current loop, Panel's comms as in Jupyter; closed afterwards."""
    ntmviz.app.extension()
    monkeypatch.setattr(state, "_comm_manager", Manager)
    loop = KernelLoop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.idle(0.05)
        asyncio.set_event_loop(None)
        loop.close()


def test_run_all_of_the_training_notebook_leaves_the_browser_where_python_is(kernel):
    """examples/training.ipynb's cells, run as Run All runs them (see the module docstring)."""
    config = RunConfig(task="copy", task_options={"max_length": 3}, memory_slots=16, memory_width=8,
                       controller_size=32, lr=1e-3, optimizer="adam", batch_size=8, snapshot_every=5,
                       steps=5000)
    out: dict[str, Any] = {}

    def display():  # view = ntmviz.TrainingView(config); view
        out["view"] = view = ntmviz.app.TrainingView(config)
        out["data"], out["metadata"] = mimebundle(view)

    def wait_and_pull():  # the notebook's fourth cell: the kernel sleeps while the run trains
        run = out["view"].run
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (run.step < 10 or len(run.snapshots()[1]) < 2):
            time.sleep(0.05)
        out["view"].pull()

    kernel.cell(display, 0.3)
    kernel.idle(0.02)
    kernel.cell(lambda: out["view"].start(), 0.05)
    kernel.idle(0.45)  # the view's periodic pull fires meanwhile
    kernel.cell(wait_and_pull, 1.0)
    kernel.idle(0.03)
    kernel.cell(lambda: out["view"].stop(), 0.05)
    kernel.idle(0.03)

    view, ref = out["view"], out["metadata"][EXEC_MIME]["id"]
    assert view.run is not None and view.run.status == "stopped"
    root_view, _, doc, comm = state._views[ref]
    browser = Browser(out["data"]["text/html"])
    try:
        _, client = root_view._comms[ref]
        client._on_open({})  # the browser draws the output and opens its comm; the kernel is idle now
        kernel.idle(0.5)
        arrived = messages(comm._comm)
        for _, content, buffers in arrived:
            browser.receive(content, buffers)
        made = [header["msgid"] for header, _, _ in arrived]
        assert arrived, "nothing was sent once the comm opened"
        assert not browser.refused, (f"{len(browser.refused)} of {len(arrived)} messages refused, first: "
                                     f"{browser.refused[0]}")
        assert not differences(doc, browser.doc), (
            f"the browser's document is not Python's after {len(made)} messages:\n"
            + "\n".join(differences(doc, browser.doc)))
    finally:
        view.stop()
        root_view._cleanup(state._views[ref][1])
        state._views.pop(ref, None)


def test_what_is_sent_before_the_comm_opens_goes_out_first_and_in_order():
    """keep_in_order on its own: kept while shut, sent in order as it opens, then passed on; an
    open comm, or one of another kind, is left as it is; a failed open keeps what waited."""
    from ntmviz.app.notebook import keep_in_order

    comm = ServerComm()
    assert keep_in_order(comm) and not keep_in_order(comm)  # once
    comm.send("first")
    comm.send(buffers=[b"second"])
    comm.init()
    comm.send("third")
    assert comm._comm.sent == [("first", []), (None, [b"second"]), ("third", [])]

    opened = ServerComm()
    opened.init()
    assert not keep_in_order(opened) and isinstance(opened._comm, Wire)
    assert not keep_in_order(Comm())  # not a Jupyter comm: nothing to keep

    class Failing(ServerComm):
        fail = True

        def init(self):
            if self.fail:
                raise RuntimeError("no kernel")
            super().init()

    failing = Failing()
    keep_in_order(failing)
    failing.send("kept")
    with pytest.raises(RuntimeError):
        failing.init()
    failing.fail = False
    failing.init()
    assert failing._comm.sent == [("kept", [])]
