"""Held-out evaluation: scores with intervals, on streams training never draws.

    scores = evaluate(model, task, stream="test", seed=7, samples=1000)   # one Score per model
    scores[0].bit_errors, scores[0].interval, scores[0].exact

Sequences come from the validation or test stream (streams.py), never the training one.
Validation chooses (when to stop, which seed ships); test reports. Every model of an ensemble
sees the same sequences, so seeds are compared on equal terms.

Intervals are 95% (intervals.py): a percentile bootstrap of the mean for bit errors and loss,
and Wilson's score interval for the fraction of sequences without a wrong bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .errors import ConfigError
from .intervals import mean_interval, wilson_interval  # noqa: F401  (evaluate's own names, as before)
from .streams import check_request, stream_seed  # noqa: F401
from .tasks import Batch

LN2 = math.log(2.0)


@dataclass
class Score:
    """One model on `samples` held-out sequences of one task configuration."""

    stream: str
    seed: int
    samples: int
    bit_errors: float  # mean wrong bits per sequence
    interval: tuple[float, float]  # its 95% interval
    exact: float  # fraction of sequences with no wrong bit
    exact_interval: tuple[float, float]
    loss: float  # mean cross-entropy per sequence, nats
    loss_bits: float  # the same in bits per sequence (the unit of the paper's curves)
    extra: dict = field(default_factory=dict)  # n-grams: model and optimal bits per prediction, their gap;
    # repeat copy at a fixed count: each repeat's bit errors (parts, part_intervals, part_name)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lo, hi = self.interval
        return f"{self.bit_errors:.3f} [{lo:.3f}, {hi:.3f}] bit errors/seq, {100 * self.exact:.1f}% exact (n={self.samples})"


def sequence_results(model: torch.nn.Module, task, *, stream: str = "test", seed: int = 0, samples: int = 1000,
                     batch_size: int = 100) -> dict[str, np.ndarray]:
    """Per-sequence results of each of the model's K models on the same `samples` sequences:
    {"bit_errors": [K, n], "loss": [K, n]} (+ "model_bits", "optimal_bits" [K, n] for n-grams;
    + "parts" [K, n, P] where the task splits its output into parts, task.part_errors)."""
    check_request(stream, samples)
    slots = getattr(model.config, "memory_slots", None)
    if slots is not None:
        task.check_fits(slots)
    K = getattr(model, "models", 1)
    chunks: dict[str, list[np.ndarray]] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            done, index = 0, 0
            while done < samples:
                b = min(batch_size, samples - done)
                batch = task.sample(b, seed=stream_seed(stream, seed, index), device=model.device)
                both = Batch.concat([batch] * K)  # every model answers the same sequences
                logits = model(both.inputs)
                results = {"bit_errors": task.bit_errors(logits, both), "loss": task.sequence_loss(logits, both)}
                split = task.part_errors(logits, both)
                if split is not None:
                    results["parts"] = split
                if hasattr(task, "optimal_bits_per_prediction"):
                    results["model_bits"] = task.bits_per_prediction(logits, both)
                    results["optimal_bits"] = task.optimal_bits_per_prediction(batch).repeat(K)
                for name, value in results.items():
                    chunks.setdefault(name, []).append(value.float().cpu().numpy().reshape(K, b, *value.shape[1:]))
                done += b
                index += 1
    finally:
        model.train(was_training)
    return {name: np.concatenate(parts, axis=1) for name, parts in chunks.items()}


def evaluate(model: torch.nn.Module, task, *, stream: str = "test", seed: int = 0, samples: int = 1000,
             batch_size: int = 100) -> list[Score]:
    """One Score per model (K for an ensemble), all on the same held-out sequences."""
    per_seq = sequence_results(model, task, stream=stream, seed=seed, samples=samples, batch_size=batch_size)
    scores = []
    for k in range(per_seq["bit_errors"].shape[0]):
        errors, loss = per_seq["bit_errors"][k], per_seq["loss"][k]
        if not np.all(np.isfinite(loss)):
            raise ConfigError(f"model {k}'s outputs are NaN or infinite")
        exact = int((errors == 0).sum())
        extra = {}
        if "model_bits" in per_seq:
            gap = per_seq["model_bits"][k] - per_seq["optimal_bits"][k]
            extra = {"model_bits": float(per_seq["model_bits"][k].mean()),
                     "optimal_bits": float(per_seq["optimal_bits"][k].mean()),
                     "gap": float(gap.mean()), "gap_interval": mean_interval(gap)}
        if "parts" in per_seq:
            each = per_seq["parts"][k]  # [n, P]
            extra["part_name"] = task.part_name
            extra["parts"] = [float(m) for m in each.mean(0)]
            extra["part_intervals"] = [mean_interval(each[:, p]) for p in range(each.shape[1])]
        scores.append(Score(stream=stream, seed=seed, samples=samples, bit_errors=float(errors.mean()),
                            interval=mean_interval(errors), exact=exact / samples,
                            exact_interval=wilson_interval(exact, samples), loss=float(loss.mean()),
                            loss_bits=float(loss.mean() / LN2), extra=extra))
    return scores
