"""The "What the heads did" panel: what it says for hand-built head weightings, that it follows
the episode, says "no memory" for an LSTM, and keeps every piece of text as text."""

from __future__ import annotations

from html import unescape

import numpy as np
import panel as pn
import pytest
import torch
from bokeh.document import Document
from panel.models.markup import HTML
from pyviz_comms import Comm

import ntmviz
from ntmviz.app import Explorer, Playback
from ntmviz.app.mechanisms_view import MechanismsView
from ntmviz.episode import record
from ntmviz.tasks import get_task

N, L = 16, 5
TASK = get_task("copy", bits=4, max_length=6)


def copy_episode(read_slots, meta=None):
    """A real recording of a small untrained NTM on a copy input (L = 5), its head weightings
    then replaced by hand-built one-hot ones: the write head walks +1 from slot 0 and the read
    head is on read_slots[t] at step t."""
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=TASK.input_size, output_size=TASK.output_size, memory_slots=N,
                                        memory_width=3, controller_size=8))
    batch = TASK.at(L).sample(1, seed=0)
    ep = record(model, batch, meta=meta if meta is not None else {"task": "copy", "task_config": TASK.to_dict()})[0]
    T = ep.steps
    ep.write.weights = np.eye(N, dtype=np.float32)[np.arange(T) % N][:, None]
    ep.read.weights = np.eye(N, dtype=np.float32)[np.asarray(read_slots) % N][:, None]
    return ep


PERFECT = [0] * L + [0, 1, 2, 3, 4, 5]  # parked on 0, plays back slot j at step L + j
SLIPPED = [0, 0, 0, N - 1, N - 1, N - 1, 0, 1, 2, 3, 4]  # slips to slot 15 at step 3


def test_a_perfect_copy_episode_meets_every_mechanism():
    view = MechanismsView(copy_episode(PERFECT))
    rows = view.rows()
    assert [r["name"] for r in rows] == ["write_walk", "playback", "playback_start", "parked", "parked_focus",
                                         "sharpness"]
    assert all(r["met"] is True for r in rows) and view.message == ""
    notes = {r["name"]: r["note"] for r in rows}
    assert notes["playback_start"] == "playback started at slot 0, where writing began"
    assert notes["parked"] == "the read head stayed on slot 0 from step 0 until playback began at step 5"
    assert notes["playback"] == ("the read head read 5 of 5 vectors from the slots they were written to "
                                 "(it reads at step t what the output shows at step t+1)")
    html = view.html
    assert "What the heads did" in html and "6 of 6 parts of the paper&#39;s copy algorithm show" in html
    assert html.count('data-met="true"') == 6 and 'aria-label="met"' in html
    assert "playback started at slot 0&#44; where writing began" in html  # text, escaped


def test_the_panel_follows_the_episode_and_catches_the_slip():
    state = Playback(copy_episode(PERFECT))
    view = MechanismsView(state=state)
    # the parked head slips to slot 15 at step 3 and is back for playback: one episode alone fits
    # lag 0 best (playback from step 6), and the slip shows as a parked head that did not stay
    state.episode = copy_episode(SLIPPED)
    rows = {r["name"]: r for r in view.rows()}
    assert rows["parked"]["met"] is False and rows["playback_start"]["met"] is True
    assert rows["parked"]["note"] == f"the read head left slot 0 at step 3 (for slot {N - 1}) before playback began at step 6"
    assert rows["write_walk"]["met"] is True
    html = view.html
    assert 'data-met="false"' in html and "5 of 6 parts" in html
    assert "target" not in html.split('data-mechanism="parked"')[1].split("</div>")[0]  # pass / fail: no target
    # playback that starts one slot early under either lag
    state.episode = copy_episode([0] * L + [N - 1, N - 1, 0, 1, 2, 3])
    rows = {r["name"]: r for r in view.rows()}
    assert rows["playback_start"]["met"] is False and rows["playback"]["value"] == 0.0
    assert rows["playback_start"]["note"] == f"playback started at slot {N - 1}; writing began at slot 0 (one slot early)"


def test_a_weak_parked_head_shows_its_value_and_the_target():
    ep = copy_episode(PERFECT)
    ep.read.weights[1, 0, :] = 0
    ep.read.weights[1, 0, 0], ep.read.weights[1, 0, 1] = 0.3, 0.25  # still the strongest slot, barely
    ep.read.weights[1, 0, 2:] = 0.45 / (N - 2)
    rows = {r["name"]: r for r in MechanismsView(ep).rows()}
    assert rows["parked"]["met"] is True
    assert rows["parked_focus"]["met"] is False and rows["parked_focus"]["value"] == pytest.approx(0.3)
    assert rows["parked_focus"]["note"] == "while parked, the read head's strongest slot held at least 0.300 of its weight"
    html = MechanismsView(ep).html
    assert "&#40;target &#62;&#61; 0&#46;5&#41;" in html


def test_no_memory_no_task_and_hostile_metadata(lstm_episode):
    view = MechanismsView(lstm_episode)
    assert view.rows() == []
    assert view.message == "This episode comes from a model with no memory: there are no heads to measure."
    assert "no memory" in view.html and "listitem" not in view.html
    view.state.episode = copy_episode(PERFECT, meta={"task": "<img src=x onerror=alert(1)>"})
    assert view.rows() == [] and "names no known task" in view.message
    hostile = copy_episode(PERFECT, meta={"task": "<b>copy</b>", "task_config": TASK.to_dict()})
    view.state.episode = hostile
    assert len(view.rows()) == 6
    assert "<b>" not in view.html and "&#60;b&#62;copy" in view.html
    view.state.episode = None
    assert view.message == "No episode on show."


def test_the_explorer_shows_the_panel_beside_the_views(episode, lstm_episode):
    explorer = Explorer(copy_episode(PERFECT))
    assert explorer.views["mechanisms"] is explorer.mechanisms
    root = pn.panel(explorer).get_root(Document(), Comm())
    panes = [m for m in root.select({"type": HTML}) if "What the heads did" in str(m.text)]
    assert len(panes) == 1
    assert unescape(panes[0].text) == explorer.mechanisms.html  # Panel sends the markup escaped once
    assert 'data-mechanism="parked"' in unescape(panes[0].text)
    explorer.state.episode = lstm_episode  # the page's model follows the episode
    assert "no memory" in unescape(panes[0].text) and "listitem" not in unescape(panes[0].text)


def test_an_unexpected_failure_is_logged_with_its_traceback_and_said(monkeypatch, caplog):
    """A bug in a measurement (here: one that raises) leaves the page working: the panel says it
    could not measure, and the server log holds the traceback."""
    import ntmviz.app.mechanisms_view as module

    def broken(episode):
        raise RuntimeError("a bug in a measurement")

    monkeypatch.setattr(module, "readings", broken)
    with caplog.at_level("ERROR", logger=module.log.name):
        view = MechanismsView(copy_episode([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]))
    assert view.rows() == [] and view.message == "Could not measure this episode's mechanisms (see the server log)."
    [record] = [r for r in caplog.records if r.name == module.log.name]
    assert record.exc_info is not None and "a bug in a measurement" in str(record.exc_info[1])
