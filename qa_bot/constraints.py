"""The question's own constraints, and whether a shown sentence's evidence meets them: every number the question
names (a year, a quarter, a version) must occur in the sentence, the one before it, the document's title and
section heading (under no heading, near the top: the story's lead sentence) or its metadata (the page's date),
and every name it uses anywhere in the sentence's section (a story without headings is one section: "Mr Strachan
... the helicopter") or the document's metadata (its publisher, site, author: a page does not repeat who
published it), a place also as its adjective ("Ecuadorian"), a name written out also as its abbreviation
("NBA"); "2022" is not "2021", release 5 is not release 4. And the sentence must hold something of the kind the
question asks for. Pure functions of the question, the shown Sentence (its section and lead: found once per
document, structure.Structure) and its document's text; ground.py applies them.
"""
from __future__ import annotations

import re

from . import cite
from .cite import previous_sentence_start
from .structure import SECTION_SPAN
from .types import Sentence


def word_forms(text: str) -> set[str]:
    """The text's words, lower case, as written and stemmed, with the parts of hyphenated and underscored ones."""
    raw = {w.lower().strip("'’-") for w in cite.WORD.findall(cite.normalize(text))}
    # "Apache-2" also gives "apache", "XDG_DATA_HOME" gives "xdg": the parts a name is read as
    raw |= {part for w in raw if "-" in w or "_" in w for part in re.split(r"[-_]", w) if part}
    return raw | {cite.stem(w) for w in raw}


def number_in(x: str, have: set[str]) -> bool:
    """x occurs among have; a dotted version counts as its prefix ("5.2" is in "5.2.15"; "2" is not in "2.7")."""
    return x in have or ("." in x and any(h.startswith(x + ".") for h in have))


def plain_names(text: str) -> set[str]:
    """Proper names, without tokens that are numbers or codes ("Q1", "5.2"): numbers are checked as
    numbers, so "Q1" can match "the first quarter"."""
    return {n for n in cite.proper_names(text) if not any(ch.isdigit() for ch in n)}


_ABBREVIATION = re.compile(r"^[A-Z]{2,5}s?$")


