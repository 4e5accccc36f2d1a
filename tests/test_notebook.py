"""The example notebooks run headless, top to bottom: examples/explorer.ipynb's views produce
Panel output, and examples/training.ipynb trains in the background while the kernel runs cells."""

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


def test_explorer_notebook_runs(kernel, tmp_path):
    outputs = run_notebook(NOTEBOOK, kernel)
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    # the explorer, the lone memory view, the shared-state column, head locations, sequence
    assert len(panel_cells) >= 5, panel_cells
    assert any("Explorer.default" in src for src in panel_cells)
    text = printed(outputs)
    assert "write head's gate" in text and "episode.html" in text


def test_training_notebook_trains_in_the_background(kernel):
    outputs = run_notebook(TRAINING, kernel)
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    assert any("TrainingView" in src for src in panel_cells), panel_cells
    text = printed(outputs)
    # start() handed the kernel back at once, later cells ran while the thread trained
    started = re.search(r"start\(\) returned after [0-9.]+ s: run (\w+), at step (\d+)", text)
    assert started and started.group(1) in ("starting", "running"), text  # not finished: it runs on
    trained = re.search(r"trained to step (\d+) in the background; (\d+) snapshot", text)
    assert trained and int(trained.group(1)) > int(started.group(2)) and int(trained.group(2)) >= 1, text
    assert re.search(r"run (stopped|finished|done)", text), text
