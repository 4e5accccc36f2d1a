"""The Train tab's form: its settings as param parameters made from the config fields, the choices
as from_param widgets, numbers read as typed (never rewritten), settings set from code shown; the
models and their fields read from the configs, so a kind registered in config.py and
models/__init__.py alone (here: at test time) is offered with its own fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType

import panel as pn
import pytest

from ntmviz import config as configs
from ntmviz import models
from ntmviz.app.live import RunConfig
from ntmviz.app.run_settings import FORM_LABELS, MODEL_LABELS, form_class, model_fields
from ntmviz.app.train_form import TrainForm, size_field
from ntmviz.config import MemN2NConfig, NTMConfig, setting, setting_of
from ntmviz.contract import Family
from ntmviz.errors import ConfigError
from ntmviz.sweep import sequence_models
from ntmviz.tasks import SEQUENCE_TASKS, get_task

BOTH = {"Neural Turing Machine": "ntm", "LSTM baseline": "lstm"}  # offered, with any model added since


def like(cls, name: str):
    """A field with the same default, bounds and help as `cls`'s field `name`."""
    s = setting_of(cls, name)
    return setting(s.default, help=s.help, type=s.type, bounds=s.bounds, softbounds=s.softbounds)


@dataclass(frozen=True)
class ToyConfig:
    """A model kind the app has never heard of: a controller and some hops."""

    input_size: int = setting(help="inputs per step", type=int, bounds=(1, None), derived=True)
    output_size: int = setting(help="outputs per step", type=int, bounds=(1, None), derived=True)
    controller_size: int = like(NTMConfig, "controller_size")
    hops: int = like(MemN2NConfig, "hops")

    kind = "toy"

    @classmethod
    def for_task(cls, task, **settings):
        return cls(task.input_size, task.output_size, **settings)


@pytest.fixture
def toy_config(monkeypatch):
    """ToyConfig registered in config.py's tables (as a new family's config is), its kind allowed."""
    monkeypatch.setattr(configs, "MODEL_KINDS", (*configs.MODEL_KINDS, "toy"))
    monkeypatch.setitem(configs.MODEL_CONFIGS, "toy", ToyConfig)
    field = RunConfig.__dataclass_fields__["model"]  # TrainConfig's, whose choices were read at import
    monkeypatch.setattr(field, "metadata", MappingProxyType({**field.metadata, "choices": configs.MODEL_KINDS}))


@pytest.fixture
def toy(toy_config, monkeypatch):
    """... and its family registered in models/__init__.py."""
    monkeypatch.setitem(models.FAMILIES, "toy", Family("toy", "Toy memory", memory="none"))


@pytest.fixture
def form(tmp_path):
    return TrainForm(RunConfig.quick(), folder=str(tmp_path), save_folder=str(tmp_path))


def test_the_settings_class_is_made_from_the_config_fields():
    Settings = form_class(RunConfig.quick(seeds=[2, 4], memory_slots=24))
    s = Settings()
    assert s.param.task.objects == {name.replace("_", " "): name for name in SEQUENCE_TASKS} and s.task == "copy"
    assert BOTH.items() <= s.param.model.objects.items() and "memn2n" not in s.param.model.objects.values()
    assert s.param.model.objects == {title: kind for kind, title in sequence_models().items()}
    assert s.memory_slots == 24 and s.seeds == [2, 4] and s.lr == 3e-3
    for name, label in {**FORM_LABELS, **MODEL_LABELS}.items():
        assert s.param[name].label == label
    assert (s.param.hidden_size.label, s.param.controller_size.label) == ("Hidden size", "Controller size")
    slots = setting_of(RunConfig, "memory_slots")
    assert s.param.memory_slots.bounds == slots.bounds and s.param.memory_slots.softbounds == slots.softbounds
    assert s.param.memory_slots.doc == slots.help
    assert {"hidden_size", "layers", "task_options"} <= set(s.param)  # what the form holds
    assert "optimizer" not in s.param and "controller" not in s.param and "hops" not in s.param


