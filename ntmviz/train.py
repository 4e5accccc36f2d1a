"""One training loop with callbacks, shared by `ntmviz train`, sweeps and the live app.

    trainer = Trainer(model, get_task("copy"), seeds=[0, 1, 2], batch_size=16, lr=1e-3)
    trainer.callbacks.append(MyCallback())          # on_start / on_step / on_end, all optional
    trainer.run(steps=5000)                         # returns why it ended: "done" | "stopped"
    trainer.save("copy-seed1.safetensors", member=1)  # one model's weights, optimiser, history

A Trainer trains K models at once, one per seed (a seed ensemble; K = 1 is a single run):
`model` holds K models (model.models == len(seeds), see layers.py), each step feeds model k
a batch of its own from the training stream of seed k (streams.py), and every model has its
own optimiser moments, gradient clipping, curriculum stage, learning curve and divergence.
The step of model k depends only on (seed k, step, its curriculum stage), so a run resumed
from its checkpoints sees exactly the batches the uninterrupted run would have, and model k
of seeds 0-7 trains exactly as seed k alone would (up to float rounding).

Divergence: a model whose loss or updated weights are NaN or Inf stops there; its weights
(and optimiser moments) stay those of the step before, and the others go on. A gradient that
overflows float32 from a finite loss (the addressing's backward through time can explode on a
rare batch; in float64 the same gradient is finite) skips that batch instead: the model's
weights stay, and only after MAX_SKIPPED such batches in a row is it called diverged.
When every model has diverged, `run` raises TrainingDiverged naming the step. A resume trains
every model again, a diverged one from its last good weights (its phase records that).

Read-backs. A step reads nothing back from the device: which models train, their overflowing
batches in a row, the masking of a stopped model's gradients, weights and moments all stay
device tensors, and each step leaves its per-model loss, bit errors, gradient norm and verdicts
on the device. `run` reads the steps back together (one `_to_host` call) every `sync_every`
steps, and where the host needs the truth: before a pause or a stop, at the end of the run,
while a curriculum still grows (the next batch depends on this step's errors), and at every
step a callback's `needs_model_at(step)` asks for. Then it does each step's bookkeeping in
order, as the step itself once did (a model that diverged is recorded at its true step; when
all have, the trainer is put back to the step before, as if the later steps never ran), and
calls `on_step` for it. So `on_step` may hear of a step up to `sync_every - 1` steps late, with
the model already further on; `trainer.alive`, `histories`, `stages` ... are then those of the
step being told. Read back every step (sync_every=1, the CPU's default) everything happens as
each step ends. On the CPU alone, where a tensor is host memory and reading one waits for
nothing, the step also reads its masks to skip the masking ops that would change nothing
(`host_reads`, `_may_change`); a GPU applies them all.

Pausing. `pause()`, `resume()` and `stop()` may be called from any thread (and from a signal
handler) while `run` works; they take effect between optimiser steps, never inside one. This is
the one pause of a run: while paused the loop holds between two steps and calls its callbacks'
`on_pause(trainer)` when the hold begins and again whenever `wake()` is called (or every
PAUSE_POLL seconds), so a callback can work on the model meanwhile (the live app saves and
records there); `on_resume(trainer)` when the hold ends.

The callbacks the CLI, sweeps and the live app share (`Validation`, `Checkpoints`) are in
train_callbacks.py.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, Sequence

import torch

from . import checkpoint as ckpt_io
from . import native
from .config import OPTIMIZERS, TRAINER_OPTIONS, trainer_defaults  # noqa: F401  (OPTIMIZERS: as before)
from .errors import ConfigError, NtmvizError
from .models import build_model, pick_device  # noqa: F401  (the app makes the models it trains through here)
from .streams import stream_seed
from .tasks import Batch
from .thinning import thin_keys

PAUSE_POLL = 0.1  # seconds between two on_pause calls of a paused run when nothing wakes it
MAX_SKIPPED = 10  # overflowing gradients in a row before a model is called diverged

# The task fields a curriculum grows, as (min field, max field) pairs: stage k of K trains
# on min..min + (max - min) * k / K, so the last stage is the task as configured.
CURRICULUM_FIELDS = {
    "copy": [("min_length", "max_length")],
    "repeat_copy": [("min_length", "max_length"), ("min_repeats", "max_repeats")],
    "associative_recall": [("min_items", "max_items")],
    **{name: [("min_n", "max_n")] for name in ("anbn", "anbncn", "anbncndn", "anb2n", "anbmcnm")},
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
    """Every model's loss, gradients or weights became NaN or Inf."""


class StepMetrics(NamedTuple):
    """What one training step reports to callbacks. Per-model tuples have K entries, NaN for
    a model that has diverged; the plain numbers are means over the models still training."""

    step: int  # steps done, this one included
    sequences: int  # sequences each model has seen so far
    loss: float  # mean loss per sequence (nats) of this step's batches
    bit_errors: float  # mean wrong bits per sequence of this step's batches
    seconds: float  # training time so far (pauses excluded)
    rate: float  # sequences per second, all models together, smoothed
    model_loss: tuple[float, ...] = ()
    model_bit_errors: tuple[float, ...] = ()


