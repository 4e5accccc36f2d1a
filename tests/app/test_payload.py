import base64
import json

import numpy as np
import pytest
import torch

import ntmviz
from ntmviz.app.payload import (
    MAX_TIME_PX, QUANTISE_ABOVE, STEP_BUDGET, VIEW_ARRAYS, EpisodePayload, blocks, decode_array,
    describe, encode_array, encode_quantised, episode_payload, pool_slots, pool_time,
    quantisation_error, slot_pixels, time_pixels,
)
from ntmviz.episode import Episode, HeadRecord, record


@pytest.fixture(scope="module")
def big_episode():
    """An untrained NTM at N=1024, M=64 (more slots than the canvases have pixels), T=12."""
    torch.manual_seed(5)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=9, output_size=8, memory_slots=1024, memory_width=64,
                                        controller_size=32))
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(12, 9, generator=g) > 0.5).float()
    return record(model, x, meta={"task": "random"})


def synthetic_episode(T: int, N: int, M: int, R: int = 1, W: int = 1, S: int = 3, seed: int = 0) -> Episode:
    """An episode with the shapes of a recorded one and random values (no model run): long ones
    are cheap to make. Weightings are sharp one-hot-ish rows that wander over the slots."""
    rng = np.random.default_rng(seed)

    def weights(H):
        w = rng.random((T, H, N), dtype=np.float32) * 1e-3
        w[np.arange(T)[:, None], np.arange(H)[None, :], rng.integers(0, N, (T, H))] = 1.0
        return w / w.sum(-1, keepdims=True)

    def heads(H, write):
        shift = rng.random((T, H, S), dtype=np.float32)
        return HeadRecord(
            key=rng.standard_normal((T, H, M), dtype=np.float32), beta=rng.random((T, H), dtype=np.float32) * 10,
            gate=rng.random((T, H), dtype=np.float32), shift=shift / shift.sum(-1, keepdims=True),
            gamma=1 + rng.random((T, H), dtype=np.float32), content=weights(H), gated=weights(H),
            shifted=weights(H), weights=weights(H),
            erase=rng.random((T, H, M), dtype=np.float32) if write else None,
            add=rng.standard_normal((T, H, M), dtype=np.float32) if write else None)

    return Episode(
        inputs=(rng.random((T, 2)) > 0.5).astype(np.float32), outputs=rng.random((T, 1), dtype=np.float32),
        targets=(rng.random((T, 1)) > 0.5).astype(np.float32), mask=np.ones(T, np.float32),
        memory=rng.standard_normal((T + 1, N, M), dtype=np.float32), reads=rng.standard_normal((T, R, M), dtype=np.float32),
        read=heads(R, False), write=heads(W, True), meta={"task": "ngrams"})


def chunk_arrays(payload, plan=None):
    """Every per-step array of a payload, its chunks joined again (asking `plan` for missing ones)."""
    steps = payload["steps"]
    out = {}
    for c in range(steps["count"]):
        chunk = steps["chunks"].get(str(c)) or plan.chunk(c)
        for k, spec in chunk.items():
            a = decode_array(spec)
            out.setdefault(k, []).append(a[:-1] if k == "memory" and c < steps["count"] - 1 else a)
    return {k: np.concatenate(v) for k, v in out.items()}


def test_arrays_round_trip_as_float32(episode):
    payload = episode_payload(episode)
    json.dumps(payload)  # plain JSON all the way down
    assert (payload["T"], payload["N"], payload["M"], payload["R"], payload["W"]) == (6, 7, 5, 1, 1)
    assert payload["S"] == episode.read.shift.shape[-1] and payload["P"] == 6 and payload["D"] == 7
    sent = {**{k: decode_array(v) for k, v in payload["arrays"].items()}, **chunk_arrays(payload)}
    for name, array in episode.arrays().items():
        assert sent[name].dtype == np.float32 and sent[name].shape == array.shape, name
        np.testing.assert_array_equal(sent[name], array)
    np.testing.assert_array_equal(sent["read.weights.time"], episode.read.weights)  # T <= time_px: not pooled
    assert payload["scales"]["memory"] == pytest.approx(float(np.abs(episode.memory).max()))
    assert payload["scales"]["memory.diff"] == pytest.approx(float(np.abs(np.diff(episode.memory, axis=0)).max()))


