"""Grounding rules: pure functions that decide whether the reader's answer may be shown, and which exact
sentence it cites. The reader is never trusted:

1. its output is parsed (JSON from a schema-constrained reply, or plain text from a server without one);
2. the answer must be copied from a shown sentence (or that sentence with the one before it, for "the
   city" or "it"): all its numbers and names, and most of its words, are there;
3. the question's own constraints must hold in that evidence (constraints.py: its numbers and names, in the
   sentence, its section, headings, lead and metadata);
4. the answer must be of the asked kind (a number for "how many", a time of day for "what time", a date for
   "what date", a name for "who") and add something to the question;
   a sentence with nothing of that kind around it is shown last.
5. a yes/no question ("Did Alibaba go public in New York?") is answered "Yes" only from a sentence (alone or
   with the one before it) that holds half the question's key terms, every number and name, and
   no negation the question lacks; "No" only from one that holds them and denies the claim (a negation the
   question lacks, or the opposite of one of its words: "irrevocable" for "revocable"): a sentence that fails to
   confirm is not one that denies. The reader's check then confirms either.

Every shown sentence that supports the answer is tried, best ranked first. The reader's sentence number is
at most a hint (small models often name the wrong one), tried first where a server sends it; llama.cpp's
reply is cut before it (prompts.READER_STOP).

The constraint functions are called through the module (constraints.name(...)), so that replacing one there
(benchmarks/ablation.py) changes what grounding decides.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from . import cite, constraints
from .cite import sentence_spans
from .structure import SECTION_SPAN
from .types import Sentence

# Part of what "grounded" means, like the rules below, so constants rather than Settings fields: a deployment
# must not loosen them; they are fit with the rest of the rules on the eval sets.
MAX_ANSWER_WORDS = 40  # a longer "answer" is a copied paragraph, not an answer


@dataclass(frozen=True)
class ReaderDraft:
    answer: str  # "" when the reader found nothing
    sentence: int  # the 1-based sentence number the reader named; 0 for none


@dataclass(frozen=True)
class Grounded:
    answer: str  # the short answer, cleaned
    source: str
    start: int  # the cited span: document[start:end] == text
    end: int
    text: str
    label: str  # the evidence sentence's document title and section heading
    headings: tuple[tuple[int, int, str], ...] = ()  # heading spans the answer also rests on ("release 4.6")


_JSON_OBJECT = re.compile(r"\{.*\}", re.S)
# A reply cut at prompts.READER_STOP: '{"answer": "9%' (servers drop the stop sequence; one that kept it is read too).
_CUT_ANSWER = re.compile(r'^\{\s*"answer"\s*:\s*"((?:[^"\\]|\\.)*)(?:\\|"\s*,\s*"?)?$', re.S)


def parse_reader(raw: str, cut_at_stop: bool = True) -> ReaderDraft:
    """The reader's reply as a draft. Accepts the schema's JSON, that JSON cut after its answer at
    prompts.READER_STOP (no sentence number; with cut_at_stop False the reply was cut at max_tokens, maybe
    inside its answer, and is no answer), JSON inside other text, or (for servers without JSON output) a plain
    answer with an optional [n] marker."""
    raw = (raw or "").strip()
    cut = _CUT_ANSWER.match(raw)
    if cut and not cut_at_stop:
        return ReaderDraft("", 0)  # cut at max_tokens inside its answer: whatever it was going to say is unknown
    if cut:
        try:
            return ReaderDraft(clean_answer(json.loads(f'"{cut.group(1)}"')), 0)
        except ValueError:
            pass  # a broken escape: read as plain text below
    m = _JSON_OBJECT.search(raw)
    if m:
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            answer = obj.get("answer", "")
            number = obj.get("sentence", 0)
            answer = answer if isinstance(answer, str) else str(answer) if isinstance(answer, (int, float)) else ""
            number = number if isinstance(number, int) and not isinstance(number, bool) else 0
            return ReaderDraft(clean_answer(answer), max(0, number))
    cited = cite.markers(raw)
    text = clean_answer(raw)
    if cite.is_refusal(text):
        return ReaderDraft("", 0)
    return ReaderDraft(text, cited[0] if cited else 0)


# A day written with its ordinal suffix, before or after its month: "March 24th", "24th of March".
_ORDINAL_DAY = re.compile(rf"\b((?:{cite.MONTH})\.?\s+\d{{1,2}})(?:st|nd|rd|th)\b|\b(\d{{1,2}})(?:st|nd|rd|th)(?=\s+(?:of\s+)?(?:{cite.MONTH}))",
                          re.IGNORECASE)


def clean_answer(answer: str) -> str:
    """One line, no markers, no wrapping quotes or trailing full stop, at most the first sentence."""
    text = " ".join(cite.strip_markers(cite.normalize(answer)).split())
    spans = sentence_spans(text)
    text = text[: spans[0][1]] if spans else ""
    text = text.strip().strip('"“”\'').strip()
    text = _ORDINAL_DAY.sub(lambda m: m.group(1) or m.group(2), text)  # "March 24th" -> "March 24"
    if text.endswith(".") and not re.search(r"\b[A-Z]\.$", text[-3:]):  # keep "U.S.", drop "2014."
        text = text[:-1].rstrip()
    if cite.is_refusal(text) and not cite.numbers(text):
        return ""
    return text


# A bare number is not an answer a user can use: "60" is "60 days", "2.7" is "$2.7 billion". The words that
# make a number a quantity, completed from the evidence only. (A year is not completed to a full date: on the
# tuning halves the evidence often holds several dates of that year, and the first was the wrong release's.)
_UNITS = (r"(?:per ?cent|percent|%|hundred|thousand|million|billion|trillion|bn|"
          r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|"
          r"bytes?|bits?|[KMGT]i?B|kilobytes?|megabytes?|gigabytes?|terabytes?|"
          r"km|kilomet(?:re|er)s?|miles?|met(?:re|er)s?|kg|kilograms?|tons?|tonnes?|"
          r"dollars?|euros?|yuan|yen|pounds?)")
_BARE_NUMBER = re.compile(r"[$€£¥]?\d+(?:[.,]\d+)*[KMGkmg]?")
_NUMBER_ANSWER = re.compile(rf"{_BARE_NUMBER.pattern}(?:\s?{_UNITS})?", re.I)  # a number, with its unit or not: "30", "30 %"


_MONTH = cite.MONTH
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_FULL_DATE = re.compile(rf"\b(?:{_DAY}\s+{_MONTH}\.?,?\s+\d{{4}}|{_MONTH}\.?\s+{_DAY},?\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}})\b", re.I)
_PART_DATE = re.compile(rf"(?:{_MONTH}\.?\s+)?\d{{4}}", re.I)  # "2007", "June 2007"
_ASKS_YEAR = re.compile(r"\b(?:year|month)\b", re.I)


def complete_date(answer: str, evidence: str, question: str) -> str:
    """A year (or month and year) answer to a "when" question, widened to the one full date that holds it in
    the evidence: "2007" -> "29 June 2007" from "Version 3, 29 June 2007". Asked for the year or month,
    or with no single such date, the answer is returned as it is."""
    if not _PART_DATE.fullmatch(answer) or _ASKS_YEAR.search(question):
        return answer
    parts = lambda x: set(re.findall(r"(?<![a-z])[a-z]{3}|\d{4}", x.lower()))  # "June 2007" -> {"jun", "2007"}
    dates = {m.group(0) for m in _FULL_DATE.finditer(" ".join(evidence.split())) if parts(answer) <= parts(m.group(0))}
    return dates.pop() if len(dates) == 1 else answer


def complete_answer(answer: str, evidence: str, question: str = "") -> str:
    """A bare number answer with the words that make it a quantity, taken from the evidence: its currency
    sign and unit or scale ("60" -> "60 days", "2.7" -> "$2.7 billion"), or a year with the rest of its date
    (complete_date); to a comparison question, with the comparative that follows it (complete_comparison).
    Any other answer, or a number the evidence does not extend, is returned as it is."""
    dated = complete_date(answer, evidence, question)
    if dated != answer:
        return dated
    if not _NUMBER_ANSWER.fullmatch(answer):
        return answer
    return complete_comparison(_complete_unit(answer, evidence), evidence, question)


def _complete_unit(answer: str, evidence: str) -> str:
    text = " ".join(evidence.split())
    if not _BARE_NUMBER.fullmatch(answer):
        # A number with its unit but not its currency sign: "2.7 billion" -> "$2.7 billion".
        m = re.fullmatch(rf"(\d+(?:[.,]\d+)*)\s?({_UNITS})", answer, re.I)
        if m:
            signed = re.search(rf"(?<![\w.,])([$€£¥]){re.escape(m.group(1))}\s?{re.escape(m.group(2))}(?!\w)", text, re.I)
            if signed:
                return signed.group(1) + answer
        return answer
    num = re.escape(answer.lstrip("$€£¥"))
    m = re.search(rf"(?<![\w.,])([$€£¥]?){num}(?![\w.,]\d)(\s?{_UNITS}(?!\w)(?:\s{_UNITS}(?!\w))?)?", text, re.I)
    if not m or not (m.group(1) or m.group(2)):
        return answer
    sign = "" if answer[0] in "$€£¥" else m.group(1)
    return f"{sign}{answer}{m.group(2) or ''}"


# A comparison question ("how does the size compare with gzip?", "how much smaller than ...") is answered by a
# quantity and its direction: "30 %" alone does not say smaller or larger.
_ASKS_COMPARISON = re.compile(r"\b(?:compar\w*|than|versus|vs\.?|relative to)(?!\w)", re.I)
# Words ending in "-er" that follow a number without comparing anything ("5 other accounts", "3 per cent").
_NOT_COMPARATIVE = frozenset("other another under over after per user order number never ever either neither "
                             "rather whether later water paper".split())


def complete_comparison(answer: str, evidence: str, question: str) -> str:
    """A quantity answer to a comparison question, with the comparative the evidence writes right after it
    ("30%" -> "30% smaller" from "about 30 % smaller files than gzip"; "4" -> "4 times faster"). Returned as
    it is when the question compares nothing or the evidence has no such word there."""
    if not _ASKS_COMPARISON.search(question):
        return answer
    text = " ".join(evidence.split())
    parts = [re.escape(p) for p in re.findall(r"\d+(?:[.,]\d+)*|[^\d\s]+", answer)]
    m = re.search(r"(?<![\w.,])" + r"\s?".join(parts) + r"(\s(?:times\s)?(?:more|less|fewer|[a-z]{2,}er))\b", text, re.I)
    if not m or m.group(1).split()[-1].lower() in _NOT_COMPARATIVE:
        return answer
    return f"{answer}{m.group(1)}"


def _variants(answer: str) -> list[str]:
    """The answer without a trailing parenthesis first (readers copy a label's "(GPL-3)" into answers), then as written."""
    bare = re.sub(r"\s*\([^()]*\)$", "", answer).strip()
    return [bare, answer] if bare and bare != answer else [answer]



_HYPHENATED = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])")


