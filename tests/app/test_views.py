"""The views without a browser: build each on a tiny episode, move t, check what they show."""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from panel.models.esm import ReactiveESM
from pyviz_comms import Comm

from ntmviz.app import (
    EpisodeView, FocusView, HeadLocationsView, MemoryView, Playback, Player, SequenceView,
)
from ntmviz.app.payload import decode_array

VIEWS = [Player, MemoryView, HeadLocationsView, FocusView, SequenceView]


def render(viewable):
    """Build the Bokeh models as a notebook would; return {kind: the ESM model}."""
    root = pn.panel(viewable).get_root(Document(), Comm())
    return {m.data.kind: m for m in root.select({"type": ReactiveESM})}


def browser_sets(view: EpisodeView, **changes):
    """Apply a change as if it came from the view's browser side."""
    view.canvas._process_events(changes)


@pytest.mark.parametrize("cls", VIEWS)
def test_each_view_stands_alone(cls, episode):
    view = cls(episode)
    models = render(view)
    assert list(models) == [cls.kind]
    model = models[cls.kind]
    assert model.data.t == 0 and model.data.group == view.state.group
    assert model.data.payload["T"] == episode.steps
    view.state.t = 4
    assert model.data.t == 4 and view.canvas.t == 4 and view.frame()["t"] == 4
    with pytest.raises(ValueError):
        view.state.t = episode.steps  # t stays within 0 .. T-1


def test_memory_view_shows_memory_after_step_and_its_change(episode):
    view = MemoryView(episode)
    model = render(view)["memory"]
    steps = model.data.payload["steps"]
    assert steps["K"] == episode.steps and steps["count"] == 1  # a small episode: one chunk, sent at once
    np.testing.assert_array_equal(decode_array(steps["chunks"]["0"]["memory"]), episode.memory)
    view.state.t = 2
    frame = view.frame()
    np.testing.assert_array_equal(frame["memory"], episode.memory[3])
    assert frame["write_slots"] == [int(np.argmax(episode.write.weights[2, 0]))]
    assert frame["read_slots"] == [int(np.argmax(episode.read.weights[2, 0]))]
    view.diff = True
    assert model.data.diff is True
    np.testing.assert_allclose(view.frame()["memory"], episode.memory[3] - episode.memory[2])
    browser_sets(view, diff=False)  # the "Show change" checkbox
    assert view.diff is False


def test_head_locations_and_focus_follow_t(episode):
    state = Playback(episode)
    heads, focus = HeadLocationsView(state=state), FocusView(state=state)
    frame = heads.frame()
    np.testing.assert_array_equal(frame["heads"]["read 1"], episode.read.weights[:, 0])
    np.testing.assert_array_equal(frame["heads"]["write 1"], episode.write.weights[:, 0])
    before = focus.frame()["heads"]["write 1"]
    state.t = 5
    after = focus.frame()["heads"]["write 1"]
    assert heads.frame()["marker"] == 5
    for stage in ("content", "gated", "shifted", "weights"):
        np.testing.assert_array_equal(after[stage], getattr(episode.write, stage)[5, 0])
    assert after["beta"] == pytest.approx(float(episode.write.beta[5, 0]))
    assert after["gamma"] == pytest.approx(float(episode.write.gamma[5, 0]))
    np.testing.assert_array_equal(after["shift"], episode.write.shift[5, 0])
    assert not np.array_equal(before["weights"], after["weights"])


def test_sequence_view_vectors_and_errors(episode):
    view = SequenceView(episode)
    view.state.t = 3
    frame = view.frame()
    np.testing.assert_array_equal(frame["input"], episode.inputs[3])
    assert frame["errors"] == int(episode.bit_errors()[3])
    np.testing.assert_array_equal(frame["vectors"]["write 1 add"], episode.write.add[3, 0])
    np.testing.assert_array_equal(frame["vectors"]["write 1 erase"], episode.write.erase[3, 0])
    np.testing.assert_array_equal(frame["vectors"]["read 1 read"], episode.reads[3, 0])
    np.testing.assert_array_equal(frame["vectors"]["read 1 key"], episode.read.key[3, 0])


def test_views_on_one_state_move_together(episode):
    state = Playback(episode)
    views = [cls(state=state) for cls in VIEWS]
    models = render(pn.Column(*views))
    assert len({m.data.group for m in models.values()}) == 1
    state.t = 2
    assert {m.data.t for m in models.values()} == {2}


