"""`ntmviz train | eval | record | export | figure | serve`: the command line.

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

from . import heap
from .config import TrainConfig, foreign_settings, settings
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


# What `ntmviz train` adds to a setting's own help (config.py), for the command line alone.
_TRAIN_NOTES = {
    "batch_size": "on --resume, the run's",
    "lr": "on --resume, the run's",
    "seeds": "with more than one seed, --out NAME.safetensors becomes NAME-seedS.safetensors per seed",
    "validate_every": "each model's best is written as NAME.best.safetensors (fewest bit errors, then lowest "
                      "loss; n-grams: lowest loss)",
}


def _add_settings(parser, cls, *, names=None, notes=None, with_defaults: bool = False) -> None:
    """An option per field of the config `cls` (config.settings): its name, type and help from
    the field, its default in the help. Without `with_defaults` every option's value is None
    unless given, so the caller can tell what was asked for (and a resumed run keeps the rest);
    `_given` reads them back. Bounds and choices are checked by the config, in one line."""
    notes = notes or {}
    for s in settings(cls):
        if names is not None and s.name not in names:
            continue
        if s.type is list:  # seeds: text such as 0-7 or 0,3,5 (train.parse_seeds)
            default = ",".join(map(str, s.default))
        else:
            default = s.default
        said = [s.help]
        if s.type is not dict and s.default is not None:
            said.append(f"default {default}")
        if s.name in notes:
            said.append(notes[s.name])
        text = "; ".join(said).replace("%", "%%")
        kwargs = dict(dest=s.name, help=text, default=default if with_defaults else None)
        if s.type is dict:
            kwargs.update(type=_option, action="append", metavar="KEY=VALUE", default=None)
        elif s.type is list:
            kwargs.update(metavar="SEEDS")
        else:
            kwargs.update(type=s.type)
            if "K steps" in s.help or "K stages" in s.help:
                kwargs.update(metavar="K")
        parser.add_argument(s.option, **kwargs)


def _given(args, cls) -> dict:
    """The config fields the command line gave (see _add_settings), as the config takes them."""
    from .train import parse_seeds

    given = {}
    for s in settings(cls):
        value = getattr(args, s.name, None)
        if value is None:
            continue
        if s.type is dict:
            value = dict(value)
        elif s.type is list:
            value = parse_seeds(value, what=s.option)
        given[s.name] = value
    return given


def sweep_models() -> list[str]:
    from .sweep import sequence_models

    return list(sequence_models())


def sweep_keys() -> list[str]:
    from .sweep import keys

    return list(keys())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntmviz", description="Train, evaluate, record and explore Neural Turing Machines.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (or one per seed, at once) on a task, writing checkpoints")
    _add_settings(t, TrainConfig, notes=_TRAIN_NOTES)  # --task, --model, --lr, --memory-slots, ...: config.py
    t.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when there is one)")
    t.add_argument("--seed", type=int, default=None, help="the seed of a single run (default 0; the same as --seeds N)")
    t.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch and the memory step's rows (default 1: at batch 1 a second "
                        "thread only costs; from batch 16 up, 2 threads on 2 cores trained 1.2-1.7x faster "
                        "here, docs/speed.md)")
    t.add_argument("--out", type=Path, default=None,
                   help="checkpoint to write, or a folder for TASK-MODEL.safetensors (default runs/model.safetensors; "
                        "on --resume, the resumed files)")
    t.add_argument("--resume", type=Path, nargs="+", default=None, metavar="CHECKPOINT",
                   help="continue from this checkpoint, or from an ensemble's checkpoints (one per seed)")
    t.add_argument("--slim", action="store_true",
                   help="write checkpoints without optimiser state (3x smaller; a resumed run restarts Adam)")
    t.add_argument("--eval-samples", type=int, default=200,
                   help="validation-stream sequences each model is scored on at the end")
    t.add_argument("--quiet", action="store_true", help="a plain log line every 100 steps instead of a progress bar")

    e = sub.add_parser("eval", help="score a checkpoint on held-out sequences, with 95%% intervals, at several sizes")
    e.add_argument("--checkpoint", type=Path, required=True, help="the checkpoint to score: a file, or a shipped name such as copy-ntm")
    e.add_argument("--lengths", type=_lengths, default=None,
                   help="sizes to test (sequence length, or items for recall); default: the task's own")
    e.add_argument("--samples", type=int, default=1000, help="held-out sequences per row (default 1000)")
    e.add_argument("--stream", default="test",
                   help="held-out stream: test (reports; the default) or validation (chooses); never the training one")
    e.add_argument("--seed", type=int, default=0, help="seed within the stream: any seed gives new sequences")
    e.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when there is one)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--card", action="store_true",
                   help="also write the checkpoint's card (NAME.md beside it): config, training, these numbers")
    e.add_argument("--seeds-from", type=Path, nargs="+", default=None, metavar="CHECKPOINT",
                   help="the checkpoints of every seed trained for this configuration (the shipped one among "
                        "them): their scores on the training range go in a Seeds table and the card")

    r = sub.add_parser("record", help="record one episode of a checkpoint to a file")
    r.add_argument("--checkpoint", type=Path, required=True,
                   help="a checkpoint file, or the name of a shipped one (e.g. copy-ntm)")
    r.add_argument("--task", default=None, help="the task to record (must be the checkpoint's)")
    r.add_argument("--length", type=int, default=None, help="sequence length (items for recall)")
    r.add_argument("--seed", type=int, default=0, help="seed of the sampled input (default 0)")
    r.add_argument("--input", default=None, metavar="TEXT",
                   help="a typed input instead of a sampled one, for tasks that take one (rows of bits for "
                        "copy-like tasks, one per line); - reads it from standard input")
    r.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when there is one)")
    r.add_argument("--out", type=Path, required=True, help="the episode file to write (.safetensors)")

    x = sub.add_parser("export", help="write an episode as one standalone HTML page that plays offline")
    x.add_argument("episode", type=Path, help="an episode file (from `ntmviz record` or the app's Save episode)")
    x.add_argument("--out", type=Path, required=True, help="the HTML file to write")

    f = sub.add_parser("figure", help="draw one view of an episode at one step as a figure for a paper (SVG or PNG)")
    f.add_argument("episode", type=Path, help="an episode file (from `ntmviz record` or the app's Save episode)")
    f.add_argument("--view", default="heads",
                   help="memory, heads (head locations over time, the paper's figure), focus, sequence, or slots "
                        "(slot state, slot x slot matrices, slots in a plane, where the model declares them) "
                        "(default heads)")
    f.add_argument("--step", type=int, default=None,
                   help="the step t to show, 0 .. T-1 (default: the last step)")
    f.add_argument("--out", type=Path, required=True,
                   help="the file to write: .svg (vector) or .png (raster at --scale times the screen's size)")
    f.add_argument("--format", default=None, help="svg or png (default: from --out's suffix)")
    f.add_argument("--scale", type=float, default=None,
                   help="PNG pixels per screen pixel, at least 2 (default 3: about 300 dpi at the screen's size)")
    f.add_argument("--diff", action="store_true", help="memory: show the change step t made, memory[t+1] - memory[t]")
    f.add_argument("--hide", default="",
                   help="heads to leave out, by number in the episode's order (read heads first), e.g. 0,3")
    f.add_argument("--window", default="",
                   help="heads, sequence, slots: only steps T0..T1-1 of the timelines, as T0:T1")
    f.add_argument("--zoom", choices=["auto", "on", "off"], default="auto",
                   help="heads: only the slots some head weights >= 0.05 (auto: as the app does, when few are)")
    f.add_argument("--no-marker", action="store_true", help="heads, sequence: no marker at step t")
    f.add_argument("--title", default=None, help="the figure's title (default: the view's; '' for none)")

    w = sub.add_parser("sweep", help="train every combination of a grid of settings for every seed, on Dask")
    w.add_argument("--task", default=TrainConfig.default("task"),
                   help="copy, repeat_copy, associative_recall, ngrams, priority_sort")
    w.add_argument("--model", default=TrainConfig.default("model"),
                   help="a model that trains on the sequence tasks: " + ", ".join(sweep_models()))
    w.add_argument("--seeds", default="0-3", help="seeds of every combination: 0-15, or 0,3,5 (default 0-3)")
    w.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2",
                   help="settings to vary, e.g. lr=1e-3,3e-3 heads=1,2 (keys: " + ", ".join(sweep_keys())
                        + ", task.FIELD)")
    w.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="settings every combination shares")
    _add_settings(w, TrainConfig, names=("steps", "validation_samples"), with_defaults=True,
                  notes={"steps": "per run (or vary `steps` in the grid)", "validation_samples": "scoring each run"})
    w.add_argument("--ensemble-size", type=int, default=4, help="seeds trained together in one Dask task")
    w.add_argument("--out", type=Path, required=True, help="the sweep's folder: checkpoints, cards, summary.csv/.md")
    w.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="an existing Dask scheduler (default: start a local cluster, one worker per core)")
    w.add_argument("--workers", type=int, default=None, help="local cluster: worker processes (default: one per core)")
    w.add_argument("--resume", action="store_true", help="continue the sweep that --out holds, as it was defined")
    w.add_argument("--quiet", action="store_true", help="a line per finished run instead of a progress bar")

    s = sub.add_parser("serve", help="open the explorer (same as `panel serve apps/explorer.py`)")
    s.add_argument("--checkpoint", type=Path, default=None,
                   help="open on this checkpoint (a file, or a shipped name such as copy-ntm); default: "
                        "the first in --checkpoints, else the shipped copy-ntm")
    s.add_argument("--checkpoints", type=Path, action="append", default=[], metavar="DIR",
                   help="also list the checkpoints in DIR (repeatable; $NTMVIZ_CHECKPOINTS adds more, "
                        "joined with ':'); the shipped checkpoints are always listed")
    s.add_argument("--sweep", type=Path, action="append", default=[], metavar="DIR",
                   help="a sweep folder (ntmviz sweep --out DIR) (the app opens on the Sweep tab, showing it), or a "
                        "folder holding sweeps (repeatable; $NTMVIZ_SWEEPS adds more, joined with ':')")
    s.add_argument("--port", type=int, default=5006, help="the port to serve on (default 5006)")
    s.add_argument("--address", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only)")
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
    """tqdm progress bar (or a log line every 100 steps)."""

    def __init__(self, args, total: int, start: int):
        from tqdm import tqdm

        self.args = args
        self.bar = tqdm(total=total, initial=start, unit="step", disable=args.quiet, dynamic_ncols=True)

    def on_step(self, trainer, m) -> None:
        self.bar.update(1)
        alive = f" models {sum(trainer.alive)}/{trainer.models}" if trainer.models > 1 else ""
        if self.args.quiet and m.step % 100 == 0:
            stage = f" stage {','.join(map(str, trainer.stages))}/{trainer.curriculum}" if trainer.curriculum else ""
            best = f" best {min(e for e in m.model_bit_errors if e == e):.4f}" if trainer.models > 1 else ""
            print(f"step {m.step} sequences {m.sequences} loss {m.loss:.4f} bit_errors {m.bit_errors:.4f}{best} "
                  f"seq/s {m.rate:.0f} seconds {m.seconds:.0f}{stage}{alive}", flush=True)
        if m.step % 10 == 0:
            self.bar.set_postfix_str(f"loss={m.loss:.3f}, bits={m.bit_errors:.3f}, seq/s={m.rate:.0f}{alive}")

    def on_end(self, trainer, reason: str) -> None:
        self.bar.close()


def best_path(path: Path) -> Path:
    """NAME.best.SUFFIX beside NAME.SUFFIX."""
    return path.with_name(f"{path.stem}.best{path.suffix}")


class _Signals:
    """Ctrl-C or SIGTERM asks the trainer to stop between two steps (so no half-applied update
    is saved); a second one gives up at once, keeping the last periodic checkpoints."""

    def __init__(self, trainer):
        self.trainer, self.count = trainer, 0

    def __call__(self, signum, frame):
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        self.trainer.stop()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self)
        signal.signal(signal.SIGINT, self)  # even where a shell started us with SIGINT ignored


def member_paths(out: Path, seeds: list[int], name: str = "model") -> list[Path]:
    """Where each model of a run goes: `out` itself for one seed, NAME-seedS.SUFFIX per seed for more.
    A folder that exists (or ".") holds NAME.safetensors."""
    if out.is_dir() or not out.name:
        out = out / f"{name}.safetensors"
    if len(seeds) == 1:
        return [out]
    return [out.with_name(f"{out.stem}-seed{seed}{out.suffix}") for seed in seeds]


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")


def cmd_train(args) -> int:
    from . import checkpoint as ckpt_io
    from .evaluate import evaluate
    from .models import build_model, pick_device
    from .train import Trainer, TrainingDiverged, check_memory
    from .train_callbacks import Checkpoints, Validation

    for name in ("eval_samples", "threads"):
        _check_positive("--" + name.replace("_", "-"), getattr(args, name))
    if args.seed is not None and args.seeds is not None:
        raise ConfigError("give --seed or --seeds, not both")
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
    given = _given(args, TrainConfig)
    if args.seed is not None:
        given["seeds"] = [args.seed]
    config = TrainConfig(**given)  # every setting not given: its default (config.py); ConfigError if one is bad
    torch.set_num_threads(args.threads)
    heap.keep_freed_memory()  # this process trains: each step's tape reuses the last one's pages
    device = pick_device(args.device)
    if args.resume is not None:
        if args.seeds is not None or args.seed is not None:
            raise ConfigError("a resumed run keeps its seeds: drop --seed/--seeds")
        ckpts = [ckpt_io.load(path, device=device) for path in args.resume]
        trainer = Trainer.resume_from(ckpts, batch_size=given.get("batch_size"), lr=given.get("lr"))
        paths = (member_paths(args.out, trainer.seeds, f"{trainer.task.name}-{trainer.model.config.kind}")
                 if args.out else list(args.resume))
        print(f"resuming {len(ckpts)} model(s) at step {trainer.step} ({trainer.sequences} sequences each)",
              file=sys.stderr)
    else:
        seeds = list(config.seeds)
        for line in foreign_settings(config.model, given):
            print(f"ntmviz: {line}", file=sys.stderr)
        task = config.build_task()
        model_config = config.model_config(task)
        batch_size = config.batch_size
        check_memory(model_config, task, len(seeds) * batch_size,
                     f"--seeds with {len(seeds)} models at batch {batch_size}")
        model = build_model(model_config, seeds=seeds).to(device)
        trainer = Trainer(model, task, seeds=seeds, **config.trainer_options())
        paths = member_paths(args.out or Path("runs/model.safetensors"), seeds, f"{task.name}-{model_config.kind}")
    hardware = f"{_cpu_name()}, {torch.get_num_threads()} torch thread(s), {device}"
    every = config.checkpoint_every
    checkpoints = Checkpoints(paths, every, with_optimizer=not args.slim, extra_meta={"hardware": hardware})
    best = [best_path(p) for p in paths]

    def save_best(trainer, k: int, step: int) -> None:
        trainer.save(best[k], member=k, with_optimizer=False,
                     extra_meta={"hardware": hardware, "chosen_by": f"validation stream (seed 0, "
                                 f"{config.validation_samples} sequences): {trainer.task.choice_rule}, at step {step}"})

    validation = Validation(config.validation_period, config.validation_samples, on_best=save_best)
    trainer.callbacks += [validation, checkpoints, _Progress(args, config.steps, trainer.step)]
    signals = _Signals(trainer)
    signals.install()
    try:
        reason = trainer.run(config.steps)
    except KeyboardInterrupt:
        print(f"\ninterrupted again at step {trainer.step}: not saved; the last checkpoints are those of every "
              f"{every} steps", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"ntmviz: training stopped: {exc}; the last good checkpoints are {', '.join(map(str, paths))} "
              f"(written every {every} steps)", file=sys.stderr)
        return 1
    checkpoints.save(trainer)
    if reason == "stopped":
        again = " ".join(str(p) for p in paths)
        print(f"\ninterrupted at step {trainer.step}; saved {again} (continue with --resume {again})", file=sys.stderr)
        return 130
    scores = evaluate(trainer.model, trainer.task, stream="validation", samples=args.eval_samples)
    print(f"{trainer.task.name}: {trainer.models} model(s), {trainer.step} steps, {trainer.sequences} sequences each, "
          f"{trainer.seconds:.0f} s of training")
    print(f"{'seed':>6}  {trainer.task.error_unit + ' (validation, 95% interval)':>42}  {'exact':>6}  checkpoint")
    for k, (seed, score, path) in enumerate(zip(trainer.seeds, scores, paths)):
        lo, hi = score.interval
        state = "" if trainer.alive[k] else f"  (diverged: {trainer.diverged[k]})"
        if trainer.skipped[k]:
            state += f"  ({len(trainer.skipped[k])} batch(es) skipped: the gradient overflowed)"
        print(f"{seed:>6}  {score.bit_errors:>22.3f} [{lo:.3f}, {hi:.3f}]{'':>6}  {100 * score.exact:5.1f}%  "
              f"{path}{state}")
    print(f"scored on {args.eval_samples} validation-stream sequences per model")
    return 0


# ---- eval / record / export / serve -------------------------------------------------------------

def cmd_eval(args) -> int:
    from . import checkpoint as ckpt_io
    from .cards import card_text, eval_table
    from .evaluate import check_request, evaluate

    check_request(args.stream, args.samples)
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
    from .shipped import checkpoint_path

    args.checkpoint = checkpoint_path(args.checkpoint)  # a file, or a shipped name such as copy-ntm
    ckpt = ckpt_io.load(args.checkpoint, device=args.device)
    print(f"{args.checkpoint}: {ckpt.integrity}", file=sys.stderr)
    if ckpt.task is None:
        raise ConfigError(f"{args.checkpoint}: the checkpoint names no task")
    task = ckpt.task
    variants = [(str(size), task.at(size)) for size in args.lengths] if args.lengths else task.eval_variants()
    slots = getattr(ckpt.config, "memory_slots", None)
    if slots is not None and not args.lengths:  # the task's own sizes: those the memory holds
        too_big = [label for label, variant in variants if variant.required_slots() > slots]
        if too_big:
            print(f"sizes {', '.join(too_big)} need more than the model's {slots} memory slots: left out",
                  file=sys.stderr)
        variants = [(label, variant) for label, variant in variants if label not in too_big]
    for _, variant in variants:
        if slots is not None:
            variant.check_fits(slots)
    seeds = [ckpt_io.load(path, device=args.device) for path in args.seeds_from or []]
    for other, path in zip(seeds, args.seeds_from or []):
        if (other.config, other.task) != (ckpt.config, task):
            raise ConfigError(f"{path} is not the same configuration and task as {args.checkpoint}")
    print(f"trained on: {ckpt.compute}", file=sys.stderr)  # the request is good: say what is being scored

    def score(model, variant) -> dict:
        return evaluate(model, variant, stream=args.stream, seed=args.seed, samples=args.samples)[0].to_dict()

    rows = [{"size": label, **score(ckpt.model, variant)} for label, variant in [("training range", task)] + variants]
    report = {"checkpoint": str(args.checkpoint), "task": task.name, "model": ckpt.config.kind,
              "parameters": sum(p.numel() for p in ckpt.model.parameters()),
              "difficulty": task.difficulty_name, "sequences_seen": ckpt.sequences,
              "checksum": ckpt.checksum, "stream": args.stream,
              "seed": args.seed, "samples": args.samples, "rows": rows}
    if seeds:
        # each seed on the training range and on the hardest size asked for: a seed can master the
        # first and fail the second (copy seeds that stop at length 20), and the card must say so
        hardest = variants[-1] if variants else None
        report["seeds"] = [{**score(other.model, task), "checkpoint": str(path), "seed": other.meta.get("seed"),
                            "step": other.step,
                            **({"hardest": {"size": hardest[0], **score(other.model, hardest[1])}} if hardest else {})}
                           for other, path in zip(seeds, args.seeds_from)]
    table = eval_table(report, task)
    from .mechanisms import describe_for_cli  # what the heads did: the same stream and seed, training range

    heads_text, report["mechanisms"] = describe_for_cli(ckpt.model, task, stream=args.stream, seed=args.seed,
                                                        samples=args.samples)
    table += "\n\n" + heads_text
    print(json.dumps(report, indent=2) if args.json else table)
    if args.card:
        card = args.checkpoint.with_suffix(".md")
        command = (f"ntmviz eval --checkpoint {ckpt.path.name} --samples {args.samples} --stream {args.stream} "
                   f"--seed {args.seed}" + (" --seeds-from ..." if args.seeds_from else ""))
        atomic_write(card, card_text(ckpt, f"Evaluation (`{command}`)", table).encode())
        print(f"wrote {card}", file=sys.stderr)
    return 0


def cmd_sweep(args) -> int:
    try:
        import distributed  # noqa: F401  (the optional extra)
    except ImportError:
        raise ConfigError("sweeps run on Dask: pip install 'ntmviz[cluster]'") from None
    from tqdm import tqdm

    from .sweep import Sweep, parse_grid, parse_value, run_sweep
    from .train import parse_seeds

    for name in ("ensemble_size", "workers"):
        _check_positive("--" + name.replace("_", "-"), getattr(args, name))
    fixed = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        fixed[key] = parse_value(key, value)
    sweep = Sweep.create(args.task, model=args.model, seeds=parse_seeds(args.seeds), grid=parse_grid(args.grid),
                         fixed=fixed, steps=args.steps, validation_samples=args.validation_samples,
                         ensemble_size=args.ensemble_size)
    bar = None

    def progress(done, total, row):
        nonlocal bar
        if "dashboard" in row:
            print(f"Dask dashboard: {row['dashboard']}", file=sys.stderr, flush=True)
            return
        if args.quiet:
            print(f"{done}/{total} combination {row['combination']} seed {row['seed']}: {row['status']}, "
                  f"{row['bit_errors']:.3f} bit errors/seq, solved {row['solved']}", flush=True)
            return
        if bar is None:
            bar = tqdm(total=total, unit="run")
        bar.update(1)

    rows = run_sweep(sweep, args.out, scheduler=args.scheduler, workers=args.workers, resume=args.resume,
                     progress=progress)
    if bar is not None:
        bar.close()
    solved = sum(1 for r in rows if r["solved"])
    print(f"{len(rows)} runs finished in {args.out} ({solved} solved); see {args.out / 'summary.md'}")
    return 0


def cmd_record(args) -> int:
    from . import checkpoint as ckpt_io
    from .episode import record

    from .shipped import checkpoint_path

    ckpt = ckpt_io.load(checkpoint_path(args.checkpoint), device=args.device)
    task = ckpt.task
    if task is None:
        raise ConfigError(f"{args.checkpoint}: the checkpoint names no task to record")
    if args.task is not None and args.task != task.name:
        raise ConfigError(f"{args.checkpoint} was trained on {task.name}, not {args.task}")
    meta = {"seed": args.seed, "checkpoint": str(args.checkpoint), "length": args.length}
    if args.input is not None:
        if args.length is not None:
            raise ConfigError("--input and --length both set the input: give one")
        if not task.typed_input:
            raise ConfigError(f"the {task.name} task takes no typed input")
        typed = sys.stdin.read() if args.input == "-" else args.input
        task, batch = task.typed(typed, args.seed)
        meta.update(length=task.largest_size, pattern=typed.strip())
    else:
        if args.length is not None:
            task = task.at(args.length)
        batch = task.sample(1, seed=args.seed)
    slots = getattr(ckpt.config, "memory_slots", None)
    if slots is not None:
        task.check_fits(slots)
    batch = batch.to(ckpt.model.device)
    episode = record(ckpt.model, batch, meta=meta, task=task)[0]
    episode.save(args.out)
    if "question" in episode.meta:  # a story: each pass (a memory network's hop) a step
        print(f"recorded {episode.steps} passes of the {episode.family.title} over a story of "
              f"{episode.meta['question']!r} "
              f"(answer {episode.meta['answer']}, the model's {episode.meta['model_answer']}) to {args.out}")
    else:
        print(f"recorded {episode.steps} steps of {task.name} ({episode.score():.4g} {episode.error_name}) "
              f"to {args.out}")
    return 0


def cmd_export(args) -> int:
    from .app import export_html
    from .episode import Episode

    path = export_html(Episode.load(args.episode), args.out)
    print(f"wrote {path}")
    return 0


def _numbers(flag: str, text: str) -> list[int]:
    """Whole numbers separated by commas ("" -> []); ConfigError naming the flag otherwise."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes whole numbers separated by commas, got {text!r}") from None


