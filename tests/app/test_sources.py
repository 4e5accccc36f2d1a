"""Recording episodes from checkpoints and typed inputs; opening bad files keeps the old episode."""

from __future__ import annotations

import html

import numpy as np
import pytest
from safetensors.numpy import save as st_save

from ntmviz import Episode
from ntmviz.app import Playback
from ntmviz.app.sources import (
    UNTRAINED, Sources, episode_bytes, episode_filename, find_checkpoints, load_source,
    record_episode,
)
from ntmviz.errors import ConfigError


def test_record_from_checkpoint(checkpoint_dir):
    [path] = find_checkpoints(checkpoint_dir)
    source = load_source(path)
    episode = record_episode(source, length=4, seed=7)
    assert episode.steps == 9 and episode.slots == 16
    assert episode.meta["task"] == "copy" and episode.meta["seed"] == 7 and episode.meta["length"] == 4
    again = record_episode(source, length=4, seed=7)
    np.testing.assert_array_equal(again.inputs, episode.inputs)
    typed = record_episode(source, pattern="10101010\n01010101")
    assert typed.steps == 5 and typed.meta["pattern"]
    with pytest.raises(ConfigError, match="needs 17 memory slots"):
        record_episode(source, length=17)
    with pytest.raises(ConfigError, match="needs 8 per row"):
        record_episode(source, pattern="101")
    with pytest.raises(ConfigError, match="length must be"):
        record_episode(source, length=0)