def supports_answer(answer: str, text: str) -> bool:
    """The answer is backed by text: every number and name in it occurs there, and at least three
    quarters of its content words (all of them for short answers)."""
    # A compound is its parts: "a five-year period" supports "five years".
    answer, text = _HYPHENATED.sub(" ", answer), _HYPHENATED.sub(" ", text)
    nums, names, words = cite.numbers(answer), constraints.plain_names(answer), cite.content_words(answer)
    if not (nums or names or words):  # "%Q", "-z": the token itself must be in the text
        marks = cite.symbols(answer)
        return bool(marks) and all(m in cite.normalize(text).lower() for m in marks)
    have_nums = cite.numbers(text)
    if not all(constraints.number_in(x, have_nums) for x in nums) or (nums and not cite.numbers_bound(answer, text)):
        return False
    forms = constraints.word_forms(text)
    if not all(n in forms or cite.stem(n) in forms for n in names):
        return False
    if words:
        found = len(words & (cite.content_words(text) | forms))
        need = len(words) if len(words) <= 3 else 0.75 * len(words)
        if found < need:
            return False
    return True



def can_ground(question: str) -> Callable[[Sentence, str], bool]:
    """The retriever's `usable` test for this question: a shown sentence whose context lacks a number,
    version or name the question states (constraints_missing_around), or anything of the asked kind
    (holds_kind_around), can ground no answer."""
    return lambda s, doc: (not constraints.constraints_missing_around(question, s, doc)
                           and constraints.holds_kind_around(question, s, doc))


