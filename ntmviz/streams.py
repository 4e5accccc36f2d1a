"""Three disjoint streams of task data: training draws from one, choices are made on another,
results are reported from the third.

    train        batch `step` of training seed s          stream_seed("train", s, step)
    validation   when to stop, which seed or checkpoint   stream_seed("validation", s, i)
    test         the numbers in cards and the README      stream_seed("test", s, i)

Every batch is sampled from one integer seed. The seed's two lowest bits name the stream, so
no seed of one stream is a seed of another: by construction, training never draws a batch
from the evaluation streams' seeds, whatever the run's seed or length. The other bits hash
(stream, seed, index) with numpy's SeedSequence, so nearby seeds give unrelated batches.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

STREAMS = ("train", "validation", "test")


def stream_seed(stream: str, seed: int, index: int) -> int:
    """The sampling seed of item `index` (a training step, an evaluation batch) of `stream`
    under `seed`: a non-negative integer < 2**63 whose value mod 4 is the stream's number."""
    if stream not in STREAMS:
        raise ConfigError(f"unknown stream {stream!r}; expected one of {', '.join(STREAMS)}")
    for name, value in (("seed", seed), ("index", index)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    number = STREAMS.index(stream)
    mixed = int(np.random.SeedSequence([number, int(seed), int(index)]).generate_state(1, np.uint64)[0])
    return (mixed >> 2 << 2 | number) & (2**63 - 1)


def stream_of(seed: int) -> str:
    """Which stream a sampling seed belongs to."""
    return STREAMS[seed & 3]


def check_request(stream: str, samples: int) -> None:
    """An evaluation's stream (validation or test, never train) and sample count, or ConfigError."""
    if stream not in STREAMS or stream == "train":
        raise ConfigError(f"evaluation streams are validation and test, not {stream!r}")
    if not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples must be a positive integer, got {samples!r}")
