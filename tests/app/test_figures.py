"""Figures for papers draw the episode's data in the screen's palette, read from its declaration:
a memory cell's fill in the SVG (and its pixel in the PNG) is the palette colour of memory[t+1]
at that cell on the episode's scale; head-location cells are the head's ramp of its weight, each
head in its own colour by its number in head_list (ten heads, ten colours); focus bars are as
long as the weights on each column's own scale; the sequence outlines exactly the wrong bits and
draws a cost per step as signed bars; slot state, slot matrices and slot coordinates are drawn
from their arrays; hidden heads are left out; a time window shows only its steps; slot labels
are written in full. Bad requests fail with one line.

The reference colours here are computed from the palette's definition (payload.py and
static/palette.js headers), not from ntmviz.app.palette, so a wrong palette fails. Episodes are
small with unequal sizes (T, N, M differ), so a swapped axis fails."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

import ntmviz
from ntmviz import Episode
from ntmviz.app import HeadLocationsView, MemoryView, Playback, SequenceView
from ntmviz.app.figures import LABEL_ROOM, figure, plane_path, save_figure
from ntmviz.app.payload import EpisodePayload, decode_array, slot_pixels
from ntmviz.contract import SlotField
from ntmviz.errors import ConfigError

SVG = "{http://www.w3.org/2000/svg}"
ZERO = 127
NEGATIVE, MIDDLE, POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)
DEEP_PURPLE = (63, 0, 125)  # the STATE ramp's end (slot state, slot matrices)
# the twelve head colours (Paul Tol's muted set, led by his vibrant blue and orange, dark grey last)
HEADS = ("#0077bb", "#ee7733", "#117733", "#cc6677", "#332288", "#ddcc77", "#88ccee", "#882255",
         "#44aa99", "#999933", "#aa4499", "#555555")


def js_round(x):
    return math.floor(x + 0.5)


def signed_colour(v, scale):
    i = min(2 * ZERO, max(0, js_round(ZERO + ZERO * v / scale)))
    f = (i - ZERO) / ZERO
    end = NEGATIVE if f < 0 else POSITIVE
    return tuple(js_round(MIDDLE[k] + (end[k] - MIDDLE[k]) * abs(f)) for k in range(3))


def unit_colour(v, end, start=(255, 255, 255)):
    f = min(255, max(0, js_round(255 * v))) / 255
    return tuple(js_round(start[k] + (end[k] - start[k]) * f) for k in range(3))


def hex_rgb(text):
    v = int(text[1:], 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def head_rgb(i):
    return hex_rgb(HEADS[i])


# ---- reading an SVG back ----------------------------------------------------------------------------
def heatmap(svg: str, name: str):
    root = ET.fromstring(svg)
    for g in root.iter(SVG + "g"):
        if g.get("data-heatmap") == name:
            return g
    raise AssertionError(f"no heatmap {name!r} in the SVG")


def heatmap_names(svg: str) -> list[str]:
    return [g.get("data-heatmap") for g in ET.fromstring(svg).iter(SVG + "g") if g.get("data-heatmap")]


def named(svg: str, tag: str, name: str) -> list[ET.Element]:
    """The elements of a kind (rect, line, circle) with data-name `name`, in drawing order."""
    return [e for e in ET.fromstring(svg).iter(SVG + tag) if e.get("data-name") == name]


def texts(svg: str) -> list[str]:
    return [e.text or "" for e in ET.fromstring(svg).iter(SVG + "text")]


def hovers(svg: str) -> list[str]:
    return [e.text or "" for e in ET.fromstring(svg).iter(SVG + "title")]


def _box(rect):
    return tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))


def cell_fill(svg: str, name: str, r: int, c: int) -> tuple[int, int, int]:
    """The colour an SVG viewer paints at the centre of cell (r, c) of a heatmap: the last of its
    rectangles that covers the point (the first is the heatmap's background)."""
    g = heatmap(svg, name)
    rows, cols = int(g.get("data-rows")), int(g.get("data-cols"))
    rects = g.findall(SVG + "rect")
    x, y, w, h = _box(rects[0])
    px, py = x + (c + 0.5) * w / cols, y + (r + 0.5) * h / rows
    fill = rects[0].get("fill")
    for rect in rects[1:]:
        rx, ry, rw, rh = _box(rect)
        if rx <= px < rx + rw and ry <= py < ry + rh:
            fill = rect.get("fill")
    return hex_rgb(fill)


def cell_centre(svg: str, name: str, r: int, c: int) -> tuple[float, float]:
    g = heatmap(svg, name)
    rows, cols = int(g.get("data-rows")), int(g.get("data-cols"))
    x, y, w, h = _box(g.findall(SVG + "rect")[0])
    return x + (c + 0.5) * w / cols, y + (r + 0.5) * h / rows


def step_ticks(svg: str, name: str) -> list[str]:
    """The tick labels right under a heatmap, left to right (its step axis)."""
    x, y, w, h = _box(heatmap(svg, name).findall(SVG + "rect")[0])
    under = [e for e in ET.fromstring(svg).iter(SVG + "text") if e.get("text-anchor") == "middle"
             and x <= float(e.get("x")) <= x + w and y + h < float(e.get("y")) < y + h + 16]
    return [e.text for e in sorted(under, key=lambda e: float(e.get("x")))]


def sized_texts(svg: str, size: float) -> list[str]:
    return [e.text or "" for e in ET.fromstring(svg).iter(SVG + "text") if float(e.get("font-size")) == size]


def shape(svg: str, name: str) -> tuple[int, int]:
    g = heatmap(svg, name)
    return int(g.get("data-rows")), int(g.get("data-cols"))


def top_colour(svg: str, bar: str) -> tuple[int, int, int]:
    """A colour bar's top band: the colour of its highest value."""
    return cell_fill(svg, bar, 0, 0)


# ---- episodes of other shapes -----------------------------------------------------------------------
def _rows(rng, shape, total=1.0):
    a = rng.random(shape) + 0.05
    return (a / a.sum(-1, keepdims=True) * total).astype(np.float32)


@pytest.fixture
def dnc_like():
    """A DNC's shape: 2 read heads and 1 write head whose weightings sum to less than 1, usage
    per slot, temporal links between slots. T=5 steps, N=6 slots, M=3 wide."""
    rng = np.random.default_rng(7)
    T, N, M = 5, 6, 3
    links = rng.random((T, N, N)).astype(np.float32) * 0.4
    links[:, 0, 5] = 0.9  # from slot 0 to slot 5 only: a transposed matrix would show it at (5, 0)
    links[:, 5, 0] = 0.0
    return Episode.from_arrays(memory=rng.standard_normal((T + 1, N, M)), read_weights=_rows(rng, (T, 2, N), 0.8),
                               write_weights=_rows(rng, (T, 1, N), 0.6), normalised=False,
                               slot_state={"usage": rng.random((T, N)).astype(np.float32) * 0.7 + 0.1},
                               slot_matrices={"links": links})


@pytest.fixture
def pointer_like():
    """A pointer network's shape: one "pointer" head over a static memory of N=7 points in a plane
    (T=4, M=2), the points spread wider in x than in y."""
    rng = np.random.default_rng(8)
    T, N, M = 4, 7, 2
    coords = np.stack([rng.random(N) * 4 - 1, rng.random(N) * 0.5 + 2], axis=1).astype(np.float32)
    return Episode.from_arrays(memory=rng.standard_normal((N, M)), heads={"pointer": _rows(rng, (T, 1, N))},
                               slot_coords=coords, slot_labels=[f"<city {n}>" for n in range(N)])


def _recorded(name):
    from ntmviz.app.sources import load_source, record_episode

    return record_episode(load_source(name))


# ---- memory ---------------------------------------------------------------------------------------------
def test_memory_svg_cells_are_the_palette_colour_of_memory_after_step_t(episode):
    t = 3
    svg = figure(episode, "memory", t).svg()
    scale = float(np.abs(episode.memory).max())
    N, M = episode.slots, episode.width
    assert shape(svg, "memory") == (N, M)
    for n in range(N):
        for m in range(M):
            assert cell_fill(svg, "memory", n, m) == signed_colour(float(episode.memory[t + 1, n, m]), scale), (n, m)
    # a colour bar and labelled axes
    heatmap(svg, "colour-bar")
    assert {"slot", "width", "value", f"Memory after step {t}"} <= set(texts(svg))


def test_memory_diff_and_other_steps_follow_the_data(episode):
    t = 2
    mem = episode.memory.astype(np.float64)
    change = mem[t + 1] - mem[t]
    scale = float(np.abs(np.diff(mem, axis=0)).max())
    svg = figure(episode, "memory", t, diff=True).svg()
    for n, m in [(0, 0), (3, 2), (6, 4)]:
        assert cell_fill(svg, "memory", n, m) == signed_colour(change[n, m], scale)
    # a view saves what it shows: its step t and its show-change setting
    view = MemoryView(episode, diff=True)
    view.state.t = t
    assert view.figure().svg() == svg


def test_memory_head_strips_and_focus_outline(episode):
    t = 4
    svg = figure(episode, "memory", t).svg()
    for i, (group, rec) in enumerate([("read", episode.read), ("write", episode.write)]):
        w = rec.weights[t, 0]
        for n in range(episode.slots):
            assert cell_fill(svg, f"strip-{group}-1", n, 0) == unit_colour(float(w[n]), head_rgb(i))
        best = int(np.argmax(w))
        _, y = cell_centre(svg, "memory", best, 0)
        (outline,) = named(svg, "rect", f"focus-{group}-1")
        assert outline.get("stroke") == HEADS[i]
        assert float(outline.get("y")) < y < float(outline.get("y")) + float(outline.get("height"))


def test_png_is_the_svg_at_three_times_the_pixels(episode, tmp_path):
    from PIL import Image

    t = 3
    fig = figure(episode, "memory", t)
    path = fig.save(tmp_path / "memory.png")
    img = Image.open(path).convert("RGB")
    assert img.size == (math.ceil(fig.scene.width * 3), math.ceil(fig.scene.height * 3))
    assert round(img.info["dpi"][0]) == 288
    svg = fig.svg()
    scale = float(np.abs(episode.memory).max())
    for n, m in [(0, 0), (2, 3), (6, 4), (5, 1)]:
        x, y = cell_centre(svg, "memory", n, m)
        assert img.getpixel((int(x * 3), int(y * 3))) == signed_colour(float(episode.memory[t + 1, n, m]), scale)
    big = Image.open(io.BytesIO(fig.png(scale=5)))
    assert big.size == (math.ceil(fig.scene.width * 5), math.ceil(fig.scene.height * 5))


def test_slots_beyond_the_screen_are_pooled_as_the_screen_pools_them():
    torch.manual_seed(0)
    N = 600  # more than the 420 rows the screen draws
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=N, memory_width=3,
                                        controller_size=8))
    ep = ntmviz.record(model, torch.rand(5, 4))
    t = 2
    svg = figure(ep, "memory", t).svg()
    D = slot_pixels(N)
    assert shape(svg, "memory")[0] == D == 420
    plan = EpisodePayload(ep, ["memory"], step_budget=None)
    screen = decode_array(plan.chunk(0)["memory"])[t + 1]  # what the browser paints, [D, M]
    scale = plan.scales["memory"]
    for r in (0, 17, 211, 419):
        for m in range(3):
            assert cell_fill(svg, "memory", r, m) == signed_colour(float(screen[r, m]), scale)


