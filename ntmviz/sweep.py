"""Sweeps: every combination of a grid of settings, for every seed, run as tasks on Dask.

    definition = Sweep.create("copy", seeds=range(16), grid={"lr": [1e-3, 3e-3], "heads": [1, 2]}, steps=2000)
    rows = run_sweep(definition, "sweeps/copy")                        # a local cluster, a worker per core
    rows = run_sweep(definition, "sweeps/copy", scheduler="tcp://host:8786")   # an existing Dask cluster

Each Dask task trains one seed ensemble (layers.py): the seeds of one combination, a few at a
time, share a configuration, so they run as one batched computation. Dask does the
scheduling, the networking and the retries (a task whose worker dies is run again elsewhere);
nothing here talks to the network itself.

The folder holds the sweep's definition (sweep.json), then per run (combination c, seed s)
runs/cC/seedS.safetensors and its card seedS.md, and a row seedS.json written last; a run
with a row is finished, so running the same sweep again skips it. summary.csv and summary.md
tabulate every finished run: its settings, seed, held-out score, whether it solved the task,
its training time, and whether it diverged.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import config as cfg
from . import heap
from .config import Setting, TrainConfig, check_value, model_config, model_settings, setting_of, settings
from .errors import ConfigError
from .files import atomic_write

FORMAT = "ntmviz-sweep"
VERSION = 1

# The settings a grid (or --set) may vary: the Trainer's options, `steps`, and the settings of every
# model that trains on the sequence tasks (sequence_models), each with its bounds and choices from
# its field in config.py; `heads` sets read_heads and write_heads together; `task.FIELD` sets a
# field of the task.
ALIASES = {"heads": ("read_heads", "write_heads")}


def sequence_models(task: Any = None) -> dict[str, str]:
    """The model kinds that train on `task` (a Task; default: on any of tasks.SEQUENCE_TASKS), each
    with its family's title: every kind of config.MODEL_KINDS whose model is registered
    (models.family), takes a step per input step, and whose config takes the task (its
    `for_task` raises nothing). Sweeps and the Train tab train these."""
    from .models import family
    from .tasks import SEQUENCE_TASKS

    tasks = [task] if task is not None else [cls() for cls in SEQUENCE_TASKS.values()]
    out = {}
    for kind in cfg.MODEL_KINDS:
        try:
            declared = family(kind)
        except ConfigError:  # a kind not registered yet builds nothing
            continue
        if declared.steps != "inputs":  # a memory network reads stories
            continue
        for t in tasks:
            try:
                cfg.MODEL_CONFIGS[kind].for_task(t)
            except ConfigError:  # a pointer network points at inputs; a task it cannot read
                continue
            out[kind] = declared.title
            break
    return out


def keys() -> dict[str, Setting]:
    """Every key a sweep may vary, with what it must be (config.Setting), read from the config's fields."""
    out = {s.name: s for s in settings(TrainConfig) if s.role == "trainer" or s.name == "steps"}
    out.update(model_settings(*sequence_models()))
    for alias, names in ALIASES.items():
        out[alias] = out[names[0]]._replace(name=alias, help=" and ".join(names))
    return out


TRAINER_KEYS = tuple(k for k, s in keys().items() if s.role == "trainer")
MODEL_KEYS = tuple(k for k, s in keys().items() if s.owner != "train" and k not in ALIASES)


def parse_value(key: str, text: str) -> Any:
    """One setting's value from text, checked against its field (config.py); ConfigError names the
    key and the value."""
    if key.startswith("task."):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    known = keys()
    if key not in known:
        raise ConfigError(f"unknown setting {key!r}; a grid can vary {', '.join(sorted(known))}, task.FIELD")
    s = known[key]
    if s.type in (int, float):
        try:
            value = s.type(text)
        except ValueError:
            raise ConfigError(f"{key}: {text!r} is not {'an integer' if s.type is int else 'a number'}") from None
        low, high = s.bounds or (None, None)
        closed_low, closed_high = s.inclusive_bounds
        if low is not None and (value < low or (value == low and not closed_low)):
            raise ConfigError(f"{key}: {value} is below {low}" if closed_low else f"{key}: {value} must be above {low}")
        if high is not None and (value > high or (value == high and not closed_high)):
            raise ConfigError(f"{key}: {value} is above {high}" if closed_high else f"{key}: {value} must be below {high}")
        check_value(s, value, key)
        return value
    if s.choices is not None and text not in s.choices:
        raise ConfigError(f"{key}: {text!r} is not one of {', '.join(s.choices)}")
    return text


