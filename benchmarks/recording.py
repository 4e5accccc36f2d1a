"""What recording costs: plain inference vs `ntmviz.record`, side by side in one run.

    python benchmarks/recording.py [--repeats 7] [--batches 1 32] [--steps 100]
    python benchmarks/recording.py --app ngrams-ntm 4999    # the explorer's Run, side by side
    python benchmarks/recording.py --against DIR            # and another checkout's ntmviz beside this one

For an NTM with N=128, M=20, an LSTM controller of 100, input 9 and output 8, over T steps,
at each batch size: the median time of `model(inputs)` under torch.inference_mode(), the
median time of `ntmviz.record(model, inputs)`, and their ratio (target: <= 1.2).
Repetitions are interleaved (plain, recorded, plain, recorded, ...) after a warm-up so both
see the same machine state. Uses the machine's default number of threads unless --threads
is given. The load average is printed: on a shared, busy machine two threads per process
oversubscribe the cores and wall times are dominated by waiting, so compare ratios from one
run only, never absolute times across runs.

--against DIR also times plain and recorded inference with the ntmviz of another checkout DIR (e.g.
a `git worktree` of the previous commit; no virtualenv of its own needed). Each checkout then runs
in a worker process of its own (this script with `--worker`, the checkout first on PYTHONPATH)
that builds the same model and times one call per request, so the two checkouts' calls interleave
(which goes first alternates); it prints each side's medians and this checkout's speed over the
other's. At batch 32 a process's recorded time is bimodal, by where glibc's dynamic mmap threshold
settled (some 12,700 page faults a call, or none): MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=17179869184 in the environment fix it for both (benchmarks/README.md).

--app CHECKPOINT LENGTH times what the explorer's Run does with a long input (a shipped
checkpoint's task at LENGTH, seed 0), interleaved with the plain recording of the same input:
`ntmviz.record` alone; `sources.record_episode` (the sampling and the size check before it);
and that plus the first message of each of the five views (`EpisodePayload.initial`), which is
what a session sends before the page can draw.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import ntmviz

from checkout_worker import CheckoutWorker  # beside this script (sys.path[0] when run)

TARGET = 1.2


def build_model() -> ntmviz.NTM:
    torch.manual_seed(0)
    config = ntmviz.NTMConfig(input_size=9, output_size=8, memory_slots=128, memory_width=20,
                              controller="lstm", controller_size=100)
    return ntmviz.NTM(config).eval()


def plain(model: ntmviz.NTM, inputs: torch.Tensor) -> None:
    with torch.inference_mode():
        model(inputs)


def recorded(model: ntmviz.NTM, inputs: torch.Tensor) -> None:
    ntmviz.record(model, inputs)


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def make_inputs(batch: int, steps: int) -> torch.Tensor:
    return torch.rand(batch, steps, 9, generator=torch.Generator().manual_seed(batch))


KINDS = {"plain": plain, "recorded": recorded}


class Worker(CheckoutWorker):
    """`plain` and `recorded` with one checkout's ntmviz, in a process of its own: this script with
    `--worker` (checkout_worker.py), which builds the same model and times one call per request.
    With --against, both checkouts run so, alike."""

    def __init__(self, checkout: Path, threads: int | None):
        super().__init__(Path(__file__), checkout, [] if threads is None else ["--threads", str(threads)])

    def timed(self, kind: str, batch: int, steps: int) -> tuple[float, float]:
        return self.ask(f"{kind} {batch} {steps}")


def worker() -> None:
    """--worker: say which ntmviz this is, then time "kind batch steps" requests, one call each. Each
    timed call follows an untimed one of the same kind: a call right after the other process ran
    starts on cold caches (some 10% slower at batch 1), and which calls that hits would depend on
    the order, not on the checkout."""
    model = build_model()
    print(ntmviz.__file__, flush=True)
    for line in sys.stdin:
        kind, batch, steps = line.split()
        inputs = make_inputs(int(batch), int(steps))
        KINDS[kind](model, inputs)
        print(*timed(KINDS[kind], model, inputs), flush=True)


def measure(model, batch: int, steps: int, repeats: int, workers: dict[str, Worker] | None = None,
            warmup: int = 2) -> dict[tuple[str, str], tuple[float, float]]:
    """Median (wall, cpu) of plain and of recorded inference: {(side, kind): ...}, side "this"
    (in this process, or workers["this"]) and, with workers, "against"."""
    inputs = make_inputs(batch, steps)

    def call(side: str, kind: str) -> tuple[float, float]:
        if workers:
            return workers[side].timed(kind, batch, steps)
        return timed(KINDS[kind], model, inputs)

    calls = [(side, kind) for side in (workers or ("this",)) for kind in KINDS]
    for _ in range(warmup):
        for c in calls:
            call(*c)
    times = {c: [] for c in calls}
    for i in range(repeats):
        # Alternate the order, so none always follows another.
        for c in calls if i % 2 == 0 else calls[::-1]:
            times[c].append(call(*c))
    return {c: tuple(statistics.median(t[j] for t in ts) for j in range(2)) for c, ts in times.items()}


def app_run(name: str, length: int, repeats: int) -> None:
    """The explorer's Run at `length` against the plain recording of the same input (module docstring)."""
    from ntmviz.app.payload import ALL_VIEWS, EpisodePayload
    from ntmviz.app.sources import load_source, record_episode

    source = load_source(name)
    batch = source.task.at(length).sample(1, seed=0)

    def plain_record() -> None:
        ntmviz.record(source.model, batch)

    def run() -> None:
        record_episode(source, length, 0)

    def run_and_send() -> None:
        episode = record_episode(source, length, 0)
        for view in ALL_VIEWS:
            EpisodePayload(episode, [view]).initial(0)

    rows = {"ntmviz.record": plain_record, "record_episode (Run)": run, "Run + the views' first messages": run_and_send}
    times: dict[str, list[float]] = {k: [] for k in rows}
    for fn in rows.values():
        fn()  # warm-up
    for i in range(repeats):
        order = list(rows.items()) if i % 2 == 0 else list(rows.items())[::-1]
        for key, fn in order:
            times[key].append(timed(fn)[0])
    base = statistics.median(times["ntmviz.record"])
    print(f"\n{name} at length {length} ({int(batch.lengths[0])} steps), seed 0; median of {repeats}, "
          f"interleaved; load average {os.getloadavg()[0]:.1f}")
    for key in rows:
        med = statistics.median(times[key])
        print(f"{key:>34} {med:8.2f} s  {med / base:5.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: leave as is)")
    parser.add_argument("--app", nargs=2, metavar=("CHECKPOINT", "LENGTH"), default=None,
                        help="time the explorer's Run of a shipped checkpoint at LENGTH instead")
    parser.add_argument("--against", type=Path, default=None,
                        help="another ntmviz checkout (e.g. the commit before a change) to time beside this one")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # see Worker
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker()
        return 0
    if args.app is not None:
        app_run(args.app[0], int(args.app[1]), max(1, args.repeats // 2))
        return 0

    model = build_model()
    here = Path(ntmviz.__file__).resolve().parent.parent  # the checkout of the ntmviz this process imported
    workers = {"this": Worker(here, args.threads), "against": Worker(args.against, args.threads)} if args.against \
        else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {model.device}; "
          f"N=128 M=20 T={args.steps} LSTM 100, I=9 O=8; median of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    # CPU time is printed beside wall time: on a busy machine it is the steadier of the two.
    print(f"{'batch':>5} | {'plain (ms)':>10} | {'recorded (ms)':>13} | {'ratio':>5} | {'CPU-time ratio':>14}")
    print(f"{'-' * 5}-|-{'-' * 10}-|-{'-' * 13}-|-{'-' * 5}-|-{'-' * 14}")
    worst = 0.0
    measured = {}
    for batch in args.batches:
        measured[batch] = m = measure(model, batch, args.steps, args.repeats, workers)
        (p, p_cpu), (r, r_cpu) = m["this", "plain"], m["this", "recorded"]
        worst = max(worst, r / p)
        print(f"{batch:>5} | {p * 1e3:>10.1f} | {r * 1e3:>13.1f} | {r / p:>5.2f} | {r_cpu / p_cpu:>14.2f}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET})")
    if workers:
        for w in workers.values():
            w.close()
        print(f"\nthis: {here}, against: {workers['against'].checkout}; load average {os.getloadavg()[0]:.1f}; "
              f"speed: this checkout's over the other's, from the median times (> 1: this one is faster), wall / CPU")
        print(f"{'batch':>5} | {'kind':>8} | {'against (ms)':>12} | {'this (ms)':>9} | {'speed':>11}")
        for batch, m in measured.items():
            for kind in KINDS:
                (a, a_cpu), (t, t_cpu) = m["against", kind], m["this", kind]
                speed = f"{a / t:>5.3f}/{a_cpu / t_cpu:.3f}"
                print(f"{batch:>5} | {kind:>8} | {a * 1e3:>12.1f} | {t * 1e3:>9.1f} | {speed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
