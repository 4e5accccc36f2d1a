"""The whole explorer: from a checkpoint, the default start, episodes without memory."""

from __future__ import annotations

import panel as pn
from bokeh.document import Document
from panel.models.esm import ReactiveESM
from pyviz_comms import Comm

from ntmviz.app import Explorer
from ntmviz.app.sources import UNTRAINED


def esm_models(viewable):
    """The browser-side models of a whole page, by view kind (each kind must occur once)."""
    root = pn.panel(viewable).get_root(Document(), Comm())
    models = list(root.select({"type": ReactiveESM}))
    kinds = [m.data.kind for m in models]
    assert len(kinds) == len(set(kinds)), kinds
    return {m.data.kind: m for m in models}


def explore_tab(explorer):
    """The Explore tab's views (the Train and Compare tabs have their own)."""
    return pn.Column(*(explorer.views[k] for k in ("player", "memory", "heads", "focus", "sequence")))


def test_from_checkpoint(checkpoint_dir):
    explorer = Explorer.from_checkpoint(checkpoint_dir / "copy-ntm.safetensors", length=4, seed=1)
    episode = explorer.state.episode
    assert episode.steps == 9 and episode.meta["checkpoint"] == "copy-ntm.safetensors"
    models = esm_models(explore_tab(explorer))
    assert set(models) == {"player", "memory", "heads", "focus", "sequence"}
    assert len({m.data.group for m in models.values()}) == 1
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
    assert explorer.sources.alert.visible and "broken.safetensors" in explorer.sources.alert.object
    pn.panel(explorer).get_root(Document(), Comm())  # the whole page, all tabs, renders


def test_episode_without_memory_shows_sequence_only(lstm_episode, episode):
    explorer = Explorer(episode, folder="/nonexistent")
    assert explorer._memory_views.visible
    explorer.state.episode = lstm_episode
    assert not explorer._memory_views.visible
    assert explorer._note.visible and "no memory" in explorer._note.object
    pn.panel(explorer).get_root(Document(), Comm())  # the whole page, all tabs, renders
