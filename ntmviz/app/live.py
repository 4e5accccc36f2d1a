"""A live training run: the one Trainer loop in a daemon thread, publishing what it sees.

    run = LiveRun.create(RunConfig(task="copy", task_options={"max_length": 5}, memory_slots=16,
                                   seeds=[0, 1, 2]))  # one model per seed, trained as one computation
    run = LiveRun.create(RunConfig.quick())   # the Train tab's starting point: a small model
    run.start()                      # trains in a background thread
    run.pause(); run.resume()        # from any thread
    run.metrics_since(step)          # newest StepMetrics after `step` (a bounded window)
    run.models()                     # ModelStatus per seed: alive or why it diverged, stage, validation
    version, snaps = run.snapshots() # Snapshot(step, ..., episodes: one per seed), bounded
    snaps[-1].member(1).episode      # the second seed's episode
    run.save("copy.safetensors", member=1)  # same file as `ntmviz train --seeds` writes (Trainer.save)
    run.stop(); run.join()

Seeds. A run trains K models of one configuration, one per seed, in one Trainer (a seed
ensemble, one batched computation; K = 1 is a single run). Each model's curve, curriculum stage
and divergence are its own (train.py); a model that diverges stops there and the others go on.

Threads. The training thread owns the model: it trains, and every `snapshot_every` steps it
records an Episode of every model on one fixed probe input (a fixed seed of the task's sampler)
between two optimiser steps, so recording never races the optimiser. All K models are recorded
in one batched run of the stacked model (the probe repeated K times): one forward pass of K
rows, small beside a training step of K x batch rows forward and backward, so switching the
seed on show needs no recording. Every `validate_every` steps every model is also scored on the
validation stream (train_callbacks.Validation, the callback `ntmviz train` uses). Anything else
that must read the model while the thread lives (saving, recording another input) goes
through `call()`, which runs it in the training thread between steps (or while paused).

The thread never touches Panel or Bokeh. It publishes into a lock-protected slot: a bounded
window of the newest metrics, each model's status (ModelStatus: read from the Trainer in the
training thread, so a reader never sees its lists half-updated) and a bounded list of snapshots
with a version number. Views pull from their own event loop (see training_view.py), newest wins.

Bounds. Metrics: the newest `metrics_limit` steps (older ones are dropped; the Trainer's own
History keeps a thinned whole-run curve of at most `history_limit` points per model).
Snapshots: at most `max_snapshots`, and at most `snapshot_bytes` of episodes (K episodes per
snapshot); when full they are thinned to two thirds (thinning.thin: the first and the newest
always stay), so the snapshots thin as they age and still span the whole run.

Status. `status` is what the thread last reported, refined by what has been asked of it and
not yet done: "pausing" (pause asked, the thread still in its step), "stopping" (stop asked,
the thread still alive). Views derive their buttons from it alone. Pausing is the Trainer's own
(Trainer.pause): the loop holds between two steps and calls this run's `on_pause`, where the
run reports "paused" and serves `call()` requests.

Settings. RunConfig is config.TrainConfig (every training setting, its default, bounds and
help, the same as `ntmviz train`'s options) plus what only a live run needs (snapshots, bounds,
threads); `RunConfig.quick()` is the Train tab's starting point. A live run trains any model
that trains on the sequence tasks (sweep.sequence_models: read from the configs and the
registered families, so a new family needs no change here).

Divergence. A model whose loss, gradients or weights become NaN or Inf stops (the Trainer keeps
its last good weights; its ModelStatus says why) and the others go on. Once every model has
diverged (TrainingDiverged from the Trainer) the run ends with status "diverged" and `error`
naming the step; snapshots stay, and if the weights or the optimiser's moments are no longer
finite, both go back to those of the last snapshot (kept with it), so `save` writes a
checkpoint that resumes cleanly.

Threads of torch: the training thread calls `torch.set_num_threads(threads)` (default 1) for
itself. With PyTorch's OpenMP backend that count belongs to the calling thread, so the rest of
the process keeps its own (measured here: the main thread still reports 2 afterwards). It
matters: on 2 busy cores a small NTM step took 1.0 s with 2 intra-op threads and 0.04 s with
1, and the server's thread stays free. `threads=None` leaves torch's setting alone.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

from .. import checkpoint as ckpt_io
from ..config import TrainConfig, setting
from ..episode import Episode, record
from ..errors import ConfigError
from ..sweep import sequence_models
from ..train import build_model, pick_device
from ..tasks import Batch
from ..thinning import thin
from ..train import StepMetrics, Trainer, TrainingDiverged, check_memory
from ..train_callbacks import Validation as ValidationCallback  # (Validation here is one score)

STATUSES = ("ready", "running", "pausing", "paused", "stopping", "done", "stopped", "diverged", "failed")
ENDED = ("done", "stopped", "diverged", "failed")

log = logging.getLogger(__name__)

_RUNS: "weakref.WeakSet[LiveRun]" = weakref.WeakSet()
_RUNS_LOCK = threading.Lock()
_ids = itertools.count(1)


def live_runs() -> list["LiveRun"]:
    """Every run in this process whose training thread is alive (for tests and cleanup)."""
    with _RUNS_LOCK:
        return [r for r in list(_RUNS) if r.alive]


def stop_all(timeout: float = 10.0) -> None:
    """Stop every live run of this process and wait for its thread."""
    for run in live_runs():
        run.stop()
        run.join(timeout)


@dataclass
class RunConfig(TrainConfig):
    """What a live run trains: every field of config.TrainConfig (the task, the model and its
    settings, the trainer's options, steps, seeds, the validation period), with the defaults
    `ntmviz train` has, and what only a live run needs."""

    snapshot_every: int = setting(100, bounds=(1, None), softbounds=(1, 10**9),
                                  help="record every model on the probe input every K steps")
    probe_seed: int = setting(0, bounds=(0, None), help="the seed of the probe input the snapshots record")
    max_snapshots: int = setting(60, bounds=(2, None), help="snapshots kept at most (thinned as they age)")
    snapshot_bytes: int = setting(256 * 2**20, bounds=(1, None), help="bytes of snapshot episodes kept at most")
    metrics_limit: int = setting(5000, bounds=(1, None), help="the newest steps whose metrics are kept")
    history_limit: int = setting(2000, bounds=(4, None), help="points of each model's thinned whole-run curve")
    device: str | None = None  # None: CUDA when there is one
    threads: int | None = 1  # torch intra-op threads of the training thread (None: torch's default)

    @classmethod
    def quick(cls, **changes: Any) -> "RunConfig":
        """The Train tab's starting point: a small NTM on short inputs that learns within minutes
        on a CPU (Adam at 3e-3), snapshots every 50 steps, validation every 100, until stopped.
        These override the defaults; they restate none."""
        return cls(**{**QUICK, **changes})

    def build(self) -> tuple[torch.nn.Module, Any]:
        """(model on its device, task); ConfigError if they do not fit together."""
        kinds = sequence_models()  # a memory network needs stories: `ntmviz train`
        if self.model not in kinds:
            raise ConfigError(f"model must be one of {', '.join(kinds)}, got {self.model!r}")
        task = self.build_task()
        config = self.model_config(task)
        slots = getattr(config, "memory_slots", None)
        if slots is not None:
            task.check_fits(slots)
        seeds = [int(s) for s in self.seeds]
        check_memory(config, task, len(seeds) * self.batch_size,
                     f"{len(seeds)} seed(s) at batch {self.batch_size}")
        # model k starts from seed k's weights, as `ntmviz train --seeds` does
        model = build_model(config, seeds=seeds).to(pick_device(self.device))
        return model, task


QUICK = dict(task_options={"max_length": 5}, memory_slots=16, memory_width=8, controller_size=64, hidden_size=64,
             lr=3e-3, batch_size=16, steps=100_000, snapshot_every=50, validate_every=100,
             validation_samples=100)


class Snapshot(NamedTuple):
    """Every model's episode on the probe input at one training step, in seed order.
    `member(k)` is model k's alone (a Snapshot of one model); `episode` is the first model's."""

    step: int
    sequences: int
    loss: float  # of the training batches of that step, mean over models training (nan for the first snapshot)
    bit_errors: float  # of those batches
    episodes: tuple[Episode, ...]  # [K]
    seeds: tuple[int, ...]  # [K]
    model_loss: tuple[float, ...] = ()  # [K], nan for a diverged model (and in the first snapshot)
    model_bit_errors: tuple[float, ...] = ()  # [K]

    @property
    def episode(self) -> Episode:
        """The first model's episode (a single run's)."""
        return self.episodes[0]

    def member(self, k: int) -> "Snapshot":
        """Model k's snapshot alone (K = 1)."""
        loss = self.model_loss[k] if self.model_loss else self.loss
        errors = self.model_bit_errors[k] if self.model_bit_errors else self.bit_errors
        return Snapshot(self.step, self.sequences, loss, errors, (self.episodes[k],), (self.seeds[k],),
                        (loss,), (errors,))


