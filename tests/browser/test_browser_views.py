"""What payload version 3 and the rewritten views draw, checked pixel by pixel in Chromium against
episodes with known values (the renderer's ES modules served on a loopback port, every other
request aborted):

- focus: each stage on its own scale (its largest weight at t fills the column, however small;
  that max printed above it; "0" for a weighting that is all zero), a baseline where the bars
  start; the NTM's numbers as bars on their declared ranges and its shift distribution; the
  columns of a DNC-like episode whose weightings do not sum to one;
- per-head show/hide: a head chip in the player hides the head in the memory strips, the focus
  and head-location panels and the vectors, tells Python (`hidden`), and shows it again;
- linked highlighting: the slot row under the pointer is marked in the focus and head-location
  panels and cleared when the pointer leaves;
- time zoom: the head locations and the sequence show only the window's steps, one column per
  step, also for a long episode whose window comes from per-step chunks fetched on demand;
- the slots view: slot state over time and at t on the STATE ramp (declared range, or [min, max]
  with 0), the slot x slot matrix at t, the slots in a plane with a disc per weight;
- ten heads (the shipped priority sort) in ten distinct colours in every view;
- n-grams' cost strip: a bar per step above (red) or below (blue) the optimum, as long as the
  step's score on the strip's scale.
"""

from __future__ import annotations

import numpy as np
import pytest

from _renderer import (
    DEEP_PURPLE, HEADS, Renderer, as_json, head_colour, hex_rgb, signed_colour, state_colour,
    unit_colour,
)
from ntmviz.app.payload import EpisodePayload, blocks, episode_payload
from ntmviz.contract import SlotField
from ntmviz.episode import Episode, HeadRecord

INK = (51, 51, 51)  # "#333": text and the focus columns' baselines
NEAR_BLACK = (34, 34, 34)  # the top of the greys (inputs, targets, outputs)
BAND = (255, 200, 0)  # the slot row under the pointer, drawn at 28 % over the front layer
BAR_TRACK = (238, 238, 238)  # "#eee": the track a number's bar and a distribution's bars sit on
STATE_BAR = (90, 42, 140)  # "#5a2a8c": a slot's value at t
COST_UP, COST_DOWN = (192, 57, 43), (33, 102, 172)  # "#c0392b" above the optimum, "#2166ac" below


def fmt(v: float) -> str:
    """data.js's fmt: 3 decimals (1 from 100), exponent below 1e-3 and from 1e4."""
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e4):
        mant, exp = f"{v:.2e}".split("e")
        return f"{mant}e{int(exp):+d}"
    return f"{v:.1f}" if a >= 100 else f"{v:.3f}"


def run(row: list[tuple], colour: tuple) -> int:
    """How many pixels of a row are exactly `colour` (rgb of rgb or rgba)."""
    return sum(tuple(px[:3]) == colour for px in row)


def near(px, colour, tol=4) -> bool:
    return all(abs(int(a) - b) <= tol for a, b in zip(px[:3], colour))


def banded(px) -> bool:
    """A front-layer pixel of the band across the slot row under the pointer (28 % opaque)."""
    return near(px, BAND, 6) and 55 <= px[3] <= 90


def paint_at(r: Renderer, t: int) -> None:
    """Paint step t again (every view), so the texts recorded from now on are step t's."""
    repaint(r, lambda: r.group_eval("(g.seek(arg, 'test'), g.invalidate())", t))


def repaint(r: Renderer, action, views: list[str] | None = None) -> None:
    """Do `action()` and wait until every mounted view (or those named) has painted again."""
    before = r.page.evaluate(
        "() => Object.fromEntries(Object.entries(window.__handles).map(([k, h]) => [k, h.view.frames]))")
    before = {k: n for k, n in before.items() if views is None or k in views}
    action()
    r.page.wait_for_function("(b) => Object.entries(b).every(([k, n]) => window.__handles[k].view.frames > n)",
                             arg=before, timeout=30_000, polling=20)


# ---- episodes with known values ------------------------------------------------------------------

def ntm_episode(T=3, N=10, M=4) -> Episode:
    """An NTM's episode (its stage and param names, so its declaration is the NTM's). The read
    head's content stage peaks at 0.031 (slot t + 2) over values of 0.002 .. 0.012, its gated
    stage is 0.9 / 0.1 on slots t, t + 1, its shifted stage flat (0.1 everywhere), its weights
    one-hot on slot t. The write head's content is all zero. Numbers: beta 3.21 / 20 / 0.5,
    gate 0.25 / 0.6 / 1, gamma 1 / 5.5 / 10; shift [0.1, 0.2, 0.7] rolled by t."""
    content = np.full((T, 1, N), 0.002, np.float32)
    gated = np.zeros((T, 1, N), np.float32)
    weights = np.zeros((T, 1, N), np.float32)
    shift = np.zeros((T, 1, 3), np.float32)
    for t in range(T):
        content[t, 0, (t + 2) % N] = 0.031
        content[t, 0, (t + 5) % N] = 0.012
        gated[t, 0, t % N], gated[t, 0, (t + 1) % N] = 0.9, 0.1
        weights[t, 0, t % N] = 1.0
        shift[t, 0] = np.roll([0.1, 0.2, 0.7], t)
    flat = np.full((T, 1, N), 0.1, np.float32)
    beta = np.array([[3.21], [20.0], [0.5]], np.float32)[:T]
    gate = np.array([[0.25], [0.6], [1.0]], np.float32)[:T]
    gamma = np.array([[1.0], [5.5], [10.0]], np.float32)[:T]

    def rec(content, write):
        return HeadRecord(weights=weights, content=content, gated=gated, shifted=flat,
                          key=np.linspace(-1, 1, T * M, dtype=np.float32).reshape(T, 1, M), beta=beta,
                          gate=gate, shift=shift, gamma=gamma,
                          erase=np.full((T, 1, M), 0.5, np.float32) if write else None,
                          add=np.ones((T, 1, M), np.float32) if write else None)

    memory = np.zeros((T + 1, N, M), np.float32)
    memory[:, :, 0] = np.arange(N) / N
    return Episode(inputs=np.zeros((T, 2), np.float32), outputs=np.zeros((T, 2), np.float32),
                   targets=np.zeros((T, 2), np.float32), memory=memory, reads=np.zeros((T, 1, M), np.float32),
                   read=rec(content, False), write=rec(np.zeros_like(content), True), meta={"task": "crafted"})


