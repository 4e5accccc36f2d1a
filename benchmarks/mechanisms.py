"""What the heads did, for every shipped checkpoint: one table of every mechanism metric.

    .venv/bin/python benchmarks/mechanisms.py                    # checkpoints/, 500 test-stream sequences each
    .venv/bin/python benchmarks/mechanisms.py --samples 200 --folder runs

Each NTM checkpoint is recorded on held-out sequences of its own task's training range
(ntmviz.mechanisms.measure: the test stream, never the training one) and every mechanism its
task defines is measured (ntmviz/tasks/*.py say what each means). LSTM baselines have no
memory, so there is nothing to measure: the table says so. Prints a Markdown table (value with
its 95% interval, the number of sequences it applied to, the target and whether the model meets
it), then each checkpoint's verdicts in plain words.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ntmviz import checkpoint
from ntmviz.mechanisms import measure

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--samples", type=int, default=500, help="held-out sequences per checkpoint")
    parser.add_argument("--stream", default="test", choices=["test", "validation"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these models)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = ["| checkpoint | mechanism | value [95% interval] | n | target | shows |",
            "| --- | --- | ---: | ---: | --- | --- |"]
    verdicts = []
    for path in sorted(args.folder.glob("*.safetensors")):
        ckpt = checkpoint.load(path, device="cpu")
        name = path.stem
        if ckpt.task is None:
            rows.append(f"| {name} | (the checkpoint names no task) | | | | |")
            continue
        if getattr(ckpt.config, "memory_slots", None) is None:
            rows.append(f"| {name} | none: an LSTM baseline has no memory, so no heads to measure | | | | |")
            continue
        start = time.perf_counter()
        (report,) = measure(ckpt.model, ckpt.task, stream=args.stream, seed=args.seed, samples=args.samples)
        seconds = time.perf_counter() - start
        for r in report.results:
            lo, hi = r.interval
            rows.append(f"| {name} | {r.title} | {r.value:.3f} [{lo:.3f}, {hi:.3f}] | {r.samples} | "
                        f"{r.mechanism.target} | {'yes' if r.passes else '**no**'} |")
        lag = "" if report.lag is None else f" (playback lag {report.lag})"
        verdicts.append(f"{name}: {ckpt.task.describe()}{lag}; {seconds:.0f} s\n"
                        + "\n".join(f"  - {r.verdict} ({'meets' if r.passes else 'misses'} {r.mechanism.target}, "
                                    f"n={r.samples})" for r in report.results))
        print(f"measured {name} in {seconds:.0f} s", flush=True)
    print()
    print(f"What the heads did: {args.samples} sequences per checkpoint from the {args.stream} stream "
          f"(seed {args.seed}), on each checkpoint's training range; n = sequences a mechanism applied to.")
    print()
    print("\n".join(rows))
    print()
    print("\n\n".join(verdicts))


if __name__ == "__main__":
    main()
