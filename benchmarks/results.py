"""NTM against the LSTM baseline, from the shipped checkpoints: tables with intervals and a plot.

    .venv/bin/pip install -e ".[results]"   # matplotlib: only this script needs it
    .venv/bin/python benchmarks/results.py [--samples 1000] [--seed 0]
        # rewrites docs/results.md's results section and benchmarks/results.png
    .venv/bin/python benchmarks/results.py --plot-only   # redraws the plot only (no evaluation)
    .venv/bin/python benchmarks/results.py --check --seed 7  # measures again with other sequences and
        # sets each new mean beside docs/results.md's interval; writes nothing

Every cell is the mean bit errors per sequence on `--samples` test-stream sequences (seed
`--seed`) with its 95% interval; both models of a row pair answer the same sequences. Each
row names its parameter count and the sequences it trained on.

The LSTM baselines at the paper's sizes (Table 3: 3 layers) are megabytes, past this repository's
size budget, so their weights are not shipped: `benchmarks/ship.py --out-dir benchmarks/baselines`
writes them there (git ignores them) with a card beside them (committed). Where the weights are,
their rows are measured; elsewhere a row takes its numbers from the card when the card's
evaluation used the same test sequences (stream, seed, count), and says so; `--check` leaves
such rows out, since nothing is measured again.

The plot draws, per task, each model's validation curve (the validation stream, on the task as
configured, so curves of runs with and without a curriculum compare), and faintly its
training-batch curve, with the points trained at an earlier curriculum stage marked: bit errors
per sequence, or for n-grams the cross-entropy (what validation chooses on there).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import torch

from ntmviz import checkpoint
from ntmviz.evaluate import evaluate
from ntmviz.files import atomic_write

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
BASELINES = ROOT / "benchmarks" / "baselines"
KINDS = {"ntm": "NTM", "lstm": "LSTM", "lstm-paper": "LSTM at the paper's size"}
COLOURS = {"ntm": "tab:blue", "lstm": "tab:orange", "lstm-paper": "tab:green"}
TASKS = ("copy", "repeat_copy", "associative_recall", "ngrams", "priority_sort")
PLOT = ROOT / "benchmarks" / "results.png"
PAGE = ROOT / "docs" / "results.md"  # the page the tables live in; links in them are relative to it
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
NUMBER = r"(-?\d+(?:\.\d+)?)"
INTERVAL = re.compile(rf"^{NUMBER} \[{NUMBER}, {NUMBER}\]( \(\d+ wrong\))?$")
FEW = 10  # a mean carried by fewer wrong sequences than this has an interval that understates its noise


def interval_text(mean: float, low: float, high: float, wrong: int) -> str:
    """Mean [interval]; and how many sequences were wrong when only a few were (their errors make the
    whole mean, so another draw of sequences can land far outside the interval)."""
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]" + (f" ({wrong} wrong)" if 0 < wrong < FEW else "")


def cell(score) -> str:
    return interval_text(score.bit_errors, *score.interval, round((1 - score.exact) * score.samples))


def gap_cells(model: float, optimum: float, gap: float, low: float, high: float) -> list[str]:
    """An n-grams row's cells: bits per prediction, and the gap to the optimum [interval]."""
    return [f"{model:.3f} (optimum {optimum:.3f})", f"{gap:.3f} [{low:.3f}, {high:.3f}]"]


def row_label(kind: str, task_name: str, parameters: int, sequences: int, from_card: bool = False) -> str:
    """A table row's model: its kind, size and training; a paper-size baseline's also names its card."""
    label = f"{KINDS[kind]} ({parameters:,} parameters, {sequences / 1000:,.0f}K sequences"
    if kind == "lstm-paper":  # weights only a local training run has: the card says how to make them
        card = Path(os.path.relpath(paths(task_name)[kind].with_suffix(".md"), PAGE.parent))
        label += f"; weights not shipped, {'numbers from ' if from_card else ''}[its card]({card})"
    return label + ")"