def parse_grid(items: Iterable[str]) -> dict[str, list]:
    """["lr=1e-3,3e-3", "heads=1,2"] -> {"lr": [0.001, 0.003], "heads": [1, 2]}."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--grid {item!r}: expected KEY=VALUE,VALUE,...")
        if key in grid:
            raise ConfigError(f"--grid {key} appears twice")
        grid[key] = [parse_value(key, v.strip()) for v in values.split(",")]
    return grid


@dataclass
class Sweep:
    """A sweep's definition: what sweep.json holds. Two runs of the same definition are one sweep."""

    task: str
    model: str = TrainConfig.default("model")
    seeds: list[int] = field(default_factory=lambda: [0])
    grid: dict[str, list] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)  # settings every combination shares
    steps: int = TrainConfig.default("steps")
    validation_samples: int = TrainConfig.default("validation_samples")
    ensemble_size: int = 4  # seeds per Dask task (one seed ensemble)

    @classmethod
    def create(cls, task: str, *, seeds: Iterable[int], grid: dict[str, list] | None = None,
               fixed: dict[str, Any] | None = None, **options: Any) -> "Sweep":
        """A checked definition: every combination builds (task, model, trainer settings) before any work."""
        sweep = cls(task=task, seeds=[int(s) for s in seeds], grid=dict(grid or {}), fixed=dict(fixed or {}), **options)
        sweep.check()
        return sweep

    def check(self) -> None:
        kinds = sequence_models()
        if self.model not in kinds:
            raise ConfigError(f"unknown model {self.model!r}; expected one of {', '.join(kinds)}")
        for name in ("steps", "validation_samples"):
            check_value(setting_of(TrainConfig, name), getattr(self, name), name)
        if not isinstance(self.ensemble_size, int) or self.ensemble_size < 1:
            raise ConfigError(f"ensemble_size must be a positive integer, got {self.ensemble_size!r}")
        if not self.seeds or min(self.seeds) < 0 or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct non-negative integers, got {self.seeds}")
        for key, values in {**self.grid, **{k: [v] for k, v in self.fixed.items()}}.items():
            if not values:
                raise ConfigError(f"{key}: no values")
            for value in values:
                parse_value(key, str(value) if not isinstance(value, str) else value)
        for key in self.grid:
            if key in self.fixed:
                raise ConfigError(f"{key} is both in the grid and fixed")
        for settings in self.combinations():
            build_run(self, settings, [self.seeds[0]], check_only=True)

    def combinations(self) -> list[dict[str, Any]]:
        """Every combination of the grid, with the fixed settings: [{key: value}], in a fixed order."""
        keys = list(self.grid)
        return [{**self.fixed, **dict(zip(keys, values))} for values in itertools.product(*(self.grid[k] for k in keys))]

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, name: str = "sweep.json") -> "Sweep":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}: not JSON ({exc})") from None
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT or data.pop("version", None) != VERSION:
            raise ConfigError(f"{name}: not an ntmviz sweep definition")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{name}: bad sweep definition ({exc})") from None


def label(settings: dict[str, Any]) -> str:
    """'lr=0.001 heads=2' (the settings that tell combinations apart)."""
    return " ".join(f"{k}={v}" for k, v in settings.items()) or "(defaults)"


