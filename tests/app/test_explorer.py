"""The whole explorer: from a checkpoint, the default start, episodes without memory, the cards each
episode's declaration shows and their arrangement for few or many heads, the heading."""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.document import Document
from panel.models.esm import ReactiveESM
from pyviz_comms import Comm

from ntmviz import Episode
from ntmviz.app import Explorer
from ntmviz.app.explorer import FEW_HEADS_LAYOUT, MANY_HEADS, MANY_HEADS_LAYOUT
from ntmviz.app.sources import UNTRAINED

VIEW_CARDS = ("memory", "focus", "heads", "slots", "sequence", "mechanisms")


def esm_models(viewable):
    """The browser-side models of a whole page, by view kind (each kind must occur once)."""
    root = pn.panel(viewable).get_root(Document(), Comm())
    models = list(root.select({"type": ReactiveESM}))
    kinds = [m.data.kind for m in models]
    assert len(kinds) == len(set(kinds)), kinds
    return {m.data.kind: m for m in models}


def explore_tab(explorer):
    """The Explore tab's views (the Train and Compare tabs have their own)."""
    return pn.Column(*(explorer.views[k] for k in ("player", "memory", "heads", "focus", "slots", "sequence")))


def visible_cards(explorer) -> set[str]:
    return {name for name, card in explorer._cards.items() if card.visible}


def test_from_checkpoint(checkpoint_dir):
    explorer = Explorer.from_checkpoint(checkpoint_dir / "copy-ntm.safetensors", length=4, seed=1)
    episode = explorer.state.episode
    assert episode.steps == 9 and episode.meta["checkpoint"] == "copy-ntm.safetensors"
    models = esm_models(explore_tab(explorer))
    assert set(models) == {"player", "memory", "heads", "focus", "slots", "sequence"}
    assert len({m.data.group for m in models.values()}) == 1
    assert explorer.state.t == episode.opening_step() == 7  # mid-way through the copy's scored steps 5 .. 8
    assert {m.data.t for m in models.values()} == {7}
    explorer.state.t = 6
    assert {m.data.t for m in models.values()} == {6}
    assert not explorer._note.visible
    explorer.sources.length.value = "2"
    new = explorer.sources.run_model()
    assert explorer.state.episode is new
    assert all(m.data.payload["T"] == 5 for m in models.values())
    assert "length 2" in explorer._title.object


def test_default_uses_the_shipped_checkpoint(checkpoint_dir):
    explorer = Explorer.default(checkpoint_dir)
    assert explorer.state.episode.meta["checkpoint"] == "copy-ntm.safetensors"
    assert explorer.state.episode.meta["length"] == 5  # the task's largest training length


def test_default_without_checkpoints_notes_an_untrained_model(tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"not a checkpoint")
    explorer = Explorer.default(tmp_path)
    assert explorer.state.episode.meta["source"] == UNTRAINED
    assert explorer._note.visible and "untrained" in explorer._note.object
    assert explorer.sources.alert.visible and "broken.safetensors" in explorer.sources.message
    pn.panel(explorer).get_root(Document(), Comm())  # the whole page, all tabs, renders


def test_episode_without_memory_shows_sequence_only(lstm_episode, episode):
    explorer = Explorer(episode, folder="/nonexistent")
    assert visible_cards(explorer) == {"memory", "focus", "heads", "sequence", "mechanisms"}
    explorer.state.episode = lstm_episode
    assert visible_cards(explorer) == {"sequence", "mechanisms"}
    assert explorer._note.visible and "no memory" in explorer._note.object
    pn.panel(explorer).get_root(Document(), Comm())  # the whole page, all tabs, renders