def crafted_two_heads(T=6, N=7, M=4) -> Episode:
    """Two heads (read 1: head 0, write 1: head 1) with one-hot weightings: write on slot t % N,
    read on slot 2 t % N; memory signed and changing; the NTM's params (vectors included)."""
    n = np.arange(N)[:, None] - (N - 1) / 2 - 0.25
    memory = np.stack([(-1.0) ** t * n * (np.arange(M) + 1) / (N * M) for t in range(T + 1)]).astype(np.float32)

    def one_hot(slots):
        w = np.zeros((T, 1, N), np.float32)
        w[np.arange(T), 0, slots] = 1.0
        return w

    def heads(w, write):
        shift = np.zeros((T, 1, 3), np.float32)
        shift[:, 0, 1] = 1.0
        gated = np.zeros((T, 1, N), np.float32)
        gated[:, 0, 0], gated[:, 0, 1] = 0.75, 0.25
        return HeadRecord(key=np.ones((T, 1, M), np.float32), beta=np.full((T, 1), 5.0, np.float32),
                          gate=np.full((T, 1), 0.5, np.float32), shift=shift, gamma=np.full((T, 1), 2.0, np.float32),
                          content=np.full((T, 1, N), 1.0 / N, np.float32), gated=gated, shifted=gated, weights=w,
                          erase=np.full((T, 1, M), 0.5, np.float32) if write else None,
                          add=np.ones((T, 1, M), np.float32) if write else None)

    targets = (np.arange(T * 2).reshape(T, 2) % 2).astype(np.float32)
    return Episode(inputs=np.zeros((T, 3), np.float32), outputs=1 - targets, targets=targets, memory=memory,
                   reads=np.zeros((T, 1, M), np.float32), read=heads(one_hot((2 * np.arange(T)) % N), False),
                   write=heads(one_hot(np.arange(T) % N), True), meta={"task": "crafted"})


# ---- focus ---------------------------------------------------------------------------------------

def column_x(g, j) -> float:
    return g["x0"] + j * (g["colW"] + g["gap"])


def check_columns(r: Renderer, stage: str, g, colour, columns: list[np.ndarray], t: int, N: int) -> None:
    """Every column j's bars: row n as long as columns[j][n] / its max at t of the column's room
    (colW - 3, from x + 2), a baseline at x + 1 down the whole column, and its max printed above
    it ("0.031": the column's max; "0" for a weighting that is all zero)."""
    room, row_h = g["colW"] - 3, g["ph"] / N
    printed = {round(x["x"]): x["text"] for x in r.texts(stage, "front") if x["y"] == 30}
    for j, w in enumerate(columns):
        x = column_x(g, j)
        top = float(w.max())
        assert printed.get(round(x + 1)) == (fmt(top) if top > 0 else "0"), (stage, t, j, printed)
        # the baseline: every pixel row of the column, at x + 1
        base = r.pixels("focus", stage, [(x + 1.5, g["y0"] + y + 0.5) for y in range(int(g["ph"]))])
        assert all(px == INK for px in base), (stage, t, j)
        for n in range(N):
            y = g["y0"] + (n + 0.5) * row_h
            row = r.pixels("focus", stage, [(x + 2 + i + 0.5, y) for i in range(int(g["colW"]) - 2)])
            want = w[n] / top * room if top > 0 else 0.0
            assert abs(run(row, colour) - want) <= 1, (stage, t, j, n, float(w[n]), run(row, colour), want)


def test_focus_draws_each_stage_on_its_own_scale_with_a_baseline_and_its_max(renderer):
    ep = ntm_episode()
    T, N = ep.steps, ep.slots
    renderer.record_texts()
    r = renderer.mount(as_json(episode_payload(ep)), views=["focus"])
    g = r.panel("focus", "focus-read-1")
    for t in range(T):
        r.texts(clear=True)
        paint_at(r, t)
        # the content stage peaks at 0.031: that slot's bar fills the column, 0.012 is 0.39 of it;
        # the flat shifted stage fills every row; the write head's all-zero content says "0"
        for index, (name, rec) in enumerate(ep.head_records()):
            columns = [rec.content[t, 0], rec.gated[t, 0], rec.shifted[t, 0], rec.weights[t, 0]]
            check_columns(r, f"focus-{name}-1", r.panel("focus", f"focus-{name}-1"), head_colour(index), columns, t, N)


def test_focus_draws_the_ntms_numbers_on_their_ranges_and_its_shift(renderer):
    ep = ntm_episode()
    renderer.record_texts()
    r = renderer.mount(as_json(episode_payload(ep)), views=["focus"])
    g = r.panel("focus", "focus-read-1")
    blue = head_colour(0)
    ranges = {"beta": (0.0, 50.0, True), "gate": (0.0, 1.0, False), "gamma": (1.0, 10.0, False)}
    for t in range(ep.steps):
        r.texts(clear=True)
        paint_at(r, t)
        texts = {(round(x["x"]), round(x["y"])): x["text"] for x in r.texts("focus-read-1", "front")}
        y = g["paramsY"]
        for (name, symbol), (lo, hi, log) in zip((("beta", "β"), ("gate", "g"), ("gamma", "γ")), ranges.values()):
            v = float(ep.read.params[name][t, 0])
            assert texts.get((round(g["x0"]), round(y))) == f"{symbol} {fmt(v)}", (t, name, texts)
            f = np.log1p(max(0.0, v - lo)) / np.log1p(hi - lo) if log else (v - lo) / (hi - lo)
            bar = r.pixels("focus", "focus-read-1", [(g["x0"] + 60 + i + 0.5, y + 6) for i in range(40)])
            assert abs(run(bar, blue) - 40 * f) <= 1, (t, name, run(bar, blue), 40 * f)
            assert run(bar, blue) + run(bar, BAR_TRACK) >= 39, (t, name)  # the rest of the range is its track
            y += 15
        # the shift: a bar per offset, 24 px at weight 1, labelled -1, 0, +1
        s = ep.read.shift[t, 0]
        sx, sw = g["distX"] + 26, 16
        for i, v in enumerate(s):
            x = sx + i * (sw + 2) + sw / 2
            col = r.pixels("focus", "focus-read-1", [(x, g["distY"] + k + 0.5) for k in range(24)])
            assert abs(run(col, blue) - 24 * v) <= 1, (t, i, run(col, blue), 24 * v)
            assert run(col, blue) + run(col, BAR_TRACK) >= 23  # (a bar's top may share its pixel with the track)
            assert texts.get((round(x), round(g["distY"] + 26))) == ["-1", "0", "+1"][i], (t, i, texts)
        assert texts.get((round(g["distX"]), round(g["distY"]))) == "s"