# ---- head locations ------------------------------------------------------------------------------------
def test_head_locations_cells_are_each_weight_in_the_heads_colour(other_episode):
    ep = other_episode  # two read heads and a write head, N = 11: no pooling, no zoom
    svg = figure(ep, "heads", 4, zoom=False).svg()
    for i, (name, group, h) in enumerate([("heads-read-1", "read", 0), ("heads-read-2", "read", 1),
                                          ("heads-write-1", "write", 0)]):
        w = ep.heads[group].weights[:, h]  # [T, N]
        assert shape(svg, name) == (ep.slots, ep.steps)
        for s in range(ep.steps):
            for n in range(ep.slots):
                assert cell_fill(svg, name, n, s) == unit_colour(float(w[s, n]), head_rgb(i)), (name, s, n)
        assert top_colour(svg, f"colour-bar-{name[6:]}") == head_rgb(i)
    assert {"step", "slot", "weight"} <= set(texts(svg))


def test_head_locations_marker_and_zoom(episode):
    from ntmviz.app.figures import busy_rows

    t = 2
    with_marker = figure(episode, "heads", t).svg()
    without = figure(episode, "heads", t, marker=False).svg()
    marks = [p for p in ET.fromstring(with_marker).iter(SVG + "polygon")]
    assert len(marks) == 2 and not list(ET.fromstring(without).iter(SVG + "polygon"))
    g = heatmap(with_marker, "heads-read-1")
    x, _, w, _ = _box(g.findall(SVG + "rect")[0])
    tip = [float(v) for v in marks[0].get("points").split()[0].split(",")]
    assert tip[0] == pytest.approx(x + (t + 0.5) * w / episode.steps, abs=1e-3)
    busy = busy_rows(episode)
    zoomed = figure(episode, "heads", t, zoom=True).svg()
    if 0 < len(busy) < episode.slots:
        assert shape(zoomed, "heads-read-1")[0] == len(busy)
        w = episode.read.weights[:, 0]
        for i, n in enumerate(busy):
            assert cell_fill(zoomed, "heads-read-1", i, 0) == unit_colour(float(w[0, n]), head_rgb(0))