def paths(task_name: str) -> dict:
    """{kind: path} of the task's NTM, LSTM and paper-size LSTM, wherever each would be."""
    return {"ntm": CHECKPOINTS / f"{task_name}-ntm.safetensors", "lstm": CHECKPOINTS / f"{task_name}-lstm.safetensors",
            "lstm-paper": BASELINES / f"{task_name}-lstm-paper.safetensors"}


def shipped(task_name: str) -> dict:
    """{kind: loaded checkpoint} of those of the task's models that are here."""
    return {kind: checkpoint.load(path, device="cpu") for kind, path in paths(task_name).items() if path.exists()}


CARD_MODEL = re.compile(r"\(\w+, \w+, ([\d,]+) parameters, ([\d,]+) sequences seen\)$")
CARD_SEQUENCES = re.compile(r"^(\d+) sequences per row from the (\w+) stream, seed (\d+);")
CARD_ROW = re.compile(rf"^\s*(.*?)\s+{NUMBER} \[\s*{NUMBER},\s*{NUMBER}\]\s+{NUMBER}% ")
CARD_GAP = re.compile(rf"^bits per prediction: model {NUMBER}, optimal Bayesian {NUMBER}, "
                      rf"gap {NUMBER} \[{NUMBER}, {NUMBER}\]")