def test_focus_columns_of_a_dnc_like_episode(renderer):
    """Weightings that need not sum to one (normalised=False), any stages per group: each column
    on its own scale all the same, a number without a range as text alone, a distribution
    labelled 0 .. K-1."""
    T, N, M = 2, 8, 3
    rng = np.random.default_rng(3)
    read_w = np.zeros((T, 2, N), np.float32)
    read_w[:, 0, 1], read_w[:, 0, 4] = 0.2, 0.1  # sums to 0.3
    read_w[:, 1, 6] = 0.05
    write_w = np.zeros((T, 1, N), np.float32)
    write_w[0, 0, 3], write_w[1, 0, 5] = 0.3, 0.01  # a gated write: 0.3, then almost nothing
    backward = np.zeros((T, 2, N), np.float32)  # nothing written before: all zero at t = 0
    backward[1, :, 2] = 0.004
    content = rng.uniform(0.0, 0.02, (T, 2, N)).astype(np.float32)
    forward = rng.uniform(0.0, 1.0, (T, 2, N)).astype(np.float32)
    allocation = np.zeros((T, 1, N), np.float32)
    allocation[:, 0, 7] = 1.0
    modes = np.array([0.2, 0.5, 0.3], np.float32) * np.ones((T, 2, 1), np.float32)
    ep = Episode.from_arrays(
        memory=np.zeros((T + 1, N, M), np.float32), heads={"read": read_w, "write": write_w}, normalised=False,
        stages={"read": {"backward": backward, "content": content, "forward": forward},
                "write": {"content": content[:, :1], "allocation": allocation}},
        params={"read": {"strength": np.full((T, 2), 2.5, np.float32), "modes": modes},
                "write": {"strength": np.full((T, 1), 7.25, np.float32)}})
    payload = as_json(episode_payload(ep))
    assert [g["name"] for g in payload["family"]["groups"]] == ["read", "write"]
    assert not any(g["normalised"] for g in payload["family"]["groups"])
    renderer.record_texts()
    r = renderer.mount(payload, views=["focus"])
    # the stages' headers, in the declared order, then the weights
    for stage, names in (("focus-read-1", ["backward", "content", "forward", "weights"]),
                         ("focus-write-1", ["content", "allocation", "weights"])):
        g = r.panel("focus", stage)
        headers = [x for x in r.texts(stage, "back") if x["y"] == 17]
        assert len(headers) == len(names), headers
        for j, (x, name) in enumerate(zip(headers, names)):
            # the name, or as much of it as the column has room for (the tooltip has it whole)
            assert x["x"] == column_x(g, j) + 1 and x["width"] <= g["colW"] + g["gap"] - 2, x
            assert x["text"] == name or (x["text"].endswith("…") and name.startswith(x["text"][:-1])), x
            assert r.hover("focus", stage, column_x(g, j) + 10, 20).startswith(f"{name}: "), name
    for t in range(T):
        r.texts(clear=True)
        paint_at(r, t)
        for index, (group, h) in enumerate([("read", 0), ("read", 1), ("write", 0)]):
            stage = f"focus-{group}-{h + 1}"
            g = r.panel("focus", stage)
            rec = ep.heads[group]
            columns = [rec.stages[s][t, h] for s in rec.stages] + [rec.weights[t, h]]
            check_columns(r, stage, g, head_colour(index), columns, t, N)
            texts = {(round(x["x"]), round(x["y"])): x["text"] for x in r.texts(stage, "front")}
            strength = float(rec.params["strength"][t, h])
            assert texts.get((round(g["x0"]), round(g["paramsY"]))) == f"strength {fmt(strength)}"
            # no range declared: no bar, no track
            bar = r.pixels("focus", stage, [(g["x0"] + 60 + i + 0.5, g["paramsY"] + 6) for i in range(40)])
            assert run(bar, head_colour(index)) == 0 and run(bar, BAR_TRACK) == 0
            if group == "read":  # the modes: a distribution over 3, labelled 0, 1, 2
                labels = [texts.get((round(g["distX"] + 26 + i * 18 + 8), round(g["distY"] + 26))) for i in range(3)]
                assert labels == ["0", "1", "2"], texts


def test_a_distributions_declared_entry_names_label_its_bars(renderer):
    """A param declared with labels (a DNC's read modes: backward, content, forward) shows them under
    its bars, and its hover names each entry's value."""
    import dataclasses

    T, N, M = 2, 6, 3
    w = np.full((T, 1, N), 1 / N, np.float32)
    modes = np.array([0.2, 0.5, 0.3], np.float32) * np.ones((T, 1, 1), np.float32)
    ep = Episode.from_arrays(memory=np.zeros((N, M), np.float32), read_weights=w, params={"modes": modes})
    group = ep.family.group("read")
    named = dataclasses.replace(group.param("modes"), labels=("backward", "content", "forward"))
    ep.family = ep.family.with_changes(groups=(dataclasses.replace(group, params=(named,)),))
    payload = as_json(episode_payload(ep))
    assert payload["family"]["groups"][0]["params"][0]["labels"] == ["backward", "content", "forward"]
    renderer.record_texts()
    r = renderer.mount(payload, views=["focus"])
    r.texts(clear=True)
    paint_at(r, 1)
    g = r.panel("focus", "focus-read-1")
    lines = {round(x["y"]): x["text"] for x in r.texts("focus-read-1", "front") if round(x["x"]) == round(g["distX"])}
    assert [lines.get(round(g["distY"] + 15 * (i + 1))) for i in range(3)] == [
        "backward 0.200", "content 0.500", "forward 0.300"], lines
    tip = r.hover("focus", "focus-read-1", g["x0"] + 10, g["paramsY"] + 10)
    assert "backward: 0.200, content: 0.500, forward: 0.300" in tip, tip


