"""examples/explorer.ipynb runs headless, top to bottom, and its views produce Panel output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "explorer.ipynb"
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


def test_explorer_notebook_runs(kernel, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="ntmviz-test",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.km = client.create_kernel_manager()
    client.km.kernel_spec_manager = kernel
    client.execute()
    outputs = [(cell.source, out) for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for _, out in outputs if out.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    # the explorer, the lone memory view, the shared-state column, head locations, sequence
    assert len(panel_cells) >= 5, panel_cells
    assert any("Explorer.default" in src for src in panel_cells)
    printed = "".join(out.get("text", "") for _, out in outputs if out.output_type == "stream")
    assert "write head's gate" in printed and "episode.html" in printed
