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
    assert explorer.sources.alert.visible and "broken.safetensors" in explorer.sources.message
    pn.panel(explorer).get_root(Document(), Comm())  # the whole page, all tabs, renders


def test_episode_without_memory_shows_sequence_only(lstm_episode, episode):
    explorer = Explorer(episode, folder="/nonexistent")
    assert explorer._memory_views.visible
    explorer.state.episode = lstm_episode
    assert not explorer._memory_views.visible
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
