"""Typed stories for the story tasks (Story.typed): a drawn story typed back is the sampler's
batch, hand-written stories get the world's answers and supporting facts, every bad story is
one line that names the problem, and the CLI records a typed story on the shipped checkpoints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ntmviz.errors import ConfigError
from ntmviz.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [("babi_single", {}), ("babi_two", {}), ("babi_yes_no", {}),
           ("babi_single", {"people": 3, "places": 4, "min_sentences": 1, "max_sentences": 12}),
           ("babi_two", {"people": 8, "places": 8, "objects": 6, "min_sentences": 2, "max_sentences": 20}),
           ("babi_yes_no", {"people": 1, "places": 2, "max_sentences": 5})]


def _typed(task, text):
    """typed_stories, checked against typed(): the same task and batch."""
    fixed, stories = task.typed_stories(text)
    again, batch = task.typed(text, seed=5)
    assert again == fixed and all(torch.equal(a, b) for a, b in zip(batch, stories.batch))
    return fixed, stories


def _as_a_person_types(sentences: list[str], question: str) -> str:
    """Capitals, full stops, stray spaces, all sentences on one line."""
    return "  ".join(s.capitalize().replace(" to ", "  to ") + "." for s in sentences) + " " + \
        question.replace(" ?", "?").upper()


@pytest.mark.parametrize("name, overrides", CONFIGS)
def test_a_drawn_story_typed_back_is_the_sampler_s_batch(name, overrides):
    task = get_task(name, **overrides)
    for seed in range(12):
        drawn = task.stories(1, seed=seed)
        sentences, question, _ = task.story_text(drawn.batch)
        for text in ("\n".join(sentences + [question]), _as_a_person_types(sentences, question)):
            fixed, typed = _typed(task, text)
            for field, a, b in zip(drawn.batch._fields, drawn.batch, typed.batch):
                assert a.dtype == b.dtype and torch.equal(a, b), (field, text)
            np.testing.assert_array_equal(typed.answers, drawn.answers)
            np.testing.assert_array_equal(typed.supporting, drawn.supporting)
            assert fixed == task.at(len(sentences))
            # the mechanism metric's reading of the text finds the same supporting facts
            assert task.supporting_facts(typed.batch.inputs[0]) == typed.supporting[0].tolist()


def _story(task, text):
    """(answer word, supporting facts, the story read back as text) of a typed story."""
    fixed, typed = _typed(task, text)
    sentences, question, answer = task.story_text(typed.batch)
    assert answer == task.answer_words[int(typed.answers[0])]
    assert typed.batch.mask[0].tolist() == [1.0] + [0.0] * len(sentences)
    assert fixed.max_sentences == fixed.min_sentences == len(sentences)
    return answer, typed.supporting[0].tolist(), sentences, question


def test_single_supporting_fact_is_the_person_s_last_move():
    task = get_task("babi_single")
    story = "mary went to the kitchen\njohn moved to the garden\nmary travelled to the hallway\n"
    answer, support, sentences, question = _story(task, story + "where is mary?")
    assert (answer, support, question) == ("hallway", [2], "where is mary ?")
    assert sentences == story.split("\n")[:3]
    assert _story(task, story + "where is john?")[:2] == ("garden", [1])
    # word ids as the vocabulary numbers them: answer words first (1..O), 0 pads
    _, typed = task.typed(story + "where is mary?")
    vocab = task.vocabulary
    assert typed.inputs.shape == (1, 4, 6) and typed.targets.shape == (1, 4, 6)
    assert [vocab[int(i)] for i in typed.inputs[0, 0]] == ["where", "is", "mary", "?", "", ""]
    assert [vocab[int(i)] for i in typed.inputs[0, 3]] == ["mary", "travelled", "to", "the", "hallway", ""]
    assert typed.targets[0, 0].tolist() == [0, 0, 1, 0, 0, 0] and typed.targets[0, 1:].sum() == 0


def test_two_supporting_facts_follow_the_object():
    task = get_task("babi_two")
    carried = "john went to the kitchen. john picked up the football. john travelled to the garden. "
    assert _story(task, carried + "where is the football?")[:2] == ("garden", [1, 2])
    dropped = ("john went to the kitchen. john grabbed the apple. john moved to the office. john discarded "
               "the apple. john went to the garden. where is the apple?")
    assert _story(task, dropped)[:2] == ("office", [2, 3])
    passed_on = ("john went to the kitchen. john took the milk. john dropped the milk. mary went to the kitchen. "
                 "mary picked up the milk. mary journeyed to the bedroom. where is the milk?")
    assert _story(task, passed_on)[:2] == ("bedroom", [4, 5])


def test_yes_no_compares_the_person_s_last_place():
    task = get_task("babi_yes_no")
    story = "mary went to the kitchen. john moved to the garden. mary went to the hallway. "
    assert _story(task, story + "is mary in the kitchen?")[:2] == ("no", [2])
    assert _story(task, story + "is mary in the hallway?")[:2] == ("yes", [2])
    assert _story(task, story + "is john in the garden?")[:2] == ("yes", [1])


@pytest.mark.parametrize("name, overrides", CONFIGS)
def test_the_hint_s_example_is_a_story_the_task_takes(name, overrides):
    task = get_task(name, **overrides)
    example = task.typed_example()
    assert task.typed_hint.endswith(f"e.g. {example}")
    fixed, typed = _typed(task, example)
    assert fixed.max_sentences == int(typed.batch.lengths[0]) - 1 >= 2


def test_the_default_hints():
    lead = "Type a story, one sentence per line (or each ended by '.'), then a question ending in '?', e.g. "
    assert get_task("babi_single").typed_hint == lead + (
        "mary went to the kitchen. john moved to the garden. mary travelled to the garden. where is mary?")
    assert get_task("babi_two").typed_hint == lead + (
        "mary went to the kitchen. mary picked up the football. mary travelled to the garden. "
        "where is the football?")
    assert get_task("babi_yes_no").typed_hint == lead + (
        "mary went to the kitchen. john moved to the garden. is mary in the kitchen?")


SINGLE_EXAMPLE = "mary went to the kitchen. john moved to the garden. mary travelled to the garden. where is mary?"
BAD = [
    ("babi_single", "  \n ", f"type a story: one sentence per line, then a question, e.g. {SINGLE_EXAMPLE}"),
    ("babi_single", "mary went to the kitchen.", "end the story with a question ending in '?', e.g. where is mary?"),
    ("babi_single", "mary went to the kitchen\nwhere is mary", "end the question 'where is mary' with '?'"),
    ("babi_single", "Where is Mary?", f"the story has no sentences before its question; e.g. {SINGLE_EXAMPLE}"),
    ("babi_single", "where is mary? mary went to the kitchen",
     "the question must come last, but 'mary went to the kitchen' follows it"),
    ("babi_single", "mary went to the kitchen, where is mary?",
     "a story uses letters, spaces, '.' and '?' only, not ','"),
    ("babi_single", "mary went to the kitchen\n" * 11 + "where is mary?",
     "the story has 11 sentences; babi_single holds at most 10 (one memory slot each)"),
    ("babi_single", "mary went to the kitchen. is mary in the kitchen?",
     "babi_single asks questions like 'where is mary?', not 'is mary in the kitchen?'"),
    ("babi_single", "mary went to the kitchen. where is the football?",
     "babi_single asks questions like 'where is mary?', not 'where is the football?'"),
    ("babi_single", "Bob went to the kitchen. Where is Mary?",
     "'bob' is not a name babi_single knows: its names are mary, john, sandra, daniel"),
    ("babi_single", "mary went to the kitchen. where is bill?",
     "'bill' is not a name babi_single knows: its names are mary, john, sandra, daniel"),
    ("babi_single", "mary went to the attic. where is mary?",
     "'attic' is not a place babi_single knows: its places are kitchen, garden, hallway, bathroom, bedroom, office"),
    ("babi_single", "mary ran to the kitchen. where is mary?",
     "'ran' is not a verb babi_single knows: its verbs are went, moved, travelled, journeyed"),
    ("babi_single", "mary went to the football. where is mary?",
     "'football' is not a word of babi_single: its stories have no objects"),
    ("babi_single", "mary went quickly to the kitchen. where is mary?",
     "'quickly' is not a word of babi_single; its sentences are like 'mary went to the kitchen'"),
    ("babi_single", "kitchen went to the mary. where is mary?",
     "sentence 1, 'kitchen went to the mary', is not one babi_single tells; it tells 'mary went to the kitchen'"),
    ("babi_single", "mary went to the kitchen. where is john?",
     "the story does not say where john is: john never goes anywhere"),
    ("babi_yes_no", "mary went to the kitchen. where is mary?",
     "babi_yes_no asks questions like 'is mary in the kitchen?', not 'where is mary?'"),
    ("babi_yes_no", "mary went to the kitchen. is mary in the attic?",
     "'attic' is not a place babi_yes_no knows: its places are kitchen, garden, hallway, bathroom, bedroom, office"),
    ("babi_yes_no", "mary went to the kitchen. is john in the kitchen?",
     "the story does not say where john is: john never goes anywhere"),
    ("babi_two", "john went to the kitchen. where is the ball?",
     "'ball' is not an object babi_two knows: its objects are football, apple, milk"),
    ("babi_two", "john went to the kitchen. john picked up the book. where is the football?",
     "'book' is not an object babi_two knows: its objects are football, apple, milk"),
    ("babi_two", "john went to the kitchen. john grabbed up the football. where is the football?",
     "sentence 2, 'john grabbed up the football', is not one babi_two tells; it tells 'mary went to the kitchen', "
     "'mary picked up the football', 'mary grabbed the football', 'mary took the football', "
     "'mary dropped the football'"),
    ("babi_two", "john went to the kitchen. john dropped the football. where is the football?",
     "sentence 2: john cannot drop the football: nobody has it"),
    ("babi_two", "john went to the kitchen. john took the milk. mary went to the garden. mary took the milk. "
                 "where is the milk?", "sentence 4: mary cannot pick up the milk: john has it"),
    ("babi_two", "john went to the kitchen. john took the milk. john took the milk. where is the milk?",
     "sentence 3: john already has the milk"),
    ("babi_two", "john went to the kitchen. where is the milk?",
     "the story does not say where the milk is: nobody picks it up"),
    ("babi_two", "john went to the kitchen. mary picked up the football. where is the football?",
     "the story does not say where the football is: mary has it but never goes anywhere"),
    ("babi_two", "john picked up the apple. john dropped the apple. john went to the garden. where is the apple?",
     "the story does not say where the apple is: john dropped it before going anywhere"),
]


@pytest.mark.parametrize("name, text, message", BAD)
def test_a_bad_story_is_one_line_naming_the_problem(name, text, message):
    with pytest.raises(ConfigError) as caught:
        get_task(name).typed(text)
    assert str(caught.value) == message


# ---- the command line, on the shipped checkpoints -------------------------------------------------
STORY = "Mary went to the kitchen.\nJohn moved to the garden.\n  mary   TRAVELLED to the hallway\nWhere is Mary?\n"


def _record(checkpoint: str, story: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ntmviz.cli", "record", "--checkpoint",
                           str(ROOT / "checkpoints" / f"{checkpoint}.safetensors"), "--input", "-", "--out", str(out)],
                          input=story, capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("checkpoint", ["babi_single-memn2n", "babi_single-dmn"])
def test_the_cli_records_a_typed_story_on_a_shipped_checkpoint(checkpoint, tmp_path):
    from ntmviz import Episode

    out = tmp_path / "story.safetensors"
    run = _record(checkpoint, STORY, out)
    assert run.returncode == 0, run.stderr
    episode = Episode.load(out)
    assert episode.meta["question"] == "where is mary ?" and episode.meta["answer"] == "hallway"
    assert episode.meta["supporting"] == [2] and episode.meta["pattern"] == STORY.strip()
    assert episode.meta["length"] == 3 and episode.meta["task_config"]["max_sentences"] == 3
    assert episode.slot_labels == ["mary went to the kitchen", "john moved to the garden",
                                   "mary travelled to the hallway"]
    # a trained model answers a three-sentence story laid out as its training stories were
    assert episode.meta["model_answer"] == "hallway"
    assert "(answer hallway, the model's hallway)" in run.stdout

    bad = _record(checkpoint, "mary went to the attic. where is mary?", tmp_path / "bad.safetensors")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["ntmviz: error: 'attic' is not a place babi_single knows: its places "
                                               "are kitchen, garden, hallway, bathroom, bedroom, office"]
    assert not (tmp_path / "bad.safetensors").exists()
