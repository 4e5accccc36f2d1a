"""The views without a browser: build each on a tiny episode, move t, check what they show."""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from panel.models.esm import ReactiveESM
from pyviz_comms import Comm

from ntmviz import Episode
from ntmviz.app import (
    EpisodeView, FocusView, HeadLocationsView, MemoryView, Playback, Player, SequenceView,
)
from ntmviz.app.payload import decode_array
from ntmviz.app.views import SlotsView

VIEWS = [Player, MemoryView, HeadLocationsView, FocusView, SlotsView, SequenceView]


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
    opening = episode.opening_step()
    assert opening == 3  # every step scored: the middle one
    assert model.data.t == opening and view.state.t == opening and model.data.group == view.state.group
    assert model.data.payload["T"] == episode.steps and model.data.hidden == []
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
    assert frame["focused"] == {"read 1": int(np.argmax(episode.read.weights[2, 0])),
                                "write 1": int(np.argmax(episode.write.weights[2, 0]))}
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
    np.testing.assert_array_equal(frame["target"], episode.targets[3])
    np.testing.assert_array_equal(frame["output"], episode.outputs[3])
    assert frame["score"] == float(episode.step_scores()[3]) == float(episode.bit_errors()[3])
    assert set(frame["vectors"]) == {"read 1 key", "read 1 read", "write 1 key", "write 1 erase", "write 1 add"}
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
    opening = state.t
    assert opening == 3
    browser_sets(player, t=4, playing=True)
    assert state.t == 4 and state.playing is True
    assert memory.canvas.t == 4 and memory.frame()["t"] == 4
    assert models["memory"].data.t == opening  # not echoed
    state.t = 1  # a move made in Python does reach the browser
    assert models["memory"].data.t == 1 and models["player"].data.t == 1
    browser_sets(player, loop=True, speed=30)
    assert state.loop is True and state.speed == 30


def test_new_episode_resets_bounds_and_sends_data_once(episode, other_episode):
    state = Playback(episode, t=5)
    view = MemoryView(state=state)
    model = render(view)["memory"]
    state.episode = other_episode
    assert model.data.payload["T"] == 9 and model.data.payload["N"] == 11
    assert [h["label"] for h in model.data.payload["heads"]] == ["read 1", "read 2", "write 1"]
    assert state.t == 5 and state.param.t.bounds == (0, 8)
    state.t = 8
    state.episode = episode
    assert state.t == 5 and model.data.t == 5  # clamped to the shorter episode


def test_player_moves(episode):
    state = Playback(episode, t=0)
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
    assert Player(state=state).frame() == {"t": 0, "steps": 6, "playing": False, "loop": True, "speed": 10,
                                           "hidden": []}


def test_views_without_memory(lstm_episode):
    for cls in VIEWS:
        view = cls(lstm_episode)
        render(view)
    assert MemoryView(lstm_episode).frame()["memory"] is None
    assert FocusView(lstm_episode).frame()["heads"] == {}
    assert HeadLocationsView(lstm_episode).frame()["heads"] == {}
    assert SlotsView(lstm_episode).frame() == {"t": lstm_episode.opening_step(), "state": {}, "matrices": {}}
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


# ---- where a state opens, which heads it hides, the slots view ----------------------------------

def scored_episode(mask) -> Episode:
    """A memory-network-shaped episode (T = len(mask), N=3) scored where `mask` is 1."""
    T = len(mask)
    return Episode.from_arrays(memory=np.zeros((3, 2), np.float32), read_weights=np.full((T, 1, 3), 1 / 3, np.float32),
                               outputs=np.zeros((T, 1), np.float32), targets=np.ones((T, 1), np.float32), mask=mask)


