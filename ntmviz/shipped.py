"""The trained checkpoints that ship inside the package, and the folders the app lists.

The checkpoints live in the package (ntmviz/checkpoints/NAME.safetensors, each with its card
NAME.md) and are found through importlib.resources, so they are there wherever ntmviz is
installed (a wheel, an sdist, an editable checkout), whatever the working directory:

    shipped_folder()                    # Path of ntmviz/checkpoints
    shipped_names()                     # ["associative_recall-lstm", ..., "copy-ntm", ...]
    checkpoint_path("copy-ntm")         # a shipped name, or any existing path, -> Path
    checkpoint_folders(["runs"])        # the user's folders, then $NTMVIZ_CHECKPOINTS, then shipped
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Iterable

ENV = "NTMVIZ_CHECKPOINTS"  # more checkpoint folders for the app, os.pathsep-separated (as PATH is)
SUFFIX = ".safetensors"


def shipped_folder() -> Path:
    """The folder of the shipped checkpoints (inside the installed package)."""
    folder = resources.files("ntmviz").joinpath("checkpoints")
    if not isinstance(folder, Path):  # a zip import: the checkpoints need real files to memory-map
        raise RuntimeError("ntmviz is imported from a zip archive; install it as files (pip install ntmviz)")
    return folder


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