def card_scores(text: str, samples: int, seed: int) -> dict | None:
    """The test-stream numbers in a card's evaluation (the table `ntmviz eval --card` wrote), or
    None when they were measured on other sequences than `samples` test-stream sequences of `seed`.

    Returns {"parameters": int, "sequences": int, "rows": {size label: (mean, low, high, wrong
    sequences)}} and, for n-grams, "bits": (model, optimum) and "gap": (gap, low, high)."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-2]):
        model, sequences = CARD_MODEL.search(line), CARD_SEQUENCES.match(lines[i + 1])
        if model and sequences:
            break
    else:
        return None
    if sequences.groups() != (str(samples), "test", str(seed)):
        return None
    scores = {"parameters": int(model.group(1).replace(",", "")), "sequences": int(model.group(2).replace(",", "")),
              "rows": {}}
    for line in lines[i + 3:]:  # below the column titles, down to the first line that is not a size's row
        gap, row = CARD_GAP.match(line), CARD_ROW.match(line)
        if gap:  # n-grams: the line after the rows
            values = [float(v) for v in gap.groups()]
            scores["bits"], scores["gap"] = tuple(values[:2]), tuple(values[2:])
        if gap or not row:
            break
        mean, low, high, exact = (float(v) for v in row.groups()[1:])
        # (the card prints the exact share to 0.1%: the count is exact up to 1000 sequences)
        scores["rows"][row.group(1)] = (mean, low, high, round((1 - exact / 100) * samples))
    return scores


def card_row(task_name: str, labels: list[str], args) -> list[str]:
    """The row of a paper-size baseline whose card is here but not its weights: its numbers from the
    card when they were measured on the same test sequences, else a pointer to the card."""
    path = paths(task_name)["lstm-paper"]
    card = path.with_suffix(".md")
    if path.exists() or not card.exists() or args.check:
        return []
    where = Path(os.path.relpath(card, PAGE.parent))  # the link, from the page; its text names the file from the top
    scores = card_scores(card.read_text(), args.samples, args.seed)
    if scores is None:
        return [f"| {KINDS['lstm-paper']} (weights not shipped) | see [{card.relative_to(ROOT)}]({where}) |" + " |" * (len(labels) - 1)]
    label = row_label("lstm-paper", task_name, scores["parameters"], scores["sequences"], from_card=True)
    if "gap" in scores:
        cells = gap_cells(*scores["bits"], *scores["gap"])
    else:
        cells = [interval_text(*scores["rows"][size]) if size in scores["rows"] else "—" for size in labels]
    return [f"| {label} | " + " | ".join(cells) + " |"]


def curves_of(ckpts: dict) -> dict:
    """{kind: (metadata, batch size)}: what the plot draws of each checkpoint."""
    return {kind: (ckpt.meta, ckpt.meta.get("batch_size") or 1) for kind, ckpt in ckpts.items()}


def table(task_name: str, args) -> tuple[list[str], dict]:
    ckpts = shipped(task_name)
    if not ckpts:
        return [], {}
    task = next(iter(ckpts.values())).task
    variants = [("training range", task)] + task.eval_variants()
    ngrams = task.name == "ngrams"
    header = ["model", *(label for label, _ in variants)] if not ngrams else \
        ["model", "bits per prediction", "gap to the optimum"]
    lines = [f"**{task.describe()}** ({args.samples} test-stream sequences per cell, seed {args.seed}; "
             "bit errors per sequence [95% interval])" if not ngrams else
             f"**{task.describe()}** ({args.samples} test-stream sequences, seed {args.seed}; [95% interval])", "",
             "| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for kind, ckpt in ckpts.items():
        label = row_label(kind, task_name, sum(p.numel() for p in ckpt.model.parameters()), ckpt.sequences)
        if ngrams:
            extra = evaluate(ckpt.model, task, samples=args.samples, seed=args.seed)[0].extra
            cells = gap_cells(extra["model_bits"], extra["optimal_bits"], extra["gap"], *extra["gap_interval"])
        else:
            slots = getattr(ckpt.config, "memory_slots", None)
            cells = [cell(evaluate(ckpt.model, variant, samples=args.samples, seed=args.seed)[0])
                     if slots is None or variant.required_slots() <= slots else "—" for _, variant in variants]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines + card_row(task_name, [label for label, _ in variants], args) + [""], curves_of(ckpts)


def tables_of(lines: list[str]) -> dict[str, list[list[str]]]:
    """{task heading: its Markdown table's rows, each a list of cells} of a results block's lines.

    A heading is the bold text that opens a task's paragraph; the header row is the first row."""
    tables, heading = {}, None
    for line in lines:
        if line.startswith("**"):
            heading = line.split("**")[1]
            tables[heading] = []
        elif line.startswith("| ") and heading is not None and not line.startswith("| ---"):
            tables[heading].append([c.strip() for c in line.strip().strip("|").split("|")])
    return tables


def compare(claimed: list[str], measured: list[str]) -> tuple[list[str], int, int, int]:
    """Each interval cell of docs/results.md's block (claimed) beside the same cell measured again.

    Cells pair by task heading, row label and column; cells without an interval, or rows one side
    lacks, are left out. Returns Markdown rows and how many cells were compared, how many new means
    fall inside the claimed 95% intervals (about 83% should, for a new seed with as many sequences),
    and how many within 1.4 half-widths of the claimed mean (about 95% should; the half-width is
    the interval's wider side)."""
    old, new = tables_of(claimed), tables_of(measured)
    rows, compared, inside, near = [], 0, 0, 0
    for heading, table in new.items():
        before = {row[0]: row for row in old.get(heading, [])}
        header = table[0]
        for row in table[1:]:
            for column, after, then in zip(header[1:], row[1:], before.get(row[0], [])[1:]):
                was, now = INTERVAL.match(then), INTERVAL.match(after)
                if not (was and now):
                    continue
                mean, lo, hi = map(float, was.groups()[:3])
                value = float(now.group(1))
                is_inside = lo <= value <= hi
                # the wider side: intervals near zero are lopsided, and rounding can put a mean on an edge
                is_near = abs(value - mean) <= 1.4 * max(hi - mean, mean - lo)
                compared, inside, near = compared + 1, inside + is_inside, near + is_near
                rows.append(f"| {heading.split(':')[0]} | {row[0]} | {column} | {then} | {after} | "
                            f"{'yes' if is_inside else 'no'} | {'yes' if is_near else 'no'} |")
    return rows, compared, inside, near


def plot(curves: dict, path: Path) -> None:
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ntmviz.tasks import get_task

    tasks = [t for t in TASKS if t in curves]
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        # what validation chose on: bit errors, or for n-grams the loss (in bits per sequence)
        on_loss = get_task(task).choose_on_loss
        field, scale = ("loss", 1 / math.log(2)) if on_loss else ("bit_errors", 1.0)
        lowest = math.inf
        for kind, colour in COLOURS.items():
            if kind not in curves[task]:
                continue
            name = KINDS[kind]
            meta, batch = curves[task][kind]
            history = meta.get("history") or {}
            seqs, values = history.get("sequences", []), [v * scale for v in history.get(field, [])]
            lowest = min([lowest, *values])
            if seqs:
                ax.plot(seqs, values, color=colour, lw=0.6, alpha=0.35, label=f"{name} training batches")
                stages = history.get("stage") or []
                final = max(stages) if stages else 0
                early = [(s, e) for s, e, g in zip(seqs, values, stages) if 0 <= g < final]
                if early and meta.get("curriculum"):
                    ax.scatter(*zip(*early), s=3, color=colour, alpha=0.5, marker="x",
                               label=f"{name} training, easier curriculum stage")
            valid = meta.get("validation") or {}
            if valid.get("step"):
                ax.plot([s * batch for s in valid["step"]], [v * scale for v in valid[field]], color=colour, lw=1.6,
                        label=f"{name} validation")
        ax.set_title(task.replace("_", " "))
        ax.set_xlabel("sequences seen")
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:,.0f}K")  # 1e6 offsets and run-together digits otherwise
        ax.set_ylabel("cross-entropy, bits per sequence" if on_loss else "bit errors per sequence")
        if not on_loss and lowest < 1:  # curves that reach zero: a log scale shows their tail
            ax.set_yscale("symlog", linthresh=0.1)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000, help="test-stream sequences per cell")
    parser.add_argument("--seed", type=int, default=0, help="seed within the test stream")
    parser.add_argument("--plot-only", action="store_true", help="redraw results.png from the checkpoints' curves only")
    parser.add_argument("--check", action="store_true",
                        help="measure again (use a new --seed) and compare with docs/results.md's intervals; write nothing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.plot_only:
        plot({task: curves_of(ckpts) for task in TASKS if (ckpts := shipped(task))}, PLOT)
        print(f"updated {PLOT}")
        return

    lines = [BEGIN, "", f"Regenerated by `benchmarks/results.py --samples {args.samples} --seed {args.seed}`. "
                        f"Another seed draws other sequences: its means (from {args.samples} sequences as well) fall "
                        "inside these 95% intervals about 83% of the time, and within 1.4 times an interval's "
                        "half-width of these means about 95% of the time (two estimates of one mean, each with its "
                        f"own noise). Where fewer than {FEW} of a cell's sequences had any wrong bit, the cell says how many: "
                        "its mean rests on those few, and its interval understates how far another draw can land.", ""]
    curves = {}
    for task in TASKS:
        rows, runs = table(task, args)
        lines += rows
        if runs:
            curves[task] = runs
    lines += [f"![learning curves]({os.path.relpath(PLOT, PAGE.parent)})", "", END]

    page = PAGE
    text = page.read_text()
    if args.check:
        claimed = text.split(BEGIN, 1)[1].split(END, 1)[0].splitlines() if BEGIN in text else []
        rows, compared, inside, near = compare(claimed, lines)
        print(f"\ndocs/results.md's numbers measured again on test-stream seed {args.seed}, {args.samples} sequences per cell\n")
        print("| task | model | column | claimed | this seed | inside its interval | within 1.4 half-widths |")
        print("| --- | --- | --- | ---: | ---: | --- | --- |")
        print("\n".join(rows))
        print(f"\n{inside} of {compared} new means inside the claimed 95% intervals (about 83% expected), "
              f"{near} of {compared} within 1.4 half-widths of its means (about 95% expected)")
        return
    block = "\n".join(lines)
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text += "\n" + block + "\n"
    atomic_write(page, text.encode())  # before the plot: a failed drawing loses no measurement
    plot(curves, PLOT)
    print(f"updated {page} and {PLOT}")


if __name__ == "__main__":
    main()
