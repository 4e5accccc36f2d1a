"""The "What the heads did" panel in the served explorer, in Chromium with every request off the
machine aborted (and failing the test): it shows the current episode's mechanisms line by line,
exactly as the server-side view computed them, follows Run to another checkpoint, and says
"no memory" for an LSTM baseline."""

from __future__ import annotations

import os
from pathlib import Path

NAMES = ("copy-ntm", "associative_recall-ntm", "copy-lstm")
MARKS = {True: "\u2713", False: "\u2717", None: "\u2013"}


def expected_lines(view) -> list[str]:
    """What each line of the panel reads, from the server-side view's rows."""
    lines = []
    for r in view.rows():
        target = f" (target {r['target']})" if r["met"] is False and r["kind"] == "mean" else ""
        lines.append(f"{MARKS[r['met']]}{r['title']}: {r['note']}{target}")
    return lines


def squash(s: str) -> str:
    return " ".join(s.split())


def test_the_panel_shows_what_the_heads_did(browser, browser_helpers, tmp_path):
    shots = Path(os.environ.get("NTMVIZ_SCREENSHOTS", tmp_path))
    with browser_helpers.explorer_on(browser, NAMES, tmp_path / "checkpoints", viewport=(1400, 1000)) as (app, explorer):
        page = app.page
        panel = page.get_by_role("region", name="What the heads did")
        items = panel.get_by_role("listitem")

        def shown() -> list[str]:
            return [squash(t) for t in items.all_inner_texts()]

        # the shipped copy checkpoint: one line per mechanism, as the view computed them
        assert explorer.state.episode.meta["task"] == "copy"
        want = [squash(s) for s in expected_lines(explorer.mechanisms)]
        assert len(want) == 6
        app.wait(lambda _: shown() == want, "the copy episode's mechanisms")
        assert "parts of the paper's copy algorithm show in this episode" in panel.inner_text()
        assert items.nth(2).get_attribute("data-mechanism") == "playback_start"
        assert items.nth(2).get_attribute("data-met") == "true"
        page.screenshot(path=str(shots / "mechanisms-copy.png"))

        # Run the recall checkpoint: the panel follows the new episode
        page.get_by_role("combobox", name="Checkpoint").select_option(label="associative_recall-ntm.safetensors")
        app.wait(lambda _: explorer.sources.length.value == "6", "the recall checkpoint's default size")
        app.click("Run")
        # (the server thread sets the episode, then runs its watchers: wait for the view's rows)
        app.wait(lambda _: [r["name"] for r in explorer.mechanisms.rows()] == ["lookup", "lookup_head", "item_slots"],
                 "the recall episode measured")
        assert explorer.state.episode.meta["task"] == "associative_recall"
        want = [squash(s) for s in expected_lines(explorer.mechanisms)]
        app.wait(lambda _: shown() == want, "the recall episode's mechanisms")
        page.screenshot(path=str(shots / "mechanisms-recall.png"))

        # an LSTM baseline: no heads to measure
        page.get_by_role("combobox", name="Checkpoint").select_option(label="copy-lstm.safetensors")
        app.click("Run")
        app.wait(lambda _: not explorer.state.episode.has_memory, "the LSTM episode")
        app.wait(lambda _: "no memory" in panel.inner_text(), "the no-memory message")
        assert items.count() == 0
        assert squash(panel.inner_text()) == ("What the heads did This episode comes from a model with no memory: "
                                              "there are no heads to measure.")
        page.wait_for_timeout(1000)  # the explorer hides its memory views just after (its own watcher)
        page.screenshot(path=str(shots / "mechanisms-lstm.png"))
        app.assert_no_errors()
