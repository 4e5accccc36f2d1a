"""The Train tab's settings form: what to train, read as typed or refused in the user's terms.

    form = TrainForm(RunConfig.quick(), folder="checkpoints", save_folder="runs")
    form.settings.memory_slots          # 16: the settings as last read (run_settings.form_class)
    form.memory_slots.value = "32"      # typing a valid value updates form.settings at once
    form.settings.memory_slots = 64     # and setting one shows it in its field
    form.model_fields                   # the chosen model's fields on show: memory_slots, ...
    config = form.config()              # a RunConfig; ConfigError naming the field otherwise

The choices (task, model) are widgets made with `from_param` on the settings' parameters. The
numbers are text fields (fields.py): Bokeh's numeric inputs rewrite what is typed out of sight,
so a number is read from the text with a message in the user's terms ("Memory slots (N) must be
at most 4,096; you typed 5,000."), and nothing typed is ever rewritten. Each field's range is its
setting's soft bounds (config.py), so a limit changed there is the form's limit.

The model's fields are its config's number settings (run_settings.model_fields): there is a field
for every setting of every model offered, and the chosen model's alone are on the page and read.

"Start from" picks a new model or a checkpoint to train further; with a checkpoint, the model's
own settings (task, model and every model field, seed) are the checkpoint's and their fields
are disabled.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import panel as pn
import param
from panel.viewable import Viewer

from ..config import setting_of
from ..errors import ConfigError
from ..sweep import sequence_models
from .fields import number_field, read_float, read_int, read_seeds, seeds_text, set_number, smallest_valid
from .live import RunConfig
from .run_settings import field_label, form_class, model_fields
from .sources import MAX_STEPS, checkpoint_options, runs_sequences

NEW_MODEL = "a new model"
MAX_SEEDS = 16  # seeds one run of the Train tab trains together (`ntmviz train --seeds` takes more)
SIZE_LABEL = "Longest input"
# The number fields after the model's own, in the form's order (the size field belongs to the task).
NUMBERS = ("lr", "batch_size", "steps", "snapshot_every", "validate_every")
KEPT_FROM_CHECKPOINT = ("task", "size", "model", "seeds")  # the checkpoint's own, with every model field
LIVE = ("snapshot_every", "validate_every")  # applied to a run while it trains


def form_range(name: str) -> tuple:
    """(low, high) a field of the form accepts: its setting's soft bounds (config.py), else its bounds."""
    s = setting_of(RunConfig, name)
    return s.softbounds or s.bounds or (None, None)


def read_number(field: pn.widgets.TextInput, name: str) -> int | float:
    """The number typed in a field of setting `name`: whole for an integer, within form_range."""
    s, (low, high) = setting_of(RunConfig, name), form_range(name)
    if s.type is int:
        return read_int(field, minimum=low, maximum=high)
    closed = s.inclusive_bounds[0]
    value = read_float(field, above=None if closed else low, maximum=high)
    if closed and low is not None and value < low:
        raise ConfigError(f"{field.label} must be at least {low:g}; you typed {field.value.strip()}.")
    return value


def _task(name: str, **options: Any):
    from ..tasks import get_task

    return get_task(name, **options)


def size_field(task_name: str) -> tuple[str, int]:
    """(the task field that sets its largest size, or '' if none; its default)."""
    task = _task(task_name)
    return task.size_field, task.largest_size


def smallest_size(task_name: str, field_name: str) -> int:
    """The smallest largest-size a task accepts (2 items for associative recall, ...)."""
    return smallest_valid(lambda n: _task(task_name, **{field_name: n})) or 1


