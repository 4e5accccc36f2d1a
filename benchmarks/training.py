"""Training speed on the copy task (N=128, M=20, LSTM controller of 100, lengths 1-20), side by side.

    .venv/bin/python benchmarks/training.py                      # throughput table, then time to solve copy
    .venv/bin/python benchmarks/training.py --no-solve           # the table only (a few minutes)
    .venv/bin/python benchmarks/training.py --solve-only         # the time to solve copy only
    .venv/bin/python benchmarks/training.py --reference DIR --reference-python PY
        # also runs loudinthecloud/pytorch-ntm's `train.py --task copy` (batch 1) from DIR with its own
        # interpreter PY, in the same interleaved rounds, so every ratio compares runs of one time window

Rows, each measured with 1 and 2 torch threads in interleaved rounds (median of the rounds):

- batch 1: `Trainer.train_step` at batch 1 (sequences per second of training steps)
- batch 32 (CLI): `ntmviz train --batch-size 32` in a subprocess, as a user runs it (its own seq/s)
- seeds 1 x 16 and 8 x 16: milliseconds per training step of one model at batch 16 and of an
  8-seed ensemble at batch 16 per seed (one batched computation); the ratio is the issue's target
- reference b1: pytorch-ntm's own "ms/sequence" log at batch 1 (when --reference is given)
- a GPU row of the same when CUDA is present

Then "solved": a 2-seed ensemble (`--solve-seeds`), batch 16 per seed, Adam 3e-3, with a 4-stage
curriculum of lengths, trained until one seed scores at least 99% exact sequences (and < 0.01
bit errors per sequence) on 500 held-out validation-stream sequences of lengths 1-20, checked
every 50 steps; it prints the training seconds (checks excluded) and the wall time, for 4
ensembles of disjoint seeds (`--solve-repeats`: 0-1, 2-3, 4-5, 6-7), and their spread. (Eight
seeds without a curriculum took 204 s; eight with it 96 s, four 55 s: on 2 cores a step of K
seeds costs nearly K times one, and two seeds already give one that solves.)

The machine's load average is printed with the table: on a shared machine, compare the ratios,
which come from one time window, rather than the absolute rates.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import ntmviz
from ntmviz.evaluate import evaluate
from ntmviz.models import build_model
from ntmviz.tasks import get_task
from ntmviz.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
TASK = get_task("copy")
CONFIG = ntmviz.NTMConfig(TASK.input_size, TASK.output_size, 128, 20)


def make_trainer(seeds: list[int], batch_size: int, lr: float = 3e-3, device: str = "cpu", curriculum: int = 0) -> Trainer:
    return Trainer(build_model(CONFIG, seeds=seeds).to(device), TASK, seeds=seeds, batch_size=batch_size, lr=lr,
                   curriculum=curriculum)


def steps_for(trainer: Trainer, seconds: float) -> tuple[int, float]:
    """(steps, wall seconds) of training steps for about `seconds`."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train_step()
        done += 1
    return done, time.perf_counter() - start


