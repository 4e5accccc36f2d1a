"""Tests for the episode format (version 3: the model's declaration in the file) and
Episode.from_arrays: any model that attends over a memory, with slot state, slot x slot
matrices, slots in a plane and weightings that need not sum to one; version 1 and 2 files still
loading, and one-line errors for arrays that do not fit.

Sizes are small and unequal (T=3 steps, H=2 heads, N=5 slots, M=4 width).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save as st_save

from ntmviz import NTM, Episode, EpisodeArrayError, FileFormatError, LSTMBaseline, LSTMConfig, NTMConfig, record
from ntmviz.episode import FORMAT, VERSION
from ntmviz.files import seal
from test_episode import assert_same_episode

T, H, N, M = 3, 2, 5, 4


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return (e / e.sum(axis, keepdims=True)).astype(np.float32)


def weights(seed, shape=(T, H, N)):
    return softmax(np.random.default_rng(seed).standard_normal(shape) * 3)


def v1_bytes(episode: Episode) -> bytes:
    """The file format version 1 wrote (before generic episodes): the same flat array names, a
    header with format, version "1" and meta only, sealed with checksums."""
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in episode.arrays().items()}
    return seal(st_save(arrays, metadata={"format": FORMAT, "version": "1", "meta": json.dumps(episode.meta)}))


@pytest.fixture
def ntm_episode() -> Episode:
    torch.manual_seed(0)
    model = NTM(NTMConfig(input_size=6, output_size=4, memory_slots=7, memory_width=5, read_heads=2,
                          write_heads=1, controller_size=11))
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(1))
    return record(model, x, torch.zeros(4, 4), meta={"task": "test"})


def v2_bytes(episode: Episode) -> bytes:
    """The file format version 2 wrote: flat array names, a header listing them and each kind of
    head's stages and params (no declaration), sealed with checksums."""
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in episode.arrays().items()}
    heads = {kind: {"stages": list(rec.stages), "params": list(rec.params)} for kind, rec in episode.head_records()}
    header = {"format": FORMAT, "version": "2", "meta": json.dumps(episode.meta),
              "contents": json.dumps(sorted(arrays)), "heads": json.dumps(heads)}
    if episode.slot_labels is not None:
        header["slot_labels"] = json.dumps(episode.slot_labels)
    return seal(st_save(arrays, metadata=header))


def test_record_writes_version_3_with_the_ntm_declaration(ntm_episode, tmp_path):
    assert VERSION == 3 and ntm_episode.meta["format_version"] == 3
    family = ntm_episode.family
    assert family.name == "ntm" and family.title == "Neural Turing Machine" and family.memory == "written"
    assert [(g.name, g.count) for g in family.groups] == [("read", 2), ("write", 1)]
    assert list(ntm_episode.read.stages) == ["content", "gated", "shifted"]
    assert list(ntm_episode.write.params) == ["key", "beta", "gate", "shift", "gamma", "erase", "add"]
    shift = family.group("write").param("shift")
    assert (shift.kind, shift.shape, shift.centred) == ("distribution", ("S",), True)
    assert "β" in family.group("read").stages[0].doc  # the stages carry what they mean
    # the NTM's attribute access still works on the generic record
    assert ntm_episode.read.key is ntm_episode.read.params["key"]
    assert ntm_episode.write.content is ntm_episode.write.stages["content"]
    with pytest.raises(AttributeError):
        ntm_episode.read.erase
    again = Episode.load(ntm_episode.save(tmp_path / "ep.safetensors"))
    assert_same_episode(ntm_episode, again)
    assert again.family == family and again.checksum == "verified"


def test_version_2_ntm_file_loads_with_the_ntms_meanings(ntm_episode):
    again = Episode.from_bytes(v2_bytes(ntm_episode), name="v2.safetensors")
    assert_same_episode(ntm_episode, again)
    family = again.family
    assert family.name == "ntm" and family.title == "Neural Turing Machine"
    assert [(g.name, g.count, g.stage_names) for g in family.groups] == [
        ("read", 2, ("content", "gated", "shifted", "weights")), ("write", 1, ("content", "gated", "shifted", "weights"))]
    shift = family.group("read").param("shift")
    assert (shift.kind, shift.centred) == ("distribution", True)
    assert family.group("write").param("erase").signed is False


def test_version_2_memory_network_file_loads():
    a = memnet_arrays()
    ep = Episode.from_arrays(**{**a, "meta": {**a["meta"], "scoring": "answer"}}, outputs=np.eye(T, 2, dtype=np.float32),
                             targets=np.eye(T, 2, dtype=np.float32))
    again = Episode.from_bytes(v2_bytes(ep))
    assert again.static_memory and again.family.memory == "read-only" and again.measure == "answer_errors"
    assert list(again.read.stages) == ["hop 1", "hop 2", "hop 3"] and again.slot_labels == ep.slot_labels