def test_the_choices_are_widgets_on_the_settings(form):
    assert isinstance(form.task, pn.widgets.Select) and form.task.label == "Task"
    assert list(form.task.options)[:5] == ["copy", "repeat copy", "associative recall", "ngrams", "priority sort"]
    assert list(form.task.options.values()) == list(SEQUENCE_TASKS)
    assert BOTH.items() <= form.model.options.items()
    form.task.value = "repeat_copy"  # the widget moves the setting ...
    assert form.settings.task == "repeat_copy"
    field, default = size_field("repeat_copy")
    assert form.size.value == str(default) and form.settings.task_options == {field: default}
    form.settings.model = "lstm"  # ... and the setting moves the widget, and the LSTM's fields show
    assert form.model.value == "lstm" and form.model_fields == ["hidden_size", "layers"]
    assert shown(form) == ["Hidden size", "Layers"]


def shown(form) -> list[str]:
    """The labels of the model fields on the page."""
    return [field.label for row in form.model_area for field in row]


def test_typed_numbers_update_the_settings_and_stay_as_typed(form):
    form.memory_slots.value = "1,024"
    assert form.settings.memory_slots == 1024 and form.memory_slots.value == "1,024"  # never rewritten
    form.memory_slots.value = "12.5"  # cannot be read: the settings keep the last good value
    assert form.settings.memory_slots == 1024 and form.memory_slots.value == "12.5"
    with pytest.raises(ConfigError) as refused:
        form.config()
    assert str(refused.value) == "Memory slots (N) must be a whole number; \u201c12.5\u201d is not one."
    form.seeds.value = "0-3"
    assert form.settings.seeds == [0, 1, 2, 3]
    form.lr.value = "1e-2"
    assert form.settings.lr == 0.01 and form.lr.value == "1e-2"
    form.memory_slots.value = "32"
    form.memory_init_value.value = "-1"  # a number field of the NTM's, below its bounds (0 allowed)
    with pytest.raises(ConfigError, match="^Memory init value must be at least 0; you typed -1.$"):
        form.config()
    form.memory_init_value.value = "0"
    assert form.config().memory_init_value == 0


def test_settings_set_from_code_show_in_their_fields(form):
    form.settings.param.update(memory_slots=48, seeds=[1, 2, 3, 4], lr=0.02, steps=750)
    assert (form.memory_slots.value, form.seeds.value, form.lr.value, form.steps.value) == ("48", "1-4", "0.02", "750")
    form.settings.task_options = {"max_length": 9}
    assert form.size.value == "9"
    assert form.config() == RunConfig.quick(memory_slots=48, seeds=[1, 2, 3, 4], lr=0.02, steps=750,
                                            task_options={"max_length": 9})


def test_each_model_shows_its_own_fields_the_lstm_its_hidden_size(form):
    assert form.model_fields == model_fields("ntm") and shown(form) == [
        "Memory slots (N)", "Word width (M)", "Read heads", "Write heads", "Controller size", "Controller layers",
        "Shift range", "Memory init value"]
    form.model.value = "lstm"
    assert shown(form) == ["Hidden size", "Layers"] and form.hidden_size.value == "64"
    assert form.hidden_size.description == setting_of(RunConfig, "hidden_size").help
    form.memory_slots.value = "nonsense"  # the NTM's fields are not the LSTM's: not read
    form.hidden_size.value = "40"
    config = form.config()
    assert config.model == "lstm" and config.hidden_size == 40
    assert config.controller_size == RunConfig.quick().controller_size  # the NTM's own stays
    form.hidden_size.value = "5000"
    with pytest.raises(ConfigError, match="^Hidden size must be at most 4,096; you typed 5,000.$"):
        form.config()


