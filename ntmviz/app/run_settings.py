"""A live run's settings as `param` parameters, made from the config dataclasses' fields.

    Settings = settings_class(RunConfig.quick())       # a parameter per RunConfig field
    form = Settings()
    pn.widgets.IntInput.from_param(form.param.memory_slots)
    config = to_config(form, RunConfig.quick())          # a RunConfig again, checked

    Train = form_class(RunConfig.quick())              # the Train tab's fields alone, labelled
    Train().param.task.objects                          # the sequence tasks; model: NTM or LSTM

Each parameter's default, bounds, soft bounds, choices and doc are its field's (config.py:
`setting`), so a form built here offers what `ntmviz train`'s options and a sweep's keys offer;
the defaults are those of the config given (RunConfig's own when none is). The Train tab's form
(train_form.py) holds one instance of `form_class(...)`: the settings as last read from its fields.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import param

from ..config import Setting, settings
from .live import LIVE_MODELS, RunConfig

_UNSET = object()

# The fields the Train tab offers, in its order, with their labels (what the page and its
# messages call them). "controller_size" is the LSTM's hidden_size when the model is an LSTM.
FORM_LABELS = {
    "task": "Task", "model": "Model", "memory_slots": "Memory slots (N)", "memory_width": "Word width (M)",
    "read_heads": "Read heads", "write_heads": "Write heads", "controller_size": "Controller size",
    "lr": "Learning rate", "batch_size": "Batch size", "steps": "Steps",
    "snapshot_every": "Snapshot every (steps)", "seeds": "Seeds", "validate_every": "Validate every (steps)",
}
# Fields the form holds without a field of their own: the LSTM's size (typed in "Controller
# size") and the task's options (its largest size, typed in "Longest input").
FORM_EXTRA = ("hidden_size", "task_options")
MODEL_NAMES = {"ntm": "NTM", "lstm": "LSTM baseline"}


def parameter(s: Setting, default=_UNSET, label: str | None = None) -> param.Parameter:
    """The parameter of one field (config.Setting), with `default` or the field's own."""
    value = s.default if default is _UNSET else default
    optional = value is None or s.default is None
    common = dict(default=value, doc=s.help, allow_None=optional, label=label)
    if s.choices is not None:
        return param.Selector(objects=list(s.choices), **common)
    if s.type in (int, float):
        kind = param.Integer if s.type is int else param.Number
        return kind(bounds=s.bounds, inclusive_bounds=s.inclusive_bounds, softbounds=s.softbounds, **common)
    if s.type is list:
        return param.List(item_type=int, **{**common, "default": list(value or [])})
    if s.type is dict:
        return param.Dict(**{**common, "default": dict(value or {})})
    return param.String(**common)


def settings_class(config: RunConfig | None = None, names: Iterable[str] | None = None,
                   name: str = "RunSettings", labels: Mapping[str, str] | None = None,
                   overrides: Mapping[str, param.Parameter] | None = None) -> type[param.Parameterized]:
    """A Parameterized class with a parameter per RunConfig field that carries a setting (or
    those in `names`), their defaults from `config`, labelled by `labels`; `overrides` replaces
    some parameters outright (e.g. a narrower choice)."""
    config = config or RunConfig()
    wanted = None if names is None else set(names)
    labels = labels or {}
    params = {s.name: parameter(s, getattr(config, s.name), labels.get(s.name)) for s in settings(RunConfig)
              if wanted is None or s.name in wanted}
    params.update(overrides or {})
    return param.parameterized_class(name, params)


def form_class(config: RunConfig | None = None) -> type[param.Parameterized]:
    """The Train tab's settings (FORM_LABELS and FORM_EXTRA), defaults from `config`
    (RunConfig.quick() when None): "task" offers the sequence tasks (a memory network needs
    stories: `ntmviz train`), "model" the kinds a live run trains (live.LIVE_MODELS), by name."""
    from ..tasks import TASKS

    config = config or RunConfig.quick()
    tasks = {name.replace("_", " "): name for name in TASKS}  # shown as words
    if config.task not in tasks.values():
        tasks[config.task] = config.task  # a config's own task is always offered
    models = {MODEL_NAMES.get(kind, kind): kind for kind in LIVE_MODELS}
    overrides = {
        "task": param.Selector(objects=tasks, default=config.task, label=FORM_LABELS["task"],
                               doc="the task the model learns (its inputs and what it must answer)"),
        "model": param.Selector(objects=models, default=config.model, label=FORM_LABELS["model"],
                                doc="an NTM, or the LSTM baseline (a memory network trains with `ntmviz train`)"),
    }
    return settings_class(config, names=[*FORM_LABELS, *FORM_EXTRA], name="TrainSettings", labels=FORM_LABELS,
                          overrides=overrides)


def to_config(form: param.Parameterized, base: RunConfig | None = None) -> RunConfig:
    """`base` (RunConfig's defaults when None) with every setting `form` holds; ConfigError for a bad one."""
    base = base or RunConfig()
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    return dataclasses.replace(base, **{k: getattr(form, k) for k in form.param if k in fields})
