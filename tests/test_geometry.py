"""Tests for the pointer tasks (tasks/geometry.py): the monotone-chain hull against a brute-force
hull (and scipy's), polygons and the paper's Table 1 scores, the batch
layout, the loss against a float64 cross-entropy, typed input and its errors, and the successor
steps of the mechanism."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ntmviz.errors import ConfigError
from ntmviz.tasks import get_task
from ntmviz.tasks.geometry import (
    END, TSP_EXACT, ConvexHull, PolygonScore, SortNumbers, TravellingSalesman, answer_of, canonical_tour,
    convex_hull, is_simple_polygon, optimal_tours, polygon_area, polygon_score, same_cycle, successor_hits, summary,
    tour_length, tour_score,
)

SQUARE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)


def brute_force_hull(points: np.ndarray) -> list[int]:
    """The hull's vertices counter-clockwise from the lowest index, by the definition: i -> j is
    a hull edge when every other point lies strictly to its left."""
    p = np.asarray(points, np.float64)
    n = len(p)
    following = {}
    for i, j in itertools.permutations(range(n), 2):
        d = p[j] - p[i]
        left = [d[0] * (p[k, 1] - p[i, 1]) - d[1] * (p[k, 0] - p[i, 0]) for k in range(n) if k not in (i, j)]
        if all(x > 0 for x in left):
            following[i] = j
    start = min(following)
    out = [start]
    while following[out[-1]] != start:
        out.append(following[out[-1]])
    return out


def signed_area(points, indices) -> float:
    q = np.asarray(points, np.float64)[indices]
    return sum(q[i, 0] * q[(i + 1) % len(q), 1] - q[(i + 1) % len(q), 0] * q[i, 1] for i in range(len(q))) / 2


@pytest.mark.parametrize("n", [3, 5, 10, 20, 50])
def test_the_hull_is_the_brute_force_hull(n):
    rng = np.random.default_rng(n)
    for _ in range(20 if n < 50 else 4):  # the brute force is n^3
        points = rng.random((n, 2)).astype(np.float32)
        hull = convex_hull(points)
        assert hull == brute_force_hull(points)
        assert hull[0] == min(hull) and signed_area(points, hull) > 0  # lowest index first, counter-clockwise


def test_the_hull_is_scipys():
    from scipy import spatial  # a test-only oracle (the test extra); Qhull, written independently
    rng = np.random.default_rng(7)
    for n in (3, 8, 20, 50):
        for _ in range(20):
            points = rng.random((n, 2))
            assert same_cycle(convex_hull(points), [int(i) for i in spatial.ConvexHull(points).vertices])


def test_collinear_and_inner_points_are_not_hull_points():
    points = np.array([[0, 0], [0.5, 0], [1, 0], [1, 1], [0.5, 0.5], [0, 1]], np.float64)
    assert convex_hull(points) == [0, 2, 3, 5]
    assert convex_hull(np.array([[0, 0], [1, 1], [2, 2]], np.float64)) == [0, 2]  # no area: the extremes


def test_polygons():
    assert polygon_area(SQUARE, [0, 1, 2, 3]) == 1.0
    assert polygon_area(SQUARE, [0, 1, 2]) == 0.5
    assert polygon_area(SQUARE, [3, 2, 1, 0]) == 1.0  # clockwise too
    assert is_simple_polygon(SQUARE, [0, 1, 2, 3]) and is_simple_polygon(SQUARE, [1, 2, 3])
    assert not is_simple_polygon(SQUARE, [0, 2, 1, 3])  # a bow tie: its diagonals cross
    assert not is_simple_polygon(SQUARE, [0, 1, 2, 1])  # a point twice
    assert not is_simple_polygon(SQUARE, [0, 1])  # too few
    line = np.array([[0, 0], [1, 0], [2, 0]], np.float64)
    assert not is_simple_polygon(line, [0, 1, 2])  # no area
    assert same_cycle([2, 3, 0, 1], [0, 1, 2, 3]) and not same_cycle([0, 3, 2, 1], [0, 1, 2, 3])
    assert not same_cycle([0, 1, 2], [0, 1, 2, 3])
    assert answer_of([3, 1, 2, 0, 5]) == [2, 0, 1] and answer_of([1, 2]) == [0, 1]


def test_table_1_scores():
    points = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.25]], np.float64)
    assert polygon_score(points, [0, 1, 2, 3]) == PolygonScore(True, True, 1.0)
    assert polygon_score(points, [2, 3, 0, 1]) == PolygonScore(True, True, 1.0)  # another start
    assert polygon_score(points, [0, 3, 2, 1]) == PolygonScore(False, True, 1.0)  # clockwise: not the answer
    # a pentagon with a notch at (0.5, 0.25): the square less the triangle (0,0), (1,0), (0.5,0.25)
    notch = polygon_score(points, [0, 4, 1, 2, 3])
    assert not notch.exact and notch.valid and notch.coverage == pytest.approx(1 - 0.5 * 1 * 0.25)
    assert polygon_score(points, [0, 1, 2]) == PolygonScore(False, True, 0.5)
    assert polygon_score(points, [0, 2, 1, 3]) == PolygonScore(False, False, 0.0)  # invalid: covers nothing
    assert polygon_score(points, []) == PolygonScore(False, False, 0.0)
    s = summary([PolygonScore(True, True, 1.0), PolygonScore(False, True, 0.5), PolygonScore(False, False, 0.0),
                 PolygonScore(True, True, 1.0)])
    assert s["samples"] == 4 and s["accuracy"] == 0.5 and s["area"] == 0.625 and s["invalid"] == 0.25
    assert s["fail"]  # more than 1% invalid
    low, high = s["accuracy_interval"]
    z = 1.959963984540054  # Wilson's interval for 2 of 4
    centre, half = (0.5 + z * z / 8) / (1 + z * z / 4), z * math.sqrt(0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_the_sort_batch_layout():
    task = get_task("sort_numbers")
    batch = task.sample(16, seed=2)
    assert task.input_labels == ("number", "input", "previous") and task.output_size == 51
    x, y, m = batch.inputs.numpy(), batch.targets.numpy(), batch.mask.numpy()
    for b in range(16):
        n = int(batch.lengths[b]) - 1
        assert 5 <= n <= 10 and np.all(x[b, :n, 1] == 1) and np.all(x[b, n:, 1] == 0)
        values = x[b, :n, 0]
        assert np.all((0 <= values) & (values < 1))
        pointers = list(np.argsort(values) + 1) + [END]
        assert list(y[b, : n + 1].argmax(-1)) == pointers and np.all(y[b].sum(-1)[: n + 1] == 1)
        assert np.all(y[b, n + 1:] == 0) and list(m[b]) == [1] * (n + 1) + [0] * (len(m[b]) - n - 1)
        assert list(x[b, : n + 1, 2]) == [0] + pointers[:-1]  # the teacher: the previous target
    torch.testing.assert_close(task.sample(16, seed=2).inputs, batch.inputs)
    assert not torch.equal(task.sample(16, seed=3).inputs[:, :5], batch.inputs[:, :5])


def test_the_hull_batch_layout():
    task = get_task("convex_hull", min_n=8, max_n=12)
    batch = task.sample(16, seed=4)
    assert task.input_labels == ("x", "y", "input", "previous")
    for b in range(16):
        n = int(batch.lengths[b]) - 1
        points = batch.inputs[b, :n, :2].numpy()
        pointers = [i + 1 for i in brute_force_hull(points)] + [END]
        assert task.item_answer(batch, b) == pointers
        assert int(batch.mask[b].sum()) == len(pointers)
        assert list(batch.inputs[b, : len(pointers), 3].numpy()) == [0] + pointers[:-1]


def test_the_loss_is_the_pointers_cross_entropy():
    task = get_task("convex_hull")
    batch = task.sample(6, seed=1)
    logits = torch.randn(batch.targets.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss = task.sequence_loss(logits, batch)
    errors = task.bit_errors(logits, batch)
    for b in range(6):
        lg = logits[b].numpy()
        steps = np.flatnonzero(batch.mask[b].numpy())
        target = batch.targets[b].numpy().argmax(-1)
        nll = [math.log(np.exp(lg[t]).sum()) - lg[t, target[t]] for t in steps]
        assert float(loss[b]) == pytest.approx(sum(nll), rel=1e-10)
        assert float(errors[b]) == sum(int(lg[t].argmax() != target[t]) for t in steps)


def test_sizes_and_settings():
    task = get_task("convex_hull")
    assert (task.min_n, task.max_n, task.eval_sizes) == (5, 10, (20, 50))
    assert task.at(50).max_n == 50 and task.at(50).output_size == task.output_size
    with pytest.raises(ConfigError, match="51 inputs, but the model points over at most 50"):
        task.at(51)
    assert ConvexHull(positions=60).at(60).output_size == 61
    with pytest.raises(ConfigError, match="min_n must be an integer >= 3, got 2"):
        ConvexHull(min_n=2)
    with pytest.raises(ConfigError, match="min_n 9 is larger than max_n 8"):
        SortNumbers(min_n=9, max_n=8)


def test_typed_numbers():
    task = get_task("sort_numbers")
    fixed, batch = task.typed("0.5, 0.1\n0.9 0.25")
    assert (fixed.min_n, fixed.max_n) == (4, 4) and batch.inputs.shape == (1, 5, 3)
    np.testing.assert_allclose(batch.inputs[0, :4, 0].numpy(), [0.5, 0.1, 0.9, 0.25])
    assert task.item_answer(batch, 0) == [2, 4, 1, 3, 0]
    assert task.typed_batch("0.3").lengths.tolist() == [2]
    for text, message in [("0.5, abc", "number 2: 'abc' is not a number"),
                          ("0.5 1.5", "number 2: 1.5 is outside 0..1"),
                          ("-0.1", "number 1: -0.1 is outside 0..1"),
                          (" ", "type at least one number between 0 and 1"),
                          (", ".join(["0.5"] * 51), "51 inputs: a model of this task points over at most 50")]:
        with pytest.raises(ConfigError, match=message):
            task.typed(text)


def test_typed_points():
    task = get_task("convex_hull")
    fixed, batch = task.typed("0.1,0.1\n\n0.9, 0.2\n0.5 0.5\n0.4,0.95\n")
    assert (fixed.min_n, fixed.max_n) == (4, 4) and batch.inputs.shape == (1, 5, 4)
    np.testing.assert_allclose(batch.inputs[0, :4, :2].numpy(), [[0.1, 0.1], [0.9, 0.2], [0.5, 0.5], [0.4, 0.95]])
    assert task.item_answer(batch, 0) == [1, 2, 4, 0]
    for text, message in [("0.1,0.1\n0.2\n0.3,0.3", "line 2: expected a point x,y, got '0.2'"),
                          ("0.1,0.1\n0.2,0.2\n0.3,x", "line 3, y: 'x' is not a number"),
                          ("0.1,0.1\n1.2,0.2\n0.3,0.9", "line 2, x: 1.2 is outside 0..1"),
                          ("0.1,0.1\n0.2,0.7", "a hull needs at least 3 points, one x,y per line; got 2"),
                          ("0.1,0.1\n0.5,0.7\n0.1,0.1", "line 3: the point 0.1,0.1 is already on line 1"),
                          ("0.1,0.1\n0.2,0.2\n0.3,0.3", "the points all lie on one line")]:
        with pytest.raises(ConfigError, match=message):
            task.typed(text)


def test_successor_steps():
    answer = [3, 1, 2, END]
    assert successor_hits(answer, [3, 1, 2, END]) == [True] * 4
    assert successor_hits(answer, [3, 2, END, END]) == [True, False, True, True]  # skipped 1, then on track
    assert successor_hits(answer, [3, 4, 2, END]) == [True, False, False, True]  # 4 is off the answer
    assert successor_hits(answer, [1, 2, END, END]) == [False, True, True, True]


def brute_force_tour(points: np.ndarray) -> float:
    """The shortest closed tour's length over every order of the cities after the first."""
    n = len(points)
    return min(tour_length(points, [0, *p]) for p in itertools.permutations(range(1, n)))


