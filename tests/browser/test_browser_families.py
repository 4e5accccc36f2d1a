"""Every shipped checkpoint of the family of explicit memory (the DNC, neural stacks, queues and
deques, the stack RNN; attention over encoded inputs: encoder-decoders, pointer networks, dynamic
memory networks) in the served explorer, in Chromium with every request off the machine
aborted: pick it in the Checkpoint list, Run, play, scrub; its views paint from its declaration
(its slots view where it has slot state), "What the heads did" lists its family's mechanisms;
and Compare puts a neural stack beside a neural queue on the same reversal input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ntmviz import checkpoint
from ntmviz.shipped import shipped_folder, shipped_names

NEW = ("dnc", "stack", "queue", "deque", "stack_rnn", "seq2seq", "pointer", "dmn")
# The memory views painted in the page (shadow roots pierced): one per side in Compare.
MEMORY_VIEWS_JS = """() => {
  let n = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view') && el.dataset.view === 'memory'
          && Number(el.dataset.frames) >= 1) n++;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return n;
}"""
SHIPPED = [n for n in shipped_names() if checkpoint.load(shipped_folder() / f"{n}.safetensors").config.kind in NEW]


def test_some_are_shipped():
    assert {"allocation-dnc"} <= set(SHIPPED), SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_pick_run_play_and_scrub(browser, browser_helpers, tmp_path, name):
    shots = Path(os.environ.get("NTMVIZ_SCREENSHOTS", tmp_path))
    kind = checkpoint.load(shipped_folder() / f"{name}.safetensors").config.kind
    with browser_helpers.explorer_on(browser, ("copy-ntm", name), tmp_path / "checkpoints",
                                     viewport=(1400, 1000)) as (app, explorer):
        page = app.page
        page.get_by_role("combobox", name="Checkpoint").select_option(label=f"{name}.safetensors")
        app.click("Run")
        app.wait(lambda _: explorer.state.episode is not None and explorer.state.episode.family.name == kind,
                 f"the {name} episode", timeout=120)
        episode = explorer.state.episode
        steps = episode.steps
        app.wait_painted(steps=steps, timeout=120)
        if episode.slot_state:
            app.wait(lambda v: v["slots"]["frames"] >= 1 and v["slots"]["steps"] == steps, "the slots view")
        # play: the step moves on; pause: it stops
        start = app.step()
        app.click("Play")
        app.wait(lambda v: v["player"]["step"] != start, "playing")
        app.click("Pause")
        paused = app.wait(lambda v: v["player"]["playing"] is False and v["player"]["step"], "paused")
        # scrub: every view follows the slider
        target = max(0, min(steps - 1, paused // 2))
        app.set_slider(target)
        app.wait(lambda v: {v[n]["step"] for n in ("player", "memory", "heads", "focus", "sequence")} == {target},
                 "every view at the scrubbed step")
        assert explorer.state.t == target or app.wait(lambda _: explorer.state.t == target, "the server's step")
        # what the heads did: this family's own mechanisms, line by line
        rows = explorer.mechanisms.rows()
        panel = page.get_by_role("region", name="What the heads did")
        if rows:
            app.wait(lambda _: panel.get_by_role("listitem").count() == len(rows), "the mechanisms' lines")
        page.screenshot(path=str(shots / f"family-{name}.png"))
        app.assert_no_errors()


@pytest.mark.skipif(not {"reversal-stack", "reversal-queue"} <= set(SHIPPED), reason="needs both shipped")
def test_compare_a_stack_and_a_queue_on_one_reversal_input(browser, browser_helpers, tmp_path):
    with browser_helpers.explorer_on(browser, ("reversal-stack", "reversal-queue"), tmp_path / "checkpoints",
                                     viewport=(1400, 1000)) as (app, explorer):
        page = app.page
        page.locator(".bk-tab", has_text="Compare").first.click()
        app.button("Compare").wait_for()
        page.get_by_label("Left", exact=True).select_option(label="reversal-stack.safetensors")
        page.get_by_label("Right", exact=True).select_option(label="reversal-queue.safetensors")
        app.click("Compare")
        compare = explorer.compare
        app.wait(lambda _: compare.left.episode is not None and compare.right.episode is not None
                 and {compare.left.episode.family.name, compare.right.episode.family.name} == {"stack", "queue"},
                 "a stack beside a queue", timeout=120)
        left, right = compare.left.episode, compare.right.episode
        assert (left.inputs == right.inputs).all()  # the same reversal input on both sides
        assert left.meta["task"] == right.meta["task"] == "reversal"
        page.wait_for_function(MEMORY_VIEWS_JS.replace("return n;", "return n >= 2;"), timeout=120_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(os.environ.get("NTMVIZ_SCREENSHOTS", tmp_path)) / "compare-stack-queue.png"))
        app.assert_no_errors()