class Validation(NamedTuple):
    """One model's score on the validation stream at one step."""

    step: int
    bit_errors: float  # mean wrong bits per sequence
    loss: float  # mean loss per sequence (nats)


class ModelStatus(NamedTuple):
    """One model of the run as the training thread last published it."""

    seed: int
    alive: bool  # still training
    diverged: str  # what happened to it ('' while it trains)
    stage: int  # its curriculum stage (0: no curriculum)
    validation: Validation | None  # its newest validation score (None before the first)
    best_validation: Validation | None  # its best so far by task.validation_key


class _GoodState(NamedTuple):
    """What the last snapshot's step left: enough to put the run back there after a divergence."""

    step: int
    sequences: int
    stages: list[int]  # every model's curriculum stage
    weights: dict[str, torch.Tensor]  # model.state_dict(), on the CPU
    optimizer: dict[str, Any]  # optimizer.state_dict(), tensors copied to the CPU


def _all_finite(tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors if isinstance(t, torch.Tensor) and t.is_floating_point())


def _optimizer_tensors(optimizer: torch.optim.Optimizer):
    for entries in optimizer.state.values():
        yield from entries.values()


def _cpu_copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cpu_copy(v) for v in value]
    return copy.deepcopy(value)


class _Request:
    """A function to run in the training thread, and its result."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn, self.done = fn, threading.Event()
        self.claimed = False
        self.result: Any = None
        self.error: BaseException | None = None

    def execute(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed back to the caller
            self.error = exc
        finally:
            self.done.set()


def probe_batch(task, seed: int = 0):
    """The fixed probe input: one item of `task` at its largest training size, seed `seed`."""
    return task.at(task.largest_size).sample(1, seed=seed)


class LiveRun:
    """One training run in a background thread; see the module docstring."""

    def __init__(self, trainer: Trainer, config: RunConfig | None = None, *, name: str | None = None,
                 source: str = "new model", **options: Any):
        """Run `trainer` live with `config`'s live settings (its training settings are the trainer's
        own), any RunConfig field in `options` changed (e.g. steps=..., snapshot_every=...)."""
        config = dataclasses.replace(config or RunConfig(), **options)  # ConfigError for a bad value
        self.config = config
        self.id = next(_ids)
        self.name = name or f"run-{self.id}"
        self.trainer = trainer
        self.task = trainer.task
        self.steps = config.steps  # in all
        self.snapshot_every = config.snapshot_every  # may be changed while running
        self.max_snapshots = config.max_snapshots
        self.snapshot_bytes = config.snapshot_bytes
        self.validation_samples = config.validation_samples
        self.threads = config.threads
        self.source = source
        self.seeds = list(trainer.seeds)
        self.probe_seed = config.probe_seed
        self.probe = probe_batch(self.task, self.probe_seed)
        self._probe_rows = Batch.concat([self.probe] * trainer.models)  # model k answers row k
        for history in trainer.histories:
            history.limit = config.history_limit
        # validation (before this run's own callback, which publishes its scores)
        self._validation = ValidationCallback(config.validation_period, config.validation_samples)
        trainer.callbacks += [self._validation, self]
        self._lock = threading.Lock()  # guards everything below that the thread publishes
        self._metrics: deque[StepMetrics] = deque(maxlen=config.metrics_limit)
        self._snapshots: list[Snapshot] = []
        self._version = 0
        self._status = "ready"
        self._error = ""
        self._latest: StepMetrics | None = None
        self._models = self._model_statuses()
        self._good_state: _GoodState | None = None
        self._requests: deque[_Request] = deque()
        self._thread: threading.Thread | None = None
        with _RUNS_LOCK:
            _RUNS.add(self)

    @property
    def validate_every(self) -> int:
        """Steps between two validations (0: never); may be changed while running."""
        return self._validation.every

    @validate_every.setter
    def validate_every(self, every: int) -> None:
        self._validation.every = int(every)

    # ---- constructors ---------------------------------------------------------------------
    @classmethod
    def create(cls, config: RunConfig, **options: Any) -> "LiveRun":
        """A run of a fresh model built from `config` (any RunConfig field in `options` changed)."""
        config = dataclasses.replace(config, **options)
        model, task = config.build()
        trainer = Trainer(model, task, seeds=list(config.seeds), log_every=1, **config.trainer_options())
        return cls(trainer, config)

    @classmethod
    def from_checkpoint(cls, path: str | Path, config: RunConfig | None = None, *, lr: float | None = None,
                        batch_size: int | None = None, **options: Any) -> "LiveRun":
        """A run that continues a checkpoint's training (Trainer.resume_from) for `config.steps`
        more steps, with `config`'s live settings (any RunConfig field in `options` changed); its
        learning rate and batch size are the checkpoint's unless given."""
        config = dataclasses.replace(config or RunConfig(), **options)
        ckpt = ckpt_io.load(path, device=pick_device(config.device))
        if ckpt.family.steps != "inputs":  # its snapshots would need stories, not sequences
            raise ConfigError(f"{Path(path).name} is a memory network: train it with ntmviz train --model "
                              f"{ckpt.config.kind} --resume; the Train tab trains models that take a step per input")
        trainer = Trainer.resume_from(ckpt, lr=lr, batch_size=batch_size)
        trainer.log_every = 1
        return cls(trainer, config, steps=trainer.step + config.steps, source=Path(path).name)

    # ---- control, from any thread ---------------------------------------------------------
    def start(self) -> None:
        """Start training in a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError("this run has already been started")
        self._set_status("running")
        self._thread = threading.Thread(target=self._main, name=f"ntmviz-{self.name}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Hold the run after the current step (status "paused" once it holds): Trainer.pause."""
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    @property
    def paused(self) -> bool:
        """Whether a pause is asked for (the thread holds between two steps)."""
        return self.trainer.paused

    def stop(self) -> None:
        """Ask the thread to end after the current step (it also leaves a pause)."""
        self.trainer.stop()

    def join(self, timeout: float | None = 10.0) -> bool:
        """Wait for the thread to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # ---- what the thread publishes (read from any thread) ---------------------------------
    @property
    def status(self) -> str:
        """One of STATUSES: what the thread reported, refined by what is asked and not yet done."""
        with self._lock:
            status = self._status
        if status in ("running", "paused") and self.trainer.stopping:
            return "stopping"
        if status == "running" and self.trainer.paused:
            return "pausing"
        if status == "paused" and not self.trainer.paused:
            return "running"  # resume asked: the thread wakes within 0.1 s
        return status

    @property
    def ended(self) -> bool:
        """Whether the thread has ended and everything it publishes is final."""
        return self._thread is not None and not self._thread.is_alive()

    @property
    def error(self) -> str:
        """Why the run ended early ('' otherwise)."""
        with self._lock:
            return self._error

    @property
    def latest(self) -> StepMetrics | None:
        """The newest step's metrics."""
        with self._lock:
            return self._latest

    @property
    def step(self) -> int:
        latest = self.latest
        return latest.step if latest is not None else self.trainer.step

    def metrics_since(self, step: int) -> list[StepMetrics]:
        """The metrics of the steps after `step` still in the window, oldest first."""
        with self._lock:
            out = []
            for m in reversed(self._metrics):
                if m.step <= step:
                    break
                out.append(m)
        out.reverse()
        return out

    def snapshots(self) -> tuple[int, list[Snapshot]]:
        """(version, the snapshots kept, oldest first). The version grows on every change."""
        with self._lock:
            return self._version, list(self._snapshots)

    @property
    def snapshot_version(self) -> int:
        with self._lock:
            return self._version

    def models(self) -> tuple[ModelStatus, ...]:
        """Every model's status as of the last step published, in seed order."""
        with self._lock:
            return self._models

    @property
    def history(self) -> dict[str, list]:
        """The first model's thinned whole-run learning curve (a copy); see `histories`."""
        return self.histories()[0]

    def histories(self) -> list[dict[str, list]]:
        """Every model's thinned whole-run learning curve (copies), in seed order.

        The Trainer appends to them from the training thread without a lock of ours, so while that
        thread lives the copies are made there, between two steps (this waits for one step)."""
        return self.call(lambda: [h.to_dict() for h in self.trainer.histories])

    # ---- working with the model -----------------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Run `fn()` where it cannot race the optimiser: in the training thread between two
        steps (or while paused) when the thread is alive, else right here."""
        if not self.alive:
            return fn()
        request = _Request(fn)
        with self._lock:
            self._requests.append(request)
        self.trainer.wake()  # a paused loop serves it at once
        deadline = time.monotonic() + timeout
        while not request.done.wait(0.05):
            if not self.alive:  # the thread ended before it got to it
                with self._lock:
                    mine = not request.claimed
                    request.claimed = True
                if mine:
                    request.execute()
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: the training thread did not answer within {timeout} s")
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def save(self, path: str | Path, member: int = 0) -> Path:
        """Write model `member`'s checkpoint like `ntmviz train` does (Trainer.save), between
        steps: one model's file (its seed in the metadata), that resumes and opens anywhere."""
        self._check_member(member)
        return self.call(lambda: self._save(Path(path), member))

    def _save(self, path: Path, member: int) -> Path:
        # Trainer.save refuses weights that are not finite (TrainingDiverged).
        return self.trainer.save(path, member=member, extra_meta={"source": self.source, "live_run": self.name})

    def record(self, batch, member: int = 0) -> Episode | list[Episode]:
        """Record model `member` as it is now on `batch` (between steps)."""
        self._check_member(member)

        def run():
            model = self.trainer.model if self.trainer.models == 1 else self.trainer.model.member(member)
            return record(model, batch, meta={**self._meta(), **self._member_meta(member)}, task=self.task)
        return self.call(run)

    def default_filename(self, member: int = 0) -> str:
        """TASK-KIND-seedS-stepN.safetensors for model `member`."""
        self._check_member(member)
        kind = getattr(self.trainer.model.config, "kind", "model")
        return f"{self.task.name}-{kind}-seed{self.seeds[member]}-step{self.step}.safetensors"

    def _check_member(self, member: int) -> None:
        if not 0 <= member < len(self.seeds):
            raise ConfigError(f"{self.name} trains {len(self.seeds)} model(s); there is no model {member}")

    # ---- the thread ------------------------------------------------------------------------
    def _set_status(self, status: str, error: str | None = None) -> None:
        with self._lock:
            self._status = status
            if error is not None:
                self._error = error

    def _main(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            reason = self.trainer.run(self.steps)
            self._set_status("done" if reason == "done" else "stopped")
        except TrainingDiverged as exc:
            restored = self._restore_good_weights()
            self._publish_models()
            message = f"Training diverged: {exc}."
            if restored is not None:
                message += (f" The weights and the optimiser's state are back to those of step {restored} "
                            f"(the last snapshot).")
            self._set_status("diverged", message)
        except Exception as exc:  # the app keeps serving whatever happens here; the log keeps the traceback
            log.exception("%s: training failed at step %d", self.name, self.trainer.step)
            self._set_status("failed", f"Training failed at step {self.trainer.step}: {type(exc).__name__}: {exc}")
        finally:
            self._serve_requests()

    def _meta(self) -> dict[str, Any]:
        """What every episode of this run records about it ("seed" is the probe input's seed)."""
        return {"seed": self.probe_seed, "source": f"{self.name} ({self.source})",
                "training_step": self.trainer.step, "sequences": self.trainer.sequences}

    def _member_meta(self, k: int) -> dict[str, Any]:
        """What model k's episodes add: the seed its weights and training batches came from."""
        meta: dict[str, Any] = {"training_seed": self.seeds[k]}
        if len(self.seeds) > 1:
            meta["source"] = f"{self.name} ({self.source}, seed {self.seeds[k]})"
            meta["ensemble"] = {"seeds": list(self.seeds), "member": k}
        return meta

    def _model_statuses(self) -> tuple[ModelStatus, ...]:
        """Every model's status, read from the Trainer (in the training thread, or before it starts)."""
        trainer = self.trainer
        out = []
        for k, seed in enumerate(trainer.seeds):
            v = trainer.validation[k]
            scores = [Validation(int(s), float(e), float(loss))
                      for s, e, loss in zip(v.get("step", []), v.get("bit_errors", []), v.get("loss", []))]
            best = min(scores, key=lambda x: trainer.task.validation_key(x.bit_errors, x.loss)) if scores else None
            out.append(ModelStatus(int(seed), bool(trainer.alive[k]), trainer.diverged.get(k, ""),
                                   int(trainer.stages[k]), scores[-1] if scores else None, best))
        return tuple(out)

    def _publish_models(self) -> None:
        models = self._model_statuses()
        with self._lock:
            self._models = models

    def _snapshot(self, metrics: StepMetrics | None) -> None:
        trainer = self.trainer
        # every model at once: the probe repeated K times, row k answered by model k
        episodes = record(trainer.model, self._probe_rows, meta=self._meta(), task=self.task)
        for k, episode in enumerate(episodes):
            episode.meta.update(self._member_meta(k))
        good = _GoodState(trainer.step, trainer.sequences, list(trainer.stages),
                          _cpu_copy(trainer.model.state_dict()), _cpu_copy(trainer.optimizer.state_dict()))
        nan = float("nan")
        snap = Snapshot(trainer.step, trainer.sequences, nan if metrics is None else metrics.loss,
                        nan if metrics is None else metrics.bit_errors, tuple(episodes), tuple(self.seeds),
                        (nan,) * trainer.models if metrics is None else tuple(metrics.model_loss),
                        (nan,) * trainer.models if metrics is None else tuple(metrics.model_bit_errors))
        size = max(1, sum(e.nbytes for e in episodes))
        allowed = max(2, min(self.max_snapshots, self.snapshot_bytes // size))
        with self._lock:
            self._snapshots.append(snap)
            if len(self._snapshots) > allowed:
                self._snapshots = thin(self._snapshots, lambda s: s.step, max(2, allowed * 2 // 3))
            self._version += 1
            self._good_state = good

    def _restore_good_weights(self) -> int | None:
        """After a divergence: if the weights or the optimiser's moments are not finite, put both
        back to the last snapshot's (a NaN moment would poison the first step of any resume)."""
        trainer = self.trainer
        good = self._good_state
        if good is None or (_all_finite(trainer.model.parameters())
                            and _all_finite(_optimizer_tensors(trainer.optimizer))):
            return None
        trainer.model.load_state_dict(good.weights)
        trainer.optimizer.load_state_dict(_cpu_copy(good.optimizer))  # moved to the params' device
        trainer.step = good.step  # sequences follow from the step
        trainer.stages[:] = good.stages
        return good.step

    def _serve_requests(self) -> None:
        while True:
            with self._lock:
                if not self._requests:
                    return
                request = self._requests.popleft()
                if request.claimed:
                    continue
                request.claimed = True
            request.execute()

    # Trainer callbacks (training thread)
    def on_start(self, trainer: Trainer) -> None:
        if trainer.stopping:  # stop() came before run() began: the Trainer ends at once
            return
        with self._lock:
            empty = not self._snapshots
        if empty:
            self._snapshot(None)
        self._publish_models()

    def needs_model_at(self, step: int) -> bool:
        """Whether `step` is a snapshot step: read back at once (Trainer.sync_every), so the snapshot is of it."""
        return step % max(1, int(self.snapshot_every)) == 0

    def on_step(self, trainer: Trainer, metrics: StepMetrics) -> None:
        with self._lock:
            self._metrics.append(metrics)
            self._latest = metrics
        self._publish_models()  # with the validation scores of this step (train_callbacks.Validation ran first)
        if metrics.step == trainer.step:  # not told late: the model is that of this step
            if self.needs_model_at(trainer.step):
                self._snapshot(metrics)
            self._serve_requests()
        time.sleep(0)  # let the server's thread have the interpreter

    def on_pause(self, trainer: Trainer) -> None:
        """The Trainer holds between two steps (Trainer.pause): report it, serve what is asked."""
        self._set_status("paused")
        self._serve_requests()

    def on_resume(self, trainer: Trainer) -> None:
        self._set_status("running")

    def on_end(self, trainer: Trainer, reason: str) -> None:
        self._publish_models()  # e.g. the models that diverged in the step that ended the run
        if reason != "diverged":
            with self._lock:
                last = self._snapshots[-1].step if self._snapshots else -1
            if trainer.step != last:
                try:
                    self._snapshot(self.latest)
                except Exception:  # a last snapshot is a nicety, never a reason to fail
                    log.exception("%s: the last snapshot failed", self.name)


def new_run(config: RunConfig | None = None, checkpoint: str | Path | None = None, **overrides: Any) -> LiveRun:
    """A run of a fresh model (`config`, any field in `overrides` changed) or continuing
    `checkpoint` with `config`'s live settings (lr and batch_size only when in `overrides`)."""
    config = config or RunConfig()
    if checkpoint:
        lr, batch_size = overrides.pop("lr", None), overrides.pop("batch_size", None)
        return LiveRun.from_checkpoint(checkpoint, config, lr=lr, batch_size=batch_size, **overrides)
    return LiveRun.create(config, **overrides)
