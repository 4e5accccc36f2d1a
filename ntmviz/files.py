"""File helpers shared by episodes and checkpoints: atomic writes, checked safetensors reads.

safetensors files hold raw tensors and a JSON header: loading one cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load

from .errors import FileFormatError


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to path via a temp file in the same folder and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_safetensors(data: bytes, name: str, fmt: str, version: int) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Parse safetensors bytes and check the header names format `fmt` at `version`."""
    header = None
    try:
        header_len = int.from_bytes(data[:8], "little")
        if 8 < header_len + 8 <= len(data):
            parsed = json.loads(data[8: 8 + header_len])
            if isinstance(parsed, dict) and isinstance(parsed.get("__metadata__", {}), dict):
                header = parsed.get("__metadata__", {})
    except (ValueError, UnicodeDecodeError):
        pass
    if header is None:
        raise FileFormatError(f"{name}: not a {fmt} file (no readable header: truncated, corrupt or another format)")
    if header.get("format") != fmt:
        raise FileFormatError(f"{name}: not a {fmt} file (it says format {header.get('format')!r})")
    if header.get("version") != str(version):
        raise FileFormatError(f"{name}: {fmt} version {header.get('version')!r} is not supported (expected {version})")
    try:
        arrays = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise FileFormatError(f"{name}: corrupt or truncated {fmt} file ({exc})") from None
    return header, arrays