class Callback(Protocol):
    """Every method is optional; all run in the training thread, between optimiser steps.

    `on_step` is called once per step, in order, when the step has been read back (see the module
    docstring): at once for the steps `needs_model_at` asked for (the model, the optimiser and
    trainer.step are then those of metrics.step), else possibly a few steps later."""

    def on_start(self, trainer: "Trainer") -> None: ...
    def needs_model_at(self, step: int) -> bool: ...  # after each step: True reads back now, on_step before the next
    def on_step(self, trainer: "Trainer", metrics: StepMetrics) -> None: ...
    def on_pause(self, trainer: "Trainer") -> None: ...  # held: when the hold begins, and on every wake()
    def on_resume(self, trainer: "Trainer") -> None: ...  # the hold ended (resumed or stopped)
    def on_end(self, trainer: "Trainer", reason: str) -> None: ...


@dataclass
class History:
    """One model's learning curve, kept bounded: when it reaches `limit` points it is thinned
    to half (`thinning.thin_keys`: the first point, the newest, evenly spaced between).
    Each point carries the curriculum stage it was trained at (0: no curriculum)."""

    limit: int = 2000
    sequences: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    bit_errors: list[float] = field(default_factory=list)
    stage: list[int] = field(default_factory=list)

    FIELDS = ("sequences", "loss", "bit_errors", "stage")

    def add(self, sequences: int, loss: float, bit_errors: float, stage: int = 0) -> None:
        self.sequences.append(sequences)
        self.loss.append(loss)
        self.bit_errors.append(bit_errors)
        self.stage.append(stage)
        if len(self.sequences) >= self.limit:
            keep = thin_keys(self.sequences, self.limit // 2)
            for name in self.FIELDS:
                values = getattr(self, name)
                setattr(self, name, [values[i] for i in keep])

    def to_dict(self) -> dict[str, list]:
        return {name: list(getattr(self, name)) for name in self.FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, list], limit: int = 2000) -> "History":
        """A curve from `to_dict`; points logged before stages were recorded get stage -1 (unknown)."""
        n = len(data.get("sequences", []))
        return cls(limit=limit, sequences=list(data.get("sequences", [])), loss=list(data.get("loss", [])),
                   bit_errors=list(data.get("bit_errors", [])), stage=list(data.get("stage", [-1] * n)))


def parse_seeds(text: str, limit: int = 1024, what: str = "--seeds") -> list[int]:
    """'0-7' -> [0..7]; '0,3,5' -> [0, 3, 5]; '2' -> [2]. Raises ConfigError for an empty,
    negative, reversed, repeated or too long list; its message starts with `what` (the option
    or field the text came from)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise ConfigError(f"{what} {text!r}: empty item (expected e.g. 0-7 or 0,3,5)")
        low, dash, high = part.partition("-")
        try:
            a = int(low)
            b = int(high) if dash else a
        except ValueError:
            raise ConfigError(f"{what} {text!r}: {part!r} is not a seed or a range of seeds (e.g. 0-7)") from None
        if b < a:
            raise ConfigError(f"{what} {text!r}: the range {part} runs backwards")
        if b - a + 1 + len(seeds) > limit:
            raise ConfigError(f"{what} {text!r}: more than {limit} seeds")
        seeds.extend(range(a, b + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{what} {text!r}: a seed appears twice")
    return seeds


def available_memory() -> int | None:
    """Bytes of memory the system has available now (Linux), or None where it cannot tell."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def step_bytes(config, task, rows: int) -> int:
    """About how much memory one training step holds for backward: `rows` sequences of the
    task's longest size, float32. A rough upper estimate, to refuse hopeless runs up front."""
    # a task without a size (dates) draws items of several lengths: the longest of a batch stands in
    steps = (task.at(task.largest_size) if task.size_field else task).sample(64, seed=0).inputs.shape[1]
    per_step = config.numbers_per_step(steps)
    return 4 * rows * steps * (per_step + 4 * config.output_size)


def check_memory(config, task, rows: int, what: str) -> None:
    """Raise ConfigError when a step of `rows` sequences needs more memory than is available."""
    need, have = step_bytes(config, task, rows), available_memory()
    if have is not None and need > 0.8 * have:
        raise ConfigError(f"{what} need about {need / 2**30:.1f} GB per step; "
                          f"this machine has {have / 2**30:.1f} GB available")


def _per_model(x: torch.Tensor, models: int) -> torch.Tensor:
    """[P, ...] rows -> [K] means over each model's rows."""
    return x.reshape(models, -1).mean(1)


def _to_host(x: torch.Tensor) -> list:
    """The one read of the training steps' results from the device (one call per read-back;
    tests/test_host_syncs.py counts them). On a GPU it waits for every queued kernel."""
    return x.tolist()


