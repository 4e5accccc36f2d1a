"""A from_arrays episode (a memory network's shape: static memory, one read head, hops as steps
and as named stages, slot labels, no inputs) through everything that takes an episode: the
payload, the views' frames, the figures, the HTML export and the Explorer."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ntmviz import Episode
from ntmviz.app import Explorer, FocusView, MemoryView, SequenceView, export_html, figure
from ntmviz.app.payload import decode_array, episode_payload

T, N, M = 2, 5, 3
SVG = "{http://www.w3.org/2000/svg}"
LABELS = ["Mary went to the kitchen.", "<b>John</b>", "", "Sandra & Daniel", 'x "y"']


@pytest.fixture
def own():
    rng = np.random.default_rng(0)
    w = rng.random((T, 1, N)).astype(np.float32)
    w /= w.sum(-1, keepdims=True)
    return Episode.from_arrays(memory=rng.standard_normal((N, M)).astype(np.float32), read_weights=w,
                               stages={"hop 1": np.repeat(w[:1], T, 0), "hop 2": np.repeat(w[1:], T, 0)},
                               slot_labels=LABELS, meta={"task": "babi"})


def test_payload_sends_what_the_episode_has(own):
    p = episode_payload(own)
    assert p["static_memory"] is True and p["I"] == 0 and p["O"] == 0
    [read] = p["family"]["groups"]
    assert (read["name"], read["count"], read["params"]) == ("read", 1, [])
    assert [s["name"] for s in read["stages"]] == ["hop 1", "hop 2", "weights"]
    assert p["family"]["memory"] == "read-only" and p["family"]["title"] == "your model"
    assert [h["label"] for h in p["heads"]] == ["read 1"]
    assert p["reads"] is False and p["slot_labels"] == LABELS
    np.testing.assert_array_equal(decode_array(p["arrays"]["memory"]), own.memory)  # once, whole
    chunk = p["steps"]["chunks"]["0"]
    assert "memory" not in chunk and not any(k.startswith("write") for k in chunk)
    np.testing.assert_array_equal(decode_array(chunk["read.hop 2"]), own.read.stages["hop 2"])
    np.testing.assert_array_equal(decode_array(chunk["read.weights"]), own.read.weights)
    assert set(episode_payload(own, ["sequence"])["steps"]["names"]) == set()


def test_views_frames(own):
    memory = MemoryView(own, diff=True)
    memory.state.t = 1
    frame = memory.frame()
    np.testing.assert_array_equal(frame["memory"], own.memory)  # static: never a change
    assert frame["diff"] is False and frame["static"] is True
    assert frame["focused"] == {"read 1": int(own.read.weights[1, 0].argmax())}
    focus = FocusView(own)
    heads = focus.frame()["heads"]
    assert list(heads) == ["read 1"] and list(heads["read 1"]) == ["hop 1", "hop 2", "weights"]
    seq = SequenceView(own).frame()
    assert seq["input"] is None and seq["output"] is None and seq["vectors"] == {}


@pytest.mark.parametrize("view", ["memory", "heads", "focus", "sequence"])
def test_figures_draw(own, view):
    svg = figure(own, view, 1).svg()
    texts = [e.text for e in ET.fromstring(svg).iter(SVG + "text")]
    if view == "focus":
        assert "hop 1" in texts and "hop 2" in texts and "weights" in texts and "sharpened" not in texts
    assert not any("write" in (t or "") for t in texts)


def test_export_and_explorer(own, tmp_path):
    page = export_html(own, tmp_path / "own.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="ntmviz-data">(.*?)</script>', page, re.S)
                      .group(1))
    assert data["slot_labels"] == LABELS and "<b>John</b>" not in page  # escaped in the page's JSON
    explorer = Explorer(own)
    assert explorer.state.episode is own and explorer.state.steps == T
