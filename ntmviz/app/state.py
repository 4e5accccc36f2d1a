"""The one playback state every view shares: the episode on show and the current step t."""

from __future__ import annotations

import uuid

import param

from ..episode import Episode


class Playback(param.Parameterized):
    """The episode on show and the step t, shared by the player and every view.

    Moving `t` (from Python, the player, the slider, the keys or a click in a view) moves
    every view built on this state. A new state starts at the episode's opening step (the
    middle of its scored steps). Setting `episode` resets t's bounds to 0 .. T-1 and keeps t
    where it was when the new episode is long enough.

    In the browser the views of one Playback animate together without the server (they
    share a group named by `group`); the browser reports t back here at most a few times a
    second while playing, and once when playback stops.
    """

    episode = param.ClassSelector(class_=Episode, allow_None=True, default=None, doc="""
        The recorded episode on show (None shows an empty view).""")

    t = param.Integer(default=0, bounds=(0, 0), doc="""
        The current step, 0 .. T-1.""")

    playing = param.Boolean(default=False, doc="""
        Whether the browser is playing the episode.""")

    loop = param.Boolean(default=False, doc="""
        Start again from step 0 after the last step when playing.""")

    speed = param.Integer(default=10, bounds=(1, 120), doc="""
        Playback speed in steps per second.""")

    scales = param.Dict(default={}, doc="""
        Colour scales every view of this state uses instead of its episode's own (the payload's
        names: "memory", "memory.diff", "slot.<name>", "matrix.<name>"): Compare gives both of its
        sides one scale, so a colour means the same value on either side.""")

    hidden = param.List(default=[], item_type=int, doc="""
        The heads every view leaves out, by number (Episode.head_list's order). A new episode
        keeps those it still has.""")

    group = param.String(default="", constant=True, doc="""
        The id under which this state's views meet in the browser.""")

    def __init__(self, episode: Episode | None = None, **params):
        params.setdefault("group", f"ntmviz-{uuid.uuid4().hex[:12]}")
        # a new state opens on a step worth seeing (Episode.opening_step: mid-way through what is scored)
        t = params.pop("t", None)
        if t is None:
            t = episode.opening_step() if episode is not None else 0
        super().__init__(episode=episode, **params)
        self._browser_update = False  # set while applying a change the browser made
        self._bounds()
        self.t = min(max(0, int(t)), self.steps - 1 if self.steps else 0)

    @property
    def steps(self) -> int:
        """T of the episode (0 without one)."""
        return self.episode.steps if self.episode is not None else 0

    @param.depends("episode", watch=True)
    def _bounds(self) -> None:
        last = max(0, self.steps - 1)
        if self.t > last:
            self.t = last
        self.param.t.bounds = (0, last)
        kept = self.valid_hidden(self.hidden)
        if kept != self.hidden:
            self.hidden = kept

    def show_episode(self, episode: Episode | None, t: int | None = None) -> None:
        """Show `episode` at step t (default: its opening step) in one change, so the views send
        the browser its arrays and the step together (a step sent after them could undo a move
        the user made in between)."""
        if t is None:
            t = episode.opening_step() if episode is not None else 0
        steps = episode.steps if episode is not None else 0
        t = min(max(0, int(t)), max(0, steps - 1))
        low, high = self.param.t.bounds
        self.param.t.bounds = (0, max(high or 0, t))  # room for t while the old episode's bounds hold
        self.param.update(episode=episode, t=t)

    def valid_hidden(self, heads) -> list[int]:
        """`heads` as the sorted head numbers this episode has (others are dropped)."""
        count = len(self.episode.head_list()) if self.episode is not None else 0
        return sorted({int(h) for h in heads if 0 <= int(h) < count})

    def hide(self, *heads: int) -> None:
        """Leave these heads (by number) out of every view."""
        self.hidden = self.valid_hidden([*self.hidden, *heads])

    def show(self, *heads: int) -> None:
        """Show these heads again (no heads given: every head)."""
        self.hidden = [] if not heads else [h for h in self.hidden if h not in set(heads)]

    # ---- moves, as the player buttons make them ----------------------------------------------
    def step_forward(self) -> None:
        """One step on (wraps to 0 when looping)."""
        if self.steps:
            self.t = (self.t + 1) % self.steps if self.loop else min(self.t + 1, self.steps - 1)

    def step_back(self) -> None:
        """One step back (wraps to the last step when looping)."""
        if self.steps:
            self.t = (self.t - 1) % self.steps if self.loop else max(self.t - 1, 0)

    def first(self) -> None:
        self.t = 0

    def last(self) -> None:
        self.t = max(0, self.steps - 1)
