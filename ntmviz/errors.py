"""The errors ntmviz raises on bad input: each a ValueError with a one-line message."""


class NtmvizError(ValueError):
    """Base class: bad input to ntmviz (a config, a file, a request)."""


class ConfigError(NtmvizError):
    """A model, task or training configuration that cannot work."""


class FileFormatError(NtmvizError):
    """A file that is missing, truncated, corrupt, of another kind or of another version."""


class EpisodeArrayError(NtmvizError):
    """Arrays given to Episode.from_arrays that do not fit together (a shape, a weighting that is
    not a distribution, a slot count that does not match the memory's)."""