def test_a_time_window_shows_only_its_steps(other_episode):
    ep = other_episode  # T = 9
    t0, t1 = 2, 7
    svg = figure(ep, "heads", 5, zoom=False, window=(t0, t1)).svg()
    assert shape(svg, "heads-write-1") == (ep.slots, t1 - t0)
    w = ep.write.weights[:, 0]
    for s in range(t1 - t0):
        for n in range(ep.slots):
            assert cell_fill(svg, "heads-write-1", n, s) == unit_colour(float(w[t0 + s, n]), head_rgb(2))
    # the marker sits on step 5's column of the window; the step axis counts from t0
    g = heatmap(svg, "heads-read-1")
    x, _, width, _ = _box(g.findall(SVG + "rect")[0])
    tip = float(next(ET.fromstring(svg).iter(SVG + "polygon")).get("points").split()[0].split(",")[0])
    assert tip == pytest.approx(x + (5 - t0 + 0.5) * width / (t1 - t0), abs=1e-3)
    assert step_ticks(svg, "heads-read-1") == ["2", "3", "4", "5", "6"]
    outside = figure(ep, "heads", 8, window=(t0, t1)).svg()  # step 8 is not in the window: no marker
    assert not list(ET.fromstring(outside).iter(SVG + "polygon"))
    seq = figure(ep, "sequence", 5, window=(t0, t1)).svg()
    assert shape(seq, "inputs") == (ep.inputs.shape[1], t1 - t0)
    for s in range(t1 - t0):
        for r in range(ep.inputs.shape[1]):
            assert cell_fill(seq, "inputs", r, s) == unit_colour(abs(float(ep.inputs[t0 + s, r])), (34, 34, 34))


@pytest.mark.parametrize("window", [(0, 0), (3, 2), (0, 10), (-1, 4), (1.5, 3), "ab", 3])
def test_a_bad_time_window_is_one_line(other_episode, window):
    with pytest.raises(ConfigError, match=r"^the time window .* must be \(t0, t1\), whole steps with "
                                          r"0 <= t0 < t1 <= 9$") as info:
        figure(other_episode, "heads", 0, window=window)
    assert "\n" not in str(info.value)


