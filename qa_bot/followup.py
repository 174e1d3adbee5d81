"""Conversation-aware follow-ups: a question that depends on earlier turns is rewritten into one that stands
alone before anything is searched; a question that does not pays nothing.

    depends(question, history)  a few regular expressions (no model): why the question needs the conversation
                                (a back-reference with nothing before it to point to, "what about X?", "and Y?",
                                a bare "why?"), or None, and then nothing else runs
    rewrite(...)                the reader, with a short fixed prompt (prompts.REWRITE_SYSTEM, cached by llama.cpp
                                like the reader's own) and the last turns that fit, writes {"question": ...}
    check_rewrite(...)          what it wrote is checked like any question (question.clean_question, a length
                                cap), and as a question: it must ask something, keep every word of the follow-up
                                that names something, and add no word that is in neither the follow-up nor the
                                turns it was shown. Anything else is discarded for the deterministic rule
                                (question.standalone_question's "(following up on: ...)").

The rewrite is only ever a question: it is searched and answered like a typed one, every answer still goes
through the grounding rules, so whatever the history says (it is the client's: /ask and the OpenAI API take it
as given) can at most change what is searched for, never what is answered.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from . import cite, prompts
from .errors import InvalidQuestion
from .question import clean_question, estimate_tokens, standalone_question, strip_invisible

log = logging.getLogger(__name__)

# The turns the reader is shown: the last two (a follow-up is remembered as rewritten, so the last turn names its
# subject; each older turn costs ~25 tokens of prompt reading, ~0.35 s on 2 cores), each answer cut (a summary's
# three sentences say nothing a follow-up needs beyond its start).
MAX_TURNS = 2
ANSWER_CHARS = 100
MAX_REWRITE_CHARS = 300
# Plain words (not names, not numbers) a rewrite may bring in: "generate" for "make" is rephrasing; more is a
# question of its own.
MAX_NEW_WORDS = 2  # a standalone follow-up is one question; the reply's JSON schema holds it to this too

# Pronouns and demonstratives that point back. "that"/"this"/"these"/"those" count only where they cannot be a
# conjunction or relative pronoun ("the model that ...", "said that ..."): first, after a verb of asking or a
# preposition, or before a noun they determine; "there" only where it is a place ("is there" is not).
_PRONOUN = re.compile(
    r"\b(it|its|it's|itself|they|them|their|theirs|he|him|his|she|her|hers|"
    r"the (?:company|firm|unit|group|business|model|product|deal|plan|move|spin-?off|release|version|licen[cs]e|"
    r"option|feature|change|program|tool|update|fix|bug))\b", re.I)
_DEMONSTRATIVE = re.compile(
    r"(?:^|\b(?:is|was|are|were|does|did|do|has|had|will|can|about|of|in|on|for|than|with|from|to|by|at|after|"
    r"before|since|like|and|but|why|how|what|when|where|who)\s+)(that|this|these|those)\b|"
    r"\b(that|this|these|those)\s*\?|"
    r"\b(that|this|these|those)\s+(?:year|quarter|month|week|day|time|period|date|figure|number|amount|price|"
    r"release|version|company|firm|unit|group|business|product|model|option|feature|change|program|tool|one|ones)s?\b",
    re.I)
# What a rewrite replaces rather than keeps: a pronoun phrase ("the company") or a demonstrative with its noun.
_POINTING = re.compile(r"\b(?:the|that|this|these|those)\s+[a-z-]+(?:'s)?|\b(?:its|their|his|her)\s+[a-z-]+", re.I)
_THEN = re.compile(r"\b(?:since|by|until|till|back|before|after|from|and)\s+then\b", re.I)
_THERE = re.compile(r"\bthere\b(?!\s+(?:is|are|was|were|be|been|will|has|have|had|any|no)\b)", re.I)
_EXISTENTIAL = re.compile(r"\b(?:is|are|was|were|will|has|have|had)\s+there\b", re.I)
# An ellipsis: the follow-up keeps only what changed ("What about the fourth quarter?", "And in 2021?") or asks
# only the question word ("Why?", "How so?", "When exactly?").
_ELLIPSIS = re.compile(
    r"^(?:and|but|also|so|or|plus)\b|^(?:what|how)\s+about\b|^what\s+of\b|^(?:same|likewise)\b|"
    r"^(?:and\s+)?(?:what|how)\s+else\b|^(?:anything|something)\s+else\b|^(?:really|since when|says who|is it)\b", re.I)
_LEAD = re.compile(r"^[^,?]{1,60},\s*")  # "Since then, what ...?", "In bash 5.2, which ...?"
_CONJUNCTION = re.compile(r"^(?:and|but|also|so|or|plus)\b[\s,]*", re.I)
_WH = re.compile(r"^(?:why|how|when|where|who|whom|which|what|whose|how (?:much|many|long|often|so|come))"
                 r"(?:\s+(?:not|so|exactly|then|now|again|instead|precisely))?\s*[?.!]*$", re.I)
_QUESTION_START = re.compile(
    r"^(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|will|would|should|"
    r"has|have|had|may|might|must|shall|in what|in which|on what|at what|by how|for what|from what|to what|with what|"
    r"according to|as of|since when|by when|until when|by what|how come)\b", re.I)
# What a question asks for, which its rewrite must still ask ("what" and "which" can be said otherwise:
# "What about Q4?" -> "How much ... in Q4?").
_ASKS = re.compile(r"\b(?:why|when|where|who|whom|whose|how(?: (?:much|many|long|often|old|big|far))?)\b", re.I)
_ELLIPTIC_START = re.compile(r"^(?:and\s+)?(?:what|how)\s+about\b", re.I)
# Words that only say what kind of answer is wanted ("In what year?", "For how long?"), stemmed as content_words.
_ASKING = frozenset(cite.stem(w) for w in cite.QUESTION_FORM | {"date", "day", "month", "period", "long", "exactly",
                                                                "amount", "number", "reason", "price", "cost",
                                                                "release", "version"})
# Words of a question's form that a rewrite may use though neither the follow-up nor the turns do.
_FORM = frozenset("""also than more less same other previous earlier last next compared compare different differ
    change changed reason reasons why happen happened mean means meaning exactly instead still again""".split())


@dataclass(frozen=True)
class Rewrite:
    """A follow-up made to stand alone: `question` is what is searched and answered; `by` says how
    ("reader": its rewrite passed check_rewrite; "rule": the deterministic rule, when the reader's did not or
    the reader was not asked)."""

    question: str
    by: str
    kind: str  # what depends() found: "reference", "ellipsis" or "fragment"


def _words(text: str) -> list[str]:
    return cite.WORD.findall(cite.normalize(text))


def _has_subject(text: str, subjects: Iterable[str] = (), numbers: bool = True) -> bool:
    """Whether text names something a pronoun after it can point to: a capitalised name (not the first word), a
    number (versions, years; unless numbers=False), a quoted or code-like term, or one of the corpus's subjects
    (document names)."""
    words = text.split()
    if len(words) > 1 and cite.proper_names(" ".join(words[1:])):
        return True
    if re.search(r"[`'\"“”‘’]\w|(?:^|\s)--?[a-z]" + (r"|\d" if numbers else ""), text):
        return True
    known = {w.lower() for w in subjects}
    return bool(known & {w.lower() for w in _words(text)})


def subject_words(sources: Iterable[str]) -> frozenset[str]:
    """What the corpus's documents are about, by name: the first word of each file name ("bash" of
    bash_NEWS.txt, "alibaba" of alibaba_cloud_spinoff.txt), which questions often write in lower case."""
    out = set()
    for src in sources:
        m = re.match(r"[a-z]{3,}", src.rsplit("/", 1)[-1].lower())
        if m:
            out.add(m.group(0))
    return frozenset(out)


def depends(question: str, history: Sequence[tuple[str, str]], subjects: Iterable[str] = ()) -> str | None:
    """Why `question` cannot be understood without the earlier turns, or None (no history, or it stands alone):
    "ellipsis" ("What about X?", "And Y?", a bare question word), "reference" (it, they, that, there, the
    company... with nothing named before it in the question) or "fragment" (two or three words that ask
    nothing by themselves: "Fourth quarter?"). Regular expressions only: a plain question costs microseconds."""
    if not history:
        return None
    q = " ".join(question.split())
    rest = _CONJUNCTION.sub("", q)
    if rest != q and _QUESTION_START.match(rest):  # "And who runs it?": a whole question after the "and"
        q = rest
    elif _ELLIPSIS.search(q) or _WH.match(q):
        return "ellipsis"
    if _WH.match(q):
        return "ellipsis"
    if len(q.split()) <= 4 and not cite.content_words(q) - _ASKING and not _has_subject(q, subjects, numbers=False):
        return "ellipsis"  # only words of asking: "In what year?", "By how much?", "Since when exactly?"
    words = q.split()
    for pattern in (_PRONOUN, _DEMONSTRATIVE, _THERE, _THEN):
        for m in pattern.finditer(q):
            if pattern is _THERE and _EXISTENTIAL.search(q[: m.end()]):
                continue
            # A pronoun may point to a name earlier in the question; "that", "this", "there" and "then" (as
            # matched) point outside it.
            # "the company" may be named anywhere in the question ("the model that Alibaba built").
            before = q if m.group(0).lower().startswith("the ") else q[: m.start()]
            if len(words) <= 14 and (pattern is not _PRONOUN or not _has_subject(before, subjects)):
                return "reference"
    if len(words) <= 3 and not _QUESTION_START.match(q) and not _has_subject(q, subjects, numbers=False):
        return "fragment"
    return None


def trim_history(history: Sequence[tuple[str, str]], budget: int, question: str,
                 max_turns: int = MAX_TURNS) -> list[tuple[str, str]]:
    """The last turns (at most max_turns, oldest first) whose prompt, with the fixed instructions and the
    follow-up, fits `budget` estimated tokens; each answer without its [n] markers and cut to ANSWER_CHARS.
    An older turn that does not fit is dropped with all before it."""
    fixed = estimate_tokens(prompts.REWRITE_SYSTEM) + estimate_tokens(prompts.REWRITE_USER.format(turns="", question=question))
    kept: list[tuple[str, str]] = []
    used = fixed
    for q, a in reversed(history[-max_turns:]):
        answer = strip_invisible(cite.strip_markers(a or ""))
        if len(answer) > ANSWER_CHARS:
            answer = answer[:ANSWER_CHARS].rsplit(" ", 1)[0] + " …"
        cost = estimate_tokens(_turn(q, answer)) + 1
        if used + cost > budget:
            break
        kept.append((q, answer))
        used += cost
    return kept[::-1]


def _turn(q: str, a: str) -> str:
    return prompts.REWRITE_TURN.format(question=q, answer=a or "-")


def rewrite_prompt(question: str, turns: Sequence[tuple[str, str]]) -> str:
    """The reader's user message after REWRITE_SYSTEM: the turns, oldest first, then the follow-up."""
    return prompts.REWRITE_USER.format(turns="\n".join(_turn(q, a) for q, a in turns), question=question)