# ---- per-head show / hide ------------------------------------------------------------------------

def test_a_head_chip_hides_the_head_everywhere_and_shows_it_again(renderer):
    ep = crafted_two_heads()
    T, N, M = ep.steps, ep.slots, ep.width
    renderer.record_texts()
    r = renderer.mount(as_json(episode_payload(ep)), views=["player", "memory", "focus", "heads", "sequence"])
    page = r.page
    page.evaluate("""() => { window.__reports = [];
        window.__handles.player.onReport((k, v) => window.__reports.push([k, v])); }""")

    def hidden_reports():  # what the group told Python about hidden heads (t is reported too)
        return [v for k, v in page.evaluate("() => window.__reports") if k == "hidden"]

    t = 3
    r.seek(t)
    g = r.geom("memory")
    orange, blue = head_colour(1), head_colour(0)
    # the chips: one per head in its colour, pressed while shown
    chips = page.evaluate("""() => Array.from(document.querySelectorAll('.ntmviz-chip'), (c) => [
        c.getAttribute('aria-label'), c.getAttribute('aria-pressed'),
        getComputedStyle(c.querySelector('i')).backgroundColor])""")
    assert chips == [["Hide read 1", "true", "rgb(%d, %d, %d)" % blue],
                     ["Hide write 1", "true", "rgb(%d, %d, %d)" % orange]]

    def strip(i):  # head i's strip left of the matrix: its weighting at t, a pixel per slot
        x = g["stripX"] + i * g["strip"] + 1
        return r.front("memory", "memory", [(x, g["y0"] + (n + 0.5) * g["mh"] / N) for n in range(N)])

    def arrow(i, slot):  # head i's mark right of the matrix, on its most weighted slot
        x = g["arrowX"] + i * g["strip"] + 4
        return r.front("memory", "memory", [(x, g["y0"] + (slot + 0.5) * g["mh"] / N)])[0]

    def vector_rows():
        r.texts(clear=True)
        paint_at(r, t)
        return [x["text"] for x in r.texts("vectors", "front") if x["text"].startswith(("read 1", "write 1"))]

    shown = [unit_colour(ep.write.weights[t, 0, n], orange) for n in range(N)]
    assert [px[:3] for px in strip(1)] == shown and [px[:3] for px in strip(0)] == [
        unit_colour(ep.read.weights[t, 0, n], blue) for n in range(N)]
    assert arrow(1, t % N)[:3] == orange
    assert vector_rows() == ["read 1 key", "read 1 read", "write 1 key", "write 1 erase", "write 1 add"]
    vg = page.evaluate("() => { const v = window.__handles.sequence.view; return {x0: v.vx0, row: v.vrow}; }")
    write_key = r.front("sequence", "vectors", [(vg["x0"] + 2, 24 + 2 * vg["row"] + 2)])[0]
    assert write_key[:3] == signed_colour(1.0, 1.0)  # write 1's key (all ones) on its own scale, third row

    repaint(r, lambda: page.get_by_role("button", name="Hide write 1").click())
    assert hidden_reports() == [[1]]
    assert r.group_eval("[...g.hidden]") == [1]
    assert page.get_by_role("button", name="Show write 1").get_attribute("aria-pressed") == "false"
    assert page.get_by_role("button", name="Show all heads").is_visible()
    # memory: no strip, no mark for the hidden head; the other head's untouched
    assert all(px[3] == 0 for px in strip(1)) and arrow(1, t % N)[3] == 0
    assert [px[:3] for px in strip(0)] == [unit_colour(ep.read.weights[t, 0, n], blue) for n in range(N)]
    # its focus and head-location panels are not shown; the other head's are
    assert not r.shown("focus", "focus-write-1") and not r.shown("heads", "heads-write-1")
    assert r.shown("focus", "focus-read-1") and r.shown("heads", "heads-read-1")
    # its vectors are left out (the rows close up), the read head's stay
    assert vector_rows() == ["read 1 key", "read 1 read"]
    assert r.front("sequence", "vectors", [(vg["x0"] + 2, 24 + 2 * vg["row"] + 2)])[0][3] == 0

    repaint(r, lambda: page.get_by_role("button", name="Show write 1").click())
    assert hidden_reports() == [[1], []]
    assert [px[:3] for px in strip(1)] == shown and arrow(1, t % N)[:3] == orange
    assert r.shown("focus", "focus-write-1") and r.shown("heads", "heads-write-1")
    assert vector_rows() == ["read 1 key", "read 1 read", "write 1 key", "write 1 erase", "write 1 add"]
    assert not page.get_by_role("button", name="Show all heads").is_visible()

    # Python hides a head (the component's `hidden`): every view follows, nothing is reported back
    repaint(r, lambda: page.evaluate("() => window.__handles.memory.setOption('hidden', [0])"))
    assert all(px[3] == 0 for px in strip(0)) and [px[:3] for px in strip(1)] == shown
    assert not r.shown("focus", "focus-read-1") and not r.shown("heads", "heads-read-1")
    assert page.get_by_role("button", name="Show read 1").get_attribute("aria-pressed") == "false"
    assert hidden_reports() == [[1], []]


# ---- linked highlighting -------------------------------------------------------------------------

