"""What the heads did: the tasks' mechanism metrics over many held-out episodes, or one.

    reports = measure(model, task, stream="test", seed=0, samples=300)   # one report per model
    print(reports[0].table())
    readings(episode)        # one episode: [(Mechanism, Reading)], for the explorer

A low bit error with the wrong mechanism is not the paper's result, so these sit beside the
bit errors. Each task defines its mechanisms (ntmviz/tasks/*.py, `Task.mechanisms` and
`Task.measure_mechanisms`, on plain arrays: tasks/mechanism.py); this module records the
episodes and aggregates.

Sequences come from the validation or test stream (streams.py), never the training one, as in
evaluate.py. Every model of an ensemble sees the same sequences. For tasks that play back what
they stored, one playback lag per model is used for all its episodes: the lag most of its
episodes fit (tasks/mechanism.py explains why). Aggregates: a "rate" mechanism gives the
fraction of episodes that pass with a 95% Wilson interval; a "mean" mechanism the mean of the
per-episode values with a 95% bootstrap interval; both with the count of episodes it applied to.
A per-head mechanism (Mechanism.per_head) is aggregated for each head and reports the model's
best head, one for all its episodes, as the lag is.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .episode import Episode, record
from .models import family
from .errors import ConfigError
from .intervals import mean_interval, wilson_interval
from .streams import check_request
from .streams import stream_seed
from .tasks import Batch, Task, task_from_dict
from .tasks.mechanism import LAGS, Mechanism, Reading, Trace


def trace_of(episode: Episode) -> Trace | None:
    """The arrays the mechanism metrics read, or None for an episode without memory."""
    if not episode.has_memory:
        return None
    groups = {g.name: g for g in episode.family.groups}

    def weights(role: str, fallback: str) -> np.ndarray:
        # the heads that read (write) by the declaration, every such group's side by side;
        # files without a declaration's roles name them "read" and "write"
        names = [n for n, rec in episode.head_records() if getattr(groups.get(n), role + "s", False)]
        names = names or [n for n, _ in episode.head_records() if n == fallback]
        if not names:
            return np.zeros((episode.steps, 0, episode.slots), np.float32)
        return np.concatenate([episode.heads[n].weights for n in names], axis=1)

    return Trace(inputs=episode.inputs, read=weights("read", "read"), write=weights("write", "write"),
                 extra=episode.arrays())


def task_of(episode: Episode) -> Task | None:
    """The task an episode was recorded on: its "task_config" metadata, else the task named by
    "task" with its default settings; None when neither names a known task."""
    meta = episode.meta or {}
    config = meta.get("task_config")
    if isinstance(config, dict):
        try:
            return task_from_dict(config)
        except ConfigError:
            pass  # a config from another version: fall back to the name
    name = meta.get("task")
    if isinstance(name, str):
        try:
            return task_from_dict({"name": name})
        except ConfigError:
            return None
    return None


def readings(episode: Episode, task: Task | None = None, lag: int | None = None) -> list[tuple[Mechanism, Reading]]:
    """Every mechanism of the episode's task measured on this one episode. Raises ConfigError
    for an episode without memory, without a known task, or whose inputs do not fit the task.
    `lag`: the playback lag to assume (None: the one this episode fits best)."""
    if not episode.has_memory:
        raise ConfigError("this episode comes from a model with no memory: there are no heads to measure")
    task = task or task_of(episode)
    if task is None:
        raise ConfigError("the episode names no known task, so there is no algorithm to compare it with")
    trace = trace_of(episode)
    if episode.inputs is None and hasattr(task, "story_inputs"):
        # a memory network's story: its slots are the sentences, its steps the hops (memn2n.py)
        question = episode.meta.get("question")
        if not isinstance(question, str) or episode.slot_labels is None:
            raise ConfigError("the story episode lacks its question or its sentences")
        trace = trace._replace(inputs=task.story_inputs(episode.slot_labels, question))
    if trace.inputs is None:
        raise ConfigError("the episode has no inputs, so its heads cannot be compared with the task's algorithm")
    if trace.inputs.shape[1] != task.input_size:
        raise ConfigError(f"the episode's inputs are {trace.inputs.shape[1]} wide; the {task.name} task "
                          f"as configured takes {task.input_size}")
    values = task.measure_mechanisms(trace, lag)
    family = episode.family
    mine = applying(task, family.name)
    if mine:
        return [(m, values[m.name]) for m in mine]
    return [(m, Reading(float("nan"), f"measured for {' and '.join(m.families)} models only (their algorithm); "
                                      f"this episode's model: {family.title}")) for m in task.mechanisms]


def applying(task: Task, family: str) -> tuple[Mechanism, ...]:
    """The task's mechanisms that are the algorithm of this family of model (Mechanism.families):
    an NTM's copy is judged by its write walk, a DNC's by its allocation and links."""
    return tuple(m for m in task.mechanisms if family in m.families)


@dataclass
class Result:
    """One mechanism over many episodes."""

    mechanism: Mechanism
    value: float  # fraction passing (rate) or mean value (mean); NaN when it applied to none
    interval: tuple[float, float]  # 95%
    samples: int  # episodes it applied to
    head: int | None = None  # for a per_head mechanism: the head reported (0-based), the model's best

    @property
    def title(self) -> str:
        """The mechanism's title, naming the head for a per-head one."""
        m = self.mechanism
        return m.title if self.head is None else f"{m.title} ({m.per_head} head {self.head + 1})"

    @property
    def passes(self) -> bool:
        return self.mechanism.passes(self.value)

    @property
    def verdict(self) -> str:
        return self.mechanism.says(self.value)

    def to_dict(self) -> dict[str, Any]:
        m = self.mechanism
        return {"name": m.name, "title": m.title, "kind": m.kind, "value": self.value,
                "interval": list(self.interval), "samples": self.samples, "threshold": m.threshold,
                "two_sided": m.two_sided, "passes": self.passes, "verdict": self.verdict, "measures": m.measures,
                "head": None if self.head is None else self.head + 1}


