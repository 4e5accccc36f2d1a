"""The NTM's step without its matrix products, compiled from C++ (kernels.cpp), called through ctypes.

fused.memory_forward / memory_backward and fused.lstm_forward / lstm_backward hand their work
to this module when it can take it: CPU tensors of float32 or float64, with the library
built. On a CPU a memory step is some fifty small tensor ops forward and backward, each
dispatched from Python, and that dispatch, not the arithmetic, is what an NTM step costs;
the C++ loops do the same maths in two passes over each row's memory. The memory step and the
LSTM cell split their rows over torch's threads (torch.get_num_threads(), from 8 rows up): the
library links OpenMP, which resolves to the runtime torch has loaded, so both share one pool of
threads (a pool of its own, std::thread, contended with torch's and made training slower:
benchmarks/README.md). In a forked child that pool is gone, so there they run on one thread.

Building and loading (docs/engine.md, "How the kernels are built and loaded"). The library is
built on first use with the system's C++ compiler (a few seconds) into the user's own cache
folder, cache_folder(): $NTMVIZ_KERNEL_CACHE, else $XDG_CACHE_HOME/ntmviz/kernels, else
~/.cache/ntmviz/kernels; never the installed package. That folder is created mode 0700 and
refused when another user owns it or group or others may write to it. A build is named by a
hash of the source, the compiler, the flags and the CPU, and beside it a small JSON record holds
the library's SHA-256 (with the compiler's version and the flags); every load reads the library
through one open file, checks those bytes against the record and loads exactly them, so a
changed, truncated or vanished file is never loaded. Builds take a file lock (fcntl.flock) in
the folder: processes starting at once compile once. Builds for other CPUs or compilers stay;
of one CPU's builds of other sources, the KEEP newest stay.

Without a compiler, with NTMVIZ_NATIVE=0, or when anything above fails, everything runs as
torch ops (1.4-2.6x slower to train here) and one log line says why. tests/test_fused.py checks
this path against the torch ops and the reference functions, values and gradients;
tests/test_native_trust.py the building and loading.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .files import atomic_write
from .heads import STEP_FIELDS, head_sizes, step_shapes

try:
    import fcntl
except ImportError:  # not a POSIX system: no flock, and no .so to build either
    fcntl = None

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels.cpp")
CACHE_ENV = "NTMVIZ_KERNEL_CACHE"  # a folder for the built kernels, instead of the user's cache
KEEP = 4  # builds of other sources kept per CPU, compiler and flags (two installs sharing a cache)
MAX_LIBRARY_BYTES = 64 << 20  # far above the library's ~100 kB: a bigger file is not ours
# -march=native and -ffast-math: vectorised loops, reductions and exp/log (glibc's libmvec); fast
# math only when compiling, because linking with it would switch the whole process's floats to
# flush denormals to zero. The library's name hashes the CPU's features, since -march=native
# code may not run on another CPU sharing the home folder.
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-std=c++17", "-fPIC"]
LINK = ["-shared", "-fopenmp", "-lm"]
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
# What the kernels' memory forward writes: heads.STEP_FIELDS (fused.MemoryStep's fields, in its
# order), then |key| [P, H], |slot| [P, N] and their cosines [P, H, N], which backward reads. The
# C signatures take them in this order (kernels.cpp's NTM_EXPORT).
_FIELDS = len(STEP_FIELDS)
_EXTRAS = 3


class Refused(Exception):
    """Why the kernels are not used, in one line (logged; the step then runs as torch ops)."""


def _compiler() -> list[str] | None:
    """$CXX (a command, e.g. "ccache g++"), else the first C++ compiler on the PATH."""
    if os.environ.get("CXX"):
        return shlex.split(os.environ["CXX"])
    found = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    return [found] if found else None


def _compiler_version(compiler: list[str]) -> str:
    """The first line of `compiler --version`, e.g. "g++ (Debian 12.2.0-14) 12.2.0"."""
    try:
        out = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return next((line.strip() for line in out.splitlines() if line.strip()), "unknown")


def _cpu() -> str:
    """The machine and, on Linux, its CPU's feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    flags = next((line for line in info.splitlines() if line.startswith(("flags", "Features"))), "")
    return f"{platform.machine()} {platform.processor()} {flags}"


def cache_folder() -> Path:
    """Where the built kernels go: $NTMVIZ_KERNEL_CACHE, else $XDG_CACHE_HOME/ntmviz/kernels (an
    absolute XDG_CACHE_HOME), else ~/.cache/ntmviz/kernels."""
    if os.environ.get(CACHE_ENV):
        return Path(os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV])))
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.abspath(base)) / "ntmviz" / "kernels"