def test_a_new_state_opens_mid_way_through_the_scored_steps(episode):
    """A copy's first screen is its playback, with the memory full: the middle of the scored steps."""
    copy_like = scored_episode([0, 0, 0, 0, 1, 1, 1, 0])
    assert copy_like.opening_step() == 5
    state = Playback(copy_like)
    models = render(pn.Column(*(cls(state=state) for cls in VIEWS)))
    assert state.t == 5 and {m.data.t for m in models.values()} == {5}
    assert MemoryView(copy_like).canvas.t == 5  # a view built alone opens there too
    assert Playback(copy_like, t=0).t == 0  # a step given wins
    unscored = Episode.from_arrays(memory=np.zeros((3, 2), np.float32),
                                   read_weights=np.full((7, 1, 3), 1 / 3, np.float32))
    assert Playback(unscored).t == 3  # nothing to score: the middle of the episode
    assert Playback().t == 0
    state.t = 2
    state.episode = episode  # a new episode on the state keeps t where it was
    assert state.t == 2 and {m.data.t for m in models.values()} == {2}


def test_heads_are_hidden_and_shown_by_number(other_episode, episode, lstm_episode):
    state = Playback(other_episode, hidden=[2, 0, 9])  # heads: 0 read 1, 1 read 2, 2 write 1
    assert state.hidden == [0, 2]  # sorted, only heads the episode has
    state.show(0)
    assert state.hidden == [2]
    state.hide(1, 1, 7, -1)
    assert state.hidden == [1, 2]
    state.show(0)  # not hidden: nothing changes
    assert state.hidden == [1, 2]
    assert state.valid_hidden([5, 2, -1, 0, 2]) == [0, 2]
    state.show()
    assert state.hidden == []
    state.hide(0, 2)
    state.episode = episode  # two heads: head 2 is gone, head 0 stays hidden
    assert state.hidden == [0]
    state.episode = lstm_episode
    assert state.hidden == [] and state.valid_hidden([0]) == []
    state.hide(0)
    assert state.hidden == []


def test_every_view_leaves_hidden_heads_out(other_episode):
    ep, t = other_episode, 5
    state = Playback(ep, t=t)
    views = {cls.kind: cls(state=state) for cls in VIEWS}
    models = render(pn.Column(*views.values()))
    state.hide(1)  # read 2
    assert {kind: m.data.hidden for kind, m in models.items()} == {kind: [1] for kind in models}
    assert views["player"].frame()["hidden"] == [1]
    assert views["memory"].frame()["focused"] == {"read 1": int(np.argmax(ep.read.weights[t, 0])),
                                                  "write 1": int(np.argmax(ep.write.weights[t, 0]))}
    heads = views["heads"].frame()["heads"]
    assert list(heads) == ["read 1", "write 1"]
    np.testing.assert_array_equal(heads["read 1"], ep.read.weights[:, 0])
    np.testing.assert_array_equal(heads["write 1"], ep.write.weights[:, 0])
    focus = views["focus"].frame()["heads"]
    assert list(focus) == ["read 1", "write 1"]
    assert list(focus["write 1"]) == ["content", "gated", "shifted", "weights", "beta", "gate", "shift", "gamma"]
    np.testing.assert_array_equal(focus["read 1"]["gated"], ep.read.gated[t, 0])
    assert focus["write 1"]["gamma"] == pytest.approx(float(ep.write.gamma[t, 0]))
    vectors = views["sequence"].frame()["vectors"]
    assert list(vectors) == ["read 1 key", "read 1 read", "write 1 key", "write 1 erase", "write 1 add"]
    np.testing.assert_array_equal(vectors["read 1 read"], ep.reads[t, 0])
    state.hide(0, 2)
    assert views["memory"].frame()["focused"] == {} and views["heads"].frame()["heads"] == {}
    assert views["focus"].frame()["heads"] == {} and views["sequence"].frame()["vectors"] == {}
    np.testing.assert_array_equal(views["memory"].frame()["memory"], ep.memory[t + 1])  # the memory stays
    state.show()
    vectors = views["sequence"].frame()["vectors"]
    assert list(views["heads"].frame()["heads"]) == ["read 1", "read 2", "write 1"]
    np.testing.assert_array_equal(vectors["read 2 read"], ep.reads[t, 1])
    np.testing.assert_array_equal(vectors["read 2 key"], ep.read.key[t, 1])