@dataclass
class Report:
    """One model's mechanisms on `samples` held-out sequences of one task configuration."""

    task: str
    stream: str
    seed: int
    samples: int
    lag: int | None  # the playback lag used for every episode (None: the task has none)
    results: list[Result] = field(default_factory=list)

    @property
    def passes(self) -> bool:
        """Whether every mechanism shows."""
        return all(r.passes for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "stream": self.stream, "seed": self.seed, "samples": self.samples,
                "lag": self.lag, "passes": self.passes, "results": [r.to_dict() for r in self.results]}

    def table(self) -> str:
        """The report as text: one line per mechanism, then the verdicts."""
        lines = [f"What the heads did ({self.task}, {self.samples} sequences from the {self.stream} stream, "
                 f"seed {self.seed}; [95% interval], n = sequences measured)"]
        if self.lag is not None:
            lines.append("playback lag 1: the read head reads at step t what the output shows at step t+1"
                         if self.lag else "playback lag 0: the output at step t shows the read of step t")
        width = max([44, *(len(r.title) for r in self.results)])
        lines.append(f"  {'mechanism':<{width}} {'value':>7} {'[95% interval]':>18} {'n':>5}  {'target':<24} shows?")
        for r in self.results:
            lo, hi = r.interval
            lines.append(f"  {r.title:<{width}} {r.value:7.3f} [{lo:7.3f}, {hi:7.3f}] {r.samples:5d}  "
                         f"{r.mechanism.target:<24} {'yes' if r.passes else 'NO'}")
        lines += [f"  - {r.verdict}" for r in self.results]
        return "\n".join(lines)


