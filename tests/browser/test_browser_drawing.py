"""The renderer draws what the data says, checked pixel by pixel in Chromium against episodes
built with known values: the memory view at step t paints memory[t+1] in the palette's colour
of each value (red positive, blue negative, near white zero); "show change" paints
memory[t+1] - memory[t]; bit errors count scored (mask > 0) steps only; a click on step t's
column of the head locations selects t; the focus bars are as long as the weights on their
column's scale; hover shows 0, not 0.004, for a memory of 1e-6. Also the renderer's pure helpers
(palettes, the twelve head ramps and the STATE ramp, blocks, bit errors) against payload.py,
the reference palettes and numpy. (What payload version 3 added: test_browser_views.py.) The views run from ntmviz/app/static's modules, served on
a loopback port, with every other request aborted."""

from __future__ import annotations

import numpy as np
import pytest

from _renderer import (
    HEADS, as_json, head_colour, signed_colour, state_colour, unit_colour,
)
from ntmviz.app.payload import (
    blocks, decode_array, episode_payload, palette_index, pool_slots,
)
from ntmviz.episode import Episode, HeadRecord

T, N, M, I, O, S = 6, 7, 4, 3, 2, 3


def crafted_episode(T=T, N=N, M=M, mask=None, memory=None, write_slots=None, read_slots=None) -> Episode:
    """An episode with chosen values. By default memory[t] flips sign every step (so memory[t]
    and memory[t+1] differ in colour at every cell), the write head sits on slot t % N and the
    read head on slot (2 t) % N, outputs are wrong in every bit of every step."""
    n = np.arange(N)[:, None] - (N - 1) / 2 - 0.25  # never zero
    m = np.arange(M)[None, :] + 1
    if memory is None:
        memory = np.stack([(-1.0) ** t * n * m / (N * M) * (1 + 0.3 * t) for t in range(T + 1)]).astype(np.float32)

    def one_hot(slots, H=1):
        w = np.zeros((T, H, N), np.float32)
        w[np.arange(T), 0, slots] = 1.0
        return w

    ws = one_hot(write_slots if write_slots is not None else np.arange(T) % N)
    rs = one_hot(read_slots if read_slots is not None else (2 * np.arange(T)) % N)
    content = np.full((T, 1, N), 1.0 / N, np.float32)
    gated = np.zeros((T, 1, N), np.float32)
    gated[:, 0, 0], gated[:, 0, 1] = 0.75, 0.25

    def heads(w, write):
        shift = np.zeros((T, 1, S), np.float32)
        shift[:, 0, 2] = 1.0
        return HeadRecord(key=np.ones((T, 1, M), np.float32), beta=np.full((T, 1), 5.0, np.float32),
                          gate=np.full((T, 1), 0.5, np.float32), shift=shift,
                          gamma=np.full((T, 1), 2.0, np.float32), content=content, gated=gated, shifted=gated,
                          weights=w, erase=np.full((T, 1, M), 0.5, np.float32) if write else None,
                          add=np.ones((T, 1, M), np.float32) if write else None)

    targets = (np.arange(T * O).reshape(T, O) % 2).astype(np.float32)
    return Episode(inputs=np.zeros((T, I), np.float32), outputs=1 - targets, targets=targets,
                   mask=None if mask is None else np.asarray(mask, np.float32), memory=memory,
                   reads=np.zeros((T, 1, M), np.float32), read=heads(rs, False), write=heads(ws, True),
                   meta={"task": "crafted"})


def cell_centres(g, rows, cols):
    return [(g["x0"] + (c + 0.5) * g["mw"] / cols, g["y0"] + (r + 0.5) * g["mh"] / rows)
            for r in range(rows) for c in range(cols)]


