"""Overview requests ("Summarize the article", "What is this about?"): told apart from questions, and answered
from the documents' own sentences, each one cited exactly.

A summary is extractive on purpose: every sentence shown is a sentence of the document (no reader, so nothing
to verify and nothing invented). News is written lead first, so a document's first full sentence is its
summary's first sentence; the others are the sentences whose words recur most across the document."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from .cite import content_words, normalize, sentence_spans

# A request for an overview names one of these...
_OVERVIEW = re.compile(
    r"\b(summar(?:y|ies|i[sz]e[sd]?|i[sz]ing)|sum (?:it|this|them) up|overview|gist|tl;? ?dr|recap"
    r"|(?:main|key) (?:points?|ideas?|takeaways?|facts?)|takeaways?"
    r"|what(?:'s| is| are)(?: (?:this|it|that|the|these|those|they))?(?: \w+)? about)\b", re.IGNORECASE)
# ...and nothing else but these words: "Summarize the cloud revenue figures" asks about a topic, and goes to
# the reader like any question.
_GENERIC = frozenset(content_words(
    "summary summaries summarize summarise summarized summarizing sum up overview gist tl dr tldr recap about "
    "main key point points idea ideas takeaway takeaways fact facts article articles document documents doc docs "
    "story stories text texts piece report file files archive corpus collection page news whole entire all "
    "give tell show describe explain write provide quick quickly brief briefly short shortly few sentence "
    "sentences word words line lines bullet bullets please thanks thank overall general generally topic topics"))

SUMMARY_SENTENCES = 3  # a short summary of one document: its lead and two more
SUMMARY_DOCUMENTS = 5  # of several documents: the lead of each of the first five
LEAD_WINDOW = 40  # the sentences a summary is chosen from: the document's opening, where news puts its facts
MIN_WORDS, MAX_WORDS = 6, 60  # shorter is a heading or a byline; longer is a list run together


@dataclass(frozen=True)
class Excerpt:
    """One sentence of a summary: doc_text[start:end] == text."""

    source: str
    start: int
    end: int
    text: str


def is_overview(question: str) -> bool:
    """True when the question asks what the documents say as a whole, not about anything in them."""
    return bool(_OVERVIEW.search(question)) and not (content_words(question) - _GENERIC)


def _candidates(text: str, title: str) -> list[tuple[int, int]]:
    """The document's opening sentences that read as prose, the title cut off the first one when the text
    runs on from its title without a full stop (as the dev article does)."""
    out = []
    title_key = normalize(title)
    for start, end in sentence_spans(text)[:LEAD_WINDOW]:
        piece = text[start:end]
        if title_key and normalize(piece).startswith(title_key):
            cut = _after_title(piece, title)
            start += cut
            piece = text[start:end]
        words = piece.split()
        if normalize(piece) == title_key:
            continue
        if MIN_WORDS <= len(words) <= MAX_WORDS and piece[-1:] in ".!?\"”’)" and any(c.islower() for c in piece):
            out.append((start, end))
    return out


def _after_title(piece: str, title: str) -> int:
    """Offset in `piece` just past the words of `title` and the space after them."""
    i, want = 0, title.split()
    for word in want:
        j = piece.find(word, i)
        if j < 0:
            return 0
        i = j + len(word)
    while i < len(piece) and piece[i].isspace():
        i += 1
    return i


def summarize(text: str, title: str = "", k: int = SUMMARY_SENTENCES) -> list[tuple[int, int]]:
    """Spans of up to k sentences of `text`, in document order: the first prose sentence (the lead), then the
    ones whose content words recur most across the document (each word counts log(1 + its frequency), the sum
    divided by the square root of the sentence's length so long sentences do not win by length alone)."""
    spans = _candidates(text, title)
    if not spans:
        return []
    freq = Counter(w for s, e in sentence_spans(text) for w in content_words(text[s:e]))

    def centrality(span: tuple[int, int]) -> float:
        words = content_words(text[span[0]:span[1]])
        return sum(math.log1p(freq[w]) for w in words) / math.sqrt(max(len(words), 1))

    rest = sorted(spans[1:], key=centrality, reverse=True)[: k - 1]
    return sorted([spans[0], *rest])


def overview(documents: Sequence[tuple[str, str, str]]) -> list[Excerpt]:
    """The excerpts that summarise `documents` ((source, title, text) in the order to show): one document's
    summary, or the lead sentence of each of the first SUMMARY_DOCUMENTS."""
    k = SUMMARY_SENTENCES if len(documents) == 1 else 1
    out: list[Excerpt] = []
    for source, title, text in documents[:SUMMARY_DOCUMENTS]:
        out.extend(Excerpt(source, s, e, text[s:e]) for s, e in summarize(text, title, k))
    return out