def test_browser_moves_are_recorded_without_echo(episode):
    """A step reported by one canvas reaches the state and every view in Python, but is not
    sent back to the browser (its other canvases already show it, sharing t there)."""
    state = Playback(episode)
    player, memory = Player(state=state), MemoryView(state=state)
    models = render(pn.Column(player, memory))
    browser_sets(player, t=4, playing=True)
    assert state.t == 4 and state.playing is True
    assert memory.canvas.t == 4 and memory.frame()["t"] == 4
    assert models["memory"].data.t == 0  # not echoed
    state.t = 1  # a move made in Python does reach the browser
    assert models["memory"].data.t == 1 and models["player"].data.t == 1
    browser_sets(player, loop=True, speed=30)
    assert state.loop is True and state.speed == 30


def test_new_episode_resets_bounds_and_sends_data_once(episode, other_episode):
    state = Playback(episode, t=5)
    view = MemoryView(state=state)
    model = render(view)["memory"]
    state.episode = other_episode
    assert model.data.payload["T"] == 9 and model.data.payload["N"] == 11 and model.data.payload["R"] == 2
    assert state.t == 5 and state.param.t.bounds == (0, 8)
    state.t = 8
    state.episode = episode
    assert state.t == 5 and model.data.t == 5  # clamped to the shorter episode


def test_player_moves(episode):
    state = Playback(episode)
    state.step_back()
    assert state.t == 0
    state.last()
    state.step_forward()
    assert state.t == 5
    state.loop = True
    state.step_forward()
    assert state.t == 0
    state.step_back()
    assert state.t == 5
    state.first()
    assert Player(state=state).frame() == {"t": 0, "steps": 6, "playing": False, "loop": True, "speed": 10}


def test_views_without_memory(lstm_episode):
    for cls in VIEWS:
        view = cls(lstm_episode)
        render(view)
    assert MemoryView(lstm_episode).frame()["memory"] is None
    assert FocusView(lstm_episode).frame()["heads"] == {}
    assert "vectors" not in SequenceView(lstm_episode).frame()


def test_empty_view():
    view = MemoryView()
    render(view)
    assert view.frame() == {"t": 0, "memory": None}


def test_per_step_chunks_are_sent_when_the_browser_asks(episode, monkeypatch):
    """A long episode's first message carries one chunk; the browser asks for others by message
    ({"chunk": c, "id": payload id}) and gets that chunk's arrays back, never another episode's."""
    monkeypatch.setattr(MemoryView, "step_budget", 1)  # one step per chunk
    state = Playback(episode, t=2)
    view = MemoryView(state=state)
    payload = view.canvas.payload
    assert payload["steps"]["K"] == 1 and list(payload["steps"]["chunks"]) == ["2"]
    sent = []
    monkeypatch.setattr(view.canvas, "_send_msg", sent.append)
    view.canvas._handle_msg({"chunk": 4, "id": payload["id"]})
    [msg] = sent
    assert msg["chunk"] == 4 and msg["id"] == payload["id"]
    np.testing.assert_array_equal(decode_array(msg["arrays"]["memory"]), episode.memory[4:6])
    np.testing.assert_array_equal(decode_array(msg["arrays"]["write.weights"]), episode.write.weights[4:5])
    view.canvas._handle_msg({"chunk": 4, "id": "another episode"})
    view.canvas._handle_msg({"chunk": 99, "id": payload["id"]})  # out of range: logged, nothing sent
    view.canvas._handle_msg("not a request")
    assert len(sent) == 1


def test_the_focus_sits_beside_the_memory_with_two_heads_and_takes_a_line_with_more(episode):
    """Beside the memory, the focus is a column of panels: fine for two heads, a page as tall as
    eight screens for ten (priority sort; here five). With more heads it takes a line of its own, where its
    panels wrap into rows."""
    import torch

    import ntmviz
    from ntmviz import record

    I, O = episode.inputs.shape[1], episode.targets.shape[1]
    torch.manual_seed(0)
    many = ntmviz.NTM(ntmviz.NTMConfig(input_size=I, output_size=O, memory_slots=7, memory_width=5,
                                       controller_size=16, read_heads=3, write_heads=2))
    five = record(many, torch.zeros(4, I), torch.zeros(4, O), mask=torch.ones(4), meta={"task": "synthetic"})
    view = FocusView(episode)
    model = render(view)["focus"]
    assert view.canvas.styles["flex"] == "1 1 270px" and model.styles["flex"] == "1 1 270px"
    view.state.episode = five
    assert view.canvas.styles["flex"] == "1 1 100%" and model.styles["flex"] == "1 1 100%"
    view.state.episode = episode
    assert model.styles["flex"] == "1 1 270px"
    assert FocusView(five).canvas.styles["flex"] == "1 1 100%"
