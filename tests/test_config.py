"""Tests for ntmviz.config: validation messages and the dict round trip."""

from __future__ import annotations

import json

import pytest

from ntmviz import ConfigError, LSTMConfig, NTMConfig
from ntmviz.config import from_dict, to_dict


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_defaults_are_valid():
    c = NTMConfig(input_size=9, output_size=8)
    assert c.shift_width == 3 and c.heads == 2
    LSTMConfig(input_size=9, output_size=8)


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(memory_slots=0), ["memory_slots", "0"]),
        (dict(memory_slots=-3), ["memory_slots", "-3"]),
        (dict(memory_width=0), ["memory_width"]),
        (dict(read_heads=0), ["read_heads"]),
        (dict(write_heads=-1), ["write_heads"]),
        (dict(controller_size=0), ["controller_size"]),
        (dict(memory_slots=4, shift_range=2), ["shift", "4"]),
        (dict(memory_slots=1, shift_range=1), ["shift", "1"]),
        (dict(shift_range=-1), ["shift_range"]),
        (dict(controller="gru"), ["controller", "gru"]),
        (dict(memory_init="zeros"), ["memory_init", "zeros"]),
        (dict(memory_slots=7.5), ["memory_slots", "7.5"]),
        (dict(memory_slots=8.0), ["memory_slots"]),
        (dict(memory_width="5"), ["memory_width"]),
        (dict(input_size=True), ["input_size"]),
        (dict(shift_range=1.5), ["shift_range"]),
        (dict(controller_layers=0), ["controller_layers"]),
    ],
)
def test_invalid_ntm_configs_raise_config_error(changes, words):
    base = dict(input_size=3, output_size=2, memory_slots=7, memory_width=5)
    with pytest.raises(ConfigError) as info:
        NTMConfig(**{**base, **changes})
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_shift_range_equal_to_memory_is_allowed():
    assert NTMConfig(input_size=3, output_size=2, memory_slots=5, shift_range=2).shift_width == 5


@pytest.mark.parametrize(
    "changes, word",
    [(dict(hidden_size=0), "hidden_size"), (dict(layers=-1), "layers"),
     (dict(input_size=2.5), "input_size"), (dict(output_size=0), "output_size")],
)
def test_invalid_lstm_configs_raise_config_error(changes, word):
    with pytest.raises(ConfigError, match=word):
        LSTMConfig(**{**dict(input_size=3, output_size=2), **changes})


@pytest.mark.parametrize(
    "config",
    [
        NTMConfig(input_size=3, output_size=2),
        NTMConfig(input_size=6, output_size=4, memory_slots=7, memory_width=5, read_heads=2, write_heads=3,
                  controller="feedforward", controller_size=11, controller_layers=2, shift_range=2,
                  memory_init="learned", memory_init_value=0.5),
        LSTMConfig(input_size=3, output_size=2, hidden_size=13, layers=2),
    ],
)
def test_dict_round_trip(config):
    data = to_dict(config)
    assert data["kind"] == config.kind
    again = from_dict(json.loads(json.dumps(data)))  # plain JSON both ways
    assert again == config and type(again) is type(config)


def test_from_dict_does_not_modify_its_argument():
    data = to_dict(NTMConfig(input_size=3, output_size=2))
    copy = dict(data)
    from_dict(data)
    assert data == copy


@pytest.mark.parametrize("kind", ["transformer", None, 3])
def test_from_dict_unknown_kind(kind):
    data = {**to_dict(NTMConfig(input_size=3, output_size=2)), "kind": kind}
    if kind is None:
        del data["kind"]
    with pytest.raises(ConfigError, match="kind"):
        from_dict(data)


def test_from_dict_unknown_field():
    data = {**to_dict(NTMConfig(input_size=3, output_size=2)), "memory_size": 9}
    with pytest.raises(ConfigError, match="memory_size"):
        from_dict(data)


def test_from_dict_missing_required_field():
    data = to_dict(LSTMConfig(input_size=3, output_size=2))
    del data["input_size"]
    with pytest.raises(ConfigError, match="input_size"):
        from_dict(data)


def test_from_dict_invalid_value():
    data = {**to_dict(NTMConfig(input_size=3, output_size=2)), "memory_slots": -1}
    with pytest.raises(ConfigError, match="memory_slots"):
        from_dict(data)


# ---- one source of defaults: the CLI's options, sweeps' keys and the app's RunConfig are made from the fields ----

import dataclasses  # noqa: E402

from ntmviz.config import (MODEL_CONFIGS, OPTIMIZERS, MemN2NConfig, TrainConfig, model_config,  # noqa: E402
                           model_settings, setting_of, settings)


def _train_parser(build_parser=None):
    from ntmviz import cli

    parser = (build_parser or cli.build_parser)()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["train"], sub.choices["sweep"]


