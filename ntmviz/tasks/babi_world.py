"""The world the story tasks tell (babi.py): its words, its sentences and its rules, shared by
the generator, which draws events and writes them, and typed stories, which are read back into
the same events and replayed through the same `World`, so a typed story's answer and
supporting facts follow the generator's rules exactly.

    move   "<name> went to the <place>"      (went, moved, travelled, journeyed)
    take   "<name> picked up the <object>"   (picked up, grabbed, took)
    drop   "<name> dropped the <object>"     (dropped, discarded)

    "where is <name> ?"             babi_single   the place of the person's last move
    "where is the <object> ?"       babi_two      where its carrier is, or where it was dropped
    "is <name> in the <place> ?"    babi_yes_no   yes when the person's last move went there

A person is where they last went. An object is with whoever last picked it up and has not
dropped it (so it moves with them), or where it was dropped. Sentence indices count from 0, as
the supporting facts do; messages number sentences from 1, as a person counts them.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import ConfigError

SENTENCE_LENGTH = 6  # words per sentence or question, padded with 0
PEOPLE = ("mary", "john", "sandra", "daniel", "bill", "fred", "julie", "jeff")
PLACES = ("kitchen", "garden", "hallway", "bathroom", "bedroom", "office", "cellar", "park")
OBJECTS = ("football", "apple", "milk", "box", "key", "book")
MOVES = ("went", "moved", "travelled", "journeyed")  # "<person> <move> to the <place>"
TAKES = ("picked", "grabbed", "took")  # "<person> picked up the <object>", "<person> took the <object>"
DROPS = ("dropped", "discarded")  # "<person> <drop> the <object>"
GLUE = ("to", "the", "up", "where", "is", "in", "?")
YES_NO = ("yes", "no")

# The words a sentence's slots take, by kind (a task's own are those in its vocabulary).
KINDS = {"name": PEOPLE, "place": PLACES, "object": OBJECTS, "verb": MOVES + TAKES + DROPS}

# The questions, one per task; {slot} is a word of that kind.
QUESTIONS = {"where_person": "where is {name} ?", "where_object": "where is the {object} ?",
             "is_in": "is {name} in the {place} ?"}


# ---- writing sentences ------------------------------------------------------------------------
def move_sentence(person: str, verb: str, place: str) -> str:
    return f"{person} {verb} to the {place}"


def take_sentence(person: str, verb: str, obj: str) -> str:
    return f"{person} {verb}{' up' if verb == 'picked' else ''} the {obj}"


def drop_sentence(person: str, verb: str, obj: str) -> str:
    return f"{person} {verb} the {obj}"


class Event(NamedTuple):
    """What one sentence does: a person moves to a place, or takes or drops an object."""

    action: str  # "move", "take" or "drop"
    person: int  # index into PEOPLE
    what: int  # index into PLACES (move) or OBJECTS (take, drop)


# action -> (its verbs, what it acts on, its writer)
ACTIONS = {"move": (MOVES, PLACES, move_sentence), "take": (TAKES, OBJECTS, take_sentence),
           "drop": (DROPS, OBJECTS, drop_sentence)}


# ---- the rules ----------------------------------------------------------------------------------
class World:
    """People moving and carrying objects, one sentence at a time. The generator only writes
    events the rules allow; for a typed story, `take` and `drop` refuse the rest (ConfigError)."""

    def __init__(self) -> None:
        self.place: dict[int, int] = {}  # person -> place
        self.last_move: dict[int, int] = {}  # person -> sentence of their last move
        self.holder: dict[int, int] = {}  # object -> person carrying it
        self.taken: dict[int, int] = {}  # object -> sentence of its last pick-up
        # object -> (who dropped it, the sentence, their place and last move then: None if nowhere yet)
        self.dropped: dict[int, tuple[int, int, int | None, int | None]] = {}

    def apply(self, event: Event, i: int) -> None:
        """Sentence i's event."""
        {"move": self.move, "take": self.take, "drop": self.drop}[event.action](event.person, event.what, i)

    def move(self, person: int, place: int, i: int) -> None:
        self.place[person], self.last_move[person] = place, i

    def take(self, person: int, obj: int, i: int) -> None:
        if obj in self.holder:
            who = self.holder[obj]
            if who == person:
                raise ConfigError(f"sentence {i + 1}: {PEOPLE[person]} already has the {OBJECTS[obj]}")
            raise ConfigError(f"sentence {i + 1}: {PEOPLE[person]} cannot pick up the {OBJECTS[obj]}: "
                              f"{PEOPLE[who]} has it")
        self.holder[obj], self.taken[obj] = person, i
        self.dropped.pop(obj, None)

    def drop(self, person: int, obj: int, i: int) -> None:
        if self.holder.get(obj) != person:
            who = self.holder.get(obj)
            has = "nobody has it" if who is None else f"{PEOPLE[who]} has it"
            raise ConfigError(f"sentence {i + 1}: {PEOPLE[person]} cannot drop the {OBJECTS[obj]}: {has}")
        del self.holder[obj]
        self.dropped[obj] = (person, i, self.place.get(person), self.last_move.get(person))

    def where_is_person(self, person: int) -> tuple[int, list[int]]:
        """(the person's place, [the sentence of their last move]); ConfigError if they never moved."""
        if person not in self.place:
            name = PEOPLE[person]
            raise ConfigError(f"the story does not say where {name} is: {name} never goes anywhere")
        return self.place[person], [self.last_move[person]]

    def where_is_object(self, obj: int) -> tuple[int, list[int]]:
        """(the object's place, its two supporting facts in order): while carried, its last
        pick-up and its carrier's last move; once dropped, the drop and the dropper's last move
        before it. ConfigError when the story does not place it."""
        name = OBJECTS[obj]
        if obj in self.holder:
            person = self.holder[obj]
            if person not in self.place:
                raise ConfigError(f"the story does not say where the {name} is: {PEOPLE[person]} has it "
                                  f"but never goes anywhere")
            return self.place[person], sorted([self.taken[obj], self.last_move[person]])
        if obj in self.dropped:
            person, i, place, move = self.dropped[obj]
            if place is None:
                raise ConfigError(f"the story does not say where the {name} is: {PEOPLE[person]} dropped it "
                                  f"before going anywhere")
            return place, sorted([move, i])
        raise ConfigError(f"the story does not say where the {name} is: nobody picks it up")


