"""Training speed on the copy task (N=128, M=20, LSTM controller of 100, lengths 1-20), side by side.

    .venv/bin/python benchmarks/training.py                      # throughput table, then time to solve copy
    .venv/bin/python benchmarks/training.py --no-solve           # the table only (a few minutes)
    .venv/bin/python benchmarks/training.py --solve-only         # the time to solve copy only
    .venv/bin/python benchmarks/training.py --reference DIR --reference-python PY
        # also runs loudinthecloud/pytorch-ntm's `train.py --task copy` (batch 1) from DIR with its own
        # interpreter PY, in the same interleaved rounds, so every ratio compares runs of one time window
    .venv/bin/python benchmarks/training.py --no-solve --against DIR
        # every row also for the ntmviz of another checkout DIR (e.g. a `git worktree` of the previous
        # commit), measured right beside this one's in each round (which goes first alternates), and
        # the speed ratio of each pair: before and after a change, in one time window

Rows, each measured with 1 and 2 torch threads in interleaved rounds (median of the rounds); the
in-process rows run with the C heap set as `ntmviz train` sets it (ntmviz/heap.py):

- batch 1: `Trainer.train_step` at batch 1 (sequences per second of training steps)
- batch 32 (CLI): `ntmviz train --batch-size 32` in a subprocess, as a user runs it (its own seq/s)
- seeds 1 x 16 and 8 x 16: milliseconds per training step of one model at batch 16 and of an
  8-seed ensemble at batch 16 per seed (one batched computation); the ratio is the issue's target
- reference b1: pytorch-ntm's own "ms/sequence" log at batch 1 (when --reference is given)
- on a GPU (or `--device-rows DEVICE`): batch 1, 32, 256 and a 64-seed ensemble at batch 16, each on
  the CPU and on the device in interleaved rounds of one run, and the device's speed over the CPU's

Then "solved": a 2-seed ensemble (`--solve-seeds`), batch 16 per seed, Adam 3e-3, with a 4-stage
curriculum of lengths, trained until one seed scores at least 99% exact sequences (and < 0.01
bit errors per sequence) on 500 held-out validation-stream sequences of lengths 1-20, checked
every 50 steps; it prints the training seconds (checks excluded) and the wall time, for 4
ensembles of disjoint seeds (`--solve-repeats`: 0-1, 2-3, 4-5, 6-7), and their spread. (Eight
seeds without a curriculum took 204 s; eight with it 96 s, four 55 s: on 2 cores a step of K
seeds costs nearly K times one, and two seeds already give one that solves.)

With --against DIR, the in-process rows of this checkout and of DIR each run in a worker process
of their own, alike (this script with `--worker`, the checkout first on PYTHONPATH and as its
working directory; it checks which ntmviz the worker imported), and each CLI row runs its own
checkout's `ntmviz train`; DIR needs no virtualenv of its own. The table then gives, per row, the
median of each round's ratio and their range, by wall time and by the process's CPU time.

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
from ntmviz.tasks import get_task
from ntmviz.train import Trainer

from checkout_worker import CheckoutWorker  # beside this script (sys.path[0] when run)

ROOT = Path(__file__).resolve().parent.parent
TASK = get_task("copy")
CONFIG = ntmviz.NTMConfig(TASK.input_size, TASK.output_size, 128, 20)


def make_trainer(seeds: list[int], batch_size: int, lr: float = 3e-3, device: str = "cpu", curriculum: int = 0) -> Trainer:
    return Trainer(ntmviz.build_model(CONFIG, seeds=seeds).to(device), TASK, seeds=seeds, batch_size=batch_size, lr=lr,
                   curriculum=curriculum)


def steps_for(trainer: Trainer, seconds: float, sync=lambda: None) -> tuple[int, float, float]:
    """(steps, wall seconds, this process's CPU seconds) of training steps for about `seconds`;
    `sync` waits for a device's queued work before the clock is read (once, at the end: the host
    may run ahead of the device meanwhile, as it does in training)."""
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        trainer.train_step()
        done += 1
    sync()
    return done, time.perf_counter() - start, time.process_time() - cpu


def cpu_seconds(pid: int) -> float | None:
    """A process's user + system CPU seconds so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cli_rate(threads: int, seconds: float, checkout: Path) -> tuple[float, float | None]:
    """Sequences per second of `ntmviz train --batch-size 32` over ~`seconds`, from its own log, per
    wall second and per CPU second of the process; with the ntmviz of `checkout` (first on the path,
    and the working directory, which `-m` puts first)."""
    cmd = [sys.executable, "-m", "ntmviz.cli", "train", "--task", "copy", "--batch-size", "32", "--steps", "10000000",
           "--threads", str(threads), "--checkpoint-every", "10000000", "--validate-every", "10000000", "--quiet",
           "--out", str(Path(os.environ.get("TMPDIR", "/tmp")) / "ntmviz-bench.safetensors")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(checkout)}, cwd=checkout)
    points: list[tuple[int, float, float | None]] = []  # (sequences, wall, CPU seconds) at each log line
    start = time.perf_counter()
    try:
        for line in proc.stdout:
            m = re.search(r"sequences (\d+) .* seconds (\d+)", line)
            if m:
                points.append((int(m.group(1)), time.perf_counter(), cpu_seconds(proc.pid)))
            if time.perf_counter() - start > seconds and len(points) >= 3:
                break
    finally:
        proc.kill()
        proc.wait()
    (s0, t0, c0), (s1, t1, c1) = points[1], points[-1]  # skip the first log line: start-up
    return (s1 - s0) / (t1 - t0), None if c0 is None or c1 == c0 else (s1 - s0) / (c1 - c0)


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


