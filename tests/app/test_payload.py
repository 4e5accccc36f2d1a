import json

import numpy as np

from ntmviz.app.payload import (
    VIEW_ARRAYS, decode_array, describe, encode_array, episode_arrays, episode_payload,
)


def test_arrays_round_trip_as_float32(episode):
    payload = episode_payload(episode)
    json.dumps(payload)  # plain JSON all the way down
    assert (payload["T"], payload["N"], payload["M"], payload["R"], payload["W"]) == (6, 7, 5, 1, 1)
    assert payload["S"] == episode.read.shift.shape[-1]
    for name, array in episode_arrays(episode).items():
        spec = payload["arrays"][name]
        assert isinstance(spec["b64"], str)
        decoded = decode_array(spec)
        assert decoded.dtype == np.float32 and decoded.shape == array.shape
        np.testing.assert_array_equal(decoded, array)


def test_each_view_gets_only_what_it_draws(episode):
    for view, names in VIEW_ARRAYS.items():
        payload = episode_payload(episode, [view])
        assert set(payload["arrays"]) == set(names) & set(episode_arrays(episode))
    assert "memory" not in episode_payload(episode, ["heads"])["arrays"]


def test_no_memory_episode(lstm_episode):
    payload = episode_payload(lstm_episode)
    assert payload["has_memory"] is False and payload["N"] == 0
    assert set(payload["arrays"]) == {"inputs", "outputs", "targets"}
    assert "no memory" in describe(lstm_episode)


def test_encode_is_little_endian_float32():
    spec = encode_array(np.array([[1.5, -2.0]], dtype=np.float64))
    assert spec["shape"] == [1, 2]
    np.testing.assert_array_equal(decode_array(spec), [[1.5, -2.0]])


def test_empty():
    assert episode_payload(None) == {}
