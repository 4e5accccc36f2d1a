"""The compiled memory step's share of the CPU's arithmetic peak (issue 29), and kernels side by side.

    .venv/bin/python benchmarks/kernel_flops.py                    # the table: FLOP, µs, GFLOP/s, share of peak
    .venv/bin/python benchmarks/kernel_flops.py --against OLD.cpp  # also another kernels.cpp, built in a
        # temporary cache and timed in the same rounds (which goes first alternates): old time / new time
    .venv/bin/python benchmarks/kernel_flops.py --against ntmviz/kernels.cpp   # the same source against
        # itself (a second copy of the library): how far two identical sides land apart

It times native.forward and native.backward, the functions fused.memory_forward / memory_backward
call on a CPU, on random inputs of the training shapes (N=128 slots, M=20, 1 read + 1 write head,
shift width 3), 1 torch thread, every incoming gradient given (a step in the middle of a sequence):

    rows P   what
    128      the 8-seed x batch-16 training step (every seed's rows in one call)
    1        batch 1 of one seed
    32       batch 32 of one seed

FLOP per row of one memory step, counted from the formulas as the kernels evaluate them (H heads,
R read, W = H - R write, N slots, M width, S shifts; an add, a multiply, a compare, a divide, an
exp, a log or a sqrt counts 1, so an FMA counts 2, as in the peak), and at the training shape
(H=2, R=1, W=1, N=128, M=20, S=3):

    stage                   forward                          at 2/1/128/20/3
    activations             H (4S + 9) + 8 W M                  202
    cosine similarity       (H + N)(2M + 1) + 2 M H N + 2 H N   16,082
    content softmax         6 H N (scale, max, subtract, exp, sum, divide)   1,536
    interpolation           3 H N                               768
    circular shift          2 S H N                             1,536
    sharpening              8 H N (log(x + eps), softmax)       2,048
    read                    2 R N M                             5,120
    erase/add               5 W N M                             12,800
    forward total                                               40,092

    stage                   backward                         at 2/1/128/20/3
    erase/add               (11 + W) W N M                      30,720
    read                    4 R N M                             10,240
    sharpening              12 H N                              3,072
    circular shift          4 S H N                             3,072
    interpolation           5 H N                               1,280
    content softmax         6 H N                               1,536
    cosine similarity       8 H N + 2 H M + 3 N + (2 + 4H) N M  28,112
    activations             H (9 + 4S) + 6 W M                  162
    backward total                                              78,194

So one step forward and backward is 118,286 FLOP a row: 15.1 MFLOP at P = 128. The count is fixed by
the shapes, not by a build, so two builds' GFLOP/s compare as their times do.

The peak: float32 FLOP a cycle for one core from /proc/cpuinfo's flags (AVX-512: 2 FMA units x 16
lanes x 2 = 64; AVX2 with FMA: 32; AVX: 16; else SSE: 8), times the clock /proc/cpuinfo reports
(nominal: the core may run faster or slower), times 1 core (the kernels run on one thread). A CPU
that splits 512-bit operations into two 256-bit halves (AMD Zen 4) peaks at half the AVX-512 figure.

Times are the process's CPU time per call (the machine is shared; wall time is printed beside it),
the median over rounds of the mean of many calls.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import torch

from ntmviz import heap, native
from ntmviz.heads import head_sizes

N, M, S, R, W = 128, 20, 3, 1, 1
H = R + W
ROWS = ((128, "8 seeds x batch 16"), (1, "batch 1"), (32, "batch 32"))


def forward_flops(H: int, R: int, N: int, M: int, S: int) -> dict[str, int]:
    """FLOP per row of one memory step forward, by stage (the docstring's table)."""
    W = H - R
    return {"activations": H * (4 * S + 9) + 8 * W * M,
            "cosine similarity": (H + N) * (2 * M + 1) + 2 * M * H * N + 2 * H * N,
            "content softmax": 6 * H * N, "interpolation": 3 * H * N, "circular shift": 2 * S * H * N,
            "sharpening": 8 * H * N, "read": 2 * R * N * M, "erase/add": 5 * W * N * M}


def backward_flops(H: int, R: int, N: int, M: int, S: int) -> dict[str, int]:
    """FLOP per row of one memory step backward, by stage (the docstring's table)."""
    W = H - R
    return {"erase/add": (11 + W) * W * N * M, "read": 4 * R * N * M, "sharpening": 12 * H * N,
            "circular shift": 4 * S * H * N, "interpolation": 5 * H * N, "content softmax": 6 * H * N,
            "cosine similarity": 8 * H * N + 2 * H * M + 3 * N + (2 + 4 * H) * N * M,
            "activations": H * (9 + 4 * S) + 6 * W * M}


def peak() -> tuple[float, list[str]]:
    """(float32 FLOP a second for one core, the assumptions as lines)."""
    info = Path("/proc/cpuinfo").read_text()
    lines = info.splitlines()
    flags = set(next((line for line in lines if line.startswith("flags")), "").split(":")[-1].split())
    mhz = float(next((line for line in lines if line.startswith("cpu MHz")), "cpu MHz : 0").split(":")[1])
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    if "avx512f" in flags:
        per_cycle, why = 64, "AVX-512F: 2 FMA units x 16 float32 lanes x 2 FLOP"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, why = 32, "AVX2 + FMA: 2 FMA units x 8 float32 lanes x 2 FLOP"
    elif "avx" in flags:
        per_cycle, why = 16, "AVX: 1 add + 1 multiply unit x 8 float32 lanes"
    else:
        per_cycle, why = 8, "SSE: 1 add + 1 multiply unit x 4 float32 lanes"
    rate = per_cycle * mhz * 1e6
    return rate, [f"CPU: {model}, {os.cpu_count()} logical cores; /proc/cpuinfo clock {mhz:.0f} MHz (taken as nominal)",
                  f"{per_cycle} FLOP/cycle/core ({why}); 1 core (1 thread) -> peak {rate / 1e9:.1f} GFLOP/s",
                  "a CPU that runs 512-bit operations as two 256-bit halves (Zen 4) peaks at half that"]


def inputs(P: int, seed: int = 0):
    """Random step inputs like training's: raw controller outputs, a memory, softmax weightings,
    and the three incoming gradients."""
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(P, sum(head_sizes(H, W, M, S)), generator=g) * 2
    memory = torch.randn(P, N, M, generator=g) * 0.5
    previous = torch.softmax(torch.randn(P, H, N, generator=g) * 3, -1)
    grads = (torch.randn(P, H, N, generator=g), torch.randn(P, R, M, generator=g), torch.randn(P, N, M, generator=g))
    return (raw, memory, previous), grads


def load(source: Path | None) -> ctypes.CDLL:
    """The library built from `source` (None: the package's kernels.cpp, in the usual cache); another
    source builds in a temporary cache of its own, so the user's cache keeps its builds."""
    if source is not None:
        if "int64_t threads" not in source.read_text():  # before 8c94724 the functions took no thread count
            sys.exit(f"{source} is from before the kernels took a thread count: its C signature differs")
        native.SOURCE = source.resolve()
        os.environ[native.CACHE_ENV] = tempfile.mkdtemp(prefix="ntmviz-kernels-")
    native.library.cache_clear()
    lib = native.library()
    if lib is None:
        sys.exit(f"the kernels from {native.SOURCE} did not build or load (see the log line above)")
    return lib


def use(lib: ctypes.CDLL) -> None:
    """Make native.forward / backward call `lib`'s functions (native._kernel looks them up)."""
    native._kernel = cache(lambda name, dtype: getattr(lib, f"ntm_{name}_{native._SUFFIX[dtype]}"))


def time_calls(P: int, calls: int) -> dict[str, tuple[float, float]]:
    """{"forward" | "backward": (CPU seconds, wall seconds) per call}, `calls` calls each."""
    (raw, memory, previous), grads = inputs(P)
    _, saved = native.forward(raw, memory, previous, S, R)
    out = {}
    for what in ("forward", "backward"):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            if what == "forward":
                native.forward(raw, memory, previous, S, R)
            else:
                native.backward(saved, R, *grads)
        out[what] = ((time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, help="time this kernels.cpp instead of the package's")
    parser.add_argument("--against", type=Path, help="another kernels.cpp, timed beside this checkout's")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3, help="per row, side and round (about)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # as in training (`ntmviz train` sets it): each call's output block reuses freed pages instead of
    # faulting fresh ones in, which at P = 128 cost some 500 µs of a forward (ntmviz/heap.py)
    heap.keep_freed_memory()
    rate, assumptions = peak()

    sides = {"this": load(args.source)}
    this_source = native.SOURCE
    if args.against:
        sides["other"] = load(args.against)
    calls = {}
    for P, _ in ROWS:  # calls per round: about --seconds of forward and backward
        use(sides["this"])
        probe = time_calls(P, 3)
        calls[P] = max(3, int(args.seconds / (probe["forward"][1] + probe["backward"][1])))

    times = {(side, P): [] for side in sides for P, _ in ROWS}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for P, _ in ROWS:
            for side in order:
                use(sides[side])
                times[side, P].append(time_calls(P, calls[P]))

    fw, bw = sum(forward_flops(H, R, N, M, S).values()), sum(backward_flops(H, R, N, M, S).values())
    load_average = os.getloadavg()
    print(f"memory step kernels ({this_source}), N={N} M={M} heads {R} read + {W} write, shift width {S}, "
          f"float32, 1 thread; median of {args.rounds} rounds; load average "
          + " ".join(f"{x:.2f}" for x in load_average))
    for line in assumptions:
        print("  " + line)
    print(f"  FLOP per row: forward {fw:,}, backward {bw:,}, both {fw + bw:,} (the docstring's table)")
    print()
    header = f"{'rows':<28} {'pass':<9} {'FLOP/step':>11} {'µs/step':>9} {'(wall)':>9} {'GFLOP/s':>8} {'of peak':>8}"
    if args.against:
        header += f" {'other µs':>9} {'other/this':>11} {'(range)':>13}"
    print(header)
    for P, label in ROWS:
        for what, flops in (("forward", fw * P), ("backward", bw * P), ("both", (fw + bw) * P)):
            def seconds(side, i):  # 0: CPU, 1: wall; the median over rounds
                parts = ("forward", "backward") if what == "both" else (what,)
                return [sum(t[p][i] for p in parts) for t in times[side, P]]
            cpu = statistics.median(seconds("this", 0))
            line = (f"{f'P={P} ({label})':<28} {what:<9} {flops:>11,} {cpu * 1e6:>9.1f} "
                    f"{statistics.median(seconds('this', 1)) * 1e6:>9.1f} {flops / cpu / 1e9:>8.2f} "
                    f"{flops / cpu / rate:>8.1%}")
            if args.against:
                ratios = [o / t for o, t in zip(seconds("other", 0), seconds("this", 0))]
                line += (f" {statistics.median(seconds('other', 0)) * 1e6:>9.1f} {statistics.median(ratios):>11.3f}"
                         f" {f'({min(ratios):.2f}-{max(ratios):.2f})':>13}")
            print(line)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
