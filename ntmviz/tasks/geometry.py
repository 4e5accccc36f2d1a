"""The pointer network's tasks (Vinyals, Fortunato & Jaitly 2015): sort n numbers, find the convex
hull of n points in the plane, and the shortest tour of n cities. Each answer is a sequence of
pointers at the inputs.

    sort_numbers   n numbers uniform in [0, 1)     -> their positions, smallest number first
    convex_hull    n points uniform in [0, 1)^2    -> the hull's points counter-clockwise, starting
                                                       from the hull point of lowest index (the paper's
                                                       convention), then the end
    tsp            n cities uniform in [0, 1)^2    -> the shortest closed tour (exact, Held-Karp, for
                                                       n <= 12) from city 1, towards the lower-index
                                                       of its two neighbours, then the end

Positions: 0 is the end of the answer (the paper's extra position), 1..n the inputs in the
order given. Every answer ends by pointing at 0, so a hull may have any size. An item of n
inputs is one Batch item of T = n + 1 steps, step t showing input t and answering pointer t:

    channel           step t < n                 step n
    features (F)      input t (a number; x, y)   0
    "input"           1                          0
    "previous"        the target pointer of step t - 1 (0 at step 0): the decoder's input
                      under teacher forcing, read by the model in training mode only

    targets [T, O]    one-hot over the O = positions + 1 pointers: the answer's pointer t, up to
                      and with its end; zeros after
    mask [T]          1 on the answer's steps (the end included), 0 after (a hull of h points
                      is scored on h + 1 steps)

O is fixed by `positions` (50), the most inputs any variant of the task may have, so one model
points over 5 points or 50. The loss is the cross-entropy of the pointers (nats per answer);
`bit_errors` counts wrong pointers per answer (the argmax against the target).

The paper's Table 1 measures for hulls (`polygon_scores`): a polygon is the model's pointers up
to its first end. It is exact when it is the true hull up to its starting point (same points,
same counter-clockwise order). Its area coverage is its area over the true hull's; a polygon
that is not valid (fewer than 3 points, a point twice, or edges that cross) covers 0 and is
counted as invalid beside (the paper marks a model FAIL when its polygons are not valid in
more than 1% of cases: `INVALID_FAIL`).

Hulls are computed with Andrew's monotone chain on the float32 coordinates the model sees;
points on a hull edge (collinear) are not hull points.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from .base import Batch, Task, check_int, check_range, span
from .mechanism import NOT_APPLICABLE, Mechanism, Reading, Trace

POSITIONS = 50  # inputs a model of these tasks points over at most (its output is POSITIONS + 1 wide)
END = 0  # the pointer that ends an answer
INVALID_FAIL = 0.01  # the paper's FAIL: more invalid polygons than this fraction


# ---- geometry ---------------------------------------------------------------------------------

def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The z of (a - o) x (b - o): > 0 when o, a, b turn counter-clockwise."""
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def convex_hull(points: np.ndarray) -> list[int]:
    """points [n, 2] -> the indices of the convex hull's vertices, counter-clockwise, starting
    from the lowest index (Andrew's monotone chain, in float64; collinear points on an edge are
    left out). Fewer than 3 points or all on one line: the distinct extremes only."""
    p = np.asarray(points, np.float64)
    order = sorted(range(len(p)), key=lambda i: (p[i, 0], p[i, 1]))
    if len(order) < 3:
        return sorted(order)

    def chain(indices):
        out: list[int] = []
        for i in indices:
            while len(out) >= 2 and cross(p[out[-2]], p[out[-1]], p[i]) <= 0:
                out.pop()
            out.append(i)
        return out

    lower, upper = chain(order), chain(order[::-1])
    hull = lower[:-1] + upper[:-1]  # each chain's last point is the other's first
    if not hull:
        return []
    start = hull.index(min(hull))
    return hull[start:] + hull[:start]


