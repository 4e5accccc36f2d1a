"""Compare two sources side by side on the same input, with one shared step.

    Compare(*checkpoint_pair("copy-ntm.safetensors", "copy-lstm.safetensors", length=10))
    Compare(left_episode, right_episode, titles=("step 200", "step 4000"))
    Compare(training=training_view, folder="checkpoints")   # pick checkpoints or snapshots

A source is a checkpoint file or a snapshot of a live run (TrainingView). Both sides always
show the same input: snapshots of one run share its probe input; a checkpoint is recorded
on the other side's input when that side is a snapshot, else both checkpoints are recorded
on one sampled input of the left checkpoint's task (length and seed). An LSTM baseline has no
memory (Episode.memory is None): its side shows outputs and errors only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import panel as pn
import param
from panel.viewable import Viewer

from ..checkpoint import load as load_checkpoint
from ..episode import Episode, record
from ..errors import ConfigError, NtmvizError
from .live import probe_batch
from .messages import bold, clear, show_error
from .sources import find_checkpoints
from .state import Playback

SNAPSHOT = "snapshot:"


def record_same_input(model, episode: Episode, meta: dict[str, Any] | None = None) -> Episode:
    """`model` run on `episode`'s input (and scored against its targets)."""
    if model.config.input_size != episode.inputs.shape[1]:
        raise ConfigError(f"the model takes {model.config.input_size} inputs, the other side's input has "
                          f"{episode.inputs.shape[1]}: they were trained on different tasks")
    meta = {**{k: v for k, v in episode.meta.items() if k in ("task", "seed", "length", "input_labels",
                                                                "output_labels")}, **(meta or {})}
    return record(model, episode.inputs, episode.targets, mask=episode.mask, meta=meta)


def checkpoint_pair(path_a: str | Path, path_b: str | Path, length: int | None = None,
                    seed: int = 0) -> tuple[Episode, Episode]:
    """Two checkpoints recorded on one input: the left one's task at `length`, sampled with `seed`."""
    a, b = load_checkpoint(path_a, device="cpu"), load_checkpoint(path_b, device="cpu")
    if a.task is None:
        raise ConfigError(f"{Path(path_a).name} names no task to sample an input from")
    task = a.task.at(length) if length else a.task
    batch = probe_batch(task, seed) if not length else task.sample(1, seed=seed)
    meta = {"task": a.task.name, "seed": seed, "input_labels": list(a.task.input_labels),
            "output_labels": list(a.task.output_labels)}
    left = record(a.model, batch, meta={**meta, "source": Path(path_a).name})[0]
    right = record_same_input(b.model, left, {"source": Path(path_b).name})
    return left, right


class _Side(Viewer):
    """One side: a title, the memory (when the model has one) and the sequence."""

    state = param.ClassSelector(class_=Playback)

    def __init__(self, **params):
        super().__init__(**params)
        from .views import MemoryView, SequenceView

        self.title = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.note = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"}, visible=False)
        self.memory = MemoryView(state=self.state)
        self.sequence = SequenceView(state=self.state)
        self._memory = pn.Column(self.memory, margin=0)
        self.state.param.watch(lambda _: self._refresh(), "episode")
        self._refresh()

    def _refresh(self) -> None:
        ep = self.state.episode
        self._memory.visible = ep is not None and ep.has_memory
        self.note.visible = ep is not None and not ep.has_memory
        self.note.object = "No memory (an LSTM baseline): outputs and errors only."
        if ep is not None and ep.targets is not None:
            errors = int(ep.bit_errors().sum())
            self.title.object = f"{bold(ep.meta.get('source', 'episode'))} · {errors} wrong bits in all"
        else:
            self.title.object = bold(ep.meta.get('source', 'episode') if ep is not None else 'nothing yet')

    def __panel__(self):
        return pn.Column(self.title, self.note, self._memory, self.sequence, sizing_mode="stretch_width")


