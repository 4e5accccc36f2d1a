"""Every shipped checkpoint of the family of explicit memory (the DNC, neural stacks, queues and
deques, the stack RNN; attention over encoded inputs: encoder-decoders, pointer networks, dynamic
memory networks) in the served explorer, in Chromium with every request off the machine
aborted: pick it in the Checkpoint list, Run, play, scrub; its views paint from its declaration
(its slots view where it has slot state), "What the heads did" lists its family's mechanisms;
and Compare puts a neural stack beside a neural queue on the same reversal input, the NTM beside
the DNC on one copy input, attention beside none on one symbol reversal, a memory network beside
a DMN on one story, and a pointer network beside its fixed-vocabulary baseline on one list of numbers."""

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
        paused = app.wait(lambda v: v["player"]["playing"] is False and v["player"], "paused")["step"]
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


PAIRS = [("reversal-stack", "reversal-queue", "reversal", {"stack", "queue"}, "compare-stack-queue.png"),
         ("copy-ntm", "copy-dnc", "copy", {"ntm", "dnc"}, "compare-ntm-dnc.png"),
         ("symbol_reversal-attention", "symbol_reversal-no_attention", "symbol_reversal", {"seq2seq"},
          "compare-attention.png"),
         ("babi_single-memn2n", "babi_single-dmn", "babi_single", {"memn2n", "dmn"}, "compare-memn2n-dmn.png"),
         ("sort_numbers-pointer", "sort_numbers-seq2seq", "sort_numbers", {"pointer"}, "compare-pointer-seq2seq.png")]


@pytest.mark.parametrize("left_name, right_name, task, kinds, shot", PAIRS, ids=[p[2] for p in PAIRS])
def test_compare_two_memories_on_one_input(browser, browser_helpers, tmp_path, left_name, right_name, task, kinds,
                                           shot):
    """A stack beside a queue on one reversal input; the NTM beside the DNC on one copy input;
    attention beside none on one symbol reversal; a memory network beside a DMN on one story; a
    pointer network beside the encoder-decoder that answers over positions as words."""
    with browser_helpers.explorer_on(browser, (left_name, right_name), tmp_path / "checkpoints",
                                     viewport=(1400, 1000)) as (app, explorer):
        page = app.page
        page.locator(".bk-tab", has_text="Compare").first.click()
        app.button("Compare").wait_for()
        page.get_by_label("Left", exact=True).select_option(label=f"{left_name}.safetensors")
        page.get_by_label("Right", exact=True).select_option(label=f"{right_name}.safetensors")
        app.click("Compare")
        compare = explorer.compare
        app.wait(lambda _: compare.left.episode is not None and compare.right.episode is not None
                 and {compare.left.episode.family.name, compare.right.episode.family.name} == kinds,
                 f"{left_name} beside {right_name}", timeout=120)
        left, right = compare.left.episode, compare.right.episode
        if left.inputs is None:  # stories answered in passes keep no per-step input: the same story
            assert right.inputs is None and left.slot_labels == right.slot_labels
            assert left.meta["question"] == right.meta["question"]
        else:
            assert (left.inputs == right.inputs).all()  # the same input on both sides
        assert left.meta["task"] == right.meta["task"] == task
        drawn = sum(e.family.has_memory for e in (left, right))  # attention's memory beside none
        page.wait_for_function(MEMORY_VIEWS_JS.replace("return n;", f"return n >= {drawn};"), timeout=120_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(os.environ.get("NTMVIZ_SCREENSHOTS", tmp_path)) / shot))
        app.assert_no_errors()


TYPED = [("dates-attention", "31 february 2001", "february 2001 has 28 days", "March 3rd, 1999"),
         ("sort_numbers-pointer", "0.5, 1.7", "1.7", "0.42, 0.07, 0.91, 0.3"),
         ("anbn-stack_rnn", "aabbb", "'aabbb' is not a string of a^n b^n", "aaaabbbb ab"),
         ("convex_hull-pointer", "0.1,0.2\n0.5,0.9", "at least 3",
          "0.1,0.1\n0.9,0.15\n0.5,0.5\n0.85,0.9\n0.2,0.8\n0.45,0.3\n0.6,0.7\n0.3,0.55\n0.7,0.4\n0.15,0.45"),
         ("tsp-pointer", "0.1,0.2\n0.5,0.9", "a tour needs at least 3 points",
          "0.1,0.1\n0.9,0.2\n0.5,0.5\n0.4,0.95\n0.7,0.8\n0.2,0.6"),
         ("babi_single-dmn", "bob went to the kitchen. where is bob?", "'bob' is not a name babi_single knows",
          "Mary went to the kitchen.\nJohn moved to the garden.\nMary travelled to the office.\nWhere is Mary?")]


@pytest.mark.parametrize("name, bad, words, good", TYPED, ids=[t[0] for t in TYPED])
def test_type_an_input_and_watch_it(browser, browser_helpers, tmp_path, name, bad, words, good):
    """A typed input the task cannot take is a message under the field, the episode kept; one it
    can take is recorded and plays."""
    with browser_helpers.explorer_on(browser, ("copy-ntm", name), tmp_path / "checkpoints") as (app, explorer):
        page = app.page
        page.get_by_role("combobox", name="Checkpoint").select_option(label=f"{name}.safetensors")
        app.show_files()
        box = page.get_by_label("Or type an input", exact=True)
        box.fill(bad)
        before = explorer.state.episode
        app.click("Run")
        alert = page.get_by_role("alert").filter(has_text=words).first
        alert.wait_for(timeout=60_000)
        assert explorer.state.episode is before
        box.fill(good)
        app.click("Run")
        app.wait(lambda _: explorer.state.episode is not before
                 and explorer.state.episode.meta.get("pattern") == good, "the typed input's episode", timeout=120)
        episode = explorer.state.episode
        app.wait_painted(steps=episode.steps, timeout=120)
        app.click("Play")
        app.wait(lambda v: v["player"]["step"] >= 1, "playing")
        app.click("Pause")
        app.assert_no_errors()
