"""Grefenstette et al. 2015, Figure 2a, measured here: whole-sequence accuracy on copy, reversal
and bigram flipping, for lengths beyond those trained on, of the LSTM, NTM, DNC, neural stack,
queue and deque, every model on the same test sequences.

    benchmarks/figure2a.py --train            # prints the 18 training commands (3 seeds each)
    benchmarks/figure2a.py [--runs runs/fig2a] [--samples 1000] [--seed 0]
        # scores every run and rewrites the table in docs/explicit-memory.md
    benchmarks/figure2a.py --check --seed 7   # scores again on other test sequences; writes nothing

Each configuration trains seeds 0-2 together (`ntmviz train --seeds 0-2`), each seed keeping its
best step on the validation stream (NAME-seedK.best.safetensors). Per configuration this script

1. chooses one seed on the validation stream (whole-sequence accuracy on the lengths trained on,
   then on the longer lengths; never the test stream);
2. scores every seed on `--samples` test-stream sequences of the training lengths and of the
   longer test lengths (the same sequences for every model);
3. writes, per task and model, the chosen seed's accuracy with its 95% Wilson interval, and every
   seed's accuracy (the spread over seeds).

A sequence is right when every bit of every output vector is (Score.exact).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from ntmviz import checkpoint
from ntmviz.evaluate import evaluate
from ntmviz.files import atomic_write

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "explicit-memory.md"
BEGIN, END = "<!-- figure2a:begin -->", "<!-- figure2a:end -->"
TASKS = ("copy", "reversal", "bigram_flip")
MODELS = {"lstm": "LSTM", "ntm": "NTM", "dnc": "DNC", "stack": "Stack", "queue": "Queue", "deque": "Deque"}
TRAIN = dict(bits=4, min_length=2, max_length=16)  # 16 symbols, lengths 2-16
LONGER = dict(min_length=17, max_length=32)  # up to twice the longest trained on
SEEDS = "0-2"
STEPS = 6000


def command(task: str, model: str, runs: Path) -> str:
    options = " ".join(f"--task-option {k}={v}" for k, v in TRAIN.items())
    return (f"ntmviz train --task {task} {options} --model {model} --memory-slots 32 --memory-width 16 "
            f"--controller-size 64 --hidden-size 128 --layers 2 --seeds {SEEDS} --batch-size 16 --steps {STEPS} "
            f"--checkpoint-every 500 --validate-every 500 --threads 1 --out {runs}/{task}-{model}.safetensors")


def score(ckpt, task, stream: str, seed: int, samples: int):
    """(accuracy, interval) on the training lengths and on the longer ones."""
    short = evaluate(ckpt.model, task, stream=stream, seed=seed, samples=samples)[0]
    long = evaluate(ckpt.model, task.replace(**LONGER), stream=stream, seed=seed, samples=samples)[0]
    return short, long


def percent(s) -> str:
    lo, hi = s.exact_interval
    return f"{100 * s.exact:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def measure(runs: Path, seed: int, samples: int, validation_samples: int) -> tuple[list[str], list[str]]:
    """The longer lengths' table and the training lengths' table, as markdown lines."""
    header = "| task | " + " | ".join(MODELS.values()) + " |"
    rule = "| --- |" + " ---: |" * len(MODELS)
    longer, trained = [header, rule], [header, rule]
    for task_name in TASKS:
        row_long, row_short = [task_name.replace("_", " ")], [task_name.replace("_", " ")]
        for kind in MODELS:
            files = sorted(runs.glob(f"{task_name}-{kind}-seed*.best.safetensors"))
            if not files:
                row_long.append("not trained")
                row_short.append("not trained")
                continue
            ckpts = [checkpoint.load(f, device="cpu") for f in files]
            keys = []
            for c in ckpts:
                short, long = score(c, c.task, "validation", 0, validation_samples)
                keys.append((-short.exact, -long.exact, short.loss))
            chosen = min(range(len(ckpts)), key=lambda i: keys[i])
            results = [score(c, c.task, "test", seed, samples) for c in ckpts]
            steps = max(c.step for c in ckpts)
            each_long = "/".join(f"{100 * r[1].exact:.0f}" for r in results)
            each_short = "/".join(f"{100 * r[0].exact:.0f}" for r in results)
            row_long.append(f"{percent(results[chosen][1])}<br>seeds {each_long}")
            row_short.append(f"{percent(results[chosen][0])}<br>seeds {each_short}")
            print(f"{task_name} {kind}: chose seed {ckpts[chosen].meta.get('seed')} (step {ckpts[chosen].step} of "
                  f"{steps}); longer {each_long} %, trained lengths {each_short} %", flush=True)
        longer.append("| " + " | ".join(row_long) + " |")
        trained.append("| " + " | ".join(row_short) + " |")
    return longer, trained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "fig2a")
    parser.add_argument("--samples", type=int, default=1000, help="test-stream sequences per cell")
    parser.add_argument("--validation-samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="which test-stream sequences")
    parser.add_argument("--train", action="store_true", help="print the training commands and stop")
    parser.add_argument("--check", action="store_true", help="print the tables; write nothing")
    args = parser.parse_args()
    if args.train:
        for task in TASKS:
            for model in MODELS:
                print(command(task, model, args.runs))
        return 0
    torch.set_num_threads(1)
    longer, trained = measure(args.runs, args.seed, args.samples, args.validation_samples)
    block = "\n".join([
        BEGIN,
        f"Whole-sequence accuracy (%) on lengths 17-32 (trained on 2-16), {args.samples} test-stream sequences "
        f"per cell (seed {args.seed}), the same for every model; the seed chosen on the validation stream with its "
        "95% Wilson interval, then every seed's accuracy:",
        "",
        *longer,
        "",
        "On the lengths trained on (2-16), the same seeds:",
        "",
        *trained,
        END,
    ])
    print(block)
    if args.check:
        return 0
    replace_block(PAGE, BEGIN, END, block)
    return 0


def replace_block(page: Path, begin: str, end: str, block: str) -> None:
    """Write `block` (which starts with `begin` and ends with `end`) over the page's block between
    those markers, atomically; SystemExit when the page has none."""
    text = page.read_text()
    if begin not in text:
        raise SystemExit(f"{page} has no {begin} ... {end} block to replace")
    atomic_write(page, re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S).encode())
    print(f"wrote {page}")


if __name__ == "__main__":
    raise SystemExit(main())