def test_ten_heads_get_ten_colours():
    ep = _recorded("priority_sort-ntm")  # 5 read and 5 write heads
    labels = [label for _, _, label, _ in ep.head_list()]
    assert labels == [f"read {h}" for h in range(1, 6)] + [f"write {h}" for h in range(1, 6)]
    t = 20
    heads_svg = figure(ep, "heads", t, zoom=False).svg()
    memory_svg = figure(ep, "memory", t).svg()
    D = shape(memory_svg, "memory")[0]
    colours = []
    for i, (group, h, _, rec) in enumerate(ep.head_list()):
        key = f"{group}-{h + 1}"
        colours.append(top_colour(heads_svg, f"colour-bar-{key}"))
        assert colours[-1] == head_rgb(i)
        w = rec.weights[:, h]  # [T, N]: N = 128 < the 200 rows of the axis, so unpooled
        assert shape(heads_svg, f"heads-{key}") == (ep.slots, ep.steps) and D == ep.slots
        for s, n in [(t, int(np.argmax(w[t]))), (3, 0), (ep.steps - 1, 77)]:
            assert cell_fill(heads_svg, f"heads-{key}", n, s) == unit_colour(float(w[s, n]), head_rgb(i))
        for n in (int(np.argmax(w[t])), 0, 77):
            assert cell_fill(memory_svg, f"strip-{key}", n, 0) == unit_colour(float(w[t, n]), head_rgb(i))
        assert named(memory_svg, "rect", f"legend-{key}")[0].get("fill") == HEADS[i]
    assert len(set(colours)) == 10
    # associative recall's 4 + 4: the same colours in the same order
    ar = _recorded("associative_recall-ntm")
    svg = figure(ar, "heads", 5, zoom=False).svg()
    got = [top_colour(svg, f"colour-bar-{g}-{h + 1}") for g, h, _, _ in ar.head_list()]
    assert got == [head_rgb(i) for i in range(8)]


def test_hidden_heads_are_left_out_and_kept_greyed_in_the_legend(other_episode):
    ep = other_episode  # heads: 0 read 1, 1 read 2, 2 write 1
    t = 3
    for view in ("memory", "heads", "focus", "sequence"):
        svg = figure(ep, view, t, hidden={1}).svg()
        names = heatmap_names(svg)
        assert not any("read-2" in n or n.startswith("read 2") for n in names), (view, names)
        assert "read 2 head" not in texts(svg)
        assert [w for w in texts(svg) if w.startswith("read 2") and w.endswith("(hidden)")]
        legend = named(svg, "rect", "legend-read-2")
        assert legend and legend[0].get("fill") != HEADS[1]
    memory = figure(ep, "memory", t, hidden=[1]).svg()
    assert "read 2 weighting (hidden)" in texts(memory)
    assert not named(memory, "rect", "focus-read-2") and named(memory, "rect", "focus-write-1")
    # the others keep their numbers' colours
    heads = figure(ep, "heads", t, hidden=(1,), zoom=False).svg()
    assert heatmap_names(heads).count("heads-write-1") == 1
    assert top_colour(heads, "colour-bar-write-1") == head_rgb(2)
    seq = figure(ep, "sequence", t, hidden={1}).svg()
    assert "read 1 key" in heatmap_names(seq) and "read 2 key" not in heatmap_names(seq)
    assert "read 2 read" not in heatmap_names(seq) and "read 1 read" in heatmap_names(seq)
    with pytest.raises(ConfigError, match="^hidden head 3 is out of range: this episode has heads 0 to 2$"):
        figure(ep, "memory", t, hidden={3})
    with pytest.raises(ConfigError, match="hidden heads are head numbers"):
        figure(ep, "memory", t, hidden=["read 1"])


# ---- focus ----------------------------------------------------------------------------------------------
def _bars(svg, name):
    return [_box(r) for r in named(svg, "rect", name)]


def test_focus_bars_are_each_columns_weights_over_its_max(episode):
    t = 1
    svg = figure(episode, "focus", t).svg()
    for group in ("read", "write"):
        rec = episode.heads[group]
        full = None
        for stage in ("content", "gated", "shifted", "weights"):
            w = np.asarray(getattr(rec, stage)[t, 0], np.float64)
            m = w.max()
            bars = _bars(svg, f"bar-{group}-1-{stage}")
            drawn = np.flatnonzero(w / m >= 0.002)
            assert len(bars) == len(drawn)
            widths = np.array([b[2] for b in bars])
            full = widths.max() if full is None else full
            # the largest weight of every column has the same full-length bar: each on its own scale
            np.testing.assert_allclose(widths, w[drawn] / m * full, atol=2e-3)
            assert widths.max() == pytest.approx(full, abs=2e-3)
            ys = np.array([b[1] for b in bars])
            # a row per slot, slot 0 at the top, across the slot axis's height
            np.testing.assert_allclose(np.diff(ys) / np.diff(drawn), slot_pixels(episode.slots) / episode.slots,
                                       atol=2e-3)
            # a baseline at the bars' left, as tall as the column, and the column's max printed
            (line,) = named(svg, "line", f"baseline-{group}-1-{stage}")
            assert float(line.get("x1")) == float(line.get("x2")) == pytest.approx(bars[0][0] - 0.5)
            assert float(line.get("y1")) <= ys.min() and float(line.get("y2")) >= ys.max() + bars[-1][3]
            assert f"max {m:.3f}" in texts(svg)
    # the params under the stages, from the declaration: numbers on their declared range, the shift as bars
    gate, beta = float(episode.read.gate[t, 0]), float(episode.read.beta[t, 0])
    assert f"g gate {gate:.3f}" in texts(svg) and f"β beta {beta:.3f}" in texts(svg)
    assert "0–50 log" in texts(svg) and "1–10" in texts(svg)
    (g_bar,) = _bars(svg, "param-read-1-gate")
    (b_bar,) = _bars(svg, "param-read-1-beta")
    (gamma_bar,) = _bars(svg, "param-read-1-gamma")
    gamma = float(episode.read.gamma[t, 0])
    assert g_bar[2] == pytest.approx(60 * gate, abs=1e-3)
    assert b_bar[2] == pytest.approx(60 * math.log1p(beta) / math.log1p(50), abs=1e-3)
    assert gamma_bar[2] == pytest.approx(60 * (gamma - 1) / 9, abs=1e-3)
    shift = episode.read.shift[t, 0]
    heights = [b[3] for b in _bars(svg, "param-read-1-shift")]
    np.testing.assert_allclose(heights, 32 * shift, atol=1e-3)
    assert {"-1", "0", "+1"} <= set(texts(svg))  # the shift is centred: offsets -1 .. +1


