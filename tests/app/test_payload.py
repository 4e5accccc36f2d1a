import base64
import json

import numpy as np
import pytest
import torch

import ntmviz
from ntmviz.app.palette import HEAD_COLOURS, head_colour
from ntmviz.app.payload import (
    ALL_VIEWS, MAX_MATRIX_PX, MAX_TIME_PX, QUANTISE_ABOVE, STEP_BUDGET, EpisodePayload, blocks, decode_array,
    describe, encode_array, encode_quantised, encode_row_scaled, episode_payload, pool_slots, pool_time,
    quantisation_error, slot_pixels, time_pixels, view_arrays,
)
from ntmviz.contract import SlotField
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


NTM_STAGES = ("content", "gated", "shifted")  # the NTM's declared stages, before its final "weights"


def error_bound(spec) -> np.ndarray:
    """The largest |decoded - sent| of each value of an encoded array, broadcastable to its
    shape: 0 for float32, the palette's half step, or (row-scaled) its row's own peak / 510."""
    if "rows" in spec:
        return decode_array(spec["rows"]).astype(np.float64)[..., None] / 510 * (1 + 1e-4)
    return np.float64(quantisation_error(spec))


def chunk_arrays(payload, plan=None, bounds: bool = False):
    """Every per-step array of a payload, its chunks joined again (asking `plan` for missing ones);
    with `bounds`, also each value's error bound (error_bound), joined the same way."""
    steps = payload["steps"]
    out, err = {}, {}
    for c in range(steps["count"]):
        chunk = steps["chunks"].get(str(c)) or plan.chunk(c)
        for k, spec in chunk.items():
            a = decode_array(spec)
            e = np.broadcast_to(error_bound(spec), a.shape)
            cut = slice(None, -1) if k == "memory" and c < steps["count"] - 1 else slice(None)
            out.setdefault(k, []).append(a[cut])
            err.setdefault(k, []).append(e[cut])
    joined = {k: np.concatenate(v) for k, v in out.items()}
    return (joined, {k: np.concatenate(v) for k, v in err.items()}) if bounds else joined


def test_arrays_round_trip_as_float32(episode):
    payload = episode_payload(episode)
    json.dumps(payload)  # plain JSON all the way down
    assert (payload["T"], payload["N"], payload["M"], payload["I"], payload["O"]) == (6, 7, 5, 4, 3)
    assert payload["version"] == 3 and payload["P"] == 6 and payload["D"] == 7 and payload["DM"] == 7
    assert [(g["name"], g["count"]) for g in payload["family"]["groups"]] == [("read", 1), ("write", 1)]
    widths = {p["name"]: p["width"] for p in payload["family"]["groups"][1]["params"]}
    assert widths == {"key": 5, "beta": 1, "gate": 1, "shift": episode.write.shift.shape[-1], "gamma": 1,
                      "erase": 5, "add": 5}
    sent = {**{k: decode_array(v) for k, v in payload["arrays"].items()}, **chunk_arrays(payload)}
    assert set(sent) == set(episode.arrays()) | {"score", "read.weights.time", "write.weights.time"}
    for name, array in episode.arrays().items():
        assert sent[name].dtype == np.float32 and sent[name].shape == array.shape, name
        np.testing.assert_array_equal(sent[name], array)
    np.testing.assert_array_equal(sent["read.weights.time"], episode.read.weights)  # T <= time_px: not pooled
    np.testing.assert_array_equal(sent["score"], episode.step_scores())
    assert payload["scales"]["memory"] == pytest.approx(float(np.abs(episode.memory).max()))
    assert payload["scales"]["memory.diff"] == pytest.approx(float(np.abs(np.diff(episode.memory, axis=0)).max()))