def test_memory_view_paints_memory_after_step_t_in_the_palette(renderer):
    ep = crafted_episode()
    scale = float(np.abs(ep.memory).max())
    r = renderer.mount(as_json(episode_payload(ep)), views=["memory"])
    g = r.geom("memory")
    points = cell_centres(g, N, M)
    for t in range(T):
        r.seek(t)
        drawn = r.pixels("memory", "memory", points)
        expected = [signed_colour(v, scale) for v in ep.memory[t + 1].ravel()]
        before = [signed_colour(v, scale) for v in ep.memory[t].ravel()]
        assert drawn == expected, f"step {t}: the cells are not memory[t+1]"
        assert sum(a != b for a, b in zip(drawn, before)) == N * M  # the data tell t+1 from t everywhere
    # positive values red, negative blue
    t = T - 1
    for (rr, gg, bb), v in zip(r.pixels("memory", "memory", points), ep.memory[t + 1].ravel()):
        assert (rr > bb) if v > 0 else (bb > rr), (v, rr, gg, bb)


def test_show_change_paints_the_change_step_t_made(renderer):
    ep = crafted_episode()
    diff = np.diff(ep.memory.astype(np.float64), axis=0)
    scale = float(np.abs(diff).max())
    r = renderer.mount(as_json(episode_payload(ep)), views=["memory"])
    r.page.get_by_role("checkbox", name="Show change").check()
    g = r.geom("memory")
    for t in (0, 3):
        r.seek(t)
        r.page.wait_for_function("() => /change made by step/.test(window.__handles.memory.view.title.textContent)")
        drawn = r.pixels("memory", "memory", cell_centres(g, N, M))
        assert drawn == [signed_colour(v, scale) for v in diff[t].ravel()], t


def test_colour_bar_runs_from_plus_scale_red_to_minus_scale_blue(renderer):
    ep = crafted_episode()
    scale = float(np.abs(ep.memory).max())
    r = renderer.mount(as_json(episode_payload(ep)), views=["memory"])
    g = r.geom("memory")
    x = g["barX"] + g["barW"] / 2
    top, middle, bottom = r.pixels("memory", "memory", [(x, g["barY"] + 0.5), (x, g["barY"] + g["barH"] / 2),
                                                         (x, g["barY"] + g["barH"] - 0.5)])
    rows = round(g["barH"])
    assert top == signed_colour(scale * (1 - 1 / rows), scale) and top[0] > top[2]
    assert bottom == signed_colour(-scale * (1 - 1 / rows), scale) and bottom[2] > bottom[0]
    assert abs(middle[0] - 247) <= 3 and abs(middle[2] - 247) <= 3


def test_quantised_memory_shows_zero_as_zero(renderer):
    """Memory large enough to travel as palette indices (an NTM's memory starts at 1e-6): the
    colour is the palette's colour of the value sent, and hover says 0, not 0.004."""
    T2, N2, M2 = 700, 12, 8
    memory = np.full((T2 + 1, N2, M2), 1e-6, np.float32)
    memory[:, 0, 0], memory[:, 1, 1] = 1.0, -0.5
    ep = crafted_episode(T=T2, N=N2, M=M2, memory=memory, write_slots=np.arange(T2) % N2,
                         read_slots=np.arange(T2) % N2)
    payload = as_json(episode_payload(ep))
    assert payload["steps"]["chunks"]["0"]["memory"]["dtype"] == "u1"
    r = renderer.mount(payload, views=["memory"])
    g = r.geom("memory")
    r.seek(5)
    drawn = r.pixels("memory", "memory", cell_centres(g, N2, M2))
    decoded = decode_array(payload["steps"]["chunks"]["0"]["memory"])[6]
    assert drawn == [signed_colour(v, 1.0) for v in decoded.ravel()]
    assert drawn[0][0] > drawn[0][2] and drawn[M2 + 1][2] > drawn[M2 + 1][0]
    text = r.hover("memory", "memory", g["x0"] + 2.5 * g["mw"] / M2, g["y0"] + 5.5 * g["mh"] / N2)
    assert "slot 5, width 2: ≈0.000" in text and "0.004" not in text, text