def test_version_1_ntm_file_loads(ntm_episode):
    again = Episode.from_bytes(v1_bytes(ntm_episode), name="old.safetensors")
    assert_same_episode(ntm_episode, again)
    assert again.checksum == "verified"
    np.testing.assert_array_equal(again.read.gated, ntm_episode.read.gated)


def test_version_1_lstm_file_loads():
    torch.manual_seed(0)
    model = LSTMBaseline(LSTMConfig(input_size=3, output_size=2, hidden_size=5, layers=1))
    ep = record(model, torch.rand(4, 3), torch.zeros(4, 2))
    again = Episode.from_bytes(v1_bytes(ep))
    assert_same_episode(ep, again)
    assert not again.has_memory


def test_version_1_file_missing_a_head_array_is_refused(ntm_episode):
    arrays = {k: v for k, v in ntm_episode.arrays().items() if k != "write.gamma"}
    data = st_save(arrays, metadata={"format": FORMAT, "version": "1", "meta": "{}"})
    with pytest.raises(FileFormatError, match="gamma"):
        Episode.from_bytes(data)


# ---- from_arrays --------------------------------------------------------------------------

def memnet_arrays():
    """What a memory network records: a static memory of N sentences, one read head, a hop per step."""
    hops = weights(3, (T, 1, N))
    return dict(memory=np.random.default_rng(4).standard_normal((N, M)).astype(np.float32),
                read_weights=hops, stages={f"hop {i + 1}": np.repeat(hops[i:i + 1], T, 0) for i in range(T)},
                slot_labels=[f"sentence {n}" for n in range(N)], meta={"task": "babi", "model": "memn2n"})


def test_from_arrays_memory_network_shape():
    a = memnet_arrays()
    ep = Episode.from_arrays(**a)
    assert ep.static_memory and ep.steps == T and ep.slots == N and ep.width == M
    assert ep.write is None and ep.inputs is None and ep.outputs is None and ep.reads is None
    assert list(ep.read.stages) == ["hop 1", "hop 2", "hop 3"] and ep.read.params == {}
    np.testing.assert_array_equal(ep.read.weights, a["read_weights"])
    np.testing.assert_array_equal(ep.memory_after(1), a["memory"])
    assert ep.memory_frames().shape == (T + 1, N, M)
    assert ep.slot_labels == a["slot_labels"] and ep.meta["task"] == "babi"
    ep.validate()


def test_from_arrays_declares_a_stage_with_negative_values_signed(tmp_path):
    """Energies before a softmax, given without a family: that stage is signed (drawn whole), the others not."""
    a = memnet_arrays()
    energies = np.random.default_rng(5).standard_normal((T, 1, N)).astype(np.float32)
    ep = Episode.from_arrays(**{**a, "stages": {"energies": energies, "hop 1": a["stages"]["hop 1"]}})
    (group,) = ep.family.groups
    assert [(s.name, s.signed) for s in group.stages] == [("energies", True), ("hop 1", False)]
    ep.save(tmp_path / "e.safetensors")
    back = Episode.load(tmp_path / "e.safetensors")
    assert [s.signed for s in back.family.groups[0].stages] == [True, False]
    np.testing.assert_array_equal(back.read.stages["energies"], energies)


def test_from_arrays_round_trips_through_a_file_keeping_stage_order(tmp_path):
    a = memnet_arrays()
    # names that sort the other way round: the file keeps the given order, not the sorted one
    a["stages"] = {"z first": weights(5), "a second": weights(6)}
    a["read_weights"] = weights(7)
    a["params"] = {"temperature": np.ones((T, H), np.float32), "query": np.zeros((T, H, 3), np.float32)}
    a["slot_labels"] = ["<b>bold</b>", "é ü", "", "x" * 40, "\"quoted\""]
    ep = Episode.from_arrays(**a, write_weights=weights(8, (T, 1, N)), inputs=np.eye(T, 2, dtype=np.float32))
    again = Episode.load(ep.save(tmp_path / "own.safetensors"))
    assert_same_episode(ep, again)
    assert list(again.read.stages) == ["z first", "a second"]
    assert again.static_memory and again.slot_labels == a["slot_labels"]


def test_from_arrays_takes_torch_tensors_and_changing_memory():
    mem = torch.randn(T + 1, N, M)
    w = torch.softmax(torch.randn(T, H, N, requires_grad=True), -1)  # still attached to a graph
    ep = Episode.from_arrays(memory=mem, read_weights=w, outputs=torch.rand(T, 2), targets=torch.zeros(T, 2))
    assert not ep.static_memory and ep.memory.dtype == np.float32
    np.testing.assert_allclose(ep.read.weights, w.detach().numpy())
    np.testing.assert_array_equal(ep.memory_before(2), mem[2].numpy())
    np.testing.assert_array_equal(ep.memory_after(2), mem[3].numpy())