def test_each_view_gets_only_what_it_draws(episode):
    both = ("read", "write")
    sent_for = {
        "player": set(),
        "memory": {"memory", "read.weights", "write.weights"},  # the change travels only when quantised
        "focus": {f"{g}.{f}" for g in both for f in (*NTM_STAGES, "weights", "beta", "gate", "shift", "gamma")},
        "heads": {f"{g}.weights{suffix}" for g in both for suffix in ("", ".time")},
        "slots": set(),  # an NTM declares no slot state, matrices or coordinates
        "sequence": {"inputs", "targets", "outputs", "mask", "score", "reads", "read.key", "write.key",
                     "write.erase", "write.add"},
    }
    assert set(sent_for) == set(ALL_VIEWS)
    for view, names in sent_for.items():
        payload = episode_payload(episode, [view])
        sent = set(payload["arrays"]) | set(payload["steps"]["names"])
        assert sent == names, view
        assert sent <= set(view_arrays(episode, view)), view
    assert view_arrays(episode, "memory") == ("memory", "memory.diff", "read.weights", "write.weights")
    assert view_arrays(episode, "slots") == () and view_arrays(episode, "player") == ()
    with pytest.raises(KeyError):
        view_arrays(episode, "training")


def test_view_arrays_follow_the_declaration(dnc_episode, pointer_episode, lstm_episode):
    """Each view asks for what the declaration holds: a DNC's slot state and links, a pointer
    network's points (with the weightings drawn around them), a stage named by the model."""
    assert view_arrays(dnc_episode, "slots") == ("slot.usage.time", "slot.usage", "matrix.links")
    assert view_arrays(dnc_episode, "focus") == ("read.weights", "write.weights")  # no stages, no params
    assert view_arrays(dnc_episode, "sequence") == ("inputs", "targets", "outputs", "mask", "score")
    assert view_arrays(pointer_episode, "slots") == ("coords", "pointer.weights")
    assert view_arrays(pointer_episode, "focus") == ("pointer.energies", "pointer.weights")
    assert view_arrays(pointer_episode, "heads") == ("pointer.weights.time", "pointer.weights")
    assert view_arrays(lstm_episode, "memory") == ("memory", "memory.diff")
    assert all(view_arrays(lstm_episode, v) == () for v in ("focus", "heads", "slots"))


def test_no_memory_episode(lstm_episode):
    payload = episode_payload(lstm_episode)
    assert payload["has_memory"] is False and payload["N"] == 0 and payload["D"] == 0
    assert set(payload["arrays"]) == {"inputs", "outputs", "targets", "score"} and payload["steps"]["count"] == 0
    assert payload["family"]["memory"] == "none" and payload["family"]["groups"] == [] and payload["heads"] == []
    np.testing.assert_array_equal(decode_array(payload["arrays"]["score"]), lstm_episode.step_scores())
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
    assert payload["steps"]["count"] == 1  # every step in the first message (episode_payload's default)
    for name, array in ep.arrays().items():
        spec = chunk.get(name) or payload["arrays"][name]
        decoded = decode_array(spec)
        field = name.partition(".")[2]
        if name == "memory" or field in (*NTM_STAGES, "weights"):
            axis = 1 if name == "memory" else 2
            assert spec["dtype"] == "u1" and decoded.shape[axis] == rows
            reference = pool_slots(array, rows, axis, signed=name == "memory")
        else:  # the small arrays stay exact float32
            assert "dtype" not in spec
            reference = array
        assert decoded.shape == reference.shape
        if field in NTM_STAGES:  # a focus stage: each head's weighting at each step on its own scale
            assert "rows" in spec and "scale" not in spec
            np.testing.assert_array_equal(decode_array(spec["rows"]), reference.max(-1).astype(np.float32))
        else:  # the memory, and the final weights the memory and head views share: one scale
            assert "rows" not in spec and spec.get("scale", 1.0) == (
                pytest.approx(float(np.abs(ep.memory).max())) if name == "memory" else 1.0)
        assert (np.abs(decoded - reference) <= error_bound(spec)).all(), name
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


