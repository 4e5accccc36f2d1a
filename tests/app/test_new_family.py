"""A family the app has never seen, declared here and nowhere else, goes through record(), a file,
the payload, every view and a figure: adding a kind of memory model needs no change under
ntmviz/app/ (the contract is the only thing the app reads).

The toy family is a queue: a push head writes the input at the back, a pop head reads the
front; its slots carry a strength (how much of each is still in the queue) and it is declared
with a stage of its own and a named distribution, none of which the NTM has."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import panel as pn
import pytest
import torch
from bokeh.document import Document
from pyviz_comms import Comm

from ntmviz.app import Explorer, SlotsView
from ntmviz.app.figures import figure
from ntmviz.app.payload import episode_payload
from ntmviz.contract import Family, HeadGroup, Param, Recording, SlotField, Stage
from ntmviz.episode import Episode, record

N, M = 5, 3

QUEUE = Family(
    name="toy_queue", title="Toy queue",
    groups=(HeadGroup("push", 1, (Stage("back", "the first slot not yet written"),),
                      (Param("push", "number", range=(0.0, 1.0)),), writes=True),
            HeadGroup("pop", 1, (Stage("front", "the oldest slot still held"),),
                      (Param("act", "distribution", ("3",), labels=("push", "pop", "wait")),), reads=True)),
    slot_state=(SlotField("strength", "how much of the slot is still queued", range=(0.0, 1.0)),),
    measure="bit_errors", doc="a queue written in this test and known nowhere else")


@dataclass(frozen=True)
class QueueConfig:
    input_size: int
    output_size: int
    kind = "toy_queue"


class ToyQueue(torch.nn.Module):
    """Pushes every input on the back, pops the front from step 2 on (no learning: a fixed algorithm)."""

    def __init__(self):
        super().__init__()
        self.config = QueueConfig(M, M)
        self.scale = torch.nn.Parameter(torch.ones(()))

    @property
    def device(self):
        return self.scale.device

    def record(self, inputs, lengths) -> Recording:
        x = inputs.detach().cpu().numpy()
        items = []
        for b, n in enumerate(lengths):
            memory = np.zeros((n + 1, N, M), np.float32)
            push, pop = np.zeros((n, 1, N), np.float32), np.zeros((n, 1, N), np.float32)
            strength = np.zeros((n, N), np.float32)
            outputs = np.zeros((n, M), np.float32)
            front = 0
            for t in range(n):
                memory[t + 1] = memory[t]
                back = t % N
                push[t, 0, back] = 1
                memory[t + 1, back] = x[b, t]
                strength[t] = strength[t - 1] if t else 0
                strength[t, back] = 1
                pop[t, 0, front] = 1
                if t >= 2:
                    outputs[t] = memory[t + 1, front]
                    strength[t, front] = 0
                    front = (front + 1) % N
            acts = np.tile(np.array([0.6, 0.3, 0.1], np.float32), (n, 1, 1))
            items.append({"outputs": outputs, "memory": memory, "reads": np.einsum("tn,tnm->tm", pop[:, 0],
                                                                                 memory[1:])[:, None],
                          "push.weights": push, "push.back": push, "push.push": np.ones((n, 1), np.float32),
                          "pop.weights": pop, "pop.front": pop, "pop.act": acts, "slot.strength": strength})
        return Recording(QUEUE, items)


@pytest.fixture
def episode() -> Episode:
    x = torch.tensor(np.random.default_rng(0).integers(0, 2, (6, M)), dtype=torch.float32)
    return record(ToyQueue(), x, meta={"task": "toy"})


def test_a_new_family_records_and_round_trips(episode, tmp_path):
    assert episode.family == QUEUE and episode.title == "Toy queue"
    assert list(episode.heads) == ["push", "pop"] and list(episode.slot_state) == ["strength"]
    again = Episode.load(episode.save(tmp_path / "queue.safetensors"))
    assert again.family == QUEUE
    np.testing.assert_array_equal(again.slot_state["strength"], episode.slot_state["strength"])
    np.testing.assert_array_equal(again.heads["pop"].params["act"], episode.heads["pop"].params["act"])


def test_every_view_and_a_figure_draw_it(episode):
    payload = episode_payload(episode)
    assert [g["name"] for g in payload["family"]["groups"]] == ["push", "pop"]
    assert [h["label"] for h in payload["heads"]] == ["push 1", "pop 1"]
    assert payload["family"]["groups"][1]["params"][0]["labels"] == ["push", "pop", "wait"]
    explorer = Explorer(episode)
    pn.panel(explorer).get_root(Document(), Comm())
    assert explorer.heading == "## ntmviz: inside a Toy queue"
    assert all(explorer._cards[name].visible for name in ("memory", "focus", "heads", "slots", "sequence"))
    t = 3
    explorer.state.t = t
    frame = explorer.focus.frame()["heads"]
    assert set(frame) == {"push 1", "pop 1"}
    np.testing.assert_array_equal(frame["pop 1"]["front"], episode.heads["pop"].stages["front"][t, 0])
    np.testing.assert_array_equal(frame["pop 1"]["act"], np.float32([0.6, 0.3, 0.1]))
    slots = explorer.slots.frame()
    np.testing.assert_array_equal(slots["state"]["strength"], episode.slot_state["strength"][t])
    assert isinstance(explorer.slots, SlotsView)
    svg = figure(episode, "slots", t).svg()
    assert "strength" in svg and 'data-heatmap="slot-strength"' in svg
    assert "push 1" in figure(episode, "focus", t).svg()