def needs_check(question: str, found: Grounded) -> bool:
    """Whether the yes/no check must read this evidence: only when some key term of the question is not in
    it (nor in its title and headings). A near miss shows up exactly so: "employees" asked, "enterprise
    users" written; "net profit" asked, "revenue" written. When every term is there, the check is skipped,
    except for a "Yes": the terms being there does not make the sentence say it. A "No" is not checked: the
    check asks whether the answer is the answer, and a bare "No" reads to it as its own verdict (it confirmed
    none of the right ones on three unseen sets); a "No" rests on a sentence that denies the claim (denies)."""
    if is_yes_no(question) and found.answer in ("Yes", "No"):
        return found.answer == "Yes"
    have = cite.content_words("\n".join([found.label, found.text, *(h for _, _, h in found.headings)]))
    return not cite.key_terms(question) <= have


TOP_LOGPROBS = 10  # alternatives asked for at each token of the check's reply: "yes" and "no" are among them


def yes_probability(tokens: Sequence[dict]) -> float | None:
    """How likely the check's verdict was "yes" rather than "no": at the first token of its reply where "yes"
    and "no" forms hold most of the probability (the verdict; the JSON around it is certain), their shares
    renormalised. None when the server gave no log-probabilities (or no such token): the verdict as written
    is all there is."""
    import math

    for token in tokens:
        alternatives = token.get("top_logprobs") or () if isinstance(token, dict) else ()
        yes = no = 0.0
        for alt in alternatives:
            word = str(alt.get("token", "")).strip().lower()
            try:
                p = math.exp(float(alt.get("logprob")))
            except (TypeError, ValueError, OverflowError):
                continue
            if word and "yes".startswith(word):
                yes += p
            elif word in ("n", "no"):
                no += p
        if yes + no > 0.5:
            return yes / (yes + no)
    return None