def cmd_figure(args) -> int:
    from .app.figures import FORMATS, save_figure
    from .episode import Episode

    fmt = (args.format or args.out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown figure format {fmt or args.out.name!r}: write .svg or .png (or give --format svg|png)")
    episode = Episode.load(args.episode)
    zoom = {"auto": None, "on": True, "off": False}[args.zoom]
    hidden = _numbers("--hide", args.hide)
    window = None
    if args.window.strip():
        parts = args.window.split(":")
        if len(parts) != 2:
            raise ConfigError(f"--window takes T0:T1 (steps T0 .. T1-1), got {args.window!r}")
        window = tuple(_numbers("--window", ",".join(parts)))
    path = save_figure(episode, args.view, args.out, step=args.step, format=fmt, scale=args.scale,
                       diff=args.diff, zoom=zoom, marker=not args.no_marker, title=args.title, hidden=hidden,
                       window=window)
    print(f"wrote {path}")
    return 0


def cmd_serve(args) -> int:
    for folder in args.checkpoints:
        if not folder.is_dir():
            raise ConfigError(f"--checkpoints {folder}: no such folder")
    for folder in args.sweep:
        if not folder.is_dir():
            raise ConfigError(f"--sweep {folder}: no such folder")
    import panel as pn

    from .app import Explorer, extension
    from .app.explorer import default_folder
    from .shipped import checkpoint_path

    extension()  # every stylesheet and script from this server (see ntmviz/app/local_resources.py)

    folders = default_folder(args.checkpoints)
    checkpoint = checkpoint_path(args.checkpoint) if args.checkpoint else None
    if checkpoint is not None and not checkpoint.is_file():
        raise ConfigError(f"--checkpoint {args.checkpoint}: no such file or shipped checkpoint")

    sweeps = [str(folder) for folder in args.sweep]

    def page():
        if checkpoint is not None:
            return Explorer.from_checkpoint(checkpoint, folder=folders, sweeps=sweeps)
        return Explorer.default(folders, sweeps=sweeps)

    page()  # warm up: import torch and record the first episode before the first visitor comes
    origins = sorted({f"{args.address}:{args.port}", f"localhost:{args.port}", f"127.0.0.1:{args.port}"})
    print(f"ntmviz explorer at http://{args.address}:{args.port}/ (Ctrl-C stops it)", flush=True)
    pn.serve(page, port=args.port, address=args.address, websocket_origin=origins, show=args.show,
             title="ntmviz explorer")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "record": cmd_record, "export": cmd_export,
            "figure": cmd_figure, "serve": cmd_serve, "sweep": cmd_sweep}


def check_device(text: str | None) -> None:
    """--device names a device torch knows and this machine has: else one line (ConfigError), not a
    traceback from deep inside torch once the model moves there."""
    if text is None:
        return
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"--device {text!r} is not a device torch knows (cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {text}: this machine has no CUDA GPU that torch {torch.__version__} can use; "
                          "use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_device(getattr(args, "device", None))
        return COMMANDS[args.command](args)
    except NtmvizError as exc:
        print(f"ntmviz: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
