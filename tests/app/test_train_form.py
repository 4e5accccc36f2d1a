"""The Train tab's form: its settings as param parameters made from the config fields, the choices
as from_param widgets, numbers read as typed (never rewritten), settings set from code shown."""

from __future__ import annotations

import dataclasses

import panel as pn
import pytest

from ntmviz.app.live import LIVE_MODELS, RunConfig
from ntmviz.app.run_settings import FORM_LABELS, form_class
from ntmviz.app.train_form import TrainForm, size_field
from ntmviz.config import setting_of
from ntmviz.errors import ConfigError
from ntmviz.tasks import TASKS


@pytest.fixture
def form(tmp_path):
    return TrainForm(RunConfig.quick(), folder=str(tmp_path), save_folder=str(tmp_path))


def test_the_settings_class_is_made_from_the_config_fields():
    Settings = form_class(RunConfig.quick(seeds=[2, 4], memory_slots=24))
    s = Settings()
    assert s.param.task.objects == {name.replace("_", " "): name for name in TASKS} and s.task == "copy"
    assert s.param.model.objects == {"NTM": "ntm", "LSTM baseline": "lstm"}
    assert set(s.param.model.objects.values()) == set(LIVE_MODELS)
    assert s.memory_slots == 24 and s.seeds == [2, 4] and s.lr == 3e-3
    for name, label in FORM_LABELS.items():
        assert s.param[name].label == label
    slots = setting_of(RunConfig, "memory_slots")
    assert s.param.memory_slots.bounds == slots.bounds and s.param.memory_slots.softbounds == slots.softbounds
    assert s.param.memory_slots.doc == slots.help
    assert {"hidden_size", "task_options"} <= set(s.param) and "optimizer" not in s.param  # what the form holds


def test_the_choices_are_widgets_on_the_settings(form):
    assert isinstance(form.task, pn.widgets.Select) and form.task.label == "Task"
    assert list(form.task.options) == ["copy", "repeat copy", "associative recall", "ngrams", "priority sort"]
    assert list(form.task.options.values()) == list(TASKS)
    assert form.model.options == {"NTM": "ntm", "LSTM baseline": "lstm"}
    form.task.value = "repeat_copy"  # the widget moves the setting ...
    assert form.settings.task == "repeat_copy"
    field, default = size_field("repeat_copy")
    assert form.size.value == str(default) and form.settings.task_options == {field: default}
    form.settings.model = "lstm"  # ... and the setting moves the widget
    assert form.model.value == "lstm" and form.memory_slots.disabled and form.controller_size.label == "LSTM size"


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


def test_settings_set_from_code_show_in_their_fields(form):
    form.settings.param.update(memory_slots=48, seeds=[1, 2, 3, 4], lr=0.02, steps=750)
    assert (form.memory_slots.value, form.seeds.value, form.lr.value, form.steps.value) == ("48", "1-4", "0.02", "750")
    form.settings.task_options = {"max_length": 9}
    assert form.size.value == "9"
    assert form.config() == RunConfig.quick(memory_slots=48, seeds=[1, 2, 3, 4], lr=0.02, steps=750,
                                            task_options={"max_length": 9})


def test_the_lstm_reads_its_size_from_the_controller_field(form):
    form.model.value = "lstm"
    form.controller_size.value = "40"
    config = form.config()
    assert config.model == "lstm" and config.hidden_size == 40
    assert config.controller_size == RunConfig.quick().controller_size  # the NTM's own stays


def test_a_checkpoint_keeps_its_own_model_settings(form, tmp_path):
    form.start_from.options = {"a new model": "", "x.safetensors": str(tmp_path / "x.safetensors")}
    form.start_from.value = str(tmp_path / "x.safetensors")
    assert form.checkpoint == str(tmp_path / "x.safetensors")
    disabled = [name for name in ("task", "size", "model", "memory_slots", "memory_width", "read_heads",
                                  "write_heads", "controller_size", "seeds") if getattr(form, name).disabled]
    assert len(disabled) == 9 and not form.lr.disabled and not form.steps.disabled
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
