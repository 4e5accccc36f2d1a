"""The Train view trains each new family live in real Chromium: pick the DNC in the form's Model
list, Start, and its snapshots show the slots view (usage forming as allocation writes, links)
beside the heads, from its declaration alone; pick sorting as the task and the pointer network
trains on it. The picture is kept as apps/screenshots/train-dnc.png when NTMVIZ_SCREENSHOTS
is set."""

import os
from pathlib import Path

from _serve import chromium, served
from test_browser_training import VIEWS, small_config, wait_for

from ntmviz.app.training_view import TrainingView

SHOTS = Path(__file__).resolve().parents[2] / "apps" / "screenshots"


def test_a_dnc_trains_live_and_its_slots_appear(tmp_path):
    views = []

    def factory():
        view = TrainingView(small_config(task="allocation", task_options={"max_length": 3, "sequences": 3},
                                         memory_slots=4), save_folder=str(tmp_path), folder=str(tmp_path), period=300)
        views.append(view)
        return view

    with served(factory, session_lifetime_ms=500) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        start = page.get_by_role("button", name="Start", exact=True)
        start.wait_for(timeout=60_000)
        view = views[-1]
        # the form offers every family that trains on sequences; choose the DNC by its title
        options = page.locator("select").filter(has_text="Differentiable neural computer")
        options.first.select_option(label="Differentiable neural computer")
        wait_for(lambda: view.form.settings.model == "dnc", what="the form to take the DNC")
        page.get_by_text("Read heads").first.wait_for(timeout=30_000)
        wait_for(lambda: page.get_by_text("Write heads").count() == 0, what="the NTM's own field to go")
        start.click()
        run = wait_for(lambda: view.run, what="the run to start")
        assert run.config.model == "dnc"
        wait_for(lambda: len(view.snapshot_list) >= 3, timeout=180, what="three snapshots")
        wait_for(lambda: {"slots", "heads", "memory"} <= set(page.evaluate(VIEWS)), timeout=60,
                 what="the slots, heads and memory views of the DNC's snapshot")
        episode = view.state.episode
        assert episode.family.name == "dnc" and set(episode.slot_state) == {"usage", "retention", "precedence"}
        assert page.evaluate(VIEWS)["slots"] >= 1  # painted
        if os.environ.get("NTMVIZ_SCREENSHOTS"):
            page.screenshot(path=str(SHOTS / "train-dnc.png"), full_page=True)
        page.get_by_role("button", name="Pause", exact=True).click()
        wait_for(lambda: run.status == "paused", what="the pause")
        page.close()
        wait_for(lambda: not run.alive, timeout=60, what="the run to stop after the page closed")


def test_a_pointer_network_trains_live_on_sorting(tmp_path):
    """Choose "sort numbers" as the task: the Model list narrows to the models that take it and
    offers the pointer network; Start; its snapshots draw the pointer over the numbers."""
    views = []

    def factory():
        view = TrainingView(small_config(task="copy"), save_folder=str(tmp_path), folder=str(tmp_path), period=300)
        views.append(view)
        return view

    with served(factory, session_lifetime_ms=500) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        start = page.get_by_role("button", name="Start", exact=True)
        start.wait_for(timeout=60_000)
        view = views[-1]
        assert "Pointer network" not in page.locator("select").filter(has_text="Neural Turing Machine").first.inner_text()
        page.locator("select").filter(has_text="sort numbers").first.select_option(label="sort numbers")
        wait_for(lambda: view.form.settings.task == "sort_numbers", what="the form to take the task")
        models = page.locator("select").filter(has_text="Neural Turing Machine").first
        wait_for(lambda: "Pointer network" in models.inner_text(), what="the pointer network offered")
        models.select_option(label="Pointer network")
        wait_for(lambda: view.form.settings.model == "pointer", what="the form to take the pointer network")
        page.get_by_text("Pointer size").first.wait_for(timeout=30_000)
        page.get_by_label("Pointer size", exact=True).fill("16")
        start.click()
        run = wait_for(lambda: view.run, what="the run to start")
        assert run.config.model == "pointer" and run.config.task == "sort_numbers"
        wait_for(lambda: len(view.snapshot_list) >= 2, timeout=180, what="two snapshots")
        wait_for(lambda: {"heads", "memory"} <= set(page.evaluate(VIEWS)), timeout=60,
                 what="the heads and memory views of the pointer's snapshot")
        episode = view.state.episode
        assert episode.family.name == "pointer" and episode.slot_labels is not None
        weights = episode.heads["pointer"].weights  # [T, 1, N]: a distribution over the inputs at each step
        assert weights.shape[-1] == episode.slots == len(episode.slot_labels)
        page.get_by_role("button", name="Pause", exact=True).click()
        wait_for(lambda: run.status == "paused", what="the pause")
        page.close()
        wait_for(lambda: not run.alive, timeout=60, what="the run to stop after the page closed")
