"""What the heads did: the vocabulary the tasks' mechanism metrics share, and pure helpers.

Each task says what its algorithm (the paper's) looks like in the head weightings, as a tuple
of `Mechanism`s (`Task.mechanisms`), and measures one recorded episode with
`Task.measure_mechanisms(trace)`, which returns a `Reading` (a number and a sentence) per
mechanism. The arrays come in a `Trace` of plain numpy arrays, so the tasks know nothing of
Episode or recording (ntmviz/mechanisms.py records held-out sequences and aggregates).

Shapes: T steps, I input width, R read and W write heads, N memory slots.

    Trace.inputs  [T, I]     what went in at each step
    Trace.read    [T, R, N]  the read heads' weightings (the ones used, after sharpening)
    Trace.write   [T, W, N]  the write heads' weightings
    Trace.extra   {name: array}  the rest of the episode's arrays (a DNC's usage, read modes)

A head's *location* at step t is its weighting's largest slot. With several heads of a kind,
a step's location is the slot with the most weight summed over those heads: where that step's
reading (or writing) went. A mechanism marked `per_head` measures each head of a kind alone
instead, so a head that does the paper's work is seen beside others that do something else.

Playback lag: the model reads at step t and outputs y_t = f(h_t, r_t), but a trained model may
instead carry the read to the next step's output through its controller (the shipped copy NTM
reads at step t what it writes out at step t + 1). Where a task plays something back, its
readings take the lag (0 or 1) as an argument; `Task.playback_lag(trace)` gives the one that
fits the episode best, and ntmviz/mechanisms.py fixes one lag per model (the one most
episodes fit), so an episode whose read head is one slot off is caught rather than explained
away by the other lag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

LAGS = (0, 1)  # playback lags a model may use: the read at step t shows in the output at t + lag


class Trace(NamedTuple):
    """One episode's arrays, as the mechanism metrics read them (see the module docstring)."""

    inputs: np.ndarray  # [T, I]
    read: np.ndarray  # [T, R, N]
    write: np.ndarray  # [T, W, N]
    # the episode's other arrays by their flat names (Episode.arrays()): "slot.usage" [T, N],
    # "read.modes" [T, R, 3], ... for mechanisms of families that have them; None: none
    extra: dict | None = None

    def get(self, name: str) -> np.ndarray | None:
        """One of `extra`'s arrays, or None."""
        return (self.extra or {}).get(name)

    @property
    def slots(self) -> int:
        """N."""
        return self.read.shape[-1]


@dataclass(frozen=True)
class Mechanism:
    """One measurable part of a task's algorithm.

    kind "rate": each episode passes (1) or fails (0); over many episodes the value is the
    fraction that pass (95% Wilson interval). kind "mean": each episode gives a number; over
    many, the value is their mean (95% bootstrap interval). The model shows the paper's
    mechanism when the value (its absolute value if `two_sided`) is at least `threshold`.
    """

    name: str  # a key: "parked"
    title: str  # a short label: "parked read head stays put"
    measures: str  # what is measured, on which steps, and what the paper's algorithm scores
    kind: str  # "rate" or "mean"
    threshold: float
    verdict: str  # plain words over {value}, {miss} = 1 - value, {size} = |value|
    two_sided: bool = False  # either sign is the mechanism (e.g. sorting up or down)
    # "read" or "write": measured for each head of that kind; an episode's Reading.heads holds one
    # value per head (its value is the best head's); over many episodes one head per model is
    # reported, the one with the best aggregate, as one playback lag is fixed per model
    # (ntmviz/mechanisms.py). "": the heads of a kind are taken together (module docstring).
    per_head: str = ""
    # The families of model (contract.Family.name) whose algorithm this is: the paper's NTM
    # algorithms say nothing of how a DNC or a memory network should use its memory, so an
    # episode of another family is not judged by them ("does not apply").
    families: tuple[str, ...] = ("ntm",)

    def passes(self, value: float) -> bool:
        """Whether `value` (one episode's or an average) shows the mechanism; False for NaN."""
        if value is None or math.isnan(value):
            return False
        return (abs(value) if self.two_sided else value) >= self.threshold

    def says(self, value: float) -> str:
        """The verdict in words for `value`."""
        if value is None or math.isnan(value):
            return f"{self.title}: does not apply"
        return self.verdict.format(value=value, miss=1 - value, size=abs(value))

    @property
    def target(self) -> str:
        """The threshold in words: ">= 0.95", "|value| >= 0.95", ">= 99% of sequences"."""
        if self.kind == "rate":
            return f">= {self.threshold:.0%} of sequences"
        return f">= {self.threshold:g}" + (" either sign" if self.two_sided else "")


class Reading(NamedTuple):
    """One mechanism measured on one episode."""

    value: float  # NaN when it does not apply to this episode (e.g. a copy of one vector has no moves)
    note: str  # what this episode's heads did, in words
    heads: tuple[float, ...] | None = None  # [H] each head's value, for a per_head mechanism


NOT_APPLICABLE = float("nan")


# ---- locations ------------------------------------------------------------------------------

def locations(weights: np.ndarray) -> np.ndarray:
    """weights [T, H, N] -> [T] int: each step's slot with the most weight summed over the heads."""
    return np.asarray(weights).sum(1).argmax(-1)


