"""The callbacks every front end shares (`ntmviz train`, sweeps and the live app), written once:

    trainer.callbacks += [Validation(every=250, samples=500, on_best=save_best),
                          Checkpoints(paths, every=500)]

`Validation` scores every model on the validation stream every K steps and keeps each one's best;
`Checkpoints` writes every model's checkpoint every K steps (atomically: Trainer.save). Both ask
the Trainer to read back at their steps (`needs_model_at`), so they act on the model as of the
step they name (train.py's docstring: read-backs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import ConfigError

if TYPE_CHECKING:
    from .train import StepMetrics, Trainer


class _EveryK:
    """A callback that acts on the model every `every` steps (0: never): it asks the Trainer to
    read back at those steps (needs_model_at), so on_step hears of them before the next step.
    A step it declined is never acted on, even if `every` changed before on_step heard of it."""

    every: int
    _asked: int | None = None  # the step needs_model_at was last asked about (None: never asked)

    def needs_model_at(self, step: int) -> bool:
        self._asked = step
        return self._due(step)

    def _due(self, step: int) -> bool:
        every = int(self.every)
        return every > 0 and step % every == 0 and self._asked in (None, step)


class Validation(_EveryK):
    """Every `every` steps (0: never; may be changed while the run trains), every model still
    training is scored on the same `samples` sequences of the validation stream (seed 0): its
    mean bit errors and loss per sequence are appended to trainer.validation[k]. A model whose
    score is NaN or infinite gets no entry, and the others go on.

    Each model's best so far (task.validation_key: fewest bit errors, then lowest loss; n-grams:
    lowest loss) is kept in `best`, and `on_best(trainer, k, step)` is called when model k has a
    new best (the CLI writes NAME.best.safetensors there). A resumed run keeps the best its
    recorded scores hold. Validation chooses; the test stream (`ntmviz eval`) reports."""

    def __init__(self, every: int, samples: int, on_best: Callable[["Trainer", int, int], None] | None = None):
        if not isinstance(every, int) or every < 0 or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"validation needs every >= 0 and samples >= 1, got {every} and {samples}")
        self.every, self.samples, self.on_best = every, samples, on_best
        self.best: dict[int, tuple[float, ...]] = {}

    def on_start(self, trainer: "Trainer") -> None:
        self._asked = None
        for k, v in enumerate(trainer.validation):
            keys = [trainer.task.validation_key(e, loss) for e, loss in zip(v["bit_errors"], v["loss"])
                    if math.isfinite(e) and math.isfinite(loss)]
            if keys:
                self.best[k] = min(keys)

    def on_step(self, trainer: "Trainer", metrics: StepMetrics) -> None:
        if self._due(metrics.step):
            self.validate(trainer, metrics.step)

    def validate(self, trainer: "Trainer", step: int) -> None:
        """Score every model still training now, as of training step `step`."""
        from .evaluate import sequence_results

        per_seq = sequence_results(trainer.model, trainer.task, stream="validation", seed=0, samples=self.samples)
        errors, losses = per_seq["bit_errors"].mean(1).tolist(), per_seq["loss"].mean(1).tolist()
        for k in range(len(trainer.validation)):
            if not (trainer.alive[k] and math.isfinite(errors[k]) and math.isfinite(losses[k])):
                continue
            v = trainer.validation[k]
            v["step"].append(step)
            v["bit_errors"].append(errors[k])
            v["loss"].append(losses[k])
            key = trainer.task.validation_key(errors[k], losses[k])
            if k not in self.best or key < self.best[k]:
                self.best[k] = key
                if self.on_best is not None:
                    self.on_best(trainer, k, step)


class Checkpoints(_EveryK):
    """Every `every` steps (0: never), model k's checkpoint is written to paths[k] (Trainer.save:
    atomically, so a kill at any moment leaves the previous file or the new one, and a diverged
    model's file keeps its last good weights). `save(trainer)` writes them at any other moment
    (the CLI's end of run). Without the optimiser (`with_optimizer=False`) the files are smaller
    and a resume restarts the optimiser's moments."""

    def __init__(self, paths: Sequence[str | Path], every: int, *, with_optimizer: bool = True,
                 extra_meta: dict | None = None):
        if not isinstance(every, int) or every < 0:
            raise ConfigError(f"checkpoints every {every!r} steps: expected an integer >= 0")
        self.paths, self.every = [Path(p) for p in paths], every
        self.with_optimizer, self.extra_meta = with_optimizer, dict(extra_meta or {})

    def on_start(self, trainer: "Trainer") -> None:
        self._asked = None
        if len(self.paths) != trainer.models:
            raise ConfigError(f"{len(self.paths)} checkpoint paths for {trainer.models} models")

    def on_step(self, trainer: "Trainer", metrics: StepMetrics) -> None:
        if self._due(metrics.step):
            self.save(trainer)

    def save(self, trainer: "Trainer") -> list[Path]:
        return [trainer.save(path, member=k, with_optimizer=self.with_optimizer, extra_meta=self.extra_meta)
                for k, path in enumerate(self.paths)]
