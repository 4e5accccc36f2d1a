"""Figures draw the same data as the screen, checked in Chromium: palette.py's tables equal
palette.js's entry by entry; a memory cell's fill in the SVG equals the pixel the renderer paints
for that cell at the same step (and a head-location cell, and the bits of the sequence); the
app's "Save figure as SVG / PNG" buttons download the view at the step on screen. Also the
notebook fallback's claim: a live view that Python answered removes the hidden rendering, and
without an answer the rendering shows and plays."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "app"))

from _renderer import as_json  # noqa: E402

from ntmviz.app import palette  # noqa: E402
from ntmviz.app.figures import figure  # noqa: E402
from ntmviz.app.payload import episode_payload  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def _cell_fill(svg, name, r, c):
    from test_figures import cell_fill

    return cell_fill(svg, name, r, c)


@pytest.fixture(scope="module")
def recorded():
    """A trained model's episode (the shipped copy checkpoint, length 6): real memory values."""
    from ntmviz.app.sources import load_source, record_episode

    return record_episode(load_source("copy-ntm"), length=6, seed=3)


def test_python_palettes_are_the_renderers(renderer):
    tables = renderer.page.evaluate("""async (colours) => {
        const p = await import('/palette.js');
        const rgb = (lut) => Array.from(lut, (w) => p.unpack(w));
        return {diverging: rgb(p.DIVERGING), greys: rgb(p.GREYS), state: rgb(p.STATE),
                heads: colours.map((c) => rgb(p.headLUT(c)))}; }""", list(palette.HEAD_COLOURS))
    assert np.array_equal(np.array(tables["diverging"]), palette.DIVERGING)
    assert np.array_equal(np.array(tables["greys"]), palette.GREYS)
    assert np.array_equal(np.array(tables["state"]), palette.STATE)
    assert len(palette.HEAD_COLOURS) == 12
    for i in range(12):
        assert np.array_equal(np.array(tables["heads"][i]), palette.head_ramp(i)), i


def test_svg_cells_are_the_pixels_on_screen(renderer, recorded):
    ep = recorded
    r = renderer.mount(as_json(episode_payload(ep)), views=["memory", "heads", "sequence"])
    t = 7
    r.seek(t)
    # memory: every cell of the figure at step t is the pixel the memory view paints for it
    g = r.geom("memory")
    N, M = ep.slots, ep.width
    svg = figure(ep, "memory", t).svg()
    # (rows next to a head's focus are left out: its outline is drawn over them, on screen and in the SVG)
    focused = {int(np.argmax(rec.weights[t, 0])) + d for rec in (ep.read, ep.write) for d in (-1, 0, 1)}
    cells = [(n, m) for n in range(N) if n not in focused for m in range(M)]
    points = [(g["x0"] + (m + 0.5) * g["mw"] / M, g["y0"] + (n + 0.5) * g["mh"] / N) for n, m in cells]
    screen = r.pixels("memory", "memory", points)
    assert [_cell_fill(svg, "memory", n, m) for n, m in cells] == screen
    assert len(set(screen)) > 20  # a trained memory: many colours, not a blank
    # head locations: the write head's weighting over time (a step other than the marked one)
    hg = r.geom("heads")
    rows = hg["rows"]
    zoomed = r.page.evaluate("() => window.__handles.heads.view.rows")
    svg_h = figure(ep, "heads", t).svg()
    heat = next(g_ for g_ in ET.fromstring(svg_h).iter(SVG + "g") if g_.get("data-heatmap") == "heads-write-1")
    assert int(heat.get("data-rows")) == rows and (zoomed is None) == (rows == ep.slots)
    cells = [(i, s) for i in range(rows) for s in range(ep.steps) if s != t]
    points = [(hg["x0"] + (s + 0.5) * hg["pw"] / ep.steps, hg["y0"] + (i + 0.5) * hg["ph"] / rows) for i, s in cells]
    assert [_cell_fill(svg_h, "heads-write-1", i, s) for i, s in cells] == r.pixels("heads", "heads-write-1", points)
    # sequence: the outputs' bits
    sg = r.page.evaluate("() => window.__handles.sequence.view.geom")
    b = sg["blocks"]["outputs"]
    svg_s = figure(ep, "sequence", t).svg()
    cells = [(o, s) for o in range(ep.outputs.shape[1]) for s in range(ep.steps) if s != t]
    points = [(sg["x0"] + (s + 0.5) * sg["pw"] / ep.steps, b["y"] + (o + 0.5) * sg["cellH"]) for o, s in cells]
    assert [_cell_fill(svg_s, "outputs", o, s) for o, s in cells] == r.pixels("sequence", "sequence", points)