def test_every_model_setting_is_a_train_config_field_with_its_default_bounds_and_help():
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    chosen = shared = 0
    for kind, cls in MODEL_CONFIGS.items():
        for f in dataclasses.fields(cls):
            if f.metadata["derived"]:  # from the task (sizes, a memory network's slots)
                continue
            chosen += 1
            mine = fields[f.name]
            assert mine.default == f.default, f.name
            assert {k: v for k, v in mine.metadata.items() if k != "model"} == dict(f.metadata), f.name
            # a setting two kinds share (memory_slots: the NTM's and the DNC's) is owned by the first
            first = next(k for k, c in MODEL_CONFIGS.items() if f.name in {g.name for g in dataclasses.fields(c)})
            assert mine.metadata["model"] == first
            shared += first != kind
    names = {f.name for c in MODEL_CONFIGS.values() for f in dataclasses.fields(c) if not f.metadata["derived"]}
    assert chosen - shared == len(model_settings()) == len(names) and set(model_settings()) == names
    assert "memory_slots" in model_settings("ntm") and "memory_slots" not in model_settings("memn2n")


def test_the_cli_train_options_are_the_train_config_fields():
    from ntmviz.cli import _given

    train, _ = _train_parser()
    options = {a.dest: a for a in train._actions}
    for s in settings(TrainConfig):
        action = options[s.name]
        assert s.option in action.option_strings, s.name
        assert s.help in action.help.replace("%%", "%"), s.name
        if s.type is not dict and s.default is not None and s.type is not list:
            assert f"default {s.default}" in action.help, s.name
    # every option left out: TrainConfig's defaults, field by field
    assert TrainConfig(**_given(train.parse_args([]), TrainConfig)) == TrainConfig()
    # every option given reaches its field
    given = train.parse_args(["--memory-slots", "12", "--lr", "0.5", "--optimizer", "rmsprop", "--seeds", "2-4",
                              "--task-option", "max_length=4", "--hops", "2", "--validate-every", "0"])
    config = TrainConfig(**_given(given, TrainConfig))
    assert (config.memory_slots, config.lr, config.optimizer, config.seeds, config.task_options, config.hops,
            config.validation_period) == (12, 0.5, "rmsprop", [2, 3, 4], {"max_length": 4}, 2, 0)
    # the old flags keep their names and defaults
    for flag, value in [("--memory-slots", 128), ("--memory-width", 20), ("--controller-size", 100),
                        ("--batch-size", 32), ("--steps", 2000), ("--checkpoint-every", 500),
                        ("--validation-samples", 200), ("--clip", 10.0), ("--curriculum", 0),
                        ("--curriculum-threshold", 0.5), ("--hidden-size", 256), ("--layers", 3), ("--hops", 3),
                        ("--embedding-size", 20), ("--read-heads", 1), ("--write-heads", 1),
                        ("--controller-layers", 1), ("--optimizer", "adam"), ("--model", "ntm"), ("--task", "copy")]:
        name = flag[2:].replace("-", "_")
        assert flag in options[name].option_strings and getattr(TrainConfig(), name) == value, flag
    assert TrainConfig().learning_rate == 1e-3 and TrainConfig(optimizer="rmsprop").learning_rate == 1e-4
    assert TrainConfig().validation_period == 500  # --validate-every defaults to --checkpoint-every


def test_a_default_changed_in_the_config_reaches_the_cli_and_sweeps(monkeypatch):
    """Change one field (its default, its bounds) in one place: the CLI and sweeps follow."""
    from ntmviz import cli, sweep
    from ntmviz.cli import _given

    meta = {f.name: f.metadata for f in dataclasses.fields(TrainConfig)}
    Changed = dataclasses.make_dataclass("Changed", [
        ("memory_slots", int, dataclasses.field(default=64, metadata=meta["memory_slots"])),
        ("batch_size", int, dataclasses.field(default=8, metadata={**meta["batch_size"], "bounds": (8, None)})),
        ("steps", int, dataclasses.field(default=77, metadata=meta["steps"])),
    ], bases=(TrainConfig,))
    monkeypatch.setattr(cli, "TrainConfig", Changed)
    monkeypatch.setattr(sweep, "TrainConfig", Changed)
    train, sweep_parser = _train_parser()
    options = {a.dest: a for a in train._actions}
    assert "default 64" in options["memory_slots"].help and "default 8" in options["batch_size"].help
    config = cli.TrainConfig(**_given(train.parse_args([]), cli.TrainConfig))
    assert (config.memory_slots, config.batch_size, config.steps) == (64, 8, 77)
    assert sweep_parser.parse_args(["--out", "x"]).steps == 77
    assert sweep.keys()["batch_size"].bounds == (8, None)
    with pytest.raises(ConfigError, match="batch_size: 4 is below 8"):
        sweep.parse_value("batch_size", "4")
    assert sweep.parse_value("batch_size", "8") == 8