def check_passes(verdict: str, p_yes: float | None, min_yes: float) -> bool:
    """The check's decision: a written "yes" that, where its probability is known, is at least min_yes likely.
    The 1.5B check says "yes" to near misses it is unsure of (0.50-0.56 on the tuning halves) and to right
    answers with 0.61 or more."""
    return verdict == "yes" and (p_yes is None or p_yes >= min_yes)


# "Question:" and "Answer:" are labels a reader copies from its prompt, not information ("Question: <the question>?
# Answer: [1]." once passed as adding the new names Question and Answer).
_LABELS = re.compile(r"\b(?:question|answer)\s*:", re.IGNORECASE)


# An answer ending on a word that needs another after it was cut off before its point ("Send bug reports,
# comments, questions, etc. to"). Not "a" ("Plan A") nor "in", "on", "up" (they end phrasal verbs: "opt in").
_UNFINISHED = re.compile(r"\b(?:the|of|to|and|or|for|with|from|than|via|into)\W*$", re.IGNORECASE)


def acceptable(answer: str, question: str) -> bool:
    """Right kind (a number for "how many/when", a name for "who"), adds something to the question, short
    enough to be an answer rather than a paragraph, and not cut off."""
    return (
        bool(answer)
        and len(answer.split()) <= MAX_ANSWER_WORDS
        and not _UNFINISHED.search(answer)
        and cite.adds_information(_LABELS.sub(" ", answer), question)
        and cite.answers_kind(answer, question)
        and not cite.is_meta(answer)
    )