def test_hovering_a_slot_marks_its_row_in_the_focus_and_head_locations(renderer):
    ep = crafted_two_heads()
    N = ep.slots
    r = renderer.mount(as_json(episode_payload(ep)), views=["memory", "focus", "heads"],
                       options={"heads": {"zoom": False}})
    r.seek(2)
    gm, gf, gh = r.geom("memory"), r.panel("focus", "focus-read-1"), r.geom("heads")
    T = ep.steps

    def focus_rows():  # the "gated" column's inside where no bar is drawn (slots 2 ..), one point per slot
        x = column_x(gf, 1) + gf["colW"] - 4
        return r.front("focus", "focus-read-1", [(x, gf["y0"] + (n + 0.5) * gf["ph"] / N) for n in range(N)])

    def track_rows(stage):  # step 0's column of a head's panel (t is 2), one point per slot
        x = gh["x0"] + 0.5 * gh["pw"] / T
        return r.front("heads", stage, [(x, gh["y0"] + (n + 0.5) * gh["ph"] / N) for n in range(N)])

    assert not any(banded(px) for px in focus_rows() + track_rows("heads-read-1"))
    for row in (4, 6):
        repaint(r, lambda: r.hover("memory", "memory", gm["x0"] + gm["mw"] / 2, gm["y0"] + (row + 0.5) * gm["mh"] / N))
        assert r.group_eval("g.hoverRow") == row
        marked = [n for n, px in enumerate(focus_rows()) if banded(px)]
        assert marked == [row], marked
        for stage in ("heads-read-1", "heads-write-1"):
            assert [n for n, px in enumerate(track_rows(stage)) if banded(px)] == [row], stage
    # the pointer leaves: the marks go
    box = r.stage_box("memory", "memory")
    repaint(r, lambda: r.page.mouse.move(box["x"] + box["width"] + 300, box["y"] + box["height"] + 300))
    assert r.group_eval("g.hoverRow") is None
    assert not any(banded(px) for px in focus_rows() + track_rows("heads-read-1") + track_rows("heads-write-1"))
    # and the other way: a row hovered in the head locations is marked in the focus
    repaint(r, lambda: r.hover("heads", "heads-write-1", gh["x0"] + 4.5 * gh["pw"] / T, gh["y0"] + 5.5 * gh["ph"] / N))
    assert [n for n, px in enumerate(focus_rows()) if banded(px)] == [5]


# ---- time zoom -----------------------------------------------------------------------------------