class TrainForm(Viewer):
    """The settings of a training run: "Start from", the task and its longest input, the model
    and its sizes, learning rate, batch size, steps, snapshots, seeds and validation."""

    settings = param.ClassSelector(class_=param.Parameterized, doc="""
        The settings as last read from the fields: a parameter per field the form offers
        (run_settings.form_class), labelled as the page labels it.""")

    message = param.String(default="", doc="""
        Why the last value typed in a field that applies while a run trains (snapshot and
        validation periods) cannot be read ('' when it could).""")

    folder = param.String(default="checkpoints", doc="""
        The folder whose checkpoints can be trained further ("Start from").""")

    save_folder = param.String(default="runs", doc="""
        Where the Train tab saves; its checkpoints are listed in "Start from" too.""")

    def __init__(self, config: RunConfig | None = None, **params):
        self.base = config or RunConfig.quick()  # what every RunConfig read here starts from
        super().__init__(settings=form_class(self.base)(), **params)
        c, s = self.base, self.settings
        wide = {"sizing_mode": "stretch_width"}
        self.start_from = pn.widgets.Select(label="Start from", options=self._start_options(), value="",
                                            description="A new model, or a checkpoint to train further "
                                                        "(from the checkpoints folder or saved here)", **wide)
        self.task = pn.widgets.Select.from_param(s.param.task, **wide)
        self.model = pn.widgets.Select.from_param(s.param.model, **wide)
        name, default = size_field(c.task)
        self.size = number_field(SIZE_LABEL, int(c.task_options.get(name, default)) if name else 1, **wide)
        models = model_fields(*s.param.model.objects.values())  # every field of every model offered
        self.numbers = (*models, *NUMBERS)
        self.kept = (*KEPT_FROM_CHECKPOINT, *models)  # the checkpoint's own
        descriptions = {"validate_every": "Score every seed on the validation stream every this many steps "
                                          "(0: never)", **{field: s.param[field].doc for field in models}}
        for field in self.numbers:
            value = c.learning_rate if field == "lr" else (
                c.validation_period if field == "validate_every" else getattr(c, field))
            setattr(self, field, number_field(field_label(field), value, description=descriptions.get(field), **wide))
        self.model_area = pn.Column(sizing_mode="stretch_width", margin=0)  # the chosen model's fields
        self.seeds = pn.widgets.TextInput(label=field_label("seeds"), value=seeds_text(c.seeds),
                                          description="One model per seed, trained together: one seed (0), a "
                                                      f"range (0-7) or a list (0,3,5), at most {MAX_SEEDS}", **wide)
        self.note = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"}, **wide)
        self._reading = False  # a field's text is being read into the settings
        self._settings_from_fields()  # what the fields show (e.g. the resolved learning rate)
        for field in (*self.numbers, "seeds", "size"):
            getattr(self, field).param.watch(lambda e, f=field: self._typed(f), "value")
        s.param.watch(self._settings_changed, [n for n in s.param if n != "name"])
        self.start_from.param.watch(lambda _: self._sync_fields(), "value")
        self._offer_models()
        self._sync_fields()
        self._show_model_fields()

    # ---- reading the fields -------------------------------------------------------------------
    @property
    def checkpoint(self) -> str:
        """The checkpoint "Start from" names ('' for a new model)."""
        return self.start_from.value or ""

    @property
    def model_fields(self) -> list[str]:
        """The chosen model's fields: those on the page, read into a config."""
        return model_fields(self.settings.model)

    def _readers(self) -> dict[str, Callable[[], Any]]:
        """Field name -> a reader of its text (raising ConfigError in the user's terms)."""
        readers = {field: (lambda f=field: read_number(getattr(self, f), f)) for field in self.numbers}
        readers.update(size=self._read_size, seeds=lambda: read_seeds(self.seeds, limit=MAX_SEEDS))
        return readers

    def _read_size(self) -> dict:
        """The task options the "Longest input" field sets ({} for a task without a size)."""
        task = self.settings.task
        field, _ = size_field(task)
        if not field:
            return {}
        what = _task(task).difficulty_name
        n = read_int(self.size, minimum=smallest_size(task, field), maximum=MAX_STEPS,
                     why=f" for {task.replace('_', ' ')} (the {what})")
        return {field: n}

    def _apply(self, values: dict[str, Any]) -> None:
        self._reading = True
        try:
            self.settings.param.update(**{"task_options" if f == "size" else f: v for f, v in values.items()})
        finally:
            self._reading = False

    def _typed(self, field: str) -> None:
        """A field's text changed: a value that reads goes to the settings at once."""
        try:
            value = self._readers()[field]()
        except ConfigError as exc:
            if field in LIVE:
                self.message = str(exc)
            return
        if field in LIVE:
            self.message = ""
        self._apply({field: value})

    def _settings_from_fields(self) -> None:
        values = {}
        for field, read in self._readers().items():
            try:
                values[field] = read()
            except ConfigError:
                continue
        self._apply(values)

    def _settings_changed(self, *events) -> None:
        """Settings set from code show in their fields; the task resets the longest input."""
        for e in events:
            if e.name == "task":
                field, default = size_field(e.new)
                set_number(self.size, default if field else 1)  # read back into task_options
                self._offer_models()
                self._sync_fields()
            if e.name == "model":
                self._show_model_fields()
            if self._reading:
                continue
            if e.name == "seeds":
                self.seeds.value = seeds_text(e.new)
            elif e.name == "task_options":
                field, _ = size_field(self.settings.task)
                if field in e.new:
                    set_number(self.size, e.new[field])
            elif e.name in self.numbers and e.new is not None:
                set_number(getattr(self, e.name), e.new)

    def config(self) -> RunConfig:
        """The RunConfig the fields describe; ConfigError, in the user's terms, for a bad field.
        Settings a field does not offer (the optimiser, the snapshots' bounds, ...) are the base
        config's; from a checkpoint, its own settings are left as they are."""
        from_checkpoint = bool(self.checkpoint)
        readers = self._readers()
        fields = ["size", *self.model_fields, *NUMBERS, "seeds"]
        values = {f: readers[f]() for f in fields if not (from_checkpoint and f in self.kept)}
        self._apply(values)
        s = self.settings
        changes = {name: getattr(s, name) for name in s.param if name != "name"}
        if from_checkpoint:  # the checkpoint's own task, model and seed: the base's stand in
            changes = {name: value for name, value in changes.items() if name not in self.kept}
            changes["task_options"] = {}
        return dataclasses.replace(self.base, **changes)

    # ---- what is enabled ------------------------------------------------------------------------
    def _sync_fields(self) -> None:
        from_checkpoint = bool(self.checkpoint)
        for name in self.kept:
            getattr(self, name).disabled = from_checkpoint
        self.size.disabled = from_checkpoint or not size_field(self.settings.task)[0]
        self.note.object = ("Continues the checkpoint's training (its seed); learning rate, batch size "
                            "and validation apply." if from_checkpoint else "")

    def _offer_models(self) -> None:
        """"Model" offers the models that take the chosen task (a pointer network points at its
        inputs: the pointer tasks only); the chosen model stays if it does, else the first does."""
        s = self.settings
        kinds = sequence_models(_task(s.task))
        options = {title: kind for kind, title in kinds.items()}
        s.param.model.objects = options
        self.model.options = options
        if s.model not in kinds:
            s.model = next(iter(kinds))

    def _show_model_fields(self) -> None:
        """The chosen model's fields on the page, two to a row."""
        shown = [getattr(self, name) for name in self.model_fields]
        self.model_area.objects = [pn.Row(*shown[i:i + 2]) for i in range(0, len(shown), 2)]

    def _start_options(self) -> dict[str, str]:
        options = checkpoint_options(self.folder, self.save_folder)  # a memory network trains from the CLI
        return {NEW_MODEL: "", **{k: v for k, v in options.items() if runs_sequences(v)}}

    def refresh_checkpoints(self) -> None:
        """List the checkpoints of `folder` and `save_folder` again in "Start from"; the choice stays."""
        old = self.start_from.value
        options = self._start_options()
        self.start_from.options = options
        self.start_from.value = old if old in options.values() else ""

    def __panel__(self):
        return pn.Column(
            self.start_from, self.note, self.task, self.size, self.model, self.model_area,
            pn.Row(self.lr, self.batch_size), pn.Row(self.steps, self.snapshot_every),
            pn.Row(self.seeds, self.validate_every), sizing_mode="stretch_width", margin=0)
