"""File helpers shared by episodes and checkpoints: atomic writes, size-checked reads, and
safetensors files that carry checksums of their own bytes.

safetensors files hold raw tensors and a JSON header: loading one cannot run code. The format
checks structure only, so a flipped bit in the tensor data loads silently. `seal` adds, in the
header's `__metadata__` (plain strings, so any safetensors reader still opens the file):

    modelspec.hash_sha256   "0x" + SHA-256 of the data section (every byte after the header),
                            the convention of Stability-AI's ModelSpec and kohya's sd-scripts
    ntmviz.checksum         JSON {"header_sha256": ..., "crc32": {tensor name: 8 hex digits}}:
                            the header's own digest (the rest of the metadata and the tensor
                            table) and a CRC32 per tensor, to name what is damaged

`read_safetensors` verifies both when they are there and raises FileFormatError naming the
damaged tensors; files written before checksums existed load with `checksum == ABSENT`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load

from .errors import FileFormatError

MB = 1_000_000
# The largest episode file the explorer opens (and the largest it records, so that whatever it
# records it can open again): 5000 steps of a 128 x 20 memory with two read and two write heads
# (the shipped priority-sort NTM) make about 97 MB.
MAX_EPISODE_BYTES = 128 * MB
# Checkpoints hold weights and optimiser state; this only keeps a stray huge file from being read.
MAX_CHECKPOINT_BYTES = 1024 * MB

VERIFIED = "verified"  # the file carries checksums and its bytes match them
ABSENT = "absent"      # the file predates checksums: nothing to verify
HASH_KEY = "modelspec.hash_sha256"
CHECKSUM_KEY = "ntmviz.checksum"


# ---- writing ---------------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to path via a temp file in the same folder and a rename: never half a file.

    A process killed at any point (even by SIGKILL) leaves either the old file or the new one
    at `path`, never a mix; at worst a hidden `.NAME.*.tmp` file stays behind. The file gets the
    permissions any new file of this process gets (0666 less the umask), and the umask itself is
    never touched (it belongs to the whole process: a served app writes from many threads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)


def _new_temp_file(path: Path) -> tuple[int, Path]:
    """(fd, name) of a new hidden file `.NAME.<random>.tmp` beside `path`, made by this call
    (O_EXCL: never an existing file or a planted symlink), mode 0666 for the umask to narrow as
    it does for every new file (tempfile.mkstemp would make it 0600)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def _fsync_folder(folder: Path) -> None:
    # The rename lives in the folder's entry list: sync it too, so that after a power cut the
    # name points at the new bytes (a crash of the process alone needs only the rename).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open folders; the rename itself is done
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the data file itself was synced
    finally:
        os.close(fd)


