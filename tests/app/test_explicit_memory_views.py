"""The DNC, the neural stack, queue and deque and the stack-augmented RNN in the explorer: each is recorded from its own
model (untrained: the views draw what the declaration holds, whatever the weights) and goes
through the payload, every view and a figure, with no code of its own under ntmviz/app/.
What a view returns at step t is the episode's own array at t."""

from __future__ import annotations

from html import unescape

import numpy as np
import panel as pn
import pytest
import torch
from bokeh.document import Document
from pyviz_comms import Comm

from ntmviz.app import Explorer
from ntmviz.app.export import export_html_string
from ntmviz.app.figures import figure
from ntmviz.app.payload import episode_payload
from ntmviz.config import model_config
from ntmviz.episode import record
from ntmviz.models import build_model, family
from ntmviz.tasks import get_task

SETTINGS = dict(memory_slots=7, memory_width=5, read_heads=2, controller_size=12, stacks=3, stack_depth=9)
KINDS = ("dnc", "stack", "queue", "deque", "stack_rnn")


@pytest.fixture(params=KINDS)
def episode(request):
    torch.manual_seed(3)
    task = get_task("reversal", bits=3, min_length=4, max_length=4)
    model = build_model(model_config(request.param, task, **SETTINGS))
    return record(model, task.sample(1, seed=1), task=task)[0]


def test_every_view_draws_the_family_from_its_declaration(episode):
    declared = family(episode.family.name)
    assert episode.family.title == declared.title
    payload = episode_payload(episode)
    assert [g["name"] for g in payload["family"]["groups"]] == [g.name for g in declared.groups]
    explorer = Explorer(episode)
    pn.panel(explorer).get_root(Document(), Comm())
    assert unescape(explorer.heading) == f"## ntmviz: inside a {declared.title}"  # as text: "-" escaped
    assert all(explorer._cards[name].visible for name in ("memory", "focus", "heads", "sequence"))
    assert explorer._cards["slots"].visible == bool(declared.slot_state or declared.slot_matrices)
    t = 6
    explorer.state.t = t
    heads = explorer.focus.frame()["heads"]
    assert set(heads) == {label for _, _, label in episode.family.heads()}
    for group, rec in episode.head_records():
        for stage, values in rec.stages.items():
            np.testing.assert_array_equal(heads[f"{group} 1"][stage], values[t, 0])
    slots = explorer.slots.frame()
    for name, values in episode.slot_state.items():
        np.testing.assert_array_equal(slots["state"][name], values[t])
    for name, values in episode.slot_matrices.items():
        np.testing.assert_array_equal(slots["matrices"][name], values[t])
    if episode.slot_state:
        svg = figure(episode, "slots", t).svg()
        for name in episode.slot_state:
            assert f'data-heatmap="slot-{name}"' in svg
    assert "read 1" in figure(episode, "focus", t).svg()
    page = export_html_string(episode)  # one file that plays offline, the declaration inside
    assert f'"name": "{episode.family.name}"' in page or f'"name":"{episode.family.name}"' in page


def test_the_dnc_shows_usage_links_and_the_read_modes():
    torch.manual_seed(0)
    task = get_task("copy", bits=3, min_length=3, max_length=3)
    ep = record(build_model(model_config("dnc", task, **SETTINGS)), task.sample(1, seed=2), task=task)[0]
    assert list(ep.slot_state) == ["usage", "retention", "precedence"] and list(ep.slot_matrices) == ["links"]
    assert ep.slot_matrices["links"].shape == (ep.steps, 7, 7)
    modes = episode_payload(ep)["family"]["groups"][0]["params"]
    assert [p["labels"] for p in modes if p["name"] == "modes"] == [["backward", "content", "forward"]]
    svg = figure(ep, "slots", 4).svg()
    assert "links" in svg and "usage" in svg


ATTENTION = ("symbol_reversal-attention", "symbol_reversal-no_attention", "dates-attention", "sort_numbers-pointer",
             "convex_hull-pointer", "babi_single-dmn", "babi_two-dmn", "babi_yes_no-dmn")


@pytest.mark.parametrize("name", ATTENTION)
def test_the_attention_families_shipped_checkpoints_draw_from_their_declarations(name):
    """Attention over encoded inputs (issue 28): each shipped checkpoint's episode in every view, a
    figure and an export; what the focus returns at step t is the episode's own stages at t."""
    from ntmviz.app.sources import load_source, record_episode
    from ntmviz.shipped import checkpoint_path

    episode = record_episode(load_source(checkpoint_path(name)), seed=5)
    declared = episode.family
    explorer = Explorer(episode)
    pn.panel(explorer).get_root(Document(), Comm())
    assert unescape(explorer.heading) == f"## ntmviz: inside a{'n' if declared.title[0] in 'AEIOU' else ''} " \
                                         f"{declared.title}"
    if not declared.has_memory:  # attention left out: the views say there is no memory to show
        assert not explorer._cards["memory"].visible and not episode.head_records()
        assert "comes from a model with no memory" in unescape(explorer._note.object) and explorer._note.visible
        return
    t = episode.steps - 1
    explorer.state.t = t
    heads = explorer.focus.frame()["heads"]
    for group, rec in episode.head_records():
        for stage, values in rec.stages.items():
            np.testing.assert_array_equal(heads[f"{group} 1"][stage], values[t, 0])
        np.testing.assert_allclose(rec.weights[t, 0].sum(), 1.0, atol=1e-5)  # attention: a distribution
    labels = [str(x) for x in episode.slot_labels]
    assert len(labels) == episode.slots
    svg = figure(episode, "memory", t).svg()
    assert all(label.replace("&", "&amp;").replace("<", "&lt;") in svg for label in labels if label.strip())
    if declared.slot_coords:
        assert 'data-name="point"' in figure(episode, "slots", t).svg()
    page = export_html_string(episode)
    assert f'"name": "{declared.name}"' in page or f'"name":"{declared.name}"' in page