def _loose(words: set[str]) -> Callable[[str], bool]:
    """Membership in a set of stemmed words, also across a shared beginning ("run"/"running", "four"/"fourth",
    "spin"/"spinning"): the reader may change a word's form, not the word."""
    def has(w: str) -> bool:
        if w in words:
            return True
        for v in words:
            n = min(len(v), len(w))
            if n >= 3 and v[:n] == w[:n] and abs(len(v) - len(w)) <= 4:
                return True
        return False
    return has


def _numbers(text: str) -> set[str]:
    return set(cite.numbers(text))


def check_rewrite(raw: str, question: str, turns: Sequence[tuple[str, str]], max_chars: int,
                  kind: str = "ellipsis") -> str | None:
    """The reader's rewrite as a standalone question, or None when it is not one to use: not the JSON asked for,
    empty or too long (clean_question and MAX_REWRITE_CHARS), not a question (an answer, an instruction), no
    longer asking what the follow-up asks (when, who, how much...), missing a word or number of the follow-up that
    names something (other than what points back: "that unit"), or carrying a name or number that is in neither
    the follow-up nor the turns shown, or more than MAX_NEW_WORDS other new words (a fact made up, or text from
    outside the conversation)."""
    text, why = _checked(raw, question, turns, max_chars, kind)
    if text is None:
        log.debug("follow-up rewrite %r not used: %s", raw[:200], why)
    return text


