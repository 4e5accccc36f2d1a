"""Ship one configuration: choose a seed on the validation stream, report it on the test stream.

    .venv/bin/python benchmarks/ship.py --name copy-ntm runs/copy/copy-ntm-seed*.best.safetensors

The files given are every seed trained for one configuration (each already the checkpoint its
own run chose on the validation stream: `ntmviz train` writes them as NAME.best.safetensors).
This script

1. scores each on validation-stream sequences (never the test stream): the training range,
   then the task's generalisation tests; the seed with the fewest bit errors on the training
   range wins, ties broken by the mean over the generalisation tests, then by the loss (n-grams:
   the lowest loss wins, its measure; see Task.validation_key);
2. writes that checkpoint, without optimiser state and with how it was chosen in its metadata,
   to checkpoints/NAME.safetensors;
3. runs `ntmviz eval --card --seeds-from FILES...` on it, so its card holds test-stream numbers for
   it and for every seed (how many solved the task, and the spread).

Nothing here looks at the test stream before the choice is made.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

from ntmviz import checkpoint
from ntmviz.evaluate import evaluate

ROOT = Path(__file__).resolve().parent.parent


def validation_key(ckpt, samples: int) -> tuple[float, ...]:
    """(the key, the training range's bit errors, its loss): the key is the task's on the training
    range (task.validation_key) with its first tie broken by the mean bit errors over the
    generalisation tests."""
    task = ckpt.task
    main = evaluate(ckpt.model, task, stream="validation", samples=samples)[0]
    slots = getattr(ckpt.config, "memory_slots", None)
    others = []
    for _, variant in task.eval_variants():
        if slots is None or variant.required_slots() <= slots:
            others.append(evaluate(ckpt.model, variant, stream="validation", samples=samples // 4)[0].bit_errors)
    general = sum(others) / len(others) if others else 0.0
    first, *rest = task.validation_key(main.bit_errors, main.loss)
    return (first, general, *rest), main.bit_errors, main.loss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="every seed's checkpoint of one configuration")
    parser.add_argument("--name", required=True, help="the shipped file's name, e.g. copy-ntm")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--validation-samples", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000, help="test-stream sequences per row of the card")
    parser.add_argument("--notes", default="", help="how it was trained, in words, for the card")
    args = parser.parse_args()
    torch.set_num_threads(1)

    ckpts = [checkpoint.load(path, device="cpu") for path in args.runs]
    keys = []
    for path, ckpt in zip(args.runs, ckpts):
        key, bit_errors, loss = validation_key(ckpt, args.validation_samples)
        keys.append(key)
        print(f"{path}: seed {ckpt.meta.get('seed')}, step {ckpt.step}: validation bit errors {bit_errors:.4f} "
              f"(generalisation tests {key[1]:.3f}), loss {loss:.4f}", flush=True)
    best = min(range(len(ckpts)), key=lambda i: keys[i])
    chosen = ckpts[best]
    seeds = [c.meta.get("seed") for c in ckpts]
    meta = {**chosen.meta,
            "seed_chosen_by": f"the validation stream ({args.validation_samples} sequences of the training range, "
                              f"{chosen.task.choice_rule}; ties broken on its generalisation tests) among seeds {seeds}",
            "trained_seeds": seeds}
    if args.notes:
        meta["notes"] = args.notes
    out = args.out_dir / f"{args.name}.safetensors"
    checkpoint.save(out, chosen.model, task=chosen.task, step=chosen.step, sequences=chosen.sequences, meta=meta)
    print(f"chose seed {chosen.meta.get('seed')} ({args.runs[best]}); wrote {out}", flush=True)
    # run from the repository with a relative path, so the card names the file as a reader finds it
    shown = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    command = [sys.executable, "-m", "ntmviz.cli", "eval", "--checkpoint", str(shown), "--card", "--samples",
               str(args.samples), "--seeds-from", *(str(p.resolve()) for p in args.runs)]
    return subprocess.run(command, cwd=ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main())