_NAME_RUN = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+(?:the\s+)?)?[A-Z][\w'’-]*)+")


def question_names(question: str) -> set[str]:
    """Names a question commits to. Its first word is not one (it is capitalised by position), nor a
    short all-capitals abbreviation ("CEO", "IPO"), which the text usually spells out."""
    words = question.split()
    first = words[0].lower().strip("'’\"“”?,") if words else ""
    abbreviations = {w.lower() for w in re.findall(r"\b[A-Z]{2,5}s?\b", question) if _ABBREVIATION.match(w)}
    return {n for n in plain_names(question) if n != first and n not in abbreviations}


def demonyms(place: str) -> set[str]:
    """The regular adjectives of a place name, lower case: "ecuador" -> "ecuadorian", "israel" -> "israeli",
    "japan" -> "japanese", "korea" -> "korean", "canada" -> "canadian", "italy" -> "italian", "mexico" ->
    "mexican". Irregular ones ("France"/"French") are not made; names under 4 letters get none."""
    if len(place) < 4:
        return set()
    out = {place + "ian", place + "i", place + "ese"}
    if place.endswith("a"):
        out |= {place + "n", place[:-1] + "ian"}
    elif place.endswith("y"):
        out.add(place[:-1] + "ian")
    elif place.endswith("o"):
        out.add(place[:-1] + "an")
    return out


def name_in(name: str, forms: set[str]) -> bool:
    """A question's name is in a text's word forms: as written, stemmed, or as the place's adjective either
    way ("Ecuador's embassy" is "the Ecuadorian embassy"; "Israeli" is said of "Israel")."""
    return (name in forms or cite.stem(name) in forms or bool(demonyms(name) & forms)
            # an adjective's place starts with the adjective's first four letters: only those words are tried
            or any(name in demonyms(w) for w in forms if len(w) >= 4 and name.startswith(w[:4])))


# An ordinal is a constraint when it names a period ("the second quarter", "the first half"); elsewhere it
# is usually an adverb or a paraphrase ("which release first added", "a second listing" for "secondary").
_PERIODS = frozenset("quarter quarters half halves week weeks month months year years day days edition round phase term".split())


def question_numbers(question: str) -> set[str]:
    """The numbers a question commits to: digits ("2022", "5.2", "Q3") and number words that count a period
    ("the second quarter", "two weeks"). Other number words are left out: "when two binary files differ"
    and "a second listing" describe, they do not pin down."""
    tokens = re.findall(r"[A-Za-z]+|\d+(?:[.,]\d+)*", cite.normalize(question).lower())
    out = set(cite.numbers(" ".join(t for t in tokens if t[0].isdigit())))
    for i, t in enumerate(tokens):
        if t in cite.NUMBER_WORDS and i + 1 < len(tokens) and tokens[i + 1] in _PERIODS:
            out |= cite.numbers(t)
    return out


def missing_constraints(question: str, context: str, name_context: str | None = None) -> list[str]:
    """The numbers and names of the question that its evidence context lacks (empty when all hold). Names
    may be sought in a wider name_context: a text refers back to a name ("it", "the integration"), but
    not to a year or a version, which a neighbouring sentence may state about something else."""
    have_nums, forms = cite.numbers(context), word_forms(name_context or context)
    missing = [x for x in sorted(question_numbers(question)) if not number_in(x, have_nums)]
    abbreviated = abbreviated_names(question, name_context or context)
    missing += [n for n in sorted(question_names(question)) if not name_in(n, forms) and n not in abbreviated]
    return missing


_MINOR = frozenset("of the and for in on at de".split())  # words an abbreviation leaves out


def abbreviated_names(question: str, text: str) -> set[str]:
    """The names of the question (lower case) that the text writes as an abbreviation of the name they are part
    of: "National Basketball Association" is "NBA", "Union of European Football Associations" "UEFA"."""
    have = set(re.findall(r"\b[A-Z][A-Z&]{1,7}s?\b", text))
    out: set[str] = set()
    for run in _NAME_RUN.findall(cite.normalize(question)):
        words = [w.strip("'’") for w in run.split()]
        major = [w for w in words if w.lower() not in _MINOR]
        if len(major) >= 2 and "".join(w[0] for w in major).upper() in {h.rstrip("s") for h in have}:
            out |= {w.lower() for w in major}
    return out


def constraints_missing_around(question: str, s: Sentence, doc: str) -> list[str]:
    """missing_constraints for a shown sentence: numbers and versions from its title, headings (or, with none,
    the document's lead sentence), itself and the sentence before; names also from as far as two sentences back
    and from its whole section (section_text). A sentence this is not empty for can ground no answer, so it is
    also the test of which sentences are worth the reader's time (pipeline)."""
    head_text = heading_text(s, doc) or lead_sentence(s, doc)
    before = previous_sentence_start(doc, s.context_start)
    # The document's metadata (s.about) states what the whole page is about: its publisher, author, site and
    # date are met there, not repeated in every sentence.
    return missing_constraints(question, f"{s.label}\n{s.about}\n{head_text}\n{doc[s.context_start:s.end]}",
                               f"{s.label}\n{s.about}\n{head_text}\n{doc[before:s.end]}\n{section_text(s, doc)}")


def section_text(s: Sentence, doc: str) -> str:
    """The section of a shown sentence (Sentence.section): from the heading above it (or the document's start) to
    the next heading (or the end); a document without headings, a news story, is one section. A story names a
    person or place in full once and then writes "Mr Strachan", "he", "the city" ("Shirley Strachan's helicopter"
    is answered by "the helicopter was struck by ... a mountain wave"), so the names a question uses are sought
    there. Numbers are not: a neighbouring sentence's year or version is often about something else."""
    return doc[s.section[0]:s.section[1]]


def heading_text(s: Sentence, doc: str) -> str:
    """The text of a shown sentence's section headings, one per line."""
    return "\n".join(doc[a:b] for a, b in s.headings)


def lead_sentence(s: Sentence, doc: str) -> str:
    """Its document's first sentence (Sentence.lead), for a shown sentence no heading stands above and within
    SECTION_SPAN of it: in a news story the lead states the event ("An earthquake measuring 4.1 ...", "as many as
    35 have been shot") and the sentences below refer back to it, as a section's sentences do to its heading."""
    a, b = s.lead
    return doc[a:b] if s.start <= SECTION_SPAN and b <= s.start else ""


def holds_kind_around(question: str, s: Sentence, doc: str) -> bool:
    """The shown sentence, with the sentence before it, its title and headings (the windows an answer is
    grounded in), holds something of the kind the question asks for (cite.answers_kind): a number for "how
    many", a time of day for "what time". Without one, no answer the question accepts can be grounded there."""
    return cite.answers_kind(f"{s.label}\n{heading_text(s, doc)}\n{doc[s.context_start:s.end]}", question)