def _checked(raw: str, question: str, turns: Sequence[tuple[str, str]], max_chars: int,
             kind: str) -> tuple[str | None, str]:
    try:
        obj = json.loads(raw.strip())
    except ValueError:
        return None, "not JSON"
    text = obj.get("question") if isinstance(obj, dict) else None
    if not isinstance(text, str):
        return None, "no question in the reply"
    try:
        text = clean_question(text, min(max_chars, MAX_REWRITE_CHARS), "the rewritten question")
    except InvalidQuestion as e:
        return None, str(e)
    text = _CONJUNCTION.sub("", text.rstrip(" ."))
    text = text[:1].upper() + text[1:]
    if not _QUESTION_START.match(_LEAD.sub("", text)) or cite.is_refusal(text) or "?" in text[:-1]:
        return None, "not one question"  # an answer, an instruction, several questions
    text = text if text.endswith("?") else text + "?"
    asked = {m.group(0).lower() for m in _ASKS.finditer(_ELLIPTIC_START.sub("", question))}
    if not asked <= {m.group(0).lower() for m in _ASKS.finditer(text)}:
        return None, f"no longer asks {', '.join(sorted(asked))}"  # "When was it?" must still ask when
    context = " ".join([question, *(f"{q} {a}" for q, a in turns)])
    mine = cite.content_words(text)
    kept = _loose(mine)
    own = _POINTING.sub(" ", question)  # "that unit's revenue": "unit" is what gets replaced, not kept
    words = [w for w in cite.content_words(own) - _ASKING if not kept(w)]  # "In what year?" may become "When...?"
    names = sorted(w for w in cite.proper_names(own) if not kept(cite.stem(w)))
    numbers = sorted(_numbers(question) - _numbers(text))
    # An ellipsis is nothing but what changes ("What about the fourth quarter?", "And enterprise users?"): all of
    # it stays. A whole question that points back may have one plain word said otherwise ("aim" -> "plan").
    if names or numbers or len(words) > (1 if kind == "reference" else 0):
        return None, f"lost {names + numbers or words}"
    known = _loose(cite.content_words(context) | {cite.stem(w) for w in _FORM} | set(cite.QUESTION_FORM))
    words = [w for w in mine if not known(w)]
    names = sorted(cite.proper_names(text) - cite.proper_names(context) - {w.lower() for w in _words(context)})
    numbers = sorted(_numbers(text) - _numbers(context))
    if names or numbers or len(words) > MAX_NEW_WORDS:  # a fact from nowhere; a few plain words are rephrasing
        return None, f"added {names + numbers or words}"
    return text, ""


