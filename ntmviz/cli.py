"""`ntmviz train | eval | record | export | serve`: the command line.

Every bad input (unknown task, impossible size, a corrupt file) ends with one line
`ntmviz: error: ...` and exit status 2; a diverged run exits 1 and keeps its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
from pathlib import Path

import torch

from .errors import ConfigError, NtmvizError
from .files import atomic_write


def _lengths(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntmviz", description="Train, evaluate, record and explore Neural Turing Machines.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a task, writing checkpoints")
    t.add_argument("--task", default="copy", help="copy, repeat_copy, associative_recall, ngrams, priority_sort")
    t.add_argument("--task-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="override a task field, e.g. max_length=10 (repeatable)")
    t.add_argument("--model", default="ntm", help="ntm or lstm")
    t.add_argument("--batch-size", type=int, default=None, help="sequences per step (default 32; on --resume, the run's)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3 for Adam, 1e-4 for RMSProp)")
    t.add_argument("--optimizer", default="adam", choices=["adam", "rmsprop"])
    t.add_argument("--clip", type=float, default=10.0, help="clip the gradient norm (0: off)")
    t.add_argument("--curriculum", type=int, default=0, metavar="K",
                   help="grow lengths (repeats, items) over K stages, moving on below --curriculum-threshold (0: off)")
    t.add_argument("--curriculum-threshold", type=float, default=0.5, help="bit errors per sequence to move on")
    t.add_argument("--steps", type=int, default=2000, help="train until this many steps in all")
    t.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when there is one)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (1 is fastest for these small models)")
    t.add_argument("--out", type=Path, default=Path("runs/model.safetensors"), help="checkpoint to write")
    t.add_argument("--resume", type=Path, default=None, help="continue from this checkpoint")
    t.add_argument("--checkpoint-every", type=int, default=500, metavar="K", help="write the checkpoint every K steps")
    t.add_argument("--slim", action="store_true",
                   help="write checkpoints without optimiser state (3x smaller; a resumed run restarts Adam)")
    t.add_argument("--eval-samples", type=int, default=200, help="fresh sequences scored at the end")
    t.add_argument("--memory-slots", type=int, default=128)
    t.add_argument("--memory-width", type=int, default=20)
    t.add_argument("--read-heads", type=int, default=1)
    t.add_argument("--write-heads", type=int, default=1)
    t.add_argument("--controller", default="lstm", help="lstm or feedforward")
    t.add_argument("--controller-size", type=int, default=100)
    t.add_argument("--hidden-size", type=int, default=256, help="LSTM baseline: units per layer")
    t.add_argument("--layers", type=int, default=3, help="LSTM baseline: layers")
    t.add_argument("--quiet", action="store_true", help="a plain log line every 100 steps instead of a progress bar")

    e = sub.add_parser("eval", help="bit errors per sequence of a checkpoint at several sizes")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--lengths", type=_lengths, default=None,
                   help="sizes to test (sequence length, or items for recall); default: the task's own")
    e.add_argument("--samples", type=int, default=100)
    e.add_argument("--seed", type=int, default=12345)
    e.add_argument("--device", default=None)
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--card", action="store_true",
                   help="also write the checkpoint's card (NAME.md beside it): config, training, these numbers")

    r = sub.add_parser("record", help="record one episode of a checkpoint to a file")
    r.add_argument("--checkpoint", type=Path, required=True)
    r.add_argument("--task", default=None, help="the task to record (must be the checkpoint's)")
    r.add_argument("--length", type=int, default=None, help="sequence length (items for recall)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default=None)
    r.add_argument("--out", type=Path, required=True)

    x = sub.add_parser("export", help="write an episode as one standalone HTML page that plays offline")
    x.add_argument("episode", type=Path)
    x.add_argument("--out", type=Path, required=True)

    s = sub.add_parser("serve", help="open the explorer (same as `panel serve apps/explorer.py`)")
    s.add_argument("--checkpoint", type=Path, default=None)
    s.add_argument("--port", type=int, default=5006)
    s.add_argument("--show", action="store_true", help="open a browser")
    return parser


# ---- train ------------------------------------------------------------------------------------

def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.machine()} ({os.cpu_count()} cores)"


class _Progress:
    """tqdm progress bar, periodic checkpoints, and a final checkpoint on Ctrl-C."""

    def __init__(self, args, total: int, start: int):
        from tqdm import tqdm

        self.args, self.start = args, start
        self.bar = tqdm(total=total, initial=start, unit="step", disable=args.quiet, dynamic_ncols=True)

    def on_step(self, trainer, m) -> None:
        self.bar.update(1)
        if self.args.quiet and m.step % 100 == 0:
            stage = f" stage {trainer.stage}/{trainer.curriculum}" if trainer.curriculum else ""
            print(f"step {m.step} sequences {m.sequences} loss {m.loss:.4f} bit_errors {m.bit_errors:.4f} "
                  f"seq/s {m.rate:.0f} seconds {m.seconds:.0f}{stage}", flush=True)
        if m.step % 10 == 0:
            self.bar.set_postfix(loss=f"{m.loss:.3f}", bits=f"{m.bit_errors:.3f}", seq_s=f"{m.rate:.0f}")
        if m.step % self.args.checkpoint_every == 0:
            trainer.save(self.args.out, with_optimizer=not self.args.slim)

    def on_end(self, trainer, reason: str) -> None:
        self.bar.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_train(args) -> int:
    from . import checkpoint as ckpt_io
    from .config import LSTMConfig, NTMConfig
    from .model import build_model, pick_device
    from .tasks import get_task
    from .train import Trainer, TrainingDiverged, evaluate

    torch.set_num_threads(max(1, args.threads))
    device = pick_device(args.device)
    if args.resume is not None:
        ckpt = ckpt_io.load(args.resume, device=device)
        trainer = Trainer.resume_from(ckpt, batch_size=args.batch_size, lr=args.lr)
        print(f"resuming {args.resume} at step {trainer.step} ({trainer.sequences} sequences)", file=sys.stderr)
    else:
        task = get_task(args.task, **dict(args.task_option))
        if args.model == "ntm":
            config = NTMConfig(task.input_size, task.output_size, args.memory_slots, args.memory_width,
                               args.read_heads, args.write_heads, args.controller, args.controller_size)
        elif args.model == "lstm":
            config = LSTMConfig(task.input_size, task.output_size, args.hidden_size, args.layers)
        else:
            raise ConfigError(f"unknown model {args.model!r}; expected ntm or lstm")
        torch.manual_seed(args.seed)
        model = build_model(config).to(device)
        lr = args.lr if args.lr is not None else (1e-3 if args.optimizer == "adam" else 1e-4)
        trainer = Trainer(model, task, batch_size=args.batch_size or 32, lr=lr, optimizer=args.optimizer,
                          clip=args.clip, seed=args.seed, curriculum=args.curriculum,
                          curriculum_threshold=args.curriculum_threshold)
    progress = _Progress(args, args.steps, trainer.step)
    trainer.callbacks.append(progress)
    hardware = f"{_cpu_name()}, {torch.get_num_threads()} torch thread(s), {device}"
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` saves and stops like Ctrl-C
    signal.signal(signal.SIGINT, _interrupt)  # even where a shell started us with SIGINT ignored
    try:
        trainer.run(args.steps)
    except KeyboardInterrupt:
        progress.bar.close()
        trainer.save(args.out, with_optimizer=not args.slim, extra_meta={"hardware": hardware})
        print(f"\ninterrupted at step {trainer.step}; saved {args.out} (continue with --resume {args.out})", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"ntmviz: training stopped: {exc}; the last good checkpoint is {args.out} "
              f"(written every {args.checkpoint_every} steps)", file=sys.stderr)
        return 1
    trainer.save(args.out, with_optimizer=not args.slim, extra_meta={"hardware": hardware})
    result = evaluate(trainer.model, trainer.task, samples=args.eval_samples)
    print(f"{trainer.task.name}: {result['bit_errors']:.3f} bit errors per sequence on {result['samples']} fresh "
          f"sequences after {trainer.sequences} sequences ({trainer.seconds:.0f} s); saved {args.out}")
    return 0


# ---- eval / record / export / serve -------------------------------------------------------------

def default_sizes(task) -> list[int]:
    """The generalisation sizes `eval` reports when none are given."""
    return {"copy": [10, 20, 40, 80, 120], "repeat_copy": [5, 10, 15, 20],
            "associative_recall": [3, 6, 9, 12], "ngrams": [200], "priority_sort": [20]}.get(task.name, [])


def cmd_eval(args) -> int:
    from . import checkpoint as ckpt_io
    from .train import evaluate

    ckpt = ckpt_io.load(args.checkpoint, device=args.device)
    print(f"{args.checkpoint}: {ckpt.integrity}", file=sys.stderr)
    if ckpt.task is None:
        raise ConfigError(f"{args.checkpoint}: the checkpoint names no task")
    task = ckpt.task
    sizes = args.lengths or default_sizes(task)
    slots = getattr(ckpt.config, "memory_slots", None)
    rows = [{"size": "training range", **evaluate(ckpt.model, task, samples=args.samples, seed=args.seed)}]
    for size in sizes:
        variant = task.at(size)
        if slots is not None:
            variant.check_fits(slots)
        rows.append({"size": size, **evaluate(ckpt.model, variant, samples=args.samples, seed=args.seed)})
    if task.name == "ngrams":
        from .train import ngram_bits

        rows[0].update(ngram_bits(ckpt.model, task, samples=args.samples, seed=args.seed))
    report = {"checkpoint": str(args.checkpoint), "task": task.name, "model": ckpt.config.kind,
              "difficulty": task.difficulty_name, "sequences_seen": ckpt.sequences, "checksum": ckpt.checksum,
              "rows": rows}
    table = _eval_table(report, args.samples)
    print(json.dumps(report, indent=2) if args.json else table)
    if args.card:
        card = args.checkpoint.with_suffix(".md")
        atomic_write(card, _card(ckpt, table, args).encode())
        print(f"wrote {card}", file=sys.stderr)
    return 0


def _eval_table(report: dict, samples: int) -> str:
    rows = report["rows"]
    lines = [f"{report['checkpoint']}  ({report['task']}, {report['model']}, {report['sequences_seen']} sequences seen, "
             f"{samples} fresh samples per row)",
             f"{report['difficulty']:>18}  bit errors/seq  loss/seq"]
    lines += [f"{row['size']!s:>18}  {row['bit_errors']:14.3f}  {row['loss']:8.3f}" for row in rows]
    if "model_bits" in rows[0]:
        lines.append(f"bits per prediction: model {rows[0]['model_bits']:.4f}, optimal Bayesian {rows[0]['optimal_bits']:.4f}")
    return "\n".join(lines)


def _card(ckpt, table: str, args) -> str:
    """A checkpoint's card: what it is, how it was trained, how it scores."""
    from .config import to_dict

    meta = ckpt.meta
    params = sum(p.numel() for p in ckpt.model.parameters())
    training = {k: meta.get(k) for k in ("seed", "batch_size", "lr", "optimizer", "clip", "torch", "device", "hardware")}
    return "\n".join([
        f"# {ckpt.path.name}",
        "",
        f"{ckpt.task.describe()}",
        "",
        f"- model: {ckpt.config.kind}, {params:,} parameters, {ckpt.path.stat().st_size // 1024} KB on disk",
        f"- trained: {ckpt.step} steps, {ckpt.sequences:,} sequences, {meta.get('train_seconds', 0) / 60:.1f} min of training",
        "- training setup: " + ", ".join(f"{k} {v}" for k, v in training.items() if v is not None),
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps({"model": to_dict(ckpt.config), "task": ckpt.task.to_dict()}, indent=2),
        "```",
        "",
        f"## Evaluation (`ntmviz eval --checkpoint {ckpt.path.name} --samples {args.samples}`, fresh samples)",
        "",
        "```",
        table,
        "```",
        "",
    ])


