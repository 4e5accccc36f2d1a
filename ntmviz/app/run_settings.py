"""A live run's settings as `param` parameters, made from the config dataclasses' fields.

    Settings = settings_class(RunConfig.quick())       # a parameter per RunConfig field
    form = Settings()
    pn.widgets.IntInput.from_param(form.param.memory_slots)
    config = to_config(form, RunConfig.quick())          # a RunConfig again, checked

Each parameter's default, bounds, soft bounds, choices and doc are its field's (config.py:
`setting`), so a form built here offers what `ntmviz train`'s options and a sweep's keys offer;
the defaults are those of the config given (RunConfig's own when none is).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import param

from ..config import Setting, settings
from .live import RunConfig

_UNSET = object()


def parameter(s: Setting, default=_UNSET) -> param.Parameter:
    """The parameter of one field (config.Setting), with `default` or the field's own."""
    value = s.default if default is _UNSET else default
    optional = value is None or s.default is None
    common = dict(default=value, doc=s.help, allow_None=optional)
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
                   name: str = "RunSettings") -> type[param.Parameterized]:
    """A Parameterized class with a parameter per RunConfig field that carries a setting (or
    those in `names`), their defaults from `config`."""
    config = config or RunConfig()
    wanted = None if names is None else set(names)
    params = {s.name: parameter(s, getattr(config, s.name)) for s in settings(RunConfig)
              if wanted is None or s.name in wanted}
    return param.parameterized_class(name, params)


def to_config(form: param.Parameterized, base: RunConfig | None = None) -> RunConfig:
    """`base` (RunConfig's defaults when None) with every setting `form` holds; ConfigError for a bad one."""
    base = base or RunConfig()
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    return dataclasses.replace(base, **{k: getattr(form, k) for k in form.param if k in fields})
