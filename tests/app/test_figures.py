"""Figures for papers draw the episode's data in the screen's palette: a memory cell's fill in the
SVG (and its pixel in the PNG) is the palette colour of memory[t+1] at that cell on the episode's
scale; head-location cells are the head's ramp of its weight; focus bars are as long as the
weights; the sequence outlines exactly the wrong bits. Bad requests fail with one line.

The reference colours here are computed from the palette's definition (payload.py and
static/palette.js headers), not from ntmviz.app.palette, so a wrong palette fails."""

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
from ntmviz.app import HeadLocationsView, MemoryView, Playback, SequenceView
from ntmviz.app.figures import figure, save_figure
from ntmviz.app.payload import EpisodePayload, decode_array, slot_pixels
from ntmviz.errors import ConfigError

SVG = "{http://www.w3.org/2000/svg}"
ZERO = 127
NEGATIVE, MIDDLE, POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)
READ, WRITE = (0x1F, 0x6F, 0xB4), (0xD6, 0x27, 0x28)


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


# ---- reading an SVG back ----------------------------------------------------------------------------
def heatmap(svg: str, name: str):
    root = ET.fromstring(svg)
    for g in root.iter(SVG + "g"):
        if g.get("data-heatmap") == name:
            return g
    raise AssertionError(f"no heatmap {name!r} in the SVG")


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


# ---- memory ---------------------------------------------------------------------------------------------
def test_memory_svg_cells_are_the_palette_colour_of_memory_after_step_t(episode):
    t = 3
    svg = figure(episode, "memory", t).svg()
    scale = float(np.abs(episode.memory).max())
    N, M = episode.slots, episode.width
    g = heatmap(svg, "memory")
    assert (int(g.get("data-rows")), int(g.get("data-cols"))) == (N, M)
    for n in range(N):
        for m in range(M):
            assert cell_fill(svg, "memory", n, m) == signed_colour(float(episode.memory[t + 1, n, m]), scale), (n, m)
    # a colour bar and labelled axes
    heatmap(svg, "colour-bar")
    texts = [e.text for e in ET.fromstring(svg).iter(SVG + "text")]
    assert "slot" in texts and "width" in texts and "value" in texts
    assert f"Memory after step {t}" in texts


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
    w = episode.write.weights[t, 0]
    for n in range(episode.slots):
        assert cell_fill(svg, "strip-write-1", n, 0) == unit_colour(float(w[n]), WRITE)
    best = int(np.argmax(w))
    x, y = cell_centre(svg, "memory", best, 0)
    outlined = [r for r in ET.fromstring(svg).iter(SVG + "rect")
                if r.get("stroke") == "#d62728" and float(r.get("y")) < y < float(r.get("y")) + float(r.get("height"))]
    assert len(outlined) == 1


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
    assert int(heatmap(svg, "memory").get("data-rows")) == D == 420
    plan = EpisodePayload(ep, ["memory"], step_budget=None)
    screen = decode_array(plan.chunk(0)["memory"])[t + 1]  # what the browser paints, [D, M]
    scale = plan.scales["memory"]
    for r in (0, 17, 211, 419):
        for m in range(3):
            assert cell_fill(svg, "memory", r, m) == signed_colour(float(screen[r, m]), scale)


# ---- head locations ------------------------------------------------------------------------------------
def test_head_locations_cells_are_each_weight_in_the_heads_colour(other_episode):
    ep = other_episode  # two read heads, N = 11: no pooling, no zoom
    svg = figure(ep, "heads", 4, zoom=False).svg()
    for name, kind, h, end in [("heads-read-1", "read", 0, READ), ("heads-read-2", "read", 1, (0x2A, 0x9D, 0x4B)),
                               ("heads-write-1", "write", 0, WRITE)]:
        w = getattr(ep, kind).weights[:, h]  # [T, N]
        g = heatmap(svg, name)
        assert (int(g.get("data-rows")), int(g.get("data-cols"))) == (ep.slots, ep.steps)
        for s in range(ep.steps):
            for n in range(ep.slots):
                assert cell_fill(svg, name, n, s) == unit_colour(float(w[s, n]), end), (name, s, n)
    texts = [e.text for e in ET.fromstring(svg).iter(SVG + "text")]
    assert {"step", "slot", "weight"} <= set(texts)


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
        assert int(heatmap(zoomed, "heads-read-1").get("data-rows")) == len(busy)
        w = episode.read.weights[:, 0]
        for i, n in enumerate(busy):
            assert cell_fill(zoomed, "heads-read-1", i, 0) == unit_colour(float(w[0, n]), READ)


