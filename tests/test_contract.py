"""The model contract: declarations round-trip as data, bad ones are refused, and the NTM's
step takes every field name and shape from its one declaration (heads.NTM)."""

from __future__ import annotations

import json

import pytest
import torch

from ntmviz import fused, heads, native, ops
from ntmviz.config import LSTMConfig, MemN2NConfig, NTMConfig
from ntmviz.contract import MEASURES, Family, HeadGroup, Param, SlotField, Stage
from ntmviz.errors import ConfigError
from ntmviz.models import FAMILIES, build_model, family


def dnc_declaration() -> Family:
    return Family(
        name="dnc", title="Differentiable neural computer",
        groups=(HeadGroup("read", "read_heads", (Stage("backward"), Stage("content"), Stage("forward")),
                          (Param("strength", range=(1.0, 20.0)), Param("modes", "distribution", ("3",))),
                          normalised=False, reads=True),
                HeadGroup("write", 1, (Stage("content"), Stage("allocation")),
                          (Param("erase", "vector", ("M",), signed=False),), normalised=False, writes=True)),
        slot_state=(SlotField("usage", range=(0.0, 1.0)), SlotField("precedence")),
        slot_matrices=(SlotField("links"),), measure="bit_errors")


@pytest.mark.parametrize("declaration", [*FAMILIES.values(), dnc_declaration()], ids=lambda f: f.name)
def test_declarations_round_trip_through_json(declaration):
    again = Family.from_dict(json.loads(json.dumps(declaration.to_dict())))
    assert again == declaration


def test_resolve_reads_head_counts_from_a_config():
    config = NTMConfig(input_size=3, output_size=2, read_heads=4, write_heads=2)
    resolved = family("ntm").resolve(config)
    assert not family("ntm").resolved and resolved.resolved
    assert [(g.name, g.count) for g in resolved.groups] == [("read", 4), ("write", 2)]
    assert [label for _, _, label in resolved.heads()][:5] == ["read 1", "read 2", "read 3", "read 4", "write 1"]
    with pytest.raises(ConfigError, match="not known yet"):
        family("ntm").heads()
    assert family("memn2n").resolve(MemN2NConfig(4, 3, 20)).heads() == [("read", 0, "read 1")]
    assert family("lstm").resolve(LSTMConfig(3, 2)).heads() == [] and not family("lstm").has_memory


@pytest.mark.parametrize("make, says", [
    (lambda: Family("x", "X", memory="somewhere"), "memory must be"),
    (lambda: Family("x", "X", measure="accuracy"), "measure must be"),
    (lambda: Family("x", "X", steps="hops"), "steps must be"),
    (lambda: Family("x", "X", groups=(HeadGroup("a.b", 1),)), "without '.'"),
    (lambda: Family("x", "X", groups=(HeadGroup("memory", 1),)), "not one of"),
    (lambda: Family("x", "X", groups=(HeadGroup("a", 1), HeadGroup("a", 2))), "declared twice"),
    (lambda: Family("x", "X", groups=(HeadGroup("a", 1, (Stage("s"),), (Param("s"),)),)), "twice"),
    (lambda: Family("x", "X", groups=(HeadGroup("a", 1, params=(Param("p", "colour"),)),)), "kind must be"),
    (lambda: Family("x", "X", memory="none", groups=(HeadGroup("a", 1),)), "no heads"),
    (lambda: Family("x", "X", groups=(HeadGroup("a", 1, reads=True), HeadGroup("b", 1, reads=True))), "at most one"),
    (lambda: Family.from_dict({"name": "x"}), "not a model declaration"),
    (lambda: Family.from_dict({"name": "x", "title": "X", "groups": [{"nme": "a"}]}), "not a model declaration"),
])
def test_bad_declarations_are_refused(make, says):
    with pytest.raises(ConfigError, match=says):
        make()


def test_every_measure_names_its_unit():
    assert set(MEASURES) == {"bit_errors", "answer_errors", "bits_above_optimum"}
    assert all(m.unit and m.doc and m.total in ("sum", "mean") for m in MEASURES.values())


# ---- the NTM's step: one field list --------------------------------------------------------------

def test_the_ntm_step_fields_come_from_its_declaration():
    params = tuple(p.name for g in heads.NTM.groups for p in g.params)
    assert heads.PARAMS == tuple(dict.fromkeys(params))  # every parameter once, in declaration order
    assert heads.STEP_FIELDS == ("weights", "reads", "memory") + heads.PARAMS + tuple(
        s.name for s in heads.NTM.group("read").stages)
    assert fused.MemoryStep._fields == heads.STEP_FIELDS
    assert heads.HeadParams._fields == heads.PARAMS