def test_a_checkpoint_saved_in_the_train_tab_is_listed_everywhere(checkpoint_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    explorer = Explorer.from_checkpoint(checkpoint_dir / "copy-ntm.safetensors", runs_folder=str(runs))
    training = explorer.training
    training.steps.value = "2"
    try:
        assert training.start() is not None, training.message
        training.stop()
        path = training.save_checkpoint()
    finally:
        training.stop()
    label = f"{runs.name}/{path.name}"
    assert path.parent == runs
    assert explorer.sources.checkpoint.options[label] == str(path)
    assert training.start_from.options[label] == str(path)
    assert explorer.compare.left_pick.options[label] == str(path)
    explorer.sources.checkpoint.value = str(path)
    assert explorer.sources.run_model().meta["checkpoint"] == path.name


def test_the_leave_guard_sits_outside_the_tabs(episode):
    explorer = Explorer(episode, folder="/nonexistent")
    page = explorer.__panel__()
    assert any(obj is explorer.training.guard for obj in page.objects)  # not inside a (hidden) tab
    tabs = next(obj for obj in page.objects if isinstance(obj, pn.Tabs))
    assert not any(obj is explorer.training.guard for obj in tabs.select())


# ---- which views, in what arrangement, under which heading ---------------------------------------

def heads_episode(read: int, write: int) -> Episode:
    """A from_arrays episode with `read` + `write` heads (T=3, N=5, M=2)."""

    def w(H):
        return np.full((3, H, 5), 0.2, np.float32)

    return Episode.from_arrays(memory=np.zeros((4, 5, 2), np.float32), read_weights=w(read), write_weights=w(write))


def test_the_cards_shown_follow_the_declaration(episode, lstm_episode, dnc_episode, pointer_episode):
    """Memory, focus and head locations where there are heads; the slots card only where the model
    declares slot state, slot matrices or slots in a plane; the sequence and "what the heads did"
    for any episode; nothing without one."""
    from ntmviz.app.sources import load_source, record_episode

    story = record_episode(load_source("babi_single-memn2n"), length=5, seed=2)  # labelled slots, no slot state
    explorer = Explorer(episode, folder="/nonexistent")
    heads = {"memory", "focus", "heads", "sequence", "mechanisms"}
    for ep, shown in [(episode, heads), (lstm_episode, {"sequence", "mechanisms"}), (story, heads),
                      (dnc_episode, heads | {"slots"}), (pointer_episode, heads | {"slots"}), (episode, heads)]:
        explorer.state.episode = ep
        assert visible_cards(explorer) == shown, ep
        assert explorer._note.visible is (not ep.has_memory), ep
        assert all(explorer._cards[k].objects[0] is explorer.views[k].canvas for k in VIEW_CARDS[:5])
    assert visible_cards(Explorer(folder="/nonexistent")) == set()
    explorer.state.episode = dnc_episode
    models = esm_models(pn.Column(explorer.player, explorer._grid))  # the slots canvas renders with the rest
    assert set(models) == {"player", "memory", "focus", "heads", "slots", "sequence"}
    assert set(models["slots"].data.payload["steps"]["names"]) == {"slot.usage", "matrix.links"}


def card_order(explorer) -> list[str]:
    names = {id(card): name for name, card in explorer._cards.items()}
    return [names[id(card)] for card in explorer._grid.objects]


def test_few_heads_put_the_focus_beside_the_memory_and_many_give_it_a_line(episode, pointer_episode):
    """With a few heads the focus sits beside the memory (as wide as two heads' panels at most)
    and each timeline takes the page's width; with more than MANY_HEADS the sequence sits beside
    the memory and the heads' focus and locations each take a line, their panels side by side.
    The rendered cards follow when the episode changes."""
    import torch

    import ntmviz
    from ntmviz import record

    torch.manual_seed(0)
    I, O = episode.inputs.shape[1], episode.targets.shape[1]
    five = record(ntmviz.NTM(ntmviz.NTMConfig(input_size=I, output_size=O, memory_slots=7, memory_width=5,
                                              controller_size=16, read_heads=3, write_heads=2)),
                  torch.zeros(4, I), torch.zeros(4, O), mask=torch.ones(4))
    assert MANY_HEADS == 4 and len(five.head_list()) == 5
    explorer = Explorer(episode, folder="/nonexistent")
    root = pn.panel(explorer._grid).get_root(Document(), Comm())
    rendered = {name: card._models[root.ref["id"]][0] for name, card in explorer._cards.items()}

    def flex():
        return {name: card.styles["flex"] for name, card in explorer._cards.items()}

    for ep, basis in [(episode, "560px"), (pointer_episode, "280px"), (heads_episode(2, 2), "560px")]:
        explorer.state.episode = ep
        assert card_order(explorer) == list(FEW_HEADS_LAYOUT) and card_order(explorer)[:2] == ["memory", "focus"]
        assert flex() == {**FEW_HEADS_LAYOUT, "focus": f"1 1 {basis}"}, ep
        assert flex()["memory"] == "0 0 auto"  # as wide as it draws, the focus beside it
        assert all(card.styles["min-width"] == "0" for card in explorer._cards.values())
    for ep in (five, heads_episode(3, 2)):
        explorer.state.episode = ep
        assert card_order(explorer) == list(MANY_HEADS_LAYOUT) and card_order(explorer)[:2] == ["memory", "sequence"]
        assert flex() == MANY_HEADS_LAYOUT
        assert flex()["focus"] == flex()["heads"] == "1 1 100%"
    assert rendered["focus"].styles["flex"] == "1 1 100%"
    assert root.children["flex-item"] == [rendered[n] for n in MANY_HEADS_LAYOUT]  # the page's order follows
    explorer.state.episode = episode
    assert rendered["focus"].styles["flex"] == "1 1 560px" and card_order(explorer) == list(FEW_HEADS_LAYOUT)
    assert root.children["flex-item"] == [rendered[n] for n in FEW_HEADS_LAYOUT]


def test_the_heading_names_the_model(episode, lstm_episode, dnc_episode):
    explorer = Explorer(episode, folder="/nonexistent")
    page = explorer.__panel__()
    heading = page.objects[0]
    assert heading.object == explorer.heading == "## ntmviz: inside a Neural Turing Machine"
    explorer.state.episode = lstm_episode
    assert heading.object == "## ntmviz: inside an LSTM baseline"
    explorer.state.episode = dnc_episode
    assert heading.object == "## ntmviz: inside a DNC &#40;the dnc package&#41;"  # its title, as text
    explorer.state.episode = Episode.from_arrays(memory=[[0.0]], read_weights=[[1.0]], title="End-to-end network")
    assert heading.object == "## ntmviz: inside an End&#45;to&#45;end network"
    assert Explorer(folder="/nonexistent").heading == "## ntmviz: inside a memory model"