def aggregate(mechanisms: tuple[Mechanism, ...], values: dict[str, list]) -> list[Result]:
    """Per-episode values -> one Result per mechanism. A value is a float (NaN: not applicable)
    or, for a per_head mechanism, each head's values [H] (NaN: not applicable); such a mechanism
    reports the head with the best aggregate (the largest, or the largest in size if two-sided)."""
    results = []
    for m in mechanisms:
        episodes = values.get(m.name, [])
        if not m.per_head:
            results.append(_aggregate(m, [x for x in episodes if not math.isnan(x)]))
            continue
        rows = [x for x in episodes if not np.isscalar(x)]  # NaN alone: not applicable to any head
        columns = np.asarray(rows, dtype=np.float64).T if rows else []  # [H, E]
        heads = [replace(_aggregate(m, c[~np.isnan(c)]), head=h) for h, c in enumerate(columns)]
        heads = [r for r in heads if r.samples]
        best = max(heads, key=lambda r: abs(r.value) if m.two_sided else r.value) if heads else _aggregate(m, [])
        results.append(best)
    return results


def _aggregate(m: Mechanism, values) -> Result:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return Result(m, math.nan, (math.nan, math.nan), 0)
    if m.kind == "rate":
        passed = int((v >= 0.5).sum())
        return Result(m, passed / v.size, wilson_interval(passed, v.size), int(v.size))
    return Result(m, float(v.mean()), mean_interval(v), int(v.size))


def model_lag(lags: list[int | None]) -> int | None:
    """The lag most episodes fit (the smaller on a tie); None when the task has none."""
    known = [lag for lag in lags if lag is not None]
    if not known:
        return None
    counts = Counter(known)
    return max(sorted(counts), key=lambda lag: counts[lag])


def record_held_out(model: torch.nn.Module, task: Task, *, stream: str = "test", seed: int = 0,
                    samples: int = 200, batch_size: int = 50):
    """Yield (batch index, one list of the batch's episodes per model): `samples` held-out
    sequences of `task`, the same for every model of an ensemble (model k's episodes are rows
    k*B .. (k+1)*B-1 of the recording)."""
    check_request(stream, samples)
    declared = family(model.config.kind).resolve(model.config)  # a config may build a family without memory
    if not declared.has_memory:
        raise ConfigError(f"the {declared.title} has no memory: there are no heads to measure")
    if hasattr(model.config, "memory_slots"):
        task.check_fits(model.config.memory_slots)
    K = getattr(model, "models", 1)
    meta = {"stream": stream, "seed": seed}
    done, index = 0, 0
    while done < samples:
        b = min(batch_size, samples - done)
        batch = task.sample(b, seed=stream_seed(stream, seed, index), device=model.device)
        episodes = record(model, Batch.concat([batch] * K), meta=meta, task=task)
        yield index, [episodes[k * b: (k + 1) * b] for k in range(K)]
        done += b
        index += 1


def measure(model: torch.nn.Module, task: Task, *, stream: str = "test", seed: int = 0, samples: int = 200,
            batch_size: int = 50) -> list[Report]:
    """Record `samples` held-out sequences of `task` and measure every mechanism: one Report
    per model (K for a seed ensemble), all on the same sequences. Raises ConfigError for a
    model without memory. Each batch's episodes are measured and dropped as they come."""
    K = getattr(model, "models", 1)
    tallies = [Tally(task, model.config.kind) for _ in range(K)]
    if hasattr(model, "hops"):  # a memory network: its hop attentions are the reads, with no writes
        for tally, traces in zip(tallies, hop_traces(model, task, stream=stream, seed=seed, samples=samples,
                                                     batch_size=batch_size)):
            for trace in traces:
                tally.add(trace)
        return [Report(task=task.name, stream=stream, seed=seed, samples=samples, lag=lag, results=results)
                for lag, results in (tally.results() for tally in tallies)]
    for _, per_model in record_held_out(model, task, stream=stream, seed=seed, samples=samples,
                                        batch_size=batch_size):
        for tally, episodes in zip(tallies, per_model):
            for ep in episodes:
                tally.add(trace_of(ep))
    reports = []
    for tally in tallies:
        lag, results = tally.results()
        reports.append(Report(task=task.name, stream=stream, seed=seed, samples=samples, lag=lag, results=results))
    return reports