def test_from_arrays_one_head_as_two_dimensions():
    w = weights(1, (T, N))
    ep = Episode.from_arrays(memory=np.zeros((N, M)), read_weights=w)
    assert ep.read.weights.shape == (T, 1, N)


BAD = [
    (dict(memory=np.zeros(N)), "memory", "[N, M]"),
    (dict(read_weights=np.full((T, H, N + 1), 1 / (N + 1))), "read_weights", f"[T, H, {N}]"),
    (dict(read_weights=np.full((T, H, N), 0.3)), "read_weights[0, 0]", "sum to 1"),
    (dict(read_weights=np.tile(np.array([1.5, -0.5, 0, 0, 0], np.float32), (T, H, 1))), "read_weights", "negative"),
    (dict(read_weights=np.full((T, H, N), np.nan)), "read_weights", "NaN"),
    (dict(memory=np.zeros((T, N, M))), "memory", f"[{T + 1}, {N}, M]"),
    (dict(write_weights=np.full((T + 1, 1, N), 1 / N)), "write_weights", f"[{T}, H, {N}]"),
    (dict(inputs=np.zeros((T + 1, 2))), "inputs", f"[{T}, width]"),
    (dict(outputs=np.zeros((T, 2)), targets=np.zeros((T, 3))), "targets", "(3, 2)"),
    (dict(stages={"hop": np.full((T, H, N - 1), 0.25)}), "stages['hop']", f"({T}, {H}, {N})"),
    (dict(params={"beta": np.zeros((T, H + 1))}), "params['beta']", f"[{T}, {H}]"),
    (dict(stages={"a.b": weights(0)}), "'a.b'", "without '.'"),
    (dict(stages={"weights": weights(0)}), "'weights'", "not one of"),
    (dict(stages={"x": weights(0)}, params={"x": np.zeros((T, H))}), "['x']", "both"),
    (dict(slot_labels=["a", "b"]), "slot_labels", f"expected {N}"),
    (dict(slot_labels="abcde"), "slot_labels", "list"),
    (dict(meta={"when": object()}), "meta", "JSON"),
    (dict(read_weights=[["no"]]), "read_weights", "not an array"),
    (dict(stages={"write": {"hop": weights(0)}}), "'write' heads", "without their weightings"),
]


@pytest.mark.parametrize("change, names, says", BAD)
def test_from_arrays_refuses_what_does_not_fit(change, names, says):
    args = dict(memory=np.zeros((N, M), np.float32), read_weights=weights(0), **{})
    args.update(change)
    with pytest.raises(EpisodeArrayError) as info:
        Episode.from_arrays(**args)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message
    assert names in message and says in message, message


def test_from_arrays_accepts_rows_summing_to_one_within_a_thousandth():
    w = weights(0)
    w[0, 0] *= 1.0009
    Episode.from_arrays(memory=np.zeros((N, M)), read_weights=w)


# ---- the state of a memory's slots, and weightings that need not sum to one ----------------

def dnc_like():
    """What a DNC's debug output gives: read weightings that mix modes and sum to less than 1, a
    gated write weighting, usage per slot [T, N], temporal links [T, N, N]."""
    rng = np.random.default_rng(11)
    read = weights(12) * np.array([0.31, 1.0])[None, :, None]  # head 0's rows sum to 0.31
    write = weights(13, (T, 1, N)) * 0.5
    usage = rng.uniform(0, 1, (T, N)).astype(np.float32)
    links = rng.uniform(0, 0.2, (T, N, N)).astype(np.float32)
    return dict(memory=rng.standard_normal((T + 1, N, M)).astype(np.float32), read_weights=read,
                write_weights=write, normalised=False, slot_state={"usage": usage},
                slot_matrices={"links": links})


def test_weightings_that_sum_to_less_than_one_are_refused_unless_said(tmp_path):
    a = dnc_like()
    with pytest.raises(EpisodeArrayError, match=r"sums to 0\.31.*normalised=False"):
        Episode.from_arrays(**{**a, "normalised": True})
    ep = Episode.from_arrays(**a, title="DNC (the dnc package)")
    assert [g.normalised for g in ep.family.groups] == [False, False]
    assert ep.family.title == "DNC (the dnc package)" and ep.family.memory == "written"
    np.testing.assert_allclose(ep.read.weights.sum(-1)[:, 0], 0.31, rtol=1e-5)
    again = Episode.load(ep.save(tmp_path / "dnc.safetensors"))
    assert_same_episode(ep, again)
    np.testing.assert_array_equal(again.slot_state["usage"], a["slot_state"]["usage"])
    np.testing.assert_array_equal(again.slot_matrices["links"], a["slot_matrices"]["links"])
    assert [f.name for f in again.family.slot_state] == ["usage"]
    assert [f.name for f in again.family.slot_matrices] == ["links"]
    assert again.arrays()["slot.usage"] is again.slot_state["usage"]


