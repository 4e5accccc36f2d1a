"""The NTM's step without its matrix products, compiled from C++ (kernels.cpp), called through ctypes.

fused.memory_forward / memory_backward and fused.lstm_forward / lstm_backward hand their work
to this module when it can take it: CPU tensors of float32 or float64, with the library
built. On a CPU a memory step is some fifty small tensor ops forward and backward, each
dispatched from Python, and that dispatch, not the arithmetic, is what an NTM step costs;
the C++ loops do the same maths in two passes over each row's memory.

The library is built on first use with the system's C++ compiler (a second or two) and
kept beside this file, or in ~/.cache/ntmviz when the package folder is read-only, under a
name that hashes the source and the flags, so an edited source is rebuilt. Without a
compiler, or with NTMVIZ_NATIVE=0, everything runs as torch ops (about half the speed) and
one log line says why. tests/test_fused.py checks this path against the torch ops and the
reference functions, values and gradients.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels.cpp")
# -march=native and -ffast-math: vectorised loops, reductions and exp/log (glibc's libmvec); fast
# math only when compiling, because linking with it would switch the whole process's floats to
# flush denormals to zero. The library's name hashes the CPU's features, since -march=native
# code may not run on another CPU sharing the home folder.
FLAGS = ["-O3", "-march=native", "-ffast-math", "-std=c++17", "-fPIC", "-pthread"]
LINK = ["-shared", "-pthread", "-lm"]
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _cpu() -> str:
    """The machine and, on Linux, its CPU's feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    flags = next((line for line in info.splitlines() if line.startswith(("flags", "Features"))), "")
    return f"{platform.machine()} {platform.processor()} {flags}"


def _build(compiler: str) -> Path:
    """Compile the source (once per source, flags and machine) and return the library's path."""
    text = SOURCE.read_bytes()
    tag = hashlib.sha256(text + " ".join([compiler, *FLAGS, *LINK, _cpu()]).encode()).hexdigest()[:16]
    name = f"kernels-{tag}.so"
    for folder in (Path(__file__).parent, Path.home() / ".cache" / "ntmviz"):
        if (folder / name).is_file():
            return folder / name
    for folder in (Path(__file__).parent, Path.home() / ".cache" / "ntmviz"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=name, suffix=".tmp")
        except OSError:
            continue
        os.close(fd)
        try:
            subprocess.run([compiler, *FLAGS, "-c", str(SOURCE), "-o", tmp + ".o"], check=True,
                           capture_output=True, text=True, timeout=300)
            subprocess.run([compiler, tmp + ".o", *LINK, "-o", tmp], check=True, capture_output=True, text=True,
                           timeout=300)
            os.chmod(tmp, 0o755)
            os.replace(tmp, folder / name)  # atomic: a process building beside us sees all or nothing
            for stale in folder.glob("kernels-*.so"):  # builds of earlier sources (a loaded one stays mapped)
                if stale.name != name:
                    stale.unlink(missing_ok=True)
        finally:
            for leftover in (tmp, tmp + ".o"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
        return folder / name
    raise OSError("no writable folder for the compiled memory step")


@cache
def library() -> ctypes.CDLL | None:
    """The compiled memory step, built on first call; None when it cannot be (logged once)."""
    if os.environ.get("NTMVIZ_NATIVE", "1") == "0":
        log.info("ntmviz: NTMVIZ_NATIVE=0: the NTM step runs as torch ops")
        return None
    compiler = _compiler()
    if compiler is None:
        log.warning("ntmviz: no C++ compiler found (set CXX); the NTM step runs as torch ops, about half as fast")
        return None
    try:
        lib = ctypes.CDLL(str(_build(compiler)))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        log.warning("ntmviz: building the kernels failed; the NTM step runs as torch ops, about half as fast: %s", detail)
        return None
    dims = [ctypes.c_int64] * 6 + [ctypes.c_int]
    for suffix in _SUFFIX.values():
        getattr(lib, f"ntm_memory_forward_{suffix}").argtypes = dims + [ctypes.c_void_p] * 16
        getattr(lib, f"ntm_memory_backward_{suffix}").argtypes = dims + [ctypes.c_void_p] * 19
        getattr(lib, f"ntm_lstm_forward_{suffix}").argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 6
        getattr(lib, f"ntm_lstm_backward_{suffix}").argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 7
    return lib


def usable(memory: Tensor) -> bool:
    """Whether this step can run here: a CPU float32/float64 tensor, and the library built."""
    return memory.device.type == "cpu" and memory.dtype in _SUFFIX and library() is not None


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _empty(like: Tensor, shapes: list[tuple[int, ...]]) -> list[Tensor]:
    """Uninitialised tensors of these shapes, carved from one allocation (one is cheaper than many)."""
    sizes = [math.prod(shape) for shape in shapes]
    return [part.view(shape) for part, shape in zip(like.new_empty(sum(sizes)).split(sizes), shapes)]


class Saved(NamedTuple):
    """What backward needs: the step's inputs and every output (all contiguous)."""

    memory: Tensor  # [P, N, M]  before the step
    previous: Tensor  # [P, H, N]
    step: tuple  # fused.MemoryStep


def forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int
            ) -> tuple[list[Tensor], Saved]:
    """raw [P, Z], memory [P, N, M], previous [P, H, N] -> (fused.MemoryStep's fields in order, Saved)."""
    raw, memory, previous = raw.contiguous(), memory.contiguous(), previous.contiguous()
    P, H, N = previous.shape
    M, S, R = memory.shape[2], shift_width, read_heads
    W = H - R
    out = _empty(memory, [(P, H, N), (P, R, M), (P, N, M), (P, H, M), (P, H), (P, H), (P, H, S), (P, H), (P, W, M),
                          (P, W, M), (P, H, N), (P, H, N), (P, H, N)])
    fn = getattr(library(), f"ntm_memory_forward_{_SUFFIX[memory.dtype]}")
    fn(P, H, R, N, M, S, torch.get_num_threads(), _ptr(raw), _ptr(memory), _ptr(previous), *map(_ptr, out))
    return out, Saved(memory, previous, tuple(out))