def default_sync_every(device: torch.device | str) -> int:
    """Steps between two read-backs when the Trainer is not told: 1 on the CPU, 16 elsewhere.

    On the CPU a step's values are in host memory as soon as it ends and nothing is queued
    ahead, so a read-back costs nothing, and reading back every step keeps everything as it
    always was: callbacks hear of each step as it ends. On a GPU a read-back makes the host wait
    until every queued kernel has run, so it cannot queue the next step meanwhile; 16 steps
    between two read-backs let it run ahead, and callbacks hear of a step at most 15 steps late."""
    return 1 if torch.device(device).type == "cpu" else 16


def _upload(batch: Batch, device: torch.device) -> Batch:
    """The batch on the model's device. A CUDA copy from ordinary (pageable) host memory waits
    for the device to finish everything queued; from pinned memory it is queued like a kernel."""
    if device.type != "cuda":
        return batch.to(device)
    return Batch(*(x.pin_memory().to(device, non_blocking=True) for x in batch))


def _trailing_run(steps: list[int], last: int) -> int:
    """How many of the steps up to `last` are in `steps` without a gap (at most MAX_SKIPPED)."""
    n = 0
    while n < MAX_SKIPPED and n < len(steps) and steps[-1 - n] == last - n:
        n += 1
    return n


def _rows(x: torch.Tensor, K: int) -> tuple[int, ...]:
    """The shape that broadcasts a [K] per-model vector over x's rows ([K, ...])."""
    return (K,) + (1,) * (x.dim() - 1)


# What each step leaves on the device for the host, one [K] row each of its [7, K] record.
RECORD = ("loss", "bit_errors", "norm", "lost_loss", "skipped", "lost_skipped", "lost_weights")


class _StepInfo(NamedTuple):
    """What the host itself knows of a step not read back yet."""

    seconds: float  # host time spent on it (on a GPU: queuing it)
    had_state: bool  # the optimiser had state before it (its first step creates it)
    kernels: bool  # the native kernels ran
    failed: str  # the optimiser's step raised this RuntimeError ("" when it did not)


