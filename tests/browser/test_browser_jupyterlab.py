"""The example notebooks in a real JupyterLab 4, driven headless: Run All of
examples/training.ipynb leaves the Train widget showing the state Python holds (it stuck at
"Running" with Start disabled while Python held "Stopped": ntmviz/app/notebook.py, "Updates in
order"), and nothing the page loads comes from off this machine.

Needs JupyterLab in the environment (`pip install "jupyterlab>=4,<5"`): missing, the tests fail,
as the other browser tests do without Chromium. The server runs on a free loopback port with a
token, every Jupyter folder (config, data, runtime, settings, workspaces) in a temporary folder,
no news or update checks, and a kernel spec for this interpreter, so the kernel imports the
ntmviz under test. Each run copies the notebook (JupyterLab saves what it opens) and runs it in
a fresh kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _serve import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
RUNS = 2  # the bug showed in every run; two catch a fix that only sometimes holds

# Every ntmviz TextLine and every Panel button of the output that holds `label`, shadow roots pierced.
OUTPUT_STATE_JS = """(label) => {
  const collect = (root, out) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-textline')) out.lines.push(el.textContent);
      if (el.tagName === 'BUTTON' && el.classList.contains('bk-btn')) {
        const text = (el.textContent || '').trim();
        if (text && !(text in out.buttons)) out.buttons[text] = el.disabled;
      }
      if (el.shadowRoot) collect(el.shadowRoot, out);
    }
    return out;
  };
  for (const area of document.querySelectorAll('.jp-OutputArea-output')) {
    const out = collect(area, {lines: [], buttons: {}});
    if (label in out.buttons) return out;
  }
  return null;
}"""

NOTEBOOK_JS = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
  if (!kernel) return null;
  const cells = nb.content.widgets.filter(c => c.model.type === 'code');
  return {kernel: kernel.status, counts: cells.map(c => c.model.executionCount),
          // a cell scrolled out of view may have no prompt drawn (JupyterLab renders on demand)
          running: cells.some(c => c.model.executionState === 'running'
                                   || (c.node.querySelector('.jp-InputPrompt')?.textContent || '').includes('*'))};
}"""

# Run code in the notebook's kernel; its printed text.
EXECUTE_JS = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, store_history: false});
  let text = '';
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') text += msg.content.text;
    if (msg.header.msg_type === 'error') text += `${msg.content.ename}: ${msg.content.evalue}`;
  };
  await future.done;
  return text;
}"""

# What Python holds for the same widgets: every TextLine's line (its **lead** as plain text) and
# every Panel Button's disabled state, of the view `name`.
PYTHON_STATE = """
import json as _json, panel as _pn
from ntmviz.app.textline import TextLine as _TextLine
_root = _pn.panel({name}.__panel__())
print(_json.dumps({{"lines": [t.object.replace("**", "") for t in _root.select(_TextLine)],
                   "buttons": {{b.label: b.disabled for b in _root.select(_pn.widgets.Button)}}}}))
"""


class Lab:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.notebooks = folder / "notebooks"
        self.notebooks.mkdir()
        self.token = os.urandom(16).hex()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "lab.log"
        kernels = folder / "data" / "kernels" / "python3"  # this interpreter, ahead of any other python3
        kernels.mkdir(parents=True)
        (kernels / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ntmviz test)", "language": "python"}))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(folder / "config"),
               "JUPYTER_DATA_DIR": str(folder / "data"), "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"), "IPYTHONDIR": str(folder / "ipython")}
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.notebooks}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--allow-root"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(cmd, cwd=self.notebooks, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.api("/api/status")
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab did not start:\n{self.log()}")
                time.sleep(0.5)

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_kernels(self) -> None:
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", "DELETE")

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    import importlib.util

    assert importlib.util.find_spec("jupyterlab"), 'these tests need JupyterLab: pip install "jupyterlab>=4,<5"'
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


def run_all(lab: Lab, browser, notebook: Path, name: str, timeout: float = 300.0):
    """Open a copy of `notebook` as `name` in JupyterLab, Run All, wait until every cell ran and
    the kernel is idle. The page and the console messages (type, text)."""
    shutil.copy(notebook, lab.notebooks / name)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console: list[tuple[str, str]] = []
    page.on("console", lambda m: console.append((m.type, m.text)))
    page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
    page.goto(f"{lab.base}/lab/tree/{name}?reset&token={lab.token}", timeout=120_000)
    page.wait_for_function("() => { const s = (" + NOTEBOOK_JS + ")(); return s && s.kernel === 'idle'; }",
                           timeout=120_000, polling=250)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate(NOTEBOOK_JS)
        if state and state["kernel"] == "idle" and not state["running"] and None not in state["counts"]:
            return page, console
        assert time.monotonic() < deadline, f"Run All did not finish in {timeout} s: {state}\n{lab.log()}"
        time.sleep(0.25)


def python_state(page, name: str, tries: int = 3) -> str:
    """PYTHON_STATE's JSON from the kernel. Asked through JupyterLab's kernel connection, whose
    reply on a loaded machine has come back without its stream output (seen once in about thirty
    runs): such an empty answer is asked again, up to `tries` times, never taken as a state."""
    for _ in range(tries):
        text = page.evaluate(EXECUTE_JS, PYTHON_STATE.format(name=name))
        if text.strip():
            return text
        page.wait_for_timeout(500)
    raise AssertionError(f"the kernel gave no answer to PYTHON_STATE in {tries} tries")


def test_run_all_of_the_training_notebook_leaves_the_train_widget_where_python_is(lab, browser, tmp_path):
    for i in range(RUNS):
        page, console = run_all(lab, browser, EXAMPLES / "training.ipynb", f"training-{i}.ipynb")
        try:
            python = json.loads(python_state(page, "view"))
            assert python["buttons"].get("Start") is False, f"the run did not end in Python: {python}"
            deadline = time.monotonic() + 15  # the updates cross the comm within a moment
            while True:
                shown = page.evaluate(OUTPUT_STATE_JS, "Start")
                if shown and shown["lines"] == python["lines"] and all(
                        shown["buttons"].get(label) == disabled for label, disabled in python["buttons"].items()):
                    break
                if time.monotonic() > deadline:
                    page.screenshot(path=str(tmp_path / f"training-{i}.png"))
                    raise AssertionError(f"run {i + 1} of {RUNS}: the Train widget shows\n{shown}\nwhile Python "
                                         f"holds\n{python}\n(screenshot {tmp_path / f'training-{i}.png'})")
                time.sleep(0.25)
            refused = [text for kind, text in console if "isn't known" in text]
            assert not refused, refused[:3]
        finally:
            page.context.close()
            lab.shut_kernels()