def test_head_locations_pixels_and_clicks_select_the_step_under_the_pointer(renderer):
    ep = crafted_episode()
    r = renderer.mount(as_json(episode_payload(ep)), views=["heads"], options={"heads": {"zoom": False}})
    g = r.geom("heads")
    pw, ph, x0, y0 = g["pw"], g["ph"], g["x0"], g["y0"]
    # the picture: the write head's weight at (step t, slot n) in white .. the head's colour
    points = [(x0 + (t + 0.5) * pw / T, y0 + (n + 0.5) * ph / N) for n in range(N) for t in range(T)]
    drawn = r.pixels("heads", "heads-write-1", points)
    orange = head_colour(1)  # write 1 is the episode's second head (read 1 is the first)
    assert drawn == [unit_colour(ep.write.weights[t, 0, n], orange) for n in range(N) for t in range(T)]
    # clicking anywhere in step t's column selects t: its left edge, centre and right edge
    for t in (0, 1, 3, T - 1):
        for x in (x0 + t * pw / T + 1, x0 + (t + 0.5) * pw / T, x0 + (t + 1) * pw / T - 1):
            r.click("heads", "heads-read-1", x, y0 + ph / 2)
            r.wait(t)
            assert r.state()["t"] == t, (t, x)
        # the marker sits on the column of t
        row = r.pixels("heads", "heads-read-1", [(x0 + (t + 0.5) * pw / T, y0 - 3)])
        assert row[0] == (0, 0, 0), row


def test_bit_errors_count_only_scored_steps(renderer):
    mask = [0, 0, 1, 1, 0, 1]
    ep = crafted_episode(mask=mask)
    assert int(ep.bit_errors().sum()) == 3 * O
    r = renderer.mount(as_json(episode_payload(ep)), views=["sequence"])
    g = r.page.evaluate("() => window.__handles.sequence.view.geom")
    centres = [(g["x0"] + (t + 0.5) * g["pw"] / T, g["errY"] + g["errH"] / 2) for t in range(T)]
    strip = r.pixels("sequence", "sequence", centres)
    for t, (colour, scored) in enumerate(zip(strip, mask)):
        assert (colour == (238, 0, 0)) == bool(scored), (t, colour)
    title = r.page.evaluate("() => window.__handles.sequence.view.title.textContent")
    assert title == f"step 0: not scored; {3 * O} in the episode", title
    r.seek(2)
    title = r.page.evaluate("() => window.__handles.sequence.view.title.textContent")
    assert title == f"step 2: {O} bit errors at this step; {3 * O} in the episode", title


def test_focus_bars_are_as_long_as_the_weights_on_their_columns_scale(renderer):
    ep = crafted_episode()
    r = renderer.mount(as_json(episode_payload(ep)), views=["focus"])
    g = r.panel("focus", "focus-write-1")
    rowH = g["ph"] / N
    orange = head_colour(1)
    room = g["colW"] - 3  # the longest bar: the column's largest weight at t
    j = 1  # the "gated" column: 0.75 on slot 0, 0.25 on slot 1, 0 elsewhere
    x = g["x0"] + j * (g["colW"] + g["gap"]) + 1
    for n, w in ((0, 0.75), (1, 0.25), (2, 0.0)):
        y = g["y0"] + (n + 0.5) * rowH
        xs = [x + i + 0.5 for i in range(int(g["colW"]) - 1)]
        row = r.pixels("focus", "focus-write-1", [(xi, y) for xi in xs])
        filled = sum(px == orange for px in row)
        assert abs(filled - w / 0.75 * room) <= 1, (n, w, filled)


def test_busy_slot_zoom_shows_only_the_slots_the_heads_use(renderer):
    T2, N2 = 8, 64
    slots = np.array([3, 4, 5, 40, 3, 4, 5, 40])
    ep = crafted_episode(T=T2, N=N2, M=4, write_slots=slots, read_slots=slots,
                         memory=np.zeros((T2 + 1, N2, 4), np.float32))
    r = renderer.mount(as_json(episode_payload(ep)), views=["heads"])
    busy = r.page.evaluate("() => window.__handles.heads.view.rows")
    assert busy == [3, 4, 5, 40]  # zoomed by default: 4 of 64 slots are used
    g = r.geom("heads")
    orange = head_colour(1)
    points = [(g["x0"] + (t + 0.5) * g["pw"] / T2, g["y0"] + (i + 0.5) * g["ph"] / 4) for i in range(4) for t in range(T2)]
    drawn = r.pixels("heads", "heads-write-1", points)
    assert drawn == [unit_colour(ep.write.weights[t, 0, s], orange) for s in busy for t in range(T2)]
    assert "slot 40" in r.hover("heads", "heads-write-1", g["x0"] + 3.5 * g["pw"] / T2, g["y0"] + 3.5 * g["ph"] / 4)
    r.page.get_by_role("checkbox", name="Zoom to busy slots").uncheck()
    r.page.wait_for_function("() => window.__handles.heads.view.rows === null")
    assert r.geom("heads")["rows"] == N2