def rule(question: str, history: Sequence[tuple[str, str]]) -> str | None:
    """The deterministic rewrite: the follow-up with the previous question after it, for retrieval and the reader
    to read together (question.standalone_question's form, for any kind of dependence)."""
    ruled = standalone_question(question, history)  # a back-reference with no name: the rule as it always was
    if ruled is not None:
        return ruled
    previous = next((q for q, _ in reversed(history) if q and q.strip()), "")
    return f"{question.rstrip()} (following up on: {previous.strip()})" if previous else None


def standalone(question: str, history: Sequence[tuple[str, str]], *, call: Callable[[str, str, dict], str] | None,
               budget: int, max_chars: int, subjects: Iterable[str] = ()) -> Rewrite | None:
    """`question` made to stand alone, or None when it already does (then no model is called). `history` is
    question.clean_history's; `call(system, user, schema)` asks the reader (None: the rule only); `budget` is the
    prompt's token budget. A rewrite the checks refuse, or no turn fitting the budget, falls back to the rule."""
    kind = depends(question, history, subjects)
    if kind is None:
        return None
    turns = trim_history(history, budget, question) if call is not None else []
    if turns and call is not None:  # turns is empty when call is None; the second test narrows call for mypy
        raw = call(prompts.REWRITE_SYSTEM, rewrite_prompt(question, turns), prompts.REWRITE_SCHEMA)
        text = check_rewrite(raw, question, turns, max_chars, kind)
        if text is not None and not _same(text, question):
            return Rewrite(text, "reader", kind)
        if text is not None and kind == "reference":
            return None  # the same question back: the reader found nothing to replace; asked as typed
    ruled = rule(question, history)
    return Rewrite(ruled, "rule", kind) if ruled else None


def _same(a: str, b: str) -> bool:
    norm = lambda s: " ".join(re.findall(r"\w+", s.lower()))  # noqa: E731
    return norm(a) == norm(b)
