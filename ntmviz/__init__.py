"""ntmviz: see how a Neural Turing Machine uses its memory.

    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=9, output_size=8))
    episode = ntmviz.record(model, inputs)      # [T, I] -> Episode; [B, T, I] -> list
    episode.memory, episode.read.weights, episode.write.weights, episode.reads
"""

from .config import LSTMConfig, NTMConfig
from .episode import Episode, HeadRecord, record
from .errors import ConfigError, EpisodeArrayError, FileFormatError, NtmvizError
from .models import NTM, LSTMBaseline, MemN2N, build_model, pick_device

__version__ = "0.1.0"

# The app needs Panel; import it only when asked, so the engine stays light.
_APP_NAMES = ("Explorer", "TrainingView")


def __getattr__(name: str):
    if name in _APP_NAMES:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'ntmviz' has no attribute {name!r}")


__all__ = [
    "NTM", "NTMConfig", "LSTMBaseline", "LSTMConfig", "Episode", "HeadRecord", "record",
    "build_model", "pick_device", "NtmvizError", "ConfigError", "FileFormatError", "EpisodeArrayError",
    *_APP_NAMES,
]
