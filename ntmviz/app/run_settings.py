"""A live run's settings as `param` parameters, made from the config dataclasses' fields.

    Settings = settings_class(RunConfig.quick())       # a parameter per RunConfig field
    form = Settings()
    pn.widgets.IntInput.from_param(form.param.memory_slots)
    config = to_config(form, RunConfig.quick())          # a RunConfig again, checked

    Train = form_class(RunConfig.quick())              # the Train tab's fields alone, labelled
    Train().param.task.objects                          # the sequence tasks (tasks.SEQUENCE_TASKS)
    Train().param.model.objects                         # {"Neural Turing Machine": "ntm", ...}
    model_fields("lstm")                                # ["hidden_size", "layers"]: its number fields

Each parameter's default, bounds, soft bounds, choices and doc are its field's (config.py:
`setting`), so a form built here offers what `ntmviz train`'s options and a sweep's keys offer;
the defaults are those of the config given (RunConfig's own when none is). The Train tab's form
(train_form.py) holds one instance of `form_class(...)`: the settings as last read from its fields.
The models and their fields come from the configs (sweep.sequence_models, config.model_settings):
a new model family needs no change here.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import param

from ..config import Setting, model_settings, settings
from ..sweep import sequence_models
from .live import RunConfig

_UNSET = object()

# The fields the Train tab offers besides the model's own, in its order, with their labels (what
# the page and its messages call them).
FORM_LABELS = {
    "task": "Task", "model": "Model", "lr": "Learning rate", "batch_size": "Batch size", "steps": "Steps",
    "snapshot_every": "Snapshot every (steps)", "seeds": "Seeds", "validate_every": "Validate every (steps)",
}
# A model field's label when its name does not make a good one ("read_heads": "Read heads").
MODEL_LABELS = {"memory_slots": "Memory slots (N)", "memory_width": "Word width (M)"}


def field_label(name: str) -> str:
    """What the page calls a field: its label above, else its name in words."""
    return FORM_LABELS.get(name) or MODEL_LABELS.get(name) or name.replace("_", " ").capitalize()


def model_fields(*kinds: str) -> list[str]:
    """The number fields of these model kinds: their settings chosen by hand (not derived), in order."""
    return [name for name, s in model_settings(*kinds).items() if s.type in (int, float)]


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
    """The Train tab's settings (FORM_LABELS, every field of the models it offers, and the task's
    options), defaults from `config` (RunConfig.quick() when None): "task" offers the sequence
    tasks and "model" the models that train on them (sweep.sequence_models), by their titles (a
    memory network needs stories: `ntmviz train`). The form narrows "model" to those that take the
    chosen task (train_form.py)."""
    from ..tasks import SEQUENCE_TASKS

    config = config or RunConfig.quick()
    tasks = {name.replace("_", " "): name for name in SEQUENCE_TASKS}  # shown as words
    if config.task not in tasks.values():
        tasks[config.task] = config.task  # a config's own task is always offered
    kinds = sequence_models()
    models = {title: kind for kind, title in kinds.items()}
    overrides = {
        "task": param.Selector(objects=tasks, default=config.task, label=field_label("task"),
                               doc="the task the model learns (its inputs and what it must answer)"),
        "model": param.Selector(objects=models, default=config.model, label=field_label("model"),
                                doc="the model that learns (a memory network trains with `ntmviz train`)"),
    }
    names = [*FORM_LABELS, *model_fields(*kinds), "task_options"]
    return settings_class(config, names=names, name="TrainSettings", labels={n: field_label(n) for n in names},
                          overrides=overrides)


def to_config(form: param.Parameterized, base: RunConfig | None = None) -> RunConfig:
    """`base` (RunConfig's defaults when None) with every setting `form` holds; ConfigError for a bad one."""
    base = base or RunConfig()
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    return dataclasses.replace(base, **{k: getattr(form, k) for k in form.param if k in fields})
