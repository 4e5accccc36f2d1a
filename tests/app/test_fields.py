"""Number fields: what is typed is read as typed, or refused with the field's label."""

import pytest

from ntmviz.app.fields import SEED_MAX, number_field, read_float, read_int, read_seed, smallest_valid
from ntmviz.errors import ConfigError


@pytest.mark.parametrize("typed, value", [("20", 20), (" 7 ", 7), ("1,000", 1000), ("+3", 3), ("-2", -2)])
def test_whole_numbers(typed, value):
    assert read_int(number_field("Length", typed)) == value


@pytest.mark.parametrize("typed, message", [
    ("", "Length: type a whole number."),
    ("12.5", "Length must be a whole number; \u201c12.5\u201d is not one."),
    ("1e3", "Length must be a whole number; \u201c1e3\u201d is not one."),
    ("ten", "Length must be a whole number; \u201cten\u201d is not one."),
    ("0", "Length must be at least 1; you typed 0."),
    ("5001", "Length must be at most 5,000; you typed 5,001."),
])
def test_what_is_not_a_whole_number_in_range_is_refused_by_name(typed, message):
    with pytest.raises(ConfigError) as info:
        read_int(number_field("Length", typed), minimum=1, maximum=5000)
    assert str(info.value) == message


def test_seeds_and_floats():
    assert read_seed("0") == 0 and read_seed(str(SEED_MAX)) == SEED_MAX
    with pytest.raises(ConfigError, match="Seed must be at least 0; you typed -3"):
        read_seed(number_field("Seed", "-3"))
    assert read_float(number_field("Learning rate", "3e-3"), above=0) == pytest.approx(0.003)
    for typed in ("nan", "inf", "", "0.1.2"):
        with pytest.raises(ConfigError, match="Learning rate must be a number"):
            read_float(number_field("Learning rate", typed), above=0)
    with pytest.raises(ConfigError, match="more than 0"):
        read_float(number_field("Learning rate", "-1"), above=0)


def test_a_field_shows_its_value_as_typed():
    assert number_field("Learning rate", 0.003).value == "0.003"
    assert number_field("Steps", 100000).value == "100000"


def test_smallest_valid():
    def at_least_three(n):
        if n < 3:
            raise ConfigError("too small")

    assert smallest_valid(at_least_three) == 3
    assert smallest_valid(at_least_three, stop=2) is None