def backward(saved: Saved, read_heads: int, g_weights: Tensor | None, g_reads: Tensor | None,
             g_memory: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of one step: (g_raw [P, Z], g_memory before the step [P, N, M], g_previous [P, H, N]);
    a None gradient stands for zeros."""
    memory, previous, step = saved
    weights, _, _, key, beta, gate, shift, gamma, erase, add, content, gated, shifted = step
    P, H, N = previous.shape
    M, S = memory.shape[2], shift.shape[2]
    W = H - read_heads
    g_raw = memory.new_empty(P, H * M + 3 * H + H * S + 2 * W * M)
    g_mem, g_previous = torch.empty_like(memory), torch.empty_like(previous)
    grads = [None if g is None else g.contiguous() for g in (g_weights, g_reads, g_memory)]
    fn = getattr(library(), f"ntm_memory_backward_{_SUFFIX[memory.dtype]}")
    fn(P, H, read_heads, N, M, S, torch.get_num_threads(), _ptr(memory), _ptr(previous),
       *map(_ptr, (key, beta, gate, shift, gamma, erase, add, content, gated, shifted, weights)),
       *map(_ptr, grads), _ptr(g_raw), _ptr(g_mem), _ptr(g_previous))
    return g_raw, g_mem, g_previous


class LSTMSaved(NamedTuple):
    """What the LSTM cell's backward needs."""

    cell: Tensor  # [P, C]  before the step
    acts: Tensor  # [P, 4C] i, f, g, o after their activations
    tanh_cell: Tensor  # [P, C]


def lstm_forward(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, LSTMSaved]:
    """gates [P, 4C] (i, f, g, o), cell [P, C] -> (hidden [P, C], cell [P, C], LSTMSaved)."""
    gates, cell = gates.contiguous(), cell.contiguous()
    P, C = cell.shape
    hidden, new_cell, acts, tanh_cell = _empty(cell, [(P, C), (P, C), (P, 4 * C), (P, C)])
    getattr(library(), f"ntm_lstm_forward_{_SUFFIX[cell.dtype]}")(
        P, C, *map(_ptr, (gates, cell, hidden, new_cell, acts, tanh_cell)))
    return hidden, new_cell, LSTMSaved(cell, acts, tanh_cell)


def lstm_backward(saved: LSTMSaved, g_hidden: Tensor | None, g_cell: Tensor | None) -> tuple[Tensor, Tensor]:
    """(g_gates [P, 4C], g_cell before the step [P, C]); a None gradient stands for zeros."""
    cell, acts, tanh_cell = saved
    P, C = cell.shape
    g_gates, g_cell_out = _empty(cell, [(P, 4 * C), (P, C)])
    grads = [None if g is None else g.contiguous() for g in (g_hidden, g_cell)]
    getattr(library(), f"ntm_lstm_backward_{_SUFFIX[cell.dtype]}")(
        P, C, *map(_ptr, (cell, acts, tanh_cell, *grads, g_gates, g_cell_out)))
    return g_gates, g_cell_out
