"""Bahdanau, Cho & Bengio 2015, Figure 2's story measured here: the encoder-decoder with attention
against the same model without it (RNNenc), by input length, on the same test sequences.

    benchmarks/attention_by_length.py --train      # prints the 4 training commands (3 seeds each)
    benchmarks/attention_by_length.py [--runs runs/seq2seq] [--samples 200] [--seed 0]
        # chooses each run's seed on validation, prints the tables for both tasks
    benchmarks/attention_by_length.py --write      # and rewrites the block in docs/attention.md

Per task and model: every seed's best checkpoint (NAME-seedS.best.safetensors, kept on the
validation stream during training) is scored on `--samples` validation sequences and the one
with the fewest token errors (then the lowest loss) is chosen; the two chosen models are then
scored on the same test-stream sequences: symbol reversal at input lengths 4 to 32 (trained on
4-16), `--samples` sequences per length; dates on `--samples` x 4 sequences of every format,
grouped by the length of the written date. Each cell: the fraction of sequences without a wrong
token (the paper's measure is BLEU; here an output is right or not) with its 95% Wilson
interval, and wrong tokens per sequence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ntmviz import checkpoint
from ntmviz.evaluate import evaluate
from ntmviz.tasks.alignment import by_length, length_table

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "attention.md"
BEGIN, END = "<!-- attention-by-length:begin -->", "<!-- attention-by-length:end -->"
TASKS = {"symbol_reversal": list(range(4, 33, 4)), "dates": None}
MODELS = {"additive": "attention", "none": "no attention"}
SEEDS = (0, 1, 2)


def command(task: str, attention: str, runs: Path) -> str:
    return (f"nice -n 5 ntmviz train --model seq2seq --attention {attention} --task {task} --seeds 0-2 "
            f"--steps 2500 --lr 0.002 --threads 1 --validate-every 250 --validation-samples 200 "
            f"--checkpoint-every 500 --out {runs}/{task}-{attention}.safetensors")


def choose(runs: Path, task: str, attention: str, samples: int):
    """(the chosen seed's checkpoint, one line on the choice) among the run's best checkpoints."""
    found = []
    for seed in SEEDS:
        path = runs / f"{task}-{attention}-seed{seed}.best.safetensors"
        if path.exists():
            ckpt = checkpoint.load(path)
            score = evaluate(ckpt.model, ckpt.task, stream="validation", samples=samples)[0]
            found.append((ckpt.task.validation_key(score.bit_errors, score.loss), seed, ckpt, score))
    if not found:
        raise SystemExit(f"no {task}-{attention}-seedS.best.safetensors in {runs}: train first (--train)")
    key, seed, ckpt, score = min(found, key=lambda x: x[:2])
    seen = ", ".join(f"seed {s}: {x.bit_errors:.3f}" for _, s, _, x in sorted(found, key=lambda x: x[1]))
    return ckpt, (f"{MODELS[attention]}: seed {seed} at step {ckpt.step} ({ckpt.sequences:,} sequences), "
                  f"validation token errors/seq {seen}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "seq2seq")
    parser.add_argument("--samples", type=int, default=200, help="test sequences per length (dates: x 4 in all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", action="store_true", help="print the training commands and stop")
    parser.add_argument("--write", action="store_true", help=f"rewrite the block in {PAGE.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.train:
        for task in TASKS:
            for attention in MODELS:
                print(command(task, attention, args.runs))
        return 0
    torch.set_num_threads(1)
    blocks = []
    for task_name, lengths in TASKS.items():
        chosen = {attention: choose(args.runs, task_name, attention, args.samples) for attention in MODELS}
        task = chosen["additive"][0].task
        models = {MODELS[a]: ckpt.model.eval() for a, (ckpt, _) in chosen.items()}
        samples = args.samples if lengths else 4 * args.samples
        rows = by_length(models, task, lengths, samples=samples, seed=args.seed, stream="test")
        notes = "\n".join(f"- {line}" for _, line in chosen.values())
        blocks.append(length_table(rows, f"**{task_name}** ({task.describe()}; test stream, seed {args.seed})")
                      + "\n\n" + notes)
        print(blocks[-1] + "\n", flush=True)
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from figure2a import replace_block

        command_line = f"benchmarks/attention_by_length.py --samples {args.samples} --seed {args.seed} --write"
        replace_block(PAGE, BEGIN, END, f"{BEGIN}\n\n`{command_line}`\n\n" + "\n\n".join(blocks) + f"\n\n{END}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