def build_run(sweep: Sweep, settings: dict[str, Any], seeds: list[int], check_only: bool = False):
    """(task, model config, trainer options, steps) of one combination; the model for `seeds`
    unless check_only."""
    from .tasks import get_task

    task_options = {k[len("task."):]: v for k, v in settings.items() if k.startswith("task.")}
    task = get_task(sweep.task, **task_options)
    known, own = keys(), model_settings(sweep.model)
    model_options = {k: v for k, v in settings.items() if k in known and known[k].owner != "train"}
    foreign = [k for k in model_options if not set(ALIASES.get(k, (k,))) <= set(own)]
    if foreign:
        raise ConfigError(f"{', '.join(foreign)}: not a setting of the {sweep.model} model")
    for alias, names in ALIASES.items():
        if alias in model_options:
            value = model_options.pop(alias)
            model_options.update({name: value for name in names})
    config = model_config(sweep.model, task, **model_options)
    if hasattr(config, "memory_slots"):
        task.check_fits(config.memory_slots)
    trainer_options = {k: v for k, v in settings.items() if k in TRAINER_KEYS}
    steps = int(settings.get("steps", sweep.steps))
    if check_only:
        return task, config, trainer_options, steps
    from .models import build_model

    return task, build_model(config, seeds=seeds), trainer_options, steps


# ---- one Dask task: a seed ensemble of one combination ---------------------------------------------

def run_paths(folder: Path, combination: int, seed: int) -> dict[str, Path]:
    base = folder / "runs" / f"c{combination}"
    return {"checkpoint": base / f"seed{seed}.safetensors", "card": base / f"seed{seed}.md",
            "row": base / f"seed{seed}.json", "partial": base / f"partial-seed{seed}.safetensors"}


PARTIAL_EVERY = 200  # steps between a Dask task's partial checkpoints: a task run again loses at most these


def train_ensemble(sweep_json: str, folder: str, combination: int, seeds: list[int],
                   checkpoint_every: int = PARTIAL_EVERY) -> list[dict]:
    """Train seeds `seeds` of combination `combination` as one ensemble; write each run's
    checkpoint, card and row; return the rows. Runs already finished are read, not redone; a
    task run again after its worker died resumes from the runs' partial checkpoints."""
    import torch

    from . import checkpoint as ckpt_io
    from .cards import card_text, eval_table
    from .evaluate import evaluate
    from .train import Trainer, TrainingDiverged
    from .train_callbacks import Checkpoints

    torch.set_num_threads(1)
    heap.keep_freed_memory()  # a sweep's worker process exists to train, as `ntmviz train`'s does
    sweep, root = Sweep.from_json(sweep_json), Path(folder)
    settings = sweep.combinations()[combination]
    paths = {s: run_paths(root, combination, s) for s in seeds}
    todo = [s for s in seeds if not paths[s]["row"].exists()]
    rows = [json.loads(paths[s]["row"].read_text()) for s in seeds if s not in todo]
    if not todo:
        return rows
    task, model, options, steps = build_run(sweep, settings, todo)
    partial = [paths[s]["partial"] for s in todo]
    if all(p.exists() for p in partial):
        trainer = Trainer.resume_from([ckpt_io.load(p, device="cpu") for p in partial])
    else:
        trainer = Trainer(model, task, seeds=todo, **options)

    trainer.callbacks.append(Checkpoints(partial, checkpoint_every))
    started = time.perf_counter()
    status = "done"
    try:
        trainer.run(steps)
    except TrainingDiverged:
        status = "diverged"
    scores = evaluate(trainer.model, task, stream="validation", samples=sweep.validation_samples)
    for k, seed in enumerate(todo):
        path = paths[seed]
        run_status = "diverged" if (status == "diverged" or not trainer.alive[k]) else "done"
        meta = {"sweep": {"folder": str(root), "combination": combination, "settings": settings}}
        trainer.save(path["checkpoint"], member=k, with_optimizer=False, extra_meta=meta)
        score = scores[k].to_dict()
        report = {"checkpoint": str(path["checkpoint"]), "task": task.name, "model": sweep.model,
                  "parameters": sum(p.numel() for p in trainer.model.member(k).parameters()),
                  "difficulty": task.difficulty_name, "sequences_seen": trainer.sequences, "stream": "validation",
                  "seed": 0, "samples": sweep.validation_samples, "rows": [{"size": "training range", **score}]}
        ckpt = ckpt_io.load(path["checkpoint"], device="cpu")
        varied = label({key: settings[key] for key in sweep.grid})
        atomic_write(path["card"], card_text(ckpt, f"Validation score (sweep {varied})",
                                             eval_table(report, task)).encode())
        solved_bar = task.solved_below
        row = {"combination": combination, **{k: settings.get(k) for k in sweep.grid}, "seed": seed,
               "bit_errors": score["bit_errors"], "interval": score["interval"], "exact": score["exact"],
               "solved": None if solved_bar is None else bool(run_status == "done" and score["bit_errors"] < solved_bar),
               "status": run_status, "diverged": trainer.diverged.get(k, ""), "steps": trainer.step,
               "train_seconds": round(trainer.seconds, 1), "wall_seconds": round(time.perf_counter() - started, 1),
               "checkpoint": str(path["checkpoint"].relative_to(root))}
        atomic_write(path["row"], json.dumps(row).encode())  # last: the run is finished
        path["partial"].unlink(missing_ok=True)
        rows.append(row)
    return rows


