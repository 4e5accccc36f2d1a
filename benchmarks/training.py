"""Training speed on the copy task (N=128, M=20, LSTM controller of 100, lengths 1-20).

    .venv/bin/python benchmarks/training.py               # throughput table + time to solve copy
    .venv/bin/python benchmarks/training.py --no-solve    # throughput only (about a minute)

Prints sequences per second at batch 1 and batch 32, with torch's default thread count
and with one thread, measured side by side in this run (interleaved rounds, median), then
the wall time for `ntmviz train`'s recipe to solve copy: below 0.05 bit errors per sequence
on 200 fresh sequences of lengths 1-20, checked every 100 steps.

For scale, the issue quotes, on this machine kind, the most-used public PyTorch NTM at about
75-135 ms per sequence at batch 1 (7-13 sequences/s) and ~110 sequences/s for a plain batched
NTM at batch 32; those figures are quoted, not re-measured here.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import ntmviz
from ntmviz.tasks import get_task
from ntmviz.evaluate import evaluate
from ntmviz.train import Trainer

REFERENCE_BATCH1 = (7.4, 13.3)  # sequences/s: 135 and 75 ms per sequence (quoted in the issue)


def make_trainer(batch_size: int, seed: int = 0, lr: float = 3e-3) -> Trainer:
    torch.manual_seed(seed)
    task = get_task("copy")
    model = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, 128, 20))
    return Trainer(model, task, batch_size=batch_size, lr=lr, seeds=seed)


def throughput(trainer: Trainer, seconds: float) -> float:
    """Sequences per second over about `seconds` of training steps."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train_step()
        done += trainer.batch_size
    return done / (time.perf_counter() - start)


def measure(rounds: int, seconds: float) -> list[tuple[int, int, float]]:
    default_threads = torch.get_num_threads()
    configs = [(b, t) for b in (1, 32) for t in sorted({default_threads, 1}, reverse=True)]
    trainers = {b: make_trainer(b) for b in (1, 32)}
    for b in trainers:  # warm-up
        throughput(trainers[b], 1.0)
    results: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    for _ in range(rounds):  # interleaved, so load on the machine hits every config alike
        for b, t in configs:
            torch.set_num_threads(t)
            results[(b, t)].append(throughput(trainers[b], seconds))
    torch.set_num_threads(default_threads)
    return [(b, t, statistics.median(v)) for (b, t), v in results.items()]


def solve(limit_seconds: float, seed: int) -> tuple[float, int, float] | None:
    """Train with the shipped recipe until copy is solved; (seconds, sequences, bit errors)."""
    torch.set_num_threads(1)
    trainer = make_trainer(32, seed=seed)
    task = trainer.task
    while trainer.seconds < limit_seconds:
        start = time.perf_counter()
        for _ in range(100):
            trainer.train_step()
        trainer.seconds += time.perf_counter() - start
        errors = evaluate(trainer.model, task, stream="validation", samples=200)[0].bit_errors
        print(f"  {trainer.seconds:6.0f} s  {trainer.sequences:7d} sequences  {errors:8.3f} bit errors/seq", flush=True)
        if errors < 0.05:
            return trainer.seconds, trainer.sequences, errors
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--no-solve", action="store_true")
    parser.add_argument("--limit", type=float, default=900, help="give up solving after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = measure(args.rounds, args.seconds)
    base = {t: r for b, t, r in rows if b == 1}
    print("\ncopy, N=128, M=20, LSTM 100, lengths 1-20, Adam; training steps (forward, backward, update)")
    print(f"{'batch':>5} {'threads':>7} {'seq/s':>8} {'ms/seq':>7} {'x batch 1':>9} {'x ref b1 (7.4-13.3/s)':>22}")
    for b, t, r in rows:
        lo, hi = r / REFERENCE_BATCH1[1], r / REFERENCE_BATCH1[0]
        print(f"{b:>5} {t:>7} {r:8.1f} {1000 / r:7.2f} {r / base[t]:9.1f} {lo:10.1f} - {hi:<9.1f}")

    if not args.no_solve:
        print("\nsolving copy (batch 32, Adam lr 3e-3, clip 10, 1 thread) until < 0.05 bit errors/seq:")
        solved = solve(args.limit, args.seed)
        if solved is None:
            print(f"not solved within {args.limit:.0f} s")
        else:
            seconds, sequences, errors = solved
            print(f"solved in {seconds:.0f} s of training ({seconds / 60:.1f} min), {sequences} sequences, "
                  f"{errors:.3f} bit errors/seq")


if __name__ == "__main__":
    main()
