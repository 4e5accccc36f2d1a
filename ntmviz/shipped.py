"""The trained checkpoints that ship with ntmviz, and the folders the app lists.

The shipped checkpoints (NAME.safetensors, each with its card NAME.md) live in the source tree's
top-level checkpoints/ folder; the build maps that folder into the package as ntmviz/checkpoints/
(setup.py), so wheels carry them as package data. `shipped_folder()` finds them in either
place, whatever the working directory: an installed wheel's package data, or a checkout's
top-level folder (an editable install, or ntmviz imported from the source tree).

    shipped_folder()                    # Path of checkpoints/ (checkout) or ntmviz/checkpoints/ (wheel)
    shipped_names()                     # ["associative_recall-lstm", ..., "copy-ntm", ...]
    checkpoint_path("copy-ntm")         # a shipped name, or any existing path, -> Path
    checkpoint_folders(["runs"])        # the user's folders, then $NTMVIZ_CHECKPOINTS, then shipped
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Iterable

ENV = "NTMVIZ_CHECKPOINTS"  # more checkpoint folders for the app, os.pathsep-separated (as PATH is)
SUFFIX = ".safetensors"


def shipped_folder() -> Path:
    """The folder of the shipped checkpoints, wherever ntmviz is imported from:

    - from a checkout (an editable install, or the source tree on sys.path): the checkout's
      top-level checkpoints/, beside the ntmviz/ package and pyproject.toml;
    - from an installed wheel (or an sdist installed with pip): the package data
      ntmviz/checkpoints/, which the build mapped from that top-level folder.

    If neither holds checkpoints (a broken install), the package's folder, which lists none."""
    package = resources.files("ntmviz")
    if not isinstance(package, Path):  # a zip import: the checkpoints need real files to memory-map
        raise RuntimeError("ntmviz is imported from a zip archive; install it as files (pip install ntmviz)")
    checkout = package.parent  # a checkout: ntmviz's own pyproject.toml and checkpoints/ beside the package
    project = checkout / "pyproject.toml"
    if (checkout / "checkpoints").is_dir() and project.is_file() and re.search(
            r'^name\s*=\s*"ntmviz"\s*$', project.read_text(encoding="utf-8", errors="replace"), re.MULTILINE):
        return checkout / "checkpoints"
    return package / "checkpoints"


def shipped_names() -> list[str]:
    """The names of the shipped checkpoints (file names without .safetensors), sorted."""
    folder = shipped_folder()
    return sorted(p.name[: -len(SUFFIX)] for p in folder.glob("*" + SUFFIX)) if folder.is_dir() else []


def checkpoint_path(name: str | os.PathLike) -> Path:
    """`name` as a checkpoint file: an existing path as it is, else a shipped checkpoint's name
    ("copy-ntm" or "copy-ntm.safetensors"), else the path unchanged (so loading it reports
    the file missing in the user's own words)."""
    path = Path(name)
    if path.exists() or len(path.parts) != 1:
        return path
    shipped = shipped_folder() / (path.name if path.name.endswith(SUFFIX) else path.name + SUFFIX)
    return shipped if shipped.is_file() else path


def split_folders(spec: str | os.PathLike | Iterable[str | os.PathLike] | None) -> list[Path]:
    """Folders from a list, or from one string of folders joined with os.pathsep ('' -> none)."""
    if spec is None:
        return []
    if isinstance(spec, (str, os.PathLike)):
        return [Path(p) for p in str(spec).split(os.pathsep) if p]
    out: list[Path] = []
    for item in spec:
        out += split_folders(item)
    return out


def checkpoint_folders(extra: Iterable[str | os.PathLike] = (), env: bool = True,
                       shipped: bool = True) -> list[Path]:
    """The folders the app lists checkpoints from, in order: `extra` (e.g. `--checkpoints DIR`),
    then $NTMVIZ_CHECKPOINTS, then the shipped folder; each once."""
    folders = split_folders(list(extra))
    if env:
        folders += split_folders(os.environ.get(ENV, ""))
    if shipped:
        folders.append(shipped_folder())
    out: list[Path] = []
    seen: set[Path] = set()
    for folder in folders:
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            out.append(folder)
    return out
