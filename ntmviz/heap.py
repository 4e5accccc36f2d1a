"""The C heap of a training process: keep the memory a step frees for the next step.

A training step builds its tape (every time step's outputs: some 56 MB for an 8-seed ensemble at
batch 16) and frees all of it at the end of backward. glibc's malloc serves blocks above its
mmap threshold with fresh pages and hands the freed top of its heap back to the system, so the
next step faults every page in again, zeroed by the kernel: 13,800 page faults, a quarter of an
8 x 16 ensemble's step on this project's machine (benchmarks/README.md). A process that trains
keeps them instead: its heap stays at the size a step needs, as a GPU's caching allocator does.

Process-wide, so only a process that exists to train sets it (`ntmviz train`, a sweep's workers,
the speed benchmarks); a library call leaves the host's malloc alone.
"""

from __future__ import annotations

import ctypes
import platform

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the largest glibc takes on 64-bit: blocks up to it come from the heap
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top kept up to 1 GiB before it is handed back


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks for reuse instead of handing them back to the system.
    True when set; False where the C library is not glibc (nothing changes there)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