def test_sweep_keys_are_the_trainer_options_steps_and_the_ntm_and_lstm_settings():
    from ntmviz.sweep import MODEL_KEYS, TRAINER_KEYS, Sweep, keys, parse_value, sequence_models

    known = keys()
    trainer = [s.name for s in settings(TrainConfig) if s.role == "trainer"]
    model = list(model_settings(*sequence_models()))
    assert set(known) == {*trainer, "steps", *model, "heads"}
    assert list(TRAINER_KEYS) == trainer and list(MODEL_KEYS) == model
    for name, s in known.items():
        source = setting_of(TrainConfig, "read_heads" if name == "heads" else name)
        assert (s.default, s.bounds, s.inclusive_bounds, s.choices) == (
            source.default, source.bounds, source.inclusive_bounds, source.choices), name
    assert (Sweep("copy").steps, Sweep("copy").validation_samples, Sweep("copy").model) == (
        TrainConfig().steps, TrainConfig().validation_samples, TrainConfig().model)
    assert parse_value("optimizer", "rmsprop") == "rmsprop"
    with pytest.raises(ConfigError, match="optimizer: 'sgd' is not one of " + ", ".join(OPTIMIZERS)):
        parse_value("optimizer", "sgd")
    with pytest.raises(ConfigError, match="lr: 0.0 must be above 0"):
        parse_value("lr", "0")


def test_run_config_is_the_train_config_and_adds_only_what_a_live_run_needs():
    pytest.importorskip("panel")
    from ntmviz.app.live import QUICK, RunConfig

    assert issubclass(RunConfig, TrainConfig)
    for s in settings(TrainConfig):
        assert setting_of(RunConfig, s.name) == s, s.name
    base = RunConfig()
    for f in dataclasses.fields(TrainConfig):
        assert getattr(base, f.name) == getattr(TrainConfig(), f.name), f.name
    own = {f.name for f in dataclasses.fields(RunConfig)} - {f.name for f in dataclasses.fields(TrainConfig)}
    assert own == {"snapshot_every", "probe_seed", "max_snapshots", "snapshot_bytes", "metrics_limit",
                   "history_limit", "device", "threads"}
    quick = RunConfig.quick()  # the Train tab's small model: overrides, nothing else
    changed = {f.name for f in dataclasses.fields(RunConfig) if getattr(quick, f.name) != getattr(base, f.name)}
    assert changed == set(QUICK)
    with pytest.raises(ConfigError, match="snapshot_every must be a positive integer"):
        RunConfig(snapshot_every=0)


def test_the_trainer_takes_its_defaults_from_the_train_config():
    from ntmviz.tasks import get_task
    from ntmviz.train import Trainer

    task = get_task("copy", bits=3, max_length=3)
    model = ntmviz_ntm(task)
    trainer = Trainer(model, task)
    defaults = TrainConfig()
    assert (trainer.batch_size, trainer.lr, trainer.optimizer_name, trainer.momentum, trainer.clip,
            trainer.curriculum, trainer.curriculum_threshold) == tuple(defaults.trainer_options().values())
    assert Trainer(ntmviz_ntm(task), task, optimizer="rmsprop").lr == OPTIMIZERS["rmsprop"]
    with pytest.raises(ConfigError, match="unknown optimizer 'sgd'; expected adam or rmsprop"):
        Trainer(ntmviz_ntm(task), task, optimizer="sgd")
    with pytest.raises(ConfigError, match="batch_size must be a positive integer, got 0"):
        Trainer(ntmviz_ntm(task), task, batch_size=0)


def ntmviz_ntm(task):
    from ntmviz import NTM

    return NTM(NTMConfig.for_task(task, memory_slots=6, memory_width=3, controller_size=4))


@pytest.mark.parametrize("changes, words", [
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(lr=0.0), "lr must be a number above 0, got 0.0"),
    (dict(lr=float("nan")), "lr must be a number above 0"),
    (dict(optimizer="sgd"), "unknown optimizer 'sgd'; expected adam or rmsprop"),
    (dict(model="gru"), "unknown model 'gru'; expected ntm, lstm, memn2n, dnc, stack, queue, deque, stack_rnn, "),
    (dict(momentum=1.5), "momentum must be a number at least 0 and at most 1, got 1.5"),
    (dict(validate_every=-1), "validate_every must be a non-negative integer, got -1"),
    (dict(memory_slots=0), "memory_slots must be a positive integer, got 0"),
    (dict(seeds=[1, 1]), "seeds must be distinct non-negative integers"),
    (dict(seeds=[]), "seeds must be distinct non-negative integers"),
])
def test_train_config_refuses_bad_settings_in_one_line(changes, words):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**changes)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_model_config_builds_each_kind_from_flat_settings():
    from ntmviz.tasks import get_task

    task = get_task("copy", bits=3, max_length=3)
    flat = dataclasses.asdict(TrainConfig(memory_slots=9, hidden_size=7, hops=2))
    ntm = model_config("ntm", task, **flat)
    assert (ntm.input_size, ntm.output_size, ntm.memory_slots) == (task.input_size, task.output_size, 9)
    assert model_config("lstm", task, **flat) == LSTMConfig(task.input_size, task.output_size, hidden_size=7)
    with pytest.raises(ConfigError, match="a memory network reads stories"):
        model_config("memn2n", task, **flat)
    story = get_task("babi_single")
    mem = model_config("memn2n", story, **flat)
    assert isinstance(mem, MemN2NConfig) and mem.hops == 2 and mem.memory_slots == story.required_slots()
    with pytest.raises(ConfigError, match="unknown model 'gru'"):
        model_config("gru", task)