def test_a_focus_stage_travels_on_its_own_scale():
    """Quantised focus stages are scaled per row (each head's weighting at each step): a content
    weighting that peaks at 0.01 keeps 255 levels below its peak (within 0.01 / 510, not 1 / 510),
    a flat one stays flat, an all-zero one reads 0."""
    rng = np.random.default_rng(3)
    a = np.zeros((2, 3, 500), np.float32)  # [T, H, D]
    a[0, 0] = rng.random(500) * 0.01
    a[0, 1] = 1 / 500  # flat
    a[0, 2, 17] = 1.0  # one-hot
    a[1, 1] = rng.random(500) ** 8  # peaked
    spec = encode_row_scaled(a)  # a[1, 0] and a[1, 2] are all zero
    json.dumps(spec)
    assert spec["dtype"] == "u1" and spec["shape"] == [2, 3, 500] and "scale" not in spec
    np.testing.assert_array_equal(decode_array(spec["rows"]), a.max(-1))
    idx = np.frombuffer(base64.b64decode(spec["b64"]), dtype=np.uint8).reshape(2, 3, 500)
    assert (idx[0, 1] == 255).all() and (idx[1, 0] == 0).all() and idx[0, 2].tolist() == [0] * 17 + [255] + [0] * 482
    decoded = decode_array(spec)
    assert decoded.dtype == np.float32 and decoded.shape == a.shape
    assert (np.abs(decoded - a) <= error_bound(spec)).all()
    assert np.abs(decoded[0, 0] - a[0, 0]).max() <= 0.01 / 510 * (1 + 1e-4)
    assert np.unique(idx[0, 0]).size > 200  # hundreds of levels under a peak of 0.01 (scale 1 would give 3)
    assert (decoded[1, 0] == 0).all() and (decoded[1, 2] == 0).all()
    assert quantisation_error(spec) == pytest.approx(1 / 510, rel=1e-3)  # the largest row's bound


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
    sizes, rest = {}, {}
    chunk_size = STEP_BUDGET * 4 / 3 + 4096  # one chunk's bytes in base64, and its names
    for view in ALL_VIEWS:
        plan = EpisodePayload(ep, [view], STEP_BUDGET)
        payload = plan.initial(t=2500)
        sizes[view] = len(json.dumps(payload))
        rest[view] = sizes[view] - len(json.dumps(payload["steps"]["chunks"]))
        steps = payload["steps"]
        assert all(len(json.dumps(plan.chunk(c))) <= chunk_size for c in (0, steps["count"] // 2, steps["count"] - 1)
                   if steps["count"]), view
        if steps["names"]:
            assert steps["K"] < ep.steps and list(steps["chunks"]) == [str(2500 // steps["K"])]
            sent, bound = chunk_arrays(payload, plan, bounds=True)
            for name in steps["names"]:
                reference = np.diff(ep.memory.astype(np.float64), axis=0) if name == "memory.diff" \
                    else ep.arrays()[name]
                assert sent[name].shape == reference.shape, name
                assert (np.abs(sent[name] - reference) <= bound[name] + 1e-6).all(), name
    assert set(sizes) == set(ALL_VIEWS)
    # the first message of any view: at most a chunk of the step budget plus the small whole arrays
    assert max(sizes.values()) < STEP_BUDGET * 4 / 3 + 300_000, sizes
    # what is not a chunk (the declaration, the [T, few] sequence, overviews pooled to the pixels drawn) stays small
    assert max(rest.values()) < 200_000 and sum(rest.values()) < 400_000, rest
    # so the whole page opens with one chunk per view that draws steps (memory, focus, heads, sequence)
    chunked = [v for v in ALL_VIEWS if view_arrays(ep, v) and v != "slots"]
    assert chunked == ["memory", "focus", "heads", "sequence"]
    assert sum(sizes.values()) < len(chunked) * chunk_size + 400_000, sizes


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


# ---- the declaration as sent: families, heads, their colours, slots, the measure ----------------------------------

def test_an_ntm_is_sent_as_its_declaration_and_heads(other_episode):
    ep = other_episode  # 2 read heads, 1 write head, N=11, M=3
    payload = episode_payload(ep)
    family = payload["family"]
    assert (family["name"], family["title"], family["memory"], family["steps"]) == (
        "ntm", "Neural Turing Machine", "written", "inputs")
    assert family["measure"]["name"] == "bit_errors" and family["measure"]["unit"] == "bit errors"
    assert family["measure"]["marks"] == "wrong" and family["measure"]["total"] == "sum"
    assert (family["slot_state"], family["slot_matrices"], family["slot_coords"]) == ([], [], False)
    read, write = family["groups"]
    assert (read["name"], read["count"], read["reads"], read["writes"]) == ("read", 2, True, False)
    assert (write["name"], write["count"], write["reads"], write["writes"]) == ("write", 1, False, True)
    for group in (read, write):
        assert [s["name"] for s in group["stages"]] == [*NTM_STAGES, "weights"] and group["normalised"] is True
        assert group["stages"][-1]["doc"] == "the weighting the head used" and all(s["doc"] for s in group["stages"])
    kinds = {p["name"]: (p["kind"], p["width"], p["signed"]) for p in write["params"]}
    assert kinds == {"key": ("vector", 3, True), "beta": ("number", 1, True), "gate": ("number", 1, True),
                     "shift": ("distribution", ep.write.shift.shape[-1], True), "gamma": ("number", 1, True),
                     "erase": ("vector", 3, False), "add": ("vector", 3, True)}
    assert [p["name"] for p in read["params"]] == ["key", "beta", "gate", "shift", "gamma"]
    params = {p["name"]: p for p in read["params"]}
    assert params["beta"]["range"] == [0.0, 50.0] and params["beta"]["log"] and params["beta"]["symbol"] == "β"
    assert params["shift"]["centred"] and params["gate"]["range"] == [0.0, 1.0] and params["key"]["range"] is None
    assert payload["heads"] == [
        {"group": "read", "h": 0, "label": "read 1", "colour": HEAD_COLOURS[0], "index": 0},
        {"group": "read", "h": 1, "label": "read 2", "colour": HEAD_COLOURS[1], "index": 1},
        {"group": "write", "h": 0, "label": "write 1", "colour": HEAD_COLOURS[2], "index": 2}]
    assert payload["reads"] is True and payload["opening"] == ep.opening_step() == 4  # no targets: mid-episode
    json.dumps(payload)


def test_a_memory_network_is_sent_as_its_declaration():
    """A shipped memory network's story: hops as passes over a static memory of labelled sentences,
    one read head with no stages or params, answers scored right or wrong."""
    from ntmviz.app.sources import load_source, record_episode

    ep = record_episode(load_source("babi_single-memn2n"), length=6, seed=4)
    payload = episode_payload(ep)
    family = payload["family"]
    assert (family["name"], family["title"], family["memory"], family["steps"]) == (
        "memn2n", "End-to-end memory network", "read-only", "passes")
    assert family["measure"]["name"] == "answer_errors" and family["measure"]["unit"] == "wrong answers"
    [read] = family["groups"]
    assert (read["name"], read["count"], read["params"], read["reads"]) == ("read", 1, [], False)
    assert [s["name"] for s in read["stages"]] == ["weights"]
    assert payload["heads"] == [{"group": "read", "h": 0, "label": "read 1", "colour": HEAD_COLOURS[0], "index": 0}]
    assert payload["static_memory"] is True and payload["slot_labels"] == ep.slot_labels and payload["reads"] is False
    assert payload["T"] == ep.steps and payload["N"] == len(ep.slot_labels) and payload["I"] == 0
    np.testing.assert_array_equal(decode_array(payload["arrays"]["memory"]), ep.memory)  # once, whole
    np.testing.assert_array_equal(decode_array(payload["arrays"]["score"]), ep.step_scores())
    assert payload["opening"] == ep.steps - 1  # only the last pass is scored: the answer
    assert payload["steps"]["names"] == ["read.weights"]
    np.testing.assert_array_equal(decode_array(payload["steps"]["chunks"]["0"]["read.weights"]), ep.read.weights)


def test_a_dnc_like_episode_sends_weightings_as_they_are_and_its_slot_state(dnc_episode):
    ep = dnc_episode  # T=4, N=6, M=3; read rows sum to 0.31 and 1, write rows to 0.5
    payload = episode_payload(ep)
    family = payload["family"]
    assert family["title"] == "DNC (the dnc package)" and family["memory"] == "written"
    assert [(g["name"], g["count"], g["normalised"]) for g in family["groups"]] == [
        ("read", 2, False), ("write", 1, False)]
    assert all([s["name"] for s in g["stages"]] == ["weights"] and g["params"] == [] for g in family["groups"])
    assert family["slot_state"] == [{"name": "usage", "doc": ""}]
    assert family["slot_matrices"] == [{"name": "links", "doc": ""}] and family["slot_coords"] is False
    assert [h["label"] for h in payload["heads"]] == ["read 1", "read 2", "write 1"]
    assert [h["colour"] for h in payload["heads"]] == list(HEAD_COLOURS[:3])
    sent = {**{k: decode_array(v) for k, v in payload["arrays"].items()}, **chunk_arrays(payload)}
    np.testing.assert_array_equal(sent["read.weights"], ep.read.weights)  # not renormalised
    np.testing.assert_allclose(sent["read.weights"].sum(-1)[:, 0], 0.31, rtol=1e-5)
    np.testing.assert_allclose(sent["write.weights"].sum(-1), 0.5, rtol=1e-5)
    usage, links = ep.slot_state["usage"], ep.slot_matrices["links"]
    np.testing.assert_array_equal(sent["slot.usage"], usage)
    np.testing.assert_array_equal(sent["slot.usage.time"], usage)  # T <= time_px: not pooled
    np.testing.assert_array_equal(sent["matrix.links"], links)
    # usage's scale: its values' range with 0 (none declared); the links': their largest |value|
    assert payload["scales"]["slot.usage"] == [0.0, pytest.approx(float(usage.max()))]
    assert payload["scales"]["matrix.links"] == pytest.approx(float(np.abs(links).max()))
    assert set(episode_payload(ep, ["slots"])["arrays"]) == {"slot.usage.time"}
    assert set(episode_payload(ep, ["slots"])["steps"]["names"]) == {"slot.usage", "matrix.links"}


def test_a_declared_slot_range_is_its_scale(dnc_episode):
    ep = dnc_episode
    ep.family = ep.family.with_changes(slot_state=(SlotField("usage", "how much each slot is in use", (0.0, 1.0)),))
    payload = episode_payload(ep, ["slots"])
    assert payload["scales"]["slot.usage"] == [0.0, 1.0]
    assert payload["family"]["slot_state"] == [{"name": "usage", "doc": "how much each slot is in use"}]


def test_a_pointer_like_episode_sends_its_points(pointer_episode):
    ep = pointer_episode  # T=5, N=8, M=2, one "pointer" head with an "energies" stage
    payload = episode_payload(ep)
    family = payload["family"]
    assert family["memory"] == "read-only" and family["slot_coords"] is True and family["title"] == "pointer network"
    [group] = family["groups"]
    assert (group["name"], group["count"]) == ("pointer", 1)
    assert [s["name"] for s in group["stages"]] == ["energies", "weights"]
    assert payload["heads"] == [{"group": "pointer", "h": 0, "label": "pointer 1", "colour": HEAD_COLOURS[0],
                                 "index": 0}]
    assert payload["reads"] is False and payload["static_memory"] is True
    slots = episode_payload(ep, ["slots"])
    assert set(slots["arrays"]) == {"coords"} and slots["steps"]["names"] == ["pointer.weights"]
    np.testing.assert_array_equal(decode_array(slots["arrays"]["coords"]), ep.slot_coords)
    np.testing.assert_array_equal(decode_array(slots["steps"]["chunks"]["0"]["pointer.weights"]),
                                  ep.heads["pointer"].weights)
    focus = chunk_arrays(episode_payload(ep, ["focus"]))
    np.testing.assert_array_equal(focus["pointer.energies"], ep.heads["pointer"].stages["energies"])


def test_a_large_slots_view_is_pooled_to_its_pixels_within_its_scales(dnc_arrays):
    """N=500 slots: slot state pooled to the D rows of a slot axis and quantised on its signed
    scale, the links pooled to MAX_MATRIX_PX rows and columns, the overview exact float32."""
    a = dnc_arrays(T=3, N=500, M=4)
    ep = Episode.from_arrays(**a)
    payload = episode_payload(ep, ["slots"])
    D = slot_pixels(500)
    assert payload["D"] == D == 420 and payload["DM"] == MAX_MATRIX_PX < D
    usage, links = a["slot_state"]["usage"], a["slot_matrices"]["links"]
    chunk = payload["steps"]["chunks"]["0"]
    spec = chunk["slot.usage"]
    assert spec["dtype"] == "u1" and spec["signed"] is True and spec["scale"] == pytest.approx(float(usage.max()))
    pooled = pool_slots(usage, D, 1, signed=True)
    assert decode_array(spec).shape == (3, D)
    np.testing.assert_allclose(decode_array(spec), pooled, rtol=0, atol=quantisation_error(spec))
    matrix = chunk["matrix.links"]
    reference = pool_slots(pool_slots(links, MAX_MATRIX_PX, 1, True), MAX_MATRIX_PX, 2, True)
    assert decode_array(matrix).shape == (3, MAX_MATRIX_PX, MAX_MATRIX_PX)
    assert matrix["scale"] == pytest.approx(float(links.max()))
    np.testing.assert_allclose(decode_array(matrix), reference, rtol=0, atol=quantisation_error(matrix))
    overview = payload["arrays"]["slot.usage.time"]
    assert "dtype" not in overview
    np.testing.assert_array_equal(decode_array(overview), pooled)


def test_score_is_the_measure_at_each_step():
    """"score" is Episode.step_scores(): bits above the optimum may be negative, unscored steps 0."""
    rng = np.random.default_rng(4)
    T, N, O = 5, 3, 2
    w = np.full((T, 1, N), 1 / N, np.float32)
    targets = (rng.random((T, O)) > 0.5).astype(np.float32)
    ep = Episode.from_arrays(memory=np.zeros((N, 4), np.float32), read_weights=w,
                             outputs=rng.uniform(0.05, 0.95, (T, O)).astype(np.float32), targets=targets,
                             optimum=rng.uniform(0.05, 0.95, (T, O)).astype(np.float32), mask=[0, 1, 1, 1, 0],
                             measure="bits_above_optimum")
    payload = episode_payload(ep, ["sequence"])
    score = decode_array(payload["arrays"]["score"])
    np.testing.assert_array_equal(score, ep.step_scores())
    assert score[0] == score[4] == 0 and (score[1:4] != 0).all()
    assert payload["family"]["measure"]["marks"] == "cost" and payload["family"]["measure"]["total"] == "mean"
    assert "optimum" not in payload["arrays"]  # the renderer draws the score, not the optimum


@pytest.mark.parametrize("name, heads", [("associative_recall-ntm", 8), ("priority_sort-ntm", 10)])
def test_many_heads_get_distinct_colours(name, heads):
    from ntmviz.app.sources import load_source, record_episode

    assert len(set(HEAD_COLOURS)) == 12
    ep = record_episode(load_source(name))
    sent = episode_payload(ep, ["player"])["heads"]
    per_group = heads // 2
    assert [h["label"] for h in sent] == [f"{g} {i}" for g in ("read", "write") for i in range(1, per_group + 1)]
    assert [h["colour"] for h in sent] == list(HEAD_COLOURS[:heads]) == [head_colour(i) for i in range(heads)]
    assert len({h["colour"] for h in sent}) == heads and [h["index"] for h in sent] == list(range(heads))


def test_the_thirteenth_head_takes_the_first_colour_again():
    w = np.full((2, 13, 4), 0.25, np.float32)
    ep = Episode.from_arrays(memory=np.zeros((4, 3), np.float32), heads={"hop": w})
    colours = [h["colour"] for h in episode_payload(ep, ["player"])["heads"]]
    assert len(set(colours[:12])) == 12 and colours[12] == colours[0] == HEAD_COLOURS[0]
