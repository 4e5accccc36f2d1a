"""A run's snapshots, by training step: the "Training step" slider, Play training, "Show seed",
and the views of the snapshot on show (or, until there is one, a note that says why not).

    scrubber = SnapshotScrubber(state=playback, best=lambda: 0)
    scrubber.reset([0, 1, 2])            # a new run's seeds
    scrubber.update(snapshots)           # live.Snapshot list as the run published it (every seed's)
    scrubber.show_step(8850)             # the snapshot of that training step (or the nearest kept before)
    scrubber.step, scrubber.shown_seed   # what is on show
    scrubber.slider_title                # "Training step: 8,850", as the slider reads

The slider moves over the snapshots kept, and reads as the training step of the one under it
(a Bokeh tick formatter given the steps: `Training step: 8,850`), never a list position. The
snapshots are thinned as they age (live.py), so the one on show is remembered by its step: after
a thinning the slider stays on that step, or the nearest kept before it. New snapshots are shown
as they arrive while `follow` is on; scrubbing back turns it off, the newest turns it on again.

Every snapshot holds every seed's episode, so "Show seed" switches the views between seeds at
the same step; "best now" follows the seed `best()` names, re-chosen only when a new snapshot
arrives and the view follows the newest (nothing changes under a user who is scrubbing).

The views (Player, head locations, memory, sequence) show the Playback state, which the explorer
shares with its other tabs: they are built when this run first shows a snapshot, and they are
on the page only while the state holds one of this run's snapshots. Before the first Start, or
when another tab has put another episode on show, a note says so instead (the Train tab never
shows a model other than the one it trains).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import panel as pn
import param
from bokeh.models import CustomJSTickFormatter
from panel.viewable import Viewer

from .live import Snapshot
from .state import Playback
from .textline import TextLine

BEST = "best"  # the "Show seed" choice that follows the seed best now
NOT_STARTED = ("Nothing trained yet. Press Start: the views here then show the model these settings "
               "describe, from its untrained first step (step 0), a snapshot every {every:,} steps.")
ELSEWHERE = ("The views show an episode from another tab, not this run. Pick a training step, or "
             "show this run's snapshot again.")
# The slider's title: the training step of the snapshot under the handle, with thousands separators.
STEP_JS = """const s = steps[Math.round(tick)];
return s === undefined ? "" : s.toLocaleString("en-US");"""


def step_formatter(steps: Sequence[int]) -> CustomJSTickFormatter:
    """A formatter that reads a snapshot's index as its training step: 3 -> "8,850"."""
    return CustomJSTickFormatter(code=STEP_JS, args={"steps": [int(s) for s in steps]})