# ---- the client side: connect, submit, collect, summarise ----------------------------------------------

def check_folder(sweep: Sweep, folder: Path, resume: bool) -> Sweep:
    """The definition to run in `folder`: this one (the folder new or holding the same sweep),
    or, with `resume`, the one the folder holds. Refuses a folder of another sweep. Writes nothing."""
    manifest = folder / "sweep.json"
    if manifest.exists():
        existing = Sweep.from_json(manifest.read_text(), str(manifest))
        if resume or asdict(existing) == asdict(sweep):
            return existing
        raise ConfigError(f"{folder} holds another sweep ({existing.task}, grid {existing.grid}, seeds "
                          f"{existing.seeds}); choose another --out, or --resume to continue that one")
    if resume:
        raise ConfigError(f"{folder}: no sweep to resume (no sweep.json)")
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} is not empty and holds no sweep; choose another --out")
    return sweep


def connect(scheduler: str | None, workers: int | None, timeout: float = 5.0):
    """(client, cluster or None): an existing scheduler, or a local cluster of one
    single-threaded worker process per core (or `workers`), on loopback."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout}s"), None
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} within {timeout:.0f} s "
                              f"({type(exc).__name__})") from None
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0")
    return Client(cluster), cluster


def tasks_of(sweep: Sweep, folder: Path) -> list[tuple[int, list[int]]]:
    """(combination, seeds) per Dask task: the unfinished runs, up to `ensemble_size` seeds each."""
    tasks = []
    for c in range(len(sweep.combinations())):
        todo = [s for s in sweep.seeds if not run_paths(folder, c, s)["row"].exists()]
        for i in range(0, len(todo), sweep.ensemble_size):
            tasks.append((c, todo[i:i + sweep.ensemble_size]))
    return tasks


def finished_rows(sweep: Sweep, folder: Path) -> list[dict]:
    rows = []
    for c in range(len(sweep.combinations())):
        for s in sweep.seeds:
            path = run_paths(folder, c, s)["row"]
            if path.exists():
                rows.append(json.loads(path.read_text()))
    return rows


ROW_NUMBERS = ("bit_errors", "exact", "steps", "train_seconds")  # what a row must hold to be shown


@dataclass
class SweepFolder:
    """A sweep folder as read by `read_folder`: from sweep.json and the runs' rows alone."""

    folder: Path
    sweep: Sweep
    rows: list[dict]                    # the finished runs, in (combination, seed) order
    missing: list[tuple[int, int]]      # (combination, seed) of every run with no row yet
    problems: list[str]                 # rows that are there but cannot be read
    partial: list[tuple[int, int]]      # unfinished runs with a partial checkpoint (training, or stopped)