def bad_files(episode):
    good = episode_bytes(episode)
    other_version = st_save({"inputs": episode.inputs}, metadata={"format": "ntmviz-episode", "version": "99"})
    other_format = st_save({"x": np.zeros(3, np.float32)}, metadata={"format": "ntmviz-checkpoint", "version": "1"})
    incomplete = st_save({"inputs": episode.inputs}, metadata={"format": "ntmviz-episode", "version": "1"})
    return {
        "truncated": good[: len(good) // 2],
        "corrupt": good[:8] + b"{not json" + good[17:],
        "another version": other_version,
        "not an episode": other_format,
        "text": b"hello, world",
        "incomplete": incomplete,
    }


def test_bad_episode_files_show_a_message_and_keep_the_episode(episode, other_episode):
    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    for what, data in bad_files(other_episode).items():
        assert sources.open_bytes(data, f"{what}.safetensors") is None, what
        assert sources.alert.visible and sources.alert.object, what
        assert state.episode is episode, what
    loaded = sources.open_bytes(episode_bytes(other_episode), "good.safetensors")
    assert loaded is not None and state.episode is loaded and not sources.alert.visible
    np.testing.assert_array_equal(loaded.memory, other_episode.memory)


def test_version_message(episode):
    sources = Sources(Playback(episode), folder="/nonexistent")
    sources.open_bytes(bad_files(episode)["another version"], "v.safetensors")
    assert "version" in sources.message and "99" in sources.message


def test_run_in_the_app(checkpoint_dir, episode):
    state = Playback(episode)
    sources = Sources(state, folder=checkpoint_dir)
    assert sources.checkpoint.value.endswith("copy-ntm.safetensors")
    sources.length.value, sources.seed.value = "3", "5"
    new = sources.run_model()
    assert new is not None and state.episode is new and new.steps == 7
    assert sources.save.filename == "copy-len3-seed5.safetensors"
    assert sources.export.filename == "copy-len3-seed5.html"
    # bad inputs: a message, the episode stays
    sources.length.value = "40"
    assert sources.run_model() is None and state.episode is new
    assert "memory slots" in sources.alert.object and sources.alert.visible
    sources.length.value = "3"
    sources.pattern.value = "1010101x"
    assert sources.run_model() is None and "only 0 and 1" in sources.message and state.episode is new
    sources.pattern.value = "1010101"
    assert sources.run_model() is None and "8 per row" in sources.message
    sources.pattern.value = "10101011\n00000000"
    typed = sources.run_model()
    assert typed is not None and typed.steps == 5 and not sources.alert.visible
    # save and export produce the episode and a page
    saved = Episode.from_bytes(sources._episode_file().getvalue())
    np.testing.assert_array_equal(saved.memory, typed.memory)
    assert saved.meta == typed.meta
    assert "<!DOCTYPE html>" in sources._html_file().getvalue()


def test_untrained_fallback_lists_itself(episode, tmp_path):
    sources = Sources(Playback(episode), folder=tmp_path)
    assert sources.checkpoint.value == UNTRAINED
    assert sources.run_model() is not None


def test_filename():
    assert episode_filename(None) == "episode.safetensors"


def test_switching_checkpoints(checkpoint_dir, episode):
    import ntmviz
    from ntmviz.checkpoint import save
    from ntmviz.tasks import get_task

    task = get_task("repeat_copy", bits=3, max_length=2, max_repeats=2)
    lstm = ntmviz.LSTMBaseline(ntmviz.LSTMConfig(input_size=task.input_size, output_size=task.output_size,
                                                 hidden_size=8, layers=1))
    save(checkpoint_dir / "repeat-lstm.safetensors", lstm, task=task)
    (checkpoint_dir / "broken.safetensors").write_bytes(b"\x00" * 40)
    state = Playback(episode)
    sources = Sources(state, folder=checkpoint_dir)
    names = list(sources.checkpoint.options)
    assert names[0] == "copy-ntm.safetensors" and set(names) == {
        "copy-ntm.safetensors", "repeat-lstm.safetensors", "broken.safetensors"}
    sources.checkpoint.value = str(checkpoint_dir / "repeat-lstm.safetensors")
    assert sources.length.value == "2" and "repeat copy" in sources.hint.object
    recorded = sources.run_model()
    assert recorded is not None and not recorded.has_memory and recorded.meta["task"] == "repeat_copy"
    sources.pattern.value = "101\n011"
    assert sources.run_model().inputs.shape[1] == task.input_size
    sources.checkpoint.value = str(checkpoint_dir / "broken.safetensors")
    assert sources.alert.visible and "broken.safetensors" in sources.message
    assert sources.run_model() is None and state.episode.meta["task"] == "repeat_copy"


@pytest.mark.parametrize("length, seed, message", [
    ("0", "0", "Length must be at least 1 for copy (the sequence length); you typed 0."),
    ("-5", "0", "Length must be at least 1 for copy (the sequence length); you typed -5."),
    ("12.5", "0", "Length must be a whole number; \u201c12.5\u201d is not one."),
    ("3", "-3", "Seed must be at least 0; you typed -3."),
    ("3", "1e20", "Seed must be a whole number; \u201c1e20\u201d is not one."),
    ("3", "100000000000000000000", "Seed must be at most 4,294,967,295; you typed 100,000,000,000,000,000,000."),
    ("", "0", "Length: type a whole number."),
])
def test_length_and_seed_are_read_as_typed_or_refused(checkpoint_dir, episode, length, seed, message):
    state = Playback(episode)
    sources = Sources(state, folder=checkpoint_dir)
    sources.length.value, sources.seed.value = length, seed
    assert sources.run_model() is None and state.episode is episode
    assert sources.message == message
    assert (sources.length.value, sources.seed.value) == (length, seed)  # never rewritten


def test_recall_at_one_item_names_the_number_of_items(tmp_path, episode):
    import ntmviz
    from ntmviz.checkpoint import save
    from ntmviz.tasks import get_task

    task = get_task("associative_recall", bits=3, item_length=1, max_items=3)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=task.input_size, output_size=task.output_size,
                                        memory_slots=8, memory_width=4, controller_size=8))
    path = save(tmp_path / "recall.safetensors", model, task=task)
    sources = Sources(Playback(episode), folder=tmp_path)
    assert sources.checkpoint.value == str(path)
    sources.length.value = "1"
    assert sources.run_model() is None
    assert sources.message == "Length must be at least 2 for associative recall (the number of items); you typed 1."
    with pytest.raises(ConfigError, match="at least 2 for associative recall"):
        record_episode(load_source(path), length=1)
    sources.length.value = "2"
    assert sources.run_model().meta["length"] == 2


