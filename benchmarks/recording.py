"""What recording costs: plain inference vs `ntmviz.record`, side by side in one run.

    python benchmarks/recording.py [--repeats 7] [--batches 1 32] [--steps 100]
    python benchmarks/recording.py --app ngrams-ntm 4999    # the explorer's Run, side by side

For an NTM with N=128, M=20, an LSTM controller of 100, input 9 and output 8, over T steps,
at each batch size: the median time of `model(inputs)` under torch.inference_mode(), the
median time of `ntmviz.record(model, inputs)`, and their ratio (target: <= 1.2).
Repetitions are interleaved (plain, recorded, plain, recorded, ...) after a warm-up so both
see the same machine state. Uses the machine's default number of threads unless --threads
is given. The load average is printed: on a shared, busy machine two threads per process
oversubscribe the cores and wall times are dominated by waiting, so compare ratios from one
run only, never absolute times across runs.

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
import time

import torch

import ntmviz

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


def measure(model, batch: int, steps: int, repeats: int, warmup: int = 2) -> tuple[tuple, tuple]:
    """Median (wall, cpu) of plain and of recorded inference."""
    inputs = torch.rand(batch, steps, 9, generator=torch.Generator().manual_seed(batch))
    for _ in range(warmup):
        plain(model, inputs)
        recorded(model, inputs)
    plain_times, recorded_times = [], []
    for i in range(repeats):
        # Alternate which goes first, so neither always follows the other.
        if i % 2 == 0:
            plain_times.append(timed(plain, model, inputs))
            recorded_times.append(timed(recorded, model, inputs))
        else:
            recorded_times.append(timed(recorded, model, inputs))
            plain_times.append(timed(plain, model, inputs))
    def medians(times):
        return tuple(statistics.median(t[i] for t in times) for i in range(2))

    return medians(plain_times), medians(recorded_times)


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
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.app is not None:
        app_run(args.app[0], int(args.app[1]), max(1, args.repeats // 2))
        return 0

    model = build_model()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {model.device}; "
          f"N=128 M=20 T={args.steps} LSTM 100, I=9 O=8; median of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    # CPU time is printed beside wall time: on a busy machine it is the steadier of the two.
    print(f"{'batch':>5} | {'plain (ms)':>10} | {'recorded (ms)':>13} | {'ratio':>5} | {'CPU-time ratio':>14}")
    print(f"{'-' * 5}-|-{'-' * 10}-|-{'-' * 13}-|-{'-' * 5}-|-{'-' * 14}")
    worst = 0.0
    for batch in args.batches:
        (p, p_cpu), (r, r_cpu) = measure(model, batch, args.steps, args.repeats)
        worst = max(worst, r / p)
        print(f"{batch:>5} | {p * 1e3:>10.1f} | {r * 1e3:>13.1f} | {r / p:>5.2f} | {r_cpu / p_cpu:>14.2f}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