_YES_NO = re.compile(r"^\s*" + cite.AUXILIARY + r"\b", re.IGNORECASE)
# A negation, a removal or a denial ("Support for VMS has been removed" does not confirm "Is VMS still supported?";
# "he denies reports the man was a member" does not confirm that he was). After
# "or" a negation offers an alternative and denies nothing: "any price or no price", "with or without".
_NEGATION = re.compile(r"(?<!\bor )(?:\b(?:not|no|never|none|nothing|nowhere|neither|nor|without|cannot|hardly|barely)\b"
                       r"|\b\w+n['’]t\b)|\b(?:removed|dropped|deleted|discontinued|eliminated|withdrawn|"
                       r"deny|denies|denied|denying|declin(?:e|es|ed|ing)|refus(?:e|es|ed|ing)|reject(?:s|ed|ing)?)\b",
                       re.IGNORECASE)


# The share of a yes/no question's key terms its evidence must hold: the sentence is about what is asked (a
# paraphrase keeps most terms: "cut" may be written "reduced").
YES_NO_TERMS = 0.5


def is_yes_no(question: str) -> bool:
    """A question answered by yes or no: it asks with an auxiliary verb, at its start or after a leading clause
    ("After grep -P stopped ..., is it still faster?"), and offers no choice ("Is it A or B?" is answered by A or
    B, like any question)."""
    return bool(_YES_NO.match(cite.asking_clause(question))) and not re.search(r"\bor\b", question, re.IGNORECASE)


def _first_word(answer: str) -> str:
    """The answer's first word, lower case, without trailing punctuation ("Yes, in 2014." -> "yes")."""
    words = answer.split(maxsplit=1)
    return words[0].strip(",.;:!").lower() if words else ""


def confirms(question: str, text: str) -> bool:
    """The evidence may state what a yes/no question asks: it holds three quarters of the question's key
    terms (the share supports_answer asks of an answer's words: "cut" may be written "reduced"); it
    negates or removes nothing the question does not ("Alibaba did not list in London" never confirms a listing).
    Numbers and names are checked whole by missing_constraints; the reader's check has the last word."""
    terms = cite.key_terms(question)
    if len(terms & constraints.word_forms(text)) < YES_NO_TERMS * len(terms):
        return False
    return len(_NEGATION.findall(text)) <= len(_NEGATION.findall(question))


# Prefixes that make a word its opposite: "revocable" / "irrevocable", "able" / "unable", "legal" / "illegal".
_NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "non", "dis")


def _opposed_terms(terms: set[str], forms: set[str]) -> set[str]:
    """The terms of which the text writes the opposite, by a negating prefix added or taken away."""
    return {t for t in terms
            if any(p + t in forms for p in _NEGATING_PREFIXES)
            or any(t.startswith(p) and len(t) > len(p) + 3 and t[len(p):] in forms for p in _NEGATING_PREFIXES)}


def denies(question: str, text: str) -> bool:
    """The evidence says no to what a yes/no question asks: it holds three quarters of the question's key terms
    (as confirms asks; a term whose opposite it writes counts) and either negates what the question does not
    ("the agreement does not grant ..." for "Does the agreement grant ...?") or writes the opposite of one of
    its terms ("irrevocable" for "Is the licence revocable?"). Numbers and names are checked whole by
    missing_constraints; the reader's check has the last word."""
    terms = cite.key_terms(question)
    forms = constraints.word_forms(text)
    opposed = _opposed_terms(terms, forms)
    if not terms or len((terms & forms) | opposed) < YES_NO_TERMS * len(terms):
        return False
    return bool(opposed) or len(_NEGATION.findall(text)) > len(_NEGATION.findall(question))