def test_focus_columns_are_on_their_own_scale():
    """A content stage whose max is 0.02 gets full-length bars for its max, a flat stage equal
    full-length bars, an all-zero stage says 0."""
    rng = np.random.default_rng(3)
    T, N, M = 3, 5, 4
    w = _rows(rng, (T, 1, N))
    content = _rows(rng, (T, 1, N), 0.05)
    content[1, 0] = [0.005, 0.02, 0.01, 0.0, 0.015]
    flat = np.full((T, 1, N), 1 / N, np.float32)
    ep = Episode.from_arrays(memory=rng.standard_normal((T + 1, N, M)), read_weights=w,
                             stages={"content": content, "flat": flat, "none": np.zeros((T, 1, N), np.float32)})
    svg = figure(ep, "focus", 1).svg()
    full = max(b[2] for b in _bars(svg, "bar-read-1-weights"))
    content_bars = _bars(svg, "bar-read-1-content")
    assert [b[2] for b in content_bars] == pytest.approx([full / 4, full, full / 2, full * 3 / 4], abs=1e-3)
    assert "max 0.020" in texts(svg)
    flat_bars = _bars(svg, "bar-read-1-flat")
    assert len(flat_bars) == N and all(b[2] == pytest.approx(full) for b in flat_bars)
    assert "max 0.200" in texts(svg)
    assert not _bars(svg, "bar-read-1-none") and "0" in sized_texts(svg, 9)  # in the column's heading
    assert named(svg, "line", "baseline-read-1-none")  # its baseline still shows where bars would be
    assert "Focus at step 1: content → flat → none → weights (each stage on its own scale)" in texts(svg)


# ---- sequence -------------------------------------------------------------------------------------------
def test_sequence_bits_and_wrong_bits(episode):
    t = 2
    svg = figure(episode, "sequence", t).svg()
    for name, a in [("inputs", episode.inputs), ("targets", episode.targets), ("outputs", episode.outputs)]:
        assert shape(svg, name) == (a.shape[1], episode.steps)
        for s in range(episode.steps):
            for r in range(a.shape[1]):
                assert cell_fill(svg, name, r, s) == unit_colour(abs(float(a[s, r])), (34, 34, 34)), (name, s, r)
    wrong = (episode.outputs > 0.5) != (episode.targets > 0.5)
    outlines = [r for r in ET.fromstring(svg).iter(SVG + "rect") if r.get("stroke") == "#ee0000"]
    assert len(outlines) == wrong.sum()
    marks = named(svg, "rect", "wrong")  # a red mark on every step with a wrong bit
    assert len(marks) == int(wrong.any(-1).sum())
    assert "bit errors" in " ".join(texts(svg))
    # the vectors at t, each on its own scale: the write head's add signed (its max |add|), its erase 0 .. 1
    add = episode.write.add[t, 0]
    scale = float(np.abs(add).max())
    for m in range(episode.width):
        assert cell_fill(svg, "write 1 add", 0, m) == signed_colour(float(add[m]), scale)
        assert cell_fill(svg, "write 1 erase", 0, m) == unit_colour(float(episode.write.erase[t, 0, m]), (34, 34, 34))
        assert cell_fill(svg, "read 1 read", 0, m) == signed_colour(float(episode.reads[t, 0, m]),
                                                                    float(np.abs(episode.reads[t, 0]).max()))
    assert f"±{scale:.3f}" in texts(svg) and "0 .. 1" in texts(svg)
    rows = [n for n in heatmap_names(svg) if n.startswith(("read 1", "write 1"))]
    assert rows == ["read 1 key", "read 1 read", "write 1 key", "write 1 erase", "write 1 add"]