class SnapshotScrubber(Viewer):
    """The run's snapshots by training step, and the views of the one on show (module docstring)."""

    state = param.ClassSelector(class_=Playback, doc="""
        The playback state the snapshot on show goes to (the explorer's: every view shows it).""")

    step = param.Integer(default=None, allow_None=True, doc="""
        The training step of the snapshot on show (None before the first).""")

    steps = param.List(default=[], item_type=int, doc="""
        The training steps of the snapshots kept, oldest first.""")

    follow = param.Boolean(default=True, doc="""
        Show each new snapshot as it arrives (off once you scrub back; on again at the newest).""")

    member = param.Integer(default=0, bounds=(0, None), doc="""
        The index of the seed on show among the run's seeds.""")

    seeds = param.List(default=[], item_type=int, doc="""
        The run's seeds.""")

    showing_run = param.Boolean(default=False, doc="""
        Whether the state holds one of this run's snapshots (the views are on the page).""")

    every = param.Integer(default=50, bounds=(1, None), doc="""
        Steps between two snapshots (what the note before the first Start says).""")

    def __init__(self, *, best: Callable[[], int], show_views: bool = True, **params):
        super().__init__(**params)
        self._best = best
        self._show_views = show_views
        self._all: list[Snapshot] = []  # as the run published them: every seed's episodes
        self._snaps: list[Snapshot] = []  # the same steps, the seed on show alone (Snapshot.member)
        self._choosing = False  # the scrubber itself is setting "Show seed"
        wide = {"sizing_mode": "stretch_width"}
        self.slider = pn.widgets.IntSlider(label="Training step", start=0, end=1, value=0, disabled=True,
                                           format=step_formatter([]), **wide)
        self.play = pn.widgets.Toggle(label="Play training", value=False, width=130)
        self.show_seed = pn.widgets.Select(label="Show seed", options={"seed 0": 0}, value=0, visible=False,
                                           width=190, description="Whose snapshots the views show (and Save "
                                                                  "writes); best: the seed best now")
        self.label = TextLine("No snapshots yet.", **wide)
        self.note = pn.pane.Alert(NOT_STARTED.format(every=self.every), alert_type="light", **wide)
        self.show_button = pn.widgets.Button(label="Show this run's snapshot", visible=False)
        self.show_button.on_click(lambda _: self._show(self.slider.value, force=True))
        self._views: pn.Column | None = None
        self.area = pn.Column(self.note, self.show_button, **wide)
        # the slider, Play and the caption: on the page once there is a run (reset)
        self.scrub_area = pn.Column(self.controls(), self.label, visible=False, **wide)
        self.slider.param.watch(self._scrubbed, "value")
        # Bokeh redraws a slider's title when its value or title changes, not its formatter: when a
        # thinning swaps the steps under an unchanged index, the title would read a step no longer
        # there. Flipping show_value twice redraws it with the new formatter (and ends as it was).
        self.slider.jscallback(format="source.show_value = !source.show_value; "
                                      "source.show_value = !source.show_value;")
        self.play.param.watch(self._play_toggled, "value")
        self.show_seed.param.watch(self._seed_picked, "value")
        self.state.param.watch(lambda _: self._owned(), "episode")

    # ---- what is on show -------------------------------------------------------------------------
    @property
    def shown_seed(self) -> int:
        """The seed whose snapshots are on show."""
        return self.seeds[self.member] if self.seeds else 0

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot on show (the seed on show alone)."""
        if not self._snaps:
            return None
        return self._snaps[min(self.slider.value, len(self._snaps) - 1)]

    @property
    def snapshot_list(self) -> list[Snapshot]:
        """The snapshots kept (the seed on show alone), oldest first."""
        return list(self._snaps)

    def snapshot_at(self, step: int) -> Snapshot | None:
        """The snapshot of training step `step` (None if not kept)."""
        return next((s for s in self._snaps if s.step == step), None)

    @property
    def slider_title(self) -> str:
        """What the slider's title reads: "Training step: 8,850" ('Training step' before any)."""
        return f"Training step: {self.step:,}" if self.step is not None else "Training step"

    @property
    def follows_best(self) -> bool:
        """Whether "Show seed" follows the seed best now."""
        return self.show_seed.value == BEST

    # ---- a new run, new snapshots ----------------------------------------------------------------
    def reset(self, seeds: Sequence[int]) -> None:
        """A new run of `seeds`: no snapshots yet, the first seed on show, "best now" if several."""
        self._all, self._snaps = [], []
        self.play.value = False
        self.param.update(seeds=[int(s) for s in seeds], member=0, step=None, steps=[], follow=True)
        self._choosing = True
        try:
            self.show_seed.param.update(options=self.seed_options(), value=BEST if len(seeds) > 1 else 0,
                                        visible=len(seeds) > 1)
        finally:
            self._choosing = False
        self.slider.param.update(start=0, end=1, value=0, disabled=True, format=step_formatter([]))
        self.label.object = "No snapshots yet."
        self.scrub_area.visible = True
        self._owned()

    def update(self, snaps: list[Snapshot]) -> None:
        """The run's snapshots now (every seed's): choose the best seed if following it, keep the
        step on show (or the nearest kept before it), or show the newest when following."""
        self._all = snaps
        if self.follows_best and (self.follow or self.step is None):
            self.member = self._best()  # re-chosen only here: nothing changes under a user scrubbing
        self._snaps = [s.member(self.member) for s in snaps]
        steps = [s.step for s in snaps]
        if not snaps:
            self.steps = []
            return
        last = len(snaps) - 1
        if self.follow or self.step is None:
            index = last
        else:
            index = max((i for i, s in enumerate(steps) if s <= self.step), default=0)
        if steps != self.steps:
            self.slider.param.update(end=max(1, last), disabled=last < 1, format=step_formatter(steps))
            self.steps = steps
        if self.slider.value != index:
            self.slider.value = index  # shows it through _scrubbed
        else:
            self._show(index)

    def show_step(self, step: int) -> None:
        """Show the snapshot of training step `step`, or the nearest kept before it."""
        index = max((i for i, s in enumerate(self._snaps) if s.step <= step), default=0)
        self.slider.value = index
        self._show(index, force=True)

    def _scrubbed(self, event) -> None:
        index = int(event.new)
        if self._snaps:
            self.follow = index >= len(self._snaps) - 1
        self._show(index)

    def _show(self, index: int, force: bool = False) -> None:
        if not self._snaps:
            return
        index = min(max(0, index), len(self._snaps) - 1)
        snap = self._snaps[index]
        loss = "" if math.isnan(snap.loss) else f" · training loss {snap.loss:.3f}"
        seed = f" · seed {snap.seeds[0]}" if len(self.seeds) > 1 else ""
        self.label.object = (f"Snapshot {index + 1} of {len(self._snaps)}: step {snap.step:,}, "
                             f"{snap.sequences:,} sequences{loss}{seed}")
        if force or self.step != snap.step or self.state.episode is not snap.episode:
            self.step = snap.step
            self.state.episode = snap.episode
        self._owned()

    # ---- the seed on show ------------------------------------------------------------------------
    def seed_options(self, diverged: Sequence[int] = ()) -> dict[str, object]:
        """"Show seed"'s choices: best now (naming it), then every seed (diverged ones say so)."""
        shown = self.member if self.show_seed.value == BEST else self._best()
        seeds = self.seeds or [0]
        options: dict[str, object] = {f"best now (seed {seeds[min(shown, len(seeds) - 1)]})": BEST}
        for k, seed in enumerate(seeds):
            options[f"seed {seed}" + (" (diverged)" if k in diverged else "")] = k
        return options

    def refresh_options(self, diverged: Sequence[int]) -> None:
        """Name the best seed and the diverged ones in "Show seed" (when there are several)."""
        if len(self.seeds) < 2:
            return
        options = self.seed_options(diverged)
        if options != self.show_seed.options:
            self._choosing = True
            try:
                self.show_seed.options = options
            finally:
                self._choosing = False

    def _seed_picked(self, event) -> None:
        if self._choosing:
            return
        self.switch_member(self._best() if event.new == BEST else int(event.new))

    def switch_member(self, member: int) -> None:
        """Show seed `member`'s snapshots, at the same training step."""
        self.member = member
        if self._all:
            self._snaps = [s.member(member) for s in self._all]
            self._show(self.slider.value)

    # ---- Play training ---------------------------------------------------------------------------
    def _play_toggled(self, event) -> None:
        if event.new:
            self.follow = False
            if self.slider.value >= len(self._snaps) - 1:
                self.slider.value = 0

    def advance(self) -> None:
        """One snapshot on while playing; at the newest, stop and follow again."""
        if self.slider.value >= len(self._snaps) - 1:
            self.play.value = False
            self.follow = True
            return
        self.slider.value += 1

    # ---- the views, or why there are none ----------------------------------------------------------
    def _owned(self) -> None:
        """Show the views while the state holds one of this run's snapshots; else the note."""
        episode = self.state.episode
        mine = episode is not None and any(episode is e for s in self._all for e in s.episodes)
        self.showing_run = mine
        if mine and self._show_views and self._views is None:
            from .views import HeadLocationsView, MemoryView, Player, SequenceView, SlotsView

            # Head locations first: watching them turn from a smear into a diagonal is the point.
            # The slots' state is drawn too where the declaration has one (a DNC's usage and links
            # forming, a stack's strengths); the addressing stages are a click away in Explore.
            family = episode.family
            slots = [SlotsView(state=self.state)] if family.has_slots else []
            self._views = pn.Column(Player(state=self.state),
                                    pn.Row(HeadLocationsView(state=self.state), MemoryView(state=self.state)),
                                    *slots, SequenceView(state=self.state), sizing_mode="stretch_width")
        if mine:
            objects = [self._views] if self._views is not None else []
        else:
            self.note.object = NOT_STARTED.format(every=self.every) if not self._all else ELSEWHERE
            self.show_button.visible = bool(self._all)
            objects = [self.note, self.show_button]
        if list(self.area.objects) != objects:
            self.area.objects = objects

    @param.depends("every", watch=True)
    def _every_changed(self) -> None:
        self._owned()

    def controls(self) -> pn.Row:
        """Play training, the slider and "Show seed", in a row."""
        return pn.Row(self.play, self.slider, self.show_seed, sizing_mode="stretch_width")

    def __panel__(self):
        return pn.Column(self.scrub_area, self.area, sizing_mode="stretch_width")