def test_checkpoints_of_more_folders_are_listed_and_refreshed(checkpoint_dir, episode, tmp_path_factory):
    import ntmviz
    from ntmviz.checkpoint import save
    from ntmviz.tasks import get_task

    runs = tmp_path_factory.mktemp("runs")
    sources = Sources(Playback(episode), folder=checkpoint_dir, extra_folders=[str(runs)])
    assert list(sources.checkpoint.options) == ["copy-ntm.safetensors"]
    task = get_task("copy", max_length=5)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=task.input_size, output_size=task.output_size,
                                        memory_slots=16, memory_width=6, controller_size=16))
    path = save(runs / "copy-ntm-step40.safetensors", model, task=task)
    sources.refresh_checkpoints()
    assert sources.checkpoint.options == {"copy-ntm.safetensors": str(checkpoint_dir / "copy-ntm.safetensors"),
                                          f"{runs.name}/copy-ntm-step40.safetensors": str(path)}
    assert sources.checkpoint.value == str(checkpoint_dir / "copy-ntm.safetensors")  # the choice stays
    sources.checkpoint.value = str(path)
    assert sources.run_model().meta["checkpoint"] == "copy-ntm-step40.safetensors"


def test_open_a_checkpoint_file(checkpoint_dir, episode):
    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    data = (checkpoint_dir / "copy-ntm.safetensors").read_bytes()
    recorded = sources.open_checkpoint_file(data, "my-model.safetensors")
    assert recorded is not None and state.episode is recorded, sources.message
    assert recorded.meta["source"] == "my-model.safetensors" and recorded.meta["length"] == 5
    assert sources.checkpoint.options["my-model.safetensors (opened)"] == sources.checkpoint.value
    assert sources.source.name == "my-model.safetensors"
    sources.length.value = "2"  # and it runs again like any listed checkpoint
    assert sources.run_model().steps == 5
    # a file that is not a checkpoint: a message naming the file, the episode stays
    before = state.episode
    assert sources.open_checkpoint_file(episode_bytes(episode), "an-episode.safetensors") is None
    assert sources.message.startswith("an-episode.safetensors: not a ntmviz-checkpoint file")
    assert state.episode is before


def test_a_checkpoint_file_that_breaks_the_loader_is_logged_with_its_traceback(episode, monkeypatch, caplog):
    import ntmviz.app.sources as sources_module

    def broken(*args, **kwargs):
        raise KeyError("a field the loader did not expect")

    monkeypatch.setattr(sources_module, "open_checkpoint_bytes", broken)
    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    with caplog.at_level("ERROR", logger="ntmviz.app.sources"):
        assert sources.open_checkpoint_file(b"not empty", "odd.safetensors") is None
    assert sources.message.startswith("odd.safetensors: not a readable checkpoint (KeyError:")
    [record] = [r for r in caplog.records if r.name == "ntmviz.app.sources"]
    assert record.exc_info and isinstance(record.exc_info[1], KeyError)
    assert state.episode is episode and not any("(opened)" in label for label in sources.checkpoint.options)


def test_an_unexpected_run_failure_is_logged_with_its_traceback(checkpoint_dir, episode, monkeypatch, caplog):
    import ntmviz.app.sources as sources_module

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sources_module, "record_episode", broken)
    sources = Sources(Playback(episode), folder=checkpoint_dir)
    with caplog.at_level("ERROR", logger="ntmviz.app.sources"):
        assert sources.run_model() is None
    assert sources.message == "could not run the model: RuntimeError: a bug"
    [record] = [r for r in caplog.records if r.name == "ntmviz.app.sources"]
    assert record.exc_info and str(record.exc_info[1]) == "a bug"


# ---- files: the upload protocol, empty files, the same file twice ------------------------------------
def upload_messages(data: bytes, name: str, chunk: int, upload_id: int = 1) -> list[dict]:
    """What the browser side of EpisodeUpload sends for a file it accepts."""
    import base64

    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    return ([{"kind": "start", "id": upload_id, "name": name, "size": len(data), "pieces": len(pieces)}]
            + [{"kind": "piece", "id": upload_id, "index": i, "data": base64.b64encode(p).decode()}
               for i, p in enumerate(pieces)]
            + [{"kind": "end", "id": upload_id}])