def focus(weights: np.ndarray) -> np.ndarray:
    """weights [T, H, N] -> [T]: the largest weight of the heads' mean weighting (1 = all on one slot)."""
    w = np.asarray(weights)
    return w.mean(1).max(-1)


def signed_step(a, b, slots: int):
    """The shortest move from slot a to slot b on a ring of `slots`, in (-slots/2, slots/2]."""
    d = (np.asarray(b) - np.asarray(a)) % slots
    return np.where(d > slots // 2, d - slots, d)


def path(slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slots a head passes through, in order, a stay on one slot counted once.

    slots [T] -> (visited [P] slots, first [P] the step each was reached)."""
    slots = np.asarray(slots)
    if slots.size == 0:
        return slots, slots
    new = np.ones(slots.size, bool)
    new[1:] = slots[1:] != slots[:-1]
    first = np.flatnonzero(new)
    return slots[first], first


def walk_direction(moves: np.ndarray) -> int:
    """+1 or -1: the one-slot move the head makes most often (+1 on a tie or with no such move)."""
    moves = np.asarray(moves)
    return -1 if (moves == -1).sum() > (moves == 1).sum() else 1


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0 .. n-1 of x [n], tied values sharing their mean rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    r = np.empty(x.size)
    r[order] = np.arange(x.size)
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            r[tied] = r[tied].mean()
    return r


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of x and y [n] (ties get mean ranks): +1 when y grows with
    x, -1 when it falls; 0 when either is constant (no order at all); NaN for n < 2."""
    if len(x) < 2:
        return NOT_APPLICABLE
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return 0.0 if denom == 0 else float((rx * ry).sum() / denom)


def unwrap(slots: np.ndarray, n_slots: int) -> np.ndarray:
    """Slots on a ring -> signed offsets from their circular mean, in (-N/2, N/2]: so a head
    writing 126, 127, 0, 1 has locations that keep their order (-2, -1, 0, 1 about the mean)."""
    slots = np.asarray(slots)
    angle = 2 * np.pi * slots / n_slots
    centre = math.atan2(float(np.sin(angle).mean()), float(np.cos(angle).mean())) * n_slots / (2 * np.pi)
    return signed_step(np.round(centre).astype(int) % n_slots, slots, n_slots)


def first_step(flags: np.ndarray) -> int | None:
    """The first step where flags [T] is true, or None."""
    hits = np.flatnonzero(np.asarray(flags))
    return int(hits[0]) if hits.size else None


def context_addressing(slots: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Whether a head addresses by context, step by step: slots [S], contexts [S] -> [S] bool.

    Step i hits when the last earlier step that visited slot[i] is the last earlier step with
    context[i] (the head came back to the slot it used for this context, and no other context
    used that slot since), or when neither the slot nor the context occurred before (a new
    context goes to a new slot). A head with one slot per context hits on every step; a head
    that stays on one slot hits only when the context repeats at once."""
    last_of_slot: dict[int, int] = {}
    last_of_context: dict[int, int] = {}
    hits = np.zeros(len(slots), bool)
    for i, (s, c) in enumerate(zip(np.asarray(slots).tolist(), np.asarray(contexts).tolist())):
        hits[i] = last_of_slot.get(s, -1) == last_of_context.get(c, -1)
        last_of_slot[s] = last_of_context[c] = i
    return hits


def fraction(hits: int, total: int) -> float:
    """hits / total, NaN when total is 0."""
    return hits / total if total else NOT_APPLICABLE


def slot_list(slots, limit: int = 8) -> str:
    """'0, 1, 2' (at most `limit` slots, then '...')."""
    slots = [int(s) for s in slots]
    text = ", ".join(str(s) for s in slots[:limit])
    return text + (", ..." if len(slots) > limit else "")


# ---- the DNC's mechanisms (Graves et al. 2016): allocation, temporal links, reuse ---------------
# Each needs arrays only a DNC records (Trace.extra); without them a reading does not apply.

DNC = ("dnc",)


def least_used(trace: Trace, steps: list[int]) -> Reading:
    """The fraction of `steps` whose write went to a least-used slot: the write location's usage
    (slot.usage at that step: what the allocation read) within 0.01 of the smallest."""
    usage = trace.get("slot.usage")
    if usage is None or not steps:
        return Reading(NOT_APPLICABLE, "the episode records no usage")
    where = locations(trace.write)
    hits = [t for t in steps if usage[t, where[t]] <= usage[t].min() + 0.01]
    return Reading(len(hits) / len(steps), f"{len(hits)} of {len(steps)} writes went to a least-used slot")


def follows_links(trace: Trace, steps: list[int]) -> Reading:
    """The fraction of `steps` (reads after the first of a playback) whose read weighting came
    mostly through the forward temporal link (read mode "forward" the largest, summed over the
    read heads) and whose location is where the forward weighting points."""
    modes, forward = trace.get("read.modes"), trace.get("read.forward")
    if modes is None or forward is None or not steps:
        return Reading(NOT_APPLICABLE, "the episode records no read modes")
    where = locations(trace.read)
    ahead = locations(forward)
    hits = [t for t in steps if t < len(where) and modes[t].sum(0).argmax() == 2 and where[t] == ahead[t]]
    return Reading(len(hits) / len(steps), f"{len(hits)} of {len(steps)} playback reads followed the forward link")
