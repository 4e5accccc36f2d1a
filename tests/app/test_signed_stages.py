"""A stage declared signed (energies before a softmax, which may be < 0) is sent and drawn as it
is: the payload declares it and keeps its sign when it pools and quantises it, and the focus
figure draws it from a centre line, each bar |v| / max|v| of half the column long, to the left of
the line for v < 0 and to its right for v > 0, with "±max" above; unsigned stages are drawn as
before. Sizes are small and unequal (T, N, M differ), so a swapped axis fails."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ntmviz import Episode
from ntmviz.app.figures import figure
from ntmviz.app.payload import (
    EpisodePayload, decode_array, encode_row_scaled, episode_payload, pool_slots, quantisation_error, slot_pixels,
)
from ntmviz.contract import Family, HeadGroup, Stage

SVG = "{http://www.w3.org/2000/svg}"


def attention_family(signed: bool = True) -> Family:
    return Family("attn", "Attention", memory="read-only", groups=(HeadGroup(
        "attention", 1, (Stage("energy", "e_j before the softmax", signed=signed),), normalised=False),))


def attention_episode(energy: np.ndarray, signed: bool = True, M: int = 3) -> Episode:
    """energy [T, N] -> an episode of one attention head whose stage "energy" is `energy` and
    whose weights are its softmax; the memory static [N, M]."""
    T, N = energy.shape
    e = energy.astype(np.float32)[:, None, :]
    w = np.exp(e - e.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    memory = np.linspace(-1, 1, N * M, dtype=np.float32).reshape(N, M)
    return Episode.from_arrays(memory=memory, heads={"attention": w}, stages={"attention": {"energy": e}},
                               family=attention_family(signed))


def named(svg: str, tag: str, name: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter(SVG + tag) if e.get("data-name") == name]


def boxes(svg: str, name: str) -> list[tuple[float, float, float, float]]:
    return [tuple(float(r.get(k)) for k in ("x", "y", "width", "height")) for r in named(svg, "rect", name)]


def texts(svg: str) -> list[str]:
    return [e.text or "" for e in ET.fromstring(svg).iter(SVG + "text")]


ENERGY = np.array([[0.3, 1.2, -0.1, 0.0, 0.6, -0.4, 0.9],
                   [-2.0, 0.5, 0.0, 1.0, -0.25, 0.002, -1.5],
                   [-0.5, -0.7, -0.2, -1.0, -0.3, -0.9, -0.6]])  # T = 3, N = 7: mixed, mixed, all < 0


@pytest.mark.parametrize("t", range(3))
def test_a_signed_stage_is_drawn_from_a_centre_line_on_its_largest_magnitude(t):
    ep = attention_episode(ENERGY)
    svg = figure(ep, "focus", t).svg()
    v = ENERGY[t]
    m = np.abs(v).max()
    (line,) = named(svg, "line", "baseline-attention-1-energy")
    centre = float(line.get("x1"))
    assert float(line.get("x2")) == centre
    bars = boxes(svg, "bar-attention-1-energy")
    drawn = np.flatnonzero(np.abs(v) / m >= 0.002)  # 0 and 0.002 / 2 draw nothing (under MIN_BAR)
    assert len(bars) == len(drawn)
    # the value of largest magnitude fills its side: that length is half the column
    half = max(b[2] for b in bars)
    assert half > 20
    rows = slot_pixels(ep.slots) / ep.slots
    for (x, y, width, height), n in zip(bars, drawn):
        assert width == pytest.approx(abs(v[n]) / m * half, abs=1e-3), (n, v[n])
        if v[n] < 0:  # left of the centre line, ending on it
            assert x + width == pytest.approx(centre, abs=1e-6) and x < centre, (n, v[n])
        else:  # right of it, starting on it
            assert x == pytest.approx(centre, abs=1e-6), (n, v[n])
        assert y == pytest.approx(float(line.get("y1")) + 0.5 + n * rows + 1, abs=1e-3)  # slot n's row (1 px inset)
    assert f"±{m:.3f}" in texts(svg) and f"max {m:.3f}" not in texts(svg)
    # the line runs down the whole column, and both sides have room for a full bar inside it
    assert float(line.get("y2")) - float(line.get("y1")) == pytest.approx(slot_pixels(ep.slots) + 1)
    frame = next(r for r in ET.fromstring(svg).iter(SVG + "rect") if r.get("stroke") == "#dddddd")
    fx, fw = float(frame.get("x")), float(frame.get("width"))
    assert fx < centre - half and centre + half < fx + fw
    # the weights (unsigned) are still bars from the column's left on their max
    w = ep.heads["attention"].weights[t, 0].astype(np.float64)
    weights = boxes(svg, "bar-attention-1-weights")
    (base,) = named(svg, "line", "baseline-attention-1-weights")
    assert all(b[0] == pytest.approx(float(base.get("x1")) + 0.5) for b in weights)
    np.testing.assert_allclose([b[2] for b in weights], w[w / w.max() >= 0.002] / w.max() * max(b[2] for b in weights),
                               atol=1e-3)


def test_the_same_stage_unsigned_loses_its_negatives_as_before():
    """Declared unsigned (an episode saved before `signed`), negative values draw nothing: the
    reason a stage says it is signed."""
    svg = figure(attention_episode(ENERGY, signed=False), "focus", 1).svg()
    bars = boxes(svg, "bar-attention-1-energy")
    # slots 1, 3, 5 (0.5, 1.0, 0.002) from the left on the max 1.0; -2.0, -0.25, -1.5 and 0: nothing
    assert [b[1] for b in bars] == sorted(b[1] for b in bars) and len(bars) == 3
    np.testing.assert_allclose([b[2] for b in bars], np.array([0.5, 1.0, 0.002]) * bars[1][2], rtol=1e-3)
    assert "max 1.000" in texts(svg) and not any(t.startswith("±") for t in texts(svg))


def test_the_payload_declares_a_signed_stage_and_keeps_its_sign():
    ep = attention_episode(ENERGY)
    payload = episode_payload(ep)
    stages = payload["family"]["groups"][0]["stages"]
    assert stages == [{"name": "energy", "doc": "e_j before the softmax", "signed": True},
                      {"name": "weights", "doc": "the weighting the head used", "signed": False}]
    chunk = payload["steps"]["chunks"]["0"]
    np.testing.assert_array_equal(decode_array(chunk["attention.energy"]), ENERGY.astype(np.float32)[:, None])


def test_a_pooled_signed_stage_keeps_the_value_of_largest_magnitude_quantised_on_each_rows_own():
    """N = 437 slots pooled to 420 rows: a row covering a slot of -3 and one of 2 keeps -3 (an
    unsigned stage would keep 2); quantised per row with sign, it decodes within max|v| / 254."""
    T, N = 2, 437
    rng = np.random.default_rng(5)
    energy = rng.standard_normal((T, N))
    energy[0, :2] = [-3.0, 2.0]  # slots 0, 1: pooled into row 0 (437 slots over 420 rows)
    energy[1] *= 0.01  # a small step keeps its own scale
    ep = attention_episode(energy)
    payload = EpisodePayload(ep, views=("focus",))
    rows = payload.rows
    assert rows == slot_pixels(N) < N
    spec = payload.chunk(0)["attention.energy"]
    assert spec["signed"] is True and spec["dtype"] == "u1"
    want = pool_slots(energy.astype(np.float32)[:, None], rows, 2, True)
    got = decode_array(spec)
    assert got[0, 0, 0] == pytest.approx(-3.0, abs=1e-6)  # the row's largest |value| is exact
    np.testing.assert_allclose(decode_array(spec["rows"]), np.abs(want).max(-1), rtol=1e-6)
    for t in range(T):
        bound = np.abs(want[t]).max() / 254 * (1 + 1e-4)
        assert np.abs(got[t] - want[t]).max() <= bound
        assert np.all(np.sign(got[t][np.abs(want[t]) > 2 * bound]) == np.sign(want[t][np.abs(want[t]) > 2 * bound]))
    assert quantisation_error(spec) == pytest.approx(3.0 / 254, rel=1e-3)
    # the weights beside it stay unsigned: the palette form on 0 .. 1
    assert not payload.chunk(0)["attention.weights"]["signed"]


def test_row_scaled_signed_encoding_maps_zero_and_both_ends_exactly():
    a = np.array([[[-4.0, 0.0, 2.0, 4.0]], [[0.0, 0.0, 0.0, 0.0]], [[-1.0, -0.5, 0.0, 0.25]]])
    spec = encode_row_scaled(a, signed=True)
    idx = np.frombuffer(__import__("base64").b64decode(spec["b64"]), np.uint8).reshape(a.shape)
    assert idx[0, 0].tolist() == [0, 127, 191, 254] and idx[1, 0].tolist() == [127] * 4
    np.testing.assert_allclose(decode_array(spec), a, atol=np.abs(a).max(-1, keepdims=True).max() / 254)
    np.testing.assert_array_equal(decode_array(spec)[1], 0)
    # unsigned, as before: no "signed" key, negatives clipped to 0
    assert "signed" not in encode_row_scaled(np.abs(a))
