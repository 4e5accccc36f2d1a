"""The explorer's views: Player, MemoryView, FocusView, HeadLocationsView, SlotsView, SequenceView.

Each is a `pn.viewable.Viewer` on a shared `Playback` state. Build one alone from an episode
(`MemoryView(episode)` makes its own state) or several on one state so they move together:

    state = Playback(episode)
    pn.Column(Player(state=state), MemoryView(state=state), FocusView(state=state))

The drawing happens in the browser (an EpisodeCanvas each); `frame()` returns, in Python,
the numbers the view shows at the current step, for tests and for notebook users. Every view
draws what the episode's declaration holds (episode.family): its groups of heads with their
stages and params, its slot state, matrices and coordinates; heads the state hides (`hidden`)
are left out of every view.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import param
from panel.viewable import Viewer

from ..episode import Episode
from ..errors import ConfigError
from .canvas import EpisodeCanvas
from .payload import STEP_BUDGET, EpisodePayload, focus_fields, vector_fields
from .state import Playback

_SYNCED = ("t", "playing", "loop", "speed", "hidden")


class EpisodeView(Viewer):
    """Base class: one browser-drawn view on a shared Playback state."""

    state = param.ClassSelector(class_=Playback, doc="""
        The playback state (episode and step t) this view follows.""")

    kind: ClassVar[str] = ""

    def __init__(self, episode: Episode | None = None, *, state: Playback | None = None, **params):
        if state is None:
            state = Playback(episode)
        elif episode is not None:
            state.episode = episode
        super().__init__(state=state, **params)
        s = self.state
        self._plan: EpisodePayload | None = None
        self._canvas = EpisodeCanvas(
            kind=self.kind, group=s.group, payload=self._payload(), t=s.t, playing=s.playing,
            loop=s.loop, speed=s.speed, hidden=list(s.hidden), chunks=self._chunk, figures=self._figure_file, **self._canvas_layout(),
            **self._canvas_options())
        self._canvas.view = self
        self._canvas.param.watch(self._from_browser, list(_SYNCED) + ["diff"])
        s.param.watch(self._from_state, list(_SYNCED))
        s.param.watch(self._new_episode, ["episode", "scales"])

    # ---- what the canvas gets -------------------------------------------------------------
    step_budget: ClassVar[int] = STEP_BUDGET  # bytes of per-step arrays per message (payload.py)

    def _payload(self) -> dict[str, Any]:
        episode = self.state.episode
        self._plan = None if episode is None else EpisodePayload(episode, [self.kind], self.step_budget,
                                                                 scales=self.state.scales)
        return {} if self._plan is None else self._plan.initial(self.state.t)

    def _chunk(self, payload_id: str, c: int) -> dict[str, Any] | None:
        """Chunk c of the episode on show, as the browser asks for it (None: another episode)."""
        plan = self._plan
        return plan.chunk(c) if plan is not None and plan.id == payload_id else None

    def _canvas_options(self) -> dict[str, Any]:
        return {}

    @property
    def canvas(self) -> EpisodeCanvas:
        """The component that draws this view in the browser."""
        return self._canvas

    # ---- keeping the canvas and the state in step -------------------------------------------
    def _from_browser(self, *events: param.parameterized.Event) -> None:
        s = self.state
        for ev in events:
            if ev.name in _SYNCED:
                s._browser_update = True
                try:
                    value = ev.new
                    if ev.name == "t":
                        value = min(max(0, int(value)), max(0, s.steps - 1))
                    elif ev.name == "hidden":
                        value = s.valid_hidden(value)
                    setattr(s, ev.name, value)
                finally:
                    s._browser_update = False
            else:
                self._browser_option(ev.name, ev.new)

    def _browser_option(self, name: str, value: Any) -> None:
        pass

    def _from_state(self, *events: param.parameterized.Event) -> None:
        changes = {ev.name: ev.new for ev in events}
        if self.state._browser_update:
            # The browser already shows it (all views of a group share t there): record the
            # value here without sending it back. One setattr per name: param.update() reads
            # every parameter's value first, and this runs for each view at each step a playing
            # page reports (the served app's main cost with many pages playing).
            with param.discard_events(self._canvas):
                for name, value in changes.items():
                    setattr(self._canvas, name, value)
        else:
            self._canvas.param.update(**changes)

    def _new_episode(self, event: param.parameterized.Event) -> None:
        self._canvas.param.update(payload=self._payload(), t=self.state.t)

    def __panel__(self):
        return self._canvas

    def _canvas_layout(self) -> dict[str, Any]:
        """How the canvas sizes itself in a Panel layout. Views whose panels wrap (one per head,
        or the vectors beside the timeline) take the width they are given, so nothing needs
        horizontal scrolling; see MemoryView and FocusView for the others."""
        return {"sizing_mode": "stretch_width"}

    # ---- readouts ---------------------------------------------------------------------------
    @property
    def episode(self) -> Episode | None:
        return self.state.episode

    @property
    def t(self) -> int:
        return self.state.t

    def frame(self) -> dict[str, Any]:
        """What the view shows at the current step t, as numbers."""
        return {"t": self.t}

    # ---- figures for papers -------------------------------------------------------------------
    def _figure_options(self) -> dict[str, Any]:
        return {}

    def figure(self, step: int | None = None, **options):
        """This view at `step` (default: its current step t) as a figures.Figure (SVG / PNG),
        with the options it shows (e.g. the memory's show change, the heads the state hides);
        see figures.figure."""
        from .figures import figure

        if not self.kind or self.kind == "player":
            raise ConfigError("the player has no figure: save the memory, focus, heads, slots or sequence view")
        if self.state.episode is None:
            raise ConfigError("no episode to draw")
        options = {"hidden": tuple(self.state.hidden), **self._figure_options(), **options}
        return figure(self.state.episode, self.kind, self.t if step is None else step, **options)

    def _figure_file(self, fmt: str, t: int, options: dict[str, Any]) -> tuple[str, str, bytes]:
        """What the app's Save figure buttons download: (file name, MIME type, bytes) of this
        view at step t with the options the browser shows ({diff, zoom, window}: the memory's
        show change, the head locations' zoom, the timelines' time window)."""
        from .figures import figure_format
        from .sources import episode_filename

        fmt = figure_format(f"figure.{fmt}")
        wanted = {"memory": ("diff",), "heads": ("zoom", "window"), "sequence": ("window",), "slots": ("window",)}
        fig = self.figure(t, **{k: options.get(k) for k in wanted.get(self.kind, ()) if options.get(k) is not None})
        body = fig.svg().encode("utf-8") if fmt == "svg" else fig.png()
        name = episode_filename(self.state.episode, f"-{self.kind}-step{fig.step}.{fmt}")
        return name, "image/svg+xml" if fmt == "svg" else "image/png", body

    def save(self, path, step: int | None = None, *, format: str | None = None, scale: float | None = None,
             **options):
        """Write this view at `step` (default: its current step t) as a figure for a paper:
        `view.save("fig.svg")` (vector) or `view.save("fig.png", scale=4)` (default 3x)."""
        from .figures import figure_format

        fmt = figure_format(path, format)
        return self.figure(step, **options).save(path, fmt, scale)


def _visible(episode: Episode, hidden) -> list[tuple[str, int, str, Any]]:
    """(group, index in group, label, HeadRecord) of every head not hidden, in order."""
    return [head for i, head in enumerate(episode.head_list()) if i not in set(hidden)]


class Player(EpisodeView):
    """Play / pause, step forward / back, first / last, loop, speed and a slider over steps.

    Keys (anywhere on the page, outside text fields): left / right arrows step, space plays
    or pauses, Home / End jump to the first / last step. Beside them, a key to the heads: one
    button per head, in its colour, that hides or shows it in every view."""

    kind = "player"

    def frame(self) -> dict[str, Any]:
        s = self.state
        return {"t": s.t, "steps": s.steps, "playing": s.playing, "loop": s.loop, "speed": s.speed,
                "hidden": list(s.hidden)}


class MemoryView(EpisodeView):
    """The N x M memory after step t (slots down, width across), with every head's weighting
    at t in a strip beside it and its most weighted slot outlined; `diff` shows the change
    step t made instead (memory[t+1] - memory[t])."""

    kind = "memory"

    diff = param.Boolean(default=False, doc="""
        Show the change step t made, memory[t+1] - memory[t], instead of memory[t+1].""")

    def __init__(self, episode: Episode | None = None, **params):
        super().__init__(episode, **params)
        self.param.watch(lambda e: setattr(self._canvas, "diff", e.new), "diff")

    def _canvas_options(self) -> dict[str, Any]:
        return {"diff": self.diff}

    def _canvas_layout(self) -> dict[str, Any]:
        return {}  # as wide as it draws (about 350 px): the focus can sit beside it

    def _browser_option(self, name: str, value: Any) -> None:
        if name == "diff":
            self.diff = value

    def _figure_options(self) -> dict[str, Any]:
        return {"diff": self.diff}

    def frame(self) -> dict[str, Any]:
        ep, t = self.episode, self.t
        if ep is None or not ep.has_memory:
            return {"t": t, "memory": None}
        after, before = ep.memory_after(t), ep.memory_before(t)
        diff = self.diff and not ep.static_memory  # a static memory never changes
        return {
            "t": t,
            "memory": after - before if diff else after,  # [N, M]
            "diff": diff,
            "static": ep.static_memory,
            "focused": {label: int(np.argmax(rec.weights[t, h])) for _, h, label, rec in _visible(ep, self.state.hidden)},
        }


class HeadLocationsView(EpisodeView):
    """For each head, its weighting over time (steps across, slots down, as in the paper's
    figures) with a marker at t; clicking or dragging jumps to a step. Zoom to the busy slots
    (on by default where the heads use at most half of them) and to a window of time."""

    kind = "heads"

    def frame(self) -> dict[str, Any]:
        ep, t = self.episode, self.t
        if ep is None or not ep.has_memory:
            return {"t": t, "heads": {}}
        return {"t": t, "marker": t,
                "heads": {label: rec.weights[:, h] for _, h, label, rec in _visible(ep, self.state.hidden)}}


class FocusView(EpisodeView):
    """Each head's addressing at step t: the weightings of its declared stages in order and the
    final one (the NTM's content, gated, shifted, weights), each on its own scale, and its numbers
    (the NTM's key strength β, gate g, shift distribution s, sharpening γ)."""

    kind = "focus"

    def frame(self) -> dict[str, Any]:
        ep, t = self.episode, self.t
        if ep is None or not ep.has_memory:
            return {"t": t, "heads": {}}
        heads = {}
        for group, h, label, rec in _visible(ep, self.state.hidden):
            arrays = rec.arrays()
            fields = focus_fields(ep.family.group(group))
            heads[label] = {f: (arrays[f][t, h] if arrays[f].ndim == 3 else float(arrays[f][t, h])) for f in fields}
        return {"t": t, "heads": heads}


class SlotsView(EpisodeView):
    """What the memory's slots hold besides their words, as the model declares it: each slot
    state (a DNC's usage, a stack's strengths) as a slot x time image with its values at t,
    each slot x slot matrix (temporal links) at t, and slots placed in a plane with every head's
    weighting at t around its points. Says so when the model declares none of them."""

    kind = "slots"

    def frame(self) -> dict[str, Any]:
        ep, t = self.episode, self.t
        if ep is None:
            return {"t": t}
        out: dict[str, Any] = {"t": t, "state": {k: a[t] for k, a in ep.slot_state.items()},
                               "matrices": {k: a[t] for k, a in ep.slot_matrices.items()}}
        if ep.slot_coords is not None:
            out["coords"] = ep.slot_coords
            out["weights"] = {label: rec.weights[t, h] for _, h, label, rec in _visible(ep, self.state.hidden)}
        return out


class SequenceView(EpisodeView):
    """Inputs, targets and outputs over time with the task's measure at each step (wrong bits
    outlined, or the bits above the optimum) and a marker at t, and the vectors of step t: each
    head's vector params (the NTM's key, erase, add) and the read vectors."""

    kind = "sequence"

    def frame(self) -> dict[str, Any]:
        ep, t = self.episode, self.t
        if ep is None:
            return {"t": t}
        out: dict[str, Any] = {"t": t, "input": None if ep.inputs is None else ep.inputs[t],
                               "output": None if ep.outputs is None else ep.outputs[t],
                               "target": None if ep.targets is None else ep.targets[t]}
        if ep.targets is not None and ep.outputs is not None:
            out["score"] = float(ep.step_scores()[t])  # of ep.error_name: wrong bits, a wrong answer, bits
        if ep.has_memory:
            vectors = {}
            reader = next((g.name for g in ep.family.groups if g.reads), None)
            for group, h, label, rec in _visible(ep, self.state.hidden):
                for p in vector_fields(ep.family.group(group)):
                    vectors[f"{label} {p}"] = rec.params[p][t, h]
                if group == reader and ep.reads is not None:
                    vectors[f"{label} read"] = ep.reads[t, h]
            out["vectors"] = vectors
        return out