def read_folder(folder: str | os.PathLike) -> SweepFolder:
    """What `folder` holds, for a viewer: never unpickles, never opens a checkpoint, writes
    nothing. ConfigError (one line) if the folder holds no readable sweep definition; a row
    that cannot be read is listed in `problems` and its run counted neither finished nor missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    manifest = folder / "sweep.json"
    if not manifest.is_file():
        raise ConfigError(f"{folder} is not a sweep folder: it has no sweep.json (`ntmviz sweep --out FOLDER` "
                          f"makes one)")
    try:
        sweep = Sweep.from_json(manifest.read_text(encoding="utf-8"), str(manifest))
        combinations = sweep.combinations()
        seeds = [int(s) for s in sweep.seeds]
    except (OSError, UnicodeDecodeError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{manifest}: not a readable sweep definition ({type(exc).__name__})") from None
    rows, missing, problems, partial = [], [], [], []
    for c in range(len(combinations)):
        for s in seeds:
            paths = run_paths(folder, c, s)
            if not paths["row"].exists():
                missing.append((c, s))
                if paths["partial"].exists():
                    partial.append((c, s))
                continue
            name = str(paths["row"].relative_to(folder))
            try:
                row = json.loads(paths["row"].read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                problems.append(f"{name}: not a readable row")
                continue
            if not isinstance(row, dict) or row.get("combination") != c or row.get("seed") != s:
                problems.append(f"{name}: not the row of combination {c}, seed {s}")
                continue
            interval = row.get("interval")
            numbers = [row.get(k) for k in ROW_NUMBERS] + (list(interval) if isinstance(interval, list) else [])
            if (not isinstance(interval, list) or len(interval) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)):
                problems.append(f"{name}: a row without its scores")
                continue
            rows.append(row)
    return SweepFolder(folder, sweep, rows, missing, problems, partial)


def write_summary(sweep: Sweep, folder: Path) -> list[dict]:
    """summary.csv and summary.md from every finished run's row (one line per run)."""
    rows = finished_rows(sweep, folder)
    columns = ["combination", *sweep.grid, "seed", "bit_errors", "interval_low", "interval_high", "exact", "solved",
               "status", "steps", "train_seconds", "checkpoint"]
    flat = [{**r, "interval_low": r["interval"][0], "interval_high": r["interval"][1]} for r in rows]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write(folder / "summary.csv", out.getvalue().encode())
    md = [f"# Sweep: {sweep.task} ({sweep.model}), {len(sweep.combinations())} combinations x {len(sweep.seeds)} seeds",
          "", f"Held-out score: mean bit errors per sequence on {sweep.validation_samples} validation-stream sequences "
          "[95% interval].", "",
          "| " + " | ".join(["settings", "seed", "bit errors", "exact", "solved", "status", "train s"]) + " |",
          "| --- | ---: | ---: | ---: | --- | --- | ---: |"]
    for r in flat:
        settings = label({k: r.get(k) for k in sweep.grid})
        md.append(f"| {settings} | {r['seed']} | {r['bit_errors']:.3f} [{r['interval_low']:.3f}, "
                  f"{r['interval_high']:.3f}] | {100 * r['exact']:.1f}% | {r['solved']} | {r['status']} | "
                  f"{r['train_seconds']} |")
    atomic_write(folder / "summary.md", ("\n".join(md) + "\n").encode())
    return rows


def run_sweep(sweep: Sweep, folder: str | os.PathLike, *, scheduler: str | None = None, workers: int | None = None,
              resume: bool = False, progress=None, retries: int = 3) -> list[dict]:
    """Run every unfinished run of `sweep` into `folder` on Dask; returns every finished run's row.

    progress(done, total, row) is called as runs finish (the CLI's progress bar)."""
    from distributed import as_completed

    folder = Path(folder)
    sweep = check_folder(sweep, folder, resume)
    client, cluster = connect(scheduler, workers)  # an unreachable scheduler stops us before any write
    try:
        if not (folder / "sweep.json").exists():
            atomic_write(folder / "sweep.json", sweep.to_json().encode())
        todo = tasks_of(sweep, folder)
        if client.dashboard_link and progress is not None:
            progress(None, None, {"dashboard": client.dashboard_link})
        total = sum(len(seeds) for _, seeds in todo)
        definition = sweep.to_json()
        futures = [client.submit(train_ensemble, definition, str(folder.resolve()), c, seeds, retries=retries,
                                 pure=False, key=f"ntmviz-sweep-c{c}-seeds-{'-'.join(map(str, seeds))}-{time.time_ns()}")
                   for c, seeds in todo]
        done = 0
        for future in as_completed(futures):
            rows = future.result()  # the task's own runs
            done += len(rows)
            write_summary(sweep, folder)
            if progress is not None:
                for row in rows:
                    progress(done, total, row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return write_summary(sweep, folder)