def test_upload_reassembles_the_pieces_into_the_episode(episode, other_episode):
    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    data = episode_bytes(other_episode)
    messages = upload_messages(data, "other.safetensors", chunk=1024)
    assert len(messages) > 4  # several pieces
    for msg in messages:
        sources.upload._handle_msg(msg)
    assert state.episode is not episode and not sources.alert.visible
    np.testing.assert_array_equal(state.episode.memory, other_episode.memory)
    assert state.episode.meta["source"] == "other.safetensors" and state.episode.checksum == "verified"


def test_the_same_file_opened_again_loads_again(episode, other_episode):
    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    data = episode_bytes(other_episode)
    seen = []
    state.param.watch(lambda e: seen.append(e.new), "episode")
    for upload_id in (1, 2):
        for msg in upload_messages(data, "same.safetensors", chunk=4096, upload_id=upload_id):
            sources.upload._handle_msg(msg)
    assert len(seen) == 2 and seen[0] is not seen[1]
    # another file with the same bytes under another name
    first = sources.open_bytes(data, "copy-of-same.safetensors")
    assert first is not None and state.episode is first and len(seen) == 3


def test_empty_and_oversized_files_get_a_message(episode):
    from ntmviz.files import MAX_EPISODE_BYTES, MB

    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    sources.upload._handle_msg({"kind": "refused", "id": 1, "name": "big.safetensors", "size": 150 * MB})
    assert sources.message == f"big.safetensors: too large (150.0 MB, limit {MAX_EPISODE_BYTES // MB} MB)"
    assert sources.alert.visible and state.episode is episode
    sources.upload._handle_msg({"kind": "refused", "id": 2, "name": "nothing.safetensors", "size": 0})
    assert sources.message == "nothing.safetensors: empty file"
    # an edited page that skips the browser's check is refused by the server as well
    sources.upload._handle_msg({"kind": "start", "id": 3, "name": "sneaky.safetensors", "size": 150 * MB})
    assert sources.message.startswith("sneaky.safetensors: too large (150.0 MB")
    assert sources.open_bytes(b"", "zero.safetensors") is None and sources.message == "zero.safetensors: empty file"
    assert state.episode is episode


def test_an_incomplete_or_garbled_upload_gets_a_message(episode, other_episode):
    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    messages = upload_messages(episode_bytes(other_episode), "cut.safetensors", chunk=2048)
    for msg in messages[:2] + messages[-1:]:  # a piece went missing
        sources.upload._handle_msg(msg)
    assert "cut.safetensors: the upload was incomplete" in sources.message and state.episode is episode
    for msg in [messages[0], messages[2]]:  # out of order
        sources.upload._handle_msg(msg)
    assert "out of order" in sources.message and state.episode is episode


def test_episode_size_is_known_before_recording(checkpoint_dir, monkeypatch):
    import ntmviz.app.sources as sources_module
    from ntmviz.app.sources import episode_size

    source = load_source(find_checkpoints(checkpoint_dir)[0])
    recorded = record_episode(source, length=5, seed=1)
    data = recorded.to_bytes()
    assert episode_size(source.model, source.task.at(5).sample(1, seed=1)) == recorded.nbytes \
        == len(data) - 8 - int.from_bytes(data[:8], "little")  # the file's data section
    monkeypatch.setattr(sources_module, "MAX_EPISODE_BYTES", recorded.nbytes - 1)
    with pytest.raises(ConfigError, match="makes a 0 MB episode; the explorer opens files of at most 0 MB"):
        record_episode(source, length=5, seed=1)
    assert record_episode(source, length=4, seed=1).nbytes < recorded.nbytes

def test_a_checkpoint_opened_through_the_picker_runs(checkpoint_dir, episode):
    state = Playback(episode)
    sources = Sources(state, folder="/nonexistent")
    data = (checkpoint_dir / "copy-ntm.safetensors").read_bytes()
    for msg in upload_messages(data, "picked.safetensors", chunk=4096):
        sources.open_checkpoint._handle_msg(msg)
    assert state.episode is not episode and state.episode.meta["source"] == "picked.safetensors", sources.message
    sources.open_checkpoint._handle_msg({"kind": "refused", "id": 9, "name": "huge.safetensors", "size": 100 * 10**6})
    assert sources.message == "huge.safetensors: too large (100.0 MB, limit 64 MB)"


