"""A stage declared signed (energies before a softmax) in the focus view, pixel by pixel in
Chromium: a centre line down the column, each slot's bar |v| / max|v| of half the column long,
to the left of the line for v < 0 and to its right for v > 0, in the head's colour; "±max" above
the column; the hover gives the value with its sign. The unsigned weights beside it are drawn as
before, from the column's left. The renderer decodes a signed row-scaled array as payload.py does."""

from __future__ import annotations

import math

import numpy as np

from _renderer import Renderer, as_json, head_colour
from ntmviz.app.payload import decode_array, encode_row_scaled, episode_payload
from ntmviz.contract import Family, HeadGroup, Stage
from ntmviz.episode import Episode

INK = (51, 51, 51)  # "#333": the centre line (and an unsigned column's baseline)
ENERGY = np.array([[0.3, 1.2, -0.1, 0.0, 0.6, -0.4, 0.9],
                   [-2.0, 0.5, 0.0, 1.0, -0.25, 0.75, -1.5],
                   [-0.5, -0.7, -0.2, -1.0, -0.3, -0.9, -0.6]], np.float32)  # T = 3, N = 7


RENDERER_VIEWPORT = (1000, 800)  # the renderer fixture's page (conftest.py)


def fmt(v: float) -> str:
    """data.js's fmt for the values here (3 decimals)."""
    return f"{v:.3f}"


def run(row, colour) -> int:
    return sum(tuple(px[:3]) == colour for px in row)


def paint_at(r: Renderer, t: int) -> None:
    before = r.page.evaluate("() => window.__handles.focus.view.frames")
    r.group_eval("(g.seek(arg, 'test'), g.invalidate())", t)
    r.page.wait_for_function("(n) => window.__handles.focus.view.frames > n", arg=before, timeout=30_000, polling=20)


def signed_episode() -> Episode:
    T, N, M = *ENERGY.shape, 3
    e = ENERGY[:, None, :]
    w = np.exp(e - e.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    family = Family("attn", "Attention", memory="read-only", groups=(HeadGroup(
        "attention", 1, (Stage("energy", "e_j before the softmax", signed=True),), normalised=False),))
    return Episode.from_arrays(memory=np.linspace(-1, 1, N * M, dtype=np.float32).reshape(N, M),
                               heads={"attention": w}, stages={"attention": {"energy": e}}, family=family)


def test_a_signed_stage_grows_both_ways_from_a_centre_line(renderer):
    ep = signed_episode()
    T, N = ENERGY.shape
    blue = head_colour(0)
    renderer.record_texts()
    r = renderer.mount(as_json(episode_payload(ep)), views=["focus"])
    stage = "focus-attention-1"
    g = r.panel("focus", stage)
    x, row_h = g["x0"], g["ph"] / N
    half = math.floor((g["colW"] - 4) / 2)
    c = x + 2 + half  # the centre line's pixel column
    for t in range(T):
        r.page.mouse.move(0, 0)  # no row marked by a hover
        r.texts(clear=True)
        paint_at(r, t)
        v = ENERGY[t].astype(np.float64)
        m = np.abs(v).max()
        printed = {round(p["x"]): p["text"] for p in r.texts(stage, "front") if p["y"] == 30}
        assert printed.get(round(x + 1)) == f"±{fmt(m)}", (t, printed)
        line = r.pixels("focus", stage, [(c + 0.5, g["y0"] + y + 0.5) for y in range(int(g["ph"]))])
        assert all(px == INK for px in line), t
        for n in range(N):
            y = g["y0"] + (n + 0.5) * row_h
            left = r.pixels("focus", stage, [(xi + 0.5, y) for xi in range(x + 2, c)])
            right = r.pixels("focus", stage, [(xi + 0.5, y) for xi in range(c + 1, c + 1 + half)])
            want = abs(v[n]) / m * half
            got_left, got_right = run(left, blue), run(right, blue)
            if v[n] < 0:  # ends on the line: the pixels next to it are filled
                assert abs(got_left - want) <= 1 and got_right == 0, (t, n, v[n], got_left, got_right, want)
                assert tuple(left[-1][:3]) == blue, (t, n)
            else:
                assert abs(got_right - want) <= 1 and got_left == 0, (t, n, v[n], got_left, got_right, want)
                if want >= 1:
                    assert tuple(right[0][:3]) == blue, (t, n)
        # the weights beside it: unsigned, from the column's left (x + 2), on their max
        wx = x + g["colW"] + g["gap"]
        wt = ep.heads["attention"].weights[t, 0].astype(np.float64)
        for n in range(N):
            row = r.pixels("focus", stage, [(wx + 2 + i + 0.5, g["y0"] + (n + 0.5) * row_h)
                                            for i in range(int(g["colW"]) - 2)])
            assert abs(run(row, blue) - wt[n] / wt.max() * (g["colW"] - 3)) <= 1, (t, n)
        # the hover says the value with its sign, and the column's value of largest magnitude (last: it marks the row)
        n = int(np.argmin(v))
        tip = r.hover("focus", stage, x + 10, g["y0"] + (n + 0.5) * row_h)
        at = int(np.argmax(np.abs(v)))
        assert f"energy {fmt(v[n])}" in tip and f"largest |value|: {fmt(v[at])} at slot {at}" in tip, tip


def test_the_renderer_decodes_a_signed_row_scaled_array_as_python_does(renderer):
    a = np.array([[[-4.0, 0.0, 2.0, 4.0, -1.0]], [[0.0] * 5], [[-0.01, 0.005, 0.0, 0.0025, -0.0075]]], np.float32)
    for signed in (True, False):
        spec = encode_row_scaled(a if signed else np.abs(a), signed=signed)
        got = renderer.page.evaluate("""async (spec) => {
          const d = await import('/data.js');
          return Array.from(d.decode(spec).data); }""", spec)
        np.testing.assert_allclose(np.array(got, np.float32).reshape(a.shape), decode_array(spec), rtol=1e-6, atol=1e-9)
