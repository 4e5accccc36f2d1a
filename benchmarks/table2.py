"""Joulin & Mikolov 2015, Table 2, measured here: next-symbol prediction on a^n b^n, a^n b^n c^n,
a^n b^n c^n d^n, a^n b^2n and a^n b^m c^(n+m), trained on n < 20 and tested on n from 2 to 60, for
the stack-augmented RNN and an LSTM of comparable size.

    benchmarks/table2.py --train            # prints the 10 training commands (3 seeds each)
    benchmarks/table2.py [--runs runs/table2] [--samples 20] [--seed 0]
        # scores every run and rewrites the table in docs/explicit-memory.md
    benchmarks/table2.py --check --seed 7   # other test sequences; writes nothing

Per language and model: the seed is chosen on the validation stream (its predictions on n = 2-60,
as the test below, but other sequences); every seed is then scored on the test stream: of the
predictable symbols (the ones the counting rule decides: tasks/languages.py), the fraction
predicted right at each n, averaged over n = 2-60 (`--samples` items of 3 strings per n), and the fraction of n whose
strings were all right (the paper's measure: "the percent of n for which the model predicts the
sequences correctly").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ntmviz import checkpoint
from ntmviz.evaluate import mean_interval
from ntmviz.tasks.languages import table2

from figure2a import replace_block  # beside this script (sys.path[0] when run)

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "explicit-memory.md"
BEGIN, END = "<!-- table2:begin -->", "<!-- table2:end -->"
TASKS = ("anbn", "anbncn", "anbncndn", "anb2n", "anbmcnm")
TITLES = {"anbn": "aⁿbⁿ", "anbncn": "aⁿbⁿcⁿ", "anbncndn": "aⁿbⁿcⁿdⁿ", "anb2n": "aⁿb²ⁿ", "anbmcnm": "aⁿbᵐcⁿ⁺ᵐ"}
MODELS = {"stack_rnn": ("Stack RNN", "--controller-size 40 --stacks 2 --stack-depth 60"),
          "lstm": ("LSTM", "--hidden-size 40 --layers 1")}
SIZES = range(2, 61)


def command(task: str, model: str, runs: Path) -> str:
    return (f"ntmviz train --task {task} --model {model} {MODELS[model][1]} --seeds 0-2 --batch-size 16 "
            f"--steps 6000 --checkpoint-every 500 --validate-every 500 --threads 1 "
            f"--out {runs}/{task}-{model}.safetensors")


def score(ckpt, stream: str, seed: int, samples: int):
    model = ckpt.model.eval()
    return table2(model, ckpt.task, SIZES, samples=samples, seed=seed, stream=stream)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "table2")
    parser.add_argument("--samples", type=int, default=20, help="test-stream items (3 strings each) per n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", action="store_true", help="print the training commands and stop")
    parser.add_argument("--check", action="store_true", help="print the table; write nothing")
    args = parser.parse_args()
    if args.train:
        for task in TASKS:
            for model in MODELS:
                print(command(task, model, args.runs))
        return 0
    torch.set_num_threads(1)
    header = "| language | " + " | ".join(f"{name}: symbols right | n solved" for name, _ in MODELS.values()) + " |"
    lines = [header, "| --- |" + " ---: | ---: |" * len(MODELS)]
    for task in TASKS:
        cells = [TITLES[task]]
        for kind in MODELS:
            files = sorted(args.runs.glob(f"{task}-{kind}-seed*.best.safetensors"))
            if not files:
                cells += ["not trained", ""]
                continue
            ckpts = [checkpoint.load(f, device="cpu") for f in files]
            chosen = max(range(len(ckpts)),
                         key=lambda i: np.mean(score(ckpts[i], "validation", 0, max(4, args.samples // 4)).symbols))
            tests = [score(c, "test", args.seed, args.samples) for c in ckpts]
            best = tests[chosen]
            per_n = np.array(best.symbols)  # [n]: each n weighs the same, as in the paper's "percent of n"
            lo, hi = mean_interval(per_n)
            cells.append(f"{100 * per_n.mean():.1f} [{100 * lo:.1f}, {100 * hi:.1f}]<br>seeds "
                         + "/".join(f"{100 * np.mean(t.symbols):.0f}" for t in tests))
            cells.append(f"{100 * best.solved:.0f}%<br>seeds " + "/".join(f"{100 * t.solved:.0f}" for t in tests))
            print(f"{task} {kind}: chose seed {ckpts[chosen].meta.get('seed')}; symbols "
                  + " ".join(f"{np.mean(t.symbols):.3f}" for t in tests) + "; solved " + " ".join(f"{t.solved:.2f}" for t in tests),
                  flush=True)
        lines.append("| " + " | ".join(cells) + " |")
    block = "\n".join([
        BEGIN,
        f"Trained on n = 1-19, tested on n = 2-60 ({args.samples} test-stream items of 3 strings per n, seed "
        f"{args.seed}); the seed chosen on the validation stream, its fraction of predictable symbols right (the mean "
        "over n, with its 95% bootstrap interval) and of n whose strings were all right, then every seed's:",
        "",
        *lines,
        END,
    ])
    print(block)
    if args.check:
        return 0
    replace_block(PAGE, BEGIN, END, block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
