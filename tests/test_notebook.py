"""The example notebooks run headless, top to bottom: examples/explorer.ipynb's views produce
Panel output, and examples/training.ipynb trains in the background while the kernel runs cells.
Their outputs, put on a page as a notebook shows them, draw in Chromium with nothing fetched
from off the machine (scripts and stylesheets inline: ntmviz/app/local_resources.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "explorer.ipynb"
TRAINING = EXAMPLES / "training.ipynb"
PANEL_MIME = "application/vnd.holoviews_exec.v0+json"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel spec named for this interpreter, so the notebook runs in the test's environment."""
    from jupyter_client.kernelspec import KernelSpecManager

    folder = tmp_path_factory.mktemp("kernels") / "ntmviz-test"
    folder.mkdir()
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ntmviz test", "language": "python"}))
    manager = KernelSpecManager()
    manager.kernel_dirs = [str(folder.parent)] + manager.kernel_dirs
    return manager


@pytest.fixture(scope="module")
def executed(kernel):
    """Each notebook run once per module: {path: (cell source, output) pairs}."""
    cache: dict[Path, list[tuple[str, dict]]] = {}

    def get(path: Path) -> list[tuple[str, dict]]:
        if path not in cache:
            cache[path] = run_notebook(path, kernel)
        return cache[path]
    return get


def run_notebook(path: Path, kernel) -> list[tuple[str, dict]]:
    """Execute the notebook in a fresh kernel; (cell source, output) pairs, after no cell failed."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="ntmviz-test",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.km = client.create_kernel_manager()
    client.km.kernel_spec_manager = kernel
    client.execute()
    outputs = [(cell.source, out) for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for _, out in outputs if out.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    return outputs


def printed(outputs) -> str:
    return "".join(out.get("text", "") for _, out in outputs if out.output_type == "stream")


def test_explorer_notebook_runs(executed):
    outputs = executed(NOTEBOOK)
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    # the explorer, the lone memory view, the shared-state column, head locations, sequence
    assert len(panel_cells) >= 5, panel_cells
    assert any("Explorer.default" in src for src in panel_cells)
    text = printed(outputs)
    assert "write head's gate" in text and "episode.html" in text


def test_training_notebook_trains_in_the_background(executed):
    outputs = executed(TRAINING)
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    assert any("TrainingView" in src for src in panel_cells), panel_cells
    text = printed(outputs)
    # start() handed the kernel back at once, later cells ran while the thread trained
    started = re.search(r"start\(\) returned after [0-9.]+ s: run (\w+), at step (\d+)", text)
    assert started and started.group(1) in ("starting", "running"), text  # not finished: it runs on
    trained = re.search(r"trained to step (\d+) in the background; (\d+) snapshot", text)
    assert trained and int(trained.group(1)) > int(started.group(2)) and int(trained.group(2)) >= 1, text
    assert re.search(r"run (stopped|finished|done)", text), text


def output_page(outputs) -> str:
    """The outputs in order, as a classic notebook puts them in its page: HTML as HTML, and
    application/javascript run as a script."""
    def text(value) -> str:
        return "".join(value) if isinstance(value, list) else value

    parts = []
    for _, out in outputs:
        data = out.get("data", {})
        if "application/javascript" in data:
            parts.append("<script>" + text(data["application/javascript"]).replace("</script", "<\\/script")
                         + "</script>")
        elif "text/html" in data:
            parts.append(text(data["text/html"]))
    return "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + "\n".join(parts) + "</body></html>"


PAINTED_VIEWS_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view') && Number(el.dataset.frames) >= 1) out.push(el.dataset.view);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""


# Every <link rel=stylesheet> in the page and its shadow roots: [href, parsed?].
STYLESHEETS_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'LINK' && el.rel === 'stylesheet') out.push([el.href, el.sheet !== null]);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""


@pytest.mark.parametrize("notebook, views", [
    (NOTEBOOK, 5 + 1 + 3 + 1 + 1),  # the explorer's five, MemoryView, the shared-state column, heads, sequence
    (TRAINING, 3),                  # the training view's player, head locations and memory (or more)
])
def test_notebook_outputs_draw_with_nothing_from_off_the_machine(executed, tmp_path, notebook, views):
    sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
    from _serve import chromium

    page_file = tmp_path / "outputs.html"
    page_file.write_text(output_page(executed(notebook)), encoding="utf-8")
    errors = []
    with chromium() as browser:  # fails on leaving if anything asked for another machine
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_file.as_uri())
        page.wait_for_function(PAINTED_VIEWS_JS.replace("return out;", f"return out.length >= {views};"),
                               timeout=120_000)
        # Panel's stylesheets are there, inline, and the browser parsed them
        links = page.evaluate(STYLESHEETS_JS)
        assert len(links) >= 3 and all(href.startswith("data:text/css") and loaded for href, loaded in links), \
            [(href[:80], loaded) for href, loaded in links]
        assert not browser.off_machine, browser.off_machine
    assert not errors, errors