def test_weightings_summing_to_more_than_one_are_refused_even_unnormalised():
    a = dnc_like()
    a["write_weights"] = a["write_weights"] * 3
    with pytest.raises(EpisodeArrayError, match="at most 1"):
        Episode.from_arrays(**a)


def test_normalised_per_group():
    a = dnc_like()
    a["read_weights"] = weights(12)
    ep = Episode.from_arrays(**{**a, "normalised": {"read": True, "write": False}})
    assert [(g.name, g.normalised) for g in ep.family.groups] == [("read", True), ("write", False)]


def test_any_group_of_heads_and_slots_in_a_plane(tmp_path):
    pointer = weights(20, (T, 1, N))
    coords = np.random.default_rng(2).uniform(0, 1, (N, 2)).astype(np.float32)
    ep = Episode.from_arrays(memory=np.zeros((N, M)), heads={"pointer": pointer}, slot_coords=coords,
                             stages={"pointer": {"energies": weights(21, (T, 1, N))}})
    assert [g.name for g in ep.family.groups] == ["pointer"] and ep.read is None
    assert ep.family.slot_coords and ep.family.memory == "read-only"
    assert ep.head_list()[0][:3] == ("pointer", 0, "pointer 1")
    again = Episode.load(ep.save(tmp_path / "p.safetensors"))
    np.testing.assert_array_equal(again.slot_coords, coords)
    assert list(again.heads["pointer"].stages) == ["energies"]


@pytest.mark.parametrize("change, says", [
    (dict(slot_state={"usage": np.zeros((T + 1, N))}), f"[{T}, {N}]"),
    (dict(slot_state={"usage.x": np.zeros((T, N))}), "without '.'"),
    (dict(slot_matrices={"links": np.zeros((T, N, N + 1))}), f"[{T}, {N}, {N}]"),
    (dict(slot_coords=np.zeros((N, 3))), f"[{N}, 2]"),
    (dict(heads={"memory": weights(0)}), "not one of"),
    (dict(heads={"read": weights(0)}), "given twice"),
    (dict(normalised={"pointer": True}), "no weightings"),
    (dict(measure="bits_above_optimum", outputs=np.full((T, 1), 0.5), targets=np.ones((T, 1))), "optimum"),
    (dict(measure="accuracy"), "is not one of"),
])
def test_new_arrays_that_do_not_fit_are_refused(change, says):
    args = dict(memory=np.zeros((N, M), np.float32), read_weights=weights(0))
    args.update(change)
    with pytest.raises(EpisodeArrayError) as info:
        Episode.from_arrays(**args)
    assert says in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_bits_above_the_optimum_is_a_mean_over_scored_predictions():
    outputs = np.array([[0.9], [0.5], [0.2], [0.7]], np.float32)
    optimum = np.array([[0.8], [0.5], [0.5], [0.5]], np.float32)
    targets = np.array([[1], [1], [0], [1]], np.float32)
    mask = np.array([0, 1, 1, 1], np.float32)
    ep = Episode.from_arrays(memory=np.zeros((N, M)), read_weights=weights(0, (4, 1, N)), outputs=outputs,
                             targets=targets, optimum=optimum, mask=mask, measure="bits_above_optimum")
    per_step = -np.log2([0.9, 0.5, 0.8, 0.7]) + np.log2([0.8, 0.5, 0.5, 0.5])
    per_step[0] = 0  # not scored
    np.testing.assert_allclose(ep.step_scores(), per_step, rtol=1e-5)
    assert ep.score() == pytest.approx(per_step[1:].mean(), rel=1e-5)
    assert ep.error_name == "bits above the optimum per prediction"


def test_opening_step_is_the_middle_of_the_scored_steps():
    mask = np.array([0, 0, 1, 1, 1, 1], np.float32)
    ep = Episode.from_arrays(memory=np.zeros((N, M)), read_weights=weights(0, (6, 1, N)), mask=mask,
                             outputs=np.zeros((6, 1)), targets=np.zeros((6, 1)))
    assert ep.opening_step() == 4
    assert Episode.from_arrays(memory=np.zeros((N, M)), read_weights=weights(0, (6, 1, N))).opening_step() == 3


def test_a_family_that_writes_then_reads_says_so():
    ep = Episode.from_arrays(**dnc_like(), order="write, read")
    assert ep.family.order == "write, read"
    assert Episode.from_arrays(**dnc_like()).family.order == "read, write"
    with pytest.raises(EpisodeArrayError, match="order must be"):
        Episode.from_arrays(**dnc_like(), order="sideways")