def hop_traces(model: torch.nn.Module, task: Task, *, stream: str = "test", seed: int = 0, samples: int = 200,
               batch_size: int = 50) -> list[list[Trace]]:
    """A memory network's traces of `samples` held-out stories, per model: inputs [n + 1, I]
    (the question, then the n sentences), read [H, 1, n] each hop's attention, write [0, 1, n]."""
    check_request(stream, samples)
    task.check_fits(model.config.memory_slots)
    K = getattr(model, "models", 1)
    traces: list[list[Trace]] = [[] for _ in range(K)]
    done, index = 0, 0
    with torch.inference_mode():
        while done < samples:
            b = min(batch_size, samples - done)
            batch = task.sample(b, seed=stream_seed(stream, seed, index), device=model.device)
            both = Batch.concat([batch] * K)
            attention = model.hops(both.inputs).attention.cpu().numpy()  # [K*b, H, S]
            inputs = batch.inputs.cpu().numpy()
            for k in range(K):
                for i in range(b):
                    n = int(batch.lengths[i]) - 1
                    read = attention[k * b + i, :, None, :n]
                    traces[k].append(Trace(inputs[i, : n + 1], read, np.zeros((0, 1, n), np.float32)))
            done += b
            index += 1
    return traces


class Tally:
    """One model's per-episode values, kept under every playback lag until the model's lag is
    known (the lag most episodes fit, `model_lag`), so an episode that slipped by a step is
    measured against the model's own habit rather than explained away by the other lag."""

    def __init__(self, task: Task, family: str = "ntm"):
        self.task = task
        self.mechanisms = applying(task, family)  # the family's algorithm's parts
        self.lags: list[int | None] = []
        self.values: dict[int | None, dict[str, list]] = {}  # lag -> name -> per-episode values (aggregate)
        self.per_head = {m.name for m in self.mechanisms if m.per_head}

    def add(self, trace: Trace) -> None:
        best = self.task.playback_lag(trace)
        self.lags.append(best)
        for lag in (LAGS if best is not None else (None,)):
            table = self.values.setdefault(lag, {m.name: [] for m in self.mechanisms})
            for name, reading in self.task.measure_mechanisms(trace, lag).items():
                if name not in table:
                    continue
                heads = reading.heads if name in self.per_head else None
                table[name].append(reading.value if heads is None else heads)

    def results(self) -> tuple[int | None, list[Result]]:
        """(the lag used, one Result per mechanism)."""
        lag = model_lag(self.lags)
        return lag, aggregate(self.mechanisms, self.values.get(lag, {}))


def summarise(task: Task, traces, family: str = "ntm") -> tuple[int | None, list[Result]]:
    """Episodes' traces of one model of `family` -> (the playback lag used for all, one Result per
    mechanism of its algorithm)."""
    tally = Tally(task, family)
    for trace in traces:
        tally.add(trace)
    return tally.results()


def describe_for_cli(model: torch.nn.Module, task: Task, *, stream: str = "test", seed: int = 0,
                     samples: int = 200) -> tuple[str, dict[str, Any]]:
    """(text for `ntmviz eval`, its JSON-ready dict): the mechanisms of a single model on the
    task's training range (Report.to_dict()), or, for a model without memory, one line saying
    there is nothing to measure (and {"note": that line})."""
    declared = family(model.config.kind).resolve(model.config)  # a config may build a family without memory
    if not declared.has_memory:
        note = f"What the heads did: nothing to measure (the {declared.title} has no memory)."
        return note, {"note": note}
    if not applying(task, declared.name):
        note = f"What the heads did: the {task.name} task defines no mechanism metrics for the {declared.title}."
        return note, {"note": note}
    report = measure(model, task, stream=stream, seed=seed, samples=samples)[0]
    return report.table(), report.to_dict()
