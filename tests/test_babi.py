"""Tests for the bAbI-style story tasks: seeding, the encoding, answers and supporting facts
checked against a plain re-reading of each story's text, bad settings, scoring."""

from __future__ import annotations

import pytest
import torch

from ntmviz.errors import ConfigError
from ntmviz.tasks import STORY_TASKS, TASKS, get_task, task_from_dict
from ntmviz.tasks.babi import MOVES, PLACES, SENTENCE_LENGTH, TAKES, DROPS

NAMES = ["babi_single", "babi_two", "babi_yes_no"]


def test_registry_keeps_story_tasks_apart_from_the_sequence_tasks():
    assert sorted(STORY_TASKS) == sorted(NAMES)
    assert not set(NAMES) & set(TASKS)
    for name in NAMES:
        task = get_task(name)
        assert task.name == name and task_from_dict(task.to_dict()) == task


@pytest.mark.parametrize("name", NAMES)
def test_seeded_and_shaped(name):
    task = get_task(name, min_sentences=2, max_sentences=9)
    a, b = task.sample(16, seed=3), task.sample(16, seed=3)
    c = task.sample(16, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.inputs, c.inputs)
    B, T, L = a.inputs.shape
    assert (B, L) == (16, SENTENCE_LENGTH) and T == int(a.lengths.max())
    assert a.targets.shape == (16, T, len(task.answer_words)) == (16, T, task.output_size)
    assert torch.equal(a.mask[:, 0], torch.ones(16)) and a.mask[:, 1:].sum() == 0
    assert torch.equal(a.targets[:, 0].sum(-1), torch.ones(16)) and a.targets[:, 1:].sum() == 0
    for i in range(16):
        n = int(a.lengths[i]) - 1
        assert 2 <= n <= 9
        assert (a.inputs[i, 1: n + 1] > 0).any(-1).all()  # every sentence has words
        assert a.inputs[i, n + 1:].sum() == 0  # padding after the story
        assert a.inputs[i].max() < task.vocab_size
    stories = task.stories(16, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(stories.batch, a))


def _where(sentences: list[str], person: str) -> str:
    """The place of `person`'s last move, by reading the text."""
    return [s.split()[-1] for s in sentences if s.split()[0] == person and s.split()[1] in MOVES][-1]


def test_single_fact_answers_and_supporting_facts():
    task = get_task("babi_single", people=3, places=4, min_sentences=1, max_sentences=12)
    stories = task.stories(300, seed=0)
    for i in range(300):
        sentences, question, answer = task.story_text(stories.batch, i)
        person = question.split()[2]
        assert question == f"where is {person} ?"
        assert answer == _where(sentences, person)
        last = max(j for j, s in enumerate(sentences) if s.startswith(person + " "))
        assert stories.supporting[i].tolist() == [last]
        assert task.supporting_facts(stories.batch.inputs[i]) == [last]
        assert int(stories.answers[i]) == int(stories.batch.targets[i, 0].argmax())


def test_yes_no_is_balanced_and_right():
    task = get_task("babi_yes_no", max_sentences=8)
    stories = task.stories(400, seed=1)
    yes = 0
    for i in range(400):
        sentences, question, answer = task.story_text(stories.batch, i)
        _, person, _, _, place, _ = question.split()
        assert answer == ("yes" if _where(sentences, person) == place else "no")
        yes += answer == "yes"
        assert task.supporting_facts(stories.batch.inputs[i]) == stories.supporting[i].tolist()
    assert 150 < yes < 250


def _object_place(sentences: list[str], obj: str) -> tuple[str, list[int]]:
    """Replay the world from the text: where the object is and the two facts that say so."""
    place, moved, holder, where = {}, {}, None, None
    facts = None
    for j, s in enumerate(sentences):
        w = s.split()
        if w[1] in MOVES:
            place[w[0]], moved[w[0]] = w[-1], j
            if holder == w[0]:
                facts = [taken, j]
        elif w[-1] == obj and w[1] in TAKES:
            holder, taken = w[0], j
            facts = [moved[w[0]], j]
        elif w[-1] == obj and w[1] in DROPS:
            where, facts, holder = place[w[0]], [moved[w[0]], j], None
    return (place[holder] if holder else where), sorted(facts)