def test_optimal_tours_are_the_shortest():
    rng = np.random.default_rng(3)
    items = [rng.random((int(n), 2)) for n in rng.integers(3, 9, size=24)]  # sizes mixed in one call
    for points, tour in zip(items, optimal_tours(items)):
        assert sorted(tour) == list(range(len(points)))
        assert tour_length(points, tour) == pytest.approx(brute_force_tour(points), rel=1e-12)
        assert tour == canonical_tour(tour) and tour[0] == 0
        if len(tour) > 2:
            assert tour[1] < tour[-1]


def test_tours_lengths_and_scores():
    assert tour_length(SQUARE, [0, 1, 2, 3]) == 4.0
    assert tour_length(SQUARE, [0, 2, 1, 3]) == pytest.approx(2 + 2 * math.sqrt(2))
    assert canonical_tour([2, 3, 0, 1]) == [0, 1, 2, 3] and canonical_tour([1, 0, 3, 2]) == [0, 1, 2, 3]
    assert tour_score(SQUARE, [0, 1, 2, 3]) == (True, 4.0, 4.0)
    bow = tour_score(SQUARE, [0, 2, 1, 3])
    assert bow.valid and bow.length == pytest.approx(2 + 2 * math.sqrt(2)) and bow.optimal == 4.0
    missing = tour_score(SQUARE, [0, 1, 2])
    assert not missing.valid and math.isnan(missing.length)