def test_ngrams_sequence_draws_its_cost_per_step():
    ep = _recorded("ngrams-ntm")  # measure: bits above the optimum, a signed cost per step
    scores = ep.step_scores().astype(np.float64)
    assert (scores > 0).any() and (scores < 0).any()
    t = int(np.argmax(np.abs(scores)))
    svg = figure(ep, "sequence", t).svg()
    x, _, pw, _ = _box(heatmap(svg, "outputs").findall(SVG + "rect")[0])
    cw = pw / ep.steps
    bars = named(svg, "rect", "cost")
    nonzero = np.flatnonzero(scores)
    assert len(bars) == len(nonzero)
    (zero,) = named(svg, "line", "cost-zero")
    mid = float(zero.get("y1"))
    scale = np.abs(scores).max()
    half = max(b[3] for b in map(_box, bars))  # the largest cost reaches the strip's edge
    for s, bar in zip(nonzero, bars):
        bx, by, _, bh = _box(bar)
        assert bx == pytest.approx(x + s * cw, abs=1e-3)
        assert bh == pytest.approx(abs(scores[s]) / scale * half, abs=1e-3)
        if scores[s] > 0:  # above the optimum: red, up from the zero line; below: blue, down
            assert bar.get("fill") == "#b2182b" and by + bh == pytest.approx(mid, abs=1e-3)
        else:
            assert bar.get("fill") == "#2166ac" and by == pytest.approx(mid, abs=1e-3)
    words = texts(svg)
    assert "bits above the optimum per prediction, by step" in words
    assert f"+{scale:.3f}" in words and f"−{scale:.3f}" in words
    assert not named(svg, "rect", "wrong") and not [r for r in ET.fromstring(svg).iter(SVG + "rect")
                                                    if r.get("stroke") == "#ee0000"]
    assert any(f"{scores[t]:.3f} bits above the optimum per prediction at this step" in w for w in words)


def test_lstm_episode_draws_its_sequence_only(lstm_episode):
    svg = figure(lstm_episode, "sequence", 0).svg()
    heatmap(svg, "outputs")
    for view in ("memory", "heads", "focus", "slots"):
        with pytest.raises(ConfigError, match="no memory"):
            figure(lstm_episode, view, 0)


# ---- slots ----------------------------------------------------------------------------------------------
def state_colour(v, lo, hi):
    return unit_colour((v - lo) / (hi - lo), DEEP_PURPLE)


def test_slots_view_draws_slot_state_and_matrices(dnc_like):
    ep = dnc_like
    T, N = ep.steps, ep.slots
    t = 3
    svg = figure(ep, "slots", t).svg()
    usage = ep.slot_state["usage"].astype(np.float64)  # [T, N]
    lo, hi = 0.0, usage.max()  # no declared range: its values' span, 0 included
    assert shape(svg, "slot-usage") == (N, T)
    for s in range(T):
        for n in range(N):
            assert cell_fill(svg, "slot-usage", n, s) == state_colour(usage[s, n], lo, hi), (s, n)
    # the values at t as bars, from the range's low end, in proportion
    bars = _bars(svg, "state-usage")
    assert len(bars) == N
    widths = np.array([b[2] for b in bars])
    np.testing.assert_allclose(widths / widths.max(), usage[t] / usage[t].max(), atol=1e-4)
    assert [b[1] for b in bars] == sorted(b[1] for b in bars)  # slot 0 at the top
    assert top_colour(svg, "colour-bar-slot-usage") == DEEP_PURPLE
    # the links at t: rows "from", columns "to", on the max over the episode
    links = ep.slot_matrices["links"].astype(np.float64)
    assert shape(svg, "matrix-links") == (N, N)
    for i in range(N):
        for j in range(N):
            assert cell_fill(svg, "matrix-links", i, j) == state_colour(links[t, i, j], 0.0, links.max()), (i, j)
    assert cell_fill(svg, "matrix-links", 0, 5) != cell_fill(svg, "matrix-links", 5, 0)
    assert {"from", "to", "usage", "links at step 3", f"at step {t}"} <= set(texts(svg))
    # step t marked on the slot x time image
    (mark,) = ET.fromstring(svg).iter(SVG + "polygon")
    x, _, w, _ = _box(heatmap(svg, "slot-usage").findall(SVG + "rect")[0])
    assert float(mark.get("points").split()[0].split(",")[0]) == pytest.approx(x + (t + 0.5) * w / T, abs=1e-3)
    # a time window: only its steps
    windowed = figure(ep, "slots", t, window=(1, 4)).svg()
    assert shape(windowed, "slot-usage") == (N, 3)
    assert cell_fill(windowed, "slot-usage", 2, 0) == state_colour(usage[1, 2], lo, hi)


def test_slot_state_uses_its_declared_range(dnc_like):
    ep = dnc_like
    ep.family = ep.family.with_changes(slot_state=(SlotField("usage", "how used each slot is", range=(0.0, 2.0)),))
    svg = figure(ep, "slots", 1).svg()
    usage = ep.slot_state["usage"]
    for n in range(ep.slots):
        assert cell_fill(svg, "slot-usage", n, 1) == state_colour(float(usage[1, n]), 0.0, 2.0)
    assert "how used each slot is" in texts(svg) and "2.000" in texts(svg)


