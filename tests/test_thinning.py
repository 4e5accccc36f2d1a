"""The one thinning rule: first and newest kept, evenly spaced between, bounded."""

import pytest

from ntmviz.thinning import thin, thin_keys
from ntmviz.train import History


def test_short_lists_are_kept_whole():
    assert thin_keys([3, 5, 9], 4) == [0, 1, 2]


def test_keeps_first_newest_and_evenly_spaced_keys():
    keys = list(range(0, 1001, 10))  # 101 points, 0..1000
    keep = thin_keys(keys, 5)
    assert [keys[i] for i in keep] == [0, 250, 500, 750, 1000]


def test_uneven_logging_is_thinned_by_key_not_by_position():
    # dense at the end (a curve thinned before, then logged on): spacing follows the key
    keys = list(range(0, 1000, 100)) + list(range(1000, 1100))
    kept = [keys[i] for i in thin_keys(keys, 6)]
    assert kept[0] == 0 and kept[-1] == 1099
    assert kept[1:4] == [200, 400, 700]  # nearest to 219.8, 439.6, 659.4 (ties to the older)


def test_bad_limit_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        thin_keys([1, 2, 3], 1)


def test_thin_items_by_their_key():
    items = [{"step": s} for s in range(0, 100)]
    kept = thin(items, lambda x: x["step"], 3)
    assert [x["step"] for x in kept] == [0, 49, 99]  # 49.5 is a tie: the older one


def test_history_keeps_the_start_of_a_long_run_and_spans_it_evenly():
    h = History(limit=100)
    for i in range(20_000):
        h.add(i, 1.0 / (i + 1), 0.0)
    assert len(h.sequences) < 100
    assert h.sequences[0] == 0 and h.sequences[-1] >= 19_900  # the first point and a recent one
    gaps = [b - a for a, b in zip(h.sequences, h.sequences[1:])]
    ideal = 20_000 / len(h.sequences)
    assert max(gaps) < 2.5 * ideal  # no stretch of the run is left bare
    assert h.loss == [1.0 / (s + 1) for s in h.sequences]  # the fields stay aligned