@pytest.mark.parametrize("R, W", [(1, 1), (2, 3)])
def test_raw_layout_and_step_shapes_follow_the_declaration(R, W):
    P, N, M, S = 2, 7, 5, 3
    H = R + W
    config = NTMConfig(input_size=4, output_size=3, memory_slots=N, memory_width=M, read_heads=R, write_heads=W,
                       controller_size=6)
    model = build_model(config)
    assert model.heads.linear.weight.shape[1] == sum(heads.head_sizes(H, W, M, S))
    raw = torch.randn(P, sum(heads.head_sizes(H, W, M, S)))
    memory, previous = torch.randn(P, N, M), torch.softmax(torch.randn(P, H, N), -1)
    for usable in (False, True):
        if usable and native.library() is None:
            pytest.fail("the compiled kernels did not build")
        step = ops.named_step(raw, memory, previous, S, R) if usable else \
            fused.MemoryStep(*fused.torch_memory_forward(raw, memory, previous, S, R)[0])
        for name, shape in zip(heads.STEP_FIELDS, heads.step_shapes(P, H, R, N, M, S)):
            assert tuple(getattr(step, name).shape) == shape, name
    activated = heads.activate(raw, H, W, M, S)
    for name, n, shape in heads.raw_layout(H, W, M, S):
        assert tuple(getattr(activated, name).shape) == (P, n, *shape)


def test_order_and_distribution_labels_round_trip_and_are_checked():
    family = Family("dnc", "DNC", groups=(HeadGroup("read", 2, params=(
        Param("modes", "distribution", ("3",), labels=("backward", "content", "forward")),)),), order="write, read")
    again = Family.from_dict(json.loads(json.dumps(family.to_dict())))
    assert again.order == "write, read" and again.group("read").param("modes").labels == ("backward", "content", "forward")
    assert Family("x", "X").order == "read, write"
    with pytest.raises(ConfigError, match="order must be"):
        Family("x", "X", order="whenever")


def test_a_signed_stage_round_trips_and_an_older_declaration_without_it_loads_unsigned():
    """`Stage.signed` (energies before a softmax) survives JSON; a declaration saved before the
    field existed (its stages {name, doc} only) loads with every stage unsigned, from a dict and
    from an episode file whose header holds such a declaration."""
    import numpy as np
    from safetensors.numpy import save as st_save

    from ntmviz.episode import Episode
    from ntmviz.files import seal

    declared = Family("attn", "Attention", memory="read-only", groups=(
        HeadGroup("attention", 1, (Stage("energy", "e_j", signed=True), Stage("kept", "w")), reads=True),))
    data = json.loads(json.dumps(declared.to_dict()))
    assert [s["signed"] for s in data["groups"][0]["stages"]] == [True, False]
    again = Family.from_dict(data)
    assert again == declared and [s.signed for s in again.group("attention").stages] == [True, False]
    # the older shape: no "signed" key on any stage
    for s in data["groups"][0]["stages"]:
        del s["signed"]
    old = Family.from_dict(data)
    assert [(s.name, s.doc, s.signed) for s in old.group("attention").stages] == [
        ("energy", "e_j", False), ("kept", "w", False)]
    with pytest.raises(ConfigError, match="signed must be true or false"):
        Family.from_dict({**declared.to_dict(), "groups": [{**declared.to_dict()["groups"][0],
                                                            "stages": [{"name": "energy", "signed": "yes"}]}]})
    # an episode file written before: its header's declaration has no "signed"
    T, N, M = 3, 4, 2
    rng = np.random.default_rng(0)
    energy = rng.standard_normal((T, 1, N)).astype(np.float32)
    w = np.exp(energy) / np.exp(energy).sum(-1, keepdims=True)
    ep = Episode.from_arrays(memory=rng.standard_normal((N, M)).astype(np.float32), heads={"attention": w},
                             stages={"attention": {"energy": energy, "kept": w}}, family=declared)
    assert ep.family.group("attention").stages[0].signed
    fresh = Episode.from_bytes(ep.to_bytes())
    assert fresh.family == declared
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in ep.arrays().items()}
    header = {"format": "ntmviz-episode", "version": "3", "meta": json.dumps(ep.meta),
              "contents": json.dumps(sorted(arrays)), "family": json.dumps(data)}
    loaded = Episode.from_bytes(seal(st_save(arrays, metadata=header)))
    assert loaded.family == old and not any(s.signed for s in loaded.family.group("attention").stages)
    np.testing.assert_array_equal(loaded.heads["attention"].stages["energy"], energy)  # negatives kept as saved
