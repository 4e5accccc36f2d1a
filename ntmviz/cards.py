"""Checkpoint cards and `ntmviz eval`'s table: the text that reports a model.

    table = eval_table(report, task)          # report: what cmd_eval (or a sweep) measured
    text = card_text(ckpt, "Evaluation (...)", table)

A card says what the model is, how it was trained (every phase of its schedule, when the
curriculum moved on), how this checkpoint and its seed were chosen, and how it scores.
"""

from __future__ import annotations

import json

from .config import to_dict


# A seed "generalises" when it makes under this many bit errors per sequence at the hardest size
# evaluated (the bar the project's targets set for copy at length 120 and recall at 12 items).
GENERALISED_BELOW = 1.0


def solved(row: dict, task) -> bool | None:
    """Whether a training-range score meets the task's bar (None where the task has none)."""
    if "gap" in (row.get("extra") or {}):
        return row["extra"]["gap"] < 0.02  # n-grams: within 0.02 bits per prediction of the optimum
    return None if task.solved_below is None else row["bit_errors"] < task.solved_below


def eval_table(report: dict, task) -> str:
    """The table `ntmviz eval` prints: a row per size, then every seed when the report has them."""
    rows = report["rows"]
    lines = [f"{report['checkpoint']}  ({report['task']}, {report['model']}, {report['parameters']:,} parameters, "
             f"{report['sequences_seen']:,} sequences seen)",
             f"{report['samples']} sequences per row from the {report['stream']} stream, seed {report['seed']}; "
             "[95% interval]",
             f"{report['difficulty']:>18}  {task.error_unit:>26}  {'exact sequences':>22}  {'loss bits/seq':>13}"]

    def line(label, row) -> str:
        (lo, hi), (elo, ehi) = row["interval"], row["exact_interval"]
        return (f"{label!s:>18}  {row['bit_errors']:8.3f} [{lo:7.3f}, {hi:7.3f}]  "
                f"{100 * row['exact']:5.1f}% [{100 * elo:5.1f}, {100 * ehi:5.1f}]  {row['loss_bits']:13.2f}")

    lines += [line(row["size"], row) for row in rows]
    extra = rows[0].get("extra") or {}
    if "gap" in extra:
        lo, hi = extra["gap_interval"]
        lines.append(f"bits per prediction: model {extra['model_bits']:.4f}, optimal Bayesian {extra['optimal_bits']:.4f}, "
                     f"gap {extra['gap']:.4f} [{lo:.4f}, {hi:.4f}] (same sequences)")
    for row in rows:  # repeat copy at a fixed count: where along the output the errors fall
        if (row.get("extra") or {}).get("parts"):
            part = row["extra"]["part_name"]
            lines.append(f"{row['size']}: bit errors/seq in each {part} ({part} 1 first): "
                         + " ".join(f"{v:.2f}" for v in row["extra"]["parts"]))
    if report["task"] == "priority_sort":
        lines.append("loss bits/seq is the paper's unit for priority sort (cross-entropy in bits per sequence)")
    if report.get("seeds"):
        seeds = report["seeds"]
        # n-grams: each seed's gap to the optimum (their measure) in place of a harder size's errors
        gaps = all("gap" in (row.get("extra") or {}) for row in seeds)
        hardest = None if gaps else seeds[0].get("hardest")
        at = f"at {hardest['size']}" if hardest else ""
        column = "gap, bits per prediction" if gaps else f"{task.error_unit} {at}" if hardest else ""
        lines += ["", f"every seed trained, on the training range ({report['samples']} {report['stream']}-stream "
                      "sequences each)" + (f" and {at} ({report['difficulty']})" if hardest else "") + ":",
                  f"{'seed (step)':>18}  {task.error_unit:>26}  {'exact sequences':>22}  {'loss bits/seq':>13}  solved"
                  + (f"  {column:>26}" if column else "")]
        for row in seeds:
            verdict = solved(row, task)
            if gaps:
                lo, hi = row["extra"]["gap_interval"]
                far = f"  {row['extra']['gap']:8.4f} [{lo:.4f}, {hi:.4f}]"
            else:
                far = f"  {row['hardest']['bit_errors']:26.3f}" if hardest else ""
            lines.append(line(f"{row['seed']} ({row['step']})", row) + f"  {'-' if verdict is None else verdict!s:>6}"
                         + far)
        verdicts = [solved(row, task) for row in seeds]
        errors = sorted(row["bit_errors"] for row in seeds)
        unit = "bit errors" if task.error_unit == "bit errors/seq" else task.error_unit
        bar = ("gap to the optimum < 0.02 bits" if "gap" in extra else
               f"{unit} < {task.solved_below}" if task.solved_below is not None else None)
        per = " per sequence" if unit == "bit errors" else ""
        summary = f"{len(seeds)} seeds; {unit}{per} from {errors[0]:.3f} to {errors[-1]:.3f}"
        if gaps:
            spread = sorted(row["extra"]["gap"] for row in seeds)
            summary += f"; gap to the optimum from {spread[0]:.4f} to {spread[-1]:.4f} bits per prediction"
        if bar:
            summary += f"; {sum(bool(v) for v in verdicts)} of {len(seeds)} solved ({bar})"
        if hardest:
            far = sorted(row["hardest"]["bit_errors"] for row in seeds)
            below = GENERALISED_BELOW if unit == "bit errors" else task.solved_below  # a rate: the task's own bar
            summary += f"; {at}: from {far[0]:.3f} to {far[-1]:.3f}"
            if below is not None:  # a task with no bar (a pointer's wrong pointers) gives the spread alone
                summary += f", {sum(e < below for e in far)} of {len(seeds)} under {below:g}"
        lines.append(summary)
    return "\n".join(lines)