def windowed_episode(T: int, N=8, M=2, I=5) -> Episode:
    """Write head on slot t % N, read head on slot (t // 7) % N; inputs the bits of t; outputs
    wrong in the first bit at every step divisible by 3."""
    def one_hot(slots):
        w = np.zeros((T, 1, N), np.float32)
        w[np.arange(T), 0, slots] = 1.0
        return w

    t = np.arange(T)
    inputs = ((t[:, None] >> np.arange(I)[None, :]) & 1).astype(np.float32)
    targets = inputs[:, :2].copy()
    outputs = targets.copy()
    outputs[t % 3 == 0, 0] = 1 - outputs[t % 3 == 0, 0]
    return Episode.from_arrays(memory=np.zeros((T + 1, N, M), np.float32), read_weights=one_hot((t // 7) % N),
                               write_weights=one_hot(t % N), inputs=inputs, outputs=outputs, targets=targets)


def check_window(r: Renderer, ep: Episode, t0: int, t1: int) -> None:
    """The head locations and the sequence draw steps t0 .. t1 - 1, one column each."""
    n, N = t1 - t0, ep.slots
    g = r.geom("heads")
    pts = [(g["x0"] + (k + 0.5) * g["pw"] / n, g["y0"] + (s + 0.5) * g["ph"] / N) for s in range(N) for k in range(n)]
    for index, (name, rec) in enumerate(ep.head_records()):
        want = [unit_colour(rec.weights[t0 + k, 0, s], head_colour(index)) for s in range(N) for k in range(n)]
        drawn = r.pixels("heads", f"heads-{name}-1", pts)
        # step t's column carries the marker's outline at its edges only: every centre is the data
        assert drawn == want, (name, t0, t1)
    sg = r.geom("sequence")
    for name in ("inputs", "outputs"):
        b, arr = sg["blocks"][name], getattr(ep, name)
        pts = [(sg["x0"] + (k + 0.5) * sg["pw"] / n, b["y"] + (i + 0.5) * sg["cellH"])
               for i in range(b["rows"]) for k in range(n)]
        want = [unit_colour(abs(arr[t0 + k, i]), NEAR_BLACK) for i in range(b["rows"]) for k in range(n)]
        got = r.pixels("sequence", "sequence", pts)
        if name == "outputs":  # wrong bits are outlined in red, not filled: look at the right bits only
            keep = [j for j, (i, k) in enumerate((i, k) for i in range(b["rows"]) for k in range(n))
                    if not (i == 0 and (t0 + k) % 3 == 0)]
            got, want = [got[j] for j in keep], [want[j] for j in keep]
        assert got == want, (name, t0, t1)
    marks = r.pixels("sequence", "sequence", [(sg["x0"] + (k + 0.5) * sg["pw"] / n, sg["errY"] + sg["errH"] / 2)
                                              for k in range(n)])
    assert [m == (238, 0, 0) for m in marks] == [(t0 + k) % 3 == 0 for k in range(n)], (t0, t1)
    axis = [x["text"] for x in r.texts("heads-write-1", "back")]
    assert (f"step (from {t0})" if t0 else "step") in axis, axis


def test_time_zoom_redraws_the_window_only(renderer):
    ep = windowed_episode(40)
    renderer.record_texts()
    r = renderer.mount(as_json(episode_payload(ep)), views=["heads", "sequence"], options={"heads": {"zoom": False}})
    r.seek(20)
    check_window(r, ep, 0, 40)
    r.texts(clear=True)
    repaint(r, lambda: r.group_eval("g.zoomTime(0.5)"))  # half the steps, around t
    assert r.group_eval("g.window") == [10, 30]
    check_window(r, ep, 10, 30)
    r.texts(clear=True)
    repaint(r, lambda: r.group_eval("g.setWindow([3, 9])"))
    check_window(r, ep, 3, 9)
    # a click in the window selects the step under the pointer
    g = r.geom("heads")
    r.click("heads", "heads-read-1", g["x0"] + 4.5 * g["pw"] / 6, g["y0"] + 3)
    r.wait(7)
    # the buttons: wider, then every step
    r.texts(clear=True)
    repaint(r, lambda: r.page.get_by_role("button", name="Zoom out on time").first.click())
    assert r.group_eval("g.window") == [1, 13]
    check_window(r, ep, 1, 13)
    r.texts(clear=True)
    repaint(r, lambda: r.page.get_by_role("button", name="Show every step").first.click())
    assert r.group_eval("g.window") is None
    check_window(r, ep, 0, 40)


def test_time_zoom_on_a_long_episode_draws_steps_from_chunks_fetched_on_demand(renderer):
    """T = 3000 over 520 columns: the overview pools about 6 steps a column (several slots lit per
    column). A window of 40 steps asks for the chunk holding them and then draws each step's
    own weighting: one slot per column."""
    T = 3000
    ep = windowed_episode(T)
    plan = EpisodePayload(ep, ["heads", "sequence"], step_budget=100 * 64)
    assert plan.K == 100 and plan.chunks == 30
    payload = as_json(plan.initial(0))
    assert list(payload["steps"]["chunks"]) == ["0"] and payload["P"] == 520
    renderer.record_texts()
    r = renderer.mount(payload, views=["heads", "sequence"], options={"heads": {"zoom": False}})
    page = r.page
    page.evaluate("""() => { window.__need = [];
        for (const k of ['heads', 'sequence']) {
          window.__handles[k].onNeed((c, id) => window.__need.push([k, c, id]));
        } }""")
    t0, t1 = 1503, 1543
    r.texts(clear=True)
    r.group_eval("g.setWindow(arg)", [t0, t1])
    page.wait_for_function("() => window.__need.length > 0")
    asked = page.evaluate("() => window.__need")
    assert {c for _, c, _ in asked} == {15} and {i for *_, i in asked} == {payload["id"]}
    for view, c in {(v, c) for v, c, _ in asked}:
        repaint(r, lambda: page.evaluate("([v, id, c, arrays]) => window.__handles[v].addChunk(id, c, arrays)",
                                         [view, payload["id"], c, as_json(plan.chunk(c))]), [view])
    check_window(r, ep, t0, t1)
    # before the chunk came, the columns were the overview's: a block of ~6 steps, several slots lit
    g = r.geom("heads")
    b = blocks(T, 520)
    p = int(np.searchsorted(b, 200, side="right") - 1)
    r.texts(clear=True)
    repaint(r, lambda: r.group_eval("g.setWindow(null)"))
    col = r.pixels("heads", "heads-write-1", [(g["x0"] + (p + 0.5) * g["pw"] / 520, g["y0"] + (s + 0.5) * g["ph"] / 8)
                                              for s in range(8)])
    lit = [s for s, px in enumerate(col) if px == head_colour(1)]
    assert lit == sorted({t % 8 for t in range(b[p], b[p + 1])}) and len(lit) > 1


# ---- the slots view ------------------------------------------------------------------------------

def slots_episode(T=6, N=6, M=3) -> Episode:
    rng = np.random.default_rng(7)
    usage = rng.uniform(0.1, 0.8, (T, N)).astype(np.float32)  # declared 0 .. 1: its colours use all of it
    balance = rng.uniform(-0.5, 1.5, (T, N)).astype(np.float32)  # no range: [min, max] with 0
    balance[0, 0], balance[1, 1] = -0.5, 1.5
    strength = rng.uniform(0.2, 0.9, (T, N)).astype(np.float32)  # no range, all above 0: [0, max]
    links = rng.uniform(0.0, 0.6, (T, N, N)).astype(np.float32)
    w = np.zeros((T, 1, N), np.float32)
    w[np.arange(T), 0, np.arange(T) % N] = 1.0
    ep = Episode.from_arrays(memory=np.zeros((T + 1, N, M), np.float32), read_weights=w, write_weights=w,
                             slot_state={"usage": usage, "balance": balance, "strength": strength},
                             slot_matrices={"links": links})
    ep.family = ep.family.with_changes(slot_state=(SlotField("usage", "how much of each slot is in use", (0.0, 1.0)),
                                                   SlotField("balance"), SlotField("strength")))
    return ep


def test_slot_state_over_time_and_at_t_on_the_state_ramp(renderer):
    ep = slots_episode()
    T, N = ep.steps, ep.slots
    payload = as_json(episode_payload(ep))
    lo_b, hi_b = float(ep.slot_state["balance"].min()), float(ep.slot_state["balance"].max())
    hi_s = float(ep.slot_state["strength"].max())
    assert ep.slot_state["strength"].min() > 0.1
    assert payload["scales"]["slot.usage"] == [0.0, 1.0]
    assert payload["scales"]["slot.balance"] == pytest.approx([lo_b, hi_b])
    assert payload["scales"]["slot.strength"] == pytest.approx([0.0, hi_s])  # 0 is on every scale
    r = renderer.mount(payload, views=["slots"])
    for name, (lo, hi) in (("usage", (0.0, 1.0)), ("balance", (lo_b, hi_b)), ("strength", (0.0, hi_s))):
        stage = f"slot-{name}"
        g = r.panel("slots", stage)
        values = ep.slot_state[name]
        pts = [(g["x0"] + (t + 0.5) * g["pw"] / T, g["y0"] + (n + 0.5) * g["ph"] / N)
               for n in range(N) for t in range(T)]
        want = [state_colour(float(values[t, n]), lo, hi) for n in range(N) for t in range(T)]
        assert r.pixels("slots", stage, pts) == want, name
        # the ramp runs white (low) to deep purple (high)
        assert state_colour(lo, lo, hi) == (255, 255, 255) and state_colour(hi, lo, hi) == DEEP_PURPLE
        for t in (0, 4):
            r.seek(t)
            for n in range(N):
                y = g["y0"] + (n + 0.5) * g["ph"] / N
                row = r.pixels("slots", stage, [(g["barsX"] + i + 0.5, y) for i in range(int(g["barsW"]))])
                f = (values[t, n] - lo) / (hi - lo)
                assert abs(run(row, STATE_BAR) - f * g["barsW"]) <= 1, (name, t, n, run(row, STATE_BAR), f * g["barsW"])
    # usage on its declared range differs from usage on its own [0, max]: the declared one is used
    u = float(ep.slot_state["usage"][0, 0])
    assert state_colour(u, 0.0, 1.0) != state_colour(u, 0.0, float(ep.slot_state["usage"].max()))


def test_slot_matrix_at_t(renderer):
    ep = slots_episode()
    T, N = ep.steps, ep.slots
    links = ep.slot_matrices["links"]
    scale = float(np.abs(links).max())
    payload = as_json(episode_payload(ep))
    assert payload["scales"]["matrix.links"] == pytest.approx(scale)
    r = renderer.mount(payload, views=["slots"])
    g = r.panel("slots", "matrix-links")
    pts = [(g["x0"] + (j + 0.5) * g["side"] / N, g["y0"] + (i + 0.5) * g["side"] / N)
           for i in range(N) for j in range(N)]
    for t in (0, 3, T - 1):
        r.seek(t)
        want = [state_colour(float(links[t, i, j]), 0.0, scale) for i in range(N) for j in range(N)]
        assert r.pixels("slots", "matrix-links", pts) == want, t


def disc_radius(r: Renderer, stage: str, x: float, y: float, colour) -> float:
    """How far right of (x, y) the disc drawn there reaches: its run of pixels in `colour`."""
    row = r.front("slots", stage, [(x + i, y) for i in range(40)])
    k = 0
    while k < len(row) and row[k][3] and near(row[k], colour, 3):
        k += 1
    return k


def test_slots_in_a_plane_with_a_disc_per_weight_and_each_heads_path(renderer):
    T, N = 3, 5
    xy = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]], np.float32)
    w = np.zeros((T, 1, N), np.float32)
    w[0, 0, :4] = [0.6, 0.3, 0.1, 0.0]
    w[1, 0, 4] = 1.0
    w[2, 0, [1, 3]] = [0.25, 0.75]
    memory = np.tile(xy, (1, 2))  # the encoded points: a read-only memory
    ep = Episode.from_arrays(memory=memory, heads={"pointer": w}, slot_coords=xy)
    payload = as_json(episode_payload(ep))
    assert payload["family"]["slot_coords"] is True and payload["heads"][0]["group"] == "pointer"
    r = renderer.mount(payload, views=["player", "slots"])
    g = r.panel("slots", "plane")
    assert (g["lo"], g["hi"]) == (0, 1)
    colour = head_colour(0)
    inner = g["side"] - 2 * g["pad"]

    def where(n):
        return g["x0"] + g["pad"] + float(xy[n, 0]) * inner, g["y0"] + g["pad"] + (1 - float(xy[n, 1])) * inner

    for t in range(T):
        r.seek(t)
        path = [int(np.argmax(w[s, 0])) for s in range(t + 1)]  # the most weighted slot of each step so far
        for n in range(N):
            x, y = where(n)
            v = float(w[t, 0, n])
            if v < 0.005:
                if n not in path:
                    assert r.front("slots", "plane", [(x, y)])[0][3] == 0, (t, n)  # no disc, no path
                continue
            radius = 3 + 14 * np.sqrt(v)  # the disc's area grows with the weight
            drawn = disc_radius(r, "plane", x, y, colour)
            assert abs(drawn - radius) <= 1.5, (t, n, drawn, radius)
        best = int(np.argmax(w[t, 0]))
        x, y = where(best)
        ring = r.front("slots", "plane", [(x + 19, y)])[0]  # the most weighted slot is ringed
        assert ring[3] > 200 and near(ring, colour, 3), (t, ring)
        # the path so far joins those slots in order, in the head's colour; nothing before step 1
        for a, b in zip(path, path[1:]):
            (xa, ya), (xb, yb) = where(a), where(b)
            mid = r.front("slots", "plane", [((xa + xb) / 2, (ya + yb) / 2)])[0]
            assert mid[3] > 60 and near(mid, colour, 12), (t, a, b, mid)
        if t == 0:
            x1, y1 = where(4)
            assert r.front("slots", "plane", [((x + x1) / 2, (y + y1) / 2)])[0][3] == 0  # no path yet
    # a hidden head leaves the plane empty
    repaint(r, lambda: r.page.get_by_role("button", name="Hide pointer 1").click())
    for n in range(N):
        assert r.front("slots", "plane", [where(n)])[0][3] == 0