def _digest_header(metadata: dict[str, str], tensors: dict) -> str:
    canonical = json.dumps({"metadata": metadata, "tensors": tensors}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _split(data: bytes | memoryview) -> tuple[dict, memoryview]:
    """(parsed header, data section) of safetensors bytes that safetensors itself wrote."""
    view = memoryview(data)
    n = int.from_bytes(view[:8], "little")
    return json.loads(bytes(view[8:8 + n])), view[8 + n:]


def seal(data: bytes) -> bytes:
    """The same safetensors file with checksums of its data and header in `__metadata__`.

    The data section is kept byte for byte (tensor offsets are relative to it); only the
    header is rewritten, padded with spaces to keep the data 8-byte aligned as safetensors does."""
    header, body = _split(data)
    metadata = {k: v for k, v in header.pop("__metadata__", {}).items() if k not in (HASH_KEY, CHECKSUM_KEY)}
    crc = {name: f"{zlib.crc32(body[start:end]):08x}" for name, (start, end) in
           ((name, entry["data_offsets"]) for name, entry in header.items())}
    metadata[HASH_KEY] = "0x" + hashlib.sha256(body).hexdigest()
    # the header digest covers every metadata field but this one (which holds it) and the tensor table
    metadata[CHECKSUM_KEY] = json.dumps({"header_sha256": _digest_header(metadata, header), "crc32": crc},
                                        sort_keys=True)
    raw = json.dumps({"__metadata__": metadata, **header}, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    return b"".join((len(raw).to_bytes(8, "little"), raw, body))


# ---- reading ---------------------------------------------------------------------------------------
def size_problem(size: int, limit: int) -> str | None:
    """Why a file of `size` bytes cannot be opened ('empty file', 'too large (...)'), or None."""
    if size <= 0:
        return "empty file"
    if size > limit:
        return f"too large ({size / MB:.1f} MB, limit {limit / MB:.0f} MB)"
    return None


def read_file(path: str | os.PathLike, what: str, limit: int) -> bytes:
    """The bytes of the file at `path`, its size checked against `limit` before reading.

    Raises FileFormatError "PATH: no such WHAT file", "PATH: empty file" or
    "PATH: too large (N MB, limit M MB)"."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise FileFormatError(f"{path}: no such {what} file") from None
    if not path.is_file():
        raise FileFormatError(f"{path}: no such {what} file (it is a folder or a device)")
    problem = size_problem(size, limit)
    if problem:
        raise FileFormatError(f"{path}: {problem}")
    with path.open("rb") as f:
        data = f.read(limit + 1)  # the file may have grown since stat(): never read past the limit
    problem = size_problem(len(data), limit)
    if problem:
        raise FileFormatError(f"{path}: {problem}")
    return data


class SafetensorsFile(NamedTuple):
    """A checked safetensors file: its `__metadata__`, its arrays, and VERIFIED or ABSENT."""

    metadata: dict[str, str]
    arrays: dict[str, np.ndarray]
    checksum: str


def read_safetensors(data: bytes, name: str, fmt: str, version: int | tuple[int, ...]) -> SafetensorsFile:
    """Parse safetensors bytes, check the header names format `fmt` at `version` (or one of the
    versions in a tuple), and verify the file's checksums if it carries them. Anything wrong
    raises FileFormatError."""
    header = None
    try:
        header_len = int.from_bytes(data[:8], "little")
        if 8 < header_len + 8 <= len(data):
            parsed = json.loads(data[8: 8 + header_len])
            if isinstance(parsed, dict) and isinstance(parsed.get("__metadata__", {}), dict):
                header = parsed
    except (ValueError, UnicodeDecodeError):
        pass
    if header is None:
        if not data:
            raise FileFormatError(f"{name}: empty file")
        raise FileFormatError(f"{name}: not a {fmt} file (no readable header: truncated, corrupt or another format)")
    metadata = header.get("__metadata__", {})
    if metadata.get("format") != fmt:
        raise FileFormatError(f"{name}: not a {fmt} file (it says format {metadata.get('format')!r})")
    versions = version if isinstance(version, tuple) else (version,)
    if metadata.get("version") not in [str(v) for v in versions]:
        expected = " or ".join(str(v) for v in versions)
        raise FileFormatError(f"{name}: {fmt} version {metadata.get('version')!r} is not supported (expected {expected})")
    try:
        arrays = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise FileFormatError(f"{name}: corrupt or truncated {fmt} file ({exc})") from None
    checksum = _verify(header, memoryview(data)[8 + header_len:], name)
    return SafetensorsFile({k: v for k, v in metadata.items() if k not in (HASH_KEY, CHECKSUM_KEY)},
                           arrays, checksum)


def _verify(header: dict, body: memoryview, name: str) -> str:
    metadata = header.get("__metadata__", {})
    if HASH_KEY not in metadata and CHECKSUM_KEY not in metadata:
        return ABSENT
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    expected_header, crc = None, {}
    try:
        if CHECKSUM_KEY in metadata:
            sums = json.loads(metadata[CHECKSUM_KEY])
            expected_header, crc = sums["header_sha256"], sums["crc32"]
        expected_data = metadata[HASH_KEY]
        if not (isinstance(expected_header, (str, type(None))) and isinstance(crc, dict)
                and isinstance(expected_data, str)):
            raise TypeError("checksum fields of the wrong type")
    except (KeyError, TypeError, ValueError):  # ValueError: the JSON of the checksum field
        raise FileFormatError(f"{name}: damaged: its checksum fields are incomplete or corrupt") from None
    if expected_header is not None and expected_header != _digest_header(
            {k: v for k, v in metadata.items() if k != CHECKSUM_KEY}, tensors):
        raise FileFormatError(f"{name}: damaged: its header does not match the checksum written with it")
    if "0x" + hashlib.sha256(body).hexdigest() != expected_data.lower():
        bad = sorted(k for k, entry in tensors.items()
                     if crc.get(k) != f"{zlib.crc32(body[entry['data_offsets'][0]:entry['data_offsets'][1]]):08x}")
        which = f" (damaged: {', '.join(bad)})" if crc and bad else ""
        raise FileFormatError(f"{name}: damaged: its tensor data does not match the checksum written with it{which}")
    return VERIFIED