class Compare(Viewer):
    """Two episodes of the same input side by side; the "Step" slider moves both."""

    left = param.ClassSelector(class_=Playback, doc="The left side's playback state.")
    right = param.ClassSelector(class_=Playback, doc="The right side's playback state.")
    t = param.Integer(default=0, bounds=(0, None), doc="The step both sides show.")
    folder = param.String(default="checkpoints", doc="The folder whose checkpoints can be compared.")
    message = param.String(default="", doc="The last error shown ('' when the last action worked).")

    def __init__(self, left: Episode | None = None, right: Episode | None = None, *,
                 titles: tuple[str, str] | None = None, training: Any = None, **params):
        super().__init__(left=Playback(), right=Playback(), **params)
        self.training = training
        self.step = pn.widgets.IntSlider(label="Step", start=0, end=1, value=0, sizing_mode="stretch_width")
        self.step.param.watch(lambda e: setattr(self, "t", int(e.new)), "value")
        self.param.watch(self._move, "t")
        for s in (self.left, self.right):  # a click in one side's view moves both
            s.param.watch(lambda e: setattr(self, "t", int(e.new)), "t")
        self.left_pick = pn.widgets.Select(label="Left", options=[], sizing_mode="stretch_width")
        self.right_pick = pn.widgets.Select(label="Right", options=[], sizing_mode="stretch_width")
        self.length = pn.widgets.IntInput(label="Length", value=0, start=0, sizing_mode="stretch_width",
                                          description="The input size for two checkpoints (0: the task's largest)")
        self.seed = pn.widgets.IntInput(label="Seed", value=0, start=0, sizing_mode="stretch_width")
        self.refresh_button = pn.widgets.Button(label="Refresh list", sizing_mode="stretch_width")
        self.compare_button = pn.widgets.Button(label="Compare", color="primary", sizing_mode="stretch_width")
        self.refresh_button.on_click(lambda _: self.refresh_options())
        self.compare_button.on_click(lambda _: self.compare())
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._left_side, self._right_side = _Side(state=self.left), _Side(state=self.right)
        self.refresh_options()
        if left is not None or right is not None:
            self.show(left, right, titles)

    # ---- choosing sources --------------------------------------------------------------------
    def options(self) -> dict[str, str]:
        """What can be compared: checkpoints in `folder`, then the live run's snapshots."""
        out = {p.name: str(p) for p in find_checkpoints(self.folder)}
        for i, snap in enumerate(getattr(self.training, "snapshot_list", []) or []):
            out[f"training snapshot, step {snap.step:,}"] = f"{SNAPSHOT}{i}"
        return out

    def refresh_options(self) -> None:
        opts = self.options()
        values = list(opts.values())
        for pick, default in ((self.left_pick, 0), (self.right_pick, -1)):
            old = pick.value
            pick.options = opts
            if values:
                pick.value = old if old in values else values[default]

    def _episode(self, key: str, other: Episode | None) -> Episode:
        if key.startswith(SNAPSHOT):
            snaps = self.training.snapshot_list
            return snaps[int(key[len(SNAPSHOT):])].episode
        ckpt = load_checkpoint(key, device="cpu")
        meta = {"source": Path(key).name}
        if other is not None:
            return record_same_input(ckpt.model, other, meta)
        if ckpt.task is None:
            raise ConfigError(f"{Path(key).name} names no task to sample an input from")
        task = ckpt.task.at(self.length.value) if self.length.value else ckpt.task
        batch = task.sample(1, seed=self.seed.value) if self.length.value else probe_batch(task, self.seed.value)
        return record(ckpt.model, batch, meta={**meta, "task": task.name, "seed": self.seed.value,
                                               "input_labels": list(task.input_labels),
                                               "output_labels": list(task.output_labels)})[0]

    def compare(self) -> bool:
        """Record / fetch the two picked sources and show them; False (with a message) if not."""
        a, b = self.left_pick.value, self.right_pick.value
        if not a or not b:
            return self._fail("Pick two sources (checkpoints, or snapshots of a training run).")
        try:
            if b.startswith(SNAPSHOT) and not a.startswith(SNAPSHOT):
                right = self._episode(b, None)
                left = self._episode(a, right)
            else:
                left = self._episode(a, None)
                right = self._episode(b, left)
            if left.inputs.shape != right.inputs.shape or (left.inputs != right.inputs).any():
                raise ConfigError("the two sources were recorded on different inputs")
        except NtmvizError as exc:
            return self._fail(str(exc))
        except Exception as exc:
            return self._fail(f"could not compare: {type(exc).__name__}: {exc}")
        names = {v: k for k, v in self.left_pick.options.items()}
        self.show(left, right, (names.get(a), names.get(b)))
        return True

    def _fail(self, text: str) -> bool:
        self.message = text
        show_error(self.alert, text)
        return False

    # ---- showing -------------------------------------------------------------------------------
    def show(self, left: Episode | None, right: Episode | None, titles: tuple | None = None) -> None:
        """Put two episodes side by side (the same input) and go to step 0."""
        left, right = (dataclasses.replace(ep, meta={**ep.meta, "source": title}) if ep is not None and title else ep
                       for ep, title in zip((left, right), titles or (None, None)))
        self.message = ""
        clear(self.alert)
        self.t = 0
        self.left.episode, self.right.episode = left, right
        steps = max(self.left.steps, self.right.steps)
        self.param.t.bounds = (0, max(0, steps - 1))
        self.step.param.update(end=max(1, steps - 1), value=0, disabled=steps < 2)

    def _move(self, event) -> None:
        t = int(event.new)
        for s in (self.left, self.right):
            if s.steps:
                s.t = min(t, s.steps - 1)
        if self.step.value != t:
            self.step.value = t

    def __panel__(self):
        pickers = pn.Row(self.left_pick, self.right_pick, self.length, self.seed,
                         pn.Column(self.refresh_button, self.compare_button, width=160),
                         sizing_mode="stretch_width")
        return pn.Column(pickers, self.alert, self.step,
                         pn.Row(self._left_side, self._right_side, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")
