"""Importing ntmviz.app changes nothing outside it; ntmviz.app.extension() is the one call that sets
up the offline rules (see ntmviz/app/local_resources.py). Each check runs in a fresh interpreter,
so what the test process imported or set up before cannot hide a change."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ntmviz"

# Before the import: an IPython shell (as in a notebook), Bokeh's and Panel's state as they are,
# and an audit hook that records every file opened for writing and every folder made.
BEFORE = """
import builtins, json, os, sys, tempfile, threading
tempfile.gettempdir()  # Python finds its temporary folder by writing a probe file: done before the hook
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
builtins.__IPYTHON__ = True  # what a kernel's shell sets: Panel and ntmviz take it as "in a notebook"
import panel as pn
from bokeh.embed.bundle import extension_dirs
from bokeh.models import ImportedStyleSheet
from panel.viewable import Viewable, Viewer

formatter = shell.display_formatter.mimebundle_formatter
written = []

def audit(event, args):
    if event == "open":
        path, mode, flags = args
        if isinstance(path, (str, bytes, os.PathLike)) and (
                (isinstance(mode, str) and any(c in mode for c in "wax+"))
                or (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))):
            written.append(os.fsdecode(path))
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "shutil.copyfile"):
        written.append(f"{event} {args[0]!r}")

def snapshot():
    return {"setattr": ImportedStyleSheet.__setattr__, "inline": pn.config.inline,
            "viewable": formatter.lookup_by_type(Viewable) if Viewable in formatter.type_printers else None,
            "viewer": formatter.type_printers.get(Viewer), "extension_dirs": dict(extension_dirs),
            "threads": threading.active_count()}

before = snapshot()
sys.addaudithook(audit)
"""

IMPORT = BEFORE + """
import ntmviz.app
import ntmviz.app.compare, ntmviz.app.sweep_view, ntmviz.app.training_view  # the lazily loaded tabs too
after = snapshot()
from ntmviz.app.canvas import EpisodeCanvas
print(json.dumps({
    "setattr": after["setattr"] is before["setattr"], "inline": [before["inline"], after["inline"]],
    "formatters": [after["viewable"] is before["viewable"], after["viewer"] is before["viewer"]],
    "extension_dirs": after["extension_dirs"] == before["extension_dirs"],
    "threads": [before["threads"], after["threads"]],
    "bundle": None if EpisodeCanvas._bundle is None else str(EpisodeCanvas._bundle), "written": written}))
"""

EXTENSION = BEFORE + """
import ntmviz.app
from ntmviz.app import notebook
from ntmviz.app.canvas import EXTENSION, EpisodeCanvas
ntmviz.app.extension()
guard = ImportedStyleSheet.__setattr__
ntmviz.app.extension()  # again (every session of `panel serve` runs the app's script): the same, once
bundle = EpisodeCanvas._bundle
sheet = ImportedStyleSheet(url="https://cdn.holoviz.org/panel/" + pn.__version__ + "/dist/css/markdown.css")
print(json.dumps({
    "setattr": guard is not before["setattr"] and ImportedStyleSheet.__setattr__ is guard,
    "inline": pn.config.inline,
    "formatters": [formatter.lookup_by_type(Viewable) is notebook.mimebundle,
                   formatter.lookup_by_type(Viewer) is notebook.mimebundle],
    "bundle": str(bundle), "served_from": str(extension_dirs.get(EXTENSION)),
    "same_text": bundle.read_text(encoding="utf-8") == EpisodeCanvas._esm,
    "stylesheet": sheet.url[:21], "written": written}))