def test_each_view_gets_only_what_it_draws(episode):
    for view, names in VIEW_ARRAYS.items():
        payload = episode_payload(episode, [view])
        sent = set(payload["arrays"]) | set(payload["steps"]["names"])
        expected = set(names) & (set(episode.arrays()) | {"read.weights.time", "write.weights.time"})
        assert sent == expected, view
    assert "memory" not in episode_payload(episode, ["heads"])["steps"]["names"]


def test_no_memory_episode(lstm_episode):
    payload = episode_payload(lstm_episode)
    assert payload["has_memory"] is False and payload["N"] == 0
    assert set(payload["arrays"]) == {"inputs", "outputs", "targets"} and payload["steps"]["count"] == 0
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
    chunk = payload["steps"]["chunks"]["0"]
    for name, array in ep.arrays().items():
        spec = chunk.get(name) or payload["arrays"][name]
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
    assert chunk["memory"]["scale"] == pytest.approx(float(np.abs(ep.memory).max()))
    diff = decode_array(chunk["memory.diff"])
    change = pool_slots(np.diff(ep.memory.astype(np.float64), axis=0), rows, 1, signed=True)
    np.testing.assert_allclose(diff, change, rtol=0, atol=quantisation_error(chunk["memory.diff"]))


def test_large_payload_is_at_least_three_times_smaller(big_episode):
    payload = episode_payload(big_episode)
    old = sum(4 * a.size for a in big_episode.arrays().values())  # every value as float32
    assert len(json.dumps(payload)) * 3 <= old * 4 / 3  # against every value as float32 in base64


def test_pooling_keeps_a_sharp_focus_and_the_signed_extreme():
    w = np.zeros((1, 1, 1024))
    w[0, 0, 777] = 1.0
    pooled = pool_slots(w, 420, 2, signed=False)
    bounds = blocks(1024, 420)
    r = int(np.searchsorted(bounds, 777, side="right") - 1)
    assert pooled[0, 0, r] == 1.0 and pooled.sum() == 1.0 and bounds[r] <= 777 < bounds[r + 1]
    m = np.zeros((1, 1024, 1))
    m[0, 10, 0], m[0, 11, 0] = 0.3, -0.9
    assert pool_slots(m, 420, 1, signed=True)[0, np.searchsorted(bounds, 11, side="right") - 1, 0] == -0.9
    assert list(bounds[[0, -1]]) == [0, 1024] and np.all(np.diff(bounds) >= 1)


def test_pool_time_is_the_largest_weight_of_each_block_of_steps():
    rng = np.random.default_rng(1)
    a = rng.random((1003, 2, 5))
    pooled = pool_time(a, 520)
    b = blocks(1003, 520)
    assert pooled.shape == (520, 2, 5)
    for p in (0, 1, 257, 519):
        np.testing.assert_array_equal(pooled[p], a[b[p]:b[p + 1]].max(axis=0))
    assert pool_time(a[:300], 520) is not None and pool_time(a[:300], 520).shape == (300, 2, 5)


def test_quantised_indices_are_the_renderers_colours():
    a = np.array([-2.0, -1.0, 0.0, 0.5, 2.0])
    spec = encode_quantised(a, signed=True)
    idx = np.frombuffer(base64.b64decode(spec["b64"]), dtype=np.uint8)
    # JS: Math.round(127 + 127 * v / scale), scale = max |v| = 2; 127 is zero
    assert spec["scale"] == 2.0 and list(idx) == [0, 64, 127, 159, 254]
    unit = encode_quantised(np.array([0.0, 0.5, 1.0]), signed=False)
    assert unit["scale"] == 1.0
    np.testing.assert_allclose(decode_array(unit), [0.0, 128 / 255, 1.0], atol=1e-7)