def cli_rate(threads: int, seconds: float) -> float:
    """Sequences per second of `ntmviz train --batch-size 32` over ~`seconds`, from its own log."""
    cmd = [sys.executable, "-m", "ntmviz.cli", "train", "--task", "copy", "--batch-size", "32", "--steps", "10000000",
           "--threads", str(threads), "--checkpoint-every", "10000000", "--validate-every", "10000000", "--quiet",
           "--out", str(Path(os.environ.get("TMPDIR", "/tmp")) / "ntmviz-bench.safetensors")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    points: list[tuple[int, float]] = []  # (sequences, training seconds) from the log lines
    start = time.perf_counter()
    try:
        for line in proc.stdout:
            m = re.search(r"sequences (\d+) .* seconds (\d+)", line)
            if m:
                points.append((int(m.group(1)), time.perf_counter()))
            if time.perf_counter() - start > seconds and len(points) >= 3:
                break
    finally:
        proc.kill()
        proc.wait()
    (s0, t0), (s1, t1) = points[1], points[-1]  # skip the first log line: start-up
    return (s1 - s0) / (t1 - t0)


def reference_rate(directory: Path, python: str, threads: int, seconds: float) -> float | None:
    """Sequences per second of pytorch-ntm's copy task at batch 1, from its own ms/sequence log."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [python, "train.py", "--task", "copy", "--report-interval", "50", "--checkpoint-interval", "100000000",
           "--checkpoint-path", "/tmp"]
    proc = subprocess.Popen(cmd, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    times: list[int] = []
    start = time.perf_counter()
    try:
        buffer = ""
        while time.perf_counter() - start < seconds or len(times) < 2:
            chunk = proc.stderr.read(256)
            if not chunk:
                break
            buffer += chunk
            times = [int(t) for t in re.findall(r"Time: (\d+) ms/sequence", buffer)]
    finally:
        proc.kill()
        proc.wait()
    if len(times) < 2:
        return None
    return 1000.0 / statistics.median(times[1:])


def measure(args) -> dict[tuple[str, int], list[float]]:
    thread_counts = sorted({1, min(2, os.cpu_count() or 1)})
    single, ensemble, batch1 = make_trainer([0], 16), make_trainer(list(range(8)), 16), make_trainer([0], 1)
    for trainer in (single, ensemble, batch1):  # warm-up
        steps_for(trainer, 1.0)
    results: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):  # interleaved: load on the machine hits every row alike
        for threads in thread_counts:
            torch.set_num_threads(threads)
            steps, wall = steps_for(batch1, args.seconds)
            results.setdefault(("batch 1", threads), []).append(steps / wall)
            results.setdefault(("batch 32 (CLI)", threads), []).append(cli_rate(threads, args.seconds * 2))
            steps, wall = steps_for(single, args.seconds)
            results.setdefault(("seeds 1 x 16 ms/step", threads), []).append(1000 * wall / steps)
            steps, wall = steps_for(ensemble, args.seconds)
            results.setdefault(("seeds 8 x 16 ms/step", threads), []).append(1000 * wall / steps)
            if args.reference:
                rate = reference_rate(args.reference, args.reference_python, threads, args.seconds * 3)
                if rate is not None:
                    results.setdefault(("reference b1", threads), []).append(rate)
    if torch.cuda.is_available():
        gpu = make_trainer([0], 32, device="cuda")
        steps_for(gpu, 1.0)
        steps, wall = steps_for(gpu, args.seconds)
        results[("GPU batch 32", 0)] = [32 * steps / wall]
    return results


TARGET_SECONDS = 45  # the engine-speed issue's time to solve copy

SOLVING = ("solving copy: {repeats} ensembles of {seeds} seeds (seeds {first}-{last}), batch 16 per seed, Adam lr 3e-3, "
           "clip 10, a 4-stage curriculum of lengths, {threads} torch thread(s); validation every 50 steps")


def solve(limit_seconds: float, threads: int = 1, seeds: list[int] = (0, 1)) -> float | None:
    """Train one ensemble until a seed is exact on 99% of 500 validation-stream sequences (lengths
    1-20) with < 0.01 bit errors per sequence; print each check; return the training seconds
    (checks excluded), or None when not solved within `limit_seconds`. The curriculum grows the
    lengths in 4 stages as each seed masters the last (`Trainer(curriculum=4)`), so the first
    steps are short sequences, which are cheap."""
    torch.set_num_threads(threads)
    seeds = list(seeds)
    trainer = make_trainer(seeds, 16, curriculum=4)
    start = time.perf_counter()
    while trainer.seconds < limit_seconds:
        t = time.perf_counter()
        for _ in range(50):
            trainer.train_step()
        trainer.seconds += time.perf_counter() - t
        scores = evaluate(trainer.model, TASK, stream="validation", samples=500)
        k = min(range(len(seeds)), key=lambda i: scores[i].bit_errors)
        s = scores[k]
        print(f"  {trainer.seconds:6.1f} s training  {trainer.sequences:6d} sequences per seed  stages "
              f"{','.join(map(str, trainer.stages))}  best seed {seeds[k]}: {s.bit_errors:.3f} bit errors/seq, "
              f"{100 * s.exact:.1f}% exact", flush=True)
        if s.exact >= 0.99 and s.bit_errors < 0.01:
            print(f"solved by seed {seeds[k]} in {trainer.seconds:.1f} s of training ({time.perf_counter() - start:.0f} s "
                  f"wall with the checks), {trainer.sequences} sequences per seed", flush=True)
            return trainer.seconds
    print(f"not solved within {limit_seconds:.0f} s of training")
    return None


def solve_spread(args) -> None:
    """`solve` for --solve-repeats ensembles of disjoint seeds, then the spread of their times."""
    k, r = args.solve_seeds, args.solve_repeats
    print(SOLVING.format(repeats=r, seeds=k, first=0, last=k * r - 1, threads=args.solve_threads))
    times = []
    for i in range(r):
        seeds = list(range(i * k, (i + 1) * k))
        print(f"seeds {seeds[0]}-{seeds[-1]}:")
        times.append(solve(args.limit, args.solve_threads, seeds))
    solved = sorted(t for t in times if t is not None)
    within = sum(t <= TARGET_SECONDS for t in solved)
    print(f"time to solve copy: {len(solved)} of {r} ensembles solved; training seconds "
          + (f"median {statistics.median(solved):.1f}, min {solved[0]:.1f}, max {solved[-1]:.1f}; " if solved else "")
          + f"{within} of {r} within the issue's {TARGET_SECONDS} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per row (median)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--no-solve", action="store_true", help="skip the time-to-solve run")
    parser.add_argument("--solve-only", action="store_true", help="skip the table: only the time-to-solve run")
    parser.add_argument("--solve-threads", type=int, default=1, help="torch threads for the time-to-solve run")
    parser.add_argument("--solve-seeds", type=int, default=2, help="seeds per ensemble in the time-to-solve run")
    parser.add_argument("--solve-repeats", type=int, default=4,
                        help="ensembles of disjoint seeds in the time-to-solve run (the spread, not one lucky draw)")
    parser.add_argument("--limit", type=float, default=600, help="give up solving after this many training seconds")
    parser.add_argument("--reference", type=Path, default=None, help="a pytorch-ntm checkout to time beside ours")
    parser.add_argument("--reference-python", default=sys.executable, help="the interpreter of its virtualenv")
    args = parser.parse_args()

    if not args.solve_only:
        print_table(args)
    if args.solve_only or not args.no_solve:
        print(f"\nload average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        solve_spread(args)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


def print_table(args) -> None:
    """The throughput rows of the module docstring, measured and printed side by side."""
    load = os.getloadavg()
    results = measure(args)
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"\ncopy, N=128, M=20, LSTM 100, lengths 1-20, Adam; {args.rounds} interleaved rounds, median; "
          f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f"{'row':>22} {'threads':>7} {'value':>10}  {'vs reference b1':>16}")
    for (row, threads), value in sorted(median.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ref = median.get(("reference b1", threads))
        unit = "ms/step" if "ms/step" in row else "seq/s"
        ratio = f"{value / ref:14.1f}x" if ref and unit == "seq/s" and row != "reference b1" else ""
        print(f"{row:>22} {threads:>7} {value:8.1f} {unit:<7} {ratio}")
    for threads in sorted({t for _, t in median}):
        one, eight = median.get(("seeds 1 x 16 ms/step", threads)), median.get(("seeds 8 x 16 ms/step", threads))
        if one and eight:
            print(f"threads {threads}: an 8-seed ensemble step takes {eight / one:.2f}x one seed's at batch 16 "
                  f"({8 * 16 * 1000 / eight:.0f} against {16 * 1000 / one:.0f} sequences per second)")

if __name__ == "__main__":
    main()