IN_PROCESS = ("batch 1", "seeds 1 x 16 ms/step", "seeds 8 x 16 ms/step")  # rows timed in this process
ROWS = ("batch 1", "batch 32 (CLI)", "seeds 1 x 16 ms/step", "seeds 8 x 16 ms/step")
AGAINST = " (against)"  # the suffix of the --against checkout's rows in measure's results
HERE = Path(ntmviz.__file__).resolve().parent.parent  # the checkout of the ntmviz this process imported


def make_trainers() -> dict[str, Trainer]:
    """The trainers of the in-process rows, warmed up."""
    trainers = dict(zip(IN_PROCESS, (make_trainer([0], 1), make_trainer([0], 16), make_trainer(list(range(8)), 16))))
    for trainer in trainers.values():
        steps_for(trainer, 1.0)
    return trainers


def row_value(trainers: dict[str, Trainer], row: str, threads: int, seconds: float) -> tuple[float, float]:
    """One measurement of an in-process row, by wall and by CPU time: sequences per second at
    batch 1, else ms per step."""
    torch.set_num_threads(threads)
    steps, wall, cpu = steps_for(trainers[row], seconds)
    return (steps / wall, steps / cpu) if row == "batch 1" else (1000 * wall / steps, 1000 * cpu / steps)


class Worker(CheckoutWorker):
    """The rows of one checkout's ntmviz (--against): the in-process ones in a process of its own
    (this script with `--worker`: checkout_worker.py), one measurement per request; the CLI row
    through cli_rate with that checkout."""

    def __init__(self, checkout: Path):
        super().__init__(Path(__file__), checkout)  # answers once it has warmed up

    def value(self, row: str, threads: int, seconds: float) -> tuple[float, float | None]:
        if row == "batch 32 (CLI)":
            return cli_rate(threads, seconds * 2, self.checkout)
        return self.ask(f"{threads} {seconds} {row}")


def worker() -> None:
    """--worker: warm up, say which ntmviz this is, then answer "threads seconds row" lines."""
    trainers = make_trainers()
    print(ntmviz.__file__, flush=True)
    for line in sys.stdin:
        threads, seconds, row = line.rstrip("\n").split(" ", 2)
        print(*row_value(trainers, row, int(threads), float(seconds)), flush=True)


def measure(args) -> dict[tuple[str, int], list[tuple[float, float | None]]]:
    """{(row, threads): [(value by wall time, by CPU time or None), one per round]}. With --against,
    this checkout and that one each in a Worker, and also (row + AGAINST, threads): every row of
    one measured right beside the other's, which of the two goes first alternating by round."""
    thread_counts = sorted({1, min(2, os.cpu_count() or 1)})
    results: dict[tuple[str, int], list[tuple[float, float | None]]] = {}
    if args.against:
        sides = [("", Worker(HERE)), (AGAINST, Worker(args.against))]
    else:
        trainers = make_trainers()
        sides = [("", None)]

    def value(side: Worker | None, row: str, threads: int) -> tuple[float, float | None]:
        if side is not None:
            return side.value(row, threads, args.seconds)
        if row == "batch 32 (CLI)":
            return cli_rate(threads, args.seconds * 2, HERE)
        return row_value(trainers, row, threads, args.seconds)

    for i in range(args.rounds):  # interleaved: load on the machine hits every row alike
        if args.against:
            print(f"round {i + 1} of {args.rounds}, load average {os.getloadavg()[0]:.2f}", flush=True)
        for threads in thread_counts:
            for row in ROWS:
                for suffix, side in sides if i % 2 == 0 else sides[::-1]:
                    measured = value(side, row, threads)
                    results.setdefault((row + suffix, threads), []).append(measured)
            if args.reference:
                rate = reference_rate(args.reference, args.reference_python, threads, args.seconds * 3)
                if rate is not None:
                    results.setdefault(("reference b1", threads), []).append((rate, None))
    for _, side in sides:
        if side is not None:
            side.close()
    return results


# The device rows (issue 29): (seeds, batch per seed), timed on the CPU and on the device in one run.
DEVICE_ROWS = ((1, 1), (1, 32), (1, 256), (64, 16))