def test_quantised_zero_is_zero():
    """An NTM's memory starts at 1e-6 (memory_init_value): it must read back as 0, not as half a
    palette step (0.004 of the scale), and the error stays within half a step everywhere."""
    values = np.array([-1.0, -1e-6, 0.0, 1e-6, 0.3, 1.0])
    spec = encode_quantised(values, signed=True)
    decoded = decode_array(spec)
    assert decoded[1] == decoded[2] == decoded[3] == 0.0
    assert np.abs(decoded - values).max() <= quantisation_error(spec) <= 1 / 254 * (1 + 1e-5)


def test_small_arrays_stay_exact(episode):
    assert episode.memory.size <= QUANTISE_ABOVE
    payload = episode_payload(episode)
    assert payload["D"] == episode.slots
    specs = [*payload["arrays"].values(), *payload["steps"]["chunks"]["0"].values()]
    assert all("dtype" not in spec for spec in specs)


@pytest.fixture(scope="module")
def long_episode():
    """The size of an n-grams episode at length 4999 (T=5000, N=128, M=20): ~15 MB as a file."""
    return synthetic_episode(5000, 128, 20)


def test_long_episode_payload_stays_small_and_chunks_rebuild_every_step(long_episode):
    ep = long_episode
    assert sum(a.nbytes for a in ep.arrays().values()) > 14e6
    sizes = {}
    for view in VIEW_ARRAYS:
        plan = EpisodePayload(ep, [view], STEP_BUDGET)
        payload = plan.initial(t=2500)
        sizes[view] = len(json.dumps(payload))
        steps = payload["steps"]
        if steps["names"]:
            assert steps["K"] < ep.steps and list(steps["chunks"]) == [str(2500 // steps["K"])]
            sent = chunk_arrays(payload, plan)
            for name in steps["names"]:
                spec = plan.chunk(0)[name]
                reference = np.diff(ep.memory.astype(np.float64), axis=0) if name == "memory.diff" \
                    else ep.arrays()[name]
                assert sent[name].shape == reference.shape, name
                np.testing.assert_allclose(sent[name], reference, rtol=0, atol=quantisation_error(spec) + 1e-6)
    # the first message of any view: at most a chunk of the step budget plus the small whole arrays
    assert max(sizes.values()) < STEP_BUDGET * 4 / 3 + 300_000, sizes
    assert sum(sizes.values()) < 2.5e6, sizes


def test_long_episode_time_overview_is_pooled_to_the_pixels_drawn(long_episode):
    ep = long_episode
    payload = episode_payload(ep, ["heads"])
    assert payload["P"] == time_pixels(5000) == MAX_TIME_PX
    w = decode_array(payload["arrays"]["write.weights.time"])
    assert w.shape == (MAX_TIME_PX, 1, 128)
    b = blocks(5000, MAX_TIME_PX)
    for p in (0, 100, MAX_TIME_PX - 1):
        np.testing.assert_allclose(w[p], ep.write.weights[b[p]:b[p + 1]].max(axis=0), atol=1 / 510 + 1e-6)


def test_chunk_out_of_range_and_step_budget_none(episode):
    plan = EpisodePayload(episode, ["memory"], step_budget=None)
    assert plan.K == episode.steps and plan.chunks == 1
    with pytest.raises(IndexError):
        plan.chunk(1)
    tiny = EpisodePayload(episode, ["memory"], step_budget=1)  # one step per chunk
    assert tiny.K == 1 and tiny.chunks == episode.steps
    last = tiny.chunk(episode.steps - 1)
    np.testing.assert_array_equal(decode_array(last["memory"]), episode.memory[-2:])
