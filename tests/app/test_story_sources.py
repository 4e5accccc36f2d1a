"""A memory network in the explorer: the shipped story checkpoints are listed with the others,
Run records a story (hops as steps, sentences as labelled slots, the answer scored), and the
views that run sequences (Compare, the Train tab) leave them out or say why."""

from __future__ import annotations

import re
import numpy as np
import pytest
import torch

from ntmviz import checkpoint
from ntmviz.app import Playback
from ntmviz.app.compare import Compare
from ntmviz.app.live import LiveRun
from ntmviz.app.payload import describe
from ntmviz.app.sources import Sources, load_source, record_episode, runs_sequences
from ntmviz.app.training_view import TrainingView
from ntmviz.errors import ConfigError, EpisodeArrayError
from ntmviz.episode import Episode
from ntmviz.shipped import checkpoint_path, shipped_folder

STORY = "babi_single-memn2n.safetensors"


def test_run_records_a_story_from_the_shipped_list():
    torch.set_num_threads(1)
    state = Playback()
    sources = Sources(state, folder=shipped_folder())
    assert STORY in sources.checkpoint.options and "babi_two-memn2n.safetensors" in sources.checkpoint.options
    sources.checkpoint.value = sources.checkpoint.options[STORY]
    sources.length.value, sources.seed.value = "6", "4"
    episode = sources.run_model()
    assert episode is not None and state.episode is episode, sources.alert.object
    source = load_source(checkpoint_path(STORY))
    hops, sentences = source.model.config.hops, len(episode.slot_labels)
    assert episode.steps == hops and episode.static_memory and episode.slots == sentences <= 6
    batch = source.task.at(6).sample(1, seed=4)
    story, question, answer = source.task.story_text(batch, 0)
    assert episode.slot_labels == story and episode.meta["question"] == question and episode.meta["answer"] == answer
    assert episode.meta["checkpoint"] == STORY and episode.meta["seed"] == 4 and episode.meta["length"] == 6
    # the answer is scored at the last hop only, right or wrong by the most likely word
    assert episode.mask.tolist() == [0.0] * (hops - 1) + [1.0] and episode.error_name == "wrong answers"
    with torch.inference_mode():
        logits = source.model(batch.inputs)[0, 0]
    model_answer = source.task.answer_words[int(logits.argmax())]
    assert episode.meta["model_answer"] == model_answer
    assert episode.errors().tolist() == [0.0] * (hops - 1) + [float(model_answer != answer)]
    line = describe(episode)
    assert f"question {question!r}, answer {answer}, model's answer {model_answer}" in line and "bit" not in line
    # each hop's attention is a distribution over the story's sentences
    np.testing.assert_allclose(episode.read.weights.sum(-1), 1.0, atol=1e-5)


def test_a_typed_story_plays_a_bad_one_is_one_line_and_no_impossible_length():
    source = load_source(checkpoint_path(STORY))
    episode = record_episode(source, pattern="john went to the office. mary moved to the hallway.\nwhere is mary?")
    assert episode.meta["answer"] == "hallway" and len(episode.slot_labels) == 2
    with pytest.raises(ConfigError, match=re.escape("a story uses letters, spaces, '.' and '?' only, not '0' '1'")):
        record_episode(source, pattern="0101")
    with pytest.raises(ConfigError, match="stories of 20 sentences needs 20 memory slots, the model has 10"):
        record_episode(source, length=20)
    with pytest.raises(ConfigError, match="length must be"):
        record_episode(source, length=0)


def test_compare_puts_two_story_models_on_one_story_and_train_leaves_them_out(tmp_path):
    story = checkpoint_path(STORY)
    assert not runs_sequences(story) and runs_sequences(checkpoint_path("copy-ntm"))
    assert runs_sequences(tmp_path / "missing.safetensors")  # cannot tell: listed, then says what is wrong
    compare = Compare(folder=str(shipped_folder()))
    dmn = checkpoint_path("babi_single-dmn")
    assert {str(story), str(dmn), str(checkpoint_path("copy-ntm"))} <= set(compare.options().values())
    compare.left_pick.value, compare.right_pick.value = str(story), str(dmn)
    assert compare.compare(), compare.message
    left, right = compare.left.episode, compare.right.episode
    assert (left.family.name, right.family.name) == ("memn2n", "dmn")
    # one story on both sides: the same sentences, question and answer
    assert left.slot_labels == right.slot_labels and left.meta["question"] == right.meta["question"]
    assert left.meta["answer"] == right.meta["answer"] and (left.targets == right.targets).all()
    # a story beside a sequence model: one line, the pair on show kept
    compare.left_pick.value, compare.right_pick.value = str(story), str(checkpoint_path("copy-ntm"))
    assert not compare.compare() and "trained on different tasks" in compare.message
    assert compare.left.episode is left
    view = TrainingView(folder=str(shipped_folder()), save_folder=str(tmp_path))
    assert str(story) not in view.start_from.options.values()
    with pytest.raises(ConfigError, match="is a memory network: train it with ntmviz train --model memn2n"):
        LiveRun.from_checkpoint(story)


def test_from_arrays_mask_and_scoring_are_checked():
    w = np.full((2, 1, 3), 1 / 3, np.float32)
    mem = np.zeros((3, 2), np.float32)
    with pytest.raises(EpisodeArrayError, match=r"mask has shape \(3,\), expected \[2\]"):
        Episode.from_arrays(memory=mem, read_weights=w, mask=[1, 1, 0])
    with pytest.raises(EpisodeArrayError, match="mask must hold only 0"):
        Episode.from_arrays(memory=mem, read_weights=w, mask=[0.5, 1])
    with pytest.raises(EpisodeArrayError, match=r"meta\['scoring'\] is 'logits', expected one of"):
        Episode.from_arrays(memory=mem, read_weights=w, meta={"scoring": "logits"})
    ep = Episode.from_arrays(memory=mem, read_weights=w, outputs=np.eye(2, dtype=np.float32),
                             targets=np.eye(2, dtype=np.float32)[::-1].copy(), mask=[1, 0])
    assert ep.errors().tolist() == [2.0, 0.0] and ep.error_name == "bit errors"  # bits by default
    assert Episode.from_bytes(ep.to_bytes()).mask.tolist() == [1.0, 0.0]


def test_the_shipped_story_checkpoints_sit_beside_the_others():
    for name in ("babi_single-memn2n", "babi_two-memn2n"):
        ckpt = checkpoint.load(checkpoint_path(name), device="cpu")
        assert ckpt.config.kind == "memn2n" and ckpt.checksum == "verified"
