"""Compare two sources side by side on the same input, with one shared step.

    Compare(*checkpoint_pair("copy-ntm.safetensors", "copy-lstm.safetensors", length=10))
    Compare(left_episode, right_episode, titles=("step 200", "step 4000"))
    Compare(training=training_view, folder="checkpoints")   # pick checkpoints or snapshots

A source is a checkpoint file (in `folder` or `extra_folders`, e.g. where the Train tab saves)
or a snapshot of a live run (TrainingView), named by its training step: thinning the run's
snapshots never makes an option point at another step. The list follows the run (and saved
checkpoints) by itself. Both sides always show the same input: snapshots of one run share its
probe input; a checkpoint is recorded on the other side's input when that side is a snapshot,
else both checkpoints are recorded on one sampled input of the left checkpoint's task (length
and seed). The pair chosen by default is one that can be compared: two snapshots of the run,
or two checkpoints of the same task. An LSTM baseline has no memory (Episode.memory is None):
its side shows outputs and errors only.

The two sides share one step and one Player: in the browser they are one playback group (a
click, a key or the Player moves both at once, no server round trip; hiding a head hides it on
both sides), and the layout puts each view of the two sides in one row, at the same width, so
step t of one side sits beside step t of the other. Both sides draw on one colour scale by
default (payload.shared_scales: the same colour is the same value on either side); "one colour
scale" unticked gives each side its own.

The pickers list the folders' checkpoints and the run's snapshots by training step, thinned to
at most MAX_SNAPSHOTS (the first and the newest always); a pair shown from elsewhere (the Sweep
tab's "Compare two runs") is listed and picked, so the pickers always say what is on show.
"""

from __future__ import annotations

import copy
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
import param
from panel.viewable import Viewer

from ..checkpoint import load as load_checkpoint
from ..episode import Episode, record
from ..errors import ConfigError, NtmvizError
from .fields import read_seed
from .live import probe_batch
from ..thinning import thin
from .messages import bold, clear, show_error, text
from .payload import score_text, shared_scales
from .sources import check_length, checkpoint_header, checkpoint_options
from .state import Playback
from .views import Player

log = logging.getLogger(__name__)

SNAPSHOT = "snapshot:"  # option values: "snapshot:<training step>"
SHOWN = "shown:"  # option values of a pair shown from elsewhere: "shown:left", "shown:right"
MAX_SNAPSHOTS = 12  # the snapshots the pickers list at most (thinned: the first and the newest always)


def snapshot_key(step: int) -> str:
    return f"{SNAPSHOT}{int(step)}"


def checkpoint_signature(path: str | Path) -> tuple[str, int] | None:
    """(task name, input width) of a checkpoint, from its JSON header alone (no weights read);
    None if the file cannot tell. Two sources with one signature can run on the same input."""
    header = checkpoint_header(path)
    return None if header is None else header[:2]


def record_beside(ckpt, other: Episode, sampled: tuple[Any, Any] | None, meta: dict[str, Any]) -> Episode:
    """Checkpoint `ckpt` recorded on the input `other` was recorded on. With the (task, batch)
    `other` was sampled from, and `ckpt` trained on that task (by name), it runs on that batch
    with that task, so its episode has the task's own labels, answers and scores (a sorting's
    numbers, a story's sentences); else on `other`'s per-step inputs (a snapshot, an episode on
    show: no batch kept). A story answered in passes keeps no per-step input: it needs the batch."""
    task, batch = sampled if sampled is not None else (None, None)
    if task is not None and ckpt.task is not None and ckpt.task.name == task.name \
            and ckpt.family.steps == other.family.steps and ckpt.model.config.input_size == task.input_size:
        return record(ckpt.model, batch, meta={**meta, "seed": other.meta.get("seed")}, task=task)[0]
    if ckpt.family.steps == "inputs" and other.family.steps == "inputs":
        return record_same_input(ckpt.model, other, meta)
    raise ConfigError(f"{meta.get('source', 'this checkpoint')} and the other side were trained on different "
                      f"tasks: Compare puts two models side by side on one input of one task")


