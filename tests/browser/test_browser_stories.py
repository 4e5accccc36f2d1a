"""A memory network in the served explorer, in Chromium with every request off the machine
aborted (and failing the test): the shipped story checkpoint is in the Checkpoint list, Run
records a story, and the page shows its hops as the steps, its sentences as the slots (as text),
the question with the answer and the model's answer, and counts wrong answers, not bits."""

from __future__ import annotations

import os
from pathlib import Path

NAMES = ("copy-ntm", "babi_single-memn2n")


def test_a_story_checkpoint_runs_and_shows_its_sentences(browser, browser_helpers, tmp_path):
    shots = Path(os.environ.get("NTMVIZ_SCREENSHOTS", tmp_path))
    with browser_helpers.explorer_on(browser, NAMES, tmp_path / "checkpoints", viewport=(1400, 1100)) as (app, explorer):
        page = app.page
        page.get_by_role("combobox", name="Checkpoint").select_option(label="babi_single-memn2n.safetensors")
        app.wait(lambda _: explorer.sources.length.value == "10", "the story checkpoint's default size")
        # (Enter in a field runs at once: here both are filled first, then Run)
        for label, value in (("Length", "6"), ("Seed", "4")):
            page.get_by_role("textbox", name=label).fill(value)
        page.get_by_role("textbox", name="Seed").press("Tab")
        app.wait(lambda _: explorer.sources.length.value == "6" and explorer.sources.seed.value == "4", "the fields")
        app.click("Run")
        app.wait(lambda _: explorer.state.episode.meta.get("task") == "babi_single", "the story episode")
        ep = explorer.state.episode
        hops, sentences = ep.steps, ep.slot_labels
        assert hops == 3 and len(sentences) == 6 and ep.meta["seed"] == 4
        # it opens on the step worth seeing: the answer's hop, the only one scored
        assert ep.opening_step() == hops - 1
        app.wait_painted(step=hops - 1, steps=hops, timeout=120)

        # the question, the answer and the model's answer, as text
        question = ep.meta["question"]
        page.get_by_text(f"question '{question}', answer {ep.meta['answer']}, "
                         f"model's answer {ep.meta['model_answer']}", exact=False).first.wait_for()

        # each memory slot is a sentence (the tooltips' text is checked in test_browser_own_model)
        assert sentences == explorer.sources.get_source().task.story_text(
            explorer.sources.get_source().task.at(6).sample(1, seed=4), 0)[0]

        # the last hop is the answer: scored as a right or wrong answer, not in bits
        app.click("First step")
        app.wait_painted(step=0, steps=hops)
        assert sequence_title(page) == f"step 0: not scored; {int(ep.errors()[-1])} in the episode"
        app.click("Step forward")
        app.click("Step forward")
        app.wait_painted(step=hops - 1, steps=hops)
        wrong = int(ep.errors()[-1])
        title = sequence_title(page)
        assert title == f"step {hops - 1}: {wrong} wrong answer{'' if wrong == 1 else 's'} at this step; {wrong} in the episode", title
        # what the hops did: the supporting-fact line, as the server measured it
        panel = page.get_by_role("region", name="What the heads did")
        [row] = explorer.mechanisms.rows()
        assert row["name"] == "support" and row["met"] == (int(ep.read.weights.mean((0, 1)).argmax())
                                                           in ep.meta["supporting"])
        app.wait(lambda _: "hops attend to a supporting fact" in panel.inner_text(), "the support line")
        assert f"supporting facts {ep.meta['supporting']}" in panel.inner_text()
        page.screenshot(path=str(shots / "story-explorer.png"))
        app.assert_no_errors()


def sequence_title(page) -> str:
    """The sequence view's subtitle (in the page or a Panel shadow root)."""
    return page.evaluate("""() => {
      const walk = (root) => {
        for (const el of root.querySelectorAll('*')) {
          if (el.classList && el.classList.contains('ntmviz-view') && el.dataset.view === 'sequence') {
            return el.querySelector('.ntmviz-subtitle').textContent;
          }
          if (el.shadowRoot) { const got = walk(el.shadowRoot); if (got !== null) return got; }
        }
        return null;
      };
      return walk(document);
    }""")