# ---- ten heads -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def priority_sort():
    from ntmviz.app.sources import load_source, record_episode

    return record_episode(load_source("priority_sort-ntm"))


def test_ten_heads_in_ten_colours_in_every_view(renderer, priority_sort):
    ep = priority_sort
    heads = ep.head_list()
    assert len(heads) == 10
    payload = as_json(episode_payload(ep))
    colours = [hd["colour"] for hd in payload["heads"]]
    assert colours == HEADS[:10] and len({hex_rgb(c) for c in colours}) == 10
    renderer.record_texts()
    r = renderer.mount(payload, views=["player", "memory", "focus", "heads", "sequence"])
    t = 20
    r.seek(t)
    page = r.page
    # the player's chips, each in its head's colour
    chips = page.evaluate("""() => Array.from(document.querySelectorAll('.ntmviz-chip'), (c) => [c.textContent,
        getComputedStyle(c.querySelector('i')).backgroundColor])""")
    assert chips == [[label, "rgb(%d, %d, %d)" % head_colour(i)] for i, (_, _, label, _) in enumerate(heads)]
    gm = r.geom("memory")
    D = payload["D"]
    assert D == ep.slots
    gh = r.geom("heads")
    rows = page.evaluate("() => window.__handles.heads.view.rows")
    shown = rows if rows is not None else list(range(D))
    out_rows, out_cols = min(len(shown), round(gh["ph"])), min(ep.steps, round(gh["pw"]))
    for i, (group, h, label, rec) in enumerate(heads):
        colour = head_colour(i)
        w = rec.weights[t, h]
        best = int(np.argmax(w))
        # memory: its strip at its most weighted slot, in its ramp
        x = gm["stripX"] + i * gm["strip"] + 1
        px = r.front("memory", "memory", [(x, gm["y0"] + (best + 0.5) * gm["mh"] / D)])[0]
        assert px[:3] == unit_colour(float(w[best]), colour), (label, px)
        # focus: the weights column's bar on the most weighted slot fills the column in its colour
        g = r.panel("focus", f"focus-{group}-{h + 1}")
        rows_px = min(D, round(g["ph"]))
        row = max(k for k in range(rows_px) if (k * D) // rows_px <= best)
        x = column_x(g, 3) + 2
        bar = r.pixels("focus", f"focus-{group}-{h + 1}", [(x + k + 0.5, g["y0"] + (row + 0.5) * g["ph"] / rows_px)
                                                           for k in range(int(g["colW"]) - 3)])
        assert run(bar, colour) >= g["colW"] - 4, (label, bar[:3])
        # head locations: the cell of its heaviest weight over the episode (a step other than t),
        # in the head's ramp
        others = np.delete(np.arange(ep.steps), t)
        k, n = np.unravel_index(int(np.argmax(rec.weights[others, h])), (len(others), ep.slots))
        s, n = int(others[k]), int(n)
        assert n in shown, (label, n)  # a busy slot: shown when the panel zooms
        i_row = shown.index(n)
        r_img = max(k for k in range(out_rows) if (k * len(shown)) // out_rows <= i_row)
        c_img = max(k for k in range(out_cols) if (k * ep.steps) // out_cols <= s)
        r0 = (r_img * len(shown)) // out_rows
        r1 = max(r0 + 1, ((r_img + 1) * len(shown)) // out_rows)
        c0 = (c_img * ep.steps) // out_cols
        c1 = max(c0 + 1, ((c_img + 1) * ep.steps) // out_cols)
        want = float(rec.weights[c0:c1, h][:, [shown[k] for k in range(r0, r1)]].max())
        cell = r.pixels("heads", f"heads-{group}-{h + 1}", [(gh["x0"] + (c_img + 0.5) * gh["pw"] / out_cols,
                                                             gh["y0"] + (r_img + 0.5) * gh["ph"] / out_rows)])[0]
        assert cell == unit_colour(want, colour) and want > 0.3, (label, cell, want)
    # the panels' titles and the vectors' labels in each head's colour
    for i, (group, h, label, _) in enumerate(heads):
        for stage in (f"focus-{group}-{h + 1}", f"heads-{group}-{h + 1}"):
            titles = [x["fill"] for x in r.texts(stage, "back") if x["text"] == f"{label} head"]
            assert titles and set(titles) == {HEADS[i]}, (stage, titles)
        fills = {x["fill"] for x in r.texts("vectors", "front") if x["text"].startswith(label + " ")}
        assert fills == {HEADS[i]}, (label, fills)


# ---- the cost strip ------------------------------------------------------------------------------

def test_ngrams_cost_strip_bars_follow_the_step_scores(renderer):
    from ntmviz.app.sources import load_source, record_episode

    ep = record_episode(load_source("ngrams-ntm"), length=60, seed=0)
    scores = ep.step_scores()
    assert ep.measure == "bits_above_optimum" and (scores > 0).any() and (scores < 0).any()
    renderer.record_texts()
    r = renderer.mount(as_json(episode_payload(ep)), views=["sequence"])
    g = r.geom("sequence")
    T = ep.steps
    cw = g["pw"] / T
    mid = g["errY"] + g["errH"] / 2
    half = g["errH"] / 2
    s = float(np.abs(scores).max())
    texts = [x["text"] for x in r.texts("sequence", "back")]
    assert f"±{fmt(s)}" in texts, texts
    # the strip's label (what the measure counts) and every other text are inside the canvas, whole
    width = r.stage_box("sequence", "sequence")["width"]
    for x in r.texts("sequence", "back"):
        left = x["x"] - {"right": x["width"], "center": x["width"] / 2}.get(x["align"], 0)
        assert left >= 0 and left + x["width"] <= width, x
    label = [x["text"] for x in r.texts("sequence", "back") if abs(x["y"] - mid) <= half and x["x"] < g["x0"]]
    assert " ".join(label) == "bits vs optimum", label
    checked = 0
    for t in range(T):
        v = float(scores[t])
        x = g["x0"] + t * cw + min(2.5, cw / 2)
        up = r.pixels("sequence", "sequence", [(x, mid - 0.5 - k) for k in range(int(half))])
        down = r.pixels("sequence", "sequence", [(x, mid + 1.5 + k) for k in range(int(half) - 1)])
        hgt = abs(v) / s * half
        if v > 0:
            assert run(down, COST_DOWN) == 0 and run(down, COST_UP) == 0, t
            assert abs(run(up, COST_UP) - hgt) <= 1, (t, v, run(up, COST_UP), hgt)
        elif v < 0:
            assert run(up, COST_UP) == 0 and run(up, COST_DOWN) == 0, t
            # (row mid holds the zero line)
            assert abs(run(down, COST_DOWN) - (hgt - 1)) <= 1, (t, v, run(down, COST_DOWN), hgt)
        else:
            assert run(up + down, COST_UP) == 0 and run(up + down, COST_DOWN) == 0, t
        checked += hgt >= 2
    assert checked >= 10  # enough bars tall enough to tell their length
    r.seek(int(np.argmax(scores)))
    title = r.page.evaluate("() => window.__handles.sequence.view.title.textContent")
    unit = "bits above the optimum per prediction"
    assert title.startswith(f"step {int(np.argmax(scores))}: {fmt(float(scores.max()))} {unit}"), title