def _ground_verdict(question, sentences, order, document, verdict, holds):
    """A grounded "Yes" or "No": the first shown sentence (alone, or with the one before it) of which
    holds(question, window) is true and that meets the question's numbers and names."""
    for i in order:
        s = sentences[i]
        doc = document(s.source)
        heads, section = constraints.heading_text(s, doc), constraints.section_text(s, doc)
        # The sentence alone, then with the one before it, as for any answer: "It is ... a lot faster than
        # bzip2" says what "LZMA2" does only with the sentence that names it.
        for start in dict.fromkeys((s.start, s.context_start)):
            text = doc[start:s.end]
            window = f"{s.label}\n{heads}\n{text}"
            if holds(question, window) and not constraints.missing_constraints(question, f"{s.about}\n{window}",
                                                                               f"{s.about}\n{window}\n{section}"):
                return Grounded(verdict, s.source, start, s.end, text, s.label), ""
    return None, f"no sentence shown {'holds' if verdict == 'Yes' else 'denies'} what the yes/no question asks"


def _ground_yes(question, sentences, order, document):
    return _ground_verdict(question, sentences, order, document, "Yes", confirms)


def ground(draft: ReaderDraft, question: str, sentences: Sequence[Sentence], document: Callable[[str], str]) -> tuple[Grounded | None, str]:
    """The evidence for the draft's answer among the shown sentences, or (None, why not)."""
    if not draft.answer:
        return None, "the reader found no answer"
    order = list(range(len(sentences)))
    if 1 <= draft.sentence <= len(sentences):
        order.remove(draft.sentence - 1)
        order.insert(0, draft.sentence - 1)
    if is_yes_no(question) and _first_word(draft.answer) == "yes":
        return _ground_yes(question, sentences, order, document)
    if is_yes_no(question) and _first_word(draft.answer) == "no":
        # A "No" is shown only where a sentence denies the claim: one that fails to confirm it does not.
        return _ground_verdict(question, sentences, order, document, "No", denies)
    if not acceptable(draft.answer, question):
        return None, "the answer is not of the kind asked, or only restates the question"
    why = "the answer is not in the sentences shown"
    for answer in _variants(draft.answer):
        found, why = _ground_one(answer, question, sentences, order, document, why)
        if found:
            return found, ""
    return None, why


def _ground_one(answer, question, sentences, order, document, why):
    for i in order:
        s = sentences[i]
        doc = document(s.source)
        heads = tuple((a, b, doc[a:b]) for a, b in s.headings)
        # The sentence alone; with the sentence before it ("the city"); with its section headings (the
        # release a change belongs to is often only in the heading above it).
        # Last, with the document's title: "which program dropped the L command" is answered by whose NEWS it is.
        windows: list[tuple[int, tuple[tuple[int, int, str], ...] | Literal["title"]]] = [
            (s.start, ()), (s.context_start, ()), *((s.start, (h,)) for h in heads), (s.start, heads), (s.start, "title")]
        for start, window in dict.fromkeys(windows):
            used = () if isinstance(window, str) else window  # the heading spans it adds; the title is no span
            text = doc[start:s.end]
            extra = [s.label] if window == "title" else [h for _, _, h in used]
            if not supports_answer(answer, "\n".join([*extra, text])):
                continue
            if window == "title" and cite.numbers(answer) and constraints.question_numbers(question):
                # A number only the title holds dates or numbers the document ("tar NEWS ... 2021-02-13"), not
                # the release or year the question names ("when did tar 1.33 come out").
                continue
            shown = complete_answer(answer, "\n".join([*extra, text]), question)
            # The question's names may sit two sentences back: "Tongyi Qianwen ... It also ... In fact, the
            # integration has started, first with a copilot for Dingtalk."
            missing = constraints.constraints_missing_around(question, s, doc)
            if missing:
                why = f"the evidence does not match the question's {', '.join(missing)}"
                break
            if used and s.start - min(a for a, _, _ in used) <= SECTION_SPAN:
                # The heading is close above: cite heading through sentence as one span, the section that
                # states both ("release 4.6 ... New option --debug"), rather than two citations.
                start = min(a for a, _, _ in used)
                return Grounded(shown, s.source, start, s.end, doc[start:s.end], s.label), ""
            return Grounded(shown, s.source, start, s.end, text, s.label, used), ""
    return None, why
