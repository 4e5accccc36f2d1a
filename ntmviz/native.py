"""The NTM's step without its matrix products, compiled from C++ (kernels.cpp), called through ctypes.

fused.memory_forward / memory_backward and fused.lstm_forward / lstm_backward hand their work
to this module when it can take it: CPU tensors of float32 or float64, with the library
built. On a CPU a memory step is some fifty small tensor ops forward and backward, each
dispatched from Python, and that dispatch, not the arithmetic, is what an NTM step costs;
the C++ loops do the same maths in two passes over each row's memory. They run on one
thread: splitting the rows over a second made training slower, the second thread contending
with torch's own (benchmarks/README.md).

The library is built on first use with the system's C++ compiler (a few seconds) and
kept beside this file, or in ~/.cache/ntmviz when the package folder is read-only, under a
name that hashes the source and the flags, so an edited source is rebuilt. Without a
compiler, or with NTMVIZ_NATIVE=0, everything runs as torch ops (1.4-2.6x slower to train here) and
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
import shlex
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from .heads import STEP_FIELDS, head_sizes, step_shapes

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels.cpp")
# -march=native and -ffast-math: vectorised loops, reductions and exp/log (glibc's libmvec); fast
# math only when compiling, because linking with it would switch the whole process's floats to
# flush denormals to zero. The library's name hashes the CPU's features, since -march=native
# code may not run on another CPU sharing the home folder.
FLAGS = ["-O3", "-march=native", "-ffast-math", "-std=c++17", "-fPIC"]
LINK = ["-shared", "-lm"]
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
# What the kernels' memory forward writes: heads.STEP_FIELDS (fused.MemoryStep's fields, in its
# order), then |key| [P, H], |slot| [P, N] and their cosines [P, H, N], which backward reads. The
# C signatures take them in this order (kernels.cpp's NTM_EXPORT).
_FIELDS = len(STEP_FIELDS)
_EXTRAS = 3


def _compiler() -> list[str] | None:
    """$CXX (a command, e.g. "ccache g++"), else the first C++ compiler on the PATH."""
    if os.environ.get("CXX"):
        return shlex.split(os.environ["CXX"])
    found = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    return [found] if found else None


def _cpu() -> str:
    """The machine and, on Linux, its CPU's feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    flags = next((line for line in info.splitlines() if line.startswith(("flags", "Features"))), "")
    return f"{platform.machine()} {platform.processor()} {flags}"


def _build(compiler: list[str]) -> Path:
    """Compile the source (once per source, flags and machine) and return the library's path."""
    text = SOURCE.read_bytes()
    tag = hashlib.sha256(text + " ".join([*compiler, *FLAGS, *LINK, _cpu()]).encode()).hexdigest()[:16]
    name = f"kernels-{tag}.so"
    here, cached = Path(__file__).parent, Path.home() / ".cache" / "ntmviz"
    for folder in (here, cached):
        if (folder / name).is_file():
            return folder / name
    for folder in (here, cached):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=name, suffix=".tmp")
        except OSError:
            continue
        os.close(fd)
        try:
            subprocess.run([*compiler, *FLAGS, "-c", str(SOURCE), "-o", tmp + ".o"], check=True,
                           capture_output=True, text=True, timeout=300)
            subprocess.run([*compiler, tmp + ".o", *LINK, "-o", tmp], check=True, capture_output=True, text=True,
                           timeout=300)
            os.chmod(tmp, 0o755)
            os.replace(tmp, folder / name)  # atomic: a process building beside us sees all or nothing
            if folder == here:  # builds of this install's earlier sources (a loaded one stays mapped);
                for stale in folder.glob("kernels-*.so"):  # the shared cache may serve other installs
                    if stale.name != name:
                        stale.unlink(missing_ok=True)
        finally:
            for leftover in (tmp, tmp + ".o"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
        return folder / name
    raise OSError(f"neither {here} nor {cached} can be written to")


@cache
def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on first call; None when they cannot be (logged once)."""
    if os.environ.get("NTMVIZ_NATIVE", "1") == "0":
        log.info("ntmviz: NTMVIZ_NATIVE=0: the NTM step runs as torch ops")
        return None
    compiler = _compiler()
    if compiler is None:
        log.warning("ntmviz: no C++ compiler found (set CXX); the NTM step runs as torch ops, slower")
        return None
    try:
        lib = ctypes.CDLL(str(_build(compiler)))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        log.warning("ntmviz: building the kernels failed; the NTM step runs as torch ops, slower: %s", detail)
        return None
    dims = [ctypes.c_int64] * 6
    for suffix in _SUFFIX.values():
        # forward: raw, memory, previous, then what it writes; backward: memory, previous, the
        # parameters and stages, weights, the extras, three gradients in and three out
        getattr(lib, f"ntm_memory_forward_{suffix}").argtypes = dims + [ctypes.c_void_p] * (3 + _FIELDS + _EXTRAS)
        getattr(lib, f"ntm_memory_backward_{suffix}").argtypes = dims + [ctypes.c_void_p] * (2 + (_FIELDS - 3) + 1 + _EXTRAS + 3 + 3)
        getattr(lib, f"ntm_lstm_forward_{suffix}").argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 6
        getattr(lib, f"ntm_lstm_backward_{suffix}").argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 7
    return lib


@cache
def _kernel(name: str, dtype: torch.dtype):
    """The library's function `name` for this dtype (looked up once: the step loop calls it often)."""
    return getattr(library(), f"ntm_{name}_{_SUFFIX[dtype]}")


def usable(memory: Tensor) -> bool:
    """Whether this step can run here: a CPU float32/float64 tensor, and the library built."""
    return memory.device.type == "cpu" and memory.dtype in _SUFFIX and library() is not None


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
    _kernel("memory_forward", memory.dtype)(P, H, R, N, M, S, raw.data_ptr(), memory.data_ptr(),
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
    _kernel("memory_backward", memory.dtype)(P, H, read_heads, N, M, S, memory.data_ptr(), previous.data_ptr(),
                                             *ptrs[3:_FIELDS], ptrs[0], *ptrs[_FIELDS:], *map(_ptr, given), *grads.ptrs)
    return grads[0], grads[1], grads[2]


class LSTMSaved(NamedTuple):
    """What the LSTM cell's backward needs."""

    cell: Tensor  # [P, C]  before the step
    block: Block  # hidden, cell after, i f g o after their activations [P, 4C], tanh(cell after)


def lstm_forward(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, LSTMSaved]:
    """gates [P, 4C] (i, f, g, o), cell [P, C] -> (hidden [P, C], cell [P, C], LSTMSaved)."""
    gates, cell = gates.contiguous(), cell.contiguous()
    P, C = cell.shape
    out = Block(cell, ((P, C), (P, C), (P, 4 * C), (P, C)))
    _kernel("lstm_forward", cell.dtype)(P, C, gates.data_ptr(), cell.data_ptr(), *out.ptrs)
    return out[0], out[1], LSTMSaved(cell, out)


def lstm_backward(saved: LSTMSaved, g_hidden: Tensor | None, g_cell: Tensor | None) -> tuple[Tensor, Tensor]:
    """(g_gates [P, 4C], g_cell before the step [P, C]); a None gradient stands for zeros."""
    cell, block = saved
    P, C = cell.shape
    out = Block(cell, ((P, 4 * C), (P, C)))
    given = [None if g is None else g.contiguous() for g in (g_hidden, g_cell)]
    _kernel("lstm_backward", cell.dtype)(
        P, C, cell.data_ptr(), block.ptrs[2], block.ptrs[3], *map(_ptr, given), *out.ptrs)
    return out[0], out[1]