def own_folder(folder: Path) -> Path:
    """`folder`, created mode 0700 if missing; Refused unless it is a directory of this user's
    that neither group nor others may write to (else they could put their code in our process)."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(folder)
    except OSError as exc:
        raise Refused(f"the kernel cache {folder} cannot be made ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise Refused(f"the kernel cache {folder} is not a directory")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise Refused(f"the kernel cache {folder} belongs to another user (uid {info.st_uid}); "
                      f"set {CACHE_ENV} to a folder of your own")
    if info.st_mode & 0o022:
        raise Refused(f"the kernel cache {folder} can be written by group or others "
                      f"(mode {stat.S_IMODE(info.st_mode):o}); chmod 700 it or set {CACHE_ENV}")
    return folder


@contextmanager
def _locked(folder: Path):
    """Hold `folder`/build.lock exclusively (fcntl.flock): one build at a time across processes.
    The kernel drops the lock when its holder dies, so a killed build never blocks the next."""
    if fcntl is None:
        raise Refused("no file locks on this system (fcntl): the kernels are not built")
    fd = os.open(folder / "build.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Build(NamedTuple):
    """One build's names: `kernels-<tag>.so` and its record `kernels-<tag>.json`; `key` names the
    CPU, compiler and flags (builds of the same key for other sources are the stale ones)."""

    library: str
    record: str
    key: str
    source: str  # SHA-256 of kernels.cpp


def _build_names(compiler: list[str]) -> Build:
    text = SOURCE.read_bytes()
    setting = " ".join([*compiler, *FLAGS, *LINK, _cpu()]).encode()
    tag = hashlib.sha256(text + setting).hexdigest()[:16]
    return Build(f"kernels-{tag}.so", f"kernels-{tag}.json", hashlib.sha256(setting).hexdigest()[:16],
                 hashlib.sha256(text).hexdigest())


def _read_checked(folder: Path, build: Build) -> tuple[bytes, dict[str, Any]]:
    """The library's bytes, read through one open file and checked against the SHA-256 its record
    holds, and the record. FileNotFoundError when either file is missing (not built yet, or
    removed); Refused when they do not agree (a changed or truncated library)."""
    path = folder / build.library
    try:
        record = json.loads((folder / build.record).read_text(encoding="utf-8"))
        expected = record["sha256"]
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Refused(f"the record {folder / build.record} is unreadable ({exc}): {path} not loaded; "
                      f"delete both to rebuild") from None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_LIBRARY_BYTES + 1)
    if hashlib.sha256(data).hexdigest() != expected:
        raise Refused(f"{path} ({len(data)} bytes) does not match the SHA-256 recorded when it was built "
                      f"(changed or truncated): not loaded; delete it to rebuild")
    return data, record


def _compile(compiler: list[str], folder: Path, build: Build) -> None:
    """Compile and install one build (the caller holds the lock): the library, then its record,
    each written whole or not at all; then the stale builds of this CPU and setting go."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{build.library}.", suffix=".tmp")
    os.close(fd)
    try:
        for command in ([*compiler, *FLAGS, "-c", str(SOURCE), "-o", tmp + ".o"],
                        [*compiler, tmp + ".o", *LINK, "-o", tmp]):
            try:
                subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
            except subprocess.CalledProcessError as exc:
                raise Refused(_compile_failure(folder, build, command, exc)) from None
            except (OSError, subprocess.SubprocessError) as exc:
                raise Refused(f"building the kernels failed ({shlex.join(command[:1])}: {exc})") from None
        data = Path(tmp).read_bytes()
        record = {"library": build.library, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                  "source_sha256": build.source, "key": build.key, "compiler": compiler,
                  "compiler_version": _compiler_version(compiler), "flags": FLAGS, "link": LINK,
                  "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.replace(tmp, folder / build.library)
        atomic_write(folder / build.record, json.dumps(record, indent=1).encode())
    finally:
        for leftover in (tmp, tmp + ".o"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    _clean(folder, build)


def _compile_failure(folder: Path, build: Build, command: list[str], exc: subprocess.CalledProcessError) -> str:
    """One line for a compiler that failed: its first error line, and where its whole output went."""
    output = f"$ {shlex.join(command)}\n{exc.stdout or ''}{exc.stderr or ''}"
    lines = [line.strip() for line in output.splitlines()[1:] if line.strip()]
    first = next((line for line in lines if "error" in line.lower()),
                 lines[0] if lines else f"exit status {exc.returncode}")
    where = folder / (build.library[:-3] + ".log")
    try:
        atomic_write(where, output.encode())
        saved = f" (the compiler's output: {where})"
    except OSError:
        saved = ""
    return f"building the kernels failed: {first}{saved}"


def _clean(folder: Path, build: Build) -> None:
    """Remove builds of other sources made for this CPU, compiler and flags beyond the KEEP newest
    (ours among them), and what builds or loads killed midway left. Builds for other CPUs or
    compilers, which may share this folder, stay."""
    for leftover in [*folder.glob(".kernels-*.tmp*"), *folder.glob(".load-*.so")]:
        try:
            if time.time() - leftover.stat().st_mtime > 3600:  # a live build or load takes seconds
                leftover.unlink()
        except OSError:
            continue
    same = []
    for record_path in folder.glob("kernels-*.json"):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            if record.get("key") == build.key:
                same.append((record_path.stat().st_mtime, record_path))
        except (OSError, ValueError, AttributeError):
            continue  # not a record we can read: not ours to delete
    same.sort(reverse=True)
    for _, record_path in [entry for entry in same if entry[1].name != build.record][KEEP - 1:]:
        record_path.with_suffix(".so").unlink(missing_ok=True)  # a process using it keeps its mapping
        record_path.with_suffix(".log").unlink(missing_ok=True)
        record_path.unlink(missing_ok=True)


def _install(compiler: list[str], folder: Path) -> tuple[bytes, dict[str, Any]]:
    """The checked bytes of this source's build in `folder` and its record, compiling it first
    (under the lock, once across processes) when it is not there."""
    build = _build_names(compiler)
    try:
        return _read_checked(folder, build)
    except FileNotFoundError:
        pass  # not built, or being built: whoever holds the lock builds it, the others wait and read
    with _locked(folder):
        try:
            return _read_checked(folder, build)
        except FileNotFoundError:
            _compile(compiler, folder, build)
        try:
            return _read_checked(folder, build)
        except FileNotFoundError as exc:
            raise Refused(f"the kernels just built are gone ({exc.filename})") from None


def _dlopen(data: bytes, folder: Path, name: str) -> ctypes.CDLL:
    """Load exactly these bytes (those checked of `folder`/`name`), from a private copy under a new
    name in `folder` (ours alone: mode 0700), removed once loaded. A new name each time: the loader
    takes a name it has loaded before for that library again (so not /proc/self/fd/N of a memory
    file, whose numbers come back), and the copy's inode, while any copy is mapped, is no other's."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".load-", suffix=".so")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return ctypes.CDLL(tmp)
    except OSError as exc:  # the loader's words name the copy: name the cache file instead
        raise Refused(f"the loader refused {folder / name} ({str(exc).replace(tmp, name)})") from None
    finally:
        os.unlink(tmp)


_loaded: dict[str, Any] = {}  # the loaded build's record (compiler, flags, SHA-256), for compute_path


@cache
def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on first call; None when they cannot be (one log line says why)."""
    _loaded.clear()
    if os.environ.get("NTMVIZ_NATIVE", "1") == "0":
        log.info("ntmviz: NTMVIZ_NATIVE=0: the NTM step runs as torch ops")
        return None
    compiler = _compiler()
    if compiler is None:
        log.warning("ntmviz: no C++ compiler found (set CXX); the NTM step runs as torch ops, slower")
        return None
    folder = cache_folder()
    try:
        data, record = _install(compiler, own_folder(folder))
        lib = _dlopen(data, folder, record.get("library") or _build_names(compiler).library)
    except Refused as exc:
        log.warning("ntmviz: %s; the NTM step runs as torch ops, slower", _one_line(str(exc)))
        return None
    except OSError as exc:  # reading the folder, the lock, the library
        log.warning("ntmviz: loading the kernels from %s failed (%s); the NTM step runs as torch ops, slower",
                    folder, _one_line(str(exc)))
        return None
    dims = [ctypes.c_int64] * 7  # threads, P, H, R, N, M, S
    for suffix in _SUFFIX.values():
        # forward: raw, memory, previous, then what it writes; backward: memory, previous, the
        # parameters and stages, weights, the extras, three gradients in and three out
        getattr(lib, f"ntm_memory_forward_{suffix}").argtypes = dims + [ctypes.c_void_p] * (3 + _FIELDS + _EXTRAS)
        getattr(lib, f"ntm_memory_backward_{suffix}").argtypes = dims + [ctypes.c_void_p] * (2 + (_FIELDS - 3) + 1 + _EXTRAS + 3 + 3)
        getattr(lib, f"ntm_lstm_forward_{suffix}").argtypes = [ctypes.c_int64] * 3 + [ctypes.c_void_p] * 6  # threads, P, C
        getattr(lib, f"ntm_lstm_backward_{suffix}").argtypes = [ctypes.c_int64] * 3 + [ctypes.c_void_p] * 7
    _loaded.update(record, path=str(folder / record.get("library", "")))
    return lib


def _one_line(text: str) -> str:
    return " ".join(text.split())


def loaded_from() -> str | None:
    """The cache file the loaded kernels were read from (they run from a checked copy of it)."""
    return _loaded.get("path") if library() is not None else None


# ---- which path a model trained on ---------------------------------------------------------------
# A checkpoint's meta["compute"] records it: {"path": "kernels", "compiler": ..., "flags": ...},
# {"path": "torch ops", "device": ...}, or (for a GPU kernel implementation of the step, when one
# exists) {"path": "gpu kernel", "name": ..., "version": ...}; describe_compute reads any of them.

_calls = threading.local()  # kernel calls made by this thread: the trainer's thread is the one that trains


def calls() -> int:
    """How many memory steps and LSTM cells this thread has run through the kernels (forward)."""
    return getattr(_calls, "n", 0)


def _count() -> None:
    _calls.n = getattr(_calls, "n", 0) + 1


def compute_path(device: torch.device | str, kernels_ran: bool) -> dict[str, Any]:
    """What a checkpoint records of the path that trained it: the kernels (compiler and flags)
    when they ran, else torch ops on `device`."""
    # the Triton kernels (triton_step.py) count their calls here too; they run on CUDA tensors only
    if kernels_ran and torch.device(device).type == "cuda":
        try:
            version = importlib.metadata.version("triton")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return {"path": "gpu kernel", "name": "triton", "version": version, "device": str(device)}
    if kernels_ran and library() is not None:
        return {"path": "kernels", "compiler": _loaded.get("compiler_version", "unknown"),
                "flags": " ".join(_loaded.get("flags", FLAGS)), "sha256": _loaded.get("sha256")}
    return {"path": "torch ops", "device": str(device)}


def describe_compute(record: dict[str, Any] | None) -> str:
    """One line for a checkpoint's meta["compute"], e.g. "compiled CPU kernels (g++ ... 12.2.0; -O3 ...)"."""
    if not isinstance(record, dict) or not record.get("path"):
        return "not recorded"
    path = str(record["path"])
    if path == "kernels":
        line = f"compiled CPU kernels ({record.get('compiler', 'compiler not recorded')}; {record.get('flags', '')})"
    elif path == "torch ops":
        line = f"torch ops on {record.get('device', 'a device not recorded')}"
    else:  # a path added later (a GPU kernel): its name and whatever it records
        details = ", ".join(f"{k} {v}" for k, v in record.items() if k not in ("path", "earlier", "from_step"))
        line = f"{path} ({details})" if details else path
    if "earlier" in record:  # a run resumed on another path
        line += f"; before step {record.get('from_step', '?')}: {describe_compute(record['earlier'])}"
    return line


@cache
def _kernel(name: str, dtype: torch.dtype):
    """The library's function `name` for this dtype (looked up once: the step loop calls it often)."""
    return getattr(library(), f"ntm_{name}_{_SUFFIX[dtype]}")


def usable(memory: Tensor) -> bool:
    """Whether this step can run here: a CPU float32/float64 tensor, and the library built."""
    return memory.device.type == "cpu" and memory.dtype in _SUFFIX and library() is not None


_forked = False  # in a child forked from this process: libgomp's threads did not survive the fork


def _after_fork() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _threads() -> int:
    """How many threads the kernels' rows may use: torch's (one in a forked child, where a
    parallel region would wait forever for the parent's threads)."""
    return 1 if _forked else torch.get_num_threads()


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


@cache
def _layout(shapes: tuple[tuple[int, ...], ...]) -> tuple[list[int], list[tuple[int, ...]], int]:
    """(offsets, contiguous strides, total size) of tensors of these shapes laid end to end."""
    offsets, strides, total = [], [], 0
    for shape in shapes:
        offsets.append(total)
        strides.append(tuple(math.prod(shape[i + 1:]) for i in range(len(shape))))
        total += math.prod(shape)
    return offsets, strides, total


class Block:
    """Tensors of fixed shapes in one allocation: every address at once, each tensor when asked for.

    A step's outputs are a dozen tensors, but most are read only by the kernels (backward, the
    next step); one allocation and no views for those is what makes a step at batch 1 cheap."""

    def __init__(self, like: Tensor, shapes: tuple[tuple[int, ...], ...], flat: Tensor | None = None):
        """flat: where to put them (contiguous, of their total size); a new allocation when None."""
        self.shapes = shapes
        self.offsets, self.strides, total = _layout(shapes)
        self.flat = like.new_empty(total) if flat is None else flat
        base, size = self.flat.data_ptr(), self.flat.element_size()
        self.ptrs = [base + offset * size for offset in self.offsets]

    def __getitem__(self, i: int) -> Tensor:
        # as_strided counts from the start of the storage, which a `flat` given as a row of a bigger tensor is not
        return self.flat.as_strided(self.shapes[i], self.strides[i], self.flat.storage_offset() + self.offsets[i])


class Step:
    """One memory step's outputs, standing in for fused.MemoryStep: fields by name or in order."""

    def __init__(self, block: Block):
        self.block = block

    def __getattr__(self, name: str) -> Tensor:
        if name not in STEP_FIELDS:
            raise AttributeError(name)
        return self.block[STEP_FIELDS.index(name)]

    def __iter__(self):
        return (self.block[i] for i in range(len(STEP_FIELDS)))


@cache
def _step_shapes(P: int, H: int, R: int, N: int, M: int, S: int) -> tuple[tuple[int, ...], ...]:
    """The shapes of what the kernels' memory forward writes: STEP_FIELDS', then the norms and cosines."""
    return step_shapes(P, H, R, N, M, S) + ((P, H), (P, N), (P, H, N))


def steps_buffer(memory: Tensor, previous: Tensor, shift_width: int, read_heads: int, steps: int) -> Tensor:
    """Room for `steps` memory steps' outputs, [T, one step's block]: recording writes each step's
    outputs into its row (forward's `into`), and over_time reads the fields out of it."""
    P, H, N = previous.shape
    total = _layout(_step_shapes(P, H, read_heads, N, memory.shape[2], shift_width))[2]
    return memory.new_empty(steps, total)


def over_time(buffer: Tensor, step: Step, memory0: Tensor) -> tuple[list[Tensor], Tensor]:
    """buffer [T, block] filled by T steps (`step` one of them), memory0 [P, N, M] the memory before
    the first -> (each of MemoryStep's fields over time [P, T, ...], the memories [P, T+1, N, M]).
    One copy per field, not a view per step and field; the memory field is memories[:, 1:]."""
    block, T = step.block, buffer.shape[0]
    fields = [buffer.as_strided((T, *shape), (buffer.shape[1], *stride), offset).transpose(0, 1)
              for shape, stride, offset in zip(block.shapes, block.strides, block.offsets[:len(STEP_FIELDS)])]
    memory = STEP_FIELDS.index("memory")
    memories = memory0.new_empty(memory0.shape[0], T + 1, *memory0.shape[1:])
    memories[:, 0] = memory0
    memories[:, 1:] = fields[memory]
    return [memories[:, 1:] if i == memory else f.contiguous() for i, f in enumerate(fields)], memories


class Saved(NamedTuple):
    """What backward needs: the step's inputs (contiguous) and its outputs."""

    memory: Tensor  # [P, N, M]  before the step
    previous: Tensor  # [P, H, N]
    step: Step


def forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int,
            into: Tensor | None = None) -> tuple[Step, Saved]:
    """raw [P, Z], memory [P, N, M], previous [P, H, N] -> (the step's outputs, Saved). into: a row
    of steps_buffer to write the outputs to (recording); a new block when None."""
    raw, memory, previous = raw.contiguous(), memory.contiguous(), previous.contiguous()
    P, H, N = previous.shape
    M, S, R = memory.shape[2], shift_width, read_heads
    out = Block(memory, _step_shapes(P, H, R, N, M, S), into)
    _count()
    _kernel("memory_forward", memory.dtype)(_threads(), P, H, R, N, M, S, raw.data_ptr(), memory.data_ptr(),
                                            previous.data_ptr(), *out.ptrs)
    step = Step(out)
    return step, Saved(memory, previous, step)


def backward(saved: Saved, read_heads: int, g_weights: Tensor | None, g_reads: Tensor | None,
             g_memory: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of one step: (g_raw [P, Z], g_memory before the step [P, N, M], g_previous [P, H, N]);
    a None gradient stands for zeros."""
    memory, previous, step = saved
    P, H, N = previous.shape
    M, S = memory.shape[2], step.block.shapes[STEP_FIELDS.index("shift")][2]
    grads = Block(memory, ((P, sum(head_sizes(H, H - read_heads, M, S))), (P, N, M), (P, H, N)))
    given = [None if g is None else g.contiguous() for g in (g_weights, g_reads, g_memory)]
    ptrs = step.block.ptrs  # weights, reads, memory, key .. shifted, the norms and cosines
    _kernel("memory_backward", memory.dtype)(_threads(), P, H, read_heads, N, M, S, memory.data_ptr(), previous.data_ptr(),
                                             *ptrs[3:_FIELDS], ptrs[0], *ptrs[_FIELDS:], *map(_ptr, given), *grads.ptrs)
    return grads[0], grads[1], grads[2]


def forward_fields(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int,
                   out: list[Tensor]) -> None:
    """forward, writing into separate tensors: `out` holds STEP_FIELDS' tensors, then |key| [P, H],
    |slot| [P, N] and the cosines [P, H, N], each contiguous and of memory's dtype. The registered
    operator (ops.py) returns these, and an operator's outputs may not share storage."""
    raw, memory, previous = raw.contiguous(), memory.contiguous(), previous.contiguous()
    P, H, N = previous.shape
    _count()
    _kernel("memory_forward", memory.dtype)(_threads(), P, H, read_heads, N, memory.shape[2], shift_width, raw.data_ptr(),
                                            memory.data_ptr(), previous.data_ptr(), *(t.data_ptr() for t in out))


def backward_fields(memory: Tensor, previous: Tensor, saved: list[Tensor], read_heads: int,
                    g_weights: Tensor | None, g_reads: Tensor | None, g_memory: Tensor | None,
                    out: list[Tensor]) -> None:
    """backward from separate tensors: `saved` holds the step's parameters and stages (STEP_FIELDS
    from key to shifted), its weights, |key|, |slot| and the cosines, as forward_fields wrote them;
    `out` receives (g_raw [P, Z], g_memory before the step [P, N, M], g_previous [P, H, N])."""
    memory, previous = memory.contiguous(), previous.contiguous()
    P, H, N = previous.shape
    S = saved[STEP_FIELDS.index("shift") - 3].shape[2]
    saved = [t.contiguous() for t in saved]  # kept alive while the kernel reads them
    given = [None if g is None else g.contiguous() for g in (g_weights, g_reads, g_memory)]
    _kernel("memory_backward", memory.dtype)(_threads(), P, H, read_heads, N, memory.shape[2], S, memory.data_ptr(),
                                             previous.data_ptr(), *(t.data_ptr() for t in saved),
                                             *map(_ptr, given), *(t.data_ptr() for t in out))


class LSTMSaved(NamedTuple):
    """What the LSTM cell's backward needs."""

    cell: Tensor  # [P, C]  before the step
    block: Block  # hidden, cell after, i f g o after their activations [P, 4C], tanh(cell after)


def lstm_forward(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, LSTMSaved]:
    """gates [P, 4C] (i, f, g, o), cell [P, C] -> (hidden [P, C], cell [P, C], LSTMSaved)."""
    gates, cell = gates.contiguous(), cell.contiguous()
    P, C = cell.shape
    out = Block(cell, ((P, C), (P, C), (P, 4 * C), (P, C)))
    _count()
    _kernel("lstm_forward", cell.dtype)(_threads(), P, C, gates.data_ptr(), cell.data_ptr(), *out.ptrs)
    return out[0], out[1], LSTMSaved(cell, out)


def lstm_backward(saved: LSTMSaved, g_hidden: Tensor | None, g_cell: Tensor | None) -> tuple[Tensor, Tensor]:
    """(g_gates [P, 4C], g_cell before the step [P, C]); a None gradient stands for zeros."""
    cell, block = saved
    P, C = cell.shape
    out = Block(cell, ((P, 4 * C), (P, C)))
    given = [None if g is None else g.contiguous() for g in (g_hidden, g_cell)]
    _kernel("lstm_backward", cell.dtype)(
        _threads(), P, C, cell.data_ptr(), block.ptrs[2], block.ptrs[3], *map(_ptr, given), *out.ptrs)
    return out[0], out[1]
