"""An episode of "your own model" (Episode.from_arrays) in real Chromium: a memory network's two
hops as the steps and as named stages, a static memory and slot labels. What is drawn matches
the arrays pixel by pixel (the static memory, the head locations, a focus column per stage),
what the episode lacks is not drawn (no write heads, no "show change", no vectors, no sequence),
and hostile slot labels show as text, never markup. Then the same episode in a served Explorer.
Every non-loopback request is aborted and fails the test."""

from __future__ import annotations

import numpy as np

from _renderer import as_json, head_colour, signed_colour, unit_colour
from ntmviz.app.payload import episode_payload
from ntmviz.episode import Episode

T, N, M = 2, 5, 3
HOSTILE = ["Mary went to the kitchen.", '<img src=x onerror="window.__pwned=1">',
           "<script>window.__pwned=2</script>", "John & Sandra", 'slot "five"']


def own_episode() -> Episode:
    # weights whose colours are not on a rounding edge (255 w is not near k + 0.5)
    hop1 = np.array([0.62, 0.07, 0.09, 0.11, 0.11], np.float32)
    hop2 = np.array([0.04, 0.06, 0.68, 0.13, 0.09], np.float32)
    n = np.arange(N)[:, None] - 2.25  # never zero
    memory = (n * (np.arange(M)[None, :] + 1) / 10).astype(np.float32)  # [N, M], static
    return Episode.from_arrays(memory=memory, read_weights=np.stack([hop1, hop2])[:, None],
                               stages={"hop 1": np.tile(hop1, (T, 1, 1)), "hop 2": np.tile(hop2, (T, 1, 1))},
                               slot_labels=HOSTILE, meta={"task": "babi", "model": "memn2n"})


# every drawn stage's name, in the page and in Panel's shadow roots
STAGES_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-stage')) out.push(el.dataset.stage);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out.sort();
}"""


def test_own_model_episode_draws_what_it_has_and_nothing_else(renderer):
    ep = own_episode()
    renderer.record_texts()
    r = renderer.mount(as_json(episode_payload(ep)), views=["memory", "heads", "focus", "sequence"])
    page = r.page
    # only what the episode has: one read head, no write heads, no vectors, no sequence over time
    assert page.evaluate(STAGES_JS) == ["focus-read-1", "heads-read-1", "memory"]
    assert page.get_by_role("checkbox", name="Show change").count() == 0
    assert "no inputs, outputs or head vectors" in page.evaluate(
        "() => window.__handles.sequence.view.root.textContent")

    # the static memory: the same matrix at every step, in the palette's colours
    g = r.geom("memory")
    scale = float(np.abs(ep.memory).max())
    cells = [(g["x0"] + (m + 0.5) * g["mw"] / M, g["y0"] + (n + 0.5) * g["mh"] / N) for n in range(N) for m in range(M)]
    for t in range(T):
        r.seek(t)
        r.wait(t)
        assert r.pixels("memory", "memory", cells) == [signed_colour(v, scale) for v in ep.memory.ravel()], t
        assert page.evaluate("() => window.__handles.memory.view.title.textContent") == "the same at every step"

    # head locations: the read weight of (hop t, slot n) from white to the head's colour
    g = r.geom("heads")
    points = [(g["x0"] + (t + 0.5) * g["pw"] / T, g["y0"] + (n + 0.5) * g["ph"] / N) for n in range(N) for t in range(T)]
    blue = head_colour(0)
    assert r.pixels("heads", "heads-read-1", points) == [unit_colour(ep.read.weights[t, 0, n], blue)
                                                         for n in range(N) for t in range(T)]

    # focus: a column per stage, in order, then the weights; each bar as long as its weight on its
    # column's own scale (the column's largest weight at t fills it)
    assert page.evaluate("() => window.__handles.focus.view.root.querySelector('.ntmviz-stages').textContent") \
        == "stages: hop 1 → hop 2 → weights, each on its own scale"
    g = r.panel("focus", "focus-read-1")
    room = g["colW"] - 3  # a column's largest weight at t fills it
    row_h = g["ph"] / N
    for t in range(T):
        r.seek(t)
        r.wait(t)
        for j, column in enumerate([ep.read.stages["hop 1"], ep.read.stages["hop 2"], ep.read.weights]):
            x = g["x0"] + j * (g["colW"] + g["gap"]) + 1
            for n in range(N):
                y = g["y0"] + (n + 0.5) * row_h
                row = r.pixels("focus", "focus-read-1", [(x + i + 0.5, y) for i in range(int(g["colW"]) - 1)])
                filled = sum(px == blue for px in row)
                assert abs(filled - column[t, 0, n] / column[t, 0].max() * room) <= 1, (t, j, n, filled)
    # three columns headed by their names, and no fourth: the panel ends after the weights column
    headers = [(x["text"], x["x"]) for x in r.texts("focus-read-1", "back") if x["y"] == 17]
    assert headers == [(name, g["x0"] + j * (g["colW"] + g["gap"]) + 1)
                       for j, name in enumerate(["hop 1", "hop 2", "weights"])], headers
    assert g["width"] < g["x0"] + 4 * (g["colW"] + g["gap"])


def test_hostile_slot_labels_are_text(renderer):
    ep = own_episode()
    r = renderer.mount(as_json(episode_payload(ep)), views=["memory", "heads", "focus"])
    g = r.geom("memory")
    for n, label in enumerate(HOSTILE):
        text = r.hover("memory", "memory", g["x0"] + 0.5 * g["mw"] / M, g["y0"] + (n + 0.5) * g["mh"] / N)
        assert f"slot {n} “{label}”" in text, text
    g = r.geom("heads")
    text = r.hover("heads", "heads-read-1", g["x0"] + 0.5 * g["pw"] / T, g["y0"] + 1.5 * g["ph"] / N)
    assert HOSTILE[1] in text and "hop" not in text, text
    page = r.page
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.evaluate("() => document.querySelectorAll('#root img, #root script').length") == 0
    # the tooltip holds the label as a text node, not as elements
    assert page.evaluate("() => Array.from(document.querySelectorAll('.ntmviz-tip')).every((e) => e.children.length === 0)")


def test_own_model_episode_in_a_served_explorer(browser, browser_helpers, tmp_path):
    path = own_episode().save(tmp_path / "own.safetensors")
    app_file = tmp_path / "own_explorer.py"
    app_file.write_text(
        "import ntmviz.app\n"
        "from ntmviz import Episode\n"
        "from ntmviz.app import Explorer\n"
        "ntmviz.app.extension()\n"
        f"Explorer(Episode.load({str(path)!r})).servable(title='own model')\n")
    served = browser_helpers.serve_app(app_file)
    try:
        context, app = browser_helpers.open_explorer(browser, served)
        try:
            # AppPage records every request off the machine as an error (assert_no_errors)
            assert app.steps() == T
            stages = app.page.evaluate(STAGES_JS)
            assert {"memory", "heads-read-1", "focus-read-1"} <= set(stages), stages
            assert not any(s.startswith(("heads-write", "focus-write")) or s in ("vectors", "sequence")
                           for s in stages), stages
            app.click("Step forward")
            app.wait_painted(step=1)
            assert app.page.evaluate("() => window.__pwned === undefined")
            app.page.wait_for_timeout(300)
            app.assert_no_errors()
        finally:
            context.close()
    finally:
        browser_helpers.stop_app(served)
        served.log_path.unlink(missing_ok=True)