# ---- focus ----------------------------------------------------------------------------------------------
def test_focus_bars_are_as_long_as_the_weights(episode):
    t = 1
    fig = figure(episode, "focus", t)
    blue = [r for r in ET.fromstring(fig.svg()).iter(SVG + "rect") if r.get("fill") == "#1f6fb4"]
    N = episode.slots
    col_w = 48
    # the read head's four stage columns come first, each a bar per slot whose weight > 0.002
    expected = []
    for stage in ("content", "gated", "shifted", "weights"):
        w = getattr(episode.read, stage)[t, 0]
        expected += [min(1.0, float(v)) * (col_w - 2) for v in w if v > 0.002]
    widths = [float(r.get("width")) for r in blue[: len(expected)]]
    assert widths == pytest.approx(expected, abs=2e-3)
    texts = " ".join(e.text for e in ET.fromstring(fig.svg()).iter(SVG + "text"))
    assert f"{float(episode.read.gate[t, 0]):.3f}" in texts and "shift" in texts
    assert N == 7


# ---- sequence -------------------------------------------------------------------------------------------
def test_sequence_bits_and_wrong_bits(episode):
    t = 2
    svg = figure(episode, "sequence", t).svg()
    for name, a in [("inputs", episode.inputs), ("targets", episode.targets), ("outputs", episode.outputs)]:
        for s in range(episode.steps):
            for r in range(a.shape[1]):
                assert cell_fill(svg, name, r, s) == unit_colour(abs(float(a[s, r])), (34, 34, 34)), (name, s, r)
    wrong = ((episode.outputs > 0.5) != (episode.targets > 0.5)).sum()
    outlines = [r for r in ET.fromstring(svg).iter(SVG + "rect") if r.get("stroke") == "#ee0000"]
    assert len(outlines) == wrong
    # the vectors at t: the write head's add in the signed palette (scale max(1, max |add|))
    add = episode.write.add[t, 0]
    scale = max(1.0, float(np.abs(add).max()))
    for m in range(episode.width):
        assert cell_fill(svg, "write 1 add", 0, m) == signed_colour(float(add[m]), scale)


def test_lstm_episode_draws_its_sequence_only(lstm_episode):
    svg = figure(lstm_episode, "sequence", 0).svg()
    heatmap(svg, "outputs")
    for view in ("memory", "heads", "focus"):
        with pytest.raises(ConfigError, match="no memory"):
            figure(lstm_episode, view, 0)


# ---- bad requests, text ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda ep, p: figure(ep, "memory", 6), "step 6 is out of range: this episode has steps 0 to 5"),
    (lambda ep, p: figure(ep, "memory", -1), "out of range"),
    (lambda ep, p: figure(ep, "weights", 0), "unknown view 'weights'"),
    (lambda ep, p: save_figure(ep, "memory", p / "x.jpg", 0), "unknown figure format 'jpg'"),
    (lambda ep, p: figure(ep, "memory", 0).png(scale=0.5), "scale must be between 1 and"),
])
def test_bad_requests_say_what_is_wrong(episode, tmp_path, call, message):
    with pytest.raises(ConfigError, match=message):
        call(episode, tmp_path)


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
    texts = lambda svg: [e.text for e in ET.fromstring(svg).iter(SVG + "text")]  # noqa: E731
    assert "Memory after step 1" in texts(figure(episode, "memory", 1).svg())
    custom = figure(episode, "memory", 1, title="Figure 3: copy, memory").svg()
    assert "Figure 3: copy, memory" in texts(custom) and "Memory after step 1" not in texts(custom)
    assert "Memory after step 1" not in texts(figure(episode, "memory", 1, title="").svg())
