"""Number fields that keep exactly what the user typed, and read it back or say why not.

Bokeh's numeric inputs rewrite what is typed out of sight: below `start` the old value is
kept while the box shows the new one, "12.5" becomes "125" as the dot is dropped, and a
huge number reaches Python as a float. So the app's numbers are text fields, read here with
a message in the user's terms (the field's label and what they typed) for anything that is
not a whole number in range:

    length = number_field("Length", 20)
    n = read_int(length, minimum=1, maximum=5000)     # ConfigError("Length must be ...")
    seeds = read_seeds(seeds_field, limit=16)         # "0-7" -> [0, ..., 7]; "0,3,5"; "2"

The messages are plain text: they go to an alert as text, never as markup.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import panel as pn

from ..errors import ConfigError

SEED_MAX = 2**32 - 1  # seeds go into numpy and torch generators, and are mixed with the step
_WHOLE = re.compile(r"[+-]?\d+")


def number_field(label: str, value: Any, **params: Any) -> pn.widgets.TextInput:
    """A text box for a number, labelled `label`, showing `value`."""
    return pn.widgets.TextInput(label=label, value=_show(value), **params)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def set_number(widget: pn.widgets.TextInput, value: Any) -> None:
    """Show `value` in a number field."""
    widget.value = _show(value)


def _text(widget_or_text: Any) -> tuple[str, str]:
    """(label, typed text) of a field, or ("", text) for a bare string or number."""
    if isinstance(widget_or_text, pn.widgets.TextInput):
        return widget_or_text.label, widget_or_text.value or ""
    return "", "" if widget_or_text is None else str(widget_or_text)


def read_int(field: Any, *, minimum: int | None = None, maximum: int | None = None,
             label: str | None = None, why: str = "") -> int:
    """The whole number typed in `field` (a TextInput, or text), within minimum..maximum.

    Raises ConfigError naming the field and what was typed; `why` ends the range messages
    (e.g. " for associative recall")."""
    name, text = _text(field)
    name = label or name or "The number"
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    if not cleaned:
        raise ConfigError(f"{name}: type a whole number.")
    if not _WHOLE.fullmatch(cleaned):
        raise ConfigError(f"{name} must be a whole number; \u201c{text.strip()}\u201d is not one.")
    value = int(cleaned)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:,}{why}; you typed {value:,}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:,}{why}; you typed {value:,}.")
    return value


def read_float(field: Any, *, above: float | None = None, maximum: float | None = None,
               label: str | None = None) -> float:
    """The number typed in `field`, finite, greater than `above` and at most `maximum`."""
    name, text = _text(field)
    name = label or name or "The number"
    cleaned = text.strip().replace(",", "").replace("_", "")
    try:
        value = float(cleaned)
    except ValueError:
        value = math.nan
    if not cleaned or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number such as 0.001; \u201c{text.strip()}\u201d is not one.")
    if above is not None and value <= above:
        raise ConfigError(f"{name} must be more than {above:g}; you typed {text.strip()}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g}; you typed {text.strip()}.")
    return value


def read_seed(field: Any, label: str | None = None) -> int:
    """A seed: a whole number from 0 to SEED_MAX."""
    return read_int(field, minimum=0, maximum=SEED_MAX, label=label)


def read_seeds(field: Any, *, limit: int, label: str | None = None) -> list[int]:
    """The seeds typed in `field`: one (2), a range (0-7) or a list (0,3,5), each from 0 to
    SEED_MAX, at most `limit` of them (train.parse_seeds reads them; its message names the field)."""
    from ..train import parse_seeds

    name, text = _text(field)
    name = label or name or "Seeds"
    if not text.strip():
        raise ConfigError(f"{name}: type a seed (0), a range of seeds (0-7) or a list (0,3,5).")
    seeds = parse_seeds(text, limit=limit, what=name)
    if max(seeds) > SEED_MAX:
        raise ConfigError(f"{name}: a seed must be at most {SEED_MAX:,}; you typed {max(seeds):,}.")
    return seeds


def seeds_text(seeds: list[int]) -> str:
    """How a seed list is typed: "0", "0-7" for a run of consecutive seeds, else "0,3,5"."""
    seeds = [int(s) for s in seeds]
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def smallest_valid(make: Callable[[int], Any], start: int = 1, stop: int = 256) -> int | None:
    """The smallest n in start..stop for which make(n) raises no ConfigError (None if none).

    Used to name the smallest size a task accepts without naming its internal fields."""
    for n in range(start, stop + 1):
        try:
            make(n)
        except ConfigError:
            continue
        return n
    return None
