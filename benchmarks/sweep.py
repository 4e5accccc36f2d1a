"""Sweep throughput on this machine: finished runs per minute with 1, 2 and 4 Dask worker processes.

    .venv/bin/python benchmarks/sweep.py [--seeds 8] [--steps 100]

Each measurement runs the same small sweep (copy at lengths 1-5, 2 learning rates x `--seeds`
seeds, `--steps` steps per run, two seeds per Dask task) on a fresh local cluster of N
single-threaded worker processes, into a fresh folder, and divides the runs by the wall time
(cluster start-up included, which is what a user waits for). More workers than cores share
the cores: expect no gain past the core count.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from ntmviz.sweep import Sweep, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    sweep = Sweep.create("copy", seeds=range(args.seeds), grid={"lr": [1e-3, 3e-3]}, steps=args.steps,
                         fixed={"task.max_length": 5, "batch_size": 8}, validation_samples=50, ensemble_size=2)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {2 * args.seeds} runs of "
          f"{args.steps} steps each")
    print(f"{'workers':>7} {'runs':>5} {'seconds':>8} {'runs/min':>9}")
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            rows = run_sweep(sweep, folder, workers=workers)
            seconds = time.perf_counter() - start
        print(f"{workers:>7} {len(rows):>5} {seconds:8.1f} {60 * len(rows) / seconds:9.1f}", flush=True)


if __name__ == "__main__":
    main()