# ---- pure helpers --------------------------------------------------------------------------------

def test_palettes_and_indices_match_payload_and_the_reference(renderer):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(500) * 2, [0.0, 1e-6, -1e-6, 3.0, -3.0, np.nan]])
    got = renderer.page.evaluate("""async (values) => {
      const p = await import('/palette.js');
      return {
        signed: values.map((v) => p.lutIndexSigned(v === null ? NaN : v, 2)),
        unit: values.map((v) => p.lutIndexUnit(v === null ? NaN : Math.abs(v) / 3, 1)),
        colours: Array.from({length: 255}, (_, i) => p.unpack(p.DIVERGING[i])),
        zero: p.SIGNED_ZERO,
      }; }""", [None if np.isnan(v) else float(v) for v in values])
    assert got["signed"] == palette_index(values, 2.0, True).tolist()
    assert got["unit"] == palette_index(np.abs(values) / 3, 1.0, False).tolist()
    assert got["zero"] == 127
    for i, colour in enumerate(got["colours"]):
        assert tuple(colour) == signed_colour((i - 127) / 127 * 2.0, 2.0), i
    # the twelve head ramps (white to the head's colour) and the slot state ramp, entry by entry
    ramps = renderer.page.evaluate("""async (colours) => {
      const p = await import('/palette.js');
      return {heads: colours.map((c) => Array.from(p.headLUT(c), (w) => p.unpack(w))),
              state: Array.from(p.STATE, (w) => p.unpack(w))}; }""", HEADS)
    for k in range(12):
        assert [tuple(c) for c in ramps["heads"][k]] == [unit_colour(i / 255, head_colour(k)) for i in range(256)], k
    assert [tuple(c) for c in ramps["state"]] == [state_colour(i / 255 * 3 - 1, -1, 2) for i in range(256)]


def test_blocks_and_bit_errors_match_python(renderer):
    ep = crafted_episode(mask=[1, 0, 1, 0, 1, 1])
    got = renderer.page.evaluate("""async (payload) => {
      const d = await import('/data.js');
      const ep = d.episodeFrom(payload);
      const parts = [];
      for (const [n, k] of [[1024, 420], [5000, 520], [7, 7], [9, 4]]) {
        const b = [];
        for (let r = 0; r < k; r++) b.push(d.blockOf(n, k, r)[0]);
        const back = Array.from({length: n}, (_, i) => d.partOf(n, k, i));
        parts.push([b, back]);
      }
      return {errors: Array.from(d.stepErrors(ep)), parts}; }""", as_json(episode_payload(ep)))
    assert got["errors"] == ep.bit_errors().tolist()
    for (n, k), (starts, back) in zip([(1024, 420), (5000, 520), (7, 7), (9, 4)], got["parts"]):
        b = blocks(n, k)
        assert starts == b[:-1].tolist()
        assert back == (np.searchsorted(b, np.arange(n), side="right") - 1).tolist()


def test_pooled_slots_keep_the_extreme_the_payload_sent(renderer):
    """More slots than pixels (N=900): each drawn row is the value of largest magnitude of its block."""
    T2, N2 = 3, 900
    memory = np.zeros((T2 + 1, N2, 2), np.float32)
    memory[:, 500, 0], memory[:, 501, 0] = 0.2, -0.8
    ep = crafted_episode(T=T2, N=N2, M=2, memory=memory, write_slots=np.array([0, 1, 500]),
                         read_slots=np.array([0, 1, 2]))
    payload = as_json(episode_payload(ep))
    D = payload["D"]
    r = renderer.mount(payload, views=["memory"])
    g = r.geom("memory")
    row = int(np.searchsorted(blocks(N2, D), 501, side="right") - 1)
    drawn = r.pixels("memory", "memory", [(g["x0"] + 0.5 * g["mw"] / 2, g["y0"] + (row + 0.5) * g["mh"] / D)])
    pooled = pool_slots(memory[1], D, 0, True)[row, 0]
    assert pooled == pytest.approx(-0.8) and drawn == [signed_colour(pooled, 0.8)]


