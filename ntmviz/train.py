"""One training loop with callbacks, shared by `ntmviz train` and the live app.

    trainer = Trainer(model, get_task("copy"), batch_size=32, lr=1e-3, seed=0)
    trainer.callbacks.append(MyCallback())          # on_start / on_step / on_end, all optional
    trainer.run(steps=5000)                         # returns why it ended: "done" | "stopped"
    trainer.save("copy.safetensors")               # weights, optimiser, step: resumable

Every step samples a batch with a generator seeded from (seed, step), so a run resumed from
a checkpoint sees exactly the batches the uninterrupted run would have. A NaN or Inf loss
raises `TrainingDiverged` naming the step, before the optimiser touches the weights, so the
model and any checkpoint written so far stay the last good ones.

`pause()`, `resume()` and `stop()` may be called from any thread while `run` works.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import torch

from . import checkpoint as ckpt_io
from .errors import ConfigError, NtmvizError
from .thinning import thin_keys

OPTIMIZERS = ("adam", "rmsprop")

# The task fields a curriculum grows, as (min field, max field) pairs: stage k of K trains
# on min..min + (max - min) * k / K, so the last stage is the task as configured.
CURRICULUM_FIELDS = {
    "copy": [("min_length", "max_length")],
    "repeat_copy": [("min_length", "max_length"), ("min_repeats", "max_repeats")],
    "associative_recall": [("min_items", "max_items")],
}


def curriculum_task(task, stage: int, stages: int):
    """The task at curriculum stage `stage` (1..stages); the full task for tasks without one."""
    fields = CURRICULUM_FIELDS.get(task.name)
    if not fields or stage >= stages:
        return task
    changes = {}
    for low, high in fields:
        lo, hi = getattr(task, low), getattr(task, high)
        changes[high] = lo + math.ceil((hi - lo) * stage / stages)
    return task.replace(**changes)


class TrainingDiverged(NtmvizError):
    """The loss became NaN or Inf."""


class StepMetrics(NamedTuple):
    """What one training step reports to callbacks."""

    step: int  # steps done, this one included
    sequences: int  # sequences seen so far
    loss: float  # mean loss per sequence (nats) of this batch
    bit_errors: float  # mean wrong bits per sequence of this batch
    seconds: float  # training time so far (pauses excluded)
    rate: float  # sequences per second, smoothed


class Callback(Protocol):
    def on_start(self, trainer: "Trainer") -> None: ...
    def on_step(self, trainer: "Trainer", metrics: StepMetrics) -> None: ...
    def on_end(self, trainer: "Trainer", reason: str) -> None: ...


@dataclass
class History:
    """A learning curve kept bounded: when it reaches `limit` points it is thinned to half
    (`thinning.thin_keys`: the first point, the newest, evenly spaced between)."""

    limit: int = 2000
    sequences: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    bit_errors: list[float] = field(default_factory=list)

    def add(self, sequences: int, loss: float, bit_errors: float) -> None:
        self.sequences.append(sequences)
        self.loss.append(loss)
        self.bit_errors.append(bit_errors)
        if len(self.sequences) >= self.limit:
            keep = thin_keys(self.sequences, self.limit // 2)
            for name in ("sequences", "loss", "bit_errors"):
                values = getattr(self, name)
                setattr(self, name, [values[i] for i in keep])

    def to_dict(self) -> dict[str, list]:
        return {"sequences": self.sequences, "loss": self.loss, "bit_errors": self.bit_errors}


class Trainer:
    """Trains a model (NTM or LSTM baseline) on a task; callbacks do everything else."""

    def __init__(self, model: torch.nn.Module, task, *, batch_size: int = 32, lr: float = 1e-3,
                 optimizer: str = "adam", momentum: float = 0.9, clip: float = 10.0, seed: int = 0,
                 log_every: int = 10, curriculum: int = 0, curriculum_threshold: float = 0.5,
                 callbacks: list[Any] | None = None):
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if batch_size < 1 or not lr > 0:
            raise ConfigError(f"batch size must be >= 1 and lr > 0, got {batch_size} and {lr}")
        slots = getattr(model.config, "memory_slots", None)
        if slots is not None:
            task.check_fits(slots)
        if (task.input_size, task.output_size) != (model.config.input_size, model.config.output_size):
            raise ConfigError(f"task {task.name} has {task.input_size} inputs and {task.output_size} outputs, "
                              f"the model {model.config.input_size} and {model.config.output_size}")
        self.model, self.task = model, task
        self.batch_size, self.lr, self.clip, self.seed = batch_size, lr, clip, seed
        self.optimizer_name, self.momentum, self.log_every = optimizer, momentum, log_every
        if optimizer == "adam":
            self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        else:  # the paper's choice: RMSProp with momentum
            self.optimizer = torch.optim.RMSprop(model.parameters(), lr=lr, momentum=momentum)
        self.callbacks = list(callbacks or [])
        # Curriculum: `curriculum` stages of growing size; the next stage starts once the
        # smoothed bit errors per sequence fall below `curriculum_threshold`. 0: no curriculum.
        self.curriculum, self.curriculum_threshold = curriculum, curriculum_threshold
        self.stage = 1 if curriculum else 0
        self._smoothed_errors: float | None = None
        self.step = 0
        self.sequences = 0
        self.seconds = 0.0
        self.history = History()
        self._generator = torch.Generator()
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

    # ---- control, from any thread -------------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can end

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # ---- the loop -----------------------------------------------------------------------------
    @property
    def current_task(self):
        """The task at the current curriculum stage (the task itself without a curriculum)."""
        return curriculum_task(self.task, self.stage, self.curriculum) if self.curriculum else self.task

    def batch(self, step: int):
        """The batch of a given step: a function of (seed, step, curriculum stage) alone."""
        self._generator.manual_seed(self.seed * 1_000_003 + step)
        return self.current_task.sample(self.batch_size, generator=self._generator, device=self.model.device)

    def _advance_curriculum(self, bit_errors: float) -> None:
        if not self.curriculum or self.stage >= self.curriculum:
            return
        e = self._smoothed_errors
        self._smoothed_errors = bit_errors if e is None else 0.95 * e + 0.05 * bit_errors
        if self._smoothed_errors < self.curriculum_threshold:
            self.stage += 1
            self._smoothed_errors = None

    def train_step(self) -> StepMetrics:
        """One optimiser step on a fresh batch."""
        batch = self.batch(self.step)
        self.model.train()
        logits = self.model(batch.inputs)
        loss = self.task.loss(logits, batch)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss.item()} at step {self.step + 1}; "
                                   f"the weights are those of step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip or math.inf)
        if not torch.isfinite(norm):
            raise TrainingDiverged(f"the gradients became {norm.item()} at step {self.step + 1}; "
                                   f"the weights are those of step {self.step}")
        try:
            self.optimizer.step()
        except RuntimeError as exc:  # e.g. an update too large for float32
            raise TrainingDiverged(f"the update failed at step {self.step + 1} ({exc})") from None
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise TrainingDiverged(f"the weights became non-finite at step {self.step + 1}")
        self.step += 1
        self.sequences += self.batch_size
        errors = self.task.bit_errors(logits.detach(), batch).mean().item()
        self._advance_curriculum(errors)
        return StepMetrics(self.step, self.sequences, loss.item(), errors, self.seconds, 0.0)

    def run(self, steps: int) -> str:
        """Train until `steps` steps are done ("done") or `stop()` is called ("stopped").

        Raises TrainingDiverged on a NaN or Inf loss (callbacks' on_end sees "diverged"). A
        `stop()` that comes before `run` begins is kept: the run ends at once, "stopped".
        """
        for cb in self.callbacks:
            getattr(cb, "on_start", lambda t: None)(self)
        reason = "done"
        rate = 0.0
        try:
            while self.step < steps:
                if not self._running.is_set():
                    self._running.wait()
                if self._stop.is_set():
                    reason = "stopped"
                    break
                start = time.perf_counter()
                m = self.train_step()
                elapsed = time.perf_counter() - start
                self.seconds += elapsed
                # Exponential moving average of the rate: smooth, and needs no window.
                now = self.batch_size / max(elapsed, 1e-9)
                rate = now if rate == 0 else 0.9 * rate + 0.1 * now
                m = m._replace(seconds=self.seconds, rate=rate)
                if self.step % self.log_every == 0 or self.step == 1:
                    self.history.add(m.sequences, m.loss, m.bit_errors)
                for cb in self.callbacks:
                    getattr(cb, "on_step", lambda t, m: None)(self, m)
        except TrainingDiverged:
            reason = "diverged"
            raise
        finally:
            for cb in self.callbacks:
                getattr(cb, "on_end", lambda t, r: None)(self, reason)
        return reason

    # ---- checkpoints --------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """What a checkpoint records about this run besides the weights."""
        return {
            "seed": self.seed, "batch_size": self.batch_size, "lr": self.lr, "optimizer": self.optimizer_name,
            "momentum": self.momentum, "clip": self.clip, "train_seconds": round(self.seconds, 2),
            "torch": torch.__version__, "device": str(self.model.device), "history": self.history.to_dict(),
            "curriculum": self.curriculum, "curriculum_threshold": self.curriculum_threshold, "stage": self.stage,
        }

    def save(self, path, *, with_optimizer: bool = True, extra_meta: dict | None = None):
        """Write a checkpoint atomically. Without the optimiser it is smaller, not resumable exactly."""
        for p in self.model.parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(f"not saving step {self.step}: the weights are not finite")
        return ckpt_io.save(path, self.model, task=self.task, optimizer=self.optimizer if with_optimizer else None,
                            step=self.step, sequences=self.sequences, meta={**self.meta(), **(extra_meta or {})})

    @classmethod
    def resume_from(cls, checkpoint: "ckpt_io.Checkpoint", **overrides: Any) -> "Trainer":
        """A trainer that continues a checkpoint's run where it stopped."""
        meta = checkpoint.meta
        options = {k: meta[k] for k in ("batch_size", "lr", "optimizer", "momentum", "clip", "seed", "curriculum",
                                        "curriculum_threshold") if k in meta}
        options.update({k: v for k, v in overrides.items() if v is not None})
        if checkpoint.task is None:
            raise ConfigError(f"{checkpoint.path}: the checkpoint names no task to train on")
        trainer = cls(checkpoint.model, checkpoint.task, **options)
        if checkpoint.optimizer_state is not None and checkpoint.optimizer_class == type(trainer.optimizer).__name__:
            trainer.optimizer.load_state_dict(checkpoint.optimizer_state)
            for group in trainer.optimizer.param_groups:  # the saved state carries the old lr
                group["lr"] = trainer.lr
        trainer.step, trainer.sequences = checkpoint.step, checkpoint.sequences
        trainer.stage = int(meta.get("stage", trainer.stage))
        trainer.seconds = float(meta.get("train_seconds", 0.0))
        hist = meta.get("history") or {}
        trainer.history = History(sequences=list(hist.get("sequences", [])), loss=list(hist.get("loss", [])),
                                  bit_errors=list(hist.get("bit_errors", [])))
        return trainer


def evaluate(model: torch.nn.Module, task, *, samples: int = 100, batch_size: int = 50, seed: int = 12345) -> dict[str, float]:
    """Mean bit errors (and loss) per sequence over `samples` fresh sequences of `task`.

    The seed is far from training's (seed * 1_000_003 + step), so these are new samples.
    """
    errors, losses, n = 0.0, 0.0, 0
    generator = torch.Generator()
    generator.manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            while n < samples:
                b = min(batch_size, samples - n)
                batch = task.sample(b, generator=generator, device=model.device)
                logits = model(batch.inputs)
                errors += task.bit_errors(logits, batch).sum().item()
                losses += task.loss(logits, batch).item() * b
                n += b
    finally:
        model.train(was_training)
    result = {"bit_errors": errors / n, "loss": losses / n, "samples": n}
    if math.isnan(result["loss"]):
        raise TrainingDiverged("the model's outputs are NaN")
    return result


def ngram_bits(model: torch.nn.Module, task, *, samples: int = 100, batch_size: int = 50, seed: int = 12345) -> dict[str, float]:
    """Dynamic n-grams: mean bits per prediction of the model and of the optimal Bayesian estimator."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    model_bits, optimal_bits, n = 0.0, 0.0, 0
    with torch.inference_mode():
        while n < samples:
            b = min(batch_size, samples - n)
            batch = task.sample(b, generator=generator, device=model.device)
            model_bits += task.bits_per_prediction(model(batch.inputs), batch).sum().item()
            optimal_bits += task.optimal_bits_per_prediction(batch).sum().item()
            n += b
    return {"model_bits": model_bits / n, "optimal_bits": optimal_bits / n}