def test_app_buttons_download_the_view_at_the_step_on_screen(browser, browser_helpers, explorer_server, tmp_path):
    from PIL import Image

    context, app = browser_helpers.open_explorer(browser, explorer_server)
    try:
        page = app.page
        app.set_slider(5)
        app.wait_painted(step=5)
        memory = page.locator(".ntmviz-view[data-view=memory]")
        with page.expect_download(timeout=120_000) as info:
            memory.get_by_role("button", name="Save figure as SVG").click()
        download = info.value
        assert download.suggested_filename.endswith("-memory-step5.svg"), download.suggested_filename
        svg_path = tmp_path / download.suggested_filename
        download.save_as(svg_path)
        svg = svg_path.read_text()
        assert "Memory after step 5" in svg
        # the figure's cells are the screen's pixels at step 5
        geom = page.evaluate("""() => { for (const g of Object.values(window.__ntmviz.groups)) for (const v of g.views)
            if (v.kind === 'memory' && v.geom) return {g: v.geom, N: v.ep.N, M: v.ep.M}; }""")
        g, N, M = geom["g"], geom["N"], geom["M"]
        # every cell but the rows next to a head's focus (its outline is drawn over them)
        best = page.evaluate("""() => { for (const g of Object.values(window.__ntmviz.groups)) for (const v of g.views) {
            if (v.kind !== 'memory' || !v.geom) continue;
            const t = g.t, c = Math.floor(t / v.ep.K), chunk = v.ep.chunks.get(c), out = [];
            for (const kind of ['read', 'write']) {
              const a = chunk[kind + '.weights'], [, H, D] = a.shape, i = t - c * v.ep.K;
              for (let h = 0; h < H; h++) {
                const w = a.data.subarray((i * H + h) * D, (i * H + h + 1) * D);
                let b = 0; for (let n = 1; n < D; n++) if (w[n] > w[b]) b = n;
                out.push(b); } }
            return out; } }""")
        focused = {b + d for b in best for d in (-1, 0, 1)}
        cells = [(n, m) for n in range(N) if n not in focused for m in range(M)]
        pixels = page.evaluate("""(pts) => { for (const gr of Object.values(window.__ntmviz.groups)) for (const v of gr.views) {
            if (v.kind !== 'memory' || !v.geom) continue;
            const c = v.stage.fg.canvas, ctx = c.getContext('2d'), dpr = c.width / parseFloat(c.style.width);
            return pts.map(([x, y]) => Array.from(ctx.getImageData(Math.floor(x * dpr), Math.floor(y * dpr), 1, 1).data.slice(0, 3))); } }""",
                               [[g["x0"] + (m + 0.5) * g["mw"] / M, g["y0"] + (n + 0.5) * g["mh"] / N] for n, m in cells])
        assert [list(_cell_fill(svg, "memory", n, m)) for n, m in cells] == pixels
        # the heads view's PNG, at 3x the figure's size
        with page.expect_download(timeout=120_000) as info:
            page.locator(".ntmviz-view[data-view=heads]").get_by_role("button", name="Save figure as PNG").click()
        png = tmp_path / "heads.png"
        info.value.save_as(png)
        assert info.value.suggested_filename.endswith("-heads-step5.png")
        img = Image.open(png)
        assert img.size[0] > 1500 and round(img.info["dpi"][0]) == 288
        app.assert_no_errors()
    finally:
        context.close()


OUTPUT_JS = """async ([payload, wait, claim]) => {
  const m = await import('/ntmviz.js');
  const box = document.createElement('div');
  box.dataset.ntmvizOutput = 'tok';
  const live = document.createElement('div');
  live.className = 'ntmviz-live';
  const host = document.createElement('div');
  live.append(host);
  const inner = host.attachShadow({mode: 'open'});
  const el = document.createElement('div');
  inner.append(el);
  const off = document.createElement('div');
  off.className = 'ntmviz-offline';
  off.style.display = 'none';
  const data = document.createElement('script');
  data.type = 'application/json';
  data.className = 'ntmviz-offline-data';
  data.textContent = JSON.stringify([{views: ['memory', 'heads'], diff: false, title: null, payload}]);
  off.append(data);
  box.append(live, off);
  document.getElementById('root').append(box);
  window.__live = live;
  m.offlineFallback(box, wait);
  if (claim) m.claimOutput(el);  // what a live view does when its Python side answers
  return true;
}"""


def test_a_live_view_that_python_answers_claims_its_output(renderer, recorded):
    page = renderer.page
    page.evaluate("() => { window.Bokeh = {Panel: {}}; }")  # as in a live notebook: Bokeh is loaded
    page.evaluate(OUTPUT_JS, [as_json(episode_payload(recorded)), 300, True])
    page.wait_for_timeout(1200)
    assert page.evaluate("() => document.querySelector('.ntmviz-offline')") is None
    assert page.evaluate("() => document.querySelectorAll('.ntmviz-view').length") == 0
    assert page.evaluate("() => window.__live.style.display") == ""


def test_without_an_answer_the_fallback_shows_and_plays(renderer, recorded):
    page = renderer.page
    page.evaluate(OUTPUT_JS, [as_json(episode_payload(recorded)), 60_000, False])  # no Bokeh: shows early
    page.locator(".ntmviz-offline .ntmviz-view[data-view=heads][data-frames]").wait_for(timeout=10_000)
    assert page.evaluate("() => window.__live.style.display") == "none"
    views = page.evaluate("() => Array.from(document.querySelectorAll('.ntmviz-offline .ntmviz-view'), (v) => v.dataset.view)")
    assert views == ["player", "memory", "heads"]
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => Number(document.querySelector('.ntmviz-offline [data-view=memory]').dataset.step) >= 3")