def test_two_facts_answers_and_supporting_facts():
    task = get_task("babi_two", people=3, places=4, objects=3, min_sentences=2, max_sentences=14)
    stories = task.stories(400, seed=2)
    dropped = 0
    for i in range(400):
        sentences, question, answer = task.story_text(stories.batch, i)
        obj = question.split()[3]
        where, facts = _object_place(sentences, obj)
        assert answer == where
        assert stories.supporting[i].tolist() == facts
        assert task.supporting_facts(stories.batch.inputs[i]) == facts
        assert len(set(facts)) == 2
        last = max(j for j, s in enumerate(sentences) if s.endswith(" " + obj))
        dropped += sentences[last].split()[1] in DROPS
    assert dropped > 20  # drops happen: the answer is not always the carrier's place


def test_supporting_facts_are_none_when_the_words_do_not_determine_the_answer():
    """The text alone is replayed through the world: a question of another task's form, a
    sentence the task does not tell, or a person who never moved leave nothing to rest on."""
    task = get_task("babi_two", people=3, places=4, objects=3)
    ids = lambda question, *sentences: task.story_inputs(list(sentences), question)  # noqa: E731
    assert task.supporting_facts(ids("where is the apple ?", "mary went to the kitchen",
                                     "mary took the apple", "john went to the garden")) == [0, 1]
    assert task.supporting_facts(ids("where is the apple ?", "mary took the apple", "mary went to the kitchen",
                                     "mary dropped the apple", "mary went to the garden")) == [1, 2]
    assert task.supporting_facts(ids("where is mary ?", "mary went to the kitchen")) == []  # not babi_two's
    assert task.supporting_facts(ids("where is the apple ?", "mary took the apple")) == []  # mary is nowhere
    assert task.supporting_facts(ids("where is the apple ?", "mary went to the kitchen",
                                     "mary dropped the apple")) == []  # she never had it


@pytest.mark.parametrize("name, bad, words", [
    ("babi_single", dict(people=9), "9 people but only 8 names"),
    ("babi_single", dict(places=1), "places must be an integer >= 2"),
    ("babi_single", dict(places=20), "20 places"),
    ("babi_single", dict(min_sentences=5, max_sentences=4), "min_sentences 5 is larger"),
    ("babi_two", dict(min_sentences=1), "too short for 2 supporting facts"),
    ("babi_two", dict(objects=7), "7 objects"),
    ("babi_yes_no", dict(people=0), "people must be an integer >= 1"),
])
def test_impossible_settings_are_refused_in_one_line(name, bad, words):
    with pytest.raises(ConfigError) as err:
        get_task(name, **bad)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_scoring_is_answer_error_and_cross_entropy():
    task = get_task("babi_single", max_sentences=5)
    batch = task.sample(4, seed=0)
    logits = torch.zeros(batch.targets.shape)
    answers = batch.targets[:, 0].argmax(-1)
    logits[torch.arange(4), 0, answers] = 5.0
    logits[1, 0, answers[1]] = -5.0  # item 1 answers wrong
    logits[:, 1:] = 100.0  # unscored steps do not count
    assert task.bit_errors(logits, batch).tolist() == [0.0, 1.0, 0.0, 0.0]
    loss = task.sequence_loss(logits, batch)
    expected = -torch.log_softmax(logits[:, 0], -1)[torch.arange(4), answers]
    assert torch.allclose(loss, expected)
    assert task.error_unit == "answer error rate"
    assert task.check_fits(5) is None
    with pytest.raises(ConfigError, match="needs 5 memory slots"):
        task.check_fits(4)


def test_render_shows_the_story():
    task = get_task("babi_single", max_sentences=3)
    batch = task.sample(1, seed=0)
    sentences, question, answer = task.story_text(batch, 0)
    text = task.render(batch, 0)
    assert all(s in text for s in sentences) and f"{question} -> {answer}" in text
    assert answer in PLACES
