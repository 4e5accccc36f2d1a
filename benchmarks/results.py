"""NTM against the LSTM baseline, from the shipped checkpoints: a table and a plot.

    .venv/bin/pip install -e ".[results]"   # matplotlib: only this script needs it
    .venv/bin/python benchmarks/results.py  # rewrites README's results section and benchmarks/results.png

Scores each shipped checkpoint on fresh samples (bit errors per sequence) at the sizes
below, and draws the learning curves stored in the checkpoints (bit errors per sequence
of the training batches against sequences seen).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from ntmviz import checkpoint
from ntmviz.evaluate import evaluate

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "ntmviz" / "checkpoints"
PLOT = ROOT / "benchmarks" / "results.png"
COMPARISONS = {  # task -> (sizes, what the size is)
    "copy": ([10, 20, 40, 80, 120], "sequence length"),
    "associative_recall": ([3, 6, 9, 12], "items"),
}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)

    lines = [BEGIN, "", f"Bit errors per sequence on {args.samples} fresh sequences per cell "
             "(`benchmarks/results.py`; lower is better; trained on copy lengths 1-20 and recall of 2-6 items):", ""]
    curves = {}
    for task, (sizes, unit) in COMPARISONS.items():
        lines += [f"| {task} ({unit}) | " + " | ".join(str(s) for s in sizes) + " |",
                  "| --- | " + " | ".join("---:" for _ in sizes) + " |"]
        for kind in ("ntm", "lstm"):
            path = CHECKPOINTS / f"{task}-{kind}.safetensors"
            if not path.exists():
                lines.append(f"| {kind.upper()} | " + " | ".join("—" for _ in sizes) + " |")
                continue
            ckpt = checkpoint.load(path, device="cpu")
            cells = [evaluate(ckpt.model, ckpt.task.at(s), samples=args.samples)[0].bit_errors for s in sizes]
            params = sum(p.numel() for p in ckpt.model.parameters())
            label = f"{kind.upper()} ({params // 1000}K parameters, {ckpt.sequences / 1000:.0f}K sequences seen)"
            lines.append(f"| {label} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
            curves[(task, kind)] = ckpt.meta.get("history", {})
            print(lines[-1], flush=True)
        lines.append("")
    lines += ["![learning curves](benchmarks/results.png)", "", END]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(COMPARISONS), figsize=(11, 3.6))
    for ax, task in zip(axes, COMPARISONS):
        for kind, colour in (("ntm", "tab:blue"), ("lstm", "tab:orange")):
            h = curves.get((task, kind))
            if h and h.get("sequences"):
                ax.plot(h["sequences"], h["bit_errors"], color=colour, lw=1, label=kind.upper())
        ax.set_title(task.replace("_", " "))
        ax.set_xlabel("sequences seen")
        ax.set_ylabel("bit errors per sequence (training batches)")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=90)

    readme = ROOT / "README.md"
    text = readme.read_text()
    block = "\n".join(lines)
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += "\n## NTM against LSTM\n\n" + block + "\n"
    readme.write_text(text)
    print(f"wrote {PLOT} and README's results section")


if __name__ == "__main__":
    main()
