"""Explorer: the whole app, every view on one shared playback state, plus the sources panel."""

from __future__ import annotations

import os
from pathlib import Path

import panel as pn
import param
from panel.viewable import Viewer

from ..episode import Episode
from ..errors import NtmvizError
from ..shipped import checkpoint_folders
from .mechanisms_view import MechanismsView
from .messages import article, bold, text
from .payload import describe
from .sources import (
    ModelSource, Sources, cached_episode, find_checkpoints, load_source, untrained_source,
)
from .state import Playback
from .views import FocusView, HeadLocationsView, MemoryView, Player, SequenceView, SlotsView

MANY_HEADS = 4  # with more heads, the heads' panels (focus, locations) sit side by side in two columns

# How each view's card takes the width of the main area (CSS flex): the memory as wide as it
# draws, the others growing from a basis, so the cards reflow from 1280 to 2560 px.
FEW_HEADS_LAYOUT = {"memory": "0 0 auto", "focus": "1 1 280px", "heads": "1 1 100%", "slots": "1 1 100%",
                    "sequence": "1 1 640px", "mechanisms": "1 1 300px"}
MANY_HEADS_LAYOUT = {"memory": "0 0 auto", "sequence": "1 1 560px", "focus": "1 1 100%", "heads": "1 1 100%",
                     "slots": "1 1 100%", "mechanisms": "1 1 100%"}


def default_folder(extra=()) -> str:
    """Where the explorer looks for checkpoints: the folders in `extra` (`ntmviz serve
    --checkpoints DIR`), then those in $NTMVIZ_CHECKPOINTS, then the checkpoints shipped in the
    package; joined with os.pathsep (find_checkpoints lists them all, the user's first)."""
    return os.pathsep.join(str(f) for f in checkpoint_folders(extra))