def test_the_save_figure_button_draws_what_the_view_shows(other_episode):
    """The browser asks for a figure with its options; the heads the state hides stay hidden in it."""
    import base64
    import xml.etree.ElementTree as ET

    state = Playback(other_episode, hidden=[1])
    view = HeadLocationsView(state=state)
    sent = []
    view.canvas._send_msg = sent.append
    view.canvas._handle_msg({"figure": "svg", "t": 4, "zoom": False, "window": [2, 7]})
    reply = sent[-1]
    assert reply["filename"].endswith("-heads-step4.svg") and reply["mime"] == "image/svg+xml", reply
    svg = base64.b64decode(reply["b64"]).decode()
    texts = [e.text or "" for e in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert any(w.startswith("read 2") and w.endswith("(hidden)") for w in texts), texts
    assert not any(w.startswith("read 1") and w.endswith("(hidden)") for w in texts)


def test_the_slots_view_shows_slot_state_and_matrices_at_t(dnc_episode):
    ep = dnc_episode
    state = Playback(ep, t=2)
    view = SlotsView(state=state)
    model = render(view)["slots"]
    frame = view.frame()
    assert set(frame) == {"t", "state", "matrices"} and frame["t"] == 2
    np.testing.assert_array_equal(frame["state"]["usage"], ep.slot_state["usage"][2])
    np.testing.assert_array_equal(frame["matrices"]["links"], ep.slot_matrices["links"][2])
    payload = model.data.payload
    assert set(payload["steps"]["names"]) == {"slot.usage", "matrix.links"}
    assert set(payload["arrays"]) == {"slot.usage.time"}
    links = decode_array(payload["steps"]["chunks"]["0"]["matrix.links"])
    np.testing.assert_array_equal(links, ep.slot_matrices["links"])
    state.t = 3
    assert model.data.t == 3
    np.testing.assert_array_equal(view.frame()["state"]["usage"], ep.slot_state["usage"][3])


def test_the_slots_view_shows_each_visible_heads_weighting_around_the_points(pointer_episode):
    ep = pointer_episode
    state = Playback(ep, t=4)
    view = SlotsView(state=state)
    frame = view.frame()
    assert frame["state"] == {} and frame["matrices"] == {} and list(frame["weights"]) == ["pointer 1"]
    np.testing.assert_array_equal(frame["coords"], ep.slot_coords)
    np.testing.assert_array_equal(frame["weights"]["pointer 1"], ep.heads["pointer"].weights[4, 0])
    state.hide(0)
    frame = view.frame()
    assert frame["weights"] == {}
    np.testing.assert_array_equal(frame["coords"], ep.slot_coords)  # the points stay


def test_the_browser_reporting_hidden_heads_updates_the_state(other_episode):
    """A click on the player's key of heads hides a head in every view: recorded in Python, not
    sent back (the browser's views already hide it); numbers the episode lacks are dropped."""
    state = Playback(other_episode)
    player, memory, focus = Player(state=state), MemoryView(state=state), FocusView(state=state)
    models = render(pn.Column(player, memory, focus))
    browser_sets(player, hidden=[2, 0])
    assert state.hidden == [0, 2]
    assert memory.canvas.hidden == [0, 2] and focus.canvas.hidden == [0, 2]
    assert list(focus.frame()["heads"]) == ["read 2"]
    assert models["memory"].data.hidden == [] and models["focus"].data.hidden == []  # not echoed
    browser_sets(player, hidden=[0, 7, -1])
    assert state.hidden == [0]
    state.hide(1)  # a change made in Python does reach the browser
    assert models["memory"].data.hidden == [0, 1] and models["player"].data.hidden == [0, 1]