def record_same_input(model, episode: Episode, meta: dict[str, Any] | None = None) -> Episode:
    """`model` run on `episode`'s input (and scored against its targets)."""
    if model.config.input_size != episode.inputs.shape[1]:
        raise ConfigError(f"the model takes {model.config.input_size} inputs, the other side's input has "
                          f"{episode.inputs.shape[1]}: they were trained on different tasks")
    meta = {**{k: v for k, v in episode.meta.items() if k in ("task", "seed", "length", "input_labels",
                                                                "output_labels")}, **(meta or {})}
    return record(model, episode.inputs, episode.targets, mask=episode.mask, meta=meta)


def same_input(a: Episode, b: Episode) -> bool:
    """Whether two episodes were recorded on one input: the same per-step inputs, or (a story
    answered in passes keeps none) the same slots' labels, targets and metadata's question."""
    if a.inputs is not None or b.inputs is not None:
        return a.inputs is not None and b.inputs is not None and a.inputs.shape == b.inputs.shape \
            and bool((a.inputs == b.inputs).all())
    return a.slot_labels == b.slot_labels and a.meta.get("question") == b.meta.get("question") \
        and np.array_equal(a.targets, b.targets)


def checkpoint_pair(path_a: str | Path, path_b: str | Path, length: int | None = None,
                    seed: int = 0) -> tuple[Episode, Episode]:
    """Two checkpoints recorded on one input: the left one's task at `length`, sampled with `seed`."""
    a, b = load_checkpoint(path_a, device="cpu"), load_checkpoint(path_b, device="cpu")
    if a.task is None:
        raise ConfigError(f"{Path(path_a).name} names no task to sample an input from")
    task = a.task.at(length) if length else a.task
    batch = probe_batch(task, seed) if not length else task.sample(1, seed=seed)
    left = record(a.model, batch, meta={"seed": seed, "source": Path(path_a).name}, task=task)[0]
    right = record_beside(b, left, (task, batch), {"source": Path(path_b).name})
    return left, right


class _Side(Viewer):
    """One side: a title with its source and score, and every view its episode's declaration has
    (memory, focus, head locations, slots, sequence); Compare lays the parts of both sides out in
    rows (`parts`), so step t of one side sits beside step t of the other."""

    state = param.ClassSelector(class_=Playback)

    def __init__(self, **params):
        super().__init__(**params)
        from .views import FocusView, HeadLocationsView, MemoryView, SequenceView, SlotsView

        self.title = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.note = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"}, visible=False)
        self.memory = MemoryView(state=self.state)
        self.focus = FocusView(state=self.state)
        self.heads = HeadLocationsView(state=self.state)
        self.slots = SlotsView(state=self.state)
        self.sequence = SequenceView(state=self.state)
        self._memory = pn.Column(self.memory, margin=0)
        self._focus = pn.Column(self.focus, margin=0, sizing_mode="stretch_width")
        self._heads = pn.Column(self.heads, margin=0, sizing_mode="stretch_width")
        self._slots = pn.Column(self.slots, margin=0, sizing_mode="stretch_width")
        self.state.param.watch(lambda _: self._refresh(), "episode")
        self._refresh()

    def _refresh(self) -> None:
        ep = self.state.episode
        mem = ep is not None and ep.has_memory
        for part in (self._memory, self._focus, self._heads):
            part.visible = mem
        fam = ep.family if ep is not None else None
        self._slots.visible = bool(mem and fam.has_slots)
        self.note.visible = ep is not None and not mem
        self.note.object = text(f"No memory ({ep.title}): outputs and their score only." if ep is not None else "")
        source = ep.meta.get("source", "episode") if ep is not None else "nothing yet"
        if ep is not None and ep.targets is not None and ep.outputs is not None:
            self.title.object = f"{bold(source)} · {text(ep.title)} · {text(score_text(ep))}"
        else:
            self.title.object = bold(source)

    @property
    def parts(self) -> tuple[Any, ...]:
        """(title, memory or the no-memory note, focus, head locations, slots, sequence)."""
        return (self.title, pn.Column(self.note, self._memory, margin=0, sizing_mode="stretch_width"),
                self._focus, self._heads, self._slots, self.sequence)

    def __panel__(self):
        return pn.Column(*self.parts, sizing_mode="stretch_width")