# ---- reading typed text -------------------------------------------------------------------------
def split_story(text: str) -> tuple[list[list[str]], list[str] | None]:
    """What a person typed -> (its sentences as lists of words, its question's words with "?"
    last, or None). A sentence ends at a line's end or a "."; the question at "?" and it must
    come last. Case and spacing do not matter. ConfigError for other characters."""
    lowered = text.lower()
    bad = sorted({c for c in lowered if not (c.isspace() or c in ".?" or "a" <= c <= "z")})
    if bad:
        raise ConfigError(f"a story uses letters, spaces, '.' and '?' only, not {' '.join(repr(c) for c in bad)}")
    pieces = re.split(r"([.?\n])", lowered)  # text, end, text, end, ..., text
    sentences: list[list[str]] = []
    question = None
    for piece, end in zip(pieces[::2], pieces[1::2] + [""]):
        words = piece.split()
        if not words:
            continue
        if question is not None:
            raise ConfigError(f"the question must come last, but '{' '.join(words)}' follows it")
        if end == "?":
            question = words + ["?"]
        else:
            sentences.append(words)
    return sentences, question


def _reader(template: str) -> re.Pattern:
    """'where is {name} ?' -> a pattern matching such a question, each slot a named group."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>\\S+)", re.escape(template)) + "$")


_QUESTION_READERS = {form: _reader(template) for form, template in QUESTIONS.items()}


def read_question(words: list[str]) -> tuple[str, dict[str, str]] | None:
    """A question's words -> (its form, a key of QUESTIONS; {slot: word}), or None if it has
    none of the forms (whatever its slot words are)."""
    text = " ".join(words)
    for form, reader in _QUESTION_READERS.items():
        match = reader.match(text)
        if match:
            return form, match.groupdict()
    return None


def read_sentence(words: list[str], known: dict[str, tuple[str, ...]]) -> Event | None:
    """A sentence's words -> its Event, or None unless the generator would write exactly these
    words with the `known` words of each kind (KINDS)."""
    if len(words) < 3:
        return None
    person, verb, what = words[0], words[1], words[-1]  # every sentence: <name> <verb> ... <what>
    if person not in known["name"] or verb not in known["verb"]:
        return None
    for action, (verbs, things, write) in ACTIONS.items():
        kind = "place" if things is PLACES else "object"
        if verb in verbs and what in known[kind] and write(person, verb, what) == " ".join(words):
            return Event(action, PEOPLE.index(person), things.index(what))
    return None


def kind_of(word: str, words: list[str]) -> str | None:
    """The kind (KINDS) a word is, or stands in for by its place in `words` (a sentence, or a
    question ending in "?"): for naming what a task knows instead of an unknown word."""
    for kind, members in KINDS.items():
        if word in members:
            return kind
    if words[-1] == "?":
        asked = read_question(words)
        return next((slot for slot, w in asked[1].items() if w == word), None) if asked else None
    i = words.index(word)
    if i == 0:
        return "name"
    if i == 1:
        return "verb"
    if words[i - 1] == "the":
        return "place" if i >= 2 and words[i - 2] == "to" else "object"
    return None