def test_long_head_locations_show_the_largest_weight_of_each_block_of_steps(renderer):
    """T=1100 steps over 520 columns: column p shows the largest weight over its steps, hover
    names them, and a click still selects the exact step under the pointer."""
    T2, N2 = 1100, 16
    ep = crafted_episode(T=T2, N=N2, M=2, write_slots=(np.arange(T2) // 100) % N2,
                         read_slots=np.zeros(T2, int), memory=np.zeros((T2 + 1, N2, 2), np.float32))
    payload = as_json(episode_payload(ep, ["heads"]))
    P = payload["P"]
    assert P == 520
    r = renderer.mount(payload, views=["heads"], options={"heads": {"zoom": False}})
    g = r.geom("heads")
    b = blocks(T2, P)
    orange = head_colour(1)
    cols = [0, 47, 48, 260, P - 1]
    points = [(g["x0"] + (p + 0.5) * g["pw"] / P, g["y0"] + (n + 0.5) * g["ph"] / N2) for p in cols for n in range(N2)]
    drawn = r.pixels("heads", "heads-write-1", points)
    expected = [unit_colour(ep.write.weights[b[p]:b[p + 1], 0, n].max(), orange) for p in cols for n in range(N2)]
    assert drawn == expected
    text = r.hover("heads", "heads-write-1", g["x0"] + 100.5 * g["pw"] / P, g["y0"] + 0.5 * g["ph"] / N2)
    assert f"steps {b[100]}–{b[101] - 1}" in text, text
    t = 777
    r.click("heads", "heads-write-1", g["x0"] + (t + 0.5) * g["pw"] / T2, g["y0"] + 5)
    r.wait(t)
    assert r.state()["t"] == t


def test_a_story_episode_counts_wrong_answers_not_bits(renderer):
    """meta scoring "answer" (a memory network's): a step is one wrong answer when the most likely
    output is not the target's, however many outputs sit on the wrong side of 0.5."""
    hops, n, words = 3, 4, 5
    read = np.full((hops, 1, n), 1.0 / n, np.float32)
    targets = np.zeros((hops, words), np.float32)
    targets[:, 2] = 1.0
    outputs = np.full((hops, words), 0.1, np.float32)
    outputs[0, 0], outputs[1, 2], outputs[2, 4] = 0.6, 0.45, 0.4  # hops 0 and 2 wrong, hop 1 right (below 0.5)
    ep = Episode.from_arrays(memory=np.ones((n, 2), np.float32), read_weights=read, outputs=outputs,
                             targets=targets, mask=[0, 1, 1], meta={"scoring": "answer"})
    assert ep.errors().tolist() == [0, 0, 1] and ep.error_name == "wrong answers"
    assert ep.bit_errors().tolist() == [0, 1, 1]  # the bit count would differ: 0.4 < 0.5 at the target
    r = renderer.mount(as_json(episode_payload(ep)), views=["sequence"])
    got = r.page.evaluate("""async (payload) => {
      const d = await import('/data.js');
      return Array.from(d.stepErrors(d.episodeFrom(payload))); }""", as_json(episode_payload(ep)))
    assert got == ep.errors().tolist()
    r.seek(2)
    title = r.page.evaluate("() => window.__handles.sequence.view.title.textContent")
    assert title == "step 2: 1 wrong answer at this step; 1 in the episode", title
    g = r.page.evaluate("() => window.__handles.sequence.view.geom")
    strip = r.pixels("sequence", "sequence", [(g["x0"] + (t + 0.5) * g["pw"] / hops, g["errY"] + g["errH"] / 2)
                                              for t in range(hops)])
    assert [c == (238, 0, 0) for c in strip] == [False, False, True], strip
