import base64
import json

import numpy as np
import pytest
import torch

import ntmviz
from ntmviz.app.payload import (
    QUANTISE_ABOVE, VIEW_ARRAYS, decode_array, describe, encode_array, encode_quantised,
    episode_payload, pool_slots, quantisation_error, slot_blocks, slot_pixels,
)
from ntmviz.episode import record


@pytest.fixture(scope="module")
def big_episode():
    """An untrained NTM at N=1024, M=64 (more slots than the canvases have pixels), T=12."""
    torch.manual_seed(5)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=9, output_size=8, memory_slots=1024, memory_width=64,
                                        controller_size=32))
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(12, 9, generator=g) > 0.5).float()
    return record(model, x, meta={"task": "random"})


def test_arrays_round_trip_as_float32(episode):
    payload = episode_payload(episode)
    json.dumps(payload)  # plain JSON all the way down
    assert (payload["T"], payload["N"], payload["M"], payload["R"], payload["W"]) == (6, 7, 5, 1, 1)
    assert payload["S"] == episode.read.shift.shape[-1]
    for name, array in episode.arrays().items():
        spec = payload["arrays"][name]
        assert isinstance(spec["b64"], str)
        decoded = decode_array(spec)
        assert decoded.dtype == np.float32 and decoded.shape == array.shape
        np.testing.assert_array_equal(decoded, array)


def test_each_view_gets_only_what_it_draws(episode):
    for view, names in VIEW_ARRAYS.items():
        payload = episode_payload(episode, [view])
        assert set(payload["arrays"]) == set(names) & set(episode.arrays())
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


def test_large_episode_is_pooled_and_quantised_within_error(big_episode):
    ep = big_episode
    payload = episode_payload(ep)
    json.dumps(payload)
    rows = slot_pixels(1024)
    assert rows == 420 and payload["D"] == rows and payload["slots_px"] == rows and payload["N"] == 1024
    for name, array in ep.arrays().items():
        spec = payload["arrays"][name]
        decoded = decode_array(spec)
        if name == "memory" or name.split(".")[-1] in ("content", "gated", "shifted", "weights"):
            axis = 1 if name == "memory" else 2
            assert spec["dtype"] == "u1" and decoded.shape[axis] == rows
            reference = pool_slots(array, rows, axis, signed=name == "memory")
        else:  # the small arrays stay exact float32
            assert "dtype" not in spec
            reference = array
        assert decoded.shape == reference.shape
        np.testing.assert_allclose(decoded, reference, rtol=0, atol=quantisation_error(spec))
    # the memory's scale is the renderer's symmetric ±max; the change has its own
    assert payload["arrays"]["memory"]["scale"] == pytest.approx(float(np.abs(ep.memory).max()))
    diff = decode_array(payload["arrays"]["memory.diff"])
    change = pool_slots(np.diff(ep.memory.astype(np.float64), axis=0), rows, 1, signed=True)
    np.testing.assert_allclose(diff, change, rtol=0, atol=quantisation_error(payload["arrays"]["memory.diff"]))


def test_large_payload_is_at_least_three_times_smaller(big_episode):
    payload = episode_payload(big_episode)
    old = sum(4 * a.size for a in big_episode.arrays().values())  # every value as float32
    new = sum(len(spec["b64"]) * 3 // 4 for spec in payload["arrays"].values())
    assert new * 3 <= old, (new, old)
    assert len(json.dumps(payload)) * 3 <= old * 4 / 3  # and the JSON against the old base64


def test_pooling_keeps_a_sharp_focus_and_the_signed_extreme():
    w = np.zeros((1, 1, 1024))
    w[0, 0, 777] = 1.0
    pooled = pool_slots(w, 420, 2, signed=False)
    bounds = slot_blocks(1024, 420)
    r = int(np.searchsorted(bounds, 777, side="right") - 1)
    assert pooled[0, 0, r] == 1.0 and pooled.sum() == 1.0 and bounds[r] <= 777 < bounds[r + 1]
    m = np.zeros((1, 1024, 1))
    m[0, 10, 0], m[0, 11, 0] = 0.3, -0.9
    assert pool_slots(m, 420, 1, signed=True)[0, np.searchsorted(bounds, 11, side="right") - 1, 0] == -0.9
    assert list(bounds[[0, -1]]) == [0, 1024] and np.all(np.diff(bounds) >= 1)


def test_quantised_indices_are_the_renderers_colours():
    a = np.array([-2.0, -1.0, 0.0, 0.5, 2.0])
    spec = encode_quantised(a, signed=True)
    idx = np.frombuffer(base64.b64decode(spec["b64"]), dtype=np.uint8)
    # JS: Math.round(127.5 + 127.5 * v / scale), scale = max |v| = 2
    assert spec["scale"] == 2.0 and list(idx) == [0, 64, 128, 159, 255]
    unit = encode_quantised(np.array([0.0, 0.5, 1.0]), signed=False)
    assert unit["scale"] == 1.0
    np.testing.assert_allclose(decode_array(unit), [0.0, 128 / 255, 1.0], atol=1e-7)


def test_small_arrays_stay_exact(episode):
    assert episode.memory.size <= QUANTISE_ABOVE
    payload = episode_payload(episode)
    assert payload["D"] == episode.slots
    assert all("dtype" not in spec for spec in payload["arrays"].values())
