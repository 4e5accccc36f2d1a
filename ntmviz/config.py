"""Model configurations as dataclasses; a checkpoint carries one, so it rebuilds its model.

`from_dict(to_dict(cfg)) == cfg` for every config, and both are plain JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

from .errors import ConfigError

CONTROLLERS = ("lstm", "feedforward")
MEMORY_INITS = ("constant", "learned", "random")


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class NTMConfig:
    """A Neural Turing Machine: controller, R read heads, W write heads, an N x M memory."""

    input_size: int
    output_size: int
    memory_slots: int = 128  # N
    memory_width: int = 20  # M
    read_heads: int = 1  # R
    write_heads: int = 1  # W
    controller: str = "lstm"  # "lstm" or "feedforward"
    controller_size: int = 100
    controller_layers: int = 1
    shift_range: int = 1  # shifts -shift_range .. +shift_range, so S = 2 * shift_range + 1
    memory_init: str = "constant"  # "constant", "learned" or "random"
    memory_init_value: float = 1e-6  # the constant, or the std of the random init

    kind = "ntm"

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "memory_slots", "memory_width", "read_heads",
                     "write_heads", "controller_size", "controller_layers"):
            _positive(name, getattr(self, name))
        if not isinstance(self.shift_range, int) or self.shift_range < 0:
            raise ConfigError(f"shift_range must be a non-negative integer, got {self.shift_range!r}")
        if self.shift_width > self.memory_slots:
            raise ConfigError(
                f"shift range -{self.shift_range}..+{self.shift_range} ({self.shift_width} shifts) "
                f"is wider than the memory's {self.memory_slots} slots")
        if self.controller not in CONTROLLERS:
            raise ConfigError(f"controller must be one of {CONTROLLERS}, got {self.controller!r}")
        if self.memory_init not in MEMORY_INITS:
            raise ConfigError(f"memory_init must be one of {MEMORY_INITS}, got {self.memory_init!r}")

    @property
    def shift_width(self) -> int:
        """S, the number of shift offsets."""
        return 2 * self.shift_range + 1

    @property
    def heads(self) -> int:
        """H = R + W: every head, read heads first."""
        return self.read_heads + self.write_heads


@dataclass(frozen=True)
class LSTMConfig:
    """The baseline: a stack of LSTM layers and a linear output."""

    input_size: int
    output_size: int
    hidden_size: int = 256
    layers: int = 3

    kind = "lstm"

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "hidden_size", "layers"):
            _positive(name, getattr(self, name))


@dataclass(frozen=True)
class MemN2NConfig:
    """An end-to-end memory network (Sukhbaatar et al. 2015) over stories of word ids: K hops
    over up to N sentence memories of d numbers, adjacent weight tying (memn2n.py)."""

    input_size: int  # words per sentence, I
    output_size: int  # answer words O: word ids 1..O
    vocab_size: int  # V, padding id 0 included
    memory_slots: int = 10  # N, sentences a story may have
    embedding_size: int = 20  # d
    hops: int = 3  # K

    kind = "memn2n"

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "vocab_size", "memory_slots", "embedding_size", "hops"):
            _positive(name, getattr(self, name))
        if self.output_size >= self.vocab_size:
            raise ConfigError(f"{self.output_size} answer words need a vocabulary of more than "
                              f"{self.output_size} words (id 0 is padding), got {self.vocab_size}")


ModelConfig = Union[NTMConfig, LSTMConfig, MemN2NConfig]
_KINDS = {"ntm": NTMConfig, "lstm": LSTMConfig, "memn2n": MemN2NConfig}


def to_dict(config: ModelConfig) -> dict[str, Any]:
    """A JSON-ready dict that names the model kind."""
    return {"kind": config.kind, **dataclasses.asdict(config)}


def from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from `to_dict`'s output; unknown kinds or fields raise ConfigError."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {sorted(_KINDS)}")
    cls = _KINDS[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {kind} config fields: {sorted(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"bad {kind} config: {exc}") from None