def _schedule_table(meta: dict) -> list[str]:
    phases = meta.get("schedule") or []
    if not phases:
        return ["(this checkpoint predates recorded phases)"]
    lines = ["| from step | lr | optimizer | batch per model | clip | optimiser state |",
             "| ---: | ---: | --- | ---: | ---: | --- |"]
    lines += [f"| {p.get('step')} | {p.get('lr')} | {p.get('optimizer')} | {p.get('batch_size')} | {p.get('clip')} | "
              f"{p.get('optimizer_state')} |" for p in phases]
    return lines


def _stages(meta: dict) -> str:
    """When the curriculum reached each stage, from the logged points."""
    history = meta.get("history") or {}
    if not meta.get("curriculum"):
        return "no curriculum"
    firsts: dict[int, int] = {}
    for sequences, stage in zip(history.get("sequences", []), history.get("stage", [])):
        firsts.setdefault(stage, sequences)
    reached = ", ".join(f"stage {k} from {v:,} sequences" for k, v in sorted(firsts.items()) if k >= 0)
    return (f"curriculum of {meta['curriculum']} stages (next stage below {meta.get('curriculum_threshold')} "
            f"bit errors per sequence, smoothed): {reached or 'stages not logged'}")


def card_text(ckpt, title: str, table: str) -> str:
    """A checkpoint's card (Markdown): what it is, how it was trained and chosen, and a score
    table under the heading `title`."""
    meta = ckpt.meta
    params = sum(p.numel() for p in ckpt.model.parameters())
    ensemble = meta.get("ensemble") or {}
    lines = [
        f"# {ckpt.path.name}",
        "",
        f"{ckpt.task.describe()}",
        "",
        f"- model: {ckpt.config.kind}, {params:,} parameters, {ckpt.path.stat().st_size // 1024} KB on disk",
        f"- trained: {ckpt.step} steps, {ckpt.sequences:,} sequences, {meta.get('train_seconds', 0) / 60:.1f} min "
        f"of training on {meta.get('hardware', 'unrecorded hardware')}, torch {meta.get('torch', '?')}",
        f"- computed by: {ckpt.compute}",
        f"- seed {meta.get('seed')}" + (f", one of seeds {ensemble['seeds']} trained together" if ensemble else ""),
        f"- data: training batches from the {meta.get('data_stream', 'old (pre-stream)')} stream; "
        f"this checkpoint was chosen by {meta.get('chosen_by') or 'nothing recorded (the last step of its run)'}",
    ]
    if meta.get("seed_chosen_by"):
        lines.append(f"- this seed was chosen by {meta['seed_chosen_by']}")
    if meta.get("diverged"):
        lines.append(f"- diverged: {meta['diverged']}")
    if meta.get("skipped_batches"):
        steps = meta["skipped_batches"]
        lines.append(f"- {len(steps)} training batch(es) skipped because the gradient overflowed float32 "
                     f"(steps {', '.join(map(str, steps[:10]))}{', ...' if len(steps) > 10 else ''})")
    lines += ["", "## How it was trained", "", *_schedule_table(meta), "", f"- {_stages(meta)}"]
    if meta.get("notes"):
        lines += ["", meta["notes"]]
    lines += [
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps({"model": to_dict(ckpt.config), "task": ckpt.task.to_dict()}, indent=2),
        "```",
        "",
        f"## {title}",
        "",
        "```",
        table,
        "```",
        "",
    ]
    return "\n".join(lines)