class Trainer:
    """Trains K models (NTMs or LSTM baselines) of one configuration on a task, one per seed;
    callbacks do everything else."""

    def __init__(self, model: torch.nn.Module, task, *, seeds: int | Sequence[int] = 0,
                 batch_size: int | None = None, lr: float | None = None, optimizer: str | None = None,
                 momentum: float | None = None, clip: float | None = None, log_every: int = 10,
                 curriculum: int | None = None, curriculum_threshold: float | None = None,
                 callbacks: list[Any] | None = None, sync_every: int | None = None):
        """The optimiser's options left None take config.TrainConfig's defaults (the learning
        rate: the optimiser's own, config.OPTIMIZERS); ConfigError for a bad one. `sync_every`:
        steps between two read-backs (None: default_sync_every of the model's device)."""
        if sync_every is None:
            sync_every = default_sync_every(model.device)
        if not isinstance(sync_every, int) or isinstance(sync_every, bool) or sync_every < 1:
            raise ConfigError(f"sync_every must be an integer >= 1, got {sync_every!r}")
        self.seeds = [seeds] if isinstance(seeds, int) else [int(s) for s in seeds]
        K = len(self.seeds)
        if getattr(model, "models", 1) != K:
            raise ConfigError(f"the model holds {getattr(model, 'models', 1)} models for {K} seeds")
        if min(self.seeds) < 0:
            raise ConfigError(f"seeds must be non-negative, got {self.seeds}")
        o = trainer_defaults(batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum, clip=clip,
                             curriculum=curriculum, curriculum_threshold=curriculum_threshold)
        batch_size, lr, optimizer, momentum, clip = o["batch_size"], o["lr"], o["optimizer"], o["momentum"], o["clip"]
        curriculum, curriculum_threshold = o["curriculum"], o["curriculum_threshold"]
        slots = getattr(model.config, "memory_slots", None)
        if slots is not None:
            task.check_fits(slots)
        if (task.input_size, task.output_size) != (model.config.input_size, model.config.output_size):
            raise ConfigError(f"task {task.name} has {task.input_size} inputs and {task.output_size} outputs, "
                              f"the model {model.config.input_size} and {model.config.output_size}")
        self.model, self.task = model, task
        self.batch_size, self.lr, self.clip = batch_size, lr, clip
        self.optimizer_name, self.momentum, self.log_every = optimizer, momentum, log_every
        self.sync_every = sync_every
        self.params = list(model.parameters())
        if optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.params, lr=lr)
        else:  # the paper's choice: RMSProp with momentum (config.OPTIMIZERS names every optimiser)
            self.optimizer = torch.optim.RMSprop(self.params, lr=lr, momentum=momentum)
        self.callbacks = list(callbacks or [])
        # Curriculum: `curriculum` stages of growing size; a model moves to its next stage once
        # its smoothed bit errors per sequence fall below `curriculum_threshold`. 0: none.
        self.curriculum, self.curriculum_threshold = curriculum, curriculum_threshold
        self.stages = [1 if curriculum else 0] * K
        self._smoothed_errors: list[float | None] = [None] * K
        self.alive = [True] * K
        self.diverged: dict[int, str] = {}  # model index -> what happened, for cards and tables
        self.skipped: list[list[int]] = [[] for _ in range(K)]  # steps whose gradient overflowed, per model
        self.step = 0
        self.seconds = 0.0
        self.histories = [History() for _ in range(K)]
        # Scores on the validation stream, per model, appended by the Validation callback:
        # {"step": [...], "bit_errors": [...], "loss": [...]} each.
        self.validation: list[dict[str, list]] = [{"step": [], "bit_errors": [], "loss": []} for _ in range(K)]
        # The run's phases: what the optimiser was from which step on (resumes add phases).
        self.schedule: list[dict[str, Any]] = [self._phase(restarted=True)]
        self._previous = [p.detach().clone() for p in self.params]  # weights before the last update
        # The path this process trains on (native.compute_path), once a step has run; until then a
        # resumed run's recorded one. Checkpoints record it (meta["compute"]).
        self.compute: dict[str, Any] | None = None
        self._kernels_ran: bool | None = None  # None: no step in this process yet
        # The step may read a mask back to skip masking ops that would change nothing (_may_change):
        # on the CPU only, where a read waits for nothing (tests set it False to run the GPU's path).
        self.host_reads = model.device.type == "cpu"
        # The device's side of the bookkeeping (see "Read-backs" above): loaded from the host's
        # when a step finds them missing or `alive` changed outside the loop.
        self._alive_dev: torch.Tensor | None = None  # [K] bool, the models training
        self._skip_run: torch.Tensor | None = None  # [K] int64, overflowing batches in a row up to now
        self._alive_seen: list[bool] = []  # the host's `alive` as the device last agreed with it
        self._moments_before: list[torch.Tensor] = []  # the optimiser's moments before the last step
        self._pending: list[torch.Tensor] = []  # a [7, K] float64 RECORD per step not read back yet
        self._pending_info: list[_StepInfo] = []
        self._behind = 0  # while on_step hears of a step late: how many steps the model is further on
        self._rate = 0.0
        self._pause = threading.Event()  # asked to hold between two steps
        self._stop = threading.Event()
        self._wake = threading.Event()  # a paused loop's on_pause is due (resumed, stopped, or wake())

    def _phase(self, restarted: bool) -> dict[str, Any]:
        return {"step": self.step, "lr": self.lr, "optimizer": self.optimizer_name,
                "batch_size": self.batch_size, "clip": self.clip, "optimizer_state": "new" if restarted else "kept"}

    # ---- the ensemble at a glance -------------------------------------------------------------
    @property
    def models(self) -> int:
        """K."""
        return len(self.seeds)

    @property
    def sequences(self) -> int:
        """Sequences each model has seen."""
        return self.step * self.batch_size

    @property
    def stage(self) -> int:
        """Model 0's curriculum stage (a single run's)."""
        return self.stages[0]

    @property
    def history(self) -> History:
        """Model 0's learning curve (a single run's)."""
        return self.histories[0]

    # ---- control, from any thread -------------------------------------------------------------
    def pause(self) -> None:
        """Hold the run after the current step (until resume() or stop())."""
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()
        self._wake.set()

    def stop(self) -> None:
        """End the run after the current step ("stopped"); it also ends a pause."""
        self._stop.set()
        self._wake.set()  # wake a paused loop so it can end

    def wake(self) -> None:
        """Have a paused loop call its callbacks' on_pause now (there is work for them)."""
        self._wake.set()

    @property
    def paused(self) -> bool:
        """Whether a pause is asked for (the loop holds between two steps until resumed)."""
        return self._pause.is_set()

    @property
    def stopping(self) -> bool:
        """Whether stop() has been called."""
        return self._stop.is_set()

    def _notify(self, event: str, *args: Any) -> None:
        for cb in self.callbacks:
            method = getattr(cb, event, None)
            if method is not None:
                method(self, *args)

    def _hold(self) -> None:
        """Between two steps: hold while a pause is asked for and no stop (see the module docstring)."""
        if not self._pause.is_set() or self._stop.is_set():
            return
        self._wake.clear()
        self._notify("on_pause")
        while self._pause.is_set() and not self._stop.is_set():
            self._wake.wait(PAUSE_POLL)
            self._wake.clear()
            if self._pause.is_set() and not self._stop.is_set():
                self._notify("on_pause")
        self._notify("on_resume")

    # ---- the loop -----------------------------------------------------------------------------
    def task_at(self, k: int = 0):
        """Model k's task at its current curriculum stage (the task itself without a curriculum)."""
        return curriculum_task(self.task, self.stages[k], self.curriculum) if self.curriculum else self.task

    @property
    def current_task(self):
        """Model 0's task at its current stage."""
        return self.task_at(0)

    def batch(self, step: int) -> Batch:
        """The batch of a given step, [K x B, T, ...]: model k's rows are a function of
        (seed k, step, its curriculum stage) alone, padded at the end to the longest T."""
        parts = [self.task_at(k).sample(self.batch_size, seed=stream_seed("train", seed, step))
                 for k, seed in enumerate(self.seeds)]
        return _upload(Batch.concat(parts), self.model.device)

    def _advance_curriculum(self, k: int, bit_errors: float) -> None:
        if not self.curriculum or self.stages[k] >= self.curriculum:
            return
        e = self._smoothed_errors[k]
        self._smoothed_errors[k] = bit_errors if e is None else 0.95 * e + 0.05 * bit_errors
        if self._smoothed_errors[k] < self.curriculum_threshold:
            self.stages[k] += 1
            self._smoothed_errors[k] = None

    def _mark_diverged(self, k: int, what: str, step: int) -> None:
        self.alive[k] = False
        self.diverged[k] = f"{what} at step {step}; its weights are those of step {step - 1}"

    def _per_model_grad_norms(self) -> torch.Tensor:
        """[K] gradient norm of each model over all its parameters, in float64: an exploding but
        finite gradient (entries past 1e19) squares past float32's range, and a norm of inf would
        call the model diverged where clipping would have tamed the step."""
        K = self.models
        norms = [torch.linalg.vector_norm(p.grad.reshape(K, -1), dim=1, dtype=torch.float64)
                 for p in self.params if p.grad is not None]
        return torch.linalg.vector_norm(torch.stack(norms), dim=0)

    def _moments(self) -> list[torch.Tensor]:
        """The optimiser's state that has a row per model (its moments; not its step count)."""
        return [value for p in self.params for value in self.optimizer.state.get(p, {}).values()
                if isinstance(value, torch.Tensor) and value.shape == p.shape]

    def _load_device_state(self) -> None:
        """The device's bookkeeping from the host's: which models train, and each one's
        overflowing batches in a row up to this step."""
        device = self.model.device
        self._alive_dev = torch.tensor(self.alive, dtype=torch.bool, device=device)
        self._skip_run = torch.tensor([_trailing_run(s, self.step) for s in self.skipped], device=device)
        self._alive_seen = list(self.alive)

    def _may_change(self, mask: torch.Tensor) -> bool:
        """Whether a masking op under `mask` (bool, any shape) may change anything. On a GPU always:
        the step reads nothing back, so every mask is applied. On the CPU, where a tensor is host
        memory and reading it waits for nothing, the step reads the mask and skips the ops (a few
        dozen per step, a tenth of a step at batch 1) when it is all False, as it is on every step
        where every model trains."""
        return not self.host_reads or bool(mask.any())

    def train_step(self) -> StepMetrics:
        """One optimiser step of every model still training, each on a fresh batch of its own,
        read back at once (`run` reads back every `sync_every` steps). Raises TrainingDiverged
        when no model is left."""
        self._device_step()
        return self._settle(account=False, notify=False)

    def _device_step(self) -> None:
        """Queue one optimiser step of every model still training and leave what the host needs
        of it on the device (self._pending); nothing is read back. A model whose loss, gradient
        norm or updated weights are not finite is masked with tensor ops, as the host's
        bookkeeping (_replay) will record it."""
        K = self.models
        if self._alive_dev is None or self.alive != self._alive_seen:
            self._load_device_state()
        started = time.perf_counter()
        kernel_calls = native.calls()
        batch = self.batch(self.step)
        torch._foreach_copy_(self._previous, [p.detach() for p in self.params])  # to go back to if it diverges
        self.model.train()
        logits, per_sequence = self.model.outputs_and_loss(self.task, batch)
        losses = _per_model(per_sequence, K)  # [K]
        alive = self._alive_dev  # [K] the models training when the step began
        finite_loss = torch.isfinite(losses)
        stepping = alive & finite_loss
        # Each model's gradient is that of its own mean loss, as if it trained alone.
        total = torch.where(stepping, losses, torch.zeros_like(losses)).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        norms = self._per_model_grad_norms()
        finite_norm = torch.isfinite(norms)
        stepping = stepping & finite_norm
        clip = self.clip or math.inf
        scale = torch.where(stepping, (clip / (norms + 1e-6)).clamp(max=1.0), torch.zeros_like(norms)).float()
        rows = [_rows(p, K) for p in self.params]  # a parameter's shape for a [K] vector (its moments' too)
        grads = [(p.grad, r) for p, r in zip(self.params, rows) if p.grad is not None]
        torch._foreach_mul_([g for g, _ in grads], [scale.view(r) for _, r in grads])
        not_stepping = ~stepping
        if self._may_change(not_stepping):
            for g, r in grads:
                g.masked_fill_(not_stepping.view(r), 0.0)  # 0 * NaN is NaN: set, not scaled

        lost_loss = alive & ~finite_loss  # diverged: its loss is NaN or Inf
        skipped = alive & finite_loss & ~finite_norm  # its gradient overflowed: this batch is skipped
        run = torch.where(skipped, self._skip_run + 1, torch.zeros_like(self._skip_run))
        lost_skipped = skipped & (run >= MAX_SKIPPED)  # ... MAX_SKIPPED batches in a row: diverged
        updating = alive & ~lost_loss & ~lost_skipped
        stopped_all = ~updating.any()  # no model gets to the update
        moments = self._moments()
        if moments and self._may_change(stopped_all):  # to go back to if so
            if [(m.shape, m.dtype) for m in moments] != [(m.shape, m.dtype) for m in self._moments_before]:
                self._moments_before = [torch.empty_like(m) for m in moments]
            torch._foreach_copy_(self._moments_before, moments)
        failed = ""
        try:
            self.optimizer.step()
        except RuntimeError as exc:  # e.g. an update too large for float32: every model stops (_replay)
            failed = str(exc)
        with torch.no_grad():
            sums = torch.stack([p.reshape(K, -1).sum(1) for p in self.params]).sum(0)
            lost_weights = updating & ~torch.isfinite(sums)
            after = torch.zeros_like(updating) if failed else updating & ~lost_weights
            # Models that skipped or stopped go back to their weights before this update. Their
            # gradients were zero, so the update only decayed their moments; a stopped model's
            # moments are zeroed (they may hold what led it astray). When no model got to the
            # update, the moments are those before it, as if it never ran.
            restore, not_after = skipped | ~after, ~after
            if self._may_change(restore):
                for p, prev, r in zip(self.params, self._previous, rows):
                    torch.where(restore.view(r), prev, p, out=p)
            if self._may_change(not_after):
                for value in self._moments():
                    value.masked_fill_(not_after.view(_rows(value, K)), 0.0)
            if moments and self._may_change(stopped_all):
                for value, before in zip(self._moments(), self._moments_before):
                    torch.where(stopped_all, before, value, out=value)
            self._alive_dev, self._skip_run = after, run
            errors = _per_model(self.task.bit_errors(logits.detach(), batch), K)
            record = torch.stack([x.to(torch.float64) for x in (losses.detach(), errors, norms, lost_loss, skipped,
                                                                 lost_skipped, lost_weights)])  # RECORD
        self._pending.append(record)
        self._pending_info.append(_StepInfo(time.perf_counter() - started, bool(moments),
                                            native.calls() > kernel_calls, failed))
        self.step += 1

    def _read_back_due(self, steps: int) -> bool:
        """Whether to read back after the step just queued (every callback is asked, always)."""
        asked = [ask(self.step) for cb in self.callbacks if (ask := getattr(cb, "needs_model_at", None))]
        growing = self.curriculum and any(a and s < self.curriculum for a, s in zip(self.alive, self.stages))
        return bool(any(asked) or growing or len(self._pending) >= self.sync_every or self.step >= steps
                    or self._pending_info[-1].failed or self._pause.is_set() or self._stop.is_set())

    def _settle(self, *, account: bool = True, notify: bool = True) -> StepMetrics | None:
        """Read back every pending step at once and do the host's bookkeeping of each, in order;
        `account` adds its time, rate and learning-curve point, `notify` then calls on_step.
        Returns the last step's metrics (None when nothing was pending)."""
        if not self._pending:
            return None
        started = time.perf_counter()
        records = _to_host(torch.stack(self._pending))  # [n, 7, K]
        infos = self._pending_info
        self._pending, self._pending_info = [], []
        n, last = len(records), self.step
        seconds = (sum(i.seconds for i in infos) + time.perf_counter() - started) / n  # spread evenly
        m = None
        for i, (record, info) in enumerate(zip(records, infos)):
            step = last - n + 1 + i
            m = self._replay(step, record, info, last)
            if account:
                m = self._account(m, seconds)
            if notify:
                self._behind = last - step
                try:
                    self._notify("on_step", m)
                except BaseException:  # the run ends here; the host's bookkeeping still catches up with the model
                    self._behind = 0
                    for j in range(i + 1, n):
                        try:
                            self._account(self._replay(step + j - i, records[j], infos[j], last), seconds)
                        except TrainingDiverged:  # put back to the step before; the callback's error is the one raised
                            break
                    raise
                self._behind = 0
        return m

    def _replay(self, step: int, record: list[list[float]], info: _StepInfo, last: int) -> StepMetrics:
        """The host's bookkeeping of training step `step` from its read-back record, as the step
        itself once did it (the model has done `last` steps). Raises TrainingDiverged when no model
        is left, with the trainer put back to step - 1 (_all_diverged)."""
        K = self.models
        losses, errors, norms, lost_loss, skipped, lost_skipped, lost_weights = record
        for k in range(K):
            if lost_loss[k]:
                self._mark_diverged(k, f"the loss became {losses[k]}", step)
            elif skipped[k]:
                self.skipped[k].append(step)
                if lost_skipped[k]:
                    self._mark_diverged(k, f"the gradients became {norms[k]} on {MAX_SKIPPED} batches in a row", step)
        if not any(self.alive):
            self._all_diverged(step, last, updated=False, had_state=info.had_state)
        if info.failed:
            for k in range(K):
                if self.alive[k]:
                    self._mark_diverged(k, f"the update failed ({info.failed})", step)
            self._all_diverged(step, last, updated=True, had_state=info.had_state)
        for k in range(K):
            if lost_weights[k]:
                self._mark_diverged(k, "the weights became non-finite", step)
        if not any(self.alive):
            self._all_diverged(step, last, updated=True, had_state=info.had_state)
        self._alive_seen = list(self.alive)
        self._note_compute(info.kernels, step)
        model_loss = tuple(v if a else math.nan for v, a in zip(losses, self.alive))
        model_errors = tuple(v if a else math.nan for v, a in zip(errors, self.alive))
        for k in range(K):
            if self.alive[k]:
                self._advance_curriculum(k, errors[k])
        live = [k for k in range(K) if self.alive[k]]
        return StepMetrics(step, step * self.batch_size, sum(losses[k] for k in live) / len(live),
                           sum(errors[k] for k in live) / len(live), self.seconds, 0.0, model_loss, model_errors)

    def _all_diverged(self, step: int, last: int, *, updated: bool, had_state: bool) -> None:
        """Every model diverged at `step` (after its update, or before it), and the device has run
        on to step `last`: put the trainer where that step left it (at step - 1) and raise
        TrainingDiverged. The weights and moments already are there (every step since put them
        back); the optimiser's step counts go back, and its state goes if that step was its first."""
        extra = last - step + (0 if updated else 1)  # optimiser steps that run would never have taken
        if not (updated or had_state):
            self.optimizer.state.clear()  # its first step: it had no state yet
        elif extra:
            for state in self.optimizer.state.values():
                count = state.get("step")
                if isinstance(count, torch.Tensor):
                    count.sub_(extra)
                elif count is not None:
                    state["step"] = count - extra
        self.step = step - 1
        self._alive_dev = None  # the host's `alive` is the truth again
        self._raise_diverged()

    def _note_compute(self, kernels_ran: bool, step: int) -> None:
        """Record the path step `step` ran on: the kernels once any step of this process used them."""
        if self._kernels_ran is None or (kernels_ran and not self._kernels_ran):
            # the record of the steps before: a resumed run's ({} when its checkpoint has none)
            earlier = self.compute if self._kernels_ran is None else (self.compute or {}).get("earlier")
            self._kernels_ran = kernels_ran
            now = native.compute_path(self.model.device, kernels_ran)
            if earlier is not None:  # kept when those steps ran another way (or are not known)
                same = {k: v for k, v in earlier.items() if k not in ("earlier", "from_step")} == now
                if same:
                    now.update({k: earlier[k] for k in ("earlier", "from_step") if k in earlier})
                else:
                    now.update(earlier=earlier, from_step=step - 1)
            self.compute = now

    def _raise_diverged(self) -> None:
        if len(self.diverged) == 1:
            raise TrainingDiverged(next(iter(self.diverged.values())))
        raise TrainingDiverged(f"every model diverged by step {self.step + 1}: " + "; ".join(
            f"seed {self.seeds[k]}: {msg}" for k, msg in sorted(self.diverged.items())))

    def _account(self, m: StepMetrics, seconds: float) -> StepMetrics:
        """A read-back step's share of the training time, the smoothed rate, its curve point."""
        self.seconds += seconds
        # Exponential moving average of the rate: smooth, and needs no window.
        now = self.batch_size * sum(self.alive) / max(seconds, 1e-9)
        self._rate = now if self._rate == 0 else 0.9 * self._rate + 0.1 * now
        m = m._replace(seconds=self.seconds, rate=self._rate)
        if m.step % self.log_every == 0 or m.step == 1:
            self._log(m)
        return m

    def _log(self, m: StepMetrics) -> None:
        for k, history in enumerate(self.histories):
            if self.alive[k]:
                history.add(m.sequences, m.model_loss[k], m.model_bit_errors[k], self.stages[k])

    def run(self, steps: int) -> str:
        """Train until `steps` steps are done ("done") or `stop()` is called ("stopped").

        Raises TrainingDiverged once every model has diverged. Callbacks' `on_end` is told the
        true reason: "done", "stopped", "diverged", or "error" when anything else was raised.
        A `stop()` that comes before `run` begins is kept: the run ends at once, "stopped".
        """
        self._notify("on_start")
        reason = "done"
        self._rate = 0.0
        try:
            while self.step < steps:
                if self._pause.is_set() or self._stop.is_set():
                    self._settle()  # (asked for after the last read-back) the host holds or ends on the truth
                self._hold()
                if self._stop.is_set():
                    reason = "stopped"
                    break
                self._device_step()
                if self._read_back_due(steps):
                    self._settle()
        except TrainingDiverged:
            reason = "diverged"
            raise
        except BaseException:
            reason = "error"
            raise
        finally:
            if self._pending:  # something was raised between two read-backs: catch the bookkeeping up
                try:
                    self._settle(notify=False)
                except TrainingDiverged:  # put back to the step before; what was raised is the one to report
                    pass
            self._notify("on_end", reason)
        return reason

    # ---- checkpoints --------------------------------------------------------------------------
    def meta(self, member: int = 0) -> dict[str, Any]:
        """What model `member`'s checkpoint records about the run besides the weights."""
        if self._behind:
            raise NtmvizError(f"the model is {self._behind} step(s) past the step on_step is told of: "
                              "save it at a step the callback's needs_model_at(step) asks for")
        meta = {
            "seed": self.seeds[member], "batch_size": self.batch_size, "lr": self.lr,
            "optimizer": self.optimizer_name, "momentum": self.momentum, "clip": self.clip,
            "train_seconds": round(self.seconds, 2), "torch": torch.__version__, "device": str(self.model.device),
            "history": self.histories[member].to_dict(), "curriculum": self.curriculum,
            "curriculum_threshold": self.curriculum_threshold, "stage": self.stages[member],
            "data_stream": "train", "validation": self.validation[member], "schedule": self.schedule,
            "skipped_batches": self.skipped[member],
        }
        if self.compute is not None:
            meta["compute"] = self.compute
        if self.models > 1:
            meta["ensemble"] = {"seeds": self.seeds, "member": member}
        if member in self.diverged:
            meta["diverged"] = self.diverged[member]
        return meta

    def save(self, path, *, member: int = 0, with_optimizer: bool = True, extra_meta: dict | None = None):
        """Write model `member`'s checkpoint atomically, between steps. Without the optimiser
        it is smaller and not resumable exactly. A diverged model's file holds its last good weights."""
        with torch.no_grad():
            for name, p in self.model.member_state_dict(member).items():
                if not torch.isfinite(p).all():
                    raise TrainingDiverged(f"not saving step {self.step}: the weights ({name}) are not finite")
        return ckpt_io.save(path, self.model, task=self.task, optimizer=self.optimizer if with_optimizer else None,
                            step=self.step, sequences=self.sequences, member=member,
                            meta={**self.meta(member), **(extra_meta or {})})

    @classmethod
    def resume_from(cls, checkpoints: "ckpt_io.Checkpoint | list[ckpt_io.Checkpoint]", **overrides: Any) -> "Trainer":
        """A trainer that continues the run(s) of one checkpoint or of an ensemble's checkpoints
        (one per seed, same configuration, task and step) where they stopped."""
        ckpts = checkpoints if isinstance(checkpoints, list) else [checkpoints]
        first = ckpts[0]
        for c in ckpts:
            if c.task is None:
                raise ConfigError(f"{c.path}: the checkpoint names no task to train on")
            if (c.config, c.task, c.step) != (first.config, first.task, first.step):
                raise ConfigError(f"{c.path} does not continue the same run as {first.path} "
                                  "(configuration, task and step must match)")
        meta = first.meta
        options = {k: meta[k] for k in TRAINER_OPTIONS if k in meta}
        options.update({k: v for k, v in overrides.items() if v is not None})
        seeds = [int(c.meta.get("seed", 0)) for c in ckpts]
        model = type(first.model).stack([c.model for c in ckpts]) if len(ckpts) > 1 else first.model
        trainer = cls(model.train(), first.task, seeds=seeds, **options)
        states = [c.optimizer_state for c in ckpts]
        kept = all(s is not None for s in states) and all(
            c.optimizer_class == type(trainer.optimizer).__name__ for c in ckpts)
        if kept:
            state = ckpt_io.concat_optimizer_states(states)
            trainer.optimizer.load_state_dict(state)
            for group in trainer.optimizer.param_groups:  # the saved state carries the old lr
                group["lr"] = trainer.lr
        trainer.step = first.step
        trainer.seconds = float(meta.get("train_seconds", 0.0))
        recorded = meta.get("compute")
        trainer.compute = recorded if isinstance(recorded, dict) else ({} if first.step else None)
        # Runs saved before phases were recorded start with what their metadata says.
        trainer.schedule = list(meta.get("schedule") or [
            {"step": 0, **{k: meta.get(k) for k in ("lr", "optimizer", "batch_size", "clip")}, "optimizer_state": "new"}])
        phase = trainer._phase(restarted=not kept)
        last = trainer.schedule[-1]
        if not kept or any(last.get(k) != phase[k] for k in ("lr", "optimizer", "batch_size", "clip")):
            trainer.schedule.append(phase)
        revived = {}
        for k, c in enumerate(ckpts):
            trainer.stages[k] = int(c.meta.get("stage", trainer.stages[k]))
            if c.meta.get("validation"):
                trainer.validation[k] = {key: list(c.meta["validation"].get(key, [])) for key in trainer.validation[k]}
            trainer.histories[k] = History.from_dict(c.meta.get("history") or {})
            trainer.skipped[k] = [int(s) for s in c.meta.get("skipped_batches", [])]
            if "diverged" in c.meta:  # its file holds its last good weights: a resume trains it again
                revived[trainer.seeds[k]] = c.meta["diverged"]
        if revived:
            phase = trainer._phase(restarted=not kept)
            trainer.schedule.append({**phase, "revived_after_divergence": revived})
        trainer._previous = [p.detach().clone() for p in trainer.params]
        return trainer