def test_the_models_offered_are_those_that_take_the_chosen_task(form):
    everywhere = set(form.model.options.values())
    assert "pointer" not in everywhere and {"ntm", "seq2seq"} <= everywhere  # copy, the first task
    form.task.value = "convex_hull"  # a pointer network points at its inputs: the pointer tasks only
    offered = set(form.model.options.values())
    assert "pointer" in offered and "seq2seq" not in offered and form.settings.model == "ntm"
    for kind in offered:  # each builds for the task; each left out does not
        configs.model_config(kind, get_task("convex_hull"))
    with pytest.raises(ConfigError):
        configs.model_config("seq2seq", get_task("convex_hull"))
    form.model.value = "pointer"
    assert form.model_fields == ["pointer_size"] and shown(form) == ["Pointer size"]
    assert form.config().model == "pointer"
    form.task.value = "dates"  # the pointer network cannot read it: the first model that can is chosen
    assert "pointer" not in form.model.options.values() and form.settings.model == "ntm"
    assert form.model.value == "ntm" and shown(form)[0] == "Memory slots (N)"


def test_a_kind_is_offered_when_its_config_takes_a_sequence_task_and_its_family_is_registered(toy_config,
                                                                                              monkeypatch):
    assert "toy" not in sequence_models()  # its config alone: no model to build yet
    monkeypatch.setitem(models.FAMILIES, "toy", Family("toy", "Toy memory", memory="none"))
    assert sequence_models()["toy"] == "Toy memory"
    assert "memn2n" not in sequence_models()  # its config refuses the sequence tasks (it reads stories)
    monkeypatch.setattr(ToyConfig, "for_task", classmethod(lambda cls, task: MemN2NConfig.for_task(task)))
    assert "toy" not in sequence_models()


def test_a_kind_registered_in_the_configs_alone_is_offered_with_exactly_its_fields(toy, tmp_path):
    form = TrainForm(RunConfig.quick(), folder=str(tmp_path), save_folder=str(tmp_path))
    assert form.model.options["Toy memory"] == "toy" and BOTH.items() <= form.model.options.items()
    form.model.value = "toy"
    assert form.model_fields == ["controller_size", "hops"] and shown(form) == ["Controller size", "Hops"]
    assert form.hops.description == setting_of(MemN2NConfig, "hops").help and form.hops.value == "3"
    form.hops.value = "17"  # past its soft bounds
    with pytest.raises(ConfigError, match="^Hops must be at most 16; you typed 17.$"):
        form.config()
    form.hops.value = "5"
    form.controller_size.value = "12"
    config = form.config()
    assert (config.model, config.hops, config.controller_size) == ("toy", 5, 12)
    task = get_task("copy", max_length=5)
    assert config.model_config(task) == ToyConfig(task.input_size, task.output_size, controller_size=12, hops=5)
    form.start_from.options = {"a new model": "", "x.safetensors": str(tmp_path / "x.safetensors")}
    form.start_from.value = str(tmp_path / "x.safetensors")  # a checkpoint keeps its own, whatever its kind
    assert form.hops.disabled and form.controller_size.disabled and form.model.disabled
    form.model.value = "lstm"  # what a new model would be
    assert shown(form) == ["Hidden size", "Layers"]


def test_a_checkpoint_keeps_its_own_model_settings(form, tmp_path):
    form.start_from.options = {"a new model": "", "x.safetensors": str(tmp_path / "x.safetensors")}
    form.start_from.value = str(tmp_path / "x.safetensors")
    assert form.checkpoint == str(tmp_path / "x.safetensors")
    kept = ("task", "size", "model", "seeds", *model_fields(*sequence_models()))  # every model's fields
    assert all(getattr(form, name).disabled for name in kept)
    assert not any(getattr(form, name).disabled for name in ("lr", "batch_size", "steps", "validate_every"))
    assert "Continues the checkpoint" in form.note.object
    form.memory_slots.value = "nonsense"  # disabled fields are not read
    form.steps.value = "30"
    config = form.config()
    assert config == dataclasses.replace(RunConfig.quick(), steps=30, task_options={})


def test_a_bad_live_field_says_so_at_once(form):
    form.snapshot_every.value = "-3"
    assert form.message == "Snapshot every (steps) must be at least 1; you typed -3."
    form.snapshot_every.value = "25"
    assert form.message == "" and form.settings.snapshot_every == 25
    form.memory_slots.value = "x"  # not a live field: said at Start, not while typing
    assert form.message == ""
