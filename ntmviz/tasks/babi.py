"""bAbI-style story tasks (after Weston et al. 2015), generated from a seed: the bAbI data
cannot be downloaded here, so a small world simulation writes the stories.

    babi_single    single supporting fact   Mary went to the kitchen. ... Where is Mary? -> kitchen
    babi_two       two supporting facts     John picked up the football. John went to the garden.
                                            Where is the football? -> garden
    babi_yes_no    yes/no questions         Mary went to the kitchen. ... Is Mary in the garden? -> no

An example story of babi_two (sentence index: text), with its question, answer and supporting facts:

    0: sandra moved to the hallway
    1: john went to the kitchen
    2: john picked up the football
    3: sandra went to the garden
    4: john travelled to the office
    where is the football ?                      -> office      supporting facts [2, 4]

Every sentence is a fixed-length list of `SENTENCE_LENGTH` word ids, 0 padding the end. Word
ids: 0 is padding, 1..O are the task's answer words (so the answer index a is word a + 1), then
every other word. A story of n sentences is one Batch item of T = n + 1 steps:

    step t        inputs [I = SENTENCE_LENGTH]           targets [O]                 mask
    0             the question's word ids (as floats)    one-hot answer              1
    1 .. n        sentence t - 1's word ids              0                           0

Steps after n are zero (padding, as in every task). Models read the word ids with
`round(inputs)`; the loss is cross-entropy over the O answer words at step 0, and a
sequence's error (`bit_errors`, reported as the answer error) is 1 when the argmax answer is
wrong: its mean is the answer error rate. `stories()` gives the supporting facts of each
sample as the generator made them; `supporting_facts()` finds them again from the text alone
(the mechanism metric uses that, so it needs nothing beyond the story).

A person can type a story (`typed`): one sentence per line or each ended by ".", then the
question ending in "?", e.g. "mary went to the kitchen. john moved to the garden. where is mary?".
The sentences are replayed through the generator's world (babi_world.py) and the question answered
by the same `_answer` the generator uses, so the typed story's batch is laid out exactly as a
drawn one of the same words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from .babi_world import (DROPS, GLUE, KINDS, MOVES, OBJECTS, PEOPLE, PLACES, QUESTIONS, SENTENCE_LENGTH, TAKES,
                         YES_NO, World, drop_sentence, kind_of, move_sentence, read_question, read_sentence,
                         split_story, take_sentence)
from .base import Batch, Task, batch_of, check_int, check_range, numpy_rng, make_generator, span
from .mechanism import Mechanism, Reading, Trace

__all__ = ["SENTENCE_LENGTH", "PEOPLE", "PLACES", "OBJECTS", "MOVES", "TAKES", "DROPS", "GLUE", "YES_NO",
           "Stories", "Story", "SingleFact", "YesNo", "TwoFacts", "STORY_TASKS"]


class Stories(NamedTuple):
    """A batch of stories with what the generator knows about each."""

    batch: Batch
    answers: np.ndarray  # [B] int64, index into the answer words
    supporting: np.ndarray  # [B, F] int64 sentence indices of the supporting facts, -1 padding


@dataclass(frozen=True)
class Story(Task):
    """What the three story tasks share: the vocabulary, the encoding, the scoring and the
    supporting-fact mechanism. Subclasses write the stories (`_story`) and answer their
    question from the world the story leaves (`_answer`)."""

    people: int = 4
    places: int = 6
    min_sentences: int = 2
    max_sentences: int = 10

    difficulty_name = "sentences"
    size_field = "max_sentences"
    solved_below = 0.05  # answer error rate
    error_unit = "answer error rate"
    measure = "answer_errors"
    one_hot_outputs = True  # scored as one class of O per step (base.py)
    facts: ClassVar[int] = 1  # supporting facts per question
    min_story: ClassVar[int] = 1  # the fewest sentences that can hold the facts

    def __post_init__(self) -> None:
        check_int("people", self.people)
        check_int("places", self.places, minimum=2)
        if self.people > len(PEOPLE):
            raise ConfigError(f"{self.name}: {self.people} people but only {len(PEOPLE)} names")
        if self.places > len(PLACES):
            raise ConfigError(f"{self.name}: {self.places} places but only {len(PLACES)} place names")
        check_range(self.name, "min_sentences", self.min_sentences, "max_sentences", self.max_sentences)
        if self.min_sentences < self.min_story:
            raise ConfigError(f"{self.name}: stories of {self.min_sentences} sentence(s) are too short for "
                              f"{self.facts} supporting facts (min_sentences >= {self.min_story})")

    # ---- vocabulary ---------------------------------------------------------------------
    @property
    def answer_words(self) -> tuple[str, ...]:
        """The O answer words, ids 1..O."""
        return PLACES[: self.places]

    @property
    def other_words(self) -> tuple[str, ...]:
        return PEOPLE[: self.people] + MOVES + GLUE

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """Every word by id; id 0 is padding ("")."""
        return ("",) + self.answer_words + tuple(w for w in self.other_words if w not in self.answer_words)

    @property
    def vocab_size(self) -> int:
        """V, padding included."""
        return len(self.vocabulary)

    def ids(self, text: str) -> list[int]:
        """'mary went to the kitchen' -> word ids, padded to SENTENCE_LENGTH."""
        index = {w: i for i, w in enumerate(self.vocabulary)}
        words = text.split()
        if len(words) > SENTENCE_LENGTH:
            raise ConfigError(f"{text!r} has more than {SENTENCE_LENGTH} words")
        return [index[w] for w in words] + [0] * (SENTENCE_LENGTH - len(words))

    def text(self, ids) -> str:
        """Word ids (floats or ints, 0 padding) -> the sentence."""
        vocab = self.vocabulary
        return " ".join(vocab[int(round(float(i)))] for i in ids if int(round(float(i))) != 0)

    @property
    def input_labels(self) -> tuple[str, ...]:
        return tuple(f"word {i}" for i in range(SENTENCE_LENGTH))

    @property
    def output_labels(self) -> tuple[str, ...]:
        return self.answer_words

    def required_slots(self) -> int:
        """One memory per sentence."""
        return self.max_sentences

    def _size_phrase(self) -> str:
        return f"{self.name} with stories of {self.max_sentences} sentences"

    def at(self, difficulty: int) -> "Story":
        """Every story exactly `difficulty` sentences long."""
        return dataclasses.replace(self, min_sentences=difficulty, max_sentences=difficulty)

    def eval_variants(self) -> list[tuple[str, "Task"]]:
        """The longest stories of the training range (a memory network has one slot per
        sentence, so longer stories do not fit the model)."""
        return [(str(self.max_sentences), self.at(self.max_sentences))]

    # ---- sampling ---------------------------------------------------------------------------
    def _story(self, n: int, rng: np.random.Generator) -> tuple[list[str], str, int, list[int]] | None:
        """(n sentences, question, answer index, supporting sentence indices), or None to draw again."""
        raise NotImplementedError

    def _draw(self, n: int, rng: np.random.Generator) -> tuple[list[str], str, int, list[int]]:
        """One story of n sentences with an answerable question (`_story`'s tuple)."""
        for _ in range(1000):
            story = self._story(n, rng)
            if story is not None:
                return story
        # cannot happen for valid settings: every story length can hold the facts
        raise ConfigError(f"{self.describe()}: could not write a story with an answerable question")

    def _lay_out(self, stories: list[tuple[list[str], str, int, list[int]]]) -> tuple[np.ndarray, ...]:
        """(sentences, question, answer index, supporting facts) per story -> (inputs [B, T, I],
        targets [B, T, O], mask [B, T], lengths [B], answers [B], supporting [B, F]) as in the
        module docstring; T = the most sentences + 1."""
        B, L = len(stories), SENTENCE_LENGTH
        lengths = np.asarray([len(sentences) + 1 for sentences, *_ in stories], np.int64)
        T = int(lengths.max())
        inputs = np.zeros((B, T, L), np.float32)
        targets = np.zeros((B, T, len(self.answer_words)), np.float32)
        mask = np.zeros((B, T), np.float32)
        answers = np.zeros(B, np.int64)
        supporting = np.full((B, self.facts), -1, np.int64)
        for b, (sentences, question, answer, support) in enumerate(stories):
            inputs[b, 0] = self.ids(question)
            for i, s in enumerate(sentences):
                inputs[b, i + 1] = self.ids(s)
            targets[b, 0, answer] = 1
            mask[b, 0] = 1
            answers[b] = answer
            supporting[b, : len(support)] = support
        return inputs, targets, mask, lengths, answers, supporting

    def _stories(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        n = rng.integers(self.min_sentences, self.max_sentences + 1, size=batch_size)
        return self._lay_out([self._draw(int(k), rng) for k in n])

    def _sample(self, batch_size: int, rng: np.random.Generator):
        return self._stories(batch_size, rng)[:4]

    def stories(self, batch_size: int, *, seed: int | None = None, generator: torch.Generator | None = None,
                device=None) -> Stories:
        """The batch `sample` gives for the same seed, with its answers and supporting facts."""
        check_int("batch_size", batch_size)
        rng = numpy_rng(make_generator(seed, generator))
        inputs, targets, mask, lengths, answers, supporting = self._stories(batch_size, rng)
        batch = Batch(*(torch.from_numpy(x) for x in (inputs, targets, mask, lengths.astype(np.int64))))
        return Stories(batch.to(device) if device is not None else batch, answers, supporting)

    # ---- a typed story -------------------------------------------------------------------------
    # A person types sentences and a question; the world (babi_world.py) replays the sentences
    # and answers the question by the generator's own rules (`_answer`), and the story is laid
    # out as the sampler lays out a drawn one.
    typed_input = True
    question_form: ClassVar[str] = ""  # the key in babi_world.QUESTIONS of the question this task asks

    def _answer(self, asked: dict[str, str], world: World) -> tuple[int, list[int]]:
        """The question's slot words and the world after the story -> (answer index, supporting
        facts); ConfigError when the story does not determine the answer."""
        raise NotImplementedError

    def _example(self) -> tuple[list[str], dict[str, str]]:
        """A short story this task tells: (sentences, the question's slot words)."""
        raise NotImplementedError

    @staticmethod
    def _pick(words: tuple[str, ...], count: int) -> tuple[str, str]:
        """The first two of a task's `count` words (the first twice when it has one)."""
        return words[0], words[min(1, count - 1)]

    def _question(self, asked: dict[str, str]) -> str:
        """The question with these slot words, as the stories write it ("where is mary ?")."""
        return QUESTIONS[self.question_form].format(**asked)

    def typed_example(self) -> str:
        """The example story as a person types it."""
        sentences, asked = self._example()
        return ". ".join(sentences) + ". " + _as_typed(self._question(asked))

    @property
    def typed_hint(self) -> str:
        return ("Type a story, one sentence per line (or each ended by '.'), then a question ending in '?', "
                f"e.g. {self.typed_example()}")

    def known_words(self) -> dict[str, tuple[str, ...]]:
        """The words of each kind (babi_world.KINDS: name, place, object, verb) this task knows."""
        vocabulary = set(self.vocabulary)
        return {kind: tuple(w for w in words if w in vocabulary) for kind, words in KINDS.items()}

    def _unknown(self, word: str, words: list[str]) -> str:
        """The message for a word outside the vocabulary, naming the known words of its kind."""
        kind, known = kind_of(word, words), self.known_words()
        if kind is None:
            example = self._example()[0][0]
            return f"'{word}' is not a word of {self.name}; its sentences are like '{example}'"
        if not known[kind]:
            return f"'{word}' is not a word of {self.name}: its stories have no {kind}s"
        article = "an" if kind[0] in "aeiou" else "a"
        return f"'{word}' is not {article} {kind} {self.name} knows: its {kind}s are {', '.join(known[kind])}"

    def typed(self, text: str, seed: int = 0) -> tuple["Story", Batch]:
        """A typed story -> (the task at its number of sentences, its batch of one). Nothing is
        sampled: the answer follows from the story (`typed_stories`)."""
        fixed, stories = self.typed_stories(text)
        return fixed, stories.batch

    def typed_stories(self, text: str) -> tuple["Story", Stories]:
        """A typed story -> (the task at its number of sentences, the story as `stories` gives a
        drawn one: its batch of one, its answer and supporting facts). One-line ConfigError for
        a story this task cannot take or whose question it does not answer."""
        example, example_question = self.typed_example(), _as_typed(self._question(self._example()[1]))
        sentences, question = split_story(text)
        if not sentences and question is None:
            raise ConfigError(f"type a story: one sentence per line, then a question, e.g. {example}")
        if question is None:
            last = " ".join(sentences[-1])
            if read_question(sentences[-1] + ["?"]) is not None:
                raise ConfigError(f"end the question '{last}' with '?'")
            raise ConfigError(f"end the story with a question ending in '?', e.g. {example_question}")
        if not sentences:
            raise ConfigError(f"the story has no sentences before its question; e.g. {example}")
        n = len(sentences)
        if n > self.max_sentences:
            raise ConfigError(f"the story has {n} sentences; {self.name} holds at most {self.max_sentences} "
                              f"(one memory slot each)")
        asked = read_question(question)
        if asked is None or asked[0] != self.question_form:
            raise ConfigError(f"{self.name} asks questions like '{example_question}', not "
                              f"'{_as_typed(' '.join(question))}'")
        vocabulary = set(self.vocabulary)
        for words in sentences + [question]:
            for word in words:
                if word not in vocabulary:
                    raise ConfigError(self._unknown(word, words))
        answer, support = self._answer(asked[1], self._world(sentences))
        story = ([" ".join(words) for words in sentences], " ".join(question), answer, support)
        inputs, targets, mask, lengths, answers, supporting = self._lay_out([story])
        return self.at(n), Stories(batch_of(inputs, targets, mask, lengths), answers, supporting)

    def _forms(self) -> str:
        """Each kind of sentence this task tells, by example: "'mary went to the kitchen', ..."."""
        known = self.known_words()
        name, place = known["name"][0], known["place"][0]
        forms = [move_sentence(name, MOVES[0], place)]
        if known["object"]:
            obj = known["object"][0]
            forms += [take_sentence(name, verb, obj) for verb in TAKES] + [drop_sentence(name, DROPS[0], obj)]
        return ", ".join(f"'{f}'" for f in forms)

    def _world(self, sentences: list[list[str]]) -> World:
        """The world after these sentences (each a list of words); ConfigError naming the first
        sentence this task does not tell, or an event the rules refuse."""
        world, known = World(), self.known_words()
        for i, words in enumerate(sentences):
            event = read_sentence(words, known)
            if event is None:
                raise ConfigError(f"sentence {i + 1}, '{' '.join(words)}', is not one {self.name} tells; "
                                  f"it tells {self._forms()}")
            world.apply(event, i)
        return world

    # ---- supporting facts from the text --------------------------------------------------------
    def supporting_facts(self, inputs: np.ndarray) -> list[int]:
        """One story's inputs [T, I] (question first, then sentences) -> the indices of the
        sentences the answer rests on, found from the words alone: the story replayed through
        the generator's world and its question answered by the generator's `_answer`. [] when
        the words do not determine the answer (a question this task does not ask, a sentence it
        does not tell, an answer the story does not give)."""
        return self._support(*self._words(inputs))

    def fact_chain(self, inputs: np.ndarray) -> list[int]:
        """The supporting facts (`supporting_facts`) in the order a reader follows them from the
        question to the answer: first the fact naming what the question asks about (babi_two: the
        object's pick-up or drop), then the next (its carrier's move)."""
        asked, sentences = self._words(inputs)
        subject = set(asked[1].values()) if asked else set()
        return sorted(self._support(asked, sentences), key=lambda i: not subject & set(sentences[i]))

    def _words(self, inputs: np.ndarray) -> tuple[tuple[str, dict[str, str]] | None, list[list[str]]]:
        """One story's inputs [T, I] -> (its question read (read_question), its sentences' words)."""
        words = [self.text(row).split() for row in np.asarray(inputs)]
        return read_question(words[0]), [w for w in words[1:] if w]

    def _support(self, asked, sentences: list[list[str]]) -> list[int]:
        """`supporting_facts` of a story already read (`_words`)."""
        if asked is None or asked[0] != self.question_form:
            return []
        try:
            return [int(i) for i in self._answer(asked[1], self._world(sentences))[1]]
        except ConfigError:
            return []

    def fact_targets(self, batch: Batch, passes: int) -> Tensor:
        """[B, passes] int64: the fact pass e should attend to, the e-th of each story's
        `fact_chain` (-1: a pass beyond the chain, left to the answer's loss)."""
        out = torch.full((len(batch.inputs), passes), -1, dtype=torch.int64)
        inputs = batch.inputs.detach().cpu().numpy()
        for b, n in enumerate(batch.lengths.tolist()):
            chain = self.fact_chain(inputs[b, :n])[:passes]
            out[b, : len(chain)] = torch.tensor(chain, dtype=torch.int64)
        return out.to(batch.inputs.device)

    def fact_loss(self, scores: Tensor, batch: Batch) -> Tensor:
        """The gates' cross-entropy against the facts (Kumar et al.'s supervision of the episodic
        memory's attention): scores [B, E, S] each pass's raw gate scores (-inf on padding) -> [B]
        nats per story, summed over the passes with a target (`fact_targets`)."""
        targets = self.fact_targets(batch, scores.shape[1])  # [B, E]
        log_gates = torch.log_softmax(scores, -1)
        picked = log_gates.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # [B, E]
        return -(picked * (targets >= 0).to(picked.dtype)).sum(-1)

    def story_inputs(self, sentences: list[str], question: str) -> np.ndarray:
        """The inverse of `story_text` for the inputs: one story as [n + 1, I] word ids (the
        question, then the n sentences), e.g. from a recorded episode's slot labels and question.
        ConfigError for a word the vocabulary lacks."""
        try:
            return np.asarray([self.ids(question)] + [self.ids(s) for s in sentences], np.float32)
        except KeyError as exc:
            raise ConfigError(f"{self.name}: the word {exc.args[0]!r} is not in this task's vocabulary") from None

    def story_text(self, batch: Batch, index: int = 0) -> tuple[list[str], str, str]:
        """(sentences, question, answer) of item `index` as text."""
        x = batch.inputs[index].detach().cpu().numpy()
        n = int(batch.lengths[index]) - 1
        answer = self.answer_words[int(batch.targets[index, 0].argmax())]
        return [self.text(x[i + 1]) for i in range(n)], self.text(x[0]), answer

    def episode_extras(self, batch: Batch, outputs: list[np.ndarray]) -> list[dict]:
        """Each story's sentences name its slots; its question, answer, the model's answer (the
        most likely word after the last hop) and the supporting facts go into its metadata."""
        extras = []
        for index, out in enumerate(outputs):
            sentences, question, answer = self.story_text(batch, index)
            n = len(sentences)
            extras.append({"slot_labels": sentences, "meta": {
                "question": question, "answer": answer, "model_answer": self.answer_words[int(np.argmax(out[-1]))],
                "supporting": self.supporting_facts(batch.inputs[index, : n + 1].cpu().numpy())}})
        return extras


    def render(self, batch: Batch, index: int = 0, outputs: Tensor | None = None) -> str:
        sentences, question, answer = self.story_text(batch, index)
        lines = [self.describe()] + [f"{i}: {s}" for i, s in enumerate(sentences)] + [f"{question} -> {answer}"]
        if outputs is not None:
            out = outputs[index] if outputs.dim() == 3 else outputs
            lines.append(f"model: {self.answer_words[int(out[0].argmax())]}")
        return "\n".join(lines)

    # ---- what the hops did ---------------------------------------------------------------------
    # A memory network answers by attending to the sentences the answer rests on.
    mechanisms = (
        Mechanism(
            "support", "hops attend to a supporting fact",
            "The hop attentions (one weighting over the story's sentences per hop) are averaged; the "
            "story passes when the sentence with the most attention is a supporting fact (found from the "
            "story's text). A model that answers from the right sentence: every story.", "rate", 0.9,
            "the top memory of the hops is not a supporting fact on {miss:.1%} of stories",
            families=("memn2n",)),
        # A dynamic memory network's passes (models/dmn.py): each pass's gates over the facts.
        Mechanism(
            "pass_support", "a pass's gates peak on a supporting fact",
            "Each pass's gates (one weighting over the story's sentences per pass) are read alone; the story "
            "passes when the sentence with the largest gate of at least one pass is a supporting fact (found "
            "from the story's text). A model that answers from the right sentences: every story.", "rate", 0.9,
            "no pass's gates peak on a supporting fact on {miss:.1%} of stories",
            families=("dmn",)),
        Mechanism(
            "every_fact", "every supporting fact is some pass's peak",
            "As above, but the story passes only when each of its supporting facts is the largest gate of at "
            "least one pass: with two supporting facts (babi_two) the passes must find both, one after the "
            "other, as the paper's Figure 3 shows. With one supporting fact it is the line above.", "rate", 0.9,
            "some supporting fact is no pass's peak on {miss:.1%} of stories",
            families=("dmn",)),
    )

    def measure_mechanisms(self, trace: Trace, lag: int | None = None) -> dict[str, Reading]:
        """trace.inputs [T, I] the story (question first); trace.read [hops, 1, N] the hop
        attentions over its N = T - 1 sentences."""
        support = self.supporting_facts(trace.inputs)
        if not support:
            none = Reading(float("nan"), "no supporting fact in this story")
            return {"support": none, "pass_support": none, "every_fact": none}
        attention = trace.read.mean((0, 1))  # [N]
        top = int(attention.argmax())
        tops = [int(a.argmax()) for a in trace.read[:, 0]]
        note = (f"supporting facts {support}; top memory per hop {tops}; the mean's top is sentence {top} "
                f"({attention[top]:.0%} of the attention)")
        return {"support": Reading(1.0 if top in support else 0.0, note), **_pass_peaks(trace.read, support)}


def _pass_peaks(read: np.ndarray, support: list[int]) -> dict[str, Reading]:
    """read [E, 1, N] each pass's gates -> the two pass readings (Story.mechanisms): whether some
    pass peaks on a supporting fact, and whether every supporting fact is some pass's peak."""
    peaks = [int(g.argmax()) for g in read[:, 0]]
    note = f"supporting facts {support}; the gates' peak per pass {peaks}"
    return {"pass_support": Reading(1.0 if set(peaks) & set(support) else 0.0, note),
            "every_fact": Reading(1.0 if set(support) <= set(peaks) else 0.0, note)}


def _as_typed(question: str) -> str:
    """'where is mary ?' -> 'where is mary?', as a person writes it."""
    return question.replace(" ?", "?")


def _move(rng, person: str, place: str) -> str:
    return move_sentence(person, MOVES[rng.integers(len(MOVES))], place)


@dataclass(frozen=True)
class SingleFact(Story):
    """bAbI task 1: people move between places; where is one of them? The supporting fact is
    that person's last move."""

    name = "babi_single"
    question_form = "where_person"

    def describe(self) -> str:
        return (f"single supporting fact: stories of {span(self.min_sentences, self.max_sentences)} sentences, "
                f"{self.people} people, {self.places} places; where is a person?")

    def _walk(self, n: int, rng) -> tuple[list[str], World]:
        """n moves, each to somewhere else than the person was; the world after them."""
        world = World()
        sentences = []
        for i in range(n):
            p = int(rng.integers(self.people))
            here = world.place.get(p, -1)
            place = int(rng.choice([x for x in range(self.places) if x != here]))
            world.move(p, place, i)
            sentences.append(_move(rng, PEOPLE[p], PLACES[place]))
        return sentences, world

    def _story(self, n, rng):
        sentences, world = self._walk(n, rng)
        asked = {"name": PEOPLE[int(rng.choice(sorted(world.place)))]}
        return (sentences, self._question(asked), *self._answer(asked, world))

    def _answer(self, asked, world):
        return world.where_is_person(PEOPLE.index(asked["name"]))

    def _example(self):
        (a, b), (x, y) = self._pick(PEOPLE, self.people), self._pick(PLACES, self.places)
        return [move_sentence(a, "went", x), move_sentence(b, "moved", y), move_sentence(a, "travelled", y)], \
            {"name": a}


@dataclass(frozen=True)
class YesNo(SingleFact):
    """bAbI task 6: is a person in a place? Half the answers are yes. The supporting fact is
    that person's last move."""

    name = "babi_yes_no"
    question_form = "is_in"

    @property
    def answer_words(self) -> tuple[str, ...]:
        return YES_NO

    @property
    def other_words(self) -> tuple[str, ...]:
        return PEOPLE[: self.people] + PLACES[: self.places] + MOVES + GLUE

    def describe(self) -> str:
        return (f"yes/no questions: stories of {span(self.min_sentences, self.max_sentences)} sentences, "
                f"{self.people} people, {self.places} places; is a person in a place?")

    def _story(self, n, rng):
        sentences, world = self._walk(n, rng)
        p = int(rng.choice(sorted(world.place)))
        place = world.place[p]
        yes = bool(rng.integers(2))
        there = place if yes else int(rng.choice([x for x in range(self.places) if x != place]))
        asked = {"name": PEOPLE[p], "place": PLACES[there]}
        return (sentences, self._question(asked), *self._answer(asked, world))

    def _answer(self, asked, world):
        place, support = world.where_is_person(PEOPLE.index(asked["name"]))
        return YES_NO.index("yes" if PLACES[place] == asked["place"] else "no"), support

    def _example(self):
        (a, b), (x, y) = self._pick(PEOPLE, self.people), self._pick(PLACES, self.places)
        return [move_sentence(a, "went", x), move_sentence(b, "moved", y)], {"name": a, "place": x}


@dataclass(frozen=True)
class TwoFacts(Story):
    """bAbI task 2: people move, pick up and drop objects; where is an object? The supporting
    facts: the object's last pick-up (or drop) and its carrier's last move before that drop,
    or, while it is carried, the carrier's last move. Only a person somewhere can pick up."""

    objects: int = 3
    min_sentences: int = 3
    max_sentences: int = 12

    name = "babi_two"
    question_form = "where_object"
    facts = 2
    min_story = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("objects", self.objects)
        if self.objects > len(OBJECTS):
            raise ConfigError(f"{self.name}: {self.objects} objects but only {len(OBJECTS)} object names")

    @property
    def other_words(self) -> tuple[str, ...]:
        return PEOPLE[: self.people] + OBJECTS[: self.objects] + MOVES + TAKES + DROPS + GLUE

    def describe(self) -> str:
        return (f"two supporting facts: stories of {span(self.min_sentences, self.max_sentences)} sentences, "
                f"{self.people} people, {self.places} places, {self.objects} objects; where is an object?")

    def _story(self, n, rng):
        world = World()
        sentences = []
        # Force one pick-up in the story: its sentence index, and a move before it.
        for i in range(n):
            if i == n - 1 and not world.taken:
                choices = ["take"]
            else:
                choices = ["move", "move"]
                if world.place and len(world.holder) < self.objects:
                    choices.append("take")
                if world.holder:
                    choices.append("drop")
            if i == 0 or not world.place:
                action = "move"
            else:
                action = choices[int(rng.integers(len(choices)))]
            if action == "move":  # only a person somewhere can pick up
                p = int(rng.integers(self.people))
                x = int(rng.choice([y for y in range(self.places) if y != world.place.get(p, -1)]))
                world.move(p, x, i)
                sentences.append(_move(rng, PEOPLE[p], PLACES[x]))
            elif action == "take":
                p = int(rng.choice(sorted(world.place)))
                o = int(rng.choice([y for y in range(self.objects) if y not in world.holder]))
                world.take(p, o, i)
                sentences.append(take_sentence(PEOPLE[p], TAKES[rng.integers(len(TAKES))], OBJECTS[o]))
            else:
                o = int(rng.choice(sorted(world.holder)))
                p = world.holder[o]
                world.drop(p, o, i)
                sentences.append(drop_sentence(PEOPLE[p], DROPS[rng.integers(len(DROPS))], OBJECTS[o]))
        askable = sorted(set(world.holder) | set(world.dropped))
        if not askable:
            return None
        asked = {"object": OBJECTS[int(rng.choice(askable))]}
        return (sentences, self._question(asked), *self._answer(asked, world))

    def _answer(self, asked, world):
        return world.where_is_object(OBJECTS.index(asked["object"]))

    def _example(self):
        a = self._pick(PEOPLE, self.people)[0]
        (x, y), o = self._pick(PLACES, self.places), OBJECTS[0]
        return ([move_sentence(a, "went", x), take_sentence(a, "picked", o), move_sentence(a, "travelled", y)],
                {"object": o})


STORY_TASKS = (SingleFact, TwoFacts, YesNo)
