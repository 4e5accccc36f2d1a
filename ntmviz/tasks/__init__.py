"""The paper's five tasks (Graves, Wayne & Danihelka 2014, section 4), one module each; the
transduction tasks of neural stacks (reversal, bigram flipping) and the DNC's allocation task
(transduction.py); the counting languages of stack-augmented RNNs (languages.py); bAbI-style story
tasks for memory networks (babi.py); the pointer network's sorting, convex hulls and travelling
salesman (geometry.py); symbol reversal and dates, token transductions whose alignment is known,
for encoder-decoders with attention (alignment.py).

    task = get_task("copy", max_length=10)
    batch = task.sample(32, seed=0, device=model.device)   # Batch(inputs, targets, mask, lengths)
    logits = model(batch.inputs)
    task.loss(logits, batch).backward()                     # nats per sequence
    task.bit_errors(logits, batch)                          # [B] wrong bits on scored steps
    task.at(100).check_fits(model.config.memory_slots)      # the generalisation sizes

Every task is a frozen dataclass whose fields are its configuration (the paper's values by
default); `to_dict()` / `task_from_dict()` turn it into plain JSON and back.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .alignment import Dates, SymbolReversal
from .associative_recall import AssociativeRecall
from .babi import SingleFact, TwoFacts, YesNo
from .base import Batch, Task
from .copy import Copy
from .geometry import ConvexHull, SortNumbers, TravellingSalesman
from .languages import LANGUAGES, AnB2n, AnBmCnm, AnBn, AnBnCn, AnBnCnDn
from .ngrams import NGrams
from .priority_sort import PrioritySort
from .repeat_copy import RepeatCopy
from .transduction import Allocation, BigramFlip, Reversal

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (Copy, RepeatCopy, AssociativeRecall, NGrams, PrioritySort, Reversal, BigramFlip,
                              Allocation, *LANGUAGES)
}
# Story tasks (questions over sentences) for memory networks; not in TASKS, which lists the
# sequence tasks an NTM or LSTM trains on (the app's Train tab offers those).
STORY_TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (SingleFact, TwoFacts, YesNo)}
# Pointer tasks (answers that point at the inputs: geometry.py) for pointer networks.
POINTER_TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (SortNumbers, ConvexHull,
                                                                   TravellingSalesman)}
# Token transductions with a known alignment (alignment.py), for encoder-decoders with attention.
ALIGNMENT_TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (SymbolReversal, Dates)}
# Every task a model reads a step per input of (all but the stories): what the Train tab offers,
# each with the models whose config takes it (sweep.sequence_models).
SEQUENCE_TASKS: dict[str, type[Task]] = {**TASKS, **ALIGNMENT_TASKS, **POINTER_TASKS}
ALL_TASKS: dict[str, type[Task]] = {**TASKS, **STORY_TASKS, **POINTER_TASKS, **ALIGNMENT_TASKS}


def get_task(name: str, **overrides: Any) -> Task:
    """The task called `name` with its paper defaults, some fields overridden."""
    if name not in ALL_TASKS:
        raise ConfigError(f"unknown task {name!r}; expected one of {', '.join(ALL_TASKS)}")
    cls = ALL_TASKS[name]
    known = {f.name for f in cls.__dataclass_fields__.values()}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown {name} task fields: {sorted(unknown)}; it has {sorted(known)}")
    return cls(**overrides)


def task_from_dict(data: dict[str, Any]) -> Task:
    """Rebuild a task from `task.to_dict()`."""
    if not isinstance(data, dict) or "name" not in data:
        raise ConfigError(f"a task dict needs a 'name', got {data!r}")
    data = dict(data)
    return get_task(data.pop("name"), **data)


__all__ = ["Batch", "Task", "TASKS", "STORY_TASKS", "POINTER_TASKS", "ALIGNMENT_TASKS", "SEQUENCE_TASKS",
           "ALL_TASKS", "get_task", "task_from_dict",
           "Copy", "RepeatCopy", "AssociativeRecall", "NGrams", "PrioritySort",
           "SingleFact", "TwoFacts", "YesNo", "Reversal", "BigramFlip", "Allocation",
           "AnBn", "AnBnCn", "AnBnCnDn", "AnB2n", "AnBmCnm", "SortNumbers", "ConvexHull",
           "TravellingSalesman", "SymbolReversal", "Dates"]