class Compare(Viewer):
    """Two episodes of the same input side by side; the "Step" slider moves both."""

    left = param.ClassSelector(class_=Playback, doc="The left side's playback state.")
    right = param.ClassSelector(class_=Playback, doc="The right side's playback state.")
    t = param.Integer(default=0, bounds=(0, None), doc="The step both sides show.")
    folder = param.String(default="checkpoints", doc="The folder whose checkpoints can be compared.")
    extra_folders = param.List(default=[], item_type=str, doc="""
        More folders whose checkpoints are listed (e.g. where the Train tab saves).""")
    message = param.String(default="", doc="The last error shown ('' when the last action worked).")
    shared_scale = param.Boolean(default=True, doc="""
        Both sides on one colour scale (the same colour is the same value on either side); off, each
        side has its own.""")

    def __init__(self, left: Episode | None = None, right: Episode | None = None, *,
                 titles: tuple[str, str] | None = None, training: Any = None, **params):
        group = f"ntmviz-compare-{uuid.uuid4().hex[:12]}"  # both sides: one step in the browser
        super().__init__(left=Playback(group=group), right=Playback(group=group), **params)
        self._sampled = None  # (task, batch) the last checkpoint recorded on a sampled input
        self.training = training
        self._refreshing = False
        self._picked = False  # the user chose a pair: refreshing keeps it
        self._from_browser = False  # set while passing on a move the browser made
        self._shown: dict[str, tuple[str, Episode]] = {}  # "shown:left" -> (label, episode) of a pair shown from elsewhere
        self.player = Player(state=self.left)  # one Player: both sides are one group in the browser
        self.scale_toggle = pn.widgets.Checkbox.from_param(self.param.shared_scale, name="one colour scale for both sides")
        self.param.watch(lambda _: self._apply_scales(), "shared_scale")
        # one key to the heads for both sides (they are one group in the browser): keep Python's in step
        self.left.param.watch(lambda e: setattr(self.right, "hidden", self.right.valid_hidden(e.new)), "hidden")
        self.right.param.watch(lambda e: setattr(self.left, "hidden", self.left.valid_hidden(e.new)), "hidden")
        self.param.watch(self._move, "t")
        for s in (self.left, self.right):  # a click in one side's view moves both
            s.param.watch(self._side_moved, "t")
        self.left_pick = pn.widgets.Select(label="Left", options=[], sizing_mode="stretch_width")
        self.right_pick = pn.widgets.Select(label="Right", options=[], sizing_mode="stretch_width")
        self.length = pn.widgets.TextInput(label="Length", value="", sizing_mode="stretch_width",
                                           description="The input size for two checkpoints (empty: the task's "
                                                       "largest training size)")
        self.seed = pn.widgets.TextInput(label="Seed", value="0", sizing_mode="stretch_width")
        self.refresh_button = pn.widgets.Button(label="Refresh list", sizing_mode="stretch_width",
                                                description="List the folders' checkpoints again")
        self.compare_button = pn.widgets.Button(label="Compare", color="primary", sizing_mode="stretch_width")
        self.refresh_button.on_click(lambda _: self.refresh_options())
        self.compare_button.on_click(lambda _: self.compare())
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._left_side, self._right_side = _Side(state=self.left), _Side(state=self.right)
        for pick in (self.left_pick, self.right_pick):
            pick.param.watch(self._user_pick, "value")
        self.refresh_options()
        if training is not None:  # new snapshots and saved checkpoints show up without Refresh
            training.param.watch(lambda _: self.refresh_options(), ["snapshot_steps", "saved"])
        if left is not None or right is not None:
            self.show(left, right, titles)

    # ---- choosing sources --------------------------------------------------------------------
    def options(self) -> dict[str, str]:
        """What can be compared: checkpoints in `folder` and `extra_folders`, then the live run's
        snapshots, each named and keyed by its training step."""
        out = {label: key for key, (label, _) in self._shown.items()}
        out.update(checkpoint_options(self.folder, *self.extra_folders))
        steps = self._snapshot_steps()
        for step in thin(steps, float, MAX_SNAPSHOTS) if len(steps) > MAX_SNAPSHOTS else steps:
            out[f"training snapshot at step {step:,}"] = snapshot_key(step)
        return out

    def _snapshot_steps(self) -> list[int]:
        return [s.step for s in (getattr(self.training, "snapshot_list", None) or [])]

    def _user_pick(self, event) -> None:
        if not self._refreshing:
            self._picked = True

    def _signature(self, value: str) -> tuple | None:
        if value.startswith(SHOWN):
            return ("shown",)
        if value.startswith(SNAPSHOT):
            return ("snapshot",)  # every snapshot of the run shares its probe input
        return checkpoint_signature(value)

    def _default_pair(self, values: list[str]) -> tuple[str, str]:
        """Two sources that can be compared: the first and newest snapshots of the run, else the
        first checkpoint and another of the same task and input width (itself if none)."""
        snaps = [v for v in values if v.startswith(SNAPSHOT)]
        if len(snaps) >= 2:
            return snaps[0], snaps[-1]
        left = values[0]
        sig = self._signature(left)
        same = [v for v in values[1:] if sig is not None and self._signature(v) == sig]
        return left, (same[0] if same else left)

    def _nearest_snapshot(self, old: str, values: list[str]) -> str | None:
        """A snapshot pick whose step was thinned away: the nearest kept step before it."""
        if not old.startswith(SNAPSHOT):
            return None
        step = int(old[len(SNAPSHOT):])
        kept = [int(v[len(SNAPSHOT):]) for v in values if v.startswith(SNAPSHOT)]
        before = [s for s in kept if s <= step]
        return snapshot_key(max(before)) if before else (snapshot_key(min(kept)) if kept else None)

    def refresh_options(self) -> None:
        """List the sources again; a pair the user chose stays (a thinned snapshot moves to the
        nearest kept step), else the default pair is chosen."""
        opts = self.options()
        values = list(opts.values())
        olds = (self.left_pick.value, self.right_pick.value)
        self._refreshing = True
        try:
            for pick in (self.left_pick, self.right_pick):
                pick.options = opts
            if not values:
                return
            if self._picked and all(olds):
                picks = [old if old in values else self._nearest_snapshot(old, values) for old in olds]
                if all(picks):
                    self.left_pick.value, self.right_pick.value = picks
                    return
            self.left_pick.value, self.right_pick.value = self._default_pair(values)
        finally:
            self._refreshing = False

    def _episode(self, key: str, other: Episode | None) -> Episode:
        if key.startswith(SHOWN):
            if key not in self._shown:
                raise ConfigError("that pair is no longer on show: pick checkpoints or snapshots")
            return self._shown[key][1]
        if key.startswith(SNAPSHOT):
            step = int(key[len(SNAPSHOT):])
            snap = self.training.snapshot_at(step) if self.training is not None else None
            if snap is None:
                raise ConfigError(f"the training snapshot of step {step:,} is no longer kept (older snapshots "
                                  f"are thinned as a run goes on): pick another")
            return snap.episode
        ckpt = load_checkpoint(key, device="cpu")
        meta = {"source": Path(key).name}
        if other is not None:
            return record_beside(ckpt, other, self._sampled, meta)
        if ckpt.task is None:
            raise ConfigError(f"{Path(key).name} names no task to sample an input from")
        seed = read_seed(self.seed)
        length = None
        if self.length.value.strip() and ckpt.task.size_field:
            length = check_length(ckpt.task, self.length.value)
        task = ckpt.task.at(length) if length else ckpt.task
        batch = task.sample(1, seed=seed) if length else probe_batch(task, seed)
        self._sampled = (task, batch)
        return record(ckpt.model, batch, meta={**meta, "seed": seed}, task=task)[0]

    def compare(self) -> bool:
        """Record / fetch the two picked sources and show them; False (with a message) if not."""
        a, b = self.left_pick.value, self.right_pick.value
        if not a or not b:
            return self._fail("Pick two sources (checkpoints, or snapshots of a training run).")
        self._sampled = None  # (task, batch) the first checkpoint side was recorded on
        try:
            if b.startswith((SNAPSHOT, SHOWN)) and not a.startswith((SNAPSHOT, SHOWN)):
                right = self._episode(b, None)
                left = self._episode(a, right)
            else:
                left = self._episode(a, None)
                right = self._episode(b, left)
            if not same_input(left, right):
                raise ConfigError("the two sources were recorded on different inputs")
        except NtmvizError as exc:
            return self._fail(str(exc))
        except Exception as exc:  # the app keeps serving; the log keeps the traceback
            log.exception("Compare failed for %r and %r", a, b)
            return self._fail(f"could not compare: {type(exc).__name__}: {exc}")
        names = {v: k for k, v in self.left_pick.options.items()}
        self._show(left, right, (names.get(a), names.get(b)))
        return True

    def _fail(self, text: str) -> bool:
        self.message = text
        show_error(self.alert, text)
        return False

    # ---- showing -------------------------------------------------------------------------------
    def show(self, left: Episode | None, right: Episode | None, titles: tuple | None = None) -> None:
        """Put two episodes side by side (the same input) at the left one's opening step. The pickers list the
        pair as shown (the Sweep tab's runs, or episodes given in Python) and pick it."""
        titles = titles or (None, None)
        self._shown = {}
        for side, ep, title in (("left", left, titles[0]), ("right", right, titles[1])):
            if ep is not None:
                label = f"{title or ep.meta.get('source') or side} (on show)"
                self._shown[f"{SHOWN}{side}"] = (label, ep)
        self._refreshing = True
        try:
            opts = self.options()
            for pick in (self.left_pick, self.right_pick):
                pick.options = opts
            if left is not None:
                self.left_pick.value = f"{SHOWN}left"
            if right is not None:
                self.right_pick.value = f"{SHOWN}right"
            self._picked = True
        finally:
            self._refreshing = False
        self._show(left, right, titles)

    def _show(self, left: Episode | None, right: Episode | None, titles: tuple | None) -> None:
        episodes = []
        for ep, title in zip((left, right), titles or (None, None)):
            if ep is not None and title:
                ep = copy.copy(ep)  # the arrays are shared; the title goes into this copy's metadata
                ep.meta = {**ep.meta, "source": str(title).removesuffix(" (on show)")}
            episodes.append(ep)
        self.message = ""
        clear(self.alert)
        self.t = 0
        self.left.episode, self.right.episode = episodes
        steps = max(self.left.steps, self.right.steps)
        self.param.t.bounds = (0, max(0, steps - 1))
        self._apply_scales()
        first = next((ep for ep in episodes if ep is not None), None)
        self.t = first.opening_step() if first is not None else 0  # a step worth seeing: both sides go there

    def _apply_scales(self) -> None:
        """One colour scale for both sides (or each its own)."""
        scales = shared_scales([self.left.episode, self.right.episode]) if self.shared_scale else {}
        for s in (self.left, self.right):
            if s.scales != scales:
                s.scales = scales

    def scales(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The colour scales each side's views draw with (memory, its change, slot state, ...)."""
        from .payload import EpisodePayload

        return tuple(EpisodePayload(s.episode, ["memory", "slots"], scales=s.scales).scales if s.episode else {}
                     for s in (self.left, self.right))

    def _side_moved(self, event) -> None:
        # Both sides share one group in the browser, so a move the browser reports for one side
        # is already shown on the other: pass it on without sending it back. Sent back, it would
        # arrive late and pull the page to a step the user has since left.
        self._from_browser = event.obj._browser_update
        try:
            self.t = int(event.new)
        finally:
            self._from_browser = False

    def _move(self, event) -> None:
        t = int(event.new)
        for s in (self.left, self.right):
            if s.steps:
                before = s._browser_update
                s._browser_update = before or self._from_browser
                try:
                    s.t = min(t, s.steps - 1)
                finally:
                    s._browser_update = before

    def __panel__(self):
        pickers = pn.Row(self.left_pick, self.right_pick, self.length, self.seed,
                         pn.Column(self.refresh_button, self.compare_button, width=160),
                         sizing_mode="stretch_width")
        player = pn.Row(self.player, self.scale_toggle, sizing_mode="stretch_width", margin=0, styles={
            "position": "sticky", "top": "0", "z-index": "30", "background": "white"})
        # One row per part, each side half the width, so the same view of both sides starts at
        # the same height: step t of one side sits beside step t of the other.
        rows = [pn.Row(pn.Column(a, styles={"flex": "1 1 0", "min-width": "0"}, margin=0),
                       pn.Column(b, styles={"flex": "1 1 0", "min-width": "0"}, margin=0), sizing_mode="stretch_width")
                for a, b in zip(self._left_side.parts, self._right_side.parts)]
        return pn.Column(pickers, self.alert, player, *rows, sizing_mode="stretch_width")