def test_the_tsp_task():
    task = get_task("tsp")
    assert task.input_labels == ("x", "y", "input", "previous") and task.eval_sizes == ()
    assert (task.min_n, task.max_n) == (5, 10)
    batch = task.replace(max_n=8).sample(8, seed=9)  # the brute force takes 7! orders each
    for b in range(8):
        n = int(batch.lengths[b]) - 1
        points = batch.inputs[b, :n, :2].numpy()
        answer = task.item_answer(batch, b)
        assert answer[-1] == END and answer[0] == 1 and sorted(answer[:-1]) == list(range(1, n + 1))
        assert tour_length(points, [p - 1 for p in answer[:-1]]) == pytest.approx(brute_force_tour(points), rel=1e-6)
    with pytest.raises(ConfigError, match=f"optimal tours are computed for at most {TSP_EXACT} cities, not 13"):
        TravellingSalesman(max_n=13)
    with pytest.raises(ConfigError, match=f"at most {TSP_EXACT} cities, not 13"):
        task.typed("\n".join(f"{i / 20},{(i * 7 % 13) / 13}" for i in range(13)))
    fixed, one = task.typed("0.1,0.1\n0.9,0.1\n0.9,0.9\n0.1,0.9\n0.5,0.2")
    assert fixed.max_n == 5 and task.item_answer(one, 0) == [1, 4, 3, 2, 5, 0]  # 1 5 2 3 4 from 1's lower neighbour