# ---- the toolbar: typed input only where a task takes it, Enter runs -------------------------------------------
def save_recall(folder):
    """An untrained associative-recall NTM (a task that takes no typed input) in `folder`."""
    import torch

    import ntmviz
    from ntmviz.checkpoint import save
    from ntmviz.tasks import get_task

    task = get_task("associative_recall", bits=3, item_length=1, max_items=3)
    torch.manual_seed(6)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=task.input_size, output_size=task.output_size,
                                        memory_slots=8, memory_width=4, controller_size=8))
    return save(folder / "recall.safetensors", model, task=task)


def test_the_pattern_box_shows_only_for_tasks_that_take_typed_input(checkpoint_dir, episode):
    recall = save_recall(checkpoint_dir)
    state = Playback(episode)
    sources = Sources(state, folder=checkpoint_dir)
    copy = str(checkpoint_dir / "copy-ntm.safetensors")
    assert sources.checkpoint.value == copy
    hint = "Type rows of 8 bits (0 or 1), one vector per line."
    assert sources.pattern.visible and hint in html.unescape(sources.hint.object)
    assert sources.pattern.placeholder == hint
    sources.pattern.value = "10101010\n01010101"  # typed for the copy task
    sources.checkpoint.value = str(recall)
    assert not sources.pattern.visible and "Type rows" not in html.unescape(sources.hint.object)
    assert "associative recall" in html.unescape(sources.hint.object)
    # what was typed for the copy stays out of sight and out of the recording: Length and Seed run
    sources.length.value, sources.seed.value = "3", "2"
    recorded = sources.run_model()
    assert recorded is not None and state.episode is recorded, sources.message
    assert recorded.meta["task"] == "associative_recall" and recorded.meta["length"] == 3
    assert "pattern" not in recorded.meta
    sources.checkpoint.value = copy
    assert sources.pattern.visible and sources.pattern.value == "10101010\n01010101"
    typed = sources.run_model()
    assert typed is not None and typed.meta["pattern"] and typed.steps == 5


def test_enter_in_length_or_seed_runs(checkpoint_dir, episode):
    import panel as pn
    from bokeh.document import Document
    from panel.models.widgets import EnterEvent
    from pyviz_comms import Comm

    state = Playback(episode)
    sources = Sources(state, folder=checkpoint_dir, layout="toolbar")
    root = pn.panel(sources).get_root(Document(), Comm())

    def enter(field, typed):
        """The browser's Enter in a text box: the typed value, then the event."""
        field._process_event(EnterEvent(field._models[root.ref["id"]][0], typed))

    enter(sources.length, "3")
    first = state.episode
    assert first is not episode and (first.meta["length"], first.meta["seed"], first.steps) == (3, 0, 7)
    assert sources.length.value == "3" and not sources.alert.visible
    enter(sources.seed, "5")
    assert state.episode is not first and (state.episode.meta["length"], state.episode.meta["seed"]) == (3, 5)
    shown = state.episode
    enter(sources.length, "0")  # a length it refuses: a message, the episode stays
    assert state.episode is shown and sources.alert.visible
    assert sources.message == "Length must be at least 1 for copy (the sequence length); you typed 0."


def test_the_toolbar_keeps_the_main_action_in_one_row(checkpoint_dir, episode):
    """Checkpoint, Length, Seed and Run in one row; typing an input and the files one click away."""
    import panel as pn

    sources = Sources(Playback(episode), folder=checkpoint_dir, layout="toolbar")
    page = sources.__panel__()
    row, more, alert = page.objects
    assert row.objects[:4] == [sources.checkpoint, sources.length, sources.seed, sources.run]
    toggle = row.objects[4]
    assert isinstance(toggle, pn.widgets.Toggle) and toggle.value is False and more.visible is False
    assert toggle.label == "Type an input · files"
    inside = list(more.select(pn.widgets.Widget))
    assert sources.pattern in inside and sources.save in inside and sources.export in inside
    assert alert is sources.alert
    toggle.value = True
    assert more.visible is True
    toggle.value = False
    assert more.visible is False
