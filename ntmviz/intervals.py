"""95% intervals, the only statistics every reported number carries (evaluate.py, mechanisms.py,
the tasks' own tables).

    mean_interval(values)        a percentile bootstrap of the mean: failures are rare and large,
                                 so per-sequence counts are far from normal
    wilson_interval(k, n)        Wilson's score interval of a proportion k / n
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP = 2000  # resamples: the interval's ends move by well under a tenth of its width between runs


def mean_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of `values` [n]."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (math.nan, math.nan)
    if np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(BOOTSTRAP, values.size))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion successes / n."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