class Explorer(Viewer):
    """Memory, head locations, focus and sequence views of one episode, moving together.

        Explorer(episode)                          # show a recorded episode
        Explorer.from_checkpoint(path, length=12)  # record one from a checkpoint, then show it
        Explorer.default()                         # what `panel serve apps/explorer.py` shows

    The player, the slider, the keys (left / right, space) and clicks in the head locations
    all move the one step t in `state`; the sources panel records or opens other episodes.
    The Explore and Train tabs show the same state: one step t for both, kept when switching
    tabs (also while playing). Checkpoints the Train tab saves (to `runs_folder`) are listed
    in Sources, Train's "Start from" and Compare as soon as they are written. The Sweep tab
    (`sweep`, sweep_view.py) shows a sweep folder's runs; its buttons record a run in Explore
    (listing it in Sources) or two runs in Compare, and bring that tab to the front.
    """

    state = param.ClassSelector(class_=Playback, doc="""
        The shared playback state: the episode on show and the step t.""")

    folder = param.String(default="checkpoints", doc="""
        The folder whose checkpoints the sources panel lists (several joined with os.pathsep).""")

    note = param.String(default="", doc="""
        A note about where the episode came from (e.g. an untrained model), shown on top.""")

    runs_folder = param.String(default="runs", doc="""
        Where the Train tab saves checkpoints (listed beside the folder's everywhere).""")

    sweeps = param.List(default=[], item_type=str, doc="""
        Sweep folders, or folders holding sweeps, for the Sweep tab (`ntmviz serve --sweep DIR`),
        searched before runs_folder, sweeps/ and $NTMVIZ_SWEEPS. The first of them (or of
        $NTMVIZ_SWEEPS) that is itself a sweep folder is on show when the app opens.""")

    def __init__(self, episode: Episode | None = None, *, source: ModelSource | None = None,
                 folder: str | Path | None = None, state: Playback | None = None, **params):
        state = state or Playback(episode)
        if episode is not None and state.episode is not episode:
            state.episode = episode
        folder = str(folder if folder is not None else default_folder())
        super().__init__(state=state, folder=folder, **params)
        self.player = Player(state=state)
        self.memory = MemoryView(state=state)
        self.heads = HeadLocationsView(state=state)
        self.focus = FocusView(state=state)
        self.slots = SlotsView(state=state)
        self.sequence = SequenceView(state=state)
        runs = self.runs_folder
        self.sources = Sources(state, folder=folder, source=source, extra_folders=[runs], layout="toolbar")
        self.mechanisms = MechanismsView(state=state)  # "What the heads did" in this episode
        self._title = pn.pane.Markdown("", sizing_mode="stretch_width", margin=(0, 10))
        self._note = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        # Every view a card in one grid that reflows with the width (see _arrange); the player
        # sticks to the top of the page, so it stays in reach however far down one scrolls.
        self._cards = {name: pn.Column(view, margin=(0, 0, 6, 0))
                       for name, view in (("memory", self.memory), ("focus", self.focus), ("heads", self.heads),
                                          ("slots", self.slots), ("sequence", self.sequence),
                                          ("mechanisms", self.mechanisms))}
        self._grid = pn.FlexBox(*self._cards.values(), flex_wrap="wrap", gap="10px 18px", align_items="flex-start",
                                sizing_mode="stretch_width")
        self._player_bar = pn.Column(self.player, sizing_mode="stretch_width", margin=0, styles={
            "position": "sticky", "top": "0", "z-index": "30", "background": "white",
            "box-shadow": "0 2px 3px rgba(0, 0, 0, 0.06)"})
        # Train shares the playback state: a chosen training snapshot is the episode
        # every view shows. Checkpoints saved from the Train tab go to runs_folder, not the shipped folder.
        from .compare import Compare
        from .training_view import TrainingView

        self.training = TrainingView(state=state, folder=folder, save_folder=runs, guard_in_panel=False)
        self.compare = Compare(training=self.training, folder=folder, extra_folders=[runs])
        self.training.param.watch(lambda _: self.sources.refresh_checkpoints(), "saved")
        from .sweep_view import SweepView, sweep_folders

        given = sweep_folders(self.sweeps)  # --sweep DIR, then $NTMVIZ_SWEEPS
        first = next((f for f in given if (f / "sweep.json").is_file()), None)
        # Sweeps asked for by name (`ntmviz serve --sweep DIR`) open the app on the Sweep tab;
        # those that only come from $NTMVIZ_SWEEPS wait in their tab.
        self._opening_tab = "sweep" if self.sweeps else "explore"
        self.sweep = SweepView(first or "", search=[str(f) for f in sweep_folders([*given, runs, "sweeps"])],
                               sources=self.sources, compare=self.compare, on_open=self._show_tab)
        self._tabs: list[pn.Tabs] = []
        self._headings: list[pn.pane.Markdown] = []
        state.param.watch(lambda _: self._refresh(), "episode")
        self.param.watch(lambda _: self._refresh(), "note")
        self.sources.param.watch(lambda _: self._source_note(), "source")
        if source is not None and source.note and not self.note:
            self.note = source.note
        self._refresh()

    # ---- constructors --------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, length: int | None = None, seed: int = 0,
                        folder: str | Path | None = None, **params) -> "Explorer":
        """Record one episode from the checkpoint at `path` (its task at `length`, sampled
        with `seed`) and explore it; the sources panel lists the checkpoint's folder."""
        source = load_source(path)
        episode = cached_episode(source, length=length, seed=seed)
        return cls(episode, source=source, folder=folder if folder is not None else Path(path).parent, **params)

    @classmethod
    def default(cls, folder: str | Path | None = None, **params) -> "Explorer":
        """The first readable checkpoint in `folder` (copy-ntm.safetensors first) with an episode
        ready to play, else an untrained NTM for the copy task, with a note saying so. Without
        `folder`: the user's folders ($NTMVIZ_CHECKPOINTS), then the checkpoints shipped in the
        package (so the shipped copy checkpoint, from any working directory)."""
        folder = folder if folder is not None else default_folder()
        problems = []
        for path in find_checkpoints(folder):
            try:
                source = load_source(path)
                episode = cached_episode(source)
            except NtmvizError as exc:
                problems.append(str(exc))
                continue
            explorer = cls(episode, source=source, folder=folder, **params)
            if problems:
                explorer.sources._fail("Skipped: " + "; ".join(problems))
            return explorer
        source = untrained_source()
        explorer = cls(cached_episode(source), source=source, folder=folder, **params)
        if problems:
            explorer.sources._fail("Skipped: " + "; ".join(problems))
        return explorer

    # ---- keeping the page in step with the episode -------------------------------------------
    def _source_note(self) -> None:
        source = self.sources.source
        self.note = source.note if source is not None else ""

    def _refresh(self) -> None:
        episode = self.state.episode
        self._title.object = bold(describe(episode))
        notes = [self.note] if self.note else []
        if episode is not None and not episode.has_memory:
            notes.append(f"This episode comes from a model with no memory ({episode.title}): "
                         "only the sequence is shown.")
        self._note.object = text(" ".join(notes))
        self._note.visible = bool(notes)
        self._arrange()
        for heading in self._headings:
            heading.object = self.heading

    @property
    def heading(self) -> str:
        """The page's heading: what the episode on show came from."""
        episode = self.state.episode
        # the title comes from the episode (a file's header names its model): text, never markup
        return f"## ntmviz: inside {text(article(episode.title)) if episode is not None else 'a memory model'}"

    def _arrange(self) -> None:
        """Show the views the episode's declaration has and lay them out for its number of heads:
        with a few, the focus beside the memory and each timeline across the page; with many, the
        sequence beside the memory and the heads' focus and locations side by side below."""
        episode = self.state.episode
        has = {"memory": False, "focus": False, "heads": False, "slots": False, "sequence": episode is not None,
               "mechanisms": episode is not None}
        many = False
        if episode is not None and episode.has_memory:
            family = episode.family
            has.update(memory=True, focus=True, heads=True,
                       slots=family.has_slots)
            many = len(episode.head_list()) > MANY_HEADS
        layout = MANY_HEADS_LAYOUT if many else FEW_HEADS_LAYOUT
        order = [self._cards[name] for name in layout]
        if list(self._grid.objects) != order:
            self._grid.objects = order
        heads = len(episode.head_list()) if episode is not None else 0
        for name, card in self._cards.items():
            card.visible = has[name]
            flex = layout[name]
            if name == "focus" and not many:  # room for its heads' panels side by side
                flex = f"1 1 {max(1, min(heads, 2)) * 280}px"
            styles = {"flex": flex, "min-width": "0"}
            if card.styles != styles:
                card.styles = styles

    @property
    def views(self) -> dict[str, Viewer]:
        """Every view by name."""
        return {"player": self.player, "memory": self.memory, "heads": self.heads,
                "focus": self.focus, "slots": self.slots, "sequence": self.sequence, "mechanisms": self.mechanisms,
                "training": self.training, "compare": self.compare, "sweep": self.sweep}

    TABS = ("explore", "train", "compare", "sweep")

    def _show_tab(self, name: str) -> None:
        """Bring tab `name` (one of TABS) to the front, wherever the explorer is shown."""
        for tabs in self._tabs:
            tabs.active = self.TABS.index(name)

    def __panel__(self):
        # the sources as a toolbar above the views, so the views have the page's whole width
        explore = pn.Column(self.sources, self._title, self._note, self._player_bar, self._grid,
                            sizing_mode="stretch_width")
        # Dynamic: a tab's views are built when it is first opened, so the page loads fast.
        # (Their stylesheets come from this server: see local_resources.py.)
        tabs = pn.Tabs(("Explore", explore), ("Train", self.training), ("Compare", self.compare),
                       ("Sweep", self.sweep), dynamic=True, sizing_mode="stretch_width",
                       active=self.TABS.index(self._opening_tab))
        self._tabs.append(tabs)  # the Sweep tab's buttons bring Explore or Compare to the front
        heading = pn.pane.Markdown(self.heading, margin=(0, 10))
        self._headings.append(heading)
        return pn.Column(
            heading,
            tabs,
            # Outside the tabs: a hidden tab's components are removed from the page, and leaving
            # must still ask while a run is alive whatever tab is open.
            self.training.guard,
            sizing_mode="stretch_width",
        )

