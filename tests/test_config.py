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