def test_slots_view_draws_coordinates_with_each_heads_weighting_as_discs(pointer_like):
    from PIL import Image

    ep = pointer_like
    t = 2
    fig = figure(ep, "slots", t)
    svg = fig.svg()
    coords = ep.slot_coords.astype(np.float64)
    w = ep.heads["pointer"].weights[t, 0].astype(np.float64)
    points = named(svg, "circle", "point")
    discs = named(svg, "circle", "disc-pointer-1")
    assert len(points) == len(discs) == ep.slots
    centre = np.array([[float(c.get("cx")), float(c.get("cy"))] for c in points])
    # one scale for x and y, x to the right, y up
    dx, dy = np.ptp(centre[:, 0]), np.ptp(centre[:, 1])
    assert dx / dy == pytest.approx(np.ptp(coords[:, 0]) / np.ptp(coords[:, 1]), rel=1e-3)
    np.testing.assert_allclose((centre[:, 0] - centre[:, 0].min()) / dx,
                               (coords[:, 0] - coords[:, 0].min()) / np.ptp(coords[:, 0]), atol=1e-4)
    np.testing.assert_allclose((centre[:, 1].max() - centre[:, 1]) / dy,
                               (coords[:, 1] - coords[:, 1].min()) / np.ptp(coords[:, 1]), atol=1e-4)
    # a disc around each point, its area in proportion to the weight, in the head's colour
    for n, disc in enumerate(discs):
        assert (float(disc.get("cx")), float(disc.get("cy"))) == pytest.approx(tuple(centre[n]), abs=1e-3)
        assert disc.get("fill") == HEADS[0]
    areas = np.array([float(d.get("r")) ** 2 for d in discs])
    np.testing.assert_allclose(areas / areas.max(), w / w.max(), rtol=1e-3)
    # the PNG paints the largest disc translucent in the head's colour, between its point and its edge
    n = int(np.argmax(w))
    r = float(discs[n].get("r"))
    img = Image.open(io.BytesIO(fig.png(2))).convert("RGB")
    pixel = img.getpixel((round((centre[n, 0] + r * 0.6) * 2), round(centre[n, 1] * 2)))
    assert pixel == pytest.approx(tuple(255 + (c - 255) * 0.45 for c in head_rgb(0)), abs=1.5)
    # labels beside the points, as text
    assert {f"<city {n}>" for n in range(ep.slots)} <= set(texts(svg)) and "&lt;city 0&gt;" in svg
    assert "pointer 1 weighting" in texts(svg)
    # hidden: no discs, the points stay
    hidden = figure(ep, "slots", t, hidden={0}).svg()
    assert not named(hidden, "circle", "disc-pointer-1") and len(named(hidden, "circle", "point")) == ep.slots


def test_slots_view_draws_each_heads_path_through_the_plane_so_far(pointer_like):
    ep = pointer_like
    w = ep.heads["pointer"].weights[:, 0].astype(np.float64)  # [T, N]
    for t in range(ep.steps):
        svg = figure(ep, "slots", t).svg()
        centre = {n: (float(c.get("cx")), float(c.get("cy"))) for n, c in enumerate(named(svg, "circle", "point"))}
        lines = named(svg, "line", "path-pointer-1")
        # the slot of the largest weight at each step 0..t, joined in order, in the head's colour
        expected = [int(np.argmax(w[s])) for s in range(t + 1) if w[s].max() > 0]
        assert len(lines) == max(0, len(expected) - 1)
        for line, (a, b) in zip(lines, zip(expected, expected[1:])):
            assert (float(line.get("x1")), float(line.get("y1"))) == pytest.approx(centre[a], abs=1e-3)
            assert (float(line.get("x2")), float(line.get("y2"))) == pytest.approx(centre[b], abs=1e-3)
            assert line.get("stroke") == HEADS[0]
    # a step where the head weighs nothing (no read there) adds no point to the path
    quiet = ep.heads["pointer"].weights.copy()
    quiet[1] = 0
    assert plane_path(quiet[:, 0], 2) == [int(np.argmax(quiet[0, 0])), int(np.argmax(quiet[2, 0]))]
    assert not named(figure(ep, "slots", 2, hidden={0}).svg(), "line", "path-pointer-1")  # hidden: no path


def test_slots_view_only_when_the_family_declares_slots(episode):
    with pytest.raises(ConfigError, match="^this episode's model .* declares no slot state, slot matrices or "
                                          "slot coordinates, so it has no slots view$"):
        figure(episode, "slots", 0)


def test_the_other_views_draw_episodes_of_other_families(dnc_like, pointer_like):
    for ep in (dnc_like, pointer_like):
        for view in ("memory", "heads", "focus", "sequence"):
            svg = figure(ep, view, 1).svg()
            ET.fromstring(svg)
    svg = figure(dnc_like, "focus", 1).svg()
    for i, key in enumerate(["read-1", "read-2", "write-1"]):
        bars = named(svg, "rect", f"bar-{key}-weights")
        assert bars and {b.get("fill") for b in bars} == {HEADS[i]}
    memory = figure(pointer_like, "memory", 1, diff=True).svg()  # static: the memory itself, said so
    assert "Memory at step 1 (read-only: the same at every step)" in texts(memory)
    assert cell_fill(memory, "memory", 3, 1) == signed_colour(float(pointer_like.memory[3, 1]),
                                                              float(np.abs(pointer_like.memory).max()))


