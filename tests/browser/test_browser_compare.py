"""Compare in Chromium: the two sides play as one. A step taken in the browser moves every view
of both sides to the same step, with no server round trip between them (one group)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKPOINTS = HERE.parent.parent / "checkpoints"

# [view kind, step, playback group] of every painted view of the page, through Panel's shadow roots
STEPS_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view') && el.dataset.frames)
        out.push([el.dataset.view, Number(el.dataset.step), el.dataset.group]);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""


def test_a_step_moves_every_view_of_both_sides_to_the_same_step(browser, browser_helpers):
    from ntmviz.app.compare import Compare
    from ntmviz.app.sources import load_source, record_episode

    left = record_episode(load_source(CHECKPOINTS / "copy-ntm.safetensors"), length=6, seed=2)
    right = record_episode(load_source(CHECKPOINTS / "copy-lstm.safetensors"), length=6, seed=2)
    with browser_helpers.page_on(browser, lambda: Compare(left, right, titles=("NTM", "LSTM"))) as app:
        page = app.page

        def steps_are(step):
            views = page.evaluate(STEPS_JS)
            return len(views) >= 4 and {s for _, s, _ in views} == {step}

        opening = left.opening_step()  # both sides open where the left episode is worth seeing
        assert opening > 0
        app.wait(lambda _: steps_are(opening), f"both sides painted at step {opening}")
        views = page.evaluate(STEPS_JS)
        kinds = [k for k, _, _ in views]
        # every view for the NTM; the LSTM has no memory, so only its sequence (and one Player for both)
        assert kinds.count("sequence") == 2 and kinds.count("player") == 1, kinds
        assert all(kinds.count(k) >= 1 for k in ("memory", "focus", "heads")), kinds
        assert len({g for _, _, g in views}) == 1, views  # one group: they move together in the browser
        page.keyboard.press("Home")
        app.wait(lambda _: steps_are(0), "every view of both sides at step 0")
        for key, step in (("ArrowRight", 1), ("ArrowRight", 2), ("ArrowLeft", 1)):
            page.keyboard.press(key)  # the keys move the page's playback group: both sides
            app.wait(lambda _: steps_are(step), f"every view of both sides at step {step}")
        app.assert_no_errors()
