"""The "Training step" slider's title in Chromium (ntmviz/app/train_snapshots.py): it reads the
training step of the snapshot under the handle, also when a thinning swaps the kept steps under
an unchanged index (Bokeh redraws a title on a value change, not on a formatter change)."""

from __future__ import annotations

import panel as pn
import torch

from ntmviz import NTMConfig, build_model, record
from ntmviz.app.live import Snapshot
from ntmviz.app.state import Playback
from ntmviz.app.train_snapshots import SnapshotScrubber
from ntmviz.tasks import get_task


def snapshots(steps: list[int]) -> list[Snapshot]:
    """One tiny model's episode as the snapshot of each step."""
    task = get_task("copy", max_length=2, bits=3)
    torch.manual_seed(0)
    model = build_model(NTMConfig(task.input_size, task.output_size, 8, 4, controller_size=8))
    episode = record(model, task.sample(1, seed=0), task=task)[0]
    return [Snapshot(s, 4 * s, 0.5, 1.0, (episode,), (0,), (0.5,), (1.0,)) for s in steps]


def test_the_title_follows_a_thinning_under_the_same_index(browser):
    from _serve import served

    made: list[tuple[SnapshotScrubber, object]] = []

    def make():
        scrubber = SnapshotScrubber(state=Playback(), best=lambda: 0, show_views=False)
        scrubber.reset([0])
        scrubber.update(snapshots([0, 10, 20]))
        made.append((scrubber, pn.state.curdoc))
        return pn.Column(scrubber.scrub_area)

    with served(make) as url:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.get_by_text("Training step: 20", exact=True).first.wait_for(timeout=60_000)
        scrubber, doc = made[-1]  # the page's session
        # a thinning drops step 10 as step 30 arrives: three snapshots still, the newest at index 2
        doc.add_next_tick_callback(lambda: scrubber.update(snapshots([0, 20, 30])))
        page.get_by_text("Training step: 30", exact=True).first.wait_for(timeout=60_000)
        assert scrubber.slider.value == 2 and scrubber.step == 30
        assert page.get_by_text("Training step: 20", exact=True).count() == 0
        assert not errors, errors
        page.close()