# ---- slot labels ------------------------------------------------------------------------------------------
def test_slot_labels_are_written_in_full_on_the_slot_axis():
    from ntmviz.app.drawing import text_width

    rng = np.random.default_rng(4)
    T, N, M = 2, 4, 3
    long = "sandra journeyed to the bedroom after she picked up the football in the hallway"
    longer = " ".join(["mary travelled back to the garden"] * 6) + " kitchen"
    labels = ["Mary went to the kitchen.", "<b>John</b> & Sandra", long, longer]
    ep = Episode.from_arrays(memory=rng.standard_normal((N, M)), read_weights=_rows(rng, (T, 1, N)),
                             slot_labels=labels)
    for view in ("memory", "heads", "focus"):
        svg = figure(ep, view, 1).svg()
        words = texts(svg)
        assert labels[0] in words and labels[1] in words  # short ones whole, escaped as text
        assert "<b>" not in svg and "&lt;b&gt;John&lt;/b&gt; &amp; Sandra" in svg
        # a label wider than LABEL_ROOM wraps onto a second line, every word kept
        assert LABEL_ROOM < text_width(long, 10) < 1.5 * LABEL_ROOM
        lines = [w for w in words if w and long.startswith(w) or w and long.endswith(w)]
        assert " ".join(lines[:2]) == long and all(text_width(x, 10) <= LABEL_ROOM for x in lines[:2])
        # past two lines: the start and the end kept, the middle left out, the whole on hover
        first = next(w for w in words if longer.startswith(w) and w != longer)
        last = next(w for w in words if w.startswith("… ") and longer.endswith(w[2:]))
        assert last.endswith("garden kitchen") and longer in hovers(svg)
        assert text_width(first, 10) <= LABEL_ROOM and text_width(last, 10) <= LABEL_ROOM


# ---- bad requests, text ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda ep, p: figure(ep, "memory", 6), "step 6 is out of range: this episode has steps 0 to 5"),
    (lambda ep, p: figure(ep, "memory", -1), "out of range"),
    (lambda ep, p: figure(ep, "weights", 0), "unknown view 'weights'"),
    (lambda ep, p: save_figure(ep, "memory", p / "x.jpg", 0), "unknown figure format 'jpg'"),
    (lambda ep, p: figure(ep, "memory", 0).png(scale=0.5), "scale must be between 1 and"),
    (lambda ep, p: figure(ep, "heads", 0, hidden={-1}), "hidden head -1 is out of range"),
])
def test_bad_requests_say_what_is_wrong(episode, tmp_path, call, message):
    with pytest.raises(ConfigError, match=message) as info:
        call(episode, tmp_path)
    assert "\n" not in str(info.value)


def test_text_from_metadata_is_escaped(episode):
    episode.meta["task"] = '<script>alert(1)</script> & "x"'
    svg = figure(episode, "memory", 0).svg()
    ET.fromstring(svg)  # still well-formed XML
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_views_save_at_their_step(episode, tmp_path):
    state = Playback(episode)
    heads, seq = HeadLocationsView(state=state), SequenceView(state=state)
    state.t = 4
    out = heads.save(tmp_path / "heads.svg")
    assert out.read_text() == figure(episode, "heads", 4).svg()
    seq.save(tmp_path / "seq.png", scale=2)
    assert (tmp_path / "seq.png").read_bytes() == figure(episode, "sequence", 4).png(2)


# ---- the command line ---------------------------------------------------------------------------------------
def test_cli_figure_writes_svg_and_png(episode, tmp_path, capsys):
    from ntmviz.cli import main

    path = episode.save(tmp_path / "ep.safetensors")
    assert main(["figure", str(path), "--view", "memory", "--step", "3", "--out", str(tmp_path / "fig.svg")]) == 0
    assert (tmp_path / "fig.svg").read_text() == figure(ntmviz.Episode.load(path), "memory", 3).svg()
    assert main(["figure", str(path), "--view", "heads", "--out", str(tmp_path / "fig.png"), "--scale", "2"]) == 0
    assert (tmp_path / "fig.png").read_bytes() == figure(ntmviz.Episode.load(path), "heads", 5).png(2)  # last step
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args, out, message", [
    (["--view", "memory", "--step", "99"], "fig.svg", "step 99 is out of range: this episode has steps 0 to 5"),
    (["--view", "nope"], "fig.svg", "unknown view 'nope'"),
    (["--view", "memory"], "fig.gif", "unknown figure format 'gif'"),
    (["--view", "memory", "--format", "pdf"], "fig.svg", "unknown figure format 'pdf'"),
    (["--view", "memory", "--scale", "0"], "fig.png", "scale must be between 1 and"),
])
def test_cli_figure_bad_input_is_one_line_and_exit_2(episode, tmp_path, capsys, args, out, message):
    from ntmviz.cli import main

    path = episode.save(tmp_path / "ep.safetensors")
    assert main(["figure", str(path), *args, "--out", str(tmp_path / out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ntmviz: error: ") and message in lines[0], lines
    assert not (tmp_path / out).exists()


def test_cli_figure_of_an_lstm_memory_is_refused(lstm_episode, tmp_path):
    """The real command, in its own process: one line on stderr, exit status 2, no file."""
    path = lstm_episode.save(tmp_path / "lstm.safetensors")
    code = "import sys; from ntmviz.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", code, "figure", str(path), "--view", "memory", "--out",
                           str(tmp_path / "fig.svg")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "has no memory" in done.stderr, done.stderr
    assert not (tmp_path / "fig.svg").exists()


def test_title_can_be_replaced_or_left_out(episode):
    assert "Memory after step 1" in texts(figure(episode, "memory", 1).svg())
    custom = figure(episode, "memory", 1, title="Figure 3: copy, memory").svg()
    assert "Figure 3: copy, memory" in texts(custom) and "Memory after step 1" not in texts(custom)
    assert "Memory after step 1" not in texts(figure(episode, "memory", 1, title="").svg())