def device_rows(args) -> None:
    """Sequences per second of training steps at each DEVICE_ROWS shape, on the CPU (1 torch thread)
    and on `args.device_rows` in interleaved rounds, and the device's ratio to the CPU. A device's
    steps are timed to their end: torch.cuda.synchronize before the clock is read, so queued kernels
    count. With `--device-rows cpu` the same code runs here against itself (ratios near 1)."""
    device = args.device_rows
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.set_num_threads(1)
    load = os.getloadavg()
    rates: dict[tuple[str, int, int], list[float]] = {}  # ("cpu" | "device", seeds, batch): one rate per round
    for seeds, batch in DEVICE_ROWS:
        trainers = {side: make_trainer(list(range(seeds)), batch, device=where)
                    for side, where in (("cpu", "cpu"), ("device", device))}
        for trainer in trainers.values():  # warm up: kernels built, caches filled
            steps_for(trainer, 1.0)
        for i in range(args.rounds):
            for side in (("cpu", "device") if i % 2 == 0 else ("device", "cpu")):
                sync()
                steps, wall, _ = steps_for(trainers[side], args.seconds, sync if side == "device" else lambda: None)
                rates.setdefault((side, seeds, batch), []).append(seeds * batch * steps / wall)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else device
    print(f"\n{device} ({name}) beside the CPU (1 torch thread): copy as above, {args.rounds} interleaved rounds, "
          f"median sequences per second of training; load average before {load[0]:.2f}, after "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'row':>18} {'cpu seq/s':>10} {device + ' seq/s':>14} {'ratio':>7}")
    for seeds, batch in DEVICE_ROWS:
        cpu = statistics.median(rates[("cpu", seeds, batch)])
        there = statistics.median(rates[("device", seeds, batch)])
        label = f"batch {batch}" if seeds == 1 else f"{seeds} seeds x {batch}"
        print(f"{label:>18} {cpu:10.0f} {there:14.0f} {there / cpu:6.2f}x")


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


def keep_freed_memory() -> bool:
    """The in-process rows train in a process set up as `ntmviz train` sets up its own (the heap
    keeps a step's freed tape for the next: ntmviz/heap.py), where this process's ntmviz has it
    (an --against checkout from before it does not: it runs as it did)."""
    try:
        from ntmviz import heap
    except ImportError:
        return False
    return heap.keep_freed_memory()


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
    parser.add_argument("--against", type=Path, default=None,
                        help="another ntmviz checkout (e.g. the commit before a change) to time beside this one")
    parser.add_argument("--device-rows", default="cuda" if torch.cuda.is_available() else None,
                        help="also time batch 1, 32, 256 and a 64-seed ensemble on this device beside the CPU "
                             "(default: cuda when there is a GPU; 'cpu' runs the same code against itself)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # see Against
    args = parser.parse_args()
    keep_freed_memory()
    if args.worker:
        worker()
        return

    if not args.solve_only:
        print_table(args)
        if args.device_rows:
            device_rows(args)
    if args.solve_only or not args.no_solve:
        print(f"\nload average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        solve_spread(args)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


def print_table(args) -> None:
    """The throughput rows of the module docstring, measured and printed side by side."""
    load = os.getloadavg()
    results = measure(args)
    if args.against:
        print_against(args, load, results)
        return
    median = {k: statistics.median(v[0] for v in values) for k, values in results.items()}
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


def print_against(args, load, results) -> None:
    """This checkout beside --against's, row by row: medians, and the speed ratio of each round's pair."""
    print(f"\ncopy, N=128, M=20, LSTM 100, lengths 1-20, Adam; {args.rounds} interleaved rounds, median; "
          f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f"this: {HERE}; against: {args.against.resolve()}")
    print("speed: this checkout's speed over the other's (> 1: this one is faster), the median of the rounds' "
          "ratios and their range, by wall time and by the process's CPU time")
    print(f"{'row':>22} {'threads':>7} {'against':>8} {'this':>8} {'unit':<7} {'speed (wall)':>19} "
          f"{'speed (CPU)':>19}")

    def speeds(here, there, k: int, per_step: bool) -> str:
        ratios = sorted(b[k] / a[k] if per_step else a[k] / b[k] for a, b in zip(here, there)
                        if a[k] is not None and b[k] is not None)
        return f"{statistics.median(ratios):5.3f} {ratios[0]:.3f}-{ratios[-1]:.3f}" if ratios else ""

    for (row, threads), here in results.items():
        there = results.get((row + AGAINST, threads))
        if there is None:
            continue
        per_step = "ms/step" in row
        wall = [statistics.median(v[0] for v in values) for values in (there, here)]
        print(f"{row:>22} {threads:>7} {wall[0]:8.1f} {wall[1]:8.1f} {'ms/step' if per_step else 'seq/s':<7} "
              f"{speeds(here, there, 0, per_step):>19} {speeds(here, there, 1, per_step):>19}")


if __name__ == "__main__":
    main()