"""


def run(program: str, **env: str) -> dict:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}  # bytecode caches are Python's writes, not ntmviz's
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(program)], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_app_changes_nothing_outside_it():
    seen = run(IMPORT)
    assert seen["setattr"], "importing ntmviz.app patched ImportedStyleSheet.__setattr__"
    assert seen["inline"][1] == seen["inline"][0], "importing ntmviz.app set pn.config.inline"
    assert seen["formatters"] == [True, True], "importing ntmviz.app registered display formatters"
    assert seen["extension_dirs"], "importing ntmviz.app registered a folder with Bokeh's server"
    assert seen["threads"][1] == seen["threads"][0], "importing ntmviz.app started a thread"
    assert seen["bundle"] is None  # the renderer goes inline until extension() serves it
    assert seen["written"] == [], f"importing ntmviz.app wrote: {seen['written']}"


def test_extension_sets_up_the_offline_rules_once_and_writes_only_the_renderer(tmp_path):
    cache = tmp_path / "cache"
    seen = run(EXTENSION, XDG_CACHE_HOME=str(cache))
    assert seen["setattr"] and seen["inline"] is True
    assert seen["formatters"] == [True, True]
    # a stylesheet address on Panel's CDN becomes the file itself, outside a server session
    assert seen["stylesheet"] == "data:text/css;base64,"
    # the renderer's module: in the user's cache folder (never the installed package), served from there
    bundle = Path(seen["bundle"])
    assert bundle.parent == cache / "ntmviz" and re.fullmatch(r"renderer-[0-9a-f]{16}\.js", bundle.name)
    assert seen["served_from"] == str(bundle.parent) and seen["same_text"]
    assert sorted(p.name for p in bundle.parent.iterdir()) == [bundle.name]  # no temporary left
    # what it wrote (once, although called twice): the folders, the file through a temporary, a rename
    assert seen["written"] and all(str(cache) in w for w in seen["written"]), seen["written"]
    assert sum(w.startswith("os.rename") for w in seen["written"]) == 1, seen["written"]
    # the next process finds it and writes nothing; a changed file is written again
    again = run(EXTENSION, XDG_CACHE_HOME=str(cache))
    assert again["bundle"] == str(bundle) and again["written"] == [] and again["same_text"]
    bundle.write_text("// not the renderer")
    again = run(EXTENSION, XDG_CACHE_HOME=str(cache))
    assert again["same_text"] and sum(w.startswith("os.rename") for w in again["written"]) == 1


def test_where_the_cache_folder_cannot_be_written_the_renderer_goes_inline(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    seen = run(EXTENSION.replace('"same_text": bundle.read_text(encoding="utf-8") == EpisodeCanvas._esm,', ""),
               XDG_CACHE_HOME=str(blocker / "cache"))
    assert seen["bundle"] == "None" and seen["served_from"] == "None" and seen["setattr"]


def test_the_app_and_the_cli_call_it():
    """apps/explorer.py and `ntmviz serve` set the rules up before anything is built."""
    app = (ROOT / "apps" / "explorer.py").read_text()
    code = "\n".join(line.split("#")[0] for line in app.splitlines())
    assert "ntmviz.app.extension()" in code and "pn.extension(" not in code
    assert app.index("ntmviz.app.extension()") < app.index("Explorer.default()")
    import inspect

    from ntmviz import cli

    serve = inspect.getsource(cli.cmd_serve)
    assert serve.index("extension()") < serve.index("page()")


@pytest.mark.parametrize("name", ["explorer", "own_model", "training", "dnc"])
def test_the_example_notebooks_call_it(name):
    cells = json.loads((ROOT / "examples" / f"{name}.ipynb").read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert "ntmviz.app.extension()" in code[0] and not any("pn.extension(" in c.split("#")[0] for c in code)


@pytest.mark.parametrize("name", ["panel", "bokeh", "holoviews", "param"])
def test_the_declared_range_is_the_tested_one(name):
    """pyproject.toml admits the minor version these tests run on, and no other."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from packaging.version import Version

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [spec] = [Requirement(d).specifier for d in deps if Requirement(d).name == name]
    installed = Version(version(name))
    major, minor = installed.release[:2]
    assert installed in spec, f"{name} {installed} is not in pyproject.toml's {spec}"
    assert f"{major}.{minor}.0" in spec and f"{major}.{minor + 1}.0" not in spec and f"{major}.{minor - 1}.99" not in spec