def polygon_area(points: np.ndarray, indices: list[int]) -> float:
    """The area of the polygon through points[indices] in order (shoelace formula; >= 0)."""
    if len(indices) < 3:
        return 0.0
    q = np.asarray(points, np.float64)[indices]
    x, y = q[:, 0], q[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def _segments_cross(a, b, c, d) -> bool:
    """Whether segments ab and cd share a point (proper crossing or touching)."""
    d1, d2, d3, d4 = cross(c, d, a), cross(c, d, b), cross(a, b, c), cross(a, b, d)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True

    def on(p, q, r):  # r on segment pq, given they are collinear
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    return ((d1 == 0 and on(c, d, a)) or (d2 == 0 and on(c, d, b)) or (d3 == 0 and on(a, b, c))
            or (d4 == 0 and on(a, b, d)))


def is_simple_polygon(points: np.ndarray, indices: list[int]) -> bool:
    """Whether points[indices] in order make a valid polygon: at least 3 points, none twice, a
    nonzero area, and no two edges that are not neighbours share a point."""
    if len(indices) < 3 or len(set(indices)) != len(indices):
        return False
    p = np.asarray(points, np.float64)
    if polygon_area(p, indices) == 0:
        return False
    m = len(indices)
    edges = [(p[indices[i]], p[indices[(i + 1) % m]]) for i in range(m)]
    for i in range(m):
        for j in range(i + 1, m):
            if j == i + 1 or (i == 0 and j == m - 1):
                continue  # neighbours share their common vertex
            if _segments_cross(*edges[i], *edges[j]):
                return False
    return True


def same_cycle(a: list[int], b: list[int]) -> bool:
    """Whether sequence a is sequence b up to its starting point (a rotation of it)."""
    if len(a) != len(b):
        return False
    if not a:
        return True
    if a[0] not in b:
        return False
    k = b.index(a[0])
    return a == b[k:] + b[:k]


class PolygonScore(NamedTuple):
    """One answer of a hull task measured as the paper's Table 1 does."""

    exact: bool  # the polygon is the true hull up to its starting point
    valid: bool  # is_simple_polygon
    coverage: float  # its area / the true hull's area; 0 when not valid


def polygon_score(points: np.ndarray, polygon: list[int]) -> PolygonScore:
    """points [n, 2], polygon: 0-based point indices in order -> its PolygonScore."""
    hull = convex_hull(points)
    valid = is_simple_polygon(points, polygon)
    area = polygon_area(points, hull)
    coverage = polygon_area(points, polygon) / area if valid and area > 0 else 0.0
    return PolygonScore(same_cycle(list(polygon), hull), valid, coverage)


def answer_of(pointers) -> list[int]:
    """Pointers (0 the end, 1..n the inputs) -> the 0-based input indices before the first end."""
    out = []
    for p in np.asarray(pointers).tolist():
        if int(p) == END:
            break
        out.append(int(p) - 1)
    return out


# ---- the tasks ------------------------------------------------------------------------------

SUCCESSOR = Mechanism(
    "successor", "the attention's peak is the next item",
    "The fraction of an answer's steps (its end included) whose attention peak (a pointer network's "
    "pointer; its baseline's read) is the successor of "
    "the previous step's peak in the true answer: the first item at step 0, then each item's next "
    "(the next number up; the next hull point counter-clockwise; the next city of the tour), the end "
    "after the last. A peak off the answer (a point inside the hull) has no successor: the step "
    "after it misses. So a slip costs a step or two, not the rest of the answer. The algorithm: 1.",
    "mean", 0.9,
    "the attention's peak went to the next item on {value:.1%} of steps", families=("pointer",))


@dataclass(frozen=True)
class PointerTask(Task):
    """What the pointer tasks share: the layout (module docstring), the loss, the scoring,
    the successor mechanism and typed input. Subclasses draw the inputs (`_draw`) and give the
    answer of one item (`answer`: its 0-based indices in order)."""

    min_n: int = 5
    max_n: int = 10
    positions: int = POSITIONS

    difficulty_name = "n"
    size_field = "max_n"
    eval_sizes = (20, 50)
    measure = "answer_errors"
    error_unit = "wrong pointers/answer"
    one_hot_outputs = True  # scored as one class of O per step (base.py)
    typed_input = True
    features: ClassVar[tuple[str, ...]] = ()  # the channels of one input
    least: ClassVar[int] = 1  # the fewest inputs an item may have
    mechanisms = (SUCCESSOR,)

    def __post_init__(self) -> None:
        check_range(self.name, "min_n", self.min_n, "max_n", self.max_n, minimum=self.least)
        check_int("positions", self.positions, minimum=self.least)
        if self.max_n > self.positions:
            raise ConfigError(f"{self.name}: {self.max_n} inputs, but the model points over at most "
                              f"{self.positions} (positions)")

    # ---- sizes ------------------------------------------------------------------------------
    @property
    def input_labels(self) -> tuple[str, ...]:
        return self.features + ("input", "previous")

    @property
    def output_labels(self) -> tuple[str, ...]:
        return ("end",) + tuple(str(i) for i in range(1, self.positions + 1))

    @property
    def pointer_features(self) -> int:
        """F, the numbers of one input (what the pointer network's encoder reads)."""
        return len(self.features)

    def required_slots(self) -> int:
        """One slot per input, and the end."""
        return self.max_n + 1

    def _size_phrase(self) -> str:
        return f"{self.name} of {self.max_n} inputs"

    def at(self, difficulty: int) -> "PointerTask":
        """Every item exactly `difficulty` inputs."""
        return dataclasses.replace(self, min_n=difficulty, max_n=difficulty)

    # ---- sampling ---------------------------------------------------------------------------
    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n inputs [n, F] float32."""
        return rng.random((n, len(self.features))).astype(np.float32)

    def answer(self, values: np.ndarray) -> list[int]:
        """One item's inputs [n, F] -> its answer: 0-based input indices in order (no end)."""
        raise NotImplementedError

    def answers(self, items: list[np.ndarray]) -> list[list[int]]:
        """`answer` of each item."""
        return [self.answer(v) for v in items]

    def _lay_out(self, items: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """Inputs [n_b, F] per item -> (inputs, targets, mask, lengths) (module docstring)."""
        B, Fw, O = len(items), len(self.features), self.output_size
        n = np.array([len(v) for v in items], np.int64)
        T = int(n.max()) + 1
        inputs = np.zeros((B, T, Fw + 2), np.float32)
        targets = np.zeros((B, T, O), np.float32)
        mask = np.zeros((B, T), np.float32)
        for b, (values, answer) in enumerate(zip(items, self.answers(items))):
            pointers = [i + 1 for i in answer] + [END]
            k = len(pointers)
            inputs[b, : n[b], :Fw] = values
            inputs[b, : n[b], Fw] = 1
            inputs[b, 1:k, Fw + 1] = pointers[:-1]
            targets[b, np.arange(k), pointers] = 1
            mask[b, :k] = 1
        return inputs, targets, mask, n + 1

    def _sample(self, batch_size: int, rng: np.random.Generator):
        n = rng.integers(self.min_n, self.max_n + 1, size=batch_size)
        return self._lay_out([self._draw(int(k), rng) for k in n])

    @staticmethod
    def values_of(inputs: np.ndarray, features: int) -> np.ndarray:
        """One item's inputs [T, I] -> its n inputs [n, F] (the steps flagged as inputs)."""
        x = np.asarray(inputs)
        return x[x[:, features] > 0.5, :features]

    def item_values(self, batch: Batch, index: int) -> np.ndarray:
        """Item `index`'s inputs [n, F]."""
        return self.values_of(batch.inputs[index].detach().cpu().numpy(), len(self.features))

    def item_answer(self, batch: Batch, index: int) -> list[int]:
        """Item `index`'s target pointers (0 the end), up to and with the end."""
        x = batch.targets[index].detach().cpu().numpy()
        m = batch.mask[index].detach().cpu().numpy() > 0
        return [int(p) for p in x[m].argmax(-1)]


    # ---- episodes and text ---------------------------------------------------------------------
    def slot_labels(self, values: np.ndarray) -> list[str]:
        """The N = n + 1 slots' labels: "end", then one per input."""
        return ["end"] + [str(i) for i in range(1, len(values) + 1)]

    def episode_extras(self, batch: Batch, outputs: list[np.ndarray]) -> list[dict[str, Any]]:
        """Each item's slots are labelled (the end, then its inputs); its answer and the model's
        (the pointers' argmax up to the first end) go into the metadata."""
        extras = []
        for index, out in enumerate(outputs):
            values = self.item_values(batch, index)
            meta = {"input_labels": list(self.input_labels), "output_labels": list(self.output_labels),
                    "answer": self.item_answer(batch, index),
                    "model_answer": [p + 1 for p in answer_of(np.asarray(out).argmax(-1))] + [END]}
            extras.append({"slot_labels": self.slot_labels(values), "meta": meta})
        return extras

    def render(self, batch: Batch, index: int = 0, outputs: Tensor | None = None) -> str:
        values = self.item_values(batch, index)
        lines = [self.describe()]
        lines += [f"{i + 1}: " + ", ".join(f"{v:.3f}" for v in row) for i, row in enumerate(values)]
        lines.append("answer: " + " ".join(str(p) for p in self.item_answer(batch, index)) + "  (0: the end)")
        if outputs is not None:
            out = outputs[index] if outputs.dim() == 3 else outputs
            lines.append("model:  " + " ".join(str(p + 1) for p in answer_of(out.argmax(-1).cpu().numpy())) + " 0")
        return "\n".join(lines)

    # ---- typed input -----------------------------------------------------------------------------
    def parse(self, text: str) -> np.ndarray:
        """What a person typed -> the inputs [n, F]; ConfigError naming what is wrong."""
        raise NotImplementedError

    def typed(self, text: str, seed: int = 0) -> tuple["PointerTask", Batch]:
        """The typed inputs as one item; the task fixed at their count."""
        values = self.parse(text)
        n = len(values)
        if n > self.positions:
            raise ConfigError(f"{n} inputs: a model of this task points over at most {self.positions}")
        fixed = dataclasses.replace(self, min_n=max(n, self.least), max_n=max(n, self.least))
        arrays = fixed._lay_out([values])
        return fixed, Batch(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))

    def typed_batch(self, text: str, seed: int = 0) -> Batch:
        return self.typed(text, seed)[1]

    # ---- what the pointer did ------------------------------------------------------------------
    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        """trace.inputs [T, I] the item's inputs; the pointer's weightings [T, 1, N] (the
        episode's "pointer.weights", else trace.read), N = n + 1 slots with the end at 0."""
        weights = trace.get("pointer.weights")
        if weights is None:
            weights = trace.read
        if weights is None or weights.shape[1] == 0:
            return {"successor": Reading(NOT_APPLICABLE, "the episode records no pointer")}
        values = self.values_of(trace.inputs, len(self.features))
        answer = [i + 1 for i in self.answer(values)] + [END]
        peaks = [int(p) for p in np.asarray(weights).sum(1).argmax(-1)[: len(answer)]]
        hits = successor_hits(answer, peaks)
        note = (f"answer {' '.join(map(str, answer))}; pointer peaks {' '.join(map(str, peaks))}; "
                f"{sum(hits)} of {len(hits)} steps went to the next item")
        return {"successor": Reading(sum(hits) / len(hits), note)}


def successor_hits(answer: list[int], peaks: list[int]) -> list[bool]:
    """answer: the true pointers, ending with END; peaks: the pointer's peak at each of those
    steps -> whether each step's peak is the successor of the previous step's peak in `answer`
    (step 0: answer[0]; after END: END; after a peak not in the answer: no successor)."""
    following = {a: b for a, b in zip(answer, answer[1:])}
    following[END] = END
    hits, previous = [], None
    for t, peak in enumerate(peaks):
        expected = answer[0] if t == 0 else following.get(previous)
        hits.append(expected is not None and peak == expected)
        previous = peak
    return hits


NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _number(text: str, where: str) -> float:
    text = text.strip()
    if not re.fullmatch(NUMBER, text):
        raise ConfigError(f"{where}: {text!r} is not a number")
    value = float(text)
    if not 0 <= value <= 1:
        raise ConfigError(f"{where}: {text} is outside 0..1")
    return value


@dataclass(frozen=True)
class SortNumbers(PointerTask):
    """Sort n numbers uniform in [0, 1): point at them smallest first."""

    name = "sort_numbers"
    features = ("number",)
    typed_hint = "Type numbers between 0 and 1, separated by commas or spaces, e.g. 0.42, 0.07, 0.91, 0.3."

    def describe(self) -> str:
        return f"sort numbers: {span(self.min_n, self.max_n)} numbers in [0, 1), pointed at smallest first"

    def answer(self, values: np.ndarray) -> list[int]:
        return [int(i) for i in np.argsort(np.asarray(values, np.float64)[:, 0], kind="stable")]

    def slot_labels(self, values: np.ndarray) -> list[str]:
        return ["end"] + [f"{float(v):.3g}" for v in np.asarray(values)[:, 0]]

    def parse(self, text: str) -> np.ndarray:
        """Numbers in 0..1, separated by commas, spaces or new lines."""
        parts = [p for p in re.split(r"[,\s]+", text) if p]
        if not parts:
            raise ConfigError("type at least one number between 0 and 1, e.g. 0.42, 0.07, 0.91")
        values = [_number(p, f"number {i}") for i, p in enumerate(parts, start=1)]
        return np.asarray(values, np.float32)[:, None]


@dataclass(frozen=True)
class ConvexHull(PointerTask):
    """The convex hull of n points uniform in the unit square: its points counter-clockwise from
    the one of lowest index."""

    name = "convex_hull"
    features = ("x", "y")
    least = 3
    typed_hint = "Type one point x,y per line, each between 0 and 1, at least 3 points, e.g. 0.1,0.2."

    def describe(self) -> str:
        return (f"convex hull: {span(self.min_n, self.max_n)} points in the unit square, the hull "
                f"counter-clockwise from its lowest-index point")

    def answer(self, values: np.ndarray) -> list[int]:
        return convex_hull(values)

    def parse(self, text: str) -> np.ndarray:
        """Points as `parse_points` reads them, not all on one line."""
        values = parse_points(text, "a hull")
        if polygon_area(values, convex_hull(values)) == 0:
            raise ConfigError("the points all lie on one line: they have no hull with an area")
        return values


def parse_points(text: str, what: str) -> np.ndarray:
    """One point "x,y" per line (blank lines skipped; a comma or spaces between), each coordinate
    in 0..1; at least 3 points, no point twice -> [n, 2] float32. `what` names the answer in the
    message for too few points ("a hull")."""
    points: list[tuple[float, float]] = []
    seen: dict[tuple[float, float], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        if len(parts) != 2:
            raise ConfigError(f"line {number}: expected a point x,y, got {line.strip()!r}")
        x = _number(parts[0], f"line {number}, x")
        y = _number(parts[1], f"line {number}, y")
        key = (float(np.float32(x)), float(np.float32(y)))
        if key in seen:
            raise ConfigError(f"line {number}: the point {x:g},{y:g} is already on line {seen[key]}")
        seen[key] = number
        points.append((x, y))
    if len(points) < 3:
        raise ConfigError(f"{what} needs at least 3 points, one x,y per line; got {len(points)}")
    return np.asarray(points, np.float32)


# ---- the travelling salesman -------------------------------------------------------------------

TSP_EXACT = 12  # the most cities whose optimal tour is computed here (Held-Karp: n^2 2^n)


def tour_length(points: np.ndarray, tour: list[int]) -> float:
    """The length of the closed tour through points[tour] in order (back to its start)."""
    q = np.asarray(points, np.float64)[tour]
    return float(np.sqrt(((q - np.roll(q, -1, axis=0)) ** 2).sum(-1)).sum()) if len(tour) > 1 else 0.0


def canonical_tour(tour: list[int]) -> list[int]:
    """The same closed tour starting at city 0, in the direction whose second city has the lower
    index of city 0's two neighbours."""
    k = tour.index(0)
    t = tour[k:] + tour[:k]
    return t if len(t) < 3 or t[1] < t[-1] else [0] + t[1:][::-1]


def optimal_tours(items: list[np.ndarray]) -> list[list[int]]:
    """The shortest closed tour of each item's cities [n, 2] (Held-Karp's dynamic programme over
    subsets, exact, vectorised over the items of one size), as canonical_tour gives it."""
    out: list[list[int] | None] = [None] * len(items)
    sizes = sorted({len(v) for v in items})
    for n in sizes:
        which = [b for b, v in enumerate(items) if len(v) == n]
        if n > TSP_EXACT:
            raise ConfigError(f"optimal tours are computed for at most {TSP_EXACT} cities, not {n}")
        if n <= 3:
            for b in which:
                out[b] = canonical_tour(list(range(n)))
            continue
        p = np.stack([np.asarray(items[b], np.float64) for b in which])  # [G, n, 2]
        d = np.sqrt(((p[:, :, None] - p[:, None]) ** 2).sum(-1))  # [G, n, n]
        G, m = len(which), n - 1  # cities 1..n-1 as bits 0..m-1; the tour starts at city 0
        full = 1 << m
        cost = np.full((G, full, m), np.inf)
        parent = np.zeros((G, full, m), np.int64)
        for j in range(m):
            cost[:, 1 << j, j] = d[:, 0, j + 1]
        for subset in range(1, full):
            members = np.array([j for j in range(m) if subset >> j & 1])
            if len(members) < 2:
                continue
            before = subset ^ (1 << members)  # [J]: the subset without its last city j
            # [G, J, K]: reach j last from k (k in the subset, k != j)
            candidates = cost[:, before[:, None], members[None, :]] + d[:, members[None, :] + 1, members[:, None] + 1]
            candidates[:, np.arange(len(members)), np.arange(len(members))] = np.inf
            best = candidates.argmin(-1)  # [G, J]
            cost[:, subset, members] = np.take_along_axis(candidates, best[..., None], -1)[..., 0]
            parent[:, subset, members] = members[best]
        last = (cost[:, full - 1] + d[:, 1:, 0]).argmin(-1)  # [G]
        for g, b in enumerate(which):
            tour, subset, j = [], full - 1, int(last[g])
            while subset:
                tour.append(j + 1)
                subset, j = subset ^ (1 << j), int(parent[g, subset, j])
            out[b] = canonical_tour([0] + tour[::-1])
    return out  # type: ignore[return-value]


class TourScore(NamedTuple):
    """One answer of the travelling salesman measured against the optimal tour."""

    valid: bool  # the answer visits every city once
    length: float  # its closed length (NaN when not valid)
    optimal: float  # the optimal tour's length


@dataclass(frozen=True)
class TravellingSalesman(PointerTask):
    """The shortest closed tour of n cities uniform in the unit square (planar symmetric TSP),
    exact (Held-Karp) for up to TSP_EXACT cities: from city 1, in the direction whose second city
    has the lower index of city 1's two neighbours, then the end."""

    name = "tsp"
    features = ("x", "y")
    least = 3
    eval_sizes = ()  # the optimum is exact only for small n
    typed_hint = f"Type one city x,y per line, each between 0 and 1, 3 to {TSP_EXACT} cities, e.g. 0.1,0.2."

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_n > TSP_EXACT:
            raise ConfigError(f"{self.name}: optimal tours are computed for at most {TSP_EXACT} cities, "
                              f"not {self.max_n} (max_n)")

    def describe(self) -> str:
        return f"travelling salesman: {span(self.min_n, self.max_n)} cities in the unit square, the optimal tour"

    def answer(self, values: np.ndarray) -> list[int]:
        return optimal_tours([values])[0]

    def answers(self, items: list[np.ndarray]) -> list[list[int]]:
        return optimal_tours(items)  # one vectorised programme per size, not one per item

    def parse(self, text: str) -> np.ndarray:
        values = parse_points(text, "a tour")
        if len(values) > TSP_EXACT:
            raise ConfigError(f"optimal tours are computed for at most {TSP_EXACT} cities, not {len(values)}")
        return values


def tour_score(points: np.ndarray, answer: list[int]) -> TourScore:
    """points [n, 2], answer: 0-based city indices in order -> its TourScore."""
    optimal = tour_length(points, optimal_tours([points])[0])
    valid = sorted(answer) == list(range(len(points)))
    return TourScore(valid, tour_length(points, answer) if valid else math.nan, optimal)


POINTER_TASKS = (SortNumbers, ConvexHull, TravellingSalesman)


# ---- the paper's Table 1 ----------------------------------------------------------------------

def polygon_scores(task: ConvexHull, batch: Batch, pointers: np.ndarray) -> list[PolygonScore]:
    """One PolygonScore per item: pointers [B, T] the model's pointers (0 the end)."""
    return [polygon_score(task.item_values(batch, b), answer_of(pointers[b])) for b in range(len(pointers))]


def greedy_pointers(model: torch.nn.Module, batch: Batch, each_once: bool = False) -> np.ndarray:
    """The model's own pointers [B, T] (eval mode: each step's argmax feeds the next step);
    each_once: each input at most once and the end after all (PointerNetwork.run)."""
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            inputs = batch.inputs.to(model.device)
            logits = model.run(inputs, each_once=True).logits if each_once else model(inputs)
    finally:
        model.train(was)
    return logits.argmax(-1).cpu().numpy()


def summary(scores: list[PolygonScore]) -> dict[str, Any]:
    """Table 1's numbers over many answers, with 95% intervals (Wilson for the rates, bootstrap
    for the mean coverage) and the count."""
    from ..intervals import mean_interval, wilson_interval

    n = len(scores)
    exact = sum(s.exact for s in scores)
    invalid = sum(not s.valid for s in scores)
    coverage = np.array([s.coverage for s in scores], np.float64)
    return {"samples": n, "accuracy": exact / n if n else math.nan, "accuracy_interval": wilson_interval(exact, n),
            "area": float(coverage.mean()) if n else math.nan, "area_interval": mean_interval(coverage),
            "invalid": invalid / n if n else math.nan, "invalid_interval": wilson_interval(invalid, n),
            "fail": bool(n and invalid / n > INVALID_FAIL)}