def cmd_record(args) -> int:
    from . import checkpoint as ckpt_io
    from .episode import record

    ckpt = ckpt_io.load(args.checkpoint, device=args.device)
    task = ckpt.task
    if task is None:
        raise ConfigError(f"{args.checkpoint}: the checkpoint names no task to record")
    if args.task is not None and args.task != task.name:
        raise ConfigError(f"{args.checkpoint} was trained on {task.name}, not {args.task}")
    if args.length is not None:
        task = task.at(args.length)
    slots = getattr(ckpt.config, "memory_slots", None)
    if slots is not None:
        task.check_fits(slots)
    batch = task.sample(1, seed=args.seed, device=ckpt.model.device)
    meta = {"task": task.name, "task_config": task.to_dict(), "seed": args.seed,
            "checkpoint": str(args.checkpoint), "length": args.length}
    episode = record(ckpt.model, batch, meta=meta)[0]
    episode.save(args.out)
    errors = episode.bit_errors().sum()
    print(f"recorded {episode.steps} steps of {task.name} ({errors:.0f} bit errors) to {args.out}")
    return 0


def cmd_export(args) -> int:
    from .app import export_html
    from .episode import Episode

    path = export_html(Episode.load(args.episode), args.out)
    print(f"wrote {path}")
    return 0


def cmd_serve(args) -> int:
    import panel as pn

    from .app import Explorer

    def page():
        return Explorer.from_checkpoint(args.checkpoint) if args.checkpoint else Explorer.default()

    page()  # warm up: import torch and record the first episode before the first visitor comes
    pn.serve(page, port=args.port, show=args.show, title="ntmviz explorer")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "record": cmd_record, "export": cmd_export, "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except NtmvizError as exc:
        print(f"ntmviz: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
